//! `[kafka.tls]`: encrypted connections to the brokers, and the client
//! certificate for mutual TLS.

use std::path::PathBuf;

use super::error::ConfigError;
use super::key::Field;
#[cfg(test)]
use super::key::{Doc, Row};
use super::properties::Properties;
use super::reader::Section;
use super::secret::Secret;

/// TLS settings (`[kafka.tls]`). TLS is on when the table is present, unless
/// `enabled = false`; with `saslMechanism` as well, clients speak SASL_SSL.
///
/// ```
/// let config = ekafka::Config::from_toml_str(
///     r#"
///     [kafka]
///     brokers = ["broker1:9093"]
///     [kafka.tls]
///     caFile = "Cargo.toml"   # a PEM file with the CA certificate(s)
///     "#,
///     "kafka",
/// )?;
/// assert!(config.tls.as_ref().unwrap().verify_hostname);
/// # Ok::<(), ekafka::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tls {
    /// `caFile`: PEM file of the CA certificates that sign the brokers'
    /// certificates (`ssl.ca.location`). Without it, the system's CA store.
    pub ca_file: Option<PathBuf>,
    /// `certFile`: the client's PEM certificate, for brokers that require
    /// mutual TLS (`ssl.certificate.location`). Needs `keyFile`.
    pub cert_file: Option<PathBuf>,
    /// `keyFile`: the client's PEM private key (`ssl.key.location`).
    pub key_file: Option<PathBuf>,
    /// `keyPassword`: the key's password, when it is encrypted
    /// (`ssl.key.password`); never printed.
    pub key_password: Option<Secret>,
    /// `verifyHostname` (true): check that the broker's certificate names the
    /// host connected to (`ssl.endpoint.identification.algorithm = https`).
    pub verify_hostname: bool,
}

/// The `[tls]` table inside a section: `None` when absent or `enabled = false`.
pub(super) struct TlsTable;

impl Field<Option<Tls>> for TlsTable {
    fn read(&self, section: &Section<'_>) -> Result<Option<Tls>, ConfigError> {
        let Some(table) = section.table("tls")? else {
            return Ok(None);
        };
        let enabled = table.bool("enabled")?.unwrap_or(true);
        let tls = Tls {
            ca_file: file(&table, "caFile", enabled)?,
            cert_file: file(&table, "certFile", enabled)?,
            key_file: file(&table, "keyFile", enabled)?,
            key_password: super::secret::secret(&table, "keyPassword")?,
            verify_hostname: table.bool("verifyHostname")?.unwrap_or(true),
        };
        // A certificate is useless without its key, and the reverse.
        match (&tls.cert_file, &tls.key_file) {
            (Some(_), None) => return Err(table.missing("keyFile")),
            (None, Some(_)) => return Err(table.missing("certFile")),
            _ => {}
        }
        table.finish()?;
        Ok(enabled.then_some(tls))
    }

    fn default_value(&self) -> Option<Option<Tls>> {
        Some(None)
    }

    /// `security.protocol` depends on SASL too: the config's rules set it.
    fn set_properties(&self, value: &Option<Tls>, props: &mut Properties) {
        let Some(tls) = value else { return };
        let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
        if let Some(ca) = &tls.ca_file {
            props.set("ssl.ca.location", path(ca));
        }
        if let Some(cert) = &tls.cert_file {
            props.set("ssl.certificate.location", path(cert));
        }
        if let Some(key) = &tls.key_file {
            props.set("ssl.key.location", path(key));
        }
        if let Some(password) = &tls.key_password {
            props.set("ssl.key.password", password.expose());
        }
        let identification = if tls.verify_hostname { "https" } else { "none" };
        props.set("ssl.endpoint.identification.algorithm", identification);
    }

    fn keys(&self, keys: &mut Vec<&'static str>) {
        keys.push("tls");
    }

    #[cfg(test)]
    fn describe(&self, _doc: Doc, rows: &mut Vec<Row>) {
        let row = |key: &str, default: &str, literal: Option<&str>, property, doc: Doc| {
            Row::new(
                key,
                default.into(),
                literal.map(str::to_string),
                property,
                doc,
            )
        };
        rows.extend([
            row("tls", "none", None, Some("security.protocol"), &[
                "a table: TLS is on when it is present, unless `enabled = false` (`SSL`, or `SASL_SSL` with `saslMechanism`)",
            ]),
            row("tls.enabled", "`true`", Some("true"), None, &["`false` turns TLS off while keeping the table"]),
            row("tls.caFile", "the system's CA store", None, Some("ssl.ca.location"), &[
                "the CA certificates (PEM) that sign the brokers' certificates; must be a readable file",
            ]),
            row("tls.certFile", "none", None, Some("ssl.certificate.location"), &[
                "the client's certificate (PEM), for brokers that require mutual TLS; needs `keyFile`",
            ]),
            row("tls.keyFile", "none", None, Some("ssl.key.location"), &["the client's private key (PEM); needs `certFile`"]),
            row("tls.keyPassword", "none", None, Some("ssl.key.password"), &["the key's password, `{ env = \"VARIABLE\" }` or `{ file = \"/path\" }` (read at load); never printed"]),
            row("tls.verifyHostname", "`true`", Some("true"), Some("ssl.endpoint.identification.algorithm"), &[
                "the broker's certificate must name the host connected to (`https`; `none` when false)",
            ]),
        ]);
    }
}

/// A file path; when TLS is on it must name a readable file now, so a typo is
/// a config error naming the key rather than a handshake failure later.
fn file(
    table: &Section<'_>,
    name: &'static str,
    check: bool,
) -> Result<Option<PathBuf>, ConfigError> {
    let Some(path) = table.string(name)? else {
        return Ok(None);
    };
    if check {
        if let Err(error) = std::fs::File::open(&path) {
            let raw = table.value(name).expect("present: just read");
            return Err(table.invalid(name, raw, format!("a readable file ({error})")));
        }
    }
    Ok(Some(PathBuf::from(path)))
}
