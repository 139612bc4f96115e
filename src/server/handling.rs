//! Handling one batch of a partition, message by message: the handler with
//! panics caught, in-place retries with backoff for recoverable failures, and
//! the dead-letter topic (within its limit) for failures for good.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

pub(crate) use super::completion::{stored, Acknowledge, Completion};
use super::outcome::{FailureAction, HandlerError, HandlerFailure};
use super::partition::{DeadLetterBudget, Queued};
use super::retry_topics::{failure_headers, RetryChain};
use crate::config::{RestartPolicy, RetrySettings};
use crate::observe::{trace, Handled, ServerMetrics, ServerProbe};
use crate::producer::Producer;
use crate::record::{ConsumedMessage, Message, MessageBatch, TopicPartition};
use crate::supervision::backoff_with_jitter;
use tracing::Instrument as _;

/// The handler, boxed: any async function of a message.
pub(crate) type BoxedHandler =
    Rc<dyn Fn(ConsumedMessage) -> Pin<Box<dyn Future<Output = Result<(), HandlerError>>>>>;

/// A transform handler, boxed: the messages to write for a message.
pub(crate) type BoxedTransform = Rc<
    dyn Fn(ConsumedMessage) -> Pin<Box<dyn Future<Output = Result<Vec<Message>, HandlerError>>>>,
>;

/// What a server runs per message.
#[derive(Clone)]
pub(crate) enum MessageHandler {
    /// At least once: the message is acknowledged once handled.
    Each(BoxedHandler),
    /// Exactly once: the messages returned and the input's offsets commit in
    /// one transaction of `producer`.
    Transform {
        handler: BoxedTransform,
        producer: Producer,
    },
}

/// Where failed-for-good messages go.
#[derive(Clone)]
pub(crate) struct DeadLetterSink {
    pub(crate) producer: Producer,
    pub(crate) topic: Option<String>,
    /// `deadLetterLimit` and `deadLetterWindow`: how many messages one
    /// partition may send here within the window (0: no limit).
    pub(crate) limit: u32,
    pub(crate) window: std::time::Duration,
}

/// Header names on dead-lettered messages.
pub mod headers {
    /// The topic the message was consumed from.
    pub const ORIGINAL_TOPIC: &str = "ekafka.original.topic";
    /// Its partition.
    pub const ORIGINAL_PARTITION: &str = "ekafka.original.partition";
    /// Its offset.
    pub const ORIGINAL_OFFSET: &str = "ekafka.original.offset";
    /// The last error's text.
    pub const ERROR: &str = "ekafka.error";
    /// How many times the handler was tried.
    pub const ATTEMPTS: &str = "ekafka.attempts";
    /// On a delay topic's message: when it is due, in milliseconds since the
    /// Unix epoch.
    pub const RETRY_DUE: &str = "ekafka.retry.due";
}

/// What handling a message needs: one per server incarnation, shared by its
/// partitions' handling.
pub(crate) struct Worker {
    pub(crate) handler: MessageHandler,
    pub(crate) retry: RetrySettings,
    pub(crate) dead_letter: Option<DeadLetterSink>,
    /// The delay topics, with `retryTopics`.
    pub(crate) retry_chain: Option<RetryChain>,
    /// Where failures are reported; the subscriber may change while handlers run.
    pub(crate) errors: RefCell<Option<actix::Recipient<HandlerFailure>>>,
    pub(crate) server: String,
    /// The consumer group's `groupID`, for the handler's span.
    pub(crate) group: String,
    pub(crate) quiescing: watch::Receiver<bool>,
    /// The server's group member: a transaction commits offsets as it.
    pub(crate) member: crate::consumer::ConsumerGroup,
    pub(crate) revoked: Rc<RefCell<HashMap<TopicPartition, i32>>>,
    pub(crate) revocations: Rc<Notify>,
    pub(crate) metrics: Option<ServerMetrics>,
    pub(crate) probe: Arc<ServerProbe>,
}

impl Worker {
    /// True once the server shuts down or restarts, or `batch`'s partition
    /// was revoked after it was fetched: nothing more of it is started.
    pub(crate) fn must_stop(&self, batch: &MessageBatch) -> bool {
        *self.quiescing.borrow() || is_stale(&self.revoked, batch)
    }
}

