//! Logging shared by every client: librdkafka's own log lines, routed into
//! `tracing` under the target `librdkafka` with the ekafka client they belong to.

use rdkafka::config::RDKafkaLogLevel;

/// The most detailed librdkafka level the current `tracing` subscriber keeps
/// for the `librdkafka` target. librdkafka drops lines below its level before
/// they reach us, and rdkafka would derive that level from the `log` crate,
/// which ekafka does not use (so only errors would ever arrive).
pub(crate) fn librdkafka_log_level() -> RDKafkaLogLevel {
    use tracing::Level;
    if tracing::enabled!(target: "librdkafka", Level::DEBUG) {
        RDKafkaLogLevel::Debug
    } else if tracing::enabled!(target: "librdkafka", Level::INFO) {
        RDKafkaLogLevel::Info
    } else if tracing::enabled!(target: "librdkafka", Level::WARN) {
        RDKafkaLogLevel::Warning
    } else {
        RDKafkaLogLevel::Error
    }
}

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
