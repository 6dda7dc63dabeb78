//! A node's input queue, bounded twice: in items (the channel) and in bytes (a budget the
//! items in it hold, released as the node takes each one). Counting items alone let a client
//! park 16 items of 4 MiB before every node; the byte budget keeps what waits before one node
//! under [`RunnerConfig::node_queue_bytes`](crate::runner::RunnerConfig), so a session holds
//! at most its node count times that. An item larger than the whole budget still passes, alone.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::{Envelope, Origin};
use crate::data::RuntimeData;

/// Where items for one node are sent.
#[derive(Clone)]
pub(crate) struct NodeInbox {
    queue: mpsc::Sender<Envelope>,
    bytes: Arc<Semaphore>,
    budget: u32,
}

impl NodeInbox {
    /// An inbox of `items` items and `budget` bytes, and its receiving end.
    pub(crate) fn new(items: usize, budget: usize) -> (Self, mpsc::Receiver<Envelope>) {
        let budget = u32::try_from(budget.max(1)).unwrap_or(u32::MAX);
        let (queue, receiver) = mpsc::channel(items);
        let inbox = Self {
            queue,
            bytes: Arc::new(Semaphore::new(budget as usize)),
            budget,
        };
        (inbox, receiver)
    }

    /// Sends `data`, waiting for room in items and in bytes. Fails only when the node is gone.
    pub(crate) async fn send(&self, data: RuntimeData, origin: &Arc<Origin>) -> Result<(), ()> {
        let wanted = u32::try_from(data.approx_bytes()).unwrap_or(u32::MAX);
        let held = Arc::clone(&self.bytes)
            .acquire_many_owned(wanted.clamp(1, self.budget))
            .await
            .map_err(|_| ())?;
        self.queue
            .send(Envelope {
                data,
                origin: Arc::clone(origin),
                held: Some(held),
            })
            .await
            .map_err(|_| ())
    }
}

/// The bytes an envelope holds of its node's budget, given back when it is dropped (taken).
pub(crate) type Held = Option<OwnedSemaphorePermit>;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn origin() -> Arc<Origin> {
        Arc::new(Origin {
            sequence: None,
            metadata: Default::default(),
            entered: tokio::time::Instant::now(),
        })
    }

    fn binary(bytes: usize) -> RuntimeData {
        RuntimeData::Binary(vec![0; bytes].into())
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_waiting_for_a_node_stay_under_its_budget() {
        let (inbox, mut receiver) = NodeInbox::new(16, 1_000);
        let origin = origin();
        for _ in 0..4 {
            inbox.send(binary(250), &origin).await.unwrap();
        }
        // 1,000 bytes wait: a fifth item waits too, though the queue has room for 12 more.
        let fifth = tokio::time::timeout(Duration::from_secs(1), inbox.send(binary(250), &origin));
        assert!(fifth.await.is_err(), "sent beyond the byte budget");
        // The node takes one: its bytes are free again.
        drop(receiver.recv().await.unwrap());
        inbox.send(binary(250), &origin).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_item_larger_than_the_budget_passes_alone() {
        let (inbox, mut receiver) = NodeInbox::new(16, 1_000);
        let origin = origin();
        inbox.send(binary(5_000), &origin).await.unwrap();
        let second = tokio::time::timeout(Duration::from_secs(1), inbox.send(binary(1), &origin));
        assert!(
            second.await.is_err(),
            "the large item holds the whole budget"
        );
        drop(receiver.recv().await.unwrap());
        inbox.send(binary(1), &origin).await.unwrap();
    }
}
