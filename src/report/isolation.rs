//! The isolation experiment's report: one row per (mode, fault), read from
//! what the two child runs did, and a summary written from the rows.
//!
//! A row is only ever written from a child whose failure the injected fault
//! explains ([`explains`]): its report, its exit status and — when it could
//! write no report — its typed [`Ending`] must agree with the fault. Nothing
//! is judged from the English a child prints for people. Anything else — a missing binary, a refused
//! flag, an unusable machine — is not an effect of the fault, and stops
//! the experiment instead of being reported as one.

use serde::{Deserialize, Serialize};

use super::{Provenance, RunReport};
use crate::fault::{Ending, FaultAction, FaultKind, signal_name};
use crate::units::short_time;
use crate::vocab::{Array, Mode};

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
    /// Seconds from the worker's stop (its fault; for a hang, its last
    /// sign of life) to the fault's detection, when known.
    pub detected_after_s: Option<f64>,
    /// What the coordinator did about it.
    pub action: Option<String>,
    /// The first validation error, if any.
    pub mismatch: Option<String>,
    /// What retry cost, seconds.
    pub retry_cost_s: Option<f64>,
    /// The child's last line on stderr (for people).
    pub last_words: Option<String>,
    /// How it ended, when it could write no report.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ending: Option<Ending>,
}

/// A child run as it ended: the parts [`explains`] judges.
#[derive(Clone, Debug)]
pub struct Child {
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Signal number, if it was killed.
    pub signal: Option<i32>,
    /// Its report, if it wrote one.
    pub report: Option<RunReport>,
    /// Its last non-empty line on stderr that is not an ending (of an MPI
    /// job: the last line a rank of vecpar wrote, rather than mpirun's own).
    pub last_words: Option<String>,
    /// The typed ending it wrote, if any (of an MPI job: the first).
    pub ending: Option<Ending>,
    /// The ranks of the MPI job it was, if it was one.
    pub ranks: Option<usize>,
}

impl Child {
    /// What the table keeps of it.
    pub fn outcome(&self) -> ChildOutcome {
        let r = self.report.as_ref();
        let fault = r.and_then(|r| r.faults.first());
        ChildOutcome {
            exit_code: self.code,
            signal: self.signal.map(signal_name),
            reported: r.is_some(),
            validated: r.is_some_and(RunReport::validated),
            cause: fault.map(|f| f.cause.short()),
            detected_after_s: fault.and_then(|f| f.detected_after_s),
            action: fault.map(|f| f.action.to_string()),
            mismatch: r
                .and_then(|r| r.first_mismatch())
                .and_then(|(_, v)| v.mismatch)
                .map(|m| format!("{}[{}] = {}", m.array, m.index, m.got)),
            retry_cost_s: r.and_then(|r| r.retries.first()).map(|t| t.cost_s),
            last_words: self.last_words.clone(),
            ending: self.ending,
        }
    }
}

