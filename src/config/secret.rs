//! A string that never shows itself in Debug, Display or logs, and where a
//! secret key's value comes from: the config itself, an environment variable
//! or a file.

use std::fmt;

use toml::Value;

use super::error::{ConfigError, ConfigProblem};
use super::reader::{normalize_key, Section};

/// What a secret key takes, for a value of another type.
const SECRET_FORMS: &str = "a string, { env = \"VARIABLE\" } or { file = \"/path/to/file\" }";

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

/// Reads secret key `name` of `section`: the value itself (`"..."`), the
/// value of an environment variable (`{ env = "KAFKA_PASSWORD" }`) or the
/// contents of a file (`{ file = "/run/secrets/kafka-password" }`, one
/// trailing line break dropped), read now, at load. A variable that is not
/// set, a file that cannot be read and an empty value are errors naming the
/// key and the variable or file; never the value.
pub(super) fn secret(
    section: &Section<'_>,
    name: &'static str,
) -> Result<Option<Secret>, ConfigError> {
    let form = match section.value(name) {
        None => return Ok(None),
        Some(Value::String(value)) => return Ok(Some(Secret::new(value.clone()))),
        Some(Value::Table(form)) => form,
        Some(other) => return Err(section.wrong_type(name, SECRET_FORMS, other)),
    };
    let path = section.key_path(name);
    let (source, value) = match source(form, &path)? {
        Source::Env(variable) => {
            let value = std::env::var(&variable).map_err(|error| {
                let reason = match error {
                    std::env::VarError::NotPresent => "it is not set".to_string(),
                    std::env::VarError::NotUnicode(_) => "its value is not UTF-8 text".to_string(),
                };
                unavailable(&path, format!("environment variable {variable:?}"), reason)
            })?;
            (format!("environment variable {variable:?}"), value)
        }
        Source::File(file) => {
            let from = format!("file {file:?}");
            let text = std::fs::read(&file)
                .map_err(|error| unavailable(&path, from.clone(), error.to_string()))?;
            let text = String::from_utf8(text)
                .map_err(|_| unavailable(&path, from.clone(), "it is not UTF-8 text".into()))?;
            (from, without_final_line_break(text))
        }
    };
    if value.is_empty() {
        return Err(unavailable(&path, source, "it is empty".into()));
    }
    Ok(Some(Secret::new(value)))
}

/// Where a secret is read from.
enum Source {
    Env(String),
    File(String),
}

/// The one source a secret's table names: `env` or `file`.
fn source(form: &toml::Table, path: &str) -> Result<Source, ConfigError> {
    let mut found = None;
    for (key, value) in form {
        let key_path = format!("{path}.{key}");
        let make: fn(String) -> Source = match normalize_key(key).as_str() {
            "env" => Source::Env,
            "file" => Source::File,
            other => {
                let suggestion = ["env", "file"]
                    .into_iter()
                    .find(|known| other.starts_with(known) || known.starts_with(other))
                    .map(str::to_string);
                return Err(ConfigError::new(
                    key_path,
                    ConfigProblem::UnknownKey { suggestion },
                ));
            }
        };
        let Value::String(named) = value else {
            return Err(ConfigError::new(
                key_path,
                ConfigProblem::WrongType {
                    expected: "a string",
                    found: super::reader::describe(value),
                },
            ));
        };
        if found.is_some() {
            return Err(ConfigError::new(
                key_path,
                ConfigProblem::Conflict {
                    other: path.to_string(),
                    reason: "a secret comes from one place: `env` or `file`",
                },
            ));
        }
        found = Some(make(named.clone()));
    }
    found.ok_or_else(|| {
        ConfigError::new(
            path,
            ConfigProblem::InvalidValue {
                found: "an empty table".into(),
                expected: SECRET_FORMS.into(),
            },
        )
    })
}

