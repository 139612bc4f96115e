//! What both benches measure with and print: a side's run (time and CPU), the
//! paired ratios of the repetitions, and their min/median/max.

// Each bench uses part of what is here.
#![allow(dead_code)]

pub(crate) mod go_peer;

use std::time::{Duration, Instant};

use ekafka::testing::{TestCluster, BROKERS_VARIABLE};

/// The cluster a repetition runs on: the broker `EKAFKA_TEST_BROKERS` names
/// (`./e2e.sh --bench` starts Apache Kafka and sets it), else a new embedded
/// cluster, fresh for each repetition.
pub(crate) fn cluster() -> TestCluster {
    TestCluster::from_env().expect("a cluster to measure on")
}

/// Where the bench runs, for its header: figures are only comparable on the
/// same broker and machine.
pub(crate) fn measured_on() -> String {
    match std::env::var(BROKERS_VARIABLE) {
        Ok(brokers) if !brokers.trim().is_empty() => format!("the broker at {}", brokers.trim()),
        _ => "the embedded cluster (librdkafka's mock, 3 brokers, fresh per repetition)".into(),
    }
}

/// One side's run: how long, and the process CPU time spent meanwhile.
#[derive(Clone, Copy)]
pub(crate) struct Run {
    pub elapsed: Duration,
    pub cpu: Duration,
}

impl Run {
    /// A run that started at `started`, with `cpu_started` of CPU time spent then.
    pub(crate) fn since(started: Instant, cpu_started: Duration) -> Self {
        Run {
            elapsed: started.elapsed(),
            cpu: cpu_time() - cpu_started,
        }
    }

    pub(crate) fn rate(&self, messages: usize) -> f64 {
        messages as f64 / self.elapsed.as_secs_f64()
    }

    pub(crate) fn cpu_per_message(&self, messages: usize) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / messages as f64
    }
}

/// User plus system CPU time of this process so far.
pub(crate) fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// User plus system CPU time of the calling thread so far.
pub(crate) fn thread_cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Synchronous writes of `messages` messages of `bytes` bytes through
/// `producer`, `batch` to a write and `in_flight` writes at once, each
/// answered with every message's delivery.
pub(crate) async fn write_batches(
    producer: &ekafka::Producer,
    messages: usize,
    bytes: usize,
    batch: usize,
    in_flight: usize,
) {
    let mut writes = tokio::task::JoinSet::new();
    let mut remaining = messages;
    while remaining > 0 || !writes.is_empty() {
        while remaining > 0 && writes.len() < in_flight {
            let count = remaining.min(batch);
            remaining -= count;
            let batch: Vec<ekafka::Message> = (0..count)
                .map(|_| ekafka::Message::new(vec![b'x'; bytes]))
                .collect();
            let producer = producer.clone();
            writes.spawn_local(async move { producer.write(batch).await });
        }
        let report = writes
            .join_next()
            .await
            .expect("a write")
            .expect("write task")
            .expect("write accepted");
        assert!(report.is_success(), "{:?}", report.failures().next());
    }
}

/// `name` from the environment, or `default`.
pub(crate) fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The paired ratios ekafka / raw of one configuration's repetitions.
#[derive(Default)]
pub(crate) struct Ratios {
    throughput: Vec<f64>,
    cpu: Vec<f64>,
}

impl Ratios {
    /// Prints one repetition and keeps its ratios.
    pub(crate) fn record(&mut self, raw: Run, ours: Run, messages: usize, raw_first: bool) {
        let ratio = ours.rate(messages) / raw.rate(messages);
        println!(
            "  {}: raw {:>8.0} msg/s {:>5.2} µs cpu/msg   ekafka {:>8.0} msg/s {:>5.2} µs \
             cpu/msg   ratio {ratio:.2}",
            if raw_first {
                "raw first   "
            } else {
                "ekafka first"
            },
            raw.rate(messages),
            raw.cpu_per_message(messages),
            ours.rate(messages),
            ours.cpu_per_message(messages),
        );
        self.throughput.push(ratio);
        self.cpu
            .push(ours.cpu_per_message(messages) / raw.cpu_per_message(messages));
    }

