//! Faults as data: what can be injected, why a worker was lost, what the
//! coordinator did about it — each rendered in one place.
//!
//! `--inject-fault WORKER:KIND[@ROUND]` makes one worker misbehave at the
//! start of a round, the way real bugs do: a Rust panic, `abort()`, a store
//! through a wild pointer, a non-zero `exit`, a hang, a store into another
//! worker's part of `a`, or a runaway recursion. Processes and threads meet
//! the same fault; what survives it is the lesson. One more kind loses
//! nothing: `stall=MS` sleeps before computing, a round slowed the way a
//! busy machine slows one (what the noise verdict is for). The faults
//! themselves are carried out by [`crate::worker`].
#![forbid(unsafe_code)]

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::vocab::Array;

/// What an injected fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum FaultKind {
    /// `panic!`: unwinds the worker's thread.
    Panic,
    /// `abort()`: SIGABRT, no unwinding.
    Abort,
    /// A store through a wild pointer: SIGSEGV.
    Segv,
    /// `exit(code)` with a non-zero code.
    Exit(i32),
    /// Never reports back (sleeps forever).
    Hang,
    /// Writes into another worker's part of the input array `a`.
    OobWrite,
    /// Recurses until the stack runs out: SIGSEGV on the guard page.
    StackOverflow,
    /// Sleeps this many milliseconds, then computes as usual: a slow round,
    /// not a lost worker.
    Stall(u32),
}

/// The longest `stall=MS`, milliseconds.
pub const MAX_STALL_MS: u32 = 60_000;

/// The exit code of `exit` when none is given.
pub const DEFAULT_EXIT_CODE: i32 = 42;

impl FaultKind {
    /// Every kind, with `exit` at its default code.
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Panic,
        FaultKind::Abort,
        FaultKind::Segv,
        FaultKind::Exit(DEFAULT_EXIT_CODE),
        FaultKind::Hang,
        FaultKind::OobWrite,
        FaultKind::StackOverflow,
    ];

    /// Whether the worker stops showing life when it strikes (it dies or
    /// hangs); a stall and a stray write leave it running.
    pub fn stops_the_worker(self) -> bool {
        !matches!(self, FaultKind::Stall(_) | FaultKind::OobWrite)
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Panic => "panic",
            FaultKind::Abort => "abort",
            FaultKind::Segv => "segv",
            FaultKind::Exit(_) => "exit",
            FaultKind::Hang => "hang",
            FaultKind::OobWrite => "oob-write",
            FaultKind::StackOverflow => "stack-overflow",
            FaultKind::Stall(_) => "stall",
        }
    }

    /// What it looks like to a user, for help texts.
    pub fn description(self) -> &'static str {
        match self {
            FaultKind::Panic => "a Rust panic",
            FaultKind::Abort => "abort()",
            FaultKind::Segv => "a store through a wild pointer",
            FaultKind::Exit(_) => "exit(42)",
            FaultKind::Hang => "never reports back",
            FaultKind::OobWrite => "a store into another worker's part of a",
            FaultKind::StackOverflow => "a runaway recursion",
            FaultKind::Stall(_) => "a slow round",
        }
    }

    /// Whether `cause` is what this fault makes of a worker *process*: the
    /// isolation experiment's check that a lost worker was lost to the fault
    /// it injected, and not to something else.
    pub fn explains(self, cause: &Cause) -> bool {
        match (self, cause) {
            (FaultKind::Panic, Cause::Panic { .. }) => true,
            (FaultKind::Abort, Cause::Signal { number, .. }) => *number == libc::SIGABRT,
            (FaultKind::Segv, Cause::Signal { number, .. }) => *number == libc::SIGSEGV,
            (FaultKind::Exit(code), Cause::Exit { code: got }) => code == *got,
            (FaultKind::Hang, Cause::Timeout { .. }) => true,
            (FaultKind::OobWrite, Cause::BlockedWrite { array, .. }) => *array == Array::A,
            (FaultKind::StackOverflow, Cause::StackOverflow) => true,
            _ => false,
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::Exit(code) if *code != DEFAULT_EXIT_CODE => write!(f, "exit={code}"),
            FaultKind::Stall(ms) => write!(f, "stall={ms}"),
            k => f.write_str(k.name()),
        }
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(k) = FaultKind::ALL.into_iter().find(|k| k.name() == s) {
            return Ok(k);
        }
        if let Some(ms) = s.strip_prefix("stall=") {
            return match ms.parse::<u32>() {
                Ok(m) if (1..=MAX_STALL_MS).contains(&m) => Ok(FaultKind::Stall(m)),
                _ => Err(format!("stall '{ms}' must be 1 to {MAX_STALL_MS} milliseconds")),
            };
        }
        match s.strip_prefix("exit=") {
            Some(code) => match code.parse::<i32>() {
                Ok(c) if (1..=255).contains(&c) => Ok(FaultKind::Exit(c)),
                _ => Err(format!("exit code '{code}' must be 1 to 255")),
            },
            None => {
                let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                Err(format!("unknown fault kind '{s}' (expected {}, exit=CODE or stall=MS)", names.join(", ")))
            }
        }
    }
}

