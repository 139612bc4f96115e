//! One incarnation of a group member: a librdkafka consumer driven by its
//! engine thread. The group's [`Supervisor`](crate::supervision::Supervisor)
//! starts one, replaces it when its engine fails, and closes the last one.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::engine::{self, Engine, EngineSettings, Exit, GroupContext, MessageSink};
use super::engine::{Command, Commands};
use crate::config::{ConsumerGroupConfig, Properties};
use crate::error::Error;
use crate::interceptor::{Chain, ClientInfo, ClientKind};
use crate::observe::{GroupProbe, Metrics};
use crate::record::{GroupEvent, MessageBatch};
use crate::supervision::{Escalator, Incarnations, RestartPolicy};

pub(crate) const KIND: &str = "consumer group";

/// What a close may take beyond draining: the final commit and leaving the group.
pub(crate) const COMMIT_AND_LEAVE: Duration = Duration::from_secs(15);

/// Everything needed to (re)start the member.
/// A member's librdkafka properties, made from its topics' partition count
/// (see `config::librdkafka::consumer_group`).
pub(crate) type GroupProperties = Arc<dyn Fn(Option<usize>) -> Properties + Send + Sync>;

pub(crate) struct GroupSpec {
    pub(crate) name: String,
    /// Shared with every incarnation's engine, as read.
    pub(crate) config: Arc<ConsumerGroupConfig>,
    /// The member's librdkafka properties for its topics' partition count.
    pub(crate) properties: GroupProperties,
    pub(crate) interceptors: Chain,
    pub(crate) restart_policy: RestartPolicy,
    pub(crate) escalator: Escalator,
    /// The component's metrics, when they are on.
    pub(crate) metrics: Option<Arc<Metrics>>,
    /// What health checks read, written by every incarnation's engine.
    pub(crate) probe: Arc<GroupProbe>,
}

/// The engine thread of one incarnation ended: closed, or failed.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct EngineExited {
    pub(crate) incarnation: u64,
    pub(crate) exit: Exit,
}

/// Where the commands of a running engine go.
#[derive(Clone)]
pub(crate) struct EngineHandle(pub(crate) Commands);

/// How the group's members are started, replaced and closed.
pub(crate) struct GroupMembers {
    pub(crate) spec: GroupSpec,
    /// Where engines report their end.
    exits: Recipient<EngineExited>,
    /// Attached again to every new incarnation.
    message_subscribers: RefCell<Vec<Recipient<MessageBatch>>>,
    event_subscribers: RefCell<Vec<Recipient<GroupEvent>>>,
}

impl GroupMembers {
    pub(crate) fn new(spec: GroupSpec, exits: Recipient<EngineExited>) -> Self {
        GroupMembers {
            spec,
            exits,
            message_subscribers: RefCell::default(),
            event_subscribers: RefCell::default(),
        }
    }

    pub(crate) fn add_message_subscriber(&self, recipient: Recipient<MessageBatch>) {
        self.message_subscribers.borrow_mut().push(recipient);
    }

    pub(crate) fn add_event_subscriber(&self, recipient: Recipient<GroupEvent>) {
        self.event_subscribers.borrow_mut().push(recipient);
    }

    fn client_info(&self) -> ClientInfo {
        ClientInfo {
            kind: ClientKind::ConsumerGroup,
            name: self.spec.name.clone(),
            topic: self.spec.config.topics.first().cloned(),
        }
    }

    /// Starts incarnation `incarnation`: checks the client config (a
    /// misconfigured group fails here, where it is asked for), then starts the
    /// engine thread, which sizes librdkafka's prefetch from the partitions
    /// of the group's topics, creates and subscribes the consumer, and
    /// reports its end.
    pub(crate) fn launch(&self, incarnation: u64) -> Result<EngineHandle, Error> {
        let settings = EngineSettings {
            client: self.client_info(),
            config: Arc::clone(&self.spec.config),
        };
        let metrics = self.spec.metrics.as_ref().map(|m| m.group(&self.spec.name));
        let engine = Engine::new(
            settings,
            self.spec.interceptors.clone(),
            metrics,
            Arc::clone(&self.spec.probe),
        );
        let commands = engine.commands();
        // Without a group id: it never joins, and closing it does not wait
        // for a group it is not in.
        let probe: BaseConsumer = (self.spec.properties)(None)
            .to_client_config()
            .remove("group.id")
            // Short-lived, with no context to take them.
            .remove("statistics.interval.ms")
            // With sparse connections librdkafka connects on demand, about
            // 50 ms after the metadata is asked for (Apache Kafka 4.4,
            // librdkafka 2.x: 55 ms against 3-5 ms connecting at once); the
            // probe stands in front of the member's join.
            .set("enable.sparse.connections", "false")
            .create()
            .map_err(|source| Error::Client {
                kind: KIND,
                name: self.spec.name.clone(),
                source,
            })?;
        let start = EngineStart {
            probe,
            properties: Arc::clone(&self.spec.properties),
            config: Arc::clone(&self.spec.config),
        };
        let exits = self.exits.clone();
        std::thread::Builder::new()
            .name(format!("ekafka-group-{}", self.spec.name))
            .spawn(move || match start.consumer(engine) {
                Ok(consumer) => run_engine(consumer, incarnation, exits),
                Err(reason) => exits.do_send(EngineExited {
                    incarnation,
                    exit: Exit::Failed(reason),
                }),
            })
            .map_err(|e| Error::GaveUp {
                kind: KIND,
                name: self.spec.name.clone(),
                restarts: 0,
                reason: format!("cannot start the engine thread: {e}"),
            })?;
        for recipient in self.message_subscribers.borrow().iter() {
            let (reply, _) = tokio::sync::oneshot::channel();
            let _ = commands.send(Command::SubscribeMessages {
                sink: MessageSink::Actor(recipient.clone()),
                reply,
            });
        }
        for recipient in self.event_subscribers.borrow().iter() {
            let _ = commands.send(Command::SubscribeEvents(recipient.clone()));
        }
        Ok(EngineHandle(commands))
    }
}

