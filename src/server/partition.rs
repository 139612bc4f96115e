//! What an each-message server keeps per partition: the batches waiting, whether
//! a handler runs, whether the partition stopped on a message and waits for its
//! handling to restart, its restarts against the server's policy, and its
//! recent dead letters against the dead-letter limit.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::lane::Lane;
use super::HandlerError;
pub use crate::observe::StoppedPartition;
use crate::record::{ConsumedMessage, MessageBatch};
use crate::supervision::RestartTracker;

/// A batch waiting to be handled, from offset `from` on (earlier messages of
/// it were handled before the partition stopped).
pub(crate) struct Queued {
    pub(crate) batch: MessageBatch,
    pub(crate) from: i64,
    /// When the server got it: a batch handler's `batchWait` counts from
    /// the oldest waiting message's arrival.
    pub(crate) arrived: Instant,
}

impl Queued {
    pub(crate) fn new(batch: MessageBatch) -> Self {
        let from = batch.messages().first().map_or(0, |m| m.offset());
        Queued {
            batch,
            from,
            arrived: Instant::now(),
        }
    }

    /// The messages from `from` on.
    pub(crate) fn waiting(&self) -> &[ConsumedMessage] {
        let messages = self.batch.messages();
        let start = messages.partition_point(|m| m.offset() < self.from);
        &messages[start..]
    }

    /// Gives the messages not handled yet back: never committed past, they
    /// come again to the partition's next owner.
    pub(crate) fn release(&self) {
        self.batch.release_from(self.from);
    }
}

/// A message waiting in a partition's [`Lane`] (with `concurrency` above 1):
/// the `index`th of `batch`.
pub(crate) struct Waiting {
    pub(crate) batch: Rc<MessageBatch>,
    pub(crate) index: usize,
}

impl Waiting {
    pub(crate) fn message(&self) -> &ConsumedMessage {
        &self.batch.messages()[self.index]
    }
}

/// Gives waiting messages back unhandled, one acknowledgement per run of
/// consecutive offsets of one batch rather than one per message.
pub(crate) fn release_waiting(mut waiting: Vec<Waiting>) {
    waiting.sort_unstable_by_key(|w| (Rc::as_ptr(&w.batch), w.index));
    let mut runs = waiting.iter().peekable();
    while let Some(first) = runs.next() {
        let mut last = first;
        while let Some(next) =
            runs.next_if(|n| Rc::ptr_eq(&n.batch, &first.batch) && n.index == last.index + 1)
        {
            last = next;
        }
        first
            .batch
            .release_range(first.message().offset(), last.message().offset());
    }
}

/// The message a partition stopped at, and why.
pub(crate) struct Stop {
    pub(crate) offset: i64,
    pub(crate) error: HandlerError,
}

pub(crate) struct PartitionState {
    pub(crate) queued: VecDeque<Queued>,
    /// A batch is being handled (`concurrency = 1`).
    pub(crate) busy: bool,
    /// The messages waiting and running, with `concurrency` above 1 (then
    /// `queued` and `busy` are unused).
    pub(crate) lane: Option<Lane<Waiting>>,
    /// Set while the partition waits for its handling to restart, and for
    /// good once it gave up.
    pub(crate) stopped: Option<Stop>,
    /// The offset of the message the partition is held at, past its limit
    /// (`partitionPastLimit = "hold"`), until handling gets past it.
    pub(crate) held: Option<i64>,
    pub(crate) gave_up: bool,
    /// Set while the partition's next message, of a delay topic, is not due.
    pub(crate) waiting_until: Option<std::time::Instant>,
    /// With a batch handler: when the partition is pumped again because its
    /// oldest waiting message will have waited `batchWait`.
    pub(crate) filling: Option<Instant>,
    pub(crate) restarts: RestartTracker,
    pub(crate) dead_letters: Rc<RefCell<DeadLetterBudget>>,
    /// Bumped when the partition is revoked: a restart scheduled before then
    /// does nothing.
    pub(crate) epoch: u64,
}

impl PartitionState {
    pub(crate) fn new(
        restarts: RestartTracker,
        dead_letters: DeadLetterBudget,
        lane: Option<Lane<Waiting>>,
    ) -> Self {
        PartitionState {
            queued: VecDeque::new(),
            busy: false,
            lane,
            stopped: None,
            held: None,
            gave_up: false,
            waiting_until: None,
            filling: None,
            restarts,
            dead_letters: Rc::new(RefCell::new(dead_letters)),
            epoch: 0,
        }
    }

    /// True while a handler runs for this partition.
    pub(crate) fn is_busy(&self) -> bool {
        self.busy || self.lane.as_ref().is_some_and(|lane| lane.running() > 0)
    }

    /// Gives back every message waiting.
    pub(crate) fn release_queued(&mut self) {
        for queued in self.queued.drain(..) {
            queued.release();
        }
        if let Some(lane) = &mut self.lane {
            release_waiting(lane.take_waiting());
        }
    }
}

/// One partition's recent dead letters, against `deadLetterLimit` within
/// `deadLetterWindow`.
pub(crate) struct DeadLetterBudget {
    limit: u32,
    window: Duration,
    recent: VecDeque<Instant>,
}

impl DeadLetterBudget {
    /// A budget of `limit` dead letters per `window`; `0` is no limit.
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        DeadLetterBudget {
            limit,
            window,
            recent: VecDeque::new(),
        }
    }

    /// Counts one more dead letter now, unless that would pass the limit.
    pub(crate) fn take(&mut self) -> bool {
        self.take_at(Instant::now())
    }

    fn take_at(&mut self, now: Instant) -> bool {
        if self.limit == 0 {
            return true;
        }
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.limit as usize {
            return false;
        }
        self.recent.push_back(now);
        true
    }

    /// Why a dead letter was refused.
    pub(crate) fn exceeded(&self) -> String {
        format!(
            "deadLetterLimit reached: {} messages of this partition dead-lettered within deadLetterWindow ({:?})",
            self.limit, self.window
        )
    }
}

/// An each-message server's health.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStatus {
    /// Whole-server restarts (a new group member) after a failure of its
    /// consumer group or handler actor.
    pub restarts: u32,
    /// Restarts of single partitions' handling, in all.
    pub partition_restarts: u64,
    /// Partitions stopped now.
    pub stopped: Vec<StoppedPartition>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dead_letter_budget_refuses_one_past_the_limit_within_the_window() {
        let mut budget = DeadLetterBudget::new(2, Duration::from_secs(60));
        assert!(budget.take());
        assert!(budget.take());
        assert!(!budget.take());
        assert!(budget.exceeded().contains("deadLetterLimit"));
    }

    #[test]
    fn no_limit_takes_everything() {
        let mut budget = DeadLetterBudget::new(0, Duration::from_secs(60));
        assert!((0..10_000).all(|_| budget.take()));
    }

    #[test]
    fn dead_letters_older_than_the_window_no_longer_count() {
        let mut budget = DeadLetterBudget::new(1, Duration::from_secs(60));
        let start = Instant::now();
        assert!(budget.take_at(start));
        assert!(!budget.take_at(start + Duration::from_secs(30)));
        assert!(budget.take_at(start + Duration::from_secs(61)));
    }
}
