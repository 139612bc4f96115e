//! Consuming: consumer groups (`[kafka.consumerGroups.NAME]`) with their events,
//! single consumers (`[kafka.consumers.NAME]`, one partition or a group's share,
//! driven by `fetch` and `commit` like Go's reader), and the owned message type.

mod context;
mod group;
mod single;

pub use crate::record::{
    Assigned, ConsumedHeaders, ConsumedMessage, Event, GroupError, GroupEvent, HeaderRef,
    MessageBatch, PartitionOffset, Revoked, StartingOffset, TopicPartition,
};
pub use group::{ConsumerGroup, GroupStatus, ValueBatch};
pub use single::Consumer;

pub(crate) use group::{GroupProperties, GroupSpec};
