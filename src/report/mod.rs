//! What a run produced, as data: one [`RunReport`] feeds the terminal table,
//! the JSON, CSV and Markdown exports and the sweeps.
//!
//! Times are seconds (`f64`) everywhere in the data; only the human table
//! picks units. Bandwidth follows STREAM: bytes = arrays moved × len × size
//! (3 arrays for add and triad, 2 for copy and scale, no credit for
//! write-allocate traffic), GB = 10^9 bytes, the headline rate from the
//! *best* (minimum) time.
#![forbid(unsafe_code)]

pub mod export;
pub mod progress;
pub mod table;

use serde::{Deserialize, Serialize};

use crate::cpus::ProcsSource;
use crate::fault::FaultRecord;
use crate::kernel::{Dtype, Mismatch, Op, Simd, Stores};
use crate::sysinfo::Cache;

/// Version of the JSON layout; bumped when a key changes meaning or goes away.
pub const REPORT_FORMAT_VERSION: u32 = 1;

/// The configuration as run (after defaults and `auto` were resolved).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigEcho {
    /// procs, threads or serial.
    pub mode: crate::mode::Mode,
    /// Number of workers (1 in serial mode).
    pub procs: usize,
    /// Where that number came from.
    pub procs_source: ProcsSource,
    /// Elements per array.
    pub len: usize,
    /// The kernel.
    pub op: Op,
    /// Element type.
    pub dtype: Dtype,
    /// SIMD level used.
    pub simd: Simd,
    /// Store kind used.
    pub stores: Stores,
    /// Why that store kind.
    pub stores_reason: String,
    /// Shared-memory backend.
    pub shm: String,
    /// The segment's page size in bytes.
    pub page_bytes: usize,
    /// Which pages back the arrays, and why.
    pub pages: String,
    /// Round synchronisation.
    pub sync: String,
    /// Pin request.
    pub pin: String,
    /// Timed rounds.
    pub runs: u32,
    /// Warm-up rounds.
    pub warmup: u32,
    /// Data seed.
    pub seed: u64,
    /// Per-step timeout, seconds.
    pub timeout_s: f64,
    /// Fault policy.
    pub on_fault: String,
    /// Injected faults, as given.
    pub inject_faults: Vec<String>,
    /// STREAM-counted bytes moved per round.
    pub bytes_per_round: u64,
    /// Bytes of the three arrays.
    pub footprint_bytes: u64,
}

/// The machine the run happened on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Host name.
    pub hostname: String,
    /// CPU model.
    pub cpu_model: String,
    /// SIMD flags of the CPU.
    pub cpu_flags: Vec<String>,
    /// Kernel.
    pub kernel: String,
    /// Caches of CPU 0.
    pub caches: Vec<Cache>,
    /// CPUs this process may run on, taskset list form.
    pub allowed_cpus: String,
    /// Logical CPUs online.
    pub online_cpus: usize,
}

impl HostInfo {
    /// Reads this machine.
    pub fn collect(allowed: &[usize]) -> HostInfo {
        HostInfo {
            hostname: crate::sysinfo::hostname(),
            cpu_model: crate::sysinfo::cpu_model(),
            cpu_flags: crate::sysinfo::simd_flags(),
            kernel: crate::sysinfo::kernel(),
            caches: crate::sysinfo::caches(),
            allowed_cpus: crate::cpus::format_cpu_list(allowed),
            online_cpus: crate::sysinfo::read_small("/sys/devices/system/cpu/online")
                .and_then(|s| crate::cpus::parse_cpu_list(s.trim()).ok())
                .map_or(0, |l| l.len()),
        }
    }
}

/// What every export starts with: what produced it, on which machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// [`REPORT_FORMAT_VERSION`].
    pub format_version: u32,
    /// "run", "sweep" or "isolation".
    pub kind: String,
    /// vecpar's version.
    pub vecpar_version: String,
    /// The command line.
    pub arguments: Vec<String>,
    /// The machine.
    pub host: HostInfo,
}

impl Provenance {
    /// Provenance of a `kind` report made now, on this machine.
    pub fn new(kind: &str, arguments: Vec<String>) -> Provenance {
        Provenance {
            format_version: REPORT_FORMAT_VERSION,
            kind: kind.into(),
            vecpar_version: crate::VERSION.into(),
            arguments,
            host: HostInfo::collect(&crate::cpus::allowed_cpus()),
        }
    }
}

/// One round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// Round number, counting warm-up rounds from 0.
    pub round: u32,
    /// From the round's release (the doorbell, or the barrier after the
    /// previous round) to the last worker's end.
    pub seconds: f64,
    /// STREAM bandwidth for this round, GB/s.
    pub gbps: f64,
    /// Each worker's compute time, by worker id (0 for idle workers).
    pub worker_seconds: Vec<f64>,
    /// How long after the doorbell each worker started (its wake-up cost).
    pub worker_start_lag_s: Vec<f64>,
}

