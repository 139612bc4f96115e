//! Supervision of each-message servers. A server fails when one of its
//! partitions stops on a message that failed for good (no dead-letter topic), or
//! when its consumer group stops. The supervisor then lets the other partitions'
//! in-flight handlers finish, commits what was handled, leaves the group, waits
//! out the restart backoff and starts a new member with a new handler actor,
//! which resumes from the committed offsets, so the failed message is handled
//! again. Past the restart limit the failure escalates to the component, and so
//! to the [`App`](crate::App).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use actix::{Actor, Addr, Recipient};
use tokio::sync::{mpsc, oneshot, watch};

use super::each_message::{
    BoxedHandler, DeadLetterSink, EachMessageActor, PartitionStopped, Quiesce, Terminate,
};
use super::HandlerFailure;
use crate::component::Ekafka;
use crate::config::{DeadLetter, RetrySettings};
use crate::consumer::ConsumerGroup;
use crate::error::Error;
use crate::supervision::{Escalation, RestartPolicy, RestartTracker};

pub(crate) const KIND: &str = "consumer server";

/// Everything needed to start (and restart) an each-message server.
pub(crate) struct ServerSpec {
    pub(crate) name: String,
    pub(crate) kafka: Ekafka,
    pub(crate) group_name: String,
    pub(crate) handler: BoxedHandler,
    pub(crate) retry: RetrySettings,
    pub(crate) dead_letter: Option<DeadLetter>,
    pub(crate) policy: RestartPolicy,
    /// How long a restart lets in-flight handlers finish: the group's `drainTimeout`.
    pub(crate) drain_timeout: Duration,
}

/// What the server's handle and its supervisor share.
pub(crate) struct ServerState {
    pub(crate) group: RefCell<ConsumerGroup>,
    pub(crate) actor: RefCell<Addr<EachMessageActor>>,
    pub(crate) failures: RefCell<Option<Recipient<HandlerFailure>>>,
    pub(crate) restarts: Cell<u32>,
}

/// One incarnation of the server: a group member and the actor handling its messages.
pub(crate) struct Instance {
    group: ConsumerGroup,
    actor: Addr<EachMessageActor>,
    faults: mpsc::UnboundedReceiver<PartitionStopped>,
}

impl ServerSpec {
    pub(crate) async fn start(
        &self,
        failures: Option<Recipient<HandlerFailure>>,
    ) -> Result<Instance, Error> {
        let dead_letter = match &self.dead_letter {
            Some(dl) => Some(DeadLetterSink {
                producer: self.kafka.producer(&dl.producer)?,
                topic: dl.topic.clone(),
            }),
            None => None,
        };
        let group = self.kafka.consumer_group(&self.group_name)?;
        let (faults_tx, faults) = mpsc::unbounded_channel();
        let actor = EachMessageActor::new(
            self.name.clone(),
            Rc::clone(&self.handler),
            self.retry.clone(),
            dead_letter,
            failures,
            faults_tx,
        )
        .start();
        // Events first: the actor must hear of a revoke before handling more.
        let subscribed = match group.subscribe_events(actor.clone().recipient()).await {
            Ok(()) => group.subscribe(actor.clone().recipient()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = subscribed {
            actor.do_send(Terminate);
            let _ = group.close_within(Duration::ZERO).await;
            return Err(e);
        }
        Ok(Instance {
            group,
            actor,
            faults,
        })
    }
}

impl Instance {
    pub(crate) fn state(&self) -> ServerState {
        ServerState {
            group: RefCell::new(self.group.clone()),
            actor: RefCell::new(self.actor.clone()),
            failures: RefCell::new(None),
            restarts: Cell::new(0),
        }
    }

    /// Waits until this incarnation fails, and says why.
    async fn failed(&mut self, kafka: &Ekafka) -> String {
        tokio::select! {
            stopped = self.faults.recv() => match stopped {
                Some(s) => format!(
                    "partition {}/{} stopped at offset {}: {}",
                    s.partition.topic, s.partition.partition, s.offset, s.error
                ),
                None => "its handler actor stopped".into(),
            },
            _ = self.group.closed() => match kafka.escalation() {
                Some(cause) => format!("its consumer group stopped: {}", cause.reason),
                None => "its consumer group stopped".into(),
            },
        }
    }

    /// Stops starting messages, lets the handlers in flight finish (up to
    /// `deadline`), commits what was handled and leaves the group. Messages not
    /// handled by then are delivered again to the partitions' next owner. Fails
    /// when the group could not commit what was handled, or did not close.
    async fn stop(self, server: &str, deadline: Duration) -> Result<(), ServerEnd> {
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
            Err(Error::Uncommitted {
                name,
                offsets,
                reason,
            }) => Err(ServerEnd::Uncommitted {
                group: name,
                offsets,
                reason,
            }),
            Err(e) => Err(ServerEnd::StopFailed {
                server: server.to_string(),
                reason: format!("closing its consumer group failed: {e}"),
            }),
        }
    }
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
        reason: String,
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
                reason,
            } => Error::Uncommitted {
                name: group,
                offsets,
                reason,
            },
            ServerEnd::StopFailed { server, reason } => Error::ServerFailed {
                name: server,
                reason,
            },
        }
    }
}

/// Runs the server until shutdown is requested (its deadline arrives on
/// `shutdown`) or it fails past its restart limit.
pub(crate) async fn supervise(
    spec: Rc<ServerSpec>,
    state: Rc<ServerState>,
    mut instance: Instance,
    mut shutdown: watch::Receiver<Option<Duration>>,
) -> Result<(), ServerEnd> {
    let mut tracker = RestartTracker::new(
        spec.policy.clone(),
        KIND,
        &spec.name,
        spec.kafka.escalator().clone(),
    );
    loop {
        let mut reason = tokio::select! {
            reason = instance.failed(&spec.kafka) => reason,
            deadline = requested(&mut shutdown) => {
                return instance.stop(&spec.name, deadline).await;
            }
        };
        tracing::warn!(server = %spec.name, %reason, "consumer server failed");
        // What it could not commit is handled again after the restart.
        if let Err(end) = instance.stop(&spec.name, spec.drain_timeout).await {
            tracing::warn!(server = %spec.name, error = %Error::from(end), "the failed server's group closed uncleanly");
        }
        instance = loop {
            let delay = tracker.next_delay(&reason)?;
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = requested(&mut shutdown) => return Ok(()),
            }
            let failures = state.failures.borrow().clone();
            match spec.start(failures).await {
                Ok(started) => break started,
                Err(e) => reason = format!("cannot restart: {e}"),
            }
        };
        tracing::info!(server = %spec.name, "consumer server restarted");
        state.restarts.set(state.restarts.get() + 1);
        *state.group.borrow_mut() = instance.group.clone();
        *state.actor.borrow_mut() = instance.actor.clone();
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
