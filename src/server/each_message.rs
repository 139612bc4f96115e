//! Each-message mode: a handler per message, retried with backoff when it fails
//! recoverably, dead-lettered (or stopping its partition) when it fails for good.
//! Partitions are handled independently: while one waits for a retry, the others
//! keep flowing; within a partition, messages are handled one at a time, in order.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};

use actix::prelude::*;
use tokio::sync::{oneshot, watch, Notify};

use super::outcome::{FailureAction, HandlerError, HandlerFailure};
use crate::config::RetrySettings;
use crate::consumer::{ConsumedMessage, GroupEvent, MessageBatch, TopicPartition};
use crate::producer::Producer;
use crate::record::Message as OutgoingMessage;
use crate::supervision::{backoff_with_jitter, RestartPolicy};

/// The handler, boxed: any async function of a message.
pub(crate) type BoxedHandler =
    Rc<dyn Fn(ConsumedMessage) -> Pin<Box<dyn Future<Output = Result<(), HandlerError>>>>>;

/// Where failed-for-good messages go.
#[derive(Clone)]
pub(crate) struct DeadLetterSink {
    pub(crate) producer: Producer,
    pub(crate) topic: Option<String>,
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
}

/// A partition stopped on a message that failed for good: the server has failed
/// and its supervisor restarts it.
#[derive(Debug, Clone)]
pub(crate) struct PartitionStopped {
    pub(crate) partition: TopicPartition,
    pub(crate) offset: i64,
    pub(crate) error: HandlerError,
}

pub(crate) struct EachMessageActor {
    name: String,
    handler: BoxedHandler,
    retry: RetrySettings,
    dead_letter: Option<DeadLetterSink>,
    errors: Option<Recipient<HandlerFailure>>,
    /// Where a stopped partition is reported (the supervisor).
    faults: tokio::sync::mpsc::UnboundedSender<PartitionStopped>,
    queued: HashMap<TopicPartition, VecDeque<MessageBatch>>,
    busy: HashMap<TopicPartition, bool>,
    /// Partitions stopped on a message that failed for good (no dead-letter topic).
    stopped: HashMap<TopicPartition, i64>,
    /// Set when the server shuts down or restarts: no new message is started,
    /// and messages waiting for a retry are given up (left unacknowledged).
    quiescing: watch::Sender<bool>,
    /// Told once no handler runs any more, after quiescing began.
    idle_waiters: Vec<oneshot::Sender<()>>,
    /// The generation each partition was last revoked in: batches fetched up to
    /// it are stale, and their messages not yet started are given back.
    revoked: Rc<RefCell<HashMap<TopicPartition, i32>>>,
    /// Wakes handlers waiting for a retry when a revoke comes.
    revocations: Rc<Notify>,
}

impl EachMessageActor {
    pub(crate) fn new(
        name: String,
        handler: BoxedHandler,
        retry: RetrySettings,
        dead_letter: Option<DeadLetterSink>,
        errors: Option<Recipient<HandlerFailure>>,
        faults: tokio::sync::mpsc::UnboundedSender<PartitionStopped>,
    ) -> Self {
        EachMessageActor {
            name,
            handler,
            retry,
            dead_letter,
            errors,
            faults,
            queued: HashMap::new(),
            busy: HashMap::new(),
            stopped: HashMap::new(),
            quiescing: watch::Sender::new(false),
            idle_waiters: Vec::new(),
            revoked: Rc::default(),
            revocations: Rc::default(),
        }
    }

    fn is_idle(&self) -> bool {
        !self.busy.values().any(|busy| *busy)
    }

