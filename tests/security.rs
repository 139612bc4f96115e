//! Security on Apache Kafka: SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and
//! TLS (server and mutual) configured from TOML, and StandardAuthorizer ACLs.
//! What must hold: clients with the right settings round-trip messages; a wrong
//! password, a missing CA or a missing permission fails fast with an error that
//! says so, is not retried forever, and never shows a password.
//!
//! It runs on the secured cluster of `./e2e.sh` (or starts one), so a plain
//! `cargo test` skips it. Its own test binary: it installs a global log
//! subscriber at TRACE, which also sees librdkafka's own lines (its `debug`
//! contexts are switched on).

mod common;

use std::time::{Duration, Instant};

use common::kafka::KafkaCluster;
use common::{forwarder, next, Captured, Fixture, WAIT};
use ekafka::consumer::{GroupEvent, MessageBatch};
use ekafka::interceptor::DebugInterceptor;
use ekafka::testing::unique_name;
use ekafka::{Ekafka, Error, Message, ProduceError};
use rdkafka::types::RDKafkaErrorCode;

/// How a client connects: which listener, and the `[kafka]` keys for it.
struct Access {
    listener: &'static str,
    keys: String,
}

fn sasl(mechanism: &str, user: &str, password: &str) -> String {
    format!("saslMechanism = {mechanism:?}\nsaslUserName = {user:?}\nsaslPassword = {password:?}\n")
}

fn tls_table(cluster: &KafkaCluster, ca: bool, client_certificate: bool) -> String {
    let mut table = String::from("[kafka.tls]\n");
    if ca {
        table += &format!("caFile = {:?}\n", cluster.file("CA"));
    }
    if client_certificate {
        table += &format!(
            "certFile = {:?}\nkeyFile = {:?}\n",
            cluster.file("CLIENT_CERT"),
            cluster.file("CLIENT_KEY")
        );
    }
    table
}

/// A component with producer `p1`, consumer group `cg1` and consumer `c1` on
/// `topic`, connecting as `access` says; restarts limited to one, so a refusal
/// escalates quickly.
fn component(
    cluster: &KafkaCluster,
    access: &Access,
    topic: &str,
    debug_output: &Captured,
) -> Ekafka {
    let (root_keys, tables) = match access.keys.split_once("[kafka.tls]") {
        Some((root, tls)) => (root.to_string(), format!("[kafka.tls]{tls}")),
        None => (access.keys.clone(), String::new()),
    };
    let text = format!(
        "[kafka]\ndebug = true\nbrokers = [{:?}]\n{root_keys}\
         [kafka.client]\ntimeout = \"3s\"\n{tables}\
         [kafka.librdkafka]\ndebug = \"security,broker,protocol,conf\"\n\
         [kafka.producers.p1]\ntopic = {topic:?}\nbatchTimeout = \"5ms\"\nwriteTimeout = \"10s\"\n\
         maxRestarts = 1\nrestartBackoff = \"100ms\"\n\
         [kafka.consumerGroups.cg1]\ntopic = {topic:?}\ngroupID = {:?}\n\
         heartbeatInterval = \"1s\"\nsessionTimeout = \"6s\"\nmaxWait = \"100ms\"\n\
         maxRestarts = 1\nrestartBackoff = \"100ms\"\n\
         [kafka.consumers.c1]\ntopic = {topic:?}\ngroupID = {:?}\nmaxWait = \"100ms\"\n\
         maxRestarts = 1\nrestartBackoff = \"100ms\"\n",
        cluster.listener(access.listener),
        unique_name("group"),
        unique_name("group"),
    );
    Ekafka::from_toml_str(&text, "kafka")
        .expect("valid config")
        .with_debug_output(DebugInterceptor::to_writer(debug_output.clone()))
        .build()
        .expect("component builds")
}

