//! Consumer servers in each-message mode: retries with backoff per partition,
//! dead-lettering, and stopping a partition (uncommitted) without a dead-letter topic.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use common::{forwarder, group_config, next, produce, Fixture};
use ekafka::config::ConsumerServerConfig;
use ekafka::server::{headers, ConsumerServer, FailureAction, HandlerError, HandlerFailure};
use ekafka::testing::unique_name;
use ekafka::{ConsumedMessage, Ekafka};

fn setup(fixture: &Fixture, server_keys: &str) -> (Ekafka, ConsumerServerConfig) {
    common::server_setup(fixture, server_keys, "")
}

type Seen = tokio::sync::mpsc::UnboundedSender<(ConsumedMessage, Instant)>;

#[actix::test]
async fn a_recoverable_failure_is_retried_with_growing_delays_while_other_partitions_flow() {
    let fixture = Fixture::new();
    let (kafka, config) = setup(&fixture, "retries = 3\nretryBackoff = \"200ms\"");
    produce(&kafka, "m", 30).await;

    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<(ConsumedMessage, Instant)>();
    let (first_failure_tx, mut first_failure) = tokio::sync::mpsc::unbounded_channel::<()>();
    let attempts: Rc<RefCell<Vec<Instant>>> = Rc::default();
    let handler_attempts = Rc::clone(&attempts);
    let seen_tx: Seen = seen_tx;
    // "m-0" fails recoverably three times and succeeds on the last retry.
    let server =
        ConsumerServer::on_each_message(&kafka, &config, move |message: ConsumedMessage| {
            let attempts = Rc::clone(&handler_attempts);
            let seen = seen_tx.clone();
            let first_failure = first_failure_tx.clone();
            async move {
                if message.value_str() == Some("m-0") {
                    attempts.borrow_mut().push(Instant::now());
                    if attempts.borrow().len() == 1 {
                        let _ = first_failure.send(());
                    }
                    if attempts.borrow().len() < 4 {
                        return Err(HandlerError::recoverable("not yet"));
                    }
                }
                let _ = seen.send((message, Instant::now()));
                Ok(())
            }
        })
        .await
        .unwrap();
    let (failures_tx, mut failures) = forwarder::<HandlerFailure>();
    server.subscribe_failures(failures_tx).await.unwrap();

    // While m-0 waits for its retries, more messages arrive on every partition.
    next(&mut first_failure, "m-0's first failure").await;
    produce(&kafka, "late", 30).await;

    let mut handled = Vec::new();
    while handled.len() < 60 {
        handled.push(next(&mut seen, "every message handled").await);
    }
    let attempts = attempts.borrow().clone();
    assert_eq!(attempts.len(), 4, "first try plus 3 retries");
    let delays: Vec<_> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        delays.windows(2).all(|d| d[1] >= d[0]),
        "delays grow: {delays:?}"
    );
    assert!(
        delays[0] >= std::time::Duration::from_millis(100),
        "backoff respected: {delays:?}"
    );

    // The other partitions kept being handled during the retries.
    let poisoned = handled
        .iter()
        .find(|(m, _)| m.value_str() == Some("m-0"))
        .unwrap();
    let others_meanwhile = handled
        .iter()
        .filter(|(m, at)| {
            m.partition() != poisoned.0.partition() && *at > attempts[0] && *at < attempts[3]
        })
        .count();
    assert!(
        others_meanwhile > 0,
        "other partitions flowed during the retries"
    );

    // Success on the last retry commits it.
    let committed = server.group().commit_acknowledged().await.unwrap();
    let status = server.group().status().await.unwrap();
    let offset = status
        .committed
        .iter()
        .find(|c| c.partition.partition == poisoned.0.partition())
        .map(|c| c.offset);
    assert!(
        offset > Some(poisoned.0.offset()),
        "{committed:?} / {status:?}"
    );
    let reported = next(&mut failures, "a failure report").await;
    assert!(matches!(reported.action, FailureAction::Retrying(_)));
    server.close().await.unwrap();
}

