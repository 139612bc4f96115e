//! Exactly-once consume-transform-produce: a run of one partition's messages
//! is handled inside one transaction of the server's `transactionalProducer`.
//! The messages each handler call returns, the dead letters, and the offset
//! past the last message handled commit together; `read_committed` readers
//! see all of it or none. The group acknowledges the messages only once the
//! transaction committed. Outputs are queued as each handler call returns
//! and their deliveries awaited once, by the commit.
//!
//! A message that fails for good without a dead-letter topic ends the run:
//! what was handled before it commits, and the partition stops at it as in
//! each-message mode. A transaction that cannot commit is aborted and its
//! messages handled again from the first, after the restart backoff; a fenced
//! producer (another instance took the transactional id) escalates at once.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;

use super::dead_letter::{stored, DeadLetterSink};
use super::handling::{handle_message, Completion};
use super::outcome::HandlerError;
use super::partition::{DeadLetterBudget, Queued};
use super::shared::{BatchEnd, BoxedTransform, MessageEnd, Worker};
use crate::consumer::PartitionOffset;
use crate::error::Error;
use crate::producer::{Producer, Transaction};
use crate::record::{ConsumedMessage, Message};

/// Handles `queued` from `queued.from` in one transaction.
pub(crate) async fn handle_batch(
    queued: &Queued,
    worker: &Worker,
    handler: &BoxedTransform,
    producer: &Producer,
    dead_letters: &RefCell<DeadLetterBudget>,
) -> BatchEnd {
    let batch = &queued.batch;
    let first = queued.from;
    if worker.must_stop(batch) {
        batch.release_from(first);
        return BatchEnd::Interrupted;
    }
    let transaction = match producer.begin().await {
        Ok(transaction) => transaction,
        Err(error) => return not_committed(worker, first, error),
    };
    let completion = InTransaction {
        handler,
        transaction: &transaction,
    };
    let mut handled = None;
    let mut end = BatchEnd::Done;
    for message in batch.messages().iter().filter(|m| m.offset() >= first) {
        if worker.must_stop(batch) {
            batch.release_from(message.offset());
            end = BatchEnd::Interrupted;
            break;
        }
        match handle_message(worker, &completion, dead_letters, batch, message).await {
            MessageEnd::Done => handled = Some(message.offset()),
            MessageEnd::Interrupted => {
                batch.release_from(message.offset());
                end = BatchEnd::Interrupted;
                break;
            }
            MessageEnd::Stopped { error, limit } => {
                end = BatchEnd::Stopped {
                    offset: message.offset(),
                    error,
                    limit,
                };
                break;
            }
        }
    }
    let Some(last) = handled else {
        // Nothing to commit: end the transaction without a trace.
        if let Err(error) = transaction.abort().await {
            tracing::warn!(server = %worker.server, %error, "aborting an empty transaction failed");
        }
        return end;
    };
    let offsets = [PartitionOffset {
        partition: batch.partition().clone(),
        offset: last + 1,
    }];
    let committed = match transaction.commit_offsets(&worker.member, &offsets).await {
        Ok(()) => transaction.commit().await,
        Err(error) => {
            if let Err(abort) = transaction.abort().await {
                tracing::warn!(server = %worker.server, error = %abort, "aborting the transaction failed");
            }
            Err(error)
        }
    };
    match committed {
        Ok(()) => {
            batch.ack_through(last);
            end
        }
        Err(error) => {
            if matches!(end, BatchEnd::Interrupted) {
                // Given back already from where it stopped; what it handled
                // goes back too, uncommitted, to the next owner.
                batch.release_from(first);
                return BatchEnd::Interrupted;
            }
            not_committed(worker, first, error)
        }
    }
}

/// The transaction from `first` on did not commit: the partition handles it
/// again from there after the backoff, or escalates at once when fenced.
fn not_committed(worker: &Worker, first: i64, error: Error) -> BatchEnd {
    tracing::warn!(server = %worker.server, offset = first, %error, "the transaction did not commit; its messages are handled again");
    let limit = error
        .is_fenced()
        .then(|| "fenced: another instance has the transactional id".to_string());
    BatchEnd::Stopped {
        offset: first,
        error: HandlerError::recoverable(error.to_string()),
        limit,
    }
}

/// Exactly once: results written inside the batch's transaction.
struct InTransaction<'a> {
    handler: &'a BoxedTransform,
    transaction: &'a Transaction,
}

impl Completion for InTransaction<'_> {
    type Output = Vec<Message>;

    fn call(
        &self,
        message: ConsumedMessage,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Message>, HandlerError>>>> {
        (self.handler)(message)
    }

    async fn succeeded(
        &self,
        _message: &ConsumedMessage,
        outputs: Vec<Message>,
    ) -> Result<(), HandlerError> {
        if outputs.is_empty() {
            return Ok(());
        }
        // Queued, not awaited: the commit waits for every output's delivery
        // and fails (the run is handled again) if one failed. Waiting here
        // would cost a produce round trip per message.
        match self.transaction.send(outputs).await {
            Ok(None) => Ok(()),
            // Refused before sending, so not in the transaction, which can
            // still commit: a failure of this message, as the handler's.
            Ok(Some(refused)) => Err(HandlerError::fatal(format!(
                "writing the outputs failed: {refused}"
            ))),
            // The transaction cannot commit any more: no retry can help.
            Err(error) => Err(HandlerError::fatal(format!(
                "writing the outputs failed: {error}"
            ))),
        }
    }

    async fn dead_lettered(&self, sink: &DeadLetterSink, mut out: Message) -> bool {
        if out.topic.is_none() {
            out.topic = sink.producer.default_topic().map(str::to_string);
        }
        stored(self.transaction.write([out]).await, "dead-letter")
    }

    fn settled(&self, _message: &ConsumedMessage) {
        // Acknowledged with the rest once the transaction commits.
    }
}
