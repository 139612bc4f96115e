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
//!
//! The [`Committer`] keeps the books; each commit that ends is handed to the
//! engine as a [`Finished`], which tells interceptors, metrics and
//! subscribers, then answers the explicit commits it covered.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::command::Uncommitted;
use super::partitions::Partitions;
use crate::error::CommitFailure;
use crate::native::commit_queue::{self, CommitQueue};
use crate::record::{PartitionOffset, TopicPartition};

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

/// The result of one commit, matched to it by its sequence number.
struct CommitResult {
    seq: usize,
    /// Why the commit as a whole failed.
    error: Option<CommitFailure>,
    /// Partitions the coordinator refused, and why.
    refused: Vec<(TopicPartition, RDKafkaErrorCode)>,
}

impl From<commit_queue::CommitResult> for CommitResult {
    fn from(result: commit_queue::CommitResult) -> Self {
        CommitResult {
            seq: result.seq,
            error: result.error.map(refusal),
            refused: result
                .refused
                .into_iter()
                .map(|(topic, partition, code)| {
                    let topic = topic.into();
                    (TopicPartition { topic, partition }, code)
                })
                .collect(),
        }
    }
}

/// librdkafka's refusal of a commit, as the member reports it.
fn refusal(refused: commit_queue::Refused) -> CommitFailure {
    CommitFailure::Refused {
        code: refused.code,
        detail: refused.detail,
    }
}

/// A commit that ended, for the engine to report.
pub(super) struct Finished {
    /// What it committed.
    pub(super) committed: Vec<PartitionOffset>,
    /// Why the rest was not, and which offsets those were.
    pub(super) failure: Option<(CommitFailure, Vec<PartitionOffset>)>,
    pub(super) took: Duration,
    /// The explicit commits it answers, once reported.
    pub(super) replies: Vec<CommitReply>,
}

impl Finished {
    /// What the explicit commits it covered are answered.
    pub(super) fn outcome(&self) -> Result<Vec<PartitionOffset>, Uncommitted> {
        match &self.failure {
            None => Ok(self.committed.clone()),
            Some((failure, offsets)) => Err(Uncommitted {
                offsets: offsets.clone(),
                failure: failure.clone(),
            }),
        }
    }
}

struct InFlight {
    seq: usize,
    offsets: Vec<PartitionOffset>,
    started: Instant,
    replies: Vec<CommitReply>,
}

/// The member's commits: the one in flight, the explicit ones waiting, the
/// pause after failures, and what is left uncommitted.
pub(super) struct Committer {
    /// `None` before the engine runs and once it lets the consumer go; commits
    /// are then synchronous.
    queue: Option<CommitQueue>,
    next_seq: usize,
    in_flight: Option<InFlight>,
    /// Explicit commits, answered by the next commit to start.
    waiting: Vec<CommitReply>,
    /// Commits given up on, whose late success still counts.
    timed_out: VecDeque<(usize, Vec<PartitionOffset>)>,
    /// Commits failed in a row, and when the periodic commit may try again.
    failed_in_a_row: u32,
    retry_at: Option<Instant>,
    /// The pause after the last failure: it runs again from when the
    /// failure is reported (see [`Committer::failure_reported`]).
    pause: Duration,
    last_commit: Instant,
    /// What was acknowledged but whose commit failed, per partition, and the
    /// last failure: a close reports it instead of claiming a clean end.
    uncommitted: Option<Uncommitted>,
    /// Ended commits not reported yet.
    finished: Vec<Finished>,
    /// `commitInterval` (0: after every pass) and the group's `timeout`.
    interval: Duration,
    timeout: Duration,
}

impl Committer {
    pub(super) fn new(interval: Duration, timeout: Duration) -> Self {
        Committer {
            queue: None,
            next_seq: 0,
            in_flight: None,
            waiting: Vec::new(),
            timed_out: VecDeque::new(),
            failed_in_a_row: 0,
            retry_at: None,
            pause: Duration::ZERO,
            last_commit: Instant::now(),
            uncommitted: None,
            finished: Vec::new(),
            interval,
            timeout,
        }
    }

    /// Commits from now on go out on `queue` (or synchronously without one).
    pub(super) fn set_queue(&mut self, queue: Option<CommitQueue>) {
        self.queue = queue;
    }

