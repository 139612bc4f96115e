//! Producer throughput: ekafka's producer actor against a raw rdkafka
//! `FutureProducer`, on the same embedded cluster, in one run, with the same
//! librdkafka properties (taken from ekafka's own mapping of the config).
//!
//!     cargo bench --bench producer_throughput
//!
//! Prints messages per second for both and the ratio ekafka / raw (goal: >= 0.9).
//! `BENCH_MESSAGES` sets the messages per round (default 200000).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ekafka::testing::{unique_name, EmbeddedCluster};
use ekafka::{Ekafka, Message};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use tokio::task::JoinSet;

const MESSAGE_BYTES: usize = 100;
const WRITE_BATCH: usize = 1000;
const WRITES_IN_FLIGHT: usize = 16;
const ROUNDS: usize = 5;

/// `kafka_keys` go in `[kafka]`, `producer_keys` in the producer's table.
fn config(brokers_toml: &str, topic: &str, kafka_keys: &str, producer_keys: &str) -> String {
    format!(
        "[kafka]\n{brokers_toml}\n{kafka_keys}\n[kafka.producers.bench]\ntopic = {topic:?}\n\
         batchSize = 10000\nbatchTimeout = \"5ms\"\nwriteTimeout = \"60s\"\n{producer_keys}\n"
    )
}

/// Raw rdkafka, written the fast way: enqueue without waiting, await the oldest
/// delivery only when the queue is full, then await the rest.
/// With `traceparent`, every message carries that header, as ekafka's trace
/// interceptor adds it by default.
async fn raw_round(
    producer: &FutureProducer,
    topic: &str,
    messages: usize,
    traceparent: bool,
) -> Duration {
    let payload = [b'x'; MESSAGE_BYTES];
    let started = Instant::now();
    let mut pending = VecDeque::with_capacity(messages);
    let mut trace_value = ekafka::interceptor::new_traceparent();
    for i in 0..messages {
        if traceparent && i % WRITE_BATCH == 0 {
            trace_value = ekafka::interceptor::new_traceparent();
        }
        loop {
            let mut record = FutureRecord::<(), [u8]>::to(topic).payload(&payload[..]);
            if traceparent {
                record = record.headers(OwnedHeaders::new_with_capacity(1).insert(Header {
                    key: "traceparent",
                    value: Some(trace_value.as_bytes()),
                }));
            }
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push_back(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    let oldest = pending
                        .pop_front()
                        .expect("a full queue has pending messages");
                    oldest.await.expect("delivery future").expect("delivered");
                }
                Err((e, _)) => panic!("raw send failed: {e}"),
            }
        }
    }
    for delivery in pending {
        delivery.await.expect("delivery future").expect("delivered");
    }
    started.elapsed()
}

/// ekafka: synchronous writes of 1000 messages, several in flight at once, each
/// answered with every message's delivery.
async fn ekafka_round(producer: &ekafka::Producer, messages: usize) -> Duration {
    let started = Instant::now();
    let mut writes = JoinSet::new();
    let mut remaining = messages;
    while remaining > 0 || !writes.is_empty() {
        while remaining > 0 && writes.len() < WRITES_IN_FLIGHT {
            let count = remaining.min(WRITE_BATCH);
            remaining -= count;
            let batch: Vec<Message> = (0..count)
                .map(|_| Message::new(vec![b'x'; MESSAGE_BYTES]))
                .collect();
            let producer = producer.clone();
            writes.spawn_local(async move { producer.write(batch).await });
        }
        let report = writes
            .join_next()
            .await
            .expect("a write")
            .expect("write task");
        let report = report.expect("write accepted");
        assert!(report.is_success(), "{:?}", report.failures().next());
    }
    started.elapsed()
}

fn rate(messages: usize, elapsed: Duration) -> f64 {
    messages as f64 / elapsed.as_secs_f64()
}

async fn compare(
    cluster: &EmbeddedCluster,
    label: &str,
    kafka_keys: &str,
    producer_keys: &str,
    messages: usize,
) {
    let topic = unique_name("bench");
    cluster.create_topic(&topic).expect("topic");
    let text = config(&cluster.brokers_toml(), &topic, kafka_keys, producer_keys);
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .expect("config")
        .build()
        .expect("component");
    let properties = kafka.producer_properties("bench").expect("properties");
    let raw: FutureProducer = properties
        .to_client_config()
        .create()
        .expect("raw producer");
    let actor = kafka.producer("bench").expect("producer actor");

    // Warm up both: connections, metadata, idempotent producer id.
    let traceparent = kafka.config().interceptors.trace;
    raw_round(&raw, &topic, 10_000, traceparent).await;
    ekafka_round(&actor, 10_000).await;

    let (mut best_raw, mut best_ekafka) = (0f64, 0f64);
    for round in 1..=ROUNDS {
        let raw_rate = rate(
            messages,
            raw_round(&raw, &topic, messages, traceparent).await,
        );
        let ekafka_rate = rate(messages, ekafka_round(&actor, messages).await);
        println!("  round {round}: raw {raw_rate:>10.0} msg/s   ekafka {ekafka_rate:>10.0} msg/s");
        best_raw = best_raw.max(raw_rate);
        best_ekafka = best_ekafka.max(ekafka_rate);
    }
    println!(
        "{label:<28} best of {ROUNDS}: raw rdkafka {best_raw:.0} msg/s, ekafka actor {best_ekafka:.0} msg/s, ratio {:.2}",
        best_ekafka / best_raw
    );
    actor.close().await.expect("close");
}

#[actix::main]
async fn main() {
    let messages: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let cluster = EmbeddedCluster::start().expect("embedded cluster");
    println!("producer throughput, {messages} messages of {MESSAGE_BYTES} bytes per round, acks=all, 3 brokers, 3 partitions");
    // Like for like: librdkafka's own partitioner (`hash`) and no traceparent header,
    // so both sides send identical messages with identical properties.
    let no_extras = "enableTraceInterceptor = false\nenableMetricInterceptor = false";
    compare(
        &cluster,
        "like-for-like (hash)",
        no_extras,
        "balancer = \"hash\"",
        messages,
    )
    .await;
    // The roundRobin default: ekafka's partitioner callback runs for every message.
    compare(&cluster, "roundRobin", no_extras, "", messages).await;
    // All defaults: a traceparent header per message (raw sends one too) and metrics.
    compare(&cluster, "defaults (trace + metrics)", "", "", messages).await;
}
