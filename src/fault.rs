//! Faults: injected on request, detected always, reported the same way.
//!
//! `--inject-fault WORKER:KIND[@ROUND]` makes one worker misbehave at the
//! start of a round, the way real bugs do: a Rust panic, `abort()`, a store
//! through a wild pointer, a non-zero `exit`, a hang, or a store into another
//! worker's part of `a`. Processes and threads meet the same fault; what
//! survives it is the lesson.
#![forbid(unsafe_code)]

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What an injected fault does. (Crosses IPC, whose wire format is not
/// self-describing: no serde tag attributes here.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
}

impl FaultKind {
    /// Every kind, with `exit` at its default code.
    pub const ALL: [FaultKind; 6] = [
        FaultKind::Panic,
        FaultKind::Abort,
        FaultKind::Segv,
        FaultKind::Exit(DEFAULT_EXIT_CODE),
        FaultKind::Hang,
        FaultKind::OobWrite,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Panic => "panic",
            FaultKind::Abort => "abort",
            FaultKind::Segv => "segv",
            FaultKind::Exit(_) => "exit",
            FaultKind::Hang => "hang",
            FaultKind::OobWrite => "oob-write",
        }
    }
}

/// The exit code of `exit` when none is given.
pub const DEFAULT_EXIT_CODE: i32 = 42;

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::Exit(code) if *code != DEFAULT_EXIT_CODE => write!(f, "exit={code}"),
            k => f.write_str(k.name()),
        }
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "panic" => FaultKind::Panic,
            "abort" => FaultKind::Abort,
            "segv" => FaultKind::Segv,
            "exit" => FaultKind::Exit(DEFAULT_EXIT_CODE),
            "hang" => FaultKind::Hang,
            "oob-write" => FaultKind::OobWrite,
            other => match other.strip_prefix("exit=") {
                Some(code) => match code.parse::<i32>() {
                    Ok(c) if (1..=255).contains(&c) => FaultKind::Exit(c),
                    _ => return Err(format!("exit code '{code}' must be 1 to 255")),
                },
                None => {
                    return Err(format!(
                        "unknown fault kind '{other}' (expected panic, abort, segv, exit[=CODE], hang or oob-write)"
                    ));
                }
            },
        })
    }
}

/// One `--inject-fault` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// The worker that misbehaves.
    pub worker: usize,
    /// How.
    pub kind: FaultKind,
    /// In which round (counting warm-up rounds from 0).
    pub round: u32,
}

impl FromStr for FaultSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let usage = "expected WORKER:KIND[@ROUND], e.g. 1:segv@3";
        let (worker, rest) = s.split_once(':').ok_or_else(|| format!("'{s}': {usage}"))?;
        let worker = worker.trim().parse().map_err(|_| format!("'{worker}' is not a worker id ({usage})"))?;
        let (kind, round) = match rest.split_once('@') {
            Some((k, r)) => (k, r.trim().parse().map_err(|_| format!("'{r}' is not a round number ({usage})"))?),
            None => (rest, 0),
        };
        Ok(FaultSpec { worker, kind: kind.trim().parse()?, round })
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}@{}", self.worker, self.kind, self.round)
    }
}

/// What to do when a worker fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "policy", content = "attempts")]
pub enum OnFault {
    /// Stop the run, report, exit 4.
    Fail,
    /// Replace the worker and repeat the step, up to N times per worker.
    Retry(u32),
}

/// Attempts `retry` allows when no N is given.
pub const DEFAULT_RETRIES: u32 = 3;

impl FromStr for OnFault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fail" => Ok(OnFault::Fail),
            "retry" => Ok(OnFault::Retry(DEFAULT_RETRIES)),
            other => match other.strip_prefix("retry=").map(str::parse::<u32>) {
                Some(Ok(n)) if n >= 1 => Ok(OnFault::Retry(n)),
                _ => Err(format!("'{other}': expected fail, retry or retry=N with N ≥ 1")),
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
    },
    /// A store the MMU refused: the read-only mapping did its job.
    BlockedWrite {
        /// The array written to.
        array: String,
        /// The element.
        index: u64,
        /// The worker whose chunk it is, if any.
        owner: Option<usize>,
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
    /// No report within `--timeout`.
    Timeout {
        /// The limit in seconds.
        seconds: f64,
    },
    /// Reported a failure it could not recover from.
    Failed {
        /// Its message.
        message: String,
    },
    /// Its channel closed but the process was still there.
    Disconnected,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Signal { name, number } => write!(f, "killed by {name} (signal {number})"),
            Cause::BlockedWrite { array, index, owner } => {
                write!(f, "SIGSEGV: write to {array}[{index}]")?;
                if let Some(o) = owner {
                    write!(f, " (worker {o}'s chunk)")?;
                }
                f.write_str(" blocked by the read-only mapping")
            }
            Cause::Exit { code } => write!(f, "exited with code {code}"),
            Cause::Panic { message } => write!(f, "panicked: {message}"),
            Cause::Timeout { seconds } => write!(f, "no report within --timeout {seconds}s (hung)"),
            Cause::Failed { message } => write!(f, "failed: {message}"),
            Cause::Disconnected => f.write_str("closed its channel"),
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
    /// Checking the result.
    Validate,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::StartUp => "start-up",
            Phase::Init => "init",
            Phase::Round => "round",
            Phase::Validate => "validation",
        })
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
    /// Seconds from the start of the step to detection.
    pub detected_after_s: f64,
    /// What the coordinator did: "stopped the run", "replaced", …
    pub action: String,
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

/// Runs the fault on the calling thread. `OobWrite` is the caller's to do
/// (it needs the chunk); every other kind never returns.
pub fn inject(kind: FaultKind, worker: usize, round: u32) {
    match kind {
        FaultKind::Panic => panic!("injected panic in worker {worker} at round {round}"),
        FaultKind::Abort => std::process::abort(),
        FaultKind::Segv => crate::shm::guard::wild_write(),
        FaultKind::Exit(code) => std::process::exit(code),
        FaultKind::Hang => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        FaultKind::OobWrite => {}
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
        assert_eq!("1:segv@3".parse::<FaultSpec>().unwrap(), FaultSpec { worker: 1, kind: FaultKind::Segv, round: 3 });
        assert_eq!(
            "0:exit=7".parse::<FaultSpec>().unwrap(),
            FaultSpec { worker: 0, kind: FaultKind::Exit(7), round: 0 }
        );
        assert_eq!("2:oob-write".parse::<FaultSpec>().unwrap().kind, FaultKind::OobWrite);
        for bad in ["1", "x:panic", "1:boom", "1:panic@x", "1:exit=0", "1:exit=300"] {
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
        assert!("again".parse::<OnFault>().is_err());
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(11), "SIGSEGV");
        assert_eq!(signal_name(6), "SIGABRT");
    }
}
