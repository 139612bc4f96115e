//! Handing fetched messages to subscribers: every message subscriber gets
//! every message, in batches of one partition, partitions taken in turn; a
//! batch a subscriber's mailbox has no room for waits in its outbox, and the
//! batches of a subscriber that went away are handed back. Event subscribers
//! hear every group event.

use std::collections::VecDeque;
use std::sync::Arc;

use actix::dev::SendError;
use actix::Recipient;

use super::partitions::Partitions;
use crate::consumer::group::ledger::MAX_SUBSCRIBERS;
use crate::record::{
    AckSender, AckSink, Assigned, ConsumedMessage, GroupEvent, MessageBatch, SubscriberMask,
    TopicPartition,
};

/// Where a message subscriber's batches go.
pub(crate) enum MessageSink {
    Actor(Recipient<MessageBatch>),
    Pull(PullSink),
}

/// The pull API's ends of the engine: batches on a bounded channel (its
/// prefetch), events on their own so that a revoke overtakes the batches
/// queued ahead of it.
pub(crate) struct PullSink {
    pub(crate) batches: tokio::sync::mpsc::Sender<MessageBatch>,
    pub(crate) events: tokio::sync::mpsc::UnboundedSender<GroupEvent>,
}

impl MessageSink {
    /// Offers a batch without blocking; gives it back when there is no room.
    fn offer(&self, batch: MessageBatch) -> Result<(), Offer> {
        match self {
            MessageSink::Actor(recipient) => recipient.try_send(batch).map_err(|e| match e {
                SendError::Full(batch) => Offer::Full(batch),
                SendError::Closed(batch) => Offer::Closed(batch),
            }),
            MessageSink::Pull(sink) => sink.batches.try_send(batch).map_err(|e| match e {
                tokio::sync::mpsc::error::TrySendError::Full(batch) => Offer::Full(batch),
                tokio::sync::mpsc::error::TrySendError::Closed(batch) => Offer::Closed(batch),
            }),
        }
    }

    /// Tells a puller of `event` at once (actor subscribers get events
    /// through their own event recipients).
    fn tell(&self, event: &GroupEvent) {
        if let MessageSink::Pull(sink) = self {
            // A puller gone is noticed by its batch channel.
            let _ = sink.events.send(event.clone());
        }
    }
}

/// A batch a sink did not take, handed back.
enum Offer {
    Full(MessageBatch),
    /// The subscriber is gone: the batch is handed back with the rest of its
    /// outbox, never lost (an unreleased batch would hold its partition's
    /// revoke until `drainTimeout`).
    Closed(MessageBatch),
}

struct Subscriber {
    bit: SubscriberMask,
    sink: MessageSink,
    /// Batches not offered yet: the sink had no room.
    outbox: VecDeque<MessageBatch>,
}

/// Offsets `from..=to` of a partition, handed to the subscriber `by` in a
/// batch it never received.
#[derive(Debug, PartialEq)]
pub(super) struct Undelivered {
    pub(super) by: SubscriberMask,
    pub(super) partition: TopicPartition,
    pub(super) from: i64,
    pub(super) to: i64,
}

impl Undelivered {
    fn of(by: SubscriberMask, batch: &MessageBatch) -> Option<Self> {
        let (first, last) = (batch.messages.first()?, batch.messages.last()?);
        Some(Undelivered {
            by,
            partition: batch.partition.clone(),
            from: first.offset(),
            to: last.offset(),
        })
    }
}

/// Subscribers that went away, and what they never received.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Departures {
    pub(super) subscribers: usize,
    pub(super) undelivered: Vec<Undelivered>,
}

/// The member's subscribers, and the batches on their way to them.
pub(super) struct Dispatch {
    subscribers: Vec<Subscriber>,
    event_subscribers: Vec<Recipient<GroupEvent>>,
    /// The partition the next round of batches starts at.
    rotation: usize,
    /// Where the batches handed out send their acknowledgements.
    ack_sink: Arc<dyn AckSink>,
    /// `deliveryBatch`: the most messages in one batch.
    batch_size: usize,
}

