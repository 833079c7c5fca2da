//! The thread team: one persistent thread per chunk, in this process.
//!
//! Threads share the coordinator's read-write mapping of the segment; a claim
//! registry keeps their chunks disjoint. What processes give and threads
//! cannot is visible here:
//!
//! * a panic unwinds one thread (caught, reported, and the chunk's claim is
//!   released on the way out, so the thread can be replaced);
//! * `abort`, a wild pointer or `exit` ends the whole process, coordinator
//!   included (the process prints a last word on the way down);
//! * a hung thread cannot be killed: it still holds its chunk, so it cannot
//!   be replaced either;
//! * a stray write into another chunk is not stopped by anything.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, Once, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use super::team::{Lost, MemberFacts, ReplaceError, RoundTimes, StepOutcome, Team};
use crate::config::RunConfig;
use crate::error::Error;
use crate::fault::Cause;
use crate::kernel::{Dtype, Element, Position};
use crate::locks::lock;
use crate::machine::PinOutcome;
use crate::machine::cpus::pin_current_thread;
use crate::partition::Partition;
use crate::protocol::{Assignment, Step, StepResult};
use crate::shm::doorbell::{POLL, Watch, completed_rounds, ring_and_wait};
use crate::shm::{FatalSignals, Segment, SharedArrays};
use crate::signals::Interrupted;
use crate::worker::{Executor, serve_doorbell};

/// What each thread left for the coordinator: the result of a step, by
/// sequence.
type Results = Arc<Mutex<Vec<Option<(u32, StepResult)>>>>;

struct Member {
    attempt: u32,
    handle: Option<JoinHandle<()>>,
    panic: Arc<Mutex<Option<String>>>,
    tid: u32,
    pin: PinOutcome,
    /// Hung past the timeout; threads cannot be killed, so it is left behind.
    abandoned: bool,
}

pub(crate) struct ThreadTeam {
    cfg: RunConfig,
    partition: Partition,
    segment: Arc<Segment>,
    arrays: Arc<SharedArrays>,
    members: Vec<Member>,
    results: Results,
    /// While the team lives, a crashing worker thread's signal is announced.
    _fatal: FatalSignals,
}

/// Worker threads' panics are reported by the coordinator, not printed by
/// the default hook.
fn quiet_worker_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name().is_some_and(|n| n.starts_with("vecpar-worker-")) {
                return;
            }
            default(info);
        }));
    });
}

impl ThreadTeam {
    pub(crate) fn start(cfg: &RunConfig, segment: Arc<Segment>) -> Result<(ThreadTeam, Vec<Lost>), Error> {
        quiet_worker_panics();
        crate::shm::announce_exit_from_workers();
        let fatal = crate::shm::announce_fatal_signals(
            "threads share one address space, so the coordinator and every other worker die with it (this is what --mode procs isolates)",
        );
        let arrays = segment.share_arrays()?;
        let mut team = ThreadTeam {
            cfg: cfg.clone(),
            partition: cfg.partition(segment.layout().page),
            segment,
            arrays,
            members: Vec::with_capacity(cfg.procs()),
            results: Arc::new(Mutex::new(vec![None; cfg.procs()])),
            _fatal: fatal,
        };
        let mut lost = Vec::new();
        for id in 0..cfg.procs() {
            let (member, failure) = team.spawn(id, 0, None)?;
            team.members.push(member);
            if let Some(cause) = failure {
                lost.push(Lost::new(id, cause));
            }
        }
        Ok((team, lost))
    }

