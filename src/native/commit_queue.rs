//! A queue of its own for commit results, so the engine can commit without
//! waiting and read each result when it comes (or wait for one, with a
//! deadline, inside a rebalance callback, where the consumer's own queue cannot
//! be polled). librdkafka's `rd_kafka_commit_queue`, which rust-rdkafka does
//! not wrap, posts each result there as an offset-commit event.

use std::ffi::{c_void, CStr};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::bindings as ffi;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::TopicPartitionList;

use super::queue::{QueueHandle, Wake};

/// The result of one commit, matched to it by its sequence number.
#[derive(Debug)]
pub(crate) struct CommitResult {
    pub(crate) seq: usize,
    /// Why the commit as a whole failed.
    pub(crate) error: Option<Refused>,
    /// Partitions the broker refused (topic, partition), and why.
    pub(crate) refused: Vec<(String, i32, RDKafkaErrorCode)>,
}

/// librdkafka's or the coordinator's refusal: its code, and what it said.
#[derive(Debug, Clone)]
pub(crate) struct Refused {
    pub(crate) code: RDKafkaErrorCode,
    pub(crate) detail: String,
}

/// A queue of the consumer's own for commit results; dropped before the
/// client it belongs to, like every `QueueHandle`.
pub(crate) struct CommitQueue {
    queue: QueueHandle,
    client: NonNull<ffi::rd_kafka_t>,
}

// SAFETY: librdkafka clients are thread-safe, and the engine drops this queue
// before the consumer (see `engine::run`), so the client outlives it.
unsafe impl Send for CommitQueue {}
unsafe impl Sync for CommitQueue {}

impl CommitQueue {
    /// A queue whose results wake `waker` as they arrive.
    pub(crate) fn new<C: ConsumerContext>(
        consumer: &BaseConsumer<C>,
        waker: Arc<impl Wake>,
    ) -> Option<Self> {
        let client = NonNull::new(consumer.client().native_ptr())?;
        // SAFETY: the client is alive for this call; the queue returned is ours.
        let mut queue = unsafe { QueueHandle::from_raw(ffi::rd_kafka_queue_new(client.as_ptr())) }?;
        queue.wake_on_arrival(waker);
        Some(CommitQueue { queue, client })
    }

    /// Sends a commit of `offsets` whose result will come back as `seq`.
    pub(crate) fn commit(&self, offsets: &TopicPartitionList, seq: usize) -> Result<(), Refused> {
        // SAFETY: client and queue are alive (see the struct); librdkafka copies the
        // list; with no callback, the result is posted to the queue as an event.
        let code = unsafe {
            ffi::rd_kafka_commit_queue(
                self.client.as_ptr(),
                offsets.ptr(),
                self.queue.as_ptr(),
                None,
                seq as *mut c_void,
            )
        };
        if code == ffi::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            Ok(())
        } else {
            let code = RDKafkaErrorCode::from(code);
            Err(Refused {
                code,
                detail: code.to_string(),
            })
        }
    }

    /// The next commit result, waiting at most `timeout` for one.
    pub(crate) fn next_result(&self, timeout: Duration) -> Option<CommitResult> {
        let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: the queue is alive; the event is destroyed below.
        let event = unsafe { ffi::rd_kafka_queue_poll(self.queue.as_ptr(), millis) };
        let event = NonNull::new(event)?;
        // SAFETY: `event` is a valid event until destroyed at the end.
        let result = unsafe { read_commit_event(event.as_ptr()) };
        unsafe { ffi::rd_kafka_event_destroy(event.as_ptr()) };
        result
    }
}

/// Reads an offset-commit event (anything else on this queue is ignored).
///
/// # Safety
/// `event` must be a valid, not yet destroyed librdkafka event.
unsafe fn read_commit_event(event: *mut ffi::rd_kafka_event_t) -> Option<CommitResult> {
    if ffi::rd_kafka_event_type(event) != ffi::RD_KAFKA_EVENT_OFFSET_COMMIT {
        return None;
    }
    let seq = ffi::rd_kafka_event_opaque(event) as usize;
    let code = ffi::rd_kafka_event_error(event);
    let error = (code != ffi::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR).then(|| {
        let text = ffi::rd_kafka_event_error_string(event);
        let code = RDKafkaErrorCode::from(code);
        let detail = if text.is_null() {
            code.to_string()
        } else {
            CStr::from_ptr(text).to_string_lossy().into_owned()
        };
        Refused { code, detail }
    });
    let mut refused = Vec::new();
    let list = ffi::rd_kafka_event_topic_partition_list(event);
    if !list.is_null() && (*list).cnt > 0 && !(*list).elems.is_null() {
        let elems = std::slice::from_raw_parts((*list).elems, (*list).cnt as usize);
        for elem in elems {
            if elem.err == ffi::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                || elem.topic.is_null()
            {
                continue;
            }
            let topic = CStr::from_ptr(elem.topic).to_string_lossy().into_owned();
            refused.push((topic, elem.partition, RDKafkaErrorCode::from(elem.err)));
        }
    }
    Some(CommitResult {
        seq,
        error,
        refused,
    })
}
