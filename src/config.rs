//! From the command line to a run that can work: defaults resolved, `auto`
//! decided, every value checked against this machine before anything is
//! allocated or spawned.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{HugePages, RunArgs};
use crate::cpus::{self, PinSpec, ProcsSource};
use crate::error::Error;
use crate::fault::{FaultKind, FaultSpec, OnFault};
use crate::ipc::Sync;
use crate::kernel::{Dtype, Op, Simd, Stores};
use crate::mode::Mode;
use crate::partition::Partition;
use crate::shm::{self, Backend, Layout};
use crate::sysinfo::{self, human_bytes};

/// The most workers one run may start: far beyond any machine's cores, well
/// short of a fork bomb.
pub const MAX_WORKERS: usize = 4096;

/// How long a waiter spins before sleeping, where spinning steals no CPU.
pub const SPIN: Duration = Duration::from_millis(2);

/// A run, fully resolved.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Execution mode.
    pub mode: Mode,
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
    /// SIMD level.
    pub simd: Simd,
    /// Store kind.
    pub stores: Stores,
    /// Why that store kind.
    pub stores_reason: String,
    /// Shared-memory backend.
    pub shm: Backend,
    /// The segment's page size (base or huge).
    pub page: usize,
    /// Why that page size.
    pub page_reason: String,
    /// What `--huge-pages` asked for.
    pub huge_pages: HugePages,
    /// Round synchronisation.
    pub sync: Sync,
    /// Pin request.
    pub pin: PinSpec,
    /// The CPU each worker is pinned to.
    pub pin_plan: Vec<Option<usize>>,
    /// The CPUs this process may use.
    pub allowed_cpus: Vec<usize>,
    /// Timed rounds.
    pub runs: u32,
    /// Warm-up rounds.
    pub warmup: u32,
    /// Data seed.
    pub seed: u64,
    /// Per-step timeout.
    pub timeout: Duration,
    /// Fault policy.
    pub on_fault: OnFault,
    /// Injected faults.
    pub faults: Vec<FaultSpec>,
    /// The worker binary (procs mode).
    pub worker_bin: Option<PathBuf>,
    /// How long a worker spins on the doorbell before sleeping.
    pub worker_spin: Duration,
    /// How long the coordinator spins for reports before sleeping.
    pub coordinator_spin: Duration,
    /// The command line, for the report.
    pub arguments: Vec<String>,
    /// Warnings found while resolving.
    pub warnings: Vec<String>,
}

