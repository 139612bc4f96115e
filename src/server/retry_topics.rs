//! Non-blocking retries through delay topics (`retryTopics`): a message that
//! still fails recoverably after its in-place retries is written to the next
//! delay topic of its chain (`{topic}-retry-{delay}`) with the time it is due,
//! and its offset is acknowledged, so its partition goes on. The server also
//! reads the delay topics; a message read from one is handled once it is due,
//! its partition paused in the meantime; if it fails again it goes to the next
//! stage, and after the last to the dead-letter topic (or the partition stops
//! there, as for any failure for good).
//!
//! Headers carry what the chain needs across topics: the original topic,
//! partition and offset, the attempts so far, the last error and the due time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::dead_letter::stored;
use super::headers;
use super::outcome::HandlerError;
use crate::admin::{Admin, TopicSpec};
use crate::config::RetryDelay;
use crate::error::Error;
use crate::producer::Producer;
use crate::record::{ConsumedMessage, Message};

/// The delay topics of a server's topics.
pub(crate) struct RetryChain {
    producer: Producer,
    delays: Vec<RetryDelay>,
    /// Each delay topic: the topic its messages came from first, and its stage.
    stages: HashMap<String, (Arc<str>, usize)>,
}

/// The name of `topic`'s delay topic for `delay`.
pub(crate) fn delay_topic(topic: &str, delay: &RetryDelay) -> String {
    format!("{topic}-retry-{}", delay.name)
}

impl RetryChain {
    /// The chain of each of `topics`, written through `producer`.
    pub(crate) fn new(producer: Producer, delays: Vec<RetryDelay>, topics: &[String]) -> Self {
        let stages = topics
            .iter()
            .flat_map(|topic| {
                let topic: Arc<str> = topic.as_str().into();
                delays.iter().enumerate().map(move |(stage, delay)| {
                    (delay_topic(&topic, delay), (Arc::clone(&topic), stage))
                })
            })
            .collect();
        RetryChain {
            producer,
            delays,
            stages,
        }
    }

    /// Every delay topic, for the server's group to read.
    pub(crate) fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.stages.keys().cloned().collect();
        topics.sort();
        topics
    }

    /// The stage of `topic` when it is one of the delay topics.
    pub(crate) fn stage_of(&self, topic: &str) -> Option<usize> {
        self.stages.get(topic).map(|(_, stage)| *stage)
    }

    /// When `message`, read from a delay topic, is due; `None` when it is due
    /// now (or came from no delay topic).
    pub(crate) fn not_due_until(&self, message: &ConsumedMessage) -> Option<Instant> {
        self.stage_of(message.topic())?;
        let due: u64 = header_number(message, headers::RETRY_DUE)?;
        let now = epoch_millis(SystemTime::now());
        (due > now).then(|| Instant::now() + Duration::from_millis(due - now))
    }

    /// Attempts made on `message` before it was read: those of the earlier
    /// stages when it came from a delay topic.
    pub(crate) fn earlier_attempts(&self, message: &ConsumedMessage) -> u32 {
        if self.stage_of(message.topic()).is_none() {
            return 0;
        }
        header_number(message, headers::ATTEMPTS).unwrap_or(0)
    }

    /// The delay topic `message` goes to after failing, and its delay;
    /// `None` after the last stage.
    pub(crate) fn next_stage(&self, message: &ConsumedMessage) -> Option<(String, Duration)> {
        let (origin, next) = match self.stages.get(message.topic()) {
            Some((origin, stage)) => (origin.as_ref(), stage + 1),
            None => (message.topic(), 0),
        };
        let delay = self.delays.get(next)?;
        Some((delay_topic(origin, delay), delay.delay))
    }

    /// Writes `message` to `topic`, due after `delay`; true once it is stored.
    pub(crate) async fn send(
        &self,
        message: &ConsumedMessage,
        topic: &str,
        delay: Duration,
        error: &HandlerError,
        attempts: u32,
    ) -> bool {
        // Rounded up: a message is never due before its delay has passed.
        let due = epoch_millis_rounded_up(SystemTime::now() + delay);
        let out = failure_headers(Some(self), message, error, attempts)
            .with_header(headers::RETRY_DUE, due.to_string())
            .with_topic(topic);
        stored(self.producer.write([out]).await, "delay-topic")
    }
}

