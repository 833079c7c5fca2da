//! Running a measurement: the segment, a team, the conductor, the report.
//!
//! [`run`] creates the segment, starts a team — worker processes
//! ([`procs`]), persistent threads ([`threads`]) or this thread
//! ([`serial`]) — and hands it to the [`conductor::Conductor`], which does
//! the same steps in every mode. All three teams run the same
//! [`crate::worker::Executor`] on the same partition, so the only
//! difference between the modes is what a worker is made of — which is the
//! comparison vecpar exists for.
//!
//! Whatever ends the run — success, a lost worker, an error, a signal — the
//! team is shut down and every worker reaped before [`run`] returns (a
//! [`procs`] member kills its process group on drop).
#![forbid(unsafe_code)]

pub(crate) mod check;
mod conductor;
mod failure;
pub(crate) mod lockstep;
pub(crate) mod placement;
mod procs;
pub(crate) mod serial;
pub(crate) mod team;
mod threads;
mod verdict;

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use crate::config::{Pages, RunConfig};
use crate::error::Error;
use crate::kernel::Position;
use crate::machine::cgroup::Cgroups;
use crate::machine::{HostInfo, Machine};
use crate::partition::Partition;
use crate::protocol::{Assignment, InjectedFault};
use crate::report::{CheckedBy, Phases, Provenance, RunReport, ThrottleRecord};
use crate::shm::{ArraysView, ReadArrays, Segment, ShmError};
use crate::signals;
use crate::vocab::{Backend, HugePages, Mode};
use crate::warnings::Warning;
use lockstep::Lockstep;
pub(crate) use team::Team;

/// The assignment of worker `id` (its `attempt`), as every team starts it;
/// a replacement first brings its chunk to `rebuild`.
pub(crate) fn assignment(
    cfg: &RunConfig,
    partition: &Partition,
    id: usize,
    attempt: u32,
    rebuild: Option<Position>,
) -> Assignment {
    let range = partition.chunk(id);
    let faults: Vec<InjectedFault> = if attempt == 0 {
        cfg.faults()
            .iter()
            .filter(|f| f.rank.is_none() && f.worker == id)
            .map(|f| InjectedFault { kind: f.kind, round: f.round })
            .collect()
    } else {
        Vec::new() // injected faults fire on the first attempt only
    };
    let oob =
        faults.iter().any(|f| f.kind == crate::fault::FaultKind::OobWrite).then(|| partition.oob_target(id)).flatten();
    Assignment {
        version: crate::VERSION.into(),
        id: id as u32,
        attempt,
        start: range.start as u64,
        end: range.end as u64,
        len: cfg.len() as u64,
        base: cfg.share().base,
        dtype: cfg.dtype(),
        ops: cfg.ops().to_vec(),
        rounds_per_kernel: cfg.rounds_per_kernel(),
        simd: cfg.simd(),
        stores: cfg.stores(),
        stores_auto: cfg.stores_auto(),
        seed: cfg.seed(),
        pin: cfg.placement().pin_plan.get(id).copied().flatten().map(|c| c as u32),
        sync: cfg.sync(),
        spin_us: cfg.placement().worker_spin.as_micros() as u32,
        faults,
        oob_target: oob,
        rebuild,
        memory: cfg.memory().binding(id),
    }
}

/// Runs one measurement and reports it. Lost workers and failed validation
/// are part of the report (and its exit code); `Err` means there is no
/// report: the run could not start or go on, or a signal stopped it.
pub fn run(config: &RunConfig) -> Result<RunReport, Error> {
    let about = Provenance::new("run", Vec::new(), HostInfo::of(&Machine::detect()));
    run_with(config, about, With::default())
}

/// The arrays a run checks, and who checks them.
pub(crate) struct Checked<'v> {
    /// A read-only view of the arrays.
    pub(crate) view: ArraysView<'v>,
    /// The elements of the view to check.
    pub(crate) range: Range<usize>,
    /// The global index of the view's element 0.
    pub(crate) base: u64,
    /// Who checks them, for the report.
    pub(crate) by: CheckedBy,
}

/// What a run that is one rank of an MPI job brings to [`run_with`].
#[derive(Default)]
pub(crate) struct With<'w> {
    /// The ranks it moves in step with.
    pub(crate) lockstep: Option<&'w dyn Lockstep>,
    /// For `--mode ranks`: the team, over memory of its own (an MPI shared
    /// window) instead of a segment.
    pub(crate) team: Option<OwnTeam<'w>>,
}

