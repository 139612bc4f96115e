//! The partitions a member holds, and the bounds on what it holds of them:
//! each partition's ledger (fetched, handed out, acknowledged, committed), its
//! own queue in librdkafka, its share of `maxBuffered` and `maxBufferedBytes`,
//! and whether it is paused. Reading stays within the shares; pausing is
//! decided here and carried out by the engine, which owns the consumer.

use std::time::{Duration, Instant};

use rdkafka::message::{BorrowedMessage, Message as _};

use crate::consumer::group::ledger::Ledger;
use crate::native::message::RawMessage;
use crate::native::split_queue::SplitQueue;
use crate::record::{
    owned_consumed, ConsumedMessage, PartitionOffset, StartingOffset, SubscriberMask,
    TopicPartition,
};

/// How long a partition may sit at its share of the bound before it is also
/// paused in librdkafka, which then drops what it prefetched for it. Shorter
/// stalls are absorbed by not reading the partition's queue: librdkafka resumes a
/// paused partition only at its broker thread's next wake-up (up to a second), so
/// pausing on every brief backlog would throttle a healthy consumer.
pub(super) const PAUSE_AFTER: Duration = Duration::from_secs(1);

struct Partition {
    id: TopicPartition,
    /// Where consumption started when it was assigned.
    start: StartingOffset,
    ledger: Ledger,
    /// This partition's own queue in librdkafka, read only while there is
    /// room; its length tells what librdkafka prefetched.
    queue: Option<SplitQueue>,
    /// The sizes of the partition's recent messages.
    sizes: RecentSizes,
    /// Since when the partition has been at its share of the bound.
    full_since: Option<Instant>,
    /// Whether librdkafka currently has it paused.
    paused: bool,
    /// Not read, and paused, until then: a subscriber's next message of it is
    /// not due before (a delay topic's).
    held_until: Option<Instant>,
}

/// The partitions a member holds, and what it holds of them.
pub(super) struct Partitions {
    list: Vec<Partition>,
    /// Messages held, from fetch until every subscriber acknowledged them.
    held: usize,
    max_held: usize,
    /// When subscribers last acknowledged something: a member at its bound
    /// without progress for `PAUSE_AFTER` is stalled.
    last_progress: Instant,
    /// `maxBuffered` and `maxBufferedBytes`.
    bound: usize,
    bound_bytes: usize,
}

/// What [`Partitions::decide_pauses`] changed, for the consumer to carry out.
#[derive(Debug, Default, PartialEq)]
pub(super) struct PauseChanges {
    pub(super) pause: Vec<TopicPartition>,
    pub(super) resume: Vec<TopicPartition>,
    /// Paused at once because librdkafka's prefetch passed the byte bound.
    pub(super) over_budget: bool,
}

