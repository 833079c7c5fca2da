//! What a worker does, whichever mode runs it.
//!
//! An [`Executor`] owns one chunk and runs the commands on it: `Init`
//! (reserve, fill and first-touch the chunk), `Run` (one round of the
//! kernel, with any injected fault first), `Validate` (check all three arrays
//! and digest `c`). The same executor serves a worker process
//! ([`run_process`]), a worker thread ([`crate::mode`]) and the serial
//! mode's single chunk, so the modes differ only in what they are made of.
#![forbid(unsafe_code)]

use std::sync::OnceLock;
use std::time::Duration;

use ipc_channel::ipc::{self, IpcReceiver, IpcSender};
use nix::sys::signal::Signal;
use nix::unistd::{Pid, getpid, getppid};

use crate::clock::now_ns;
use crate::cpus::{current_cpu, pin_current_thread};
use crate::fault::{FaultKind, inject};
use crate::ipc::{Assignment, Completion, FromWorker, InjectedFault, Sync, ToWorker};
use crate::kernel::{self, Element, Kernel, Stream, Verdict};
use crate::shm::{Attachment, ChunkAccess, Command, Control, Slot, SlotStatus, guard};

/// The value an `oob-write` fault stores: far outside the generator's [-1, 1).
pub const OOB_VALUE: f64 = 1234.5;

/// The result of one command.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome {
    /// Success or the failure kind.
    pub status: u32,
    /// An errno or the mismatching array.
    pub detail: u32,
    /// CLOCK_MONOTONIC before the work, ns.
    pub start_ns: u64,
    /// CLOCK_MONOTONIC after it, ns.
    pub end_ns: u64,
    /// The CPU at the end.
    pub cpu: u32,
    /// Validation's verdict.
    pub verdict: Option<Verdict>,
}

/// Runs commands on one chunk.
#[derive(Debug)]
pub struct Executor<T: Element, C: ChunkAccess> {
    id: usize,
    kernel: Kernel<T>,
    chunk: C,
    seed: u64,
    faults: Vec<InjectedFault>,
    oob_target: Option<u64>,
}

impl<T: Element, C: ChunkAccess> Executor<T, C> {
    /// An executor for worker `id`'s chunk.
    pub fn new(
        id: usize,
        kernel: Kernel<T>,
        chunk: C,
        seed: u64,
        faults: Vec<InjectedFault>,
        oob_target: Option<u64>,
    ) -> Self {
        Executor { id, kernel, chunk, seed, faults, oob_target }
    }

    /// The chunk.
    pub fn chunk(&self) -> &C {
        &self.chunk
    }

    /// Runs one command.
    pub fn execute(&mut self, command: Command, round: u32) -> Outcome {
        let range = self.chunk.range();
        let mut out = Outcome::default();
        // A round's clock starts after any injected fault, below; everything
        // else is timed from here.
        if command != Command::Run {
            out.start_ns = now_ns();
        }
        match command {
            Command::Init => {
                if let Err(errno) = self.chunk.reserve() {
                    out.status = SlotStatus::ReserveFailed as u32;
                    out.detail = errno as u32;
                } else {
                    let (seed, start) = (self.seed, range.start as u64);
                    let filled = self.chunk.fill_inputs::<T>(|a, b| {
                        kernel::fill(seed, Stream::A, start, a);
                        kernel::fill(seed, Stream::B, start, b);
                    });
                    match filled {
                        Ok(()) => self.chunk.touch_output(),
                        Err(e) => {
                            out.status = SlotStatus::MapFailed as u32;
                            out.detail = e.errno().map_or(0, |e| e as u32);
                        }
                    }
                }
            }
            Command::Run => {
                self.inject_faults(round);
                let (a, b, c) = self.chunk.parts::<T>();
                out.start_ns = now_ns();
                self.kernel.run(a, b, c);
            }
            Command::Validate => {
                let (a, b, c) = self.chunk.parts::<T>();
                let verdict = kernel::verify(self.seed, self.kernel.op(), range.start as u64, a, b, c);
                if let Some(m) = verdict.mismatch {
                    out.status = SlotStatus::Mismatch as u32;
                    out.detail = match m.array {
                        Stream::A => 0,
                        Stream::B => 1,
                        Stream::C => 2,
                    };
                }
                out.verdict = Some(verdict);
            }
            Command::Idle | Command::Shutdown => {}
        }
        out.end_ns = now_ns();
        out.cpu = current_cpu().map_or(u32::MAX, |c| c as u32);
        out
    }

