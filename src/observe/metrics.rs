//! The component's Prometheus registry and what each client records in it.
//!
//! Every metric is registered once per component; a client gets a small
//! handle with its own label values made up front, so recording on a hot
//! path is an atomic add (and, for per-topic series, one lookup in a map the
//! client keeps).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use super::stats::{LibrdkafkaStats, StatsSink};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClientLabels {
    client: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    client: String,
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    client: String,
    topic: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    client: String,
    topic: String,
    partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    client: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    client: String,
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SupervisedLabels {
    kind: &'static str,
    client: String,
}

/// The Go library's labels: client type, name (`component.topic` there; the
/// client's name here), method and peer (the brokers).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GoLabels {
    r#type: &'static str,
    name: String,
    method: &'static str,
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GoCodeLabels {
    r#type: &'static str,
    name: String,
    method: &'static str,
    peer: String,
    code: &'static str,
}

type Timings<L> = Family<L, Histogram, fn() -> Histogram>;

/// Durations from half a millisecond to about 16 seconds, doubling.
fn durations() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

fn timings<L: Clone + std::hash::Hash + Eq>() -> Timings<L> {
    Timings::new_with_constructor(durations)
}

/// Every metric of one component.
pub(crate) struct Metrics {
    registry: Registry,
    written: Family<ResultLabels, Counter>,
    write_seconds: Timings<ClientLabels>,
    transaction_seconds: Timings<OutcomeLabels>,
    consumed: Family<TopicLabels, Counter>,
    handled: Family<ResultLabels, Counter>,
    handler_seconds: Timings<TopicLabels>,
    stopped_partitions: Family<ClientLabels, Gauge>,
    lag: Family<PartitionLabels, Gauge>,
    commits: Family<OutcomeLabels, Counter>,
    rebalances: Family<EventLabels, Counter>,
    assigned: Family<ClientLabels, Gauge>,
    paused: Family<ClientLabels, Gauge>,
    held_messages: Family<ClientLabels, Gauge>,
    held_bytes: Family<ClientLabels, Gauge>,
    restarts: Family<SupervisedLabels, Counter>,
    escalations: Family<SupervisedLabels, Counter>,
    go_total: Family<GoCodeLabels, Counter>,
    go_seconds: Timings<GoLabels>,
    /// The Go library's series of each (kind, method), by client name: found
    /// without building labels.
    go_series: Mutex<HashMap<(&'static str, &'static str), GoByName>>,
    stats: Arc<LibrdkafkaStats>,
    peer: String,
}

/// Per client name, its series of one kind and method.
type GoByName = HashMap<String, GoSeries>;

