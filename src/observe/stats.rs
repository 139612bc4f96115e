//! librdkafka's own statistics (`statistics.interval.ms`), the latest of each
//! client kept and shown at scrape time as a few gauges: what only librdkafka
//! sees, its queues and the brokers' round-trip times.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;
use rdkafka::statistics::Statistics;

/// The figures kept of one client's latest statistics.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    /// Messages in librdkafka's producer queues (waiting or in flight).
    queued_messages: u64,
    /// Their bytes.
    queued_bytes: u64,
    /// Operations (callbacks, events) waiting to be served by a poll: grows
    /// when the client is not polled.
    reply_queue: i64,
    /// Requests retried, over every broker.
    retries: u64,
    /// Per broker (`host:port/id`), the average round-trip time, seconds.
    round_trips: Vec<(String, f64)>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClientLabels {
    kind: &'static str,
    client: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BrokerLabels {
    kind: &'static str,
    client: String,
    broker: String,
}

/// A gauge of every client: name, help, unit, and its value in a snapshot.
type Gauge = (
    &'static str,
    &'static str,
    Option<Unit>,
    fn(&Snapshot) -> i64,
);

/// Every client's latest statistics.
#[derive(Debug, Default)]
pub(crate) struct LibrdkafkaStats {
    clients: Mutex<BTreeMap<(&'static str, String), Snapshot>>,
}

impl LibrdkafkaStats {
    /// Keeps the figures of `stats`, from client `kind` `name`.
    pub(crate) fn record(&self, kind: &'static str, name: &str, stats: &Statistics) {
        let mut round_trips: Vec<(String, f64)> = stats
            .brokers
            .values()
            .filter(|b| b.nodeid >= 0 && b.state == "UP")
            .filter_map(|b| {
                let rtt = b.rtt.as_ref().filter(|w| w.cnt > 0)?;
                // librdkafka counts microseconds.
                Some((b.name.clone(), rtt.avg as f64 / 1e6))
            })
            .collect();
        round_trips.sort_by(|a, b| a.0.cmp(&b.0));
        let snapshot = Snapshot {
            queued_messages: stats.msg_cnt,
            queued_bytes: stats.msg_size,
            reply_queue: stats.replyq,
            retries: stats.brokers.values().map(|b| b.txretries).sum(),
            round_trips,
        };
        self.lock().insert((kind, name.to_string()), snapshot);
    }

    /// Forgets client `kind` `name`: it was closed.
    pub(crate) fn forget(&self, kind: &'static str, name: &str) {
        self.lock().remove(&(kind, name.to_string()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(&'static str, String), Snapshot>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where one client's statistics go.
#[derive(Debug, Clone)]
pub(crate) struct StatsSink {
    stats: Arc<LibrdkafkaStats>,
    kind: &'static str,
    client: String,
}

impl StatsSink {
    pub(crate) fn new(stats: &Arc<LibrdkafkaStats>, kind: &'static str, client: &str) -> Self {
        StatsSink {
            stats: Arc::clone(stats),
            kind,
            client: client.to_string(),
        }
    }

    /// Keeps the client's latest statistics.
    pub(crate) fn record(&self, statistics: &Statistics) {
        self.stats.record(self.kind, &self.client, statistics);
    }

    /// Forgets the client's statistics: it stopped.
    pub(crate) fn forget(&self) {
        self.stats.forget(self.kind, &self.client);
    }
}

impl Collector for LibrdkafkaStats {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let clients = self.lock().clone();
        if clients.is_empty() {
            return Ok(());
        }
        let labels = |(kind, client): &(&'static str, String)| ClientLabels {
            kind,
            client: client.clone(),
        };
        let gauges: [Gauge; 3] = [
            (
                "ekafka_librdkafka_queued_messages",
                "Messages in librdkafka's producer queues, waiting or in flight",
                None,
                |s| i64::try_from(s.queued_messages).unwrap_or(i64::MAX),
            ),
            (
                "ekafka_librdkafka_queued",
                "Bytes of the messages in librdkafka's producer queues",
                Some(Unit::Bytes),
                |s| i64::try_from(s.queued_bytes).unwrap_or(i64::MAX),
            ),
            (
                "ekafka_librdkafka_reply_queue",
                "Callbacks and events waiting for the client to be polled",
                None,
                |s| s.reply_queue,
            ),
        ];
        for (name, help, unit, value) in gauges {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                unit.as_ref(),
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (key, snapshot) in &clients {
                let labels = labels(key);
                ConstGauge::new(value(snapshot)).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut retries = encoder.encode_descriptor(
            "ekafka_librdkafka_request_retries",
            "Requests librdkafka retried, over every broker (producers: message retries)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (key, snapshot) in &clients {
            let labels = labels(key);
            ConstCounter::new(snapshot.retries).encode(retries.encode_family(&labels)?)?;
        }
        let mut round_trips = encoder.encode_descriptor(
            "ekafka_broker_round_trip",
            "Average round-trip time of requests to a broker, over the last statistics interval",
            Some(&Unit::Seconds),
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for ((kind, client), snapshot) in &clients {
            for (broker, seconds) in &snapshot.round_trips {
                let labels = BrokerLabels {
                    kind,
                    client: client.clone(),
                    broker: broker.clone(),
                };
                ConstGauge::new(*seconds).encode(round_trips.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
