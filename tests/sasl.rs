//! SASL end to end, on tansu brokers that require authentication: PLAIN,
//! SCRAM-SHA-256 and SCRAM-SHA-512 configured from TOML as in the Go guide;
//! clients without credentials, or with a wrong password, fail with a clear
//! error instead of hanging; and no password reaches a log line at any level.
//!
//! Each test starts a broker of its own, so these need the tansu binary and are
//! ignored by a plain `cargo test`; `./e2e.sh` runs them.
//!
//! Its own test binary: it installs a global log subscriber at TRACE, which also
//! sees librdkafka's own log lines (its `debug` contexts are switched on).

mod common;

use common::tansu::{Scram, Tansu};
use common::{forwarder, next, Captured, Fixture, WAIT};
use ekafka::consumer::{GroupEvent, MessageBatch};
use ekafka::interceptor::DebugInterceptor;
use ekafka::testing::unique_name;
use ekafka::{Ekafka, Error, Message, ProduceError};

/// The Go guide's SASL example (`[kafka]` with `saslMechanism`, `saslUserName`,
/// `saslPassword` and a `client.timeout`), with producer `p1` and consumer
/// group `cg1` on `topic`. `sasl` is `None` for a client without credentials.
fn config(broker: &Tansu, topic: &str, sasl: Option<(&str, &str, &str)>) -> String {
    let credentials = sasl.map_or(String::new(), |(mechanism, user, password)| {
        format!(
            "saslMechanism = {mechanism:?}\nsaslUserName = {user:?}\nsaslPassword = {password:?}\n"
        )
    });
    format!(
        "[kafka]\ndebug = true\nbrokers = [{:?}]\n{credentials}\
         [kafka.client]\ntimeout = \"3s\"\n\
         [kafka.librdkafka]\ndebug = \"security,broker,protocol,conf\"\n\
         [kafka.producers.p1]\ntopic = {topic:?}\nbatchTimeout = \"5ms\"\nwriteTimeout = \"10s\"\n\
         maxRestarts = 1\nrestartBackoff = \"100ms\"\n\
         [kafka.consumerGroups.cg1]\ntopic = {topic:?}\ngroupID = {:?}\n\
         heartbeatInterval = \"1s\"\nsessionTimeout = \"6s\"\nmaxWait = \"100ms\"\n\
         maxRestarts = 1\nrestartBackoff = \"100ms\"\n\
         [kafka.consumers.c1]\ntopic = {topic:?}\ngroupID = {:?}\nmaxWait = \"100ms\"\n\
         heartbeatInterval = \"1s\"\nsessionTimeout = \"6s\"\n\
         maxRestarts = 1\nrestartBackoff = \"100ms\"\n",
        broker.bootstrap_servers(),
        unique_name("group"),
        unique_name("group"),
    )
}

fn component(text: &str, debug_output: &Captured) -> Ekafka {
    Ekafka::from_toml_str(text, "kafka")
        .expect("valid config")
        .with_debug_output(DebugInterceptor::to_writer(debug_output.clone()))
        .build()
        .expect("component builds")
}

/// Writes ten messages and reads them back through a consumer group, all
/// authenticated with `mechanism`; then checks the password was never logged.
async fn round_trip(mechanism: &str, scram: Option<Scram>) {
    let logs = common::capture_all_logs();
    let user = unique_name("user");
    let password = unique_name("pa55word");
    let topic = unique_name("topic");
    let users: Vec<(&str, &str, Scram)> = scram
        .map(|s| vec![(user.as_str(), password.as_str(), s)])
        .unwrap_or_default();
    let broker = Tansu::with_users(&users, &[&topic]);
    let fixture = Fixture {
        cluster: broker.cluster(),
        topic: topic.clone(),
    };
    let debug_output = Captured::default();
    let text = config(&broker, &fixture.topic, Some((mechanism, &user, &password)));
    let kafka = component(&text, &debug_output);

    let producer = kafka.producer("p1").unwrap();
    let messages = (0..10).map(|i| Message::new(format!("m-{i}")).with_key(format!("{i}")));
    let report = producer.write(messages).await.unwrap();
    assert!(
        report.is_success(),
        "{mechanism}: {:?}",
        report.failures().next()
    );

    let group = kafka.consumer_group("cg1").unwrap();
    let (subscriber, mut batches) = forwarder::<MessageBatch>();
    group.subscribe(subscriber).await.unwrap();
    let mut values = Vec::new();
    while values.len() < 10 {
        let batch = next(&mut batches, "messages through the authenticated group").await;
        values.extend(
            batch
                .messages()
                .iter()
                .map(|m| m.value_str().unwrap().to_string()),
        );
        batch.ack();
    }
    values.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("m-{i}")).collect();
    expected.sort();
    assert_eq!(values, expected, "{mechanism}: every message, once");
    group.commit_acknowledged().await.unwrap();
    group.close().await.unwrap();
    kafka.close().await.unwrap();

    assert_password_never_shown(logs, &debug_output, &broker, &password);
}

