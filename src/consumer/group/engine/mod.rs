//! The engine of a group member: one dedicated thread owns the librdkafka
//! consumer, fetches, hands batches to subscribers, counts acknowledgements,
//! pauses partitions at the bound, commits, and runs the rebalance barrier.
//!
//! A thread of its own, because librdkafka runs rebalance callbacks on the thread
//! that polls, and the barrier must wait there for acknowledgements that arrive
//! from actors; doing that on an actix thread would deadlock it.
//!
//! The [`Engine`] here coordinates parts that each own their state:
//! `partitions` (the ledgers, reading within the bounds, pauses), `dispatch`
//! (subscribers and their outboxes), `commit` (the commit in flight, explicit
//! commits, what was left uncommitted), `closing` (a close's drain and its
//! waiters), `observe` (metrics) and `missing_topics`. `thread` is the loop
//! that drives it; `command` the private protocol handles and the actor
//! speak to it; `leave` waits for
//! the coordinator before a close leaves the group.

mod closing;
mod command;
mod commit;
mod dispatch;
mod leave;
mod missing_topics;
mod observe;
mod partitions;
mod thread;

pub(crate) use command::{Command, Commands, Uncommitted};
pub(crate) use dispatch::{MessageSink, PullSink};
pub(crate) use thread::{run, Exit};

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, RebalanceProtocol,
};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::status::GroupStatus;
use crate::config::ConsumerGroupConfig;
use crate::consumer::context::LastErrorLog;
use crate::error::{CommitFailure, Refusal};
use crate::interceptor::{Chain, ClientInfo};
use crate::native::commit_queue::CommitQueue;
use crate::native::split_queue::SplitQueue;
use crate::observe::{GroupMetrics, GroupProbe, StatsSink};
use crate::record::{
    AckKind, Assigned, GroupError, GroupEvent, Revoked, StartingOffset, TopicPartition,
};
use crate::supervision::{client_failure, AuthorizationScope, ClientFailure};
use closing::{Closer, Closing};
use commit::{CommitReply, Committer};
use dispatch::{Departures, Dispatch, Undelivered};
use observe::Observer;
use partitions::Partitions;

/// The longest the engine sleeps with nothing to do and no deadline sooner.
/// Everything that brings work wakes it; this only bounds what a missed
/// wake-up could cost.
const IDLE_CHECK: Duration = Duration::from_millis(100);

/// How soon a batch a subscriber's full mailbox refused is offered again. A
/// mailbox gives no signal when it gets room, and a subscriber that
/// acknowledges later (or through commits) would otherwise wait for
/// [`IDLE_CHECK`].
const OUTBOX_RETRY: Duration = Duration::from_millis(1);

type Consumer_ = BaseConsumer<GroupContext>;

/// Fixed settings of one group member: who it is to interceptors, and its
/// group's config as read.
pub(crate) struct EngineSettings {
    pub(crate) client: ClientInfo,
    pub(crate) config: Arc<ConsumerGroupConfig>,
}

/// All mutable state of the member, behind the context's lock: the parts,
/// and what ties them together.
pub(crate) struct Engine {
    settings: EngineSettings,
    interceptors: Chain,
    /// Wakes this engine's thread; shared with `commands_tx` and the queues'
    /// non-empty callbacks.
    waker: Arc<crate::wake::Waker>,
    commands_tx: Commands,
    commands: Receiver<Command>,
    partitions: Partitions,
    dispatch: Dispatch,
    committer: Committer,
    closing: Closing,
    observer: Observer,
    /// Subscribed topics the cluster does not have (yet).
    missing_topics: missing_topics::MissingTopics,
    generation: i32,
    /// Why the member fails, once it does.
    failure: Option<String>,
    /// What health checks read: the loop's beat, the assignment.
    probe: Arc<GroupProbe>,
}

/// What a pass of the loop asks of the thread.
enum Pass {
    /// Carry on: `read` messages were read, and the thread may sleep for
    /// `idle_wait` when nothing else came.
    Continue { read: usize, idle_wait: Duration },
    /// A close started: wait for the coordinator (asking about `probe`),
    /// then unsubscribe.
    Leave {
        probe: Option<(String, i32)>,
        session: Duration,
        group: String,
    },
    /// The close is done draining.
    Closed,
    /// The member failed.
    Failed(String),
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
            stats: engine.stats_sink(),
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
                self.lock().fail(failure.describe(&detail));
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
            Rebalance::Assign(list) => self.lock().take_partitions(consumer, list),
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
fn generation_of<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> i32 {
    crate::native::client::group_generation(consumer.client())
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
        let config = &settings.config;
        let flow = &config.flow;
        Engine {
            partitions: Partitions::new(flow.max_buffered, flow.max_buffered_bytes),
            dispatch: Dispatch::new(Arc::new(commands_tx.clone()), flow.delivery_batch),
            committer: Committer::new(config.fetch.commit_interval, config.timeout),
            closing: Closing::new(flow.drain_timeout),
            observer: Observer::new(metrics, config.fetch.read_lag_interval),
            missing_topics: missing_topics::MissingTopics::default(),
            settings,
            interceptors,
            waker,
            commands_tx,
            commands,
            generation: -1,
            failure: None,
            probe,
        }
    }