    /// Calls `at(since, after)` for each moment a commit may become due
    /// without anyone waking the engine.
    pub(super) fn deadlines(&self, mut at: impl FnMut(Instant, Duration)) {
        if !self.interval.is_zero() {
            at(self.last_commit, self.interval);
        }
        if let Some(in_flight) = &self.in_flight {
            at(in_flight.started, self.timeout);
        }
        if let Some(retry) = self.retry_at {
            at(retry, Duration::ZERO);
        }
    }

    /// Commits that ended since the last call, oldest first.
    pub(super) fn take_finished(&mut self) -> Vec<Finished> {
        std::mem::take(&mut self.finished)
    }

    /// What was left uncommitted, taken for the close's report.
    pub(super) fn take_uncommitted(&mut self) -> Option<Uncommitted> {
        self.uncommitted.take()
    }

    /// An explicit commit: answered once the next commit is confirmed.
    pub(super) fn request(&mut self, reply: CommitReply) {
        self.waiting.push(reply);
    }

    /// Reads commit results, and starts a commit when one is due: at once
    /// when `commitInterval` is 0 or an explicit commit waits, else every
    /// `commitInterval`. `sync_commit` commits when there is no queue.
    pub(super) fn commit_due(
        &mut self,
        partitions: &mut Partitions,
        sync_commit: impl FnOnce(&TopicPartitionList) -> Option<CommitFailure>,
    ) {
        self.read_results(partitions, Duration::ZERO);
        let backing_off = self.retry_at.is_some_and(|at| Instant::now() < at);
        // An explicit commit goes at once; the periodic one waits out a failure.
        if backing_off && self.waiting.is_empty() {
            return;
        }
        if self.interval.is_zero()
            || !self.waiting.is_empty()
            || self.last_commit.elapsed() >= self.interval
        {
            self.begin(partitions, None, sync_commit);
        }
    }

    /// Waits for the commit in flight, then commits what was acknowledged (in
    /// `only`) and waits for that too, each up to the group's `timeout`: for
    /// a revoke or a close, which must not let partitions go before their
    /// commit is settled.
    pub(super) fn commit_and_wait(
        &mut self,
        partitions: &mut Partitions,
        only: Option<&[TopicPartition]>,
        sync_commit: impl FnOnce(&TopicPartitionList) -> Option<CommitFailure>,
    ) {
        self.settle_in_flight(partitions);
        self.begin(partitions, only, sync_commit);
        self.settle_in_flight(partitions);
    }

    /// Offsets to commit as librdkafka's list; an offset the list refuses
    /// fails the commit, naming it.
    fn list_of(offsets: &[PartitionOffset]) -> Result<TopicPartitionList, Uncommitted> {
        let mut list = TopicPartitionList::new();
        for o in offsets {
            let (id, offset) = (&o.partition, o.offset);
            list.add_partition_offset(&id.topic, id.partition, Offset::Offset(offset))
                .map_err(|e| Uncommitted {
                    offsets: vec![o.clone()],
                    failure: CommitFailure::Invalid {
                        partition: id.clone(),
                        detail: e.to_string(),
                    },
                })?;
        }
        Ok(list)
    }