/// One client's and method's series of the Go library's metrics.
struct GoSeries {
    ok: Counter,
    error: Counter,
    seconds: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// The registry of a component whose clients connect to `brokers`.
    pub(crate) fn new(brokers: &[String]) -> Self {
        let mut registry = Registry::default();
        let metrics = Metrics {
            written: Family::default(),
            write_seconds: timings(),
            transaction_seconds: timings(),
            consumed: Family::default(),
            handled: Family::default(),
            handler_seconds: timings(),
            stopped_partitions: Family::default(),
            lag: Family::default(),
            commits: Family::default(),
            rebalances: Family::default(),
            assigned: Family::default(),
            paused: Family::default(),
            held_messages: Family::default(),
            held_bytes: Family::default(),
            restarts: Family::default(),
            escalations: Family::default(),
            go_total: Family::default(),
            go_seconds: timings(),
            go_series: Mutex::default(),
            stats: Arc::new(LibrdkafkaStats::default()),
            peer: brokers.join(","),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "ekafka_producer_messages",
            "Messages a producer wrote, by topic and result (ok, failed)",
            metrics.written.clone(),
        );
        r.register_with_unit(
            "ekafka_producer_write_duration",
            "How long a write took, from the call to every message's outcome",
            Unit::Seconds,
            metrics.write_seconds.clone(),
        );
        r.register_with_unit(
            "ekafka_producer_transaction_duration",
            "How long a transaction took, from begin to its end, by result (committed, aborted)",
            Unit::Seconds,
            metrics.transaction_seconds.clone(),
        );
        r.register(
            "ekafka_consumer_messages",
            "Messages a consumer group handed to its subscribers, by topic",
            metrics.consumed.clone(),
        );
        r.register(
            "ekafka_handler_messages",
            "Messages a consumer server's handler finished, by result (ok, retried, dead_lettered, failed)",
            metrics.handled.clone(),
        );
        r.register_with_unit(
            "ekafka_handler_duration",
            "How long one call of a consumer server's handler took",
            Unit::Seconds,
            metrics.handler_seconds.clone(),
        );
        r.register(
            "ekafka_server_stopped_partitions",
            "Partitions of a consumer server stopped on a message that failed for good (waiting to be tried again, or held past their limit)",
            metrics.stopped_partitions.clone(),
        );
        r.register(
            "ekafka_consumer_lag",
            "Per partition, the high watermark minus the committed offset (messages)",
            metrics.lag.clone(),
        );
        r.register(
            "ekafka_consumer_commits",
            "Commits of a consumer group, by result (ok, failed)",
            metrics.commits.clone(),
        );
        r.register(
            "ekafka_consumer_rebalances",
            "Rebalance events of a consumer group (assigned, revoked)",
            metrics.rebalances.clone(),
        );
        r.register(
            "ekafka_consumer_assigned_partitions",
            "Partitions assigned to a consumer group member",
            metrics.assigned.clone(),
        );
        r.register(
            "ekafka_consumer_paused_partitions",
            "Assigned partitions paused because subscribers are behind",
            metrics.paused.clone(),
        );
        r.register(
            "ekafka_consumer_held_messages",
            "Messages held between fetch and acknowledgement",
            metrics.held_messages.clone(),
        );
        r.register_with_unit(
            "ekafka_consumer_held",
            "Bytes of the messages held between fetch and acknowledgement",
            Unit::Bytes,
            metrics.held_bytes.clone(),
        );
        r.register(
            "ekafka_restarts",
            "Restarts of a client or server after a failure",
            metrics.restarts.clone(),
        );
        r.register(
            "ekafka_escalations",
            "Failures past a client's or server's restart limit",
            metrics.escalations.clone(),
        );
        r.register(
            "ego_client_handle",
            "The Go library's operation count, by code (OK, Error)",
            metrics.go_total.clone(),
        );
        r.register_with_unit(
            "ego_client_handle",
            "The Go library's operation duration",
            Unit::Seconds,
            metrics.go_seconds.clone(),
        );
        r.register_collector(Box::new(Arc::clone(&metrics.stats)));
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Every metric in the OpenMetrics text format.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail, so a failure is a metric's own;
        // the scrape then ends early, and says so in the log.
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "encoding the metrics failed; this scrape is incomplete");
        }
        text
    }

    /// Counts one operation in the Go library's metrics.
    pub(crate) fn go_operation(
        &self,
        kind: &'static str,
        name: &str,
        method: &'static str,
        ok: bool,
        elapsed: Duration,
    ) {
        let mut series = self.go_series.lock().unwrap_or_else(|e| e.into_inner());
        let by_name = series.entry((kind, method)).or_default();
        if !by_name.contains_key(name) {
            let code = |code| {
                self.go_total
                    .get_or_create(&GoCodeLabels {
                        r#type: kind,
                        name: name.to_string(),
                        method,
                        peer: self.peer.clone(),
                        code,
                    })
                    .clone()
            };
            let seconds = self
                .go_seconds
                .get_or_create(&GoLabels {
                    r#type: kind,
                    name: name.to_string(),
                    method,
                    peer: self.peer.clone(),
                })
                .clone();
            let created = GoSeries {
                ok: code("OK"),
                error: code("Error"),
                seconds,
            };
            by_name.insert(name.to_string(), created);
        }
        let series = &by_name[name];
        if ok {
            series.ok.inc();
        } else {
            series.error.inc();
        }
        series.seconds.observe(elapsed.as_secs_f64());
    }

    /// Counts a restart of client `kind` `name`.
    pub(crate) fn restarted(&self, kind: &'static str, name: &str) {
        self.restarts
            .get_or_create(&SupervisedLabels {
                kind,
                client: name.to_string(),
            })
            .inc();
    }

    /// Counts an escalation of client `kind` `name`.
    pub(crate) fn escalated(&self, kind: &'static str, name: &str) {
        self.escalations
            .get_or_create(&SupervisedLabels {
                kind,
                client: name.to_string(),
            })
            .inc();
    }

    /// What producer `name` records.
    pub(crate) fn producer(&self, name: &str) -> ProducerMetrics {
        ProducerMetrics {
            client: name.to_string(),
            written: self.written.clone(),
            by_topic: Mutex::default(),
            write_seconds: self.write_seconds.get_or_create(&client(name)).clone(),
            transaction_seconds: self.transaction_seconds.clone(),
            stats: StatsSink::new(&self.stats, "producer", name),
        }
    }

    /// What consumer group `name` records.
    pub(crate) fn group(&self, name: &str) -> GroupMetrics {
        let labels = client(name);
        let event = |event| {
            self.rebalances
                .get_or_create(&EventLabels {
                    client: name.to_string(),
                    event,
                })
                .clone()
        };
        let commits = |result| {
            self.commits
                .get_or_create(&OutcomeLabels {
                    client: name.to_string(),
                    result,
                })
                .clone()
        };
        GroupMetrics {
            client: name.to_string(),
            consumed: self.consumed.clone(),
            consumed_by_topic: HashMap::new(),
            lag: self.lag_series(name),
            commits_ok: commits("ok"),
            commits_failed: commits("failed"),
            assigned_events: event("assigned"),
            revoked_events: event("revoked"),
            assigned: self.assigned.get_or_create(&labels).clone(),
            paused: self.paused.get_or_create(&labels).clone(),
            held_messages: self.held_messages.get_or_create(&labels).clone(),
            held_bytes: self.held_bytes.get_or_create(&labels).clone(),
            stats: StatsSink::new(&self.stats, "consumer group", name),
        }
    }

    /// What single consumer `name` records.
    pub(crate) fn consumer(&self, name: &str) -> ConsumerMetrics {
        ConsumerMetrics {
            lag: self.lag_series(name),
            stats: StatsSink::new(&self.stats, "consumer", name),
        }
    }

    /// Client `name`'s lag series, none set yet.
    fn lag_series(&self, name: &str) -> LagSeries {
        LagSeries {
            client: name.to_string(),
            lag: self.lag.clone(),
            series: Vec::new(),
        }
    }

    /// What consumer server `name` records.
    pub(crate) fn server(&self, name: &str) -> ServerMetrics {
        ServerMetrics {
            server: name.to_string(),
            handled: self.handled.clone(),
            handler_seconds: self.handler_seconds.clone(),
            stopped_partitions: self.stopped_partitions.get_or_create(&client(name)).clone(),
            by_topic: Rc::default(),
        }
    }
}

