//! Quickstart: a TOML config, a supervised producer actor writing messages, and a
//! consumer group delivering them to a subscriber actor, which prints and
//! acknowledges them; the group commits what was acknowledged.
//!
//! Runs on an embedded 3-broker cluster with no setup:
//!
//!     cargo run --example quickstart
//!
//! or against your cluster: `KAFKA_BROKERS=host1:9092,host2:9092 cargo run --example quickstart`
//! (the topic `ekafka-quickstart` must exist there or be auto-created).

use std::collections::HashSet;
use std::time::Duration;

use actix::{Actor, Context, Handler};
use ekafka::consumer::{GroupEvent, MessageBatch};
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

[kafka.consumerGroups.cg1]
groupID = "ekafka-quickstart"
topic = "ekafka-quickstart"
startOffset = -2         # a new group starts from the first message
maxWait = "100ms"
sessionTimeout = "6s"     # a quick takeover after a member leaves (see the README's embedded-cluster limits)
heartbeatInterval = "1s"
"#;

/// Prints every message it is handed, acknowledges it, and reports where it was.
struct Printer(tokio::sync::mpsc::UnboundedSender<(i32, i64)>);

impl Actor for Printer {
    type Context = Context<Self>;
}

impl Handler<MessageBatch> for Printer {
    type Result = ();

    fn handle(&mut self, batch: MessageBatch, _ctx: &mut Context<Self>) {
        for m in batch.messages() {
            println!(
                "consumed {}/{} at offset {}: {:?}",
                m.topic(),
                m.partition(),
                m.offset(),
                m.value_str().unwrap_or("<binary>")
            );
            let _ = self.0.send((m.partition(), m.offset()));
        }
        batch.ack();
    }
}

impl Handler<GroupEvent> for Printer {
    type Result = ();

    fn handle(&mut self, event: GroupEvent, _ctx: &mut Context<Self>) {
        match event {
            GroupEvent::Assigned(a) => println!(
                "assigned {} partition(s) in generation {}",
                a.partitions.len(),
                a.generation
            ),
            GroupEvent::Revoked(r) => println!("revoked {} partition(s)", r.partitions.len()),
            GroupEvent::Error(e) => println!("group error: {}", e.message),
            other => println!("{other:?}"),
        }
    }
}

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

    // Produce.
    let producer = kafka.producer("p1")?;
    let messages = ["Hello World!", "One!", "Two!"]
        .iter()
        .enumerate()
        .map(|(i, text)| Message::new(*text).with_key(format!("key-{i}")));
    let report = producer.write(messages).await?;
    let mut expected = HashSet::new();
    for outcome in report.outcomes() {
        match outcome {
            Outcome::Delivered(d) => {
                println!(
                    "delivered to {}/{} at offset {}",
                    d.topic, d.partition, d.offset
                );
                expected.insert((d.partition, d.offset));
            }
            Outcome::Enqueued => println!("enqueued"),
            Outcome::Failed(e) => println!("failed: {e}"),
            other => println!("{other:?}"),
        }
    }
    if !report.is_success() {
        return Err("some messages were not delivered".into());
    }

    // Consume them through a consumer group and a subscriber actor.
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let printer = Printer(seen_tx).start();
    let group = kafka.consumer_group("cg1")?;
    group.subscribe_events(printer.clone().recipient()).await?;
    group.subscribe(printer.recipient()).await?;
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while !expected.is_empty() {
            match seen.recv().await {
                Some(position) => {
                    expected.remove(&position);
                }
                None => break,
            }
        }
    })
    .await;
    if waited.is_err() || !expected.is_empty() {
        return Err("the produced messages were not consumed within 30s".into());
    }
    for committed in group.commit_acknowledged().await? {
        println!(
            "committed {} at offset {}",
            committed.partition, committed.offset
        );
    }
    group.close().await?;

    let closed = producer.close().await?;
    println!(
        "producer closed, {} message(s) undelivered",
        closed.undelivered.len()
    );
    Ok(())
}
