//! Single consumers: `[kafka.consumers.NAME]`, the Go `Consumer` (a kafka-go
//! reader) as an actor: fetch, read (fetch and commit), commit, seek to an offset
//! or a time, lag.
//!
//! With `partition` (or neither key) it reads that one partition and commits
//! nothing; with `groupID` it joins the group, shares the topic's partitions with
//! the other members, and commits to the group. For acknowledgement-driven
//! commits, bounded buffering and rebalance barriers use a
//! [consumer group](super::ConsumerGroup) instead.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::context::{LoggingContext, PeriodicCommits};
use super::{ConsumedMessage, PartitionOffset, TopicPartition};
use crate::config::{ConsumerAssignment, ConsumerConfig, StartOffset};
use crate::error::CommitFailure;
use crate::error::Error;
use crate::handle::ActorHandle;
use crate::native::message::RawMessage;
use crate::observe::{ConsumerMetrics, ConsumerProbe, LagSeries, StatsSink};
use crate::supervision::{
    client_failure, AuthorizationScope, ClientFailure, Escalator, Incarnations, RestartPolicy,
    Slot, Supervisor,
};

const KIND: &str = "consumer";

/// How often the actor beats while it runs.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// How long one blocking poll lasts before a waiting fetch looks at `close`.
const POLL_SLICE: Duration = Duration::from_millis(100);

type Client = BaseConsumer<LoggingContext>;

/// How the consumer's clients are started, replaced and closed.
struct ConsumerClients {
    name: String,
    topic: Arc<str>,
    partition: Option<i32>,
    /// Where a partition-mode consumer starts when it has no position yet.
    start: Offset,
    client_config: rdkafka::ClientConfig,
    position: Arc<Mutex<Option<i64>>>,
    /// Where librdkafka's statistics go, when the metrics are on.
    stats: Option<StatsSink>,
    /// The outcome of periodic commits (`commitInterval` above 0, group mode).
    periodic_commits: Option<Arc<PeriodicCommits>>,
}

impl ConsumerClients {
    /// A new client, subscribed (group mode, which resumes from the committed
    /// offsets) or assigned at the position reached (partition mode).
    fn connect(&self) -> Result<Arc<Client>, Error> {
        let at = self
            .position
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map_or(self.start, Offset::Offset);
        let mut context = LoggingContext::new(format!("consumer {}", self.name));
        context.stats = self.stats.clone();
        context.periodic_commits = self.periodic_commits.clone();
        connect(
            &self.name,
            &self.client_config,
            context,
            &self.topic,
            self.partition,
            at,
        )
        .map(Arc::new)
    }

    /// Closes `client` on the blocking pool; an error only if closing panicked.
    async fn close_off_thread(&self, client: Arc<Client>) -> Result<(), Error> {
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || close_client(&name, client))
            .await
            .map_err(|_| Error::ActorStopped {
                kind: KIND,
                name: self.name.clone(),
            })
    }
}

impl Incarnations for ConsumerClients {
    type Client = Arc<Client>;
    type Closed = ();

    async fn start(&self, _incarnation: u64) -> Result<Arc<Client>, Error> {
        self.connect()
    }

    async fn discard(&self, client: Arc<Client>, _reason: &str) {
        if let Err(error) = self.close_off_thread(client).await {
            tracing::warn!(consumer = %self.name, %error, "the failed client was not closed");
        }
    }

    async fn close(&self, client: Arc<Client>, _deadline: Duration) -> Result<(), Error> {
        // Leaves the group now, while the member is healthy, not whenever the
        // last handle happens to be dropped; bounded by CLOSE_TIMEOUT. With
        // periodic commits, librdkafka commits what was stored on the way.
        if let Some(periodic) = &self.periodic_commits {
            periodic.closing();
            // The last round: what was stored since the previous one.
            let (periodic, name, committing) =
                (Arc::clone(periodic), self.name.clone(), Arc::clone(&client));
            let _ = tokio::task::spawn_blocking(move || periodic.commit_stored(&name, &committing))
                .await;
        }
        self.close_off_thread(client).await?;
        match self.periodic_commits.as_ref().and_then(|c| c.outstanding()) {
            Some((offsets, failure)) => Err(Error::Commit {
                kind: KIND,
                name: self.name.clone(),
                offsets,
                failure,
            }),
            None => Ok(()),
        }
    }
}

