//! What health checks read of running clients: a group member's loop beats
//! and whether it has its assignment, the handler calls in progress of a
//! consumer server and its partitions stopped on a message, whether a
//! producer reached a broker. Each is written by
//! the client as it works (an atomic store) and read by a probe at any time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::record::TopicPartition;

/// Milliseconds since the first probe clock reading, plus one (0: never).
fn clock() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
}

/// A loop's heartbeat: each pass beats; a loop silent too long is stuck.
#[derive(Debug, Default)]
pub(crate) struct Heartbeat(AtomicU64);

impl Heartbeat {
    /// The loop made a pass.
    pub(crate) fn beat(&self) {
        self.0.store(clock(), Ordering::Relaxed);
    }

    /// The loop ended: it is no longer expected to beat.
    pub(crate) fn stop(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// How long since the last pass; `None` when the loop is not running.
    pub(crate) fn silent_for(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            last => Some(Duration::from_millis(clock().saturating_sub(last))),
        }
    }
}

/// What a consumer group member shows health checks.
#[derive(Debug, Default)]
pub(crate) struct GroupProbe {
    /// The member's loop, beating on each pass while it runs.
    pub(crate) heartbeat: Heartbeat,
    assigned: AtomicBool,
    missing_topics: Mutex<Vec<String>>,
    /// Messages every subscriber acknowledged, across the group's members.
    handled: AtomicU64,
}

