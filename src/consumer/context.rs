//! What consumers keep of librdkafka's log, and the context of a single
//! consumer. A consumer's error events carry only a code, while the detail (a
//! broker's answer to a login, say) is what librdkafka logs, so the latest
//! error-level line is kept. A single consumer's log lines go to `tracing`
//! like every other client's.

use crate::observe::StatsSink;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::{CommitFailure, Refusal};
use crate::record::{PartitionOffset, TopicPartition};

/// The latest line librdkafka logged at error level for one client.
#[derive(Default)]
pub(crate) struct LastErrorLog(Mutex<Option<String>>);

impl LastErrorLog {
    /// Keeps `message` when `level` is an error or worse.
    pub(crate) fn note(&self, level: RDKafkaLogLevel, message: &str) {
        use RDKafkaLogLevel as L;
        if matches!(level, L::Emerg | L::Alert | L::Critical | L::Error) {
            let cause = crate::telemetry::log_cause(message);
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(cause.to_string());
        }
    }

    /// Why the broker refused the client. A refused login or handshake is
    /// explained only in librdkafka's log (the error event carries a code), a
    /// missing ACL by the code itself.
    pub(crate) fn refusal_reason(&self, refusal: Refusal, code: RDKafkaErrorCode) -> String {
        let logged = match refusal {
            Refusal::Authentication | Refusal::Tls => {
                self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
            }
            Refusal::Authorization => None,
        };
        let detail = logged.unwrap_or_else(|| code.to_string());
        format!("{}: {detail}", refusal.label())
    }
}

/// A single consumer's periodic commits (`commitInterval` above 0): the
/// offsets `commit` stored, and the latest failure to commit them, until a
/// later commit succeeds (each commits every stored offset again).
#[derive(Debug, Default)]
pub(crate) struct PeriodicCommits(Mutex<PeriodicState>);

#[derive(Debug, Default)]
struct PeriodicState {
    stored: BTreeMap<TopicPartition, i64>,
    committed: BTreeMap<TopicPartition, i64>,
    /// The offsets no commit has committed since one failed to, and the
    /// latest failure's reason.
    failed: BTreeMap<TopicPartition, i64>,
    failure: Option<CommitFailure>,
    closing: bool,
}

impl PeriodicCommits {
    fn lock(&self) -> std::sync::MutexGuard<'_, PeriodicState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `offsets` were stored, to be committed on the next round.
    pub(crate) fn stored(&self, offsets: &[PartitionOffset]) {
        let mut state = self.lock();
        for o in offsets {
            state.stored.insert(o.partition.clone(), o.offset);
        }
    }

    /// Commits what the client stored (librdkafka commits the stored offsets
    /// of the current assignment, only those not committed yet) and keeps the
    /// outcome. Runs on a blocking thread.
    pub(crate) fn commit_stored<C: ConsumerContext>(
        &self,
        client: &str,
        consumer: &BaseConsumer<C>,
    ) {
        let due: Vec<(TopicPartition, i64)> = {
            let state = self.lock();
            state
                .stored
                .iter()
                .filter(|(partition, offset)| state.committed.get(*partition) != Some(*offset))
                .map(|(partition, offset)| (partition.clone(), *offset))
                .collect()
        };
        if due.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        let mut due = due;
        // An offset the list refuses is not sent, so not marked committed.
        due.retain(|(partition, offset)| {
            list.add_partition_offset(
                &partition.topic,
                partition.partition,
                Offset::Offset(*offset),
            )
            .is_ok()
        });
        match consumer.commit(&list, CommitMode::Sync) {
            Ok(()) => {
                let mut state = self.lock();
                for (partition, offset) in &due {
                    if state
                        .failed
                        .get(partition)
                        .is_some_and(|failed| failed <= offset)
                    {
                        state.failed.remove(partition);
                    }
                }
                if state.failed.is_empty() {
                    state.failure = None;
                }
                state.committed.extend(due);
            }
            // Nothing stored since the last commit.
            Err(error) if error.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
            Err(error) => {
                tracing::warn!(consumer = client, %error, "a periodic commit failed; the next one tries again");
                let mut state = self.lock();
                state.failed.extend(due);
                state.failure = Some(CommitFailure::from_kafka(&error));
            }
        }
    }

    /// The consumer is closing: its own revoke keeps what failed, which is
    /// the close's report.
    pub(crate) fn closing(&self) {
        self.lock().closing = true;
    }

    /// The partitions of `revoked` are no longer this consumer's: what was
    /// stored for them is never committed later (it could go back past what
    /// their next owner committed). What failed for them is their next
    /// owner's to read again, and no longer this consumer's to report (as
    /// for a group member), unless the revoke is the close's own.
    fn forget(&self, revoked: &TopicPartitionList) {
        let mut state = self.lock();
        for e in revoked.elements() {
            let partition = TopicPartition {
                topic: Arc::from(e.topic()),
                partition: e.partition(),
            };
            state.stored.remove(&partition);
            state.committed.remove(&partition);
            if !state.closing {
                state.failed.remove(&partition);
            }
        }
        if state.failed.is_empty() {
            state.failure = None;
        }
    }

    /// The offsets the latest commit failed to commit, and why; `None` when
    /// it succeeded.
    pub(crate) fn outstanding(&self) -> Option<(Vec<PartitionOffset>, CommitFailure)> {
        let state = self.lock();
        let failure = state.failure.clone()?;
        let offsets = state
            .failed
            .iter()
            .map(|(partition, offset)| PartitionOffset {
                partition: partition.clone(),
                offset: *offset,
            })
            .collect();
        Some((offsets, failure))
    }
}

pub(crate) struct LoggingContext {
    client_name: String,
    pub(crate) last_error_log: LastErrorLog,
    /// Where librdkafka's statistics go, when the metrics are on.
    pub(crate) stats: Option<StatsSink>,
    /// Where periodic commits report, when the consumer commits that way.
    pub(crate) periodic_commits: Option<Arc<PeriodicCommits>>,
}

impl LoggingContext {
    pub(crate) fn new(client_name: String) -> Self {
        LoggingContext {
            client_name,
            last_error_log: LastErrorLog::default(),
            stats: None,
            periodic_commits: None,
        }
    }
}

impl ClientContext for LoggingContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        if let Some(stats) = &self.stats {
            stats.record(&statistics);
        }
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        crate::telemetry::librdkafka_log(&self.client_name, level, facility, message);
        self.last_error_log.note(level, message);
    }
}

impl ConsumerContext for LoggingContext {
    /// With periodic commits, what was stored for partitions about to be
    /// revoked is committed first: their next owner starts there.
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let (Some(commits), Rebalance::Revoke(revoked)) = (&self.periodic_commits, rebalance) {
            commits.commit_stored(&self.client_name, consumer);
            commits.forget(revoked);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_login_is_explained_without_librdkafkas_thread_tag() {
        let log = LastErrorLog::default();
        log.note(
            RDKafkaLogLevel::Error,
            "[thrd:sasl_plaintext://127.0.0.1:9092/bootstrap]: sasl_plaintext://127.0.0.1:9092/\
             bootstrap: SASL authentication error: Authentication failed",
        );
        let reason = log.refusal_reason(
            Refusal::Authentication,
            RDKafkaErrorCode::SaslAuthenticationFailed,
        );
        assert_eq!(
            reason,
            "SASL authentication failed: sasl_plaintext://127.0.0.1:9092/bootstrap: SASL \
             authentication error: Authentication failed"
        );
    }
}