/// What one poll of the client found.
enum Polled {
    Message(ConsumedMessage),
    Nothing,
    /// The client itself failed and must be replaced.
    ClientFailed {
        failure: ClientFailure,
        /// librdkafka's or the broker's code for it.
        code: RDKafkaErrorCode,
        reason: String,
    },
}

/// What blocking requests need, on any thread.
struct Inner {
    name: String,
    topic: Arc<str>,
    /// `Some` in partition mode.
    partition: Option<i32>,
    /// The next offset to read, once known (partition mode).
    position: Arc<Mutex<Option<i64>>>,
    timeout: Duration,
    slot: Arc<Slot<Arc<Client>>>,
    /// Set when commits are periodic (`commitInterval` above 0, group
    /// mode): `commit` stores the offsets, committed every `commit_interval`.
    periodic_commits: Option<Arc<PeriodicCommits>>,
    commit_interval: Duration,
    /// The actor's heartbeat, for liveness checks.
    probe: Arc<ConsumerProbe>,
}

impl Inner {
    /// A failed request of the running client: `operation` names what it was.
    fn request_error(&self, operation: &'static str) -> impl Fn(KafkaError) -> Error + '_ {
        move |source| Error::Request {
            kind: KIND,
            name: self.name.clone(),
            operation,
            source: Box::new(source),
        }
    }

    fn unsupported(&self, what: &str) -> Error {
        Error::Unsupported {
            name: self.name.clone(),
            reason: format!(
                "{what} needs `partition` mode (this consumer has a groupID: its group places it)"
            ),
        }
    }

    fn assign_at(&self, consumer: &Client, offset: Offset) -> Result<(), Error> {
        let partition = self.partition.ok_or_else(|| self.unsupported("seeking"))?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&self.topic, partition, offset)
            .map_err(self.request_error("seeking"))?;
        consumer
            .assign(&list)
            .map_err(self.request_error("seeking"))?;
        *self.position.lock().unwrap_or_else(|e| e.into_inner()) = match offset {
            Offset::Offset(o) => Some(o),
            _ => None,
        };
        Ok(())
    }

    /// One slice of waiting for a message.
    fn poll_once(&self, consumer: &Client) -> Result<Polled, Error> {
        // Without a group, a fatal error shows only in the client's state.
        if let Some((code, reason)) = consumer.client().fatal_error() {
            return Ok(Polled::ClientFailed {
                failure: ClientFailure::Fatal,
                code,
                reason: ClientFailure::Fatal.describe(&reason),
            });
        }
        match consumer.poll(POLL_SLICE) {
            None => Ok(Polled::Nothing),
            Some(Err(KafkaError::MessageConsumptionFatal(code))) => {
                let detail = consumer
                    .client()
                    .fatal_error()
                    .map_or_else(|| code.to_string(), |(_, r)| r);
                Ok(Polled::ClientFailed {
                    failure: ClientFailure::Fatal,
                    code,
                    reason: ClientFailure::Fatal.describe(&detail),
                })
            }
            // librdkafka would retry a refused login, handshake or ACL forever,
            // each fetch timing out without a word: the client is replaced
            // instead (restarts count against the limit) and the request fails,
            // saying why.
            Some(Err(KafkaError::MessageConsumption(code))) => {
                match client_failure(code, AuthorizationScope::Client) {
                    Some(failure @ ClientFailure::Refused(refusal)) => Ok(Polled::ClientFailed {
                        failure,
                        code,
                        reason: consumer
                            .context()
                            .last_error_log
                            .refusal_reason(refusal, code),
                    }),
                    _ => Err(self.request_error("reading")(
                        KafkaError::MessageConsumption(code),
                    )),
                }
            }
            Some(Err(e)) => Err(self.request_error("reading")(e)),
            Some(Ok(m)) => {
                let message = crate::record::owned_consumed(&self.topic, &RawMessage::of(&m));
                if self.partition.is_some() {
                    *self.position.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(message.offset() + 1);
                }
                Ok(Polled::Message(message))
            }
        }
    }

