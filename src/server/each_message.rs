//! Each-message mode: a handler per message, retried with backoff when it fails
//! recoverably, dead-lettered when it fails for good. Partitions are handled
//! independently: while one waits for a retry, the others keep flowing; within a
//! partition, messages are handled one at a time, in order, or with
//! `concurrency` above 1 several at once, ordered per key (see `concurrent`).
//!
//! Failures stay in their partition. A message that fails for good and cannot
//! be dead-lettered stops *its partition* at that message, uncommitted, while
//! the others go on; after the restart policy's backoff the partition's
//! handling restarts from that message (still held, so nothing is fetched
//! again and the member stays in its group). Past the policy's limit, or past
//! the dead-letter limit, the partition is held at the message and tried again
//! at the policy's longest backoff until it gets through (so one bad message
//! never stops more than its partition), or, with `partitionPastLimit =
//! "escalate"`, the partition escalates and the server ends.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod concurrent;

use concurrent::Settled;

use actix::prelude::*;
use tokio::sync::{oneshot, watch, Notify};

use super::dead_letter::DeadLetterSink;
use super::lane::{Lane, OrderKey};
use super::outcome::{HandlerError, HandlerFailure};
use super::partition::{
    release_waiting, DeadLetterBudget, PartitionState, Queued, ServerStatus, Stop,
    StoppedPartition, Waiting,
};
use super::retry_topics::RetryChain;
use super::shared::{is_stale, BatchEnd, MessageEnd, MessageHandler, Worker, KIND};
use super::{at_least_once, batched, transactional};
use crate::config::{Concurrency, PartitionPastLimit, RestartPolicy, RetrySettings};
use crate::consumer::ConsumerGroup;
use crate::observe::{ServerMetrics, ServerProbe};
use crate::record::{GroupEvent, MessageBatch, TopicPartition};
use crate::supervision::{Escalation, Escalator, RestartTracker};

/// A partition failed past its limit: the server escalates.
#[derive(Debug, Clone)]
pub(crate) struct PartitionGaveUp(pub(crate) Escalation);

/// What the handler actor of one server incarnation is made of.
pub(crate) struct EachMessageSettings {
    pub(crate) name: String,
    /// The consumer group's `groupID`.
    pub(crate) group: String,
    pub(crate) handler: MessageHandler,
    pub(crate) retry: RetrySettings,
    /// How many messages of one partition are handled at once.
    pub(crate) concurrency: Concurrency,
    pub(crate) dead_letter: Option<DeadLetterSink>,
    /// The delay topics, with `retryTopics`.
    pub(crate) retry_chain: Option<RetryChain>,
    /// The server's group member: holds a delay topic's partition until its
    /// next message is due.
    pub(crate) member: ConsumerGroup,
    pub(crate) errors: Option<Recipient<HandlerFailure>>,
    /// How partitions' handling is restarted (the server's restart keys).
    pub(crate) policy: RestartPolicy,
    /// What a partition past its limits does: held, or escalated.
    pub(crate) past_limit: PartitionPastLimit,
    pub(crate) escalator: Escalator,
    /// Where a partition past its limit is reported (the supervisor).
    pub(crate) faults: tokio::sync::mpsc::UnboundedSender<PartitionGaveUp>,
    /// What the server records in the component's metrics, when they are on.
    pub(crate) metrics: Option<ServerMetrics>,
    /// The handler calls in progress, for liveness checks.
    pub(crate) probe: Arc<ServerProbe>,
}

/// What the actor keeps of its settings once the shared [`Worker`] took the rest.
struct ActorSettings {
    name: String,
    concurrency: Concurrency,
    /// `deadLetterLimit` and `deadLetterWindow`, when there is a dead-letter topic.
    dead_letter_budget: Option<(u32, std::time::Duration)>,
    policy: RestartPolicy,
    past_limit: PartitionPastLimit,
    escalator: Escalator,
    faults: tokio::sync::mpsc::UnboundedSender<PartitionGaveUp>,
}

