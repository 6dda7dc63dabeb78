//! An idle pipe reader must sleep, not spin. Alone in its own test binary, so the process's
//! CPU time measures only this.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iceoryx2::prelude::*;
use remotemedia_runtime_core::ipc::pipe::{Inbox, Ipc, PipeReader, PipeWriter, Slots};

fn unique(prefix: &str) -> String {
    format!(
        "remotemedia-test/{prefix}/{}",
        uuid::Uuid::new_v4().simple()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_reader_burns_no_cpu() {
    let node = NodeBuilder::new().create::<Ipc>().expect("node");
    let writer_inbox = Arc::new(Inbox::create(&node, &unique("w"), 8).expect("inbox"));
    let reader_inbox = Arc::new(Inbox::create(&node, &unique("r"), 8).expect("inbox"));
    let name = unique("pipe");
    let slots = Slots { data: 1, space: 2 };
    let reader = Arc::new(
        PipeReader::open(
            &node,
            &name,
            4,
            slots,
            writer_inbox.name(),
            reader_inbox.clone(),
        )
        .expect("reader"),
    );
    let writer = PipeWriter::open(
        &node,
        &name,
        4,
        slots,
        reader_inbox.name(),
        writer_inbox.clone(),
    )
    .expect("writer");
    let waiting = {
        let reader = reader.clone();
        tokio::spawn(async move { reader.recv().await })
    };
    // Past the reader's short spin, it sleeps on the inbox; measure a quiet half second.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = cpu_time::ProcessTime::now();
    let wall = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let busy = before.elapsed().as_secs_f64() / wall.elapsed().as_secs_f64();
    assert!(
        busy < 0.01,
        "an idle reader used {:.2}% of a core",
        busy * 100.0
    );

    writer.send(b"wake").await.expect("send");
    let got = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("woken")
        .expect("task");
    assert_eq!(got.expect("recv"), b"wake");
}
