//! `[kafka.observability]`: where the App serves its HTTP endpoint.

use super::error::ConfigError;
use super::key::{settings, Rules};
use super::reader::Section;

settings! {
    /// `[kafka.observability]`: the App's HTTP endpoint.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct ObservabilitySettings with Default {
        /// `host:port` the App serves `/metrics` on (Prometheus/OpenMetrics
        /// text), e.g. `"127.0.0.1:9464"`; without it, nothing is served.
        pub address: Option<String> = optional("address").shown("none (not served)"),
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
