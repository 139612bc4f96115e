//! The supervision core: one generic piece that keeps a client alive.
//!
//! A [`Supervisor`] holds the current *incarnation* of one client (a librdkafka
//! producer, a group member's engine thread, a server's member and handler
//! actor, a manual server's client) in a [`Slot`] that handles read from any
//! thread. When the owner reports that an incarnation failed, the supervisor
//! lets it go, waits out the restart policy's backoff, and starts the next one;
//! past the policy's limit it escalates and stays given up. Closing takes the
//! current incarnation out for good and closes it within a deadline; a close
//! that arrives while a restart is under way stops that restart at its backoff,
//! or closes the incarnation it was starting, so nothing is left running.
//!
//! What differs between clients (how to start one, how to let a failed one go,
//! how to close the last one) is the [`Incarnations`] each kind implements.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Escalation, Escalator, RestartPolicy, RestartTracker};
use crate::error::Error;

/// How one kind of client is started, let go after a failure, and closed.
pub(crate) trait Incarnations: 'static {
    /// One incarnation, cheap to clone: handles read it while it runs.
    type Client: Clone + 'static;
    /// What a clean close reports.
    type Closed: 'static;

    /// Starts incarnation number `incarnation` (the first is 0).
    async fn start(&self, incarnation: u64) -> Result<Self::Client, Error>;

    /// Lets a failed incarnation go: fails or hands back what it holds and
    /// leaves its group, within its own bounded time.
    async fn discard(&self, client: Self::Client, reason: &str);

    /// Closes the last incarnation for good, within `deadline`.
    async fn close(&self, client: Self::Client, deadline: Duration) -> Result<Self::Closed, Error>;
}

enum Phase<C> {
    Running(C),
    /// Between a failure and the next incarnation.
    Restarting,
    Closed,
    GaveUp(Escalation),
}

struct State<C> {
    phase: Phase<C>,
    incarnation: u64,
    restarts: u64,
    close_requested: bool,
}

/// Where the current incarnation lives; shared by the supervisor and every
/// handle, on any thread.
pub(crate) struct Slot<C> {
    kind: &'static str,
    name: String,
    state: Mutex<State<C>>,
    /// Bumped on every change, to wake those waiting for one.
    changed: watch::Sender<u64>,
}

/// A supervised client's state, for status reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Supervision {
    /// The current (or last) incarnation, 0 for the first.
    pub(crate) incarnation: u64,
    /// Incarnations started after a failure, in all.
    pub(crate) restarts: u64,
    /// Why it stopped restarting, once it did.
    pub(crate) gave_up: Option<Escalation>,
}

