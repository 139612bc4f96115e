//! The crate's error types.

mod commit;

pub use commit::CommitFailure;

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::ConfigError;

/// An ekafka error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No client of that kind and name is configured.
    #[error("no {kind} named {name:?} in [{section}] (configured: {known})")]
    UnknownClient {
        /// "producer", "consumer" or "consumer group".
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The config section, e.g. `kafka.producers`.
        section: String,
        /// The configured names, comma-separated.
        known: String,
    },
    /// An actor was asked for outside a running actix system.
    #[error("{what} needs a running actix System: call it inside #[actix::main], #[actix::test] or System::block_on")]
    NoActixSystem {
        /// What was called.
        what: &'static str,
    },
    /// The client was closed; ask the component for a new one.
    #[error("{kind} {name:?} is closed")]
    Closed {
        /// "producer", ...
        kind: &'static str,
        /// Its configured name.
        name: String,
    },
    /// The client failed and is being replaced under its restart policy; the
    /// request can be made again in a moment.
    #[error("{kind} {name:?} is restarting after a failure")]
    Restarting {
        /// "producer", ...
        kind: &'static str,
        /// Its configured name.
        name: String,
    },
    /// librdkafka refused to create or restart a client.
    #[error("{kind} {name:?}: cannot create the Kafka client: {source}")]
    Client {
        /// "producer", ...
        kind: &'static str,
        /// Its configured name.
        name: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// A request of a running client failed: reading its position, the
    /// partitions' watermarks or the group's offsets, seeking, polling.
    #[error("{kind} {name:?}: {operation} failed: {source}")]
    Request {
        /// "consumer", ...
        kind: &'static str,
        /// Its configured name.
        name: String,
        /// What was asked, e.g. "reading the watermarks".
        operation: &'static str,
        /// librdkafka's error (boxed: errors travel in `Result`s and should
        /// stay small).
        #[source]
        source: Box<KafkaError>,
    },
    /// The broker refused the client's SASL credentials (`saslMechanism`,
    /// `saslUserName`, `saslPassword`) or its mechanism, or the TLS handshake
    /// failed (the broker's certificate was not trusted, or it wanted a client
    /// certificate). The client is
    /// restarted under its restart policy, so fixed credentials on the broker
    /// are picked up; past the limit the failure escalates as [`Error::GaveUp`].
    #[error("{kind} {name:?}: {reason}")]
    Authentication {
        /// "consumer", ...
        kind: &'static str,
        /// Its configured name.
        name: String,
        /// librdkafka's code: `Authentication`, `SaslAuthenticationFailed`
        /// or `SSL`.
        code: RDKafkaErrorCode,
        /// What librdkafka reported, with the broker's answer.
        reason: String,
    },
    /// The broker's authorizer refused an operation the client needs to run:
    /// reading a topic or joining a consumer group without the ACL for it.
    /// Retrying cannot help until the ACL is granted, so the client fails
    /// under its restart policy instead of waiting without a word.
    #[error("{kind} {name:?}: {reason}")]
    Authorization {
        /// "consumer", ...
        kind: &'static str,
        /// Its configured name.
        name: String,
        /// The broker's code: `TopicAuthorizationFailed`,
        /// `GroupAuthorizationFailed` or `ClusterAuthorizationFailed`.
        code: RDKafkaErrorCode,
        /// What the broker answered.
        reason: String,
    },
    /// The client failed more often than its restart policy allows.
    #[error("{kind} {name:?} gave up after {restarts} restarts; last failure: {reason}")]
    GaveUp {
        /// "producer", ...
        kind: &'static str,
        /// Its configured name.
        name: String,
        /// Restarts made within the policy window.
        restarts: u32,
        /// The last failure.
        reason: String,
    },
    /// The actor stopped without answering.
    #[error("{kind} {name:?} stopped before answering")]
    ActorStopped {
        /// "producer", ...
        kind: &'static str,
        /// Its configured name.
        name: String,
    },
    /// A subscriber could not be attached.
    #[error("cannot subscribe: {reason}")]
    Subscription {
        /// Why.
        reason: String,
    },
    /// A commit failed: the listed offsets were not committed.
    #[error(
        "{kind} {name:?}: commit failed: {failure} (left uncommitted: {})",
        crate::record::describe_offsets(.offsets)
    )]
    Commit {
        /// "consumer" or "consumer group".
        kind: &'static str,
        /// Its configured name.
        name: String,
        /// Per partition, the offset that was not committed.
        offsets: Vec<crate::record::PartitionOffset>,
        /// Why.
        #[source]
        failure: CommitFailure,
    },
    /// A consumer group closed, but committing what was acknowledged failed
    /// (the coordinator was unreachable, say): each listed offset, one past
    /// the last acknowledged message of its partition, was not committed, so
    /// messages acknowledged since the partition's previous commit will be
    /// handled again by its next owner.
    #[error(
        "consumer group {name:?} closed with acknowledged messages uncommitted ({}): {failure}",
        crate::record::describe_offsets(.offsets)
    )]
    Uncommitted {
        /// The group's configured name.
        name: String,
        /// Per partition, the offset that was not committed.
        offsets: Vec<crate::record::PartitionOffset>,
        /// Why the commit failed.
        #[source]
        failure: CommitFailure,
    },
    /// An admin request failed: the broker refused it (an unknown topic, a
    /// topic that exists already, a group that is not empty) or it timed out.
    /// A refusal by the broker's ACLs is [`Error::Authorization`] instead.
    #[error("admin: {operation} {target:?} failed: {reason}")]
    Admin {
        /// What was asked, e.g. "creating topic".
        operation: &'static str,
        /// What it was asked of: a topic, a group, the cluster.
        target: String,
        /// librdkafka's or the broker's code.
        code: RDKafkaErrorCode,
        /// What it answered.
        reason: String,
    },
    /// A transactional producer was fenced: another producer started with its
    /// `transactionalID`, so this one is a zombie. Its open transaction was
    /// aborted; it is not restarted (a new client would fence the other in
    /// turn), and the failure escalates.
    #[error("producer {name:?} was fenced: another producer took transactionalID {transactional_id:?} ({reason})")]
    Fenced {
        /// The producer's configured name.
        name: String,
        /// Its `transactionalID`.
        transactional_id: String,
        /// What librdkafka reported.
        reason: String,
    },
    /// A transaction did not commit: none of its messages (nor offsets) will
    /// be visible to `read_committed` readers. Begin a new one to try again.
    #[error("producer {name:?}: transaction aborted: {reason}")]
    TransactionAborted {
        /// The producer's configured name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The operation does not apply to this client's configuration.
    #[error("{name:?}: {reason}")]
    Unsupported {
        /// The client's configured name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A consumer server's handler failed.
    #[error("consumer server {name:?} failed: {reason}")]
    ServerFailed {
        /// The server's name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A typed write ([`TypedProducer`](crate::producer::TypedProducer))
    /// held a value its codec could not encode; nothing of that write was
    /// written.
    #[error("producer {name:?}: value {index} of the write cannot be encoded, so nothing was written: {source}")]
    Encode {
        /// The producer's configured name.
        name: String,
        /// The value's place in the write, from 0.
        index: usize,
        /// The codec's reason.
        #[source]
        source: crate::codec::CodecError,
    },
    /// A producer closed with messages it could not deliver (each was logged).
    #[error("producer {name:?} closed with {count} undelivered messages")]
    Undelivered {
        /// The producer's configured name.
        name: String,
        /// How many messages were not delivered.
        count: usize,
    },
    /// The App could not serve its HTTP endpoint (`[kafka.observability]
    /// address`): the address is taken, say, or not this host's.
    #[error("cannot serve the observability endpoint on {address}: {source}")]
    Endpoint {
        /// The address asked for.
        address: String,
        /// Why binding it failed.
        #[source]
        source: std::io::Error,
    },
    /// A second SIGINT or SIGTERM ended the graceful shutdown early.
    #[error("shutdown forced by a second signal; work in flight was abandoned")]
    ShutdownForced,
    /// A simulated fault could not be injected.
    #[cfg(feature = "testing")]
    #[error("cannot inject the fault: {reason}")]
    FaultInjection {
        /// Why.
        reason: String,
    },
    /// A test cluster (embedded, or the broker `EKAFKA_TEST_BROKERS` names)
    /// could not be started, reached or changed.
    #[cfg(feature = "testing")]
    #[error("test cluster: {reason}")]
    TestCluster {
        /// What failed.
        reason: String,
    },
}

impl Error {
    /// True when the same request may succeed if made again: the client is
    /// restarting, or a request failed in a way that passes (a timeout, a
    /// broker out of reach, a leader moving). False for a closed client, bad
    /// configuration, a refusal by the broker, or a client that gave up.
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Restarting { .. } => true,
            Error::Admin { code, .. } => is_retriable_code(*code),
            Error::Request { source, .. } => {
                source.rdkafka_error_code().is_some_and(is_retriable_code)
            }
            Error::Commit { failure, .. } => failure.is_retriable(),
            _ => false,
        }
    }

    /// True when the client was closed: ask the component for a new one.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed { .. })
    }

    /// True when the broker refused the client's credentials, its TLS
    /// handshake, or an operation its ACLs do not allow.
    #[must_use]
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            Error::Authentication { .. } | Error::Authorization { .. }
        )
    }

    /// True when a client or server failed more often than its restart
    /// policy allows and stopped for good.
    #[must_use]
    pub fn gave_up(&self) -> bool {
        matches!(self, Error::GaveUp { .. })
    }

    /// True when the configuration is at fault: invalid, or naming no such
    /// client.
    #[must_use]
    pub fn is_config(&self) -> bool {
        matches!(self, Error::Config(_) | Error::UnknownClient { .. })
    }

    /// True when a transactional producer was fenced by a newer one with its
    /// `transactionalID`.
    #[must_use]
    pub fn is_fenced(&self) -> bool {
        matches!(self, Error::Fenced { .. })
    }

    /// True when an admin request named a topic (or partition) that does
    /// not exist.
    #[must_use]
    pub fn is_unknown_topic(&self) -> bool {
        matches!(
            self,
            Error::Admin {
                code: RDKafkaErrorCode::UnknownTopicOrPartition
                    | RDKafkaErrorCode::UnknownTopic
                    | RDKafkaErrorCode::UnknownPartition,
                ..
            }
        )
    }

    /// True when an admin request needed a consumer group without active
    /// members (resetting its offsets, say) and it had some.
    #[must_use]
    pub fn is_group_not_empty(&self) -> bool {
        matches!(
            self,
            Error::Admin {
                code: RDKafkaErrorCode::NonEmptyGroup,
                ..
            }
        )
    }

    /// librdkafka's or the broker's error code, when the error carries one.
    #[must_use]
    pub fn kafka_code(&self) -> Option<RDKafkaErrorCode> {
        match self {
            Error::Client { source, .. } => source.rdkafka_error_code(),
            Error::Request { source, .. } => source.rdkafka_error_code(),
            Error::Authentication { code, .. }
            | Error::Authorization { code, .. }
            | Error::Admin { code, .. } => Some(*code),
            Error::Commit { failure, .. } | Error::Uncommitted { failure, .. } => {
                failure.kafka_code()
            }
            _ => None,
        }
    }
}

