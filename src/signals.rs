//! Terminating signals: stop, reap, release, then exit 128 + N.
//!
//! [`install`] blocks every signal whose default action would end the
//! process (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGALRM, SIGUSR1, …) before any
//! other thread exists, so they all reach one thread that waits for them.
//! The fault signals (SIGSEGV, SIGBUS, SIGABRT, …) cannot be blocked — the
//! kernel raises them on the faulting thread — but when another process
//! *sends* one, its handler forwards it here ([`forward`]) and it takes the
//! same path. SIGXFSZ is blocked and never taken: a write past `ulimit -f`
//! fails with EFBIG, reported as an error naming the limit.
//! That thread only raises a flag: the coordinator checks it in every wait
//! (at least every few tens of milliseconds), stops and reaps its workers on
//! the ordinary path, releases the segment, and exits with 128 + the signal
//! number, as a shell expects. Nothing calls `exit` behind the destructors'
//! back.
//!
//! Should the ordinary path not finish within [`GRACE`] (or a second signal
//! arrive — not the same one again within [`ECHO`], which is how Slurm's
//! time limit signals), the signal thread stops every registered child itself — worker
//! process groups with SIGKILL, child coordinators with SIGTERM and then
//! SIGKILL — reaps them and exits. Children are registered in a lock-free
//! table ([`ChildGuard`]) that a signal handler may read too
//! ([`kill_children_now`]).
//!
//! Workers are in process groups of their own, so a Ctrl-C at the terminal
//! reaches the coordinator only; they also die with it through
//! `PR_SET_PDEATHSIG` if it is SIGKILLed.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, pthread_sigmask};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

/// How long the ordinary path has after a signal before the signal thread
/// stops the children itself.
pub(crate) const GRACE: Duration = Duration::from_secs(5);

/// Every signal whose default action terminates the process and that can be
/// caught; the synchronous faults (SIGSEGV, SIGBUS, …) are not among them.
const TERMINATING: [Signal; 13] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGALRM,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGIO,
    Signal::SIGPROF,
    Signal::SIGVTALRM,
    Signal::SIGXCPU,
    Signal::SIGPWR,
    Signal::SIGSTKFLT,
];

static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

/// A fault signal another process sent, handed from its handler to the
/// signal thread (which SIGURG wakes: a signal nobody else sends us).
static FORWARDED: AtomicI32 = AtomicI32::new(0);

/// The signal that wakes the signal thread for a forwarded one.
const DOORBELL: Signal = Signal::SIGURG;

/// From a fault signal's handler: the signal `sig` was sent by another
/// process, so it is a terminating signal like SIGTERM — the signal thread
/// stops the run in order. Only an atomic store and `kill(2)`, which are
/// async-signal-safe.
pub(crate) fn forward(sig: i32) {
    FORWARDED.store(sig, Ordering::SeqCst);
    let _ = kill(nix::unistd::getpid(), DOORBELL);
}

/// For a worker: blocks the terminating signals, which its coordinator
/// receives for it (a Slurm step or a terminal signals every process at
/// once); a worker is stopped by its coordinator, and dies with it.
pub(crate) fn block_terminating() {
    let mut set = SigSet::empty();
    for s in TERMINATING {
        set.add(s);
    }
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
}

/// Runs `spawn` (the start of a child process) with no signal blocked in
/// this thread, so that the child starts with none blocked — std's spawn
/// passes the thread's mask on, and a program started with SIGTERM blocked
/// could not be stopped by it. A terminating signal that arrives meanwhile
/// finds this thread and the handler [`install`]'s caller put in place,
/// which forwards it; a forwarded one whose doorbell this thread swallowed
/// is rung again.
pub(crate) fn with_no_signal_blocked<R>(spawn: impl FnOnce() -> R) -> R {
    let mut old = SigSet::empty();
    let changed = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), Some(&mut old)).is_ok();
    let out = spawn();
    if changed {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
        if FORWARDED.load(Ordering::SeqCst) != 0 {
            let _ = kill(nix::unistd::getpid(), DOORBELL);
        }
    }
    out
}

