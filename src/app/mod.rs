//! The App: the counterpart of Go's `ego.New().Serve(...).Run()`. It runs
//! consumer servers in an actix System until SIGINT or SIGTERM, or until a
//! client or server fails past its restart limit, then shuts down gracefully.

mod endpoint;
mod signals;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;
use tokio::sync::watch;

pub use signals::FORCED_EXIT_STATUS;

use endpoint::Endpoint;

use crate::component::Ekafka;
use crate::config::ConsumerServerConfig;
use crate::consumer::{ConsumedMessage, Consumer, ConsumerGroup};
use crate::error::Error;
use crate::observe::ServerProbe;
use crate::server::{
    ConsumerServer, HandleMessage, HandlerError, HandlerFailure, ManualServer, RunningServer,
    Shutdown,
};

type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// A started server, whatever its mode.
trait Served {
    fn name(&self) -> &str;
    /// Its handler calls in progress, for liveness checks (each-message servers).
    fn probe(&self) -> Option<Arc<ServerProbe>>;
    fn shutdown(&self, deadline: Duration) -> LocalFuture<Result<(), Error>>;
    fn wait(&self) -> LocalFuture<Result<(), Error>>;
}

impl Served for Rc<RunningServer> {
    fn name(&self) -> &str {
        RunningServer::name(self)
    }
    fn probe(&self) -> Option<Arc<ServerProbe>> {
        Some(RunningServer::probe(self))
    }
    fn shutdown(&self, deadline: Duration) -> LocalFuture<Result<(), Error>> {
        let server = Rc::clone(self);
        Box::pin(async move { RunningServer::shutdown(&server, deadline).await })
    }
    fn wait(&self) -> LocalFuture<Result<(), Error>> {
        let server = Rc::clone(self);
        Box::pin(async move { RunningServer::wait(&server).await })
    }
}

impl Served for Rc<ManualServer> {
    fn name(&self) -> &str {
        ManualServer::name(self)
    }
    fn probe(&self) -> Option<Arc<ServerProbe>> {
        None
    }
    fn shutdown(&self, _deadline: Duration) -> LocalFuture<Result<(), Error>> {
        // The function decides how to wind down; the App bounds the wait.
        let server = Rc::clone(self);
        Box::pin(async move { ManualServer::shutdown(&server).await })
    }
    fn wait(&self) -> LocalFuture<Result<(), Error>> {
        let server = Rc::clone(self);
        Box::pin(async move { ManualServer::wait(&server).await })
    }
}

/// Starts one server, given the component and the App's failure subscriber.
type Starter = Box<
    dyn FnOnce(
        Ekafka,
        Option<Recipient<HandlerFailure>>,
    ) -> LocalFuture<Result<Box<dyn Served>, Error>>,
>;

/// Asks a running [`App`] to shut down gracefully, as SIGTERM does, and tells
/// where it serves its HTTP endpoint. Cheap to clone and usable from any thread.
#[derive(Clone, Debug)]
pub struct AppHandle {
    shutdown: Arc<watch::Sender<bool>>,
    endpoint: Arc<watch::Sender<Option<SocketAddr>>>,
}