#[actix::test]
async fn a_fatal_failure_goes_to_the_dead_letter_topic_and_consumption_continues() {
    let fixture = Fixture::new();
    let dlq = unique_name("dlq");
    fixture.cluster.create_topic(&dlq).unwrap();
    let (kafka, config) = setup(
        &fixture,
        &format!("deadLetterProducer = \"p1\"\ndeadLetterTopic = {dlq:?}"),
    );
    produce(&kafka, "m", 12).await;

    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<String>();
    let server =
        ConsumerServer::on_each_message(&kafka, &config, move |message: ConsumedMessage| {
            let seen = seen_tx.clone();
            async move {
                let value = message.value_str().unwrap_or_default().to_string();
                if value == "m-3" {
                    return Err(HandlerError::fatal("cannot parse m-3"));
                }
                if value == "m-4" {
                    panic!("handler bug on m-4");
                }
                let _ = seen.send(value);
                Ok(())
            }
        })
        .await
        .unwrap();

    let mut handled = std::collections::HashSet::new();
    while handled.len() < 10 {
        handled.insert(next(&mut seen, "the other messages").await);
    }
    assert!(!handled.contains("m-3") && !handled.contains("m-4"));

    let dead = common::read_back(
        fixture.cluster.bootstrap_servers().to_string(),
        dlq.clone(),
        2,
    )
    .await;
    let mut by_value: Vec<_> = dead
        .iter()
        .map(|m| (String::from_utf8(m.value.clone().unwrap()).unwrap(), m))
        .collect();
    by_value.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        by_value.iter().map(|(v, _)| v.as_str()).collect::<Vec<_>>(),
        ["m-3", "m-4"]
    );
    let header = |m: &common::ReadMessage, key: &str| {
        m.headers
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.clone())
            .map(|v| String::from_utf8(v).unwrap())
    };
    for (value, m) in &by_value {
        assert_eq!(
            header(m, headers::ORIGINAL_TOPIC).as_deref(),
            Some(fixture.topic.as_str()),
            "{value}"
        );
        assert!(
            header(m, headers::ORIGINAL_PARTITION).is_some()
                && header(m, headers::ORIGINAL_OFFSET).is_some()
        );
        assert_eq!(
            header(m, headers::ATTEMPTS).as_deref(),
            Some("1"),
            "fatal: no retries"
        );
    }
    assert_eq!(
        header(by_value[0].1, headers::ERROR).as_deref(),
        Some("cannot parse m-3")
    );
    assert!(
        header(by_value[1].1, headers::ERROR)
            .unwrap()
            .contains("handler bug on m-4"),
        "panics are caught"
    );

    // Dead-lettered messages count as handled: everything is committed.
    server.group().commit_acknowledged().await.unwrap();
    let status = server.group().status().await.unwrap();
    assert_eq!(status.committed.iter().map(|c| c.offset).sum::<i64>(), 12);
    server.close().await.unwrap();
}

#[actix::test]
async fn a_handler_panic_without_dead_letter_topic_restarts_its_partition_which_handles_the_message_again(
) {
    let fixture = Fixture::new();
    let (kafka, config) = setup(&fixture, "restartBackoff = \"50ms\"");
    produce(&kafka, "m", 12).await;

    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<ConsumedMessage>();
    let panicked = Rc::new(std::cell::Cell::new(false));
    let server =
        ConsumerServer::on_each_message(&kafka, &config, move |message: ConsumedMessage| {
            let (seen, panicked) = (seen_tx.clone(), Rc::clone(&panicked));
            async move {
                if message.value_str() == Some("m-3") && !panicked.replace(true) {
                    panic!("handler bug on m-3");
                }
                let _ = seen.send(message);
                Ok(())
            }
        })
        .await
        .unwrap();
    let (failures_tx, mut failures) = forwarder::<HandlerFailure>();
    server.subscribe_failures(failures_tx).await.unwrap();

    let mut handled: Vec<ConsumedMessage> = Vec::new();
    let distinct = |handled: &[ConsumedMessage]| {
        handled
            .iter()
            .map(|m| m.value_str().unwrap().to_string())
            .collect::<std::collections::HashSet<_>>()
    };
    while distinct(&handled).len() < 12 {
        handled.push(
            next(
                &mut seen,
                "every message, m-3 after its partition's restart",
            )
            .await,
        );
    }
    // One more message per partition: anything delivered twice would come before it.
    produce(&kafka, "fence", 3).await;
    while distinct(&handled)
        .iter()
        .filter(|v| v.starts_with("fence"))
        .count()
        < 3
    {
        handled.push(next(&mut seen, "the fence messages").await);
    }

    let failure = next(&mut failures, "the panic's report").await;
    assert_eq!(failure.message.value_str(), Some("m-3"));
    assert_eq!(failure.action, FailureAction::Stopped);
    assert!(
        failure.error.reason().contains("handler bug on m-3"),
        "{failure:?}"
    );
    // Only the partition's handling restarted; the member stayed in its group.
    assert_eq!(server.restarts(), 0);
    let status = server.status().await.unwrap();
    assert_eq!(status.partition_restarts, 1);
    assert!(status.stopped.is_empty(), "{status:?}");
    assert_eq!(
        handled.len(),
        15,
        "each message handled once: {:?}",
        distinct(&handled)
    );
    let partition_of_m3: Vec<_> = handled
        .iter()
        .filter(|m| {
            m.partition() == failure.message.partition() && m.topic() == failure.message.topic()
        })
        .map(|m| m.offset())
        .collect();
    assert!(
        partition_of_m3.windows(2).all(|w| w[0] < w[1]),
        "in order on m-3's partition: {partition_of_m3:?}"
    );
    server.close().await.unwrap();
}

