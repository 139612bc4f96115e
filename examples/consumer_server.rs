//! A consumer server in each-message mode: a handler per message, recoverable
//! failures retried with backoff, failures for good sent to a dead-letter topic.
//!
//!     cargo run --example consumer_server
//!
//! Runs on an embedded cluster; it writes ten orders, one of which the handler
//! cannot parse and one it succeeds on only at the third attempt, and exits once
//! all ten are handled or dead-lettered.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use actix::{Actor, Context, Handler};
use ekafka::config::ConsumerServerConfig;
use ekafka::server::{ConsumerServer, FailureAction, HandlerError, HandlerFailure};
use ekafka::testing::EmbeddedCluster;
use ekafka::{ConsumedMessage, Ekafka, Message};

const CONFIG: &str = r#"
[kafka]
brokers = ["127.0.0.1:9092"]   # replaced by the embedded cluster's

[kafka.producers.orders]
topic = "orders"
batchTimeout = "5ms"

[kafka.producers.dead-letters]
topic = "orders.dlq"
batchTimeout = "5ms"

[kafka.consumerGroups.billing]
groupID = "billing"
topic = "orders"
maxWait = "100ms"

[kafkaConsumerServers.billing]
consumerGroupName = "billing"
retries = 3
retryBackoff = "100ms"
deadLetterProducer = "dead-letters"
"#;

/// Prints what the server reports about failures.
struct Reporter;

impl Actor for Reporter {
    type Context = Context<Self>;
}

impl Handler<HandlerFailure> for Reporter {
    type Result = ();
    fn handle(&mut self, failure: HandlerFailure, _: &mut Context<Self>) {
        let what = match failure.action {
            FailureAction::Retrying(delay) => format!("retrying in {delay:?}"),
            FailureAction::DeadLettered => "sent to the dead-letter topic".to_string(),
            FailureAction::Stopped => "partition stopped".to_string(),
        };
        println!(
            "  {:?} failed (attempt {}): {} -> {what}",
            failure.message.value_str().unwrap_or("?"),
            failure.attempts,
            failure.error
        );
    }
}

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = EmbeddedCluster::start()?;
    cluster.create_topic("orders")?;
    cluster.create_topic("orders.dlq")?;
    let kafka = Ekafka::from_toml_str(CONFIG, "kafka")?
        .with_brokers(cluster.brokers())
        .build()?;
    let server_config =
        ConsumerServerConfig::from_toml_str(CONFIG, "kafkaConsumerServers.billing")?;

    let orders = (0..10).map(|i| match i {
        4 => Message::new("order-4: {not json"),
        7 => Message::new("order-7: flaky"),
        _ => Message::new(format!("order-{i}: ok")),
    });
    kafka
        .producer("orders")?
        .write(orders)
        .await?
        .into_result()?;

    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel::<String>();
    let flaky_attempts = Rc::new(Cell::new(0));
    let server =
        ConsumerServer::on_each_message(&kafka, &server_config, move |message: ConsumedMessage| {
            let done = done_tx.clone();
            let flaky_attempts = Rc::clone(&flaky_attempts);
            async move {
                let text = message.value_str().unwrap_or_default().to_string();
                if text.contains("{not json") {
                    let _ = done.send(text.clone());
                    return Err(HandlerError::fatal("cannot parse the order"));
                }
                if text.contains("flaky") {
                    flaky_attempts.set(flaky_attempts.get() + 1);
                    if flaky_attempts.get() < 3 {
                        return Err(HandlerError::recoverable("billing service busy"));
                    }
                }
                println!(
                    "handled {text:?} (partition {}, offset {})",
                    message.partition, message.offset
                );
                let _ = done.send(text);
                Ok(())
            }
        })
        .await?;
    server
        .subscribe_failures(Reporter.start().recipient())
        .await?;

    let mut finished = 0;
    while finished < 10 {
        match tokio::time::timeout(Duration::from_secs(30), done.recv()).await {
            Ok(Some(_)) => finished += 1,
            _ => return Err("the orders were not all handled within 30s".into()),
        }
    }
    server.group().commit_acknowledged().await?;
    server.close().await?;
    println!("all orders handled or dead-lettered; offsets committed");
    Ok(())
}
