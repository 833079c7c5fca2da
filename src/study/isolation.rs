//! Running the isolation experiment: every fault, in processes and in
//! threads, each in a child run of `vecpar-coord` (a thread's fault may take
//! its whole process down, so the experiment cannot run in this one).
//!
//! Each (mode, fault) runs twice: with `--on-fault fail`, to see what the
//! fault does, and with `--on-fault retry`, to see what can be recovered.
//! A child dies with the experiment (`PR_SET_PDEATHSIG`, asked for through
//! [`signals::PARENT_ENV`]) and is stopped with it on a signal; a child
//! whose failure the injected fault does not explain stops the experiment
//! with that child's own error.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{IsolationArgs, IsolationMode};
use crate::error::Error;
use crate::fault::{ENDINGS_ENV, Ending, FaultKind};
use crate::machine::{HostInfo, Machine};
use crate::report::isolation::{Child, IsolationReport, explains, row, summarise};
use crate::report::{Provenance, RunReport};
use crate::signals::{self, ChildGuard, ChildKind};
use crate::vocab::Mode;

/// Runs the experiment. `each` is told before every child run.
pub(crate) fn run(
    args: &IsolationArgs,
    machine: &Machine,
    arguments: Vec<String>,
    mut each: impl FnMut(usize, usize, &str),
) -> Result<IsolationReport, Error> {
    crate::config::check_isolation(args)?;
    let exe = std::env::current_exe().map_err(|e| Error::runtime_from("cannot locate vecpar-coord", e))?;
    // The worker binary the children use: the one this run would use
    // (VECPAR_WORKER included).
    let worker =
        crate::config::find_worker(std::env::var_os("VECPAR_WORKER").as_deref().map(std::path::Path::new)).ok();
    let layouts: Vec<Layout> = args
        .modes
        .iter()
        .flat_map(|m| match m {
            IsolationMode::Procs => vec![Layout::One(Mode::Procs)],
            IsolationMode::Threads => vec![Layout::One(Mode::Threads)],
            #[cfg(feature = "mpi")]
            IsolationMode::Mpi => vec![Layout::MpiProcs, Layout::MpiRank],
            #[cfg(not(feature = "mpi"))]
            IsolationMode::Mpi => vec![], // refused by check_isolation
        })
        .collect();
    let mpirun = if layouts.iter().any(|l| l.ranks().is_some()) { Some(find_mpirun()?) } else { None };
    let faults = args.fault_kinds();
    let total = layouts.len() * faults.len() * 2;
    let mut rows = Vec::new();
    let mut step = 0;
    for &layout in &layouts {
        let mode = layout.mode();
        for fault in &faults {
            let kind = *fault;
            let mut child = |retry: bool| -> Result<Child, Error> {
                each(step, total, &format!("{} × {kind}{}", layout.name(), if retry { ", retry" } else { "" }));
                step += 1;
                let c = run_child(&exe, worker.as_deref(), mpirun.as_deref(), args, layout, kind, retry)?;
                explains(mode, kind, retry, &c).map_err(|why| {
                    Error::runtime(format!(
                        "the {} run with {kind} injected{} did not fail because of the fault: {why}",
                        layout.name(),
                        if retry { " (with retry)" } else { "" }
                    ))
                })?;
                Ok(c)
            };
            let fail_run = child(false)?.outcome();
            let retry_run = child(true)?.outcome();
            rows.push(row(mode, layout.ranks(), kind, fail_run, retry_run));
        }
    }
    let summary = summarise(&rows, args.timeout);
    Ok(IsolationReport {
        about: Provenance::new("isolation", arguments, HostInfo::of(machine)),
        procs: args.procs,
        len: args.len,
        timeout_s: args.timeout,
        rows,
        summary,
    })
}

/// Where a fault is injected: a run on its own, or an MPI job of
/// [`MPI_RANKS`] ranks with worker processes inside each rank (the fault in
/// worker 1 of every rank) or in `--mode ranks` (the fault in rank 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    One(Mode),
    #[cfg(feature = "mpi")]
    MpiProcs,
    #[cfg(feature = "mpi")]
    MpiRank,
}

/// The ranks of the experiment's MPI jobs.
const MPI_RANKS: usize = 2;

impl Layout {
    fn mode(self) -> Mode {
        match self {
            Layout::One(m) => m,
            #[cfg(feature = "mpi")]
            Layout::MpiProcs => Mode::Procs,
            #[cfg(feature = "mpi")]
            Layout::MpiRank => Mode::Ranks,
        }
    }

