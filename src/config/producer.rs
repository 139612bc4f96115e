//! `[kafka.producers.NAME]`

use std::time::Duration;

use super::duration::format_go_duration;
use super::error::{ConfigError, ConfigProblem};
use super::kafka::Config;
use super::properties::Properties;
use super::reader::Section;
use super::restart::RestartSettings;

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
pub const BALANCER_ROUND_ROBIN: &str = "roundRobin";
/// Equal keys go to the same partition (murmur2, as the Java client does).
pub const BALANCER_HASH: &str = "hash";

/// One producer: `[kafka.producers.NAME]`.
///
/// Defaults follow the Go library except `requiredAcks`, which is `-1` (all
/// in-sync replicas) here instead of Go's `0`: with `0` a write "succeeds" while the
/// broker may never have received the data, so a crash or a leader change loses it
/// without any error reaching the caller.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// `topic`: where messages go when they name no topic of their own.
    pub topic: Option<String>,
    /// `balancer`: `roundRobin` (default), `hash`, or a name registered with
    /// [`EkafkaBuilder::with_balancer`](crate::EkafkaBuilder::with_balancer).
    pub balancer: String,
    /// `maxAttempts` (10): attempts per message, the first send included.
    pub max_attempts: u32,
    /// `batchSize` (100): messages per batch.
    pub batch_size: u32,
    /// `batchBytes` (1 MiB): bytes per batch.
    pub batch_bytes: u32,
    /// `batchTimeout` (1s): how long a batch may wait to fill before it is sent.
    pub batch_timeout: Duration,
    /// `readTimeout` (10s): how long to wait for the broker's answer to one request.
    pub read_timeout: Duration,
    /// `writeTimeout` (10s): how long a message may take to be delivered, retries included.
    pub write_timeout: Duration,
    /// `requiredAcks` (-1).
    pub required_acks: RequiredAcks,
    /// `async` (false): when true, a write returns once the messages are queued and
    /// delivery failures go to the error subscriber.
    pub async_writes: bool,
    /// `compression` (0).
    pub compression: Compression,
    /// `librdkafka`: raw properties for this producer, applied last.
    pub librdkafka: Properties,
    /// `maxRestarts`, `restartWindow`, `restartBackoff`, `restartBackoffMax`: how
    /// the client is restarted after a fatal error.
    pub restart: RestartSettings,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            topic: None,
            balancer: BALANCER_ROUND_ROBIN.to_string(),
            max_attempts: 10,
            batch_size: 100,
            batch_bytes: 1024 * 1024,
            batch_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            required_acks: RequiredAcks::All,
            async_writes: false,
            compression: Compression::None,
            librdkafka: Properties::default(),
            restart: RestartSettings::default(),
        }
    }
}

impl ProducerConfig {
    pub(crate) fn read(section: &Section<'_>) -> Result<Self, ConfigError> {
        let defaults = ProducerConfig::default();
        let config = ProducerConfig {
            topic: section.string("topic")?.filter(|t| !t.is_empty()),
            balancer: section
                .string("balancer")?
                .filter(|b| !b.is_empty())
                .unwrap_or(defaults.balancer),
            max_attempts: positive_u32(section, "maxAttempts")?.unwrap_or(defaults.max_attempts),
            batch_size: positive_u32(section, "batchSize")?.unwrap_or(defaults.batch_size),
            batch_bytes: positive_u32(section, "batchBytes")?.unwrap_or(defaults.batch_bytes),
            batch_timeout: section
                .duration("batchTimeout")?
                .unwrap_or(defaults.batch_timeout),
            read_timeout: section
                .duration("readTimeout")?
                .unwrap_or(defaults.read_timeout),
            write_timeout: section
                .duration("writeTimeout")?
                .unwrap_or(defaults.write_timeout),
            required_acks: read_acks(section)?.unwrap_or(defaults.required_acks),
            async_writes: section.bool("async")?.unwrap_or(defaults.async_writes),
            compression: read_compression(section)?.unwrap_or(defaults.compression),
            librdkafka: section.properties("librdkafka")?.into_iter().collect(),
            restart: RestartSettings::read(section)?,
        };
        section.check_order(
            "batchTimeout",
            "writeTimeout",
            config.batch_timeout < config.write_timeout,
            format!(
                "batchTimeout ({}) shorter than writeTimeout ({}): a message must leave its batch before its delivery deadline",
                format_go_duration(config.batch_timeout),
                format_go_duration(config.write_timeout)
            ),
        )?;
        if config.read_timeout.is_zero() || config.write_timeout.is_zero() {
            let key = if config.read_timeout.is_zero() {
                "readTimeout"
            } else {
                "writeTimeout"
            };
            return Err(section.invalid(
                key,
                section.value(key).expect("zero only when set"),
                "a duration above zero",
            ));
        }
        Ok(config)
    }
}

fn positive_u32(section: &Section<'_>, name: &'static str) -> Result<Option<u32>, ConfigError> {
    Ok(section
        .integer_in(name, 1, i64::from(i32::MAX))?
        .map(|v| v as u32))
}

fn read_acks(section: &Section<'_>) -> Result<Option<RequiredAcks>, ConfigError> {
    const EXPECTED: &str = "-1 (all replicas), 1 (leader) or 0 (none)";
    let Some(raw) = section.value("requiredAcks") else {
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
            _ => return Err(section.invalid("requiredAcks", raw, EXPECTED)),
        },
        toml::Value::Integer(_) => return Err(section.invalid("requiredAcks", raw, EXPECTED)),
        other => return Err(section.wrong_type("requiredAcks", "an integer", other)),
    };
    Ok(Some(acks))
}

fn read_compression(section: &Section<'_>) -> Result<Option<Compression>, ConfigError> {
    const EXPECTED: &str = "0 (none), 1 (gzip), 2 (snappy), 3 (lz4) or 4 (zstd)";
    let Some(raw) = section.value("compression") else {
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
        other => return Err(section.wrong_type("compression", "an integer from 0 to 4", other)),
    };
    codec
        .map(Some)
        .ok_or_else(|| section.invalid("compression", raw, EXPECTED))
}

/// Checks names `registered` in code (`with_balancer`) against the built-in
/// balancers, and every producer's `balancer` against both.
pub(crate) fn check_balancers(config: &Config, registered: &[&str]) -> Result<(), ConfigError> {
    let section = &config.section;
    if let Some(name) = registered
        .iter()
        .find(|name| [BALANCER_HASH, BALANCER_ROUND_ROBIN].contains(name))
    {
        return Err(ConfigError::new(
            format!("{section}.producers.*.balancer"),
            ConfigProblem::InvalidValue {
                found: format!("{name:?} (registered with with_balancer)"),
                expected: "a name other than the built-in \"hash\" and \"roundRobin\"".into(),
            },
        ));
    }
    for (name, producer) in &config.producers {
        let balancer = producer.balancer.as_str();
        let known = [BALANCER_HASH, BALANCER_ROUND_ROBIN].contains(&balancer)
            || registered.contains(&balancer);
        if !known {
            let mut names = vec![BALANCER_ROUND_ROBIN, BALANCER_HASH];
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
