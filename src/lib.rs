//! # ekafka
//!
//! Kafka for Rust services as supervised [actix](https://docs.rs/actix) actors,
//! configured from TOML: a port, and a better version, of the Go `ekafka`
//! component of the ego framework, on librdkafka.
//!
//! ```no_run
//! # #[actix::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ekafka::{Ekafka, Message};
//!
//! let kafka = Ekafka::from_toml_str(
//!     r#"
//!     [kafka]
//!     brokers = ["127.0.0.1:9092"]
//!     [kafka.producers.p1]
//!     topic = "orders"
//!     batchTimeout = "10ms"
//!     "#,
//!     "kafka",
//! )?
//! .build()?;
//!
//! let producer = kafka.producer("p1")?;
//! let report = producer.write([Message::new("hello").with_key("user-1")]).await?;
//! for delivery in report.into_result()? {
//!     println!("stored at {}/{}@{}", delivery.topic, delivery.partition, delivery.offset);
//! }
//! producer.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! - [`config`]: the TOML keys, their defaults, and how they map to librdkafka.
//! - [`Ekafka`]: the component; [`Producer`]: the producer actor's handle.
//! - [`consumer`]: consumer groups ([`ConsumerGroup`]) with subscriber actors or
//!   a pull API, and single consumers ([`Consumer`]).
//! - [`server`]: consumer servers: a handler per message with retries and a
//!   dead-letter topic, or your own loop with a shutdown signal; supervised.
//! - [`App`]: runs servers until SIGINT/SIGTERM, shuts down gracefully, and
//!   returns the failure of anything that failed past its restart limit.
//! - [`codec`]: typed messages: values of your types written and handled
//!   through a codec ([`codec::Json`] built in).
//! - [`interceptor`]: your code around every operation.
//! - `testing` (the `testing` feature): an embedded cluster for tests.
//! - [`guide`]: the guide, chapter by chapter: using, observing, config,
//!   migrating from Go, compatibility, benchmarks, testing, architecture.

#![warn(missing_docs)]
// Every call into librdkafka's C API stands in `native`, the only module
// allowed `unsafe`.
#![deny(unsafe_code)]

pub mod admin;
mod app;
pub mod codec;
mod component;
pub mod config;
pub mod consumer;
mod error;
pub mod guide;
mod handle;
pub mod interceptor;
#[allow(unsafe_code)]
mod native;
mod observe;
pub mod producer;
mod record;
pub mod server;
mod supervision;
mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
mod unique;
mod wake;

pub use app::{App, AppHandle, FORCED_EXIT_STATUS};
pub use component::{Ekafka, EkafkaBuilder};
pub use config::RestartPolicy;
pub use config::{Config, ConfigError};
pub use consumer::{Consumer, ConsumerGroup};
pub use error::{CommitFailure, Error};
pub use producer::{Balancer, DeliveryFailed, Producer};
pub use rdkafka::types::RDKafkaErrorCode as KafkaCode;
pub use record::{
    CloseReport, ConsumedHeaders, ConsumedMessage, Delivery, Event, GroupEvent, Header, HeaderRef,
    Message, MessageBatch, Outcome, ProduceError, ProduceErrorKind, WriteReport,
};
pub use supervision::Escalation;

/// The README's Rust examples, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
