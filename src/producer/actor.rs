//! The producer actor: owns the librdkafka client, restarts it when it fails, and
//! turns writes into per-message outcomes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::prelude::*;
use rdkafka::types::RDKafkaErrorCode;

use super::balancer::BalancerAdapter;
use super::client::{Blocked, Client, ClientError, DeliveryFailed, Pending, Shared};
use super::report::{CloseReport, Outcome, WriteReport};
use super::tracker::Tracker;
use crate::config::ProducerConfig;
use crate::error::{Error, ProduceError, ProduceErrorKind, Refusal};
use crate::interceptor::{Admitted, Chain, ClientInfo};
use crate::message::Message;
use crate::supervision::{Escalator, RestartPolicy, RestartTracker};

const KIND: &str = "producer";

/// Everything needed to create (and re-create) the client.
pub(crate) struct ProducerSpec {
    pub(crate) name: String,
    pub(crate) config: ProducerConfig,
    pub(crate) client_config: rdkafka::ClientConfig,
    pub(crate) balancer: BalancerAdapter,
    pub(crate) interceptors: Chain,
    pub(crate) restart_policy: RestartPolicy,
    pub(crate) escalator: Escalator,
}

impl ProducerSpec {
    /// How long a writer waits for outcomes before calling the rest lost: enqueueing
    /// may take `writeTimeout` (full queue), delivery another `writeTimeout`
    /// (`message.timeout.ms`), plus a restart's backoff and a margin.
    fn outcome_deadline(&self) -> Duration {
        self.config.write_timeout * 2 + self.restart_policy.backoff_max + Duration::from_secs(5)
    }

    fn create_client(&self, generation: u64, shared: &Arc<Shared>) -> Result<Client, Error> {
        Client::create(
            &self.client_config,
            generation,
            self.balancer.clone(),
            Arc::clone(shared),
        )
        .map_err(|source| Error::Client {
            kind: KIND,
            name: self.name.clone(),
            source,
        })
    }
}

/// The current client, or why there is none.
struct Slot {
    client: Option<Arc<Client>>,
    generation: u64,
    restarts: RestartTracker,
    total_restarts: u64,
    gave_up: Option<String>,
}

/// What the actor and its restart futures share.
#[derive(Clone)]
struct Core {
    spec: Arc<ProducerSpec>,
    shared: Arc<Shared>,
    slot: Arc<Mutex<Slot>>,
}

impl Core {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn current(&self) -> Result<Arc<Client>, Error> {
        let slot = self.slot();
        match (&slot.client, &slot.gave_up) {
            (Some(client), _) => Ok(Arc::clone(client)),
            (None, Some(reason)) => Err(Error::GaveUp {
                kind: KIND,
                name: self.spec.name.clone(),
                restarts: slot.restarts.recent_restarts(),
                reason: reason.clone(),
            }),
            (None, None) => Err(Error::Closed {
                kind: KIND,
                name: self.spec.name.clone(),
            }),
        }
    }

    /// Replaces the client of `failed_generation` with a new one, after the
    /// policy's backoff. A second report of the same failure does nothing.
    async fn restart(self, failed_generation: u64, reason: String) {
        let old = {
            let mut slot = self.slot();
            if slot.generation != failed_generation || slot.client.is_none() {
                return;
            }
            slot.client.take()
        };
        if let Some(old) = old {
            // Fail what the dead client still holds, so its writers hear now,
            // and why. Purging and dropping join librdkafka threads: keep them
            // off the actor.
            let why = format!("the client was replaced: {reason}");
            let _ = tokio::task::spawn_blocking(move || {
                old.purge(why);
                drop(old);
            })
            .await;
        }
        let mut last_failure = reason;
        loop {
            let delay = self.slot().restarts.next_delay(&last_failure);
            let Ok(delay) = delay else {
                self.slot().gave_up = Some(last_failure);
                return;
            };
            tokio::time::sleep(delay).await;
            let generation = failed_generation + 1;
            match self.spec.create_client(generation, &self.shared) {
                Ok(client) => {
                    let mut slot = self.slot();
                    slot.client = Some(Arc::new(client));
                    slot.generation = generation;
                    slot.total_restarts += 1;
                    tracing::info!(producer = %self.spec.name, generation, "producer client restarted");
                    return;
                }
                Err(e) => last_failure = e.to_string(),
            }
        }
    }

