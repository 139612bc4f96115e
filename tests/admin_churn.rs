//! Every admin operation, called in a loop for minutes while the brokers of a
//! 3-broker Apache Kafka cluster are SIGKILLed and restarted: one at a time
//! (often the group's coordinator), and once two at a time, so the cluster
//! loses its quorum and elects its controller and coordinators again, as at
//! start-up. The process must live through it, and every request must be
//! answered or fail with an error naming what it was about; once the
//! brokers are back, every operation is answered again.
//!
//! librdkafka 2.12 aborts the process in this run unless ekafka keeps group
//! requests from hitting its use-after-free (`src/admin/request_client.rs`).
//!
//! Its own `main` (no libtest): with `--ignored` or `--include-ignored` (as
//! `./e2e.sh` runs it) it runs; without, it reports itself ignored, as a plain
//! `cargo test` has no Kafka. `EKAFKA_ADMIN_CHURN_SECS` sets how long the
//! brokers are churned (180 s unless set). Valgrind can run this binary:
//! `valgrind target/debug/deps/admin_churn-* --include-ignored`.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kafka::KafkaCluster;
use common::scenarios::{self, in_system, Scenario};
use ekafka::admin::{Admin, OffsetReset, TopicSpec};
use ekafka::testing::unique_name;
use ekafka::{Ekafka, Error, Message};

/// How long one admin request may take (short, so requests are given up
/// on while brokers are away, which is the path that used to abort).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the brokers may take to answer every operation again at the end.
const RECOVERY: Duration = Duration::from_secs(120);
/// Partitions of the topic the group reads.
const PARTITIONS: i32 = 6;

fn main() {
    let scenarios: [(&str, Scenario); 1] = [(
        "admin_requests_survive_brokers_killed_and_restarted",
        || {
            let churn = std::env::var("EKAFKA_ADMIN_CHURN_SECS")
                .ok()
                .and_then(|s| s.parse().ok())
                .map_or(Duration::from_secs(180), Duration::from_secs);
            in_system(|| admin_requests_survive_brokers_killed_and_restarted(churn))
        },
    )];
    scenarios::run("admin_churn", &scenarios);
}

/// What the loop asks of the cluster.
struct Targets {
    topic: String,
    /// A group with committed offsets and no members.
    group: String,
}

