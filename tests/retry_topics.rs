//! Non-blocking retries through delay topics (`retryTopics`): a failing
//! message goes to a chain of delay topics and comes back when due, while the
//! rest of its partition is handled without waiting; after the last delay
//! topic it goes to the dead-letter topic, naming where it came from.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{eventually_async, forwarder, next, write_all, Fixture};
use ekafka::config::ConsumerServerConfig;
use ekafka::server::{headers, ConsumerServer, FailureAction, HandlerError, HandlerFailure};
use ekafka::testing::unique_name;
use ekafka::{ConsumedMessage, Ekafka, Message};

/// One handler call: the message's value and topic, when, and its headers.
#[derive(Debug, Clone)]
struct Call {
    value: String,
    topic: String,
    at: Instant,
    headers: HashMap<String, String>,
}

impl Call {
    fn of(message: &ConsumedMessage) -> Self {
        Call {
            value: message.value_str().unwrap_or_default().to_string(),
            topic: message.topic().to_string(),
            at: Instant::now(),
            headers: message
                .headers()
                .map(|h| {
                    let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                    (h.key.to_string(), value.unwrap_or_default())
                })
                .collect(),
        }
    }
}

/// A component and server `s1` on the fixture with `server_keys`, its delay
/// topics made first (the embedded cluster cannot create topics through the
/// admin API; on Kafka the server would make them itself).
fn setup(fixture: &Fixture, delays: &[&str], server_keys: &str) -> (Ekafka, ConsumerServerConfig) {
    for delay in delays {
        let topic = format!("{}-retry-{delay}", fixture.topic);
        fixture
            .cluster
            .create_topic(&topic)
            .expect("delay topic made");
    }
    let list = delays
        .iter()
        .map(|d| format!("{d:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    common::server_setup(
        fixture,
        &format!("retries = 0\nretryTopics = [{list}]\n{server_keys}"),
        "",
    )
}

#[actix::test]
async fn a_message_failing_twice_passes_two_delay_topics_while_its_partition_goes_on() {
    let fixture = Fixture::new();
    let (kafka, config) = setup(&fixture, &["1s", "3s"], "retryProducer = \"p1\"");
    let mut messages = vec![Message::new("bad").with_key("b").with_partition(0)];
    messages.extend((0..10).map(|i| Message::new(format!("good-{i}")).with_partition(0)));
    write_all(&kafka, messages).await;

    let calls: Rc<RefCell<Vec<Call>>> = Rc::default();
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel::<String>();
    let handler_calls = Rc::clone(&calls);
    let (failures_tx, mut failures) = forwarder::<HandlerFailure>();
    let server = ConsumerServer::builder(&kafka, &config)
        .subscribe_failures(failures_tx)
        .on_each_message(move |message| {
            let calls = Rc::clone(&handler_calls);
            let done = done_tx.clone();
            async move {
                let call = Call::of(&message);
                let value = call.value.clone();
                let tries = {
                    let mut calls = calls.borrow_mut();
                    calls.push(call);
                    calls.iter().filter(|c| c.value == value).count()
                };
                if value == "bad" && tries < 3 {
                    return Err(HandlerError::recoverable(format!("not yet ({tries})")));
                }
                let _ = done.send(value);
                Ok(())
            }
        })
        .await
        .expect("server started");

    let mut handled = Vec::new();
    while handled.len() < 11 {
        handled.push(next(&mut done, "every message handled").await);
    }
    assert_eq!(
        handled.last().map(String::as_str),
        Some("bad"),
        "{handled:?}"
    );
    let calls = calls.borrow().clone();
    let bad: Vec<&Call> = calls.iter().filter(|c| c.value == "bad").collect();
    assert_eq!(bad.len(), 3, "{calls:?}");
    let retry_1s = format!("{}-retry-1s", fixture.topic);
    let retry_3s = format!("{}-retry-3s", fixture.topic);
    assert_eq!(
        bad.iter().map(|c| c.topic.as_str()).collect::<Vec<_>>(),
        [fixture.topic.as_str(), &retry_1s, &retry_3s]
    );
    // The delays were respected...
    let first_wait = bad[1].at - bad[0].at;
    let second_wait = bad[2].at - bad[1].at;
    assert!(first_wait >= Duration::from_secs(1), "{first_wait:?}");
    assert!(second_wait >= Duration::from_secs(3), "{second_wait:?}");
    // ...and the rest of its partition did not wait for them.
    for good in calls.iter().filter(|c| c.value != "bad") {
        assert!(good.at < bad[1].at, "{} waited for the retry", good.value);
    }
    // The last attempt knows where the message came from and what happened.
    let last = &bad[2].headers;
    assert_eq!(last[headers::ORIGINAL_TOPIC], fixture.topic);
    assert_eq!(last[headers::ORIGINAL_PARTITION], "0");
    assert_eq!(last[headers::ORIGINAL_OFFSET], "0");
    assert_eq!(last[headers::ATTEMPTS], "2");
    assert!(last[headers::ERROR].contains("not yet (2)"), "{last:?}");

    for (topic, delay) in [(&retry_1s, 1), (&retry_3s, 3)] {
        let failure = next(&mut failures, "the failure report").await;
        assert_eq!(
            failure.action,
            FailureAction::Delayed {
                topic: topic.clone(),
                delay: Duration::from_secs(delay)
            }
        );
    }
    // Everything handled, on the topic and the delay topics, is committed.
    server.group().commit_acknowledged().await.expect("commit");
    let committed = common::committed_offsets(
        fixture.cluster.bootstrap_servers().to_string(),
        group_id(&kafka),
        fixture.topic.clone(),
    )
    .await;
    assert_eq!(committed[0], Some(11));
    server.close().await.expect("clean close");
}

#[actix::test]
async fn a_delay_topics_partition_is_paused_until_its_message_is_due() {
    let fixture = Fixture::new();
    let (kafka, config) = setup(&fixture, &["4s"], "retryProducer = \"p1\"");
    write_all(&kafka, [Message::new("bad").with_partition(0)]).await;
    let tries = Rc::new(RefCell::new(0));
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let handler_tries = Rc::clone(&tries);
    let server = ConsumerServer::on_each_message(&kafka, &config, move |_message| {
        let tries = Rc::clone(&handler_tries);
        let done = done_tx.clone();
        async move {
            *tries.borrow_mut() += 1;
            if *tries.borrow() == 1 {
                return Err(HandlerError::recoverable("later"));
            }
            let _ = done.send(Instant::now());
            Ok(())
        }
    })
    .await
    .expect("server started");

    let retry_topic = format!("{}-retry-4s", fixture.topic);
    let group = server.group();
    let held = eventually_async("the delay topic's partition paused", || async {
        let status = group.status().await.ok()?;
        status
            .paused
            .iter()
            .find(|p| *p.topic == *retry_topic)
            .cloned()
    })
    .await;
    let paused_at = Instant::now();
    assert_eq!(*tries.borrow(), 1, "not handled again while held");
    let handled_at = next(&mut done, "handled when due").await;
    assert!(handled_at >= paused_at, "handled after the pause");
    eventually_async("the partition resumed", || async {
        let status = group.status().await.ok()?;
        (!status.paused.contains(&held)).then_some(())
    })
    .await;
    server.close().await.expect("clean close");
}

#[actix::test]
async fn after_the_last_delay_topic_the_message_is_dead_lettered_naming_its_origin() {
    let fixture = Fixture::new();
    let dead_letters = unique_name("dlq");
    fixture
        .cluster
        .create_topic(&dead_letters)
        .expect("dlq made");
    let (kafka, config) = setup(
        &fixture,
        &["500ms"],
        &format!("deadLetterProducer = \"p1\"\ndeadLetterTopic = {dead_letters:?}"),
    );
    write_all(&kafka, [Message::new("doomed").with_partition(1)]).await;
    let server = ConsumerServer::on_each_message(&kafka, &config, |_message| async {
        Err(HandlerError::recoverable("still broken"))
    })
    .await
    .expect("server started");

    let dead = common::read_back(
        fixture.cluster.bootstrap_servers().to_string(),
        dead_letters,
        1,
    )
    .await;
    let header = |name: &str| {
        dead[0]
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.clone())
            .map(|v| String::from_utf8(v).unwrap())
            .unwrap_or_else(|| panic!("header {name} on {:?}", dead[0]))
    };
    assert_eq!(dead[0].value.as_deref(), Some(b"doomed".as_slice()));
    assert_eq!(header(headers::ORIGINAL_TOPIC), fixture.topic);
    assert_eq!(header(headers::ORIGINAL_PARTITION), "1");
    assert_eq!(header(headers::ORIGINAL_OFFSET), "0");
    assert_eq!(
        header(headers::ATTEMPTS),
        "2",
        "one on the topic, one on the delay topic"
    );
    assert_eq!(header(headers::ERROR), "still broken");
    server.close().await.expect("clean close");
}

