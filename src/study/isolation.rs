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

use crate::cli::IsolationArgs;
use crate::error::Error;
use crate::fault::FaultKind;
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
    // The worker binary the children use: the one this run would use.
    let worker = crate::config::find_worker(None).ok();
    let total = args.modes.len() * args.faults.len() * 2;
    let mut rows = Vec::new();
    let mut step = 0;
    for mode in args.modes.iter().map(|m| m.mode()) {
        for fault in &args.faults {
            let kind = fault.kind();
            let mut child = |retry: bool| -> Result<Child, Error> {
                each(step, total, &format!("{mode} × {kind}{}", if retry { ", retry" } else { "" }));
                step += 1;
                let c = run_child(&exe, worker.as_deref(), args, mode, kind, retry)?;
                explains(mode, kind, retry, &c).map_err(|why| {
                    Error::runtime(format!(
                        "the {mode} run with {kind} injected{} did not fail because of the fault: {why}",
                        if retry { " (with retry)" } else { "" }
                    ))
                })?;
                Ok(c)
            };
            let fail_run = child(false)?.outcome();
            let retry_run = child(true)?.outcome();
            rows.push(row(mode, kind, fail_run, retry_run));
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

fn run_child(
    exe: &std::path::Path,
    worker: Option<&std::path::Path>,
    args: &IsolationArgs,
    mode: Mode,
    kind: FaultKind,
    retry: bool,
) -> Result<Child, Error> {
    let mut cmd = Command::new(exe);
    cmd.args(["--mode", mode.name(), "--procs", &args.procs.to_string(), "--len", &args.len.to_string()])
        .args(["--runs", "3", "--warmup", "1", "--timeout", &args.timeout.to_string()])
        .args(["--inject-fault", &format!("1:{kind}@1"), "--on-fault", if retry { "retry" } else { "fail" }])
        .args(["--export-json", "-", "--quiet", "--color", "never"])
        .env(signals::PARENT_ENV, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(w) = worker {
        cmd.arg("--worker-bin").arg(w);
    }
    let mut child = cmd.spawn().map_err(|e| Error::runtime_from("cannot start a child run", e))?;
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
    let report: Option<RunReport> = serde_json::from_slice(&out).ok();
    let stderr = String::from_utf8_lossy(&err);
    Ok(Child {
        code: status.code(),
        signal: status.signal(),
        report,
        last_words: stderr.lines().rfind(|l| !l.trim().is_empty()).map(str::to_string),
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
