//! What a consumer group hands to its subscribers: message batches to
//! acknowledge, and group events (assigned, revoked, errors).

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use super::ledger::SubscriberMask;
use crate::consumer::{ConsumedMessage, PartitionOffset, StartingOffset, TopicPartition};

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
pub enum GroupEvent {
    /// Partitions assigned.
    Assigned(Assigned),
    /// Partitions revoked.
    Revoked(Revoked),
    /// An error the group carried on from.
    Error(GroupError),
}

/// A command from a handle or a batch to the group's engine thread.
pub(crate) enum Command {
    Ack {
        by: SubscriberMask,
        partition: TopicPartition,
        from: i64,
        to: i64,
    },
    /// Given up unhandled: owed no more, never committed past.
    Release {
        by: SubscriberMask,
        partition: TopicPartition,
        from: i64,
        to: i64,
    },
    Commit {
        by: SubscriberMask,
        offsets: Vec<(TopicPartition, i64, i64)>,
        reply: tokio::sync::oneshot::Sender<Result<Vec<crate::consumer::PartitionOffset>, String>>,
    },
    SubscribeMessages {
        sink: super::engine::MessageSink,
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    SubscribeEvents(actix::Recipient<GroupEvent>),
    Status(tokio::sync::oneshot::Sender<super::GroupStatus>),
    /// Drain for at most `drain` (capped by `drainTimeout`), commit, leave;
    /// the reply names what the member failed to commit, if anything.
    Close {
        drain: Duration,
        reply: tokio::sync::oneshot::Sender<Result<(), Uncommitted>>,
    },
    SimulateFatalError {
        reason: String,
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
}

/// Where acknowledgements go, and on whose behalf.
#[derive(Clone)]
pub(crate) struct AckSender {
    pub(crate) commands: Sender<Command>,
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
pub struct MessageBatch {
    pub(crate) generation: i32,
    pub(crate) partition: TopicPartition,
    pub(crate) messages: Arc<[ConsumedMessage]>,
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

impl MessageBatch {
    /// The group generation the messages were fetched in.
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// The partition all messages belong to.
    pub fn partition(&self) -> &TopicPartition {
        &self.partition
    }

    /// The messages, in offset order.
    pub fn messages(&self) -> &[ConsumedMessage] {
        &self.messages
    }

    fn send_ack(&self, from: i64, to: i64) {
        // The group may have stopped (closed or restarting); its messages will be
        // delivered again from the last commit, so a lost acknowledgement is safe.
        let _ = self.ack.commands.send(Command::Ack {
            by: self.ack.by,
            partition: self.partition.clone(),
            from,
            to,
        });
    }

    /// Acknowledges every message of the batch.
    pub fn ack(&self) {
        if let (Some(first), Some(last)) = (self.messages.first(), self.messages.last()) {
            self.send_ack(first.offset, last.offset);
        }
    }

    /// Acknowledges the messages up to and including `offset`.
    pub fn ack_through(&self, offset: i64) {
        if let Some(first) = self.messages.first() {
            self.send_ack(first.offset, offset);
        }
    }

    /// Acknowledges one message of the batch.
    pub fn ack_message(&self, message: &ConsumedMessage) {
        self.send_ack(message.offset, message.offset);
    }

    /// Gives up, unhandled, the messages from `offset` to the end of the batch:
    /// a revoke or close no longer waits for them, and the group never commits
    /// past them, so they are delivered again to the partition's next owner.
    pub(crate) fn release_from(&self, offset: i64) {
        if let Some(last) = self.messages.last() {
            let _ = self.ack.commands.send(Command::Release {
                by: self.ack.by,
                partition: self.partition.clone(),
                from: offset,
                to: last.offset,
            });
        }
    }
}

/// One item of the pull API ([`ConsumerGroup::poll`](super::ConsumerGroup::poll)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message; acknowledge it with [`ConsumerGroup::ack`](super::ConsumerGroup::ack)
    /// or commit it with [`ConsumerGroup::commit`](super::ConsumerGroup::commit).
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

/// What the engine puts on the pull channel.
pub(crate) enum PullItem {
    Batch(MessageBatch),
    Event(GroupEvent),
}

/// Offsets a member acknowledged but could not commit (its last commit of
/// each failed), and why.
#[derive(Debug, Clone, Default)]
pub(crate) struct Uncommitted {
    pub(crate) offsets: Vec<PartitionOffset>,
    pub(crate) reason: String,
}
