//! Commits do not hold consumption up: while the coordinator is slow to
//! answer, every partition keeps being read and dispatched, a commit not
//! confirmed within the group's `timeout` is reported naming what it left
//! uncommitted, and everything is committed once the coordinator answers again.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{forwarder, group_config, next, produce, receive, Fixture};
use ekafka::consumer::{GroupEvent, MessageBatch};
use ekafka::testing::{unique_name, KafkaRequest};
use ekafka::Ekafka;

/// Broker 3 coordinates the group; brokers 1 and 2 lead the partitions.
const COORDINATOR: i32 = 3;

fn committed(status: &ekafka::consumer::GroupStatus) -> BTreeMap<i32, i64> {
    status
        .committed
        .iter()
        .map(|c| (c.partition.partition, c.offset))
        .collect()
}

#[actix::test]
async fn a_commit_the_coordinator_does_not_answer_does_not_stop_dispatch() {
    let fixture = Fixture::new();
    let Some(cluster) = fixture.cluster.embedded() else {
        return; // placing coordinators and delaying responses needs the embedded cluster
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
    // Commits are bounded by 1s; the coordinator will take 4s to answer
    // (under the 6s session, so the member stays in its group).
    let kafka = Ekafka::from_toml_str(
        &group_config(&fixture, &group_id, "timeout = \"1s\""),
        "kafka",
    )
    .unwrap()
    .build()
    .unwrap();
    let group = kafka.consumer_group("cg1").unwrap();
    let (events, mut group_events) = forwarder::<GroupEvent>();
    group.subscribe_events(events).await.unwrap();
    let (subscriber, mut batches) = forwarder::<MessageBatch>();
    group.subscribe(subscriber).await.unwrap();

    produce(&kafka, "before", 30).await;
    let first = receive(&mut batches, 30).await;
    group.commit_acknowledged().await.unwrap();
    let baseline = committed(&group.status().await.unwrap());
    let first_ends: BTreeMap<i32, i64> = first.iter().map(|(p, m)| (*p, m.len() as i64)).collect();
    assert_eq!(baseline, first_ends, "the first messages are committed");

    cluster
        .delay_responses(
            COORDINATOR,
            KafkaRequest::OffsetCommit,
            2,
            Duration::from_secs(4),
        )
        .unwrap();
    produce(&kafka, "during", 90).await;
    let second = receive(&mut batches, 90).await;
    assert_eq!(second.values().map(Vec::len).sum::<usize>(), 90);
    // Every message came while the commits of the first of them were still
    // unanswered: dispatch did not wait for them.
    assert_eq!(
        committed(&group.status().await.unwrap()),
        baseline,
        "no commit was confirmed while the messages were dispatched"
    );

    // The unanswered commit is reported, naming what it left uncommitted.
    loop {
        match next(&mut group_events, "the commit timeout event").await {
            GroupEvent::Error(e) if e.message.contains("not confirmed") => {
                assert!(e.message.contains("left uncommitted"), "{}", e.message);
                break;
            }
            _ => {}
        }
    }

    // Once the coordinator answers again, everything acknowledged is committed.
    let ends: BTreeMap<i32, i64> = first_ends
        .iter()
        .map(|(p, n)| (*p, n + second.get(p).map_or(0, |m| m.len() as i64)))
        .collect();
    let started = Instant::now();
    loop {
        // An explicit commit is answered once confirmed (or given up on); a
        // failed one is tried again on the next turn, within the deadline.
        if let Err(error) = group.commit_acknowledged().await {
            eprintln!("commit not confirmed yet: {error}");
        }
        if committed(&group.status().await.unwrap()) == ends {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "everything committed once the coordinator answered"
        );
    }
    group.close().await.unwrap();
}

#[actix::test]
async fn a_refused_commit_is_tried_again_after_a_growing_pause_and_reported_once_a_try() {
    let fixture = Fixture::new();
    let Some(cluster) = fixture.cluster.embedded() else {
        return; // refusing commits needs the embedded cluster
    };
    let group_id = unique_name("group");
    cluster
        .set_group_coordinator(&group_id, COORDINATOR)
        .unwrap();
    // The default commitInterval (0): a commit on every pass of the engine.
    let kafka = Ekafka::from_toml_str(&group_config(&fixture, &group_id, ""), "kafka")
        .unwrap()
        .build()
        .unwrap();
    let group = kafka.consumer_group("cg1").unwrap();
    let (events, mut group_events) = forwarder::<GroupEvent>();
    group.subscribe_events(events).await.unwrap();
    let (subscriber, mut batches) = forwarder::<MessageBatch>();
    group.subscribe(subscriber).await.unwrap();
    produce(&kafka, "before", 30).await;
    receive(&mut batches, 30).await;
    group.commit_acknowledged().await.unwrap();

    const REFUSALS: usize = 5;
    cluster
        .refuse_requests(
            COORDINATOR,
            KafkaRequest::OffsetCommit,
            REFUSALS,
            rdkafka::types::RDKafkaErrorCode::InvalidCommitOffsetSize,
        )
        .unwrap();
    produce(&kafka, "during", 30).await;
    receive(&mut batches, 30).await;
    let mut refused_at = Vec::new();
    while refused_at.len() < REFUSALS {
        if let GroupEvent::Error(e) = next(&mut group_events, "the refused commits").await {
            assert!(e.message.contains("left uncommitted"), "{}", e.message);
            refused_at.push(Instant::now());
        }
    }
    // Tried again after 100 ms, then a pause twice as long each time: not on
    // every pass (which took well under a millisecond apart).
    for (k, pair) in refused_at.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let pause = Duration::from_millis(100 << k);
        assert!(
            gap >= pause.mul_f64(0.9),
            "refusal {} came {gap:?} after the one before, not after a {pause:?} pause",
            k + 2
        );
    }
    // Then the commit goes through, and no refusal is reported again.
    group.commit_acknowledged().await.unwrap();
    group.close().await.unwrap();
    while let Ok(event) = group_events.try_recv() {
        assert!(!matches!(event, GroupEvent::Error(_)), "{event:?}");
    }
}
