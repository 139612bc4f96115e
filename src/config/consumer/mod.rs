//! `[kafka.consumers.NAME]` and `[kafka.consumerGroups.NAME]`: the keys both
//! share (fetching, group membership) and what is particular to each.

mod fetch;
mod flow;
mod membership;
mod prefetch;

use std::time::Duration;

pub use fetch::{FetchSettings, IsolationLevel, StartOffset};
pub use flow::FlowSettings;
pub use membership::{GroupBalancer, GroupProtocol, GroupSettings};
pub(crate) use prefetch::prefetch_properties;

use super::error::{ConfigError, ConfigProblem};
use super::key::{settings, Field, Rules};
#[cfg(test)]
use super::key::{Doc, Row};
use super::properties::Properties;
use super::reader::Section;
use super::restart::RestartSettings;
use super::topic_name::check_topic_name;
use membership::reject_classic_only;

/// What a `[kafka.consumers.NAME]` reads: one partition, or a share of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsumerAssignment {
    /// `partition = N` (no `groupID`): reads that partition alone, no commits.
    Partition(i32),
    /// `groupID = "..."`: joins the group and commits there.
    Group(String),
}

settings! {
    /// One consumer: `[kafka.consumers.NAME]`.
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub struct ConsumerConfig {
        /// the topic read.
        pub topic: String = required("topic"),
        /// `partition` or `groupID` (they exclude each other; neither means partition 0).
        pub assignment: ConsumerAssignment = custom(Assignment),
        /// Fetch and commit settings.
        pub fetch: FetchSettings = flatten(),
        /// Group settings, used when `groupID` is set.
        pub group: GroupSettings = flatten(),
        /// raw properties for this client, applied last.
        pub librdkafka: Properties = key("librdkafka", "{}").shown("empty"),
        /// How the client is replaced after a fatal error.
        pub restart: RestartSettings = flatten(),
    }
}

impl ConsumerConfig {
    /// The group-only keys (membership and commits) set to something other
    /// than their default: what a partition reader cannot do.
    fn group_only_keys_changed(&self) -> Vec<&'static str> {
        let (group, fetch) = (GroupSettings::default(), FetchSettings::default());
        let changed = [
            (
                "heartbeatInterval",
                self.group.heartbeat_interval != group.heartbeat_interval,
            ),
            (
                "sessionTimeout",
                self.group.session_timeout != group.session_timeout,
            ),
            (
                "rebalanceTimeout",
                self.group.rebalance_timeout != group.rebalance_timeout,
            ),
            (
                "joinGroupBackoff",
                self.group.join_group_backoff != group.join_group_backoff,
            ),
            (
                "retentionTime",
                self.group.retention_time != group.retention_time,
            ),
            (
                "watchPartitionChanges",
                self.group.watch_partition_changes != group.watch_partition_changes,
            ),
            (
                "partitionWatchInterval",
                self.group.partition_watch_interval != group.partition_watch_interval,
            ),
            ("groupProtocol", self.group.protocol != group.protocol),
            ("instanceID", self.group.instance_id != group.instance_id),
            (
                "commitInterval",
                self.fetch.commit_interval != fetch.commit_interval,
            ),
        ];
        changed
            .into_iter()
            .filter_map(|(key, changed)| changed.then_some(key))
            .collect()
    }
}

impl Rules for ConsumerConfig {
    // A single consumer fetches as asked; a group sizes its fetches with its
    // prefetch (`prefetch_properties`), the one writer of these for groups.
    fn derive_properties(&self, props: &mut Properties) {
        use super::key::PropertyText as _;
        props.set("fetch.wait.max.ms", self.fetch.max_wait.property_text());
        props.set(
            "max.partition.fetch.bytes",
            self.fetch.max_bytes.to_string(),
        );
    }