/// Statistics over the timed rounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Rounds counted.
    pub rounds: usize,
    /// Bandwidth from the best time (STREAM's headline).
    pub best_gbps: f64,
    /// Bandwidth from the median time.
    pub median_gbps: f64,
    /// Fastest round.
    pub min_s: f64,
    /// Median round.
    pub median_s: f64,
    /// Mean round.
    pub mean_s: f64,
    /// Slowest round.
    pub max_s: f64,
    /// Standard deviation of the round times.
    pub stddev_s: f64,
}

impl Summary {
    /// Statistics of `rounds`; `None` when there are none.
    pub fn of(rounds: &[RoundRecord], bytes_per_round: u64) -> Option<Summary> {
        let times: Vec<f64> = rounds.iter().map(|r| r.seconds).collect();
        let s = crate::stats::Stats::of(&times)?;
        Some(Summary {
            rounds: times.len(),
            best_gbps: gbps(bytes_per_round, s.min),
            median_gbps: gbps(bytes_per_round, s.median),
            min_s: s.min,
            median_s: s.median,
            mean_s: s.mean,
            max_s: s.max,
            stddev_s: s.stddev,
        })
    }
}

/// Bandwidth in GB/s (10^9 bytes) for `bytes` in `seconds`.
pub fn gbps(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 { bytes as f64 / seconds / 1e9 } else { f64::INFINITY }
}

/// Where the time went.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    /// Creating the segment.
    pub setup_s: f64,
    /// Spawning workers until every one is attached and ready.
    pub spawn_s: f64,
    /// Workers reserving, filling and first-touching their chunks.
    pub init_s: f64,
    /// All rounds, warm-up included.
    pub rounds_s: f64,
    /// Checking a, b and c.
    pub validate_s: f64,
    /// Shutting workers down and releasing the segment.
    pub teardown_s: f64,
    /// From the start of the run to the end of teardown.
    pub total_s: f64,
}

/// One worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// Worker id.
    pub id: usize,
    /// Process id (the coordinator's own in threads and serial modes).
    pub pid: u32,
    /// Kernel thread id (threads and serial modes).
    pub tid: Option<u32>,
    /// First element of its chunk.
    pub start: u64,
    /// One past its last element.
    pub end: u64,
    /// Whether it had no elements.
    pub idle: bool,
    /// The CPU it ran on in the last round.
    pub cpu: Option<u32>,
    /// Every CPU it was seen on.
    pub cpus_seen: Vec<u32>,
    /// Whether it was pinned.
    pub pinned: bool,
    /// The CPU it was asked to be pinned to.
    pub pin_cpu: Option<usize>,
    /// The kernel's refusal, when pinning failed (the worker ran unpinned).
    pub pin_refused: Option<String>,
    /// Median compute time over the timed rounds.
    pub median_compute_s: Option<f64>,
    /// Processes or threads that held this id (1 without faults).
    pub attempts: u32,
}

/// The result check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// Elements checked in each of a, b, c.
    pub checked: u64,
    /// The first wrong element, if any.
    pub mismatch: Option<Mismatch>,
    /// The worker that owned it.
    pub mismatch_owner: Option<usize>,
    /// Digest of c (hex), equal across runs that produced the same c.
    pub c_digest: String,
}

/// A worker replaced under `--on-fault retry`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryRecord {
    /// Worker id.
    pub worker: usize,
    /// The new attempt number.
    pub attempt: u32,
    /// Its chunk.
    pub range: [u64; 2],
    /// Why.
    pub reason: String,
    /// What was repeated: "round 3", "init", …
    pub repeated: String,
    /// The new process id (the coordinator's in threads mode).
    pub new_pid: u32,
    /// Seconds from the fault's detection until the step completed again.
    pub cost_s: f64,
}

/// Everything about one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Version, command line, machine.
    #[serde(flatten)]
    pub about: Provenance,
    /// The coordinator's process id.
    pub coordinator_pid: u32,
    /// The configuration as run.
    pub config: ConfigEcho,
    /// Whether every element of a, b and c was checked and correct.
    pub validated: bool,
    /// The check, when it ran.
    pub validation: Option<Validation>,
    /// Timed rounds.
    pub runs: Vec<RoundRecord>,
    /// Warm-up rounds.
    pub warmup: Vec<RoundRecord>,
    /// Statistics over `runs`.
    pub summary: Option<Summary>,
    /// Where the time went.
    pub phases: Phases,
    /// Per worker.
    pub workers: Vec<WorkerRecord>,
    /// Lost workers.
    pub faults: Vec<FaultRecord>,
    /// Replacements.
    pub retries: Vec<RetryRecord>,
    /// Things that make the numbers mislead.
    pub warnings: Vec<String>,
    /// The exit code the run ends with.
    pub exit_code: u8,
}
