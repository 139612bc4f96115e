//! Interceptors: code of yours that runs around every operation of a client.
//!
//! Implement [`Interceptor`] and add it with
//! [`EkafkaBuilder::with_interceptor`](crate::EkafkaBuilder::with_interceptor).
//! Every method has a default that does nothing, so an interceptor implements only
//! the operations it cares about: writes (`before_write`, `after_write`), and a
//! consumer group's deliveries (`before_deliver`), commits (`after_commit`) and
//! rebalance events and errors (`on_group_event`). An operation added later
//! comes as a new method with a default, without breaking existing interceptors.
//!
//! # Order
//!
//! A chain wraps the operation like layers of an onion. With interceptors added as
//! `A` then `B`, a write runs `A.before_write`, `B.before_write`, the write itself,
//! then `B.after_write`, `A.after_write`. Interceptors you add are outermost; the
//! built-in ones come after them in this order: metrics
//! (`enableMetricInterceptor`), debug (`debug`), access log
//! (`enableAccessInterceptor`), so that debug and access logs show what is really
//! sent, headers included. The caller's trace context (`enableTraceInterceptor`)
//! is in the messages' headers before the chain runs. When an interceptor rejects a write, the
//! interceptors inside it and the client never see it, and the ones outside it see
//! every message failed with [`ProduceErrorKind::Rejected`](crate::ProduceErrorKind).

mod access;
mod debug;
mod metrics;
mod trace;

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

pub use access::AccessLogInterceptor;
pub use debug::DebugInterceptor;
pub use metrics::{MetricsInterceptor, OperationMetrics};
pub use trace::{new_traceparent, TraceInterceptor, TRACEPARENT};

use crate::error::CommitFailure;
use crate::record::Message;
use crate::record::{ConsumedMessage, GroupEvent, PartitionOffset};
use crate::record::{Outcome, WriteReport};
use crate::record::{ProduceError, ProduceErrorKind};

/// The kind of client an operation runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientKind {
    /// A `[kafka.producers.NAME]` producer.
    Producer,
    /// A `[kafka.consumerGroups.NAME]` group member.
    ConsumerGroup,
    /// A `[kafka.consumers.NAME]` consumer.
    Consumer,
}

impl ClientKind {
    /// "producer", "consumer group" or "consumer".
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Producer => "producer",
            ClientKind::ConsumerGroup => "consumer group",
            ClientKind::Consumer => "consumer",
        }
    }
}

/// Which client an intercepted operation belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's kind.
    pub kind: ClientKind,
    /// Its configured name, e.g. `p1`.
    pub name: String,
    /// The topic from its config, if any.
    pub topic: Option<String>,
}

/// Why an interceptor refused an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Shown to the caller in each message's error.
    pub reason: String,
}

/// Runs around the operations of a client. See the [module docs](self) for order.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::time::Duration;
/// use ekafka::interceptor::{ClientInfo, Interceptor, Rejection};
/// use ekafka::{Message, WriteReport};
///
/// /// Stamps every message with the service name and counts failures.
/// #[derive(Default)]
/// struct Stamp { failures: AtomicU64 }
///
/// impl Interceptor for Stamp {
///     fn name(&self) -> &str { "stamp" }
///     fn before_write(&self, _: &ClientInfo, messages: &mut Vec<Message>) -> Result<(), Rejection> {
///         for m in messages.iter_mut() {
///             m.headers.push(ekafka::Header { key: "service".into(), value: Some(b"billing".to_vec()) });
///         }
///         Ok(())
///     }
///     fn after_write(&self, _: &ClientInfo, report: &WriteReport, _: Duration) {
///         self.failures.fetch_add(report.failures().count() as u64, Ordering::Relaxed);
///     }
/// }
/// ```
pub trait Interceptor: Send + Sync + 'static {
    /// A short name, shown when this interceptor rejects an operation.
    fn name(&self) -> &str;

    /// Before a write: may change, add or drop messages, or reject the write.
    fn before_write(
        &self,
        client: &ClientInfo,
        messages: &mut Vec<Message>,
    ) -> Result<(), Rejection> {
        let _ = (client, messages);
        Ok(())
    }

    /// After a write, with the outcome of every message and how long it took.
    fn after_write(&self, client: &ClientInfo, report: &WriteReport, elapsed: Duration) {
        let _ = (client, report, elapsed);
    }

    /// Before consumed messages are handed to subscribers (or to `poll`): may
    /// change them, in place, with [`ConsumedMessage::edit`]. Runs on the
    /// group's own thread: keep it quick.
    fn before_deliver(&self, client: &ClientInfo, messages: &mut [ConsumedMessage]) {
        let _ = (client, messages);
    }

    /// After a commit, with the offsets and the result.
    fn after_commit(
        &self,
        client: &ClientInfo,
        offsets: &[PartitionOffset],
        result: Result<(), &CommitFailure>,
        elapsed: Duration,
    ) {
        let _ = (client, offsets, result, elapsed);
    }

    /// On a rebalance event (assigned, revoked) or group error, before
    /// subscribers see it.
    fn on_group_event(&self, client: &ClientInfo, event: &GroupEvent) {
        let _ = (client, event);
    }
}

