//! The engine's private protocol: what handles and the actor ask of the
//! engine thread, what it puts on the pull channel, and what a close reports.

use std::sync::Arc;
use std::time::Duration;

use super::MessageSink;
use crate::consumer::GroupStatus;
use crate::error::CommitFailure;
use crate::record::{
    Ack, ConsumedMessage, GroupEvent, PartitionOffset, SubscriberMask, TopicPartition,
};
use crate::wake::Waker;

/// A command from a handle, a batch or the actor to the engine thread.
pub(crate) enum Command {
    /// Acknowledged (or given up) messages.
    Ack(Ack),
    Commit {
        by: SubscriberMask,
        offsets: Vec<(TopicPartition, i64, i64)>,
        reply: tokio::sync::oneshot::Sender<Result<Vec<PartitionOffset>, Uncommitted>>,
    },
    SubscribeMessages {
        sink: MessageSink,
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    SubscribeEvents(actix::Recipient<GroupEvent>),
    Status(tokio::sync::oneshot::Sender<GroupStatus>),
    /// The member's group metadata (group, generation, member id), for a
    /// transaction to commit offsets as this member.
    GroupMetadata(tokio::sync::oneshot::Sender<Option<rdkafka::consumer::ConsumerGroupMetadata>>),
    /// Drain for at most `drain` (capped by `drainTimeout`), commit, leave;
    /// the reply names what the member failed to commit, if anything.
    Close {
        drain: Duration,
        reply: tokio::sync::oneshot::Sender<Result<(), Uncommitted>>,
    },
    #[cfg(feature = "testing")]
    SimulateFatalError {
        reason: String,
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Stop reading `partition` until `until` (pausing it in librdkafka): its
    /// next message is not due before then (a delay topic's).
    Hold {
        partition: TopicPartition,
        until: std::time::Instant,
    },
    /// A delivered batch's messages, every holder done with them, to be freed
    /// on the engine's thread, which allocated them (see `AckSink::recycle`).
    Recycle(Vec<ConsumedMessage>),
}

/// Where commands for one engine go: its channel, and the waker that tells
/// the engine thread something arrived.
#[derive(Clone)]
pub(crate) struct Commands {
    sender: std::sync::mpsc::Sender<Command>,
    waker: Arc<Waker>,
}

impl Commands {
    pub(super) fn new(sender: std::sync::mpsc::Sender<Command>, waker: Arc<Waker>) -> Self {
        Commands { sender, waker }
    }

    /// Hands `command` to the engine and wakes it; gives the command back when
    /// the engine has ended.
    pub(crate) fn send(&self, command: Command) -> Result<(), Command> {
        self.sender.send(command).map_err(|e| e.0)?;
        self.waker.wake();
        Ok(())
    }
}

/// Acknowledgements of batches reach the engine as commands.
impl crate::record::AckSink for Commands {
    fn acknowledge(&self, ack: Ack) {
        // An engine that ended delivers these messages again: see `AckSink`.
        let _ = self.send(Command::Ack(ack));
    }

    fn recycle(&self, messages: Vec<ConsumedMessage>) {
        // No wake-up: freeing can wait for the engine's next pass. An engine
        // that ended hands them back, and they are freed here.
        if let Err(returned) = self.sender.send(Command::Recycle(messages)) {
            drop(returned);
        }
    }
}

/// Offsets a member acknowledged but could not commit (its last commit of
/// each failed), and why (the latest failure).
#[derive(Debug, Clone)]
pub(crate) struct Uncommitted {
    pub(crate) offsets: Vec<PartitionOffset>,
    pub(crate) failure: CommitFailure,
}
