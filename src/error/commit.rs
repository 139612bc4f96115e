//! Why a commit failed, as a value callers can act on.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::record::TopicPartition;

/// Why a commit failed: what [`Error::Commit`](crate::Error::Commit) and
/// [`Error::Uncommitted`](crate::Error::Uncommitted) carry, and what an
/// interceptor's `after_commit` sees.
///
/// ```
/// use ekafka::{CommitFailure, KafkaCode};
/// let failure = CommitFailure::PartitionRefused {
///     partition: ekafka::consumer::TopicPartition { topic: "orders".into(), partition: 3 },
///     code: KafkaCode::NotCoordinator,
/// };
/// assert!(failure.is_retriable());
/// assert_eq!(failure.kafka_code(), Some(KafkaCode::NotCoordinator));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommitFailure {
    /// librdkafka or the group coordinator refused the commit as a whole.
    #[error("{detail}")]
    Refused {
        /// librdkafka's or the broker's code.
        code: RDKafkaErrorCode,
        /// What librdkafka said, which may tell more than the code.
        detail: String,
    },
    /// The coordinator refused one partition's offset (the first, when
    /// several were).
    #[error("{partition} refused: {code}")]
    PartitionRefused {
        /// The partition.
        partition: TopicPartition,
        /// The broker's code.
        code: RDKafkaErrorCode,
    },
    /// The coordinator did not confirm the commit within the group's
    /// `timeout`: whether it landed is unknown. A late confirmation still
    /// counts.
    #[error(
        "not confirmed within the group's timeout ({timeout:?}): whether it landed is unknown"
    )]
    TimedOut {
        /// The group's `timeout`.
        timeout: Duration,
    },
    /// The member stopped before the commit was confirmed.
    #[error("the member stopped before the commit was confirmed")]
    MemberStopped,
    /// librdkafka would not take an offset into its commit list.
    #[error("cannot commit {partition}: {detail}")]
    Invalid {
        /// The partition.
        partition: TopicPartition,
        /// librdkafka's explanation.
        detail: String,
    },
}

impl CommitFailure {
    /// The failure of a commit librdkafka answered with `error`.
    pub(crate) fn from_kafka(error: &KafkaError) -> Self {
        CommitFailure::Refused {
            code: error.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail),
            detail: error.to_string(),
        }
    }

    /// librdkafka's or the broker's code, when the failure has one.
    #[must_use]
    pub fn kafka_code(&self) -> Option<RDKafkaErrorCode> {
        match self {
            CommitFailure::Refused { code, .. } | CommitFailure::PartitionRefused { code, .. } => {
                Some(*code)
            }
            _ => None,
        }
    }

    /// True when committing again may succeed: the coordinator was slow,
    /// moving or out of reach. False when the member stopped, an offset was
    /// invalid, or the broker refused for good (a group fenced off, an ACL
    /// missing).
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        match self {
            CommitFailure::TimedOut { .. } => true,
            CommitFailure::Refused { code, .. } | CommitFailure::PartitionRefused { code, .. } => {
                super::is_retriable_code(*code)
            }
            CommitFailure::MemberStopped | CommitFailure::Invalid { .. } => false,
        }
    }
}
