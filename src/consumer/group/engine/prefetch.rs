//! How much librdkafka has prefetched for one partition: the length of the
//! partition's own queue, which rust-rdkafka's `PartitionQueue` does not tell.

use std::ffi::CString;
use std::ptr::NonNull;

use rdkafka::bindings as ffi;
use rdkafka::consumer::{BaseConsumer, Consumer as _};

use super::GroupContext;

/// A second handle on a partition's queue, used only to read its length.
pub(super) struct QueueGauge(NonNull<ffi::rd_kafka_queue_t>);

// SAFETY: librdkafka queues are thread-safe; the handle lives in the
// partition's state, which is dropped before the consumer (see `engine::run`).
unsafe impl Send for QueueGauge {}
unsafe impl Sync for QueueGauge {}

impl QueueGauge {
    pub(super) fn new(
        consumer: &BaseConsumer<GroupContext>,
        topic: &str,
        partition: i32,
    ) -> Option<Self> {
        let topic = CString::new(topic).ok()?;
        // SAFETY: the client is alive for the call; the handle is released in Drop.
        let queue = unsafe {
            ffi::rd_kafka_queue_get_partition(
                consumer.client().native_ptr(),
                topic.as_ptr(),
                partition,
            )
        };
        NonNull::new(queue).map(QueueGauge)
    }

    /// Messages (and other events) waiting in the queue.
    pub(super) fn len(&self) -> usize {
        // SAFETY: the handle is alive.
        unsafe { ffi::rd_kafka_queue_length(self.0.as_ptr()) }
    }
}

impl Drop for QueueGauge {
    fn drop(&mut self) {
        // SAFETY: obtained from rd_kafka_queue_get_partition, released once.
        unsafe { ffi::rd_kafka_queue_destroy(self.0.as_ptr()) };
    }
}
