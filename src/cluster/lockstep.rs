//! The ranks of an MPI job in lockstep ([`Lockstep`] over `MPI_COMM_WORLD`).
//!
//! Every collective is started non-blocking and completed in a loop that
//! also watches for what plain MPI would wait through forever: a rank of
//! this node that is gone, a terminating signal (mpirun's way of ending the
//! job when it lost a rank), and the `--timeout` watchdog. Each ends the
//! job with one line naming what happened, after stopping this rank's
//! workers and removing its unfinished exports.
//!
//! The rank faults of `--inject-fault rank:R:KIND@ROUND` fire here, at the
//! barrier before their round.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::request::{Request, Scope};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use nix::sys::signal::Signal;

use super::Peer;
use crate::error::EXIT_RUNTIME;
use crate::export::{Destination, Format};
use crate::fault::{Ending, FaultSpec};
use crate::kernel::data::{DotReference, Mismatch};
use crate::kernel::reduce::Node;
use crate::report::Validation;
use crate::run::lockstep::Lockstep;
use crate::shm::window::Window;

/// The job's ranks, as one rank moves in step with them.
pub(super) struct MpiLockstep<'a> {
    pub(super) world: &'a SimpleCommunicator,
    pub(super) rank: usize,
    pub(super) global_len: u64,
    /// Every rank, by world rank.
    pub(super) peers: &'a [Peer],
    /// How long a collective may wait before the job is stuck: (retries +
    /// 2) × `--timeout` + (retries + 1) × the start-up patience + 5 s, so
    /// that a rank whose own worker hangs (declared after `--timeout`, and
    /// replaced as often as retry allows), or whose workers are slow to
    /// start, is outwaited by the others.
    pub(super) timeout: Duration,
    /// This rank's own faults.
    pub(super) faults: Vec<FaultSpec>,
    /// The window, in `--mode ranks` (for a rank's `oob-write`).
    pub(super) window: Option<&'a Window>,
    /// Rank 0's exports, opened before the run; removed if the job ends.
    pub(super) exports: RefCell<Vec<(Destination, Format)>>,
    /// The round the job is in (for the lines that say where it ended).
    round: Cell<Option<u32>>,
    /// The faults that fired, a bit each (a repeated round does not fire
    /// one again).
    fired: Cell<u64>,
    /// The ranks whose processes this rank can see (in another pid
    /// namespace a peer is not watched: its absence would prove nothing).
    visible: Vec<bool>,
    /// Where each rank's share of the global arrays begins, in order, with
    /// the rank: the owner of a global index.
    starts: Vec<(u64, usize)>,
}

