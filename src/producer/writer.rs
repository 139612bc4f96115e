//! A producer's write path, run on the writer's own task: interceptors,
//! putting the messages on librdkafka's queue, and awaiting their outcomes.
//!
//! librdkafka's produce call is thread-safe, so a write does not pass through
//! the actor: writers on many threads queue their messages in parallel, as
//! they would with a raw client shared between them, and no per-message work
//! waits for one actor's thread. The actor keeps what must be one at a time:
//! replacing a failed client, closing, and where the errors go.
//!
//! Order: one caller's writes are queued in the order it makes them. A write
//! that finds the queue full (or its client failed) waits in line, and every
//! write that starts while one waits queues behind it, so no later write
//! overtakes it. Concurrent writes from different callers were never ordered
//! against each other.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Recipient;
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::{Mutex, MutexGuard};
use tracing::Instrument as _;

use super::client::{Blocked, Client, Pending, Shared};
use super::reports::{ReportSource as _, WriteSizes};
use super::tracker::Tracker;
use crate::error::Error;
use crate::interceptor::{Admitted, Chain, ClientInfo};
use crate::observe::trace;
use crate::record::{Message, Outcome, WriteReport};
use crate::record::{ProduceError, ProduceErrorKind};
use crate::supervision::Slot;

/// A write's report to come, once every message has its outcome.
pub(crate) type ReportFuture = Pin<Box<dyn Future<Output = Result<WriteReport, Error>> + Send>>;

/// Asks the actor to replace a client that failed fatally while writing;
/// answered once a new client runs, or the producer gave up or closed.
#[derive(Debug, actix::Message)]
#[rtype(result = "()")]
pub(crate) struct ReplaceClient {
    pub(crate) incarnation: u64,
    pub(crate) reason: String,
}

/// What every write of one producer shares.
pub(crate) struct Writer {
    name: Arc<str>,
    slot: Arc<Slot<Arc<Client>>>,
    shared: Arc<Shared>,
    interceptors: Chain,
    info: Arc<ClientInfo>,
    /// `topic` from the config, shared by the deliveries of messages naming none.
    default_topic: Option<Arc<str>>,
    /// `enableTraceInterceptor`: with OpenTelemetry and a trace active, each
    /// message without a `traceparent` gets the write's span context.
    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    propagate_trace: bool,
    /// `async`: a write answers once queued.
    async_writes: bool,
    /// How long a write may wait for queue space or a new client.
    write_timeout: Duration,
    /// How long a writer waits for outcomes before calling the rest lost.
    outcome_deadline: Duration,
    /// Decides where reports are served (see `reports`).
    write_sizes: WriteSizes,
    /// Held by the write that waits for queue space or a new client, and by
    /// every write that starts while one waits (see the module's doc).
    line: Mutex<()>,
    /// Writes holding or waiting for `line`.
    in_line: AtomicUsize,
    /// The actor, which replaces failed clients.
    replace: Recipient<ReplaceClient>,
}

/// How a [`Writer`] is made: what it takes from the producer's spec.
pub(crate) struct WriterParts {
    pub(crate) name: Arc<str>,
    pub(crate) slot: Arc<Slot<Arc<Client>>>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) interceptors: Chain,
    pub(crate) default_topic: Option<String>,
    pub(crate) propagate_trace: bool,
    pub(crate) async_writes: bool,
    pub(crate) write_timeout: Duration,
    pub(crate) outcome_deadline: Duration,
}

/// A write queued by [`Writer::queue`].
pub(crate) struct Queued {
    /// The messages refused before they were sent (no topic, too large, a
    /// topic name that cannot be, rejected by an interceptor, ...), by their
    /// index in the write.
    pub(crate) refused: Vec<usize>,
    /// Why the first of them was refused.
    pub(crate) first_refusal: Option<ProduceError>,
    /// The write's report, once every message has its outcome.
    pub(crate) report: ReportFuture,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued")
            .field("refused", &self.refused)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// A writer of the producer made of `parts`, whose actor `replace`
    /// replaces failed clients.
    pub(crate) fn new(parts: WriterParts, replace: Recipient<ReplaceClient>) -> Self {
        let info = Arc::new(ClientInfo {
            kind: crate::interceptor::ClientKind::Producer,
            name: parts.name.to_string(),
            topic: parts.default_topic.clone(),
        });
        Writer {
            name: parts.name,
            slot: parts.slot,
            shared: parts.shared,
            interceptors: parts.interceptors,
            info,
            default_topic: parts.default_topic.as_deref().map(Arc::from),
            propagate_trace: parts.propagate_trace,
            async_writes: parts.async_writes,
            write_timeout: parts.write_timeout,
            outcome_deadline: parts.outcome_deadline,
            write_sizes: WriteSizes::default(),
            line: Mutex::new(()),
            in_line: AtomicUsize::new(0),
            replace,
        }
    }