    fn inject_faults(&self, round: u32) {
        // Called every round: no allocation, nothing at all without faults.
        for kind in self.faults.iter().filter(|f| f.round == round).map(|f| f.kind) {
            if kind == FaultKind::OobWrite {
                if let Some(target) = self.oob_target {
                    let bits = T::from_f64(OOB_VALUE).to_bits64();
                    self.chunk.write_outside(Stream::A, target as usize, bits);
                }
            } else {
                inject(kind, self.id, round);
            }
        }
    }
}

/// Writes an outcome into the worker's slot (the coordinator reads it once
/// the command is reported done).
pub fn publish(slot: &Slot, outcome: &Outcome) {
    use std::sync::atomic::Ordering::Relaxed;
    slot.status.store(outcome.status, Relaxed);
    slot.status_detail.store(outcome.detail, Relaxed);
    slot.start_ns.store(outcome.start_ns, Relaxed);
    slot.end_ns.store(outcome.end_ns, Relaxed);
    slot.cpu.store(outcome.cpu, Relaxed);
    if let Some(v) = outcome.verdict {
        slot.digest.store(v.digest, Relaxed);
        if let Some(m) = v.mismatch {
            slot.bad_index.store(m.index, Relaxed);
            slot.bad_got.store(m.got.to_bits(), Relaxed);
            slot.bad_expected.store(m.expected.to_bits(), Relaxed);
        }
    }
    // `report_done` stores done_seq with Release after these.
}

/// Serves doorbell commands until `Shutdown`, or until `still_wanted` says
/// the coordinator is gone. `seen` is the bell's value when the worker
/// reported ready. A `Run` covers a batch of rounds, paced by the gate.
pub fn serve_doorbell<T: Element, C: ChunkAccess>(
    exec: &mut Executor<T, C>,
    control: &Control<'_>,
    mut seen: u32,
    spin: Duration,
    still_wanted: impl Fn() -> bool,
) {
    let bell = control.bell();
    loop {
        let seq = bell.wait_while_equal(seen, spin, true, Duration::from_millis(250));
        if seq == seen {
            if !still_wanted() {
                return;
            }
            continue;
        }
        seen = seq;
        let order = control.order();
        match order.command {
            Command::Shutdown => return,
            Command::Run => {
                for k in 0..order.count {
                    if (k > 0 && !control.await_round(k, spin)) || control.aborted() {
                        break;
                    }
                    let out = exec.execute(Command::Run, order.round + k);
                    control.stamp(exec.id, k as usize, out.start_ns, out.end_ns, out.cpu);
                    control.arrive(exec.id, k, order.count, order.expected);
                }
            }
            command => publish(control.slot(exec.id), &exec.execute(command, order.round)),
        }
        control.report_done(exec.id, seq);
    }
}

