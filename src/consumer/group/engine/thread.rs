//! The engine's thread: a loop of passes (see `Engine::pass`), each followed
//! by serving the consumer's own queue (rebalances, errors, messages of
//! partitions not split off yet); a pass that found nothing to read sleeps
//! until woken (see `wake`) or until something is due. A close waits for the
//! coordinator, unsubscribes, drains and commits; the consumer is dropped
//! last, which leaves the group.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::{leave, Consumer_, GroupContext, Pass};
use crate::error::Refusal;
use crate::native::split_queue::ConsumerQueue;
use crate::supervision::{client_failure, AuthorizationScope, ClientFailure};

/// Events taken from the main queue per round.
const POLL_BURST: usize = 100;

/// Why the engine thread ended.
#[derive(Clone)]
pub(crate) enum Exit {
    /// Closed on request.
    Closed,
    /// Failed; the actor restarts it.
    Failed(String),
}

/// Runs the engine until it is closed or fails; `on_exit` hears why before the
/// consumer is dropped (leaving the group can take a while, and a restart need
/// not wait for it).
pub(crate) fn run(mut consumer: BaseConsumer<GroupContext>, on_exit: impl FnOnce(&Exit)) -> Exit {
    let waker = Arc::clone(&consumer.context().waker);
    waker.attach_current_thread();
    let on_event = Arc::clone(&waker);
    // Rebalances, errors, and messages of partitions not (yet) split off.
    consumer.set_nonempty_callback(move || on_event.wake());
    let consumer = Arc::new(consumer);
    let context = Arc::clone(consumer.context());
    context.lock().attach(&consumer);
    // Declared after the consumer, so dropped before it when a panic unwinds:
    // the commit queue must go before its client.
    let _queue_first = CommitQueueGuard(&context);
    let exit = serve(&consumer, &context, &waker);
    let mut on_exit = Some(on_exit);
    if matches!(exit, Exit::Failed(_)) {
        if let Some(notify) = on_exit.take() {
            notify(&exit);
        }
    }
    let (closers, outcome) = context.lock().end(&consumer, matches!(exit, Exit::Closed));
    // When the final commit failed the coordinator is likely unreachable, and
    // leaving the group (below) can wait for the commits librdkafka still has
    // outstanding: say what was left uncommitted first, not after.
    let mut closers = Some(closers);
    if outcome.is_err() {
        for closer in closers.take().into_iter().flatten() {
            let _ = closer.send(outcome.clone());
        }
    }
    // Dropping the consumer leaves the group (librdkafka's consumer close).
    drop(consumer);
    for closer in closers.into_iter().flatten() {
        let _ = closer.send(outcome.clone());
    }
    if let Some(notify) = on_exit.take() {
        notify(&exit);
    }
    exit
}

/// Drops the engine's commit queue (if still there) when dropped.
struct CommitQueueGuard<'a>(&'a GroupContext);

impl Drop for CommitQueueGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().detach();
    }
}

/// The engine's loop.
fn serve(consumer: &Arc<Consumer_>, context: &GroupContext, waker: &crate::wake::Waker) -> Exit {
    let events = ConsumerQueue::new(consumer);
    loop {
        let pass = context.lock().pass(consumer);
        let (read, idle_wait) = match pass {
            Pass::Continue { read, idle_wait } => (read, idle_wait),
            Pass::Failed(reason) => return Exit::Failed(reason),
            Pass::Closed => return Exit::Closed,
            Pass::Leave {
                probe,
                session,
                group,
            } => {
                if let Some((topic, partition)) = probe {
                    let waited =
                        leave::await_coordinator(consumer, &group, (&topic, partition), session);
                    context.lock().close_delayed(waited);
                }
                consumer.unsubscribe();
                continue;
            }
        };
        let mut served = 0;
        while served < POLL_BURST {
            let polled = consumer.poll(Duration::ZERO);
            // Nothing returned: the queue was empty, or rust-rdkafka served an
            // event there (a rebalance, a log line) and more may follow, which
            // would not wake the engine (the queue never became empty).
            if polled.is_none() && events.as_ref().is_none_or(ConsumerQueue::is_empty) {
                break;
            }
            served += 1;
            let Some(polled) = polled else { continue };
            match polled {
                Ok(message) => context.lock().on_message(&message),
                Err(KafkaError::MessageConsumptionFatal(code)) => {
                    return Exit::Failed(ClientFailure::Fatal.describe(&code.to_string()));
                }
                // See GroupContext::error: a refusal fails the member.
                Err(KafkaError::MessageConsumption(code))
                    if client_failure(code, AuthorizationScope::Client).is_some() =>
                {
                    let refusal = Refusal::of(code).expect("classified as a refusal");
                    let reason = context.last_error_log.refusal_reason(refusal, code);
                    context.lock().fail(reason);
                    break;
                }
                // librdkafka's way of saying a subscribed topic does not
                // exist, without naming it: the member finds out which.
                Err(KafkaError::MessageConsumption(
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
                )) if context.lock().look_for_topics(consumer) => break,
                Err(error) => {
                    context.lock().fetch_failed(&error);
                    break;
                }
            }
        }
        if read == 0 && served == 0 {
            waker.wait(idle_wait);
        }
    }
}
