//! Walks one TOML table with case-insensitive keys, typed getters that report the
//! full key path, and a final check that every key was understood.
//!
//! Key matching ignores case, `_` and `-`, so `groupID`, `groupId`, `group_id` and
//! `GroupID` are one key: the Go guide mixes `JoinGroupBackoff` and
//! `joinGroupBackoff`, and Rust users write snake_case.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use toml::Value;

use super::duration::{parse_go_duration, SignedDuration};
use super::error::{ConfigError, ConfigProblem};

struct Entry<'a> {
    key: &'a str,
    normalized: String,
    value: &'a Value,
    used: Cell<bool>,
}

/// One TOML table being read.
pub(crate) struct Section<'a> {
    path: String,
    entries: Vec<Entry<'a>>,
    asked_for: RefCell<Vec<&'static str>>,
}

pub(crate) fn normalize_key(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

pub(crate) fn join_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl<'a> Section<'a> {
    pub(crate) fn new(
        table: &'a toml::Table,
        path: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let path = path.into();
        let mut entries: Vec<Entry<'a>> = Vec::with_capacity(table.len());
        for (key, value) in table {
            let normalized = normalize_key(key);
            if let Some(first) = entries.iter().find(|e| e.normalized == normalized) {
                return Err(ConfigError::new(
                    join_path(&path, key),
                    ConfigProblem::Duplicate {
                        other: first.key.to_string(),
                    },
                ));
            }
            entries.push(Entry {
                key,
                normalized,
                value,
                used: Cell::new(false),
            });
        }
        Ok(Section {
            path,
            entries,
            asked_for: RefCell::new(Vec::new()),
        })
    }

    /// The path of this table, e.g. `kafka.producers.p1`.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// The full path of a key of this table, in the spelling the user wrote when present.
    pub(crate) fn key_path(&self, name: &'static str) -> String {
        let normalized = normalize_key(name);
        let written = self
            .entries
            .iter()
            .find(|e| e.normalized == normalized)
            .map_or(name, |e| e.key);
        join_path(&self.path, written)
    }

    /// The raw value of a key, marking it understood.
    pub(crate) fn value(&self, name: &'static str) -> Option<&'a Value> {
        self.asked_for.borrow_mut().push(name);
        // A key's default is read from a table of its own with no path.
        #[cfg(test)]
        if !self.path.is_empty() {
            asked::note(&self.path, name);
        }
        let normalized = normalize_key(name);
        let entry = self.entries.iter().find(|e| e.normalized == normalized)?;
        entry.used.set(true);
        Some(entry.value)
    }

    /// The error for a required key that is absent. When a key nobody asked
    /// for looks like a typo of it (`brokres` for `brokers`), that key is
    /// named with the suggestion instead: it is what the user has to fix.
    pub(crate) fn missing(&self, name: &'static str) -> ConfigError {
        let wanted = normalize_key(name);
        let typo = self
            .entries
            .iter()
            .filter(|e| !e.used.get())
            .find(|e| closest(&e.normalized, &[name]).is_some() && e.normalized != wanted);
        match typo {
            Some(entry) => ConfigError::new(
                join_path(&self.path, entry.key),
                ConfigProblem::UnknownKey {
                    suggestion: Some(name.to_string()),
                },
            ),
            None => ConfigError::new(self.key_path(name), ConfigProblem::Missing),
        }
    }

    pub(crate) fn wrong_type(
        &self,
        name: &'static str,
        expected: &'static str,
        found: &Value,
    ) -> ConfigError {
        ConfigError::new(
            self.key_path(name),
            ConfigProblem::WrongType {
                expected,
                found: describe(found),
            },
        )
    }

    pub(crate) fn invalid(
        &self,
        name: &'static str,
        found: &Value,
        expected: impl Into<String>,
    ) -> ConfigError {
        ConfigError::new(
            self.key_path(name),
            ConfigProblem::InvalidValue {
                found: describe(found),
                expected: expected.into(),
            },
        )
    }

    /// Fails when two related keys are out of order (`in_order` is false), naming
    /// the first of the two the user wrote, with its value. Their defaults are in
    /// order, so one of them was written whenever they are not.
    pub(crate) fn check_order(
        &self,
        first: &'static str,
        second: &'static str,
        in_order: bool,
        expected: impl Into<String>,
    ) -> Result<(), ConfigError> {
        if in_order {
            return Ok(());
        }
        let (key, raw) = [first, second]
            .into_iter()
            .find_map(|key| self.value(key).map(|raw| (key, raw)))
            .expect("defaults are in order, so one of the keys was written");
        Err(self.invalid(key, raw, expected))
    }

    pub(crate) fn string(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.wrong_type(name, "a string", other)),
        }
    }

    pub(crate) fn bool(&self, name: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(name, "true or false", other)),
        }
    }

    /// An integer, also accepted as a string of digits (`startOffset = "-2"`).
    pub(crate) fn integer(&self, name: &'static str) -> Result<Option<i64>, ConfigError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::Integer(i)) => Ok(Some(*i)),
            Some(v @ Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| self.wrong_type(name, "an integer", v)),
            Some(other) => Err(self.wrong_type(name, "an integer", other)),
        }
    }

    /// An integer in `min..=max`.
    pub(crate) fn integer_in(
        &self,
        name: &'static str,
        min: i64,
        max: i64,
    ) -> Result<Option<i64>, ConfigError> {
        let Some(value) = self.integer(name)? else {
            return Ok(None);
        };
        if (min..=max).contains(&value) {
            Ok(Some(value))
        } else {
            let raw = self.value(name).expect("present: just read");
            Err(self.invalid(name, raw, format!("an integer from {min} to {max}")))
        }
    }

    fn signed_duration(&self, name: &'static str) -> Result<Option<SignedDuration>, ConfigError> {
        match self.value(name) {
            None => Ok(None),
            Some(v @ Value::String(s)) => parse_go_duration(s).map(Some).map_err(|reason| {
                self.invalid(
                    name,
                    v,
                    format!("a duration like \"3s\", \"100ms\" or \"1m30s\"; {reason}"),
                )
            }),
            // `commitInterval = 0` is common enough to accept without quotes.
            Some(Value::Integer(0)) => Ok(Some(SignedDuration {
                negative: false,
                magnitude: Duration::ZERO,
            })),
            Some(other) => Err(self.wrong_type(name, "a duration string like \"3s\"", other)),
        }
    }

    /// A duration that must not be negative.
    pub(crate) fn duration(&self, name: &'static str) -> Result<Option<Duration>, ConfigError> {
        match self.signed_duration(name)? {
            None => Ok(None),
            Some(d) => match d.non_negative() {
                Some(d) => Ok(Some(d)),
                None => Err(self.invalid(
                    name,
                    self.value(name).expect("present: just read"),
                    "a duration that is not negative",
                )),
            },
        }
    }

    /// A duration where a negative value means "disabled" (the Go convention):
    /// `Ok(None)` when absent, `Ok(Some(None))` when disabled.
    pub(crate) fn duration_or_disabled(
        &self,
        name: &'static str,
    ) -> Result<Option<Option<Duration>>, ConfigError> {
        Ok(self
            .signed_duration(name)?
            .map(SignedDuration::non_negative))
    }

    pub(crate) fn string_list(
        &self,
        name: &'static str,
    ) -> Result<Option<Vec<String>>, ConfigError> {
        const EXPECTED: &str = "a list of strings";
        match self.value(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.wrong_type(name, EXPECTED, other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.wrong_type(name, EXPECTED, other)),
        }
    }

    /// A nested table, e.g. `client` inside `[kafka]`.
    pub(crate) fn table(&self, name: &'static str) -> Result<Option<Section<'a>>, ConfigError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::Table(t)) => Section::new(t, self.key_path(name)).map(Some),
            Some(other) => Err(self.wrong_type(name, "a table", other)),
        }
    }

    /// A table of named tables, e.g. `producers` with `p1`, `p2`; names keep their case.
    pub(crate) fn named_tables(
        &self,
        name: &'static str,
    ) -> Result<Vec<(String, Section<'a>)>, ConfigError> {
        let Some(parent) = self.table(name)? else {
            return Ok(Vec::new());
        };
        let mut named = Vec::with_capacity(parent.entries.len());
        for entry in &parent.entries {
            entry.used.set(true);
            let path = join_path(&parent.path, entry.key);
            match entry.value {
                Value::Table(t) => named.push((entry.key.to_string(), Section::new(t, path)?)),
                other => {
                    return Err(ConfigError::new(
                        path,
                        ConfigProblem::WrongType {
                            expected: "a table",
                            found: describe(other),
                        },
                    ))
                }
            }
        }
        Ok(named)
    }

    /// A table of raw properties (`librdkafka = { "linger.ms" = 5 }`), values made text.
    pub(crate) fn properties(
        &self,
        name: &'static str,
    ) -> Result<Vec<(String, String)>, ConfigError> {
        let Some(table) = self.table(name)? else {
            return Ok(Vec::new());
        };
        let mut pairs = Vec::with_capacity(table.entries.len());
        for entry in &table.entries {
            entry.used.set(true);
            let text = match entry.value {
                Value::String(s) => s.clone(),
                Value::Integer(i) => i.to_string(),
                Value::Float(f) => f.to_string(),
                Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(ConfigError::new(
                        join_path(&table.path, entry.key),
                        ConfigProblem::WrongType {
                            expected: "a string, number or boolean librdkafka property value",
                            found: describe(other),
                        },
                    ))
                }
            };
            // librdkafka property names are case-sensitive and dotted: keep them verbatim.
            pairs.push((entry.key.to_string(), text));
        }
        Ok(pairs)
    }

    /// Fails on the first key nobody asked for, suggesting the closest known key.
    pub(crate) fn finish(self) -> Result<(), ConfigError> {
        let asked_for = self.asked_for.borrow();
        match self.entries.iter().find(|e| !e.used.get()) {
            None => Ok(()),
            Some(unknown) => Err(ConfigError::new(
                join_path(&self.path, unknown.key),
                ConfigProblem::UnknownKey {
                    suggestion: closest(&unknown.normalized, &asked_for).map(str::to_string),
                },
            )),
        }
    }
}

