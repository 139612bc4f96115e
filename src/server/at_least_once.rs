//! The at-least-once driver: a batch handled message by message through the
//! core (`handling::handle_message`), each message acknowledged as soon as it
//! is done, so its offset becomes committable. `each_message::concurrent`
//! drives the same core when `concurrency` is above 1.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;

use super::dead_letter::{stored, DeadLetterSink};
use super::handling::{handle_message, Completion};
use super::outcome::HandlerError;
use super::partition::{DeadLetterBudget, Queued};
use super::shared::{BatchEnd, BoxedHandler, MessageEnd, Worker};
use crate::record::{ConsumedMessage, Message, MessageBatch};

/// At least once: each message acknowledged when done.
pub(crate) async fn handle_batch(
    queued: &Queued,
    worker: &Worker,
    handler: &BoxedHandler,
    dead_letters: &RefCell<DeadLetterBudget>,
) -> BatchEnd {
    let batch = &queued.batch;
    for message in batch
        .messages()
        .iter()
        .filter(|m| m.offset() >= queued.from)
    {
        if worker.must_stop(batch) {
            batch.release_from(message.offset());
            return BatchEnd::Interrupted;
        }
        let chain = worker.retry_chain.as_ref();
        if let Some(until) = chain.and_then(|c| c.not_due_until(message)) {
            return BatchEnd::Waiting {
                offset: message.offset(),
                until,
            };
        }
        let completion = Acknowledge { handler, batch };
        match handle_message(worker, &completion, dead_letters, batch, message).await {
            MessageEnd::Done => {}
            MessageEnd::Interrupted => {
                batch.release_from(message.offset());
                return BatchEnd::Interrupted;
            }
            MessageEnd::Stopped { error, limit } => {
                return BatchEnd::Stopped {
                    offset: message.offset(),
                    error,
                    limit,
                }
            }
        }
    }
    BatchEnd::Done
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