    fn commit(
        &self,
        consumer: &Client,
        messages: &[ConsumedMessage],
    ) -> Result<Vec<PartitionOffset>, Error> {
        if self.partition.is_some() {
            return Err(Error::Unsupported {
                name: self.name.clone(),
                reason:
                    "commit needs a groupID: a consumer of one partition has no group to commit to"
                        .into(),
            });
        }
        let mut highest: std::collections::BTreeMap<TopicPartition, i64> =
            std::collections::BTreeMap::new();
        for m in messages {
            let key = TopicPartition {
                topic: Arc::clone(m.shared_topic()),
                partition: m.partition(),
            };
            let entry = highest.entry(key).or_insert(m.offset());
            *entry = (*entry).max(m.offset());
        }
        let mut list = TopicPartitionList::new();
        let mut committed = Vec::with_capacity(highest.len());
        for (partition, offset) in highest {
            list.add_partition_offset(
                &partition.topic,
                partition.partition,
                Offset::Offset(offset + 1),
            )
            .map_err(self.request_error("committing"))?;
            committed.push(PartitionOffset {
                partition,
                offset: offset + 1,
            });
        }
        if committed.is_empty() {
            return Ok(committed);
        }
        if let Some(periodic) = &self.periodic_commits {
            // Committed within commitInterval (and on a revoke and at close);
            // a failure there is logged, retried, and reported by `close`.
            return match consumer.store_offsets(&list) {
                Ok(()) => {
                    periodic.stored(&committed);
                    Ok(committed)
                }
                Err(error) => Err(Error::Commit {
                    kind: KIND,
                    name: self.name.clone(),
                    offsets: committed,
                    failure: CommitFailure::from_kafka(&error),
                }),
            };
        }
        match consumer.commit(&list, rdkafka::consumer::CommitMode::Sync) {
            Ok(()) => Ok(committed),
            Err(error) => Err(Error::Commit {
                kind: KIND,
                name: self.name.clone(),
                offsets: committed,
                failure: CommitFailure::from_kafka(&error),
            }),
        }
    }

    /// Commits what `commit` stored, with periodic commits.
    fn commit_stored(&self, consumer: &Client) {
        if let Some(periodic) = &self.periodic_commits {
            periodic.commit_stored(&self.name, consumer);
        }
    }

    fn lag(&self, consumer: &Client) -> Result<i64, Error> {
        let lags = self.lag_by_partition(consumer, true)?;
        Ok(lags.iter().map(|(_, lag)| lag).sum())
    }

    /// The messages past the position of each partition read; a group
    /// member without an assignment yet reads none, or, with `whole_group`,
    /// is behind by the group's lag over the whole topic.
    fn lag_by_partition(
        &self,
        consumer: &Client,
        whole_group: bool,
    ) -> Result<Vec<(i32, i64)>, Error> {
        let partitions: Vec<(i32, Option<i64>)> = match self.partition {
            Some(p) => vec![(p, *self.position.lock().unwrap_or_else(|e| e.into_inner()))],
            None => {
                let positions = consumer
                    .position()
                    .map_err(self.request_error("reading the position"))?;
                if positions.count() == 0 {
                    // Nothing assigned yet (or the cluster is out of reach):
                    // the group's committed offsets over the whole topic.
                    return if whole_group {
                        self.group_lag(consumer)
                    } else {
                        Ok(Vec::new())
                    };
                }
                positions
                    .elements()
                    .iter()
                    .map(|e| (e.partition(), e.offset().to_raw()))
                    .collect()
            }
        };
        self.lag_from(consumer, partitions)
    }

