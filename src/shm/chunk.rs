//! What a worker may touch: its chunk of the arrays, mapped for a process
//! ([`WorkerArrays`]) or claimed within one shared mapping for a thread
//! ([`Claim`]), behind one trait ([`ChunkAccess`]) so that the worker's code
//! is the same in every mode.
//!
//! References into the shared memory are handed out only for a worker's own
//! chunk, only inside a closure ([`ChunkAccess::with`]), and only with the
//! mutability the kernel needs: `a` and `b` to read and `c` to write, `a`
//! to write for `nstream`, all three to read for `dot` and validation.
//! Chunks are disjoint and whole pages, so no two workers ever write the
//! same byte, and zero-filling a page of `c` can only touch one's own.

use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;

use super::ShmError;
use super::guard::{AddressMap, trapping_store};
use super::layout::Layout;
use super::mapping::{Mapping, reserve};
use crate::kernel::Element;
use crate::locks::lock;
use crate::vocab::Array;

/// How a kernel (or validation) uses the chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read `a` and `b`, write `c` (copy, scale, add, triad).
    WriteC,
    /// Write `a`, read `b` and `c` (nstream).
    WriteA,
    /// Read all three (dot, validation).
    Read,
}

/// The chunk's slices, with the mutability of their [`Access`].
#[derive(Debug)]
pub(crate) enum Parts<'x, T> {
    /// See [`Access::WriteC`].
    WriteC {
        /// Input.
        a: &'x [T],
        /// Input.
        b: &'x [T],
        /// Output.
        c: &'x mut [T],
    },
    /// See [`Access::WriteA`].
    WriteA {
        /// Updated in place.
        a: &'x mut [T],
        /// Input.
        b: &'x [T],
        /// Input.
        c: &'x [T],
    },
    /// See [`Access::Read`].
    Read {
        /// Input.
        a: &'x [T],
        /// Input.
        b: &'x [T],
        /// Input.
        c: &'x [T],
    },
}

impl<'x, T> Parts<'x, T> {
    /// The three arrays' `n` elements at `a`, `b` and `c`, as `access`
    /// hands them out (the written one mutable).
    ///
    /// # Safety
    ///
    /// Each pointer is valid for `n` elements of `T`, aligned, for `'x`;
    /// the three ranges do not overlap; the one `access` writes is mapped
    /// writable; and nothing else reads or writes them while the parts live
    /// (no other reference to them exists in this process, and no other
    /// process writes them).
    pub(crate) unsafe fn from_raw(access: Access, a: *mut T, b: *mut T, c: *mut T, n: usize) -> Parts<'x, T> {
        // SAFETY: what the caller promises, above.
        unsafe {
            match access {
                Access::WriteC => Parts::WriteC {
                    a: std::slice::from_raw_parts(a, n),
                    b: std::slice::from_raw_parts(b, n),
                    c: std::slice::from_raw_parts_mut(c, n),
                },
                Access::WriteA => Parts::WriteA {
                    a: std::slice::from_raw_parts_mut(a, n),
                    b: std::slice::from_raw_parts(b, n),
                    c: std::slice::from_raw_parts(c, n),
                },
                Access::Read => Parts::Read {
                    a: std::slice::from_raw_parts(a, n),
                    b: std::slice::from_raw_parts(b, n),
                    c: std::slice::from_raw_parts(c, n),
                },
            }
        }
    }
}

