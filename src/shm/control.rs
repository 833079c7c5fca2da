//! The control block: a doorbell, a gate, and one slot per worker, in the
//! shared segment right after the header.
//!
//! A round must cost microseconds, not an IPC round trip, and the
//! coordinator must not be on the round's critical path: with two CPUs and
//! two workers, a third thread that has to be woken between rounds always
//! finds its CPU taken. So the coordinator rings once for a *batch* of
//! rounds and the workers pace themselves, as OpenMP threads or MPI ranks
//! do: after each round a worker counts itself in; the last one to arrive
//! stamps the release time of the next round and opens the gate. Waiters
//! spin for a bounded time, then sleep with `futex(2)`. Each worker writes
//! its timings into its own slot (whole cache-line pairs, so workers never
//! share a line).
//!
//! Every batch is tagged with its bell number (its *sequence*), and so is
//! everything that refers to it: the gate, the arrival counter, a slot's
//! progress and its last completed sequence, the abort flag. A worker still
//! inside an old, aborted batch can therefore never open a gate, count an
//! arrival or finish a step of a newer one. The coordinator decides that a
//! step is done from every live worker's own slot (its `done` sequence), and
//! after an abort it waits until every surviving worker has left the batch
//! before it rings again.
//!
//! The futexes are *shared* (not `FUTEX_PRIVATE_FLAG`) because the words are
//! in memory mapped by several processes; threads mode uses the same words,
//! so both modes pay the same.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::kernel::Op;
use crate::kernel::data::Expect;
use crate::protocol::Step;

/// Rounds in one batch at most (the size of the per-round tables).
pub(crate) const BATCH: usize = 32;

/// A 32-bit word others can wait on, with a count of sleepers so that
/// notifying costs no syscall when everyone is spinning.
#[derive(Debug)]
#[repr(C, align(128))]
pub(crate) struct Beacon {
    value: AtomicU32,
    sleepers: AtomicU32,
}

impl Beacon {
    #[cfg(test)]
    fn new(v: u32) -> Beacon {
        Beacon { value: AtomicU32::new(v), sleepers: AtomicU32::new(0) }
    }

    /// The current value.
    #[inline]
    pub(crate) fn load(&self) -> u32 {
        self.value.load(Ordering::Acquire)
    }

    /// Sets the value and wakes every sleeper.
    #[inline]
    fn set_and_wake_all(&self, v: u32) {
        self.value.store(v, Ordering::SeqCst);
        self.wake();
    }

    /// Adds one and wakes every sleeper. Returns the new value.
    #[inline]
    fn bump_and_wake_all(&self) -> u32 {
        let v = self.value.fetch_add(1, Ordering::SeqCst).wrapping_add(1);
        self.wake();
        v
    }

