//! The doorbell: how the coordinator starts a step and learns that it
//! ended, through words in the shared segment rather than messages — the
//! words, the coordinator's loop and the workers' loop, in one place.
//!
//! A round must cost microseconds, not an IPC round trip, and the
//! coordinator must not be on the round's critical path: with two CPUs and
//! two workers, a third thread that has to be woken between rounds always
//! finds its CPU taken. So the coordinator rings once for a *batch* of
//! rounds and the workers pace themselves, as OpenMP threads or MPI ranks
//! do: after each round a worker counts itself in; the last one to arrive
//! stamps the release time of the next round and opens the gate.
//!
//! **Sequences.** Every step is tagged with its bell number (its
//! *sequence*), and so is everything that refers to it: each order word,
//! the gate, the arrival counter, a slot's progress and its last completed
//! sequence, the abort flag. A worker still inside an old, aborted step can
//! never open a gate, count an arrival or finish a step of a newer one, and
//! can never read the order of a newer step as its own. The coordinator
//! decides that a step is done from every live worker's own slot, and after
//! an abort it waits until every surviving worker has left the step before
//! it rings again.
//!
//! **Eventcounts.** Every word a party sleeps on is a [`Beacon`]: read its
//! [`Beacon::epoch`] *before* checking the condition, then
//! [`Beacon::wait_past`] that epoch. A change that lands between the check
//! and the sleep moves the epoch, so the sleep returns at once: no wake-up
//! can be lost, and no waiter depends on a timeout to notice one. Waiters
//! spin for a bounded time, then sleep with `futex(2)`; the futexes are
//! *shared* (not `FUTEX_PRIVATE_FLAG`) because the words are mapped by
//! several processes, and threads mode uses the same words, so both modes
//! pay the same.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::control::Control;
use crate::clock::Patience;
use crate::fault::Lost;
pub(crate) use crate::protocol::BATCH;
use crate::protocol::{STEP_WORDS, Step, Timing};
use crate::signals::{self, Interrupted};

/// How often a waiting coordinator looks at its workers when nothing wakes
/// it: to see processes that died and workers that hung.
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// A 32-bit eventcount others can wait on, with a count of sleepers so that
/// notifying costs no syscall when everyone is spinning.
#[derive(Debug)]
#[repr(C, align(128))]
pub(crate) struct Beacon {
    value: AtomicU32,
    sleepers: AtomicU32,
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// The value moved past the epoch.
    Moved(u32),
    /// The timeout passed first.
    TimedOut,
}

impl Beacon {
    #[cfg(test)]
    fn new(v: u32) -> Beacon {
        Beacon { value: AtomicU32::new(v), sleepers: AtomicU32::new(0) }
    }

    /// The current epoch: read it before checking what the wait is for.
    #[inline]
    pub(crate) fn epoch(&self) -> u32 {
        self.value.load(Ordering::SeqCst)
    }

    /// Sets the value and wakes every sleeper.
    #[inline]
    fn set_and_wake_all(&self, v: u32) {
        self.value.store(v, Ordering::SeqCst);
        self.wake();
    }

