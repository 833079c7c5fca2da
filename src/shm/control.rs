//! The control block: a doorbell, a done counter and one slot per worker, in
//! the shared segment right after the header.
//!
//! A round must cost microseconds, not an IPC round trip, and the
//! coordinator must not be on the round's critical path: with two CPUs and
//! two workers, a third thread that has to be woken between rounds always
//! finds its CPU taken. So the coordinator rings once for a *batch* of
//! rounds and the workers pace themselves, as OpenMP threads or MPI ranks
//! do: after each round a worker counts itself in (`arrivals`, cumulative
//! over the batch); the last one to arrive stamps the release time of the
//! next round and opens the `gate`. Waiters spin for a bounded time, then
//! sleep with `futex(2)`. Each worker writes its timings into its own slot
//! (whole cache-line pairs, so workers never share a line); when a worker
//! finishes the batch it counts itself done, and the last one wakes the
//! coordinator. A [`Beacon`] skips the wake syscall when nobody sleeps, so a
//! round where everyone spins costs a few cache-line transfers.
//!
//! When a worker is lost mid-batch the coordinator sets `abort` and opens
//! the gate: the others leave the batch, and the rounds every worker
//! completed (`arrivals / expected`) stand.
//!
//! The futexes are *shared* (not `FUTEX_PRIVATE_FLAG`) because the word is in
//! memory mapped by several processes; threads mode uses the same words, so
//! both modes pay the same.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A 32-bit word others can wait on, with a count of sleepers so that
/// notifying costs no syscall when everyone is spinning.
#[derive(Debug)]
#[repr(C, align(128))]
pub struct Beacon {
    value: AtomicU32,
    sleepers: AtomicU32,
}

impl Beacon {
    /// The current value.
    #[inline]
    pub fn load(&self) -> u32 {
        self.value.load(Ordering::Acquire)
    }

    /// Sets the value without waking anyone (for resets before a round).
    #[inline]
    pub fn store_quiet(&self, v: u32) {
        self.value.store(v, Ordering::SeqCst);
    }

    /// Sets the value and wakes every sleeper.
    #[inline]
    pub fn set_and_wake_all(&self, v: u32) {
        self.value.store(v, Ordering::SeqCst);
        self.wake(i32::MAX);
    }

    /// Adds one and wakes every sleeper. Returns the new value.
    #[inline]
    pub fn bump_and_wake_all(&self) -> u32 {
        let v = self.value.fetch_add(1, Ordering::SeqCst).wrapping_add(1);
        self.wake(i32::MAX);
        v
    }

    /// Adds one; wakes sleepers only if the new value is `target`. Returns the new value.
    #[inline]
    pub fn count_up_to(&self, target: u32) -> u32 {
        let v = self.value.fetch_add(1, Ordering::SeqCst).wrapping_add(1);
        if v == target {
            self.wake(i32::MAX);
        }
        v
    }

    /// Wakes sleepers if there are any.
    #[inline]
    pub fn wake(&self, count: i32) {
        // SeqCst on both sides: either the sleeper registered before this
        // load (and is woken), or its futex_wait sees the new value and
        // does not sleep.
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            futex_wake(&self.value, count);
        }
    }

    /// Spins for at most `spin` while `keep_spinning` holds for the value;
    /// returns the value seen last. A `polite` spinner yields its CPU between
    /// batches of checks: right when the thread it waits for needs that CPU
    /// (workers waiting for the coordinator, with every CPU taken by a
    /// worker); wrong when it waits for a peer on another CPU, where every
    /// yield is a chance for the scheduler to run something else first.
    #[inline]
    fn spin_while(&self, spin: Duration, polite: bool, keep_spinning: impl Fn(u32) -> bool) -> u32 {
        let mut v = self.value.load(Ordering::Acquire);
        if spin.is_zero() || !keep_spinning(v) {
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
                if !keep_spinning(v) {
                    return v;
                }
            }
            if started.elapsed() >= spin {
                return v;
            }
        }
    }

    /// Waits while the value equals `current`: spins for up to `spin`
    /// (politely: see `spin_while`), then sleeps, until the value changes or
    /// `timeout` passes. Returns the value seen last.
    pub fn wait_while_equal(&self, current: u32, spin: Duration, polite: bool, timeout: Duration) -> u32 {
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

    /// Waits until the value reaches at least `target` (a counter), spinning
    /// for up to `spin`, then sleeping, at most `timeout` in all. Returns the
    /// value seen last.
    pub fn wait_for_count(&self, target: u32, spin: Duration, timeout: Duration) -> u32 {
        let deadline = Instant::now() + timeout;
        let mut v = self.spin_while(spin.min(timeout), true, |v| v < target);
        while v < target {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            futex_wait(&self.value, v, deadline - now);
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            v = self.load();
        }
        v
    }
}

