//! The kinds of field a settings struct declares: one key with a default, a
//! required or optional key, and groups of keys (the same table, a nested
//! table, a group present only when its leading key is).

use std::marker::PhantomData;

use super::super::error::ConfigError;
use super::super::properties::Properties;
use super::super::reader::Section;
use super::value::{Integer, PropertyText, Value};
#[cfg(test)]
use super::{Doc, Row};
use super::{Field, Settings};

/// What a key's value is when it is not written.
enum Fallback {
    /// A TOML value, read like one the user wrote.
    Literal(&'static str),
    /// There is none: the key must be written.
    Required,
}

/// A rule a value must satisfy, and how the error says it.
struct Check<T> {
    holds: Box<dyn Fn(&T) -> bool>,
    expected: String,
}

/// The librdkafka property a key sets: by itself (`text`), or through its
/// struct's [`Rules`](super::Rules) when it needs other keys too.
struct Property<T> {
    name: &'static str,
    text: Option<fn(&T) -> String>,
}

/// One key holding a `T`.
pub(crate) struct Key<T> {
    name: &'static str,
    fallback: Fallback,
    check: Option<Check<T>>,
    /// For integers: the values allowed, checked as they are read.
    range: Option<(i64, i64)>,
    property: Option<Property<T>>,
    /// The README's default column, when the TOML value alone does not say it.
    #[cfg_attr(not(test), allow(dead_code))]
    shown: Option<&'static str>,
}

/// A key with a default, written as a TOML value (`"1s"` is `"\"1s\""`).
pub(crate) fn key<T>(name: &'static str, default: &'static str) -> Key<T> {
    Key {
        name,
        fallback: Fallback::Literal(default),
        check: None,
        range: None,
        property: None,
        shown: None,
    }
}

/// A key that must be written (a blank string counts as not written).
pub(crate) fn required<T>(name: &'static str) -> Key<T> {
    Key {
        fallback: Fallback::Required,
        ..key(name, "")
    }
}

impl<T: Value> Key<T> {
    /// Values outside `rule` are refused, the error saying `expected`.
    pub(crate) fn check(mut self, rule: impl Fn(&T) -> bool + 'static, expected: &str) -> Self {
        self.check = Some(Check {
            holds: Box::new(rule),
            expected: expected.to_string(),
        });
        self
    }

    /// Sets librdkafka's `property` to the value's text.
    pub(crate) fn property(mut self, property: &'static str) -> Self
    where
        T: PropertyText,
    {
        self.property = Some(Property {
            name: property,
            text: Some(T::property_text),
        });
        self
    }

    /// Sets librdkafka's `property` to `text` of the value.
    pub(crate) fn property_with(mut self, property: &'static str, text: fn(&T) -> String) -> Self {
        self.property = Some(Property {
            name: property,
            text: Some(text),
        });
        self
    }

    /// Names the librdkafka `property` the struct's rules set from this key
    /// (with others); a test holds the rules to it.
    pub(crate) fn sets(mut self, property: &'static str) -> Self {
        self.property = Some(Property {
            name: property,
            text: None,
        });
        self
    }

    /// The README's default column, instead of the TOML value.
    pub(crate) fn shown(mut self, text: &'static str) -> Self {
        self.shown = Some(text);
        self
    }

    fn checked(&self, section: &Section<'_>, value: T) -> Result<T, ConfigError> {
        match &self.check {
            Some(check) if !(check.holds)(&value) => {
                let raw = section.value(self.name).expect("present: just read");
                Err(section.invalid(self.name, raw, check.expected.clone()))
            }
            _ => Ok(value),
        }
    }

    fn written(&self, section: &Section<'_>) -> Result<Option<T>, ConfigError> {
        match T::read_in(section, self.name, self.range)?.filter(|v| !v.is_blank()) {
            Some(value) => self.checked(section, value).map(Some),
            None => Ok(None),
        }
    }
}

impl<T: Integer> Key<T> {
    /// Values outside `min..=max` are refused.
    pub(crate) fn range(mut self, min: i64, max: i64) -> Self {
        self.range = Some((min, max));
        self
    }
}

impl Key<std::time::Duration> {
    /// A zero duration is refused.
    pub(crate) fn above_zero(self) -> Self {
        self.check(|d| !d.is_zero(), "a duration above zero")
    }
}

/// Reads a default written as a TOML value, as if the user had written it.
fn literal<T: Value>(name: &'static str, literal: &'static str) -> T {
    let text = format!("{name} = {literal}");
    let table: toml::Table = text.parse().expect("a default is valid TOML");
    let section = Section::new(&table, "").expect("one key");
    T::read(&section, name)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("the default of {name}, {literal}, reads as its type"))
}

impl<T: Value> Field<T> for Key<T> {
    fn read(&self, section: &Section<'_>) -> Result<T, ConfigError> {
        match (self.written(section)?, &self.fallback) {
            (Some(value), _) => Ok(value),
            (None, Fallback::Literal(default)) => Ok(literal(self.name, default)),
            (None, Fallback::Required) => Err(section.missing(self.name)),
        }
    }

