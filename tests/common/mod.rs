//! Helpers shared by the integration tests: an embedded cluster per test, configs
//! pointing at it, and a plain rdkafka consumer to read back what was written.

#![allow(dead_code)] // each test file uses its own subset

pub(crate) mod kafka;
pub(crate) mod scenarios;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ekafka::testing::{unique_name, TestCluster};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// How long any wait in a test may take before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// A cluster (embedded, or the broker `EKAFKA_TEST_BROKERS` names) with one
/// fresh 3-partition topic.
pub(crate) struct Fixture {
    pub cluster: TestCluster,
    pub topic: String,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        // The embedded cluster, or the broker EKAFKA_TEST_BROKERS names.
        Fixture::on(TestCluster::from_env().expect("test cluster available"))
    }

    /// A fresh topic on `cluster`.
    pub(crate) fn on(cluster: TestCluster) -> Self {
        let topic = unique_name("topic");
        cluster.create_topic(&topic).expect("topic created");
        Fixture { cluster, topic }
    }

    /// A `[kafka]` config with producer `p1` on the topic plus `extra` producer keys
    /// (a 5ms batch timeout unless `extra` sets one: tests should not wait 1s per write).
    pub(crate) fn config(&self, extra_producer_keys: &str) -> String {
        let batch_timeout = if extra_producer_keys.contains("batchTimeout") {
            ""
        } else {
            "batchTimeout = \"5ms\""
        };
        format!(
            "[kafka]\n{}\n[kafka.producers.p1]\ntopic = {:?}\n{batch_timeout}\n{extra_producer_keys}\n",
            self.cluster.brokers_line(),
            self.topic,
        )
    }

    pub(crate) fn kafka(&self, extra_producer_keys: &str) -> ekafka::Ekafka {
        ekafka::Ekafka::from_toml_str(&self.config(extra_producer_keys), "kafka")
            .expect("valid config")
            .build()
            .expect("component builds")
    }

    /// Reads `count` messages of the topic from the beginning of every partition.
    pub(crate) async fn read_back(&self, count: usize) -> Vec<ReadMessage> {
        read_back(
            self.cluster.bootstrap_servers().to_string(),
            self.topic.clone(),
            count,
        )
        .await
    }
}

/// A message as read back from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadMessage {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Option<i64>,
}

/// Reads `count` messages of `topic` (3 partitions) from the beginning, or fails
/// the test after [`WAIT`].
pub(crate) async fn read_back(bootstrap: String, topic: String, count: usize) -> Vec<ReadMessage> {
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", unique_name("reader"))
            .set("enable.auto.commit", "false")
            .create()
            .expect("reader created");
        let mut assignment = TopicPartitionList::new();
        for partition in 0..3 {
            assignment
                .add_partition_offset(&topic, partition, Offset::Beginning)
                .expect("partition added");
        }
        consumer.assign(&assignment).expect("assigned");
        let started = Instant::now();
        let mut read = Vec::with_capacity(count);
        while read.len() < count {
            assert!(
                started.elapsed() < WAIT,
                "read {} of {count} messages from {topic} within {WAIT:?}",
                read.len()
            );
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => read.push(ReadMessage {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    headers: m
                        .headers()
                        .map(|hs| {
                            hs.iter()
                                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                                .collect()
                        })
                        .unwrap_or_default(),
                    timestamp: m.timestamp().to_millis(),
                }),
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None => {}
            }
        }
        read
    })
    .await
    .expect("reader thread")
}

/// Receives batches until `count` messages arrived; acks each batch. Returns the
/// values per partition, in arrival order.
pub(crate) async fn receive(
    batches: &mut tokio::sync::mpsc::UnboundedReceiver<ekafka::MessageBatch>,
    count: usize,
) -> BTreeMap<i32, Vec<(i64, String)>> {
    let mut by_partition: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    let mut received = 0;
    while received < count {
        let batch = next(batches, &format!("message {} of {count}", received + 1)).await;
        for m in batch.messages() {
            by_partition
                .entry(m.partition())
                .or_default()
                .push((m.offset(), m.value_str().unwrap().to_string()));
        }
        received += batch.messages().len();
        batch.ack();
    }
    by_partition
}