/// What the workers are asked to do, published before the doorbell rings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Command {
    /// Nothing yet.
    Idle = 0,
    /// Reserve, fill and first-touch your chunk.
    Init = 1,
    /// Compute your chunk for the round.
    Run = 2,
    /// Check your chunk and digest c.
    Validate = 3,
    /// Exit.
    Shutdown = 4,
}

impl Command {
    fn from_u32(v: u32) -> Option<Command> {
        Some(match v {
            0 => Command::Idle,
            1 => Command::Init,
            2 => Command::Run,
            3 => Command::Validate,
            4 => Command::Shutdown,
            _ => return None,
        })
    }
}

/// Rounds in one batch at most (the size of the per-round tables).
pub const BATCH: usize = 32;

/// The fields of the current command (written by the coordinator only,
/// except `abort`, which only the coordinator sets).
#[derive(Debug)]
#[repr(C, align(128))]
pub struct OrderWords {
    command: AtomicU32,
    round: AtomicU32,
    count: AtomicU32,
    expected: AtomicU32,
    abort: AtomicU32,
}

/// A cache-line-pair-aligned counter.
#[derive(Debug)]
#[repr(C, align(128))]
pub struct Counter(AtomicU32);

/// The start of the control block.
#[derive(Debug)]
#[repr(C)]
pub struct ControlHeader {
    /// Bumped once per command.
    pub bell: Beacon,
    /// The command the bell announces.
    pub order: OrderWords,
    /// Within a batch: the index of the last round released.
    pub gate: Beacon,
    /// Within a batch: rounds finished, summed over workers.
    pub arrivals: Counter,
    /// Workers done with the current command.
    pub done: Beacon,
    /// Release time of each round of the batch (CLOCK_MONOTONIC ns).
    pub release_ns: [AtomicU64; BATCH],
}

/// One worker's timing of one round of a batch.
#[derive(Debug)]
#[repr(C)]
pub struct Stamp {
    /// CLOCK_MONOTONIC at the start of the kernel, ns.
    pub start_ns: AtomicU64,
    /// CLOCK_MONOTONIC at its end, ns.
    pub end_ns: AtomicU64,
    /// The CPU at the end.
    pub cpu: AtomicU32,
    _pad: u32,
}

/// Per-worker status, written by the worker (and by its fault handler).
#[derive(Debug)]
#[repr(C, align(128))]
pub struct Slot {
    /// The bell sequence number of the last command completed.
    pub done_seq: AtomicU32,
    /// 0 when the last command succeeded, else a [`SlotStatus`] code.
    pub status: AtomicU32,
    /// Detail for the status (an errno, or the mismatching array).
    pub status_detail: AtomicU32,
    /// The CPU the worker was on when it finished.
    pub cpu: AtomicU32,
    /// CLOCK_MONOTONIC when the worker started the command, ns.
    pub start_ns: AtomicU64,
    /// CLOCK_MONOTONIC when it finished, ns.
    pub end_ns: AtomicU64,
    /// Validation: the first bad index.
    pub bad_index: AtomicU64,
    /// Validation: the bad value's bits.
    pub bad_got: AtomicU64,
    /// Validation: the expected value's bits.
    pub bad_expected: AtomicU64,
    /// Validation: the digest of the worker's chunk of c.
    pub digest: AtomicU64,
    /// Set by the fault handler: the signal number.
    pub fault_signal: AtomicU32,
    /// Set by the fault handler: `si_code`.
    pub fault_code: AtomicU32,
    /// Set by the fault handler: the faulting address.
    pub fault_addr: AtomicU64,
    /// Set by the fault handler: 1 + the array the address falls in (0: none).
    pub fault_array: AtomicU32,
    /// Set by the fault handler: the element index the address falls on.
    pub fault_index: AtomicU64,
    /// Rounds of the current batch this worker has finished.
    pub progress: AtomicU32,
    /// Per-round timings of the current batch.
    pub stamps: [Stamp; BATCH],
}

