//! What vecpar produced, as data: one type per report kind — a run
//! ([`RunReport`]), a sweep ([`sweep::SweepReport`]), the isolation
//! experiment ([`isolation::IsolationReport`]) — each feeding the terminal
//! table, the exports and the plots.
//!
//! Times are seconds (`f64`) everywhere in the data; only presentation
//! picks units. Bandwidth follows STREAM: bytes = arrays moved × len × size
//! (every array read plus the one written, no credit for write-allocate
//! traffic), GB = 10^9 bytes, the headline rate from the *best* (minimum)
//! time.
#![forbid(unsafe_code)]

pub mod isolation;
pub mod noise;
pub mod sweep;
pub mod topology;

use serde::{Deserialize, Serialize};

use crate::config::ConfigRecord;
use crate::fault::FaultRecord;
use crate::kernel::data::Mismatch;
use crate::kernel::{History, Op};
use crate::machine::{HostInfo, Throttling};
use crate::warnings::Warning;

pub use noise::Noise;

/// Version of the JSON layout; bumped when a key changes meaning or goes away.
pub const REPORT_FORMAT_VERSION: u32 = 4;

/// What every export starts with: what produced it, when, on which machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// [`REPORT_FORMAT_VERSION`].
    pub format_version: u32,
    /// "run", "sweep" or "isolation".
    pub kind: String,
    /// vecpar's version.
    pub vecpar_version: String,
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// The command line (arguments that are not UTF-8 shown lossily).
    pub arguments: Vec<String>,
    /// The machine.
    pub host: HostInfo,
}

impl Provenance {
    /// Provenance of a `kind` report started now, on `host`.
    pub fn new(kind: &str, arguments: Vec<String>, host: HostInfo) -> Provenance {
        Provenance {
            format_version: REPORT_FORMAT_VERSION,
            kind: kind.into(),
            vecpar_version: crate::VERSION.into(),
            started: crate::units::rfc3339_utc(std::time::SystemTime::now()),
            arguments,
            host,
        }
    }
}

/// One round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// Round number, counting from 0 over the warm-up and timed rounds of
    /// every kernel, in order.
    pub round: u32,
    /// From the round's release (the doorbell, or the barrier after the
    /// previous round) to the last worker's end.
    pub seconds: f64,
    /// STREAM bandwidth for this round, GB/s.
    pub gbps: f64,
    /// Each worker's compute time, by worker id (0 for idle workers).
    pub worker_seconds: Vec<f64>,
    /// How long after the release each worker started (its wake-up cost).
    pub worker_start_lag_s: Vec<f64>,
}

/// Statistics over a kernel's timed rounds.
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
    /// Interquartile range of the round times.
    pub iqr_s: f64,
}

impl Summary {
    /// Statistics of `rounds` moving `bytes_per_round`; `None` when empty.
    pub fn of(rounds: &[RoundRecord], bytes_per_round: u64) -> Option<Summary> {
        let times: Vec<f64> = rounds.iter().map(|r| r.seconds).collect();
        let s = crate::stats::Stats::of(&times)?;
        Some(Summary {
            rounds: times.len(),
            best_gbps: crate::units::gbps(bytes_per_round, s.min),
            median_gbps: crate::units::gbps(bytes_per_round, s.median),
            min_s: s.min,
            median_s: s.median,
            mean_s: s.mean,
            max_s: s.max,
            stddev_s: s.stddev,
            iqr_s: s.iqr(),
        })
    }
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
    /// All rounds, warm-up included, of every kernel.
    pub rounds_s: f64,
    /// Checking the arrays, after every kernel.
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
    /// Median compute time over the first kernel's timed rounds.
    pub median_compute_s: Option<f64>,
    /// Processes or threads that held this id (1 without faults).
    pub attempts: u32,
}

/// The check of the arrays after a kernel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// Elements checked in each of a, b, c.
    pub checked: u64,
    /// The first wrong element, if any.
    pub mismatch: Option<Mismatch>,
    /// The worker that owned it.
    pub mismatch_owner: Option<usize>,
    /// The MPI rank whose share it was (runs under mpirun).
    #[cfg(feature = "mpi")]
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mismatch_rank: Option<usize>,
    /// Digest of c (hex), equal across runs that produced the same c.
    pub c_digest: String,
    /// Digest of a (hex), when a kernel wrote it (nstream).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub a_digest: Option<String>,
    /// What the arrays had been through when they were checked: every
    /// kernel applied, with its rounds (warm-up included); the check
    /// replays it with the scalar oracle.
    pub history: History,
    /// Who checked them.
    pub checked_by: CheckedBy,
}

