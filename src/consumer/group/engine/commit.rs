//! Committing what every subscriber acknowledged.

use super::*;

impl Engine {
    /// Commits every partition (or those in `only`) whose acknowledged offset
    /// moved; returns what was committed.
    pub(super) fn commit(
        &mut self,
        consumer: &BaseConsumer<GroupContext>,
        mode: CommitMode,
        only: Option<&[TopicPartition]>,
    ) -> Result<Vec<PartitionOffset>, String> {
        let mut list = TopicPartitionList::new();
        let mut offsets = Vec::new();
        for p in &self.partitions {
            if only.is_some_and(|only| !only.contains(&p.id)) {
                continue;
            }
            if let Some(offset) = p.ledger.to_commit() {
                if let Err(e) =
                    list.add_partition_offset(&p.id.topic, p.id.partition, Offset::Offset(offset))
                {
                    return Err(format!("cannot commit {}: {e}", p.id));
                }
                offsets.push(PartitionOffset {
                    partition: p.id.clone(),
                    offset,
                });
            }
        }
        self.last_commit = Instant::now();
        if offsets.is_empty() {
            return Ok(offsets);
        }
        let started = Instant::now();
        let result = consumer
            .commit(&list, mode)
            .map_err(|e| format!("commit failed: {e}"));
        self.interceptors.after_commit(
            &self.settings.client,
            &offsets,
            result.as_ref().map(|_| ()).map_err(String::as_str),
            started.elapsed(),
        );
        match result {
            Ok(()) => {
                for committed in &offsets {
                    if let Some(i) = self
                        .partition_index(&committed.partition.topic, committed.partition.partition)
                    {
                        self.partitions[i].ledger.mark_committed(committed.offset);
                    }
                }
                self.uncommitted
                    .offsets
                    .retain(|u| !offsets.iter().any(|c| c.partition == u.partition));
                Ok(offsets)
            }
            Err(error) => {
                // Named with its offsets: the subscriber (and a later close)
                // can tell exactly which messages will be handled again.
                let message = format!(
                    "{error} (left uncommitted: {})",
                    crate::record::describe_offsets(&offsets)
                );
                for failed in &offsets {
                    self.uncommitted
                        .offsets
                        .retain(|u| u.partition != failed.partition);
                    self.uncommitted.offsets.push(failed.clone());
                }
                self.uncommitted.reason = error;
                let event = GroupEvent::Error(self.error_event(message.clone()));
                self.emit(event);
                Err(message)
            }
        }
    }

    /// Commits when due. A synchronous commit's failure is emitted and
    /// recorded by `commit`; an asynchronous one's result arrives in
    /// librdkafka's commit callback, which the group does not read yet.
    pub(super) fn commit_due(&mut self, consumer: &BaseConsumer<GroupContext>) {
        let interval = self.settings.commit_interval;
        if interval.is_zero() {
            let _ = self.commit(consumer, CommitMode::Sync, None);
        } else if self.last_commit.elapsed() >= interval {
            let _ = self.commit(consumer, CommitMode::Async, None);
        }
    }
}
