//! What the soak hears: every worker's lines, timed as they arrive, and the
//! soak's own events (signals, broker kills), in one journal.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One entry of the journal.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    Handled {
        partition: i32,
        offset: i64,
    },
    Committed {
        partition: i32,
        offset: i64,
    },
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
    Usage {
        rss_kib: u64,
        fds: usize,
    },
    Exit(String),
    Delivered {
        partition: i32,
        offset: i64,
        key: u64,
    },
    Poison {
        partition: i32,
        offset: i64,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) worker: usize,
    pub(crate) at: Instant,
    pub(crate) entry: Entry,
}

pub(crate) type Journal = Arc<Mutex<Vec<Line>>>;

fn parse(line: &str) -> Option<Entry> {
    let (tag, rest) = line.split_once(' ')?;
    let numbers = || -> Option<(i64, i64)> {
        let (a, b) = rest.split_once(' ')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    let list = || -> Vec<i32> { rest.split(',').filter_map(|p| p.parse().ok()).collect() };
    Some(match tag {
        "H" => numbers().map(|(p, o)| Entry::Handled {
            partition: p as i32,
            offset: o,
        })?,
        "C" => numbers().map(|(p, o)| Entry::Committed {
            partition: p as i32,
            offset: o,
        })?,
        "A" => Entry::Assigned(list()),
        "R" => Entry::Revoked(list()),
        "M" => numbers().map(|(rss, fds)| Entry::Usage {
            rss_kib: rss as u64,
            fds: fds as usize,
        })?,
        "EXIT" => Entry::Exit(rest.to_string()),
        "P" => numbers().map(|(p, o)| Entry::Poison {
            partition: p as i32,
            offset: o,
        })?,
        "D" => {
            let mut words = rest.split(' ').map(str::parse::<i64>);
            let (Some(Ok(p)), Some(Ok(o)), Some(Ok(k))) =
                (words.next(), words.next(), words.next())
            else {
                return None;
            };
            Entry::Delivered {
                partition: p as i32,
                offset: o,
                key: k as u64,
            }
        }
        _ => return None,
    })
}

/// A worker process: this binary again, with the worker's config.
pub(crate) struct Worker {
    pub(crate) index: usize,
    child: Child,
}

impl Worker {
    /// A consumer worker.
    pub(crate) fn start(index: usize, config: &std::path::Path, journal: &Journal) -> Self {
        Self::spawn(index, &[(super::WORKER, config.to_str().unwrap())], journal)
    }

    /// The process with `env` set (which says what it is), its lines journaled.
    pub(crate) fn spawn(index: usize, env: &[(&str, &str)], journal: &Journal) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("worker process starts");
        let stdout = child.stdout.take().expect("piped");
        let journal = Arc::clone(journal);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(entry) = parse(&line) {
                    journal.lock().unwrap().push(Line {
                        worker: index,
                        at: Instant::now(),
                        entry,
                    });
                }
            }
        });
        Worker { index, child }
    }

    /// Waits for the process to end by itself: its exit status's code.
    pub(crate) fn wait(mut self) -> Option<i32> {
        self.child.wait().expect("the process is waited for").code()
    }

    /// Sends `signal` and waits for the exit: the exit status's code, or
    /// `None` when a signal ended it.
    pub(crate) fn stop(mut self, signal: libc::c_int) -> Option<i32> {
        // SAFETY: kill(2) on our own child's pid; no memory is shared.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        let status = self.child.wait().expect("the worker is waited for");
        status.code()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
