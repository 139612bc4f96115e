//! The restart keys every supervised client takes (`maxRestarts`,
//! `restartWindow`, `restartBackoff`, `restartBackoffMax`), in producer, consumer,
//! consumer-group and consumer-server sections alike.

use std::time::Duration;

use super::error::ConfigError;
use super::key::{settings, Rules};
use super::reader::Section;

settings! {
    /// A client's own restart keys. Keys left out take the component's
    /// [`RestartPolicy`] (see
    /// [`EkafkaBuilder::with_restart_policy`](crate::EkafkaBuilder::with_restart_policy)),
    /// whose defaults are 5 restarts in 60s, backing off from 100ms to 10s.
    ///
    /// ```
    /// use std::time::Duration;
    /// let server = ekafka::config::ConsumerServerConfig::from_toml_str(
    ///     "[kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\nmaxRestarts = 2\nrestartWindow = \"30s\"\n",
    ///     "kafkaConsumerServers.s1",
    /// )?;
    /// let policy = server.restart.apply(&ekafka::RestartPolicy::default());
    /// assert_eq!(policy.max_restarts, 2);
    /// assert_eq!(policy.window, Duration::from_secs(30));
    /// assert_eq!(policy.backoff_min, Duration::from_millis(100));
    /// # Ok::<(), ekafka::ConfigError>(())
    /// ```
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct RestartSettings with Default {
        /// restarts allowed within `restartWindow`; one failure more is final
        /// and escalates (`0`: never restart).
        pub max_restarts: Option<u32> = optional("maxRestarts").range(0, 10_000).behaves_like("5"),
        /// the sliding window `maxRestarts` counts over.
        pub window: Option<Duration> = optional("restartWindow").above_zero().behaves_like("\"60s\""),
        /// the delay before the first restart; it doubles for each next one,
        /// with jitter.
        pub backoff: Option<Duration> = optional("restartBackoff").behaves_like("\"100ms\""),
        /// the longest delay between restarts.
        pub backoff_max: Option<Duration> = optional("restartBackoffMax").behaves_like("\"10s\""),
    }
}

impl Rules for RestartSettings {
    fn check(&self, section: &Section<'_>) -> Result<(), ConfigError> {
        let in_order = match (self.backoff, self.backoff_max) {
            (Some(backoff), Some(max)) => backoff <= max,
            _ => true,
        };
        section.check_order(
            "restartBackoff",
            "restartBackoffMax",
            in_order,
            "restartBackoff no longer than restartBackoffMax",
        )
    }
}

impl RestartSettings {
    /// `base` with the keys this section sets. A `restartBackoff` above the
    /// base's largest delay raises that too, so the first delay is the one asked for.
    #[must_use]
    pub fn apply(&self, base: &RestartPolicy) -> RestartPolicy {
        let backoff_min = self.backoff.unwrap_or(base.backoff_min);
        RestartPolicy {
            max_restarts: self.max_restarts.unwrap_or(base.max_restarts),
            window: self.window.unwrap_or(base.window),
            backoff_min,
            backoff_max: self
                .backoff_max
                .unwrap_or(base.backoff_max)
                .max(backoff_min),
        }
    }
}

/// How often and how fast a failed client is restarted.
///
/// ```
/// use std::time::Duration;
/// let policy = ekafka::RestartPolicy::default()
///     .with_max_restarts(3)
///     .with_window(Duration::from_secs(30));
/// assert_eq!(policy.max_restarts, 3);
/// assert!(policy.backoff_min <= policy.backoff_max);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestartPolicy {
    /// Restarts allowed within `window`; one more is a final failure.
    pub max_restarts: u32,
    /// The sliding window `max_restarts` counts over.
    pub window: Duration,
    /// Delay before the first restart.
    pub backoff_min: Duration,
    /// Largest delay between restarts.
    pub backoff_max: Duration,
}

impl RestartPolicy {
    /// With `max_restarts` restarts allowed within the window.
    #[must_use]
    pub fn with_max_restarts(mut self, max_restarts: u32) -> Self {
        self.max_restarts = max_restarts;
        self
    }

    /// With `window` as the sliding window restarts are counted over.
    #[must_use]
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// With restarts delayed from `min` (the first) growing to `max` (at
    /// least `min`).
    #[must_use]
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        // The largest delay is never below the first, as when read from config.
        self.backoff_max = max.max(min);
        self
    }
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 5,
            window: Duration::from_secs(60),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
        }
    }
}
