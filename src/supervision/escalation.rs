//! Escalation: a failure past its restart limit, reported once per component.

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
