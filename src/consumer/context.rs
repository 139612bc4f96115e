//! What consumers keep of librdkafka's log, and the context of a single
//! consumer. A consumer's error events carry only a code, while the detail (a
//! broker's answer to a login, say) is what librdkafka logs, so the latest
//! error-level line is kept. A single consumer's log lines go to `tracing`
//! like every other client's.

use crate::observe::StatsSink;
use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::error::Refusal;

/// The latest line librdkafka logged at error level for one client.
#[derive(Default)]
pub(crate) struct LastErrorLog(Mutex<Option<String>>);

impl LastErrorLog {
    /// Keeps `message` when `level` is an error or worse.
    pub(crate) fn note(&self, level: RDKafkaLogLevel, message: &str) {
        use RDKafkaLogLevel as L;
        if matches!(level, L::Emerg | L::Alert | L::Critical | L::Error) {
            let cause = crate::telemetry::log_cause(message);
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(cause.to_string());
        }
    }

    /// Why the broker refused the client. A refused login or handshake is
    /// explained only in librdkafka's log (the error event carries a code), a
    /// missing ACL by the code itself.
    pub(crate) fn refusal_reason(&self, refusal: Refusal, code: RDKafkaErrorCode) -> String {
        let logged = match refusal {
            Refusal::Authentication | Refusal::Tls => {
                self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
            }
            Refusal::Authorization => None,
        };
        let detail = logged.unwrap_or_else(|| code.to_string());
        format!("{}: {detail}", refusal.label())
    }
}

pub(crate) struct LoggingContext {
    client_name: String,
    pub(crate) last_error_log: LastErrorLog,
    /// Where librdkafka's statistics go, when the metrics are on.
    pub(crate) stats: Option<StatsSink>,
}

impl LoggingContext {
    pub(crate) fn new(client_name: String) -> Self {
        LoggingContext {
            client_name,
            last_error_log: LastErrorLog::default(),
            stats: None,
        }
    }
}

impl ClientContext for LoggingContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        if let Some(stats) = &self.stats {
            stats.record(&statistics);
        }
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        crate::telemetry::librdkafka_log(&self.client_name, level, facility, message);
        self.last_error_log.note(level, message);
    }
}

impl ConsumerContext for LoggingContext {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_login_is_explained_without_librdkafkas_thread_tag() {
        let log = LastErrorLog::default();
        log.note(
            RDKafkaLogLevel::Error,
            "[thrd:sasl_plaintext://127.0.0.1:9092/bootstrap]: sasl_plaintext://127.0.0.1:9092/\
             bootstrap: SASL authentication error: Authentication failed",
        );
        let reason = log.refusal_reason(
            Refusal::Authentication,
            RDKafkaErrorCode::SaslAuthenticationFailed,
        );
        assert_eq!(
            reason,
            "SASL authentication failed: sasl_plaintext://127.0.0.1:9092/bootstrap: SASL \
             authentication error: Authentication failed"
        );
    }
}
