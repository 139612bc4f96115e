//! The `[kafka]` section: brokers, client settings, SASL, interceptor switches and
//! the named producers, consumers and consumer groups.

use std::collections::BTreeMap;
use std::time::Duration;

use super::consumer::{ConsumerConfig, ConsumerGroupConfig};
use super::error::{ConfigError, ConfigProblem};
use super::producer::ProducerConfig;
use super::properties::Properties;
use super::reader::Section;
use super::secret::Secret;
use super::tls::{read_tls, Tls};

/// SASL mechanism (`saslMechanism`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// `PLAIN`
    Plain,
    /// `SCRAM-SHA-256`
    ScramSha256,
    /// `SCRAM-SHA-512`
    ScramSha512,
}

impl SaslMechanism {
    /// The librdkafka `sasl.mechanism` value.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials (`saslMechanism`, `saslUserName`, `saslPassword`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sasl {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// `saslUserName`.
    pub username: String,
    /// `saslPassword`; never printed.
    pub password: Secret,
}

/// `[kafka.client]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientSettings {
    /// `timeout` (10s): how long connecting to a broker, and each admin or metadata
    /// request, may take.
    pub timeout: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            timeout: Duration::from_secs(10),
        }
    }
}

/// The switches for the Go library's built-in interceptors.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InterceptorSwitches {
    /// `enableTraceInterceptor` (true).
    pub trace: bool,
    /// `enableAccessInterceptor` (false): log every operation with its duration.
    pub access: bool,
    /// `enableAccessInterceptorReq` (false): include the request messages in the access log.
    pub access_request: bool,
    /// `enableAccessInterceptorRes` (false): include the response in the access log.
    pub access_response: bool,
    /// `enableMetricInterceptor` (true).
    pub metric: bool,
}

impl Default for InterceptorSwitches {
    fn default() -> Self {
        InterceptorSwitches {
            trace: true,
            access: false,
            access_request: false,
            access_response: false,
            metric: true,
        }
    }
}

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
    pub section: String,
    /// `brokers` (required, not empty).
    pub brokers: Vec<String>,
    /// `debug` (false): print every request and its response.
    pub debug: bool,
    /// `[client]`.
    pub client: ClientSettings,
    /// SASL, when `saslMechanism` is set.
    pub sasl: Option<Sasl>,
    /// `[tls]`, when present and enabled.
    pub tls: Option<Tls>,
    /// Built-in interceptor switches.
    pub interceptors: InterceptorSwitches,
    /// `[producers.NAME]`.
    pub producers: BTreeMap<String, ProducerConfig>,
    /// `[consumers.NAME]`.
    pub consumers: BTreeMap<String, ConsumerConfig>,
    /// `[consumerGroups.NAME]`.
    pub consumer_groups: BTreeMap<String, ConsumerGroupConfig>,
    /// `[librdkafka]`: raw properties for every client, applied before each
    /// client's own `librdkafka` table.
    pub librdkafka: Properties,
}

impl Config {
    /// Checks what can change after reading: brokers set in code
    /// (`with_brokers`), and each producer's `balancer` against the built-in
    /// ones and those `registered` in code (`with_balancer`).
    pub(crate) fn check(&self, registered: &[&str]) -> Result<(), ConfigError> {
        let section = &self.section;
        if self.brokers.is_empty() || self.brokers.iter().any(|b| b.trim().is_empty()) {
            return Err(ConfigError::new(
                format!("{section}.brokers"),
                ConfigProblem::InvalidValue {
                    found: format!("{:?}", self.brokers),
                    expected: "at least one \"host:port\"".into(),
                },
            ));
        }
        super::producer::check_balancers(self, registered)
    }

