//! Consumer servers: `[kafkaConsumerServers.NAME]`, long-running handlers on top
//! of a consumer group.
//!
//! Three modes, one per server, as in the Go guide: each message
//! ([`ConsumerServer::on_each_message`]), and the manual modes
//! ([`ConsumerServer::on_start`], [`ConsumerServer::on_consumer_group_start`]) in
//! which your function drives the consumer and watches a [`Shutdown`] signal.
//!
//! Each-message mode: an async handler per
//! message. Its offset becomes committable only once the handler succeeded. A
//! [`HandlerError::Recoverable`] failure is retried (`retries`, 3 by default)
//! with exponential backoff and jitter, while the other partitions keep flowing.
//! A fatal failure, a panic, or retries used up go to the dead-letter topic when
//! `deadLetterProducer` is set (with the original topic, partition, offset, error
//! and attempts in headers) and consumption continues; without one, the server
//! stops that partition at the message, uncommitted, so it comes again after a
//! restart. Failures are reported to an optional subscriber, never blocking.

mod each_message;
mod manual;
mod outcome;

use std::future::Future;
use std::rc::Rc;

use actix::{Actor, Addr, Recipient};

pub use each_message::headers;
pub use manual::{ManualServer, Shutdown};
pub use outcome::{FailureAction, HandlerError, HandlerFailure};

use each_message::{DeadLetterSink, EachMessageActor, Stopped, SubscribeFailures};

use crate::component::Ekafka;
use crate::config::{ConfigError, ConfigProblem, ConsumerServerConfig};
use crate::consumer::{ConsumedMessage, Consumer, ConsumerGroup, TopicPartition};
use crate::error::Error;

/// Starts consumer servers.
pub struct ConsumerServer;

impl ConsumerServer {
    /// Runs `handler` for every message of the server's consumer group
    /// (`consumerGroupName`).
    ///
    /// ```no_run
    /// # async fn run(kafka: ekafka::Ekafka) -> Result<(), ekafka::Error> {
    /// use ekafka::server::{ConsumerServer, HandlerError};
    /// let config = ekafka::config::ConsumerServerConfig::from_toml_str(
    ///     "[kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\n",
    ///     "kafkaConsumerServers.s1",
    /// )?;
    /// let server = ConsumerServer::on_each_message(&kafka, &config, |message| async move {
    ///     match message.value_str() {
    ///         Some(text) => { println!("{text}"); Ok(()) }
    ///         None => Err(HandlerError::fatal("not UTF-8")),
    ///     }
    /// })
    /// .await?;
    /// # server.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn on_each_message<F, Fut>(
        kafka: &Ekafka,
        config: &ConsumerServerConfig,
        handler: F,
    ) -> Result<RunningServer, Error>
    where
        F: Fn(ConsumedMessage) -> Fut + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + 'static,
    {
        let group_name = required(config, &config.consumer_group_name, "consumerGroupName")?;
        let dead_letter = match &config.dead_letter {
            Some(dl) => Some(DeadLetterSink {
                producer: kafka.producer(&dl.producer)?,
                topic: dl.topic.clone(),
            }),
            None => None,
        };
        let group = kafka.consumer_group(group_name)?;
        let handler: each_message::BoxedHandler = if config.debug {
            // `debug = true`: print every message handled and its result, as Go does.
            let server = server_name(config);
            let handler = Rc::new(handler);
            Rc::new(move |message: ConsumedMessage| {
                let (server, handler) = (server.clone(), Rc::clone(&handler));
                Box::pin(async move {
                    let shown = format!(
                        "{}/{}@{} value={}",
                        message.topic,
                        message.partition,
                        message.offset,
                        crate::message::Preview(message.value.as_deref())
                    );
                    let result = handler(message).await;
                    match &result {
                        Ok(()) => {
                            eprintln!("[ekafka] consumer server {server} HANDLER {shown} -> ok")
                        }
                        Err(e) => {
                            eprintln!("[ekafka] consumer server {server} HANDLER {shown} -> {e}")
                        }
                    }
                    result
                })
            })
        } else {
            Rc::new(move |message| Box::pin(handler(message)))
        };
        let actor = EachMessageActor::new(
            server_name(config),
            handler,
            config.retry.clone(),
            dead_letter,
        )
        .start();
        group.subscribe(actor.clone().recipient()).await?;
        Ok(RunningServer { group, actor })
    }
}

impl ConsumerServer {
    /// Hands the server's consumer (`consumerName`) and a shutdown signal to
    /// `run`, which drives consumption itself (Go's `OnStart`). The server ends
    /// when `run` returns.
    pub fn on_start<F, Fut>(
        kafka: &Ekafka,
        config: &ConsumerServerConfig,
        run: F,
    ) -> Result<ManualServer, Error>
    where
        F: FnOnce(Consumer, Shutdown) -> Fut,
        Fut: Future<Output = Result<(), HandlerError>> + 'static,
    {
        let consumer = kafka.consumer(required(config, &config.consumer_name, "consumerName")?)?;
        Ok(ManualServer::spawn(server_name(config), |shutdown| {
            run(consumer, shutdown)
        }))
    }

    /// Hands the server's consumer group (`consumerGroupName`) and a shutdown
    /// signal to `run` (Go's `OnConsumerGroupStart`).
    pub fn on_consumer_group_start<F, Fut>(
        kafka: &Ekafka,
        config: &ConsumerServerConfig,
        run: F,
    ) -> Result<ManualServer, Error>
    where
        F: FnOnce(ConsumerGroup, Shutdown) -> Fut,
        Fut: Future<Output = Result<(), HandlerError>> + 'static,
    {
        let group = kafka.consumer_group(required(
            config,
            &config.consumer_group_name,
            "consumerGroupName",
        )?)?;
        Ok(ManualServer::spawn(server_name(config), |shutdown| {
            run(group, shutdown)
        }))
    }
}

/// The client name a server mode needs, or an error naming the missing key.
fn required<'a>(
    config: &ConsumerServerConfig,
    value: &'a Option<String>,
    key: &str,
) -> Result<&'a str, Error> {
    value.as_deref().ok_or_else(|| {
        ConfigError::new(format!("{}.{key}", config.section), ConfigProblem::Missing).into()
    })
}

/// `s1` for `kafkaConsumerServers.s1`.
fn server_name(config: &ConsumerServerConfig) -> String {
    config
        .section
        .rsplit('.')
        .next()
        .unwrap_or(&config.section)
        .to_string()
}

/// A running each-message server.
pub struct RunningServer {
    group: ConsumerGroup,
    actor: Addr<EachMessageActor>,
}

impl RunningServer {
    /// Sends every handler failure to `subscriber` from now on.
    pub async fn subscribe_failures(
        &self,
        subscriber: Recipient<HandlerFailure>,
    ) -> Result<(), Error> {
        self.actor
            .send(SubscribeFailures(subscriber))
            .await
            .map_err(|_| Error::ActorStopped {
                kind: "consumer server",
                name: self.group.name().to_string(),
            })
    }

    /// Partitions stopped on a message that failed for good, with its offset.
    pub async fn stopped_partitions(&self) -> Result<Vec<(TopicPartition, i64)>, Error> {
        self.actor
            .send(Stopped)
            .await
            .map_err(|_| Error::ActorStopped {
                kind: "consumer server",
                name: self.group.name().to_string(),
            })
    }

    /// The consumer group the server drives.
    pub fn group(&self) -> &ConsumerGroup {
        &self.group
    }

    /// Closes the consumer group (draining, committing what was handled).
    pub async fn close(&self) -> Result<(), Error> {
        self.group.close().await
    }
}
