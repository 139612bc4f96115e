//! The supervision core, tested on its own with a client that is only a number.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use tokio::sync::Notify;

use super::*;

/// Incarnations that are their own numbers, recording what happened to them.
#[derive(Default)]
struct Numbers {
    started: RefCell<Vec<u64>>,
    discarded: RefCell<Vec<(u64, String)>>,
    closed: RefCell<Vec<u64>>,
    /// Starts that fail before one succeeds.
    failing_starts: Cell<u32>,
    /// When set, a start waits for it (and `starting` tells that it began).
    gate: Option<Notify>,
    starting: Notify,
}

impl Incarnations for Numbers {
    type Client = u64;
    type Closed = &'static str;

    async fn start(&self, incarnation: u64) -> Result<u64, Error> {
        self.starting.notify_one();
        if let Some(gate) = &self.gate {
            gate.notified().await;
        }
        if self.failing_starts.get() > 0 {
            self.failing_starts.set(self.failing_starts.get() - 1);
            return Err(Error::Subscription {
                reason: "broker unreachable".into(),
            });
        }
        self.started.borrow_mut().push(incarnation);
        Ok(incarnation)
    }

    async fn discard(&self, client: u64, reason: &str) {
        self.discarded
            .borrow_mut()
            .push((client, reason.to_string()));
    }

    async fn close(&self, client: u64, _deadline: Duration) -> Result<&'static str, Error> {
        self.closed.borrow_mut().push(client);
        Ok("closed cleanly")
    }
}

fn policy(max_restarts: u32, backoff: Duration) -> RestartPolicy {
    RestartPolicy {
        max_restarts,
        window: Duration::from_secs(60),
        backoff_min: backoff,
        backoff_max: backoff,
    }
}

fn supervise(numbers: Numbers, policy: RestartPolicy) -> (Supervisor<Numbers>, Escalator) {
    let escalator = Escalator::default();
    let supervisor = Supervisor::new(numbers, 0, "producer", "p1", policy, escalator.clone());
    (supervisor, escalator)
}

/// A supervisor whose next start waits for `gate`.
fn gated() -> Supervisor<Numbers> {
    let numbers = Numbers {
        gate: Some(Notify::new()),
        ..Numbers::default()
    };
    supervise(numbers, policy(3, Duration::from_millis(1))).0
}

/// Waits (bounded) until the slot is between a failure and the next incarnation.
async fn restarting(slot: &Slot<u64>) {
    let wait = async {
        let mut changes = slot.changed.subscribe();
        while !matches!(slot.current(), Err(Error::Restarting { .. })) {
            changes.changed().await.expect("the slot lives");
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .expect("the restart began");
}

#[tokio::test]
async fn a_failed_incarnation_is_let_go_and_replaced_by_the_next() {
    let (supervisor, _) = supervise(Numbers::default(), policy(3, Duration::from_millis(1)));
    assert_eq!(supervisor.slot().current().unwrap(), (0, 0));

    supervisor.fail(0, "fenced".into()).await.unwrap();

    assert_eq!(supervisor.slot().current().unwrap(), (1, 1));
    let spec = supervisor.spec();
    assert_eq!(*spec.discarded.borrow(), vec![(0, "fenced".to_string())]);
    assert_eq!(*spec.started.borrow(), vec![1]);
    assert_eq!(supervisor.slot().status().restarts, 1);
}

#[tokio::test]
async fn a_second_report_of_the_same_failure_restarts_nothing() {
    let (supervisor, _) = supervise(Numbers::default(), policy(3, Duration::from_millis(1)));
    supervisor.fail(0, "fenced".into()).await.unwrap();
    supervisor
        .fail(0, "fenced, seen by another request".into())
        .await
        .unwrap();

    assert_eq!(supervisor.slot().current().unwrap(), (1, 1));
    assert_eq!(*supervisor.spec().started.borrow(), vec![1]);
    assert_eq!(supervisor.spec().discarded.borrow().len(), 1);
}

#[tokio::test]
async fn a_start_that_fails_is_retried_and_counts_against_the_limit() {
    let numbers = Numbers {
        failing_starts: Cell::new(2),
        ..Numbers::default()
    };
    let (supervisor, _) = supervise(numbers, policy(3, Duration::from_millis(1)));
    supervisor.fail(0, "fenced".into()).await.unwrap();
    assert_eq!(supervisor.slot().current().unwrap(), (1, 1));

    // Three restarts used (two failed starts, one good): the next failure is one too many.
    let escalation = supervisor.fail(1, "fenced again".into()).await.unwrap_err();
    assert_eq!(escalation.restarts, 3);
}

#[tokio::test]
async fn past_the_limit_it_escalates_once_and_stays_given_up() {
    let (supervisor, escalator) =
        supervise(Numbers::default(), policy(1, Duration::from_millis(1)));
    supervisor.fail(0, "first".into()).await.unwrap();
    let escalation = supervisor.fail(1, "second".into()).await.unwrap_err();

    assert_eq!(escalation.kind, "producer");
    assert_eq!(escalation.name, "p1");
    assert_eq!(escalation.reason, "second");
    assert_eq!(escalator.current(), Some(escalation.clone()));
    assert_eq!(supervisor.slot().status().gave_up, Some(escalation));
    // Every request now says why, and so does a close.
    assert!(matches!(
        supervisor.slot().current(),
        Err(Error::GaveUp { restarts: 1, .. })
    ));
    assert!(matches!(
        supervisor.close(Duration::from_secs(1)).await,
        Err(Error::GaveUp { .. })
    ));
    // Both failed incarnations were let go.
    assert_eq!(supervisor.spec().discarded.borrow().len(), 2);
}

#[tokio::test]
async fn close_closes_the_running_incarnation_once() {
    let (supervisor, _) = supervise(Numbers::default(), policy(3, Duration::from_millis(1)));

    let closed = supervisor.close(Duration::from_secs(1)).await.unwrap();

    assert_eq!(closed, Some("closed cleanly"));
    assert_eq!(*supervisor.spec().closed.borrow(), vec![0]);
    assert!(supervisor.slot().is_closed());
    assert!(matches!(
        supervisor.slot().current(),
        Err(Error::Closed { .. })
    ));
    assert_eq!(
        supervisor.close(Duration::from_secs(1)).await.unwrap(),
        None
    );
    // A failure reported after the close restarts nothing.
    supervisor.fail(0, "late".into()).await.unwrap();
    assert!(supervisor.spec().started.borrow().is_empty());
}

#[tokio::test]
async fn a_close_during_the_backoff_stops_the_restart_at_once() {
    // A backoff far longer than the test's bound: only the close can end it.
    let (supervisor, _) = supervise(Numbers::default(), policy(3, Duration::from_secs(600)));
    let slot = Arc::clone(supervisor.slot());

    let (failed, closed) = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(supervisor.fail(0, "fenced".into()), async {
            restarting(&slot).await;
            supervisor.close(Duration::from_secs(1)).await
        })
    })
    .await
    .expect("the close ended the backoff");

    failed.unwrap();
    assert_eq!(closed.unwrap(), None);
    assert!(supervisor.spec().started.borrow().is_empty());
    assert!(matches!(slot.current(), Err(Error::Closed { .. })));
}