    /// `topic` from the config: where messages naming none go.
    pub(crate) fn default_topic(&self) -> Option<&str> {
        self.default_topic.as_deref()
    }

    /// Writes `messages` in a send span naming the producer's default topic
    /// and, with OpenTelemetry and `enableTraceInterceptor`, carrying its
    /// trace context in the messages' headers; answers with every outcome.
    pub(crate) async fn write(
        self: &Arc<Self>,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<WriteReport, Error> {
        let (messages, span) = self.traced(messages);
        async move { self.queue_traced(messages).await.report.await }
            .instrument(span)
            .await
    }

    /// Like [`write`](Self::write), but answers once the messages are queued
    /// in librdkafka, before their delivery: with the messages refused before
    /// sending, and the write's report to come.
    pub(crate) async fn queue(
        self: &Arc<Self>,
        messages: impl IntoIterator<Item = Message>,
    ) -> Queued {
        let (messages, span) = self.traced(messages);
        self.queue_traced(messages).instrument(span).await
    }

    /// A write's send span, and its messages carrying the span's trace
    /// context when the producer says so.
    fn traced(&self, messages: impl IntoIterator<Item = Message>) -> (Vec<Message>, tracing::Span) {
        #[cfg_attr(not(feature = "opentelemetry"), allow(unused_mut))]
        let mut messages: Vec<Message> = messages.into_iter().collect();
        let span = trace::send_span(&self.name, self.default_topic.as_deref(), messages.len());
        #[cfg(feature = "opentelemetry")]
        if self.propagate_trace {
            trace::inject(&span, &mut messages);
        }
        (messages, span)
    }

    /// Queues `messages` (waiting in line when the queue is full or the
    /// client is being replaced) and answers once every one is in
    /// librdkafka's hands or refused.
    async fn queue_traced(self: &Arc<Self>, messages: Vec<Message>) -> Queued {
        // A write that starts while another waits goes behind it.
        let mut turn = if self.in_line.load(Ordering::Acquire) > 0 {
            Some(self.wait_in_line().await)
        } else {
            None
        };
        // A write during a restart waits for the new client.
        let client = match self.slot.ready().await {
            Ok((_, client)) => client,
            Err(error) => return unsent(error),
        };
        let started = Instant::now();
        let messages = match self.interceptors.before_write(&self.info, messages) {
            Admitted::Pass(messages) => messages,
            Admitted::Rejected { depth, report } => return self.rejected(depth, report, started),
        };
        if self
            .write_sizes
            .record(messages.len(), &self.shared.serving)
        {
            client.bell().ring_both();
        }
        if self.shared.serving.on_actor() {
            // Reports waiting are served before more is queued, on this
            // thread, which allocated what they free; and so that a writer
            // that keeps its thread busy cannot starve the actor's serving
            // task, which would shrink what is in flight and with it
            // librdkafka's batches.
            client.serve_reports();
        }
        let tracker = Tracker::new(messages.len(), self.default_topic.clone());
        let mut pending = Pending::new(messages);
        if let Err(blocked) = self.enqueue(&client, &tracker, &mut pending) {
            drop(client);
            if turn.is_none() {
                turn = Some(self.wait_in_line().await);
            }
            self.resume(blocked, pending, &tracker).await;
        }
        drop(turn);
        let (refused, first_refusal) = tracker.refusals();
        Queued {
            refused,
            first_refusal,
            report: Box::pin(Arc::clone(self).report(tracker, started)),
        }
    }

    fn enqueue(
        &self,
        client: &Client,
        tracker: &Arc<Tracker>,
        pending: &mut Pending,
    ) -> Result<(), Blocked> {
        client.enqueue(
            self.info.topic.as_deref(),
            tracker,
            self.async_writes,
            pending,
        )
    }

    /// The write's report once every message has its outcome, counted in
    /// the metrics and shown to the interceptors.
    async fn report(
        self: Arc<Self>,
        tracker: Arc<Tracker>,
        started: Instant,
    ) -> Result<WriteReport, Error> {
        let topic = self.info.topic.as_deref();
        let report =
            WriteReport::new(tracker.outcomes(self.outcome_deadline).await).name_topics(topic);
        self.shared.wrote(&report, topic, started.elapsed());
        let chain = &self.interceptors;
        chain.after_write(chain.depth(), &self.info, &report, started.elapsed());
        Ok(report)
    }

    /// An interceptor rejected the whole write: every message is refused.
    fn rejected(&self, depth: usize, report: WriteReport, started: Instant) -> Queued {
        let topic = self.info.topic.as_deref();
        let report = report.name_topics(topic);
        self.shared.wrote(&report, topic, started.elapsed());
        self.interceptors
            .after_write(depth, &self.info, &report, started.elapsed());
        let refused = (0..report.outcomes().len()).collect();
        let first_refusal = report.failures().next().cloned();
        Queued {
            refused,
            first_refusal,
            report: Box::pin(std::future::ready(Ok(report))),
        }
    }

    /// Takes this write's place in line; see the module's doc.
    async fn wait_in_line(&self) -> InLine<'_> {
        self.in_line.fetch_add(1, Ordering::AcqRel);
        let count = Counted(&self.in_line);
        InLine {
            _turn: self.line.lock().await,
            _count: count,
        }
    }