pub(crate) struct EachMessageActor {
    settings: ActorSettings,
    /// What handling a message needs, shared by every handler call.
    worker: Rc<Worker>,
    partitions: HashMap<TopicPartition, PartitionState>,
    partition_restarts: u64,
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
    pub(crate) fn new(settings: EachMessageSettings) -> Self {
        let quiescing = watch::Sender::new(false);
        let revoked: Rc<RefCell<HashMap<TopicPartition, i32>>> = Rc::default();
        let revocations: Rc<Notify> = Rc::default();
        let EachMessageSettings {
            name,
            group,
            handler,
            retry,
            concurrency,
            dead_letter,
            retry_chain,
            member,
            errors,
            policy,
            past_limit,
            escalator,
            faults,
            metrics,
            probe,
        } = settings;
        // A new incarnation has no partition stopped (yet).
        probe.set_stopped(Vec::new());
        if let Some(metrics) = &metrics {
            metrics.stopped_partitions(0);
        }
        let dead_letter_budget = dead_letter.as_ref().map(|dl| (dl.limit, dl.window));
        let worker = Worker {
            handler,
            retry,
            dead_letter,
            retry_chain,
            errors: RefCell::new(errors),
            server: name.clone(),
            group,
            quiescing: quiescing.subscribe(),
            member,
            revoked: Rc::clone(&revoked),
            revocations: Rc::clone(&revocations),
            metrics,
            probe,
        };
        EachMessageActor {
            settings: ActorSettings {
                name,
                concurrency,
                dead_letter_budget,
                policy,
                past_limit,
                escalator,
                faults,
            },
            worker: Rc::new(worker),
            partitions: HashMap::new(),
            partition_restarts: 0,
            quiescing,
            idle_waiters: Vec::new(),
            revoked,
            revocations,
        }
    }

    fn is_idle(&self) -> bool {
        !self.partitions.values().any(PartitionState::is_busy)
    }

    fn partition(&mut self, partition: &TopicPartition) -> &mut PartitionState {
        let (settings, worker) = (&self.settings, &self.worker);
        self.partitions.entry(partition.clone()).or_insert_with(|| {
            // Without a dead-letter topic the budget is never asked.
            let (limit, window) = settings.dead_letter_budget.unwrap_or_default();
            let concurrency = settings.concurrency.limit;
            // A delay topic's messages are handled one at a time: each waits
            // until it is due, in offset order.
            let delay_topic = worker
                .retry_chain
                .as_ref()
                .is_some_and(|c| c.stage_of(&partition.topic).is_some());
            let each_message = matches!(worker.handler, MessageHandler::Each(_));
            PartitionState::new(
                RestartTracker::new(
                    settings.policy.clone(),
                    KIND,
                    &settings.name,
                    settings.escalator.clone(),
                ),
                DeadLetterBudget::new(limit, window),
                (concurrency > 1 && !delay_topic && each_message).then(|| Lane::new(concurrency)),
            )
        })
    }

    /// Starts handling the next batch of `partition` unless one is in progress
    /// or the partition stopped. A batch handler's call starts once
    /// `batchSize` messages wait, or the oldest waited `batchWait`.
    fn pump(&mut self, partition: TopicPartition, ctx: &mut Context<Self>) {
        if *self.quiescing.borrow() {
            return;
        }
        let limits = self.batch_limits(&partition);
        let state = self.partition(&partition);
        if state.lane.is_some() {
            return self.pump_lane(partition, ctx);
        }
        if state.busy || state.stopped.is_some() || state.waiting_until.is_some() {
            return;
        }
        let pieces = match limits {
            None => match state.queued.pop_front() {
                Some(queued) => vec![queued],
                None => return,
            },
            Some((size, wait)) => match gather(state, size, wait) {
                Gathered::Ready(pieces) => pieces,
                Gathered::Nothing => return,
                Gathered::FillingUntil(due) => return self.pump_at(partition, due, ctx),
            },
        };
        let state = self.partition(&partition);
        state.busy = true;
        let dead_letters = Rc::clone(&state.dead_letters);
        ctx.spawn(
            run_batch(pieces, Rc::clone(&self.worker), dead_letters)
                .into_actor(self)
                .map(move |(pieces, end), act, ctx| act.batch_ended(partition, pieces, end, ctx)),
        );
    }