/// A file written by `echo` or an editor ends with a line break that is not
/// part of the secret.
fn without_final_line_break(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

fn unavailable(path: &str, from: String, reason: String) -> ConfigError {
    ConfigError::new(path, ConfigProblem::SecretUnavailable { from, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads secret key `password` of `text`, a TOML table.
    fn read(text: &str) -> Result<Option<Secret>, ConfigError> {
        let table: toml::Table = text.parse().expect("valid TOML");
        let section = Section::new(&table, "kafka").expect("a section");
        secret(&section, "password")
    }

    /// A file of its own with `contents`, removed when dropped.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn with(contents: &[u8]) -> Self {
            let path = std::env::temp_dir().join(crate::unique::unique_name("secret"));
            std::fs::write(&path, contents).expect("temp file written");
            TempFile(path)
        }

        fn toml(&self) -> String {
            format!("password = {{ file = {:?} }}", self.0.to_str().unwrap())
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn a_secret_is_written_in_place_or_absent() {
        let secret = read("password = \"hunter2\"").unwrap().unwrap();
        assert_eq!(secret.expose(), "hunter2");
        assert!(read("other = 1").unwrap().is_none());
    }

    #[test]
    fn a_secret_comes_from_an_environment_variable() {
        // PATH is set wherever the tests run; no test changes the environment.
        let path = std::env::var("PATH").expect("PATH is set");
        let secret = read("password = { env = \"PATH\" }").unwrap().unwrap();
        assert_eq!(secret.expose(), path);
        assert_eq!(format!("{secret:?}"), "<redacted>");
    }

    #[test]
    fn a_variable_that_is_not_set_is_an_error_naming_the_key_and_the_variable() {
        let variable = crate::unique::unique_name("EKAFKA_UNSET").to_uppercase();
        let error = read(&format!("password = {{ env = {variable:?} }}")).unwrap_err();
        assert_eq!(error.path(), "kafka.password");
        let text = error.to_string();
        assert!(
            text.contains(&variable) && text.contains("not set"),
            "{text}"
        );
    }

    #[test]
    fn a_secret_comes_from_a_file_without_its_final_line_break() {
        for contents in ["s3cret", "s3cret\n", "s3cret\r\n"] {
            let file = TempFile::with(contents.as_bytes());
            let secret = read(&file.toml()).unwrap().unwrap();
            assert_eq!(secret.expose(), "s3cret", "{contents:?}");
        }
        let file = TempFile::with(b"two words\n\n");
        assert_eq!(read(&file.toml()).unwrap().unwrap().expose(), "two words\n");
    }

    #[test]
    fn an_unreadable_or_empty_file_is_an_error_naming_the_key_and_the_file_never_the_value() {
        let missing = std::env::temp_dir().join(crate::unique::unique_name("absent"));
        let missing = missing.to_str().unwrap();
        let error = read(&format!("password = {{ file = {missing:?} }}")).unwrap_err();
        assert_eq!(error.path(), "kafka.password");
        assert!(error.to_string().contains(missing), "{error}");

        let empty = TempFile::with(b"\n");
        let error = read(&empty.toml()).unwrap_err();
        assert!(error.to_string().contains("empty"), "{error}");

        let binary = TempFile::with(&[0xff, 0xfe, b'x']);
        let error = read(&binary.toml()).unwrap_err();
        assert!(error.to_string().contains("not UTF-8"), "{error}");
    }

    #[test]
    fn a_secret_table_names_one_source_by_a_known_key() {
        let error = read("password = { env = \"A\", file = \"/b\" }").unwrap_err();
        assert!(
            matches!(error.problem(), ConfigProblem::Conflict { .. }),
            "{error}"
        );
        let error = read("password = { environment = \"A\" }").unwrap_err();
        assert_eq!(error.path(), "kafka.password.environment");
        assert!(error.to_string().contains("did you mean `env`"), "{error}");
        let error = read("password = {}").unwrap_err();
        assert!(error.to_string().contains("empty table"), "{error}");
        let error = read("password = { env = 3 }").unwrap_err();
        assert_eq!(error.path(), "kafka.password.env");
        let error = read("password = 3").unwrap_err();
        assert!(error.to_string().contains("{ env ="), "{error}");
    }
}
