//! One way for tests to get a cluster: the embedded one by default, or a
//! running broker named by `EKAFKA_TEST_BROKERS`, so the same scenarios run on
//! both.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::ClientConfig;

use super::{cluster_error, EmbeddedCluster, DEFAULT_PARTITIONS};
use crate::error::Error;

/// The environment variable naming an external broker (`host:port[,...]`).
pub const BROKERS_VARIABLE: &str = "EKAFKA_TEST_BROKERS";

/// How long creating a topic on an external broker may take.
const TOPIC_TIMEOUT: Duration = Duration::from_secs(30);

/// A cluster for tests: [`EmbeddedCluster`] unless `EKAFKA_TEST_BROKERS` names
/// a running broker, which is then used instead (topics are created on it
/// through the admin API).
///
/// ```
/// let cluster = ekafka::testing::TestCluster::from_env()?;
/// let topic = ekafka::testing::unique_name("orders");
/// cluster.create_topic(&topic)?;
/// println!("testing on {}", cluster.bootstrap_servers());
/// # Ok::<(), ekafka::Error>(())
/// ```
#[derive(Debug)]
pub enum TestCluster {
    /// librdkafka's in-process cluster, started for this test.
    Embedded(EmbeddedCluster),
    /// A broker someone else runs.
    External {
        /// Its `bootstrap.servers`.
        bootstrap_servers: String,
    },
}

impl TestCluster {
    /// The broker from `EKAFKA_TEST_BROKERS` when set (and not empty), else a
    /// new embedded cluster.
    pub fn from_env() -> Result<Self, Error> {
        match std::env::var(BROKERS_VARIABLE) {
            Ok(brokers) if !brokers.trim().is_empty() => Ok(TestCluster::external(brokers.trim())),
            _ => EmbeddedCluster::start().map(TestCluster::Embedded),
        }
    }

    /// A broker someone else runs, at `bootstrap_servers` (`host:port[,...]`).
    pub fn external(bootstrap_servers: impl Into<String>) -> Self {
        TestCluster::External {
            bootstrap_servers: bootstrap_servers.into(),
        }
    }

    /// The embedded cluster, for tests that inject faults only it can.
    #[must_use]
    pub fn embedded(&self) -> Option<&EmbeddedCluster> {
        match self {
            TestCluster::Embedded(cluster) => Some(cluster),
            TestCluster::External { .. } => None,
        }
    }

    /// The `host:port,...` list to use as `bootstrap.servers`.
    #[must_use]
    pub fn bootstrap_servers(&self) -> &str {
        match self {
            TestCluster::Embedded(cluster) => cluster.bootstrap_servers(),
            TestCluster::External { bootstrap_servers } => bootstrap_servers,
        }
    }

    /// The brokers as a list.
    #[must_use]
    pub fn brokers(&self) -> Vec<String> {
        self.bootstrap_servers()
            .split(',')
            .map(|b| b.trim().to_string())
            .collect()
    }

    /// The whole TOML line `brokers = ["host:port", ...]`, to put in a
    /// config's `[kafka]` table.
    #[must_use]
    pub fn brokers_line(&self) -> String {
        super::brokers_line(&self.brokers())
    }

    /// Creates a topic with 3 partitions and waits until the broker reports it.
    pub fn create_topic(&self, name: &str) -> Result<(), Error> {
        self.create_topic_with_partitions(name, DEFAULT_PARTITIONS)
    }

    /// Creates a topic with `partitions` partitions (replicated on up to 3
    /// brokers) and waits until the broker reports it.
    pub fn create_topic_with_partitions(&self, name: &str, partitions: i32) -> Result<(), Error> {
        match self {
            TestCluster::Embedded(cluster) => cluster.create_topic_with(name, partitions, 3),
            TestCluster::External { bootstrap_servers } => {
                create_external_topic(bootstrap_servers, name, partitions)
            }
        }
    }
}

/// CreateTopics through the admin API, then metadata until all partitions show.
fn create_external_topic(
    bootstrap_servers: &str,
    name: &str,
    partitions: i32,
) -> Result<(), Error> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap_servers);
    let admin: AdminClient<DefaultClientContext> = config
        .create()
        .map_err(|e| cluster_error(format!("admin client for {bootstrap_servers}: {e}")))?;
    // -1: the broker's `default.replication.factor` (3 on a 3-broker cluster).
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(-1));
    let options = AdminOptions::new().operation_timeout(Some(TOPIC_TIMEOUT));
    // The admin API is async; this call is not, and may run inside a runtime.
    let created = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .map_err(|e| cluster_error(e.to_string()))?
                    .block_on(admin.create_topics([&topic], &options))
                    .map_err(|e| cluster_error(format!("create topic {name:?}: {e}")))
            })
            .join()
            .map_err(|_| cluster_error("the topic creation thread panicked"))?
    })?;
    for result in created {
        if let Err((topic, code)) = result {
            return Err(cluster_error(format!("create topic {topic:?}: {code}")));
        }
    }
    let probe: BaseConsumer = config
        .create()
        .map_err(|e| cluster_error(format!("metadata client: {e}")))?;
    let deadline = Instant::now() + TOPIC_TIMEOUT;
    loop {
        let visible = probe
            .fetch_metadata(Some(name), Duration::from_secs(5))
            .ok()
            .and_then(|m| m.topics().first().map(|t| t.partitions().len()))
            .unwrap_or(0);
        if visible == partitions as usize {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(cluster_error(format!(
                "topic {name:?} not visible with {partitions} partitions after {TOPIC_TIMEOUT:?}"
            )));
        }
        // Polling the broker's metadata: there is no event to wait on.
        std::thread::sleep(Duration::from_millis(100));
    }
}
