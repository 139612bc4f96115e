//! `enableMetricInterceptor`: counts and timings per client and operation.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use super::{ClientInfo, Interceptor};
use crate::record::WriteReport;

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
/// `enableMetricInterceptor` (on by default).
#[derive(Debug, Default)]
pub struct MetricsInterceptor {
    totals: Mutex<BTreeMap<(&'static str, String, &'static str), OperationMetrics>>,
}

impl MetricsInterceptor {
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
    }
}
