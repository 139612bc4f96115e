//! A member that closes while its group's coordinator is away waits for the
//! coordinator before leaving, so its leave reaches the group: the member left
//! behind starts taking its partitions within seconds, not at the end of a
//! 30 s session (on the embedded cluster, which can take the coordinator down;
//! `tests/rolling_restart.rs` runs the same on Apache Kafka). The embedded
//! cluster then holds every rebalance for the session less a second, so what
//! is measured is when the rebalance begins.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{forwarder, group_config, next, Fixture};
use ekafka::consumer::GroupEvent;
use ekafka::testing::{unique_name, KafkaRequest};
use ekafka::Ekafka;
use rdkafka::types::RDKafkaErrorCode;

/// Broker 3 coordinates the group; brokers 1 and 2 lead the partitions.
const COORDINATOR: i32 = 3;
/// Where the group moves to.
const OTHER_COORDINATOR: i32 = 2;
/// The session: what a leave that never arrived would cost.
const SESSION: Duration = Duration::from_secs(30);
/// How long the coordinator stays away after the close began.
const AWAY: Duration = Duration::from_secs(2);

/// The partitions a member holds after `event`, given what it held before.
fn apply(held: &mut BTreeSet<i32>, event: &GroupEvent) {
    match event {
        GroupEvent::Assigned(assigned) => {
            held.extend(assigned.partitions.iter().map(|(p, _)| p.partition));
        }
        GroupEvent::Revoked(revoked) => {
            for p in &revoked.partitions {
                held.remove(&p.partition);
            }
        }
        _ => {}
    }
}

/// Two members of one group, each holding partitions.
struct Members {
    group_id: String,
    /// The one that will close.
    leaving: ekafka::ConsumerGroup,
    /// The one that stays, and its events.
    _staying: ekafka::ConsumerGroup,
    staying_events: tokio::sync::mpsc::UnboundedReceiver<GroupEvent>,
}

/// Two members of a fresh group on `fixture`'s topic, coordinated by broker
/// [`COORDINATOR`] with a [`SESSION`]-long session, once each holds
/// partitions.
async fn two_members_sharing(
    fixture: &Fixture,
    cluster: &ekafka::testing::EmbeddedCluster,
) -> Members {
    let group_id = unique_name("group");
    cluster
        .set_group_coordinator(&group_id, COORDINATOR)
        .unwrap();
    for partition in 0..3 {
        cluster
            .set_partition_leader(&fixture.topic, partition, 1 + partition % 2)
            .unwrap();
    }
    let text = group_config(fixture, &group_id, "").replace(
        "sessionTimeout = \"6s\"",
        &format!("sessionTimeout = \"{}s\"", SESSION.as_secs()),
    );
    assert!(text.contains("sessionTimeout = \"30s\""), "{text}");
    let member = || {
        Ekafka::from_toml_str(&text, "kafka")
            .unwrap()
            .build()
            .unwrap()
            .consumer_group("cg1")
            .unwrap()
    };
    let (leaving, staying) = (member(), member());
    let (events, mut leaving_events) = forwarder::<GroupEvent>();
    leaving.subscribe_events(events).await.unwrap();
    let (events, mut staying_events) = forwarder::<GroupEvent>();
    staying.subscribe_events(events).await.unwrap();
    let (mut leaving_holds, mut staying_holds) = (BTreeSet::new(), BTreeSet::new());
    while leaving_holds.is_empty() || staying_holds.is_empty() {
        tokio::select! {
            event = leaving_events.recv() => apply(&mut leaving_holds, &event.expect("events")),
            event = staying_events.recv() => apply(&mut staying_holds, &event.expect("events")),
            () = tokio::time::sleep(common::WAIT) => panic!("the two members never shared the partitions"),
        }
    }
    Members {
        group_id,
        leaving,
        _staying: staying,
        staying_events,
    }
}

/// Waits until the staying member's partitions are revoked (the group
/// rebalancing after the leave), and fails if that took half the session.
async fn until_the_group_rebalances(
    staying_events: &mut tokio::sync::mpsc::UnboundedReceiver<GroupEvent>,
    closing_started: Instant,
) -> Duration {
    // The group rebalances (the staying member gives its partitions back to
    // be assigned anew) as soon as the leave arrives; without it, only when
    // the session of the member that left ends.
    loop {
        let event = next(staying_events, "the group rebalancing after the close").await;
        if matches!(event, GroupEvent::Revoked(_)) {
            break;
        }
    }
    let took = closing_started.elapsed();
    assert!(
        took < SESSION / 2,
        "the group rebalanced {took:?} after the close began: the leave never reached it, \
         and it waited for the {SESSION:?} session"
    );
    println!("the group rebalanced {took:?} after the close began");
    took
}

#[actix::test]
async fn a_member_closing_while_its_coordinator_is_down_still_leaves_the_group() {
    let fixture = Fixture::new();
    let Some(cluster) = fixture.cluster.embedded() else {
        return; // taking the coordinator down needs the embedded cluster
    };
    let mut members = two_members_sharing(&fixture, cluster).await;

    cluster.broker_down(COORDINATOR).unwrap();
    let closing_started = Instant::now();
    let leaving = members.leaving.clone();
    let closing = actix::spawn(async move { leaving.close().await });
    // The scenario's schedule: the coordinator comes back while the close waits.
    tokio::time::sleep(AWAY).await;
    cluster.broker_up(COORDINATOR).unwrap();
    until_the_group_rebalances(&mut members.staying_events, closing_started).await;
    closing
        .await
        .unwrap()
        .expect("the close ends cleanly (nothing was consumed)");
}

#[actix::test]
async fn a_member_closing_just_after_its_group_moved_to_another_coordinator_still_leaves_it() {
    let fixture = Fixture::new();
    let Some(cluster) = fixture.cluster.embedded() else {
        return; // moving the coordinator needs the embedded cluster
    };
    let mut members = two_members_sharing(&fixture, cluster).await;

    // The group moves (as when its coordinator's broker dies and another takes
    // the group over) and the member closes before it noticed. Until librdkafka
    // has looked the coordinator up again (half a second here, a round trip to
    // a cluster that is itself electing), the old coordinator answers its asks
    // "not the coordinator" (as Apache Kafka does; the embedded cluster answers
    // offset fetches anywhere unless told) and refuses a leave sent there.
    cluster
        .set_group_coordinator(&members.group_id, OTHER_COORDINATOR)
        .unwrap();
    cluster
        .refuse_requests(
            COORDINATOR,
            KafkaRequest::OffsetFetch,
            1_000,
            RDKafkaErrorCode::NotCoordinator,
        )
        .unwrap();
    for broker in 1..=3 {
        cluster
            .delay_responses(
                broker,
                KafkaRequest::FindCoordinator,
                1,
                Duration::from_millis(500),
            )
            .unwrap();
    }
    let closing_started = Instant::now();
    members
        .leaving
        .close()
        .await
        .expect("the close ends cleanly (nothing was consumed)");
    until_the_group_rebalances(&mut members.staying_events, closing_started).await;
}
