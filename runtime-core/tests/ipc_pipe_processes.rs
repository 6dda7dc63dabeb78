//! Pipes between two real processes: this test binary re-runs itself as the peer (the ignored
//! `echo_peer` test, selected by name), which echoes every message back.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iceoryx2::prelude::*;
use remotemedia_runtime_core::ipc::pipe::{Doorbell, Inbox, Ipc, PipeReader, PipeWriter, Slots};

const MESSAGES: usize = 2_000;
const UP: Slots = Slots { data: 1, space: 2 };
const DOWN: Slots = Slots { data: 3, space: 4 };

/// Opens a doorbell on an inbox another process creates, waiting until it exists.
fn wait_for_inbox(node: &Node<Ipc>, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Doorbell::open(node, name).is_err() {
        assert!(Instant::now() < deadline, "inbox {name} never appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_cross_processes_both_ways_in_order() {
    let base = format!("remotemedia-test/procs/{}", uuid::Uuid::new_v4().simple());
    let node = NodeBuilder::new().create::<Ipc>().expect("node");
    let inbox = Arc::new(Inbox::create(&node, &format!("{base}/parent"), 8).expect("inbox"));
    let mut peer = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--ignored", "--exact", "echo_peer", "--nocapture"])
        .env("REMOTEMEDIA_PIPE_BASE", &base)
        .spawn()
        .expect("spawn the peer");
    wait_for_inbox(&node, &format!("{base}/child"));
    let up = PipeWriter::open(
        &node,
        &format!("{base}/up"),
        4,
        UP,
        &format!("{base}/child"),
        inbox.clone(),
    )
    .expect("up writer");
    let down = PipeReader::open(
        &node,
        &format!("{base}/down"),
        4,
        DOWN,
        &format!("{base}/child"),
        inbox.clone(),
    )
    .expect("down reader");

    let sender = tokio::spawn(async move {
        // The peer opens its reader after we appear; retry until it is connected.
        let deadline = Instant::now() + Duration::from_secs(20);
        while up.send(&0u32.to_le_bytes()).await.is_err() {
            assert!(Instant::now() < deadline, "the peer never connected");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for i in 1..MESSAGES as u32 {
            let mut m = i.to_le_bytes().to_vec();
            m.resize(4 + (i as usize % 7) * 997, (i % 251) as u8);
            up.send(&m).await.expect("send up");
        }
    });
    for i in 0..MESSAGES as u32 {
        let m = tokio::time::timeout(Duration::from_secs(20), down.recv())
            .await
            .expect("an echo within 20 s")
            .expect("recv");
        assert_eq!(
            u32::from_le_bytes([m[0], m[1], m[2], m[3]]),
            i,
            "echo {i} in order"
        );
        if i > 0 {
            assert_eq!(m.len(), 4 + (i as usize % 7) * 997);
        }
    }
    sender.await.expect("sender");
    let status = peer.wait().expect("peer exits");
    assert!(status.success(), "peer failed: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the peer process of messages_cross_processes_both_ways_in_order"]
async fn echo_peer() {
    let base = std::env::var("REMOTEMEDIA_PIPE_BASE").expect("run by the parent test");
    let node = NodeBuilder::new().create::<Ipc>().expect("node");
    let inbox = Arc::new(Inbox::create(&node, &format!("{base}/child"), 8).expect("inbox"));
    wait_for_inbox(&node, &format!("{base}/parent"));
    let up = PipeReader::open(
        &node,
        &format!("{base}/up"),
        4,
        UP,
        &format!("{base}/parent"),
        inbox.clone(),
    )
    .expect("up reader");
    let down = PipeWriter::open(
        &node,
        &format!("{base}/down"),
        4,
        DOWN,
        &format!("{base}/parent"),
        inbox.clone(),
    )
    .expect("down writer");
    for _ in 0..MESSAGES {
        let m = up.recv().await.expect("recv up");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match down.send(&m).await {
                Ok(()) => break,
                Err(e) => {
                    assert!(Instant::now() < deadline, "cannot echo: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}
