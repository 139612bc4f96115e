//! `[kafkaConsumerServers.NAME]`: which consumer a consumer server drives.

use std::time::Duration;

use super::error::ConfigError;
use super::reader::Section;
use super::restart::RestartSettings;

/// How a failed handler is retried (`retries`, `retryBackoff`, `retryBackoffMax`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetrySettings {
    /// `retries` (3, like Go): further attempts after a recoverable failure.
    pub retries: u32,
    /// `retryBackoff` (100ms): the delay before the first retry; it doubles for
    /// each next one, with jitter.
    pub backoff: Duration,
    /// `retryBackoffMax` (10s): the longest delay between attempts.
    pub backoff_max: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            retries: 3,
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
        }
    }
}

/// Where messages go that failed for good (`deadLetterProducer`, `deadLetterTopic`),
/// and how many may go there (`deadLetterLimit`, `deadLetterWindow`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// `deadLetterProducer`: a `[kafka.producers.NAME]` to write with.
    pub producer: String,
    /// `deadLetterTopic`: the topic; without it, the producer's own `topic`.
    pub topic: Option<String>,
    /// `deadLetterLimit` (100): the most messages one partition may dead-letter
    /// within `deadLetterWindow`. One more stops the partition at that message
    /// and escalates, as a guard against a bad deploy sending everything to the
    /// dead-letter topic. `0`: no limit.
    pub limit: u32,
    /// `deadLetterWindow` (`"1m"`): the sliding window `deadLetterLimit` counts over.
    pub window: Duration,
}

impl DeadLetter {
    /// The defaults of `deadLetterLimit` and `deadLetterWindow`.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// See [`DeadLetter::DEFAULT_LIMIT`].
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
}

/// One consumer server: `[kafkaConsumerServers.NAME]`, a section of its own beside
/// `[kafka]`, as in the Go guide.
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
    pub section: String,
    /// `debug` (false): print every message handled.
    pub debug: bool,
    /// `consumerName`: a `[kafka.consumers.NAME]` to drive.
    pub consumer_name: Option<String>,
    /// `consumerGroupName`: a `[kafka.consumerGroups.NAME]` to drive.
    pub consumer_group_name: Option<String>,
    /// Retries of recoverable handler failures.
    pub retry: RetrySettings,
    /// The dead-letter destination, when configured.
    pub dead_letter: Option<DeadLetter>,
    /// `maxRestarts`, `restartWindow`, `restartBackoff`, `restartBackoffMax`: how
    /// the server is restarted after it failed, and when it escalates.
    pub restart: RestartSettings,
}

impl ConsumerServerConfig {
    pub(crate) fn read(section: &Section<'_>) -> Result<Self, ConfigError> {
        let config = ConsumerServerConfig {
            section: section.path().to_string(),
            debug: section.bool("debug")?.unwrap_or(false),
            consumer_name: section.string("consumerName")?.filter(|n| !n.is_empty()),
            consumer_group_name: section
                .string("consumerGroupName")?
                .filter(|n| !n.is_empty()),
            retry: read_retry(section)?,
            dead_letter: read_dead_letter(section)?,
            restart: RestartSettings::read(section)?,
        };
        if config.consumer_name.is_none() && config.consumer_group_name.is_none() {
            return Err(section.missing("consumerGroupName"));
        }
        Ok(config)
    }
}

fn read_retry(section: &Section<'_>) -> Result<RetrySettings, ConfigError> {
    let defaults = RetrySettings::default();
    let retry = RetrySettings {
        retries: section
            .integer_in("retries", 0, 1000)?
            .map_or(defaults.retries, |v| v as u32),
        backoff: section
            .duration("retryBackoff")?
            .unwrap_or(defaults.backoff),
        backoff_max: section
            .duration("retryBackoffMax")?
            .unwrap_or(defaults.backoff_max),
    };
    section.check_order(
        "retryBackoff",
        "retryBackoffMax",
        retry.backoff <= retry.backoff_max,
        "retryBackoff no longer than retryBackoffMax",
    )?;
    Ok(retry)
}

fn read_dead_letter(section: &Section<'_>) -> Result<Option<DeadLetter>, ConfigError> {
    let producer = section
        .string("deadLetterProducer")?
        .filter(|p| !p.is_empty());
    let topic = section.string("deadLetterTopic")?.filter(|t| !t.is_empty());
    let limit = section.integer_in("deadLetterLimit", 0, 1_000_000_000)?;
    let window = section.duration("deadLetterWindow")?;
    match producer {
        Some(producer) => Ok(Some(DeadLetter {
            producer,
            topic,
            limit: limit.map_or(DeadLetter::DEFAULT_LIMIT, |l| l as u32),
            window: window.unwrap_or(DeadLetter::DEFAULT_WINDOW),
        })),
        // The other dead-letter keys mean nothing without a producer.
        None if topic.is_some() || limit.is_some() || window.is_some() => {
            Err(section.missing("deadLetterProducer"))
        }
        None => Ok(None),
    }
}