    fn keys(&self, keys: &mut Vec<&'static str>) {
        keys.push(self.name);
    }

    fn default_value(&self) -> Option<T> {
        match self.fallback {
            Fallback::Literal(default) => Some(literal(self.name, default)),
            Fallback::Required => None,
        }
    }

    fn set_properties(&self, value: &T, props: &mut Properties) {
        if let Some(Property {
            name,
            text: Some(text),
        }) = &self.property
        {
            props.set(*name, text(value));
        }
    }

    #[cfg(test)]
    fn describe(&self, doc: Doc, rows: &mut Vec<Row>) {
        let (default, literal) = match self.fallback {
            Fallback::Literal(literal) => (format!("`{literal}`"), Some(literal.to_string())),
            Fallback::Required => ("required".to_string(), None),
        };
        rows.push(Row::new(
            self.name,
            self.shown.map_or(default, str::to_string),
            literal,
            self.property.as_ref().map(|p| p.name),
            doc,
        ));
    }
}

/// A key that may be left out: `None` then.
pub(crate) struct OptionalKey<T> {
    key: Key<T>,
    /// What leaving it out does, as a TOML value (for the README and its test).
    #[cfg_attr(not(test), allow(dead_code))]
    behaves_like: Option<&'static str>,
}

/// A key that may be left out (a blank string counts as left out).
pub(crate) fn optional<T>(name: &'static str) -> OptionalKey<T> {
    OptionalKey {
        key: Key {
            shown: Some("none"),
            ..key(name, "")
        },
        behaves_like: None,
    }
}

impl<T: Value> OptionalKey<T> {
    /// See [`Key::shown`].
    pub(crate) fn shown(self, text: &'static str) -> Self {
        OptionalKey {
            key: self.key.shown(text),
            ..self
        }
    }

    /// See [`Key::sets`].
    pub(crate) fn sets(self, property: &'static str) -> Self {
        OptionalKey {
            key: self.key.sets(property),
            ..self
        }
    }

    /// Leaving the key out works as `literal` would (a default applied
    /// elsewhere, as restart keys take the component's policy).
    pub(crate) fn behaves_like(self, literal: &'static str) -> Self {
        OptionalKey {
            behaves_like: Some(literal),
            ..self.shown(literal)
        }
    }
}

impl<T: Integer> OptionalKey<T> {
    /// See [`Key::range`].
    pub(crate) fn range(self, min: i64, max: i64) -> Self {
        OptionalKey {
            key: self.key.range(min, max),
            ..self
        }
    }
}

impl OptionalKey<std::time::Duration> {
    /// See [`Key::above_zero`].
    pub(crate) fn above_zero(self) -> Self {
        OptionalKey {
            key: self.key.above_zero(),
            ..self
        }
    }
}

impl<T: Value> Field<Option<T>> for OptionalKey<T> {
    fn read(&self, section: &Section<'_>) -> Result<Option<T>, ConfigError> {
        self.key.written(section)
    }

    fn keys(&self, keys: &mut Vec<&'static str>) {
        keys.push(self.key.name);
    }

    fn default_value(&self) -> Option<Option<T>> {
        Some(None)
    }

    fn set_properties(&self, value: &Option<T>, props: &mut Properties) {
        if let Some(value) = value {
            self.key.set_properties(value, props);
        }
    }

