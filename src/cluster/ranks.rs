//! `--mode ranks`: the rank is its own team of one, computing its chunk of
//! the node's MPI shared window with the same executor and kernels as every
//! other mode (see [`crate::shm::window`]).

use std::time::Duration;

use crate::config::RunConfig;
use crate::error::Error;
use crate::kernel::{Dtype, Element};
use crate::protocol::{Step, StepResult};
use crate::run::team::{MemberFacts, ReplaceError, RoundTimes, StepOutcome};
use crate::run::{Restore, Team};
use crate::shm::Pulse;
use crate::shm::window::{Window, WindowChunk};
use crate::signals::{self, Interrupted};
use crate::worker::Executor;

enum AnyExecutor<'w> {
    F64(Executor<'static, f64, WindowChunk<'w>>),
    F32(Executor<'static, f32, WindowChunk<'w>>),
}

/// One rank computing its own chunk of the node's window.
pub(super) struct RankTeam<'w> {
    exec: AnyExecutor<'w>,
}

impl<'w> RankTeam<'w> {
    pub(super) fn start(cfg: &RunConfig, window: &'w Window) -> Result<RankTeam<'w>, Error> {
        let job = crate::run::assignment(cfg, &cfg.partition(), 0, 0, Restore::default());
        fn exec<'w, T: Element>(
            job: &crate::protocol::Assignment,
            chunk: WindowChunk<'w>,
        ) -> Result<Executor<'static, T, WindowChunk<'w>>, Error> {
            Executor::new(job, chunk, Pulse::default()).map_err(Error::usage)
        }
        let exec = match cfg.dtype {
            Dtype::F64 => AnyExecutor::F64(exec(&job, window.chunk())?),
            Dtype::F32 => AnyExecutor::F32(exec(&job, window.chunk())?),
        };
        Ok(RankTeam { exec })
    }

    fn run(&mut self, step: &Step, k: u32) -> StepResult {
        match &mut self.exec {
            AnyExecutor::F64(e) => e.step(step, k),
            AnyExecutor::F32(e) => e.step(step, k),
        }
    }
}

impl Team for RankTeam<'_> {
    fn member(&self, _id: usize) -> MemberFacts {
        MemberFacts {
            pid: std::process::id(),
            tid: Some(nix::unistd::gettid().as_raw() as u32),
            pin: crate::machine::cpus::PinOutcome::Unpinned,
            attempt: 0,
        }
    }

    fn batch_limit(&self) -> u32 {
        1 // in lockstep: one round per step
    }

    fn step(&mut self, step: &Step, _patience: Duration) -> Result<StepOutcome, Interrupted> {
        signals::check()?;
        let mut outcome = StepOutcome::default();
        match *step {
            Step::Run { count, .. } => {
                for k in 0..count {
                    let release = crate::clock::now_ns();
                    let StepResult::Round { timing } = self.run(step, k) else { unreachable!() };
                    outcome.rounds.push(RoundTimes { release_ns: release, workers: vec![timing], slowest_s: None });
                }
            }
            Step::Shutdown => {}
            _ => outcome.results = vec![Some(self.run(step, 0))],
        }
        Ok(outcome)
    }

    fn replace(&mut self, _id: usize, _restore: Restore) -> Result<(), ReplaceError> {
        Err(ReplaceError::Impossible("a rank has no worker to replace: a lost rank ends the job".into()))
    }

    fn shutdown(&mut self) {}
}