    /// The lag of a group member that has no partitions: the topic's messages
    /// past the group's committed offsets. Fails when the cluster cannot be
    /// asked, rather than saying nothing is behind.
    fn group_lag(&self, consumer: &Client) -> Result<Vec<(i32, i64)>, Error> {
        let metadata = consumer
            .fetch_metadata(Some(&self.topic), self.timeout)
            .map_err(self.request_error("reading the topic's partitions"))?;
        let mut list = TopicPartitionList::new();
        for topic in metadata.topics() {
            if let Some(code) = topic.error() {
                let error = KafkaError::MetadataFetch(code.into());
                return Err(self.request_error("reading the topic's partitions")(error));
            }
            for partition in topic.partitions() {
                list.add_partition(&self.topic, partition.id());
            }
        }
        let committed = consumer
            .committed_offsets(list, self.timeout)
            .map_err(self.request_error("reading the group's committed offsets"))?;
        let partitions = committed
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset().to_raw()))
            .collect();
        self.lag_from(consumer, partitions)
    }

    /// The messages past each partition's `position` (its first when none).
    fn lag_from(
        &self,
        consumer: &Client,
        partitions: Vec<(i32, Option<i64>)>,
    ) -> Result<Vec<(i32, i64)>, Error> {
        let mut lag = Vec::with_capacity(partitions.len());
        for (partition, position) in partitions {
            let (low, high) = consumer
                .fetch_watermarks(&self.topic, partition, self.timeout)
                .map_err(self.request_error("reading the watermarks"))?;
            let next = position.filter(|p| *p >= 0).unwrap_or(low);
            lag.push((partition, (high - next).max(0)));
        }
        Ok(lag)
    }
}

/// A client for `topic`: assigned `partition` at `at`, or subscribed when there
/// is no partition (group mode).
fn connect(
    name: &str,
    client_config: &rdkafka::ClientConfig,
    context: LoggingContext,
    topic: &str,
    partition: Option<i32>,
    at: Offset,
) -> Result<Client, Error> {
    let error = |source| Error::Client {
        kind: KIND,
        name: name.to_string(),
        source,
    };
    let consumer = Client::from_config_and_context(client_config, context).map_err(error)?;
    match partition {
        Some(partition) => {
            let mut list = TopicPartitionList::new();
            list.add_partition_offset(topic, partition, at)
                .map_err(error)?;
            consumer.assign(&list).map_err(error)?;
        }
        None => consumer.subscribe(&[topic]).map_err(error)?,
    }
    Ok(consumer)
}

/// How long closing a client (leaving its group) may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Closes a client with a deadline: leaves its group, then drops it. rdkafka's
/// own drop closes without a deadline, and can wait forever (a failed client
/// never closes; a member closed in the middle of a rebalance may not either),
/// so a client that does not close in time is left behind, with a warning,
/// rather than hang its thread. Runs on the blocking pool.
fn close_client(name: &str, mut consumer: Arc<Client>) {
    let deadline = std::time::Instant::now() + CLOSE_TIMEOUT;
    // Requests in flight hold it for at most one poll slice.
    let consumer = loop {
        match Arc::try_unwrap(consumer) {
            Ok(only) => break only,
            Err(shared) if std::time::Instant::now() < deadline => {
                consumer = shared;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => {
                tracing::warn!(consumer = %name, "the client is still in use; the last request lets it go");
                return;
            }
        }
    };
    if consumer.close_queue().is_ok() {
        while !consumer.closed() && std::time::Instant::now() < deadline {
            consumer.poll(Duration::from_millis(50));
        }
    }
    if consumer.closed() {
        drop(consumer);
    } else {
        tracing::warn!(consumer = %name, timeout = ?CLOSE_TIMEOUT, "the client did not close in time; leaving it behind");
        std::mem::forget(consumer);
    }
}

/// The actor behind a [`Consumer`]. Blocking librdkafka calls run on tokio's
/// blocking pool, never on the actor's thread.
pub(crate) struct ConsumerActor {
    supervisor: Supervisor<ConsumerClients>,
    inner: Arc<Inner>,
    /// Its lag series and how often they are brought up to date
    /// (`readLagInterval`), when the metrics are on.
    lag: Option<(Duration, Arc<Mutex<LagSeries>>)>,
}

impl Actor for ConsumerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // A thread blocked (by a handler sharing its arbiter, say) stops
        // this beat, and the App's liveness check sees it.
        self.inner.probe.heartbeat.beat();
        ctx.run_interval(HEARTBEAT, |act, _ctx| act.inner.probe.heartbeat.beat());
        if let Some((every, series)) = self.lag.clone() {
            ctx.run_interval(every, move |act, _ctx| {
                let (inner, series) = (Arc::clone(&act.inner), Arc::clone(&series));
                actix::spawn(async move {
                    let topic = Arc::clone(&inner.topic);
                    match with_client(&inner, |inner, client| {
                        inner.lag_by_partition(client, false)
                    })
                    .await
                    {
                        Ok(lags) => series.lock().unwrap_or_else(|e| e.into_inner()).set(
                            lags.into_iter()
                                .map(|(p, lag)| (Arc::clone(&topic), p, lag)),
                        ),
                        // Kept as last read; the next round tries again.
                        Err(error) => {
                            tracing::debug!(consumer = %inner.name, %error, "lag not read")
                        }
                    }
                });
            });
        }
        if self.inner.periodic_commits.is_some() {
            ctx.run_interval(self.inner.commit_interval, |act, _ctx| {
                let inner = Arc::clone(&act.inner);
                actix::spawn(async move {
                    // A client being replaced is waited for; one that failed
                    // for good has nothing left to commit to.
                    let _ = with_client(&inner, |inner, client| {
                        inner.commit_stored(client);
                        Ok(())
                    })
                    .await;
                });
            });
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.inner.probe.heartbeat.stop();
        if let Some(client) = self.supervisor.slot().abandon() {
            let inner = Arc::clone(&self.inner);
            std::thread::spawn(move || {
                inner.commit_stored(&client);
                close_client(&inner.name, client);
            });
        }
    }
}

