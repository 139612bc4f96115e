//! Owned consumed messages and the events a group reports.

use std::fmt;
use std::sync::Arc;

use crate::record::message::{native_bytes, native_headers};
use crate::record::{Header, Preview};

/// A message read from Kafka, owned, so it can cross actor boundaries.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsumedMessage {
    /// Topic (shared between the messages of a partition).
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value; `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// Headers, in order.
    pub headers: Vec<Header>,
    /// Timestamp in milliseconds since the Unix epoch, when the message has one.
    pub timestamp: Option<i64>,
}

impl ConsumedMessage {
    /// The value of the first header named `key`.
    pub fn header(&self, key: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.key == key)
            .and_then(|h| h.value.as_deref())
    }

    /// The value as UTF-8 text, when it is.
    pub fn value_str(&self) -> Option<&str> {
        self.value
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The bytes this message holds in memory: key, value and headers, plus
    /// the fixed size of the record itself. What `maxBufferedBytes` counts.
    pub(crate) fn held_bytes(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len))
            .sum();
        std::mem::size_of::<Self>()
            + self.key.as_ref().map_or(0, Vec::len)
            + self.value.as_ref().map_or(0, Vec::len)
            + headers
    }
}

impl fmt::Debug for ConsumedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumedMessage")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .field("key", &format_args!("{}", Preview(self.key.as_deref())))
            .field("value", &format_args!("{}", Preview(self.value.as_deref())))
            .field("headers", &self.headers)
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

/// Copies a librdkafka message into an owned one, sharing the topic name.
pub(crate) fn owned(
    topic: &Arc<str>,
    message: &rdkafka::message::BorrowedMessage<'_>,
) -> ConsumedMessage {
    // SAFETY: the borrowed message is alive for the call.
    unsafe { owned_native(topic, message.ptr()) }
}

/// Copies a librdkafka message (of `topic`) into an owned one.
///
/// # Safety
/// `message` must point to a live librdkafka message without an error.
pub(crate) unsafe fn owned_native(
    topic: &Arc<str>,
    message: *const rdkafka::bindings::rd_kafka_message_t,
) -> ConsumedMessage {
    use rdkafka::bindings as ffi;
    // SAFETY: per the contract, for the whole function.
    unsafe {
        let m = &*message;
        let mut kind = ffi::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        let timestamp = ffi::rd_kafka_message_timestamp(message, &mut kind);
        ConsumedMessage {
            topic: Arc::clone(topic),
            partition: m.partition,
            offset: m.offset,
            key: native_bytes(m.key, m.key_len).map(<[u8]>::to_vec),
            value: native_bytes(m.payload, m.len).map(<[u8]>::to_vec),
            headers: native_headers(message),
            timestamp: (kind != ffi::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
                && timestamp >= 0)
                .then_some(timestamp),
        }
    }
}

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// Where consumption of an assigned partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingOffset {
    /// The group's committed offset: the next message to read.
    Committed(i64),
    /// Nothing committed yet: the `startOffset` policy applies (first or last).
    Reset(crate::config::StartOffset),
}

/// `topic/0 at 42, topic/1 at 17`: each partition with its offset.
pub(crate) fn describe_offsets(offsets: &[PartitionOffset]) -> String {
    offsets
        .iter()
        .map(|o| format!("{} at {}", o.partition, o.offset))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A partition and an offset in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffset {
    /// The partition.
    pub partition: TopicPartition,
    /// The offset: for commits, the next offset to read.
    pub offset: i64,
}
