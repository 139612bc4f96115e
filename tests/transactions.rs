//! Transactional producers (`transactionalID`): a transaction's messages are
//! visible to `read_committed` readers together or not at all, and a producer
//! fenced by a newer one with its id is refused with a clear error and stops.

mod common;

use common::{read_back, Fixture};
use ekafka::testing::unique_name;
use ekafka::{Ekafka, Message};

/// A component with transactional producer `tp` (id `id`) on the fixture's topic.
fn component(fixture: &Fixture, id: &str) -> Ekafka {
    let text = format!(
        "{}\n[kafka.producers.tp]\ntopic = {:?}\nbatchTimeout = \"5ms\"\ntransactionalID = {id:?}\n\
         maxRestarts = 1\nrestartBackoff = \"100ms\"\n",
        fixture.config(""),
        fixture.topic
    );
    Ekafka::from_toml_str(&text, "kafka")
        .expect("valid config")
        .build()
        .expect("component builds")
}

fn values(messages: &[common::ReadMessage]) -> Vec<String> {
    let mut values: Vec<String> = messages
        .iter()
        .map(|m| String::from_utf8(m.value.clone().unwrap_or_default()).unwrap())
        .collect();
    values.sort();
    values
}

#[actix::test]
#[ignore = "needs Apache Kafka (the embedded cluster shows aborted transactions' messages to read_committed readers): ./e2e.sh runs it"]
async fn a_transactions_messages_are_visible_together_and_an_aborted_ones_never() {
    let fixture = Fixture::new();
    let kafka = component(&fixture, &unique_name("txn"));
    let producer = kafka.producer("tp").expect("producer");

    let committed = producer.begin().await.expect("begun");
    for i in 0..3 {
        let report = committed
            .write([Message::new(format!("committed-{i}")).with_key(format!("{i}"))])
            .await
            .expect("written");
        assert!(report.is_success(), "{:?}", report.failures().next());
    }
    committed.commit().await.expect("committed");

    let aborted = producer.begin().await.expect("begun");
    aborted
        .write([Message::new("aborted-0"), Message::new("aborted-1")])
        .await
        .expect("written")
        .into_result()
        .expect("delivered, not yet visible");
    aborted.abort().await.expect("aborted");

    let last = producer.begin().await.expect("begun");
    let _delivered = last.write([Message::new("last")]).await.expect("written");
    last.commit().await.expect("committed");

    // librdkafka reads read_committed by default: the aborted messages are
    // skipped, the others all there.
    let read = read_back(
        fixture.cluster.bootstrap_servers().to_string(),
        fixture.topic.clone(),
        4,
    )
    .await;
    assert_eq!(
        values(&read),
        ["committed-0", "committed-1", "committed-2", "last"]
    );
    kafka.close().await.expect("closed");
}

#[actix::test]
async fn a_transactional_producer_writes_only_inside_a_transaction() {
    let fixture = Fixture::new();
    let kafka = component(&fixture, &unique_name("txn"));
    let error = kafka
        .producer("tp")
        .unwrap()
        .write([Message::new("outside")])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("producer.begin()"), "{error}");
    let plain = kafka.producer("p1").unwrap();
    let error = plain.begin().await.unwrap_err();
    assert!(error.to_string().contains("transactionalID"), "{error}");
    kafka.close().await.expect("closed");
}

#[actix::test]
#[ignore = "needs Apache Kafka (the embedded cluster does not fence producers): ./e2e.sh runs it"]
async fn a_fenced_producer_is_refused_with_a_clear_error_and_is_not_restarted() {
    let fixture = Fixture::new();
    let id = unique_name("txn");
    let zombie_kafka = component(&fixture, &id);
    let zombie = zombie_kafka.producer("tp").expect("producer");
    let open = zombie.begin().await.expect("begun");
    let _delivered = open
        .write([Message::new("from the zombie")])
        .await
        .expect("written");

    // A newer instance with the same transactional id fences the first.
    let newer_kafka = component(&fixture, &id);
    let newer = newer_kafka.producer("tp").expect("producer");
    let transaction = newer.begin().await.expect("the newer one runs");
    let _delivered = transaction
        .write([Message::new("from the newer one")])
        .await
        .expect("written");
    transaction.commit().await.expect("committed");

    let error = open.commit().await.unwrap_err();
    assert!(error.is_fenced(), "{error}");
    let text = error.to_string();
    assert!(text.contains("\"tp\"") && text.contains(&id), "{text}");

    // The zombie stops for good: no restart would help.
    let escalation = tokio::time::timeout(common::WAIT, zombie_kafka.escalated())
        .await
        .expect("the fenced producer escalates");
    assert!(escalation.reason.contains("fenced"), "{escalation:?}");
    assert!(zombie.begin().await.is_err());

    let read = read_back(
        fixture.cluster.bootstrap_servers().to_string(),
        fixture.topic.clone(),
        1,
    )
    .await;
    assert_eq!(values(&read), ["from the newer one"]);
    newer_kafka.close().await.expect("closed");
    zombie_kafka.close().await.ok();
}

#[test]
fn a_transactional_producer_needs_acks_from_all_replicas_and_timeouts_in_order() {
    let error = ekafka::Ekafka::from_toml_str(
        "[kafka]\nbrokers = [\"localhost:9092\"]\n[kafka.producers.tp]\ntransactionalID = \"t\"\nrequiredAcks = 1\n",
        "kafka",
    )
    .unwrap_err();
    assert_eq!(error.path(), "kafka.producers.tp.requiredAcks");
    assert!(error.to_string().contains("transactionalID"), "{error}");

    let error = ekafka::Ekafka::from_toml_str(
        "[kafka]\nbrokers = [\"localhost:9092\"]\n[kafka.producers.tp]\ntransactionalID = \"t\"\nwriteTimeout = \"2m\"\n",
        "kafka",
    )
    .unwrap_err();
    assert_eq!(error.path(), "kafka.producers.tp.writeTimeout");
    assert!(error.to_string().contains("transactionTimeout"), "{error}");
}

#[actix::test]
async fn an_at_least_once_server_refuses_a_transactional_dead_letter_producer() {
    let fixture = Fixture::new();
    let kafka = component(&fixture, &unique_name("txn"));
    let config = ekafka::config::ConsumerServerConfig::from_toml_str(
        "[kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\ndeadLetterProducer = \"tp\"\n",
        "kafkaConsumerServers.s1",
    )
    .unwrap();
    let error =
        ekafka::server::ConsumerServer::on_each_message(&kafka, &config, |_m| async { Ok(()) })
            .await
            .unwrap_err();
    let ekafka::Error::Config(error) = error else {
        panic!("a config error, not {error}");
    };
    assert_eq!(error.path(), "kafkaConsumerServers.s1.deadLetterProducer");
    assert!(error.to_string().contains("transactionalID"), "{error}");
}
