//! Non-blocking retries through delay topics: a message that keeps failing
//! goes to `orders-retry-2s`, then `orders-retry-5s`, and is handled again
//! when each delay has passed, while the other orders of its partition are
//! handled at once.
//!
//!     cargo run --example retry_topics
//!
//! Runs on an embedded cluster: it writes six orders to one partition; the
//! handler fails order 1 twice (the billing service is "busy") and succeeds
//! on the third try, about 7 seconds later. Every call is printed with the
//! time since the start and the topic it was read from.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ekafka::config::ConsumerServerConfig;
use ekafka::server::{headers, ConsumerServer, HandlerError};
use ekafka::testing::EmbeddedCluster;
use ekafka::{ConsumedMessage, Ekafka, Message};

const CONFIG: &str = r#"
[kafka]
brokers = ["127.0.0.1:9092"]   # replaced by the embedded cluster's

[kafka.producers.orders]
topic = "orders"
batchTimeout = "5ms"

[kafka.consumerGroups.billing]
groupID = "billing"
topic = "orders"
maxWait = "100ms"
sessionTimeout = "6s"
heartbeatInterval = "1s"

[kafkaConsumerServers.billing]
consumerGroupName = "billing"
retries = 0                        # no in-place retries: straight to the delay topics
retryTopics = ["2s", "5s"]         # orders-retry-2s, then orders-retry-5s
retryProducer = "orders"           # writes to them (the topic is set per message)
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    actix::System::new().block_on(async {
        let cluster = EmbeddedCluster::start()?;
        // On Kafka the server makes missing delay topics itself, with the
        // partitions of the topic they delay; the embedded cluster cannot
        // create topics through the admin API, so they are made here.
        for topic in ["orders", "orders-retry-2s", "orders-retry-5s"] {
            cluster.create_topic(topic)?;
        }
        let kafka = Ekafka::from_toml_str(CONFIG, "kafka")?
            .with_brokers(cluster.brokers())
            .build()?;
        let config = ConsumerServerConfig::from_toml_str(CONFIG, "kafkaConsumerServers.billing")?;
        let orders = (0..6).map(|i| Message::new(format!("order-{i}")).with_partition(0));
        kafka
            .producer("orders")?
            .write(orders)
            .await?
            .into_result()?;

        let started = Instant::now();
        let tries = Rc::new(Cell::new(0));
        let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel::<()>();
        let server =
            ConsumerServer::on_each_message(&kafka, &config, move |message: ConsumedMessage| {
                let tries = Rc::clone(&tries);
                let done = done_tx.clone();
                async move {
                    let text = message.value_str().unwrap_or_default().to_string();
                    let attempts = message
                        .header(headers::ATTEMPTS)
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .unwrap_or("0");
                    print!(
                        "{:>5.1}s  {text} from {} (attempts before: {attempts})",
                        started.elapsed().as_secs_f64(),
                        message.topic()
                    );
                    if text == "order-1" {
                        tries.set(tries.get() + 1);
                        if tries.get() < 3 {
                            println!(" -> billing busy");
                            return Err(HandlerError::recoverable("billing service busy"));
                        }
                    }
                    println!(" -> handled");
                    let _ = done.send(());
                    Ok(())
                }
            })
            .await?;

        // Bounded, so the example cannot hang: 30s for six orders.
        tokio::time::timeout(Duration::from_secs(30), async {
            for _ in 0..6 {
                done.recv().await;
            }
        })
        .await
        .map_err(|_| "the orders were not all handled within 30s")?;
        server.close().await?;
        kafka.close().await?;
        println!("all six handled; order-1 after two delay topics, the others without waiting");
        Ok(())
    })
}
