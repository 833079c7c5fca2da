//! The process team: one `vecpar-worker` process per chunk.
//!
//! Start-up spawns every worker before waiting on any (spawn and exec, never
//! a bare fork), each in a process group of its own, its standard input the
//! segment and its standard output its end of a channel: nothing to
//! rendezvous through the filesystem. The assignment is sent at once; the
//! worker answers `Hello`, maps and pins itself, and says `Ready`.
//!
//! A worker is lost when its process exits (any signal, any code), or when
//! it shows no progress within `--timeout` (then its whole group is
//! killed). Every child is a [`WorkerProcess`], which kills its group and
//! reaps it on drop.

mod process;
mod spawn;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use super::team::{Lost, MemberFacts, ReplaceError, RoundTimes, StepOutcome, Team};
use crate::clock::Patience;
use crate::config::RunConfig;
use crate::error::Error;
use crate::fault::Cause;
use crate::kernel::Position;
use crate::machine::PinOutcome;
use crate::machine::cgroup::Cgroups;
use crate::partition::Partition;
use crate::protocol::{Channel, FromWorker, RecvError, Step, StepResult, ToWorker, poll_channels};
use crate::shm::doorbell::{POLL, Watch, completed_rounds, ring_and_wait};
use crate::shm::{Control, FaultSite, Segment};
use crate::signals::{self, Interrupted};
use crate::vocab::RoundSync;
use process::{Exit, WorkerProcess};
use spawn::Spawner;

/// One live worker process.
struct Member {
    process: WorkerProcess,
    /// A panic or failure message it sent before it died.
    last_words: Option<Cause>,
}

pub(crate) struct ProcTeam {
    cfg: RunConfig,
    partition: Partition,
    segment: Arc<Segment>,
    worker_bin: PathBuf,
    members: Vec<Option<Member>>,
    /// What the report says of each worker id: its latest process, attempt
    /// and pin, kept after the process is gone.
    facts: Vec<MemberFacts>,
    /// OOM kills under each memory limit when the run began.
    oom: (Cgroups, Vec<(PathBuf, u64)>),
    /// Steps sent over the channels (`--sync ipc`).
    seq: u32,
    /// Declared last: dropped after the workers are reaped.
    spawner: Spawner,
}

impl ProcTeam {
    /// Starts every worker; returns the team and the workers lost on the way.
    pub(crate) fn start(cfg: &RunConfig, segment: Arc<Segment>) -> Result<(ProcTeam, Vec<Lost>), Error> {
        let worker_bin = cfg.worker_bin().ok_or_else(|| Error::runtime("no worker binary"))?.to_path_buf();
        let cgroups = Cgroups::detect();
        let oom = cgroups.oom_kills();
        let mut team = ProcTeam {
            cfg: cfg.clone(),
            partition: cfg.partition(segment.layout().page),
            segment,
            worker_bin,
            members: (0..cfg.procs()).map(|_| None).collect(),
            facts: vec![MemberFacts { pid: 0, tid: None, pin: PinOutcome::Unpinned, attempt: 0 }; cfg.procs()],
            oom: (cgroups, oom),
            seq: 0,
            spawner: Spawner::new(
                cfg.procs().min(std::thread::available_parallelism().map_or(1, |n| n.get())).min(16),
            )?,
        };
        let ids: Vec<usize> = (0..cfg.procs()).collect();
        let lost = team.launch(&ids, None)?;
        Ok((team, lost))
    }