    pub(crate) fn read(section: &Section<'_>) -> Result<Self, ConfigError> {
        let switches = InterceptorSwitches::default();
        let config = Config {
            section: section.path().to_string(),
            brokers: read_brokers(section)?,
            debug: section.bool("debug")?.unwrap_or(false),
            client: read_client(section)?,
            sasl: read_sasl(section)?,
            tls: read_tls(section)?,
            interceptors: InterceptorSwitches {
                trace: section
                    .bool("enableTraceInterceptor")?
                    .unwrap_or(switches.trace),
                access: section
                    .bool("enableAccessInterceptor")?
                    .unwrap_or(switches.access),
                access_request: section
                    .bool("enableAccessInterceptorReq")?
                    .unwrap_or(switches.access_request),
                access_response: section
                    .bool("enableAccessInterceptorRes")?
                    .unwrap_or(switches.access_response),
                metric: section
                    .bool("enableMetricInterceptor")?
                    .unwrap_or(switches.metric),
            },
            producers: read_named(section, "producers", ProducerConfig::read)?,
            consumers: read_named(section, "consumers", ConsumerConfig::read)?,
            consumer_groups: read_named(section, "consumerGroups", ConsumerGroupConfig::read)?,
            librdkafka: section.properties("librdkafka")?.into_iter().collect(),
        };
        Ok(config)
    }
}

fn read_named<T>(
    section: &Section<'_>,
    name: &'static str,
    read: fn(&Section<'_>) -> Result<T, ConfigError>,
) -> Result<BTreeMap<String, T>, ConfigError> {
    section
        .named_tables(name)?
        .into_iter()
        .map(|(client_name, client)| {
            let value = read(&client)?;
            client.finish()?;
            Ok((client_name, value))
        })
        .collect()
}

fn read_brokers(section: &Section<'_>) -> Result<Vec<String>, ConfigError> {
    let Some(brokers) = section.string_list("brokers")? else {
        return Err(section.missing("brokers"));
    };
    let raw = section.value("brokers").expect("present: just read");
    if brokers.is_empty() {
        return Err(section.invalid("brokers", raw, "at least one \"host:port\""));
    }
    if let Some(blank) = brokers
        .iter()
        .find(|b| b.trim().is_empty() || b.contains(','))
    {
        return Err(section.invalid(
            "brokers",
            raw,
            format!("one \"host:port\" per list item (found {blank:?})"),
        ));
    }
    Ok(brokers)
}

fn read_client(section: &Section<'_>) -> Result<ClientSettings, ConfigError> {
    let Some(client) = section.table("client")? else {
        return Ok(ClientSettings::default());
    };
    let timeout = client.duration("timeout")?;
    if timeout == Some(Duration::ZERO) {
        return Err(client.invalid(
            "timeout",
            client.value("timeout").expect("set"),
            "a duration above zero",
        ));
    }
    client.finish()?;
    Ok(ClientSettings {
        timeout: timeout.unwrap_or(ClientSettings::default().timeout),
    })
}

fn read_sasl(section: &Section<'_>) -> Result<Option<Sasl>, ConfigError> {
    const EXPECTED: &str = "\"PLAIN\", \"SCRAM-SHA-256\" or \"SCRAM-SHA-512\"";
    let mechanism = section
        .string("saslMechanism")?
        .filter(|m| !m.trim().is_empty());
    let username = section.string("saslUserName")?.unwrap_or_default();
    let password = Secret::new(section.string("saslPassword")?.unwrap_or_default());
    let Some(name) = mechanism else {
        if !username.is_empty() {
            return Err(ConfigError::new(
                section.key_path("saslMechanism"),
                ConfigProblem::Missing,
            ));
        }
        return Ok(None);
    };
    let mechanism = match name.trim().to_ascii_uppercase().replace('_', "-").as_str() {
        "PLAIN" => SaslMechanism::Plain,
        "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
        "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
        _ => {
            let raw = section.value("saslMechanism").expect("present: just read");
            return Err(section.invalid("saslMechanism", raw, EXPECTED));
        }
    };
    if username.is_empty() {
        return Err(ConfigError::new(
            section.key_path("saslUserName"),
            ConfigProblem::Missing,
        ));
    }
    Ok(Some(Sasl {
        mechanism,
        username,
        password,
    }))
}
