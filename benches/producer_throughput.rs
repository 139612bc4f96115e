//! Producer throughput, ekafka against the engine's limit, measured side by
//! side in one process:
//!
//! - ekafka: synchronous writes of 1000 messages, 32 in flight, every
//!   message's delivery reported; each write queues its messages from the
//!   writing task's own thread;
//! - raw: an rdkafka `BaseProducer` with a delivery callback counting
//!   deliveries, polled on the thread that sends, enqueueing as fast as its
//!   queue takes, with the same librdkafka properties (ekafka's own mapping
//!   of the same config).
//!
//! On Apache Kafka (`EKAFKA_TEST_BROKERS`, or `./e2e.sh --bench`), the like
//! for like configuration has a third side when Go is on the PATH: the Go
//! peer (`tests/go_peer`, kafka-go as Go ekafka configures it, tuned alike
//! with batches of 1,000 and a 10 ms batch timeout) doing the same writes
//! (as many in flight) on the same topic, first when raw goes first, else
//! last.
//!
//! Configurations: like for like (librdkafka's own `hash` partitioner, no
//! interceptors); the same from two writing threads (ekafka: two Arbiters
//! sharing the producer, each with half the messages and half the writes in
//! flight; raw: two threads sharing the `BaseProducer`, each sending half
//! and polling); ekafka's default `roundRobin` balancer; and all defaults
//! (the metrics interceptor; with no trace active the trace switch adds no
//! header, so neither side sends one). Then single-message writes from 64
//! and 1024 concurrent writers, each awaiting its message's delivery,
//! against a raw `FutureProducer` used the same way
//! (`BENCH_SINGLE_MESSAGES`, default 50000). Each repetition uses a fresh
//! embedded cluster and topic, runs both sides in an order that alternates
//! between repetitions, after a warm-up write of each; CPU is the process's
//! user and system time over each side's run (getrusage), per message.
//!
//!     cargo bench --bench producer_throughput
//!
//! Prints each repetition's rates, the paired ratio ekafka / raw, and the
//! min/median/max of the ratios. `BENCH_MESSAGES` sets the messages per run
//! (default 500000), `BENCH_REPETITIONS` the repetitions (default 5),
//! `BENCH_ONLY` runs only the configurations whose label contains it
//! (`like for like (hash)`, `threads`, `roundRobin`, `defaults`, `single`),
//! `BENCH_IN_FLIGHT` the writes of 1000 in flight (default 32),
//! `BENCH_BATCH_TIMEOUT` both sides' `batchTimeout` (default `5ms`). Each
//! run also prints how busy each side's writing threads were (their CPU
//! time over the run's); threads busy all the time are that side's ceiling.
//!
//! Synchronous writes are a closed loop: with 16 writes of 1000 in flight
//! (16,000 messages, under a full batch per partition) every batch waits
//! out its linger, and the rate is capped near 16,000 messages per linger
//! and round trip, where the raw side keeps librdkafka's whole queue
//! (`queue.buffering.max.messages`) in flight. A faster machine reaches
//! the cap first; a longer `BENCH_BATCH_TIMEOUT` shows it on any machine,
//! and more writes in flight (`BENCH_IN_FLIGHT`) lift it.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cpu_time, env_usize, thread_cpu_time, Deliveries, Ratios, Run};
use ekafka::testing::unique_name;
use ekafka::{Ekafka, Message};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use tokio::task::JoinSet;

const MESSAGE_BYTES: usize = 100;
const WRITE_BATCH: usize = 1000;
/// Writes in flight at once, unless `BENCH_IN_FLIGHT` says: 32,000
/// messages, enough to fill a batch on each of the 3 partitions (1 MB,
/// librdkafka's `batch.size`: about 8,000 of these messages), so neither
/// side waits out `batchTimeout` for its batches. The raw side keeps
/// librdkafka's whole queue in flight. With 16 the writes are a closed loop
/// that waits for the linger every round: see the module's doc.
const WRITES_IN_FLIGHT: usize = 32;
const WARM_UP: usize = 10_000;
const LIKE_FOR_LIKE: &str = "like for like (hash)";

/// One configuration both sides run: its extra keys and how many threads
/// write.
struct Configuration {
    label: &'static str,
    /// Go in `[kafka]`.
    kafka_keys: &'static str,
    /// Go in the producer's table.
    producer_keys: &'static str,
    threads: usize,
}

