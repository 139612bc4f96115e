//! Test support: an embedded Kafka cluster and unique names, so your handlers can
//! be tested without Docker or a broker install; [`TestCluster`] runs the same
//! tests against a real broker when `EKAFKA_TEST_BROKERS` names one.
//!
//! The cluster is librdkafka's in-process mock cluster: real TCP listeners on
//! 127.0.0.1 speaking the Kafka protocol (produce, fetch, offsets, consumer groups,
//! idempotence, transactions), but no SASL or TLS.

use std::time::Duration;

use crate::error::Error;
use crate::native::mock::MockCluster;

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
    mock: MockCluster,
    bootstrap_servers: String,
}

impl std::fmt::Debug for EmbeddedCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedCluster")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .finish_non_exhaustive()
    }
}

fn cluster_error(reason: impl Into<String>) -> Error {
    Error::TestCluster {
        reason: reason.into(),
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
        let mock = MockCluster::start(brokers).map_err(cluster_error)?;
        let cluster = EmbeddedCluster {
            bootstrap_servers: mock.bootstrap_servers(),
            mock,
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
        self.mock
            .create_topic(name, partitions, replication)
            .map_err(cluster_error)
    }

    /// Takes broker `id` down: its connections close and it accepts no new ones.
    pub fn broker_down(&self, id: i32) -> Result<(), Error> {
        self.mock.set_broker_up(id, false).map_err(cluster_error)
    }

    /// Brings broker `id` back up.
    pub fn broker_up(&self, id: i32) -> Result<(), Error> {
        self.mock.set_broker_up(id, true).map_err(cluster_error)
    }

    /// How long a new group waits for more members before its first assignment
    /// (100ms here; 3s on a real broker).
    pub fn set_group_initial_rebalance_delay(&self, delay: Duration) -> Result<(), Error> {
        let millis = i32::try_from(delay.as_millis()).unwrap_or(i32::MAX);
        self.mock.set_group_initial_rebalance_delay(millis);
        Ok(())
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