    /// Wakes sleepers if there are any.
    #[inline]
    fn wake(&self) {
        // SeqCst on both sides: either the sleeper registered before this
        // load (and is woken), or its futex_wait sees the new value and
        // does not sleep.
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            futex_wake(&self.value);
        }
    }

    /// Spins for at most `spin` while `keep` holds for the value; returns
    /// the value seen last. A `polite` spinner yields its CPU between
    /// batches of checks: right when the thread it waits for needs that
    /// CPU; wrong when it waits for a peer on another CPU, where every yield
    /// is a chance for the scheduler to run something else first.
    #[inline]
    fn spin_while(&self, spin: Duration, polite: bool, keep: impl Fn(u32) -> bool) -> u32 {
        let mut v = self.value.load(Ordering::Acquire);
        if spin.is_zero() || !keep(v) {
            return v;
        }
        let started = Instant::now();
        loop {
            if polite {
                std::thread::yield_now();
            }
            for _ in 0..64 {
                std::hint::spin_loop();
                v = self.value.load(Ordering::Acquire);
                if !keep(v) {
                    return v;
                }
            }
            if started.elapsed() >= spin {
                return v;
            }
        }
    }

    /// Waits while the value equals `current`: spins for up to `spin`, then
    /// sleeps, until it changes or `timeout` passes. Returns the value seen
    /// last.
    pub(crate) fn wait_while_equal(&self, current: u32, spin: Duration, polite: bool, timeout: Duration) -> u32 {
        let v = self.spin_while(spin, polite, |v| v == current);
        if v != current {
            return v;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.value.load(Ordering::Acquire);
            if v != current {
                return v;
            }
            let now = Instant::now();
            if now >= deadline {
                return v;
            }
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            futex_wait(&self.value, current, deadline - now);
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A 64-bit counter tagged with a sequence: `(sequence << 32) | count`.
#[derive(Debug)]
#[repr(C, align(128))]
struct Tally(AtomicU64);

impl Tally {
    /// Counts one for `seq` (restarting from zero for a new sequence, never
    /// touching a newer one); returns the count, or `None` when a newer
    /// sequence owns the tally.
    fn count(&self, seq: u32) -> Option<u32> {
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            let tag = (cur >> 32) as u32;
            let next = if tag == seq {
                cur + 1
            } else if seq.wrapping_sub(tag) < u32::MAX / 2 {
                (u64::from(seq) << 32) | 1
            } else {
                return None;
            };
            match self.0.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(next as u32),
                Err(seen) => cur = seen,
            }
        }
    }
}

/// The encoded step, published before the bell rings (written by the
/// coordinator only).
#[derive(Debug)]
#[repr(C, align(128))]
struct OrderWords {
    words: [AtomicU32; ORDER_WORDS],
}

const ORDER_WORDS: usize = 8;

/// The start of the control block.
#[derive(Debug)]
#[repr(C)]
struct ControlHeader {
    /// Bumped once per step: the step's sequence.
    bell: Beacon,
    order: OrderWords,
    /// Within a batch: `(seq << 8) | k` of the last round released.
    gate: Beacon,
    /// Within a batch: rounds finished, summed over workers.
    arrivals: Tally,
    /// Workers done with the step.
    done: Tally,
    /// Woken by the last worker done with a step.
    done_bell: Beacon,
    /// The sequence of the aborted batch, if any.
    abort: Beacon,
    /// Release time of each round of the batch (CLOCK_MONOTONIC ns).
    release_ns: [AtomicU64; BATCH],
}

/// One worker's timing of one round of a batch.
#[derive(Debug)]
#[repr(C)]
struct Stamp {
    start_ns: AtomicU64,
    end_ns: AtomicU64,
    cpu: AtomicU32,
    _pad: u32,
}

/// Per-worker state, written by the worker (and by its fault handler).
#[derive(Debug)]
#[repr(C, align(128))]
pub(crate) struct Slot {
    /// The last step sequence completed.
    done_seq: AtomicU32,
    /// The step sequence the worker is in.
    batch: AtomicU32,
    /// Rounds of `batch` finished.
    progress: AtomicU32,
    /// 1 while the worker waits for its peers (not hung, just waiting).
    waiting: AtomicU32,
    /// Bumped as the worker makes progress through long work.
    heartbeat: AtomicU64,
    /// Set by the fault handler: the signal number.
    pub(super) fault_signal: AtomicU32,
    /// Set by the fault handler: `si_code`.
    pub(super) fault_code: AtomicU32,
    /// Set by the fault handler: the faulting address.
    pub(super) fault_addr: AtomicU64,
    /// Set by the fault handler: what the address is (see [`FaultSite`]).
    pub(super) fault_site: AtomicU32,
    /// Set by the fault handler: the element index the address falls on.
    pub(super) fault_index: AtomicU64,
    stamps: [Stamp; BATCH],
}

/// Size of the control block for `slots` workers, before page rounding.
pub(super) fn control_bytes(slots: usize) -> Option<usize> {
    slots.checked_mul(size_of::<Slot>())?.checked_add(size_of::<ControlHeader>())
}