    /// Moves to the next epoch and wakes every sleeper. Returns the new
    /// value. Only an atomic add and a futex wake: a signal handler may
    /// call it.
    #[inline]
    pub(super) fn bump_and_wake_all(&self) -> u32 {
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

    /// Waits until the value is no longer `epoch`: spins for up to `spin`
    /// (a `polite` spinner yields its CPU between batches of checks: right
    /// when the one it waits for needs that CPU, wrong when it waits for a
    /// peer on another CPU), then sleeps, at most `timeout` in all.
    pub(crate) fn wait_past(&self, epoch: u32, spin: Duration, polite: bool, timeout: Duration) -> Waited {
        let mut v = self.value.load(Ordering::SeqCst);
        if v != epoch {
            return Waited::Moved(v);
        }
        let started = Instant::now();
        if !spin.is_zero() {
            loop {
                if polite {
                    std::thread::yield_now();
                }
                for _ in 0..64 {
                    std::hint::spin_loop();
                    v = self.value.load(Ordering::Acquire);
                    if v != epoch {
                        return Waited::Moved(v);
                    }
                }
                if started.elapsed() >= spin.min(timeout) {
                    break;
                }
            }
        }
        let deadline = started + timeout;
        loop {
            v = self.value.load(Ordering::SeqCst);
            if v != epoch {
                return Waited::Moved(v);
            }
            let now = Instant::now();
            if now >= deadline {
                return Waited::TimedOut;
            }
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            futex_wait(&self.value, epoch, deadline - now);
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

/// The order words: the encoded step and the number of workers taking
/// part, each tagged with the step's sequence (`(seq << 32) | word`).
const ORDER_WORDS: usize = STEP_WORDS + 1;

/// The doorbell's words in the control block's header.
#[derive(Debug)]
#[repr(C)]
pub(super) struct Words {
    /// Bumped once per step: the step's sequence.
    bell: Beacon,
    /// The step, published before the bell rings (written by the
    /// coordinator only), every word tagged with its sequence.
    order: Order,
    /// Within a batch: `(seq << 8) | k` of the last round released.
    gate: Beacon,
    /// Within a batch: rounds finished, summed over workers.
    arrivals: Tally,
    /// Workers done with the step.
    done: Tally,
    /// Moved by the last worker done with a step (and by every worker
    /// done with an aborted one): what the coordinator sleeps on.
    done_bell: Beacon,
    /// The sequence of the aborted batch, if any.
    abort: Beacon,
    /// Release time of each round of the batch (CLOCK_MONOTONIC ns).
    release_ns: [AtomicU64; BATCH],
}

#[derive(Debug)]
#[repr(C, align(128))]
struct Order([AtomicU64; ORDER_WORDS]);

/// One worker's timing of one round of a batch.
#[derive(Debug)]
#[repr(C)]
struct Stamp {
    start_ns: AtomicU64,
    end_ns: AtomicU64,
    cpu: AtomicU32,
    _pad: u32,
}

/// The doorbell's words in one worker's slot.
#[derive(Debug)]
#[repr(C)]
pub(super) struct SlotWords {
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
    /// When the worker stopped (CLOCK_MONOTONIC ns; 0 = not known): set by
    /// the worker just before an injected fault strikes, and by its fault
    /// recorder and panic hook as it dies.
    pub(super) silent_since_ns: AtomicU64,
    stamps: [Stamp; BATCH],
}

impl SlotWords {
    /// Forgets a previous worker's wait (a fresh one starts clean).
    pub(super) fn clear(&self) {
        self.waiting.store(0, Ordering::Relaxed);
        self.silent_since_ns.store(0, Ordering::Relaxed);
    }

    /// Records that the worker stops now (see `silent_since_ns`); only an
    /// atomic store after a vDSO clock read, so a signal handler may call it.
    pub(super) fn note_stopping(&self) {
        self.silent_since_ns.store(crate::clock::now_ns().max(1), Ordering::SeqCst);
    }
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

/// The gate word for round `k` of batch `seq`.
fn gate_value(seq: u32, k: u32) -> u32 {
    ((seq & 0x00FF_FFFF) << 8) | (k & 0xFF)
}

impl<'m> Control<'m> {
    fn words(&self) -> &'m Words {
        &self.header.doorbell
    }

    fn slot_words(&self, id: usize) -> &'m SlotWords {
        &self.slot(id).doorbell
    }

    // ---- the coordinator's side ----

    /// Publishes `step` for `expected` workers and rings the bell; the first
    /// round of a batch is released at `ring_ns`. Returns the step's
    /// sequence.
    pub(crate) fn ring(&self, step: &Step, expected: u32, ring_ns: u64) -> u32 {
        let h = self.words();
        // Only the coordinator rings: the next sequence is known.
        let seq = h.bell.epoch().wrapping_add(1);
        let mut words = [0u32; ORDER_WORDS];
        words[..STEP_WORDS].copy_from_slice(&step.encode());
        words[STEP_WORDS] = expected;
        for (w, v) in h.order.0.iter().zip(words) {
            w.store((u64::from(seq) << 32) | u64::from(v), Ordering::Relaxed);
        }
        h.release_ns[0].store(ring_ns, Ordering::Relaxed);
        // SeqCst, after every field above: a worker that sees the new
        // sequence sees the step.
        h.bell.set_and_wake_all(seq);
        seq
    }

    /// Where worker `id` stands in step `seq`.
    pub(crate) fn standing(&self, id: usize, seq: u32) -> Standing {
        let s = self.slot_words(id);
        let in_batch = s.batch.load(Ordering::Acquire) == seq;
        let progress = if in_batch { s.progress.load(Ordering::Acquire) } else { 0 };
        // Waiting for its peers only while the round it waits for (the
        // one after those it finished) is not yet released: a worker still
        // "waiting" at an open gate is not waiting for anyone — it is
        // stopped (SIGSTOP), and must run out of patience like any other.
        let g = self.words().gate.epoch();
        let released = if g >> 8 == seq & 0x00FF_FFFF { g & 0xFF } else { 0 };
        Standing {
            done: s.done_seq.load(Ordering::Acquire) == seq,
            progress,
            waiting: s.waiting.load(Ordering::Acquire) != 0 && in_batch && released < progress,
            heartbeat: s.heartbeat.load(Ordering::Acquire),
        }
    }

    /// Stops batch `seq`: waiting workers leave it.
    pub(crate) fn abort(&self, seq: u32) {
        let h = self.words();
        h.abort.set_and_wake_all(seq);
        h.gate.bump_and_wake_all();
        h.done_bell.bump_and_wake_all();
    }

    /// When round `k` of the batch was released.
    pub(crate) fn release_ns(&self, k: usize) -> u64 {
        self.words().release_ns[k].load(Ordering::Acquire)
    }

    /// Worker `id`'s timing of round `k` of the batch.
    pub(crate) fn stamp_of(&self, id: usize, k: usize) -> Timing {
        let s = &self.slot_words(id).stamps[k];
        Timing {
            start_ns: s.start_ns.load(Ordering::Acquire),
            end_ns: s.end_ns.load(Ordering::Acquire),
            cpu: s.cpu.load(Ordering::Acquire),
        }
    }

    // ---- a worker's side ----

    /// The current sequence (a worker reads it when it becomes ready).
    pub(crate) fn bell(&self) -> u32 {
        self.words().bell.epoch()
    }

    /// The step of sequence `seq` and the number of workers taking part;
    /// `None` if a newer step replaced it meanwhile, or the words do not
    /// decode.
    fn order(&self, seq: u32) -> Option<(Step, u32)> {
        let mut words = [0u32; ORDER_WORDS];
        for (w, cell) in words.iter_mut().zip(&self.words().order.0) {
            let v = cell.load(Ordering::Acquire);
            if (v >> 32) as u32 != seq {
                return None;
            }
            *w = v as u32;
        }
        let step: [u32; STEP_WORDS] = words[..STEP_WORDS].try_into().ok()?;
        Some((Step::decode(&step)?, words[STEP_WORDS]))
    }

    /// Worker `id` enters step `seq`.
    fn enter(&self, id: usize, seq: u32) {
        let s = self.slot_words(id);
        s.progress.store(0, Ordering::Relaxed);
        s.batch.store(seq, Ordering::Release);
    }

    /// Whether batch `seq` was aborted.
    fn aborted(&self, seq: u32) -> bool {
        self.words().abort.epoch() == seq
    }

    /// Records worker `id`'s timing of round `k` of the batch.
    fn stamp(&self, id: usize, k: usize, t: Timing) {
        let s = &self.slot_words(id).stamps[k];
        s.start_ns.store(t.start_ns, Ordering::Relaxed);
        s.end_ns.store(t.end_ns, Ordering::Relaxed);
        s.cpu.store(t.cpu, Ordering::Relaxed);
    }

    /// Counts worker `id` in after round `k` of batch `seq` of `count`
    /// rounds; the last of `expected` workers releases round `k + 1`.
    fn arrive(&self, id: usize, seq: u32, k: u32, count: u32, expected: u32) {
        self.slot_words(id).progress.store(k + 1, Ordering::Release);
        let h = self.words();
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
    fn await_round(&self, id: usize, seq: u32, k: u32, spin: Duration) -> bool {
        let gate = &self.words().gate;
        let waiting = &self.slot_words(id).waiting;
        waiting.store(1, Ordering::Release);
        let released = loop {
            let epoch = gate.epoch();
            if self.aborted(seq) {
                break false;
            }
            if epoch >> 8 == seq & 0x00FF_FFFF && epoch & 0xFF >= k {
                break true;
            }
            gate.wait_past(epoch, spin, false, Duration::from_millis(100));
        };
        waiting.store(0, Ordering::Release);
        released
    }

    /// Marks worker `id` done with step `seq` of `expected` workers.
    fn report_done(&self, id: usize, seq: u32, expected: u32) {
        self.slot_words(id).done_seq.store(seq, Ordering::Release);
        let h = self.words();
        // The last one wakes the coordinator; in an aborted step every one
        // does (the coordinator waits for the survivors to leave it).
        if h.done.count(seq).is_some_and(|n| n >= expected) || self.aborted(seq) {
            h.done_bell.bump_and_wake_all();
        }
    }

    /// Worker `id`'s heartbeat.
    pub(crate) fn pulse(&self, id: usize) -> Pulse<'m> {
        Pulse(Some((self.slot_words(id), &self.words().done_bell)))
    }

    /// What the coordinator sleeps on: a stopping worker rings it (see
    /// [`Pulse::last`]).
    pub(super) fn done_bell(&self) -> &'m Beacon {
        &self.words().done_bell
    }

    /// When worker `id` stopped, as it recorded (CLOCK_MONOTONIC ns).
    pub(crate) fn silent_since_ns(&self, id: usize) -> Option<u64> {
        Some(self.slot_words(id).silent_since_ns.load(Ordering::SeqCst)).filter(|&t| t != 0)
    }
}

/// A worker's heartbeat: bumped while it works through something long, so
/// that the coordinator can tell a slow worker from a hung one.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pulse<'m>(Option<(&'m SlotWords, &'m Beacon)>);

impl Pulse<'_> {
    /// One more sign of life.
    #[inline]
    pub(crate) fn beat(&self) {
        if let Some((s, _)) = self.0 {
            s.heartbeat.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The last sign of life: the worker stops now (an injected fault is
    /// about to strike). The coordinator measures its detection from here,
    /// and is woken to watch closely for the end that follows.
    pub(crate) fn last(&self) {
        if let Some((s, bell)) = self.0 {
            s.note_stopping();
            bell.bump_and_wake_all();
        }
    }
}

/// How long after a worker said it stops the coordinator looks at it every
/// [`CLOSE_POLL`] rather than every [`POLL`]: its end (a signal's default
/// action, an exit) follows within microseconds; a hang never ends.
const CLOSE_WATCH_NS: u64 = 100_000_000;

/// How often the coordinator looks at a worker that said it stops.
const CLOSE_POLL: Duration = Duration::from_millis(1);

// ---- the coordinator's loop ----

/// What a team tells the waiting coordinator about its members.
pub(crate) trait Watch {
    /// Which of `ids` are gone (a process that exited, a thread that
    /// ended), and why.
    fn gone(&mut self, ids: &[usize]) -> Vec<Lost>;
    /// `ids` showed no progress within `patience`: stops them where it can
    /// and says why they are lost.
    fn hung(&mut self, ids: &[usize], patience: Duration) -> Vec<Lost>;
}

/// How a rung step ended.
#[derive(Debug)]
pub(crate) struct Rung {
    /// The step's sequence.
    pub(crate) seq: u32,
    /// The workers lost during it.
    pub(crate) lost: Vec<Lost>,
    /// How many of the coordinator's sleeps ran their whole `poll`: zero
    /// when every worker reported in time and nothing died (what the tests
    /// of the lost wake-up count).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) full_sleeps: u32,
}

/// Rings `step` for the workers `live` and waits for its end: every `poll`
/// at the latest it asks `watch` which pending workers are gone, and gives
/// each worker [`Patience`], renewed whenever its heartbeat or its
/// progress moves, or while it waits for its peers; a worker whose patience
/// runs out is hung. Once one worker is lost the batch is aborted, and the
/// wait goes on until every other worker has left it, so the next step can
/// never meet a straggler of this one.
pub(crate) fn ring_and_wait(
    control: &Control<'_>,
    step: &Step,
    live: &[usize],
    (spin, poll): (Duration, Duration),
    patience: Duration,
    watch: &mut dyn Watch,
) -> Result<Rung, Interrupted> {
    let rung_ns = crate::clock::now_ns();
    let seq = control.ring(step, live.len() as u32, rung_ns);
    let done_bell = &control.words().done_bell;
    let mut lost: Vec<Lost> = Vec::new();
    let mut aborted = false;
    let mut spin = spin;
    let mut full_sleeps = 0;
    let mut watched: Vec<(usize, Patience, (u64, u32))> =
        live.iter().map(|&id| (id, Patience::new(patience), (u64::MAX, u32::MAX))).collect();
    loop {
        // The epoch first, then the check: a report that lands after the
        // check moves the epoch, and the sleep below returns at once.
        let epoch = done_bell.epoch();
        if let Err(interrupted) = signals::check() {
            control.abort(seq);
            return Err(interrupted);
        }
        watched.retain(|(id, _, _)| !lost.iter().any(|l| l.id == *id) && !control.standing(*id, seq).done);
        if watched.is_empty() {
            return Ok(Rung { seq, lost, full_sleeps });
        }
        let pending: Vec<usize> = watched.iter().map(|w| w.0).collect();
        let gone = watch.gone(&pending);
        let mut hung = Vec::new();
        // Waiting for one's peers is a sign of life only while a peer is
        // working: when every pending worker waits, they wait for each
        // other, and nothing moves unless progress does.
        let standings: Vec<Standing> = pending.iter().map(|&id| control.standing(id, seq)).collect();
        let someone_works = standings.iter().any(|st| !st.waiting);
        for ((id, p, last), st) in watched.iter_mut().zip(standings) {
            if gone.iter().any(|l| l.id == *id) {
                continue;
            }
            let now = (st.heartbeat, st.progress);
            if (st.waiting && someone_works) || now != *last {
                *last = now;
                p.renew();
            } else if p.tick() {
                hung.push(*id);
            }
        }
        let found = !gone.is_empty() || !hung.is_empty();
        lost.extend(gone);
        if !hung.is_empty() {
            lost.extend(watch.hung(&hung, patience));
        }
        if !lost.is_empty() && !aborted {
            control.abort(seq);
            aborted = true;
        }
        if found {
            continue; // look again at once: the others may be done
        }
        // A worker that just said it stops is about to end: look again
        // soon, rather than a whole poll later.
        // (A stamp from before the bell or from the future is no reason.)
        let now = crate::clock::now_ns();
        let stopping = pending.iter().any(|&id| {
            control
                .silent_since_ns(id)
                .filter(|&t| t >= rung_ns)
                .and_then(|t| now.checked_sub(t))
                .is_some_and(|age| age < CLOSE_WATCH_NS)
        });
        let poll = if stopping { poll.min(CLOSE_POLL) } else { poll };
        if done_bell.wait_past(epoch, spin, true, poll) == Waited::TimedOut {
            full_sleeps += 1;
        }
        spin = Duration::ZERO;
    }
}

/// The rounds of batch `seq` that every one of `expected` completed, with
/// their timings (by worker id, over `control`'s slots).
pub(crate) fn completed_rounds(control: &Control<'_>, seq: u32, expected: &[usize], count: u32) -> Vec<Round> {
    let done = expected.iter().map(|&id| control.standing(id, seq).progress).min().unwrap_or(0).min(count);
    let slots = control.slots();
    (0..done as usize)
        .map(|k| Round {
            release_ns: control.release_ns(k),
            workers: (0..slots)
                .map(|id| if expected.contains(&id) { control.stamp_of(id, k) } else { Timing::default() })
                .collect(),
        })
        .collect()
}

/// One round of a batch as the slots recorded it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Round {
    /// When the round was released (CLOCK_MONOTONIC ns).
    pub(crate) release_ns: u64,
    /// Each worker's timing, by id.
    pub(crate) workers: Vec<Timing>,
}

// ---- a worker's loop ----

/// What a worker does with the steps the doorbell brings.
pub(crate) trait Serve {
    /// Round `k` of the batch `step` (a `Run`); returns its timing.
    fn round(&mut self, step: &Step, k: u32) -> Timing;
    /// Any other step (not `Shutdown`), its result reported before the
    /// step is marked done (sequence `seq`).
    fn other(&mut self, seq: u32, step: &Step);
}

/// Serves doorbell steps as worker `id` until `Shutdown`, or until
/// `still_wanted` says the coordinator is gone (asked whenever a quarter
/// second passes without a step). `seen` is the bell's value when the
/// worker became ready.
pub(crate) fn serve(
    control: &Control<'_>,
    id: usize,
    mut seen: u32,
    spin: Duration,
    still_wanted: impl Fn() -> bool,
    server: &mut dyn Serve,
) {
    let bell = &control.words().bell;
    loop {
        let seq = match bell.wait_past(seen, spin, true, Duration::from_millis(250)) {
            Waited::Moved(seq) => seq,
            Waited::TimedOut if still_wanted() => continue,
            Waited::TimedOut => return,
        };
        seen = seq;
        // A newer step may have replaced this one already: wait for it.
        let Some((step, expected)) = control.order(seq) else { continue };
        control.enter(id, seq);
        match step {
            Step::Shutdown => return,
            Step::Run { count, .. } => {
                for k in 0..count {
                    if (k > 0 && !control.await_round(id, seq, k, spin)) || control.aborted(seq) {
                        break;
                    }
                    let timing = server.round(&step, k);
                    control.stamp(id, k as usize, timing);
                    control.arrive(id, seq, k, count, expected);
                }
            }
            _ => server.other(seq, &step),
        }
        control.report_done(id, seq, expected);
    }
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
    use crate::fault::Cause;
    use crate::kernel::Op;
    use std::sync::Arc;

    /// A control block on the heap, zeroed, aligned as a segment's is.
    struct Block {
        words: Vec<u64>,
        offset: usize,
        slots: usize,
    }

    impl Block {
        fn new(slots: usize) -> Block {
            let bytes = super::super::control::control_bytes(slots).unwrap() + 128;
            let words = vec![0u64; bytes / 8 + 1];
            let offset = (128 - words.as_ptr() as usize % 128) % 128;
            Block { words, offset, slots }
        }

        fn control(&mut self) -> Control<'_> {
            // SAFETY: a zeroed buffer of control_bytes(slots) past the
            // aligned offset, living as long as the borrow.
            unsafe { Control::from_raw(self.words.as_mut_ptr().cast::<u8>().add(self.offset), self.slots) }
        }
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
        let t = std::thread::spawn(move || b2.wait_past(5, Duration::ZERO, true, Duration::from_secs(600)));
        while beacon.sleepers.load(Ordering::SeqCst) == 0 && !t.is_finished() {
            std::thread::yield_now();
        }
        beacon.bump_and_wake_all();
        assert_eq!(t.join().unwrap(), Waited::Moved(6), "woken long before the 600 s timeout");
    }

    #[test]
    fn a_change_between_the_epoch_and_the_wait_is_never_lost() {
        let beacon = Beacon::new(1);
        let epoch = beacon.epoch();
        beacon.bump_and_wake_all(); // lands after the check, before the sleep
        assert_eq!(beacon.wait_past(epoch, Duration::ZERO, true, Duration::from_secs(600)), Waited::Moved(2));
    }

    #[test]
    fn order_words_of_a_newer_step_are_not_read_as_an_older_one() {
        let mut block = Block::new(1);
        let control = block.control();
        let first = control.ring(&Step::Init { fill_c: true }, 1, 0);
        assert_eq!(control.order(first), Some((Step::Init { fill_c: true }, 1)));
        let second = control.ring(&Step::Run { op: Op::Add, first: 0, count: 2, op_round: 0 }, 1, 0);
        assert_eq!(control.order(first), None, "the words now belong to {second}");
        assert!(matches!(control.order(second), Some((Step::Run { count: 2, .. }, 1))));
    }

    /// A worker that reports done while the coordinator is between its
    /// check and its sleep (here: inside `gone`, which the coordinator asks
    /// between the two) wakes it: the wait ends without a single sleep
    /// running its whole poll, however long the poll is.
    #[test]
    fn a_report_between_check_and_sleep_costs_no_poll() {
        struct Racer<'c> {
            control: Control<'c>,
            seq: u32,
        }
        impl Watch for Racer<'_> {
            fn gone(&mut self, _ids: &[usize]) -> Vec<Lost> {
                // What a fast worker does right after the check.
                self.control.enter(0, self.seq);
                self.control.report_done(0, self.seq, 1);
                Vec::new()
            }
            fn hung(&mut self, _ids: &[usize], _patience: Duration) -> Vec<Lost> {
                Vec::new()
            }
        }
        let mut block = Block::new(1);
        let control = block.control();
        let seq = control.bell().wrapping_add(1); // the sequence ring_and_wait will ring
        let mut racer = Racer { control, seq };
        let poll = Duration::from_secs(30);
        let rung =
            ring_and_wait(&control, &Step::Init { fill_c: false }, &[0], (Duration::ZERO, poll), poll, &mut racer)
                .unwrap();
        assert_eq!(rung.seq, seq);
        assert!(rung.lost.is_empty());
        assert_eq!(rung.full_sleeps, 0, "the report woke the coordinator; it did not sleep out its poll");
    }