/// Writes ten messages and reads them back through a consumer group, both
/// connecting as `access` says; then checks `secret` was never shown.
async fn round_trip(cluster: &KafkaCluster, access: Access, secret: &str) {
    let logs = common::capture_all_logs();
    let fixture = Fixture::on(cluster.cluster());
    let debug_output = Captured::default();
    let kafka = component(cluster, &access, &fixture.topic, &debug_output);

    let producer = kafka.producer("p1").unwrap();
    let messages = (0..10).map(|i| Message::new(format!("m-{i}")).with_key(format!("{i}")));
    let report = producer.write(messages).await.unwrap();
    assert!(
        report.is_success(),
        "{}: {:?}",
        access.listener,
        report.failures().next()
    );

    let group = kafka.consumer_group("cg1").unwrap();
    let (subscriber, mut batches) = forwarder::<MessageBatch>();
    group.subscribe(subscriber).await.unwrap();
    let mut values = Vec::new();
    while values.len() < 10 {
        let batch = next(&mut batches, "messages through the secured group").await;
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
    assert_eq!(values, expected, "{}: every message, once", access.listener);
    group.commit_acknowledged().await.unwrap();
    group.close().await.unwrap();
    kafka.close().await.unwrap();

    assert_never_shown(logs, &debug_output, cluster, access.listener, secret);
}

/// `secret` is in no log line and no debug output line, while librdkafka's
/// lines about `listener` were captured: the capture did see it at work.
fn assert_never_shown(
    logs: &Captured,
    debug_output: &Captured,
    cluster: &KafkaCluster,
    listener: &str,
    secret: &str,
) {
    let logged = logs.text();
    let port = cluster.listener(listener);
    let port = port.rsplit(':').next().unwrap();
    assert!(
        logged.lines().any(|l| l.contains(port)),
        "librdkafka's lines for the {listener} listener were captured"
    );
    assert!(!logged.contains(secret), "a secret leaked into the logs");
    assert!(
        !debug_output.text().contains(secret),
        "a secret leaked into the debug output"
    );
}

async fn sasl_round_trip(mechanism: &str) {
    let cluster = KafkaCluster::secured();
    let password = cluster.password("alice");
    let access = Access {
        listener: "SASL_PLAINTEXT",
        keys: sasl(mechanism, "alice", &password),
    };
    round_trip(&cluster, access, &password).await;
}

#[actix::test]
#[ignore = "needs Apache Kafka: ./e2e.sh runs it"]
async fn sasl_plain_produces_and_consumes() {
    sasl_round_trip("PLAIN").await;
}

#[actix::test]
#[ignore = "needs Apache Kafka: ./e2e.sh runs it"]
async fn sasl_scram_sha_256_produces_and_consumes() {
    sasl_round_trip("SCRAM-SHA-256").await;
}

#[actix::test]
#[ignore = "needs Apache Kafka: ./e2e.sh runs it"]
async fn sasl_scram_sha_512_produces_and_consumes() {
    sasl_round_trip("SCRAM-SHA-512").await;
}

#[actix::test]
#[ignore = "needs Apache Kafka: ./e2e.sh runs it"]
async fn sasl_with_the_password_read_from_a_file_produces_and_consumes() {
    // As Kubernetes mounts a secret: the password in a file of its own, with
    // a final line break that is not part of it.
    let cluster = KafkaCluster::secured();
    let password = cluster.password("alice");
    let file = std::env::temp_dir().join(unique_name("kafka-password"));
    std::fs::write(&file, format!("{password}\n")).unwrap();
    let keys = format!(
        "saslMechanism = \"SCRAM-SHA-512\"\nsaslUserName = \"alice\"\n\
         saslPassword = {{ file = {:?} }}\n",
        file.to_str().unwrap()
    );
    let access = Access {
        listener: "SASL_PLAINTEXT",
        keys,
    };
    round_trip(&cluster, access, &password).await;
    let _ = std::fs::remove_file(file);
}

#[actix::test]
#[ignore = "needs Apache Kafka: ./e2e.sh runs it"]
async fn tls_with_the_ca_and_a_client_certificate_produces_and_consumes() {
    let cluster = KafkaCluster::secured();
    let access = Access {
        listener: "SSL",
        keys: tls_table(&cluster, true, true),
    };
    // The client key is not a secret of the config, but it must not be logged.
    let key = std::fs::read_to_string(cluster.file("CLIENT_KEY")).unwrap();
    let key_body = key.lines().nth(1).unwrap().to_string();
    round_trip(&cluster, access, &key_body).await;
}

#[actix::test]
#[ignore = "needs Apache Kafka: ./e2e.sh runs it"]
async fn sasl_over_tls_produces_and_consumes() {
    let cluster = KafkaCluster::secured();
    let password = cluster.password("alice");
    let access = Access {
        listener: "SASL_SSL",
        keys: sasl("SCRAM-SHA-512", "alice", &password) + &tls_table(&cluster, true, false),
    };
    round_trip(&cluster, access, &password).await;
}

/// Every client of a component refused by the broker fails fast, saying
/// `expected`, and the component escalates instead of retrying forever.
async fn refused_everywhere(cluster: &KafkaCluster, access: Access, expected: &str) {
    let logs = common::capture_all_logs();
    let fixture = Fixture::on(cluster.cluster());
    let debug_output = Captured::default();
    let kafka = component(cluster, &access, &fixture.topic, &debug_output);

    // A write fails at once, saying why, and hands the message back: well
    // before writeTimeout (10s), and not as a timeout.
    let started = Instant::now();
    let failure = failed_write(&kafka).await;
    assert!(
        failure.reason.contains(expected),
        "the write's failure says {expected:?}: {failure}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5)
            && failure.kind != ekafka::ProduceErrorKind::Kafka(RDKafkaErrorCode::MessageTimedOut),
        "failed fast, not timed out: {failure} after {:?}",
        started.elapsed()
    );

    // A group member tells its subscribers, then fails.
    let group = kafka.consumer_group("cg1").unwrap();
    let (events, mut group_events) = forwarder::<GroupEvent>();
    group.subscribe_events(events).await.unwrap();
    let error = first_group_error(&mut group_events).await;
    assert!(
        error.message.contains(expected),
        "the group's error says {expected:?}: {}",
        error.message
    );

    // A single consumer's read fails, saying why.
    let consumer = kafka.consumer("c1").unwrap();
    let read = tokio::time::timeout(WAIT, consumer.fetch())
        .await
        .expect("the read answers instead of hanging");
    match read {
        Err(
            ref error @ (Error::Authentication { ref reason, .. }
            | Error::Authorization { ref reason, .. }),
        ) => {
            assert!(reason.contains(expected), "{reason}");
            assert!(error.is_auth() && !error.is_retriable(), "{error:?}");
            use RDKafkaErrorCode as C;
            let code = error.kafka_code().expect("a refusal carries its code");
            assert!(
                matches!(
                    code,
                    C::Authentication
                        | C::SaslAuthenticationFailed
                        | C::SSL
                        | C::TopicAuthorizationFailed
                        | C::GroupAuthorizationFailed
                        | C::ClusterAuthorizationFailed
                ),
                "the code is the refusal's: {code:?}"
            );
        }
        Err(Error::GaveUp { reason, .. }) => assert!(reason.contains(expected), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Restarts do not help (maxRestarts = 1): the component escalates.
    let escalation = tokio::time::timeout(WAIT, kafka.escalated())
        .await
        .expect("the component escalates instead of retrying forever");
    let error = Error::from(escalation).to_string();
    assert!(
        error.contains("gave up") && error.contains(expected),
        "{error}"
    );
    kafka.close().await.ok();
    if access.keys.contains("saslPassword") {
        let password = access.keys.split('"').nth(5).unwrap();
        for text in [
            &failure.to_string(),
            &error,
            &format!("{:?}", kafka.config()),
        ] {
            assert!(!text.contains(password), "the password in {text}");
        }
        assert_never_shown(logs, &debug_output, cluster, access.listener, password);
    }
}

#[actix::test]
#[ignore = "needs Apache Kafka: ./e2e.sh runs it"]
async fn a_wrong_password_fails_fast_with_a_clear_error() {
    let cluster = KafkaCluster::secured();
    let wrong = unique_name("wrong-password");
    let access = Access {
        listener: "SASL_PLAINTEXT",
        keys: sasl("SCRAM-SHA-256", "alice", &wrong),
    };
    refused_everywhere(&cluster, access, "SASL authentication failed").await;
}

#[actix::test]
#[ignore = "needs Apache Kafka: ./e2e.sh runs it"]
async fn tls_without_the_ca_fails_fast_with_a_clear_error() {
    let cluster = KafkaCluster::secured();
    let access = Access {
        listener: "SASL_SSL",
        keys: sasl("PLAIN", "alice", &cluster.password("alice"))
            + &tls_table(&cluster, false, false),
    };
    refused_everywhere(&cluster, access, "certificate verify failed").await;
}

#[actix::test]
#[ignore = "needs Apache Kafka: ./e2e.sh runs it"]
async fn a_principal_without_write_permission_fails_fast_and_is_not_retried() {
    let cluster = KafkaCluster::secured();
    // mallory may write topics named mallory-*, not the producer's own topic.
    let kafka = as_mallory(&cluster);
    let allowed = format!("mallory-{}", unique_name("topic"));
    cluster.cluster().create_topic(&allowed).unwrap();
    let report = kafka
        .producer("p1")
        .unwrap()
        .write([Message::new("allowed").with_topic(&allowed)])
        .await
        .unwrap();
    assert!(report.is_success(), "{:?}", report.failures().next());

    let started = Instant::now();
    let failure = failed_write(&kafka).await;
    assert_eq!(
        failure.kind,
        ekafka::ProduceErrorKind::Kafka(RDKafkaErrorCode::TopicAuthorizationFailed),
        "{failure}"
    );
    assert!(
        failure.reason.contains("authorization"),
        "the reason names the refusal: {failure}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused well before writeTimeout (10s): {:?}",
        started.elapsed()
    );
    assert!(!failure.is_retriable(), "{failure}");
    // The producer itself is fine: it is neither restarted nor given up.
    let status = kafka.producer("p1").unwrap().status().await.unwrap();
    assert_eq!((status.restarts, status.gave_up), (0, None));
    kafka.close().await.unwrap();
}

#[actix::test]
#[ignore = "needs Apache Kafka: ./e2e.sh runs it"]
async fn a_principal_without_read_permission_on_the_group_gets_a_clear_error() {
    let cluster = KafkaCluster::secured();
    let kafka = as_mallory(&cluster);
    let group = kafka.consumer_group("cg1").unwrap();
    let (events, mut group_events) = forwarder::<GroupEvent>();
    group.subscribe_events(events).await.unwrap();
    let error = first_group_error(&mut group_events).await;
    assert!(
        error.message.contains("Group authorization failed"),
        "the group's error names the refusal: {}",
        error.message
    );
    let escalation = tokio::time::timeout(WAIT, kafka.escalated())
        .await
        .expect("the group gives up instead of retrying forever");
    let error = Error::from(escalation).to_string();
    assert!(error.contains("Group authorization failed"), "{error}");
    kafka.close().await.ok();
}

#[actix::test]
#[ignore = "needs Apache Kafka: ./e2e.sh runs it"]
async fn a_client_without_credentials_fails_with_a_clear_error() {
    let cluster = KafkaCluster::secured();
    let fixture = Fixture::on(cluster.cluster());
    let access = Access {
        listener: "SASL_PLAINTEXT",
        keys: String::new(),
    };
    let kafka = component(&cluster, &access, &fixture.topic, &Captured::default());
    // The broker hangs up on a client that does not authenticate: the write
    // fails after writeTimeout (10s here), naming the broker and what the
    // client last saw of it.
    let failure = failed_write(&kafka).await;
    assert!(
        failure.reason.contains("timed out")
            && failure.reason.contains("last client error")
            && failure.reason.contains(&cluster.listener("SASL_PLAINTEXT")),
        "the reason says why: {failure}"
    );
    kafka.close().await.ok();
}

#[actix::test]
#[ignore = "needs Apache Kafka: ./e2e.sh runs it"]
async fn an_admin_request_without_permission_is_an_authorization_error_naming_the_topic() {
    let cluster = KafkaCluster::secured();
    let kafka = as_mallory(&cluster);
    let admin = kafka.admin().unwrap();
    let topic = unique_name("not-mallorys");
    let error = admin
        .create_topic(ekafka::admin::TopicSpec::new(&topic, 1))
        .await
        .unwrap_err();
    assert!(error.is_auth(), "{error}");
    assert!(
        matches!(
            error.kafka_code(),
            Some(
                RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::ClusterAuthorizationFailed
            )
        ),
        "{error}"
    );
    assert!(error.to_string().contains(&topic), "{error}");
    kafka.close().await.ok();
}

/// The first `GroupEvent::Error` among `events`.
async fn first_group_error(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<GroupEvent>,
) -> ekafka::consumer::GroupError {
    loop {
        if let GroupEvent::Error(error) = next(events, "the group's error").await {
            return error;
        }
    }
}

/// A component connecting as mallory, who may read and describe every topic
/// and write only topics named mallory-* (the launcher's ACLs), with its
/// clients on a fresh topic.
fn as_mallory(cluster: &KafkaCluster) -> Ekafka {
    let fixture = Fixture::on(cluster.cluster());
    let access = Access {
        listener: "SASL_PLAINTEXT",
        keys: sasl("PLAIN", "mallory", &cluster.password("mallory")),
    };
    component(cluster, &access, &fixture.topic, &Captured::default())
}

/// Writes one message that must fail within [`WAIT`]; returns the failure,
/// after checking the message was handed back.
async fn failed_write(kafka: &Ekafka) -> ProduceError {
    let producer = kafka.producer("p1").unwrap();
    let started = Instant::now();
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
