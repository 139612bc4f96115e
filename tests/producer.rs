//! The producer actor on the embedded cluster: deliveries, order, balancers,
//! compression, async mode, close, restarts and the component's instance cache.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{forwarder, next, Fixture};
use ekafka::{Balancer, Ekafka, Error, Message, Outcome, ProduceErrorKind};

fn delivered(outcome: &Outcome) -> &ekafka::Delivery {
    match outcome {
        Outcome::Delivered(d) => d,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

#[actix::test]
async fn every_message_is_delivered_once_in_order_per_partition() {
    let fixture = Fixture::new();
    let producer = fixture.kafka("").producer("p1").unwrap();
    let messages: Vec<Message> = (0..60)
        .map(|i| Message::new(format!("value-{i}")).with_key(format!("key-{}", i % 7)))
        .collect();
    let report = producer.write(messages).await.unwrap();
    assert_eq!(report.outcomes().len(), 60);
    assert!(
        report.is_success(),
        "{:?}",
        report.failures().collect::<Vec<_>>()
    );

    // The deliveries say where each message went; offsets grow in write order.
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    let mut expected_by_partition: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for (i, outcome) in report.outcomes().iter().enumerate() {
        let d = delivered(outcome);
        assert_eq!(&*d.topic, fixture.topic);
        if let Some(previous) = last_offset.insert(d.partition, d.offset) {
            assert!(
                d.offset > previous,
                "offsets grow in write order on partition {}",
                d.partition
            );
        }
        expected_by_partition
            .entry(d.partition)
            .or_default()
            .push(format!("value-{i}"));
    }
    // roundRobin deals the 60 messages evenly over the 3 partitions.
    assert_eq!(
        expected_by_partition
            .values()
            .map(Vec::len)
            .collect::<Vec<_>>(),
        [20, 20, 20]
    );

    // Reading back finds each message exactly once, in the same order per partition.
    let mut read_by_partition: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for m in fixture.read_back(60).await {
        read_by_partition
            .entry(m.partition)
            .or_default()
            .push(String::from_utf8(m.value.unwrap()).unwrap());
    }
    assert_eq!(read_by_partition, expected_by_partition);
    assert!(producer.close().await.unwrap().is_clean());
}

#[actix::test]
async fn messages_carry_topic_partition_headers_and_timestamp() {
    let fixture = Fixture::new();
    // A recent time: a broker deletes messages older than its retention at
    // its next retention check.
    let written_at = common::now_millis() - 60_000;
    let text = format!(
        "[kafka]\n{}\n[kafka.producers.untargeted]\nbatchTimeout = \"5ms\"\n",
        fixture.cluster.brokers_line()
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    let producer = kafka.producer("untargeted").unwrap();
    let report = producer
        .write([
            Message::new("pinned")
                .with_topic(&fixture.topic)
                .with_partition(2)
                .with_key("k")
                .with_header("trace", "abc")
                .with_timestamp(written_at),
            Message::new("nowhere"),
        ])
        .await
        .unwrap();
    let outcomes = report.outcomes();
    let d = delivered(&outcomes[0]);
    assert_eq!(d.partition, 2);
    match &outcomes[1] {
        Outcome::Failed(e) => {
            assert_eq!(e.kind, ProduceErrorKind::NoTopic);
            assert_eq!(
                e.message.value.as_deref(),
                Some(&b"nowhere"[..]),
                "the message is handed back"
            );
            assert!(!e.is_retriable());
        }
        other => panic!("a message without topic must fail, got {other:?}"),
    }
    let read = fixture.read_back(1).await;
    assert_eq!(read[0].partition, 2);
    assert_eq!(read[0].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(
        read[0].headers[0],
        ("trace".to_string(), Some(b"abc".to_vec()))
    );
    assert_eq!(read[0].headers.len(), 1, "{:?}", read[0].headers);
    assert_eq!(read[0].timestamp, Some(written_at));
}

#[actix::test]
async fn tombstones_null_headers_and_bad_topic_names_are_written_or_refused_one_by_one() {
    let fixture = Fixture::new();
    let producer = fixture.kafka("").producer("p1").unwrap();
    let mut tombstone = Message::default().with_key("gone");
    tombstone.headers.push(ekafka::Header {
        key: "null-valued".into(),
        value: None,
    });
    let report = producer
        .write([
            Message::new("a NUL").with_topic("bad\0name"),
            tombstone,
            Message::new("too long").with_topic("t".repeat(600)),
        ])
        .await
        .unwrap();
    let outcomes = report.outcomes();
    // Refused before sending by Kafka's naming rules, saying what is wrong.
    for (outcome, says) in [
        (&outcomes[0], "'\\0' is not allowed"),
        (&outcomes[2], "at most 249 characters"),
    ] {
        match outcome {
            Outcome::Failed(e) => {
                assert_eq!(
                    e.kind,
                    ProduceErrorKind::Kafka(ekafka::KafkaCode::InvalidTopic)
                );
                assert!(e.reason.contains("before sending"), "{}", e.reason);
                assert!(e.reason.contains(says), "{}", e.reason);
                assert!(e.message.value.is_some(), "the message is handed back");
            }
            other => panic!("a bad topic name must fail its message, got {other:?}"),
        }
    }
    delivered(&outcomes[1]);

    let read = fixture.read_back(1).await;
    assert_eq!(read[0].key.as_deref(), Some(&b"gone"[..]));
    assert_eq!(read[0].value, None, "a tombstone stays one");
    assert_eq!(read[0].headers[0], ("null-valued".to_string(), None));
}

#[actix::test]
async fn a_write_to_a_missing_topic_fails_naming_it_not_as_a_timeout() {
    let fixture = Fixture::new();
    // The client may not create topics; writeTimeout is well past librdkafka's
    // own 30 s wait for a missing topic only if ekafka did not shorten it.
    let producer = fixture
        .kafka("writeTimeout = \"20s\"\nlibrdkafka = { \"allow.auto.create.topics\" = \"false\" }")
        .producer("p1")
        .unwrap();
    let missing = ekafka::testing::unique_name("missing");
    for attempt in ["first", "later"] {
        let report = producer
            .write([Message::new(attempt).with_topic(&missing)])
            .await
            .unwrap();
        let failure = report.failures().next().expect("the write fails");
        assert!(
            matches!(
                failure.kind,
                ProduceErrorKind::Kafka(
                    ekafka::KafkaCode::UnknownTopicOrPartition | ekafka::KafkaCode::UnknownTopic
                )
            ),
            "{attempt}: {failure}"
        );
        assert!(
            failure
                .reason
                .starts_with(&format!("topic {missing:?} does not exist")),
            "{attempt}: the cause comes first: {}",
            failure.reason
        );
    }
    // The producer's own topic is unaffected.
    assert!(producer
        .write([Message::new("fine")])
        .await
        .unwrap()
        .is_success());
}

#[actix::test]
async fn a_write_to_an_invalid_topic_name_fails_naming_the_topic() {
    let fixture = Fixture::new();
    let producer = fixture.kafka("").producer("p1").unwrap();
    let invalid = "bad topic!";
    let report = producer
        .write([Message::new("v").with_topic(invalid)])
        .await
        .unwrap();
    let failure = report.failures().next().expect("the write fails");
    // Refused before sending (Apache Kafka would answer InvalidTopic, the
    // embedded cluster takes any name), naming the topic and what is wrong.
    assert!(
        failure.reason.contains(&format!("{invalid:?}")),
        "the reason names the topic: {}",
        failure.reason
    );
    assert!(failure.reason.contains("' '"), "{}", failure.reason);
    assert_eq!(
        failure.kind,
        ProduceErrorKind::Kafka(ekafka::KafkaCode::InvalidTopic)
    );
    assert!(failure.to_string().contains(invalid), "{failure}");
}

#[actix::test]
async fn a_message_under_the_brokers_default_limit_is_written_and_one_over_the_producers_is_refused_saying_so(
) {
    let fixture = Fixture::new();
    // 1,040,000 bytes: under Apache Kafka's default message.max.bytes
    // (1,048,588), over librdkafka's own default (1,000,000).
    let under_kafkas_limit = vec![b'x'; 1_040_000];
    let producer = fixture.kafka("compression = 0").producer("p1").unwrap();
    let report = producer
        .write([Message::new(under_kafkas_limit)])
        .await
        .unwrap();
    assert!(
        report.is_success(),
        "a message Kafka accepts is not refused: {:?}",
        report.failures().collect::<Vec<_>>()
    );

    // Past the producer's own limit, the refusal is local and says how to
    // raise it.
    let limited = fixture
        .kafka("maxMessageBytes = 2000")
        .producer("p1")
        .unwrap();
    let report = limited
        .write([Message::new(vec![b'x'; 5_000])])
        .await
        .unwrap();
    let failure = report.failures().next().expect("the write fails");
    assert_eq!(
        failure.kind,
        ProduceErrorKind::Kafka(ekafka::KafkaCode::MessageSizeTooLarge)
    );
    for expected in [
        "not by the broker",
        "2000",
        "kafka.producers.p1.maxMessageBytes",
        &format!("{:?}", fixture.topic),
    ] {
        assert!(
            failure.reason.contains(expected),
            "the reason says {expected:?}: {}",
            failure.reason
        );
    }
}

/// True when the cluster has `topic` (asked without letting the question
/// create it).
async fn topic_exists(bootstrap: String, topic: String) -> bool {
    tokio::task::spawn_blocking(move || {
        let client: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("allow.auto.create.topics", "false")
            .create()
            .expect("metadata client");
        let metadata =
            rdkafka::consumer::Consumer::fetch_metadata(&client, Some(&topic), common::WAIT)
                .expect("metadata answered");
        metadata.topics()[0].error().is_none()
    })
    .await
    .expect("metadata thread")
}

#[actix::test]
async fn producers_that_may_not_create_topics_never_create_one_while_they_connect() {
    let fixture = Fixture::new();
    // librdkafka's own metadata request for "the topics the client knows",
    // retried on another broker after the bootstrap connection was replaced,
    // let the broker create them whatever `allow.auto.create.topics` said.
    // Whether a write to a missing topic lands in that window is a race (about
    // one producer in five lost it before the fix), so twenty producers write
    // at once, each to its own missing topic, right after starting.
    let mut writes = tokio::task::JoinSet::new();
    let mut missing_topics = Vec::new();
    for _ in 0..20 {
        let producer = fixture
            .kafka(
                "writeTimeout = \"20s\"\nlibrdkafka = { \"allow.auto.create.topics\" = \"false\" }",
            )
            .producer("p1")
            .unwrap();
        let missing = ekafka::testing::unique_name("missing");
        missing_topics.push(missing.clone());
        writes.spawn_local(async move {
            let report = producer
                .write([Message::new("nowhere").with_topic(&missing)])
                .await
                .unwrap();
            let failure = report.failures().next().map(|f| f.kind.clone());
            (missing, failure)
        });
    }
    while let Some(written) = writes.join_next().await {
        let (missing, failure) = written.expect("the write's task");
        assert!(
            matches!(
                failure,
                Some(ProduceErrorKind::Kafka(
                    ekafka::KafkaCode::UnknownTopicOrPartition | ekafka::KafkaCode::UnknownTopic
                ))
            ),
            "the write to {missing}: {failure:?}"
        );
    }
    for missing in missing_topics {
        assert!(
            !topic_exists(
                fixture.cluster.bootstrap_servers().to_string(),
                missing.clone()
            )
            .await,
            "a producer created {missing}"
        );
    }
}

struct Always(i32);

impl Balancer for Always {
    fn partition(&self, _topic: &str, _key: Option<&[u8]>, _partitions: i32) -> i32 {
        self.0
    }
}

#[actix::test]
async fn a_registered_balancer_chooses_the_partition() {
    let fixture = Fixture::new();
    let kafka = Ekafka::from_toml_str(&fixture.config("balancer = \"last\""), "kafka")
        .unwrap()
        .with_balancer("last", Always(2))
        .build()
        .unwrap();
    let report = kafka
        .producer("p1")
        .unwrap()
        .write((0..10).map(|i| Message::new(format!("{i}"))))
        .await
        .unwrap();
    assert!(report
        .outcomes()
        .iter()
        .all(|o| delivered(o).partition == 2));

    // A balancer answering out of range fails those messages, not the process.
    let kafka = Ekafka::from_toml_str(&fixture.config("balancer = \"broken\""), "kafka")
        .unwrap()
        .with_balancer("broken", Always(17))
        .build()
        .unwrap();
    let report = kafka
        .producer("p1")
        .unwrap()
        .write([Message::new("x")])
        .await
        .unwrap();
    assert_eq!(report.failures().count(), 1);
}

#[actix::test]
async fn every_compression_codec_round_trips() {
    for (codec, name) in [(1, "gzip"), (2, "snappy"), (3, "lz4"), (4, "zstd")] {
        let fixture = Fixture::new();
        let kafka = fixture.kafka(&format!("compression = {codec}\nbatchSize = 50"));
        assert_eq!(
            kafka
                .producer_properties("p1")
                .unwrap()
                .get("compression.codec"),
            Some(name)
        );
        let producer = kafka.producer("p1").unwrap();
        // Repetitive values so every codec really has something to compress.
        let values: Vec<String> = (0..40)
            .map(|i| format!("{name}-{i}-{}", "abc".repeat(30)))
            .collect();
        let report = producer
            .write(values.iter().map(|v| Message::new(v.as_str())))
            .await
            .unwrap();
        assert!(
            report.is_success(),
            "{name}: {:?}",
            report.failures().collect::<Vec<_>>()
        );
        let mut read: Vec<String> = fixture
            .read_back(40)
            .await
            .into_iter()
            .map(|m| String::from_utf8(m.value.unwrap()).unwrap())
            .collect();
        read.sort();
        let mut expected = values.clone();
        expected.sort();
        assert_eq!(read, expected, "{name} round trip");
        assert!(producer.close().await.unwrap().is_clean());
    }
}

/// An async write answers per message: `Enqueued` once librdkafka queued it,
/// its later failure going to the error subscriber; or `Failed` in the report
/// when librdkafka refused it at once, which then never reaches the
/// subscriber. A message to a partition that does not exist is refused at
/// once when the client already holds its topic's metadata, and fails later
/// otherwise; both cases are pinned down here.
#[actix::test]
async fn async_writes_return_once_queued_and_failures_reach_the_subscriber() {
    let fixture = Fixture::new();
    let producer = fixture.kafka("async = true").producer("p1").unwrap();
    let (subscriber, mut failures) = forwarder::<ekafka::DeliveryFailed>();
    producer.subscribe_errors(subscriber).await.unwrap();

    // A topic that does not exist yet cannot be known when the message is
    // queued: the message waits for the metadata (which creates the topic on
    // both backends, with fewer than 100 partitions), then fails.
    let unseen = ekafka::testing::unique_name("unseen");
    let report = producer
        .write([
            Message::new("fine"),
            Message::new("doomed")
                .with_topic(unseen.as_str())
                .with_partition(99),
        ])
        .await
        .unwrap();
    assert_eq!(report.outcomes(), [Outcome::Enqueued, Outcome::Enqueued]);
    let failure = next(
        &mut failures,
        "the delivery failure of the message to partition 99",
    )
    .await;
    assert_eq!(failure.producer, "p1");
    assert_eq!(failure.error.message.value.as_deref(), Some(&b"doomed"[..]));
    assert_eq!(
        failure.error.kind,
        ProduceErrorKind::Kafka(ekafka::KafkaCode::UnknownPartition),
        "{:?}",
        failure.error
    );

    // The good message arrived, so the client now knows its topic's partitions.
    assert_eq!(
        fixture.read_back(1).await[0].value.as_deref(),
        Some(&b"fine"[..])
    );
    // Known now: the message is refused at once, and the report says so.
    let report = producer
        .write([Message::new("refused").with_partition(99)])
        .await
        .unwrap();
    match report.outcomes() {
        [Outcome::Failed(error)] => {
            assert_eq!(
                error.kind,
                ProduceErrorKind::Kafka(ekafka::KafkaCode::UnknownPartition),
                "{error}"
            );
            assert_eq!(error.message.value.as_deref(), Some(&b"refused"[..]));
        }
        other => panic!("expected the refusal in the report, got {other:?}"),
    }
    assert!(producer.close().await.unwrap().is_clean());
    // Close served every delivery report: the refusal never reached the subscriber.
    assert!(
        failures.try_recv().is_err(),
        "a refused message is reported once, in the write's report"
    );
}

#[actix::test]
async fn close_flushes_everything_queued() {
    let fixture = Fixture::new();
    // A long batch timeout: without the flush these would sit in their batch.
    let producer = fixture
        .kafka("async = true\nbatchTimeout = \"5s\"\nwriteTimeout = \"30s\"")
        .producer("p1")
        .unwrap();
    let report = producer
        .write((0..100).map(|i| Message::new(format!("{i}"))))
        .await
        .unwrap();
    assert_eq!(report.outcomes().len(), 100);
    let closed = producer.close().await.unwrap();
    assert!(closed.is_clean(), "{:?}", closed.undelivered);
    assert_eq!(fixture.read_back(100).await.len(), 100);
}

#[actix::test]
async fn close_hands_back_what_could_not_be_delivered() {
    let fixture = Fixture::new();
    let keys = "async = true\nwriteTimeout = \"1s\"\nbatchTimeout = \"5ms\"";
    // Nothing can be written: on the embedded cluster every broker is taken
    // down; a real broker this test cannot take down, so the producer is
    // pointed at a port nothing listens on. (min.insync.replicas above the
    // replication factor would not do: Kafka 4 caps it at the factor.)
    let text = match fixture.cluster.embedded() {
        Some(_) => fixture.config(keys),
        None => {
            let closed = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap();
            fixture.config(keys).replace(
                &fixture.cluster.brokers_line(),
                &format!("brokers = [\"{closed}\"]"),
            )
        }
    };
    let producer = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap()
        .producer("p1")
        .unwrap();
    if let Some(cluster) = fixture.cluster.embedded() {
        for broker in 1..=3 {
            cluster.broker_down(broker).unwrap();
        }
    }
    let report = producer
        .write((0..5).map(|i| Message::new(format!("lost-{i}"))))
        .await
        .unwrap();
    assert_eq!(report.outcomes().len(), 5);
    let closed = producer.close().await.unwrap();
    let mut values: Vec<String> = closed
        .undelivered
        .iter()
        .map(|e| String::from_utf8(e.message.value.clone().unwrap()).unwrap())
        .collect();
    values.sort();
    assert_eq!(values, ["lost-0", "lost-1", "lost-2", "lost-3", "lost-4"]);
    assert!(
        closed.undelivered.iter().all(|e| e.is_retriable()),
        "{:?}",
        closed.undelivered
    );
    // Each says why: its delivery timed out, or the close's deadline passed.
    for failure in &closed.undelivered {
        assert!(
            failure.reason.contains("timed out") || failure.reason.contains("closed before"),
            "{failure}"
        );
    }
}

#[actix::test]
async fn a_fatally_failed_client_is_restarted_behind_the_same_handle() {
    let fixture = Fixture::new();
    let producer = fixture.kafka("").producer("p1").unwrap();
    assert!(producer
        .write([Message::new("before")])
        .await
        .unwrap()
        .is_success());

    producer
        .simulate_fatal_error("test-induced failure")
        .await
        .unwrap();
    let report = producer.write([Message::new("after")]).await.unwrap();
    assert!(
        report.is_success(),
        "{:?}",
        report.failures().collect::<Vec<_>>()
    );
    assert_eq!(producer.status().await.unwrap().restarts, 1);

    let values: Vec<_> = fixture
        .read_back(2)
        .await
        .into_iter()
        .map(|m| m.value.unwrap())
        .collect();
    assert!(values.contains(&b"before".to_vec()) && values.contains(&b"after".to_vec()));
}

#[actix::test]
async fn the_component_reuses_running_producers_and_replaces_closed_ones() {
    let fixture = Fixture::new();
    let kafka = fixture.kafka("");
    let first = kafka.producer("p1").unwrap();
    assert_eq!(
        first,
        kafka.producer("p1").unwrap(),
        "the running instance is reused"
    );

    assert!(first.close().await.unwrap().is_clean());
    assert!(first.is_closed());
    assert!(matches!(
        first.write([Message::new("x")]).await,
        Err(Error::Closed { .. })
    ));

    let second = kafka.producer("p1").unwrap();
    assert_ne!(first, second, "a closed producer is not handed out again");
    assert!(second
        .write([Message::new("x")])
        .await
        .unwrap()
        .is_success());

    match kafka.producer("p9") {
        Err(Error::UnknownClient { name, known, .. }) => {
            assert_eq!((name.as_str(), known.as_str()), ("p9", "p1"))
        }
        other => panic!("expected UnknownClient, got {other:?}"),
    }
}

#[test]
fn asking_for_a_producer_outside_an_actix_system_is_an_error() {
    let kafka = Ekafka::from_toml_str(
        "[kafka]\nbrokers=[\"127.0.0.1:1\"]\n[kafka.producers.p1]\n",
        "kafka",
    )
    .unwrap()
    .build()
    .unwrap();
    assert!(matches!(
        kafka.producer("p1"),
        Err(Error::NoActixSystem { .. })
    ));
}

#[actix::test]
async fn past_the_restart_limit_the_producer_gives_up_with_the_reason() {
    let fixture = Fixture::new();
    let kafka = Ekafka::from_toml_str(&fixture.config(""), "kafka")
        .unwrap()
        .with_restart_policy(ekafka::RestartPolicy::default().with_max_restarts(1))
        .build()
        .unwrap();
    let producer = kafka.producer("p1").unwrap();
    producer
        .simulate_fatal_error("first failure")
        .await
        .unwrap();
    assert!(producer
        .write([Message::new("a")])
        .await
        .unwrap()
        .is_success());

    producer
        .simulate_fatal_error("second failure")
        .await
        .unwrap();
    // The next write either finds the producer already given up (refused whole,
    // below) or is the one that hits the limit: then its message is handed back.
    match producer.write([Message::new("b")]).await {
        Ok(report) => {
            let failure = report.failures().next().expect("not written");
            assert_eq!(failure.kind, ProduceErrorKind::ProducerDown);
            assert_eq!(failure.message.value.as_deref(), Some(&b"b"[..]));
            assert!(failure.reason.contains("gave up"), "{}", failure.reason);
        }
        Err(Error::GaveUp { .. }) => {}
        other => panic!("expected the write to fail, got {other:?}"),
    }
    // ...and later writes are refused whole, naming the cause.
    match producer.write([Message::new("c")]).await {
        Err(Error::GaveUp {
            name,
            restarts,
            reason,
            ..
        }) => {
            assert_eq!((name.as_str(), restarts), ("p1", 1));
            assert!(reason.contains("fatal"), "{reason}");
        }
        other => panic!("expected GaveUp, got {other:?}"),
    }
    assert!(producer.status().await.unwrap().gave_up.is_some());
}

/// Runs `writes` concurrently; returns each report, asserting every message
/// of each was delivered.
async fn concurrently(producer: &ekafka::Producer, writes: Vec<Vec<String>>) {
    let mut tasks = tokio::task::JoinSet::new();
    for values in writes {
        let producer = producer.clone();
        tasks.spawn_local(async move {
            let count = values.len();
            let report = producer
                .write(values.into_iter().map(Message::new))
                .await
                .unwrap();
            assert!(report.is_success(), "{:?}", report.failures().next());
            assert_eq!(report.deliveries().count(), count);
        });
    }
    while let Some(task) = tasks.join_next().await {
        task.unwrap();
    }
}

/// `count` writes of `size` messages labelled `label`.
fn writes(label: &str, count: usize, size: usize) -> Vec<Vec<String>> {
    (0..count)
        .map(|w| (0..size).map(|i| format!("{label}-{w}-{i}")).collect())
        .collect()
}

#[actix::test]
async fn every_write_gets_its_deliveries_as_the_serving_moves_between_threads() {
    // Single-message writes have their reports served on a helper thread,
    // batches on the actor's: this moves the serving there and back, and
    // through a client restart while the actor serves.
    let fixture = Fixture::new();
    let producer = fixture.kafka("").producer("p1").unwrap();
    let phases = [
        writes("single-a", 40, 1),
        writes("batch-a", 12, 200),
        writes("single-b", 60, 1),
        writes("batch-b", 12, 200),
    ];
    let mut expected: Vec<String> = Vec::new();
    for (number, phase) in phases.into_iter().enumerate() {
        expected.extend(phase.iter().flatten().cloned());
        for chunk in phase.chunks(8) {
            concurrently(&producer, chunk.to_vec()).await;
        }
        if number == 1 {
            producer
                .simulate_fatal_error("test-induced failure")
                .await
                .unwrap();
        }
    }
    assert_eq!(producer.status().await.unwrap().restarts, 1);
    assert!(producer.close().await.unwrap().is_clean());

    let mut read: Vec<String> = fixture
        .read_back(expected.len())
        .await
        .into_iter()
        .map(|m| String::from_utf8(m.value.unwrap()).unwrap())
        .collect();
    read.sort();
    expected.sort();
    assert_eq!(read, expected, "every message once");
}

/// Reads back `count` messages and lists each key's values in the order
/// they were read (each key is on one partition with `balancer = "hash"`).
async fn values_by_key(fixture: &Fixture, count: usize) -> BTreeMap<String, Vec<String>> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in fixture.read_back(count).await {
        by_key
            .entry(String::from_utf8(m.key.unwrap()).unwrap())
            .or_default()
            .push(String::from_utf8(m.value.unwrap()).unwrap());
    }
    by_key
}

#[actix::test]
async fn writers_on_several_threads_share_one_producer_each_arriving_once_in_order() {
    // Writes run on the writer's own thread: three Arbiters write through
    // clones of one handle at once.
    let fixture = Fixture::new();
    let producer = fixture.kafka("balancer = \"hash\"").producer("p1").unwrap();
    let (writes, per_write) = (10, 20);
    let mut finished = Vec::new();
    for writer in 0..3 {
        let (arbiter, (done, finish)) = (actix::Arbiter::new(), tokio::sync::oneshot::channel());
        let producer = producer.clone();
        arbiter.spawn(async move {
            let mut reports = Vec::new();
            for write in 0..writes {
                let messages = (0..per_write).map(|i| {
                    Message::new(format!("{writer}-{}", write * per_write + i))
                        .with_key(format!("writer-{writer}"))
                });
                reports.push(producer.write(messages).await);
            }
            let _ = done.send(reports);
        });
        finished.push((arbiter, finish));
    }
    for (arbiter, finish) in finished {
        let reports = tokio::time::timeout(common::WAIT, finish)
            .await
            .expect("the writer finishes")
            .expect("the writer's thread ran");
        for report in reports {
            let report = report.expect("write accepted");
            assert!(report.is_success(), "{:?}", report.failures().next());
        }
        arbiter.stop();
    }
    let by_key = values_by_key(&fixture, 3 * writes * per_write).await;
    for writer in 0..3 {
        let expected: Vec<String> = (0..writes * per_write)
            .map(|n| format!("{writer}-{n}"))
            .collect();
        assert_eq!(
            by_key[&format!("writer-{writer}")],
            expected,
            "once, in order"
        );
    }
    assert!(producer.close().await.unwrap().is_clean());
}

#[actix::test]
async fn a_write_waiting_for_queue_space_is_not_overtaken_by_a_later_one() {
    // librdkafka's queue holds 50 messages: writes of 30, three at a time,
    // wait for space part way, and each write starts while earlier ones
    // wait. A later write serves the reports waiting before it queues, which
    // frees the space an earlier write waits for: it must queue behind it.
    let fixture = Fixture::new();
    let keys = "balancer = \"hash\"\n[kafka.producers.p1.librdkafka]\n\
                \"queue.buffering.max.messages\" = \"50\"";
    let producer = fixture.kafka(keys).producer("p1").unwrap();
    let (writes, per_write, at_once) = (20, 30, 3);
    let mut tasks = tokio::task::JoinSet::new();
    let mut started = 0;
    while started < writes || !tasks.is_empty() {
        while started < writes && tasks.len() < at_once {
            let producer = producer.clone();
            let first = started * per_write;
            tasks.spawn_local(async move {
                let messages =
                    (first..first + per_write).map(|n| Message::new(n.to_string()).with_key("k"));
                producer.write(messages).await
            });
            started += 1;
        }
        let report = tasks.join_next().await.unwrap().unwrap();
        let report = report.expect("write accepted");
        assert!(report.is_success(), "{:?}", report.failures().next());
    }
    let by_key = values_by_key(&fixture, writes * per_write).await;
    let expected: Vec<String> = (0..writes * per_write).map(|n| n.to_string()).collect();
    assert_eq!(by_key["k"], expected, "in the order the writes started");
    assert!(producer.close().await.unwrap().is_clean());
}
