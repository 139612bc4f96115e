//! Consumer groups: `[kafka.consumerGroups.NAME]` as supervised actors that hand
//! messages and rebalance events to subscriber actors, or to a pull API.
//!
//! Two ways to consume, which can be combined:
//!
//! - **Push**: [`ConsumerGroup::subscribe`] an actor that handles
//!   [`MessageBatch`]es (and [`ConsumerGroup::subscribe_events`] one for
//!   [`GroupEvent`]s). Each batch holds consecutive messages of one partition, in
//!   offset order; the actor acknowledges them with [`MessageBatch::ack`].
//! - **Pull**: [`ConsumerGroup::poll`] returns one [`Event`] at a time (message,
//!   assigned, revoked, error), like the Go `Poll`; acknowledge a message with
//!   [`ConsumerGroup::ack`] or commit it with [`ConsumerGroup::commit`].
//!
//! Commits: what every subscriber acknowledged is committed as soon as it is
//! acknowledged when `commitInterval` is 0 (the default), or every
//! `commitInterval`; never past a message not yet acknowledged. Commits are
//! asynchronous (one in flight, each bounded by the group's `timeout`), so
//! reading and dispatch never wait for the coordinator; a failed one is a
//! [`GroupEvent::Error`] naming what it left uncommitted. At most `maxBuffered`
//! messages and `maxBufferedBytes` bytes are held between fetch and
//! acknowledgement; beyond that the group pauses its partitions (and librdkafka's
//! prefetch is sized from the same bound), so a stalled subscriber costs bounded
//! memory and never blocks a rebalance.
//!
//! Each member runs under the crate's supervision core: an incarnation is one
//! librdkafka consumer with its engine thread (`member.rs`), replaced with
//! backoff when it fails fatally, its subscribers attached again.
//!
//! On revoke the group stops handing out the revoked partitions, waits up to
//! `drainTimeout` for outstanding acknowledgements, commits, then lets them go. On
//! close it does the same for every partition and leaves the group.

mod engine;
mod ledger;
mod member;
mod pull;
mod status;
mod values;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

pub(crate) use member::{GroupProperties, GroupSpec};
pub use status::GroupStatus;
pub use values::ValueBatch;

use crate::observe::GroupProbe;
use crate::record::{Ack, AckKind, AckSender, Event, GroupEvent, MessageBatch};
use engine::Command;
use engine::{Exit, MessageSink};
use member::{EngineExited, EngineHandle, GroupMembers, COMMIT_AND_LEAVE, KIND};
use pull::Pull;

use crate::consumer::{ConsumedMessage, PartitionOffset, TopicPartition};
use crate::error::Error;
use crate::handle::ActorHandle;
use crate::supervision::{Slot, Supervisor};

/// State shared by the actor and every handle.
struct Shared {
    name: String,
    /// The running engine, or why there is none.
    slot: Arc<Slot<EngineHandle>>,
    pull: tokio::sync::Mutex<Option<Pull>>,
    drain_timeout: Duration,
    /// Set once the actor stopped, for good.
    ended: tokio::sync::watch::Sender<bool>,
    /// What health checks read of the current member.
    probe: Arc<GroupProbe>,
    /// The topics it subscribes to.
    topics: Vec<String>,
}

impl Shared {
    fn send(&self, command: Command) -> Result<(), Error> {
        let (_, engine) = self.slot.current()?;
        engine.0.send(command).map_err(|_| self.closed_error())
    }

    fn closed_error(&self) -> Error {
        Error::Closed {
            kind: KIND,
            name: self.name.clone(),
        }
    }

    /// Asks the running engine, waiting out a restart under way.
    async fn ask<T>(
        &self,
        make: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> Command,
    ) -> Result<T, Error> {
        let (_, engine) = self.slot.ready().await?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        engine
            .0
            .send(make(reply))
            .map_err(|_| self.closed_error())?;
        answer.await.map_err(|_| self.closed_error())
    }
}

/// The supervised actor of one group member. Users hold a [`ConsumerGroup`].
pub(crate) struct ConsumerGroupActor {
    supervisor: Supervisor<GroupMembers>,
    shared: Arc<Shared>,
}

impl Actor for ConsumerGroupActor {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        // Stopped without close (the System is shutting down): still drain and leave.
        if let Some(engine) = self.shared.slot.abandon() {
            let (reply, _) = tokio::sync::oneshot::channel();
            let _ = engine.0.send(Command::Close {
                drain: Duration::MAX,
                reply,
            });
        }
        self.shared.ended.send_replace(true);
    }
}

impl Handler<EngineExited> for ConsumerGroupActor {
    type Result = ();

