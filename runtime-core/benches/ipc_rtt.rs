//! Round trip of a 20 ms 48 kHz mono frame (3,840 bytes) between two threads, over the
//! iceoryx2 pipes of `ipc::pipe` (async, spin-then-sleep) against a Unix domain socket pair
//! (async tokio, same runtime) in the same run. `make bench-ipc` runs it.
//!
//! This is the pipe layer alone; the issue's full client -> worker -> client figure comes with
//! the session protocol.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iceoryx2::prelude::*;
use remotemedia_runtime_core::ipc::pipe::{Inbox, Ipc, PipeReader, PipeWriter, Slots};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FRAME: usize = 3_840;
const ROUNDS: usize = 20_000;
const WARMUP: usize = 1_000;

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

async fn iceoryx2_rtt() -> Vec<Duration> {
    let base = format!("remotemedia-bench/{}", uuid::Uuid::new_v4().simple());
    let node = NodeBuilder::new().create::<Ipc>().expect("node");
    let a = Arc::new(Inbox::create(&node, &format!("{base}/a"), 8).expect("inbox"));
    let b = Arc::new(Inbox::create(&node, &format!("{base}/b"), 8).expect("inbox"));
    let (ping, pong) = (Slots { data: 1, space: 2 }, Slots { data: 3, space: 4 });
    let ping_w =
        PipeWriter::open(&node, &format!("{base}/ping"), 4, ping, b.name(), a.clone()).expect("w");
    let ping_r =
        PipeReader::open(&node, &format!("{base}/ping"), 4, ping, a.name(), b.clone()).expect("r");
    let pong_w =
        PipeWriter::open(&node, &format!("{base}/pong"), 4, pong, a.name(), b.clone()).expect("w");
    let pong_r =
        PipeReader::open(&node, &format!("{base}/pong"), 4, pong, b.name(), a.clone()).expect("r");
    let echo = tokio::spawn(async move {
        for _ in 0..WARMUP + ROUNDS {
            let m = ping_r.recv().await.expect("recv");
            pong_w.send(&m).await.expect("send");
        }
    });
    let frame = vec![7u8; FRAME];
    let mut rtts = Vec::with_capacity(ROUNDS);
    for i in 0..WARMUP + ROUNDS {
        let t = Instant::now();
        ping_w.send(&frame).await.expect("send");
        let back = pong_r.recv().await.expect("recv");
        assert_eq!(back.len(), FRAME);
        if i >= WARMUP {
            rtts.push(t.elapsed());
        }
    }
    echo.await.expect("echo");
    rtts
}

async fn uds_rtt() -> Vec<Duration> {
    let (mut a, mut b) = tokio::net::UnixStream::pair().expect("socket pair");
    let echo = tokio::spawn(async move {
        let mut buf = vec![0u8; FRAME];
        for _ in 0..WARMUP + ROUNDS {
            b.read_exact(&mut buf).await.expect("read");
            b.write_all(&buf).await.expect("write");
        }
    });
    let frame = vec![7u8; FRAME];
    let mut buf = vec![0u8; FRAME];
    let mut rtts = Vec::with_capacity(ROUNDS);
    for i in 0..WARMUP + ROUNDS {
        let t = Instant::now();
        a.write_all(&frame).await.expect("write");
        a.read_exact(&mut buf).await.expect("read");
        if i >= WARMUP {
            rtts.push(t.elapsed());
        }
    }
    echo.await.expect("echo");
    rtts
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Interleave so both see the same machine state.
    let (mut ice, mut uds) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        ice.extend(rt.block_on(iceoryx2_rtt()));
        uds.extend(rt.block_on(uds_rtt()));
    }
    let (i50, i99) = percentiles(ice);
    let (u50, u99) = percentiles(uds);
    println!(
        "round trip of a {FRAME}-byte frame, {} rounds each:",
        2 * ROUNDS
    );
    println!(
        "  iceoryx2 pipes:     p50 {:8.2} us  p99 {:8.2} us",
        us(i50),
        us(i99)
    );
    println!(
        "  unix socket (tokio): p50 {:8.2} us  p99 {:8.2} us",
        us(u50),
        us(u99)
    );
    println!(
        "  ratio p50 {:.2}  p99 {:.2} (goal p50 <= 0.5)",
        us(i50) / us(u50),
        us(i99) / us(u99)
    );
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
