//! An owned handle on a librdkafka queue, optionally waking whoever serves it
//! when something arrives in it while empty: what the group engine's split
//! partition queues, commit queue and consumer-queue gauge, and the producer's
//! event queue share.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::Arc;

use rdkafka::bindings as ffi;

/// Told by librdkafka that a queue it watches is no longer empty.
///
/// `wake` runs on librdkafka's threads with the queue locked: it must only hand
/// the news over (set a flag, unpark a thread, notify a task), never block or
/// call librdkafka.
pub(crate) trait Wake: Send + Sync + 'static {
    fn wake(&self);
}

/// A librdkafka queue handle, released on drop. Must be dropped before the
/// client it belongs to (the group engine lets its queues go before the
/// consumer, see `engine::run`; the producer's client declares its queue
/// first).
pub(crate) struct QueueHandle {
    queue: NonNull<ffi::rd_kafka_queue_t>,
    /// Woken by librdkafka's non-empty callback; kept alive here while
    /// librdkafka holds a pointer to it (until Drop removes the callback).
    waker: Option<Arc<dyn Wake>>,
}

// SAFETY: librdkafka queues are thread-safe; see the struct's drop-order rule.
unsafe impl Send for QueueHandle {}
unsafe impl Sync for QueueHandle {}

impl QueueHandle {
    /// Takes ownership of `queue`, a handle librdkafka returned (or null).
    ///
    /// # Safety
    /// `queue` must be null or a handle not released elsewhere.
    pub(super) unsafe fn from_raw(queue: *mut ffi::rd_kafka_queue_t) -> Option<Self> {
        NonNull::new(queue).map(|queue| QueueHandle { queue, waker: None })
    }

    /// Makes librdkafka wake `waker` whenever an element arrives in the queue
    /// while it is empty.
    pub(crate) fn wake_on_arrival<W: Wake>(&mut self, waker: Arc<W>) {
        // SAFETY: the queue is alive; the waker is kept in `self` until Drop
        // removes the callback; the callback only wakes, which is thread-safe
        // and does not block, as librdkafka's threads require.
        unsafe {
            ffi::rd_kafka_queue_cb_event_enable(
                self.queue.as_ptr(),
                Some(wake_from_librdkafka::<W>),
                Arc::as_ptr(&waker) as *mut c_void,
            )
        };
        self.waker = Some(waker);
    }

    pub(super) fn as_ptr(&self) -> *mut ffi::rd_kafka_queue_t {
        self.queue.as_ptr()
    }

    /// Messages (and other events) waiting in the queue.
    pub(crate) fn len(&self) -> usize {
        // SAFETY: the queue is alive.
        unsafe { ffi::rd_kafka_queue_length(self.queue.as_ptr()) }
    }
}

/// librdkafka's non-empty callback: the opaque pointer is the waker.
unsafe extern "C" fn wake_from_librdkafka<W: Wake>(
    _client: *mut ffi::rd_kafka_t,
    waker: *mut c_void,
) {
    // SAFETY: registered by `wake_on_arrival` with a `W`, whose handle keeps
    // the waker alive until the registration is removed.
    let waker = unsafe { &*(waker as *const W) };
    waker.wake();
}

impl Drop for QueueHandle {
    fn drop(&mut self) {
        // SAFETY: the handle is ours and released once, while its client is
        // alive; the callback goes first, so librdkafka never calls it with a
        // waker this handle no longer keeps alive.
        unsafe {
            if self.waker.is_some() {
                ffi::rd_kafka_queue_cb_event_enable(
                    self.queue.as_ptr(),
                    None,
                    std::ptr::null_mut(),
                );
            }
            ffi::rd_kafka_queue_destroy(self.queue.as_ptr());
        }
    }
}
