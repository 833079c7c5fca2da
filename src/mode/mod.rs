//! Running a measurement: the conductor and its teams.
//!
//! The conductor ([`run`]) does the same steps in every mode: create the
//! segment, start a team, `Init`, the warm-up and timed rounds, `Validate`,
//! shut down. A *team* is what executes a step on every chunk:
//!
//! * [`procs`]: worker processes (`vecpar-worker`), attached to the segment,
//!   each mapping only what it needs;
//! * [`threads`]: persistent threads of this process, on one read-write
//!   mapping of the same segment;
//! * [`serial`]: this thread, on the whole array.
//!
//! All three run the same [`crate::worker::Executor`] on the same partition
//! and write their outcomes into the same control-block slots, so the only
//! difference between the modes is what a worker is made of — which is the
//! comparison vecpar exists for.
//!
//! Faults are handled here, once: a team reports lost workers, the conductor
//! records them and, under `--on-fault retry`, asks the team for a
//! replacement and repeats the step with every worker, so a round's timing is
//! never a mix of attempts.
#![forbid(unsafe_code)]

mod procs;
mod serial;
mod threads;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::clock::{now_ns, seconds};
use crate::config::{RunConfig, oob_target};
use crate::cpus::PinOutcome;
use crate::error::{EXIT_FAULT, EXIT_OK, EXIT_VALIDATION, Error};
use crate::fault::{Cause, FaultKind, FaultRecord, OnFault, Phase};
use crate::ipc::{Assignment, InjectedFault};
use crate::kernel::{Mismatch, Stream};
use crate::partition::Partition;
use crate::report::{
    ConfigEcho, Phases, Provenance, RetryRecord, RoundRecord, RunReport, Summary, Validation, WorkerRecord, gbps,
};
use crate::shm::{Command, Segment, SlotStatus};
use crate::stats::median;

/// What workers are made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Worker processes over shared memory (isolated: a crash takes one worker)
    Procs,
    /// Threads of one process (shared address space: a crash takes the run)
    Threads,
    /// One thread, the baseline for speed-ups
    Serial,
}

