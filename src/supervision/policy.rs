//! How a failed client is restarted, and when to give up: the restart policy,
//! its backoff with jitter, and the count of recent restarts against its limit.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use super::{Escalation, Escalator};
use crate::config::RestartPolicy;

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
        self.restart_within_limit()
            .ok_or_else(|| self.give_up(reason))
    }

    /// Records a restart now and returns the delay to wait before it, or
    /// `None` past the policy's limit (nothing recorded, nothing escalated).
    pub(crate) fn restart_within_limit(&mut self) -> Option<Duration> {
        let now = Instant::now();
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.policy.window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.policy.max_restarts as usize {
            return None;
        }
        let attempt = self.recent.len() as u32;
        self.recent.push_back(now);
        self.escalator.restarting(self.kind, &self.name);
        Some(backoff_with_jitter(&self.policy, attempt))
    }

    /// A restart past the limit that does not escalate: counted, after the
    /// policy's longest delay (with jitter).
    pub(crate) fn restart_past_limit(&mut self) -> Duration {
        self.escalator.restarting(self.kind, &self.name);
        backoff_with_jitter(&self.policy, u32::MAX)
    }

    /// Escalates at once: the failure is one no restart gets past.
    pub(crate) fn give_up(&mut self, reason: &str) -> Escalation {
        let escalation = Escalation {
            kind: self.kind,
            name: self.name.clone(),
            restarts: self.recent_restarts(),
            reason: reason.to_string(),
        };
        self.escalator.escalate(escalation.clone());
        escalation
    }

    /// Restarts counted in the current window.
    pub(crate) fn recent_restarts(&self) -> u32 {
        self.recent.len() as u32
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