    /// Enqueues what a blocked write still holds: waits for queue space, or
    /// restarts a failed client, for at most `writeTimeout`.
    async fn resume(self, mut blocked: Blocked, mut pending: Pending, tracker: Arc<Tracker>) {
        let give_up_at = Instant::now() + self.spec.config.write_timeout;
        loop {
            match blocked {
                Blocked::QueueFull => self.shared.wait_for_space(Duration::from_millis(100)).await,
                Blocked::Fatal => {
                    let generation = self.slot().generation;
                    self.clone()
                        .restart(
                            generation,
                            "the client reported a fatal error while writing".into(),
                        )
                        .await
                }
            }
            let client = match self.current() {
                Ok(client) => client,
                Err(e) => {
                    return fail_all(
                        &tracker,
                        pending,
                        ProduceErrorKind::ProducerDown,
                        &e.to_string(),
                    )
                }
            };
            let config = &self.spec.config;
            match client.enqueue(
                config.topic.as_deref(),
                &tracker,
                config.async_writes,
                &mut pending,
            ) {
                Ok(()) => return,
                Err(again) => blocked = again,
            }
            if Instant::now() >= give_up_at {
                let reason = format!(
                    "the producer queue stayed full for writeTimeout ({:?})",
                    config.write_timeout
                );
                return fail_all(
                    &tracker,
                    pending,
                    ProduceErrorKind::Kafka(RDKafkaErrorCode::QueueFull),
                    &reason,
                );
            }
        }
    }
}

fn fail_all(tracker: &Tracker, pending: Pending, kind: ProduceErrorKind, reason: &str) {
    for (index, message) in pending {
        tracker.complete(
            index,
            Outcome::Failed(ProduceError {
                kind: kind.clone(),
                reason: reason.to_string(),
                message: Box::new(message),
            }),
        );
    }
}

/// The supervised producer actor. Users hold a [`Producer`](super::Producer) handle.
pub struct ProducerActor {
    core: Core,
    info: ClientInfo,
    closed: Arc<AtomicBool>,
}

impl ProducerActor {
    pub(crate) fn new(spec: ProducerSpec, closed: Arc<AtomicBool>) -> Result<Self, Error> {
        let shared = Arc::new(Shared::new(spec.name.clone()));
        let client = spec.create_client(0, &shared)?;
        let info = ClientInfo {
            kind: crate::interceptor::ClientKind::Producer,
            name: spec.name.clone(),
            topic: spec.config.topic.clone(),
        };
        let slot = Slot {
            client: Some(Arc::new(client)),
            generation: 0,
            restarts: RestartTracker::new(
                spec.restart_policy.clone(),
                KIND,
                &spec.name,
                spec.escalator.clone(),
            ),
            total_restarts: 0,
            gave_up: None,
        };
        Ok(ProducerActor {
            core: Core {
                spec: Arc::new(spec),
                shared,
                slot: Arc::new(Mutex::new(slot)),
            },
            info,
            closed,
        })
    }

    fn closed_error(&self) -> Error {
        Error::Closed {
            kind: KIND,
            name: self.core.spec.name.clone(),
        }
    }
}

impl Actor for ProducerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        *self
            .core
            .shared
            .failure_sink
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(ctx.address().recipient());
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.closed.store(true, Ordering::SeqCst);
        // Dropped without `close`: still deliver what is queued, off this thread.
        if let Some(client) = self.core.slot().client.take() {
            let timeout = self.core.spec.config.write_timeout;
            std::thread::spawn(move || client.flush_or_purge(timeout));
        }
    }
}

/// Write messages; answers with one outcome per message.
#[derive(Message)]
#[rtype(result = "Result<WriteReport, Error>")]
pub(crate) struct Write(pub(crate) Vec<Message>);

impl Handler<Write> for ProducerActor {
    type Result = ResponseFuture<Result<WriteReport, Error>>;

    fn handle(&mut self, Write(messages): Write, ctx: &mut Self::Context) -> Self::Result {
        if self.closed.load(Ordering::SeqCst) {
            let error = self.closed_error();
            return Box::pin(async move { Err(error) });
        }
        let started = Instant::now();
        let chain = self.core.spec.interceptors.clone();
        let info = self.info.clone();
        let messages = match chain.before_write(&info, messages) {
            Admitted::Pass(messages) => messages,
            Admitted::Rejected { depth, report } => {
                chain.after_write(depth, &info, &report, started.elapsed());
                return Box::pin(async move { Ok(report) });
            }
        };
        let client = match self.core.current() {
            Ok(client) => client,
            Err(error) => return Box::pin(async move { Err(error) }),
        };
        let tracker = Arc::new(Tracker::new(messages.len()));
        let mut pending: Pending = messages.into_iter().enumerate().collect();
        let config = &self.core.spec.config;
        if let Err(blocked) = client.enqueue(
            config.topic.as_deref(),
            &tracker,
            config.async_writes,
            &mut pending,
        ) {
            // Hold the mailbox until this write is fully queued, so later writes
            // cannot overtake it.
            let resume = self
                .core
                .clone()
                .resume(blocked, pending, Arc::clone(&tracker));
            ctx.wait(resume.into_actor(self));
        }
        let deadline = self.core.spec.outcome_deadline();
        Box::pin(async move {
            let report = WriteReport::new(tracker.outcomes(deadline).await);
            chain.after_write(chain.depth(), &info, &report, started.elapsed());
            Ok(report)
        })
    }
}

