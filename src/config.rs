//! From the command line to runs that can work: defaults resolved, `auto`
//! decided, every value checked against the machine's facts — in one stage,
//! before anything is allocated, spawned or written (ripgrep's `LowArgs` →
//! `HiArgs`: [`crate::cli`] parses, this module decides).
//!
//! [`RunConfig`] is the resolved configuration of one run: it is what the
//! report echoes (`config` in the JSON) and what a sweep varies.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cli::{IsolationArgs, MAX_REPEAT, MAX_ROUNDS, MAX_WORKERS, RunArgs, SweepArgs};
use crate::error::Error;
use crate::fault::{FaultKind, FaultSpec, OnFault};
use crate::kernel::{Dtype, Op, Simd, Stores};
use crate::machine::cpus::{format_cpu_list, pin_plan};
use crate::machine::numa::{Binding, MemPolicy};
use crate::machine::{Machine, PinSpec};
use crate::partition::Partition;
use crate::shm::Layout;
use crate::units::human_bytes;
use crate::vocab::{Backend, HugePages, Mode, RoundSync};
use crate::warnings::Warning;

/// The least time a starting worker is given to say hello and be ready,
/// whatever `--timeout` says (see [`RunConfig::start_up_patience`]).
pub const START_UP_FLOOR: Duration = Duration::from_secs(30);

/// How long a waiter spins before sleeping, where spinning steals no CPU.
pub const SPIN: Duration = Duration::from_millis(2);

/// The kernels of a run, in order. In JSON: `op`, the name (or the
/// comma-separated names), and `ops`, the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ops(pub Vec<Op>);

#[derive(Serialize, Deserialize)]
struct OpsRepr {
    op: String,
    ops: Vec<Op>,
}

impl Serialize for Ops {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        OpsRepr { op: crate::cli::OpList(self.0.clone()).to_string(), ops: self.0.clone() }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Ops {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Ops, D::Error> {
        Ok(Ops(OpsRepr::deserialize(d)?.ops))
    }
}

/// Where the number of workers came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProcsSource {
    /// Given with `--procs`.
    Flag,
    /// Serial mode: one thread.
    Serial,
    /// `--mode ranks`: each MPI rank computes its own chunk.
    #[cfg(feature = "mpi")]
    Rank,
    /// Given by `--pin M0:2,M1:2` (workers per NUMA node).
    Pin {
        /// The pin spec.
        pin: String,
    },
    /// The CPUs in the affinity mask.
    AffinityMask {
        /// The allowed CPUs, in taskset's list form.
        cpus: String,
        /// What narrowed them, if anything did.
        #[serde(default)]
        set_by: crate::machine::CpusSetBy,
    },
    /// A cgroup CPU quota lower than the affinity mask.
    CgroupQuota {
        /// The quota in CPUs.
        cpus: f64,
        /// The file it was read from.
        file: String,
    },
}

impl std::fmt::Display for ProcsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProcsSource::Flag => f.write_str("from --procs"),
            ProcsSource::Pin { pin } => write!(f, "from --pin {pin}"),
            ProcsSource::Serial => f.write_str("serial mode"),
            #[cfg(feature = "mpi")]
            ProcsSource::Rank => f.write_str("the rank itself"),
            ProcsSource::AffinityMask { cpus, set_by: crate::machine::CpusSetBy::Nothing } => {
                write!(f, "the CPUs this process may use: {cpus}")
            }
            ProcsSource::AffinityMask { cpus, set_by } => {
                write!(f, "the CPUs this process may use: {cpus}, from {set_by}")
            }
            ProcsSource::CgroupQuota { cpus, file } => write!(f, "cgroup CPU quota of {cpus:.2} CPUs ({file})"),
        }
    }
}

/// Where workers run and how they wait.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// The CPU each worker is pinned to (`null`: not pinned).
    pub pin_plan: Vec<Option<usize>>,
    /// How long a worker spins on the doorbell before sleeping (zero when
    /// workers share CPUs: a spinner would steal its neighbour's time).
    #[serde(rename = "worker_spin_us", with = "micros")]
    pub worker_spin: Duration,
    /// How long the coordinator spins for reports before sleeping.
    #[serde(rename = "coordinator_spin_us", with = "micros")]
    pub coordinator_spin: Duration,
}

/// Where the arrays' pages go (`--mem-policy`), as resolved for this
/// machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// The policy applied.
    pub policy: MemPolicy,
    /// Why that one, and what it means here.
    pub reason: String,
    /// The node each worker's chunks are meant for (local with a pin,
    /// node:N; `null`: none, or an unpinned worker's, known once it ran).
    pub intended: Vec<Option<usize>>,
    /// The nodes this process may allocate on.
    pub nodes: Vec<usize>,
    /// Whether there is more than one node (else nothing is bound).
    pub numa: bool,
}

impl Memory {
    /// What worker `id` binds its chunks to.
    pub(crate) fn binding(&self, id: usize) -> Binding {
        if !self.numa {
            return Binding::Inherit;
        }
        match self.policy {
            MemPolicy::Inherit => Binding::Inherit,
            MemPolicy::Interleave => Binding::Interleave { nodes: self.nodes.iter().map(|&n| n as u32).collect() },
            MemPolicy::Node(n) => Binding::Local { node: Some(n as u32) },
            MemPolicy::Local => Binding::Local { node: self.intended.get(id).copied().flatten().map(|n| n as u32) },
        }
    }

    /// What the header and control block bind to: the coordinator's own
    /// node under `local` (it rings the doorbell), else the arrays' policy.
    pub(crate) fn control_binding(&self) -> Binding {
        match self.policy {
            MemPolicy::Local if self.numa => Binding::Local { node: None },
            _ => self.binding(usize::MAX),
        }
    }
}

/// A duration as whole microseconds.
mod micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros() as u64)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_micros(u64::deserialize(d)?))
    }
}

/// A run, fully resolved and checked against the machine: the only way to
/// make one is [`RunConfig::resolve`] (or the [`RunBuilder`] that calls it),
/// so a `RunConfig` always describes a run that can work. Its fields are
/// private; what a report shows of it is a [`ConfigRecord`].
#[derive(Clone, Debug, PartialEq)]
pub struct RunConfig {
    mode: Mode,
    procs: usize,
    procs_source: ProcsSource,
    len: usize,
    /// Where this run's arrays begin in the global array (an MPI rank's
    /// share of `--len`), and that array's length.
    share: Share,
    ops: Vec<Op>,
    dtype: Dtype,
    simd: Simd,
    simd_reason: String,
    stores: Stores,
    stores_auto: bool,
    stores_reason: String,
    shm: Backend,
    page_bytes: usize,
    pages: HugePages,
    pages_reason: String,
    sync: RoundSync,
    pin: PinSpec,
    runs: u32,
    warmup: u32,
    seed: u64,
    timeout_s: f64,
    on_fault: OnFault,
    faults: Vec<FaultSpec>,
    placement: Placement,
    memory: Memory,
    worker_bin: Option<PathBuf>,
    check_threads: usize,
    warnings: Vec<Warning>,
}

