//! The one protocol between the coordinator and its workers: typed steps
//! and results, and the channel that carries them to worker processes.
//!
//! A [`Step`] is the same value whichever way it travels: encoded into the
//! control block's order words for the doorbell ([`Step::encode`], rung by
//! `crate::shm::doorbell`), sent as a message with `--sync ipc`, or passed
//! by value to a thread or to serial mode's executor. Likewise a step's
//! [`StepResult`].
//!
//! There is no step that asks a worker whether its work is right: the
//! coordinator checks the arrays itself (`crate::run::check`), reading the
//! shared memory, so a worker never vouches for what it computed.
//!
//! **The channel.** Each worker process gets its end of a
//! `socketpair(AF_UNIX, SOCK_SEQPACKET)` as its standard output, and the
//! segment as its standard input: nothing is rendezvoused through a
//! directory (so no `$TMPDIR`, no socket path to truncate, no accept to
//! hang), nothing is passed by descriptor number, and when either side dies
//! the other reads end-of-file at once. Each message is one datagram of
//! JSON, at most [`MAX_MESSAGE`] bytes; a datagram that does not decode is
//! refused, never trusted. Floats that may be NaN travel as strings
//! ([`crate::kernel::data::any_float`]) or as bits.
//!
//! Why not `ipc-channel`: its bootstrap is a one-shot server bound to a
//! socket in `$TMPDIR`, which panics when the directory is unusable,
//! truncates long paths, leaves the directory behind when the coordinator is
//! killed during start-up, and blocks in an `accept` that cannot time out.
//! A socket pair inherited at spawn needs none of that, and is a few dozen
//! lines on `nix`.
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, recv, send, socketpair};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::fault::FaultKind;
use crate::kernel::reduce::Node;
use crate::kernel::{Dtype, Op, Position, Simd, Stores};
use crate::machine::PinOutcome;
use crate::machine::numa::Binding;
use crate::vocab::RoundSync;

/// One step of a run, as every team receives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum Step {
    /// Reserve, fill (`c` too when `fill_c`) and first-touch the chunk.
    Init {
        /// Whether `c` is filled from the generator (a kernel reads it first).
        fill_c: bool,
    },
    /// `count` rounds of `op`, the first numbered `first` in the run and
    /// `op_round` among the rounds of `op`.
    Run {
        /// The kernel.
        op: Op,
        /// The run-wide number of the first round.
        first: u32,
        /// Rounds in the batch.
        count: u32,
        /// The number of the first round among this kernel's rounds.
        op_round: u32,
    },
    /// Bring the chunk to where the run stands at `to` (a worker already
    /// there does nothing): after a fault during a kernel that updates in
    /// place, the workers that went a round further rebuild theirs.
    Rebuild {
        /// The position.
        to: Position,
    },
    /// Report the partial sums of the reduction `op` just ran.
    Report {
        /// The reduction.
        op: Op,
    },
    /// Exit.
    Shutdown,
}

/// Words of a [`Step`] in the doorbell's order.
pub(crate) const STEP_WORDS: usize = 5;

/// Rounds in one `Run` step at most (the size of the doorbell's per-round
/// tables).
pub(crate) const BATCH: usize = 32;

const TAG_INIT: u32 = 1;
const TAG_RUN: u32 = 2;
const TAG_REBUILD: u32 = 3;
const TAG_REPORT: u32 = 4;
const TAG_SHUTDOWN: u32 = 5;

impl Step {
    /// The step as the doorbell's order words.
    pub(crate) fn encode(&self) -> [u32; STEP_WORDS] {
        match *self {
            Step::Init { fill_c } => [TAG_INIT, u32::from(fill_c), 0, 0, 0],
            Step::Run { op, first, count, op_round } => [TAG_RUN, op.code(), first, count, op_round],
            Step::Rebuild { to } => [TAG_REBUILD, to.kernel, to.rounds, 0, 0],
            Step::Report { op } => [TAG_REPORT, op.code(), 0, 0, 0],
            Step::Shutdown => [TAG_SHUTDOWN, 0, 0, 0, 0],
        }
    }

