//! An MPI-3 shared window (`--mode ranks`): the HPC world's answer to
//! `multiprocessing.Array`, as the other segment of vecpar.
//!
//! The ranks of one node allocate one window together (node rank 0 holds
//! the node's part of `a`, `b` and `c`, the others ask where it is with
//! `MPI_Win_shared_query`), and each computes its own chunk with the same
//! kernels as vecpar's workers. As a worker process maps them, a rank sees
//! `a`, `b` and the other ranks' parts of `c` read-only (`mprotect` on its
//! own view): its own chunks of `a` and `b` are writable only while it
//! fills them (and `a` for `nstream`), so a stray store into a neighbour's
//! part is stopped by the MMU.
//!
//! Open MPI does not page-align a shared window (its base was 16 or 264
//! bytes into a page here), so rank 0 allocates one page more and every
//! rank aligns the node's arrays by hand. MPI calls that need `unsafe` (the
//! window, and `MPI_Abort` for the panic hook) live here, with the rest of
//! vecpar's shared memory.

use std::ffi::{c_int, c_void};
use std::ops::Range;
use std::ptr::NonNull;

use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::SimpleCommunicator;
use nix::errno::Errno;
use nix::sys::mman::{MmapAdvise, ProtFlags, madvise, mprotect};

use super::ShmError;
use super::chunk::{ArraysView, ChunkAccess};
use crate::kernel::{Dtype, Element};
use crate::machine::numa::Binding;
use crate::vocab::Array;

const PAGE: usize = 4096;

/// Ends the whole MPI job with `code` (the panic hook's last act: a rank
/// that unwound into `MPI_Finalize` would wait forever for ranks that wait
/// for it).
pub(crate) fn abort_job(code: i32) -> ! {
    // SAFETY: MPI is initialised (the hook is set after MPI_Init) and
    // MPI_COMM_WORLD is always valid; MPI_Abort does not return.
    unsafe { ffi::MPI_Abort(ffi::RSMPI_COMM_WORLD, code as c_int) };
    std::process::abort()
}

/// Ends this process now with `code`, running no exit handler (MPI's own
/// would wait for ranks that are gone).
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions; nothing of this process runs
    // after it.
    unsafe { libc::_exit(code) }
}

/// The bytes of each array of a node's window of `node_len` elements of
/// `dtype` (whole pages), and of the whole window (the three arrays and
/// the page their start is aligned in); `None` beyond the address space.
pub(crate) fn window_bytes(dtype: Dtype, node_len: usize) -> Option<(usize, usize)> {
    let per_array = node_len.checked_mul(dtype.size())?.checked_next_multiple_of(PAGE)?;
    Some((per_array, per_array.checked_mul(3)?.checked_add(PAGE)?))
}

/// A node's part of `a`, `b` and `c` in one MPI shared window, as this rank
/// sees it.
#[derive(Debug)]
pub(crate) struct Window {
    win: ffi::MPI_Win,
    /// The page-aligned start of the node's `a`; `b` and `c` follow, each
    /// `per_array` bytes on.
    base: NonNull<u8>,
    per_array: usize,
    dtype: Dtype,
    /// Every node rank's elements, node-relative; this rank's is `chunks[me]`.
    chunks: Vec<Range<usize>>,
    me: usize,
    /// Whether this rank's one [`WindowChunk`] was handed out.
    taken: std::cell::Cell<bool>,
    /// The thread that initialised MPI and made the window (MPI is
    /// initialised FUNNELED: only it may call MPI).
    owner: std::thread::ThreadId,
}

fn check(rc: c_int, what: &str) -> Result<(), ShmError> {
    if rc == 0 { Ok(()) } else { Err(ShmError::Window(format!("{what} failed (MPI error {rc})"))) }
}

