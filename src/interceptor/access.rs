//! `enableAccessInterceptor`: one structured log event per operation.

use std::time::Duration;

use super::{ClientInfo, Interceptor, Rejection};
use crate::record::Message;
use crate::record::{Outcome, WriteReport};

/// Logs each write through `tracing` (target `ekafka::access`): client, method,
/// duration and counts; the messages when `enableAccessInterceptorReq` is set, and
/// the per-message results when `enableAccessInterceptorRes` is set. Failed
/// writes log at WARN, others at INFO.
#[derive(Debug, Clone, Default)]
pub struct AccessLogInterceptor {
    /// Include the request messages.
    pub with_request: bool,
    /// Include the per-message results.
    pub with_response: bool,
}

impl Interceptor for AccessLogInterceptor {
    fn name(&self) -> &str {
        "access"
    }

    fn before_write(
        &self,
        client: &ClientInfo,
        messages: &mut Vec<Message>,
    ) -> Result<(), Rejection> {
        if self.with_request {
            tracing::info!(
                target: "ekafka::access",
                kind = client.kind.as_str(),
                name = %client.name,
                method = "WriteMessages",
                request = ?messages,
                "request"
            );
        }
        Ok(())
    }

    fn after_write(&self, client: &ClientInfo, report: &WriteReport, elapsed: Duration) {
        let failed = report.failures().count();
        let total = report.outcomes().len();
        let response = self.with_response.then(|| {
            report
                .outcomes()
                .iter()
                .map(|o| match o {
                    Outcome::Delivered(d) => format!("{}/{}@{}", d.topic, d.partition, d.offset),
                    Outcome::Enqueued => "enqueued".to_string(),
                    Outcome::Failed(e) => format!("failed: {}", e.reason),
                })
                .collect::<Vec<_>>()
        });
        if failed > 0 {
            tracing::warn!(
                target: "ekafka::access",
                kind = client.kind.as_str(),
                name = %client.name,
                method = "WriteMessages",
                duration_ms = elapsed.as_secs_f64() * 1e3,
                messages = total,
                failed,
                response = ?response,
                "access"
            );
        } else {
            tracing::info!(
                target: "ekafka::access",
                kind = client.kind.as_str(),
                name = %client.name,
                method = "WriteMessages",
                duration_ms = elapsed.as_secs_f64() * 1e3,
                messages = total,
                failed,
                response = ?response,
                "access"
            );
        }
    }
}