    fn ranks(self) -> Option<usize> {
        (!matches!(self, Layout::One(_))).then_some(MPI_RANKS)
    }

    fn name(self) -> String {
        match self {
            Layout::One(m) => m.to_string(),
            #[cfg(feature = "mpi")]
            Layout::MpiProcs => format!("mpirun -n {MPI_RANKS} × procs"),
            #[cfg(feature = "mpi")]
            Layout::MpiRank => format!("mpirun -n {MPI_RANKS} × ranks"),
        }
    }
}

/// `mpirun` on the PATH, for `--modes mpi`.
fn find_mpirun() -> Result<std::path::PathBuf, Error> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join("mpirun")).find(|p| p.is_file()).ok_or_else(|| {
        Error::usage("--modes mpi: mpirun is not on the PATH (Debian: apt-get install openmpi-bin); or leave mpi out")
    })
}

fn run_child(
    exe: &std::path::Path,
    worker: Option<&std::path::Path>,
    mpirun: Option<&std::path::Path>,
    args: &IsolationArgs,
    layout: Layout,
    kind: FaultKind,
    retry: bool,
) -> Result<Child, Error> {
    let mode = layout.mode();
    let mut cmd = match (layout.ranks(), mpirun) {
        (Some(ranks), Some(mpirun)) => {
            let mut cmd = Command::new(mpirun);
            cmd.args(["-n", &ranks.to_string(), "--bind-to", "none", "--oversubscribe", "-x", ENDINGS_ENV]);
            if nix::unistd::geteuid().is_root() {
                cmd.arg("--allow-run-as-root"); // the experiment already runs as root
            }
            cmd.arg(exe).env_remove(signals::PARENT_ENV);
            cmd
        }
        _ => {
            let mut cmd = Command::new(exe);
            // A run on its own dies with the experiment; an MPI job's ranks
            // are mpirun's children, which ends them when it is stopped.
            cmd.env(signals::PARENT_ENV, std::process::id().to_string());
            cmd
        }
    };
    // Every child says how it ended, typed, when it can write no report.
    cmd.env(ENDINGS_ENV, "1");
    let (fault, procs) = match layout {
        #[cfg(feature = "mpi")]
        Layout::MpiRank => (format!("rank:1:{kind}@1"), "1".to_string()),
        _ => (format!("1:{kind}@1"), args.procs.to_string()),
    };
    cmd.args(["--mode", mode.name(), "--procs", &procs, "--len", &args.len.to_string()])
        .args(["--runs", "3", "--warmup", "1", "--timeout", &args.timeout.to_string()])
        .args(["--inject-fault", &fault, "--on-fault", if retry { "retry" } else { "fail" }])
        .args(["--export-json", "-", "--quiet", "--color", "never"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(w) = worker.filter(|_| !mode.is_rank()) {
        cmd.arg("--worker-bin").arg(w);
    }
    let mut child = signals::with_no_signal_blocked(|| cmd.spawn())
        .map_err(|e| Error::runtime_from("cannot start a child run", e))?;
    let _registered = ChildGuard::register(child.id(), ChildKind::Coordinator);
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let status = loop {
        if let Err(i) = signals::check() {
            stop_child(&mut child);
            return Err(i.into());
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                stop_child(&mut child);
                return Err(Error::runtime_from("cannot wait for a child run", e));
            }
        }
    };
    let (out, err) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    // Whatever the child run left (its orphans came to this process).
    signals::reap_strays();
    let report: Option<RunReport> = serde_json::from_slice(&out).ok();
    let stderr = String::from_utf8_lossy(&err);
    // Of an MPI job, what a rank of vecpar said (mpirun's own banner follows).
    let ours = |l: &&str| layout.ranks().is_none() || l.starts_with("vecpar-coord");
    Ok(Child {
        code: status.code(),
        signal: status.signal(),
        report,
        last_words: stderr
            .lines()
            .filter(ours)
            .filter(|l| Ending::of_line(l).is_none())
            .rfind(|l| !l.trim().is_empty())
            .map(str::to_string),
        ending: stderr.lines().find_map(Ending::of_line),
        ranks: layout.ranks(),
    })
}

/// Stops a child run: SIGTERM to its group, so that it stops its own
/// workers, then SIGKILL if it is still there after a few seconds.
fn stop_child(child: &mut std::process::Child) {
    let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
    let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
}
