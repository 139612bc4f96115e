//! The broker process dies during a stream and comes back: a tansu broker with
//! sqlite storage is killed (SIGKILL) while a producer writes and a consumer
//! server handles, then started again on the same port and storage.
//!
//! What must hold: every message of every write gets an outcome (delivered, or
//! failed and handed back); the server resumes by itself; and every message the
//! broker acknowledged is handled: none lost. Duplicates are allowed (delivery
//! is at least once) and counted.
//!
//! It starts a broker of its own, so it needs the tansu binary and is ignored by
//! a plain `cargo test`; `./e2e.sh` runs it.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::tansu::Tansu;
use common::{next, server_setup, Fixture};
use ekafka::producer::Outcome;
use ekafka::Message;

/// Messages per write; the writer writes until told to stop.
const PER_WRITE: usize = 20;
/// Handled messages before the kill, and again after the restart before the
/// writer stops: the kill lands in the middle of a running stream.
const HANDLED_BEFORE_KILL: usize = 300;
const HANDLED_AFTER_RESTART: usize = 300;
/// How long the stream may take after the restart.
const STREAM_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Written {
    delivered: HashSet<String>,
    failed: Vec<String>,
    total: usize,
}

#[actix::test]
#[ignore = "needs the tansu broker: ./e2e.sh runs it"]
async fn killing_the_broker_mid_stream_loses_no_acknowledged_message() {
    let mut broker = Tansu::start(false);
    let fixture = Fixture::on(broker.cluster());
    // Long enough for a write to outlast the broker's absence; restarts are
    // unlimited here, so the stream decides the test, not the restart budget.
    let (kafka, config) = server_setup(
        &fixture,
        "maxRestarts = 100",
        "writeTimeout = \"60s\"\nmaxRestarts = 100",
    );

    let (server, mut handled) = common::value_reporting_server(&kafka, &config).await;

    // The producer writes its stream in the background until told to stop,
    // recording each outcome.
    let producer = kafka.producer("p1").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // When the write now waiting for its outcomes started (none: no write waits).
    let waiting_since: std::sync::Arc<std::sync::Mutex<Option<Instant>>> = Default::default();
    let writer = actix::spawn({
        let stop = std::sync::Arc::clone(&stop);
        let waiting_since = std::sync::Arc::clone(&waiting_since);
        async move {
            let mut written = Written::default();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let values: Vec<String> = (n..n + PER_WRITE).map(|i| format!("m-{i}")).collect();
                n += PER_WRITE;
                let messages = values
                    .iter()
                    .map(|v| Message::new(v.clone()).with_key(v.clone()));
                *waiting_since.lock().unwrap() = Some(Instant::now());
                let report = producer.write(messages).await.expect("write accepted");
                *waiting_since.lock().unwrap() = None;
                assert_eq!(
                    report.outcomes().len(),
                    PER_WRITE,
                    "one outcome per message"
                );
                for (value, outcome) in values.into_iter().zip(report.outcomes()) {
                    match outcome {
                        Outcome::Delivered(_) => {
                            written.delivered.insert(value);
                        }
                        Outcome::Failed(error) => {
                            assert_eq!(
                                error.message.value.as_deref(),
                                Some(value.as_bytes()),
                                "the failed message is handed back"
                            );
                            println!("failed: {error}");
                            written.failed.push(value);
                        }
                        Outcome::Enqueued => panic!("synchronous writes report delivery"),
                    }
                }
            }
            written.total = n;
            written
        }
    });

    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut count = 0;
    while count < HANDLED_BEFORE_KILL {
        *seen
            .entry(next(&mut handled, "messages before the kill").await)
            .or_default() += 1;
        count += 1;
    }
    broker.kill();
    let killed = Instant::now();
    // Down until a write has waited a second for its outcomes: the producer
    // holds pending messages while there is no broker.
    common::eventually("a write waiting on the dead broker", || {
        waiting_since
            .lock()
            .unwrap()
            .filter(|since| since.elapsed() > Duration::from_secs(1))
    })
    .await;
    broker.restart();
    let restarted = Instant::now();
    println!("broker down for {:?}", restarted - killed);
    while count < HANDLED_BEFORE_KILL + HANDLED_AFTER_RESTART {
        let value = tokio::time::timeout(STREAM_TIMEOUT, handled.recv())
            .await
            .expect("the server resumes after the broker restart")
            .expect("server alive");
        *seen.entry(value).or_default() += 1;
        count += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);

    let written = tokio::time::timeout(STREAM_TIMEOUT, writer)
        .await
        .expect("the producer finishes its stream after the restart")
        .expect("writer did not panic");
    while !written.delivered.iter().all(|v| seen.contains_key(v)) {
        assert!(
            restarted.elapsed() < STREAM_TIMEOUT,
            "{} acknowledged messages never handled",
            written
                .delivered
                .iter()
                .filter(|v| !seen.contains_key(*v))
                .count()
        );
        let value = tokio::time::timeout(STREAM_TIMEOUT, handled.recv())
            .await
            .expect("the server resumes after the restart")
            .expect("server alive");
        *seen.entry(value).or_default() += 1;
    }

    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    println!(
        "{} delivered, {} failed and handed back, {} handled ({} duplicates), server restarts {}",
        written.delivered.len(),
        written.failed.len(),
        seen.len(),
        duplicates,
        server.restarts()
    );
    assert_eq!(
        written.delivered.len() + written.failed.len(),
        written.total,
        "every message delivered or reported failed"
    );
    server.close().await.unwrap();
    kafka.close().await.unwrap();
}
