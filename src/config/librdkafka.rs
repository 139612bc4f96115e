//! The one place where ekafka config becomes librdkafka properties.
//!
//! Every client starts from the common properties, then its own, then the raw
//! `[kafka.librdkafka]` table, then the client's own `librdkafka` table, so a raw
//! property always wins over what ekafka derives.
//!
//! | ekafka key | librdkafka property |
//! |---|---|
//! | `brokers` | `bootstrap.servers` (comma-joined) |
//! | (client name) | `client.id` = `ekafka-producer-NAME`, `ekafka-consumer-NAME`, `ekafka-group-NAME` |
//! | `client.timeout` | `socket.connection.setup.timeout.ms`; also ekafka's metadata/admin request timeout |
//! | `saslMechanism` | `sasl.mechanism`, and `security.protocol = SASL_PLAINTEXT` (`SASL_SSL` with `[tls]`) |
//! | `saslUserName` / `saslPassword` | `sasl.username` / `sasl.password` |
//! | `[tls]` | `security.protocol = SSL` (`SASL_SSL` with `saslMechanism`) |
//! | `tls.caFile` | `ssl.ca.location` |
//! | `tls.certFile` / `tls.keyFile` / `tls.keyPassword` | `ssl.certificate.location` / `ssl.key.location` / `ssl.key.password` |
//! | `tls.verifyHostname` | `ssl.endpoint.identification.algorithm` (`https`, or `none` when false) |
//! | `producers.*.requiredAcks` | `acks` (-1 → `all`); `enable.idempotence = true` when `all` and `maxAttempts` > 1 |
//! | `producers.*.maxAttempts` | `message.send.max.retries` = maxAttempts − 1 |
//! | `producers.*.batchSize` | `batch.num.messages` |
//! | `producers.*.batchBytes` | `batch.size` |
//! | `producers.*.batchTimeout` | `linger.ms` |
//! | `producers.*.readTimeout` | `request.timeout.ms` |
//! | `producers.*.writeTimeout` | `message.timeout.ms`; also caps `topic.metadata.propagation.max.ms` (1 s), so a write to a topic the cluster lacks fails naming it instead of timing out |
//! | `producers.*.compression` | `compression.codec` (1 gzip, 2 snappy, 3 lz4, 4 zstd) |
//! | `producers.*.balancer` | `hash` → `partitioner = murmur2_random`; `roundRobin` and registered balancers → ekafka's partitioner callback with `sticky.partitioning.linger.ms = 0` |
//! | `*.groupID` | `group.id` |
//! | `*.startOffset` | `auto.offset.reset` (-2 → `earliest`, -1 → `latest`) |
//! | `*.minBytes` | `fetch.min.bytes` |
//! | `*.maxBytes` | `max.partition.fetch.bytes` |
//! | `*.maxWait` | `fetch.wait.max.ms` |
//! | `*.groupProtocol` | `group.protocol` (`classic`, or `consumer` for KIP-848) |
//! | `*.heartbeatInterval` | `heartbeat.interval.ms` (classic protocol only) |
//! | `*.sessionTimeout` | `session.timeout.ms` (classic protocol only) |
//! | `*.rebalanceTimeout` | `max.poll.interval.ms` (librdkafka's JoinGroup rebalance timeout) |
//! | `*.readBackoffMin` / `*.readBackoffMax` | `retry.backoff.ms` / `retry.backoff.max.ms` |
//! | `*.watchPartitionChanges` + `partitionWatchInterval` | `topic.metadata.refresh.interval.ms` |
//! | `consumerGroups.*.groupBalancers` | `partition.assignment.strategy` (classic protocol only) |
//! | `[librdkafka]`, `*.librdkafka` | copied verbatim |
//!
//! Always set for consumers: `enable.auto.commit = false` and
//! `enable.auto.offset.store = false`, because ekafka commits only what was handled.
//!
//! Keys with no librdkafka counterpart are used by ekafka itself: `debug` and the
//! `enable*Interceptor` switches (interceptors), `producers.*.async` (write mode),
//! `commitInterval` (commit batching), `readLagInterval` (lag refresh),
//! `joinGroupBackoff` (delay before a failed member rejoins), `consumerGroups.*.timeout`
//! (commit and committed-offset requests). `retentionTime` is accepted for
//! compatibility only: OffsetCommit dropped its retention field in Kafka 2.1, so the
//! broker's `offsets.retention.minutes` decides.

use std::time::Duration;

use super::consumer::{
    ConsumerAssignment, ConsumerConfig, ConsumerGroupConfig, FetchSettings, FlowSettings,
    GroupProtocol, GroupSettings, StartOffset,
};
use super::kafka::Config;
use super::producer::{ProducerConfig, RequiredAcks, BALANCER_HASH};
use super::properties::Properties;
use super::tls::Tls;

fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

