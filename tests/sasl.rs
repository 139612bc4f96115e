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

use std::sync::OnceLock;
use std::time::Duration;

use common::tansu::{Scram, Tansu};
use common::{forwarder, next, Captured, Fixture};
use ekafka::consumer::MessageBatch;
use ekafka::interceptor::DebugInterceptor;
use ekafka::testing::unique_name;
use ekafka::{Ekafka, Error, Message};

const NEEDS_TANSU: &str = "needs the tansu broker: ./e2e.sh runs it";

/// Everything logged by this test binary, at every level.
fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let sink = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .init();
        logs
    })
}

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
         maxRestarts = 1\nrestartBackoff = \"100ms\"\n",
        broker.bootstrap_servers(),
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
    let logs = logs();
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

    assert_password_never_shown(logs, &debug_output, &user, &password);
}

/// The password is in no log line and no debug output line, while the user
/// name is: the capture did see the SASL settings at work.
fn assert_password_never_shown(
    logs: &Captured,
    debug_output: &Captured,
    user: &str,
    password: &str,
) {
    let logged = logs.text();
    assert!(
        logged.contains(user),
        "the user name reached the logs (capture works)"
    );
    assert!(
        logged.contains("librdkafka"),
        "librdkafka's own lines were captured"
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
    let _ = NEEDS_TANSU;
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
    let logs = logs();
    let user = unique_name("user");
    let password = unique_name("right");
    let wrong = unique_name("wrong");
    let topic = unique_name("topic");
    let broker = Tansu::with_users(&[(&user, &password, Scram::Sha256)], &[&topic]);
    let debug_output = Captured::default();
    let text = config(&broker, &topic, Some(("SCRAM-SHA-256", &user, &wrong)));
    let kafka = component(&text, &debug_output);

    let producer = kafka.producer("p1").unwrap();
    let started = std::time::Instant::now();
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        producer.write([Message::new("never")]),
    )
    .await
    .expect("the write answers instead of hanging");
    let failure = match report {
        Ok(report) => report.failures().next().cloned().expect("the write failed"),
        Err(error) => panic!("expected a failed outcome, got {error}"),
    };
    println!("failed after {:?}: {failure}", started.elapsed());
    assert!(
        failure.reason.contains("authentication"),
        "the reason names authentication: {failure}"
    );
    assert_eq!(
        failure.message.value.as_deref(),
        Some(b"never".as_slice()),
        "the message is handed back"
    );

    // Past its restart limit the producer gives up, and says why.
    let escalation = tokio::time::timeout(Duration::from_secs(30), kafka.escalated())
        .await
        .expect("the component escalates instead of retrying forever");
    let error: Error = escalation.into();
    let text_of_error = error.to_string();
    assert!(
        text_of_error.contains("authentication"),
        "escalation names authentication: {text_of_error}"
    );
    kafka.close().await.ok();
    assert!(
        !logs.text().contains(&wrong),
        "the password leaked into the logs"
    );
    assert!(!debug_output.text().contains(&wrong));
}
