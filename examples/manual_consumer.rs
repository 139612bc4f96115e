//! The two manual consumer-server modes: your function gets the consumer (or the
//! consumer group) and a shutdown signal, and drives consumption itself.
//!
//!     cargo run --example manual_consumer

use std::time::Duration;

use ekafka::config::ConsumerServerConfig;
use ekafka::server::{ConsumerServer, HandlerError};
use ekafka::testing::EmbeddedCluster;
use ekafka::{Ekafka, Event, Message};

const CONFIG: &str = r#"
[kafka]
brokers = ["127.0.0.1:9092"]   # replaced by the embedded cluster's

[kafka.producers.p1]
topic = "events"
batchTimeout = "5ms"

[kafka.consumers.c1]
topic = "events"
groupID = "manual-consumer"
maxWait = "100ms"

[kafka.consumerGroups.cg1]
topic = "events"
groupID = "manual-group"
maxWait = "100ms"
sessionTimeout = "6s"     # a quick takeover after a member leaves (see the README's embedded-cluster limits)
heartbeatInterval = "1s"

[kafkaConsumerServers.s1]
consumerName = "c1"
consumerGroupName = "cg1"
"#;

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = EmbeddedCluster::start()?;
    cluster.create_topic("events")?;
    let kafka = Ekafka::from_toml_str(CONFIG, "kafka")?
        .with_brokers(cluster.brokers())
        .build()?;
    let config = ConsumerServerConfig::from_toml_str(CONFIG, "kafkaConsumerServers.s1")?;
    let messages = (0..3).map(|i| Message::new(format!("event-{i}")));
    kafka.producer("p1")?.write(messages).await?.into_result()?;

    // On start: read with the consumer until shutdown is requested.
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let server = ConsumerServer::on_start(&kafka, &config, move |consumer, mut shutdown| {
        // The function may be called again after a failure: each call gets its own sender.
        let seen_tx = seen_tx.clone();
        async move {
            loop {
                tokio::select! {
                    _ = shutdown.requested() => break,
                    message = consumer.read() => {
                        let message = message.map_err(HandlerError::fatal)?;
                        println!("on start: {:?} (read and committed)", message.value_str());
                        let _ = seen_tx.send(());
                    }
                }
            }
            consumer.close().await.map_err(HandlerError::fatal)
        }
    })?;
    for _ in 0..3 {
        tokio::time::timeout(Duration::from_secs(30), seen.recv()).await?;
    }
    server.shutdown().await?;

    // On consumer-group start: poll the group, commit, return when done.
    let server =
        ConsumerServer::on_consumer_group_start(&kafka, &config, |group, shutdown| async move {
            let mut handled = 0;
            while handled < 3 && !shutdown.is_requested() {
                match group.poll().await.map_err(HandlerError::fatal)? {
                    Event::Message(message) => {
                        println!("on group start: {:?}", message.value_str());
                        group
                            .commit(&[message])
                            .await
                            .map_err(HandlerError::fatal)?;
                        handled += 1;
                    }
                    Event::Assigned(a) => println!(
                        "on group start: assigned {} partition(s)",
                        a.partitions.len()
                    ),
                    other => println!("on group start: {other:?}"),
                }
            }
            group.close().await.map_err(HandlerError::fatal)
        })?;
    tokio::time::timeout(Duration::from_secs(30), server.wait()).await??;
    println!("both manual modes done");
    Ok(())
}