impl<'a> MpiLockstep<'a> {
    pub(super) fn new(
        world: &'a SimpleCommunicator,
        global_len: u64,
        peers: &'a [Peer],
        timeout: Duration,
        faults: Vec<FaultSpec>,
        starts: Vec<(u64, usize)>,
    ) -> MpiLockstep<'a> {
        MpiLockstep {
            world,
            rank: world.rank() as usize,
            global_len,
            peers,
            timeout,
            faults,
            window: None,
            exports: RefCell::new(Vec::new()),
            round: Cell::new(None),
            fired: Cell::new(0),
            visible: peers.iter().map(|p| alive(p.pid)).collect(),
            starts,
        }
    }

    /// The rank whose share holds global element `index`.
    fn owner(&self, index: u64) -> Option<usize> {
        self.starts.iter().rev().find(|(start, _)| *start <= index).map(|(_, r)| *r)
    }

    /// Completes `request`, watching for a lost rank, a signal and the
    /// watchdog while it waits.
    fn settle<'s, D: ?Sized, S: Scope<'s>>(&self, mut request: Request<'s, D, S>, what: &str) {
        let since = Instant::now();
        let mut tries = 0u64;
        let mut next_look = Duration::from_millis(100);
        loop {
            match request.test() {
                Ok(_) => return,
                Err(r) => request = r,
            }
            tries += 1;
            if tries < 1000 {
                std::hint::spin_loop();
                continue;
            }
            // Waiting long: give the CPU away (ranks may outnumber CPUs).
            let waited = since.elapsed();
            std::thread::sleep(if waited < Duration::from_millis(10) {
                Duration::ZERO
            } else {
                Duration::from_micros(200)
            });
            if let Some(i) = crate::signals::interrupted() {
                self.end_if_lost(i.0, &format!("this rank was waiting for the other ranks {what}"), false);
                self.end_job(
                    &format!("{} while waiting for the other ranks {what}", signal_reason(i.0)),
                    Ending::Signalled { signal: i.0 as i32 },
                    i.exit_code(),
                );
            }
            if waited >= next_look {
                next_look = waited + Duration::from_millis(100);
                if let Some((rank, lost)) = self.lost_peer() {
                    self.end_job(
                        &format!("the job lost {lost} (seen waiting for the other ranks {what})"),
                        Ending::RankLost { rank },
                        EXIT_RUNTIME,
                    );
                }
            }
            if waited >= self.timeout {
                self.end_job(
                    &format!(
                        "waited {:.0} s for the other ranks {what} (the limit, from --timeout and the time a worker may take to \
                         start, is {:.0} s): a rank is stuck or gone",
                        waited.as_secs_f64(),
                        self.timeout.as_secs_f64()
                    ),
                    Ending::RanksStuck,
                    EXIT_RUNTIME,
                );
            }
        }
    }

    /// A rank on this node whose process is gone, described.
    fn lost_peer(&self) -> Option<(usize, String)> {
        lost_among(self.peers, self.rank, &self.visible)
    }

    /// From now on, the first terminating signal notes which rank of this
    /// node was already gone as it arrived (see [`Self::end_if_lost`]).
    pub(super) fn note_losses_at_signals(&self) {
        let (peers, rank, visible) = (self.peers.to_vec(), self.rank, self.visible.clone());
        crate::signals::on_arrival(Box::new(move || {
            let _ = GONE_AT_SIGNAL.set(lost_among(&peers, rank, &visible));
        }));
    }

    /// Ends the job naming a lost rank, when `signal` interrupted this one
    /// and a rank of its node was already gone as the signal arrived:
    /// mpirun sends SIGTERM once a rank is gone, so the loss is the cause
    /// to name and the signal its sequel. A rank that ended after the
    /// signal (one SIGTERM to every rank: the job was interrupted) is not
    /// counted. (`seen`: where this rank was.)
    /// `abort`: end the job through `MPI_Abort` (the others may still wait
    /// for this rank), else as a rank that lost a peer does.
    pub(super) fn end_if_lost(&self, signal: Signal, seen: &str, abort: bool) {
        if let Some(Some((rank, lost))) = GONE_AT_SIGNAL.get().cloned() {
            self.wind_up(
                &format!("the job lost {lost}, gone when {} arrived ({seen})", signal.as_str()),
                Ending::RankLost { rank },
            );
            let code = i32::from(EXIT_RUNTIME);
            if abort { crate::shm::window::abort_job(code) } else { crate::shm::window::exit_now(code) }
        }
    }

    /// Ends this rank — and so, through mpirun, the job — after saying why
    /// (and, typed, `ending`).
    fn end_job(&self, why: &str, ending: Ending, code: u8) -> ! {
        self.wind_up(why, ending);
        crate::shm::window::exit_now(i32::from(code))
    }

    /// Says why the job ends, stops this rank's workers and removes its
    /// unfinished exports.
    fn wind_up(&self, why: &str, ending: Ending) {
        crate::diag::error(format!(
            "{why}; MPI cannot go on without a rank (no ULFM), so the job ends: this rank's workers are \
             stopped and its shared memory released"
        ));
        ending.announce();
        crate::signals::stop_children();
        self.exports.borrow_mut().clear(); // removes the unfinished files
    }

    fn all_reduce<T: Equivalence + Copy>(&self, x: T, op: SystemOperation, what: &str) -> T {
        let mut out = x;
        mpi::request::scope(|scope| {
            let request = self.world.immediate_all_reduce_into(scope, &x, &mut out, op);
            self.settle(request, what);
        });
        out
    }

    /// Everyone's `x`, by rank; the wait watched as every other.
    pub(super) fn exchange_json<T: serde::Serialize + serde::de::DeserializeOwned>(&self, x: &T, what: &str) -> Vec<T> {
        // Meet first (watched): after it, everyone is here and alive.
        self.settle(self.world.immediate_barrier(), what);
        all_gather_json(self.world, x)
    }

    /// The same exit code everywhere: the largest.
    pub(super) fn agree_code(&self, code: u8) -> u8 {
        self.all_reduce(u32::from(code), SystemOperation::max(), "to agree on the exit code") as u8
    }

    /// `what` and the round the job is in (before the first round, the
    /// start-up).
    fn at(&self, what: &str) -> String {
        match self.round.get() {
            Some(r) => format!("{what} {r}"),
            None => "during start-up".into(),
        }
    }

    /// Injects this rank's fault for `round`, if it has one.
    fn inject(&self, round: u32) {
        let unfired = |(i, f): &(usize, &FaultSpec)| f.round == round && self.fired.get() & (1 << (i % 64)) == 0;
        let Some((i, f)) = self.faults.iter().enumerate().find(unfired) else { return };
        self.fired.set(self.fired.get() | 1 << (i % 64));
        crate::diag::line("fault", format!("injecting {} into this rank in round {round}", f.kind));
        crate::worker::inject(f.kind, round, &RankTarget { rank: self.rank, window: self.window });
    }
}

/// A rank, as an injected fault's target.
struct RankTarget<'w> {
    rank: usize,
    window: Option<&'w Window>,
}