#[actix::test]
#[ignore = "needs Apache Kafka: ./e2e.sh runs it"]
async fn a_server_makes_its_missing_delay_topics_like_its_topic() {
    let fixture = Fixture::new();
    let (kafka, config) = common::server_setup(
        &fixture,
        "retryTopics = [\"1s\", \"1m\"]\nretryProducer = \"p1\"",
        "",
    );
    let server = ConsumerServer::on_each_message(&kafka, &config, |_message| async { Ok(()) })
        .await
        .expect("server started");
    let admin = kafka.admin().expect("admin");
    for delay in ["1s", "1m"] {
        let topic = format!("{}-retry-{delay}", fixture.topic);
        let described = admin
            .describe_topic(&topic)
            .await
            .expect("made by the server");
        assert_eq!(described.partitions.len(), 3, "{topic}");
    }
    server.close().await.expect("clean close");
}

#[actix::test]
async fn a_group_already_running_without_the_delay_topics_is_refused_clearly() {
    let fixture = Fixture::new();
    let (kafka, config) = setup(&fixture, &["1s"], "retryProducer = \"p1\"");
    let group = kafka.consumer_group("cg1").expect("group started first");
    let error = ConsumerServer::on_each_message(&kafka, &config, |_message| async { Ok(()) })
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("runs already") && text.contains(&format!("{}-retry-1s", fixture.topic)),
        "{text}"
    );
    group.close().await.expect("closed");
}

