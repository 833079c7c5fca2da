//! What a worker may touch: its chunk of the arrays, mapped for a process
//! ([`WorkerArrays`]) or claimed within one shared mapping for a thread
//! ([`Claim`]), behind one trait ([`ChunkAccess`]) so that the worker's code
//! is the same in every mode; and what a checker may read: copies out of a
//! read-only mapping of all three arrays ([`ArraysView`]).
//!
//! References into the shared memory are handed out only for a worker's own
//! chunk, only inside a closure, and only with the mutability the accessor
//! names: [`ChunkAccess::write_c`] (`a` and `b` to read, `c` to write),
//! [`ChunkAccess::write_a`] (`a` to write, `b` and `c` to read) and
//! [`ChunkAccess::read`]. Chunks are disjoint and whole pages, so no two
//! workers ever write the same byte.
//!
//! **One writable view per segment per process.** A process can make at
//! most one writable view of a segment at a time — its [`SharedArrays`]
//! (threads, serial) or one [`WorkerArrays`] (a worker process) — keyed by
//! the segment's inode, so two attachments to one descriptor, or a
//! segment's shared arrays beside an attachment of its own descriptor,
//! cannot hand out two `&mut` over the same pages. Read-only views are not
//! limited: they hand out copies, never references.

use std::marker::PhantomData;
use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;

use super::ShmError;
use super::guard::{AddressMap, trapping_store};
use super::layout::Layout;
use super::mapping::{MapRO, MapRW, reserve};
use crate::kernel::{Dtype, Element};
use crate::locks::lock;
use crate::machine::numa::Binding;
use crate::vocab::Array;

/// What a worker does with its chunk, whichever way it is mapped.
pub(crate) trait ChunkAccess: Send {
    /// The element range this chunk covers.
    fn range(&self) -> Range<usize>;
    /// Binds the chunk's pages in all three arrays as `binding` says, to
    /// take effect when they are reserved; the node bound to, for a local
    /// binding.
    fn bind(&self, binding: &Binding) -> Result<Option<u32>, Errno>;
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
    /// Makes the chunk of `array` writable (for the rounds of a kernel
    /// that writes it) or read-only. `c` starts writable, `a` and `b`
    /// read-only.
    fn open(&mut self, array: Array, writable: bool) -> Result<(), ShmError>;
    /// Runs `f` on the chunk: `a` and `b` to read, `c` to write.
    ///
    /// # Panics
    /// If `c` was made read-only.
    fn write_c<T: Element, R>(&mut self, f: impl FnOnce(&[T], &[T], &mut [T]) -> R) -> R;
    /// Runs `f` on the chunk: `a` to write, `b` and `c` to read.
    ///
    /// # Panics
    /// If `a` was not made writable.
    fn write_a<T: Element, R>(&mut self, f: impl FnOnce(&mut [T], &[T], &[T]) -> R) -> R;
    /// Runs `f` on the chunk, all three to read.
    fn read<T: Element, R>(&mut self, f: impl FnOnce(&[T], &[T], &[T]) -> R) -> R;
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

fn check_type<T: Element>(dtype: Dtype) {
    assert_eq!(T::DTYPE, dtype, "element type differs from the segment's");
}

// ---- one writable view per segment per process ----

/// The segments (device, inode) this process has a writable view of.
static WRITABLE: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

/// This process's one writable view of a segment; released on drop.
#[derive(Debug)]
pub(super) struct Writer((u64, u64));

impl Writer {
    /// Takes the writable view of the segment behind `fd`, refusing a
    /// second one while the first lives.
    pub(super) fn take(fd: BorrowedFd<'_>, what: &'static str) -> Result<Writer, ShmError> {
        let st = nix::sys::stat::fstat(fd).map_err(|e| ShmError::sys("fstat", e))?;
        let key = (st.st_dev, st.st_ino);
        let mut held = lock(&WRITABLE);
        if held.contains(&key) {
            return Err(ShmError::AlreadyMapped(what));
        }
        held.push(key);
        Ok(Writer(key))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let mut held = lock(&WRITABLE);
        if let Some(i) = held.iter().position(|k| *k == self.0) {
            held.swap_remove(i);
        }
    }
}

// ---- a worker process's chunk ----

/// A worker process's mappings: all of `a` and `b` read-only, its own pages
/// of `c` read-write (see [`super::Attachment::map_chunk`]).
#[derive(Debug)]
pub(crate) struct WorkerArrays {
    pub(super) fd: OwnedFd,
    pub(super) layout: Layout,
    pub(super) range: Range<usize>,
    pub(super) a: MapRO,
    pub(super) b: MapRO,
    pub(super) c: MapRW,
    pub(super) a_open: bool,
    pub(super) c_open: bool,
    pub(super) _writer: Writer,
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
        check_type::<T>(self.layout.dtype);
        let start = self.range.start * size_of::<T>();
        let n = self.range.len();
        // SAFETY: `start` plus `n` elements lies inside the a and b mappings
        // (whole arrays) because the range is inside the array; the c
        // mapping begins at the chunk itself.
        unsafe {
            (
                self.a.ptr().as_ptr().add(start).cast::<T>(),
                self.b.ptr().as_ptr().add(start).cast::<T>(),
                self.c.ptr().as_ptr().cast::<T>(),
                n,
            )
        }
    }
}