    /// `batchSize` and `batchWait` for `partition`, with a batch handler. A
    /// delay topic's messages go one at a time: each waits until it is due.
    fn batch_limits(&self, partition: &TopicPartition) -> Option<(usize, Duration)> {
        let MessageHandler::Batch { size, wait, .. } = &self.worker.handler else {
            return None;
        };
        let delay_topic = self
            .worker
            .retry_chain
            .as_ref()
            .is_some_and(|c| c.stage_of(&partition.topic).is_some());
        Some(if delay_topic {
            (1, Duration::ZERO)
        } else {
            (*size, *wait)
        })
    }

    /// Pumps `partition` again at `due`, when its oldest waiting message has
    /// waited `batchWait`, unless it was pumped for that since.
    fn pump_at(&mut self, partition: TopicPartition, due: Instant, ctx: &mut Context<Self>) {
        let state = self.partition(&partition);
        if state.filling == Some(due) {
            return; // already set
        }
        state.filling = Some(due);
        let epoch = state.epoch;
        ctx.run_later(
            due.saturating_duration_since(Instant::now()),
            move |act, ctx| {
                let state = act.partition(&partition);
                if state.epoch == epoch && state.filling == Some(due) {
                    state.filling = None;
                    act.pump(partition, ctx);
                }
            },
        );
    }

    fn batch_ended(
        &mut self,
        partition: TopicPartition,
        pieces: Vec<Queued>,
        end: BatchEnd,
        ctx: &mut Context<Self>,
    ) {
        self.partition(&partition).busy = false;
        // What is left of the batches, unless it is to be given back: on
        // shutdown or after a revoke its next owner handles it.
        let quiescing = *self.quiescing.borrow();
        let (left, given_back): (Vec<Queued>, Vec<Queued>) = pieces
            .into_iter()
            .filter(|piece| !piece.waiting().is_empty())
            .partition(|piece| !quiescing && !is_stale(&self.revoked, &piece.batch));
        match end {
            BatchEnd::Interrupted => {} // given back by the driver
            _ => given_back.iter().for_each(Queued::release),
        }
        match end {
            BatchEnd::Done => {
                self.queue_first(&partition, left);
                // The batch began at the message the partition was held at.
                self.got_past(&partition, i64::MAX);
                // pump starts nothing once quiescing.
                self.pump(partition, ctx);
            }
            BatchEnd::Interrupted => self.pump(partition, ctx),
            BatchEnd::Stopped {
                offset,
                error,
                limit,
            } => {
                if !left.is_empty() {
                    self.queue_first(&partition, left);
                    self.stop_partition(partition, offset, error, limit, ctx);
                }
            }
            BatchEnd::Waiting { until, .. } => {
                let mut left = left.into_iter();
                if let Some(rest) = left.next() {
                    self.queue_first(&partition, left.collect());
                    self.wait_until_due(partition, rest, until, ctx);
                }
            }
        }
        self.tell_idle_waiters();
    }

    /// Puts `pieces` back at the front of `partition`'s queue, in order.
    fn queue_first(&mut self, partition: &TopicPartition, pieces: Vec<Queued>) {
        let queued = &mut self.partition(partition).queued;
        for piece in pieces.into_iter().rev() {
            queued.push_front(piece);
        }
    }

    /// Starts the messages of `partition` its lane lets start.
    fn pump_lane(&mut self, partition: TopicPartition, ctx: &mut Context<Self>) {
        let worker = Rc::clone(&self.worker);
        let state = self.partition(&partition);
        if state.stopped.is_some() || state.gave_up {
            return;
        }
        let dead_letters = Rc::clone(&state.dead_letters);
        let lane = state.lane.as_mut().expect("pumped as a lane");
        for started in concurrent::start(lane, &worker, &dead_letters) {
            let (partition, offset, key) = (partition.clone(), started.offset, started.key);
            ctx.spawn(
                started
                    .handling
                    .into_actor(self)
                    .map(move |(waiting, end), act, ctx| {
                        act.message_ended(partition, offset, key, waiting, end, ctx);
                    }),
            );
        }
    }

