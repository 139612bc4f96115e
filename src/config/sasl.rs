//! SASL login: `saslMechanism`, `saslUserName`, `saslPassword` in `[kafka]`.

use super::error::{ConfigError, ConfigProblem};
use super::key::Field;
#[cfg(test)]
use super::key::{Doc, Row};
use super::properties::Properties;
use super::reader::Section;
use super::secret::Secret;

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

/// The SASL keys: all three, or none. A user name without a mechanism is
/// an error, not a login silently left out.
pub(super) struct SaslKeys;

impl Field<Option<Sasl>> for SaslKeys {
    fn read(&self, section: &Section<'_>) -> Result<Option<Sasl>, ConfigError> {
        const EXPECTED: &str = "\"PLAIN\", \"SCRAM-SHA-256\" or \"SCRAM-SHA-512\"";
        let mechanism = section
            .string("saslMechanism")?
            .filter(|m| !m.trim().is_empty());
        let username = section.string("saslUserName")?.unwrap_or_default();
        let password = super::secret::secret(section, "saslPassword")?.unwrap_or_default();
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

    fn default_value(&self) -> Option<Option<Sasl>> {
        Some(None)
    }

    /// `security.protocol` depends on TLS too: the config's rules set it.
    fn set_properties(&self, value: &Option<Sasl>, props: &mut Properties) {
        if let Some(sasl) = value {
            props.set("sasl.mechanism", sasl.mechanism.name());
            props.set("sasl.username", &sasl.username);
            props.set("sasl.password", sasl.password.expose());
        }
    }

    fn keys(&self, keys: &mut Vec<&'static str>) {
        keys.extend(["saslMechanism", "saslUserName", "saslPassword"]);
    }

    #[cfg(test)]
    fn describe(&self, _doc: Doc, rows: &mut Vec<Row>) {
        let row = |key, property, doc: Doc| Row::new(key, "none".into(), None, Some(property), doc);
        rows.push(row(
            "saslMechanism",
            "sasl.mechanism",
            &["`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`; also `security.protocol = SASL_PLAINTEXT` (`SASL_SSL` with `[kafka.tls]`)"],
        ));
        rows.push(row(
            "saslUserName",
            "sasl.username",
            &["required with `saslMechanism`"],
        ));
        rows.push(row(
            "saslPassword",
            "sasl.password",
            &["the password, `{ env = \"VARIABLE\" }` or `{ file = \"/path\" }` (read at load); never printed"],
        ));
    }
}
