//! The access log (`enableAccessInterceptor`): one event per write, with the
//! messages written (`enableAccessInterceptorReq`) and each one's result
//! (`enableAccessInterceptorRes`) only when asked for. Its own test binary: it
//! installs a global log subscriber.

mod common;

use common::Fixture;
use ekafka::{Ekafka, Message};

#[actix::test]
async fn the_access_log_shows_each_write_and_its_messages_and_results_only_when_asked() {
    let logs = common::capture_all_logs();
    let fixture = Fixture::new();
    let write_with = |switches: &str, value: &'static str| {
        let text = format!(
            "[kafka]\n{}\nenableAccessInterceptor = true\n{switches}\n\
             [kafka.producers.p1]\ntopic = {:?}\nbatchTimeout = \"5ms\"\n",
            fixture.cluster.brokers_line(),
            fixture.topic
        );
        async move {
            let kafka = Ekafka::from_toml_str(&text, "kafka")
                .unwrap()
                .build()
                .unwrap();
            let report = kafka
                .producer("p1")
                .unwrap()
                .write([Message::new(value)])
                .await
                .unwrap();
            let delivery = report.into_result().unwrap().remove(0);
            format!(
                "{}/{}@{}",
                delivery.topic, delivery.partition, delivery.offset
            )
        }
    };

    let bare = write_with("", "value-bare").await;
    let full = write_with(
        "enableAccessInterceptorReq = true\nenableAccessInterceptorRes = true",
        "value-full",
    )
    .await;
    let text = logs.text();
    let access: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("ekafka::access"))
        .collect();
    assert!(
        access
            .iter()
            .filter(|l| l.contains("WriteMessages"))
            .count()
            >= 2,
        "one event per write: {access:#?}"
    );
    let joined = access.join("\n");
    assert!(
        joined.contains("value-full"),
        "the request is logged when asked: {joined}"
    );
    assert!(
        joined.contains(&full),
        "the result is logged when asked: {joined}"
    );
    assert!(!joined.contains("value-bare"), "not otherwise: {joined}");
    assert!(!joined.contains(&bare), "not otherwise: {joined}");
}
