//! `[kafka.consumers.NAME]` and `[kafka.consumerGroups.NAME]`: the keys both share
//! (fetching, group membership) and what is particular to each.

use std::time::Duration;

use super::error::{ConfigError, ConfigProblem};
use super::properties::Properties;
use super::reader::Section;
use super::restart::RestartSettings;

/// Where a consumer without a committed offset starts (`startOffset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartOffset {
    /// `-2`: the oldest message still stored (the default).
    First,
    /// `-1`: only messages produced from now on.
    Last,
}

/// Partition assignment strategy of a group (`groupBalancers`; ignored by the Go
/// library, honoured here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupBalancer {
    /// `range`: contiguous partition ranges per member.
    Range,
    /// `roundRobin`: partitions dealt out one by one.
    RoundRobin,
    /// `cooperativeSticky`: incremental rebalancing that keeps assignments stable.
    CooperativeSticky,
}

impl GroupBalancer {
    /// The librdkafka `partition.assignment.strategy` name.
    #[must_use]
    pub fn strategy_name(self) -> &'static str {
        match self {
            GroupBalancer::Range => "range",
            GroupBalancer::RoundRobin => "roundrobin",
            GroupBalancer::CooperativeSticky => "cooperative-sticky",
        }
    }
}

/// Fetch and commit settings shared by consumers and consumer groups.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FetchSettings {
    /// `minBytes` (1): the least data a fetch waits for.
    pub min_bytes: u32,
    /// `maxBytes` (1 MiB): the most data fetched per partition per request.
    pub max_bytes: u32,
    /// `maxWait` (500ms): how long the broker may hold a fetch waiting for
    /// `minBytes`. librdkafka's default, not kafka-go's 10s: librdkafka fetches
    /// all of a broker's partitions in one request, so a long wait on a quiet
    /// partition holds up the others (groups cap it at 50ms).
    pub max_wait: Duration,
    /// `readLagInterval` (1m): how often lag is refreshed; negative disables it (`None`).
    pub read_lag_interval: Option<Duration>,
    /// `commitInterval` (0): 0 commits synchronously; otherwise commits are batched.
    pub commit_interval: Duration,
    /// `startOffset` (-2, first).
    pub start_offset: StartOffset,
    /// `readBackoffMin` (100ms): first delay when retrying a failed request.
    pub read_backoff_min: Duration,
    /// `readBackoffMax` (1s): largest delay when retrying a failed request.
    pub read_backoff_max: Duration,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            min_bytes: 1,
            max_bytes: 1024 * 1024,
            max_wait: Duration::from_millis(500),
            read_lag_interval: Some(Duration::from_secs(60)),
            commit_interval: Duration::ZERO,
            start_offset: StartOffset::First,
            read_backoff_min: Duration::from_millis(100),
            read_backoff_max: Duration::from_secs(1),
        }
    }
}

/// The consumer group protocol (`groupProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupProtocol {
    /// `classic` (the default): members join, the leader member assigns.
    Classic,
    /// `consumer`: KIP-848, the protocol of Kafka 4; the broker assigns
    /// partitions and decides the session timeout and heartbeat interval
    /// (`group.consumer.*` broker settings), so `heartbeatInterval`,
    /// `sessionTimeout` and `groupBalancers` cannot be set with it.
    Consumer,
}

impl GroupProtocol {
    /// librdkafka's `group.protocol` value.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            GroupProtocol::Classic => "classic",
            GroupProtocol::Consumer => "consumer",
        }
    }
}

/// Keys the broker decides under `groupProtocol = "consumer"`.
const CLASSIC_ONLY_REASON: &str =
    "with groupProtocol = \"consumer\" (KIP-848) the broker decides this (its group.consumer.* settings)";

/// Group membership settings shared by consumers (with `groupID`) and consumer groups.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GroupSettings {
    /// `groupProtocol` (`"classic"`): `"consumer"` selects KIP-848.
    pub protocol: GroupProtocol,
    /// `heartbeatInterval` (3s).
    pub heartbeat_interval: Duration,
    /// `sessionTimeout` (30s): silence after which the coordinator drops a member.
    pub session_timeout: Duration,
    /// `rebalanceTimeout` (30s): how long the coordinator waits for members to rejoin.
    pub rebalance_timeout: Duration,
    /// `joinGroupBackoff` (5s): delay before rejoining after a failure.
    pub join_group_backoff: Duration,
    /// `retentionTime`: how long the broker keeps the group's offsets; `None` (-1)
    /// leaves it to the broker's `offsets.retention.minutes`.
    pub retention_time: Option<Duration>,
    /// `watchPartitionChanges` (false): rebalance when partitions are added.
    pub watch_partition_changes: bool,
    /// `partitionWatchInterval` (5s): how often partition changes are looked for.
    pub partition_watch_interval: Duration,
}

