//! Where a producer's delivery reports are served: by the writers and on the
//! actor's own thread while its writes are batches, on a helper thread of the
//! client's while they are single messages.
//!
//! librdkafka allocates each message on the thread that enqueues it (the
//! writer's) and frees it on the thread that serves its report. For batched
//! writes, each write serves the reports waiting before it enqueues, on its
//! own thread, and the actor's serving task serves the rest; in the usual
//! case (writers on the actor's thread) that keeps every allocation on one
//! thread, where freeing them on another contended on the allocator's locks
//! and cost a fifth to a third of the throughput. For many concurrent
//! single-message writes completing the reports on another thread in
//! parallel is what keeps up with raw librdkafka. The writes keep the average
//! of their sizes and move the serving between the two.
//!
//! librdkafka rings the client's [`Bell`] when its event queue goes from empty
//! to not empty; the bell wakes whichever side serves now, and a move rings
//! both, so a report is never left without a server.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::native::queue::Wake;
use crate::supervision::Slot;
use crate::wake::Waker;

/// Writes averaging at least this many messages have their reports served on
/// the actor's thread: from there on enqueueing, not the per-write work,
/// dominates the actor's time.
const ACTOR_SERVES_FROM: f64 = 16.0;

/// How much one write moves the average (1/8: a burst of a few writes of
/// another size does not move the serving back and forth).
const AVERAGE_WEIGHT: f64 = 1.0 / 8.0;

/// How long a helper thread sleeps without a ring before it checks that its
/// client is still there; the client's drop wakes it anyway.
const HELPER_IDLE_CHECK: Duration = Duration::from_secs(1);

/// Which side serves a producer's reports, shared by its clients.
#[derive(Default)]
pub(crate) struct ReportServing {
    on_actor: AtomicBool,
    /// Wakes the actor's serving task.
    actor: Notify,
}

impl ReportServing {
    pub(crate) fn on_actor(&self) -> bool {
        self.on_actor.load(Ordering::Acquire)
    }
}

/// The running average of a producer's writes' sizes, deciding the side.
/// Writers on several threads update it without a lock: a write now and
/// then lost to a race moves an average of hundreds of writes by nothing.
pub(crate) struct WriteSizes {
    /// An `f64`, by its bits.
    average: AtomicU64,
}

impl Default for WriteSizes {
    fn default() -> Self {
        // Start with the helper: a producer's first writes are often single.
        WriteSizes {
            average: AtomicU64::new(1.0f64.to_bits()),
        }
    }
}

impl WriteSizes {
    /// Counts a write of `messages` and moves the serving when the average
    /// crosses [`ACTOR_SERVES_FROM`]. True when it moved: the caller then
    /// rings the client's bell on both sides.
    #[must_use]
    pub(crate) fn record(&self, messages: usize, serving: &ReportServing) -> bool {
        let average = f64::from_bits(self.average.load(Ordering::Relaxed));
        let average = average + (messages as f64 - average) * AVERAGE_WEIGHT;
        self.average.store(average.to_bits(), Ordering::Relaxed);
        let on_actor = average >= ACTOR_SERVES_FROM;
        serving.on_actor.swap(on_actor, Ordering::AcqRel) != on_actor
    }
}

/// A client's queue bell (see the module's doc).
pub(crate) struct Bell {
    serving: Arc<ReportServing>,
    helper: Waker,
}

impl Bell {
    pub(crate) fn new(serving: Arc<ReportServing>) -> Self {
        Bell {
            serving,
            helper: Waker::default(),
        }
    }

    /// Wakes both sides: after a move, and when the client goes.
    pub(crate) fn ring_both(&self) {
        self.serving.actor.notify_one();
        self.helper.wake();
    }
}

impl Wake for Bell {
    fn wake(&self) {
        if self.serving.on_actor() {
            // Keeps a permit while the task is busy, so a ring is never lost.
            self.serving.actor.notify_one();
        } else {
            self.helper.wake();
        }
    }
}

/// What serves reports: a producer's client, seen from here. (The client
/// implements it, so this module does not depend on the client's.)
pub(crate) trait ReportSource: Send + Sync + 'static {
    /// The client's queue bell.
    fn bell(&self) -> &Arc<Bell>;
    /// Serves a turn of reports; true when more may be waiting.
    fn serve_reports(&self) -> bool;
    /// True once the client is retired: its flush or purge serves what is
    /// left.
    fn is_retired(&self) -> bool;
}

/// Starts `client`'s helper thread, which serves its reports while the
/// serving is not on the actor, until the client is retired or dropped.
pub(crate) fn start_helper<C: ReportSource>(client: &Arc<C>) -> std::io::Result<()> {
    let (weak, bell) = (Arc::downgrade(client), Arc::clone(client.bell()));
    std::thread::Builder::new()
        .name("ekafka:reports".to_string())
        .spawn(move || serve_on_helper(weak, bell))
        .map(drop)
}

fn serve_on_helper<C: ReportSource>(client: Weak<C>, bell: Arc<Bell>) {
    bell.helper.attach_current_thread();
    loop {
        bell.helper.wait(HELPER_IDLE_CHECK);
        let Some(client) = client.upgrade() else {
            return;
        };
        if client.is_retired() {
            // Its flush or purge serves what is left.
            return;
        }
        while !bell.serving.on_actor() && client.serve_reports() {}
        // If this was the last reference, the client is dropped here, off the
        // actor's thread, as dropping must be.
    }
}

/// Serves the running client's reports on the actor's thread while the
/// serving is there, a turn at a time, for the actor's life: the reports no
/// write came to serve, among them those that free the queue space a
/// waiting write needs. Runs beside the actor, not in its context, so the
/// actor's own work (a restart, a close) does not hold the reports up.
pub(crate) async fn serve_on_actor<C: ReportSource>(
    slot: Arc<Slot<Arc<C>>>,
    serving: Arc<ReportServing>,
) {
    loop {
        // The client is let go before every await, so a client retired on
        // this thread is never held here (see `Client::retire`).
        let more = match slot.current() {
            Ok((_, client)) if serving.on_actor() && !client.is_retired() => client.serve_reports(),
            // The helper serves; or closing or restarting, where the flush or
            // purge serves.
            _ => false,
        };
        if more {
            tokio::task::yield_now().await;
        } else {
            serving.actor.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_move_the_serving_to_the_actor_and_single_messages_move_it_back() {
        let (sizes, serving) = (WriteSizes::default(), ReportServing::default());
        assert!(!sizes.record(1, &serving), "singles stay on the helper");
        assert!(!serving.on_actor());
        assert!(sizes.record(1000, &serving), "one batch moves it");
        assert!(serving.on_actor());
        // A few singles between batches do not move it back...
        for _ in 0..3 {
            assert!(!sizes.record(1, &serving));
        }
        assert!(serving.on_actor());
        // ...a run of them does, once.
        let moves = (0..60).filter(|_| sizes.record(1, &serving)).count();
        assert_eq!(moves, 1);
        assert!(!serving.on_actor());
    }
}
