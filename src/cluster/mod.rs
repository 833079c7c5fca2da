//! Beyond one machine: vecpar as the ranks of an MPI job (`--features mpi`).
//!
//! Under `mpirun -n R vecpar-coord …` every rank is the program. `--len` is
//! the global length, split over the ranks by whole 4 KiB pages in the
//! order of their nodes (the ranks of a node hold neighbouring shares); each
//! rank is a node-level coordinator that conducts its share with a team of
//! its own, exactly as a run on one machine does — worker processes over a
//! memfd segment of its own (`--mode procs`), threads, or its own thread
//! (`serial`, stream_mpi's layout) — or, in `--mode ranks`, computes its
//! chunk of an MPI-3 shared window its node allocates
//! ([`crate::shm::window`]) with serial mode's team of one. The conductor moves in lockstep with the other
//! ranks ([`lockstep::MpiLockstep`]): a barrier before every round, the
//! round's time the slowest rank's, decisions and validation combined.
//! Rank 0 prints the report and writes the exports; every rank exits with
//! the same code.
//!
//! What MPI cannot survive, vecpar does not pretend to: a rank that dies
//! ends the job (Open MPI here has no ULFM). A worker that dies inside a
//! rank is the rank's business, as on one machine.
#![forbid(unsafe_code)]

mod lockstep;

use std::ops::Range;
use std::time::Duration;

use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use serde::{Deserialize, Serialize};

use crate::cli::Cli;
use crate::config::{Pages, RunConfig, Share};
use crate::error::{EXIT_RUNTIME, Error};
use crate::export::OutputPlan;
use crate::fault::OnFault;
use crate::machine::cpus::format_cpu_list;
use crate::machine::{HostInfo, Machine};
use crate::output::table;
use crate::partition::Partition;
use crate::report::{CheckedBy, MpiRecord, NumaRecord, Provenance, RankRecord, RunReport};
use crate::run::placement::{Subject, Survey};
use crate::run::{Checked, OwnTeam, With};
use crate::shm::window::Window;
use crate::warnings::Warning;
use lockstep::MpiLockstep;

/// The exit code of a rank that panicked (the job is aborted with it).
const EXIT_PANIC: i32 = 101;

/// What every rank tells the others about itself at the start.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Peer {
    pub(crate) host: String,
    pub(crate) pid: u32,
    /// The world rank of its node's rank 0: the node's name.
    pub(crate) leader: usize,
    pub(crate) node_rank: usize,
    /// The CPUs it may run on.
    pub(crate) cpus: Vec<usize>,
}

