//! Losing a broker, or a consumer process, on a 3-broker Apache Kafka cluster
//! (replication factor 3, `min.insync.replicas = 2`), each scenario on a
//! cluster of its own:
//!
//! - the leader of a partition being written is killed (SIGKILL) mid-stream:
//!   every message reported delivered is in the log exactly once, in order per
//!   key; writing goes on, and goes on after the broker returns;
//! - the group coordinator is killed while a consumer server works: nothing is
//!   lost, nothing committed before the kill is handled again, and the group
//!   commits again once a new coordinator is elected;
//! - one consumer server runs as three processes; one is killed and the other
//!   two take over its partitions with nothing lost;
//! - every broker is killed under a group holding acknowledged, uncommitted
//!   messages: its close fails, naming each partition's offset left uncommitted.
//!
//! Its own `main` (no libtest): with `--ignored` or `--include-ignored` (as
//! `./e2e.sh` runs it) it runs the scenarios; without, it reports them ignored,
//! as a plain `cargo test` has no Kafka. With `EKAFKA_SCALE_OUT_WORKER` set it
//! is one worker process of the scale-out scenario.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kafka::KafkaCluster;
use common::scenarios::{self, in_system, Scenario};
use common::Fixture;
use ekafka::config::ConsumerServerConfig;
use ekafka::producer::Outcome;
use ekafka::testing::unique_name;
use ekafka::{App, ConsumedMessage, Ekafka, Message};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const WORKER: &str = "EKAFKA_SCALE_OUT_WORKER";
/// How long any one phase of a scenario may take.
const PHASE: Duration = Duration::from_secs(120);

fn main() {
    if let Ok(config) = std::env::var(WORKER) {
        return scale_out_worker(&config);
    }
    let scenarios: [(&str, Scenario); 4] = [
        (
            "killing_a_partition_leader_mid_stream_loses_and_duplicates_nothing",
            killing_a_partition_leader_mid_stream_loses_and_duplicates_nothing,
        ),
        (
            "killing_the_group_coordinator_loses_nothing_and_the_group_goes_on",
            killing_the_group_coordinator_loses_nothing_and_the_group_goes_on,
        ),
        (
            "a_killed_server_process_hands_its_partitions_to_the_others",
            a_killed_server_process_hands_its_partitions_to_the_others,
        ),
        (
            "closing_with_every_broker_gone_names_what_was_left_uncommitted",
            closing_with_every_broker_gone_names_what_was_left_uncommitted,
        ),
    ];
    scenarios::run("broker_loss", &scenarios);
}

/// Waits until `check` holds, or panics naming `what` after [`PHASE`].
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < PHASE, "timed out waiting for {what}");
        // Polling counters the writer and the handlers update.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- a keyed stream of writes in the background ----

/// Keys of the stream: each key's messages go to one partition (hash balancer).
const KEYS: usize = 12;
const PER_WRITE: usize = 50;

/// What a background writer has had acknowledged so far.
#[derive(Default)]
struct Stream {
    delivered: AtomicUsize,
    stop: AtomicBool,
    outcomes: Mutex<StreamOutcomes>,
}

#[derive(Default)]
struct StreamOutcomes {
    /// Values reported delivered.
    delivered: Vec<String>,
    /// Values reported failed (and handed back).
    failed: Vec<String>,
}

/// The value of the `seq`th message: `KEY/SEQ`, keyed by `KEY`.
fn stream_message(seq: usize) -> (String, String) {
    let key = format!("k{}", seq % KEYS);
    (key.clone(), format!("{key}/{seq}"))
}

impl Stream {
    /// Stops the writer, waits for its last write, and takes what it recorded.
    async fn finish(&self, writer: tokio::task::JoinHandle<()>) -> StreamOutcomes {
        self.stop.store(true, Ordering::SeqCst);
        tokio::time::timeout(PHASE, writer)
            .await
            .expect("the writer finishes")
            .expect("the writer did not panic");
        std::mem::take(&mut *self.outcomes.lock().unwrap())
    }
}

