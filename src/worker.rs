//! What a worker does, whichever mode runs it.
//!
//! An [`Executor`] owns one chunk and carries out the steps on it: `Init`
//! (reserve, fill and first-touch the chunk), `Run` (rounds of a kernel,
//! with any injected fault first), `Rebuild` (bring the chunk to a given
//! point of the run: re-fill it and replay the kernels), `Report` (a
//! reduction's partial sums). The same executor serves a worker process
//! ([`run_process`]), a worker thread and serial mode's one chunk, so the
//! modes differ only in what a worker is made of.
//!
//! What an executor does with a kernel is read off the kernel's line in the
//! table: which array it writes (`c`, `a`, or none for a reduction), and
//! whether it updates in place. It keeps the [`History`] of its own chunk,
//! so that a rebuild replays exactly what the others' chunks went through.
//! An executor never checks its own work: the coordinator does.
//!
//! Long work — filling, a round over a huge chunk — is done in pieces of
//! [`PIECE`] elements, with a heartbeat after each, so that the coordinator
//! can tell a worker that is working from one that is hung.
#![forbid(unsafe_code)]

use std::os::fd::AsFd;
use std::sync::OnceLock;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::{Pid, getpid, getppid};

use crate::clock::now_ns;
use crate::fault::FaultKind;
use crate::kernel::data::fill;
use crate::kernel::reduce::nodes_of;
use crate::kernel::{Element, History, Kernel, Op, Position, block_elems};
use crate::machine::cpus::{current_cpu, pin_current_thread};
use crate::machine::numa::Binding;
use crate::protocol::{
    Assignment, Bound, Channel, DotPartial, FromWorker, InitError, InjectedFault, RecvError, SegmentFacts, Step,
    StepResult, Timing, ToWorker,
};
use crate::shm::doorbell::{Serve, serve};
use crate::shm::{Attachment, ChunkAccess, Control, Pulse};
use crate::vocab::{Array, RoundSync};

/// The value an `oob-write` fault stores: far outside the generator's [-1, 1).
pub(crate) const OOB_VALUE: f64 = 1234.5;

/// Elements of work between two heartbeats.
pub(crate) const PIECE: usize = 1 << 20;

/// Runs the steps on one chunk.
#[derive(Debug)]
pub(crate) struct Executor<'c, T: Element, C: ChunkAccess> {
    id: usize,
    chunk: C,
    /// The run's kernels, in order, each resolved for this CPU.
    kernels: Vec<Kernel<T>>,
    /// Rounds each kernel runs.
    per_kernel: u32,
    seed: u64,
    faults: Vec<InjectedFault>,
    oob_target: Option<u64>,
    pulse: Pulse<'c>,
    /// What this chunk holds: `None` until it is filled.
    at: Option<History>,
    /// The block sums of the last reduction, and which one it was.
    blocks: Vec<T>,
    blocks_of: Option<Op>,
    /// Whether the chunk of `a` is writable (for a kernel that writes it).
    a_open: bool,
    /// The global index of the segment's element 0.
    base: u64,
    /// Where the chunk's pages go.
    binding: Binding,
}