    fn message_ended(
        &mut self,
        partition: TopicPartition,
        offset: i64,
        key: OrderKey,
        waiting: Waiting,
        end: MessageEnd,
        ctx: &mut Context<Self>,
    ) {
        let given_up = *self.quiescing.borrow() || is_stale(&self.revoked, &waiting.batch);
        let state = self.partition(&partition);
        let given_up = given_up || state.gave_up;
        let lane = state.lane.as_mut().expect("ended in a lane");
        match concurrent::settle(lane, offset, key, waiting, end, given_up) {
            Settled::Finished => self.got_past(&partition, offset),
            Settled::Stop { error, limit } => {
                self.stop_partition(partition.clone(), offset, error, limit, ctx);
            }
            Settled::GivenBack => {}
        }
        self.pump(partition, ctx);
        self.tell_idle_waiters();
    }

    /// Answers the shutdown waiting for the handlers to end, once none runs.
    fn tell_idle_waiters(&mut self) {
        if *self.quiescing.borrow() && self.is_idle() {
            for waiter in self.idle_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }

    /// Stops `partition` at the message at `offset`, held again as the first
    /// to handle, and schedules its restart; past its limits, holds it there
    /// (tried again every `restartBackoffMax`) or escalates, as
    /// `partitionPastLimit` says.
    fn stop_partition(
        &mut self,
        partition: TopicPartition,
        offset: i64,
        error: HandlerError,
        limit: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        let reason = format!("partition {partition} stopped at offset {offset}: {error}");
        let name = self.settings.name.clone();
        let past_limit = self.settings.past_limit;
        let state = self.partition(&partition);
        if limit.is_none() {
            if let Some(stop) = &mut state.stopped {
                // Another message handled at once had stopped the partition
                // already: one stop, one restart, reported at the earlier offset.
                if offset < stop.offset {
                    *stop = Stop { offset, error };
                }
                return;
            }
        }
        if state.held.is_some_and(|at| offset > at) {
            // Handling got past the message it was held at: a new stop.
            state.held = None;
        }
        let within_limit = match limit {
            Some(limit) => Err(format!("{reason} ({limit})")),
            None if state.held.is_some() => Err(reason),
            None => state.restarts.restart_within_limit().ok_or(reason),
        };
        state.stopped = Some(Stop { offset, error });
        let delay = match (within_limit, past_limit) {
            (Ok(delay), _) => {
                tracing::warn!(server = %name, %partition, offset, ?delay, "partition stopped; its handling restarts after the backoff");
                delay
            }
            (Err(reason), PartitionPastLimit::Hold) => {
                let delay = state.restarts.restart_past_limit();
                state.held = Some(offset);
                tracing::error!(server = %name, %partition, offset, retry_in = ?delay, "{reason}; past its limit the partition is held at that message, uncommitted, and tried again after the longest backoff (partitionPastLimit = \"hold\"); the other partitions go on");
                delay
            }
            (Err(reason), PartitionPastLimit::Escalate) => {
                let escalation = state.restarts.give_up(&reason);
                state.gave_up = true;
                state.release_queued();
                let _ = self.settings.faults.send(PartitionGaveUp(escalation));
                self.publish_stopped();
                return;
            }
        };
        let epoch = state.epoch;
        ctx.run_later(delay, move |act, ctx| act.restart(partition, epoch, ctx));
        self.publish_stopped();
    }

    /// Ends the hold of `partition` once a message at or past the one it was
    /// held at (`handled`) got through.
    fn got_past(&mut self, partition: &TopicPartition, handled: i64) {
        let name = self.settings.name.clone();
        let Some(state) = self.partitions.get_mut(partition) else {
            return;
        };
        if let Some(at) = state.held.filter(|at| handled >= *at) {
            state.held = None;
            tracing::info!(server = %name, %partition, offset = at, "the message the partition was held at got through; it is no longer held");
            self.publish_stopped();
        }
    }

    /// The partitions stopped now, by partition.
    fn stopped_partitions(&self) -> Vec<StoppedPartition> {
        let mut stopped: Vec<StoppedPartition> = self
            .partitions
            .iter()
            .filter_map(|(partition, state)| {
                let stop = state.stopped.as_ref()?;
                Some(StoppedPartition {
                    partition: partition.clone(),
                    offset: stop.offset,
                    error: stop.error.to_string(),
                    restarts: state.restarts.recent_restarts(),
                    held: state.held.is_some(),
                    gave_up: state.gave_up,
                })
            })
            .collect();
        stopped.sort_by(|a, b| a.partition.cmp(&b.partition));
        stopped
    }

    /// Shows the partitions stopped now where operators look: the App's
    /// `/status` and the stopped-partitions gauge.
    fn publish_stopped(&self) {
        let stopped = self.stopped_partitions();
        if let Some(metrics) = &self.worker.metrics {
            metrics.stopped_partitions(stopped.len());
        }
        self.worker.probe.set_stopped(stopped);
    }

    /// Holds `partition` (paused in the group) until `until`, when `rest`,
    /// from a delay topic, is due; then handles it, unless the partition was
    /// revoked meanwhile.
    fn wait_until_due(
        &mut self,
        partition: TopicPartition,
        rest: Queued,
        until: std::time::Instant,
        ctx: &mut Context<Self>,
    ) {
        self.worker.member.hold(partition.clone(), until);
        let state = self.partition(&partition);
        state.queued.push_front(rest);
        state.waiting_until = Some(until);
        let epoch = state.epoch;
        let delay = until.saturating_duration_since(std::time::Instant::now());
        ctx.run_later(delay, move |act, ctx| {
            let state = act.partition(&partition);
            if state.epoch == epoch && state.waiting_until.take().is_some() {
                act.pump(partition, ctx);
            }
        });
    }

    /// Handles `partition` again from where it stopped, unless it was revoked
    /// since (`epoch`).
    fn restart(&mut self, partition: TopicPartition, epoch: u64, ctx: &mut Context<Self>) {
        let state = self.partition(&partition);
        if state.epoch != epoch || state.gave_up || state.stopped.take().is_none() {
            return;
        }
        self.partition_restarts += 1;
        tracing::info!(server = %self.settings.name, %partition, "partition handling restarted");
        self.publish_stopped();
        self.pump(partition, ctx);
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
        for state in self.partitions.values_mut() {
            state.release_queued();
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
        let quiescing = *self.quiescing.borrow();
        let stale = is_stale(&self.revoked, &batch);
        let order = self.settings.concurrency.order_by;
        let state = self.partition(&partition);
        if quiescing || stale || state.gave_up {
            // Never committed past: it comes again after the restart or rebalance.
            Queued::new(batch).release();
            return;
        }
        // Behind a stopped partition's held messages too: the group's
        // `maxBuffered` bounds what waits.
        match &mut state.lane {
            Some(lane) => concurrent::push_batch(lane, batch, order),
            None => state.queued.push_back(Queued::new(batch)),
        }
        self.pump(partition, ctx);
    }
}

/// On revoke, messages of the revoked partitions not started yet (a stopped
/// partition's held ones too) are given back at once, so the rebalance waits
/// only for the handlers in flight.
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
            if let Some(state) = self.partitions.get_mut(partition) {
                let is_stale = |batch: &MessageBatch| batch.generation() <= revoked.generation;
                let (stale, fresh) = state.queued.drain(..).partition(|q| is_stale(&q.batch));
                state.queued = fresh;
                for queued in stale {
                    queued.release();
                }
                if let Some(lane) = &mut state.lane {
                    release_waiting(lane.take_waiting_where(|w| is_stale(&w.batch)));
                }
                // Its next owner handles the message it stopped at.
                state.epoch += 1;
                state.stopped = None;
                state.held = None;
                state.waiting_until = None;
            }
        }
        self.publish_stopped();
        self.revocations.notify_waiters();
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
        *self.worker.errors.borrow_mut() = Some(recipient);
    }
}