/// What the engine thread needs to create its consumer.
struct EngineStart {
    /// A client of the same config, never subscribed: reads the metadata.
    probe: BaseConsumer,
    properties: GroupProperties,
    config: Arc<ConsumerGroupConfig>,
}

impl EngineStart {
    /// The consumer, its prefetch sized for the topics' partitions, subscribed.
    fn consumer(self, engine: Engine) -> Result<BaseConsumer<GroupContext>, String> {
        let partitions = self.partitions();
        drop(self.probe);
        // The member's properties, made once, now that the count is known.
        let client_config = (self.properties)(partitions).to_client_config();
        let consumer =
            BaseConsumer::from_config_and_context(&client_config, GroupContext::new(engine))
                .map_err(|e| format!("cannot create the consumer: {e}"))?;
        let topics: Vec<&str> = self.config.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| format!("cannot subscribe to {topics:?}: {e}"))?;
        Ok(consumer)
    }

    /// The partitions of the group's topics, when the metadata says.
    fn partitions(&self) -> Option<usize> {
        let mut count = 0;
        for topic in &self.config.topics {
            let metadata = self
                .probe
                .fetch_metadata(Some(topic), self.config.timeout)
                .ok()?;
            count += metadata.topics().first()?.partitions().len();
        }
        (count > 0).then_some(count)
    }
}

/// The engine thread: runs the engine and reports its end, also when it panics.
fn run_engine(
    consumer: BaseConsumer<GroupContext>,
    incarnation: u64,
    exits: Recipient<EngineExited>,
) {
    let told = Arc::new(AtomicBool::new(false));
    let (notify, told_in_run) = (exits.clone(), Arc::clone(&told));
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        engine::run(consumer, move |exit| {
            told_in_run.store(true, Ordering::SeqCst);
            notify.do_send(EngineExited {
                incarnation,
                exit: exit.clone(),
            });
        })
    }));
    // A panic after the exit was reported (while leaving) must not start a
    // second engine.
    if ran.is_err() && !told.load(Ordering::SeqCst) {
        exits.do_send(EngineExited {
            incarnation,
            exit: Exit::Failed("the consumer group engine panicked".into()),
        });
    }
}

impl Incarnations for GroupMembers {
    type Client = EngineHandle;
    type Closed = ();

    async fn start(&self, incarnation: u64) -> Result<EngineHandle, Error> {
        self.launch(incarnation)
    }

    async fn discard(&self, engine: EngineHandle, _reason: &str) {
        // A failed engine has ended and leaves the group on its own thread; one
        // still running (a failure injected from outside) is told to leave now,
        // without draining: the next incarnation reads from the commits.
        let (reply, _) = tokio::sync::oneshot::channel();
        let _ = engine.0.send(Command::Close {
            drain: Duration::ZERO,
            reply,
        });
    }

    /// Drains for up to `deadline` minus [`COMMIT_AND_LEAVE`], commits, leaves.
    async fn close(&self, engine: EngineHandle, deadline: Duration) -> Result<(), Error> {
        let name = &self.spec.name;
        let drain = deadline.saturating_sub(COMMIT_AND_LEAVE);
        let (reply, answer) = tokio::sync::oneshot::channel();
        if engine.0.send(Command::Close { drain, reply }).is_err() {
            return Ok(()); // the engine had ended already
        }
        match tokio::time::timeout(deadline, answer).await {
            Ok(Ok(Err(uncommitted))) => Err(Error::Uncommitted {
                name: name.clone(),
                offsets: uncommitted.offsets,
                failure: uncommitted.failure,
            }),
            Ok(_) => Ok(()),
            Err(_) => Err(Error::GaveUp {
                kind: KIND,
                name: name.clone(),
                restarts: 0,
                reason: format!(
                    "close did not finish within {deadline:?}; the group is left behind"
                ),
            }),
        }
    }
}