/// An ordered chain of interceptors, outermost first.
#[derive(Clone, Default)]
pub(crate) struct Chain {
    layers: Arc<[Arc<dyn Interceptor>]>,
}

/// A write that passed (or was stopped by) the `before` half of the chain.
pub(crate) enum Admitted {
    /// Every interceptor let it through.
    Pass(Vec<Message>),
    /// The interceptor at this depth rejected it; the report is for the outer ones.
    Rejected { depth: usize, report: WriteReport },
}

impl Chain {
    pub(crate) fn new(layers: Vec<Arc<dyn Interceptor>>) -> Self {
        Chain {
            layers: layers.into(),
        }
    }

    pub(crate) fn before_write(&self, client: &ClientInfo, mut messages: Vec<Message>) -> Admitted {
        for (depth, layer) in self.layers.iter().enumerate() {
            // A panicking interceptor must not take the actor (and its thread) down:
            // its write is refused instead, with the panic as the reason.
            let verdict = catch_unwind(AssertUnwindSafe(|| {
                layer.before_write(client, &mut messages)
            }))
            .unwrap_or_else(|panic| {
                Err(Rejection {
                    reason: format!("interceptor panicked: {}", panic_text(panic.as_ref())),
                })
            });
            if let Err(rejection) = verdict {
                let outcomes = messages
                    .into_iter()
                    .map(|message| {
                        Outcome::Failed(ProduceError {
                            kind: ProduceErrorKind::Rejected {
                                interceptor: layer.name().to_string(),
                            },
                            reason: format!(
                                "rejected by interceptor {}: {}",
                                layer.name(),
                                rejection.reason
                            ),
                            message: Box::new(message),
                        })
                    })
                    .collect();
                return Admitted::Rejected {
                    depth,
                    report: WriteReport::new(outcomes),
                };
            }
        }
        Admitted::Pass(messages)
    }

    /// Runs `after_write` from the innermost layer below `depth` outwards.
    pub(crate) fn after_write(
        &self,
        depth: usize,
        client: &ClientInfo,
        report: &WriteReport,
        elapsed: Duration,
    ) {
        for layer in self.layers[..depth].iter().rev() {
            guarded(layer.name(), "after_write", || {
                layer.after_write(client, report, elapsed)
            });
        }
    }

    /// Consume-side hooks run outermost first, like `before_write`.
    pub(crate) fn before_deliver(&self, client: &ClientInfo, messages: &mut [ConsumedMessage]) {
        for layer in self.layers.iter() {
            guarded(layer.name(), "before_deliver", || {
                layer.before_deliver(client, messages)
            });
        }
    }

    /// Runs innermost first, like `after_write`.
    pub(crate) fn after_commit(
        &self,
        client: &ClientInfo,
        offsets: &[PartitionOffset],
        result: Result<(), &CommitFailure>,
        elapsed: Duration,
    ) {
        for layer in self.layers.iter().rev() {
            guarded(layer.name(), "after_commit", || {
                layer.after_commit(client, offsets, result, elapsed)
            });
        }
    }

    pub(crate) fn on_group_event(&self, client: &ClientInfo, event: &GroupEvent) {
        for layer in self.layers.iter() {
            guarded(layer.name(), "on_group_event", || {
                layer.on_group_event(client, event)
            });
        }
    }

    pub(crate) fn depth(&self) -> usize {
        self.layers.len()
    }
}

/// The message of a caught panic, when it has one.
fn panic_text(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Runs a notification hook; a panic in it is logged, never propagated.
fn guarded(interceptor: &str, hook: &str, run: impl FnOnce()) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(run)) {
        tracing::error!(
            interceptor,
            hook,
            panic = panic_text(panic.as_ref()),
            "interceptor panicked"
        );
    }
}