fn client(name: &str) -> ClientLabels {
    ClientLabels {
        client: name.to_string(),
    }
}

/// A producer's series: written messages per topic and result, write
/// durations, librdkafka's statistics.
pub(crate) struct ProducerMetrics {
    client: String,
    written: Family<ResultLabels, Counter>,
    /// Per topic, its ok and failed counters: found without building labels.
    by_topic: Mutex<HashMap<Box<str>, [Counter; 2]>>,
    write_seconds: Histogram,
    transaction_seconds: Timings<OutcomeLabels>,
    stats: StatsSink,
}

impl std::fmt::Debug for ProducerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerMetrics")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl ProducerMetrics {
    /// Counts messages by `(topic, delivered)`.
    pub(crate) fn count<'t>(&self, messages: impl IntoIterator<Item = (&'t str, bool)>) {
        let mut by_topic = self.by_topic.lock().unwrap_or_else(|e| e.into_inner());
        for (topic, ok) in messages {
            if !by_topic.contains_key(topic) {
                let counter = |result| {
                    self.written
                        .get_or_create(&ResultLabels {
                            client: self.client.clone(),
                            topic: topic.to_string(),
                            result,
                        })
                        .clone()
                };
                by_topic.insert(topic.into(), [counter("ok"), counter("failed")]);
            }
            by_topic[topic][usize::from(!ok)].inc();
        }
    }

    /// Keeps librdkafka's latest statistics of this producer.
    pub(crate) fn statistics(&self, statistics: &rdkafka::Statistics) {
        self.stats.record(statistics);
    }

    /// Records a write that took `elapsed`.
    pub(crate) fn wrote(&self, elapsed: Duration) {
        self.write_seconds.observe(elapsed.as_secs_f64());
    }

    /// Records a transaction that took `elapsed` and ended `committed` or not.
    pub(crate) fn transaction_ended(&self, elapsed: Duration, committed: bool) {
        let labels = OutcomeLabels {
            client: self.client.clone(),
            result: if committed { "committed" } else { "aborted" },
        };
        self.transaction_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }
}

