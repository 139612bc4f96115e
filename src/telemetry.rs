//! Logging shared by every client: librdkafka's own log lines, routed into
//! `tracing` under the target `librdkafka` with the ekafka client they belong to.

use rdkafka::config::RDKafkaLogLevel;

/// The most detailed librdkafka level the current `tracing` subscriber keeps
/// for the `librdkafka` target, and at least INFO. librdkafka drops lines
/// below its level before they reach us, and rdkafka would derive that level
/// from the `log` crate, which ekafka does not use (so only errors would ever
/// arrive). INFO at least, because the clients read the causes of lost
/// connections from those lines (facility FAIL) to explain timed-out work,
/// whether or not anyone logs them.
pub(crate) fn librdkafka_log_level() -> RDKafkaLogLevel {
    if tracing::enabled!(target: "librdkafka", tracing::Level::DEBUG) {
        RDKafkaLogLevel::Debug
    } else {
        RDKafkaLogLevel::Info
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
