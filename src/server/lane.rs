//! Which messages of one partition may start, when up to `concurrency` of
//! them are handled at once: never two of one key together, each key's in
//! offset order, and among the keys free to go, the lowest offset first (so
//! the run of finished messages, which is what gets committed, grows from the
//! front). No actors or Kafka here, so the rules are tested directly.
//!
//! `orderBy = "none"` is the same with every message its own key.

use std::cmp::Reverse;
use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use crate::config::OrderBy;
use crate::record::ConsumedMessage;

/// What a message is ordered by: its key's hash. Two keys with one hash are
/// merely kept in order with each other, which is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct OrderKey(u64);

impl OrderKey {
    /// `message`'s order key under `order`.
    pub(crate) fn of(message: &ConsumedMessage, order: OrderBy) -> Self {
        match order {
            OrderBy::Key => {
                let mut hasher = DefaultHasher::new();
                message.key().hash(&mut hasher);
                OrderKey(hasher.finish())
            }
            // Offsets are unique within a partition.
            OrderBy::Nothing => OrderKey(message.offset() as u64),
        }
    }
}

/// The waiting messages of one key, and whether one of its messages runs.
struct KeyQueue<T> {
    running: bool,
    waiting: VecDeque<(i64, T)>,
}

/// One partition's messages waiting to be handled, and the keys running.
pub(crate) struct Lane<T> {
    limit: usize,
    running: usize,
    keys: HashMap<OrderKey, KeyQueue<T>>,
    /// The first waiting offset of every key with nothing running and
    /// something waiting; exactly one entry per such key.
    ready: BinaryHeap<Reverse<(i64, OrderKey)>>,
}

impl<T> Lane<T> {
    /// A lane running at most `limit` messages at once.
    pub(crate) fn new(limit: usize) -> Self {
        Lane {
            limit: limit.max(1),
            running: 0,
            keys: HashMap::new(),
            ready: BinaryHeap::new(),
        }
    }

    /// Messages running now.
    pub(crate) fn running(&self) -> usize {
        self.running
    }

