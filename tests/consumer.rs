//! Single consumers (`[kafka.consumers.NAME]`): one partition with seeks and lag,
//! or a group member with commits, like the Go `Consumer`.

mod common;

use common::{Fixture, WAIT};
use ekafka::testing::unique_name;
use ekafka::{Ekafka, Error, Message};

fn kafka(fixture: &Fixture, consumer_keys: &str) -> Ekafka {
    // Group keys only for a group member: a partition reader refuses them.
    let group_keys = if consumer_keys.contains("groupID") {
        common::group_protocol_keys()
    } else {
        ""
    };
    let text = format!(
        "{}\n[kafka.consumers.c1]\ntopic = {:?}\nmaxWait = \"100ms\"\n{group_keys}{consumer_keys}\n",
        fixture.config(""),
        fixture.topic,
    );
    Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap()
}

async fn fetch(consumer: &ekafka::Consumer) -> ekafka::ConsumedMessage {
    tokio::time::timeout(WAIT, consumer.fetch())
        .await
        .expect("a message in time")
        .expect("fetched")
}

#[actix::test]
async fn one_partition_fetch_seek_and_lag() {
    let fixture = Fixture::new();
    let kafka = kafka(&fixture, "partition = 1");
    // Recent times: a broker deletes messages older than its retention (7
    // days by default) at its next retention check, which once landed in
    // this test on Apache Kafka (with 2023's times) and left nothing to read.
    let base = common::now_millis() - 120_000;
    let messages = (0..10).map(|i| {
        Message::new(format!("v{i}"))
            .with_partition(1)
            .with_timestamp(base + i * 1000)
    });
    common::write_all(&kafka, messages).await;

    let consumer = kafka.consumer("c1").unwrap();
    for i in 0..10 {
        let m = fetch(&consumer).await;
        assert_eq!(
            (m.partition(), m.offset(), m.value_str()),
            (1, i, Some(format!("v{i}").as_str()))
        );
    }
    assert_eq!(consumer.offset(), Some(10));
    assert_eq!(consumer.lag().await.unwrap(), 0);

    consumer.seek(4).await.unwrap();
    assert_eq!(consumer.lag().await.unwrap(), 6);
    assert_eq!(fetch(&consumer).await.offset(), 4);

    if fixture.cluster.embedded().is_none() {
        // Kafka finds the first message at or after the time. (librdkafka's
        // embedded cluster cannot search inside a partition by time.)
        let at = consumer.seek_to_time(base + 4_500).await.unwrap();
        assert_eq!(at, 5);
        assert_eq!(fetch(&consumer).await.value_str(), Some("v5"));
    }
    // No message at or after that time: reading continues at the end.
    let at = consumer.seek_to_time(base + 60_000).await.unwrap();
    assert_eq!(at, 10);
    assert_eq!(consumer.offset(), Some(10));
    let later = Message::new("v10")
        .with_partition(1)
        .with_timestamp(base + 61_000);
    common::write_all(&kafka, [later]).await;
    let m = fetch(&consumer).await;
    assert_eq!((m.offset(), m.value_str()), (10, Some("v10")));

    match consumer.commit(&[m]).await {
        Err(Error::Unsupported { reason, .. }) => assert!(reason.contains("groupID"), "{reason}"),
        other => panic!("a partition consumer has no group to commit to: {other:?}"),
    }
    consumer.close().await.unwrap();
    assert!(matches!(consumer.fetch().await, Err(Error::Closed { .. })));
}

