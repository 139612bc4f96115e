//! Supervision of each-message servers. A server fails when one of its
//! partitions stops on a message that failed for good (no dead-letter topic), or
//! when its consumer group stops. Its [`Supervisor`] then lets the other
//! partitions' in-flight handlers finish, commits what was handled, leaves the
//! group, waits out the restart backoff and starts a new incarnation (a member
//! and a handler actor), which resumes from the committed offsets, so the
//! failed message is handled again. Past the restart limit the failure
//! escalates to the component, and so to the [`App`](crate::App).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, Recipient};
use tokio::sync::{mpsc, oneshot, watch};

use super::dead_letter::DeadLetterSink;
use super::each_message::{
    EachMessageActor, EachMessageSettings, PartitionGaveUp, Quiesce, Terminate,
};
use super::outcome::HandlerFailure;
use super::retry_topics::RetryChain;
use super::shared::MessageHandler;
use crate::component::Ekafka;
use crate::config::{
    Concurrency, DeadLetter, PartitionPastLimit, RestartPolicy, RetryDelay, RetrySettings,
};
use crate::consumer::ConsumerGroup;
use crate::error::Error;
use crate::observe::ServerProbe;
use crate::supervision::{Escalation, Incarnations, Supervisor};

/// `retryTopics`, with the producer that writes to them resolved.
pub(crate) struct DelayStages {
    pub(crate) delays: Vec<RetryDelay>,
    /// `retryProducer`, else `deadLetterProducer`.
    pub(crate) producer: String,
}

/// Everything needed to start (and restart) an each-message server.
pub(crate) struct ServerSpec {
    pub(crate) name: String,
    pub(crate) kafka: Ekafka,
    pub(crate) group_name: String,
    pub(crate) handler: MessageHandler,
    pub(crate) retry: RetrySettings,
    /// How many messages of one partition are handled at once.
    pub(crate) concurrency: Concurrency,
    /// What a partition past its limits does (`partitionPastLimit`).
    pub(crate) past_limit: PartitionPastLimit,
    /// The delays and producer of `retryTopics`, when set.
    pub(crate) retry_topics: Option<DelayStages>,
    pub(crate) dead_letter: Option<DeadLetter>,
    /// The server's restart keys, which partitions' handling restarts by too.
    pub(crate) policy: RestartPolicy,
    /// How long a restart lets in-flight handlers finish: the group's `drainTimeout`.
    pub(crate) drain_timeout: Duration,
    /// Where handler failures go, across restarts.
    pub(crate) failures: RefCell<Option<Recipient<HandlerFailure>>>,
    /// The member of the latest incarnation.
    pub(crate) group: RefCell<Option<ConsumerGroup>>,
    /// The handler calls in progress, across restarts, for liveness checks.
    pub(crate) probe: Arc<ServerProbe>,
}

/// One incarnation of the server: a group member and the actor handling its messages.
#[derive(Clone)]
pub(crate) struct Instance {
    group: ConsumerGroup,
    pub(crate) actor: Addr<EachMessageActor>,
    faults: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<PartitionGaveUp>>>,
}