/// The password is in no log line and no debug output line, while the SASL
/// exchange with `broker` was logged: the capture did see it at work.
fn assert_password_never_shown(
    logs: &Captured,
    debug_output: &Captured,
    broker: &Tansu,
    password: &str,
) {
    let logged = logs.text();
    assert!(
        logged
            .lines()
            .any(|l| l.contains("SASL") && l.contains(&broker.bootstrap_servers())),
        "librdkafka's SASL lines for this broker were captured"
    );
    assert!(
        !logged.contains(password),
        "the password leaked into the logs"
    );
    assert!(
        !debug_output.text().contains(password),
        "the password leaked into the debug output"
    );
}

#[actix::test]
#[ignore = "needs the tansu broker: ./e2e.sh runs it"]
async fn plain_produces_and_consumes() {
    round_trip("PLAIN", None).await;
}

#[actix::test]
#[ignore = "needs the tansu broker: ./e2e.sh runs it"]
async fn scram_sha_256_produces_and_consumes() {
    round_trip("SCRAM-SHA-256", Some(Scram::Sha256)).await;
}

#[actix::test]
#[ignore = "needs the tansu broker: ./e2e.sh runs it"]
async fn scram_sha_512_produces_and_consumes() {
    round_trip("SCRAM-SHA-512", Some(Scram::Sha512)).await;
}

#[actix::test]
#[ignore = "needs the tansu broker: ./e2e.sh runs it"]
async fn scram_with_a_wrong_password_fails_with_a_clear_error() {
    let logs = common::capture_all_logs();
    let user = unique_name("user");
    let password = unique_name("right");
    let wrong = unique_name("wrong");
    let topic = unique_name("topic");
    let broker = Tansu::with_users(&[(&user, &password, Scram::Sha256)], &[&topic]);
    let debug_output = Captured::default();
    let text = config(&broker, &topic, Some(("SCRAM-SHA-256", &user, &wrong)));
    let kafka = component(&text, &debug_output);

    // A write fails at once, saying why, and hands the message back.
    let failure = failed_write(&kafka).await;
    assert!(
        failure.reason.contains("SASL authentication failed"),
        "the reason names the refused login: {failure}"
    );

    // A group member tells its subscribers, then fails.
    let group = kafka.consumer_group("cg1").unwrap();
    let (events, mut group_events) = forwarder::<GroupEvent>();
    group.subscribe_events(events).await.unwrap();
    let error = loop {
        if let GroupEvent::Error(error) = next(&mut group_events, "the group's error").await {
            break error;
        }
    };
    assert!(
        error.message.contains("SASL authentication failed"),
        "the group names the refused login: {}",
        error.message
    );

    // A single consumer's read fails, saying why.
    let consumer = kafka.consumer("c1").unwrap();
    let read = tokio::time::timeout(WAIT, consumer.fetch())
        .await
        .expect("the read answers instead of hanging");
    match read {
        Err(Error::Authentication { reason, .. }) | Err(Error::GaveUp { reason, .. }) => {
            assert!(reason.contains("SASL authentication failed"), "{reason}")
        }
        other => panic!("expected an authentication error, got {other:?}"),
    }

    // Restarts do not help (maxRestarts = 1): the component escalates.
    let escalation = tokio::time::timeout(WAIT, kafka.escalated())
        .await
        .expect("the component escalates instead of retrying forever");
    let error = Error::from(escalation).to_string();
    assert!(
        error.contains("gave up") && error.contains("SASL authentication failed"),
        "{error}"
    );
    kafka.close().await.ok();
    assert_password_never_shown(logs, &debug_output, &broker, &wrong);
}

#[actix::test]
#[ignore = "needs the tansu broker: ./e2e.sh runs it"]
async fn a_client_without_credentials_fails_with_a_clear_error() {
    let topic = unique_name("topic");
    let broker = Tansu::with_users(&[], &[&topic]);
    let debug_output = Captured::default();
    let kafka = component(&config(&broker, &topic, None), &debug_output);

    // The broker hangs up on a client that does not authenticate: the write
    // fails after writeTimeout (10s here), naming the broker and what the
    // client last saw of it (a disconnect, or a broken pipe).
    let failure = failed_write(&kafka).await;
    assert!(
        failure.reason.contains("timed out")
            && failure.reason.contains("last client error")
            && failure.reason.contains(&broker.bootstrap_servers()),
        "the reason says why: {failure}"
    );
    kafka.close().await.ok();
}

/// Writes one message that must fail within [`WAIT`]; returns the failure,
/// after checking the message was handed back.
async fn failed_write(kafka: &Ekafka) -> ProduceError {
    let producer = kafka.producer("p1").unwrap();
    let started = std::time::Instant::now();
    let report = tokio::time::timeout(WAIT, producer.write([Message::new("never")]))
        .await
        .expect("the write answers instead of hanging");
    let failure = match report {
        Ok(report) => report.failures().next().cloned().expect("the write failed"),
        Err(error) => panic!("expected a failed outcome, got {error}"),
    };
    println!("failed after {:?}: {failure}", started.elapsed());
    assert_eq!(
        failure.message.value.as_deref(),
        Some(b"never".as_slice()),
        "the message is handed back"
    );
    failure
}
