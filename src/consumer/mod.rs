//! Consuming: consumer groups (`[kafka.consumerGroups.NAME]`), their events, and
//! the owned message type.

mod context;
mod group;
mod single;

pub use crate::record::{
    Assigned, ConsumedHeaders, ConsumedMessage, Event, GroupError, GroupEvent, HeaderRef,
    MessageBatch, PartitionOffset, Revoked, StartingOffset, TopicPartition,
};
pub use group::{ConsumerGroup, GroupStatus};
pub use single::Consumer;

pub(crate) use group::GroupSpec;