    /// Starts a commit of what was acknowledged (in `only`), unless one is in
    /// flight; explicit commits waiting are answered by it.
    fn begin(
        &mut self,
        partitions: &mut Partitions,
        only: Option<&[TopicPartition]>,
        sync_commit: impl FnOnce(&TopicPartitionList) -> Option<CommitFailure>,
    ) {
        if self.in_flight.is_some() {
            return;
        }
        self.last_commit = Instant::now();
        let replies = std::mem::take(&mut self.waiting);
        let offsets = partitions.to_commit(only);
        let list = match Self::list_of(&offsets) {
            Ok(list) => list,
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
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        let in_flight = InFlight {
            seq,
            offsets,
            started: Instant::now(),
            replies,
        };
        let sent = self.queue.as_ref().map(|q| q.commit(&list, seq));
        match sent {
            Some(Ok(())) => self.in_flight = Some(in_flight),
            Some(Err(refused)) => self.fail(partitions, in_flight, refusal(refused)),
            // Letting the consumer go: nothing is left to wait on, so wait here.
            None => {
                let result = CommitResult {
                    seq,
                    error: sync_commit(&list),
                    refused: Vec::new(),
                };
                self.finish(partitions, in_flight, result);
            }
        }
    }

    /// Reads the commit results that came (waiting up to `wait` for the
    /// first), and gives up on a commit in flight for longer than `timeout`.
    fn read_results(&mut self, partitions: &mut Partitions, wait: Duration) {
        if self.queue.is_none() {
            if let Some(in_flight) = self.in_flight.take() {
                self.fail(partitions, in_flight, CommitFailure::MemberStopped);
            }
            return;
        }
        let mut wait = wait;
        while let Some(result) = self.queue.as_ref().and_then(|q| q.next_result(wait)) {
            let result = CommitResult::from(result);
            wait = Duration::ZERO;
            match self.in_flight.take() {
                Some(in_flight) if in_flight.seq == result.seq => {
                    self.finish(partitions, in_flight, result);
                }
                other => {
                    self.in_flight = other;
                    self.late_answer(partitions, result);
                }
            }
        }
        let timeout = self.timeout;
        if self
            .in_flight
            .as_ref()
            .is_some_and(|c| c.started.elapsed() >= timeout)
        {
            let in_flight = self.in_flight.take().expect("checked above");
            self.timed_out
                .push_back((in_flight.seq, in_flight.offsets.clone()));
            if self.timed_out.len() > LATE_ANSWERS_KEPT {
                self.timed_out.pop_front();
            }
            self.fail(partitions, in_flight, CommitFailure::TimedOut { timeout });
        }
    }

    /// Reads results until no commit is in flight (it times out at the
    /// group's `timeout` at the latest).
    fn settle_in_flight(&mut self, partitions: &mut Partitions) {
        while self.in_flight.is_some() {
            self.read_results(partitions, Duration::from_millis(20));
        }
    }

    fn fail(&mut self, partitions: &mut Partitions, in_flight: InFlight, failure: CommitFailure) {
        let result = CommitResult {
            seq: in_flight.seq,
            error: Some(failure),
            refused: Vec::new(),
        };
        self.finish(partitions, in_flight, result);
    }

    /// A commit given up on was answered after all: what it committed counts.
    fn late_answer(&mut self, partitions: &mut Partitions, result: CommitResult) {
        let Some(index) = self
            .timed_out
            .iter()
            .position(|(seq, _)| *seq == result.seq)
        else {
            return;
        };
        let (_, offsets) = self.timed_out.remove(index).expect("found above");
        if result.error.is_none() {
            let confirmed: Vec<PartitionOffset> = offsets
                .into_iter()
                .filter(|o| !result.refused.iter().any(|(p, _)| *p == o.partition))
                .collect();
            self.mark_committed(partitions, &confirmed);
        }
    }

    /// The member stops without a final commit: what was acknowledged and
    /// not committed is kept, for the close to report.
    pub(super) fn leave_uncommitted(&mut self, partitions: &Partitions, failure: CommitFailure) {
        let offsets = partitions.to_commit(None);
        if offsets.is_empty() {
            return;
        }
        self.keep_uncommitted(&offsets, failure);
    }

    fn keep_uncommitted(&mut self, offsets: &[PartitionOffset], failure: CommitFailure) {
        let kept = self.uncommitted.get_or_insert_with(|| Uncommitted {
            offsets: Vec::new(),
            failure: failure.clone(),
        });
        for offset in offsets {
            kept.offsets.retain(|u| u.partition != offset.partition);
            kept.offsets.push(offset.clone());
        }
        kept.failure = failure;
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

    fn mark_committed(&mut self, partitions: &mut Partitions, offsets: &[PartitionOffset]) {
        for committed in offsets {
            partitions.mark_committed(committed);
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
        self.pause = pause;
        self.retry_at = Some(Instant::now() + pause);
    }

    /// A failed commit was reported: the pause before the periodic commit
    /// tries again runs from now, so subscribers see the tries a full pause
    /// apart however long the report took.
    pub(super) fn failure_reported(&mut self) {
        if self.retry_at.is_some() {
            self.retry_at = Some(Instant::now() + self.pause);
        }
    }

    /// Records a commit's result: marks what was committed, keeps what was
    /// not, and hands the commit over to be reported.
    fn finish(&mut self, partitions: &mut Partitions, commit: InFlight, result: CommitResult) {
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
            refused && !partitions.is_committed(o)
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
        self.mark_committed(partitions, &committed);
        self.record_outcome(failure.is_some());
        if let Some(failure) = &failure {
            self.keep_uncommitted(&failed, failure.clone());
        }
        self.finished.push(Finished {
            committed,
            failure: failure.map(|failure| (failure, failed)),
            took: started.elapsed(),
            replies,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::partitions::fixtures::{fetched, id};
    use super::*;

    /// Partitions 0 and 1, with `0..acknowledged` of partition 0 handed out
    /// and acknowledged.
    fn acknowledged(acknowledged: i64) -> Partitions {
        let mut partitions = fetched(1000, [0..acknowledged, 0..0]);
        partitions.take_batch(0, acknowledged as usize, 0b1);
        partitions.acknowledge(0b1, &id(0), 0, acknowledged - 1);
        partitions
    }

    fn refused() -> CommitFailure {
        CommitFailure::TimedOut {
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_commit_marks_what_it_committed_and_answers_the_explicit_commits() {
        let mut partitions = acknowledged(5);
        let mut committer = Committer::new(Duration::ZERO, Duration::from_secs(1));
        let (reply, answer) = tokio::sync::oneshot::channel();
        committer.request(reply);
        committer.commit_due(&mut partitions, |list| {
            assert_eq!(list.count(), 1);
            None
        });
        let finished = committer.take_finished();
        assert_eq!(finished.len(), 1);
        assert_eq!(finished[0].committed[0].offset, 5);
        assert!(finished[0].failure.is_none());
        assert_eq!(partitions.committed()[0].offset, 5);
        // Answered by the engine once it reported the commit.
        let outcome = finished[0].outcome();
        for reply in finished.into_iter().flat_map(|f| f.replies) {
            let _ = reply.send(outcome.clone());
        }
        assert_eq!(answer.blocking_recv().unwrap().unwrap()[0].offset, 5);
        assert!(committer.take_uncommitted().is_none());
    }

    #[test]
    fn a_failed_commit_is_kept_and_the_periodic_one_waits_before_trying_again() {
        let mut partitions = acknowledged(3);
        let mut committer = Committer::new(Duration::ZERO, Duration::from_secs(1));
        committer.commit_due(&mut partitions, |_| Some(refused()));
        let finished = committer.take_finished();
        let (_, offsets) = finished[0].failure.as_ref().expect("failed");
        assert_eq!(offsets[0].offset, 3);
        assert!(partitions.committed().is_empty());

        // The periodic commit backs off; it does not ask again at once.
        committer.commit_due(&mut partitions, |_| panic!("asked during the pause"));
        assert!(committer.take_finished().is_empty());
        let mut deadlines = Vec::new();
        committer.deadlines(|at, after| deadlines.push((at, after)));
        assert!(deadlines.iter().any(|(at, _)| *at > Instant::now()));

        // An explicit commit goes at once, and its success clears the record.
        let (reply, _answer) = tokio::sync::oneshot::channel();
        committer.request(reply);
        committer.commit_due(&mut partitions, |_| None);
        assert!(committer.take_finished()[0].failure.is_none());
        assert!(committer.take_uncommitted().is_none());
    }

    #[test]
    fn what_a_revoked_partition_left_uncommitted_is_forgotten_and_the_rest_kept() {
        let partitions = acknowledged(2);
        let mut committer = Committer::new(Duration::ZERO, Duration::from_secs(1));
        committer.leave_uncommitted(&partitions, CommitFailure::MemberStopped);
        committer.forget_uncommitted(&[id(1)]);
        let kept = committer.take_uncommitted().expect("partition 0 kept");
        assert_eq!(
            (kept.offsets[0].partition.clone(), kept.offsets[0].offset),
            (id(0), 2)
        );

        committer.leave_uncommitted(&partitions, CommitFailure::MemberStopped);
        committer.forget_uncommitted(&[id(0)]);
        assert!(committer.take_uncommitted().is_none());
        // Nothing acknowledged past the commit point: nothing to keep.
        let empty = Partitions::new(10, 10);
        committer.leave_uncommitted(&empty, CommitFailure::MemberStopped);
        assert!(committer.take_uncommitted().is_none());
    }

    #[test]
    fn a_periodic_commit_waits_for_its_interval_but_a_revoke_commits_at_once() {
        let mut partitions = acknowledged(1);
        let mut committer = Committer::new(Duration::from_secs(3600), Duration::from_secs(1));
        // With an interval and nothing explicit, nothing is due yet.
        committer.commit_due(&mut partitions, |_| panic!("not due"));
        assert!(committer.take_finished().is_empty());
        committer.commit_and_wait(&mut partitions, Some(&[id(0)]), |_| None);
        assert_eq!(committer.take_finished()[0].committed.len(), 1);
    }
}
