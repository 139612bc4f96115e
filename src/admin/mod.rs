//! The admin API, [`Ekafka::admin`](crate::Ekafka::admin): topics (create,
//! delete, describe, read and alter their configs), the cluster (its id,
//! controller and brokers), and consumer groups (list, describe, their
//! committed offsets and lag, and resetting those offsets).
//!
//! Topic creation, deletion and config reads go through rust-rdkafka's
//! `AdminClient`; what it lacks (groups, their offsets, incremental config
//! changes, the cluster's description) through librdkafka's C API
//! (`native::admin`), on a client that is replaced whenever a request on it goes
//! unanswered, which keeps librdkafka 2.12's use-after-free in group
//! requests from aborting the process (`request_client.rs`). Metadata,
//! watermarks and offsets by time come from a consumer client that never
//! joins a group. Every request is bounded by `[kafka.admin] timeout`.

mod groups;
mod request_client;
mod topics;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

pub use groups::{GroupDescription, GroupListing, OffsetReset, PartitionLag};
pub use topics::{
    BrokerDescription, ClusterDescription, PartitionDescription, TopicDescription, TopicSpec,
};

use request_client::RequestClients;

use crate::config::Properties;
use crate::error::{is_retriable_code, Error, Refusal};
use crate::native::admin as ffi;

pub(crate) const KIND: &str = "admin";

/// The admin client, or a request client, could not be made.
fn client_error(source: KafkaError) -> Error {
    Error::Client {
        kind: KIND,
        name: "admin".into(),
        source,
    }
}

/// The admin client of a component: cheap to clone, made on first use by
/// [`Ekafka::admin`](crate::Ekafka::admin) and shared after that.
///
/// ```no_run
/// # async fn run(kafka: ekafka::Ekafka) -> Result<(), ekafka::Error> {
/// use ekafka::admin::{OffsetReset, TopicSpec};
/// let admin = kafka.admin()?;
/// admin.create_topic(TopicSpec::new("orders", 6).replication(3).config("retention.ms", "86400000")).await?;
/// for partition in admin.group_lag("billing").await? {
///     println!("{}/{}: lag {}", partition.topic, partition.partition, partition.lag);
/// }
/// // With the group's consumers stopped:
/// admin.reset_offsets("billing", "orders", OffsetReset::Earliest).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Admin {
    shared: Arc<Shared>,
}

struct Shared {
    /// Requests rust-rdkafka wraps (topics, configs): none of them waits on
    /// a group coordinator.
    client: AdminClient<DefaultClientContext>,
    /// Requests through the C API (groups, the cluster, config changes).
    requests: RequestClients,
    /// Metadata, watermarks and offsets by time: a consumer client, which
    /// never creates a topic by asking for its metadata.
    lookup: BaseConsumer,
    timeout: Duration,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("timeout", &self.shared.timeout)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// An admin client with the component's common properties (brokers,
    /// SASL, TLS, the raw `[kafka.librdkafka]` table).
    pub(crate) fn new(properties: &Properties, timeout: Duration) -> Result<Admin, Error> {
        let mut config = ClientConfig::new();
        for (key, value) in properties.iter() {
            config.set(key, value);
        }
        config.set("client.id", "ekafka-admin");
        let client = config.create().map_err(client_error)?;
        let lookup = config.create().map_err(client_error)?;
        let requests = RequestClients::new(config).map_err(client_error)?;
        Ok(Admin {
            shared: Arc::new(Shared {
                client,
                requests,
                lookup,
                timeout,
            }),
        })
    }

    /// How long one request may take (`[kafka.admin] timeout`).
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.shared.timeout
    }

    /// Runs blocking work on a blocking thread with the shared clients.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Shared) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || work(&shared))
            .await
            .unwrap_or_else(|e| {
                Err(Error::Admin {
                    operation: "running",
                    target: "a blocking admin request".into(),
                    code: RDKafkaErrorCode::Fail,
                    reason: e.to_string(),
                })
            })
    }
}