/// A side's run, and how busy its `threads` writing threads were over it,
/// on average: ekafka's (with one, the actor's thread: the bench's tasks,
/// the actor and its serving task share it) or the raw side's sending and
/// polling threads. Threads busy all the time are that side's ceiling.
async fn timed<F: std::future::Future<Output = Duration>>(threads: usize, work: F) -> (Run, f64) {
    let (started, cpu_started) = (Instant::now(), cpu_time());
    let thread_cpu = work.await;
    let run = Run::since(started, cpu_started);
    let busy = thread_cpu.as_secs_f64() / run.elapsed.as_secs_f64() / threads as f64;
    (run, busy)
}

/// `kafka_keys` go in `[kafka]`, `producer_keys` in the producer's table.
fn config(brokers_line: &str, topic: &str, kafka_keys: &str, producer_keys: &str) -> String {
    let linger = std::env::var("BENCH_BATCH_TIMEOUT").unwrap_or_else(|_| "5ms".into());
    format!(
        "[kafka]\n{brokers_line}\n{kafka_keys}\n[kafka.producers.bench]\ntopic = {topic:?}\n\
         batchSize = 10000\nbatchTimeout = {linger:?}\nwriteTimeout = \"60s\"\n{producer_keys}\n"
    )
}

/// The raw side: `threads` threads share the producer, each enqueueing its
/// share as fast as the queue takes (polling for deliveries when it is
/// full), then polling until every message of the run is delivered. Returns
/// the threads' CPU time, summed.
fn raw_run(
    producer: &BaseProducer<Deliveries>,
    topic: &str,
    messages: usize,
    threads: usize,
) -> Duration {
    let delivered_before = producer.context().0.load(Ordering::Relaxed);
    let delivered = || producer.context().0.load(Ordering::Relaxed) - delivered_before;
    let send_share = |share: usize| {
        let thread_started = thread_cpu_time();
        let payload = [b'x'; MESSAGE_BYTES];
        for _ in 0..share {
            let mut record = BaseRecord::<(), [u8]>::to(topic).payload(&payload[..]);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        producer.poll(Duration::from_millis(1));
                        record = back;
                    }
                    Err((e, _)) => panic!("raw send failed: {e}"),
                }
            }
        }
        while delivered() < messages {
            producer.poll(Duration::from_millis(1));
        }
        thread_cpu_time() - thread_started
    };
    if threads == 1 {
        return send_share(messages);
    }
    std::thread::scope(|scope| {
        let senders: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| send_share(messages / threads)))
            .collect();
        senders
            .into_iter()
            .map(|sender| sender.join().expect("raw sender"))
            .sum()
    })
}

/// ekafka: synchronous writes of 1000 messages, several in flight at once, each
/// answered with every message's delivery, from this thread (the actor's)
/// or, with more than one thread, from that many Arbiters sharing the
/// producer, each its share of the messages and of the writes in flight.
/// Returns the writing threads' CPU time, summed.
async fn ekafka_run(producer: &ekafka::Producer, messages: usize, threads: usize) -> Duration {
    let in_flight = env_usize("BENCH_IN_FLIGHT", WRITES_IN_FLIGHT);
    if threads == 1 {
        let thread_started = thread_cpu_time();
        common::write_batches(producer, messages, MESSAGE_BYTES, WRITE_BATCH, in_flight).await;
        return thread_cpu_time() - thread_started;
    }
    let mut writers = Vec::new();
    for _ in 0..threads {
        let (arbiter, (done, finished)) = (actix::Arbiter::new(), tokio::sync::oneshot::channel());
        let producer = producer.clone();
        arbiter.spawn(async move {
            let thread_started = thread_cpu_time();
            let (share, in_flight) = (messages / threads, in_flight.div_ceil(threads));
            common::write_batches(&producer, share, MESSAGE_BYTES, WRITE_BATCH, in_flight).await;
            let _ = done.send(thread_cpu_time() - thread_started);
        });
        writers.push((arbiter, finished));
    }
    let mut cpu = Duration::ZERO;
    for (arbiter, finished) in writers {
        cpu += finished.await.expect("an ekafka writer");
        arbiter.stop();
    }
    cpu
}