impl GroupProbe {
    /// `count` more messages were acknowledged by every subscriber.
    pub(crate) fn count_handled(&self, count: usize) {
        self.handled.fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Messages every subscriber acknowledged so far.
    pub(crate) fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    /// The member received its assignment (it may be empty: more members
    /// than partitions), or lost it with its client.
    pub(crate) fn set_assigned(&self, assigned: bool) {
        self.assigned.store(assigned, Ordering::Relaxed);
    }

    /// True once the current member has an assignment.
    pub(crate) fn assigned(&self) -> bool {
        self.assigned.load(Ordering::Relaxed)
    }

    /// The subscribed topics the cluster does not have, as the member last
    /// found.
    pub(crate) fn set_missing_topics(&self, topics: Vec<String>) {
        *self
            .missing_topics
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = topics;
    }

    /// The subscribed topics the cluster does not have.
    pub(crate) fn missing_topics(&self) -> Vec<String> {
        self.missing_topics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Whether a producer has reached a broker.
#[derive(Debug, Default)]
pub(crate) struct ProducerProbe(AtomicBool);

impl ProducerProbe {
    /// A broker answered.
    pub(crate) fn reached(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// A new client starts: it has reached nothing yet.
    pub(crate) fn reset(&self) {
        self.0.store(false, Ordering::Relaxed);
    }

    /// True once a broker answered.
    pub(crate) fn has_reached(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A single consumer's actor, beating while it runs.
#[derive(Debug, Default)]
pub(crate) struct ConsumerProbe {
    pub(crate) heartbeat: Heartbeat,
}

/// How many of a server's latest handler failures it keeps for the status page.
pub(crate) const RECENT_FAILURES: usize = 20;

/// A handler failure as the status page shows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecentFailure {
    /// When, in milliseconds since the Unix epoch.
    pub(crate) at: u64,
    pub(crate) partition: TopicPartition,
    pub(crate) offset: i64,
    pub(crate) attempts: u32,
    pub(crate) error: String,
    /// What was done: `retried`, `delayed`, `dead-lettered` or `stopped`.
    pub(crate) action: &'static str,
    /// The action's detail: the retry's delay, the delay topic.
    pub(crate) detail: String,
}

/// What a consumer server shows of its health: its handler calls in
/// progress, to find one stuck, its partitions stopped on a message, and its
/// latest handler failures.
#[derive(Debug, Default)]
pub(crate) struct ServerProbe {
    calls: Mutex<BTreeMap<u64, Instant>>,
    next: AtomicU64,
    stopped: Mutex<Vec<StoppedPartition>>,
    failures: Mutex<std::collections::VecDeque<RecentFailure>>,
    /// The consumer group (its name in the config) the server drives.
    group: OnceLock<String>,
}

/// A partition whose handling stopped on a message that failed for good, as
/// [`RunningServer::status`](crate::server::RunningServer::status) and the
/// App's `/status` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoppedPartition {
    /// The partition.
    pub partition: TopicPartition,
    /// The message it stopped at: it and everything after it wait, uncommitted.
    pub offset: i64,
    /// Why the message failed.
    pub error: String,
    /// Restarts of this partition's handling within the restart window.
    pub restarts: u32,
    /// True once it passed its limit (`maxRestarts`, or `deadLetterLimit`)
    /// and is held there (`partitionPastLimit = "hold"`): its handling is
    /// tried again every `restartBackoffMax` until the message gets through.
    pub held: bool,
    /// True once it passed its limit and escalated
    /// (`partitionPastLimit = "escalate"`); false while it waits to be
    /// handled again.
    pub gave_up: bool,
}

/// A handler call in progress; it ends when dropped.
#[derive(Debug)]
pub(crate) struct Call {
    probe: Arc<ServerProbe>,
    id: u64,
}

impl ServerProbe {
    /// A handler call starts.
    pub(crate) fn start(self: &Arc<Self>) -> Call {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, Instant::now());
        Call {
            probe: Arc::clone(self),
            id,
        }
    }

    /// How long the oldest call in progress has run, if one is.
    pub(crate) fn longest(&self) -> Option<Duration> {
        self.lock().values().min().map(Instant::elapsed)
    }

    /// The server's partitions stopped now are `stopped`.
    pub(crate) fn set_stopped(&self, stopped: Vec<StoppedPartition>) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = stopped;
    }

    /// The server's partitions stopped now.
    pub(crate) fn stopped(&self) -> Vec<StoppedPartition> {
        self.stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A handler failure happened: kept among the latest [`RECENT_FAILURES`].
    pub(crate) fn failed(&self, failure: RecentFailure) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() == RECENT_FAILURES {
            failures.pop_front();
        }
        failures.push_back(failure);
    }

    /// The latest handler failures, the newest first.
    pub(crate) fn recent_failures(&self) -> Vec<RecentFailure> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.iter().rev().cloned().collect()
    }

    /// The server drives consumer group `name`.
    pub(crate) fn set_group(&self, name: &str) {
        let _ = self.group.set(name.to_string());
    }

    /// The consumer group the server drives, once started.
    pub(crate) fn group(&self) -> Option<&str> {
        self.group.get().map(String::as_str)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Instant>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.probe.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_is_silent_only_while_running() {
        let heartbeat = Heartbeat::default();
        assert_eq!(heartbeat.silent_for(), None);
        heartbeat.beat();
        assert!(heartbeat
            .silent_for()
            .is_some_and(|d| d < Duration::from_secs(5)));
        heartbeat.stop();
        assert_eq!(heartbeat.silent_for(), None);
    }

    #[test]
    fn a_server_keeps_its_latest_failures_newest_first() {
        let probe = ServerProbe::default();
        for offset in 0..(RECENT_FAILURES as i64 + 5) {
            probe.failed(RecentFailure {
                at: 1,
                partition: TopicPartition {
                    topic: std::sync::Arc::from("t"),
                    partition: 0,
                },
                offset,
                attempts: 1,
                error: "e".into(),
                action: "stopped",
                detail: String::new(),
            });
        }
        let kept: Vec<i64> = probe.recent_failures().iter().map(|f| f.offset).collect();
        let newest = RECENT_FAILURES as i64 + 4;
        assert_eq!(kept, (5..=newest).rev().collect::<Vec<_>>());
    }

    #[test]
    fn a_handler_call_counts_until_it_ends() {
        let probe = Arc::new(ServerProbe::default());
        assert_eq!(probe.longest(), None);
        let first = probe.start();
        let second = probe.start();
        assert!(probe.longest().is_some());
        drop(first);
        assert!(probe.longest().is_some());
        drop(second);
        assert_eq!(probe.longest(), None);
    }
}
