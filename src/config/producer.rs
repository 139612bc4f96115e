//! `[kafka.producers.NAME]`

use std::time::Duration;

use super::duration::format_go_duration;
use super::error::{ConfigError, ConfigProblem};
use super::key::{settings, PropertyText, Rules, Value};
use super::properties::Properties;
use super::reader::Section;
use super::restart::RestartSettings;
use super::topic_name::check_topic_name;

/// How many broker acknowledgements a write waits for (`requiredAcks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequiredAcks {
    /// `0`: fire-and-forget; a write succeeds before any broker has the data.
    None,
    /// `1`: the partition leader has written the data.
    Leader,
    /// `-1`: every in-sync replica has the data. ekafka's default.
    All,
}

/// Batch compression codec (`compression`, numbered as in the Go guide).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// `0`: no compression (the default).
    None,
    /// `1`
    Gzip,
    /// `2`
    Snappy,
    /// `3`
    Lz4,
    /// `4`
    Zstd,
}

impl Compression {
    /// The librdkafka `compression.codec` value.
    #[must_use]
    pub fn codec_name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// The built-in balancer names; any other name must be registered on the component.
///
/// Messages are dealt out over the partitions in turn, whatever their key (kafka-go's
/// `RoundRobin`, Go ekafka's default).
pub const BALANCER_ROUND_ROBIN: &str = "roundRobin";
/// Equal keys go to the partition Go ekafka's `hash` puts them on: kafka-go's `Hash`,
/// the 32-bit FNV-1a of the key made non-negative, modulo the partition count (Sarama's
/// rule too). A Go service and a Rust one writing the same topic keep each key on one
/// partition.
pub const BALANCER_HASH: &str = "hash";
/// Equal keys go to the partition the Java client (and librdkafka's `murmur2_random`)
/// puts them on: murmur2 of the key, its sign bit cleared, modulo the partition count.
pub const BALANCER_MURMUR2: &str = "murmur2";

/// Every built-in balancer name.
const BUILT_IN_BALANCERS: [&str; 3] = [BALANCER_ROUND_ROBIN, BALANCER_HASH, BALANCER_MURMUR2];

/// The librdkafka `partitioner` that does what the built-in `balancer` says, or `None`
/// when it runs as ekafka's partitioner callback. Both hashes leave keyless messages to
/// librdkafka's sticky partitioner (a batch's worth to one partition, then the next),
/// which keeps batches full; kafka-go deals them out one by one, and neither promises
/// keyless messages a partition.
pub(crate) fn native_partitioner(balancer: &str) -> Option<&'static str> {
    match balancer {
        // librdkafka's FNV-1a takes the absolute value of the signed hash before the
        // modulo, which is what Go's `int32(h) % n`, negated when negative, computes;
        // an empty (not null) key is hashed like kafka-go hashes a non-nil empty key.
        BALANCER_HASH => Some("fnv1a_random"),
        BALANCER_MURMUR2 => Some("murmur2_random"),
        _ => None,
    }
}

