//! The `main` of a test binary whose scenarios need Apache Kafka and run with
//! their own harness (they start clusters, kill brokers, run child processes).

use std::time::Instant;

/// A scenario: `Err` with the reason when it failed.
pub(crate) type Scenario = fn() -> Result<(), String>;

/// Runs the `scenarios` the command line's filters select when it says
/// `--ignored` or `--include-ignored` (as `./e2e.sh` does), else reports them
/// ignored (a plain `cargo test` has no Kafka); exits 1 when one failed.
pub(crate) fn run(binary: &str, scenarios: &[(&str, Scenario)]) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run = args
        .iter()
        .any(|a| a == "--ignored" || a == "--include-ignored");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let mut failed = 0;
    for &(name, scenario) in scenarios {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        if !run {
            println!("test {name} ... ignored, needs Apache Kafka: ./e2e.sh runs it");
            continue;
        }
        let started = Instant::now();
        match scenario() {
            Ok(()) => println!("test {name} ... ok ({:?})", started.elapsed()),
            Err(reason) => {
                failed += 1;
                println!("test {name} ... FAILED\n{reason}");
            }
        }
    }
    if failed > 0 {
        println!("{binary}: {failed} scenario(s) failed");
        std::process::exit(1);
    }
}

/// Runs `body` in an actix system; a panic is the scenario's failure.
pub(crate) fn in_system<F: std::future::Future<Output = ()>>(
    body: impl FnOnce() -> F,
) -> Result<(), String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        actix::System::new().block_on(body())
    }))
    .map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".to_string())
    })
}