#[test]
fn bad_retry_topics_are_refused_naming_the_key() {
    let read = |keys: &str| {
        ConsumerServerConfig::from_toml_str(
            &format!("[kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\n{keys}\n"),
            "kafkaConsumerServers.s1",
        )
    };
    for keys in [
        "retryTopics = []\nretryProducer = \"p1\"",
        "retryTopics = [\"soon\"]\nretryProducer = \"p1\"",
        "retryTopics = [\"0s\"]\nretryProducer = \"p1\"",
    ] {
        let error = read(keys).unwrap_err();
        assert_eq!(
            error.path(),
            "kafkaConsumerServers.s1.retryTopics",
            "{keys}: {error}"
        );
        assert!(
            error.to_string().contains("durations above zero"),
            "{error}"
        );
    }
    let error = read("retryTopics = [\"10s\"]").unwrap_err();
    assert_eq!(
        error.path(),
        "kafkaConsumerServers.s1.retryProducer",
        "{error}"
    );
    let error = read("retryProducer = \"p1\"").unwrap_err();
    assert_eq!(
        error.path(),
        "kafkaConsumerServers.s1.retryTopics",
        "{error}"
    );
    let config = read("retryTopics = [\"10s\", \"1m\"]\ndeadLetterProducer = \"p1\"").unwrap();
    let delays = config.retry_topics.expect("set").delays;
    assert_eq!(
        delays
            .iter()
            .map(|d| (d.name.as_str(), d.delay))
            .collect::<Vec<_>>(),
        [
            ("10s", Duration::from_secs(10)),
            ("1m", Duration::from_secs(60))
        ]
    );
}

/// The `groupID` of group `cg1`.
fn group_id(kafka: &Ekafka) -> String {
    kafka.config().consumer_groups["cg1"].group_id.clone()
}
