//! The one task that owns the UDP socket and every peer connection.
//!
//! str0m is sans-IO: a peer connection ([`Rtc`]) is a state machine fed datagrams and clock
//! ticks, which hands back datagrams to send, its next deadline and events. So all sessions
//! share one socket: an incoming datagram goes to the peer whose address it last came from,
//! or, from a new address, to the peer named by its STUN check's username (the server's ICE
//! ufrag), each a map lookup; that is what lets a pod expose a single UDP port. Datagrams from
//! unknown addresses are looked at within a budget (`UNKNOWN_PER_SECOND`), so noise on the
//! public port costs bounded CPU however many peers there are.
//!
//! The engine does network work only. Codec and pipeline work happen in each session's own
//! task (`bridge`), which gets the peer's Opus payloads through a bounded channel and sends
//! packets and events back as commands. A session that cannot keep up loses media
//! (counted), never stalls the other peers.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::ice::StunMessage;
use str0m::media::{Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::codec::Packet;
use crate::metrics::Metrics;

/// The engine's name for a peer.
pub(crate) type PeerKey = u64;

/// The label of the data channel that carries non-audio outputs.
pub const EVENTS_CHANNEL: &str = "events";
/// Events kept for a peer whose `events` channel is not open yet.
const QUEUED_EVENTS_MAX: usize = 256;
/// Media and events waiting for a session's task; beyond this the peer's newest audio is
/// dropped (one second of 20 ms packets).
pub(crate) const TO_SESSION_CAPACITY: usize = 50;
/// A UDP datagram is at most this big on the networks we run on (str0m's MTU is below it).
const DATAGRAM_MAX: usize = 2_000;
/// Datagrams from addresses no peer uses that the engine looks at per second (a new peer
/// sends a few ICE checks a second until one succeeds); more are dropped unread.
pub(crate) const UNKNOWN_PER_SECOND: f64 = 2_000.0;
/// How many such datagrams may come at once within that rate.
const UNKNOWN_BURST: f64 = 400.0;

/// What a session's task hears from its peer.
#[derive(Debug)]
pub(crate) enum PeerEvent {
    /// ICE and DTLS are up: media flows.
    Connected,
    /// One Opus payload and its extended RTP sequence number.
    Audio { seq: u64, payload: Arc<[u8]> },
    /// The peer connection is gone; nothing more follows.
    Ended(EndReason),
}

/// Why a peer connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The client sent `DELETE` on the session's resource.
    Deleted,
    /// ICE did not connect in time after the answer was sent.
    NeverConnected,
    /// The client stopped answering (ICE consent lost) or closed the connection.
    Disconnected,
    /// The session's pipeline ended (drained, or failed as a whole).
    PipelineEnded,
    /// The peer connection failed (a protocol error on its DTLS, SCTP or RTP).
    Failed,
}

impl EndReason {
    /// A short label, for metrics and logs.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Deleted => "deleted",
            Self::NeverConnected => "never_connected",
            Self::Disconnected => "disconnected",
            Self::PipelineEnded => "pipeline_ended",
            Self::Failed => "failed",
        }
    }
}

/// What the engine is asked to do.
#[derive(Debug)]
pub(crate) enum Command {
    /// Take over a peer connection whose answer was just made.
    Add(Box<NewPeer>),
    /// Close a peer connection; its session hears `reason`.
    Remove { key: PeerKey, reason: EndReason },
    /// Send one Opus packet to a peer.
    Audio { key: PeerKey, packet: Packet },
    /// Send one JSON text on a peer's `events` channel.
    Event { key: PeerKey, json: String },
}

/// A peer connection handed to the engine.
#[derive(Debug)]
pub(crate) struct NewPeer {
    pub(crate) key: PeerKey,
    pub(crate) rtc: Rtc,
    pub(crate) to_session: mpsc::Sender<PeerEvent>,
    /// Remove the peer if ICE has not connected by then.
    pub(crate) connect_by: Instant,
}

