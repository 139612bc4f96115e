//! Test support: an embedded Kafka cluster and unique names, so your handlers can
//! be tested without Docker or a broker install; [`TestCluster`] runs the same
//! tests against a real broker when `EKAFKA_TEST_BROKERS` names one.
//!
//! The cluster is librdkafka's in-process mock cluster: real TCP listeners on
//! 127.0.0.1 speaking the Kafka protocol (produce, fetch, offsets, consumer groups,
//! idempotence, transactions), but no SASL or TLS.

use std::ffi::{CStr, CString};
use std::time::Duration;

use rdkafka::bindings as ffi;
use rdkafka::config::FromClientConfig;
use rdkafka::producer::{BaseProducer, Producer as _};

use crate::error::Error;

mod cluster;
mod faults;

pub use cluster::{TestCluster, BROKERS_VARIABLE};
pub use faults::KafkaRequest;

/// Partitions of topics made with [`EmbeddedCluster::create_topic`].
pub const DEFAULT_PARTITIONS: i32 = 3;

/// An in-process Kafka cluster, listening on 127.0.0.1, gone when dropped.
///
/// ```
/// let cluster = ekafka::testing::EmbeddedCluster::start()?;
/// let topic = ekafka::testing::unique_name("orders");
/// cluster.create_topic(&topic)?;
/// assert_eq!(cluster.brokers().len(), 3);
/// # Ok::<(), ekafka::Error>(())
/// ```
pub struct EmbeddedCluster {
    mock: *mut ffi::rd_kafka_mock_cluster_t,
    bootstrap_servers: String,
    // The mock cluster lives on this client's handle; it must outlive `mock`.
    _host: BaseProducer,
}

impl std::fmt::Debug for EmbeddedCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedCluster")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .finish_non_exhaustive()
    }
}

// SAFETY: every rd_kafka_mock_* call posts an operation to the mock cluster's own
// thread and waits for it, so the handle may be used from any thread.
unsafe impl Send for EmbeddedCluster {}
unsafe impl Sync for EmbeddedCluster {}

fn cluster_error(reason: impl Into<String>) -> Error {
    Error::TestCluster {
        reason: reason.into(),
    }
}

fn check(code: ffi::rd_kafka_resp_err_t, what: &str) -> Result<(), Error> {
    if code == ffi::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        Ok(())
    } else {
        // SAFETY: rd_kafka_err2str returns a static string for any code.
        let text = unsafe { CStr::from_ptr(ffi::rd_kafka_err2str(code)) };
        Err(cluster_error(format!("{what}: {}", text.to_string_lossy())))
    }
}

impl EmbeddedCluster {
    /// Starts a cluster of 3 brokers.
    pub fn start() -> Result<Self, Error> {
        Self::with_brokers(3)
    }

    /// Starts a cluster of `brokers` brokers (ids 1..=brokers).
    pub fn with_brokers(brokers: i32) -> Result<Self, Error> {
        if brokers < 1 {
            return Err(cluster_error(format!(
                "a cluster needs at least one broker, not {brokers}"
            )));
        }
        let mut config = rdkafka::ClientConfig::new();
        // The host client never connects anywhere; keep it quiet.
        config.set("log_level", "3");
        let host = BaseProducer::from_config(&config)
            .map_err(|e| cluster_error(format!("cannot create the host client: {e}")))?;
        // SAFETY: the handle is valid for as long as `host` lives, which is as long
        // as the returned cluster (destroyed first, in Drop).
        let mock = unsafe { ffi::rd_kafka_mock_cluster_new(host.client().native_ptr(), brokers) };
        if mock.is_null() {
            return Err(cluster_error("librdkafka could not start the mock cluster"));
        }
        // SAFETY: `mock` is live; the string is owned by the cluster and copied here.
        let bootstrap_servers =
            unsafe { CStr::from_ptr(ffi::rd_kafka_mock_cluster_bootstraps(mock)) }
                .to_string_lossy()
                .into_owned();
        let cluster = EmbeddedCluster {
            mock,
            bootstrap_servers,
            _host: host,
        };
        // A real broker waits 3s for more members before the first group assignment;
        // tests want groups to form quickly.
        cluster.set_group_initial_rebalance_delay(Duration::from_millis(100))?;
        Ok(cluster)
    }