/// Who checked the arrays: never the code that computed them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CheckedBy {
    /// The coordinator, with threads of its own: another process, and
    /// another program, than every worker (procs mode).
    Coordinator {
        /// Its process id.
        pid: u32,
        /// The threads that checked.
        threads: usize,
    },
    /// Threads of the coordinator, the process the worker threads (or
    /// serial mode's one) belong to: there is no other process to ask.
    SameProcess {
        /// Its process id.
        pid: u32,
        /// The threads that checked.
        threads: usize,
    },
    /// MPI ranks sharing a window: each checked the chunk of the next rank
    /// on its node — except a rank alone on its node, which has no
    /// neighbour that maps its chunk and checked its own.
    NeighbourRank {
        /// How many ranks were alone on their node (and so checked their
        /// own chunk); 0 when no rank vouched for itself.
        #[serde(default)]
        alone: usize,
    },
}

impl std::fmt::Display for CheckedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckedBy::Coordinator { pid, threads } => {
                write!(
                    f,
                    "checked by the coordinator, pid {pid}, on {threads} thread{}",
                    crate::units::plural(*threads as u64)
                )
            }
            CheckedBy::SameProcess { pid, threads } => write!(
                f,
                "checked by {threads} thread{} of its own in the workers' process, pid {pid}",
                crate::units::plural(*threads as u64)
            ),
            CheckedBy::NeighbourRank { alone: 0 } => {
                f.write_str("each rank's chunk checked by the next rank on its node")
            }
            CheckedBy::NeighbourRank { alone } => write!(
                f,
                "each rank's chunk checked by the next rank on its node, but {alone} rank{} alone on a node checked \
                 its own: run two or more ranks per node (srun --ntasks-per-node=2, mpirun --map-by ppr:2:node) for \
                 a check by another process",
                crate::units::plural(*alone as u64)
            ),
        }
    }
}

/// A `dot`'s result against its compensated reference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DotResult {
    /// The sum vecpar computed.
    #[serde(with = "crate::kernel::data::any_float")]
    pub value: f64,
    /// The compensated reference (as if in twice f64's precision).
    #[serde(with = "crate::kernel::data::any_float")]
    pub reference: f64,
    /// |value − reference|.
    #[serde(with = "crate::kernel::data::any_float")]
    pub error: f64,
    /// The largest error reassociation can cause (see the README).
    #[serde(with = "crate::kernel::data::any_float")]
    pub bound: f64,
    /// Whether the error is within the bound.
    pub within_bound: bool,
}

/// One kernel of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelReport {
    /// The kernel.
    pub op: Op,
    /// Its formula.
    pub formula: String,
    /// STREAM-counted bytes per round.
    pub bytes_per_round: u64,
    /// Timed rounds.
    pub runs: Vec<RoundRecord>,
    /// Warm-up rounds.
    pub warmup: Vec<RoundRecord>,
    /// Statistics over `runs`.
    pub summary: Option<Summary>,
    /// How steady the rounds were.
    pub noise: Option<Noise>,
    /// The check after it ran, when it did.
    pub validation: Option<Validation>,
    /// For `dot`: the sum against its reference.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dot: Option<DotResult>,
}

impl KernelReport {
    /// Whether the kernel's check ran and found everything correct.
    pub fn validated(&self) -> bool {
        self.validation.as_ref().is_some_and(|v| v.mismatch.is_none())
            && self.dot.as_ref().is_none_or(|d| d.within_bound)
    }
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

/// Throttling by a cgroup CPU quota during the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottleRecord {
    /// Periods in which the group was throttled during the run.
    pub periods: u64,
    /// Time throttled during the run, microseconds.
    pub throttled_us: u64,
    /// The `cpu.stat` read.
    pub file: String,
}

