//! Consuming: consumer groups (`[kafka.consumerGroups.NAME]`), their events, and
//! the owned message type.

mod group;
mod message;

pub use group::{
    Assigned, ConsumerGroup, ConsumerGroupActor, Event, GroupError, GroupEvent, GroupStatus,
    MessageBatch, Revoked,
};
pub use message::{ConsumedMessage, PartitionOffset, StartingOffset, TopicPartition};

pub(crate) use group::GroupSpec;
