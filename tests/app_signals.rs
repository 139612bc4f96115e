//! SIGTERM and the App, in child processes (a signal to the test process
//! itself would reach every test): the first signal shuts down gracefully and
//! the process exits 0; a second one during the shutdown forces an exit with
//! `FORCED_EXIT_STATUS`.
//!
//! This binary is its own `main` (no libtest): run without arguments it is the
//! parent and runs the scenarios; with `EKAFKA_SIGNAL_CHILD` set it is a child.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use ekafka::config::ConsumerServerConfig;
use ekafka::testing::{unique_name, TestCluster};
use ekafka::{App, ConsumedMessage, Ekafka, Message};

const CHILD: &str = "EKAFKA_SIGNAL_CHILD";
const WAIT: Duration = Duration::from_secs(60);

fn main() {
    match std::env::var(CHILD).as_deref() {
        Ok(mode) => child(mode),
        Err(_) => parent(),
    }
}

// ---- the parent: runs each scenario, reports like libtest ----

type Scenario = fn() -> Result<(), String>;

fn parent() {
    let scenarios: [(&str, Scenario); 2] = [
        (
            "sigterm_drains_and_exits_zero",
            sigterm_drains_and_exits_zero,
        ),
        (
            "a_second_sigterm_forces_the_exit",
            a_second_sigterm_forces_the_exit,
        ),
    ];
    let mut failed = 0;
    for (name, scenario) in scenarios {
        match scenario() {
            Ok(()) => println!("test {name} ... ok"),
            Err(reason) => {
                failed += 1;
                println!("test {name} ... FAILED\n{reason}");
            }
        }
    }
    if failed > 0 {
        println!("app_signals: {failed} scenario(s) failed");
        std::process::exit(1);
    }
}

fn sigterm_drains_and_exits_zero() -> Result<(), String> {
    let mut child = Spawned::start("graceful")?;
    child.wait_for_line("HANDLED 6")?;
    child.signal()?;
    let status = child.exit_within(WAIT)?;
    let output = child.wait_for_line("SERVE Ok")?;
    if status.code() != Some(0) {
        return Err(format!("exit status {status}, expected 0\n{output}"));
    }
    Ok(())
}

fn a_second_sigterm_forces_the_exit() -> Result<(), String> {
    let mut child = Spawned::start("forced")?;
    child.wait_for_line("IN FLIGHT")?;
    child.signal()?;
    // The handler never finishes and the deadline is 5 minutes away.
    child.wait_for_line("shutting down gracefully")?;
    let signalled = Instant::now();
    child.signal()?;
    let status = child.exit_within(WAIT)?;
    if status.code() != Some(ekafka::FORCED_EXIT_STATUS) {
        return Err(format!(
            "exit status {status}, expected {}",
            ekafka::FORCED_EXIT_STATUS
        ));
    }
    if signalled.elapsed() > Duration::from_secs(30) {
        return Err(format!("the forced exit took {:?}", signalled.elapsed()));
    }
    Ok(())
}

/// A child process running one mode, with its output lines.
struct Spawned {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Spawned {
    fn start(mode: &str) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .env(CHILD, mode)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the child: {e}"))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Spawned {
            child,
            lines,
            seen: Vec::new(),
        })
    }

    /// Waits until a line containing `text` was printed; returns all output so far.
    fn wait_for_line(&mut self, text: &str) -> Result<String, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.seen.iter().any(|line| line.contains(text)) {
                return Ok(self.seen.join("\n"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.fail(format!("no line with {text:?} within {WAIT:?}")))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.fail(format!("the child ended before printing {text:?}")))
                }
            }
        }
    }

    fn signal(&self) -> Result<(), String> {
        // SAFETY: kill(2) on our own child's pid; no memory is shared.
        let sent = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        if sent == 0 {
            Ok(())
        } else {
            Err(format!("kill failed: {}", std::io::Error::last_os_error()))
        }
    }

    fn exit_within(&mut self, limit: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                // Collect what it printed before exiting.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    self.seen.push(line);
                }
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(self.fail(format!("the child did not exit within {limit:?}")));
            }
            // Polling a process for its exit; there is no event to wait on here.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn fail(&mut self, reason: String) -> String {
        let _ = self.child.kill();
        format!("{reason}\nchild output:\n{}", self.seen.join("\n"))
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- the child: an App on an embedded cluster ----

fn child(mode: &str) {
    // The App's "shutting down gracefully" log line tells the parent when the
    // first signal was taken.
    tracing_subscriber::fmt()
        .with_env_filter("ekafka=info")
        .with_writer(std::io::stdout)
        .with_ansi(false)
        .init();
    let cluster = TestCluster::from_env().expect("test cluster");
    let topic = unique_name("topic");
    cluster.create_topic(&topic).expect("topic");
    let text = format!(
        "[kafka]\n{}\n[kafka.producers.p1]\ntopic = {topic:?}\nbatchTimeout = \"5ms\"\n\
         [kafka.consumerGroups.cg1]\ngroupID = {:?}\ntopic = {topic:?}\nmaxWait = \"100ms\"\n\
         heartbeatInterval = \"1s\"\nsessionTimeout = \"6s\"\n\
         [kafkaConsumerServers.s1]\nconsumerGroupName = \"cg1\"\n",
        cluster.brokers_line(),
        unique_name("group"),
    );
    let kafka = Ekafka::from_toml_str(&text, "kafka")
        .unwrap()
        .build()
        .unwrap();
    let config = ConsumerServerConfig::from_toml_str(&text, "kafkaConsumerServers.s1").unwrap();
    let served = actix::System::new().block_on(async move {
        let messages = (0..6).map(|i| Message::new(format!("m-{i}")));
        let report = kafka.producer("p1").unwrap().write(messages).await.unwrap();
        assert!(report.is_success());
        let handled = std::rc::Rc::new(std::cell::Cell::new(0));
        let forced = mode == "forced";
        let app = App::new(kafka)
            .shutdown_timeout(Duration::from_secs(300))
            .each_message(config, move |_message: ConsumedMessage| {
                let handled = std::rc::Rc::clone(&handled);
                async move {
                    if forced {
                        println!("IN FLIGHT");
                        std::future::pending::<()>().await;
                    }
                    handled.set(handled.get() + 1);
                    println!("HANDLED {}", handled.get());
                    Ok(())
                }
            });
        app.serve().await
    });
    println!("SERVE {}", if served.is_ok() { "Ok" } else { "Err" });
    if let Err(e) = served {
        println!("{e}");
        std::process::exit(1);
    }
}