impl ThrottleRecord {
    /// What the counters moved by between `before` and `after`.
    pub fn between(before: &Throttling, after: &Throttling) -> ThrottleRecord {
        ThrottleRecord {
            periods: after.nr_throttled.saturating_sub(before.nr_throttled),
            throttled_us: after.throttled_us.saturating_sub(before.throttled_us),
            file: after.file.display().to_string(),
        }
    }
}

/// Everything about one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "RunReportRepr", from = "RunReportRepr")]
pub struct RunReport {
    /// Version, time, command line, machine.
    pub about: Provenance,
    /// The coordinator's process id.
    pub coordinator_pid: u32,
    /// The configuration as run.
    pub config: ConfigRecord,
    /// One entry per kernel, in order.
    pub kernels: Vec<KernelReport>,
    /// Where the time went.
    pub phases: Phases,
    /// Per worker.
    pub workers: Vec<WorkerRecord>,
    /// Lost workers.
    pub faults: Vec<FaultRecord>,
    /// Replacements.
    pub retries: Vec<RetryRecord>,
    /// CPU throttling by a cgroup quota, when the run has one.
    pub throttling: Option<ThrottleRecord>,
    /// Things that make the numbers mislead.
    #[serde(with = "crate::warnings::listed")]
    pub warnings: Vec<Warning>,
    /// The exit code the run ends with.
    pub exit_code: u8,
    /// On a NUMA machine: where every worker's pages were, as the kernel
    /// says (null on one node).
    #[serde(default)]
    pub numa: Option<NumaRecord>,
    /// Under mpirun: the job's ranks and nodes, and each rank's share.
    #[cfg(feature = "mpi")]
    pub mpi: Option<MpiRecord>,
}

/// Where a run's pages were on a NUMA machine, asked of the kernel
/// (`move_pages`) by the coordinator after the arrays were filled and again
/// after the last round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NumaRecord {
    /// The machine's nodes (what `vecpar-coord topology` shows).
    pub topology: crate::machine::Topology,
    /// The node of the header and control block (the doorbell).
    pub control_node: Option<usize>,
    /// Every `sampled_every`-th page was asked about (1: every page).
    pub sampled_every: usize,
    /// Per worker, after the arrays were filled (null: not asked).
    pub after_init: Option<Vec<crate::machine::numa::WorkerPlacement>>,
    /// Per worker, after the last round (null: not asked).
    pub after_run: Option<Vec<crate::machine::numa::WorkerPlacement>>,
    /// The nodes each worker computed on (from the CPUs its rounds ended on).
    pub ran_on: Vec<Vec<usize>>,
    /// Whether automatic NUMA balancing was on.
    pub balancing: bool,
    /// `--mode ranks`: whose part of the node's MPI window the placement
    /// is, and which rank asked the kernel (`ran_on` is the part's owner's
    /// own, once rank 0 has gathered the job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_part: Option<WindowPart>,
}

/// Whose part of an MPI window a placement is, and who asked about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowPart {
    /// The rank that computes the part.
    pub rank: usize,
    /// The rank that asked the kernel where its pages are: the one that
    /// checks it (the rank itself only when it is alone on its node).
    pub surveyed_by: usize,
}

/// An MPI job: where its ranks ran and what each did.
#[cfg(feature = "mpi")]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MpiRecord {
    /// The MPI library, as it names itself.
    pub library: String,
    /// The launcher's variable that gave the job's size (`OMPI_COMM_WORLD_SIZE`, `PMI_SIZE`, …).
    pub launcher: String,
    /// Ranks in the job.
    pub ranks: usize,
    /// Nodes (shared-memory domains) they ran on.
    pub nodes: usize,
    /// Ranks on each node, by node.
    pub ranks_per_node: Vec<usize>,
    /// Each rank, in the order of the global array.
    pub per_rank: Vec<RankRecord>,
}