impl<'c, T: Element, C: ChunkAccess> Executor<'c, T, C> {
    /// An executor for the chunk of `job`, with every kernel of the run
    /// resolved (a level this CPU lacks is refused here).
    pub(crate) fn new(job: &Assignment, chunk: C, pulse: Pulse<'c>) -> Result<Self, String> {
        let kernels = job
            .ops
            .iter()
            .map(|&op| {
                Kernel::<T>::resolve(op, job.simd, job.stores.for_op(op, job.stores_auto))
                    .map_err(|e| format!("kernel {op}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let blocks = vec![T::ZERO; chunk.range().len().div_ceil(block_elems::<T>())];
        Ok(Executor {
            id: job.id as usize,
            chunk,
            kernels,
            per_kernel: job.rounds_per_kernel,
            seed: job.seed,
            faults: job.faults.clone(),
            oob_target: job.oob_target,
            pulse,
            at: None,
            blocks,
            blocks_of: None,
            a_open: false,
            base: job.base,
            binding: job.memory.clone(),
        })
    }

    /// The worker id.
    pub(crate) fn id(&self) -> usize {
        self.id
    }

    fn ops(&self) -> Vec<Op> {
        self.kernels.iter().map(|k| k.op()).collect()
    }

    /// Carries out `Init`, `Rebuild`, `Report` or round `k` of a `Run`'s
    /// batch.
    pub(crate) fn step(&mut self, step: &Step, k: u32) -> StepResult {
        match *step {
            Step::Init { fill_c } => {
                // Bound before the pages are reserved, so that where they
                // go does not depend on where the worker runs when it
                // touches them. A refusal (no NUMA, a seccomp filter) is
                // reported, not fatal.
                let bound = match self.chunk.bind(&self.binding) {
                    Ok(node) => Bound { node, refused: None },
                    Err(e) => Bound { node: None, refused: Some(e as i32) },
                };
                StepResult::Init { error: self.init(fill_c).err(), bound }
            }
            Step::Run { op, first, .. } => StepResult::Round { timing: self.round(op, Some(first + k)) },
            Step::Rebuild { to } => {
                self.rebuild(to);
                StepResult::Rebuilt
            }
            Step::Report { op } => StepResult::Report { partial: self.report(op) },
            Step::Shutdown => StepResult::Init { error: None, bound: Bound::default() },
        }
    }

    fn init(&mut self, fill_c: bool) -> Result<(), InitError> {
        let pulse = self.pulse;
        self.chunk.reserve(&|| pulse.beat()).map_err(|e| InitError::Reserve { errno: e as i32 })?;
        self.fill(fill_c).map_err(|e| InitError::Map { errno: e.errno().map_or(0, |e| e as i32) })?;
        if !fill_c {
            self.chunk.touch_output(&|| pulse.beat());
        }
        // Least privilege: c stays writable only if a kernel writes it.
        if !self.kernels.iter().any(|k| k.op().writes() == Some(Array::C)) {
            self.chunk
                .open(Array::C, false)
                .map_err(|e| InitError::Map { errno: e.errno().map_or(0, |e| e as i32) })?;
        }
        self.at = Some(History::new());
        Ok(())
    }

    /// Brings the chunk to where the run stands at `to`: unless it holds
    /// that already, it is re-filled from the generator (its inputs depend
    /// only on the seed and the index) and every kernel applied to it as
    /// often as the run applied it — an update in place round by round.
    pub(crate) fn rebuild(&mut self, to: Position) {
        let ops = self.ops();
        let target = History::at(&ops, self.per_kernel, to);
        let last_reduction = target.entries().last().map(|e| e.op).filter(|op| op.writes().is_none());
        if !self.at.as_ref().is_some_and(|h| h.same_state(&target)) {
            let pulse = self.pulse;
            if let Err(e) = self.chunk.reserve(&|| pulse.beat()) {
                panic!("cannot reserve the chunk to rebuild it: {e}");
            }
            // c is read-only when no kernel writes it; filling it again
            // needs it writable for that long.
            let fill_c = crate::kernel::history::fills_c(&ops);
            let c_closed = !ops.iter().any(|op| op.writes() == Some(Array::C));
            let opened = |chunk: &mut C, writable: bool| {
                if fill_c && c_closed {
                    chunk.open(Array::C, writable).unwrap_or_else(|e| panic!("cannot rebuild the chunk of c: {e}"));
                }
            };
            opened(&mut self.chunk, true);
            if let Err(e) = self.fill(fill_c) {
                panic!("cannot rebuild the chunk: {e}");
            }
            opened(&mut self.chunk, false);
            for (op, times) in target.effects() {
                for _ in 0..times {
                    self.round(op, None);
                }
            }
        }
        // A reduction's partial sums are part of where it stands.
        if let Some(op) = last_reduction
            && self.blocks_of != Some(op)
        {
            self.round(op, None);
        }
        self.at = Some(target);
    }

    fn fill(&mut self, fill_c: bool) -> Result<(), crate::shm::ShmError> {
        let (seed, start, pulse) = (self.seed, self.base + self.chunk.range().start as u64, self.pulse);
        self.chunk.fill::<T>(fill_c, |a, b, c| {
            let mut c = c;
            for (i, (pa, pb)) in a.chunks_mut(PIECE).zip(b.chunks_mut(PIECE)).enumerate() {
                let at = start + (i * PIECE) as u64;
                fill(seed, Array::A, at, pa);
                fill(seed, Array::B, at, pb);
                if let Some(c) = c.as_deref_mut() {
                    let end = (i * PIECE + PIECE).min(c.len());
                    fill(seed, Array::C, at, &mut c[i * PIECE..end]);
                }
                pulse.beat();
            }
        })?;
        self.blocks_of = None;
        Ok(())
    }

    fn kernel(&self, op: Op) -> Kernel<T> {
        *self.kernels.iter().find(|k| k.op() == op).unwrap_or_else(|| panic!("{op} is not among the run's kernels"))
    }

    /// One round of `op`; `round` is its run-wide number, whose injected
    /// faults fire first (`None` for a round replayed by a rebuild).
    fn round(&mut self, op: Op, round: Option<u32>) -> Timing {
        if let Some(r) = round {
            self.inject_faults(r);
        }
        let kernel = self.kernel(op);
        let pulse = self.pulse;
        if op.writes() == Some(Array::A) && !self.a_open {
            if let Err(e) = self.chunk.open(Array::A, true) {
                panic!("cannot make the chunk of a writable for {op}: {e}");
            }
            self.a_open = true;
        }
        let start_ns = now_ns();
        match op.writes() {
            Some(Array::C) => self.chunk.write_c::<T, _>(|a, b, c| {
                for ((pa, pb), pc) in a.chunks(PIECE).zip(b.chunks(PIECE)).zip(c.chunks_mut(PIECE)) {
                    kernel.write_c(pa, pb, pc);
                    pulse.beat();
                }
            }),
            Some(Array::A) => self.chunk.write_a::<T, _>(|a, b, c| {
                for ((pa, pb), pc) in a.chunks_mut(PIECE).zip(b.chunks(PIECE)).zip(c.chunks(PIECE)) {
                    kernel.write_a(pa, pb, pc);
                    pulse.beat();
                }
            }),
            Some(Array::B) => panic!("{op}: no kernel writes b"),
            None => {
                let blocks = &mut self.blocks;
                let per_piece = PIECE / block_elems::<T>();
                self.chunk.read::<T, _>(|a, b, c| {
                    let pieces = a.chunks(PIECE).zip(b.chunks(PIECE)).zip(c.chunks(PIECE));
                    for (((pa, pb), pc), out) in pieces.zip(blocks.chunks_mut(per_piece)) {
                        kernel.reduce(pa, pb, pc, out);
                        pulse.beat();
                    }
                });
                self.blocks_of = Some(op);
            }
        }
        let end_ns = now_ns();
        if let Some(h) = self.at.as_mut() {
            h.apply(op, 1);
        }
        Timing { start_ns, end_ns, cpu: current_cpu().unwrap_or(u32::MAX) }
    }

    /// The partial sums of the reduction `op` (computed again first if this
    /// chunk's last reduction was not `op`: a replacement's).
    fn report(&mut self, op: Op) -> DotPartial {
        assert!(op.writes().is_none(), "{op} is not a reduction: it has no partial sums");
        if self.blocks_of != Some(op) {
            self.round(op, None);
        }
        let first = (self.base as usize + self.chunk.range().start) / block_elems::<T>();
        DotPartial { nodes: nodes_of(first as u64, &self.blocks) }
    }

    fn inject_faults(&self, round: u32) {
        // Called every round: nothing at all without faults.
        for fault in self.faults.iter().filter(|f| f.round == round) {
            let target = WorkerTarget { id: self.id, chunk: &self.chunk, oob: self.oob_target, dtype: T::DTYPE };
            if fault.kind.stops_the_worker() {
                self.pulse.last();
            }
            inject(fault.kind, round, &target);
        }
    }
}

/// Where an injected fault strikes: a worker (process or thread) or an MPI
/// rank.
pub(crate) trait FaultTarget {
    /// "worker 1", "rank 0".
    fn who(&self) -> String;
    /// The `oob-write`: a store into a neighbour's part of `a`.
    fn stray_store(&self);
    /// The `exit=CODE`.
    fn exit(&self, code: i32) -> !;
}

struct WorkerTarget<'e, C> {
    id: usize,
    chunk: &'e C,
    oob: Option<u64>,
    dtype: crate::kernel::Dtype,
}

impl<C: ChunkAccess> FaultTarget for WorkerTarget<'_, C> {
    fn who(&self) -> String {
        format!("worker {}", self.id)
    }

    fn stray_store(&self) {
        if let Some(target) = self.oob {
            let bits = match self.dtype {
                crate::kernel::Dtype::F64 => OOB_VALUE.to_bits(),
                crate::kernel::Dtype::F32 => u64::from((OOB_VALUE as f32).to_bits()),
            };
            self.chunk.stray_write(Array::A, target as usize, bits);
        }
    }

    fn exit(&self, code: i32) -> ! {
        // `exit`, not `_exit`: in threads mode its handlers say who ended
        // the process.
        std::process::exit(code)
    }
}

/// Carries out the fault `kind` in `round` on the calling thread of
/// `target`. Only a stall (and an `oob-write` that nothing stops) returns.
pub(crate) fn inject(kind: FaultKind, round: u32, target: &dyn FaultTarget) {
    match kind {
        FaultKind::Panic => panic!("injected panic in {} at round {round}", target.who()),
        FaultKind::Abort => std::process::abort(),
        FaultKind::Segv => crate::shm::wild_store(),
        FaultKind::Exit(code) => target.exit(code),
        FaultKind::Hang => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        FaultKind::StackOverflow => {
            std::hint::black_box(overflow(0));
        }
        FaultKind::Stall(ms) => std::thread::sleep(Duration::from_millis(u64::from(ms))),
        FaultKind::OobWrite => target.stray_store(),
    }
}

/// Recurses until the stack runs out (4 KiB a frame): Rust guarantees the
/// guard page stops it with SIGSEGV.
#[allow(unconditional_recursion)]
fn overflow(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 512]);
    overflow(depth + 1).wrapping_add(frame[7])
}

