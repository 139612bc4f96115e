//! What a consumer group hands to its subscribers: message batches to
//! acknowledge, and group events (assigned, revoked, errors).

use std::sync::Arc;

use super::consumed::{ConsumedMessage, StartingOffset, TopicPartition};

/// Partitions given to this member, with where each starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    /// The group id.
    pub group_id: String,
    /// The group generation the assignment belongs to.
    pub generation: i32,
    /// The partitions and their starting offsets.
    pub partitions: Vec<(TopicPartition, StartingOffset)>,
}

/// Partitions taken from this member. By the time subscribers see this event the
/// group has stopped handing out messages of these partitions; it then waits (up to
/// `drainTimeout`) for the acknowledgements still owed, commits them and lets go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// The group id.
    pub group_id: String,
    /// The generation that is ending.
    pub generation: i32,
    /// The partitions.
    pub partitions: Vec<TopicPartition>,
}

/// A problem the group ran into and carried on from (a failed commit, a broker
/// error); fatal problems stop the group instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupError {
    /// The group id.
    pub group_id: String,
    /// The current generation (-1 before the first assignment).
    pub generation: i32,
    /// What happened.
    pub message: String,
}

/// A group event, as sent to event subscribers.
#[derive(Debug, Clone, PartialEq, Eq, actix::Message)]
#[rtype(result = "()")]
#[non_exhaustive]
pub enum GroupEvent {
    /// Partitions assigned.
    Assigned(Assigned),
    /// Partitions revoked.
    Revoked(Revoked),
    /// An error the group carried on from.
    Error(GroupError),
}

/// One bit per message subscriber of a group member.
pub(crate) type SubscriberMask = u64;

/// Whether acknowledged messages were handled, or given up unhandled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckKind {
    /// Handled: committable once every subscriber acknowledged them.
    Handled,
    /// Given up unhandled: owed no more, never committed past.
    Released,
}

/// Messages `from..=to` of `partition`, acknowledged by subscriber `by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ack {
    pub(crate) by: SubscriberMask,
    pub(crate) partition: TopicPartition,
    pub(crate) from: i64,
    pub(crate) to: i64,
    pub(crate) kind: AckKind,
}

/// Where a member's acknowledgements go: its engine.
pub(crate) trait AckSink: Send + Sync {
    /// Hands `ack` over. The member may have stopped (closed or restarting);
    /// its messages are then delivered again from the last commit, so a lost
    /// acknowledgement is safe.
    fn acknowledge(&self, ack: Ack);

    /// Takes back a batch's messages once nobody holds them. The group engine
    /// frees them on its own thread, where it allocated them: freed on the
    /// subscriber's thread instead, they contend on the allocator's locks with
    /// the engine's next copies.
    fn recycle(&self, messages: Vec<ConsumedMessage>) {
        drop(messages);
    }
}

/// Where acknowledgements go, and on whose behalf.
#[derive(Clone)]
pub(crate) struct AckSender {
    pub(crate) sink: Arc<dyn AckSink>,
    pub(crate) by: SubscriberMask,
}

/// Consecutive messages of one partition, in offset order, for one subscriber.
///
/// Acknowledge them once handled, with [`ack`](Self::ack) (all of them) or
/// [`ack_through`](Self::ack_through) / [`ack_message`](Self::ack_message);
/// acknowledgements may come from any thread and in any order. The group commits
/// an offset only when every message before it was acknowledged by every
/// subscriber. A batch never acknowledged holds its partition back: the group
/// stops fetching it once `maxBuffered` messages are held, and on a rebalance
/// those messages go to the next owner again.
#[derive(actix::Message)]
#[rtype(result = "()")]
#[must_use = "an unacknowledged batch holds its partition back"]
pub struct MessageBatch {
    pub(crate) generation: i32,
    pub(crate) partition: TopicPartition,
    // A `Vec` behind the `Arc`, not a slice: the batch is built as a `Vec`,
    // and turning it into `Arc<[_]>` would copy every message.
    pub(crate) messages: Arc<Vec<ConsumedMessage>>,
    pub(crate) ack: AckSender,
}

impl std::fmt::Debug for MessageBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageBatch")
            .field("generation", &self.generation)
            .field("partition", &self.partition)
            .field("messages", &self.messages.len())
            .finish()
    }
}

impl Drop for MessageBatch {
    fn drop(&mut self) {
        // The last of a batch's holders (one per subscriber) sends its messages
        // home to be freed.
        if let Some(messages) = Arc::get_mut(&mut self.messages) {
            self.ack.sink.recycle(std::mem::take(messages));
        }
    }
}

