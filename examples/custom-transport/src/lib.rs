//! # A transport of your own: JSON Lines over a Unix socket
//!
//! RemoteMedia's transports (gRPC, WebRTC, Python) are built on two traits of
//! `remotemedia-runtime-core`, and so can yours. This crate is a small but complete one: each
//! connection to a Unix socket is a streaming session, one JSON object per line each way.
//!
//! * [`server::serve`] is the transport: it takes a listener, anything implementing
//!   [`PipelineTransport`](remotemedia_runtime_core::PipelineTransport) (the in-process
//!   `PipelineRunner`, or the pod link's `IpcRunner` to reach a worker in another process) and
//!   a shutdown signal. Per connection it opens a session with `open` (the served pipeline, or
//!   the client's manifest checked against the transport's `node_types`), feeds it with
//!   `send_input`, and writes what `recv_output` yields, in two tasks so a slow reader makes
//!   the pipeline wait instead of losing data.
//! * [`client::JsonlRunner`] is the other side, itself a `PipelineTransport`, which is how
//!   the conformance suite (crate `remotemedia-conformance`, `conformance/tests/jsonl.rs`)
//!   runs through the socket. Any language that can write JSON to a socket is a client too:
//!   `socat - UNIX-CONNECT:/tmp/rm.sock`.
//! * [`protocol`] is the wire format; bad lines are answered with an error naming the line
//!   and the session goes on.

pub mod client;
pub mod protocol;
pub mod server;