/// Whether `child` — a run of `mode` with `kind` injected into worker 1,
/// `retry` or not — ended the way that fault makes it end. `Err` says what
/// it did instead.
pub fn explains(mode: Mode, kind: FaultKind, retry: bool, child: &Child) -> Result<(), String> {
    let words = child.last_words.as_deref().unwrap_or("");
    let status = match (child.code, child.signal) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => signal_name(s),
        _ => "no status".into(),
    };
    let ending = child.ending.map_or_else(|| "no ending".to_string(), |e| format!("ending {e:?}"));
    let fail = |what: &str| Err(format!("expected {what}, got {status} and {ending}: {words}"));
    if child.ranks.is_some() && mode.is_rank() {
        // The fault hit rank 1 itself: the job ends, no report, and another
        // rank says why: it lost rank 1, its watchdog ran out (a hung rank),
        // or mpirun's SIGTERM came first (a panic's MPI_Abort).
        let ended = matches!(
            (kind, child.ending),
            (_, Some(Ending::RankLost { rank: 1 }))
                | (FaultKind::Hang, Some(Ending::RanksStuck))
                | (FaultKind::Panic, Some(Ending::Signalled { .. }))
        );
        return if child.report.is_none() && child.code != Some(0) && ended {
            Ok(())
        } else {
            fail("the job to end, another rank saying it lost rank 1")
        };
    }
    let fault_of = |r: &RunReport| r.faults.iter().find(|f| f.worker == 1).cloned();
    let dies_of =
        |signal: i32| child.signal == Some(signal) && child.ending == Some(Ending::WorkerThreadSignal { signal });
    match (mode, kind) {
        (Mode::Threads, FaultKind::Abort) if dies_of(libc::SIGABRT) => Ok(()),
        (Mode::Threads, FaultKind::Segv | FaultKind::StackOverflow) if dies_of(libc::SIGSEGV) => Ok(()),
        (Mode::Threads, FaultKind::Exit(code))
            if child.code == Some(code) && child.ending == Some(Ending::WorkerThreadExit) =>
        {
            Ok(())
        }
        (Mode::Threads, FaultKind::Abort | FaultKind::Segv | FaultKind::StackOverflow | FaultKind::Exit(_)) => {
            fail("the whole process to die with the worker thread")
        }
        (Mode::Threads, FaultKind::OobWrite) => match &child.report {
            Some(r)
                if child.code == Some(3)
                    && r.first_mismatch().is_some_and(|(_, v)| v.mismatch.is_some_and(|m| m.array == Array::A)) =>
            {
                Ok(())
            }
            _ => fail("a report whose validation found a corrupted element of a (exit 3)"),
        },
        (Mode::Threads, FaultKind::Hang) => match child.report.as_ref().and_then(fault_of) {
            Some(f) if kind.explains(&f.cause) && child.code == Some(4) => {
                if retry && !matches!(f.action, FaultAction::Irreplaceable(_)) {
                    fail("a hung thread that cannot be replaced")
                } else {
                    Ok(())
                }
            }
            _ => fail("a report naming worker 1 as hung (exit 4)"),
        },
        (_, _) => match child.report.as_ref().and_then(|r| Some((r, fault_of(r)?))) {
            Some((r, f)) if kind.explains(&f.cause) => {
                let expected = if retry { 0 } else { 4 };
                if child.code == Some(expected) && (!retry || r.validated()) {
                    Ok(())
                } else {
                    fail(&format!("exit code {expected} after worker 1 was lost to the fault"))
                }
            }
            _ => fail(&format!("a report naming worker 1 as lost to {kind}")),
        },
    }
}

/// One row of the experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IsolationRow {
    /// procs or threads; under MPI, procs (the fault in a worker of every
    /// rank) or ranks (the fault in rank 1 itself).
    pub mode: Mode,
    /// The ranks of the MPI job, for an MPI row.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ranks: Option<usize>,
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
    /// Version, time, command line, machine (kind "isolation").
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

impl IsolationRow {
    /// How the table names its layout: procs, threads, mpi+procs, mpi rank.
    pub fn label(&self) -> &'static str {
        match (self.ranks, self.mode) {
            (None, m) => m.name(),
            (Some(_), m) if m.is_rank() => "mpi rank",
            (Some(_), _) => "mpi+procs",
        }
    }
}

