//! Escalation: a failure past its restart limit, reported once per component.

use std::sync::Arc;

use crate::observe::Metrics;

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

/// Where supervisors report restarts and failures past their limit: shared by
/// every client of one component.
#[derive(Clone, Default)]
pub(crate) struct Escalator {
    first: Arc<tokio::sync::watch::Sender<Option<Escalation>>>,
    /// The component's metrics, counting restarts and escalations.
    metrics: Option<Arc<Metrics>>,
}

impl Escalator {
    /// An escalator that also counts restarts and escalations in `metrics`.
    pub(crate) fn recording(metrics: Option<Arc<Metrics>>) -> Self {
        Escalator {
            metrics,
            ..Escalator::default()
        }
    }

    /// Counts a restart of client `kind` `name`.
    pub(crate) fn restarting(&self, kind: &'static str, name: &str) {
        if let Some(metrics) = &self.metrics {
            metrics.restarted(kind, name);
        }
    }

    /// Records `escalation` unless an earlier one is recorded: the first failure
    /// is the cause, later ones are usually its consequences. Every one counts
    /// in the metrics.
    pub(crate) fn escalate(&self, escalation: Escalation) {
        tracing::error!(kind = escalation.kind, name = %escalation.name, restarts = escalation.restarts, reason = %escalation.reason, "restart limit reached; escalating");
        if let Some(metrics) = &self.metrics {
            metrics.escalated(escalation.kind, &escalation.name);
        }
        self.first.send_if_modified(|first| {
            if first.is_some() {
                return false;
            }
            *first = Some(escalation);
            true
        });
    }

    pub(crate) fn current(&self) -> Option<Escalation> {
        self.first.borrow().clone()
    }

    /// Waits for the first escalation (at once when there already is one).
    pub(crate) async fn escalated(&self) -> Escalation {
        let mut watching = self.first.subscribe();
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
