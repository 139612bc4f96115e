//! Committing what every subscriber acknowledged, without waiting for it.
//!
//! One commit is in flight at a time. It goes out on the engine's own commit
//! queue and its result is read on a later pass of the loop, so fetching and
//! dispatch go on while the coordinator answers; the next commit then covers
//! everything acknowledged meanwhile. A commit not confirmed within the group's
//! `timeout` counts as failed (a late answer still counts). A failure is
//! emitted to subscribers as a `GroupEvent::Error` naming each partition's
//! offset left uncommitted, and kept for the close's report; the periodic
//! commit tries again after a pause (100 ms, doubling to 5 s while failures
//! follow one another), an explicit one at once. A revoke and a
//! close wait for the commit in flight, then for their own, each up to
//! `timeout`. The commit point never passes an unacknowledged message: what is
//! committed comes from the ledgers.

use std::collections::VecDeque;

use super::commit_queue::{CommitQueue, CommitResult};
use super::*;
use crate::error::CommitFailure;

impl CommitResult {
    /// A commit `seq` that failed as a whole.
    fn failed(seq: usize, failure: CommitFailure) -> Self {
        CommitResult {
            seq,
            error: Some(failure),
            refused: Vec::new(),
        }
    }
}

/// Where an explicit commit's result goes.
pub(super) type CommitReply =
    tokio::sync::oneshot::Sender<Result<Vec<PartitionOffset>, Uncommitted>>;

/// Commits timed out but perhaps still answered later, remembered this far back.
const LATE_ANSWERS_KEPT: usize = 8;

/// How soon a commit that failed is tried again by the periodic commit, and
/// the most that pause doubles to while failures follow one another: without
/// it, a refusal that lasts (a rebalance, a coordinator moving) would be
/// retried, and reported, on every pass of the engine (with the default
/// `commitInterval` of 0, thousands of times a second).
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MOST: Duration = Duration::from_secs(5);

#[derive(Default)]
pub(super) struct Commits {
    /// `None` before the engine runs and once it lets the consumer go; commits
    /// are then synchronous.
    pub(super) queue: Option<CommitQueue>,
    next_seq: usize,
    in_flight: Option<InFlight>,
    /// Explicit commits, answered by the next commit to start.
    waiting: Vec<CommitReply>,
    /// Commits given up on, whose late success still counts.
    timed_out: VecDeque<(usize, Vec<PartitionOffset>)>,
    /// Commits failed in a row, and when the periodic commit may try again.
    failed_in_a_row: u32,
    retry_at: Option<Instant>,
}

impl Commits {
    /// When the commit in flight, if any, was sent.
    pub(super) fn in_flight_since(&self) -> Option<Instant> {
        self.in_flight.as_ref().map(|c| c.started)
    }

    /// When the periodic commit may try again after a failure.
    pub(super) fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Counts a commit's outcome: a failure pushes the next periodic try
    /// back, doubling the pause while failures follow one another.
    fn record_outcome(&mut self, failed: bool) {
        if !failed {
            self.failed_in_a_row = 0;
            self.retry_at = None;
            return;
        }
        let pause = RETRY_FIRST
            .saturating_mul(1 << self.failed_in_a_row.min(16))
            .min(RETRY_MOST);
        self.failed_in_a_row = self.failed_in_a_row.saturating_add(1);
        self.retry_at = Some(Instant::now() + pause);
    }
}

struct InFlight {
    seq: usize,
    offsets: Vec<PartitionOffset>,
    started: Instant,
    replies: Vec<CommitReply>,
}

impl Engine {
    /// Offsets to commit: each partition (or those in `only`) whose
    /// acknowledged offset moved past its last commit.
    fn offsets_to_commit(
        &self,
        only: Option<&[TopicPartition]>,
    ) -> Result<(TopicPartitionList, Vec<PartitionOffset>), Uncommitted> {
        let mut list = TopicPartitionList::new();
        let mut offsets = Vec::new();
        for p in &self.partitions {
            if only.is_some_and(|only| !only.contains(&p.id)) {
                continue;
            }
            if let Some(offset) = p.ledger.to_commit() {
                list.add_partition_offset(&p.id.topic, p.id.partition, Offset::Offset(offset))
                    .map_err(|e| Uncommitted {
                        offsets: vec![PartitionOffset {
                            partition: p.id.clone(),
                            offset,
                        }],
                        failure: CommitFailure::Invalid {
                            partition: p.id.clone(),
                            detail: e.to_string(),
                        },
                    })?;
                offsets.push(PartitionOffset {
                    partition: p.id.clone(),
                    offset,
                });
            }
        }
        Ok((list, offsets))
    }

