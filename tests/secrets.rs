//! The SASL password never reaches a log line, at any level, from ekafka or
//! librdkafka. Its own test binary: it installs a global log subscriber, which
//! also sees librdkafka's threads.

mod common;

use common::Fixture;
use ekafka::{Ekafka, Message};

#[actix::test]
async fn the_password_appears_in_no_log_line() {
    let secret = "Zx9-very-secret-Pa55";
    let logs = common::capture_all_logs();

    let fixture = Fixture::new();
    // The embedded cluster speaks no SASL, so the client logs its connection
    // failures at length; librdkafka's own debug output is on as well.
    let text = format!(
        "[kafka]\n{}\ndebug = true\nsaslMechanism = \"SCRAM-SHA-512\"\nsaslUserName = \"alice\"\nsaslPassword = {secret:?}\n\
         enableAccessInterceptor = true\nenableAccessInterceptorReq = true\nenableAccessInterceptorRes = true\n\
         [kafka.librdkafka]\ndebug = \"security,broker,conf,generic\"\n\
         [kafka.producers.p1]\ntopic = {:?}\nbatchTimeout = \"5ms\"\nwriteTimeout = \"2s\"\n",
        fixture.cluster.brokers_line(),
        fixture.topic
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    tracing::info!(config = ?kafka.config(), "component built");
    let producer = kafka.producer("p1").unwrap();
    let report = producer.write([Message::new("v")]).await.unwrap();
    assert_eq!(
        report.failures().count(),
        1,
        "no SASL on the embedded cluster: the write times out"
    );
    assert!(
        producer.close().await.unwrap().is_clean(),
        "nothing left to flush"
    );

    let text = logs.text();
    assert!(
        text.contains("component built"),
        "ekafka's own logs were captured"
    );
    assert!(
        text.contains("librdkafka"),
        "librdkafka's logs were captured"
    );
    assert!(
        text.contains("alice") || text.contains("SCRAM"),
        "SASL settings were in play"
    );
    assert!(!text.contains(secret), "the password leaked into the logs");
}
