//! The native layer: every call into librdkafka's C API that rust-rdkafka
//! does not wrap, and every `unsafe` block of the crate, behind small safe
//! types. The rest of the crate is `#![deny(unsafe_code)]`; whoever changes a
//! consumer, a producer or a record reasons about Rust values only, and
//! librdkafka's lifetimes are reasoned about here.
//!
//! - [`queue`]: an owned queue handle that wakes whoever serves it.
//! - [`split_queue`]: a group partition's own queue, read in batches, and the
//!   consumer's queue length.
//! - [`commit_queue`]: commits whose results come back on a queue.
//! - [`produce`]: topic handles and putting a message on librdkafka's queue.
//! - [`delivery`]: the tag a produced message carries to its delivery report.
//! - [`message`]: copying a consumed message (and its headers) out of
//!   librdkafka.
//! - [`client`]: single calls on a live client (cached watermarks, the group
//!   generation, the main queue, a fatal error for tests).
//! - [`admin`]: the admin requests rust-rdkafka lacks.
//! - `mock`: the embedded cluster's controls (the `testing` feature).
//!
//! Every type here that holds a librdkafka handle must be dropped before the
//! client the handle belongs to; each says how its owner keeps that order.

pub(crate) mod admin;
pub(crate) mod client;
pub(crate) mod commit_queue;
pub(crate) mod delivery;
pub(crate) mod message;
#[cfg(feature = "testing")]
pub(crate) mod mock;
pub(crate) mod produce;
pub(crate) mod queue;
pub(crate) mod split_queue;
