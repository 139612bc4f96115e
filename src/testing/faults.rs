//! Placing and slowing the embedded cluster's brokers, so tests can take the
//! coordinator of a group away from the leaders of its partitions.

use std::time::Duration;

use super::{cluster_error, EmbeddedCluster};
use crate::error::Error;

/// A kind of Kafka request whose responses can be delayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KafkaRequest {
    /// Writing messages.
    Produce,
    /// Reading messages.
    Fetch,
    /// Committing a group's offsets.
    OffsetCommit,
    /// Reading a group's committed offsets.
    OffsetFetch,
    /// A group member's heartbeat.
    Heartbeat,
    /// Looking up a group's (or a transaction's) coordinator.
    FindCoordinator,
}

impl KafkaRequest {
    /// The request's API key in the Kafka protocol.
    fn api_key(self) -> i16 {
        match self {
            KafkaRequest::Produce => 0,
            KafkaRequest::Fetch => 1,
            KafkaRequest::OffsetCommit => 8,
            KafkaRequest::OffsetFetch => 9,
            KafkaRequest::Heartbeat => 12,
            KafkaRequest::FindCoordinator => 10,
        }
    }
}

impl EmbeddedCluster {
    /// Makes broker `broker` the coordinator of consumer group `group_id`
    /// (before the group's members look it up).
    pub fn set_group_coordinator(&self, group_id: &str, broker: i32) -> Result<(), Error> {
        self.mock
            .set_group_coordinator(group_id, broker)
            .map_err(cluster_error)
    }

    /// Makes broker `broker` the leader of `topic`'s partition `partition`.
    pub fn set_partition_leader(
        &self,
        topic: &str,
        partition: i32,
        broker: i32,
    ) -> Result<(), Error> {
        self.mock
            .set_partition_leader(topic, partition, broker)
            .map_err(cluster_error)
    }

    /// Makes broker `broker` refuse its next `count` requests of kind `request`
    /// with `code` (a broker error, such as `RebalanceInProgress`).
    pub fn refuse_requests(
        &self,
        broker: i32,
        request: KafkaRequest,
        count: usize,
        code: rdkafka::types::RDKafkaErrorCode,
    ) -> Result<(), Error> {
        // A C enum travels through the variadic call as an int.
        self.push_answers(broker, request, count, code as i32, 0, || {
            format!("refuse {request:?} requests on broker {broker}")
        })
    }

    /// Delays broker `broker`'s responses to its next `count` requests of kind
    /// `request` by `delay` each (the requests still succeed), as a coordinator
    /// that stopped answering would.
    pub fn delay_responses(
        &self,
        broker: i32,
        request: KafkaRequest,
        count: usize,
        delay: Duration,
    ) -> Result<(), Error> {
        let millis = i32::try_from(delay.as_millis()).unwrap_or(i32::MAX);
        self.push_answers(broker, request, count, 0, millis, || {
            format!("delay {request:?} responses of broker {broker}")
        })
    }

    /// Queues how broker `broker` answers its next `count` requests of kind
    /// `request`: with broker error `code` (0 for none), after `millis`;
    /// `what` names it in an error.
    fn push_answers(
        &self,
        broker: i32,
        request: KafkaRequest,
        count: usize,
        code: i32,
        millis: i32,
        what: impl Fn() -> String,
    ) -> Result<(), Error> {
        for _ in 0..count {
            self.mock
                .push_answer(broker, request.api_key(), code, millis, &what)
                .map_err(cluster_error)?;
        }
        Ok(())
    }
}
