//! Reading a consumed librdkafka message in place: its partition, offset,
//! timestamp, key, value and headers, borrowed for as long as the message
//! lives, for the record module to copy into an owned message.

use std::borrow::Cow;

use rdkafka::bindings as ffi;
use rdkafka::message::BorrowedMessage;

/// A live librdkafka message without an error, read in place.
#[derive(Clone, Copy)]
pub(crate) struct RawMessage<'a> {
    message: &'a ffi::rd_kafka_message_t,
}

impl<'a> RawMessage<'a> {
    /// The message rust-rdkafka handed out, alive while it is borrowed.
    pub(crate) fn of(message: &'a BorrowedMessage<'_>) -> Self {
        // SAFETY: a borrowed message points to a live librdkafka message
        // for as long as it is borrowed.
        RawMessage {
            message: unsafe { &*message.ptr() },
        }
    }

    /// # Safety
    /// `message` must point to a live librdkafka message without an error
    /// that outlives `'a`.
    pub(super) unsafe fn from_ptr(message: *const ffi::rd_kafka_message_t) -> Self {
        // SAFETY: per the contract.
        RawMessage {
            message: unsafe { &*message },
        }
    }

    pub(crate) fn partition(&self) -> i32 {
        self.message.partition
    }

    pub(crate) fn offset(&self) -> i64 {
        self.message.offset
    }

    /// When it was written (or appended), when the broker says.
    pub(crate) fn timestamp(&self) -> Option<i64> {
        let mut kind = ffi::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        // SAFETY: the message is alive for `'a`; librdkafka writes `kind`.
        let timestamp = unsafe { ffi::rd_kafka_message_timestamp(self.message, &mut kind) };
        (kind != ffi::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && timestamp >= 0)
            .then_some(timestamp)
    }

    pub(crate) fn key(&self) -> Option<&'a [u8]> {
        // SAFETY: the key is `key_len` bytes that live as long as the message.
        unsafe { native_bytes(self.message.key, self.message.key_len) }
    }

    pub(crate) fn value(&self) -> Option<&'a [u8]> {
        // SAFETY: the payload is `len` bytes that live as long as the message.
        unsafe { native_bytes(self.message.payload, self.message.len) }
    }

    /// Its headers, in order.
    pub(crate) fn headers(&self) -> NativeHeaders<'a> {
        // SAFETY: the message is alive for `'a`, as long as the iterator.
        unsafe { NativeHeaders::of(self.message) }
    }
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
    unsafe fn of(message: *const ffi::rd_kafka_message_t) -> Self {
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
unsafe fn native_bytes<'a>(data: *const std::ffi::c_void, size: usize) -> Option<&'a [u8]> {
    if data.is_null() {
        None
    } else {
        // SAFETY: per the contract.
        Some(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size) })
    }
}