/// Writes the stream through producer `p1` until told to stop.
fn spawn_writer(kafka: &Ekafka, stream: Arc<Stream>) -> tokio::task::JoinHandle<()> {
    let producer = kafka.producer("p1").unwrap();
    actix::spawn(async move {
        let mut seq = 0;
        while !stream.stop.load(Ordering::SeqCst) {
            let batch: Vec<(String, String)> = (seq..seq + PER_WRITE).map(stream_message).collect();
            seq += PER_WRITE;
            let messages = batch
                .iter()
                .map(|(key, value)| Message::new(value.clone()).with_key(key.clone()));
            let report = producer.write(messages).await.expect("write accepted");
            assert_eq!(
                report.outcomes().len(),
                PER_WRITE,
                "one outcome per message"
            );
            let mut outcomes = stream.outcomes.lock().unwrap();
            for ((_, value), outcome) in batch.into_iter().zip(report.outcomes()) {
                match outcome {
                    Outcome::Delivered(_) => {
                        outcomes.delivered.push(value);
                        stream.delivered.fetch_add(1, Ordering::SeqCst);
                    }
                    Outcome::Failed(error) => {
                        assert_eq!(error.message.value.as_deref(), Some(value.as_bytes()));
                        println!("  failed and handed back: {error}");
                        outcomes.failed.push(value);
                    }
                    other => panic!("synchronous writes report delivery, got {other:?}"),
                }
            }
        }
    })
}

/// Every message of `topic` (3 partitions), in log order per partition.
async fn read_log(bootstrap: String, topic: String) -> Vec<(i32, i64, String)> {
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", unique_name("reader"))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .expect("reader");
        let mut ends = HashMap::new();
        let mut assignment = TopicPartitionList::new();
        for partition in 0..3 {
            let (_, high) = consumer
                .fetch_watermarks(&topic, partition, Duration::from_secs(30))
                .expect("watermarks");
            ends.insert(partition, high);
            assignment
                .add_partition_offset(&topic, partition, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let mut read = Vec::new();
        let mut positions: HashMap<i32, i64> = (0..3).map(|p| (p, 0)).collect();
        let started = Instant::now();
        while positions.iter().any(|(p, at)| *at < ends[p]) {
            assert!(started.elapsed() < PHASE, "reading {topic} back");
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    positions.insert(m.partition(), m.offset() + 1);
                    let value = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
                    read.push((m.partition(), m.offset(), value));
                }
                // A connection to the killed broker fails; librdkafka carries on.
                Some(Err(KafkaError::MessageConsumption(
                    RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown,
                ))) => {}
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None => {}
            }
        }
        read
    })
    .await
    .expect("reader thread")
}