/// Where a worker's fatal signal struck, as its fault handler saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultSite {
    /// Nowhere the recorder knows.
    Elsewhere,
    /// An element of one of the arrays.
    Array(crate::vocab::Array, u64),
    /// The guard page below the stack.
    StackGuard,
}

/// What a worker's fault handler recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FaultNote {
    /// The signal.
    pub(crate) signal: i32,
    /// Its `si_code`.
    pub(crate) code: i32,
    /// Where it struck.
    pub(crate) site: FaultSite,
}

impl FaultSite {
    pub(super) fn encode(self) -> (u32, u64) {
        match self {
            FaultSite::Elsewhere => (0, 0),
            FaultSite::Array(a, i) => (1 + a.index() as u32, i),
            FaultSite::StackGuard => (9, 0),
        }
    }

    fn decode(code: u32, index: u64) -> FaultSite {
        match code {
            1..=3 => FaultSite::Array(crate::vocab::Array::ALL[code as usize - 1], index),
            9 => FaultSite::StackGuard,
            _ => FaultSite::Elsewhere,
        }
    }
}

/// A view of a mapped control block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Control<'m> {
    header: &'m ControlHeader,
    slots: &'m [Slot],
}

/// One round's timing as a worker recorded it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RoundStamp {
    /// CLOCK_MONOTONIC at the start of the kernel, ns.
    pub(crate) start_ns: u64,
    /// CLOCK_MONOTONIC at its end, ns.
    pub(crate) end_ns: u64,
    /// The CPU at the end (`u32::MAX`: unknown).
    pub(crate) cpu: u32,
}

/// Where a worker stands in the current step, as the coordinator sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Standing {
    /// It finished the step.
    pub(crate) done: bool,
    /// Rounds of the batch it finished.
    pub(crate) progress: u32,
    /// It is waiting for its peers.
    pub(crate) waiting: bool,
    /// Its heartbeat.
    pub(crate) heartbeat: u64,
}