/// A run's part of a longer global array (an MPI rank's share).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Share {
    /// The global index of the run's element 0.
    pub(crate) base: u64,
    /// Elements per array over every share.
    pub(crate) global_len: u64,
}

/// What a report says of the configuration it ran: a plain record (`config`
/// in the JSON), read back from JSON as it was written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigRecord {
    /// Execution mode.
    pub mode: Mode,
    /// Number of workers (1 in serial mode).
    pub procs: usize,
    /// Where that number came from.
    pub procs_source: ProcsSource,
    /// Elements per array (the global length, under MPI).
    pub len: usize,
    /// The kernels, in order.
    #[serde(flatten)]
    pub ops: Ops,
    /// Element type.
    pub dtype: Dtype,
    /// SIMD level.
    pub simd: Simd,
    /// Why that level.
    #[serde(default)]
    pub simd_reason: String,
    /// Store kind.
    pub stores: Stores,
    /// Why that store kind.
    pub stores_reason: String,
    /// Shared-memory backend.
    pub shm: Backend,
    /// The page size the arrays got, bytes (base or huge).
    pub page_bytes: usize,
    /// What `--huge-pages` asked for.
    pub pages: HugePages,
    /// Which pages back the arrays, and why.
    pub pages_reason: String,
    /// Round synchronisation.
    pub sync: RoundSync,
    /// Pin request.
    pub pin: PinSpec,
    /// Timed rounds (per kernel).
    pub runs: u32,
    /// Warm-up rounds (per kernel).
    pub warmup: u32,
    /// Data seed.
    pub seed: u64,
    /// Seconds without progress before a worker counts as hung.
    pub timeout_s: f64,
    /// Fault policy.
    pub on_fault: OnFault,
    /// Injected faults, as given.
    #[serde(rename = "inject_faults")]
    pub faults: Vec<FaultSpec>,
    /// STREAM-counted bytes moved per round of the first kernel.
    pub bytes_per_round: u64,
    /// Bytes of the three arrays.
    pub footprint_bytes: u64,
    /// Where workers run and how they wait.
    pub placement: Placement,
    /// Threads of the coordinator that check the arrays after each kernel.
    #[serde(default)]
    pub check_threads: usize,
    /// Where the arrays' pages go.
    pub memory: Memory,
}

/// The pages a run's segment really got (huge pages may run out between
/// planning and reserving).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pages {
    /// Bytes per page.
    pub(crate) bytes: usize,
    /// Why those.
    pub(crate) reason: String,
}

impl RunConfig {
    /// A builder for a run, for library users: every option of the command
    /// line, with its default.
    pub fn builder() -> RunBuilder {
        RunBuilder::default()
    }

    /// Resolves and checks the arguments of one run against `machine`.
    pub(crate) fn resolve(args: &RunArgs, machine: &Machine) -> Result<RunConfig, Error> {
        RunConfig::resolve_share(args, machine, None)
    }

