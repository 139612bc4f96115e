//! Choosing a partition for keyed and keyless messages (`producers.*.balancer`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use rdkafka::producer::{Partitioner, PARTITION_UA};

/// Picks the partition of a message that does not name one.
///
/// Register an implementation under a name with
/// [`EkafkaBuilder::with_balancer`](crate::EkafkaBuilder::with_balancer) and set
/// `balancer = "that-name"` on a producer. It runs on librdkafka's threads, for
/// every message: keep it fast and non-blocking. A panic or an out-of-range result
/// fails that message instead of the process.
///
/// ```
/// /// Sends everything with a key starting with "vip" to partition 0.
/// struct Vip;
/// impl ekafka::Balancer for Vip {
///     fn partition(&self, _topic: &str, key: Option<&[u8]>, partitions: i32) -> i32 {
///         match key {
///             Some(k) if k.starts_with(b"vip") => 0,
///             Some(k) => 1 + (k.len() as i32 % (partitions - 1).max(1)),
///             None => partitions - 1,
///         }
///     }
/// }
/// ```
pub trait Balancer: Send + Sync + 'static {
    /// A partition in `0..partitions` for this message.
    fn partition(&self, topic: &str, key: Option<&[u8]>, partitions: i32) -> i32;
}

/// The default: messages are dealt out over the partitions in turn, like kafka-go's
/// `RoundRobin`, whatever their key.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicU32,
}

impl Balancer for RoundRobin {
    fn partition(&self, _topic: &str, _key: Option<&[u8]>, partitions: i32) -> i32 {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        (turn % partitions.max(1) as u32) as i32
    }
}

/// Hands librdkafka's partitioner callback to a [`Balancer`], containing its panics.
#[derive(Clone)]
pub(crate) struct BalancerAdapter {
    pub(crate) balancer: Option<Arc<dyn Balancer>>,
}

impl Partitioner for BalancerAdapter {
    fn partition(
        &self,
        topic_name: &str,
        key: Option<&[u8]>,
        partition_cnt: i32,
        _is_partition_available: impl Fn(i32) -> bool,
    ) -> i32 {
        let Some(balancer) = &self.balancer else {
            return PARTITION_UA;
        };
        // This runs inside a C callback: unwinding across it would abort the process.
        let chosen = catch_unwind(AssertUnwindSafe(|| {
            balancer.partition(topic_name, key, partition_cnt)
        }));
        match chosen {
            Ok(p) if (0..partition_cnt).contains(&p) => p,
            Ok(p) => {
                tracing::error!(
                    topic = topic_name,
                    partition = p,
                    partitions = partition_cnt,
                    "balancer chose a partition out of range; the message fails"
                );
                PARTITION_UA
            }
            Err(_) => {
                tracing::error!(topic = topic_name, "balancer panicked; the message fails");
                PARTITION_UA
            }
        }
    }
}
