//! End-to-end latency at a fixed rate, ekafka against the engine's limit,
//! measured side by side in one process:
//!
//! - ekafka: single-message writes through the producer actor at
//!   `BENCH_RATE` per second (each awaited on a task of its own), consumed by a
//!   consumer group delivering to a subscriber actor that acknowledges each
//!   batch (ekafka's default commit mode);
//! - raw: an rdkafka `BaseProducer` sending at the same pace on a thread that
//!   also polls its delivery callbacks, and a `BaseConsumer` poll loop on
//!   another thread that commits the same way ekafka does (asynchronously, one
//!   commit in flight, as soon as a position moved).
//!
//! Both sides use the same librdkafka properties (ekafka's own mapping of the
//! same config: like for like, librdkafka's `hash` partitioner and no
//! interceptors; `batchTimeout = "5ms"`; `maxWait = "5ms"`, because the
//! embedded cluster, unlike Kafka, does not answer a waiting fetch early when
//! data arrives, so with the default wait both sides would measure only it).
//! Both send every millisecond the messages due by then. Each message carries
//! its send time; latency is the time from
//! just before the write to the message's arrival at the subscriber (ekafka)
//! or at the poll loop (raw). Each side first writes until a warm-up message
//! arrives (the group join is excluded). Each repetition makes a fresh
//! embedded cluster, one topic and group per side, and runs the sides in an
//! order that alternates between repetitions.
//!
//!     cargo bench --bench latency
//!
//! Prints each repetition's p50/p99/max of both sides and what ekafka adds,
//! then the min/median/max over the repetitions of the added p50 and p99.
//! `BENCH_RATE` sets the messages per second (default 5000),
//! `BENCH_MESSAGES` the messages per side (default 10000), and
//! `BENCH_REPETITIONS` the repetitions (default 5).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix::{Actor, Context, Handler};
use common::{env_usize, read_message, CommitTracking, Deliveries, RawCommits};
use ekafka::consumer::MessageBatch;
use ekafka::testing::unique_name;
use ekafka::{Ekafka, Message};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const MESSAGE_BYTES: usize = 100;
const PARTITIONS: usize = 3;
/// The index a warm-up message carries.
const WARM_UP: u64 = u64::MAX;
/// The longest a side may take to warm up or to receive its messages.
const PATIENCE: Duration = Duration::from_secs(60);

/// Nanoseconds since the first call: one clock for both sides.
fn now_nanos() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// A payload carrying `index` and the time it is sent.
fn payload(index: u64) -> Vec<u8> {
    let mut payload = vec![b'x'; MESSAGE_BYTES];
    payload[..8].copy_from_slice(&index.to_le_bytes());
    payload[8..16].copy_from_slice(&now_nanos().to_le_bytes());
    payload
}

/// What a received payload says: its index and how long ago it was sent.
fn arrival(payload: &[u8]) -> (u64, Duration) {
    let index = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    let sent = u64::from_le_bytes(payload[8..16].try_into().expect("8 bytes"));
    (
        index,
        Duration::from_nanos(now_nanos().saturating_sub(sent)),
    )
}

/// The latencies of one side's measured messages.
struct Latencies(Vec<Duration>);