/// A team over memory of its own (`--mode ranks`: a rank over its node's
/// MPI shared window).
pub(crate) struct OwnTeam<'w> {
    pub(crate) team: Box<dyn Team + 'w>,
    /// The part of the memory this run checks.
    pub(crate) checked: Checked<'w>,
    pub(crate) pages: Pages,
    /// Where this run asks where pages are (a NUMA machine).
    pub(crate) survey: Option<placement::Survey<'w>>,
}

/// [`run`], in step with other runs and with a team of its own, as `with`
/// says.
pub(crate) fn run_with(cfg: &RunConfig, about: Provenance, with: With<'_>) -> Result<RunReport, Error> {
    let started = Instant::now();
    let mut phases = Phases::default();
    let mut warnings = cfg.warnings().to_vec();
    if let Some(OwnTeam { team, checked, pages, survey }) = with.team {
        let launched = Launched { team, lost: Vec::new(), checked, pages, survey, control_node: None };
        return conduct(cfg, about, warnings, launched, with.lockstep, (started, started), phases);
    }
    if cfg.shm() == Backend::Posix {
        let swept = crate::shm::sweep_stale();
        if !swept.removed.is_empty() {
            warnings.push(Warning::StaleSegmentsRemoved { names: swept.removed });
        }
    }
    let (segment, pages) = create_segment(cfg)?;
    if pages.bytes != cfg.page_bytes() {
        warnings.push(Warning::HugePagesRanOut);
    }
    let segment = Arc::new(segment);
    let read: ReadArrays = segment.read_arrays()?;
    phases.setup_s = started.elapsed().as_secs_f64();

    let t = Instant::now();
    signals::check()?;
    let pid = std::process::id();
    let threads = cfg.check_threads();
    let (team, lost, by): (Box<dyn Team>, Vec<team::Lost>, CheckedBy) = match cfg.mode() {
        Mode::Procs => {
            let (t, l) = procs::ProcTeam::start(cfg, Arc::clone(&segment))?;
            (Box::new(t), l, CheckedBy::Coordinator { pid, threads })
        }
        Mode::Threads => {
            let (t, l) = threads::ThreadTeam::start(cfg, Arc::clone(&segment))?;
            (Box::new(t), l, CheckedBy::SameProcess { pid, threads })
        }
        Mode::Serial => {
            (Box::new(serial::SerialTeam::start(cfg, &segment)?), Vec::new(), CheckedBy::SameProcess { pid, threads })
        }
        #[cfg(feature = "mpi")]
        Mode::Ranks => {
            return Err(Error::usage(
                "--mode ranks: MPI ranks over a shared window; run it under mpirun, in a build with --features mpi",
            ));
        }
    };
    let checked = Checked { view: read.view(), range: 0..cfg.len(), base: cfg.share().base, by };
    let survey = cfg.memory().numa.then(|| {
        let layout = segment.layout();
        let partition = cfg.partition(pages.bytes);
        let chunks = (0..cfg.procs()).map(|id| partition.chunk(id)).collect();
        placement::Survey::new(&read, chunks, pages.bytes, layout.array_bytes)
    });
    let control_node = if cfg.memory().numa { segment.control_node() } else { None };
    let launched = Launched { team, lost, checked, pages, survey, control_node };
    let report = conduct(cfg, about, warnings, launched, with.lockstep, (started, t), phases);
    drop(read);
    drop(segment);
    report
}

/// A team just started: the team, the workers it lost while starting, the
/// arrays the run checks, and the pages they got.
struct Launched<'t> {
    team: Box<dyn Team + 't>,
    lost: Vec<team::Lost>,
    checked: Checked<'t>,
    pages: Pages,
    /// Where the coordinator asks where pages are (a NUMA machine).
    survey: Option<placement::Survey<'t>>,
    /// The node of the header and control block.
    control_node: Option<usize>,
}

