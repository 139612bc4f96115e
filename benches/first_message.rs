//! Time to first message: how long a new consumer group member takes from
//! being asked for to having its first message, ekafka against raw rdkafka,
//! measured side by side in one process:
//!
//! - ekafka: `Ekafka::consumer_group` (the member starts), a subscriber actor
//!   subscribed, until the actor has its first message;
//! - raw: an rdkafka `BaseConsumer` created with the same librdkafka
//!   properties (ekafka's own mapping of the same config, for the topic's
//!   partition count), subscribed, polled until its first message.
//!
//! Each repetition makes a fresh cluster (embedded) or topic (Kafka), writes
//! `MESSAGES` messages, then starts each side under a fresh group id, in an
//! order that alternates between repetitions; each side's clock starts just
//! before its first call. A first repetition, not counted, warms the broker
//! up (the first group a Kafka broker sees creates its offsets topic).
//!
//!     cargo bench --bench first_message
//!
//! Prints each repetition's times and their ratio, then min/median/max of
//! both and of the ratios. `BENCH_REPETITIONS` sets the repetitions
//! (default 5), `BENCH_PARTITIONS` the topic's partitions (default 3),
//! `BENCH_GROUP_KEYS` adds keys to the group's table (both sides get them).

mod common;

use std::time::{Duration, Instant};

use actix::{Actor, Context, Handler};
use common::{env_usize, min_median_max};
use ekafka::consumer::MessageBatch;
use ekafka::testing::unique_name;
use ekafka::{Ekafka, Message};
use rdkafka::consumer::{BaseConsumer, Consumer};

const MESSAGES: usize = 100;
/// The longest either side may take: far above what either does.
const PATIENCE: Duration = Duration::from_secs(60);

/// Tells when its first batch arrives, and acknowledges every batch.
struct FirstArrival(Option<tokio::sync::oneshot::Sender<Instant>>);

impl Actor for FirstArrival {
    type Context = Context<Self>;
}

impl Handler<MessageBatch> for FirstArrival {
    type Result = ();
    fn handle(&mut self, batch: MessageBatch, _: &mut Context<Self>) {
        if let Some(first) = self.0.take() {
            let _ = first.send(Instant::now());
        }
        batch.ack();
    }
}

fn config(brokers_line: &str, topic: &str, group: &str) -> String {
    let group_keys = std::env::var("BENCH_GROUP_KEYS").unwrap_or_default();
    format!(
        "[kafka]\n{brokers_line}\n[kafka.producers.p]\ntopic = {topic:?}\n\
         [kafka.consumerGroups.bench]\ngroupID = {group:?}\ntopic = {topic:?}\n{group_keys}\n"
    )
}

fn component(text: &str) -> Ekafka {
    Ekafka::from_toml_str(text, "kafka")
        .expect("config")
        .with_debug(false)
        .build()
        .expect("component")
}

async fn ekafka_side(kafka: &Ekafka) -> Duration {
    let (first, arrived) = tokio::sync::oneshot::channel();
    let receiver = FirstArrival(Some(first)).start().recipient();
    let started = Instant::now();
    let group = kafka.consumer_group("bench").expect("group");
    group.subscribe(receiver).await.expect("subscribe");
    let arrived = tokio::time::timeout(PATIENCE, arrived)
        .await
        .expect("a message within the patience")
        .expect("the receiver lives");
    let took = arrived - started;
    group.close().await.expect("close");
    took
}

fn raw_side(kafka: &Ekafka, partitions: usize) -> Duration {
    let properties = kafka
        .consumer_group_properties("bench", Some(partitions))
        .expect("properties")
        .to_client_config();
    let topic = kafka.config().consumer_groups["bench"].topics[0].clone();
    let started = Instant::now();
    let consumer: BaseConsumer = properties.create().expect("raw consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    loop {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            message.expect("raw message");
            let took = started.elapsed();
            consumer.unsubscribe();
            return took;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "no message within the patience"
        );
    }
}

/// One repetition: (raw, ekafka).
async fn repetition(partitions: usize, raw_first: bool) -> (Duration, Duration) {
    let cluster = common::cluster();
    let topic = unique_name("bench");
    cluster
        .create_topic_with_partitions(&topic, partitions as i32)
        .expect("topic");
    let brokers = cluster.brokers_line();
    let writer = component(&config(&brokers, &topic, &unique_name("unused")));
    let producer = writer.producer("p").expect("producer");
    let messages = (0..MESSAGES).map(|i| Message::new(i.to_string()).with_key(i.to_string()));
    assert!(producer
        .write(messages)
        .await
        .expect("written")
        .is_success());
    assert!(producer.close().await.expect("closed").is_clean());

    let raw_kafka = component(&config(&brokers, &topic, &unique_name("raw")));
    let ours_kafka = component(&config(&brokers, &topic, &unique_name("ekafka")));
    let raw = || {
        let raw_kafka = raw_kafka.clone();
        tokio::task::spawn_blocking(move || raw_side(&raw_kafka, partitions))
    };
    if raw_first {
        let raw = raw().await.expect("raw side");
        (raw, ekafka_side(&ours_kafka).await)
    } else {
        let ours = ekafka_side(&ours_kafka).await;
        (raw().await.expect("raw side"), ours)
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

#[actix::main]
async fn main() {
    let repetitions = env_usize("BENCH_REPETITIONS", 5);
    let partitions = env_usize("BENCH_PARTITIONS", 3);
    println!(
        "time to first message of a new group member, {partitions} partitions, on {}; raw = \
         BaseConsumer with the same properties, created, subscribed and polled:",
        common::measured_on()
    );
    // The first group a broker sees creates its offsets topic: not counted.
    let _ = repetition(partitions, true).await;
    let (mut raws, mut ours, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for number in 0..repetitions {
        let raw_first = number % 2 == 0;
        let (raw, ekafka) = repetition(partitions, raw_first).await;
        let ratio = ekafka.as_secs_f64() / raw.as_secs_f64();
        println!(
            "  {}: raw {:>7.1} ms   ekafka {:>7.1} ms   ratio {ratio:.2}",
            if raw_first {
                "raw first   "
            } else {
                "ekafka first"
            },
            ms(raw),
            ms(ekafka),
        );
        raws.push(ms(raw));
        ours.push(ms(ekafka));
        ratios.push(ratio);
    }
    let show = |values: Vec<f64>| {
        let (min, median, max) = min_median_max(values);
        format!("min {min:.1}, median {median:.1}, max {max:.1}")
    };
    println!("  raw ms: {}", show(raws));
    println!("  ekafka ms: {}", show(ours));
    let (min, median, max) = min_median_max(ratios);
    println!(
        "  ratio ekafka / raw: min {min:.2}, median {median:.2}, max {max:.2} (goal: at most 1.5)"
    );
}
