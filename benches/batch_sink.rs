//! Rows per second into a sink that costs 5 ms per call, whatever the call
//! holds (a database round trip), batch handler against each-message
//! handler, on a topic of 3 partitions.
//!
//! Each message, one at a time per partition, that sink bounds the server
//! at 3 × 200 rows/s; with `concurrency = 16` (when the sink takes parallel
//! calls) at 3 × 3,200. A batch handler of `batchSize = 500` is bounded at
//! 3 × 100,000 by the sink, so what it reaches is set by how fast the
//! partitions are read. A fourth run, a batch handler with no sink, shows
//! that read ceiling.
//!
//! Each repetition writes the messages to a fresh topic, then handles them
//! with a fresh group in each of the four ways, in an order rotated between
//! repetitions. Timing starts at a run's first handler call (the group join
//! is excluded) and ends when its last row is stored. The each-message runs
//! get `BENCH_SECONDS` (3) seconds' worth of rows at their bound, the batch
//! runs `BENCH_MESSAGES` (60,000: the embedded cluster keeps only the last
//! 5 MB or so of a partition, dropping older messages, so more would not all
//! be read there; on Kafka, 600,000 makes the batch runs last about as long
//! as the others).
//!
//!     cargo bench --bench batch_sink
//!     ./e2e.sh --bench batch_sink          # on Apache Kafka
//!
//! `BENCH_REPETITIONS` sets the repetitions (default 5); `BENCH_GROUP_KEYS`
//! adds keys to the group's table, `;`-separated (`maxWait = "10ms"`, say).
//! Each run prints its mean rows per handler call.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{env_usize, min_median_max};
use ekafka::config::ConsumerServerConfig;
use ekafka::server::ConsumerServer;
use ekafka::testing::{unique_name, TestCluster};
use ekafka::{Ekafka, Message};

/// What one sink call costs.
const SINK_CALL: Duration = Duration::from_millis(5);
const PARTITIONS: usize = 3;
/// A run that stores nothing for this long is stuck: the bench fails.
const STALL: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq)]
enum Way {
    EachMessage,
    EachMessageConcurrent,
    Batch,
    BatchNoSink,
}

impl Way {
    const ALL: [Way; 4] = [
        Way::EachMessage,
        Way::EachMessageConcurrent,
        Way::Batch,
        Way::BatchNoSink,
    ];

    fn label(self) -> &'static str {
        match self {
            Way::EachMessage => "each message",
            Way::EachMessageConcurrent => "each message, concurrency 16",
            Way::Batch => "batch of up to 500",
            Way::BatchNoSink => "batch of up to 500, no sink",
        }
    }

    fn server_keys(self) -> &'static str {
        match self {
            Way::EachMessage => "",
            Way::EachMessageConcurrent => "concurrency = 16\norderBy = \"none\"\n",
            Way::Batch | Way::BatchNoSink => "batchSize = 500\nbatchWait = \"100ms\"\n",
        }
    }

    /// The rows a run of this way stores.
    fn rows(self, seconds: usize, batch_rows: usize) -> usize {
        match self {
            Way::EachMessage => PARTITIONS * 200 * seconds,
            Way::EachMessageConcurrent => PARTITIONS * 16 * 200 * seconds,
            Way::Batch | Way::BatchNoSink => batch_rows,
        }
    }
}

/// The sink: one call, whatever it holds, costs [`SINK_CALL`].
async fn store(_rows: usize) {
    tokio::time::sleep(SINK_CALL).await;
}