impl ServerSpec {
    /// Starts an incarnation: the member, its handler actor, and their subscriptions.
    pub(crate) async fn start_instance(&self) -> Result<Instance, Error> {
        let dead_letter = match &self.dead_letter {
            Some(dl) => Some(DeadLetterSink {
                producer: self.kafka.producer(&dl.producer)?,
                topic: dl.topic.clone(),
                limit: dl.limit,
                window: dl.window,
            }),
            None => None,
        };
        let group_config = self.kafka.consumer_group_config(&self.group_name)?;
        let group_id = group_config.group_id.clone();
        let retry_chain = match &self.retry_topics {
            Some(retry_topics) => Some(RetryChain::new(
                self.kafka.producer(&retry_topics.producer)?,
                retry_topics.delays.clone(),
                &group_config.topics,
            )),
            None => None,
        };
        let delay_topics = retry_chain
            .as_ref()
            .map(RetryChain::topics)
            .unwrap_or_default();
        let group = self
            .kafka
            .consumer_group_reading(&self.group_name, &delay_topics)?;
        let (faults_tx, faults) = mpsc::unbounded_channel();
        let actor = EachMessageActor::new(EachMessageSettings {
            name: self.name.clone(),
            group: group_id,
            handler: match &self.handler {
                MessageHandler::Each(handler) => MessageHandler::Each(Rc::clone(handler)),
                // A producer closed meanwhile is started again.
                MessageHandler::Transform { handler, producer } => MessageHandler::Transform {
                    handler: Rc::clone(handler),
                    producer: self.kafka.producer(producer.name())?,
                },
                MessageHandler::Batch {
                    handler,
                    size,
                    wait,
                } => MessageHandler::Batch {
                    handler: Rc::clone(handler),
                    size: *size,
                    wait: *wait,
                },
            },
            retry: self.retry.clone(),
            concurrency: self.concurrency.clone(),
            dead_letter,
            retry_chain,
            member: group.clone(),
            errors: self.failures.borrow().clone(),
            policy: self.policy.clone(),
            past_limit: self.past_limit,
            escalator: self.kafka.escalator().clone(),
            faults: faults_tx,
            metrics: self
                .kafka
                .registry()
                .map(|registry| registry.server(&self.name)),
            probe: Arc::clone(&self.probe),
        })
        .start();
        // Events first: the actor must hear of a revoke before handling more.
        let subscribed = match group.subscribe_events(actor.clone().recipient()).await {
            Ok(()) => group.subscribe(actor.clone().recipient()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = subscribed {
            actor.do_send(Terminate);
            // The subscribe failure is the error returned; a failed close of
            // the member (nothing was handed out yet) is only logged.
            if let Err(close) = group.close_within(Duration::ZERO).await {
                tracing::warn!(server = %self.name, error = %close, "closing the group member after a failed start");
            }
            return Err(e);
        }
        *self.group.borrow_mut() = Some(group.clone());
        Ok(Instance {
            group,
            actor,
            faults: Arc::new(tokio::sync::Mutex::new(faults)),
        })
    }
}

impl Incarnations for ServerSpec {
    type Client = Instance;
    type Closed = ();

    async fn start(&self, _incarnation: u64) -> Result<Instance, Error> {
        self.start_instance().await
    }

    async fn discard(&self, instance: Instance, _reason: &str) {
        // What it could not commit is handled again after the restart.
        if let Err(error) = instance.stop(&self.name, self.drain_timeout).await {
            tracing::warn!(server = %self.name, %error, "the failed server's group closed uncleanly");
        }
    }

    async fn close(&self, instance: Instance, deadline: Duration) -> Result<(), Error> {
        instance.stop(&self.name, deadline).await
    }
}

impl Instance {
    /// Waits until this incarnation fails, and says how.
    async fn failed(&self, kafka: &Ekafka) -> Failure {
        let mut faults = self.faults.lock().await;
        tokio::select! {
            gave_up = faults.recv() => match gave_up {
                Some(PartitionGaveUp(escalation)) => Failure::Partition(escalation),
                None => Failure::Member("its handler actor stopped".into()),
            },
            _ = self.group.closed() => Failure::Member(match kafka.escalation() {
                Some(cause) => format!("its consumer group stopped: {}", cause.reason),
                None => "its consumer group stopped".into(),
            }),
        }
    }

    /// Stops starting messages, lets the handlers in flight finish (up to
    /// `deadline`), commits what was handled and leaves the group. Messages not
    /// handled by then are delivered again to the partitions' next owner. Fails
    /// when the group could not commit what was handled, or did not close.
    async fn stop(self, server: &str, deadline: Duration) -> Result<(), Error> {
        let (idle_tx, idle) = oneshot::channel();
        if self.actor.send(Quiesce(idle_tx)).await.is_ok()
            && tokio::time::timeout(deadline, idle).await.is_err()
        {
            tracing::warn!(server, ?deadline, "handlers still running at the shutdown deadline; their messages will be delivered again");
        }
        let closed = self.group.close_within(Duration::ZERO).await;
        self.actor.do_send(Terminate);
        match closed {
            Ok(()) | Err(Error::Closed { .. }) => Ok(()),
            Err(uncommitted @ Error::Uncommitted { .. }) => Err(uncommitted),
            Err(e) => Err(Error::ServerFailed {
                name: server.to_string(),
                reason: format!("closing its consumer group failed: {e}"),
            }),
        }
    }
}

/// How an incarnation failed.
enum Failure {
    /// Its member or handler actor failed: the whole incarnation restarts.
    Member(String),
    /// A partition failed past its own limit (restarting it never involved
    /// the member): the server escalates.
    Partition(Escalation),
}

/// How a supervised server ended, when not cleanly.
#[derive(Debug, Clone)]
pub(crate) enum ServerEnd {
    /// It failed past its restart limit.
    Escalated(Escalation),
    /// It stopped, but its group could not commit what was handled.
    Uncommitted {
        group: String,
        offsets: Vec<crate::consumer::PartitionOffset>,
        failure: crate::CommitFailure,
    },
    /// It stopped, but its group did not close properly.
    StopFailed { server: String, reason: String },
}

impl From<Escalation> for ServerEnd {
    fn from(escalation: Escalation) -> Self {
        ServerEnd::Escalated(escalation)
    }
}

impl From<ServerEnd> for Error {
    fn from(end: ServerEnd) -> Self {
        match end {
            ServerEnd::Escalated(escalation) => Error::from(escalation),
            ServerEnd::Uncommitted {
                group,
                offsets,
                failure,
            } => Error::Uncommitted {
                name: group,
                offsets,
                failure,
            },
            ServerEnd::StopFailed { server, reason } => Error::ServerFailed {
                name: server,
                reason,
            },
        }
    }
}

impl ServerEnd {
    /// How server `server` ended, from the error its supervisor reported.
    fn from_error(server: &str, error: Error) -> Self {
        match error {
            Error::GaveUp {
                kind,
                name,
                restarts,
                reason,
            } => ServerEnd::Escalated(Escalation {
                kind,
                name,
                restarts,
                reason,
            }),
            Error::Uncommitted {
                name,
                offsets,
                failure,
            } => ServerEnd::Uncommitted {
                group: name,
                offsets,
                failure,
            },
            Error::ServerFailed { name, reason } => ServerEnd::StopFailed {
                server: name,
                reason,
            },
            other => ServerEnd::StopFailed {
                server: server.to_string(),
                reason: other.to_string(),
            },
        }
    }
}

/// Runs the server until shutdown is requested (its deadline arrives on
/// `shutdown`, and the slot is asked to close) or it fails past its restart
/// limit.
pub(crate) async fn supervise(
    supervisor: Supervisor<ServerSpec>,
    mut shutdown: watch::Receiver<Option<Duration>>,
) -> Result<(), ServerEnd> {
    let spec = supervisor.spec();
    let close = |deadline| {
        let supervisor = supervisor.clone();
        async move {
            let closed = supervisor.close(deadline).await;
            closed
                .map(drop)
                .map_err(|e| ServerEnd::from_error(&supervisor.spec().name, e))
        }
    };
    loop {
        let (incarnation, instance) = match supervisor.slot().ready().await {
            Ok(running) => running,
            // Shutdown was asked for (perhaps while a restart backed off).
            Err(Error::Closed { .. }) => {
                let deadline = shutdown.borrow().unwrap_or(spec.drain_timeout);
                return close(deadline).await;
            }
            Err(e) => return Err(ServerEnd::from_error(&spec.name, e)),
        };
        tokio::select! {
            failure = instance.failed(&spec.kafka) => match failure {
                Failure::Member(reason) => supervisor.fail(incarnation, reason).await?,
                Failure::Partition(escalation) => {
                    // What the other partitions handled is committed first.
                    if let Err(end) = close(spec.drain_timeout).await {
                        tracing::warn!(server = %spec.name, error = %Error::from(end), "closing the escalated server failed");
                    }
                    return Err(ServerEnd::Escalated(escalation));
                }
            },
            deadline = requested(&mut shutdown) => return close(deadline).await,
        }
    }
}

/// Waits for a shutdown request and returns its deadline. A dropped handle is
/// not a request: the server then runs until its System stops.
async fn requested(shutdown: &mut watch::Receiver<Option<Duration>>) -> Duration {
    let deadline = shutdown
        .wait_for(Option::is_some)
        .await
        .map(|deadline| deadline.expect("waited for Some"));
    match deadline {
        Ok(deadline) => deadline,
        Err(_) => std::future::pending().await,
    }
}