impl GroupSettings {
    fn defaults(retention_time: Option<Duration>) -> Self {
        GroupSettings {
            protocol: GroupProtocol::Classic,
            heartbeat_interval: Duration::from_secs(3),
            session_timeout: Duration::from_secs(30),
            rebalance_timeout: Duration::from_secs(30),
            join_group_backoff: Duration::from_secs(5),
            retention_time,
            watch_partition_changes: false,
            partition_watch_interval: Duration::from_secs(5),
        }
    }
}

/// What a `[kafka.consumers.NAME]` reads: one partition, or a share of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsumerAssignment {
    /// `partition = N` (no `groupID`): reads that partition alone, no commits.
    Partition(i32),
    /// `groupID = "..."`: joins the group and commits there.
    Group(String),
}

/// One consumer: `[kafka.consumers.NAME]`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// `topic` (required).
    pub topic: String,
    /// `partition` or `groupID` (they exclude each other; neither means partition 0).
    pub assignment: ConsumerAssignment,
    /// Fetch and commit settings.
    pub fetch: FetchSettings,
    /// Group settings, used when `groupID` is set.
    pub group: GroupSettings,
    /// `librdkafka`: raw properties for this consumer, applied last.
    pub librdkafka: Properties,
    /// `maxRestarts`, `restartWindow`, `restartBackoff`, `restartBackoffMax`: how
    /// the client is replaced after a fatal error.
    pub restart: RestartSettings,
}

/// One consumer group member: `[kafka.consumerGroups.NAME]`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConsumerGroupConfig {
    /// `groupID` (required).
    pub group_id: String,
    /// `topic`, or `topics` for several (the Go library allowed only one).
    pub topics: Vec<String>,
    /// Fetch and commit settings.
    pub fetch: FetchSettings,
    /// Group settings.
    pub group: GroupSettings,
    /// `timeout` (5s): network timeout for requests to the group coordinator
    /// (commits, committed-offset lookups).
    pub timeout: Duration,
    /// `groupBalancers` (range, then roundRobin).
    pub group_balancers: Vec<GroupBalancer>,
    /// How many messages may be in the process at once, and how they are handed out.
    pub flow: FlowSettings,
    /// `librdkafka`: raw properties for this group, applied last.
    pub librdkafka: Properties,
    /// `maxRestarts`, `restartWindow`, `restartBackoff`, `restartBackoffMax`: how
    /// the member is restarted after a fatal error.
    pub restart: RestartSettings,
}

/// Flow control of a consumer group (keys ekafka adds to the Go ones).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowSettings {
    /// `maxBuffered` (10000): the most messages held at once, from fetch until
    /// acknowledged. At the bound the group pauses its partitions and resumes them
    /// once subscribers have caught up to half of it.
    pub max_buffered: usize,
    /// `maxBufferedBytes` (16 MiB): the most bytes of messages (keys, values
    /// and headers) held at once, from fetch until acknowledged, checked like
    /// `maxBuffered`. librdkafka's prefetch is sized from it too (all
    /// partitions together prefetch at most as much): see the README's
    /// "Memory" section for the bound it gives.
    pub max_buffered_bytes: usize,
    /// `deliveryBatch` (500): the most messages of one partition in one batch to a
    /// subscriber.
    pub delivery_batch: usize,
    /// `drainTimeout` (10s): on revoke and close, how long to wait for outstanding
    /// acknowledgements before committing what was acknowledged and letting go.
    pub drain_timeout: Duration,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings {
            max_buffered: 10_000,
            max_buffered_bytes: 16 * 1024 * 1024,
            delivery_batch: 500,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

impl ConsumerConfig {
    pub(crate) fn read(section: &Section<'_>) -> Result<Self, ConfigError> {
        let topic = required_string(section, "topic")?;
        let partition = section.integer_in("partition", 0, i64::from(i32::MAX))?;
        let group_id = section.string("groupID")?.filter(|g| !g.is_empty());
        let assignment = match (partition, group_id) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    section.key_path("partition"),
                    ConfigProblem::Conflict {
                        other: section.key_path("groupID"),
                        reason: "a consumer reads either one partition or a group's share; remove one of them",
                    },
                ))
            }
            (_, Some(group)) => ConsumerAssignment::Group(group),
            (partition, None) => ConsumerAssignment::Partition(partition.unwrap_or(0) as i32),
        };
        let config = ConsumerConfig {
            topic,
            assignment,
            fetch: read_fetch(section)?,
            group: read_group(
                section,
                GroupSettings::defaults(Some(Duration::from_secs(24 * 3600))),
            )?,
            librdkafka: section.properties("librdkafka")?.into_iter().collect(),
            restart: RestartSettings::read(section)?,
        };
        Ok(config)
    }
}

