//! The soak: a fleet under churn on Apache Kafka, for minutes.
//!
//! Three brokers (replication 3, `min.insync.replicas = 2`), a topic of 12
//! partitions, a producer writing keyed messages at a steady rate with
//! `acks = all` and recording every delivery, and three processes of one
//! consumer-server binary in one group (`worker.rs`). Meanwhile a broker is
//! SIGKILLed and restarted about every minute, the processes are restarted
//! one at a time about every 90 s as a rolling deploy does (SIGTERM, one in
//! four a SIGKILL instead), and one poison message comes mid-run. At the end
//! it checks, from the deliveries and the processes' own reports
//! (`check.rs`): every delivered message handled, per key in order,
//! duplicates only of messages not committed, exit statuses that tell the
//! truth, memory and files flat, the poison held in its one partition, no
//! message waiting longer than a bound; and prints the figures.
//!
//! `./soak.sh [--minutes N] [--static] [--protocol consumer]` runs it;
//! `EKAFKA_SOAK_MINUTES`, `EKAFKA_SOAK_STATIC=1` and
//! `EKAFKA_TEST_GROUP_PROTOCOL` are what it reads. Its own `main`: with
//! `--ignored` or `--include-ignored` it runs; with `EKAFKA_SOAK_WORKER` set
//! it is one worker.

#[path = "../common/mod.rs"]
mod common;

mod check;
mod log;
mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::kafka::KafkaCluster;
use common::scenarios::{self, in_system};
use ekafka::testing::unique_name;
use log::{Journal, Worker};

const WORKER: &str = "EKAFKA_SOAK_WORKER";
const PRODUCER: &str = "EKAFKA_SOAK_PRODUCER";
/// The producer process's number in the journal.
pub(crate) const PRODUCER_INDEX: usize = usize::MAX;
const PARTITIONS: i32 = 12;
const WORKERS: usize = 3;
/// Messages written per second.
const RATE: usize = 2_000;
/// Distinct keys.
const KEYS: u64 = 600;
/// ekafka's `sessionTimeout` (classic), and the broker's KIP-848 session.
const CLASSIC_SESSION: Duration = Duration::from_secs(30);
const CONSUMER_SESSION: Duration = Duration::from_secs(45);
/// The churn: a broker kill every minute (each down 10 s), a process
/// restart every 90 s.
const BROKER_EVERY: Duration = Duration::from_secs(60);
const BROKER_DOWN: Duration = Duration::from_secs(10);
const RESTART_EVERY: Duration = Duration::from_secs(90);
/// No churn in the last stretch, so the run ends settled.
const QUIET_END: Duration = Duration::from_secs(40);
/// How long the fleet may take to handle what is left once writing stops.
const CATCH_UP: Duration = Duration::from_secs(180);

fn main() {
    if let Ok(config) = std::env::var(WORKER) {
        return worker::run(&config);
    }
    if let Ok(config) = std::env::var(PRODUCER) {
        let seconds: f64 = std::env::var("EKAFKA_SOAK_LOAD_SECS")
            .unwrap()
            .parse()
            .unwrap();
        return worker::produce(&config, RATE, KEYS, Duration::from_secs_f64(seconds));
    }
    scenarios::run(
        "soak",
        &[(
            "a_fleet_under_broker_and_process_churn_keeps_every_guarantee",
            || in_system(soak),
        )],
    );
}

/// What the soak asked for, read from the environment.
pub(crate) struct Plan {
    pub(crate) duration: Duration,
    pub(crate) static_members: bool,
    pub(crate) consumer_protocol: bool,
    pub(crate) session: Duration,
}

impl Plan {
    fn from_env() -> Self {
        let minutes: f64 = std::env::var("EKAFKA_SOAK_MINUTES")
            .ok()
            .and_then(|m| m.parse().ok())
            .unwrap_or(3.0);
        let consumer_protocol = common::consumer_protocol();
        Plan {
            duration: Duration::from_secs_f64(minutes * 60.0),
            static_members: std::env::var("EKAFKA_SOAK_STATIC").is_ok_and(|s| s == "1"),
            consumer_protocol,
            session: if consumer_protocol {
                CONSUMER_SESSION
            } else {
                CLASSIC_SESSION
            },
        }
    }
}

