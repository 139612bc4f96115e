//! The two manual modes: the user's function gets the consumer (or the consumer
//! group) and a shutdown signal, and drives consumption itself, as Go's
//! `OnStart` and `OnConsumerGroupStart`. Unlike Go, a function that fails or
//! panics is supervised: its client is closed (so a group resumes from its
//! committed offsets), and the function is called again with a new one after
//! backoff, until the restart limit escalates.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::watch;

use super::HandlerError;
use crate::component::Ekafka;
use crate::error::Error;
use crate::supervision::{Escalation, RestartPolicy, RestartTracker};

/// Tells a manual handler that the server is shutting down.
///
/// ```no_run
/// # async fn run(consumer: ekafka::Consumer, mut shutdown: ekafka::server::Shutdown) {
/// loop {
///     tokio::select! {
///         _ = shutdown.requested() => break,
///         message = consumer.fetch() => { let _ = message; }
///     }
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Waits until shutdown is requested (at once if it already was).
    pub async fn requested(&mut self) {
        // An error means the server is gone, which is a shutdown too.
        let _ = self.0.wait_for(|requested| *requested).await;
    }

    /// True once shutdown was requested.
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }
}

/// How a manual server ended, kept for every caller of `wait`.
#[derive(Clone)]
enum Ended {
    Finished,
    /// Failed while shutting down: nothing left to restart.
    Failed(String),
    Escalated(Escalation),
}

type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// The user's function, called once per run with a client and the shutdown signal.
pub(crate) type ManualRun<C> = Box<dyn Fn(C, Shutdown) -> LocalFuture<Result<(), HandlerError>>>;

/// What the supervisor needs to run one manual server again and again.
pub(crate) struct ManualSpec<C> {
    pub(crate) name: String,
    pub(crate) kafka: Ekafka,
    pub(crate) policy: RestartPolicy,
    /// The client to hand to the function (the component's running one).
    pub(crate) acquire: Box<dyn Fn() -> Result<C, Error>>,
    /// Lets a failed run's client go, so the next run starts clean.
    pub(crate) release: Box<dyn Fn(C) -> LocalFuture<()>>,
    pub(crate) run: ManualRun<C>,
}

/// A running manual-mode server: the user's function, supervised, with its
/// shutdown switch.
pub struct ManualServer {
    name: String,
    stop: watch::Sender<bool>,
    ended: watch::Receiver<Option<Ended>>,
}

impl ManualServer {
    pub(crate) fn spawn<C: Clone + 'static>(spec: ManualSpec<C>) -> Result<Self, Error> {
        // The first client is taken now, so a misconfigured server fails at start.
        let first = (spec.acquire)()?;
        let (stop, requested) = watch::channel(false);
        let (ended_tx, ended) = watch::channel(None);
        let name = spec.name.clone();
        actix::spawn(async move {
            let outcome = supervise(spec, first, requested).await;
            ended_tx.send_replace(Some(outcome));
        });
        Ok(ManualServer { name, stop, ended })
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Asks the function to stop and waits for it to return.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.stop.send_replace(true);
        self.wait().await
    }

    /// Waits for the server to end: its function returned `Ok`, or failed
    /// during shutdown (`ServerFailed`), or failed past the restart limit
    /// (`GaveUp`).
    pub async fn wait(&self) -> Result<(), Error> {
        let mut ended = self.ended.clone();
        let outcome = ended
            .wait_for(Option::is_some)
            .await
            .map(|ended| ended.clone().expect("waited for Some"));
        match outcome {
            Ok(Ended::Finished) => Ok(()),
            Ok(Ended::Failed(reason)) => Err(Error::ServerFailed {
                name: self.name.clone(),
                reason,
            }),
            Ok(Ended::Escalated(escalation)) => Err(escalation.into()),
            Err(_) => Err(Error::ActorStopped {
                kind: super::supervisor::KIND,
                name: self.name.clone(),
            }),
        }
    }
}

async fn supervise<C: Clone + 'static>(
    spec: ManualSpec<C>,
    first: C,
    requested: watch::Receiver<bool>,
) -> Ended {
    let mut tracker = RestartTracker::new(
        spec.policy.clone(),
        super::supervisor::KIND,
        &spec.name,
        spec.kafka.escalator().clone(),
    );
    let mut client = Ok(first);
    loop {
        let reason = match client {
            Ok(client) => {
                let run = (spec.run)(client.clone(), Shutdown(requested.clone()));
                // Its own task, so that a panic ends the run, not the supervisor.
                let reason = match actix::spawn(run).await {
                    Ok(Ok(())) => return Ended::Finished,
                    Ok(Err(error)) => error.to_string(),
                    Err(join) => format!("the function panicked or was cancelled: {join}"),
                };
                (spec.release)(client).await;
                reason
            }
            Err(e) => format!("cannot get its client: {e}"),
        };
        if *requested.borrow() {
            tracing::warn!(server = %spec.name, %reason, "consumer server failed while shutting down");
            return Ended::Failed(reason);
        }
        tracing::warn!(server = %spec.name, %reason, "consumer server failed");
        let delay = match tracker.next_delay(&reason) {
            Ok(delay) => delay,
            Err(escalation) => return Ended::Escalated(escalation),
        };
        let mut stop = requested.clone();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|requested| *requested) => return Ended::Finished,
        }
        tracing::info!(server = %spec.name, "consumer server restarting");
        client = (spec.acquire)();
    }
}
