//! What a group member reports of itself.

use crate::record::{PartitionOffset, TopicPartition};

/// A snapshot of a group member's state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupStatus {
    /// Subscribed topics the cluster does not have: the member asks for them
    /// every 2 s and consumes each once it is created.
    pub missing_topics: Vec<String>,
    /// The current generation (-1 before the first assignment).
    pub generation: i32,
    /// Partitions assigned to this member.
    pub assigned: Vec<TopicPartition>,
    /// Assigned partitions paused because subscribers are behind.
    pub paused: Vec<TopicPartition>,
    /// Messages held now, from fetch until acknowledged.
    pub held: usize,
    /// The most messages held at any moment so far (never above `maxBuffered`).
    pub max_held: usize,
    /// Bytes of the messages held now (never much above `maxBufferedBytes`:
    /// one message at most).
    pub held_bytes: usize,
    /// The last offset committed per partition (the next to read).
    pub committed: Vec<PartitionOffset>,
    /// Per partition, one past the last message fetched: where reading goes
    /// on (partitions nothing was fetched from yet are left out).
    pub positions: Vec<PartitionOffset>,
    /// Per partition, its high watermark as of the latest fetch (the offset
    /// the next message written will get); lag is this minus `committed`.
    pub high_watermarks: Vec<PartitionOffset>,
    /// Message subscribers attached (the pull API counts as one).
    pub subscribers: usize,
}

impl GroupStatus {
    /// How far behind `partition` is: its high watermark minus the offset
    /// committed (all of it when nothing is committed yet); `None` before
    /// its first fetch.
    #[must_use]
    pub fn lag(&self, partition: &TopicPartition) -> Option<i64> {
        let offset_of = |offsets: &[PartitionOffset]| {
            offsets
                .iter()
                .find(|o| o.partition == *partition)
                .map(|o| o.offset)
        };
        let high = offset_of(&self.high_watermarks)?;
        Some((high - offset_of(&self.committed).unwrap_or(0)).max(0))
    }

    /// The lag of every assigned partition, summed (those not fetched from
    /// yet count as none).
    #[must_use]
    pub fn total_lag(&self) -> i64 {
        self.assigned.iter().filter_map(|p| self.lag(p)).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn at(partition: i32, offset: i64) -> PartitionOffset {
        PartitionOffset {
            partition: TopicPartition {
                topic: Arc::from("t"),
                partition,
            },
            offset,
        }
    }

    #[test]
    fn lag_is_the_high_watermark_past_the_commit_summed_over_the_partitions() {
        let status = GroupStatus {
            missing_topics: Vec::new(),
            generation: 1,
            assigned: (0..3).map(|p| at(p, 0).partition).collect(),
            paused: Vec::new(),
            held: 0,
            max_held: 0,
            held_bytes: 0,
            committed: vec![at(0, 40), at(1, 7)],
            positions: Vec::new(),
            // Partition 2 was never fetched from: its lag is unknown.
            high_watermarks: vec![at(0, 50), at(1, 7), at(5, 9)],
            subscribers: 1,
        };
        assert_eq!(status.lag(&at(0, 0).partition), Some(10));
        assert_eq!(status.lag(&at(1, 0).partition), Some(0));
        assert_eq!(status.lag(&at(2, 0).partition), None);
        assert_eq!(status.total_lag(), 10);
    }
}
