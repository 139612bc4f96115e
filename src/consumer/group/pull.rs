//! The pull API's end of a group member: what [`ConsumerGroup::poll`]
//! (super::ConsumerGroup::poll) reads.
//!
//! Group events travel apart from the batches, on a channel of their own, and
//! are read first: a revoke reaches the puller as soon as the engine decides
//! it, ahead of the batches already queued. On a revoke, every batch of a
//! revoked partition the puller took but did not hand out yet, and every one
//! still queued, is released (never acknowledged, so never committed past):
//! after `Revoked`, `poll()` returns no message of those partitions, and the
//! engine's barrier waits only for the messages `poll()` already returned.

use std::collections::VecDeque;

use tokio::sync::mpsc;

use super::engine::PullSink;
use crate::record::{AckSender, Event, GroupEvent, MessageBatch, Revoked};

/// Batches the engine may queue for a puller ahead of its `poll()` calls.
const PREFETCH_BATCHES: usize = 64;

pub(super) struct Pull {
    batches: mpsc::Receiver<MessageBatch>,
    events: mpsc::UnboundedReceiver<GroupEvent>,
    /// Batches taken off the channel and not handed out in full; the first
    /// one is handed out from its message `next`.
    ready: VecDeque<MessageBatch>,
    next: usize,
    /// How this puller acknowledges (the same for all its batches).
    ack: Option<AckSender>,
}

impl Pull {
    /// A puller, and the ends the engine writes to.
    pub(super) fn new() -> (Self, PullSink) {
        let (batches_tx, batches) = mpsc::channel(PREFETCH_BATCHES);
        let (events_tx, events) = mpsc::unbounded_channel();
        let pull = Pull {
            batches,
            events,
            ready: VecDeque::new(),
            next: 0,
            ack: None,
        };
        let sink = PullSink {
            batches: batches_tx,
            events: events_tx,
        };
        (pull, sink)
    }

    /// How messages handed out are acknowledged, once one was.
    pub(super) fn ack(&self) -> Option<AckSender> {
        self.ack.clone()
    }

    /// The next event: a group event before any message, then the next
    /// message. `None` once the engine stopped (closed, or restarting).
    pub(super) async fn next(&mut self) -> Option<Event> {
        loop {
            if let Ok(event) = self.events.try_recv() {
                return Some(self.on_event(event));
            }
            if let Some(message) = self.next_message() {
                return Some(Event::Message(message));
            }
            tokio::select! {
                biased;
                event = self.events.recv() => return event.map(|e| self.on_event(e)),
                batch = self.batches.recv() => {
                    let batch = batch?;
                    self.ack.get_or_insert_with(|| batch.ack.clone());
                    self.ready.push_back(batch);
                }
            }
        }
    }

    fn on_event(&mut self, event: GroupEvent) -> Event {
        if let GroupEvent::Revoked(revoked) = &event {
            self.drop_revoked(revoked);
        }
        event.into()
    }

    fn next_message(&mut self) -> Option<crate::record::ConsumedMessage> {
        loop {
            let batch = self.ready.front()?;
            if let Some(message) = batch.messages().get(self.next) {
                self.next += 1;
                return Some(message.clone());
            }
            self.ready.pop_front();
            self.next = 0;
        }
    }

    /// Releases what the puller holds, or is queued for it, of the revoked
    /// partitions and was not handed out: their next owner reads them from
    /// the committed offset.
    fn drop_revoked(&mut self, revoked: &Revoked) {
        while let Ok(batch) = self.batches.try_recv() {
            self.ready.push_back(batch);
        }
        let is_stale = |batch: &MessageBatch| {
            batch.generation() <= revoked.generation
                && revoked.partitions.contains(batch.partition())
        };
        let mut batches = std::mem::take(&mut self.ready).into_iter();
        let mut kept = VecDeque::with_capacity(batches.len());
        let mut next = 0;
        // Of the first batch, the messages before `next` were handed out.
        if let Some(first) = batches.next() {
            if is_stale(&first) {
                release_from(&first, self.next);
            } else {
                next = self.next;
                kept.push_back(first);
            }
        }
        for batch in batches {
            if is_stale(&batch) {
                release_from(&batch, 0);
            } else {
                kept.push_back(batch);
            }
        }
        self.next = next;
        self.ready = kept;
    }
}

/// A puller dropped (its group closing, or its engine gone) hands back what
/// it was never asked for: never acknowledged, so never committed past.
impl Drop for Pull {
    fn drop(&mut self) {
        // Closed first, so no batch lands after the drain below.
        self.batches.close();
        while let Ok(batch) = self.batches.try_recv() {
            self.ready.push_back(batch);
        }
        for (index, batch) in self.ready.drain(..).enumerate() {
            let from = if index == 0 { self.next } else { 0 };
            release_from(&batch, from);
        }
    }
}

/// Releases the messages of `batch` from its message number `from` on
/// (none when all of it was handed out).
fn release_from(batch: &MessageBatch, from: usize) {
    if let Some(first) = batch.messages().get(from) {
        batch.release_from(first.offset());
    }
}