impl ConsumerGroupConfig {
    pub(crate) fn read(section: &Section<'_>) -> Result<Self, ConfigError> {
        let group_id = required_string(section, "groupID")?;
        let topics = read_topics(section)?;
        let group = read_group(section, GroupSettings::defaults(None))?;
        if group.protocol == GroupProtocol::Consumer {
            reject_classic_only(section, &["groupBalancers"])?;
        }
        let config = ConsumerGroupConfig {
            group_id,
            topics,
            fetch: read_fetch(section)?,
            group,
            timeout: section
                .duration("timeout")?
                .unwrap_or(Duration::from_secs(5)),
            group_balancers: read_group_balancers(section)?,
            flow: read_flow(section)?,
            librdkafka: section.properties("librdkafka")?.into_iter().collect(),
            restart: RestartSettings::read(section)?,
        };
        Ok(config)
    }
}

fn read_flow(section: &Section<'_>) -> Result<FlowSettings, ConfigError> {
    let defaults = FlowSettings::default();
    let flow = FlowSettings {
        max_buffered: section
            .integer_in("maxBuffered", 1, 10_000_000)?
            .map_or(defaults.max_buffered, |v| v as usize),
        max_buffered_bytes: section
            .integer_in("maxBufferedBytes", 1024, 1 << 40)?
            .map_or(defaults.max_buffered_bytes, |v| v as usize),
        delivery_batch: section
            .integer_in("deliveryBatch", 1, 100_000)?
            .map_or(defaults.delivery_batch, |v| v as usize),
        drain_timeout: section
            .duration("drainTimeout")?
            .unwrap_or(defaults.drain_timeout),
    };
    section.check_order(
        "deliveryBatch",
        "maxBuffered",
        flow.delivery_batch <= flow.max_buffered,
        format!(
            "deliveryBatch ({}) no larger than maxBuffered ({})",
            flow.delivery_batch, flow.max_buffered
        ),
    )?;
    Ok(flow)
}

