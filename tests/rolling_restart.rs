//! A rolling restart right after the group's coordinator is killed, on a
//! 3-broker Apache Kafka cluster: three server processes share a group; the
//! coordinator is SIGKILLed, 1.5 s later one process gets SIGTERM and a new
//! one starts in its place, as an orchestrator restarting a service during a
//! broker's failure would. What users feel is the time the stopped process's
//! partitions go unhandled: from the SIGTERM until another process handles
//! each of them. A member that left cleanly costs a rebalance (seconds); one
//! whose leave never reached the group costs the group's whole session.
//!
//! Run with the group protocol of `EKAFKA_TEST_GROUP_PROTOCOL` (`classic`
//! unless set), with each protocol's production session: 30 s (ekafka's
//! `sessionTimeout`) and the broker's 45 s for KIP-848. Prints each round's
//! unowned time; fails when a stopped process's partitions wait out the
//! session.
//!
//! Its own `main` (no libtest): with `--ignored` or `--include-ignored` (as
//! `./e2e.sh` runs it) it runs; without, it reports itself ignored. With
//! `EKAFKA_ROLLING_WORKER` set it is one server process.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kafka::KafkaCluster;
use common::scenarios::{self, in_system, Scenario};
use ekafka::config::ConsumerServerConfig;
use ekafka::testing::unique_name;
use ekafka::{App, ConsumedMessage, Ekafka, Message};

const WORKER: &str = "EKAFKA_ROLLING_WORKER";
/// How many processes are restarted, one after another (`EKAFKA_ROLLING_ROUNDS`).
const ROUNDS: usize = 3;
const PARTITIONS: i32 = 12;
/// How long any one wait may take.
const PHASE: Duration = Duration::from_secs(150);
/// The classic session, ekafka's default `sessionTimeout`.
const CLASSIC_SESSION: Duration = Duration::from_secs(30);
/// KIP-848's session, the broker's default `group.consumer.session.timeout.ms`.
const CONSUMER_SESSION: Duration = Duration::from_secs(45);

fn main() {
    if let Ok(config) = std::env::var(WORKER) {
        return worker(&config);
    }
    let scenarios: [(&str, Scenario); 1] = [(
        "a_rolling_restart_right_after_a_coordinator_kill_does_not_wait_out_the_session",
        || in_system(a_rolling_restart_right_after_a_coordinator_kill),
    )];
    scenarios::run("rolling_restart", &scenarios);
}

/// One message a process handled, and when the test heard of it.
struct Handled {
    worker: usize,
    partition: i32,
    at: Instant,
}

type Log = Arc<Mutex<Vec<Handled>>>;

/// A server process: this binary with `EKAFKA_ROLLING_WORKER` set.
struct Worker {
    index: usize,
    child: Child,
}

impl Worker {
    fn start(index: usize, config: &std::path::Path, log: &Log) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(WORKER, config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("worker process starts");
        let stdout = child.stdout.take().expect("piped");
        let log = Arc::clone(log);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(partition) = line.strip_prefix("HANDLED ") {
                    log.lock().unwrap().push(Handled {
                        worker: index,
                        partition: partition.parse().unwrap(),
                        at: Instant::now(),
                    });
                }
            }
        });
        Worker { index, child }
    }

    /// SIGTERM, and the exit status must be success.
    fn terminate(&mut self) {
        // SAFETY: kill(2) on our own child's pid; no memory is shared.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "worker {} exited with {status}",
            self.index
        );
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server of the config file at `config`, printing the partition of each
/// message it handles until SIGTERM.
fn worker(config: &str) {
    // What the member says about its leave.
    tracing_subscriber::fmt()
        .with_env_filter("ekafka::consumer::group::engine::leave=debug")
        .with_writer(std::io::stderr)
        .init();
    let text = std::fs::read_to_string(config).expect("worker config");
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    let server = ConsumerServerConfig::from_toml_str(&text, "kafkaConsumerServers.s1").unwrap();
    let served = App::new(kafka)
        .each_message(server, |m: ConsumedMessage| async move {
            println!("HANDLED {}", m.partition());
            Ok(())
        })
        .run();
    if let Err(e) = served {
        eprintln!("worker failed: {e}");
        std::process::exit(1);
    }
}

/// Waits until `check` holds, or panics naming `what` after [`PHASE`].
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < PHASE, "timed out waiting for {what}");
        // Polling what the workers' output threads record.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The partitions `worker` handled since `since`.
fn partitions_of(log: &Log, worker: usize, since: Instant) -> BTreeSet<i32> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|h| h.worker == worker && h.at >= since)
        .map(|h| h.partition)
        .collect()
}

/// Whether the processes' recent `shares` are those of a settled group: none
/// empty, none overlapping, sizes within one of each other.
fn settled(shares: &[BTreeSet<i32>]) -> bool {
    let sizes = shares.iter().map(BTreeSet::len);
    let (smallest, largest) = (sizes.clone().min(), sizes.max());
    let total: usize = shares.iter().map(BTreeSet::len).sum();
    let distinct = shares.iter().flatten().collect::<BTreeSet<_>>().len();
    matches!((smallest, largest), (Some(s), Some(l)) if s > 0 && l - s <= 1) && total == distinct
}

