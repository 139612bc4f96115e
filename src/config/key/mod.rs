//! Config keys declared once. A settings struct lists its fields with the key
//! each reads, its default (as a TOML value), its checks and the librdkafka
//! property it sets; the [`settings!`] macro makes from that one declaration
//! the struct (each field's doc opening with its key and default), its
//! `Default`, its reader, its librdkafka mapping and (in tests) the rows of
//! the README's config tables. Rules that span keys (order checks, keys that
//! exclude each other, properties set from several keys) are the struct's
//! [`Rules`], next to it.
//!
//! Adding a key is adding one field to one struct; a key that fits no kind
//! here is a [`Field`] written by hand in the file of the struct that has it.

mod spec;
mod value;

pub(crate) use spec::{flatten, key, led_by, nested, optional, required};
pub(crate) use value::{PropertyText, Value};

use super::error::ConfigError;
use super::properties::Properties;
use super::reader::Section;

/// One field of a settings struct: how it is read, its default, the
/// properties it sets.
pub(crate) trait Field<T> {
    /// The field's value in `section`.
    fn read(&self, section: &Section<'_>) -> Result<T, ConfigError>;

    /// The value when nothing is written; `None` when a key is required.
    fn default_value(&self) -> Option<T>;

    /// Sets the librdkafka properties the field maps to by itself.
    fn set_properties(&self, value: &T, props: &mut Properties);

    /// The keys the field reads.
    fn keys(&self, keys: &mut Vec<&'static str>);

    /// The README rows of the field; `doc` is its doc comment, by line.
    #[cfg(test)]
    fn describe(&self, doc: Doc, rows: &mut Vec<Row>);
}

/// A field written by hand: a kind of its own, described in its file.
pub(crate) fn custom<F>(field: F) -> F {
    field
}

/// What [`settings!`] makes of a settings struct.
pub(crate) trait Settings: Sized + Rules {
    /// Reads every field, then checks the struct's [`Rules`].
    fn read(section: &Section<'_>) -> Result<Self, ConfigError>;

    /// Every field's default; `None` when a key is required.
    fn defaults() -> Option<Self>;

    /// Sets the properties of every field, then the struct's derived ones.
    fn set_properties(&self, props: &mut Properties);

    /// Every key the struct reads.
    fn keys(keys: &mut Vec<&'static str>);

    /// The README rows of every field.
    #[cfg(test)]
    fn describe(rows: &mut Vec<Row>);
}

/// What spans a struct's keys.
pub(crate) trait Rules {
    /// Refuses values that are wrong together (`heartbeatInterval` no
    /// shorter than `sessionTimeout`), naming a key the user wrote.
    fn check(&self, _section: &Section<'_>) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Sets the properties that come from several keys, or that depend on
    /// another key (`acks` with `maxAttempts` decides idempotence).
    fn derive_properties(&self, _props: &mut Properties) {}
}

/// A field's doc comment, by line.
#[cfg(test)]
pub(crate) type Doc = &'static [&'static str];

/// One row of a README config table.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// The key; `x.y` is key `y` of nested table `x`.
    pub(crate) key: String,
    /// The default column.
    pub(crate) default: String,
    /// The default as a TOML value, when there is one to write.
    pub(crate) literal: Option<String>,
    /// The librdkafka property the key sets, if any.
    pub(crate) property: Option<&'static str>,
    /// What the key does.
    pub(crate) meaning: String,
}

#[cfg(test)]
impl Row {
    pub(crate) fn new(
        key: &str,
        default: String,
        literal: Option<String>,
        property: Option<&'static str>,
        doc: Doc,
    ) -> Row {
        let meaning: Vec<&str> = doc
            .iter()
            .map(|line| line.trim())
            .filter(|line| !line.is_empty())
            .collect();
        Row {
            key: key.to_string(),
            default,
            literal,
            property,
            // A doc comment's closing period is no table cell's.
            meaning: meaning.join(" ").trim_end_matches('.').to_string(),
        }
    }

    /// The row as a key of nested table `table`.
    pub(crate) fn inside(self, table: &str) -> Row {
        Row {
            key: format!("{table}.{}", self.key),
            ..self
        }
    }
}

/// The first doc line of a field: its key and default.
macro_rules! key_doc {
    (key($name:literal, $default:literal)) => {
        concat!("`", $name, "`, default `", $default, "`:")
    };
    (required($name:literal)) => {
        concat!("`", $name, "`, required:")
    };
    (optional($name:literal)) => {
        concat!("`", $name, "`, optional:")
    };
    ($kind:ident($($arg:tt)*)) => {
        ""
    };
}
pub(crate) use key_doc;

/// Declares a settings struct: each field with the key it reads and how
/// (see the module doc). `with Default` also implements `Default` from the
/// keys' defaults.
macro_rules! settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident $(with $default:ident)? {
            $(
                $(#[doc = $doc:literal])*
                pub $field:ident: $ty:ty = $kind:ident($($arg:tt)*) $(.$method:ident($($marg:tt)*))*,
            )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $(
                #[doc = $crate::config::key::key_doc!($kind($($arg)*))]
                $(#[doc = $doc])*
                pub $field: $ty,
            )*
        }

        impl $name {
            $(
                fn $field() -> impl $crate::config::key::Field<$ty> {
                    $crate::config::key::$kind($($arg)*) $(.$method($($marg)*))*
                }
            )*
        }

        impl $crate::config::key::Settings for $name {
            fn read(
                section: &$crate::config::reader::Section<'_>,
            ) -> Result<Self, $crate::config::ConfigError> {
                use $crate::config::key::Field as _;
                let value = $name {
                    $( $field: Self::$field().read(section)?, )*
                };
                $crate::config::key::Rules::check(&value, section)?;
                Ok(value)
            }

            fn defaults() -> Option<Self> {
                use $crate::config::key::Field as _;
                Some($name {
                    $( $field: Self::$field().default_value()?, )*
                })
            }

            fn set_properties(&self, props: &mut $crate::config::Properties) {
                use $crate::config::key::Field as _;
                $( Self::$field().set_properties(&self.$field, props); )*
                $crate::config::key::Rules::derive_properties(self, props);
            }

            fn keys(keys: &mut Vec<&'static str>) {
                use $crate::config::key::Field as _;
                $( Self::$field().keys(keys); )*
            }

            #[cfg(test)]
            fn describe(rows: &mut Vec<$crate::config::key::Row>) {
                use $crate::config::key::Field as _;
                $( Self::$field().describe(&[$($doc),*], rows); )*
            }
        }

        $(
            impl $default for $name {
                fn default() -> Self {
                    <Self as $crate::config::key::Settings>::defaults()
                        .expect("every key of a struct `with Default` has a default")
                }
            }
        )?
    };
}
pub(crate) use settings;