settings! {
    /// One producer: `[kafka.producers.NAME]`.
    ///
    /// Defaults follow the Go library except:
    /// - `requiredAcks`, which is `-1` (all in-sync replicas) here instead of Go's
    ///   `0`: with `0` a write "succeeds" while the broker may never have received
    ///   the data, so a crash or a leader change loses it without any error
    ///   reaching the caller;
    /// - `batchSize` and `batchTimeout`, librdkafka's `10000` and `5ms` instead of
    ///   Go's `100` and `1s`: with Go's, a single synchronous write took a second
    ///   and writes ran at about half the speed of a tuned producer (figures in
    ///   `guide::benchmarks`).
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub struct ProducerConfig with Default {
        /// where messages go that name no topic of their own.
        pub topic: Option<String> = optional("topic")
            .shown("none (then each message names its topic)"),
        /// `roundRobin`, `hash`, `murmur2`, or a name registered with
        /// `EkafkaBuilder::with_balancer`. `hash` places keys where Go ekafka's
        /// `hash` does (kafka-go's FNV-1a; librdkafka's `partitioner =
        /// fnv1a_random`); `murmur2` where the Java client does (`partitioner =
        /// murmur2_random`); both spread keyless messages with librdkafka's
        /// sticky partitioner. The others are ekafka's partitioner callback, with
        /// sticky partitioning off so keyless messages reach it too.
        pub balancer: String = key("balancer", "\"roundRobin\"")
            .sets("sticky.partitioning.linger.ms"),
        /// attempts per message, the first send included; librdkafka's
        /// retries are one fewer.
        pub max_attempts: u32 = key("maxAttempts", "10")
            .range(1, i64::from(i32::MAX))
            .property_with("message.send.max.retries", |attempts: &u32| (attempts - 1).to_string()),
        /// messages per batch (librdkafka's default; Go's is 100).
        pub batch_size: u32 = key("batchSize", "10000")
            .range(1, i64::from(i32::MAX))
            .property("batch.num.messages"),
        /// the largest message (key, value and headers) the producer sends;
        /// a larger one fails at once, refused locally. Apache Kafka's default
        /// `message.max.bytes` (the broker's, which a topic's
        /// `max.message.bytes` overrides), so what the broker takes is not
        /// refused here; librdkafka's own default is 1,000,000.
        pub max_message_bytes: u32 = key("maxMessageBytes", "1048588")
            .range(1000, 1_000_000_000)
            .property("message.max.bytes"),
        /// bytes per batch.
        pub batch_bytes: u32 = key("batchBytes", "1048576")
            .range(1, i64::from(i32::MAX))
            .property("batch.size"),
        /// how long a batch may wait to fill before it is sent; shorter than
        /// `writeTimeout`. A synchronous write of a few messages waits this
        /// long (Go's `1s`; librdkafka's and the Java client's default here).
        pub batch_timeout: Duration = key("batchTimeout", "\"5ms\"")
            .property_with("linger.ms", linger_millis),
        /// how long to wait for the broker's answer to one request.
        pub read_timeout: Duration = key("readTimeout", "\"10s\"")
            .above_zero()
            .property("request.timeout.ms"),
        /// how long a message may take to be delivered, retries included; also
        /// the `close` flush deadline. A write to a topic the cluster does not
        /// have (and may not create) fails after at most a second
        /// (`topic.metadata.propagation.max.ms`, librdkafka's 30 s otherwise)
        /// with `UnknownTopicOrPartition`, the reason naming the topic; later
        /// writes to it fail at once.
        pub write_timeout: Duration = key("writeTimeout", "\"10s\"")
            .above_zero()
            .property("message.timeout.ms"),
        /// `-1` all in-sync replicas, `1` the leader, `0` none; with `-1` and
        /// `maxAttempts` above 1 also `enable.idempotence = true`.
        pub required_acks: RequiredAcks = key("requiredAcks", "-1")
            .shown("`-1` (all)")
            .property("acks"),
        /// when true, a write answers once its messages are queued, and
        /// delivery failures go to the error subscriber.
        pub async_writes: bool = key("async", "false"),
        /// 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
        pub compression: Compression = key("compression", "0").property("compression.codec"),
        /// makes the producer transactional: it writes only inside
        /// `producer.begin()` transactions, all of whose messages become
        /// visible to `read_committed` readers together, or none. Unique per
        /// producing instance: a second producer that begins a transaction
        /// with it fences the first, whose next transaction call fails with
        /// `Error::Fenced`. Needs `requiredAcks = -1`.
        pub transactional_id: Option<String> = optional("transactionalID")
            .shown("none (not transactional)")
            .sets("transactional.id"),
        /// how long a transaction may stay open before the broker aborts it.
        pub transaction_timeout: Duration = key("transactionTimeout", "\"1m\"")
            .above_zero()
            .property("transaction.timeout.ms"),
        /// raw properties for this client, applied last.
        pub librdkafka: Properties = key("librdkafka", "{}").shown("empty"),
        /// How the client is restarted after a fatal error.
        pub restart: RestartSettings = flatten(),
    }
}

impl Rules for ProducerConfig {
    fn check(&self, section: &Section<'_>) -> Result<(), ConfigError> {
        if let Some(topic) = &self.topic {
            check_topic_name(section, "topic", topic)?;
        }
        if self.transactional_id.is_some() {
            if self.required_acks != RequiredAcks::All {
                return Err(section.invalid(
                    "requiredAcks",
                    section
                        .value("requiredAcks")
                        .expect("set: it is not the default"),
                    "-1 (all replicas): a transactional producer (transactionalID) is idempotent",
                ));
            }
            if self.async_writes {
                return Err(section.invalid(
                    "async",
                    section.value("async").expect("set: it is not the default"),
                    "false: a transaction's writes are answered once delivered",
                ));
            }
            // librdkafka refuses a transactional client whose messages may
            // outlive the transaction they belong to.
            section.check_order(
                "writeTimeout",
                "transactionTimeout",
                self.write_timeout <= self.transaction_timeout,
                format!(
                    "writeTimeout ({}) no longer than transactionTimeout ({}) with transactionalID",
                    format_go_duration(self.write_timeout),
                    format_go_duration(self.transaction_timeout)
                ),
            )?;
        }
        section.check_order(
            "batchTimeout",
            "writeTimeout",
            self.batch_timeout < self.write_timeout,
            format!(
                "batchTimeout ({}) shorter than writeTimeout ({}): a message must leave its batch before its delivery deadline",
                format_go_duration(self.batch_timeout),
                format_go_duration(self.write_timeout)
            ),
        )
    }

