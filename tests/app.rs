//! The App: graceful shutdown with handlers in flight, and failures past a
//! restart limit escalating to it (from a server and from a producer).

mod common;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet};
use std::rc::Rc;
use std::time::Duration;

use common::{group_and_producer_config, next, produce, server_setup, Fixture, WAIT};
use ekafka::config::ConsumerServerConfig;
use ekafka::server::HandlerError;
use ekafka::testing::unique_name;
use ekafka::{App, ConsumedMessage, Ekafka, Error};

#[actix::test]
async fn graceful_shutdown_lets_handlers_in_flight_finish_and_commits_them() {
    let fixture = Fixture::new();
    let (kafka, config) = server_setup(&fixture, "", "");
    produce(&kafka, "m", 30).await;

    // Every handler waits at the gate, so one message per partition is in flight.
    let gate = Rc::new(tokio::sync::Semaphore::new(0));
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel::<ConsumedMessage>();
    let finished: Rc<RefCell<Vec<String>>> = Rc::default();
    let app = App::new(kafka.clone())
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(5))
        .each_message(config.clone(), {
            let (gate, finished) = (Rc::clone(&gate), Rc::clone(&finished));
            move |message: ConsumedMessage| {
                let (gate, finished, started) =
                    (Rc::clone(&gate), Rc::clone(&finished), started_tx.clone());
                async move {
                    let _ = started.send(message.clone());
                    gate.acquire().await.expect("gate open").forget();
                    finished
                        .borrow_mut()
                        .push(message.value_str().unwrap().to_string());
                    Ok(())
                }
            }
        });
    let handle = app.handle();
    let serving = actix::spawn(app.serve());

    let mut in_flight = BTreeSet::new();
    while in_flight.len() < 3 {
        let message = next(&mut started, "a handler in flight on each partition").await;
        in_flight.insert(message.value_str().unwrap().to_string());
    }
    handle.shutdown();
    // Exactly one pass for each handler in flight (the gate is fair): a message
    // started after the shutdown request would wait until the deadline, unhandled.
    gate.add_permits(3);
    let served = tokio::time::timeout(WAIT, serving)
        .await
        .expect("the App stops")
        .expect("serve did not panic");
    assert!(served.is_ok(), "{served:?}");
    let finished: BTreeSet<String> = finished.borrow().iter().cloned().collect();
    assert_eq!(finished, in_flight, "the handlers in flight finished");

    // A new server on the same group gets everything else, and nothing handled.
    let (server, mut seen) = common::value_reporting_server(&kafka, &config).await;
    let expected: HashSet<String> = (0..30)
        .map(|i| format!("m-{i}"))
        .filter(|v| !finished.contains(v))
        .collect();
    let mut received = HashSet::new();
    // Per partition in order: a message handled before would come first.
    for _ in 0..expected.len() {
        let value = next(
            &mut seen,
            &format!("the messages not handled before (got {received:?} so far)"),
        )
        .await;
        assert!(!finished.contains(&value), "{value} was handled twice");
        assert!(received.insert(value.clone()), "{value} came twice");
    }
    assert_eq!(received, expected);
    server.close().await.unwrap();
}

#[actix::test]
async fn a_server_past_its_restart_limit_makes_the_app_return_the_cause() {
    let fixture = Fixture::new();
    let (kafka, config) = server_setup(
        &fixture,
        "maxRestarts = 0\npartitionPastLimit = \"escalate\"",
        "",
    );
    produce(&kafka, "m", 6).await;

    let app = App::new(kafka.clone()).handle_signals(false).each_message(
        config,
        |message: ConsumedMessage| async move {
            match message.value_str() {
                Some("m-1") => Err(HandlerError::fatal("m-1 is malformed")),
                _ => Ok(()),
            }
        },
    );
    let served = tokio::time::timeout(WAIT, app.serve())
        .await
        .expect("the App stops by itself");
    let error = served.expect_err("the escalation is the App's error");
    assert!(
        matches!(&error, Error::GaveUp { kind: "consumer server", name, restarts: 0, .. } if name == "s1"),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("\"s1\"") && text.contains("m-1 is malformed") && text.contains("offset 0"),
        "the error names the server, the message and why: {text}"
    );
}

#[actix::test]
async fn a_producer_past_its_restart_limit_from_toml_makes_the_app_return_the_cause() {
    let fixture = Fixture::new();
    let (kafka, config) = server_setup(&fixture, "", "maxRestarts = 0");
    assert_eq!(
        kafka.config().producers["p1"].restart.max_restarts,
        Some(0),
        "read from [kafka.producers.p1]"
    );
    let app = App::new(kafka.clone())
        .handle_signals(false)
        .each_message(config, |_message: ConsumedMessage| async move { Ok(()) });
    let serving = actix::spawn(app.serve());

    kafka
        .producer("p1")
        .unwrap()
        .simulate_fatal_error("test-induced failure")
        .await
        .unwrap();
    let served = tokio::time::timeout(WAIT, serving)
        .await
        .expect("the App stops by itself")
        .expect("serve did not panic");
    match served {
        Err(Error::GaveUp {
            kind: "producer",
            name,
            restarts: 0,
            reason,
        }) => {
            assert_eq!(name, "p1");
            assert!(reason.contains("test-induced failure"), "{reason}");
        }
        other => panic!("expected the producer's escalation, got {other:?}"),
    }
}