/// Serves `--sync ipc` commands (one round each) until `Shutdown` or the
/// channel closes.
pub fn serve_ipc<T: Element, C: ChunkAccess>(
    exec: &mut Executor<T, C>,
    control: &Control<'_>,
    orders: &IpcReceiver<ToWorker>,
    reports: &IpcSender<FromWorker>,
) -> Result<(), String> {
    let slot = control.slot(exec.id);
    loop {
        match orders.recv() {
            Ok(ToWorker::Command { seq, command, round }) => {
                let command = command_from_code(command).ok_or_else(|| format!("unknown command code {command}"))?;
                if command == Command::Shutdown {
                    return Ok(());
                }
                let outcome = exec.execute(command, round);
                if command == Command::Run {
                    control.stamp(exec.id, 0, outcome.start_ns, outcome.end_ns, outcome.cpu);
                } else {
                    publish(slot, &outcome);
                }
                slot.done_seq.store(seq, std::sync::atomic::Ordering::Release);
                let done = Completion { seq, start_ns: outcome.start_ns, end_ns: outcome.end_ns, cpu: outcome.cpu };
                reports.send(FromWorker::Done(done)).map_err(|e| format!("report: {e}"))?;
            }
            Ok(ToWorker::Shutdown) | Err(_) => return Ok(()),
            Ok(ToWorker::Assign(_)) => return Err("a second assignment arrived".into()),
        }
    }
}

/// Decodes a command code from an IPC message.
pub fn command_from_code(code: u32) -> Option<Command> {
    [Command::Idle, Command::Init, Command::Run, Command::Validate, Command::Shutdown]
        .into_iter()
        .find(|c| *c as u32 == code)
}

/// The worker process's command line, as the coordinator writes it.
#[derive(Debug, clap::Parser)]
#[command(
    name = "vecpar-worker",
    version,
    about = "A vecpar worker process. It is started by vecpar-coord, never by hand: it attaches to the \
             coordinator's shared segment, computes its chunk and reports over IPC."
)]
pub struct WorkerArgs {
    /// Worker id (its slot in the segment's control block)
    #[arg(long)]
    pub id: u32,
    /// The coordinator's pid; the worker refuses to run under any other parent
    #[arg(long)]
    pub coordinator: i32,
    /// Name of the coordinator's IPC one-shot server
    #[arg(long)]
    pub server: String,
    /// Inherited descriptor of the segment (memfd backend)
    #[arg(long, allow_negative_numbers = true, conflicts_with = "shm_name", required_unless_present = "shm_name")]
    pub fd: Option<i32>,
    /// Name of the segment in /dev/shm (posix backend)
    #[arg(long)]
    pub shm_name: Option<String>,
}

/// Why a worker process gave up.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Started wrongly (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Could not attach, connect or map (exit 1).
    #[error("{0}")]
    Setup(String),
    /// A failure the coordinator was already told about over IPC (exit 1):
    /// it reports it, so the worker prints nothing.
    #[error("{0}")]
    Reported(String),
}

impl WorkerError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            WorkerError::Usage(_) => 2,
            WorkerError::Setup(_) | WorkerError::Reported(_) => 1,
        }
    }

    /// Whether the worker should print it (the coordinator does otherwise).
    pub fn should_print(&self) -> bool {
        !matches!(self, WorkerError::Reported(_))
    }
}

static PANIC_REPORTS: OnceLock<IpcSender<FromWorker>> = OnceLock::new();

