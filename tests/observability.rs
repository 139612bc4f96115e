//! The App's HTTP endpoint: `/metrics` scraped with a real HTTP client and
//! parsed as Prometheus text. Counters move as messages are produced,
//! handled, retried and dead-lettered; lag rises while a handler holds a
//! message and falls back to 0 once it is handled.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use common::{group_and_producer_config, next, write_all, Fixture, WAIT};
use ekafka::config::ConsumerServerConfig;
use ekafka::server::HandlerError;
use ekafka::testing::unique_name;
use ekafka::{App, ConsumedMessage, Ekafka, Message};
use prometheus_parse::{Scrape, Value};

/// One scrape of `/metrics`, parsed.
async fn scrape(client: &awc::Client, address: SocketAddr) -> Scrape {
    let mut response = client
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .expect("GET /metrics answers");
    assert!(response.status().is_success(), "{}", response.status());
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let body = response.body().await.expect("the body arrives");
    let text = String::from_utf8(body.to_vec()).expect("UTF-8 text");
    Scrape::parse(text.lines().map(|line| Ok(line.to_string()))).expect("Prometheus text")
}

/// The sum of the samples of `metric` whose labels include `labels`.
fn sum(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// Scrapes until `holds` is true of a scrape (within `WAIT`), and returns it.
async fn scrape_until(
    client: &awc::Client,
    address: SocketAddr,
    what: &str,
    holds: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let mut every = tokio::time::interval(Duration::from_millis(50));
    let mut last = None;
    let found = tokio::time::timeout(WAIT, async {
        loop {
            every.tick().await;
            let scrape = scrape(client, address).await;
            if holds(&scrape) {
                return scrape;
            }
            last = Some(scrape);
        }
    })
    .await;
    found.unwrap_or_else(|_| {
        let names: std::collections::BTreeSet<_> = last
            .iter()
            .flat_map(|s| s.samples.iter().map(|s| s.metric.clone()))
            .collect();
        panic!("timed out after {WAIT:?} waiting for {what}; metrics seen: {names:?}")
    })
}

/// Runs `app`, and waits (within `WAIT`) for its endpoint's address.
async fn serve(
    app: App,
) -> (
    ekafka::AppHandle,
    tokio::task::JoinHandle<Result<(), ekafka::Error>>,
    SocketAddr,
) {
    let handle = app.handle();
    let serving = actix::spawn(app.serve());
    let address = tokio::time::timeout(WAIT, handle.endpoint())
        .await
        .expect("the App serves its endpoint");
    (handle, serving, address)
}

/// A component serving its endpoint on a port of the system's choice, with
/// `observability_keys`, group `cg1` (with `group_keys`) and server `s1`
/// (with `server_keys`) driving it.
fn observed_setup(
    fixture: &Fixture,
    observability_keys: &str,
    group_keys: &str,
    server_keys: &str,
) -> (Ekafka, ConsumerServerConfig) {
    let text = format!(
        "{}\n[kafka.observability]\naddress = \"127.0.0.1:0\"\n{observability_keys}\n\
         [kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\n{server_keys}\n",
        group_and_producer_config(
            fixture,
            &unique_name("group"),
            &format!("drainTimeout = \"500ms\"\n{group_keys}"),
            ""
        )
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    let server = ConsumerServerConfig::from_toml_str(&text, "kafkaConsumerServers.s1").unwrap();
    (kafka, server)
}

#[actix::test]
async fn metrics_move_with_produced_handled_retried_and_dead_lettered_messages_and_lag() {
    let fixture = Fixture::new();
    let dlq = unique_name("dlq");
    fixture.cluster.create_topic(&dlq).unwrap();
    let (kafka, server) = observed_setup(
        &fixture,
        "",
        "readLagInterval = \"100ms\"",
        &format!("retryBackoff = \"10ms\"\ndeadLetterProducer = \"p1\"\ndeadLetterTopic = {dlq:?}"),
    );

    // "retry" fails once and then succeeds, "dead" fails for good, "hold"
    // waits for the gate; the rest succeed.
    let gate = Rc::new(tokio::sync::Semaphore::new(0));
    let (held_tx, mut held) = tokio::sync::mpsc::unbounded_channel::<()>();
    let retried = Rc::new(std::cell::Cell::new(false));
    let app = App::new(kafka.clone())
        .handle_signals(false)
        .each_message(server, {
            let (gate, retried) = (Rc::clone(&gate), Rc::clone(&retried));
            move |message: ConsumedMessage| {
                let (gate, retried, held) =
                    (Rc::clone(&gate), Rc::clone(&retried), held_tx.clone());
                async move {
                    match message.value_str() {
                        Some("retry") if !retried.replace(true) => {
                            Err(HandlerError::recoverable("not yet"))
                        }
                        Some("dead") => Err(HandlerError::fatal("cannot handle it")),
                        Some("hold") => {
                            let _ = held.send(());
                            gate.acquire().await.expect("gate open").forget();
                            Ok(())
                        }
                        _ => Ok(()),
                    }
                }
            }
        });
    let (handle, serving, address) = serve(app).await;
    let client = awc::Client::default();

    let topic = fixture.topic.as_str();
    let messages = (0..10)
        .map(|i| Message::new(format!("ok-{i}")).with_key(format!("{i}")))
        .chain([
            Message::new("retry").with_key("r"),
            Message::new("dead").with_key("d"),
        ]);
    write_all(&kafka, messages).await;

    let handled = |result| [("client", "s1"), ("topic", topic), ("result", result)];
    let scrape = scrape_until(&client, address, "every message handled", |s| {
        sum(s, "ekafka_handler_messages_total", &handled("ok")) >= 11.0
            && sum(
                s,
                "ekafka_handler_messages_total",
                &handled("dead_lettered"),
            ) >= 1.0
            // The gauges follow the assignment on the member's next pass.
            && sum(s, "ekafka_consumer_assigned_partitions", &[("client", "cg1")]) == 3.0
    })
    .await;
    let written = [("client", "p1"), ("topic", topic), ("result", "ok")];
    assert_eq!(
        sum(&scrape, "ekafka_producer_messages_total", &written),
        12.0
    );
    let dead_letter = [("client", "p1"), ("topic", dlq.as_str()), ("result", "ok")];
    assert_eq!(
        sum(&scrape, "ekafka_producer_messages_total", &dead_letter),
        1.0,
        "the dead letter's write counts on its own topic"
    );
    assert_eq!(
        sum(&scrape, "ekafka_handler_messages_total", &handled("ok")),
        11.0
    );
    assert_eq!(
        sum(
            &scrape,
            "ekafka_handler_messages_total",
            &handled("retried")
        ),
        1.0
    );
    assert_eq!(
        sum(&scrape, "ekafka_handler_messages_total", &handled("failed")),
        0.0
    );
    assert_eq!(
        sum(
            &scrape,
            "ekafka_consumer_messages_total",
            &[("client", "cg1"), ("topic", topic)]
        ),
        12.0
    );
    assert!(
        sum(
            &scrape,
            "ekafka_handler_duration_seconds_count",
            &[("client", "s1")]
        ) >= 13.0
    );
    assert!(
        sum(
            &scrape,
            "ekafka_producer_write_duration_seconds_count",
            &[("client", "p1")]
        ) >= 2.0
    );
    assert!(
        sum(
            &scrape,
            "ekafka_consumer_rebalances_total",
            &[("client", "cg1"), ("event", "assigned")]
        ) >= 1.0
    );
    assert_eq!(
        sum(
            &scrape,
            "ekafka_consumer_assigned_partitions",
            &[("client", "cg1")]
        ),
        3.0
    );
    assert!(
        sum(
            &scrape,
            "ego_client_handle_total",
            &[
                ("type", "producer"),
                ("name", "p1"),
                ("method", "WriteMessages"),
                ("code", "OK")
            ]
        ) >= 2.0
    );

    // Lag rises while a handler holds a message, and falls back to 0 once
    // it is handled and committed.
    write_all(&kafka, [Message::new("hold").with_key("h")]).await;
    next(&mut held, "the handler holding the message").await;
    let lag = [("client", "cg1"), ("topic", topic)];
    scrape_until(&client, address, "lag while the handler holds", |s| {
        sum(s, "ekafka_consumer_lag", &lag) >= 1.0
    })
    .await;
    gate.add_permits(1);
    let scrape = scrape_until(&client, address, "lag back to 0", |s| {
        sum(s, "ekafka_consumer_lag", &lag) == 0.0
            && s.samples.iter().any(|s| s.metric == "ekafka_consumer_lag")
    })
    .await;
    assert!(
        sum(
            &scrape,
            "ekafka_consumer_commits_total",
            &[("client", "cg1"), ("result", "ok")]
        ) >= 1.0
    );

    // librdkafka's statistics come every statisticsInterval (5s by default).
    scrape_until(&client, address, "librdkafka's statistics", |s| {
        s.samples.iter().any(|s| {
            s.metric == "ekafka_librdkafka_queued_messages" && s.labels.get("client") == Some("p1")
        })
    })
    .await;

    handle.shutdown();
    tokio::time::timeout(WAIT, serving)
        .await
        .expect("the App stops")
        .expect("serve did not panic")
        .expect("a clean shutdown");
    assert!(
        client
            .get(format!("http://{address}/metrics"))
            .send()
            .await
            .is_err(),
        "the endpoint stops with the App"
    );
}

#[actix::test]
async fn an_endpoint_address_that_cannot_be_bound_fails_the_app_naming_it() {
    let fixture = Fixture::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let text = format!(
        "{}\n[kafka.observability]\naddress = \"{address}\"\n",
        fixture.config("")
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    let error = App::new(kafka)
        .handle_signals(false)
        .serve()
        .await
        .expect_err("the address is taken");
    assert!(matches!(error, ekafka::Error::Endpoint { .. }), "{error:?}");
    assert!(error.to_string().contains(&address.to_string()), "{error}");
}

/// One GET of `path`: its status code and body.
async fn get(client: &awc::Client, address: SocketAddr, path: &str) -> (u16, String) {
    let mut response = client
        .get(format!("http://{address}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path} answers: {e}"));
    let body = response.body().await.expect("the body arrives");
    (
        response.status().as_u16(),
        String::from_utf8(body.to_vec()).expect("UTF-8"),
    )
}

/// GETs `path` until `holds` is true of its status and body (within `WAIT`).
async fn get_until(
    client: &awc::Client,
    address: SocketAddr,
    path: &str,
    holds: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let mut every = tokio::time::interval(Duration::from_millis(50));
    let mut last = None;
    let found = tokio::time::timeout(WAIT, async {
        loop {
            every.tick().await;
            let (code, body) = get(client, address, path).await;
            if holds(code, &body) {
                return (code, body);
            }
            last = Some((code, body));
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out after {WAIT:?} on {path}; last answer: {last:?}"))
}

#[actix::test]
async fn a_partition_held_past_its_limit_shows_on_status_and_metrics_while_the_app_stays_live() {
    let fixture = Fixture::new();
    // The default partitionPastLimit ("hold"), no restart allowed: the first
    // failure of "poison" holds its partition.
    let (kafka, server) = observed_setup(
        &fixture,
        "",
        "",
        "maxRestarts = 0\nrestartBackoffMax = \"200ms\"",
    );
    let (handled_tx, mut handled) = tokio::sync::mpsc::unbounded_channel::<String>();
    let app = App::new(kafka.clone()).handle_signals(false).each_message(
        server,
        move |message: ConsumedMessage| {
            let handled = handled_tx.clone();
            async move {
                let value = message.value_str().unwrap_or_default().to_string();
                if value == "poison" {
                    return Err(HandlerError::fatal("cannot handle poison"));
                }
                let _ = handled.send(value);
                Ok(())
            }
        },
    );
    let (handle, serving, address) = serve(app).await;
    let client = awc::Client::default();
    write_all(&kafka, [Message::new("poison").with_partition(0)]).await;

    let (_, body) = get_until(&client, address, "/status", |code, body| {
        let status: serde_json::Value = serde_json::from_str(body).expect("JSON");
        code == 200 && status["servers"][0]["stoppedPartitions"][0]["held"] == true
    })
    .await;
    let status: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let stopped = &status["servers"][0]["stoppedPartitions"][0];
    assert_eq!(stopped["topic"], fixture.topic.as_str(), "{status}");
    assert_eq!(stopped["partition"], 0, "{status}");
    assert_eq!(stopped["offset"], 0, "{status}");
    assert!(
        stopped["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot handle poison")),
        "{status}"
    );
    assert_eq!(stopped["gaveUp"], false, "{status}");
    scrape_until(&client, address, "one stopped partition", |scrape| {
        sum(
            scrape,
            "ekafka_server_stopped_partitions",
            &[("client", "s1")],
        ) == 1.0
    })
    .await;

    // Live and ready: restarting the process would only move the poison on.
    assert_eq!(get(&client, address, "/health/live").await.0, 200);
    assert_eq!(get(&client, address, "/health/ready").await.0, 200);
    // The other partitions go on.
    write_all(
        &kafka,
        [1, 2].map(|p| Message::new(format!("fine-{p}")).with_partition(p)),
    )
    .await;
    let mut fine = BTreeSet::new();
    while fine.len() < 2 {
        fine.insert(next(&mut handled, "the healthy partitions' messages").await);
    }
    assert_eq!(get(&client, address, "/health/live").await.0, 200);
    let (_, page) = get(&client, address, "/").await;
    assert!(page.contains("stoppedPartitions"), "the page shows them");

    handle.shutdown();
    let ended = tokio::time::timeout(WAIT, serving)
        .await
        .expect("the App stops")
        .expect("serve did not panic");
    assert!(ended.is_ok(), "{ended:?}");
}

#[actix::test]
async fn health_follows_assignment_a_stuck_handler_an_escalation_and_the_shutdown() {
    let fixture = Fixture::new();
    let (kafka, server) = observed_setup(
        &fixture,
        "stuckAfter = \"1s\"",
        "",
        "maxRestarts = 0\npartitionPastLimit = \"escalate\"",
    );
    // "hold" waits for the gate, reporting its partition; "boom" fails for good.
    let gate = Rc::new(tokio::sync::Semaphore::new(0));
    let (held_tx, mut held) = tokio::sync::mpsc::unbounded_channel::<i32>();
    let app = App::new(kafka.clone())
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(20))
        .each_message(server, {
            let gate = Rc::clone(&gate);
            move |message: ConsumedMessage| {
                let (gate, held) = (Rc::clone(&gate), held_tx.clone());
                async move {
                    match message.value_str() {
                        Some("hold") => {
                            let _ = held.send(message.partition());
                            gate.acquire().await.expect("gate open").forget();
                            Ok(())
                        }
                        Some("boom") => Err(HandlerError::fatal("cannot handle boom")),
                        _ => Ok(()),
                    }
                }
            }
        });
    let (_, serving, address) = serve(app).await;
    let client = awc::Client::default();

    // Ready once the member has its assignment and the producer its broker.
    write_all(&kafka, [Message::new("first")]).await;
    get_until(&client, address, "/health/ready", |code, _| code == 200).await;
    assert_eq!(get(&client, address, "/health/live").await.0, 200);
    // Each partition's lag shows once its first fetch answered, and the
    // position of the one "first" went to once it was fetched.
    let (_, body) = get_until(&client, address, "/status", |code, body| {
        let status: serde_json::Value = serde_json::from_str(body).expect("JSON");
        code == 200
            && status["consumerGroups"][0]["partitions"]
                .as_array()
                .is_some_and(|p| {
                    p.len() == 3
                        && p.iter().all(|p| p["lag"].is_i64())
                        // "first" was fetched: its partition has a position past it.
                        && p.iter().any(|p| p["position"].as_i64() >= Some(1))
                })
    })
    .await;
    let status: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(status["live"], true, "{status}");
    assert_eq!(status["ready"], true, "{status}");
    let group = &status["consumerGroups"][0];
    assert_eq!(group["name"], "cg1", "{status}");
    assert_eq!(group["assigned"], true, "{status}");
    assert!(status["consumers"].is_array(), "{status}");
    assert_eq!(status["producers"][0]["reachedBroker"], true, "{status}");
    let (code, page) = get(&client, address, "/").await;
    assert_eq!(code, 200);
    assert!(page.contains("fetch(\"/status\""), "the page reads /status");

    // A handler call running past stuckAfter fails liveness.
    write_all(&kafka, [Message::new("hold").with_key("h")]).await;
    let hold_partition = next(&mut held, "the handler holding").await;
    let (_, body) = get_until(&client, address, "/health/live", |code, body| {
        code == 503 && body.contains("a handler call has run")
    })
    .await;
    assert!(body.contains("s1"), "{body}");

    // A partition failing past its limit escalates: liveness names it, and
    // the shutdown it starts (waiting for the held handler) is not ready.
    let other = (hold_partition + 1) % 3;
    write_all(&kafka, [Message::new("boom").with_partition(other)]).await;
    get_until(&client, address, "/health/live", |code, body| {
        code == 503 && body.contains("gave up")
    })
    .await;
    get_until(&client, address, "/health/ready", |code, body| {
        code == 503 && body.contains("shutting down")
    })
    .await;

    gate.add_permits(1);
    let ended = tokio::time::timeout(WAIT, serving)
        .await
        .expect("the App stops")
        .expect("serve did not panic");
    assert!(
        matches!(ended, Err(ekafka::Error::GaveUp { .. })),
        "{ended:?}"
    );
}

#[actix::test]
async fn a_single_consumers_lag_is_a_metric_every_read_lag_interval() {
    let fixture = Fixture::new();
    let text = format!(
        "{}\n[kafka.observability]\naddress = \"127.0.0.1:0\"\n\
         [kafka.consumers.c1]\ntopic = {:?}\npartition = 1\nmaxWait = \"100ms\"\n\
         readLagInterval = \"100ms\"\n",
        fixture.config(""),
        fixture.topic,
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    write_all(
        &kafka,
        (0..10).map(|i| Message::new(format!("m-{i}")).with_partition(1)),
    )
    .await;
    let consumer = kafka.consumer("c1").unwrap();
    let app = App::new(kafka.clone()).handle_signals(false);
    let (handle, serving, address) = serve(app).await;
    let client = awc::Client::default();
    let labels = [("client", "c1"), ("partition", "1")];
    scrape_until(&client, address, "the consumer's lag of 10", |s| {
        sum(s, "ekafka_consumer_lag", &labels) == 10.0
    })
    .await;
    for _ in 0..10 {
        tokio::time::timeout(WAIT, consumer.fetch())
            .await
            .expect("in time")
            .expect("fetched");
    }
    scrape_until(&client, address, "the consumer's lag back to 0", |s| {
        sum(s, "ekafka_consumer_lag", &labels) == 0.0
            && s.samples.iter().any(|s| s.metric == "ekafka_consumer_lag")
    })
    .await;
    handle.shutdown();
    serving.await.unwrap().unwrap();
}

#[actix::test]
async fn status_keeps_each_groups_rate_and_lag_the_latest_failures_and_marks_a_stopped_partition() {
    let fixture = Fixture::new();
    let (kafka, server) = observed_setup(
        &fixture,
        "historyInterval = \"100ms\"",
        "",
        "retries = 1\nretryBackoff = \"10ms\"\nmaxRestarts = 0\nrestartBackoffMax = \"30s\"",
    );
    let app = App::new(kafka.clone()).handle_signals(false).each_message(
        server,
        |message: ConsumedMessage| async move {
            match message.value_str() {
                Some("poison") => Err(HandlerError::recoverable("cannot handle poison yet")),
                _ => Ok(()),
            }
        },
    );
    let (handle, serving, address) = serve(app).await;
    let client = awc::Client::default();
    write_all(&kafka, [Message::new("poison").with_partition(0)]).await;
    write_all(
        &kafka,
        (0..60).map(|i| Message::new(format!("fine-{i}")).with_partition(1 + i % 2)),
    )
    .await;

    // The history shows the messages handled and, once the rest is
    // committed, a lag of the one poisoned message.
    let (_, body) = get_until(&client, address, "/status", |code, body| {
        let status: serde_json::Value = serde_json::from_str(body).expect("JSON");
        let history = status["consumerGroups"][0]["history"].as_array().cloned();
        let history = history.unwrap_or_default();
        code == 200
            && history
                .iter()
                .any(|s| s["handledPerSecond"].as_f64().is_some_and(|r| r > 0.0))
            && history.last().is_some_and(|s| s["lag"] == 1)
            && status["servers"][0]["recentFailures"][0]["action"] == "stopped"
    })
    .await;
    let status: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(status["historyIntervalSeconds"], 0.1, "{status}");
    let group = &status["consumerGroups"][0];
    let history = group["history"].as_array().unwrap();
    let times: Vec<u64> = history.iter().map(|s| s["at"].as_u64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {times:?}"
    );
    assert!(history.len() <= 9000, "15 minutes at most");
    assert_eq!(group["totalLag"], 1, "{group}");

    // The failures, newest first: stopped after its retry.
    let failures = status["servers"][0]["recentFailures"].as_array().unwrap();
    assert_eq!(failures.len(), 2, "{failures:?}");
    for (failure, (action, attempts)) in failures.iter().zip([("stopped", 2), ("retried", 1)]) {
        assert_eq!(failure["action"], action, "{failure}");
        assert_eq!(failure["attempts"], attempts, "{failure}");
        assert_eq!(failure["topic"], fixture.topic.as_str());
        assert_eq!(
            (failure["partition"].as_i64(), failure["offset"].as_i64()),
            (Some(0), Some(0))
        );
        assert_eq!(failure["error"], "recoverable: cannot handle poison yet");
    }
    assert!(
        failures[1]["detail"]
            .as_str()
            .unwrap()
            .starts_with("again in "),
        "{failures:?}"
    );
    assert_eq!(status["servers"][0]["group"], "cg1");

    // The group's partition 0 is marked stopped; the others are not.
    let partitions = group["partitions"].as_array().unwrap();
    let stopped: Vec<i64> = partitions
        .iter()
        .filter(|p| p["stopped"] == true)
        .map(|p| p["partition"].as_i64().unwrap())
        .collect();
    assert_eq!(stopped, [0], "{partitions:?}");

    handle.shutdown();
    let ended = tokio::time::timeout(WAIT, serving)
        .await
        .expect("the App stops")
        .expect("serve did not panic");
    assert!(ended.is_ok(), "{ended:?}");
}

#[actix::test]
async fn a_single_consumer_has_a_lag_history_and_fails_liveness_while_its_thread_is_blocked() {
    let fixture = Fixture::new();
    let text = format!(
        "{}\n[kafka.observability]\naddress = \"127.0.0.1:0\"\nhistoryInterval = \"100ms\"\n\
         stuckAfter = \"1s\"\n\
         [kafka.consumers.c1]\ntopic = {:?}\npartition = 0\nmaxWait = \"100ms\"\n",
        fixture.config(""),
        fixture.topic,
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    write_all(
        &kafka,
        (0..5).map(|i| Message::new(format!("m-{i}")).with_partition(0)),
    )
    .await;
    // The consumer's actor on a thread of its own, which the test can block.
    let arbiter = actix::Arbiter::new();
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let starting = kafka.clone();
    arbiter.spawn(async move {
        let _ = started_tx.send(starting.consumer("c1").expect("consumer c1"));
    });
    let _consumer = started.await.expect("the consumer started");
    let app = App::new(kafka.clone()).handle_signals(false);
    let (handle, serving, address) = serve(app).await;
    let client = awc::Client::default();

    get_until(&client, address, "/status", |_, body| {
        let status: serde_json::Value = serde_json::from_str(body).expect("JSON");
        let consumer = &status["consumers"][0];
        consumer["name"] == "c1"
            && consumer["history"]
                .as_array()
                .is_some_and(|h| h.len() >= 2 && h.last().is_some_and(|s| s["lag"] == 5))
    })
    .await;
    assert_eq!(get(&client, address, "/health/live").await.0, 200);

    // A handler blocking the consumer's thread stops its heartbeat.
    arbiter.spawn(async { std::thread::sleep(Duration::from_secs(4)) });
    let (_, body) = get_until(&client, address, "/health/live", |code, _| code == 503).await;
    assert!(
        body.contains("consumer \\\"c1\\\": its actor has not run for"),
        "{body}"
    );
    get_until(&client, address, "/health/live", |code, _| code == 200).await;

    handle.shutdown();
    serving.await.unwrap().unwrap();
    arbiter.stop();
}
