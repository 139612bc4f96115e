//! What the status page charts: every `historyInterval` the App samples each
//! consumer group's messages handled per second and total lag, and each
//! single consumer's lag, keeping the last 15 minutes in memory.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::component::Ekafka;

/// How far back the charts reach.
pub(crate) const WINDOW: Duration = Duration::from_secs(15 * 60);

/// How long one client may take to say its lag.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// One sample of a client.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Sample {
    /// When, in milliseconds since the Unix epoch.
    pub(crate) at: u64,
    /// Messages handled per second since the sample before (none for the
    /// first, and for single consumers).
    pub(crate) handled_per_second: Option<f64>,
    /// Messages behind, summed over the client's partitions (none when it
    /// could not be read).
    pub(crate) lag: Option<i64>,
}

/// A client's samples, oldest first, and the count the next rate is from.
#[derive(Debug, Default)]
struct Series {
    samples: VecDeque<Sample>,
    last_count: Option<(Instant, u64)>,
}

/// The samples of every client, by kind and name.
#[derive(Debug)]
pub(crate) struct History {
    interval: Duration,
    series: Mutex<BTreeMap<(Kind, String), Series>>,
}

/// What a series belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Group,
    Consumer,
}

impl History {
    /// Samples every `interval`.
    pub(crate) fn new(interval: Duration) -> Self {
        History {
            interval,
            series: Mutex::default(),
        }
    }

    /// How often it samples.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// The samples of `name`, oldest first.
    pub(crate) fn of(&self, kind: Kind, name: &str) -> Vec<Sample> {
        self.lock()
            .get(&(kind, name.to_string()))
            .map(|series| series.samples.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Takes one sample of every running group and consumer of `kafka`;
    /// forgets clients no longer running.
    pub(crate) async fn sample(&self, kafka: &Ekafka) {
        let mut taken = Vec::new();
        for group in kafka.running_groups() {
            let lag = match tokio::time::timeout(ASK_TIMEOUT, group.status()).await {
                Ok(Ok(status)) => Some(status.total_lag()),
                _ => None,
            };
            let handled = group.probe().handled();
            taken.push(((Kind::Group, group.name().to_string()), Some(handled), lag));
        }
        for consumer in kafka.running_consumers() {
            let lag = match tokio::time::timeout(ASK_TIMEOUT, consumer.lag()).await {
                Ok(Ok(lag)) => Some(lag),
                _ => None,
            };
            taken.push(((Kind::Consumer, consumer.name().to_string()), None, lag));
        }
        let (now, at) = (Instant::now(), unix_millis());
        let capacity = self.capacity();
        let mut series = self.lock();
        series.retain(|key, _| taken.iter().any(|(k, _, _)| k == key));
        for (key, count, lag) in taken {
            let series = series.entry(key).or_default();
            let handled_per_second = match (series.last_count, count) {
                (Some((then, before)), Some(count)) => {
                    let seconds = now.duration_since(then).as_secs_f64();
                    (seconds > 0.0).then(|| count.saturating_sub(before) as f64 / seconds)
                }
                _ => None,
            };
            series.last_count = count.map(|count| (now, count));
            if series.samples.len() == capacity {
                series.samples.pop_front();
            }
            series.samples.push_back(Sample {
                at,
                handled_per_second,
                lag,
            });
        }
    }

    /// Samples kept per client: the window's worth.
    fn capacity(&self) -> usize {
        let per_window = WINDOW.as_millis() / self.interval.as_millis().max(1);
        usize::try_from(per_window).unwrap_or(usize::MAX).max(2)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(Kind, String), Series>> {
        self.series.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifteen_minutes_of_samples_are_kept() {
        assert_eq!(History::new(Duration::from_secs(5)).capacity(), 180);
        assert_eq!(History::new(Duration::from_secs(60)).capacity(), 15);
    }
}
