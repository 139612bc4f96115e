//! Logging shared by every client: librdkafka's own log lines, routed into
//! `tracing` under the target `librdkafka` with the ekafka client they belong to.

use rdkafka::config::RDKafkaLogLevel;

/// Forwards one librdkafka log line. librdkafka redacts credentials in what it
/// logs, and ekafka never logs a config that holds them unredacted.
pub(crate) fn librdkafka_log(client: &str, level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", client, facility, "{message}")
        }
        RDKafkaLogLevel::Warning => {
            tracing::warn!(target: "librdkafka", client, facility, "{message}")
        }
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", client, facility, "{message}")
        }
        RDKafkaLogLevel::Debug => {
            tracing::debug!(target: "librdkafka", client, facility, "{message}")
        }
    }
}
