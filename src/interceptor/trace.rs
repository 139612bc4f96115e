//! [`TraceInterceptor`]: a fresh W3C `traceparent` header on every produced
//! message, for those who want one without OpenTelemetry.

use std::hash::{BuildHasher, Hasher};

use super::{ClientInfo, Interceptor, Rejection};
use crate::record::{Header, Message};

/// The header name of W3C Trace Context.
pub const TRACEPARENT: &str = "traceparent";

/// Gives each message that has no `traceparent` header a made-up one: all
/// messages of one write share a random trace id and span id, so readers can
/// tell which messages were written together. A message that already carries
/// a `traceparent` is left as it is.
///
/// No key installs it. `enableTraceInterceptor` (on by default) carries the
/// caller's real trace, with the `opentelemetry` feature, and writes nothing
/// when no trace is active: a made-up trace id belongs to no recorded trace,
/// and the 55-byte header on every message cost the producer about a third of
/// its throughput (`cargo bench --bench defaults`, see `guide::benchmarks`).
/// Add it by hand where the shared id is worth that:
///
/// ```
/// # fn build(config: &str) -> Result<ekafka::Ekafka, ekafka::Error> {
/// let kafka = ekafka::Ekafka::from_toml_str(config, "kafka")?
///     .with_interceptor(ekafka::interceptor::TraceInterceptor)
///     .build()?;
/// # Ok(kafka)
/// # }
/// ```
#[derive(Debug, Default, Clone)]
pub struct TraceInterceptor;

fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x9e37_79b9_7f4a_7c15);
    hasher.finish()
}

/// A new `traceparent` value: version 00, random trace and span ids, sampled.
#[must_use]
pub fn new_traceparent() -> String {
    // All-zero ids are invalid in W3C Trace Context; `| 1` rules them out.
    let trace_id = (u128::from(random_u64()) << 64 | u128::from(random_u64())) | 1;
    let span_id = random_u64() | 1;
    format!("00-{trace_id:032x}-{span_id:016x}-01")
}

impl Interceptor for TraceInterceptor {
    fn name(&self) -> &str {
        "trace"
    }

    fn before_write(
        &self,
        _client: &ClientInfo,
        messages: &mut Vec<Message>,
    ) -> Result<(), Rejection> {
        let mut traceparent: Option<Vec<u8>> = None;
        for message in messages.iter_mut() {
            if message
                .headers
                .iter()
                .any(|h| h.key.eq_ignore_ascii_case(TRACEPARENT))
            {
                continue;
            }
            let value = traceparent
                .get_or_insert_with(|| new_traceparent().into_bytes())
                .clone();
            message.headers.push(Header {
                key: TRACEPARENT.to_string(),
                value: Some(value),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_has_the_w3c_shape() {
        let value = new_traceparent();
        let parts: Vec<&str> = value.split('-').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(
            (parts[0], parts[1].len(), parts[2].len(), parts[3]),
            ("00", 32, 16, "01")
        );
        assert_ne!(new_traceparent(), value);
    }
}
