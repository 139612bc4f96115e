//! The batch driver: up to `batchSize` waiting messages of one partition
//! (possibly from several of the group's batches) handed to the handler in
//! one call. On success all of them are acknowledged. On a failure at index
//! `i` the messages before it are acknowledged, and message `i` goes through
//! the per-message core (`handling::handle_message`) with the batch call as
//! its first attempt: its retries call the handler with it alone, and then
//! delay topics, the dead-letter topic or the partition's stop, exactly as
//! for a single message. The messages after it come in the next call.
//!
//! A handler that panics, or names an index outside the batch, has not said
//! which message failed: each message of the batch is then handled alone,
//! in order, so the one at fault is found and the others are not blamed.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use super::dead_letter::{stored, DeadLetterSink};
use super::handling::{handle_message, run_handler, Completion};
use super::outcome::{BatchFailure, HandlerError};
use super::partition::{DeadLetterBudget, Queued};
use super::shared::{BatchEnd, BoxedBatchHandler, MessageEnd, Worker};
use crate::observe::Handled;
use crate::record::{ConsumedMessage, Message, MessageBatch};

/// Hands up to `size` waiting messages of `pieces` (one partition's, in
/// offset order) to `handler`. Each piece's `from` moves past what was
/// settled; what is left is the caller's to queue again.
pub(crate) async fn handle_batch(
    pieces: &mut [Queued],
    size: usize,
    worker: &Worker,
    handler: &BoxedBatchHandler,
    dead_letters: &RefCell<DeadLetterBudget>,
) -> BatchEnd {
    let taken = take(pieces, size);
    let Some(&(first_piece, ref first)) = taken.first() else {
        return BatchEnd::Done;
    };
    if worker.must_stop(&pieces[first_piece].batch) {
        release(pieces);
        return BatchEnd::Interrupted;
    }
    if let Some(until) = worker
        .retry_chain
        .as_ref()
        .and_then(|c| c.not_due_until(first))
    {
        return BatchEnd::Waiting {
            offset: first.offset(),
            until,
        };
    }

    let messages: Vec<ConsumedMessage> = taken.iter().map(|(_, m)| m.clone()).collect();
    let count = messages.len();
    let started = Instant::now();
    let call = worker.probe.start();
    let outcome = run_handler(|| {
        let handling = handler(messages);
        Box::pin(async move { Ok(handling.await) })
    })
    .await;
    drop(call);
    let elapsed = started.elapsed();
    let failed_at = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(failure)) if failure.index < count => Some(failure),
        Ok(Err(failure)) => {
            tracing::warn!(server = %worker.server, partition = first.partition(), index = failure.index, count, error = %failure.error, "the batch handler named a message outside its batch: each message of it is handled alone");
            return one_by_one(pieces, &taken, worker, handler, dead_letters).await;
        }
        Err(panicked) => {
            tracing::warn!(server = %worker.server, partition = first.partition(), count, error = %panicked, "the batch handler panicked: each message of the batch is handled alone");
            return one_by_one(pieces, &taken, worker, handler, dead_letters).await;
        }
    };
    let handled = failed_at.as_ref().map_or(count, |f| f.index);
    acknowledge(pieces, &taken[..handled]);
    if let Some(metrics) = &worker.metrics {
        for (_, message) in &taken[..handled] {
            metrics.handled(message.topic(), Handled::Ok, elapsed);
        }
    }
    let Some(BatchFailure { index, error }) = failed_at else {
        return BatchEnd::Done;
    };
    let (piece, message) = &taken[index];
    let completion = Alone {
        handler,
        batch: &pieces[*piece].batch,
        first_attempt: Cell::new(Some(error)),
    };
    let end = handle_message(
        worker,
        &completion,
        dead_letters,
        &pieces[*piece].batch,
        message,
    )
    .await;
    settle(pieces, *piece, message, end)
}

/// Handles each of `taken` alone, in order, through the per-message core.
async fn one_by_one(
    pieces: &mut [Queued],
    taken: &[(usize, ConsumedMessage)],
    worker: &Worker,
    handler: &BoxedBatchHandler,
    dead_letters: &RefCell<DeadLetterBudget>,
) -> BatchEnd {
    for (piece, message) in taken {
        if worker.must_stop(&pieces[*piece].batch) {
            release(pieces);
            return BatchEnd::Interrupted;
        }
        let completion = Alone {
            handler,
            batch: &pieces[*piece].batch,
            first_attempt: Cell::new(None),
        };
        let end = handle_message(
            worker,
            &completion,
            dead_letters,
            &pieces[*piece].batch,
            message,
        )
        .await;
        match settle(pieces, *piece, message, end) {
            BatchEnd::Done => {}
            other => return other,
        }
    }
    BatchEnd::Done
}

/// Up to `size` waiting messages of `pieces`, each with its piece's index.
fn take(pieces: &[Queued], size: usize) -> Vec<(usize, ConsumedMessage)> {
    pieces
        .iter()
        .enumerate()
        .flat_map(|(index, piece)| piece.waiting().iter().map(move |m| (index, m.clone())))
        .take(size)
        .collect()
}

/// Acknowledges `handled` (a prefix of what was taken, in offset order),
/// one acknowledgement per piece, and moves each piece past them.
fn acknowledge(pieces: &mut [Queued], handled: &[(usize, ConsumedMessage)]) {
    for run in handled.chunk_by(|a, b| a.0 == b.0) {
        let (piece, first) = &run[0];
        let last = &run[run.len() - 1].1;
        pieces[*piece]
            .batch
            .ack_range(first.offset(), last.offset());
        pieces[*piece].from = last.offset() + 1;
    }
}

/// Gives back what is still waiting in every piece.
fn release(pieces: &mut [Queued]) {
    for piece in pieces.iter_mut() {
        if !piece.waiting().is_empty() {
            piece.release();
        }
        piece.from = i64::MAX;
    }
}

/// How handling `message` alone ended, for the batch: settled (handled,
/// delayed or dead-lettered) moves its piece past it.
fn settle(
    pieces: &mut [Queued],
    piece: usize,
    message: &ConsumedMessage,
    end: MessageEnd,
) -> BatchEnd {
    match end {
        MessageEnd::Done => {
            pieces[piece].from = message.offset() + 1;
            BatchEnd::Done
        }
        MessageEnd::Interrupted => {
            pieces[piece].from = message.offset();
            release(pieces);
            BatchEnd::Interrupted
        }
        MessageEnd::Stopped { error, limit } => {
            pieces[piece].from = message.offset();
            BatchEnd::Stopped {
                offset: message.offset(),
                error,
                limit,
            }
        }
    }
}

/// One message of a batch handled alone: the handler called with a batch of
/// just it, acknowledged on its own. `first_attempt` is the failure the
/// whole batch's call already gave it, its first try.
struct Alone<'a> {
    handler: &'a BoxedBatchHandler,
    batch: &'a MessageBatch,
    first_attempt: Cell<Option<HandlerError>>,
}

impl Completion for Alone<'_> {
    type Output = ();

    fn call(
        &self,
        message: ConsumedMessage,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandlerError>>>> {
        if let Some(error) = self.first_attempt.take() {
            return Box::pin(std::future::ready(Err(error)));
        }
        let handling = (self.handler)(vec![message]);
        Box::pin(async move { handling.await.map_err(|failure| failure.error) })
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