impl From<FaultKind> for String {
    fn from(k: FaultKind) -> String {
        k.to_string()
    }
}

impl TryFrom<String> for FaultKind {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// One `--inject-fault` request: `WORKER:KIND[@ROUND]` for a worker (in
/// every rank, under mpirun), or `rank:RANK:KIND[@ROUND]` for an MPI rank's
/// own process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct FaultSpec {
    /// The worker that misbehaves (0 for a rank fault).
    pub worker: usize,
    /// The MPI rank whose own process misbehaves, for a rank fault.
    pub rank: Option<usize>,
    /// How.
    pub kind: FaultKind,
    /// In which round (counting warm-up rounds from 0).
    pub round: u32,
}

impl FromStr for FaultSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let usage = "expected WORKER:KIND[@ROUND], e.g. 1:segv@3, or rank:RANK:KIND[@ROUND]";
        let (rank, s) = match s.strip_prefix("rank:") {
            Some(rest) => {
                let (r, rest) = rest.split_once(':').ok_or_else(|| format!("'rank:{rest}': {usage}"))?;
                (Some(r.trim().parse().map_err(|_| format!("'{r}' is not a rank ({usage})"))?), format!("0:{rest}"))
            }
            None => (None, s.to_string()),
        };
        let (worker, rest) = s.split_once(':').ok_or_else(|| format!("'{s}': {usage}"))?;
        let worker = worker.trim().parse().map_err(|_| format!("'{worker}' is not a worker id ({usage})"))?;
        let (kind, round) = match rest.split_once('@') {
            Some((k, r)) => (k, r.trim().parse().map_err(|_| format!("'{r}' is not a round number ({usage})"))?),
            None => (rest, 0),
        };
        Ok(FaultSpec { worker, rank, kind: kind.trim().parse()?, round })
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rank {
            Some(r) => write!(f, "rank:{r}:{}@{}", self.kind, self.round),
            None => write!(f, "{}:{}@{}", self.worker, self.kind, self.round),
        }
    }
}

impl From<FaultSpec> for String {
    fn from(s: FaultSpec) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for FaultSpec {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// What to do when a worker fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum OnFault {
    /// Stop the run, report, exit 4.
    Fail,
    /// Replace the worker and repeat the step, up to N times per worker.
    Retry(u32),
}

/// Attempts `retry` allows when no N is given.
pub const DEFAULT_RETRIES: u32 = 3;

/// The most retries `retry=N` allows per worker.
pub const MAX_RETRIES: u32 = 1000;

impl FromStr for OnFault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fail" => Ok(OnFault::Fail),
            "retry" => Ok(OnFault::Retry(DEFAULT_RETRIES)),
            other => match other.strip_prefix("retry=").map(str::parse::<u32>) {
                Some(Ok(n)) if (1..=MAX_RETRIES).contains(&n) => Ok(OnFault::Retry(n)),
                _ => Err(format!("'{other}': expected fail, retry or retry=N with N from 1 to {MAX_RETRIES}")),
            },
        }
    }
}

