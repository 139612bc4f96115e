//! A close reports what the member still leaves uncommitted when it closes,
//! and nothing else: not a commit that failed for a partition since given to
//! another member, which reads it again from the committed offset and
//! commits it itself.

mod common;

use std::collections::BTreeMap;

use common::{forwarder, group_config, next, produce, receive, Fixture};
use ekafka::consumer::{GroupEvent, MessageBatch};
use ekafka::testing::unique_name;
use ekafka::Ekafka;
use tokio::sync::mpsc::UnboundedReceiver;

const MESSAGES: usize = 30;

/// The partitions an `Assigned` event gives.
fn assigned(event: &GroupEvent) -> Option<Vec<i32>> {
    match event {
        GroupEvent::Assigned(a) => Some(a.partitions.iter().map(|(p, _)| p.partition).collect()),
        _ => None,
    }
}

/// Group `cg1` of `kafka`, with a subscriber for its events and one for its
/// batches.
async fn join(
    kafka: &Ekafka,
) -> (
    ekafka::ConsumerGroup,
    UnboundedReceiver<GroupEvent>,
    UnboundedReceiver<MessageBatch>,
) {
    let group = kafka.consumer_group("cg1").unwrap();
    let (events, events_rx) = forwarder::<GroupEvent>();
    group.subscribe_events(events).await.unwrap();
    let (subscriber, batches_rx) = forwarder::<MessageBatch>();
    group.subscribe(subscriber).await.unwrap();
    (group, events_rx, batches_rx)
}

#[actix::test]
async fn a_close_does_not_report_a_failed_commit_of_a_partition_another_member_committed() {
    let fixture = Fixture::new();
    if fixture.cluster.embedded().is_none() {
        // The embedded cluster refuses the commits of a member whose group is
        // rejoining, which is what makes the revoke's commit fail here.
        return;
    }
    let group_id = unique_name("group");
    // Nothing is committed but by a revoke, a close or an explicit commit.
    let text = group_config(&fixture, &group_id, "commitInterval = \"1h\"");
    let member = || {
        Ekafka::from_toml_str(&text, "kafka")
            .unwrap()
            .build()
            .unwrap()
    };
    let (kafka_a, kafka_b) = (member(), member());
    let (a, mut a_events, mut a_batches) = join(&kafka_a).await;
    produce(&kafka_a, "m", MESSAGES).await;
    let per_partition: BTreeMap<i32, usize> = receive(&mut a_batches, MESSAGES)
        .await
        .into_iter()
        .map(|(p, messages)| (p, messages.len()))
        .collect();

    // B joins: A's revoke commits what it handled, and the commit is refused.
    let (b, mut b_events, mut b_batches) = join(&kafka_b).await;
    let refused = loop {
        match next(&mut a_events, "A's revoke commit refused").await {
            GroupEvent::Error(error) => break error,
            _ => continue,
        }
    };
    let b_partitions = loop {
        let event = next(&mut b_events, "B's assignment").await;
        if let Some(partitions) = assigned(&event).filter(|p| !p.is_empty()) {
            break partitions;
        }
    };
    // B reads its partitions again from the (uncommitted) start and commits them.
    let b_count: usize = b_partitions.iter().map(|p| per_partition[p]).sum();
    receive(&mut b_batches, b_count).await;
    b.commit_acknowledged().await.unwrap();
    // A reads its own again and commits them.
    receive(&mut a_batches, MESSAGES - b_count).await;
    a.commit_acknowledged().await.unwrap();

    let closed = a.close().await;
    assert!(
        closed.is_ok(),
        "A left nothing uncommitted, yet its close says {closed:?}; its earlier failure ({refused:?}) \
         was of partitions {b_partitions:?}, which B committed"
    );
    b.close().await.unwrap();
}

#[actix::test]
async fn a_close_does_not_report_the_revoke_commit_of_a_member_expelled_while_it_drained() {
    if common::consumer_protocol() {
        // KIP-848 fences a member slow to give partitions up only after its
        // rebalance timeout, which that protocol does not let a test shorten.
        return;
    }
    let fixture = Fixture::new();
    let group_id = unique_name("group");
    // A's revoke waits (up to a minute) for a batch it holds back, longer than
    // the group waits for it to rejoin: the group goes on without it.
    let text = group_config(
        &fixture,
        &group_id,
        "commitInterval = \"1h\"\ndrainTimeout = \"60s\"\nrebalanceTimeout = \"8s\"",
    );
    let member = || {
        Ekafka::from_toml_str(&text, "kafka")
            .unwrap()
            .build()
            .unwrap()
    };
    let (kafka_a, kafka_b) = (member(), member());
    let (a, mut a_events, mut a_batches) = join(&kafka_a).await;
    produce(&kafka_a, "m", MESSAGES).await;
    let mut received = 0;
    let held = loop {
        let batch = next(&mut a_batches, "A's messages").await;
        received += batch.messages().len();
        if received >= MESSAGES {
            break batch;
        }
        batch.ack();
    };

    // B joins; A's revoke waits for the held batch until the group drops A
    // and gives B every partition.
    let (b, mut b_events, mut b_batches) = join(&kafka_b).await;
    loop {
        let event = next(&mut b_events, "B given every partition").await;
        if assigned(&event).is_some_and(|p| p.len() == 3) {
            break;
        }
    }
    // B handles everything again (nothing was committed) and commits it.
    receive(&mut b_batches, MESSAGES).await;
    b.commit_acknowledged().await.unwrap();

    // A's revoke ends; its commit, from a member the group dropped, is refused.
    held.ack();
    let refused = loop {
        match next(&mut a_events, "A's revoke commit refused").await {
            GroupEvent::Error(error) if error.message.starts_with("commit failed") => break error,
            _ => continue,
        }
    };
    let closed = a.close().await;
    assert!(
        closed.is_ok(),
        "A handed nothing out uncommitted since, yet its close says {closed:?}; its revoke's \
         failure ({}) was of partitions B committed",
        refused.message
    );
    b.close().await.unwrap();
}