    /// The step from the doorbell's order words; `None` for words that do
    /// not make one.
    pub(crate) fn decode(w: &[u32; STEP_WORDS]) -> Option<Step> {
        Some(match w[0] {
            TAG_INIT => Step::Init { fill_c: w[1] != 0 },
            TAG_RUN => {
                let count = w[3];
                if count == 0 || count as usize > BATCH {
                    return None;
                }
                Step::Run { op: Op::from_code(w[1])?, first: w[2], count, op_round: w[4] }
            }
            TAG_REBUILD => Step::Rebuild { to: Position { kernel: w[1], rounds: w[2] } },
            TAG_REPORT => Step::Report { op: Op::from_code(w[1])? },
            TAG_SHUTDOWN => Step::Shutdown,
            _ => return None,
        })
    }
}

/// Why `Init` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum InitError {
    /// Reserving the chunk's memory failed.
    Reserve {
        /// The errno.
        errno: i32,
    },
    /// Mapping or protecting the chunk failed.
    Map {
        /// The errno.
        errno: i32,
    },
}

/// A worker's partial of a reduction: the nodes of the sum's tree that its
/// chunk covers (see [`crate::kernel::reduce`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DotPartial {
    /// The tree nodes.
    pub(crate) nodes: Vec<Node>,
}

/// When and where one round ran on one worker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Timing {
    /// CLOCK_MONOTONIC at the start of the kernel, ns.
    pub(crate) start_ns: u64,
    /// CLOCK_MONOTONIC at its end, ns.
    pub(crate) end_ns: u64,
    /// The CPU the worker finished on (`u32::MAX`: unknown).
    pub(crate) cpu: u32,
}

/// What a step produced on one worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum StepResult {
    /// `Init` finished, or failed this way.
    Init {
        /// The failure, if any.
        error: Option<InitError>,
        /// What became of the chunk's binding.
        #[serde(default)]
        bound: Bound,
    },
    /// One round (with `--sync ipc`; doorbell rounds stamp the slots).
    Round {
        /// Its timing.
        timing: Timing,
    },
    /// The chunk stands where `Rebuild` asked.
    Rebuilt,
    /// A reduction's partial sums.
    Report {
        /// The chunk's part of the sum's tree.
        partial: DotPartial,
    },
}

/// What became of a worker's [`Binding`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Bound {
    /// The node its chunk was bound to (a local binding).
    pub(crate) node: Option<u32>,
    /// The kernel refused the binding (errno): the chunk went where the
    /// process's policy put it.
    pub(crate) refused: Option<i32>,
}

/// A fault the worker must inject into itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InjectedFault {
    /// What to do.
    pub(crate) kind: FaultKind,
    /// In which round (run-wide).
    pub(crate) round: u32,
}

/// A worker's job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Assignment {
    /// The coordinator's version, which must be the worker's.
    pub(crate) version: String,
    /// Worker id (its slot in the control block).
    pub(crate) id: u32,
    /// 0 for the first process with this id, +1 per replacement.
    pub(crate) attempt: u32,
    /// First element of the chunk.
    pub(crate) start: u64,
    /// One past the last element.
    pub(crate) end: u64,
    /// Elements per array, as the coordinator believes.
    pub(crate) len: u64,
    /// The global index of the segment's element 0 (an MPI rank's share).
    #[serde(default)]
    pub(crate) base: u64,
    /// Element type, as the coordinator believes.
    pub(crate) dtype: Dtype,
    /// The kernels of the run, in order.
    pub(crate) ops: Vec<Op>,
    /// Rounds each kernel runs, warm-up included.
    pub(crate) rounds_per_kernel: u32,
    /// SIMD level.
    pub(crate) simd: Simd,
    /// Store kind.
    pub(crate) stores: Stores,
    /// Whether `--stores auto` chose it ([`Stores::for_op`]).
    #[serde(default)]
    pub(crate) stores_auto: bool,
    /// Data seed.
    pub(crate) seed: u64,
    /// CPU to pin to.
    pub(crate) pin: Option<u32>,
    /// How rounds are announced.
    pub(crate) sync: RoundSync,
    /// Microseconds to spin on the doorbell before sleeping.
    pub(crate) spin_us: u32,
    /// Faults to inject (first attempt only; empty otherwise).
    pub(crate) faults: Vec<InjectedFault>,
    /// The element of `a` an `oob-write` fault writes (in another worker's chunk).
    pub(crate) oob_target: Option<u64>,
    /// For a replacement: where the run stands, which its chunk must be
    /// brought to (re-filled, then the kernels replayed) before it is
    /// ready; `None` before the arrays are filled.
    pub(crate) rebuild: Option<Position>,
    /// Where its chunk's pages go (`--mem-policy`), bound before they are
    /// reserved.
    pub(crate) memory: Binding,
}