/// A row from the outcomes of the two child runs (of an MPI job of
/// `ranks`, for an MPI row).
pub fn row(
    mode: Mode,
    ranks: Option<usize>,
    kind: FaultKind,
    fail_run: ChildOutcome,
    retry_run: ChildOutcome,
) -> IsolationRow {
    if ranks.is_some() && mode.is_rank() {
        return IsolationRow {
            mode,
            ranks,
            fault: kind.to_string(),
            survived: false,
            correct: None,
            detected: fail_run.ending.map_or("—".into(), |e| e.to_string()),
            lost: "the whole job: every rank ends (MPI without ULFM cannot go on without a rank)".into(),
            retry: "nothing to recover: a lost rank ends the job".into(),
            recovered: false,
            fail_run,
            retry_run,
        };
    }
    let f = &fail_run;
    let survived = f.reported;
    let correct = if f.mismatch.is_some() { Some(false) } else { f.validated.then_some(true) };
    let died = || match (&f.signal, f.exit_code) {
        (Some(sig), _) => format!("the whole process died of {sig}"),
        (None, Some(code)) => format!("the whole process exited with code {code}"),
        _ => "the whole process ended".into(),
    };
    let detected = match (&f.cause, f.detected_after_s) {
        (Some(cause), Some(t)) => format!("{cause}, after {}", short_time(t)),
        _ if f.mismatch.is_some() => "not detected; validation found the damage afterwards".into(),
        _ if !f.reported => format!("nothing left to detect it: {}", died()),
        _ => "—".into(),
    };
    let lost = if !f.reported {
        "everything: the coordinator and every worker".into()
    } else if let Some(m) = &f.mismatch {
        let code = f.exit_code.map_or(String::new(), |c| format!(" (exit {c})"));
        format!("correctness: {m} in another worker's chunk; no fault was detected, only validation found it{code}")
    } else if f.cause.is_some() {
        "one worker's chunk; the run stopped cleanly".into()
    } else {
        "nothing".into()
    };
    let r = &retry_run;
    let recovered = r.reported && r.validated && r.cause.is_some();
    let retry = if recovered {
        format!("recovered: a fresh worker redid the chunk in {}", r.retry_cost_s.map_or("?".into(), short_time))
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
        ranks,
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

/// "a", "a and b", "a, b and c".
fn listed(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The fault a row injected.
fn kind(r: &IsolationRow) -> Option<FaultKind> {
    r.fault.parse().ok()
}

/// Whether the row's fault kills the worker outright (it stops showing
/// life, and not by hanging).
fn is_crash(r: &IsolationRow) -> bool {
    kind(r).is_some_and(|k| k.stops_the_worker() && k != FaultKind::Hang)
}

/// Plain sentences from the rows, and only from them: per mode, what
/// survived, how fast what was detected was detected, what validation
/// alone caught, what retry recovered; then what the rows that ran show
/// about processes against threads. `timeout` is the hang timeout the
/// rows ran with.
pub fn summarise(rows: &[IsolationRow], timeout: f64) -> Vec<String> {
    let mut out = Vec::new();
    for mode in [Mode::Procs, Mode::Threads] {
        let mine: Vec<&IsolationRow> = rows.iter().filter(|r| r.mode == mode && r.ranks.is_none()).collect();
        if mine.is_empty() {
            continue;
        }
        let n = mine.len();
        let names = |f: &dyn Fn(&IsolationRow) -> bool| -> Vec<&str> {
            mine.iter().filter(|r| f(r)).map(|r| r.fault.as_str()).collect()
        };
        let survived = names(&|r| r.survived);
        let died = names(&|r| !r.survived);
        let who = if mode == Mode::Procs { "Processes" } else { "Threads" };
        let faults = if n == 1 { "the one fault tested" } else { "the faults tested" };
        let mut parts = Vec::new();
        parts.push(if died.is_empty() {
            format!(
                "{who}: {} ({}) left the run standing with a report",
                if n == 1 { faults.to_string() } else { format!("all {n} of {faults}") },
                listed(&survived)
            )
        } else if survived.is_empty() {
            format!("{who}: none of {faults} left the run standing: {} took the whole process down", listed(&died))
        } else {
            format!(
                "{who}: {} of {n} faults ({}) left the run standing with a report; {} took the whole process down",
                survived.len(),
                listed(&survived),
                listed(&died)
            )
        });
        let crashes: Vec<(&str, f64)> = mine
            .iter()
            .filter(|r| kind(r) != Some(FaultKind::Hang) && r.fail_run.cause.is_some())
            .filter_map(|r| Some((r.fault.as_str(), r.fail_run.detected_after_s?)))
            .collect();
        if !crashes.is_empty() {
            let fastest = crashes.iter().map(|c| c.1).fold(f64::INFINITY, f64::min);
            let slowest = crashes.iter().map(|c| c.1).fold(0.0, f64::max);
            let (lo, hi) = (short_time(fastest), short_time(slowest));
            let range = if lo == hi { lo } else { format!("{lo}–{hi}") };
            let what: Vec<&str> = crashes.iter().map(|c| c.0).collect();
            parts.push(format!(
                "{} {} detected {range} after the worker died",
                listed(&what),
                if what.len() == 1 { "was" } else { "were" }
            ));
        }
        if let Some(h) = mine.iter().find(|r| kind(r) == Some(FaultKind::Hang) && r.fail_run.cause.is_some()) {
            let after = h.fail_run.detected_after_s.map_or(String::new(), |t| format!(" {}", short_time(t)));
            parts.push(format!(
                "the hang was declared{after} after the worker's last sign of life (--timeout {timeout} s)"
            ));
        }
        for r in mine.iter().filter(|r| r.fail_run.mismatch.is_some()) {
            let code = r.fail_run.exit_code.map_or(String::new(), |c| format!(", exit {c}"));
            parts.push(format!(
                "{} went unnoticed while the run went on: only validation found the corrupted element{code}",
                r.fault
            ));
        }
        let recovered = names(&|r| r.recovered);
        parts.push(if recovered.len() == n {
            format!("--on-fault retry turned {} into a validated run", if n == 1 { "it" } else { "every one" })
        } else if recovered.is_empty() {
            "--on-fault retry recovered none of them".to_string()
        } else {
            format!("--on-fault retry turned {} of {n} ({}) into a validated run", recovered.len(), listed(&recovered))
        });
        out.push(format!("{}.", parts.join("; ")));
    }
    let inside: Vec<&IsolationRow> = rows.iter().filter(|r| r.ranks.is_some() && r.mode == Mode::Procs).collect();
    let rank: Vec<&IsolationRow> = rows.iter().filter(|r| r.ranks.is_some() && r.mode.is_rank()).collect();
    if let Some(ranks) = inside.iter().chain(&rank).find_map(|r| r.ranks) {
        let mut parts = Vec::new();
        if !inside.is_empty() {
            let recovered: Vec<&str> = inside.iter().filter(|r| r.recovered).map(|r| r.fault.as_str()).collect();
            let detected = inside.iter().filter(|r| r.fail_run.cause.is_some()).count();
            parts.push(format!(
                "a worker lost inside a rank was detected by its rank in {detected} of {n} faults, and --on-fault \
                 retry replaced it and the job validated in {} of {n}{}",
                recovered.len(),
                if recovered.is_empty() { String::new() } else { format!(" ({})", listed(&recovered)) },
                n = inside.len(),
            ));
        }
        if !rank.is_empty() {
            let ended: Vec<String> = rank
                .iter()
                .filter(|r| !r.survived)
                .map(|r| match &r.fail_run.ending {
                    Some(e) => format!("{}: {e}", r.fault),
                    None => format!("{}: the job ended", r.fault),
                })
                .collect();
            parts.push(format!(
                "a fault in a rank itself ended the whole job in {} of {} (no rank survives a lost one without \
                 ULFM){}",
                ended.len(),
                rank.len(),
                if ended.is_empty() { String::new() } else { format!(" — {}", ended.join("; ")) }
            ));
        }
        out.push(format!("Under MPI ({ranks} ranks): {}.", parts.join("; ")));
    }
    // The lesson, in as many clauses as the rows that ran support.
    let procs: Vec<&IsolationRow> = rows.iter().filter(|r| r.mode == Mode::Procs && r.ranks.is_none()).collect();
    let threads: Vec<&IsolationRow> = rows.iter().filter(|r| r.mode == Mode::Threads).collect();
    let mut costs = Vec::new();
    if threads.iter().any(|r| is_crash(r) && !r.survived) {
        costs.push("a crash ends every thread");
    }
    if threads.iter().any(|r| kind(r) == Some(FaultKind::OobWrite) && r.fail_run.mismatch.is_some()) {
        costs.push("a stray write corrupts a neighbour's data, which only validation notices");
    }
    if threads.iter().any(|r| kind(r) == Some(FaultKind::Hang) && !r.recovered) {
        costs.push("a hung thread can be neither killed nor replaced");
    }
    if !procs.is_empty() && procs.iter().all(|r| r.survived && r.recovered) && !costs.is_empty() {
        out.push(format!(
            "So: processes cost a start-up (see vecpar-coord sweep) but contained each of these faults to one \
             worker, which was detected and replaced; threads share one address space, so {}.",
            match costs.as_slice() {
                [rest @ .., last] if !rest.is_empty() => format!("{}; and {last}", rest.join("; ")),
                _ => costs.join(""),
            }
        ));
    }
    out
}