/// A handle on the running engine.
#[derive(Clone, Debug)]
pub(crate) struct EngineHandle {
    commands: mpsc::Sender<Command>,
}

impl EngineHandle {
    /// Sends a command; false when the engine has stopped.
    pub(crate) async fn send(&self, command: Command) -> bool {
        self.commands.send(command).await.is_ok()
    }
}

/// Starts the engine on `socket`. Datagrams to peers are addressed from `advertised` (the
/// address in the peers' ICE candidate, which may differ from the socket's bind address
/// behind NAT or on `0.0.0.0`). The engine stops when every handle is dropped.
pub(crate) fn spawn(
    socket: UdpSocket,
    advertised: SocketAddr,
    metrics: Arc<Metrics>,
) -> (EngineHandle, tokio::task::JoinHandle<()>) {
    let (commands, inbox) = mpsc::channel(4_096);
    let engine = Engine {
        socket,
        advertised,
        metrics,
        peers: HashMap::new(),
        by_source: HashMap::new(),
        by_ufrag: HashMap::new(),
        unknown: Budget::new(UNKNOWN_PER_SECOND, UNKNOWN_BURST),
    };
    let task = tokio::spawn(engine.run(inbox));
    (EngineHandle { commands }, task)
}

struct Engine {
    socket: UdpSocket,
    advertised: SocketAddr,
    metrics: Arc<Metrics>,
    peers: HashMap<PeerKey, Peer>,
    /// Where datagrams last came from for each peer: the fast path of demultiplexing.
    by_source: HashMap<SocketAddr, PeerKey>,
    /// Each peer by its local ICE ufrag, the first half of its STUN checks' username.
    by_ufrag: HashMap<String, PeerKey>,
    /// What datagrams from unknown addresses may still cost.
    unknown: Budget,
}

