//! Putting one message on librdkafka's queue.
//!
//! rust-rdkafka's `BaseProducer::send` builds a `CString` of the topic name
//! for every message, which librdkafka then looks up in its topic table, and
//! a `CString` for every header name. Here a producer keeps a handle per
//! topic, and headers are added with their lengths, so enqueueing a message
//! allocates nothing of ours: librdkafka's own copy of it is all.

use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::ptr::NonNull;

use rdkafka::bindings as ffi;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::IntoOpaque;

use super::tracker::DeliveryTag;
use crate::config::topic_name_problem;
use crate::record::Message;

/// librdkafka's `RD_KAFKA_PARTITION_UA`: let the partitioner choose.
const UNASSIGNED_PARTITION: i32 = -1;

/// A librdkafka topic handle, released when dropped. Must be dropped before
/// the client it belongs to.
pub(crate) struct TopicHandle(NonNull<ffi::rd_kafka_topic_t>);

// SAFETY: librdkafka's topic handles may be used and released from any thread.
unsafe impl Send for TopicHandle {}

impl Drop for TopicHandle {
    fn drop(&mut self) {
        // SAFETY: the handle is ours (from `rd_kafka_topic_new`) and live.
        unsafe { ffi::rd_kafka_topic_destroy(self.0.as_ptr()) }
    }
}

/// A producer's topic handles, by name, created on first use.
#[derive(Default)]
pub(crate) struct Topics(HashMap<Box<str>, TopicHandle>);

impl Topics {
    /// The handle of `name` on `client`; `Err` says why the name was refused:
    /// by Kafka's naming rules, checked here once per name so that a name the
    /// broker would refuse fails at once and says what is wrong with it, or
    /// by librdkafka.
    ///
    /// # Safety
    /// `client` must be the live producer these handles belong to.
    pub(crate) unsafe fn handle(
        &mut self,
        client: *mut ffi::rd_kafka_t,
        name: &str,
    ) -> Result<*mut ffi::rd_kafka_topic_t, (RDKafkaErrorCode, String)> {
        if let Some(handle) = self.0.get(name) {
            return Ok(handle.0.as_ptr());
        }
        if let Some(problem) = topic_name_problem(name) {
            return Err((
                RDKafkaErrorCode::InvalidTopic,
                format!(
                    "refused by this producer before sending: {name:?} is not a valid topic \
                     name ({problem})"
                ),
            ));
        }
        let c_name = CString::new(name).map_err(|_| {
            let reason = format!("the topic name {name:?} contains a NUL byte");
            (RDKafkaErrorCode::InvalidTopic, reason)
        })?;
        // SAFETY: `client` is live per the contract; a null configuration
        // takes the producer's default topic configuration.
        let raw = unsafe { ffi::rd_kafka_topic_new(client, c_name.as_ptr(), std::ptr::null_mut()) };
        let Some(handle) = NonNull::new(raw) else {
            // SAFETY: reads this thread's last librdkafka error.
            let code: RDKafkaErrorCode = unsafe { ffi::rd_kafka_last_error() }.into();
            return Err((
                RDKafkaErrorCode::InvalidArgument,
                format!("librdkafka refused the topic name {name:?}: {code}"),
            ));
        };
        let pointer = handle.as_ptr();
        self.0.insert(name.into(), TopicHandle(handle));
        Ok(pointer)
    }
}

