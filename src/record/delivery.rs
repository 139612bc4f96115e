//! What a write and a close report back, message by message, and why a
//! message was not written.

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::message::{Delivery, Message};

/// The fate of one message of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The broker acknowledged it (synchronous producers).
    Delivered(Delivery),
    /// It is queued for sending (`async = true` producers); a later failure goes
    /// to the error subscriber.
    Enqueued,
    /// It was not written; the error carries the message back.
    Failed(ProduceError),
}

/// The outcome of every message of one write, in the order they were given.
///
/// ```
/// # use ekafka::{Outcome, WriteReport};
/// fn check(report: WriteReport) -> Result<(), ekafka::ProduceError> {
///     for outcome in report.outcomes() {
///         if let Outcome::Failed(error) = outcome {
///             return Err(error.clone());
///         }
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a write report holds each message's outcome: ignored, failures go unseen"]
pub struct WriteReport {
    outcomes: Vec<Outcome>,
}

impl WriteReport {
    pub(crate) fn new(outcomes: Vec<Outcome>) -> Self {
        WriteReport { outcomes }
    }

    /// Gives each failed message that named no topic the producer's own,
    /// where it was going: its error then says which topic it is about.
    pub(crate) fn name_topics(mut self, default_topic: Option<&str>) -> Self {
        if let Some(topic) = default_topic {
            for outcome in &mut self.outcomes {
                if let Outcome::Failed(failure) = outcome {
                    failure
                        .message
                        .topic
                        .get_or_insert_with(|| topic.to_string());
                }
            }
        }
        self
    }

    /// One outcome per message, in write order.
    #[must_use]
    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }

    /// The outcomes, owned.
    #[must_use]
    pub fn into_outcomes(self) -> Vec<Outcome> {
        self.outcomes
    }

    /// The acknowledged messages.
    pub fn deliveries(&self) -> impl Iterator<Item = &Delivery> {
        self.outcomes.iter().filter_map(|o| match o {
            Outcome::Delivered(d) => Some(d),
            _ => None,
        })
    }

    /// The messages that were not written.
    pub fn failures(&self) -> impl Iterator<Item = &ProduceError> {
        self.outcomes.iter().filter_map(|o| match o {
            Outcome::Failed(e) => Some(e),
            _ => None,
        })
    }

    /// True when no message failed.
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The deliveries when every message was delivered, else the first failure.
    /// For `async` producers the list is empty: nothing is acknowledged yet.
    pub fn into_result(self) -> Result<Vec<Delivery>, ProduceError> {
        let mut deliveries = Vec::with_capacity(self.outcomes.len());
        for outcome in self.outcomes {
            match outcome {
                Outcome::Delivered(d) => deliveries.push(d),
                Outcome::Enqueued => {}
                Outcome::Failed(e) => return Err(e),
            }
        }
        Ok(deliveries)
    }
}

/// What `close` could not deliver: every message still pending when the flush
/// deadline (`writeTimeout`) passed, or failing during the flush, handed back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use = "a close report hands back the messages that were not delivered"]
pub struct CloseReport {
    /// Messages not delivered, with why.
    pub undelivered: Vec<ProduceError>,
}

impl CloseReport {
    /// True when everything written was delivered.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.undelivered.is_empty()
    }
}

/// Why one message was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProduceErrorKind {
    /// Neither the message nor the producer config names a topic.
    NoTopic,
    /// An interceptor refused the write.
    Rejected {
        /// The interceptor's name.
        interceptor: String,
    },
    /// librdkafka or the broker reported an error (timeouts, unknown topic,
    /// message too large, purged at close, ...).
    Kafka(RDKafkaErrorCode),
    /// The client went away before reporting on the message.
    Lost,
    /// The message was never sent: the producer gave up restarting its failed
    /// client, or was closed, while the message waited.
    ProducerDown,
}

/// One message that could not be written, handed back so it is not lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceError {
    /// What went wrong.
    pub kind: ProduceErrorKind,
    /// Human-readable detail.
    pub reason: String,
    /// The message, as it was sent (boxed: errors travel in `Result`s and should
    /// stay small).
    pub message: Box<Message>,
}

impl ProduceError {
    /// True when sending the same message again may succeed (timeouts, leader
    /// changes, full queues, a producer restart).
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        use RDKafkaErrorCode as C;
        match &self.kind {
            ProduceErrorKind::Kafka(code) => matches!(
                code,
                C::MessageTimedOut
                    | C::RequestTimedOut
                    | C::QueueFull
                    | C::NotLeaderForPartition
                    | C::LeaderNotAvailable
                    | C::NotEnoughReplicas
                    | C::NotEnoughReplicasAfterAppend
                    | C::BrokerTransportFailure
                    | C::AllBrokersDown
                    | C::PurgeQueue
                    | C::PurgeInflight
                    | C::Fatal
            ),
            ProduceErrorKind::Lost => true,
            ProduceErrorKind::NoTopic
            | ProduceErrorKind::Rejected { .. }
            | ProduceErrorKind::ProducerDown => false,
        }
    }

    /// A failure librdkafka reported for `message`, written to `topic`. The
    /// reason names the topic (and the partition, once chosen) whatever the
    /// code, and leads with the cause when the code names one: a topic or
    /// partition the cluster does not have, a name it does not take. The
    /// message handed back names its topic.
    pub(crate) fn kafka(error: &KafkaError, mut message: Message, topic: &str) -> Self {
        let code = error.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail);
        let place = match message.partition {
            Some(partition) => format!("partition {partition} of topic {topic:?}"),
            None => format!("topic {topic:?}"),
        };
        let reason = match code {
            RDKafkaErrorCode::UnknownTopic | RDKafkaErrorCode::UnknownTopicOrPartition => {
                format!("{place} does not exist on the cluster ({error})")
            }
            RDKafkaErrorCode::InvalidTopic => format!(
                "{topic:?} is not a valid topic name: at most 249 letters, digits, '.', '_' \
                 and '-' ({error})"
            ),
            _ => format!("{error}, writing to {place}"),
        };
        if message.topic.is_none() {
            message.topic = Some(topic.to_string());
        }
        ProduceError {
            kind: ProduceErrorKind::Kafka(code),
            reason,
            message: Box::new(message),
        }
    }
}

impl std::fmt::Display for ProduceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.kind, self.message.topic.as_deref()) {
            // The reason of a Kafka error names where the message went.
            (ProduceErrorKind::Kafka(_), _) => write!(f, "message not written: {}", self.reason),
            (_, Some(topic)) => {
                write!(f, "message to topic {topic:?} not written: {}", self.reason)
            }
            (_, None) => write!(f, "message not written: {}", self.reason),
        }
    }
}

impl std::error::Error for ProduceError {}
