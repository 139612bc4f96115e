//! Fault injection for tests: make librdkafka fail a client as a real
//! unrecoverable error would.

/// Makes librdkafka raise a fatal error in the client `handle`, as a real
/// unrecoverable failure would, so tests can watch ekafka replace the client.
pub(crate) fn inject_fatal_error(
    handle: *mut rdkafka::bindings::rd_kafka_t,
    code: rdkafka::bindings::rd_kafka_resp_err_t,
    reason: &str,
) -> Result<(), String> {
    let reason =
        std::ffi::CString::new(reason).map_err(|_| "reason contains a NUL byte".to_string())?;
    // SAFETY: callers pass the handle of a client they keep alive for the call;
    // librdkafka copies the reason.
    let result =
        unsafe { rdkafka::bindings::rd_kafka_test_fatal_error(handle, code, reason.as_ptr()) };
    if result == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        Ok(())
    } else {
        Err(format!(
            "librdkafka refused to raise the fatal error: {result:?}"
        ))
    }
}