/// Runs `vecpar-coord` as one rank of the MPI job `launcher` describes.
pub(crate) fn main(cli: Cli, plan: OutputPlan, arguments: Vec<String>, launcher: (&'static str, u64)) -> u8 {
    // A step this MPI cannot join would end in MPI_Init's own banner.
    let library = mpi::environment::library_version().unwrap_or_default();
    if let Some(message) =
        crate::launcher::pmi_mismatch(|n| std::env::var(n).ok(), &library, open_mpi_speaks_pmi(&library))
    {
        if crate::launcher::rank_from_environment().unwrap_or(0) == 0 {
            crate::diag::error(message);
        }
        return crate::error::EXIT_USAGE;
    }
    let Some((universe, _)) = mpi::initialize_with_threading(mpi::Threading::Funneled) else {
        crate::diag::error("MPI was initialised already");
        return EXIT_RUNTIME;
    };
    // A panic would unwind into MPI_Finalize, which waits for ranks that
    // wait for this one: the job would hang. It ends the job instead — from
    // the thread that initialised MPI, the only one that may call it
    // (FUNNELED). A panic on another thread (a worker thread in threads
    // mode) is its owner's to catch and report, as on one machine.
    let mpi_thread = std::thread::current().id();
    std::panic::set_hook(Box::new(move |info| {
        // One line, as a worker's panic is (no backtrace, whatever
        // RUST_BACKTRACE says): the job's end is what matters.
        crate::diag::line("panicked", crate::diag::panic_message(info));
        if std::thread::current().id() == mpi_thread {
            crate::signals::stop_children();
            crate::shm::window::abort_job(EXIT_PANIC);
        }
    }));
    let code = {
        let world = universe.world();
        job(&world, cli, plan, arguments, launcher)
    };
    let _ = std::panic::take_hook(); // MPI_Abort is for before MPI_Finalize
    drop(universe); // MPI_Finalize, after every communicator is gone
    code
}

/// One rank's part of the job; returns the job's exit code.
fn job(
    world: &SimpleCommunicator,
    cli: Cli,
    plan: OutputPlan,
    arguments: Vec<String>,
    launcher: (&'static str, u64),
) -> u8 {
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    if launcher.1 > 1 && size == 1 {
        // Each rank is a job of one: only the launcher's rank 0 says so.
        if crate::launcher::rank_from_environment().unwrap_or(0) == 0 {
            crate::diag::error(format!(
                "started by a launcher as one of {} ranks ({}={}) but MPI sees a job of 1 rank: this vecpar-coord \
                 was built against another MPI library than the launcher's (e.g. MPICH under Open MPI's mpirun); \
                 rebuild it against the launcher's MPI",
                launcher.1, launcher.0, launcher.1
            ));
        }
        return EXIT_RUNTIME;
    }
    let node = world.split_shared(rank as i32);
    let (node_rank, node_size) = (node.rank() as usize, node.size() as usize);
    let mut leader = rank as i32;
    node.all_reduce_into(&(rank as i32), &mut leader, SystemOperation::min());

    let mut machine = Machine::detect();
    let me = Peer {
        host: crate::machine::host::hostname(),
        pid: std::process::id(),
        leader: leader as usize,
        node_rank,
        cpus: machine.allowed_cpus.clone(),
    };
    let peers = lockstep::all_gather_json(world, &me);
    let shared = SharedCpus::of(&peers, rank, node_size);
    if let Some(share) = &shared {
        machine.allowed_cpus = share.mine.clone();
    }

    // The global order: nodes by leader, then node rank.
    let mut order: Vec<usize> = (0..size).collect();
    order.sort_by_key(|&r| (peers[r].leader, peers[r].node_rank));
    let position = order.iter().position(|&r| r == rank).expect("every rank is in the order");
    let mut leaders: Vec<usize> = order.iter().map(|&r| peers[r].leader).collect();
    leaders.dedup();
    let ranks_per_node: Vec<usize> = leaders.iter().map(|&l| peers.iter().filter(|p| p.leader == l).count()).collect();

    let global_len = cli.run.len;
    let page_elems = 4096 / cli.run.dtype.size();
    let slices = Partition::new(global_len, size, page_elems);
    let mine = slices.chunk(position);

    // The node's ranks hold neighbouring shares; the window is node-relative.
    let node_start = slices.chunk(position - node_rank).start;
    let node_chunks: Vec<Range<usize>> = (0..node_size)
        .map(|nr| slices.chunk(position - node_rank + nr))
        .map(|c| c.start - node_start..c.end - node_start)
        .collect();
    let node_elems = node_chunks.last().map_or(0, |c| c.end);

    // Resolve this rank's share; every rank learns whether all could.
    let library = library_name(&mpi::environment::library_version().unwrap_or_default());
    let resolved = resolve(&cli, &machine, &slices, size, node_size, &mine)
        .and_then(|cfg| window_fits(&cfg, &library, cli.run.len, node_elems).map(|()| cfg));
    let exports = match (&resolved, rank) {
        (Ok(_), 0) => plan.open_exports(),
        _ => Ok(Vec::new()),
    };
    let failure = resolved.as_ref().err().or(exports.as_ref().err()).map(Error::exit_code);
    if let Some(code) = agree_failure(world, failure) {
        // Ranks usually fail alike: the lowest rank that failed says it.
        let speaker = lowest_failed(world, failure.is_some());
        if let (Some(e), true) = (resolved.err().or(exports.err()), speaker == rank) {
            crate::output::present::report_error(e);
        }
        return code;
    }
    let cfg = resolved.expect("checked");
    let mut extra = Vec::new();
    if let Some(share) = &shared {
        extra.push(Warning::RanksShareCpus { ranks: node_size, share: format_cpu_list(&share.mine) });
    }
    let mut exports = exports.expect("checked");
    let window = if cfg.mode().is_rank() {
        match Window::allocate(&node, cfg.dtype(), node_chunks, node_rank) {
            Ok(w) => Some(w),
            Err(e) => {
                crate::diag::error(format!("--mode ranks: {e}"));
                exports.clear(); // removes the unfinished files
                crate::shm::window::abort_job(i32::from(EXIT_RUNTIME));
            }
        }
    } else {
        None
    };
    let faults = cfg.faults().iter().filter(|f| f.rank == Some(rank)).copied().collect();
    let about = Provenance::new("run", arguments, HostInfo::of(&machine));
    // A rank's own hung worker is declared after --timeout, and each retry
    // may take as long again; its workers' start, at first and for each
    // replacement, may take the start-up patience (never under 30 s,
    // whatever --timeout says): the others outwait all of that.
    let retries = match cfg.on_fault() {
        OnFault::Retry(n) => n,
        OnFault::Fail => 0,
    };
    let patience = cfg.timeout() * (retries + 2) + cfg.start_up_patience() * (retries + 1) + Duration::from_secs(5);
    // Where each rank's share begins, by rank: a mismatch is its owner's.
    let starts: Vec<(u64, usize)> =
        order.iter().enumerate().map(|(pos, &r)| (slices.chunk(pos).start as u64, r)).collect();
    let mut lockstep = MpiLockstep::new(world, global_len as u64, &peers, patience, faults, starts);

    lockstep.note_losses_at_signals();
    lockstep.window = window.as_ref();
    // From here a watched collective may end the job: it removes the
    // unfinished exports as it does.
    *lockstep.exports.get_mut() = exports;
    // Where each rank's part of the window is meant to be (the node of its
    // CPU under `local`, or of where it runs now when it is not pinned; the
    // node of `node:N`): the rank that checks a part also asks the kernel
    // where its pages are. Every rank of a ranks job takes part, NUMA
    // machine or not.
    let (cfg, meant): (RunConfig, Vec<Option<usize>>) = match &window {
        Some(_) => {
            let cfg = cfg.with_unpinned_node(crate::shm::numa::current_node());
            let mine = cfg.memory().intended.first().copied().flatten();
            let meant = lockstep.exchange_json(&mine, "to learn where each rank's part of the window belongs");
            (cfg, meant)
        }
        None => (cfg, Vec::new()),
    };
    let view = window.as_ref().map(Window::view);
    let team = match (&window, &view) {
        (Some(w), Some(view)) => match crate::run::serial::SerialTeam::over(&cfg, w.chunk()) {
            Ok(t) => {
                // Each rank checks the next node rank's chunk: never its own,
                // unless it is alone on its node.
                let next = (node_rank + 1) % node_size;
                let part = w.chunks()[next].clone();
                let checked = Checked {
                    view: *view,
                    range: part.clone(),
                    base: node_start as u64,
                    by: CheckedBy::NeighbourRank { alone: ranks_per_node.iter().filter(|&&n| n == 1).count() },
                };
                let pages = Pages { bytes: 4096, reason: "the node's MPI shared window, page-aligned".into() };
                let survey = cfg.memory().numa.then(|| {
                    let owner = order[position - node_rank + next];
                    let node_bytes = node_elems * cfg.dtype().size();
                    let subject = Subject::WindowPart { rank: owner, intended: meant[owner], by: rank };
                    Survey::new(view, vec![part], 4096, node_bytes).of(subject)
                });
                Some(OwnTeam { team: Box::new(t), checked, pages, survey })
            }
            Err(e) => {
                crate::output::present::report_error(e);
                lockstep.exports.get_mut().clear();
                crate::shm::window::abort_job(i32::from(EXIT_RUNTIME));
            }
        },
        _ => None,
    };
    let cfg = cfg.with_warnings(extra);
    let outcome = crate::run::run_with(&cfg, about, With { lockstep: Some(&lockstep), team });
    let report = match outcome {
        Ok(r) => r,
        Err(e) => {
            if let Error::Interrupted(i) = &e {
                lockstep.end_if_lost(i.0, "this rank was running its own step", true);
            }
            // The others wait in a collective for this rank: end the job.
            let code = e.exit_code();
            crate::output::present::report_error(e);
            lockstep.exports.get_mut().clear();
            crate::shm::window::abort_job(i32::from(code));
        }
    };
    crate::output::present::report_failures(&report, rank == 0);
    let code = lockstep.agree_code(report.exit_code);
    let record = rank_record(&report, rank, &peers[rank], &machine.allowed_cpus, &mine);
    let records = lockstep.exchange_json(&record, "to gather the report");
    if rank != 0 {
        return code;
    }
    let exports = std::mem::take(lockstep.exports.get_mut());
    let mut report = report;
    report.exit_code = code;
    let mut per_rank: Vec<RankRecord> = order.iter().map(|&r| records[r].clone()).collect();
    for r in per_rank.iter_mut().filter(|r| r.rank != 0) {
        for w in std::mem::take(&mut r.warnings) {
            if !report.warnings.contains(&w) {
                report.warnings.push(Warning::OfRank { rank: r.rank, warning: Box::new(w) });
            }
        }
    }
    if cfg.mode().is_rank() {
        give_parts_to_owners(&mut per_rank);
        report.numa = per_rank.iter().find(|r| r.rank == 0).and_then(|r| r.numa.clone());
    }
    report.mpi = Some(MpiRecord {
        library,
        launcher: launcher.0.to_string(),
        ranks: size,
        nodes: leaders.len(),
        ranks_per_node,
        per_rank,
    });
    let shown = crate::output::present::present(&report, &report.warnings, &cli.output, &plan, exports, |out, s| {
        table::write_run(out, &report, s)
    });
    match shown {
        Ok(()) => code,
        Err(e) => crate::output::present::report_error(e).max(code),
    }
}

/// Whether this process's Open MPI can join a Slurm step through PMI-1 or
/// PMI-2 (its `pmix` framework has an `s1` or `s2` component next to the
/// loaded `libmpi`), or only through PMIx (Open MPI 5 always; 4.x as
/// Debian builds it). `None` when it cannot be told.
fn open_mpi_speaks_pmi(library: &str) -> Option<bool> {
    if library.trim_start().starts_with("Open MPI v5") {
        return Some(false);
    }
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let lib = maps.lines().filter_map(|l| l.split_whitespace().nth(5)).find(|p| p.contains("/libmpi.so"))?;
    let dir = std::path::Path::new(lib).parent()?;
    // Components live in `openmpi*` below the library's directory: right
    // there, or (Debian) in `openmpi/lib/openmpi3`.
    let mut components = Vec::new();
    let mut dirs = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = dirs.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("mca_pmix_") {
                components.push(name);
            } else if depth < 3
                && (name.starts_with("openmpi") || (depth > 0 && name == "lib"))
                && entry.file_type().is_ok_and(|t| t.is_dir())
            {
                dirs.push((entry.path(), depth + 1));
            }
        }
    }
    if components.is_empty() {
        return None;
    }
    Some(components.iter().any(|c| c.starts_with("mca_pmix_s1.") || c.starts_with("mca_pmix_s2.")))
}