    /// Enqueues what a blocked write still holds: waits for queue space, or
    /// for the actor to replace a failed client, for at most `writeTimeout`.
    async fn resume(&self, mut blocked: Blocked, mut pending: Pending, tracker: &Arc<Tracker>) {
        let give_up_at = Instant::now() + self.write_timeout;
        loop {
            match blocked {
                Blocked::QueueFull => self.shared.wait_for_space(Duration::from_millis(100)).await,
                Blocked::Fatal(incarnation) => {
                    let reason = "the client reported a fatal error while writing".to_string();
                    // Answered once replaced; a stopped actor leaves the
                    // slot closed, which `ready` answers below.
                    let _ = self
                        .replace
                        .send(ReplaceClient {
                            incarnation,
                            reason,
                        })
                        .await;
                }
                // Closing or replaced: `ready` says which.
                Blocked::Retired => {}
            }
            let client = match self.slot.ready().await {
                Ok((_, client)) => client,
                Err(e) => {
                    return fail_all(
                        tracker,
                        pending,
                        ProduceErrorKind::ProducerDown,
                        &e.to_string(),
                    )
                }
            };
            match self.enqueue(&client, tracker, &mut pending) {
                Ok(()) => return,
                Err(again) => blocked = again,
            }
            if Instant::now() >= give_up_at {
                let reason = format!(
                    "refused by this producer before sending, not by the broker: its queue \
                     (librdkafka's queue.buffering.max.messages and .kbytes) stayed full for \
                     writeTimeout ({:?})",
                    self.write_timeout
                );
                return fail_all(
                    tracker,
                    pending,
                    ProduceErrorKind::Kafka(RDKafkaErrorCode::QueueFull),
                    &reason,
                );
            }
        }
    }
}

/// A write's place in line: the turn, and its count among those in line.
struct InLine<'a> {
    _turn: MutexGuard<'a, ()>,
    _count: Counted<'a>,
}

/// One of the writes in line, until dropped (also when the write is).
struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A write no client took: it fails as a whole.
fn unsent(error: Error) -> Queued {
    Queued {
        refused: Vec::new(),
        first_refusal: None,
        report: Box::pin(std::future::ready(Err(error))),
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

#[cfg(test)]
mod tests {
    /// Never called: it compiles only while a write can be spawned on a
    /// multi-threaded runtime, as it could when it went through the actor.
    #[allow(dead_code)]
    fn a_write_is_send(producer: &crate::Producer, writer: &std::sync::Arc<super::Writer>) {
        fn send<T: Send>(_: T) {}
        send(producer.write(Vec::new()));
        send(writer.write(Vec::new()));
        send(writer.queue(Vec::new()));
    }
}
