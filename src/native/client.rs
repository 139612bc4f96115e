//! Single calls on a live client that rust-rdkafka does not wrap. Each takes
//! the client by reference, so it is alive for the call.

use std::ffi::CString;

use rdkafka::bindings as ffi;
use rdkafka::client::{Client, ClientContext};

use super::queue::QueueHandle;

/// librdkafka's cached low and high watermarks of a partition, from its
/// latest fetch response (no request; rust-rdkafka wraps only the fetching
/// variant). `None` before any fetch response came.
pub(crate) fn cached_watermarks<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    partition: i32,
) -> Option<(i64, i64)> {
    let topic = CString::new(topic).ok()?;
    let (mut low, mut high) = (-1_i64, -1_i64);
    // SAFETY: the client is alive for the call (borrowed); librdkafka reads
    // the name and writes the two offsets, nothing else.
    let code = unsafe {
        ffi::rd_kafka_get_watermark_offsets(
            client.native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (code == ffi::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some((low, high))
}

/// The group generation, read from librdkafka's group metadata; -1 when the
/// consumer has none.
pub(crate) fn group_generation<C: ClientContext>(client: &Client<C>) -> i32 {
    // SAFETY: the handle is live for the call; the metadata copy is freed here.
    unsafe {
        let metadata = ffi::rd_kafka_consumer_group_metadata(client.native_ptr());
        if metadata.is_null() {
            return -1;
        }
        let generation = ffi::rd_kafka_consumer_group_metadata_generation_id(metadata);
        ffi::rd_kafka_consumer_group_metadata_destroy(metadata);
        generation
    }
}

/// A handle on the client's main queue (a producer's delivery reports and
/// events). Like every `QueueHandle`, it must be dropped before the client.
pub(crate) fn main_queue<C: ClientContext>(client: &Client<C>) -> Option<QueueHandle> {
    // SAFETY: a new reference on the live client's main queue, released by
    // the handle.
    unsafe { QueueHandle::from_raw(ffi::rd_kafka_queue_get_main(client.native_ptr())) }
}

#[cfg(feature = "testing")]
/// Makes librdkafka raise a fatal error in `client`, as a real unrecoverable
/// failure would, so tests can watch ekafka replace the client.
pub(crate) fn inject_fatal_error<C: ClientContext>(
    client: &Client<C>,
    code: ffi::rd_kafka_resp_err_t,
    reason: &str,
) -> Result<(), String> {
    let reason = CString::new(reason).map_err(|_| "reason contains a NUL byte".to_string())?;
    // SAFETY: the client is alive for the call; librdkafka copies the reason.
    let result =
        unsafe { ffi::rd_kafka_test_fatal_error(client.native_ptr(), code, reason.as_ptr()) };
    if result == ffi::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        Ok(())
    } else {
        Err(format!(
            "librdkafka refused to raise the fatal error: {result:?}"
        ))
    }
}