/// The MPI library's name as it gives it: its first line, without the NUL
/// and trailing blanks some libraries end it with (Open MPI's does), so
/// that reports stay text.
fn library_name(version: &str) -> String {
    version
        .lines()
        .next()
        .unwrap_or("")
        .trim_matches(|c: char| c == '\0' || c.is_whitespace() || c.is_control())
        .to_string()
}

/// The CPUs of this rank's node divided between the node's ranks, when
/// they were all given the same ones (mpirun `--bind-to none`, srun
/// without binding): rank k of the node takes the k-th share for its
/// default worker count and pin plan.
struct SharedCpus {
    mine: Vec<usize>,
}

impl SharedCpus {
    fn of(peers: &[Peer], rank: usize, node_size: usize) -> Option<SharedCpus> {
        let me = &peers[rank];
        let node: Vec<&Peer> = peers.iter().filter(|p| p.leader == me.leader).collect();
        if node_size < 2 || node.iter().any(|p| p.cpus != me.cpus) || me.cpus.is_empty() {
            return None; // one rank, or the launcher bound them apart
        }
        let cpus = &me.cpus;
        let mine = if cpus.len() >= node_size {
            let share = Partition::new(cpus.len(), node_size, 1).chunk(me.node_rank);
            cpus[share].to_vec()
        } else {
            vec![cpus[me.node_rank % cpus.len()]]
        };
        Some(SharedCpus { mine })
    }
}

