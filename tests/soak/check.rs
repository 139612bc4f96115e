//! The soak's verdict: the guarantees checked against what was delivered and
//! what the processes reported, and the figures of the run.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::log::{Entry, Line};
use super::{Delivered, Run};

/// The longest a process may grow over its life: resident memory, and open
/// files (a leak of either grows with the messages or the restarts).
const RSS_GROWTH_KIB: u64 = 96 * 1024;
const FDS_GROWTH: usize = 16;
/// Samples of a process's first seconds are its start-up, not its level.
const WARM_UP: Duration = Duration::from_secs(20);

fn held_by_poison(poison: Option<(i32, i64)>, partition: i32, offset: i64) -> bool {
    poison.is_some_and(|(p, o)| p == partition && offset >= o)
}

/// The first handling of each message, and how many times each was handled.
fn handlings(journal: &[Line]) -> HashMap<(i32, i64), Vec<(usize, Instant)>> {
    let mut handled: HashMap<(i32, i64), Vec<(usize, Instant)>> = HashMap::new();
    for line in journal {
        if let Entry::Handled { partition, offset } = line.entry {
            handled
                .entry((partition, offset))
                .or_default()
                .push((line.worker, line.at));
        }
    }
    handled
}

/// The messages the producer reported delivered.
pub(crate) fn deliveries(journal: &[Line]) -> BTreeMap<(i32, i64), Delivered> {
    journal
        .iter()
        .filter_map(|l| match l.entry {
            Entry::Delivered {
                partition,
                offset,
                key,
            } => Some(((partition, offset), Delivered { key, at: l.at })),
            _ => None,
        })
        .collect()
}

/// Where the poison message went, once delivered.
pub(crate) fn poison(journal: &[Line]) -> Option<(i32, i64)> {
    journal.iter().find_map(|l| match l.entry {
        Entry::Poison { partition, offset } => Some((partition, offset)),
        _ => None,
    })
}

/// Delivered messages not handled yet (but those behind the poison).
pub(crate) fn unhandled(journal: &[Line]) -> usize {
    let handled = handlings(journal);
    let poison = poison(journal);
    deliveries(journal)
        .keys()
        .filter(|(p, o)| !held_by_poison(poison, *p, *o) && !handled.contains_key(&(*p, *o)))
        .count()
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index]
}