impl crate::worker::FaultTarget for RankTarget<'_> {
    fn who(&self) -> String {
        format!("rank {}", self.rank)
    }

    fn stray_store(&self) {
        if let Some(w) = self.window {
            let _ = w.stray_into_neighbour();
            crate::diag::line("fault", "the stray store went through");
        }
    }

    fn exit(&self, code: i32) -> ! {
        // Not `exit`: MPI's exit handlers would wait for ranks that are gone.
        crate::shm::window::exit_now(code)
    }
}

/// Everyone's `x`, by rank (blocking: after a watched barrier, or at the
/// start, before there is anything to watch).
pub(super) fn all_gather_json<T: serde::Serialize + serde::de::DeserializeOwned>(
    world: &SimpleCommunicator,
    x: &T,
) -> Vec<T> {
    let bytes = serde_json::to_vec(x).expect("plain data serialises");
    let mut counts = vec![0i32; world.size() as usize];
    world.all_gather_into(&(bytes.len() as i32), &mut counts[..]);
    let displs: Vec<i32> = counts.iter().scan(0, |at, &c| Some(std::mem::replace(at, *at + c))).collect();
    let mut all = vec![0u8; counts.iter().map(|&c| c as usize).sum()];
    {
        let mut part = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
        world.all_gather_varcount_into(&bytes[..], &mut part);
    }
    displs
        .iter()
        .zip(&counts)
        .map(|(&d, &c)| {
            serde_json::from_slice(&all[d as usize..(d + c) as usize]).expect("every rank runs the same vecpar")
        })
        .collect()
}

/// The rank of `rank`'s node (among those it saw at the start) that is
/// gone, if one is.
fn lost_among(peers: &[Peer], rank: usize, visible: &[bool]) -> Option<(usize, String)> {
    let me = &peers[rank];
    peers.iter().enumerate().find_map(|(r, p)| {
        let same_node = p.leader == me.leader && r != rank && visible[r];
        (same_node && !alive(p.pid)).then(|| (r, format!("rank {r} (pid {} on {})", p.pid, p.host)))
    })
}

/// The rank of this node found gone as the first terminating signal
/// arrived, if one was (`None` inside: none was).
static GONE_AT_SIGNAL: std::sync::OnceLock<Option<(usize, String)>> = std::sync::OnceLock::new();

/// Whether process `pid` still runs (a zombie does not).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|s| s != 'Z' && s != 'X'),
        Err(_) => false,
    }
}

fn signal_reason(s: Signal) -> String {
    match crate::launcher::signal_meaning(s) {
        Some(meaning) => format!("{} arrived ({meaning})", s.as_str()),
        None => format!("{} arrived", s.as_str()),
    }
}

impl Lockstep for MpiLockstep<'_> {
    fn global_len(&self) -> u64 {
        self.global_len
    }

    fn barrier(&self, round: u32) {
        self.round.set(Some(round));
        self.inject(round);
        self.settle(self.world.immediate_barrier(), &format!("at the start of round {round}"));
    }

    fn max(&self, x: f64) -> f64 {
        self.all_reduce(x, SystemOperation::max(), &self.at("at the end of round"))
    }

    fn any(&self, x: bool) -> bool {
        self.all_reduce(u32::from(x), SystemOperation::max(), &self.at("to agree on what comes after round")) != 0
    }

    fn combine(&self, mine: Validation) -> Validation {
        let all = self.exchange_json(&mine, "to combine the validation");
        let mut first: Option<(Mismatch, Option<usize>)> = None;
        let mut c = 0u64;
        let mut a = 0u64;
        let mut checked = 0u64;
        for v in &all {
            checked += v.checked;
            c ^= u64::from_str_radix(&v.c_digest, 16).unwrap_or(0);
            if let Some(d) = &v.a_digest {
                a ^= u64::from_str_radix(d, 16).unwrap_or(0);
            }
            if let Some(m) = v.mismatch
                && first.as_ref().is_none_or(|(f, _)| m.index < f.index)
            {
                first = Some((m, v.mismatch_owner));
            }
        }
        Validation {
            checked,
            mismatch: first.map(|f| f.0),
            // The worker is the owner's: only the rank that owns it knows
            // (a rank checking a neighbour's chunk in --mode ranks finds
            // none of its own).
            mismatch_owner: first.and_then(|f| f.1),
            mismatch_rank: first.and_then(|f| self.owner(f.0.index)),
            c_digest: format!("{c:016x}"),
            a_digest: mine.a_digest.as_ref().map(|_| format!("{a:016x}")),
            history: mine.history,
            checked_by: mine.checked_by,
        }
    }

    fn gather_dot(&self, nodes: Vec<Node>, reference: DotReference) -> (Vec<Node>, DotReference) {
        let all = self.exchange_json(&(nodes, reference), "to combine the partial sums");
        let mut out = (Vec::new(), DotReference::default());
        for (n, r) in all {
            out.0.extend(n);
            out.1 = out.1.plus(r);
        }
        out
    }

    fn sync_memory(&self) {
        if let Some(w) = self.window {
            w.sync();
        }
    }
}
