//! Configuration: the Go guide's TOML, read into validated types.
//!
//! Every TOML block of the Go guide parses as written. Keys match whatever their
//! case or separators (`groupID`, `groupId`, `group_id`); durations are Go duration
//! strings (`"3s"`, `"100ms"`, `"1m30s"`); `startOffset` is a number or a string.
//! Bad input is a [`ConfigError`] naming the key path and the value, never a panic;
//! an unknown key is an error that suggests the closest valid key.
//!
//! How each key becomes a librdkafka property is in [`librdkafka`].

mod admin;
mod consumer;
mod duration;
mod error;
mod kafka;
mod key;
#[cfg(test)]
mod keys;
pub mod librdkafka;
mod observability;
mod producer;
mod properties;
mod reader;
mod restart;
mod sasl;
mod secret;
mod server;
mod tls;
mod topic_name;

use std::path::Path;

pub use admin::AdminSettings;
pub(crate) use consumer::prefetch_properties;
pub use consumer::{
    ConsumerAssignment, ConsumerConfig, ConsumerGroupConfig, FetchSettings, FlowSettings,
    GroupBalancer, GroupProtocol, GroupSettings, IsolationLevel, StartOffset,
};
pub use error::{ConfigError, ConfigProblem};
pub use kafka::{ClientSettings, Config, InterceptorSwitches};
pub use observability::ObservabilitySettings;
pub(crate) use producer::native_partitioner;
pub use producer::{
    Compression, ProducerConfig, RequiredAcks, BALANCER_HASH, BALANCER_MURMUR2,
    BALANCER_ROUND_ROBIN,
};
pub use properties::Properties;
pub use restart::{RestartPolicy, RestartSettings};
pub use sasl::{Sasl, SaslMechanism};
pub use secret::Secret;
pub use server::{
    Batching, Concurrency, ConsumerServerConfig, DeadLetter, OrderBy, PartitionPastLimit,
    RetryDelay, RetrySettings, RetryTopics,
};
pub use tls::Tls;
pub use topic_name::topic_name_problem;

use reader::{normalize_key, Section};

/// The path of the table a settings struct is read from, kept for error
/// messages: a field of its own, with no key.
struct SectionPath;

impl key::Field<String> for SectionPath {
    fn read(&self, section: &Section<'_>) -> Result<String, ConfigError> {
        Ok(section.path().to_string())
    }

    fn default_value(&self) -> Option<String> {
        None
    }

    fn set_properties(&self, _value: &String, _props: &mut Properties) {}

    fn keys(&self, _keys: &mut Vec<&'static str>) {}

    #[cfg(test)]
    fn describe(&self, _doc: key::Doc, _rows: &mut Vec<key::Row>) {}
}

macro_rules! loaders {
    ($ty:ty, $what:literal) => {
        impl $ty {
            #[doc = concat!("Reads ", $what, " from the TOML file at `path`, section `section` (dotted, e.g. `\"kafka\"`).")]
            pub fn from_file(path: impl AsRef<Path>, section: &str) -> Result<Self, ConfigError> {
                let path = path.as_ref();
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new(
                        path.display().to_string(),
                        ConfigProblem::Unreadable { reason: e.to_string() },
                    )
                })?;
                Self::from_toml_str(&text, section)
            }

            #[doc = concat!("Reads ", $what, " from TOML text, section `section`.")]
            pub fn from_toml_str(text: &str, section: &str) -> Result<Self, ConfigError> {
                let root: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                    ConfigError::new(
                        section,
                        ConfigProblem::Unreadable {
                            reason: e.to_string().trim_end().to_string(),
                        },
                    )
                })?;
                Self::from_table(&root, section)
            }

            #[doc = concat!("Reads ", $what, " from an already parsed TOML table, section `section`.")]
            pub fn from_table(root: &toml::Table, section: &str) -> Result<Self, ConfigError> {
                load_section(root, section)
            }
        }
    };
}

loaders!(Config, "the `[kafka]`-style section");
loaders!(
    ConsumerServerConfig,
    "a `[kafkaConsumerServers.NAME]` section"
);

fn load_section<T: key::Settings>(
    root: &toml::Table,
    section_path: &str,
) -> Result<T, ConfigError> {
    let mut table = root;
    let mut walked = String::new();
    for part in section_path.split('.') {
        walked = reader::join_path(&walked, part);
        let wanted = normalize_key(part);
        let found = table.get(part).or_else(|| {
            table
                .iter()
                .find(|(k, _)| normalize_key(k) == wanted)
                .map(|(_, v)| v)
        });
        table = match found {
            Some(toml::Value::Table(t)) => t,
            Some(other) => {
                return Err(ConfigError::new(
                    walked,
                    ConfigProblem::WrongType {
                        expected: "a table",
                        found: reader::describe(other),
                    },
                ))
            }
            None => return Err(ConfigError::new(walked, ConfigProblem::Missing)),
        };
    }
    let section = Section::new(table, section_path)?;
    let value = T::read(&section)?;
    section.finish()?;
    Ok(value)
}