/// What the worker knows of its segment, to check an assignment against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentFacts {
    /// Elements per array.
    pub(crate) len: u64,
    /// Element type.
    pub(crate) dtype: Dtype,
    /// Worker slots.
    pub(crate) slots: usize,
    /// Elements per page.
    pub(crate) page_elems: u64,
}

/// The most kernels one run names.
pub(crate) const MAX_OPS: usize = 64;

impl Assignment {
    /// The chunk as a range.
    pub(crate) fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    /// Checks the assignment against the segment the worker attached to.
    pub(crate) fn validate(&self, seg: &SegmentFacts) -> Result<(), String> {
        if self.version != crate::VERSION {
            return Err(format!(
                "this vecpar-worker is version {} but its coordinator is {}; rebuild both (cargo build --release)",
                crate::VERSION,
                self.version
            ));
        }
        if self.id as usize >= seg.slots {
            return Err(format!("worker id {} but the segment has {} slots", self.id, seg.slots));
        }
        if self.len != seg.len || self.dtype != seg.dtype {
            return Err(format!(
                "assignment is for {} × {} but the segment holds {} × {}",
                self.len, self.dtype, seg.len, seg.dtype
            ));
        }
        if self.start > self.end || self.end > self.len {
            return Err(format!("range {}..{} is outside the array of {} elements", self.start, self.end, self.len));
        }
        let page = seg.page_elems;
        let aligned = self.start.is_multiple_of(page) && (self.end == self.len || self.end.is_multiple_of(page));
        if self.start < self.end && !aligned {
            return Err(format!("range {}..{} does not fall on page boundaries", self.start, self.end));
        }
        if self.ops.is_empty() || self.ops.len() > MAX_OPS {
            return Err(format!("{} kernels (1 to {MAX_OPS})", self.ops.len()));
        }
        if let Some(p) = self.rebuild
            && (p.kernel as usize >= self.ops.len() || p.rounds > self.rounds_per_kernel)
        {
            return Err(format!("rebuild position {p:?} is outside the run"));
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

/// What the coordinator sends a worker process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum ToWorker {
    /// The worker's job.
    Assign(Assignment),
    /// A step (with `--sync ipc`; the doorbell carries them otherwise).
    Step {
        /// The step's sequence, echoed in `Done`.
        seq: u32,
        /// The step.
        step: Step,
    },
}

/// What a worker process sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum FromWorker {
    /// First message: who I am.
    Hello {
        /// Worker id from the command line.
        id: u32,
        /// Process id.
        pid: u32,
        /// The worker binary's version.
        version: String,
    },
    /// The assignment is accepted, the chunk mapped, the pin attempted.
    Ready {
        /// What became of the pin request.
        pin: PinOutcome,
    },
    /// A step finished.
    Done {
        /// Its sequence.
        seq: u32,
        /// What it produced.
        result: StepResult,
    },
    /// The worker cannot go on; it exits after sending this.
    Failed {
        /// One line saying why.
        message: String,
    },
    /// The worker could not map its chunk; it exits after sending this.
    CannotMap {
        /// The kernel's answer.
        errno: i32,
        /// One line saying what failed.
        message: String,
    },
    /// The worker panicked (sent by its panic hook).
    Panicked {
        /// The panic message and location.
        message: String,
    },
}

/// The largest message either side sends or accepts.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;

/// Why nothing usable arrived.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecvError {
    /// Nothing within the time given.
    #[error("no message")]
    Empty,
    /// The other side closed its end (it exited).
    #[error("the channel is closed")]
    Closed,
    /// A datagram that is not a message.
    #[error("an unreadable message ({0})")]
    Garbage(String),
    /// The socket failed.
    #[error("{0}")]
    Io(Errno),
}

