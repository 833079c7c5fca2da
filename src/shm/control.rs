//! The control block: the doorbell's words ([`super::doorbell`]), then one
//! slot per worker, in the shared segment right after the header.
//!
//! Every field is an atomic integer, so the zeroes of a fresh segment are a
//! valid control block and any process may read or write any field; what
//! the values mean is the doorbell's and the fault recorder's business.
//! Slots are whole cache-line pairs (128 bytes), so workers never share a
//! line.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::doorbell::{SlotWords, Words};

/// The start of the control block.
#[derive(Debug)]
#[repr(C)]
pub(super) struct ControlHeader {
    pub(super) doorbell: Words,
}

/// Per-worker state, written by the worker (and by its fault handler).
#[derive(Debug)]
#[repr(C, align(128))]
pub(crate) struct Slot {
    pub(super) doorbell: SlotWords,
    /// Set by the fault handler: the signal number.
    pub(super) fault_signal: AtomicU32,
    /// Set by the fault handler: `si_code`.
    pub(super) fault_code: AtomicU32,
    /// Set by the fault handler: the faulting address (for a signal another
    /// process sent, that process's pid).
    pub(super) fault_addr: AtomicU64,
    /// Set by the fault handler: what the address is (see [`FaultSite`]).
    pub(super) fault_site: AtomicU32,
    /// Set by the fault handler: the element index the address falls on.
    pub(super) fault_index: AtomicU64,
}

/// The alignment the control block needs (its header and slots are
/// aligned to 128 bytes).
pub(super) const ALIGN: usize = 128;

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
    /// The process that sent it, when another process did (`si_code` ≤ 0).
    pub(crate) sender: Option<u32>,
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
    pub(super) header: &'m ControlHeader,
    pub(super) slots: &'m [Slot],
}

impl<'m> Control<'m> {
    /// # Safety
    /// `base` points to at least `control_bytes(slots)` bytes, mapped
    /// read-write for `'m`, and only ever accessed through atomics.
    ///
    /// # Panics
    /// If `base` is not aligned to 128 bytes (a segment's control block
    /// starts on a page, which [`super::Layout`] guarantees).
    pub(super) unsafe fn from_raw(base: *mut u8, slots: usize) -> Control<'m> {
        assert!((base as usize).is_multiple_of(ALIGN), "the control block must be aligned to {ALIGN} bytes");
        // SAFETY: the caller guarantees size and lifetime, the alignment is
        // checked above. Every field is an atomic integer, for which any bit
        // pattern (including the zeroes of a fresh segment) is valid, and
        // atomics may be shared between threads and processes.
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

    /// What worker `id`'s fault handler recorded, if anything.
    pub(crate) fn fault_note(&self, id: usize) -> Option<FaultNote> {
        let s = &self.slots[id];
        let signal = s.fault_signal.load(Ordering::Acquire) as i32;
        let code = s.fault_code.load(Ordering::Acquire) as i32;
        (signal != 0).then(|| FaultNote {
            signal,
            code,
            site: FaultSite::decode(s.fault_site.load(Ordering::Acquire), s.fault_index.load(Ordering::Acquire)),
            sender: (code <= 0).then(|| s.fault_addr.load(Ordering::Acquire) as u32),
        })
    }

    /// Clears worker `id`'s slot for a fresh process or thread.
    pub(crate) fn clear_slot(&self, id: usize) {
        let s = &self.slots[id];
        for f in [&s.fault_signal, &s.fault_code, &s.fault_site] {
            f.store(0, Ordering::Relaxed);
        }
        for f in [&s.fault_addr, &s.fault_index] {
            f.store(0, Ordering::Relaxed);
        }
        s.doorbell.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_do_not_share_cache_lines() {
        assert_eq!(size_of::<Slot>() % 128, 0);
        assert_eq!(align_of::<Slot>(), ALIGN);
        assert_eq!(align_of::<ControlHeader>(), ALIGN);
        assert_eq!(control_bytes(usize::MAX), None, "an overflowing slot count is refused");
    }

    #[test]
    #[should_panic(expected = "aligned to 128")]
    fn a_misaligned_control_block_is_refused() {
        let mut words = vec![0u64; 4096];
        let base = words.as_mut_ptr().cast::<u8>();
        let off = if (base as usize).is_multiple_of(128) { 64 } else { 0 };
        // SAFETY: a valid, zeroed buffer far longer than one slot's block;
        // only the alignment is wrong, and from_raw must refuse it before
        // making any reference.
        let _ = unsafe { Control::from_raw(base.add(off), 1) };
    }
}
