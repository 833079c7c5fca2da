//! Warnings: when a number would mislead, and what to try instead.
//!
//! Each warning is a value (hyperfine's `output/warnings.rs` is the model),
//! rendered in one place and naming the flag that helps. They go to stderr
//! before the table, and into the JSON `warnings` list as the same text
//! (`message`) beside the value itself (`kind` and its fields), which is
//! what a program reading the JSON matches on.
#![forbid(unsafe_code)]

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::units::{human_bytes, human_time, plural};

/// Something that makes the numbers mislead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Warning {
    /// More workers than CPUs for them to run on.
    Oversubscribed {
        /// Workers.
        workers: usize,
        /// CPUs they can each have (the affinity mask, lowered by a quota).
        cpus: usize,
        /// The cgroup CPU quota, if it is what limits them.
        quota: Option<f64>,
    },
    /// Several workers pinned to one CPU.
    SharedCpu {
        /// The CPU.
        cpu: usize,
        /// The workers pinned to it.
        workers: Vec<usize>,
    },
    /// The arrays fit in the last-level cache.
    FitsInCache {
        /// Bytes of a, b and c.
        footprint: u64,
        /// Bytes of the cache.
        llc: u64,
        /// A length that measures memory instead.
        suggest_len: String,
    },
    /// The arrays do not fit in the last-level cache, but each is smaller
    /// than STREAM's rule (4 × the cache): part of every round hits it.
    PartlyCached {
        /// Bytes of one array.
        array: u64,
        /// Bytes of the cache.
        llc: u64,
        /// A length that follows the rule.
        suggest_len: String,
    },
    /// Rounds shorter than the clock and the synchronisation can time well.
    TooShort {
        /// The kernels whose rounds were too short.
        ops: Vec<String>,
        /// The fastest round among them, seconds.
        fastest_s: f64,
    },
    /// Rounds that stand far apart from the others.
    Outliers {
        /// The kernel.
        op: String,
        /// How many.
        outliers: usize,
        /// Of how many rounds.
        rounds: usize,
        /// The interquartile range, percent of the median.
        iqr_pct: f64,
    },
    /// Rounds spread wide although none stands out.
    Scattered {
        /// The kernel.
        op: String,
        /// The interquartile range, percent of the median.
        iqr_pct: f64,
    },
    /// One timed round: nothing to judge its steadiness by (a note).
    OneRound {
        /// The kernel.
        op: String,
    },
    /// A pin the kernel refused.
    PinRefused {
        /// The worker.
        worker: usize,
        /// The CPU asked for.
        cpu: usize,
        /// The kernel's answer.
        error: String,
    },
    /// The hugetlb pool ran out between planning and reserving.
    HugePagesRanOut,
    /// Named segments of dead runs were removed from /dev/shm.
    StaleSegmentsRemoved {
        /// Their names.
        names: Vec<String>,
    },
    /// The cgroup's CPU quota throttled the run.
    Throttled {
        /// The run's workers (one cannot be fewer).
        #[serde(default)]
        workers: usize,
        /// Periods throttled during the run.
        periods: u64,
        /// Time throttled, microseconds.
        throttled_us: u64,
        /// The `cpu.stat` read.
        file: String,
    },
    /// A sweep grid named a value twice.
    Repeated {
        /// The flag.
        flag: String,
        /// The value.
        value: String,
    },
    /// Sweep points whose arrays fit in the last-level cache (a note: a
    /// sweep over lengths means to cross the caches).
    SweepInCache {
        /// The lengths, as the sweep names them.
        lens: Vec<String>,
        /// Bytes of the cache.
        llc: u64,
    },
    /// Sweep points whose runs the cgroup CPU quota throttled.
    SweepThrottled {
        /// The points, as the progress bar names them.
        points: Vec<String>,
        /// The quota, in CPUs.
        quota: Option<f64>,
    },
    /// Sweep runs whose rounds were noisy or too short.
    NoisyRuns {
        /// Runs with outlier rounds.
        noisy: usize,
        /// Runs whose fastest round was too short to time well.
        short: usize,
        /// Runs whose rounds were scattered (a wide interquartile range).
        #[serde(default)]
        scattered: usize,
        /// Runs in all.
        runs: usize,
    },
    /// MPI ranks on one node were given the same CPUs, and divided them
    /// (a note).
    RanksShareCpus {
        /// Ranks on the node.
        ranks: usize,
        /// This rank's share, in taskset's list form.
        share: String,
    },
    /// vecpar was started under a memory policy of its own (numactl) and
    /// keeps it (a note).
    InheritedMemPolicy {
        /// The policy's mode (interleave, bind, preferred).
        policy: String,
    },
    /// The kernel moves pages between nodes while the run measures.
    NumaBalancing,
    /// Workers' pages are not on the node the policy meant.
    PolicyNotHonoured {
        /// The workers, each with its node and the share of its pages there.
        workers: Vec<(usize, usize, f64)>,
        /// After what: the arrays' filling, or the last round.
        when: String,
        /// `--mode ranks`: the ids are MPI ranks, each with its part of the
        /// node's window.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        ranks: bool,
    },
    /// Workers computed on another node than their pages'.
    RanOffNode {
        /// The workers, each with its pages' node and the nodes it ran on.
        workers: Vec<(usize, usize, Vec<usize>)>,
        /// `--mode ranks`: the ids are MPI ranks.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        ranks: bool,
    },
    /// Pages moved between nodes during the rounds.
    PagesMigrated {
        /// Pages that were on another node after the last round than
        /// after the filling.
        pages: u64,
        /// `--mode ranks`: the rank whose part of the window they are in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        part_of: Option<usize>,
    },
    /// Placement could not be bound or checked here (a note).
    PlacementUnknown {
        /// Why.
        why: String,
    },
    /// Another MPI rank's warning, which rank 0 did not have itself.
    OfRank {
        /// The rank.
        rank: usize,
        /// Its warning.
        warning: Box<Warning>,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Oversubscribed { workers, cpus, quota } => {
                write!(f, "{workers} workers on {cpus} CPU{}", plural(*cpus as u64))?;
                if let Some(q) = quota {
                    write!(f, " (a cgroup CPU quota of {q:.2} CPUs)")?;
                } else {
                    f.write_str(" allowed")?;
                }
                f.write_str(": workers take turns, so each round waits for time slices; lower --procs to compare cores")
            }
            Warning::SharedCpu { cpu, workers } => {
                let ids: Vec<String> = workers.iter().map(|w| w.to_string()).collect();
                write!(
                    f,
                    "workers {} are pinned to the same CPU {cpu}: they take turns on it; give --pin one CPU per worker \
                     or --pin none",
                    ids.join(", ")
                )
            }
            Warning::FitsInCache { footprint, llc, suggest_len } => write!(
                f,
                "the arrays ({}) fit in the {} last-level cache: this measures cache bandwidth, not memory; for \
                 memory bandwidth use --len {suggest_len} or more",
                human_bytes(*footprint),
                human_bytes(*llc)
            ),
            Warning::PartlyCached { array, llc, suggest_len } => write!(
                f,
                "each array ({}) is less than 4 × the {} last-level cache (STREAM's rule): part of every round is \
                 served from the cache, so the rate is between cache and memory; use --len {suggest_len} or more",
                human_bytes(*array),
                human_bytes(*llc)
            ),
            Warning::TooShort { ops, fastest_s } => write!(
                f,
                "{}: the fastest round took {}, too short to time well; use a larger --len",
                ops.join(", "),
                human_time(*fastest_s)
            ),
            Warning::Outliers { op, outliers, rounds, iqr_pct } => write!(
                f,
                "{op}: {outliers} of {rounds} rounds were outliers (interquartile range {iqr_pct:.1}% of the median): \
                 something else ran on this machine; trust the median, or use more --runs, a --warmup, sweep \
                 --repeat, a longer --len or a quieter machine"
            ),
            Warning::Scattered { op, iqr_pct } => write!(
                f,
                "{op}: the rounds are scattered (interquartile range {iqr_pct:.1}% of the median) though none stands \
                 out: the machine was busy throughout, or something varies from round to round; use more --runs, \
                 sweep --repeat, pinning (--pin), a longer --len or a quieter machine, and read the median with care"
            ),
            Warning::OneRound { op } => {
                write!(f, "{op}: one timed round, so there is no spread to judge it by; --runs 5 or more gives one")
            }
            Warning::PinRefused { worker, cpu, error } => {
                write!(f, "worker {worker}: pinning to CPU {cpu} was refused ({error}); it ran unpinned")
            }
            Warning::HugePagesRanOut => {
                f.write_str("the hugetlb pool ran out while reserving; the run uses base pages (--huge-pages never)")
            }
            Warning::StaleSegmentsRemoved { names } => write!(
                f,
                "removed {} stale segment{} left in /dev/shm by dead runs of this user: {}",
                names.len(),
                plural(names.len() as u64),
                names.join(", ")
            ),
            Warning::Throttled { workers, periods, throttled_us, file } => write!(
                f,
                "the cgroup CPU quota throttled this run in {periods} period{} ({} in all, {file}): the numbers \
                 measure the quota, not the machine; {}",
                plural(*periods),
                human_time(*throttled_us as f64 * 1e-6),
                if *workers > 1 {
                    "lower --procs to fit the quota"
                } else {
                    "one worker cannot be fewer: raise the quota (cpu.max or cpu.cfs_quota_us of that cgroup)"
                }
            ),
            Warning::Repeated { flag, value } => write!(f, "{flag} names {value} more than once; it runs once"),
            Warning::SweepInCache { lens, llc } => write!(
                f,
                "at --len {} each array is less than 4 × the {} last-level cache (STREAM's rule): those points \
                 measure the cache, wholly or in part, not memory",
                lens.join(","),
                human_bytes(*llc)
            ),
            Warning::SweepThrottled { points, quota } => write!(
                f,
                "the cgroup CPU quota{} throttled {} point{}: {}; they are marked \"throttled\" in the table and \
                 ringed in the plot: their numbers measure the quota, not the machine",
                quota.map_or(String::new(), |q| format!(" ({q:.2} CPUs)")),
                points.len(),
                plural(points.len() as u64),
                points.join("; ")
            ),
            Warning::NoisyRuns { noisy, short, scattered, runs } => {
                let mut parts = Vec::new();
                if *noisy > 0 {
                    parts.push(format!(
                        "{noisy} of {runs} runs had outlier rounds (something else ran on this machine)"
                    ));
                }
                if *short > 0 {
                    parts.push(format!("{short} of {runs} runs had rounds too short to time well"));
                }
                if *scattered > 0 {
                    parts.push(format!("{scattered} of {runs} runs had scattered rounds"));
                }
                write!(
                    f,
                    "{} (marked in the table, ringed in the plot): trust the medians, or use sweep --repeat, more \
                     --runs, a longer --len or a quieter machine",
                    parts.join("; ")
                )
            }
            Warning::RanksShareCpus { ranks, share } => write!(
                f,
                "the {ranks} ranks on this node may all use the same CPUs, so each takes its share for its workers and \
                 pins (this rank: CPUs {share}); bind ranks apart with mpirun --map-by/--bind-to to choose otherwise"
            ),
            Warning::InheritedMemPolicy { policy } => write!(
                f,
                "vecpar was started under a memory policy of its own ({policy}; numactl?), so it keeps it (--mem-policy inherit); \
                 --mem-policy local, interleave or node:N places the pages itself"
            ),
            Warning::NumaBalancing => f.write_str(
                "automatic NUMA balancing is on (/proc/sys/kernel/numa_balancing): the kernel moves pages while the \
                 run measures; turn it off (sysctl kernel.numa_balancing=0) for placement you choose",
            ),
            Warning::PolicyNotHonoured { workers, when, ranks } => {
                let parts: Vec<String> = workers
                    .iter()
                    .map(|(w, node, share)| {
                        let who = if *ranks { format!("rank {w}'s part of the window") } else { format!("worker {w}") };
                        format!("{who}: {:.0}% on node {node}", share * 100.0)
                    })
                    .collect();
                write!(
                    f,
                    "pages are not where the memory policy put them {when} ({}): a node may have run out of free \
                     memory, or pages migrated",
                    parts.join(", ")
                )
            }
            Warning::RanOffNode { workers, ranks } => {
                let parts: Vec<String> = workers
                    .iter()
                    .map(|(w, node, ran)| {
                        let ran: Vec<String> = ran.iter().map(|n| n.to_string()).collect();
                        let who = if *ranks { "rank" } else { "worker" };
                        format!("{who} {w} (pages on node {node}) ran on node {}", ran.join(", "))
                    })
                    .collect();
                let fix =
                    if *ranks { "pin ranks (no --pin none; mpirun --bind-to core)" } else { "pin workers (--pin)" };
                write!(f, "{}: its memory was remote for those rounds; {fix} to keep them", parts.join("; "))
            }
            Warning::PagesMigrated { pages, part_of } => write!(
                f,
                "{pages} page{}{} moved to another NUMA node during the rounds (automatic NUMA balancing, or memory \
                 pressure): the rates mix local and remote access",
                plural(*pages),
                part_of.map_or(String::new(), |r| format!(" of rank {r}'s part of the window"))
            ),
            Warning::PlacementUnknown { why } => write!(f, "NUMA placement unknown: {why}"),
            Warning::OfRank { rank, warning } => write!(f, "rank {rank}: {warning}"),
        }
    }
}