impl Dispatch {
    pub(super) fn new(ack_sink: Arc<dyn AckSink>, batch_size: usize) -> Self {
        Dispatch {
            subscribers: Vec::new(),
            event_subscribers: Vec::new(),
            rotation: 0,
            ack_sink,
            batch_size,
        }
    }

    /// Message subscribers attached.
    pub(super) fn count(&self) -> usize {
        self.subscribers.len()
    }

    /// Attaches a message subscriber, telling it of the `current`
    /// assignment, if any; refused past [`MAX_SUBSCRIBERS`].
    pub(super) fn subscribe(
        &mut self,
        sink: MessageSink,
        current: Option<Assigned>,
    ) -> Result<(), String> {
        let used = self.subscribers.iter().fold(0u64, |mask, s| mask | s.bit);
        let free = (0..MAX_SUBSCRIBERS).find(|i| used & (1 << i) == 0);
        let Some(index) = free else {
            return Err(format!(
                "a group takes at most {MAX_SUBSCRIBERS} message subscribers"
            ));
        };
        if let Some(current) = current {
            sink.tell(&GroupEvent::Assigned(current));
        }
        self.subscribers.push(Subscriber {
            bit: 1 << index,
            sink,
            outbox: VecDeque::new(),
        });
        Ok(())
    }

    /// Attaches an event subscriber, telling it of the `current` assignment,
    /// if any.
    pub(super) fn subscribe_events(
        &mut self,
        recipient: Recipient<GroupEvent>,
        current: Option<Assigned>,
    ) {
        if let Some(current) = current {
            recipient.do_send(GroupEvent::Assigned(current));
        }
        self.event_subscribers.push(recipient);
    }

    /// Tells every event subscriber and every puller of `event`.
    pub(super) fn tell(&self, event: &GroupEvent) {
        for recipient in &self.event_subscribers {
            // Events are few (one per rebalance or error) and must not be dropped.
            recipient.do_send(event.clone());
        }
        for subscriber in &self.subscribers {
            subscriber.sink.tell(event);
        }
    }

    /// Whether a batch waits for room in a subscriber's mailbox.
    pub(super) fn is_waiting(&self) -> bool {
        self.subscribers.iter().any(|s| !s.outbox.is_empty())
    }