impl MessageBatch {
    /// The group generation the messages were fetched in.
    #[must_use]
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// The partition all messages belong to.
    #[must_use]
    pub fn partition(&self) -> &TopicPartition {
        &self.partition
    }

    /// The messages, in offset order.
    #[must_use]
    pub fn messages(&self) -> &[ConsumedMessage] {
        &self.messages
    }

    fn send_ack(&self, from: i64, to: i64, kind: AckKind) {
        self.ack.sink.acknowledge(Ack {
            by: self.ack.by,
            partition: self.partition.clone(),
            from,
            to,
            kind,
        });
    }

    /// Acknowledges every message of the batch.
    pub fn ack(&self) {
        if let (Some(first), Some(last)) = (self.messages.first(), self.messages.last()) {
            self.send_ack(first.offset(), last.offset(), AckKind::Handled);
        }
    }

    /// Acknowledges the messages up to and including `offset`.
    pub fn ack_through(&self, offset: i64) {
        if let Some(first) = self.messages.first() {
            self.send_ack(first.offset(), offset, AckKind::Handled);
        }
    }

    /// Acknowledges one message of the batch.
    pub fn ack_message(&self, message: &ConsumedMessage) {
        self.send_ack(message.offset(), message.offset(), AckKind::Handled);
    }

    /// Acknowledges the messages at offsets `from..=to`, leaving the batch's
    /// others as they are.
    pub(crate) fn ack_range(&self, from: i64, to: i64) {
        self.send_ack(from, to, AckKind::Handled);
    }

    /// Gives up, unhandled, the messages from `offset` to the end of the batch:
    /// a revoke or close no longer waits for them, and the group never commits
    /// past them, so they are delivered again to the partition's next owner.
    pub(crate) fn release_from(&self, offset: i64) {
        if let Some(last) = self.messages.last() {
            self.release_range(offset, last.offset());
        }
    }

    /// Gives up, unhandled, the messages at offsets `from..=to` (see
    /// [`release_from`](Self::release_from)), leaving the batch's others as
    /// they are: messages handled at once may still be running.
    pub(crate) fn release_range(&self, from: i64, to: i64) {
        self.send_ack(from, to, AckKind::Released);
    }
}

/// One item of the pull API ([`ConsumerGroup::poll`](crate::consumer::ConsumerGroup::poll)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A message; acknowledge it with [`ConsumerGroup::ack`](crate::consumer::ConsumerGroup::ack)
    /// or commit it with [`ConsumerGroup::commit`](crate::consumer::ConsumerGroup::commit).
    Message(ConsumedMessage),
    /// Partitions assigned.
    Assigned(Assigned),
    /// Partitions revoked.
    Revoked(Revoked),
    /// An error the group carried on from.
    Error(GroupError),
}

impl From<GroupEvent> for Event {
    fn from(event: GroupEvent) -> Self {
        match event {
            GroupEvent::Assigned(a) => Event::Assigned(a),
            GroupEvent::Revoked(r) => Event::Revoked(r),
            GroupEvent::Error(e) => Event::Error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Keeps what is recycled; ignores acknowledgements.
    #[derive(Default)]
    struct Recycler(Mutex<Vec<Vec<ConsumedMessage>>>);

    impl AckSink for Recycler {
        fn acknowledge(&self, _: Ack) {}

        fn recycle(&self, messages: Vec<ConsumedMessage>) {
            self.0.lock().unwrap().push(messages);
        }
    }

    fn message(offset: i64) -> ConsumedMessage {
        ConsumedMessage::new("t", 0, offset, &crate::Message::new([1, 2, 3]))
    }

    #[test]
    fn the_last_holder_of_a_batch_sends_its_messages_home() {
        let sink = Arc::new(Recycler::default());
        let messages = Arc::new(vec![message(7), message(8)]);
        // One batch per subscriber, sharing the messages.
        let batch = |by| MessageBatch {
            generation: 1,
            partition: TopicPartition {
                topic: Arc::from("t"),
                partition: 0,
            },
            messages: Arc::clone(&messages),
            ack: AckSender {
                sink: Arc::clone(&sink) as Arc<dyn AckSink>,
                by,
            },
        };
        let (first, second) = (batch(1), batch(2));
        drop(messages);
        drop(first);
        assert!(sink.0.lock().unwrap().is_empty(), "another holder is left");
        drop(second);
        let recycled = sink.0.lock().unwrap();
        assert_eq!(recycled.len(), 1);
        assert_eq!(recycled[0], vec![message(7), message(8)]);
    }
}
