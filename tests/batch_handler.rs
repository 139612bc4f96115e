//! Batch handlers (`on_each_batch`): up to `batchSize` messages of one
//! partition per call, in offset order, each once; a call waits at most
//! `batchWait` to fill; a failure at index `i` commits the messages before
//! it and sends message `i` through retries, delay topics, the dead-letter
//! topic or its partition's stop exactly as a single message, the rest
//! following; a panic is narrowed down to its message; combinations that
//! cannot work are refused.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{forwarder, next, write_all, Fixture};
use ekafka::config::ConsumerServerConfig;
use ekafka::server::{
    headers, BatchFailure, ConsumerServer, FailureAction, HandlerError, HandlerFailure,
};
use ekafka::testing::unique_name;
use ekafka::{ConsumedMessage, Ekafka, Error, Message};

/// One handler call: the partition, and each message's offset and value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    partition: i32,
    offsets: Vec<i64>,
    values: Vec<String>,
}

impl Call {
    fn of(messages: &[ConsumedMessage]) -> Self {
        let partitions: BTreeSet<i32> = messages.iter().map(ConsumedMessage::partition).collect();
        assert_eq!(
            partitions.len(),
            1,
            "one partition per call: {partitions:?}"
        );
        Call {
            partition: messages[0].partition(),
            offsets: messages.iter().map(ConsumedMessage::offset).collect(),
            values: messages
                .iter()
                .map(|m| m.value_str().unwrap_or_default().to_string())
                .collect(),
        }
    }
}

/// `count` messages `m-0`, `m-1`, ... all on partition 0.
async fn write_to_partition_0(kafka: &Ekafka, count: usize) {
    write_all(
        kafka,
        (0..count).map(|i| Message::new(format!("m-{i}")).with_partition(0)),
    )
    .await;
}

/// Starts `s1` with a batch handler that records every call and fails as
/// `verdict` says; returns the server and the calls as they come.
async fn recording_server(
    kafka: &Ekafka,
    config: &ConsumerServerConfig,
    failures: Option<actix::Recipient<HandlerFailure>>,
    verdict: impl Fn(&Call, usize) -> Result<(), BatchFailure> + 'static,
) -> (
    ekafka::server::RunningServer,
    tokio::sync::mpsc::UnboundedReceiver<Call>,
) {
    let (calls_tx, calls) = tokio::sync::mpsc::unbounded_channel();
    let made = Rc::new(RefCell::new(0usize));
    let mut builder = ConsumerServer::builder(kafka, config);
    if let Some(failures) = failures {
        builder = builder.subscribe_failures(failures);
    }
    let server = builder
        .on_each_batch(move |messages| {
            let call = Call::of(&messages);
            let number = {
                let mut made = made.borrow_mut();
                *made += 1;
                *made
            };
            let verdict = verdict(&call, number);
            let _ = calls_tx.send(call);
            async move { verdict }
        })
        .await
        .expect("server started");
    (server, calls)
}

fn committed_total(status: &ekafka::consumer::GroupStatus) -> i64 {
    status.committed.iter().map(|c| c.offset).sum()
}

#[actix::test]
async fn every_message_comes_once_in_offset_order_in_calls_of_at_most_batch_size() {
    let fixture = Fixture::new();
    let (kafka, config) = common::server_setup(&fixture, "batchSize = 40\nbatchWait = \"1s\"", "");
    common::produce(&kafka, "m", 300).await;

    let (server, mut calls) = recording_server(&kafka, &config, None, |_, _| Ok(())).await;
    let mut by_partition: BTreeMap<i32, Vec<Call>> = BTreeMap::new();
    let mut received = 0;
    while received < 300 {
        let call = next(&mut calls, "the batches").await;
        received += call.offsets.len();
        by_partition.entry(call.partition).or_default().push(call);
    }
    let mut values = BTreeSet::new();
    for (partition, calls) in &by_partition {
        let offsets: Vec<i64> = calls.iter().flat_map(|c| c.offsets.clone()).collect();
        assert_eq!(
            offsets,
            (0..offsets.len() as i64).collect::<Vec<_>>(),
            "partition {partition}: each offset once, in order"
        );
        let (last, full) = calls.split_last().unwrap();
        // Everything was written before the server started: every call but a
        // partition's last is full.
        assert!(
            full.iter().all(|c| c.offsets.len() == 40) && last.offsets.len() <= 40,
            "partition {partition}: {:?}",
            calls.iter().map(|c| c.offsets.len()).collect::<Vec<_>>()
        );
        for call in calls {
            for value in &call.values {
                assert!(values.insert(value.clone()), "{value} twice");
            }
        }
    }
    assert_eq!(values.len(), 300);

    server.group().commit_acknowledged().await.unwrap();
    assert_eq!(
        committed_total(&server.group().status().await.unwrap()),
        300
    );
    server.close().await.unwrap();
    assert!(calls.try_recv().is_err(), "nothing handled twice");
}