/// The next terminating signal: one in the set, or one forwarded through
/// the doorbell (a stray SIGURG is ignored).
fn next(set: &SigSet) -> Option<Signal> {
    loop {
        let sig = set.wait().ok()?;
        if sig != DOORBELL {
            return Some(sig);
        }
        if let Ok(forwarded) = Signal::try_from(FORWARDED.swap(0, Ordering::SeqCst)) {
            return Some(forwarded);
        }
    }
}

/// The coordinator was interrupted by a signal; it exits with 128 + N.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {}", .0.as_str())]
pub struct Interrupted(pub Signal);

impl Interrupted {
    /// 128 + the signal number.
    pub fn exit_code(self) -> u8 {
        (128 + self.0 as i32).clamp(0, 255) as u8
    }
}

/// Blocks the terminating signals here, installs the handlers
/// (`handlers`, given the terminating signals: for the fault signals, and
/// for a terminating one that finds a thread spawning a child; they may
/// [`forward`] from now on), and handles them all on a thread of their
/// own. Call first thing in `main`, before any other thread is started
/// (threads inherit the mask; so would spawned processes, which start
/// through [`with_no_signal_blocked`] instead).
pub(crate) fn install(handlers: impl FnOnce(&[i32]) -> std::io::Result<()>) -> std::io::Result<()> {
    let mut set = SigSet::empty();
    for s in TERMINATING {
        set.add(s);
    }
    set.add(DOORBELL);
    // SIGXFSZ stays blocked and is never waited for: a write beyond the
    // file size limit (ulimit -f) then fails with EFBIG, which is reported
    // naming the limit, instead of ending the process.
    let mut blocked = set;
    blocked.add(Signal::SIGXFSZ);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None).map_err(std::io::Error::from)?;
    // With the doorbell blocked, a forwarded signal waits for the thread.
    handlers(&TERMINATING.map(|s| s as i32))?;
    std::thread::Builder::new().name("vecpar-signals".into()).spawn(move || {
        let Some(first) = next(&set) else { return };
        // What must be seen as the signal arrives is seen before anyone
        // learns of it.
        if let Some(note) = ON_ARRIVAL.get() {
            // Never at the cost of the signal: a note that panics is lost.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(note));
        }
        INTERRUPTED.store(first as i32, Ordering::SeqCst);
        // The ordinary path now has GRACE to finish; a second signal or the
        // end of the grace forces it.
        let at = Instant::now();
        let grace = std::thread::Builder::new().name("vecpar-grace".into()).spawn(move || {
            std::thread::sleep(GRACE);
            force_exit(first, format!("the run did not wind down within {} s", GRACE.as_secs()));
        });
        if grace.is_err() {
            force_exit(first, "no thread could time the orderly stop".into());
        }
        loop {
            let Some(second) = next(&set) else { return };
            // The same signal again is a second request only from a
            // person: Ctrl-C pressed again (after ECHO, so not a copy the
            // terminal sent at once). Launchers repeat SIGTERM (Slurm's
            // time limit sends it twice) and follow it with SIGKILL; the
            // orderly stop is bounded by GRACE anyway.
            if second == first && (first != Signal::SIGINT || at.elapsed() < ECHO) {
                continue;
            }
            force_exit(first, format!("{} arrived during the orderly stop", second.as_str()));
        }
    })?;
    Ok(())
}

/// The signal that interrupted the run, if one did.
pub(crate) fn interrupted() -> Option<Interrupted> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => None,
        n => Signal::try_from(n).ok().map(Interrupted),
    }
}

/// `Err` once a terminating signal has arrived.
pub(crate) fn check() -> Result<(), Interrupted> {
    interrupted().map_or(Ok(()), Err)
}

/// What a signal means where this process runs (the launcher's reasons
/// for sending it), for the forced stop's line; set by [`explain_with`].
static EXPLAIN: std::sync::OnceLock<fn(Signal) -> Option<&'static str>> = std::sync::OnceLock::new();

