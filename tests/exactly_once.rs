//! Exactly-once consume-transform-produce (`on_each_message_transform` with a
//! `transactionalProducer`): each input's outputs are seen once by a
//! `read_committed` reader, with the input offsets committed in the same
//! transactions, also when a handler fails, and (on Apache Kafka) when the
//! process is killed with SIGKILL in the middle of the stream.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{committed_offsets, forwarder, next, write_all, Fixture};
use ekafka::config::ConsumerServerConfig;
use ekafka::interceptor::{ClientInfo, Interceptor, Rejection};
use ekafka::server::{ConsumerServer, HandlerError, HandlerFailure};
use ekafka::testing::unique_name;
use ekafka::{Ekafka, Message};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::ClientConfig;

/// The child process of the crash test runs this test with these set.
const CHILD: &str = "EKAFKA_EOS_CHILD";

/// Config text: group `cg1` on `input`, transactional producer `tp` (id
/// `transactional_id`) writing to `output`, server `s1` joining them.
fn config_text(
    brokers_line: &str,
    input: &str,
    output: &str,
    group_id: &str,
    transactional_id: &str,
) -> String {
    format!(
        "[kafka]\n{brokers_line}\n\
         [kafka.producers.tp]\ntopic = {output:?}\nbatchTimeout = \"5ms\"\ntransactionalID = {transactional_id:?}\n\
         [kafka.consumerGroups.cg1]\ngroupID = {group_id:?}\ntopic = {input:?}\nmaxWait = \"100ms\"\n\
         deliveryBatch = 20\n{}\
         [kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\ntransactionalProducer = \"tp\"\n\
         restartBackoff = \"100ms\"\n",
        common::group_protocol_keys(),
    )
}

fn setup(fixture: &Fixture, output: &str) -> (Ekafka, ConsumerServerConfig, String) {
    let group_id = unique_name("group");
    let text = config_text(
        &fixture.cluster.brokers_line(),
        &fixture.topic,
        output,
        &group_id,
        &unique_name("txn"),
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .expect("valid config")
        .build()
        .expect("component builds");
    let server = ConsumerServerConfig::from_toml_str(&text, "kafkaConsumerServers.s1")
        .expect("valid server config");
    (kafka, server, group_id)
}

/// Writes `in-0` .. `in-{count-1}` to the input topic, spread over its partitions.
async fn write_inputs(fixture: &Fixture, count: usize) {
    let text = format!("{}\n", fixture.config(""));
    let writer = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    write_all(
        &writer,
        (0..count).map(|i| Message::new(format!("in-{i}")).with_key(format!("{i}"))),
    )
    .await;
    writer.close().await.expect("writer closed");
}

/// Every message of `topic` a `read_committed` reader sees, up to the end
/// of each of its 3 partitions (its last stable offset), by value.
async fn committed_outputs(bootstrap: String, topic: String) -> BTreeMap<String, usize> {
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", unique_name("reader"))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .create()
            .expect("reader created");
        consumer.subscribe(&[&topic]).expect("subscribed");
        let mut seen = BTreeMap::new();
        let mut at_end = std::collections::HashSet::new();
        let started = std::time::Instant::now();
        while at_end.len() < 3 {
            assert!(
                started.elapsed() < common::WAIT,
                "reading {topic} timed out"
            );
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
                    *seen.entry(value.into_owned()).or_insert(0) += 1;
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(partition))) => {
                    at_end.insert(partition);
                }
                Some(Err(error)) => panic!("reading {topic}: {error}"),
                None => {}
            }
        }
        seen
    })
    .await
    .expect("reader ran")
}

fn expected(count: usize) -> BTreeMap<String, usize> {
    (0..count).map(|i| (format!("out-{i}"), 1)).collect()
}