impl Latencies {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn summary(&self) -> String {
        format!(
            "p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms",
            ms(self.percentile(0.50)),
            ms(self.percentile(0.99)),
            ms(self.percentile(1.0)),
        )
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn config(brokers_line: &str, topic: &str, group: &str) -> String {
    format!(
        "[kafka]\n{brokers_line}\nenableTraceInterceptor = false\nenableMetricInterceptor = false\n\
         [kafka.producers.p]\ntopic = {topic:?}\nbalancer = \"hash\"\nbatchTimeout = \"5ms\"\n\
         [kafka.consumerGroups.g]\ngroupID = {group:?}\ntopic = {topic:?}\nmaxWait = \"5ms\"\n"
    )
}

/// The ekafka subscriber: acknowledges each batch and reports each arrival.
struct Receiver(tokio::sync::mpsc::UnboundedSender<(u64, Duration)>);

impl Actor for Receiver {
    type Context = Context<Self>;
}

impl Handler<MessageBatch> for Receiver {
    type Result = ();
    fn handle(&mut self, batch: MessageBatch, _: &mut Context<Self>) {
        for message in batch.messages() {
            let _ = self.0.send(arrival(message.value().expect("a value")));
        }
        batch.ack();
    }
}

/// Both sides send at the same pace: every millisecond, the messages due by
/// then (tokio's timers, which the ekafka side sleeps on, count milliseconds).
const TICK: Duration = Duration::from_millis(1);

/// The indexes of the messages to send at tick `tick`, at `rate` per second.
fn due_at(tick: usize, rate: usize, messages: usize) -> std::ops::Range<usize> {
    let ticks_per_second = (Duration::from_secs(1).as_nanos() / TICK.as_nanos()) as usize;
    let first = (tick * rate / ticks_per_second).min(messages);
    let end = ((tick + 1) * rate / ticks_per_second).min(messages);
    first..end
}

async fn ekafka_side(kafka: &Ekafka, messages: usize, rate: usize) -> Latencies {
    let group = kafka.consumer_group("g").expect("group");
    let producer = kafka.producer("p").expect("producer");
    let (tx, mut arrivals) = tokio::sync::mpsc::unbounded_channel();
    group
        .subscribe(Receiver(tx).start().recipient())
        .await
        .expect("subscribe");
    let warm_until = Instant::now() + PATIENCE;
    'warm: loop {
        assert!(Instant::now() < warm_until, "ekafka did not warm up");
        let report = producer
            .write([Message::new(payload(WARM_UP))])
            .await
            .expect("warm-up write");
        assert!(report.is_success(), "warm-up write failed");
        let wait = tokio::time::sleep(Duration::from_millis(100));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                arrived = arrivals.recv() => {
                    if arrived.expect("receiver alive").0 == WARM_UP { break 'warm; }
                }
                _ = &mut wait => break,
            }
        }
    }
    let mut writes = tokio::task::JoinSet::new();
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for tick in 0.. {
        let due = due_at(tick, rate, messages);
        if due.is_empty() && due.start == messages {
            break;
        }
        ticks.tick().await;
        for index in due {
            let producer = producer.clone();
            let message = Message::new(payload(index as u64));
            writes.spawn_local(async move { producer.write([message]).await });
        }
    }
    let mut latencies = Vec::with_capacity(messages);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while latencies.len() < messages {
        let arrived = tokio::time::timeout_at(deadline, arrivals.recv())
            .await
            .expect("ekafka messages arrive in time")
            .expect("receiver alive");
        if arrived.0 != WARM_UP {
            latencies.push(arrived.1);
        }
    }
    while let Some(report) = writes.join_next().await {
        let report = report.expect("write task").expect("write accepted");
        assert!(report.is_success(), "a write failed");
    }
    assert!(producer.close().await.expect("producer closed").is_clean());
    group.close().await.expect("group closed");
    Latencies(latencies)
}

fn raw_send(producer: &BaseProducer<Deliveries>, topic: &str, index: u64) {
    let payload = payload(index);
    producer
        .send(BaseRecord::<(), [u8]>::to(topic).payload(&payload[..]))
        .expect("raw send");
    producer.poll(Duration::ZERO);
}

