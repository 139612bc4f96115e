//! Consumer groups on the embedded cluster: delivery to subscriber actors, order,
//! commits, restarts from committed offsets, rebalances, bounded buffering.

mod common;

use std::collections::{BTreeMap, HashSet};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, Context, Handler};
use common::{forwarder, group_config, next, produce, receive, uncommitted_offsets, Fixture};
use ekafka::consumer::PartitionOffset;
use ekafka::consumer::{GroupEvent, MessageBatch};
use ekafka::interceptor::{ClientInfo, Interceptor};
use ekafka::testing::unique_name;
use ekafka::Ekafka;

#[actix::test]
async fn every_message_arrives_once_in_order_per_partition_and_is_committed() {
    let fixture = Fixture::new();
    let kafka = Ekafka::from_toml_str(&group_config(&fixture, &unique_name("group"), ""), "kafka")
        .unwrap()
        .build()
        .unwrap();
    produce(&kafka, "m", 300).await;

    let group = kafka.consumer_group("cg1").unwrap();
    let (subscriber, mut batches) = forwarder::<MessageBatch>();
    group.subscribe(subscriber).await.unwrap();
    let by_partition = receive(&mut batches, 300).await;

    assert_eq!(by_partition.len(), 3, "all three partitions delivered");
    let mut seen = HashSet::new();
    for (partition, messages) in &by_partition {
        let offsets: Vec<i64> = messages.iter().map(|(o, _)| *o).collect();
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets, expected,
            "partition {partition}: every offset once, in order"
        );
        for (_, value) in messages {
            assert!(seen.insert(value.clone()), "{value} delivered twice");
        }
    }
    assert_eq!(seen.len(), 300);

    // Everything acknowledged is committed: offset = messages per partition.
    // Commits are asynchronous; an explicit one returns once confirmed, after
    // the one in flight.
    group.commit_acknowledged().await.unwrap();
    let status = group.status().await.unwrap();
    let committed: BTreeMap<i32, i64> = status
        .committed
        .iter()
        .map(|c| (c.partition.partition, c.offset))
        .collect();
    let expected: BTreeMap<i32, i64> = by_partition
        .iter()
        .map(|(p, m)| (*p, m.len() as i64))
        .collect();
    assert_eq!(committed, expected);
    group.close().await.unwrap();
}

#[actix::test]
async fn a_new_member_resumes_after_the_last_committed_offset() {
    let fixture = Fixture::new();
    let kafka = Ekafka::from_toml_str(&group_config(&fixture, &unique_name("group"), ""), "kafka")
        .unwrap()
        .build()
        .unwrap();
    produce(&kafka, "first", 90).await;
    let group = kafka.consumer_group("cg1").unwrap();
    let (subscriber, mut batches) = forwarder::<MessageBatch>();
    group.subscribe(subscriber).await.unwrap();
    let first = receive(&mut batches, 90).await;
    group.commit_acknowledged().await.unwrap();
    group.close().await.unwrap();
    assert!(group.is_closed());

    produce(&kafka, "second", 90).await;
    let restarted = kafka.consumer_group("cg1").unwrap();
    assert_ne!(restarted, group, "a closed member is not handed out again");
    let (subscriber, mut batches) = forwarder::<MessageBatch>();
    restarted.subscribe(subscriber).await.unwrap();
    let second = receive(&mut batches, 90).await;
    for (partition, messages) in &second {
        let resumed_at = messages[0].0;
        let consumed_before = first.get(partition).map_or(0, |m| m.len() as i64);
        assert_eq!(
            resumed_at, consumed_before,
            "partition {partition} resumes right after the last commit"
        );
        assert!(
            messages.iter().all(|(_, v)| v.starts_with("second-")),
            "nothing handled twice"
        );
    }
    let total: usize = second.values().map(Vec::len).sum();
    assert_eq!(total, 90, "nothing skipped");
    restarted.close().await.unwrap();
}

/// Holds every batch unacknowledged until told to go on, then acknowledges all.
struct Staller {
    held: Vec<MessageBatch>,
    stalled: bool,
    received: tokio::sync::mpsc::UnboundedSender<usize>,
}

impl Actor for Staller {
    type Context = Context<Self>;
}

impl Handler<MessageBatch> for Staller {
    type Result = ();
    fn handle(&mut self, batch: MessageBatch, _: &mut Context<Self>) {
        let _ = self.received.send(batch.messages().len());
        if self.stalled {
            self.held.push(batch);
        } else {
            batch.ack();
        }
    }
}

#[derive(actix::Message)]
#[rtype(result = "()")]
struct GoOn;

