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

/// The cause in a librdkafka log line, without its thread tag
/// (`[thrd:host:port/id]: `) or its note on suppressed repeats: what an
/// error message built from the line should say.
pub(crate) fn log_cause(line: &str) -> &str {
    let line = line
        .strip_prefix("[thrd:")
        .and_then(|rest| rest.split_once("]: "))
        .map_or(line, |(_, cause)| cause);
    line.split(": identical to last error")
        .next()
        .unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::log_cause;

    #[test]
    fn a_fail_line_keeps_only_its_cause() {
        let line = "[thrd:127.0.0.1:45459/bootstrap]: 127.0.0.1:45459/bootstrap: Disconnected: \
                    connection reset by peer (after 0ms in state UP) (_TRANSPORT): identical to \
                    last error: error log suppressed";
        assert_eq!(
            log_cause(line),
            "127.0.0.1:45459/bootstrap: Disconnected: connection reset by peer (after 0ms in \
             state UP) (_TRANSPORT)"
        );
        assert_eq!(log_cause("plain cause"), "plain cause");
    }
}