    fn handle(&mut self, exited: EngineExited, ctx: &mut Self::Context) {
        let Exit::Failed(reason) = exited.exit else {
            return;
        };
        let supervisor = self.supervisor.clone();
        let restart = async move { supervisor.fail(exited.incarnation, reason).await };
        ctx.wait(restart.into_actor(self).map(|restarted, _act, ctx| {
            if restarted.is_err() {
                ctx.stop(); // escalated: the component and the App know why
            }
        }));
    }
}

#[derive(Message)]
#[rtype(result = "Result<(), Error>")]
struct Subscribe(Recipient<MessageBatch>);

impl Handler<Subscribe> for ConsumerGroupActor {
    type Result = ResponseFuture<Result<(), Error>>;

    fn handle(
        &mut self,
        Subscribe(recipient): Subscribe,
        _ctx: &mut Self::Context,
    ) -> Self::Result {
        self.supervisor
            .spec()
            .add_message_subscriber(recipient.clone());
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            shared
                .ask(|reply| Command::SubscribeMessages {
                    sink: MessageSink::Actor(recipient),
                    reply,
                })
                .await?
                .map_err(|reason| Error::Subscription { reason })
        })
    }
}

#[derive(Message)]
#[rtype(result = "Result<(), Error>")]
struct SubscribeEvents(Recipient<GroupEvent>);

impl Handler<SubscribeEvents> for ConsumerGroupActor {
    type Result = Result<(), Error>;

    fn handle(
        &mut self,
        SubscribeEvents(recipient): SubscribeEvents,
        _ctx: &mut Self::Context,
    ) -> Self::Result {
        self.supervisor
            .spec()
            .add_event_subscriber(recipient.clone());
        self.shared.send(Command::SubscribeEvents(recipient))
    }
}

#[derive(Message)]
#[rtype(result = "Result<(), Error>")]
struct Close {
    drain: Duration,
}

impl Handler<Close> for ConsumerGroupActor {
    type Result = AtomicResponse<Self, Result<(), Error>>;

    fn handle(&mut self, Close { drain }: Close, _ctx: &mut Self::Context) -> Self::Result {
        // Never hang: the engine gets the drain timeout plus time to commit and leave.
        let deadline = self
            .shared
            .drain_timeout
            .min(drain)
            .saturating_add(COMMIT_AND_LEAVE);
        let supervisor = self.supervisor.clone();
        let close = async move { supervisor.close(deadline).await.map(drop) };
        AtomicResponse::new(Box::pin(close.into_actor(self).map(|result, _act, ctx| {
            ctx.stop();
            result
        })))
    }
}

/// A handle to a running group member. Cheap to clone.
///
/// ```no_run
/// # async fn run(kafka: ekafka::Ekafka) -> Result<(), ekafka::Error> {
/// use ekafka::consumer::Event;
/// let group = kafka.consumer_group("cg1")?;
/// loop {
///     match group.poll().await? {
///         Event::Message(message) => {
///             println!("{:?}", message.value_str());
///             group.commit(&[message]).await?;
///         }
///         Event::Assigned(assigned) => println!("assigned {:?}", assigned.partitions),
///         Event::Revoked(revoked) => println!("revoked {:?}", revoked.partitions),
///         Event::Error(error) => eprintln!("{}", error.message),
///         _ => {} // events added in later versions
///     }
/// #   break;
/// }
/// group.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ConsumerGroup {
    handle: ActorHandle<ConsumerGroupActor, EngineHandle>,
    shared: Arc<Shared>,
}

/// Two handles are equal when they talk to the same actor.
impl PartialEq for ConsumerGroup {
    fn eq(&self, other: &Self) -> bool {
        self.handle == other.handle
    }
}

impl Eq for ConsumerGroup {}

impl std::fmt::Debug for ConsumerGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.handle.debug(f, "ConsumerGroup")
    }
}

impl ConsumerGroup {
    pub(crate) fn start(spec: GroupSpec) -> Result<Self, Error> {
        let drain_timeout = spec.config.flow.drain_timeout;
        let name = spec.name.clone();
        let (policy, escalator) = (spec.restart_policy.clone(), spec.escalator.clone());
        let probe = Arc::clone(&spec.probe);
        let topics = spec.config.topics.clone();
        // The engine reports to the actor, so the actor's address comes first.
        let context = Context::<ConsumerGroupActor>::new();
        let members = GroupMembers::new(spec, context.address().recipient());
        let first = members.launch(0)?;
        let supervisor = Supervisor::new(members, first, KIND, &name, policy, escalator);
        let shared = Arc::new(Shared {
            name,
            slot: Arc::clone(supervisor.slot()),
            pull: tokio::sync::Mutex::new(None),
            drain_timeout,
            ended: tokio::sync::watch::Sender::new(false),
            probe,
            topics,
        });
        let actor = ConsumerGroupActor {
            supervisor,
            shared: Arc::clone(&shared),
        };
        let addr = context.run(actor);
        let handle = ActorHandle::new(KIND, &shared.name, addr, Arc::clone(&shared.slot));
        Ok(ConsumerGroup { handle, shared })
    }