    /// Spawns, assigns and readies the workers `ids`.
    fn launch(&mut self, ids: &[usize], rebuild: Option<Position>) -> Result<Vec<Lost>, Error> {
        let control = self.segment.control();
        let mut commands = Vec::with_capacity(ids.len());
        let mut channels = Vec::with_capacity(ids.len());
        for &id in ids {
            control.clear_slot(id);
            let (channel, theirs) =
                Channel::pair().map_err(|e| Error::runtime_from("cannot create a channel to a worker", e))?;
            let segment = self.segment.fd_for_child()?;
            let mut command = std::process::Command::new(&self.worker_bin);
            command
                .arg("--id")
                .arg(id.to_string())
                .arg("--coordinator")
                .arg(std::process::id().to_string())
                .stdin(Stdio::from(segment))
                .stdout(Stdio::from(theirs))
                // Ctrl-C reaches the coordinator only; it stops the workers itself.
                .process_group(0);
            commands.push((id, command));
            channels.push(Some(channel));
        }
        // Every exec in parallel: each spawn waits for its child's exec.
        let children = self.spawner.spawn_all(commands);
        let mut failure = None;
        let mut waiting: Vec<(usize, Patience, bool)> = Vec::new();
        for ((id, child), channel) in children.into_iter().zip(channels) {
            let channel = channel.expect("one channel per worker");
            match child {
                Ok(child) => {
                    let process = WorkerProcess::new(child.id(), channel);
                    drop(child); // the pid is ours to wait for, through `process`
                    self.facts[id].pid = process.pid();
                    self.facts[id].pin = PinOutcome::Unpinned;
                    let job = super::assignment(&self.cfg, &self.partition, id, self.facts[id].attempt, rebuild);
                    // A worker that is already gone is found below.
                    let _ = process.channel.send(&ToWorker::Assign(job));
                    self.members[id] = Some(Member { process, last_words: None });
                    waiting.push((id, Patience::new(self.cfg.start_up_patience()), false));
                }
                Err(e) => {
                    failure.get_or_insert(Error::runtime_from(
                        format!(
                            "cannot start worker {id} of {} (the system refused another process); lower --procs",
                            self.cfg.procs()
                        ),
                        e,
                    ));
                }
            }
        }
        if let Some(e) = failure {
            for (id, _, _) in waiting {
                self.members[id] = None; // killed and reaped on drop
            }
            return Err(e);
        }

        // Hello, then Ready, from each, watching for deaths and hangs.
        let mut lost = Vec::new();
        while !waiting.is_empty() {
            if let Err(i) = signals::check() {
                return Err(i.into());
            }
            let readable: Vec<usize> = {
                let chans: Vec<&Channel> = waiting
                    .iter()
                    .map(|(id, _, _)| &self.members[*id].as_ref().expect("a waiting member").process.channel)
                    .collect();
                poll_channels(&chans, POLL)
            };
            let mut finished: Vec<(usize, Option<Lost>)> = Vec::new();
            for (k, (id, patience, greeted)) in waiting.iter_mut().enumerate() {
                let member = self.members[*id].as_mut().expect("a waiting member");
                if readable.contains(&k) {
                    patience.renew();
                    match member.process.channel.try_recv::<FromWorker>() {
                        Ok(FromWorker::Hello { id: hello_id, pid, version }) => {
                            if version != crate::VERSION {
                                return Err(Error::runtime(format!(
                                    "{} is vecpar {version} but vecpar-coord is {}; rebuild both (cargo build --release)",
                                    self.worker_bin.display(),
                                    crate::VERSION
                                )));
                            }
                            if hello_id as usize != *id || pid != member.process.pid() {
                                member.last_words = Some(Cause::Failed {
                                    message: format!(
                                        "said hello as worker {hello_id} with pid {pid} (it is worker {id}, pid {})",
                                        member.process.pid()
                                    ),
                                });
                                finished.push((*id, Some(Lost::new(*id, Cause::Disconnected))));
                            } else {
                                *greeted = true;
                            }
                        }
                        Ok(FromWorker::Ready { pin }) if *greeted => {
                            self.facts[*id].pin = pin;
                            finished.push((*id, None));
                        }
                        Ok(FromWorker::Failed { message }) => member.last_words = Some(Cause::Failed { message }),
                        Ok(FromWorker::CannotMap { errno, message }) => {
                            member.last_words = Some(Cause::CannotMap { errno, message })
                        }
                        Ok(FromWorker::Panicked { message }) => member.last_words = Some(Cause::Panic { message }),
                        Ok(other) => {
                            member.last_words =
                                Some(Cause::Failed { message: format!("sent {other:?} during start-up") });
                            finished.push((*id, Some(Lost::new(*id, Cause::Disconnected))));
                        }
                        Err(RecvError::Empty) => {}
                        Err(RecvError::Closed | RecvError::Io(_)) => {
                            finished.push((*id, Some(Lost::new(*id, Cause::Disconnected))));
                        }
                        Err(RecvError::Garbage(why)) => {
                            member.last_words =
                                Some(Cause::Failed { message: format!("sent an unreadable message ({why})") });
                            finished.push((*id, Some(Lost::new(*id, Cause::Disconnected))));
                        }
                    }
                } else if member.process.exited().is_some() {
                    finished.push((*id, Some(Lost::new(*id, Cause::Disconnected))));
                } else if patience.tick() {
                    finished.push((
                        *id,
                        Some(Lost::new(*id, Cause::Timeout { seconds: self.cfg.start_up_patience().as_secs_f64() })),
                    ));
                }
            }
            for (id, outcome) in finished {
                let greeted = waiting.iter().any(|w| w.0 == id && w.2);
                waiting.retain(|w| w.0 != id);
                let Some(l) = outcome else { continue };
                if !greeted {
                    // Not a worker that can run here: no retry will help.
                    let (words, exit) = self.retire_quietly(id);
                    return Err(self.could_not_start(id, words, exit, &l.cause));
                }
                lost.push(self.retire(l.id, l.cause));
            }
        }
        Ok(lost)
    }

