//! Restart policy: how a failed client is restarted, and when to give up.
//!
//! actix's own `Supervisor` restarts an actor whenever it stops, forever, without
//! delay, and does not see panics. ekafka's actors instead keep their address and
//! mailbox and restart the Kafka client inside them, following a [`RestartPolicy`]:
//! exponential backoff with jitter between attempts, and at most
//! `max_restarts` within `window` before the failure is reported as final.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

/// How often and how fast a failed client is restarted.
///
/// ```
/// use std::time::Duration;
/// let policy = ekafka::RestartPolicy {
///     max_restarts: 3,
///     window: Duration::from_secs(30),
///     ..ekafka::RestartPolicy::default()
/// };
/// assert!(policy.backoff_min <= policy.backoff_max);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed within `window`; one more is a final failure.
    pub max_restarts: u32,
    /// The sliding window `max_restarts` counts over.
    pub window: Duration,
    /// Delay before the first restart.
    pub backoff_min: Duration,
    /// Largest delay between restarts.
    pub backoff_max: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 5,
            window: Duration::from_secs(60),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
        }
    }
}

/// Counts one client's or server's restarts against its policy, and escalates
/// the failure that goes past the limit.
pub(crate) struct RestartTracker {
    policy: RestartPolicy,
    recent: VecDeque<Instant>,
    kind: &'static str,
    name: String,
    escalator: Escalator,
}

impl RestartTracker {
    pub(crate) fn new(
        policy: RestartPolicy,
        kind: &'static str,
        name: impl Into<String>,
        escalator: Escalator,
    ) -> Self {
        RestartTracker {
            policy,
            recent: VecDeque::new(),
            kind,
            name: name.into(),
            escalator,
        }
    }

    /// Records a restart now after a failure for `reason`, and returns the delay
    /// to wait before it; past the policy's limit, escalates the failure and
    /// returns the escalation instead.
    pub(crate) fn next_delay(&mut self, reason: &str) -> Result<Duration, Escalation> {
        let now = Instant::now();
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.policy.window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.policy.max_restarts as usize {
            let escalation = Escalation {
                kind: self.kind,
                name: self.name.clone(),
                restarts: self.recent_restarts(),
                reason: reason.to_string(),
            };
            self.escalator.escalate(escalation.clone());
            return Err(escalation);
        }
        let attempt = self.recent.len() as u32;
        self.recent.push_back(now);
        Ok(backoff_with_jitter(&self.policy, attempt))
    }

    /// Restarts counted in the current window.
    pub(crate) fn recent_restarts(&self) -> u32 {
        self.recent.len() as u32
    }
}

/// A supervised client or server that failed more often than its restart
/// policy allows. The component keeps the first one; an [`App`](crate::App)
/// shuts down on it and returns it as its error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// "producer", "consumer group" or "consumer server".
    pub kind: &'static str,
    /// Its configured name.
    pub name: String,
    /// Restarts made within the policy window before it gave up.
    pub restarts: u32,
    /// The last failure.
    pub reason: String,
}

impl From<Escalation> for crate::Error {
    fn from(e: Escalation) -> Self {
        crate::Error::GaveUp {
            kind: e.kind,
            name: e.name,
            restarts: e.restarts,
            reason: e.reason,
        }
    }
}

/// Where supervisors report failures past their limit: shared by every client
/// of one component.
#[derive(Clone)]
pub(crate) struct Escalator(std::sync::Arc<tokio::sync::watch::Sender<Option<Escalation>>>);

impl Default for Escalator {
    fn default() -> Self {
        Escalator(std::sync::Arc::new(tokio::sync::watch::Sender::new(None)))
    }
}

impl Escalator {
    /// Records `escalation` unless an earlier one is recorded: the first failure
    /// is the cause, later ones are usually its consequences.
    pub(crate) fn escalate(&self, escalation: Escalation) {
        tracing::error!(kind = escalation.kind, name = %escalation.name, restarts = escalation.restarts, reason = %escalation.reason, "restart limit reached; escalating");
        self.0.send_if_modified(|first| {
            if first.is_some() {
                return false;
            }
            *first = Some(escalation);
            true
        });
    }

    pub(crate) fn current(&self) -> Option<Escalation> {
        self.0.borrow().clone()
    }

    /// Waits for the first escalation (at once when there already is one).
    pub(crate) async fn escalated(&self) -> Escalation {
        let mut watching = self.0.subscribe();
        loop {
            if let Some(first) = watching.borrow_and_update().clone() {
                return first;
            }
            if watching.changed().await.is_err() {
                // Cannot happen while `self` holds the sender.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Makes librdkafka raise a fatal error in the client `handle`, as a real
/// unrecoverable failure would, so tests can watch ekafka replace the client.
pub(crate) fn inject_fatal_error(
    handle: *mut rdkafka::bindings::rd_kafka_t,
    code: rdkafka::bindings::rd_kafka_resp_err_t,
    reason: &str,
) -> Result<(), String> {
    let reason =
        std::ffi::CString::new(reason).map_err(|_| "reason contains a NUL byte".to_string())?;
    // SAFETY: callers pass the handle of a client they keep alive for the call;
    // librdkafka copies the reason.
    let result =
        unsafe { rdkafka::bindings::rd_kafka_test_fatal_error(handle, code, reason.as_ptr()) };
    if result == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        Ok(())
    } else {
        Err(format!(
            "librdkafka refused to raise the fatal error: {result:?}"
        ))
    }
}

/// `backoff_min * 2^attempt`, capped at `backoff_max`, then a random value between
/// half of it and all of it, so that many clients failing together do not retry in
/// lockstep.
pub(crate) fn backoff_with_jitter(policy: &RestartPolicy, attempt: u32) -> Duration {
    let exponential = policy
        .backoff_min
        .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX));
    let capped = exponential.min(policy.backoff_max);
    let half = capped / 2;
    half + half.mul_f64(random_unit())
}

/// A random number in [0, 1), from the standard library's randomly seeded hasher.
fn random_unit() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(Instant::now().elapsed().as_nanos() as u64);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_within_bounds() {
        let policy = RestartPolicy {
            max_restarts: 10,
            window: Duration::from_secs(60),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
        };
        for attempt in 0..10 {
            let ceiling =
                (Duration::from_millis(100) * 2u32.pow(attempt)).min(Duration::from_secs(1));
            let delay = backoff_with_jitter(&policy, attempt);
            assert!(
                delay <= ceiling && delay >= ceiling / 2,
                "attempt {attempt}: {delay:?}"
            );
        }
    }

    #[test]
    fn gives_up_past_the_limit_and_escalates() {
        let escalator = Escalator::default();
        let policy = RestartPolicy {
            max_restarts: 2,
            ..RestartPolicy::default()
        };
        let mut tracker = RestartTracker::new(policy, "producer", "p1", escalator.clone());
        assert!(tracker.next_delay("first").is_ok());
        assert!(tracker.next_delay("second").is_ok());
        let expected = Escalation {
            kind: "producer",
            name: "p1".into(),
            restarts: 2,
            reason: "third".into(),
        };
        assert_eq!(tracker.next_delay("third"), Err(expected.clone()));
        assert_eq!(tracker.recent_restarts(), 2);
        assert_eq!(escalator.current(), Some(expected));
    }
}
