//! The engine of a group member: one dedicated thread owns the librdkafka
//! consumer, fetches, hands batches to subscribers, counts acknowledgements,
//! pauses partitions at the bound, commits, and runs the rebalance barrier.
//!
//! A thread of its own, because librdkafka runs rebalance callbacks on the thread
//! that polls, and the barrier must wait there for acknowledgements that arrive
//! from actors; doing that on an actix thread would deadlock it.
//!
//! This file holds the state and the thread's loop; `command` is the private
//! protocol handles and the actor speak to it, `flow` reads partitions within
//! the bounds (messages and bytes) and hands batches out, `split_queue` is a
//! partition's own queue in librdkafka (read in batches, its length the
//! prefetch; `crate::queue` the handle it and the commit queue share),
//! `crate::wake` lets the thread sleep until there is work, `commit` commits
//! what was acknowledged without waiting (results come back on
//! `commit_queue`), `rebalance` takes partitions on and lets them go,
//! `leave` waits for the coordinator before a close leaves the group.

mod command;
mod commit;
mod commit_queue;
mod flow;
mod leave;
mod missing_topics;
mod observe;
mod rebalance;
mod split_queue;

pub(crate) use command::{Command, Commands, PullSink, Uncommitted};

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use actix::dev::SendError;
use actix::Recipient;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::ledger::{Ledger, MAX_SUBSCRIBERS};
use super::GroupStatus;
use crate::config::ConsumerGroupConfig;
use crate::consumer::context::LastErrorLog;
use crate::error::{CommitFailure, Refusal};
use crate::interceptor::{Chain, ClientInfo};
use crate::observe::{GroupMetrics, GroupProbe, StatsSink};
use crate::record::{
    AckKind, AckSender, AckSink, Assigned, ConsumedMessage, GroupError, GroupEvent, MessageBatch,
    PartitionOffset, Revoked, StartingOffset, SubscriberMask, TopicPartition,
};
use crate::supervision::{client_failure, AuthorizationScope, ClientFailure};

/// Events taken from the main queue per round.
const POLL_BURST: usize = 100;

/// The longest the engine sleeps with nothing to do and no deadline sooner.
/// Everything that brings work wakes it; this only bounds what a missed
/// wake-up could cost.
const IDLE_CHECK: Duration = Duration::from_millis(100);

/// How long a close may take beyond its drain (the final commit, leaving)
/// before the engine ends anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// How soon a batch a subscriber's full mailbox refused is offered again. A
/// mailbox gives no signal when it gets room, and a subscriber that
/// acknowledges later (or through commits) would otherwise wait for
/// [`IDLE_CHECK`].
const OUTBOX_RETRY: Duration = Duration::from_millis(1);

/// How long a partition may sit at its share of the bound before it is also
/// paused in librdkafka, which then drops what it prefetched for it. Shorter
/// stalls are absorbed by not reading the partition's queue: librdkafka resumes a
/// paused partition only at its broker thread's next wake-up (up to a second), so
/// pausing on every brief backlog would throttle a healthy consumer.
const PAUSE_AFTER: Duration = Duration::from_secs(1);

type Consumer_ = BaseConsumer<GroupContext>;

/// Where a message subscriber's batches go.
pub(crate) enum MessageSink {
    Actor(Recipient<MessageBatch>),
    Pull(PullSink),
}

impl MessageSink {
    /// Offers a batch without blocking; gives it back when there is no room.
    fn offer(&self, batch: MessageBatch) -> Result<(), Offer> {
        match self {
            MessageSink::Actor(recipient) => recipient.try_send(batch).map_err(|e| match e {
                SendError::Full(batch) => Offer::Full(batch),
                SendError::Closed(batch) => Offer::Closed(batch),
            }),
            MessageSink::Pull(sink) => sink.batches.try_send(batch).map_err(|e| match e {
                tokio::sync::mpsc::error::TrySendError::Full(batch) => Offer::Full(batch),
                tokio::sync::mpsc::error::TrySendError::Closed(batch) => Offer::Closed(batch),
            }),
        }
    }

