//! Each-message handling with `concurrency` above 1: up to that many messages
//! of one partition run at once, as the partition's [`Lane`] lets them start
//! (`orderBy`). Each message is acknowledged when it is done, so the group
//! commits the run of finished messages from the front and never passes one
//! still running. A message that fails for good stops the partition as with
//! one at a time: nothing new starts, those running finish, and after the
//! backoff handling resumes at that message; the messages that finished
//! after it are not handled again.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use crate::config::OrderBy;
use crate::record::MessageBatch;
use crate::server::at_least_once::Acknowledge;
use crate::server::handling::handle_message;
use crate::server::lane::{Lane, OrderKey};
use crate::server::outcome::HandlerError;
use crate::server::partition::{DeadLetterBudget, Waiting};
use crate::server::shared::{MessageEnd, MessageHandler, Worker};

/// Adds every message of `batch` to `lane`, in offset order.
pub(super) fn push_batch(lane: &mut Lane<Waiting>, batch: MessageBatch, order: OrderBy) {
    let batch = Rc::new(batch);
    for (index, message) in batch.messages().iter().enumerate() {
        let waiting = Waiting {
            batch: Rc::clone(&batch),
            index,
        };
        lane.push(message.offset(), OrderKey::of(message, order), waiting);
    }
}

/// A message its lane let start: where it is, and its handling to run.
pub(super) struct Started {
    pub(super) offset: i64,
    pub(super) key: OrderKey,
    pub(super) handling: Pin<Box<dyn Future<Output = (Waiting, MessageEnd)>>>,
}

/// Starts the messages `lane` lets start: each one's handling, through the
/// per-message core with the at-least-once completion.
pub(super) fn start(
    lane: &mut Lane<Waiting>,
    worker: &Rc<Worker>,
    dead_letters: &Rc<RefCell<DeadLetterBudget>>,
) -> Vec<Started> {
    std::iter::from_fn(|| lane.start())
        .map(|(offset, key, waiting)| {
            let (worker, dead_letters) = (Rc::clone(worker), Rc::clone(dead_letters));
            let handling = async move {
                let end = match &worker.handler {
                    // Lanes are made for each-message handlers only.
                    MessageHandler::Each(handler) if !worker.must_stop(&waiting.batch) => {
                        let (batch, message) = (&waiting.batch, waiting.message());
                        let completion = Acknowledge { handler, batch };
                        handle_message(&worker, &completion, &dead_letters, batch, message).await
                    }
                    _ => MessageEnd::Interrupted,
                };
                (waiting, end)
            };
            Started {
                offset,
                key,
                handling: Box::pin(handling),
            }
        })
        .collect()
}

/// What the partition does after a message of its lane ended.
pub(super) enum Settled {
    /// Handled: the partition got past `offset`.
    Finished,
    /// Failed for good: the partition stops at it (put back first in line).
    Stop {
        error: HandlerError,
        limit: Option<String>,
    },
    /// Interrupted, or stopped while shutting down or revoked: given back
    /// for its next owner, or the next start, to handle.
    GivenBack,
}

/// Settles the message at `offset` in `lane` after its handling ended with
/// `end`; `given_up` when the server is quiescing, the batch is stale, or
/// the partition gave up.
pub(super) fn settle(
    lane: &mut Lane<Waiting>,
    offset: i64,
    key: OrderKey,
    waiting: Waiting,
    end: MessageEnd,
    given_up: bool,
) -> Settled {
    match end {
        MessageEnd::Done => {
            lane.finish(key);
            Settled::Finished
        }
        MessageEnd::Stopped { error, limit } if !given_up => {
            lane.put_back(offset, key, waiting);
            Settled::Stop { error, limit }
        }
        MessageEnd::Interrupted | MessageEnd::Stopped { .. } => {
            waiting.batch.release_range(offset, offset);
            lane.finish(key);
            Settled::GivenBack
        }
    }
}