/// One repetition on a fresh cluster: (raw, ekafka), each with how busy its
/// writing thread was, and the Go peer's run when it is given (first when
/// raw goes first, else last).
async fn repetition(
    configuration: &Configuration,
    messages: usize,
    raw_first: bool,
    go: Option<&std::path::Path>,
) -> ((Run, f64), (Run, f64), Option<Run>) {
    let (kafka_keys, producer_keys, threads) = (
        configuration.kafka_keys,
        configuration.producer_keys,
        configuration.threads,
    );
    let cluster = common::cluster();
    let topic = unique_name("bench");
    cluster.create_topic(&topic).expect("topic");
    let text = config(&cluster.brokers_line(), &topic, kafka_keys, producer_keys);
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .expect("config")
        .build()
        .expect("component");
    let raw: Arc<BaseProducer<Deliveries>> = Arc::new(
        kafka
            .producer_properties("bench")
            .expect("properties")
            .to_client_config()
            .create_with_context(Deliveries::default())
            .expect("raw producer"),
    );
    let actor = kafka.producer("bench").expect("producer actor");
    let raw_side = |count: usize| {
        let (raw, topic) = (Arc::clone(&raw), topic.clone());
        async move {
            tokio::task::spawn_blocking(move || raw_run(&raw, &topic, count, threads))
                .await
                .expect("raw side")
        }
    };
    let go_side = |go: &std::path::Path| {
        let (go, brokers, topic) = (
            go.to_path_buf(),
            cluster.bootstrap_servers().to_string(),
            topic.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let in_flight = env_usize("BENCH_IN_FLIGHT", WRITES_IN_FLIGHT);
            common::go_peer::throughput(&go, &brokers, &topic, messages, in_flight)
        })
    };
    let mut go_run = None;
    if let (Some(go), true) = (go, raw_first) {
        go_run = Some(go_side(go).await.expect("Go side"));
    }
    // Warm up both: connections, metadata, idempotent producer id.
    raw_side(WARM_UP).await;
    ekafka_run(&actor, WARM_UP, threads).await;
    let (raw_run, ours) = if raw_first {
        let raw_run = timed(threads, raw_side(messages)).await;
        (
            raw_run,
            timed(threads, ekafka_run(&actor, messages, threads)).await,
        )
    } else {
        let ours = timed(threads, ekafka_run(&actor, messages, threads)).await;
        (timed(threads, raw_side(messages)).await, ours)
    };
    assert!(actor.close().await.expect("close").is_clean());
    raw.flush(Duration::from_secs(10)).expect("raw flushed");
    if let (Some(go), false) = (go, raw_first) {
        go_run = Some(go_side(go).await.expect("Go side"));
    }
    (raw_run, ours, go_run)
}

