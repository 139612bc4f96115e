//! The client the C API admin requests run on, and the rule that keeps
//! librdkafka from using freed memory when one of them is given up.
//!
//! librdkafka 2.12.1 (the newest rdkafka-sys ships) has a use-after-free in
//! its coordinator requests (confluentinc/librdkafka#4605, #3663): a group
//! request (a group's offsets, its description, altering its offsets) that
//! times out inside librdkafka while its coordinator is still being looked up
//! or connected to leaves the lookup pending. When the coordinator comes up,
//! the lookup sends the dead request: `rd_kafka_admin_coord_request` drops the
//! request's last reference and frees it, then reports `__DESTROY`, and
//! `rd_kafka_coord_req_fail` hands that same freed reference to
//! `rd_kafka_admin_coord_response_parse`. What follows is an abort
//! (`rd_kafka_enq_once_del_source_return: Assertion 'eonce->refcnt > 0'`), a
//! SIGSEGV, or a lock on freed memory that hangs the client's main thread.
//! Valgrind names both places; `tests/admin_coordinator_loss.rs` reproduces it.
//!
//! The lookup is only resumed on a live client; on one being destroyed it
//! fails the request once, which is correct. So librdkafka's own timeout of
//! a request is set well past the time we wait for its answer
//! ([`native_timeout`]): when our wait ends without an answer, the request
//! is given up and its client retired (destroyed as soon as no request uses
//! it), long before librdkafka's timer could fire on a live client. Later
//! requests get a new client.
//!
//! A second defect crashes a group request whose coordinator just moved: on
//! NOT_COORDINATOR (or another answer that calls for a new lookup),
//! `rd_kafka_handle_OffsetFetch` asks the client's own consumer group to look
//! its coordinator up again through `rk->rk_cgrp`, which is null on a client
//! without a group (an admin client): SIGSEGV in `rd_kafka_cgrp_op`. So a
//! request client is a consumer handle with a group id of its own
//! ([`REQUESTS_GROUP`]) that never subscribes: it joins nothing, commits
//! nothing, and the lookup it is asked for is harmless.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::ClientConfig;

use crate::native::admin as ffi;

/// A client C API requests are made on.
pub(super) type RequestClient = Arc<BaseConsumer>;

/// The group id of request clients (see the module's doc). It never joins:
/// no member, no offsets, so the group never exists on the cluster.
const REQUESTS_GROUP: &str = "ekafka-admin-requests";

/// How long librdkafka may take over a request we wait `wait` for, with
/// `timeout` the longest any request waits: past our wait, plus the longest
/// another request may still hold the client we retire (it is destroyed when
/// the last one lets go), plus a margin for destroying it. librdkafka takes
/// at most an hour.
pub(super) fn native_timeout(wait: Duration, timeout: Duration) -> Duration {
    (wait + timeout + Duration::from_secs(60)).min(Duration::from_secs(3600))
}

/// The current request client, made on first use and again after a retire.
pub(super) struct RequestClients {
    config: ClientConfig,
    current: Mutex<Option<RequestClient>>,
}

impl RequestClients {
    /// Request clients made with `config`; the first is made now, so a config
    /// librdkafka refuses fails here.
    pub(super) fn new(config: ClientConfig) -> Result<Self, KafkaError> {
        let first = make(&config)?;
        Ok(RequestClients {
            config,
            current: Mutex::new(Some(first)),
        })
    }

    /// The client to make a request on.
    pub(super) fn get(&self) -> Result<RequestClient, KafkaError> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = &*current {
            return Ok(Arc::clone(client));
        }
        let client = make(&self.config)?;
        *current = Some(Arc::clone(&client));
        Ok(client)
    }

    /// Retires `client`, on which a request was given up: no new request
    /// gets it, and it is destroyed, off the callers' threads, once the
    /// requests still on it are done.
    pub(super) fn retire(&self, client: RequestClient) {
        {
            let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
            if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &client)) {
                *current = None;
            }
        }
        tracing::debug!("admin request given up: its client is retired");
        destroy_if_last(client);
    }

    /// Lets go of `client` after a request that was answered: a client
    /// retired meanwhile (by another request) is destroyed, off this thread,
    /// when this was the last request on it.
    pub(super) fn release(&self, client: RequestClient) {
        let current = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, &client));
        if !current {
            destroy_if_last(client);
        }
    }
}

/// Destroys `client` on a thread of its own when no other request holds it
/// (destroying one waits for its threads, and a caller should not wait for
/// that); otherwise the last holder does.
fn destroy_if_last(client: RequestClient) {
    let Ok(last) = Arc::try_unwrap(client) else {
        return;
    };
    let destroy = std::thread::Builder::new()
        .name("ekafka-admin-retire".into())
        .spawn(move || drop(last));
    if let Err(e) = destroy {
        // The client went with the closure that could not run: it was
        // destroyed here, on the caller's thread.
        tracing::warn!(error = %e, "no thread to retire an admin client on");
    }
}

fn make(config: &ClientConfig) -> Result<RequestClient, KafkaError> {
    let mut config = config.clone();
    config
        .set("group.id", REQUESTS_GROUP)
        .set("enable.auto.commit", "false");
    config.create().map(Arc::new)
}

/// The C API handle of `client`, valid while the caller holds `client`.
pub(super) fn handle(client: &RequestClient) -> ffi::Client<'_> {
    ffi::Client::of(client.client())
}
