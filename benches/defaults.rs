//! What a producer gives a user who tunes nothing, measured side by side in
//! one process:
//!
//! - write throughput: a producer with every default (the table names only
//!   its `topic`) against the same producer tuned (`TUNED_KEYS`), on the same
//!   topic, doing the same writes (1000 messages of 100 B, 16 in flight);
//!   paired, the order alternating between repetitions, each repetition on a
//!   fresh cluster and topic after a warm-up write of each side. Prints the
//!   tuned side's absolute rate, and the ratio defaults / tuned.
//! - a single synchronous write with every default: one writer writing one
//!   message at a time, each awaited, against a raw rdkafka `FutureProducer`
//!   with the same librdkafka properties (ekafka's own mapping of the same
//!   config) used the same way. Prints p50, p99 and max of both.
//!
//!     cargo bench --bench defaults
//!
//! `BENCH_MESSAGES` sets the messages per throughput run (default 500000),
//! `BENCH_SINGLE_WRITES` the single writes per side (default 1000),
//! `BENCH_REPETITIONS` the repetitions (default 5), `BENCH_ONLY` runs only
//! `throughput` or `single`. `BENCH_DEFAULT_KEYS` adds producer keys to the
//! default side (to measure what one default costs: `BENCH_DEFAULT_KEYS=
//! 'batchSize = 10000'`), `BENCH_KAFKA_KEYS` adds `[kafka]` keys to it.

mod common;

use std::time::{Duration, Instant};

use common::{cpu_time, env_usize, min_median_max, Run};
use ekafka::testing::unique_name;
use ekafka::{Ekafka, Message, Producer};
use rdkafka::producer::{FutureProducer, FutureRecord};

const MESSAGE_BYTES: usize = 100;
const WRITE_BATCH: usize = 1000;
const WRITES_IN_FLIGHT: usize = 16;
const WARM_UP: usize = 10_000;

/// The tuned side's producer keys: batches of up to 10,000 messages, sent
/// after at most 5 ms.
const TUNED_KEYS: &str = "batchSize = 10000\nbatchTimeout = \"5ms\"";
/// The tuned side's `[kafka]` keys: no interceptors.
const TUNED_KAFKA_KEYS: &str = "enableTraceInterceptor = false\nenableMetricInterceptor = false";

fn config(brokers_line: &str, topic: &str, kafka_keys: &str, producer_keys: &str) -> String {
    format!(
        "[kafka]\n{brokers_line}\n{kafka_keys}\n[kafka.producers.bench]\ntopic = {topic:?}\n\
         {producer_keys}\n"
    )
}

fn component(text: &str) -> Ekafka {
    Ekafka::from_toml_str(text, "kafka")
        .expect("config")
        .build()
        .expect("component")
}

/// Writes of `WRITE_BATCH` messages, `WRITES_IN_FLIGHT` at once.
async fn write_all(producer: &Producer, messages: usize) {
    common::write_batches(
        producer,
        messages,
        MESSAGE_BYTES,
        WRITE_BATCH,
        WRITES_IN_FLIGHT,
    )
    .await;
}

async fn timed_writes(producer: &Producer, messages: usize) -> Run {
    let (started, cpu_started) = (Instant::now(), cpu_time());
    write_all(producer, messages).await;
    Run::since(started, cpu_started)
}

/// One repetition on a fresh cluster: (tuned, defaults).
async fn throughput_repetition(messages: usize, tuned_first: bool) -> (Run, Run) {
    let cluster = common::cluster();
    let topic = unique_name("bench");
    cluster.create_topic(&topic).expect("topic");
    let brokers = cluster.brokers_line();
    let default_keys = std::env::var("BENCH_DEFAULT_KEYS").unwrap_or_default();
    let default_kafka_keys = std::env::var("BENCH_KAFKA_KEYS").unwrap_or_default();
    let defaults = component(&config(
        &brokers,
        &topic,
        &default_kafka_keys,
        &default_keys,
    ));
    let tuned = component(&config(&brokers, &topic, TUNED_KAFKA_KEYS, TUNED_KEYS));
    let defaults = defaults.producer("bench").expect("producer");
    let tuned = tuned.producer("bench").expect("producer");
    write_all(&defaults, WARM_UP).await;
    write_all(&tuned, WARM_UP).await;
    let pair = if tuned_first {
        let tuned_run = timed_writes(&tuned, messages).await;
        (tuned_run, timed_writes(&defaults, messages).await)
    } else {
        let defaults_run = timed_writes(&defaults, messages).await;
        (timed_writes(&tuned, messages).await, defaults_run)
    };
    for producer in [defaults, tuned] {
        assert!(producer.close().await.expect("close").is_clean());
    }
    pair
}

/// The time each of `writes` single-message writes took, one at a time.
async fn single_writes_ekafka(producer: &Producer, writes: usize) -> Vec<Duration> {
    let mut took = Vec::with_capacity(writes);
    for _ in 0..writes {
        let started = Instant::now();
        let report = producer
            .write([Message::new(vec![b'x'; MESSAGE_BYTES])])
            .await
            .expect("write accepted");
        took.push(started.elapsed());
        assert!(report.is_success(), "{:?}", report.failures().next());
    }
    took
}

