//! What a worker does, whichever mode runs it.
//!
//! An [`Executor`] owns one chunk and carries out the steps on it: `Init`
//! (reserve, fill and first-touch the chunk), `Run` (rounds of a kernel,
//! with any injected fault first), `Validate` (check all three arrays,
//! digest them, and report `dot`'s partial sum). The same executor serves a
//! worker process ([`run_process`]), a worker thread and serial mode's one
//! chunk, so the modes differ only in what a worker is made of.
//!
//! Long work — filling, checking, a round over a huge chunk — is done in
//! pieces of [`PIECE`] elements, with a heartbeat after each, so that the
//! coordinator can tell a worker that is working from one that is hung.
#![forbid(unsafe_code)]

use std::os::fd::AsFd;
use std::sync::OnceLock;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::{Pid, getpid, getppid};

use crate::clock::now_ns;
use crate::fault::FaultKind;
use crate::kernel::data::{DotReference, Expect, Verdict, fill, verify};
use crate::kernel::reduce::nodes_of;
use crate::kernel::{Element, Kernel, Op, block_elems};
use crate::machine::cpus::{current_cpu, pin_current_thread};
use crate::protocol::{
    Assignment, Channel, DotPartial, FromWorker, InitError, InjectedFault, RecvError, SegmentFacts, Step, StepResult,
    Timing, ToWorker,
};
use crate::shm::{Access, Attachment, ChunkAccess, Control, Parts, Pulse, RoundStamp};
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
    kernels: Vec<Kernel<T>>,
    seed: u64,
    faults: Vec<InjectedFault>,
    oob_target: Option<u64>,
    pulse: Pulse<'c>,
    /// `nstream` rounds applied to this chunk.
    applied: u32,
    /// The block sums of the last `dot` round.
    blocks: Vec<T>,
    /// The global index of the segment's element 0.
    base: u64,
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
            seed: job.seed,
            faults: job.faults.clone(),
            oob_target: job.oob_target,
            pulse,
            applied: 0,
            blocks,
            base: job.base,
        })
    }

    /// The worker id.
    pub(crate) fn id(&self) -> usize {
        self.id
    }

    /// Carries out `Init`, `Validate` or one round of `Run` (`k` rounds
    /// into its batch).
    pub(crate) fn step(&mut self, step: &Step, k: u32) -> StepResult {
        match *step {
            Step::Init { fill_c } => StepResult::Init { error: self.init(fill_c).err() },
            Step::Run { op, first, op_round, .. } => {
                StepResult::Round { timing: self.round(op, first + k, op_round + k) }
            }
            Step::Validate { op, expect } => self.validate(op, &expect),
            Step::Shutdown => StepResult::Init { error: None },
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
            self.chunk.close_c().map_err(|e| InitError::Map { errno: e.errno().map_or(0, |e| e as i32) })?;
        }
        Ok(())
    }

    /// A replacement's first act while `nstream` updates `a` in place:
    /// re-fill its chunk of `a` from the generator (and of `b`, which holds
    /// the same values anyway), then apply `nstream` `a_updates` times, so
    /// that it stands where the lost worker's chunk should.
    pub(crate) fn restore(&mut self, a_updates: u32) {
        if a_updates == 0 {
            return;
        }
        if let Err(e) = self.fill(false) {
            panic!("cannot restore the chunk of a: {e}");
        }
        for round in 0..a_updates {
            self.round(Op::Nstream, u32::MAX, round);
        }
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
        })
    }

    fn kernel(&self, op: Op) -> Kernel<T> {
        *self.kernels.iter().find(|k| k.op() == op).unwrap_or_else(|| panic!("{op} is not among the run's kernels"))
    }

    /// One round of `op` (run-wide number `round`, `op_round` among the
    /// rounds of `op`), any fault for it injected first.
    fn round(&mut self, op: Op, round: u32, op_round: u32) -> Timing {
        self.inject_faults(round);
        let kernel = self.kernel(op);
        let start_ns = now_ns();
        if !op.idempotent() {
            // Updating in place: a round is applied once, even when a fault
            // made the coordinator repeat it.
            if op_round < self.applied {
                return Timing { start_ns, end_ns: start_ns, cpu: current_cpu().unwrap_or(u32::MAX) };
            }
            self.applied = op_round + 1;
        }
        let pulse = self.pulse;
        let block = block_elems::<T>();
        match op.writes() {
            Some(Array::C) => self.chunk.with::<T, _>(Access::WriteC, |parts| {
                let Parts::WriteC { a, b, c } = parts else { unreachable!() };
                for ((pa, pb), pc) in a.chunks(PIECE).zip(b.chunks(PIECE)).zip(c.chunks_mut(PIECE)) {
                    kernel.write_c(pa, pb, pc);
                    pulse.beat();
                }
            }),
            Some(_) => {
                if let Err(e) = self.chunk.open_a(true) {
                    panic!("cannot make the chunk of a writable for {op}: {e}");
                }
                self.chunk.with::<T, _>(Access::WriteA, |parts| {
                    let Parts::WriteA { a, b, c } = parts else { unreachable!() };
                    for ((pa, pb), pc) in a.chunks_mut(PIECE).zip(b.chunks(PIECE)).zip(c.chunks(PIECE)) {
                        kernel.write_a(pa, pb, pc);
                        pulse.beat();
                    }
                })
            }
            None => {
                let blocks = &mut self.blocks;
                self.chunk.with::<T, _>(Access::Read, |parts| {
                    let Parts::Read { a, b, .. } = parts else { unreachable!() };
                    let per_piece = PIECE / block;
                    for ((pa, pb), out) in a.chunks(PIECE).zip(b.chunks(PIECE)).zip(blocks.chunks_mut(per_piece)) {
                        kernel.reduce(pa, pb, out);
                        pulse.beat();
                    }
                })
            }
        }
        Timing { start_ns, end_ns: now_ns(), cpu: current_cpu().unwrap_or(u32::MAX) }
    }

    fn validate(&mut self, op: Op, expect: &Expect) -> StepResult {
        let _ = self.chunk.open_a(false); // the rounds that update a are over
        let start = self.base as usize + self.chunk.range().start;
        let (pulse, blocks) = (self.pulse, &self.blocks);
        self.chunk.with::<T, _>(Access::Read, |parts| {
            let Parts::Read { a, b, c } = parts else { unreachable!() };
            let mut verdict = Verdict::default();
            for (i, ((pa, pb), pc)) in a.chunks(PIECE).zip(b.chunks(PIECE)).zip(c.chunks(PIECE)).enumerate() {
                verdict = verdict.then(verify(expect, (start + i * PIECE) as u64, pa, pb, pc));
                pulse.beat();
            }
            let dot = (op == Op::Dot).then(|| {
                let mut reference = DotReference::default();
                for (pa, pb) in a.chunks(PIECE).zip(b.chunks(PIECE)) {
                    reference = reference.plus(DotReference::of(pa, pb));
                    pulse.beat();
                }
                DotPartial { nodes: nodes_of((start / block_elems::<T>()) as u64, blocks), reference: reference.into() }
            });
            StepResult::Validate { verdict, dot }
        })
    }

    fn inject_faults(&self, round: u32) {
        // Called every round: nothing at all without faults.
        for fault in self.faults.iter().filter(|f| f.round == round) {
            match fault.kind {
                FaultKind::OobWrite => {
                    if let Some(target) = self.oob_target {
                        self.chunk.stray_write(Array::A, target as usize, T::from_f64(OOB_VALUE).to_bits64());
                    }
                }
                kind => inject(kind, self.id, round),
            }
        }
    }
}

