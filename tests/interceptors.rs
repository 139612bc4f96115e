//! Interceptors: user-written ones wrap writes in a documented order, can change
//! or reject a write; the debug interceptor prints requests and responses.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Captured, Fixture};
use ekafka::interceptor::{ClientInfo, DebugInterceptor, Interceptor, Rejection};
use ekafka::{Ekafka, Message, Outcome, ProduceErrorKind, WriteReport};

type Journal = Arc<Mutex<Vec<String>>>;

/// Records when it runs; optionally stamps a header or rejects.
struct Recorder {
    name: &'static str,
    journal: Journal,
    reject: bool,
}

impl Interceptor for Recorder {
    fn name(&self) -> &str {
        self.name
    }

    fn before_write(
        &self,
        client: &ClientInfo,
        messages: &mut Vec<Message>,
    ) -> Result<(), Rejection> {
        self.journal
            .lock()
            .unwrap()
            .push(format!("{} before {}", self.name, client.name));
        for m in messages.iter_mut() {
            m.headers.push(ekafka::Header {
                key: "seen-by".into(),
                value: Some(self.name.as_bytes().to_vec()),
            });
        }
        if self.reject {
            return Err(Rejection {
                reason: "not today".into(),
            });
        }
        Ok(())
    }

    fn after_write(&self, _client: &ClientInfo, report: &WriteReport, _elapsed: Duration) {
        let failed = report.failures().count();
        self.journal.lock().unwrap().push(format!(
            "{} after {} failed={failed}",
            self.name,
            report.outcomes().len()
        ));
    }
}

fn recorder(name: &'static str, journal: &Journal, reject: bool) -> Recorder {
    Recorder {
        name,
        journal: Arc::clone(journal),
        reject,
    }
}

#[actix::test]
async fn a_chain_wraps_the_write_first_added_outermost() {
    let fixture = Fixture::new();
    let journal = Journal::default();
    let kafka = Ekafka::from_toml_str(&fixture.config(""), "kafka")
        .unwrap()
        .with_interceptor(recorder("A", &journal, false))
        .with_interceptor(recorder("B", &journal, false))
        .build()
        .unwrap();
    let report = kafka
        .producer("p1")
        .unwrap()
        .write([Message::new("v")])
        .await
        .unwrap();
    assert!(report.is_success());
    assert_eq!(
        *journal.lock().unwrap(),
        [
            "A before p1",
            "B before p1",
            "B after 1 failed=0",
            "A after 1 failed=0"
        ]
    );
    // Both changes reached the broker, in chain order.
    let read = fixture.read_back(1).await;
    let seen: Vec<_> = read[0]
        .headers
        .iter()
        .filter(|(k, _)| k == "seen-by")
        .map(|(_, v)| v.clone().unwrap())
        .collect();
    assert_eq!(seen, [b"A".to_vec(), b"B".to_vec()]);
}

