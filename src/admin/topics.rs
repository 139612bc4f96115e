//! Topics and the cluster: create, delete, describe, configs.

use std::collections::BTreeMap;

use rdkafka::admin::{AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::Consumer as _;
use rdkafka::types::RDKafkaErrorCode;

use super::{failed, ffi_failed, kafka_failed, Admin, Shared};
use crate::error::Error;
use crate::native::admin as ffi;

/// A topic to create: its name, partitions, replication factor and configs.
///
/// ```
/// let spec = ekafka::admin::TopicSpec::new("orders", 6)
///     .replication(3)
///     .config("cleanup.policy", "compact");
/// assert_eq!(spec.partitions, 6);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicSpec {
    /// The topic's name.
    pub name: String,
    /// How many partitions.
    pub partitions: i32,
    /// Copies of each partition; `-1` (the default) for the broker's
    /// `default.replication.factor`.
    pub replication: i32,
    /// Topic configs (`retention.ms`, `cleanup.policy`, ...).
    pub configs: BTreeMap<String, String>,
}

impl TopicSpec {
    /// A topic of `partitions` partitions, the broker's replication factor
    /// and default configs.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        TopicSpec {
            name: name.into(),
            partitions,
            replication: -1,
            configs: BTreeMap::new(),
        }
    }

    /// Sets the replication factor.
    #[must_use]
    pub fn replication(mut self, replication: i32) -> Self {
        self.replication = replication;
        self
    }

    /// Sets one topic config.
    #[must_use]
    pub fn config(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(name.into(), value.into());
        self
    }
}

/// A topic as the cluster describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicDescription {
    /// The topic's name.
    pub name: String,
    /// Its partitions, by id.
    pub partitions: Vec<PartitionDescription>,
}

/// One partition of a topic: its leader and replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionDescription {
    /// The partition's id.
    pub id: i32,
    /// The broker leading it (`-1` while it has no leader).
    pub leader: i32,
    /// The brokers holding a copy.
    pub replicas: Vec<i32>,
    /// The replicas in sync with the leader.
    pub in_sync: Vec<i32>,
}

/// The cluster: its id, its controller and its brokers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterDescription {
    /// The cluster id, when the brokers report one.
    pub id: Option<String>,
    /// The controller's broker id, when known.
    pub controller: Option<i32>,
    /// The brokers, by id.
    pub brokers: Vec<BrokerDescription>,
}

/// One broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerDescription {
    /// Its node id.
    pub id: i32,
    /// The host it advertises.
    pub host: String,
    /// The port it advertises.
    pub port: u16,
    /// Its rack, when configured.
    pub rack: Option<String>,
}

