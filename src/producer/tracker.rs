//! Collects the outcome of every message of one write as librdkafka reports
//! them, and the tag each message carries through librdkafka to find its slot.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::util::IntoOpaque;
use tokio::sync::Notify;

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
    tags: Box<[*const Tracker]>,
    /// The topic messages that name none are written to: a delivery shares it
    /// instead of copying the topic's name for every message.
    default_topic: Option<Arc<str>>,
    /// Set before a message naming its own topic is enqueued; from then on
    /// deliveries take the topic from the report.
    own_topics: AtomicBool,
}

// SAFETY: `tags` only holds this tracker's own address, never dereferenced
// except through a `DeliveryTag`, which keeps the tracker alive; everything
// else is Send and Sync.
unsafe impl Send for Tracker {}
unsafe impl Sync for Tracker {}

struct State {
    outcomes: Vec<Option<Outcome>>,
    remaining: usize,
}

impl Tracker {
    pub(crate) fn new(messages: usize, default_topic: Option<Arc<str>>) -> Arc<Self> {
        Arc::new_cyclic(|this| Tracker {
            state: Mutex::new(State {
                outcomes: (0..messages).map(|_| None).collect(),
                remaining: messages,
            }),
            done: Notify::new(),
            tags: vec![this.as_ptr(); messages].into_boxed_slice(),
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
/// synchronous write, the address of the message's entry in its tracker's
/// `tags`, owning one strong reference on the tracker; for an `async` write,
/// nothing (null).
pub(crate) struct DeliveryTag(*const *const Tracker);

// SAFETY: the pointer is either null or an entry of a tracker this tag keeps
// alive; trackers are Send and Sync.
unsafe impl Send for DeliveryTag {}
unsafe impl Sync for DeliveryTag {}

impl DeliveryTag {
    /// The tag of an `async` write's message: its report goes to no tracker.
    pub(crate) const ASYNC: DeliveryTag = DeliveryTag(std::ptr::null());

    /// The tag of message `index` of `tracker`'s write.
    ///
    /// # Panics
    /// When `index` is not a message of the write (a bug in the caller).
    pub(crate) fn new(tracker: &Arc<Tracker>, index: usize) -> Self {
        let entry: *const *const Tracker = &tracker.tags[index];
        // SAFETY: the pointer comes from a live Arc; the reference taken here
        // is given back by Drop.
        unsafe { Arc::increment_strong_count(Arc::as_ptr(tracker)) };
        DeliveryTag(entry)
    }

    /// The tracker and the message's index in its write; None for `async`.
    pub(crate) fn slot(&self) -> Option<(&Tracker, usize)> {
        if self.0.is_null() {
            return None;
        }
        // SAFETY: a non-null tag points at an entry of a tracker it keeps
        // alive; the entry holds that tracker's address.
        unsafe {
            let tracker = &**self.0;
            let index = self.0.offset_from(tracker.tags.as_ptr()) as usize;
            Some((tracker, index))
        }
    }
}

impl Drop for DeliveryTag {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: gives back the reference `new` took.
            unsafe { Arc::decrement_strong_count(*self.0) };
        }
    }
}

impl IntoOpaque for DeliveryTag {
    fn into_ptr(self) -> *mut c_void {
        let pointer = self.0 as *mut c_void;
        // The reference travels with the pointer, through librdkafka.
        std::mem::forget(self);
        pointer
    }

    unsafe fn from_ptr(pointer: *mut c_void) -> Self {
        DeliveryTag(pointer as *const *const Tracker)
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
        // Through librdkafka and back, as the delivery report does.
        let tags: Vec<_> = tags
            .into_iter()
            .map(|tag| unsafe { DeliveryTag::from_ptr(tag.into_ptr()) })
            .collect();
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
    fn an_async_tag_has_no_slot() {
        let tag = unsafe { DeliveryTag::from_ptr(DeliveryTag::ASYNC.into_ptr()) };
        assert!(tag.slot().is_none());
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
