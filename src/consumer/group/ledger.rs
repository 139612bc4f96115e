//! Per-partition bookkeeping of a group member: messages fetched but not yet
//! handed out, messages handed out and awaiting acknowledgement, and the offset
//! that may be committed. No Kafka here, so the rules can be tested directly.
//!
//! The one rule that matters: the committable offset only ever moves to just past
//! a run of messages that every subscriber acknowledged, so nothing is committed
//! past a message that was not handled.

use std::collections::VecDeque;

use crate::consumer::ConsumedMessage;

/// Which subscribers still owe an acknowledgement, one bit each.
pub(crate) use crate::record::SubscriberMask;

/// The most subscribers a group can have (one bit each in a mask).
pub(crate) const MAX_SUBSCRIBERS: usize = 64;

#[derive(Debug)]
struct InFlight {
    offset: i64,
    /// The message's `held_bytes`, freed when it is acknowledged.
    bytes: usize,
    pending: SubscriberMask,
    /// A subscriber gave it up unhandled: nobody is waited for, but the commit
    /// point never passes it, so it is delivered again to the next owner.
    released: bool,
}

/// One assigned partition.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    fetched: VecDeque<ConsumedMessage>,
    in_flight: VecDeque<InFlight>,
    /// The next offset to commit (one past the last message fully acknowledged).
    committable: Option<i64>,
    /// The last offset committed to the broker.
    committed: Option<i64>,
    /// Bytes of the messages `held` counts.
    held_bytes: usize,
    /// One past the last message fetched: where reading goes on.
    position: Option<i64>,
}

impl Ledger {
    /// Messages held for this partition: fetched plus awaiting acknowledgement.
    pub(crate) fn held(&self) -> usize {
        self.fetched.len() + self.in_flight.len()
    }

    /// Bytes of the messages held (see `ConsumedMessage::held_bytes`).
    pub(crate) fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    pub(crate) fn has_fetched(&self) -> bool {
        !self.fetched.is_empty()
    }

    /// Messages some subscriber still has to acknowledge or release: what a
    /// revoke waits for.
    pub(crate) fn owed(&self) -> usize {
        self.in_flight.iter().filter(|m| m.pending != 0).count()
    }

    /// Holds a fetched message; returns the bytes it counts for.
    pub(crate) fn push_fetched(&mut self, message: ConsumedMessage) -> usize {
        self.position = Some(message.offset() + 1);
        let bytes = message.held_bytes();
        self.held_bytes += bytes;
        self.fetched.push_back(message);
        bytes
    }

    /// Hands out up to `max` fetched messages, each now owed by `owed_by`.
    pub(crate) fn take_batch(
        &mut self,
        max: usize,
        owed_by: SubscriberMask,
    ) -> Vec<ConsumedMessage> {
        let count = max.min(self.fetched.len());
        let batch: Vec<ConsumedMessage> = self.fetched.drain(..count).collect();
        self.in_flight.extend(batch.iter().map(|m| InFlight {
            offset: m.offset(),
            bytes: m.held_bytes(),
            pending: owed_by,
            released: false,
        }));
        batch
    }

    /// Drops what was fetched but not handed out (the partition is going away, or
    /// was repositioned); returns how many.
    pub(crate) fn drop_fetched(&mut self) -> usize {
        let dropped = self.fetched.len();
        for message in self.fetched.drain(..) {
            self.held_bytes -= message.held_bytes();
        }
        dropped
    }

    /// Records that the subscribers in `by` are done with offsets `from..=to`.
    /// Returns how many messages became fully acknowledged and were released.
    pub(crate) fn acknowledge(&mut self, by: SubscriberMask, from: i64, to: i64) -> usize {
        let start = self.in_flight.partition_point(|m| m.offset < from);
        for entry in self.in_flight.iter_mut().skip(start) {
            if entry.offset > to {
                break;
            }
            entry.pending &= !by;
        }
        let mut released = 0;
        while let Some(front) = self.in_flight.front() {
            if front.pending != 0 || front.released {
                break;
            }
            self.committable = Some(front.offset + 1);
            self.held_bytes -= front.bytes;
            self.in_flight.pop_front();
            released += 1;
        }
        released
    }

    /// Records that the subscribers in `by` give offsets `from..=to` up
    /// unhandled: they owe nothing more for them, and the commit point stays
    /// before the first of them.
    pub(crate) fn release(&mut self, by: SubscriberMask, from: i64, to: i64) {
        let start = self.in_flight.partition_point(|m| m.offset < from);
        for entry in self.in_flight.iter_mut().skip(start) {
            if entry.offset > to {
                break;
            }
            if entry.pending & by != 0 {
                entry.pending &= !by;
                entry.released = true;
            }
        }
    }

    /// The offset to commit, when it moved past the last commit.
    pub(crate) fn to_commit(&self) -> Option<i64> {
        match (self.committable, self.committed) {
            (Some(next), Some(done)) if next <= done => None,
            (next, _) => next,
        }
    }

    pub(crate) fn mark_committed(&mut self, offset: i64) {
        self.committed = Some(self.committed.map_or(offset, |c| c.max(offset)));
    }

