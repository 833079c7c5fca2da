//! Memory mappings of the segment, and reserving its pages.
//!
//! As in memmap2, mutability is in the type: a [`MapRO`] can only be read,
//! a [`MapRW`] can also be written, and only through `&mut self` or an
//! `unsafe fn` whose caller vouches that nobody else looks at the bytes.
//! Neither hands out references into the mapping: the chunk types above
//! them do, under the rules they enforce (`super::chunk`).

use std::num::NonZeroUsize;
use std::ops::Range;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::fcntl::{FallocateFlags, fallocate};
use nix::sys::mman::{MapFlags, MmapAdvise, ProtFlags, madvise, mmap, mprotect, munmap};

use super::ShmError;
use crate::machine::numa::Binding;

/// A mapping's address range, unmapped on drop (the part both kinds share).
#[derive(Debug)]
struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

impl Region {
    fn new(fd: BorrowedFd<'_>, offset: usize, len: usize, prot: ProtFlags) -> Result<Region, ShmError> {
        let Some(size) = NonZeroUsize::new(len) else {
            // Nothing to map (an idle worker's chunk); dangling but aligned
            // for any element type, as zero-length slices require.
            return Ok(Region { ptr: NonNull::<u64>::dangling().cast(), len: 0 });
        };
        // SAFETY: a fresh MAP_SHARED mapping at an address the kernel picks
        // cannot alias any Rust object; the kernel checks the offset, and a
        // page beyond the end of the file is a SIGBUS on touch, which the
        // callers rule out by checking the layout against fstat and
        // reserving every page before it is touched.
        let ptr = unsafe { mmap(None, size, prot, MapFlags::MAP_SHARED, fd, offset as libc::off_t) }
            .map_err(|e| ShmError::sys("mmap", e))?;
        Ok(Region { ptr: ptr.cast(), len })
    }
}

impl Region {
    /// The address range of `bytes` (inside the region).
    fn addresses(&self, bytes: &Range<usize>) -> (usize, usize) {
        assert!(bytes.start <= bytes.end && bytes.end <= self.len, "a range inside the mapping");
        (self.ptr.as_ptr() as usize + bytes.start, bytes.len())
    }

    fn bind(&self, bytes: &Range<usize>, binding: &Binding) -> Result<Option<u32>, Errno> {
        let (addr, len) = self.addresses(bytes);
        super::numa::bind(addr, len, binding)
    }

    fn nodes(&self, bytes: &Range<usize>, page: usize, stride: usize) -> Result<Vec<i32>, Errno> {
        let (addr, len) = self.addresses(bytes);
        super::numa::nodes_of(addr, len, page, stride)
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: we mapped exactly this range, and nothing borrowed from
            // it outlives it: the chunk types tie every slice to a borrow of
            // the mapping's owner.
            let _ = unsafe { munmap(self.ptr.cast(), self.len) };
        }
    }
}

/// A read-only shared mapping.
#[derive(Debug)]
pub(super) struct MapRO(Region);

/// A read-write shared mapping.
#[derive(Debug)]
pub(super) struct MapRW(Region);

// SAFETY: a mapping is an address range that hands out no references by
// itself; reads of a MapRO, and the atomic accesses to the control block,
// may happen from any thread. Writes need `&mut MapRW` or an `unsafe fn`
// whose caller guarantees exclusivity.
unsafe impl Send for MapRO {}
// SAFETY: as above.
unsafe impl Sync for MapRO {}
// SAFETY: as above.
unsafe impl Send for MapRW {}
// SAFETY: as above.
unsafe impl Sync for MapRW {}

impl MapRO {
    /// Maps `len` bytes of `fd` at `offset`, read-only.
    pub(super) fn new(fd: BorrowedFd<'_>, offset: usize, len: usize) -> Result<MapRO, ShmError> {
        Region::new(fd, offset, len, ProtFlags::PROT_READ).map(MapRO)
    }

