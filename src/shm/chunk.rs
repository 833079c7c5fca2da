//! What a worker may touch: its chunk of the arrays, mapped for a process
//! ([`WorkerArrays`]) or claimed within one shared mapping for a thread
//! ([`Claim`]), behind one trait ([`ChunkAccess`]) so the worker's code is the
//! same in every mode.

use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;

use super::layout::{Layout, stream_index};
use super::mapping::{Mapping, reserve};
use super::{ShmError, guard};
use crate::kernel::{Element, Stream};

/// What a worker does with its chunk, whichever way it is mapped.
pub trait ChunkAccess: Send {
    /// The element range this chunk covers.
    fn range(&self) -> Range<usize>;
    /// Reserves the chunk's pages in all three arrays (fallocate).
    fn reserve(&self) -> Result<(), Errno>;
    /// Lets `fill` write the chunk of `a` and `b` (and only for that long).
    fn fill_inputs<T: Element>(&mut self, fill: impl FnOnce(&mut [T], &mut [T])) -> Result<(), ShmError>;
    /// Faults in the chunk of `c` for writing.
    fn touch_output(&mut self);
    /// The chunk: `a` and `b` to read, `c` to write.
    fn parts<T: Element>(&mut self) -> (&[T], &[T], &mut [T]);
    /// Fault injection: writes `bits` at element `index` of `stream`, outside
    /// this chunk. A process mapping stops it (SIGSEGV); a thread's does not.
    fn write_outside(&self, stream: Stream, index: usize, bits: u64);
}

fn reserve_chunk(fd: BorrowedFd<'_>, layout: &Layout, range: &Range<usize>) -> Result<(), Errno> {
    let bytes = layout.chunk_bytes(range);
    for offset in layout.array_offsets {
        reserve(fd, offset + bytes.start, bytes.len())?;
    }
    Ok(())
}

/// A worker process's mappings (see [`Attachment::map_chunk`]).
#[derive(Debug)]
pub struct WorkerArrays {
    pub(super) fd: OwnedFd,
    pub(super) layout: Layout,
    pub(super) range: Range<usize>,
    pub(super) a: Mapping,
    pub(super) b: Mapping,
    pub(super) c: Mapping,
}

impl WorkerArrays {
    /// Base addresses and sizes, for the fault recorder.
    pub(crate) fn address_map(&self) -> guard::AddressMap {
        guard::AddressMap {
            a: self.a.addr()..self.a.addr() + self.a.len,
            b: self.b.addr()..self.b.addr() + self.b.len,
            c: self.c.addr()..self.c.addr() + self.c.len,
            c_first: self.range.start,
            elem: self.layout.dtype.size(),
        }
    }

    fn check<T: Element>(&self) {
        assert_eq!(T::DTYPE, self.layout.dtype, "element type differs from the segment's");
    }
}

impl ChunkAccess for WorkerArrays {
    fn range(&self) -> Range<usize> {
        self.range.clone()
    }

    fn reserve(&self) -> Result<(), Errno> {
        reserve_chunk(self.fd.as_fd(), &self.layout, &self.range)
    }

    fn fill_inputs<T: Element>(&mut self, fill: impl FnOnce(&mut [T], &mut [T])) -> Result<(), ShmError> {
        self.check::<T>();
        let bytes = self.layout.chunk_bytes(&self.range);
        self.a.protect(&bytes, true)?;
        self.b.protect(&bytes, true)?;
        let n = self.range.len();
        // SAFETY: the chunk's pages of a and b are now writable in this
        // process, lie inside the mappings (chunk_bytes ≤ array_bytes), are
        // aligned for T (page-aligned start), and no other reference to them
        // exists: `&mut self` is unique, and no other worker writes this
        // chunk (the partition is disjoint; other processes map it read-only).
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts_mut(self.a.ptr.as_ptr().add(bytes.start).cast::<T>(), n),
                std::slice::from_raw_parts_mut(self.b.ptr.as_ptr().add(bytes.start).cast::<T>(), n),
            )
        };
        fill(a, b);
        self.a.protect(&bytes, false)?;
        self.b.protect(&bytes, false)
    }

    fn touch_output(&mut self) {
        self.c.touch_for_writing(&(0..self.c.len));
    }

    fn parts<T: Element>(&mut self) -> (&[T], &[T], &mut [T]) {
        self.check::<T>();
        let start = self.range.start * size_of::<T>();
        let n = self.range.len();
        // SAFETY: the ranges lie inside the mappings, are aligned for T, and
        // live as long as `&mut self`. Nobody writes this chunk of a and b
        // while we read it (other processes map it read-only, and `&mut self`
        // excludes our own fill), and the c mapping is this chunk only,
        // uniquely borrowed.
        unsafe {
            (
                std::slice::from_raw_parts(self.a.ptr.as_ptr().add(start).cast::<T>(), n),
                std::slice::from_raw_parts(self.b.ptr.as_ptr().add(start).cast::<T>(), n),
                std::slice::from_raw_parts_mut(self.c.ptr.as_ptr().cast::<T>(), n),
            )
        }
    }

    fn write_outside(&self, stream: Stream, index: usize, bits: u64) {
        let size = self.layout.dtype.size();
        assert!(index < self.layout.len);
        let map = match stream {
            Stream::A => &self.a,
            Stream::B => &self.b,
            Stream::C => panic!("c outside the chunk is not mapped in a worker process"),
        };
        // SAFETY: deliberately not sound as a program: it is the fault the
        // user asked to inject. The address is inside the read-only mapping
        // of `a`/`b` (index < len), so the MMU refuses the store and the
        // kernel kills this process with SIGSEGV before any Rust code can
        // observe the write.
        unsafe {
            let p = map.ptr.as_ptr().add(index * size);
            if size == 8 { p.cast::<u64>().write_volatile(bits) } else { p.cast::<u32>().write_volatile(bits as u32) }
        }
    }
}