#[actix::test]
async fn each_inputs_output_commits_once_with_the_input_offsets() {
    let fixture = Fixture::new();
    let output = unique_name("output");
    fixture.cluster.create_topic(&output).expect("output topic");
    let (kafka, config, group_id) = setup(&fixture, &output);
    write_inputs(&fixture, 60).await;

    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel::<()>();
    let server = ConsumerServer::on_each_message_transform(&kafka, &config, move |input| {
        let done = done_tx.clone();
        async move {
            let value = input.value_str().unwrap_or_default().replace("in-", "out-");
            let _ = done.send(());
            Ok(vec![Message::new(value)])
        }
    })
    .await
    .expect("server started");
    for _ in 0..60 {
        next(&mut done, "every input handled").await;
    }
    server.close().await.expect("clean close");

    let bootstrap = fixture.cluster.bootstrap_servers().to_string();
    assert_eq!(
        committed_outputs(bootstrap.clone(), output).await,
        expected(60)
    );
    let committed = committed_offsets(bootstrap, group_id, fixture.topic.clone()).await;
    assert_eq!(committed.iter().flatten().sum::<i64>(), 60, "{committed:?}");
    kafka.close().await.expect("closed");
}

#[actix::test]
async fn a_failed_transaction_is_aborted_and_its_inputs_handled_again_without_duplicates() {
    let fixture = Fixture::new();
    let output = unique_name("output");
    fixture.cluster.create_topic(&output).expect("output topic");
    let (kafka, config, _) = setup(&fixture, &output);
    write_inputs(&fixture, 30).await;

    let calls = std::rc::Rc::new(std::cell::RefCell::new(BTreeMap::<String, u32>::new()));
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel::<String>();
    let handler_calls = std::rc::Rc::clone(&calls);
    let server = ConsumerServer::on_each_message_transform(&kafka, &config, move |input| {
        let calls = std::rc::Rc::clone(&handler_calls);
        let done = done_tx.clone();
        async move {
            let value = input.value_str().unwrap_or_default().to_string();
            let call = {
                let mut calls = calls.borrow_mut();
                let count = calls.entry(value.clone()).or_default();
                *count += 1;
                *count
            };
            // in-7 fails for good the first time: no dead-letter topic, so its
            // partition stops there; the transaction holds in-7's partition
            // mates handled before it, and outputs of two messages per input.
            if value == "in-7" && call == 1 {
                return Err(HandlerError::fatal("bad input, once"));
            }
            let _ = done.send(value.clone());
            let out = value.replace("in-", "out-");
            Ok(vec![
                Message::new(out.clone()),
                Message::new(format!("{out}-audit")),
            ])
        }
    })
    .await
    .expect("server started");
    let mut handled = std::collections::BTreeSet::new();
    while handled.len() < 30 {
        handled.insert(next(&mut done, "every input handled").await);
    }
    server.close().await.expect("clean close");

    let outputs = committed_outputs(fixture.cluster.bootstrap_servers().to_string(), output).await;
    let mut wanted = expected(30);
    wanted.extend((0..30).map(|i| (format!("out-{i}-audit"), 1)));
    assert_eq!(outputs, wanted);
    assert_eq!(calls.borrow()["in-7"], 2);
    kafka.close().await.expect("closed");
}

