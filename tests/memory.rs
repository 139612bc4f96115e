//! Memory stays bounded in bytes with a subscriber that never acknowledges,
//! whatever the number of partitions: 12 partitions of 1 KB messages, ten
//! times more than the member may hold, read by a group whose subscriber
//! never acknowledges. The group runs in a child process (this binary run
//! again), so its peak resident memory (`VmHWM`) is its own and not the
//! producer's or the embedded broker's; it must stay within the bound the
//! README documents for `maxBufferedBytes`.
//!
//! Its own `main` (no libtest): the child is this binary with
//! `EKAFKA_MEMORY_WORKER` set. Linux only (it reads `/proc/self/status`).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use ekafka::testing::{unique_name, TestCluster};
use ekafka::{Ekafka, Message};

const WORKER: &str = "EKAFKA_MEMORY_WORKER";
const PARTITIONS: i32 = 12;
const MESSAGE_BYTES: usize = 1000;
const MAX_BUFFERED_BYTES: usize = 4 << 20;
/// Ten times what the member may hold.
const MESSAGES: usize = 10 * MAX_BUFFERED_BYTES / MESSAGE_BYTES;
/// How long the worker may take to fill up and pause every partition.
const SETTLE: Duration = Duration::from_secs(60);

/// The bound the README documents, which does not depend on the number of
/// partitions: what ekafka holds (`maxBufferedBytes`); what librdkafka may
/// prefetch before ekafka pauses the partitions (as much again), and its
/// partitions' queues and fetches together (as much again: each gets
/// `maxBufferedBytes / (2 × partitions)`); one fetch response per broker
/// (`fetch.max.bytes`: a quarter of the bound, at least 1 MiB); and the
/// process's fixed cost of librdkafka's and actix's threads and buffers (8 MiB).
fn documented_bound(brokers: usize) -> u64 {
    let fetch = (MAX_BUFFERED_BYTES / 4).max(1 << 20);
    (3 * MAX_BUFFERED_BYTES + brokers * fetch + (8 << 20)) as u64
}

fn main() {
    if let Ok(spec) = std::env::var(WORKER) {
        return worker(&spec);
    }
    if !cfg!(target_os = "linux") {
        println!("test a_stalled_subscriber_costs_bounded_memory ... ignored, reads /proc");
        return;
    }
    let started = Instant::now();
    scenario();
    println!(
        "test a_stalled_subscriber_costs_bounded_memory ... ok ({:?})",
        started.elapsed()
    );
}

fn scenario() {
    let cluster = TestCluster::from_env().expect("a test cluster");
    let topic = unique_name("memory");
    cluster
        .create_topic_with_partitions(&topic, PARTITIONS)
        .expect("topic created");
    produce(&cluster, &topic);

    let group = unique_name("group");
    let spec = format!("{}|{topic}|{group}", cluster.bootstrap_servers());
    let output = Command::new(std::env::current_exe().expect("this test binary"))
        .env(WORKER, &spec)
        .output()
        .expect("the worker runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "worker failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let field = |name: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("the worker reports {name}: {stdout}"))
    };
    let (before, peak, held) = (field("before="), field("peak="), field("held_bytes="));
    let grown = peak.saturating_sub(before);
    let bound = documented_bound(cluster.brokers().len());
    println!(
        "  {MESSAGES} messages of {MESSAGE_BYTES} B on {PARTITIONS} partitions, never acknowledged: \
         held {} KiB (maxBufferedBytes {} KiB); peak RSS grew {} KiB (bound {} KiB)",
        held / 1024,
        MAX_BUFFERED_BYTES / 1024,
        grown / 1024,
        bound / 1024
    );
    assert!(
        held <= (MAX_BUFFERED_BYTES + 2 * MESSAGE_BYTES) as u64,
        "held {held} bytes"
    );
    assert!(grown <= bound, "peak RSS grew {grown} bytes, over {bound}");
}

fn produce(cluster: &TestCluster, topic: &str) {
    let system = actix::System::new();
    system.block_on(async {
        let toml = format!(
            "[kafka]\n{}\n[kafka.producers.p1]\ntopic = {topic:?}\nbatchTimeout = \"5ms\"\n",
            cluster.brokers_line()
        );
        let kafka = Ekafka::from_toml_str(&toml, "kafka")
            .expect("valid config")
            .build()
            .expect("component");
        let producer = kafka.producer("p1").expect("producer");
        let value = vec![b'x'; MESSAGE_BYTES];
        for chunk in (0..MESSAGES).collect::<Vec<_>>().chunks(5_000) {
            let messages = chunk.iter().map(|i| {
                Message::new(value.clone())
                    .with_key(i.to_string())
                    .with_partition(*i as i32 % PARTITIONS)
            });
            let report = producer.write(messages).await.expect("written");
            assert!(report.is_success(), "{:?}", report.failures().next());
        }
        assert!(
            producer.close().await.expect("closed").is_clean(),
            "every message flushed"
        );
    });
}

/// The child: a group whose subscriber never acknowledges, until every
/// partition is paused; then reports its memory.
fn worker(spec: &str) {
    let mut parts = spec.split('|');
    let (brokers, topic, group) = (
        parts.next().expect("brokers"),
        parts.next().expect("topic"),
        parts.next().expect("group"),
    );
    let system = actix::System::new();
    system.block_on(async {
        let brokers: Vec<String> = brokers.split(',').map(|b| format!("{b:?}")).collect();
        let toml = format!(
            "[kafka]\nbrokers = [{}]\n[kafka.consumerGroups.cg1]\ngroupID = {group:?}\n\
             topic = {topic:?}\nmaxBuffered = 1000000\nmaxBufferedBytes = {MAX_BUFFERED_BYTES}\n\
             {}",
            brokers.join(", "),
            common::group_protocol_keys()
        );
        let kafka = Ekafka::from_toml_str(&toml, "kafka")
            .expect("valid config")
            .build()
            .expect("component");
        let before = memory_field("VmRSS:");
        let group = kafka.consumer_group("cg1").expect("group");
        let (subscriber, mut batches) = common::forwarder::<ekafka::MessageBatch>();
        group.subscribe(subscriber).await.expect("subscribed");
        let mut kept = Vec::new(); // never acknowledged
        let deadline = Instant::now() + SETTLE;
        loop {
            while let Ok(batch) = batches.try_recv() {
                kept.push(batch);
            }
            let status = group.status().await.expect("status");
            if status.assigned.len() == PARTITIONS as usize
                && status.paused.len() == status.assigned.len()
            {
                println!("before={before}");
                println!("peak={}", memory_field("VmHWM:"));
                println!("held_bytes={}", status.held_bytes);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not every partition paused within {SETTLE:?}: {status:?}"
            );
            // Waits for the next batch (or checks again shortly): there is
            // no event for "paused".
            let _ = tokio::time::timeout(Duration::from_millis(200), batches.recv()).await;
        }
        drop(kept);
        // Nothing was acknowledged, so there is nothing to commit.
        group
            .close_within(Duration::ZERO)
            .await
            .expect("the group closed");
    });
}

/// A `/proc/self/status` field in bytes (it reports kB).
fn memory_field(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("{name} in /proc/self/status"))
}
