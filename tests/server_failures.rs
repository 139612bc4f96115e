//! Failures stay in their partition: a message that fails for good without a
//! dead-letter topic stops only its partition, whose handling restarts on its
//! own (no rejoin); past its own limit it is held there while the others go
//! on (or, with `partitionPastLimit = "escalate"`, escalates); the dead-letter
//! limit stops a partition that dead-letters too much.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{forwarder, next, produce, Fixture, WAIT};
use ekafka::server::{ConsumerServer, FailureAction, HandlerError, HandlerFailure};
use ekafka::testing::unique_name;
use ekafka::{ConsumedMessage, Error};

/// The partition and offset of every message of the fixture's topic, by value.
async fn placement(fixture: &Fixture, count: usize) -> BTreeMap<String, (i32, i64)> {
    fixture
        .read_back(count)
        .await
        .into_iter()
        .map(|m| {
            let value = String::from_utf8(m.value.expect("a value")).expect("UTF-8");
            (value, (m.partition, m.offset))
        })
        .collect()
}

#[actix::test]
async fn a_poisoned_partition_stops_alone_and_with_escalate_escalates_only_past_its_own_limit() {
    let fixture = Fixture::new();
    let (kafka, config) = common::server_setup(
        &fixture,
        "maxRestarts = 2\nrestartBackoff = \"1s\"\npartitionPastLimit = \"escalate\"",
        "",
    );
    produce(&kafka, "m", 60).await;
    let placed = placement(&fixture, 60).await;
    let (poisoned_partition, poisoned_offset) = placed["m-7"];

    let (handled_tx, mut handled) = tokio::sync::mpsc::unbounded_channel::<ConsumedMessage>();
    let server =
        ConsumerServer::on_each_message(&kafka, &config, move |message: ConsumedMessage| {
            let handled = handled_tx.clone();
            async move {
                if message.value_str() == Some("m-7") {
                    return Err(HandlerError::fatal("cannot handle m-7"));
                }
                let _ = handled.send(message);
                Ok(())
            }
        })
        .await
        .unwrap();
    let (failures_tx, mut failures) = forwarder::<HandlerFailure>();
    server.subscribe_failures(failures_tx).await.unwrap();

    // Every message of the other partitions is handled, and on m-7's partition
    // everything before it; nothing after it.
    let expected: BTreeSet<String> = placed
        .iter()
        .filter(|(_, (p, o))| *p != poisoned_partition || *o < poisoned_offset)
        .map(|(v, _)| v.clone())
        .collect();
    let mut seen = BTreeSet::new();
    while seen.len() < expected.len() {
        let message = next(&mut handled, "the messages of the healthy partitions").await;
        let value = message.value_str().unwrap().to_string();
        assert!(
            expected.contains(&value),
            "{value} handled past the poisoned m-7"
        );
        seen.insert(value);
    }

    // The partition stopped at m-7 and waits for its handling to restart.
    let failure = next(&mut failures, "m-7's failure").await;
    assert_eq!(failure.message.value_str(), Some("m-7"));
    assert_eq!(failure.action, FailureAction::Stopped);
    let status = server.status().await.unwrap();
    assert_eq!(status.stopped.len(), 1, "{status:?}");
    let stopped = &status.stopped[0];
    assert_eq!(
        (stopped.partition.partition, stopped.offset),
        (poisoned_partition, poisoned_offset)
    );
    assert!(stopped.error.contains("cannot handle m-7"), "{stopped:?}");

    // Past its own limit (2 restarts of that partition) it escalates; the
    // server itself was never restarted (no rejoin).
    let ended = tokio::time::timeout(WAIT, server.wait())
        .await
        .expect("the partition escalates");
    match ended {
        Err(Error::GaveUp {
            kind,
            name,
            restarts,
            reason,
        }) => {
            assert_eq!(
                (kind, name.as_str(), restarts),
                ("consumer server", "s1", 2)
            );
            let at = format!("/{poisoned_partition} stopped at offset {poisoned_offset}");
            assert!(
                reason.contains(&at) && reason.contains("cannot handle m-7"),
                "{reason}"
            );
        }
        other => panic!("expected the escalation, got {other:?}"),
    }
    assert_eq!(server.restarts(), 0, "the member never rejoined");
    // m-7 was tried once, then once after each of the 2 partition restarts.
    for attempt in 2..=3 {
        let again = next(&mut failures, &format!("m-7's failure {attempt}")).await;
        assert_eq!(again.message.value_str(), Some("m-7"));
    }
    assert!(handled.try_recv().is_err(), "nothing more was handled");

    // Committed: every healthy partition to its end, the poisoned one up to m-7.
    let committed = common::committed_offsets(
        fixture.cluster.bootstrap_servers().to_string(),
        kafka.config().consumer_groups["cg1"].group_id.clone(),
        fixture.topic.clone(),
    )
    .await;
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for (partition, offset) in placed.values() {
        let end = ends.entry(*partition).or_default();
        *end = (*end).max(offset + 1);
    }
    for (partition, end) in ends {
        let expected = if partition == poisoned_partition {
            poisoned_offset
        } else {
            end
        };
        assert_eq!(
            committed[partition as usize],
            Some(expected),
            "partition {partition}: {committed:?}"
        );
    }
}