fn required_string(section: &Section<'_>, name: &'static str) -> Result<String, ConfigError> {
    match section.string(name)? {
        Some(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(section.missing(name)),
    }
}

fn read_topics(section: &Section<'_>) -> Result<Vec<String>, ConfigError> {
    let single = section.string("topic")?.filter(|t| !t.is_empty());
    let several = section.string_list("topics")?.unwrap_or_default();
    match (single, several.is_empty()) {
        (Some(_), false) => Err(ConfigError::new(
            section.key_path("topic"),
            ConfigProblem::Conflict {
                other: section.key_path("topics"),
                reason: "name the topics in one of the two keys",
            },
        )),
        (Some(topic), true) => Ok(vec![topic]),
        (None, false) => Ok(several),
        (None, true) => Err(section.missing("topic")),
    }
}

fn read_fetch(section: &Section<'_>) -> Result<FetchSettings, ConfigError> {
    let defaults = FetchSettings::default();
    let fetch = FetchSettings {
        min_bytes: section
            .integer_in("minBytes", 1, 100_000_000)?
            .map_or(defaults.min_bytes, |v| v as u32),
        max_bytes: section
            .integer_in("maxBytes", 1, 1_000_000_000)?
            .map_or(defaults.max_bytes, |v| v as u32),
        max_wait: section.duration("maxWait")?.unwrap_or(defaults.max_wait),
        read_lag_interval: section
            .duration_or_disabled("readLagInterval")?
            .unwrap_or(defaults.read_lag_interval),
        commit_interval: section
            .duration("commitInterval")?
            .unwrap_or(defaults.commit_interval),
        start_offset: read_start_offset(section)?.unwrap_or(defaults.start_offset),
        read_backoff_min: section
            .duration("readBackoffMin")?
            .unwrap_or(defaults.read_backoff_min),
        read_backoff_max: section
            .duration("readBackoffMax")?
            .unwrap_or(defaults.read_backoff_max),
    };
    section.check_order(
        "readBackoffMin",
        "readBackoffMax",
        fetch.read_backoff_min <= fetch.read_backoff_max,
        "readBackoffMin no larger than readBackoffMax",
    )?;
    Ok(fetch)
}

fn read_group(
    section: &Section<'_>,
    defaults: GroupSettings,
) -> Result<GroupSettings, ConfigError> {
    let protocol = match section.string("groupProtocol")? {
        None => defaults.protocol,
        Some(name) => match name.trim().to_ascii_lowercase().as_str() {
            "classic" => GroupProtocol::Classic,
            "consumer" => GroupProtocol::Consumer,
            _ => {
                let raw = section.value("groupProtocol").expect("present: just read");
                return Err(section.invalid("groupProtocol", raw, "\"classic\" or \"consumer\""));
            }
        },
    };
    if protocol == GroupProtocol::Consumer {
        reject_classic_only(section, &["heartbeatInterval", "sessionTimeout"])?;
    }
    let group = GroupSettings {
        protocol,
        heartbeat_interval: section
            .duration("heartbeatInterval")?
            .unwrap_or(defaults.heartbeat_interval),
        session_timeout: section
            .duration("sessionTimeout")?
            .unwrap_or(defaults.session_timeout),
        rebalance_timeout: section
            .duration("rebalanceTimeout")?
            .unwrap_or(defaults.rebalance_timeout),
        join_group_backoff: section
            .duration("joinGroupBackoff")?
            .unwrap_or(defaults.join_group_backoff),
        retention_time: section
            .duration_or_disabled("retentionTime")?
            .unwrap_or(defaults.retention_time),
        watch_partition_changes: section
            .bool("watchPartitionChanges")?
            .unwrap_or(defaults.watch_partition_changes),
        partition_watch_interval: section
            .duration("partitionWatchInterval")?
            .unwrap_or(defaults.partition_watch_interval),
    };
    section.check_order(
        "heartbeatInterval",
        "sessionTimeout",
        group.heartbeat_interval < group.session_timeout,
        "heartbeatInterval shorter than sessionTimeout",
    )?;
    Ok(group)
}

/// Fails on the first of `keys` that is set: the broker decides it under
/// the consumer protocol, and librdkafka would refuse the client.
pub(super) fn reject_classic_only(
    section: &Section<'_>,
    keys: &[&'static str],
) -> Result<(), ConfigError> {
    match keys.iter().find(|key| section.value(key).is_some()) {
        Some(key) => Err(ConfigError::new(
            section.key_path(key),
            ConfigProblem::Conflict {
                other: section.key_path("groupProtocol"),
                reason: CLASSIC_ONLY_REASON,
            },
        )),
        None => Ok(()),
    }
}

fn read_start_offset(section: &Section<'_>) -> Result<Option<StartOffset>, ConfigError> {
    const EXPECTED: &str = "-2 (first offset) or -1 (last offset)";
    let Some(raw) = section.value("startOffset") else {
        return Ok(None);
    };
    let parsed = match raw {
        toml::Value::Integer(n) => Some(*n),
        toml::Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "first" | "earliest" | "firstoffset" => Some(-2),
            "last" | "latest" | "lastoffset" => Some(-1),
            other => match other.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => return Err(section.invalid("startOffset", raw, EXPECTED)),
            },
        },
        other => return Err(section.wrong_type("startOffset", "an integer", other)),
    };
    match parsed {
        Some(-2) => Ok(Some(StartOffset::First)),
        Some(-1) => Ok(Some(StartOffset::Last)),
        _ => Err(section.invalid("startOffset", raw, EXPECTED)),
    }
}

fn read_group_balancers(section: &Section<'_>) -> Result<Vec<GroupBalancer>, ConfigError> {
    const EXPECTED: &str = "a list of \"range\", \"roundRobin\" or \"cooperativeSticky\"";
    let Some(names) = section.string_list("groupBalancers")? else {
        return Ok(vec![GroupBalancer::Range, GroupBalancer::RoundRobin]);
    };
    let raw = section.value("groupBalancers").expect("present: just read");
    if names.is_empty() {
        return Err(section.invalid("groupBalancers", raw, EXPECTED));
    }
    names
        .iter()
        .map(|name| match super::reader::normalize_key(name).as_str() {
            "range" => Ok(GroupBalancer::Range),
            "roundrobin" => Ok(GroupBalancer::RoundRobin),
            "cooperativesticky" => Ok(GroupBalancer::CooperativeSticky),
            _ => Err(section.invalid(
                "groupBalancers",
                &toml::Value::String(name.clone()),
                EXPECTED,
            )),
        })
        .collect()
}
