//! Serial mode: the coordinator's own thread computes the whole array, with
//! the same executor and kernel as every other mode. No doorbell, no worker:
//! the baseline that speed-ups are measured against.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Lost, MemberFacts, ReplaceError, Team, Waited};
use crate::config::RunConfig;
use crate::cpus::PinnedHere;
use crate::error::Error;
use crate::kernel::{Dtype, Kernel};
use crate::shm::control::BATCH;
use crate::shm::{Claim, Command, Segment};
use crate::worker::{Executor, Outcome, publish};

enum AnyExecutor {
    F64(Executor<f64, Claim>),
    F32(Executor<f32, Claim>),
}

impl AnyExecutor {
    fn execute(&mut self, command: Command, round: u32) -> Outcome {
        match self {
            AnyExecutor::F64(e) => e.execute(command, round),
            AnyExecutor::F32(e) => e.execute(command, round),
        }
    }
}

pub(crate) struct InlineTeam {
    segment: Arc<Segment>,
    exec: AnyExecutor,
    /// The coordinator's own thread, pinned until the team is dropped.
    pinned: PinnedHere,
    seq: u32,
}

impl InlineTeam {
    pub(crate) fn start(cfg: &RunConfig, segment: Arc<Segment>) -> Result<(Box<dyn Team>, Vec<Lost>), Error> {
        let arrays = segment.share_arrays()?;
        let chunk = arrays.claim(0..cfg.len)?;
        let kernel_error = |e: crate::kernel::KernelError| Error::Usage(format!("--simd {}: {e}", cfg.simd));
        let exec = match cfg.dtype {
            Dtype::F64 => AnyExecutor::F64(Executor::new(
                0,
                Kernel::resolve(cfg.op, cfg.simd, cfg.stores).map_err(kernel_error)?,
                chunk,
                cfg.seed,
                Vec::new(),
                None,
            )),
            Dtype::F32 => AnyExecutor::F32(Executor::new(
                0,
                Kernel::resolve(cfg.op, cfg.simd, cfg.stores).map_err(kernel_error)?,
                chunk,
                cfg.seed,
                Vec::new(),
                None,
            )),
        };
        let pinned = PinnedHere::pin(cfg.pin_plan[0]);
        Ok((Box::new(InlineTeam { segment, exec, pinned, seq: 0 }), Vec::new()))
    }
}

impl Team for InlineTeam {
    fn member(&self, _id: usize) -> MemberFacts {
        MemberFacts {
            pid: std::process::id(),
            tid: Some(nix::unistd::gettid().as_raw() as u32),
            pin: self.pinned.outcome.clone(),
            attempt: 0,
        }
    }

    fn batch_limit(&self) -> u32 {
        BATCH as u32
    }

    fn ring(&mut self, command: Command, round: u32, count: u32, ring_ns: u64) -> Result<u32, Error> {
        self.seq = self.seq.wrapping_add(1);
        let control = self.segment.control();
        if command == Command::Run {
            // Each round is released when the previous one ends, as the
            // workers' barrier does in the other modes.
            let mut release = ring_ns;
            for k in 0..count.min(BATCH as u32) {
                control.set_release_ns(k as usize, release);
                let out = self.exec.execute(command, round + k);
                control.stamp(0, k as usize, out.start_ns, out.end_ns, out.cpu);
                release = out.end_ns;
            }
        } else {
            publish(control.slot(0), &self.exec.execute(command, round));
        }
        control.slot(0).done_seq.store(self.seq, Ordering::Release);
        Ok(self.seq)
    }

    fn wait(&mut self, _seq: u32, _timeout: Duration) -> Waited {
        Waited::Done
    }

    fn replace(&mut self, _id: usize) -> Result<(), ReplaceError> {
        Err(ReplaceError::Impossible("serial mode has no worker to replace".into()))
    }

    fn shutdown(&mut self) {}
}
