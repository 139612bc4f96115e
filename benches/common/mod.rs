//! What both benches measure with and print: a side's run (time and CPU), the
//! paired ratios of the repetitions, and their min/median/max.

use std::time::{Duration, Instant};

/// One side's run: how long, and the process CPU time spent meanwhile.
#[derive(Clone, Copy)]
pub struct Run {
    pub elapsed: Duration,
    pub cpu: Duration,
}

impl Run {
    /// A run that started at `started`, with `cpu_started` of CPU time spent then.
    pub fn since(started: Instant, cpu_started: Duration) -> Self {
        Run {
            elapsed: started.elapsed(),
            cpu: cpu_time() - cpu_started,
        }
    }

    pub fn rate(&self, messages: usize) -> f64 {
        messages as f64 / self.elapsed.as_secs_f64()
    }

    pub fn cpu_per_message(&self, messages: usize) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / messages as f64
    }
}

/// User plus system CPU time of this process so far.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// `name` from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The paired ratios ekafka / raw of one configuration's repetitions.
#[derive(Default)]
pub struct Ratios {
    throughput: Vec<f64>,
    cpu: Vec<f64>,
}

impl Ratios {
    /// Prints one repetition and keeps its ratios.
    pub fn record(&mut self, raw: Run, ours: Run, messages: usize, raw_first: bool) {
        let ratio = ours.rate(messages) / raw.rate(messages);
        println!(
            "  {}: raw {:>8.0} msg/s {:>5.2} µs cpu/msg   ekafka {:>8.0} msg/s {:>5.2} µs \
             cpu/msg   ratio {ratio:.2}",
            if raw_first {
                "raw first   "
            } else {
                "ekafka first"
            },
            raw.rate(messages),
            raw.cpu_per_message(messages),
            ours.rate(messages),
            ours.cpu_per_message(messages),
        );
        self.throughput.push(ratio);
        self.cpu
            .push(ours.cpu_per_message(messages) / raw.cpu_per_message(messages));
    }

    /// Prints the min/median/max of the ratios, and `goal` after them.
    pub fn report(self, goal: &str) {
        let (min, median, max) = min_median_max(self.throughput);
        let (cpu_min, cpu_median, cpu_max) = min_median_max(self.cpu);
        println!(
            "  throughput ratio ekafka / raw: min {min:.2}, median {median:.2}, max {max:.2}{goal}\n  \
             cpu per message ekafka / raw: min {cpu_min:.2}, median {cpu_median:.2}, max {cpu_max:.2}"
        );
    }
}

fn min_median_max(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[0],
        values[values.len() / 2],
        values[values.len() - 1],
    )
}