impl Window {
    /// Allocates (node rank 0) or finds (the others) the node's arrays:
    /// `chunks` are every node rank's elements, node-relative and
    /// page-aligned, in node-rank order. Collective over `node`.
    pub(crate) fn allocate(
        node: &SimpleCommunicator,
        dtype: Dtype,
        chunks: Vec<Range<usize>>,
        me: usize,
    ) -> Result<Window, ShmError> {
        // The chunks are handed out as disjoint, page-aligned pieces: check
        // that they are, rather than trust the caller.
        let page = PAGE / dtype.size();
        let mut next = 0usize;
        for (r, c) in chunks.iter().enumerate() {
            let last = r + 1 == chunks.len();
            if c.start != next
                || c.end < c.start
                || !c.start.is_multiple_of(page)
                || (!last && !c.end.is_multiple_of(page))
            {
                return Err(ShmError::Window(format!(
                    "node rank {r}'s elements {c:?} do not follow the previous rank's on a page boundary"
                )));
            }
            next = c.end;
        }
        if me >= chunks.len() {
            return Err(ShmError::Window(format!("node rank {me} but the node has {} chunks", chunks.len())));
        }
        let node_len = chunks.last().map_or(0, |c| c.end);
        let (per_array, total) = window_bytes(dtype, node_len)
            .ok_or_else(|| ShmError::Window(format!("{node_len} elements do not fit in the address space")))?;
        let size = if me == 0 { total } else { 0 };
        // SAFETY: an out-handle zeroed as rsmpi's own wrappers do (its type
        // differs between MPI libraries and is never inspected).
        let mut win: ffi::MPI_Win = unsafe { std::mem::zeroed() };
        let mut mine: *mut c_void = std::ptr::null_mut();
        // SAFETY: `node` is a valid communicator for the call; the out
        // pointers point at locals of the right types.
        let rc = unsafe {
            ffi::MPI_Win_allocate_shared(
                size as ffi::MPI_Aint,
                dtype.size() as c_int,
                ffi::RSMPI_INFO_NULL,
                node.as_raw(),
                (&mut mine as *mut *mut c_void).cast(),
                &mut win,
            )
        };
        check(rc, "MPI_Win_allocate_shared")?;
        let (mut qsize, mut qdisp, mut qbase): (ffi::MPI_Aint, c_int, *mut c_void) = (0, 0, std::ptr::null_mut());
        // SAFETY: `win` was just created; rank 0 of its group exists.
        let rc = unsafe {
            ffi::MPI_Win_shared_query(win, 0, &mut qsize, &mut qdisp, (&mut qbase as *mut *mut c_void).cast())
        };
        check(rc, "MPI_Win_shared_query")?;
        if (qsize as usize) < total || qbase.is_null() {
            return Err(ShmError::Window(format!("the shared window has {qsize} bytes, not {total}")));
        }
        let pad = (PAGE - qbase as usize % PAGE) % PAGE;
        // SAFETY: `pad` < PAGE, and rank 0's segment has PAGE bytes beyond
        // the arrays, so the aligned base is inside it.
        let base = NonNull::new(unsafe { qbase.cast::<u8>().add(pad) }).expect("a non-null window");
        // A passive-target epoch for the whole run: loads and stores, with
        // MPI_Win_sync where ranks hand memory over.
        // SAFETY: `win` is valid; NOCHECK asserts no conflicting lock, true
        // as every rank takes the same shared lock.
        check(unsafe { ffi::MPI_Win_lock_all(ffi::MPI_MODE_NOCHECK as c_int, win) }, "MPI_Win_lock_all")?;
        let w = Window {
            win,
            base,
            per_array,
            dtype,
            chunks,
            me,
            taken: std::cell::Cell::new(false),
            owner: std::thread::current().id(),
        };
        // Everything read-only but this rank's own part of c.
        w.protect(Array::A, None, false)?;
        w.protect(Array::B, None, false)?;
        w.protect(Array::C, None, false)?;
        w.protect(Array::C, Some(me), true)?;
        Ok(w)
    }

    /// Makes all of `array` (`None`) or node rank `r`'s part of it
    /// writable or read-only in this rank's view.
    fn protect(&self, array: Array, r: Option<usize>, writable: bool) -> Result<(), ShmError> {
        let size = self.dtype.size();
        let elems = match r {
            Some(r) => self.chunks[r].clone(),
            None => 0..self.chunks.last().map_or(0, |c| c.end),
        };
        let start = array.index() * self.per_array + elems.start * size;
        let len = (elems.len() * size).div_ceil(PAGE) * PAGE;
        if len == 0 {
            return Ok(());
        }
        let prot = if writable { ProtFlags::PROT_READ | ProtFlags::PROT_WRITE } else { ProtFlags::PROT_READ };
        // SAFETY: the range starts on a page (chunks are whole pages, arrays
        // start on pages) and lies inside the node's arrays, inside the
        // window's segment; changing protection invalidates no reference
        // (write access is only removed from memory no live `&mut` covers:
        // this rank's slices exist only inside `with`/`fill`).
        unsafe { mprotect(self.base.add(start).cast(), len, prot) }.map_err(|e| ShmError::sys("mprotect", e))
    }

    /// `MPI_Win_sync`: this rank's stores become visible to the node. Off
    /// the thread that may call MPI, a full fence does what it does for
    /// memory that is shared (the window is).
    pub(crate) fn sync(&self) {
        if std::thread::current().id() != self.owner {
            std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
            return;
        }
        // SAFETY: `win` is valid and inside its lock_all epoch, and this is
        // the thread that initialised MPI (FUNNELED).
        unsafe { ffi::MPI_Win_sync(self.win) };
    }