async fn single_writes_raw(producer: &FutureProducer, topic: &str, writes: usize) -> Vec<Duration> {
    let payload = [b'x'; MESSAGE_BYTES];
    let mut took = Vec::with_capacity(writes);
    for _ in 0..writes {
        let started = Instant::now();
        let record = FutureRecord::<(), [u8]>::to(topic).payload(&payload[..]);
        producer
            .send(record, Duration::from_secs(60))
            .await
            .expect("raw delivery");
        took.push(started.elapsed());
    }
    took
}

/// p50, p99 and max.
fn percentiles(mut took: Vec<Duration>) -> [Duration; 3] {
    took.sort();
    let at = |p: f64| {
        let rank = ((took.len() as f64 * p).ceil() as usize).clamp(1, took.len());
        took[rank - 1]
    };
    [at(0.5), at(0.99), at(1.0)]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn show(label: &str, [p50, p99, max]: [Duration; 3]) -> String {
    format!(
        "{label} p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms",
        ms(p50),
        ms(p99),
        ms(max)
    )
}

/// One repetition on a fresh cluster: (raw, ekafka) percentiles.
async fn single_repetition(writes: usize, raw_first: bool) -> ([Duration; 3], [Duration; 3]) {
    let cluster = common::cluster();
    let topic = unique_name("bench");
    cluster.create_topic(&topic).expect("topic");
    let default_keys = std::env::var("BENCH_DEFAULT_KEYS").unwrap_or_default();
    let default_kafka_keys = std::env::var("BENCH_KAFKA_KEYS").unwrap_or_default();
    let text = config(
        &cluster.brokers_line(),
        &topic,
        &default_kafka_keys,
        &default_keys,
    );
    let kafka = component(&text);
    let raw: FutureProducer = kafka
        .producer_properties("bench")
        .expect("properties")
        .to_client_config()
        .create()
        .expect("raw producer");
    let producer = kafka.producer("bench").expect("producer");
    // Warm up: connections, metadata, the idempotent producer id.
    single_writes_raw(&raw, &topic, 10).await;
    single_writes_ekafka(&producer, 10).await;
    let (raw_took, ours) = if raw_first {
        let raw_took = single_writes_raw(&raw, &topic, writes).await;
        (raw_took, single_writes_ekafka(&producer, writes).await)
    } else {
        let ours = single_writes_ekafka(&producer, writes).await;
        (single_writes_raw(&raw, &topic, writes).await, ours)
    };
    assert!(producer.close().await.expect("close").is_clean());
    (percentiles(raw_took), percentiles(ours))
}

#[actix::main]
async fn main() {
    let messages = env_usize("BENCH_MESSAGES", 500_000);
    let writes = env_usize("BENCH_SINGLE_WRITES", 1000);
    let repetitions = env_usize("BENCH_REPETITIONS", 5);
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    println!(
        "producer defaults, on {}; defaults side adds {:?} and [kafka] {:?}",
        common::measured_on(),
        std::env::var("BENCH_DEFAULT_KEYS").unwrap_or_default(),
        std::env::var("BENCH_KAFKA_KEYS").unwrap_or_default(),
    );
    if "throughput".contains(only.as_str()) {
        println!(
            "write throughput, {messages} messages of {MESSAGE_BYTES} B, writes of {WRITE_BATCH}, \
             {WRITES_IN_FLIGHT} in flight; tuned = {TUNED_KEYS:?} and {TUNED_KAFKA_KEYS:?}:"
        );
        let (mut ratios, mut cpu) = (Vec::new(), Vec::new());
        for number in 0..repetitions {
            let tuned_first = number % 2 == 0;
            let (tuned, defaults) = throughput_repetition(messages, tuned_first).await;
            let ratio = defaults.rate(messages) / tuned.rate(messages);
            println!(
                "  {}: tuned {:>8.0} msg/s {:>5.2} µs cpu/msg   defaults {:>8.0} msg/s {:>5.2} µs \
                 cpu/msg   ratio {ratio:.2}",
                if tuned_first {
                    "tuned first   "
                } else {
                    "defaults first"
                },
                tuned.rate(messages),
                tuned.cpu_per_message(messages),
                defaults.rate(messages),
                defaults.cpu_per_message(messages),
            );
            ratios.push(ratio);
            cpu.push(defaults.cpu_per_message(messages) / tuned.cpu_per_message(messages));
        }
        let (min, median, max) = min_median_max(ratios);
        let (cpu_min, cpu_median, cpu_max) = min_median_max(cpu);
        println!(
            "  throughput defaults / tuned: min {min:.2}, median {median:.2}, max {max:.2} \
             (goal: at least 0.8)\n  cpu per message defaults / tuned: min {cpu_min:.2}, \
             median {cpu_median:.2}, max {cpu_max:.2}"
        );
    }
    if "single".contains(only.as_str()) {
        println!(
            "single synchronous writes with every default, {writes} per side, one at a time; \
             raw = FutureProducer with the same properties, awaiting each delivery:"
        );
        let mut p99s = Vec::new();
        for number in 0..repetitions {
            let raw_first = number % 2 == 0;
            let (raw, ours) = single_repetition(writes, raw_first).await;
            println!("  {}   {}", show("raw", raw), show("ekafka", ours));
            p99s.push(ms(ours[1]));
        }
        let (min, median, max) = min_median_max(p99s);
        println!(
            "  ekafka p99 over the repetitions: min {min:.2} ms, median {median:.2} ms, max \
             {max:.2} ms (goal: at most 20 ms)"
        );
    }
}
