//! Typed messages through a codec: values written by a typed producer come
//! to typed handlers and subscribers once, in order per partition, on their
//! keys' partitions; a message that does not decode is a failure for good
//! (dead-lettered, or stopping its partition) naming where it was read and
//! why; a codec of your own plugs in; a value that does not encode fails its
//! write with nothing written.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use actix::{Actor, Context, Handler};
use common::{forwarder, next, Fixture};
use ekafka::codec::{CodecError, Decoder, Encoded, Encoder, Json};
use ekafka::consumer::ValueBatch;
use ekafka::server::{
    headers, ConsumerServer, FailureAction, HandleValue, HandlerError, HandlerFailure,
};
use ekafka::testing::unique_name;
use ekafka::{ConsumedMessage, Delivery, Ekafka, Error, Message};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u32,
    customer: String,
}

fn orders(count: u32) -> Vec<Order> {
    (0..count)
        .map(|id| Order {
            id,
            customer: format!("c-{}", id % 7),
        })
        .collect()
}

/// Writes `values` through producer `p1`, keyed by customer; returns where
/// each one was stored.
async fn write_orders(kafka: &Ekafka, values: &[Order]) -> Vec<Delivery> {
    let typed = kafka
        .producer("p1")
        .unwrap()
        .typed(Json)
        .keyed_by(|order: &Order| order.customer.clone());
    let report = typed.write(values).await.expect("write accepted");
    report.into_result().expect("every order delivered")
}

fn header(message: &common::ReadMessage, key: &str) -> Option<String> {
    message
        .headers
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.clone())
        .map(|v| String::from_utf8(v).unwrap())
}

#[actix::test]
async fn typed_values_arrive_once_in_order_per_partition_on_their_keys_partitions() {
    let fixture = Fixture::new();
    let (kafka, config) = common::server_setup(&fixture, "", "balancer = \"hash\"");
    let written = orders(60);
    write_orders(&kafka, &written).await;

    let (handled_tx, mut handled) = tokio::sync::mpsc::unbounded_channel();
    let server = ConsumerServer::on_each_value(
        &kafka,
        &config,
        Json,
        move |order: Order, message: ConsumedMessage| {
            let handled = handled_tx.clone();
            async move {
                let _ = handled.send((order, message));
                Ok(())
            }
        },
    )
    .await
    .unwrap();

    let mut by_partition: BTreeMap<i32, Vec<(i64, Order)>> = BTreeMap::new();
    for _ in 0..written.len() {
        let (order, message) = next(&mut handled, "every order").await;
        assert_eq!(
            message.key(),
            Some(order.customer.as_bytes()),
            "keyed by customer"
        );
        by_partition
            .entry(message.partition())
            .or_default()
            .push((message.offset(), order));
    }
    let mut seen = BTreeSet::new();
    let mut partition_of_customer = BTreeMap::new();
    for (partition, handled) in &by_partition {
        let offsets: Vec<i64> = handled.iter().map(|(o, _)| *o).collect();
        assert_eq!(
            offsets,
            (0..handled.len() as i64).collect::<Vec<_>>(),
            "partition {partition}: in order"
        );
        let ids: Vec<u32> = handled.iter().map(|(_, o)| o.id).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "partition {partition}: written order, {ids:?}"
        );
        for (_, order) in handled {
            assert!(seen.insert(order.id), "order {} handled twice", order.id);
            let placed = partition_of_customer
                .entry(order.customer.clone())
                .or_insert(*partition);
            assert_eq!(
                placed, partition,
                "{}'s orders on one partition",
                order.customer
            );
        }
    }
    assert_eq!(seen.len(), written.len());

    server.group().commit_acknowledged().await.unwrap();
    let status = server.group().status().await.unwrap();
    assert_eq!(status.committed.iter().map(|c| c.offset).sum::<i64>(), 60);
    server.close().await.unwrap();
    assert!(handled.try_recv().is_err(), "nothing handled twice");
}

