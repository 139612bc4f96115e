//! What the producer, consumer and consumer-group handles share: the client's
//! kind and name, its actor's address and its supervision slot; asking the
//! actor, with one mapping of mailbox errors; whether it is closed; and
//! equality (two handles are equal when they talk to the same actor).

use std::sync::Arc;

use actix::{Actor, Addr, Handler, Message};

use crate::error::Error;
use crate::supervision::Slot;

/// A supervised client's actor, as its handle sees it.
pub(crate) struct ActorHandle<A: Actor, C> {
    kind: &'static str,
    name: Arc<str>,
    addr: Addr<A>,
    slot: Arc<Slot<C>>,
}

impl<A: Actor, C: Clone> ActorHandle<A, C> {
    pub(crate) fn new(kind: &'static str, name: &str, addr: Addr<A>, slot: Arc<Slot<C>>) -> Self {
        ActorHandle {
            kind,
            name: name.into(),
            addr,
            slot,
        }
    }

    /// The supervision slot: the running client, or why there is none.
    pub(crate) fn slot(&self) -> &Arc<Slot<C>> {
        &self.slot
    }

    /// The client's configured name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// True once the client was asked to close, or its actor stopped.
    pub(crate) fn is_closed(&self) -> bool {
        self.slot.is_closed() || !self.addr.connected()
    }

    /// Refuses new requests from now on and stops a restart under way.
    pub(crate) fn request_close(&self) {
        self.slot.request_close();
    }

    /// Asks the actor; a closed or vanished actor is the client's error.
    pub(crate) async fn ask<M>(&self, message: M) -> Result<M::Result, Error>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: actix::dev::ToEnvelope<A, M>,
    {
        self.addr
            .send(message)
            .await
            .map_err(|e| crate::error::mailbox_error(self.kind, &self.name, e))
    }

    /// For a handle's `Debug`: its name and whether it is closed.
    pub(crate) fn debug(&self, f: &mut std::fmt::Formatter<'_>, kind: &str) -> std::fmt::Result {
        f.debug_struct(kind)
            .field("name", &self.name)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<A: Actor, C> Clone for ActorHandle<A, C> {
    fn clone(&self) -> Self {
        ActorHandle {
            kind: self.kind,
            name: Arc::clone(&self.name),
            addr: self.addr.clone(),
            slot: Arc::clone(&self.slot),
        }
    }
}

impl<A: Actor, C> PartialEq for ActorHandle<A, C> {
    fn eq(&self, other: &Self) -> bool {
        self.addr == other.addr
    }
}

impl<A: Actor, C> Eq for ActorHandle<A, C> {}
