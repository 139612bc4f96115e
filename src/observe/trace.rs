//! Spans by the OpenTelemetry messaging conventions: `send {topic}` around a
//! write, `process {topic}` around each handler call, each with the
//! `messaging.*` attributes.
//!
//! With the `opentelemetry` feature (and `tracing-opentelemetry`'s layer in
//! the subscriber), a write gives each of its messages the W3C `traceparent`
//! (and `tracestate`) of its `send` span, a child of the caller's current
//! span; a handler's `process` span takes the context its message carries
//! as parent, so a handler's span shares the trace of the code that wrote
//! the message. Without it the spans are plain `tracing` spans, and the
//! trace interceptor gives messages a fresh `traceparent`.

use tracing::Span;

use crate::record::ConsumedMessage;
#[cfg(feature = "opentelemetry")]
use crate::record::Message;

/// The span of one write of `count` messages by producer `client`, to
/// `topic` (the producer's own; messages may name others).
pub(crate) fn send_span(client: &str, topic: Option<&str>, count: usize) -> Span {
    let topic = topic.unwrap_or_default();
    tracing::info_span!(
        "send",
        otel.name = %format_args!("send {topic}"),
        otel.kind = "producer",
        messaging.system = "kafka",
        messaging.operation.type = "send",
        messaging.operation.name = "send",
        messaging.destination.name = %topic,
        messaging.batch.message_count = count,
        messaging.client.id = %client,
    )
}

/// The span of one handler call on `message`, by consumer server `server`
/// of consumer group `group`.
pub(crate) fn process_span(server: &str, group: &str, message: &ConsumedMessage) -> Span {
    let topic = message.topic();
    let key = message.key().and_then(|key| std::str::from_utf8(key).ok());
    let span = tracing::info_span!(
        "process",
        otel.name = %format_args!("process {topic}"),
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = %topic,
        messaging.destination.partition.id = %message.partition(),
        messaging.kafka.offset = message.offset(),
        messaging.kafka.message.key = key,
        messaging.consumer.group.name = %group,
        messaging.client.id = %server,
    );
    #[cfg(feature = "opentelemetry")]
    if let Some(parent) = w3c::extract(message) {
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        // Fails only without the OpenTelemetry layer: nothing to link then.
        let _linked = span.set_parent(parent);
    }
    span
}

/// Gives each of `messages` without a `traceparent` the context of `span`.
#[cfg(feature = "opentelemetry")]
pub(crate) fn inject(span: &Span, messages: &mut [Message]) {
    w3c::inject(span, messages);
}

#[cfg(feature = "opentelemetry")]
mod w3c {
    //! The W3C Trace Context headers, written and read by hand: they are two
    //! short strings, and the propagator crates would bring an SDK along.

    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry::Context;
    use tracing::Span;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    use crate::record::{ConsumedMessage, Header, Message};

    const TRACEPARENT: &str = "traceparent";
    const TRACESTATE: &str = "tracestate";

    pub(super) fn inject(span: &Span, messages: &mut [Message]) {
        let context = span.context();
        let span_context = context.span().span_context().clone();
        if !span_context.is_valid() {
            return;
        }
        let traceparent = format!(
            "00-{}-{}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags().to_u8()
        );
        let tracestate = span_context.trace_state().header();
        let has = |message: &Message, name: &str| {
            message
                .headers
                .iter()
                .any(|h| h.key.eq_ignore_ascii_case(name))
        };
        for message in messages {
            if has(message, TRACEPARENT) {
                continue;
            }
            let with_state = !tracestate.is_empty() && !has(message, TRACESTATE);
            message.headers.push(Header {
                key: TRACEPARENT.to_string(),
                value: Some(traceparent.clone().into_bytes()),
            });
            if with_state {
                message.headers.push(Header {
                    key: TRACESTATE.to_string(),
                    value: Some(tracestate.clone().into_bytes()),
                });
            }
        }
    }

    /// The remote context a message carries, when its `traceparent` is valid.
    pub(super) fn extract(message: &ConsumedMessage) -> Option<Context> {
        let header = |name: &str| {
            message
                .headers()
                .find(|h| h.key.eq_ignore_ascii_case(name))
                .and_then(|h| h.value)
                .and_then(|v| std::str::from_utf8(v).ok())
        };
        let mut parts = header(TRACEPARENT)?.trim().split('-');
        let (version, trace_id, span_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        // Version 00 has exactly four parts; a later version may add some.
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        if trace_id.len() != 32 || span_id.len() != 16 || flags.len() != 2 {
            return None;
        }
        let trace_state = header(TRACESTATE)
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default();
        let span_context = SpanContext::new(
            TraceId::from_hex(trace_id).ok()?,
            SpanId::from_hex(span_id).ok()?,
            TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
            true,
            trace_state,
        );
        span_context
            .is_valid()
            .then(|| Context::new().with_remote_span_context(span_context))
    }
}