/// Checks every guarantee, prints the figures, and returns what broke.
pub(crate) fn report(run: &Run) -> Vec<String> {
    let mut broken = Vec::new();
    let handled = handlings(&run.journal);

    // 1. Every delivered message handled at least once; none behind the poison.
    let lost: Vec<&(i32, i64)> = run
        .delivered
        .keys()
        .filter(|(p, o)| !held_by_poison(run.poison, *p, *o) && !handled.contains_key(&(*p, *o)))
        .collect();
    if !lost.is_empty() {
        broken.push(format!(
            "{} delivered messages never handled, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        ));
    }
    let past_poison: Vec<_> = handled
        .keys()
        .filter(|(p, o)| held_by_poison(run.poison, *p, *o))
        .collect();
    if !past_poison.is_empty() {
        broken.push(format!(
            "handled at or past the poison message: {past_poison:?}"
        ));
    }

    // 2. Per key, first handlings in offset order.
    let first = |at: &(i32, i64)| {
        handled
            .get(at)
            .and_then(|h| h.iter().map(|(_, t)| *t).min())
    };
    let mut by_key: BTreeMap<u64, Vec<(i32, i64)>> = BTreeMap::new();
    for (at, d) in &run.delivered {
        by_key.entry(d.key).or_default().push(*at);
    }
    let mut out_of_order = 0;
    for messages in by_key.values() {
        for pair in messages.windows(2) {
            if let (Some(a), Some(b)) = (first(&pair[0]), first(&pair[1])) {
                if b < a {
                    out_of_order += 1;
                }
            }
        }
    }
    if out_of_order > 0 {
        broken.push(format!(
            "{out_of_order} messages first handled before an earlier message of their key"
        ));
    }

    // 3. Duplicates: only of messages their first handler had not committed.
    let mut committed_by: HashMap<(usize, i32), i64> = HashMap::new();
    for line in &run.journal {
        if let Entry::Committed { partition, offset } = line.entry {
            let best = committed_by
                .entry((line.worker, partition))
                .or_insert(offset);
            *best = (*best).max(offset);
        }
    }
    let killed: Vec<usize> = run
        .stops
        .iter()
        .filter(|s| s.signal == libc::SIGKILL)
        .map(|s| s.worker)
        .collect();
    let mut duplicates = 0usize;
    let mut of_killed = 0usize;
    let mut committed_then_redone = Vec::new();
    for (&(partition, offset), times) in &handled {
        if times.len() < 2 {
            continue;
        }
        duplicates += times.len() - 1;
        let (first_worker, _) = *times.iter().min_by_key(|(_, t)| *t).expect("two");
        if killed.contains(&first_worker) {
            of_killed += times.len() - 1;
        }
        if committed_by
            .get(&(first_worker, partition))
            .is_some_and(|c| *c > offset)
        {
            committed_then_redone.push((partition, offset));
        }
    }
    if !committed_then_redone.is_empty() {
        broken.push(format!(
            "{} messages handled again after their first handler's commit past them was confirmed, e.g. {:?}",
            committed_then_redone.len(),
            &committed_then_redone[..committed_then_redone.len().min(5)]
        ));
    }

    // 4. Exit statuses: 0 after SIGTERM, unless the process said what it left
    // uncommitted, and then that really was handled again.
    for stop in run.stops.iter().filter(|s| s.signal == libc::SIGTERM) {
        match stop.code {
            Some(0) => {}
            Some(2) => {
                let said = run.journal.iter().find_map(|l| match &l.entry {
                    Entry::Exit(e) if l.worker == stop.worker => Some(e.clone()),
                    _ => None,
                });
                let said = said.unwrap_or_default();
                for (partition, offset) in uncommitted_named(&said) {
                    let again = handled
                        .get(&(partition, offset - 1))
                        .is_some_and(|h| h.len() > 1);
                    if !again {
                        broken.push(format!(
                            "worker {} exited saying {partition} at {offset} was left uncommitted, \
                             but nobody handled offset {} again: {said}",
                            stop.worker,
                            offset - 1
                        ));
                    }
                }
                println!("  worker {} exited 2, truly: {said}", stop.worker);
            }
            other => broken.push(format!(
                "worker {} exited with {other:?} after SIGTERM",
                stop.worker
            )),
        }
    }

    // 5. Memory and open files flat over each process's life.
    let mut lives: BTreeMap<usize, Vec<(Instant, u64, usize)>> = BTreeMap::new();
    let first_seen: HashMap<usize, Instant> =
        run.journal.iter().fold(HashMap::new(), |mut m, l| {
            m.entry(l.worker).or_insert(l.at);
            m
        });
    for line in &run.journal {
        if let Entry::Usage { rss_kib, fds } = line.entry {
            lives
                .entry(line.worker)
                .or_default()
                .push((line.at, rss_kib, fds));
        }
    }
    let mut usage_lines = Vec::new();
    for (worker, samples) in lives {
        let born = first_seen.get(&worker).copied().unwrap_or(run.started);
        let warm: Vec<_> = samples
            .iter()
            .filter(|(at, _, _)| *at >= born + WARM_UP)
            .collect();
        let (Some(start), Some(end)) = (warm.first(), warm.last()) else {
            continue;
        };
        let name = if worker == super::PRODUCER_INDEX {
            "the producer".to_string()
        } else {
            format!("worker {worker}")
        };
        usage_lines.push(format!(
            "{name}: RSS {} -> {} MiB, fds {} -> {} over {:?}",
            start.1 / 1024,
            end.1 / 1024,
            start.2,
            end.2,
            end.0 - start.0
        ));
        if end.1 > start.1 + RSS_GROWTH_KIB || end.2 > start.2 + FDS_GROWTH {
            broken.push(format!("{name} grew: {}", usage_lines.last().unwrap()));
        }
    }

    if run.producer_exit != Some(0) {
        broken.push(format!(
            "the producer exited with {:?}, not 0 (its close left messages undelivered)",
            run.producer_exit
        ));
    }

    // 6. How long a message waited: from its delivery to its first handling.
    let mut waits: Vec<Duration> = run
        .delivered
        .iter()
        .filter(|((p, o), _)| !held_by_poison(run.poison, *p, *o))
        .filter_map(|(at, d)| first(at).map(|t| t.saturating_duration_since(d.at)))
        .collect();
    waits.sort_unstable();
    let bound = run.plan.session + Duration::from_secs(30);
    let longest = waits.last().copied().unwrap_or_default();
    if longest > bound {
        broken.push(format!(
            "a message waited {longest:?} to be handled, past the bound {bound:?} \
             (the session, for a killed member, plus catching up)"
        ));
    }

    // 7. Unowned after each rolling restart: from the signal until another
    // process handled each of the stopped one's partitions.
    let mut unowned: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for stop in run.stops.iter().filter(|s| s.rolling) {
        let mut worst = Duration::ZERO;
        for partition in &stop.partitions {
            let next = run.journal.iter().find_map(|l| match l.entry {
                Entry::Handled { partition: p, .. }
                    if p == *partition && l.worker != stop.worker && l.at > stop.at =>
                {
                    Some(l.at - stop.at)
                }
                _ => None,
            });
            // A partition held by the poison stays unhandled anywhere.
            if let Some(next) = next {
                worst = worst.max(next);
            }
        }
        let kind = if stop.signal == libc::SIGKILL {
            "SIGKILL"
        } else {
            "SIGTERM"
        };
        unowned.entry(kind).or_default().push(worst);
    }

    // The figures.
    let handled_once = handled.len();
    let (assigned, revoked) = run.journal.iter().fold((0, 0), |(a, r), l| match &l.entry {
        Entry::Assigned(ps) if !ps.is_empty() => (a + 1, r),
        Entry::Revoked(ps) if !ps.is_empty() => (a, r + 1),
        _ => (a, r),
    });
    let secs = run.load.as_secs_f64();
    println!("  --- soak figures ---");
    println!(
        "  {:?} of load; {} messages delivered ({:.0}/s held), {} handled ({:.0}/s)",
        run.load,
        run.delivered.len(),
        run.delivered.len() as f64 / secs,
        handled_once,
        handled_once as f64 / secs
    );
    println!(
        "  churn: {} broker kills, {} process restarts ({} SIGKILL), poison at {:?}",
        run.broker_kills,
        run.stops.iter().filter(|s| s.rolling).count(),
        killed.len(),
        run.poison
    );
    println!("  rebalance events seen by the processes: {assigned} assignments, {revoked} revokes");
    println!(
        "  duplicates: {duplicates} ({of_killed} first handled by a SIGKILLed process), \
         {} of them committed first (must be 0)",
        committed_then_redone.len()
    );
    println!(
        "  wait from the delivery report to the first handling (0 when the handler came first): \
         p50 {:?}, p99 {:?}, max {longest:?} (bound {bound:?})",
        percentile(&waits, 0.5),
        percentile(&waits, 0.99)
    );
    for (kind, mut times) in unowned {
        times.sort_unstable();
        println!(
            "  unowned after a {kind}: p50 {:?}, max {:?} over {} restarts {times:?}",
            percentile(&times, 0.5),
            times.last().copied().unwrap_or_default(),
            times.len()
        );
    }
    for line in usage_lines {
        println!("  {line}");
    }
    broken
}

/// The `(partition, offset)` pairs a close's error names: "topic/P at O".
fn uncommitted_named(error: &str) -> Vec<(i32, i64)> {
    let words: Vec<&str> = error
        .split(|c: char| {
            c.is_whitespace() || c == ',' || c == '(' || c == ')' || c == '[' || c == ']'
        })
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(3)
        .filter(|w| w[1] == "at")
        .filter_map(|w| {
            let partition = w[0].rsplit_once('/')?.1.parse().ok()?;
            Some((partition, w[2].parse().ok()?))
        })
        .collect()
}