impl<'m> Control<'m> {
    /// # Safety
    /// `base` points to at least `control_bytes(slots)` bytes, aligned to 128,
    /// mapped read-write for `'m`, and only ever accessed through atomics.
    pub(super) unsafe fn from_raw(base: *mut u8, slots: usize) -> Control<'m> {
        // SAFETY: the caller guarantees size, alignment and lifetime. Every
        // field is an atomic integer, for which any bit pattern (including
        // the zeroes of a fresh segment) is valid, and atomics may be shared
        // between threads and processes.
        unsafe {
            let header = &*(base as *const ControlHeader);
            let slots_ptr = base.add(size_of::<ControlHeader>()) as *const Slot;
            let slots = std::slice::from_raw_parts(slots_ptr, slots);
            Control { header, slots }
        }
    }

    /// The number of worker slots.
    pub(crate) fn slots(&self) -> usize {
        self.slots.len()
    }

    pub(super) fn slot(&self, id: usize) -> &'m Slot {
        &self.slots[id]
    }

    // ---- the coordinator's side ----

    /// Publishes `step` for `expected` workers and rings the bell; the first
    /// round of a batch is released at `ring_ns`. Returns the step's
    /// sequence.
    pub(crate) fn ring(&self, step: &Step, expected: u32, ring_ns: u64) -> u32 {
        let h = self.header;
        let mut words = encode(step);
        words[ORDER_WORDS - 1] = expected;
        for (w, v) in h.order.words.iter().zip(words) {
            w.store(v, Ordering::Relaxed);
        }
        h.release_ns[0].store(ring_ns, Ordering::Relaxed);
        // SeqCst, after every field above: a worker that sees the new
        // sequence sees the step.
        h.bell.bump_and_wake_all()
    }

    /// Where worker `id` stands in step `seq`.
    pub(crate) fn standing(&self, id: usize, seq: u32) -> Standing {
        let s = &self.slots[id];
        let in_batch = s.batch.load(Ordering::Acquire) == seq;
        let progress = if in_batch { s.progress.load(Ordering::Acquire) } else { 0 };
        // Waiting for its peers only while the round it waits for (the
        // one after those it finished) is not yet released: a worker still
        // "waiting" at an open gate is not waiting for anyone — it is
        // stopped (SIGSTOP), and must run out of patience like any other.
        let g = self.header.gate.load();
        let released = if g >> 8 == seq & 0x00FF_FFFF { g & 0xFF } else { 0 };
        Standing {
            done: s.done_seq.load(Ordering::Acquire) == seq,
            progress,
            waiting: s.waiting.load(Ordering::Acquire) != 0 && in_batch && released < progress,
            heartbeat: s.heartbeat.load(Ordering::Acquire),
        }
    }

    /// Sleeps until a worker reports the end of a step, or `timeout`.
    pub(crate) fn wait_for_reports(&self, spin: Duration, timeout: Duration) {
        let v = self.header.done_bell.load();
        self.header.done_bell.wait_while_equal(v, spin, true, timeout);
    }

    /// Stops batch `seq`: waiting workers leave it.
    pub(crate) fn abort(&self, seq: u32) {
        self.header.abort.set_and_wake_all(seq);
        self.header.gate.bump_and_wake_all();
        self.header.done_bell.bump_and_wake_all();
    }

    /// When round `k` of the batch was released.
    pub(crate) fn release_ns(&self, k: usize) -> u64 {
        self.header.release_ns[k].load(Ordering::Acquire)
    }

    /// Worker `id`'s timing of round `k` of the batch.
    pub(crate) fn stamp_of(&self, id: usize, k: usize) -> RoundStamp {
        let s = &self.slots[id].stamps[k];
        RoundStamp {
            start_ns: s.start_ns.load(Ordering::Acquire),
            end_ns: s.end_ns.load(Ordering::Acquire),
            cpu: s.cpu.load(Ordering::Acquire),
        }
    }

    /// What worker `id`'s fault handler recorded, if anything.
    pub(crate) fn fault_note(&self, id: usize) -> Option<FaultNote> {
        let s = &self.slots[id];
        let signal = s.fault_signal.load(Ordering::Acquire) as i32;
        (signal != 0).then(|| FaultNote {
            signal,
            code: s.fault_code.load(Ordering::Acquire) as i32,
            site: FaultSite::decode(s.fault_site.load(Ordering::Acquire), s.fault_index.load(Ordering::Acquire)),
        })
    }

    /// Clears worker `id`'s slot for a fresh process or thread.
    pub(crate) fn clear_slot(&self, id: usize) {
        let s = &self.slots[id];
        for f in [&s.fault_signal, &s.fault_code, &s.fault_site, &s.waiting] {
            f.store(0, Ordering::Relaxed);
        }
        for f in [&s.fault_addr, &s.fault_index] {
            f.store(0, Ordering::Relaxed);
        }
    }

    // ---- a worker's side ----

    /// The current sequence.
    pub(crate) fn bell(&self) -> u32 {
        self.header.bell.load()
    }

    /// Waits (spinning for up to `spin`, then sleeping at most `timeout`)
    /// for a sequence other than `seen`.
    pub(crate) fn wait_for_bell(&self, seen: u32, spin: Duration, timeout: Duration) -> u32 {
        self.header.bell.wait_while_equal(seen, spin, true, timeout)
    }

    /// The step published with the current sequence and the number of
    /// workers taking part; `None` if the words do not decode.
    pub(crate) fn order(&self) -> Option<(Step, u32)> {
        let words: [u32; ORDER_WORDS] = std::array::from_fn(|i| self.header.order.words[i].load(Ordering::Acquire));
        Some((decode(&words)?, words[ORDER_WORDS - 1]))
    }

    /// Worker `id` enters step `seq`.
    pub(crate) fn enter(&self, id: usize, seq: u32) {
        let s = &self.slots[id];
        s.progress.store(0, Ordering::Relaxed);
        s.batch.store(seq, Ordering::Release);
    }

    /// Whether batch `seq` was aborted.
    pub(crate) fn aborted(&self, seq: u32) -> bool {
        self.header.abort.load() == seq
    }

    /// Records worker `id`'s timing of round `k` of the batch.
    pub(crate) fn stamp(&self, id: usize, k: usize, stamp: RoundStamp) {
        let s = &self.slots[id].stamps[k];
        s.start_ns.store(stamp.start_ns, Ordering::Relaxed);
        s.end_ns.store(stamp.end_ns, Ordering::Relaxed);
        s.cpu.store(stamp.cpu, Ordering::Relaxed);
    }

    /// Counts worker `id` in after round `k` of batch `seq` of `count`
    /// rounds; the last of `expected` workers releases round `k + 1`.
    pub(crate) fn arrive(&self, id: usize, seq: u32, k: u32, count: u32, expected: u32) {
        self.slots[id].progress.store(k + 1, Ordering::Release);
        let h = self.header;
        if let Some(n) = h.arrivals.count(seq)
            && n == expected * (k + 1)
            && k + 1 < count
        {
            h.release_ns[(k + 1) as usize].store(crate::clock::now_ns(), Ordering::Relaxed);
            h.gate.set_and_wake_all(gate_value(seq, k + 1));
        }
    }

    /// Waits until round `k` of batch `seq` is released; `false` if the
    /// batch was aborted.
    pub(crate) fn await_round(&self, id: usize, seq: u32, k: u32, spin: Duration) -> bool {
        let gate = &self.header.gate;
        let waiting = &self.slots[id].waiting;
        waiting.store(1, Ordering::Release);
        let released = loop {
            if self.aborted(seq) {
                break false;
            }
            let g = gate.load();
            if g >> 8 == seq & 0x00FF_FFFF && g & 0xFF >= k {
                break true;
            }
            gate.wait_while_equal(g, spin, false, Duration::from_millis(100));
        };
        waiting.store(0, Ordering::Release);
        released
    }

    /// Marks worker `id` done with step `seq` of `expected` workers.
    pub(crate) fn report_done(&self, id: usize, seq: u32, expected: u32) {
        self.slots[id].done_seq.store(seq, Ordering::Release);
        let h = self.header;
        if h.done.count(seq).is_some_and(|n| n >= expected) {
            h.done_bell.bump_and_wake_all();
        }
    }

    /// Worker `id`'s heartbeat.
    pub(crate) fn pulse(&self, id: usize) -> Pulse<'m> {
        Pulse(Some(&self.slots[id].heartbeat))
    }
}