/// What a failed request to a client's actor means, the same for every handle:
/// a closed mailbox is a closed client; a timed-out one (no handle sets a
/// timeout, so the actor went away mid-request) stopped without answering.
pub(crate) fn mailbox_error(kind: &'static str, name: &str, error: actix::MailboxError) -> Error {
    let name = name.to_string();
    match error {
        actix::MailboxError::Closed => Error::Closed { kind, name },
        actix::MailboxError::Timeout => Error::ActorStopped { kind, name },
    }
}

/// Codes of failures that pass: timeouts, unreachable brokers, leadership
/// and coordinator moves.
pub(crate) fn is_retriable_code(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::RequestTimedOut
            | C::OperationTimedOut
            | C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::NotLeaderForPartition
            | C::LeaderNotAvailable
            | C::NotCoordinator
            | C::CoordinatorLoadInProgress
            | C::CoordinatorNotAvailable
            | C::NetworkException
            | C::RebalanceInProgress
    )
}

/// How the broker refused a client, when it did: librdkafka would retry these
/// forever, each attempt failing the same way, so ekafka fails the client
/// instead (restarts count against its policy, and past it the failure
/// escalates, saying why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// SASL credentials or mechanism refused.
    Authentication,
    /// The TLS handshake failed.
    Tls,
    /// An ACL is missing (topic, group or cluster).
    Authorization,
}

