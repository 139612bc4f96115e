//! Consumer servers: `[kafkaConsumerServers.NAME]`, long-running handlers on top
//! of a consumer group.
//!
//! Three modes, one per server, as in the Go guide: each message
//! ([`ConsumerServer::on_each_message`]), and the manual modes
//! ([`ConsumerServer::on_start`], [`ConsumerServer::on_consumer_group_start`]) in
//! which your function drives the consumer and watches a [`Shutdown`] signal.
//! Beside them, ekafka's own: decoded values
//! ([`ConsumerServer::on_each_value`]), runs of up to `batchSize` messages of
//! a partition per call ([`ConsumerServer::on_each_batch`]), and exactly once
//! ([`ConsumerServer::on_each_message_transform`]).
//!
//! Each-message mode: an async handler per
//! message. Its offset becomes committable only once the handler succeeded. A
//! [`HandlerError::Recoverable`] failure is retried (`retries`, 3 by default)
//! with exponential backoff and jitter, while the other partitions keep flowing.
//! A fatal failure, a panic, or retries used up go to the dead-letter topic when
//! `deadLetterProducer` is set (with the original topic, partition, offset, error
//! and attempts in headers) and consumption continues, up to `deadLetterLimit`
//! per partition within `deadLetterWindow`. Without one (or past that limit),
//! *that partition* stops at the message, uncommitted, while the other
//! partitions keep flowing; after the restart backoff its handling restarts
//! from that message, without leaving the group. Past `maxRestarts` for that
//! partition (or at once past the dead-letter limit) the partition is held
//! there, tried again every `restartBackoffMax`, while the others go on; with
//! `partitionPastLimit = "escalate"` the failure escalates instead (see
//! [`App`](crate::App)). Only a failure of the server's group member or
//! handler actor restarts the whole server (a rejoin). Failures are reported
//! to an optional subscriber, never blocking; [`RunningServer::status`] lists
//! the partitions stopped.
//!
//! With `concurrency = N` (above 1) up to N messages of each partition run at
//! once: with `orderBy = "key"` never two of one key, each key's in offset
//! order; the offset committed is the end of the run of finished messages,
//! never past one still running.

mod at_least_once;
mod batched;
mod builder;
mod dead_letter;
mod each_batch;
mod each_message;
mod handling;
pub mod headers;
mod lane;
mod manual;
mod outcome;
mod partition;
mod retry_topics;
mod shared;
mod supervisor;
mod transactional;
mod typed;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;
use tokio::sync::watch;

pub use builder::ServerBuilder;
pub use manual::{ManualServer, Shutdown};
pub use outcome::{
    BatchFailure, FailureAction, HandleMessage, HandleValue, HandlerError, HandlerFailure,
};
pub use partition::{ServerStatus, StoppedPartition};

use each_message::SubscribeFailures;
use manual::{ManualRuns, ManualSpec};
use supervisor::ServerSpec;

use crate::component::Ekafka;
use crate::config::{ConfigError, ConfigProblem, ConsumerServerConfig};
use crate::consumer::{ConsumedMessage, Consumer, ConsumerGroup};
use crate::error::Error;
use crate::supervision::Supervisor;

/// Starts consumer servers.
#[derive(Debug)]
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
        Self::builder(kafka, config).on_each_message(handler).await
    }

    /// A server to set up before it starts: to hear of handler failures from
    /// the first message on, say.
    ///
    /// ```no_run
    /// # async fn run(
    /// #     kafka: ekafka::Ekafka,
    /// #     config: ekafka::config::ConsumerServerConfig,
    /// #     failures: actix::Recipient<ekafka::server::HandlerFailure>,
    /// # ) -> Result<(), ekafka::Error> {
    /// use ekafka::server::ConsumerServer;
    /// let server = ConsumerServer::builder(&kafka, &config)
    ///     .subscribe_failures(failures)
    ///     .on_each_message(|message| async move {
    ///         println!("{:?}", message.value_str());
    ///         Ok(())
    ///     })
    ///     .await?;
    /// # server.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder<'a>(kafka: &'a Ekafka, config: &'a ConsumerServerConfig) -> ServerBuilder<'a> {
        ServerBuilder {
            kafka,
            config,
            failures: None,
        }
    }
}