/// The partitions stopped now, and the partition restarts so far.
#[derive(Message)]
#[rtype(result = "ServerStatus")]
pub(crate) struct Status {
    /// Whole-server restarts, filled in by the caller.
    pub(crate) restarts: u32,
}

impl Handler<Status> for EachMessageActor {
    type Result = MessageResult<Status>;

    fn handle(&mut self, Status { restarts }: Status, _ctx: &mut Context<Self>) -> Self::Result {
        let stopped = self.stopped_partitions();
        MessageResult(ServerStatus {
            restarts,
            partition_restarts: self.partition_restarts,
            stopped,
        })
    }
}

/// Handles `pieces` (one batch, or with a batch handler up to `batchSize`
/// messages of several) through the server's driver: at least once, exactly
/// once or a batch at a time. Gives them back, each moved past what was
/// settled, with how the handling ended.
async fn run_batch(
    mut pieces: Vec<Queued>,
    worker: Rc<Worker>,
    dead_letters: Rc<RefCell<DeadLetterBudget>>,
) -> (Vec<Queued>, BatchEnd) {
    let end = match (&worker.handler, pieces.as_mut_slice()) {
        (MessageHandler::Batch { handler, size, .. }, pieces) => {
            batched::handle_batch(pieces, *size, &worker, handler, &dead_letters).await
        }
        (MessageHandler::Each(handler), [queued]) => {
            let end = at_least_once::handle_batch(queued, &worker, handler, &dead_letters).await;
            queued.from = settled_until(&end);
            end
        }
        (MessageHandler::Transform { handler, producer }, [queued]) => {
            let end =
                transactional::handle_batch(queued, &worker, handler, producer, &dead_letters)
                    .await;
            queued.from = settled_until(&end);
            end
        }
        (_, pieces) => {
            // One batch at a time without a batch handler: never more.
            let count = pieces.len();
            tracing::error!(server = %worker.server, count, "a message handler was given several batches at once; they are given back");
            pieces.iter().for_each(Queued::release);
            BatchEnd::Interrupted
        }
    };
    (pieces, end)
}