/// How a batch's handling ended.
pub(crate) enum BatchEnd {
    /// Every message handled or dead-lettered.
    Done,
    /// The server began shutting down, or the partition was revoked: the rest
    /// was given back unhandled.
    Interrupted,
    /// The message at `offset` failed for good and could not be
    /// dead-lettered: the batch is to be handled again from there.
    Stopped {
        offset: i64,
        error: HandlerError,
        /// Set when the dead-letter limit refused it: the partition is past
        /// its limit at once (held or escalated) instead of restarting.
        limit: Option<String>,
    },
    /// The message at `offset`, of a delay topic, is not due before `until`:
    /// the batch is to be handled from there then.
    Waiting { offset: i64, until: Instant },
}

/// How one message's handling ended.
pub(crate) enum MessageEnd {
    /// Handled or dead-lettered, and acknowledged.
    Done,
    /// The server began shutting down, or the partition was revoked, while it
    /// waited for a retry (or before it started): not acknowledged; the caller
    /// gives it back.
    Interrupted,
    /// Failed for good and could not be dead-lettered: not acknowledged.
    Stopped {
        error: HandlerError,
        /// Set when the dead-letter limit refused it.
        limit: Option<String>,
    },
}

/// True when `batch` was fetched before its partition was last revoked.
pub(crate) fn is_stale(
    revoked: &RefCell<HashMap<TopicPartition, i32>>,
    batch: &MessageBatch,
) -> bool {
    revoked
        .borrow()
        .get(batch.partition())
        .is_some_and(|&generation| batch.generation() <= generation)
}

/// Handles a batch message by message, from offset `queued.from` on; gives
/// the batch back with how it ended.
pub(crate) async fn handle_batch(
    queued: Queued,
    worker: Rc<Worker>,
    dead_letters: Rc<RefCell<DeadLetterBudget>>,
) -> (Queued, BatchEnd) {
    let end = match &worker.handler {
        MessageHandler::Each(handler) => {
            each_message(&queued, &worker, handler, &dead_letters).await
        }
        MessageHandler::Transform { handler, producer } => {
            super::transactional::handle_batch(&queued, &worker, handler, producer, &dead_letters)
                .await
        }
    };
    (queued, end)
}

/// At least once: each message acknowledged when done.
async fn each_message(
    queued: &Queued,
    worker: &Worker,
    handler: &BoxedHandler,
    dead_letters: &RefCell<DeadLetterBudget>,
) -> BatchEnd {
    let batch = &queued.batch;
    for message in batch
        .messages()
        .iter()
        .filter(|m| m.offset() >= queued.from)
    {
        if worker.must_stop(batch) {
            batch.release_from(message.offset());
            return BatchEnd::Interrupted;
        }
        let chain = worker.retry_chain.as_ref();
        if let Some(until) = chain.and_then(|c| c.not_due_until(message)) {
            return BatchEnd::Waiting {
                offset: message.offset(),
                until,
            };
        }
        let completion = Acknowledge { handler, batch };
        match handle_message(worker, &completion, dead_letters, batch, message).await {
            MessageEnd::Done => {}
            MessageEnd::Interrupted => {
                batch.release_from(message.offset());
                return BatchEnd::Interrupted;
            }
            MessageEnd::Stopped { error, limit } => {
                return BatchEnd::Stopped {
                    offset: message.offset(),
                    error,
                    limit,
                }
            }
        }
    }
    BatchEnd::Done
}

