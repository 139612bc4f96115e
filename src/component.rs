//! The ekafka component: the Go `ekafka.Load("kafka").Build()`, holding the config
//! and starting named clients as actors on first use.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::admin::Admin;
use crate::config::{self, Config, ConfigError, Properties, BALANCER_ROUND_ROBIN};
use crate::consumer::{Consumer, ConsumerGroup, GroupProperties, GroupSpec};
use crate::error::Error;
use crate::interceptor::{
    AccessLogInterceptor, Chain, DebugInterceptor, Interceptor, MetricsInterceptor,
    OperationMetrics,
};
use crate::observe::Metrics;
use crate::producer::{Balancer, BalancerAdapter, Producer, ProducerSpec, RoundRobin, SizeLimit};
use crate::supervision::{Escalation, Escalator, RestartPolicy};

/// Builds an [`Ekafka`] from a config, with the options of the Go `Build(...)`.
///
/// ```
/// use ekafka::Ekafka;
/// let kafka = Ekafka::from_toml_str(
///     "[kafka]\nbrokers = [\"127.0.0.1:9092\"]\n[kafka.producers.p1]\ntopic = \"t\"\n",
///     "kafka",
/// )?
/// .with_brokers(["127.0.0.1:19092"])
/// .with_debug(false)
/// .build()?;
/// assert_eq!(kafka.config().brokers, ["127.0.0.1:19092"]);
/// # Ok::<(), ekafka::Error>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct EkafkaBuilder {
    config: Config,
    interceptors: Vec<Arc<dyn Interceptor>>,
    balancers: HashMap<String, Arc<dyn Balancer>>,
    restart_policy: RestartPolicy,
    debug_interceptor: Option<Arc<DebugInterceptor>>,
}

