//! Collects the outcome of every message of one write as librdkafka reports
//! them, and the tag each message carries through librdkafka to find its slot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::native::delivery::{HasSlots, SlotTag, Slots};
use crate::record::Outcome;
use crate::record::{ProduceError, ProduceErrorKind};

/// One write in flight: a slot per message, filled by the enqueue path or by
/// the delivery report.
pub(crate) struct Tracker {
    state: Mutex<State>,
    done: Notify,
    /// One entry per message, each holding this tracker's address: a
    /// message's [`DeliveryTag`] is the address of its entry, which gives
    /// both the tracker and (by its position) the message's index without an
    /// allocation per message.
    tags: Slots<Tracker>,
    /// The topic messages that name none are written to: a delivery shares it
    /// instead of copying the topic's name for every message.
    default_topic: Option<Arc<str>>,
    /// Set before a message naming its own topic is enqueued; from then on
    /// deliveries take the topic from the report.
    own_topics: AtomicBool,
}

struct State {
    outcomes: Vec<Option<Outcome>>,
    remaining: usize,
    /// The messages refused before they were sent, in the order refused.
    refused: Vec<usize>,
}

impl Tracker {
    pub(crate) fn new(messages: usize, default_topic: Option<Arc<str>>) -> Arc<Self> {
        Arc::new_cyclic(|this| Tracker {
            state: Mutex::new(State {
                outcomes: (0..messages).map(|_| None).collect(),
                remaining: messages,
                refused: Vec::new(),
            }),
            done: Notify::new(),
            tags: Slots::new(this, messages),
            default_topic,
            own_topics: AtomicBool::new(false),
        })
    }

    /// Notes that a message naming its own topic is about to be enqueued.
    pub(crate) fn note_own_topic(&self) {
        self.own_topics.store(true, Ordering::Release);
    }

    /// The topic every delivery so far was written to, when the write's
    /// messages all go to the default topic.
    pub(crate) fn shared_topic(&self) -> Option<&Arc<str>> {
        if self.own_topics.load(Ordering::Acquire) {
            return None;
        }
        self.default_topic.as_ref()
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

    /// Records message `index` as refused before it was sent (no topic, a
    /// topic name that cannot be, too large, ...): failed, and listed by
    /// [`refusals`](Self::refusals).
    pub(crate) fn refuse(&self, index: usize, failure: ProduceError) {
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.outcomes.get(index).is_some_and(Option::is_none) {
                state.refused.push(index);
            }
        }
        self.complete(index, Outcome::Failed(failure));
    }

    /// The messages refused before they were sent, by index, and why the
    /// first of them was.
    pub(crate) fn refusals(&self) -> (Vec<usize>, Option<ProduceError>) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let first = state
            .refused
            .first()
            .and_then(|&index| match &state.outcomes[index] {
                Some(Outcome::Failed(failure)) => Some(failure.clone()),
                _ => None,
            });
        (state.refused.clone(), first)
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

/// What librdkafka carries with a message to its delivery report: for a
/// synchronous write, the message's slot in its tracker (see
/// `native::delivery`); for an `async` write, none.
pub(crate) type DeliveryTag = SlotTag<Tracker>;

impl HasSlots for Tracker {
    fn slots(&self) -> &Slots<Self> {
        &self.tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Delivery;

    fn delivered(offset: i64) -> Outcome {
        Outcome::Delivered(Delivery {
            topic: Arc::from("t"),
            partition: 0,
            offset,
            timestamp: None,
        })
    }

    #[test]
    fn a_tag_finds_its_message_and_keeps_the_tracker_alive() {
        let tracker = Tracker::new(3, None);
        let tags: Vec<_> = (0..3).map(|i| DeliveryTag::new(&tracker, i)).collect();
        assert_eq!(Arc::strong_count(&tracker), 4);
        for (expected, tag) in tags.iter().enumerate().rev() {
            let (found, index) = tag.slot().expect("a sync tag");
            assert!(std::ptr::eq(found, Arc::as_ptr(&tracker)));
            assert_eq!(index, expected);
            found.complete(index, delivered(index as i64));
        }
        drop(tags);
        assert_eq!(Arc::strong_count(&tracker), 1);
        let outcomes = block_on(tracker.outcomes(Duration::from_secs(1)));
        assert_eq!(outcomes, vec![delivered(0), delivered(1), delivered(2)]);
    }

    #[test]
    fn a_message_with_its_own_topic_stops_sharing_the_default() {
        let tracker = Tracker::new(1, Some(Arc::from("orders")));
        assert_eq!(tracker.shared_topic().map(|t| &**t), Some("orders"));
        tracker.note_own_topic();
        assert!(tracker.shared_topic().is_none());
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
            .block_on(future)
    }
}
