//! A member's close: who waits for it, how long it may drain, and when it
//! gives up draining and leaves with what it has.

use std::time::{Duration, Instant};

use super::command::Uncommitted;

/// How long a close may take beyond its drain (the final commit, leaving)
/// before the engine ends anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Where a close's answer goes.
pub(super) type Closer = tokio::sync::oneshot::Sender<Result<(), Uncommitted>>;

/// The close asked of a member, once asked.
pub(super) struct Closing {
    closers: Vec<Closer>,
    started: Option<Instant>,
    /// How long the close may wait for acknowledgements.
    drain: Duration,
    unsubscribed: bool,
    /// `drainTimeout`.
    drain_timeout: Duration,
}

impl Closing {
    pub(super) fn new(drain_timeout: Duration) -> Self {
        Closing {
            closers: Vec::new(),
            started: None,
            drain: Duration::MAX,
            unsubscribed: false,
            drain_timeout,
        }
    }

    /// A close is asked, draining for at most `drain`: the shortest asked
    /// counts, and the first starts the clock.
    pub(super) fn ask(&mut self, drain: Duration, reply: Closer) {
        self.drain = self.drain.min(drain);
        self.closers.push(reply);
        self.started.get_or_insert_with(Instant::now);
    }

    pub(super) fn is_started(&self) -> bool {
        self.started.is_some()
    }

    /// Whether anyone waits for a close.
    pub(super) fn is_awaited(&self) -> bool {
        !self.closers.is_empty()
    }

    /// True the first time it is asked once a close started: the member
    /// then waits for its coordinator and unsubscribes.
    pub(super) fn unsubscribe_now(&mut self) -> bool {
        let now = self.is_started() && !self.unsubscribed;
        self.unsubscribed |= now;
        now
    }

    /// The drain's time starts later by `waited`: handlers went on while the
    /// member waited for its coordinator, and the wait must not eat into it.
    pub(super) fn delay(&mut self, waited: Duration) {
        if let Some(started) = self.started.as_mut() {
            *started += waited;
        }
    }

    /// How long the revoke barrier waits for acknowledgements: `drainTimeout`,
    /// or less when a close asked for a shorter drain.
    pub(super) fn drain_timeout(&self) -> Duration {
        if self.is_started() {
            self.drain_timeout.min(self.drain)
        } else {
            self.drain_timeout
        }
    }

    /// When a close gives up on draining and leaves with what it has.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let started = self.started?;
        started.checked_add(self.drain_timeout().saturating_add(CLOSE_GRACE))
    }

    pub(super) fn is_out_of_time(&self) -> bool {
        self.deadline()
            .is_some_and(|deadline| Instant::now() > deadline)
    }

    /// Those waiting for the close, to be answered.
    pub(super) fn take_closers(&mut self) -> Vec<Closer> {
        std::mem::take(&mut self.closers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortest_drain_asked_counts_and_the_first_ask_starts_the_clock() {
        let mut closing = Closing::new(Duration::from_secs(30));
        assert_eq!(closing.drain_timeout(), Duration::from_secs(30));
        assert!(closing.deadline().is_none() && !closing.unsubscribe_now());

        let (first, _) = tokio::sync::oneshot::channel();
        closing.ask(Duration::from_secs(10), first);
        let deadline = closing.deadline().expect("started");
        let (second, _) = tokio::sync::oneshot::channel();
        closing.ask(Duration::from_secs(2), second);
        assert_eq!(closing.drain_timeout(), Duration::from_secs(2));
        assert_eq!(
            closing.deadline().unwrap(),
            deadline - Duration::from_secs(8),
            "the clock started at the first ask"
        );
        assert!(closing.unsubscribe_now(), "once");
        assert!(!closing.unsubscribe_now());

        closing.delay(Duration::from_secs(1));
        assert_eq!(
            closing.deadline().unwrap(),
            deadline - Duration::from_secs(7)
        );
        assert!(!closing.is_out_of_time());
        assert_eq!(closing.take_closers().len(), 2);
        assert!(!closing.is_awaited());
    }
}