#[actix::test]
async fn past_the_restart_limit_the_server_escalates_leaving_the_message_uncommitted() {
    let fixture = Fixture::new();
    let (kafka, config) = setup(
        &fixture,
        "maxRestarts = 1\nrestartBackoff = \"10ms\"\npartitionPastLimit = \"escalate\"",
    );
    produce(&kafka, "m", 12).await;

    let server =
        ConsumerServer::on_each_message(&kafka, &config, |message: ConsumedMessage| async move {
            if message.value_str() == Some("m-3") {
                return Err(HandlerError::fatal("cannot handle m-3"));
            }
            Ok(())
        })
        .await
        .unwrap();
    let (failures_tx, mut failures) = forwarder::<HandlerFailure>();
    server.subscribe_failures(failures_tx).await.unwrap();

    let ended = tokio::time::timeout(common::WAIT, server.wait())
        .await
        .expect("the server escalates");
    let failure = next(&mut failures, "the first failure").await;
    let again = next(&mut failures, "the failure after the restart").await;
    assert_eq!(
        (failure.message.offset(), again.message.offset()),
        (1, 1),
        "m-3 twice"
    );
    match ended {
        Err(ekafka::Error::GaveUp {
            kind,
            name,
            restarts,
            reason,
        }) => {
            assert_eq!(
                (kind, name.as_str(), restarts),
                ("consumer server", "s1", 1)
            );
            assert!(
                reason.contains("stopped at offset 1") && reason.contains("cannot handle m-3"),
                "{reason}"
            );
        }
        other => panic!("expected the escalation, got {other:?}"),
    }
    let escalation = kafka.escalation().expect("recorded on the component");
    assert_eq!(escalation.name, "s1");

    // Nothing past m-3 was committed on its partition.
    let committed = common::committed_offsets(
        fixture.cluster.bootstrap_servers().to_string(),
        kafka.config().consumer_groups["cg1"].group_id.clone(),
        fixture.topic.clone(),
    )
    .await;
    assert_eq!(
        committed[failure.message.partition() as usize],
        Some(1),
        "{committed:?}"
    );
}

/// The Go suite's consumer-server scenarios: in each of the three modes the
/// server receives a produced message.
#[actix::test]
async fn each_mode_receives_a_produced_message() {
    let fixture = Fixture::new();
    let group_id = unique_name("group");
    let cg1_id = unique_name("group");
    let text = format!(
        "{}\n[kafka.consumers.c1]\ntopic = {:?}\ngroupID = {:?}\nmaxWait = \"100ms\"\n{}\
         [kafkaConsumerServers.s1]\nconsumerName = \"c1\"\nconsumerGroupName = \"cg1\"\n",
        group_config(&fixture, &cg1_id, "drainTimeout = \"500ms\""),
        fixture.topic,
        group_id,
        common::group_protocol_keys(),
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    let config = ConsumerServerConfig::from_toml_str(&text, "kafkaConsumerServers.s1").unwrap();
    let random = unique_name("random");
    produce(&kafka, &random, 1).await;
    let expected = format!("{random}-0");

    // Each message.
    let (each, mut rx) = common::value_reporting_server(&kafka, &config).await;
    assert_eq!(next(&mut rx, "each-message mode").await, expected);
    each.close().await.unwrap();

    // On start: the function drives the consumer until shutdown.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let manual = ConsumerServer::on_start(&kafka, &config, move |consumer, mut shutdown| {
        let tx = tx.clone();
        async move {
        loop {
            tokio::select! {
                _ = shutdown.requested() => break,
                message = consumer.fetch() => {
                    let message = message.map_err(HandlerError::fatal)?;
                    consumer.commit(std::slice::from_ref(&message)).await.map_err(HandlerError::fatal)?;
                    let _ = tx.send(message.value_str().unwrap().to_string());
                }
            }
        }
        consumer.close().await.map_err(HandlerError::fatal)
        }
    })
    .unwrap();
    assert_eq!(next(&mut rx, "on-start mode").await, expected);
    manual.shutdown().await.unwrap();

    // On consumer-group start: the function polls the group; returning ends it.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    // A fresh group for it: the each-message server committed the message in cg1.
    let kafka_group = Ekafka::from_toml_str(&text.replace(&cg1_id, &unique_name("group")), "kafka")
        .unwrap()
        .build()
        .unwrap();
    let manual =
        ConsumerServer::on_consumer_group_start(&kafka_group, &config, move |group, shutdown| {
            let tx = tx.clone();
            async move {
                while !shutdown.is_requested() {
                    if let ekafka::Event::Message(message) =
                        group.poll().await.map_err(HandlerError::fatal)?
                    {
                        group
                            .commit(std::slice::from_ref(&message))
                            .await
                            .map_err(HandlerError::fatal)?;
                        let _ = tx.send(message.value_str().unwrap().to_string());
                        break;
                    }
                }
                group.close().await.map_err(HandlerError::fatal)
            }
        })
        .unwrap();
    assert_eq!(
        next(&mut rx, "on-consumer-group-start mode").await,
        expected
    );
    manual.wait().await.unwrap();
}