/// An executor serving the doorbell; `report` receives the result of every
/// step but a round's (rounds are stamped into the slot), before the step
/// is marked done.
pub(crate) struct Doorbell<'e, 'c, T: Element, C: ChunkAccess, R: FnMut(u32, StepResult)> {
    pub(crate) exec: &'e mut Executor<'c, T, C>,
    pub(crate) report: R,
}

impl<T: Element, C: ChunkAccess, R: FnMut(u32, StepResult)> Serve for Doorbell<'_, '_, T, C, R> {
    fn round(&mut self, step: &Step, k: u32) -> Timing {
        match self.exec.step(step, k) {
            StepResult::Round { timing } => timing,
            _ => Timing::default(),
        }
    }

    fn other(&mut self, seq: u32, step: &Step) {
        let result = self.exec.step(step, 0);
        (self.report)(seq, result);
    }
}

/// Serves doorbell steps until `Shutdown`, or until `still_wanted` says
/// the coordinator is gone. `seen` is the bell's value when the worker
/// became ready.
pub(crate) fn serve_doorbell<T: Element, C: ChunkAccess>(
    exec: &mut Executor<'_, T, C>,
    control: &Control<'_>,
    seen: u32,
    spin: Duration,
    still_wanted: impl Fn() -> bool,
    report: impl FnMut(u32, StepResult),
) {
    let id = exec.id();
    serve(control, id, seen, spin, still_wanted, &mut Doorbell { exec, report });
}