    /// Tells a puller of `event` at once (actor subscribers get events
    /// through their own event recipients).
    fn tell(&self, event: &GroupEvent) {
        if let MessageSink::Pull(sink) = self {
            // A puller gone is noticed by its batch channel.
            let _ = sink.events.send(event.clone());
        }
    }
}

/// A batch a sink did not take, handed back.
enum Offer {
    Full(MessageBatch),
    /// The subscriber is gone: the batch is released with the rest of its
    /// outbox, never lost (an unreleased batch would hold its partition's
    /// revoke until `drainTimeout`).
    Closed(MessageBatch),
}

struct Subscriber {
    bit: SubscriberMask,
    sink: MessageSink,
    /// Batches not offered yet: the sink had no room.
    outbox: VecDeque<MessageBatch>,
}

struct Partition {
    id: TopicPartition,
    /// Where consumption started when it was assigned.
    start: StartingOffset,
    ledger: Ledger,
    /// This partition's own queue in librdkafka, read only while there is
    /// room; its length tells what librdkafka prefetched.
    queue: Option<split_queue::SplitQueue>,
    /// The sizes of the partition's recent messages.
    sizes: flow::RecentSizes,
    /// Since when the partition has been at its share of the bound.
    full_since: Option<Instant>,
    /// Whether librdkafka currently has it paused.
    paused: bool,
    /// Not read, and paused, until then: a subscriber's next message of it is
    /// not due before (a delay topic's).
    held_until: Option<Instant>,
}

/// Fixed settings of one group member: who it is to interceptors, and its
/// group's config as read.
pub(crate) struct EngineSettings {
    pub(crate) client: ClientInfo,
    pub(crate) config: Arc<ConsumerGroupConfig>,
}

/// All mutable state of the member, behind the context's lock.
pub(crate) struct Engine {
    settings: EngineSettings,
    interceptors: Chain,
    /// Wakes this engine's thread; shared with `commands_tx` and the queues'
    /// non-empty callbacks.
    waker: Arc<crate::wake::Waker>,
    commands_tx: Commands,
    commands: Receiver<Command>,
    /// Where the batches handed out send their acknowledgements (`commands`).
    ack_sink: Arc<dyn AckSink>,
    partitions: Vec<Partition>,
    subscribers: Vec<Subscriber>,
    event_subscribers: Vec<Recipient<GroupEvent>>,
    held: usize,
    max_held: usize,
    generation: i32,
    closers: Vec<tokio::sync::oneshot::Sender<Result<(), Uncommitted>>>,
    /// What was acknowledged but whose commit failed, per partition, and the
    /// last failure: a close reports it instead of claiming a clean end.
    uncommitted: Option<Uncommitted>,
    close_started: Option<Instant>,
    /// How long the close may wait for acknowledgements.
    close_drain: Duration,
    unsubscribed: bool,
    last_commit: Instant,
    /// When subscribers last acknowledged something: a member at its bound
    /// without progress for `PAUSE_AFTER` is stalled.
    last_progress: Instant,
    commits: commit::Commits,
    rotation: usize,
    failure: Option<String>,
    /// The consumer, for splitting partition queues inside rebalance callbacks.
    consumer: Weak<Consumer_>,
    /// What the member records in the component's metrics, when they are on.
    metrics: Option<GroupMetrics>,
    /// When the metrics were last brought up to date.
    published: observe::Published,
    /// What health checks read: the loop's beat, the assignment.
    probe: Arc<GroupProbe>,
    /// Subscribed topics the cluster does not have (yet).
    missing_topics: missing_topics::MissingTopics,
}

/// The librdkafka context: routes logs and rebalance callbacks into the engine.
pub(crate) struct GroupContext {
    engine: Mutex<Engine>,
    /// The engine's waker: rebalance and error callbacks change what the next
    /// pass has to do.
    waker: Arc<crate::wake::Waker>,
    client_name: String,
    /// A consumer's error events carry only a code; the detail (the broker's
    /// answer to a login) is what librdkafka logs.
    last_error_log: LastErrorLog,
    /// Where librdkafka's statistics go, when the metrics are on.
    stats: Option<StatsSink>,
}