    pub(super) fn ptr(&self) -> NonNull<u8> {
        self.0.ptr
    }

    /// The addresses the mapping covers.
    pub(super) fn span(&self) -> Range<usize> {
        self.0.ptr.as_ptr() as usize..self.0.ptr.as_ptr() as usize + self.0.len
    }

    /// Copies `len` bytes at `offset` out of the mapping.
    pub(super) fn read_bytes(&self, offset: usize, len: usize) -> Vec<u8> {
        assert!(offset.checked_add(len).is_some_and(|end| end <= self.0.len), "a read inside the mapping");
        let mut out = vec![0u8; len];
        // SAFETY: the range lies inside the mapping (asserted) and `out` is a
        // fresh buffer of `len` bytes; the bytes are copied as plain data,
        // without forming a reference into memory another process may
        // write.
        unsafe { std::ptr::copy_nonoverlapping(self.0.ptr.as_ptr().add(offset), out.as_mut_ptr(), len) };
        out
    }

    /// Binds the pages of `bytes` (page-aligned) as `binding` says, before
    /// they are allocated; the node bound to, for a local binding.
    pub(super) fn bind(&self, bytes: &Range<usize>, binding: &Binding) -> Result<Option<u32>, Errno> {
        self.0.bind(bytes, binding)
    }

    /// The node of every `stride`-th page of `bytes` (see
    /// [`super::numa::nodes_of`]).
    pub(super) fn nodes(&self, bytes: &Range<usize>, page: usize, stride: usize) -> Result<Vec<i32>, Errno> {
        self.0.nodes(bytes, page, stride)
    }

    /// Makes `bytes` (page-aligned, inside the mapping) writable or
    /// read-only again.
    ///
    /// # Safety
    ///
    /// Making a range writable lets stores through pointers into it
    /// succeed; the caller must hold the only claim on the range for as
    /// long as it stays writable (the chunk types do).
    pub(super) unsafe fn protect(&self, bytes: &Range<usize>, writable: bool) -> Result<(), ShmError> {
        protect(&self.0, bytes, writable)
    }
}

impl MapRW {
    /// Maps `len` bytes of `fd` at `offset`, read-write.
    pub(super) fn new(fd: BorrowedFd<'_>, offset: usize, len: usize) -> Result<MapRW, ShmError> {
        Region::new(fd, offset, len, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE).map(MapRW)
    }

    pub(super) fn ptr(&self) -> NonNull<u8> {
        self.0.ptr
    }

    pub(super) fn len(&self) -> usize {
        self.0.len
    }

    /// The addresses the mapping covers.
    pub(super) fn span(&self) -> Range<usize> {
        self.0.ptr.as_ptr() as usize..self.0.ptr.as_ptr() as usize + self.0.len
    }

    /// Binds the pages of `bytes` (page-aligned) as `binding` says, before
    /// they are allocated; the node bound to, for a local binding.
    pub(super) fn bind(&self, bytes: &Range<usize>, binding: &Binding) -> Result<Option<u32>, Errno> {
        self.0.bind(bytes, binding)
    }

    /// The node of every `stride`-th page of `bytes` (see
    /// [`super::numa::nodes_of`]).
    pub(super) fn nodes(&self, bytes: &Range<usize>, page: usize, stride: usize) -> Result<Vec<i32>, Errno> {
        self.0.nodes(bytes, page, stride)
    }

    /// Makes `bytes` (page-aligned, inside the mapping) read-only, or
    /// writable again. Removing write access cannot invalidate anything;
    /// giving it back only restores what the mapping was made with.
    pub(super) fn protect(&self, bytes: &Range<usize>, writable: bool) -> Result<(), ShmError> {
        protect(&self.0, bytes, writable)
    }

