//! `[kafka.tls]`: encrypted connections to the brokers, and the client
//! certificate for mutual TLS.

use std::path::PathBuf;

use super::error::ConfigError;
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

/// Reads `[tls]` inside `section`; `None` when absent or `enabled = false`.
pub(crate) fn read_tls(section: &Section<'_>) -> Result<Option<Tls>, ConfigError> {
    let Some(table) = section.table("tls")? else {
        return Ok(None);
    };
    let enabled = table.bool("enabled")?.unwrap_or(true);
    let tls = Tls {
        ca_file: file(&table, "caFile", enabled)?,
        cert_file: file(&table, "certFile", enabled)?,
        key_file: file(&table, "keyFile", enabled)?,
        key_password: table.string("keyPassword")?.map(Secret::new),
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