    /// [`RunConfig::resolve`] for a share of a longer global array (an MPI
    /// rank's part: `args.len` is the share's length).
    pub(crate) fn resolve_share(args: &RunArgs, machine: &Machine, share: Option<Share>) -> Result<RunConfig, Error> {
        let usage = |m: String| Err(Error::usage(m));
        let mut warnings = Vec::new();
        let allowed = &machine.allowed_cpus;
        let room = machine.cpu_room();
        let (procs, procs_source) = match (args.mode, args.procs) {
            (Mode::Serial, Some(n)) if n != 1 => {
                return usage(format!("--procs {n}: serial mode runs one thread; drop --procs or use --mode threads"));
            }
            (Mode::Serial, _) => (1, ProcsSource::Serial),
            #[cfg(feature = "mpi")]
            (Mode::Ranks, Some(n)) if n != 1 => {
                return usage(format!(
                    "--procs {n}: --mode ranks computes each rank's chunk on the rank itself; start more ranks \
                     (mpirun -n), or use --mode procs for worker processes inside each rank"
                ));
            }
            #[cfg(feature = "mpi")]
            (Mode::Ranks, _) => (1, ProcsSource::Rank),
            (_, Some(0)) => return usage("--procs 0: a run needs at least one worker".into()),
            (_, Some(n)) if n > MAX_WORKERS => return usage(format!("--procs {n}: at most {MAX_WORKERS} workers")),
            (_, Some(n)) => (n, ProcsSource::Flag),
            (_, None) if matches!(args.measure.pin, PinSpec::Domains(_)) => {
                let PinSpec::Domains(d) = &args.measure.pin else { unreachable!() };
                (
                    d.iter().map(|(_, k)| k).sum::<usize>().min(MAX_WORKERS),
                    ProcsSource::Pin { pin: args.measure.pin.to_string() },
                )
            }
            (_, None) => match &machine.cpu_quota {
                Some(q) if room < allowed.len() => {
                    (room, ProcsSource::CgroupQuota { cpus: q.cpus(), file: q.file.display().to_string() })
                }
                _ => (
                    allowed.len().max(1),
                    ProcsSource::AffinityMask { cpus: format_cpu_list(allowed), set_by: machine.cpus_set_by.clone() },
                ),
            },
        };
        if procs > room && !args.mode.is_single() {
            let quota = machine.cpu_quota.as_ref().filter(|_| room < allowed.len()).map(|q| q.cpus());
            warnings.push(Warning::Oversubscribed { workers: procs, cpus: room, quota });
        }

        let m = &args.measure;
        if m.runs == 0 {
            return usage("--runs 0: at least one timed round is needed".into());
        }
        if m.runs > MAX_ROUNDS {
            return usage(format!("--runs {}: at most {MAX_ROUNDS} timed rounds", m.runs));
        }
        if m.warmup > MAX_ROUNDS {
            return usage(format!("--warmup {}: at most {MAX_ROUNDS} warm-up rounds", m.warmup));
        }
        let ops = dedup(&args.op.0, "--op", &mut warnings);
        let rounds_per_op = u64::from(m.runs) + u64::from(m.warmup);
        let records = rounds_per_op * ops.len() as u64 * procs as u64;
        if records > 100_000_000 {
            return usage(format!(
                "--runs {} × --procs {procs} × {} kernels is more rounds than a report can hold; lower --runs",
                m.runs,
                ops.len()
            ));
        }

        let simd = match args.simd.value() {
            Some(level) if !machine.simd.contains(&level) => {
                let supported: Vec<&str> = machine.simd.iter().map(|s| s.name()).collect();
                return usage(format!(
                    "--simd {level}: this CPU does not support it (it supports {})",
                    supported.join(", ")
                ));
            }
            Some(level) => (level, "requested".to_string()),
            None => auto_simd(&machine.simd),
        };
        let (simd, simd_reason) = simd;

        let (page, pages_reason) = choose_page(args, machine, procs)?;
        let partition = Partition::new(args.len, procs, page / args.dtype.size());
        let footprint = 3 * args.len as u64 * args.dtype.size() as u64;
        let (stores, stores_reason) = match m.stores.value() {
            Some(Stores::Nontemporal) if !simd.has_streaming_stores() => {
                return usage(format!(
                    "--stores nontemporal: --simd {simd} has no streaming store; use --simd sse2 or wider, or --stores regular"
                ));
            }
            Some(kind) => (kind, "requested".to_string()),
            None => {
                let (kind, mut why) = auto_stores(simd, &partition, args.dtype, machine.llc_bytes());
                let in_place: Vec<&str> =
                    ops.iter().filter(|op| kind.for_op(**op, true) != kind).map(|op| op.name()).collect();
                if kind == Stores::Nontemporal && in_place.len() == ops.len() {
                    why.push_str(&format!(", but {} reads the array it writes: regular stores", in_place.join(", ")));
                    (Stores::Regular, why)
                } else {
                    if kind == Stores::Nontemporal && !in_place.is_empty() {
                        why.push_str(&format!(
                            "; {} reads the array it writes, so it keeps regular stores",
                            in_place.join(", ")
                        ));
                    }
                    (kind, why)
                }
            }
        };
        let stores_auto = m.stores.value().is_none();

        if let PinSpec::Domains(d) = &m.pin {
            let total: usize = d.iter().map(|(_, k)| k).sum();
            if total != procs {
                return usage(format!(
                    "--pin {}: places {total} worker{} but --procs is {procs}; drop --procs or make them agree",
                    m.pin,
                    crate::units::plural(total as u64)
                ));
            }
        }
        let places = crate::machine::cpus::places(allowed, &machine.topology);
        let plan = pin_plan(&m.pin, &places, room, procs).map_err(|e| Error::usage(e.to_string()))?;
        let memory = resolve_memory(m.mem_policy, machine, &plan, args.mode, &mut warnings)?;

        if args.mode.is_single() && args.inject_fault.iter().any(|f| f.rank.is_none()) {
            return usage(format!(
                "--inject-fault needs --mode procs or --mode threads ({} mode has no worker to lose)",
                args.mode
            ));
        }
        if let Some(f) = args.inject_fault.iter().find(|f| f.rank.is_some())
            && share.is_none()
        {
            return usage(format!(
                "--inject-fault {f}: a rank fault needs a run under mpirun (built with --features mpi)"
            ));
        }
        let rounds = rounds_per_op * ops.len() as u64;
        for f in &args.inject_fault {
            if f.rank.is_none() && f.worker >= procs {
                return usage(format!("--inject-fault {f}: there are only workers 0 to {}", procs - 1));
            }
            if u64::from(f.round) >= rounds {
                return usage(format!(
                    "--inject-fault {f}: rounds are numbered 0 to {} (warm-up included, over every kernel)",
                    rounds - 1
                ));
            }
            if f.rank.is_none() && f.kind == FaultKind::OobWrite && partition.oob_target(f.worker).is_none() {
                return usage(format!(
                    "--inject-fault {f}: an oob-write needs another worker's chunk to write into; use --procs 2 or \
                     more and --len of at least {} elements",
                    2 * partition.page_elems()
                ));
            }
        }

        let worker_bin = match args.mode {
            Mode::Procs => Some(find_worker(m.worker_bin.as_deref())?),
            _ => None,
        };
        check_capacity(args, machine, procs, page, &partition)?;

        let placement = placement(&plan, allowed, room, procs, args.mode, &mut warnings);
        // STREAM's rule: each array at least 4 times the last-level cache;
        // below that, some of every round is served from the cache.
        if let Some(llc) = machine.llc_bytes() {
            let array = footprint / 3;
            if footprint <= llc {
                warnings.push(Warning::FitsInCache { footprint, llc, suggest_len: suggest_len(llc, args.dtype) });
            } else if array < 4 * llc {
                warnings.push(Warning::PartlyCached { array, llc, suggest_len: suggest_len(llc, args.dtype) });
            }
        }
        // The coordinator checks the arrays with its own threads, one per
        // CPU it may use (the workers wait meanwhile), never more than
        // there are chunks to check.
        let check_threads = room.min(partition.active()).max(1);

        Ok(RunConfig {
            mode: args.mode,
            procs,
            procs_source,
            len: args.len,
            share: share.unwrap_or(Share { base: 0, global_len: args.len as u64 }),
            ops,
            dtype: args.dtype,
            simd,
            simd_reason,
            stores,
            stores_reason,
            stores_auto,
            shm: m.shm,
            page_bytes: page,
            pages: m.huge_pages,
            pages_reason,
            sync: m.sync,
            pin: m.pin.clone(),
            runs: m.runs,
            warmup: m.warmup,
            seed: m.seed,
            timeout_s: args.timeout,
            on_fault: args.on_fault,
            faults: args.inject_fault.clone(),
            placement,
            memory,
            worker_bin,
            check_threads,
            warnings,
        })
    }

    /// What makes this run's numbers mislead, found while resolving it.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The same run, with `more` warnings found by whoever runs it (an MPI
    /// rank, about its share of the node).
    #[cfg(feature = "mpi")]
    pub(crate) fn with_warnings(mut self, more: Vec<Warning>) -> RunConfig {
        self.warnings.extend(more);
        self
    }

    /// The same configuration with `node` (where the caller runs now) as
    /// the node of every unpinned worker under `--mem-policy local` on a
    /// NUMA machine, decided before the pages are bound rather than by
    /// where each worker happens to run then. `--mode ranks` uses it: the
    /// rank that checks a part of the window must know its node.
    #[cfg(feature = "mpi")]
    pub(crate) fn with_unpinned_node(mut self, node: Option<usize>) -> RunConfig {
        if self.memory.policy == MemPolicy::Local && self.memory.numa {
            for meant in self.memory.intended.iter_mut().filter(|m| m.is_none()) {
                *meant = node;
            }
        }
        self
    }

    /// The execution mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The number of workers.
    pub fn procs(&self) -> usize {
        self.procs
    }

    /// Elements per array (this run's share, under MPI).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the arrays are empty (never: `--len` is at least 1).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The kernels, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// The SIMD level.
    pub fn simd(&self) -> Simd {
        self.simd
    }

    /// The store kind.
    pub fn stores(&self) -> Stores {
        self.stores
    }

    /// Timed rounds per kernel.
    pub fn runs(&self) -> u32 {
        self.runs
    }

    /// Warm-up rounds per kernel.
    pub fn warmup(&self) -> u32 {
        self.warmup
    }