/// What a slot's status code means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum SlotStatus {
    /// The command succeeded.
    Ok = 0,
    /// Validation found a wrong element (detail: the array, 0 = a).
    Mismatch = 1,
    /// Reserving the chunk's memory failed (detail: errno).
    ReserveFailed = 2,
    /// Mapping or protecting the chunk failed (detail: errno).
    MapFailed = 3,
}

impl SlotStatus {
    /// Decodes a status code.
    pub fn from_u32(v: u32) -> Option<SlotStatus> {
        Some(match v {
            0 => SlotStatus::Ok,
            1 => SlotStatus::Mismatch,
            2 => SlotStatus::ReserveFailed,
            3 => SlotStatus::MapFailed,
            _ => return None,
        })
    }
}

/// Size of the control block for `slots` workers, before page rounding.
pub(crate) fn control_bytes(slots: usize) -> usize {
    size_of::<ControlHeader>() + slots * size_of::<Slot>()
}

/// A view of a mapped control block.
#[derive(Debug)]
pub struct Control<'m> {
    header: &'m ControlHeader,
    slots: &'m [Slot],
}

impl<'m> Control<'m> {
    /// # Safety
    /// `base` points to at least `control_bytes(slots)` bytes, aligned to 128,
    /// mapped read-write for `'m`, and only ever accessed through atomics.
    pub(crate) unsafe fn from_raw(base: *mut u8, slots: usize) -> Control<'m> {
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

    /// The doorbell.
    pub fn bell(&self) -> &'m Beacon {
        &self.header.bell
    }

    /// The done counter.
    pub fn done(&self) -> &'m Beacon {
        &self.header.done
    }

    /// Worker `id`'s slot.
    pub fn slot(&self, id: usize) -> &'m Slot {
        &self.slots[id]
    }

    /// The number of slots.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Publishes a command (for `count` rounds from `round`, if it is
    /// `Run`) for `expected` workers and rings the bell at `ring_ns`.
    /// Returns the new sequence number.
    pub fn ring(&self, command: Command, round: u32, count: u32, expected: u32, ring_ns: u64) -> u32 {
        let h = self.header;
        h.order.command.store(command as u32, Ordering::Relaxed);
        h.order.round.store(round, Ordering::Relaxed);
        h.order.count.store(count.clamp(1, BATCH as u32), Ordering::Relaxed);
        h.order.expected.store(expected, Ordering::Relaxed);
        h.order.abort.store(0, Ordering::Relaxed);
        h.gate.store_quiet(0);
        h.arrivals.0.store(0, Ordering::Relaxed);
        h.done.store_quiet(0);
        h.release_ns[0].store(ring_ns, Ordering::Relaxed);
        for slot in self.slots {
            slot.progress.store(0, Ordering::Relaxed);
        }
        // The bump is SeqCst and every field above is written before it, so a
        // worker that sees the new sequence number sees the command.
        h.bell.bump_and_wake_all()
    }

    /// The command published with the current sequence number.
    pub fn order(&self) -> Order {
        let o = &self.header.order;
        Order {
            command: Command::from_u32(o.command.load(Ordering::Acquire)).unwrap_or(Command::Shutdown),
            round: o.round.load(Ordering::Acquire),
            count: o.count.load(Ordering::Acquire).clamp(1, BATCH as u32),
            expected: o.expected.load(Ordering::Acquire),
        }
    }

    /// Records worker `id`'s timing of round `k` of the batch.
    pub fn stamp(&self, id: usize, k: usize, start_ns: u64, end_ns: u64, cpu: u32) {
        let s = &self.slots[id].stamps[k];
        s.start_ns.store(start_ns, Ordering::Relaxed);
        s.end_ns.store(end_ns, Ordering::Relaxed);
        s.cpu.store(cpu, Ordering::Relaxed);
    }

    /// Worker `id`'s timing of round `k` of the batch: (start, end, cpu).
    pub fn stamp_of(&self, id: usize, k: usize) -> (u64, u64, u32) {
        let s = &self.slots[id].stamps[k];
        (s.start_ns.load(Ordering::Acquire), s.end_ns.load(Ordering::Acquire), s.cpu.load(Ordering::Acquire))
    }

    /// Sets when round `k` of the batch was released (for teams that pace
    /// rounds themselves).
    pub fn set_release_ns(&self, k: usize, ns: u64) {
        self.header.release_ns[k].store(ns, Ordering::Relaxed);
    }

    /// When round `k` of the batch was released.
    pub fn release_ns(&self, k: usize) -> u64 {
        self.header.release_ns[k].load(Ordering::Acquire)
    }

    /// Counts worker `id` in after round `k` of a batch of `count`; the last
    /// of `expected` workers releases round `k + 1`.
    pub fn arrive(&self, id: usize, k: u32, count: u32, expected: u32) {
        self.slots[id].progress.store(k + 1, Ordering::Release);
        let h = self.header;
        let n = h.arrivals.0.fetch_add(1, Ordering::AcqRel) + 1;
        if n == expected * (k + 1) && k + 1 < count {
            h.release_ns[(k + 1) as usize].store(crate::clock::now_ns(), Ordering::Relaxed);
            h.gate.set_and_wake_all(k + 1);
        }
    }

    /// Waits until round `k` is released; `false` if the batch was aborted.
    pub fn await_round(&self, k: u32, spin: Duration) -> bool {
        let gate = &self.header.gate;
        loop {
            if self.aborted() {
                return false;
            }
            let g = gate.load();
            if g >= k {
                return true;
            }
            gate.wait_while_equal(g, spin, false, Duration::from_millis(100));
        }
    }

    /// Rounds of the batch every worker finished.
    pub fn completed_rounds(&self) -> u32 {
        let expected = self.header.order.expected.load(Ordering::Acquire).max(1);
        self.header.arrivals.0.load(Ordering::Acquire) / expected
    }

    /// Stops the batch: waiting workers leave it.
    pub fn abort(&self) {
        self.header.order.abort.store(1, Ordering::SeqCst);
        self.header.gate.bump_and_wake_all();
    }

    /// Whether the batch was aborted.
    pub fn aborted(&self) -> bool {
        self.header.order.abort.load(Ordering::Acquire) != 0
    }

    /// Marks the slot's command `seq` done and counts it.
    pub fn report_done(&self, id: usize, seq: u32) {
        self.slots[id].done_seq.store(seq, Ordering::Release);
        let expected = self.header.order.expected.load(Ordering::Acquire);
        self.header.done.count_up_to(expected);
    }
}

