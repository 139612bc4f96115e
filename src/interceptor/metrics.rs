//! `enableMetricInterceptor`: counts and timings per client and operation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{ClientInfo, Interceptor};
use crate::error::CommitFailure;
use crate::observe::Metrics;
use crate::record::{GroupEvent, PartitionOffset, WriteReport};

/// Totals for one client and operation, the counterpart of the Go library's
/// `ego_client_handle_total` (by code) and `ego_client_handle_seconds`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationMetrics {
    /// Client kind: "producer", ...
    pub kind: &'static str,
    /// Client name, e.g. `p1`.
    pub name: String,
    /// Operation, e.g. `WriteMessages`.
    pub method: &'static str,
    /// Operations in which every message succeeded (code OK).
    pub ok: u64,
    /// Operations in which some message failed (code Error).
    pub error: u64,
    /// Messages that succeeded.
    pub messages_ok: u64,
    /// Messages that failed.
    pub messages_failed: u64,
    /// Time spent in all operations together.
    pub total_time: Duration,
    /// The slowest operation.
    pub max_time: Duration,
}

/// Collects [`OperationMetrics`]; read them with
/// [`Ekafka::metrics`](crate::Ekafka::metrics). Enabled by
/// `enableMetricInterceptor` (on by default), when it also records the Go
/// library's `ego_client_handle_total` and `ego_client_handle_seconds` in the
/// component's Prometheus metrics ([`Ekafka::metrics_text`](crate::Ekafka::metrics_text)).
#[derive(Debug, Default)]
pub struct MetricsInterceptor {
    totals: Mutex<BTreeMap<(&'static str, String, &'static str), OperationMetrics>>,
    /// The component's metrics, when this is the component's own interceptor.
    registry: Option<Arc<Metrics>>,
}

impl MetricsInterceptor {
    /// The component's interceptor, also recording into `registry`.
    pub(crate) fn recording(registry: Arc<Metrics>) -> Self {
        MetricsInterceptor {
            totals: Mutex::default(),
            registry: Some(registry),
        }
    }

    /// Counts an operation in the Go library's Prometheus metrics.
    fn go(&self, client: &ClientInfo, method: &'static str, ok: bool, elapsed: Duration) {
        if let Some(registry) = &self.registry {
            registry.go_operation(client.kind.as_str(), &client.name, method, ok, elapsed);
        }
    }

    /// A copy of every total so far, ordered by kind, name and method.
    pub fn snapshot(&self) -> Vec<OperationMetrics> {
        self.totals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

impl Interceptor for MetricsInterceptor {
    fn name(&self) -> &str {
        "metrics"
    }

    fn after_write(&self, client: &ClientInfo, report: &WriteReport, elapsed: Duration) {
        let failed = report.failures().count() as u64;
        let succeeded = report.outcomes().len() as u64 - failed;
        let method = "WriteMessages";
        let kind = client.kind.as_str();
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        let entry = totals
            .entry((kind, client.name.clone(), method))
            .or_insert_with(|| OperationMetrics {
                kind,
                name: client.name.clone(),
                method,
                ..OperationMetrics::default()
            });
        if failed == 0 {
            entry.ok += 1;
        } else {
            entry.error += 1;
        }
        entry.messages_ok += succeeded;
        entry.messages_failed += failed;
        entry.total_time += elapsed;
        entry.max_time = entry.max_time.max(elapsed);
        drop(totals);
        self.go(client, method, failed == 0, elapsed);
    }

    fn after_commit(
        &self,
        client: &ClientInfo,
        _offsets: &[PartitionOffset],
        result: Result<(), &CommitFailure>,
        elapsed: Duration,
    ) {
        self.go(client, "CommitMessages", result.is_ok(), elapsed);
    }

    fn on_group_event(&self, client: &ClientInfo, event: &GroupEvent) {
        let method = match event {
            GroupEvent::Assigned(_) => "AssignedPartitions",
            GroupEvent::Revoked(_) => "RevokedPartitions",
            _ => return,
        };
        self.go(client, method, true, Duration::ZERO);
    }
}