    /// The data seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub(crate) fn stores_auto(&self) -> bool {
        self.stores_auto
    }

    pub(crate) fn shm(&self) -> Backend {
        self.shm
    }

    /// The page size planned for the segment (it may get base pages
    /// instead, when the hugetlb pool runs out meanwhile).
    pub(crate) fn page_bytes(&self) -> usize {
        self.page_bytes
    }

    pub(crate) fn pages(&self) -> HugePages {
        self.pages
    }

    pub(crate) fn planned_pages(&self) -> Pages {
        Pages { bytes: self.page_bytes, reason: self.pages_reason.clone() }
    }

    pub(crate) fn sync(&self) -> RoundSync {
        self.sync
    }

    pub(crate) fn on_fault(&self) -> OnFault {
        self.on_fault
    }

    pub(crate) fn faults(&self) -> &[FaultSpec] {
        &self.faults
    }

    pub(crate) fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Where the arrays' pages go.
    pub(crate) fn memory(&self) -> &Memory {
        &self.memory
    }

    pub(crate) fn worker_bin(&self) -> Option<&Path> {
        self.worker_bin.as_deref()
    }

    pub(crate) fn share(&self) -> Share {
        self.share
    }

    /// Threads of the coordinator that check the arrays.
    pub(crate) fn check_threads(&self) -> usize {
        self.check_threads
    }

    /// Rounds each kernel runs, warm-up included.
    pub(crate) fn rounds_per_kernel(&self) -> u32 {
        self.runs + self.warmup
    }

    /// The partition of this run over pages of `page_bytes`.
    pub(crate) fn partition(&self, page_bytes: usize) -> Partition {
        Partition::new(self.len, self.procs, page_bytes / self.dtype.size())
    }

    /// STREAM-counted bytes per round of `op` over the global array.
    pub(crate) fn bytes_per_round(&self, op: Op) -> u64 {
        op.arrays_moved() * self.share.global_len * self.dtype.size() as u64
    }

    /// Seconds without progress before a worker counts as hung.
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_s)
    }

    pub(crate) fn timeout_s(&self) -> f64 {
        self.timeout_s
    }

    /// How long a starting worker may take to say hello, and then to be
    /// ready: `--timeout`, but never less than [`START_UP_FLOOR`]. An exec
    /// on a busy machine can take seconds, and a short `--timeout` is
    /// meant for hung rounds, not slow starts.
    pub(crate) fn start_up_patience(&self) -> Duration {
        self.timeout().max(START_UP_FLOOR)
    }

    /// Whether `c` must be filled from the generator: a kernel reads it
    /// before any kernel writes it.
    pub(crate) fn fill_c(&self) -> bool {
        crate::kernel::history::fills_c(&self.ops)
    }

    /// What a report says of this run, on the pages it got.
    pub(crate) fn record(&self, pages: &Pages) -> ConfigRecord {
        let global = self.share.global_len;
        ConfigRecord {
            mode: self.mode,
            procs: self.procs,
            procs_source: self.procs_source.clone(),
            len: global as usize,
            ops: Ops(self.ops.clone()),
            dtype: self.dtype,
            simd: self.simd,
            simd_reason: self.simd_reason.clone(),
            stores: self.stores,
            stores_reason: self.stores_reason.clone(),
            shm: self.shm,
            page_bytes: pages.bytes,
            pages: self.pages,
            pages_reason: pages.reason.clone(),
            sync: self.sync,
            pin: self.pin.clone(),
            runs: self.runs,
            warmup: self.warmup,
            seed: self.seed,
            timeout_s: self.timeout_s,
            on_fault: self.on_fault,
            faults: self.faults.clone(),
            bytes_per_round: self.bytes_per_round(self.ops[0]),
            footprint_bytes: 3 * global * self.dtype.size() as u64,
            placement: self.placement.clone(),
            check_threads: self.check_threads,
            memory: self.memory.clone(),
        }
    }
}

/// Builds a [`RunConfig`] from options, as the command line would give
/// them; [`RunBuilder::resolve`] checks them against a machine.
///
/// ```no_run
/// use vecpar::{Mode, Op, RunConfig};
///
/// let config = RunConfig::builder().mode(Mode::Threads).len(1_000_000).ops(&[Op::Triad]).resolve_here()?;
/// let report = vecpar::run(&config)?;
/// assert!(report.validated());
/// # Ok::<(), vecpar::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct RunBuilder {
    args: RunArgs,
}

impl Default for RunBuilder {
    fn default() -> RunBuilder {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(["vecpar-coord"]).expect("the defaults parse");
        RunBuilder { args: cli.run }
    }
}

impl RunBuilder {
    /// What workers are made of.
    pub fn mode(mut self, mode: Mode) -> RunBuilder {
        self.args.mode = mode;
        self
    }

    /// The number of workers (default: the CPUs this process may use).
    pub fn procs(mut self, n: usize) -> RunBuilder {
        self.args.procs = Some(n);
        self
    }

    /// Elements per array.
    pub fn len(mut self, n: usize) -> RunBuilder {
        self.args.len = n;
        self
    }

    /// The kernels, in order.
    pub fn ops(mut self, ops: &[Op]) -> RunBuilder {
        self.args.op = crate::cli::OpList(ops.to_vec());
        self
    }

    /// The element type.
    pub fn dtype(mut self, dtype: Dtype) -> RunBuilder {
        self.args.dtype = dtype;
        self
    }

    /// The SIMD level (default: `--simd auto`, the widest this CPU has but AVX2 over AVX-512).
    pub fn simd(mut self, simd: Simd) -> RunBuilder {
        self.args.simd = crate::cli::Auto::Is(simd);
        self
    }

    /// The store kind (default: chosen by chunk size against the cache).
    pub fn stores(mut self, stores: Stores) -> RunBuilder {
        self.args.measure.stores = crate::cli::Auto::Is(stores);
        self
    }

    /// Timed and warm-up rounds per kernel.
    pub fn rounds(mut self, runs: u32, warmup: u32) -> RunBuilder {
        self.args.measure.runs = runs;
        self.args.measure.warmup = warmup;
        self
    }

    /// The data seed.
    pub fn seed(mut self, seed: u64) -> RunBuilder {
        self.args.measure.seed = seed;
        self
    }

    /// CPU placement.
    pub fn pin(mut self, pin: PinSpec) -> RunBuilder {
        self.args.measure.pin = pin;
        self
    }

    /// The shared-memory backend.
    pub fn shm(mut self, shm: Backend) -> RunBuilder {
        self.args.measure.shm = shm;
        self
    }

    /// Which pages back the arrays.
    pub fn huge_pages(mut self, pages: HugePages) -> RunBuilder {
        self.args.measure.huge_pages = pages;
        self
    }

    /// How rounds are started and reported.
    pub fn sync(mut self, sync: RoundSync) -> RunBuilder {
        self.args.measure.sync = sync;
        self
    }

    /// The worker binary (procs mode; default: next to this executable).
    pub fn worker_bin(mut self, path: impl Into<PathBuf>) -> RunBuilder {
        self.args.measure.worker_bin = Some(path.into());
        self
    }

    /// Seconds without progress before a worker counts as hung.
    pub fn timeout(mut self, seconds: f64) -> RunBuilder {
        self.args.timeout = seconds;
        self
    }

    /// What to do when a worker is lost.
    pub fn on_fault(mut self, policy: OnFault) -> RunBuilder {
        self.args.on_fault = policy;
        self
    }

    /// A fault to inject.
    pub fn inject_fault(mut self, fault: FaultSpec) -> RunBuilder {
        self.args.inject_fault.push(fault);
        self
    }