    /// The topics the group subscribes to.
    pub(crate) fn topics(&self) -> &[String] {
        &self.shared.topics
    }

    /// The configured name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.handle.name()
    }

    /// What health checks read of the current member.
    pub(crate) fn probe(&self) -> &Arc<GroupProbe> {
        &self.shared.probe
    }

    /// How often the member was restarted (a new client) after a failure.
    #[must_use]
    pub fn restarts(&self) -> u64 {
        self.shared.slot.status().restarts
    }

    /// True once closed (or stopped).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Sends every message, in batches, to `subscriber`, which acknowledges them
    /// with [`MessageBatch::ack`]. Several subscribers each get every message.
    pub async fn subscribe(&self, subscriber: Recipient<MessageBatch>) -> Result<(), Error> {
        self.handle.ask(Subscribe(subscriber)).await?
    }

    /// Like [`subscribe`](Self::subscribe), with each message's value decoded
    /// by `codec`: `subscriber` gets [`ValueBatch`]es, acknowledged as
    /// [`MessageBatch`]es are. Decoding runs on the calling thread's arbiter,
    /// never on the group's engine.
    ///
    /// ```no_run
    /// # async fn run(group: ekafka::ConsumerGroup) -> Result<(), ekafka::Error> {
    /// use actix::prelude::*;
    /// use ekafka::codec::Json;
    /// use ekafka::consumer::ValueBatch;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Click {
    ///     page: String,
    /// }
    ///
    /// struct Counter;
    /// impl Actor for Counter {
    ///     type Context = Context<Self>;
    /// }
    /// impl Handler<ValueBatch<Click>> for Counter {
    ///     type Result = ();
    ///     fn handle(&mut self, batch: ValueBatch<Click>, _: &mut Context<Self>) {
    ///         for (message, click) in batch.iter() {
    ///             match click {
    ///                 Ok(click) => println!("{}", click.page),
    ///                 Err(undecodable) => eprintln!("skipped: {undecodable}"),
    ///             }
    ///         }
    ///         batch.ack();
    ///     }
    /// }
    ///
    /// group.subscribe_values(Json, Counter.start().recipient()).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn subscribe_values<T, C>(
        &self,
        codec: C,
        subscriber: Recipient<ValueBatch<T>>,
    ) -> Result<(), Error>
    where
        T: Send + 'static,
        C: crate::codec::Decoder<T>,
    {
        let decoding = values::Decoding {
            codec: Box::new(codec),
            subscriber,
        }
        .start();
        self.subscribe(decoding.recipient()).await
    }

    /// Sends every group event (assigned, revoked, error) to `subscriber`.
    pub async fn subscribe_events(&self, subscriber: Recipient<GroupEvent>) -> Result<(), Error> {
        self.handle.ask(SubscribeEvents(subscriber)).await?
    }

    /// The next event: a message, an assignment, a revocation or an error. The
    /// first call attaches the pull API as a subscriber; messages it returns must
    /// be acknowledged ([`ack`](Self::ack)) or committed ([`commit`](Self::commit)).
    ///
    /// Events come ahead of messages: after [`Event::Revoked`] no message of
    /// the revoked partitions is returned (what was fetched for them is
    /// dropped, for their next owner to read), and the revoke waits, up to
    /// `drainTimeout`, only for the messages already returned: ack or commit
    /// what you handled of them when the revoke comes.
    pub async fn poll(&self) -> Result<Event, Error> {
        let mut pull = self.shared.pull.lock().await;
        loop {
            if pull.is_none() {
                let (puller, sink) = Pull::new();
                self.shared
                    .ask(|reply| Command::SubscribeMessages {
                        sink: MessageSink::Pull(sink),
                        reply,
                    })
                    .await?
                    .map_err(|reason| Error::Subscription { reason })?;
                *pull = Some(puller);
            }
            match pull.as_mut().expect("set above").next().await {
                Some(event) => return Ok(event),
                None => {
                    // The engine stopped: closed for good, or restarting; the
                    // next one gets a new pull subscription.
                    *pull = None;
                    self.shared.slot.ready().await?;
                }
            }
        }
    }

    async fn pull_ack(&self) -> Option<AckSender> {
        self.shared.pull.lock().await.as_ref().and_then(Pull::ack)
    }

    /// Acknowledges a message returned by [`poll`](Self::poll); it is committed
    /// with the next commit.
    pub async fn ack(&self, message: &ConsumedMessage) -> Result<(), Error> {
        let Some(ack) = self.pull_ack().await else {
            return Ok(());
        };
        self.shared.send(Command::Ack(Ack {
            by: ack.by,
            partition: TopicPartition {
                topic: Arc::clone(message.shared_topic()),
                partition: message.partition(),
            },
            from: message.offset(),
            to: message.offset(),
            kind: AckKind::Handled,
        }))
    }

    /// Acknowledges messages returned by [`poll`](Self::poll) and commits, now and
    /// synchronously, every offset that is fully acknowledged: per partition, one
    /// past the highest message handled, as Go's `CommitMessages` does, but never
    /// past a message not yet acknowledged. Returns what was committed.
    pub async fn commit(
        &self,
        messages: &[ConsumedMessage],
    ) -> Result<Vec<PartitionOffset>, Error> {
        let by = self.pull_ack().await.map_or(0, |a| a.by);
        let offsets = messages
            .iter()
            .map(|m| {
                let partition = TopicPartition {
                    topic: Arc::clone(m.shared_topic()),
                    partition: m.partition(),
                };
                (partition, m.offset(), m.offset())
            })
            .collect();
        self.shared
            .ask(|reply| Command::Commit { by, offsets, reply })
            .await?
            .map_err(|uncommitted| Error::Commit {
                kind: KIND,
                name: self.shared.name.clone(),
                offsets: uncommitted.offsets,
                failure: uncommitted.failure,
            })
    }

    /// Stops reading `partition` until `until`, pausing it in librdkafka:
    /// what a subscriber holds of it is not due before then. A member that
    /// was replaced meanwhile reads it at once; its subscriber holds again.
    pub(crate) fn hold(&self, partition: TopicPartition, until: std::time::Instant) {
        // A member gone has no partition to hold.
        let _ = self.shared.send(Command::Hold { partition, until });
    }

    /// The member's group metadata (group id, generation, member id): what a
    /// transaction needs to commit offsets as this member, so that a member
    /// fenced by a rebalance cannot commit.
    pub(crate) async fn group_metadata(
        &self,
    ) -> Result<rdkafka::consumer::ConsumerGroupMetadata, Error> {
        self.shared
            .ask(Command::GroupMetadata)
            .await?
            .ok_or_else(|| Error::Unsupported {
                name: self.shared.name.clone(),
                reason: "the member has no group metadata yet".into(),
            })
    }

    /// Commits, now and synchronously, everything subscribers have acknowledged.
    pub async fn commit_acknowledged(&self) -> Result<Vec<PartitionOffset>, Error> {
        self.commit(&[]).await
    }

    #[cfg(feature = "testing")]
    /// Makes the underlying librdkafka consumer fail fatally, as a fenced member
    /// does, so tests can watch the actor restart it; subscribers stay attached
    /// and consumption resumes from the last commit.
    pub async fn simulate_fatal_error(&self, reason: &str) -> Result<(), Error> {
        let reason = reason.to_string();
        self.shared
            .ask(|reply| Command::SimulateFatalError { reason, reply })
            .await?
            .map_err(|reason| Error::FaultInjection { reason })
    }

    /// Assignment, pauses, buffer use and commits.
    pub async fn status(&self) -> Result<GroupStatus, Error> {
        self.shared.ask(Command::Status).await
    }

    /// Drains (waits up to `drainTimeout` for acknowledgements), commits, leaves
    /// the group and stops the actor. Never hangs: past its deadline it returns an
    /// error and lets the member go.
    pub async fn close(&self) -> Result<(), Error> {
        self.close_within(Duration::MAX).await
    }

    /// Like [`close`](Self::close), but waits at most `drain` (and never longer
    /// than `drainTimeout`) for outstanding acknowledgements. With
    /// `Duration::ZERO` it commits what was acknowledged and leaves at once; the
    /// rest is delivered again to the partitions' next owner. Consumer servers
    /// use this once their in-flight handlers are done.
    pub async fn close_within(&self, drain: Duration) -> Result<(), Error> {
        // Requests are refused from now on, and a restart under way stops.
        self.handle.request_close();
        // A puller not inside poll() will not see the close's revoke: what
        // it has not been handed yet goes back now, so the drain waits only
        // for what poll() returned. A poll() under way gets the revoke.
        if let Ok(mut pull) = self.shared.pull.try_lock() {
            *pull = None;
        }
        self.handle.ask(Close { drain }).await?
    }

    /// Waits until the member has stopped for good: closed, or failed past its
    /// restart limit (the component's [`escalation`](crate::Ekafka::escalation)
    /// then says why).
    pub async fn closed(&self) {
        let mut ended = self.shared.ended.subscribe();
        let _ = ended.wait_for(|ended| *ended).await;
    }
}
