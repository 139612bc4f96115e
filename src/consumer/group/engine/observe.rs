//! What the member shows in the component's metrics: its state (partitions
//! assigned and paused, messages and bytes held) at most every
//! `STATE_EVERY`, and each partition's lag every `readLagInterval`.
//!
//! Lag is the partition's high watermark minus its committed offset. The
//! high watermark is librdkafka's cached one, from the latest fetch
//! response, so reading it costs no request; a partition paused for
//! back-pressure keeps the one it had, which is still at least as far as
//! the messages held.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};

use super::partitions::Partitions;
use crate::observe::GroupMetrics;
use crate::record::{PartitionOffset, TopicPartition};

/// How often the state gauges are brought up to date.
const STATE_EVERY: Duration = Duration::from_millis(250);

/// The member's metrics, when they are on, and when they were last brought
/// up to date.
pub(super) struct Observer {
    metrics: Option<GroupMetrics>,
    state: Instant,
    lag: Instant,
    /// `readLagInterval`: how often lag is published (never without it).
    lag_every: Option<Duration>,
}

impl Observer {
    pub(super) fn new(metrics: Option<GroupMetrics>, lag_every: Option<Duration>) -> Self {
        // Long enough ago that the first pass publishes both.
        let long_ago = Instant::now()
            .checked_sub(Duration::from_secs(3600))
            .unwrap_or_else(Instant::now);
        Observer {
            metrics,
            state: long_ago,
            lag: long_ago,
            lag_every,
        }
    }

    /// The metrics, when they are on.
    pub(super) fn metrics_ref(&self) -> Option<&GroupMetrics> {
        self.metrics.as_ref()
    }

    /// The metrics, when they are on, to record in.
    pub(super) fn metrics(&mut self) -> Option<&mut GroupMetrics> {
        self.metrics.as_mut()
    }

    /// The state gauges are brought up to date on the next pass.
    pub(super) fn state_due(&mut self) {
        self.state = Instant::now()
            .checked_sub(STATE_EVERY)
            .unwrap_or_else(Instant::now);
    }

    /// Brings the metrics up to date when due; `watermarks` tells a
    /// partition's cached low and high watermarks.
    pub(super) fn publish(
        &mut self,
        partitions: &Partitions,
        mut watermarks: impl FnMut(&TopicPartition) -> Option<(i64, i64)>,
    ) {
        let Some(metrics) = &mut self.metrics else {
            return;
        };
        let now = Instant::now();
        if now.duration_since(self.state) >= STATE_EVERY {
            self.state = now;
            let (held, _, held_bytes) = partitions.holdings();
            metrics.state(
                partitions.len(),
                partitions.paused().len(),
                held,
                held_bytes,
            );
        }
        let Some(every) = self.lag_every else {
            return;
        };
        if now.duration_since(self.lag) < every {
            return;
        }
        self.lag = now;
        let lags = partitions.commit_points().filter_map(|(id, committed)| {
            let (low, high) = watermarks(id)?;
            let committed = committed.unwrap_or(low);
            Some((id.topic.clone(), id.partition, (high - committed).max(0)))
        });
        metrics.lag(lags.collect::<Vec<_>>());
    }

    /// When the metrics are next due, as (since, after), while they are on.
    pub(super) fn next_publication(&self) -> Option<(Instant, Duration)> {
        self.metrics.as_ref()?;
        let state = (self.state, STATE_EVERY);
        Some(match self.lag_every {
            Some(every) if self.lag + every < self.state + STATE_EVERY => (self.lag, every),
            _ => state,
        })
    }

    /// Drops what the metrics show of this member: it let go of everything.
    pub(super) fn unpublish(&mut self) {
        if let Some(metrics) = &mut self.metrics {
            metrics.stopped();
        }
    }
}

/// Each partition's cached high watermark, where known.
pub(super) fn high_watermarks<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &Partitions,
) -> Vec<PartitionOffset> {
    partitions
        .ids()
        .filter_map(|id| {
            let (_, high) = cached_watermarks(consumer, &id.topic, id.partition)?;
            Some(PartitionOffset {
                partition: id.clone(),
                offset: high,
            })
        })
        .collect()
}

/// librdkafka's cached low and high watermarks of a partition, from its
/// latest fetch response; `None` before any came.
pub(super) fn cached_watermarks<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
) -> Option<(i64, i64)> {
    crate::native::client::cached_watermarks(consumer.client(), topic, partition)
}

#[cfg(test)]
mod tests {
    use super::super::partitions::fixtures::fetched;
    use super::*;
    use crate::observe::Metrics;

    #[test]
    fn without_metrics_nothing_is_due_or_published() {
        let mut observer = Observer::new(None, Some(Duration::from_secs(1)));
        assert!(observer.next_publication().is_none());
        observer.publish(&Partitions::new(10, 10), |_| {
            panic!("no lag without metrics")
        });
    }

    #[test]
    fn lag_is_the_high_watermark_past_the_commit_point_every_interval() {
        let metrics = Metrics::new(&["b:1".to_string()]);
        let mut observer = Observer::new(Some(metrics.group("g")), Some(Duration::from_secs(60)));
        let partitions = fetched(10, [0..0, 0..0]);
        let mut asked = Vec::new();
        observer.publish(&partitions, |id| {
            asked.push(id.partition);
            // No fetch answered for partition 1 yet: no lag for it.
            (id.partition == 0).then_some((5, 42))
        });
        assert_eq!(asked, vec![0, 1]);
        let text = metrics.encode();
        let lag = text
            .lines()
            .find(|l| l.starts_with("ekafka_consumer_lag{") && l.contains("partition=\"0\""))
            .expect("partition 0's lag");
        // Nothing committed: lag counts from the low watermark, 42 - 5.
        assert!(lag.ends_with(" 37"), "{lag}");
        assert!(!text.contains("partition=\"1\""), "{text}");
        // Not due again within the interval.
        observer.publish(&partitions, |_| panic!("lag published before its interval"));
        let (_, after) = observer.next_publication().expect("metrics on");
        assert!(after <= Duration::from_secs(60));
    }
}