    #[cfg(test)]
    fn describe(&self, doc: Doc, rows: &mut Vec<Row>) {
        let shown = self.key.shown.unwrap_or("none");
        let shown = match self.behaves_like {
            Some(literal) if shown == literal => format!("`{literal}`"),
            _ => shown.to_string(),
        };
        rows.push(Row::new(
            self.key.name,
            shown,
            self.behaves_like.map(str::to_string),
            self.key.property.as_ref().map(|p| p.name),
            doc,
        ));
    }
}

/// The keys of settings struct `S`, in the same table.
pub(crate) struct Flatten<S>(PhantomData<S>);

/// The keys of a settings struct, in the same table.
pub(crate) fn flatten<S>() -> Flatten<S> {
    Flatten(PhantomData)
}

impl<S: Settings> Field<S> for Flatten<S> {
    fn read(&self, section: &Section<'_>) -> Result<S, ConfigError> {
        S::read(section)
    }

    fn keys(&self, keys: &mut Vec<&'static str>) {
        S::keys(keys);
    }

    fn default_value(&self) -> Option<S> {
        S::defaults()
    }

    fn set_properties(&self, value: &S, props: &mut Properties) {
        value.set_properties(props);
    }

    #[cfg(test)]
    fn describe(&self, _doc: Doc, rows: &mut Vec<Row>) {
        S::describe(rows);
    }
}

/// The keys of settings struct `S`, in a nested table of their own.
pub(crate) struct Nested<S> {
    name: &'static str,
    settings: PhantomData<S>,
}

/// The keys of a settings struct, in nested table `name` (`[kafka.client]`);
/// the struct's defaults when the table is absent.
pub(crate) fn nested<S>(name: &'static str) -> Nested<S> {
    Nested {
        name,
        settings: PhantomData,
    }
}

impl<S: Settings> Field<S> for Nested<S> {
    fn read(&self, section: &Section<'_>) -> Result<S, ConfigError> {
        let Some(table) = section.table(self.name)? else {
            return S::defaults().ok_or_else(|| section.missing(self.name));
        };
        let settings = S::read(&table)?;
        table.finish()?;
        Ok(settings)
    }

    fn keys(&self, keys: &mut Vec<&'static str>) {
        keys.push(self.name);
    }

    fn default_value(&self) -> Option<S> {
        S::defaults()
    }

    fn set_properties(&self, value: &S, props: &mut Properties) {
        value.set_properties(props);
    }

    #[cfg(test)]
    fn describe(&self, _doc: Doc, rows: &mut Vec<Row>) {
        let mut nested = Vec::new();
        S::describe(&mut nested);
        rows.extend(nested.into_iter().map(|row| row.inside(self.name)));
    }
}

/// The keys of settings struct `S`, in the same table, present only when
/// its leading key is (the dead-letter keys, led by `deadLetterProducer`).
pub(crate) struct LedBy<S> {
    lead: &'static str,
    settings: PhantomData<S>,
}

/// Settings present when key `lead` is written; writing one of the others
/// without it is an error naming `lead` as missing.
pub(crate) fn led_by<S>(lead: &'static str) -> LedBy<S> {
    LedBy {
        lead,
        settings: PhantomData,
    }
}

impl<S: Settings> Field<Option<S>> for LedBy<S> {
    fn read(&self, section: &Section<'_>) -> Result<Option<S>, ConfigError> {
        let lead = section
            .value(self.lead)
            .filter(|v| !matches!(v.as_str(), Some(s) if s.trim().is_empty()));
        if lead.is_some() {
            return S::read(section).map(Some);
        }
        // Read them all, so each is checked and marked understood.
        let mut probe = Vec::new();
        S::keys(&mut probe);
        if probe.iter().any(|key| section.value(key).is_some()) {
            return Err(section.missing(self.lead));
        }
        Ok(None)
    }

    fn keys(&self, keys: &mut Vec<&'static str>) {
        S::keys(keys);
    }

    fn default_value(&self) -> Option<Option<S>> {
        Some(None)
    }

    fn set_properties(&self, value: &Option<S>, props: &mut Properties) {
        if let Some(value) = value {
            value.set_properties(props);
        }
    }

    #[cfg(test)]
    fn describe(&self, _doc: Doc, rows: &mut Vec<Row>) {
        S::describe(rows);
    }
}