    /// The node's arrays, read-only, for checking them.
    pub(crate) fn view(&self) -> ArraysView<'_> {
        let len = self.chunks.last().map_or(0, |c| c.end);
        // SAFETY: the window's segment holds the node's three arrays,
        // `per_array` bytes each from `base`, mapped (at least readable)
        // until the window is freed, which `&self` outlives.
        unsafe { ArraysView::from_raw(self.base.as_ptr(), self.per_array, len, self.dtype) }
    }

    /// Every node rank's elements, node-relative.
    pub(crate) fn chunks(&self) -> &[Range<usize>] {
        &self.chunks
    }

    /// This rank's chunk, for an executor: once (two would alias the same
    /// memory mutably).
    ///
    /// # Panics
    ///
    /// If it was handed out before.
    pub(crate) fn chunk(&self) -> WindowChunk<'_> {
        assert!(!self.taken.replace(true), "a rank's chunk of the window is handed out once");
        WindowChunk { window: self, a_open: false, c_open: true }
    }

    /// The `oob-write` fault of a rank: a store into the next node rank's
    /// part of `a`, which this rank's view maps read-only, so the MMU stops
    /// it and the rank dies of SIGSEGV. `None` when the node has one rank.
    pub(crate) fn stray_into_neighbour(&self) -> Option<()> {
        let next = (self.me + 1) % self.chunks.len();
        if next == self.me || self.chunks[next].is_empty() {
            return None;
        }
        let at = self.chunks[next].start * self.dtype.size();
        // SAFETY: the address is inside the window's segment and read-only
        // in this view (protected in `allocate`), so the store traps.
        unsafe {
            super::guard::trapping_store(self.base.as_ptr() as usize + at, 0x4093_4A00_0000_0000, self.dtype.size())
        };
        Some(())
    }

    fn ptr<T: Element>(&self, array: Array) -> *mut T {
        assert_eq!(T::DTYPE, self.dtype, "element type differs from the window's");
        self.byte_ptr(array).cast()
    }

    /// Where this rank's chunk of `array` begins.
    fn byte_ptr(&self, array: Array) -> *mut u8 {
        let off = array.index() * self.per_array + self.chunks[self.me].start * self.dtype.size();
        // SAFETY: inside the node's arrays (the chunk lies inside them).
        unsafe { self.base.as_ptr().add(off) }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // Give the library back the memory as it made it, then free.
        let _ = self.protect(Array::A, None, true);
        let _ = self.protect(Array::B, None, true);
        let _ = self.protect(Array::C, None, true);
        // SAFETY: the epoch opened in `allocate` is closed once, and the
        // window is freed once; nothing uses its memory afterwards (every
        // WindowChunk borrows this Window).
        unsafe {
            ffi::MPI_Win_unlock_all(self.win);
            ffi::MPI_Win_free(&mut self.win);
        }
    }
}

/// A rank's own chunk of a [`Window`].
#[derive(Debug)]
pub(crate) struct WindowChunk<'w> {
    window: &'w Window,
    a_open: bool,
    c_open: bool,
}

// SAFETY: the chunk's memory is this rank's alone (the node's chunks are
// disjoint, and `Window::chunk` hands this rank's out once), so the one
// WindowChunk is the only user of its pointers on whichever thread it runs;
// what it asks of the Window from there is `mprotect` (any thread) and
// `sync`, which calls MPI only on the owning thread. It never crosses to
// another thread in vecpar (ChunkAccess asks for Send because worker
// threads own theirs), and Window itself is not Sync.
unsafe impl Send for WindowChunk<'_> {}

impl WindowChunk<'_> {
    /// The bytes of this rank's chunk of one array, in whole pages.
    fn own_bytes(&self) -> usize {
        (self.len() * self.window.dtype.size()).div_ceil(PAGE) * PAGE
    }

    fn len(&self) -> usize {
        self.window.chunks[self.window.me].len()
    }

    fn pointers<T: Element>(&self) -> (*mut T, *mut T, *mut T, usize) {
        let w = self.window;
        (w.ptr::<T>(Array::A), w.ptr::<T>(Array::B), w.ptr::<T>(Array::C), self.len())
    }
}

