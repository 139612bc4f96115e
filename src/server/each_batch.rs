//! Each-batch servers: a handler per run of up to `batchSize` messages of
//! one partition.

use std::future::Future;
use std::rc::Rc;

use super::outcome::BatchFailure;
use super::shared::{BoxedBatchHandler, MessageHandler};
use super::{server_name, ConsumerServer, RunningServer, ServerBuilder};
use crate::component::Ekafka;
use crate::config::ConsumerServerConfig;
use crate::consumer::ConsumedMessage;
use crate::error::Error;

impl ConsumerServer {
    /// Runs `handler` for runs of up to `batchSize` (500) messages of one
    /// partition of the server's consumer group, in offset order: to write
    /// them to a database in one statement, say. A partition's handler is
    /// called once `batchSize` messages wait, or once the oldest waited
    /// `batchWait` (100ms), with what is there; partitions are handled side
    /// by side, each one call at a time.
    ///
    /// The handler returns `Ok` when it handled every message, or a
    /// [`BatchFailure`] with the index of the first one it did not and why.
    /// The messages before it are committed; that one goes through retries
    /// (each calls the handler with it alone), delay topics, the dead-letter
    /// topic or its partition's stop, exactly as in
    /// [`on_each_message`](Self::on_each_message); the ones after it come in
    /// the next call. A handler that panics (or names an index outside the
    /// batch) has not said which message failed: each message of that batch
    /// is then handled alone, in order, so only the one at fault fails.
    ///
    /// Refused with `concurrency` above 1 (raise `batchSize` instead), with
    /// `transactionalProducer`, and with a `batchSize` above the group's
    /// `maxBuffered`, which it could never fill.
    ///
    /// ```no_run
    /// # async fn run(kafka: ekafka::Ekafka, config: ekafka::config::ConsumerServerConfig) -> Result<(), ekafka::Error> {
    /// use ekafka::server::{BatchFailure, ConsumerServer, HandlerError};
    /// # async fn insert_rows(rows: &[&str]) -> Result<(), (usize, String)> { Ok(()) }
    ///
    /// let server = ConsumerServer::on_each_batch(&kafka, &config, |messages| async move {
    ///     let rows: Vec<&str> = messages.iter().map(|m| m.value_str().unwrap_or("")).collect();
    ///     insert_rows(&rows)
    ///         .await
    ///         .map_err(|(row, reason)| BatchFailure::at(row, HandlerError::recoverable(reason)))
    /// })
    /// .await?;
    /// # server.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn on_each_batch<F, Fut>(
        kafka: &Ekafka,
        config: &ConsumerServerConfig,
        handler: F,
    ) -> Result<RunningServer, Error>
    where
        F: Fn(Vec<ConsumedMessage>) -> Fut + 'static,
        Fut: Future<Output = Result<(), BatchFailure>> + 'static,
    {
        Self::builder(kafka, config).on_each_batch(handler).await
    }
}

impl ServerBuilder<'_> {
    /// Starts the server with `handler` run for runs of up to `batchSize`
    /// messages of one partition (see
    /// [`ConsumerServer::on_each_batch`](super::ConsumerServer::on_each_batch)).
    pub async fn on_each_batch<F, Fut>(self, handler: F) -> Result<RunningServer, Error>
    where
        F: Fn(Vec<ConsumedMessage>) -> Fut + 'static,
        Fut: Future<Output = Result<(), BatchFailure>> + 'static,
    {
        let (kafka, config) = (self.kafka, self.config);
        let handler: BoxedBatchHandler = if config.debug {
            debug_output(kafka.clone(), server_name(config), handler)
        } else {
            Rc::new(move |messages| Box::pin(handler(messages)))
        };
        self.start(MessageHandler::Batch {
            handler,
            size: config.batching.size_or_default(),
            wait: config.batching.wait_or_default(),
        })
        .await
    }
}

/// `debug = true`: prints every batch handled and its result, as each
/// message's is printed in each-message mode.
fn debug_output<F, Fut>(kafka: Ekafka, server: String, handler: F) -> BoxedBatchHandler
where
    F: Fn(Vec<ConsumedMessage>) -> Fut + 'static,
    Fut: Future<Output = Result<(), BatchFailure>> + 'static,
{
    let handler = Rc::new(handler);
    Rc::new(move |messages: Vec<ConsumedMessage>| {
        let (kafka, server, handler) = (kafka.clone(), server.clone(), Rc::clone(&handler));
        Box::pin(async move {
            let shown = match (messages.first(), messages.last()) {
                (Some(first), Some(last)) => format!(
                    "{}/{}@{}..={} ({} messages)",
                    first.topic(),
                    first.partition(),
                    first.offset(),
                    last.offset(),
                    messages.len()
                ),
                _ => "(no messages)".to_string(),
            };
            let result = handler(messages).await;
            let outcome = match &result {
                Ok(()) => "ok".to_string(),
                Err(failure) => failure.to_string(),
            };
            kafka.debug_print(&format!(
                "[ekafka] consumer server {server} BATCH HANDLER {shown} -> {outcome}\n"
            ));
            result
        })
    })
}