    /// Reaps worker `id` (killing its group); its last words and its end.
    fn retire_quietly(&mut self, id: usize) -> (Option<Cause>, Option<Exit>) {
        let Some(mut member) = self.members[id].take() else { return (None, None) };
        drain(&mut member);
        let exit = member.process.finish(Duration::from_secs(1));
        (member.last_words.take(), exit)
    }

    /// The error for worker `id`, which ended (or was given up) before it
    /// said hello: one line naming the binary and what it did.
    fn could_not_start(&self, id: usize, words: Option<Cause>, exit: Option<Exit>, cause: &Cause) -> Error {
        let what = match (words, exit, cause) {
            (Some(Cause::Failed { message }), _, _) => message,
            (Some(Cause::Panic { message }), _, _) => format!("panicked: {message}"),
            (_, _, Cause::Timeout { seconds }) => format!("was not ready within {seconds}s of start-up"),
            (_, Some(Exit::Code(code)), _) => format!("exited with code {code} (is it vecpar-worker?)"),
            (_, Some(Exit::Signal(sig)), _) => {
                format!("was killed by {} (is it vecpar-worker?)", crate::fault::signal_name(sig))
            }
            _ => "closed its channel (is it vecpar-worker?)".into(),
        };
        Error::runtime(format!(
            "worker {id} ({}) could not start: {what}, before it said hello",
            crate::diag::shown(&self.worker_bin)
        ))
    }

    fn live_ids(&self) -> Vec<usize> {
        (0..self.members.len()).filter(|&id| self.members[id].is_some()).collect()
    }

    /// Declares worker `id` lost: reaps it (killing its group first, in any
    /// case, so that nothing it started survives), and says why. A
    /// `Timeout` stands as the cause; any other `given` gives way to what
    /// its last words, its fault recorder and its end say.
    fn retire(&mut self, id: usize, given: Cause) -> Lost {
        let mut member = self.members[id].take().expect("retiring a live member");
        drain(&mut member);
        let (exit, forced) = match given {
            Cause::Timeout { .. } => (member.process.kill(), true),
            _ => member.process.finish_forced(Duration::from_secs(1)),
        };
        let cause = match (given, member.last_words.take()) {
            (given @ Cause::Timeout { .. }, _) => given,
            // Killed by vecpar after it sent something it should not have:
            // that is why, not the SIGKILL.
            (_, Some(words)) if forced => words,
            (_, words) => cause_of(exit, words, self.segment.control(), id, &self.partition, &self.oom),
        };
        Lost::new(id, cause)
    }

    fn step_doorbell(&mut self, step: &Step, patience: Duration) -> Result<StepOutcome, Interrupted> {
        let live = self.live_ids();
        let segment = Arc::clone(&self.segment);
        let control = segment.control();
        let spin = self.cfg.placement().coordinator_spin;
        let rung = ring_and_wait(&control, step, &live, (spin, POLL), patience, &mut Watcher(self))?;
        let seq = rung.seq;
        let mut outcome = StepOutcome { lost: rung.lost, ..StepOutcome::default() };
        match *step {
            Step::Run { count, .. } => {
                outcome.rounds =
                    completed_rounds(&control, seq, &live, count).into_iter().map(RoundTimes::from).collect()
            }
            Step::Shutdown => {}
            _ => {
                outcome.results = vec![None; self.members.len()];
                for id in self.live_ids() {
                    match self.result_of(id, seq) {
                        Some(r) => outcome.results[id] = Some(r),
                        None => {
                            let l = self.retire(id, Cause::Failed { message: "reported no result".into() });
                            outcome.lost.push(l);
                        }
                    }
                }
            }
        }
        Ok(outcome)
    }

