//! # remotemedia-grpc
//!
//! The gRPC transport of RemoteMedia, built on runtime-core's traits only:
//!
//! * [`pb`]: the `remotemedia.v1` protocol (`proto/remotemedia/v1/pipeline.proto`), generated
//!   at build time by a pure-Rust protobuf compiler.
//! * [`convert`]: lossless adapters between the wire types and runtime-core's data, with
//!   errors that name the offending field.
//! * [`GrpcService`]: `remotemedia.v1.PipelineService` over any [`PipelineTransport`]: the
//!   pipeline in this process (a `PipelineRunner` serving it) or the pod's worker over the
//!   iceoryx2 link (an `IpcRunner`).
//! * [`GrpcRunner`]: a `PipelineTransport` on a remote server, for Rust clients.
//! * [`status`]: runtime errors as gRPC status codes.

pub mod auth;
pub mod client;
pub mod connections;
pub mod convert;
mod outbox;
pub mod service;
pub mod status;

pub use client::{GrpcRunner, GrpcSession};
pub use connections::ConnectionOptions;
// What sessions open on and how they are counted live in runtime-core (every server shares them).
pub use outbox::ResponseStream;
pub use remotemedia_runtime_core::serve::Admission;
pub use remotemedia_runtime_core::{OpenedSession, PipelineTransport};
pub use service::{GrpcService, ServiceOptions};

/// The generated `remotemedia.v1` protocol.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("remotemedia.v1");

    /// The encoded descriptor set of the protocol, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/remotemedia_v1_descriptor.bin"));
}