/// One rank of an MPI job.
#[cfg(feature = "mpi")]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankRecord {
    /// Its rank in `MPI_COMM_WORLD`.
    pub rank: usize,
    /// The host it ran on.
    pub host: String,
    /// Its node's number, and its rank on the node.
    pub node: usize,
    /// Its rank among the node's ranks.
    pub node_rank: usize,
    /// Its process id.
    pub pid: u32,
    /// Its share of the global arrays, `[start, end)`.
    pub start: u64,
    /// One past the end of its share.
    pub end: u64,
    /// The CPUs it used, in taskset's list form.
    pub cpus: String,
    /// Its median compute time per timed round of the first kernel (its
    /// slowest worker's), seconds.
    pub median_compute_s: Option<f64>,
    /// Where its time went.
    pub phases: Phases,
    /// Its workers.
    pub workers: Vec<WorkerRecord>,
    /// The workers it lost.
    pub faults: Vec<FaultRecord>,
    /// The workers it replaced.
    pub retries: Vec<RetryRecord>,
    /// The exit code it would have ended with on its own.
    pub exit_code: u8,
    /// Its warnings (in the report, those rank 0 did not have).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    #[serde(with = "crate::warnings::listed")]
    pub warnings: Vec<Warning>,
    /// Where its pages were (a NUMA machine).
    #[serde(default)]
    pub numa: Option<NumaRecord>,
}

impl RunReport {
    /// Whether every kernel ran and validated.
    pub fn validated(&self) -> bool {
        !self.kernels.is_empty() && self.kernels.iter().all(KernelReport::validated)
    }

    /// The first kernel (a single-kernel run's only one).
    pub fn first(&self) -> Option<&KernelReport> {
        self.kernels.first()
    }

    /// The first kernel whose check failed, with its mismatch.
    pub fn first_mismatch(&self) -> Option<(&KernelReport, &Validation)> {
        self.kernels.iter().find_map(|k| k.validation.as_ref().filter(|v| v.mismatch.is_some()).map(|v| (k, v)))
    }
}

/// The JSON layout of a run: the first kernel's `runs`, `warmup`,
/// `summary`, `noise` and `validation` at the top, as a single-kernel run
/// has always had them, and every kernel in `kernels`.
#[derive(Clone, Serialize, Deserialize)]
struct RunReportRepr {
    #[serde(flatten)]
    about: Provenance,
    coordinator_pid: u32,
    config: ConfigRecord,
    validated: bool,
    validation: Option<Validation>,
    runs: Vec<RoundRecord>,
    warmup: Vec<RoundRecord>,
    summary: Option<Summary>,
    noise: Option<noise::Noise>,
    kernels: Vec<KernelReport>,
    phases: Phases,
    workers: Vec<WorkerRecord>,
    faults: Vec<FaultRecord>,
    retries: Vec<RetryRecord>,
    throttling: Option<ThrottleRecord>,
    #[serde(with = "crate::warnings::listed")]
    warnings: Vec<Warning>,
    exit_code: u8,
    #[serde(default)]
    numa: Option<NumaRecord>,
    #[cfg(feature = "mpi")]
    #[serde(skip_serializing_if = "Option::is_none", default)]
    mpi: Option<MpiRecord>,
}

impl From<RunReport> for RunReportRepr {
    fn from(r: RunReport) -> Self {
        let validated = r.validated();
        let first = r.kernels.first().cloned();
        RunReportRepr {
            about: r.about,
            coordinator_pid: r.coordinator_pid,
            config: r.config,
            validated,
            validation: first.as_ref().and_then(|k| k.validation.clone()),
            runs: first.as_ref().map(|k| k.runs.clone()).unwrap_or_default(),
            warmup: first.as_ref().map(|k| k.warmup.clone()).unwrap_or_default(),
            noise: first.as_ref().and_then(|k| k.noise.clone()),
            summary: first.and_then(|k| k.summary),
            kernels: r.kernels,
            phases: r.phases,
            workers: r.workers,
            faults: r.faults,
            retries: r.retries,
            throttling: r.throttling,
            warnings: r.warnings,
            exit_code: r.exit_code,
            numa: r.numa,
            #[cfg(feature = "mpi")]
            mpi: r.mpi,
        }
    }
}

impl From<RunReportRepr> for RunReport {
    fn from(r: RunReportRepr) -> Self {
        RunReport {
            about: r.about,
            coordinator_pid: r.coordinator_pid,
            config: r.config,
            kernels: r.kernels,
            phases: r.phases,
            workers: r.workers,
            faults: r.faults,
            retries: r.retries,
            throttling: r.throttling,
            warnings: r.warnings,
            exit_code: r.exit_code,
            numa: r.numa,
            #[cfg(feature = "mpi")]
            mpi: r.mpi,
        }
    }
}