/// Each operation's answers and failures, by operation.
#[derive(Default)]
struct Tally {
    answered: BTreeMap<&'static str, usize>,
    /// Failures by operation and error code.
    failed: BTreeMap<(&'static str, String), usize>,
    /// One message per (operation, code), to show what users see.
    samples: BTreeMap<(&'static str, String), String>,
    slowest: Duration,
}

impl Tally {
    /// Records one request's outcome; an error must name one of `about`.
    fn record<T>(
        &mut self,
        operation: &'static str,
        about: &[&str],
        took: Duration,
        outcome: Result<T, Error>,
    ) {
        self.slowest = self.slowest.max(took);
        match outcome {
            Ok(_) => *self.answered.entry(operation).or_default() += 1,
            Err(error) => {
                let text = error.to_string();
                assert!(
                    about.iter().any(|name| text.contains(name)),
                    "{operation}: the error does not name {about:?}: {text}"
                );
                assert!(
                    matches!(error, Error::Admin { .. }),
                    "{operation}: an admin failure is Error::Admin: {error:?}"
                );
                let code = format!("{:?}", error.kafka_code());
                *self.failed.entry((operation, code.clone())).or_default() += 1;
                self.samples.entry((operation, code)).or_insert(text);
            }
        }
    }
}

/// Calls every admin operation once, recording each outcome; returns the
/// operations that failed.
async fn every_operation(
    admin: &Admin,
    targets: &Targets,
    round: usize,
    tally: &Mutex<Tally>,
) -> Vec<&'static str> {
    let mut failed = Vec::new();
    macro_rules! call {
        ($operation:literal, $about:expr, $request:expr) => {{
            let started = Instant::now();
            let outcome = $request.await;
            if outcome.is_err() {
                failed.push($operation);
            }
            tally
                .lock()
                .unwrap()
                .record($operation, $about, started.elapsed(), outcome);
        }};
    }
    let (topic, group) = (targets.topic.as_str(), targets.group.as_str());
    // A group the cluster has never seen: its coordinator is looked up anew.
    let fresh = unique_name("never-used");
    let reset = if round.is_multiple_of(2) {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    };
    call!("list_groups", &["the consumer groups"], admin.list_groups());
    call!("describe_group", &[group], admin.describe_group(group));
    call!(
        "describe_group (new group)",
        &[&fresh],
        admin.describe_group(&fresh)
    );
    call!("group_offsets", &[group], admin.group_offsets(group));
    call!(
        "group_offsets (new group)",
        &[&fresh],
        admin.group_offsets(&fresh)
    );
    call!("group_lag", &[group], admin.group_lag(group));
    call!(
        "reset_offsets",
        &[group, topic],
        admin.reset_offsets(group, topic, reset)
    );
    call!("describe_topic", &[topic], admin.describe_topic(topic));
    call!("topic_config", &[topic], admin.topic_config(topic));
    let retention = (3_600_000 + round).to_string();
    call!(
        "alter_topic_config",
        &[topic],
        admin.alter_topic_config(topic, [("retention.ms", retention)])
    );
    call!(
        "describe_cluster",
        &["the cluster"],
        admin.describe_cluster()
    );
    let made = unique_name("churn");
    call!(
        "create_topic",
        &[&made],
        admin.create_topic(TopicSpec::new(&made, 1).replication(3))
    );
    call!(
        "delete_topics",
        &[&made],
        admin.delete_topics(&[made.as_str()])
    );
    failed
}

async fn admin_requests_survive_brokers_killed_and_restarted(churn: Duration) {
    let cluster = Arc::new(KafkaCluster::start(3));
    let topic = unique_name("topic");
    let group = unique_name("group");
    let kafka = Ekafka::from_toml_str(
        &format!(
            "[kafka]\nbrokers = {:?}\n[kafka.admin]\ntimeout = \"{}s\"\n\
             [kafka.producers.p1]\ntopic = {topic:?}\nbatchTimeout = \"5ms\"\n",
            cluster.bootstrap_servers().split(',').collect::<Vec<_>>(),
            ADMIN_TIMEOUT.as_secs()
        ),
        "kafka",
    )
    .unwrap()
    .build()
    .unwrap();
    let admin = kafka.admin().unwrap();
    admin
        .create_topic(TopicSpec::new(&topic, PARTITIONS).replication(3))
        .await
        .unwrap();
    let producer = kafka.producer("p1").unwrap();
    let messages = (0..600).map(|i| Message::new(format!("m{i}")).with_key(format!("k{i}")));
    let written = producer.write(messages).await.unwrap();
    assert!(written.is_success(), "{written:?}");
    // The group's offsets, committed by a reset (it has no members).
    admin
        .reset_offsets(&group, &topic, OffsetReset::Latest)
        .await
        .unwrap();
    let targets = Arc::new(Targets { topic, group });

    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    // Two callers at once, so requests share a client while one is given up.
    let callers: Vec<_> = (0..2)
        .map(|caller| {
            let (admin, targets, tally, stop) = (
                admin.clone(),
                Arc::clone(&targets),
                Arc::clone(&tally),
                Arc::clone(&stop),
            );
            actix::spawn(async move {
                let mut round = caller;
                while !stop.load(Ordering::SeqCst) {
                    every_operation(&admin, &targets, round, &tally).await;
                    round += 2;
                }
                round / 2
            })
        })
        .collect();

    let churner = {
        let (cluster, group) = (Arc::clone(&cluster), targets.group.clone());
        tokio::task::spawn_blocking(move || churn_brokers(&cluster, &group, churn))
    };
    let kills = churner.await.expect("the churn ran");
    stop.store(true, Ordering::SeqCst);
    let mut rounds = 0;
    for caller in callers {
        rounds += caller.await.expect("a caller did not panic");
    }

    // Every broker is back: every operation is answered again.
    let recovered = Instant::now();
    let mut round = rounds * 2;
    loop {
        let failing = every_operation(&admin, &targets, round, &tally).await;
        if failing.is_empty() {
            break;
        }
        assert!(
            recovered.elapsed() < RECOVERY,
            "operations still failing {RECOVERY:?} after the last restart: {failing:?}"
        );
        round += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let tally = tally.lock().unwrap();
    println!(
        "  {} broker kills over {churn:?}; {rounds} rounds of every operation; \
         answered again {:?} after the last restart; slowest request {:?}",
        kills.len(),
        recovered.elapsed(),
        tally.slowest
    );
    println!("  kills: {kills:?}");
    for (operation, answered) in &tally.answered {
        let failures: Vec<String> = tally
            .failed
            .iter()
            .filter(|((op, _), _)| op == operation)
            .map(|((_, code), n)| format!("{n} {code}"))
            .collect();
        println!("  {operation}: {answered} answered, failed: {failures:?}");
    }
    for ((operation, code), text) in &tally.samples {
        println!("  e.g. {operation} {code}: {text}");
    }
}

/// Kills and restarts brokers until `churn` has passed: one at a time, the
/// group's coordinator every other time, and once (halfway) two at once.
/// Returns what was killed, in order.
fn churn_brokers(cluster: &KafkaCluster, group: &str, churn: Duration) -> Vec<Vec<i32>> {
    let started = Instant::now();
    let mut kills = Vec::new();
    let mut quorum_lost = false;
    let mut turn = 0;
    while started.elapsed() < churn {
        // The load's schedule, not a synchronisation: requests run meanwhile.
        std::thread::sleep(Duration::from_secs(8));
        let nodes = if !quorum_lost && started.elapsed() >= churn / 2 {
            quorum_lost = true;
            vec![1 + turn % 3, 1 + (turn + 1) % 3]
        } else if turn % 2 == 0 {
            match cluster.coordinator(group) {
                coordinator @ 1..=3 => vec![coordinator],
                _ => vec![1 + turn % 3],
            }
        } else {
            vec![1 + turn % 3]
        };
        for &node in &nodes {
            cluster.kill(node);
        }
        std::thread::sleep(Duration::from_secs(6));
        cluster.restart_nodes(&nodes);
        kills.push(nodes);
        turn += 1;
    }
    kills
}
