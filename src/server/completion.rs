//! Where a handled message's result goes: acknowledged at once (each-message
//! mode, at least once), or written inside the batch's transaction (see
//! `transactional`, exactly once). The handling itself, retries and dead
//! letters included, is the same for both (`handling::handle_message`).

use std::future::Future;
use std::pin::Pin;

use super::handling::{BoxedHandler, DeadLetterSink};
use super::HandlerError;
use crate::record::{ConsumedMessage, Message, MessageBatch};

/// Where a handled message's result goes: acknowledged at once (at least
/// once), or written inside the batch's transaction (exactly once).
pub(crate) trait Completion {
    type Output;

    /// Calls the handler.
    fn call(
        &self,
        message: ConsumedMessage,
    ) -> Pin<Box<dyn Future<Output = Result<Self::Output, HandlerError>>>>;

    /// Stores a success; an error stops the partition at the message.
    async fn succeeded(
        &self,
        message: &ConsumedMessage,
        output: Self::Output,
    ) -> Result<(), HandlerError>;

    /// Writes `out` to the dead-letter topic; true once stored.
    async fn dead_lettered(&self, sink: &DeadLetterSink, out: Message) -> bool;

    /// A message settled without a result of its own (dead-lettered, delayed).
    fn settled(&self, message: &ConsumedMessage);
}

/// At least once: each message acknowledged when it is done.
pub(crate) struct Acknowledge<'a> {
    pub(crate) handler: &'a BoxedHandler,
    pub(crate) batch: &'a MessageBatch,
}

impl Completion for Acknowledge<'_> {
    type Output = ();

    fn call(
        &self,
        message: ConsumedMessage,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandlerError>>>> {
        (self.handler)(message)
    }

    async fn succeeded(&self, message: &ConsumedMessage, (): ()) -> Result<(), HandlerError> {
        self.batch.ack_message(message);
        Ok(())
    }

    async fn dead_lettered(&self, sink: &DeadLetterSink, out: Message) -> bool {
        stored(sink.producer.write([out]).await, "dead-letter")
    }

    fn settled(&self, message: &ConsumedMessage) {
        self.batch.ack_message(message);
    }
}

/// True when a one-message write was stored; logs why not otherwise.
pub(crate) fn stored(
    written: Result<crate::record::WriteReport, crate::error::Error>,
    what: &str,
) -> bool {
    match written {
        Ok(report) if report.is_success() => true,
        Ok(report) => {
            tracing::error!(error = ?report.failures().next(), "{what} write failed");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "{what} write failed");
            false
        }
    }
}
