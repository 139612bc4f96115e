//! librdkafka's prefetch for a consumer group member, sized from the group's
//! own bounds (`maxBufferedBytes`, `maxBuffered`, `maxWait`, `maxBytes`).

use std::time::Duration;

use super::super::key::PropertyText as _;
use super::{FetchSettings, FlowSettings};

/// Each partition's share of librdkafka's prefetch (its queue, and one fetch
/// of it), given the number of partitions of the group's topics when known:
/// together they take at most `maxBufferedBytes` (each at least 4 KiB).
fn prefetch_per_partition(flow: &FlowSettings, partitions: Option<usize>) -> usize {
    let bound = flow.max_buffered_bytes;
    match partitions {
        Some(count) => (bound / (2 * count.max(1))).min(bound / 16).max(4 * 1024),
        None => (bound / 64).max(64 * 1024),
    }
}

/// The longest a group member's fetch waits for data (`maxWait` at most).
/// A member reads each partition from a queue of its own, and librdkafka
/// leaves a partition whose queue is full out of its broker's next fetch; when
/// the broker's other partitions are quiet, that fetch waits the full
/// `fetch.wait.max.ms`, and the left-out partition with it, even with data to
/// read. The wait bounds that stall (100 ms cost a third of the throughput of
/// a backlog drained on the embedded cluster); the price is an idle member
/// asking each broker for data up to 20 times a second. kafka-go, where
/// `maxWait` comes from, fetches each partition on its own.
const GROUP_FETCH_WAIT_MAX: Duration = Duration::from_millis(50);

/// librdkafka's prefetch, sized from the group's own bounds and the number of
/// partitions its topics have (read by the member before it joins; `None`
/// when unknown, and then each partition gets a 64th of `maxBufferedBytes`).
/// A group member reads each partition from a queue of its own, so the queue
/// limits apply per partition ([`prefetch_per_partition`]). A fetch response
/// is at most a quarter of the bound (but never below 1 MiB, the largest
/// message librdkafka accepts by default). The one writer of these properties
/// for groups (`config::librdkafka::consumer_group` calls it).
pub(crate) fn prefetch_properties(
    flow: &FlowSettings,
    fetch: &FetchSettings,
    partitions: Option<usize>,
) -> [(&'static str, String); 6] {
    let per_partition = prefetch_per_partition(flow, partitions);
    [
        (
            "fetch.wait.max.ms",
            fetch.max_wait.min(GROUP_FETCH_WAIT_MAX).property_text(),
        ),
        (
            "queued.max.messages.kbytes",
            (per_partition / 1024).max(1).to_string(),
        ),
        ("queued.min.messages", flow.max_buffered.to_string()),
        // With queues this small librdkafka finds a partition's full often; by
        // default it then waits a second before fetching it again, while ekafka
        // drains it within milliseconds.
        ("fetch.queue.backoff.ms", "10".to_string()),
        (
            "max.partition.fetch.bytes",
            per_partition.min(fetch.max_bytes as usize).to_string(),
        ),
        (
            "fetch.max.bytes",
            (flow.max_buffered_bytes / 4).max(1 << 20).to_string(),
        ),
    ]
}