/// `message` as written elsewhere after failing (to a delay or dead-letter
/// topic): the original topic, partition and offset (those it came from
/// first, when it came from a delay topic), the last error and the attempts.
pub(crate) fn failure_headers(
    chain: Option<&RetryChain>,
    message: &ConsumedMessage,
    error: &HandlerError,
    attempts: u32,
) -> Message {
    let mut out = message.to_message();
    let from_delay_topic = chain.is_some_and(|c| c.stage_of(message.topic()).is_some());
    out.headers.retain(|h| {
        !(h.key == headers::ERROR
            || h.key == headers::ATTEMPTS
            || h.key == headers::RETRY_DUE
            || (!from_delay_topic && is_origin(&h.key)))
    });
    if !from_delay_topic {
        out = with_origin(out, message);
    }
    out.with_header(headers::ERROR, error.reason())
        .with_header(headers::ATTEMPTS, attempts.to_string())
}

fn is_origin(key: &str) -> bool {
    key == headers::ORIGINAL_TOPIC
        || key == headers::ORIGINAL_PARTITION
        || key == headers::ORIGINAL_OFFSET
}

/// `out` with headers naming where `message` was read.
fn with_origin(out: Message, message: &ConsumedMessage) -> Message {
    out.with_header(headers::ORIGINAL_TOPIC, message.topic().as_bytes())
        .with_header(headers::ORIGINAL_PARTITION, message.partition().to_string())
        .with_header(headers::ORIGINAL_OFFSET, message.offset().to_string())
}

/// The number in `message`'s header `key`, when it holds one.
fn header_number<T: std::str::FromStr>(message: &ConsumedMessage, key: &str) -> Option<T> {
    std::str::from_utf8(message.header(key)?).ok()?.parse().ok()
}

fn epoch_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn epoch_millis_rounded_up(time: SystemTime) -> u64 {
    epoch_millis(time + Duration::from_nanos(999_999))
}

/// Makes sure each delay topic exists, creating a missing one with as many
/// partitions as the topic it delays (and the broker's replication factor).
pub(crate) async fn ensure_topics(
    admin: &Admin,
    delays: &[RetryDelay],
    topics: &[String],
) -> Result<(), Error> {
    for topic in topics {
        let mut partitions = None;
        for delay in delays {
            let name = delay_topic(topic, delay);
            match admin.describe_topic(&name).await {
                Ok(_) => continue,
                Err(error) if error.is_unknown_topic() => {}
                Err(error) => return Err(error),
            }
            let count = match partitions {
                Some(count) => count,
                None => {
                    let count = admin.describe_topic(topic).await?.partitions.len() as i32;
                    *partitions.insert(count)
                }
            };
            tracing::info!(topic = %name, partitions = count, "creating a delay topic");
            match admin.create_topic(TopicSpec::new(&name, count)).await {
                Ok(()) => {}
                // Another server of the group made it meanwhile.
                Err(error)
                    if error.kafka_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists) => {}
                Err(error) => return Err(error),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_due_time_is_rounded_up_to_the_millisecond() {
        let at = |nanos: u64| UNIX_EPOCH + Duration::from_nanos(nanos);
        assert_eq!(epoch_millis_rounded_up(at(1_000_000_000)), 1_000);
        assert_eq!(epoch_millis_rounded_up(at(1_000_000_001)), 1_001);
        assert_eq!(epoch_millis_rounded_up(at(1_000_999_999)), 1_001);
    }
}