/// The three arrays mapped read-write into one process, for threads mode,
/// with a registry that keeps the chunks handed out disjoint.
#[derive(Debug)]
pub struct SharedArrays {
    pub(super) fd: OwnedFd,
    pub(super) layout: Layout,
    pub(super) map: Mapping,
    pub(super) claims: Mutex<Vec<Range<usize>>>,
}

impl SharedArrays {
    /// Claims `range` for one worker thread; refuses an overlap with a live claim.
    pub fn claim(self: &Arc<Self>, range: Range<usize>) -> Result<Claim, ShmError> {
        assert!(range.start <= range.end && range.end <= self.layout.len, "chunk outside the array");
        let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        if !range.is_empty() && claims.iter().any(|c| c.start < range.end && range.start < c.end) {
            return Err(ShmError::Overlap(range));
        }
        claims.push(range.clone());
        Ok(Claim { arrays: Arc::clone(self), range })
    }

    fn ptr(&self, stream: Stream, index: usize) -> *mut u8 {
        let offset = stream_index(stream) * self.layout.array_bytes + index * self.layout.dtype.size();
        assert!(offset <= self.map.len);
        // SAFETY: offset is within the mapping (asserted above).
        unsafe { self.map.ptr.as_ptr().add(offset) }
    }
}

/// One thread's exclusive chunk of a [`SharedArrays`]; released on drop.
#[derive(Debug)]
pub struct Claim {
    arrays: Arc<SharedArrays>,
    range: Range<usize>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut claims = self.arrays.claims.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = claims.iter().position(|c| *c == self.range) {
            claims.swap_remove(i);
        }
    }
}

impl ChunkAccess for Claim {
    fn range(&self) -> Range<usize> {
        self.range.clone()
    }

    fn reserve(&self) -> Result<(), Errno> {
        reserve_chunk(self.arrays.fd.as_fd(), &self.arrays.layout, &self.range)
    }

    fn fill_inputs<T: Element>(&mut self, fill: impl FnOnce(&mut [T], &mut [T])) -> Result<(), ShmError> {
        assert_eq!(T::DTYPE, self.arrays.layout.dtype);
        let n = self.range.len();
        // SAFETY: the claim registry guarantees no other live claim overlaps
        // this range, and `&mut self` makes this the only borrow of it.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts_mut(self.arrays.ptr(Stream::A, self.range.start).cast::<T>(), n),
                std::slice::from_raw_parts_mut(self.arrays.ptr(Stream::B, self.range.start).cast::<T>(), n),
            )
        };
        fill(a, b);
        Ok(())
    }

    fn touch_output(&mut self) {
        let base = stream_index(Stream::C) * self.arrays.layout.array_bytes;
        let bytes = self.arrays.layout.chunk_bytes(&self.range);
        self.arrays.map.touch_for_writing(&(base + bytes.start..base + bytes.end));
    }

    fn parts<T: Element>(&mut self) -> (&[T], &[T], &mut [T]) {
        assert_eq!(T::DTYPE, self.arrays.layout.dtype);
        let n = self.range.len();
        // SAFETY: as in `fill_inputs`: the range is exclusively claimed and
        // uniquely borrowed; it lies inside the mapping and is aligned for T.
        unsafe {
            (
                std::slice::from_raw_parts(self.arrays.ptr(Stream::A, self.range.start).cast::<T>(), n),
                std::slice::from_raw_parts(self.arrays.ptr(Stream::B, self.range.start).cast::<T>(), n),
                std::slice::from_raw_parts_mut(self.arrays.ptr(Stream::C, self.range.start).cast::<T>(), n),
            )
        }
    }

    fn write_outside(&self, stream: Stream, index: usize, bits: u64) {
        assert!(index < self.arrays.layout.len);
        let p = self.arrays.ptr(stream, index);
        // SAFETY: deliberately unsound, and the point of the experiment: in
        // one address space nothing stops a thread from writing into memory
        // another thread's claim covers. The store is volatile and
        // word-sized, inside the mapping; the owner may read a torn value,
        // which validation then reports.
        unsafe {
            if self.arrays.layout.dtype.size() == 8 {
                p.cast::<u64>().write_volatile(bits)
            } else {
                p.cast::<u32>().write_volatile(bits as u32)
            }
        }
    }
}
