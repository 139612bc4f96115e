//! Ordered parallelism inside a partition (`concurrency`, `orderBy`): messages
//! of one partition handled at once, never two of one key together and each
//! key in offset order, with the commit never passing a message still running.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use common::{committed_offsets, next, write_all, Fixture};
use ekafka::server::{ConsumerServer, HandlerError};
use ekafka::ConsumedMessage;
use tokio::sync::{mpsc, Barrier, Notify};

/// Writes `count` messages to partition 0, message `i` keyed `k{i % keys}`
/// with value `k{i % keys}:{i / keys}` (its key and its place in that key).
async fn write_keyed(kafka: &ekafka::Ekafka, count: usize, keys: usize) {
    let messages = (0..count).map(|i| {
        let key = format!("k{}", i % keys);
        ekafka::Message::new(format!("{key}:{}", i / keys))
            .with_key(key)
            .with_partition(0)
    });
    write_all(kafka, messages).await;
}

/// The key and the place in it of a message written by [`write_keyed`].
fn key_and_place(message: &ConsumedMessage) -> (String, usize) {
    let (key, place) = message.value_str().unwrap().split_once(':').unwrap();
    (key.to_string(), place.parse().unwrap())
}

/// What the handler saw: the keys running, the most messages running at
/// once, each key's places in the order handled, and any overlap of one key.
#[derive(Default)]
struct Observed {
    running: HashSet<String>,
    most_at_once: usize,
    handled: BTreeMap<String, Vec<usize>>,
    overlaps: Vec<String>,
}

async fn committed_on_partition_0(fixture: &Fixture, group_id: &str) -> Option<i64> {
    committed_offsets(
        fixture.cluster.bootstrap_servers().to_string(),
        group_id.to_string(),
        fixture.topic.clone(),
    )
    .await[0]
}

#[actix::test]
async fn one_partition_handles_keys_at_once_never_one_key_twice_and_each_key_in_order() {
    const KEYS: usize = 12;
    const COUNT: usize = 240;
    let fixture = Fixture::new();
    let (kafka, config) = common::server_setup(
        &fixture,
        "concurrency = 8\norderBy = \"key\"\nretryBackoff = \"10ms\"",
        "",
    );
    write_keyed(&kafka, COUNT, KEYS).await;

    let observed: Rc<RefCell<Observed>> = Rc::default();
    // The first messages of k0 and k1 wait for each other: one at a time, the
    // test would time out here.
    let both_started = Arc::new(Barrier::new(2));
    let failed_once: Rc<RefCell<HashSet<i64>>> = Rc::default();
    let (done_tx, mut done) = mpsc::unbounded_channel::<i64>();
    let handler_observed = Rc::clone(&observed);
    let server = ConsumerServer::on_each_message(&kafka, &config, move |message| {
        let observed = Rc::clone(&handler_observed);
        let both_started = Arc::clone(&both_started);
        let failed_once = Rc::clone(&failed_once);
        let done = done_tx.clone();
        async move {
            let (key, place) = key_and_place(&message);
            {
                let mut seen = observed.borrow_mut();
                if !seen.running.insert(key.clone()) {
                    seen.overlaps.push(format!("{key}:{place}"));
                }
                seen.most_at_once = seen.most_at_once.max(seen.running.len());
            }
            if message.offset() < 2 {
                both_started.wait().await;
            }
            // Work of a few milliseconds, varying so that messages finish out
            // of offset order.
            tokio::time::sleep(Duration::from_millis(1 + message.offset() as u64 % 4)).await;
            observed.borrow_mut().running.remove(&key);
            // Every 7th place of k5 fails once: its retry holds k5 back only.
            if key == "k5" && place % 7 == 0 && failed_once.borrow_mut().insert(message.offset()) {
                return Err(HandlerError::recoverable("once"));
            }
            observed
                .borrow_mut()
                .handled
                .entry(key)
                .or_default()
                .push(place);
            let _ = done.send(message.offset());
            Ok(())
        }
    })
    .await
    .expect("server started");

    let mut offsets = HashSet::new();
    while offsets.len() < COUNT {
        let offset = next(&mut done, "every message handled").await;
        assert!(offsets.insert(offset), "offset {offset} handled twice");
    }
    let observed = std::mem::take(&mut *observed.borrow_mut());
    assert!(
        observed.overlaps.is_empty(),
        "messages of one key ran at once: {:?}",
        observed.overlaps
    );
    for (key, places) in &observed.handled {
        let in_order: Vec<usize> = (0..COUNT / KEYS).collect();
        assert_eq!(places, &in_order, "{key} handled out of order");
    }
    assert!(
        (2..=8).contains(&observed.most_at_once),
        "at most 8 at once, and more than one: {}",
        observed.most_at_once
    );

    server.group().commit_acknowledged().await.expect("commit");
    assert_eq!(
        committed_on_partition_0(&fixture, &group_id(&kafka)).await,
        Some(COUNT as i64)
    );
    server.close().await.expect("clean close");
}