impl Mode {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Procs => "procs",
            Mode::Threads => "threads",
            Mode::Serial => "serial",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How often a waiting coordinator looks for dead workers.
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// A worker a team could not keep.
#[derive(Debug)]
pub(crate) struct Lost {
    pub(crate) id: usize,
    pub(crate) cause: Cause,
}

/// Why a worker could not be replaced.
#[derive(Debug)]
pub(crate) enum ReplaceError {
    /// The replacement was started and lost too (worth another try).
    Lost(Lost),
    /// Replacing is impossible (a thread that cannot be killed holds the chunk).
    Impossible(String),
}

/// The end of a step.
#[derive(Debug)]
pub(crate) enum Waited {
    /// Every worker reported.
    Done,
    /// These workers were lost; every other one reported.
    Lost(Vec<Lost>),
}

/// What the report shows of a worker.
#[derive(Clone, Debug)]
pub(crate) struct MemberFacts {
    pub(crate) pid: u32,
    pub(crate) tid: Option<u32>,
    pub(crate) pin: PinOutcome,
    pub(crate) attempt: u32,
}

/// Executes steps on every chunk.
///
/// Every team writes its timings and outcomes into the control block (the
/// doorbell teams because that is how they report; the others so that the
/// conductor reads one place), so the trait is only about running steps.
pub(crate) trait Team {
    /// Facts about worker `id`.
    fn member(&self, id: usize) -> MemberFacts;
    /// The most rounds one `Run` may cover.
    fn batch_limit(&self) -> u32;
    /// Starts a step at `ring_ns` (for `Run`: `count` rounds from `round`);
    /// returns its sequence number.
    fn ring(&mut self, command: Command, round: u32, count: u32, ring_ns: u64) -> Result<u32, Error>;
    /// Waits for the step to end.
    fn wait(&mut self, seq: u32, timeout: Duration) -> Waited;
    /// Replaces a lost worker with a fresh one (next attempt).
    fn replace(&mut self, id: usize) -> Result<(), ReplaceError>;
    /// Stops every worker and reaps them.
    fn shutdown(&mut self);
}

/// The per-worker assignment every mode starts from.
pub(crate) fn assignment(cfg: &RunConfig, partition: &Partition, id: usize, attempt: u32) -> Assignment {
    let range = partition.chunk(id);
    let faults: Vec<InjectedFault> = if attempt == 0 {
        cfg.faults.iter().filter(|f| f.worker == id).map(|f| InjectedFault { kind: f.kind, round: f.round }).collect()
    } else {
        Vec::new() // injected faults fire on the first attempt only
    };
    let oob = faults.iter().any(|f| f.kind == FaultKind::OobWrite).then(|| oob_target(partition, id)).flatten();
    Assignment {
        id: id as u32,
        attempt,
        start: range.start as u64,
        end: range.end as u64,
        len: cfg.len as u64,
        dtype: cfg.dtype,
        op: cfg.op,
        simd: cfg.simd,
        stores: cfg.stores,
        seed: cfg.seed,
        pin: cfg.pin_plan[id].map(|c| c as u32),
        sync: cfg.sync,
        spin_us: cfg.worker_spin.as_micros() as u32,
        faults,
        oob_target: oob,
    }
}

/// Waits for a doorbell step: spins, sleeps on the done counter, and every
/// [`POLL`] asks `probe` which of the still-pending workers are dead. At
/// the deadline, `expire` is told which are hung. Once a worker is lost the
/// batch is aborted, so the others stop waiting for it at the gate.
pub(crate) fn wait_doorbell(
    segment: &Segment,
    seq: u32,
    live: &[usize],
    spin: Duration,
    timeout: Duration,
    mut probe: impl FnMut(&[usize]) -> Vec<Lost>,
    mut expire: impl FnMut(&[usize]) -> Vec<Lost>,
) -> Waited {
    let control = segment.control();
    let deadline = Instant::now() + timeout;
    let expected = live.len() as u32;
    let mut lost: Vec<Lost> = Vec::new();
    let mut spin = spin;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        // Once a worker is lost the count cannot reach `expected` (and so
        // nobody wakes us): poll the survivors' slots briskly instead.
        let poll = if lost.is_empty() { POLL } else { Duration::from_millis(1) };
        let count = control.done().wait_for_count(expected, spin, remaining.min(poll));
        spin = Duration::ZERO;
        if count >= expected && lost.is_empty() {
            return Waited::Done;
        }
        let pending: Vec<usize> = live
            .iter()
            .copied()
            .filter(|&id| control.slot(id).done_seq.load(Ordering::Acquire) != seq && !lost.iter().any(|l| l.id == id))
            .collect();
        if pending.is_empty() {
            return if lost.is_empty() { Waited::Done } else { Waited::Lost(lost) };
        }
        lost.extend(probe(&pending));
        if Instant::now() >= deadline {
            // In a batch, a worker waiting at the gate for a hung peer is
            // pending too; only those behind the others are hung.
            let progress = |id: usize| control.slot(id).progress.load(Ordering::Acquire);
            let furthest = live.iter().map(|&id| progress(id)).max().unwrap_or(0);
            let waiting: Vec<usize> = pending.into_iter().filter(|id| !lost.iter().any(|l| l.id == *id)).collect();
            let behind: Vec<usize> = waiting.iter().copied().filter(|&id| progress(id) < furthest).collect();
            let hung = if behind.is_empty() { waiting } else { behind };
            lost.extend(expire(&hung));
            control.abort();
            // The others leave the batch promptly once it is aborted.
            let others: Vec<usize> = live.iter().copied().filter(|id| !lost.iter().any(|l| l.id == *id)).collect();
            let grace = Instant::now() + POLL * 10;
            while others.iter().any(|&id| control.slot(id).done_seq.load(Ordering::Acquire) != seq)
                && Instant::now() < grace
            {
                std::thread::sleep(Duration::from_micros(200));
            }
            return Waited::Lost(lost);
        }
        if !lost.is_empty() {
            control.abort();
        }
    }
}

