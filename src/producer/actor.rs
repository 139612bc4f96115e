//! The producer actor: owns the librdkafka client, restarts it when it fails, and
//! turns writes into per-message outcomes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use rdkafka::types::RDKafkaErrorCode;

use super::balancer::BalancerAdapter;
use super::client::{Blocked, Client, ClientError, DeliveryFailed, Pending, Shared, SizeLimit};
use super::reports::{self, ReportSource as _, WriteSizes};
use super::tracker::Tracker;
use crate::config::ProducerConfig;
use crate::error::Error;
use crate::handle::ActorHandle;
use crate::interceptor::{Admitted, Chain, ClientInfo};
use crate::observe::{trace, ProducerMetrics};
use crate::record::Message;
use crate::record::{CloseReport, Outcome, WriteReport};
use crate::record::{ProduceError, ProduceErrorKind};
use crate::supervision::{
    client_failure, AuthorizationScope, Escalator, Incarnations, RestartPolicy, Slot, Supervisor,
};
use tracing::Instrument as _;

const KIND: &str = "producer";

/// A handle on a producer's actor: what a [`Producer`](super::Producer) and
/// its transactions talk to.
pub(crate) type ProducerHandle = ActorHandle<ProducerActor, Arc<Client>>;

/// What every write of one producer shares: its default topic, named by each
/// write's span, and whether its messages carry the caller's trace.
#[derive(Debug, Clone)]
pub(crate) struct Sending {
    /// `topic` from the config.
    pub(crate) topic: Option<Arc<str>>,
    /// `enableTraceInterceptor`: with OpenTelemetry and a trace active, each
    /// message without a `traceparent` gets the write's span context.
    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    pub(crate) propagate_trace: bool,
}

/// Writes `messages` through the actor behind `handle`, in a send span naming
/// the producer's default topic and, with OpenTelemetry and
/// `propagate_trace`, carrying its trace context in the messages' headers.
pub(crate) async fn write(
    handle: &ProducerHandle,
    sending: &Sending,
    messages: impl IntoIterator<Item = Message>,
) -> Result<WriteReport, Error> {
    let (messages, span) = traced(handle, sending, messages);
    handle.ask(Write(messages)).instrument(span).await?
}

/// Like [`write`], but answers once the messages are queued in librdkafka,
/// before their delivery: with the messages refused before sending, and
/// the write's report to come.
pub(crate) async fn queue(
    handle: &ProducerHandle,
    sending: &Sending,
    messages: impl IntoIterator<Item = Message>,
) -> Result<Queued, Error> {
    let (messages, span) = traced(handle, sending, messages);
    handle.ask(Queue(messages)).instrument(span).await
}

/// A write's send span, and its messages carrying the span's trace context
/// when `sending` says so.
fn traced(
    handle: &ProducerHandle,
    sending: &Sending,
    messages: impl IntoIterator<Item = Message>,
) -> (Vec<Message>, tracing::Span) {
    #[cfg_attr(not(feature = "opentelemetry"), allow(unused_mut))]
    let mut messages: Vec<Message> = messages.into_iter().collect();
    let span = trace::send_span(handle.name(), sending.topic.as_deref(), messages.len());
    #[cfg(feature = "opentelemetry")]
    if sending.propagate_trace {
        trace::inject(&span, &mut messages);
    }
    (messages, span)
}

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

