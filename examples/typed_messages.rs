//! Typed messages: orders written and handled as a Rust type through the
//! built-in JSON codec, and a message that is not an order dead-lettered
//! with where it was read and why.
//!
//!     cargo run --example typed_messages
//!
//! Runs on an embedded cluster: it writes four orders keyed by customer,
//! then a message from an older service in a format the codec does not
//! read. The handler gets `Order` values; the stray message never reaches
//! it: it goes to `orders-dead` at once (a message that does not decode
//! will not decode on a retry), and the example reads it back from there.

use std::time::Duration;

use ekafka::codec::Json;
use ekafka::config::ConsumerServerConfig;
use ekafka::server::{headers, ConsumerServer};
use ekafka::testing::EmbeddedCluster;
use ekafka::{Ekafka, Message};
use serde::{Deserialize, Serialize};

const CONFIG: &str = r#"
[kafka]
brokers = ["127.0.0.1:9092"]   # replaced by the embedded cluster's

[kafka.producers.orders]
topic = "orders"
balancer = "hash"              # one customer's orders on one partition, in order
batchTimeout = "5ms"

[kafka.consumerGroups.billing]
groupID = "billing"
topic = "orders"
maxWait = "100ms"
sessionTimeout = "6s"
heartbeatInterval = "1s"

[kafka.consumers.dead]
topic = "orders-dead"
partition = 0
maxWait = "100ms"

[kafkaConsumerServers.billing]
consumerGroupName = "billing"
deadLetterProducer = "orders"
deadLetterTopic = "orders-dead"
"#;

#[derive(Debug, Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    cents: u64,
}

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = EmbeddedCluster::start()?;
    cluster.create_topic("orders")?;
    cluster.create_topic_with("orders-dead", 1, 1)?;
    let kafka = Ekafka::from_toml_str(CONFIG, "kafka")?
        .with_brokers(cluster.brokers())
        .build()?;
    let config = ConsumerServerConfig::from_toml_str(CONFIG, "kafkaConsumerServers.billing")?;

    let producer = kafka.producer("orders")?;
    let orders = producer
        .typed(Json)
        .keyed_by(|order: &Order| order.customer.clone());
    let written = [
        (1, "ada", 1250),
        (2, "bob", 300),
        (3, "ada", 4999),
        (4, "cy", 75),
    ]
    .map(|(id, customer, cents)| Order {
        id,
        customer: customer.into(),
        cents,
    });
    orders.write(&written).await?.into_result()?;
    // An older service still writes CSV.
    producer
        .write([Message::new("5,dee,1000").with_key("dee")])
        .await?
        .into_result()?;

    let (handled_tx, mut handled) = tokio::sync::mpsc::unbounded_channel();
    let server =
        ConsumerServer::on_each_value(&kafka, &config, Json, move |order: Order, message| {
            let handled = handled_tx.clone();
            async move {
                println!(
                    "order {} from {}: {}.{:02} (partition {}, offset {})",
                    order.id,
                    order.customer,
                    order.cents / 100,
                    order.cents % 100,
                    message.partition(),
                    message.offset()
                );
                let _ = handled.send(order.id);
                Ok(())
            }
        })
        .await?;

    // Bounded, so the example cannot hang.
    let waited = Duration::from_secs(30);
    tokio::time::timeout(waited, async {
        for _ in 0..written.len() {
            handled.recv().await;
        }
    })
    .await
    .map_err(|_| "the orders were not all handled within 30s")?;
    let dead = tokio::time::timeout(waited, kafka.consumer("dead")?.read())
        .await
        .map_err(|_| "nothing dead-lettered within 30s")??;
    let why = dead
        .header(headers::ERROR)
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    println!(
        "dead-lettered {:?}: {why}",
        dead.value_str().unwrap_or_default()
    );

    server.close().await?;
    kafka.close().await?;
    Ok(())
}