/// One client's `ekafka_consumer_lag` series, one per partition it reads.
pub(crate) struct LagSeries {
    client: String,
    lag: Family<PartitionLabels, Gauge>,
    /// The series set, so those of partitions no longer read go.
    series: Vec<PartitionLabels>,
}

impl LagSeries {
    /// Sets the lag of every partition read (`(topic, partition, lag)`), and
    /// drops the series of partitions no longer read.
    pub(crate) fn set(&mut self, partitions: impl IntoIterator<Item = (Arc<str>, i32, i64)>) {
        let current: Vec<(PartitionLabels, i64)> = partitions
            .into_iter()
            .map(|(topic, partition, lag)| {
                let labels = PartitionLabels {
                    client: self.client.clone(),
                    topic: topic.to_string(),
                    partition,
                };
                (labels, lag)
            })
            .collect();
        for gone in self
            .series
            .iter()
            .filter(|old| !current.iter().any(|(now, _)| now == *old))
        {
            self.lag.remove(gone);
        }
        for (labels, lag) in &current {
            self.lag.get_or_create(labels).set(*lag);
        }
        self.series = current.into_iter().map(|(labels, _)| labels).collect();
    }
}

/// What a single consumer records: its lag (every `readLagInterval`) and
/// librdkafka's statistics.
pub(crate) struct ConsumerMetrics {
    pub(crate) lag: LagSeries,
    pub(crate) stats: StatsSink,
}

/// A consumer group member's series. It lives on the member's own thread.
pub(crate) struct GroupMetrics {
    client: String,
    consumed: Family<TopicLabels, Counter>,
    consumed_by_topic: HashMap<Arc<str>, Counter>,
    lag: LagSeries,
    commits_ok: Counter,
    commits_failed: Counter,
    assigned_events: Counter,
    revoked_events: Counter,
    assigned: Gauge,
    paused: Gauge,
    held_messages: Gauge,
    held_bytes: Gauge,
    stats: StatsSink,
}

impl GroupMetrics {
    /// Counts `count` messages of `topic` handed to subscribers.
    pub(crate) fn consumed(&mut self, topic: &Arc<str>, count: usize) {
        if !self.consumed_by_topic.contains_key(topic) {
            let counter = self
                .consumed
                .get_or_create(&TopicLabels {
                    client: self.client.clone(),
                    topic: topic.to_string(),
                })
                .clone();
            self.consumed_by_topic.insert(Arc::clone(topic), counter);
        }
        self.consumed_by_topic[topic].inc_by(count as u64);
    }

    /// Counts a commit's result.
    pub(crate) fn committed(&self, ok: bool) {
        if ok {
            self.commits_ok.inc();
        } else {
            self.commits_failed.inc();
        }
    }

    /// Counts a rebalance event: partitions assigned, or revoked.
    pub(crate) fn rebalanced(&self, assigned: bool) {
        if assigned {
            self.assigned_events.inc();
        } else {
            self.revoked_events.inc();
        }
    }

    /// The member's state now.
    pub(crate) fn state(&self, assigned: usize, paused: usize, held: usize, held_bytes: usize) {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.assigned.set(gauge(assigned));
        self.paused.set(gauge(paused));
        self.held_messages.set(gauge(held));
        self.held_bytes.set(gauge(held_bytes));
    }

    /// Sets the lag of every partition assigned (`(topic, partition, lag)`),
    /// and drops the series of partitions no longer assigned.
    pub(crate) fn lag(&mut self, partitions: impl IntoIterator<Item = (Arc<str>, i32, i64)>) {
        self.lag.set(partitions);
    }

    /// Drops the member's lag series and statistics and zeroes its gauges:
    /// it let go.
    pub(crate) fn stopped(&mut self) {
        self.lag(std::iter::empty());
        self.state(0, 0, 0, 0);
        self.stats.forget();
    }

    /// Where the member's librdkafka statistics go.
    pub(crate) fn stats(&self) -> StatsSink {
        self.stats.clone()
    }
}

