//! Consumer throughput: an ekafka consumer group delivering batches to a
//! subscriber actor (which acknowledges each batch, so offsets are committed)
//! against a raw rdkafka `BaseConsumer` polling in a loop, on the same embedded
//! cluster, in one run, reading the same messages.
//!
//!     cargo bench --bench consumer_throughput
//!
//! Prints messages per second for both and the ratio ekafka / raw (goal: >= 0.7).
//! `BENCH_MESSAGES` sets the messages per round (default 60000: the embedded
//! cluster keeps at most 5 MiB per partition).

use std::time::{Duration, Instant};

use actix::{Actor, Context, Handler};
use ekafka::consumer::MessageBatch;
use ekafka::testing::{unique_name, EmbeddedCluster};
use ekafka::{Ekafka, Message};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

const MESSAGE_BYTES: usize = 100;
const ROUNDS: usize = 3;

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

fn raw_round(bootstrap: &str, topic: &str, messages: usize) -> Duration {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_name("raw"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .create()
        .expect("raw consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let started = Instant::now();
    let mut read = 0;
    while read < messages {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            message.expect("raw message");
            read += 1;
        }
    }
    started.elapsed()
}

async fn ekafka_round(kafka: &Ekafka, messages: usize) -> Duration {
    let group = kafka.consumer_group("bench").expect("group");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let started = Instant::now();
    group
        .subscribe(Counter(tx).start().recipient())
        .await
        .expect("subscribe");
    let mut read = 0;
    while read < messages {
        read += rx.recv().await.expect("counter alive");
    }
    let elapsed = started.elapsed();
    group.close().await.expect("close");
    elapsed
}

#[actix::main]
async fn main() {
    let messages: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    let cluster = EmbeddedCluster::start().expect("embedded cluster");
    let topic = unique_name("bench");
    cluster.create_topic(&topic).expect("topic");
    let config = |group: &str| {
        format!(
            "[kafka]\n{}\n[kafka.producers.p]\ntopic = {topic:?}\nbatchSize = 10000\nbatchTimeout = \"5ms\"\n\
             [kafka.consumerGroups.bench]\ngroupID = {group:?}\ntopic = {topic:?}\n",
            cluster.brokers_toml()
        )
    };
    let producer_kafka = Ekafka::from_toml_str(&config("unused"), "kafka")
        .unwrap()
        .build()
        .unwrap();
    let producer = producer_kafka.producer("p").unwrap();
    for _ in 0..(messages / 10_000).max(1) {
        let batch = (0..10_000.min(messages)).map(|_| Message::new(vec![b'x'; MESSAGE_BYTES]));
        assert!(producer.write(batch).await.unwrap().is_success());
    }
    println!(
        "consumer throughput, {messages} messages of {MESSAGE_BYTES} bytes per round, 3 partitions"
    );

    let (mut best_raw, mut best_ekafka) = (0f64, 0f64);
    for round in 1..=ROUNDS {
        let bootstrap = cluster.bootstrap_servers().to_string();
        let raw_topic = topic.clone();
        let raw = tokio::task::spawn_blocking(move || raw_round(&bootstrap, &raw_topic, messages))
            .await
            .unwrap();
        // A fresh group id per round, so each round reads everything from the start.
        let kafka = Ekafka::from_toml_str(&config(&unique_name("bench")), "kafka")
            .unwrap()
            .with_debug(false)
            .build()
            .unwrap();
        let ours = ekafka_round(&kafka, messages).await;
        let (raw_rate, ekafka_rate) = (
            messages as f64 / raw.as_secs_f64(),
            messages as f64 / ours.as_secs_f64(),
        );
        println!("  round {round}: raw {raw_rate:>10.0} msg/s   ekafka {ekafka_rate:>10.0} msg/s");
        best_raw = best_raw.max(raw_rate);
        best_ekafka = best_ekafka.max(ekafka_rate);
    }
    println!(
        "best of {ROUNDS}: raw rdkafka {best_raw:.0} msg/s, ekafka group -> subscriber actor {best_ekafka:.0} msg/s, ratio {:.2}",
        best_ekafka / best_raw
    );
}
