//! The conductor: the same steps in every mode — recover what start-up
//! lost, `Init`, then for each kernel its warm-up and timed rounds and its
//! validation — talking to a [`Team`] only through steps and their typed
//! outcomes.
//!
//! Faults are handled here, once: a team reports lost workers, the
//! conductor records them and, under `--on-fault retry`, asks the team for
//! a replacement and repeats the step with every worker, so a round's timing
//! is never a mix of attempts. A kernel that updates in place (`nstream`)
//! cannot simply repeat a round: its replacement first brings its chunk to
//! where the others are, survivors that had finished the round skip it, and
//! that round's timing — which then mixes the two — is not kept; one more
//! round is run instead.

use std::collections::BTreeSet;
use std::time::Instant;

use super::failure::{init_failure, refuse_address_space_limit};
use super::lockstep::Lockstep;
use super::team::{Lost, ReplaceError, Restore, RoundTimes, StepOutcome, Team};
use super::verdict;
use crate::clock::seconds;
use crate::config::RunConfig;
use crate::error::{EXIT_FAULT, EXIT_OK, EXIT_VALIDATION, Error};
use crate::fault::{FaultAction, FaultRecord, OnFault, Phase};
use crate::kernel::Op;
use crate::kernel::data::Expect;
use crate::partition::Partition;
use crate::protocol::{Step, StepResult};
use crate::report::{KernelReport, Noise, RetryRecord, RoundRecord, Summary, WorkerRecord};
use crate::signals::Interrupted;
use crate::vocab::Array;
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
    /// `nstream` rounds applied to every chunk so far.
    a_updates: u32,
    /// The last kernel that wrote `c`.
    c_writer: Option<Op>,
    /// The other runs this one moves in step with (MPI ranks), if any.
    lockstep: Option<&'c dyn Lockstep>,
}