impl<C: Clone> Slot<C> {
    fn lock(&self) -> MutexGuard<'_, State<C>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self) {
        self.changed
            .send_modify(|version| *version = version.wrapping_add(1));
    }

    fn unavailable(&self, phase: &Phase<C>) -> Error {
        match phase {
            Phase::Restarting => Error::Restarting {
                kind: self.kind,
                name: self.name.clone(),
            },
            Phase::GaveUp(escalation) => escalation.clone().into(),
            Phase::Running(_) | Phase::Closed => Error::Closed {
                kind: self.kind,
                name: self.name.clone(),
            },
        }
    }

    /// The running incarnation and its number, or why there is none now.
    pub(crate) fn current(&self) -> Result<(u64, C), Error> {
        let state = self.lock();
        match &state.phase {
            Phase::Running(client) if !state.close_requested => {
                Ok((state.incarnation, client.clone()))
            }
            phase => Err(self.unavailable(phase)),
        }
    }

    /// Like [`current`](Self::current), but waits out a restart in progress.
    pub(crate) async fn ready(&self) -> Result<(u64, C), Error> {
        // Running, the usual case: answered without a subscription (a
        // producer asks on every write).
        match self.current() {
            Err(Error::Restarting { .. }) => {}
            other => return other,
        }
        // Subscribed before looking again, so a change in between is seen.
        let mut changes = self.changed.subscribe();
        loop {
            match self.current() {
                Err(Error::Restarting { .. }) => {}
                other => return other,
            }
            // The sender lives as long as `self`.
            let _ = changes.changed().await;
        }
    }

    /// True once a close was asked for or done.
    pub(crate) fn is_closed(&self) -> bool {
        let state = self.lock();
        state.close_requested || matches!(state.phase, Phase::Closed)
    }

    /// Asks for a close: handles stop getting the client, and a restart under
    /// way stops at its backoff. The owner then calls [`Supervisor::close`].
    pub(crate) fn request_close(&self) {
        self.lock().close_requested = true;
        self.notify();
    }

    /// Takes the running client out for good, without closing it: for an actor
    /// that stopped without a close and must let it go in its own way.
    pub(crate) fn abandon(&self) -> Option<C> {
        let mut state = self.lock();
        state.close_requested = true;
        let client = match std::mem::replace(&mut state.phase, Phase::Closed) {
            Phase::Running(client) => Some(client),
            Phase::GaveUp(escalation) => {
                state.phase = Phase::GaveUp(escalation);
                None
            }
            Phase::Restarting | Phase::Closed => None,
        };
        drop(state);
        self.notify();
        client
    }

    pub(crate) fn status(&self) -> Supervision {
        let state = self.lock();
        Supervision {
            incarnation: state.incarnation,
            restarts: state.restarts,
            gave_up: match &state.phase {
                Phase::GaveUp(escalation) => Some(escalation.clone()),
                _ => None,
            },
        }
    }

    /// Sleeps `delay` unless a close is asked for first; true when it slept.
    async fn back_off(&self, delay: Duration) -> bool {
        let mut changes = self.changed.subscribe();
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            if self.lock().close_requested {
                return false;
            }
            tokio::select! {
                _ = &mut sleep => return true,
                _ = changes.changed() => {}
            }
        }
    }

    /// Waits until no restart is under way.
    async fn settled(&self) {
        let mut changes = self.changed.subscribe();
        while matches!(self.lock().phase, Phase::Restarting) {
            let _ = changes.changed().await;
        }
    }

    fn end_restart(&self, phase: Phase<C>) {
        self.lock().phase = phase;
        self.notify();
    }

    /// Makes `client` the running incarnation `incarnation`, unless the slot
    /// was closed meanwhile: then the caller gets it back to let it go.
    fn install(&self, incarnation: u64, client: C) -> Option<C> {
        let mut state = self.lock();
        if !matches!(state.phase, Phase::Restarting) {
            return Some(client);
        }
        state.phase = Phase::Running(client);
        state.incarnation = incarnation;
        state.restarts += 1;
        drop(state);
        self.notify();
        None
    }
}

/// Keeps one client alive: see the module documentation.
pub(crate) struct Supervisor<S: Incarnations> {
    spec: Rc<S>,
    slot: Arc<Slot<S::Client>>,
    tracker: Rc<RefCell<RestartTracker>>,
}

impl<S: Incarnations> Clone for Supervisor<S> {
    fn clone(&self) -> Self {
        Supervisor {
            spec: Rc::clone(&self.spec),
            slot: Arc::clone(&self.slot),
            tracker: Rc::clone(&self.tracker),
        }
    }
}

impl<S: Incarnations> Supervisor<S>
where
    S::Client: Send,
{
    /// Supervises `first`, incarnation 0 of client `kind` `name`, started by
    /// its owner (so that a client that cannot start fails where it is asked for).
    pub(crate) fn new(
        spec: S,
        first: S::Client,
        kind: &'static str,
        name: &str,
        policy: RestartPolicy,
        escalator: Escalator,
    ) -> Self {
        let state = State {
            phase: Phase::Running(first),
            incarnation: 0,
            restarts: 0,
            close_requested: false,
        };
        Supervisor {
            spec: Rc::new(spec),
            slot: Arc::new(Slot {
                kind,
                name: name.to_string(),
                state: Mutex::new(state),
                changed: watch::Sender::new(0),
            }),
            tracker: Rc::new(RefCell::new(RestartTracker::new(
                policy, kind, name, escalator,
            ))),
        }
    }
}

impl<S: Incarnations> Supervisor<S> {
    /// The slot handles read the current incarnation from.
    pub(crate) fn slot(&self) -> &Arc<Slot<S::Client>> {
        &self.slot
    }

    pub(crate) fn spec(&self) -> &S {
        &self.spec
    }