/// Flush, then stop for good.
#[derive(Message)]
#[rtype(result = "Result<CloseReport, Error>")]
pub(crate) struct Close;

impl Handler<Close> for ProducerActor {
    type Result = AtomicResponse<Self, Result<CloseReport, Error>>;

    fn handle(&mut self, _: Close, _ctx: &mut Self::Context) -> Self::Result {
        self.closed.store(true, Ordering::SeqCst);
        self.core.shared.start_closing();
        let client = self.core.slot().client.take();
        let shared = Arc::clone(&self.core.shared);
        let timeout = self.core.spec.config.write_timeout;
        let flush = async move {
            if let Some(client) = client {
                let _ = tokio::task::spawn_blocking(move || {
                    client.flush_or_purge(timeout);
                    drop(client);
                })
                .await;
            }
            Ok(CloseReport {
                undelivered: shared.take_undelivered(),
            })
        };
        AtomicResponse::new(Box::pin(flush.into_actor(self).map(|report, _act, ctx| {
            ctx.stop();
            report
        })))
    }
}

/// Sets where async delivery failures go.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SubscribeErrors(pub(crate) Recipient<DeliveryFailed>);

impl Handler<SubscribeErrors> for ProducerActor {
    type Result = ();

    fn handle(&mut self, SubscribeErrors(recipient): SubscribeErrors, _ctx: &mut Self::Context) {
        *self
            .core
            .shared
            .error_subscriber
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(recipient);
    }
}

impl Handler<ClientError> for ProducerActor {
    type Result = ();

    fn handle(&mut self, error: ClientError, ctx: &mut Self::Context) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let fatal = self.core.current().ok().and_then(|c| c.fatal_error());
        let reason = match (fatal, error.code) {
            (Some(reason), _) => reason,
            // librdkafka would retry a refused login or TLS handshake forever
            // while writes wait for their timeout. Like a fatal error, it fails what the client
            // holds now, and restarts count against the limit, so wrong
            // credentials end in an escalation that says so.
            (None, Some(code)) => match Refusal::of(code) {
                // A missing ACL fails the messages it concerns, not the client.
                Some(Refusal::Authorization) | None => return,
                Some(refusal) => format!("{}: {}", refusal.label(), error.reason),
            },
            _ => return,
        };
        tracing::error!(producer = %self.core.spec.name, %reason, event = %error.reason, "producer client failed; restarting it");
        let restart = self.core.clone().restart(error.generation, reason);
        ctx.wait(restart.into_actor(self));
    }
}

/// Raise a fatal error in the current client (for testing supervision).
#[derive(Message)]
#[rtype(result = "Result<(), Error>")]
pub(crate) struct SimulateFatalError(pub(crate) String);

impl Handler<SimulateFatalError> for ProducerActor {
    type Result = Result<(), Error>;

    fn handle(
        &mut self,
        SimulateFatalError(reason): SimulateFatalError,
        _ctx: &mut Self::Context,
    ) -> Self::Result {
        let client = self.core.current()?;
        client
            .trigger_fatal_error(&reason)
            .map_err(|reason| Error::FaultInjection { reason })
    }
}

/// The producer's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStatus {
    /// Client restarts since the producer started.
    pub restarts: u64,
    /// Why the producer stopped restarting, if it did.
    pub gave_up: Option<String>,
}

#[derive(Message)]
#[rtype(result = "ProducerStatus")]
pub(crate) struct Status;

impl Handler<Status> for ProducerActor {
    type Result = MessageResult<Status>;

    fn handle(&mut self, _: Status, _ctx: &mut Self::Context) -> Self::Result {
        let slot = self.core.slot();
        MessageResult(ProducerStatus {
            restarts: slot.total_restarts,
            gave_up: slot.gave_up.clone(),
        })
    }
}
