//! `[kafkaConsumerServers.NAME]`: which consumer a consumer server drives.

use std::time::Duration;

use super::duration::parse_go_duration;
use super::error::ConfigError;
use super::key::{settings, Rules, Value};
use super::reader::Section;
use super::restart::RestartSettings;
use super::SectionPath;

settings! {
    /// How a failed handler is retried (`retries`, `retryBackoff`, `retryBackoffMax`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct RetrySettings with Default {
        /// in-place retries of a recoverable handler failure (3, like Go).
        pub retries: u32 = key("retries", "3").range(0, 1000),
        /// the delay before the first retry; it doubles for each next one,
        /// with jitter.
        pub backoff: Duration = key("retryBackoff", "\"100ms\""),
        /// the longest delay between attempts.
        pub backoff_max: Duration = key("retryBackoffMax", "\"10s\""),
    }
}

/// What keeps the order of one partition's messages handled at once
/// (`orderBy`, with `concurrency` above 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OrderBy {
    /// `"key"`: never two messages with the same key at once, and each key's
    /// messages in offset order. Messages without a key count as one key.
    Key,
    /// `"none"`: any messages of the partition at once, for handlers that do
    /// not care about order.
    Nothing,
}

impl Value for OrderBy {
    fn read(section: &Section<'_>, name: &'static str) -> Result<Option<Self>, ConfigError> {
        one_of(
            section,
            name,
            &[("key", OrderBy::Key), ("none", OrderBy::Nothing)],
            "\"key\" or \"none\"",
        )
    }
}

/// The value of key `name` among `choices` (written in any case), or an
/// error saying `expected`.
fn one_of<T: Copy>(
    section: &Section<'_>,
    name: &'static str,
    choices: &[(&str, T)],
    expected: &'static str,
) -> Result<Option<T>, ConfigError> {
    let Some(raw) = section.value(name) else {
        return Ok(None);
    };
    match raw {
        toml::Value::String(s) => {
            let written = s.trim().to_ascii_lowercase();
            choices
                .iter()
                .find(|(text, _)| *text == written)
                .map(|(_, value)| Some(*value))
                .ok_or_else(|| section.invalid(name, raw, expected))
        }
        other => Err(section.wrong_type(name, expected, other)),
    }
}

/// What happens to a partition whose handling stopped on a message past its
/// limits (`maxRestarts` within `restartWindow`, or `deadLetterLimit`):
/// `partitionPastLimit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PartitionPastLimit {
    /// `"hold"`: the partition stays stopped at the message, uncommitted, and
    /// its handling is tried again every `restartBackoffMax` until the
    /// message gets through or the partition is revoked; every other
    /// partition keeps flowing and the server stays live. One bad message
    /// never stops more than its own partition, on this process or any other.
    Hold,
    /// `"escalate"`: the server gives up and escalates to the component (and
    /// an [`App`](crate::App) shuts down), for services that would rather stop
    /// than run with a partition held.
    Escalate,
}

impl Value for PartitionPastLimit {
    fn read(section: &Section<'_>, name: &'static str) -> Result<Option<Self>, ConfigError> {
        one_of(
            section,
            name,
            &[
                ("hold", PartitionPastLimit::Hold),
                ("escalate", PartitionPastLimit::Escalate),
            ],
            "\"hold\" or \"escalate\"",
        )
    }
}

settings! {
    /// How many messages of one partition are handled at once
    /// (`concurrency`), and what keeps their order (`orderBy`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct Concurrency with Default {
        /// messages of one partition handled at once. Above 1 they start in
        /// offset order (within `orderBy`) and may finish in any order; the
        /// offset committed is always the end of the run of finished messages,
        /// never past one still running.
        pub limit: usize = key("concurrency", "1").range(1, 10_000),
        /// with `concurrency` above 1, `"key"` or `"none"`: `"key"` never
        /// handles two messages with the same key at once and handles each
        /// key's messages in offset order (keyless messages count as one key).
        pub order_by: OrderBy = key("orderBy", "\"key\""),
    }
}

impl Rules for Concurrency {}

/// What `batchSize` is when left out.
const DEFAULT_BATCH_SIZE: usize = 500;
/// What `batchWait` is when left out.
const DEFAULT_BATCH_WAIT: Duration = Duration::from_millis(100);

