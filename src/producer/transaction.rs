//! Transactions of a transactional producer (`transactionalID`): the messages
//! written inside one, and the consumer offsets sent with it, become visible
//! to `read_committed` readers together when it commits, or never.
//!
//! A producer runs one transaction at a time: [`Producer::begin`](super::Producer::begin) waits for
//! the one open to end. librdkafka's transaction calls block (a commit waits
//! for every message to be delivered), so they run on a blocking thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::Producer as _;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::OwnedMutexGuard;

use super::actor::ProducerHandle;
use super::client::{is_fencing, Client};
use super::writer::{Queued, Writer};
use crate::consumer::{ConsumerGroup, PartitionOffset};
use crate::error::Error;
use crate::record::{Message, Outcome, ProduceError, WriteReport};

/// What a transactional producer keeps for its transactions.
pub(crate) struct Transactional {
    /// Its `transactionalID`.
    pub(crate) id: String,
    /// Held by the transaction open: one at a time.
    pub(crate) turn: Arc<tokio::sync::Mutex<()>>,
    /// `transactionTimeout`: how long a commit or abort may take.
    pub(crate) timeout: Duration,
    /// The client incarnation whose transactions were initialised (under
    /// the turn's lock).
    pub(crate) initialised: std::sync::Mutex<Option<u64>>,
}

/// An open transaction; from [`Producer::begin`](super::Producer::begin). End it with
/// [`commit`](Self::commit) or [`abort`](Self::abort); one dropped open is
/// aborted (and a warning logged).
///
/// ```no_run
/// # async fn run(kafka: ekafka::Ekafka) -> Result<(), Box<dyn std::error::Error>> {
/// use ekafka::Message;
/// let producer = kafka.producer("transfers")?; // with transactionalID set
/// let transaction = producer.begin().await?;
/// transaction.write([Message::new("debit").with_topic("ledger")]).await?.into_result()?;
/// transaction.write([Message::new("credit").with_topic("ledger")]).await?.into_result()?;
/// transaction.commit().await?; // both visible to read_committed readers, or neither
/// # Ok(())
/// # }
/// ```
#[must_use = "a transaction dropped open is aborted"]
pub struct Transaction {
    /// The producer's actor, and what its writes share.
    handle: ProducerHandle,
    writer: Arc<Writer>,
    transactional: Arc<Transactional>,
    client: Arc<Client>,
    incarnation: u64,
    timeout: Duration,
    /// When it began, for the producer's transaction metric.
    begun: Instant,
    /// Writes queued by [`send`](Self::send) whose reports the commit
    /// awaits.
    pending: std::sync::Mutex<Vec<Queued>>,
    /// Released when the transaction ends; `None` once it ended.
    turn: Option<OwnedMutexGuard<()>>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("producer", &self.handle.name())
            .field("open", &self.turn.is_some())
            .finish()
    }
}

impl Transaction {
    /// Begins a transaction of the producer behind `handle`, waiting for the
    /// one open, if any, to end; `writer` is what the producer's writes share.
    pub(super) async fn begin(
        handle: ProducerHandle,
        writer: Arc<Writer>,
        transactional: &Arc<Transactional>,
    ) -> Result<Transaction, Error> {
        let name = || handle.name().to_string();
        let turn = Arc::clone(&transactional.turn).lock_owned().await;
        let (incarnation, client) = handle.slot().ready().await?;
        let initialised = *transactional
            .initialised
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if initialised != Some(incarnation) {
            // Registers the transactional id with its coordinator (once per
            // client), fencing an older producer that has it and ending what
            // that one left open.
            let (registering, timeout) = (Arc::clone(&client), transactional.timeout);
            blocking(move || registering.transactions().init_transactions(timeout))
                .await
                .map_err(|e| Error::TransactionAborted {
                    name: name(),
                    reason: format!("initialising transactions failed: {e}"),
                })?;
            *transactional
                .initialised
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(incarnation);
        }
        let transaction = Transaction {
            handle,
            writer,
            transactional: Arc::clone(transactional),
            client,
            incarnation,
            timeout: transactional.timeout,
            begun: Instant::now(),
            pending: std::sync::Mutex::default(),
            turn: Some(turn),
        };
        let begun = transaction.client.transactions().begin_transaction();
        begun.map_err(|e| transaction.failed("beginning the transaction", e))?;
        Ok(transaction)
    }

