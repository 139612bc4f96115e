//! Group membership settings, shared by consumers (with `groupID`) and
//! consumer groups: the protocol, its timings, the assignment strategies.

use std::time::Duration;

use super::super::error::{ConfigError, ConfigProblem};
use super::super::key::{settings, PropertyText, Rules, Value};
use super::super::properties::Properties;
use super::super::reader::{normalize_key, Section};
use super::super::restart::RestartSettings;

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

/// The longest `group.instance.id` Kafka accepts.
const MAX_INSTANCE_ID: usize = 249;

/// Keys the broker decides under `groupProtocol = "consumer"`.
const CLASSIC_ONLY_REASON: &str =
    "with groupProtocol = \"consumer\" (KIP-848) the broker decides this (its group.consumer.* settings)";

settings! {
    /// Group membership settings shared by consumers (with `groupID`) and consumer groups.
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub struct GroupSettings with Default {
        /// `"consumer"` selects KIP-848 (Kafka 4; `group.protocol = consumer`),
        /// where the broker assigns partitions and sets the timings, so
        /// `heartbeatInterval`, `sessionTimeout` and `groupBalancers` are errors
        /// with it; `"classic"` leaves librdkafka's default.
        pub protocol: GroupProtocol = key("groupProtocol", "\"classic\""),
        /// how often a member tells the coordinator it is alive (classic
        /// protocol).
        pub heartbeat_interval: Duration = key("heartbeatInterval", "\"3s\"")
            .sets("heartbeat.interval.ms"),
        /// the silence after which the coordinator drops a member (classic
        /// protocol).
        pub session_timeout: Duration = key("sessionTimeout", "\"30s\"")
            .sets("session.timeout.ms"),
        /// how long the coordinator waits for members to rejoin (librdkafka's
        /// JoinGroup rebalance timeout, at least `sessionTimeout`).
        pub rebalance_timeout: Duration = key("rebalanceTimeout", "\"30s\"")
            .sets("max.poll.interval.ms"),
        /// static membership (KIP-345): a name unique to
        /// this process within the group, kept across its restarts (a pod's
        /// name, say). A member that stops with one does not leave the group:
        /// restarted within `sessionTimeout` it gets its partitions back with no
        /// rebalance, and no other member's partitions move; until then its
        /// partitions wait for it. Letters, digits, `.`, `_` and `-`, at most
        /// 249. Under `groupProtocol = "consumer"` a member killed without
        /// closing cannot rejoin under the same name before the broker's session
        /// expires.
        pub instance_id: Option<String> = optional("instanceID").sets("group.instance.id"),
        /// the delay before a member that failed rejoins: its first restart
        /// delay (`restartBackoff`, which it replaces; the two together are an
        /// error). Go's default is 5s; unset, the restart policy's applies.
        pub join_group_backoff: Option<Duration> = optional("joinGroupBackoff")
            .shown("none (`restartBackoff`'s)"),
        /// only `"-1"` (the broker's `offsets.retention.minutes` applies): since
        /// Kafka 2.1 (KIP-211) a commit carries no retention time, so any other
        /// value is refused rather than ignored (`None`).
        pub retention_time: Option<Duration> = key("retentionTime", "\"-1\""),
        /// rebalance when partitions are added, looking for them every
        /// `partitionWatchInterval`.
        pub watch_partition_changes: bool = key("watchPartitionChanges", "false")
            .sets("topic.metadata.refresh.interval.ms"),
        /// how often partition changes are looked for.
        pub partition_watch_interval: Duration = key("partitionWatchInterval", "\"5s\""),
    }
}

impl GroupSettings {
    /// `restart` with `joinGroupBackoff` as its first delay, when set.
    #[must_use]
    pub fn restart_settings(&self, restart: &RestartSettings) -> RestartSettings {
        let mut settings = restart.clone();
        if settings.backoff.is_none() {
            settings.backoff = self.join_group_backoff;
        }
        settings
    }
}