/// A component on `fixture` with producer `p1` (hash balancer, deliveries
/// that outlast a failover) and consumer group `cg1`, plus server `s1`.
fn setup(fixture: &Fixture) -> (Ekafka, ConsumerServerConfig, String) {
    let group = unique_name("group");
    let text = format!(
        "{}\n[kafka.consumerGroups.cg1]\ngroupID = {group:?}\ntopic = {:?}\n\
         heartbeatInterval = \"1s\"\nsessionTimeout = \"6s\"\nmaxWait = \"100ms\"\n\
         drainTimeout = \"2s\"\nmaxRestarts = 100\n\
         [kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\nmaxRestarts = 100\n",
        fixture.config("balancer = \"hash\"\nwriteTimeout = \"60s\"\nmaxRestarts = 100"),
        fixture.topic,
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    let server = ConsumerServerConfig::from_toml_str(&text, "kafkaConsumerServers.s1").unwrap();
    (kafka, server, group)
}

// ---- scenario 1: the leader of a partition being written dies ----

fn killing_a_partition_leader_mid_stream_loses_and_duplicates_nothing() -> Result<(), String> {
    let cluster = KafkaCluster::start(3);
    in_system(|| async move {
        let fixture = Fixture::on(cluster.cluster());
        let (kafka, _, _) = setup(&fixture);
        let stream = Arc::new(Stream::default());
        let writer = spawn_writer(&kafka, Arc::clone(&stream));

        let delivered = |n| {
            let stream = Arc::clone(&stream);
            move || stream.delivered.load(Ordering::SeqCst) >= n
        };
        until("2,000 deliveries before the kill", delivered(2_000)).await;
        let leader = cluster.leader(&fixture.topic, 0);
        let before = stream.delivered.load(Ordering::SeqCst);
        cluster.kill(leader);
        let killed = Instant::now();
        // Partition 0's keys are written again once it has a new leader.
        let new_leader = loop {
            let now = cluster.leader(&fixture.topic, 0);
            if now != leader && now >= 0 {
                break now;
            }
            assert!(killed.elapsed() < PHASE, "no new leader for partition 0");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let elected = killed.elapsed();
        until(
            "4,000 more deliveries after the kill",
            delivered(before + 4_000),
        )
        .await;
        let resumed = killed.elapsed();
        cluster.restart(leader);
        let after_restart = stream.delivered.load(Ordering::SeqCst);
        until(
            "2,000 deliveries after the restart",
            delivered(after_restart + 2_000),
        )
        .await;
        let outcomes = stream.finish(writer).await;
        let log = read_log(cluster.bootstrap_servers(), fixture.topic.clone()).await;
        let mut copies: HashMap<&str, usize> = HashMap::new();
        for (_, _, value) in &log {
            *copies.entry(value.as_str()).or_default() += 1;
        }
        let lost = outcomes
            .delivered
            .iter()
            .filter(|v| !copies.contains_key(v.as_str()))
            .count();
        let duplicated = copies.values().filter(|n| **n > 1).count();
        let failed_but_written = outcomes
            .failed
            .iter()
            .filter(|v| copies.contains_key(v.as_str()))
            .count();
        println!(
            "  leader {leader} killed; partition 0 led by {new_leader} after {elected:?}, \
             writes flowing again after {resumed:?}; {} delivered, {} failed and handed back \
             ({failed_but_written} of them in the log all the same), {} in the log, \
             lost {lost}, duplicated {duplicated}",
            outcomes.delivered.len(),
            outcomes.failed.len(),
            log.len(),
        );
        assert_eq!(lost, 0, "acknowledged messages lost");
        assert_eq!(duplicated, 0, "messages in the log more than once");
        // Order per key: a key's sequence numbers rise along its partition's log.
        let mut last_seq: HashMap<String, usize> = HashMap::new();
        for (partition, offset, value) in &log {
            let (key, seq) = value.split_once('/').unwrap();
            let seq: usize = seq.parse().unwrap();
            if let Some(previous) = last_seq.insert(key.to_string(), seq) {
                assert!(
                    previous < seq,
                    "{key}: {seq} after {previous} at {partition}/{offset}"
                );
            }
        }
        kafka.close().await.unwrap();
    })
}

// ---- scenario 2: the group coordinator dies ----

fn killing_the_group_coordinator_loses_nothing_and_the_group_goes_on() -> Result<(), String> {
    let cluster = KafkaCluster::start(3);
    in_system(|| async move {
        let fixture = Fixture::on(cluster.cluster());
        let (kafka, server_config, group) = setup(&fixture);
        let handled: Arc<Mutex<Vec<(i32, i64, String)>>> = Arc::default();
        let server = ekafka::server::ConsumerServer::on_each_message(&kafka, &server_config, {
            let handled = Arc::clone(&handled);
            move |m: ConsumedMessage| {
                let handled = Arc::clone(&handled);
                async move {
                    let value = m.value_str().unwrap().to_string();
                    handled
                        .lock()
                        .unwrap()
                        .push((m.partition(), m.offset(), value));
                    Ok(())
                }
            }
        })
        .await
        .expect("server started");
        let stream = Arc::new(Stream::default());
        let writer = spawn_writer(&kafka, Arc::clone(&stream));
        let handled_count = |n| {
            let handled = Arc::clone(&handled);
            move || handled.lock().unwrap().len() >= n
        };
        until(
            "2,000 messages handled before the kill",
            handled_count(2_000),
        )
        .await;

        let committed_before = common::committed_offsets(
            cluster.bootstrap_servers(),
            group.clone(),
            fixture.topic.clone(),
        )
        .await;
        let coordinator = cluster.coordinator(&group);
        let handled_at_kill = handled.lock().unwrap().len();
        cluster.kill(coordinator);
        let killed = Instant::now();
        until(
            "4,000 more messages handled after the kill",
            handled_count(handled_at_kill + 4_000),
        )
        .await;
        let outcomes = stream.finish(writer).await;
        until("every delivered message handled", || {
            let handled = handled.lock().unwrap();
            let seen: std::collections::HashSet<&str> =
                handled.iter().map(|(_, _, v)| v.as_str()).collect();
            outcomes.delivered.iter().all(|v| seen.contains(v.as_str()))
        })
        .await;
        // The group commits again: through the new coordinator, everything
        // handled ends up committed.
        let log = read_log(cluster.bootstrap_servers(), fixture.topic.clone()).await;
        let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
        for (partition, offset, _) in &log {
            let end = ends.entry(*partition).or_default();
            *end = (*end).max(offset + 1);
        }
        let expected: Vec<Option<i64>> = (0..3).map(|p| ends.get(&p).copied()).collect();
        let mut committed = Vec::new();
        let started = Instant::now();
        while committed != expected {
            assert!(
                started.elapsed() < PHASE,
                "committed {committed:?}, log ends {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            committed = common::committed_offsets(
                cluster.bootstrap_servers(),
                group.clone(),
                fixture.topic.clone(),
            )
            .await;
        }
        let recovered = killed.elapsed();
        server.close().await.unwrap();

        let handled = handled.lock().unwrap().clone();
        let mut times: HashMap<(i32, i64), usize> = HashMap::new();
        for (partition, offset, _) in handled.iter() {
            *times.entry((*partition, *offset)).or_default() += 1;
        }
        let duplicates: Vec<(i32, i64)> = times
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(at, _)| *at)
            .collect();
        println!(
            "  coordinator {coordinator} killed with {handled_at_kill} handled (committed before: \
             {committed_before:?}); all committed again after {recovered:?}; {} delivered, {} \
             failed and handed back, {} handled, {} handled twice",
            outcomes.delivered.len(),
            outcomes.failed.len(),
            handled.len(),
            duplicates.len(),
        );
        for (partition, offset) in &duplicates {
            let committed = committed_before[*partition as usize].unwrap_or(0);
            assert!(
                *offset >= committed,
                "{partition}/{offset} handled again although {committed} was committed before the kill"
            );
        }
        kafka.close().await.unwrap();
    })
}

// ---- scenario 3: one of three server processes dies ----

fn a_killed_server_process_hands_its_partitions_to_the_others() -> Result<(), String> {
    let cluster = KafkaCluster::start(3);
    let fixture = Fixture::on(cluster.cluster());
    let (kafka_text, group) = {
        let group = unique_name("group");
        let text = format!(
            "[kafka]\n{}\n\
             [kafka.consumerGroups.cg1]\ngroupID = {group:?}\ntopic = {:?}\n\
             heartbeatInterval = \"1s\"\nsessionTimeout = \"6s\"\nmaxWait = \"100ms\"\n\
             [kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\n",
            fixture.cluster.brokers_line(),
            fixture.topic,
        );
        (text, group)
    };
    let config_path = std::env::temp_dir().join(format!("{group}.toml"));
    std::fs::write(&config_path, &kafka_text).map_err(|e| e.to_string())?;
    let mut workers: Vec<Worker> = (0..3)
        .map(|i| Worker::start(i, &config_path))
        .collect::<Result<_, _>>()?;
    let handled: Arc<Mutex<Vec<Handled>>> = Arc::default();
    for worker in &mut workers {
        worker.forward(Arc::clone(&handled));
    }

    let result = in_system(|| {
        let handled = Arc::clone(&handled);
        let fixture = &fixture;
        let workers = &mut workers;
        async move {
            let kafka = fixture.kafka("balancer = \"hash\"");
            let mut written = Vec::new();
            let mut write = |from: usize, count: usize| {
                let values: Vec<(String, String)> =
                    (from..from + count).map(stream_message).collect();
                written.extend(values.iter().map(|(_, v)| v.clone()));
                let kafka = kafka.clone();
                async move {
                    common::write_all(
                        &kafka,
                        values.into_iter().map(|(k, v)| Message::new(v).with_key(k)),
                    )
                    .await
                }
            };
            // Until every process handles a share: the three split the partitions.
            let mut next = 0;
            loop {
                write(next, 300).await;
                next += 300;
                let busy = {
                    let handled = handled.lock().unwrap();
                    (0..3)
                        .filter(|w| handled.iter().any(|h| h.worker == *w))
                        .count()
                };
                if busy == 3 {
                    break;
                }
                assert!(
                    next < 30_000,
                    "the three processes never all got partitions"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let victim_partitions: Vec<i32> = {
                let handled = handled.lock().unwrap();
                let mut partitions: Vec<i32> = handled
                    .iter()
                    .filter(|h| h.worker == 0)
                    .map(|h| h.partition)
                    .collect();
                partitions.dedup();
                partitions
            };
            workers[0].kill();
            let killed_at = handled.lock().unwrap().len();
            let killed = Instant::now();
            write(next, 3_000).await;
            let all_written = written.clone();
            until("every written message handled after the kill", || {
                let handled = handled.lock().unwrap();
                let seen: std::collections::HashSet<&str> =
                    handled.iter().map(|h| h.value.as_str()).collect();
                all_written.iter().all(|v| seen.contains(v.as_str()))
            })
            .await;
            let handled = handled.lock().unwrap().clone();
            let taken_over: Vec<i32> = handled[killed_at..]
                .iter()
                .filter(|h| h.worker != 0 && victim_partitions.contains(&h.partition))
                .map(|h| h.partition)
                .collect();
            let mut seen: HashMap<&str, usize> = HashMap::new();
            for h in handled.iter() {
                *seen.entry(h.value.as_str()).or_default() += 1;
            }
            let duplicates = seen.values().filter(|n| **n > 1).count();
            println!(
                "  worker 0 (partitions {victim_partitions:?}) killed after {killed_at} handled; \
                 {} written, {} handled, {duplicates} handled twice, all handled {:?} after the kill",
                all_written.len(),
                handled.len(),
                killed.elapsed(),
            );
            assert!(
                !taken_over.is_empty(),
                "the survivors handled the killed process's partitions {victim_partitions:?}"
            );
            kafka.close().await.unwrap();
        }
    });
    for worker in &mut workers[1..] {
        worker.stop_gracefully()?;
    }
    let _ = std::fs::remove_file(&config_path);
    result
}

/// One message a worker process handled.
#[derive(Clone)]
struct Handled {
    worker: usize,
    partition: i32,
    value: String,
}

/// A worker process: this binary with `EKAFKA_SCALE_OUT_WORKER` set.
struct Worker {
    index: usize,
    child: Child,
}

impl Worker {
    fn start(index: usize, config: &std::path::Path) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let child = Command::new(exe)
            .env(WORKER, config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start worker {index}: {e}"))?;
        Ok(Worker { index, child })
    }

    /// Collects the worker's `HANDLED partition offset value` lines.
    fn forward(&mut self, handled: Arc<Mutex<Vec<Handled>>>) {
        let stdout = self.child.stdout.take().expect("piped");
        let worker = self.index;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut fields = line.splitn(4, ' ');
                if fields.next() != Some("HANDLED") {
                    continue;
                }
                let partition = fields.next().unwrap().parse().unwrap();
                let _offset = fields.next();
                let value = fields.next().unwrap().to_string();
                handled.lock().unwrap().push(Handled {
                    worker,
                    partition,
                    value,
                });
            }
        });
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM: the App drains, commits and leaves; the process exits 0.
    fn stop_gracefully(&mut self) -> Result<(), String> {
        // SAFETY: kill(2) on our own child's pid; no memory is shared.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let status = self.child.wait().map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("worker {} exited with {status}", self.index))
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A worker process: the server of the config file at `config`, in an App,
/// printing each message it handles until SIGTERM.
fn scale_out_worker(config: &str) {
    let text = std::fs::read_to_string(config).expect("worker config");
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    let server = ConsumerServerConfig::from_toml_str(&text, "kafkaConsumerServers.s1").unwrap();
    let served = App::new(kafka)
        .each_message(server, |m: ConsumedMessage| async move {
            println!(
                "HANDLED {} {} {}",
                m.partition(),
                m.offset(),
                m.value_str().unwrap()
            );
            Ok(())
        })
        .run();
    if let Err(e) = served {
        eprintln!("worker failed: {e}");
        std::process::exit(1);
    }
}

// ---- scenario 4: the close's commit finds no broker ----

fn closing_with_every_broker_gone_names_what_was_left_uncommitted() -> Result<(), String> {
    let cluster = KafkaCluster::start(3);
    in_system(|| async move {
        let fixture = Fixture::on(cluster.cluster());
        // Nothing is committed before the close.
        let text = common::group_config(
            &fixture,
            &unique_name("group"),
            "commitInterval = \"1h\"\ndrainTimeout = \"1s\"\ntimeout = \"2s\"",
        );
        let kafka = Ekafka::from_toml_str(&text, "kafka")
            .unwrap()
            .build()
            .unwrap();
        common::produce(&kafka, "m", 30).await;
        let group = kafka.consumer_group("cg1").unwrap();
        let (subscriber, mut batches) = common::forwarder::<ekafka::MessageBatch>();
        group.subscribe(subscriber).await.unwrap();
        let handled: BTreeMap<i32, i64> = common::receive(&mut batches, 30)
            .await
            .into_iter()
            .map(|(partition, messages)| (partition, messages.len() as i64))
            .collect();
        for node in 1..=3 {
            cluster.kill(node);
        }
        let started = Instant::now();
        let error = group.close().await.expect_err("the final commit failed");
        println!("  close answered after {:?}: {error}", started.elapsed());
        assert_eq!(common::uncommitted_offsets(&error), handled, "{error}");
    })
}
