//! Leaving the group on a close, so that the leave reaches the group.
//!
//! librdkafka sends a member's leave once, on whatever coordinator it has at
//! that moment: a classic LeaveGroup waits at most 5 s and is never retried,
//! and is not sent at all while the coordinator is being looked up. Right after
//! the coordinator is killed, a close's leave is lost either way, or waits
//! behind a JoinGroup the new coordinator holds until every member rejoined
//! (a broker answers a connection's requests in order). A lost leave leaves
//! the member's partitions unowned for the group's whole session (24–56 s of
//! 30 s sessions in a soak, against 2–3 s for a leave that arrived).
//!
//! So before leaving, the member asks its coordinator for one committed
//! offset and waits (briefly) for the answer: it comes once a coordinator is
//! up and nothing holds the connection, which is when the leave will arrive.
//! An answer of "not the coordinator" (the group moved, and librdkafka has not
//! looked it up again yet) is asked again: librdkafka sends the leave where it
//! sent that offset fetch, and a KIP-848 leave sent there was refused the same
//! way and lost (seen on Apache Kafka: refused 181 ms after the SIGTERM, the
//! partitions then waited out the 45 s session).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

/// The longest a close waits for the coordinator: a killed broker is fenced
/// and its coordinators moved within Kafka's 9 s `broker.session.timeout.ms`
/// (default), and a held JoinGroup ends within a heartbeat of every member.
const COORDINATOR_WAIT: Duration = Duration::from_secs(10);

/// The pause before asking again after "not the coordinator": librdkafka
/// looks the coordinator up again on that answer, which takes a round trip.
const ASK_AGAIN_AFTER: Duration = Duration::from_millis(50);

/// How long one ask may wait for its answer before it is asked again. An
/// ask made while the coordinator was down could wait out the whole
/// [`COORDINATOR_WAIT`] after the coordinator came back (seen on the
/// embedded cluster, about one close in ten: the coordinator was back after
/// 2 s and the ask timed out at 10 s, so the leave was lost); a new ask goes
/// out on the connection that is up now.
const ASK_FOR_AT_MOST: Duration = Duration::from_secs(1);

/// Waits until the coordinator of `group` answers this member (an offset
/// fetch of `probe`, a partition of the group's topics, asked again each
/// [`ASK_FOR_AT_MOST`] it goes unanswered), for at most
/// [`COORDINATOR_WAIT`] and never past the member's `session` (after which
/// the group dropped the member anyway); says how it went either way, and
/// returns how long it waited.
pub(super) fn await_coordinator<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    group: &str,
    probe: (&str, i32),
    session: Duration,
) -> Duration {
    let started = Instant::now();
    let deadline = started + COORDINATOR_WAIT.min(session);
    let mut asked = TopicPartitionList::new();
    if asked
        .add_partition_offset(probe.0, probe.1, Offset::Invalid)
        .is_err()
    {
        return Duration::ZERO;
    }
    let mut asks = 0;
    let answer = loop {
        asks += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        match consumer.committed_offsets(asked.clone(), left.min(ASK_FOR_AT_MOST)) {
            Err(error)
                if coordinator_moving(&error) && Instant::now() + ASK_AGAIN_AFTER < deadline =>
            {
                std::thread::sleep(ASK_AGAIN_AFTER);
            }
            // Unanswered: asked again at once, until the deadline.
            Err(error) if timed_out(&error) && Instant::now() < deadline => {}
            answer => break answer,
        }
    };
    let waited = started.elapsed();
    match answer {
        Ok(_) => tracing::debug!(
            group,
            ?waited,
            asks,
            "the coordinator answered: leaving the group"
        ),
        Err(error) => tracing::warn!(
            group,
            ?waited,
            asks,
            %error,
            "leaving the group without an answer from its coordinator: the leave may not \
             arrive, and then the member's partitions wait for its session to end"
        ),
    }
    waited
}

/// Whether `error` is an ask left unanswered for its time.
fn timed_out(error: &KafkaError) -> bool {
    error.rdkafka_error_code() == Some(RDKafkaErrorCode::OperationTimedOut)
}

/// Whether `error` says the group's coordinator is moving, so that asking
/// again shortly (after a pause) can reach the new one. Not a transport
/// error: with every broker gone, asking again only delays the close (whose
/// report then comes seconds later), and the leave cannot arrive anyway. (A
/// timeout is asked again too, but within the same deadline.)
fn coordinator_moving(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::CoordinatorLoadInProgress
        )
    )
}