/// Properties every client of this config shares (brokers, timeouts, SASL).
#[must_use]
pub fn common(config: &Config) -> Properties {
    let mut props = Properties::default();
    props.set("bootstrap.servers", config.brokers.join(","));
    props.set(
        "socket.connection.setup.timeout.ms",
        millis(config.client.timeout),
    );
    let protocol = match (&config.sasl, &config.tls) {
        (None, None) => None,
        (Some(_), None) => Some("SASL_PLAINTEXT"),
        (None, Some(_)) => Some("SSL"),
        (Some(_), Some(_)) => Some("SASL_SSL"),
    };
    if let Some(protocol) = protocol {
        props.set("security.protocol", protocol);
    }
    if let Some(sasl) = &config.sasl {
        props.set("sasl.mechanism", sasl.mechanism.name());
        props.set("sasl.username", &sasl.username);
        props.set("sasl.password", sasl.password.expose());
    }
    if let Some(tls) = &config.tls {
        tls_properties(&mut props, tls);
    }
    props
}

fn tls_properties(props: &mut Properties, tls: &Tls) {
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    if let Some(ca) = &tls.ca_file {
        props.set("ssl.ca.location", path(ca));
    }
    if let Some(cert) = &tls.cert_file {
        props.set("ssl.certificate.location", path(cert));
    }
    if let Some(key) = &tls.key_file {
        props.set("ssl.key.location", path(key));
    }
    if let Some(password) = &tls.key_password {
        props.set("ssl.key.password", password.expose());
    }
    let identification = if tls.verify_hostname { "https" } else { "none" };
    props.set("ssl.endpoint.identification.algorithm", identification);
}

/// How long a producer waits for a topic the cluster says it lacks to appear.
const MISSING_TOPIC_GRACE: Duration = Duration::from_secs(1);

/// The properties of the producer named `name` (raw tables applied last).
#[must_use]
pub fn producer(config: &Config, name: &str, producer: &ProducerConfig) -> Properties {
    let mut props = common(config);
    props.set("client.id", format!("ekafka-producer-{name}"));
    let acks = match producer.required_acks {
        RequiredAcks::All => "all",
        RequiredAcks::Leader => "1",
        RequiredAcks::None => "0",
    };
    props.set("acks", acks);
    // Idempotence keeps per-partition order and avoids duplicates when a retried
    // request had in fact succeeded; librdkafka requires acks=all and retries for it.
    let idempotent = producer.required_acks == RequiredAcks::All && producer.max_attempts > 1;
    props.set("enable.idempotence", idempotent.to_string());
    props.set(
        "message.send.max.retries",
        (producer.max_attempts - 1).to_string(),
    );
    props.set("batch.num.messages", producer.batch_size.to_string());
    props.set("batch.size", producer.batch_bytes.to_string());
    props.set("linger.ms", linger_millis(producer.batch_timeout));
    props.set("request.timeout.ms", millis(producer.read_timeout));
    props.set("message.timeout.ms", millis(producer.write_timeout));
    // librdkafka gives a topic the cluster says it lacks 30 s to appear (for
    // metadata still spreading after its creation) before failing its
    // messages, so with writeTimeout below that a write to a missing topic
    // could only ever time out. A second covers propagation on a healthy
    // cluster; past it the write fails naming the topic, and later writes to
    // it fail at once until it exists.
    props.set(
        "topic.metadata.propagation.max.ms",
        millis(MISSING_TOPIC_GRACE.min(producer.write_timeout)),
    );
    props.set("compression.codec", producer.compression.codec_name());
    if producer.balancer == BALANCER_HASH {
        props.set("partitioner", "murmur2_random");
    } else {
        // ekafka's partitioner callback decides; librdkafka skips the callback for
        // keyless messages unless sticky partitioning is off.
        props.set("sticky.partitioning.linger.ms", "0");
    }
    props.extend(&config.librdkafka);
    props.extend(&producer.librdkafka);
    props
}

/// `linger.ms` takes fractions of a millisecond.
fn linger_millis(duration: Duration) -> String {
    let micros = duration.as_micros();
    if micros % 1000 == 0 {
        (micros / 1000).to_string()
    } else {
        format!("{}", micros as f64 / 1000.0)
    }
}

fn fetch_and_group(props: &mut Properties, fetch: &FetchSettings, group: &GroupSettings) {
    let reset = match fetch.start_offset {
        StartOffset::First => "earliest",
        StartOffset::Last => "latest",
    };
    props.set("auto.offset.reset", reset);
    props.set("fetch.min.bytes", fetch.min_bytes.to_string());
    props.set("max.partition.fetch.bytes", fetch.max_bytes.to_string());
    props.set("fetch.wait.max.ms", millis(fetch.max_wait));
    props.set("retry.backoff.ms", millis(fetch.read_backoff_min));
    props.set("retry.backoff.max.ms", millis(fetch.read_backoff_max));
    props.set("enable.auto.commit", "false");
    props.set("enable.auto.offset.store", "false");
    if group.protocol == GroupProtocol::Consumer {
        // KIP-848: the broker owns the session and heartbeat timings.
        props.set("group.protocol", group.protocol.name());
    } else {
        props.set("heartbeat.interval.ms", millis(group.heartbeat_interval));
        props.set("session.timeout.ms", millis(group.session_timeout));
    }
    props.set(
        "max.poll.interval.ms",
        millis(group.rebalance_timeout.max(group.session_timeout)),
    );
    if group.watch_partition_changes {
        props.set(
            "topic.metadata.refresh.interval.ms",
            millis(group.partition_watch_interval),
        );
    }
}