/// Handles one message of `batch`: the handler, its in-place retries, and the
/// dead-letter topic when it fails for good.
pub(crate) async fn handle_message<C: Completion>(
    worker: &Worker,
    completion: &C,
    dead_letters: &RefCell<DeadLetterBudget>,
    batch: &MessageBatch,
    message: &ConsumedMessage,
) -> MessageEnd {
    let record = |result: Handled, elapsed: Duration| {
        if let Some(metrics) = &worker.metrics {
            metrics.handled(message.topic(), result, elapsed);
        }
    };
    let chain = worker.retry_chain.as_ref();
    // A delay topic's message gets one attempt per stage: the stage is its retry.
    let from_delay_topic = chain.is_some_and(|c| c.stage_of(message.topic()).is_some());
    let in_place_retries = if from_delay_topic {
        0
    } else {
        worker.retry.retries
    };
    let earlier_attempts = chain.map_or(0, |c| c.earlier_attempts(message));
    let mut tries = 0;
    loop {
        tries += 1;
        let attempts = earlier_attempts + tries;
        let started = Instant::now();
        let call = worker.probe.start();
        let span = trace::process_span(&worker.server, &worker.group, message);
        let outcome = run_handler(|| completion.call(message.clone()))
            .instrument(span)
            .await;
        drop(call);
        let elapsed = started.elapsed();
        let outcome = match outcome {
            Ok(output) => completion.succeeded(message, output).await,
            Err(error) => Err(error),
        };
        let error = match outcome {
            Ok(()) => {
                record(Handled::Ok, elapsed);
                return MessageEnd::Done;
            }
            Err(error) => error,
        };
        let report = |action: FailureAction| {
            let failure = HandlerFailure {
                server: worker.server.clone(),
                message: message.clone(),
                attempts,
                error: error.clone(),
                action,
            };
            tracing::warn!(server = %worker.server, partition = message.partition(), offset = message.offset(), attempts, error = %failure.error, action = ?failure.action, "handler failed");
            if let Some(errors) = &*worker.errors.borrow() {
                // Never block consumption on the error subscriber.
                let _ = errors.try_send(failure);
            }
        };
        let retry = &worker.retry;
        if error.is_recoverable() && tries <= in_place_retries {
            record(Handled::Retried, elapsed);
            let policy = RestartPolicy {
                max_restarts: retry.retries,
                window: Duration::MAX,
                backoff_min: retry.backoff,
                backoff_max: retry.backoff_max,
            };
            let delay = backoff_with_jitter(&policy, tries - 1);
            report(FailureAction::Retrying(delay));
            if !wait_for_retry(worker, batch, delay).await {
                return MessageEnd::Interrupted;
            }
            continue;
        }
        let next_stage = chain
            .filter(|_| error.is_recoverable())
            .and_then(|c| Some((c, c.next_stage(message)?)));
        if let Some((chain, (topic, delay))) = next_stage {
            if chain.send(message, &topic, delay, &error, attempts).await {
                record(Handled::Delayed, elapsed);
                report(FailureAction::Delayed { topic, delay });
                completion.settled(message);
                return MessageEnd::Done;
            }
            // Not stored: the partition stops at it rather than lose it.
            record(Handled::Failed, elapsed);
            report(FailureAction::Stopped);
            return MessageEnd::Stopped { error, limit: None };
        }
        let limit = match &worker.dead_letter {
            Some(sink) if dead_letters.borrow_mut().take() => {
                let mut out = failure_headers(chain, message, &error, attempts);
                out.topic.clone_from(&sink.topic);
                if completion.dead_lettered(sink, out).await {
                    record(Handled::DeadLettered, elapsed);
                    report(FailureAction::DeadLettered);
                    completion.settled(message);
                    return MessageEnd::Done;
                }
                None
            }
            Some(_) => Some(dead_letters.borrow().exceeded()),
            None => None,
        };
        record(Handled::Failed, elapsed);
        report(FailureAction::Stopped);
        return MessageEnd::Stopped { error, limit };
    }
}

/// Waits `delay` before a retry; false when the server began shutting down or
/// the partition was revoked meanwhile (the message then goes to the
/// partition's next owner).
pub(crate) async fn wait_for_retry(worker: &Worker, batch: &MessageBatch, delay: Duration) -> bool {
    let mut quiescing = worker.quiescing.clone();
    let wait = tokio::time::sleep(delay);
    tokio::pin!(wait);
    loop {
        tokio::select! {
            _ = &mut wait => return true,
            _ = quiescing.wait_for(|q| *q) => return false,
            _ = worker.revocations.notified() => {
                if is_stale(&worker.revoked, batch) {
                    return false;
                }
            }
        }
    }
}

/// Calls the handler through `call`, turning a panic (while creating or
/// polling its future) into a fatal failure.
async fn run_handler<T>(
    call: impl FnOnce() -> Pin<Box<dyn Future<Output = Result<T, HandlerError>>>>,
) -> Result<T, HandlerError> {
    let future = match catch_unwind(AssertUnwindSafe(call)) {
        Ok(future) => future,
        Err(panic) => {
            return Err(HandlerError::fatal(format!(
                "handler panicked: {}",
                panic_text(&*panic)
            )))
        }
    };
    CatchPanic(future).await
}

struct CatchPanic<T>(Pin<Box<dyn Future<Output = Result<T, HandlerError>>>>);

impl<T> Future for CatchPanic<T> {
    type Output = Result<T, HandlerError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => Poll::Ready(Err(HandlerError::fatal(format!(
                "handler panicked: {}",
                panic_text(&*panic)
            )))),
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
