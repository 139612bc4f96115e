//! The guide: everything the README leaves out, one chapter per module,
//! rendered here and on docs.rs. Its Rust examples compile as doctests, its
//! config tables are rendered from the keys' declarations and checked against
//! them, and its metrics table against what the registry exposes.
//!
//! - [`using`]: consumer groups, servers in depth, exactly once, retry
//!   topics, supervision, the App, admin, interceptors.
//! - [`observing`]: metrics, health and readiness, the status page, traces.
//! - [`config`]: every key, its default and its librdkafka property; memory.
//! - [`migrating`]: moving a service from Go ekafka, and the differences.
//! - [`compatibility`]: what was tested on which broker.
//! - [`benchmarks`]: ekafka against raw rdkafka, side by side.
//! - [`testing`]: the test tiers, and testing your own code.
//! - [`architecture`]: the modules, and the path of one message.

#[doc = include_str!("using.md")]
pub mod using {}

#[doc = include_str!("observing.md")]
pub mod observing {}

#[doc = include_str!("config.md")]
pub mod config {}

#[doc = include_str!("migrating.md")]
pub mod migrating {}

#[doc = include_str!("compatibility.md")]
pub mod compatibility {}

#[doc = include_str!("benchmarks.md")]
pub mod benchmarks {}

#[doc = include_str!("testing.md")]
pub mod testing {}

#[doc = include_str!("architecture.md")]
pub mod architecture {}