#[actix::test]
async fn a_batch_that_cannot_fill_is_handed_over_once_batch_wait_passed() {
    let fixture = Fixture::new();
    let (kafka, config) =
        common::server_setup(&fixture, "batchSize = 1000\nbatchWait = \"300ms\"", "");
    let (server, mut calls) = recording_server(&kafka, &config, None, |_, _| Ok(())).await;
    let written = Instant::now();
    write_to_partition_0(&kafka, 5).await;

    let call = next(&mut calls, "the partial batch").await;
    assert_eq!(
        call.values,
        ["m-0", "m-1", "m-2", "m-3", "m-4"],
        "one call, not five"
    );
    assert!(
        written.elapsed() >= Duration::from_millis(300),
        "handed over before batchWait: {:?}",
        written.elapsed()
    );
    server.close().await.unwrap();
}

#[actix::test]
async fn a_failure_at_an_index_commits_the_messages_before_it_dead_letters_it_and_the_rest_follow()
{
    let fixture = Fixture::new();
    let dlq = unique_name("dlq");
    fixture.cluster.create_topic(&dlq).unwrap();
    let (kafka, config) = common::server_setup(
        &fixture,
        &format!(
            "batchSize = 10\nbatchWait = \"2s\"\ndeadLetterProducer = \"p1\"\ndeadLetterTopic = {dlq:?}"
        ),
        "",
    );
    write_to_partition_0(&kafka, 10).await;

    let (failures_tx, mut failures) = forwarder::<HandlerFailure>();
    let (server, mut calls) = recording_server(&kafka, &config, Some(failures_tx), |call, _| {
        match call.values.iter().position(|v| v == "m-6") {
            Some(index) => Err(BatchFailure::at(
                index,
                HandlerError::fatal("row m-6 violates a constraint"),
            )),
            None => Ok(()),
        }
    })
    .await;

    let first = next(&mut calls, "the whole batch").await;
    assert_eq!(first.offsets, (0..10).collect::<Vec<_>>());
    let rest = next(&mut calls, "the messages after the failed one").await;
    assert_eq!(rest.offsets, [7, 8, 9], "fatal: m-6 is never tried alone");

    let failure = next(&mut failures, "m-6's failure").await;
    assert_eq!(failure.message.value_str(), Some("m-6"));
    assert_eq!(failure.action, FailureAction::DeadLettered);
    assert_eq!(failure.attempts, 1);
    let dead = common::read_back(fixture.cluster.bootstrap_servers().to_string(), dlq, 1).await;
    assert_eq!(dead[0].value.as_deref(), Some(&b"m-6"[..]));
    let error = dead[0]
        .headers
        .iter()
        .find(|(k, _)| k == headers::ERROR)
        .and_then(|(_, v)| v.clone());
    assert_eq!(
        error.as_deref(),
        Some(&b"row m-6 violates a constraint"[..])
    );

    server.group().commit_acknowledged().await.unwrap();
    assert_eq!(committed_total(&server.group().status().await.unwrap()), 10);
    server.close().await.unwrap();
}

#[actix::test]
async fn a_recoverable_failure_is_retried_alone_before_the_rest_follow() {
    let fixture = Fixture::new();
    let (kafka, config) = common::server_setup(
        &fixture,
        "batchSize = 10\nbatchWait = \"2s\"\nretries = 2\nretryBackoff = \"10ms\"",
        "",
    );
    write_to_partition_0(&kafka, 10).await;

    let (failures_tx, mut failures) = forwarder::<HandlerFailure>();
    let (server, mut calls) =
        recording_server(&kafka, &config, Some(failures_tx), |call, number| {
            // m-3 fails in the batch and in its first try alone.
            match call.values.iter().position(|v| v == "m-3") {
                Some(index) if number <= 2 => Err(BatchFailure::at(
                    index,
                    HandlerError::recoverable("database busy"),
                )),
                _ => Ok(()),
            }
        })
        .await;

    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(next(&mut calls, "the calls").await.offsets);
    }
    assert_eq!(
        seen,
        [
            (0..10).collect::<Vec<_>>(),
            vec![3],
            vec![3],
            (4..10).collect()
        ],
        "the batch, m-3 alone twice, then the rest"
    );
    for _ in 0..2 {
        let failure = next(&mut failures, "a retry report").await;
        assert_eq!(failure.message.value_str(), Some("m-3"));
        assert!(matches!(failure.action, FailureAction::Retrying(_)));
    }
    server.group().commit_acknowledged().await.unwrap();
    assert_eq!(committed_total(&server.group().status().await.unwrap()), 10);
    server.close().await.unwrap();
}