#[actix::test]
async fn an_output_refused_before_sending_fails_its_input_which_is_handled_again_once() {
    let fixture = Fixture::new();
    let output = unique_name("output");
    fixture.cluster.create_topic(&output).expect("output topic");
    let (kafka, config, _) = setup(&fixture, &output);
    write_inputs(&fixture, 30).await;

    let calls = std::rc::Rc::new(std::cell::RefCell::new(BTreeMap::<String, u32>::new()));
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel::<String>();
    let handler_calls = std::rc::Rc::clone(&calls);
    let server = ConsumerServer::on_each_message_transform(&kafka, &config, move |input| {
        let calls = std::rc::Rc::clone(&handler_calls);
        let done = done_tx.clone();
        async move {
            let value = input.value_str().unwrap_or_default().to_string();
            let call = {
                let mut calls = calls.borrow_mut();
                let count = calls.entry(value.clone()).or_default();
                *count += 1;
                *count
            };
            let out = value.replace("in-", "out-");
            let _ = done.send(value.clone());
            // in-7's first output names a topic that cannot exist: refused
            // by the producer before sending, so never in the transaction.
            if value == "in-7" && call == 1 {
                return Ok(vec![Message::new(out).with_topic("not a topic!")]);
            }
            Ok(vec![Message::new(out)])
        }
    })
    .await
    .expect("server started");
    let (failures_tx, mut failures) = forwarder::<HandlerFailure>();
    server.subscribe_failures(failures_tx).await.unwrap();
    let mut handled = std::collections::BTreeSet::new();
    while handled.len() < 30 || calls.borrow().get("in-7") != Some(&2) {
        handled.insert(next(&mut done, "every input handled, in-7 twice").await);
    }
    let failure = next(&mut failures, "in-7's failure reported").await;
    assert_eq!(failure.message.value_str(), Some("in-7"));
    let reason = failure.error.to_string();
    assert!(
        reason.contains("not a valid topic name") && reason.contains("not a topic!"),
        "{reason}"
    );
    server.close().await.expect("clean close");

    let outputs = committed_outputs(fixture.cluster.bootstrap_servers().to_string(), output).await;
    assert_eq!(
        outputs,
        expected(30),
        "each output once, in-7's from its second call"
    );
    assert_eq!(calls.borrow()["in-7"], 2);
    kafka.close().await.expect("closed");
}

/// Rejects the first write holding `out-7`.
struct RejectOnce(std::sync::atomic::AtomicBool);

impl Interceptor for RejectOnce {
    fn name(&self) -> &str {
        "reject-once"
    }

    fn before_write(
        &self,
        _client: &ClientInfo,
        messages: &mut Vec<Message>,
    ) -> Result<(), Rejection> {
        let holds_out_7 = messages
            .iter()
            .any(|m| m.value.as_deref() == Some(&b"out-7"[..]));
        if holds_out_7 && !self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(Rejection {
                reason: "out-7 is not welcome today".into(),
            });
        }
        Ok(())
    }
}

#[actix::test]
async fn an_output_an_interceptor_rejects_fails_its_input_which_is_handled_again_once() {
    let fixture = Fixture::new();
    let output = unique_name("output");
    fixture.cluster.create_topic(&output).expect("output topic");
    let text = config_text(
        &fixture.cluster.brokers_line(),
        &fixture.topic,
        &output,
        &unique_name("group"),
        &unique_name("txn"),
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .with_interceptor(RejectOnce(std::sync::atomic::AtomicBool::new(false)))
        .build()
        .unwrap();
    let config = ConsumerServerConfig::from_toml_str(&text, "kafkaConsumerServers.s1").unwrap();
    write_inputs(&fixture, 30).await;

    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel::<String>();
    let server = ConsumerServer::on_each_message_transform(&kafka, &config, move |input| {
        let done = done_tx.clone();
        async move {
            let value = input.value_str().unwrap_or_default().to_string();
            let _ = done.send(value.clone());
            Ok(vec![Message::new(value.replace("in-", "out-"))])
        }
    })
    .await
    .expect("server started");
    let (failures_tx, mut failures) = forwarder::<HandlerFailure>();
    server.subscribe_failures(failures_tx).await.unwrap();
    let mut calls = BTreeMap::<String, u32>::new();
    while calls.len() < 30 || calls.get("in-7") != Some(&2) {
        *calls
            .entry(next(&mut done, "every input handled, in-7 twice").await)
            .or_default() += 1;
    }
    let failure = next(&mut failures, "in-7's failure reported").await;
    assert_eq!(failure.message.value_str(), Some("in-7"));
    let reason = failure.error.to_string();
    assert!(reason.contains("out-7 is not welcome today"), "{reason}");
    server.close().await.expect("clean close");

    let outputs = committed_outputs(fixture.cluster.bootstrap_servers().to_string(), output).await;
    assert_eq!(
        outputs,
        expected(30),
        "each output once, in-7's from its second call"
    );
    kafka.close().await.expect("closed");
}

/// The crash test's child: runs the server until its stdin closes (the
/// parent kills the first child with SIGKILL long before).
#[actix::test]
#[ignore = "the child process of the crash test"]
async fn eos_child() {
    let Ok(text) = std::env::var(CHILD) else {
        return;
    };
    // Its log goes to the parent's stderr, so a failed run shows why.
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,ekafka=info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    let config = ConsumerServerConfig::from_toml_str(&text, "kafkaConsumerServers.s1").unwrap();
    let slow = std::env::var("EKAFKA_EOS_SLOW").is_ok();
    let server =
        ConsumerServer::on_each_message_transform(&kafka, &config, move |input| async move {
            if slow {
                // Long enough per input for the parent to kill the process
                // mid-stream: 400 inputs take 24 s, against the few seconds
                // the parent takes to see the first 40 outputs committed.
                // (At 20 ms the first child finished every input before
                // the parent's second look, once outputs stopped waiting
                // for their delivery one by one.)
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
            let value = input.value_str().unwrap_or_default().replace("in-", "out-");
            Ok(vec![Message::new(value)])
        })
        .await
        .unwrap();
    println!("EOS CHILD RUNNING");
    // The parent closes stdin to stop a child gracefully.
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
    })
    .await
    .unwrap();
    server.close().await.unwrap();
    kafka.close().await.unwrap();
}

