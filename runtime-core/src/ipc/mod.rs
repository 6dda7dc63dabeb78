//! The pod link: how a worker process serves its pipeline to sidecar processes and Python
//! node processes over iceoryx2 shared memory.
//!
//! * [`codec`]: the byte format of every message, shared with the Python package
//!   (`runtime-core/python`, held to the same golden vectors).
//! * [`pipe`]: one-way byte pipes with async wake-ups and backpressure.
//! * [`link`]: service names, slot numbers and flow-control constants both ends derive
//!   from the link name and client id.
//! * `mux`: many sessions over one pipe pair per client process (batched writes, routing,
//!   per-session credits).
//! * [`Worker`] serves a [`PipelineRunner`](crate::PipelineRunner) on a link;
//!   [`IpcRunner`] is a [`PipelineTransport`](crate::PipelineTransport) that reaches it, so a
//!   transport runs in-process or as a sidecar by configuration only.
//!
//! Python nodes use the same codec and pipes between the runtime and one process per node
//! instance: see [`crate::python`].
//!
//! Design notes and measurements: `docs/ipc-design.md`; benchmarks: `docs/benchmarks.md`.

mod client;
pub mod codec;
mod inbox;
pub mod link;
pub mod liveness;
mod mux;
pub mod pipe;
mod refusal;
mod worker;

pub use client::{ClientOptions, IpcRunner, IpcSession};
pub use link::{LinkName, LinkNameError};
pub use worker::{Worker, WorkerError, WorkerHandle, WorkerOptions};