/// This rank's configuration: its share of the global arrays, with the
/// checks that only make sense for the job as a whole.
fn resolve(
    cli: &Cli,
    machine: &Machine,
    slices: &Partition,
    size: usize,
    node_size: usize,
    mine: &Range<usize>,
) -> Result<RunConfig, Error> {
    if slices.active() < size {
        return Err(Error::usage(format!(
            "--len {}: {size} ranks need one 4 KiB page each, so at least {} elements",
            cli.run.len,
            (size - 1) * slices.page_elems() + 1
        )));
    }
    if let Some(f) = cli.run.inject_fault.iter().find(|f| f.rank.is_some_and(|r| r >= size)) {
        return Err(Error::usage(format!("--inject-fault {f}: the job has ranks 0 to {}", size - 1)));
    }
    if let Some(f) =
        cli.run.inject_fault.iter().find(|f| f.rank.is_some() && f.kind == crate::fault::FaultKind::OobWrite)
        && (!cli.run.mode.is_rank() || node_size < 2)
    {
        return Err(Error::usage(format!(
            "--inject-fault {f}: a rank's oob-write writes into a neighbour rank's part of its node's shared window: \
             use --mode ranks with two or more ranks on the node"
        )));
    }
    let mut args = cli.run.clone();
    args.len = mine.len();
    let share = Share { base: mine.start as u64, global_len: cli.run.len as u64 };
    RunConfig::resolve_share(&args, machine, Some(share))
}

