//! Owned consumed messages and the events a group reports.

use std::fmt;
use std::sync::Arc;

use super::body::{Body, ConsumedHeaders};
use crate::native::message::RawMessage;
use crate::record::{Message, Preview};

/// A message read from Kafka, owned, so it can cross actor boundaries.
///
/// Its key, value and headers share one allocation, read through the
/// accessors. To test a handler, build one with [`new`](Self::new):
///
/// ```
/// use ekafka::{ConsumedMessage, Message};
/// let message = ConsumedMessage::new(
///     "orders",
///     3,
///     42,
///     &Message::new("hello").with_key("user-7").with_header("source", "web"),
/// );
/// assert_eq!((message.topic(), message.partition(), message.offset()), ("orders", 3, 42));
/// assert_eq!(message.value_str(), Some("hello"));
/// assert_eq!(message.key(), Some(&b"user-7"[..]));
/// assert_eq!(message.header("source"), Some(&b"web"[..]));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ConsumedMessage {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    body: Body,
}

impl ConsumedMessage {
    /// A message as if `message` had been read at `offset` of `partition` of
    /// `topic` (its own `topic` and `partition` fields are not used): for
    /// testing handlers without a cluster.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32, offset: i64, message: &Message) -> Self {
        ConsumedMessage {
            topic: topic.into(),
            partition,
            offset,
            timestamp: message.timestamp,
            body: Body::pack(
                message.key.as_deref(),
                message.value.as_deref(),
                message
                    .headers
                    .iter()
                    .map(|h| (h.key.as_str(), h.value.as_deref())),
            ),
        }
    }

    /// The topic it was read from.
    #[must_use]
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The topic, shared between the messages of a partition.
    pub(crate) fn shared_topic(&self) -> &Arc<str> {
        &self.topic
    }

    /// The partition it was read from.
    #[must_use]
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Its offset within the partition.
    #[must_use]
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Its timestamp in milliseconds since the Unix epoch, when it has one.
    #[must_use]
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// Its key; `None` when it has none.
    #[must_use]
    pub fn key(&self) -> Option<&[u8]> {
        self.body.key()
    }

    /// Its value; `None` for a tombstone.
    #[must_use]
    pub fn value(&self) -> Option<&[u8]> {
        self.body.value()
    }

    /// The value as UTF-8 text, when it is.
    #[must_use]
    pub fn value_str(&self) -> Option<&str> {
        self.value().and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Its headers, in order.
    #[must_use]
    pub fn headers(&self) -> ConsumedHeaders<'_> {
        self.body.headers()
    }

    /// The value of the first header named `key`.
    #[must_use]
    pub fn header(&self, key: &str) -> Option<&[u8]> {
        self.headers().find(|h| h.key == key).and_then(|h| h.value)
    }

    /// An owned copy of its key, value, headers and timestamp, with no topic
    /// or partition: ready to be written elsewhere (forwarded, dead-lettered).
    pub fn to_message(&self) -> Message {
        Message {
            topic: None,
            partition: None,
            key: self.key().map(<[u8]>::to_vec),
            value: self.value().map(<[u8]>::to_vec),
            headers: self.headers().map(|h| h.to_owned_header()).collect(),
            timestamp: self.timestamp,
        }
    }

    /// Changes its key, value, headers or timestamp, for a
    /// [`before_deliver`](crate::interceptor::Interceptor::before_deliver)
    /// interceptor: `change` edits them as a [`Message`] (whose `topic` and
    /// `partition` are not used), and they are packed back. Costs a copy of
    /// the message; where it was read from does not change.
    ///
    /// ```
    /// use ekafka::{ConsumedMessage, Message};
    /// let mut message = ConsumedMessage::new("orders", 0, 7, &Message::new("hello"));
    /// message.edit(|m| m.headers.push(ekafka::Header { key: "seen".into(), value: None }));
    /// assert_eq!(message.headers().len(), 1);
    /// assert_eq!(message.value_str(), Some("hello"));
    /// ```
    pub fn edit(&mut self, change: impl FnOnce(&mut Message)) {
        let mut parts = self.to_message();
        change(&mut parts);
        *self = ConsumedMessage::new(Arc::clone(&self.topic), self.partition, self.offset, &parts);
    }

    /// The bytes this message holds in memory: its key, value and headers,
    /// plus the fixed size of the record itself. What `maxBufferedBytes` counts.
    pub(crate) fn held_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.body.len()
    }
}

impl fmt::Debug for ConsumedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumedMessage")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .field("key", &format_args!("{}", Preview(self.key())))
            .field("value", &format_args!("{}", Preview(self.value())))
            .field("headers", &self.headers())
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

/// Copies a librdkafka message (of `topic`) into an owned one, sharing the
/// topic name.
pub(crate) fn owned(topic: &Arc<str>, message: &RawMessage<'_>) -> ConsumedMessage {
    ConsumedMessage {
        topic: Arc::clone(topic),
        partition: message.partition(),
        offset: message.offset(),
        timestamp: message.timestamp(),
        body: Body::pack(message.key(), message.value(), message.headers()),
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
#[non_exhaustive]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Header;

    fn sample() -> Message {
        let mut message = Message::new("v").with_key("k").with_header("a", "1");
        message.headers.push(Header {
            key: "null".into(),
            value: None,
        });
        message.timestamp = Some(1_700_000_000_000);
        message
    }

    #[test]
    fn to_message_gives_back_what_it_was_built_from() {
        let consumed = ConsumedMessage::new("t", 2, 9, &sample());
        assert_eq!(consumed.to_message(), sample());
        assert_eq!(consumed.header("null"), None);
        assert_eq!(consumed.header("a"), Some(&b"1"[..]));
        assert_eq!(consumed.timestamp(), Some(1_700_000_000_000));
    }

    #[test]
    fn held_bytes_count_every_part() {
        let empty = ConsumedMessage::new("t", 0, 0, &Message::default());
        let full = ConsumedMessage::new("t", 0, 0, &sample());
        // key 1 + value 1 + two headers' names (1 + 4), one value (1) and lengths.
        let parts = 1 + 1 + 5 + 1 + 4 * std::mem::size_of::<usize>();
        assert_eq!(full.held_bytes() - empty.held_bytes(), parts);
    }

    #[test]
    fn debug_shows_the_parts() {
        let shown = format!("{:?}", ConsumedMessage::new("t", 1, 5, &sample()));
        assert!(shown.contains("offset: 5"), "{shown}");
        assert!(shown.contains("value: \"v\""), "{shown}");
        assert!(shown.contains("[a=\"1\", null=null]"), "{shown}");
    }
}
