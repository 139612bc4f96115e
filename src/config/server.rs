//! `[kafkaConsumerServers.NAME]`: which consumer a consumer server drives.

use super::error::{ConfigError, ConfigProblem};
use super::reader::Section;

/// One consumer server: `[kafkaConsumerServers.NAME]`, a section of its own beside
/// `[kafka]`, as in the Go guide.
///
/// ```
/// let server = ekafka::config::ConsumerServerConfig::from_toml_str(
///     "[kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\n",
///     "kafkaConsumerServers.s1",
/// )?;
/// assert_eq!(server.consumer_group_name.as_deref(), Some("cg1"));
/// # Ok::<(), ekafka::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerServerConfig {
    /// The section's path, e.g. `kafkaConsumerServers.s1`.
    pub section: String,
    /// `debug` (false): print every message handled.
    pub debug: bool,
    /// `consumerName`: a `[kafka.consumers.NAME]` to drive.
    pub consumer_name: Option<String>,
    /// `consumerGroupName`: a `[kafka.consumerGroups.NAME]` to drive.
    pub consumer_group_name: Option<String>,
}

impl ConsumerServerConfig {
    pub(crate) fn read(section: &Section<'_>) -> Result<Self, ConfigError> {
        let config = ConsumerServerConfig {
            section: section.path().to_string(),
            debug: section.bool("debug")?.unwrap_or(false),
            consumer_name: section.string("consumerName")?.filter(|n| !n.is_empty()),
            consumer_group_name: section
                .string("consumerGroupName")?
                .filter(|n| !n.is_empty()),
        };
        if config.consumer_name.is_none() && config.consumer_group_name.is_none() {
            return Err(ConfigError::new(
                section.key_path("consumerGroupName"),
                ConfigProblem::Missing,
            ));
        }
        Ok(config)
    }
}
