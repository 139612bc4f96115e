//! A consumer server in each-message mode: a handler per message, recoverable
//! failures retried with backoff, failures for good sent to a dead-letter topic.
//!
//!     cargo run --example consumer_server
//!
//! Runs on an embedded cluster, inside an [`App`]: it writes ten orders, one of
//! which the handler cannot parse and one it succeeds on only at the third
//! attempt, and shuts the App down gracefully once all ten are handled or
//! dead-lettered (Ctrl-C does the same earlier).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use actix::{Actor, Context, Handler};
use ekafka::config::ConsumerServerConfig;
use ekafka::server::{FailureAction, HandlerError, HandlerFailure};
use ekafka::testing::EmbeddedCluster;
use ekafka::{App, ConsumedMessage, Ekafka, Message};

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
sessionTimeout = "6s"     # a quick takeover after a member leaves (see the README's embedded-cluster limits)
heartbeatInterval = "1s"

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
            other => format!("{other:?}"),
        };
        println!(
            "  {:?} failed (attempt {}): {} -> {what}",
            failure.message.value_str().unwrap_or("?"),
            failure.attempts,
            failure.error
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `App::run()` starts the actix System itself; here the orders are written
    // first, so the example starts the System and calls `serve` inside it.
    actix::System::new().block_on(async {
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

        let app = App::new(kafka).subscribe_failures(Reporter.start().recipient());
        // Ctrl-C (SIGINT) or SIGTERM stops the App gracefully; so does this
        // handle, which the handler uses once all ten orders are done.
        let stop = app.handle();
        let finished = Rc::new(Cell::new(0));
        let flaky_attempts = Rc::new(Cell::new(0));
        let app = app.each_message(server_config, move |message: ConsumedMessage| {
            let (stop, finished) = (stop.clone(), Rc::clone(&finished));
            let flaky_attempts = Rc::clone(&flaky_attempts);
            async move {
                let text = message.value_str().unwrap_or_default().to_string();
                let done = || {
                    finished.set(finished.get() + 1);
                    if finished.get() == 10 {
                        stop.shutdown();
                    }
                };
                if text.contains("{not json") {
                    // Dead-lettered once this returns, and counted as handled.
                    done();
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
                    message.partition(),
                    message.offset()
                );
                done();
                Ok(())
            }
        });
        // Bounded, so the example cannot hang: 30s for ten orders.
        tokio::time::timeout(Duration::from_secs(30), app.serve())
            .await
            .map_err(|_| "the orders were not all handled within 30s")??;
        println!("all orders handled or dead-lettered; offsets committed; producers flushed");
        Ok(())
    })
}
