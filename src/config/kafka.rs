//! The `[kafka]` section: brokers, client settings, SASL, TLS, interceptor
//! switches and the named producers, consumers and consumer groups.

use std::collections::BTreeMap;
use std::time::Duration;

use std::marker::PhantomData;

use super::admin::AdminSettings;
use super::consumer::{ConsumerConfig, ConsumerGroupConfig};
use super::error::{ConfigError, ConfigProblem};
use super::key::{settings, Field, PropertyText as _, Rules, Settings};
#[cfg(test)]
use super::key::{Doc, Row};
use super::observability::ObservabilitySettings;
use super::producer::ProducerConfig;
use super::properties::Properties;
use super::reader::Section;
use super::sasl::{Sasl, SaslKeys};
use super::tls::{Tls, TlsTable};
use super::SectionPath;

settings! {
    /// `[kafka.client]`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct ClientSettings with Default {
        /// how long connecting to a broker, and each admin or metadata request,
        /// may take.
        pub timeout: Duration = key("timeout", "\"10s\"")
            .above_zero()
            .property("socket.connection.setup.timeout.ms"),
        /// the longest a client waits between attempts to reconnect to a
        /// broker it lost (librdkafka doubles its wait from 100 ms up to
        /// this), so a restarted broker is back in use within it;
        /// librdkafka's own default is 10 s, the Java client's 1 s.
        pub reconnect_backoff_max: Duration = key("reconnectBackoffMax", "\"1s\"")
            .check(
                |wait| *wait >= Duration::from_millis(100),
                "at least 100ms (librdkafka's first wait, reconnect.backoff.ms)",
            )
            .property("reconnect.backoff.max.ms"),
    }
}

impl Rules for ClientSettings {}

settings! {
    /// The switches for the Go library's built-in interceptors.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct InterceptorSwitches with Default {
        /// carry the writer's trace in produced messages: with the
        /// `opentelemetry` feature, each message without a `traceparent`
        /// gets its write's span context (W3C `traceparent`, `tracestate`);
        /// with no trace active, nothing is added.
        pub trace: bool = key("enableTraceInterceptor", "true"),
        /// record the Prometheus metrics (`Ekafka::metrics_text()`, the App's
        /// `/metrics`; see "Observe it") and the per-operation totals of
        /// `Ekafka::metrics()`.
        pub metric: bool = key("enableMetricInterceptor", "true"),
        /// one `tracing` event per operation, with its duration (target
        /// `ekafka::access`).
        pub access: bool = key("enableAccessInterceptor", "false"),
        /// include the messages written in that event.
        pub access_request: bool = key("enableAccessInterceptorReq", "false"),
        /// include the results in that event.
        pub access_response: bool = key("enableAccessInterceptorRes", "false"),
    }
}

impl Rules for InterceptorSwitches {}

settings! {
    /// A validated `[kafka]` section: everything the component needs.
    ///
    /// Load it with [`Config::from_file`], [`Config::from_toml_str`] or
    /// [`Config::from_table`]; see the README for every key and its default.
    ///
    /// ```
    /// let config = ekafka::Config::from_toml_str(
    ///     r#"
    ///     [kafka]
    ///     brokers = ["127.0.0.1:9092"]
    ///     [kafka.client]
    ///     timeout = "3s"
    ///     [kafka.producers.p1]
    ///     topic = "orders"
    ///     "#,
    ///     "kafka",
    /// )?;
    /// assert_eq!(config.producers["p1"].topic.as_deref(), Some("orders"));
    /// # Ok::<(), ekafka::ConfigError>(())
    /// ```
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub struct Config {
        /// The section's path, e.g. `kafka`, used in error messages.
        pub section: String = custom(SectionPath),
        /// the brokers to bootstrap from, one `"host:port"` per item.
        pub brokers: Vec<String> = required("brokers")
            .shown("required, not empty")
            .check(|brokers: &Vec<String>| one_broker_per_item(brokers), BROKERS_EXPECTED)
            .property_with("bootstrap.servers", |brokers| brokers.join(",")),
        /// print every request and response (the debug interceptor). The Go
        /// library's default is `true`.
        pub debug: bool = key("debug", "false"),
        /// `[client]`.
        pub client: ClientSettings = nested("client"),
        /// SASL, when `saslMechanism` is set.
        pub sasl: Option<Sasl> = custom(SaslKeys),
        /// `[tls]`, when present and enabled.
        pub tls: Option<Tls> = custom(TlsTable),
        /// Built-in interceptor switches.
        pub interceptors: InterceptorSwitches = flatten(),
        /// `[observability]`: the App's HTTP endpoint.
        pub observability: ObservabilitySettings = nested("observability"),
        /// `[admin]`: the admin client.
        pub admin: AdminSettings = nested("admin"),
        /// how often librdkafka reports its statistics (queues, broker
        /// round trips) into the metrics, while `enableMetricInterceptor` is
        /// on; `"0"` turns them off.
        pub statistics_interval: Duration = key("statisticsInterval", "\"5s\"")
            .sets("statistics.interval.ms"),
        /// `[producers.NAME]`.
        pub producers: BTreeMap<String, ProducerConfig> = custom(Named::new("producers")),
        /// `[consumers.NAME]`.
        pub consumers: BTreeMap<String, ConsumerConfig> = custom(Named::new("consumers")),
        /// `[consumerGroups.NAME]`.
        pub consumer_groups: BTreeMap<String, ConsumerGroupConfig> =
            custom(Named::new("consumerGroups")),
        /// raw properties for every client, applied before each client's own
        /// `librdkafka` table.
        pub librdkafka: Properties = key("librdkafka", "{}").shown("empty"),
    }
}