/// Runs one measurement and reports it. Faults and failed validation are
/// part of the report (and its exit code); `Err` means there is no report.
pub fn run(cfg: &RunConfig) -> Result<RunReport, Error> {
    let started = Instant::now();
    let swept = if cfg.shm == crate::shm::Backend::Posix { crate::shm::sweep_stale() } else { Vec::new() };
    let (segment, fallback) = create_segment(cfg)?;
    let segment = Arc::new(segment);
    let cfg = fallback.as_ref().unwrap_or(cfg);
    let mut conductor = Conductor::new(cfg);
    if !swept.is_empty() {
        conductor.warnings.push(format!(
            "removed {} stale segment(s) left by dead runs: {}",
            swept.len(),
            swept.join(", ")
        ));
    }
    let _name_guard = segment.name().map(crate::signals::SegmentName::track);
    conductor.phases.setup_s = started.elapsed().as_secs_f64();

    let t = Instant::now();
    let (team, lost_at_start) = match cfg.mode {
        Mode::Procs => procs::ProcTeam::start(cfg, &conductor.partition, Arc::clone(&segment))?,
        Mode::Threads => threads::ThreadTeam::start(cfg, &conductor.partition, Arc::clone(&segment))?,
        Mode::Serial => serial::InlineTeam::start(cfg, Arc::clone(&segment))?,
    };
    let mut team: Box<dyn Team> = team;
    let mut ok = lost_at_start.is_empty() || conductor.recover(team.as_mut(), lost_at_start, Phase::StartUp, None, t);
    // Every worker has attached: the name can go (attached processes keep
    // their mappings; nothing is left in /dev/shm from here on).
    segment.unlink()?;
    conductor.phases.spawn_s = t.elapsed().as_secs_f64();

    if ok {
        let t = Instant::now();
        ok = conductor.step(team.as_mut(), &segment, Command::Init);
        conductor.phases.init_s = t.elapsed().as_secs_f64();
        if ok && let Some(e) = init_failure(cfg, &segment) {
            team.shutdown();
            return Err(e);
        }
    }
    if ok {
        let t = Instant::now();
        ok = conductor.rounds(team.as_mut(), &segment);
        conductor.phases.rounds_s = t.elapsed().as_secs_f64();
    }
    let mut validation = None;
    if ok {
        let t = Instant::now();
        if conductor.step(team.as_mut(), &segment, Command::Validate) {
            validation = Some(conductor.validation(&segment));
        }
        conductor.phases.validate_s = t.elapsed().as_secs_f64();
    }

    let t = Instant::now();
    team.shutdown();
    let workers = conductor.worker_records(team.as_ref());
    drop(team);
    drop(segment);
    conductor.phases.teardown_s = t.elapsed().as_secs_f64();
    conductor.phases.total_s = started.elapsed().as_secs_f64();
    Ok(conductor.into_report(validation, workers))
}