    /// Prints the min/median/max of the ratios, and `goal` after them.
    pub(crate) fn report(self, goal: &str) {
        let (min, median, max) = min_median_max(self.throughput);
        let (cpu_min, cpu_median, cpu_max) = min_median_max(self.cpu);
        println!(
            "  throughput ratio ekafka / raw: min {min:.2}, median {median:.2}, max {max:.2}{goal}\n  \
             cpu per message ekafka / raw: min {cpu_min:.2}, median {cpu_median:.2}, max {cpu_max:.2}"
        );
    }
}

pub(crate) fn min_median_max(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[0],
        values[values.len() / 2],
        values[values.len() - 1],
    )
}

/// A raw consumer's context that knows whether its asynchronous commit was
/// answered, as ekafka's engine reads its commit results.
#[derive(Default)]
pub(crate) struct CommitTracking {
    in_flight: std::sync::atomic::AtomicBool,
}

impl rdkafka::ClientContext for CommitTracking {}

impl rdkafka::consumer::ConsumerContext for CommitTracking {
    fn commit_callback(
        &self,
        _result: rdkafka::error::KafkaResult<()>,
        _offsets: &rdkafka::TopicPartitionList,
    ) {
        self.in_flight
            .store(false, std::sync::atomic::Ordering::Release);
    }
}

/// The raw side's commits, done the way ekafka commits what was
/// acknowledged: asynchronously, one commit in flight, as soon as a position
/// moved (or every `interval`).
pub(crate) struct RawCommits {
    topic: String,
    interval: Duration,
    positions: Vec<Option<i64>>,
    committed: Vec<Option<i64>>,
    last_commit: Instant,
}

impl RawCommits {
    pub(crate) fn new(topic: &str, partitions: usize, interval: Duration) -> Self {
        RawCommits {
            topic: topic.to_string(),
            interval,
            positions: vec![None; partitions],
            committed: vec![None; partitions],
            last_commit: Instant::now(),
        }
    }

    /// Notes that the message at `offset` of `partition` was handled, and
    /// commits when one is due.
    pub(crate) fn handled(
        &mut self,
        consumer: &rdkafka::consumer::BaseConsumer<CommitTracking>,
        partition: i32,
        offset: i64,
    ) {
        use rdkafka::consumer::Consumer as _;
        use std::sync::atomic::Ordering;
        self.positions[partition as usize] = Some(offset + 1);
        let in_flight = &consumer.context().in_flight;
        if self.positions == self.committed
            || self.last_commit.elapsed() < self.interval
            || in_flight.load(Ordering::Acquire)
        {
            return;
        }
        let mut list = rdkafka::TopicPartitionList::new();
        for (partition, offset) in self.positions.iter().enumerate() {
            if let Some(offset) = offset {
                list.add_partition_offset(
                    &self.topic,
                    partition as i32,
                    rdkafka::Offset::Offset(*offset),
                )
                .expect("offset");
            }
        }
        if consumer
            .commit(&list, rdkafka::consumer::CommitMode::Async)
            .is_ok()
        {
            in_flight.store(true, Ordering::Release);
        }
        self.committed.clone_from(&self.positions);
        self.last_commit = Instant::now();
    }
}

/// Reads a raw message the way an application reads what ekafka hands its
/// subscribers (key, value and every header), so the raw side does the same
/// work: librdkafka parses a message's headers only when asked, and ekafka
/// asks for every message. Returns the bytes seen.
pub(crate) fn read_message(message: &rdkafka::message::BorrowedMessage<'_>) -> usize {
    use rdkafka::message::{Headers as _, Message as _};
    let mut bytes = message.key().map_or(0, <[u8]>::len) + message.payload().map_or(0, <[u8]>::len);
    if let Some(headers) = message.headers() {
        for header in headers.iter() {
            bytes += header.key.len() + header.value.map_or(0, <[u8]>::len);
        }
    }
    std::hint::black_box(bytes)
}

/// A raw producer's context: counts deliveries; any failure ends the bench.
#[derive(Default)]
pub(crate) struct Deliveries(pub std::sync::atomic::AtomicUsize);

impl rdkafka::ClientContext for Deliveries {}

impl rdkafka::producer::ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            panic!("raw delivery failed: {error}");
        }
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