impl ChunkAccess for WorkerArrays {
    fn range(&self) -> Range<usize> {
        self.range.clone()
    }

    fn bind(&self, binding: &Binding) -> Result<Option<u32>, Errno> {
        let bytes = self.layout.chunk_bytes(&self.range);
        let node = self.a.bind(&bytes, binding)?;
        self.b.bind(&bytes, binding)?;
        // The c mapping begins at the chunk.
        self.c.bind(&(0..bytes.len()), binding)?;
        Ok(node)
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
        // SAFETY: this is the process's one writable view of the segment
        // (`_writer`), and the range is its own chunk, which no other
        // process writes (the partition is disjoint); it is made read-only
        // again below, unless a kernel of the run updates it.
        unsafe {
            self.a.protect(&bytes, true)?;
            self.b.protect(&bytes, true)?;
        }
        assert!(!with_c || self.c_open, "c was made read-only");
        let (a, b, c, n) = self.pointers::<T>();
        // SAFETY: the chunk's pages of a and b are now writable in this
        // process, and c's are while `c_open` (asserted when c is wanted);
        // the ranges lie inside the mappings, are aligned for T
        // (page-aligned start), and no other reference to them exists:
        // `&mut self` is unique, this is the process's one writable view,
        // and no other worker writes this chunk. The three arrays do not
        // overlap.
        let (a, b, c) = unsafe {
            (
                std::slice::from_raw_parts_mut(a, n),
                std::slice::from_raw_parts_mut(b, n),
                with_c.then(|| std::slice::from_raw_parts_mut(c, n)),
            )
        };
        fill(a, b, c);
        // SAFETY: removing write access invalidates nothing.
        unsafe {
            if !self.a_open {
                self.a.protect(&bytes, false)?;
            }
            self.b.protect(&bytes, false)
        }
    }

    fn touch_output(&mut self, beat: &dyn Fn()) {
        for part in steps(0..self.c.len(), self.layout.page) {
            // SAFETY: the c mapping is this worker's own chunk, which
            // nothing reads before the worker writes it, and `&mut self`
            // holds no reference into it.
            unsafe { self.c.touch_for_writing(&part) };
            beat();
        }
    }

    fn open(&mut self, array: Array, writable: bool) -> Result<(), ShmError> {
        let bytes = self.layout.chunk_bytes(&self.range);
        match array {
            Array::A => {
                // SAFETY: as in `fill`: the process's one writable view, its
                // own chunk; references into it exist only inside the
                // accessors, which `&mut self` excludes now.
                unsafe { self.a.protect(&bytes, writable)? };
                self.a_open = writable;
            }
            Array::B => panic!("no kernel writes b"),
            Array::C => {
                self.c.protect(&(0..self.c.len()), writable)?;
                self.c_open = writable;
            }
        }
        Ok(())
    }