/// `--mode ranks` under Open MPI: whether the node's window of
/// `node_elems` elements per array fits where Open MPI puts its backing
/// file (`osc_sm_backing_directory`: `/dev/shm` on Linux unless set, e.g.
/// by `mpirun --mca`, which reaches the ranks as `OMPI_MCA_…`). Without
/// this, a window that does not fit ends the job in the library's own
/// abort. tmpfs gives pages as they are touched, so only the window is
/// counted; a directory this process cannot write to is left to the
/// library.
fn window_fits(cfg: &RunConfig, library: &str, len: usize, node_elems: usize) -> Result<(), Error> {
    if !cfg.mode().is_rank() || !library.trim_start().starts_with("Open MPI") {
        return Ok(());
    }
    let (dir, how) = match std::env::var("OMPI_MCA_osc_sm_backing_directory") {
        Ok(dir) => (dir, "its osc_sm_backing_directory"),
        Err(_) => ("/dev/shm".to_string(), "Open MPI's osc_sm_backing_directory on Linux"),
    };
    let writable = nix::unistd::access(dir.as_str(), nix::unistd::AccessFlags::W_OK).is_ok();
    let Ok(st) = nix::sys::statvfs::statvfs(dir.as_str()) else {
        return Ok(());
    };
    if !writable {
        return Ok(());
    }
    let free = st.blocks_available() * st.fragment_size();
    let needed = crate::shm::window::window_bytes(cfg.dtype(), node_elems).map_or(u64::MAX, |(_, all)| all as u64);
    if needed <= free {
        return Ok(());
    }
    Err(Error::runtime(format!(
        "--mode ranks: this node's part of --len {len} needs {} for the MPI window in {dir} ({how}), but only {} \
         is free there; lower --len, spread the ranks over more nodes, or give the window room: enlarge {dir} \
         (e.g. docker run --shm-size) or point mpirun --mca osc_sm_backing_directory at a larger local file system",
        crate::units::human_bytes(needed),
        crate::units::human_bytes(free)
    )))
}

/// The largest exit code of the ranks that failed, if any did (collective).
fn agree_failure(world: &SimpleCommunicator, mine: Option<u8>) -> Option<u8> {
    let mut worst = 0u32;
    world.all_reduce_into(&mine.map_or(0, u32::from), &mut worst, SystemOperation::max());
    // A failure with exit code 0 cannot happen; 0 means none.
    (worst > 0).then_some(worst as u8)
}

