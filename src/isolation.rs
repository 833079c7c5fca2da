//! The isolation experiment: every fault, in processes and in threads, each
//! in a child run of `vecpar-coord` (a thread's fault may take its whole
//! process down, so the experiment cannot run in this one).
//!
//! Each (mode, fault) runs twice: with `--on-fault fail`, to see what the
//! fault does, and with `--on-fault retry`, to see what can be recovered.
//! The rows come from what the child did (its exit status, its JSON report
//! when it lived to write one, its last words on stderr), and the summary is
//! written from the rows, not in advance.
#![forbid(unsafe_code)]

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cli::IsolationArgs;
use crate::error::Error;
use crate::fault::{FaultKind, signal_name};
use crate::mode::Mode;
use crate::report::Provenance;

/// How one child run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChildOutcome {
    /// Exit code, if it exited.
    pub exit_code: Option<i32>,
    /// Signal, if it was killed.
    pub signal: Option<String>,
    /// Whether it wrote a report.
    pub reported: bool,
    /// Whether the report says every element was correct.
    pub validated: bool,
    /// The first fault's cause, as the report gives it.
    pub cause: Option<String>,
    /// When the fault was detected, from the start of its step, seconds.
    pub detected_after_s: Option<f64>,
    /// What the coordinator did about it.
    pub action: Option<String>,
    /// The first validation error, if any.
    pub mismatch: Option<String>,
    /// What retry cost, seconds.
    pub retry_cost_s: Option<f64>,
    /// The child's last line on stderr.
    pub last_words: Option<String>,
}

/// One row of the experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IsolationRow {
    /// procs or threads.
    pub mode: Mode,
    /// The fault.
    pub fault: String,
    /// Did the run end with a report (instead of dying with the fault)?
    pub survived: bool,
    /// Was the result correct? `Some(false)`: wrong; `None`: no result (the
    /// run stopped or died before validating).
    pub correct: Option<bool>,
    /// How the fault was detected, and how fast.
    pub detected: String,
    /// What was lost.
    pub lost: String,
    /// What `--on-fault retry` recovered.
    pub retry: String,
    /// Whether retry ended in a validated run.
    pub recovered: bool,
    /// The raw outcomes.
    pub fail_run: ChildOutcome,
    /// The raw outcomes with retry.
    pub retry_run: ChildOutcome,
}

/// The experiment's report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IsolationReport {
    /// Version, command line, machine (kind "isolation").
    #[serde(flatten)]
    pub about: Provenance,
    /// Workers per run.
    pub procs: usize,
    /// Elements per array.
    pub len: usize,
    /// The hang timeout, seconds.
    pub timeout_s: f64,
    /// One row per (mode, fault).
    pub rows: Vec<IsolationRow>,
    /// What the rows show, in plain words.
    pub summary: Vec<String>,
}