    /// Replaces incarnation `incarnation`, which failed for `reason`: lets it
    /// go, backs off, starts the next one (again, with growing backoff, while
    /// starting fails). Returns once a new incarnation runs, or a close stopped
    /// the restart; past the restart limit, returns the escalation. A report
    /// about an incarnation already replaced, or while closing, does nothing.
    pub(crate) async fn fail(&self, incarnation: u64, reason: String) -> Result<(), Escalation> {
        let Some(failed) = self.take_running(incarnation) else {
            return Ok(());
        };
        let (kind, name) = (self.slot.kind, self.slot.name.as_str());
        tracing::warn!(kind, name, incarnation, %reason, "client failed; replacing it");
        self.spec.discard(failed, &reason).await;
        let mut last_failure = reason;
        loop {
            if self.slot.lock().close_requested {
                // Shutting down: a failure now is not one to restart, nor to count.
                self.slot.end_restart(Phase::Closed);
                return Ok(());
            }
            let delay = self.tracker.borrow_mut().next_delay(&last_failure);
            let delay = match delay {
                Ok(delay) => delay,
                Err(escalation) => {
                    self.slot.end_restart(Phase::GaveUp(escalation.clone()));
                    return Err(escalation);
                }
            };
            if !self.slot.back_off(delay).await {
                self.slot.end_restart(Phase::Closed);
                return Ok(());
            }
            let next = incarnation + 1;
            match self.spec.start(next).await {
                Ok(client) => {
                    if let Some(unwanted) = self.slot.install(next, client) {
                        // Closed while it started: let it go at once.
                        self.spec.discard(unwanted, "closed while restarting").await;
                    } else {
                        tracing::info!(kind, name, incarnation = next, "client restarted");
                    }
                    return Ok(());
                }
                Err(e) => last_failure = format!("cannot restart: {e}"),
            }
        }
    }

    /// Ends incarnation `incarnation` for good, without a restart, and
    /// escalates: its failure is one a new client cannot get past (a fenced
    /// transactional producer: another instance took its transactional id,
    /// and a new client would fence that one in turn).
    pub(crate) async fn give_up(&self, incarnation: u64, reason: String) -> Result<(), Escalation> {
        let Some(failed) = self.take_running(incarnation) else {
            return Ok(());
        };
        let (kind, name) = (self.slot.kind, self.slot.name.as_str());
        tracing::error!(kind, name, incarnation, %reason, "client failed for good; not restarting it");
        self.spec.discard(failed, &reason).await;
        let escalation = self.tracker.borrow_mut().give_up(&reason);
        self.slot.end_restart(Phase::GaveUp(escalation.clone()));
        Err(escalation)
    }

    /// Takes incarnation `incarnation` out of the slot to replace or end it;
    /// `None` when it was replaced already or is not running.
    fn take_running(&self, incarnation: u64) -> Option<S::Client> {
        let failed = {
            let mut state = self.slot.lock();
            if state.incarnation != incarnation || !matches!(state.phase, Phase::Running(_)) {
                return None;
            }
            match std::mem::replace(&mut state.phase, Phase::Restarting) {
                Phase::Running(client) => client,
                _ => unreachable!("matched Running above"),
            }
        };
        self.slot.notify();
        Some(failed)
    }

    /// Fails the running incarnation as if its client had reported `reason`
    /// (for testing supervision).
    #[cfg(test)]
    pub(crate) async fn inject_failure(&self, reason: &str) -> Result<(), Error> {
        let (incarnation, _) = self.slot.current()?;
        self.fail(incarnation, reason.to_string())
            .await
            .map_err(Error::from)
    }

    /// Closes for good: waits (within `deadline`) for a restart under way to
    /// end, then closes the running incarnation with what is left of
    /// `deadline`. `None` when there was nothing left to close; the escalation
    /// when the client had given up.
    pub(crate) async fn close(&self, deadline: Duration) -> Result<Option<S::Closed>, Error> {
        let started = Instant::now();
        self.slot.request_close();
        let _ = tokio::time::timeout(deadline, self.slot.settled()).await;
        let client = {
            let mut state = self.slot.lock();
            match std::mem::replace(&mut state.phase, Phase::Closed) {
                Phase::Running(client) => Some(client),
                Phase::GaveUp(escalation) => {
                    state.phase = Phase::GaveUp(escalation.clone());
                    return Err(escalation.into());
                }
                // Only when the restart did not settle in time: the
                // incarnation it is starting finds the slot closed and is let go.
                Phase::Restarting | Phase::Closed => None,
            }
        };
        self.slot.notify();
        match client {
            Some(client) => {
                let left = deadline.saturating_sub(started.elapsed());
                self.spec.close(client, left).await.map(Some)
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;