/// Carries out `kind` on the calling thread (all but `oob-write`, which
/// needs the chunk). Only a stall returns.
fn inject(kind: FaultKind, worker: usize, round: u32) {
    match kind {
        FaultKind::Panic => panic!("injected panic in worker {worker} at round {round}"),
        FaultKind::Abort => std::process::abort(),
        FaultKind::Segv => crate::shm::wild_store(),
        FaultKind::Exit(code) => std::process::exit(code),
        FaultKind::Hang => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        FaultKind::StackOverflow => {
            std::hint::black_box(overflow(0));
        }
        FaultKind::Stall(ms) => std::thread::sleep(Duration::from_millis(u64::from(ms))),
        FaultKind::OobWrite => {}
    }
}

/// Recurses until the stack runs out (4 KiB a frame): Rust guarantees the
/// guard page stops it with SIGSEGV.
#[allow(unconditional_recursion)]
pub(crate) fn overflow(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 512]);
    overflow(depth + 1).wrapping_add(frame[7])
}

/// Serves doorbell steps until `Shutdown`, or until `still_wanted` says
/// the coordinator is gone. `seen` is the bell's value when the worker
/// became ready. `report` receives the result of every step but a round's
/// (rounds are stamped into the slot), before the step is marked done.
pub(crate) fn serve_doorbell<T: Element, C: ChunkAccess>(
    exec: &mut Executor<'_, T, C>,
    control: &Control<'_>,
    mut seen: u32,
    spin: Duration,
    still_wanted: impl Fn() -> bool,
    mut report: impl FnMut(u32, StepResult),
) {
    let id = exec.id();
    loop {
        let seq = control.wait_for_bell(seen, spin, Duration::from_millis(250));
        if seq == seen {
            if !still_wanted() {
                return;
            }
            continue;
        }
        seen = seq;
        let Some((step, expected)) = control.order() else { return };
        control.enter(id, seq);
        match step {
            Step::Shutdown => return,
            Step::Run { count, .. } => {
                for k in 0..count {
                    if (k > 0 && !control.await_round(id, seq, k, spin)) || control.aborted(seq) {
                        break;
                    }
                    let StepResult::Round { timing } = exec.step(&step, k) else { unreachable!() };
                    control.stamp(id, k as usize, RoundStamp::from(timing));
                    control.arrive(id, seq, k, count, expected);
                }
            }
            _ => report(seq, exec.step(&step, 0)),
        }
        control.report_done(id, seq, expected);
    }
}