impl ConsumerServer {
    /// Like [`on_each_message`](Self::on_each_message), with an actor as the
    /// handler: each message is sent to `handler` as a [`HandleMessage`] and its
    /// reply is the outcome. An actor that stopped counts as a fatal failure.
    pub async fn on_each_message_actor(
        kafka: &Ekafka,
        config: &ConsumerServerConfig,
        handler: Recipient<HandleMessage>,
    ) -> Result<RunningServer, Error> {
        Self::builder(kafka, config)
            .on_each_message_actor(handler)
            .await
    }
}

impl ConsumerServer {
    /// Exactly-once consume-transform-produce: `handler` returns the messages
    /// to write for each message of the server's group, and they commit with
    /// the group's offsets in one transaction of `transactionalProducer` (a
    /// producer with `transactionalID`). A `read_committed` reader of the
    /// outputs sees each input's outputs once, also across crashes, restarts
    /// and rebalances: a transaction that did not commit is aborted and its
    /// inputs handled again. Messages without a topic go to the producer's
    /// `topic`.
    ///
    /// A run of one partition's fetched messages (up to `deliveryBatch`)
    /// shares a transaction; retries, dead letters (written inside the
    /// transaction) and the stop-on-failure rule work as in
    /// [`on_each_message`](Self::on_each_message).
    ///
    /// ```no_run
    /// # async fn run(kafka: ekafka::Ekafka) -> Result<(), ekafka::Error> {
    /// use ekafka::server::{ConsumerServer, HandlerError};
    /// use ekafka::Message;
    /// let config = ekafka::config::ConsumerServerConfig::from_toml_str(
    ///     "[kafkaConsumerServers.s1]\nconsumerGroupName = \"orders\"\ntransactionalProducer = \"invoices\"\n",
    ///     "kafkaConsumerServers.s1",
    /// )?;
    /// let server = ConsumerServer::on_each_message_transform(&kafka, &config, |order| async move {
    ///     let text = order.value_str().ok_or_else(|| HandlerError::fatal("not UTF-8"))?;
    ///     Ok(vec![Message::new(format!("invoice for {text}"))])
    /// })
    /// .await?;
    /// # server.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn on_each_message_transform<F, Fut>(
        kafka: &Ekafka,
        config: &ConsumerServerConfig,
        handler: F,
    ) -> Result<RunningServer, Error>
    where
        F: Fn(ConsumedMessage) -> Fut + 'static,
        Fut: Future<Output = Result<Vec<crate::record::Message>, HandlerError>> + 'static,
    {
        Self::builder(kafka, config)
            .on_each_message_transform(handler)
            .await
    }
}

/// A handler function that asks `actor`.
pub(crate) fn actor_handler(
    actor: Recipient<HandleMessage>,
) -> impl Fn(ConsumedMessage) -> Pin<Box<dyn Future<Output = Result<(), HandlerError>>>> {
    move |message| {
        let actor = actor.clone();
        Box::pin(async move {
            actor
                .send(HandleMessage(message))
                .await
                .unwrap_or_else(|e| {
                    Err(HandlerError::fatal(format!(
                        "the handler actor is gone: {e}"
                    )))
                })
        })
    }
}

/// `debug = true`: prints every message handled and its result, as Go does.
fn debug_output<F, Fut>(kafka: Ekafka, server: String, handler: F) -> shared::BoxedHandler
where
    F: Fn(ConsumedMessage) -> Fut + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + 'static,
{
    let handler = Rc::new(handler);
    Rc::new(move |message: ConsumedMessage| {
        let (kafka, server, handler) = (kafka.clone(), server.clone(), Rc::clone(&handler));
        Box::pin(async move {
            let shown = format!(
                "{}/{}@{} value={}",
                message.topic(),
                message.partition(),
                message.offset(),
                crate::record::Preview(message.value())
            );
            let result = handler(message).await;
            let outcome = match &result {
                Ok(()) => "ok".to_string(),
                Err(e) => e.to_string(),
            };
            kafka.debug_print(&format!(
                "[ekafka] consumer server {server} HANDLER {shown} -> {outcome}\n"
            ));
            result
        })
    })
}

