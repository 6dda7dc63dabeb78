//! One task per session, between its peer connection (in the engine) and its pipeline session:
//! Opus payloads are decoded into 48 kHz mono audio items for the pipeline; the pipeline's
//! audio comes back encoded and paced in real time, its other outputs as JSON events.

use std::time::{Duration, Instant};

use remotemedia_runtime_core::{
    AudioBuffer, RuntimeData, SessionError, SessionOutput, StreamSession, TransportData,
};
use serde_json::json;
use tokio::sync::mpsc;

use crate::codec::{Decoding, Encoding, Packet, RTP_CLOCK_HZ};
use crate::engine::{Command, EndReason, EngineHandle, PeerEvent, PeerKey};

/// How far ahead of real time audio may be handed to the peer: a little, so packets are
/// never late, but not a burst a jitter buffer would have to absorb.
const SEND_LEAD: Duration = Duration::from_millis(60);
/// Further behind real time than this, the output clock starts again from now instead of
/// bursting to catch up (the pipeline stalled, or produced nothing for a while).
const RESYNC_AFTER: Duration = Duration::from_millis(200);

/// Runs the session until its peer or its pipeline ends; returns why it ended.
pub(crate) async fn run(
    key: PeerKey,
    session: Box<dyn StreamSession>,
    from_peer: mpsc::Receiver<PeerEvent>,
    engine: EngineHandle,
) -> EndReason {
    let session = &*session;
    let to_peer = ToPeer {
        key,
        engine: &engine,
    };
    let inputs = forward_inputs(session, from_peer, &to_peer);
    let outputs = forward_outputs(session, &to_peer);
    tokio::pin!(inputs, outputs);
    let reason = tokio::select! {
        reason = &mut inputs => {
            // The peer is gone and the session closed: its outputs end now (the session
            // contract). Bounded anyway, so a backend that breaks it cannot hold a slot.
            if tokio::time::timeout(CLOSE_GRACE, &mut outputs).await.is_err() {
                tracing::warn!("the session's outputs did not end after close; abandoned");
            }
            reason
        }
        () = &mut outputs => inputs.await,
    };
    session.close().await;
    reason
}

/// How long a closed session's outputs may take to end.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

struct ToPeer<'a> {
    key: PeerKey,
    engine: &'a EngineHandle,
}

impl ToPeer<'_> {
    async fn event(&self, json: String) {
        let key = self.key;
        self.engine.send(Command::Event { key, json }).await;
    }

    async fn audio(&self, packet: Packet) {
        let key = self.key;
        self.engine.send(Command::Audio { key, packet }).await;
    }

    /// An event about the transport itself (not a node's output), in the shape of a
    /// session error so clients handle both alike.
    async fn transport_error(&self, message: String) {
        let json = json!({"kind": "transport_error", "message": message}).to_string();
        self.event(json).await;
    }
}

/// Peer audio into the pipeline, until the peer ends. Then the session is closed, which ends
/// the outputs too.
async fn forward_inputs(
    session: &dyn StreamSession,
    mut from_peer: mpsc::Receiver<PeerEvent>,
    to_peer: &ToPeer<'_>,
) -> EndReason {
    let mut decoding = match Decoding::new() {
        Ok(d) => d,
        Err(e) => {
            to_peer.transport_error(e.to_string()).await;
            session.close().await;
            return EndReason::Failed;
        }
    };
    let mut frames_sent: u64 = 0;
    let mut reported_bad_packet = false;
    let mut pipeline_accepts = true;
    let reason = loop {
        let Some(event) = from_peer.recv().await else {
            break EndReason::Failed;
        };
        let (seq, payload) = match event {
            PeerEvent::Connected => continue,
            PeerEvent::Ended(reason) => break reason,
            PeerEvent::Audio { seq, payload } => (seq, payload),
        };
        if !pipeline_accepts {
            continue;
        }
        let samples = match decoding.decode(seq, &payload) {
            Ok(samples) if samples.is_empty() => continue,
            Ok(samples) => samples,
            Err(e) => {
                // Said once: a client sending garbage sends a lot of it.
                if !reported_bad_packet {
                    reported_bad_packet = true;
                    let msg = format!("audio packet {seq} could not be decoded ({e}); skipped");
                    to_peer.transport_error(msg).await;
                }
                continue;
            }
        };
        let frames = samples.len() as u64;
        let audio = AudioBuffer::new(samples, RTP_CLOCK_HZ, 1)
            .with_timestamp_us(frames_sent * 1_000_000 / u64::from(RTP_CLOCK_HZ));
        frames_sent += frames;
        match session
            .send_input(TransportData::new(RuntimeData::Audio(audio)))
            .await
        {
            Ok(()) => {}
            // The pipeline ended (its outputs say why); keep the peer until it is removed.
            Err(SessionError::InputEnded { .. } | SessionError::Closed { .. }) => {
                pipeline_accepts = false;
            }
            Err(e) => {
                to_peer.transport_error(e.to_string()).await;
                pipeline_accepts = false;
            }
        }
    };
    session.close().await;
    reason
}

