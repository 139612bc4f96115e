//! The `/status` document: every client of the App, its state, for
//! consumer groups each partition's position, committed offset, high
//! watermark, lag, whether it is paused and whether a server stopped on one
//! of its messages, with the last 15 minutes of messages handled per second
//! and total lag; for single consumers their lag and its history; for
//! consumer servers their partitions stopped on a message and their latest
//! handler failures.

use std::time::Duration;

use serde::Serialize;

use super::health::{Health, WatchedServer};
use super::history::{History, Kind, Sample};
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
    /// How often the histories are sampled.
    history_interval_seconds: f64,
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
    /// The lag of its partitions, summed.
    total_lag: Option<i64>,
    partitions: Vec<PartitionView>,
    /// The last 15 minutes, oldest first.
    history: Vec<Sample>,
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
    /// A consumer server's handling stopped on one of its messages.
    stopped: bool,
}

/// A single consumer (`[kafka.consumers.NAME]`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ConsumerView {
    name: String,
    state: String,
    position: Option<i64>,
    lag: Option<i64>,
    /// The last 15 minutes of its lag, oldest first.
    history: Vec<Sample>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerView {
    name: String,
    /// The consumer group it drives.
    group: Option<String>,
    longest_handler_call_seconds: Option<f64>,
    stopped_partitions: Vec<StoppedView>,
    /// Its latest handler failures, the newest first.
    recent_failures: Vec<FailureView>,
}

/// A handler failure and what the server did about it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FailureView {
    /// Milliseconds since the Unix epoch.
    at: u64,
    topic: String,
    partition: i32,
    offset: i64,
    attempts: u32,
    error: String,
    /// `retried`, `delayed`, `dead-lettered` or `stopped`.
    action: &'static str,
    detail: String,
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

/// The status of `kafka`'s clients and the App's `servers`, with the
/// histories `history` sampled.
pub(crate) async fn collect(
    kafka: &Ekafka,
    servers: &[WatchedServer],
    health: Health,
    history: &History,
) -> Status {
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
                    total_lag: None,
                    partitions: Vec::new(),
                    history: Vec::new(),
                }
            }
        };
        let mut view = view;
        view.history = history.of(Kind::Group, group.name());
        mark_stopped(&mut view, servers);
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
            history: history.of(Kind::Consumer, consumer.name()),
        });
    }
    let servers = servers
        .iter()
        .map(|(name, probe)| ServerView {
            name: name.clone(),
            group: probe.group().map(str::to_string),
            recent_failures: probe
                .recent_failures()
                .into_iter()
                .map(|failure| FailureView {
                    at: failure.at,
                    topic: failure.partition.topic.to_string(),
                    partition: failure.partition.partition,
                    offset: failure.offset,
                    attempts: failure.attempts,
                    error: failure.error,
                    action: failure.action,
                    detail: failure.detail,
                })
                .collect(),
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
        history_interval_seconds: history.interval().as_secs_f64(),
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
        .map(|partition| PartitionView {
            topic: partition.topic.to_string(),
            partition: partition.partition,
            position: offset_of(&status.positions, partition),
            committed: offset_of(&status.committed, partition),
            high_watermark: offset_of(&status.high_watermarks, partition),
            lag: status.lag(partition),
            paused: status.paused.contains(partition),
            stopped: false,
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
        total_lag: Some(status.total_lag()),
        partitions,
        history: Vec::new(),
    }
}

/// Marks the partitions of `group` a server driving it stopped on.
fn mark_stopped(group: &mut GroupView, servers: &[WatchedServer]) {
    let stopped: Vec<(String, i32)> = servers
        .iter()
        .filter(|(_, probe)| probe.group() == Some(group.name.as_str()))
        .flat_map(|(_, probe)| probe.stopped())
        .map(|s| (s.partition.topic.to_string(), s.partition.partition))
        .collect();
    for partition in &mut group.partitions {
        partition.stopped = stopped
            .iter()
            .any(|(topic, p)| *topic == partition.topic && *p == partition.partition);
    }
}