/// Runs `work` with the current client on the blocking pool, waiting out a
/// restart under way first.
async fn with_client<T: Send + 'static>(
    inner: &Arc<Inner>,
    work: impl FnOnce(&Inner, &Client) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    with_incarnation(inner, work).await.map(|(_, done)| done)
}

/// [`with_client`], also saying which incarnation of the client did the work.
async fn with_incarnation<T: Send + 'static>(
    inner: &Arc<Inner>,
    work: impl FnOnce(&Inner, &Client) -> Result<T, Error> + Send + 'static,
) -> Result<(u64, T), Error> {
    let (incarnation, client) = inner.slot.ready().await?;
    let inner = Arc::clone(inner);
    let name = inner.name.clone();
    let done = tokio::task::spawn_blocking(move || work(&inner, &client))
        .await
        .map_err(|_| Error::ActorStopped { kind: KIND, name })??;
    Ok((incarnation, done))
}

macro_rules! request {
    ($msg:ident, $result:ty, |$act:ident, $m:ident| $body:expr) => {
        impl Handler<$msg> for ConsumerActor {
            type Result = ResponseFuture<Result<$result, Error>>;

            #[allow(unused_variables)]
            fn handle(&mut self, $m: $msg, _ctx: &mut Self::Context) -> Self::Result {
                let $act = (self.supervisor.clone(), Arc::clone(&self.inner));
                Box::pin(async move { $body })
            }
        }
    };
}

#[derive(Message)]
#[rtype(result = "Result<ConsumedMessage, Error>")]
struct Fetch;

request!(Fetch, ConsumedMessage, |act, m| {
    let (supervisor, inner) = act;
    loop {
        let (incarnation, polled) = with_incarnation(&inner, Inner::poll_once).await?;
        match polled {
            Polled::Message(message) => return Ok(message),
            Polled::Nothing => {}
            Polled::ClientFailed {
                failure,
                code,
                reason,
            } => {
                supervisor.fail(incarnation, reason.clone()).await?;
                if let ClientFailure::Refused(refusal) = failure {
                    return Err(refusal.error(KIND, inner.name.clone(), code, reason));
                }
            }
        }
    }
});

#[derive(Message)]
#[rtype(result = "Result<Vec<PartitionOffset>, Error>")]
struct Commit(Vec<ConsumedMessage>);

request!(Commit, Vec<PartitionOffset>, |act, m| {
    with_client(&act.1, move |i, c| i.commit(c, &m.0)).await
});

#[derive(Message)]
#[rtype(result = "Result<(), Error>")]
struct Seek(i64);

request!(Seek, (), |act, m| {
    with_client(&act.1, move |i, c| i.assign_at(c, Offset::Offset(m.0))).await
});

