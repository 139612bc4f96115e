//! Typed messages: a [`Codec`] turns values of your types into message bodies
//! and back, so handlers take an `Order`, not bytes, and producers write one.
//!
//! [`Json`] (on serde) is built in. Avro, Protobuf or any other format plugs
//! in as your own codec: implement [`Encoder`] and [`Decoder`] for your type.
//!
//! Where typed values enter and leave:
//! - writing: [`Producer::typed`](crate::Producer::typed) gives a
//!   [`TypedProducer`](crate::producer::TypedProducer);
//! - each-message servers:
//!   [`ConsumerServer::on_each_value`](crate::server::ConsumerServer::on_each_value)
//!   and the builder's `on_each_value_*` methods. A message that does not
//!   decode is a failure for good of that message (never retried): it is
//!   dead-lettered, or stops its partition, as any fatal failure, with a
//!   [`DecodeError`] naming its topic, partition, offset and the codec's reason;
//! - consumer-group subscribers:
//!   [`ConsumerGroup::subscribe_values`](crate::ConsumerGroup::subscribe_values);
//! - anything else that holds a [`ConsumedMessage`] (a single consumer's
//!   `read`, the pull API): [`Decoder::value_of`].
//!
//! ```
//! use ekafka::codec::{Decoder, Encoder, Json};
//! use ekafka::ConsumedMessage;
//!
//! #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
//! struct Order {
//!     id: u64,
//!     item: String,
//! }
//!
//! let order = Order { id: 7, item: "tea".into() };
//! let message = Json.to_message(&order).unwrap().with_key("customer-3");
//! let consumed = ConsumedMessage::new("orders", 2, 41, &message);
//! assert_eq!(Json.value_of(&consumed), Ok(order));
//!
//! let garbled = ConsumedMessage::new("orders", 2, 42, &ekafka::Message::new("{\"id\": 8"));
//! let error = <Json as Decoder<Order>>::value_of(&Json, &garbled).unwrap_err();
//! assert_eq!((error.partition, error.offset), (2, 42));
//! assert!(error.to_string().starts_with("orders/2@42 cannot be decoded: JSON: EOF"), "{error}");
//! ```

mod json;

use std::fmt;

pub use json::Json;

use crate::record::{ConsumedMessage, Header, Message};

/// Encodes values of `T` into message bodies and decodes them back: an
/// [`Encoder`] and a [`Decoder`] in one. Implemented for every type that is
/// both; implement those two for a codec of your own.
///
/// A codec sees only the body: the value and headers of a message. Keys,
/// topics and partitions are the writer's (see
/// [`TypedProducer::keyed_by`](crate::producer::TypedProducer::keyed_by)).
/// It is shared between threads and called for every message, so keep any
/// schema it needs inside it, parsed once.
///
/// A codec of your own, here a versioned text format that names its version
/// in a header and refuses versions it does not know:
///
/// ```
/// use ekafka::codec::{CodecError, Decoder, Encoded, Encoder};
/// use ekafka::ConsumedMessage;
///
/// struct Celsius(f64);
/// struct TemperatureV2;
///
/// impl Encoder<Celsius> for TemperatureV2 {
///     fn encode(&self, value: &Celsius) -> Result<Encoded, CodecError> {
///         Ok(Encoded::new(value.0.to_string()).with_header("schema", "temperature/2"))
///     }
/// }
///
/// impl Decoder<Celsius> for TemperatureV2 {
///     fn decode(&self, message: &ConsumedMessage) -> Result<Celsius, CodecError> {
///         if message.header("schema") != Some(&b"temperature/2"[..]) {
///             return Err(CodecError::new("not a temperature/2 message"));
///         }
///         let text = message.value_str().ok_or_else(|| CodecError::new("not UTF-8"))?;
///         text.parse().map(Celsius).map_err(CodecError::new)
///     }
/// }
/// ```
pub trait Codec<T>: Encoder<T> + Decoder<T> {}

impl<T, C: Encoder<T> + Decoder<T>> Codec<T> for C {}

/// Encodes values of `T` into message bodies: what a
/// [`TypedProducer`](crate::producer::TypedProducer) needs.
pub trait Encoder<T>: Send + Sync + 'static {
    /// The body of a message carrying `value`.
    fn encode(&self, value: &T) -> Result<Encoded, CodecError>;

    /// A message to write carrying `value`: set its key, topic or other
    /// headers before writing it.
    fn to_message(&self, value: &T) -> Result<Message, CodecError> {
        let Encoded { value, headers } = self.encode(value)?;
        Ok(Message {
            value: Some(value),
            headers,
            ..Message::default()
        })
    }
}

/// Decodes values of `T` from consumed messages: what typed handlers and
/// subscribers need.
pub trait Decoder<T>: Send + Sync + 'static {
    /// The value `message` carries, or why it carries none.
    fn decode(&self, message: &ConsumedMessage) -> Result<T, CodecError>;

    /// [`decode`](Self::decode), with a failure naming where the message
    /// was read.
    fn value_of(&self, message: &ConsumedMessage) -> Result<T, DecodeError> {
        self.decode(message)
            .map_err(|reason| DecodeError::of(message, reason))
    }
}

/// What a codec makes of a value: the message's value and the headers the
/// format needs (a content type, a schema id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoded {
    /// The message's value.
    pub value: Vec<u8>,
    /// Headers the format adds, in order.
    pub headers: Vec<Header>,
}

impl Encoded {
    /// A body with this value and no headers.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Encoded {
            value: value.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push(Header {
            key: key.into(),
            value: Some(value.into()),
        });
        self
    }
}

/// Why a codec could not encode or decode: the format's own reason (serde's,
/// for [`Json`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct CodecError {
    reason: String,
}

impl CodecError {
    /// A failure for this reason.
    pub fn new(reason: impl fmt::Display) -> Self {
        CodecError {
            reason: reason.to_string(),
        }
    }

    /// The reason given.
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// A consumed message that does not decode, and where it was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{topic}/{partition}@{offset} cannot be decoded: {reason}")]
#[non_exhaustive]
pub struct DecodeError {
    /// The topic it was read from.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The codec's reason.
    pub reason: CodecError,
}

impl DecodeError {
    /// `reason` for `message`.
    #[must_use]
    pub fn of(message: &ConsumedMessage, reason: CodecError) -> Self {
        DecodeError {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            reason,
        }
    }
}