/// Serves `--sync ipc` steps (one round each) until `Shutdown` or the
/// channel closes.
fn serve_channel<T: Element, C: ChunkAccess>(exec: &mut Executor<'_, T, C>, channel: &Channel) -> Result<(), String> {
    loop {
        match channel.recv::<ToWorker>(Duration::from_millis(250)) {
            Ok(ToWorker::Step { step: Step::Shutdown, .. }) | Err(RecvError::Closed) => return Ok(()),
            Ok(ToWorker::Step { seq, step }) => {
                let result = exec.step(&step, 0);
                channel.send(&FromWorker::Done { seq, result }).map_err(|e| format!("cannot report: {e}"))?;
            }
            Ok(ToWorker::Assign(_)) => return Err("a second assignment arrived".into()),
            Err(RecvError::Empty) => {}
            Err(e) => return Err(format!("an order could not be read: {e}")),
        }
    }
}

/// The worker process's command line, as the coordinator writes it.
#[derive(Debug, clap::Parser)]
#[command(
    name = "vecpar-worker",
    version,
    about = "A vecpar worker process. It is started by vecpar-coord, never by hand: its standard input is the \
             coordinator's shared segment and its standard output a channel to the coordinator."
)]
pub(crate) struct WorkerArgs {
    /// Worker id (its slot in the segment's control block)
    #[arg(long)]
    id: u32,
    /// The coordinator's pid; the worker refuses to run under any other parent
    #[arg(long)]
    coordinator: i32,
}