#[actix::test]
async fn a_message_that_does_not_decode_is_dead_lettered_once_naming_where_and_why() {
    let fixture = Fixture::new();
    let dlq = unique_name("dlq");
    fixture.cluster.create_topic(&dlq).unwrap();
    let (kafka, config) = common::server_setup(
        &fixture,
        &format!("retries = 3\ndeadLetterProducer = \"p1\"\ndeadLetterTopic = {dlq:?}"),
        "",
    );
    let before = orders(10);
    write_orders(&kafka, &before).await;
    common::write_all(&kafka, [Message::new(r#"{"id": 99}"#).with_key("c-1")]).await;
    let after: Vec<Order> = orders(20).split_off(10);
    write_orders(&kafka, &after).await;

    let (handled_tx, mut handled) = tokio::sync::mpsc::unbounded_channel();
    let (failures_tx, mut failures) = forwarder::<HandlerFailure>();
    let server = ConsumerServer::builder(&kafka, &config)
        .subscribe_failures(failures_tx)
        .on_each_value(Json, move |order: Order, _| {
            let handled = handled_tx.clone();
            async move {
                let _ = handled.send(order.id);
                Ok(())
            }
        })
        .await
        .unwrap();

    let mut ids = BTreeSet::new();
    while ids.len() < 20 {
        ids.insert(next(&mut handled, "every order that decodes").await);
    }
    assert_eq!(
        ids,
        (0..20).collect(),
        "the others go on, before and after it"
    );

    let dead = common::read_back(fixture.cluster.bootstrap_servers().to_string(), dlq, 1).await;
    let dead = &dead[0];
    assert_eq!(
        dead.value.as_deref(),
        Some(&br#"{"id": 99}"#[..]),
        "as it was read"
    );
    assert_eq!(dead.key.as_deref(), Some(&b"c-1"[..]));
    let partition = header(dead, headers::ORIGINAL_PARTITION).unwrap();
    let offset = header(dead, headers::ORIGINAL_OFFSET).unwrap();
    assert_eq!(
        header(dead, headers::ERROR).unwrap(),
        format!(
            "{}/{partition}@{offset} cannot be decoded: JSON: missing field `customer` at line 1 column 10",
            fixture.topic
        )
    );
    assert_eq!(
        header(dead, headers::ATTEMPTS).as_deref(),
        Some("1"),
        "never retried"
    );

    let failure = next(&mut failures, "the failure report").await;
    assert_eq!(failure.action, FailureAction::DeadLettered);
    assert_eq!(failure.attempts, 1);
    assert!(!failure.error.is_recoverable());
    assert_eq!(failure.message.offset().to_string(), offset);

    server.group().commit_acknowledged().await.unwrap();
    let status = server.group().status().await.unwrap();
    assert_eq!(
        status.committed.iter().map(|c| c.offset).sum::<i64>(),
        21,
        "it counts as handled"
    );
    server.close().await.unwrap();
}

#[actix::test]
async fn a_message_that_does_not_decode_without_a_dead_letter_topic_stops_its_partition_there() {
    let fixture = Fixture::new();
    let (kafka, config) = common::server_setup(&fixture, "restartBackoff = \"30s\"", "");
    let mut placed: Vec<(u32, Delivery)> = Vec::new();
    let first = orders(30);
    placed.extend(
        first
            .iter()
            .map(|o| o.id)
            .zip(write_orders(&kafka, &first).await),
    );
    let report = kafka
        .producer("p1")
        .unwrap()
        .write([Message::new("not json").with_key("c-2")])
        .await
        .unwrap();
    let garbled = report.into_result().unwrap().remove(0);
    let later = orders(40).split_off(30);
    placed.extend(
        later
            .iter()
            .map(|o| o.id)
            .zip(write_orders(&kafka, &later).await),
    );
    // Every order is handled but those after the garbled message on its partition.
    let expected: BTreeSet<u32> = placed
        .iter()
        .filter(|(_, d)| d.partition != garbled.partition || d.offset < garbled.offset)
        .map(|(id, _)| *id)
        .collect();
    assert!(
        expected.len() < 40,
        "some orders follow it on its partition"
    );

    let (handled_tx, mut handled) = tokio::sync::mpsc::unbounded_channel();
    let (failures_tx, mut failures) = forwarder::<HandlerFailure>();
    let server = ConsumerServer::builder(&kafka, &config)
        .subscribe_failures(failures_tx)
        .on_each_value(Json, move |order: Order, _| {
            let handled = handled_tx.clone();
            async move {
                let _ = handled.send(order.id);
                Ok(())
            }
        })
        .await
        .unwrap();

    let mut seen = BTreeSet::new();
    while seen.len() < expected.len() {
        let id = next(&mut handled, "the orders before it and beside it").await;
        assert!(
            expected.contains(&id),
            "order {id} handled past the garbled message"
        );
        seen.insert(id);
    }
    let failure = next(&mut failures, "the failure report").await;
    assert_eq!(failure.action, FailureAction::Stopped);
    assert_eq!(failure.attempts, 1, "never retried");
    let reason = format!(
        "{}/{}@{} cannot be decoded: JSON: expected ident at line 1 column 2",
        fixture.topic, garbled.partition, garbled.offset
    );
    assert_eq!(failure.error, HandlerError::Fatal(reason.clone()));
    let status = server.status().await.unwrap();
    assert_eq!(status.stopped.len(), 1, "{status:?}");
    let stopped = &status.stopped[0];
    assert_eq!(
        (stopped.partition.partition, stopped.offset),
        (garbled.partition, garbled.offset)
    );
    assert_eq!(stopped.error, format!("fatal: {reason}"));

    server.close().await.unwrap();
    assert!(
        handled.try_recv().is_err(),
        "nothing past it, nothing twice"
    );
    let committed = common::committed_offsets(
        fixture.cluster.bootstrap_servers().to_string(),
        kafka.config().consumer_groups["cg1"].group_id.clone(),
        fixture.topic.clone(),
    )
    .await;
    assert_eq!(
        committed[garbled.partition as usize],
        Some(garbled.offset),
        "committed up to it, not past"
    );
}

/// A sensor reading in a binary format of its own, framed as schema-registry
/// formats are: a magic byte and a schema id before the body. No registry:
/// the codec knows its one schema.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    sensor: u16,
    tenths_celsius: i32,
}

struct ReadingCodec {
    schema: u32,
}

const MAGIC: u8 = 0;

impl Encoder<Reading> for ReadingCodec {
    fn encode(&self, value: &Reading) -> Result<Encoded, CodecError> {
        let mut bytes = vec![MAGIC];
        bytes.extend(self.schema.to_be_bytes());
        bytes.extend(value.sensor.to_be_bytes());
        bytes.extend(value.tenths_celsius.to_be_bytes());
        Ok(Encoded::new(bytes).with_header("content-type", "application/x-reading"))
    }
}

impl Decoder<Reading> for ReadingCodec {
    fn decode(&self, message: &ConsumedMessage) -> Result<Reading, CodecError> {
        let bytes = message.value().ok_or_else(|| CodecError::new("no value"))?;
        let [MAGIC, s0, s1, s2, s3, a, b, c0, c1, c2, c3] = *bytes else {
            return Err(CodecError::new(format!(
                "{} bytes without the magic byte: not a framed reading",
                bytes.len()
            )));
        };
        let schema = u32::from_be_bytes([s0, s1, s2, s3]);
        if schema != self.schema {
            return Err(CodecError::new(format!(
                "schema {schema} is not known (this codec reads schema {})",
                self.schema
            )));
        }
        Ok(Reading {
            sensor: u16::from_be_bytes([a, b]),
            tenths_celsius: i32::from_be_bytes([c0, c1, c2, c3]),
        })
    }
}

/// A handler actor keeping the readings it was given.
struct Thermometer(tokio::sync::mpsc::UnboundedSender<(Reading, Option<Vec<u8>>)>);

impl Actor for Thermometer {
    type Context = Context<Self>;
}

impl Handler<HandleValue<Reading>> for Thermometer {
    type Result = Result<(), HandlerError>;

    fn handle(&mut self, handled: HandleValue<Reading>, _: &mut Context<Self>) -> Self::Result {
        let content_type = handled.message.header("content-type").map(<[u8]>::to_vec);
        let _ = self.0.send((handled.value, content_type));
        Ok(())
    }
}

#[actix::test]
async fn a_codec_of_your_own_carries_values_and_refuses_a_schema_it_does_not_know() {
    let fixture = Fixture::new();
    let dlq = unique_name("dlq");
    fixture.cluster.create_topic(&dlq).unwrap();
    let (kafka, config) = common::server_setup(
        &fixture,
        &format!("deadLetterProducer = \"p1\"\ndeadLetterTopic = {dlq:?}"),
        "balancer = \"hash\"",
    );
    let producer = kafka.producer("p1").unwrap();
    let readings: Vec<Reading> = (0..12)
        .map(|i| Reading {
            sensor: i % 3,
            tenths_celsius: 215 - i32::from(i),
        })
        .collect();
    let current = producer
        .typed(ReadingCodec { schema: 4 })
        .keyed_by(|r: &Reading| r.sensor.to_string());
    current
        .write(&readings[..6])
        .await
        .unwrap()
        .into_result()
        .unwrap();
    // A writer still on an older schema.
    let older = producer
        .typed(ReadingCodec { schema: 3 })
        .keyed_by(|r: &Reading| r.sensor.to_string());
    let stale = Reading {
        sensor: 1,
        tenths_celsius: -40,
    };
    older.write([stale]).await.unwrap().into_result().unwrap();
    current
        .write(&readings[6..])
        .await
        .unwrap()
        .into_result()
        .unwrap();

    let (handled_tx, mut handled) = tokio::sync::mpsc::unbounded_channel();
    let server = ConsumerServer::on_each_value_actor(
        &kafka,
        &config,
        ReadingCodec { schema: 4 },
        Thermometer(handled_tx).start().recipient(),
    )
    .await
    .unwrap();

    let mut by_sensor: BTreeMap<u16, Vec<i32>> = BTreeMap::new();
    for _ in 0..readings.len() {
        let (reading, content_type) = next(&mut handled, "every current reading").await;
        assert_eq!(content_type.as_deref(), Some(&b"application/x-reading"[..]));
        by_sensor
            .entry(reading.sensor)
            .or_default()
            .push(reading.tenths_celsius);
    }
    for (sensor, values) in &by_sensor {
        let written: Vec<i32> = readings
            .iter()
            .filter(|r| r.sensor == *sensor)
            .map(|r| r.tenths_celsius)
            .collect();
        assert_eq!(values, &written, "sensor {sensor}: each once, in order");
    }

    let dead = common::read_back(fixture.cluster.bootstrap_servers().to_string(), dlq, 1).await;
    let error = header(&dead[0], headers::ERROR).unwrap();
    assert!(
        error.starts_with(&format!("{}/", fixture.topic))
            && error
                .ends_with("cannot be decoded: schema 3 is not known (this codec reads schema 4)"),
        "{error}"
    );
    server.close().await.unwrap();
}

#[actix::test]
async fn a_group_subscriber_gets_decoded_values_and_each_undecodable_one_named() {
    let fixture = Fixture::new();
    let kafka = Ekafka::from_toml_str(
        &common::group_config(&fixture, &unique_name("group"), ""),
        "kafka",
    )
    .unwrap()
    .build()
    .unwrap();
    let written = orders(30);
    write_orders(&kafka, &written).await;
    let report = kafka
        .producer("p1")
        .unwrap()
        .write([Message::new("[1, 2]").with_key("c-4")])
        .await
        .unwrap();
    let garbled = report.into_result().unwrap().remove(0);

    let group = kafka.consumer_group("cg1").unwrap();
    let (subscriber, mut batches) = forwarder::<ValueBatch<Order>>();
    group.subscribe_values(Json, subscriber).await.unwrap();

    let mut ids = BTreeSet::new();
    let mut undecodable = Vec::new();
    while ids.len() + undecodable.len() < 31 {
        let batch = next(&mut batches, "the batches").await;
        for (message, value) in batch.iter() {
            match value {
                Ok(order) => {
                    assert_eq!(message.key(), Some(order.customer.as_bytes()));
                    assert!(ids.insert(order.id), "order {} twice", order.id);
                }
                Err(error) => undecodable.push(error.clone()),
            }
        }
        batch.ack();
    }
    assert_eq!(ids, written.iter().map(|o| o.id).collect());
    assert_eq!(undecodable.len(), 1);
    let error = &undecodable[0];
    assert_eq!(
        (error.topic.as_str(), error.partition, error.offset),
        (fixture.topic.as_str(), garbled.partition, garbled.offset)
    );
    assert_eq!(
        error.reason.reason(),
        "JSON: invalid type: integer `2`, expected a string at line 1 column 5"
    );

    group.commit_acknowledged().await.unwrap();
    let status = group.status().await.unwrap();
    assert_eq!(status.committed.iter().map(|c| c.offset).sum::<i64>(), 31);
    group.close().await.unwrap();
}

/// A reading that JSON cannot carry: serde refuses it.
#[derive(Debug)]
struct Celsius(f64);

impl Serialize for Celsius {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            serializer.serialize_f64(self.0)
        } else {
            Err(serde::ser::Error::custom(format!(
                "{} is not a temperature",
                self.0
            )))
        }
    }
}

impl<'de> Deserialize<'de> for Celsius {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        f64::deserialize(deserializer).map(Celsius)
    }
}

#[actix::test]
async fn a_value_that_does_not_encode_fails_its_write_with_nothing_written() {
    let fixture = Fixture::new();
    let kafka = fixture.kafka("balancer = \"hash\"");
    let typed = kafka
        .producer("p1")
        .unwrap()
        .typed(Json)
        .keyed_by(|_: &Celsius| "one partition");

    let refused = typed
        .write([Celsius(21.5), Celsius(f64::NAN), Celsius(19.0)])
        .await
        .unwrap_err();
    match &refused {
        Error::Encode {
            name,
            index,
            source,
        } => {
            assert_eq!((name.as_str(), *index), ("p1", 1));
            assert_eq!(source.reason(), "JSON: NaN is not a temperature");
        }
        other => panic!("expected an encoding error, got {other:?}"),
    }
    assert_eq!(
        refused.to_string(),
        "producer \"p1\": value 1 of the write cannot be encoded, so nothing was written: JSON: NaN is not a temperature"
    );

    // The same key's partition starts with the next write: nothing of the
    // refused one reached it.
    let delivered = typed
        .write([Celsius(20.0)])
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(delivered[0].offset, 0);
    let read = fixture.read_back(1).await;
    assert_eq!(read[0].value.as_deref(), Some(&b"20.0"[..]));
}