#[tokio::test]
async fn a_close_while_the_next_incarnation_starts_closes_that_one() {
    let supervisor = gated();
    let spec = supervisor.spec();

    let (failed, closed) = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(supervisor.fail(0, "fenced".into()), async {
            spec.starting.notified().await;
            // The close waits for the start it raced; let the start finish.
            let close = supervisor.close(Duration::from_secs(5));
            tokio::pin!(close);
            tokio::select! {
                biased;
                _ = &mut close => panic!("the close did not wait for the restart"),
                _ = tokio::task::yield_now() => {}
            }
            spec.gate.as_ref().expect("gated").notify_one();
            close.await
        })
    })
    .await
    .expect("restart and close ended");

    failed.unwrap();
    assert_eq!(closed.unwrap(), Some("closed cleanly"));
    assert_eq!(*spec.started.borrow(), vec![1]);
    assert_eq!(*spec.closed.borrow(), vec![1]);
}

#[tokio::test]
async fn a_close_that_gives_up_waiting_for_a_start_lets_that_incarnation_go() {
    let supervisor = gated();
    let spec = supervisor.spec();

    let (failed, closed) = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(supervisor.fail(0, "fenced".into()), async {
            spec.starting.notified().await;
            let closed = supervisor.close(Duration::from_millis(20)).await;
            // The start finishes only after the close gave up on it.
            spec.gate.as_ref().expect("gated").notify_one();
            closed
        })
    })
    .await
    .expect("restart and close ended");

    failed.unwrap();
    assert_eq!(closed.unwrap(), None);
    assert_eq!(*spec.started.borrow(), vec![1]);
    let discarded = spec.discarded.borrow();
    assert_eq!(
        discarded.last(),
        Some(&(1, "closed while restarting".to_string()))
    );
    assert!(matches!(
        supervisor.slot().current(),
        Err(Error::Closed { .. })
    ));
}

#[tokio::test]
async fn a_request_during_a_restart_waits_for_the_next_incarnation() {
    let (supervisor, _) = supervise(Numbers::default(), policy(3, Duration::from_millis(50)));
    let slot = Arc::clone(supervisor.slot());

    let (failed, ready) = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(supervisor.fail(0, "fenced".into()), async {
            restarting(&slot).await;
            slot.ready().await
        })
    })
    .await
    .expect("the restart ended");

    failed.unwrap();
    assert_eq!(ready.unwrap(), (1, 1));
}

#[tokio::test]
async fn injected_failures_go_through_the_same_restart() {
    let (supervisor, _) = supervise(Numbers::default(), policy(3, Duration::from_millis(1)));
    supervisor.inject_failure("injected").await.unwrap();
    assert_eq!(supervisor.slot().current().unwrap(), (1, 1));
    assert_eq!(
        *supervisor.spec().discarded.borrow(),
        vec![(0, "injected".to_string())]
    );
}
