//! JSON through serde.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{CodecError, Decoder, Encoded, Encoder};
use crate::record::ConsumedMessage;

/// JSON through serde: encodes any `T: Serialize`, decodes any
/// `T: DeserializeOwned` (a type read only needs `Deserialize`).
///
/// The value is the JSON text and nothing else (no header), exactly what
/// `serde_json::to_vec` writes, so services that encode by hand (Go ones
/// with `encoding/json`, say) read and write the same messages.
///
/// A tombstone (a message without a value) decodes as JSON's `null`: into an
/// `Option<T>` it is `None`; into anything else it is a failure saying so.
///
/// ```
/// use ekafka::codec::{Encoder, Json};
/// let message = Json.to_message(&vec![1, 2, 3]).unwrap();
/// assert_eq!(message.value.as_deref(), Some(&b"[1,2,3]"[..]));
/// assert!(message.headers.is_empty());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json;

impl<T: Serialize> Encoder<T> for Json {
    fn encode(&self, value: &T) -> Result<Encoded, CodecError> {
        serde_json::to_vec(value)
            .map(Encoded::new)
            .map_err(|e| CodecError::new(format!("JSON: {e}")))
    }
}

impl<T: DeserializeOwned> Decoder<T> for Json {
    fn decode(&self, message: &ConsumedMessage) -> Result<T, CodecError> {
        match message.value() {
            Some(value) => {
                serde_json::from_slice(value).map_err(|e| CodecError::new(format!("JSON: {e}")))
            }
            None => serde_json::from_slice(b"null").map_err(|_| {
                CodecError::new(format!(
                    "a tombstone (no value), and {} cannot be null: decode into an Option to receive tombstones",
                    std::any::type_name::<T>()
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::record::Message;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Order {
        id: u64,
        item: String,
    }

    fn consumed(message: &Message) -> ConsumedMessage {
        ConsumedMessage::new("orders", 1, 9, message)
    }

    #[test]
    fn a_value_comes_back_as_it_was_written() {
        let order = Order {
            id: 3,
            item: "tea".into(),
        };
        let message = Json.to_message(&order).unwrap();
        assert_eq!(
            message.value.as_deref(),
            Some(&br#"{"id":3,"item":"tea"}"#[..])
        );
        assert_eq!(Json.value_of(&consumed(&message)), Ok(order));
    }

    #[test]
    fn a_value_of_the_wrong_shape_names_where_it_was_read_and_serdes_reason() {
        let error =
            <Json as Decoder<Order>>::value_of(&Json, &consumed(&Message::new(r#"{"id":3}"#)))
                .unwrap_err();
        assert_eq!(
            error.to_string(),
            "orders/1@9 cannot be decoded: JSON: missing field `item` at line 1 column 8"
        );
        assert_eq!(
            (error.topic.as_str(), error.partition, error.offset),
            ("orders", 1, 9)
        );
    }

    #[test]
    fn a_tombstone_is_none_for_an_option_and_a_failure_otherwise() {
        let tombstone = consumed(&Message::default());
        assert_eq!(Json.decode(&tombstone), Ok(None::<Order>));
        let error = <Json as Decoder<Order>>::decode(&Json, &tombstone).unwrap_err();
        assert!(
            error.reason().starts_with("a tombstone (no value), and ")
                && error.reason().contains("Order cannot be null"),
            "{error}"
        );
    }

    #[test]
    fn a_value_json_cannot_hold_is_refused_with_serdes_reason() {
        let map: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let error = Json.encode(&map).unwrap_err();
        assert_eq!(error.reason(), "JSON: key must be a string");
    }
}