    /// Starts a commit of what was acknowledged (in `only`), unless one is in
    /// flight; explicit commits waiting are answered by it.
    fn begin_commit(
        &mut self,
        consumer: &BaseConsumer<GroupContext>,
        only: Option<&[TopicPartition]>,
    ) {
        if self.commits.in_flight.is_some() {
            return;
        }
        self.last_commit = Instant::now();
        let replies = std::mem::take(&mut self.commits.waiting);
        let (list, offsets) = match self.offsets_to_commit(only) {
            Ok(found) => found,
            Err(invalid) => {
                for reply in replies {
                    let _ = reply.send(Err(invalid.clone()));
                }
                return;
            }
        };
        if offsets.is_empty() {
            for reply in replies {
                let _ = reply.send(Ok(Vec::new()));
            }
            return;
        }
        let started = Instant::now();
        let seq = self.commits.next_seq;
        self.commits.next_seq = seq.wrapping_add(1);
        let in_flight = InFlight {
            seq,
            offsets,
            started,
            replies,
        };
        let sent = self.commits.queue.as_ref().map(|q| q.commit(&list, seq));
        match sent {
            Some(Ok(())) => self.commits.in_flight = Some(in_flight),
            Some(Err(error)) => self.fail_in_flight(in_flight, error),
            // Letting the consumer go: nothing is left to wait on, so wait here.
            None => {
                let result = CommitResult {
                    seq,
                    error: consumer
                        .commit(&list, CommitMode::Sync)
                        .err()
                        .map(|e| CommitFailure::from_kafka(&e)),
                    refused: Vec::new(),
                };
                self.finish(in_flight, result);
            }
        }
    }

    /// Reads the commit results that came (waiting up to `wait` for the
    /// first), and gives up on a commit in flight for longer than `timeout`.
    fn read_commit_results(&mut self, wait: Duration) {
        if self.commits.queue.is_none() {
            if let Some(in_flight) = self.commits.in_flight.take() {
                self.fail_in_flight(in_flight, CommitFailure::MemberStopped);
            }
            return;
        }
        let mut wait = wait;
        while let Some(result) = self
            .commits
            .queue
            .as_ref()
            .and_then(|q| q.next_result(wait))
        {
            wait = Duration::ZERO;
            match self.commits.in_flight.take() {
                Some(in_flight) if in_flight.seq == result.seq => self.finish(in_flight, result),
                other => {
                    self.commits.in_flight = other;
                    self.late_answer(result);
                }
            }
        }
        let timeout = self.settings.config.timeout;
        if self
            .commits
            .in_flight
            .as_ref()
            .is_some_and(|c| c.started.elapsed() >= timeout)
        {
            let in_flight = self.commits.in_flight.take().expect("checked above");
            self.commits
                .timed_out
                .push_back((in_flight.seq, in_flight.offsets.clone()));
            if self.commits.timed_out.len() > LATE_ANSWERS_KEPT {
                self.commits.timed_out.pop_front();
            }
            self.fail_in_flight(in_flight, CommitFailure::TimedOut { timeout });
        }
    }

    fn fail_in_flight(&mut self, in_flight: InFlight, failure: CommitFailure) {
        let result = CommitResult::failed(in_flight.seq, failure);
        self.finish(in_flight, result);
    }

    /// A commit given up on was answered after all: what it committed counts.
    fn late_answer(&mut self, result: CommitResult) {
        let Some(index) = self
            .commits
            .timed_out
            .iter()
            .position(|(seq, _)| *seq == result.seq)
        else {
            return;
        };
        let (_, offsets) = self.commits.timed_out.remove(index).expect("found above");
        if result.error.is_none() {
            let confirmed: Vec<PartitionOffset> = offsets
                .into_iter()
                .filter(|o| !result.refused.iter().any(|(p, _)| *p == o.partition))
                .collect();
            self.mark_committed(&confirmed);
        }
    }

    /// The member stops without a final commit: what was acknowledged and
    /// not committed is kept in `uncommitted`, for the close to report.
    pub(super) fn leave_uncommitted(&mut self, failure: CommitFailure) {
        let Ok((_, offsets)) = self.offsets_to_commit(None) else {
            return;
        };
        if offsets.is_empty() {
            return;
        }
        let kept = self.uncommitted.get_or_insert_with(|| Uncommitted {
            offsets: Vec::new(),
            failure: failure.clone(),
        });
        for offset in offsets {
            kept.offsets.retain(|u| u.partition != offset.partition);
            kept.offsets.push(offset);
        }
        kept.failure = failure;
    }

    /// Whether the partition's committed offset reached `offset`.
    fn is_committed(&self, offset: &PartitionOffset) -> bool {
        self.partition_index(&offset.partition.topic, offset.partition.partition)
            .and_then(|i| self.partitions[i].ledger.committed())
            .is_some_and(|done| done >= offset.offset)
    }

