//! Memory mappings of the segment, and reserving or releasing its pages.

use std::num::NonZeroUsize;
use std::ops::Range;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::fcntl::{FallocateFlags, fallocate};
use nix::sys::mman::{MapFlags, MmapAdvise, ProtFlags, madvise, mmap, mprotect, munmap};

use super::ShmError;

/// A memory mapping, unmapped on drop.
#[derive(Debug)]
pub(super) struct Mapping {
    pub(super) ptr: NonNull<u8>,
    pub(super) len: usize,
}

// SAFETY: a Mapping is an address range; it hands out no references itself.
// Shared access goes through atomics (the control block) or through chunks
// whose disjointness the owners below enforce.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    pub(super) fn new(fd: BorrowedFd<'_>, offset: usize, len: usize, writable: bool) -> Result<Mapping, ShmError> {
        let Some(size) = NonZeroUsize::new(len) else {
            // Nothing to map (an idle worker's chunk); dangling but aligned
            // for any element type, as zero-length slices require.
            return Ok(Mapping { ptr: NonNull::<u64>::dangling().cast(), len: 0 });
        };
        let prot = if writable { ProtFlags::PROT_READ | ProtFlags::PROT_WRITE } else { ProtFlags::PROT_READ };
        // SAFETY: a fresh MAP_SHARED mapping at an address the kernel picks
        // cannot alias any Rust object; the file is ours and at least
        // `offset + len` long (the callers check the layout against fstat).
        let ptr = unsafe { mmap(None, size, prot, MapFlags::MAP_SHARED, fd, offset as libc::off_t) }
            .map_err(|e| ShmError::sys("mmap", e))?;
        Ok(Mapping { ptr: ptr.cast(), len })
    }

    pub(super) fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// The addresses the mapping covers.
    pub(super) fn span(&self) -> std::ops::Range<usize> {
        self.addr()..self.addr() + self.len
    }

    pub(super) fn protect(&self, bytes: &Range<usize>, writable: bool) -> Result<(), ShmError> {
        if bytes.is_empty() {
            return Ok(());
        }
        assert!(bytes.end <= self.len);
        let prot = if writable { ProtFlags::PROT_READ | ProtFlags::PROT_WRITE } else { ProtFlags::PROT_READ };
        // SAFETY: the range lies inside this mapping (asserted) and starts on
        // a page (chunk byte ranges are page multiples). Removing write
        // access cannot invalidate a shared reference; adding it is only
        // done while the caller holds the unique claim on the range.
        unsafe { mprotect(self.ptr.add(bytes.start).cast(), bytes.len(), prot) }
            .map_err(|e| ShmError::sys("mprotect", e))
    }

    /// Faults the pages in for writing: MADV_POPULATE_WRITE (Linux ≥ 5.14)
    /// batches the faults without writing; older kernels get zeroes written.
    /// The caller owns the range exclusively (it is about to overwrite it).
    pub(super) fn touch_for_writing(&self, bytes: &Range<usize>) {
        if bytes.is_empty() {
            return;
        }
        assert!(bytes.end <= self.len);
        // SAFETY: the range lies inside this mapping; MADV_POPULATE_WRITE
        // only pre-faults pages and does not change their contents.
        let populated =
            unsafe { madvise(self.ptr.add(bytes.start).cast(), bytes.len(), MmapAdvise::MADV_POPULATE_WRITE).is_ok() };
        if !populated {
            // SAFETY: inside the mapping (asserted), writable (callers pass
            // their own chunk of c), and exclusively owned by the caller.
            unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(bytes.start), 0, bytes.len()) };
        }
    }

    /// Copies `len` bytes at `offset` out of the mapping.
    pub(super) fn read_bytes(&self, offset: usize, len: usize) -> Vec<u8> {
        assert!(offset + len <= self.len);
        let mut out = vec![0u8; len];
        // SAFETY: the range lies inside the mapping (asserted) and `out` is a
        // fresh buffer of `len` bytes; the bytes are plain data.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(offset), out.as_mut_ptr(), len) };
        out
    }

    /// Copies `bytes` into the mapping at `offset` (the mapping is writable
    /// and nothing else reads that range yet).
    pub(super) fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.len);
        // SAFETY: the range lies inside this writable mapping (asserted); the
        // caller writes the header before any other process can attach.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.as_ptr().add(offset), bytes.len()) };
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: we mapped exactly this range and nothing borrowed from
            // it outlives the mapping (borrows are tied to `&self`).
            let _ = unsafe { munmap(self.ptr.cast(), self.len) };
        }
    }
}

/// Reserves `len` bytes at `offset` of the file (allocating the pages now,
/// so that touching them later cannot fail).
pub(super) fn reserve(fd: BorrowedFd<'_>, offset: usize, len: usize) -> Result<(), Errno> {
    if len == 0 {
        return Ok(());
    }
    match fallocate(fd, FallocateFlags::empty(), offset as libc::off_t, len as libc::off_t) {
        // Filesystems without fallocate: posix_fallocate emulates it.
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