    pub(crate) fn commands(&self) -> Commands {
        self.commands_tx.clone()
    }

    /// Where librdkafka's statistics go, when the metrics are on.
    fn stats_sink(&self) -> Option<StatsSink> {
        self.observer.metrics_ref().map(GroupMetrics::stats)
    }

    /// The member fails for `reason` on its next pass.
    fn fail(&mut self, reason: String) {
        self.failure = Some(reason);
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
        match (&event, self.observer.metrics()) {
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
            self.observer.state_due();
        }
        self.interceptors
            .on_group_event(&self.settings.client, &event);
        self.dispatch.tell(&event);
    }

    fn emit_error(&mut self, message: String) {
        let event = GroupEvent::Error(self.error_event(message));
        self.emit(event);
    }

    // ---- Missing topics ----

    /// Asks the cluster which subscribed topics it lacks; names each newly
    /// missing one in an error event, logs those still missing now and then,
    /// and those that appeared. False when it found nothing missing.
    fn look_for_topics(&mut self, consumer: &Consumer_) -> bool {
        let change = self
            .missing_topics
            .ask(consumer, &self.settings.config.topics);
        for topic in &change.missing {
            self.emit_error(format!(
                "subscribed topic {topic:?} does not exist on the cluster: the group consumes \
                 it once it is created (asked for every {:?})",
                missing_topics::RECHECK
            ));
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

    // ---- Commands ----

    fn serve_commands(&mut self, consumer: &Consumer_) {
        while let Ok(command) = self.commands.try_recv() {
            self.handle(consumer, command);
        }
    }

    fn handle(&mut self, consumer: &Consumer_, command: Command) {
        match command {
            Command::Ack(ack) => match ack.kind {
                AckKind::Handled => {
                    let done =
                        self.partitions
                            .acknowledge(ack.by, &ack.partition, ack.from, ack.to);
                    self.probe.count_handled(done);
                    self.apply_pauses(consumer);
                }
                AckKind::Released => {
                    self.partitions
                        .release(ack.by, &ack.partition, ack.from, ack.to);
                }
            },
            Command::Commit { by, offsets, reply } => {
                for (partition, from, to) in &offsets {
                    let done = self.partitions.acknowledge(by, partition, *from, *to);
                    self.probe.count_handled(done);
                }
                self.request_commit(reply);
                self.commit_due(consumer);
                self.apply_pauses(consumer);
            }
            Command::SubscribeMessages { sink, reply } => {
                let current = self.current_assignment();
                let _ = reply.send(self.dispatch.subscribe(sink, current));
            }
            Command::SubscribeEvents(recipient) => {
                let current = self.current_assignment();
                self.dispatch.subscribe_events(recipient, current);
            }
            Command::Hold { partition, until } => {
                if self.partitions.hold_until(&partition, until) {
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
            Command::Close { drain, reply } => self.closing.ask(drain, reply),
            Command::Recycle(messages) => drop(messages),
            #[cfg(feature = "testing")]
            Command::SimulateFatalError { reason, reply } => {
                let _ = reply.send(raise_fatal_error(consumer, &reason));
            }
        }
    }

    /// The assignment so far, told to a subscriber that attaches after it was
    /// made, so that every subscriber learns which partitions the member holds.
    fn current_assignment(&self) -> Option<Assigned> {
        (!self.partitions.is_empty()).then(|| Assigned {
            group_id: self.settings.config.group_id.clone(),
            generation: self.generation,
            partitions: self.partitions.assignment(),
        })
    }

    fn status(&self, consumer: &Consumer_) -> GroupStatus {
        let (held, max_held, held_bytes) = self.partitions.holdings();
        GroupStatus {
            missing_topics: self.missing_topics.list(),
            generation: self.generation,
            assigned: self.partitions.ids().cloned().collect(),
            paused: self.partitions.paused(),
            held,
            max_held,
            held_bytes,
            committed: self.partitions.committed(),
            subscribers: self.dispatch.count(),
            positions: self.partitions.positions(),
            high_watermarks: observe::high_watermarks(consumer, &self.partitions),
        }
    }

    /// A partition to ask the coordinator about before leaving: one the
    /// member holds, or the first of the group's topics.
    fn coordinator_probe(&self) -> Option<(String, i32)> {
        match self.partitions.ids().next() {
            Some(held) => Some((held.topic.to_string(), held.partition)),
            None => self.settings.config.topics.first().map(|t| (t.clone(), 0)),
        }
    }

    // ---- Flow ----

    /// Hands what was fetched to the subscribers (through the interceptors,
    /// counted in the metrics).
    fn dispatch(&mut self) {
        let (interceptors, client) = (&self.interceptors, &self.settings.client);
        let mut metrics = self.observer.metrics();
        let departures = self.dispatch.dispatch(
            &mut self.partitions,
            self.generation,
            |partition, messages| {
                interceptors.before_deliver(client, messages);
                if let Some(metrics) = metrics.as_mut() {
                    metrics.consumed(&partition.topic, messages.len());
                }
            },
        );
        self.depart(departures);
    }

    /// Offers the batches waiting for room again.
    fn flush_outboxes(&mut self) {
        let departures = self.dispatch.flush();
        self.depart(departures);
    }

    /// Subscribers went away. What they never received is acknowledged on
    /// their behalf; what they received and did not acknowledge keeps holding
    /// its partitions, so nothing is committed past it: those messages come
    /// again after a restart or a rebalance.
    fn depart(&mut self, departures: Departures) {
        for Undelivered {
            by,
            partition,
            from,
            to,
        } in departures.undelivered
        {
            let done = self.partitions.acknowledge(by, &partition, from, to);
            self.probe.count_handled(done);
        }
        for _ in 0..departures.subscribers {
            self.emit_error(
                "a message subscriber stopped; messages it had not acknowledged stay uncommitted"
                    .to_string(),
            );
        }
    }

    /// Carries out the pauses and resumes the partitions call for.
    fn apply_pauses(&mut self, consumer: &Consumer_) {
        let changes = self.partitions.decide_pauses();
        let list = |ids: &[TopicPartition]| {
            let mut list = TopicPartitionList::new();
            for id in ids {
                list.add_partition(&id.topic, id.partition);
            }
            list
        };
        if !changes.pause.is_empty() {
            tracing::debug!(group = %self.settings.config.group_id, partitions = changes.pause.len(), over_budget = changes.over_budget, "pausing full partitions");
            if let Err(e) = consumer.pause(&list(&changes.pause)) {
                tracing::warn!(error = %e, "pausing partitions failed");
            }
        }
        if !changes.resume.is_empty() {
            if let Err(e) = consumer.resume(&list(&changes.resume)) {
                tracing::warn!(error = %e, "resuming partitions failed");
            }
        }
    }

    // ---- Commits ----

    /// Commits when due (see `commit`), and reports what ended.
    fn commit_due(&mut self, consumer: &Consumer_) {
        self.committer
            .commit_due(&mut self.partitions, |list| sync_commit(consumer, list));
        self.report_commits();
    }

    /// Commits what was acknowledged (in `only`) and waits for it.
    fn commit_and_wait(&mut self, consumer: &Consumer_, only: Option<&[TopicPartition]>) {
        self.committer
            .commit_and_wait(&mut self.partitions, only, |list| {
                sync_commit(consumer, list)
            });
        self.report_commits();
    }

    fn request_commit(&mut self, reply: CommitReply) {
        self.committer.request(reply);
    }

    /// Tells interceptors, metrics and subscribers of each commit that
    /// ended, then answers the explicit commits it covered.
    fn report_commits(&mut self) {
        for finished in self.committer.take_finished() {
            let outcome = finished.outcome();
            let failure = finished.failure.as_ref().map(|(failure, _)| failure);
            self.interceptors.after_commit(
                &self.settings.client,
                &finished.committed,
                failure.map_or(Ok(()), Err),
                finished.took,
            );
            if let Some(metrics) = self.observer.metrics() {
                metrics.committed(failure.is_none());
            }
            if let Some((failure, offsets)) = &finished.failure {
                // Named with its offsets: the subscriber (and a later close)
                // can tell exactly which messages will be handled again.
                self.emit_error(format!(
                    "commit failed: {failure} (left uncommitted: {})",
                    crate::record::describe_offsets(offsets)
                ));
                self.committer.failure_reported();
            }
            for reply in finished.replies {
                let _ = reply.send(outcome.clone());
            }
        }
    }

    // ---- Rebalances ----

    /// The barrier: stop handing out the revoked partitions, wait (up to
    /// `drainTimeout`) for what subscribers still owe, committing as usual
    /// meanwhile, commit the rest, let go.
    fn revoke(&mut self, consumer: &Consumer_, list: &TopicPartitionList) {
        // With cooperative rebalancing the revoke comes within the new generation.
        self.generation = generation_of(consumer);
        let revoked = partitions_of(list);
        self.partitions.drop_fetched(&revoked);
        // Batches not yet given to a subscriber never will be: release them,
        // never acknowledge them (that would let the commit pass messages
        // nobody handled).
        for undelivered in self.dispatch.withdraw(&revoked) {
            let Undelivered {
                by,
                partition,
                from,
                to,
            } = undelivered;
            self.partitions.release(by, &partition, from, to);
        }
        self.emit(GroupEvent::Revoked(Revoked {
            group_id: self.settings.config.group_id.clone(),
            generation: self.generation,
            partitions: revoked.clone(),
        }));

        let deadline = Instant::now() + self.closing.drain_timeout();
        loop {
            // Commits go on while the barrier waits: an explicit commit is
            // answered, and what is acknowledged is committed, not held
            // back until the barrier ends.
            self.commit_due(consumer);
            let owed = self.partitions.owed(&revoked);
            let now = Instant::now();
            if owed == 0 || now >= deadline {
                if owed > 0 {
                    tracing::warn!(
                        group = %self.settings.config.group_id,
                        unacknowledged = owed,
                        "revoke: drain timeout passed; unacknowledged messages will be delivered again to the next owner"
                    );
                }
                break;
            }
            match self
                .commands
                .recv_timeout((deadline - now).min(Duration::from_millis(20)))
            {
                Ok(command) => self.handle(consumer, command),
                Err(RecvTimeoutError::Timeout) => self.flush_outboxes(),
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // A failure is not lost: it is emitted to subscribers, naming the
        // offsets, and recorded for the close's report.
        self.commit_and_wait(consumer, Some(&revoked));
        if !self.closing.is_started() {
            // Given to another member, which reads them from the committed
            // offset: what this one could not commit is handled again there
            // (emitted when it failed), and no longer this member's to report.
            // A close's own revoke keeps them: they are its report.
            self.committer.forget_uncommitted(&revoked);
        }
        let released = self.partitions.remove(&revoked);
        tracing::debug!(group = %self.settings.config.group_id, revoked = released, "partitions released");
    }

    /// Takes on newly assigned partitions, each with its own queue.
    fn take_partitions(&mut self, consumer: &Consumer_, list: &TopicPartitionList) {
        for id in partitions_of(list) {
            if self.partitions.contains(&id) {
                continue;
            }
            let queue =
                SplitQueue::split(consumer, &id.topic, id.partition, Arc::clone(&self.waker));
            let start = StartingOffset::Reset(self.settings.config.fetch.start_offset);
            self.partitions.take(id, start, queue);
        }
    }

    fn assign(&mut self, consumer: &Consumer_, list: &TopicPartitionList) {
        // Incremental protocols (cooperativeSticky, KIP-848) also call back with
        // an empty assignment when a reconciliation adds nothing (after giving
        // partitions up, say): there is nothing to take on or announce.
        if list.count() == 0
            && matches!(
                consumer.rebalance_protocol(),
                RebalanceProtocol::Cooperative
            )
        {
            return;
        }
        // Normally done before the assignment; here too in case librdkafka skipped it.
        self.take_partitions(consumer, list);
        self.generation = generation_of(consumer);
        let assigned = partitions_of(list);
        let committed = consumer.committed_offsets(list.clone(), self.settings.config.timeout);
        let reset = StartingOffset::Reset(self.settings.config.fetch.start_offset);
        let mut partitions = Vec::with_capacity(assigned.len());
        for id in assigned {
            let start = committed
                .as_ref()
                .ok()
                .and_then(|c| c.find_partition(&id.topic, id.partition))
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(StartingOffset::Committed(o)),
                    _ => None,
                })
                .unwrap_or(reset);
            self.partitions.set_start(&id, start);
            partitions.push((id, start));
        }
        if let Err(e) = committed {
            self.emit_error(format!("cannot read committed offsets: {e}"));
        }
        self.apply_pauses(consumer);
        self.emit(GroupEvent::Assigned(Assigned {
            group_id: self.settings.config.group_id.clone(),
            generation: self.generation,
            partitions,
        }));
    }

    // ---- The loop's pass ----

    /// Commits from now on go out on a queue of `consumer`'s own.
    fn attach(&mut self, consumer: &Consumer_) {
        let queue = CommitQueue::new(consumer, Arc::clone(&self.waker));
        self.committer.set_queue(queue);
    }

    /// Lets go of the commit queue (before the consumer it belongs to).
    fn detach(&mut self) {
        self.committer.set_queue(None);
    }

    /// One pass: serves commands, reads partitions with room, hands out
    /// batches, commits, pauses and resumes, publishes metrics, asks after
    /// missing topics, beats; then says what the thread is to do.
    fn pass(&mut self, consumer: &Consumer_) -> Pass {
        self.serve_commands(consumer);
        let read = self.partitions.fill();
        self.dispatch();
        self.commit_due(consumer);
        self.apply_pauses(consumer);
        self.observer.publish(&self.partitions, |id| {
            observe::cached_watermarks(consumer, &id.topic, id.partition)
        });
        if self
            .missing_topics
            .next_ask()
            .is_some_and(|ask| ask <= Instant::now())
        {
            self.look_for_topics(consumer);
        }
        self.probe.heartbeat.beat();
        if let Some(reason) = self.failure.take() {
            // Subscribers hear why before the member is replaced.
            self.emit_error(reason.clone());
            return Pass::Failed(reason);
        }
        if self.closing.unsubscribe_now() {
            return Pass::Leave {
                probe: self.coordinator_probe(),
                session: self.settings.config.group.session_timeout,
                group: self.settings.config.group_id.clone(),
            };
        }
        if self.closing.is_started()
            && (self.partitions.is_empty() || self.closing.is_out_of_time())
        {
            return Pass::Closed;
        }
        Pass::Continue {
            read,
            idle_wait: self.idle_wait(),
        }
    }

    /// The close's drain starts later by `waited`, spent waiting for the
    /// coordinator.
    fn close_delayed(&mut self, waited: Duration) {
        self.closing.delay(waited);
    }

    /// A message from the consumer's shared queue.
    fn on_message(&mut self, message: &BorrowedMessage<'_>) {
        self.partitions.on_message(message);
    }

    /// The consumer failed to fetch: subscribers hear why.
    fn fetch_failed(&mut self, error: &KafkaError) {
        self.emit_error(format!("fetch error: {error}"));
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
        self.committer.deadlines(&mut at);
        self.partitions.pause_deadlines(&mut at);
        if let Some(ask) = self.missing_topics.next_ask() {
            at(ask, Duration::ZERO);
        }
        if let Some(deadline) = self.closing.deadline() {
            at(deadline, Duration::ZERO);
        }
        if self.dispatch.is_waiting() {
            at(now, OUTBOX_RETRY);
        }
        if let Some((since, every)) = self.observer.next_publication() {
            at(since, every);
        }
        due.saturating_duration_since(now)
    }

    /// The engine ends (`closed` on request, else failed): commits what is
    /// left when closed, lets go of the partitions and the metrics, and
    /// gives back who waits for the close with their answer.
    fn end(
        &mut self,
        consumer: &Consumer_,
        closed: bool,
    ) -> (Vec<Closer>, Result<(), Uncommitted>) {
        if closed {
            // A failure is recorded as uncommitted (and emitted).
            self.commit_and_wait(consumer, None);
        } else if self.closing.is_awaited() {
            // The member failed while closing: what was acknowledged and not
            // committed stays so, and the close must say it, not answer Ok.
            self.committer
                .leave_uncommitted(&self.partitions, CommitFailure::MemberStopped);
        }
        // Partition queues hold the consumer: let go of them first; and the
        // commit queue before the consumer it belongs to.
        self.partitions.clear();
        self.detach();
        self.observer.unpublish();
        self.probe.heartbeat.stop();
        self.probe.set_assigned(false);
        let outcome = match self.committer.take_uncommitted() {
            None => Ok(()),
            Some(uncommitted) => Err(uncommitted),
        };
        (self.closing.take_closers(), outcome)
    }
}

/// Commits `list` and waits: for when the engine has no commit queue.
fn sync_commit(consumer: &Consumer_, list: &TopicPartitionList) -> Option<CommitFailure> {
    consumer
        .commit(list, CommitMode::Sync)
        .err()
        .map(|e| CommitFailure::from_kafka(&e))
}

/// Makes librdkafka raise a fatal error in this consumer, as a fenced static
/// member would see, so tests can watch the group restart.
#[cfg(feature = "testing")]
fn raise_fatal_error(consumer: &Consumer_, reason: &str) -> Result<(), String> {
    crate::native::client::inject_fatal_error(
        consumer.client(),
        rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID,
        reason,
    )
}
