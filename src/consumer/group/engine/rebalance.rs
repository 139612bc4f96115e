//! The rebalance barrier: taking partitions on, letting them go.

use rdkafka::consumer::RebalanceProtocol;

use super::*;

impl Engine {
    /// The barrier: stop handing out the revoked partitions, wait (up to
    /// `drainTimeout`) for what subscribers still owe, committing as usual
    /// meanwhile, commit the rest, let go.
    pub(super) fn revoke(
        &mut self,
        consumer: &BaseConsumer<GroupContext>,
        list: &TopicPartitionList,
    ) {
        // With cooperative rebalancing the revoke comes within the new generation.
        self.generation = generation_of(consumer);
        let revoked = partitions_of(list);
        for p in self
            .partitions
            .iter_mut()
            .filter(|p| revoked.contains(&p.id))
        {
            self.held -= p.ledger.drop_fetched();
        }
        // Batches not yet given to a subscriber never will be: release them.
        let mut undelivered = Vec::new();
        for subscriber in &mut self.subscribers {
            subscriber.outbox.retain(|batch| {
                if !revoked.contains(&batch.partition) {
                    return true;
                }
                if let (Some(first), Some(last)) = (batch.messages.first(), batch.messages.last()) {
                    undelivered.push((
                        subscriber.bit,
                        batch.partition.clone(),
                        first.offset(),
                        last.offset(),
                    ));
                }
                false
            });
        }
        // Never acknowledged: that would let the commit pass messages nobody handled.
        for (bit, partition, from, to) in undelivered {
            self.release(bit, &partition, from, to);
        }
        self.emit(GroupEvent::Revoked(Revoked {
            group_id: self.settings.config.group_id.clone(),
            generation: self.generation,
            partitions: revoked.clone(),
        }));

        let deadline = Instant::now() + self.drain_timeout();
        loop {
            // Commits go on while the barrier waits: an explicit commit is
            // answered, and what is acknowledged is committed, not held
            // back until the barrier ends.
            self.commit_due(consumer);
            let owed: usize = self
                .partitions
                .iter()
                .filter(|p| revoked.contains(&p.id))
                .map(|p| p.ledger.owed())
                .sum();
            let now = Instant::now();
            if owed == 0 || now >= deadline {
                if owed > 0 {
                    tracing::warn!(
                        group = %self.settings.config.group_id,
                        unacknowledged = owed,
                        "revoke: drain timeout passed; unacknowledged messages will be delivered again to the next owner"
                    );
                }
                break;
            }
            match self
                .commands
                .recv_timeout((deadline - now).min(Duration::from_millis(20)))
            {
                Ok(command) => self.handle(consumer, command),
                Err(RecvTimeoutError::Timeout) => self.flush_outboxes(),
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // A failure is not lost: it is emitted to subscribers, naming the
        // offsets, and recorded for the close's report.
        self.commit_and_wait(consumer, Some(&revoked));
        if self.close_started.is_none() {
            // Given to another member, which reads them from the committed
            // offset: what this one could not commit is handled again there
            // (emitted when it failed), and no longer this member's to report.
            // A close's own revoke keeps them: they are its report.
            self.forget_uncommitted(&revoked);
        }
        let before = self.partitions.len();
        let mut released = 0;
        self.partitions.retain(|p| {
            let keep = !revoked.contains(&p.id);
            if !keep {
                released += p.ledger.held();
            }
            keep
        });
        self.held -= released;
        tracing::debug!(group = %self.settings.config.group_id, revoked = before - self.partitions.len(), "partitions released");
    }

    /// Takes on newly assigned partitions, each with its own queue.
    pub(super) fn take_partitions(&mut self, list: &TopicPartitionList) {
        let consumer = self.consumer.upgrade();
        for id in partitions_of(list) {
            if self.partition_index(&id.topic, id.partition).is_some() {
                continue;
            }
            let queue = consumer.as_ref().and_then(|c| {
                split_queue::SplitQueue::split(c, &id.topic, id.partition, Arc::clone(&self.waker))
            });
            self.partitions.push(Partition {
                id,
                start: StartingOffset::Reset(self.settings.config.fetch.start_offset),
                ledger: Ledger::default(),
                queue,
                sizes: Default::default(),
                full_since: None,
                paused: false,
                held_until: None,
            });
        }
    }

    pub(super) fn assign(
        &mut self,
        consumer: &BaseConsumer<GroupContext>,
        list: &TopicPartitionList,
    ) {
        // Incremental protocols (cooperativeSticky, KIP-848) also call back with
        // an empty assignment when a reconciliation adds nothing (after giving
        // partitions up, say): there is nothing to take on or announce.
        if list.count() == 0
            && matches!(
                consumer.rebalance_protocol(),
                RebalanceProtocol::Cooperative
            )
        {
            return;
        }
        // Normally done before the assignment; here too in case librdkafka skipped it.
        self.take_partitions(list);
        self.generation = generation_of(consumer);
        let assigned = partitions_of(list);
        let committed = consumer.committed_offsets(list.clone(), self.settings.config.timeout);
        let mut partitions = Vec::with_capacity(assigned.len());
        for id in assigned {
            let start = committed
                .as_ref()
                .ok()
                .and_then(|c| c.find_partition(&id.topic, id.partition))
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(StartingOffset::Committed(o)),
                    _ => None,
                })
                .unwrap_or(StartingOffset::Reset(
                    self.settings.config.fetch.start_offset,
                ));
            partitions.push((id.clone(), start));
            if let Some(i) = self.partition_index(&id.topic, id.partition) {
                self.partitions[i].start = start;
            }
        }
        if let Err(e) = committed {
            let event =
                GroupEvent::Error(self.error_event(format!("cannot read committed offsets: {e}")));
            self.emit(event);
        }
        self.apply_pauses(consumer);
        self.emit(GroupEvent::Assigned(Assigned {
            group_id: self.settings.config.group_id.clone(),
            generation: self.generation,
            partitions,
        }));
    }
}