impl EkafkaBuilder {
    /// Replaces `brokers` (for example with an embedded cluster's).
    pub fn with_brokers<S: Into<String>>(mut self, brokers: impl IntoIterator<Item = S>) -> Self {
        self.config.brokers = brokers.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces `debug`.
    pub fn with_debug(mut self, debug: bool) -> Self {
        self.config.debug = debug;
        self
    }

    /// Sends `debug` output to this interceptor instead of standard error.
    pub fn with_debug_output(mut self, interceptor: DebugInterceptor) -> Self {
        self.debug_interceptor = Some(Arc::new(interceptor));
        self
    }

    /// Adds an interceptor; the first added is the outermost.
    pub fn with_interceptor(mut self, interceptor: impl Interceptor) -> Self {
        self.interceptors.push(Arc::new(interceptor));
        self
    }

    /// Adds an interceptor you keep a handle to.
    pub fn with_shared_interceptor(mut self, interceptor: Arc<dyn Interceptor>) -> Self {
        self.interceptors.push(interceptor);
        self
    }

    /// Registers a balancer that `producers.*.balancer` can name.
    pub fn with_balancer(mut self, name: impl Into<String>, balancer: impl Balancer) -> Self {
        self.balancers.insert(name.into(), Arc::new(balancer));
        self
    }

    /// How failed clients are restarted.
    pub fn with_restart_policy(mut self, policy: RestartPolicy) -> Self {
        self.restart_policy = policy;
        self
    }

    /// Checks the options against the config and builds the component. No client
    /// is started until asked for.
    pub fn build(self) -> Result<Ekafka, Error> {
        let registered: Vec<&str> = self.balancers.keys().map(String::as_str).collect();
        self.config.check(&registered)?;
        let mut layers = self.interceptors;
        let switches = &self.config.interceptors;
        let registry = switches
            .metric
            .then(|| Arc::new(Metrics::new(&self.config.brokers)));
        let metrics = registry
            .as_ref()
            .map(|registry| Arc::new(MetricsInterceptor::recording(Arc::clone(registry))));
        if let Some(metrics) = &metrics {
            layers.push(Arc::clone(metrics) as Arc<dyn Interceptor>);
        }
        let debug_output = self
            .debug_interceptor
            .unwrap_or_else(|| Arc::new(DebugInterceptor::stderr()));
        if self.config.debug {
            layers.push(Arc::clone(&debug_output) as Arc<dyn Interceptor>);
        }
        if switches.access {
            layers.push(Arc::new(AccessLogInterceptor {
                with_request: switches.access_request,
                with_response: switches.access_response,
            }));
        }
        Ok(Ekafka {
            inner: Arc::new(Inner {
                config: self.config,
                interceptors: Chain::new(layers),
                metrics,
                escalator: Escalator::recording(registry.clone()),
                registry,
                balancers: self.balancers,
                restart_policy: self.restart_policy,
                debug_output,
                producers: Mutex::new(HashMap::new()),
                groups: Mutex::new(HashMap::new()),
                consumers: Mutex::new(HashMap::new()),
                admin: Mutex::new(None),
            }),
        })
    }
}

struct Inner {
    config: Config,
    interceptors: Chain,
    metrics: Option<Arc<MetricsInterceptor>>,
    /// The component's Prometheus metrics, while `enableMetricInterceptor` is on.
    registry: Option<Arc<Metrics>>,
    balancers: HashMap<String, Arc<dyn Balancer>>,
    restart_policy: RestartPolicy,
    escalator: Escalator,
    /// Where `debug = true` output goes (clients and consumer servers alike).
    debug_output: Arc<DebugInterceptor>,
    producers: Mutex<HashMap<String, Producer>>,
    groups: Mutex<HashMap<String, ConsumerGroup>>,
    consumers: Mutex<HashMap<String, Consumer>>,
    /// The admin client, made on first use.
    admin: Mutex<Option<Admin>>,
}

/// The ekafka component: a validated config and the clients started from it.
///
/// Clients start on first use and are reused afterwards; once closed, the next
/// call starts a new one. Cheap to clone.
///
/// ```no_run
/// # #[actix::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let kafka = ekafka::Ekafka::from_file("config.toml", "kafka")?.build()?;
/// let producer = kafka.producer("p1")?;
/// producer.write([ekafka::Message::new("hello")]).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Ekafka {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EkafkaBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let interceptors: Vec<&str> = self.interceptors.iter().map(|i| i.name()).collect();
        let balancers: Vec<&String> = self.balancers.keys().collect();
        f.debug_struct("EkafkaBuilder")
            .field("config", &self.config)
            .field("interceptors", &interceptors)
            .field("balancers", &balancers)
            .field("restart_policy", &self.restart_policy)
            .field("debug", &self.debug_interceptor.is_some())
            .finish()
    }
}