impl ConsumerServer {
    /// Hands the server's consumer (`consumerName`) and a shutdown signal to
    /// `run`, which drives consumption itself (Go's `OnStart`). The server ends
    /// when `run` returns `Ok`. When it fails or panics, the consumer is closed
    /// and `run` is called again with a new one after backoff (so `run` is a
    /// `Fn`: clone what each call needs inside it).
    ///
    /// ```no_run
    /// # async fn run(kafka: ekafka::Ekafka, config: ekafka::config::ConsumerServerConfig) -> Result<(), ekafka::Error> {
    /// use ekafka::server::{ConsumerServer, HandlerError};
    /// let server = ConsumerServer::on_start(&kafka, &config, |consumer, mut shutdown| async move {
    ///     loop {
    ///         tokio::select! {
    ///             _ = shutdown.requested() => break,
    ///             message = consumer.read() => {
    ///                 let message = message.map_err(HandlerError::recoverable)?;
    ///                 println!("{:?}", message.value_str());
    ///             }
    ///         }
    ///     }
    ///     consumer.close().await.map_err(HandlerError::fatal)
    /// })?;
    /// server.shutdown().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_start<F, Fut>(
        kafka: &Ekafka,
        config: &ConsumerServerConfig,
        run: F,
    ) -> Result<ManualServer, Error>
    where
        F: Fn(Consumer, Shutdown) -> Fut + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + 'static,
    {
        let name = required(config, &config.consumer_name, "consumerName")?.to_string();
        manual_server(
            kafka,
            config,
            move |kafka| kafka.consumer(&name),
            |consumer: Consumer| async move {
                if let Err(error) = consumer.close().await {
                    tracing::warn!(consumer = %consumer.name(), %error, "closing the server's consumer");
                }
            },
            run,
        )
    }

    /// Hands the server's consumer group (`consumerGroupName`) and a shutdown
    /// signal to `run` (Go's `OnConsumerGroupStart`). Supervised like
    /// [`on_start`](Self::on_start): after a failure the group member is closed,
    /// committing what was acknowledged, and `run` gets a new one that resumes
    /// from the committed offsets.
    pub fn on_consumer_group_start<F, Fut>(
        kafka: &Ekafka,
        config: &ConsumerServerConfig,
        run: F,
    ) -> Result<ManualServer, Error>
    where
        F: Fn(ConsumerGroup, Shutdown) -> Fut + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + 'static,
    {
        let name = required(config, &config.consumer_group_name, "consumerGroupName")?.to_string();
        manual_server(
            kafka,
            config,
            move |kafka| kafka.consumer_group(&name),
            // Commits what was acknowledged and lets the partitions go at once.
            |group: ConsumerGroup| async move {
                // What it could not commit is handed to the partitions' next
                // owner again; say so rather than drop the report.
                if let Err(error) = group.close_within(Duration::ZERO).await {
                    tracing::warn!(group = %group.name(), %error, "closing the server's consumer group");
                }
            },
            run,
        )
    }
}

