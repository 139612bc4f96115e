//! Apache Kafka clusters for the end-to-end tier, through the one launcher,
//! `.ci/kafka` (jars from Maven Central, KRaft, free loopback ports).
//!
//! `./e2e.sh` starts one secured single-node cluster for the whole run and
//! names its directory in `EKAFKA_TEST_KAFKA`; [`KafkaCluster::secured`] uses
//! it, or starts one of its own when run outside `./e2e.sh`. Tests that kill
//! brokers start a cluster of their own ([`KafkaCluster::start`]), stopped and
//! removed when dropped. Clusters live under `EKAFKA_E2E_DIR` when `./e2e.sh`
//! set it, whose trap then stops whatever a killed test left running.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ekafka::testing::{unique_name, TestCluster};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::ClientConfig;

/// The directory of the cluster `./e2e.sh` runs for the whole tier.
pub(crate) const SHARED_VARIABLE: &str = "EKAFKA_TEST_KAFKA";
/// Where `./e2e.sh` wants clusters of tests to live.
pub(crate) const RUN_DIR_VARIABLE: &str = "EKAFKA_E2E_DIR";

/// A running Apache Kafka cluster, described by the launcher's `cluster.env`.
pub(crate) struct KafkaCluster {
    dir: PathBuf,
    env: HashMap<String, String>,
    /// Whether dropping this stops the cluster (false for the shared one).
    owned: bool,
}

impl KafkaCluster {
    /// Starts `nodes` nodes (each broker and controller): with 3, topics get 3
    /// replicas and `min.insync.replicas = 2`.
    pub(crate) fn start(nodes: usize) -> Self {
        Self::start_with(nodes, &[])
    }

    /// [`start`](Self::start) with the launcher's environment settings
    /// `env` (such as `EKAFKA_KAFKA_CONSUMER_SESSION_MS`).
    pub(crate) fn start_with(nodes: usize, env: &[(&str, &str)]) -> Self {
        Self::launch_with(&["--nodes", &nodes.to_string()], env)
    }

    /// The cluster with SASL, TLS and ACL listeners: `./e2e.sh`'s, or a new one.
    pub(crate) fn secured() -> Self {
        match std::env::var_os(SHARED_VARIABLE) {
            Some(dir) => KafkaCluster {
                env: read_env(Path::new(&dir)),
                dir: dir.into(),
                owned: false,
            },
            None => Self::launch_with(&["--secure"], &[]),
        }
    }

    fn launch_with(options: &[&str], env: &[(&str, &str)]) -> Self {
        let root = std::env::var_os(RUN_DIR_VARIABLE)
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = root.join(unique_name("kafka"));
        let status = launcher()
            .arg("start")
            .arg(&dir)
            .args(options)
            .envs(env.iter().copied())
            .status()
            .expect("the launcher .ci/kafka runs");
        // Whatever it started is stopped when this value drops, even on failure.
        let mut cluster = KafkaCluster {
            env: HashMap::new(),
            dir,
            owned: true,
        };
        assert!(status.success(), "starting Kafka {options:?}: {status}");
        cluster.env = read_env(&cluster.dir);
        cluster
    }

    /// `host:port,...` of the PLAINTEXT listeners.
    pub(crate) fn bootstrap_servers(&self) -> String {
        self.listener("PLAINTEXT")
    }

    /// `host:port,...` of one listener: PLAINTEXT, SASL_PLAINTEXT, SSL or SASL_SSL.
    pub(crate) fn listener(&self, name: &str) -> String {
        self.value(name)
    }

    /// A file the launcher made: `CA`, `CLIENT_CERT` or `CLIENT_KEY`.
    pub(crate) fn file(&self, name: &str) -> String {
        self.value(name)
    }

    /// The password the launcher gave `user` (admin, alice, mallory).
    pub(crate) fn password(&self, user: &str) -> String {
        format!("{user}{}", self.value("PASSWORD_SUFFIX"))
    }

    /// This cluster as a test cluster (topics made through the admin API).
    pub(crate) fn cluster(&self) -> TestCluster {
        TestCluster::external(self.bootstrap_servers())
    }

    /// Kills node `node` (1-based) at once: SIGKILL, nothing flushed.
    pub(crate) fn kill(&self, node: i32) {
        self.run(&["kill", &node.to_string()]);
    }

    /// Starts a killed node again, on its ports and storage, and waits until
    /// it serves.
    pub(crate) fn restart(&self, node: i32) {
        self.restart_nodes(&[node]);
    }

    /// Starts killed nodes again together (a cluster that lost its quorum
    /// serves again only once enough of them run), and waits until each serves.
    pub(crate) fn restart_nodes(&self, nodes: &[i32]) {
        let nodes: Vec<String> = nodes.iter().map(i32::to_string).collect();
        let mut args = vec!["start-node"];
        args.extend(nodes.iter().map(String::as_str));
        self.run(&args);
    }

    /// The node leading `partition` of `topic`, from the cluster's metadata.
    pub(crate) fn leader(&self, topic: &str, partition: i32) -> i32 {
        self.metadata_client()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata")
            .topics()[0]
            .partitions()
            .iter()
            .find(|p| p.id() == partition)
            .expect("the partition exists")
            .leader()
    }

    /// The node coordinating `group`.
    pub(crate) fn coordinator(&self, group: &str) -> i32 {
        // librdkafka has no FindCoordinator call of its own: the coordinator
        // leads the group's partition of __consumer_offsets, which the launcher
        // gives 10 partitions; Kafka picks it by the group id's Java hash.
        let partitions = 10;
        let hash = group
            .encode_utf16()
            .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
        let partition = (hash & 0x7fff_ffff) % partitions;
        self.leader("__consumer_offsets", partition)
    }

    fn metadata_client(&self) -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap_servers())
            .create()
            .expect("metadata client")
    }

    fn value(&self, name: &str) -> String {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("{name} not in {}/cluster.env", self.dir.display()))
            .clone()
    }

    fn run(&self, args: &[&str]) {
        let status = launcher()
            .arg(args[0])
            .arg(&self.dir)
            .args(&args[1..])
            .status()
            .expect("the launcher .ci/kafka runs");
        assert!(status.success(), "kafka {args:?}: {status}");
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        if self.owned {
            let _ = launcher().arg("stop").arg(&self.dir).status();
        }
    }
}

fn launcher() -> Command {
    Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/kafka"))
}

fn read_env(dir: &Path) -> HashMap<String, String> {
    let path = dir.join("cluster.env");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