/// Why a worker process gave up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkerError {
    /// Started wrongly (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Could not attach, connect or map (exit 1).
    #[error("{0}")]
    Setup(String),
    /// A failure the coordinator was already told about (exit 1): it
    /// reports it, so the worker prints nothing.
    #[error("{0}")]
    Reported(String),
}

impl WorkerError {
    /// The process exit code.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            WorkerError::Usage(_) => 2,
            WorkerError::Setup(_) | WorkerError::Reported(_) => 1,
        }
    }

    /// Whether the worker should print it (the coordinator does otherwise).
    pub(crate) fn should_print(&self) -> bool {
        !matches!(self, WorkerError::Reported(_))
    }
}

static PANIC_CHANNEL: OnceLock<Channel> = OnceLock::new();

/// A worker process, from its command line to `Shutdown`.
pub(crate) fn run_process(args: &WorkerArgs) -> Result<(), WorkerError> {
    // Die with the coordinator, even if it is SIGKILLed; then close the race
    // where it died before prctl ran. (The signal follows the thread that
    // spawned us: the coordinator's spawner threads live as long as its
    // workers.)
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| WorkerError::Setup(format!("prctl: {e}")))?;
    // If memory runs out, the OOM killer is to take a worker, never the
    // coordinator: a worker is the expendable part (its loss is reported,
    // and under --on-fault retry repaired); the coordinator's loss is a
    // silent exit 137. Its chunk's pages are in no process's RSS until
    // they are mapped, so without this the coordinator looks the largest.
    // (Raising one's own score needs no privilege.)
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    let coordinator = Pid::from_raw(args.coordinator);
    if getppid() != coordinator {
        return Err(WorkerError::Usage(format!(
            "vecpar-worker is started by vecpar-coord, not by hand (parent pid {} is not the coordinator {})",
            getppid(),
            args.coordinator
        )));
    }
    // The channel is our stdout and the segment our stdin; take both, and
    // put /dev/null in their place, so that nothing printed by accident
    // can reach either.
    let not_started_by_coord =
        |why: String| WorkerError::Usage(format!("vecpar-worker is started by vecpar-coord: its stdout: {why}"));
    let out = std::io::stdout().as_fd().try_clone_to_owned().map_err(|e| not_started_by_coord(e.to_string()))?;
    let channel = Channel::adopt(out).map_err(not_started_by_coord)?;
    let segment = std::io::stdin().as_fd().try_clone_to_owned();
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
    }
    let attachment = segment
        .map_err(|e| e.to_string())
        .and_then(|fd| Attachment::open(fd).map_err(|e| e.to_string()))
        .map_err(|e| refuse(&channel, format!("cannot attach to the segment on stdin: {e}")))?;
    let layout = attachment.layout().clone();
    if args.id as usize >= layout.slots {
        return Err(refuse(&channel, format!("--id {} but the segment has {} worker slots", args.id, layout.slots)));
    }
    let hello = FromWorker::Hello { id: args.id, pid: getpid().as_raw() as u32, version: crate::VERSION.into() };
    channel.send(&hello).map_err(|e| WorkerError::Setup(format!("cannot report to the coordinator: {e}")))?;

    if let Ok(fd) = channel.duplicate() {
        let _ = PANIC_CHANNEL.set(fd);
    }
    std::panic::set_hook(Box::new(|info| {
        crate::shm::note_stopping();
        let message = crate::diag::panic_message(info);
        match PANIC_CHANNEL.get() {
            Some(c) if c.send(&FromWorker::Panicked { message: message.clone() }).is_ok() => {}
            _ => crate::diag::line("panicked", message),
        }
    }));

    let job = loop {
        match channel.recv::<ToWorker>(Duration::from_millis(500)) {
            Ok(ToWorker::Assign(a)) => break a,
            Ok(other) => return Err(refuse(&channel, format!("expected an assignment, got {other:?}"))),
            Err(RecvError::Empty) if getppid() == coordinator => continue,
            Err(RecvError::Empty | RecvError::Closed) => return Ok(()), // the coordinator is gone
            Err(e) => return Err(refuse(&channel, format!("the assignment could not be read: {e}"))),
        }
    };
    let facts = SegmentFacts {
        len: layout.len as u64,
        dtype: layout.dtype,
        slots: layout.slots,
        page_elems: layout.page_elems() as u64,
    };
    if let Err(why) = job.validate(&facts) {
        return Err(refuse(&channel, format!("invalid assignment: {why}")));
    }
    match layout.dtype {
        crate::kernel::Dtype::F64 => serve_process::<f64>(&attachment, &job, &channel, coordinator),
        crate::kernel::Dtype::F32 => serve_process::<f32>(&attachment, &job, &channel, coordinator),
    }
}

