//! Owned message types that cross actor boundaries.

use std::fmt;
use std::sync::Arc;

use crate::native::message::RawMessage;

/// A message header. Kafka allows a header without a value, hence the `Option`.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub key: String,
    /// Header value; `None` is Kafka's null value.
    pub value: Option<Vec<u8>>,
}

/// A message to write.
///
/// Only the value is usually needed; the topic may come from the producer's
/// config, the partition from its balancer and the timestamp from the client.
///
/// ```
/// use ekafka::Message;
/// let message = Message::new("hello")
///     .with_key("user-42")
///     .with_header("source", "checkout")
///     .with_topic("orders");
/// assert_eq!(message.value.as_deref(), Some(&b"hello"[..]));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Topic; `None` uses the producer's configured `topic`.
    pub topic: Option<String>,
    /// Partition; `None` lets the producer's balancer choose.
    pub partition: Option<i32>,
    /// Key; equal keys land on the same partition with the `hash` balancer.
    pub key: Option<Vec<u8>>,
    /// Value; `None` writes a tombstone.
    pub value: Option<Vec<u8>>,
    /// Headers, in order.
    pub headers: Vec<Header>,
    /// Timestamp in milliseconds since the Unix epoch; `None` lets the client stamp it.
    pub timestamp: Option<i64>,
}

impl Message {
    /// A message with this value.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Message {
            value: Some(value.into()),
            ..Message::default()
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the topic, overriding the producer's.
    pub fn with_topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = Some(topic.into());
        self
    }

    /// Pins the partition, bypassing the balancer.
    #[must_use]
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Appends a header.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push(Header {
            key: key.into(),
            value: Some(value.into()),
        });
        self
    }

    /// Sets the timestamp (milliseconds since the Unix epoch).
    #[must_use]
    pub fn with_timestamp(mut self, millis: i64) -> Self {
        self.timestamp = Some(millis);
        self
    }
}

/// Copies the headers of a librdkafka message, in order.
pub(crate) fn owned_headers(message: &rdkafka::message::BorrowedMessage<'_>) -> Vec<Header> {
    RawMessage::of(message)
        .headers()
        .map(|(name, value)| Header {
            key: name.into_owned(),
            value: value.map(<[u8]>::to_vec),
        })
        .collect()
}

/// Shows bytes as text when they are UTF-8, cut to a readable length.
pub(crate) struct Preview<'a>(pub(crate) Option<&'a [u8]>);

impl fmt::Display for Preview<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LIMIT: usize = 64;
        let Some(bytes) = self.0 else {
            return f.write_str("null");
        };
        let shown = &bytes[..bytes.len().min(LIMIT)];
        match std::str::from_utf8(shown) {
            Ok(text) => write!(f, "{text:?}")?,
            Err(_) => write!(f, "<{} bytes>", bytes.len())?,
        }
        if bytes.len() > LIMIT {
            write!(f, "…({} bytes)", bytes.len())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, Preview(self.value.as_deref()))
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("key", &format_args!("{}", Preview(self.key.as_deref())))
            .field("value", &format_args!("{}", Preview(self.value.as_deref())))
            .field("headers", &self.headers)
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

/// Where the broker stored a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Topic (shared by the deliveries of a write's messages to one topic).
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// The message timestamp (ms since the Unix epoch), when known.
    pub timestamp: Option<i64>,
}