/// Pipeline outputs to the peer, until the session ends; then the peer is removed.
async fn forward_outputs(session: &dyn StreamSession, to_peer: &ToPeer<'_>) {
    let mut encoding = Encoding::new();
    let mut pacer = Pacer::default();
    // The peer connection carries one audio track: the first node to produce audio has it.
    let mut track_owner: Option<String> = None;
    let mut refused_audio_from: Vec<String> = Vec::new();
    loop {
        let output = match session.recv_output().await {
            Ok(Some(output)) => output,
            Ok(None) => break,
            Err(e) => {
                to_peer.transport_error(e.to_string()).await;
                break;
            }
        };
        let (node_id, audio) = match &output {
            SessionOutput::Data { node_id, data } => match &data.data {
                RuntimeData::Audio(audio) => (node_id, audio),
                _ => {
                    to_peer.event(event_json(&output)).await;
                    continue;
                }
            },
            SessionOutput::Error(_) => {
                to_peer.event(event_json(&output)).await;
                continue;
            }
        };
        let owner = track_owner.get_or_insert_with(|| node_id.clone());
        if owner != node_id {
            if !refused_audio_from.contains(node_id) {
                refused_audio_from.push(node_id.clone());
                let msg = format!(
                    "audio from node '{node_id}' is not sent: the connection has one audio \
                     track, carrying node '{owner}'"
                );
                to_peer.transport_error(msg).await;
            }
            continue;
        }
        match encoding.push(node_id, audio) {
            Ok(packets) => {
                for packet in packets {
                    pacer.wait_for(packet.rtp_time).await;
                    to_peer.audio(packet).await;
                }
            }
            Err(e) => to_peer.transport_error(e.to_string()).await,
        }
    }
    let key = to_peer.key;
    let reason = EndReason::PipelineEnded;
    to_peer.engine.send(Command::Remove { key, reason }).await;
}

fn event_json(output: &SessionOutput) -> String {
    serde_json::to_string(output).unwrap_or_else(|e| {
        json!({"kind": "transport_error", "message": format!("output not serializable: {e}")})
            .to_string()
    })
}

/// Releases audio at the pace it plays: packet `t` (RTP time) not before `origin + t`, less
/// [`SEND_LEAD`].
#[derive(Debug, Default)]
struct Pacer {
    /// The wall-clock time of RTP time 0.
    origin: Option<Instant>,
}

impl Pacer {
    async fn wait_for(&mut self, rtp_time: u64) {
        let offset = Duration::from_micros(rtp_time * 1_000_000 / u64::from(RTP_CLOCK_HZ));
        let now = Instant::now();
        let origin = *self
            .origin
            .get_or_insert_with(|| now.checked_sub(offset).unwrap_or(now));
        let due = origin + offset;
        if due + RESYNC_AFTER < now {
            // Far behind: start the clock again rather than burst.
            self.origin = now.checked_sub(offset);
            return;
        }
        if let Some(wait) = due.checked_duration_since(now + SEND_LEAD) {
            tokio::time::sleep(wait).await;
        }
    }
}
