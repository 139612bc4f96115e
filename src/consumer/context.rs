//! The librdkafka context of a single consumer: its log lines go to `tracing`
//! like every other client's, and the latest error line is kept, because a
//! consumer's error events carry only a code while the detail (a broker's
//! answer to a login, say) is what librdkafka logs.

use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;

pub(crate) struct LoggingContext {
    client_name: String,
    last_error_log: Mutex<Option<String>>,
}

impl LoggingContext {
    pub(crate) fn new(client_name: String) -> Self {
        LoggingContext {
            client_name,
            last_error_log: Mutex::new(None),
        }
    }

    /// The latest line librdkafka logged at error level, if any.
    pub(crate) fn last_error_log(&self) -> Option<String> {
        self.last_error_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ClientContext for LoggingContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        crate::telemetry::librdkafka_log(&self.client_name, level, facility, message);
        use RDKafkaLogLevel as L;
        if matches!(level, L::Emerg | L::Alert | L::Critical | L::Error) {
            *self
                .last_error_log
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(message.to_string());
        }
    }
}

impl ConsumerContext for LoggingContext {}