/// What a worker does with its chunk, whichever way it is mapped.
pub(crate) trait ChunkAccess: Send {
    /// The element range this chunk covers.
    fn range(&self) -> Range<usize>;
    /// Reserves the chunk's pages in all three arrays (fallocate).
    /// `beat` is called as it goes (it can take seconds for gigabytes).
    fn reserve(&self, beat: &dyn Fn()) -> Result<(), Errno>;
    /// Lets `fill` write the chunk of `a` and `b`, and of `c` too when
    /// `with_c` (it gets `None` otherwise), and only for that long.
    fn fill<T: Element>(
        &mut self,
        with_c: bool,
        fill: impl FnOnce(&mut [T], &mut [T], Option<&mut [T]>),
    ) -> Result<(), ShmError>;
    /// Faults in the chunk of `c` for writing (when it is not filled),
    /// calling `beat` as it goes.
    fn touch_output(&mut self, beat: &dyn Fn());
    /// Makes the chunk of `a` writable (for `nstream`'s rounds) or read-only.
    fn open_a(&mut self, writable: bool) -> Result<(), ShmError>;
    /// Makes the chunk of `c` read-only for the rest of the run: none of its
    /// kernels writes `c` (a run of `dot` or `nstream` alone).
    fn close_c(&mut self) -> Result<(), ShmError>;
    /// Runs `f` on the chunk's slices, with the mutability of `access`.
    fn with<T: Element, R>(&mut self, access: Access, f: impl FnOnce(Parts<'_, T>) -> R) -> R;
    /// Fault injection: stores `bits` at element `index` of `array`, in
    /// another worker's chunk. A process's read-only mapping stops it (the
    /// process dies of SIGSEGV); a thread's shared mapping does not.
    fn stray_write(&self, array: Array, index: usize, bits: u64);
}

/// How much `reserve_chunk` reserves (and `touch_output` faults in)
/// between beats: tens of milliseconds.
const RESERVE_STEP: usize = 64 << 20;

/// `bytes` in steps of [`RESERVE_STEP`] rounded to whole `page`s.
fn steps(bytes: Range<usize>, page: usize) -> impl Iterator<Item = Range<usize>> {
    let step = RESERVE_STEP.max(page).next_multiple_of(page);
    bytes.clone().step_by(step).map(move |at| at..(at + step).min(bytes.end))
}

fn reserve_chunk(fd: BorrowedFd<'_>, layout: &Layout, range: &Range<usize>, beat: &dyn Fn()) -> Result<(), Errno> {
    for offset in layout.array_offsets {
        for part in steps(layout.chunk_bytes(range), layout.page) {
            reserve(fd, offset + part.start, part.len())?;
            beat();
        }
    }
    Ok(())
}

fn check_type<T: Element>(layout: &Layout) {
    assert_eq!(T::DTYPE, layout.dtype, "element type differs from the segment's");
}

/// A worker process's mappings: all of `a` and `b` read-only, its own pages
/// of `c` read-write (see [`super::Attachment::map_chunk`]).
#[derive(Debug)]
pub(crate) struct WorkerArrays {
    pub(super) fd: OwnedFd,
    pub(super) layout: Layout,
    pub(super) range: Range<usize>,
    pub(super) a: Mapping,
    pub(super) b: Mapping,
    pub(super) c: Mapping,
    pub(super) a_open: bool,
    pub(super) c_open: bool,
}

impl WorkerArrays {
    /// Where the mappings are, for the fault recorder.
    pub(super) fn address_map(&self) -> AddressMap {
        AddressMap {
            arrays: [self.a.span(), self.b.span(), self.c.span()],
            first: [0, 0, self.range.start],
            elem: self.layout.dtype.size(),
        }
    }

    /// The chunk's pointers into the three mappings, `n` elements each.
    fn pointers<T: Element>(&self) -> (*mut T, *mut T, *mut T, usize) {
        check_type::<T>(&self.layout);
        let start = self.range.start * size_of::<T>();
        let n = self.range.len();
        // SAFETY: `start` plus `n` elements lies inside the a and b mappings
        // (whole arrays) because the range is inside the array; the c
        // mapping begins at the chunk itself.
        unsafe {
            (
                self.a.ptr.as_ptr().add(start).cast::<T>(),
                self.b.ptr.as_ptr().add(start).cast::<T>(),
                self.c.ptr.as_ptr().cast::<T>(),
                n,
            )
        }
    }
}

impl ChunkAccess for WorkerArrays {
    fn range(&self) -> Range<usize> {
        self.range.clone()
    }

    fn reserve(&self, beat: &dyn Fn()) -> Result<(), Errno> {
        reserve_chunk(self.fd.as_fd(), &self.layout, &self.range, beat)
    }

    fn fill<T: Element>(
        &mut self,
        with_c: bool,
        fill: impl FnOnce(&mut [T], &mut [T], Option<&mut [T]>),
    ) -> Result<(), ShmError> {
        let bytes = self.layout.chunk_bytes(&self.range);
        self.a.protect(&bytes, true)?;
        self.b.protect(&bytes, true)?;
        assert!(!with_c || self.c_open, "c was made read-only by close_c");
        let (a, b, c, n) = self.pointers::<T>();
        // SAFETY: the chunk's pages of a and b are now writable in this
        // process, and c's are while `c_open` (asserted when c is wanted);
        // the ranges lie inside the mappings, are aligned for T
        // (page-aligned start), and no other reference to them exists:
        // `&mut self` is unique, and no other worker writes this chunk (the
        // partition is disjoint; other processes map it read-only). The
        // three arrays do not overlap.
        let (a, b, c) = unsafe {
            (
                std::slice::from_raw_parts_mut(a, n),
                std::slice::from_raw_parts_mut(b, n),
                with_c.then(|| std::slice::from_raw_parts_mut(c, n)),
            )
        };
        fill(a, b, c);
        if !self.a_open {
            self.a.protect(&bytes, false)?;
        }
        self.b.protect(&bytes, false)
    }

    fn touch_output(&mut self, beat: &dyn Fn()) {
        for part in steps(0..self.c.len, self.layout.page) {
            self.c.touch_for_writing(&part);
            beat();
        }
    }

    fn open_a(&mut self, writable: bool) -> Result<(), ShmError> {
        let bytes = self.layout.chunk_bytes(&self.range);
        self.a.protect(&bytes, writable)?;
        self.a_open = writable;
        Ok(())
    }

    fn close_c(&mut self) -> Result<(), ShmError> {
        self.c.protect(&(0..self.c.len), false)?;
        self.c_open = false;
        Ok(())
    }

    fn with<T: Element, R>(&mut self, access: Access, f: impl FnOnce(Parts<'_, T>) -> R) -> R {
        let (a, b, c, n) = self.pointers::<T>();
        assert!(access != Access::WriteA || self.a_open, "a is read-only until open_a(true)");
        assert!(access != Access::WriteC || self.c_open, "c was made read-only by close_c");
        // SAFETY: as in `fill`: the chunk lies inside the mappings, is
        // aligned for T, is written by no other process, and `&mut self`
        // makes these the only references this process has to it. What is
        // handed out mutably is mapped writable: c always, a only after
        // `open_a(true)` (asserted). The slices cannot outlive the call.
        f(unsafe { Parts::from_raw(access, a, b, c, n) })
    }

    fn stray_write(&self, array: Array, index: usize, bits: u64) {
        assert!(index < self.layout.len && !self.range.contains(&index), "a stray write lands in another chunk");
        let map = match array {
            Array::A => &self.a,
            Array::B => &self.b,
            Array::C => panic!("c outside the chunk is not mapped in a worker process"),
        };
        let size = self.layout.dtype.size();
        // SAFETY: the address is inside this process's mapping of `a` or `b`
        // (index < len), outside its own chunk, which is the only part of it
        // ever made writable: the mapping is read-only there, so the store
        // traps and the kernel ends the process with SIGSEGV (the fault
        // recorder notes the address first).
        unsafe { trapping_store(map.addr() + index * size, bits, size) };
        std::process::abort()
    }
}

/// A live claim's state: idle, borrowed by its thread, or being written by
/// a stray store.
const IDLE: u32 = 0;
const BORROWED: u32 = 1;
const STRAY: u32 = 2;

#[derive(Debug)]
pub(super) struct ClaimEntry {
    range: Range<usize>,
    state: Arc<AtomicU32>,
}

/// The three arrays mapped read-write into one process, for threads mode,
/// with a registry that keeps the chunks handed out disjoint.
#[derive(Debug)]
pub(crate) struct SharedArrays {
    pub(super) fd: OwnedFd,
    pub(super) layout: Layout,
    pub(super) map: Mapping,
    pub(super) claims: Mutex<Vec<ClaimEntry>>,
}

impl SharedArrays {
    /// Claims `range` for one worker thread: refuses a range that is not a
    /// chunk (whole pages) or overlaps a live claim.
    pub(crate) fn claim(self: &Arc<Self>, range: Range<usize>) -> Result<Claim, ShmError> {
        if !self.layout.is_chunk(&range) {
            return Err(ShmError::NotAChunk(range));
        }
        let mut claims = lock(&self.claims);
        if !range.is_empty() && claims.iter().any(|c| c.range.start < range.end && range.start < c.range.end) {
            return Err(ShmError::Overlap(range));
        }
        let state = Arc::new(AtomicU32::new(IDLE));
        claims.push(ClaimEntry { range: range.clone(), state: Arc::clone(&state) });
        Ok(Claim { arrays: Arc::clone(self), range, state })
    }

    fn ptr<T>(&self, array: Array, index: usize) -> *mut T {
        let offset = array.index() * self.layout.array_bytes + index * self.layout.dtype.size();
        assert!(offset <= self.map.len);
        // SAFETY: offset is within the mapping (asserted above).
        unsafe { self.map.ptr.as_ptr().add(offset).cast() }
    }
}

/// One thread's exclusive chunk of a [`SharedArrays`]; released on drop.
#[derive(Debug)]
pub(crate) struct Claim {
    arrays: Arc<SharedArrays>,
    range: Range<usize>,
    state: Arc<AtomicU32>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut claims = lock(&self.arrays.claims);
        if let Some(i) = claims.iter().position(|c| Arc::ptr_eq(&c.state, &self.state)) {
            claims.swap_remove(i);
        }
    }
}

/// Clears a claim's borrow when the closure ends (or unwinds).
struct Borrowed<'c>(&'c AtomicU32);

impl Drop for Borrowed<'_> {
    fn drop(&mut self) {
        self.0.store(IDLE, Ordering::Release);
    }
}

