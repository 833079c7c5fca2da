//! The shared segment: a header page, the control block and the arrays
//! `a`, `b`, `c`, in one memfd or named POSIX shared-memory object.
//!
//! This is the Rust form of the seed chapter's `multiprocessing.Array`, done
//! the way CPython's own arena does it (create, share the descriptor, never
//! leave a name behind), plus what a numeric tool needs:
//!
//! * **No leaks.** `memfd` (the default) has no name: when the last process
//!   holding it exits, however it exits, the kernel frees it. A named `posix`
//!   segment is created `O_CREAT|O_EXCL`, mode 0600, under an unpredictable
//!   name, and unlinked as soon as every worker has attached; a run killed
//!   before that leaves a name whose creator is dead, which the next run
//!   removes ([`sweep_stale`]).
//! * **No SIGBUS.** `ftruncate` makes a sparse file; touching a page that
//!   tmpfs cannot back kills the process with SIGBUS. Every range is reserved
//!   with `fallocate` before it is touched, so a full `/dev/shm` or a memory
//!   limit is an error code, never a signal.
//! * **Least privilege.** A worker process maps `a` and `b` read-only and
//!   only its own pages of `c` writable; its own pages of `a` and `b` are
//!   writable only while it fills them. A stray write into another chunk is
//!   stopped by the MMU.
//! * **Untrusted input.** A worker reads the header with `pread`, and checks
//!   magic, version and every size before mapping anything.
//!
//! Layout (every offset a multiple of the page size):
//!
//! ```text
//! page 0      header: magic, version, dtype, len, offsets, creator pid
//! pages 1..   control block: doorbell, done counter, one slot per worker
//! a, b, c     each rounded up to whole pages
//! ```
//!
//! All `unsafe` that touches the mapping lives in this module (and the SIMD
//! intrinsics in [`crate::kernel`]).

pub mod control;
pub mod guard;

use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::fcntl::{FallocateFlags, FcntlArg, FdFlag, OFlag, fallocate, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::mman::{MapFlags, MmapAdvise, ProtFlags, madvise, mmap, mprotect, munmap, shm_open, shm_unlink};
use nix::sys::stat::{Mode, SFlag, fstat};
use serde::{Deserialize, Serialize};

pub use control::{Beacon, Command, Control, Slot, SlotStatus};

use crate::kernel::{Dtype, Element, Stream};

/// The first bytes of every segment.
pub const MAGIC: [u8; 8] = *b"VECPAR\0\x01";
/// The segment format version; a worker refuses any other.
pub const FORMAT_VERSION: u32 = 1;
/// The prefix of named segments in `/dev/shm`.
pub const NAME_PREFIX: &str = "vecpar-";

/// Where the segment lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Anonymous memfd, handed to workers by descriptor inheritance: nothing to leak.
    Memfd,
    /// Named POSIX shared memory in /dev/shm, unlinked once every worker has attached.
    Posix,
}

impl Backend {
    /// Lower-case name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memfd => "memfd",
            Backend::Posix => "posix",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What went wrong with a segment.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// A system call failed.
    #[error("{what}: {errno}")]
    Sys {
        /// The operation.
        what: String,
        /// The kernel's answer.
        errno: Errno,
    },
    /// The requested size overflows.
    #[error("a segment for {len} elements does not fit in the address space")]
    TooLarge {
        /// Elements asked for.
        len: u64,
    },
    /// The descriptor given to a worker is unusable.
    #[error("{0}")]
    BadDescriptor(String),
    /// The object is not a vecpar segment.
    #[error("not a vecpar segment: {0}")]
    NotASegment(String),
    /// The object is a segment of another format version.
    #[error("segment format version {found} is not supported (this build reads version {expected})")]
    WrongVersion {
        /// Version in the header.
        found: u32,
        /// Version this build speaks.
        expected: u32,
    },
    /// A chunk overlaps one already claimed.
    #[error("elements {0:?} are already claimed by another worker")]
    Overlap(Range<usize>),
}

