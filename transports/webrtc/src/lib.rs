//! # remotemedia-webrtc
//!
//! The WebRTC transport of RemoteMedia: browsers and WebRTC clients stream microphone audio
//! into a pipeline and get its results back on the same peer connection. Built on
//! runtime-core's traits only; the pipeline runs in this process or in the pod's worker
//! (any [`remotemedia_runtime_core::PipelineTransport`]).
//!
//! * Signalling: WHIP (RFC 9725), used both ways ([`whip`]). `POST /whip` with the offer,
//!   `201` with the answer and the session's `Location`, `DELETE` to end it. WHIP is defined
//!   for ingest; we answer the offer's audio `sendrecv`, so the pipeline's audio output
//!   plays back to the client on the same connection (Pipecat's SmallWebRTC does the same
//!   over its own endpoints). Non-audio outputs (JSON, text, errors) arrive as JSON objects
//!   naming the producing node (`node_id`) on the data channel labelled `events`, which the
//!   client opens in its offer.
//! * Media ([`codec`]): Opus in, decoded to 48 kHz mono items for the pipeline; the
//!   pipeline's audio encoded back to Opus in 20 ms packets, paced in real time.
//! * Network ([`engine`]): one UDP socket for every session, one task driving every peer
//!   connection.
//!
//! # Why str0m, not webrtc-rs
//!
//! `str0m` (0.25) rather than `webrtc` (0.21), after comparing the two stacks:
//!
//! * Sans-IO: a peer connection is a state machine we feed datagrams and time. All
//!   sessions then share one UDP socket, demultiplexed by ICE credentials, which is what a
//!   Kubernetes pod can expose (one UDP port in a Service, not a port range). With webrtc-rs
//!   each peer connection owns its sockets and tasks.
//! * A stable core API (`Rtc`, `poll_output`, `handle_input`) across its releases, where
//!   webrtc-rs broke its API three times in 2026 (0.17, 0.20, 0.21) and calls 0.21 the
//!   run-up to a stable 1.0.
//! * In production as a server (Lookback's SFU), the role we have.
//!
//! What we give up: webrtc-rs's W3C-shaped API and its interceptors. Neither crate has a
//! jitter buffer or a codec; Opus is libopus via `opus` 0.3.1 (Debian's `libopus-dev`),
//! the reference implementation and the fastest measured (730x real time decoding).
//!
//! The server is ICE-lite: it answers with one host candidate (`--advertise` IP, the UDP
//! port) and learns each client's address from its connectivity checks, so clients need
//! no trickle ICE and `PATCH` is answered 405.

mod bridge;
pub mod codec;
pub mod engine;
pub mod ice;
pub mod metrics;
pub mod offer;
pub mod replicas;
pub mod whip;

pub use engine::{EVENTS_CHANNEL, EndReason};
pub use ice::{CredentialError, CredentialText, IceCredentials, IceServer};
pub use replicas::{ForwardError, Owner, Replicas};
pub use whip::{StartError, WhipOptions, WhipServer};
