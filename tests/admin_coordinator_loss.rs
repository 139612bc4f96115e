//! Group admin requests given up while the group's coordinator is away or
//! still being looked up, on the embedded cluster (which can take one broker
//! down and bring it back, and hold a coordinator lookup's answer back).
//!
//! librdkafka 2.12 sends such a request once its coordinator is reachable
//! again, after freeing it, and the process aborts (`rd_kafka_enq_once_
//! del_source_return: Assertion 'eonce->refcnt > 0'`), crashes, or its client
//! hangs (confluentinc/librdkafka#4605). Both tests aborted or hung before
//! ekafka retired the clients of requests it gives up on.

mod common;

use std::time::Duration;

use common::{eventually_async, Fixture};
use ekafka::admin::Admin;
use ekafka::testing::{unique_name, EmbeddedCluster, KafkaRequest};
use rdkafka::types::RDKafkaErrorCode;

/// Broker 2 coordinates the group.
const COORDINATOR: i32 = 2;
/// How many coordinator lookups each broker answers late.
const LOOKUPS_DELAYED: usize = 6;
/// How long an admin request may take here.
const ADMIN_TIMEOUT: &str = "1s";

/// An admin client on `fixture`'s cluster, with requests bounded by 1s.
fn admin(fixture: &Fixture) -> Admin {
    ekafka::Ekafka::from_toml_str(
        &format!(
            "[kafka]\n{}\n[kafka.admin]\ntimeout = {ADMIN_TIMEOUT:?}\n",
            fixture.cluster.brokers_line()
        ),
        "kafka",
    )
    .unwrap()
    .build()
    .unwrap()
    .admin()
    .unwrap()
}

/// A group coordinated by [`COORDINATOR`], with nothing committed yet.
fn group(cluster: &EmbeddedCluster) -> String {
    let group = unique_name("group");
    cluster.set_group_coordinator(&group, COORDINATOR).unwrap();
    group
}

/// Reads `group`'s offsets, expecting a failure that names the group: our
/// timeout, or librdkafka giving the request up first because the broker it
/// waited on went away (`DestroyBroker`, seen once in a full-suite run,
/// when the downed coordinator's handle was dropped before our wait ended).
async fn times_out(admin: &Admin, group: &str) {
    let error = admin.group_offsets(group).await.unwrap_err();
    assert!(
        matches!(
            error.kafka_code(),
            Some(RDKafkaErrorCode::OperationTimedOut | RDKafkaErrorCode::DestroyBroker)
        ),
        "{error}"
    );
    assert!(error.to_string().contains(group), "{error}");
}

/// Once the coordinator answers again (and every answer held back has come),
/// `group`'s offsets are read five times in a row: the requests given up on
/// did not take the process or the client down.
async fn answered_again(admin: &Admin, group: &str) {
    eventually_async("five reads of the group's offsets in a row", || async {
        for _ in 0..5 {
            let offsets = admin.group_offsets(group).await.ok()?;
            assert_eq!(offsets, [], "nothing was committed");
        }
        Some(())
    })
    .await;
}

#[actix::test]
async fn requests_given_up_while_the_coordinator_was_down_do_not_abort_when_it_returns() {
    let fixture = Fixture::new();
    let Some(cluster) = fixture.cluster.embedded() else {
        return; // taking one broker down and up needs the embedded cluster
    };
    let group = group(cluster);
    let admin = admin(&fixture);
    assert_eq!(admin.group_offsets(&group).await.unwrap(), []);

    cluster.broker_down(COORDINATOR).unwrap();
    for _ in 0..3 {
        times_out(&admin, &group).await;
    }
    cluster.broker_up(COORDINATOR).unwrap();
    answered_again(&admin, &group).await;
}

#[actix::test]
async fn a_request_given_up_while_its_coordinator_was_looked_up_does_not_abort_later() {
    let fixture = Fixture::new();
    let Some(cluster) = fixture.cluster.embedded() else {
        return; // holding answers back needs the embedded cluster
    };
    let group = group(cluster);
    let admin = admin(&fixture);
    // A cluster still electing, or a group's first use: the lookup of the
    // coordinator answers after the request was given up. (librdkafka asks
    // again each time a broker connection comes up: every lookup is slow.)
    for broker in 1..=3 {
        cluster
            .delay_responses(
                broker,
                KafkaRequest::FindCoordinator,
                LOOKUPS_DELAYED,
                Duration::from_secs(2),
            )
            .unwrap();
    }
    times_out(&admin, &group).await;
    answered_again(&admin, &group).await;
}

#[actix::test]
async fn a_coordinator_that_moved_answering_not_coordinator_does_not_crash_the_process() {
    let fixture = Fixture::new();
    let Some(cluster) = fixture.cluster.embedded() else {
        return; // refusing requests needs the embedded cluster
    };
    let group = group(cluster);
    let admin = admin(&fixture);
    // The coordinator just moved: the old one answers the offsets request
    // with NOT_COORDINATOR. librdkafka 2.12 then asks the client's own
    // consumer group to look its coordinator up again, through a null
    // pointer on a client without one (SIGSEGV in rd_kafka_cgrp_op).
    cluster
        .refuse_requests(
            COORDINATOR,
            KafkaRequest::OffsetFetch,
            2,
            RDKafkaErrorCode::NotCoordinator,
        )
        .unwrap();
    // Retried within the timeout, as a coordinator moving is.
    assert_eq!(admin.group_offsets(&group).await.unwrap(), []);
    answered_again(&admin, &group).await;
}
