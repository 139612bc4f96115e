//! One librdkafka producer instance: its callbacks, putting messages on its
//! queue, and serving its delivery reports.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Recipient;
use rdkafka::client::ClientContext;
use rdkafka::config::{FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::producer::{
    BaseProducer, DeliveryResult, Producer as _, ProducerContext, PurgeConfig,
};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::Notify;

use super::balancer::BalancerAdapter;
use super::reports::{self, Bell, ReportServing, ReportSource};
use super::tracker::{DeliveryTag, Tracker};
use crate::config::topic_name_problem;
use crate::native::produce::{Outgoing, Topics};
use crate::native::queue::{QueueHandle, Wake};
use crate::observe::{ProducerMetrics, ProducerProbe};
use crate::record::Outcome;
use crate::record::{Delivery, Message, WriteReport};
use crate::record::{ProduceError, ProduceErrorKind};

/// A delivery failure of an `async` producer, sent to its error subscriber.
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "()")]
pub struct DeliveryFailed {
    /// The producer's configured name.
    pub producer: String,
    /// What failed, with the message.
    pub error: ProduceError,
}

/// Sent to the producer actor when its client reports an error, which may be fatal.
#[derive(Debug, actix::Message)]
#[rtype(result = "()")]
pub(crate) struct ClientError {
    pub(crate) generation: u64,
    pub(crate) code: Option<RDKafkaErrorCode>,
    pub(crate) reason: String,
}

/// State shared by the actor and every client instance it creates.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) error_subscriber: Mutex<Option<Recipient<DeliveryFailed>>>,
    pub(crate) failure_sink: Mutex<Option<Recipient<ClientError>>>,
    /// Signalled on deliveries while a writer waits for queue space.
    queue_space: Notify,
    space_waiters: AtomicUsize,
    /// While closing, failed deliveries are also collected for the close report.
    closing: AtomicBool,
    undelivered: Mutex<Vec<ProduceError>>,
    /// The client's latest error report (a broker down, a refused login), added
    /// to messages that time out so their failure says why.
    last_client_error: Mutex<Option<String>>,
    has_client_error: AtomicBool,
    /// Why the messages librdkafka reports purged were purged: set before
    /// each purge and kept, because the actor's serving task or the client's
    /// helper thread may serve the purge's delivery reports after the purge
    /// call returned.
    purge_reason: Mutex<Option<String>>,
    /// Which side serves the clients' delivery reports (see `reports`).
    pub(crate) serving: Arc<ReportServing>,
    /// What the producer records in the component's metrics, when they are on.
    metrics: Option<ProducerMetrics>,
    /// Whether the current client reached a broker, for readiness checks.
    pub(crate) probe: Arc<ProducerProbe>,
    /// The largest message librdkafka sends, and the key that sets it.
    size_limit: Option<SizeLimit>,
}

/// The producer's largest message (`message.max.bytes`) and the config key
/// path that sets it, for the reason of a message refused as too large.
#[derive(Debug, Clone)]
pub(crate) struct SizeLimit {
    pub(crate) bytes: u64,
    pub(crate) key: String,
}

impl Shared {
    pub(crate) fn new(name: String) -> Self {
        Shared {
            name,
            error_subscriber: Mutex::new(None),
            failure_sink: Mutex::new(None),
            queue_space: Notify::new(),
            space_waiters: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            undelivered: Mutex::new(Vec::new()),
            last_client_error: Mutex::new(None),
            has_client_error: AtomicBool::new(false),
            purge_reason: Mutex::new(None),
            serving: Arc::default(),
            metrics: None,
            probe: Arc::default(),
            size_limit: None,
        }
    }

    /// Explains messages refused as too large with `limit`.
    pub(crate) fn limiting(self, size_limit: Option<SizeLimit>) -> Self {
        Shared { size_limit, ..self }
    }

