//! Trace propagation through Kafka (the `opentelemetry` feature): a write's
//! `send` span is a child of the caller's span, its messages carry that
//! context in `traceparent`, and the handler's `process` span continues it,
//! with the messaging attributes of the OpenTelemetry conventions.

mod common;

use opentelemetry::trace::{TraceContextExt as _, TraceId, TracerProvider as _};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

use common::{next, server_setup, write_all, Fixture};
use ekafka::server::ConsumerServer;
use ekafka::{ConsumedMessage, Ekafka, Message};

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| match &kv.value {
            Value::String(s) => s.to_string(),
            other => other.to_string(),
        })
}

#[actix::test]
async fn a_handlers_span_continues_the_trace_of_the_code_that_wrote_the_message() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("ekafka-test")));
    // The writer and the handler run on this test's thread.
    let _subscriber = tracing::subscriber::set_default(subscriber);

    let fixture = Fixture::new();
    let (kafka, config) = server_setup(&fixture, "", "");
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<(ConsumedMessage, TraceId)>();
    let server =
        ConsumerServer::on_each_message(&kafka, &config, move |message: ConsumedMessage| {
            let seen = seen_tx.clone();
            async move {
                let trace_id = tracing::Span::current()
                    .context()
                    .span()
                    .span_context()
                    .trace_id();
                let _ = seen.send((message, trace_id));
                Ok(())
            }
        })
        .await
        .unwrap();

    let checkout = tracing::info_span!("checkout");
    let checkout_context = checkout.context().span().span_context().clone();
    async { write_all(&kafka, [Message::new("order").with_key("o")]).await }
        .instrument(checkout)
        .await;
    let (message, handler_trace) = next(&mut seen, "the message handled").await;
    assert_eq!(
        handler_trace,
        checkout_context.trace_id(),
        "the handler's span is in the writer's trace"
    );
    let traceparent = message
        .header("traceparent")
        .and_then(|v| std::str::from_utf8(v).ok())
        .expect("a traceparent header")
        .to_string();
    assert!(
        traceparent.contains(&checkout_context.trace_id().to_string()),
        "{traceparent}"
    );
    server.close().await.unwrap();

    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let topic = fixture.topic.as_str();
    let named = |name: String| {
        spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
            let names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
            panic!("no span {name:?} among {names:?}")
        })
    };
    let send = named(format!("send {topic}"));
    assert_eq!(send.span_context.trace_id(), checkout_context.trace_id());
    assert_eq!(
        send.parent_span_id,
        checkout_context.span_id(),
        "send is a child of the caller's span"
    );
    assert!(
        traceparent.contains(&send.span_context.span_id().to_string()),
        "the message carries the send span: {traceparent}"
    );
    assert_eq!(
        attribute(send, "messaging.system").as_deref(),
        Some("kafka")
    );
    assert_eq!(
        attribute(send, "messaging.destination.name").as_deref(),
        Some(topic)
    );

    let process = named(format!("process {topic}"));
    assert_eq!(process.span_context.trace_id(), checkout_context.trace_id());
    assert_eq!(
        process.parent_span_id,
        send.span_context.span_id(),
        "process continues the send span"
    );
    assert_eq!(
        attribute(process, "messaging.system").as_deref(),
        Some("kafka")
    );
    assert_eq!(
        attribute(process, "messaging.operation.type").as_deref(),
        Some("process")
    );
    assert_eq!(
        attribute(process, "messaging.destination.name").as_deref(),
        Some(topic)
    );
    assert_eq!(
        attribute(process, "messaging.destination.partition.id"),
        Some(message.partition().to_string())
    );
    assert_eq!(
        attribute(process, "messaging.kafka.offset"),
        Some(message.offset().to_string())
    );
    assert_eq!(
        attribute(process, "messaging.kafka.message.key").as_deref(),
        Some("o")
    );
    let group = kafka.config().consumer_groups["cg1"].group_id.clone();
    assert_eq!(
        attribute(process, "messaging.consumer.group.name"),
        Some(group)
    );
}

#[actix::test]
async fn with_enable_trace_interceptor_false_a_write_in_a_trace_carries_no_traceparent() {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(InMemorySpanExporter::default())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("ekafka-test")));
    let _subscriber = tracing::subscriber::set_default(subscriber);

    let fixture = Fixture::new();
    let write_in_a_trace = |text: String, value: &'static str| async move {
        let kafka = Ekafka::from_toml_str(&text, "kafka")
            .unwrap()
            .build()
            .unwrap();
        let checkout = tracing::info_span!("checkout");
        let producer = kafka.producer("p1").unwrap();
        async { producer.write([Message::new(value)]).await }
            .instrument(checkout)
            .await
            .unwrap()
            .into_result()
            .expect("written");
    };
    let traced = fixture.config("");
    let untraced = traced.replace("[kafka]\n", "[kafka]\nenableTraceInterceptor = false\n");
    assert_ne!(traced, untraced);
    write_in_a_trace(traced, "traced").await;
    write_in_a_trace(untraced, "untraced").await;
    let read = fixture.read_back(2).await;
    let headers = |value: &str| {
        let message = read
            .iter()
            .find(|m| m.value.as_deref() == Some(value.as_bytes()))
            .expect("read back");
        message
            .headers
            .iter()
            .map(|(key, _)| key.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(headers("traced"), ["traceparent"], "the default carries it");
    assert!(headers("untraced").is_empty(), "{:?}", headers("untraced"));
}