    /// One past the last message fetched, once one was.
    pub(crate) fn position(&self) -> Option<i64> {
        self.position
    }

    pub(crate) fn committed(&self) -> Option<i64> {
        self.committed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(offset: i64) -> ConsumedMessage {
        ConsumedMessage::new("t", 0, offset, &crate::Message::default())
    }

    fn ledger_with(offsets: std::ops::Range<i64>) -> Ledger {
        let mut ledger = Ledger::default();
        for offset in offsets {
            ledger.push_fetched(message(offset));
        }
        ledger
    }

    #[test]
    fn commits_only_past_a_fully_acknowledged_prefix() {
        let mut ledger = ledger_with(10..15);
        assert_eq!(ledger.take_batch(5, 0b1).len(), 5);
        assert_eq!(ledger.to_commit(), None);
        // 12..=14 acknowledged, 10 and 11 not: nothing may be committed.
        assert_eq!(ledger.acknowledge(0b1, 12, 14), 0);
        assert_eq!(ledger.to_commit(), None);
        assert_eq!(ledger.held(), 5);
        // 10 acknowledged: commit up to 11 (the next to read), not past it.
        assert_eq!(ledger.acknowledge(0b1, 10, 10), 1);
        assert_eq!(ledger.to_commit(), Some(11));
        // 11 acknowledged: the whole run is done.
        assert_eq!(ledger.acknowledge(0b1, 11, 11), 4);
        assert_eq!(ledger.to_commit(), Some(15));
        assert_eq!(ledger.held(), 0);
    }

    #[test]
    fn every_subscriber_must_acknowledge() {
        let mut ledger = ledger_with(0..3);
        ledger.take_batch(3, 0b11);
        ledger.acknowledge(0b01, 0, 2);
        assert_eq!(
            ledger.to_commit(),
            None,
            "the second subscriber still owes all three"
        );
        ledger.acknowledge(0b10, 0, 0);
        assert_eq!(ledger.to_commit(), Some(1));
    }

    #[test]
    fn acknowledging_twice_or_out_of_range_changes_nothing() {
        let mut ledger = ledger_with(0..2);
        ledger.take_batch(2, 0b1);
        ledger.acknowledge(0b1, 0, 0);
        assert_eq!(ledger.acknowledge(0b1, 0, 0), 0);
        assert_eq!(ledger.acknowledge(0b1, 50, 60), 0);
        assert_eq!(ledger.to_commit(), Some(1));
    }

    #[test]
    fn a_commit_is_not_repeated() {
        let mut ledger = ledger_with(0..1);
        ledger.take_batch(1, 0b1);
        ledger.acknowledge(0b1, 0, 0);
        ledger.mark_committed(1);
        assert_eq!(ledger.to_commit(), None);
        assert_eq!(ledger.committed(), Some(1));
    }

    #[test]
    fn released_messages_are_not_waited_for_and_never_committed_past() {
        let mut ledger = ledger_with(0..6);
        ledger.take_batch(6, 0b1);
        ledger.acknowledge(0b1, 0, 1);
        assert_eq!(ledger.to_commit(), Some(2));
        // 2..=5 given up unhandled (a revoke, a shutdown): nothing is owed any
        // more, yet the commit point stays at 2.
        ledger.release(0b1, 2, 5);
        assert_eq!(ledger.owed(), 0);
        assert_eq!(ledger.to_commit(), Some(2));
        // A late acknowledgement of a later message does not move it either.
        ledger.acknowledge(0b1, 3, 3);
        assert_eq!(ledger.to_commit(), Some(2));
    }

    #[test]
    fn a_release_by_one_subscriber_still_waits_for_the_other() {
        let mut ledger = ledger_with(0..2);
        ledger.take_batch(2, 0b11);
        ledger.release(0b01, 0, 1);
        assert_eq!(ledger.owed(), 2, "the second subscriber still owes both");
        ledger.acknowledge(0b10, 0, 1);
        assert_eq!((ledger.owed(), ledger.to_commit()), (0, None));
    }

    #[test]
    fn held_counts_fetched_and_unacknowledged() {
        let mut ledger = ledger_with(0..10);
        ledger.take_batch(4, 0b1);
        assert_eq!((ledger.held(), ledger.owed()), (10, 4));
        assert_eq!(ledger.drop_fetched(), 6);
        assert_eq!(ledger.held(), 4);
    }

    #[test]
    fn held_bytes_follow_held_messages_until_acknowledged() {
        let mut ledger = ledger_with(0..10);
        let each = message(0).held_bytes();
        assert_eq!(ledger.held_bytes(), 10 * each);
        ledger.take_batch(4, 0b1);
        assert_eq!(ledger.held_bytes(), 10 * each, "handed out is still held");
        ledger.acknowledge(0b1, 0, 1);
        assert_eq!(ledger.held_bytes(), 8 * each);
        ledger.drop_fetched();
        assert_eq!(ledger.held_bytes(), 2 * each);
        ledger.acknowledge(0b1, 2, 3);
        assert_eq!(ledger.held_bytes(), 0);
    }
}
