//! Exactly-once consume-transform-produce: every order read from `orders`
//! becomes an invoice written to `invoices`, and the invoices of a run of
//! orders commit in one transaction with the offsets of those orders. A
//! `read_committed` reader of `invoices` sees each order's invoice once, even
//! when the process dies mid-way: a transaction that did not commit is
//! aborted, and its orders are handled again.
//!
//!     cargo run --example exactly_once
//!
//! Runs on an embedded cluster: writes twelve orders, one of which the
//! handler fails on the first time (its partition stops there and handles it
//! again after the backoff: its invoice is still written once), then reads
//! the invoices back as a `read_committed` reader.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use ekafka::config::ConsumerServerConfig;
use ekafka::consumer::Event;
use ekafka::server::{ConsumerServer, HandlerError};
use ekafka::testing::EmbeddedCluster;
use ekafka::{ConsumedMessage, Ekafka, Message};

const CONFIG: &str = r#"
[kafka]
brokers = ["127.0.0.1:9092"]   # replaced by the embedded cluster's

[kafka.producers.orders]
topic = "orders"
batchTimeout = "5ms"

[kafka.producers.invoices]
topic = "invoices"
batchTimeout = "5ms"
transactionalID = "billing-1"  # unique per running instance, stable across its restarts

[kafka.consumerGroups.billing]
groupID = "billing"
topic = "orders"
maxWait = "100ms"
sessionTimeout = "6s"
heartbeatInterval = "1s"

[kafka.consumerGroups.audit]
groupID = "audit"
topic = "invoices"
maxWait = "100ms"
sessionTimeout = "6s"
heartbeatInterval = "1s"
isolationLevel = "read_committed"   # the default: only committed transactions are read

[kafkaConsumerServers.billing]
consumerGroupName = "billing"
transactionalProducer = "invoices"
restartBackoff = "200ms"
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    actix::System::new().block_on(async {
        let cluster = EmbeddedCluster::start()?;
        cluster.create_topic("orders")?;
        cluster.create_topic("invoices")?;
        let kafka = Ekafka::from_toml_str(CONFIG, "kafka")?
            .with_brokers(cluster.brokers())
            .build()?;
        let config = ConsumerServerConfig::from_toml_str(CONFIG, "kafkaConsumerServers.billing")?;
        let orders = (0..12).map(|i| Message::new(format!("order-{i}")).with_key(format!("{i}")));
        kafka
            .producer("orders")?
            .write(orders)
            .await?
            .into_result()?;

        let failed_once = Rc::new(Cell::new(false));
        let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel::<()>();
        let server = ConsumerServer::on_each_message_transform(
            &kafka,
            &config,
            move |order: ConsumedMessage| {
                let (failed_once, done) = (Rc::clone(&failed_once), done_tx.clone());
                async move {
                    let text = order.value_str().unwrap_or_default().to_string();
                    if text == "order-5" && !failed_once.replace(true) {
                        println!(
                            "{text}: pricing service down; its partition stops here and retries"
                        );
                        return Err(HandlerError::fatal("pricing service down"));
                    }
                    println!(
                        "{text} (partition {}, offset {}) -> invoice",
                        order.partition(),
                        order.offset()
                    );
                    let _ = done.send(());
                    Ok(vec![Message::new(format!("invoice for {text}"))
                        .with_key(order.key().unwrap_or_default())])
                }
            },
        )
        .await?;

        // Bounded, so the example cannot hang: 30s for twelve orders.
        tokio::time::timeout(Duration::from_secs(30), async {
            for _ in 0..12 {
                done.recv().await;
            }
        })
        .await
        .map_err(|_| "the orders were not all handled within 30s")?;
        // Closing lets the transaction in flight commit.
        server.close().await?;

        // A read_committed reader of the invoices sees each one once.
        let audit = kafka.consumer_group("audit")?;
        let mut invoices = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), async {
            while invoices.len() < 12 {
                if let Event::Message(invoice) = audit.poll().await? {
                    invoices.push(invoice.value_str().unwrap_or_default().to_string());
                    audit.ack(&invoice).await?;
                }
            }
            Ok::<_, ekafka::Error>(())
        })
        .await
        .map_err(|_| "the invoices were not all read within 30s")??;
        invoices.sort();
        invoices.dedup();
        println!("read back {} distinct invoices", invoices.len());
        kafka.close().await?;
        println!("twelve invoices, each written once, committed with their orders' offsets");
        Ok(())
    })
}