/// The gate word for round `k` of batch `seq`.
fn gate_value(seq: u32, k: u32) -> u32 {
    ((seq & 0x00FF_FFFF) << 8) | (k & 0xFF)
}

/// A worker's heartbeat: bumped while it works through something long, so
/// that the coordinator can tell a slow worker from a hung one.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pulse<'m>(Option<&'m AtomicU64>);

impl Pulse<'_> {
    /// One more sign of life.
    #[inline]
    pub(crate) fn beat(&self) {
        if let Some(h) = self.0 {
            h.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// The step, encoded in the order words, in one place.
const TAG_INIT: u32 = 1;
const TAG_RUN: u32 = 2;
const TAG_VALIDATE: u32 = 3;
const TAG_SHUTDOWN: u32 = 4;

fn encode(step: &Step) -> [u32; ORDER_WORDS] {
    let mut w = [0u32; ORDER_WORDS];
    match *step {
        Step::Init { fill_c } => {
            w[0] = TAG_INIT;
            w[1] = u32::from(fill_c);
        }
        Step::Run { op, first, count, op_round } => {
            w[0] = TAG_RUN;
            w[1] = op.code();
            w[2] = first;
            w[3] = count;
            w[4] = op_round;
        }
        Step::Validate { op, expect } => {
            w[0] = TAG_VALIDATE;
            w[1] = op.code();
            w[2] = expect.c_writer.map_or(0, |o| o.code() + 1);
            w[3] = u32::from(expect.c_filled);
            w[4] = expect.a_updates;
            w[5] = expect.seed as u32;
            w[6] = (expect.seed >> 32) as u32;
        }
        Step::Shutdown => w[0] = TAG_SHUTDOWN,
    }
    w
}

fn decode(w: &[u32; ORDER_WORDS]) -> Option<Step> {
    Some(match w[0] {
        TAG_INIT => Step::Init { fill_c: w[1] != 0 },
        TAG_RUN => {
            let count = w[3];
            if count == 0 || count as usize > BATCH {
                return None;
            }
            Step::Run { op: Op::from_code(w[1])?, first: w[2], count, op_round: w[4] }
        }
        TAG_VALIDATE => Step::Validate {
            op: Op::from_code(w[1])?,
            expect: Expect {
                c_writer: match w[2] {
                    0 => None,
                    code => Some(Op::from_code(code - 1)?),
                },
                c_filled: w[3] != 0,
                a_updates: w[4],
                seed: u64::from(w[5]) | (u64::from(w[6]) << 32),
            },
        },
        TAG_SHUTDOWN => Step::Shutdown,
        _ => return None,
    })
}

/// Sleeps while `*word == expected`, at most `timeout` (spurious wake-ups are
/// fine: callers re-check).
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a valid, aligned 32-bit atomic for the duration of
    // the call, and `ts` is a valid timespec on our stack. FUTEX_WAIT only
    // reads the word; the result (EAGAIN, ETIMEDOUT, EINTR) needs no
    // handling because every caller re-checks the word.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes every waiter on `word`.
fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned 32-bit atomic; FUTEX_WAKE does not
    // access memory through the pointer beyond identifying the futex.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX, 0usize, 0usize, 0u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn slots_do_not_share_cache_lines() {
        assert_eq!(size_of::<Slot>() % 128, 0);
        assert_eq!(size_of::<Beacon>(), 128);
        assert_eq!(size_of::<Stamp>(), 24);
        assert_eq!(control_bytes(usize::MAX), None, "an overflowing slot count is refused");
    }

    #[test]
    fn steps_round_trip_through_the_order_words() {
        let expect = Expect { seed: u64::MAX - 5, c_filled: true, c_writer: Some(Op::Triad), a_updates: 7 };
        for step in [
            Step::Init { fill_c: true },
            Step::Run { op: Op::Nstream, first: 11, count: 32, op_round: 4 },
            Step::Validate { op: Op::Dot, expect },
            Step::Validate { op: Op::Copy, expect: Expect { c_writer: None, ..expect } },
            Step::Shutdown,
        ] {
            assert_eq!(decode(&encode(&step)), Some(step));
        }
        let mut bad = encode(&Step::Run { op: Op::Add, first: 0, count: 1, op_round: 0 });
        bad[3] = BATCH as u32 + 1;
        assert_eq!(decode(&bad), None, "a batch larger than the tables");
        assert_eq!(decode(&[99; ORDER_WORDS]), None);
    }

    #[test]
    fn a_stale_batch_cannot_count_in_a_newer_one() {
        let t = Tally(AtomicU64::new(0));
        assert_eq!(t.count(5), Some(1));
        assert_eq!(t.count(5), Some(2));
        assert_eq!(t.count(6), Some(1), "a new sequence starts over");
        assert_eq!(t.count(5), None, "the old one no longer counts");
        assert_eq!(t.count(6), Some(2));
        assert_eq!(gate_value(0x0100_0002, 3), (2 << 8) | 3);
    }

    #[test]
    fn a_sleeper_is_woken_by_a_bump() {
        let beacon = Arc::new(Beacon::new(5));
        let b2 = Arc::clone(&beacon);
        let t = std::thread::spawn(move || b2.wait_while_equal(5, Duration::ZERO, true, Duration::from_secs(600)));
        while beacon.sleepers.load(Ordering::SeqCst) == 0 && !t.is_finished() {
            std::thread::yield_now();
        }
        beacon.bump_and_wake_all();
        assert_eq!(t.join().unwrap(), 6, "woken long before the 600 s timeout");
    }
}
