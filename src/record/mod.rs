//! The records that cross module borders: messages to write and their
//! outcomes, messages consumed, and what a consumer group tells its
//! subscribers. They sit below the producer, consumer, interceptor and server
//! modules, which all use them and none of which they use, so no two of those
//! modules depend on each other through them.

mod body;
mod consumed;
mod delivery;
mod group;
mod message;

pub use body::{ConsumedHeaders, HeaderRef};
pub use consumed::{ConsumedMessage, PartitionOffset, StartingOffset, TopicPartition};
pub use delivery::{CloseReport, Outcome, ProduceError, ProduceErrorKind, WriteReport};
pub use group::{Assigned, Event, GroupError, GroupEvent, MessageBatch, Revoked};
pub use message::{Delivery, Header, Message};

pub(crate) use consumed::{describe_offsets, owned as owned_consumed};
pub(crate) use group::{Ack, AckKind, AckSender, AckSink, SubscriberMask};
pub(crate) use message::{owned_headers, Preview};