    /// Messages waiting to start.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.keys.values().map(|q| q.waiting.len()).sum()
    }

    /// Adds a message after every one added before it (in offset order).
    pub(crate) fn push(&mut self, offset: i64, key: OrderKey, item: T) {
        let queue = self.keys.entry(key).or_insert_with(|| KeyQueue {
            running: false,
            waiting: VecDeque::new(),
        });
        if !queue.running && queue.waiting.is_empty() {
            self.ready.push(Reverse((offset, key)));
        }
        queue.waiting.push_back((offset, item));
    }

    /// The next message to start, if one may: the lowest offset among keys
    /// with nothing running, while fewer than `limit` run.
    pub(crate) fn start(&mut self) -> Option<(i64, OrderKey, T)> {
        if self.running >= self.limit {
            return None;
        }
        let Reverse((_, key)) = self.ready.pop()?;
        let queue = self.keys.get_mut(&key).expect("a ready key has a queue");
        let (offset, item) = queue.waiting.pop_front().expect("a ready key waits");
        queue.running = true;
        self.running += 1;
        Some((offset, key, item))
    }

    /// The message of `key` that ran is done: the key's next may start.
    pub(crate) fn finish(&mut self, key: OrderKey) {
        let Entry::Occupied(mut entry) = self.keys.entry(key) else {
            return;
        };
        let queue = entry.get_mut();
        if !queue.running {
            return;
        }
        queue.running = false;
        self.running -= 1;
        match queue.waiting.front() {
            Some(&(offset, _)) => self.ready.push(Reverse((offset, key))),
            None => {
                entry.remove();
            }
        }
    }

    /// The message of `key` that ran is to run again later (its partition
    /// stopped at it): it goes back before the key's other messages.
    pub(crate) fn put_back(&mut self, offset: i64, key: OrderKey, item: T) {
        let Some(queue) = self.keys.get_mut(&key) else {
            return;
        };
        if !queue.running {
            return;
        }
        queue.running = false;
        self.running -= 1;
        queue.waiting.push_front((offset, item));
        // A running key is never in `ready`: this is its only entry.
        self.ready.push(Reverse((offset, key)));
    }

    /// Takes every waiting message out, in no particular order; running ones
    /// stay counted until they finish.
    pub(crate) fn take_waiting(&mut self) -> Vec<T> {
        self.take_waiting_where(|_| true)
    }

    /// Takes the waiting messages `matches` picks out; the others keep their
    /// order.
    pub(crate) fn take_waiting_where(&mut self, mut matches: impl FnMut(&T) -> bool) -> Vec<T> {
        let mut taken = Vec::new();
        for queue in self.keys.values_mut() {
            let before = queue.waiting.len();
            let mut kept = VecDeque::with_capacity(before);
            for (offset, item) in queue.waiting.drain(..) {
                if matches(&item) {
                    taken.push(item);
                } else {
                    kept.push_back((offset, item));
                }
            }
            queue.waiting = kept;
        }
        self.keys.retain(|_, q| q.running || !q.waiting.is_empty());
        self.rebuild_ready();
        taken
    }

    fn rebuild_ready(&mut self) {
        self.ready = self
            .keys
            .iter()
            .filter(|(_, q)| !q.running)
            .filter_map(|(key, q)| {
                q.waiting
                    .front()
                    .map(|&(offset, _)| Reverse((offset, *key)))
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: u64) -> OrderKey {
        OrderKey(k)
    }

    /// A lane holding offsets 0.. with the keys given, the item being the offset.
    fn lane(limit: usize, keys: &[u64]) -> Lane<i64> {
        let mut lane = Lane::new(limit);
        for (offset, &k) in keys.iter().enumerate() {
            lane.push(offset as i64, key(k), offset as i64);
        }
        lane
    }

    fn start_all(lane: &mut Lane<i64>) -> Vec<i64> {
        std::iter::from_fn(|| lane.start().map(|(offset, _, _)| offset)).collect()
    }

    #[test]
    fn starts_up_to_the_limit_lowest_offset_first() {
        let mut lane = lane(3, &[1, 2, 3, 4, 5]);
        assert_eq!(start_all(&mut lane), [0, 1, 2]);
        assert_eq!((lane.running(), lane.waiting()), (3, 2));
        lane.finish(key(2));
        assert_eq!(start_all(&mut lane), [3]);
    }

    #[test]
    fn never_runs_two_of_one_key_and_keeps_each_keys_order() {
        // Offsets 0..6, keys a b a a b c.
        let mut lane = lane(10, &[1, 2, 1, 1, 2, 3]);
        assert_eq!(start_all(&mut lane), [0, 1, 5]);
        lane.finish(key(1));
        assert_eq!(start_all(&mut lane), [2]);
        lane.finish(key(2));
        assert_eq!(start_all(&mut lane), [4]);
        lane.finish(key(1));
        assert_eq!(start_all(&mut lane), [3]);
        assert_eq!(lane.waiting(), 0);
    }

    #[test]
    fn a_put_back_message_runs_again_before_the_rest_of_its_key() {
        let mut lane = lane(2, &[1, 1, 2]);
        assert_eq!(start_all(&mut lane), [0, 2]);
        lane.put_back(0, key(1), 0);
        assert_eq!(lane.running(), 1);
        assert_eq!(start_all(&mut lane), [0]);
        lane.finish(key(1));
        lane.finish(key(2));
        assert_eq!(start_all(&mut lane), [1]);
    }

    #[test]
    fn taking_waiting_messages_out_leaves_the_running_ones_counted() {
        let mut lane = lane(1, &[1, 2, 3, 4]);
        assert_eq!(start_all(&mut lane), [0]);
        let mut odd = lane.take_waiting_where(|offset| offset % 2 == 1);
        odd.sort_unstable();
        assert_eq!(odd, [1, 3]);
        assert_eq!((lane.running(), lane.waiting()), (1, 1));
        lane.finish(key(1));
        assert_eq!(start_all(&mut lane), [2]);
        assert_eq!(lane.take_waiting(), Vec::<i64>::new());
        lane.finish(key(3));
        assert_eq!((lane.running(), lane.waiting()), (0, 0));
    }

    #[test]
    fn finishing_a_key_that_is_not_running_changes_nothing() {
        let mut lane = lane(1, &[1, 2]);
        lane.finish(key(2));
        lane.finish(key(9));
        assert_eq!(start_all(&mut lane), [0]);
        assert_eq!(lane.running(), 1);
    }

    #[test]
    fn keyless_messages_share_one_key_and_none_orders_nothing() {
        let keyless = |offset| ConsumedMessage::new("t", 0, offset, &crate::Message::default());
        assert_eq!(
            OrderKey::of(&keyless(1), OrderBy::Key),
            OrderKey::of(&keyless(2), OrderBy::Key)
        );
        assert_ne!(
            OrderKey::of(&keyless(1), OrderBy::Nothing),
            OrderKey::of(&keyless(2), OrderBy::Nothing)
        );
    }
}