    /// Drops the failures kept for `partitions` (see the revoke).
    pub(super) fn forget_uncommitted(&mut self, partitions: &[TopicPartition]) {
        if let Some(uncommitted) = &mut self.uncommitted {
            uncommitted
                .offsets
                .retain(|u| !partitions.contains(&u.partition));
            if uncommitted.offsets.is_empty() {
                self.uncommitted = None;
            }
        }
    }

    fn mark_committed(&mut self, offsets: &[PartitionOffset]) {
        for committed in offsets {
            if let Some(i) =
                self.partition_index(&committed.partition.topic, committed.partition.partition)
            {
                self.partitions[i].ledger.mark_committed(committed.offset);
            }
            // Only a failure at or past this offset is still outstanding.
            if let Some(uncommitted) = &mut self.uncommitted {
                uncommitted
                    .offsets
                    .retain(|u| u.partition != committed.partition || u.offset > committed.offset);
                if uncommitted.offsets.is_empty() {
                    self.uncommitted = None;
                }
            }
        }
    }

    /// Records a commit's result: marks what was committed, reports and keeps
    /// what was not, answers explicit commits.
    fn finish(&mut self, commit: InFlight, result: CommitResult) {
        let InFlight {
            offsets,
            started,
            replies,
            ..
        } = commit;
        let (failed, committed): (Vec<_>, Vec<_>) = offsets.into_iter().partition(|o| {
            let refused =
                result.error.is_some() || result.refused.iter().any(|(p, _)| *p == o.partition);
            // A late answer to an earlier commit may have confirmed it already.
            refused && !self.is_committed(o)
        });
        let failure = match (&result.error, result.refused.first()) {
            _ if failed.is_empty() => None,
            (Some(error), _) => Some(error.clone()),
            (None, Some((partition, code))) => Some(CommitFailure::PartitionRefused {
                partition: partition.clone(),
                code: *code,
            }),
            (None, None) => None,
        };
        self.interceptors.after_commit(
            &self.settings.client,
            &committed,
            failure.as_ref().map_or(Ok(()), Err),
            started.elapsed(),
        );
        if let Some(metrics) = &self.metrics {
            metrics.committed(failure.is_none());
        }
        self.mark_committed(&committed);
        self.commits.record_outcome(failure.is_some());
        let outcome = match failure {
            None => Ok(committed),
            Some(failure) => {
                // Named with its offsets: the subscriber (and a later close)
                // can tell exactly which messages will be handled again.
                let message = format!(
                    "commit failed: {failure} (left uncommitted: {})",
                    crate::record::describe_offsets(&failed)
                );
                let kept = self.uncommitted.get_or_insert_with(|| Uncommitted {
                    offsets: Vec::new(),
                    failure: failure.clone(),
                });
                for offset in &failed {
                    kept.offsets.retain(|u| u.partition != offset.partition);
                    kept.offsets.push(offset.clone());
                }
                kept.failure = failure.clone();
                let event = GroupEvent::Error(self.error_event(message));
                self.emit(event);
                Err(Uncommitted {
                    offsets: failed,
                    failure,
                })
            }
        };
        for reply in replies {
            let _ = reply.send(outcome.clone());
        }
    }

    /// Reads commit results, and starts a commit when one is due: at once
    /// when `commitInterval` is 0 or an explicit commit waits, else every
    /// `commitInterval`.
    pub(super) fn commit_due(&mut self, consumer: &BaseConsumer<GroupContext>) {
        self.read_commit_results(Duration::ZERO);
        let backing_off = self.commits.retry_at.is_some_and(|at| Instant::now() < at);
        // An explicit commit goes at once; the periodic one waits out a failure.
        if backing_off && self.commits.waiting.is_empty() {
            return;
        }
        let interval = self.settings.config.fetch.commit_interval;
        if interval.is_zero()
            || !self.commits.waiting.is_empty()
            || self.last_commit.elapsed() >= interval
        {
            self.begin_commit(consumer, None);
        }
    }

    /// An explicit commit: answered once the next commit is confirmed.
    pub(super) fn request_commit(&mut self, reply: CommitReply) {
        self.commits.waiting.push(reply);
    }

    /// Waits for the commit in flight, then commits what was acknowledged (in
    /// `only`) and waits for that too, each up to the group's `timeout`: for
    /// a revoke or a close, which must not let partitions go before their
    /// commit is settled.
    pub(super) fn commit_and_wait(
        &mut self,
        consumer: &BaseConsumer<GroupContext>,
        only: Option<&[TopicPartition]>,
    ) {
        self.settle_in_flight();
        self.begin_commit(consumer, only);
        self.settle_in_flight();
    }

    /// Reads results until no commit is in flight (it times out at the
    /// group's `timeout` at the latest).
    fn settle_in_flight(&mut self) {
        while self.commits.in_flight.is_some() {
            self.read_commit_results(Duration::from_millis(20));
        }
    }
}