    #[test]
    fn a_lost_worker_aborts_the_batch_and_the_others_leave_it() {
        struct OneGone(bool);
        impl Watch for OneGone {
            fn gone(&mut self, ids: &[usize]) -> Vec<Lost> {
                if std::mem::replace(&mut self.0, true) || !ids.contains(&1) {
                    return Vec::new();
                }
                vec![Lost::new(1, Cause::Disconnected)]
            }
            fn hung(&mut self, _ids: &[usize], _patience: Duration) -> Vec<Lost> {
                Vec::new()
            }
        }
        let mut block = Block::new(2);
        let control = block.control();
        let step = Step::Run { op: Op::Add, first: 0, count: 3, op_round: 0 };
        // As a team does: the worker is ready (it has read the bell) before
        // the coordinator rings.
        let seen = control.bell();
        std::thread::scope(|s| {
            let worker = s.spawn(move || {
                struct Rounds;
                impl Serve for Rounds {
                    fn round(&mut self, _: &Step, _: u32) -> Timing {
                        Timing { start_ns: 1, end_ns: 2, cpu: 0 }
                    }
                    fn other(&mut self, _: u32, _: &Step) {}
                }
                serve(&control, 0, seen, Duration::ZERO, || true, &mut Rounds);
            });
            let poll = Duration::from_millis(20);
            let rung = ring_and_wait(
                &control,
                &step,
                &[0, 1],
                (Duration::ZERO, poll),
                Duration::from_secs(600),
                &mut OneGone(false),
            )
            .unwrap();
            assert_eq!(rung.lost.len(), 1);
            let rounds = completed_rounds(&control, rung.seq, &[0, 1], 3);
            assert!(rounds.is_empty(), "worker 1 finished no round");
            assert!(control.standing(0, rung.seq).done, "worker 0 left the aborted batch");
            control.ring(&Step::Shutdown, 1, 0);
            worker.join().unwrap();
        });
    }
}
