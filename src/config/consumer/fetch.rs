//! Fetch and commit settings, shared by consumers and consumer groups.

use std::time::Duration;

use super::super::error::ConfigError;
use super::super::key::{settings, PropertyText, Rules, Value};
use super::super::properties::Properties;
use super::super::reader::Section;

/// Where a consumer without a committed offset starts (`startOffset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartOffset {
    /// `-2`: the oldest message still stored (the default).
    First,
    /// `-1`: only messages produced from now on.
    Last,
}

/// Which messages of transactional producers a consumer reads
/// (`isolationLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IsolationLevel {
    /// `"read_committed"`: only messages of committed transactions (and
    /// every non-transactional one), in offset order (the default).
    ReadCommitted,
    /// `"read_uncommitted"`: every message, aborted transactions' too.
    ReadUncommitted,
}

impl Value for IsolationLevel {
    fn read(section: &Section<'_>, name: &'static str) -> Result<Option<Self>, ConfigError> {
        const EXPECTED: &str = "\"read_committed\" or \"read_uncommitted\"";
        let Some(raw) = section.value(name) else {
            return Ok(None);
        };
        match raw {
            toml::Value::String(s) => {
                match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
                    "read_committed" | "readcommitted" => Ok(Some(IsolationLevel::ReadCommitted)),
                    "read_uncommitted" | "readuncommitted" => {
                        Ok(Some(IsolationLevel::ReadUncommitted))
                    }
                    _ => Err(section.invalid(name, raw, EXPECTED)),
                }
            }
            other => Err(section.wrong_type(name, EXPECTED, other)),
        }
    }
}

impl PropertyText for IsolationLevel {
    fn property_text(&self) -> String {
        match self {
            IsolationLevel::ReadCommitted => "read_committed",
            IsolationLevel::ReadUncommitted => "read_uncommitted",
        }
        .to_string()
    }
}

settings! {
    /// Fetch and commit settings shared by consumers and consumer groups.
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub struct FetchSettings with Default {
        /// where a partition without a committed offset starts: `-2` (or
        /// `"first"`) the oldest message kept, `-1` (or `"last"`) the next one
        /// written.
        pub start_offset: StartOffset = key("startOffset", "-2")
            .shown("`-2` (first); `-1` last; number or string")
            .property("auto.offset.reset"),
        /// `"read_committed"`: of transactional producers' messages, only
        /// those of committed transactions; `"read_uncommitted"`: all.
        pub isolation_level: IsolationLevel = key("isolationLevel", "\"read_committed\"")
            .property("isolation.level"),
        /// the least data a fetch waits for.
        pub min_bytes: u32 = key("minBytes", "1")
            .range(1, 100_000_000)
            .property("fetch.min.bytes"),
        /// the most data fetched per partition per request.
        pub max_bytes: u32 = key("maxBytes", "1048576")
            .range(1, 1_000_000_000)
            .sets("max.partition.fetch.bytes"),
        /// how long the broker may hold a fetch waiting for `minBytes`; at most
        /// `50ms` for groups. librdkafka's fetch covers all of a broker's
        /// partitions and leaves out those whose prefetch queue is full, so a
        /// long wait on a quiet one holds a busy one up (kafka-go, whose 10s
        /// default this was, fetches each partition on its own). The price: an
        /// idle group member asks each broker for data up to 20 times a second.
        pub max_wait: Duration = key("maxWait", "\"500ms\"")
            .shown("`\"500ms\"` (librdkafka's; Go: `\"10s\"`)")
            .sets("fetch.wait.max.ms"),
        /// the first delay when retrying a failed request.
        pub read_backoff_min: Duration = key("readBackoffMin", "\"100ms\"")
            .property("retry.backoff.ms"),
        /// the longest delay when retrying a failed request.
        pub read_backoff_max: Duration = key("readBackoffMax", "\"1s\"")
            .property("retry.backoff.max.ms"),
        /// ekafka's commit batching: `0` commits as soon as messages are
        /// acknowledged (a group) or at each `commit` call (a consumer with a
        /// `groupID`); otherwise at most once per interval, and at a revoke
        /// and at close.
        pub commit_interval: Duration = key("commitInterval", "\"0\""),
        /// how often ekafka refreshes the lag metric (`ekafka_consumer_lag`);
        /// negative disables it (`None`).
        pub read_lag_interval: Option<Duration> = key("readLagInterval", "\"1m\"")
            .shown("`\"1m\"`; negative disables"),
    }
}

impl Rules for FetchSettings {
    fn check(&self, section: &Section<'_>) -> Result<(), ConfigError> {
        section.check_order(
            "readBackoffMin",
            "readBackoffMax",
            self.read_backoff_min <= self.read_backoff_max,
            "readBackoffMin no larger than readBackoffMax",
        )
    }

    fn derive_properties(&self, props: &mut Properties) {
        // ekafka commits only what was handled.
        props.set("enable.auto.commit", "false");
        props.set("enable.auto.offset.store", "false");
    }
}

impl Value for StartOffset {
    fn read(section: &Section<'_>, name: &'static str) -> Result<Option<Self>, ConfigError> {
        const EXPECTED: &str = "-2 (first offset) or -1 (last offset)";
        let Some(raw) = section.value(name) else {
            return Ok(None);
        };
        let parsed = match raw {
            toml::Value::Integer(n) => Some(*n),
            toml::Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "first" | "earliest" | "firstoffset" => Some(-2),
                "last" | "latest" | "lastoffset" => Some(-1),
                other => match other.parse::<i64>() {
                    Ok(n) => Some(n),
                    Err(_) => return Err(section.invalid(name, raw, EXPECTED)),
                },
            },
            other => return Err(section.wrong_type(name, "an integer", other)),
        };
        match parsed {
            Some(-2) => Ok(Some(StartOffset::First)),
            Some(-1) => Ok(Some(StartOffset::Last)),
            _ => Err(section.invalid(name, raw, EXPECTED)),
        }
    }
}

impl PropertyText for StartOffset {
    fn property_text(&self) -> String {
        match self {
            StartOffset::First => "earliest",
            StartOffset::Last => "latest",
        }
        .to_string()
    }
}