/// The known key closest to `typed` by edit distance, when close enough to be a typo.
fn closest<'k>(typed: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(typed, &normalize_key(k)), *k))
        .filter(|(distance, k)| *distance <= (k.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// A value as the user wrote it in TOML, for error messages.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Table(_) => "a table".to_string(),
        Value::Array(items) if items.len() > 8 => format!("a list of {} items", items.len()),
        other => other.to_string(),
    }
}

/// Test-only: every key any section asked for on this thread, by table, so
/// the README's config tables can be checked against what is really read.
#[cfg(test)]
pub(crate) mod asked {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    thread_local! {
        static ASKED: RefCell<BTreeSet<(String, String)>> = RefCell::default();
    }

    /// Records `name` as asked for in the table at `path`, its client name
    /// (`kafka.producers.p1`) written as `NAME`.
    pub(crate) fn note(path: &str, name: &str) {
        let parts: Vec<&str> = path.split('.').collect();
        let table = match parts.as_slice() {
            ["kafka", kind, _] if *kind != "librdkafka" => format!("kafka.{kind}.NAME"),
            [servers, _] if *servers == "kafkaConsumerServers" => format!("{servers}.NAME"),
            _ => path.to_string(),
        };
        ASKED.with(|asked| asked.borrow_mut().insert((table, name.to_string())));
    }

    /// What was recorded, and forgets it.
    pub(crate) fn take() -> BTreeSet<(String, String)> {
        ASKED.with(|asked| std::mem::take(&mut *asked.borrow_mut()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_across_case_and_underscores() {
        assert_eq!(
            normalize_key("JoinGroupBackoff"),
            normalize_key("join_group_backoff")
        );
        assert_eq!(normalize_key("groupID"), normalize_key("group_id"));
    }

    #[test]
    fn suggests_the_nearest_key() {
        assert_eq!(
            closest("batchtimeot", &["batchTimeout", "batchSize"]),
            Some("batchTimeout")
        );
        assert_eq!(closest("zzzzzz", &["topic"]), None);
    }
}
