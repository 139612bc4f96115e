//! The soak's processes, telling the soak what they do on stdout, one line
//! each. A consumer worker is the same consumer-server binary a service
//! would run, inside an `App`:
//!
//! - `H partition offset` a message handled;
//! - `C partition offset` a commit confirmed (the next offset to read);
//! - `A partitions` / `R partitions` assigned / revoked (or lost);
//! - `M rss_kib fds` its memory and open files, every few seconds;
//! - `EXIT error` the App's error, before exiting with status 2.
//!
//! The handler takes 2 ms; one message in 97 fails recoverably on its first
//! try (and goes through on the retry); the poison message fails for good.
//!
//! The producer process writes keyed messages at a steady rate with
//! `acks = all`, up to 16 writes in flight, for the load's duration, with
//! the poison message halfway; then it closes (flushing) and exits:
//!
//! - `D partition offset key` a message delivered;
//! - `P partition offset` the poison message delivered;
//! - `M rss_kib fds` as above.

use std::collections::HashSet;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ekafka::config::ConsumerServerConfig;
use ekafka::consumer::{GroupEvent, PartitionOffset};
use ekafka::interceptor::{ClientInfo, Interceptor};
use ekafka::server::HandlerError;
use ekafka::{App, CommitFailure, ConsumedMessage, Ekafka, Message, Outcome};

/// The value of the message no handler can handle.
pub(crate) const POISON: &str = "POISON";
/// How often the worker reports its memory and open files.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Prints one line at once: the soak reads it as it comes.
fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn partitions<'a>(ps: impl Iterator<Item = &'a ekafka::consumer::TopicPartition>) -> String {
    ps.map(|p| p.partition.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Reports the group's events and confirmed commits.
struct Reporter;

impl Interceptor for Reporter {
    fn name(&self) -> &str {
        "soak-reporter"
    }

    fn after_commit(
        &self,
        _: &ClientInfo,
        offsets: &[PartitionOffset],
        result: Result<(), &CommitFailure>,
        _: Duration,
    ) {
        if result.is_ok() {
            for o in offsets {
                say(format!("C {} {}", o.partition.partition, o.offset));
            }
        }
    }

    fn on_group_event(&self, _: &ClientInfo, event: &GroupEvent) {
        match event {
            GroupEvent::Assigned(a) => say(format!(
                "A {}",
                partitions(a.partitions.iter().map(|(p, _)| p))
            )),
            GroupEvent::Revoked(r) => say(format!("R {}", partitions(r.partitions.iter()))),
            _ => {}
        }
    }
}

/// This process's resident memory (KiB) and open file descriptors.
pub(crate) fn usage() -> (u64, usize) {
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count);
    (rss, fds)
}

fn sample_usage_forever() {
    std::thread::spawn(|| loop {
        let (rss, fds) = usage();
        say(format!("M {rss} {fds}"));
        std::thread::sleep(SAMPLE_EVERY);
    });
}

/// Writes `rate` messages a second over `keys` keys through producer `p1`
/// of the config file at `config`, for `load`, the poison message halfway.
pub(crate) fn produce(config: &str, rate: usize, keys: u64, load: Duration) {
    let text = std::fs::read_to_string(config).expect("producer config");
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    sample_usage_forever();
    actix::System::new().block_on(async move {
        let producer = kafka.producer("p1").unwrap();
        let in_flight = Arc::new(tokio::sync::Semaphore::new(16));
        let started = std::time::Instant::now();
        let mut poisoned = false;
        let mut seq = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while started.elapsed() < load {
            tick.tick().await;
            if !poisoned && started.elapsed() >= load / 2 {
                poisoned = true;
                let report = producer
                    .write([Message::new(POISON).with_key("poison")])
                    .await
                    .unwrap();
                if let Some(Outcome::Delivered(d)) = report.outcomes().first() {
                    say(format!("P {} {}", d.partition, d.offset));
                }
            }
            let permit = Arc::clone(&in_flight).acquire_owned().await.unwrap();
            let batch: Vec<u64> = (seq..seq + (rate / 100) as u64).collect();
            seq += batch.len() as u64;
            let producer = producer.clone();
            actix::spawn(async move {
                let messages = batch
                    .iter()
                    .map(|s| Message::new(s.to_string()).with_key(format!("k{}", s % keys)));
                // A write failing while a broker is down is not a delivery.
                if let Ok(report) = producer.write(messages).await {
                    for (outcome, s) in report.outcomes().iter().zip(&batch) {
                        if let Outcome::Delivered(d) = outcome {
                            say(format!("D {} {} {}", d.partition, d.offset, s % keys));
                        }
                    }
                }
                drop(permit);
            });
        }
        // Every write answered, then a flushing close.
        let _ = in_flight.acquire_many(16).await;
        let closed = producer.close().await.expect("the producer closes");
        if !closed.is_clean() {
            say(format!(
                "EXIT {} messages undelivered at close",
                closed.undelivered.len()
            ));
            std::process::exit(2);
        }
    });
}

/// Runs the worker of the config file at `config` until SIGTERM.
pub(crate) fn run(config: &str) {
    let text = std::fs::read_to_string(config).expect("worker config");
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .with_interceptor(Reporter)
        .build()
        .unwrap();
    let server = ConsumerServerConfig::from_toml_str(&text, "kafkaConsumerServers.s1").unwrap();
    sample_usage_forever();
    let failed_once: Arc<Mutex<HashSet<(i32, i64)>>> = Arc::default();
    let served = App::new(kafka)
        .each_message(server, move |m: ConsumedMessage| {
            let failed_once = Arc::clone(&failed_once);
            async move {
                tokio::time::sleep(Duration::from_millis(2)).await; // the work
                if m.value_str() == Some(POISON) {
                    return Err(HandlerError::fatal("the poison message"));
                }
                let seq: u64 = m.value_str().and_then(|v| v.parse().ok()).unwrap_or(0);
                if seq % 97 == 13
                    && failed_once
                        .lock()
                        .unwrap()
                        .insert((m.partition(), m.offset()))
                {
                    return Err(HandlerError::recoverable("a dependency blinked"));
                }
                say(format!("H {} {}", m.partition(), m.offset()));
                Ok(())
            }
        })
        .run();
    if let Err(e) = served {
        say(format!("EXIT {e}"));
        std::process::exit(2);
    }
}
