//! Setting up an each-message server before it starts.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use actix::Recipient;
use tokio::sync::watch;

use super::retry_topics;
use super::shared::{self, MessageHandler, KIND};
use super::supervisor::{self, ServerSpec};
use super::{
    actor_handler, debug_output, required, server_name, HandleMessage, HandlerError,
    HandlerFailure, RunningServer,
};
use crate::component::Ekafka;
use crate::config::{ConfigError, ConfigProblem, ConsumerServerConfig};
use crate::consumer::ConsumedMessage;
use crate::error::Error;
use crate::record::Message;
use crate::supervision::Supervisor;

/// An each-message server being set up; from
/// [`ConsumerServer::builder`](super::ConsumerServer::builder). Nothing runs
/// until [`on_each_message`](Self::on_each_message) or
/// [`on_each_message_actor`](Self::on_each_message_actor).
#[must_use = "a server builder does nothing until on_each_message is called"]
pub struct ServerBuilder<'a> {
    pub(super) kafka: &'a Ekafka,
    pub(super) config: &'a ConsumerServerConfig,
    pub(super) failures: Option<Recipient<HandlerFailure>>,
}

impl std::fmt::Debug for ServerBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("server", &self.config.section)
            .field("failures", &self.failures.is_some())
            .finish_non_exhaustive()
    }
}

impl ServerBuilder<'_> {
    /// Sends every handler failure to `subscriber`, from the server's first
    /// message on and across restarts.
    pub fn subscribe_failures(mut self, subscriber: Recipient<HandlerFailure>) -> Self {
        self.failures = Some(subscriber);
        self
    }

    /// Starts the server with `handler` run for every message of its consumer
    /// group (see [`ConsumerServer::on_each_message`](super::ConsumerServer::on_each_message)).
    pub async fn on_each_message<F, Fut>(self, handler: F) -> Result<RunningServer, Error>
    where
        F: Fn(ConsumedMessage) -> Fut + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + 'static,
    {
        let (kafka, config) = (self.kafka, self.config);
        let handler: shared::BoxedHandler = if config.debug {
            debug_output(kafka.clone(), server_name(config), handler)
        } else {
            Rc::new(move |message| Box::pin(handler(message)))
        };
        self.start(MessageHandler::Each(handler)).await
    }

    /// Starts the server in exactly-once mode (see
    /// [`ConsumerServer::on_each_message_transform`](super::ConsumerServer::on_each_message_transform)).
    pub async fn on_each_message_transform<F, Fut>(self, handler: F) -> Result<RunningServer, Error>
    where
        F: Fn(ConsumedMessage) -> Fut + 'static,
        Fut: Future<Output = Result<Vec<Message>, HandlerError>> + 'static,
    {
        let (kafka, config) = (self.kafka, self.config);
        let name = required(
            config,
            &config.transactional_producer,
            "transactionalProducer",
        )?;
        let producer_config = kafka.config().producers.get(name);
        if producer_config.is_some_and(|p| p.transactional_id.is_none()) {
            return Err(ConfigError::new(
                format!("{}.transactionalProducer", config.section),
                ConfigProblem::InvalidValue {
                    found: format!("{name:?}"),
                    expected: "a producer with transactionalID".into(),
                },
            )
            .into());
        }
        let producer = kafka.producer(name)?;
        let handler: shared::BoxedTransform = Rc::new(move |message| Box::pin(handler(message)));
        self.start(MessageHandler::Transform { handler, producer })
            .await
    }

    pub(super) async fn start(self, handler: MessageHandler) -> Result<RunningServer, Error> {
        let (kafka, config) = (self.kafka, self.config);
        if !matches!(handler, MessageHandler::Transform { .. }) {
            refuse_transactional_writers(kafka, config)?;
        }
        let group_name = required(config, &config.consumer_group_name, "consumerGroupName")?;
        let group_config = kafka.consumer_group_config(group_name)?;
        check_batching(config, &handler, group_config.flow.max_buffered)?;
        let drain_timeout = group_config.flow.drain_timeout;
        let retry_topics = match &config.retry_topics {
            Some(retry_topics) => {
                let producer = retry_topics
                    .producer
                    .clone()
                    .or_else(|| config.dead_letter.as_ref().map(|dl| dl.producer.clone()));
                let producer = required(config, &producer, "retryProducer")?.to_string();
                retry_topics::ensure_topics(
                    &kafka.admin()?,
                    &retry_topics.delays,
                    &group_config.topics,
                )
                .await?;
                Some(supervisor::DelayStages {
                    delays: retry_topics.delays.clone(),
                    producer,
                })
            }
            None => None,
        };
        let name = server_name(config);
        let policy = config.restart.apply(kafka.restart_policy());
        let spec = ServerSpec {
            name: name.clone(),
            kafka: kafka.clone(),
            group_name: group_name.to_string(),
            handler,
            retry: config.retry.clone(),
            concurrency: config.concurrency.clone(),
            past_limit: config.partition_past_limit,
            retry_topics,
            dead_letter: config.dead_letter.clone(),
            policy: policy.clone(),
            drain_timeout,
            failures: RefCell::new(self.failures),
            group: RefCell::new(None),
            probe: Arc::default(),
        };
        spec.probe.set_group(group_name);
        let first = spec.start_instance().await?;
        let escalator = kafka.escalator().clone();
        let supervisor = Supervisor::new(spec, first, KIND, &name, policy, escalator);
        let (shutdown, requested) = watch::channel(None);
        let (finished, done) = watch::channel(None);
        let supervised = supervisor::supervise(supervisor.clone(), requested);
        actix::spawn(async move {
            let outcome = supervised.await;
            finished.send_replace(Some(outcome));
        });
        Ok(RunningServer {
            name,
            drain_timeout,
            supervisor,
            shutdown,
            done,
        })
    }

    /// Like [`on_each_message`](Self::on_each_message), with an actor as the
    /// handler (see
    /// [`ConsumerServer::on_each_message_actor`](super::ConsumerServer::on_each_message_actor)).
    pub async fn on_each_message_actor(
        self,
        handler: Recipient<HandleMessage>,
    ) -> Result<RunningServer, Error> {
        self.on_each_message(actor_handler(handler)).await
    }
}