/// Run by the signal thread as the first terminating signal arrives,
/// before [`interrupted`] says so; set by [`on_arrival`].
static ON_ARRIVAL: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>> = std::sync::OnceLock::new();

/// Has `note` run as the first terminating signal arrives (once per
/// process; a second call is ignored): for what that moment's state says
/// about why the signal came, such as an MPI rank already gone.
#[cfg(feature = "mpi")]
pub(crate) fn on_arrival(note: Box<dyn Fn() + Send + Sync>) {
    let _ = ON_ARRIVAL.set(note);
}

/// Says what a signal means where this process runs, in the line of a
/// forced stop.
pub(crate) fn explain_with(explain: fn(Signal) -> Option<&'static str>) {
    let _ = EXPLAIN.set(explain);
}

/// The same signal again within this time is an echo of the first.
const ECHO: Duration = Duration::from_millis(100);

/// Stops every registered child, reaps them, and exits 128 + N, saying
/// `why` the orderly path was cut short.
fn force_exit(signal: Signal, why: String) -> ! {
    let stopped = stop_children();
    let meaning = EXPLAIN.get().and_then(|explain| explain(signal)).map(|m| format!(" ({m})")).unwrap_or_default();
    crate::diag::line(
        "",
        format!(
            "interrupted by {}{meaning}; stopped {stopped} child process{} forcibly ({why})",
            signal.as_str(),
            if stopped == 1 { "" } else { "es" },
        ),
    );
    std::process::exit(Interrupted(signal).exit_code().into());
}

/// What a registered child is, and so how it is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum ChildKind {
    /// A worker, leader of its own process group: SIGKILL to the group.
    Worker = 1,
    /// A child `vecpar-coord` (the isolation experiment's), leader of its
    /// own group: SIGTERM, so that it stops its own workers, then SIGKILL.
    Coordinator = 2,
}

const TABLE: usize = 8192;
/// A slot won but not yet published.
const RESERVED: i32 = -1;
static PIDS: [AtomicI32; TABLE] = [const { AtomicI32::new(0) }; TABLE];
static KINDS: [AtomicU8; TABLE] = [const { AtomicU8::new(0) }; TABLE];

/// A child in the table of processes to stop on a forced exit; removed on drop.
///
/// Readers (the forced exit, a signal handler) act only on positive pids.
#[derive(Debug)]
pub(crate) struct ChildGuard {
    slot: Option<usize>,
}

impl ChildGuard {
    /// Registers `pid`, the leader of its own process group. A full table
    /// only loses the forced path for this child (it still dies with its
    /// parent through `PR_SET_PDEATHSIG`).
    pub(crate) fn register(pid: u32, kind: ChildKind) -> ChildGuard {
        let pid = pid as i32;
        for (i, cell) in PIDS.iter().enumerate() {
            // Win the slot first (a placeholder no reader acts on), then
            // say what the child is, then publish its pid: a reader that
            // sees the pid sees its kind, and two registrations can never
            // mix one's pid with the other's kind.
            if cell.load(Ordering::Relaxed) == 0
                && cell.compare_exchange(0, RESERVED, Ordering::SeqCst, Ordering::Relaxed).is_ok()
            {
                KINDS[i].store(kind as u8, Ordering::SeqCst);
                cell.store(pid, Ordering::SeqCst);
                return ChildGuard { slot: Some(i) };
            }
        }
        ChildGuard { slot: None }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            PIDS[i].store(0, Ordering::SeqCst);
        }
    }
}

fn registered() -> Vec<(i32, u8)> {
    PIDS.iter()
        .zip(&KINDS)
        .filter_map(|(p, k)| {
            let pid = p.load(Ordering::SeqCst);
            (pid > 0).then(|| (pid, k.load(Ordering::SeqCst)))
        })
        .collect()
}