    fn derive_properties(&self, props: &mut Properties) {
        // Idempotence keeps per-partition order and avoids duplicates when a retried
        // request had in fact succeeded; librdkafka requires acks=all and retries for it.
        let idempotent = self.required_acks == RequiredAcks::All
            && (self.max_attempts > 1 || self.transactional_id.is_some());
        props.set("enable.idempotence", idempotent.to_string());
        if let Some(id) = &self.transactional_id {
            props.set("transactional.id", id.clone());
        }
        // librdkafka gives a topic the cluster says it lacks 30 s to appear (for
        // metadata still spreading after its creation) before failing its
        // messages, so with writeTimeout below that a write to a missing topic
        // could only ever time out. A second covers propagation on a healthy
        // cluster; past it the write fails naming the topic, and later writes to
        // it fail at once until it exists.
        props.set(
            "topic.metadata.propagation.max.ms",
            MISSING_TOPIC_GRACE.min(self.write_timeout).property_text(),
        );
        if let Some(partitioner) = native_partitioner(&self.balancer) {
            props.set("partitioner", partitioner);
        } else {
            // ekafka's partitioner callback decides; librdkafka skips the callback for
            // keyless messages unless sticky partitioning is off.
            props.set("sticky.partitioning.linger.ms", "0");
        }
    }
}

/// How long a producer waits for a topic the cluster says it lacks to appear.
const MISSING_TOPIC_GRACE: Duration = Duration::from_secs(1);

/// `linger.ms` takes fractions of a millisecond.
fn linger_millis(duration: &Duration) -> String {
    let micros = duration.as_micros();
    if micros.is_multiple_of(1000) {
        (micros / 1000).to_string()
    } else {
        format!("{}", micros as f64 / 1000.0)
    }
}

impl Value for RequiredAcks {
    fn read(section: &Section<'_>, name: &'static str) -> Result<Option<Self>, ConfigError> {
        const EXPECTED: &str = "-1 (all replicas), 1 (leader) or 0 (none)";
        let Some(raw) = section.value(name) else {
            return Ok(None);
        };
        let acks = match raw {
            toml::Value::Integer(-1) => RequiredAcks::All,
            toml::Value::Integer(1) => RequiredAcks::Leader,
            toml::Value::Integer(0) => RequiredAcks::None,
            toml::Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "-1" | "all" => RequiredAcks::All,
                "1" | "one" | "leader" => RequiredAcks::Leader,
                "0" | "none" => RequiredAcks::None,
                _ => return Err(section.invalid(name, raw, EXPECTED)),
            },
            toml::Value::Integer(_) => return Err(section.invalid(name, raw, EXPECTED)),
            other => return Err(section.wrong_type(name, "an integer", other)),
        };
        Ok(Some(acks))
    }
}

impl PropertyText for RequiredAcks {
    fn property_text(&self) -> String {
        match self {
            RequiredAcks::All => "all",
            RequiredAcks::Leader => "1",
            RequiredAcks::None => "0",
        }
        .to_string()
    }
}

impl Value for Compression {
    fn read(section: &Section<'_>, name: &'static str) -> Result<Option<Self>, ConfigError> {
        const EXPECTED: &str = "0 (none), 1 (gzip), 2 (snappy), 3 (lz4) or 4 (zstd)";
        let Some(raw) = section.value(name) else {
            return Ok(None);
        };
        let by_number = |n: i64| match n {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        };
        let codec = match raw {
            toml::Value::Integer(n) => by_number(*n),
            toml::Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "none" | "" => Some(Compression::None),
                "gzip" => Some(Compression::Gzip),
                "snappy" => Some(Compression::Snappy),
                "lz4" => Some(Compression::Lz4),
                "zstd" => Some(Compression::Zstd),
                other => other.parse().ok().and_then(by_number),
            },
            other => return Err(section.wrong_type(name, "an integer from 0 to 4", other)),
        };
        codec
            .map(Some)
            .ok_or_else(|| section.invalid(name, raw, EXPECTED))
    }
}

impl PropertyText for Compression {
    fn property_text(&self) -> String {
        self.codec_name().to_string()
    }
}

/// Checks names `registered` in code (`with_balancer`) against the built-in
/// balancers, and every producer's `balancer` against both; `section` is the
/// config's section (`kafka`).
pub(crate) fn check_balancers(
    section: &str,
    producers: &std::collections::BTreeMap<String, ProducerConfig>,
    registered: &[&str],
) -> Result<(), ConfigError> {
    if let Some(name) = registered
        .iter()
        .find(|name| BUILT_IN_BALANCERS.contains(name))
    {
        return Err(ConfigError::new(
            format!("{section}.producers.*.balancer"),
            ConfigProblem::InvalidValue {
                found: format!("{name:?} (registered with with_balancer)"),
                expected: format!(
                    "a name other than the built-in {}",
                    BUILT_IN_BALANCERS.map(|b| format!("{b:?}")).join(", ")
                ),
            },
        ));
    }
    for (name, producer) in producers {
        let balancer = producer.balancer.as_str();
        let known = BUILT_IN_BALANCERS.contains(&balancer) || registered.contains(&balancer);
        if !known {
            let mut names = BUILT_IN_BALANCERS.to_vec();
            names.extend(registered);
            return Err(ConfigError::new(
                format!("{section}.producers.{name}.balancer"),
                ConfigProblem::InvalidValue {
                    found: format!("{balancer:?}"),
                    expected: format!("one of {}", names.join(", ")),
                },
            ));
        }
    }
    Ok(())
}
