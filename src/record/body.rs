//! A consumed message's key, value and headers packed into one allocation.
//!
//! Copying a message out of librdkafka used to cost an allocation for the
//! value, one for the key, one for the header list and two per header; on a
//! busy group that copying was most of the engine thread's own work. Packed,
//! a message costs one allocation, sized exactly, whatever it carries.
//!
//! Layout of `bytes`: the key, then the value, then each header as its name's
//! length and its value's length (native-endian `usize`s, `usize::MAX` for a
//! null value) followed by the name and the value.

use std::fmt;

use super::message::Header;

/// The length written for a header whose value is Kafka's null.
const NULL: usize = usize::MAX;
const LEN: usize = std::mem::size_of::<usize>();

/// Key, value and headers of one message, in one allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Body {
    bytes: Box<[u8]>,
    key: Option<usize>,
    value: Option<usize>,
    headers: usize,
}

impl Body {
    /// Packs a message's parts. `headers` is walked twice: once to size the
    /// allocation, once to fill it.
    pub(crate) fn pack<'a, N: AsRef<str>>(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: impl Iterator<Item = (N, Option<&'a [u8]>)> + Clone,
    ) -> Body {
        let mut size = key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len);
        let mut count = 0;
        for (name, value) in headers.clone() {
            size += 2 * LEN + name.as_ref().len() + value.map_or(0, <[u8]>::len);
            count += 1;
        }
        let mut bytes = Vec::with_capacity(size);
        bytes.extend_from_slice(key.unwrap_or_default());
        bytes.extend_from_slice(value.unwrap_or_default());
        for (name, value) in headers.take(count) {
            let name = name.as_ref().as_bytes();
            bytes.extend_from_slice(&name.len().to_ne_bytes());
            bytes.extend_from_slice(&value.map_or(NULL, <[u8]>::len).to_ne_bytes());
            bytes.extend_from_slice(name);
            bytes.extend_from_slice(value.unwrap_or_default());
        }
        Body {
            // Exactly sized above, so this keeps the allocation as it is.
            bytes: bytes.into_boxed_slice(),
            key: key.map(<[u8]>::len),
            value: value.map(<[u8]>::len),
            headers: count,
        }
    }

    pub(crate) fn key(&self) -> Option<&[u8]> {
        self.key.and_then(|len| self.bytes.get(..len))
    }

    pub(crate) fn value(&self) -> Option<&[u8]> {
        let start = self.key.unwrap_or(0);
        self.value
            .and_then(|len| self.bytes.get(start..start + len))
    }

    pub(crate) fn headers(&self) -> ConsumedHeaders<'_> {
        let start = self.key.unwrap_or(0) + self.value.unwrap_or(0);
        ConsumedHeaders {
            rest: self.bytes.get(start..).unwrap_or_default(),
            remaining: self.headers,
        }
    }

    /// The bytes allocated for the parts.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }
}

/// A header of a consumed message, borrowed from it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    /// Header name.
    pub key: &'a str,
    /// Header value; `None` is Kafka's null value.
    pub value: Option<&'a [u8]>,
}

impl HeaderRef<'_> {
    /// An owned copy, as written with [`Message::headers`](crate::Message::headers).
    pub fn to_owned_header(&self) -> Header {
        Header {
            key: self.key.to_owned(),
            value: self.value.map(<[u8]>::to_vec),
        }
    }
}

impl fmt::Debug for HeaderRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, super::Preview(self.value))
    }
}

/// The headers of a consumed message, in order; from
/// [`ConsumedMessage::headers`](crate::ConsumedMessage::headers).
#[derive(Clone)]
pub struct ConsumedHeaders<'a> {
    rest: &'a [u8],
    remaining: usize,
}

impl<'a> Iterator for ConsumedHeaders<'a> {
    type Item = HeaderRef<'a>;

    fn next(&mut self) -> Option<HeaderRef<'a>> {
        if self.remaining == 0 {
            return None;
        }
        // `Body::pack` wrote what is read here, so none of the `?`s fires;
        // they end the walk rather than panic if that ever changed.
        let (name_len, rest) = take_len(self.rest)?;
        let (value_len, rest) = take_len(rest)?;
        let (name, rest) = rest.split_at_checked(name_len)?;
        let (value, rest) = match value_len {
            NULL => (None, rest),
            len => {
                let (value, rest) = rest.split_at_checked(len)?;
                (Some(value), rest)
            }
        };
        self.rest = rest;
        self.remaining -= 1;
        Some(HeaderRef {
            key: std::str::from_utf8(name).ok()?,
            value,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for ConsumedHeaders<'_> {}

impl fmt::Debug for ConsumedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

fn take_len(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<LEN>()?;
    Some((usize::from_ne_bytes(*len), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(body: &Body) -> Vec<(String, Option<Vec<u8>>)> {
        body.headers()
            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
            .collect()
    }

    #[test]
    fn parts_come_back_as_packed() {
        let parts: [(&str, Option<&[u8]>); 3] =
            [("a", Some(b"1")), ("empty", Some(b"")), ("null", None)];
        let body = Body::pack(Some(b"k"), Some(b"value"), parts.into_iter());
        assert_eq!(body.key(), Some(&b"k"[..]));
        assert_eq!(body.value(), Some(&b"value"[..]));
        assert_eq!(body.headers().len(), 3);
        assert_eq!(
            headers(&body),
            [
                ("a".to_owned(), Some(b"1".to_vec())),
                ("empty".to_owned(), Some(Vec::new())),
                ("null".to_owned(), None),
            ]
        );
        assert_eq!(body.len(), 1 + 5 + 3 * 2 * LEN + 1 + 1 + 5 + 4);
    }

    #[test]
    fn absent_and_empty_parts_differ() {
        let none = std::iter::empty::<(&str, Option<&[u8]>)>;
        let absent = Body::pack(None, None, none());
        let empty = Body::pack(Some(b""), Some(b""), none());
        assert_eq!((absent.key(), absent.value()), (None, None));
        assert_eq!(
            (empty.key(), empty.value()),
            (Some(&b""[..]), Some(&b""[..]))
        );
        assert_ne!(absent, empty);
        assert_eq!(absent.headers().count(), 0);
    }

    #[test]
    fn a_tombstone_with_a_key_keeps_its_headers() {
        let body = Body::pack(Some(b"id"), None, [("h", Some(&b"v"[..]))].into_iter());
        assert_eq!(body.value(), None);
        assert_eq!(headers(&body), [("h".to_owned(), Some(b"v".to_vec()))]);
    }
}