/// A handler actor: forwards each message's value, succeeds.
struct Recorder(tokio::sync::mpsc::UnboundedSender<String>);

impl actix::Actor for Recorder {
    type Context = actix::Context<Self>;
}

impl actix::Handler<ekafka::server::HandleMessage> for Recorder {
    type Result = Result<(), HandlerError>;

    fn handle(
        &mut self,
        ekafka::server::HandleMessage(message): ekafka::server::HandleMessage,
        _: &mut actix::Context<Self>,
    ) -> Self::Result {
        let _ = self.0.send(message.value_str().unwrap().to_string());
        Ok(())
    }
}

#[actix::test]
async fn several_servers_run_in_one_app_with_a_closure_or_an_actor_as_handler() {
    use actix::Actor;
    let fixture = Fixture::new();
    let text = format!(
        "{}\n[kafka.consumerGroups.cg2]\ngroupID = {:?}\ntopic = {:?}\nmaxWait = \"100ms\"\n\
         heartbeatInterval = \"1s\"\nsessionTimeout = \"6s\"\n\
         [kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\n\
         [kafkaConsumerServers.s2]\nconsumerGroupName = \"cg2\"\n",
        group_and_producer_config(&fixture, &unique_name("group"), "", ""),
        unique_name("group"),
        fixture.topic,
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    let s1 = ConsumerServerConfig::from_toml_str(&text, "kafkaConsumerServers.s1").unwrap();
    let s2 = ConsumerServerConfig::from_toml_str(&text, "kafkaConsumerServers.s2").unwrap();
    produce(&kafka, "m", 9).await;

    let (by_closure_tx, mut by_closure) = tokio::sync::mpsc::unbounded_channel::<String>();
    let (by_actor_tx, mut by_actor) = tokio::sync::mpsc::unbounded_channel::<String>();
    let app = App::new(kafka.clone())
        .handle_signals(false)
        .each_message(s1, move |message: ConsumedMessage| {
            let seen = by_closure_tx.clone();
            async move {
                let _ = seen.send(message.value_str().unwrap().to_string());
                Ok(())
            }
        })
        .each_message_actor(s2, Recorder(by_actor_tx).start().recipient());
    let handle = app.handle();
    let serving = actix::spawn(app.serve());

    let expected: HashSet<String> = (0..9).map(|i| format!("m-{i}")).collect();
    for (seen, server) in [(&mut by_closure, "s1"), (&mut by_actor, "s2")] {
        let mut received = HashSet::new();
        while received.len() < expected.len() {
            received.insert(next(seen, server).await);
        }
        assert_eq!(received, expected, "{server} got every message");
    }
    handle.shutdown();
    let served = tokio::time::timeout(WAIT, serving)
        .await
        .expect("the App stops")
        .expect("serve did not panic");
    assert!(served.is_ok(), "{served:?}");
}

/// An App that cannot commit what its servers handled does not report a clean
/// shutdown: `serve` (and so `run`, and the process's exit status) fails with
/// each partition's offset left uncommitted.
#[actix::test]
async fn a_shutdown_that_cannot_commit_fails_naming_what_was_left_uncommitted() {
    let fixture = Fixture::new();
    let Some(cluster) = fixture.cluster.embedded() else {
        // On Apache Kafka the same close path runs in tests/broker_loss.rs.
        return;
    };
    // Nothing is committed before the shutdown.
    let group_keys = "commitInterval = \"1h\"\ndrainTimeout = \"500ms\"\ntimeout = \"2s\"";
    let text = format!(
        "{}\n[kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\n",
        group_and_producer_config(&fixture, &unique_name("group"), group_keys, "")
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    let config = ConsumerServerConfig::from_toml_str(&text, "kafkaConsumerServers.s1").unwrap();
    produce(&kafka, "m", 30).await;
    let (handled_tx, mut handled) = tokio::sync::mpsc::unbounded_channel::<i32>();
    let app = App::new(kafka)
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(5))
        .each_message(config, move |message: ConsumedMessage| {
            let handled = handled_tx.clone();
            async move {
                let _ = handled.send(message.partition());
                Ok(())
            }
        });
    let handle = app.handle();
    let serving = actix::spawn(app.serve());
    let mut per_partition = std::collections::BTreeMap::new();
    for _ in 0..30 {
        *per_partition
            .entry(next(&mut handled, "the 30 messages handled").await)
            .or_insert(0i64) += 1;
    }
    for broker in 1..=3 {
        cluster.broker_down(broker).unwrap();
    }
    handle.shutdown();
    let served = tokio::time::timeout(WAIT, serving)
        .await
        .expect("the App stops")
        .expect("serve did not panic");
    let error = served.expect_err("the shutdown could not commit");
    assert_eq!(
        common::uncommitted_offsets(&error),
        per_partition,
        "{error}"
    );
}
