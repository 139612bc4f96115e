//! A string that never shows itself in Debug, Display or logs.

use std::fmt;

/// A secret configuration value, such as `saslPassword`.
///
/// Its `Debug` and `Display` print `"<redacted>"`, so a config can be logged or
/// printed whole without leaking credentials (the Go library wrote the SASL
/// password to its debug log). Read the value with [`Secret::expose`].
///
/// ```
/// let password = ekafka::config::Secret::new("hunter2");
/// assert_eq!(format!("{password:?}"), "<redacted>");
/// assert_eq!(password.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; only for handing it to the Kafka client.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no value was given.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
