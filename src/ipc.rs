//! Messages between the coordinator and its worker processes (`ipc-channel`).
//!
//! IPC carries what happens once per worker — hello, assignment, ready,
//! failure reports, shutdown — and, with `--sync ipc`, the rounds themselves.
//! By default rounds go through the doorbell in the shared segment
//! ([`crate::shm::control`]), which costs microseconds instead of a socket
//! round trip.
//!
//! Bootstrapping: the coordinator creates one `IpcOneShotServer` per worker
//! and passes its name on the worker's command line; the worker connects and
//! sends `Hello` carrying the sender for the coordinator's replies. Because
//! `accept()` has no timeout, the coordinator accepts on a helper thread and
//! unblocks it itself if a worker dies before connecting
//! ([`FromWorker::Unblock`]).
//!
//! Nothing a worker receives is trusted: [`Assignment::validate`] checks it
//! against the segment header before anything is mapped writable.
#![forbid(unsafe_code)]

use std::ops::Range;

use ipc_channel::ipc::IpcSender;
use serde::{Deserialize, Serialize};

use crate::cpus::PinOutcome;
use crate::fault::FaultKind;
use crate::kernel::{Dtype, Op, Simd, Stores};
use crate::shm::Layout;

/// How rounds are announced and reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Sync {
    /// A futex doorbell and done counter in the shared segment (a few µs per round).
    Doorbell,
    /// A Run message to each worker and a Done message back (a socket round trip per worker).
    Ipc,
}

/// What a worker sends.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromWorker {
    /// First message: who I am, and where to send my orders.
    Hello {
        /// Worker id from the command line.
        id: u32,
        /// Process id.
        pid: u32,
        /// The worker binary's version, which must match the coordinator's.
        version: String,
        /// The coordinator's channel to this worker.
        reply: IpcSender<ToWorker>,
    },
    /// The assignment is accepted, the chunk mapped, the pin attempted.
    Ready {
        /// The CPU the worker is on now.
        cpu: Option<u32>,
        /// What became of the pin request.
        pin: PinOutcome,
    },
    /// A command finished (`--sync ipc` only).
    Done(Completion),
    /// The worker cannot go on; it exits after sending this.
    Failed {
        /// One line saying why.
        message: String,
    },
    /// The worker panicked (sent by its panic hook).
    Panicked {
        /// The panic message and location.
        message: String,
    },
    /// Sent by the coordinator to its own one-shot server to release a
    /// helper thread stuck in `accept()` after a worker died unconnected.
    Unblock,
}

/// What the coordinator sends.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToWorker {
    /// The worker's job.
    Assign(Assignment),
    /// Run a command (`--sync ipc` only).
    Command {
        /// Sequence number, echoed in `Done`.
        seq: u32,
        /// The doorbell command code.
        command: u32,
        /// The round.
        round: u32,
    },
    /// Exit now.
    Shutdown,
}

/// When and where a command ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// The command's sequence number.
    pub seq: u32,
    /// CLOCK_MONOTONIC at the start of the work, ns.
    pub start_ns: u64,
    /// CLOCK_MONOTONIC at its end, ns.
    pub end_ns: u64,
    /// The CPU the worker finished on.
    pub cpu: u32,
}

/// A fault the worker must inject into itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectedFault {
    /// What to do.
    pub kind: FaultKind,
    /// In which round.
    pub round: u32,
}

/// A worker's job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// Worker id (its slot in the control block).
    pub id: u32,
    /// 0 for the first process with this id, +1 per replacement.
    pub attempt: u32,
    /// First element of the chunk.
    pub start: u64,
    /// One past the last element.
    pub end: u64,
    /// Elements per array, as the coordinator believes.
    pub len: u64,
    /// Element type, as the coordinator believes.
    pub dtype: Dtype,
    /// The operation.
    pub op: Op,
    /// SIMD level.
    pub simd: Simd,
    /// Store kind.
    pub stores: Stores,
    /// Data seed.
    pub seed: u64,
    /// CPU to pin to.
    pub pin: Option<u32>,
    /// How rounds are announced.
    pub sync: Sync,
    /// Microseconds to spin on the doorbell before sleeping.
    pub spin_us: u32,
    /// Faults to inject (first attempt only; empty otherwise).
    pub faults: Vec<InjectedFault>,
    /// The element of `a` an `oob-write` fault writes (in another worker's chunk).
    pub oob_target: Option<u64>,
}

impl Assignment {
    /// The chunk as a range.
    pub fn range(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    /// Checks the assignment against the segment the worker attached to.
    pub fn validate(&self, layout: &Layout) -> Result<(), String> {
        if self.id as usize >= layout.slots {
            return Err(format!("worker id {} but the segment has {} slots", self.id, layout.slots));
        }
        if self.len != layout.len as u64 || self.dtype != layout.dtype {
            return Err(format!(
                "assignment is for {} × {} but the segment holds {} × {}",
                self.len, self.dtype, layout.len, layout.dtype
            ));
        }
        if self.start > self.end || self.end > self.len {
            return Err(format!("range {}..{} is outside the array of {} elements", self.start, self.end, self.len));
        }
        let page = layout.page_elems() as u64;
        let aligned = self.start.is_multiple_of(page) && (self.end == self.len || self.end.is_multiple_of(page));
        if self.start < self.end && !aligned {
            return Err(format!("range {}..{} does not fall on page boundaries of c", self.start, self.end));
        }
        if let Some(t) = self.oob_target
            && (t >= self.len || (self.start..self.end).contains(&t))
        {
            return Err(format!("oob-write target {t} is not in another worker's chunk"));
        }
        if self.attempt > 0 && !self.faults.is_empty() {
            return Err("faults are injected on the first attempt only".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(layout: &Layout) -> Assignment {
        Assignment {
            id: 1,
            attempt: 0,
            start: layout.page_elems() as u64,
            end: layout.len as u64,
            len: layout.len as u64,
            dtype: layout.dtype,
            op: Op::Add,
            simd: Simd::Scalar,
            stores: Stores::Regular,
            seed: 1,
            pin: None,
            sync: Sync::Doorbell,
            spin_us: 0,
            faults: vec![],
            oob_target: Some(0),
        }
    }

    #[test]
    fn assignments_are_checked_against_the_header() {
        let layout = Layout::new(Dtype::F64, 10_000, 2, crate::shm::page_size(), 1).unwrap();
        let good = assignment(&layout);
        assert_eq!(good.validate(&layout), Ok(()));
        let bad = [
            Assignment { id: 2, ..good.clone() },
            Assignment { end: 10_001, ..good.clone() },
            Assignment { start: 3, ..good.clone() },
            Assignment { dtype: Dtype::F32, ..good.clone() },
            Assignment { len: 9, ..good.clone() },
            Assignment { oob_target: Some(600), ..good.clone() },
            Assignment { start: 1024, end: 512, ..good.clone() },
            Assignment { start: 10_001, end: 10_001, ..good.clone() },
        ];
        // An idle worker's empty chunk may sit anywhere up to the end.
        assert_eq!(
            Assignment { start: 10_000, end: 10_000, oob_target: None, ..good.clone() }.validate(&layout),
            Ok(())
        );
        assert_eq!(Assignment { start: 7, end: 7, oob_target: None, ..good.clone() }.validate(&layout), Ok(()));
        for b in bad {
            assert!(b.validate(&layout).is_err(), "{b:?} passed");
        }
    }
}