impl Partitions {
    /// No partitions yet, bounded by `maxBuffered` and `maxBufferedBytes`.
    pub(super) fn new(bound: usize, bound_bytes: usize) -> Self {
        Partitions {
            list: Vec::new(),
            held: 0,
            max_held: 0,
            last_progress: Instant::now(),
            bound,
            bound_bytes,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    pub(super) fn contains(&self, id: &TopicPartition) -> bool {
        self.find(&id.topic, id.partition).is_some()
    }

    /// The partitions held, in the order they were taken on.
    pub(super) fn ids(&self) -> impl Iterator<Item = &TopicPartition> {
        self.list.iter().map(|p| &p.id)
    }

    /// Each partition with where its consumption started.
    pub(super) fn assignment(&self) -> Vec<(TopicPartition, StartingOffset)> {
        self.list.iter().map(|p| (p.id.clone(), p.start)).collect()
    }

    fn find(&self, topic: &str, partition: i32) -> Option<usize> {
        self.list
            .iter()
            .position(|p| p.id.partition == partition && &*p.id.topic == topic)
    }

    fn get_mut(&mut self, id: &TopicPartition) -> Option<&mut Partition> {
        let index = self.find(&id.topic, id.partition)?;
        Some(&mut self.list[index])
    }

    /// Takes on `id`, read from its own `queue` when it has one; false when
    /// it was held already.
    pub(super) fn take(
        &mut self,
        id: TopicPartition,
        start: StartingOffset,
        queue: Option<SplitQueue>,
    ) -> bool {
        if self.contains(&id) {
            return false;
        }
        self.list.push(Partition {
            id,
            start,
            ledger: Ledger::default(),
            queue,
            sizes: RecentSizes::default(),
            full_since: None,
            paused: false,
            held_until: None,
        });
        true
    }

    /// Where `id`'s consumption started, once the committed offsets are known.
    pub(super) fn set_start(&mut self, id: &TopicPartition, start: StartingOffset) {
        if let Some(p) = self.get_mut(id) {
            p.start = start;
        }
    }

    /// Holds `id` (not read, and paused) until `until`; false when not held.
    pub(super) fn hold_until(&mut self, id: &TopicPartition, until: Instant) -> bool {
        let Some(p) = self.get_mut(id) else {
            return false;
        };
        p.held_until = Some(until);
        true
    }

    /// Drops what was fetched of `revoked` and not handed out yet.
    pub(super) fn drop_fetched(&mut self, revoked: &[TopicPartition]) {
        for p in self.list.iter_mut().filter(|p| revoked.contains(&p.id)) {
            self.held -= p.ledger.drop_fetched();
        }
    }

    /// Messages of `revoked` handed out and not acknowledged yet.
    pub(super) fn owed(&self, revoked: &[TopicPartition]) -> usize {
        self.list
            .iter()
            .filter(|p| revoked.contains(&p.id))
            .map(|p| p.ledger.owed())
            .sum()
    }

    /// Lets `revoked` go, with what is still held of them; returns how many
    /// partitions went.
    pub(super) fn remove(&mut self, revoked: &[TopicPartition]) -> usize {
        let before = self.list.len();
        let mut released = 0;
        self.list.retain(|p| {
            let keep = !revoked.contains(&p.id);
            if !keep {
                released += p.ledger.held();
            }
            keep
        });
        self.held -= released;
        before - self.list.len()
    }

    /// Lets every partition go (their queues hold the consumer).
    pub(super) fn clear(&mut self) {
        self.list.clear();
        self.held = 0;
    }

    // ---- Fetching within the bounds ----

    /// A message from the shared queue: one of a partition not (yet) given its
    /// own queue.
    pub(super) fn on_message(&mut self, message: &BorrowedMessage<'_>) {
        let Some(index) = self.find(message.topic(), message.partition()) else {
            // A message of a partition revoked a moment ago: its next owner reads it.
            return;
        };
        let owned = owned_consumed(&self.list[index].id.topic, &RawMessage::of(message));
        self.hold_at(index, owned);
    }

    fn hold_at(&mut self, index: usize, message: ConsumedMessage) {
        let p = &mut self.list[index];
        hold(&mut p.ledger, &mut p.sizes, message);
        self.held += 1;
        self.max_held = self.max_held.max(self.held);
    }

    /// Reads each partition's own queue while the partition is under its share
    /// of the bounds (and the member under the bounds), in messages and in
    /// bytes; returns how many messages were read. Partitions without room are
    /// simply not read: librdkafka stops fetching them once its own queue for
    /// them is full, and [`decide_pauses`](Self::decide_pauses) pauses them
    /// when that costs too much.
    pub(super) fn fill(&mut self) -> usize {
        let (share, share_bytes) = (self.share(), self.share_bytes());
        let (bound, bound_bytes) = (self.bound, self.bound_bytes);
        let mut held_bytes = self.held_bytes();
        let mut read = 0;
        let now = Instant::now();
        for p in &mut self.list {
            let Some(queue) = &p.queue else { continue };
            if p.held_until.is_some_and(|until| until > now) {
                continue;
            }
            loop {
                let room = share
                    .saturating_sub(p.ledger.held())
                    .min(bound.saturating_sub(self.held));
                let room_bytes = share_bytes
                    .saturating_sub(p.ledger.held_bytes())
                    .min(bound_bytes.saturating_sub(held_bytes));
                // Messages are taken in batches, and every message taken is
                // held: take only as many as fit the bytes left at the size of
                // the partition's largest recent message (one at a time before
                // any was seen), and at least one while any room is left.
                let fits = match (room_bytes, p.sizes.largest) {
                    (0, _) => 0,
                    (_, 0) => 1,
                    (bytes, largest) => (bytes / largest).max(1),
                };
                let room = room.min(fits);
                if room == 0 {
                    break;
                }
                let mut failed = false;
                let taken = queue.read(room, |fetched| match fetched {
                    Ok(raw) => {
                        let owned = owned_consumed(&p.id.topic, &raw);
                        held_bytes += hold(&mut p.ledger, &mut p.sizes, owned);
                    }
                    Err(code) => {
                        tracing::warn!(partition = %p.id, error = %code, "fetch error");
                        failed = true;
                    }
                });
                self.held += taken.messages;
                read += taken.messages;
                if taken.emptied || failed {
                    break;
                }
            }
            p.note_fullness(share, share_bytes);
        }
        self.max_held = self.max_held.max(self.held);
        read
    }

    /// Each partition's share of the bound.
    fn share(&self) -> usize {
        (self.bound / self.list.len().max(1)).max(1)
    }

    /// Each partition's share of `maxBufferedBytes`.
    fn share_bytes(&self) -> usize {
        (self.bound_bytes / self.list.len().max(1)).max(1)
    }

    /// Whether the member holds its bound in messages or in bytes.
    pub(super) fn is_full(&self) -> bool {
        self.held >= self.bound || self.held_bytes() >= self.bound_bytes
    }

    fn held_bytes(&self) -> usize {
        self.list.iter().map(|p| p.ledger.held_bytes()).sum()
    }

    /// What librdkafka prefetched for the partitions it still fetches, as
    /// their queue lengths times their messages' average payload: counted as
    /// librdkafka counts it against `queued.max.messages.kbytes`, so that a
    /// prefetch within the limits the member sized is never over budget.
    fn prefetched_bytes(&self) -> usize {
        self.list
            .iter()
            .filter(|p| !p.paused)
            .map(|p| p.queue.as_ref().map_or(0, SplitQueue::len) * p.sizes.payload)
            .sum()
    }

    /// Decides which partitions librdkafka is to pause: those that have sat
    /// at their share for [`PAUSE_AFTER`], or at once when what librdkafka
    /// prefetched for the partitions it still fetches passes
    /// `maxBufferedBytes` (pausing makes it drop what it prefetched for
    /// them); and which to resume: those down to half of their share while
    /// the member is under its bounds. The caller carries the changes out.
    pub(super) fn decide_pauses(&mut self) -> PauseChanges {
        let (share, share_bytes) = (self.share(), self.share_bytes());
        let member_full = self.is_full();
        // At its bound with nothing acknowledged for a while: every partition
        // is without room for good, not only those at their share.
        let member_stalled = member_full && self.last_progress.elapsed() >= PAUSE_AFTER;
        // Only a full partition is paused for the budget: read the queue
        // lengths (one librdkafka call per partition) only when there is one,
        // not on every acknowledgement.
        let any_full = self
            .list
            .iter()
            .any(|p| !p.paused && p.full_since.is_some());
        let over_budget = any_full && self.prefetched_bytes() > self.bound_bytes;
        let mut changes = PauseChanges {
            over_budget,
            ..PauseChanges::default()
        };
        let now = Instant::now();
        for p in &mut self.list {
            // Held until its next message is due: paused until then, then as
            // its share says.
            let held = match p.held_until {
                Some(until) if until > now => true,
                Some(_) => {
                    p.held_until = None;
                    false
                }
                None => false,
            };
            // At its share: paused after PAUSE_AFTER (brief backlogs are
            // absorbed by not reading it), or at once when what librdkafka
            // prefetched is over the bound; any partition when the member is
            // stalled.
            let stalled = member_stalled
                || p.full_since
                    .is_some_and(|since| over_budget || since.elapsed() >= PAUSE_AFTER);
            let want = held
                || if p.paused {
                    member_full
                        || p.ledger.held() > share / 2
                        || p.ledger.held_bytes() > share_bytes / 2
                } else {
                    stalled
                };
            if want != p.paused {
                let list = if want {
                    &mut changes.pause
                } else {
                    &mut changes.resume
                };
                list.push(p.id.clone());
                p.paused = want;
            }
        }
        changes
    }

    /// Calls `at(since, after)` for each moment a pause may become due
    /// without anyone waking the engine.
    pub(super) fn pause_deadlines(&self, mut at: impl FnMut(Instant, Duration)) {
        for p in &self.list {
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
    }

    // ---- Handing out and acknowledging ----

    /// Whether the partition at `index` has fetched messages not handed out.
    pub(super) fn has_fetched(&self, index: usize) -> bool {
        self.list[index].ledger.has_fetched()
    }

    /// Takes up to `size` fetched messages of the partition at `index`, owed
    /// by the subscribers in `owed_by`.
    pub(super) fn take_batch(
        &mut self,
        index: usize,
        size: usize,
        owed_by: SubscriberMask,
    ) -> (TopicPartition, Vec<ConsumedMessage>) {
        let p = &mut self.list[index];
        (p.id.clone(), p.ledger.take_batch(size, owed_by))
    }

    /// Subscribers in `by` are done with `from..=to` of `partition`.
    /// Acknowledgements of a partition no longer held are stale: dropped.
    /// Returns how many messages every subscriber is now done with.
    pub(super) fn acknowledge(
        &mut self,
        by: SubscriberMask,
        partition: &TopicPartition,
        from: i64,
        to: i64,
    ) -> usize {
        let Some(p) = self.get_mut(partition) else {
            return 0;
        };
        let released = p.ledger.acknowledge(by, from, to);
        self.held -= released;
        if released > 0 {
            self.last_progress = Instant::now();
        }
        released
    }

    /// Subscribers in `by` give `from..=to` of `partition` back unhandled.
    pub(super) fn release(
        &mut self,
        by: SubscriberMask,
        partition: &TopicPartition,
        from: i64,
        to: i64,
    ) {
        if let Some(p) = self.get_mut(partition) {
            p.ledger.release(by, from, to);
        }
    }

    // ---- Commits ----

    /// Each partition (or those in `only`) whose acknowledged offset moved
    /// past its last commit, with the offset to commit.
    pub(super) fn to_commit(&self, only: Option<&[TopicPartition]>) -> Vec<PartitionOffset> {
        self.list
            .iter()
            .filter(|p| only.is_none_or(|only| only.contains(&p.id)))
            .filter_map(|p| {
                Some(PartitionOffset {
                    partition: p.id.clone(),
                    offset: p.ledger.to_commit()?,
                })
            })
            .collect()
    }

    pub(super) fn mark_committed(&mut self, committed: &PartitionOffset) {
        if let Some(p) = self.get_mut(&committed.partition) {
            p.ledger.mark_committed(committed.offset);
        }
    }

    /// Whether the partition's committed offset reached `offset`.
    pub(super) fn is_committed(&self, offset: &PartitionOffset) -> bool {
        self.find(&offset.partition.topic, offset.partition.partition)
            .and_then(|i| self.list[i].ledger.committed())
            .is_some_and(|done| done >= offset.offset)
    }

    // ---- What the member reports ----

    pub(super) fn paused(&self) -> Vec<TopicPartition> {
        let paused = self.list.iter().filter(|p| p.paused);
        paused.map(|p| p.id.clone()).collect()
    }

    /// Messages held now, the most held so far, and the bytes held now.
    pub(super) fn holdings(&self) -> (usize, usize, usize) {
        (self.held, self.max_held, self.held_bytes())
    }

    /// The last offset committed per partition.
    pub(super) fn committed(&self) -> Vec<PartitionOffset> {
        self.offsets(Ledger::committed)
    }

    /// One past the last message fetched, per partition.
    pub(super) fn positions(&self) -> Vec<PartitionOffset> {
        self.offsets(Ledger::position)
    }

    /// Each partition with its committed offset, if any.
    pub(super) fn commit_points(&self) -> impl Iterator<Item = (&TopicPartition, Option<i64>)> {
        self.list.iter().map(|p| (&p.id, p.ledger.committed()))
    }

    fn offsets(&self, of: impl Fn(&Ledger) -> Option<i64>) -> Vec<PartitionOffset> {
        self.list
            .iter()
            .filter_map(|p| {
                Some(PartitionOffset {
                    partition: p.id.clone(),
                    offset: of(&p.ledger)?,
                })
            })
            .collect()
    }
}

impl Partition {
    /// Notes whether the partition is at its share now, and since when.
    fn note_fullness(&mut self, share: usize, share_bytes: usize) {
        let full = self.ledger.held() >= share || self.ledger.held_bytes() >= share_bytes;
        match (full, self.full_since) {
            (true, None) => self.full_since = Some(Instant::now()),
            (false, Some(_)) => self.full_since = None,
            _ => {}
        }
    }
}

/// The sizes of a partition's recent messages.
#[derive(Default)]
struct RecentSizes {
    /// The largest held size (`held_bytes`) lately: it decays by an eighth
    /// with each smaller message, so one outlier does not shrink reads for long.
    largest: usize,
    /// The average value length: what librdkafka counts in its queue's size,
    /// to estimate from the queue's length what librdkafka prefetched.
    payload: usize,
}

impl RecentSizes {
    /// Notes a message holding `held` bytes, `payload` of them its value.
    fn note(&mut self, held: usize, payload: usize) {
        self.largest = held.max(self.largest - self.largest / 8);
        self.payload = running_average(self.payload, payload);
    }
}

/// Holds a partition's fetched message in its `ledger` until it is handed out
/// and acknowledged, and notes its size in `sizes`; returns the bytes it counts
/// for. (Fields, not the partition: reading its queue borrows the partition.)
fn hold(ledger: &mut Ledger, sizes: &mut RecentSizes, message: ConsumedMessage) -> usize {
    let payload = message.value().map_or(0, <[u8]>::len);
    let held = ledger.push_fetched(message);
    sizes.note(held, payload);
    held
}

/// `average` with one more `size` folded in (the first size is the average).
fn running_average(average: usize, size: usize) -> usize {
    if average == 0 {
        size
    } else {
        (average * 7 + size) / 8
    }
}

/// What the engine parts' tests start from.
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;

    /// Partition `partition` of topic "t".
    pub(in super::super) fn id(partition: i32) -> TopicPartition {
        TopicPartition {
            topic: "t".into(),
            partition,
        }
    }

    /// Partitions 0 and 1 of "t", taken on at offset 0 and bounded by
    /// `bound` messages (and 1 MiB), with the offsets in `fetched[i]` of
    /// partition `i` fetched.
    pub(in super::super) fn fetched(
        bound: usize,
        fetched: [std::ops::Range<i64>; 2],
    ) -> Partitions {
        let mut partitions = Partitions::new(bound, 1 << 20);
        for (index, offsets) in fetched.into_iter().enumerate() {
            let partition = index as i32;
            assert!(partitions.take(id(partition), StartingOffset::Committed(0), None));
            for offset in offsets {
                let message =
                    ConsumedMessage::new("t", partition, offset, &crate::Message::new("v"));
                partitions.hold_at(index, message);
            }
        }
        partitions
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{fetched, id};
    use super::*;

    /// Partitions 0 and 1 taken on, with `offsets` of partition 0 fetched.
    fn holding(offsets: std::ops::Range<i64>) -> Partitions {
        fetched(100, [offsets, 0..0])
    }

    #[test]
    fn a_partition_is_taken_on_once() {
        let mut partitions = holding(0..0);
        assert!(!partitions.take(id(0), StartingOffset::Committed(5), None));
        assert_eq!(partitions.len(), 2);
        assert_eq!(partitions.assignment()[0].1, StartingOffset::Committed(0));
    }

    #[test]
    fn commits_follow_acknowledgements_and_free_what_was_held() {
        let mut partitions = holding(0..10);
        assert_eq!(partitions.holdings().0, 10);
        let (partition, batch) = partitions.take_batch(0, 10, 0b1);
        assert_eq!((partition, batch.len()), (id(0), 10));
        assert_eq!(partitions.owed(&[id(0)]), 10);
        assert!(partitions.to_commit(None).is_empty());

        partitions.acknowledge(0b1, &id(0), 0, 3);
        let offsets = partitions.to_commit(None);
        assert_eq!(offsets.len(), 1);
        assert_eq!(
            (offsets[0].partition.clone(), offsets[0].offset),
            (id(0), 4)
        );
        assert_eq!(partitions.holdings().0, 6);
        assert!(
            partitions.to_commit(Some(&[id(1)])).is_empty(),
            "only partition 1"
        );

        partitions.mark_committed(&offsets[0]);
        assert!(partitions.is_committed(&offsets[0]));
        assert!(
            partitions.to_commit(None).is_empty(),
            "nothing new to commit"
        );
        // An acknowledgement of a partition no longer held changes nothing.
        partitions.acknowledge(0b1, &id(7), 0, 9);
        assert_eq!(partitions.holdings().0, 6);
    }

    #[test]
    fn a_revoked_partition_goes_with_what_is_held_of_it() {
        let mut partitions = holding(0..10);
        partitions.take_batch(0, 4, 0b1);
        partitions.drop_fetched(&[id(0)]);
        assert_eq!(
            partitions.holdings().0,
            4,
            "the 6 not handed out are dropped"
        );
        assert_eq!(partitions.remove(&[id(0)]), 1);
        assert_eq!(partitions.holdings().0, 0);
        assert!(!partitions.contains(&id(0)) && partitions.contains(&id(1)));
    }

    #[test]
    fn a_held_partition_is_paused_until_its_time_then_resumed() {
        let mut partitions = holding(0..0);
        let later = Instant::now() + Duration::from_secs(3600);
        assert!(partitions.hold_until(&id(1), later));
        let changes = partitions.decide_pauses();
        assert_eq!(changes.pause, vec![id(1)]);
        assert!(changes.resume.is_empty());
        assert_eq!(partitions.paused(), vec![id(1)]);
        assert_eq!(partitions.decide_pauses(), PauseChanges::default());

        let past = Instant::now() - Duration::from_millis(1);
        assert!(partitions.hold_until(&id(1), past));
        assert_eq!(partitions.decide_pauses().resume, vec![id(1)]);
        assert!(partitions.paused().is_empty());
        assert!(!partitions.hold_until(&id(9), later), "not held");
    }

    #[test]
    fn a_member_at_its_bound_is_full_and_names_when_to_look_again() {
        let mut partitions = fetched(4, [0..4, 0..0]);
        assert!(partitions.is_full());
        let mut deadlines = Vec::new();
        partitions.pause_deadlines(|_, after| deadlines.push(after));
        assert_eq!(deadlines, vec![PAUSE_AFTER], "the stall check");
        partitions.take_batch(0, 4, 0b1);
        partitions.acknowledge(0b1, &id(0), 0, 3);
        assert!(!partitions.is_full());
    }
}
