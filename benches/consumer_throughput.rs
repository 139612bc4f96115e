//! Consumer throughput, ekafka against the engine's limit, measured side by
//! side in one process:
//!
//! - ekafka: a consumer group delivering batches to a subscriber actor that
//!   acknowledges each batch; ekafka commits what was acknowledged (its default
//!   commit mode, or every `commitInterval`);
//! - raw: an rdkafka `BaseConsumer` poll loop, with the same librdkafka
//!   properties (ekafka's own mapping of the same config), reading each
//!   message's key, value and headers as an application reads what ekafka hands
//!   it, and committing the same way: asynchronously, one commit in flight, as
//!   soon as something new was read (or every `commitInterval`).
//!
//! On Apache Kafka (`EKAFKA_TEST_BROKERS`, or `./e2e.sh --bench`), the
//! `commitInterval = "1s"` runs have a third side when Go is on the PATH: the
//! Go peer (`tests/go_peer`, kafka-go's reader as Go ekafka configures it,
//! fetching and committing every message, the commits sent every second)
//! reading the same messages under a group of its own, first when raw goes
//! first, else last.
//!
//! Each repetition makes a fresh embedded cluster and topic, writes the
//! messages, then runs both sides on them with fresh group ids, in an order
//! that alternates between repetitions. Timing starts when a side has its first
//! message (the group join is excluded) and ends at the last; CPU is the
//! process's user and system time over that window (getrusage), per message.
//!
//!     cargo bench --bench consumer_throughput
//!
//! Prints each repetition's rates, the paired ratio ekafka / raw, and the
//! min/median/max of the ratios, for the default commit mode and for
//! `commitInterval = "1s"`. `BENCH_MESSAGES` sets the messages per repetition
//! (default 240000, 20000 a partition: the embedded cluster keeps at most
//! 5 MiB per partition),
//! `BENCH_REPETITIONS` the repetitions (default 5).

mod common;

use std::time::{Duration, Instant};

use actix::{Actor, Context, Handler};
use common::{cpu_time, env_usize, read_message, CommitTracking, Ratios, RawCommits, Run};
use ekafka::consumer::MessageBatch;
use ekafka::testing::unique_name;
use ekafka::{Ekafka, Message};
use rdkafka::consumer::{BaseConsumer, Consumer};

const MESSAGE_BYTES: usize = 100;
const PARTITIONS: usize = 12;

/// Acknowledges every batch and reports how many messages it got.
struct Counter(tokio::sync::mpsc::UnboundedSender<usize>);

impl Actor for Counter {
    type Context = Context<Self>;
}

impl Handler<MessageBatch> for Counter {
    type Result = ();
    fn handle(&mut self, batch: MessageBatch, _: &mut Context<Self>) {
        batch.ack();
        let _ = self.0.send(batch.messages().len());
    }
}

fn config(brokers_line: &str, topic: &str, group: &str, commit_interval: &str) -> String {
    // What a member sizes librdkafka's prefetch to for this many partitions at
    // the default maxBufferedBytes (16 MiB: half of it over the partitions,
    // at most a sixteenth each), set here so that the raw side gets it too.
    let bound = 16 << 20;
    let per_partition = (bound / (2 * PARTITIONS)).min(bound / 16);
    format!(
        "[kafka]\n{brokers_line}\n\
         [kafka.producers.p]\ntopic = {topic:?}\nbatchSize = 10000\nbatchTimeout = \"5ms\"\n\
         [kafka.consumerGroups.bench]\ngroupID = {group:?}\ntopic = {topic:?}\n\
         commitInterval = {commit_interval:?}\n\
         librdkafka = {{ \"queued.max.messages.kbytes\" = \"{}\", \"max.partition.fetch.bytes\" = \"{per_partition}\" }}\n",
        per_partition / 1024
    )
}

/// The raw side: a `BaseConsumer` poll loop committing like ekafka does.
fn raw_run(kafka: &Ekafka, messages: usize, commit_interval: Duration) -> Run {
    let consumer: BaseConsumer<CommitTracking> = kafka
        .consumer_group_properties("bench", Some(PARTITIONS))
        .expect("properties")
        .to_client_config()
        .create_with_context(CommitTracking::default())
        .expect("raw consumer");
    let topic = kafka.config().consumer_groups["bench"].topics[0].clone();
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut first = None;
    let mut read = 0;
    let mut commits = RawCommits::new(&topic, PARTITIONS, commit_interval);
    while read < messages {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.expect("raw message");
        if first.is_none() {
            first = Some((Instant::now(), cpu_time()));
        }
        use rdkafka::message::Message as _;
        read_message(&message);
        read += 1;
        commits.handled(&consumer, message.partition(), message.offset());
    }
    let (started, cpu_started) = first.expect("messages were read");
    Run::since(started, cpu_started)
}