    /// Resolves and checks the run against `machine`: a usage error names
    /// what cannot work, as the command line's would.
    pub fn resolve(&self, machine: &Machine) -> Result<RunConfig, Error> {
        if !(self.args.timeout.is_finite() && self.args.timeout > 0.0 && self.args.timeout <= 86_400.0) {
            return Err(Error::usage(format!("timeout {}: between 0 and 86400 seconds", self.args.timeout)));
        }
        RunConfig::resolve(&self.args, machine)
    }

    /// Resolves the run against this machine.
    pub fn resolve_here(&self) -> Result<RunConfig, Error> {
        self.resolve(&Machine::detect())
    }
}

/// How workers are placed, spin or sleep, and which CPUs they share.
///
/// A waiter spins only where spinning steals no CPU from a worker: a worker
/// that sleeps between rounds pays a wake-up (on a VM, waking a halted vCPU
/// can take hundreds of µs); one that spins pays nothing while it has a
/// CPU to itself. The CPUs that count are the ones each worker can really
/// run on: its pin, else the affinity mask, both lowered by a CPU quota.
/// Resolves `--mem-policy` for `machine` and the pin plan: the node each
/// worker's chunks are meant for, the policy a process started under one
/// inherits, and a usage error for a node it may not allocate on.
fn resolve_memory(
    asked: Option<MemPolicy>,
    machine: &Machine,
    plan: &[Option<usize>],
    mode: Mode,
    warnings: &mut Vec<Warning>,
) -> Result<Memory, Error> {
    let topology = &machine.topology;
    let nodes = topology.memory_nodes();
    let numa = topology.is_numa();
    let inherited = crate::shm::numa::process_policy();
    let (policy, reason) = match (asked, inherited) {
        (Some(MemPolicy::Node(n)), _) if !nodes.contains(&n) => {
            return Err(Error::usage(format!(
                "--mem-policy node:{n}: this process may allocate on NUMA node{} {} only",
                crate::units::plural(nodes.len() as u64),
                format_cpu_list(&nodes)
            )));
        }
        (Some(p), _) => (p, "requested".to_string()),
        (None, Some(mode)) => {
            warnings.push(Warning::InheritedMemPolicy { policy: mode.to_string() });
            (
                MemPolicy::Inherit,
                format!("the process runs under a memory policy of its own ({mode}, numactl?): inherited"),
            )
        }
        (None, None) => (MemPolicy::Local, "the default".to_string()),
    };
    let reason = if !topology.is_numa() {
        format!("{reason}; one NUMA node, so nothing to place")
    } else if mode.is_rank() {
        format!(
            "{reason}; in --mode ranks each rank's part of the MPI window is bound, and the rank that checks it asks \
             where its pages are"
        )
    } else {
        reason
    };
    let intended = plan
        .iter()
        .map(|cpu| match policy {
            MemPolicy::Node(n) => Some(n),
            MemPolicy::Local => cpu.and_then(|c| topology.node_of_cpu(c)),
            _ => None,
        })
        .collect();
    Ok(Memory { policy, reason, intended, nodes, numa })
}

fn placement(
    plan: &[Option<usize>],
    allowed: &[usize],
    room: usize,
    procs: usize,
    mode: Mode,
    warnings: &mut Vec<Warning>,
) -> Placement {
    let mut pinned: Vec<(usize, usize)> = plan.iter().enumerate().filter_map(|(w, c)| c.map(|c| (c, w))).collect();
    pinned.sort_unstable();
    let mut shared = false;
    let mut i = 0;
    while i < pinned.len() {
        let j = (i..pinned.len()).take_while(|&j| pinned[j].0 == pinned[i].0).last().unwrap_or(i);
        if j > i && !mode.is_single() {
            shared = true;
            warnings
                .push(Warning::SharedCpu { cpu: pinned[i].0, workers: pinned[i..=j].iter().map(|p| p.1).collect() });
        }
        i = j + 1;
    }
    let cpus = if pinned.is_empty() {
        allowed.len()
    } else {
        let mut distinct: Vec<usize> = pinned.iter().map(|p| p.0).collect();
        distinct.dedup();
        distinct.len()
    };
    let capacity = allowed.len().min(room);
    let workers_fit = procs <= cpus.min(room) && !shared;
    // The coordinator is not pinned: it has a CPU of its own if the workers
    // leave one of the allowed ones free.
    let occupied = if pinned.is_empty() { procs } else { cpus };
    let free_cpu = capacity > occupied;
    // Serial mode has nobody to wait for.
    let waits = !mode.is_single();
    Placement {
        pin_plan: plan.to_vec(),
        worker_spin: if workers_fit && waits { SPIN } else { Duration::ZERO },
        coordinator_spin: if free_cpu && waits { SPIN } else { Duration::ZERO },
    }
}

/// Picks the segment's page size: huge pages from the hugetlb pool, or base pages.
fn choose_page(args: &RunArgs, machine: &Machine, procs: usize) -> Result<(usize, String), Error> {
    let m = &args.measure;
    let base = machine.page_size;
    if m.huge_pages == HugePages::Never {
        return Ok((base, "base pages (--huge-pages never)".into()));
    }
    let Some(huge) = machine.huge_page_size else {
        return match m.huge_pages {
            HugePages::Always => Err(Error::usage("--huge-pages always: this kernel has no huge pages")),
            _ => Ok((base, "base pages (no huge page support)".into())),
        };
    };
    let mib = huge >> 20;
    if m.shm != Backend::Memfd {
        return match m.huge_pages {
            HugePages::Always => Err(Error::usage("--huge-pages always needs --shm memfd (/dev/shm is not hugetlbfs)")),
            _ => Ok((base, "base pages (huge pages need --shm memfd)".into())),
        };
    }
    let needed = Layout::bytes_needed(args.dtype, args.len, procs, huge).unwrap_or(u64::MAX).div_ceil(huge as u64);
    let available = machine.huge_pages_available;
    if available < needed {
        return match m.huge_pages {
            HugePages::Always => Err(Error::runtime(format!(
                "--huge-pages always needs {needed} free {mib} MiB pages but the pool has {available}; reserve them \
                 (as root: sysctl vm.nr_hugepages={}) or use --huge-pages never",
                machine.huge_pages_total.saturating_add(needed - available)
            ))),
            _ => Ok((
                base,
                format!("base pages (the hugetlb pool has {available} of the {needed} {mib} MiB pages needed)"),
            )),
        };
    }
    // Chunks are whole pages: with 2 MiB pages a short array leaves workers
    // idle or unbalanced. auto takes huge pages only when every worker gets
    // one and no chunk exceeds an even share by more than a quarter.
    let p = Partition::new(args.len, procs, huge / args.dtype.size());
    let largest = p.chunks().iter().map(|c| c.len()).max().unwrap_or(0);
    let balanced = p.active() == procs && largest as f64 <= 1.25 * args.len.div_ceil(procs) as f64;
    match (m.huge_pages, balanced) {
        (HugePages::Always, _) | (_, true) => {
            Ok((huge, format!("{mib} MiB huge pages ({needed} from the hugetlb pool)")))
        }
        _ => Ok((base, format!("base pages ({mib} MiB pages would leave the {procs} chunks unbalanced)"))),
    }
}