#[derive(Message)]
#[rtype(result = "Result<i64, Error>")]
struct SeekToTime(i64);

request!(SeekToTime, i64, |act, m| {
    with_client(&act.1, move |i, consumer| {
        let partition = i
            .partition
            .ok_or_else(|| i.unsupported("seeking to a time"))?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&i.topic, partition, Offset::Offset(m.0))
            .map_err(i.request_error("seeking to a time"))?;
        let found = consumer
            .offsets_for_times(list, i.timeout)
            .map_err(i.request_error("seeking to a time"))?;
        let offset = match found
            .find_partition(&i.topic, partition)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(o)) => o,
            // No message at or after that time: continue from the end.
            _ => {
                consumer
                    .fetch_watermarks(&i.topic, partition, i.timeout)
                    .map_err(i.request_error("reading the watermarks"))?
                    .1
            }
        };
        i.assign_at(consumer, Offset::Offset(offset))?;
        Ok(offset)
    })
    .await
});

#[derive(Message)]
#[rtype(result = "Result<i64, Error>")]
struct Lag;

request!(Lag, i64, |act, m| with_client(&act.1, Inner::lag).await);

#[derive(Message)]
#[rtype(result = "Result<(), Error>")]
struct Close;

impl Handler<Close> for ConsumerActor {
    type Result = AtomicResponse<Self, Result<(), Error>>;

    fn handle(&mut self, _: Close, _ctx: &mut Self::Context) -> Self::Result {
        let supervisor = self.supervisor.clone();
        let close = async move { supervisor.close(CLOSE_TIMEOUT).await.map(drop) };
        AtomicResponse::new(Box::pin(close.into_actor(self).map(|result, _act, ctx| {
            ctx.stop();
            result
        })))
    }
}

/// A handle to a single consumer actor (`[kafka.consumers.NAME]`). Cheap to clone.
///
/// ```no_run
/// # async fn run(kafka: ekafka::Ekafka) -> Result<(), ekafka::Error> {
/// let consumer = kafka.consumer("c1")?;
/// let message = consumer.fetch().await?;
/// println!("{:?} at offset {}", message.value_str(), message.offset());
/// consumer.commit(&[message]).await?; // with a groupID
/// println!("{} messages behind", consumer.lag().await?);
/// consumer.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Consumer {
    handle: ActorHandle<ConsumerActor, Arc<Client>>,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.handle.debug(f, "Consumer")
    }
}

/// Two handles are equal when they talk to the same actor.
impl PartialEq for Consumer {
    fn eq(&self, other: &Self) -> bool {
        self.handle == other.handle
    }
}

impl Eq for Consumer {}

impl Consumer {
    pub(crate) fn start(
        name: &str,
        config: &ConsumerConfig,
        client_config: &rdkafka::ClientConfig,
        timeout: Duration,
        restart_policy: RestartPolicy,
        escalator: Escalator,
        metrics: Option<ConsumerMetrics>,
    ) -> Result<Self, Error> {
        let (stats, lag_series) = match metrics {
            Some(ConsumerMetrics { lag, stats }) => (Some(stats), Some(lag)),
            None => (None, None),
        };
        let partition = match &config.assignment {
            ConsumerAssignment::Partition(p) => Some(*p),
            ConsumerAssignment::Group(_) => None,
        };
        let start = match config.fetch.start_offset {
            StartOffset::First => Offset::Beginning,
            StartOffset::Last => Offset::End,
        };
        let periodic_commits = (partition.is_none() && !config.fetch.commit_interval.is_zero())
            .then(|| Arc::new(PeriodicCommits::default()));
        let clients = ConsumerClients {
            name: name.to_string(),
            topic: config.topic.as_str().into(),
            partition,
            start,
            client_config: client_config.clone(),
            position: Arc::new(Mutex::new(None)),
            stats,
            periodic_commits: periodic_commits.clone(),
        };
        let first = clients.connect()?;
        let (topic, position) = (Arc::clone(&clients.topic), Arc::clone(&clients.position));
        let supervisor = Supervisor::new(clients, first, KIND, name, restart_policy, escalator);
        let inner = Arc::new(Inner {
            name: name.to_string(),
            topic,
            partition,
            position,
            timeout,
            slot: Arc::clone(supervisor.slot()),
            periodic_commits,
            commit_interval: config.fetch.commit_interval,
            probe: Arc::default(),
        });
        let lag = config
            .fetch
            .read_lag_interval
            .zip(lag_series)
            .map(|(every, series)| (every, Arc::new(Mutex::new(series))));
        let addr = ConsumerActor {
            supervisor,
            inner: Arc::clone(&inner),
            lag,
        }
        .start();
        let handle = ActorHandle::new(KIND, name, addr, Arc::clone(&inner.slot));
        Ok(Consumer { handle, inner })
    }

