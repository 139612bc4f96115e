//! `debug = true`: print every request and its response, as the Go debug mode does.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use super::{ClientInfo, Interceptor, Rejection};
use crate::record::{Message, Preview};
use crate::record::{Outcome, WriteReport};

/// Prints each write and its result, one line per message, to stderr (or a writer
/// of yours). Enabled by `debug = true`; meant for development, not production.
///
/// ```
/// let interceptor = ekafka::interceptor::DebugInterceptor::to_writer(Vec::<u8>::new());
/// # let _ = interceptor;
/// ```
pub struct DebugInterceptor {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for DebugInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebugInterceptor").finish_non_exhaustive()
    }
}

impl DebugInterceptor {
    /// Prints to the process's standard error.
    #[must_use]
    pub fn stderr() -> Self {
        Self::to_writer(std::io::stderr())
    }

    /// Prints to `writer`.
    pub fn to_writer(writer: impl Write + Send + 'static) -> Self {
        DebugInterceptor {
            out: Mutex::new(Box::new(writer)),
        }
    }

    pub(crate) fn print(&self, lines: &str) {
        // A poisoned lock only means another thread panicked mid-print; keep printing.
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // Debug output is best effort: a closed stderr must not fail a write.
        let _ = out.write_all(lines.as_bytes());
        let _ = out.flush();
    }
}

fn describe_message(m: &Message, default_topic: Option<&str>) -> String {
    let topic = m.topic.as_deref().or(default_topic).unwrap_or("<none>");
    let partition = m.partition.map_or("auto".to_string(), |p| p.to_string());
    let headers = if m.headers.is_empty() {
        String::new()
    } else {
        format!(" headers={:?}", m.headers)
    };
    format!(
        "topic={topic} partition={partition} key={} value={}{headers}",
        Preview(m.key.as_deref()),
        Preview(m.value.as_deref())
    )
}

impl Interceptor for DebugInterceptor {
    fn name(&self) -> &str {
        "debug"
    }

    fn before_write(
        &self,
        client: &ClientInfo,
        messages: &mut Vec<Message>,
    ) -> Result<(), Rejection> {
        let mut lines = String::new();
        for (i, m) in messages.iter().enumerate() {
            lines.push_str(&format!(
                "[ekafka] {} {} WriteMessages request {}/{}: {}\n",
                client.kind.as_str(),
                client.name,
                i + 1,
                messages.len(),
                describe_message(m, client.topic.as_deref())
            ));
        }
        self.print(&lines);
        Ok(())
    }

    fn after_write(&self, client: &ClientInfo, report: &WriteReport, elapsed: Duration) {
        let total = report.outcomes().len();
        let mut lines = String::new();
        for (i, outcome) in report.outcomes().iter().enumerate() {
            let result = match outcome {
                Outcome::Delivered(d) => format!(
                    "delivered to {}/{} at offset {}",
                    d.topic, d.partition, d.offset
                ),
                Outcome::Enqueued => "enqueued".to_string(),
                Outcome::Failed(e) => format!("FAILED: {}", e.reason),
            };
            lines.push_str(&format!(
                "[ekafka] {} {} WriteMessages response {}/{total}: {result} ({elapsed:?})\n",
                client.kind.as_str(),
                client.name,
                i + 1
            ));
        }
        self.print(&lines);
    }
}