fn spawn_child(text: &str, slow: bool) -> Child {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args(["eos_child", "--exact", "--ignored", "--nocapture"])
        .env(CHILD, text)
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    if slow {
        command.env("EKAFKA_EOS_SLOW", "1");
    }
    command.spawn().expect("child started")
}

#[actix::test]
#[ignore = "needs Apache Kafka (a broker outside this process, which survives the kill): ./e2e.sh runs it"]
async fn a_sigkill_mid_stream_still_yields_each_output_exactly_once() {
    const COUNT: usize = 400;
    let fixture = Fixture::new();
    let output = unique_name("output");
    fixture.cluster.create_topic(&output).expect("output topic");
    write_inputs(&fixture, COUNT).await;
    let bootstrap = fixture.cluster.bootstrap_servers().to_string();
    // The same transactional id for both children: the second's start aborts
    // what the killed one left open at once.
    let text = config_text(
        &fixture.cluster.brokers_line(),
        &fixture.topic,
        &output,
        &unique_name("group"),
        &unique_name("txn"),
    );

    let mut first = spawn_child(&text, true);
    // Kill it once some outputs are committed, and well before all are.
    common::eventually_async("the first child's first commits", || {
        let (bootstrap, output) = (bootstrap.clone(), output.clone());
        async move {
            let seen = committed_outputs(bootstrap, output).await;
            (seen.len() >= 40).then_some(seen.len())
        }
    })
    .await;
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    let after_kill = committed_outputs(bootstrap.clone(), output.clone())
        .await
        .len();
    assert!(
        after_kill < COUNT,
        "killed mid-stream: {after_kill} of {COUNT} done"
    );

    let mut second = spawn_child(&text, false);
    // The restarted process waits for the killed member's session (6 s) and
    // fences its open transaction before it reads on. A 30 s bound was passed
    // in about one run of ten on Apache Kafka 4.4 (cause not pinned down; the
    // children's logs go to stderr, and the failure says how far it got).
    let restarted = std::time::Instant::now();
    let seen = loop {
        let seen = committed_outputs(bootstrap.clone(), output.clone()).await;
        if seen.len() >= COUNT {
            break seen;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(60),
            "{} of {COUNT} outputs committed {:?} after the restart ({after_kill} when it was killed)",
            seen.len(),
            restarted.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Graceful stop: closing stdin.
    drop(second.stdin.take());
    let status = second.wait().expect("second child ended");
    assert!(status.success(), "{status}");
    assert_eq!(seen, expected(COUNT), "each input's output exactly once");
    let final_read = committed_outputs(bootstrap, output).await;
    assert_eq!(final_read, expected(COUNT));
}