    fn write_c<T: Element, R>(&mut self, f: impl FnOnce(&[T], &[T], &mut [T]) -> R) -> R {
        assert!(self.c_open, "c was made read-only");
        let (a, b, c, n) = self.pointers::<T>();
        // SAFETY: the chunk lies inside the mappings, is aligned for T, is
        // written by no other process, and `&mut self` makes these the only
        // references this process has to it; c is mapped writable and open
        // (asserted). The slices cannot outlive the call.
        let (sa, sb, sc) = unsafe {
            (std::slice::from_raw_parts(a, n), std::slice::from_raw_parts(b, n), std::slice::from_raw_parts_mut(c, n))
        };
        f(sa, sb, sc)
    }

    fn write_a<T: Element, R>(&mut self, f: impl FnOnce(&mut [T], &[T], &[T]) -> R) -> R {
        assert!(self.a_open, "a is read-only until opened");
        let (a, b, c, n) = self.pointers::<T>();
        // SAFETY: as in `write_c`, with the chunk of a made writable by
        // `open` (asserted).
        let (sa, sb, sc) = unsafe {
            (std::slice::from_raw_parts_mut(a, n), std::slice::from_raw_parts(b, n), std::slice::from_raw_parts(c, n))
        };
        f(sa, sb, sc)
    }

    fn read<T: Element, R>(&mut self, f: impl FnOnce(&[T], &[T], &[T]) -> R) -> R {
        let (a, b, c, n) = self.pointers::<T>();
        // SAFETY: as in `write_c`; nothing is written.
        let (sa, sb, sc) = unsafe {
            (std::slice::from_raw_parts(a, n), std::slice::from_raw_parts(b, n), std::slice::from_raw_parts(c, n))
        };
        f(sa, sb, sc)
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
        unsafe { trapping_store(map.span().start + index * size, bits, size) };
        std::process::abort()
    }
}

// ---- threads: claims within one shared mapping ----

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

/// The three arrays mapped read-write into one process, for threads and
/// serial mode, with a registry that keeps the chunks handed out disjoint.
#[derive(Debug)]
pub(crate) struct SharedArrays {
    pub(super) fd: OwnedFd,
    pub(super) layout: Layout,
    pub(super) map: MapRW,
    pub(super) claims: Mutex<Vec<ClaimEntry>>,
    pub(super) _writer: Writer,
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
        assert!(offset <= self.map.len());
        // SAFETY: offset is within the mapping (asserted above).
        unsafe { self.map.ptr().as_ptr().add(offset).cast() }
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

    fn pointers<T: Element>(&self) -> (*mut T, *mut T, *mut T, usize) {
        check_type::<T>(self.arrays.layout.dtype);
        let start = self.range.start;
        let [a, b, c] = Array::ALL.map(|arr| self.arrays.ptr::<T>(arr, start));
        (a, b, c, self.range.len())
    }
}

impl ChunkAccess for Claim {
    fn range(&self) -> Range<usize> {
        self.range.clone()
    }

    fn bind(&self, binding: &Binding) -> Result<Option<u32>, Errno> {
        let layout = &self.arrays.layout;
        let bytes = layout.chunk_bytes(&self.range);
        let mut node = None;
        for array in Array::ALL {
            let at = array.index() * layout.array_bytes;
            node = self.arrays.map.bind(&(at + bytes.start..at + bytes.end), binding)?;
        }
        Ok(node)
    }

    fn reserve(&self, beat: &dyn Fn()) -> Result<(), Errno> {
        reserve_chunk(self.arrays.fd.as_fd(), &self.arrays.layout, &self.range, beat)
    }

