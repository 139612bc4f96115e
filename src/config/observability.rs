//! `[kafka.observability]`: where the App serves its HTTP endpoint, and when
//! its liveness check calls a loop or a handler stuck.

use std::time::Duration;

use super::error::ConfigError;
use super::key::{settings, Rules};
use super::reader::Section;

settings! {
    /// `[kafka.observability]`: the App's HTTP endpoint.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct ObservabilitySettings with Default {
        /// `host:port` the App serves on: `/metrics` (Prometheus/OpenMetrics
        /// text), `/health/live`, `/health/ready`, `/status` (JSON) and a
        /// status page at `/`; e.g. `"127.0.0.1:9464"`. Without it, nothing
        /// is served.
        pub address: Option<String> = optional("address").shown("none (not served)"),
        /// liveness fails when a consumer group's poll loop has not run, or a
        /// handler call has run, for this long (a partition paused for
        /// back-pressure keeps its loop running: it is healthy).
        pub stuck_after: Duration = key("stuckAfter", "\"1m\"").above_zero(),
        /// how often the App samples each consumer group's messages handled
        /// per second and total lag, and each consumer's lag, for the status
        /// page's charts (which show the last 15 minutes, kept in memory).
        pub history_interval: Duration = key("historyInterval", "\"5s\"")
            .check(|d| *d >= Duration::from_millis(100) && *d <= Duration::from_secs(60), "between 100ms and 1m"),
    }
}

impl Rules for ObservabilitySettings {
    fn check(&self, section: &Section<'_>) -> Result<(), ConfigError> {
        let Some(address) = &self.address else {
            return Ok(());
        };
        let port = address
            .rsplit_once(':')
            .filter(|(host, _)| !host.is_empty())
            .and_then(|(_, port)| port.parse::<u16>().ok());
        match port {
            Some(_) => Ok(()),
            None => Err(section.invalid(
                "address",
                section.value("address").expect("present: just read"),
                "host:port, e.g. \"127.0.0.1:9464\"",
            )),
        }
    }
}
