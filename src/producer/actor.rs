//! The producer actor: owns the librdkafka client, restarts it when it fails,
//! closes it, and sends its errors where they go. Writes do not pass through
//! it: they queue their messages on their own thread (see `writer`).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::balancer::BalancerAdapter;
use super::client::{Client, ClientError, DeliveryFailed, Shared, SizeLimit};
use super::reports;
use super::writer::{ReplaceClient, WriterParts};
use crate::config::ProducerConfig;
use crate::error::Error;
use crate::handle::ActorHandle;
use crate::interceptor::Chain;
use crate::observe::ProducerMetrics;
use crate::record::CloseReport;
use crate::supervision::{
    client_failure, AuthorizationScope, Escalator, Incarnations, RestartPolicy, Slot, Supervisor,
};

const KIND: &str = "producer";

/// A handle on a producer's actor: what a [`Producer`](super::Producer) and
/// its transactions talk to.
pub(crate) type ProducerHandle = ActorHandle<ProducerActor, Arc<Client>>;

/// Everything needed to create (and re-create) the client.
pub(crate) struct ProducerSpec {
    pub(crate) name: String,
    pub(crate) config: ProducerConfig,
    pub(crate) client_config: rdkafka::ClientConfig,
    pub(crate) balancer: BalancerAdapter,
    pub(crate) interceptors: Chain,
    pub(crate) restart_policy: RestartPolicy,
    pub(crate) escalator: Escalator,
    /// What it records in the component's metrics, when they are on.
    pub(crate) metrics: Option<ProducerMetrics>,
    /// Its largest message and the key that sets it.
    pub(crate) size_limit: Option<SizeLimit>,
    /// `enableTraceInterceptor`.
    pub(crate) propagate_trace: bool,
}

impl ProducerSpec {
    /// How long a writer waits for outcomes before calling the rest lost: enqueueing
    /// may take `writeTimeout` (full queue), delivery another `writeTimeout`
    /// (`message.timeout.ms`), plus a restart's backoff and a margin.
    fn outcome_deadline(&self) -> Duration {
        self.config.write_timeout * 2 + self.restart_policy.backoff_max + Duration::from_secs(5)
    }

    fn create_client(&self, generation: u64, shared: &Arc<Shared>) -> Result<Arc<Client>, Error> {
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

/// How the producer's clients are started, replaced and closed, for its
/// [`Supervisor`].
pub(crate) struct ProducerClients {
    spec: ProducerSpec,
    shared: Arc<Shared>,
}

impl Incarnations for ProducerClients {
    type Client = Arc<Client>;
    type Closed = CloseReport;

    async fn start(&self, incarnation: u64) -> Result<Arc<Client>, Error> {
        // A transactional client registers its id on its first `begin`.
        self.spec.create_client(incarnation, &self.shared)
    }

    async fn discard(&self, client: Arc<Client>, reason: &str) {
        // Fail what the dead client still holds, so its writers hear now, and
        // why. Purging and dropping join librdkafka threads: keep them off the
        // actor.
        client.retire();
        let why = format!("{reason} (the client was replaced)");
        let purged = tokio::task::spawn_blocking(move || {
            client.purge(why);
            drop(client);
        })
        .await;
        if let Err(panic) = purged {
            // Its writers still hear, as lost, at their outcome deadline.
            tracing::error!(
                producer = %self.spec.name,
                error = %panic,
                "purging a replaced client failed; its queued messages will be reported lost"
            );
        }
    }

    async fn close(&self, client: Arc<Client>, deadline: Duration) -> Result<CloseReport, Error> {
        // A flush that panicked says nothing of what it delivered: not a clean close.
        client.retire();
        tokio::task::spawn_blocking(move || {
            client.flush_or_purge(deadline);
            drop(client);
        })
        .await
        .map_err(|_| Error::ActorStopped {
            kind: KIND,
            name: self.spec.name.clone(),
        })?;
        Ok(CloseReport {
            undelivered: self.shared.take_undelivered(),
        })
    }
}

/// The supervised producer actor. Users hold a [`Producer`](super::Producer) handle.
pub(crate) struct ProducerActor {
    supervisor: Supervisor<ProducerClients>,
    /// The task serving delivery reports on this thread, from `started` to
    /// `stopped`, while the writes are batches (see `reports`).
    serving: Option<tokio::task::JoinHandle<()>>,
}

impl ProducerActor {
    pub(crate) fn new(mut spec: ProducerSpec) -> Result<Self, Error> {
        let shared = Arc::new(
            Shared::new(spec.name.clone())
                .recording(spec.metrics.take())
                .limiting(spec.size_limit.take()),
        );
        let first = spec.create_client(0, &shared)?;
        let (name, policy, escalator) = (
            spec.name.clone(),
            spec.restart_policy.clone(),
            spec.escalator.clone(),
        );
        let clients = ProducerClients { spec, shared };
        Ok(ProducerActor {
            supervisor: Supervisor::new(clients, first, KIND, &name, policy, escalator),
            serving: None,
        })
    }

    /// What the producer's writer takes from its spec.
    pub(crate) fn writer_parts(&self) -> WriterParts {
        let ProducerClients { spec, shared } = self.clients();
        WriterParts {
            name: Arc::from(spec.name.as_str()),
            slot: self.slot(),
            shared: Arc::clone(shared),
            interceptors: spec.interceptors.clone(),
            default_topic: spec.config.topic.clone(),
            propagate_trace: spec.propagate_trace,
            async_writes: spec.config.async_writes,
            write_timeout: spec.config.write_timeout,
            outcome_deadline: spec.outcome_deadline(),
        }
    }

    /// Where handles read whether the producer is closed.
    pub(crate) fn slot(&self) -> Arc<Slot<Arc<Client>>> {
        Arc::clone(self.supervisor.slot())
    }

    /// Whether the current client reached a broker.
    pub(crate) fn probe(&self) -> Arc<crate::observe::ProducerProbe> {
        Arc::clone(&self.clients().shared.probe)
    }

    fn clients(&self) -> &ProducerClients {
        self.supervisor.spec()
    }
}

impl Actor for ProducerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let shared = &self.clients().shared;
        *shared
            .failure_sink
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(ctx.address().recipient());
        let serving = reports::serve_on_actor(self.slot(), Arc::clone(&shared.serving));
        self.serving = Some(actix::spawn(serving));
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if let Some(serving) = self.serving.take() {
            serving.abort();
        }
        // Dropped without `close`: still deliver what is queued, off this thread.
        if let Some(client) = self.supervisor.slot().abandon() {
            client.retire();
            let timeout = self.clients().spec.config.write_timeout;
            std::thread::spawn(move || client.flush_or_purge(timeout));
        }
    }
}