impl ShmError {
    fn sys(what: impl Into<String>, errno: Errno) -> ShmError {
        ShmError::Sys { what: what.into(), errno }
    }

    /// The errno, for system-call failures.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            ShmError::Sys { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// The page size of this machine.
pub fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten().map_or(4096, |p| p as usize)
}

/// Where everything is in a segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Element type.
    pub dtype: Dtype,
    /// Elements per array.
    pub len: usize,
    /// Page size the layout was made for.
    pub page: usize,
    /// Worker slots in the control block.
    pub slots: usize,
    /// Offset of the control block.
    pub control_offset: usize,
    /// Bytes of the control block (whole pages).
    pub control_bytes: usize,
    /// Offsets of a, b and c.
    pub array_offsets: [usize; 3],
    /// Bytes of each array (whole pages).
    pub array_bytes: usize,
    /// Bytes of the whole segment.
    pub total_bytes: usize,
    /// The pid of the process that created the segment.
    pub creator_pid: u32,
}

#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
struct RawHeader {
    magic: [u8; 8],
    version: u32,
    dtype: u32,
    len: u64,
    page: u64,
    slots: u64,
    control_offset: u64,
    control_bytes: u64,
    array_offsets: [u64; 3],
    array_bytes: u64,
    total_bytes: u64,
    creator_pid: u64,
}

impl RawHeader {
    fn to_bytes(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(size_of::<RawHeader>());
        out.extend_from_slice(&self.magic);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.dtype.to_le_bytes());
        for v in [self.len, self.page, self.slots, self.control_offset, self.control_bytes] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in self.array_offsets {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [self.array_bytes, self.total_bytes, self.creator_pid] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    fn from_bytes(bytes: &[u8]) -> Option<RawHeader> {
        let mut at = 0usize;
        let mut take = |n: usize| -> Option<&[u8]> {
            let s = bytes.get(at..at + n)?;
            at += n;
            Some(s)
        };
        let mut h = RawHeader { magic: take(8)?.try_into().ok()?, ..RawHeader::default() };
        h.version = u32::from_le_bytes(take(4)?.try_into().ok()?);
        h.dtype = u32::from_le_bytes(take(4)?.try_into().ok()?);
        let mut u64s = [0u64; 11];
        for v in &mut u64s {
            *v = u64::from_le_bytes(take(8)?.try_into().ok()?);
        }
        let [len, page, slots, control_offset, control_bytes, a, b, c, array_bytes, total_bytes, pid] = u64s;
        h.len = len;
        h.page = page;
        h.slots = slots;
        h.control_offset = control_offset;
        h.control_bytes = control_bytes;
        h.array_offsets = [a, b, c];
        h.array_bytes = array_bytes;
        h.total_bytes = total_bytes;
        h.creator_pid = pid;
        Some(h)
    }
}

fn round_up(x: usize, to: usize) -> Option<usize> {
    x.checked_add(to - 1).map(|v| v / to * to)
}

impl Layout {
    /// Lays out a segment for `len` elements of `dtype` and `slots` workers.
    pub fn new(dtype: Dtype, len: usize, slots: usize, page: usize, creator_pid: u32) -> Result<Layout, ShmError> {
        let too_large = || ShmError::TooLarge { len: len as u64 };
        let control_offset = page;
        let control_bytes = round_up(control::control_bytes(slots), page).ok_or_else(too_large)?;
        let array_bytes = len.checked_mul(dtype.size()).and_then(|b| round_up(b.max(1), page)).ok_or_else(too_large)?;
        let a = control_offset.checked_add(control_bytes).ok_or_else(too_large)?;
        let b = a.checked_add(array_bytes).ok_or_else(too_large)?;
        let c = b.checked_add(array_bytes).ok_or_else(too_large)?;
        let total_bytes = c.checked_add(array_bytes).filter(|&t| t <= i64::MAX as usize).ok_or_else(too_large)?;
        Ok(Layout {
            dtype,
            len,
            page,
            slots,
            control_offset,
            control_bytes,
            array_offsets: [a, b, c],
            array_bytes,
            total_bytes,
            creator_pid,
        })
    }

