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
    /// handled by then are delivered again to the partitions' next owner.
    async fn stop(self, server: &str, deadline: Duration) {
        let (idle_tx, idle) = oneshot::channel();
        if self.actor.send(Quiesce(idle_tx)).await.is_ok()
            && tokio::time::timeout(deadline, idle).await.is_err()
        {
            tracing::warn!(server, ?deadline, "handlers still running at the shutdown deadline; their messages will be delivered again");
        }
        match self.group.close_within(Duration::ZERO).await {
            Ok(()) | Err(Error::Closed { .. }) => {}
            Err(e) => tracing::warn!(server, error = %e, "closing the consumer group failed"),
        }
        self.actor.do_send(Terminate);
    }
}

/// Runs the server until shutdown is requested (its deadline arrives on
/// `shutdown`) or it fails past its restart limit.
pub(crate) async fn supervise(
    spec: Rc<ServerSpec>,
    state: Rc<ServerState>,
    mut instance: Instance,
    mut shutdown: watch::Receiver<Option<Duration>>,
) -> Result<(), Escalation> {
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
                instance.stop(&spec.name, deadline).await;
                return Ok(());
            }
        };
        tracing::warn!(server = %spec.name, %reason, "consumer server failed");
        instance.stop(&spec.name, spec.drain_timeout).await;
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