#[actix::test]
async fn a_poisoned_partition_past_its_limit_is_held_while_every_other_partition_goes_on() {
    let fixture = Fixture::new();
    // The default, partitionPastLimit = "hold": 2 restarts 100ms apart, then
    // a try every 300ms.
    let (kafka, config) = common::server_setup(
        &fixture,
        "maxRestarts = 2\nrestartBackoff = \"100ms\"\nrestartBackoffMax = \"300ms\"",
        "",
    );
    produce(&kafka, "m", 60).await;
    let placed = placement(&fixture, 60).await;
    let (poisoned_partition, poisoned_offset) = placed["m-7"];

    let healed = std::rc::Rc::new(std::cell::Cell::new(false));
    let (handled_tx, mut handled) = tokio::sync::mpsc::unbounded_channel::<String>();
    let server = ConsumerServer::on_each_message(&kafka, &config, {
        let healed = std::rc::Rc::clone(&healed);
        move |message: ConsumedMessage| {
            let (handled, healed) = (handled_tx.clone(), healed.get());
            async move {
                let value = message.value_str().unwrap_or_default().to_string();
                if value == "m-7" && !healed {
                    return Err(HandlerError::fatal("cannot handle m-7"));
                }
                let _ = handled.send(value);
                Ok(())
            }
        }
    })
    .await
    .unwrap();
    let (failures_tx, mut failures) = forwarder::<HandlerFailure>();
    server.subscribe_failures(failures_tx).await.unwrap();

    // m-7 fails once, after each of the 2 restarts, and then again past the
    // limit: the partition is held there, and the server goes on.
    for attempt in 1..=4 {
        let failure = next(&mut failures, &format!("m-7's failure {attempt}")).await;
        assert_eq!(failure.message.value_str(), Some("m-7"));
        assert_eq!(failure.action, FailureAction::Stopped);
    }
    let status = server.status().await.unwrap();
    assert_eq!(status.stopped.len(), 1, "{status:?}");
    let stopped = &status.stopped[0];
    assert_eq!(
        (stopped.partition.partition, stopped.offset),
        (poisoned_partition, poisoned_offset)
    );
    assert!(stopped.held && !stopped.gave_up, "{stopped:?}");
    assert_eq!(kafka.escalation(), None, "nothing escalated");

    // Messages written after the hold are all handled on the other
    // partitions; on the held one, nothing past m-7.
    produce(&kafka, "n", 60).await;
    let placed = placement(&fixture, 120).await;
    let mut waiting: BTreeSet<String> = placed
        .iter()
        .filter(|(v, (p, o))| {
            if *p == poisoned_partition {
                *o < poisoned_offset
            } else {
                v.starts_with("n-")
            }
        })
        .map(|(v, _)| v.clone())
        .collect();
    while !waiting.is_empty() {
        let value = next(&mut handled, "the messages of the healthy partitions").await;
        let (partition, offset) = placed[&value];
        assert!(
            partition != poisoned_partition || offset < poisoned_offset,
            "{value} handled past the held m-7"
        );
        waiting.remove(&value);
    }
    // Still held, and tried again meanwhile.
    let again = next(&mut failures, "m-7 tried again while held").await;
    assert_eq!(again.message.value_str(), Some("m-7"));
    assert!(server.status().await.unwrap().stopped[0].held);

    // Once m-7 goes through, its partition catches up and nothing is stopped.
    healed.set(true);
    let rest_of_partition: BTreeSet<String> = placed
        .iter()
        .filter(|(_, (p, o))| *p == poisoned_partition && *o >= poisoned_offset)
        .map(|(v, _)| v.clone())
        .collect();
    let mut waiting = rest_of_partition.clone();
    while !waiting.is_empty() {
        let value = next(&mut handled, "the held partition catching up").await;
        waiting.remove(&value);
    }
    assert_eq!(server.status().await.unwrap().stopped, []);
    assert_eq!(server.restarts(), 0, "the member never rejoined");
    assert_eq!(kafka.escalation(), None);
    server.close().await.unwrap();
}