impl Admin {
    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.shared.timeout))
            .operation_timeout(Some(self.shared.timeout))
    }

    /// Creates a topic. A topic that exists already is an [`Error::Admin`]
    /// with code `TopicAlreadyExists`.
    pub async fn create_topic(&self, topic: TopicSpec) -> Result<(), Error> {
        self.create_topics([topic]).await
    }

    /// Creates topics; fails with the first topic the cluster refused
    /// (the others may have been created: Kafka creates each on its own).
    pub async fn create_topics(
        &self,
        topics: impl IntoIterator<Item = TopicSpec>,
    ) -> Result<(), Error> {
        let specs: Vec<TopicSpec> = topics.into_iter().collect();
        let new_topics: Vec<NewTopic<'_>> = specs
            .iter()
            .map(|spec| {
                spec.configs.iter().fold(
                    NewTopic::new(
                        &spec.name,
                        spec.partitions,
                        TopicReplication::Fixed(spec.replication),
                    ),
                    |topic, (name, value)| topic.set(name, value),
                )
            })
            .collect();
        let names = specs
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let results = self
            .shared
            .client
            .create_topics(&new_topics, &self.options())
            .await
            .map_err(|e| kafka_failed("creating topics", &names, e))?;
        first_refusal("creating topic", results)
    }

    /// Deletes topics; fails with the first the cluster refused (an unknown
    /// topic: [`Error::is_unknown_topic`]).
    pub async fn delete_topics(&self, names: &[&str]) -> Result<(), Error> {
        let results = self
            .shared
            .client
            .delete_topics(names, &self.options())
            .await
            .map_err(|e| kafka_failed("deleting topics", &names.join(", "), e))?;
        first_refusal("deleting topic", results)
    }

    /// A topic's partitions with their leaders and replicas.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription, Error> {
        let name = name.to_string();
        self.blocking(move |shared| topic_description(shared, "describing topic", &name))
            .await
    }

    /// A topic's configs, every one the broker reports (set or default),
    /// by name; sensitive ones the broker hides are left out.
    pub async fn topic_config(&self, name: &str) -> Result<BTreeMap<String, String>, Error> {
        let operation = "reading the configs of topic";
        let results = self
            .shared
            .client
            .describe_configs([&ResourceSpecifier::Topic(name)], &self.options())
            .await
            .map_err(|e| kafka_failed(operation, name, e))?;
        let resource = results
            .into_iter()
            .next()
            .ok_or_else(|| unknown_topic(operation, name))?
            .map_err(|code| failed(operation, name, code, code.to_string()))?;
        Ok(resource
            .entries
            .into_iter()
            .filter_map(|entry| Some((entry.name, entry.value?)))
            .collect())
    }

    /// Sets the topic configs in `changes`, leaving the others as they are.
    pub async fn alter_topic_config<K, V>(
        &self,
        name: &str,
        changes: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), Error>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let name = name.to_string();
        let changes: Vec<(String, String)> = changes
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.blocking(move |shared| {
            shared
                .ffi(|client, wait| ffi::alter_topic_config(client, &name, &changes, wait))
                .map_err(|f| ffi_failed("altering the configs of topic", &name, f))
        })
        .await
    }

    /// The cluster's id, controller and brokers.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription, Error> {
        self.blocking(|shared| {
            let cluster = shared
                .ffi(ffi::describe_cluster)
                .map_err(|f| ffi_failed("describing", "the cluster", f))?;
            let mut brokers: Vec<BrokerDescription> = cluster
                .nodes
                .into_iter()
                .map(|node| BrokerDescription {
                    id: node.id,
                    host: node.host,
                    port: node.port,
                    rack: node.rack,
                })
                .collect();
            brokers.sort_by_key(|b| b.id);
            Ok(ClusterDescription {
                id: cluster.id,
                controller: cluster.controller,
                brokers,
            })
        })
        .await
    }
}

/// The first topic refused in an answer of per-topic results.
fn first_refusal(
    operation: &'static str,
    results: Vec<Result<String, (String, RDKafkaErrorCode)>>,
) -> Result<(), Error> {
    match results.into_iter().find_map(Result::err) {
        Some((topic, code)) => Err(failed(operation, &topic, code, code.to_string())),
        None => Ok(()),
    }
}

/// Topic `name` as the cluster's metadata describes it; `operation` names
/// what it is for in an error.
pub(super) fn topic_description(
    shared: &Shared,
    operation: &'static str,
    name: &str,
) -> Result<TopicDescription, Error> {
    let metadata = shared
        .lookup_retrying(|left| shared.lookup.fetch_metadata(Some(name), left))
        .map_err(|e| ffi_failed(operation, name, e))?;
    let topic = metadata
        .topics()
        .iter()
        .find(|t| t.name() == name)
        .ok_or_else(|| unknown_topic(operation, name))?;
    if let Some(error) = topic.error() {
        let code = RDKafkaErrorCode::from(error);
        return Err(failed(operation, name, code, code.to_string()));
    }
    let mut partitions: Vec<PartitionDescription> = topic
        .partitions()
        .iter()
        .map(|p| PartitionDescription {
            id: p.id(),
            leader: p.leader(),
            replicas: p.replicas().to_vec(),
            in_sync: p.isr().to_vec(),
        })
        .collect();
    partitions.sort_by_key(|p| p.id);
    Ok(TopicDescription {
        name: name.to_string(),
        partitions,
    })
}

fn unknown_topic(operation: &'static str, name: &str) -> Error {
    failed(
        operation,
        name,
        RDKafkaErrorCode::UnknownTopicOrPartition,
        "no such topic".into(),
    )
}
