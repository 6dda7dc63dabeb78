//! Benchmark clients: str0m peer connections (full ICE, the controlling side, as a browser is)
//! that send a pre-encoded Opus stream of silence with a 100 ms tone burst every second, and
//! time each burst's return. Many peers are driven by one thread, each on its own UDP socket.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

/// One second of stream: 5 packets of a half-scale 440 Hz tone, then 45 of silence.
pub(crate) const PACKETS_PER_CYCLE: usize = 50;
const BURST_PACKETS: usize = 5;
/// Returned audio louder than this (RMS) is the burst coming back.
const DETECT_RMS: f32 = 0.05;

/// The stream every peer sends, encoded once.
pub(crate) fn encoded_cycle() -> Vec<Vec<u8>> {
    let mut encoder =
        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    encoder.set_bitrate(opus::Bitrate::Bits(32_000)).unwrap();
    (0..PACKETS_PER_CYCLE)
        .map(|p| {
            let frame: Vec<f32> = (0..960)
                .map(|i| {
                    if p < BURST_PACKETS {
                        let t = (p * 960 + i) as f32 / 48_000.0;
                        0.5 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                    } else {
                        0.0
                    }
                })
                .collect();
            encoder.encode_vec_float(&frame, 4_000).unwrap()
        })
        .collect()
}

/// A client peer connection.
pub(crate) struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    mid: Mid,
    pending: Option<SdpPendingOffer>,
    connected: bool,
    wake_at: Instant,
    sent: usize,
    started: Option<Instant>,
    decoder: opus::Decoder,
    /// When the burst now travelling was sent, until its return is seen.
    burst_sent_at: Option<Instant>,
    /// Round trips of the bursts, milliseconds.
    pub(crate) latencies_ms: Vec<f64>,
    pub(crate) events: usize,
}

impl Peer {
    /// A peer with its offer (SDP text).
    pub(crate) fn new() -> (Self, String) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let local = socket.local_addr().unwrap();
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        api.add_channel("events".to_owned());
        let (offer, pending) = api.apply().unwrap();
        let peer = Self {
            rtc,
            socket,
            local,
            mid,
            pending: Some(pending),
            connected: false,
            wake_at: Instant::now(),
            sent: 0,
            started: None,
            decoder: opus::Decoder::new(48_000, opus::Channels::Mono).unwrap(),
            burst_sent_at: None,
            latencies_ms: Vec::new(),
            events: 0,
        };
        (peer, offer.to_sdp_string())
    }

    pub(crate) fn accept(&mut self, answer: &str) {
        let answer = SdpAnswer::from_sdp_string(answer).unwrap();
        let pending = self.pending.take().unwrap();
        self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
    }

    pub(crate) fn connected(&self) -> bool {
        self.connected
    }

    /// Reads what arrived, sends audio that is due, runs timers. Call every millisecond or so.
    pub(crate) fn step(&mut self, cycle: &[Vec<u8>], streaming: bool) {
        let mut buf = [0u8; 2_000];
        loop {
            match self.socket.recv_from(&mut buf) {
                Ok((n, source)) => {
                    let Ok(contents) = buf[..n].try_into() else {
                        continue;
                    };
                    let input = Input::Receive(
                        Instant::now(),
                        Receive {
                            proto: Protocol::Udp,
                            source,
                            destination: self.local,
                            contents,
                        },
                    );
                    self.rtc.handle_input(input).unwrap();
                    self.drain();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("client socket: {e}"),
            }
        }
        let now = Instant::now();
        if self.connected && streaming {
            let started = *self.started.get_or_insert(now);
            while started + Duration::from_millis(20 * self.sent as u64) <= now {
                self.send_packet(cycle);
            }
        }
        if self.wake_at <= now {
            self.rtc.handle_input(Input::Timeout(now)).unwrap();
        }
        self.drain();
    }

    fn send_packet(&mut self, cycle: &[Vec<u8>]) {
        let index = self.sent % PACKETS_PER_CYCLE;
        let writer = self.rtc.writer(self.mid).unwrap();
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .unwrap()
            .pt();
        let time = MediaTime::new(self.sent as u64 * 960, Frequency::FORTY_EIGHT_KHZ);
        writer
            .write(pt, Instant::now(), time, cycle[index].as_slice())
            .unwrap();
        if index == 0 {
            self.burst_sent_at = Some(Instant::now());
        }
        self.sent += 1;
        self.drain();
    }

    fn drain(&mut self) {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(at) => {
                    self.wake_at = at;
                    return;
                }
                Output::Transmit(t) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::ChannelData(_)) => self.events += 1,
                Output::Event(Event::MediaData(data)) => {
                    let mut pcm = [0f32; 5_760];
                    let Ok(n) = self.decoder.decode_float(&data.data, &mut pcm, false) else {
                        continue;
                    };
                    let rms = (pcm[..n].iter().map(|s| s * s).sum::<f32>() / n as f32).sqrt();
                    if rms > DETECT_RMS
                        && let Some(at) = self.burst_sent_at.take()
                    {
                        self.latencies_ms.push(at.elapsed().as_secs_f64() * 1_000.0);
                    }
                }
                Output::Event(_) => {}
            }
        }
    }
}

/// A WHIP POST: the time it took, the status, the Location and the body.
pub(crate) fn post_offer(http: SocketAddr, offer: &str) -> (Duration, u16, String, String) {
    post_offer_over(None, http, offer)
}

/// [`post_offer`], over TLS with `tls` (the server's certificate names `localhost`).
pub(crate) fn post_offer_over(
    tls: Option<&Arc<rustls::ClientConfig>>,
    http: SocketAddr,
    offer: &str,
) -> (Duration, u16, String, String) {
    let started = Instant::now();
    let (status, headers, body) = request_over(tls, http, "POST", "/whip", offer);
    let location = headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or(l.strip_prefix("Location: "))
        })
        .unwrap_or_default()
        .to_owned();
    (started.elapsed(), status, location, body)
}

/// One HTTP/1.1 request on a fresh connection: status, raw headers, body.
pub(crate) fn request(
    http: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String, String) {
    request_over(None, http, method, path, body)
}

/// [`request`], over TLS with `tls`: a new connection, so a full handshake, each time (as a
/// WHIP client makes one request per session).
pub(crate) fn request_over(
    tls: Option<&Arc<rustls::ClientConfig>>,
    http: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String, String) {
    let tcp = TcpStream::connect(http).unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut stream: Box<dyn ReadWrite> = match tls {
        None => Box::new(tcp),
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let connection = rustls::ClientConnection::new(config.clone(), name).unwrap();
            Box::new(rustls::StreamOwned::new(connection, tcp))
        }
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    // A TLS server may close without close_notify after `Connection: close`; what was read
    // is the whole response either way.
    if let Err(e) = stream.read_to_end(&mut raw) {
        assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "{e}");
    }
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}
