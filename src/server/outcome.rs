//! What a message handler reports, and what the server reports back.

use std::fmt;

use crate::consumer::ConsumedMessage;

/// Why a handler did not handle a message.
///
/// `Recoverable` is the counterpart of Go's `ErrRecoverableError`: the server
/// retries the message with backoff. Anything else (and a recoverable failure
/// once the retries are used up) goes to the dead-letter topic when one is
/// configured; without one the server stops that partition there, uncommitted,
/// and is restarted from its committed offsets.
///
/// ```
/// use ekafka::server::HandlerError;
/// fn save(ok: bool) -> Result<(), HandlerError> {
///     if ok { Ok(()) } else { Err(HandlerError::recoverable("database busy")) }
/// }
/// assert!(save(false).unwrap_err().is_recoverable());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandlerError {
    /// Worth trying again (a timeout, a busy dependency).
    Recoverable(String),
    /// Will fail again however often it is tried (a malformed message).
    Fatal(String),
}

impl HandlerError {
    /// A failure worth retrying.
    pub fn recoverable(reason: impl fmt::Display) -> Self {
        HandlerError::Recoverable(reason.to_string())
    }

    /// A failure not worth retrying.
    pub fn fatal(reason: impl fmt::Display) -> Self {
        HandlerError::Fatal(reason.to_string())
    }

    /// True for [`HandlerError::Recoverable`].
    #[must_use]
    pub fn is_recoverable(&self) -> bool {
        matches!(self, HandlerError::Recoverable(_))
    }

    /// The reason given.
    #[must_use]
    pub fn reason(&self) -> &str {
        match self {
            HandlerError::Recoverable(r) | HandlerError::Fatal(r) => r,
        }
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_recoverable() {
            "recoverable"
        } else {
            "fatal"
        };
        write!(f, "{kind}: {}", self.reason())
    }
}

impl std::error::Error for HandlerError {}

/// How a batch handler
/// ([`ConsumerServer::on_each_batch`](super::ConsumerServer::on_each_batch))
/// failed: the index in the batch of the first message it did not handle,
/// and why. The messages before it count as handled (and are committed);
/// that one goes through retries, delay topics, the dead-letter topic or the
/// partition's stop as any failed message; the ones after it come again.
///
/// ```
/// use ekafka::server::{BatchFailure, HandlerError};
/// let failure = BatchFailure::at(36, HandlerError::fatal("row 37 violates a constraint"));
/// assert_eq!(failure.index, 36);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchFailure {
    /// The first message not handled, counted from 0.
    pub index: usize,
    /// Why.
    pub error: HandlerError,
}

impl BatchFailure {
    /// The message at `index` (and so the ones after it) was not handled.
    #[must_use]
    pub fn at(index: usize, error: HandlerError) -> Self {
        BatchFailure { index, error }
    }
}

impl fmt::Display for BatchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "message {} of the batch: {}", self.index, self.error)
    }
}

impl std::error::Error for BatchFailure {}

/// What happened to a message the handler failed on, for the error subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureAction {
    /// It will be tried again after this delay.
    Retrying(std::time::Duration),
    /// It was written to the dead-letter topic and consumption went on.
    DeadLettered,
    /// It was written to this delay topic (`retryTopics`), to be handled
    /// again once the delay passed, and consumption went on.
    Delayed {
        /// The delay topic.
        topic: String,
        /// How long until it is tried again.
        delay: std::time::Duration,
    },
    /// The server stopped consuming its partition there, with the offset
    /// uncommitted, and restarts; the message comes again after the restart.
    Stopped,
}

/// A handler failure, sent to the server's error subscriber (never blocking
/// consumption: when the subscriber's mailbox is full the report is logged instead).
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "()")]
pub struct HandlerFailure {
    /// The server's name.
    pub server: String,
    /// The message.
    pub message: ConsumedMessage,
    /// Attempts made so far.
    pub attempts: u32,
    /// The failure (a panic is reported as fatal, with its message).
    pub error: HandlerError,
    /// What the server did about it.
    pub action: FailureAction,
}

/// A message for a handler actor, in each-message mode
/// ([`ConsumerServer::on_each_message_actor`](super::ConsumerServer::on_each_message_actor)):
/// the actor replies with the outcome, exactly as a handler function returns it.
///
/// ```
/// use actix::prelude::*;
/// use ekafka::server::{HandleMessage, HandlerError};
///
/// struct Billing;
/// impl Actor for Billing {
///     type Context = Context<Self>;
/// }
/// impl Handler<HandleMessage> for Billing {
///     type Result = Result<(), HandlerError>;
///     fn handle(&mut self, HandleMessage(message): HandleMessage, _: &mut Context<Self>) -> Self::Result {
///         message.value_str().map(|_| ()).ok_or_else(|| HandlerError::fatal("not UTF-8"))
///     }
/// }
/// ```
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "Result<(), HandlerError>")]
pub struct HandleMessage(pub ConsumedMessage);

/// A decoded message for a handler actor, in typed each-message mode
/// ([`ServerBuilder::on_each_value_actor`](super::ServerBuilder::on_each_value_actor)):
/// the value, and the message it came in for its key, headers and place. The
/// actor replies with the outcome, as for [`HandleMessage`].
#[derive(Debug, Clone)]
pub struct HandleValue<T> {
    /// The decoded value.
    pub value: T,
    /// The message it was decoded from.
    pub message: ConsumedMessage,
}

impl<T: 'static> actix::Message for HandleValue<T> {
    type Result = Result<(), HandlerError>;
}

/// A message that does not decode will not decode on a second try: a
/// failure for good, dead-lettered or stopping its partition.
impl From<crate::codec::DecodeError> for HandlerError {
    fn from(error: crate::codec::DecodeError) -> Self {
        HandlerError::Fatal(error.to_string())
    }
}
