use std::time::Duration;

use super::*;

fn node() -> Node<Ipc> {
    NodeBuilder::new()
        .create::<Ipc>()
        .expect("an iceoryx2 node")
}

fn unique(prefix: &str) -> String {
    format!(
        "remotemedia-test/{prefix}/{}",
        uuid::Uuid::new_v4().simple()
    )
}

struct Ends {
    writer: PipeWriter,
    reader: PipeReader,
    _inboxes: (Arc<Inbox>, Arc<Inbox>),
}

/// A pipe between two inboxes, as two processes would hold it (one node suffices in a test).
fn pipe(node: &Node<Ipc>, depth: usize) -> Ends {
    let writer_inbox = Arc::new(Inbox::create(node, &unique("w-inbox"), 8).expect("inbox"));
    let reader_inbox = Arc::new(Inbox::create(node, &unique("r-inbox"), 8).expect("inbox"));
    let name = unique("pipe");
    let slots = Slots { data: 3, space: 5 };
    let reader = PipeReader::open(
        node,
        &name,
        depth,
        slots,
        writer_inbox.name(),
        reader_inbox.clone(),
    )
    .expect("reader");
    let writer = PipeWriter::open(
        node,
        &name,
        depth,
        slots,
        reader_inbox.name(),
        writer_inbox.clone(),
    )
    .expect("writer");
    Ends {
        writer,
        reader,
        _inboxes: (writer_inbox, reader_inbox),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_arrive_whole_and_in_order_under_backpressure() {
    // Depth 2 rings "space" after every message; depth 7 after every third of a run.
    for depth in [2, 7] {
        backpressure_keeps_every_message(depth).await;
    }
}

async fn backpressure_keeps_every_message(depth: usize) {
    let node = node();
    let ends = Arc::new(pipe(&node, depth));
    // Sizes cross the initial 4 KiB slice, so the publisher must grow its segment.
    let messages: Vec<Vec<u8>> = (0..300u32)
        .map(|i| {
            let len = [1usize, 17, 3_840, 4_097, 65_536][i as usize % 5];
            (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
        })
        .collect();
    let sender = {
        let ends = ends.clone();
        let messages = messages.clone();
        tokio::spawn(async move {
            for m in &messages {
                ends.writer.send(m).await.expect("send");
            }
        })
    };
    for (i, expected) in messages.iter().enumerate() {
        // A slow reader every so often: the writer must wait, not drop.
        if i % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let got = tokio::time::timeout(Duration::from_secs(10), ends.reader.recv())
            .await
            .expect("a message within 10 s")
            .expect("recv");
        assert_eq!(&got, expected, "message {i} (depth {depth})");
    }
    sender.await.expect("sender finished");
    assert!(
        ends.reader.try_recv().expect("try_recv").is_none(),
        "nothing extra"
    );
}

#[test]
fn an_inbox_outside_a_tokio_runtime_is_an_error_not_a_panic() {
    let node = node();
    match Inbox::create(&node, &unique("inbox"), 4) {
        Err(IpcError::Setup { what, .. }) => assert_eq!(what, "inbox waiter"),
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("an inbox needs a runtime to wait on"),
    }
}

#[tokio::test]
async fn a_slot_beyond_the_inbox_is_an_error() {
    let node = node();
    let inbox = Inbox::create(&node, &unique("inbox"), 4).expect("inbox");
    let err = inbox.watch(4).expect_err("out of range");
    assert!(
        matches!(
            err,
            IpcError::SlotOutOfRange {
                slot: 4,
                capacity: 4
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pipes_sharing_slots_both_make_progress() {
    let node = node();
    let writer_inbox = Arc::new(Inbox::create(&node, &unique("w-inbox"), 4).expect("inbox"));
    let reader_inbox = Arc::new(Inbox::create(&node, &unique("r-inbox"), 4).expect("inbox"));
    // Both pipes ring the same slots: every wake-up must reach both waiters.
    let slots = Slots { data: 1, space: 2 };
    let mut tasks = Vec::new();
    for p in 0..2u8 {
        let name = unique("shared");
        let reader = PipeReader::open(
            &node,
            &name,
            1,
            slots,
            writer_inbox.name(),
            reader_inbox.clone(),
        )
        .expect("reader");
        let writer = PipeWriter::open(
            &node,
            &name,
            1,
            slots,
            reader_inbox.name(),
            writer_inbox.clone(),
        )
        .expect("writer");
        tasks.push(tokio::spawn(async move {
            for i in 0..200u8 {
                writer.send(&[p, i]).await.expect("send");
            }
        }));
        tasks.push(tokio::spawn(async move {
            for i in 0..200u8 {
                assert_eq!(reader.recv().await.expect("recv"), [p, i]);
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(20), t)
            .await
            .expect("no lost wake-up")
            .expect("task");
    }
}

#[test]
fn only_back_to_back_messages_make_a_pipe_busy() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut steady = Arrivals::default();
    for i in 0..5 {
        steady.record(t0 + ms(20) * i);
    }
    assert!(
        !steady.busy(t0 + ms(80) + Duration::from_micros(10)),
        "a 20 ms stream never spins, even right after a message"
    );
    let mut burst = Arrivals::default();
    burst.record(t0);
    assert!(!burst.busy(t0), "one message is not a burst");
    burst.record(t0 + Duration::from_micros(100));
    assert!(burst.busy(t0 + Duration::from_micros(150)));
    assert!(
        !burst.busy(t0 + ms(5)),
        "a burst that stopped is no longer busy"
    );
}