    fn fill<T: Element>(
        &mut self,
        with_c: bool,
        fill: impl FnOnce(&mut [T], &mut [T], Option<&mut [T]>),
    ) -> Result<(), ShmError> {
        let (a, b, c, n) = self.pointers::<T>();
        let _borrow = self.borrow();
        // SAFETY: as in `write_c`: an exclusive, borrowed, in-bounds,
        // aligned range of the read-write mapping, in three arrays that do
        // not overlap; the slices cannot outlive the call.
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
        for part in steps(base + bytes.start..base + bytes.end, self.arrays.layout.page) {
            // SAFETY: the claim is whole pages of c, so the pages touched
            // are its own; the claim is exclusive and borrowed (no stray
            // store runs), and no reference into it lives now.
            unsafe { self.arrays.map.touch_for_writing(&part) };
            beat();
        }
    }

    fn open(&mut self, _array: Array, _writable: bool) -> Result<(), ShmError> {
        Ok(()) // one read-write mapping: nothing to change
    }

    fn write_c<T: Element, R>(&mut self, f: impl FnOnce(&[T], &[T], &mut [T]) -> R) -> R {
        let (a, b, c, n) = self.pointers::<T>();
        let _borrow = self.borrow();
        // SAFETY: the claim registry guarantees that no other live claim
        // overlaps this range and `&mut self` that this is the only borrow
        // of it; the borrow flag keeps a stray store out for as long as the
        // slices live (they cannot outlive the call). The range lies inside
        // the read-write mapping (claims are chunks of the array) and is
        // aligned for T; the three arrays do not overlap.
        let (sa, sb, sc) = unsafe {
            (std::slice::from_raw_parts(a, n), std::slice::from_raw_parts(b, n), std::slice::from_raw_parts_mut(c, n))
        };
        f(sa, sb, sc)
    }

    fn write_a<T: Element, R>(&mut self, f: impl FnOnce(&mut [T], &[T], &[T]) -> R) -> R {
        let (a, b, c, n) = self.pointers::<T>();
        let _borrow = self.borrow();
        // SAFETY: as in `write_c`, with a the one written.
        let (sa, sb, sc) = unsafe {
            (std::slice::from_raw_parts_mut(a, n), std::slice::from_raw_parts(b, n), std::slice::from_raw_parts(c, n))
        };
        f(sa, sb, sc)
    }

    fn read<T: Element, R>(&mut self, f: impl FnOnce(&[T], &[T], &[T]) -> R) -> R {
        let (a, b, c, n) = self.pointers::<T>();
        let _borrow = self.borrow();
        // SAFETY: as in `write_c`; nothing is written.
        let (sa, sb, sc) = unsafe {
            (std::slice::from_raw_parts(a, n), std::slice::from_raw_parts(b, n), std::slice::from_raw_parts(c, n))
        };
        f(sa, sb, sc)
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

// ---- checking: copies out of a read-only mapping ----

/// The three arrays of a segment mapped read-only, for checking them.
#[derive(Debug)]
pub(crate) struct ReadArrays {
    pub(super) map: MapRO,
    pub(super) layout: Layout,
}

/// Where the pages of a run's arrays are (on a NUMA machine), asked
/// through a read-only mapping of them.
pub(crate) trait PageNodes {
    /// The node of every `stride`-th page of `array`'s elements `range`
    /// (negative: unknown), whoever allocated them.
    ///
    /// # Panics
    /// If `range` is outside the arrays.
    fn nodes(&self, array: Array, range: &Range<usize>, stride: usize) -> Result<Vec<i32>, Errno>;
}

impl PageNodes for ReadArrays {
    fn nodes(&self, array: Array, range: &Range<usize>, stride: usize) -> Result<Vec<i32>, Errno> {
        assert!(range.start <= range.end && range.end <= self.layout.len, "a range inside the arrays");
        let bytes = self.layout.chunk_bytes(range);
        let at = array.index() * self.layout.array_bytes;
        self.map.nodes(&(at + bytes.start..at + bytes.end), self.layout.page, stride)
    }
}

impl ReadArrays {
    /// A view for copying elements out.
    pub(crate) fn view(&self) -> ArraysView<'_> {
        ArraysView {
            base: self.map.ptr().as_ptr(),
            per_array: self.layout.array_bytes,
            len: self.layout.len,
            dtype: self.layout.dtype,
            _mapping: PhantomData,
        }
    }
}

/// A read-only view of all of `a`, `b` and `c` (a segment's, or a node's
/// part of an MPI window), which hands out copies, never references: the
/// workers of the run may still hold their chunks, and a worker that
/// ignores the protocol may write while a checker reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ArraysView<'m> {
    base: *const u8,
    per_array: usize,
    len: usize,
    dtype: Dtype,
    _mapping: PhantomData<&'m MapRO>,
}

