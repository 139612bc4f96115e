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
        let partition = &mut self.partitions[index];
        hold(&mut partition.ledger, &mut partition.sizes, owned);
        self.held += 1;
        self.max_held = self.max_held.max(self.held);
    }

    /// Reads each partition's own queue while the partition is under its share
    /// of the bounds (and the member under the bounds), in messages and in
    /// bytes; returns how many messages were read. Partitions without room are
    /// simply not read: librdkafka stops fetching them once its own queue for
    /// them is full, and `apply_pauses` pauses them when that costs too much.
    pub(super) fn fill(&mut self) -> usize {
        let (share, share_bytes) = (self.share(), self.share_bytes());
        let flow = &self.settings.config.flow;
        let (bound, bound_bytes) = (flow.max_buffered, flow.max_buffered_bytes);
        let mut held_bytes = self.held_bytes();
        let mut read = 0;
        let now = Instant::now();
        for p in &mut self.partitions {
            let Some(queue) = &p.queue else { continue };
            if p.held_until.is_some_and(|until| until > now) {
                continue;
            }
            loop {
                let room = share
                    .saturating_sub(p.ledger.held())
                    .min(bound.saturating_sub(self.held));
                let room_bytes = share_bytes
                    .saturating_sub(p.ledger.held_bytes())
                    .min(bound_bytes.saturating_sub(held_bytes));
                // Messages are taken in batches, and every message taken is
                // held: take only as many as fit the bytes left at the size of
                // the partition's largest recent message (one at a time before
                // any was seen), and at least one while any room is left.
                let fits = match (room_bytes, p.sizes.largest) {
                    (0, _) => 0,
                    (_, 0) => 1,
                    (bytes, largest) => (bytes / largest).max(1),
                };
                let room = room.min(fits);
                if room == 0 {
                    break;
                }
                let mut failed = false;
                let taken = queue.read(&p.id.topic, room, |fetched| match fetched {
                    Ok(owned) => held_bytes += hold(&mut p.ledger, &mut p.sizes, owned),
                    Err(code) => {
                        tracing::warn!(partition = %p.id, error = %code, "fetch error");
                        failed = true;
                    }
                });
                self.held += taken.messages;
                read += taken.messages;
                if taken.emptied || failed {
                    break;
                }
            }
            let full = p.ledger.held() >= share || p.ledger.held_bytes() >= share_bytes;
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
        (self.settings.config.flow.max_buffered / self.partitions.len().max(1)).max(1)
    }

    /// Each partition's share of `maxBufferedBytes`.
    fn share_bytes(&self) -> usize {
        (self.settings.config.flow.max_buffered_bytes / self.partitions.len().max(1)).max(1)
    }

    /// Whether the member holds its bound in messages or in bytes.
    pub(super) fn is_full(&self) -> bool {
        let flow = &self.settings.config.flow;
        self.held >= flow.max_buffered || self.held_bytes() >= flow.max_buffered_bytes
    }

    fn held_bytes(&self) -> usize {
        self.partitions.iter().map(|p| p.ledger.held_bytes()).sum()
    }

    /// What librdkafka prefetched for the partitions it still fetches, as
    /// their queue lengths times their messages' average payload: counted as
    /// librdkafka counts it against `queued.max.messages.kbytes`, so that a
    /// prefetch within the limits the member sized is never over budget.
    fn prefetched_bytes(&self) -> usize {
        self.partitions
            .iter()
            .filter(|p| !p.paused)
            .map(|p| p.queue.as_ref().map_or(0, |q| q.len()) * p.sizes.payload)
            .sum()
    }

    /// Pauses, in librdkafka, partitions that have sat at their share for
    /// [`PAUSE_AFTER`], or at once when what librdkafka prefetched for the
    /// partitions it still fetches passes `maxBufferedBytes` (pausing makes it
    /// drop what it prefetched for them); resumes them once they are down to
    /// half of their share and the member is under its bounds.
    pub(super) fn apply_pauses(&mut self, consumer: &Consumer_) {
        let (share, share_bytes) = (self.share(), self.share_bytes());
        let flow = &self.settings.config.flow;
        let member_full = self.is_full();
        // At its bound with nothing acknowledged for a while: every partition
        // is without room for good, not only those at their share.
        let member_stalled = member_full && self.last_progress.elapsed() >= PAUSE_AFTER;
        // Only a full partition is paused for the budget: read the queue
        // lengths (one librdkafka call per partition) only when there is one,
        // not on every acknowledgement.
        let any_full = self
            .partitions
            .iter()
            .any(|p| !p.paused && p.full_since.is_some());
        let over_budget = any_full && self.prefetched_bytes() > flow.max_buffered_bytes;
        let mut pause = TopicPartitionList::new();
        let mut resume = TopicPartitionList::new();
        let now = Instant::now();
        for p in &mut self.partitions {
            // Held until its next message is due: paused until then, then as
            // its share says.
            let held = match p.held_until {
                Some(until) if until > now => true,
                Some(_) => {
                    p.held_until = None;
                    false
                }
                None => false,
            };
            // At its share: paused after PAUSE_AFTER (brief backlogs are
            // absorbed by not reading it), or at once when what librdkafka
            // prefetched is over the bound; any partition when the member is
            // stalled.
            let stalled = member_stalled
                || p.full_since
                    .is_some_and(|since| over_budget || since.elapsed() >= PAUSE_AFTER);
            let want = held
                || if p.paused {
                    member_full
                        || p.ledger.held() > share / 2
                        || p.ledger.held_bytes() > share_bytes / 2
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
            tracing::debug!(group = %self.settings.config.group_id, partitions = pause.count(), over_budget, "pausing full partitions");
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
                let batch_size = self.settings.config.flow.delivery_batch;
                let mut messages = self.partitions[index]
                    .ledger
                    .take_batch(batch_size, owed_by);
                self.interceptors
                    .before_deliver(&self.settings.client, &mut messages);
                let partition = self.partitions[index].id.clone();
                if let Some(metrics) = &mut self.metrics {
                    metrics.consumed(&partition.topic, messages.len());
                }
                let messages = Arc::new(messages);
                for subscriber in &mut self.subscribers {
                    subscriber.outbox.push_back(MessageBatch {
                        generation: self.generation,
                        partition: partition.clone(),
                        messages: Arc::clone(&messages),
                        ack: AckSender {
                            sink: Arc::clone(&self.ack_sink),
                            by: subscriber.bit,
                        },
                    });
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
                    Err(Offer::Closed(item)) => {
                        subscriber.outbox.push_front(item);
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
        for batch in subscriber.outbox {
            if let (Some(first), Some(last)) = (batch.messages.first(), batch.messages.last()) {
                self.acknowledge(
                    subscriber.bit,
                    &batch.partition,
                    first.offset(),
                    last.offset(),
                );
            }
        }
        let message =
            "a message subscriber stopped; messages it had not acknowledged stay uncommitted"
                .to_string();
        let event = GroupEvent::Error(self.error_event(message));
        self.emit(event);
    }
}

/// The sizes of a partition's recent messages.
#[derive(Default)]
pub(super) struct RecentSizes {
    /// The largest held size (`held_bytes`) lately: it decays by an eighth
    /// with each smaller message, so one outlier does not shrink reads for long.
    pub(super) largest: usize,
    /// The average value length: what librdkafka counts in its queue's size,
    /// to estimate from the queue's length what librdkafka prefetched.
    pub(super) payload: usize,
}

impl RecentSizes {
    /// Notes a message holding `held` bytes, `payload` of them its value.
    fn note(&mut self, held: usize, payload: usize) {
        self.largest = held.max(self.largest - self.largest / 8);
        self.payload = running_average(self.payload, payload);
    }
}

/// Holds a partition's fetched message in its `ledger` until it is handed out
/// and acknowledged, and notes its size in `sizes`; returns the bytes it counts
/// for. (Fields, not the partition: reading its queue borrows the partition.)
fn hold(ledger: &mut Ledger, sizes: &mut RecentSizes, message: ConsumedMessage) -> usize {
    let payload = message.value().map_or(0, <[u8]>::len);
    let held = ledger.push_fetched(message);
    sizes.note(held, payload);
    held
}

/// `average` with one more `size` folded in (the first size is the average).
fn running_average(average: usize, size: usize) -> usize {
    if average == 0 {
        size
    } else {
        (average * 7 + size) / 8
    }
}