impl std::fmt::Debug for Ekafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ekafka")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Ekafka {
    /// Starts building from a loaded config.
    pub fn builder(config: Config) -> EkafkaBuilder {
        EkafkaBuilder {
            config,
            interceptors: Vec::new(),
            balancers: HashMap::new(),
            restart_policy: RestartPolicy::default(),
            debug_interceptor: None,
        }
    }

    /// Loads section `section` of the TOML file at `path`.
    pub fn from_file(path: impl AsRef<Path>, section: &str) -> Result<EkafkaBuilder, ConfigError> {
        Config::from_file(path, section).map(Self::builder)
    }

    /// Loads section `section` of TOML text.
    pub fn from_toml_str(text: &str, section: &str) -> Result<EkafkaBuilder, ConfigError> {
        Config::from_toml_str(text, section).map(Self::builder)
    }

    /// Loads section `section` of a parsed TOML table.
    pub fn from_table(root: &toml::Table, section: &str) -> Result<EkafkaBuilder, ConfigError> {
        Config::from_table(root, section).map(Self::builder)
    }

    /// The config the component was built from.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    fn unknown(
        &self,
        kind: &'static str,
        key: &str,
        name: &str,
        known: impl Iterator<Item = String>,
    ) -> Error {
        let known: Vec<String> = known.collect();
        Error::UnknownClient {
            kind,
            name: name.to_string(),
            section: format!("{}.{key}", self.inner.config.section),
            known: if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            },
        }
    }

    /// Operation counts and timings per client, while `enableMetricInterceptor`
    /// is on (the default); empty otherwise.
    #[must_use]
    pub fn metrics(&self) -> Vec<OperationMetrics> {
        self.inner
            .metrics
            .as_ref()
            .map(|m| m.snapshot())
            .unwrap_or_default()
    }

    /// Every Prometheus metric of this component's clients and servers, in
    /// the OpenMetrics text format (what the App's `/metrics` serves; see the
    /// README for the list). Empty while `enableMetricInterceptor` is off.
    ///
    /// ```
    /// let kafka = ekafka::Ekafka::from_toml_str("[kafka]\nbrokers = [\"b:9092\"]\n", "kafka")?.build()?;
    /// assert!(kafka.metrics_text().ends_with("# EOF\n"));
    /// # Ok::<(), ekafka::Error>(())
    /// ```
    #[must_use]
    pub fn metrics_text(&self) -> String {
        self.inner
            .registry
            .as_ref()
            .map(|registry| registry.encode())
            .unwrap_or_default()
    }

    /// The component's metrics, for its clients to record in.
    pub(crate) fn registry(&self) -> Option<&Arc<Metrics>> {
        self.inner.registry.as_ref()
    }

    /// The producers started and not closed, by name.
    pub(crate) fn running_producers(&self) -> Vec<Producer> {
        running(&self.inner.producers, Producer::is_closed)
    }

    /// The single consumers started and not closed, by name.
    pub(crate) fn running_consumers(&self) -> Vec<Consumer> {
        running(&self.inner.consumers, Consumer::is_closed)
    }

    /// The consumer groups started and not closed, by name.
    pub(crate) fn running_groups(&self) -> Vec<ConsumerGroup> {
        running(&self.inner.groups, ConsumerGroup::is_closed)
    }

    /// The restart policy clients fall back on for the restart keys they do not set.
    #[must_use]
    pub fn restart_policy(&self) -> &RestartPolicy {
        &self.inner.restart_policy
    }

    /// The first client or server of this component that failed past its restart
    /// limit, if one did.
    #[must_use]
    pub fn escalation(&self) -> Option<Escalation> {
        self.inner.escalator.current()
    }

    /// Waits until a client or server of this component fails past its restart
    /// limit, and returns the first that did. [`App`](crate::App) shuts down on it.
    pub async fn escalated(&self) -> Escalation {
        self.inner.escalator.escalated().await
    }

    pub(crate) fn escalator(&self) -> &Escalator {
        &self.inner.escalator
    }

    /// Prints `debug = true` output where [`EkafkaBuilder::with_debug_output`] says.
    pub(crate) fn debug_print(&self, line: &str) {
        self.inner.debug_output.print(line);
    }

    /// The admin client (topics, the cluster, consumer groups and their
    /// offsets), made on first use with `[kafka]`'s brokers, SASL and TLS,
    /// and shared after that. See [`Admin`].
    pub fn admin(&self) -> Result<Admin, Error> {
        let mut admin = self.inner.admin.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(admin) = &*admin {
            return Ok(admin.clone());
        }
        let config = &self.inner.config;
        let mut properties = config::librdkafka::common(config);
        properties.extend(&config.librdkafka);
        let made = Admin::new(&properties, config.admin.timeout)?;
        *admin = Some(made.clone());
        Ok(made)
    }

    /// The librdkafka properties producer `name` is created with.
    pub fn producer_properties(&self, name: &str) -> Result<Properties, Error> {
        let config = &self.inner.config;
        let producer = config.producers.get(name).ok_or_else(|| {
            self.unknown(
                "producer",
                "producers",
                name,
                config.producers.keys().cloned(),
            )
        })?;
        Ok(config::librdkafka::producer(config, name, producer))
    }

    /// The producer `name` (`[kafka.producers.NAME]`), started on first use.
    ///
    /// Must be called inside a running actix System. Returns the same running
    /// actor on later calls, and a new one after it was closed.
    pub fn producer(&self, name: &str) -> Result<Producer, Error> {
        let properties = self.producer_properties(name)?;
        running_or_start(
            &self.inner.producers,
            name,
            "Ekafka::producer",
            Producer::is_closed,
            || {
                let producer_config = self.inner.config.producers[name].clone();
                let balancer = match producer_config.balancer.as_str() {
                    native if config::native_partitioner(native).is_some() => None,
                    BALANCER_ROUND_ROBIN => {
                        Some(Arc::new(RoundRobin::default()) as Arc<dyn Balancer>)
                    }
                    registered => self.inner.balancers.get(registered).cloned(),
                };
                Producer::start(ProducerSpec {
                    name: name.to_string(),
                    restart_policy: producer_config.restart.apply(&self.inner.restart_policy),
                    config: producer_config,
                    client_config: properties.to_client_config(),
                    balancer: BalancerAdapter { balancer },
                    interceptors: self.inner.interceptors.clone(),
                    escalator: self.inner.escalator.clone(),
                    metrics: self.registry().map(|registry| registry.producer(name)),
                    propagate_trace: self.inner.config.interceptors.trace,
                    size_limit: properties
                        .get("message.max.bytes")
                        .and_then(|bytes| bytes.parse().ok())
                        .map(|bytes| SizeLimit {
                            bytes,
                            key: format!(
                                "{}.producers.{name}.maxMessageBytes",
                                self.inner.config.section
                            ),
                        }),
                })
            },
        )
    }

    /// The librdkafka properties consumer `name` is created with.
    pub fn consumer_properties(&self, name: &str) -> Result<Properties, Error> {
        let config = &self.inner.config;
        let consumer = config.consumers.get(name).ok_or_else(|| {
            self.unknown(
                "consumer",
                "consumers",
                name,
                config.consumers.keys().cloned(),
            )
        })?;
        Ok(config::librdkafka::consumer(config, name, consumer))
    }

    /// The consumer `name` (`[kafka.consumers.NAME]`), started on first use; the
    /// same running actor afterwards, a new one after it was closed. Must be called
    /// inside a running actix System.
    pub fn consumer(&self, name: &str) -> Result<Consumer, Error> {
        let properties = self.consumer_properties(name)?;
        running_or_start(
            &self.inner.consumers,
            name,
            "Ekafka::consumer",
            Consumer::is_closed,
            || {
                let config = &self.inner.config;
                let consumer = &config.consumers[name];
                Consumer::start(
                    name,
                    consumer,
                    &properties.to_client_config(),
                    config.client.timeout,
                    consumer
                        .group
                        .restart_settings(&consumer.restart)
                        .apply(&self.inner.restart_policy),
                    self.inner.escalator.clone(),
                    self.registry().map(|registry| registry.consumer(name)),
                )
            },
        )
    }

    /// The config of consumer group `name`, or the error naming the groups
    /// there are.
    pub(crate) fn consumer_group_config(
        &self,
        name: &str,
    ) -> Result<&config::ConsumerGroupConfig, Error> {
        let config = &self.inner.config;
        config.consumer_groups.get(name).ok_or_else(|| {
            self.unknown(
                "consumer group",
                "consumerGroups",
                name,
                config.consumer_groups.keys().cloned(),
            )
        })
    }

    /// The librdkafka properties consumer group member `name` is created
    /// with when its topics have `partitions` partitions in all (it reads the
    /// count before it joins, and sizes its prefetch from it; see
    /// [`config::librdkafka::consumer_group`]).
    pub fn consumer_group_properties(
        &self,
        name: &str,
        partitions: Option<usize>,
    ) -> Result<Properties, Error> {
        let group = self.consumer_group_config(name)?;
        Ok(config::librdkafka::consumer_group(
            &self.inner.config,
            name,
            group,
            partitions,
        ))
    }

    /// The consumer group member `name` (`[kafka.consumerGroups.NAME]`), started
    /// (and joining its group) on first use; the same running actor afterwards,
    /// a new one after it was closed. Must be called inside a running actix System.
    pub fn consumer_group(&self, name: &str) -> Result<ConsumerGroup, Error> {
        self.consumer_group_reading(name, &[])
    }

    /// [`consumer_group`](Self::consumer_group), subscribed to `extra_topics`
    /// besides its own when this call starts it: a server's delay topics.
    pub(crate) fn consumer_group_reading(
        &self,
        name: &str,
        extra_topics: &[String],
    ) -> Result<ConsumerGroup, Error> {
        let mut group = self.consumer_group_config(name)?.clone();
        for topic in extra_topics {
            if !group.topics.contains(topic) {
                group.topics.push(topic.clone());
            }
        }
        let group = &group;
        // Made when the member knows its topics' partition count.
        let properties: GroupProperties = {
            let (config, name, group) =
                (self.inner.config.clone(), name.to_string(), group.clone());
            Arc::new(move |partitions| {
                config::librdkafka::consumer_group(&config, &name, &group, partitions)
            })
        };
        let member = running_or_start(
            &self.inner.groups,
            name,
            "Ekafka::consumer_group",
            ConsumerGroup::is_closed,
            || {
                let config = Arc::new(group.clone());
                ConsumerGroup::start(GroupSpec {
                    name: name.to_string(),
                    restart_policy: config
                        .group
                        .restart_settings(&config.restart)
                        .apply(&self.inner.restart_policy),
                    config,
                    properties,
                    interceptors: self.inner.interceptors.clone(),
                    escalator: self.inner.escalator.clone(),
                    metrics: self.registry().cloned(),
                    probe: Arc::default(),
                })
            },
        )?;
        // Started earlier without them (by the user, say), it would never
        // read them: say so rather than leave their messages unread.
        let missing: Vec<&String> = extra_topics
            .iter()
            .filter(|topic| !member.topics().contains(topic))
            .collect();
        if !missing.is_empty() {
            return Err(Error::Unsupported {
                name: name.to_string(),
                reason: format!(
                    "the consumer group runs already, without {missing:?}; let the server start it (close it first)"
                ),
            });
        }
        Ok(member)
    }
}

