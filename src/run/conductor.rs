//! The conductor: the same steps in every mode — recover what start-up
//! lost, `Init`, then for each kernel its warm-up and timed rounds, a
//! reduction's partial sums, and the check of the arrays — talking to a
//! [`Team`] only through steps and their typed outcomes.
//!
//! Faults are handled here, once: a team reports lost workers, the
//! conductor records them and, under `--on-fault retry`, asks the team for
//! a replacement (which brings its chunk to where the run stands) and
//! repeats the step with every worker, so a round's timing is never a mix
//! of attempts. A kernel that updates in place (`nstream`, `fma`) cannot
//! simply repeat a round: survivors that completed the round in which
//! another worker was lost are one round ahead, so every worker that is
//! not where the rounds everyone completed left the run rebuilds its chunk
//! to that point first (`Step::Rebuild`). A recovered run therefore applies
//! every kernel exactly as often as a fault-free one, and ends with the
//! same arrays.
//!
//! The conductor keeps the run's [`History`] — every kernel applied, with
//! its rounds — from which the check after each kernel, the replacements'
//! rebuilds and the report's validation are all derived; and it checks
//! the arrays itself ([`super::check`]), never asking a worker.

use std::collections::BTreeSet;
use std::time::Instant;

use super::Checked;
use super::check::{self, Found};
use super::failure::{init_failure, refuse_address_space_limit};
use super::lockstep::Lockstep;
use super::team::{Lost, ReplaceError, RoundTimes, StepOutcome, Team};
use super::verdict;
use crate::clock::seconds;
use crate::config::RunConfig;
use crate::error::{EXIT_FAULT, EXIT_OK, EXIT_VALIDATION, Error};
use crate::fault::{FaultAction, FaultRecord, OnFault, Phase};
use crate::kernel::data::Expect;
use crate::kernel::{History, Op, Position};
use crate::partition::Partition;
use crate::protocol::{Bound, DotPartial, Step, StepResult};
use crate::report::{KernelReport, Noise, RetryRecord, RoundRecord, Summary, WorkerRecord};
use crate::signals::Interrupted;
use crate::warnings::Warning;

/// How one attempt at a step ended.
enum Attempt {
    /// Every worker finished it.
    Done(StepOutcome),
    /// Workers were lost and replaced; the outcome's rounds stand.
    Recovered(StepOutcome),
    /// The run must stop; the outcome's rounds stand.
    Stop(StepOutcome),
}

/// The state of a run between steps.
pub(crate) struct Conductor<'c> {
    cfg: &'c RunConfig,
    partition: Partition,
    /// The arrays it checks after every kernel.
    checked: Checked<'c>,
    pub(crate) kernels: Vec<KernelReport>,
    pub(crate) faults: Vec<FaultRecord>,
    pub(crate) retries: Vec<RetryRecord>,
    retries_used: Vec<u32>,
    /// Retries made since the last completed step, and when the first
    /// fault among them was seen: their cost runs until the step completes.
    recovering: Option<(usize, Instant)>,
    cpus_seen: Vec<BTreeSet<u32>>,
    last_cpu: Vec<Option<u32>>,
    pub(crate) warnings: Vec<Warning>,
    stopped: bool,
    /// The run-wide number of the next round.
    next_round: u32,
    /// What the arrays have been through.
    history: History,
    /// The other runs this one moves in step with (MPI ranks), if any.
    lockstep: Option<&'c dyn Lockstep>,
    /// What became of each worker's NUMA binding (from `Init`).
    pub(crate) bound: Vec<Bound>,
}

impl<'c> Conductor<'c> {
    pub(crate) fn new(cfg: &'c RunConfig, page_bytes: usize, warnings: Vec<Warning>, checked: Checked<'c>) -> Self {
        Conductor {
            cfg,
            partition: cfg.partition(page_bytes),
            checked,
            kernels: Vec::new(),
            faults: Vec::new(),
            retries: Vec::new(),
            retries_used: vec![0; cfg.procs()],
            recovering: None,
            cpus_seen: vec![BTreeSet::new(); cfg.procs()],
            last_cpu: vec![None; cfg.procs()],
            warnings,
            stopped: false,
            next_round: 0,
            history: History::new(),
            lockstep: None,
            bound: vec![Bound::default(); cfg.procs()],
        }
    }

    /// Moves in step with other runs (see [`Lockstep`]).
    pub(crate) fn in_lockstep(mut self, lockstep: &'c dyn Lockstep) -> Self {
        self.lockstep = Some(lockstep);
        self
    }

