//! What the member shows in the component's metrics: its state (partitions
//! assigned and paused, messages and bytes held) at most every
//! `STATE_EVERY`, and each partition's lag every `readLagInterval`.
//!
//! Lag is the partition's high watermark minus its committed offset. The
//! high watermark is librdkafka's cached one, from the latest fetch
//! response, so reading it costs no request; a partition paused for
//! back-pressure keeps the one it had, which is still at least as far as
//! the messages held.

use std::ffi::CString;
use std::time::{Duration, Instant};

use rdkafka::bindings as ffi;
use rdkafka::consumer::Consumer as _;

use super::{Consumer_, Engine};
use crate::record::PartitionOffset;

/// How often the state gauges are brought up to date.
const STATE_EVERY: Duration = Duration::from_millis(250);

/// When the metrics were last brought up to date.
pub(super) struct Published {
    state: Instant,
    lag: Instant,
}

impl Published {
    /// The state gauges are brought up to date on the next pass.
    pub(super) fn state_due(&mut self) {
        self.state = Published::default().state;
    }
}

impl Default for Published {
    fn default() -> Self {
        // Long enough ago that the first pass publishes both.
        let long_ago = Instant::now()
            .checked_sub(Duration::from_secs(3600))
            .unwrap_or_else(Instant::now);
        Published {
            state: long_ago,
            lag: long_ago,
        }
    }
}

impl Engine {
    /// Brings the metrics up to date when due.
    pub(super) fn publish(&mut self, consumer: &Consumer_) {
        let Some(metrics) = &mut self.metrics else {
            return;
        };
        let now = Instant::now();
        if now.duration_since(self.published.state) >= STATE_EVERY {
            self.published.state = now;
            metrics.state(
                self.partitions.len(),
                self.partitions.iter().filter(|p| p.paused).count(),
                self.held,
                self.partitions.iter().map(|p| p.ledger.held_bytes()).sum(),
            );
        }
        let Some(every) = self.settings.config.fetch.read_lag_interval else {
            return;
        };
        if now.duration_since(self.published.lag) < every {
            return;
        }
        self.published.lag = now;
        let lags = self.partitions.iter().filter_map(|p| {
            let (low, high) = cached_watermarks(consumer, &p.id.topic, p.id.partition)?;
            let committed = p.ledger.committed().unwrap_or(low);
            Some((
                p.id.topic.clone(),
                p.id.partition,
                (high - committed).max(0),
            ))
        });
        metrics.lag(lags.collect::<Vec<_>>());
    }

    /// When the metrics are next due, as (since, after), while they are on.
    pub(super) fn next_publication(&self) -> Option<(Instant, Duration)> {
        self.metrics.as_ref()?;
        let state = (self.published.state, STATE_EVERY);
        Some(match self.settings.config.fetch.read_lag_interval {
            Some(every) if self.published.lag + every < self.published.state + STATE_EVERY => {
                (self.published.lag, every)
            }
            _ => state,
        })
    }

    /// Each assigned partition's cached high watermark, where known.
    pub(super) fn high_watermarks(&self, consumer: &Consumer_) -> Vec<PartitionOffset> {
        self.partitions
            .iter()
            .filter_map(|p| {
                let (_, high) = cached_watermarks(consumer, &p.id.topic, p.id.partition)?;
                Some(PartitionOffset {
                    partition: p.id.clone(),
                    offset: high,
                })
            })
            .collect()
    }

    /// Drops what the metrics show of this member: it let go of everything.
    pub(super) fn unpublish(&mut self) {
        if let Some(metrics) = &mut self.metrics {
            metrics.stopped();
        }
    }
}

/// librdkafka's cached low and high watermarks of a partition, from its
/// latest fetch response (no request; rust-rdkafka wraps only the fetching
/// variant). `None` before any fetch response came.
fn cached_watermarks(consumer: &Consumer_, topic: &str, partition: i32) -> Option<(i64, i64)> {
    let topic = CString::new(topic).ok()?;
    let (mut low, mut high) = (-1_i64, -1_i64);
    // SAFETY: the client is alive for the call (borrowed); librdkafka reads
    // the name and writes the two offsets, nothing else.
    let code = unsafe {
        ffi::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (code == ffi::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some((low, high))
}
