//! Subscribed topics the cluster does not have.
//!
//! librdkafka reports a subscribed topic that does not exist once, as an
//! `UnknownTopicOrPartition` error without its name (under KIP-848 not at
//! all), then waits silently and looks again only on its next metadata
//! refresh (5 minutes by default). The member asks for its topics when it
//! starts and on that error, names the missing ones (event, log, status,
//! readiness),
//! and asks for them every [`RECHECK`] until they exist: that request, made
//! on the member's own client, refreshes librdkafka's view too, so the group
//! takes a topic up within seconds of its creation.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::types::RDKafkaErrorCode;

/// How often missing topics are asked for again.
pub(super) const RECHECK: Duration = Duration::from_secs(2);
/// The longest one ask may take: it runs on the member's loop, which a round
/// holds for one unanswered ask at most.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a topic still missing is logged again.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// What changed after asking the cluster about the subscribed topics.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Change {
    /// Topics found missing that were not before.
    pub(super) missing: Vec<String>,
    /// Topics that were missing and exist now.
    pub(super) appeared: Vec<String>,
}

/// The subscribed topics found missing, and when they were last asked for.
#[derive(Debug, Default)]
pub(super) struct MissingTopics {
    topics: BTreeSet<String>,
    asked: Option<Instant>,
    logged: Option<Instant>,
}

impl MissingTopics {
    /// The topics missing now, in name order.
    pub(super) fn list(&self) -> Vec<String> {
        self.topics.iter().cloned().collect()
    }

    /// When the subscribed topics are next asked for: on the member's first
    /// pass (under KIP-848 librdkafka reports no error for a missing topic:
    /// the broker just assigns nothing), then while any are missing.
    pub(super) fn next_ask(&self) -> Option<Instant> {
        match self.asked {
            None => Some(Instant::now()),
            Some(_) if self.topics.is_empty() => None,
            Some(asked) => Some(asked + RECHECK),
        }
    }

    /// Asks the cluster which of `subscribed` exist (after an unknown-topic
    /// error, or when a recheck is due) and returns what changed.
    pub(super) fn ask<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        subscribed: &[String],
    ) -> Change {
        let now = Instant::now();
        self.asked = Some(now);
        let candidates: Vec<String> = if self.topics.is_empty() {
            subscribed.to_vec()
        } else {
            self.list()
        };
        let mut change = Change::default();
        for topic in candidates {
            match exists(consumer, &topic) {
                Some(false) if self.topics.insert(topic.clone()) => change.missing.push(topic),
                Some(true) if self.topics.remove(&topic) => change.appeared.push(topic),
                Some(_) => {}
                // The cluster did not answer: the others are asked next round,
                // so one round holds the member's loop for one ask at most.
                None => break,
            }
        }
        change
    }

    /// Partitions of `assigned` topics came: those of them that were missing
    /// exist now. Returns them.
    pub(super) fn found<'a>(&mut self, assigned: impl Iterator<Item = &'a str>) -> Vec<String> {
        let mut appeared = Vec::new();
        for topic in assigned {
            if self.topics.remove(topic) {
                appeared.push(topic.to_string());
            }
        }
        appeared
    }

    /// Whether the topics still missing should be logged again.
    pub(super) fn log_due(&mut self) -> bool {
        let due = !self.topics.is_empty()
            && self
                .logged
                .is_none_or(|logged| logged.elapsed() >= LOG_EVERY);
        if due {
            self.logged = Some(Instant::now());
        }
        due
    }
}

/// Whether the cluster has `topic`: `None` when it could not say.
fn exists<C: ConsumerContext>(consumer: &BaseConsumer<C>, topic: &str) -> Option<bool> {
    let metadata = consumer.fetch_metadata(Some(topic), ASK_TIMEOUT).ok()?;
    let found = metadata.topics().iter().find(|t| t.name() == topic)?;
    match found.error().map(RDKafkaErrorCode::from) {
        None => Some(!found.partitions().is_empty()),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            Some(false)
        }
        Some(_) => None,
    }
}