/// Enqueues `message` on `topic`, to report its delivery with `tag`.
/// librdkafka copies the key and value; the message stays with the caller.
///
/// # Safety
/// `client` must be the live producer, and `topic` a live handle of it.
pub(crate) unsafe fn produce(
    client: *mut ffi::rd_kafka_t,
    topic: *mut ffi::rd_kafka_topic_t,
    message: &Message,
    tag: DeliveryTag,
) -> Result<(), RDKafkaErrorCode> {
    let headers = native_headers(message);
    let opaque = tag.into_ptr();
    let parts = [
        part(ffi::rd_kafka_vtype_t::RD_KAFKA_VTYPE_RKT, |u| u.rkt = topic),
        part(ffi::rd_kafka_vtype_t::RD_KAFKA_VTYPE_PARTITION, |u| {
            u.i32_ = message.partition.unwrap_or(UNASSIGNED_PARTITION)
        }),
        part(ffi::rd_kafka_vtype_t::RD_KAFKA_VTYPE_MSGFLAGS, |u| {
            u.i = ffi::RD_KAFKA_MSG_F_COPY
        }),
        part(ffi::rd_kafka_vtype_t::RD_KAFKA_VTYPE_VALUE, |u| {
            u.mem = memory(message.value.as_deref())
        }),
        part(ffi::rd_kafka_vtype_t::RD_KAFKA_VTYPE_KEY, |u| {
            u.mem = memory(message.key.as_deref())
        }),
        part(ffi::rd_kafka_vtype_t::RD_KAFKA_VTYPE_OPAQUE, |u| {
            u.ptr = opaque
        }),
        part(ffi::rd_kafka_vtype_t::RD_KAFKA_VTYPE_TIMESTAMP, |u| {
            u.i64_ = message.timestamp.unwrap_or(0)
        }),
        part(ffi::rd_kafka_vtype_t::RD_KAFKA_VTYPE_HEADERS, |u| {
            u.headers = headers
        }),
    ];
    // SAFETY: `client` and `topic` are live per the contract; the parts point
    // to data that outlives the call (librdkafka copies it). A null header
    // list means none.
    let error = unsafe { ffi::rd_kafka_produceva(client, parts.as_ptr(), parts.len()) };
    if error.is_null() {
        // librdkafka owns the headers and the tag's reference now.
        return Ok(());
    }
    // SAFETY: `error` is ours to read and destroy; on failure the headers
    // stay ours and the tag's reference comes back.
    unsafe {
        // A fatal error comes with its original code; the caller tells it
        // by `Fatal`, as `rd_kafka_producev` reports it.
        let code = if ffi::rd_kafka_error_is_fatal(error) != 0 {
            RDKafkaErrorCode::Fatal
        } else {
            ffi::rd_kafka_error_code(error).into()
        };
        ffi::rd_kafka_error_destroy(error);
        if !headers.is_null() {
            ffi::rd_kafka_headers_destroy(headers);
        }
        drop(DeliveryTag::from_ptr(opaque));
        Err(code)
    }
}

fn part(
    kind: ffi::rd_kafka_vtype_t,
    set: impl FnOnce(&mut ffi::rd_kafka_vu_s__bindgen_ty_1),
) -> ffi::rd_kafka_vu_t {
    let mut value = ffi::rd_kafka_vu_s__bindgen_ty_1 { _pad: [0; 64] };
    set(&mut value);
    ffi::rd_kafka_vu_t {
        vtype: kind,
        u: value,
    }
}

fn memory(bytes: Option<&[u8]>) -> ffi::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_1 {
    match bytes {
        Some(bytes) => ffi::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_1 {
            ptr: bytes.as_ptr().cast_mut().cast::<c_void>(),
            size: bytes.len(),
        },
        None => ffi::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_1 {
            ptr: std::ptr::null_mut(),
            size: 0,
        },
    }
}

/// The message's headers as a librdkafka list (null when it has none), names
/// passed with their lengths rather than copied into `CString`s.
fn native_headers(message: &Message) -> *mut ffi::rd_kafka_headers_t {
    if message.headers.is_empty() {
        return std::ptr::null_mut();
    }
    // SAFETY: a new list, filled from data that outlives the calls (copied
    // by librdkafka); lengths fit `isize` as Rust allocations do.
    unsafe {
        let list = ffi::rd_kafka_headers_new(message.headers.len());
        for header in &message.headers {
            let (value, size) = match &header.value {
                Some(value) => (value.as_ptr().cast::<c_void>(), value.len() as isize),
                None => (std::ptr::null(), 0),
            };
            // Adding to a new list fails only when it is read-only, which a
            // list is only once librdkafka owns it.
            ffi::rd_kafka_header_add(
                list,
                header.key.as_ptr().cast(),
                header.key.len() as isize,
                value,
                size,
            );
        }
        list
    }
}
