//! Liveness and readiness, from the probes the clients keep.
//!
//! - Live: no client or server failed past its restart limit, no consumer
//!   group's poll loop and no single consumer's actor has been silent, and
//!   no handler call has run, for `stuckAfter`. A partition paused for back-pressure keeps its loop
//!   running, so it is healthy.
//! - Ready: live, not shutting down, every consumer group member has its
//!   assignment and all its topics exist, and every producer has reached a
//!   broker.

use std::sync::Arc;
use std::time::Duration;

use crate::component::Ekafka;
use crate::observe::ServerProbe;

/// A consumer server's name and what it shows of its health.
pub(crate) type WatchedServer = (String, Arc<ServerProbe>);

/// What the checks found: for each, the problems (none: it passes).
#[derive(Debug, Default)]
pub(crate) struct Health {
    pub(crate) live: Vec<String>,
    pub(crate) ready: Vec<String>,
}

/// Checks `kafka`'s clients and the App's `servers`.
pub(crate) fn check(
    kafka: &Ekafka,
    servers: &[WatchedServer],
    shutting_down: bool,
    stuck_after: Duration,
) -> Health {
    let mut health = Health::default();
    if let Some(escalation) = kafka.escalation() {
        health.live.push(format!(
            "{} {:?} gave up after {} restarts: {}",
            escalation.kind, escalation.name, escalation.restarts, escalation.reason
        ));
    }
    for group in kafka.running_groups() {
        let probe = group.probe();
        if let Some(silent) = probe.heartbeat.silent_for().filter(|s| *s >= stuck_after) {
            health.live.push(format!(
                "consumer group {:?}: its poll loop has not run for {silent:.0?}",
                group.name()
            ));
        }
        let missing = probe.missing_topics();
        if !missing.is_empty() {
            health.ready.push(format!(
                "consumer group {:?}: subscribed topics {missing:?} do not exist on the cluster",
                group.name()
            ));
        } else if !probe.assigned() {
            health.ready.push(format!(
                "consumer group {:?} has no assignment yet",
                group.name()
            ));
        }
    }
    for consumer in kafka.running_consumers() {
        let silent = consumer.probe().heartbeat.silent_for();
        if let Some(silent) = silent.filter(|s| *s >= stuck_after) {
            health.live.push(format!(
                "consumer {:?}: its actor has not run for {silent:.0?}",
                consumer.name()
            ));
        }
    }
    for (name, probe) in servers {
        if let Some(running) = probe.longest().filter(|r| *r >= stuck_after) {
            health.live.push(format!(
                "consumer server {name:?}: a handler call has run for {running:.0?}"
            ));
        }
    }
    for producer in kafka.running_producers() {
        if !producer.probe().has_reached() {
            health.ready.push(format!(
                "producer {:?} has not reached a broker yet",
                producer.name()
            ));
        }
    }
    if shutting_down {
        health.ready.push("shutting down".to_string());
    }
    // What is not live is not ready either.
    health.ready.splice(0..0, health.live.iter().cloned());
    health
}
