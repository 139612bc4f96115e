//! Each-message handling with `concurrency` above 1: up to that many messages
//! of one partition run at once, as the partition's [`Lane`] lets them start
//! (`orderBy`). Each message is acknowledged when it is done, so the group
//! commits the run of finished messages from the front and never passes one
//! still running. A message that fails for good stops the partition as with
//! one at a time: nothing new starts, those running finish, and after the
//! backoff handling resumes at that message; the messages that finished
//! after it are not handled again.

use std::rc::Rc;

use actix::prelude::*;

use super::EachMessageActor;
use crate::config::OrderBy;
use crate::record::{MessageBatch, TopicPartition};
use crate::server::at_least_once::Acknowledge;
use crate::server::handling::handle_message;
use crate::server::lane::{Lane, OrderKey};
use crate::server::partition::Waiting;
use crate::server::shared::{MessageEnd, MessageHandler};

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

impl EachMessageActor {
    /// Starts the messages of `partition` its lane lets start.
    pub(super) fn pump_lane(&mut self, partition: TopicPartition, ctx: &mut Context<Self>) {
        let state = self.partition(&partition);
        if state.stopped.is_some() || state.gave_up {
            return;
        }
        let dead_letters = Rc::clone(&state.dead_letters);
        let lane = state.lane.as_mut().expect("pumped as a lane");
        let started: Vec<_> = std::iter::from_fn(|| lane.start()).collect();
        for (offset, key, waiting) in started {
            let worker = Rc::clone(&self.worker);
            let dead_letters = Rc::clone(&dead_letters);
            let partition = partition.clone();
            let run = async move {
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
            ctx.spawn(run.into_actor(self).map(move |(waiting, end), act, ctx| {
                act.message_ended(partition, offset, key, waiting, end, ctx);
            }));
        }
    }

    fn message_ended(
        &mut self,
        partition: TopicPartition,
        offset: i64,
        key: OrderKey,
        waiting: Waiting,
        end: MessageEnd,
        ctx: &mut Context<Self>,
    ) {
        let given_up = *self.quiescing.borrow() || super::is_stale(&self.revoked, &waiting.batch);
        let state = self.partition(&partition);
        let given_up = given_up || state.gave_up;
        let lane = state.lane.as_mut().expect("ended in a lane");
        match end {
            MessageEnd::Done => {
                lane.finish(key);
                self.got_past(&partition, offset);
            }
            MessageEnd::Stopped { error, limit } if !given_up => {
                lane.put_back(offset, key, waiting);
                self.stop_partition(partition.clone(), offset, error, limit, ctx);
            }
            // Interrupted, or stopped while shutting down or revoked: its
            // next owner, or the next start, handles it.
            MessageEnd::Interrupted | MessageEnd::Stopped { .. } => {
                waiting.batch.release_range(offset, offset);
                lane.finish(key);
            }
        }
        self.pump(partition, ctx);
        self.tell_idle_waiters();
    }
}
