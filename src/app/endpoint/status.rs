//! The `/status` document: every client of the App, its state, for
//! consumer groups each partition's position, committed offset, high
//! watermark, lag and whether it is paused, and for consumer servers their
//! partitions stopped on a message.

use std::time::Duration;

use serde::Serialize;

use super::health::{Health, WatchedServer};
use crate::component::Ekafka;
use crate::consumer::{GroupStatus, PartitionOffset, TopicPartition};

/// How long one client may take to say how it is.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Status {
    live: bool,
    ready: bool,
    problems: Vec<String>,
    producers: Vec<ProducerView>,
    consumer_groups: Vec<GroupView>,
    consumers: Vec<ConsumerView>,
    servers: Vec<ServerView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ProducerView {
    name: String,
    state: String,
    restarts: u64,
    reached_broker: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupView {
    name: String,
    group_id: String,
    state: String,
    restarts: u64,
    generation: Option<i32>,
    assigned: bool,
    held_messages: Option<usize>,
    held_bytes: Option<usize>,
    subscribers: Option<usize>,
    /// Subscribed topics the cluster does not have (yet).
    missing_topics: Vec<String>,
    partitions: Vec<PartitionView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PartitionView {
    topic: String,
    partition: i32,
    position: Option<i64>,
    committed: Option<i64>,
    high_watermark: Option<i64>,
    lag: Option<i64>,
    paused: bool,
}

/// A single consumer (`[kafka.consumers.NAME]`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ConsumerView {
    name: String,
    state: String,
    position: Option<i64>,
    lag: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerView {
    name: String,
    longest_handler_call_seconds: Option<f64>,
    stopped_partitions: Vec<StoppedView>,
}

/// A partition of a server stopped on a message that failed for good.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StoppedView {
    topic: String,
    partition: i32,
    offset: i64,
    error: String,
    restarts: u32,
    held: bool,
    gave_up: bool,
}

/// The status of `kafka`'s clients and the App's `servers`.
pub(crate) async fn collect(kafka: &Ekafka, servers: &[WatchedServer], health: Health) -> Status {
    let mut producers = Vec::new();
    for producer in kafka.running_producers() {
        let asked = tokio::time::timeout(ASK_TIMEOUT, producer.status()).await;
        let (state, restarts) = match asked {
            Ok(Ok(status)) => match status.gave_up {
                Some(reason) => (format!("gave up: {reason}"), status.restarts),
                None => ("running".to_string(), status.restarts),
            },
            Ok(Err(error)) => (format!("unavailable: {error}"), 0),
            Err(_) => (format!("no answer within {ASK_TIMEOUT:?}"), 0),
        };
        producers.push(ProducerView {
            name: producer.name().to_string(),
            state,
            restarts,
            reached_broker: producer.probe().has_reached(),
        });
    }
    let mut consumer_groups = Vec::new();
    for group in kafka.running_groups() {
        let group_id = kafka
            .consumer_group_config(group.name())
            .map(|config| config.group_id.clone())
            .unwrap_or_default();
        let asked = tokio::time::timeout(ASK_TIMEOUT, group.status()).await;
        let view = match asked {
            Ok(Ok(status)) => group_view(group.name(), group_id, group.restarts(), &status),
            failed => {
                let state = match failed {
                    Ok(Err(error)) => format!("unavailable: {error}"),
                    _ => format!("no answer within {ASK_TIMEOUT:?}"),
                };
                GroupView {
                    name: group.name().to_string(),
                    group_id,
                    state,
                    restarts: group.restarts(),
                    generation: None,
                    assigned: group.probe().assigned(),
                    held_messages: None,
                    held_bytes: None,
                    subscribers: None,
                    missing_topics: group.probe().missing_topics(),
                    partitions: Vec::new(),
                }
            }
        };
        consumer_groups.push(view);
    }
    let mut consumers = Vec::new();
    for consumer in kafka.running_consumers() {
        let asked = tokio::time::timeout(ASK_TIMEOUT, consumer.lag()).await;
        let (state, lag) = match asked {
            Ok(Ok(lag)) => ("running".to_string(), Some(lag)),
            Ok(Err(error)) => (format!("lag unavailable: {error}"), None),
            Err(_) => (format!("no answer within {ASK_TIMEOUT:?}"), None),
        };
        consumers.push(ConsumerView {
            name: consumer.name().to_string(),
            state,
            position: consumer.offset(),
            lag,
        });
    }
    let servers = servers
        .iter()
        .map(|(name, probe)| ServerView {
            name: name.clone(),
            longest_handler_call_seconds: probe.longest().map(|d| d.as_secs_f64()),
            stopped_partitions: probe
                .stopped()
                .into_iter()
                .map(|stopped| StoppedView {
                    topic: stopped.partition.topic.to_string(),
                    partition: stopped.partition.partition,
                    offset: stopped.offset,
                    error: stopped.error,
                    restarts: stopped.restarts,
                    held: stopped.held,
                    gave_up: stopped.gave_up,
                })
                .collect(),
        })
        .collect();
    let mut problems = health.ready;
    problems.dedup();
    Status {
        live: health.live.is_empty(),
        ready: problems.is_empty(),
        problems,
        producers,
        consumer_groups,
        consumers,
        servers,
    }
}

fn group_view(name: &str, group_id: String, restarts: u64, status: &GroupStatus) -> GroupView {
    let offset_of = |offsets: &[PartitionOffset], partition: &TopicPartition| {
        offsets
            .iter()
            .find(|o| o.partition == *partition)
            .map(|o| o.offset)
    };
    let partitions = status
        .assigned
        .iter()
        .map(|partition| {
            let committed = offset_of(&status.committed, partition);
            let high_watermark = offset_of(&status.high_watermarks, partition);
            PartitionView {
                topic: partition.topic.to_string(),
                partition: partition.partition,
                position: offset_of(&status.positions, partition),
                committed,
                high_watermark,
                // Nothing committed yet: all that is there is behind.
                lag: high_watermark.map(|high| (high - committed.unwrap_or(0)).max(0)),
                paused: status.paused.contains(partition),
            }
        })
        .collect();
    GroupView {
        name: name.to_string(),
        group_id,
        state: "running".to_string(),
        restarts,
        generation: Some(status.generation),
        assigned: status.generation >= 0,
        held_messages: Some(status.held),
        held_bytes: Some(status.held_bytes),
        subscribers: Some(status.subscribers),
        missing_topics: status.missing_topics.clone(),
        partitions,
    }
}
