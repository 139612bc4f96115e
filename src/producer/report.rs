//! What a write and a close report back, message by message.

use crate::error::ProduceError;
use crate::message::Delivery;

/// The fate of one message of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The broker acknowledged it (synchronous producers).
    Delivered(Delivery),
    /// It is queued for sending (`async = true` producers); a later failure goes
    /// to the error subscriber.
    Enqueued,
    /// It was not written; the error carries the message back.
    Failed(ProduceError),
}

/// The outcome of every message of one write, in the order they were given.
///
/// ```
/// # use ekafka::{Outcome, WriteReport};
/// fn check(report: WriteReport) -> Result<(), ekafka::ProduceError> {
///     for outcome in report.outcomes() {
///         if let Outcome::Failed(error) = outcome {
///             return Err(error.clone());
///         }
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteReport {
    outcomes: Vec<Outcome>,
}

impl WriteReport {
    pub(crate) fn new(outcomes: Vec<Outcome>) -> Self {
        WriteReport { outcomes }
    }

    /// One outcome per message, in write order.
    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }

    /// The outcomes, owned.
    pub fn into_outcomes(self) -> Vec<Outcome> {
        self.outcomes
    }

    /// The acknowledged messages.
    pub fn deliveries(&self) -> impl Iterator<Item = &Delivery> {
        self.outcomes.iter().filter_map(|o| match o {
            Outcome::Delivered(d) => Some(d),
            _ => None,
        })
    }

    /// The messages that were not written.
    pub fn failures(&self) -> impl Iterator<Item = &ProduceError> {
        self.outcomes.iter().filter_map(|o| match o {
            Outcome::Failed(e) => Some(e),
            _ => None,
        })
    }

    /// True when no message failed.
    pub fn is_success(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The deliveries when every message was delivered, else the first failure.
    /// For `async` producers the list is empty: nothing is acknowledged yet.
    pub fn into_result(self) -> Result<Vec<Delivery>, ProduceError> {
        let mut deliveries = Vec::with_capacity(self.outcomes.len());
        for outcome in self.outcomes {
            match outcome {
                Outcome::Delivered(d) => deliveries.push(d),
                Outcome::Enqueued => {}
                Outcome::Failed(e) => return Err(e),
            }
        }
        Ok(deliveries)
    }
}

/// What `close` could not deliver: every message still pending when the flush
/// deadline (`writeTimeout`) passed, or failing during the flush, handed back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloseReport {
    /// Messages not delivered, with why.
    pub undelivered: Vec<ProduceError>,
}

impl CloseReport {
    /// True when everything written was delivered.
    pub fn is_clean(&self) -> bool {
        self.undelivered.is_empty()
    }
}