    /// Whether this run or, in lockstep, any other says `x`.
    fn any(&self, x: bool) -> bool {
        self.lockstep.map_or(x, |l| l.any(x))
    }

    /// Recovers the workers lost while the team started; `false` when the
    /// run must stop.
    pub(crate) fn started(&mut self, team: &mut dyn Team, lost: Vec<Lost>, since: Instant) -> Result<bool, Error> {
        let ok = if lost.is_empty() {
            true
        } else {
            refuse_address_space_limit(&lost)?;
            self.recover(team, lost, Phase::StartUp, None, since, None)
        };
        Ok(!self.any(!ok))
    }

    /// `Init`; `false` when the run must stop.
    pub(crate) fn init(&mut self, team: &mut dyn Team) -> Result<bool, Error> {
        let outcome = self.step_all(team, &Step::Init { fill_c: self.cfg.fill_c() }, Phase::Init)?;
        if let Some(o) = &outcome {
            for (id, r) in o.results.iter().enumerate() {
                if let (Some(StepResult::Init { bound, .. }), Some(slot)) = (r, self.bound.get_mut(id)) {
                    *slot = *bound;
                }
            }
        }
        let failure = outcome.as_ref().and_then(|o| {
            o.results.iter().enumerate().find_map(|(id, r)| match r {
                Some(StepResult::Init { error: Some(e), .. }) => Some(init_failure(self.cfg, id, *e)),
                _ => None,
            })
        });
        // In lockstep, everyone learns whether anyone stops here.
        let stop = self.any(outcome.is_none() || failure.is_some());
        match failure {
            Some(e) => Err(e),
            None => Ok(!stop),
        }
    }

    /// Every kernel's rounds and check, in order; `false` when the run must
    /// stop (what was measured until then stays in the report).
    pub(crate) fn kernels(&mut self, team: &mut dyn Team, timing: &mut (f64, f64)) -> Result<bool, Error> {
        for (k, &op) in self.cfg.ops().iter().enumerate() {
            let mut kernel = KernelReport {
                op,
                formula: op.formula().into(),
                bytes_per_round: self.cfg.bytes_per_round(op),
                runs: Vec::new(),
                warmup: Vec::new(),
                summary: None,
                noise: None,
                validation: None,
                dot: None,
            };
            let t = Instant::now();
            let ran = self.rounds(team, k, op, &mut kernel);
            timing.0 += t.elapsed().as_secs_f64();
            kernel.summary = Summary::of(&kernel.runs, kernel.bytes_per_round);
            kernel.noise = Noise::of(&kernel.runs, self.cfg.mode());
            self.note_noise(&kernel);
            let ran = match ran {
                Ok(ran) => ran,
                Err(e) => {
                    self.kernels.push(kernel);
                    return Err(e.into());
                }
            };
            if !ran {
                self.kernels.push(kernel);
                return Ok(false);
            }
            let t = Instant::now();
            let checked = self.check(team, op);
            timing.1 += t.elapsed().as_secs_f64();
            let checked = match checked {
                Ok(c) => c,
                Err(e) => {
                    self.kernels.push(kernel);
                    return Err(e.into());
                }
            };
            let Some((found, partials)) = checked else {
                self.kernels.push(kernel);
                return Ok(false);
            };
            let (validation, dot) = verdict::combine(
                self.cfg,
                &self.partition,
                (&self.history, self.checked.by.clone()),
                found,
                &partials,
                self.lockstep,
            );
            kernel.validation = Some(validation);
            kernel.dot = dot;
            self.kernels.push(kernel);
        }
        Ok(true)
    }

    /// After kernel `op`: a reduction's partial sums from the workers, then
    /// the check of the arrays; `None` when the run must stop.
    fn check(&mut self, team: &mut dyn Team, op: Op) -> Result<Option<(Found, Vec<DotPartial>)>, Interrupted> {
        let mut partials = Vec::new();
        if op.writes().is_none() {
            let reported = self.step_all(team, &Step::Report { op }, Phase::Report)?;
            let stop = self.any(reported.is_none());
            let Some(outcome) = reported.filter(|_| !stop) else { return Ok(None) };
            for r in outcome.results.into_iter().flatten() {
                if let StepResult::Report { partial } = r {
                    partials.push(partial);
                }
            }
        }
        if let Some(l) = self.lockstep {
            l.sync_memory();
        }
        let expect = Expect { seed: self.cfg.seed(), c_filled: self.cfg.fill_c(), history: self.history.clone() };
        let inputs = match (op.writes(), op.reads()) {
            (None, [x, y, ..]) => Some((*x, *y)),
            _ => None,
        };
        let c = &self.checked;
        let found = check::check(&c.view, c.range.clone(), c.base, &expect, self.cfg.check_threads(), inputs)?;
        Ok(Some((found, partials)))
    }