    /// Starts worker thread `id` and waits until it is ready.
    fn spawn(&self, id: usize, attempt: u32, rebuild: Option<Position>) -> Result<(Member, Option<Cause>), Error> {
        let job = super::assignment(&self.cfg, &self.partition, id, attempt, rebuild);
        self.segment.control().clear_slot(id);
        let panic = Arc::new(Mutex::new(None));
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(PinOutcome, u32), String>>(1);
        let (segment, arrays, panic_slot, results) =
            (Arc::clone(&self.segment), Arc::clone(&self.arrays), Arc::clone(&panic), Arc::clone(&self.results));
        let handle = std::thread::Builder::new()
            .name(format!("vecpar-worker-{id}"))
            .spawn(move || {
                let body = AssertUnwindSafe(move || match job.dtype {
                    Dtype::F64 => serve_thread::<f64>(&segment, &arrays, &job, ready_tx, &results),
                    Dtype::F32 => serve_thread::<f32>(&segment, &arrays, &job, ready_tx, &results),
                });
                if let Err(payload) = std::panic::catch_unwind(body) {
                    *lock(&panic_slot) = Some(crate::diag::payload_message(payload.as_ref()));
                }
            })
            .map_err(|e| Error::runtime_from(format!("cannot start worker thread {id}; lower --procs"), e))?;
        let mut member =
            Member { attempt, handle: Some(handle), panic, tid: 0, pin: PinOutcome::Unpinned, abandoned: false };
        // In slices, so that Ctrl-C is answered within a poll whatever the
        // start-up patience.
        let mut patience = crate::clock::Patience::new(self.cfg.start_up_patience());
        let ready = loop {
            if let Err(i) = crate::signals::check() {
                return Err(i.into());
            }
            match ready_rx.recv_timeout(POLL) {
                Err(mpsc::RecvTimeoutError::Timeout) if !patience.tick() => continue,
                other => break other,
            }
        };
        let failure = match ready {
            Ok(Ok((pin, tid))) => {
                member.pin = pin;
                member.tid = tid;
                None
            }
            Ok(Err(message)) => Some(Cause::Failed { message }),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                member.abandoned = true;
                Some(Cause::Timeout { seconds: self.cfg.start_up_patience().as_secs_f64() })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Some(h) = member.handle.take() {
                    let _ = h.join();
                }
                let message = lock(&member.panic).clone().unwrap_or_default();
                Some(Cause::Panic { message })
            }
        };
        Ok((member, failure))
    }

    fn live_ids(&self) -> Vec<usize> {
        (0..self.members.len()).filter(|&id| !self.members[id].abandoned && self.members[id].handle.is_some()).collect()
    }
}

fn serve_thread<T: Element>(
    segment: &Segment,
    arrays: &Arc<SharedArrays>,
    job: &Assignment,
    ready: mpsc::SyncSender<Result<(PinOutcome, u32), String>>,
    results: &Results,
) {
    let id = job.id as usize;
    let control = segment.control();
    let setup = (|| {
        let chunk = arrays.claim(job.range()).map_err(|e| {
            format!("{e}: worker thread {id}'s previous thread is hung and still holds the chunk; a thread cannot be killed, so its chunk cannot be handed to a new one")
        })?;
        let mut exec = Executor::<T, _>::new(job, chunk, control.pulse(id))?;
        if let Some(to) = job.rebuild {
            exec.rebuild(to);
        }
        Ok::<_, String>(exec)
    })();
    let mut exec = match setup {
        Ok(exec) => exec,
        Err(message) => {
            let _ = ready.send(Err(message));
            return;
        }
    };
    let pin = pin_current_thread(job.pin.map(|c| c as usize));
    // A fault of this thread is a worker thread's (see announce_fatal_signals).
    let _worker = crate::shm::WorkerThread::register();
    let seen = control.bell();
    let tid = nix::unistd::gettid().as_raw() as u32;
    if ready.send(Ok((pin, tid))).is_err() {
        return;
    }
    drop(ready);
    let spin = Duration::from_micros(job.spin_us.into());
    serve_doorbell(&mut exec, &control, seen, spin, || true, |seq, result| lock(results)[id] = Some((seq, result)));
}

/// The members as the waiting coordinator sees them.
struct Members<'t>(&'t mut [Member]);

