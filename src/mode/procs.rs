//! The process team: one `vecpar-worker` process per chunk.
//!
//! Start-up spawns every worker before waiting on any (spawn and exec, never
//! a bare fork; the segment's descriptor is inherited, its number on the
//! command line), then collects each worker's `Hello` through a one-shot IPC
//! server. `accept()` cannot time out, so a helper thread accepts while this
//! thread watches the children; a worker that dies before connecting is
//! reaped and its server released by connecting to it ourselves.
//!
//! A worker is declared lost when its process has exited (any signal, any
//! code), checked every [`POLL`] while a step is pending, or when the step's
//! timeout passes (then it is killed). Every child is reaped on every path,
//! including drop.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ipc_channel::TryRecvError;
use ipc_channel::ipc::{IpcOneShotServer, IpcReceiver, IpcSender};

use super::{Lost, MemberFacts, POLL, ReplaceError, Team, Waited, assignment, wait_doorbell};
use crate::config::RunConfig;
use crate::cpus::PinOutcome;
use crate::error::Error;
use crate::fault::{Cause, signal_name};
use crate::ipc::{FromWorker, Sync, ToWorker};
use crate::partition::Partition;
use crate::shm::control::BATCH;
use crate::shm::{Backend, Command, Segment};

/// One worker process.
struct Member {
    attempt: u32,
    child: Child,
    orders: IpcSender<ToWorker>,
    reports: IpcReceiver<FromWorker>,
    pin: PinOutcome,
    /// A panic or failure message the worker sent before it died.
    last_words: Option<Cause>,
    reaped: Option<ExitStatus>,
}

/// A spawned process that has not said hello yet.
struct Spawned {
    id: usize,
    child: Child,
    /// The name of its one-shot server.
    server: String,
    /// The server itself, until the accept thread takes it.
    rendezvous: Option<IpcOneShotServer<FromWorker>>,
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
    /// Declared last: dropped after the workers are reaped.
    spawner: Spawner,
}

type SpawnJob = (usize, std::process::Command, mpsc::Sender<(usize, std::io::Result<Child>)>);

/// Threads that start worker processes in parallel.
///
/// `spawn` returns only once the child has exec'd, so starting workers one
/// by one costs one exec after another; on N CPUs, N spawners overlap them.
/// A worker's `PR_SET_PDEATHSIG` fires when the *thread* that started it
/// exits, so the spawners live as long as the team: they are dropped after
/// every worker was reaped.
struct Spawner {
    jobs: Option<mpsc::Sender<SpawnJob>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Spawner {
    fn new(threads: usize) -> Result<Spawner, Error> {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let handle = std::thread::Builder::new().name(format!("vecpar-spawn-{i}")).spawn(move || {
                loop {
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((id, mut command, reply)) = job else { break };
                    let _ = reply.send((id, command.spawn()));
                }
            });
            match handle {
                Ok(h) => handles.push(h),
                // Fewer spawners only means less overlap; none is an error.
                Err(e) if handles.is_empty() => {
                    return Err(Error::Runtime(format!(
                        "cannot start a thread to spawn workers ({e}); the system refused another thread: lower --procs"
                    )));
                }
                Err(_) => break,
            }
        }
        Ok(Spawner { jobs: Some(tx), threads: handles })
    }