/// The lowest rank that failed (collective).
fn lowest_failed(world: &SimpleCommunicator, failed: bool) -> usize {
    let me = if failed { world.rank() } else { i32::MAX };
    let mut lowest = i32::MAX;
    world.all_reduce_into(&me, &mut lowest, SystemOperation::min());
    lowest as usize
}

/// In `--mode ranks` each rank asked where the pages of the part of the
/// window it checks are: each part's placement goes to the rank that
/// computes it, with the nodes that rank itself ran on.
fn give_parts_to_owners(per_rank: &mut [RankRecord]) {
    let asked: Vec<Option<NumaRecord>> = per_rank.iter_mut().map(|r| r.numa.take()).collect();
    let ran_on: Vec<Vec<Vec<usize>>> =
        asked.iter().map(|n| n.as_ref().map(|n| n.ran_on.clone()).unwrap_or_default()).collect();
    for mut n in asked.into_iter().flatten() {
        let Some(part) = n.window_part else { continue };
        if let Some(owner) = per_rank.iter().position(|r| r.rank == part.rank) {
            n.ran_on = ran_on[owner].clone();
            per_rank[owner].numa = Some(n);
        }
    }
}

/// What rank 0's report says about this rank.
fn rank_record(report: &RunReport, rank: usize, me: &Peer, cpus: &[usize], mine: &Range<usize>) -> RankRecord {
    let compute: Vec<f64> = report
        .kernels
        .first()
        .map(|k| k.runs.iter().map(|r| r.worker_seconds.iter().copied().fold(0.0, f64::max)).collect())
        .unwrap_or_default();
    RankRecord {
        rank,
        host: me.host.clone(),
        node: me.leader,
        node_rank: me.node_rank,
        pid: me.pid,
        start: mine.start as u64,
        end: mine.end as u64,
        cpus: format_cpu_list(cpus),
        median_compute_s: crate::stats::median(&compute),
        phases: report.phases.clone(),
        workers: report.workers.clone(),
        faults: report.faults.clone(),
        retries: report.retries.clone(),
        exit_code: report.exit_code,
        warnings: report.warnings.iter().filter(|w| !w.is_note()).cloned().collect(),
        numa: report.numa.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_window_part_goes_to_the_rank_that_computes_it() {
        let topology = crate::machine::Topology::detect();
        let part = |rank, by, ran: usize| NumaRecord {
            topology: topology.clone(),
            control_node: None,
            sampled_every: 1,
            after_init: None,
            after_run: Some(vec![crate::machine::numa::WorkerPlacement::new(rank, Some(rank), Default::default())]),
            ran_on: vec![vec![ran]],
            balancing: false,
            window_part: Some(crate::report::WindowPart { rank, surveyed_by: by }),
        };
        let record = |rank, numa| RankRecord {
            rank,
            host: "h".into(),
            node: 0,
            node_rank: rank,
            pid: 1,
            start: 0,
            end: 0,
            cpus: String::new(),
            median_compute_s: None,
            phases: Default::default(),
            workers: Vec::new(),
            faults: Vec::new(),
            retries: Vec::new(),
            exit_code: 0,
            warnings: Vec::new(),
            numa: Some(numa),
        };
        // Rank 0 asked about rank 1's part, rank 1 about rank 0's; each ran
        // on its own node.
        let mut per_rank = vec![record(0, part(1, 0, 0)), record(1, part(0, 1, 1))];
        give_parts_to_owners(&mut per_rank);
        for (r, record) in per_rank.iter().enumerate() {
            let numa = record.numa.as_ref().unwrap();
            assert_eq!(numa.window_part, Some(crate::report::WindowPart { rank: r, surveyed_by: 1 - r }));
            assert_eq!(numa.after_run.as_ref().unwrap()[0].worker, r);
            assert_eq!(numa.ran_on, vec![vec![r]], "the owner's own nodes");
        }
    }

    #[test]
    fn the_library_name_is_text() {
        let open_mpi = "Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4, repo rev: v4.1.4, May 26, 2022\0";
        assert_eq!(
            library_name(open_mpi),
            "Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4, repo rev: v4.1.4, May 26, 2022"
        );
        assert_eq!(library_name("MPICH Version: 4.0 \n more"), "MPICH Version: 4.0");
        assert_eq!(library_name(""), "");
    }
}