impl Handler<ReplaceClient> for ProducerActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, failed: ReplaceClient, _ctx: &mut Self::Context) -> Self::Result {
        let supervisor = self.supervisor.clone();
        // Answered once replaced; past the limit, writes answer with the
        // escalation. A report about a client already replaced does nothing.
        let replace = async move {
            let _ = supervisor.fail(failed.incarnation, failed.reason).await;
        };
        Box::pin(replace.into_actor(self))
    }
}

/// Flush, then stop for good.
#[derive(Message)]
#[rtype(result = "Result<CloseReport, Error>")]
pub(crate) struct Close;

impl Handler<Close> for ProducerActor {
    type Result = AtomicResponse<Self, Result<CloseReport, Error>>;

    fn handle(&mut self, _: Close, _ctx: &mut Self::Context) -> Self::Result {
        let clients = self.clients();
        clients.shared.start_closing();
        let timeout = clients.spec.config.write_timeout;
        let supervisor = self.supervisor.clone();
        let close = async move {
            match supervisor.close(timeout).await? {
                Some(report) => Ok(report),
                // Closed before: anything undelivered was handed back then.
                None => Ok(CloseReport {
                    undelivered: supervisor.spec().shared.take_undelivered(),
                }),
            }
        };
        AtomicResponse::new(Box::pin(close.into_actor(self).map(|report, _act, ctx| {
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
            .clients()
            .shared
            .error_subscriber
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(recipient);
    }
}

impl Handler<ClientError> for ProducerActor {
    type Result = ();

    fn handle(&mut self, error: ClientError, ctx: &mut Self::Context) {
        let Ok((incarnation, client)) = self.supervisor.slot().current() else {
            return;
        };
        if incarnation != error.generation {
            return; // about a client already replaced
        }
        if let Some((code, fatal)) = client.fatal_error_code() {
            if super::client::is_fencing(code) {
                // Another producer has the transactional id now: a new
                // client would fence it in turn. Stop for good.
                let supervisor = self.supervisor.clone();
                let reason = format!(
                    "fenced by a newer producer with its transactionalID: {fatal} ({code:?})"
                );
                let stop = async move {
                    let _ = supervisor.give_up(incarnation, reason).await;
                };
                ctx.wait(stop.into_actor(self));
                return;
            }
        }
        let reason = match (client.fatal_error(), error.code) {
            (Some(reason), _) => reason,
            (None, Some(code)) => match client_failure(code, AuthorizationScope::Messages) {
                Some(failure) => failure.describe(&error.reason),
                None => return,
            },
            (None, None) => return,
        };
        let supervisor = self.supervisor.clone();
        let restart = async move {
            // Past the limit, writes answer with the escalation.
            let _ = supervisor.fail(incarnation, reason).await;
        };
        ctx.wait(restart.into_actor(self));
    }
}

/// Raise a fatal error in the current client (for testing supervision).
#[cfg(feature = "testing")]
#[derive(Message)]
#[rtype(result = "Result<(), Error>")]
pub(crate) struct SimulateFatalError(pub(crate) String);

#[cfg(feature = "testing")]
impl Handler<SimulateFatalError> for ProducerActor {
    type Result = Result<(), Error>;

    fn handle(
        &mut self,
        SimulateFatalError(reason): SimulateFatalError,
        _ctx: &mut Self::Context,
    ) -> Self::Result {
        let (_, client) = self.supervisor.slot().current()?;
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
        let supervision = self.supervisor.slot().status();
        MessageResult(ProducerStatus {
            restarts: supervision.restarts,
            gave_up: supervision.gave_up.map(|escalation| escalation.reason),
        })
    }
}