impl GroupContext {
    pub(crate) fn new(engine: Engine) -> Self {
        GroupContext {
            stats: engine.metrics.as_ref().map(GroupMetrics::stats),
            client_name: format!("consumer group {}", engine.settings.client.name),
            waker: Arc::clone(&engine.waker),
            engine: Mutex::new(engine),
            last_error_log: LastErrorLog::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        if let Some(stats) = &self.stats {
            stats.record(&statistics);
        }
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        crate::telemetry::librdkafka_log(&self.client_name, level, facility, message);
        self.last_error_log.note(level, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let failure = error
            .rdkafka_error_code()
            .and_then(|code| Some((code, client_failure(code, AuthorizationScope::Client)?)));
        match failure {
            // The member fails: it is restarted with backoff, and past the
            // limit the group escalates, saying why.
            Some((code, failure)) => {
                let detail = match failure {
                    // A missing ACL is explained by its code.
                    ClientFailure::Refused(Refusal::Authorization) => code.to_string(),
                    _ => reason.to_string(),
                };
                self.lock().failure = Some(failure.describe(&detail));
                self.waker.wake();
            }
            None => tracing::warn!(error = %error, reason, "consumer group client error"),
        }
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => self.lock().revoke(consumer, list),
            // Split before librdkafka starts fetching, so no message of these
            // partitions reaches the shared queue.
            Rebalance::Assign(list) => self.lock().take_partitions(list),
            Rebalance::Error(_) => {}
        }
        self.waker.wake();
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => self.lock().assign(consumer, list),
            Rebalance::Error(error) => {
                let mut engine = self.lock();
                let message = format!("rebalance failed: {error}");
                let event = GroupEvent::Error(engine.error_event(message));
                engine.emit(event);
            }
            Rebalance::Revoke(_) => {}
        }
        self.waker.wake();
    }
}

fn partitions_of(list: &TopicPartitionList) -> Vec<TopicPartition> {
    list.elements()
        .iter()
        .map(|e| TopicPartition {
            topic: e.topic().into(),
            partition: e.partition(),
        })
        .collect()
}

/// The group generation, read from librdkafka's group metadata.
fn generation_of(consumer: &BaseConsumer<GroupContext>) -> i32 {
    // SAFETY: the handle is live for the call; the metadata copy is freed here.
    unsafe {
        let metadata =
            rdkafka::bindings::rd_kafka_consumer_group_metadata(consumer.client().native_ptr());
        if metadata.is_null() {
            return -1;
        }
        let generation =
            rdkafka::bindings::rd_kafka_consumer_group_metadata_generation_id(metadata);
        rdkafka::bindings::rd_kafka_consumer_group_metadata_destroy(metadata);
        generation
    }
}

impl Engine {
    pub(crate) fn new(
        settings: EngineSettings,
        interceptors: Chain,
        metrics: Option<GroupMetrics>,
        probe: Arc<GroupProbe>,
    ) -> Self {
        let (sender, commands) = std::sync::mpsc::channel();
        let waker = Arc::new(crate::wake::Waker::default());
        let commands_tx = Commands::new(sender, Arc::clone(&waker));
        Engine {
            settings,
            interceptors,
            waker,
            ack_sink: Arc::new(commands_tx.clone()),
            commands_tx,
            commands,
            partitions: Vec::new(),
            subscribers: Vec::new(),
            event_subscribers: Vec::new(),
            held: 0,
            max_held: 0,
            generation: -1,
            closers: Vec::new(),
            uncommitted: None,
            close_started: None,
            close_drain: Duration::MAX,
            unsubscribed: false,
            last_commit: Instant::now(),
            last_progress: Instant::now(),
            commits: commit::Commits::default(),
            rotation: 0,
            failure: None,
            consumer: Weak::new(),
            metrics,
            published: observe::Published::default(),
            probe,
            missing_topics: missing_topics::MissingTopics::default(),
        }
    }