/// Tells the coordinator why the worker gives up (it reports it).
fn refuse(channel: &Channel, message: String) -> WorkerError {
    match channel.send(&FromWorker::Failed { message: message.clone() }) {
        Ok(()) => WorkerError::Reported(message),
        Err(_) => WorkerError::Setup(message),
    }
}

fn serve_process<T: Element>(
    attachment: &Attachment,
    job: &Assignment,
    channel: &Channel,
    coordinator: Pid,
) -> Result<(), WorkerError> {
    let id = job.id as usize;
    let chunk = attachment.map_chunk(job.range()).map_err(|e| {
        let message = format!("cannot map the chunk: {e}");
        match e.errno() {
            Some(errno) => {
                let _ = channel.send(&FromWorker::CannotMap { errno: errno as i32, message: message.clone() });
                WorkerError::Reported(message)
            }
            None => refuse(channel, message),
        }
    })?;
    let _recorder = attachment
        .record_faults(id, &chunk)
        .map_err(|e| refuse(channel, format!("cannot install the fault recorder: {e}")))?;
    let control = attachment.control();
    let mut exec = Executor::<T, _>::new(job, chunk, control.pulse(id)).map_err(|e| refuse(channel, e))?;
    if let Some(to) = job.rebuild {
        exec.rebuild(to);
    }
    let pin = pin_current_thread(job.pin.map(|c| c as usize));
    let seen = control.bell();
    channel.send(&FromWorker::Ready { pin }).map_err(|e| WorkerError::Setup(format!("cannot report: {e}")))?;
    match job.sync {
        RoundSync::Doorbell => {
            let spin = Duration::from_micros(job.spin_us.into());
            let mut report_error = None;
            serve_doorbell(
                &mut exec,
                &control,
                seen,
                spin,
                || getppid() == coordinator,
                |seq, result| {
                    if let Err(e) = channel.send(&FromWorker::Done { seq, result }) {
                        report_error.get_or_insert(e);
                    }
                },
            );
            match report_error {
                Some(e) => Err(WorkerError::Setup(format!("cannot report: {e}"))),
                None => Ok(()),
            }
        }
        RoundSync::Ipc => serve_channel(&mut exec, channel).map_err(WorkerError::Setup),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::data::{Expect, verify};
    use crate::kernel::{Dtype, Simd, Stores};
    use crate::machine::page_size;
    use crate::shm::Segment;
    use crate::vocab::Backend;

    fn job(ops: Vec<Op>, len: u64) -> Assignment {
        Assignment {
            version: crate::VERSION.into(),
            id: 0,
            attempt: 0,
            start: 0,
            end: len,
            len,
            base: 0,
            dtype: Dtype::F64,
            ops,
            rounds_per_kernel: 3,
            simd: Simd::Scalar,
            stores: Stores::Regular,
            stores_auto: false,
            seed: 3,
            pin: None,
            sync: RoundSync::Doorbell,
            spin_us: 0,
            faults: vec![],
            oob_target: None,
            rebuild: None,
            memory: Binding::Inherit,
        }
    }

    /// The worker binary next to this test binary (`target/*/vecpar-worker`).
    fn worker_binary() -> Option<std::path::PathBuf> {
        let exe = std::env::current_exe().ok()?;
        let bin = exe.parent()?.parent()?.join("vecpar-worker");
        bin.exists().then_some(bin)
    }

    #[test]
    fn a_real_worker_refuses_every_bad_assignment_before_writing_anything() {
        use std::io::Write;
        use std::os::unix::process::CommandExt;
        let Some(bin) = worker_binary() else {
            let why = "vecpar-worker is not built (cargo test builds it)";
            assert!(
                std::env::var_os("VECPAR_REQUIRE_ALL_TESTS").is_none_or(|v| v != "1"),
                "a_real_worker_refuses_every_bad_assignment cannot run: {why}"
            );
            let _ = std::io::stderr()
                .write_all(format!("SKIP a_real_worker_refuses_every_bad_assignment: {why}\n").as_bytes());
            return;
        };
        let len = 10_000usize;
        let seg = Segment::create(Backend::Memfd, Dtype::F64, len, 2, page_size()).unwrap();
        let good = Assignment { end: 5120, ..job(vec![Op::Add], len as u64) };
        let bad: Vec<(Option<Assignment>, &str)> = vec![
            (Some(Assignment { end: 20_000, ..good.clone() }), "outside the array"),
            (Some(Assignment { start: 100, ..good.clone() }), "page boundaries"),
            (Some(Assignment { dtype: Dtype::F32, ..good.clone() }), "the segment holds"),
            (Some(Assignment { id: 7, ..good.clone() }), "slots"),
            (Some(Assignment { version: "0.0.0".into(), ..good.clone() }), "rebuild both"),
            (None, "could not be read"),
        ];
        for (assignment, why) in bad {
            let (channel, theirs) = Channel::pair().unwrap();
            let mut child = std::process::Command::new(&bin)
                .args(["--id", "0", "--coordinator", &std::process::id().to_string()])
                .stdin(std::process::Stdio::from(seg.fd_for_child().unwrap()))
                .stdout(std::process::Stdio::from(theirs))
                .stderr(std::process::Stdio::piped())
                .process_group(0)
                .spawn()
                .unwrap();
            let hello = channel.recv::<FromWorker>(Duration::from_secs(300)).unwrap();
            assert!(matches!(hello, FromWorker::Hello { id: 0, .. }), "{hello:?}");
            match assignment {
                Some(a) => channel.send(&ToWorker::Assign(a)).unwrap(),
                None => channel.send(&"not an order").unwrap(),
            }
            match channel.recv::<FromWorker>(Duration::from_secs(300)).unwrap() {
                FromWorker::Failed { message } => assert!(message.contains(why), "{why}: {message}"),
                other => panic!("{why}: expected Failed, got {other:?}"),
            }
            let status = child.wait().unwrap();
            assert_eq!(status.code(), Some(1), "{why}");
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            assert!(stderr.is_empty(), "the coordinator reports it, the worker prints nothing: {stderr}");
        }
        // Nothing was written: the arrays are still the zeroes of a fresh segment.
        let read = seg.read_arrays().unwrap();
        let mut all = vec![1.0f64; len];
        for array in Array::ALL {
            read.view().copy(array, 0, &mut all);
            assert!(all.iter().all(|&x| x == 0.0), "{array}");
        }
    }

    /// The arrays of a segment, checked against `expect` from outside.
    fn check(seg: &Segment, expect: &Expect) -> crate::kernel::data::Verdict {
        let read = seg.read_arrays().unwrap();
        let len = seg.layout().len;
        let [mut a, mut b, mut c] = [vec![0.0f64; len], vec![0.0f64; len], vec![0.0f64; len]];
        read.view().copy(Array::A, 0, &mut a);
        read.view().copy(Array::B, 0, &mut b);
        read.view().copy(Array::C, 0, &mut c);
        verify(expect, 0, &a, &b, &c)
    }

    /// Every kernel, in one executor, leaves what the history says; and a
    /// fresh executor rebuilding the chunk from scratch to any point of the
    /// run leaves exactly what the run left there.
    #[test]
    fn every_kernel_runs_in_one_executor_and_a_rebuild_reproduces_any_point() {
        let len = 5000;
        let ops = Op::ALL.to_vec();
        let seg = Segment::create(Backend::Memfd, Dtype::F64, len, 1, page_size()).unwrap();
        let job = job(ops.clone(), len as u64);
        let fill_c = crate::kernel::history::fills_c(&ops);
        let mut history = History::new();
        let mut digests = Vec::new();
        {
            let arrays = seg.share_arrays().unwrap();
            let mut exec = Executor::<f64, _>::new(&job, arrays.claim(0..len).unwrap(), Pulse::default()).unwrap();
            assert_eq!(exec.step(&Step::Init { fill_c }, 0), StepResult::Init { error: None, bound: Bound::default() });
            for (k, &op) in ops.iter().enumerate() {
                for r in 0..3 {
                    exec.step(&Step::Run { op, first: 0, count: 3, op_round: 0 }, r);
                }
                history.apply(op, 3);
                let expect = Expect { seed: 3, c_filled: fill_c, history: history.clone() };
                let v = check(&seg, &expect);
                assert_eq!(v.mismatch, None, "{op}");
                digests.push((Position { kernel: k as u32, rounds: 3 }, v));
                if op.writes().is_none() {
                    let report = exec.step(&Step::Report { op }, 0);
                    assert!(matches!(report, StepResult::Report { .. }), "{op}");
                }
            }
        }
        for (to, want) in digests.into_iter().rev() {
            let arrays = seg.share_arrays().unwrap();
            let mut fresh = Executor::<f64, _>::new(&job, arrays.claim(0..len).unwrap(), Pulse::default()).unwrap();
            fresh.rebuild(to);
            let expect = Expect { seed: 3, c_filled: fill_c, history: History::at(&ops, 3, to) };
            assert_eq!(check(&seg, &expect), want, "rebuilt to {to:?}");
        }
    }
}
