//! Producers: `[kafka.producers.NAME]` as supervised actors.
//!
//! Get one with [`Ekafka::producer`](crate::Ekafka::producer). Writes are
//! synchronous by default: [`Producer::write`] answers once the broker has
//! acknowledged every message (`requiredAcks = -1`, all in-sync replicas), with
//! each message's partition and offset or its error. With `async = true` it answers
//! once the messages are queued, and delivery failures go to the subscriber set with
//! [`Producer::subscribe_errors`] (or to the log at ERROR when there is none).
//!
//! A synchronous write is a round trip: for throughput, keep several in flight
//! (tasks, or `join`), at least the topic's partitions × `batchSize` messages
//! across them, so librdkafka's batches fill instead of waiting out
//! `batchTimeout`; or write with `async = true`.
//!
//! A write runs on the caller's own task: it puts its messages on librdkafka's
//! queue from the caller's thread, as a raw client shared between threads
//! would, so writers on many threads are not funnelled through one. The actor
//! supervises: when the librdkafka client fails fatally, it replaces it under
//! its [`RestartPolicy`](crate::RestartPolicy); the handle stays valid
//! throughout and writes made meanwhile wait for the new client.

mod actor;
mod balancer;
mod client;
mod reports;
mod tracker;
mod transaction;
mod typed;
mod writer;

use std::sync::Arc;

use actix::{Actor, Recipient};

pub use crate::record::{CloseReport, Outcome, WriteReport};
pub use actor::ProducerStatus;
use actor::{ProducerActor, ProducerHandle};
pub use balancer::{Balancer, RoundRobin};
pub use client::DeliveryFailed;
pub use transaction::Transaction;
pub use typed::TypedProducer;
use writer::Writer;

pub(crate) use actor::ProducerSpec;
pub(crate) use balancer::BalancerAdapter;
pub(crate) use client::SizeLimit;

use crate::error::Error;
use crate::handle::ActorHandle;
use crate::observe::ProducerProbe;
use crate::record::Message;

/// A handle to a running producer actor. Cheap to clone; all clones talk to the
/// same actor.
///
/// ```no_run
/// # async fn run(kafka: ekafka::Ekafka) -> Result<(), Box<dyn std::error::Error>> {
/// use ekafka::Message;
/// let producer = kafka.producer("p1")?;
/// let report = producer
///     .write([Message::new("Hello World!"), Message::new("One!"), Message::new("Two!")])
///     .await?;
/// for delivery in report.into_result()? {
///     println!("{}/{} at offset {}", delivery.topic, delivery.partition, delivery.offset);
/// }
/// producer.close().await?;
/// # Ok(())
/// # }
/// ```
///
/// Two handles are equal when they talk to the same actor.
#[derive(Clone)]
pub struct Producer {
    handle: ProducerHandle,
    /// Whether the current client reached a broker, for readiness checks.
    probe: Arc<ProducerProbe>,
    /// What its writes share: they run on the caller's task.
    writer: Arc<Writer>,
    /// Set for a transactional producer (`transactionalID`).
    transactional: Option<Arc<transaction::Transactional>>,
}

impl PartialEq for Producer {
    fn eq(&self, other: &Self) -> bool {
        self.handle == other.handle
    }
}

impl Eq for Producer {}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.handle.debug(f, "Producer")
    }
}

impl Producer {
    pub(crate) fn start(spec: ProducerSpec) -> Result<Self, Error> {
        let name = spec.name.clone();
        let transactional = spec.config.transactional_id.as_ref().map(|id| {
            Arc::new(transaction::Transactional {
                id: id.clone(),
                turn: Arc::default(),
                timeout: spec.config.transaction_timeout,
                initialised: std::sync::Mutex::new(None),
            })
        });
        let actor = ProducerActor::new(spec)?;
        let slot = actor.slot();
        let probe = actor.probe();
        let parts = actor.writer_parts();
        let addr = actor.start();
        let writer = Arc::new(Writer::new(parts, addr.clone().recipient()));
        Ok(Producer {
            handle: ActorHandle::new("producer", &name, addr, slot),
            probe,
            writer,
            transactional,
        })
    }

    /// `topic` from the config: where messages naming none go.
    pub(crate) fn default_topic(&self) -> Option<&str> {
        self.writer.default_topic()
    }

    /// Whether the current client reached a broker.
    pub(crate) fn probe(&self) -> &Arc<ProducerProbe> {
        &self.probe
    }

    /// The producer's configured name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.handle.name()
    }

    /// True once [`close`](Self::close) was called or the actor stopped.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Writes messages, in order, and reports each one's fate.
    ///
    /// The call fails as a whole only when the producer is closed or gave up
    /// restarting; otherwise every message has an [`Outcome`]. A
    /// transactional producer writes inside a [`Transaction`] only
    /// ([`begin`](Self::begin)).
    pub async fn write(
        &self,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<WriteReport, Error> {
        if self.transactional.is_some() {
            return Err(Error::Unsupported {
                name: self.name().to_string(),
                reason: "a transactional producer (transactionalID) writes inside a transaction: producer.begin()".into(),
            });
        }
        self.write_unchecked(messages).await
    }

    /// [`write`](Self::write), also for a transactional producer (inside its
    /// transaction).
    async fn write_unchecked(
        &self,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<WriteReport, Error> {
        self.writer.write(messages).await
    }

    /// Begins a transaction (the producer needs `transactionalID`), waiting
    /// for the one open, if any, to end.
    pub async fn begin(&self) -> Result<Transaction, Error> {
        let Some(transactional) = &self.transactional else {
            return Err(Error::Unsupported {
                name: self.name().to_string(),
                reason: "transactions need a transactional producer: set transactionalID".into(),
            });
        };
        Transaction::begin(self.handle.clone(), Arc::clone(&self.writer), transactional).await
    }

    /// Sends async delivery failures to `subscriber` from now on.
    pub async fn subscribe_errors(
        &self,
        subscriber: Recipient<DeliveryFailed>,
    ) -> Result<(), Error> {
        self.handle.ask(actor::SubscribeErrors(subscriber)).await
    }

    /// Delivers everything queued (waiting up to `writeTimeout`), then stops the
    /// actor. Messages that could not be delivered in time are handed back in the
    /// report. The component starts a new producer on the next
    /// [`Ekafka::producer`](crate::Ekafka::producer) call.
    pub async fn close(&self) -> Result<CloseReport, Error> {
        // New writes are refused at once, and a restart under way stops.
        self.handle.request_close();
        self.handle.ask(actor::Close).await?
    }

    /// Restarts and health.
    pub async fn status(&self) -> Result<ProducerStatus, Error> {
        self.handle.ask(actor::Status).await
    }

    #[cfg(feature = "testing")]
    /// Makes the librdkafka client fail fatally, as an idempotent producer does on
    /// an unrecoverable sequence error, so tests can watch the actor replace it.
    pub async fn simulate_fatal_error(&self, reason: &str) -> Result<(), Error> {
        self.handle
            .ask(actor::SimulateFatalError(reason.to_string()))
            .await?
    }
}
