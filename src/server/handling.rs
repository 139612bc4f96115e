//! The per-message core every driver calls: the handler with panics caught,
//! in-place retries with backoff for recoverable failures, the delay topics
//! (`retryTopics`), the dead-letter topic (within its limit) for failures for
//! good, and the failure report. Where a result goes (acknowledged at once, or
//! written in a transaction) is the driver's [`Completion`].

use std::cell::RefCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use super::dead_letter::DeadLetterSink;
use super::outcome::{FailureAction, HandlerError, HandlerFailure};
use super::partition::DeadLetterBudget;
use super::retry_topics::failure_headers;
use super::shared::{is_stale, MessageEnd, Worker};
use crate::config::RestartPolicy;
use crate::observe::{trace, Handled, RecentFailure};
use crate::record::{ConsumedMessage, Message, MessageBatch};
use crate::supervision::backoff_with_jitter;
use tracing::Instrument as _;

/// Where a handled message's result goes: acknowledged at once (at least
/// once), or written inside the batch's transaction (exactly once).
pub(crate) trait Completion {
    type Output;

    /// Calls the handler.
    fn call(
        &self,
        message: ConsumedMessage,
    ) -> Pin<Box<dyn Future<Output = Result<Self::Output, HandlerError>>>>;

    /// Stores a success; an error stops the partition at the message.
    async fn succeeded(
        &self,
        message: &ConsumedMessage,
        output: Self::Output,
    ) -> Result<(), HandlerError>;

    /// Writes `out` to the dead-letter topic; true once stored.
    async fn dead_lettered(&self, sink: &DeadLetterSink, out: Message) -> bool;

    /// A message settled without a result of its own (dead-lettered, delayed).
    fn settled(&self, message: &ConsumedMessage);
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
            worker.probe.failed(recent(&failure));
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

/// `failure` as the status page lists it.
fn recent(failure: &HandlerFailure) -> RecentFailure {
    let (action, detail) = match &failure.action {
        FailureAction::Retrying(delay) => ("retried", format!("again in {}", shown(*delay))),
        FailureAction::Delayed { topic, delay } => {
            ("delayed", format!("{} through {topic}", shown(*delay)))
        }
        FailureAction::DeadLettered => ("dead-lettered", String::new()),
        FailureAction::Stopped => ("stopped", String::new()),
    };
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    RecentFailure {
        at,
        partition: crate::record::TopicPartition {
            topic: std::sync::Arc::from(failure.message.topic()),
            partition: failure.message.partition(),
        },
        offset: failure.message.offset(),
        attempts: failure.attempts,
        error: failure.error.to_string(),
        action,
        detail,
    }
}

/// `delay` as people read it: whole milliseconds below a second, else
/// seconds with one decimal.
fn shown(delay: Duration) -> String {
    if delay < Duration::from_secs(1) {
        format!("{} ms", delay.as_millis())
    } else {
        format!("{:.1} s", delay.as_secs_f64())
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
pub(crate) async fn run_handler<T>(
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