#[actix::test]
async fn a_rejection_stops_the_write_and_only_outer_interceptors_see_it() {
    let fixture = Fixture::new();
    let journal = Journal::default();
    let kafka = Ekafka::from_toml_str(&fixture.config(""), "kafka")
        .unwrap()
        .with_interceptor(recorder("outer", &journal, false))
        .with_interceptor(recorder("gate", &journal, true))
        .with_interceptor(recorder("inner", &journal, false))
        .build()
        .unwrap();
    let report = kafka
        .producer("p1")
        .unwrap()
        .write([Message::new("a"), Message::new("b")])
        .await
        .unwrap();
    assert_eq!(
        *journal.lock().unwrap(),
        [
            "outer before p1",
            "gate before p1",
            "outer after 2 failed=2"
        ]
    );
    for outcome in report.outcomes() {
        match outcome {
            Outcome::Failed(e) => {
                assert_eq!(
                    e.kind,
                    ProduceErrorKind::Rejected {
                        interceptor: "gate".into()
                    }
                );
                assert!(e.reason.contains("not today"), "{}", e.reason);
                // The messages named no topic: the error names the producer's.
                assert!(e.to_string().contains(&fixture.topic), "{e}");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
}

#[actix::test]
async fn debug_prints_each_request_and_its_response() {
    let fixture = Fixture::new();
    let output = Captured::default();
    let text = fixture
        .config("")
        .replace("[kafka]\n", "[kafka]\ndebug = true\n");
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .with_debug_output(DebugInterceptor::to_writer(output.clone()))
        .build()
        .unwrap();
    let report = kafka
        .producer("p1")
        .unwrap()
        .write([
            Message::new("Hello World!").with_key("k1"),
            Message::new("One!"),
        ])
        .await
        .unwrap();
    let printed = output.text();
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 4, "{printed}");
    assert!(
        lines[0].contains("request 1/2")
            && lines[0].contains("\"Hello World!\"")
            && lines[0].contains("\"k1\"")
    );
    assert!(lines[1].contains("request 2/2") && lines[1].contains("\"One!\""));
    for (line, outcome) in lines[2..].iter().zip(report.outcomes()) {
        let Outcome::Delivered(d) = outcome else {
            panic!("not delivered: {outcome:?}")
        };
        let expected = format!(
            "delivered to {}/{} at offset {}",
            d.topic, d.partition, d.offset
        );
        assert!(
            line.contains("response") && line.contains(&expected),
            "{line}"
        );
    }

    // Without debug nothing is printed.
    let silent = Captured::default();
    let kafka = Ekafka::from_toml_str(&fixture.config(""), "kafka")
        .unwrap()
        .with_debug_output(DebugInterceptor::to_writer(silent.clone()))
        .build()
        .unwrap();
    kafka
        .producer("p1")
        .unwrap()
        .write([Message::new("x")])
        .await
        .unwrap()
        .into_result()
        .expect("written");
    assert!(silent.0.lock().unwrap().is_empty());
}

#[actix::test]
async fn with_no_trace_active_a_message_carries_no_traceparent() {
    // No OpenTelemetry layer on this thread: no trace to carry, so the
    // default `enableTraceInterceptor = true` adds nothing.
    let fixture = Fixture::new();
    let kafka = fixture.kafka("");
    kafka
        .producer("p1")
        .unwrap()
        .write([Message::new("plain")])
        .await
        .unwrap()
        .into_result()
        .expect("written");
    let read = fixture.read_back(1).await;
    assert!(read[0].headers.is_empty(), "{:?}", read[0].headers);
}

#[actix::test]
async fn the_trace_interceptor_added_by_hand_gives_each_message_a_traceparent_unless_it_has_one() {
    let fixture = Fixture::new();
    let kafka = Ekafka::from_toml_str(&fixture.config(""), "kafka")
        .unwrap()
        .with_interceptor(ekafka::interceptor::TraceInterceptor)
        .build()
        .unwrap();
    let own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let report = kafka
        .producer("p1")
        .unwrap()
        .write([
            Message::new("fresh"),
            Message::new("more"),
            Message::new("traced").with_header("traceparent", own),
        ])
        .await
        .unwrap();
    assert!(report.is_success());
    let mut read = fixture.read_back(3).await;
    read.sort_by_key(|m| m.value.clone());
    let traceparents: Vec<Vec<String>> = read
        .iter()
        .map(|m| {
            m.headers
                .iter()
                .filter(|(k, _)| k == "traceparent")
                .map(|(_, v)| String::from_utf8(v.clone().unwrap()).unwrap())
                .collect()
        })
        .collect();
    // Sorted by value: "fresh", "more", then "traced".
    assert_eq!(traceparents[0].len(), 1);
    assert!(
        traceparents[0][0].starts_with("00-") && traceparents[0][0].len() == 55,
        "{:?}",
        traceparents[0]
    );
    assert_eq!(
        traceparents[1], traceparents[0],
        "the messages of one write share one"
    );
    assert_eq!(
        traceparents[2],
        [own],
        "an existing traceparent is kept, not doubled"
    );
}

#[actix::test]
async fn metrics_count_operations_and_messages() {
    let fixture = Fixture::new();
    let kafka = fixture.kafka("");
    let producer = kafka.producer("p1").unwrap();
    let report = producer
        .write([Message::new("a"), Message::new("b")])
        .await
        .unwrap();
    assert!(report.is_success());
    let report = producer
        .write([Message::new("c"), Message::new("bad").with_partition(42)])
        .await
        .unwrap();
    assert_eq!(report.failures().count(), 1, "partition 42 does not exist");
    let metrics = kafka.metrics();
    assert_eq!(metrics.len(), 1, "{metrics:?}");
    let m = &metrics[0];
    assert_eq!(
        (m.kind, m.name.as_str(), m.method),
        ("producer", "p1", "WriteMessages")
    );
    assert_eq!(
        (m.ok, m.error, m.messages_ok, m.messages_failed),
        (1, 1, 3, 1)
    );
    assert!(m.max_time > Duration::ZERO && m.total_time >= m.max_time);

    let text = fixture
        .config("")
        .replace("[kafka]\n", "[kafka]\nenableMetricInterceptor = false\n");
    let quiet = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    quiet
        .producer("p1")
        .unwrap()
        .write([Message::new("x")])
        .await
        .unwrap()
        .into_result()
        .expect("written");
    assert!(quiet.metrics().is_empty());
}

struct Panics;

impl Interceptor for Panics {
    fn name(&self) -> &str {
        "panics"
    }
    fn before_write(&self, _: &ClientInfo, messages: &mut Vec<Message>) -> Result<(), Rejection> {
        if messages
            .iter()
            .any(|m| m.value.as_deref() == Some(&b"boom"[..]))
        {
            panic!("cannot handle boom");
        }
        Ok(())
    }
}

#[actix::test]
async fn a_panicking_interceptor_refuses_the_write_and_the_producer_lives_on() {
    let fixture = Fixture::new();
    let kafka = Ekafka::from_toml_str(&fixture.config(""), "kafka")
        .unwrap()
        .with_interceptor(Panics)
        .build()
        .unwrap();
    let producer = kafka.producer("p1").unwrap();
    let report = producer.write([Message::new("boom")]).await.unwrap();
    let failure = report.failures().next().expect("the write is refused");
    assert!(
        failure.reason.contains("cannot handle boom"),
        "{}",
        failure.reason
    );
    assert!(producer
        .write([Message::new("fine")])
        .await
        .unwrap()
        .is_success());
}