/// Handles the first `rows` messages of `topic` the way `way` says with a
/// fresh group; returns the rows stored per second and the handler calls.
async fn run(cluster: &TestCluster, topic: &str, way: Way, rows: usize) -> (f64, usize) {
    let text = format!(
        "[kafka]\n{}\n\
         [kafka.consumerGroups.bench]\ngroupID = {:?}\ntopic = {topic:?}\n{}\n\
         [kafkaConsumerServers.bench]\nconsumerGroupName = \"bench\"\n{}",
        cluster.brokers_line(),
        unique_name("group"),
        std::env::var("BENCH_GROUP_KEYS")
            .unwrap_or_default()
            .replace(';', "\n"),
        way.server_keys(),
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .expect("config")
        .with_debug(false)
        .build()
        .expect("component");
    let config =
        ConsumerServerConfig::from_toml_str(&text, "kafkaConsumerServers.bench").expect("server");
    let started: Rc<Cell<Option<Instant>>> = Rc::default();
    let (stored_tx, mut stored) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let first_call = Rc::clone(&started);
    let server = match way {
        Way::EachMessage | Way::EachMessageConcurrent => {
            ConsumerServer::on_each_message(&kafka, &config, move |_message| {
                if first_call.get().is_none() {
                    first_call.set(Some(Instant::now()));
                }
                let stored = stored_tx.clone();
                async move {
                    store(1).await;
                    let _ = stored.send(1);
                    Ok(())
                }
            })
            .await
        }
        Way::Batch | Way::BatchNoSink => {
            ConsumerServer::on_each_batch(&kafka, &config, move |messages| {
                if first_call.get().is_none() {
                    first_call.set(Some(Instant::now()));
                }
                let stored = stored_tx.clone();
                async move {
                    if way == Way::Batch {
                        store(messages.len()).await;
                    }
                    let _ = stored.send(messages.len());
                    Ok(())
                }
            })
            .await
        }
    }
    .expect("server");
    let (mut total, mut calls) = (0, 0);
    while total < rows {
        match tokio::time::timeout(STALL, stored.recv()).await {
            Ok(got) => {
                total += got.expect("server alive");
                calls += 1;
            }
            Err(_) => {
                let group = server.group().status().await;
                panic!(
                    "no row stored for {STALL:?}, {total} of {rows} so far; the group: {group:?}"
                );
            }
        }
    }
    let elapsed = started.get().expect("handler called").elapsed();
    server.close().await.expect("close");
    kafka.close().await.expect("component closed");
    (rows as f64 / elapsed.as_secs_f64(), calls)
}

/// Writes `count` messages of 100 bytes over the topic's partitions.
async fn fill(cluster: &TestCluster, topic: &str, count: usize) {
    let text = format!(
        "[kafka]\n{}\n[kafka.producers.p]\ntopic = {topic:?}\n",
        cluster.brokers_line()
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .expect("config")
        .with_debug(false)
        .build()
        .expect("component");
    let producer = kafka.producer("p").expect("producer");
    for chunk in (0..count).collect::<Vec<_>>().chunks(10_000) {
        let report = producer
            .write(chunk.iter().map(|_| Message::new(vec![0u8; 100])))
            .await
            .expect("write");
        assert!(report.is_success(), "{:?}", report.failures().next());
    }
    kafka.close().await.expect("component closed");
}

#[actix::main]
async fn main() {
    let repetitions = env_usize("BENCH_REPETITIONS", 5);
    let seconds = env_usize("BENCH_SECONDS", 3);
    let batch_rows = env_usize("BENCH_MESSAGES", 60_000);
    println!(
        "a sink costing {SINK_CALL:?} per call, {PARTITIONS} partitions, 100-byte messages, \
         {repetitions} repetitions, on {}",
        common::measured_on()
    );
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); Way::ALL.len()];
    let mut ratios = Vec::new();
    for repetition in 0..repetitions {
        let cluster = common::cluster();
        let topic = unique_name("bench");
        cluster
            .create_topic_with_partitions(&topic, PARTITIONS as i32)
            .expect("topic");
        let most = Way::ALL
            .iter()
            .map(|w| w.rows(seconds, batch_rows))
            .max()
            .unwrap_or(0);
        fill(&cluster, &topic, most).await;
        let mut this = [0.0; 4];
        for step in 0..Way::ALL.len() {
            let which = (step + repetition) % Way::ALL.len();
            let way = Way::ALL[which];
            let rows = way.rows(seconds, batch_rows);
            let (rate, calls) = run(&cluster, &topic, way, rows).await;
            println!(
                "  {:<30} {rate:>9.0} rows/s, {:>5.1} rows per call",
                way.label(),
                rows as f64 / calls as f64
            );
            rates[which].push(rate);
            this[which] = rate;
        }
        ratios.push(this[2] / this[0]);
    }
    for (way, values) in Way::ALL.iter().zip(rates) {
        let (min, median, max) = min_median_max(values);
        println!(
            "{:<30} rows/s: min {min:.0}, median {median:.0}, max {max:.0}",
            way.label()
        );
    }
    let (min, median, max) = min_median_max(ratios);
    println!("batch / each message: min {min:.0}, median {median:.0}, max {max:.0}");
}