/// A token bucket: `rate` a second, at most `burst` at once.
struct Budget {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Budget {
    fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let earned = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Peer {
    rtc: Rtc,
    to_session: mpsc::Sender<PeerEvent>,
    /// When the peer next needs a clock tick.
    wake_at: Instant,
    connect_by: Option<Instant>,
    audio: Option<Mid>,
    opus: Option<Pt>,
    events: Option<ChannelId>,
    queued_events: VecDeque<String>,
    /// Set when the peer must go; it is removed after the current step.
    ended: Option<EndReason>,
}

impl Engine {
    async fn run(mut self, mut inbox: mpsc::Receiver<Command>) {
        let mut buf = vec![0u8; DATAGRAM_MAX];
        loop {
            let wake_at = self.next_wake();
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, source)) => self.on_datagram(source, &buf[..n]),
                    // Unconnected UDP sockets get no per-peer errors; anything here is
                    // transient (a signal, an ICMP report on some kernels).
                    Err(e) => tracing::debug!(error = %e, "UDP receive"),
                },
                command = inbox.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                () = tokio::time::sleep_until(wake_at.into()) => self.on_clock(),
            }
            self.reap();
        }
        for (_, peer) in self.peers.drain() {
            let _ = peer
                .to_session
                .try_send(PeerEvent::Ended(EndReason::Failed));
        }
    }

    fn next_wake(&self) -> Instant {
        let idle = Instant::now() + Duration::from_secs(1);
        self.peers
            .values()
            .map(|p| p.connect_by.map_or(p.wake_at, |c| c.min(p.wake_at)))
            .fold(idle, Instant::min)
    }

    fn on_datagram(&mut self, source: SocketAddr, data: &[u8]) {
        let Ok(contents) = data.try_into() else {
            // Not STUN, DTLS or RTP: someone else's traffic on our port.
            self.metrics.datagrams_ignored.inc();
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.advertised,
                contents,
            },
        );
        let known = self
            .by_source
            .get(&source)
            .copied()
            .filter(|key| self.peers.get(key).is_some_and(|p| p.rtc.accepts(&input)));
        let key = match known {
            Some(key) => Some(key),
            None if !self.unknown.take(Instant::now()) => {
                self.metrics.datagrams_rate_limited.inc();
                return;
            }
            // From a new address only an ICE check can start (or move) a peer: find the peer
            // its username names. Media from an address no check came from is not ours.
            None => StunMessage::parse(data)
                .ok()
                .and_then(|stun| {
                    let (local, _remote) = stun.split_username()?;
                    self.by_ufrag.get(local).copied()
                })
                .filter(|key| self.peers.get(key).is_some_and(|p| p.rtc.accepts(&input))),
        };
        let Some(key) = key else {
            // Common for a few packets: the client's first STUN checks can race the answer.
            self.metrics.datagrams_ignored.inc();
            return;
        };
        self.by_source.insert(source, key);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if let Err(e) = peer.rtc.handle_input(input) {
            tracing::debug!(peer = key, error = %e, "peer input failed");
            peer.ended = Some(EndReason::Failed);
            return;
        }
        peer.drive(&self.socket, &self.metrics);
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Add(new) => {
                let NewPeer {
                    key,
                    rtc,
                    to_session,
                    connect_by,
                } = *new;
                let mut peer = Peer {
                    rtc,
                    to_session,
                    wake_at: Instant::now(),
                    connect_by: Some(connect_by),
                    audio: None,
                    opus: None,
                    events: None,
                    queued_events: VecDeque::new(),
                    ended: None,
                };
                let ufrag = peer.rtc.direct_api().local_ice_credentials().ufrag;
                self.by_ufrag.insert(ufrag, key);
                peer.drive(&self.socket, &self.metrics);
                self.peers.insert(key, peer);
            }
            Command::Remove { key, reason } => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.ended = Some(reason);
                }
            }
            Command::Audio { key, packet } => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.send_audio(&packet, &self.metrics);
                    peer.drive(&self.socket, &self.metrics);
                }
            }
            Command::Event { key, json } => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.send_event(json, &self.metrics);
                    peer.drive(&self.socket, &self.metrics);
                }
            }
        }
    }

    fn on_clock(&mut self) {
        let now = Instant::now();
        for peer in self.peers.values_mut() {
            if peer.connect_by.is_some_and(|by| by <= now) {
                peer.ended = Some(EndReason::NeverConnected);
                continue;
            }
            if peer.wake_at <= now {
                if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
                    tracing::debug!(error = %e, "peer clock tick failed");
                    peer.ended = Some(EndReason::Failed);
                    continue;
                }
                peer.drive(&self.socket, &self.metrics);
            }
        }
    }

    /// Removes the peers that ended, telling their sessions why.
    fn reap(&mut self) {
        let ended: Vec<(PeerKey, EndReason)> = self
            .peers
            .iter()
            .filter_map(|(key, p)| {
                let reason = p
                    .ended
                    .or_else(|| (!p.rtc.is_alive()).then_some(EndReason::Disconnected))?;
                Some((*key, reason))
            })
            .collect();
        for (key, reason) in ended {
            let Some(mut peer) = self.peers.remove(&key) else {
                continue;
            };
            peer.rtc.disconnect();
            self.by_source.retain(|_, k| *k != key);
            self.by_ufrag.retain(|_, k| *k != key);
            // The session's task may be full of media; the end must still reach it.
            let to_session = peer.to_session.clone();
            tokio::spawn(async move {
                let _ = to_session.send(PeerEvent::Ended(reason)).await;
            });
        }
    }
}

