//! How a thread of ours (a group's engine, a producer's report server) sleeps
//! only while there is nothing to do.
//!
//! Work reaches the group engine from several places: librdkafka's threads put
//! messages on partition queues and events on the consumer and commit queues,
//! subscribers acknowledge from actor threads, handles send commands. Each of
//! them calls [`Waker::wake`] after handing its work over (librdkafka through a
//! queue's non-empty callback), and the engine, once a pass found nothing to
//! do, parks in [`Waker::wait`] until woken or until its next deadline (a
//! commit interval, a timeout).
//!
//! A flag in front of the thread's park token keeps a burst of wake-ups (one
//! per acknowledgement) to one atomic operation each while the thread is busy:
//! only the first wake-up after the thread looked at the flag unparks it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::Duration;

/// Wakes the engine thread when work arrives.
#[derive(Default)]
pub(crate) struct Waker {
    /// Set by a wake-up the engine has not looked at yet.
    pending: AtomicBool,
    /// The engine thread, once it runs; wake-ups before that leave `pending` set.
    thread: OnceLock<Thread>,
}

impl Waker {
    /// Makes the calling thread the one woken.
    pub(crate) fn attach_current_thread(&self) {
        // A waker serves one thread for its whole life.
        let _ = self.thread.set(std::thread::current());
    }

    /// Tells the engine there is work. Call after handing the work over.
    pub(crate) fn wake(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            if let Some(thread) = self.thread.get() {
                thread.unpark();
            }
        }
    }

    /// Parks the engine thread until woken or `timeout` passes; returns at once
    /// when a wake-up came since the last call.
    pub(crate) fn wait(&self, timeout: Duration) {
        if self.pending.swap(false, Ordering::AcqRel) {
            return;
        }
        // A wake-up between the swap and here finds `pending` clear and
        // unparks: the park token makes this return at once.
        std::thread::park_timeout(timeout);
    }
}

impl crate::native::queue::Wake for Waker {
    fn wake(&self) {
        Waker::wake(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    /// Asserts that a wait with a long timeout returns at once.
    fn assert_wait_returns_at_once(waker: &Waker) {
        let started = Instant::now();
        waker.wait(Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_wake_before_the_wait_is_not_lost() {
        let waker = Waker::default();
        waker.attach_current_thread();
        waker.wake();
        assert_wait_returns_at_once(&waker);
    }

    #[test]
    fn a_wake_from_another_thread_ends_the_wait() {
        let waker = Arc::new(Waker::default());
        waker.attach_current_thread();
        let work = Arc::new(AtomicBool::new(false));
        let (remote, handed_over) = (Arc::clone(&waker), Arc::clone(&work));
        let started = Instant::now();
        let wakes = std::thread::spawn(move || {
            handed_over.store(true, Ordering::Release);
            remote.wake();
        });
        // Park may return spuriously: wait until the work is seen, as the
        // engine does.
        while !work.load(Ordering::Acquire) {
            waker.wait(Duration::from_secs(30));
        }
        wakes.join().expect("the waking side ended");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn wakes_before_the_thread_attaches_are_kept() {
        let waker = Waker::default();
        waker.wake();
        waker.attach_current_thread();
        assert_wait_returns_at_once(&waker);
    }
}
