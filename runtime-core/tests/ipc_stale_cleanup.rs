//! A process killed with SIGKILL leaves its iceoryx2 node and ports behind; the next process
//! to start through `create_node` removes them, so the dead process's services (here a pipe
//! that allows a single reader) can be used again. The dying process is this test binary again (the
//! ignored `dying_peer` test).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use iceoryx2::prelude::*;
use remotemedia_runtime_core::ipc::pipe::{Inbox, Ipc, PipeReader, Slots, create_node};

fn dead_nodes() -> usize {
    let mut dead = 0;
    Node::<Ipc>::list(Config::global_config(), |state| {
        if matches!(state, NodeState::Dead(_)) {
            dead += 1;
        }
        CallbackProgression::Continue
    })
    .expect("list nodes");
    dead
}

#[test]
fn a_killed_process_leaves_nothing_after_the_next_start() {
    let base = format!("remotemedia-test/stale/{}", uuid::Uuid::new_v4().simple());
    let mut peer = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "dying_peer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("REMOTEMEDIA_STALE_BASE", &base)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the peer");
    let stdout = peer.stdout.take().expect("stdout");
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("PEER READY"));
    assert!(ready, "the peer never set up its node");
    peer.kill().expect("SIGKILL the peer");
    peer.wait().expect("reap the peer");
    assert!(dead_nodes() >= 1, "the killed peer's node is left behind");

    // Inboxes wait through a tokio reactor; being inside one is enough here.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _inside = runtime.enter();
    let (node, cleaned) = create_node("remotemedia-test-restarted").expect("node");
    assert_eq!(
        dead_nodes(),
        0,
        "no dead node remains (create_node counted {cleaned})"
    );
    // The pipe allows one reader: opening it again works only if the dead one was removed.
    let inbox = Arc::new(
        Inbox::create(&node, &format!("{base}/inbox"), 4).expect("the dead peer's inbox again"),
    );
    PipeReader::open(
        &node,
        &format!("{base}/pipe"),
        4,
        Slots { data: 1, space: 2 },
        inbox.name(),
        inbox.clone(),
    )
    .expect("the dead peer's pipe reader slot is free again");
}

#[test]
#[ignore = "the peer process of a_killed_process_leaves_nothing_after_the_next_start"]
fn dying_peer() {
    let base = std::env::var("REMOTEMEDIA_STALE_BASE").expect("run by the parent test");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _inside = runtime.enter();
    let (node, _) = create_node("remotemedia-test-dying").expect("node");
    let inbox = Arc::new(Inbox::create(&node, &format!("{base}/inbox"), 4).expect("inbox"));
    let _reader = PipeReader::open(
        &node,
        &format!("{base}/pipe"),
        4,
        Slots { data: 1, space: 2 },
        inbox.name(),
        inbox.clone(),
    )
    .expect("reader");
    println!("PEER READY");
    loop {
        std::thread::park();
    }
}
