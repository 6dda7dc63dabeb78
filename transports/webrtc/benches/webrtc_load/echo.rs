//! The baseline: a bare str0m peer (ICE-lite, like the server) that sends every Opus packet
//! straight back, with no decoding, pipeline, encoding or pacing. Its round trip is what
//! WebRTC itself costs on loopback; the server's minus this is what the pipeline path adds.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::Instant;

use str0m::change::SdpOffer;
use str0m::media::Mid;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

/// Starts the echo peer on a thread; returns its HTTP address (POST /whip takes an offer).
pub(crate) fn spawn() -> SocketAddr {
    let http = TcpListener::bind("127.0.0.1:0").unwrap();
    http.set_nonblocking(true).unwrap();
    let http_addr = http.local_addr().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    std::thread::spawn(move || run(&http, &udp));
    http_addr
}

struct EchoPeer {
    rtc: Rtc,
    audio: Option<Mid>,
}

fn run(http: &TcpListener, udp: &UdpSocket) {
    let local = udp.local_addr().unwrap();
    let mut peers: Vec<EchoPeer> = Vec::new();
    let mut buf = [0u8; 2_000];
    loop {
        if let Ok((mut stream, _)) = http.accept() {
            stream.set_nonblocking(false).unwrap();
            let offer = read_body(&mut stream);
            let mut rtc = Rtc::builder()
                .set_ice_lite(true)
                .clear_codecs()
                .enable_opus(true, false)
                .build(Instant::now());
            rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
            let offer = SdpOffer::from_sdp_string(&offer).unwrap();
            let answer = rtc.sdp_api().accept_offer(offer).unwrap().to_sdp_string();
            write!(
                stream,
                "HTTP/1.1 201 Created\r\nLocation: /whip/echo\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{answer}",
                answer.len()
            )
            .unwrap();
            peers.push(EchoPeer { rtc, audio: None });
        }
        let mut idle = true;
        loop {
            match udp.recv_from(&mut buf) {
                Ok((n, source)) => {
                    idle = false;
                    let Ok(contents) = buf[..n].try_into() else {
                        continue;
                    };
                    let input = Input::Receive(
                        Instant::now(),
                        Receive {
                            proto: Protocol::Udp,
                            source,
                            destination: local,
                            contents,
                        },
                    );
                    if let Some(peer) = peers.iter_mut().find(|p| p.rtc.accepts(&input)) {
                        peer.rtc.handle_input(input).unwrap();
                        drive(peer, udp);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("echo socket: {e}"),
            }
        }
        let now = Instant::now();
        for peer in &mut peers {
            peer.rtc.handle_input(Input::Timeout(now)).unwrap();
            drive(peer, udp);
        }
        if idle {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }
}

fn drive(peer: &mut EchoPeer, udp: &UdpSocket) {
    loop {
        match peer.rtc.poll_output().unwrap() {
            Output::Timeout(_) => return,
            Output::Transmit(t) => {
                let _ = udp.send_to(&t.contents, t.destination);
            }
            Output::Event(Event::MediaAdded(added)) => peer.audio = Some(added.mid),
            Output::Event(Event::MediaData(data)) => {
                let Some(mid) = peer.audio else { continue };
                let Some(writer) = peer.rtc.writer(mid) else {
                    continue;
                };
                let Some(pt) = writer.match_params(data.params) else {
                    continue;
                };
                let _ = writer.write(pt, Instant::now(), data.time, data.data);
            }
            Output::Event(_) => {}
        }
    }
}

fn read_body(stream: &mut std::net::TcpStream) -> String {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4_096];
    loop {
        let n = stream.read(&mut chunk).unwrap();
        raw.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&raw);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length || n == 0 {
                return body.to_owned();
            }
        }
        if n == 0 {
            return String::new();
        }
    }
}