    /// Writes messages inside the transaction: the report says each was
    /// delivered (not yet visible to `read_committed` readers). A message that
    /// failed makes the commit fail: abort, and begin again.
    pub async fn write(
        &self,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<WriteReport, Error> {
        self.still_current()?;
        self.writer.write(messages).await
    }

    /// Queues messages inside the transaction without waiting for their
    /// delivery, which [`commit`](Self::commit) awaits: a message that
    /// fails to be delivered fails the commit. Answers with the first
    /// message refused before it was sent (no topic, too large, ...), which
    /// is not in the transaction and does not fail the commit.
    pub(crate) async fn send(
        &self,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<Option<ProduceError>, Error> {
        self.still_current()?;
        let mut queued = self.writer.queue(messages).await;
        let first_refusal = queued.first_refusal.take();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(queued);
        Ok(first_refusal)
    }

    /// Waits for the report of every write [`send`](Self::send) queued: the
    /// first message that failed after it was queued, if any.
    async fn settle_sent(&self) -> Result<(), String> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let mut first_failure = None;
        for queued in pending {
            let refused = &queued.refused;
            let failure = match queued.report.await {
                Ok(report) => {
                    report.outcomes().iter().enumerate().find_map(
                        |(index, outcome)| match outcome {
                            Outcome::Failed(failure) if !refused.contains(&index) => {
                                Some(failure.to_string())
                            }
                            _ => None,
                        },
                    )
                }
                Err(error) => Some(error.to_string()),
            };
            if first_failure.is_none() {
                first_failure = failure;
            }
        }
        first_failure.map_or(Ok(()), Err)
    }

    /// Commits `offsets` of `group` (the next offset to read, per partition)
    /// with the transaction, as the group's current member: they count only if
    /// the transaction commits, and a member that lost its partitions in a
    /// rebalance meanwhile is refused.
    pub async fn commit_offsets(
        &self,
        group: &ConsumerGroup,
        offsets: &[PartitionOffset],
    ) -> Result<(), Error> {
        self.still_current()?;
        let metadata = group.group_metadata().await?;
        let mut list = TopicPartitionList::new();
        for offset in offsets {
            list.add_partition_offset(
                &offset.partition.topic,
                offset.partition.partition,
                Offset::Offset(offset.offset),
            )
            .map_err(|e| self.failed("listing the offsets", e))?;
        }
        let (client, timeout) = (Arc::clone(&self.client), self.timeout);
        let sent = blocking(move || {
            client
                .transactions()
                .send_offsets_to_transaction(&list, &metadata, timeout)
        })
        .await;
        sent.map_err(|e| self.failed("sending the offsets", e))
    }

    /// Commits: waits until every message written is delivered, then makes
    /// them (and the offsets sent) visible together. When it cannot, the
    /// transaction is aborted and the error says why
    /// ([`Error::TransactionAborted`], or [`Error::Fenced`]).
    pub async fn commit(mut self) -> Result<(), Error> {
        self.still_current()?;
        // Every message sent must be in librdkafka's hands (and delivered)
        // before the commit, which covers only what it holds.
        if let Err(failure) = self.settle_sent().await {
            let failure = self.error(
                format!("a message written inside it failed: {failure}"),
                None,
            );
            if let Err(abort) = abort_now(&self.client, self.timeout).await {
                tracing::warn!(producer = %self.handle.name(), error = %abort, "aborting the failed transaction failed");
            }
            self.ended(false);
            return Err(failure);
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let (client, left) = (Arc::clone(&self.client), remaining(deadline));
            match blocking(move || client.transactions().commit_transaction(left)).await {
                Ok(()) => {
                    self.ended(true);
                    return Ok(());
                }
                // librdkafka: a retriable commit error may be retried as is.
                Err(error) if is_retriable(&error) && Instant::now() < deadline => continue,
                Err(error) => {
                    let failure = self.failed("committing", error.clone());
                    if requires_abort(&error) {
                        if let Err(abort) = abort_now(&self.client, self.timeout).await {
                            tracing::warn!(producer = %self.handle.name(), error = %abort, "aborting the failed transaction failed");
                        }
                    }
                    // Ended: aborted, or the client is in a fatal error
                    // (fenced) and no transaction call can succeed.
                    self.ended(false);
                    return Err(failure);
                }
            }
        }
    }

    /// Aborts: nothing written inside becomes visible, and the offsets sent
    /// do not count.
    pub async fn abort(mut self) -> Result<(), Error> {
        self.still_current()?;
        let outcome = abort_now(&self.client, self.timeout).await;
        self.ended(false);
        outcome.map_err(|e| self.error(format!("aborting failed: {e}"), transaction_code(&e)))
    }

    /// Ends the transaction: lets the next one begin, and records how long
    /// this one took.
    fn ended(&mut self, committed: bool) {
        self.turn = None;
        self.client
            .transaction_ended(self.begun.elapsed(), committed);
    }

    /// Fails when the producer replaced its client since `begin`: the
    /// transaction went with it.
    fn still_current(&self) -> Result<(), Error> {
        match self.handle.slot().current() {
            Ok((incarnation, _)) if incarnation == self.incarnation => Ok(()),
            Ok(_) => Err(Error::TransactionAborted {
                name: self.handle.name().to_string(),
                reason:
                    "the producer's client failed and was replaced; the transaction went with it"
                        .into(),
            }),
            Err(error) => Err(error),
        }
    }

    /// The error for a failed transaction call: fenced, or aborted.
    fn failed(&self, operation: &str, error: rdkafka::error::KafkaError) -> Error {
        self.error(
            format!("{operation} failed: {error}"),
            transaction_code(&error),
        )
    }

    fn error(&self, reason: String, code: Option<RDKafkaErrorCode>) -> Error {
        let name = self.handle.name().to_string();
        let fenced = code.is_some_and(is_fencing)
            || self
                .client
                .fatal_error_code()
                .is_some_and(|(code, _)| is_fencing(code));
        if fenced {
            return Error::Fenced {
                name,
                transactional_id: self.transactional.id.clone(),
                reason,
            };
        }
        Error::TransactionAborted { name, reason }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        let Some(turn) = self.turn.take() else {
            return;
        };
        tracing::warn!(producer = %self.handle.name(), "a transaction was dropped open; aborting it");
        self.client.transaction_ended(self.begun.elapsed(), false);
        let client = Arc::clone(&self.client);
        let timeout = self.timeout;
        std::thread::spawn(move || {
            if let Err(error) = client.transactions().abort_transaction(timeout) {
                tracing::warn!(%error, "aborting a dropped transaction failed");
            }
            drop(turn);
        });
    }
}

async fn abort_now(
    client: &Arc<Client>,
    timeout: Duration,
) -> Result<(), rdkafka::error::KafkaError> {
    let client = Arc::clone(client);
    blocking(move || client.transactions().abort_transaction(timeout)).await
}

/// Runs a blocking transaction call on a blocking thread.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, rdkafka::error::KafkaError> + Send + 'static,
) -> Result<T, rdkafka::error::KafkaError> {
    tokio::task::spawn_blocking(call)
        .await
        .unwrap_or_else(|_| Err(rdkafka::error::KafkaError::Canceled))
}

fn remaining(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

fn transaction_code(error: &rdkafka::error::KafkaError) -> Option<RDKafkaErrorCode> {
    error.rdkafka_error_code()
}

fn requires_abort(error: &rdkafka::error::KafkaError) -> bool {
    matches!(error, rdkafka::error::KafkaError::Transaction(txn) if txn.txn_requires_abort())
}

fn is_retriable(error: &rdkafka::error::KafkaError) -> bool {
    matches!(error, rdkafka::error::KafkaError::Transaction(txn) if txn.is_retriable())
}