impl Warning {
    /// Whether this is a note (worth knowing, not a reason to doubt the
    /// numbers): shown as `note:`, and what was removed from /dev/shm is
    /// shown even under `--quiet`.
    pub fn is_note(&self) -> bool {
        match self {
            Warning::OfRank { warning, .. } => warning.is_note(),
            w => matches!(
                w,
                Warning::StaleSegmentsRemoved { .. }
                    | Warning::OneRound { .. }
                    | Warning::InheritedMemPolicy { .. }
                    | Warning::PlacementUnknown { .. }
                    | Warning::Repeated { .. }
                    | Warning::SweepInCache { .. }
                    | Warning::RanksShareCpus { .. }
            ),
        }
    }

    /// Whether `--quiet` still shows it.
    pub fn shown_when_quiet(&self) -> bool {
        match self {
            Warning::OfRank { warning, .. } => warning.shown_when_quiet(),
            w => matches!(w, Warning::StaleSegmentsRemoved { .. }),
        }
    }
}

/// A report's list of warnings in JSON: each warning's value (`kind` and
/// its fields) with its text (`message`). Use with `#[serde(with)]`.
pub(crate) mod listed {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Warning;

    #[derive(Serialize, Deserialize)]
    struct Entry {
        message: String,
        #[serde(flatten)]
        warning: Warning,
    }