impl Peer {
    /// Runs the peer's state machine until it waits for input or time: sends what it
    /// transmits, handles its events.
    fn drive(&mut self, socket: &UdpSocket, metrics: &Metrics) {
        while self.ended.is_none() {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    self.wake_at = at;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    // UDP sends do not block short of a full socket buffer; dropping then is
                    // what the network would do.
                    if socket.try_send_to(&t.contents, t.destination).is_err() {
                        metrics.datagrams_send_failed.inc();
                    }
                }
                Ok(Output::Event(event)) => self.on_event(event, metrics),
                Err(e) => {
                    tracing::debug!(error = %e, "peer failed");
                    self.ended = Some(EndReason::Failed);
                }
            }
        }
    }

    fn on_event(&mut self, event: Event, metrics: &Metrics) {
        match event {
            Event::Connected => {
                self.connect_by = None;
                let _ = self.to_session.try_send(PeerEvent::Connected);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.ended = Some(EndReason::Disconnected);
            }
            Event::MediaAdded(added) if added.kind == MediaKind::Audio => {
                self.audio.get_or_insert(added.mid);
            }
            Event::MediaData(data) if Some(data.mid) == self.audio => {
                metrics.packets_received.inc();
                let seq = **data.seq_range.end();
                let event = PeerEvent::Audio {
                    seq,
                    payload: data.data,
                };
                match self.to_session.try_send(event) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => metrics.packets_dropped.inc(),
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        self.ended = Some(EndReason::PipelineEnded);
                    }
                }
            }
            Event::ChannelOpen(id, label) if label == EVENTS_CHANNEL => {
                self.events = Some(id);
                while let Some(json) = self.queued_events.pop_front() {
                    self.write_event(&json, metrics);
                }
            }
            Event::ChannelClose(id) if Some(id) == self.events => self.events = None,
            _ => {}
        }
    }

    fn send_audio(&mut self, packet: &Packet, metrics: &Metrics) {
        let Some(mid) = self.audio else {
            // The offer had no audio we can send on (checked at POST, so only before
            // negotiation completes).
            metrics.packets_dropped.inc();
            return;
        };
        let Some(writer) = self.rtc.writer(mid) else {
            metrics.packets_dropped.inc();
            return;
        };
        let pt = match self.opus {
            Some(pt) => pt,
            None => {
                let Some(pt) = writer
                    .payload_params()
                    .find(|p| p.spec().codec == Codec::Opus)
                    .map(str0m::format::PayloadParams::pt)
                else {
                    metrics.packets_dropped.inc();
                    return;
                };
                self.opus = Some(pt);
                pt
            }
        };
        let time = MediaTime::new(packet.rtp_time, Frequency::FORTY_EIGHT_KHZ);
        match writer.write(pt, Instant::now(), time, packet.payload.as_slice()) {
            Ok(()) => metrics.packets_sent.inc(),
            Err(e) => {
                tracing::debug!(error = %e, "audio write");
                metrics.packets_dropped.inc();
            }
        }
    }

    fn send_event(&mut self, json: String, metrics: &Metrics) {
        if self.events.is_some() {
            self.write_event(&json, metrics);
        } else if self.queued_events.len() < QUEUED_EVENTS_MAX {
            self.queued_events.push_back(json);
        } else {
            metrics.events_dropped.inc();
        }
    }

    fn write_event(&mut self, json: &str, metrics: &Metrics) {
        let Some(mut channel) = self.events.and_then(|id| self.rtc.channel(id)) else {
            metrics.events_dropped.inc();
            return;
        };
        match channel.write(false, json.as_bytes()) {
            Ok(true) => metrics.events_sent.inc(),
            // Not written: the channel's buffer is full (a client that stopped reading).
            Ok(false) | Err(_) => metrics.events_dropped.inc(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_allows_its_burst_then_its_rate() {
        let start = Instant::now();
        let mut budget = Budget::new(1_000.0, 10.0);
        budget.last = start;
        let allowed = (0..100).filter(|_| budget.take(start)).count();
        assert_eq!(allowed, 10, "the burst, then nothing at the same instant");
        let later = start + Duration::from_millis(50);
        let allowed = (0..100).filter(|_| budget.take(later)).count();
        assert_eq!(allowed, 10, "50 ms at 1000/s earns 50, capped at the burst");
    }
}