/// Single-message writes: `writers` tasks each write one message at a time
/// until `messages` are written, through ekafka (`write([message])`) or a raw
/// `FutureProducer` (`send_result`, then the delivery), with the same
/// properties. One repetition on a fresh cluster: (raw, ekafka).
async fn single_message_repetition(writers: usize, messages: usize, raw_first: bool) -> (Run, Run) {
    let cluster = common::cluster();
    let topic = unique_name("bench");
    cluster.create_topic(&topic).expect("topic");
    let no_extras = "enableTraceInterceptor = false\nenableMetricInterceptor = false";
    let text = config(
        &cluster.brokers_line(),
        &topic,
        no_extras,
        "balancer = \"hash\"",
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .expect("config")
        .build()
        .expect("component");
    let raw: FutureProducer = kafka
        .producer_properties("bench")
        .expect("properties")
        .to_client_config()
        .create()
        .expect("raw producer");
    let actor = kafka.producer("bench").expect("producer actor");
    let per_writer = messages / writers;
    let raw_side = || {
        let (raw, topic) = (raw.clone(), topic.clone());
        async move {
            let mut tasks = JoinSet::new();
            for _ in 0..writers {
                let (raw, topic) = (raw.clone(), topic.clone());
                tasks.spawn_local(async move {
                    let payload = [b'x'; MESSAGE_BYTES];
                    for _ in 0..per_writer {
                        let record = FutureRecord::<(), [u8]>::to(&topic).payload(&payload[..]);
                        raw.send(record, Duration::from_secs(60))
                            .await
                            .expect("raw delivery");
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
            Duration::ZERO
        }
    };
    let ekafka_side = || {
        let actor = actor.clone();
        async move {
            let mut tasks = JoinSet::new();
            for _ in 0..writers {
                let actor = actor.clone();
                tasks.spawn_local(async move {
                    for _ in 0..per_writer {
                        let message = Message::new(vec![b'x'; MESSAGE_BYTES]);
                        let report = actor.write([message]).await.expect("write accepted");
                        assert!(report.is_success(), "{:?}", report.failures().next());
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
            Duration::ZERO
        }
    };
    raw_side().await;
    ekafka_side().await;
    let ((raw_run, _), (ours, _)) = if raw_first {
        let raw_run = timed(1, raw_side()).await;
        (raw_run, timed(1, ekafka_side()).await)
    } else {
        let ours = timed(1, ekafka_side()).await;
        (timed(1, raw_side()).await, ours)
    };
    assert!(actor.close().await.expect("close").is_clean());
    (raw_run, ours)
}

#[actix::main]
async fn main() {
    let messages = env_usize("BENCH_MESSAGES", 500_000);
    let repetitions = env_usize("BENCH_REPETITIONS", 5);
    let no_extras = "enableTraceInterceptor = false\nenableMetricInterceptor = false";
    let like_for_like = |label, threads| Configuration {
        label,
        kafka_keys: no_extras,
        producer_keys: "balancer = \"hash\"",
        threads,
    };
    let configurations = [
        // librdkafka's own partitioner and no header: identical messages and properties.
        like_for_like(LIKE_FOR_LIKE, 1),
        // The same from two threads sharing the producer: no side's work
        // waits for one thread.
        like_for_like("like for like, 2 writing threads (hash)", 2),
        // ekafka's default balancer: its partitioner callback runs for every message.
        Configuration {
            label: "roundRobin",
            kafka_keys: no_extras,
            producer_keys: "",
            threads: 1,
        },
        // Every default: the metrics interceptor (no trace is active: no header).
        Configuration {
            label: "defaults (metrics)",
            kafka_keys: "",
            producer_keys: "",
            threads: 1,
        },
    ];
    println!(
        "producer throughput: {messages} messages of {MESSAGE_BYTES} B per run, acks = all, \
         idempotence, 3 partitions, on {}; raw = BaseProducer with a delivery callback",
        common::measured_on()
    );
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    // The Go peer writes like for like (tuned alike: batches of 1,000, 10 ms).
    let go = if LIKE_FOR_LIKE.contains(only.as_str()) {
        common::go_peer::binary()
            .inspect_err(|why| println!("no Go peer: {why}"))
            .ok()
    } else {
        None
    };
    for configuration in configurations {
        let label = configuration.label;
        if !label.contains(only.as_str()) {
            continue;
        }
        println!("{label}:");
        let go = go.as_deref().filter(|_| label == LIKE_FOR_LIKE);
        let (mut ratios, mut against_go) = (Ratios::default(), common::go_peer::Ratios::default());
        for number in 0..repetitions {
            let raw_first = number % 2 == 0;
            let ((raw, raw_busy), (ours, ours_busy), go_run) =
                repetition(&configuration, messages, raw_first, go).await;
            ratios.record(raw, ours, messages, raw_first);
            println!(
                "    writing threads busy: raw {:.0}%, ekafka {:.0}%",
                raw_busy * 100.0,
                ours_busy * 100.0
            );
            if let Some(go_run) = go_run {
                against_go.record(ours, go_run, messages, raw_first);
            }
        }
        ratios.report("");
        against_go.report();
    }
    let single = env_usize("BENCH_SINGLE_MESSAGES", 50_000);
    for writers in [64, 1024] {
        if !"single-message writes".contains(only.as_str()) {
            continue;
        }
        // Every writer writes as many.
        let single = single / writers * writers;
        println!(
            "single-message writes, {writers} concurrent writers, {single} messages; raw = \
             FutureProducer awaiting each delivery:"
        );
        let mut ratios = Ratios::default();
        for number in 0..repetitions {
            let raw_first = number % 2 == 0;
            let (raw, ours) = single_message_repetition(writers, single, raw_first).await;
            ratios.record(raw, ours, single, raw_first);
        }
        ratios.report("");
    }
}