impl Shared {
    /// The low and high watermarks of a partition.
    fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64), Error> {
        use rdkafka::consumer::Consumer as _;
        self.lookup_retrying(|left| self.lookup.fetch_watermarks(topic, partition, left))
            .map_err(|e| ffi_failed("reading the watermarks of topic", topic, e))
    }

    /// Runs a lookup on the lookup client (metadata, watermarks, offsets by
    /// time) with the time left, again after a failure that passes (a leader
    /// moving, a broker connection dropped or replaced) until `timeout` is
    /// spent.
    fn lookup_retrying<T>(
        &self,
        mut lookup: impl FnMut(Duration) -> KafkaResult<T>,
    ) -> Result<T, ffi::Failure> {
        retry_until(
            self.timeout,
            |left| lookup(left).map_err(kafka_failure),
            |failure| {
                // A broker handle librdkafka replaced (a broker restarted
                // under its id) fails what was waiting on the old one.
                is_retriable_code(failure.code) || failure.code == RDKafkaErrorCode::DestroyBroker
            },
        )
    }

    /// Runs a C API request on a request client, again after a failure that
    /// passes (a coordinator moving or still loading, as right after a
    /// group's first use, a leader moving, a timeout) until `timeout` is
    /// spent, as Kafka's own admin client does. A request left unanswered
    /// retires its client (see `request_client`) and is not tried again: its
    /// wait took all the time there was.
    fn ffi<T>(
        &self,
        mut request: impl FnMut(ffi::Client<'_>, ffi::Wait) -> Result<T, ffi::Failure>,
    ) -> Result<T, ffi::Failure> {
        let attempt = |left: Duration| {
            let wait = ffi::Wait {
                answer: left,
                native: request_client::native_timeout(left, self.timeout),
            };
            let client = self.requests.get().map_err(client_error).map_err(|e| {
                ffi::Failure::new(
                    e.kafka_code().unwrap_or(RDKafkaErrorCode::Fail),
                    e.to_string(),
                )
            })?;
            let outcome = request(request_client::handle(&client), wait);
            match &outcome {
                Err(failure) if failure.unanswered => self.requests.retire(client),
                _ => self.requests.release(client),
            }
            outcome.map_err(|mut failure| {
                if failure.unanswered {
                    failure.reason = format!(
                        "no answer within {:?} ([kafka.admin] timeout)",
                        self.timeout
                    );
                }
                failure
            })
        };
        retry_until(self.timeout, attempt, |failure| {
            !failure.unanswered && is_retriable_code(failure.code)
        })
    }
}

/// Runs `attempt` with the time left of `timeout`, again after a failure
/// `passes` says may pass, with a growing pause, while time is left. Time
/// running out on such a failure is a timeout (`OperationTimedOut`) whose
/// reason gives the last attempt's failure, as Kafka's own admin client
/// reports it: the caller asked for an answer within `timeout`, and the
/// failures on the way (a coordinator away, a connection refused) were the
/// cluster's passing state, not the answer.
fn retry_until<T>(
    timeout: Duration,
    mut attempt: impl FnMut(Duration) -> Result<T, ffi::Failure>,
    passes: impl Fn(&ffi::Failure) -> bool,
) -> Result<T, ffi::Failure> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(50);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let failure = match attempt(left.max(Duration::from_millis(1))) {
            Ok(answered) => return Ok(answered),
            Err(failure) => failure,
        };
        if !passes(&failure) {
            return Err(failure);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left <= pause {
            return Err(ffi::Failure::new(
                RDKafkaErrorCode::OperationTimedOut,
                format!(
                    "no answer within {timeout:?} ([kafka.admin] timeout); the last attempt: {failure}"
                ),
            ));
        }
        tracing::debug!(%failure, ?pause, "admin request retried");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// An admin failure as the public error: a refusal by the broker's ACLs is
/// [`Error::Authorization`], anything else [`Error::Admin`].
fn failed(operation: &'static str, target: &str, code: RDKafkaErrorCode, reason: String) -> Error {
    if Refusal::of(code) == Some(Refusal::Authorization) {
        return Error::Authorization {
            kind: KIND,
            name: target.to_string(),
            code,
            reason: format!("{operation} {target:?}: {reason}"),
        };
    }
    let reason = match code {
        // librdkafka's words for it name its internals, not what happened.
        RDKafkaErrorCode::DestroyBroker => format!(
            "the broker it was waiting on went away (restarted, or no longer in the \
             cluster's metadata) before answering; try again ({reason})"
        ),
        _ => reason,
    };
    Error::Admin {
        operation,
        target: target.to_string(),
        code,
        reason,
    }
}

fn ffi_failed(operation: &'static str, target: &str, failure: ffi::Failure) -> Error {
    failed(operation, target, failure.code, failure.reason)
}

fn kafka_failed(operation: &'static str, target: &str, error: rdkafka::error::KafkaError) -> Error {
    ffi_failed(operation, target, kafka_failure(error))
}

/// A rust-rdkafka error as an admin failure: its code and its text.
fn kafka_failure(error: rdkafka::error::KafkaError) -> ffi::Failure {
    let code = match &error {
        // rust-rdkafka gives no code for a whole admin request's failure.
        rdkafka::error::KafkaError::AdminOp(code) => *code,
        other => other.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail),
    };
    ffi::Failure::new(code, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_whose_broker_went_away_says_so_in_plain_words() {
        let error = failed(
            "reading the committed offsets of group",
            "g1",
            RDKafkaErrorCode::DestroyBroker,
            "Local: Broker handle destroyed without termination".to_string(),
        );
        let text = error.to_string();
        assert!(
            text.contains("\"g1\"") && text.contains("went away"),
            "{text}"
        );
        assert_eq!(error.kafka_code(), Some(RDKafkaErrorCode::DestroyBroker));
    }
}