impl fmt::Display for OnFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OnFault::Fail => f.write_str("fail"),
            OnFault::Retry(n) => write!(f, "retry={n}"),
        }
    }
}

impl From<OnFault> for String {
    fn from(p: OnFault) -> String {
        p.to_string()
    }
}

impl TryFrom<String> for OnFault {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// A worker a team could not keep.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Lost {
    /// Its id.
    pub(crate) id: usize,
    /// Why.
    pub(crate) cause: Cause,
    /// When the coordinator found it lost (CLOCK_MONOTONIC ns): the end
    /// of its detection, before the others are waited for.
    pub(crate) found_ns: u64,
}

impl Lost {
    /// Worker `id`, found lost now for `cause`.
    pub(crate) fn new(id: usize, cause: Cause) -> Lost {
        Lost { id, cause, found_ns: crate::clock::now_ns() }
    }
}

/// Why a worker was declared lost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Cause {
    /// Killed by a signal.
    Signal {
        /// Its name, e.g. SIGSEGV.
        name: String,
        /// Its number.
        number: i32,
        /// The process that sent it, when the worker could tell (a SIGSEGV
        /// or SIGBUS sent with `kill` rather than raised by a fault).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        sent_by: Option<u32>,
    },
    /// A store the MMU refused: the read-only mapping did its job.
    BlockedWrite {
        /// The array written to.
        array: Array,
        /// The element.
        index: u64,
        /// The worker whose chunk it is, if any.
        owner: Option<usize>,
    },
    /// Ran out of stack (SIGSEGV on the guard page below it).
    StackOverflow,
    /// SIGBUS on an element of the segment: another process truncated it.
    SegmentLost {
        /// The array.
        array: Array,
        /// The element.
        index: u64,
    },
    /// Killed by the kernel's OOM killer under a cgroup memory limit.
    OutOfMemory {
        /// The limit, bytes.
        limit: u64,
        /// The file that sets it.
        file: String,
    },
    /// Exited with a non-zero code.
    Exit {
        /// The code.
        code: i32,
    },
    /// Panicked; the message when the worker could send it.
    Panic {
        /// The panic message.
        message: String,
    },
    /// No sign of progress within `--timeout`.
    Timeout {
        /// The limit in seconds.
        seconds: f64,
    },
    /// Reported a failure it could not recover from.
    Failed {
        /// Its message.
        message: String,
    },
    /// Could not map its chunk (the system refused the memory).
    CannotMap {
        /// The kernel's answer.
        errno: i32,
        /// What failed.
        message: String,
    },
    /// Its channel closed but the process was still there.
    Disconnected,
}

impl Cause {
    /// A signal death, named.
    pub fn signal(number: i32) -> Cause {
        Cause::Signal { name: signal_name(number), number, sent_by: None }
    }

