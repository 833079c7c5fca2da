//! Serial mode: the coordinator's own thread computes the whole array, with
//! the same executor and kernels as every other mode. No doorbell, no
//! worker: the baseline that speed-ups are measured against. The same team
//! of one serves a rank of `--mode ranks`, over its chunk of the node's MPI
//! shared window instead of a segment.

use std::sync::Arc;
use std::time::Duration;

use super::team::{MemberFacts, ReplaceError, RoundTimes, StepOutcome, Team};
use crate::config::RunConfig;
use crate::error::Error;
use crate::kernel::{Dtype, Element, Position};
use crate::machine::cpus::PinnedHere;
use crate::protocol::{Step, StepResult};
use crate::shm::{ChunkAccess, Claim, Pulse, Segment, SharedArrays};
use crate::signals::{self, Interrupted};
use crate::worker::Executor;

enum AnyExecutor<C: ChunkAccess> {
    F64(Executor<'static, f64, C>),
    F32(Executor<'static, f32, C>),
}

impl<C: ChunkAccess> AnyExecutor<C> {
    fn step(&mut self, step: &Step, k: u32) -> StepResult {
        match self {
            AnyExecutor::F64(e) => e.step(step, k),
            AnyExecutor::F32(e) => e.step(step, k),
        }
    }
}

/// This thread, computing all of `C` (a claim on the whole segment, or a
/// rank's chunk of a window).
pub(crate) struct SerialTeam<C: ChunkAccess> {
    exec: AnyExecutor<C>,
    /// The coordinator's own thread, pinned until the team is dropped.
    pinned: PinnedHere,
    /// What a lost member would be (there is none to replace).
    alone: &'static str,
    _arrays: Option<Arc<SharedArrays>>,
}

impl SerialTeam<Claim> {
    pub(crate) fn start(cfg: &RunConfig, segment: &Segment) -> Result<SerialTeam<Claim>, Error> {
        let arrays = segment.share_arrays()?;
        let claim = arrays.claim(0..cfg.len())?;
        let mut team = SerialTeam::over(cfg, claim)?;
        team._arrays = Some(arrays);
        Ok(team)
    }
}

impl<C: ChunkAccess> SerialTeam<C> {
    /// The team over `chunk`, which holds all of the run's elements.
    pub(crate) fn over(cfg: &RunConfig, chunk: C) -> Result<SerialTeam<C>, Error> {
        // One chunk of everything: the page size does not matter.
        let whole = crate::partition::Partition::new(cfg.len(), 1, 1);
        let job = super::assignment(cfg, &whole, 0, 0, None);
        fn exec<T: Element, C: ChunkAccess>(
            job: &crate::protocol::Assignment,
            chunk: C,
        ) -> Result<Executor<'static, T, C>, Error> {
            Executor::new(job, chunk, Pulse::default()).map_err(Error::usage)
        }
        let exec = match cfg.dtype() {
            Dtype::F64 => AnyExecutor::F64(exec(&job, chunk)?),
            Dtype::F32 => AnyExecutor::F32(exec(&job, chunk)?),
        };
        let pinned = PinnedHere::pin(cfg.placement().pin_plan.first().copied().flatten());
        let alone = match cfg.mode() {
            #[cfg(feature = "mpi")]
            crate::vocab::Mode::Ranks => "a rank has no worker to replace: a lost rank ends the job",
            _ => "serial mode has no worker to replace",
        };
        Ok(SerialTeam { exec, pinned, alone, _arrays: None })
    }
}

impl<C: ChunkAccess> Team for SerialTeam<C> {
    fn member(&self, _id: usize) -> MemberFacts {
        MemberFacts {
            pid: std::process::id(),
            tid: Some(nix::unistd::gettid().as_raw() as u32),
            pin: self.pinned.outcome.clone(),
            attempt: 0,
        }
    }

    fn batch_limit(&self) -> u32 {
        crate::shm::BATCH as u32
    }

    fn step(&mut self, step: &Step, _patience: Duration) -> Result<StepOutcome, Interrupted> {
        let mut outcome = StepOutcome::default();
        match *step {
            Step::Run { count, .. } => {
                // Each round is released when the previous one ends, as the
                // workers' barrier does in the other modes.
                let mut release = crate::clock::now_ns();
                for k in 0..count {
                    signals::check()?;
                    let StepResult::Round { timing } = self.exec.step(step, k) else { unreachable!() };
                    outcome.rounds.push(RoundTimes { release_ns: release, workers: vec![timing], slowest_s: None });
                    release = timing.end_ns;
                }
            }
            Step::Shutdown => {}
            _ => outcome.results = vec![Some(self.exec.step(step, 0))],
        }
        Ok(outcome)
    }

    fn replace(&mut self, _id: usize, _at: Option<Position>) -> Result<(), ReplaceError> {
        Err(ReplaceError::Impossible(self.alone.into()))
    }

    fn shutdown(&mut self) {}
}