    #[derive(Serialize)]
    struct EntryRef<'w> {
        message: String,
        #[serde(flatten)]
        warning: &'w Warning,
    }

    pub(crate) fn serialize<S: Serializer>(warnings: &[Warning], s: S) -> Result<S::Ok, S::Error> {
        let entries: Vec<EntryRef<'_>> =
            warnings.iter().map(|w| EntryRef { message: w.to_string(), warning: w }).collect();
        entries.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Warning>, D::Error> {
        Ok(Vec::<Entry>::deserialize(d)?.into_iter().map(|e| e.warning).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_name_what_to_try() {
        let w = Warning::Oversubscribed { workers: 8, cpus: 2, quota: None };
        assert!(w.to_string().starts_with("8 workers on 2 CPUs allowed") && w.to_string().contains("--procs"));
        assert!(Warning::SharedCpu { cpu: 1, workers: vec![0, 1] }.to_string().contains("same CPU 1"));
        let throttled = |workers| Warning::Throttled { workers, periods: 3, throttled_us: 10, file: "cpu.stat".into() };
        assert!(throttled(2).to_string().contains("lower --procs"));
        let one = throttled(1).to_string();
        assert!(!one.contains("lower --procs") && one.contains("raise the quota"), "one worker cannot be fewer: {one}");
    }

    #[test]
    fn placement_warnings_name_workers_or_ranks() {
        let when = "after the last round".to_string();
        let w = Warning::PolicyNotHonoured { workers: vec![(1, 0, 0.5)], when: when.clone(), ranks: false };
        assert!(w.to_string().contains("(worker 1: 50% on node 0)"), "{w}");
        let r = Warning::PolicyNotHonoured { workers: vec![(3, 1, 0.25)], when, ranks: true };
        assert!(r.to_string().contains("(rank 3's part of the window: 25% on node 1)"), "{r}");
        let json = serde_json::to_value(&w).unwrap();
        assert!(json.get("ranks").is_none(), "workers, as before: {json}");
        let off = Warning::RanOffNode { workers: vec![(2, 0, vec![1])], ranks: true }.to_string();
        assert!(off.starts_with("rank 2 (pages on node 0) ran on node 1") && off.contains("no --pin none"), "{off}");
        let off = Warning::RanOffNode { workers: vec![(2, 0, vec![1])], ranks: false }.to_string();
        assert!(off.starts_with("worker 2 (pages") && off.contains("--pin"), "{off}");
    }

    #[test]
    fn warnings_travel_as_values_with_their_text() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Holder {
            #[serde(with = "listed")]
            warnings: Vec<Warning>,
        }
        let inner = Warning::Oversubscribed { workers: 8, cpus: 2, quota: Some(1.5) };
        let all = vec![
            inner.clone(),
            Warning::OfRank { rank: 3, warning: Box::new(inner.clone()) },
            Warning::HugePagesRanOut,
            Warning::TooShort { ops: vec!["add".into()], fastest_s: 1e-6 },
        ];
        let json = serde_json::to_value(Holder { warnings: all.clone() }).unwrap();
        assert_eq!(json["warnings"][0]["kind"], "oversubscribed");
        assert_eq!(json["warnings"][0]["message"], inner.to_string());
        assert_eq!(json["warnings"][1]["warning"]["kind"], "oversubscribed");
        assert!(json["warnings"][1]["message"].as_str().unwrap().starts_with("rank 3: 8 workers"));
        let back: Holder = serde_json::from_value(json).unwrap();
        assert_eq!(back.warnings, all);
    }
}