impl RunConfig {
    /// Resolves and checks the arguments of one run.
    pub fn resolve(args: &RunArgs, arguments: Vec<String>) -> Result<RunConfig, Error> {
        let usage = |m: String| Err(Error::Usage(m));
        let mut warnings = Vec::new();
        let allowed = cpus::allowed_cpus();
        let (procs, procs_source) = match (args.mode, args.procs) {
            (Mode::Serial, Some(n)) if n != 1 => {
                return usage(format!("--procs {n}: serial mode runs one thread; drop --procs or use --mode threads"));
            }
            (Mode::Serial, _) => (1, ProcsSource::Flag),
            (_, Some(0)) => return usage("--procs 0: a run needs at least one worker".into()),
            (_, Some(n)) if n > MAX_WORKERS => return usage(format!("--procs {n}: at most {MAX_WORKERS} workers")),
            (_, Some(n)) => (n, ProcsSource::Flag),
            (_, None) => cpus::default_procs(&allowed),
        };
        if procs > allowed.len() && args.mode != Mode::Serial {
            warnings.push(format!(
                "{procs} workers on {} allowed CPUs: workers take turns, so each round waits for time slices",
                allowed.len()
            ));
        }
        if args.measure.runs == 0 {
            return usage("--runs 0: at least one timed round is needed".into());
        }
        let rounds = u64::from(args.measure.runs) + u64::from(args.measure.warmup);
        if rounds > u32::MAX as u64 {
            return usage("--runs plus --warmup is too many rounds".into());
        }

        let simd = match args.simd.level() {
            Some(level) if !level.is_supported() => {
                let supported: Vec<&str> = Simd::supported().iter().map(|s| s.name()).collect();
                return usage(format!(
                    "--simd {level}: this CPU does not support it (it supports {})",
                    supported.join(", ")
                ));
            }
            Some(level) => level,
            None => Simd::best(),
        };

        let (page, page_reason) = choose_page(args, procs)?;
        let page_elems = page / args.measure.dtype.size();
        let partition = Partition::new(args.len, procs, page_elems);
        let footprint = 3 * args.len as u64 * args.measure.dtype.size() as u64;
        let (stores, stores_reason) = match args.measure.stores.kind() {
            Some(Stores::Nontemporal) if !simd.has_streaming_stores() => {
                return usage(format!(
                    "--stores nontemporal: --simd {simd} has no streaming store; use --simd sse2 or wider, or --stores regular"
                ));
            }
            Some(kind) => (kind, "requested".to_string()),
            None => auto_stores(simd, &partition, args.measure.dtype),
        };

        let pin_plan = cpus::pin_plan(&args.measure.pin, &allowed, procs).map_err(|e| Error::Usage(e.to_string()))?;

        if args.mode == Mode::Serial && !args.inject_fault.is_empty() {
            return usage(
                "--inject-fault needs --mode procs or --mode threads (serial mode has no worker to lose)".into(),
            );
        }
        for f in &args.inject_fault {
            if f.worker >= procs {
                return usage(format!("--inject-fault {f}: there are only workers 0 to {}", procs - 1));
            }
            if u64::from(f.round) >= rounds {
                return usage(format!(
                    "--inject-fault {f}: rounds are numbered 0 to {} (warm-up included)",
                    rounds - 1
                ));
            }
            if f.kind == FaultKind::OobWrite && oob_target(&partition, f.worker).is_none() {
                return usage(format!(
                    "--inject-fault {f}: an oob-write needs another worker's chunk to write into; use --procs 2 or more and --len of at least {} elements",
                    2 * page_elems
                ));
            }
        }

        let worker_bin = match args.mode {
            Mode::Procs => Some(find_worker(args.measure.worker_bin.as_deref())?),
            _ => None,
        };
        check_capacity(args, procs, page)?;

        // Spin only where a spinner does not steal a CPU from a worker. A
        // worker that sleeps between rounds pays a wake-up (on a VM, waking
        // a halted vCPU can take hundreds of µs); one that spins a little
        // longer than the gap between rounds pays nothing.
        let workers_fit = procs <= allowed.len();
        let room_for_coordinator = procs < allowed.len();
        let worker_spin = if workers_fit { SPIN } else { Duration::ZERO };
        let coordinator_spin = if room_for_coordinator { SPIN } else { Duration::ZERO };

        if let Some(llc) = sysinfo::llc_bytes()
            && footprint <= llc
        {
            warnings.push(format!(
                "a, b and c ({}) fit in the {} last-level cache: this measures cache bandwidth, not memory; \
                 for memory bandwidth use --len {} or more",
                human_bytes(footprint),
                human_bytes(llc),
                suggest_len(llc, args.measure.dtype)
            ));
        }

        Ok(RunConfig {
            mode: args.mode,
            procs,
            procs_source,
            len: args.len,
            op: args.op,
            dtype: args.measure.dtype,
            simd,
            stores,
            stores_reason,
            shm: args.measure.shm,
            page,
            page_reason,
            huge_pages: args.measure.huge_pages,
            sync: args.measure.sync,
            pin: args.measure.pin.clone(),
            pin_plan,
            allowed_cpus: allowed,
            runs: args.measure.runs,
            warmup: args.measure.warmup,
            seed: args.measure.seed,
            timeout: Duration::from_secs_f64(args.timeout),
            on_fault: args.on_fault,
            faults: args.inject_fault.clone(),
            worker_bin,
            worker_spin,
            coordinator_spin,
            arguments,
            warnings,
        })
    }

