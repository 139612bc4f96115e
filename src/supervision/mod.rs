//! Supervision: every client and server runs under one core that restarts it
//! when it fails.
//!
//! actix's own `Supervisor` restarts an actor whenever it stops, forever,
//! without delay, and does not see panics. ekafka's actors instead keep their
//! address and mailbox, and a [`Supervisor`] inside them replaces the Kafka
//! client behind them, following a [`RestartPolicy`]: exponential backoff with
//! jitter between attempts, and at most `max_restarts` within `window` before
//! the failure is reported as final ([`Escalation`]).
//!
//! - [`supervisor`]: the core, generic over what one incarnation of a client
//!   is ([`Incarnations`]); the producer, the consumer group, the single
//!   consumer and both kinds of consumer server each implement it and keep
//!   only what is specific to them.
//! - [`policy`]: the restart policy, its backoff and its limit.
//! - [`escalation`]: where failures past the limit go (the component, then the App).
//! - [`verdict`]: which client errors mean the client itself failed.

mod escalation;
mod policy;
mod supervisor;
mod verdict;

pub use escalation::Escalation;

pub(crate) use crate::config::RestartPolicy;
pub(crate) use escalation::Escalator;
pub(crate) use policy::{backoff_with_jitter, RestartTracker};
pub(crate) use supervisor::{Incarnations, Slot, Supervisor};
pub(crate) use verdict::{client_failure, AuthorizationScope, ClientFailure};