#[actix::test]
async fn nothing_is_committed_past_a_message_still_running() {
    let fixture = Fixture::new();
    let (kafka, config) = common::server_setup(&fixture, "concurrency = 4", "");
    // 20 keys: nothing waits for its key, only for a free slot.
    write_keyed(&kafka, 20, 20).await;

    let release = Rc::new(Notify::new());
    let (done_tx, mut done) = mpsc::unbounded_channel::<i64>();
    let handler_release = Rc::clone(&release);
    let server = ConsumerServer::on_each_message(&kafka, &config, move |message| {
        let release = Rc::clone(&handler_release);
        let done = done_tx.clone();
        async move {
            if message.offset() == 3 {
                release.notified().await;
            }
            let _ = done.send(message.offset());
            Ok(())
        }
    })
    .await
    .expect("server started");

    // Every message but offset 3 finishes while it runs.
    let mut finished = HashSet::new();
    while finished.len() < 19 {
        finished.insert(next(&mut done, "the other messages handled").await);
    }
    assert!(!finished.contains(&3));
    // Their acknowledgements were sent before the handlers returned; this
    // commit comes after them, and may not pass offset 3.
    server.group().commit_acknowledged().await.expect("commit");
    let group_id = group_id(&kafka);
    assert_eq!(committed_on_partition_0(&fixture, &group_id).await, Some(3));

    release.notify_one();
    assert_eq!(next(&mut done, "offset 3 handled").await, 3);
    server.group().commit_acknowledged().await.expect("commit");
    assert_eq!(
        committed_on_partition_0(&fixture, &group_id).await,
        Some(20)
    );
    server.close().await.expect("clean close");
}

#[actix::test]
async fn a_message_failing_for_good_stops_its_partition_there_and_the_others_are_not_redone() {
    let fixture = Fixture::new();
    let (kafka, config) = common::server_setup(
        &fixture,
        "concurrency = 4\nrestartBackoff = \"100ms\"\nmaxRestarts = 3",
        "",
    );
    write_keyed(&kafka, 12, 12).await;

    let attempts: Rc<RefCell<BTreeMap<i64, u32>>> = Rc::default();
    let (done_tx, mut done) = mpsc::unbounded_channel::<i64>();
    let handler_attempts = Rc::clone(&attempts);
    let server = ConsumerServer::on_each_message(&kafka, &config, move |message| {
        let attempts = Rc::clone(&handler_attempts);
        let done = done_tx.clone();
        async move {
            let attempt = {
                let mut attempts = attempts.borrow_mut();
                let count = attempts.entry(message.offset()).or_default();
                *count += 1;
                *count
            };
            // No dead-letter topic: the partition stops at offset 2.
            if message.offset() == 2 && attempt == 1 {
                return Err(HandlerError::fatal("bad on the first try"));
            }
            let _ = done.send(message.offset());
            Ok(())
        }
    })
    .await
    .expect("server started");

    let mut handled = HashSet::new();
    while handled.len() < 12 {
        handled.insert(next(&mut done, "every message handled").await);
    }
    let attempts = attempts.borrow().clone();
    assert_eq!(attempts[&2], 2, "offset 2 handled again after the restart");
    for (offset, count) in &attempts {
        if *offset != 2 {
            assert_eq!(*count, 1, "offset {offset} handled once");
        }
    }
    let status = server.status().await.expect("status");
    assert_eq!(status.partition_restarts, 1);
    assert!(status.stopped.is_empty());
    server.group().commit_acknowledged().await.expect("commit");
    assert_eq!(
        committed_on_partition_0(&fixture, &group_id(&kafka)).await,
        Some(12)
    );
    server.close().await.expect("clean close");
}

#[actix::test]
async fn order_by_none_runs_messages_of_one_key_at_once() {
    let fixture = Fixture::new();
    let (kafka, config) = common::server_setup(&fixture, "concurrency = 2\norderBy = \"none\"", "");
    // One key for all.
    write_keyed(&kafka, 6, 1).await;

    let both_started = Arc::new(Barrier::new(2));
    let (done_tx, mut done) = mpsc::unbounded_channel::<i64>();
    let server = ConsumerServer::on_each_message(&kafka, &config, move |message| {
        let both_started = Arc::clone(&both_started);
        let done = done_tx.clone();
        async move {
            // Offsets 0 and 1, of the same key, wait for each other.
            if message.offset() < 2 {
                both_started.wait().await;
            }
            let _ = done.send(message.offset());
            Ok(())
        }
    })
    .await
    .expect("server started");

    let mut handled = HashSet::new();
    while handled.len() < 6 {
        handled.insert(next(&mut done, "every message handled").await);
    }
    server.close().await.expect("clean close");
}

#[test]
fn an_unknown_order_is_refused_naming_the_key_and_the_choices() {
    let error = ekafka::config::ConsumerServerConfig::from_toml_str(
        "[kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\nconcurrency = 4\norderBy = \"offset\"\n",
        "kafkaConsumerServers.s1",
    )
    .unwrap_err();
    assert_eq!(error.path(), "kafkaConsumerServers.s1.orderBy");
    let text = error.to_string();
    assert!(
        text.contains("\"offset\"") && text.contains("\"key\" or \"none\""),
        "{text}"
    );

    let error = ekafka::config::ConsumerServerConfig::from_toml_str(
        "[kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\nconcurrency = 0\n",
        "kafkaConsumerServers.s1",
    )
    .unwrap_err();
    assert_eq!(error.path(), "kafkaConsumerServers.s1.concurrency");
}

/// The `groupID` of group `cg1`.
fn group_id(kafka: &ekafka::Ekafka) -> String {
    kafka.config().consumer_groups["cg1"].group_id.clone()
}