/// Where a batch handled through the per-message drivers waits from now: its
/// end when done or given back, the message it stopped or waits at.
fn settled_until(end: &BatchEnd) -> i64 {
    match end {
        BatchEnd::Done | BatchEnd::Interrupted => i64::MAX,
        BatchEnd::Stopped { offset, .. } | BatchEnd::Waiting { offset, .. } => *offset,
    }
}

/// What a batch handler's partition has to hand over now.
enum Gathered {
    /// Nothing waits.
    Nothing,
    /// Fewer than `batchSize` wait, and the oldest has not waited
    /// `batchWait`: look again then.
    FillingUntil(Instant),
    /// The batches holding the next call's messages (the last maybe only in part).
    Ready(Vec<Queued>),
}

/// Takes from `state`'s queue the batches holding the next `size` messages,
/// once `size` wait or the oldest waited `wait`.
fn gather(state: &mut PartitionState, size: usize, wait: Duration) -> Gathered {
    let Some(oldest) = state.queued.front().map(|q| q.arrived) else {
        return Gathered::Nothing;
    };
    let waiting: usize = state.queued.iter().map(|q| q.waiting().len()).sum();
    let due = oldest + wait;
    if waiting < size && Instant::now() < due {
        return Gathered::FillingUntil(due);
    }
    state.filling = None;
    let mut pieces = Vec::new();
    let mut covered = 0;
    while covered < size {
        let Some(queued) = state.queued.pop_front() else {
            break;
        };
        covered += queued.waiting().len();
        pieces.push(queued);
    }
    Gathered::Ready(pieces)
}
