//! Ordered parallelism inside one partition: an each-message server with
//! `concurrency = N` and `orderBy = "key"`, whose handler waits 10 ms per
//! message, on a topic of one partition. One message at a time, that handler
//! bounds a partition at 100 msg/s; N at once, at N × 100 msg/s. The goal is
//! ≥ 0.8 of that bound.
//!
//! The yardstick here is the handler's bound, not raw rdkafka: a
//! `BaseConsumer` reads this partition hundreds of times faster than the
//! bound (see the consumer bench), so what is measured is how well the
//! server keeps N handlers busy while keeping each key's order and
//! committing the finished prefix.
//!
//! Each repetition makes a fresh embedded cluster, a one-partition topic and
//! `BENCH_KEYS` keys (default 1000) spread over the messages in turn, writes
//! `N × 100 × BENCH_SECONDS` messages (default 3 seconds' worth at the bound),
//! then handles them with a fresh group. Timing starts at the first handler
//! call (the group join is excluded) and ends when the last message was
//! handled. The order of the N values rotates between repetitions.
//!
//!     cargo bench --bench concurrency
//!
//! `BENCH_CONCURRENCY` lists the N values (default `1,8,32,64`),
//! `BENCH_REPETITIONS` the repetitions (default 5).

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{env_usize, min_median_max};
use ekafka::config::ConsumerServerConfig;
use ekafka::server::ConsumerServer;
use ekafka::testing::unique_name;
use ekafka::{Ekafka, Message};

const HANDLER_WAIT: Duration = Duration::from_millis(10);

fn config(brokers_line: &str, topic: &str, concurrency: usize) -> String {
    format!(
        "[kafka]\n{brokers_line}\n\
         [kafka.producers.p]\ntopic = {topic:?}\nbatchTimeout = \"5ms\"\n\
         [kafka.consumerGroups.bench]\ngroupID = {:?}\ntopic = {topic:?}\n\
         [kafkaConsumerServers.bench]\nconsumerGroupName = \"bench\"\n\
         concurrency = {concurrency}\norderBy = \"key\"\n",
        unique_name("group"),
    )
}

/// One repetition at `concurrency`: the messages handled per second.
async fn repetition(concurrency: usize, keys: usize, seconds: usize) -> f64 {
    let messages = concurrency * 100 * seconds;
    let cluster = common::cluster();
    let topic = unique_name("bench");
    cluster
        .create_topic_with_partitions(&topic, 1)
        .expect("topic");
    let text = config(&cluster.brokers_line(), &topic, concurrency);
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .expect("config")
        .with_debug(false)
        .build()
        .expect("component");
    let writes =
        (0..messages).map(|i| Message::new(vec![0u8; 100]).with_key(format!("{}", i % keys)));
    let report = kafka
        .producer("p")
        .expect("producer")
        .write(writes)
        .await
        .expect("write");
    assert!(report.is_success(), "{:?}", report.failures().next());

    let server_config =
        ConsumerServerConfig::from_toml_str(&text, "kafkaConsumerServers.bench").expect("server");
    let started: Rc<Cell<Option<Instant>>> = Rc::default();
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel::<()>();
    let first_call = Rc::clone(&started);
    let server = ConsumerServer::on_each_message(&kafka, &server_config, move |_message| {
        if first_call.get().is_none() {
            first_call.set(Some(Instant::now()));
        }
        let done = done_tx.clone();
        async move {
            tokio::time::sleep(HANDLER_WAIT).await;
            let _ = done.send(());
            Ok(())
        }
    })
    .await
    .expect("server");
    for _ in 0..messages {
        done.recv().await.expect("server alive");
    }
    let elapsed = started.get().expect("handler called").elapsed();
    server.close().await.expect("close");
    messages as f64 / elapsed.as_secs_f64()
}

#[actix::main]
async fn main() {
    let levels: Vec<usize> = std::env::var("BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "1,8,32,64".into())
        .split(',')
        .map(|n| n.trim().parse().expect("BENCH_CONCURRENCY: numbers"))
        .collect();
    let repetitions = env_usize("BENCH_REPETITIONS", 5);
    let keys = env_usize("BENCH_KEYS", 1000);
    let seconds = env_usize("BENCH_SECONDS", 3);
    println!(
        "one partition, handler waiting {HANDLER_WAIT:?}, {keys} keys, orderBy = \"key\", \
         {repetitions} repetitions, on {}",
        common::measured_on()
    );
    let mut ratios = vec![Vec::new(); levels.len()];
    for repetition_index in 0..repetitions {
        // Rotate which N runs first.
        for step in 0..levels.len() {
            let which = (step + repetition_index) % levels.len();
            let concurrency = levels[which];
            let rate = repetition(concurrency, keys, seconds).await;
            let bound = concurrency as f64 * 1000.0 / HANDLER_WAIT.as_millis() as f64;
            println!(
                "  concurrency {concurrency:>3}: {rate:>7.0} msg/s of a bound of {bound:>5.0}: {:.2}",
                rate / bound
            );
            ratios[which].push(rate / bound);
        }
    }
    for (concurrency, values) in levels.iter().zip(ratios) {
        let (min, median, max) = min_median_max(values);
        println!(
            "concurrency {concurrency:>3}: rate / (N × 100 msg/s): min {min:.2}, median {median:.2}, \
             max {max:.2} (goal ≥ 0.8)"
        );
    }
}