    /// The short form, for a table cell: "killed by SIGABRT", "panicked".
    pub fn short(&self) -> String {
        match self {
            Cause::Signal { name, sent_by: None, .. } => format!("killed by {name}"),
            Cause::Signal { name, sent_by: Some(pid), .. } => format!("killed by {name} from pid {pid}"),
            Cause::BlockedWrite { array, index, .. } => {
                format!("write to {array}[{index}] blocked by the MMU (SIGSEGV)")
            }
            Cause::StackOverflow => "stack overflow (SIGSEGV on the guard page)".into(),
            Cause::SegmentLost { .. } => "SIGBUS: the segment was truncated".into(),
            Cause::OutOfMemory { .. } => "killed by the OOM killer".into(),
            Cause::Exit { code } => format!("exited with code {code}"),
            Cause::Panic { .. } => "panicked".into(),
            Cause::Timeout { .. } => "no report before --timeout".into(),
            Cause::Failed { message } => format!("failed: {message}"),
            Cause::CannotMap { .. } => "could not map its chunk".into(),
            Cause::Disconnected => "closed its channel".into(),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Signal { name, number, sent_by: None } => write!(f, "killed by {name} (signal {number})"),
            Cause::Signal { name, number, sent_by: Some(pid) } => {
                write!(f, "killed by {name} (signal {number}) sent by another process (pid {pid})")
            }
            Cause::BlockedWrite { array, index, owner } => {
                write!(f, "SIGSEGV: write to {array}[{index}]")?;
                if let Some(o) = owner {
                    write!(f, " (worker {o}'s chunk)")?;
                }
                f.write_str(" blocked by the read-only mapping")
            }
            Cause::StackOverflow => f.write_str("stack overflow: SIGSEGV on the guard page below its stack"),
            Cause::SegmentLost { array, index } => write!(
                f,
                "SIGBUS on {array}[{index}]: the segment's pages were taken away (another process truncated it)"
            ),
            Cause::OutOfMemory { limit, file } => write!(
                f,
                "killed by the OOM killer: the cgroup memory limit of {} ({file}) was reached; lower --len",
                crate::units::human_bytes(*limit)
            ),
            Cause::Exit { code } => write!(f, "exited with code {code}"),
            Cause::Panic { message } => write!(f, "panicked: {message}"),
            Cause::Timeout { seconds } => write!(f, "no sign of progress within --timeout {seconds}s (hung)"),
            Cause::Failed { message } => write!(f, "failed: {message}"),
            Cause::CannotMap { message, .. } => write!(f, "could not map its chunk: {message}"),
            Cause::Disconnected => f.write_str("closed its channel"),
        }
    }
}

/// How a child run ended when it could not write a report: the typed record
/// the isolation experiment reads, rather than the sentence a person reads
/// beside it. A run writes one as a line of its own on stderr,
/// [`ENDING_PREFIX`] and then JSON, when [`ENDINGS_ENV`] asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ending", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Ending {
    /// A worker thread died of a signal, and took the process with it.
    WorkerThreadSignal {
        /// The signal.
        signal: i32,
    },
    /// A worker thread called `exit()`, and took the process with it.
    WorkerThreadExit,
    /// An MPI rank ended the job: it lost this rank.
    RankLost {
        /// The rank lost.
        rank: usize,
    },
    /// An MPI rank ended the job: the others did not come within the
    /// watchdog's time.
    RanksStuck,
    /// An MPI rank ended the job on a terminating signal (mpirun's way of
    /// ending a job that lost a rank).
    Signalled {
        /// The signal.
        signal: i32,
    },
}

/// What starts an [`Ending`]'s line on stderr.
pub const ENDING_PREFIX: &str = "vecpar-ending: ";

/// The environment variable (`1`) that asks a run for its [`Ending`].
pub const ENDINGS_ENV: &str = "VECPAR_ENDINGS";

impl Ending {
    /// Whether this process was asked to write its ending.
    pub(crate) fn wanted() -> bool {
        static WANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *WANTED.get_or_init(|| std::env::var_os(ENDINGS_ENV).is_some_and(|v| v == "1"))
    }

    /// Writes the ending's line, if it was asked for.
    pub(crate) fn announce(&self) {
        if Ending::wanted()
            && let Ok(json) = serde_json::to_string(self)
        {
            crate::diag::raw(&format!("{ENDING_PREFIX}{json}\n"));
        }
    }

    /// The ending a line of stderr carries, if it is an ending's line.
    pub fn of_line(line: &str) -> Option<Ending> {
        serde_json::from_str(line.trim_end().strip_prefix(ENDING_PREFIX)?).ok()
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::WorkerThreadSignal { signal } => {
                write!(f, "a worker thread died of {} and took the process with it", signal_name(*signal))
            }
            Ending::WorkerThreadExit => f.write_str("a worker thread called exit() and took the process with it"),
            Ending::RankLost { rank } => write!(f, "another rank saw the job lose rank {rank}"),
            Ending::RanksStuck => f.write_str("another rank's watchdog ran out waiting for the others"),
            Ending::Signalled { signal } => {
                write!(f, "another rank got {} from mpirun, which ends a job that lost a rank", signal_name(*signal))
            }
        }
    }
}