    /// Turns what `partitions` fetched into batches for every subscriber,
    /// partition by partition in turn, `prepare`d once per batch (interceptors,
    /// metrics), and offers them.
    pub(super) fn dispatch(
        &mut self,
        partitions: &mut Partitions,
        generation: i32,
        mut prepare: impl FnMut(&TopicPartition, &mut Vec<ConsumedMessage>),
    ) -> Departures {
        if self.subscribers.is_empty() || partitions.is_empty() {
            return Departures::default();
        }
        let owed_by = self.subscribers.iter().fold(0, |mask, s| mask | s.bit);
        let count = partitions.len();
        self.rotation = (self.rotation + 1) % count;
        for step in 0..count {
            let index = (self.rotation + step) % count;
            while partitions.has_fetched(index) {
                let (partition, mut messages) =
                    partitions.take_batch(index, self.batch_size, owed_by);
                prepare(&partition, &mut messages);
                let messages = Arc::new(messages);
                for subscriber in &mut self.subscribers {
                    subscriber.outbox.push_back(MessageBatch {
                        generation,
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
        self.flush()
    }

    /// Offers waiting batches to each subscriber until its mailbox is full.
    /// Subscribers that went away are removed; what they never received is
    /// handed back.
    pub(super) fn flush(&mut self) -> Departures {
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
        let mut departures = Departures::default();
        for i in gone.into_iter().rev() {
            let subscriber = self.subscribers.remove(i);
            departures.subscribers += 1;
            let undelivered = subscriber.outbox.iter();
            departures
                .undelivered
                .extend(undelivered.filter_map(|batch| Undelivered::of(subscriber.bit, batch)));
        }
        departures
    }

    /// Takes the batches of `revoked` partitions out of the outboxes: never
    /// offered now, they are handed back.
    pub(super) fn withdraw(&mut self, revoked: &[TopicPartition]) -> Vec<Undelivered> {
        let mut undelivered = Vec::new();
        for subscriber in &mut self.subscribers {
            let bit = subscriber.bit;
            subscriber.outbox.retain(|batch| {
                if !revoked.contains(&batch.partition) {
                    return true;
                }
                undelivered.extend(Undelivered::of(bit, batch));
                false
            });
        }
        undelivered
    }
}

#[cfg(test)]
mod tests {
    use super::super::partitions::fixtures::id;
    use super::*;
    use crate::record::Ack;

    struct NoAcks;

    impl AckSink for NoAcks {
        fn acknowledge(&self, _ack: Ack) {}
    }

    /// Partitions 0 and 1, each with `per_partition` messages fetched.
    fn fetched(per_partition: i64) -> Partitions {
        super::super::partitions::fixtures::fetched(1000, [0..per_partition, 0..per_partition])
    }

    fn puller(room: usize) -> (MessageSink, tokio::sync::mpsc::Receiver<MessageBatch>) {
        let (batches, received) = tokio::sync::mpsc::channel(room);
        let (events, _) = tokio::sync::mpsc::unbounded_channel();
        (MessageSink::Pull(PullSink { batches, events }), received)
    }

    #[test]
    fn batches_wait_in_the_outbox_until_the_mailbox_has_room() {
        let mut dispatch = Dispatch::new(Arc::new(NoAcks), 2);
        let (sink, mut received) = puller(1);
        dispatch.subscribe(sink, None).unwrap();
        let mut partitions = fetched(3);
        let mut prepared = 0;
        let departures = dispatch.dispatch(&mut partitions, 7, |_, messages| {
            prepared += messages.len();
        });
        assert_eq!(departures, Departures::default());
        assert_eq!(prepared, 6, "every message prepared once");
        assert!(dispatch.is_waiting(), "4 batches, room for 1");

        let mut sizes = Vec::new();
        while let Ok(batch) = received.try_recv() {
            assert_eq!(batch.generation, 7);
            sizes.push((batch.partition.partition, batch.messages.len()));
            dispatch.flush();
        }
        sizes.sort_unstable();
        assert_eq!(sizes, vec![(0, 1), (0, 2), (1, 1), (1, 2)]);
        assert!(!dispatch.is_waiting());
    }

    #[test]
    fn a_subscriber_gone_hands_back_what_it_never_received() {
        let mut dispatch = Dispatch::new(Arc::new(NoAcks), 10);
        let (sink, received) = puller(1);
        dispatch.subscribe(sink, None).unwrap();
        let mut partitions = fetched(2);
        dispatch.dispatch(&mut partitions, 1, |_, _| {});
        drop(received);
        let departures = dispatch.flush();
        assert_eq!(departures.subscribers, 1);
        assert_eq!(departures.undelivered.len(), 1, "one batch was taken");
        let undelivered = &departures.undelivered[0];
        assert_eq!(
            (undelivered.by, undelivered.from, undelivered.to),
            (1, 0, 1)
        );
        assert_eq!(dispatch.count(), 0);
    }

    #[test]
    fn a_revoke_withdraws_the_partitions_batches_not_yet_offered() {
        let mut dispatch = Dispatch::new(Arc::new(NoAcks), 10);
        let (sink, mut received) = puller(1);
        dispatch.subscribe(sink, None).unwrap();
        let mut partitions = fetched(2);
        dispatch.dispatch(&mut partitions, 1, |_, _| {});
        let offered = received.try_recv().expect("one batch offered");
        let waiting = id(1 - offered.partition.partition);
        let withdrawn = dispatch.withdraw(std::slice::from_ref(&waiting));
        assert_eq!(
            withdrawn,
            vec![Undelivered {
                by: 1,
                partition: waiting,
                from: 0,
                to: 1,
            }]
        );
        assert!(!dispatch.is_waiting());
    }

    #[test]
    fn subscribers_are_refused_past_the_limit() {
        let mut dispatch = Dispatch::new(Arc::new(NoAcks), 10);
        let mut receivers = Vec::new();
        for _ in 0..MAX_SUBSCRIBERS {
            let (sink, received) = puller(1);
            dispatch.subscribe(sink, None).unwrap();
            receivers.push(received);
        }
        let (sink, _received) = puller(1);
        let refused = dispatch.subscribe(sink, None).unwrap_err();
        assert!(refused.contains("at most 64"), "{refused}");
    }
}
