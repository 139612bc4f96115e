//! Exactly-once against at-least-once: the same transform (one output per
//! input, its value the input's) run by two consumer servers on the same
//! input topic, measured side by side in one process:
//!
//! - at-least-once: `on_each_message`, the handler writing its output with
//!   a producer and returning once it is delivered (so a crash cannot lose
//!   it), the group committing what was handled;
//! - exactly-once: `on_each_message_transform` with a `transactionalProducer`:
//!   outputs and input offsets commit in one transaction per run of a
//!   partition's messages.
//!
//! Every other key is the default; the at-least-once server runs once as is
//! and once with `concurrency = 16` (16 messages of a partition in flight,
//! the committed offset the finished prefix), the way to speed it up. Each side's time runs from its first
//! handler call (the join excluded) until a `read_committed` reader of its
//! output topic has seen every output: what a downstream reader can use.
//! Each repetition makes a fresh cluster (embedded) or topics (Kafka), writes
//! the inputs, then runs the sides under fresh groups in an order that
//! alternates between repetitions. Prints each side's rate, the ratio
//! exactly-once / at-least-once, and the exactly-once server's transactions:
//! how many, and their mean duration (from the producer's
//! `ekafka_producer_transaction_duration_seconds`).
//!
//!     cargo bench --bench exactly_once
//!
//! `BENCH_MESSAGES` sets the inputs (default 20000), `BENCH_PARTITIONS` the
//! input topic's partitions (default 3), `BENCH_REPETITIONS` the repetitions
//! (default 5).

mod common;

use std::time::{Duration, Instant};

use common::{env_usize, min_median_max};
use ekafka::config::ConsumerServerConfig;
use ekafka::server::{ConsumerServer, HandlerError};
use ekafka::testing::unique_name;
use ekafka::{ConsumedMessage, Ekafka, Message};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// The longest a side may take: far above what either does.
const PATIENCE: Duration = Duration::from_secs(300);

/// The at-least-once server's keys of each configuration measured.
const AT_LEAST_ONCE: [&str; 2] = ["", "concurrency = 16"];

fn config(
    brokers_line: &str,
    input: &str,
    output: &str,
    group: &str,
    transactional: bool,
    at_least_once_keys: &str,
) -> String {
    let (producer_keys, server_keys) = if transactional {
        (
            format!("transactionalID = {:?}\n", unique_name("txn")),
            "transactionalProducer = \"out\"\n".to_string(),
        )
    } else {
        (String::new(), format!("{at_least_once_keys}\n"))
    };
    format!(
        "[kafka]\n{brokers_line}\n\
         [kafka.producers.out]\ntopic = {output:?}\n{producer_keys}\
         [kafka.consumerGroups.in]\ngroupID = {group:?}\ntopic = {input:?}\n\
         [kafkaConsumerServers.s]\nconsumerGroupName = \"in\"\n{server_keys}"
    )
}

fn component(text: &str) -> (Ekafka, ConsumerServerConfig) {
    let kafka = Ekafka::from_toml_str(text, "kafka")
        .expect("config")
        .with_debug(false)
        .build()
        .expect("component");
    let server =
        ConsumerServerConfig::from_toml_str(text, "kafkaConsumerServers.s").expect("server");
    (kafka, server)
}

/// Waits until a `read_committed` reader of `topic` (one partition per input
/// partition is not assumed: every partition it has) has seen `count`
/// messages; returns when.
fn read_committed(brokers: String, topic: String, count: usize) -> Instant {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", unique_name("reader"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let started = Instant::now();
    let partitions = loop {
        let metadata = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .expect("metadata");
        let partitions = metadata.topics()[0].partitions().len();
        if partitions > 0 {
            break partitions;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the output topic never appeared"
        );
    };
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition_offset(&topic, partition as i32, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&list).expect("assign");
    let mut seen = 0;
    while seen < count {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            message.expect("output");
            seen += 1;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "outputs missing: {seen} of {count}"
        );
    }
    Instant::now()
}

/// Runs one side; returns its time from the first handler call to the last
/// output readable, and (exactly-once) the transactions' count and mean.
async fn side(
    brokers_line: &str,
    brokers: &str,
    input: &str,
    messages: usize,
    transactional: bool,
    at_least_once_keys: &str,
) -> (Duration, Option<(u64, Duration)>) {
    let output = unique_name("output");
    let text = config(
        brokers_line,
        input,
        &output,
        &unique_name("group"),
        transactional,
        at_least_once_keys,
    );
    let (kafka, server_config) = component(&text);
    let (first_tx, first) = tokio::sync::oneshot::channel::<Instant>();
    let first_tx = std::rc::Rc::new(std::cell::RefCell::new(Some(first_tx)));
    let note_first = move || {
        if let Some(first) = first_tx.borrow_mut().take() {
            let _ = first.send(Instant::now());
        }
    };
    let server = if transactional {
        ConsumerServer::on_each_message_transform(
            &kafka,
            &server_config,
            move |m: ConsumedMessage| {
                note_first();
                let value = m.value().map(<[u8]>::to_vec).unwrap_or_default();
                async move { Ok(vec![Message::new(value)]) }
            },
        )
        .await
        .expect("exactly-once server")
    } else {
        let producer = kafka.producer("out").expect("producer");
        ConsumerServer::on_each_message(&kafka, &server_config, move |m: ConsumedMessage| {
            note_first();
            let (producer, value) = (producer.clone(), m.value().map(<[u8]>::to_vec));
            async move {
                let output = Message::new(value.unwrap_or_default());
                let report = producer
                    .write([output])
                    .await
                    .map_err(|e| HandlerError::recoverable(e.to_string()))?;
                report
                    .into_result()
                    .map(drop)
                    .map_err(|e| HandlerError::recoverable(e.to_string()))
            }
        })
        .await
        .expect("at-least-once server")
    };
    let reader = {
        let (brokers, output) = (brokers.to_string(), output.clone());
        tokio::task::spawn_blocking(move || read_committed(brokers, output, messages))
    };
    let first = tokio::time::timeout(PATIENCE, first)
        .await
        .expect("a first message")
        .expect("the handler lives");
    let last = reader.await.expect("reader");
    server.close().await.expect("server closed");
    let transactions = transactional.then(|| transactions(&kafka.metrics_text()));
    kafka.close().await.expect("component closed");
    (last - first, transactions)
}