#[actix::test]
async fn without_a_dead_letter_topic_a_failure_stops_its_partition_with_the_prefix_committed() {
    let fixture = Fixture::new();
    let (kafka, config) = common::server_setup(
        &fixture,
        "batchSize = 10\nbatchWait = \"200ms\"\nrestartBackoff = \"30s\"",
        "",
    );
    write_to_partition_0(&kafka, 10).await;
    write_all(
        &kafka,
        (0..5).map(|i| Message::new(format!("other-{i}")).with_partition(1)),
    )
    .await;

    let (failures_tx, mut failures) = forwarder::<HandlerFailure>();
    let (server, mut calls) = recording_server(&kafka, &config, Some(failures_tx), |call, _| {
        match call.values.iter().position(|v| v == "m-4") {
            Some(index) => Err(BatchFailure::at(
                index,
                HandlerError::fatal("cannot store m-4"),
            )),
            None => Ok(()),
        }
    })
    .await;

    let mut by_partition = BTreeMap::new();
    while by_partition.len() < 2 {
        let call = next(&mut calls, "both partitions").await;
        by_partition.insert(call.partition, call.offsets);
    }
    assert_eq!(by_partition[&0], (0..10).collect::<Vec<_>>());
    assert_eq!(
        by_partition[&1],
        (0..5).collect::<Vec<_>>(),
        "the other partition goes on"
    );
    let failure = next(&mut failures, "m-4's failure").await;
    assert_eq!(failure.action, FailureAction::Stopped);
    let status = server.status().await.unwrap();
    assert_eq!(status.stopped.len(), 1, "{status:?}");
    assert_eq!(
        (
            status.stopped[0].partition.partition,
            status.stopped[0].offset
        ),
        (0, 4)
    );

    server.close().await.unwrap();
    assert!(calls.try_recv().is_err(), "nothing past m-4");
    let committed = common::committed_offsets(
        fixture.cluster.bootstrap_servers().to_string(),
        kafka.config().consumer_groups["cg1"].group_id.clone(),
        fixture.topic.clone(),
    )
    .await;
    assert_eq!(committed[0], Some(4), "m-0..m-3 committed, m-4 not");
    assert_eq!(committed[1], Some(5));
}

#[actix::test]
async fn a_panicking_batch_is_handled_one_message_at_a_time_so_only_its_culprit_fails() {
    let fixture = Fixture::new();
    let dlq = unique_name("dlq");
    fixture.cluster.create_topic(&dlq).unwrap();
    let (kafka, config) = common::server_setup(
        &fixture,
        &format!(
            "batchSize = 10\nbatchWait = \"2s\"\ndeadLetterProducer = \"p1\"\ndeadLetterTopic = {dlq:?}"
        ),
        "",
    );
    write_to_partition_0(&kafka, 6).await;

    let (calls_tx, mut calls) = tokio::sync::mpsc::unbounded_channel();
    let server = ConsumerServer::on_each_batch(&kafka, &config, move |messages| {
        let call = Call::of(&messages);
        let poisoned = call.values.iter().any(|v| v == "m-2");
        let _ = calls_tx.send(call);
        async move {
            assert!(!poisoned, "a bug triggered by m-2");
            Ok(())
        }
    })
    .await
    .unwrap();

    let mut seen = Vec::new();
    for _ in 0..7 {
        seen.push(next(&mut calls, "the calls").await.offsets);
    }
    assert_eq!(
        seen,
        [
            (0..6).collect::<Vec<_>>(),
            vec![0],
            vec![1],
            vec![2],
            vec![3],
            vec![4],
            vec![5]
        ]
    );
    let dead = common::read_back(fixture.cluster.bootstrap_servers().to_string(), dlq, 1).await;
    assert_eq!(
        dead[0].value.as_deref(),
        Some(&b"m-2"[..]),
        "only the culprit"
    );
    server.group().commit_acknowledged().await.unwrap();
    assert_eq!(committed_total(&server.group().status().await.unwrap()), 6);
    server.close().await.unwrap();
}