    fn check(&self, section: &Section<'_>) -> Result<(), ConfigError> {
        check_topic_name(section, "topic", &self.topic)?;
        // Refused rather than ignored: a Go config that sets them on a
        // partition reader expected something of them (their defaults, which
        // change nothing, are let through).
        if let ConsumerAssignment::Partition(partition) = self.assignment {
            if let Some(key) = self.group_only_keys_changed().first() {
                let raw = section.value(key).expect("set: not the default");
                return Err(section.invalid(
                    key,
                    raw,
                    format!(
                        "no {key} without a groupID: this consumer reads partition {partition} \
                         alone, with no group to join or commit to (add groupID, or remove {key})"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `partition` and `groupID` of a single consumer.
struct Assignment;

impl Field<ConsumerAssignment> for Assignment {
    fn read(&self, section: &Section<'_>) -> Result<ConsumerAssignment, ConfigError> {
        let partition = section.integer_in("partition", 0, i64::from(i32::MAX))?;
        let group_id = section.string("groupID")?.filter(|g| !g.trim().is_empty());
        match (partition, group_id) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                section.key_path("partition"),
                ConfigProblem::Conflict {
                    other: section.key_path("groupID"),
                    reason: "a consumer reads either one partition or a group's share; remove one of them",
                },
            )),
            (_, Some(group)) => Ok(ConsumerAssignment::Group(group)),
            // In range by the check above.
            (partition, None) => Ok(ConsumerAssignment::Partition(
                i32::try_from(partition.unwrap_or(0)).unwrap_or(0),
            )),
        }
    }

    fn default_value(&self) -> Option<ConsumerAssignment> {
        Some(ConsumerAssignment::Partition(0))
    }

    /// Without a group, the mapping gives librdkafka a group id of its own
    /// (it wants one), never joined or committed to.
    fn set_properties(&self, value: &ConsumerAssignment, props: &mut Properties) {
        if let ConsumerAssignment::Group(group_id) = value {
            props.set("group.id", group_id);
        }
    }

    fn keys(&self, keys: &mut Vec<&'static str>) {
        keys.extend(["partition", "groupID"]);
    }

    #[cfg(test)]
    fn describe(&self, _doc: Doc, rows: &mut Vec<Row>) {
        rows.push(Row::new(
            "groupID",
            "none (then `partition`)".into(),
            None,
            Some("group.id"),
            &["joins this group and commits there"],
        ));
        rows.push(Row::new(
            "partition",
            "`0` when no `groupID`; not together with `groupID`".into(),
            Some("0".into()),
            None,
            &["the one partition read, alone, without commits"],
        ));
    }
}

settings! {
    /// One consumer group member: `[kafka.consumerGroups.NAME]`.
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub struct ConsumerGroupConfig {
        /// `topic`, or `topics` for several (the Go library allowed only one).
        pub topics: Vec<String> = custom(Topics),
        /// the group joined.
        pub group_id: String = required("groupID").property("group.id"),
        /// Fetch and commit settings.
        pub fetch: FetchSettings = flatten(),
        /// Group settings.
        pub group: GroupSettings = flatten(),
        /// how long a commit may go unconfirmed before it counts as failed,
        /// and the timeout of committed-offset requests (ekafka's).
        pub timeout: Duration = key("timeout", "\"5s\""),
        /// the partition assignment strategies, in order of preference:
        /// `range`, `roundRobin`, `cooperativeSticky` (classic protocol).
        pub group_balancers: Vec<GroupBalancer> = key("groupBalancers", "[\"range\", \"roundRobin\"]")
            .sets("partition.assignment.strategy"),
        /// How many messages may be in the process at once, and how they are handed out.
        pub flow: FlowSettings = flatten(),
        /// raw properties for this client, applied last.
        pub librdkafka: Properties = key("librdkafka", "{}").shown("empty"),
        /// How the member is restarted after a fatal error.
        pub restart: RestartSettings = flatten(),
    }
}

impl Rules for ConsumerGroupConfig {
    fn check(&self, section: &Section<'_>) -> Result<(), ConfigError> {
        if self.group.protocol == GroupProtocol::Consumer {
            reject_classic_only(section, &["groupBalancers"])?;
        }
        Ok(())
    }

    fn derive_properties(&self, props: &mut Properties) {
        // The prefetch properties depend on the topics' partition count too:
        // `librdkafka::consumer_group` sets them. Under KIP-848 the broker assigns (its group.consumer.assignors).
        if self.group.protocol == GroupProtocol::Classic {
            let strategies: Vec<&str> = self
                .group_balancers
                .iter()
                .map(|b| b.strategy_name())
                .collect();
            props.set("partition.assignment.strategy", strategies.join(","));
        }
    }
}

/// `topic` or `topics` of a consumer group: one of the two.
struct Topics;

impl Field<Vec<String>> for Topics {
    fn read(&self, section: &Section<'_>) -> Result<Vec<String>, ConfigError> {
        let single = section.string("topic")?.filter(|t| !t.trim().is_empty());
        let several = section.string_list("topics")?.unwrap_or_default();
        match (single, several.is_empty()) {
            (Some(_), false) => Err(ConfigError::new(
                section.key_path("topic"),
                ConfigProblem::Conflict {
                    other: section.key_path("topics"),
                    reason: "name the topics in one of the two keys",
                },
            )),
            (Some(topic), true) => {
                check_topic_name(section, "topic", &topic)?;
                Ok(vec![topic])
            }
            (None, false) => {
                for topic in &several {
                    check_topic_name(section, "topics", topic)?;
                }
                Ok(several)
            }
            (None, true) => Err(section.missing("topic")),
        }
    }

    fn default_value(&self) -> Option<Vec<String>> {
        None
    }

    fn set_properties(&self, _value: &Vec<String>, _props: &mut Properties) {}

    fn keys(&self, keys: &mut Vec<&'static str>) {
        keys.extend(["topic", "topics"]);
    }

    #[cfg(test)]
    fn describe(&self, _doc: Doc, rows: &mut Vec<Row>) {
        rows.push(Row::new(
            "topic",
            "required (or `topics`)".into(),
            None,
            None,
            &["the topic subscribed to"],
        ));
        rows.push(Row::new(
            "topics",
            "none".into(),
            None,
            None,
            &["several topics, `[\"a\", \"b\"]`, instead of `topic`"],
        ));
    }
}
