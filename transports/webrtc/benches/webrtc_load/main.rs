//! `make bench-webrtc`: the `remotemedia-webrtc` server (release build, its own process, a
//! PassThrough pipeline) against str0m client peers on loopback, each figure beside a baseline
//! from the same run:
//!
//! 1. WHIP offer-to-answer time (p50 of 200 offers) vs a `GET /livez` on the same server (the
//!    HTTP floor).
//! 2. Round trip of a tone burst through the server and its PassThrough pipeline vs through a
//!    bare str0m echo peer (no codec, no pipeline): the difference is the latency the
//!    pipeline path adds.
//! 3. Server CPU per session with 50 sessions streaming both ways, vs the Opus work alone
//!    (decode and encode of the same audio in this process).
//!
//! Results go to docs/benchmarks.md by hand.

mod echo;
mod peer;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use peer::{Peer, encoded_cycle, post_offer, post_offer_over, request};

const LOAD_SESSIONS: usize = 50;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks; there is nothing to list.
    }
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("echo.yaml");
    std::fs::write(
        &manifest,
        "version: v1\nmetadata: { name: echo }\nnodes:\n  - { id: echo, node_type: PassThrough }\n",
    )
    .unwrap();
    let mut server = Server::start(&manifest);
    let cycle = encoded_cycle();

    println!("WebRTC benchmark (server pid {})\n", server.child.id());
    offer_to_answer(server.http);
    tls_offer_to_answer(&server, &manifest, dir.path());
    if std::env::var("WEBRTC_BENCH_ONLY").is_ok_and(|v| v == "tls") {
        let _ = server.child.kill();
        let _ = server.child.wait();
        return;
    }
    let echo = echo::spawn();
    let server_rtt = round_trip(server.http, &cycle);
    let echo_rtt = round_trip(echo, &cycle);
    println!(
        "round trip of a tone burst, one session (10 bursts): through the server's PassThrough \
         p50 {:.1} ms; bare str0m echo (baseline) p50 {:.1} ms; added by the pipeline path \
         {:.1} ms ({:.2}x)",
        median(&server_rtt),
        median(&echo_rtt),
        median(&server_rtt) - median(&echo_rtt),
        median(&server_rtt) / median(&echo_rtt)
    );
    load(&server, &cycle);
    let _ = server.child.kill();
    let _ = server.child.wait();
}

fn offer_to_answer(http: SocketAddr) {
    let mut answers = Vec::new();
    for _ in 0..200 {
        let (offer_peer, offer) = Peer::new();
        let (took, status, _, body) = post_offer(http, &offer);
        assert_eq!(status, 201, "{body}");
        answers.push(took.as_secs_f64() * 1_000.0);
        drop(offer_peer);
    }
    let mut floor = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let (status, _, _) = request(http, "GET", "/livez", "");
        assert_eq!(status, 200);
        floor.push(started.elapsed().as_secs_f64() * 1_000.0);
    }
    println!(
        "WHIP offer-to-answer (200 offers, new connection each): p50 {:.3} ms, p90 {:.3} ms; \
         GET /livez (baseline) p50 {:.3} ms; ratio {:.1}x",
        median(&answers),
        percentile(&answers, 0.9),
        median(&floor),
        median(&answers) / median(&floor)
    );
}

/// Offer-to-answer over https (a new connection, so a TLS handshake, per offer) against plain
/// http on `plain`, in alternating blocks of 50.
fn tls_offer_to_answer(plain: &Server, manifest: &std::path::Path, dir: &std::path::Path) {
    let ca = remotemedia_server::test_pki::TestCa::new("bench CA");
    let files = ca.write_server_files(dir, &["localhost"]);
    let mut tls_server = Server::start_with(
        manifest,
        &[
            "--tls-cert",
            files.cert.to_str().unwrap(),
            "--tls-key",
            files.key.to_str().unwrap(),
        ],
    );
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
        .unwrap();
    let config = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let (mut over_tls, mut over_plain) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        for (tls, http, into) in [
            (Some(&config), tls_server.http, &mut over_tls),
            (None, plain.http, &mut over_plain),
        ] {
            for _ in 0..50 {
                let (offer_peer, offer) = Peer::new();
                let (took, status, _, body) = post_offer_over(tls, http, &offer);
                assert_eq!(status, 201, "{body}");
                into.push(took.as_secs_f64() * 1_000.0);
                drop(offer_peer);
            }
        }
    }
    println!(
        "WHIP offer-to-answer over https (200 offers, new connection and TLS handshake each): \
         p50 {:.3} ms, p90 {:.3} ms; over http p50 {:.3} ms, p90 {:.3} ms; ratio {:.2}x",
        median(&over_tls),
        percentile(&over_tls, 0.9),
        median(&over_plain),
        percentile(&over_plain, 0.9),
        median(&over_tls) / median(&over_plain)
    );
    let _ = tls_server.child.kill();
    let _ = tls_server.child.wait();
}