impl<'c> Conductor<'c> {
    pub(crate) fn new(cfg: &'c RunConfig, warnings: Vec<Warning>) -> Self {
        Conductor {
            cfg,
            partition: cfg.partition(),
            kernels: Vec::new(),
            faults: Vec::new(),
            retries: Vec::new(),
            retries_used: vec![0; cfg.procs],
            recovering: None,
            cpus_seen: vec![BTreeSet::new(); cfg.procs],
            last_cpu: vec![None; cfg.procs],
            warnings,
            stopped: false,
            next_round: 0,
            a_updates: 0,
            c_writer: None,
            lockstep: None,
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

    /// STREAM-counted bytes of one round of `op` over the whole array (all
    /// ranks' shares, in lockstep).
    fn bytes_per_round(&self, op: Op) -> u64 {
        match self.lockstep {
            Some(l) => op.arrays_moved() * l.global_len() * self.cfg.dtype.size() as u64,
            None => self.cfg.bytes_per_round(op),
        }
    }

    /// Recovers the workers lost while the team started; `false` when the
    /// run must stop.
    pub(crate) fn started(&mut self, team: &mut dyn Team, lost: Vec<Lost>, since: Instant) -> Result<bool, Error> {
        let ok = if lost.is_empty() {
            true
        } else {
            refuse_address_space_limit(&lost)?;
            self.recover(team, lost, Phase::StartUp, None, since, Restore::default())
        };
        Ok(!self.any(!ok))
    }

    /// `Init`; `false` when the run must stop.
    pub(crate) fn init(&mut self, team: &mut dyn Team) -> Result<bool, Error> {
        let outcome = self.step_all(team, &Step::Init { fill_c: self.cfg.fill_c() }, Phase::Init)?;
        let failure = outcome.as_ref().and_then(|o| {
            o.results.iter().enumerate().find_map(|(id, r)| match r {
                Some(StepResult::Init { error: Some(e) }) => Some(init_failure(self.cfg, id, *e)),
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

    /// Every kernel's rounds and validation, in order; `false` when the run
    /// must stop (what was measured until then stays in the report).
    pub(crate) fn kernels(&mut self, team: &mut dyn Team, timing: &mut (f64, f64)) -> Result<bool, Error> {
        for &op in &self.cfg.ops.0 {
            let mut kernel = KernelReport {
                op,
                formula: op.formula().into(),
                bytes_per_round: self.bytes_per_round(op),
                runs: Vec::new(),
                warmup: Vec::new(),
                summary: None,
                noise: None,
                validation: None,
                dot: None,
            };
            let t = Instant::now();
            let ran = self.rounds(team, op, &mut kernel);
            timing.0 += t.elapsed().as_secs_f64();
            kernel.summary = Summary::of(&kernel.runs, kernel.bytes_per_round);
            kernel.noise = Noise::of(&kernel.runs, self.cfg.mode);
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
            if op.writes() == Some(Array::C) {
                self.c_writer = Some(op);
            }
            let t = Instant::now();
            let expect = Expect {
                seed: self.cfg.seed,
                c_filled: self.cfg.fill_c(),
                c_writer: self.c_writer,
                a_updates: self.a_updates,
            };
            let checked = self.step_all(team, &Step::Validate { op, expect }, Phase::Validate);
            timing.1 += t.elapsed().as_secs_f64();
            let checked = match checked {
                Ok(c) => c,
                Err(e) => {
                    self.kernels.push(kernel);
                    return Err(e.into());
                }
            };
            let stop = self.any(checked.is_none());
            let (Some(outcome), false) = (checked, stop) else {
                self.kernels.push(kernel);
                return Ok(false);
            };
            let (validation, dot) = verdict::combine(self.cfg, op, self.a_updates, &outcome.results, self.lockstep);
            kernel.validation = Some(validation);
            kernel.dot = dot;
            self.kernels.push(kernel);
        }
        Ok(true)
    }

    fn note_noise(&mut self, kernel: &KernelReport) {
        let (Some(noise), Some(summary)) = (&kernel.noise, &kernel.summary) else { return };
        let op = kernel.op.to_string();
        let w = match noise.verdict {
            crate::report::noise::Verdict::TooShort => {
                // One line for every kernel too short to time.
                for w in &mut self.warnings {
                    if let Warning::TooShort { ops, fastest_s } = w {
                        ops.push(op);
                        *fastest_s = fastest_s.min(summary.min_s);
                        return;
                    }
                }
                Warning::TooShort { ops: vec![op], fastest_s: summary.min_s }
            }
            crate::report::noise::Verdict::Noisy => {
                Warning::Outliers { op, outliers: noise.outliers.len(), rounds: summary.rounds, iqr_pct: noise.iqr_pct }
            }
            crate::report::noise::Verdict::Steady => return,
        };
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    /// The restore a replacement needs now.
    fn restore(&self) -> Restore {
        Restore { a_updates: self.a_updates }
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
        // A replacement during an update in place starts where the rounds
        // every worker finished left `a`.
        let mut restore = self.restore();
        if let Step::Run { op, .. } = step
            && !op.idempotent()
        {
            restore.a_updates += outcome.rounds.len() as u32;
        }
        let lost = outcome.lost.clone();
        Ok(if self.recover(team, lost, phase, failed_round, started, restore) {
            Attempt::Recovered(outcome)
        } else {
            Attempt::Stop(outcome)
        })
    }

    /// Runs `Init` or `Validate` until every worker has done it; `None`
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

    /// Runs a kernel's warm-up and timed rounds in batches. The first batch
    /// is one round; later ones are sized so that a batch takes at most a
    /// quarter of `--timeout`.
    fn rounds(&mut self, team: &mut dyn Team, op: Op, kernel: &mut KernelReport) -> Result<bool, Interrupted> {
        let total = self.cfg.warmup + self.cfg.runs;
        let mut kept = 0u32;
        let mut op_round = 0u32;
        let mut batch = 1u32;
        let mut discard_next = false;
        while kept < total {
            // In lockstep, one round per step, each after a barrier.
            let count =
                if self.lockstep.is_some() { 1 } else { batch.min(total - kept).min(team.batch_limit()).max(1) };
            let step = Step::Run { op, first: self.next_round, count, op_round };
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
                op_round += 1;
                if !op.idempotent() {
                    self.a_updates += 1;
                }
                if discard_next {
                    // The repeated round of an update in place: mixed, not kept.
                    discard_next = false;
                } else {
                    if kept < self.cfg.warmup {
                        kernel.warmup.push(record);
                    } else {
                        kernel.runs.push(record);
                    }
                    kept += 1;
                }
            }
            if stop {
                return Ok(false);
            }
            if recovered && !op.idempotent() {
                discard_next = true;
            }
            if !outcome.rounds.is_empty() {
                let budget = self.cfg.timeout_s / 4.0;
                batch = ((budget / longest.max(1e-9)) as u32).clamp(1, crate::shm::BATCH as u32);
            }
        }
        Ok(true)
    }

    /// Records lost workers and, under `retry`, replaces them; `false`
    /// when the run must stop.
    fn recover(
        &mut self,
        team: &mut dyn Team,
        lost: Vec<Lost>,
        phase: Phase,
        round: Option<u32>,
        step_started: Instant,
        restore: Restore,
    ) -> bool {
        let detected_after_s = step_started.elapsed().as_secs_f64();
        let mut keep_going = true;
        for Lost { id, cause } in lost {
            let range = self.partition.chunk(id);
            let range = [range.start as u64, range.end as u64];
            let (mut phase, mut cause) = (phase, cause);
            loop {
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
                    action,
                };
                let OnFault::Retry(allowed) = self.cfg.on_fault else {
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
                match team.replace(id, restore) {
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
        let release = times.release_ns;
        let mut last_end = release;
        let mut worker_seconds = vec![0.0; self.cfg.procs];
        let mut worker_start_lag_s = vec![0.0; self.cfg.procs];
        for (id, t) in times.workers.iter().enumerate().take(self.cfg.procs) {
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
        let records: Vec<WorkerRecord> = (0..self.cfg.procs)
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
        let validated = self.kernels.len() == self.cfg.ops.0.len() && self.kernels.iter().all(KernelReport::validated);
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
    //! timeouts and interrupts, without spawning anything.

    use std::collections::VecDeque;
    use std::time::Duration;

    use super::*;
    use crate::fault::Cause;
    use crate::kernel::data::DotReference;
    use crate::kernel::data::Verdict;
    use crate::kernel::reduce;
    use crate::machine::PinOutcome;
    use crate::protocol::DotPartial;
    use crate::protocol::Timing;
    use crate::run::team::MemberFacts;

    /// What the mock does for one step.
    #[derive(Clone, Debug)]
    enum Script {
        /// Completes it (a Run: every round).
        Ok,
        /// Loses `worker` after `rounds` completed rounds.
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
        restores: Vec<Restore>,
    }

    impl Mock {
        fn new(procs: usize, script: &[Script]) -> Mock {
            Mock {
                procs,
                script: script.iter().cloned().collect(),
                steps: Vec::new(),
                attempts: vec![0; procs],
                replaceable: true,
                restores: Vec::new(),
            }
        }
    }

    fn times(procs: usize, k: u32) -> RoundTimes {
        let base = 1_000_000 * (k as u64 + 1);
        RoundTimes {
            release_ns: base,
            workers: (0..procs).map(|_| Timing { start_ns: base + 10, end_ns: base + 1000, cpu: 0 }).collect(),
            slowest_s: None,
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
            let all = |o: &mut StepOutcome, count: u32, procs: usize| match step {
                Step::Run { .. } => o.rounds = (0..count).map(|k| times(procs, k)).collect(),
                Step::Init { .. } => o.results = vec![Some(StepResult::Init { error: None }); procs],
                Step::Validate { .. } => {
                    o.results = vec![Some(StepResult::Validate { verdict: Verdict::default(), dot: None }); procs]
                }
                Step::Shutdown => {}
            };
            let count = match step {
                Step::Run { count, .. } => *count,
                _ => 1,
            };
            let mut o = StepOutcome::default();
            match script {
                Script::Ok => all(&mut o, count, self.procs),
                Script::Lose { worker, rounds, cause } => {
                    all(&mut o, rounds.min(count), self.procs);
                    o.results.iter_mut().enumerate().for_each(|(i, r)| {
                        if i == worker {
                            *r = None
                        }
                    });
                    o.lost = vec![Lost { id: worker, cause }];
                }
                Script::Interrupt => return Err(Interrupted(nix::sys::signal::Signal::SIGINT)),
            }
            Ok(o)
        }
        fn replace(&mut self, id: usize, restore: Restore) -> Result<(), ReplaceError> {
            self.restores.push(restore);
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
        RunConfig::resolve(&cli.run, &crate::machine::testing::two_cpus()).unwrap().0
    }

    fn run<'c>(cfg: &'c RunConfig, team: &mut Mock) -> (Result<bool, Error>, Conductor<'c>) {
        let mut c = Conductor::new(cfg, Vec::new());
        let mut timing = (0.0, 0.0);
        let result = c.init(team).and_then(|ok| if ok { c.kernels(team, &mut timing) } else { Ok(false) });
        (result, c)
    }

    fn panic_cause() -> Cause {
        Cause::Panic { message: "boom".into() }
    }

    #[test]
    fn a_clean_run_validates_every_kernel() {
        let cfg = config(&["--op", "copy,add", "--runs", "3", "--warmup", "1"]);
        let mut team = Mock::new(2, &[]);
        let (result, c) = run(&cfg, &mut team);
        assert!(result.unwrap());
        assert_eq!(c.kernels.len(), 2);
        assert_eq!(c.kernels[0].runs.len(), 3);
        assert_eq!(c.kernels[0].warmup.len(), 1);
        let rounds: Vec<u32> = c.kernels[1].warmup.iter().chain(&c.kernels[1].runs).map(|r| r.round).collect();
        assert_eq!(rounds, [4, 5, 6, 7], "rounds are numbered over every kernel");
        assert_eq!(c.exit_code(), EXIT_OK);
        // Init, then per kernel: its batches of rounds, then Validate.
        assert!(matches!(team.steps[0], Step::Init { fill_c: false }));
        assert!(matches!(team.steps.last(), Some(Step::Validate { op: Op::Add, .. })));
    }

    #[test]
    fn a_lost_worker_stops_the_run_under_fail() {
        let cfg = config(&["--runs", "5"]);
        let mut team =
            Mock::new(2, &[Script::Ok, Script::Ok, Script::Lose { worker: 1, rounds: 2, cause: panic_cause() }]);
        let (result, c) = run(&cfg, &mut team);
        assert!(!result.unwrap());
        assert_eq!(c.faults.len(), 1);
        assert_eq!(c.faults[0].action, FaultAction::Stopped);
        assert_eq!(c.faults[0].round, Some(3), "one warm-up round, then two of the batch completed");
        assert_eq!(c.kernels[0].runs.len() + c.kernels[0].warmup.len(), 3, "completed rounds stand");
        assert_eq!(c.exit_code(), EXIT_FAULT);
    }

    #[test]
    fn retry_replaces_and_repeats_each_step() {
        let cfg = config(&["--runs", "4", "--on-fault", "retry=2"]);
        let mut team = Mock::new(
            2,
            &[
                Script::Lose { worker: 0, rounds: 0, cause: panic_cause() }, // Init
                Script::Ok,
                Script::Ok,
                Script::Lose { worker: 1, rounds: 1, cause: Cause::Timeout { seconds: 1.0 } },
                Script::Ok,
                Script::Lose { worker: 1, rounds: 0, cause: Cause::Exit { code: 42 } }, // Validate
            ],
        );
        let (result, c) = run(&cfg, &mut team);
        assert!(result.unwrap(), "{:?}", c.faults);
        assert_eq!(c.exit_code(), EXIT_OK);
        assert_eq!(c.retries.len(), 3);
        assert_eq!(
            c.retries.iter().map(|r| r.repeated.as_str()).collect::<Vec<_>>(),
            ["init", "round 2", "validation"]
        );
        let rounds: Vec<u32> = c.kernels[0].warmup.iter().chain(&c.kernels[0].runs).map(|r| r.round).collect();
        assert_eq!(rounds, [0, 1, 2, 3, 4], "every round once, in order, the repeated one included");
        assert_eq!(team.attempts, [1, 2]);
        // The third loss of worker 1 exceeds retry=2.
        let mut team = Mock::new(
            2,
            &[
                Script::Lose { worker: 1, rounds: 0, cause: panic_cause() },
                Script::Lose { worker: 1, rounds: 0, cause: panic_cause() },
                Script::Lose { worker: 1, rounds: 0, cause: panic_cause() },
            ],
        );
        let (result, c) = run(&cfg, &mut team);
        assert!(!result.unwrap());
        assert_eq!(c.faults.last().unwrap().action, FaultAction::RetriesUsed(2));
    }

    #[test]
    fn an_irreplaceable_worker_stops_the_run() {
        let cfg = config(&["--on-fault", "retry"]);
        let mut team =
            Mock::new(2, &[Script::Ok, Script::Lose { worker: 0, rounds: 0, cause: Cause::Timeout { seconds: 1.0 } }]);
        team.replaceable = false;
        let (result, c) = run(&cfg, &mut team);
        assert!(!result.unwrap());
        assert!(matches!(c.faults[0].action, FaultAction::Irreplaceable(_)));
    }

    #[test]
    fn an_update_in_place_is_never_repeated_and_never_miscounted() {
        let cfg = config(&["--op", "nstream", "--runs", "4", "--warmup", "0", "--on-fault", "retry"]);
        let mut team =
            Mock::new(2, &[Script::Ok, Script::Ok, Script::Lose { worker: 1, rounds: 1, cause: panic_cause() }]);
        let (result, c) = run(&cfg, &mut team);
        assert!(result.unwrap());
        assert_eq!(c.kernels[0].runs.len(), 4, "four timed rounds kept");
        assert_eq!(team.restores, [Restore { a_updates: 2 }], "the replacement catches up the two rounds done");
        // Four rounds kept, and the repeated one (applied once to every
        // chunk, but timed only on some) not: five applications in all.
        let Some(Step::Validate { expect, .. }) = team.steps.last() else { panic!() };
        assert_eq!(expect.a_updates, 5);
        assert!(expect.c_filled, "nstream reads c before anything writes it");
    }

    #[test]
    fn an_interrupt_stops_at_once() {
        let cfg = config(&[]);
        let mut team = Mock::new(2, &[Script::Ok, Script::Interrupt]);
        let (result, _) = run(&cfg, &mut team);
        assert!(matches!(result, Err(Error::Interrupted(_))));
    }

    #[test]
    fn a_dot_is_combined_from_the_workers_partials() {
        let len = 3000usize;
        let a: Vec<f64> = (0..len).map(|i| i as f64 * 0.5).collect();
        let b: Vec<f64> = (0..len).map(|i| 1.0 - i as f64 * 0.25).collect();
        let k =
            crate::kernel::Kernel::<f64>::resolve(Op::Dot, crate::kernel::Simd::Scalar, crate::kernel::Stores::Regular)
                .unwrap();
        let partial = |lo: usize, hi: usize| {
            let mut blocks = vec![0.0; (hi - lo).div_ceil(512)];
            k.reduce(&a[lo..hi], &b[lo..hi], &mut blocks);
            DotPartial {
                nodes: reduce::nodes_of((lo / 512) as u64, &blocks),
                reference: DotReference::of(&a[lo..hi], &b[lo..hi]).into(),
            }
        };
        let (left, right) = (partial(0, 1024), partial(1024, len));
        let r = verdict::dot_result::<f64>(len, &[&left, &right]);
        assert!(r.within_bound && r.error <= r.bound, "{r:?}");
        let exact: f64 = (0..len).map(|i| a[i] * b[i]).sum();
        assert!((r.value - exact).abs() < 1e-6 * exact.abs());
        let missing = verdict::dot_result::<f64>(len, &[&left]);
        assert!(!missing.within_bound, "a missing partial never validates");
    }
}