    /// The partition of this run.
    pub fn partition(&self) -> Partition {
        Partition::new(self.len, self.procs, self.page / self.dtype.size())
    }

    /// STREAM-counted bytes per round.
    pub fn bytes_per_round(&self) -> u64 {
        self.op.arrays_moved() * self.len as u64 * self.dtype.size() as u64
    }
}

/// Picks the segment's page size: huge pages from the hugetlb pool, or base pages.
fn choose_page(args: &RunArgs, procs: usize) -> Result<(usize, String), Error> {
    let base = shm::page_size();
    if args.measure.huge_pages == HugePages::Never {
        return Ok((base, "base pages (--huge-pages never)".into()));
    }
    let Some(huge) = shm::huge_page_size() else {
        return match args.measure.huge_pages {
            HugePages::Always => Err(Error::Usage("--huge-pages always: this kernel has no huge pages".into())),
            _ => Ok((base, "base pages (no huge page support)".into())),
        };
    };
    let mib = huge >> 20;
    if args.measure.shm != Backend::Memfd {
        return match args.measure.huge_pages {
            HugePages::Always => {
                Err(Error::Usage("--huge-pages always needs --shm memfd (/dev/shm is not hugetlbfs)".into()))
            }
            _ => Ok((base, "base pages (huge pages need --shm memfd)".into())),
        };
    }
    let needed =
        Layout::bytes_needed(args.measure.dtype, args.len, procs, huge).unwrap_or(u64::MAX).div_ceil(huge as u64);
    let available = shm::huge_pages_available();
    if available < needed {
        return match args.measure.huge_pages {
            HugePages::Always => Err(Error::Runtime(format!(
                "--huge-pages always needs {needed} free {mib} MiB pages but the pool has {available}; reserve them \
                 (as root: sysctl vm.nr_hugepages={}) or use --huge-pages never",
                shm::huge_pages_total() + needed - available
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
    let p = Partition::new(args.len, procs, huge / args.measure.dtype.size());
    let largest = p.chunks().iter().map(|c| c.len()).max().unwrap_or(0);
    let balanced = p.active() == procs && largest as f64 <= 1.25 * args.len.div_ceil(procs) as f64;
    match (args.measure.huge_pages, balanced) {
        (HugePages::Always, _) | (_, true) => {
            Ok((huge, format!("{mib} MiB huge pages ({needed} from the hugetlb pool)")))
        }
        _ => Ok((base, format!("base pages ({mib} MiB pages would leave the {procs} chunks unbalanced)"))),
    }
}

/// The element an `oob-write` by `worker` hits: the first element of the
/// next worker (cyclically) that has one.
pub fn oob_target(partition: &Partition, worker: usize) -> Option<u64> {
    let n = partition.workers();
    (1..n).map(|k| (worker + k) % n).map(|w| partition.chunk(w)).find(|c| !c.is_empty()).map(|c| c.start as u64)
}

fn auto_stores(simd: Simd, partition: &Partition, dtype: Dtype) -> (Stores, String) {
    let Some(llc) = sysinfo::llc_bytes() else {
        return (Stores::Regular, "auto: cache size unknown".into());
    };
    let largest = partition.chunks().iter().map(|c| c.len()).max().unwrap_or(0);
    let chunk_bytes = 3 * largest as u64 * dtype.size() as u64;
    let share = llc / partition.active().max(1) as u64;
    if chunk_bytes > share && simd.has_streaming_stores() {
        (
            Stores::Nontemporal,
            format!(
                "auto: a chunk's arrays ({}) exceed its share of the last-level cache ({})",
                human_bytes(chunk_bytes),
                human_bytes(share)
            ),
        )
    } else {
        (
            Stores::Regular,
            format!(
                "auto: a chunk's arrays ({}) fit in its share of the last-level cache ({})",
                human_bytes(chunk_bytes),
                human_bytes(share)
            ),
        )
    }
}

fn suggest_len(llc: u64, dtype: Dtype) -> String {
    // STREAM's rule: each array at least 4 × the last-level cache.
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
        None => {
            let exe = std::env::current_exe().map_err(|e| Error::runtime("cannot locate vecpar-coord", e))?;
            exe.with_file_name("vecpar-worker")
        }
    };
    let executable = std::fs::metadata(&path)
        .map(|m| m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0);
    match executable {
        Ok(true) => Ok(path),
        Ok(false) => Err(Error::Runtime(format!(
            "{} is not an executable file; point --worker-bin or VECPAR_WORKER at vecpar-worker",
            path.display()
        ))),
        Err(_) => Err(Error::Runtime(format!(
            "worker binary not found at {}; build it with `cargo build --release` (it is built next to vecpar-coord), \
             or point --worker-bin or VECPAR_WORKER at it",
            path.display()
        ))),
    }
}

/// Refuses runs the machine cannot hold, before anything is allocated.
///
/// `VECPAR_NO_PREFLIGHT=1` skips these checks; the tests use it to show
/// that the workers' own reservations (fallocate before first touch) still
/// turn a full filesystem into an error, not a SIGBUS.
fn check_capacity(args: &RunArgs, procs: usize, page: usize) -> Result<(), Error> {
    if std::env::var_os("VECPAR_NO_PREFLIGHT").is_some_and(|v| v == "1") {
        return Ok(());
    }
    let needed = Layout::bytes_needed(args.measure.dtype, args.len, procs, page)
        .ok_or_else(|| Error::Usage(format!("--len {}: the arrays do not fit in the address space", args.len)))?;
    // Huge pages come from the pool (checked when choosing them), not from
    // MemAvailable.
    let huge = page > shm::page_size();
    if !huge
        && let Some(available) = sysinfo::memory_available()
        && needed > available
    {
        return Err(Error::Runtime(format!(
            "--len {} needs {} of shared memory for a, b and c, but only {} is available; lower --len",
            args.len,
            human_bytes(needed),
            human_bytes(available)
        )));
    }
    if args.measure.shm == Backend::Posix
        && let Some(free) = shm::shm_free_bytes()
        && needed > free
    {
        return Err(Error::Runtime(format!(
            "--shm posix needs {} in /dev/shm but only {} is free; use the default --shm memfd \
             (not limited by /dev/shm), or enlarge /dev/shm (e.g. docker run --shm-size)",
            human_bytes(needed),
            human_bytes(free)
        )));
    }
    let tasks = match args.mode {
        Mode::Procs | Mode::Threads => procs as u64,
        Mode::Serial => 0,
    };
    if let Some((headroom, limit, running)) = sysinfo::process_headroom()
        && tasks > headroom
    {
        return Err(Error::Runtime(format!(
            "--procs {procs} needs {tasks} more processes or threads, but this user may start only {headroom} \
             (RLIMIT_NPROC {limit}, {running} running); lower --procs"
        )));
    }
    if args.mode == Mode::Procs
        && let Some((headroom, limit)) = sysinfo::descriptor_headroom()
    {
        let per_worker = 4; // the channel pair, the rendezvous socket, slack
        if (procs as u64) * per_worker + 16 > headroom {
            return Err(Error::Runtime(format!(
                "--procs {procs} needs about {} file descriptors but only {headroom} are free (ulimit -n {limit}); \
                 lower --procs or raise ulimit -n",
                procs as u64 * per_worker + 16
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oob_targets_are_in_another_chunk() {
        let p = Partition::new(4 * 512, 2, 512);
        assert_eq!(oob_target(&p, 0), Some(1024));
        assert_eq!(oob_target(&p, 1), Some(0));
        let single = Partition::new(100, 4, 512);
        assert_eq!(oob_target(&single, 0), None);
        assert_eq!(oob_target(&single, 2), Some(0));
    }

    #[test]
    fn length_suggestions_round_up() {
        assert_eq!(suggest_len(32 << 20, Dtype::F64), "2e7");
        assert_eq!(suggest_len(1 << 20, Dtype::F32), "2e6");
    }
}
