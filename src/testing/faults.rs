//! Placing and slowing the embedded cluster's brokers, so tests can take the
//! coordinator of a group away from the leaders of its partitions.

use std::ffi::CString;
use std::time::Duration;

use rdkafka::bindings as ffi;

use super::{check, cluster_error, EmbeddedCluster};
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

fn c_string(what: &str, value: &str) -> Result<CString, Error> {
    CString::new(value).map_err(|_| cluster_error(format!("{what} {value:?} contains a NUL byte")))
}

impl EmbeddedCluster {
    /// Makes broker `broker` the coordinator of consumer group `group_id`
    /// (before the group's members look it up).
    pub fn set_group_coordinator(&self, group_id: &str, broker: i32) -> Result<(), Error> {
        let (kind, key) = (
            c_string("key type", "group")?,
            c_string("group id", group_id)?,
        );
        // SAFETY: `mock` is live and the strings are valid for the call.
        let code = unsafe {
            ffi::rd_kafka_mock_coordinator_set(self.mock, kind.as_ptr(), key.as_ptr(), broker)
        };
        check(
            code,
            &format!("coordinator of group {group_id:?} on broker {broker}"),
        )
    }

    /// Makes broker `broker` the leader of `topic`'s partition `partition`.
    pub fn set_partition_leader(
        &self,
        topic: &str,
        partition: i32,
        broker: i32,
    ) -> Result<(), Error> {
        let name = c_string("topic name", topic)?;
        // SAFETY: `mock` is live and the name is valid for the call.
        let code = unsafe {
            ffi::rd_kafka_mock_partition_set_leader(self.mock, name.as_ptr(), partition, broker)
        };
        check(
            code,
            &format!("leader of {topic}/{partition} on broker {broker}"),
        )
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
            // SAFETY: `mock` is live; one (error, round-trip time) pair follows
            // the count of 1, as the variadic signature expects.
            let pushed = unsafe {
                ffi::rd_kafka_mock_broker_push_request_error_rtts(
                    self.mock,
                    broker,
                    request.api_key(),
                    1,
                    code,
                    millis,
                )
            };
            check(pushed, &what())?;
        }
        Ok(())
    }
}