settings! {
    /// How many messages of one partition a batch handler gets in one call
    /// (`batchSize`), and how long a partition's first waiting message waits
    /// for the batch to fill (`batchWait`), for
    /// [`on_each_batch`](crate::server::ConsumerServer::on_each_batch). A
    /// server that handles each message refuses these keys.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct Batching with Default {
        /// with `on_each_batch`: the most messages of one partition a handler
        /// call gets, in offset order.
        pub size: Option<usize> = optional("batchSize").range(1, 100_000).behaves_like("500"),
        /// with `on_each_batch`: how long a partition's oldest message
        /// waits for `batchSize` to be reached before the handler is called
        /// with fewer (`"0s"`: call with whatever is there).
        pub wait: Option<Duration> = optional("batchWait").behaves_like("\"100ms\""),
    }
}

impl Rules for Batching {}

impl Batching {
    /// `batchSize`, or its default.
    #[must_use]
    pub fn size_or_default(&self) -> usize {
        self.size.unwrap_or(DEFAULT_BATCH_SIZE)
    }

    /// `batchWait`, or its default.
    #[must_use]
    pub fn wait_or_default(&self) -> Duration {
        self.wait.unwrap_or(DEFAULT_BATCH_WAIT)
    }

    /// The first batching key written, if any, and its value.
    pub(crate) fn written(&self) -> Option<(&'static str, String)> {
        match (self.size, self.wait) {
            (Some(size), _) => Some(("batchSize", size.to_string())),
            (None, Some(wait)) => Some(("batchWait", format!("\"{wait:?}\""))),
            (None, None) => None,
        }
    }
}

impl Rules for RetrySettings {
    fn check(&self, section: &Section<'_>) -> Result<(), ConfigError> {
        section.check_order(
            "retryBackoff",
            "retryBackoffMax",
            self.backoff <= self.backoff_max,
            "retryBackoff no longer than retryBackoffMax",
        )
    }
}

settings! {
    /// Where messages go that failed for good (`deadLetterProducer`,
    /// `deadLetterTopic`), and how many may go there (`deadLetterLimit`,
    /// `deadLetterWindow`). The other keys need `deadLetterProducer`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct DeadLetter {
        /// a `[kafka.producers.NAME]` that writes messages that failed for good.
        pub producer: String = required("deadLetterProducer").shown("none"),
        /// where they go.
        pub topic: Option<String> = optional("deadLetterTopic").shown("that producer's `topic`"),
        /// the most messages one partition may dead-letter within
        /// `deadLetterWindow`. One more stops the partition at that message,
        /// past its limit (see `partitionPastLimit`), a guard against a bad
        /// deploy sending everything to the dead-letter topic; `0` for no limit.
        pub limit: u32 = key("deadLetterLimit", "100").range(0, 1_000_000_000),
        /// the sliding window `deadLetterLimit` counts over.
        pub window: Duration = key("deadLetterWindow", "\"1m\""),
    }
}

impl Rules for DeadLetter {}

/// The most delay topics a server may chain.
const MAX_RETRY_TOPICS: usize = 20;

/// One stage of `retryTopics`: its delay as written (which names its topic,
/// `{topic}-retry-{name}`) and as a duration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryDelay {
    /// The delay as written, e.g. `10s`.
    pub name: String,
    /// The delay.
    pub delay: Duration,
}