    /// Worker `id`'s result for step `seq`, which it sent before it marked
    /// the step done.
    fn result_of(&mut self, id: usize, seq: u32) -> Option<StepResult> {
        let member = self.members[id].as_mut()?;
        loop {
            match member.process.channel.try_recv::<FromWorker>() {
                Ok(FromWorker::Done { seq: s, result }) if s == seq => return Some(result),
                Ok(FromWorker::Panicked { message }) => member.last_words = Some(Cause::Panic { message }),
                Ok(FromWorker::Failed { message }) => member.last_words = Some(Cause::Failed { message }),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    fn step_channel(&mut self, step: &Step, patience: Duration) -> Result<StepOutcome, Interrupted> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let ring_ns = crate::clock::now_ns();
        let mut waiting: Vec<(usize, Patience)> = Vec::new();
        for id in self.live_ids() {
            let m = self.members[id].as_ref().expect("live member");
            // A dead worker is found below; ignore the send error here.
            let _ = m.process.channel.send(&ToWorker::Step { seq, step: *step });
            waiting.push((id, Patience::new(patience)));
        }
        if *step == Step::Shutdown {
            return Ok(StepOutcome::default());
        }
        let mut outcome = StepOutcome { results: vec![None; self.members.len()], ..StepOutcome::default() };
        let mut timings = vec![crate::protocol::Timing::default(); self.members.len()];
        while !waiting.is_empty() {
            signals::check()?;
            let readable = {
                let chans: Vec<&Channel> = waiting
                    .iter()
                    .map(|(id, _)| &self.members[*id].as_ref().expect("live member").process.channel)
                    .collect();
                poll_channels(&chans, POLL)
            };
            let mut finished: Vec<(usize, Option<Cause>)> = Vec::new();
            for (k, (id, p)) in waiting.iter_mut().enumerate() {
                let member = self.members[*id].as_mut().expect("live member");
                if readable.contains(&k) {
                    p.renew();
                    match member.process.channel.try_recv::<FromWorker>() {
                        Ok(FromWorker::Done { seq: s, result }) if s == seq => {
                            match result {
                                StepResult::Round { timing } => timings[*id] = timing,
                                other => outcome.results[*id] = Some(other),
                            }
                            finished.push((*id, None));
                        }
                        Ok(FromWorker::Panicked { message }) => member.last_words = Some(Cause::Panic { message }),
                        Ok(FromWorker::Failed { message }) => member.last_words = Some(Cause::Failed { message }),
                        Ok(_) | Err(RecvError::Empty) => {}
                        Err(_) => finished.push((*id, Some(Cause::Disconnected))),
                    }
                } else if member.process.exited().is_some() {
                    finished.push((*id, Some(Cause::Disconnected)));
                } else if p.tick() {
                    finished.push((*id, Some(Cause::Timeout { seconds: patience.as_secs_f64() })));
                }
            }
            for (id, cause) in finished {
                waiting.retain(|w| w.0 != id);
                if let Some(cause) = cause {
                    outcome.lost.push(self.retire(id, cause));
                }
            }
        }
        if matches!(step, Step::Run { .. }) && outcome.lost.is_empty() {
            outcome.rounds = vec![RoundTimes { release_ns: ring_ns, workers: timings, slowest_s: None }];
        }
        Ok(outcome)
    }
}

/// The team as the waiting coordinator sees it.
struct Watcher<'t>(&'t mut ProcTeam);

impl Watch for Watcher<'_> {
    fn gone(&mut self, ids: &[usize]) -> Vec<Lost> {
        let dead: Vec<usize> = ids
            .iter()
            .copied()
            .filter(|&id| self.0.members[id].as_ref().is_some_and(|m| m.process.exited().is_some()))
            .collect();
        dead.into_iter().map(|id| self.0.retire(id, Cause::Disconnected)).collect()
    }

    fn hung(&mut self, ids: &[usize], patience: Duration) -> Vec<Lost> {
        ids.iter().map(|&id| self.0.retire(id, Cause::Timeout { seconds: patience.as_secs_f64() })).collect()
    }
}

impl Team for ProcTeam {
    fn silent_since_ns(&self, id: usize) -> Option<u64> {
        self.segment.control().silent_since_ns(id)
    }

    fn member(&self, id: usize) -> MemberFacts {
        self.facts[id].clone()
    }

    fn batch_limit(&self) -> u32 {
        match self.cfg.sync() {
            RoundSync::Doorbell => crate::shm::BATCH as u32,
            RoundSync::Ipc => 1, // one message round trip per round: that is the point of --sync ipc
        }
    }

    fn step(&mut self, step: &Step, patience: Duration) -> Result<StepOutcome, Interrupted> {
        match self.cfg.sync() {
            RoundSync::Doorbell => self.step_doorbell(step, patience),
            RoundSync::Ipc => self.step_channel(step, patience),
        }
    }