/// Runs the experiment. `each` is told before every child run.
pub fn run(
    args: &IsolationArgs,
    arguments: Vec<String>,
    mut each: impl FnMut(usize, usize, &str),
) -> Result<IsolationReport, Error> {
    if args.procs < 2 {
        return Err(Error::Usage(format!(
            "--procs {}: the experiment needs 2 workers or more (an oob-write writes into a neighbour)",
            args.procs
        )));
    }
    if let Some(m) = args.modes.iter().find(|m| **m == Mode::Serial) {
        return Err(Error::Usage(format!("--modes {m}: serial mode has no worker to lose; use procs and threads")));
    }
    let exe = std::env::current_exe().map_err(|e| Error::runtime("cannot locate vecpar-coord", e))?;
    // The worker binary the children use: the one this run would use.
    let worker = crate::config::find_worker(None).ok();
    let total = args.modes.len() * args.faults.len() * 2;
    let mut rows = Vec::new();
    let mut step = 0;
    for &mode in &args.modes {
        for fault in &args.faults {
            let kind = fault.kind();
            let mut child = |retry: bool| {
                each(step, total, &format!("{mode} × {kind}{}", if retry { ", retry" } else { "" }));
                step += 1;
                run_child(&exe, worker.as_deref(), args, mode, kind, retry)
            };
            let fail_run = child(false)?;
            let retry_run = child(true)?;
            rows.push(row(mode, kind, fail_run, retry_run));
        }
    }
    let summary = summarise(&rows, args.timeout);
    Ok(IsolationReport {
        about: Provenance::new("isolation", arguments),
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
) -> Result<ChildOutcome, Error> {
    let mut cmd = Command::new(exe);
    cmd.args(["--mode", mode.name(), "--procs", &args.procs.to_string(), "--len", &args.len.to_string()])
        .args(["--runs", "3", "--warmup", "1", "--timeout", &args.timeout.to_string()])
        .args(["--inject-fault", &format!("1:{kind}@1"), "--on-fault", if retry { "retry" } else { "fail" }])
        .args(["--export-json", "-", "--quiet", "--color", "never"])
        .stdin(Stdio::null());
    if let Some(w) = worker {
        cmd.arg("--worker-bin").arg(w);
    }
    let out = cmd.output().map_err(|e| Error::runtime("cannot start a child run", e))?;
    let report: Option<Value> = serde_json::from_slice(&out.stdout).ok();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fault = report.as_ref().and_then(|r| r["faults"].get(0).cloned());
    Ok(ChildOutcome {
        exit_code: out.status.code(),
        signal: out.status.signal().map(signal_name),
        reported: report.is_some(),
        validated: report.as_ref().is_some_and(|r| r["validated"] == true),
        cause: fault.as_ref().map(|f| describe_cause(&f["cause"])),
        detected_after_s: fault.as_ref().and_then(|f| f["detected_after_s"].as_f64()),
        action: fault.as_ref().and_then(|f| f["action"].as_str().map(str::to_string)),
        mismatch: report.as_ref().and_then(|r| {
            let m = &r["validation"]["mismatch"];
            (!m.is_null()).then(|| format!("{}[{}] = {}", m["array"].as_str().unwrap_or("?"), m["index"], m["got"]))
        }),
        retry_cost_s: report.as_ref().and_then(|r| r["retries"].get(0)?.get("cost_s")?.as_f64()),
        last_words: stderr.lines().rfind(|l| !l.trim().is_empty()).map(str::to_string),
    })
}

fn describe_cause(cause: &Value) -> String {
    match cause["kind"].as_str().unwrap_or("") {
        "signal" => format!("killed by {}", cause["name"].as_str().unwrap_or("a signal")),
        "blocked-write" => format!(
            "write to {}[{}] blocked by the MMU (SIGSEGV)",
            cause["array"].as_str().unwrap_or("?"),
            cause["index"]
        ),
        "exit" => format!("exited with code {}", cause["code"]),
        "panic" => "panicked".into(),
        "timeout" => "no report before --timeout".into(),
        "failed" => format!("failed: {}", cause["message"].as_str().unwrap_or("")),
        other => other.to_string(),
    }
}

fn ms(s: f64) -> String {
    if s >= 1.0 { format!("{s:.2} s") } else { format!("{:.0} ms", s * 1e3) }
}

fn row(mode: Mode, kind: FaultKind, fail_run: ChildOutcome, retry_run: ChildOutcome) -> IsolationRow {
    let f = &fail_run;
    let survived = f.reported;
    let correct = if f.mismatch.is_some() { Some(false) } else { f.validated.then_some(true) };
    let died = || match (&f.signal, f.exit_code) {
        (Some(sig), _) => format!("the whole process died of {sig}"),
        (None, Some(code)) => format!("the whole process exited with code {code}"),
        _ => "the whole process ended".into(),
    };
    let detected = match (&f.cause, f.detected_after_s) {
        (Some(cause), Some(t)) => format!("{cause}, after {}", ms(t)),
        _ if f.mismatch.is_some() => "not detected; validation found the damage afterwards".into(),
        _ if !f.reported => format!("nothing left to detect it: {}", died()),
        _ => "—".into(),
    };
    let lost = if !f.reported {
        "everything: the coordinator and every worker".into()
    } else if let Some(m) = &f.mismatch {
        format!("correctness: {m} in another worker's chunk, silently")
    } else if f.cause.is_some() {
        "one worker's chunk; the run stopped cleanly".into()
    } else {
        "nothing".into()
    };
    let r = &retry_run;
    let recovered = r.reported && r.validated && r.cause.is_some();
    let retry = if recovered {
        format!("recovered: a fresh worker redid the chunk in {}", r.retry_cost_s.map_or("?".into(), ms))
    } else if !r.reported {
        "nothing to recover: the process is gone".into()
    } else if r.mismatch.is_some() {
        "nothing: no fault was ever noticed".into()
    } else if let Some(a) = &r.action {
        format!("no: {a}")
    } else {
        "no".into()
    };
    IsolationRow {
        mode,
        fault: kind.to_string(),
        survived,
        correct,
        detected,
        lost,
        retry,
        recovered,
        fail_run,
        retry_run,
    }
}

/// Plain sentences from the rows: per mode, what survived, what was
/// detected and how fast, what retry recovered.
pub fn summarise(rows: &[IsolationRow], timeout: f64) -> Vec<String> {
    let mut out = Vec::new();
    for mode in [Mode::Procs, Mode::Threads] {
        let mine: Vec<&IsolationRow> = rows.iter().filter(|r| r.mode == mode).collect();
        if mine.is_empty() {
            continue;
        }
        let n = mine.len();
        let names = |f: &dyn Fn(&IsolationRow) -> bool| {
            let v: Vec<&str> = mine.iter().filter(|r| f(r)).map(|r| r.fault.as_str()).collect();
            if v.is_empty() { "none".to_string() } else { v.join(", ") }
        };
        let survived = mine.iter().filter(|r| r.survived).count();
        let recovered = mine.iter().filter(|r| r.recovered).count();
        let times: Vec<f64> =
            mine.iter().filter(|r| r.fault != "hang").filter_map(|r| r.fail_run.detected_after_s).collect();
        let fastest = times.iter().copied().fold(f64::INFINITY, f64::min);
        let slowest = times.iter().copied().fold(0.0, f64::max);
        let mut s = format!(
            "{}: {survived} of {n} faults left the run standing with a report ({}); ",
            if mode == Mode::Procs { "Processes" } else { "Threads" },
            names(&|r| r.survived)
        );
        if survived < n {
            s += &format!("{} took the whole process down; ", names(&|r| !r.survived));
        }
        if !times.is_empty() {
            let (lo, hi) = (ms(fastest), ms(slowest));
            let range = if lo == hi { lo } else { format!("{lo}–{hi}") };
            s += &format!("crashes were detected in {range} (a hang at --timeout {timeout} s); ");
        }
        let silent = names(&|r| r.fail_run.mismatch.is_some());
        if silent != "none" {
            s += &format!("{silent} went unnoticed until validation found corrupted input; ");
        }
        s += &format!("--on-fault retry turned {recovered} of {n} into a validated run ({}).", names(&|r| r.recovered));
        out.push(s);
    }
    let procs_ok = rows.iter().filter(|r| r.mode == Mode::Procs).all(|r| r.survived && r.recovered);
    let threads_lost =
        rows.iter().filter(|r| r.mode == Mode::Threads).any(|r| !r.survived || r.fail_run.mismatch.is_some());
    if procs_ok && threads_lost {
        out.push(
            "So: processes cost a start-up (see vecpar-coord sweep) but contain a fault to one worker, which can be \
             detected and replaced; threads share one address space, so a crash ends every thread, a stray write \
             corrupts a neighbour unnoticed, and a hung thread can be neither killed nor replaced."
                .into(),
        );
    }
    out
}