    /// A warning for every verdict on `kernel`'s rounds that applies.
    fn note_noise(&mut self, kernel: &KernelReport) {
        use crate::report::noise::Verdict;
        let (Some(noise), Some(summary)) = (&kernel.noise, &kernel.summary) else { return };
        let op = kernel.op.to_string();
        for verdict in &noise.verdicts {
            let w = match verdict {
                Verdict::TooShort => {
                    // One line for every kernel too short to time.
                    let joined = self.warnings.iter_mut().find_map(|w| match w {
                        Warning::TooShort { ops, fastest_s } => Some((ops, fastest_s)),
                        _ => None,
                    });
                    if let Some((ops, fastest_s)) = joined {
                        ops.push(op.clone());
                        *fastest_s = fastest_s.min(summary.min_s);
                        continue;
                    }
                    Warning::TooShort { ops: vec![op.clone()], fastest_s: summary.min_s }
                }
                Verdict::Noisy => Warning::Outliers {
                    op: op.clone(),
                    outliers: noise.outliers.len(),
                    rounds: summary.rounds,
                    iqr_pct: noise.iqr_pct,
                },
                Verdict::Scattered => Warning::Scattered { op: op.clone(), iqr_pct: noise.iqr_pct },
                Verdict::OneRound => Warning::OneRound { op: op.clone() },
                Verdict::Steady => continue,
            };
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
    }

    /// The kernel number of `op` in the run.
    fn kernel_of(&self, op: Op) -> u32 {
        self.cfg.ops().iter().position(|o| *o == op).unwrap_or(0) as u32
    }

    /// Where a replacement for a worker lost during `step` must bring its
    /// chunk, given the rounds of it everyone completed.
    fn position_after(&self, step: &Step, completed: usize) -> Option<Position> {
        match *step {
            Step::Init { .. } | Step::Shutdown => None,
            Step::Run { op, op_round, .. } => {
                Some(Position { kernel: self.kernel_of(op), rounds: op_round + completed as u32 })
            }
            Step::Rebuild { to } => Some(to),
            Step::Report { op } => Some(Position { kernel: self.kernel_of(op), rounds: self.cfg.rounds_per_kernel() }),
        }
    }

    /// Runs `step` once; on loss, records and (policy allowing) replaces
    /// the lost workers.
    fn attempt(&mut self, team: &mut dyn Team, step: &Step, phase: Phase) -> Result<Attempt, Interrupted> {
        let started = Instant::now();
        let outcome = team.step(step, self.cfg.timeout())?;
        if outcome.lost.is_empty() {
            if let Some((first, since)) = self.recovering.take() {
                let cost = since.elapsed().as_secs_f64();
                self.retries[first..].iter_mut().for_each(|r| r.cost_s = cost);
            }
            return Ok(Attempt::Done(outcome));
        }
        let failed_round = match step {
            Step::Run { first, .. } => Some(first + outcome.rounds.len() as u32),
            _ => None,
        };
        if self.recovering.is_none() {
            self.recovering = Some((self.retries.len(), Instant::now()));
        }
        let at = self.position_after(step, outcome.rounds.len());
        let lost = outcome.lost.clone();
        Ok(if self.recover(team, lost, phase, failed_round, started, at) {
            Attempt::Recovered(outcome)
        } else {
            Attempt::Stop(outcome)
        })
    }

    /// Runs a step other than `Run` until every worker has done it; `None`
    /// when the run must stop.
    fn step_all(&mut self, team: &mut dyn Team, step: &Step, phase: Phase) -> Result<Option<StepOutcome>, Interrupted> {
        loop {
            match self.attempt(team, step, phase)? {
                Attempt::Done(outcome) => return Ok(Some(outcome)),
                Attempt::Recovered(_) => continue,
                Attempt::Stop(_) => return Ok(None),
            }
        }
    }

    /// Runs kernel `k`'s warm-up and timed rounds in batches. The first
    /// batch is one round; later ones are sized so that a batch takes at
    /// most a quarter of `--timeout`.
    fn rounds(
        &mut self,
        team: &mut dyn Team,
        k: usize,
        op: Op,
        kernel: &mut KernelReport,
    ) -> Result<bool, Interrupted> {
        let total = self.cfg.rounds_per_kernel();
        let warmup = self.cfg.warmup();
        let mut done = 0u32;
        let mut batch = 1u32;
        while done < total {
            // In lockstep, one round per step, each after a barrier.
            let count =
                if self.lockstep.is_some() { 1 } else { batch.min(total - done).min(team.batch_limit()).max(1) };
            let step = Step::Run { op, first: self.next_round, count, op_round: done };
            if let Some(l) = self.lockstep {
                l.barrier(self.next_round);
            }
            let (mut outcome, mut recovered, mut stop) = match self.attempt(team, &step, Phase::Round)? {
                Attempt::Done(o) => (o, false, false),
                Attempt::Recovered(o) => (o, true, false),
                Attempt::Stop(o) => (o, false, true),
            };
            if let Some(l) = self.lockstep {
                // The same decision everywhere: stop together, or repeat
                // the round together (whoever completed it discards it: a
                // round's time is the slowest rank's, which had none), so
                // every rank runs the same rounds.
                stop = l.any(stop);
                recovered = l.any(recovered);
                if recovered || stop {
                    outcome.rounds.clear();
                }
                for times in &mut outcome.rounds {
                    times.slowest_s = Some(l.max(seconds(times.release_ns, times.last_end_ns())));
                }
            }
            let mut longest = 0.0f64;
            for times in &outcome.rounds {
                let record = self.round_record(self.next_round, times, kernel.bytes_per_round);
                longest = longest.max(record.seconds);
                self.next_round += 1;
                self.history.apply(op, 1);
                if done < warmup {
                    kernel.warmup.push(record);
                } else {
                    kernel.runs.push(record);
                }
                done += 1;
            }
            if stop {
                return Ok(false);
            }
            if recovered && !op.idempotent() {
                // Survivors may be a round ahead of the rounds everyone
                // completed: bring every chunk back to them first.
                let to = Position { kernel: k as u32, rounds: done };
                let rebuilt = self.step_all(team, &Step::Rebuild { to }, Phase::Rebuild)?;
                if self.any(rebuilt.is_none()) {
                    return Ok(false);
                }
            }
            if !outcome.rounds.is_empty() {
                let budget = self.cfg.timeout_s() / 4.0;
                batch = ((budget / longest.max(1e-9)) as u32).clamp(1, crate::shm::BATCH as u32);
            }
        }
        Ok(true)
    }

    /// Records lost workers and, under `retry`, replaces them (each fresh
    /// one brought to `at`); `false` when the run must stop.
    fn recover(
        &mut self,
        team: &mut dyn Team,
        lost: Vec<Lost>,
        phase: Phase,
        round: Option<u32>,
        step_started: Instant,
        at: Option<Position>,
    ) -> bool {
        let step_elapsed = step_started.elapsed();
        let step_elapsed_s = step_elapsed.as_secs_f64();
        let now_ns = crate::clock::now_ns();
        // A stamp is the worker's word: one outside the step is not taken.
        let step_start_ns = now_ns.saturating_sub(step_elapsed.as_nanos() as u64);
        let mut keep_going = true;
        for Lost { id, cause, found_ns } in lost {
            let range = self.partition.chunk(id);
            let range = [range.start as u64, range.end as u64];
            let (mut phase, mut cause) = (phase, cause);
            let mut at_ns = found_ns;
            loop {
                // From the worker's own stamp to the moment it was found
                // lost; unknown when nothing stamped the moment (a kill from
                // outside, a real hang) or the stamp lies outside the step.
                let detected_after_s = team
                    .silent_since_ns(id)
                    .filter(|t| (step_start_ns..=at_ns).contains(t))
                    .map(|t| (at_ns - t) as f64 * 1e-9);
                let facts = team.member(id);
                let record = |action| FaultRecord {
                    worker: id,
                    pid: facts.pid,
                    range,
                    phase,
                    round,
                    attempt: facts.attempt,
                    cause: cause.clone(),
                    detected_after_s,
                    step_elapsed_s,
                    action,
                };
                let OnFault::Retry(allowed) = self.cfg.on_fault() else {
                    self.faults.push(record(FaultAction::Stopped));
                    keep_going = false;
                    break;
                };
                if self.retries_used[id] >= allowed {
                    self.faults.push(record(FaultAction::RetriesUsed(allowed)));
                    keep_going = false;
                    break;
                }
                self.retries_used[id] += 1;
                match team.replace(id, at) {
                    Ok(()) => {
                        let fresh = team.member(id);
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
                        self.faults.push(record(FaultAction::Replaced(fresh.attempt)));
                        break;
                    }
                    Err(ReplaceError::Lost(again)) => {
                        self.faults.push(record(FaultAction::ReplacementLost));
                        phase = Phase::StartUp;
                        cause = again.cause;
                        at_ns = again.found_ns;
                    }
                    Err(ReplaceError::Impossible(why)) => {
                        self.faults.push(record(FaultAction::Irreplaceable(why)));
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

    /// A round from the team's timings.
    fn round_record(&mut self, round: u32, times: &RoundTimes, bytes: u64) -> RoundRecord {
        let procs = self.cfg.procs();
        let release = times.release_ns;
        let mut last_end = release;
        let mut worker_seconds = vec![0.0; procs];
        let mut worker_start_lag_s = vec![0.0; procs];
        for (id, t) in times.workers.iter().enumerate().take(procs) {
            if t.cpu != u32::MAX && t.end_ns != 0 {
                self.cpus_seen[id].insert(t.cpu);
                self.last_cpu[id] = Some(t.cpu);
            }
            if self.partition.chunk(id).is_empty() || t.end_ns == 0 {
                continue;
            }
            worker_seconds[id] = seconds(t.start_ns, t.end_ns);
            worker_start_lag_s[id] = seconds(release, t.start_ns);
            last_end = last_end.max(t.end_ns);
        }
        let secs = times.slowest_s.unwrap_or_else(|| seconds(release, last_end));
        RoundRecord { round, seconds: secs, gbps: crate::units::gbps(bytes, secs), worker_seconds, worker_start_lag_s }
    }

    /// The report's worker rows.
    pub(crate) fn worker_records(&mut self, team: &dyn Team) -> Vec<WorkerRecord> {
        let runs: &[RoundRecord] = self.kernels.first().map_or(&[], |k| &k.runs);
        let records: Vec<WorkerRecord> = (0..self.cfg.procs())
            .map(|id| {
                let facts = team.member(id);
                let range = self.partition.chunk(id);
                let compute: Vec<f64> = runs.iter().map(|r| r.worker_seconds[id]).collect();
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
                    pin_cpu: facts.pin.requested(),
                    pin_refused: match &facts.pin {
                        crate::machine::PinOutcome::Refused { error, .. } => Some(error.clone()),
                        _ => None,
                    },
                    median_compute_s: if range.is_empty() { None } else { crate::stats::median(&compute) },
                    attempts: facts.attempt + 1,
                }
            })
            .collect();
        for w in &records {
            if let (Some(cpu), Some(error)) = (w.pin_cpu, &w.pin_refused) {
                self.warnings.push(Warning::PinRefused { worker: w.id, cpu, error: error.clone() });
            }
        }
        records
    }

    /// The exit code the run ends with.
    pub(crate) fn exit_code(&self) -> u8 {
        let validated = self.kernels.len() == self.cfg.ops().len() && self.kernels.iter().all(KernelReport::validated);
        if self.stopped {
            EXIT_FAULT
        } else if validated {
            EXIT_OK
        } else {
            EXIT_VALIDATION
        }
    }
}

#[cfg(test)]
mod tests {
    //! The conductor against a scripted team: faults at every step, retries,
    //! timeouts and interrupts, without spawning anything. The team computes
    //! for real (one executor over the whole segment), so the conductor's
    //! own check passes exactly when its history is right.

    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::fault::Cause;
    use crate::machine::{PinOutcome, page_size};
    use crate::protocol::Timing;
    use crate::report::CheckedBy;
    use crate::run::team::MemberFacts;
    use crate::shm::{Claim, Pulse, ReadArrays, Segment, SharedArrays};
    use crate::vocab::Backend;
    use crate::worker::Executor;

    /// What the mock does for one step.
    #[derive(Clone, Debug)]
    enum Script {
        /// Completes it (a Run: every round).
        Ok,
        /// Loses `worker` after `rounds` completed rounds; the survivors
        /// complete one round more (as a survivor of a real batch may).
        Lose { worker: usize, rounds: u32, cause: Cause },
        /// A signal arrives.
        Interrupt,
    }

    struct Mock {
        procs: usize,
        script: VecDeque<Script>,
        steps: Vec<Step>,
        attempts: Vec<u32>,
        replaceable: bool,
        replaced_at: Vec<Option<Position>>,
        exec: Executor<'static, f64, Claim>,
    }

    impl Mock {
        fn new(cfg: &RunConfig, arrays: &Arc<SharedArrays>, script: &[Script]) -> Mock {
            let whole = Partition::new(cfg.len(), 1, 1);
            let job = crate::run::assignment(cfg, &whole, 0, 0, None);
            let exec = Executor::new(&job, arrays.claim(0..cfg.len()).unwrap(), Pulse::default()).unwrap();
            Mock {
                procs: cfg.procs(),
                script: script.iter().cloned().collect(),
                steps: Vec::new(),
                attempts: vec![0; cfg.procs()],
                replaceable: true,
                replaced_at: Vec::new(),
                exec,
            }
        }

        fn rounds(&mut self, step: &Step, n: u32) -> Vec<RoundTimes> {
            (0..n)
                .map(|k| {
                    self.exec.step(step, k);
                    let base = 1_000_000 * (k as u64 + 1);
                    RoundTimes {
                        release_ns: base,
                        workers: (0..self.procs)
                            .map(|_| Timing { start_ns: base + 10, end_ns: base + 1000, cpu: 0 })
                            .collect(),
                        slowest_s: None,
                    }
                })
                .collect()
        }
    }

    impl Team for Mock {
        fn member(&self, id: usize) -> MemberFacts {
            MemberFacts { pid: 100 + id as u32, tid: None, pin: PinOutcome::Unpinned, attempt: self.attempts[id] }
        }
        fn batch_limit(&self) -> u32 {
            32
        }
        fn step(&mut self, step: &Step, _patience: Duration) -> Result<StepOutcome, Interrupted> {
            self.steps.push(*step);
            let script = self.script.pop_front().unwrap_or(Script::Ok);
            let count = match step {
                Step::Run { count, .. } => *count,
                _ => 1,
            };
            let mut o = StepOutcome::default();
            let (done, lost) = match script {
                Script::Ok => (count, None),
                Script::Lose { worker, rounds, cause } => (rounds.min(count), Some(Lost::new(worker, cause))),
                Script::Interrupt => return Err(Interrupted(nix::sys::signal::Signal::SIGINT)),
            };
            match step {
                Step::Run { op, .. } => {
                    o.rounds = self.rounds(step, done);
                    if lost.is_some() && !op.idempotent() && done < count {
                        // A survivor went one round further.
                        self.exec.step(&Step::Run { op: *op, first: u32::MAX, count: 1, op_round: 0 }, 0);
                    }
                }
                Step::Shutdown => {}
                other => {
                    o.results = vec![None; self.procs];
                    o.results[0] = Some(self.exec.step(other, 0));
                }
            }
            o.lost.extend(lost);
            Ok(o)
        }
        fn replace(&mut self, id: usize, at: Option<Position>) -> Result<(), ReplaceError> {
            self.replaced_at.push(at);
            if !self.replaceable {
                return Err(ReplaceError::Impossible("it is hung".into()));
            }
            self.attempts[id] += 1;
            Ok(())
        }
        fn shutdown(&mut self) {}
    }

    fn config(args: &[&str]) -> RunConfig {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(
            ["vecpar-coord", "--mode", "threads", "--procs", "2", "--len", "4096"].iter().chain(args),
        )
        .unwrap();
        RunConfig::resolve(&cli.run, &crate::machine::testing::two_cpus()).unwrap()
    }

    /// A segment for `cfg`, its arrays for the mock to compute on, and a
    /// read-only view for the conductor to check.
    fn memory(cfg: &RunConfig) -> (Segment, Arc<SharedArrays>, ReadArrays) {
        let seg = Segment::create(Backend::Memfd, cfg.dtype(), cfg.len(), 1, page_size()).unwrap();
        let arrays = seg.share_arrays().unwrap();
        let read = seg.read_arrays().unwrap();
        (seg, arrays, read)
    }

    fn run<'c>(cfg: &'c RunConfig, read: &'c ReadArrays, team: &mut Mock) -> (Result<bool, Error>, Conductor<'c>) {
        let checked = Checked {
            view: read.view(),
            range: 0..cfg.len(),
            base: 0,
            by: CheckedBy::SameProcess { pid: 1, threads: 2 },
        };
        let mut c = Conductor::new(cfg, page_size(), Vec::new(), checked);
        let mut timing = (0.0, 0.0);
        let result = c.init(team).and_then(|ok| if ok { c.kernels(team, &mut timing) } else { Ok(false) });
        (result, c)
    }

    fn panic_cause() -> Cause {
        Cause::Panic { message: "boom".into() }
    }

    #[test]
    fn a_clean_run_validates_every_kernel() {
        let cfg = config(&["--op", "copy,add,dot", "--runs", "3", "--warmup", "1"]);
        let (_seg, arrays, read) = memory(&cfg);
        let mut team = Mock::new(&cfg, &arrays, &[]);
        let (result, c) = run(&cfg, &read, &mut team);
        assert!(result.unwrap());
        assert_eq!(c.kernels.len(), 3);
        assert_eq!(c.kernels[0].runs.len(), 3);
        assert_eq!(c.kernels[0].warmup.len(), 1);
        let rounds: Vec<u32> = c.kernels[1].warmup.iter().chain(&c.kernels[1].runs).map(|r| r.round).collect();
        assert_eq!(rounds, [4, 5, 6, 7], "rounds are numbered over every kernel");
        assert!(
            c.kernels.iter().all(KernelReport::validated),
            "{:?}",
            c.kernels.iter().map(|k| &k.validation).collect::<Vec<_>>()
        );
        assert!(c.kernels[2].dot.as_ref().unwrap().within_bound);
        assert_eq!(c.exit_code(), EXIT_OK);
        // Init, then per kernel its batches of rounds; a reduction reports.
        assert!(matches!(team.steps[0], Step::Init { fill_c: false }));
        assert!(matches!(team.steps.last(), Some(Step::Report { op: Op::Dot })));
    }

    #[test]
    fn a_lost_worker_stops_the_run_under_fail() {
        let cfg = config(&["--runs", "5"]);
        let (_seg, arrays, read) = memory(&cfg);
        let mut team = Mock::new(
            &cfg,
            &arrays,
            &[Script::Ok, Script::Ok, Script::Lose { worker: 1, rounds: 2, cause: panic_cause() }],
        );
        let (result, c) = run(&cfg, &read, &mut team);
        assert!(!result.unwrap());
        assert_eq!(c.faults.len(), 1);
        assert_eq!(c.faults[0].action, FaultAction::Stopped);
        assert_eq!(c.faults[0].round, Some(3), "one warm-up round, then two of the batch completed");
        assert_eq!(c.kernels[0].runs.len() + c.kernels[0].warmup.len(), 3, "completed rounds stand");
        assert_eq!(c.exit_code(), EXIT_FAULT);
    }

    #[test]
    fn retry_replaces_and_repeats_each_step() {
        let cfg = config(&["--op", "add,dot", "--runs", "4", "--on-fault", "retry=2"]);
        let (_seg, arrays, read) = memory(&cfg);
        let mut team = Mock::new(
            &cfg,
            &arrays,
            &[
                Script::Lose { worker: 0, rounds: 0, cause: panic_cause() }, // Init
                Script::Ok,
                Script::Ok,
                Script::Lose { worker: 1, rounds: 1, cause: Cause::Timeout { seconds: 1.0 } },
                Script::Ok,
                Script::Ok,
                Script::Ok,
                Script::Lose { worker: 1, rounds: 0, cause: Cause::Exit { code: 42 } }, // dot's report
            ],
        );
        let (result, c) = run(&cfg, &read, &mut team);
        assert!(result.unwrap(), "{:?}", c.faults);
        assert_eq!(c.exit_code(), EXIT_OK);
        assert_eq!(c.retries.iter().map(|r| r.repeated.as_str()).collect::<Vec<_>>(), ["init", "round 2", "report"]);
        let rounds: Vec<u32> = c.kernels[0].warmup.iter().chain(&c.kernels[0].runs).map(|r| r.round).collect();
        assert_eq!(rounds, [0, 1, 2, 3, 4], "every round once, in order, the repeated one included");
        assert_eq!(team.attempts, [1, 2]);
        assert_eq!(
            team.replaced_at,
            [None, Some(Position { kernel: 0, rounds: 2 }), Some(Position { kernel: 1, rounds: 5 })],
            "each replacement starts where the run stands"
        );
        drop(team);
        // The third loss of worker 1 exceeds retry=2.
        let mut team = Mock::new(
            &cfg,
            &arrays,
            &[
                Script::Lose { worker: 1, rounds: 0, cause: panic_cause() },
                Script::Lose { worker: 1, rounds: 0, cause: panic_cause() },
                Script::Lose { worker: 1, rounds: 0, cause: panic_cause() },
            ],
        );
        let (result, c) = run(&cfg, &read, &mut team);
        assert!(!result.unwrap());
        assert_eq!(c.faults.last().unwrap().action, FaultAction::RetriesUsed(2));
    }

    #[test]
    fn an_irreplaceable_worker_stops_the_run() {
        let cfg = config(&["--on-fault", "retry"]);
        let (_seg, arrays, read) = memory(&cfg);
        let mut team = Mock::new(
            &cfg,
            &arrays,
            &[Script::Ok, Script::Lose { worker: 0, rounds: 0, cause: Cause::Timeout { seconds: 1.0 } }],
        );
        team.replaceable = false;
        let (result, c) = run(&cfg, &read, &mut team);
        assert!(!result.unwrap());
        assert!(matches!(c.faults[0].action, FaultAction::Irreplaceable(_)));
    }

    /// A fault during an update in place: the survivor that went a round
    /// further is brought back before the round is repeated, so the run
    /// applies the kernel exactly `warmup + runs` times, as a fault-free
    /// run does, and its check passes.
    #[test]
    fn an_update_in_place_is_applied_exactly_as_often_as_without_a_fault() {
        for op in ["nstream", "fma"] {
            let cfg = config(&["--op", op, "--runs", "4", "--warmup", "0", "--on-fault", "retry"]);
            let (_seg, arrays, read) = memory(&cfg);
            let mut team = Mock::new(
                &cfg,
                &arrays,
                &[Script::Ok, Script::Ok, Script::Lose { worker: 1, rounds: 1, cause: panic_cause() }],
            );
            let (result, c) = run(&cfg, &read, &mut team);
            assert!(result.unwrap(), "{op}");
            assert_eq!(c.kernels[0].runs.len(), 4, "{op}: four timed rounds kept");
            assert_eq!(team.replaced_at, [Some(Position { kernel: 0, rounds: 2 })], "{op}");
            assert!(
                team.steps.contains(&Step::Rebuild { to: Position { kernel: 0, rounds: 2 } }),
                "{op}: every chunk back to the rounds everyone completed: {:?}",
                team.steps
            );
            let v = c.kernels[0].validation.as_ref().unwrap();
            assert_eq!(v.history.entries()[0].rounds, 4, "{op}: applied exactly four times");
            assert!(v.mismatch.is_none(), "{op}: {v:?}");
            assert_eq!(c.exit_code(), EXIT_OK);
        }
    }

    #[test]
    fn an_interrupt_stops_at_once() {
        let cfg = config(&[]);
        let (_seg, arrays, read) = memory(&cfg);
        let mut team = Mock::new(&cfg, &arrays, &[Script::Ok, Script::Interrupt]);
        let (result, _) = run(&cfg, &read, &mut team);
        assert!(matches!(result, Err(Error::Interrupted(_))));
    }

    #[test]
    fn a_dot_is_combined_from_the_workers_partials() {
        use crate::kernel::data::DotReference;
        use crate::kernel::reduce;
        let len = 3000usize;
        let a: Vec<f64> = (0..len).map(|i| i as f64 * 0.5).collect();
        let b: Vec<f64> = (0..len).map(|i| 1.0 - i as f64 * 0.25).collect();
        let k =
            crate::kernel::Kernel::<f64>::resolve(Op::Dot, crate::kernel::Simd::Scalar, crate::kernel::Stores::Regular)
                .unwrap();
        let nodes = |lo: usize, hi: usize| {
            let mut blocks = vec![0.0; (hi - lo).div_ceil(512)];
            k.reduce(&a[lo..hi], &b[lo..hi], &[], &mut blocks);
            reduce::nodes_of((lo / 512) as u64, &blocks)
        };
        let all: Vec<reduce::Node> = nodes(0, 1024).into_iter().chain(nodes(1024, len)).collect();
        let reference = DotReference::of(&a, &b);
        let r = verdict::dot_result::<f64>(len, &all, reference);
        assert!(r.within_bound && r.error <= r.bound, "{r:?}");
        let exact: f64 = (0..len).map(|i| a[i] * b[i]).sum();
        assert!((r.value - exact).abs() < 1e-6 * exact.abs());
        let missing = verdict::dot_result::<f64>(len, &nodes(0, 1024), reference);
        assert!(!missing.within_bound, "a missing partial never validates");
    }
}