/// Starts a supervised manual server: `acquire` gets its client (again after
/// a failure, once `release` let the failed run's client go).
fn manual_server<C, R, RFut, F, Fut>(
    kafka: &Ekafka,
    config: &ConsumerServerConfig,
    acquire: impl Fn(&Ekafka) -> Result<C, Error> + 'static,
    release: R,
    run: F,
) -> Result<ManualServer, Error>
where
    C: Clone + Send + Sync + 'static,
    R: Fn(C) -> RFut + 'static,
    RFut: Future<Output = ()> + 'static,
    F: Fn(C, Shutdown) -> Fut + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + 'static,
{
    let acquire_from = kafka.clone();
    ManualServer::spawn(ManualSpec {
        name: server_name(config),
        kafka: kafka.clone(),
        policy: config.restart.apply(kafka.restart_policy()),
        runs: ManualRuns {
            acquire: Box::new(move || acquire(&acquire_from)),
            release: Box::new(move |client| Box::pin(release(client))),
        },
        run: Box::new(move |client, shutdown| Box::pin(run(client, shutdown))),
    })
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

/// A running each-message server, supervised: when it fails it is restarted
/// behind this same handle.
#[must_use = "the handle is how the server is shut down and its end observed"]
pub struct RunningServer {
    name: String,
    drain_timeout: Duration,
    supervisor: Supervisor<ServerSpec>,
    shutdown: watch::Sender<Option<Duration>>,
    done: watch::Receiver<Option<Result<(), supervisor::ServerEnd>>>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("name", &self.name)
            .field("drain_timeout", &self.drain_timeout)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The server's name (`s1` for `[kafkaConsumerServers.s1]`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends every handler failure to `subscriber` from now on, across restarts.
    pub async fn subscribe_failures(
        &self,
        subscriber: Recipient<HandlerFailure>,
    ) -> Result<(), Error> {
        *self.supervisor.spec().failures.borrow_mut() = Some(subscriber.clone());
        // A restart in progress picks the subscriber up from the spec.
        if let Ok((_, instance)) = self.supervisor.slot().current() {
            let _ = instance.actor.send(SubscribeFailures(subscriber)).await;
        }
        Ok(())
    }

    /// The consumer group the server drives now (a new member after each restart).
    #[must_use]
    pub fn group(&self) -> ConsumerGroup {
        self.supervisor
            .spec()
            .group
            .borrow()
            .clone()
            .expect("set by the first incarnation, before the server is returned")
    }

    /// The handler calls in progress, for liveness checks.
    pub(crate) fn probe(&self) -> Arc<crate::observe::ServerProbe> {
        Arc::clone(&self.supervisor.spec().probe)
    }

    /// How often the whole server was restarted (a new group member) after
    /// its consumer group or handler actor failed. A message that fails for
    /// good restarts only its partition's handling: see [`status`](Self::status).
    #[must_use]
    pub fn restarts(&self) -> u32 {
        self.supervisor.slot().status().restarts as u32
    }

    /// Restarts, and the partitions stopped now on a message that failed for
    /// good (waiting for their handling to restart, or given up).
    pub async fn status(&self) -> Result<ServerStatus, Error> {
        let restarts = self.restarts();
        let (_, instance) = self.supervisor.slot().ready().await?;
        instance
            .actor
            .send(each_message::Status { restarts })
            .await
            .map_err(|_| Error::ActorStopped {
                kind: shared::KIND,
                name: self.name.clone(),
            })
    }

    /// Shuts down gracefully: no new message is started, handlers in flight get
    /// until `deadline` to finish, what was handled is committed, and the member
    /// leaves its group. Returns the server's failure if it had escalated.
    pub async fn shutdown(&self, deadline: Duration) -> Result<(), Error> {
        self.shutdown.send_if_modified(|requested| {
            if requested.is_some() {
                return false;
            }
            *requested = Some(deadline);
            true
        });
        // After the deadline is set: a restart under way stops at its backoff.
        self.supervisor.slot().request_close();
        self.wait().await
    }

    /// [`shutdown`](Self::shutdown) with the group's `drainTimeout` as deadline.
    pub async fn close(&self) -> Result<(), Error> {
        self.shutdown(self.drain_timeout).await
    }

    /// Waits until the server ends: after a shutdown (`Ok`), or when it failed
    /// past its restart limit (the escalation, as [`Error::GaveUp`]).
    pub async fn wait(&self) -> Result<(), Error> {
        let mut done = self.done.clone();
        let outcome = done
            .wait_for(Option::is_some)
            .await
            .map(|outcome| outcome.clone().expect("waited for Some"));
        match outcome {
            Ok(outcome) => outcome.map_err(Error::from),
            Err(_) => Err(Error::ActorStopped {
                kind: shared::KIND,
                name: self.name.clone(),
            }),
        }
    }
}
