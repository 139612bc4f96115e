//! Reading partitions within the bound, pausing stalled ones, and handing
//! batches to subscribers.

use super::*;

impl Engine {
    /// A message from the shared queue: one of a partition not (yet) given its
    /// own queue.
    pub(super) fn on_message(&mut self, message: &BorrowedMessage<'_>) {
        let Some(index) = self.partition_index(message.topic(), message.partition()) else {
            // A message of a partition revoked a moment ago: its next owner reads it.
            return;
        };
        let owned = crate::record::owned_consumed(&self.partitions[index].id.topic, message);
        self.partitions[index].ledger.push_fetched(owned);
        self.held += 1;
        self.max_held = self.max_held.max(self.held);
    }

    /// Reads each partition's own queue while the partition is under its share
    /// of the bound (and the member under the bound); returns how many messages
    /// were read. Partitions without room are simply not read: librdkafka stops
    /// fetching them once its own queue for them is full.
    pub(super) fn fill(&mut self) -> usize {
        let share = self.share();
        let bound = self.settings.flow.max_buffered;
        let mut read = 0;
        for p in &mut self.partitions {
            let Some(queue) = &p.queue else { continue };
            let mut room = share
                .saturating_sub(p.ledger.held())
                .min(bound.saturating_sub(self.held));
            while room > 0 {
                match queue.poll(Duration::ZERO) {
                    Some(Ok(message)) => {
                        p.ledger
                            .push_fetched(crate::record::owned_consumed(&p.id.topic, &message));
                        self.held += 1;
                        room -= 1;
                        read += 1;
                    }
                    Some(Err(error)) => {
                        tracing::warn!(partition = %p.id, error = %error, "fetch error");
                        break;
                    }
                    None => break,
                }
            }
            let full = p.ledger.held() >= share;
            match (full, p.full_since) {
                (true, None) => p.full_since = Some(Instant::now()),
                (false, Some(_)) => p.full_since = None,
                _ => {}
            }
        }
        self.max_held = self.max_held.max(self.held);
        read
    }

    /// Each partition's share of the bound.
    pub(super) fn share(&self) -> usize {
        (self.settings.flow.max_buffered / self.partitions.len().max(1)).max(1)
    }

    /// Pauses, in librdkafka, partitions that have sat at their share for
    /// [`PAUSE_AFTER`], and resumes them once they are down to half of it.
    pub(super) fn apply_pauses(&mut self, consumer: &Consumer_) {
        let share = self.share();
        let mut pause = TopicPartitionList::new();
        let mut resume = TopicPartitionList::new();
        for p in &mut self.partitions {
            let stalled = p
                .full_since
                .is_some_and(|since| since.elapsed() >= PAUSE_AFTER);
            let want = if p.paused {
                p.ledger.held() > share / 2
            } else {
                stalled
            };
            if want != p.paused {
                let list = if want { &mut pause } else { &mut resume };
                list.add_partition(&p.id.topic, p.id.partition);
                p.paused = want;
            }
        }
        if pause.count() > 0 {
            tracing::debug!(group = %self.settings.group_id, partitions = pause.count(), "pausing stalled partitions");
            if let Err(e) = consumer.pause(&pause) {
                tracing::warn!(error = %e, "pausing partitions failed");
            }
        }
        if resume.count() > 0 {
            if let Err(e) = consumer.resume(&resume) {
                tracing::warn!(error = %e, "resuming partitions failed");
            }
        }
    }

    /// Turns fetched messages into batches for every subscriber, partition by
    /// partition in turn, and offers them.
    pub(super) fn dispatch(&mut self) {
        if self.subscribers.is_empty() || self.partitions.is_empty() {
            return;
        }
        let owed_by = self.subscribers.iter().fold(0, |mask, s| mask | s.bit);
        let count = self.partitions.len();
        self.rotation = (self.rotation + 1) % count;
        for step in 0..count {
            let index = (self.rotation + step) % count;
            while self.partitions[index].ledger.has_fetched() {
                let batch_size = self.settings.flow.delivery_batch;
                let mut messages = self.partitions[index]
                    .ledger
                    .take_batch(batch_size, owed_by);
                self.interceptors
                    .before_deliver(&self.settings.client, &mut messages);
                let messages: Arc<[ConsumedMessage]> = messages.into();
                let partition = self.partitions[index].id.clone();
                for subscriber in &mut self.subscribers {
                    subscriber.outbox.push_back(PullItem::Batch(MessageBatch {
                        generation: self.generation,
                        partition: partition.clone(),
                        messages: Arc::clone(&messages),
                        ack: AckSender {
                            sink: Arc::clone(&self.ack_sink),
                            by: subscriber.bit,
                        },
                    }));
                }
            }
        }
        self.flush_outboxes();
    }

    /// Offers queued items to each subscriber until its mailbox is full.
    pub(super) fn flush_outboxes(&mut self) {
        let mut gone = Vec::new();
        for (i, subscriber) in self.subscribers.iter_mut().enumerate() {
            while let Some(item) = subscriber.outbox.pop_front() {
                match subscriber.sink.offer(item) {
                    Ok(()) => {}
                    Err(Offer::Full(item)) => {
                        subscriber.outbox.push_front(item);
                        break;
                    }
                    Err(Offer::Closed) => {
                        gone.push(i);
                        break;
                    }
                }
            }
        }
        // Remove every departed subscriber before telling anyone, since telling
        // flushes again.
        let departed: Vec<Subscriber> = gone
            .into_iter()
            .rev()
            .map(|i| self.subscribers.remove(i))
            .collect();
        for subscriber in departed {
            self.release_departed(subscriber);
        }
    }

    /// A subscriber went away. What it never received is released on its behalf;
    /// what it received and did not acknowledge keeps holding its partitions, so
    /// nothing is committed past it: those messages come again after a restart or
    /// a rebalance.
    pub(super) fn release_departed(&mut self, subscriber: Subscriber) {
        for item in subscriber.outbox {
            if let PullItem::Batch(batch) = item {
                if let (Some(first), Some(last)) = (batch.messages.first(), batch.messages.last()) {
                    self.acknowledge(subscriber.bit, &batch.partition, first.offset, last.offset);
                }
            }
        }
        let message =
            "a message subscriber stopped; messages it had not acknowledged stay uncommitted"
                .to_string();
        let event = GroupEvent::Error(self.error_event(message));
        self.emit(event);
    }
}
