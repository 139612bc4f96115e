//! Collects the outcome of every message of one write as librdkafka reports them.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use crate::record::Outcome;
use crate::record::{ProduceError, ProduceErrorKind};

/// One write in flight: a slot per message, filled by the enqueue path or by the
/// delivery callback on librdkafka's thread.
pub(crate) struct Tracker {
    state: Mutex<State>,
    done: Notify,
}

struct State {
    outcomes: Vec<Option<Outcome>>,
    remaining: usize,
}

impl Tracker {
    pub(crate) fn new(messages: usize) -> Self {
        Tracker {
            state: Mutex::new(State {
                outcomes: (0..messages).map(|_| None).collect(),
                remaining: messages,
            }),
            done: Notify::new(),
        }
    }

    /// Records the outcome of message `index`; the first report wins.
    pub(crate) fn complete(&self, index: usize, outcome: Outcome) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // After `outcomes` gave up waiting the slots are gone; a late report is dropped.
        let Some(slot) = state.outcomes.get_mut(index) else {
            return;
        };
        if slot.is_some() {
            return;
        }
        *slot = Some(outcome);
        state.remaining -= 1;
        if state.remaining == 0 {
            // notify_one stores a permit, so a waiter arriving later still wakes.
            self.done.notify_one();
        }
    }

    /// Waits until every message has an outcome, or `deadline` passes; messages
    /// librdkafka never reported on by then are `Lost`. librdkafka reports every
    /// message within `message.timeout.ms`, so the deadline is a safety net that
    /// keeps a caller from hanging, not a path taken in normal operation.
    pub(crate) async fn outcomes(&self, deadline: Duration) -> Vec<Outcome> {
        let finished = {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.remaining == 0
        };
        if !finished {
            let _ = tokio::time::timeout(deadline, self.done.notified()).await;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.remaining = 0;
        std::mem::take(&mut state.outcomes)
            .into_iter()
            .map(|slot| {
                slot.unwrap_or_else(|| {
                    Outcome::Failed(ProduceError {
                        kind: ProduceErrorKind::Lost,
                        reason: format!("no delivery report within {deadline:?}; the message may or may not have been written"),
                        message: Box::default(),
                    })
                })
            })
            .collect()
    }
}
