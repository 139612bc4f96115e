//! Side by side with Go ekafka's engine on Apache Kafka: kafka-go configured
//! as Go ekafka configures it (`tests/go_peer/`, built here with `go build`)
//! writes and reads the same topics and groups as ekafka. What a team moving a
//! Go service to Rust one service at a time relies on:
//!
//! - messages Go writes (keys, values, headers) reach an ekafka group intact;
//! - `balancer = "hash"` puts every key on the partition Go's `hash` puts it;
//! - a group stopped under Go resumes under ekafka at Go's committed offsets,
//!   and back: nothing read again, nothing skipped.
//!
//! Needs Apache Kafka (`EKAFKA_TEST_BROKERS`) and Go: `./e2e.sh` runs it.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{forwarder, receive, WAIT};
use ekafka::testing::{unique_name, TestCluster};
use ekafka::{Ekafka, Message, MessageBatch};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Deserialize;

/// The broker the e2e tier runs; the tests need Apache Kafka, not the
/// embedded cluster (kafka-go's group protocol is not the point of a stand-in).
fn brokers() -> String {
    match TestCluster::from_env().expect("test cluster") {
        TestCluster::External { bootstrap_servers } => bootstrap_servers,
        _ => panic!("needs Apache Kafka: run ./e2e.sh (or set EKAFKA_TEST_BROKERS)"),
    }
}

/// The Go peer's binary, built once per run from `tests/go_peer`.
fn go_peer() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/go_peer");
        let binary = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("go-peer");
        let status = Command::new("go")
            .args(["build", "-o"])
            .arg(&binary)
            .arg(".")
            .current_dir(&source)
            .status()
            .expect("`go` runs (Go is on the PATH)");
        assert!(status.success(), "go build of tests/go_peer failed");
        binary
    })
}

/// Runs the Go peer with `args`; returns its stdout, failing on a non-zero exit.
async fn run_go(args: &[&str]) -> String {
    let mut command = tokio::process::Command::new(go_peer());
    command.args(args).kill_on_drop(true);
    let output = tokio::time::timeout(WAIT * 3, command.output())
        .await
        .expect("the Go peer finished in time")
        .expect("the Go peer runs");
    assert!(
        output.status.success(),
        "go-peer {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// One message the Go peer read and committed.
#[derive(Debug, Deserialize)]
struct GoRead {
    partition: i32,
    offset: i64,
    value: String,
}

fn create_topic(brokers: &str, partitions: i32) -> String {
    let topic = unique_name("go-peer");
    TestCluster::External {
        bootstrap_servers: brokers.to_string(),
    }
    .create_topic_with_partitions(&topic, partitions)
    .expect("topic created");
    topic
}

fn kafka(brokers: &str, topic: &str, group: &str) -> Ekafka {
    let brokers: Vec<&str> = brokers.split(',').collect();
    let text = format!(
        "[kafka]\nbrokers = {brokers:?}\n\
         [kafka.producers.p1]\ntopic = {topic:?}\nbalancer = \"hash\"\nbatchTimeout = \"5ms\"\n\
         [kafka.consumerGroups.cg1]\ngroupID = {group:?}\ntopic = {topic:?}\nmaxWait = \"100ms\"\n"
    );
    Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap()
}

/// Every message of `topic` (`partitions` partitions) from the beginning:
/// (partition, key, value, headers), read by a plain rdkafka consumer.
type Read = (i32, String, String, BTreeMap<String, String>);

async fn read_all(brokers: &str, topic: &str, partitions: i32, count: usize) -> Vec<Read> {
    let (brokers, topic) = (brokers.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", unique_name("reader"))
            .set("enable.auto.commit", "false")
            .create()
            .expect("reader");
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            assignment
                .add_partition_offset(&topic, partition, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let started = Instant::now();
        let mut read = Vec::with_capacity(count);
        while read.len() < count {
            assert!(started.elapsed() < WAIT, "read {} of {count}", read.len());
            let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let m = message.expect("no read error");
            let text =
                |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
            let headers = m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| (h.key.to_string(), text(h.value)))
                        .collect()
                })
                .unwrap_or_default();
            read.push((m.partition(), text(m.key()), text(m.payload()), headers));
        }
        read
    })
    .await
    .unwrap()
}

#[actix::test]
#[ignore = "needs Apache Kafka and Go: ./e2e.sh runs it"]
async fn messages_go_writes_reach_an_ekafka_group_intact() {
    let brokers = brokers();
    let topic = create_topic(&brokers, 3);
    run_go(&[
        "produce", "-brokers", &brokers, "-topic", &topic, "-count", "300",
    ])
    .await;

    let kafka = kafka(&brokers, &topic, &unique_name("group"));
    let group = kafka.consumer_group("cg1").unwrap();
    let (subscriber, mut batches) = forwarder::<MessageBatch>();
    group.subscribe(subscriber).await.unwrap();
    let mut seen = HashSet::new();
    let mut last_seq: HashMap<i32, usize> = HashMap::new();
    while seen.len() < 300 {
        let batch = common::next(&mut batches, "Go's messages").await;
        for m in batch.messages() {
            let seq: usize = std::str::from_utf8(m.header("seq").expect("seq header"))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(m.key(), Some(format!("key-{seq}").as_bytes()));
            assert_eq!(m.value_str(), Some(format!("go-{seq}").as_str()));
            assert_eq!(m.header("origin"), Some(&b"go"[..]));
            assert!(seen.insert(seq), "message {seq} arrived twice");
            // Go writes in order; each partition keeps it.
            if let Some(previous) = last_seq.insert(m.partition(), seq) {
                assert!(
                    seq > previous,
                    "partition {}: {seq} after {previous}",
                    m.partition()
                );
            }
        }
        batch.ack();
    }
    group.close().await.unwrap();
}