async fn a_rolling_restart_right_after_a_coordinator_kill() {
    let consumer_protocol = common::consumer_protocol();
    let session = if consumer_protocol {
        CONSUMER_SESSION
    } else {
        CLASSIC_SESSION
    };
    // Production timings, not the quick ones of the other tests: the point is
    // what a missed leave costs.
    let cluster = KafkaCluster::start_with(
        3,
        &[(
            "EKAFKA_KAFKA_CONSUMER_SESSION_MS",
            &session.as_millis().to_string(),
        )],
    );
    let topic = unique_name("topic");
    let group = unique_name("group");
    cluster
        .cluster()
        .create_topic_with_partitions(&topic, PARTITIONS)
        .unwrap();
    let protocol_keys = if consumer_protocol {
        "groupProtocol = \"consumer\"\n"
    } else {
        ""
    };
    let text = format!(
        "[kafka]\nbrokers = {:?}\n\
         [kafka.producers.p1]\ntopic = {topic:?}\nbatchTimeout = \"5ms\"\nbalancer = \"hash\"\n\
         [kafka.consumerGroups.cg1]\ngroupID = {group:?}\ntopic = {topic:?}\n{protocol_keys}\
         [kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\n",
        cluster.bootstrap_servers().split(',').collect::<Vec<_>>(),
    );
    let config = std::env::temp_dir().join(format!("{group}.toml"));
    std::fs::write(&config, &text).unwrap();
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();

    // 300 messages a second over every partition, until the end.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (producer, stop) = (kafka.producer("p1").unwrap(), Arc::clone(&stop));
        actix::spawn(async move {
            let mut seq = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let messages = (seq..seq + 30)
                    .map(|i| Message::new(format!("m{i}")).with_key(format!("k{}", i % 48)));
                seq += 30;
                // Writes during the broker's kill may fail: the stream is only load.
                let _ = producer.write(messages).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let log: Log = Arc::default();
    let mut workers: Vec<Worker> = (0..3).map(|i| Worker::start(i, &config, &log)).collect();
    let mut unowned = Vec::new();
    let rounds = std::env::var("EKAFKA_ROLLING_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS);
    for round in 0..rounds {
        // The group has settled: over the last 3 s every live process handled
        // a balanced share and no partition was handled by two of them. Under
        // KIP-848 a group converges over heartbeats (5 s apart by default), so a
        // kill before that would measure a member still giving partitions away,
        // and credit the stopped process with partitions it no longer owns.
        let live: Vec<usize> = workers.iter().map(|w| w.index).collect();
        let started = Instant::now();
        let mut shares = Vec::new();
        until("every process handling a balanced share of its own", || {
            if started.elapsed() < Duration::from_secs(3) {
                return false;
            }
            let since = Instant::now() - Duration::from_secs(3);
            shares = live
                .iter()
                .map(|w| partitions_of(&log, *w, since))
                .collect();
            settled(&shares)
        })
        .await;
        let mut victim = workers.remove(0);
        let victim_index = victim.index;
        let victim_partitions = shares.swap_remove(0);
        let coordinator = cluster.coordinator(&group);
        cluster.kill(coordinator);
        // The scenario's timing: the SIGTERM comes 1.5 s after the kill.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let terminated = Instant::now();
        let stopped = tokio::task::spawn_blocking(move || {
            victim.terminate();
            (victim, Instant::now())
        })
        .await
        .unwrap();
        let exit_took = stopped.1 - terminated;
        drop(stopped.0);
        workers.push(Worker::start(3 + round, &config, &log));
        // Until another process handles each of the stopped one's partitions.
        let mut first_handled: BTreeMap<i32, Duration> = BTreeMap::new();
        until("the stopped process's partitions handled by others", || {
            for h in log.lock().unwrap().iter() {
                if h.at > terminated
                    && h.worker != victim_index
                    && victim_partitions.contains(&h.partition)
                {
                    first_handled
                        .entry(h.partition)
                        .or_insert(h.at - terminated);
                }
            }
            first_handled.len() == victim_partitions.len()
        })
        .await;
        let worst = first_handled.values().max().copied().unwrap_or_default();
        println!(
            "  round {round}: coordinator {coordinator} killed, process {victim_index} \
             (partitions {victim_partitions:?}) stopped 1.5 s later, exited in {exit_took:?}; \
             its partitions handled again after {worst:?} (at most)"
        );
        unowned.push(worst);
        cluster.restart(coordinator);
    }
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    for worker in &mut workers {
        worker.terminate();
    }
    let _ = std::fs::remove_file(&config);
    println!(
        "  {} protocol, session {session:?}: unowned after each SIGTERM {unowned:?}",
        if consumer_protocol {
            "consumer"
        } else {
            "classic"
        }
    );
    for (round, time) in unowned.iter().enumerate() {
        assert!(
            *time < session,
            "round {round}: the stopped process's partitions waited {time:?}, the whole \
             {session:?} session: its leave never reached the group"
        );
    }
}
