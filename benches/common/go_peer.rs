//! The Go peer (`tests/go_peer`: kafka-go configured as Go ekafka configures
//! it) as a bench side, on Apache Kafka only.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::Run;

/// The Go peer, built into the target directory, when the bench runs on a
/// broker of its own (`EKAFKA_TEST_BROKERS`: kafka-go is not measured
/// against librdkafka's mock) and Go is on the PATH; otherwise why not.
pub(crate) fn binary() -> Result<PathBuf, String> {
    if std::env::var(ekafka::testing::BROKERS_VARIABLE).map_or(true, |b| b.trim().is_empty()) {
        return Err("on the embedded cluster: the Go peer runs on Apache Kafka only".into());
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go_peer");
    let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/go-peer-bench");
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(&source)
        .status();
    match built {
        Ok(status) if status.success() => Ok(binary),
        Ok(status) => Err(format!("go build of tests/go_peer failed ({status})")),
        Err(e) => Err(format!("Go is not available: {e}")),
    }
}

/// The Go peer writing `messages` of 100 B to `topic`, in writes of 1,000,
/// `in_flight` at once (after a warm-up of its own), timed by itself.
pub(crate) fn throughput(
    binary: &Path,
    brokers: &str,
    topic: &str,
    messages: usize,
    in_flight: usize,
) -> Run {
    let in_flight = in_flight.to_string();
    let args = ["throughput", "-brokers", brokers, "-topic", topic];
    run(
        binary,
        &[&args[..], &["-in-flight", &in_flight]].concat(),
        messages,
    )
}

/// The Go peer reading `messages` of `topic` as a member of `group`,
/// committing every second, timed by itself from its first message to its
/// last.
pub(crate) fn read_throughput(
    binary: &Path,
    brokers: &str,
    topic: &str,
    group: &str,
    messages: usize,
) -> Run {
    let args = ["read-throughput", "-brokers", brokers, "-topic", topic];
    run(binary, &[&args[..], &["-group", group]].concat(), messages)
}

/// Runs the Go peer with `args` and `-count messages`; reads the run it prints.
fn run(binary: &Path, args: &[&str], messages: usize) -> Run {
    let output = Command::new(binary)
        .args(args)
        .args(["-count", &messages.to_string(), "-timeout", "300s"])
        .output()
        .expect("the Go peer runs");
    assert!(
        output.status.success(),
        "the Go peer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| -> f64 {
        let start = line.find(&format!("\"{name}\":")).expect("a field") + name.len() + 3;
        let rest = &line[start..];
        let end = rest.find([',', '}']).expect("its end");
        rest[..end].trim().parse().expect("a number")
    };
    Run {
        elapsed: Duration::from_secs_f64(field("seconds")),
        cpu: Duration::from_secs_f64(field("cpu_seconds")),
    }
}

/// The paired ratios ekafka / Go peer of one configuration's repetitions.
#[derive(Default)]
pub(crate) struct Ratios {
    ratios: Vec<f64>,
    go_rates: Vec<f64>,
}

impl Ratios {
    /// Prints one repetition's Go side (run `first` or last) and keeps its
    /// ratio.
    pub(crate) fn record(&mut self, ours: Run, go: Run, messages: usize, first: bool) {
        let ratio = ours.rate(messages) / go.rate(messages);
        println!(
            "    Go peer (kafka-go, {}): {:>8.0} msg/s {:>5.2} µs cpu/msg   ekafka / Go {ratio:.2}",
            if first { "first" } else { "last" },
            go.rate(messages),
            go.cpu_per_message(messages),
        );
        self.ratios.push(ratio);
        self.go_rates.push(go.rate(messages));
    }

    /// Prints the min/median/max of the ratios, when there were any.
    pub(crate) fn report(self) {
        if self.ratios.is_empty() {
            return;
        }
        let (min, median, max) = super::min_median_max(self.ratios);
        let (slowest, _, fastest) = super::min_median_max(self.go_rates);
        println!(
            "  throughput ratio ekafka / Go peer: min {min:.2}, median {median:.2}, max \
             {max:.2} (Go {slowest:.0}-{fastest:.0} msg/s)"
        );
    }
}