/// Per partition, the offset an [`ekafka::Error::Uncommitted`] names; panics
/// on any other error.
pub(crate) fn uncommitted_offsets(error: &ekafka::Error) -> BTreeMap<i32, i64> {
    let ekafka::Error::Uncommitted { offsets, .. } = error else {
        panic!("expected Error::Uncommitted, got {error}");
    };
    offsets
        .iter()
        .map(|o| (o.partition.partition, o.offset))
        .collect()
}

/// Polls `check` until it returns `Some`, or panics after [`WAIT`].
pub(crate) async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            started.elapsed() < WAIT,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`eventually`] for a check that has to await: polls it until it returns
/// `Some`, or panics after [`WAIT`].
pub(crate) async fn eventually_async<T, F>(what: &str, mut check: impl FnMut() -> F) -> T
where
    F: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < WAIT,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An actor that forwards every message it receives to a channel, for tests
/// that subscribe actors to events.
pub(crate) struct Forward<M: Send + 'static>(pub tokio::sync::mpsc::UnboundedSender<M>);

impl<M: Send + 'static> actix::Actor for Forward<M> {
    type Context = actix::Context<Self>;
}

impl<M> actix::Handler<M> for Forward<M>
where
    M: actix::Message<Result = ()> + Send + 'static,
{
    type Result = ();

    fn handle(&mut self, message: M, _ctx: &mut Self::Context) {
        let _ = self.0.send(message);
    }
}

/// Starts a [`Forward`] actor; returns its recipient and the receiving end.
pub(crate) fn forwarder<M>() -> (actix::Recipient<M>, tokio::sync::mpsc::UnboundedReceiver<M>)
where
    M: actix::Message<Result = ()> + Send + 'static,
{
    use actix::Actor;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (Forward(tx).start().recipient(), rx)
}

/// Milliseconds since the Unix epoch, now: message timestamps a broker keeps.
pub(crate) fn now_millis() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since_epoch.as_millis()).expect("in range")
}

/// Receives the next value or fails the test after [`WAIT`].
pub(crate) async fn next<M>(rx: &mut tokio::sync::mpsc::UnboundedReceiver<M>, what: &str) -> M {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
        .unwrap_or_else(|| panic!("channel closed while waiting for {what}"))
}

/// A writer whose output the test can read back (log and debug capture).
#[derive(Clone, Default)]
pub(crate) struct Captured(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("UTF-8 output")
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The group protocol keys every test group gets: quick classic timings, or
/// `groupProtocol = "consumer"` (KIP-848, whose timings the broker sets) when
/// `EKAFKA_TEST_GROUP_PROTOCOL=consumer`, as `./e2e.sh` runs the group
/// scenarios a second time.
pub(crate) fn group_protocol_keys() -> &'static str {
    match std::env::var("EKAFKA_TEST_GROUP_PROTOCOL").as_deref() {
        Ok("consumer") => "groupProtocol = \"consumer\"\n",
        Ok("classic") | Err(_) => "heartbeatInterval = \"1s\"\nsessionTimeout = \"6s\"\n",
        Ok(other) => panic!("EKAFKA_TEST_GROUP_PROTOCOL={other}: expected classic or consumer"),
    }
}

/// Whether the tests run their groups under KIP-848 (see [`group_protocol_keys`]).
pub(crate) fn consumer_protocol() -> bool {
    group_protocol_keys().contains("consumer")
}

/// A config with producer `p1` and consumer group `cg1` (group id `group`) on the
/// fixture's topic, with quick group timings for tests; `group_keys` are added to
/// the group's table.
///
/// The timings (1s heartbeats, 6s sessions) suit both backends: with 300ms and
/// 3s, tansu 0.6.0's coordinator never settles a two-member rebalance (the
/// members leapfrog each other's generations).
pub(crate) fn group_config(fixture: &Fixture, group: &str, group_keys: &str) -> String {
    group_and_producer_config(fixture, group, group_keys, "")
}