/// Conducts the run on the team `launched` (the run began at `started`,
/// the team at `t`), then tears it down and reports.
fn conduct(
    cfg: &RunConfig,
    about: Provenance,
    warnings: Vec<Warning>,
    launched: Launched<'_>,
    lockstep: Option<&dyn Lockstep>,
    (started, t): (Instant, Instant),
    mut phases: Phases,
) -> Result<RunReport, Error> {
    let Launched { mut team, lost, checked, pages, survey, control_node } = launched;
    let cgroups = Cgroups::detect();
    let throttled_before = cgroups.throttling();
    let mut conductor = conductor::Conductor::new(cfg, pages.bytes, warnings, checked);
    if let Some(l) = lockstep {
        conductor = conductor.in_lockstep(l);
    }
    let mut ok = conductor.started(team.as_mut(), lost, t)?;
    phases.spawn_s = t.elapsed().as_secs_f64();

    if ok {
        let t = Instant::now();
        ok = conductor.init(team.as_mut())?;
        phases.init_s = t.elapsed().as_secs_f64();
    }
    // Where the pages went: asked once they are filled (not timed as part
    // of any phase), and again after the last round.
    let mut placement_error = None;
    let after_init = match (&survey, ok) {
        (Some(s), true) => s.nodes().map_err(|e| placement_error = Some(e)).ok(),
        _ => None,
    };
    if ok {
        let mut timing = (0.0, 0.0);
        conductor.kernels(team.as_mut(), &mut timing)?;
        (phases.rounds_s, phases.validate_s) = timing;
    }

    let after_run = match (&survey, &after_init) {
        (Some(s), Some(_)) => s.nodes().map_err(|e| placement_error = Some(e)).ok(),
        _ => None,
    };

    let t = Instant::now();
    team.shutdown();
    let workers = conductor.worker_records(team.as_ref());
    drop(team);
    phases.teardown_s = t.elapsed().as_secs_f64();
    phases.total_s = started.elapsed().as_secs_f64();

    let numa = survey.map(|s| {
        // An unpinned worker under `local` bound its chunk to the node it
        // ran on at the time: that is the node it was meant for.
        let intended: Vec<Option<usize>> = (0..cfg.procs())
            .map(|id| {
                cfg.memory().intended.get(id).copied().flatten().or_else(|| {
                    (cfg.memory().policy == crate::machine::numa::MemPolicy::Local)
                        .then(|| conductor.bound.get(id).and_then(|b| b.node).map(|n| n as usize))
                        .flatten()
                })
            })
            .collect();
        let refused = conductor.bound.iter().filter_map(|b| b.refused).next();
        if let Some(errno) = refused {
            conductor.warnings.push(Warning::PlacementUnknown {
                why: format!(
                    "the kernel refused to bind pages to nodes (mbind: {}); they went where the process's policy put them",
                    nix::errno::Errno::from_raw(errno).desc()
                ),
            });
        }
        if let Some(why) = placement_error.take() {
            conductor.warnings.push(Warning::PlacementUnknown { why });
        }
        let cpus_seen: Vec<Vec<u32>> = workers.iter().map(|w| w.cpus_seen.clone()).collect();
        let found = placement::findings(
            cfg,
            &crate::machine::Topology::detect(),
            &s,
            &intended,
            (after_init, after_run),
            &cpus_seen,
            control_node,
        );
        conductor.warnings.extend(found.warnings);
        found.record
    });

    let throttling = match (throttled_before, cgroups.throttling()) {
        (Some(before), Some(after)) => Some(ThrottleRecord::between(&before, &after)),
        _ => None,
    };
    if let Some(t) = throttling.as_ref().filter(|t| t.periods > 0) {
        conductor.warnings.push(Warning::Throttled {
            workers: cfg.procs(),
            periods: t.periods,
            throttled_us: t.throttled_us,
            file: t.file.clone(),
        });
    }
    let exit_code = conductor.exit_code();
    Ok(RunReport {
        about,
        coordinator_pid: std::process::id(),
        config: cfg.record(&pages),
        kernels: conductor.kernels,
        phases,
        workers,
        faults: conductor.faults,
        retries: conductor.retries,
        throttling,
        warnings: conductor.warnings,
        exit_code,
        numa,
        #[cfg(feature = "mpi")]
        mpi: None,
    })
}

/// Creates the segment, and says which pages it got: under `--huge-pages
/// auto` it falls back to base pages when the hugetlb pool ran out since
/// the run was planned (another process took the pages).
fn create_segment(cfg: &RunConfig) -> Result<(Segment, Pages), Error> {
    let planned = cfg.planned_pages();
    let control = cfg.memory().control_binding();
    match Segment::create_placed(cfg.shm(), cfg.dtype(), cfg.len(), cfg.procs(), planned.bytes, &control) {
        Ok(segment) => Ok((segment, planned)),
        Err(ShmError::HugePagesExhausted) if cfg.pages() == HugePages::Auto => {
            let base = crate::machine::page_size();
            let segment = Segment::create_placed(cfg.shm(), cfg.dtype(), cfg.len(), cfg.procs(), base, &control)?;
            Ok((segment, Pages { bytes: base, reason: "base pages (the hugetlb pool ran out while reserving)".into() }))
        }
        Err(ShmError::HugePagesExhausted) => Err(Error::runtime(
            "--huge-pages always: the hugetlb pool ran out while reserving the segment (another process took the pages)",
        )),
        Err(e) => Err(e.into()),
    }
}