/// Enqueues what a blocked write still holds: waits for queue space, or
/// restarts a failed client, for at most `writeTimeout`.
async fn resume(
    supervisor: Supervisor<ProducerClients>,
    mut blocked: Blocked,
    mut pending: Pending,
    tracker: Arc<Tracker>,
) {
    let clients = supervisor.spec();
    let config = &clients.spec.config;
    let give_up_at = Instant::now() + config.write_timeout;
    loop {
        match blocked {
            Blocked::QueueFull => {
                clients
                    .shared
                    .wait_for_space(Duration::from_millis(100))
                    .await
            }
            Blocked::Fatal(incarnation) => {
                let reason = "the client reported a fatal error while writing";
                // Past the limit the escalation is what `current` answers below.
                let _ = supervisor.fail(incarnation, reason.into()).await;
            }
        }
        let client = match supervisor.slot().ready().await {
            Ok((_, client)) => client,
            Err(e) => {
                return fail_all(
                    &tracker,
                    pending,
                    ProduceErrorKind::ProducerDown,
                    &e.to_string(),
                )
            }
        };
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
                "refused by this producer before sending, not by the broker: its queue \
                 (librdkafka's queue.buffering.max.messages and .kbytes) stayed full for \
                 writeTimeout ({:?})",
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

fn fail_all(tracker: &Tracker, pending: Pending, kind: ProduceErrorKind, reason: &str) {
    for (index, message) in pending.into_rest() {
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
pub(crate) struct ProducerActor {
    supervisor: Supervisor<ProducerClients>,
    /// Shared with every write's completion, which outlives the handler.
    info: Arc<ClientInfo>,
    /// The task serving delivery reports on this thread, from `started` to
    /// `stopped`, while the writes are batches (see `reports`).
    serving: Option<tokio::task::JoinHandle<()>>,
    write_sizes: WriteSizes,
    /// `topic` from the config, shared by the deliveries of messages naming none.
    default_topic: Option<Arc<str>>,
}

impl ProducerActor {
    pub(crate) fn new(mut spec: ProducerSpec) -> Result<Self, Error> {
        let shared = Arc::new(
            Shared::new(spec.name.clone())
                .recording(spec.metrics.take())
                .limiting(spec.size_limit.take()),
        );
        let first = spec.create_client(0, &shared)?;
        let info = Arc::new(ClientInfo {
            kind: crate::interceptor::ClientKind::Producer,
            name: spec.name.clone(),
            topic: spec.config.topic.clone(),
        });
        let (name, policy, escalator) = (
            spec.name.clone(),
            spec.restart_policy.clone(),
            spec.escalator.clone(),
        );
        let default_topic = spec.config.topic.as_deref().map(Arc::from);
        let clients = ProducerClients { spec, shared };
        Ok(ProducerActor {
            supervisor: Supervisor::new(clients, first, KIND, &name, policy, escalator),
            info,
            serving: None,
            write_sizes: WriteSizes::default(),
            default_topic,
        })
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

/// Write messages; answers with one outcome per message.
#[derive(Message)]
#[rtype(result = "Result<WriteReport, Error>")]
pub(crate) struct Write(pub(crate) Vec<Message>);

impl Handler<Write> for ProducerActor {
    type Result = ResponseFuture<Result<WriteReport, Error>>;

    fn handle(&mut self, Write(messages): Write, ctx: &mut Self::Context) -> Self::Result {
        self.write(messages, ctx).1
    }
}

/// Put messages on librdkafka's queue; answers once they are there.
#[derive(Message)]
#[rtype(result = "Queued")]
pub(crate) struct Queue(pub(crate) Vec<Message>);

/// A write queued by [`Queue`].
#[derive(Debug)]
pub(crate) struct Queued {
    /// The messages refused before they were sent (no topic, too large, a
    /// topic name that cannot be, rejected by an interceptor, ...), by their
    /// index in the write.
    pub(crate) refused: Vec<usize>,
    /// Why the first of them was refused.
    pub(crate) first_refusal: Option<ProduceError>,
    /// The write's report, once every message has its outcome.
    pub(crate) report: tokio::sync::oneshot::Receiver<Result<WriteReport, Error>>,
}

impl Handler<Queue> for ProducerActor {
    type Result = MessageResult<Queue>;

    fn handle(&mut self, Queue(messages): Queue, ctx: &mut Self::Context) -> Self::Result {
        let (refused, report) = self.write(messages, ctx);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        actix::spawn(async move {
            let _ = sender.send(report.await);
        });
        let (refused, first_refusal) = refused.list();
        MessageResult(Queued {
            refused,
            first_refusal,
            report: receiver,
        })
    }
}

/// Where a write's messages refused before sending are found.
enum Refused {
    /// In its tracker: those failed so far were refused on the way in.
    Tracked(Arc<Tracker>),
    /// An interceptor rejected the whole write: all `count`, the first
    /// saying why.
    Rejected {
        count: usize,
        first: Option<ProduceError>,
    },
    /// No client took it: none, the write fails as a whole.
    Unsent,
}

impl Refused {
    /// The indexes of the refused messages, and the first one's error.
    fn list(self) -> (Vec<usize>, Option<ProduceError>) {
        match self {
            Refused::Tracked(tracker) => {
                let failures = tracker.failures_so_far();
                let first = failures.first().map(|(_, failure)| failure.clone());
                (
                    failures.into_iter().map(|(index, _)| index).collect(),
                    first,
                )
            }
            Refused::Rejected { count, first } => ((0..count).collect(), first),
            Refused::Unsent => (Vec::new(), None),
        }
    }
}

impl ProducerActor {
    /// Queues `messages` (or the part that fits, the rest following before
    /// the mailbox moves on); returns where its messages refused before
    /// sending are found, and its report to come.
    fn write(
        &mut self,
        messages: Vec<Message>,
        ctx: &mut Context<Self>,
    ) -> (Refused, ResponseFuture<Result<WriteReport, Error>>) {
        let client = match self.supervisor.slot().current() {
            Ok((_, client)) => client,
            Err(error) => return (Refused::Unsent, Box::pin(async move { Err(error) })),
        };
        let started = Instant::now();
        let chain = self.clients().spec.interceptors.clone();
        let info = Arc::clone(&self.info);
        let messages = match chain.before_write(&info, messages) {
            Admitted::Pass(messages) => messages,
            Admitted::Rejected { depth, report } => {
                let report = report.name_topics(info.topic.as_deref());
                let shared = &self.supervisor.spec().shared;
                shared.wrote(&report, info.topic.as_deref(), started.elapsed());
                chain.after_write(depth, &info, &report, started.elapsed());
                let rejected = Refused::Rejected {
                    count: report.outcomes().len(),
                    first: report.failures().next().cloned(),
                };
                return (rejected, Box::pin(async move { Ok(report) }));
            }
        };
        let shared = &self.supervisor.spec().shared;
        if self.write_sizes.record(messages.len(), &shared.serving) {
            client.bell().ring_both();
        }
        if shared.serving.on_actor() {
            // Reports waiting are served before more is queued, so that a busy
            // mailbox cannot starve the serving task (a wake from librdkafka's
            // thread waits behind the thread's own tasks), which would shrink
            // what is in flight and with it librdkafka's batches.
            client.serve_reports();
        }
        let tracker = Tracker::new(messages.len(), self.default_topic.clone());
        let mut pending = Pending::new(messages);
        let config = &self.clients().spec.config;
        if let Err(blocked) = client.enqueue(
            config.topic.as_deref(),
            &tracker,
            config.async_writes,
            &mut pending,
        ) {
            // Hold the mailbox until this write is fully queued, so later writes
            // cannot overtake it.
            let resume = resume(
                self.supervisor.clone(),
                blocked,
                pending,
                Arc::clone(&tracker),
            );
            ctx.wait(resume.into_actor(self));
        }
        let deadline = self.clients().spec.outcome_deadline();
        let shared = Arc::clone(shared);
        let outcomes = Arc::clone(&tracker);
        let report = Box::pin(async move {
            let report = WriteReport::new(outcomes.outcomes(deadline).await)
                .name_topics(info.topic.as_deref());
            shared.wrote(&report, info.topic.as_deref(), started.elapsed());
            chain.after_write(chain.depth(), &info, &report, started.elapsed());
            Ok(report)
        });
        (Refused::Tracked(tracker), report)
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
