//! Serial mode: the coordinator's own thread computes the whole array, with
//! the same executor and kernels as every other mode. No doorbell, no
//! worker: the baseline that speed-ups are measured against.

use std::sync::Arc;
use std::time::Duration;

use super::team::{MemberFacts, ReplaceError, Restore, RoundTimes, StepOutcome, Team};
use crate::config::RunConfig;
use crate::error::Error;
use crate::kernel::{Dtype, Element};
use crate::machine::cpus::PinnedHere;
use crate::protocol::{Step, StepResult};
use crate::shm::{Claim, Pulse, Segment, SharedArrays};
use crate::signals::{self, Interrupted};
use crate::worker::Executor;

enum AnyExecutor {
    F64(Executor<'static, f64, Claim>),
    F32(Executor<'static, f32, Claim>),
}

impl AnyExecutor {
    fn step(&mut self, step: &Step, k: u32) -> StepResult {
        match self {
            AnyExecutor::F64(e) => e.step(step, k),
            AnyExecutor::F32(e) => e.step(step, k),
        }
    }
}

pub(crate) struct SerialTeam {
    exec: AnyExecutor,
    /// The coordinator's own thread, pinned until the team is dropped.
    pinned: PinnedHere,
    _arrays: Arc<SharedArrays>,
}

impl SerialTeam {
    pub(crate) fn start(cfg: &RunConfig, segment: &Segment) -> Result<SerialTeam, Error> {
        let arrays = segment.share_arrays()?;
        let claim = arrays.claim(0..cfg.len)?;
        let job = super::assignment(cfg, &cfg.partition(), 0, 0, Restore::default());
        fn exec<T: Element>(
            job: &crate::protocol::Assignment,
            claim: Claim,
        ) -> Result<Executor<'static, T, Claim>, Error> {
            Executor::new(job, claim, Pulse::default()).map_err(Error::usage)
        }
        let exec = match cfg.dtype {
            Dtype::F64 => AnyExecutor::F64(exec(&job, claim)?),
            Dtype::F32 => AnyExecutor::F32(exec(&job, claim)?),
        };
        let pinned = PinnedHere::pin(cfg.placement.pin_plan.first().copied().flatten());
        Ok(SerialTeam { exec, pinned, _arrays: arrays })
    }
}

impl Team for SerialTeam {
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

    fn replace(&mut self, _id: usize, _restore: Restore) -> Result<(), ReplaceError> {
        Err(ReplaceError::Impossible("serial mode has no worker to replace".into()))
    }

    fn shutdown(&mut self) {}
}