impl Handler<GoOn> for Staller {
    type Result = ();
    fn handle(&mut self, _: GoOn, _: &mut Context<Self>) {
        self.stalled = false;
        for batch in self.held.drain(..) {
            batch.ack();
        }
    }
}

#[actix::test]
async fn a_stalled_subscriber_pauses_the_partitions_and_memory_stays_bounded() {
    // Ten times the bound waits in Kafka. (Kept modest: tansu 0.6.0 with sqlite
    // storage reads a partition's backlog in time that grows with its square.)
    const BOUND: usize = 300;
    const TOTAL: usize = 3_000;
    let fixture = Fixture::new();
    let keys = format!("maxBuffered = {BOUND}\ndeliveryBatch = 50");
    let text = group_config(&fixture, &unique_name("group"), &keys).replace(
        "batchTimeout = \"5ms\"",
        "batchTimeout = \"5ms\"\nbatchSize = 1000",
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    let producer = kafka.producer("p1").unwrap();
    for chunk in 0..(TOTAL / 1000) {
        let messages = (0..1000).map(|i| ekafka::Message::new(format!("m-{}", chunk * 1000 + i)));
        assert!(producer.write(messages).await.unwrap().is_success());
    }

    let group = kafka.consumer_group("cg1").unwrap();
    let (received_tx, mut received) = tokio::sync::mpsc::unbounded_channel();
    let staller = Staller {
        held: Vec::new(),
        stalled: true,
        received: received_tx,
    }
    .start();
    group.subscribe(staller.clone().recipient()).await.unwrap();

    // The subscriber stops acknowledging: the group fills up to its bound, then
    // pauses every partition, while tens of thousands of messages wait in Kafka.
    let mut delivered = 0;
    let started = std::time::Instant::now();
    loop {
        let status = group.status().await.unwrap();
        assert!(status.held <= BOUND, "held {} > bound {BOUND}", status.held);
        if status.assigned.len() == 3 && status.paused.len() == 3 {
            break;
        }
        assert!(
            started.elapsed() < common::WAIT,
            "partitions never paused: {status:?}"
        );
        tokio::select! {
            Some(n) = received.recv() => delivered += n,
            _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
        }
    }
    while let Ok(n) = received.try_recv() {
        delivered += n;
    }
    assert!(
        delivered <= BOUND,
        "the subscriber was handed {delivered} unacknowledged messages"
    );

    // It catches up: everything arrives, and the bound held throughout.
    staller.do_send(GoOn);
    while delivered < TOTAL {
        delivered += next(
            &mut received,
            &format!("message {} of {TOTAL}", delivered + 1),
        )
        .await;
    }
    assert_eq!(delivered, TOTAL, "every message delivered once");
    let status = group.status().await.unwrap();
    assert!(
        status.max_held <= BOUND,
        "at most {BOUND} held at any moment, saw {}",
        status.max_held
    );
    assert!(
        status.max_held >= BOUND / 2,
        "the bound was actually reached: {}",
        status.max_held
    );
    group.close().await.unwrap();
}

#[actix::test]
async fn the_pull_api_returns_events_and_messages_and_commits() {
    let fixture = Fixture::new();
    let kafka = Ekafka::from_toml_str(
        &group_config(&fixture, &unique_name("group"), "drainTimeout = \"500ms\""),
        "kafka",
    )
    .unwrap()
    .build()
    .unwrap();
    produce(&kafka, "pulled", 30).await;
    let group = kafka.consumer_group("cg1").unwrap();

    let mut assigned = None;
    let mut messages = Vec::new();
    while messages.len() < 30 {
        let event = tokio::time::timeout(common::WAIT, group.poll())
            .await
            .expect("an event in time")
            .unwrap();
        match event {
            ekafka::Event::Assigned(a) => assigned = Some(a),
            ekafka::Event::Message(m) => messages.push(m),
            other => panic!("unexpected {other:?}"),
        }
    }
    let assigned = assigned.expect("the assignment comes before the messages");
    assert_eq!(assigned.partitions.len(), 3);

    // Commit the first half of each partition: the committed offsets are one past
    // the highest committed message per partition.
    let mut by_partition: BTreeMap<i32, Vec<ekafka::ConsumedMessage>> = BTreeMap::new();
    for m in messages {
        by_partition.entry(m.partition()).or_default().push(m);
    }
    let first_halves: Vec<ekafka::ConsumedMessage> = by_partition
        .values()
        .flat_map(|ms| ms[..ms.len() / 2].to_vec())
        .collect();
    let committed = group.commit(&first_halves).await.unwrap();
    let committed: BTreeMap<i32, i64> = committed
        .iter()
        .map(|c| (c.partition.partition, c.offset))
        .collect();
    let expected: BTreeMap<i32, i64> = by_partition
        .iter()
        .filter(|(_, ms)| ms.len() >= 2)
        .map(|(p, ms)| (*p, ms[ms.len() / 2 - 1].offset() + 1))
        .collect();
    assert_eq!(committed, expected);

    // Acknowledging a later message alone commits nothing past an earlier one.
    let (partition, ms) = by_partition
        .iter()
        .find(|(_, ms)| ms.len() >= 4)
        .expect("a partition with 4 messages");
    group.ack(ms.last().unwrap()).await.unwrap();
    let after = group.commit_acknowledged().await.unwrap();
    assert!(
        after.iter().all(|c| c.partition.partition != *partition),
        "nothing more committed on partition {partition}: {after:?}"
    );
    group.close().await.unwrap();
}

#[actix::test]
async fn close_never_hangs_on_unacknowledged_messages() {
    let fixture = Fixture::new();
    let kafka = Ekafka::from_toml_str(
        &group_config(&fixture, &unique_name("group"), "drainTimeout = \"300ms\""),
        "kafka",
    )
    .unwrap()
    .build()
    .unwrap();
    produce(&kafka, "never-acked", 20).await;
    let group = kafka.consumer_group("cg1").unwrap();
    let (subscriber, mut batches) = forwarder::<MessageBatch>();
    group.subscribe(subscriber).await.unwrap();
    let batch = next(&mut batches, "a batch").await;
    assert!(!batch.messages().is_empty());
    // The batch is held, never acknowledged; close waits for it only drainTimeout.
    let started = std::time::Instant::now();
    tokio::time::timeout(common::WAIT, group.close())
        .await
        .expect("close returns")
        .unwrap();
    assert!(group.is_closed());
    assert!(started.elapsed() < common::WAIT);

    // Nothing unacknowledged was committed: a new member gets that batch again.
    let again = kafka.consumer_group("cg1").unwrap();
    let (subscriber, mut batches) = forwarder::<MessageBatch>();
    again.subscribe(subscriber).await.unwrap();
    let redelivered = next(&mut batches, "the unacknowledged batch again").await;
    let first = &batch.messages()[0];
    assert!(
        redelivered
            .messages()
            .iter()
            .any(|m| m.offset() <= first.offset())
            || redelivered.partition() != batch.partition(),
        "delivery restarts at or before the unacknowledged message"
    );
    let mut seen_again = false;
    let mut pending = Some(redelivered);
    while !seen_again {
        let b = match pending.take() {
            Some(b) => b,
            None => next(&mut batches, "the unacknowledged message again").await,
        };
        seen_again = b
            .messages()
            .iter()
            .any(|m| m.partition() == first.partition() && m.offset() == first.offset());
        b.ack();
    }
    again.close().await.unwrap();
}

/// Records consume, commit and rebalance hooks.
struct Hooks(Arc<Mutex<Vec<String>>>);

impl Interceptor for Hooks {
    fn name(&self) -> &str {
        "hooks"
    }
    fn before_deliver(&self, client: &ClientInfo, messages: &mut [ekafka::ConsumedMessage]) {
        for m in messages.iter_mut() {
            m.edit(|m| {
                m.headers.push(ekafka::Header {
                    key: "seen".into(),
                    value: Some(client.name.as_bytes().to_vec()),
                })
            });
        }
        self.0
            .lock()
            .unwrap()
            .push(format!("deliver {}", messages.len()));
    }
    fn after_commit(
        &self,
        _: &ClientInfo,
        offsets: &[PartitionOffset],
        result: Result<(), &ekafka::CommitFailure>,
        _: Duration,
    ) {
        self.0
            .lock()
            .unwrap()
            .push(format!("commit {} ok={}", offsets.len(), result.is_ok()));
    }
    fn on_group_event(&self, _: &ClientInfo, event: &GroupEvent) {
        let name = match event {
            GroupEvent::Assigned(_) => "assigned",
            GroupEvent::Revoked(_) => "revoked",
            GroupEvent::Error(_) => "error",
            _ => "other",
        };
        self.0.lock().unwrap().push(name.to_string());
    }
}

#[actix::test]
async fn interceptors_wrap_consume_commit_and_rebalance() {
    let fixture = Fixture::new();
    let journal = Arc::new(Mutex::new(Vec::new()));
    let kafka = Ekafka::from_toml_str(&group_config(&fixture, &unique_name("group"), ""), "kafka")
        .unwrap()
        .with_interceptor(Hooks(Arc::clone(&journal)))
        .build()
        .unwrap();
    produce(&kafka, "hooked", 10).await;
    let group = kafka.consumer_group("cg1").unwrap();
    let (subscriber, mut batches) = forwarder::<MessageBatch>();
    group.subscribe(subscriber).await.unwrap();
    let mut received = 0;
    while received < 10 {
        let batch = next(&mut batches, "hooked messages").await;
        assert!(
            batch
                .messages()
                .iter()
                .all(|m| m.header("seen") == Some(&b"cg1"[..])),
            "before_deliver changed them"
        );
        received += batch.messages().len();
        batch.ack();
    }
    group.commit_acknowledged().await.unwrap();
    group.close().await.unwrap();
    let journal = journal.lock().unwrap().clone();
    let position = |prefix: &str| journal.iter().position(|e| e.starts_with(prefix));
    assert_eq!(
        journal.first().map(String::as_str),
        Some("assigned"),
        "{journal:?}"
    );
    assert!(
        position("deliver").is_some() && position("commit").is_some(),
        "{journal:?}"
    );
    assert!(
        journal
            .iter()
            .any(|e| e.starts_with("commit") && e.ends_with("ok=true")),
        "{journal:?}"
    );
    assert_eq!(
        journal.last().map(String::as_str),
        Some("revoked"),
        "close revokes last: {journal:?}"
    );
}

#[actix::test]
async fn every_subscriber_gets_every_message_and_commits_wait_for_all() {
    let fixture = Fixture::new();
    let kafka = Ekafka::from_toml_str(
        &group_config(
            &fixture,
            &unique_name("group"),
            "commitInterval = \"100ms\"",
        ),
        "kafka",
    )
    .unwrap()
    .build()
    .unwrap();
    produce(&kafka, "both", 60).await;
    let group = kafka.consumer_group("cg1").unwrap();
    let (first, mut first_batches) = forwarder::<MessageBatch>();
    let (second, mut second_batches) = forwarder::<MessageBatch>();
    group.subscribe(first).await.unwrap();
    group.subscribe(second).await.unwrap();

    // The first subscriber acknowledges everything; the second nothing yet.
    let mut second_held = Vec::new();
    let mut second_count = 0;
    while second_count < 60 {
        let batch = next(&mut second_batches, "the second subscriber's messages").await;
        second_count += batch.messages().len();
        second_held.push(batch);
    }
    let first_all = receive(&mut first_batches, 60).await;
    assert_eq!(
        first_all.values().map(Vec::len).sum::<usize>(),
        60,
        "both get every message"
    );
    let status = group.status().await.unwrap();
    assert!(
        status.committed.is_empty(),
        "nothing committed while one subscriber owes: {status:?}"
    );
    assert_eq!(status.held, 60);

    // Once the second acknowledges too, the periodic commit (every 100ms) takes it all.
    for batch in &second_held {
        batch.ack();
    }
    let started = std::time::Instant::now();
    loop {
        let status = group.status().await.unwrap();
        let committed: i64 = status.committed.iter().map(|c| c.offset).sum();
        if committed == 60 {
            assert_eq!(status.held, 0);
            break;
        }
        assert!(
            started.elapsed() < common::WAIT,
            "not committed in time: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    group.close().await.unwrap();
}

#[actix::test]
async fn a_fatally_failed_member_is_restarted_and_its_subscriber_keeps_receiving() {
    let fixture = Fixture::new();
    let kafka = Ekafka::from_toml_str(&group_config(&fixture, &unique_name("group"), ""), "kafka")
        .unwrap()
        .build()
        .unwrap();
    produce(&kafka, "before", 30).await;
    let group = kafka.consumer_group("cg1").unwrap();
    let (subscriber, mut batches) = forwarder::<MessageBatch>();
    group.subscribe(subscriber).await.unwrap();
    let before = receive(&mut batches, 30).await;
    let committed = group.commit_acknowledged().await.unwrap();
    assert!(!committed.is_empty() || group.status().await.unwrap().committed.len() == 3);

    group
        .simulate_fatal_error("test-induced fencing")
        .await
        .unwrap();
    produce(&kafka, "after", 30).await;
    // The actor starts a new member behind the same handle, re-attaches the
    // subscriber, and consumption continues after the last commit.
    let after = receive(&mut batches, 30).await;
    let values: HashSet<&str> = after
        .values()
        .flat_map(|ms| ms.iter().map(|(_, v)| v.as_str()))
        .collect();
    let expected: HashSet<String> = (0..30).map(|i| format!("after-{i}")).collect();
    assert_eq!(
        values,
        expected.iter().map(String::as_str).collect(),
        "only the new messages, each once"
    );
    for (partition, messages) in &after {
        assert_eq!(
            messages[0].0,
            before.get(partition).map_or(0, |m| m.len() as i64),
            "partition {partition} resumes after the commit"
        );
    }
    assert!(!group.is_closed());
    group.close().await.unwrap();
}

/// Nothing is reported clean that was not: with every broker gone, the close's
/// final commit fails, and the close says so, naming each partition's offset
/// left uncommitted (subscribers hear it as a `GroupEvent::Error` too).
#[actix::test]
async fn close_with_the_coordinator_away_names_what_was_left_uncommitted() {
    let fixture = Fixture::new();
    let Some(cluster) = fixture.cluster.embedded() else {
        // On Apache Kafka: tests/broker_loss.rs, which can take brokers away.
        return;
    };
    // Nothing is committed before the close.
    let keys = "commitInterval = \"1h\"\ndrainTimeout = \"1s\"\ntimeout = \"2s\"";
    let kafka = Ekafka::from_toml_str(
        &group_config(&fixture, &unique_name("group"), keys),
        "kafka",
    )
    .unwrap()
    .build()
    .unwrap();
    produce(&kafka, "m", 30).await;
    let group = kafka.consumer_group("cg1").unwrap();
    let (events, mut group_events) = forwarder::<GroupEvent>();
    group.subscribe_events(events).await.unwrap();
    let (subscriber, mut batches) = forwarder::<MessageBatch>();
    group.subscribe(subscriber).await.unwrap();
    let by_partition = receive(&mut batches, 30).await;

    for broker in 1..=3 {
        cluster.broker_down(broker).unwrap();
    }
    let error = group.close().await.expect_err("the final commit failed");
    let left = uncommitted_offsets(&error);
    let handled: BTreeMap<i32, i64> = by_partition
        .iter()
        .map(|(p, m)| (*p, m.len() as i64))
        .collect();
    assert_eq!(left, handled, "{error}");
    let text = error.to_string();
    assert!(
        text.contains(&format!("{}/0 at {}", fixture.topic, handled[&0])),
        "the error names partition and offset: {text}"
    );
    // Why, as a value: a coordinator out of reach is a failure that passes.
    let ekafka::Error::Uncommitted { failure, .. } = &error else {
        unreachable!("uncommitted_offsets checked the variant")
    };
    assert!(failure.is_retriable(), "{failure:?}");
    // Subscribers heard the same detail.
    loop {
        match next(&mut group_events, "the commit failure event").await {
            GroupEvent::Error(e) if e.message.contains("left uncommitted") => break,
            _ => {}
        }
    }
}

#[actix::test]
async fn a_group_whose_topic_does_not_exist_says_so_and_consumes_it_once_created() {
    let fixture = Fixture::new();
    let missing = unique_name("not-yet");
    let text = group_config(&fixture, &unique_name("group"), "").replace(
        &format!("topic = {:?}", fixture.topic),
        &format!("topic = {missing:?}"),
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    let group = kafka.consumer_group("cg1").unwrap();
    let (events, mut group_events) = forwarder::<GroupEvent>();
    group.subscribe_events(events).await.unwrap();
    let (subscriber, mut batches) = forwarder::<MessageBatch>();
    group.subscribe(subscriber).await.unwrap();

    // The group says which topic is missing, in an event and in its status.
    loop {
        let event = next(&mut group_events, "an error naming the missing topic").await;
        if let GroupEvent::Error(error) = event {
            assert!(
                error.message.contains(&format!("{missing:?}"))
                    && error.message.contains("does not exist"),
                "the error names the topic: {}",
                error.message
            );
            break;
        }
    }
    assert_eq!(
        group.status().await.unwrap().missing_topics,
        std::slice::from_ref(&missing)
    );

    // Once the topic exists, the group consumes it without a restart.
    fixture
        .cluster
        .create_topic(&missing)
        .expect("topic created");
    let writer = Ekafka::from_toml_str(
        &fixture.config("").replace(
            &format!("topic = {:?}", fixture.topic),
            &format!("topic = {missing:?}"),
        ),
        "kafka",
    )
    .unwrap()
    .build()
    .unwrap();
    produce(&writer, "late", 30).await;
    let received = receive(&mut batches, 30).await;
    assert_eq!(received.values().map(Vec::len).sum::<usize>(), 30);
    assert!(group.status().await.unwrap().missing_topics.is_empty());
    group.close().await.unwrap();
}