    /// Faults the pages of `bytes` in for writing: MADV_POPULATE_WRITE
    /// (Linux ≥ 5.14) batches the faults without writing; older kernels get
    /// zeroes written.
    ///
    /// # Safety
    ///
    /// On old kernels this writes zeroes: the caller owns `bytes` in every
    /// process (no one else reads or writes them now), and means to
    /// overwrite them anyway.
    pub(super) unsafe fn touch_for_writing(&self, bytes: &Range<usize>) {
        if bytes.is_empty() {
            return;
        }
        assert!(bytes.end <= self.0.len, "a range inside the mapping");
        // SAFETY: the range lies inside this mapping (asserted);
        // MADV_POPULATE_WRITE only pre-faults pages and does not change
        // their contents.
        let populated = unsafe {
            madvise(self.0.ptr.add(bytes.start).cast(), bytes.len(), MmapAdvise::MADV_POPULATE_WRITE).is_ok()
        };
        if !populated {
            // SAFETY: inside the writable mapping (asserted), and owned
            // exclusively by the caller (this function's contract).
            unsafe { std::ptr::write_bytes(self.0.ptr.as_ptr().add(bytes.start), 0, bytes.len()) };
        }
    }

    /// Copies `bytes` into the mapping at `offset`: for a segment's header,
    /// written before any other process can see the segment, hence `&mut`.
    pub(super) fn write_bytes(&mut self, offset: usize, bytes: &[u8]) {
        assert!(offset.checked_add(bytes.len()).is_some_and(|end| end <= self.0.len), "a write inside the mapping");
        // SAFETY: the range lies inside this writable mapping (asserted), and
        // `&mut self` means no reference into it exists in this process.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.0.ptr.as_ptr().add(offset), bytes.len()) };
    }
}

fn protect(region: &Region, bytes: &Range<usize>, writable: bool) -> Result<(), ShmError> {
    if bytes.is_empty() {
        return Ok(());
    }
    assert!(bytes.start <= bytes.end && bytes.end <= region.len, "a range inside the mapping");
    let prot = if writable { ProtFlags::PROT_READ | ProtFlags::PROT_WRITE } else { ProtFlags::PROT_READ };
    // SAFETY: the range lies inside this mapping (asserted) and mprotect
    // checks its alignment; changing protection moves no memory.
    unsafe { mprotect(region.ptr.add(bytes.start).cast(), bytes.len(), prot) }.map_err(|e| ShmError::sys("mprotect", e))
}

/// Reserves `len` bytes at `offset` of the file (allocating the pages now,
/// so that touching them later cannot fail).
///
/// It never grows the file (`FALLOC_FL_KEEP_SIZE`): a POSIX object that
/// another process truncated under the run stays truncated, so the next
/// touch of a lost page is a SIGBUS that is reported — rather than the file
/// silently grown back with fresh zero pages where the control block was,
/// which would desynchronise every party without a word.
pub(super) fn reserve(fd: BorrowedFd<'_>, offset: usize, len: usize) -> Result<(), Errno> {
    if len == 0 {
        return Ok(());
    }
    match fallocate(fd, FallocateFlags::FALLOC_FL_KEEP_SIZE, offset as libc::off_t, len as libc::off_t) {
        // Filesystems without fallocate: posix_fallocate emulates it (only
        // within the size the segment was made with).
        Err(Errno::EOPNOTSUPP) => nix::fcntl::posix_fallocate(fd, offset as libc::off_t, len as libc::off_t),
        other => other,
    }
}

/// The page size of the filesystem behind `fd`: a hugetlbfs file (a memfd
/// made with MFD_HUGETLB) maps in huge pages only.
pub(super) fn file_page_size(fd: BorrowedFd<'_>) -> usize {
    match nix::sys::statfs::fstatfs(fd) {
        Ok(st) if st.filesystem_type() == nix::sys::statfs::HUGETLBFS_MAGIC => st.optimal_transfer_size() as usize,
        _ => crate::machine::page_size(),
    }
}
