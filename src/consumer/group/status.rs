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