impl Ekafka {
    /// Closes every client this component started: consumer groups drain,
    /// commit and leave, consumers close, then producers flush (up to their
    /// `writeTimeout`). Every client is closed even when one fails; the first
    /// failure is returned, and messages a producer could not deliver are logged.
    pub async fn close(&self) -> Result<(), Error> {
        let mut first_error = None;
        for group in running(&self.inner.groups, ConsumerGroup::is_closed) {
            if let Err(e) = group.close().await {
                first_error.get_or_insert(e);
            }
        }
        for consumer in running(&self.inner.consumers, Consumer::is_closed) {
            if let Err(e) = consumer.close().await {
                first_error.get_or_insert(e);
            }
        }
        for producer in running(&self.inner.producers, Producer::is_closed) {
            match producer.close().await {
                Ok(report) if report.is_clean() => {}
                Ok(report) => {
                    tracing::error!(producer = %producer.name(), undelivered = report.undelivered.len(), first = %report.undelivered[0], "producer closed with undelivered messages");
                    first_error.get_or_insert(Error::Undelivered {
                        name: producer.name().to_string(),
                        count: report.undelivered.len(),
                    });
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The clients of `cache` not closed yet, by name.
fn running<T: Clone>(cache: &Mutex<HashMap<String, T>>, is_closed: fn(&T) -> bool) -> Vec<T> {
    let cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    let mut names: Vec<&String> = cache.keys().collect();
    names.sort();
    names
        .into_iter()
        .map(|name| &cache[name])
        .filter(|client| !is_closed(client))
        .cloned()
        .collect()
}

/// The running client `name` from `cache`, or a new one from `start` when there is
/// none or it was closed.
fn running_or_start<T: Clone>(
    cache: &Mutex<HashMap<String, T>>,
    name: &str,
    what: &'static str,
    is_closed: fn(&T) -> bool,
    start: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    if actix::System::try_current().is_none() {
        return Err(Error::NoActixSystem { what });
    }
    let mut running = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(client) = running.get(name).filter(|c| !is_closed(c)) {
        return Ok(client.clone());
    }
    let client = start()?;
    running.insert(name.to_string(), client.clone());
    Ok(client)
}