/// `--simd auto`: the widest level this CPU has, except that AVX2 is
/// preferred where AVX-512 is there too — as GCC and Clang prefer 256-bit
/// vectors by default. Measured on the project's machine (AMD EPYC, Zen 4),
/// in memory, interleaved: `dot` and `nstream` move about 20 % more with
/// the 256-bit loop, the streaming-store kernels the same, and in cache
/// the two are level (docs/performance.md).
fn auto_simd(levels: &[Simd]) -> (Simd, String) {
    if levels.contains(&Simd::Avx512) && levels.contains(&Simd::Avx2) {
        return (
            Simd::Avx2,
            "auto: avx2, preferred to avx512 as compilers prefer 256-bit vectors (in memory the 512-bit loop is no \
             faster, and slower for dot and nstream); --simd avx512 to choose it"
                .into(),
        );
    }
    let widest = levels.last().copied().unwrap_or(Simd::Scalar);
    (widest, format!("auto: {widest}, the widest level this CPU has"))
}

fn auto_stores(simd: Simd, partition: &Partition, dtype: Dtype, llc: Option<u64>) -> (Stores, String) {
    let Some(llc) = llc else {
        return (Stores::Regular, "auto: cache size unknown".into());
    };
    let largest = partition.chunks().iter().map(|c| c.len()).max().unwrap_or(0);
    let chunk_bytes = 3 * largest as u64 * dtype.size() as u64;
    let share = llc / partition.active().max(1) as u64;
    let (kind, relation) = if chunk_bytes > share && simd.has_streaming_stores() {
        (Stores::Nontemporal, "exceed")
    } else {
        (Stores::Regular, "fit in")
    };
    (
        kind,
        format!(
            "auto: a chunk's arrays ({}) {relation} its share of the last-level cache ({})",
            human_bytes(chunk_bytes),
            human_bytes(share)
        ),
    )
}

/// A length whose arrays are each 4 × the last-level cache (STREAM's rule),
/// rounded up to one significant digit: "2e7".
fn suggest_len(llc: u64, dtype: Dtype) -> String {
    let elems = 4 * llc / dtype.size() as u64;
    let mut pow = 1u64;
    while pow < elems {
        pow *= 10;
    }
    let lead = elems.div_ceil(pow / 10);
    format!("{lead}e{}", (pow / 10).ilog10())
}

/// Finds the worker binary: `--worker-bin`/`VECPAR_WORKER`, else next to this executable.
pub fn find_worker(explicit: Option<&Path>) -> Result<PathBuf, Error> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .map_err(|e| Error::runtime_from("cannot locate vecpar-coord", e))?
            .with_file_name("vecpar-worker"),
    };
    let executable = std::fs::metadata(&path)
        .map(|m| m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0);
    match executable {
        Ok(true) => Ok(path),
        Ok(false) => Err(Error::runtime(format!(
            "{} is not an executable file; point --worker-bin or VECPAR_WORKER at vecpar-worker",
            path.display()
        ))),
        Err(_) => Err(Error::runtime(format!(
            "worker binary not found at {}; build it with `cargo build --release` (it is built next to vecpar-coord), \
             or point --worker-bin or VECPAR_WORKER at it",
            path.display()
        ))),
    }
}

/// Room for a process's heap to grow and its own threads' stacks, beside
/// what it maps already, when checking `ulimit -v`.
const PROCESS_MARGIN: u64 = 4 << 20;

/// A thread's stack and guard page (Rust's default).
const THREAD_STACK: u64 = (2 << 20) + 4096;

/// Refuses runs the machine cannot hold, before anything is allocated.
///
/// `VECPAR_NO_PREFLIGHT=1` skips these checks; the tests use it to show
/// that the workers' own reservations (fallocate before first touch) still
/// turn a full filesystem into an error, not a SIGBUS.
fn check_capacity(
    args: &RunArgs,
    machine: &Machine,
    procs: usize,
    page: usize,
    partition: &Partition,
) -> Result<(), Error> {
    if std::env::var_os("VECPAR_NO_PREFLIGHT").is_some_and(|v| v == "1") {
        return Ok(());
    }
    let layout = Layout::new(args.dtype, args.len, procs, page, 0)
        .map_err(|_| Error::usage(format!("--len {}: the arrays do not fit in the address space", args.len)))?;
    let needed = layout.total_bytes as u64;
    // Huge pages come from the pool (checked when choosing them).
    if page == machine.page_size
        && let Some(available) = machine.memory_headroom()
        && needed > available
    {
        let limit = match &machine.memory_limit {
            Some(l) if l.headroom <= machine.memory_available.unwrap_or(u64::MAX) => {
                format!(" under the cgroup memory limit of {} ({})", human_bytes(l.limit), l.file.display())
            }
            _ => String::new(),
        };
        return Err(Error::runtime(format!(
            "--len {} needs {} of shared memory for a, b and c, but only {} is available{limit}; lower --len",
            args.len,
            human_bytes(needed),
            human_bytes(available)
        )));
    }
    if args.measure.shm == Backend::Posix
        && let Some(free) = machine.shm_free
        && needed > free
    {
        return Err(Error::runtime(format!(
            "--shm posix needs {} in /dev/shm but only {} is free; use the default --shm memfd \
             (not limited by /dev/shm), or enlarge /dev/shm (e.g. docker run --shm-size)",
            human_bytes(needed),
            human_bytes(free)
        )));
    }
    if let Some(limit) = machine.address_space_limit {
        // What a process needs: what this one maps already (its code, its
        // stacks; not the address space malloc reserves and gives up under
        // a limit), the threads it will start, its share of the segment,
        // and a margin. A worker is assumed to need what this process does.
        let base = machine.mapped_bytes + PROCESS_MARGIN;
        let meta = (layout.control_offset + layout.control_bytes) as u64;
        let largest = partition.chunks().iter().map(|c| layout.chunk_bytes(c).len()).max().unwrap_or(0) as u64;
        let checkers = machine.cpu_room().min(partition.active()).max(1) as u64;
        let array = layout.array_bytes as u64;
        // Its threads: the checkers, and the worker threads or the threads
        // that spawn worker processes (one per CPU, at most 16).
        let workers = match args.mode {
            Mode::Threads => procs,
            Mode::Procs => procs.min(machine.allowed_cpus.len().max(1)).min(16),
            _ => 0,
        } as u64;
        let mut needs =
            vec![("this process", base + meta + 3 * array + THREAD_STACK * (checkers + workers), 3 * array)];
        if args.mode == Mode::Procs {
            needs.push(("each worker process", base + meta + 2 * array + largest, 2 * array + largest));
        }
        for (who, need, arrays) in needs {
            if need <= limit {
                continue;
            }
            let fix = if need - arrays < limit {
                format!("lower --len (the arrays take {} of it) or raise ulimit -v", human_bytes(arrays))
            } else {
                "lower --len cannot help: raise ulimit -v".to_string()
            };
            return Err(Error::runtime(format!(
                "--len {}: {who} needs about {} of address space ({} for its share of the arrays, {} for its code, \
                 stacks and heap), more than ulimit -v allows ({} kB); {fix}",
                args.len,
                human_bytes(need),
                human_bytes(arrays),
                human_bytes(need - arrays),
                limit / 1024
            )));
        }
    }
    let tasks = if args.mode.is_single() { 0 } else { procs as u64 };
    if let Some(l) = machine.process_limit
        && tasks > l.headroom
    {
        return Err(Error::runtime(format!(
            "--procs {procs} needs {tasks} more processes or threads, but this user may start only {} \
             (RLIMIT_NPROC {}, {} running); lower --procs",
            l.headroom, l.limit, l.running
        )));
    }
    if args.mode == Mode::Procs
        && let Some((headroom, limit)) = machine.descriptor_limit
    {
        let per_worker = 3; // the channel's end, its poll entry, slack
        if (procs as u64) * per_worker + 16 > headroom {
            return Err(Error::runtime(format!(
                "--procs {procs} needs about {} file descriptors but only {headroom} are free (ulimit -n {limit}); \
                 lower --procs or raise ulimit -n",
                procs as u64 * per_worker + 16
            )));
        }
    }
    Ok(())
}

