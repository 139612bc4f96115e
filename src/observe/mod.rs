//! What a running component shows of itself: Prometheus metrics of every
//! client, fed by the clients themselves and by librdkafka's statistics, and
//! the probes health checks read (the App serves both: `app::endpoint`).

mod health;
mod metrics;
mod stats;
pub(crate) mod trace;

pub use health::StoppedPartition;
pub(crate) use health::{ConsumerProbe, GroupProbe, ProducerProbe, RecentFailure, ServerProbe};

pub(crate) use metrics::{
    ConsumerMetrics, GroupMetrics, Handled, LagSeries, Metrics, ProducerMetrics, ServerMetrics,
};
pub(crate) use stats::StatsSink;