    pub(crate) fn commands(&self) -> Commands {
        self.commands_tx.clone()
    }

    /// Asks the cluster which subscribed topics it lacks; names each newly
    /// missing one in an error event, logs those still missing now and then,
    /// and those that appeared. False when it found nothing missing.
    fn look_for_topics(&mut self, consumer: &Consumer_) -> bool {
        let change = self
            .missing_topics
            .ask(consumer, &self.settings.config.topics);
        for topic in &change.missing {
            let message = format!(
                "subscribed topic {topic:?} does not exist on the cluster: the group consumes \
                 it once it is created (asked for every {:?})",
                missing_topics::RECHECK
            );
            let event = GroupEvent::Error(self.error_event(message));
            self.emit(event);
        }
        self.topics_appeared(&change.appeared);
        let missing = self.missing_topics.list();
        if change.missing.is_empty() && self.missing_topics.log_due() {
            tracing::warn!(group = %self.settings.config.group_id, topics = ?missing, "subscribed topics still do not exist on the cluster");
        }
        self.probe.set_missing_topics(missing.clone());
        !missing.is_empty()
    }

    /// Says that `topics`, missing before, exist now.
    fn topics_appeared(&self, topics: &[String]) {
        for topic in topics {
            tracing::info!(group = %self.settings.config.group_id, topic, "subscribed topic exists now: consuming it");
        }
        self.probe.set_missing_topics(self.missing_topics.list());
    }

    fn error_event(&self, message: String) -> GroupError {
        GroupError {
            group_id: self.settings.config.group_id.clone(),
            generation: self.generation,
            message,
        }
    }

    /// Sends an event to every event subscriber and every pull subscriber.
    fn emit(&mut self, event: GroupEvent) {
        match (&event, &self.metrics) {
            (GroupEvent::Error(error), _) => {
                tracing::warn!(group = %self.settings.config.group_id, error = %error.message, "consumer group error");
            }
            (GroupEvent::Assigned(_), Some(metrics)) => metrics.rebalanced(true),
            (GroupEvent::Revoked(_), Some(metrics)) => metrics.rebalanced(false),
            _ => {}
        }
        if let GroupEvent::Assigned(assigned) = &event {
            self.probe.set_assigned(true);
            let topics = assigned.partitions.iter().map(|(p, _)| &*p.topic);
            let appeared = self.missing_topics.found(topics);
            if !appeared.is_empty() {
                self.topics_appeared(&appeared);
            }
        }
        if let GroupEvent::Assigned(_) | GroupEvent::Revoked(_) = &event {
            // The assignment changed: the gauges follow on the next pass.
            self.published.state_due();
        }
        self.interceptors
            .on_group_event(&self.settings.client, &event);
        for recipient in &self.event_subscribers {
            // Events are few (one per rebalance or error) and must not be dropped.
            recipient.do_send(event.clone());
        }
        for subscriber in &self.subscribers {
            subscriber.sink.tell(&event);
        }
    }

    /// A partition to ask the coordinator about before leaving: one the
    /// member holds, or the first of the group's topics.
    fn coordinator_probe(&self) -> Option<(String, i32)> {
        match self.partitions.first() {
            Some(held) => Some((held.id.topic.to_string(), held.id.partition)),
            None => self.settings.config.topics.first().map(|t| (t.clone(), 0)),
        }
    }

    fn partition_index(&self, topic: &str, partition: i32) -> Option<usize> {
        self.partitions
            .iter()
            .position(|p| p.id.partition == partition && &*p.id.topic == topic)
    }

    // ---- Commands ----

    fn serve_commands(&mut self, consumer: &BaseConsumer<GroupContext>) {
        while let Ok(command) = self.commands.try_recv() {
            self.handle(consumer, command);
        }
    }

