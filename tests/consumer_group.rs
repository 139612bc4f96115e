//! Consumer groups on the embedded cluster: delivery to subscriber actors, order,
//! commits, restarts from committed offsets, rebalances, bounded buffering.

mod common;

use std::collections::{BTreeMap, HashSet};

use common::{forwarder, group_config, next, produce, Fixture};
use ekafka::consumer::{GroupEvent, MessageBatch};
use ekafka::testing::unique_name;
use ekafka::Ekafka;

/// Receives batches until `count` messages arrived; acks each batch. Returns the
/// values per partition, in arrival order.
async fn receive(
    batches: &mut tokio::sync::mpsc::UnboundedReceiver<MessageBatch>,
    count: usize,
) -> BTreeMap<i32, Vec<(i64, String)>> {
    let mut by_partition: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    let mut received = 0;
    while received < count {
        let batch = next(batches, &format!("message {} of {count}", received + 1)).await;
        for m in batch.messages() {
            by_partition
                .entry(m.partition)
                .or_default()
                .push((m.offset, m.value_str().unwrap().to_string()));
        }
        received += batch.messages().len();
        batch.ack();
    }
    by_partition
}

#[actix::test]
async fn every_message_arrives_once_in_order_per_partition_and_is_committed() {
    let fixture = Fixture::new();
    let kafka = Ekafka::from_toml_str(&group_config(&fixture, &unique_name("group"), ""), "kafka")
        .unwrap()
        .build()
        .unwrap();
    produce(&kafka, "m", 300).await;

    let group = kafka.consumer_group("cg1").unwrap();
    let (subscriber, mut batches) = forwarder::<MessageBatch>();
    group.subscribe(subscriber).await.unwrap();
    let by_partition = receive(&mut batches, 300).await;

    assert_eq!(by_partition.len(), 3, "all three partitions delivered");
    let mut seen = HashSet::new();
    for (partition, messages) in &by_partition {
        let offsets: Vec<i64> = messages.iter().map(|(o, _)| *o).collect();
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets, expected,
            "partition {partition}: every offset once, in order"
        );
        for (_, value) in messages {
            assert!(seen.insert(value.clone()), "{value} delivered twice");
        }
    }
    assert_eq!(seen.len(), 300);

    // Everything acknowledged is committed: offset = messages per partition.
    let status = group.status().await.unwrap();
    let committed: BTreeMap<i32, i64> = status
        .committed
        .iter()
        .map(|c| (c.partition.partition, c.offset))
        .collect();
    let expected: BTreeMap<i32, i64> = by_partition
        .iter()
        .map(|(p, m)| (*p, m.len() as i64))
        .collect();
    assert_eq!(committed, expected);
    group.close().await.unwrap();
}
