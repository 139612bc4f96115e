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
use ekafka::testing::unique_name;
use ekafka::Ekafka;

/// Broker 3 coordinates the group; brokers 1 and 2 lead the partitions.
const COORDINATOR: i32 = 3;
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

#[actix::test]
async fn a_member_closing_while_its_coordinator_is_down_still_leaves_the_group() {
    let fixture = Fixture::new();
    let Some(cluster) = fixture.cluster.embedded() else {
        return; // taking the coordinator down needs the embedded cluster
    };
    let group_id = unique_name("group");
    cluster
        .set_group_coordinator(&group_id, COORDINATOR)
        .unwrap();
    for partition in 0..3 {
        cluster
            .set_partition_leader(&fixture.topic, partition, 1 + partition % 2)
            .unwrap();
    }
    let text = group_config(&fixture, &group_id, "").replace(
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

    cluster.broker_down(COORDINATOR).unwrap();
    let closing_started = Instant::now();
    let closing = actix::spawn(async move { leaving.close().await });
    // The scenario's schedule: the coordinator comes back while the close waits.
    tokio::time::sleep(AWAY).await;
    cluster.broker_up(COORDINATOR).unwrap();
    // The group rebalances (the staying member gives its partitions back to
    // be assigned anew) as soon as the leave arrives; without it, only when
    // the session of the member that left ends.
    loop {
        let event = next(&mut staying_events, "the group rebalancing after the close").await;
        if matches!(event, GroupEvent::Revoked(_)) {
            break;
        }
    }
    let took = closing_started.elapsed();
    closing
        .await
        .unwrap()
        .expect("the close ends cleanly (nothing was consumed)");
    assert!(
        took < SESSION / 2,
        "the group rebalanced {took:?} after the close began: the leave never reached it, \
         and it waited for the {SESSION:?} session"
    );
    println!("the group rebalanced {took:?} after the close began");
}