#[actix::test]
async fn a_message_still_failing_goes_through_the_delay_topics_alone() {
    let fixture = Fixture::new();
    let retry_topic = format!("{}-retry-1s", fixture.topic);
    fixture.cluster.create_topic(&retry_topic).unwrap();
    let (kafka, config) = common::server_setup(
        &fixture,
        "batchSize = 10\nbatchWait = \"200ms\"\nretries = 0\nretryTopics = [\"1s\"]\nretryProducer = \"p1\"",
        "",
    );
    write_to_partition_0(&kafka, 5).await;

    let (calls_tx, mut calls) = tokio::sync::mpsc::unbounded_channel();
    let server = ConsumerServer::on_each_batch(&kafka, &config, move |messages| {
        let topic = messages[0].topic().to_string();
        let call = Call::of(&messages);
        let failing = (topic == origin_topic(&messages))
            .then(|| call.values.iter().position(|v| v == "m-1"))
            .flatten();
        let _ = calls_tx.send((topic, call));
        async move {
            match failing {
                Some(index) => Err(BatchFailure::at(index, HandlerError::recoverable("busy"))),
                None => Ok(()),
            }
        }
    })
    .await
    .unwrap();

    let (topic, first) = next(&mut calls, "the batch").await;
    assert_eq!(
        (topic.as_str(), first.offsets),
        (fixture.topic.as_str(), (0..5).collect())
    );
    let (topic, rest) = next(&mut calls, "the rest, at once").await;
    assert_eq!(
        (topic.as_str(), rest.offsets),
        (fixture.topic.as_str(), vec![2, 3, 4])
    );
    let (topic, again) = next(&mut calls, "m-1 from the delay topic").await;
    assert_eq!(
        (topic.as_str(), again.values),
        (retry_topic.as_str(), vec!["m-1".to_string()])
    );

    server.group().commit_acknowledged().await.unwrap();
    let committed = committed_total(&server.group().status().await.unwrap());
    assert_eq!(committed, 6, "5 on the topic, 1 on the delay topic");
    server.close().await.unwrap();
}

/// The topic the batch's messages were first written to: a delay topic's
/// messages name it in a header.
fn origin_topic(messages: &[ConsumedMessage]) -> String {
    match messages[0].header(headers::ORIGINAL_TOPIC) {
        Some(topic) => String::from_utf8_lossy(topic).into_owned(),
        None => messages[0].topic().to_string(),
    }
}

#[actix::test]
async fn combinations_that_cannot_work_are_refused_naming_the_key() {
    let fixture = Fixture::new();
    let refused = |server_keys: &str, group_keys: &str| {
        let text = format!(
            "{}\n[kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\n{server_keys}\n",
            common::group_config(&fixture, &unique_name("group"), group_keys)
        );
        let kafka = Ekafka::from_toml_str(&text, "kafka")
            .unwrap()
            .build()
            .unwrap();
        let config = ConsumerServerConfig::from_toml_str(&text, "kafkaConsumerServers.s1").unwrap();
        (kafka, config)
    };
    let batch = |messages: Vec<ConsumedMessage>| async move {
        drop(messages);
        Ok::<(), BatchFailure>(())
    };

    let (kafka, config) = refused("concurrency = 4", "");
    let error = ConsumerServer::on_each_batch(&kafka, &config, batch)
        .await
        .unwrap_err();
    assert_config_error(
        &error,
        "kafkaConsumerServers.s1.concurrency",
        "raise batchSize instead",
    );

    let (kafka, config) = refused("batchSize = 600", "maxBuffered = 500");
    let error = ConsumerServer::on_each_batch(&kafka, &config, batch)
        .await
        .unwrap_err();
    assert_config_error(
        &error,
        "kafkaConsumerServers.s1.batchSize",
        "maxBuffered (500)",
    );

    let (kafka, config) = refused("batchWait = \"1s\"", "");
    let error = ConsumerServer::on_each_message(&kafka, &config, |_| async { Ok(()) })
        .await
        .unwrap_err();
    assert_config_error(
        &error,
        "kafkaConsumerServers.s1.batchWait",
        "they are for on_each_batch",
    );
}

fn assert_config_error(error: &Error, key: &str, expected: &str) {
    match error {
        Error::Config(config) => {
            assert_eq!(config.path(), key, "{error}");
            assert!(error.to_string().contains(expected), "{error}");
        }
        other => panic!("expected a config error at {key}, got {other:?}"),
    }
}
