//! The two manual modes: the user's function gets the consumer (or the consumer
//! group) and a shutdown signal, and drives consumption itself, as Go's
//! `OnStart` and `OnConsumerGroupStart`.

use std::future::Future;

use tokio::sync::watch;

use super::HandlerError;
use crate::error::Error;

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

/// A running manual-mode server: the user's function, with its shutdown switch.
pub struct ManualServer {
    name: String,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<Result<(), HandlerError>>,
}

impl ManualServer {
    pub(crate) fn spawn<Fut>(name: String, run: impl FnOnce(Shutdown) -> Fut) -> Self
    where
        Fut: Future<Output = Result<(), HandlerError>> + 'static,
    {
        let (stop, requested) = watch::channel(false);
        let done = actix::spawn(run(Shutdown(requested)));
        ManualServer { name, stop, done }
    }

    /// Asks the function to stop and waits for it to return.
    pub async fn shutdown(self) -> Result<(), Error> {
        let _ = self.stop.send(true);
        self.wait().await
    }

    /// Waits for the function to return by itself; its failure (or panic) is the
    /// server's failure.
    pub async fn wait(self) -> Result<(), Error> {
        let failed = |reason: String| Error::ServerFailed {
            name: self.name.clone(),
            reason,
        };
        match self.done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(failed(error.to_string())),
            Err(join) => Err(failed(format!(
                "the handler panicked or was cancelled: {join}"
            ))),
        }
    }
}
