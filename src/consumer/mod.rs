//! Consuming: consumer groups (`[kafka.consumerGroups.NAME]`), their events, and
//! the owned message type.

mod context;
mod group;
pub(crate) mod message;
mod single;

pub use group::{
    Assigned, ConsumerGroup, ConsumerGroupActor, Event, GroupError, GroupEvent, GroupStatus,
    MessageBatch, Revoked,
};
pub use message::{ConsumedMessage, PartitionOffset, StartingOffset, TopicPartition};
pub use single::{Consumer, ConsumerActor};

pub(crate) use group::GroupSpec;
pub(crate) use message::describe_offsets;