/// A worker process, from its command line to `Shutdown`.
pub fn run_process(args: &WorkerArgs) -> Result<(), WorkerError> {
    // Die with the coordinator, even if it is SIGKILLed. The coordinator
    // spawns from its main thread, which lives as long as it does (the
    // signal follows the thread that forked). Then close the race where
    // the coordinator died before prctl ran.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| WorkerError::Setup(format!("prctl: {e}")))?;
    let coordinator = Pid::from_raw(args.coordinator);
    if getppid() != coordinator {
        return Err(WorkerError::Usage(format!(
            "vecpar-worker is started by vecpar-coord, not by hand (parent pid {} is not the coordinator {})",
            getppid(),
            args.coordinator
        )));
    }
    let attachment = match (&args.fd, &args.shm_name) {
        (Some(fd), _) => Attachment::from_inherited_fd(*fd),
        (None, Some(name)) => Attachment::open_name(name),
        (None, None) => return Err(WorkerError::Usage("--fd or --shm-name is required".into())),
    }
    .map_err(|e| WorkerError::Setup(format!("cannot attach to the segment: {e}")))?;
    let layout = attachment.layout().clone();
    if args.id as usize >= layout.slots {
        return Err(WorkerError::Usage(format!("--id {} but the segment has {} worker slots", args.id, layout.slots)));
    }

    let reports: IpcSender<FromWorker> = IpcSender::connect(args.server.clone())
        .map_err(|e| WorkerError::Setup(format!("cannot connect to the coordinator at {}: {e}", args.server)))?;
    let (reply, orders) = ipc::channel::<ToWorker>().map_err(|e| WorkerError::Setup(format!("ipc channel: {e}")))?;
    let send = |msg: FromWorker| reports.send(msg).map_err(|e| WorkerError::Setup(format!("cannot report: {e}")));
    send(FromWorker::Hello { id: args.id, pid: getpid().as_raw() as u32, version: crate::VERSION.to_string(), reply })?;

    let _ = PANIC_REPORTS.set(reports.clone());
    std::panic::set_hook(Box::new(|info| {
        let message = crate::panic_message(info);
        match PANIC_REPORTS.get() {
            Some(tx) if tx.send(FromWorker::Panicked { message: message.clone() }).is_ok() => {}
            _ => eprintln!("vecpar-worker: panicked: {message}"),
        }
    }));

    let assignment = loop {
        match orders.try_recv_timeout(Duration::from_millis(500)) {
            Ok(ToWorker::Assign(a)) => break a,
            Ok(ToWorker::Shutdown) => return Ok(()),
            Ok(other) => return Err(refuse(&reports, format!("expected an assignment, got {other:?}"))),
            Err(ipc_channel::TryRecvError::Empty) if getppid() == coordinator => continue,
            Err(_) => return Ok(()), // the coordinator is gone
        }
    };
    if let Err(why) = assignment.validate(&layout) {
        return Err(refuse(&reports, format!("invalid assignment: {why}")));
    }

    match layout.dtype {
        kernel::Dtype::F64 => serve_process::<f64>(&attachment, &assignment, &reports, &orders, coordinator),
        kernel::Dtype::F32 => serve_process::<f32>(&attachment, &assignment, &reports, &orders, coordinator),
    }
}

fn refuse(reports: &IpcSender<FromWorker>, message: String) -> WorkerError {
    match reports.send(FromWorker::Failed { message: message.clone() }) {
        Ok(()) => WorkerError::Reported(message),
        Err(_) => WorkerError::Setup(message),
    }
}

fn serve_process<T: Element>(
    attachment: &Attachment,
    assignment: &Assignment,
    reports: &IpcSender<FromWorker>,
    orders: &IpcReceiver<ToWorker>,
    coordinator: Pid,
) -> Result<(), WorkerError> {
    let kernel = Kernel::<T>::resolve(assignment.op, assignment.simd, assignment.stores)
        .map_err(|e| refuse(reports, format!("kernel: {e}")))?;
    let chunk =
        attachment.map_chunk(assignment.range()).map_err(|e| refuse(reports, format!("cannot map the chunk: {e}")))?;
    let control = attachment.control();
    let id = assignment.id as usize;
    let _recorder = guard::record_faults(control.slot(id), &chunk)
        .map_err(|e| refuse(reports, format!("cannot install the fault recorder: {e}")))?;
    let pin = pin_current_thread(assignment.pin.map(|c| c as usize));
    let mut exec = Executor::new(id, kernel, chunk, assignment.seed, assignment.faults.clone(), assignment.oob_target);
    let seen = control.bell().load();
    reports
        .send(FromWorker::Ready { cpu: current_cpu().map(|c| c as u32), pin })
        .map_err(|e| WorkerError::Setup(format!("cannot report: {e}")))?;
    match assignment.sync {
        Sync::Doorbell => {
            serve_doorbell(&mut exec, &control, seen, Duration::from_micros(assignment.spin_us.into()), || {
                getppid() == coordinator
            });
            Ok(())
        }
        Sync::Ipc => serve_ipc(&mut exec, &control, orders, reports).map_err(WorkerError::Setup),
    }
}