    /// Spawns every command; results in the order given.
    fn spawn_all(&self, commands: Vec<(usize, std::process::Command)>) -> Vec<(usize, std::io::Result<Child>)> {
        let (reply, results) = mpsc::channel();
        let n = commands.len();
        let jobs = self.jobs.as_ref().expect("spawner alive");
        for (id, command) in commands {
            if let Err(mpsc::SendError((id, _, _))) = jobs.send((id, command, reply.clone())) {
                let _ = reply.send((id, Err(std::io::Error::other("the spawner threads are gone"))));
            }
        }
        let mut out: Vec<(usize, std::io::Result<Child>)> = results.iter().take(n).collect();
        out.sort_by_key(|(id, _)| *id);
        out
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.jobs.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl ProcTeam {
    /// Starts every worker; returns the team and the workers lost on the way.
    pub(crate) fn start(
        cfg: &RunConfig,
        partition: &Partition,
        segment: Arc<Segment>,
    ) -> Result<(Box<dyn Team>, Vec<Lost>), Error> {
        let worker_bin = cfg.worker_bin.clone().ok_or_else(|| Error::Runtime("no worker binary".into()))?;
        let mut team = ProcTeam {
            cfg: cfg.clone(),
            partition: partition.clone(),
            segment,
            worker_bin,
            members: (0..cfg.procs).map(|_| None).collect(),
            facts: vec![MemberFacts { pid: 0, tid: None, pin: PinOutcome::Unpinned, attempt: 0 }; cfg.procs],
            spawner: Spawner::new(cfg.procs.min(cfg.allowed_cpus.len()).min(16))?,
        };
        let ids: Vec<usize> = (0..cfg.procs).collect();
        let lost = team.launch(&ids)?;
        Ok((Box::new(team), lost))
    }

    /// Spawns, greets, assigns and readies the workers `ids`.
    fn launch(&mut self, ids: &[usize]) -> Result<Vec<Lost>, Error> {
        let deadline = Instant::now() + self.cfg.timeout;
        let mut lost = Vec::new();
        // The accept thread first: if the system refuses a thread, nothing
        // has been spawned yet. It gets the servers once they exist.
        type Servers = Vec<(usize, IpcOneShotServer<FromWorker>)>;
        let (servers_tx, servers_rx) = mpsc::channel::<Servers>();
        let (tx, rx) = mpsc::channel();
        let acceptor = std::thread::Builder::new()
            .name("vecpar-accept".into())
            .spawn(move || {
                for (id, server) in servers_rx.recv().unwrap_or_default() {
                    let accepted = server.accept().map_err(|e| e.to_string());
                    if tx.send((id, accepted)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| {
                Error::Runtime(format!(
                    "cannot start the IPC accept thread ({e}); the system refused another thread: lower --procs"
                ))
            })?;
        let mut spawned = match self.spawn_all(ids) {
            Ok(spawned) => spawned,
            Err(e) => {
                drop(servers_tx);
                let _ = acceptor.join();
                return Err(e);
            }
        };
        let servers: Servers = spawned.iter_mut().filter_map(|s| s.rendezvous.take().map(|r| (s.id, r))).collect();
        let _ = servers_tx.send(servers);

        // Hello from each, while watching for deaths and the deadline.
        let mut waiting: Vec<Spawned> = spawned;
        let mut greeted: Vec<(usize, Member)> = Vec::new();
        while !waiting.is_empty() {
            match rx.recv_timeout(POLL) {
                Ok((id, accepted)) => {
                    let Some(pos) = waiting.iter().position(|s| s.id == id) else { continue };
                    let mut spawned = waiting.swap_remove(pos);
                    match accepted {
                        Ok((reports, FromWorker::Hello { id: hello_id, pid, version, reply })) => {
                            if version != crate::VERSION {
                                let _ = spawned.child.kill();
                                let _ = spawned.child.wait();
                                for mut s in waiting.drain(..) {
                                    let _ = s.child.kill();
                                    let _ = s.child.wait();
                                    unblock(&s.server);
                                }
                                let _ = acceptor.join();
                                return Err(Error::Runtime(format!(
                                    "{} is vecpar {version} but vecpar-coord is {}; rebuild both (cargo build --release)",
                                    self.worker_bin.display(),
                                    crate::VERSION
                                )));
                            }
                            if hello_id as usize != id || pid != spawned.child.id() {
                                let _ = spawned.child.kill();
                                let status = spawned.child.wait().ok();
                                let _ = status;
                                lost.push(Lost {
                                    id,
                                    cause: Cause::Failed { message: "said hello with the wrong id or pid".into() },
                                });
                                continue;
                            }
                            let member = Member {
                                attempt: self.facts[id].attempt,
                                child: spawned.child,
                                orders: reply,
                                reports,
                                pin: PinOutcome::Unpinned,
                                last_words: None,
                                reaped: None,
                            };
                            // Assign at once: the worker maps and pins itself
                            // while the others are still saying hello.
                            let mut member = member;
                            let job = assignment(&self.cfg, &self.partition, id, member.attempt);
                            if member.orders.send(ToWorker::Assign(job)).is_err() {
                                member.last_words = Some(Cause::Disconnected);
                            }
                            greeted.push((id, member));
                        }
                        Ok((_, FromWorker::Unblock)) => {
                            // We released this server ourselves; the worker is already dead.
                        }
                        Ok((_, other)) => {
                            let _ = spawned.child.kill();
                            let _ = spawned.child.wait();
                            lost.push(Lost {
                                id,
                                cause: Cause::Failed { message: format!("first message was {other:?}") },
                            });
                        }
                        Err(e) => {
                            let status = wait_briefly(&mut spawned.child);
                            lost.push(Lost {
                                id,
                                cause: cause_of(status, None, None, &format!("closed its IPC connection ({e})")),
                            });
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let expired = Instant::now() >= deadline;
                    let mut i = 0;
                    while i < waiting.len() {
                        let dead = waiting[i].child.try_wait().ok().flatten();
                        if dead.is_none() && !expired {
                            i += 1;
                            continue;
                        }
                        let mut s = waiting.swap_remove(i);
                        let cause = match dead {
                            Some(status) => cause_of(Some(status), None, None, "exited before connecting"),
                            None => {
                                let _ = s.child.kill();
                                let _ = s.child.wait();
                                Cause::Timeout { seconds: self.cfg.timeout.as_secs_f64() }
                            }
                        };
                        // The acceptor may be blocked in this worker's accept().
                        unblock(&s.server);
                        lost.push(Lost { id: s.id, cause });
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let _ = acceptor.join();

        // Every worker has its assignment; wait for Ready.
        for (id, mut member) in greeted {
            match await_ready(&mut member, deadline, self.cfg.timeout) {
                Ok(()) => {
                    self.facts[id].pin = member.pin.clone();
                    self.members[id] = Some(member);
                }
                Err(cause) => lost.push(Lost { id, cause }),
            }
        }
        Ok(lost)
    }

    /// Spawns the processes, the segment's descriptor inheritable only for
    /// that long.
    fn spawn_all(&mut self, ids: &[usize]) -> Result<Vec<Spawned>, Error> {
        // Workers attach by name while a posix segment still has one, else
        // by inheriting the descriptor (memfd always; posix replacements
        // after the name was unlinked).
        let by_name = match self.segment.backend() {
            Backend::Posix => self.segment.name(),
            Backend::Memfd => None,
        };
        let inherit = by_name.is_none();
        if inherit {
            self.segment.set_inheritable(true)?;
        }
        let mut commands = Vec::with_capacity(ids.len());
        let mut rendezvous = Vec::with_capacity(ids.len());
        for &id in ids {
            // Fresh slot for a fresh process: no stale fault record.
            let slot = self.segment.control().slot(id);
            for f in [&slot.fault_addr, &slot.fault_index] {
                f.store(0, Ordering::Relaxed);
            }
            for f in [&slot.fault_signal, &slot.fault_code, &slot.fault_array] {
                f.store(0, Ordering::Relaxed);
            }
            let (server, name) = match IpcOneShotServer::<FromWorker>::new() {
                Ok(pair) => pair,
                Err(e) => {
                    if inherit {
                        self.segment.set_inheritable(false)?;
                    }
                    return Err(Error::runtime("cannot create an IPC rendezvous", e));
                }
            };
            let mut command = std::process::Command::new(&self.worker_bin);
            command
                .arg("--id")
                .arg(id.to_string())
                .arg("--coordinator")
                .arg(std::process::id().to_string())
                .arg("--server")
                .arg(&name)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                // Ctrl-C reaches the coordinator only; it stops the workers itself.
                .process_group(0);
            match &by_name {
                Some(shm_name) => command.arg("--shm-name").arg(shm_name),
                None => command.arg("--fd").arg(self.segment.raw_fd().to_string()),
            };
            commands.push((id, command));
            rendezvous.push((id, server, name));
        }
        // Every exec in parallel: each spawn waits for its child's exec.
        let children = self.spawner.spawn_all(commands);
        if inherit {
            self.segment.set_inheritable(false)?;
        }
        let mut spawned = Vec::with_capacity(ids.len());
        let mut failure = None;
        for ((id, child), (_, server, name)) in children.into_iter().zip(rendezvous) {
            match child {
                Ok(child) => {
                    self.facts[id].pid = child.id();
                    self.facts[id].pin = PinOutcome::Unpinned;
                    spawned.push(Spawned { id, child, server: name, rendezvous: Some(server) });
                }
                Err(e) => {
                    failure.get_or_insert(Error::Runtime(format!(
                        "cannot start worker {id} of {} ({e}); the system refused another process: lower --procs",
                        self.cfg.procs
                    )));
                }
            }
        }
        if let Some(e) = failure {
            for mut s in spawned {
                let _ = s.child.kill();
                let _ = s.child.wait();
            }
            return Err(e);
        }
        Ok(spawned)
    }

    fn live_ids(&self) -> Vec<usize> {
        (0..self.members.len()).filter(|&id| self.members[id].is_some()).collect()
    }

    /// Declares a member lost: reaps it (killing it first if `kill`), and
    /// says why.
    fn retire(&mut self, id: usize, kill: bool, timeout: Option<f64>) -> Lost {
        let member = self.members[id].as_mut().expect("retiring a live member");
        if kill {
            let _ = member.child.kill();
        }
        let status = member.reaped.or_else(|| member.child.wait().ok());
        drain(member);
        let slot = self.segment.control().slot(id);
        let cause = match timeout {
            Some(seconds) => Cause::Timeout { seconds },
            None => cause_of(status, member.last_words.clone(), Some((slot, &self.partition)), "closed its channel"),
        };
        self.members[id] = None;
        Lost { id, cause }
    }
}

impl Team for ProcTeam {
    fn member(&self, id: usize) -> MemberFacts {
        self.facts[id].clone()
    }

    fn batch_limit(&self) -> u32 {
        match self.cfg.sync {
            Sync::Doorbell => BATCH as u32,
            Sync::Ipc => 1, // one message round trip per round: that is the point of --sync ipc
        }
    }

    fn ring(&mut self, command: Command, round: u32, count: u32, ring_ns: u64) -> Result<u32, Error> {
        let live = self.live_ids();
        let seq = self.segment.control().ring(command, round, count, live.len() as u32, ring_ns);
        if self.cfg.sync == Sync::Ipc {
            for id in live {
                let m = self.members[id].as_mut().expect("live member");
                // A dead worker is found by wait(); ignore the send error here.
                let _ = m.orders.send(ToWorker::Command { seq, command: command as u32, round });
            }
        }
        Ok(seq)
    }

    fn wait(&mut self, seq: u32, timeout: Duration) -> Waited {
        let live = self.live_ids();
        if self.cfg.sync == Sync::Ipc {
            return self.wait_ipc(seq, &live, timeout);
        }
        let segment = Arc::clone(&self.segment);
        let spin = self.cfg.coordinator_spin;
        let dead = std::cell::RefCell::new(Vec::new());
        let waited = wait_doorbell(
            &segment,
            seq,
            &live,
            spin,
            timeout,
            |pending| {
                let mut out = Vec::new();
                for &id in pending {
                    let m = self.members[id].as_mut().expect("live member");
                    if let Ok(Some(status)) = m.child.try_wait() {
                        m.reaped = Some(status);
                        dead.borrow_mut().push(id);
                        out.push(Lost { id, cause: Cause::Disconnected });
                    }
                }
                out
            },
            |hung| {
                hung.iter().map(|&id| Lost { id, cause: Cause::Timeout { seconds: timeout.as_secs_f64() } }).collect()
            },
        );
        match waited {
            Waited::Done => Waited::Done,
            Waited::Lost(lost) => {
                let dead = dead.into_inner();
                Waited::Lost(
                    lost.into_iter()
                        .map(|l| match l.cause {
                            Cause::Timeout { seconds } => self.retire(l.id, true, Some(seconds)),
                            _ => self.retire(l.id, !dead.contains(&l.id), None),
                        })
                        .collect(),
                )
            }
        }
    }

    fn replace(&mut self, id: usize) -> Result<(), ReplaceError> {
        if self.members[id].is_some() {
            let _ = self.retire(id, true, None);
        }
        self.facts[id].attempt += 1;
        match self.launch(&[id]) {
            Ok(mut lost) => match lost.pop() {
                None => Ok(()),
                Some(l) => Err(ReplaceError::Lost(l)),
            },
            Err(e) => Err(ReplaceError::Impossible(e.to_string())),
        }
    }

    fn shutdown(&mut self) {
        let live = self.live_ids();
        match self.cfg.sync {
            Sync::Doorbell => {
                self.segment.control().ring(Command::Shutdown, 0, 1, 0, 0);
            }
            Sync::Ipc => {
                for &id in &live {
                    let _ = self.members[id].as_ref().expect("live member").orders.send(ToWorker::Shutdown);
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        for id in live {
            let m = self.members[id].as_mut().expect("live member");
            loop {
                match m.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = m.child.kill();
                        let _ = m.child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_micros(200)),
                }
            }
            self.members[id] = None;
        }
    }
}

impl ProcTeam {
    fn wait_ipc(&mut self, seq: u32, live: &[usize], timeout: Duration) -> Waited {
        let deadline = Instant::now() + timeout;
        let mut lost = Vec::new();
        for &id in live {
            let outcome = loop {
                let m = self.members[id].as_mut().expect("live member");
                let slice = deadline.saturating_duration_since(Instant::now()).min(POLL);
                match m.reports.try_recv_timeout(slice) {
                    Ok(FromWorker::Done(c)) if c.seq == seq => break None,
                    Ok(FromWorker::Panicked { message }) => m.last_words = Some(Cause::Panic { message }),
                    Ok(FromWorker::Failed { message }) => m.last_words = Some(Cause::Failed { message }),
                    Ok(_) => {}
                    Err(TryRecvError::Empty) => {
                        if let Ok(Some(status)) = m.child.try_wait() {
                            m.reaped = Some(status);
                            break Some(self.retire(id, false, None));
                        }
                        if Instant::now() >= deadline {
                            break Some(self.retire(id, true, Some(timeout.as_secs_f64())));
                        }
                    }
                    Err(TryRecvError::IpcError(_)) => break Some(self.retire(id, false, None)),
                }
            };
            lost.extend(outcome);
        }
        if lost.is_empty() { Waited::Done } else { Waited::Lost(lost) }
    }
}

impl Drop for ProcTeam {
    fn drop(&mut self) {
        for m in self.members.iter_mut().flatten() {
            if m.reaped.is_none() {
                let _ = m.child.kill();
                let _ = m.child.wait();
            }
        }
    }
}

/// Waits for `Ready`, watching the process.
fn await_ready(member: &mut Member, deadline: Instant, timeout: Duration) -> Result<(), Cause> {
    if let Some(cause) = member.last_words.take() {
        let _ = member.child.kill();
        let _ = member.child.wait();
        return Err(cause);
    }
    loop {
        let slice = deadline.saturating_duration_since(Instant::now()).min(POLL);
        match member.reports.try_recv_timeout(slice) {
            Ok(FromWorker::Ready { pin, .. }) => {
                member.pin = pin;
                return Ok(());
            }
            Ok(FromWorker::Failed { message }) => member.last_words = Some(Cause::Failed { message }),
            Ok(FromWorker::Panicked { message }) => member.last_words = Some(Cause::Panic { message }),
            Ok(_) => {}
            Err(TryRecvError::Empty) => {
                if let Ok(Some(status)) = member.child.try_wait() {
                    return Err(cause_of(Some(status), member.last_words.take(), None, "exited during start-up"));
                }
                if Instant::now() >= deadline {
                    let _ = member.child.kill();
                    let _ = member.child.wait();
                    return Err(Cause::Timeout { seconds: timeout.as_secs_f64() });
                }
            }
            Err(TryRecvError::IpcError(ipc_channel::IpcError::Disconnected)) => {
                let status = wait_briefly(&mut member.child);
                return Err(cause_of(status, member.last_words.take(), None, "closed its channel during start-up"));
            }
            Err(TryRecvError::IpcError(e)) => {
                let _ = member.child.kill();
                let _ = member.child.wait();
                return Err(Cause::Failed { message: format!("sent an unreadable message ({e})") });
            }
        }
    }
}

/// Reads what a dead worker sent last (a panic message, a failure).
fn drain(member: &mut Member) {
    while let Ok(msg) = member.reports.try_recv() {
        match msg {
            FromWorker::Panicked { message } => member.last_words = Some(Cause::Panic { message }),
            FromWorker::Failed { message } => member.last_words = Some(Cause::Failed { message }),
            _ => {}
        }
    }
}

/// Waits up to a second for a process whose channel closed.
fn wait_briefly(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            _ => {
                let _ = child.kill();
                return child.wait().ok();
            }
        }
    }
}

/// Releases a helper thread blocked in `accept()` on `server`.
fn unblock(server: &str) {
    if let Ok(tx) = IpcSender::<FromWorker>::connect(server.to_string()) {
        let _ = tx.send(FromWorker::Unblock);
    }
}

/// `si_code` of a SIGSEGV on a mapped page without the needed permission
/// (Linux's value; the libc crate does not export it for every target).
const SEGV_ACCERR: i32 = 2;

/// Why a worker process ended, from what is known: its last words, its exit
/// status, and what its fault recorder wrote.
fn cause_of(
    status: Option<ExitStatus>,
    last_words: Option<Cause>,
    slot: Option<(&crate::shm::Slot, &Partition)>,
    fallback: &str,
) -> Cause {
    if let Some(Cause::Panic { message }) = &last_words {
        return Cause::Panic { message: message.clone() };
    }
    if let Some((slot, partition)) = slot {
        let array = slot.fault_array.load(Ordering::Acquire);
        let signal = slot.fault_signal.load(Ordering::Acquire) as i32;
        if signal == libc::SIGSEGV && array != 0 && slot.fault_code.load(Ordering::Acquire) as i32 == SEGV_ACCERR {
            let index = slot.fault_index.load(Ordering::Acquire);
            return Cause::BlockedWrite {
                array: ["a", "b", "c"][(array as usize - 1).min(2)].into(),
                index,
                owner: partition.owner(index as usize),
            };
        }
    }
    match status {
        Some(s) if s.signal().is_some() => {
            let number = s.signal().unwrap_or(0);
            Cause::Signal { name: signal_name(number), number }
        }
        Some(s) => match (s.code(), last_words) {
            (_, Some(words)) => words,
            (Some(code), None) if code != 0 => Cause::Exit { code },
            _ => Cause::Failed { message: fallback.into() },
        },
        None => last_words.unwrap_or(Cause::Failed { message: fallback.into() }),
    }
}
