//! Where messages that failed for good go, and how a one-message write
//! (a dead letter, a delayed retry) is judged stored.

use crate::producer::Producer;

/// Where failed-for-good messages go.
#[derive(Clone)]
pub(crate) struct DeadLetterSink {
    pub(crate) producer: Producer,
    pub(crate) topic: Option<String>,
    /// `deadLetterLimit` and `deadLetterWindow`: how many messages one
    /// partition may send here within the window (0: no limit).
    pub(crate) limit: u32,
    pub(crate) window: std::time::Duration,
}

/// True when a one-message write was stored; logs why not otherwise.
pub(crate) fn stored(
    written: Result<crate::record::WriteReport, crate::error::Error>,
    what: &str,
) -> bool {
    match written {
        Ok(report) if report.is_success() => true,
        Ok(report) => {
            tracing::error!(error = ?report.failures().next(), "{what} write failed");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "{what} write failed");
            false
        }
    }
}