impl Claim {
    /// Marks the claim borrowed, waiting out a stray store in progress.
    fn borrow(&self) -> Borrowed<'_> {
        while self.state.compare_exchange(IDLE, BORROWED, Ordering::Acquire, Ordering::Relaxed).is_err() {
            std::thread::yield_now();
        }
        Borrowed(&self.state)
    }
}

impl ChunkAccess for Claim {
    fn range(&self) -> Range<usize> {
        self.range.clone()
    }

    fn reserve(&self, beat: &dyn Fn()) -> Result<(), Errno> {
        reserve_chunk(self.arrays.fd.as_fd(), &self.arrays.layout, &self.range, beat)
    }

    fn fill<T: Element>(
        &mut self,
        with_c: bool,
        fill: impl FnOnce(&mut [T], &mut [T], Option<&mut [T]>),
    ) -> Result<(), ShmError> {
        check_type::<T>(&self.arrays.layout);
        let (n, start) = (self.range.len(), self.range.start);
        let [a, b, c] = Array::ALL.map(|arr| self.arrays.ptr::<T>(arr, start));
        let _borrow = self.borrow();
        // SAFETY: as in `with`: an exclusive, borrowed, in-bounds, aligned
        // range of the read-write mapping, in three arrays that do not
        // overlap; the slices cannot outlive the call.
        let (a, b, c) = unsafe {
            (
                std::slice::from_raw_parts_mut(a, n),
                std::slice::from_raw_parts_mut(b, n),
                std::slice::from_raw_parts_mut(c, n),
            )
        };
        fill(a, b, with_c.then_some(c));
        Ok(())
    }

