//! A partition's own queue in librdkafka, split off from the consumer's queue:
//! read in batches, measured (how much librdkafka prefetched for the
//! partition), and waking the engine when messages arrive in it while empty.
//!
//! Ours rather than rust-rdkafka's `PartitionQueue`, which reads one message
//! per call (a lock and two clock readings each) and cannot tell the length.

use std::ffi::CString;
use std::sync::Arc;

use rdkafka::bindings as ffi;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::types::RDKafkaErrorCode;

use super::message::RawMessage;
use super::queue::{QueueHandle, Wake};

/// Messages taken from librdkafka per call.
const READ_BATCH: usize = 64;

/// What one [`SplitQueue::read`] did.
pub(crate) struct Read {
    /// Messages handed over.
    pub(crate) messages: usize,
    /// Whether it took everything the queue held: the next message to arrive
    /// wakes the engine.
    pub(crate) emptied: bool,
}

/// One partition's queue, no longer forwarded to the consumer's.
pub(crate) struct SplitQueue(QueueHandle);

impl SplitQueue {
    /// Splits `topic`/`partition` off the consumer's queue; messages arriving
    /// in it while it is empty wake `waker`.
    pub(crate) fn split<C: ConsumerContext>(
        consumer: &BaseConsumer<C>,
        topic: &str,
        partition: i32,
        waker: Arc<impl Wake>,
    ) -> Option<Self> {
        let topic = CString::new(topic).ok()?;
        // SAFETY: the client is alive for the call; the handle returned is ours.
        let mut queue = unsafe {
            QueueHandle::from_raw(ffi::rd_kafka_queue_get_partition(
                consumer.client().native_ptr(),
                topic.as_ptr(),
                partition,
            ))
        }?;
        // SAFETY: the queue is alive.
        unsafe { ffi::rd_kafka_queue_forward(queue.as_ptr(), std::ptr::null_mut()) };
        queue.wake_on_arrival(waker);
        Some(SplitQueue(queue))
    }

    /// Messages (and other events) waiting in the queue.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Takes up to `max` messages without waiting, each handed to `take`
    /// to copy while it lives (a fetch error instead, as librdkafka's error
    /// code).
    pub(crate) fn read(
        &self,
        max: usize,
        mut take: impl FnMut(Result<RawMessage<'_>, RDKafkaErrorCode>),
    ) -> Read {
        let mut batch = [std::ptr::null_mut::<ffi::rd_kafka_message_t>(); READ_BATCH];
        let wanted = max.min(READ_BATCH);
        // SAFETY: the queue is alive; librdkafka fills at most `wanted` slots.
        let got = unsafe {
            ffi::rd_kafka_consume_batch_queue(self.0.as_ptr(), 0, batch.as_mut_ptr(), wanted)
        };
        let got = usize::try_from(got).unwrap_or(0);
        let mut messages = 0;
        for &message in &batch[..got] {
            // SAFETY: librdkafka handed over `got` live messages; each is
            // copied (or its error read) before it is destroyed, once.
            unsafe {
                let code = (*message).err;
                if code == ffi::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    take(Ok(RawMessage::from_ptr(message)));
                    messages += 1;
                } else if code != ffi::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    take(Err(code.into()));
                }
                ffi::rd_kafka_message_destroy(message);
            }
        }
        Read {
            messages,
            emptied: got < wanted,
        }
    }
}

/// A handle on the consumer's own queue (rebalances, errors, logs, messages
/// of partitions not split off), used only to read its length: rust-rdkafka's
/// poll returns nothing both when the queue is empty and when it served an
/// event there itself, and only the first means there is nothing left.
pub(crate) struct ConsumerQueue(QueueHandle);

impl ConsumerQueue {
    pub(crate) fn new<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Option<Self> {
        // SAFETY: the client is alive for the call; the handle returned is ours.
        unsafe {
            QueueHandle::from_raw(ffi::rd_kafka_queue_get_consumer(
                consumer.client().native_ptr(),
            ))
        }
        .map(ConsumerQueue)
    }

    /// Whether events wait in the queue.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.len() == 0
    }
}