impl From<Timing> for RoundStamp {
    fn from(t: Timing) -> Self {
        RoundStamp { start_ns: t.start_ns, end_ns: t.end_ns, cpu: t.cpu }
    }
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
    exec.restore(job.restore);
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
    use crate::kernel::{Dtype, Simd, Stores};
    use crate::machine::page_size;
    use crate::shm::{Access, Parts, Segment};
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
            simd: Simd::Scalar,
            stores: Stores::Regular,
            stores_auto: false,
            seed: 3,
            pin: None,
            sync: RoundSync::Doorbell,
            spin_us: 0,
            faults: vec![],
            oob_target: None,
            restore: 0,
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
            let _ = std::io::stderr().write_all(
                b"SKIP a_real_worker_refuses_every_bad_assignment: vecpar-worker is not built (cargo test builds it)\n",
            );
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
        let arrays = seg.share_arrays().unwrap();
        let mut all = arrays.claim(0..len).unwrap();
        all.with::<f64, _>(Access::Read, |p| {
            let Parts::Read { a, b, c } = p else { unreachable!() };
            assert!(a.iter().chain(b).chain(c).all(|&x| x == 0.0));
        });
    }

    #[test]
    fn every_kernel_validates_in_one_executor_and_nstream_applies_each_round_once() {
        let len = 5000;
        let seg = Segment::create(Backend::Memfd, Dtype::F64, len, 1, page_size()).unwrap();
        let arrays = seg.share_arrays().unwrap();
        let claim = arrays.claim(0..len).unwrap();
        let job = job(Op::ALL.to_vec(), len as u64);
        let mut exec = Executor::<f64, _>::new(&job, claim, Pulse::default()).unwrap();
        assert_eq!(exec.step(&Step::Init { fill_c: true }, 0), StepResult::Init { error: None });
        let mut c_writer = None;
        for op in Op::ALL {
            for r in 0..3 {
                exec.step(&Step::Run { op, first: 0, count: 3, op_round: 0 }, r);
            }
            if op.writes() == Some(Array::C) {
                c_writer = Some(op);
            }
            // A repeated nstream round is not applied twice.
            if op == Op::Nstream {
                exec.step(&Step::Run { op, first: 0, count: 1, op_round: 2 }, 0);
            }
            let updates = if op == Op::Nstream { 3 } else { 0 };
            let expect = Expect { seed: 3, c_filled: true, c_writer, a_updates: updates };
            let StepResult::Validate { verdict, dot } = exec.step(&Step::Validate { op, expect }, 0) else { panic!() };
            assert_eq!(verdict.mismatch, None, "{op}");
            assert_eq!(dot.is_some(), op == Op::Dot);
        }
    }
}
