//! librdkafka's mock cluster, behind a safe handle: what the `testing`
//! feature's embedded cluster is made of.

use std::ffi::{CStr, CString};

use rdkafka::bindings as ffi;
use rdkafka::config::FromClientConfig;
use rdkafka::producer::{BaseProducer, Producer as _};

/// A running mock cluster, destroyed when dropped.
pub(crate) struct MockCluster {
    mock: *mut ffi::rd_kafka_mock_cluster_t,
    // The mock cluster lives on this client's handle; it must outlive `mock`
    // (Drop destroys the cluster first, then the fields go).
    _host: BaseProducer,
}

// SAFETY: every rd_kafka_mock_* call posts an operation to the mock cluster's own
// thread and waits for it, so the handle may be used from any thread.
unsafe impl Send for MockCluster {}
unsafe impl Sync for MockCluster {}

/// `code` as Ok, or as librdkafka's text for it after `what`.
fn check(code: ffi::rd_kafka_resp_err_t, what: impl FnOnce() -> String) -> Result<(), String> {
    if code == ffi::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        return Ok(());
    }
    // SAFETY: rd_kafka_err2str returns a static string for any code.
    let text = unsafe { CStr::from_ptr(ffi::rd_kafka_err2str(code)) };
    Err(format!("{}: {}", what(), text.to_string_lossy()))
}

fn c_string(what: &str, value: &str) -> Result<CString, String> {
    CString::new(value).map_err(|_| format!("{what} {value:?} contains a NUL byte"))
}

impl MockCluster {
    /// Starts a cluster of `brokers` brokers (ids 1..=brokers).
    pub(crate) fn start(brokers: i32) -> Result<Self, String> {
        let mut config = rdkafka::ClientConfig::new();
        // The host client never connects anywhere; keep it quiet.
        config.set("log_level", "3");
        let host = BaseProducer::from_config(&config)
            .map_err(|e| format!("cannot create the host client: {e}"))?;
        // SAFETY: the handle is valid for as long as `host` lives, which is as
        // long as the returned cluster (destroyed first, in Drop).
        let mock = unsafe { ffi::rd_kafka_mock_cluster_new(host.client().native_ptr(), brokers) };
        if mock.is_null() {
            return Err("librdkafka could not start the mock cluster".into());
        }
        Ok(MockCluster { mock, _host: host })
    }

    /// The `host:port,host:port,...` list of its brokers.
    pub(crate) fn bootstrap_servers(&self) -> String {
        // SAFETY: `mock` is live; the string is owned by the cluster and copied here.
        unsafe { CStr::from_ptr(ffi::rd_kafka_mock_cluster_bootstraps(self.mock)) }
            .to_string_lossy()
            .into_owned()
    }

    pub(crate) fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i32,
    ) -> Result<(), String> {
        let topic = c_string("topic name", name)?;
        // SAFETY: `mock` is live and the name is a valid C string for the call.
        let code = unsafe {
            ffi::rd_kafka_mock_topic_create(self.mock, topic.as_ptr(), partitions, replication)
        };
        check(code, || format!("create topic {name:?}"))
    }

    /// Takes broker `id` down (`up` false) or brings it back.
    pub(crate) fn set_broker_up(&self, id: i32, up: bool) -> Result<(), String> {
        // SAFETY: `mock` is live.
        let code = unsafe {
            if up {
                ffi::rd_kafka_mock_broker_set_up(self.mock, id)
            } else {
                ffi::rd_kafka_mock_broker_set_down(self.mock, id)
            }
        };
        check(code, || {
            format!("broker {id} {}", if up { "up" } else { "down" })
        })
    }

    pub(crate) fn set_group_initial_rebalance_delay(&self, millis: i32) {
        // SAFETY: `mock` is live.
        unsafe { ffi::rd_kafka_mock_group_initial_rebalance_delay_ms(self.mock, millis) };
    }

    /// Makes broker `broker` the coordinator of group `group_id`.
    pub(crate) fn set_group_coordinator(&self, group_id: &str, broker: i32) -> Result<(), String> {
        let (kind, key) = (
            c_string("key type", "group")?,
            c_string("group id", group_id)?,
        );
        // SAFETY: `mock` is live and the strings are valid for the call.
        let code = unsafe {
            ffi::rd_kafka_mock_coordinator_set(self.mock, kind.as_ptr(), key.as_ptr(), broker)
        };
        check(code, || {
            format!("coordinator of group {group_id:?} on broker {broker}")
        })
    }

    /// Makes broker `broker` the leader of `topic`'s partition `partition`.
    pub(crate) fn set_partition_leader(
        &self,
        topic: &str,
        partition: i32,
        broker: i32,
    ) -> Result<(), String> {
        let name = c_string("topic name", topic)?;
        // SAFETY: `mock` is live and the name is valid for the call.
        let code = unsafe {
            ffi::rd_kafka_mock_partition_set_leader(self.mock, name.as_ptr(), partition, broker)
        };
        check(code, || {
            format!("leader of {topic}/{partition} on broker {broker}")
        })
    }

    /// Makes broker `broker` answer its next request of API `api_key` with
    /// broker error `code` (0 for none), after `millis`.
    pub(crate) fn push_answer(
        &self,
        broker: i32,
        api_key: i16,
        code: i32,
        millis: i32,
        what: impl FnOnce() -> String,
    ) -> Result<(), String> {
        // SAFETY: `mock` is live; one (error, round-trip time) pair follows
        // the count of 1, as the variadic signature expects.
        let pushed = unsafe {
            ffi::rd_kafka_mock_broker_push_request_error_rtts(
                self.mock, broker, api_key, 1, code, millis,
            )
        };
        check(pushed, what)
    }
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        // SAFETY: `mock` was created by rd_kafka_mock_cluster_new and not yet
        // freed; the host client is dropped after this.
        unsafe { ffi::rd_kafka_mock_cluster_destroy(self.mock) };
    }
}