impl Refusal {
    pub(crate) fn of(code: RDKafkaErrorCode) -> Option<Refusal> {
        use RDKafkaErrorCode as C;
        match code {
            C::Authentication | C::SaslAuthenticationFailed => Some(Refusal::Authentication),
            C::SSL => Some(Refusal::Tls),
            C::TopicAuthorizationFailed
            | C::GroupAuthorizationFailed
            | C::ClusterAuthorizationFailed => Some(Refusal::Authorization),
            _ => None,
        }
    }

    /// What to call it in front of librdkafka's or the broker's detail.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Refusal::Authentication => "SASL authentication failed",
            Refusal::Tls => "TLS handshake failed",
            Refusal::Authorization => "not authorized",
        }
    }

    /// The error a request of client `kind` `name` answers with.
    pub(crate) fn error(
        self,
        kind: &'static str,
        name: String,
        code: RDKafkaErrorCode,
        reason: String,
    ) -> Error {
        match self {
            Refusal::Authentication | Refusal::Tls => Error::Authentication {
                kind,
                name,
                code,
                reason,
            },
            Refusal::Authorization => Error::Authorization {
                kind,
                name,
                code,
                reason,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed() -> Error {
        Error::Closed {
            kind: "producer",
            name: "p".into(),
        }
    }

    fn request(code: RDKafkaErrorCode) -> Error {
        Error::Request {
            kind: "consumer",
            name: "c".into(),
            operation: "reading the watermarks",
            source: Box::new(KafkaError::MetadataFetch(code)),
        }
    }

    #[test]
    fn predicates_sort_errors_by_what_the_caller_can_do() {
        assert!(closed().is_closed() && !closed().is_retriable());
        assert!(request(RDKafkaErrorCode::OperationTimedOut).is_retriable());
        assert!(!request(RDKafkaErrorCode::UnknownTopicOrPartition).is_retriable());
        assert_eq!(
            request(RDKafkaErrorCode::AllBrokersDown).kafka_code(),
            Some(RDKafkaErrorCode::AllBrokersDown)
        );
        let code = RDKafkaErrorCode::SaslAuthenticationFailed;
        let refused = Refusal::Authentication.error("consumer", "c".into(), code, "bad".into());
        assert!(refused.is_auth() && !refused.is_retriable());
        assert_eq!(refused.kafka_code(), Some(code));
        let gave_up = Error::GaveUp {
            kind: "producer",
            name: "p".into(),
            restarts: 5,
            reason: "down".into(),
        };
        assert!(gave_up.gave_up() && !gave_up.is_retriable());
        let unknown = Error::UnknownClient {
            kind: "producer",
            name: "x".into(),
            section: "kafka.producers".into(),
            known: "p".into(),
        };
        assert!(unknown.is_config() && unknown.kafka_code().is_none());
    }
}