/// A message the producer got a delivery for, when the soak heard of it.
pub(crate) struct Delivered {
    pub(crate) key: u64,
    pub(crate) at: Instant,
}

/// A process stopped by the soak.
pub(crate) struct Stop {
    pub(crate) worker: usize,
    pub(crate) signal: libc::c_int,
    pub(crate) at: Instant,
    /// The exit status's code (`None`: ended by the signal).
    pub(crate) code: Option<i32>,
    /// Its partitions just before (what it had handled in the last 3 s).
    pub(crate) partitions: Vec<i32>,
    /// Whether this was a rolling restart (a replacement started), or the end.
    pub(crate) rolling: bool,
}

/// Everything the run recorded, for `check.rs`.
pub(crate) struct Run {
    pub(crate) plan: Plan,
    pub(crate) journal: Vec<log::Line>,
    pub(crate) delivered: BTreeMap<(i32, i64), Delivered>,
    pub(crate) poison: Option<(i32, i64)>,
    pub(crate) stops: Vec<Stop>,
    pub(crate) broker_kills: usize,
    pub(crate) load: Duration,
    pub(crate) started: Instant,
    /// The producer's exit status's code.
    pub(crate) producer_exit: Option<i32>,
}

fn worker_config(
    base: &str,
    plan: &Plan,
    slot: usize,
    dir: &std::path::Path,
) -> std::path::PathBuf {
    let instance = if plan.static_members {
        format!("instanceID = \"soak-worker-{slot}\"\n")
    } else {
        String::new()
    };
    let text = base.replace("#INSTANCE#\n", &instance);
    let path = dir.join(format!("worker-{slot}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The partitions `worker` handled in the last 3 s.
fn recent_partitions(journal: &Journal, worker: usize) -> Vec<i32> {
    let since = Instant::now() - Duration::from_secs(3);
    let mut partitions: Vec<i32> = journal
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.worker == worker && l.at >= since)
        .filter_map(|l| match l.entry {
            log::Entry::Handled { partition, .. } => Some(partition),
            _ => None,
        })
        .collect();
    partitions.sort_unstable();
    partitions.dedup();
    partitions
}

async fn soak() {
    let plan = Plan::from_env();
    let cluster = Arc::new(KafkaCluster::start_with(
        3,
        &[(
            "EKAFKA_KAFKA_CONSUMER_SESSION_MS",
            &CONSUMER_SESSION.as_millis().to_string(),
        )],
    ));
    let topic = unique_name("soak");
    let group = unique_name("soak-group");
    cluster
        .cluster()
        .create_topic_with_partitions(&topic, PARTITIONS)
        .unwrap();
    let brokers: Vec<String> = cluster
        .bootstrap_servers()
        .split(',')
        .map(str::to_string)
        .collect();
    let protocol = if plan.consumer_protocol {
        "groupProtocol = \"consumer\"\n"
    } else {
        ""
    };
    let base = format!(
        "[kafka]\nbrokers = {brokers:?}\n\
         [kafka.producers.p1]\ntopic = {topic:?}\nbatchTimeout = \"5ms\"\nbalancer = \"hash\"\n\
         requiredAcks = -1\nwriteTimeout = \"30s\"\n\
         [kafka.consumerGroups.cg1]\ngroupID = {group:?}\ntopic = {topic:?}\n{protocol}#INSTANCE#\n\
         [kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\nretries = 3\nretryBackoff = \"20ms\"\n\
         maxRestarts = 3\nrestartBackoff = \"200ms\"\nrestartBackoffMax = \"5s\"\n"
    );
    let dir = std::env::temp_dir().join(&group);
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "  soak: {:?}, {} protocol, {} members, {RATE} msg/s on {PARTITIONS} partitions",
        plan.duration,
        if plan.consumer_protocol {
            "consumer"
        } else {
            "classic"
        },
        if plan.static_members {
            "static"
        } else {
            "dynamic"
        },
    );

    let journal: Journal = Arc::default();
    let mut workers: Vec<(usize, Worker)> = (0..WORKERS)
        .map(|slot| {
            let config = worker_config(&base, &plan, slot, &dir);
            (slot, Worker::start(slot, &config, &journal))
        })
        .collect();
    let mut next_index = WORKERS;

    // The producer, a process of its own writing for the whole load.
    let producer_config = dir.join("producer.toml");
    std::fs::write(&producer_config, base.replace("#INSTANCE#\n", "")).unwrap();
    let producer = Worker::spawn(
        PRODUCER_INDEX,
        &[
            (PRODUCER, producer_config.to_str().unwrap()),
            (
                "EKAFKA_SOAK_LOAD_SECS",
                &plan.duration.as_secs_f64().to_string(),
            ),
        ],
        &journal,
    );

    let started = Instant::now();
    let churn_until = started + plan.duration.saturating_sub(QUIET_END);
    let mut next_broker = started + Duration::from_secs(30);
    let mut next_restart = started + Duration::from_secs(30);
    let mut broker_kills = 0usize;
    let mut restarts = 0usize;
    let mut stops = Vec::new();
    let mut down: Option<(i32, Instant)> = None;
    while started.elapsed() < plan.duration {
        let now = Instant::now();
        if let Some((node, since)) = down {
            if now - since >= BROKER_DOWN {
                let cluster = Arc::clone(&cluster);
                tokio::task::spawn_blocking(move || cluster.restart(node))
                    .await
                    .unwrap();
                down = None;
            }
        } else if now >= next_broker && now < churn_until {
            let node = (broker_kills % 3) as i32 + 1;
            cluster.kill(node);
            broker_kills += 1;
            down = Some((node, now));
            next_broker = now + BROKER_EVERY;
        }
        if now >= next_restart && now < churn_until {
            let (slot, victim) = workers.remove(0);
            let signal = if restarts % 4 == 1 {
                libc::SIGKILL
            } else {
                libc::SIGTERM
            };
            restarts += 1;
            let partitions = recent_partitions(&journal, victim.index);
            let index = victim.index;
            let at = Instant::now();
            let code = tokio::task::spawn_blocking(move || victim.stop(signal))
                .await
                .unwrap();
            stops.push(Stop {
                worker: index,
                signal,
                at,
                code,
                partitions,
                rolling: true,
            });
            let config = worker_config(&base, &plan, slot, &dir);
            workers.push((slot, Worker::start(next_index, &config, &journal)));
            next_index += 1;
            next_restart = Instant::now() + RESTART_EVERY;
        }
        // The soak's own clock: churn is scheduled in time, not on events.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some((node, _)) = down {
        cluster.restart(node);
    }
    let producer_exit = tokio::task::spawn_blocking(move || producer.wait())
        .await
        .unwrap();
    let load = started.elapsed();

    // Until every delivered message is handled (but those the poison holds).
    let caught_up = Instant::now();
    loop {
        let missing = check::unhandled(&journal.lock().unwrap());
        if missing == 0 {
            break;
        }
        if caught_up.elapsed() > CATCH_UP {
            println!("  {missing} messages still unhandled {CATCH_UP:?} after writing stopped");
            break;
        }
        // Polling what the workers' output threads record.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for (_, victim) in workers {
        let partitions = recent_partitions(&journal, victim.index);
        let (index, at) = (victim.index, Instant::now());
        let code = tokio::task::spawn_blocking(move || victim.stop(libc::SIGTERM))
            .await
            .unwrap();
        stops.push(Stop {
            worker: index,
            signal: libc::SIGTERM,
            at,
            code,
            partitions,
            rolling: false,
        });
    }
    let _ = std::fs::remove_dir_all(&dir);

    let journal = journal.lock().unwrap().clone();
    let run = Run {
        plan,
        delivered: check::deliveries(&journal),
        poison: check::poison(&journal),
        journal,
        stops,
        broker_kills,
        load,
        started,
        producer_exit,
    };
    let violations = check::report(&run);
    assert!(
        violations.is_empty(),
        "the soak broke {} guarantee(s):\n  {}",
        violations.len(),
        violations.join("\n  ")
    );
}