/// Where in a run a fault happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Starting, attaching or accepting the assignment.
    StartUp,
    /// Reserving and filling the chunk.
    Init,
    /// A timed or warm-up round.
    Round,
    /// Bringing chunks back to where the run stands after a fault.
    Rebuild,
    /// Reporting a reduction's partial sums.
    Report,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::StartUp => "start-up",
            Phase::Init => "init",
            Phase::Round => "round",
            Phase::Rebuild => "rebuild",
            Phase::Report => "report",
        })
    }
}

/// What the coordinator did about a lost worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum FaultAction {
    /// `--on-fault fail`: the run stopped.
    Stopped,
    /// `--on-fault retry=N`, with N retries used up: the run stopped.
    RetriesUsed(u32),
    /// The worker cannot be replaced (a hung thread): the run stopped.
    Irreplaceable(String),
    /// A fresh worker took over, as this attempt.
    Replaced(u32),
    /// A replacement was started and lost too (the next record says how).
    ReplacementLost,
}

impl FaultAction {
    /// Whether the run stopped because of this fault.
    pub fn stopped_the_run(&self) -> bool {
        matches!(self, FaultAction::Stopped | FaultAction::RetriesUsed(_) | FaultAction::Irreplaceable(_))
    }
}

impl fmt::Display for FaultAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultAction::Stopped => f.write_str("stopped the run"),
            FaultAction::RetriesUsed(n) => write!(f, "stopped the run: {n} retries used"),
            FaultAction::Irreplaceable(why) => write!(f, "stopped the run: cannot be replaced ({why})"),
            FaultAction::Replaced(attempt) => write!(f, "replaced by attempt {attempt}"),
            FaultAction::ReplacementLost => f.write_str("replaced, but the replacement was lost too"),
        }
    }
}

impl From<FaultAction> for String {
    fn from(a: FaultAction) -> String {
        a.to_string()
    }
}

impl TryFrom<String> for FaultAction {
    type Error = String;
    /// Reads back exactly what [`fmt::Display`] writes.
    fn try_from(s: String) -> Result<Self, String> {
        let number = |t: &str| t.parse::<u32>().map_err(|_| format!("'{s}' is not a fault action"));
        if s == "stopped the run" {
            Ok(FaultAction::Stopped)
        } else if s == "replaced, but the replacement was lost too" {
            Ok(FaultAction::ReplacementLost)
        } else if let Some(n) = s.strip_prefix("stopped the run: ").and_then(|t| t.strip_suffix(" retries used")) {
            Ok(FaultAction::RetriesUsed(number(n)?))
        } else if let Some(why) =
            s.strip_prefix("stopped the run: cannot be replaced (").and_then(|t| t.strip_suffix(')'))
        {
            Ok(FaultAction::Irreplaceable(why.to_string()))
        } else if let Some(n) = s.strip_prefix("replaced by attempt ") {
            Ok(FaultAction::Replaced(number(n)?))
        } else {
            Err(format!("'{s}' is not a fault action"))
        }
    }
}

/// A lost worker, as the report shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// Worker id.
    pub worker: usize,
    /// Its process id (the coordinator's in threads mode).
    pub pid: u32,
    /// Its chunk, [start, end).
    pub range: [u64; 2],
    /// The phase.
    pub phase: Phase,
    /// The round, for round faults.
    pub round: Option<u32>,
    /// Which attempt of this worker failed (0 = the original).
    pub attempt: u32,
    /// Why it was lost.
    pub cause: Cause,
    /// Seconds from the moment the worker stopped (its fault, or for a
    /// hang its last sign of life) to its detection; `None` when that
    /// moment is not known (a kill from outside).
    #[serde(default)]
    pub detected_after_s: Option<f64>,
    /// Seconds from the start of the step it was lost in to its detection.
    #[serde(default)]
    pub step_elapsed_s: f64,
    /// What the coordinator did.
    pub action: FaultAction,
}