#[actix::test]
#[ignore = "needs Apache Kafka and Go: ./e2e.sh runs it"]
async fn hash_puts_every_key_where_go_ekafka_puts_it() {
    let brokers = brokers();
    const KEYS: usize = 1_000;
    for partitions in [3, 12] {
        let topic = create_topic(&brokers, partitions);
        let count = KEYS.to_string();
        run_go(&[
            "produce", "-brokers", &brokers, "-topic", &topic, "-count", &count,
        ])
        .await;
        // The same keys through ekafka, as the Rust service beside it would.
        let kafka = kafka(&brokers, &topic, &unique_name("group"));
        let report = kafka
            .producer("p1")
            .unwrap()
            .write(
                (0..KEYS).map(|i| Message::new(format!("rust-{i}")).with_key(format!("key-{i}"))),
            )
            .await
            .unwrap();
        assert!(report.is_success());

        let mut placed: HashMap<String, HashMap<String, i32>> = HashMap::new();
        for (partition, key, value, _) in read_all(&brokers, &topic, partitions, 2 * KEYS).await {
            let origin = value.split('-').next().unwrap().to_string();
            placed.entry(key).or_default().insert(origin, partition);
        }
        let apart: Vec<_> = placed
            .iter()
            .filter(|(_, by)| by.get("go") != by.get("rust"))
            .map(|(key, by)| format!("{key}: {by:?}"))
            .collect();
        assert_eq!(placed.len(), KEYS);
        assert!(
            apart.is_empty(),
            "{} of {KEYS} keys on different partitions ({partitions} partitions), e.g. {:?}",
            apart.len(),
            &apart[..apart.len().min(5)]
        );
        println!("{partitions} partitions: all {KEYS} keys where Go put them");
    }
}

/// What the group has committed on `topic`, per partition.
async fn committed(kafka: &Ekafka, group: &str) -> BTreeMap<i32, i64> {
    kafka
        .admin()
        .unwrap()
        .group_offsets(group)
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.partition.partition, o.offset))
        .collect()
}

#[actix::test]
#[ignore = "needs Apache Kafka and Go: ./e2e.sh runs it"]
async fn a_group_moved_from_go_to_ekafka_and_back_resumes_where_the_other_left() {
    let brokers = brokers();
    let topic = create_topic(&brokers, 3);
    let group_id = unique_name("group");
    let kafka = kafka(&brokers, &topic, &group_id);
    let write = |from: usize, to: usize| {
        let producer = kafka.producer("p1").unwrap();
        async move {
            let messages =
                (from..to).map(|i| Message::new(format!("m-{i}")).with_key(format!("key-{i}")));
            assert!(producer.write(messages).await.unwrap().is_success());
        }
    };
    write(0, 600).await;

    // Go reads and commits 200, then leaves.
    let go_read: Vec<GoRead> = run_go(&[
        "consume", "-brokers", &brokers, "-topic", &topic, "-group", &group_id, "-count", "200",
    ])
    .await
    .lines()
    .map(|line| serde_json::from_str(line).expect("a JSON line"))
    .collect();
    assert_eq!(go_read.len(), 200);
    let go_committed = committed(&kafka, &group_id).await;
    let mut go_next: BTreeMap<i32, i64> = BTreeMap::new();
    for m in &go_read {
        let next = go_next.entry(m.partition).or_default();
        *next = (*next).max(m.offset + 1);
    }
    assert_eq!(go_committed, go_next, "Go committed what it read");

    // ekafka takes the group over: exactly the 400 Go did not read.
    let group = kafka.consumer_group("cg1").unwrap();
    let (subscriber, mut batches) = forwarder::<MessageBatch>();
    group.subscribe(subscriber).await.unwrap();
    let by_partition = receive(&mut batches, 400).await;
    let go_values: HashSet<&str> = go_read.iter().map(|m| m.value.as_str()).collect();
    let mut rust_values = HashSet::new();
    for (partition, messages) in &by_partition {
        let first = messages.first().map(|(offset, _)| *offset);
        assert_eq!(
            first,
            Some(go_committed.get(partition).copied().unwrap_or(0)),
            "partition {partition}: ekafka starts at Go's committed offset"
        );
        for (_, value) in messages {
            assert!(!go_values.contains(value.as_str()), "{value} read again");
            assert!(rust_values.insert(value.clone()), "{value} twice");
        }
    }
    assert_eq!(rust_values.len() + go_values.len(), 600, "nothing skipped");
    group.commit_acknowledged().await.unwrap();
    group.close().await.unwrap();
    let rust_committed = committed(&kafka, &group_id).await;
    assert_eq!(rust_committed.values().sum::<i64>(), 600);

    // And back: Go resumes at ekafka's offsets and reads only what is new.
    write(600, 900).await;
    let back: Vec<GoRead> = run_go(&[
        "consume", "-brokers", &brokers, "-topic", &topic, "-group", &group_id, "-count", "300",
    ])
    .await
    .lines()
    .map(|line| serde_json::from_str(line).expect("a JSON line"))
    .collect();
    let mut first_back: BTreeMap<i32, i64> = BTreeMap::new();
    for m in &back {
        let index: usize = m.value.trim_start_matches("m-").parse().unwrap();
        assert!(index >= 600, "Go read {} again", m.value);
        first_back.entry(m.partition).or_insert(m.offset);
    }
    let distinct: HashSet<&str> = back.iter().map(|m| m.value.as_str()).collect();
    assert_eq!(distinct.len(), 300, "each new message once");
    for (partition, offset) in first_back {
        assert_eq!(
            Some(offset),
            rust_committed.get(&partition).copied(),
            "partition {partition}: Go starts at ekafka's committed offset"
        );
    }
}