#[actix::test]
async fn past_the_dead_letter_limit_the_partition_stops_and_with_escalate_escalates() {
    let fixture = Fixture::new();
    let dlq = unique_name("dlq");
    fixture.cluster.create_topic(&dlq).unwrap();
    // Every message fails: the first 3 of a partition are dead-lettered, the
    // 4th trips the limit.
    let keys = format!(
        "deadLetterProducer = \"p1\"\ndeadLetterTopic = {dlq:?}\n\
         deadLetterLimit = 3\ndeadLetterWindow = \"1h\"\npartitionPastLimit = \"escalate\""
    );
    let (kafka, config) = common::server_setup(&fixture, &keys, "");
    produce(&kafka, "m", 30).await;

    let server = ConsumerServer::on_each_message(&kafka, &config, |_: ConsumedMessage| async {
        Err(HandlerError::fatal("a bad deploy"))
    })
    .await
    .unwrap();
    let (failures_tx, mut failures) = forwarder::<HandlerFailure>();
    server.subscribe_failures(failures_tx).await.unwrap();

    let ended = tokio::time::timeout(WAIT, server.wait())
        .await
        .expect("the dead-letter limit escalates");
    let reason = match ended {
        Err(Error::GaveUp { kind, reason, .. }) => {
            assert_eq!(kind, "consumer server");
            reason
        }
        other => panic!("expected the escalation, got {other:?}"),
    };
    assert!(reason.contains("deadLetterLimit"), "{reason}");

    // Before it, exactly 3 of the tripping partition were dead-lettered, and
    // its 4th message stopped it.
    let mut by_partition: BTreeMap<i32, Vec<FailureAction>> = BTreeMap::new();
    while let Ok(failure) = failures.try_recv() {
        by_partition
            .entry(failure.message.partition())
            .or_default()
            .push(failure.action);
    }
    let tripped: Vec<_> = by_partition
        .values()
        .filter(|actions| actions.contains(&FailureAction::Stopped))
        .collect();
    assert!(!tripped.is_empty(), "{by_partition:?}");
    for actions in tripped {
        let dead_lettered = actions
            .iter()
            .filter(|a| **a == FailureAction::DeadLettered)
            .count();
        assert_eq!(dead_lettered, 3, "{actions:?}");
        assert_eq!(actions.last(), Some(&FailureAction::Stopped));
    }
}
