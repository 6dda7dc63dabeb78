//! A gRPC session held open by a test: one 100 ms window at a time, each answered by its level
//! event before the next, so a lost frame or an error fails the test where it happens.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use remotemedia_grpc::convert::item_to_wire;
use remotemedia_grpc::pb::pipeline_service_client::PipelineServiceClient;
use remotemedia_grpc::pb::{self, stream_request, stream_response};
use remotemedia_runtime_core::{AudioBuffer, RuntimeData, TransportData};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::support::WAIT;

/// A gRPC session held open by this test: frames go in, level events come back.
pub struct OpenSession {
    tx: mpsc::Sender<pb::StreamRequest>,
    responses: tonic::Streaming<pb::StreamResponse>,
    pub sent: u64,
    levels: u64,
}

impl OpenSession {
    /// Opens a session through `addr`, retrying UNAVAILABLE (and refused connections) as gRPC
    /// clients do: during a rollout kube-proxy can still send a new connection to a
    /// terminating pod for the moment its endpoint takes to disappear, and that pod refuses
    /// new sessions with UNAVAILABLE instead of serving the old manifest.
    pub async fn open(addr: SocketAddr) -> (Self, pb::Ready) {
        let deadline = Instant::now() + WAIT;
        loop {
            match Self::try_open(addr).await {
                Ok(opened) => return opened,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("    opening a session: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no session through {addr} within {WAIT:?}: {e}"),
            }
        }
    }

    pub async fn try_open(addr: SocketAddr) -> Result<(Self, pb::Ready), String> {
        let mut client = PipelineServiceClient::connect(format!("http://{addr}"))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (tx, rx) = mpsc::channel(16);
        tx.send(pb::StreamRequest {
            kind: Some(stream_request::Kind::Open(pb::Open::default())),
        })
        .await
        .expect("open");
        let mut responses = match client.stream(ReceiverStream::new(rx)).await {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == tonic::Code::Unavailable => {
                return Err(format!("{status:?}"));
            }
            Err(status) => panic!("opening a stream: {status:?}"),
        };
        let ready = match responses.message().await {
            Ok(Some(pb::StreamResponse {
                kind: Some(stream_response::Kind::Ready(ready)),
            })) => ready,
            Err(status) if status.code() == tonic::Code::Unavailable => {
                return Err(format!("{status:?}"));
            }
            other => panic!("expected ready, got {other:?}"),
        };
        let session = Self {
            tx,
            responses,
            sent: 0,
            levels: 0,
        };
        Ok((session, ready))
    }

    /// Sends one 100 ms window and waits for its level event.
    pub async fn round(&mut self) {
        let samples: Vec<f32> = vec![0.25; 4_800];
        let item = TransportData::new(RuntimeData::Audio(AudioBuffer::new(samples, 48_000, 1)))
            .with_sequence(self.sent);
        self.tx
            .send(pb::StreamRequest {
                kind: Some(stream_request::Kind::Input(item_to_wire(&item))),
            })
            .await
            .expect("send a frame");
        self.sent += 1;
        while self.levels < self.sent {
            match self.next().await {
                stream_response::Kind::Result(r) if r.node_id == "level" => self.levels += 1,
                stream_response::Kind::Result(_) => {}
                other => panic!("mid-stream: {other:?}"),
            }
        }
    }

    async fn next(&mut self) -> stream_response::Kind {
        tokio::time::timeout(Duration::from_secs(30), self.responses.message())
            .await
            .expect("a response within 30 s")
            .unwrap_or_else(|status| panic!("the session failed: {status:?}"))
            .expect("a response, not the end")
            .kind
            .expect("a kind")
    }

    /// Ends the input; the session must close as completed.
    pub async fn finish(mut self) -> String {
        self.tx
            .send(pb::StreamRequest {
                kind: Some(stream_request::Kind::EndInput(pb::EndInput {})),
            })
            .await
            .expect("end input");
        loop {
            if let stream_response::Kind::Closed(closed) = self.next().await {
                return closed.reason;
            }
        }
    }
}
