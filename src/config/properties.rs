//! An ordered set of librdkafka properties whose Debug output hides secrets.

use std::collections::BTreeMap;
use std::fmt;

/// librdkafka client properties (`bootstrap.servers`, `linger.ms`, ...), as ekafka
/// derives them from the config plus the raw `librdkafka` tables.
///
/// Debug output redacts every property whose name mentions a password, secret or
/// key material, so a `Properties` can be logged safely.
///
/// ```
/// let mut props = ekafka::config::Properties::default();
/// props.set("sasl.password", "hunter2");
/// props.set("linger.ms", "5");
/// assert_eq!(props.get("linger.ms"), Some("5"));
/// assert!(!format!("{props:?}").contains("hunter2"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Properties {
    entries: BTreeMap<String, String>,
}

impl Properties {
    /// Sets a property, replacing an earlier value.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        #[cfg(test)]
        if self.entries.contains_key(&name) {
            rewrites::note(&name);
        }
        self.entries.insert(name, value.into());
    }

    /// The value of a property, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.get(name).map(String::as_str)
    }

    /// All properties in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of properties.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no property is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets every property of `other`, replacing values already present (the
    /// raw tables, layered last on purpose).
    pub fn extend(&mut self, other: &Properties) {
        for (k, v) in other.iter() {
            self.entries.insert(k.to_string(), v.to_string());
        }
    }

    /// Builds the rdkafka client configuration. librdkafka's log level follows
    /// what the current `tracing` subscriber keeps for the `librdkafka` target.
    #[must_use]
    pub fn to_client_config(&self) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config.set_log_level(crate::telemetry::librdkafka_log_level());
        for (k, v) in self.iter() {
            config.set(k, v);
        }
        config
    }
}

impl FromIterator<(String, String)> for Properties {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Properties {
            entries: iter.into_iter().collect(),
        }
    }
}

/// True for properties that carry credentials or key material.
fn is_sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "secret",
        "sasl.jaas",
        "oauthbearer.config",
        "ssl.key.pem",
        "ssl_key",
    ]
    .iter()
    .any(|marker| name.contains(marker))
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in self.iter() {
            if is_sensitive(k) {
                map.entry(&k, &"<redacted>");
            } else {
                map.entry(&k, &v);
            }
        }
        map.finish()
    }
}

/// Properties [`Properties::set`] replaced on this thread: the mapping
/// writes each property once (tests hold it to that); only the raw tables,
/// layered last with `extend`, replace.
#[cfg(test)]
pub(crate) mod rewrites {
    use std::cell::RefCell;

    thread_local! {
        static REWRITTEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn note(name: &str) {
        REWRITTEN.with(|r| r.borrow_mut().push(name.to_string()));
    }

    /// What was replaced since the last call.
    pub(crate) fn take() -> Vec<String> {
        REWRITTEN.with(|r| std::mem::take(&mut *r.borrow_mut()))
    }
}