    fn handle(&mut self, consumer: &BaseConsumer<GroupContext>, command: Command) {
        match command {
            Command::Ack(ack) => match ack.kind {
                AckKind::Handled => {
                    self.acknowledge(ack.by, &ack.partition, ack.from, ack.to);
                    self.apply_pauses(consumer);
                }
                AckKind::Released => self.release(ack.by, &ack.partition, ack.from, ack.to),
            },
            Command::Commit { by, offsets, reply } => {
                for (partition, from, to) in &offsets {
                    self.acknowledge(by, partition, *from, *to);
                }
                self.request_commit(reply);
                self.commit_due(consumer);
                self.apply_pauses(consumer);
            }
            Command::SubscribeMessages { sink, reply } => {
                let _ = reply.send(self.add_subscriber(sink));
            }
            Command::SubscribeEvents(recipient) => {
                if let Some(current) = self.current_assignment() {
                    recipient.do_send(GroupEvent::Assigned(current));
                }
                self.event_subscribers.push(recipient);
            }
            Command::Hold { partition, until } => {
                if let Some(index) = self.partition_index(&partition.topic, partition.partition) {
                    self.partitions[index].held_until = Some(until);
                    self.apply_pauses(consumer);
                }
            }
            Command::GroupMetadata(reply) => {
                let _ = reply.send(consumer.group_metadata());
            }
            Command::Status(reply) => {
                self.commit_due(consumer);
                let _ = reply.send(self.status(consumer));
            }
            Command::Close { drain, reply } => {
                self.close_drain = self.close_drain.min(drain);
                self.closers.push(reply);
                self.close_started.get_or_insert_with(Instant::now);
            }
            Command::Recycle(messages) => drop(messages),
            #[cfg(feature = "testing")]
            Command::SimulateFatalError { reason, reply } => {
                let _ = reply.send(raise_fatal_error(consumer, &reason));
            }
        }
    }

    fn add_subscriber(&mut self, sink: MessageSink) -> Result<(), String> {
        let used = self.subscribers.iter().fold(0u64, |mask, s| mask | s.bit);
        let free = (0..MAX_SUBSCRIBERS).find(|i| used & (1 << i) == 0);
        let Some(index) = free else {
            return Err(format!(
                "a group takes at most {MAX_SUBSCRIBERS} message subscribers"
            ));
        };
        if let Some(current) = self.current_assignment() {
            sink.tell(&GroupEvent::Assigned(current));
        }
        self.subscribers.push(Subscriber {
            bit: 1 << index,
            sink,
            outbox: VecDeque::new(),
        });
        Ok(())
    }

    /// The assignment so far, told to a subscriber that attaches after it was
    /// made, so that every subscriber learns which partitions the member holds.
    fn current_assignment(&self) -> Option<Assigned> {
        (!self.partitions.is_empty()).then(|| Assigned {
            group_id: self.settings.config.group_id.clone(),
            generation: self.generation,
            partitions: self
                .partitions
                .iter()
                .map(|p| (p.id.clone(), p.start))
                .collect(),
        })
    }

    fn status(&self, consumer: &Consumer_) -> GroupStatus {
        GroupStatus {
            missing_topics: self.missing_topics.list(),
            generation: self.generation,
            assigned: self.partitions.iter().map(|p| p.id.clone()).collect(),
            paused: self
                .partitions
                .iter()
                .filter(|p| p.paused)
                .map(|p| p.id.clone())
                .collect(),
            held: self.held,
            max_held: self.max_held,
            held_bytes: self.partitions.iter().map(|p| p.ledger.held_bytes()).sum(),
            committed: self
                .partitions
                .iter()
                .filter_map(|p| {
                    p.ledger.committed().map(|offset| PartitionOffset {
                        partition: p.id.clone(),
                        offset,
                    })
                })
                .collect(),
            subscribers: self.subscribers.len(),
            positions: self
                .partitions
                .iter()
                .filter_map(|p| {
                    p.ledger.position().map(|offset| PartitionOffset {
                        partition: p.id.clone(),
                        offset,
                    })
                })
                .collect(),
            high_watermarks: self.high_watermarks(consumer),
        }
    }