/// The Go suite's first scenario: produce a random message with p1, read it back
/// with c1 (a group member), then a new member continues after the commit.
#[actix::test]
async fn lag_fails_when_the_cluster_cannot_be_reached() {
    // Nothing listens on port 1: no assignment, no metadata, no offsets.
    let text = format!(
        "[kafka]\nbrokers = [\"127.0.0.1:1\"]\n[kafka.client]\ntimeout = \"1s\"\n\
         [kafka.consumers.c1]\ntopic = \"t\"\ngroupID = {:?}\n",
        unique_name("group")
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    let consumer = kafka.consumer("c1").unwrap();
    match consumer.lag().await {
        Err(error @ Error::Request { .. }) => {
            assert!(error.to_string().contains("failed"), "{error}");
        }
        other => panic!("an unreachable cluster is an error, not a lag: {other:?}"),
    }
    consumer.close().await.unwrap();
}

#[actix::test]
async fn group_member_reads_commits_and_resumes() {
    let fixture = Fixture::new();
    let kafka = kafka(&fixture, &format!("groupID = {:?}", unique_name("group")));
    let random = unique_name("random");
    common::produce(&kafka, &random, 1).await;

    let consumer = kafka.consumer("c1").unwrap();
    let m = tokio::time::timeout(WAIT, consumer.read())
        .await
        .expect("in time")
        .unwrap();
    assert_eq!(m.value_str(), Some(format!("{random}-0").as_str()));
    assert_eq!(consumer.lag().await.unwrap(), 0);
    consumer.close().await.unwrap();

    common::produce(&kafka, "after", 1).await;
    let again = kafka.consumer("c1").unwrap();
    assert_ne!(again, consumer);
    let next = fetch(&again).await;
    assert_eq!(
        next.value_str(),
        Some("after-0"),
        "resumes after the committed message"
    );
    let committed = again.commit(std::slice::from_ref(&next)).await.unwrap();
    assert_eq!(committed[0].offset, next.offset() + 1);
    match again.seek(0).await {
        Err(Error::Unsupported { .. }) => {}
        other => panic!("a group member's position is the group's: {other:?}"),
    }
    again.close().await.unwrap();
}

#[actix::test]
async fn a_fatally_failed_client_is_replaced_and_reading_continues_where_it_stopped() {
    let fixture = Fixture::new();
    let kafka = kafka(
        &fixture,
        "partition = 2\nmaxRestarts = 1\nrestartBackoff = \"10ms\"",
    );
    let messages = (0..6).map(|i| Message::new(format!("v{i}")).with_partition(2));
    common::write_all(&kafka, messages).await;

    let consumer = kafka.consumer("c1").unwrap();
    for i in 0..3 {
        assert_eq!(fetch(&consumer).await.offset(), i);
    }
    consumer
        .simulate_fatal_error("test-induced failure")
        .await
        .unwrap();
    for i in 3..6 {
        assert_eq!(
            fetch(&consumer).await.offset(),
            i,
            "no message lost or repeated"
        );
    }

    // One restart allowed (maxRestarts = 1): the second failure escalates.
    consumer
        .simulate_fatal_error("second failure")
        .await
        .unwrap();
    match tokio::time::timeout(WAIT, consumer.fetch())
        .await
        .expect("an answer in time")
    {
        Err(Error::GaveUp {
            kind, name, reason, ..
        }) => {
            assert_eq!((kind, name.as_str()), ("consumer", "c1"));
            assert!(reason.contains("second failure"), "{reason}");
        }
        other => panic!("expected the restart limit, got {other:?}"),
    }
    assert_eq!(kafka.escalation().map(|e| e.name), Some("c1".to_string()));
}

/// The group's committed offsets on the fixture's topic, per partition,
/// read from outside the group.
async fn committed(fixture: &Fixture, group: &str) -> std::collections::BTreeMap<i32, i64> {
    common::committed_offsets(
        fixture.cluster.bootstrap_servers().to_string(),
        group.to_string(),
        fixture.topic.clone(),
    )
    .await
    .into_iter()
    .enumerate()
    .filter_map(|(partition, offset)| Some((partition as i32, offset?)))
    .collect()
}

#[actix::test]
async fn with_a_commit_interval_commits_land_within_it_without_a_call_per_message() {
    let fixture = Fixture::new();
    let group = unique_name("group");
    let kafka = kafka(
        &fixture,
        &format!("groupID = {group:?}\ncommitInterval = \"200ms\""),
    );
    common::produce(&kafka, "m", 30).await;
    let consumer = kafka.consumer("c1").unwrap();
    let mut expected = std::collections::BTreeMap::new();
    for _ in 0..30 {
        let message = fetch(&consumer).await;
        // Stored, not committed: the call returns what will be committed.
        let stored = consumer
            .commit(std::slice::from_ref(&message))
            .await
            .unwrap();
        assert_eq!(stored[0].offset, message.offset() + 1);
        expected.insert(message.partition(), message.offset() + 1);
    }
    // Within the interval (and a round trip) the group has them all.
    common::eventually_async("the periodic commit", || {
        let (fixture, group, expected) = (&fixture, &group, &expected);
        async move { (committed(fixture, group).await == *expected).then_some(()) }
    })
    .await;
    consumer.close().await.unwrap();
}

#[actix::test]
async fn what_was_stored_is_committed_at_close_and_a_failed_final_commit_is_reported() {
    let fixture = Fixture::new();
    let group = unique_name("group");
    // An interval longer than the test: only the close commits.
    let kafka = kafka(
        &fixture,
        &format!("groupID = {group:?}\ncommitInterval = \"1h\""),
    );
    common::produce(&kafka, "m", 3).await;
    let consumer = kafka.consumer("c1").unwrap();
    let message = fetch(&consumer).await;
    consumer
        .commit(std::slice::from_ref(&message))
        .await
        .unwrap();
    consumer.close().await.unwrap();
    assert_eq!(
        committed(&fixture, &group).await.get(&message.partition()),
        Some(&(message.offset() + 1)),
        "the close committed what was stored"
    );

    // The coordinator refuses commits: the close says what was not committed.
    let Some(cluster) = fixture.cluster.embedded() else {
        return; // refusing requests needs the embedded cluster
    };
    let consumer = kafka.consumer("c1").unwrap();
    let next = fetch(&consumer).await;
    consumer.commit(std::slice::from_ref(&next)).await.unwrap();
    for broker in 1..=3 {
        cluster
            .refuse_requests(
                broker,
                ekafka::testing::KafkaRequest::OffsetCommit,
                100,
                ekafka::KafkaCode::InvalidCommitOffsetSize,
            )
            .unwrap();
    }
    match consumer.close().await {
        Err(Error::Commit { offsets, .. }) => {
            assert!(
                offsets
                    .iter()
                    .any(|o| o.partition.partition == next.partition()
                        && o.offset == next.offset() + 1),
                "{offsets:?}"
            );
        }
        other => panic!("a close whose commit failed must say so, got {other:?}"),
    }
}