/// The ekafka side: a group delivering to a subscriber actor that acknowledges.
async fn ekafka_run(kafka: &Ekafka, messages: usize) -> Run {
    let group = kafka.consumer_group("bench").expect("group");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    group
        .subscribe(Counter(tx).start().recipient())
        .await
        .expect("subscribe");
    let mut read = rx.recv().await.expect("counter alive");
    let (started, cpu_started) = (Instant::now(), cpu_time());
    while read < messages {
        read += rx.recv().await.expect("counter alive");
    }
    let run = Run::since(started, cpu_started);
    group.close().await.expect("close");
    run
}

/// One repetition on a fresh cluster: (raw, ekafka), and the Go peer's run
/// when it is given (first when raw goes first, else last).
async fn repetition(
    messages: usize,
    commit_interval: &str,
    raw_first: bool,
    go: Option<&std::path::Path>,
) -> (Run, Run, Option<Run>) {
    let cluster = common::cluster();
    let topic = unique_name("bench");
    cluster
        .create_topic_with_partitions(&topic, PARTITIONS as i32)
        .expect("topic");
    let kafka = |group: &str| {
        Ekafka::from_toml_str(
            &config(&cluster.brokers_line(), &topic, group, commit_interval),
            "kafka",
        )
        .expect("config")
        .with_debug(false)
        .build()
        .expect("component")
    };
    let writer = kafka(&unique_name("unused"));
    let producer = writer.producer("p").expect("producer");
    let mut written = 0;
    while written < messages {
        let count = 10_000.min(messages - written);
        let batch = (0..count).map(|_| Message::new(vec![b'x'; MESSAGE_BYTES]));
        assert!(producer.write(batch).await.expect("written").is_success());
        written += count;
    }
    assert!(
        producer.close().await.expect("closed").is_clean(),
        "every message flushed"
    );

    let interval = match commit_interval {
        "0" => Duration::ZERO,
        _ => Duration::from_secs(1),
    };
    let raw_kafka = kafka(&unique_name("raw"));
    let ours_kafka = kafka(&unique_name("ekafka"));
    let raw = || {
        let raw_kafka = raw_kafka.clone();
        tokio::task::spawn_blocking(move || raw_run(&raw_kafka, messages, interval))
    };
    let go_side = |go: &std::path::Path| {
        let (go, brokers) = (go.to_path_buf(), cluster.bootstrap_servers().to_string());
        let (topic, group) = (topic.clone(), unique_name("go"));
        tokio::task::spawn_blocking(move || {
            common::go_peer::read_throughput(&go, &brokers, &topic, &group, messages)
        })
    };
    let mut go_run = None;
    if let (Some(go), true) = (go, raw_first) {
        go_run = Some(go_side(go).await.expect("Go side"));
    }
    let (raw, ours) = if raw_first {
        let raw = raw().await.expect("raw side");
        let ours = ekafka_run(&ours_kafka, messages).await;
        (raw, ours)
    } else {
        let ours = ekafka_run(&ours_kafka, messages).await;
        let raw = raw().await.expect("raw side");
        (raw, ours)
    };
    if let (Some(go), false) = (go, raw_first) {
        go_run = Some(go_side(go).await.expect("Go side"));
    }
    (raw, ours, go_run)
}

#[actix::main]
async fn main() {
    let messages = env_usize("BENCH_MESSAGES", 240_000);
    let repetitions = env_usize("BENCH_REPETITIONS", 5);
    let go = common::go_peer::binary()
        .inspect_err(|why| println!("no Go peer: {why}"))
        .ok();
    for commit_interval in ["0", "1s"] {
        println!(
            "consumer throughput, commitInterval = {commit_interval:?}: {messages} messages of \
             {MESSAGE_BYTES} B on {PARTITIONS} partitions per repetition, join excluded, on {}",
            common::measured_on()
        );
        // The Go peer reads as Go ekafka does with commitInterval = "1s".
        let go = go.as_deref().filter(|_| commit_interval == "1s");
        let (mut ratios, mut against_go) = (Ratios::default(), common::go_peer::Ratios::default());
        for number in 0..repetitions {
            let raw_first = number % 2 == 0;
            let (raw, ours, go_run) = repetition(messages, commit_interval, raw_first, go).await;
            ratios.record(raw, ours, messages, raw_first);
            if let Some(go_run) = go_run {
                against_go.record(ours, go_run, messages, raw_first);
            }
        }
        ratios.report(" (goal: median >= 0.9)");
        against_go.report();
    }
}
