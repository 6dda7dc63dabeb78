//! A stream's responses on their way to the client: a bounded queue whose sender gives up after
//! a deadline (a client that stops reading must not hold its session for ever), and a way to
//! end the response stream at once with a status, ahead of whatever is still queued.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::pb;

type Response = Result<pb::StreamResponse, Status>;

/// Why a response did not reach the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Undelivered {
    /// The client is gone: the response stream was dropped.
    Gone,
    /// The queue stayed full for the whole deadline: the client reads nothing.
    Stalled,
}

/// The sending side, shared by a stream's two halves.
#[derive(Clone)]
pub(crate) struct Outbox {
    queue: mpsc::Sender<Response>,
    abort: Arc<Mutex<Option<oneshot::Sender<Status>>>>,
    stall_timeout: Duration,
}

impl Outbox {
    /// An outbox of `capacity` responses whose sends give up after `stall_timeout`, and the
    /// stream tonic sends to the client.
    pub(crate) fn new(capacity: usize, stall_timeout: Duration) -> (Self, ResponseStream) {
        let (queue, receiver) = mpsc::channel(capacity);
        let (abort, aborted) = oneshot::channel();
        let outbox = Self {
            queue,
            abort: Arc::new(Mutex::new(Some(abort))),
            stall_timeout,
        };
        let stream = ResponseStream {
            queue: ReceiverStream::new(receiver),
            aborted: Some(aborted),
            ended: false,
        };
        (outbox, stream)
    }

    /// The deadline of one send.
    pub(crate) fn stall_timeout(&self) -> Duration {
        self.stall_timeout
    }

    /// Queues `response`, waiting at most the stall deadline for room.
    pub(crate) async fn deliver(&self, response: Response) -> Result<(), Undelivered> {
        match tokio::time::timeout(self.stall_timeout, self.queue.send(response)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Undelivered::Gone),
            Err(_) => Err(Undelivered::Stalled),
        }
    }

    /// Queues `response` if there is room now.
    pub(crate) fn try_deliver(&self, response: Response) -> Result<(), Undelivered> {
        self.queue.try_send(response).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Undelivered::Stalled,
            mpsc::error::TrySendError::Closed(_) => Undelivered::Gone,
        })
    }

    /// Ends the response stream with `status` as soon as tonic polls it, dropping what is
    /// still queued. Only the first call counts.
    pub(crate) fn abort(&self, status: Status) {
        let sender = self
            .abort
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(sender) = sender {
            let _ = sender.send(status);
        }
    }
}

/// The responses of one stream, as tonic sends them: the queue in order, unless the stream
/// was aborted, which ends it with the abort's status at once.
pub struct ResponseStream {
    queue: ReceiverStream<Response>,
    /// `None` once the abort fired or can no longer fire.
    aborted: Option<oneshot::Receiver<Status>>,
    ended: bool,
}

impl std::fmt::Debug for ResponseStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseStream")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Stream for ResponseStream {
    type Item = Response;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Response>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if let Some(aborted) = self.aborted.as_mut() {
            match Pin::new(aborted).poll(cx) {
                Poll::Ready(Ok(status)) => {
                    self.ended = true;
                    self.aborted = None;
                    // Senders see the stream gone from now on.
                    self.queue.close();
                    return Poll::Ready(Some(Err(status)));
                }
                // Every outbox is dropped: no abort can come any more.
                Poll::Ready(Err(_)) => self.aborted = None,
                Poll::Pending => {}
            }
        }
        Pin::new(&mut self.queue).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;

    fn closed() -> Response {
        Ok(pb::StreamResponse { kind: None })
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_gives_up_after_the_deadline() {
        let (outbox, _stream) = Outbox::new(1, Duration::from_secs(5));
        outbox.deliver(closed()).await.unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(outbox.deliver(closed()).await, Err(Undelivered::Stalled));
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_stream_is_gone() {
        let (outbox, stream) = Outbox::new(1, Duration::from_secs(5));
        drop(stream);
        assert_eq!(outbox.deliver(closed()).await, Err(Undelivered::Gone));
    }

    #[tokio::test]
    async fn an_abort_ends_the_stream_ahead_of_the_queue() {
        let (outbox, mut stream) = Outbox::new(4, Duration::from_secs(5));
        outbox.deliver(closed()).await.unwrap();
        outbox.deliver(closed()).await.unwrap();
        outbox.abort(Status::deadline_exceeded("stalled"));
        outbox.abort(Status::internal("second"));
        let first = stream.next().await.expect("an item");
        assert_eq!(first.unwrap_err().message(), "stalled");
        assert!(stream.next().await.is_none());
        assert_eq!(outbox.deliver(closed()).await, Err(Undelivered::Gone));
    }

    #[tokio::test]
    async fn without_an_abort_the_queue_drains_in_order_and_ends() {
        let (outbox, mut stream) = Outbox::new(4, Duration::from_secs(5));
        outbox.try_deliver(closed()).unwrap();
        outbox.deliver(Err(Status::internal("last"))).await.unwrap();
        drop(outbox);
        assert!(stream.next().await.unwrap().is_ok());
        assert_eq!(stream.next().await.unwrap().unwrap_err().message(), "last");
        assert!(stream.next().await.is_none());
    }
}