/// One end of a coordinator–worker channel.
#[derive(Debug)]
pub(crate) struct Channel {
    fd: OwnedFd,
}

impl Channel {
    /// A connected pair: this end, and the one to hand to a child.
    pub(crate) fn pair() -> io::Result<(Channel, OwnedFd)> {
        let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
            .map_err(io::Error::from)?;
        Ok((Channel { fd: ours }, theirs))
    }

    /// Adopts `fd`, refusing anything but a sequenced-packet socket.
    pub(crate) fn adopt(fd: OwnedFd) -> Result<Channel, String> {
        match nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::SockType) {
            Ok(SockType::SeqPacket) => Ok(Channel { fd }),
            Ok(_) | Err(Errno::ENOTSOCK) => Err("it is not a channel from vecpar-coord".into()),
            Err(e) => Err(format!("it cannot be examined ({e})")),
        }
    }

    /// A second handle on the same end (for a panic hook).
    pub(crate) fn duplicate(&self) -> io::Result<Channel> {
        Ok(Channel { fd: self.fd.try_clone()? })
    }

    /// Sends one message. A peer that is gone gives `EPIPE`, never SIGPIPE.
    pub(crate) fn send(&self, message: &impl Serialize) -> io::Result<()> {
        let bytes = serde_json::to_vec(message).map_err(io::Error::other)?;
        if bytes.len() > MAX_MESSAGE {
            return Err(io::Error::other(format!("a message of {} bytes is too long", bytes.len())));
        }
        loop {
            match send(self.fd.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_EOR) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Receives one message, waiting at most `timeout`.
    pub(crate) fn recv<M: DeserializeOwned>(&self, timeout: Duration) -> Result<M, RecvError> {
        if !self.readable(timeout)? {
            return Err(RecvError::Empty);
        }
        self.try_recv()
    }

    /// Whether a message (or the end) is waiting, within `timeout`.
    pub(crate) fn readable(&self, timeout: Duration) -> Result<bool, RecvError> {
        let ms = PollTimeout::try_from(timeout.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) | Err(Errno::EINTR) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(RecvError::Io(e)),
        }
    }

    /// Receives a message if one is waiting.
    pub(crate) fn try_recv<M: DeserializeOwned>(&self) -> Result<M, RecvError> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC) {
                Ok(n) => break n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Err(RecvError::Empty),
                Err(Errno::ECONNRESET) => return Err(RecvError::Closed),
                Err(e) => return Err(RecvError::Io(e)),
            }
        };
        if n == 0 {
            return Err(RecvError::Closed);
        }
        if n > MAX_MESSAGE {
            return Err(RecvError::Garbage(format!("{n} bytes, more than {MAX_MESSAGE}")));
        }
        serde_json::from_slice(&buf[..n]).map_err(|e| RecvError::Garbage(e.to_string()))
    }
}