impl Rules for GroupSettings {
    fn check(&self, section: &Section<'_>) -> Result<(), ConfigError> {
        if self.join_group_backoff.is_some() && section.value("restartBackoff").is_some() {
            return Err(ConfigError::new(
                section.key_path("joinGroupBackoff"),
                ConfigProblem::Conflict {
                    other: section.key_path("restartBackoff"),
                    reason: "both set a failed member's first restart delay; keep one",
                },
            ));
        }
        if self.retention_time.is_some() {
            let raw = section
                .value("retentionTime")
                .expect("set: not the default");
            return Err(section.invalid(
                "retentionTime",
                raw,
                "\"-1\": librdkafka's offset commits carry no retention time (removed from \
                 OffsetCommit in Kafka 2.1, KIP-211), so the broker's \
                 offsets.retention.minutes applies; remove the key or set it to \"-1\"",
            ));
        }
        if self.protocol == GroupProtocol::Consumer {
            reject_classic_only(section, &["heartbeatInterval", "sessionTimeout"])?;
        }
        if let Some(id) = &self.instance_id {
            let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if id.len() > MAX_INSTANCE_ID || !id.chars().all(legal) {
                let raw = section.value("instanceID").expect("set: it was read");
                return Err(section.invalid(
                    "instanceID",
                    raw,
                    "at most 249 letters, digits, '.', '_' or '-' (Kafka's rule for group.instance.id)",
                ));
            }
        }
        section.check_order(
            "heartbeatInterval",
            "sessionTimeout",
            self.heartbeat_interval < self.session_timeout,
            "heartbeatInterval shorter than sessionTimeout",
        )
    }

    fn derive_properties(&self, props: &mut Properties) {
        if self.protocol == GroupProtocol::Consumer {
            // KIP-848: the broker owns the session and heartbeat timings.
            props.set("group.protocol", self.protocol.name());
        } else {
            props.set(
                "heartbeat.interval.ms",
                self.heartbeat_interval.property_text(),
            );
            props.set("session.timeout.ms", self.session_timeout.property_text());
        }
        props.set(
            "max.poll.interval.ms",
            self.rebalance_timeout
                .max(self.session_timeout)
                .property_text(),
        );
        if let Some(id) = &self.instance_id {
            props.set("group.instance.id", id.clone());
        }
        if self.watch_partition_changes {
            props.set(
                "topic.metadata.refresh.interval.ms",
                self.partition_watch_interval.property_text(),
            );
        }
    }
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

impl Value for GroupProtocol {
    fn read(section: &Section<'_>, name: &'static str) -> Result<Option<Self>, ConfigError> {
        let Some(text) = section.string(name)? else {
            return Ok(None);
        };
        match text.trim().to_ascii_lowercase().as_str() {
            "classic" => Ok(Some(GroupProtocol::Classic)),
            "consumer" => Ok(Some(GroupProtocol::Consumer)),
            _ => {
                let raw = section.value(name).expect("present: just read");
                Err(section.invalid(name, raw, "\"classic\" or \"consumer\""))
            }
        }
    }
}

impl Value for Vec<GroupBalancer> {
    fn read(section: &Section<'_>, name: &'static str) -> Result<Option<Self>, ConfigError> {
        const EXPECTED: &str = "a list of \"range\", \"roundRobin\" or \"cooperativeSticky\"";
        let Some(names) = section.string_list(name)? else {
            return Ok(None);
        };
        let raw = section.value(name).expect("present: just read");
        if names.is_empty() {
            return Err(section.invalid(name, raw, EXPECTED));
        }
        names
            .iter()
            .map(|balancer| match normalize_key(balancer).as_str() {
                "range" => Ok(GroupBalancer::Range),
                "roundrobin" => Ok(GroupBalancer::RoundRobin),
                "cooperativesticky" => Ok(GroupBalancer::CooperativeSticky),
                _ => Err(section.invalid(name, &toml::Value::String(balancer.clone()), EXPECTED)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}
