//! The wire format: one JSON object per line.
//!
//! Client to server:
//!
//! ```text
//! {"open": {"manifest": {...}}}     optional first line: run this manifest (if allowed)
//! {"data": {"type": "text", "data": "hi"}, "sequence": 7, "metadata": {"k": "v"}}
//! {"end": true}                     no more input (closing the write side does the same)
//! ```
//!
//! Server to client: the session's outputs as the runtime serializes them, plus framing:
//!
//! ```text
//! {"kind": "ready", "session_id": "..."}
//! {"kind": "data", "node_id": "n", "data": {"type": "text", "data": "hi"}, "sequence": 7}
//! {"kind": "error", "node_id": "n", "sequence": 8, "message": "..."}
//! {"kind": "invalid", "line": 3, "message": "..."}      a line that could not be used
//! {"kind": "closed", "reason": "completed"}            last line; "failed: ..." otherwise
//! ```
//!
//! Data items use the runtime's own serde form of `TransportData`, so every data kind
//! (audio, text, JSON, binary, tensor) crosses without a line of conversion code.

use remotemedia_runtime_core::{SessionOutput, TransportData};
use serde::{Deserialize, Serialize};

/// One line from the client.
#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ClientLine {
    /// Opens the session with the client's manifest (only as the first line).
    Open {
        /// `{"manifest": ...}`
        open: OpenRequest,
    },
    /// No more input.
    End {
        /// Always `true`.
        end: bool,
    },
    /// One input item.
    Data(TransportData),
}

/// What an `open` line carries.
#[derive(Debug, Deserialize, Serialize)]
pub struct OpenRequest {
    /// A manifest (JSON), or a `Pipeline` resource.
    pub manifest: serde_json::Value,
}

/// One line from the server.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ServerLine {
    /// The session is open.
    Ready {
        /// Its id.
        session_id: String,
    },
    /// A node's output.
    Data {
        /// Producing node.
        node_id: String,
        /// The output, with the sequence and metadata of its input.
        #[serde(flatten)]
        data: TransportData,
    },
    /// A node failed on one item; the session goes on.
    Error {
        /// Failing node.
        node_id: String,
        /// Sequence of the input.
        sequence: Option<u64>,
        /// What went wrong.
        message: String,
    },
    /// Line `line` of the client could not be used; the session goes on.
    Invalid {
        /// 1-based line number on this connection.
        line: u64,
        /// Why.
        message: String,
    },
    /// The last line: `completed`, or why the session ended otherwise.
    Closed {
        /// `completed`, `failed: ...`, `shutdown`.
        reason: String,
    },
}

impl From<SessionOutput> for ServerLine {
    fn from(output: SessionOutput) -> Self {
        match output {
            SessionOutput::Data { node_id, data } => Self::Data { node_id, data },
            SessionOutput::Error(f) => Self::Error {
                node_id: f.node_id,
                sequence: f.sequence,
                message: f.message,
            },
        }
    }
}