const BROKERS_EXPECTED: &str = "at least one \"host:port\", one per list item";

fn one_broker_per_item(brokers: &[String]) -> bool {
    !brokers.is_empty()
        && brokers
            .iter()
            .all(|b| !b.trim().is_empty() && !b.contains(','))
}

impl Rules for Config {
    fn derive_properties(&self, props: &mut Properties) {
        let protocol = match (&self.sasl, &self.tls) {
            (None, None) => None,
            (Some(_), None) => Some("SASL_PLAINTEXT"),
            (None, Some(_)) => Some("SSL"),
            (Some(_), Some(_)) => Some("SASL_SSL"),
        };
        if let Some(protocol) = protocol {
            props.set("security.protocol", protocol);
        }
        // Statistics cost a JSON report per client and interval: only asked
        // for when the metrics take them.
        if self.interceptors.metric && !self.statistics_interval.is_zero() {
            props.set(
                "statistics.interval.ms",
                self.statistics_interval.property_text(),
            );
        }
    }
}

/// A table of named clients (`[kafka.producers.NAME]`), each read as `S`.
/// Their properties are each client's own: none here.
struct Named<S> {
    name: &'static str,
    client: PhantomData<S>,
}

impl<S> Named<S> {
    fn new(name: &'static str) -> Self {
        Named {
            name,
            client: PhantomData,
        }
    }
}

impl<S: Settings> Field<BTreeMap<String, S>> for Named<S> {
    fn read(&self, section: &Section<'_>) -> Result<BTreeMap<String, S>, ConfigError> {
        section
            .named_tables(self.name)?
            .into_iter()
            .map(|(client_name, client)| {
                let value = S::read(&client)?;
                client.finish()?;
                Ok((client_name, value))
            })
            .collect()
    }

    fn default_value(&self) -> Option<BTreeMap<String, S>> {
        Some(BTreeMap::new())
    }

    fn set_properties(&self, _value: &BTreeMap<String, S>, _props: &mut Properties) {}

    fn keys(&self, keys: &mut Vec<&'static str>) {
        keys.push(self.name);
    }

    /// Each client kind has a README table of its own.
    #[cfg(test)]
    fn describe(&self, _doc: Doc, _rows: &mut Vec<Row>) {}
}

impl Config {
    /// Checks what can change after reading: brokers set in code
    /// (`with_brokers`), and each producer's `balancer` against the built-in
    /// ones and those `registered` in code (`with_balancer`).
    pub(crate) fn check(&self, registered: &[&str]) -> Result<(), ConfigError> {
        let section = &self.section;
        if !one_broker_per_item(&self.brokers) {
            return Err(ConfigError::new(
                format!("{section}.brokers"),
                ConfigProblem::InvalidValue {
                    found: format!("{:?}", self.brokers),
                    expected: BROKERS_EXPECTED.into(),
                },
            ));
        }
        super::producer::check_balancers(section, &self.producers, registered)
    }
}