/// librdkafka's prefetch, sized from the group's own bounds. A group member
/// reads each partition from a queue of its own, so the queue limits apply per
/// partition. Here, before the partitions are known, each gets a 64th of
/// `maxBufferedBytes`; the member sizes them again from the number of
/// partitions its topics have ([`prefetch_per_partition`]) before it joins. A
/// fetch response is at most a quarter of the bound (but never below 1 MiB,
/// the largest message librdkafka accepts by default).
fn prefetch(props: &mut Properties, flow: &FlowSettings, fetch: &FetchSettings) {
    for (key, value) in prefetch_properties(flow, fetch, None) {
        props.set(key, value);
    }
}

/// Each partition's share of librdkafka's prefetch (its queue, and one fetch
/// of it), given the number of partitions of the group's topics when known:
/// together they take at most `maxBufferedBytes` (each at least 4 KiB).
pub(crate) fn prefetch_per_partition(flow: &FlowSettings, partitions: Option<usize>) -> usize {
    let bound = flow.max_buffered_bytes;
    match partitions {
        Some(count) => (bound / (2 * count.max(1))).min(bound / 16).max(4 * 1024),
        None => (bound / 64).max(64 * 1024),
    }
}

/// The longest a group member's fetch waits for data (`maxWait` at most).
/// A member reads each partition from a queue of its own, and librdkafka
/// leaves a partition whose queue is full out of its broker's next fetch; when
/// the broker's other partitions are quiet, that fetch waits the full
/// `fetch.wait.max.ms`, and the left-out partition with it, even with data to
/// read. The wait bounds that stall (100 ms cost a third of the throughput of
/// a backlog drained on the embedded cluster); the price is an idle member
/// asking each broker for data up to 20 times a second. kafka-go, where
/// `maxWait` comes from, fetches each partition on its own.
const GROUP_FETCH_WAIT_MAX: Duration = Duration::from_millis(50);

/// The librdkafka properties that size a group member's prefetch.
pub(crate) fn prefetch_properties(
    flow: &FlowSettings,
    fetch: &FetchSettings,
    partitions: Option<usize>,
) -> [(&'static str, String); 6] {
    let per_partition = prefetch_per_partition(flow, partitions);
    [
        (
            "fetch.wait.max.ms",
            millis(fetch.max_wait.min(GROUP_FETCH_WAIT_MAX)),
        ),
        (
            "queued.max.messages.kbytes",
            (per_partition / 1024).max(1).to_string(),
        ),
        ("queued.min.messages", flow.max_buffered.to_string()),
        // With queues this small librdkafka finds a partition's full often; by
        // default it then waits a second before fetching it again, while ekafka
        // drains it within milliseconds.
        ("fetch.queue.backoff.ms", "10".to_string()),
        (
            "max.partition.fetch.bytes",
            per_partition.min(fetch.max_bytes as usize).to_string(),
        ),
        (
            "fetch.max.bytes",
            (flow.max_buffered_bytes / 4).max(1 << 20).to_string(),
        ),
    ]
}

/// The properties of the consumer named `name` (raw tables applied last).
#[must_use]
pub fn consumer(config: &Config, name: &str, consumer: &ConsumerConfig) -> Properties {
    let mut props = common(config);
    props.set("client.id", format!("ekafka-consumer-{name}"));
    fetch_and_group(&mut props, &consumer.fetch, &consumer.group);
    let group_id = match &consumer.assignment {
        ConsumerAssignment::Group(group_id) => group_id.clone(),
        // librdkafka wants a group id even for a manual assignment; this one
        // is never joined or committed to.
        ConsumerAssignment::Partition(_) => {
            crate::unique::unique_name(&format!("ekafka-{name}-unused"))
        }
    };
    props.set("group.id", group_id);
    props.extend(&config.librdkafka);
    props.extend(&consumer.librdkafka);
    props
}

/// The properties of the consumer group member named `name` (raw tables applied last).
#[must_use]
pub fn consumer_group(config: &Config, name: &str, group: &ConsumerGroupConfig) -> Properties {
    let mut props = common(config);
    props.set("client.id", format!("ekafka-group-{name}"));
    fetch_and_group(&mut props, &group.fetch, &group.group);
    props.set("group.id", &group.group_id);
    prefetch(&mut props, &group.flow, &group.fetch);
    // Under KIP-848 the broker assigns (its group.consumer.assignors).
    if group.group.protocol == GroupProtocol::Classic {
        let strategies: Vec<&str> = group
            .group_balancers
            .iter()
            .map(|b| b.strategy_name())
            .collect();
        props.set("partition.assignment.strategy", strategies.join(","));
    }
    props.extend(&config.librdkafka);
    props.extend(&group.librdkafka);
    props
}
