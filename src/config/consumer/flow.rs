//! Flow control of a consumer group: how much it holds, how it hands it out.

use std::time::Duration;

use super::super::error::ConfigError;
use super::super::key::{settings, Rules};
use super::super::reader::Section;

settings! {
    /// Flow control of a consumer group (keys ekafka adds to the Go ones).
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct FlowSettings with Default {
        /// the most messages held at once, from fetch until acknowledged. At
        /// the bound the group pauses its partitions and resumes them once
        /// subscribers have caught up to half of it.
        pub max_buffered: usize = key("maxBuffered", "10000")
            .range(1, 10_000_000)
            .sets("queued.min.messages"),
        /// the most bytes of messages (keys, values and headers) held at once,
        /// from fetch until acknowledged, checked like `maxBuffered`.
        /// librdkafka's prefetch is sized from it too (all partitions together
        /// prefetch at most as much): see "Memory" in `ekafka::guide::config`.
        pub max_buffered_bytes: usize = key("maxBufferedBytes", "16777216")
            .range(1024, 1 << 40)
            .shown("`16777216` (16 MiB)")
            .sets("queued.max.messages.kbytes"),
        /// the most messages of one partition in one batch to a subscriber.
        pub delivery_batch: usize = key("deliveryBatch", "500").range(1, 100_000),
        /// on revoke and close, how long to wait for outstanding
        /// acknowledgements before committing what was acknowledged and
        /// letting go.
        pub drain_timeout: Duration = key("drainTimeout", "\"10s\""),
    }
}

impl Rules for FlowSettings {
    fn check(&self, section: &Section<'_>) -> Result<(), ConfigError> {
        section.check_order(
            "deliveryBatch",
            "maxBuffered",
            self.delivery_batch <= self.max_buffered,
            format!(
                "deliveryBatch ({}) no larger than maxBuffered ({})",
                self.delivery_batch, self.max_buffered
            ),
        )
    }
}
