//! Quickstart: a TOML config, a supervised producer actor, deliveries printed.
//!
//! Runs on an embedded 3-broker cluster with no setup:
//!
//!     cargo run --example quickstart
//!
//! or against your cluster: `KAFKA_BROKERS=host1:9092,host2:9092 cargo run --example quickstart`
//! (the topic `ekafka-quickstart` must exist there or be auto-created).

use ekafka::testing::EmbeddedCluster;
use ekafka::{Ekafka, Message, Outcome};

const CONFIG: &str = r#"
[kafka]
brokers = ["127.0.0.1:9092"]   # replaced below by the embedded cluster or KAFKA_BROKERS

[kafka.client]
timeout = "3s"

[kafka.producers.p1]
topic = "ekafka-quickstart"
balancer = "hash"        # equal keys, same partition
batchTimeout = "10ms"    # the Go default of 1s makes every synchronous write wait a second
requiredAcks = -1        # all in-sync replicas (the default)
compression = 4          # zstd
"#;

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("warn").init();

    // Keep the embedded cluster alive until the end of main.
    let (brokers, _cluster) = match std::env::var("KAFKA_BROKERS") {
        Ok(list) if !list.trim().is_empty() => {
            println!("using the cluster at {list}");
            (
                list.split(',').map(|b| b.trim().to_string()).collect(),
                None,
            )
        }
        _ => {
            let cluster = EmbeddedCluster::start()?;
            cluster.create_topic("ekafka-quickstart")?;
            println!(
                "started an embedded cluster at {}",
                cluster.bootstrap_servers()
            );
            (cluster.brokers(), Some(cluster))
        }
    };

    let kafka = Ekafka::from_toml_str(CONFIG, "kafka")?
        .with_brokers(brokers)
        .build()?;
    let producer = kafka.producer("p1")?;

    let messages = ["Hello World!", "One!", "Two!"]
        .iter()
        .enumerate()
        .map(|(i, text)| Message::new(*text).with_key(format!("key-{i}")));
    let report = producer.write(messages).await?;
    for outcome in report.outcomes() {
        match outcome {
            Outcome::Delivered(d) => println!(
                "delivered to {}/{} at offset {}",
                d.topic, d.partition, d.offset
            ),
            Outcome::Enqueued => println!("enqueued"),
            Outcome::Failed(e) => println!("failed: {e}"),
        }
    }

    let closed = producer.close().await?;
    println!(
        "producer closed, {} message(s) undelivered",
        closed.undelivered.len()
    );
    if !report.is_success() || !closed.is_clean() {
        return Err("some messages were not delivered".into());
    }
    Ok(())
}