// SAFETY: the view only copies bytes out of memory that stays mapped
// readable for 'm; that may happen from any thread at once.
unsafe impl Send for ArraysView<'_> {}
// SAFETY: as above.
unsafe impl Sync for ArraysView<'_> {}

impl<'m> ArraysView<'m> {
    /// A view of `len` elements of `dtype` in each of three arrays, `per_array`
    /// bytes apart, from `base`.
    ///
    /// # Safety
    /// `base` points to `3 * per_array` bytes that stay mapped readable for
    /// `'m`.
    ///
    /// # Panics
    /// Unless `len` elements of `dtype` fit in `per_array` bytes, and `base`
    /// and `per_array` are whole 4 KiB pages (a mapping's are).
    #[cfg(feature = "mpi")]
    pub(super) unsafe fn from_raw(base: *const u8, per_array: usize, len: usize, dtype: Dtype) -> ArraysView<'m> {
        assert!(len.checked_mul(dtype.size()).is_some_and(|b| b <= per_array), "the arrays fit their spans");
        assert!((base as usize).is_multiple_of(4096) && per_array.is_multiple_of(4096), "whole pages");
        ArraysView { base, per_array, len, dtype, _mapping: PhantomData }
    }

    /// The element type.
    pub(crate) fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Copies elements `start..start + out.len()` of `array` into `out`.
    ///
    /// # Panics
    /// If the range is outside the arrays or `T` is not their type.
    pub(crate) fn copy<T: Element>(&self, array: Array, start: usize, out: &mut [T]) {
        check_type::<T>(self.dtype);
        assert!(start.checked_add(out.len()).is_some_and(|end| end <= self.len), "a range inside the arrays");
        let offset = array.index() * self.per_array + start * size_of::<T>();
        // SAFETY: the range lies inside the array (asserted) and so inside
        // memory mapped readable for 'm (the constructor's contract); `out`
        // is a distinct, exclusive buffer of the same length. The bytes are
        // copied as plain data — any bit pattern is a valid f64 or f32 —
        // and no reference into the arrays is formed. No thread of this
        // process writes them meanwhile: a team's threads write only inside
        // its steps, and the checks that copy run between steps (in
        // `--mode ranks`, after the ranks met). Another process writing
        // (a worker that ignores the protocol) is outside this program's
        // memory: it can change which bytes are copied, nothing else.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.add(offset).cast::<T>(), out.as_mut_ptr(), out.len());
        }
    }
}

/// Asked in 4 KiB pages, whatever the mapping's page size: the view knows
/// only where its memory is, not how it was mapped. Asking faults in a page
/// that is not there yet (see `nodes_of`): ask once the owner has written
/// its part (in `--mode ranks`, after the ranks met at the end of the
/// filling).
impl PageNodes for ArraysView<'_> {
    fn nodes(&self, array: Array, range: &Range<usize>, stride: usize) -> Result<Vec<i32>, Errno> {
        const PAGE: usize = 4096;
        assert!(range.start <= range.end && range.end <= self.len, "a range inside the arrays");
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let size = self.dtype.size();
        let start = range.start * size / PAGE * PAGE;
        let end = (range.end * size).next_multiple_of(PAGE).min(self.per_array);
        let at = self.base as usize + array.index() * self.per_array;
        // The view's memory is mapped readable for 'm (its constructor's
        // contract) from a page-aligned base, `per_array` bytes (whole pages)
        // per array: these whole pages lie inside it.
        super::numa::nodes_of(at + start, end - start, PAGE, stride)
    }
}
