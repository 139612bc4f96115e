//! Owned message types that cross actor boundaries.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use rdkafka::bindings as ffi;

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

/// Copies the headers of a librdkafka message.
pub(crate) fn owned_headers(message: &rdkafka::message::BorrowedMessage<'_>) -> Vec<Header> {
    // SAFETY: the borrowed message is alive for the call.
    unsafe { native_headers(message.ptr()) }
}

/// Copies the headers of a librdkafka message, in order.
///
/// # Safety
/// `message` must point to a live librdkafka message.
pub(crate) unsafe fn native_headers(message: *const ffi::rd_kafka_message_t) -> Vec<Header> {
    // SAFETY: per the contract; the iterator is used up before returning.
    unsafe { NativeHeaders::of(message) }
        .map(|(name, value)| Header {
            key: name.into_owned(),
            value: value.map(<[u8]>::to_vec),
        })
        .collect()
}

/// A librdkafka message's headers, read in place. Reads librdkafka's list
/// directly: rust-rdkafka's iterator checks every name twice and wraps each
/// header in a struct of its own.
#[derive(Clone)]
pub(crate) struct NativeHeaders<'a> {
    list: *const ffi::rd_kafka_headers_t,
    index: usize,
    count: usize,
    message: std::marker::PhantomData<&'a ()>,
}

impl NativeHeaders<'_> {
    /// # Safety
    /// `message` must point to a live librdkafka message that outlives the
    /// iterator.
    pub(crate) unsafe fn of(message: *const ffi::rd_kafka_message_t) -> Self {
        let mut list = std::ptr::null_mut();
        // SAFETY: per the contract; the list belongs to the message.
        let found = unsafe { ffi::rd_kafka_message_headers(message, &mut list) };
        let count =
            if found == ffi::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && !list.is_null() {
                // SAFETY: the list is alive while the message is.
                unsafe { ffi::rd_kafka_header_cnt(list) }
            } else {
                0
            };
        NativeHeaders {
            list,
            index: 0,
            count,
            message: std::marker::PhantomData,
        }
    }
}

impl<'a> Iterator for NativeHeaders<'a> {
    type Item = (Cow<'a, str>, Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.count {
            return None;
        }
        let (mut name, mut value, mut size) = (std::ptr::null(), std::ptr::null(), 0);
        // SAFETY: `index` is below the count of a list that lives as long as
        // the message, as do the pointers written.
        let read = unsafe {
            ffi::rd_kafka_header_get_all(self.list, self.index, &mut name, &mut value, &mut size)
        };
        if read != ffi::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            self.index = self.count;
            return None;
        }
        self.index += 1;
        Some((
            // SAFETY: librdkafka's header names are NUL-terminated.
            unsafe { std::ffi::CStr::from_ptr(name) }.to_string_lossy(),
            // SAFETY: `value` points to `size` bytes, or is null for Kafka's null.
            unsafe { native_bytes(value, size) },
        ))
    }
}

/// The `size` bytes at `data`, or `None` when it is null.
///
/// # Safety
/// `data` must be null or point to `size` readable bytes that outlive `'a`.
pub(crate) unsafe fn native_bytes<'a>(
    data: *const std::ffi::c_void,
    size: usize,
) -> Option<&'a [u8]> {
    if data.is_null() {
        None
    } else {
        // SAFETY: per the contract.
        Some(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size) })
    }
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
