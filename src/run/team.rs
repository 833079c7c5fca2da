//! The conductor's side of a team: what it asks (a [`Step`]) and what it
//! gets back ([`StepOutcome`]), whatever the workers are made of.
//!
//! A team hides how steps and outcomes travel: the process team through the
//! doorbell and its channels, the thread team through the same control
//! block, serial mode by calling the executor directly — and a scripted
//! mock in the conductor's tests.

use std::time::Duration;

pub(crate) use crate::fault::Lost;
use crate::kernel::Position;
use crate::machine::PinOutcome;
use crate::protocol::{Step, StepResult, Timing};
use crate::signals::Interrupted;

/// What the report shows of a worker.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MemberFacts {
    /// Its process id (the coordinator's own for threads).
    pub(crate) pid: u32,
    /// Its thread id (threads and serial modes).
    pub(crate) tid: Option<u32>,
    /// What became of its pin.
    pub(crate) pin: PinOutcome,
    /// 0 for the first process or thread with this id, +1 per replacement.
    pub(crate) attempt: u32,
}

/// Why a worker could not be replaced.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ReplaceError {
    /// The replacement was started and lost too (worth another try).
    Lost(Lost),
    /// Replacing is impossible (a thread that cannot be killed holds the chunk).
    Impossible(String),
}

/// One round of a batch, as the team timed it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RoundTimes {
    /// When the round was released (CLOCK_MONOTONIC ns).
    pub(crate) release_ns: u64,
    /// Each worker's timing, by id.
    pub(crate) workers: Vec<Timing>,
    /// In lockstep: the round's time on the slowest of the runs, seconds
    /// (clocks are not comparable across nodes; durations are).
    pub(crate) slowest_s: Option<f64>,
}

impl From<crate::shm::doorbell::Round> for RoundTimes {
    fn from(r: crate::shm::doorbell::Round) -> RoundTimes {
        RoundTimes { release_ns: r.release_ns, workers: r.workers, slowest_s: None }
    }
}

impl RoundTimes {
    /// When the last worker finished (the release, if none did).
    pub(crate) fn last_end_ns(&self) -> u64 {
        self.workers.iter().map(|t| t.end_ns).fold(self.release_ns, u64::max)
    }
}

/// How a step ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct StepOutcome {
    /// For a `Run`: the rounds every worker completed, with their timings.
    pub(crate) rounds: Vec<RoundTimes>,
    /// For the other steps: each worker's result, by id (`None` for a lost
    /// or idle one).
    pub(crate) results: Vec<Option<StepResult>>,
    /// The workers lost during the step.
    pub(crate) lost: Vec<Lost>,
}

/// Executes steps on every chunk.
pub(crate) trait Team {
    /// Facts about worker `id`.
    fn member(&self, id: usize) -> MemberFacts;
    /// The most rounds one `Run` may cover.
    fn batch_limit(&self) -> u32;
    /// Runs `step` on every live worker and waits for its end; a worker
    /// showing no progress for `patience` is lost as hung.
    fn step(&mut self, step: &Step, patience: Duration) -> Result<StepOutcome, Interrupted>;
    /// Replaces a lost worker with a fresh one (its next attempt), which
    /// first brings its chunk to where the run stands (`None`: before the
    /// arrays were filled).
    fn replace(&mut self, id: usize, at: Option<Position>) -> Result<(), ReplaceError>;
    /// Stops every worker and reaps them.
    fn shutdown(&mut self);
    /// When lost worker `id` stopped, as it recorded before a new one took
    /// its place (CLOCK_MONOTONIC ns): an injected fault, its fault
    /// recorder or its panic hook stamps it. `None` when nothing did (a
    /// kill from outside, a real hang).
    fn silent_since_ns(&self, id: usize) -> Option<u64> {
        let _ = id;
        None
    }
}