    fn touch_output(&mut self, beat: &dyn Fn()) {
        let base = Array::C.index() * self.arrays.layout.array_bytes;
        let bytes = self.arrays.layout.chunk_bytes(&self.range);
        let _borrow = self.borrow();
        // The claim is whole pages, so the pages touched are its own.
        for part in steps(base + bytes.start..base + bytes.end, self.arrays.layout.page) {
            self.arrays.map.touch_for_writing(&part);
            beat();
        }
    }

    fn open_a(&mut self, _writable: bool) -> Result<(), ShmError> {
        Ok(()) // one read-write mapping: nothing to change
    }

    fn close_c(&mut self) -> Result<(), ShmError> {
        Ok(()) // one read-write mapping: nothing to change
    }

    fn with<T: Element, R>(&mut self, access: Access, f: impl FnOnce(Parts<'_, T>) -> R) -> R {
        check_type::<T>(&self.arrays.layout);
        let n = self.range.len();
        let start = self.range.start;
        let (a, b, c) = (
            self.arrays.ptr::<T>(Array::A, start),
            self.arrays.ptr::<T>(Array::B, start),
            self.arrays.ptr(Array::C, start),
        );
        let _borrow = self.borrow();
        // SAFETY: the claim registry guarantees that no other live claim
        // overlaps this range and `&mut self` that this is the only borrow
        // of it; the borrow flag keeps a stray store out for as long as the
        // slices live (they cannot outlive the call). The range lies inside
        // the mapping (claims are chunks of the array) and is aligned for T.
        f(unsafe { Parts::from_raw(access, a, b, c, n) })
    }

    fn stray_write(&self, array: Array, index: usize, bits: u64) {
        let layout = &self.arrays.layout;
        assert!(index < layout.len && !self.range.contains(&index), "a stray write lands in another chunk");
        // The registry stays locked throughout: no claim can come or go.
        let claims = lock(&self.arrays.claims);
        let owner = claims.iter().find(|c| c.range.contains(&index));
        if let Some(owner) = owner {
            // Wait until the owner holds no reference into its chunk, and
            // keep it out while the store runs.
            while owner.state.compare_exchange(IDLE, STRAY, Ordering::Acquire, Ordering::Relaxed).is_err() {
                std::thread::yield_now();
            }
        }
        let p = self.arrays.ptr::<u8>(array, index);
        // SAFETY: the element lies inside the mapping (index < len). Nothing
        // else accesses it now: its owner's claim is marked as being written
        // (its thread waits before it takes any reference), or no live claim
        // covers it. This is the threads-mode lesson done in a defined way:
        // the store lands, unnoticed, in a neighbour's input.
        unsafe {
            if layout.dtype.size() == 8 {
                p.cast::<u64>().write_volatile(bits)
            } else {
                p.cast::<u32>().write_volatile(bits as u32)
            }
        }
        if let Some(owner) = owner {
            owner.state.store(IDLE, Ordering::Release);
        }
        drop(claims);
    }
}

/// Whether a segment has handed out its one [`SharedArrays`] or an
/// attachment its one [`WorkerArrays`].
#[derive(Debug, Default)]
pub(super) struct Once(AtomicBool);

impl Once {
    /// `Ok` the first time only.
    pub(super) fn take(&self, what: &'static str) -> Result<(), ShmError> {
        if self.0.swap(true, Ordering::AcqRel) { Err(ShmError::AlreadyMapped(what)) } else { Ok(()) }
    }
}