impl Value for Vec<RetryDelay> {
    fn read(section: &Section<'_>, name: &'static str) -> Result<Option<Self>, ConfigError> {
        const EXPECTED: &str = "a list of 1 to 20 durations above zero, like [\"10s\", \"1m\"]";
        let Some(texts) = section.string_list(name)? else {
            return Ok(None);
        };
        let raw = section.value(name).expect("present: just read");
        if texts.is_empty() || texts.len() > MAX_RETRY_TOPICS {
            return Err(section.invalid(name, raw, EXPECTED));
        }
        texts
            .iter()
            .map(|text| {
                let delay = parse_go_duration(text.trim())
                    .ok()
                    .and_then(|d| d.non_negative())
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| section.invalid(name, raw, EXPECTED))?;
                Ok(RetryDelay {
                    name: text.trim().to_string(),
                    delay,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

settings! {
    /// Delay topics a recoverably failing message goes through after its
    /// in-place retries, so that its partition keeps going (`retryTopics`,
    /// `retryProducer`). The other key needs `retryTopics`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct RetryTopics {
        /// the delays of the stages, e.g. `["10s", "1m", "10m"]`: a message of
        /// topic `T` that still fails recoverably after `retries` goes to
        /// `T-retry-10s`, is handled again once 10s have passed, then goes to
        /// `T-retry-1m` if it fails again, and so on; after the last, to the
        /// dead-letter topic. Each delay topic's partitions are paused until
        /// their next message is due.
        pub delays: Vec<RetryDelay> = required("retryTopics").shown("none"),
        /// the `[kafka.producers.NAME]` that writes to the delay topics.
        pub producer: Option<String> = optional("retryProducer").shown("`deadLetterProducer`"),
    }
}

impl Rules for RetryTopics {}

settings! {
    /// One consumer server: `[kafkaConsumerServers.NAME]`, a section of its own beside
    /// `[kafka]`, as in the Go guide. It names the consumer it drives with
    /// `consumerName` or `consumerGroupName` (at least one).
    ///
    /// ```
    /// let server = ekafka::config::ConsumerServerConfig::from_toml_str(
    ///     "[kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\n",
    ///     "kafkaConsumerServers.s1",
    /// )?;
    /// assert_eq!(server.consumer_group_name.as_deref(), Some("cg1"));
    /// # Ok::<(), ekafka::ConfigError>(())
    /// ```
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct ConsumerServerConfig {
        /// The section's path, e.g. `kafkaConsumerServers.s1`.
        pub section: String = custom(SectionPath),
        /// the `[kafka.consumers.NAME]` it drives (manual, on-start mode).
        pub consumer_name: Option<String> = optional("consumerName"),
        /// the `[kafka.consumerGroups.NAME]` it drives.
        pub consumer_group_name: Option<String> = optional("consumerGroupName"),
        /// print every message handled and its result.
        pub debug: bool = key("debug", "false"),
        /// Retries of recoverable handler failures.
        pub retry: RetrySettings = flatten(),
        /// Messages of one partition handled at once.
        pub concurrency: Concurrency = flatten(),
        /// Messages of one partition per batch handler call.
        pub batching: Batching = flatten(),
        /// The dead-letter destination, when `deadLetterProducer` is set.
        pub dead_letter: Option<DeadLetter> = led_by("deadLetterProducer"),
        /// The delay topics, when `retryTopics` is set.
        pub retry_topics: Option<RetryTopics> = led_by("retryTopics"),
        /// a `[kafka.producers.NAME]` with `transactionalID`, for
        /// `on_each_message_transform`: the messages a batch's handler calls
        /// return and the batch's offsets commit in one transaction.
        pub transactional_producer: Option<String> = optional("transactionalProducer"),
        /// How the server is restarted after it failed, and when it escalates.
        pub restart: RestartSettings = flatten(),
        /// `"hold"` or `"escalate"`: what a partition does once its handling
        /// stopped on a message past `maxRestarts` (or `deadLetterLimit`).
        /// `"hold"` keeps it stopped at the message, uncommitted, tried again
        /// every `restartBackoffMax`, while the other partitions flow and the
        /// server stays live (shown in `status()`, `/status`, the
        /// `ekafka_server_stopped_partitions` gauge and an ERROR log per try);
        /// `"escalate"` gives up and escalates to the App.
        pub partition_past_limit: PartitionPastLimit = key("partitionPastLimit", "\"hold\""),
    }
}

impl Rules for ConsumerServerConfig {
    fn check(&self, section: &Section<'_>) -> Result<(), ConfigError> {
        if self.consumer_name.is_none() && self.consumer_group_name.is_none() {
            return Err(section.missing("consumerGroupName"));
        }
        if let Some(retry_topics) = &self.retry_topics {
            if retry_topics.producer.is_none() && self.dead_letter.is_none() {
                return Err(section.missing("retryProducer"));
            }
        }
        if self.transactional_producer.is_some() {
            // A transaction spans a run of one partition's messages in order.
            if self.concurrency.limit > 1 {
                return Err(section.invalid(
                    "concurrency",
                    section.value("concurrency").expect("set: it is not the default"),
                    "1 with transactionalProducer (a transaction covers a run of the partition's messages in order)",
                ));
            }
            if self.retry_topics.is_some() {
                return Err(section.invalid(
                    "retryTopics",
                    section.value("retryTopics").expect("set"),
                    "no delay topics with transactionalProducer (a message waiting in one would be committed past)",
                ));
            }
        }
        Ok(())
    }
}