    fn replace(&mut self, id: usize, at: Option<Position>) -> Result<(), ReplaceError> {
        if self.members[id].is_some() {
            let _ = self.retire(id, Cause::Disconnected);
        }
        self.facts[id].attempt += 1;
        match self.launch(&[id], at) {
            Ok(mut lost) => match lost.pop() {
                None => Ok(()),
                Some(l) => Err(ReplaceError::Lost(l)),
            },
            Err(e) => Err(ReplaceError::Impossible(e.to_string())),
        }
    }

    fn shutdown(&mut self) {
        if self.live_ids().is_empty() {
            return;
        }
        match self.cfg.sync() {
            RoundSync::Doorbell => {
                let n = self.live_ids().len() as u32;
                self.segment.control().ring(&Step::Shutdown, n, 0);
            }
            RoundSync::Ipc => {
                let _ = self.step_channel(&Step::Shutdown, Duration::ZERO);
            }
        }
        for m in self.members.iter_mut().flatten() {
            m.process.finish(Duration::from_secs(5));
        }
        self.members.iter_mut().for_each(|m| *m = None);
    }
}

impl Drop for ProcTeam {
    fn drop(&mut self) {
        // Every worker killed and reaped first; then what they left behind
        // (a wrapper's descendants in sessions of their own), which came to
        // this process as their subreaper.
        self.members.iter_mut().for_each(|m| *m = None);
        crate::signals::reap_strays();
    }
}

/// Reads what a dead worker sent last (a panic message, a failure).
fn drain(member: &mut Member) {
    while let Ok(msg) = member.process.channel.try_recv::<FromWorker>() {
        match msg {
            FromWorker::Panicked { message } => member.last_words = Some(Cause::Panic { message }),
            FromWorker::Failed { message } => member.last_words = Some(Cause::Failed { message }),
            FromWorker::CannotMap { errno, message } => member.last_words = Some(Cause::CannotMap { errno, message }),
            _ => {}
        }
    }
}

/// `si_code` of a SIGSEGV on a mapped page without the needed permission
/// (Linux's value; the libc crate does not export it for every target).
const SEGV_ACCERR: i32 = 2;

/// Why a worker process ended, from what is known: its last words, its exit,
/// what its fault recorder wrote, and the cgroup's OOM kills.
fn cause_of(
    exit: Option<Exit>,
    last_words: Option<Cause>,
    control: Control<'_>,
    id: usize,
    partition: &Partition,
    oom: &(Cgroups, Vec<(PathBuf, u64)>),
) -> Cause {
    if let Some(Cause::Panic { message }) = &last_words {
        return Cause::Panic { message: message.clone() };
    }
    if let Some(note) = control.fault_note(id) {
        match note.site {
            FaultSite::Array(array, index) if note.signal == libc::SIGSEGV && note.code == SEGV_ACCERR => {
                return Cause::BlockedWrite { array, index, owner: partition.owner(index as usize) };
            }
            FaultSite::Array(array, index) if note.signal == libc::SIGBUS => {
                return Cause::SegmentLost { array, index };
            }
            FaultSite::StackGuard if note.signal == libc::SIGSEGV => return Cause::StackOverflow,
            _ => {}
        }
        if let (Some(pid), Some(Exit::Signal(sig))) = (note.sender, exit)
            && sig == note.signal
        {
            return Cause::Signal { name: crate::fault::signal_name(sig), number: sig, sent_by: Some(pid) };
        }
    }
    match exit {
        Some(Exit::Signal(sig)) if sig == libc::SIGKILL => {
            let now = oom.0.oom_kills();
            // The counter grows in the victim's own cgroup; the limit that
            // was reached may be an ancestor's: name the tightest one.
            let grew = now.iter().any(|(file, n)| oom.1.iter().any(|(f, before)| f == file && n > before));
            match oom.0.memory_limit().filter(|_| grew) {
                Some(limit) => Cause::OutOfMemory { limit: limit.limit, file: limit.file.display().to_string() },
                None => Cause::signal(sig),
            }
        }
        Some(Exit::Signal(sig)) => Cause::signal(sig),
        Some(Exit::Code(code)) => match last_words {
            Some(words) => words,
            None if code != 0 => Cause::Exit { code },
            None => Cause::Failed { message: "exited before it finished".into() },
        },
        None => last_words.unwrap_or(Cause::Disconnected),
    }
}