    fn acknowledge(&mut self, by: SubscriberMask, partition: &TopicPartition, from: i64, to: i64) {
        // Acknowledgements for a partition no longer ours are stale: drop them.
        if let Some(index) = self.partition_index(&partition.topic, partition.partition) {
            let released = self.partitions[index].ledger.acknowledge(by, from, to);
            self.held -= released;
            if released > 0 {
                self.last_progress = Instant::now();
            }
        }
    }

    /// How long the revoke barrier waits for acknowledgements: `drainTimeout`,
    /// or less when a close asked for a shorter drain.
    fn drain_timeout(&self) -> Duration {
        let drain = self.settings.config.flow.drain_timeout;
        if self.close_started.is_some() {
            drain.min(self.close_drain)
        } else {
            drain
        }
    }

    /// When a close gives up on draining and leaves with what it has.
    fn close_deadline(&self) -> Option<Instant> {
        let started = self.close_started?;
        started.checked_add(self.drain_timeout().saturating_add(CLOSE_GRACE))
    }

    fn release(&mut self, by: SubscriberMask, partition: &TopicPartition, from: i64, to: i64) {
        if let Some(index) = self.partition_index(&partition.topic, partition.partition) {
            self.partitions[index].ledger.release(by, from, to);
        }
    }

    /// How long the engine may sleep after a pass that found nothing to do:
    /// until the first thing that is due without anyone waking it (the next
    /// commit by interval, a commit's timeout, pausing a partition or a
    /// stalled member, the end of a close's drain, a refused batch's retry),
    /// and [`IDLE_CHECK`] at most. Deadlines already passed were dealt with by
    /// the pass just made (or cannot be yet: an interval commit waits for the
    /// one in flight); counting them would keep the thread spinning.
    fn idle_wait(&self) -> Duration {
        let now = Instant::now();
        let mut due = now + IDLE_CHECK;
        let mut at = |since: Instant, after: Duration| {
            if let Some(deadline) = since.checked_add(after).filter(|d| *d > now) {
                due = due.min(deadline);
            }
        };
        let interval = self.settings.config.fetch.commit_interval;
        if !interval.is_zero() {
            at(self.last_commit, interval);
        }
        if let Some(started) = self.commits.in_flight_since() {
            at(started, self.settings.config.timeout);
        }
        if let Some(retry) = self.commits.retry_at() {
            at(retry, Duration::ZERO);
        }
        for p in &self.partitions {
            if let (false, Some(since)) = (p.paused, p.full_since) {
                at(since, PAUSE_AFTER);
            }
            if let Some(until) = p.held_until {
                at(until, Duration::ZERO);
            }
        }
        if self.is_full() {
            at(self.last_progress, PAUSE_AFTER);
        }
        if let Some(ask) = self.missing_topics.next_ask() {
            at(ask, Duration::ZERO);
        }
        if let Some(deadline) = self.close_deadline() {
            at(deadline, Duration::ZERO);
        }
        if self.subscribers.iter().any(|s| !s.outbox.is_empty()) {
            at(now, OUTBOX_RETRY);
        }
        if let Some((since, every)) = self.next_publication() {
            at(since, every);
        }
        due.saturating_duration_since(now)
    }
}

/// Why the engine thread ended.
#[derive(Clone)]
pub(crate) enum Exit {
    /// Closed on request.
    Closed,
    /// Failed; the actor restarts it.
    Failed(String),
}