    /// The `host:port,host:port,...` list to use as `bootstrap.servers`.
    #[must_use]
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The brokers as a list, for [`EkafkaBuilder::with_brokers`](crate::EkafkaBuilder::with_brokers)
    /// or a TOML `brokers = [...]`.
    pub fn brokers(&self) -> Vec<String> {
        self.bootstrap_servers
            .split(',')
            .map(str::to_string)
            .collect()
    }

    /// The whole TOML line `brokers = ["127.0.0.1:...", ...]`, to put in a
    /// config's `[kafka]` table.
    ///
    /// ```
    /// let cluster = ekafka::testing::EmbeddedCluster::start()?;
    /// let config = format!("[kafka]\n{}\n", cluster.brokers_line());
    /// assert!(config.starts_with("[kafka]\nbrokers = [\"127.0.0.1:"));
    /// # Ok::<(), ekafka::Error>(())
    /// ```
    #[must_use]
    pub fn brokers_line(&self) -> String {
        brokers_line(&self.brokers())
    }

    /// Creates a topic with 3 partitions, each replicated on every broker (up to 3).
    pub fn create_topic(&self, name: &str) -> Result<(), Error> {
        self.create_topic_with(name, DEFAULT_PARTITIONS, 3)
    }

    /// Creates a topic with the given partitions and replication factor (at most
    /// the number of brokers).
    pub fn create_topic_with(
        &self,
        name: &str,
        partitions: i32,
        replication: i32,
    ) -> Result<(), Error> {
        let topic = CString::new(name)
            .map_err(|_| cluster_error(format!("topic name {name:?} contains a NUL byte")))?;
        // SAFETY: `mock` is live and the name is a valid C string for the call.
        let code = unsafe {
            ffi::rd_kafka_mock_topic_create(self.mock, topic.as_ptr(), partitions, replication)
        };
        check(code, &format!("create topic {name:?}"))
    }

    /// Takes broker `id` down: its connections close and it accepts no new ones.
    pub fn broker_down(&self, id: i32) -> Result<(), Error> {
        // SAFETY: `mock` is live.
        check(
            unsafe { ffi::rd_kafka_mock_broker_set_down(self.mock, id) },
            &format!("broker {id} down"),
        )
    }

    /// Brings broker `id` back up.
    pub fn broker_up(&self, id: i32) -> Result<(), Error> {
        // SAFETY: `mock` is live.
        check(
            unsafe { ffi::rd_kafka_mock_broker_set_up(self.mock, id) },
            &format!("broker {id} up"),
        )
    }

    /// How long a new group waits for more members before its first assignment
    /// (100ms here; 3s on a real broker).
    pub fn set_group_initial_rebalance_delay(&self, delay: Duration) -> Result<(), Error> {
        let millis = i32::try_from(delay.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `mock` is live.
        unsafe { ffi::rd_kafka_mock_group_initial_rebalance_delay_ms(self.mock, millis) };
        Ok(())
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        // SAFETY: `mock` was created by rd_kafka_mock_cluster_new and not yet freed;
        // the host client is dropped after this.
        unsafe { ffi::rd_kafka_mock_cluster_destroy(self.mock) };
    }
}

/// A name no other test run uses: `prefix` plus a random suffix.
///
/// ```
/// let a = ekafka::testing::unique_name("topic");
/// let b = ekafka::testing::unique_name("topic");
/// assert!(a.starts_with("topic-") && a != b);
/// ```
#[must_use]
pub fn unique_name(prefix: &str) -> String {
    crate::unique::unique_name(prefix)
}

/// `brokers = ["a:1", "b:2"]` for these addresses.
fn brokers_line(brokers: &[String]) -> String {
    let quoted: Vec<String> = brokers.iter().map(|b| format!("{b:?}")).collect();
    format!("brokers = [{}]", quoted.join(", "))
}