/// A sweep, resolved: every point's run, before the first one starts.
#[derive(Clone, Debug)]
pub(crate) struct SweepPlan {
    /// The points, in the table's order (each with its warnings).
    pub points: Vec<RunConfig>,
    /// Times the grid runs.
    pub repeat: usize,
    /// Warnings about the grid itself.
    pub notes: Vec<Warning>,
}

/// The most runs one sweep makes (points × repeats).
pub const MAX_SWEEP_RUNS: usize = 100_000;

/// The default worker counts: 1, 2, 4, … up to 4 × `cpus` (at most 64).
pub fn default_sweep_procs(cpus: usize) -> Vec<usize> {
    let top = (4 * cpus).clamp(1, 64);
    std::iter::successors(Some(1usize), |p| Some(p * 2)).take_while(|&p| p <= top).collect()
}

fn dedup<T: PartialEq + Clone + std::fmt::Display>(
    values: &[T],
    flag: &'static str,
    notes: &mut Vec<Warning>,
) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for v in values {
        if out.contains(v) {
            notes.push(Warning::Repeated { flag: flag.into(), value: v.to_string() });
        } else {
            out.push(v.clone());
        }
    }
    out
}

impl SweepPlan {
    /// Resolves every point of `args` against `machine`.
    pub(crate) fn resolve(args: &SweepArgs, machine: &Machine) -> Result<SweepPlan, Error> {
        let mut notes = Vec::new();
        if args.repeat == 0 || args.repeat > MAX_REPEAT {
            return Err(Error::usage(format!("--repeat {}: run the grid 1 to {MAX_REPEAT} times", args.repeat)));
        }
        let procs = if args.procs.is_empty() {
            default_sweep_procs(machine.cpu_room())
        } else {
            dedup(&args.procs, "--procs", &mut notes)
        };
        if let Some(bad) = procs.iter().find(|&&p| p == 0 || p > MAX_WORKERS) {
            return Err(Error::usage(format!("--procs {bad}: a run needs 1 to {MAX_WORKERS} workers")));
        }
        let modes = dedup(&args.modes, "--modes", &mut notes);
        if modes.is_empty() {
            return Err(Error::usage("--modes: name at least one of procs, threads, serial"));
        }
        #[cfg(feature = "mpi")]
        if modes.contains(&Mode::Ranks) {
            return Err(Error::usage("--modes ranks: a sweep runs on one machine; run --mode ranks under mpirun"));
        }
        let lens = dedup(&args.len, "--len", &mut notes);
        let dtypes = dedup(&args.dtype, "--dtype", &mut notes);
        let ops = dedup(&args.op.0, "--op", &mut notes);
        let simds: Vec<crate::cli::Auto<Simd>> = {
            let mut out = Vec::new();
            for s in args.simd.iter().flat_map(|s| s.expand(&machine.simd)) {
                if out.contains(&s) {
                    notes.push(Warning::Repeated { flag: "--simd".into(), value: s.to_string() });
                } else {
                    out.push(s);
                }
            }
            out
        };
        // Workers spread over the first k NUMA nodes that have CPUs here, --procs
        // of them on each.
        let numa_nodes = dedup(&args.numa_nodes, "--numa-nodes", &mut notes);
        let domains = machine.topology.cpus_by_node(&machine.allowed_cpus);
        if let Some(&bad) = numa_nodes.iter().find(|&&k| k == 0 || k > domains.len()) {
            return Err(Error::usage(format!(
                "--numa-nodes {bad}: this process may use CPUs of {} NUMA node{} (vecpar-coord topology shows them)",
                domains.len(),
                crate::units::plural(domains.len() as u64)
            )));
        }
        if !numa_nodes.is_empty() && !matches!(args.measure.pin, PinSpec::Auto) {
            return Err(Error::usage(format!(
                "--pin {} and --numa-nodes both place workers; drop one",
                args.measure.pin
            )));
        }
        let layouts: Vec<(Option<PinSpec>, usize)> = if numa_nodes.is_empty() {
            procs.iter().map(|&p| (None, p)).collect()
        } else {
            numa_nodes
                .iter()
                .flat_map(|&k| {
                    let domains = &domains;
                    procs.iter().map(move |&p| {
                        let pin = PinSpec::Domains(domains[..k].iter().map(|(node, _)| (*node, p)).collect());
                        (Some(pin), p * k)
                    })
                })
                .collect()
        };
        let mut runs = Vec::new();
        for &len in &lens {
            for &op in &ops {
                for &dtype in &dtypes {
                    for &simd in &simds {
                        let point = |mode: Mode, procs: Option<usize>, pin: Option<&PinSpec>| {
                            let mut measure = args.measure.clone();
                            if let Some(pin) = pin {
                                measure.pin = pin.clone();
                            }
                            RunArgs {
                                procs,
                                len,
                                op: crate::cli::OpList(vec![op]),
                                dtype,
                                mode,
                                simd,
                                measure,
                                inject_fault: Vec::new(),
                                on_fault: OnFault::Fail,
                                timeout: 60.0,
                            }
                        };
                        if modes.contains(&Mode::Serial) {
                            runs.push(point(Mode::Serial, None, None));
                        }
                        for (pin, p) in &layouts {
                            for &mode in modes.iter().filter(|m| **m != Mode::Serial) {
                                runs.push(point(mode, Some(*p), pin.as_ref()));
                            }
                        }
                    }
                }
            }
        }
        if runs.len().saturating_mul(args.repeat) > MAX_SWEEP_RUNS {
            return Err(Error::usage(format!(
                "the grid has {} points × --repeat {}: more than {MAX_SWEEP_RUNS} runs; narrow the grid",
                runs.len(),
                args.repeat
            )));
        }
        let points = runs.iter().map(|r| RunConfig::resolve(r, machine)).collect::<Result<Vec<_>, _>>()?;
        Ok(SweepPlan { points, repeat: args.repeat, notes })
    }
}