    /// librdkafka refuses a message over `message.max.bytes` before sending
    /// it, with the broker's code and text ("Broker: Message size too
    /// large"): the reason says it was refused here, the size and the key.
    fn explain_size_refusal(&self, failure: &mut ProduceError) {
        let message = &failure.message;
        let size = message.key.as_ref().map_or(0, Vec::len)
            + message.value.as_ref().map_or(0, Vec::len)
            + message
                .headers
                .iter()
                .map(|header| header.key.len() + header.value.as_ref().map_or(0, Vec::len))
                .sum::<usize>();
        let topic = message.topic.as_deref().unwrap_or_default();
        let limit = match &self.size_limit {
            Some(limit) => format!(
                "its limit of {} bytes (librdkafka's message.max.bytes; raise {}, and \
                 the topic's max.message.bytes on the broker if the message is over that too)",
                limit.bytes, limit.key
            ),
            None => "its limit (librdkafka's message.max.bytes)".to_string(),
        };
        failure.reason = format!(
            "refused by this producer before sending, not by the broker: the message to \
             topic {topic:?} is about {size} bytes (key, value and headers), over {limit}"
        );
    }

    /// Records into `metrics` too.
    pub(crate) fn recording(self, metrics: Option<ProducerMetrics>) -> Self {
        Shared { metrics, ..self }
    }

    /// Counts a write's messages by topic and result, and its duration.
    /// Messages still on their way (`async = true`) count when delivered.
    pub(crate) fn wrote(
        &self,
        report: &WriteReport,
        default_topic: Option<&str>,
        elapsed: Duration,
    ) {
        let Some(metrics) = &self.metrics else { return };
        metrics.wrote(elapsed);
        metrics.count(report.outcomes().iter().filter_map(|outcome| {
            match outcome {
                Outcome::Delivered(delivery) => Some((&*delivery.topic, true)),
                Outcome::Failed(failure) => Some((
                    failure
                        .message
                        .topic
                        .as_deref()
                        .or(default_topic)
                        .unwrap_or_default(),
                    false,
                )),
                Outcome::Enqueued => None,
            }
        }));
    }

    fn set_purge_reason(&self, reason: String) {
        *self.purge_reason.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }

    fn record_client_error(&self, code: Option<RDKafkaErrorCode>, reason: &str) {
        let mut last = self
            .last_client_error
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // "1/1 brokers are down" follows the error that says why; keep that one.
        if code == Some(RDKafkaErrorCode::AllBrokersDown) && last.is_some() {
            return;
        }
        *last = Some(reason.to_string());
        self.has_client_error.store(true, Ordering::Release);
    }

