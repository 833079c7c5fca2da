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
//!   stopped by the MMU ([`guard`] records what was refused).
//! * **Untrusted input.** A worker checks magic, version and every size in
//!   the header ([`layout`]) before it maps anything writable.
//! * **Huge pages when there are some.** A memfd can live in the hugetlb
//!   pool (`MFD_HUGETLB`): 512 times fewer page faults to fill and free the
//!   arrays, and TLB reach for the kernels.
//!
//! All `unsafe` that touches the mapping lives in this module (and the SIMD
//! intrinsics in [`crate::kernel`]).

mod chunk;
pub mod control;
pub mod guard;
mod layout;
mod mapping;

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::{Mode, SFlag, fstat};
use serde::{Deserialize, Serialize};

pub use chunk::{ChunkAccess, Claim, SharedArrays, WorkerArrays};
pub use control::{Beacon, Command, Control, Slot, SlotStatus};
pub use layout::{FORMAT_VERSION, Layout, MAGIC, huge_page_size, huge_pages_available, huge_pages_total, page_size};

use crate::kernel::Dtype;
use layout::RawHeader;
use mapping::{Mapping, file_page_size, is_open, reserve};

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
    /// The hugetlb pool cannot hold the segment (it ran out since it was checked).
    #[error("the hugetlb pool has too few free pages for the segment")]
    HugePagesExhausted,
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
    /// Creates a segment in pages of `page` bytes (the base page, or the
    /// huge page size for a hugetlb memfd). Only the header and control
    /// block are reserved here; each worker reserves its own chunk before
    /// touching it.
    pub fn create(backend: Backend, dtype: Dtype, len: usize, slots: usize, page: usize) -> Result<Segment, ShmError> {
        let layout = Layout::new(dtype, len, slots, page, std::process::id())?;
        let (fd, name) = match backend {
            Backend::Memfd => {
                let mut flags = MFdFlags::MFD_CLOEXEC;
                if layout.is_huge() {
                    flags |= MFdFlags::MFD_HUGETLB;
                }
                let fd = memfd_create("vecpar", flags).map_err(|e| ShmError::sys("memfd_create", e))?;
                (fd, None)
            }
            Backend::Posix => {
                if layout.is_huge() {
                    return Err(ShmError::NotASegment("huge pages need the memfd backend".into()));
                }
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
        if layout.is_huge() {
            // A shared mapping of a hugetlb file reserves its pages from the
            // pool (without allocating them), and the reservation outlives the
            // mapping: after this, the workers' first touches cannot fail.
            match Mapping::new(fd.as_fd(), 0, layout.total_bytes, true) {
                Ok(whole) => drop(whole),
                Err(e) if e.errno() == Some(Errno::ENOMEM) => return Err(ShmError::HugePagesExhausted),
                Err(e) => return Err(e),
            }
        }
        let meta_len = layout.control_offset + layout.control_bytes;
        reserve(fd.as_fd(), 0, meta_len).map_err(|e| ShmError::sys("fallocate", e))?;
        let meta = Mapping::new(fd.as_fd(), 0, meta_len, true)?;
        // Through the mapping: hugetlbfs files cannot be written with write(2).
        meta.write_bytes(0, &layout.to_raw().to_bytes());
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
        if !is_open(fd) {
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
        let header_len = size_of::<RawHeader>();
        if (st.st_size as u64) < header_len as u64 {
            return Err(ShmError::NotASegment("shorter than a header".into()));
        }
        // Read the header through a read-only mapping of the first page (in
        // the file's own page size: hugetlbfs maps in huge pages only, and
        // cannot be read with read(2)).
        let first_page = file_page_size(fd.as_fd());
        let header = Mapping::new(fd.as_fd(), 0, first_page, false)?.read_bytes(0, header_len);
        let layout = Layout::from_header(&header, st.st_size as u64)?;
        if layout.page != first_page {
            return Err(ShmError::NotASegment("the header's page size is not the file's".into()));
        }
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
        Ok(WorkerArrays { fd: dup(&self.fd)?, layout: l.clone(), range, a, b, c })
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
    fn named_segments_are_private_unpredictable_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let a = Segment::create(Backend::Posix, Dtype::F64, 10, 1, page_size()).unwrap();
        let b = Segment::create(Backend::Posix, Dtype::F64, 10, 1, page_size()).unwrap();
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
        let seg = Segment::create(Backend::Memfd, Dtype::F64, 7, 2, page_size()).unwrap();
        let att = Attachment::from_fd(seg.fd.try_clone().unwrap()).unwrap();
        let mut idle = att.map_chunk(7..7).unwrap();
        idle.reserve().unwrap();
        idle.fill_inputs::<f64>(|a, b| assert!(a.is_empty() && b.is_empty())).unwrap();
        idle.touch_output();
        assert!(idle.parts::<f64>().2.is_empty());
    }

    #[test]
    fn claims_are_disjoint_and_released() {
        let seg = Segment::create(Backend::Memfd, Dtype::F64, 10_000, 2, page_size()).unwrap();
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
        let seg = Segment::create(Backend::Memfd, Dtype::F64, 3000, 1, page_size()).unwrap();
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