/// Connects one peer to `http`, streams 11 s, returns the bursts' round trips.
fn round_trip(http: SocketAddr, cycle: &[Vec<u8>]) -> Vec<f64> {
    let mut peers = connect(http, 1);
    drive(&mut peers, cycle, Duration::from_secs(11));
    let latencies = std::mem::take(&mut peers[0].latencies_ms);
    assert!(latencies.len() >= 8, "bursts seen: {latencies:?}");
    latencies
}

fn load(server: &Server, cycle: &[Vec<u8>]) {
    let mut peers = connect(server.http, LOAD_SESSIONS);
    drive(&mut peers, cycle, Duration::from_secs(3));
    let cpu_before = server.cpu_seconds();
    let wall = Instant::now();
    drive(&mut peers, cycle, Duration::from_secs(10));
    let cores = (server.cpu_seconds() - cpu_before) / wall.elapsed().as_secs_f64();
    let per_session = cores / LOAD_SESSIONS as f64;
    let latencies: Vec<f64> = peers
        .iter()
        .flat_map(|p| p.latencies_ms.iter().copied().skip(3))
        .collect();
    let codec = opus_cost_per_session(cycle);
    println!(
        "{LOAD_SESSIONS} sessions streaming both ways: server {:.3} cores, {:.2}% of a core per \
         session; Opus decode+encode of the same audio (baseline) {:.2}% of a core; ratio \
         {:.2}x; burst round trip under load p50 {:.1} ms, p99 {:.1} ms ({} bursts)",
        cores,
        per_session * 100.0,
        codec * 100.0,
        per_session / codec,
        median(&latencies),
        percentile(&latencies, 0.99),
        latencies.len()
    );
}

/// CPU share of one core that decoding and re-encoding one session's audio takes.
fn opus_cost_per_session(cycle: &[Vec<u8>]) -> f64 {
    let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
    let mut encoder =
        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    encoder.set_bitrate(opus::Bitrate::Bits(32_000)).unwrap();
    let mut pcm = [0f32; 960];
    let mut out = [0u8; 4_000];
    let packets = 500; // 10 s of audio
    let started = cpu_time::ThreadTime::now();
    for i in 0..packets {
        let n = decoder
            .decode_float(&cycle[i % cycle.len()], &mut pcm, false)
            .unwrap();
        encoder.encode_float(&pcm[..n], &mut out).unwrap();
    }
    started.elapsed().as_secs_f64() / (packets as f64 * 0.020)
}

fn connect(http: SocketAddr, n: usize) -> Vec<Peer> {
    let mut peers = Vec::with_capacity(n);
    for _ in 0..n {
        let (mut peer, offer) = Peer::new();
        let (_, status, _, body) = post_offer(http, &offer);
        assert_eq!(status, 201, "{body}");
        peer.accept(&body);
        peers.push(peer);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !peers.iter().all(Peer::connected) {
        assert!(Instant::now() < deadline, "peers did not connect");
        for p in &mut peers {
            p.step(&[], false);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    peers
}

fn drive(peers: &mut [Peer], cycle: &[Vec<u8>], for_: Duration) {
    let until = Instant::now() + for_;
    while Instant::now() < until {
        for p in peers.iter_mut() {
            p.step(cycle, true);
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn median(x: &[f64]) -> f64 {
    percentile(x, 0.5)
}

fn percentile(x: &[f64], q: f64) -> f64 {
    let mut v = x.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

struct Server {
    child: Child,
    http: SocketAddr,
}

impl Server {
    fn start(manifest: &std::path::Path) -> Self {
        Self::start_with(manifest, &[])
    }

    fn start_with(manifest: &std::path::Path, args: &[&str]) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_remotemedia-webrtc"))
            .arg("--manifest")
            .arg(manifest)
            .args(["--listen", "127.0.0.1:0", "--udp-port", "0"])
            .args(["--max-sessions", "1000", "--connect-timeout-secs", "2"])
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let http = loop {
            let line = lines.next().expect("server output").unwrap();
            let served = line.strip_prefix("serving WHIP on ").and_then(|r| {
                r.strip_prefix("http://")
                    .or_else(|| r.strip_prefix("https://"))
            });
            if let Some(rest) = served {
                break rest.split('/').next().unwrap().parse().unwrap();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, http }
    }

    /// User plus system CPU time of the server process so far.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which is in parentheses): utime is the 12th, stime
        // the 13th, in clock ticks (100 per second on Linux).
        let after = stat.rsplit_once(')').unwrap().1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / 100.0
    }
}
