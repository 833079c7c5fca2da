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
use std::time::{Duration, Instant};

use super::{Lost, MemberFacts, ReplaceError, Team, Waited, assignment, wait_doorbell};
use crate::config::RunConfig;
use crate::cpus::{PinOutcome, pin_current_thread};
use crate::error::Error;
use crate::fault::Cause;
use crate::ipc::Assignment;
use crate::kernel::{Dtype, Element, Kernel};
use crate::partition::Partition;
use crate::shm::control::BATCH;
use crate::shm::{Command, Segment, SharedArrays};
use crate::worker::{Executor, serve_doorbell};

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
    pub(crate) fn start(
        cfg: &RunConfig,
        partition: &Partition,
        segment: Arc<Segment>,
    ) -> Result<(Box<dyn Team>, Vec<Lost>), Error> {
        quiet_worker_panics();
        crate::shm::guard::announce_exit_from_workers();
        crate::shm::guard::announce_fatal_signals(
            "threads share one address space, so the coordinator and every other worker die with it (this is what --mode procs isolates)",
        );
        let arrays = segment.share_arrays()?;
        let mut team = ThreadTeam {
            cfg: cfg.clone(),
            partition: partition.clone(),
            segment,
            arrays,
            members: Vec::with_capacity(cfg.procs),
        };
        let mut lost = Vec::new();
        for id in 0..cfg.procs {
            let (member, failure) = team.spawn(id, 0)?;
            team.members.push(member);
            if let Some(cause) = failure {
                lost.push(Lost { id, cause });
            }
        }
        Ok((Box::new(team), lost))
    }

    /// Starts worker thread `id` and waits until it is ready.
    fn spawn(&self, id: usize, attempt: u32) -> Result<(Member, Option<Cause>), Error> {
        let job = assignment(&self.cfg, &self.partition, id, attempt);
        let panic = Arc::new(Mutex::new(None));
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(PinOutcome, u32), String>>(1);
        let (segment, arrays, panic_slot) = (Arc::clone(&self.segment), Arc::clone(&self.arrays), Arc::clone(&panic));
        let handle = std::thread::Builder::new()
            .name(format!("vecpar-worker-{id}"))
            .spawn(move || {
                let ready = ready_tx.clone();
                let body = AssertUnwindSafe(move || match job.dtype {
                    Dtype::F64 => serve_thread::<f64>(&segment, &arrays, &job, ready),
                    Dtype::F32 => serve_thread::<f32>(&segment, &arrays, &job, ready),
                });
                if let Err(payload) = std::panic::catch_unwind(body) {
                    *panic_slot.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(crate::payload_message(payload.as_ref()));
                }
            })
            .map_err(|e| Error::Runtime(format!("cannot start worker thread {id} ({e}); lower --procs")))?;
        let mut member =
            Member { attempt, handle: Some(handle), panic, tid: 0, pin: PinOutcome::Unpinned, abandoned: false };
        let failure = match ready_rx.recv_timeout(self.cfg.timeout) {
            Ok(Ok((pin, tid))) => {
                member.pin = pin;
                member.tid = tid;
                None
            }
            Ok(Err(message)) => Some(Cause::Failed { message }),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                member.abandoned = true;
                Some(Cause::Timeout { seconds: self.cfg.timeout.as_secs_f64() })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Some(h) = member.handle.take() {
                    let _ = h.join();
                }
                let message = member.panic.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default();
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
) {
    let id = job.id as usize;
    let setup = (|| {
        let kernel = Kernel::<T>::resolve(job.op, job.simd, job.stores).map_err(|e| e.to_string())?;
        let chunk = arrays.claim(job.range()).map_err(|e| {
            format!("{e}: worker thread {id}'s previous thread is hung and still holds the chunk; a thread cannot be killed, so its chunk cannot be handed to a new one")
        })?;
        Ok::<_, String>(Executor::new(id, kernel, chunk, job.seed, job.faults.clone(), job.oob_target))
    })();
    let mut exec = match setup {
        Ok(exec) => exec,
        Err(message) => {
            let _ = ready.send(Err(message));
            return;
        }
    };
    let pin = pin_current_thread(job.pin.map(|c| c as usize));
    let control = segment.control();
    let seen = control.bell().load();
    let tid = nix::unistd::gettid().as_raw() as u32;
    if ready.send(Ok((pin, tid))).is_err() {
        return;
    }
    drop(ready);
    serve_doorbell(&mut exec, &control, seen, Duration::from_micros(job.spin_us.into()), || true);
}

impl Team for ThreadTeam {
    fn member(&self, id: usize) -> MemberFacts {
        let m = &self.members[id];
        MemberFacts { pid: std::process::id(), tid: Some(m.tid), pin: m.pin.clone(), attempt: m.attempt }
    }

    fn batch_limit(&self) -> u32 {
        BATCH as u32
    }

    fn ring(&mut self, command: Command, round: u32, count: u32, ring_ns: u64) -> Result<u32, Error> {
        Ok(self.segment.control().ring(command, round, count, self.live_ids().len() as u32, ring_ns))
    }

    fn wait(&mut self, seq: u32, timeout: Duration) -> Waited {
        let live = self.live_ids();
        let members = &self.members;
        let waited = wait_doorbell(
            &self.segment,
            seq,
            &live,
            self.cfg.coordinator_spin,
            timeout,
            |pending| {
                pending
                    .iter()
                    .filter(|&&id| members[id].handle.as_ref().is_some_and(|h| h.is_finished()))
                    .map(|&id| {
                        let message = members[id].panic.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        let cause = match message {
                            Some(message) => Cause::Panic { message },
                            None => Cause::Failed { message: "the thread returned".into() },
                        };
                        Lost { id, cause }
                    })
                    .collect()
            },
            |hung| {
                hung.iter().map(|&id| Lost { id, cause: Cause::Timeout { seconds: timeout.as_secs_f64() } }).collect()
            },
        );
        if let Waited::Lost(lost) = &waited {
            {
                for l in lost {
                    let m = &mut self.members[l.id];
                    if matches!(l.cause, Cause::Timeout { .. }) {
                        // It cannot be killed; leave it sleeping, detached.
                        m.abandoned = true;
                    } else if let Some(h) = m.handle.take() {
                        let _ = h.join();
                    }
                }
            }
        }
        waited
    }

    fn replace(&mut self, id: usize) -> Result<(), ReplaceError> {
        if self.members[id].abandoned {
            return Err(ReplaceError::Impossible(format!(
                "worker thread {id} is hung and still holds its chunk; a thread cannot be killed, so the chunk cannot be handed to a new one"
            )));
        }
        let attempt = self.members[id].attempt + 1;
        match self.spawn(id, attempt) {
            Ok((member, None)) => {
                self.members[id] = member;
                Ok(())
            }
            Ok((member, Some(cause))) => {
                self.members[id] = member;
                Err(ReplaceError::Lost(Lost { id, cause }))
            }
            Err(e) => Err(ReplaceError::Impossible(e.to_string())),
        }
    }

    fn shutdown(&mut self) {
        let live = self.live_ids();
        self.segment.control().ring(Command::Shutdown, 0, 1, 0, 0);
        let deadline = Instant::now() + Duration::from_secs(2);
        for id in live {
            if let Some(h) = self.members[id].handle.take() {
                while !h.is_finished() && Instant::now() < deadline {
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
        // Threads still running (an error path) see Shutdown and exit; a hung
        // one stays asleep until the process exits.
        if self.members.iter().any(|m| m.handle.is_some() && !m.abandoned) {
            self.segment.control().ring(Command::Shutdown, 0, 1, 0, 0);
        }
    }
}