/// The count and mean duration of the committed transactions, from
/// `ekafka_producer_transaction_duration_seconds` in the metrics text.
fn transactions(metrics: &str) -> (u64, Duration) {
    let value = |suffix: &str| -> f64 {
        metrics
            .lines()
            .filter(|line| {
                line.starts_with(&format!(
                    "ekafka_producer_transaction_duration_seconds_{suffix}{{"
                )) && line.contains("result=\"committed\"")
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let (count, sum) = (value("count"), value("sum"));
    let mean = if count > 0.0 { sum / count } else { 0.0 };
    (count as u64, Duration::from_secs_f64(mean))
}

/// One repetition: (at-least-once, exactly-once).
async fn repetition(
    messages: usize,
    partitions: usize,
    at_least_once_keys: &str,
    at_least_once_first: bool,
) -> (Duration, (Duration, Option<(u64, Duration)>)) {
    let cluster = common::cluster();
    let input = unique_name("input");
    cluster
        .create_topic_with_partitions(&input, partitions as i32)
        .expect("topic");
    let brokers_line = cluster.brokers_line();
    let brokers = cluster.bootstrap_servers();
    let (writer, _) = component(&config(
        &brokers_line,
        "unused",
        &input,
        &unique_name("unused"),
        false,
        "",
    ));
    let producer = writer.producer("out").expect("producer");
    let mut written = 0;
    while written < messages {
        let count = 10_000.min(messages - written);
        let batch = (written..written + count)
            .map(|i| Message::new(format!("{i:0>100}")).with_key(i.to_string()));
        assert!(producer.write(batch).await.expect("written").is_success());
        written += count;
    }
    assert!(producer.close().await.expect("closed").is_clean());
    let at_least_once = || {
        side(
            &brokers_line,
            brokers,
            &input,
            messages,
            false,
            at_least_once_keys,
        )
    };
    let exactly_once = || side(&brokers_line, brokers, &input, messages, true, "");
    if at_least_once_first {
        let (plain, _) = at_least_once().await;
        (plain, exactly_once().await)
    } else {
        let eos = exactly_once().await;
        (at_least_once().await.0, eos)
    }
}

#[actix::main]
async fn main() {
    let messages = env_usize("BENCH_MESSAGES", 20_000);
    let partitions = env_usize("BENCH_PARTITIONS", 3);
    let repetitions = env_usize("BENCH_REPETITIONS", 5);
    println!(
        "exactly-once against at-least-once, one output per input, {messages} inputs on \
         {partitions} partitions, every other key default, on {}; from the first handler call \
         to the last output readable (read_committed):",
        common::measured_on()
    );
    for at_least_once_keys in AT_LEAST_ONCE {
        println!("at-least-once server with {at_least_once_keys:?}:");
        let (mut ratios, mut means) = (Vec::new(), Vec::new());
        for number in 0..repetitions {
            let at_least_once_first = number % 2 == 0;
            let (plain, (eos, transactions)) = repetition(
                messages,
                partitions,
                at_least_once_keys,
                at_least_once_first,
            )
            .await;
            let rate = |took: Duration| messages as f64 / took.as_secs_f64();
            let ratio = rate(eos) / rate(plain);
            let (count, mean) = transactions.unwrap_or_default();
            println!(
                "  {}: at-least-once {:>8.0} msg/s   exactly-once {:>8.0} msg/s   ratio \
                 {ratio:.2}   {count} transactions, mean {:.1} ms",
                if at_least_once_first {
                    "at-least-once first"
                } else {
                    "exactly-once first "
                },
                rate(plain),
                rate(eos),
                mean.as_secs_f64() * 1e3,
            );
            ratios.push(ratio);
            means.push(mean.as_secs_f64() * 1e3);
        }
        let (min, median, max) = min_median_max(ratios);
        println!(
            "  ratio exactly-once / at-least-once: min {min:.2}, median {median:.2}, max \
             {max:.2} (goal: at least 0.5)"
        );
        let (min, median, max) = min_median_max(means);
        println!("  mean transaction, ms: min {min:.1}, median {median:.1}, max {max:.1}");
    }
}
