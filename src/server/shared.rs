//! What every part of a consumer server shares: the handler as it runs, the
//! [`Worker`] one incarnation's partitions handle messages with, and how a
//! batch and a message end. Types only; the handling itself is in `handling`
//! (one message) and the drivers `at_least_once` and `transactional` (a batch).

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{watch, Notify};

use super::dead_letter::DeadLetterSink;
use super::outcome::{BatchFailure, HandlerError, HandlerFailure};
use super::retry_topics::RetryChain;
use crate::config::RetrySettings;
use crate::observe::{ServerMetrics, ServerProbe};
use crate::producer::Producer;
use crate::record::{ConsumedMessage, Message, MessageBatch, TopicPartition};

/// The kind servers are supervised as, in restarts, escalations and logs.
pub(crate) const KIND: &str = "consumer server";

/// The handler, boxed: any async function of a message.
pub(crate) type BoxedHandler =
    Rc<dyn Fn(ConsumedMessage) -> Pin<Box<dyn Future<Output = Result<(), HandlerError>>>>>;

/// A transform handler, boxed: the messages to write for a message.
pub(crate) type BoxedTransform = Rc<
    dyn Fn(ConsumedMessage) -> Pin<Box<dyn Future<Output = Result<Vec<Message>, HandlerError>>>>,
>;

/// A batch handler, boxed: up to `batchSize` messages of one partition at once.
pub(crate) type BoxedBatchHandler =
    Rc<dyn Fn(Vec<ConsumedMessage>) -> Pin<Box<dyn Future<Output = Result<(), BatchFailure>>>>>;

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
    /// At least once, up to `size` messages of a partition per call, called
    /// once `size` are there or the oldest waited `wait`.
    Batch {
        handler: BoxedBatchHandler,
        size: usize,
        wait: std::time::Duration,
    },
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
