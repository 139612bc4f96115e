//! Consumer groups: list, describe, committed offsets and lag, resetting
//! offsets.

use std::time::{SystemTime, UNIX_EPOCH};

use rdkafka::consumer::Consumer as _;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::topics::topic_description;
use super::{failed, ffi_failed, kafka_failed, Admin, Shared};
use crate::error::Error;
use crate::native::admin as ffi;
use crate::record::{PartitionOffset, TopicPartition};

/// A consumer group, as the cluster lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupListing {
    /// The group id.
    pub id: String,
    /// Its state: `Stable`, `Empty`, `PreparingRebalance`, ...
    pub state: String,
    /// Its protocol: `Classic` or `Consumer` (KIP-848).
    pub protocol: String,
    /// True for a group that only commits offsets, with no members joining.
    pub simple: bool,
}

/// A consumer group, described.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupDescription {
    /// The group id.
    pub id: String,
    /// Its state: `Stable`, `Empty`, `Dead` (unknown to the cluster), ...
    pub state: String,
    /// Its protocol: `Classic` or `Consumer` (KIP-848).
    pub protocol: String,
    /// Members now.
    pub members: usize,
    /// The broker coordinating it, when known.
    pub coordinator: Option<i32>,
}

/// A group's progress on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset the group committed (the next it reads).
    pub committed: i64,
    /// The offset the next message written gets.
    pub high_watermark: i64,
    /// Messages written and not yet committed past: `high_watermark -
    /// committed`, never below 0.
    pub lag: i64,
}

/// Where [`Admin::reset_offsets`] moves a group's offsets on a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OffsetReset {
    /// To the oldest message each partition still holds.
    Earliest,
    /// Past the newest: only messages written from now on are read.
    Latest,
    /// To the first message written at or after this time (past the newest
    /// where none was).
    Time(SystemTime),
    /// To these offsets, `(partition, offset)`; partitions not named keep
    /// theirs.
    Offsets(Vec<(i32, i64)>),
}

impl Admin {
    /// Every consumer group of the cluster, by id. A broker that does not
    /// answer fails the listing rather than leave its groups out.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>, Error> {
        self.blocking(|shared| {
            let mut groups: Vec<GroupListing> = shared
                .ffi(ffi::list_groups)
                .map_err(|f| ffi_failed("listing", "the consumer groups", f))?
                .into_iter()
                .map(|g| GroupListing {
                    id: g.id,
                    state: g.state,
                    protocol: g.protocol,
                    simple: g.simple,
                })
                .collect();
            groups.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(groups)
        })
        .await
    }

    /// A consumer group's state, protocol and member count. A group the
    /// cluster does not know is described as `Dead` with no members.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription, Error> {
        let group = group.to_string();
        self.blocking(move |shared| describe(shared, &group)).await
    }

    /// The offsets a group committed, on every partition it committed on.
    pub async fn group_offsets(&self, group: &str) -> Result<Vec<PartitionOffset>, Error> {
        let group = group.to_string();
        self.blocking(move |shared| {
            Ok(committed(shared, &group)?
                .into_iter()
                .map(|(topic, partition, offset)| PartitionOffset {
                    partition: TopicPartition {
                        topic: topic.into(),
                        partition,
                    },
                    offset,
                })
                .collect())
        })
        .await
    }

    /// A group's lag on every partition it committed on: the high watermark
    /// minus the committed offset.
    pub async fn group_lag(&self, group: &str) -> Result<Vec<PartitionLag>, Error> {
        let group = group.to_string();
        self.blocking(move |shared| {
            committed(shared, &group)?
                .into_iter()
                .map(|(topic, partition, committed)| {
                    let (_, high) = shared.watermarks(&topic, partition).map_err(|e| {
                        let code = e.kafka_code().unwrap_or(RDKafkaErrorCode::Fail);
                        failed("reading the lag of group", &group, code, e.to_string())
                    })?;
                    Ok(PartitionLag {
                        lag: (high - committed).max(0),
                        topic,
                        partition,
                        committed,
                        high_watermark: high,
                    })
                })
                .collect()
        })
        .await
    }

    /// Moves `group`'s committed offsets on `topic` (every partition, or
    /// those [`OffsetReset::Offsets`] names) and returns the offsets set.
    ///
    /// Only a group without active members can be reset: stop its consumers
    /// first. One with members fails with [`Error::is_group_not_empty`] and
    /// changes nothing; so does an offset outside what a partition holds.
    pub async fn reset_offsets(
        &self,
        group: &str,
        topic: &str,
        to: OffsetReset,
    ) -> Result<Vec<PartitionOffset>, Error> {
        let (group, topic) = (group.to_string(), topic.to_string());
        self.blocking(move |shared| reset(shared, &group, &topic, &to))
            .await
    }
}

