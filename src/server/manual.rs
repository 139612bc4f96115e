//! The two manual modes: the user's function gets the consumer (or the consumer
//! group) and a shutdown signal, and drives consumption itself, as Go's
//! `OnStart` and `OnConsumerGroupStart`. Unlike Go, a function that fails or
//! panics is supervised: its client is closed (so a group resumes from its
//! committed offsets), and the function is called again with a new one after
//! backoff, until the restart limit escalates.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::HandlerError;
use crate::component::Ekafka;
use crate::error::Error;
use crate::supervision::{Escalation, Incarnations, RestartPolicy, Supervisor};

use super::shared::KIND;

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
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Waits until shutdown is requested (at once if it already was).
    pub async fn requested(&mut self) {
        // An error means the server is gone, which is a shutdown too.
        let _ = self.0.wait_for(|requested| *requested).await;
    }

    /// True once shutdown was requested.
    #[must_use]
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
    pub(crate) runs: ManualRuns<C>,
    pub(crate) run: ManualRun<C>,
}

/// A manual server's incarnation is the client its function gets.
pub(crate) struct ManualRuns<C> {
    /// The client to hand to the function (the component's running one).
    pub(crate) acquire: Box<dyn Fn() -> Result<C, Error>>,
    /// Lets a failed run's client go, so the next run starts clean.
    pub(crate) release: Box<dyn Fn(C) -> LocalFuture<()>>,
}

impl<C: Clone + 'static> Incarnations for ManualRuns<C> {
    type Client = C;
    type Closed = ();

    async fn start(&self, _incarnation: u64) -> Result<C, Error> {
        (self.acquire)()
    }

    async fn discard(&self, client: C, _reason: &str) {
        (self.release)(client).await;
    }

    async fn close(&self, _client: C, _deadline: Duration) -> Result<(), Error> {
        // A function that returned `Ok` ended its run, and its client is
        // its own to close (or to leave running for others of the component).
        Ok(())
    }
}

/// A running manual-mode server: the user's function, supervised, with its
/// shutdown switch.
#[must_use = "the handle is how the server is shut down and its end observed"]
pub struct ManualServer {
    name: String,
    stop: watch::Sender<bool>,
    /// Stops a restart under way (asks the supervisor's slot to close).
    stop_restarts: Box<dyn Fn() + Send + Sync>,
    ended: watch::Receiver<Option<Ended>>,
}

impl std::fmt::Debug for ManualServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualServer")
            .field("name", &self.name)
            .finish()
    }
}

impl ManualServer {
    pub(crate) fn spawn<C: Clone + Send + Sync + 'static>(
        spec: ManualSpec<C>,
    ) -> Result<Self, Error> {
        // The first client is taken now, so a misconfigured server fails at start.
        let first = (spec.runs.acquire)()?;
        let escalator = spec.kafka.escalator().clone();
        let supervisor =
            Supervisor::new(spec.runs, first, KIND, &spec.name, spec.policy, escalator);
        let slot = Arc::clone(supervisor.slot());
        let (stop, requested) = watch::channel(false);
        let (ended_tx, ended) = watch::channel(None);
        let name = spec.name.clone();
        let run = spec.run;
        actix::spawn(async move {
            let outcome = supervise(&spec.name, supervisor, run, requested).await;
            ended_tx.send_replace(Some(outcome));
        });
        Ok(ManualServer {
            name,
            stop,
            stop_restarts: Box::new(move || slot.request_close()),
            ended,
        })
    }

    /// The server's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Asks the function to stop and waits for it to return.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.stop.send_replace(true);
        (self.stop_restarts)();
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
                kind: KIND,
                name: self.name.clone(),
            }),
        }
    }
}

/// Calls the function with each incarnation's client until it returns `Ok`,
/// fails during shutdown, or fails past the restart limit.
async fn supervise<C: Clone + Send + 'static>(
    name: &str,
    supervisor: Supervisor<ManualRuns<C>>,
    run: ManualRun<C>,
    requested: watch::Receiver<bool>,
) -> Ended {
    loop {
        let (incarnation, client) = match supervisor.slot().ready().await {
            Ok(running) => running,
            // Shutdown was asked for while a restart backed off.
            Err(Error::Closed { .. }) => return Ended::Finished,
            Err(e) => return Ended::Failed(e.to_string()),
        };
        let running = run(client, Shutdown(requested.clone()));
        // Its own task, so that a panic ends the run, not the supervisor.
        let reason = match actix::spawn(running).await {
            Ok(Ok(())) => {
                // The run ended well; a client that then fails to close (what
                // it acknowledged left uncommitted, say) ends the server failed.
                return match supervisor.close(Duration::ZERO).await {
                    Ok(_) => Ended::Finished,
                    Err(error) => Ended::Failed(format!("closing its client failed: {error}")),
                };
            }
            Ok(Err(error)) => error.to_string(),
            Err(join) => format!("the function panicked or was cancelled: {join}"),
        };
        let shutting_down = *requested.borrow();
        match supervisor.fail(incarnation, reason.clone()).await {
            Err(escalation) => return Ended::Escalated(escalation),
            Ok(()) if shutting_down => {
                tracing::warn!(server = name, %reason, "consumer server failed while shutting down");
                return Ended::Failed(reason);
            }
            Ok(()) => {}
        }
    }
}