impl Watch for Members<'_> {
    fn gone(&mut self, ids: &[usize]) -> Vec<Lost> {
        let finished: Vec<usize> =
            ids.iter().copied().filter(|&id| self.0[id].handle.as_ref().is_some_and(|h| h.is_finished())).collect();
        finished
            .into_iter()
            .map(|id| {
                let m = &mut self.0[id];
                if let Some(h) = m.handle.take() {
                    let _ = h.join();
                }
                let cause = match lock(&m.panic).clone() {
                    Some(message) => Cause::Panic { message },
                    None => Cause::Failed { message: "the thread returned".into() },
                };
                Lost::new(id, cause)
            })
            .collect()
    }

    fn hung(&mut self, ids: &[usize], patience: Duration) -> Vec<Lost> {
        // It cannot be killed; leave it sleeping, detached.
        for &id in ids {
            self.0[id].abandoned = true;
        }
        ids.iter().map(|&id| Lost::new(id, Cause::Timeout { seconds: patience.as_secs_f64() })).collect()
    }
}

impl Team for ThreadTeam {
    fn silent_since_ns(&self, id: usize) -> Option<u64> {
        self.segment.control().silent_since_ns(id)
    }

    fn member(&self, id: usize) -> MemberFacts {
        let m = &self.members[id];
        MemberFacts { pid: std::process::id(), tid: Some(m.tid), pin: m.pin.clone(), attempt: m.attempt }
    }

    fn batch_limit(&self) -> u32 {
        crate::shm::BATCH as u32
    }

    fn step(&mut self, step: &Step, patience: Duration) -> Result<StepOutcome, Interrupted> {
        let live = self.live_ids();
        let segment = Arc::clone(&self.segment);
        let control = segment.control();
        let spin = self.cfg.placement().coordinator_spin;
        let rung = ring_and_wait(&control, step, &live, (spin, POLL), patience, &mut Members(&mut self.members))?;
        let seq = rung.seq;
        let mut outcome = StepOutcome { lost: rung.lost, ..StepOutcome::default() };
        match *step {
            Step::Run { count, .. } => {
                outcome.rounds =
                    completed_rounds(&control, seq, &live, count).into_iter().map(RoundTimes::from).collect()
            }
            Step::Shutdown => {}
            _ => {
                let mut results = lock(&self.results);
                outcome.results = (0..self.members.len())
                    .map(|id| match results[id].take() {
                        Some((s, r)) if s == seq && !outcome.lost.iter().any(|l| l.id == id) => Some(r),
                        _ => None,
                    })
                    .collect();
            }
        }
        Ok(outcome)
    }

    fn replace(&mut self, id: usize, at: Option<Position>) -> Result<(), ReplaceError> {
        if self.members[id].abandoned {
            return Err(ReplaceError::Impossible(format!(
                "worker thread {id} is hung and still holds its chunk; a thread cannot be killed, so the chunk cannot be handed to a new one"
            )));
        }
        let attempt = self.members[id].attempt + 1;
        match self.spawn(id, attempt, at) {
            Ok((member, None)) => {
                self.members[id] = member;
                Ok(())
            }
            Ok((member, Some(cause))) => {
                self.members[id] = member;
                Err(ReplaceError::Lost(Lost::new(id, cause)))
            }
            Err(e) => Err(ReplaceError::Impossible(e.to_string())),
        }
    }

    fn shutdown(&mut self) {
        let live = self.live_ids();
        if live.is_empty() {
            return;
        }
        // Threads that cannot stop are only the abandoned ones, which are
        // not asked; the others get a few seconds, then are left to the
        // process's exit.
        self.segment.control().ring(&Step::Shutdown, live.len() as u32, crate::clock::now_ns());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        for id in live {
            if let Some(h) = self.members[id].handle.take() {
                while !h.is_finished() && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_micros(200));
                }
                if h.is_finished() {
                    let _ = h.join();
                }
            }
        }
    }
}

impl Drop for ThreadTeam {
    fn drop(&mut self) {
        // Threads still serving (an error path) see Shutdown and exit; a hung
        // one stays asleep until the process exits.
        if self.members.iter().any(|m| m.handle.is_some() && !m.abandoned) {
            self.shutdown();
        }
    }
}