/// Makes librdkafka raise a fatal error in this consumer, as a fenced static
/// member would see, so tests can watch the group restart.
#[cfg(feature = "testing")]
fn raise_fatal_error(consumer: &Consumer_, reason: &str) -> Result<(), String> {
    crate::supervision::inject_fatal_error(
        consumer.client().native_ptr(),
        rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID,
        reason,
    )
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
    {
        let mut engine = context.lock();
        engine.consumer = Arc::downgrade(&consumer);
        engine.commits.queue = commit_queue::CommitQueue::new(&consumer, Arc::clone(&waker));
    }
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
    let (closers, outcome) = {
        let mut engine = context.lock();
        if matches!(exit, Exit::Closed) {
            // A failure is recorded in `uncommitted` (and emitted).
            engine.commit_and_wait(&consumer, None);
        } else if !engine.closers.is_empty() {
            // The member failed while closing: what was acknowledged and not
            // committed stays so, and the close must say it, not answer Ok.
            engine.leave_uncommitted(CommitFailure::MemberStopped);
        }
        // Partition queues hold the consumer: let go of them first; and the
        // commit queue before the consumer it belongs to.
        engine.partitions.clear();
        engine.commits.queue = None;
        engine.unpublish();
        engine.probe.heartbeat.stop();
        engine.probe.set_assigned(false);
        let outcome = match engine.uncommitted.take() {
            None => Ok(()),
            Some(uncommitted) => Err(uncommitted),
        };
        (std::mem::take(&mut engine.closers), outcome)
    };
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
        self.0.lock().commits.queue = None;
    }
}

/// The engine's loop: a pass serves commands, reads partitions with room,
/// hands out batches, commits, pauses and resumes, then serves the consumer's
/// own queue (rebalances, errors); a pass that found nothing to read sleeps
/// until woken (see `wake`) or until something is due.
fn serve(consumer: &Arc<Consumer_>, context: &GroupContext, waker: &crate::wake::Waker) -> Exit {
    let events = split_queue::ConsumerQueue::new(consumer);
    loop {
        let (read, idle_wait) = {
            let mut engine = context.lock();
            engine.serve_commands(consumer);
            let read = engine.fill();
            engine.dispatch();
            engine.commit_due(consumer);
            engine.apply_pauses(consumer);
            engine.publish(consumer);
            if engine
                .missing_topics
                .next_ask()
                .is_some_and(|ask| ask <= Instant::now())
            {
                engine.look_for_topics(consumer);
            }
            engine.probe.heartbeat.beat();
            if let Some(reason) = engine.failure.take() {
                // Subscribers hear why before the member is replaced.
                let event = GroupEvent::Error(engine.error_event(reason.clone()));
                engine.emit(event);
                return Exit::Failed(reason);
            }
            if engine.close_started.is_some() {
                if !engine.unsubscribed {
                    engine.unsubscribed = true;
                    let probe = engine.coordinator_probe();
                    let session = engine.settings.config.group.session_timeout;
                    let group = engine.settings.config.group_id.clone();
                    drop(engine);
                    if let Some((topic, partition)) = probe {
                        let waited = leave::await_coordinator(
                            consumer,
                            &group,
                            (&topic, partition),
                            session,
                        );
                        // The drain's time starts now: handlers went on
                        // meanwhile, and the wait must not eat into it.
                        if let Some(started) = context.lock().close_started.as_mut() {
                            *started += waited;
                        }
                    }
                    consumer.unsubscribe();
                    continue;
                }
                let out_of_time = engine
                    .close_deadline()
                    .is_some_and(|deadline| Instant::now() > deadline);
                if engine.partitions.is_empty() || out_of_time {
                    return Exit::Closed;
                }
            }
            (read, engine.idle_wait())
        };
        let mut served = 0;
        while served < POLL_BURST {
            let polled = consumer.poll(Duration::ZERO);
            // Nothing returned: the queue was empty, or rust-rdkafka served an
            // event there (a rebalance, a log line) and more may follow, which
            // would not wake the engine (the queue never became empty).
            if polled.is_none()
                && events
                    .as_ref()
                    .is_none_or(split_queue::ConsumerQueue::is_empty)
            {
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
                    context.lock().failure = Some(reason);
                    break;
                }
                // librdkafka's way of saying a subscribed topic does not
                // exist, without naming it: the member finds out which.
                Err(KafkaError::MessageConsumption(
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
                )) if context.lock().look_for_topics(consumer) => break,
                Err(error) => {
                    let mut engine = context.lock();
                    let event =
                        GroupEvent::Error(engine.error_event(format!("fetch error: {error}")));
                    engine.emit(event);
                    break;
                }
            }
        }
        if read == 0 && served == 0 {
            waker.wait(idle_wait);
        }
    }
}