/// Batch keys are for a batch handler, which must be able to fill its
/// batches; a server that handles each message refuses them rather than
/// ignore them.
fn check_batching(
    config: &ConsumerServerConfig,
    handler: &MessageHandler,
    max_buffered: usize,
) -> Result<(), Error> {
    let invalid = |key: &str, found: String, expected: String| -> Error {
        ConfigError::new(
            format!("{}.{key}", config.section),
            ConfigProblem::InvalidValue { found, expected },
        )
        .into()
    };
    let MessageHandler::Batch { size, .. } = handler else {
        return match config.batching.written() {
            Some((key, found)) => Err(invalid(
                key,
                found,
                "no batch keys on a server handling each message (they are for on_each_batch)"
                    .into(),
            )),
            None => Ok(()),
        };
    };
    if config.concurrency.limit > 1 {
        return Err(invalid(
            "concurrency",
            config.concurrency.limit.to_string(),
            "1 with on_each_batch (a batch handler gets a partition's messages in order, one call at a time; raise batchSize instead)".into(),
        ));
    }
    if let Some(producer) = &config.transactional_producer {
        return Err(invalid(
            "transactionalProducer",
            format!("{producer:?}"),
            "none with on_each_batch (exactly once is on_each_message_transform)".into(),
        ));
    }
    if *size > max_buffered {
        return Err(invalid(
            "batchSize",
            size.to_string(),
            format!(
                "at most the group's maxBuffered ({max_buffered}), or batches could never fill"
            ),
        ));
    }
    Ok(())
}

/// An at-least-once server writes dead letters and delayed messages outside
/// any transaction: a transactional producer would refuse every one of them,
/// stopping each partition at its first failure.
fn refuse_transactional_writers(
    kafka: &Ekafka,
    config: &ConsumerServerConfig,
) -> Result<(), Error> {
    let named = [
        (
            "deadLetterProducer",
            config.dead_letter.as_ref().map(|dl| &dl.producer),
        ),
        (
            "retryProducer",
            config
                .retry_topics
                .as_ref()
                .and_then(|rt| rt.producer.as_ref()),
        ),
    ];
    for (key, producer) in named {
        let Some(producer) = producer else { continue };
        let transactional = kafka
            .config()
            .producers
            .get(producer)
            .is_some_and(|p| p.transactional_id.is_some());
        if transactional {
            return Err(ConfigError::new(
                format!("{}.{key}", config.section),
                ConfigProblem::InvalidValue {
                    found: format!("{producer:?}"),
                    expected: "a producer without transactionalID (a transactional one writes only inside transactions; use on_each_message_transform for those)".into(),
                },
            )
            .into());
        }
    }
    Ok(())
}
