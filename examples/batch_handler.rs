//! A batch handler: readings stored in a (simulated) database table one
//! insert statement per call of up to 200, and what happens when one row of
//! a batch is refused.
//!
//!     cargo run --example batch_handler
//!
//! Runs on an embedded cluster: it writes 1,000 readings over three
//! partitions. The table refuses a reading with a negative sensor id; the
//! handler reports its index, so the rows before it are committed, it goes
//! to `readings-dead`, and the rows after it come in the next call.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use ekafka::config::ConsumerServerConfig;
use ekafka::server::{headers, BatchFailure, ConsumerServer, HandlerError};
use ekafka::testing::EmbeddedCluster;
use ekafka::{ConsumedMessage, Ekafka, Message};

const CONFIG: &str = r#"
[kafka]
brokers = ["127.0.0.1:9092"]   # replaced by the embedded cluster's

[kafka.producers.readings]
topic = "readings"
batchTimeout = "5ms"

[kafka.consumerGroups.store]
groupID = "store"
topic = "readings"
maxWait = "100ms"
sessionTimeout = "6s"
heartbeatInterval = "1s"

[kafka.consumers.dead]
topic = "readings-dead"
partition = 0
maxWait = "100ms"

[kafkaConsumerServers.store]
consumerGroupName = "store"
batchSize = 200                # rows per insert statement
batchWait = "50ms"             # how long a partial batch waits to fill
deadLetterProducer = "readings"
deadLetterTopic = "readings-dead"
"#;

/// A table that costs 5 ms per statement, whatever its size, and refuses
/// negative sensor ids.
#[derive(Default)]
struct Table {
    rows: Vec<(i64, f64)>,
    statements: usize,
}

/// Inserts `rows` into `table` in one statement, or refuses the first bad
/// one: the rows before it are stored, as a database reports with its index.
async fn insert(table: &RefCell<Table>, rows: &[(i64, f64)]) -> Result<(), (usize, String)> {
    // The statement's round trip; partitions' calls run side by side meanwhile.
    tokio::time::sleep(Duration::from_millis(5)).await;
    table.borrow_mut().store(rows)
}

impl Table {
    fn store(&mut self, rows: &[(i64, f64)]) -> Result<(), (usize, String)> {
        self.statements += 1;
        for (index, row) in rows.iter().enumerate() {
            if row.0 < 0 {
                return Err((
                    index,
                    format!("sensor id {} violates sensor_id >= 0", row.0),
                ));
            }
            self.rows.push(*row);
        }
        Ok(())
    }
}

fn parse(message: &ConsumedMessage) -> (i64, f64) {
    let text = message.value_str().unwrap_or_default();
    let (sensor, celsius) = text.split_once(':').unwrap_or(("0", "0"));
    (sensor.parse().unwrap_or(0), celsius.parse().unwrap_or(0.0))
}

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = EmbeddedCluster::start()?;
    cluster.create_topic("readings")?;
    cluster.create_topic_with("readings-dead", 1, 1)?;
    let kafka = Ekafka::from_toml_str(CONFIG, "kafka")?
        .with_brokers(cluster.brokers())
        .build()?;
    let config = ConsumerServerConfig::from_toml_str(CONFIG, "kafkaConsumerServers.store")?;

    let readings = (0..1000).map(|i| {
        let sensor = if i == 421 { -7 } else { i % 50 };
        Message::new(format!("{sensor}:{}", 20.0 + f64::from(i % 10) / 10.0))
    });
    kafka
        .producer("readings")?
        .write(readings)
        .await?
        .into_result()?;

    let table = Rc::new(RefCell::new(Table::default()));
    let calls: Rc<RefCell<BTreeMap<i32, Vec<usize>>>> = Rc::default();
    let (stored_tx, mut stored) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let (handler_table, handler_calls) = (Rc::clone(&table), Rc::clone(&calls));
    let server = ConsumerServer::on_each_batch(&kafka, &config, move |messages| {
        let (table, calls, stored) = (
            Rc::clone(&handler_table),
            Rc::clone(&handler_calls),
            stored_tx.clone(),
        );
        async move {
            let rows: Vec<(i64, f64)> = messages.iter().map(parse).collect();
            calls
                .borrow_mut()
                .entry(messages[0].partition())
                .or_default()
                .push(rows.len());
            let result = insert(&table, &rows).await;
            let handled = result
                .as_ref()
                .map_or_else(|(index, _)| *index, |()| rows.len());
            let _ = stored.send(handled);
            result.map_err(|(index, reason)| BatchFailure::at(index, HandlerError::fatal(reason)))
        }
    })
    .await?;

    // Bounded, so the example cannot hang: 999 rows stored, one dead-lettered.
    let waited = Duration::from_secs(30);
    tokio::time::timeout(waited, async {
        let mut total = 0;
        while total < 999 {
            total += stored.recv().await.unwrap_or(0);
        }
    })
    .await
    .map_err(|_| "the readings were not all stored within 30s")?;
    let dead = tokio::time::timeout(waited, kafka.consumer("dead")?.read())
        .await
        .map_err(|_| "nothing dead-lettered within 30s")??;

    for (partition, sizes) in calls.borrow().iter() {
        println!("partition {partition}: calls of {sizes:?} rows");
    }
    let (rows, statements) = {
        let table = table.borrow();
        (table.rows.len(), table.statements)
    };
    println!("{rows} rows stored in {statements} statements");
    println!(
        "dead-lettered {:?}: {}",
        dead.value_str().unwrap_or_default(),
        dead.header(headers::ERROR)
            .map(String::from_utf8_lossy)
            .unwrap_or_default()
    );
    server.close().await?;
    kafka.close().await?;
    Ok(())
}