/// A command as workers read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    /// What to do.
    pub command: Command,
    /// The first round (for `Run`).
    pub round: u32,
    /// Rounds in the batch (for `Run`).
    pub count: u32,
    /// Workers taking part.
    pub expected: u32,
}

const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;

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
            FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes up to `count` waiters on `word`.
fn futex_wake(word: &AtomicU32, count: i32) {
    // SAFETY: `word` is a valid, aligned 32-bit atomic; FUTEX_WAKE does not
    // access memory through the pointer beyond identifying the futex.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), FUTEX_WAKE, count, 0usize, 0usize, 0u32);
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
    }

    #[test]
    fn a_sleeper_is_woken_by_a_bump() {
        let beacon = Arc::new(Beacon { value: AtomicU32::new(5), sleepers: AtomicU32::new(0) });
        let b2 = Arc::clone(&beacon);
        let t = std::thread::spawn(move || b2.wait_while_equal(5, Duration::ZERO, true, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        beacon.bump_and_wake_all();
        assert_eq!(t.join().unwrap(), 6);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn waiting_times_out() {
        let beacon = Beacon { value: AtomicU32::new(1), sleepers: AtomicU32::new(0) };
        let started = Instant::now();
        assert_eq!(beacon.wait_while_equal(1, Duration::from_millis(5), false, Duration::from_millis(30)), 1);
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(beacon.wait_for_count(3, Duration::from_millis(5), Duration::from_millis(30)), 1);
    }

    #[test]
    fn the_last_counter_wakes_the_waiter() {
        let beacon = Arc::new(Beacon { value: AtomicU32::new(0), sleepers: AtomicU32::new(0) });
        let b2 = Arc::clone(&beacon);
        let t = std::thread::spawn(move || b2.wait_for_count(3, Duration::ZERO, Duration::from_secs(10)));
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(10));
            beacon.count_up_to(3);
        }
        assert_eq!(t.join().unwrap(), 3);
    }
}