/// Waits until one of `channels` is readable or `timeout` passes; returns
/// the indices of the readable ones.
pub(crate) fn poll_channels(channels: &[&Channel], timeout: Duration) -> Vec<usize> {
    let ms = PollTimeout::try_from(timeout.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
    let mut fds: Vec<PollFd<'_>> = channels.iter().map(|c| PollFd::new(c.fd.as_fd(), PollFlags::POLLIN)).collect();
    match poll(&mut fds, ms) {
        Ok(n) if n > 0 => {
            fds.iter().enumerate().filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty())).map(|(i, _)| i).collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment() -> Assignment {
        Assignment {
            version: crate::VERSION.into(),
            id: 1,
            attempt: 0,
            start: 512,
            end: 10_000,
            len: 10_000,
            base: 0,
            dtype: Dtype::F64,
            ops: vec![Op::Add],
            rounds_per_kernel: 11,
            simd: Simd::Scalar,
            stores: Stores::Regular,
            stores_auto: false,
            seed: 1,
            pin: None,
            sync: RoundSync::Doorbell,
            spin_us: 0,
            faults: vec![],
            oob_target: Some(0),
            rebuild: None,
            memory: Binding::Inherit,
        }
    }

    #[test]
    fn assignments_are_checked_against_the_segment() {
        let seg = SegmentFacts { len: 10_000, dtype: Dtype::F64, slots: 2, page_elems: 512 };
        let good = assignment();
        assert_eq!(good.validate(&seg), Ok(()));
        let bad = [
            Assignment { id: 2, ..good.clone() },
            Assignment { end: 10_001, ..good.clone() },
            Assignment { start: 3, ..good.clone() },
            Assignment { dtype: Dtype::F32, ..good.clone() },
            Assignment { len: 9, ..good.clone() },
            Assignment { oob_target: Some(600), ..good.clone() },
            Assignment { start: 1024, end: 512, ..good.clone() },
            Assignment { start: 10_001, end: 10_001, ..good.clone() },
            Assignment { ops: vec![], ..good.clone() },
            Assignment { version: "0.0.1".into(), ..good.clone() },
            Assignment { rebuild: Some(Position { kernel: 1, rounds: 0 }), ..good.clone() },
            Assignment { rebuild: Some(Position { kernel: 0, rounds: 12 }), ..good.clone() },
        ];
        // An idle worker's empty chunk may sit anywhere up to the end.
        assert_eq!(Assignment { start: 10_000, end: 10_000, oob_target: None, ..good.clone() }.validate(&seg), Ok(()));
        for b in bad {
            assert!(b.validate(&seg).is_err(), "{b:?} passed");
        }
    }

    #[test]
    fn steps_round_trip_through_the_order_words() {
        for step in [
            Step::Init { fill_c: true },
            Step::Run { op: Op::Nstream, first: 11, count: 32, op_round: 4 },
            Step::Rebuild { to: Position { kernel: 2, rounds: 7 } },
            Step::Report { op: Op::Dot },
            Step::Shutdown,
        ] {
            assert_eq!(Step::decode(&step.encode()), Some(step));
        }
        let mut bad = Step::Run { op: Op::Add, first: 0, count: 1, op_round: 0 }.encode();
        bad[3] = BATCH as u32 + 1;
        assert_eq!(Step::decode(&bad), None, "a batch larger than the tables");
        assert_eq!(Step::decode(&[99; STEP_WORDS]), None);
        assert_eq!(Step::decode(&[TAG_REPORT, 99, 0, 0, 0]), None, "no such kernel");
    }

    #[test]
    fn messages_cross_the_channel_and_garbage_is_refused() {
        let (ours, theirs) = Channel::pair().unwrap();
        let theirs = Channel::adopt(theirs).unwrap();
        ours.send(&ToWorker::Assign(assignment())).unwrap();
        assert_eq!(theirs.recv::<ToWorker>(Duration::from_secs(60)).unwrap(), ToWorker::Assign(assignment()));
        let partial = DotPartial { nodes: vec![Node { level: 3, index: 7, bits: f64::NAN.to_bits() }] };
        let done = FromWorker::Done { seq: 9, result: StepResult::Report { partial: partial.clone() } };
        theirs.send(&done).unwrap();
        let FromWorker::Done { result: StepResult::Report { partial: back }, .. } =
            ours.recv::<FromWorker>(Duration::from_secs(60)).unwrap()
        else {
            panic!("not a report")
        };
        assert_eq!(back, partial, "bits travel unchanged, NaN included");
        send(theirs.fd.as_raw_fd(), b"{\"type\":\"hello\",\"extra\":1}", MsgFlags::empty()).unwrap();
        assert!(matches!(ours.try_recv::<FromWorker>(), Err(RecvError::Garbage(_))));
        assert!(matches!(ours.try_recv::<FromWorker>(), Err(RecvError::Empty)));
        drop(theirs);
        assert!(matches!(ours.recv::<FromWorker>(Duration::from_secs(60)), Err(RecvError::Closed)));
        let (file, _) = (std::fs::File::open("/dev/null").unwrap(), ());
        assert!(Channel::adopt(OwnedFd::from(file)).is_err(), "a file is not a channel");
    }
}