impl AppHandle {
    /// Starts the graceful shutdown (a no-op when it already started).
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Where the App serves its HTTP endpoint (`[kafka.observability]
    /// address`), once it does: with port `0` in the config, the port the
    /// system chose. Waits until it serves, so bound the wait with a timeout;
    /// it never serves without an address in the config.
    pub async fn endpoint(&self) -> SocketAddr {
        let mut serving = self.endpoint.subscribe();
        loop {
            if let Some(address) = *serving.borrow_and_update() {
                return address;
            }
            if serving.changed().await.is_err() {
                // Cannot happen while `self` holds the sender.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Runs consumer servers until told to stop.
///
/// - SIGINT or SIGTERM (or [`AppHandle::shutdown`]) starts a graceful shutdown:
///   servers stop starting messages, handlers in flight get until
///   [`shutdown_timeout`](Self::shutdown_timeout) to finish, what was handled is
///   committed, members leave their groups, producers flush. [`run`](Self::run)
///   then returns `Ok`.
/// - A second signal exits the process at once with status
///   [`FORCED_EXIT_STATUS`].
/// - A server, group or producer failing past its restart limit shuts the rest
///   down the same way, and `run` returns that failure ([`Error::GaveUp`]).
///
/// ```no_run
/// use ekafka::config::ConsumerServerConfig;
/// use ekafka::{App, Ekafka};
///
/// fn main() -> Result<(), ekafka::Error> {
///     let kafka = Ekafka::from_file("config.toml", "kafka")?.build()?;
///     let billing = ConsumerServerConfig::from_file("config.toml", "kafkaConsumerServers.billing")?;
///     App::new(kafka)
///         .each_message(billing, |message| async move {
///             println!("{:?}", message.value_str());
///             Ok(())
///         })
///         .run()
/// }
/// ```
#[must_use = "an App does nothing until `run` is called"]
pub struct App {
    kafka: Ekafka,
    starters: Vec<Starter>,
    shutdown_timeout: Duration,
    shutdown: Arc<watch::Sender<bool>>,
    /// Where the HTTP endpoint listens, once it does.
    endpoint: Arc<watch::Sender<Option<SocketAddr>>>,
    signals: bool,
    failures: Option<Recipient<HandlerFailure>>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("kafka", &self.kafka)
            .field("servers", &self.starters.len())
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("signals", &self.signals)
            .finish_non_exhaustive()
    }
}

impl App {
    /// An App with no server yet, over the component `kafka`.
    pub fn new(kafka: Ekafka) -> Self {
        App {
            kafka,
            starters: Vec::new(),
            shutdown_timeout: Duration::from_secs(30),
            shutdown: Arc::new(watch::Sender::new(false)),
            endpoint: Arc::new(watch::Sender::new(None)),
            signals: true,
            failures: None,
        }
    }

    /// Serves `config` in each-message mode (see [`ConsumerServer::on_each_message`]).
    pub fn each_message<F, Fut>(mut self, config: ConsumerServerConfig, handler: F) -> Self
    where
        F: Fn(ConsumedMessage) -> Fut + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + 'static,
    {
        self.starters.push(Box::new(move |kafka, failures| {
            Box::pin(async move {
                let mut builder = ConsumerServer::builder(&kafka, &config);
                if let Some(failures) = failures {
                    // Subscribed before the start: no early failure is missed.
                    builder = builder.subscribe_failures(failures);
                }
                let server = builder.on_each_message(handler).await?;
                Ok(Box::new(Rc::new(server)) as Box<dyn Served>)
            })
        }));
        self
    }

    /// Serves `config` in each-message mode with an actor as the handler (see
    /// [`ConsumerServer::on_each_message_actor`]).
    pub fn each_message_actor(
        self,
        config: ConsumerServerConfig,
        handler: Recipient<HandleMessage>,
    ) -> Self {
        self.each_message(config, crate::server::actor_handler(handler))
    }

    /// Serves `config` in on-start mode (see [`ConsumerServer::on_start`]).
    pub fn on_start<F, Fut>(mut self, config: ConsumerServerConfig, run: F) -> Self
    where
        F: Fn(Consumer, Shutdown) -> Fut + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + 'static,
    {
        self.starters.push(Box::new(move |kafka, _failures| {
            Box::pin(async move {
                let server = ConsumerServer::on_start(&kafka, &config, run)?;
                Ok(Box::new(Rc::new(server)) as Box<dyn Served>)
            })
        }));
        self
    }

    /// Serves `config` in on-consumer-group-start mode (see
    /// [`ConsumerServer::on_consumer_group_start`]).
    pub fn on_consumer_group_start<F, Fut>(mut self, config: ConsumerServerConfig, run: F) -> Self
    where
        F: Fn(ConsumerGroup, Shutdown) -> Fut + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + 'static,
    {
        self.starters.push(Box::new(move |kafka, _failures| {
            Box::pin(async move {
                let server = ConsumerServer::on_consumer_group_start(&kafka, &config, run)?;
                Ok(Box::new(Rc::new(server)) as Box<dyn Served>)
            })
        }));
        self
    }

    /// Sends the handler failures of every each-message server to `subscriber`
    /// (see [`RunningServer::subscribe_failures`]).
    pub fn subscribe_failures(mut self, subscriber: Recipient<HandlerFailure>) -> Self {
        self.failures = Some(subscriber);
        self
    }

    /// How long handlers in flight get to finish once shutdown starts (30s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Whether SIGINT and SIGTERM start the shutdown (true). Turn it off when
    /// the process handles signals itself and calls [`AppHandle::shutdown`].
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.signals = on;
        self
    }

    /// A handle that starts the graceful shutdown from anywhere.
    #[must_use]
    pub fn handle(&self) -> AppHandle {
        AppHandle {
            shutdown: Arc::clone(&self.shutdown),
            endpoint: Arc::clone(&self.endpoint),
        }
    }

    /// The component the servers use.
    #[must_use]
    pub fn kafka(&self) -> &Ekafka {
        &self.kafka
    }

    /// Starts an actix System, serves until shutdown, and returns once every
    /// server, group and producer is closed. Call it from `main`, outside any
    /// System; inside one, use [`serve`](Self::serve).
    pub fn run(self) -> Result<(), Error> {
        actix::System::new().block_on(self.serve())
    }

    /// [`run`](Self::run) inside an already running actix System.
    pub async fn serve(self) -> Result<(), Error> {
        let _signals = if self.signals {
            Some(
                signals::watch(Arc::clone(&self.shutdown)).map_err(|e| Error::Unsupported {
                    name: "App".into(),
                    reason: format!("cannot watch SIGINT and SIGTERM: {e}"),
                })?,
            )
        } else {
            None
        };
        let endpoint = match &self.kafka.config().observability.address {
            Some(address) => {
                let endpoint = Endpoint::start(&self.kafka, address)?;
                self.endpoint
                    .send_replace(endpoint.addresses().first().copied());
                Some(endpoint)
            }
            None => None,
        };
        let served = self.serve_until_shutdown(endpoint.as_ref()).await;
        if let Some(endpoint) = endpoint {
            endpoint.stop().await;
        }
        served
    }

    /// Starts the servers, waits for the shutdown's cause, shuts down.
    async fn serve_until_shutdown(self, endpoint: Option<&Endpoint>) -> Result<(), Error> {
        let mut servers: Vec<Box<dyn Served>> = Vec::new();
        for start in self.starters {
            match start(self.kafka.clone(), self.failures.clone()).await {
                Ok(server) => {
                    if let (Some(endpoint), Some(probe)) = (endpoint, server.probe()) {
                        endpoint.watch_server(server.name(), probe);
                    }
                    servers.push(server);
                }
                Err(e) => {
                    tracing::error!(error = %e, "a consumer server failed to start; shutting down");
                    if let Err(also) = shut_down(&servers, &self.kafka, self.shutdown_timeout).await
                    {
                        tracing::warn!(error = %also, "shutdown after a failed start");
                    }
                    return Err(e);
                }
            }
        }
        tracing::info!(servers = servers.len(), "ekafka app running");

        let mut requested = self.shutdown.subscribe();
        let cause = tokio::select! {
            _ = requested.wait_for(|requested| *requested) => None,
            escalation = self.kafka.escalated() => Some(escalation),
            _ = all_finished(&servers) => None,
        };
        if let Some(endpoint) = endpoint {
            endpoint.shutting_down();
        }
        match &cause {
            Some(cause) => {
                tracing::error!(kind = cause.kind, name = %cause.name, reason = %cause.reason, "shutting down after a failure")
            }
            None => tracing::info!("shutting down"),
        }
        let closed = shut_down(&servers, &self.kafka, self.shutdown_timeout).await;
        // A failure past its limit is the cause to report, even when it
        // escalated during the shutdown.
        match cause.or_else(|| self.kafka.escalation()) {
            Some(cause) => Err(cause.into()),
            None => closed,
        }
    }
}

/// Resolves once every server has ended on its own (manual functions that
/// returned), never when there is none.
async fn all_finished(servers: &[Box<dyn Served>]) {
    if servers.is_empty() {
        return std::future::pending().await;
    }
    for server in servers {
        if let Err(e) = server.wait().await {
            tracing::warn!(server = server.name(), error = %e, "consumer server ended");
        }
    }
}

/// Shuts every server down within `deadline` (plus time to commit and leave),
/// then closes the component's clients. Returns the first failure.
async fn shut_down(
    servers: &[Box<dyn Served>],
    kafka: &Ekafka,
    deadline: Duration,
) -> Result<(), Error> {
    let mut first_error = None;
    // Commits and leaving the group come after the deadline: give them a margin.
    let bound = deadline + Duration::from_secs(20);
    // All at once: each server's handlers get the whole deadline.
    let stops: Vec<_> = servers
        .iter()
        .map(|server| {
            let (name, stop) = (server.name().to_string(), server.shutdown(deadline));
            actix::spawn(async move {
                match tokio::time::timeout(bound, stop).await {
                    Ok(result) => result,
                    Err(_) => Err(Error::ServerFailed {
                        name,
                        reason: format!("did not shut down within {bound:?}"),
                    }),
                }
            })
        })
        .collect();
    for stop in stops {
        let result = stop.await.unwrap_or_else(|join| {
            Err(Error::ServerFailed {
                name: "(unknown)".into(),
                reason: format!("its shutdown panicked: {join}"),
            })
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "consumer server shutdown failed");
            first_error.get_or_insert(e);
        }
    }
    if let Err(e) = kafka.close().await {
        first_error.get_or_insert(e);
    }
    first_error.map_or(Ok(()), Err)
}