#[actix::test]
async fn debug_prints_each_handled_message_and_its_result() {
    let fixture = Fixture::new();
    let text = format!(
        "{}\n[kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\ndebug = true\nretryBackoff = \"10ms\"\n",
        group_config(&fixture, &unique_name("group"), "")
    );
    let output = common::Captured::default();
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .with_debug_output(ekafka::interceptor::DebugInterceptor::to_writer(
            output.clone(),
        ))
        .build()
        .unwrap();
    let config = ConsumerServerConfig::from_toml_str(&text, "kafkaConsumerServers.s1").unwrap();
    produce(&kafka, "m", 3).await;

    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<String>();
    let failed_once = Rc::new(std::cell::Cell::new(false));
    let server =
        ConsumerServer::on_each_message(&kafka, &config, move |message: ConsumedMessage| {
            let (seen, failed_once) = (seen_tx.clone(), Rc::clone(&failed_once));
            async move {
                let value = message.value_str().unwrap().to_string();
                if value == "m-2" && !failed_once.replace(true) {
                    return Err(HandlerError::recoverable("database busy"));
                }
                let _ = seen.send(value);
                Ok(())
            }
        })
        .await
        .unwrap();
    for _ in 0..3 {
        next(&mut seen, "every message handled").await;
    }
    server.close().await.unwrap();

    let printed = output.text();
    let lines: Vec<&str> = printed
        .lines()
        .filter(|l| l.contains("consumer server s1 HANDLER"))
        .collect();
    assert_eq!(
        lines.len(),
        4,
        "three successes and one failure:\n{printed}"
    );
    for value in ["m-0", "m-1", "m-2"] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("value=\"{value}\"")) && l.ends_with("-> ok")),
            "{value} printed as handled:\n{printed}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("value=\"m-2\"") && l.ends_with("-> recoverable: database busy")),
        "the failure printed with its reason:\n{printed}"
    );
}

#[actix::test]
async fn failures_subscribed_before_the_start_include_the_first_message() {
    let fixture = Fixture::new();
    let (kafka, config) = common::server_setup(&fixture, "retryBackoff = \"10ms\"", "");
    // Already there when the server starts: its first handling may fail
    // before a subscription made after the start would be in place.
    produce(&kafka, "early", 1).await;
    let (failures_tx, mut failures) = forwarder::<HandlerFailure>();
    let attempts = std::rc::Rc::new(std::cell::Cell::new(0));
    let server = ConsumerServer::builder(&kafka, &config)
        .subscribe_failures(failures_tx)
        .on_each_message(move |_message| {
            let attempts = std::rc::Rc::clone(&attempts);
            async move {
                attempts.set(attempts.get() + 1);
                match attempts.get() {
                    1 => Err(HandlerError::recoverable("not yet")),
                    _ => Ok(()),
                }
            }
        })
        .await
        .unwrap();
    let failure = next(&mut failures, "the first message's failure").await;
    assert_eq!(failure.message.value_str(), Some("early-0"));
    assert_eq!(failure.attempts, 1);
    assert!(
        matches!(failure.action, FailureAction::Retrying(_)),
        "{failure:?}"
    );
    server.close().await.unwrap();
}

#[actix::test]
async fn a_server_of_a_group_not_configured_fails_naming_the_groups_there_are() {
    let fixture = Fixture::new();
    let (kafka, _) = setup(&fixture, "");
    let config = ConsumerServerConfig::from_toml_str(
        "[kafkaConsumerServers.s2]\nconsumerGroupName = \"nope\"\n",
        "kafkaConsumerServers.s2",
    )
    .unwrap();
    match ConsumerServer::on_each_message(&kafka, &config, |_| async { Ok(()) }).await {
        Err(error @ ekafka::Error::UnknownClient { .. }) => {
            assert!(error.is_config(), "{error}");
            assert!(error.to_string().contains("\"nope\""), "{error}");
            assert!(error.to_string().contains("cg1"), "{error}");
        }
        other => panic!("expected an unknown group, got {other:?}"),
    }
}
