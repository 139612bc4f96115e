//! Subscribers that receive decoded values: batches decoded by a codec on
//! their way from the group to the subscriber.

use std::ops::Deref;

use actix::prelude::*;

use crate::codec::{DecodeError, Decoder};
use crate::record::{ConsumedMessage, MessageBatch};

/// A [`MessageBatch`] with each message's value decoded, for a subscriber
/// of [`ConsumerGroup::subscribe_values`](super::ConsumerGroup::subscribe_values).
///
/// It derefs to the batch, whose acknowledgement methods work as ever. A
/// message that does not decode comes as an `Err` naming its topic,
/// partition, offset and the codec's reason. A consumer group has no
/// dead-letter topic: acknowledging such a message gives it up; leaving it
/// unacknowledged holds its partition there. A consumer server
/// ([`on_each_value`](crate::server::ConsumerServer::on_each_value))
/// dead-letters it or stops its partition for you.
#[must_use = "an unacknowledged batch holds its partition back"]
pub struct ValueBatch<T> {
    batch: MessageBatch,
    values: Vec<Result<T, DecodeError>>,
}

impl<T: 'static> Message for ValueBatch<T> {
    type Result = ();
}

impl<T> std::fmt::Debug for ValueBatch<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueBatch")
            .field("batch", &self.batch)
            .field(
                "undecodable",
                &self.values.iter().filter(|v| v.is_err()).count(),
            )
            .finish()
    }
}

impl<T> Deref for ValueBatch<T> {
    type Target = MessageBatch;

    fn deref(&self) -> &MessageBatch {
        &self.batch
    }
}

impl<T> ValueBatch<T> {
    /// Each message's value, or why it has none, in offset order.
    pub fn values(&self) -> &[Result<T, DecodeError>] {
        &self.values
    }

    /// Each message with its value (or why it has none), in offset order.
    pub fn iter(&self) -> impl Iterator<Item = (&ConsumedMessage, Result<&T, &DecodeError>)> {
        self.batch
            .messages()
            .iter()
            .zip(self.values.iter().map(Result::as_ref))
    }

    /// The batch, to acknowledge, and the values, owned.
    pub fn into_parts(self) -> (MessageBatch, Vec<Result<T, DecodeError>>) {
        (self.batch, self.values)
    }
}

/// Decodes each batch the group hands it and passes it on. It runs on the
/// thread that subscribed, so decoding never holds up the group's engine.
pub(super) struct Decoding<T: Send + 'static, C> {
    // Boxed: an actor must be `Unpin`, and a codec need not be.
    pub(super) codec: Box<C>,
    pub(super) subscriber: Recipient<ValueBatch<T>>,
}

impl<T: Send + 'static, C: 'static> Actor for Decoding<T, C> {
    type Context = Context<Self>;
}

impl<T, C> Handler<MessageBatch> for Decoding<T, C>
where
    T: Send + 'static,
    C: Decoder<T>,
{
    type Result = ();

    fn handle(&mut self, batch: MessageBatch, ctx: &mut Context<Self>) {
        if !self.subscriber.connected() {
            // Stopping closes this mailbox: the group notices at its next
            // batch, as for any subscriber gone, and hands the batches this
            // one held back to the partitions' next owner.
            ctx.stop();
            return;
        }
        let values = batch
            .messages()
            .iter()
            .map(|message| self.codec.value_of(message))
            .collect();
        // Not `try_send`: the group already bounds what is held unacknowledged
        // (`maxBuffered`), and this batch must not be dropped when the
        // subscriber's mailbox is momentarily full.
        self.subscriber.do_send(ValueBatch { batch, values });
    }
}
