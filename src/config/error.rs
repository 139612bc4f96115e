//! The configuration error: which key, which value, what was expected.

use std::fmt;

/// A configuration problem, naming the full key path (for example
/// `kafka.producers.p1.compression`) and what was wrong with it.
///
/// ```
/// let err = ekafka::Config::from_toml_str(
///     "[kafka]\nbrokers = [\"localhost:9092\"]\n[kafka.producers.p1]\ncompression = 7\n",
///     "kafka",
/// )
/// .unwrap_err();
/// assert_eq!(err.path(), "kafka.producers.p1.compression");
/// assert!(err.to_string().contains("7"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    path: String,
    problem: ConfigProblem,
}

/// What was wrong with a configuration key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// The text is not valid TOML, or the file could not be read.
    Unreadable {
        /// The parser's or the file system's explanation.
        reason: String,
    },
    /// A required section or key is absent.
    Missing,
    /// The value has the wrong TOML type.
    WrongType {
        /// What the key takes, e.g. "a duration string like \"3s\"".
        expected: &'static str,
        /// The value found, as written in TOML.
        found: String,
    },
    /// The value has the right type but is not allowed.
    InvalidValue {
        /// The value found, as written in TOML.
        found: String,
        /// What the key accepts.
        expected: String,
    },
    /// The key is not one ekafka knows.
    UnknownKey {
        /// The closest valid key, when one is close enough to be a likely typo.
        suggestion: Option<String>,
    },
    /// The key was written twice in different spellings (`groupID` and `group_id`).
    Duplicate {
        /// The other spelling.
        other: String,
    },
    /// A secret key names an environment variable or a file that does not
    /// give its value.
    SecretUnavailable {
        /// Where the value was to come from: the variable or the file.
        from: String,
        /// Why it did not (not set, unreadable, empty, ...).
        reason: String,
    },
    /// Two keys that cannot be set together.
    Conflict {
        /// The other key, as a full path.
        other: String,
        /// Why they exclude each other.
        reason: &'static str,
    },
}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, problem: ConfigProblem) -> Self {
        ConfigError {
            path: path.into(),
            problem,
        }
    }

    /// The full key path, e.g. `kafka.consumerGroups.cg1.startOffset`.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What was wrong.
    #[must_use]
    pub fn problem(&self) -> &ConfigProblem {
        &self.problem
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = &self.path;
        match &self.problem {
            ConfigProblem::Unreadable { reason } => {
                write!(f, "cannot read config {path}: {reason}")
            }
            ConfigProblem::Missing => write!(f, "config {path}: missing"),
            ConfigProblem::WrongType { expected, found } => {
                write!(f, "config {path}: expected {expected}, found {found}")
            }
            ConfigProblem::InvalidValue { found, expected } => {
                write!(
                    f,
                    "config {path}: invalid value {found}, expected {expected}"
                )
            }
            ConfigProblem::UnknownKey {
                suggestion: Some(s),
            } => {
                write!(f, "config {path}: unknown key (did you mean `{s}`?)")
            }
            ConfigProblem::UnknownKey { suggestion: None } => {
                write!(f, "config {path}: unknown key")
            }
            ConfigProblem::Duplicate { other } => {
                write!(f, "config {path}: set twice, also as `{other}`")
            }
            ConfigProblem::SecretUnavailable { from, reason } => {
                write!(
                    f,
                    "config {path}: cannot read the secret from {from}: {reason}"
                )
            }
            ConfigProblem::Conflict { other, reason } => {
                write!(
                    f,
                    "config {path}: cannot be set together with {other}: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for ConfigError {}