impl fmt::Display for FaultRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "worker {} (pid {}, elements {}..{}) ", self.worker, self.pid, self.range[0], self.range[1])?;
        match self.round {
            Some(r) => write!(f, "in round {r}")?,
            None => write!(f, "during {}", self.phase)?,
        }
        write!(f, ": {}", self.cause)
    }
}

/// The name of a signal number, for reports.
pub fn signal_name(number: i32) -> String {
    nix::sys::signal::Signal::try_from(number).map_or_else(|_| format!("signal {number}"), |s| s.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(
            "1:segv@3".parse::<FaultSpec>().unwrap(),
            FaultSpec { worker: 1, rank: None, kind: FaultKind::Segv, round: 3 }
        );
        assert_eq!(
            "0:exit=7".parse::<FaultSpec>().unwrap(),
            FaultSpec { worker: 0, rank: None, kind: FaultKind::Exit(7), round: 0 }
        );
        assert_eq!("2:oob-write".parse::<FaultSpec>().unwrap().kind, FaultKind::OobWrite);
        assert_eq!("2:stack-overflow".parse::<FaultSpec>().unwrap().kind, FaultKind::StackOverflow);
        for bad in ["1", "x:panic", "1:boom", "1:panic@x", "1:exit=0", "1:exit=300", "1:panic@99999999999"] {
            assert!(bad.parse::<FaultSpec>().is_err(), "{bad} parsed");
        }
        for kind in FaultKind::ALL {
            assert_eq!(kind.to_string().parse::<FaultKind>().unwrap(), kind);
        }
    }

    #[test]
    fn policies_parse() {
        assert_eq!("fail".parse::<OnFault>().unwrap(), OnFault::Fail);
        assert_eq!("retry".parse::<OnFault>().unwrap(), OnFault::Retry(DEFAULT_RETRIES));
        assert_eq!("retry=5".parse::<OnFault>().unwrap(), OnFault::Retry(5));
        assert!("retry=0".parse::<OnFault>().is_err());
        assert!("retry=4294967295".parse::<OnFault>().is_err());
        assert!("again".parse::<OnFault>().is_err());
    }

    #[test]
    fn actions_read_back_what_they_write() {
        for a in [
            FaultAction::Stopped,
            FaultAction::RetriesUsed(3),
            FaultAction::Irreplaceable("worker thread 1 is hung (it holds its chunk)".into()),
            FaultAction::Replaced(2),
            FaultAction::ReplacementLost,
        ] {
            assert_eq!(FaultAction::try_from(a.to_string()).unwrap(), a);
        }
        assert!(FaultAction::try_from("gave up".to_string()).is_err());
    }

    #[test]
    fn endings_travel_as_lines_of_their_own() {
        for e in [
            Ending::WorkerThreadSignal { signal: 6 },
            Ending::WorkerThreadExit,
            Ending::RankLost { rank: 3 },
            Ending::RanksStuck,
            Ending::Signalled { signal: 15 },
        ] {
            let line = format!("{ENDING_PREFIX}{}\n", serde_json::to_string(&e).unwrap());
            assert_eq!(Ending::of_line(&line), Some(e));
        }
        assert_eq!(Ending::of_line("vecpar-coord: error: the job lost rank 1"), None, "a sentence is not one");
        assert_eq!(Ending::of_line(&format!("{ENDING_PREFIX}{{\"ending\":\"rank-lost\"}}")), None);
    }

    #[test]
    fn faults_explain_their_causes() {
        assert!(FaultKind::Abort.explains(&Cause::signal(libc::SIGABRT)));
        assert!(!FaultKind::Abort.explains(&Cause::signal(libc::SIGSEGV)));
        assert!(FaultKind::Exit(42).explains(&Cause::Exit { code: 42 }));
        assert!(!FaultKind::Exit(42).explains(&Cause::Exit { code: 1 }));
        assert!(!FaultKind::Panic.explains(&Cause::Failed { message: "no such binary".into() }));
        assert_eq!(signal_name(11), "SIGSEGV");
    }
}