impl ChunkAccess for WindowChunk<'_> {
    fn range(&self) -> Range<usize> {
        0..self.len()
    }

    fn bind(&self, binding: &Binding) -> Result<Option<u32>, Errno> {
        // This rank's part of each array of the node's window, bound before
        // `reserve` faults it in.
        let bytes = self.own_bytes();
        let mut node = None;
        for array in Array::ALL {
            node = super::numa::bind(self.window.byte_ptr(array) as usize, bytes, binding)?;
        }
        Ok(node)
    }

    fn reserve(&self, beat: &dyn Fn()) -> Result<(), Errno> {
        // The library created the pages; fault them in now, where running
        // out of space is an error code (MADV_POPULATE_WRITE) and not a
        // SIGBUS at first touch. Own pages of a and b are writable for it.
        let bytes = self.own_bytes();
        for array in Array::ALL {
            if bytes == 0 {
                break;
            }
            let w = self.window;
            let _ = w.protect(array, Some(w.me), true);
            let p = w.byte_ptr(array);
            // SAFETY: the range is this rank's chunk of `array`, writable
            // for the call; populating does not change its contents.
            let r =
                unsafe { madvise(NonNull::new(p.cast()).expect("non-null"), bytes, MmapAdvise::MADV_POPULATE_WRITE) };
            if array != Array::C {
                let _ = w.protect(array, Some(w.me), false);
            }
            match r {
                Ok(()) | Err(Errno::EINVAL) => {} // EINVAL: a kernel before 5.14; first touch will do
                Err(e) => return Err(e),
            }
            beat();
        }
        Ok(())
    }

    fn fill<T: Element>(
        &mut self,
        with_c: bool,
        fill: impl FnOnce(&mut [T], &mut [T], Option<&mut [T]>),
    ) -> Result<(), ShmError> {
        let w = self.window;
        assert!(!with_c || self.c_open, "c was made read-only");
        w.protect(Array::A, Some(w.me), true)?;
        w.protect(Array::B, Some(w.me), true)?;
        let n = self.len();
        // SAFETY: this rank's chunks of a and b are now writable in its
        // view, and of c while `c_open`; they lie inside the window, are
        // page-aligned, do not overlap, and no other reference to them
        // exists (`&mut self`; other ranks never touch this rank's chunk).
        let (a, b, c) = unsafe {
            (
                std::slice::from_raw_parts_mut(w.ptr::<T>(Array::A), n),
                std::slice::from_raw_parts_mut(w.ptr::<T>(Array::B), n),
                with_c.then(|| std::slice::from_raw_parts_mut(w.ptr::<T>(Array::C), n)),
            )
        };
        fill(a, b, c);
        if !self.a_open {
            w.protect(Array::A, Some(w.me), false)?;
        }
        w.protect(Array::B, Some(w.me), false)?;
        w.sync();
        Ok(())
    }

    fn touch_output(&mut self, _beat: &dyn Fn()) {
        // Populated by `reserve`.
    }

    fn open(&mut self, array: Array, writable: bool) -> Result<(), ShmError> {
        self.window.protect(array, Some(self.window.me), writable)?;
        match array {
            Array::A => self.a_open = writable,
            Array::B => {}
            Array::C => self.c_open = writable,
        }
        Ok(())
    }

    fn write_c<T: Element, R>(&mut self, f: impl FnOnce(&[T], &[T], &mut [T]) -> R) -> R {
        assert!(self.c_open, "c was made read-only");
        let (a, b, c, n) = self.pointers::<T>();
        // SAFETY: as in `fill`: this rank's own chunks, writable in its view
        // where written (asserted above), disjoint, aligned, and borrowed
        // only for the call.
        let (sa, sb, sc) = unsafe {
            (std::slice::from_raw_parts(a, n), std::slice::from_raw_parts(b, n), std::slice::from_raw_parts_mut(c, n))
        };
        let out = f(sa, sb, sc);
        self.window.sync();
        out
    }

    fn write_a<T: Element, R>(&mut self, f: impl FnOnce(&mut [T], &[T], &[T]) -> R) -> R {
        assert!(self.a_open, "a is read-only until opened");
        let (a, b, c, n) = self.pointers::<T>();
        // SAFETY: as in `write_c`, with a the one written.
        let (sa, sb, sc) = unsafe {
            (std::slice::from_raw_parts_mut(a, n), std::slice::from_raw_parts(b, n), std::slice::from_raw_parts(c, n))
        };
        let out = f(sa, sb, sc);
        self.window.sync();
        out
    }

    fn read<T: Element, R>(&mut self, f: impl FnOnce(&[T], &[T], &[T]) -> R) -> R {
        let (a, b, c, n) = self.pointers::<T>();
        // SAFETY: as in `write_c`; nothing is written.
        let (sa, sb, sc) = unsafe {
            (std::slice::from_raw_parts(a, n), std::slice::from_raw_parts(b, n), std::slice::from_raw_parts(c, n))
        };
        f(sa, sb, sc)
    }

    fn stray_write(&self, _array: Array, _index: usize, _bits: u64) {
        // A rank has one chunk and no worker beside it inside the rank; its
        // stray write goes to a neighbour rank (`Window::stray_into_neighbour`).
    }
}