    /// Starts handling the next batch of `partition` unless one is in progress.
    fn pump(&mut self, partition: TopicPartition, ctx: &mut Context<Self>) {
        if self.busy.get(&partition).copied().unwrap_or(false)
            || self.stopped.contains_key(&partition)
            || *self.quiescing.borrow()
        {
            return;
        }
        let Some(batch) = self
            .queued
            .get_mut(&partition)
            .and_then(VecDeque::pop_front)
        else {
            return;
        };
        self.busy.insert(partition.clone(), true);
        let work = handle_batch(
            batch,
            Worker {
                handler: Rc::clone(&self.handler),
                retry: self.retry.clone(),
                dead_letter: self.dead_letter.clone(),
                errors: self.errors.clone(),
                server: self.name.clone(),
                quiescing: self.quiescing.subscribe(),
                revoked: Rc::clone(&self.revoked),
                revocations: Rc::clone(&self.revocations),
            },
        );
        ctx.spawn(work.into_actor(self).map(move |end, act, ctx| {
            act.busy.insert(partition.clone(), false);
            match end {
                // pump starts nothing once quiescing.
                BatchEnd::Done | BatchEnd::Interrupted => act.pump(partition, ctx),
                BatchEnd::Stopped { offset, error } => {
                    act.stopped.insert(partition.clone(), offset);
                    for batch in act.queued.remove(&partition).into_iter().flatten() {
                        release(&batch);
                    }
                    let _ = act.faults.send(PartitionStopped {
                        partition,
                        offset,
                        error,
                    });
                }
            }
            if *act.quiescing.borrow() && act.is_idle() {
                for waiter in act.idle_waiters.drain(..) {
                    let _ = waiter.send(());
                }
            }
        }));
    }
}

/// Stops starting new messages and answers once no handler runs any more.
/// Messages waiting for a retry are given up, unacknowledged.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Quiesce(pub(crate) oneshot::Sender<()>);

impl Handler<Quiesce> for EachMessageActor {
    type Result = ();

    fn handle(&mut self, Quiesce(idle): Quiesce, _ctx: &mut Context<Self>) {
        self.quiescing.send_replace(true);
        for batch in self.queued.drain().flat_map(|(_, batches)| batches) {
            release(&batch);
        }
        if self.is_idle() {
            let _ = idle.send(());
        } else {
            self.idle_waiters.push(idle);
        }
    }
}

/// Ends the actor (and any handler still running past the shutdown deadline).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Terminate;

impl Handler<Terminate> for EachMessageActor {
    type Result = ();