fn describe(shared: &Shared, group: &str) -> Result<GroupDescription, Error> {
    let described = shared
        .ffi(|client, wait| ffi::describe_group(client, group, wait))
        .map_err(|f| ffi_failed("describing group", group, f))?;
    Ok(GroupDescription {
        id: group.to_string(),
        state: described.state,
        protocol: described.protocol,
        members: described.members,
        coordinator: described.coordinator,
    })
}

/// `(topic, partition, offset)` of each partition `group` committed on.
fn committed(shared: &Shared, group: &str) -> Result<Vec<(String, i32, i64)>, Error> {
    let operation = "reading the committed offsets of group";
    let mut offsets = Vec::new();
    for partition in shared
        .ffi(|client, wait| ffi::group_offsets(client, group, wait))
        .map_err(|f| ffi_failed(operation, group, f))?
    {
        if let Some(failure) = partition.failure {
            return Err(ffi_failed(operation, group, failure));
        }
        // Asked for every partition, the broker names only those with a commit.
        if partition.offset >= 0 {
            offsets.push((partition.topic, partition.partition, partition.offset));
        }
    }
    offsets.sort();
    Ok(offsets)
}

fn reset(
    shared: &Shared,
    group: &str,
    topic: &str,
    to: &OffsetReset,
) -> Result<Vec<PartitionOffset>, Error> {
    let operation = "resetting the offsets of group";
    let described = describe(shared, group)?;
    if described.members > 0 {
        return Err(failed(
            operation,
            group,
            RDKafkaErrorCode::NonEmptyGroup,
            format!(
                "it has {} active member(s) (state {}); stop its consumers first",
                described.members, described.state
            ),
        ));
    }
    let targets = targets(shared, topic, to)?;
    let mut list = TopicPartitionList::new();
    for &(partition, offset) in &targets {
        list.add_partition_offset(topic, partition, Offset::Offset(offset))
            .map_err(|e| kafka_failed(operation, group, e))?;
    }
    for partition in shared
        .ffi(|client, wait| ffi::alter_group_offsets(client, group, &list, wait))
        .map_err(|f| ffi_failed(operation, group, f))?
    {
        if let Some(failure) = partition.failure {
            let target = format!("{group}: {}/{}", partition.topic, partition.partition);
            return Err(ffi_failed(operation, &target, failure));
        }
    }
    Ok(targets
        .into_iter()
        .map(|(partition, offset)| PartitionOffset {
            partition: TopicPartition {
                topic: topic.into(),
                partition,
            },
            offset,
        })
        .collect())
}

/// `(partition, offset)` for each partition `to` moves on `topic`.
fn targets(shared: &Shared, topic: &str, to: &OffsetReset) -> Result<Vec<(i32, i64)>, Error> {
    let operation = "resetting offsets on topic";
    let partitions: Vec<i32> = topic_description(shared, operation, topic)?
        .partitions
        .iter()
        .map(|p| p.id)
        .collect();
    let watermarks = |partition: i32| shared.watermarks(topic, partition);
    match to {
        OffsetReset::Earliest => partitions
            .iter()
            .map(|&p| Ok((p, watermarks(p)?.0)))
            .collect(),
        OffsetReset::Latest => partitions
            .iter()
            .map(|&p| Ok((p, watermarks(p)?.1)))
            .collect(),
        OffsetReset::Time(time) => {
            let millis = time
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            let mut asked = TopicPartitionList::new();
            for &p in &partitions {
                asked
                    .add_partition_offset(topic, p, Offset::Offset(millis))
                    .map_err(|e| kafka_failed(operation, topic, e))?;
            }
            let found = shared
                .lookup_retrying(|left| shared.lookup.offsets_for_times(asked.clone(), left))
                .map_err(|e| ffi_failed("looking up offsets by time on topic", topic, e))?;
            partitions
                .iter()
                .map(
                    |&p| match found.find_partition(topic, p).map(|e| e.offset()) {
                        Some(Offset::Offset(offset)) => Ok((p, offset)),
                        // Nothing written at or after the time: past the newest.
                        _ => Ok((p, watermarks(p)?.1)),
                    },
                )
                .collect()
        }
        OffsetReset::Offsets(offsets) => offsets
            .iter()
            .map(|&(p, offset)| {
                if !partitions.contains(&p) {
                    return Err(failed(
                        operation,
                        &format!("{topic}/{p}"),
                        RDKafkaErrorCode::UnknownTopicOrPartition,
                        format!("{topic} has partitions 0..{}", partitions.len()),
                    ));
                }
                let (low, high) = watermarks(p)?;
                if !(low..=high).contains(&offset) {
                    return Err(failed(
                        operation,
                        &format!("{topic}/{p}"),
                        RDKafkaErrorCode::OffsetOutOfRange,
                        format!(
                            "offset {offset} is outside what the partition holds, {low}..={high}"
                        ),
                    ));
                }
                Ok((p, offset))
            })
            .collect(),
    }
}