/// Creates the segment; under `--huge-pages auto`, falls back to base pages
/// when the hugetlb pool ran out since the run was planned (another process
/// took the pages), returning the adjusted configuration.
fn create_segment(cfg: &RunConfig) -> Result<(Segment, Option<RunConfig>), Error> {
    match Segment::create(cfg.shm, cfg.dtype, cfg.len, cfg.procs, cfg.page) {
        Ok(segment) => Ok((segment, None)),
        Err(crate::shm::ShmError::HugePagesExhausted) if cfg.huge_pages == crate::cli::HugePages::Auto => {
            let mut base = cfg.clone();
            base.page = crate::shm::page_size();
            base.page_reason = "base pages (the hugetlb pool ran out while reserving)".into();
            base.warnings.push("the hugetlb pool ran out while reserving; the run uses base pages".into());
            let segment = Segment::create(base.shm, base.dtype, base.len, base.procs, base.page)?;
            Ok((segment, Some(base)))
        }
        Err(crate::shm::ShmError::HugePagesExhausted) => Err(Error::Runtime(
            "--huge-pages always: the hugetlb pool ran out while reserving the segment (another process took the pages)"
                .into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// A worker that could not reserve or map its chunk: the machine cannot hold
/// the run after all (the preflight in [`crate::config`] normally catches
/// this; reserving before touching is what turns it into an error instead
/// of a SIGBUS).
fn init_failure(cfg: &RunConfig, segment: &Segment) -> Option<Error> {
    let control = segment.control();
    (0..cfg.procs).find_map(|id| {
        let slot = control.slot(id);
        let errno = nix::errno::Errno::from_raw(slot.status_detail.load(Ordering::Acquire) as i32);
        match SlotStatus::from_u32(slot.status.load(Ordering::Acquire)) {
            Some(SlotStatus::ReserveFailed) => Some(Error::Runtime(match cfg.shm {
                crate::shm::Backend::Posix => format!(
                    "worker {id} could not reserve its chunk in /dev/shm ({errno}): --shm posix is limited by the size of \
                     /dev/shm; use the default --shm memfd, or enlarge /dev/shm"
                ),
                crate::shm::Backend::Memfd => {
                    format!("worker {id} could not reserve its chunk of shared memory ({errno}); lower --len")
                }
            })),
            Some(SlotStatus::MapFailed) => {
                Some(Error::Runtime(format!("worker {id} could not map its chunk ({errno})")))
            }
            _ => None,
        }
    })
}

/// How one ring of a step ended.
enum Attempt {
    /// Every worker reported.
    Done,
    /// Workers were lost and replaced; `completed` rounds of the batch stand.
    Recovered { completed: u32 },
    /// The run must stop.
    Stop,
}

/// The state of a run between steps.
struct Conductor<'c> {
    cfg: &'c RunConfig,
    partition: Partition,
    phases: Phases,
    warmup: Vec<RoundRecord>,
    runs: Vec<RoundRecord>,
    faults: Vec<FaultRecord>,
    retries: Vec<RetryRecord>,
    retries_used: Vec<u32>,
    /// Retries made since the last completed step, and when the first
    /// fault among them was seen: their cost runs until the step completes.
    recovering: Option<(usize, Instant)>,
    cpus_seen: Vec<BTreeSet<u32>>,
    last_cpu: Vec<Option<u32>>,
    warnings: Vec<String>,
    stopped: bool,
}

impl<'c> Conductor<'c> {
    fn new(cfg: &'c RunConfig) -> Self {
        Conductor {
            cfg,
            partition: cfg.partition(),
            phases: Phases::default(),
            warmup: Vec::new(),
            runs: Vec::new(),
            faults: Vec::new(),
            retries: Vec::new(),
            retries_used: vec![0; cfg.procs],
            recovering: None,
            cpus_seen: vec![BTreeSet::new(); cfg.procs],
            last_cpu: vec![None; cfg.procs],
            warnings: cfg.warnings.clone(),
            stopped: false,
        }
    }

    /// Rings once and waits; on loss, records and (policy allowing)
    /// replaces the lost workers.
    fn attempt(&mut self, team: &mut dyn Team, segment: &Segment, command: Command, round: u32, count: u32) -> Attempt {
        let phase = match command {
            Command::Init => Phase::Init,
            Command::Validate => Phase::Validate,
            _ => Phase::Round,
        };
        let started = Instant::now();
        let seq = match team.ring(command, round, count, now_ns()) {
            Ok(seq) => seq,
            Err(e) => {
                self.warnings.push(format!("could not start {phase}: {e}"));
                self.stopped = true;
                return Attempt::Stop;
            }
        };
        match team.wait(seq, self.cfg.timeout) {
            Waited::Done => {
                if let Some((first, since)) = self.recovering.take() {
                    let cost = since.elapsed().as_secs_f64();
                    self.retries[first..].iter_mut().for_each(|r| r.cost_s = cost);
                }
                Attempt::Done
            }
            Waited::Lost(lost) => {
                let completed =
                    if command == Command::Run { segment.control().completed_rounds().min(count) } else { 0 };
                // The failing round is the first one not every worker finished.
                let failed_round = (command == Command::Run).then_some(round + completed);
                if self.recovering.is_none() {
                    self.recovering = Some((self.retries.len(), Instant::now()));
                }
                if self.recover(team, lost, phase, failed_round, started) {
                    Attempt::Recovered { completed }
                } else {
                    Attempt::Stop
                }
            }
        }
    }

    /// Runs `Init` or `Validate` until every worker has done it. `false`
    /// when the run must stop.
    fn step(&mut self, team: &mut dyn Team, segment: &Segment, command: Command) -> bool {
        loop {
            match self.attempt(team, segment, command, 0, 1) {
                Attempt::Done => return true,
                Attempt::Recovered { .. } => continue,
                Attempt::Stop => return false,
            }
        }
    }

    /// Runs the warm-up and timed rounds in batches. The first batch is one
    /// round; later ones are sized so that a batch takes at most a quarter of
    /// `--timeout` (a worker reports once per batch).
    fn rounds(&mut self, team: &mut dyn Team, segment: &Segment) -> bool {
        let total = self.cfg.warmup + self.cfg.runs;
        let mut next = 0u32;
        let mut batch = 1u32;
        while next < total {
            let count = batch.min(total - next).min(team.batch_limit()).max(1);
            let (done, stop) = match self.attempt(team, segment, Command::Run, next, count) {
                Attempt::Done => (count, false),
                Attempt::Recovered { completed } => (completed, false),
                Attempt::Stop => (segment.control().completed_rounds().min(count), true),
            };
            let mut longest = 0.0f64;
            for k in 0..done {
                let record = self.round_record(segment, next + k, k as usize);
                longest = longest.max(record.seconds);
                if next + k < self.cfg.warmup {
                    self.warmup.push(record);
                } else {
                    self.runs.push(record);
                }
            }
            next += done;
            if stop {
                return false;
            }
            if done > 0 {
                let budget = self.cfg.timeout.as_secs_f64() / 4.0;
                batch = ((budget / longest.max(1e-9)) as u32).clamp(1, crate::shm::control::BATCH as u32);
            }
        }
        true
    }

    /// Records lost workers and, under `retry`, replaces them. `false` when
    /// the run must stop.
    fn recover(
        &mut self,
        team: &mut dyn Team,
        lost: Vec<Lost>,
        phase: Phase,
        round: Option<u32>,
        step_started: Instant,
    ) -> bool {
        let detected_after_s = step_started.elapsed().as_secs_f64();
        let mut keep_going = true;
        for Lost { id, cause } in lost {
            let range = self.partition.chunk(id);
            let range = [range.start as u64, range.end as u64];
            let (mut phase, mut cause) = (phase, cause);
            loop {
                let facts = team.member(id);
                let mut record = FaultRecord {
                    worker: id,
                    pid: facts.pid,
                    range,
                    phase,
                    round,
                    attempt: facts.attempt,
                    cause: cause.clone(),
                    detected_after_s,
                    action: String::new(),
                };
                let OnFault::Retry(allowed) = self.cfg.on_fault else {
                    record.action = "stopped the run".into();
                    self.faults.push(record);
                    keep_going = false;
                    break;
                };
                if self.retries_used[id] >= allowed {
                    record.action = format!("stopped the run: {allowed} retries used");
                    self.faults.push(record);
                    keep_going = false;
                    break;
                }
                self.retries_used[id] += 1;
                match team.replace(id) {
                    Ok(()) => {
                        let fresh = team.member(id);
                        record.action = format!("replaced by attempt {}", fresh.attempt);
                        self.retries.push(RetryRecord {
                            worker: id,
                            attempt: fresh.attempt,
                            range,
                            reason: cause.to_string(),
                            repeated: match round {
                                Some(r) => format!("round {r}"),
                                None => phase.to_string(),
                            },
                            new_pid: fresh.pid,
                            cost_s: 0.0,
                        });
                        self.faults.push(record);
                        break;
                    }
                    Err(ReplaceError::Lost(again)) => {
                        record.action = "replaced, but the replacement was lost too".into();
                        self.faults.push(record);
                        phase = Phase::StartUp;
                        cause = again.cause;
                    }
                    Err(ReplaceError::Impossible(why)) => {
                        record.action = format!("stopped the run: cannot be replaced ({why})");
                        self.faults.push(record);
                        keep_going = false;
                        break;
                    }
                }
            }
        }
        if !keep_going {
            self.stopped = true;
        }
        keep_going
    }

    /// Round `round`, the `k`-th of its batch, from the control block.
    fn round_record(&mut self, segment: &Segment, round: u32, k: usize) -> RoundRecord {
        let control = segment.control();
        let release = control.release_ns(k);
        let mut last_end = release;
        let mut worker_seconds = vec![0.0; self.cfg.procs];
        let mut worker_start_lag_s = vec![0.0; self.cfg.procs];
        for id in 0..self.cfg.procs {
            let (start, end, cpu) = control.stamp_of(id, k);
            if cpu != u32::MAX {
                self.cpus_seen[id].insert(cpu);
                self.last_cpu[id] = Some(cpu);
            }
            if self.partition.chunk(id).is_empty() {
                continue;
            }
            worker_seconds[id] = seconds(start, end);
            worker_start_lag_s[id] = seconds(release, start);
            last_end = last_end.max(end);
        }
        let secs = seconds(release, last_end);
        RoundRecord {
            round,
            seconds: secs,
            gbps: gbps(self.cfg.bytes_per_round(), secs),
            worker_seconds,
            worker_start_lag_s,
        }
    }

    fn validation(&self, segment: &Segment) -> Validation {
        let control = segment.control();
        let mut digest = 0u64;
        let mut first: Option<(Mismatch, usize)> = None;
        for id in 0..self.cfg.procs {
            let slot = control.slot(id);
            digest ^= slot.digest.load(Ordering::Acquire);
            if SlotStatus::from_u32(slot.status.load(Ordering::Acquire)) != Some(SlotStatus::Mismatch) {
                continue;
            }
            let array = match slot.status_detail.load(Ordering::Acquire) {
                0 => Stream::A,
                1 => Stream::B,
                _ => Stream::C,
            };
            let m = Mismatch {
                array,
                index: slot.bad_index.load(Ordering::Acquire),
                got: f64::from_bits(slot.bad_got.load(Ordering::Acquire)),
                expected: f64::from_bits(slot.bad_expected.load(Ordering::Acquire)),
            };
            if first.as_ref().is_none_or(|(f, _)| m.index < f.index) {
                first = Some((m, id));
            }
        }
        Validation {
            checked: self.cfg.len as u64,
            mismatch_owner: first.as_ref().map(|(_, id)| *id),
            mismatch: first.map(|(m, _)| m),
            c_digest: format!("{digest:016x}"),
        }
    }

    fn worker_records(&self, team: &dyn Team) -> Vec<WorkerRecord> {
        (0..self.cfg.procs)
            .map(|id| {
                let facts = team.member(id);
                let range = self.partition.chunk(id);
                let compute: Vec<f64> = self.runs.iter().map(|r| r.worker_seconds[id]).collect();
                WorkerRecord {
                    id,
                    pid: facts.pid,
                    tid: facts.tid,
                    start: range.start as u64,
                    end: range.end as u64,
                    idle: range.is_empty(),
                    cpu: self.last_cpu[id],
                    cpus_seen: self.cpus_seen[id].iter().copied().collect(),
                    pinned: facts.pin.is_pinned(),
                    pin_cpu: match &facts.pin {
                        PinOutcome::Unpinned => None,
                        PinOutcome::Pinned { cpu } | PinOutcome::Refused { cpu, .. } => Some(*cpu),
                    },
                    pin_refused: match facts.pin {
                        PinOutcome::Refused { error, .. } => Some(error),
                        _ => None,
                    },
                    median_compute_s: if range.is_empty() { None } else { median(&compute) },
                    attempts: facts.attempt + 1,
                }
            })
            .collect()
    }

    fn into_report(mut self, validation: Option<Validation>, workers: Vec<WorkerRecord>) -> RunReport {
        let cfg = self.cfg;
        for w in &workers {
            if let (Some(cpu), Some(error)) = (w.pin_cpu, &w.pin_refused) {
                self.warnings
                    .push(format!("worker {}: pinning to CPU {cpu} was refused ({error}); it ran unpinned", w.id));
            }
        }
        if let Some(s) = Summary::of(&self.runs, cfg.bytes_per_round())
            && s.min_s < 20e-6
        {
            self.warnings.push(format!(
                "the fastest round took {:.1} µs, too short to time well; use a larger --len",
                s.min_s * 1e6
            ));
        }
        let validated = validation.as_ref().is_some_and(|v| v.mismatch.is_none());
        let exit_code = if self.stopped {
            EXIT_FAULT
        } else if validated {
            EXIT_OK
        } else {
            EXIT_VALIDATION
        };
        RunReport {
            about: Provenance::new("run", cfg.arguments.clone()),
            coordinator_pid: std::process::id(),
            config: ConfigEcho {
                mode: cfg.mode,
                procs: cfg.procs,
                procs_source: cfg.procs_source.clone(),
                len: cfg.len,
                op: cfg.op,
                dtype: cfg.dtype,
                simd: cfg.simd,
                stores: cfg.stores,
                stores_reason: cfg.stores_reason.clone(),
                shm: cfg.shm.name().into(),
                page_bytes: cfg.page,
                pages: cfg.page_reason.clone(),
                sync: format!("{:?}", cfg.sync).to_lowercase(),
                pin: cfg.pin.to_string(),
                runs: cfg.runs,
                warmup: cfg.warmup,
                seed: cfg.seed,
                timeout_s: cfg.timeout.as_secs_f64(),
                on_fault: cfg.on_fault.to_string(),
                inject_faults: cfg.faults.iter().map(|f| f.to_string()).collect(),
                bytes_per_round: cfg.bytes_per_round(),
                footprint_bytes: 3 * cfg.len as u64 * cfg.dtype.size() as u64,
            },
            validated,
            validation,
            summary: Summary::of(&self.runs, cfg.bytes_per_round()),
            runs: self.runs,
            warmup: self.warmup,
            phases: self.phases,
            workers,
            faults: self.faults,
            retries: self.retries,
            warnings: self.warnings,
            exit_code,
        }
    }
}