fn raw_side(kafka: &Ekafka, messages: usize, rate: usize) -> Latencies {
    let topic = kafka.config().consumer_groups["g"].topics[0].clone();
    let consumer: BaseConsumer<CommitTracking> = kafka
        .consumer_group_properties("g", Some(PARTITIONS))
        .expect("properties")
        .to_client_config()
        .create_with_context(CommitTracking::default())
        .expect("raw consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let producer: BaseProducer<Deliveries> = kafka
        .producer_properties("p")
        .expect("properties")
        .to_client_config()
        .create_with_context(Deliveries::default())
        .expect("raw producer");
    let warmed = Arc::new(AtomicBool::new(false));
    let sender = {
        let (warmed, topic) = (Arc::clone(&warmed), topic.clone());
        std::thread::spawn(move || {
            let warm_until = Instant::now() + PATIENCE;
            while !warmed.load(Ordering::Acquire) {
                assert!(Instant::now() < warm_until, "raw did not warm up");
                raw_send(&producer, &topic, WARM_UP);
                producer.poll(Duration::from_millis(100));
            }
            let start = Instant::now();
            for tick in 0.. {
                let due = due_at(tick, rate, messages);
                if due.is_empty() && due.start == messages {
                    break;
                }
                // Pacing, not synchronisation: the next messages are due then.
                let at = start + TICK * tick as u32;
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                for index in due {
                    raw_send(&producer, &topic, index as u64);
                }
            }
            producer.flush(PATIENCE).expect("raw producer flushed");
        })
    };
    let mut commits = RawCommits::new(&topic, PARTITIONS, Duration::ZERO);
    let mut latencies = Vec::with_capacity(messages);
    let deadline = Instant::now() + PATIENCE * 2;
    while latencies.len() < messages {
        assert!(Instant::now() < deadline, "raw messages arrive in time");
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.expect("raw message");
        let (index, latency) = arrival(message.payload().expect("a value"));
        if index == WARM_UP {
            warmed.store(true, Ordering::Release);
        } else {
            latencies.push(latency);
        }
        read_message(&message);
        commits.handled(&consumer, message.partition(), message.offset());
    }
    sender.join().expect("raw sender");
    Latencies(latencies)
}

/// One repetition on a fresh cluster: (raw, ekafka).
async fn repetition(messages: usize, rate: usize, raw_first: bool) -> (Latencies, Latencies) {
    let cluster = common::cluster();
    let kafka = || {
        let topic = unique_name("latency");
        cluster
            .create_topic_with_partitions(&topic, PARTITIONS as i32)
            .expect("topic");
        Ekafka::from_toml_str(
            &config(&cluster.brokers_line(), &topic, &unique_name("group")),
            "kafka",
        )
        .expect("config")
        .with_debug(false)
        .build()
        .expect("component")
    };
    let (raw_kafka, ours_kafka) = (kafka(), kafka());
    let raw = || {
        let raw_kafka = raw_kafka.clone();
        tokio::task::spawn_blocking(move || raw_side(&raw_kafka, messages, rate))
    };
    if raw_first {
        let raw = raw().await.expect("raw side");
        (raw, ekafka_side(&ours_kafka, messages, rate).await)
    } else {
        let ours = ekafka_side(&ours_kafka, messages, rate).await;
        (raw().await.expect("raw side"), ours)
    }
}

fn min_median_max(mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "min {:+.2} ms, median {:+.2} ms, max {:+.2} ms",
        values[0],
        values[values.len() / 2],
        values[values.len() - 1]
    )
}

#[actix::main]
async fn main() {
    let rate = env_usize("BENCH_RATE", 5_000);
    let messages = env_usize("BENCH_MESSAGES", 10_000);
    let repetitions = env_usize("BENCH_REPETITIONS", 5);
    println!(
        "end-to-end latency at {rate} msg/s: {messages} messages of {MESSAGE_BYTES} B on \
         {PARTITIONS} partitions per side and repetition, on {}",
        common::measured_on()
    );
    let (mut added_p50, mut added_p99) = (Vec::new(), Vec::new());
    for number in 0..repetitions {
        let raw_first = number % 2 == 0;
        let (raw, ours) = repetition(messages, rate, raw_first).await;
        let p50 = ms(ours.percentile(0.50)) - ms(raw.percentile(0.50));
        let p99 = ms(ours.percentile(0.99)) - ms(raw.percentile(0.99));
        println!(
            "  {}: raw {}   ekafka {}   added p50 {p50:+.2} ms, p99 {p99:+.2} ms",
            if raw_first {
                "raw first   "
            } else {
                "ekafka first"
            },
            raw.summary(),
            ours.summary(),
        );
        added_p50.push(p50);
        added_p99.push(p99);
    }
    println!("  added p50: {}", min_median_max(added_p50));
    println!(
        "  added p99: {} (goal: under 1 ms)",
        min_median_max(added_p99)
    );
}
