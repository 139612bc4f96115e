//! How a key's value is read from TOML, and written as a librdkafka property.

use std::time::Duration;

use super::super::error::ConfigError;
use super::super::properties::Properties;
use super::super::reader::Section;

/// A type a config key can hold.
pub(crate) trait Value: Sized {
    /// Reads key `name` of `section`; `None` when it is absent.
    fn read(section: &Section<'_>, name: &'static str) -> Result<Option<Self>, ConfigError>;

    /// Reads key `name`, an integer type refusing values outside `range`
    /// (the key's own, else the type's) in one error naming the range.
    fn read_in(
        section: &Section<'_>,
        name: &'static str,
        _range: Option<(i64, i64)>,
    ) -> Result<Option<Self>, ConfigError> {
        Self::read(section, name)
    }

    /// True for a value that means "not set": `topic = ""` is no topic.
    fn is_blank(&self) -> bool {
        false
    }
}

/// A value with one obvious librdkafka property text.
pub(crate) trait PropertyText {
    fn property_text(&self) -> String;
}

/// An integer value, read within a range.
pub(crate) trait Integer: Value + Copy {}

impl Value for bool {
    fn read(section: &Section<'_>, name: &'static str) -> Result<Option<Self>, ConfigError> {
        section.bool(name)
    }
}

impl PropertyText for bool {
    fn property_text(&self) -> String {
        self.to_string()
    }
}

macro_rules! unsigned {
    ($($ty:ty),*) => {$(
        impl Value for $ty {
            fn read(section: &Section<'_>, name: &'static str) -> Result<Option<Self>, ConfigError> {
                Self::read_in(section, name, None)
            }

            fn read_in(
                section: &Section<'_>,
                name: &'static str,
                range: Option<(i64, i64)>,
            ) -> Result<Option<Self>, ConfigError> {
                let whole = (0, i64::try_from(<$ty>::MAX).unwrap_or(i64::MAX));
                let (min, max) = range.unwrap_or(whole);
                // A key's range lies within its type's, so the conversion
                // cannot fail once the value is in range.
                Ok(section
                    .integer_in(name, min.max(whole.0), max.min(whole.1))?
                    .and_then(|v| <$ty>::try_from(v).ok()))
            }
        }

        impl Integer for $ty {}

        impl PropertyText for $ty {
            fn property_text(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

unsigned!(u32, usize);

impl Value for String {
    fn read(section: &Section<'_>, name: &'static str) -> Result<Option<Self>, ConfigError> {
        section.string(name)
    }

    fn is_blank(&self) -> bool {
        self.trim().is_empty()
    }
}

impl PropertyText for String {
    fn property_text(&self) -> String {
        self.clone()
    }
}

impl Value for Vec<String> {
    fn read(section: &Section<'_>, name: &'static str) -> Result<Option<Self>, ConfigError> {
        section.string_list(name)
    }
}

/// A duration that must not be negative, written in milliseconds.
impl Value for Duration {
    fn read(section: &Section<'_>, name: &'static str) -> Result<Option<Self>, ConfigError> {
        section.duration(name)
    }
}

impl PropertyText for Duration {
    fn property_text(&self) -> String {
        self.as_millis().to_string()
    }
}

/// A duration where a negative value means "disabled" (the Go convention): `None`.
impl Value for Option<Duration> {
    fn read(section: &Section<'_>, name: &'static str) -> Result<Option<Self>, ConfigError> {
        section.duration_or_disabled(name)
    }
}

/// A table of raw librdkafka properties, kept verbatim.
impl Value for Properties {
    fn read(section: &Section<'_>, name: &'static str) -> Result<Option<Self>, ConfigError> {
        Ok(Some(section.properties(name)?.into_iter().collect()))
    }
}