    /// Bytes needed for a segment of `len` elements (what the preflight checks).
    pub fn bytes_needed(dtype: Dtype, len: usize, slots: usize) -> Option<u64> {
        Layout::new(dtype, len, slots, page_size(), 0).ok().map(|l| l.total_bytes as u64)
    }

    /// Elements per page: the partition granule.
    pub fn page_elems(&self) -> usize {
        self.page / self.dtype.size()
    }

    /// Offset of an array.
    pub fn offset(&self, stream: Stream) -> usize {
        self.array_offsets[stream_index(stream)]
    }

    /// The byte range of a chunk within one array: whole pages (nothing for
    /// an idle worker's empty chunk).
    pub fn chunk_bytes(&self, range: &Range<usize>) -> Range<usize> {
        if range.is_empty() {
            return 0..0;
        }
        let size = self.dtype.size();
        let start = range.start * size;
        let end = round_up(range.end * size, self.page).unwrap_or(self.array_bytes).min(self.array_bytes);
        start..end.max(start)
    }

    fn to_raw(&self) -> RawHeader {
        RawHeader {
            magic: MAGIC,
            version: FORMAT_VERSION,
            dtype: self.dtype.code(),
            len: self.len as u64,
            page: self.page as u64,
            slots: self.slots as u64,
            control_offset: self.control_offset as u64,
            control_bytes: self.control_bytes as u64,
            array_offsets: self.array_offsets.map(|o| o as u64),
            array_bytes: self.array_bytes as u64,
            total_bytes: self.total_bytes as u64,
            creator_pid: self.creator_pid as u64,
        }
    }

    /// Reads and checks a header; `file_size` is the object's size.
    fn from_header(bytes: &[u8], file_size: u64) -> Result<Layout, ShmError> {
        let raw = RawHeader::from_bytes(bytes).ok_or_else(|| ShmError::NotASegment("shorter than a header".into()))?;
        if raw.magic != MAGIC {
            return Err(ShmError::NotASegment("bad magic number".into()));
        }
        if raw.version != FORMAT_VERSION {
            return Err(ShmError::WrongVersion { found: raw.version, expected: FORMAT_VERSION });
        }
        let corrupt = |what: &str| ShmError::NotASegment(format!("corrupt header: {what}"));
        let dtype = Dtype::from_code(raw.dtype).ok_or_else(|| corrupt("unknown element type"))?;
        let page = usize::try_from(raw.page).map_err(|_| corrupt("page size"))?;
        if page != page_size() {
            return Err(corrupt("page size differs from this machine's"));
        }
        let len = usize::try_from(raw.len).map_err(|_| corrupt("length"))?;
        let slots = usize::try_from(raw.slots).map_err(|_| corrupt("slot count"))?;
        if slots == 0 || slots > 1 << 20 {
            return Err(corrupt("slot count"));
        }
        let pid = u32::try_from(raw.creator_pid).map_err(|_| corrupt("creator pid"))?;
        // Recompute the layout from the parameters and demand the header
        // agrees with it field by field: offsets cannot point anywhere else.
        let expected = Layout::new(dtype, len, slots, page, pid).map_err(|_| corrupt("length"))?;
        if expected.to_raw().to_bytes() != raw.to_bytes() {
            return Err(corrupt("offsets or sizes do not match the length"));
        }
        if file_size < expected.total_bytes as u64 {
            return Err(corrupt("the object is smaller than its header says"));
        }
        Ok(expected)
    }
}

fn stream_index(stream: Stream) -> usize {
    match stream {
        Stream::A => 0,
        Stream::B => 1,
        Stream::C => 2,
    }
}

/// A memory mapping, unmapped on drop.
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a Mapping is an address range; it hands out no references itself.
// Shared access goes through atomics (the control block) or through chunks
// whose disjointness the owners below enforce.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, offset: usize, len: usize, writable: bool) -> Result<Mapping, ShmError> {
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

    fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    fn protect(&self, bytes: &Range<usize>, writable: bool) -> Result<(), ShmError> {
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
    fn touch_for_writing(&self, bytes: &Range<usize>) {
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

fn reserve(fd: BorrowedFd<'_>, offset: usize, len: usize) -> Result<(), Errno> {
    if len == 0 {
        return Ok(());
    }
    match fallocate(fd, FallocateFlags::empty(), offset as libc::off_t, len as libc::off_t) {
        // Filesystems without fallocate: posix_fallocate emulates it.
        Err(Errno::EOPNOTSUPP) => nix::fcntl::posix_fallocate(fd, offset as libc::off_t, len as libc::off_t),
        other => other,
    }
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    let ok = File::open("/dev/urandom").and_then(|f| f.read_exact_at(&mut bytes, 0)).is_ok();
    if !ok {
        // Still unpredictable enough for a private (0600, O_EXCL) name.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        bytes = (t.as_nanos() as u64 ^ ((std::process::id() as u64) << 32)).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The coordinator's side of a segment: it creates it, writes the header and
/// owns the name until every worker has attached.
#[derive(Debug)]
pub struct Segment {
    fd: OwnedFd,
    layout: Layout,
    backend: Backend,
    name: Mutex<Option<String>>,
    meta: Mapping,
}

impl Segment {
    /// Creates a segment. Only the header and control block are reserved
    /// here; each worker reserves its own chunk before touching it.
    pub fn create(backend: Backend, dtype: Dtype, len: usize, slots: usize) -> Result<Segment, ShmError> {
        let layout = Layout::new(dtype, len, slots, page_size(), std::process::id())?;
        let (fd, name) = match backend {
            Backend::Memfd => {
                let fd = memfd_create("vecpar", MFdFlags::MFD_CLOEXEC).map_err(|e| ShmError::sys("memfd_create", e))?;
                (fd, None)
            }
            Backend::Posix => {
                let name = format!("/{NAME_PREFIX}{}-{}", std::process::id(), random_suffix());
                let fd = shm_open(
                    name.as_str(),
                    OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC,
                    Mode::S_IRUSR | Mode::S_IWUSR,
                )
                .map_err(|e| ShmError::sys(format!("shm_open {name}"), e))?;
                (fd, Some(name))
            }
        };
        // Until the segment is built, an error must not leave the name behind.
        let name_guard = UnlinkOnDrop(name.clone());
        nix::unistd::ftruncate(&fd, layout.total_bytes as libc::off_t).map_err(|e| ShmError::sys("ftruncate", e))?;
        let meta_len = layout.control_offset + layout.control_bytes;
        reserve(fd.as_fd(), 0, meta_len).map_err(|e| ShmError::sys("fallocate", e))?;
        File::from(dup(&fd)?).write_all_at(&layout.to_raw().to_bytes(), 0).map_err(|e| io_error("write header", &e))?;
        let meta = Mapping::new(fd.as_fd(), 0, meta_len, true)?;
        std::mem::forget(name_guard);
        Ok(Segment { fd, layout, backend, name: Mutex::new(name), meta })
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The control block.
    pub fn control(&self) -> Control<'_> {
        // SAFETY: `meta` maps the header and the control block read-write
        // for as long as `self` lives; the control block starts on a page
        // (aligned to 128) and spans `control_bytes` ≥ control_bytes(slots).
        unsafe { Control::from_raw(self.meta.ptr.as_ptr().add(self.layout.control_offset), self.layout.slots) }
    }

    /// The descriptor number a child inherits.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The name, while the segment is still linked in /dev/shm.
    pub fn name(&self) -> Option<String> {
        self.name.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Lets children inherit the descriptor across exec (or stops it).
    /// Children are spawned from one thread, so the window is only theirs.
    pub fn set_inheritable(&self, inheritable: bool) -> Result<(), ShmError> {
        let flags = if inheritable { FdFlag::empty() } else { FdFlag::FD_CLOEXEC };
        fcntl(&self.fd, FcntlArg::F_SETFD(flags)).map(drop).map_err(|e| ShmError::sys("fcntl F_SETFD", e))
    }

    /// Removes the name from /dev/shm (attached processes keep their mappings).
    pub fn unlink(&self) -> Result<(), ShmError> {
        let mut name = self.name.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = name.take() {
            match shm_unlink(n.as_str()) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(ShmError::sys(format!("shm_unlink {n}"), e)),
            }
        }
        Ok(())
    }

    /// Maps the three arrays read-write into this process, for threads mode.
    pub fn share_arrays(&self) -> Result<Arc<SharedArrays>, ShmError> {
        let fd = dup(&self.fd)?;
        let map = Mapping::new(fd.as_fd(), self.layout.array_offsets[0], 3 * self.layout.array_bytes, true)?;
        Ok(Arc::new(SharedArrays { fd, layout: self.layout.clone(), map, claims: Mutex::new(Vec::new()) }))
    }
}

struct UnlinkOnDrop(Option<String>);

impl Drop for UnlinkOnDrop {
    fn drop(&mut self) {
        if let Some(name) = &self.0 {
            let _ = shm_unlink(name.as_str());
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        let _ = self.unlink();
    }
}

/// A worker's side of a segment: attached by inherited descriptor or by name,
/// header checked.
#[derive(Debug)]
pub struct Attachment {
    fd: OwnedFd,
    layout: Layout,
    control: Mapping,
}

impl Attachment {
    /// Attaches through a descriptor inherited from the coordinator.
    pub fn from_inherited_fd(fd: RawFd) -> Result<Attachment, ShmError> {
        if fd < 0 {
            return Err(ShmError::BadDescriptor(format!("fd {fd} is not a descriptor")));
        }
        if matches!(fd, 0..=2) {
            return Err(ShmError::BadDescriptor(format!("fd {fd} is a standard stream, not a segment")));
        }
        // SAFETY: F_GETFD only queries the descriptor table; a closed number
        // yields EBADF and touches nothing.
        let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1;
        if !open {
            return Err(ShmError::BadDescriptor(format!(
                "fd {fd} is not open (the coordinator hands the segment down by descriptor inheritance)"
            )));
        }
        // SAFETY: the descriptor is open (checked above) and this process
        // owns nothing else for it: the coordinator passed its number on our
        // command line for us to adopt, and we adopt it exactly once.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // Do not pass it on to anything this process might spawn.
        let _ = fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
        Attachment::from_fd(owned)
    }

    /// Attaches to a named segment (`--shm posix`).
    pub fn open_name(name: &str) -> Result<Attachment, ShmError> {
        let bare = name.trim_start_matches('/');
        if !bare.starts_with(NAME_PREFIX) || bare.contains('/') {
            return Err(ShmError::NotASegment(format!("'{name}' is not a vecpar segment name")));
        }
        let fd = shm_open(name, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| ShmError::sys(format!("shm_open {name}"), e))?;
        Attachment::from_fd(fd)
    }

    fn from_fd(fd: OwnedFd) -> Result<Attachment, ShmError> {
        let st = fstat(&fd).map_err(|e| ShmError::sys("fstat", e))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            return Err(ShmError::NotASegment("the descriptor is not a memory file".into()));
        }
        let mut header = vec![0u8; size_of::<RawHeader>()];
        let file = File::from(fd);
        file.read_exact_at(&mut header, 0).map_err(|_| ShmError::NotASegment("shorter than a header".into()))?;
        let layout = Layout::from_header(&header, st.st_size as u64)?;
        let fd = OwnedFd::from(file);
        let control = Mapping::new(fd.as_fd(), layout.control_offset, layout.control_bytes, true)?;
        Ok(Attachment { fd, layout, control })
    }

    /// The layout from the header.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The control block.
    pub fn control(&self) -> Control<'_> {
        // SAFETY: `control` maps the whole control block read-write for as
        // long as `self` lives, page aligned, `control_bytes` long.
        unsafe { Control::from_raw(self.control.ptr.as_ptr(), self.layout.slots) }
    }

    /// Maps what a worker owning `range` may touch: all of `a` and `b`
    /// read-only, its own pages of `c` read-write.
    pub fn map_chunk(&self, range: Range<usize>) -> Result<WorkerArrays, ShmError> {
        let l = &self.layout;
        assert!(range.start <= range.end && range.end <= l.len, "chunk outside the array");
        let a = Mapping::new(self.fd.as_fd(), l.array_offsets[0], l.array_bytes, false)?;
        let b = Mapping::new(self.fd.as_fd(), l.array_offsets[1], l.array_bytes, false)?;
        let bytes = l.chunk_bytes(&range);
        let c = Mapping::new(self.fd.as_fd(), l.array_offsets[2] + bytes.start, bytes.len(), true)?;
        let fd = dup(&self.fd)?;
        Ok(WorkerArrays { fd, layout: l.clone(), range, a, b, c })
    }
}

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
    fd: OwnedFd,
    layout: Layout,
    range: Range<usize>,
    a: Mapping,
    b: Mapping,
    c: Mapping,
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
    fd: OwnedFd,
    layout: Layout,
    map: Mapping,
    claims: Mutex<Vec<Range<usize>>>,
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

/// Bytes free in the filesystem holding named segments.
pub fn shm_free_bytes() -> Option<u64> {
    let st = nix::sys::statvfs::statvfs("/dev/shm").ok()?;
    Some(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// Removes `vecpar-` segments in /dev/shm whose creator is dead. Returns the
/// names removed.
pub fn sweep_stale() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/dev/shm") else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(NAME_PREFIX) else { continue };
        let name_pid: Option<i32> = rest.split('-').next().and_then(|p| p.parse().ok());
        // Prefer the pid in the header; fall back to the one in the name
        // (a run killed before it wrote the header).
        let mut header = vec![0u8; size_of::<RawHeader>()];
        let header_pid = File::open(entry.path())
            .and_then(|f| f.read_exact_at(&mut header, 0))
            .ok()
            .and_then(|_| RawHeader::from_bytes(&header))
            .filter(|h| h.magic == MAGIC)
            .and_then(|h| i32::try_from(h.creator_pid).ok());
        let Some(pid) = header_pid.or(name_pid) else { continue };
        if pid <= 0 || process_alive(pid) {
            continue;
        }
        if shm_unlink(format!("/{name}").as_str()).is_ok() {
            removed.push(name);
        }
    }
    removed
}

fn process_alive(pid: i32) -> bool {
    !matches!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None), Err(Errno::ESRCH))
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd, ShmError> {
    fd.try_clone().map_err(|e| io_error("dup", &e))
}

fn io_error(what: &str, e: &io::Error) -> ShmError {
    ShmError::sys(what, Errno::from_raw(e.raw_os_error().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_page_aligned_and_round_trips() {
        let l = Layout::new(Dtype::F64, 1_000_003, 8, 4096, 42).unwrap();
        for o in l.array_offsets {
            assert_eq!(o % 4096, 0);
        }
        assert_eq!(l.array_bytes % 4096, 0);
        assert!(l.array_bytes >= 1_000_003 * 8);
        let bytes = l.to_raw().to_bytes();
        assert_eq!(Layout::from_header(&bytes, l.total_bytes as u64).unwrap(), l);
    }

    #[test]
    fn headers_are_checked() {
        let l = Layout::new(Dtype::F32, 100, 2, page_size(), 1).unwrap();
        let good = l.to_raw().to_bytes();
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(matches!(Layout::from_header(&bad, u64::MAX), Err(ShmError::NotASegment(_))));
        let mut raw = l.to_raw();
        raw.version = 99;
        assert!(matches!(
            Layout::from_header(&raw.to_bytes(), u64::MAX),
            Err(ShmError::WrongVersion { found: 99, .. })
        ));
        let mut raw = l.to_raw();
        raw.array_offsets[2] += 4096;
        assert!(Layout::from_header(&raw.to_bytes(), u64::MAX).is_err());
        assert!(Layout::from_header(&good, 10).is_err(), "file smaller than the header says");
        assert!(Layout::from_header(&good[..20], u64::MAX).is_err());
    }

    #[test]
    fn named_segments_are_private_unpredictable_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let a = Segment::create(Backend::Posix, Dtype::F64, 10, 1).unwrap();
        let b = Segment::create(Backend::Posix, Dtype::F64, 10, 1).unwrap();
        let (na, nb) = (a.name().unwrap(), b.name().unwrap());
        let prefix = format!("/{NAME_PREFIX}{}-", std::process::id());
        let suffix = na.strip_prefix(&prefix).expect("named after the creator's pid");
        assert_eq!(suffix.len(), 16);
        assert!(suffix.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(na, nb, "64 random bits per name");
        let path = format!("/dev/shm{na}");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "owner only");
        a.unlink().unwrap();
        assert!(!std::path::Path::new(&path).exists());
        a.unlink().unwrap(); // idempotent
        let path_b = format!("/dev/shm{nb}");
        drop(b);
        assert!(!std::path::Path::new(&path_b).exists(), "dropping the segment unlinks it");
    }

    #[test]
    fn an_empty_chunk_maps_nothing() {
        let l = Layout::new(Dtype::F64, 7, 2, 4096, 1).unwrap();
        assert_eq!(l.chunk_bytes(&(7..7)), 0..0);
        assert_eq!(l.chunk_bytes(&(0..7)), 0..4096);
        let seg = Segment::create(Backend::Memfd, Dtype::F64, 7, 2).unwrap();
        let att = Attachment::from_fd(seg.fd.try_clone().unwrap()).unwrap();
        let mut idle = att.map_chunk(7..7).unwrap();
        idle.reserve().unwrap();
        idle.fill_inputs::<f64>(|a, b| assert!(a.is_empty() && b.is_empty())).unwrap();
        idle.touch_output();
        assert!(idle.parts::<f64>().2.is_empty());
    }

    #[test]
    fn oversized_layouts_are_refused() {
        assert!(matches!(Layout::new(Dtype::F64, usize::MAX / 4, 1, 4096, 1), Err(ShmError::TooLarge { .. })));
    }

    #[test]
    fn claims_are_disjoint_and_released() {
        let seg = Segment::create(Backend::Memfd, Dtype::F64, 10_000, 2).unwrap();
        let arrays = seg.share_arrays().unwrap();
        let first = arrays.claim(0..5000).unwrap();
        assert!(matches!(arrays.claim(4000..6000), Err(ShmError::Overlap(_))));
        let second = arrays.claim(5000..10_000).unwrap();
        drop(first);
        let again = arrays.claim(0..4096).unwrap();
        drop((second, again));
    }

    #[test]
    fn a_chunk_round_trips_through_two_views() {
        let seg = Segment::create(Backend::Memfd, Dtype::F64, 3000, 1).unwrap();
        let arrays = seg.share_arrays().unwrap();
        let mut claim = arrays.claim(0..3000).unwrap();
        claim.reserve().unwrap();
        claim
            .fill_inputs::<f64>(|a, b| {
                a.fill(1.5);
                b.fill(2.0);
            })
            .unwrap();
        {
            let (a, b, c) = claim.parts::<f64>();
            for i in 0..c.len() {
                c[i] = a[i] + b[i];
            }
        }
        drop(claim);
        let att = Attachment::from_fd(seg.fd.try_clone().unwrap()).unwrap();
        assert_eq!(att.layout(), seg.layout());
        let mut view = att.map_chunk(0..3000).unwrap();
        let (_, _, c) = view.parts::<f64>();
        assert!(c.iter().all(|&x| x == 3.5));
    }
}