/// What one handler call came to (in the order of a topic's counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    /// It succeeded.
    Ok = 0,
    /// It failed and will be tried again.
    Retried,
    /// It failed for good and the message went to the dead-letter topic.
    DeadLettered,
    /// It failed for good and the partition stopped at it.
    Failed,
    /// It failed and went to a delay topic, to be tried again when due.
    Delayed,
}

impl Handled {
    fn label(self) -> &'static str {
        match self {
            Handled::Ok => "ok",
            Handled::Retried => "retried",
            Handled::DeadLettered => "dead_lettered",
            Handled::Failed => "failed",
            Handled::Delayed => "delayed",
        }
    }
}

/// A consumer server's series. It lives on the server's thread.
#[derive(Clone)]
pub(crate) struct ServerMetrics {
    server: String,
    handled: Family<ResultLabels, Counter>,
    handler_seconds: Timings<TopicLabels>,
    stopped_partitions: Gauge,
    /// Per topic, its counter per result and its durations: found without
    /// building labels.
    by_topic: Rc<RefCell<HashMap<Box<str>, ServerTopic>>>,
}

struct ServerTopic {
    handled: [Counter; 5],
    seconds: Histogram,
}

impl ServerMetrics {
    /// How many of the server's partitions are stopped now.
    pub(crate) fn stopped_partitions(&self, count: usize) {
        self.stopped_partitions
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Records one handler call on a message of `topic`.
    pub(crate) fn handled(&self, topic: &str, result: Handled, elapsed: Duration) {
        let mut by_topic = self.by_topic.borrow_mut();
        if !by_topic.contains_key(topic) {
            let counter = |result: Handled| {
                self.handled
                    .get_or_create(&ResultLabels {
                        client: self.server.clone(),
                        topic: topic.to_string(),
                        result: result.label(),
                    })
                    .clone()
            };
            let series = ServerTopic {
                handled: [
                    counter(Handled::Ok),
                    counter(Handled::Retried),
                    counter(Handled::DeadLettered),
                    counter(Handled::Failed),
                    counter(Handled::Delayed),
                ],
                seconds: self
                    .handler_seconds
                    .get_or_create(&TopicLabels {
                        client: self.server.clone(),
                        topic: topic.to_string(),
                    })
                    .clone(),
            };
            by_topic.insert(topic.into(), series);
        }
        let series = &by_topic[topic];
        series.handled[result as usize].inc();
        series.seconds.observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The metric names `text` declares, as samples show them (a counter
    /// `x` is sampled as `x_total`).
    fn declared(text: &str) -> BTreeSet<String> {
        text.lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|line| line.split_once(' '))
            .map(|(name, kind)| match kind {
                "counter" => format!("{name}_total"),
                _ => name.to_string(),
            })
            .collect()
    }

    #[test]
    fn the_guide_lists_every_metric_and_no_other() {
        let metrics = Metrics::new(&["b:1".to_string()]);
        // A series of every metric (a family without one is not declared).
        StatsSink::new(&metrics.stats, "producer", "p").record(&rdkafka::Statistics::default());
        let producer = metrics.producer("p");
        producer.count([("t", true)]);
        producer.wrote(Duration::from_millis(1));
        producer.transaction_ended(Duration::from_millis(1), true);
        let mut group = metrics.group("g");
        group.consumed(&Arc::from("t"), 1);
        group.lag([(Arc::from("t"), 0, 1)]);
        metrics
            .server("s")
            .handled("t", Handled::Ok, Duration::from_millis(1));
        metrics.restarted("producer", "p");
        metrics.escalated("producer", "p");
        metrics.go_operation("producer", "p", "WriteMessages", true, Duration::ZERO);
        let exposed = declared(&metrics.encode());

        let section = include_str!("../guide/observing.md");
        let table = &section[section.find("| metric |").expect("its table")..];
        let table = &table[..table.find("\n\n").unwrap_or(table.len())];
        let listed: BTreeSet<String> = table
            .lines()
            .skip(2)
            .filter_map(|row| row.split('`').nth(1))
            .map(str::to_string)
            .collect();
        assert_eq!(
            exposed, listed,
            "the README's metrics table (left: exposed, right: listed)"
        );
    }
}
