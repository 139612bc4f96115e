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
use std::sync::RwLock;

use rdkafka::bindings as ffi;
use rdkafka::client::{Client, ClientContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::IntoOpaque;

/// librdkafka's `RD_KAFKA_PARTITION_UA`: let the partitioner choose.
const UNASSIGNED_PARTITION: i32 = -1;

/// A librdkafka topic handle, released when dropped. Must be dropped before
/// the client it belongs to.
struct TopicHandle(NonNull<ffi::rd_kafka_topic_t>);

// SAFETY: librdkafka's topic handles may be used and released from any
// thread, and used from several at once.
unsafe impl Send for TopicHandle {}
unsafe impl Sync for TopicHandle {}

impl Drop for TopicHandle {
    fn drop(&mut self) {
        // SAFETY: the handle is ours (from `rd_kafka_topic_new`) and live.
        unsafe { ffi::rd_kafka_topic_destroy(self.0.as_ptr()) }
    }
}

/// A producer's topic handles, by name, created on first use, shared by the
/// threads that write. Like every librdkafka handle, it must be dropped
/// before its client (the producer's client declares it first).
pub(crate) struct Topics {
    client: NonNull<ffi::rd_kafka_t>,
    /// Read by every write, written once per new topic; a handle is never
    /// removed before the whole map is dropped.
    handles: RwLock<HashMap<Box<str>, TopicHandle>>,
}

// SAFETY: librdkafka clients and topic handles may be used from any thread,
// by several at once; the map is behind its lock.
unsafe impl Send for Topics {}
unsafe impl Sync for Topics {}

/// A topic handle of a [`Topics`], alive while it is borrowed.
#[derive(Clone, Copy)]
pub(crate) struct TopicRef<'t> {
    topics: &'t Topics,
    handle: NonNull<ffi::rd_kafka_topic_t>,
}

/// A message as librdkafka takes it: copied when enqueued.
pub(crate) struct Outgoing<'a, H> {
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) timestamp: Option<i64>,
    pub(crate) headers: H,
}

impl Topics {
    /// Handles on `client`'s topics.
    pub(crate) fn new<C: ClientContext>(client: &Client<C>) -> Self {
        Topics {
            client: NonNull::new(client.native_ptr()).expect("a live client"),
            handles: RwLock::default(),
        }
    }

    /// The handle of `name`, created on first use; `Err` says why librdkafka
    /// refused the name. `refuse` is asked once per new name, and its reason
    /// refuses the name before librdkafka sees it.
    pub(crate) fn handle(
        &self,
        name: &str,
        refuse: impl FnOnce() -> Option<String>,
    ) -> Result<TopicRef<'_>, (RDKafkaErrorCode, String)> {
        let known = self.read().get(name).map(|handle| handle.0);
        if let Some(handle) = known {
            return Ok(TopicRef {
                topics: self,
                handle,
            });
        }
        let mut handles = self.handles.write().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = handles.get(name) {
            // Another writer made it meanwhile.
            return Ok(TopicRef {
                topics: self,
                handle: handle.0,
            });
        }
        if let Some(reason) = refuse() {
            return Err((RDKafkaErrorCode::InvalidTopic, reason));
        }
        let c_name = CString::new(name).map_err(|_| {
            let reason = format!("the topic name {name:?} contains a NUL byte");
            (RDKafkaErrorCode::InvalidTopic, reason)
        })?;
        // SAFETY: the client is live (see the struct's drop-order rule); a
        // null configuration takes the producer's default topic configuration.
        let raw = unsafe {
            ffi::rd_kafka_topic_new(self.client.as_ptr(), c_name.as_ptr(), std::ptr::null_mut())
        };
        let Some(handle) = NonNull::new(raw) else {
            // SAFETY: reads this thread's last librdkafka error.
            let code: RDKafkaErrorCode = unsafe { ffi::rd_kafka_last_error() }.into();
            return Err((
                RDKafkaErrorCode::InvalidArgument,
                format!("librdkafka refused the topic name {name:?}: {code}"),
            ));
        };
        // Entries are never removed while `self` is borrowed, so the handle
        // outlives the reference (and the lock).
        handles.insert(name.into(), TopicHandle(handle));
        Ok(TopicRef {
            topics: self,
            handle,
        })
    }
}

impl Topics {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Box<str>, TopicHandle>> {
        self.handles.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl TopicRef<'_> {
    /// Enqueues `message` on the topic, to report its delivery with `tag`.
    /// librdkafka copies the key, value and headers; the message stays with
    /// the caller. On failure the tag comes back (and is dropped) here.
    pub(crate) fn produce<'a, T: IntoOpaque>(
        self,
        message: Outgoing<'a, impl ExactSizeIterator<Item = (&'a str, Option<&'a [u8]>)>>,
        tag: T,
    ) -> Result<(), RDKafkaErrorCode> {
        let headers = native_headers(message.headers);
        let opaque = tag.into_ptr();
        let parts = [
            part(ffi::rd_kafka_vtype_t::RD_KAFKA_VTYPE_RKT, |u| {
                u.rkt = self.handle.as_ptr()
            }),
            part(ffi::rd_kafka_vtype_t::RD_KAFKA_VTYPE_PARTITION, |u| {
                u.i32_ = message.partition.unwrap_or(UNASSIGNED_PARTITION)
            }),
            part(ffi::rd_kafka_vtype_t::RD_KAFKA_VTYPE_MSGFLAGS, |u| {
                u.i = ffi::RD_KAFKA_MSG_F_COPY
            }),
            part(ffi::rd_kafka_vtype_t::RD_KAFKA_VTYPE_VALUE, |u| {
                u.mem = memory(message.value)
            }),
            part(ffi::rd_kafka_vtype_t::RD_KAFKA_VTYPE_KEY, |u| {
                u.mem = memory(message.key)
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
        // SAFETY: the client and the topic handle are live (the handle is
        // borrowed from its `Topics`, which its client outlives); the parts
        // point to data that outlives the call (librdkafka copies it). A null
        // header list means none.
        let error = unsafe {
            ffi::rd_kafka_produceva(self.topics.client.as_ptr(), parts.as_ptr(), parts.len())
        };
        if error.is_null() {
            // librdkafka owns the headers and the tag's reference now.
            return Ok(());
        }
        // SAFETY: `error` is ours to read and destroy; on failure the headers
        // stay ours and the tag comes back.
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
            drop(T::from_ptr(opaque));
            Err(code)
        }
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

/// `headers` as a librdkafka list (null when there are none), names passed
/// with their lengths rather than copied into `CString`s.
fn native_headers<'a>(
    headers: impl ExactSizeIterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> *mut ffi::rd_kafka_headers_t {
    if headers.len() == 0 {
        return std::ptr::null_mut();
    }
    // SAFETY: a new list, filled from data that outlives the calls (copied
    // by librdkafka); lengths fit `isize` as Rust allocations do.
    unsafe {
        let list = ffi::rd_kafka_headers_new(headers.len());
        for (name, value) in headers {
            let (value, size) = match value {
                Some(value) => (value.as_ptr().cast::<c_void>(), value.len() as isize),
                None => (std::ptr::null(), 0),
            };
            // Adding to a new list fails only when it is read-only, which a
            // list is only once librdkafka owns it.
            ffi::rd_kafka_header_add(list, name.as_ptr().cast(), name.len() as isize, value, size);
        }
        list
    }
}
