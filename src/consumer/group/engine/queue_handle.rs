//! An owned handle on a librdkafka queue, optionally waking the engine when
//! something arrives in it while empty: what the split partition queues, the
//! commit queue and the consumer-queue gauge share.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::Arc;

use rdkafka::bindings as ffi;

use super::wake::Waker;

/// A librdkafka queue handle, released on drop. Must be dropped before the
/// client it belongs to (the engine lets its queues go before the consumer,
/// see `engine::run`).
pub(super) struct QueueHandle {
    queue: NonNull<ffi::rd_kafka_queue_t>,
    /// Woken by librdkafka's non-empty callback; kept alive here while
    /// librdkafka holds a pointer to it (until Drop removes the callback).
    waker: Option<Arc<Waker>>,
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
    pub(super) fn wake_on_arrival(&mut self, waker: Arc<Waker>) {
        // SAFETY: the queue is alive; the waker is kept in `self` until Drop
        // removes the callback; the callback only wakes, which is thread-safe
        // and does not block, as librdkafka's threads require.
        unsafe {
            ffi::rd_kafka_queue_cb_event_enable(
                self.queue.as_ptr(),
                Some(wake_from_librdkafka),
                Arc::as_ptr(&waker) as *mut c_void,
            )
        };
        self.waker = Some(waker);
    }

    pub(super) fn as_ptr(&self) -> *mut ffi::rd_kafka_queue_t {
        self.queue.as_ptr()
    }

    /// Messages (and other events) waiting in the queue.
    pub(super) fn len(&self) -> usize {
        // SAFETY: the queue is alive.
        unsafe { ffi::rd_kafka_queue_length(self.queue.as_ptr()) }
    }
}

/// librdkafka's non-empty callback: the opaque pointer is the waker.
unsafe extern "C" fn wake_from_librdkafka(_client: *mut ffi::rd_kafka_t, waker: *mut c_void) {
    // SAFETY: registered by `wake_on_arrival`, whose handle keeps the waker
    // alive until the registration is removed.
    let waker = unsafe { &*(waker as *const Waker) };
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
