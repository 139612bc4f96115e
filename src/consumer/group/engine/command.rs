//! The engine's private protocol: what handles and the actor ask of the
//! engine thread, what it puts on the pull channel, and what a close reports.

use std::time::Duration;

use super::MessageSink;
use crate::consumer::GroupStatus;
use crate::record::{
    Ack, GroupEvent, MessageBatch, PartitionOffset, SubscriberMask, TopicPartition,
};

/// A command from a handle, a batch or the actor to the engine thread.
pub(crate) enum Command {
    /// Acknowledged (or given up) messages.
    Ack(Ack),
    Commit {
        by: SubscriberMask,
        offsets: Vec<(TopicPartition, i64, i64)>,
        reply: tokio::sync::oneshot::Sender<Result<Vec<PartitionOffset>, String>>,
    },
    SubscribeMessages {
        sink: MessageSink,
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    SubscribeEvents(actix::Recipient<GroupEvent>),
    Status(tokio::sync::oneshot::Sender<GroupStatus>),
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

/// Acknowledgements of batches reach the engine as commands.
impl crate::record::AckSink for std::sync::mpsc::Sender<Command> {
    fn acknowledge(&self, ack: Ack) {
        let _ = self.send(Command::Ack(ack));
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
