//! What a running component shows of itself: Prometheus metrics of every
//! client, fed by the clients themselves and by librdkafka's statistics
//! (the App serves them: `app::endpoint`).

mod metrics;
mod stats;

pub(crate) use metrics::{GroupMetrics, Handled, Metrics, ProducerMetrics, ServerMetrics};
pub(crate) use stats::StatsSink;