    fn handle(&mut self, _: Terminate, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Actor for EachMessageActor {
    type Context = Context<Self>;
}

impl Handler<MessageBatch> for EachMessageActor {
    type Result = ();

    fn handle(&mut self, batch: MessageBatch, ctx: &mut Context<Self>) {
        let partition = batch.partition().clone();
        if self.stopped.contains_key(&partition)
            || *self.quiescing.borrow()
            || is_stale(&self.revoked, &batch)
        {
            // Never committed past: it comes again after the restart or rebalance.
            release(&batch);
            return;
        }
        self.queued
            .entry(partition.clone())
            .or_default()
            .push_back(batch);
        self.pump(partition, ctx);
    }
}

/// On revoke, messages of the revoked partitions not started yet are given
/// back at once, so the rebalance waits only for the handlers in flight.
impl Handler<GroupEvent> for EachMessageActor {
    type Result = ();

    fn handle(&mut self, event: GroupEvent, _ctx: &mut Context<Self>) {
        let GroupEvent::Revoked(revoked) = event else {
            return;
        };
        for partition in &revoked.partitions {
            self.revoked
                .borrow_mut()
                .insert(partition.clone(), revoked.generation);
            if let Some(batches) = self.queued.get_mut(partition) {
                let (stale, fresh): (VecDeque<_>, VecDeque<_>) = batches
                    .drain(..)
                    .partition(|b| b.generation() <= revoked.generation);
                *batches = fresh;
                for batch in stale {
                    release(&batch);
                }
            }
        }
        self.revocations.notify_waiters();
    }
}

/// True when `batch` was fetched before its partition was last revoked.
fn is_stale(revoked: &RefCell<HashMap<TopicPartition, i32>>, batch: &MessageBatch) -> bool {
    revoked
        .borrow()
        .get(batch.partition())
        .is_some_and(|&generation| batch.generation() <= generation)
}

/// Gives every message of `batch` back unhandled.
fn release(batch: &MessageBatch) {
    if let Some(first) = batch.messages().first() {
        batch.release_from(first.offset);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SubscribeFailures(pub(crate) Recipient<HandlerFailure>);

impl Handler<SubscribeFailures> for EachMessageActor {
    type Result = ();

    fn handle(
        &mut self,
        SubscribeFailures(recipient): SubscribeFailures,
        _ctx: &mut Context<Self>,
    ) {
        self.errors = Some(recipient);
    }
}

/// What one batch's handling needs.
struct Worker {
    handler: BoxedHandler,
    retry: RetrySettings,
    dead_letter: Option<DeadLetterSink>,
    errors: Option<Recipient<HandlerFailure>>,
    server: String,
    quiescing: watch::Receiver<bool>,
    revoked: Rc<RefCell<HashMap<TopicPartition, i32>>>,
    revocations: Rc<Notify>,
}

/// How a batch's handling ended.
enum BatchEnd {
    /// Every message handled or dead-lettered.
    Done,
    /// The server began shutting down, or the partition was revoked: the rest
    /// was given back unhandled.
    Interrupted,
    /// A message failed for good with no dead-letter topic.
    Stopped { offset: i64, error: HandlerError },
}

/// Handles a batch message by message.
async fn handle_batch(batch: MessageBatch, worker: Worker) -> BatchEnd {
    let Worker {
        handler,
        retry,
        dead_letter,
        errors,
        server,
        mut quiescing,
        revoked,
        revocations,
    } = worker;
    let policy = RestartPolicy {
        max_restarts: retry.retries,
        window: std::time::Duration::MAX,
        backoff_min: retry.backoff,
        backoff_max: retry.backoff_max,
    };
    for message in batch.messages() {
        if *quiescing.borrow() || is_stale(&revoked, &batch) {
            batch.release_from(message.offset);
            return BatchEnd::Interrupted;
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            let error = match run_handler(&handler, message.clone()).await {
                Ok(()) => {
                    batch.ack_message(message);
                    break;
                }
                Err(error) => error,
            };
            let report = |action: FailureAction| {
                let failure = HandlerFailure {
                    server: server.clone(),
                    message: message.clone(),
                    attempts,
                    error: error.clone(),
                    action,
                };
                tracing::warn!(server = %server, partition = message.partition, offset = message.offset, attempts, error = %failure.error, action = ?failure.action, "handler failed");
                if let Some(errors) = &errors {
                    // Never block consumption on the error subscriber.
                    let _ = errors.try_send(failure);
                }
            };
            if error.is_recoverable() && attempts <= retry.retries {
                let delay = backoff_with_jitter(&policy, attempts - 1);
                report(FailureAction::Retrying(delay));
                let wait = tokio::time::sleep(delay);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        _ = &mut wait => break,
                        // Shutting down, or the partition was revoked: the message
                        // is given back and comes again to the partition's next owner.
                        _ = quiescing.wait_for(|q| *q) => {
                            batch.release_from(message.offset);
                            return BatchEnd::Interrupted;
                        }
                        _ = revocations.notified() => {
                            if is_stale(&revoked, &batch) {
                                batch.release_from(message.offset);
                                return BatchEnd::Interrupted;
                            }
                        }
                    }
                }
                continue;
            }
            match &dead_letter {
                Some(sink) if dead_letter_write(sink, message, &error, attempts).await => {
                    report(FailureAction::DeadLettered);
                    batch.ack_message(message);
                    break;
                }
                _ => {
                    report(FailureAction::Stopped);
                    return BatchEnd::Stopped {
                        offset: message.offset,
                        error,
                    };
                }
            }
        }
    }
    BatchEnd::Done
}

/// Calls the handler, turning a panic (while creating or polling its future)
/// into a fatal failure.
async fn run_handler(handler: &BoxedHandler, message: ConsumedMessage) -> Result<(), HandlerError> {
    let future = match catch_unwind(AssertUnwindSafe(|| handler(message))) {
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

struct CatchPanic(Pin<Box<dyn Future<Output = Result<(), HandlerError>>>>);

impl Future for CatchPanic {
    type Output = Result<(), HandlerError>;

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

/// Writes a failed message to the dead-letter topic; true once it is stored.
async fn dead_letter_write(
    sink: &DeadLetterSink,
    message: &ConsumedMessage,
    error: &HandlerError,
    attempts: u32,
) -> bool {
    let mut out = OutgoingMessage {
        topic: sink.topic.clone(),
        partition: None,
        key: message.key.clone(),
        value: message.value.clone(),
        headers: message.headers.clone(),
        timestamp: message.timestamp,
    };
    out = out
        .with_header(headers::ORIGINAL_TOPIC, message.topic.as_bytes())
        .with_header(headers::ORIGINAL_PARTITION, message.partition.to_string())
        .with_header(headers::ORIGINAL_OFFSET, message.offset.to_string())
        .with_header(headers::ERROR, error.reason())
        .with_header(headers::ATTEMPTS, attempts.to_string());
    match sink.producer.write([out]).await {
        Ok(report) if report.is_success() => true,
        Ok(report) => {
            tracing::error!(error = ?report.failures().next(), "dead-letter write failed");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "dead-letter write failed");
            false
        }
    }
}