/// The isolation experiment's arguments, checked.
pub(crate) fn check_isolation(args: &IsolationArgs) -> Result<(), Error> {
    if !(2..=64).contains(&args.procs) {
        return Err(Error::usage(format!(
            "--procs {}: the experiment needs 2 to 64 workers (an oob-write writes into a neighbour)",
            args.procs
        )));
    }
    if args.modes.is_empty() || args.fault_kinds().is_empty() {
        return Err(Error::usage("--modes and --faults each need at least one value"));
    }
    if args.modes.contains(&crate::cli::IsolationMode::Mpi) && !cfg!(feature = "mpi") {
        return Err(Error::usage(
            "--modes mpi: this vecpar-coord was built without MPI; build it with `cargo build --release --features \
             mpi` (README: \"Beyond one machine\"), or leave mpi out",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_prefers_avx2_to_avx512_and_otherwise_the_widest() {
        let all = [Simd::Scalar, Simd::Sse2, Simd::Avx2, Simd::Avx512];
        assert_eq!(auto_simd(&all).0, Simd::Avx2);
        assert!(auto_simd(&all).1.contains("--simd avx512"));
        assert_eq!(auto_simd(&all[..3]).0, Simd::Avx2);
        assert_eq!(auto_simd(&[Simd::Scalar, Simd::Neon]).0, Simd::Neon);
        assert_eq!(auto_simd(&[]).0, Simd::Scalar);
    }
    use crate::cli::Cli;
    use crate::machine::testing::two_cpus;
    use clap::Parser;

    fn resolve(args: &[&str], machine: &Machine) -> Result<(RunConfig, Vec<Warning>), Error> {
        let cli = Cli::try_parse_from(std::iter::once("vecpar-coord").chain(args.iter().copied())).unwrap();
        RunConfig::resolve(&cli.run, machine).map(|c| {
            let w = c.warnings().to_vec();
            (c, w)
        })
    }

    #[test]
    fn usage_errors_name_the_flag() {
        let m = two_cpus();
        for (args, flag) in [
            (&["--mode", "threads", "--procs", "0"][..], "--procs 0"),
            (&["--mode", "serial", "--procs", "3"], "--procs 3"),
            (&["--mode", "threads", "--runs", "0"], "--runs 0"),
            (&["--mode", "threads", "--runs", "2000000"], "--runs 2000000"),
            (&["--mode", "threads", "--simd", "avx512"], "--simd avx512"),
            (&["--mode", "threads", "--inject-fault", "5:panic"], "--inject-fault 5:panic@0"),
            (&["--mode", "threads", "--inject-fault", "0:oob-write", "--len", "10"], "oob-write"),
            (&["--mode", "threads", "--pin", "7"], "--pin 7"),
            (&["--mode", "threads", "--huge-pages", "always", "--shm", "posix"], "--huge-pages always"),
        ] {
            let err = resolve(args, &m).expect_err(flag);
            assert!(matches!(err, Error::Usage(_)), "{args:?}: {err}");
            assert!(err.to_string().contains(flag), "{args:?}: {err}");
        }
    }

    #[test]
    fn the_default_follows_the_mask_and_the_quota() {
        let mut m = two_cpus();
        let (c, _) = resolve(&["--mode", "threads"], &m).unwrap();
        assert_eq!(
            (c.procs(), c.procs_source.clone()),
            (2, ProcsSource::AffinityMask { cpus: "0-1".into(), set_by: crate::machine::CpusSetBy::Nothing })
        );
        m.cpu_quota = Some(crate::machine::CpuQuota { quota_us: 10_000, period_us: 100_000, file: "cpu.max".into() });
        let (c, w) = resolve(&["--mode", "threads"], &m).unwrap();
        assert_eq!(c.procs(), 1);
        assert!(matches!(c.procs_source, ProcsSource::CgroupQuota { .. }));
        assert!(!w.iter().any(|w| matches!(w, Warning::Oversubscribed { .. })));
        let (_, w) = resolve(&["--mode", "threads", "--procs", "2"], &m).unwrap();
        assert!(w.iter().any(|w| matches!(w, Warning::Oversubscribed { quota: Some(_), .. })), "{w:?}");
        let (c, _) = resolve(&["--mode", "serial"], &m).unwrap();
        assert_eq!(c.procs_source, ProcsSource::Serial);
        assert_eq!(default_sweep_procs(m.cpu_room()), [1, 2, 4]);
    }

    #[test]
    fn workers_sharing_a_cpu_do_not_spin_and_are_named() {
        let m = two_cpus();
        let (c, w) = resolve(&["--mode", "threads", "--procs", "2", "--pin", "1"], &m).unwrap();
        assert_eq!(c.placement().pin_plan, [Some(1), Some(1)]);
        assert_eq!(c.placement().worker_spin, Duration::ZERO, "two workers on one CPU must not spin");
        assert!(w.contains(&Warning::SharedCpu { cpu: 1, workers: vec![0, 1] }), "{w:?}");
        let (c, _) = resolve(&["--mode", "threads", "--procs", "2", "--pin", "1,0"], &m).unwrap();
        assert_eq!(c.placement().pin_plan, [Some(1), Some(0)], "the list's order");
        assert_eq!(c.placement().worker_spin, SPIN);
        assert_eq!(c.placement().coordinator_spin, Duration::ZERO, "no CPU is left for the coordinator");
        let (c, _) = resolve(&["--mode", "threads", "--procs", "1"], &m).unwrap();
        assert_eq!(c.placement().coordinator_spin, SPIN);
    }

    #[test]
    fn kernels_and_their_echo() {
        let m = two_cpus();
        let (c, _) = resolve(&["--mode", "serial", "--op", "all"], &m).unwrap();
        assert_eq!(c.ops(), Op::ALL);
        assert!(!c.fill_c(), "copy writes c before nstream reads it");
        let (c, _) = resolve(&["--mode", "serial", "--op", "nstream"], &m).unwrap();
        assert!(c.fill_c());
        let (f, _) = resolve(&["--mode", "serial", "--op", "fma,add"], &m).unwrap();
        assert!(f.fill_c(), "fma reads c first");
        let json = serde_json::to_value(c.record(&c.planned_pages())).unwrap();
        assert_eq!(json["op"], "nstream");
        assert_eq!(json["ops"], serde_json::json!(["nstream"]));
        assert_eq!(json["pages"], "auto");
        assert_eq!(json["placement"]["worker_spin_us"], 0, "serial: nobody waits");
        assert!(json.get("worker_bin").is_none());
        let back: ConfigRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back.ops.0, c.ops());
    }

    #[test]
    fn length_suggestions_round_up() {
        assert_eq!(suggest_len(32 << 20, Dtype::F64), "2e7");
        assert_eq!(suggest_len(1 << 20, Dtype::F32), "2e6");
    }
}