    /// A delivery shows the connection works again: older errors explain nothing.
    fn clear_client_error(&self) {
        // Read first: this runs for every delivered message, and a swap would
        // write the line every time.
        if self.has_client_error.load(Ordering::Relaxed)
            && self.has_client_error.swap(false, Ordering::AcqRel)
        {
            *self
                .last_client_error
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// Puts what the client knows in front of a failure librdkafka describes
    /// only by its code, so the reason leads with the cause: a timeout gets the
    /// last client error, a purge why it was purged.
    fn explain(&self, failure: &mut ProduceError) {
        let context = match &failure.kind {
            ProduceErrorKind::Kafka(RDKafkaErrorCode::MessageTimedOut) => self
                .last_client_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map(|e| format!("last client error: {e}")),
            ProduceErrorKind::Kafka(
                RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight,
            ) => self
                .purge_reason
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            _ => None,
        };
        if let Some(cause) = context {
            failure.reason = format!("{cause} ({})", failure.reason);
        }
    }

    pub(crate) fn start_closing(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    pub(crate) fn take_undelivered(&self) -> Vec<ProduceError> {
        std::mem::take(&mut *self.undelivered.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Waits until a delivery frees queue space, or `limit` passes.
    pub(crate) async fn wait_for_space(&self, limit: Duration) {
        self.space_waiters.fetch_add(1, Ordering::SeqCst);
        let _ = tokio::time::timeout(limit, self.queue_space.notified()).await;
        self.space_waiters.fetch_sub(1, Ordering::SeqCst);
    }

    fn report_async_failure(&self, error: ProduceError) {
        let subscriber = self
            .error_subscriber
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match subscriber {
            // do_send: this runs while serving delivery reports and must not
            // block; failures are bounded by the messages that were queued.
            Some(recipient) => recipient.do_send(DeliveryFailed {
                producer: self.name.clone(),
                error,
            }),
            None => tracing::error!(
                producer = %self.name,
                error = %error,
                "async delivery failed and no error subscriber is set; subscribe one with Producer::subscribe_errors"
            ),
        }
    }
}

pub(crate) struct Context {
    generation: u64,
    balancer: BalancerAdapter,
    shared: Arc<Shared>,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        // A lost connection is logged (facility FAIL) with its cause; the error
        // event that follows may only count the brokers down.
        if facility == "FAIL" {
            self.shared
                .record_client_error(None, crate::telemetry::log_cause(message));
        }
        crate::telemetry::librdkafka_log(
            &format!("producer {}", self.shared.name),
            level,
            facility,
            message,
        );
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        if let Some(metrics) = &self.shared.metrics {
            metrics.statistics(&statistics);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(producer = %self.shared.name, error = %error, reason, "producer client error");
        self.shared
            .record_client_error(error.rdkafka_error_code(), reason);
        // A fatal error arrives as an ordinary error event carrying the underlying
        // code (the event's fatal flag does not reach us): the actor asks the
        // client whether it is in its fatal state. Other errors (broker down,
        // transport) librdkafka retries on its own.
        let sink = self
            .shared
            .failure_sink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(sink) = sink {
            sink.do_send(ClientError {
                generation: self.generation,
                code: error.rdkafka_error_code(),
                reason: reason.to_string(),
            });
        }
    }
}

impl ProducerContext<BalancerAdapter> for Context {
    type DeliveryOpaque = DeliveryTag;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: DeliveryTag) {
        if self.shared.space_waiters.load(Ordering::Relaxed) > 0 {
            self.shared.queue_space.notify_waiters();
        }
        let slot = tag.slot();
        let outcome = match result {
            Ok(m) => {
                self.shared.clear_client_error();
                if !self.shared.probe.has_reached() {
                    self.shared.probe.reached();
                }
                let topic = slot
                    .and_then(|(tracker, _)| tracker.shared_topic())
                    .map_or_else(|| Arc::from(m.topic()), Arc::clone);
                Outcome::Delivered(Delivery {
                    topic,
                    partition: m.partition(),
                    offset: m.offset(),
                    timestamp: m.timestamp().to_millis(),
                })
            }
            Err((error, m)) => {
                let mut failure = ProduceError::kafka(error, message_from(m), m.topic());
                self.shared.explain(&mut failure);
                if self.shared.closing.load(Ordering::Relaxed) {
                    self.shared
                        .undelivered
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(failure.clone());
                }
                Outcome::Failed(failure)
            }
        };
        match slot {
            Some((tracker, index)) => tracker.complete(index, outcome),
            None => {
                // An async write's message: its write counted it as enqueued.
                if let Some(metrics) = &self.shared.metrics {
                    let ok = matches!(outcome, Outcome::Delivered(_));
                    metrics.count([(m_topic(result), ok)]);
                }
                if let Outcome::Failed(error) = outcome {
                    self.shared.report_async_failure(error);
                }
            }
        }
    }

    fn get_custom_partitioner(&self) -> Option<&BalancerAdapter> {
        self.balancer.balancer.as_ref().map(|_| &self.balancer)
    }
}

/// How long one wait for a broker's answer may hold the client.
const PROBE_ATTEMPT: Duration = Duration::from_secs(1);

/// Waits until a broker has answered the client (readiness: the producer
/// reached a broker before it wrote anything), the client is retired or
/// dropped. Each wait holds the client at most `PROBE_ATTEMPT`.
fn start_probe(client: &Arc<Client>, probe: Arc<ProducerProbe>) -> std::io::Result<()> {
    let client = Arc::downgrade(client);
    std::thread::Builder::new()
        .name("ekafka:probe".to_string())
        .spawn(move || loop {
            let Some(client) = client.upgrade() else {
                return;
            };
            if client.is_retired() || probe.has_reached() {
                return;
            }
            if a_broker_answered(&client) {
                probe.reached();
                return;
            }
            // Without a connection the wait can end at once: pace the
            // attempts.
            drop(client);
            std::thread::sleep(PROBE_ATTEMPT / 4);
        })
        .map(drop)
}

/// True once a broker has answered one of the metadata requests librdkafka
/// makes by itself on connecting (they carry the cluster id), waiting up to
/// `PROBE_ATTEMPT` for one.
///
/// The probe sends no request of its own on purpose: librdkafka's
/// application metadata request for "the topics the client knows" may let
/// the broker create them even with `allow.auto.create.topics = false`, so
/// a probe that ran while a write to a missing topic was pending created
/// that topic (seen on the embedded cluster, about one run in five).
fn a_broker_answered(client: &Client) -> bool {
    client
        .producer
        .client()
        .fetch_cluster_id(PROBE_ATTEMPT)
        .is_some()
}

/// The topic of a reported message.
fn m_topic<'a>(result: &'a DeliveryResult<'_>) -> &'a str {
    match result {
        Ok(m) | Err((_, m)) => m.topic(),
    }
}

/// Completes message `index` of a write as failed before it reached
/// librdkafka, handing the message back.
fn fail_now(
    tracker: &Tracker,
    index: usize,
    message: &mut Message,
    kind: ProduceErrorKind,
    reason: String,
) {
    let message = Box::new(std::mem::take(message));
    let failure = ProduceError {
        kind,
        reason,
        message,
    };
    tracker.refuse(index, failure);
}

/// Copies a reported message back into an owned one, so a failure returns the data.
fn message_from(m: &rdkafka::message::BorrowedMessage<'_>) -> Message {
    Message {
        topic: Some(m.topic().to_string()),
        partition: (m.partition() >= 0).then_some(m.partition()),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        headers: crate::record::owned_headers(m),
        timestamp: m.timestamp().to_millis(),
    }
}

/// Why enqueueing stopped before the end of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// librdkafka's queue (`queue.buffering.max.messages`) is full.
    QueueFull,
    /// The client of this incarnation failed fatally and must be replaced.
    Fatal(u64),
    /// The client is being closed, or was replaced: no more goes into it.
    Retired,
}

/// The messages of one write, of which `messages[next..]` are still to be
/// enqueued. Messages stay here until the whole write is queued: librdkafka
/// copies what it sends, and only a failure needs a message back.
pub(crate) struct Pending {
    messages: Vec<Message>,
    next: usize,
}

impl Pending {
    pub(crate) fn new(messages: Vec<Message>) -> Self {
        Pending { messages, next: 0 }
    }

    /// The messages not enqueued, with their index in the write.
    pub(crate) fn into_rest(self) -> impl Iterator<Item = (usize, Message)> {
        let next = self.next;
        self.messages.into_iter().enumerate().skip(next)
    }
}

/// Events (delivery reports mostly) served per turn of the actor's serving
/// task before it lets the actor's other work run; each report event carries
/// the messages of one produce response.
const EVENTS_PER_TURN: usize = 4;

/// A running librdkafka producer. Its delivery reports are served on the
/// actor's thread or on a helper thread of its own, see `reports`.
pub(crate) struct Client {
    /// The client's event queue, ringing `bell`. Declared before `producer`:
    /// a queue handle must be released before its client.
    reports: QueueHandle,
    /// Handles of the topics written to, by name, shared by the writers'
    /// threads; declared before `producer` for the same reason.
    topics: Topics,
    producer: BaseProducer<Context, BalancerAdapter>,
    bell: Arc<Bell>,
    /// Set on the actor's thread when the client is handed to another thread
    /// to be flushed or purged and dropped: the actor's serving task leaves
    /// it alone from then on, so it never holds the last reference and never
    /// drops the client (joining librdkafka's threads) on the actor's thread;
    /// and writes put nothing more in it.
    retired: AtomicBool,
}

impl Client {
    /// Creates the client and starts its helper thread.
    pub(crate) fn create(
        config: &rdkafka::ClientConfig,
        generation: u64,
        balancer: BalancerAdapter,
        shared: Arc<Shared>,
    ) -> Result<Arc<Self>, KafkaError> {
        let bell = Arc::new(Bell::new(Arc::clone(&shared.serving)));
        let probe = Arc::clone(&shared.probe);
        probe.reset();
        let context = Context {
            generation,
            balancer,
            shared,
        };
        let producer: BaseProducer<Context, BalancerAdapter> =
            BaseProducer::from_config_and_context(config, context)?;
        // Released by the handle, which the struct drops before the client.
        let reports = crate::native::client::main_queue(producer.client());
        let Some(mut reports) = reports else {
            return Err(KafkaError::ClientCreation(
                "librdkafka gave no event queue for the producer".to_string(),
            ));
        };
        reports.wake_on_arrival(Arc::clone(&bell));
        let client = Arc::new(Client {
            reports,
            topics: Topics::new(producer.client()),
            producer,
            bell,
            retired: AtomicBool::new(false),
        });
        reports::start_helper(&client).map_err(|e| {
            KafkaError::ClientCreation(format!(
                "could not start the producer's delivery-report thread: {e}"
            ))
        })?;
        // Events that arrived before the callback was set rang no bell.
        client.bell.wake();
        start_probe(&client, probe).map_err(|e| {
            KafkaError::ClientCreation(format!("could not start the producer's probe thread: {e}"))
        })?;
        Ok(client)
    }

    /// Takes the client out of the actor's serving task's hands and closes
    /// it to writes; see `retired`. Call on the actor's thread before handing
    /// the client to another.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    /// Puts messages on librdkafka's queue until done or blocked. Messages that
    /// cannot be sent at all (no topic, too large, ...) are completed as failed
    /// right away; async messages are completed as enqueued.
    pub(crate) fn enqueue(
        &self,
        default_topic: Option<&str>,
        tracker: &Arc<Tracker>,
        async_writes: bool,
        pending: &mut Pending,
    ) -> Result<(), Blocked> {
        // A write that took the client just before it was retired: what it
        // queued now would miss the flush or purge under way.
        if self.is_retired() {
            return Err(Blocked::Retired);
        }
        let topics = &self.topics;
        // Most messages go to the producer's topic: its handle is looked up once.
        let mut default_handle = None;
        while let Some(message) = pending.messages.get_mut(pending.next) {
            let index = pending.next;
            pending.next += 1;
            let own_topic = message.topic.is_some();
            if own_topic {
                tracker.note_own_topic();
            }
            let Some(topic) = message.topic.as_deref().or(default_topic) else {
                let reason = "no topic: set `topic` in the producer's config or on the message";
                fail_now(
                    tracker,
                    index,
                    message,
                    ProduceErrorKind::NoTopic,
                    reason.into(),
                );
                continue;
            };
            let handle = match default_handle {
                Some(handle) if !own_topic => Ok(handle),
                _ => topics.handle(topic, || {
                    let problem = topic_name_problem(topic)?;
                    Some(format!(
                        "refused by this producer before sending: {topic:?} is not a valid \
                         topic name ({problem})"
                    ))
                }),
            };
            let handle = match handle {
                Ok(handle) => {
                    if !own_topic {
                        default_handle = Some(handle);
                    }
                    handle
                }
                Err((code, reason)) => {
                    fail_now(
                        tracker,
                        index,
                        message,
                        ProduceErrorKind::Kafka(code),
                        reason,
                    );
                    continue;
                }
            };
            let tag = if async_writes {
                DeliveryTag::NONE
            } else {
                DeliveryTag::new(tracker, index)
            };
            match handle.produce(outgoing(message), tag) {
                Ok(()) => {
                    if async_writes {
                        tracker.complete(index, Outcome::Enqueued);
                    }
                }
                Err(code) => {
                    let blocked = match code {
                        RDKafkaErrorCode::QueueFull => Some(Blocked::QueueFull),
                        RDKafkaErrorCode::Fatal => {
                            Some(Blocked::Fatal(self.producer.context().generation))
                        }
                        _ => None,
                    };
                    if let Some(blocked) = blocked {
                        pending.next = index;
                        return Err(blocked);
                    }
                    // The message's own topic moves out with it; keep a copy.
                    let topic = topic.to_owned();
                    let message = std::mem::take(message);
                    let error = KafkaError::MessageProduction(code);
                    let mut failure = ProduceError::kafka(&error, message, &topic);
                    if code == RDKafkaErrorCode::MessageSizeTooLarge {
                        self.producer
                            .context()
                            .shared
                            .explain_size_refusal(&mut failure);
                    }
                    tracker.refuse(index, failure);
                }
            }
        }
        Ok(())
    }

    /// Waits up to `timeout` for every queued message to be delivered or to fail;
    /// whatever is left is purged, so that it fails now rather than never.
    pub(crate) fn flush_or_purge(&self, timeout: Duration) {
        if self.producer.flush(timeout).is_err() {
            self.purge(format!(
                "the producer closed before it was delivered: its flush deadline (writeTimeout, {timeout:?}) passed"
            ));
        }
    }

    /// Fails every queued message now, saying `why`.
    pub(crate) fn purge(&self, why: String) {
        self.producer.context().shared.set_purge_reason(why);
        self.producer
            .purge(PurgeConfig::default().queue().inflight());
        // Serve the delivery reports the purge produced. Purged messages are
        // reported at once; one still unreported past this is left to its
        // writer's outcome deadline, which calls it lost.
        if let Err(error) = self.producer.flush(Duration::from_millis(500)) {
            tracing::warn!(
                producer = %self.producer.context().shared.name,
                error = %error,
                unreported = self.producer.in_flight_count(),
                "purged messages not all reported; their writers will see them as lost"
            );
        }
    }

    /// librdkafka's description of the fatal error this client is in, if any.
    pub(crate) fn fatal_error(&self) -> Option<String> {
        self.fatal_error_code()
            .map(|(code, reason)| format!("{reason} ({code:?})"))
    }

    /// The fatal error this client is in, if any, with its code.
    pub(crate) fn fatal_error_code(&self) -> Option<(RDKafkaErrorCode, String)> {
        self.producer.client().fatal_error()
    }

    /// Records a transaction of this client's that took `elapsed`, in the
    /// producer's metrics when they are on.
    pub(crate) fn transaction_ended(&self, elapsed: Duration, committed: bool) {
        if let Some(metrics) = &self.producer.context().shared.metrics {
            metrics.transaction_ended(elapsed, committed);
        }
    }

    /// The transactional client's operations (blocking, but for `begin`).
    pub(crate) fn transactions(&self) -> &BaseProducer<Context, BalancerAdapter> {
        &self.producer
    }

    /// Makes librdkafka raise a fatal error, as a broken idempotent producer would.
    #[cfg(feature = "testing")]
    pub(crate) fn trigger_fatal_error(&self, reason: &str) -> Result<(), String> {
        crate::native::client::inject_fatal_error(
            self.producer.client(),
            rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
            reason,
        )
    }
}

impl ReportSource for Client {
    fn bell(&self) -> &Arc<Bell> {
        &self.bell
    }

    /// Serves up to [`EVENTS_PER_TURN`] events of the client's queue: delivery
    /// reports (completing writes), errors and log lines. True when more wait.
    fn serve_reports(&self) -> bool {
        for _ in 0..EVENTS_PER_TURN {
            if self.reports.len() == 0 {
                return false;
            }
            self.producer.poll(Duration::ZERO);
        }
        self.reports.len() > 0
    }

    fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Lets the helper thread see the client is gone now, not at its next check.
        self.bell.ring_both();
    }
}

/// `message` as librdkafka takes it.
fn outgoing(
    message: &Message,
) -> Outgoing<'_, impl ExactSizeIterator<Item = (&str, Option<&[u8]>)>> {
    Outgoing {
        partition: message.partition,
        key: message.key.as_deref(),
        value: message.value.as_deref(),
        timestamp: message.timestamp,
        headers: message
            .headers
            .iter()
            .map(|h| (h.key.as_str(), h.value.as_deref())),
    }
}

/// Codes that mean another producer took the transactional id.
pub(crate) fn is_fencing(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Fenced
            | RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(code: RDKafkaErrorCode) -> ProduceError {
        let error = KafkaError::MessageProduction(code);
        ProduceError::kafka(&error, Message::new("v"), "t")
    }

    #[test]
    fn a_purged_message_leads_with_why_it_was_purged() {
        let shared = Shared::new("p".into());
        shared.set_purge_reason("SASL authentication failed: bad password".into());
        let mut failure = failed(RDKafkaErrorCode::PurgeQueue);
        shared.explain(&mut failure);
        assert!(
            failure
                .reason
                .starts_with("SASL authentication failed: bad password (Message production"),
            "{}",
            failure.reason
        );
        assert!(failure.reason.contains("PurgeQueue"), "{}", failure.reason);
    }

    #[test]
    fn a_timed_out_message_leads_with_the_last_client_error() {
        let shared = Shared::new("p".into());
        let mut failure = failed(RDKafkaErrorCode::MessageTimedOut);
        shared.explain(&mut failure);
        assert!(failure.reason.starts_with("Message production error"));
        shared.record_client_error(None, "127.0.0.1:1/bootstrap: Connection refused");
        let mut failure = failed(RDKafkaErrorCode::MessageTimedOut);
        shared.explain(&mut failure);
        assert!(
            failure
                .reason
                .starts_with("last client error: 127.0.0.1:1/bootstrap: Connection refused ("),
            "{}",
            failure.reason
        );
    }
}