/// [`group_config`] with extra keys for producer `p1` too.
pub(crate) fn group_and_producer_config(
    fixture: &Fixture,
    group: &str,
    group_keys: &str,
    producer_keys: &str,
) -> String {
    format!(
        "{}\n[kafka.consumerGroups.cg1]\ngroupID = {group:?}\ntopic = {:?}\n\
         {}maxWait = \"100ms\"\n{group_keys}\n",
        fixture.config(producer_keys),
        fixture.topic,
        group_protocol_keys(),
    )
}

/// Writes `count` messages `prefix-0`, `prefix-1`, ... through producer `p1`,
/// keyed so they spread over the partitions, and checks they were all delivered.
pub(crate) async fn produce(kafka: &ekafka::Ekafka, prefix: &str, count: usize) {
    let messages =
        (0..count).map(|i| ekafka::Message::new(format!("{prefix}-{i}")).with_key(format!("{i}")));
    write_all(kafka, messages).await;
}

/// Writes `messages` through producer `p1` and checks they were all delivered.
pub(crate) async fn write_all(
    kafka: &ekafka::Ekafka,
    messages: impl IntoIterator<Item = ekafka::Message>,
) {
    let producer = kafka.producer("p1").expect("producer p1");
    let report = producer.write(messages).await.expect("write accepted");
    assert!(report.is_success(), "{:?}", report.failures().next());
}

/// Starts an each-message server whose handler sends each message's value to
/// the returned channel.
pub(crate) async fn value_reporting_server(
    kafka: &ekafka::Ekafka,
    config: &ekafka::config::ConsumerServerConfig,
) -> (
    ekafka::server::RunningServer,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let (values, received) = tokio::sync::mpsc::unbounded_channel();
    let server = ekafka::server::ConsumerServer::on_each_message(
        kafka,
        config,
        move |message: ekafka::ConsumedMessage| {
            let values = values.clone();
            async move {
                let _ = values.send(message.value_str().unwrap().to_string());
                Ok(())
            }
        },
    )
    .await
    .expect("server started");
    (server, received)
}

/// Captures everything logged in this test binary, at every level, librdkafka's
/// own lines included (one global subscriber per binary).
pub(crate) fn capture_all_logs() -> &'static Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let sink = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .init();
        logs
    })
}

/// The offsets group `group_id` committed on the 3 partitions of `topic`, read
/// from outside the group (`None` where nothing is committed).
pub(crate) async fn committed_offsets(
    bootstrap: String,
    group_id: String,
    topic: String,
) -> Vec<Option<i64>> {
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &group_id)
            .create()
            .expect("offset reader created");
        let mut partitions = TopicPartitionList::new();
        for partition in 0..3 {
            partitions.add_partition(&topic, partition);
        }
        let committed = consumer
            .committed_offsets(partitions, WAIT)
            .expect("committed offsets read");
        (0..3)
            .map(|partition| {
                match committed
                    .find_partition(&topic, partition)
                    .map(|e| e.offset())
                {
                    Some(Offset::Offset(offset)) => Some(offset),
                    _ => None,
                }
            })
            .collect()
    })
    .await
    .expect("offset reader ran")
}

/// A component and server `s1` (each-message on group `cg1`, fresh group id,
/// 500ms drain) on the fixture, with extra keys for the server and producer `p1`.
pub(crate) fn server_setup(
    fixture: &Fixture,
    server_keys: &str,
    producer_keys: &str,
) -> (ekafka::Ekafka, ekafka::config::ConsumerServerConfig) {
    let text = format!(
        "{}\n[kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\n{server_keys}\n",
        group_and_producer_config(
            fixture,
            &unique_name("group"),
            "drainTimeout = \"500ms\"",
            producer_keys
        )
    );
    let kafka = ekafka::Ekafka::from_toml_str(&text, "kafka")
        .expect("valid config")
        .build()
        .expect("component builds");
    let server =
        ekafka::config::ConsumerServerConfig::from_toml_str(&text, "kafkaConsumerServers.s1")
            .expect("valid server config");
    (kafka, server)
}