    /// The configured name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.handle.name()
    }

    /// The actor's heartbeat, for liveness checks.
    pub(crate) fn probe(&self) -> &ConsumerProbe {
        &self.inner.probe
    }

    /// True once closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    async fn ask<M>(&self, message: M) -> Result<M::Result, Error>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        ConsumerActor: Handler<M>,
    {
        self.handle.ask(message).await
    }

    /// The next message (waits until there is one; wrap it in a timeout to bound
    /// the wait). Go's `FetchMessage`.
    pub async fn fetch(&self) -> Result<ConsumedMessage, Error> {
        self.ask(Fetch).await?
    }

    /// The next message, committed before it is returned (group mode). Go's
    /// `ReadMessage`: at-most-once for that message if the caller then fails.
    pub async fn read(&self) -> Result<ConsumedMessage, Error> {
        let message = self.fetch().await?;
        if self.inner.partition.is_none() {
            self.commit(std::slice::from_ref(&message)).await?;
        }
        Ok(message)
    }

    /// Commits one past the highest offset of `messages` per partition (group
    /// mode). Go's `CommitMessages`: synchronously with `commitInterval = 0`
    /// (the default); otherwise the offsets are stored and committed within
    /// `commitInterval` (and when partitions are revoked, and at `close`),
    /// as Go's reader batches them. A periodic commit that fails is logged
    /// and tried again on the next interval; if the last one failed,
    /// [`close`](Self::close) returns it.
    pub async fn commit(
        &self,
        messages: &[ConsumedMessage],
    ) -> Result<Vec<PartitionOffset>, Error> {
        self.ask(Commit(messages.to_vec())).await?
    }

    /// Continues reading at `offset` (partition mode). Go's `SetOffset`.
    pub async fn seek(&self, offset: i64) -> Result<(), Error> {
        self.ask(Seek(offset)).await?
    }

    /// Continues reading at the first message at or after `timestamp_ms` (ms
    /// since the Unix epoch), or at the end when there is none; returns that
    /// offset (partition mode). Go's `SetOffsetAt`.
    pub async fn seek_to_time(&self, timestamp_ms: i64) -> Result<i64, Error> {
        self.ask(SeekToTime(timestamp_ms)).await?
    }

    /// The next offset this consumer will read (partition mode), once known.
    #[must_use]
    pub fn offset(&self) -> Option<i64> {
        *self
            .inner
            .position
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// How many messages are behind this consumer's position: the high
    /// watermark minus the next offset, summed over its partitions. Go's `Lag`.
    pub async fn lag(&self) -> Result<i64, Error> {
        self.ask(Lag).await?
    }

    #[cfg(feature = "testing")]
    /// Makes the librdkafka client fail fatally, so tests can watch the
    /// consumer replace it: the next fetch continues where this one stopped
    /// (partition mode) or from the committed offsets (group mode).
    pub async fn simulate_fatal_error(&self, reason: &str) -> Result<(), Error> {
        let (_, consumer) = self.inner.slot.current()?;
        crate::native::client::inject_fatal_error(
            consumer.client(),
            rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__FATAL,
            reason,
        )
        .map_err(|reason| Error::FaultInjection { reason })
    }

    /// Stops the actor; a waiting fetch returns `Error::Closed`. Group mode
    /// leaves the group.
    pub async fn close(&self) -> Result<(), Error> {
        // A waiting fetch ends, and a restart under way stops.
        self.handle.request_close();
        self.ask(Close).await?
    }
}