/// Stops and reaps every registered child, then every stray; returns how
/// many there were.
pub(crate) fn stop_children() -> usize {
    let children = registered();
    for &(pid, kind) in &children {
        let signal = if kind == ChildKind::Coordinator as u8 { Signal::SIGTERM } else { Signal::SIGKILL };
        let _ = kill(Pid::from_raw(-pid), signal);
    }
    // Child coordinators get two seconds to stop their own workers.
    let deadline = Instant::now() + Duration::from_secs(2);
    for &(pid, kind) in &children {
        loop {
            match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(nix::sys::wait::WaitStatus::StillAlive) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(nix::sys::wait::WaitStatus::StillAlive) => {
                    let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
                    let _ = waitpid(Pid::from_raw(pid), None);
                    break;
                }
                _ => break,
            }
            let _ = kind;
        }
    }
    children.len() + reap_strays()
}

/// Makes this process the reaper of its orphaned descendants
/// (`PR_SET_CHILD_SUBREAPER`): whatever a worker starts and leaves behind —
/// even in a session of its own, out of reach of its process group — comes
/// to this process when the worker dies, and [`reap_strays`] ends it.
pub(crate) fn adopt_orphans() {
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// Kills and reaps every child of this process that it did not register
/// ([`ChildGuard`]): the descendants its workers left when they ended,
/// which came to it as their subreaper. Call once the workers are reaped.
/// Returns how many there were.
pub(crate) fn reap_strays() -> usize {
    let me = std::process::id() as i32;
    let mut count = 0;
    // A stray that forked meanwhile leaves its own child to us: go on
    // until none is left (SIGKILL stops them forking).
    for _ in 0..1000 {
        let ours: Vec<i32> = registered().into_iter().map(|(pid, _)| pid).collect();
        let strays: Vec<i32> = children_of(me).into_iter().filter(|pid| !ours.contains(pid)).collect();
        if strays.is_empty() {
            break;
        }
        for &pid in &strays {
            let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        for &pid in &strays {
            let _ = waitpid(Pid::from_raw(pid), None);
            count += 1;
        }
    }
    count
}

/// The processes whose parent is `parent` (zombies included).
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse::<i32>().ok())
                == Some(parent)
        })
        .collect()
}

/// From a signal handler: SIGKILL to every registered child's process group.
/// Only atomic loads and `kill(2)`, which are async-signal-safe.
pub(crate) fn kill_children_now() {
    for cell in &PIDS {
        let pid = cell.load(Ordering::SeqCst);
        if pid > 0 {
            let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
        }
    }
}

/// The environment variable through which a parent `vecpar-coord` (the
/// isolation experiment) asks its child runs to die with it.
pub(crate) const PARENT_ENV: &str = "VECPAR_DIE_WITH_PARENT";

/// If the parent asked (see [`PARENT_ENV`]), arranges to die at once with
/// it (SIGKILL: its workers die with it in turn, and its memfd with the
/// last of them), and returns `false` when it is already gone.
pub(crate) fn die_with_parent_if_asked() -> bool {
    let Some(parent) = std::env::var_os(PARENT_ENV).and_then(|v| v.to_str()?.parse::<i32>().ok()) else {
        return true;
    };
    if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() {
        return true;
    }
    nix::unistd::getppid().as_raw() == parent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_registrations_keep_each_pid_with_its_kind() {
        let guards: Vec<ChildGuard> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8u32)
                .map(|t| {
                    s.spawn(move || {
                        (0..50u32)
                            .map(|k| {
                                let pid = 4_000_000 + t * 1000 + k;
                                let kind = if pid % 2 == 0 { ChildKind::Worker } else { ChildKind::Coordinator };
                                ChildGuard::register(pid, kind)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let mine: Vec<(i32, u8)> = registered().into_iter().filter(|(p, _)| *p >= 4_000_000).collect();
        assert_eq!(mine.len(), 400);
        for (pid, kind) in mine {
            let want = if pid % 2 == 0 { ChildKind::Worker } else { ChildKind::Coordinator };
            assert_eq!(kind, want as u8, "pid {pid}");
        }
        drop(guards);
        assert!(registered().iter().all(|(p, _)| *p < 4_000_000), "every slot freed");
    }
}
