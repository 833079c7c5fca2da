//! The shared segment: a header page, the control block and the arrays
//! `a`, `b`, `c`, in one memfd or POSIX shared-memory object.
//!
//! This is the Rust form of the seed chapter's `multiprocessing.Array`, done
//! the way CPython's own arena does it (create, share the descriptor, never
//! leave a name behind), plus what a numeric tool needs:
//!
//! * **No leaks.** Neither backend keeps a name: a `memfd` (the default)
//!   never has one, and a `posix` object is created unnamed in /dev/shm
//!   (`O_TMPFILE`), given its name only once its header is written and its
//!   lock held, and unlinked at once, before any worker exists. Workers get
//!   the segment as an inherited descriptor (their standard input), so when
//!   the last process holding it exits, however it exits, the kernel frees
//!   it. A name left by a run SIGKILLed in the microseconds between link
//!   and unlink is removed by the next posix run, and only when it is
//!   provably a dead vecpar run's ([`stale`]).
//! * **No SIGBUS.** `ftruncate` makes a sparse file; touching a page that
//!   tmpfs cannot back kills the process with SIGBUS. Every range is reserved
//!   with `fallocate` before it is touched, so a full `/dev/shm` or a memory
//!   limit is an error code, never a signal; and a memfd is sealed against
//!   shrinking, so no other process can take its pages away under the run.
//! * **Least privilege.** A worker process maps `a` and `b` read-only and
//!   only its own pages of `c` writable; its own pages of `a` (and `b`) are
//!   writable only while it fills them, and for `nstream`'s rounds. A stray
//!   write into another chunk is stopped by the MMU ([`guard`] records what
//!   was refused).
//! * **Untrusted input.** A worker checks the descriptor's type, magic,
//!   version and every size in the header ([`layout`]) before it maps
//!   anything writable.
//! * **Huge pages when there are some.** A memfd can live in the hugetlb
//!   pool (`MFD_HUGETLB`): 512 times fewer page faults to fill and free the
//!   arrays, and TLB reach for the kernels.
//!
//! All `unsafe` that touches the mapping lives in this module (and the SIMD
//! intrinsics in [`crate::kernel`]). Mutability is in the types: read-only
//! and read-write mappings differ ([`mapping`]), a process holds at most
//! one writable view of a segment at a time (keyed by its inode: a
//! [`SharedArrays`] or one [`WorkerArrays`]), claims and chunks are
//! disjoint and whole pages, a checker reads copies ([`ArraysView`]), and
//! the doorbell's words are atomics ([`doorbell`]).

mod chunk;
mod control;
pub(crate) mod doorbell;
mod guard;
mod layout;
mod mapping;
pub(crate) mod numa;
mod stale;
#[cfg(feature = "mpi")]
pub(crate) mod window;

use std::fs::File;
use std::ops::Range;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::machine::numa::Binding;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::{Mode, SFlag, fstat};

pub(crate) use chunk::{ArraysView, ChunkAccess, Claim, PageNodes, ReadArrays, SharedArrays, WorkerArrays};
pub(crate) use control::{Control, FaultSite};
pub(crate) use doorbell::{BATCH, Pulse};
pub(crate) use guard::{
    FatalSignals, FaultRecorder, WorkerThread, announce_exit_from_workers, announce_fatal_signals, catch_fault_signals,
    catch_terminating_signals, note_stopping, wild_store,
};
pub(crate) use layout::{Layout, MAX_SLOTS};
pub(crate) use stale::Swept;

use crate::kernel::Dtype;
use crate::vocab::Backend;
use chunk::Writer;
use layout::RawHeader;
use mapping::{MapRO, MapRW, file_page_size, reserve};

/// What went wrong with a segment.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ShmError {
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
    /// The file size limit (`ulimit -f`) is below the segment's size.
    #[error(
        "the segment needs {needed} bytes but the file size limit allows {} (ulimit -f); raise ulimit -f or lower --len",
        limit.map_or_else(|| "less".to_string(), |l| format!("{l} bytes"))
    )]
    FileSizeLimit {
        /// Bytes the segment needs.
        needed: u64,
        /// `RLIMIT_FSIZE`, bytes.
        limit: Option<u64>,
    },
    /// The hugetlb pool cannot hold the segment (it ran out since it was checked).
    #[error("the hugetlb pool has too few free pages for the segment")]
    HugePagesExhausted,
    /// A chunk overlaps one already claimed.
    #[error("elements {0:?} are already claimed by another worker")]
    Overlap(Range<usize>),
    /// A range that is not a chunk (inside the array, on page boundaries).
    #[error("elements {0:?} are not a chunk of whole pages inside the array")]
    NotAChunk(Range<usize>),
    /// A second mapping of what may be mapped once.
    #[error("the {0} are already mapped")]
    AlreadyMapped(&'static str),
    /// An MPI shared window could not be made or used.
    #[cfg(feature = "mpi")]
    #[error("MPI shared window: {0}")]
    Window(String),
}

impl ShmError {
    fn sys(what: impl Into<String>, errno: Errno) -> ShmError {
        ShmError::Sys { what: what.into(), errno }
    }

    /// The errno, for system-call failures.
    pub(crate) fn errno(&self) -> Option<Errno> {
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

/// Where POSIX shared-memory objects live.
const SHM_DIR: &str = "/dev/shm";

/// When a posix segment gets its name.
enum Naming {
    /// It has none (memfd) or got it from shm_open.
    None,
    /// Linked into [`SHM_DIR`] under this name once its header is written.
    Late(String),
}

/// Gives the unnamed file `fd` the name `name` in [`SHM_DIR`].
fn link_name(fd: std::os::fd::BorrowedFd<'_>, name: &str) -> bool {
    use std::os::fd::AsRawFd;
    let target = format!("{SHM_DIR}/{name}");
    let by_proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let flags = nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW;
    nix::unistd::linkat(nix::fcntl::AT_FDCWD, by_proc.as_str(), nix::fcntl::AT_FDCWD, target.as_str(), flags).is_ok()
        || nix::unistd::linkat(fd, "", nix::fcntl::AT_FDCWD, target.as_str(), nix::fcntl::AtFlags::AT_EMPTY_PATH)
            .is_ok()
}

/// Removes a name, unless defused.
struct UnlinkOnDrop(Option<String>);

impl Drop for UnlinkOnDrop {
    fn drop(&mut self) {
        if let Some(name) = self.0.take() {
            let _ = shm_unlink(name.as_str());
        }
    }
}

/// The coordinator's side of a segment.
#[derive(Debug)]
pub(crate) struct Segment {
    fd: OwnedFd,
    layout: Layout,
    meta: MapRW,
}

impl Segment {
    /// Creates a segment in pages of `page` bytes (the base page, or the
    /// huge page size for a hugetlb memfd: anything else is refused). Only
    /// the header and control block are reserved here; each worker reserves
    /// its own chunk before touching it. The segment's [`Layout`] says which
    /// page size it got.
    #[cfg(test)]
    pub(crate) fn create(
        backend: Backend,
        dtype: Dtype,
        len: usize,
        slots: usize,
        page: usize,
    ) -> Result<Segment, ShmError> {
        Segment::create_placed(backend, dtype, len, slots, page, &Binding::Inherit)
    }

    /// [`Segment::create`], with the header and control block bound as
    /// `control` says before their pages are reserved.
    pub(crate) fn create_placed(
        backend: Backend,
        dtype: Dtype,
        len: usize,
        slots: usize,
        page: usize,
        control: &Binding,
    ) -> Result<Segment, ShmError> {
        let layout = Layout::new(dtype, len, slots, page, std::process::id())?;
        let mut name_guard = UnlinkOnDrop(None);
        let mut naming = Naming::None;
        let fd = match backend {
            Backend::Memfd => {
                let mut flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
                if layout.is_huge() {
                    flags |= MFdFlags::MFD_HUGETLB;
                }
                memfd_create("vecpar", flags).map_err(|e| ShmError::sys("memfd_create", e))?
            }
            Backend::Posix => {
                if layout.is_huge() {
                    return Err(ShmError::NotASegment("huge pages need the memfd backend".into()));
                }
                let name = format!("{}{}-{}", stale::NAME_PREFIX, std::process::id(), random_suffix());
                // Unnamed at first: the name is linked only once the header
                // is written and the lock held, so no kill at any moment can
                // leave a name that the sweep could not prove dead. (Kernels
                // or file systems without O_TMPFILE: shm_open, named at once.)
                let fd = match nix::fcntl::open(
                    SHM_DIR,
                    OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC,
                    Mode::S_IRUSR | Mode::S_IWUSR,
                ) {
                    Ok(fd) => {
                        naming = Naming::Late(name);
                        fd
                    }
                    Err(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL) => {
                        let fd = shm_open(
                            format!("/{name}").as_str(),
                            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC,
                            Mode::S_IRUSR | Mode::S_IWUSR,
                        )
                        .map_err(|e| ShmError::sys(format!("shm_open /{name}"), e))?;
                        name_guard.0 = Some(format!("/{name}"));
                        fd
                    }
                    Err(e) => return Err(ShmError::sys(format!("open {SHM_DIR}"), e)),
                };
                // Held as long as the segment has a name: the sweep of another
                // run leaves a locked segment alone (see `stale`).
                let lock = stale::whole_file_lock(libc::F_WRLCK);
                fcntl(&fd, FcntlArg::F_OFD_SETLK(&lock)).map_err(|e| ShmError::sys("fcntl F_OFD_SETLK", e))?;
                fd
            }
        };
        nix::unistd::ftruncate(&fd, layout.total_bytes as libc::off_t).map_err(|e| match e {
            Errno::EFBIG => {
                ShmError::FileSizeLimit { needed: layout.total_bytes as u64, limit: crate::machine::file_size_limit() }
            }
            e => ShmError::sys("ftruncate", e),
        })?;
        if layout.is_huge() {
            // A shared mapping of a hugetlb file reserves its pages from the
            // pool (without allocating them), and the reservation outlives the
            // mapping: after this, the workers' first touches cannot fail.
            match MapRW::new(fd.as_fd(), 0, layout.total_bytes) {
                Ok(whole) => drop(whole),
                Err(e) if e.errno() == Some(Errno::ENOMEM) => return Err(ShmError::HugePagesExhausted),
                Err(e) => return Err(e),
            }
        }
        // No process may shrink (or grow) a memfd under the run: its pages
        // cannot be taken away, so a worker can never meet a SIGBUS.
        // (hugetlbfs before Linux 4.16 cannot be sealed: then it stays
        // unsealed, as a POSIX object is.)
        if backend == Backend::Memfd {
            let seals = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL;
            let _ = fcntl(&fd, FcntlArg::F_ADD_SEALS(seals));
        }
        let meta_len = layout.control_offset + layout.control_bytes;
        let mut meta = MapRW::new(fd.as_fd(), 0, meta_len)?;
        // Where the doorbell lives, chosen before its pages exist (a
        // refusal only leaves them where the process's policy puts them).
        let _ = meta.bind(&(0..meta_len), control);
        reserve(fd.as_fd(), 0, meta_len).map_err(|e| ShmError::sys("fallocate", e))?;
        // Through the mapping: hugetlbfs files cannot be written with write(2).
        meta.write_bytes(0, &layout.to_raw().to_bytes());
        // A posix object gets its name now, header written and lock held,
        // and loses it at once: from here on nothing of the segment can
        // outlive the processes that hold it. (A name that cannot be linked
        // is no loss: the workers inherit the descriptor.)
        if let Naming::Late(name) = naming
            && link_name(fd.as_fd(), &name)
        {
            name_guard.0 = Some(format!("/{name}"));
        }
        drop(name_guard);
        Ok(Segment { fd, layout, meta })
    }

    /// The NUMA node of the control block's first page, if the kernel says.
    pub(crate) fn control_node(&self) -> Option<usize> {
        let at = self.layout.control_offset;
        let node = *self
            .meta
            .nodes(&(at..at + self.layout.page.min(self.meta.len() - at)), self.layout.page, 1)
            .ok()?
            .first()?;
        usize::try_from(node).ok()
    }

    /// The layout (and so the page size the segment got).
    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The control block.
    pub(crate) fn control(&self) -> Control<'_> {
        // SAFETY: `meta` maps the header and the control block read-write
        // for as long as `self` lives; the control block starts on a page
        // and spans `control_bytes` ≥ control_bytes(slots) (the layout's).
        unsafe { Control::from_raw(self.meta.ptr().as_ptr().add(self.layout.control_offset), self.layout.slots) }
    }

    /// A descriptor of the segment for a child to inherit (as its stdin).
    pub(crate) fn fd_for_child(&self) -> Result<OwnedFd, ShmError> {
        self.fd.try_clone().map_err(|e| ShmError::sys("dup", Errno::from_raw(e.raw_os_error().unwrap_or(0))))
    }

    /// Maps the three arrays read-write into this process, for threads and
    /// serial mode: this process's one writable view of the segment, while
    /// it lives.
    pub(crate) fn share_arrays(&self) -> Result<Arc<SharedArrays>, ShmError> {
        let writer = Writer::take(self.fd.as_fd(), "arrays of this segment")?;
        let fd = self.fd_for_child()?;
        let map = MapRW::new(fd.as_fd(), self.layout.array_offsets[0], 3 * self.layout.array_bytes)?;
        Ok(Arc::new(SharedArrays { fd, layout: self.layout.clone(), map, claims: Default::default(), _writer: writer }))
    }

    /// Maps the three arrays read-only into this process, for checking
    /// them.
    pub(crate) fn read_arrays(&self) -> Result<ReadArrays, ShmError> {
        let map = MapRO::new(self.fd.as_fd(), self.layout.array_offsets[0], 3 * self.layout.array_bytes)?;
        Ok(ReadArrays { map, layout: self.layout.clone() })
    }
}

/// A worker's side of a segment: attached through a descriptor, header
/// checked.
#[derive(Debug)]
pub(crate) struct Attachment {
    fd: OwnedFd,
    layout: Layout,
    /// Shared with the fault recorder, which writes into it from a signal
    /// handler.
    control: Arc<MapRW>,
}

impl Attachment {
    /// Attaches through `fd`, refusing anything that is not a vecpar
    /// segment this build can read.
    pub(crate) fn open(fd: OwnedFd) -> Result<Attachment, ShmError> {
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
        let header = MapRO::new(fd.as_fd(), 0, first_page)?.read_bytes(0, header_len);
        let layout = Layout::from_header(&header, st.st_size as u64)?;
        if layout.page != first_page {
            return Err(ShmError::NotASegment("the header's page size is not the file's".into()));
        }
        let control = Arc::new(MapRW::new(fd.as_fd(), layout.control_offset, layout.control_bytes)?);
        Ok(Attachment { fd, layout, control })
    }

    /// The layout from the header.
    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The control block.
    pub(crate) fn control(&self) -> Control<'_> {
        // SAFETY: `control` maps the whole control block read-write for as
        // long as `self` lives, page aligned, `control_bytes` long.
        unsafe { Control::from_raw(self.control.ptr().as_ptr(), self.layout.slots) }
    }

    /// Maps what a worker owning `range` may touch: all of `a` and `b`
    /// read-only, its own pages of `c` read-write — this process's one
    /// writable view of the segment, while it lives.
    pub(crate) fn map_chunk(&self, range: Range<usize>) -> Result<WorkerArrays, ShmError> {
        let l = &self.layout;
        if !l.is_chunk(&range) {
            return Err(ShmError::NotAChunk(range));
        }
        let writer = Writer::take(self.fd.as_fd(), "chunk's arrays")?;
        let a = MapRO::new(self.fd.as_fd(), l.array_offsets[0], l.array_bytes)?;
        let b = MapRO::new(self.fd.as_fd(), l.array_offsets[1], l.array_bytes)?;
        let bytes = l.chunk_bytes(&range);
        let c = MapRW::new(self.fd.as_fd(), l.array_offsets[2] + bytes.start, bytes.len())?;
        let fd =
            self.fd.try_clone().map_err(|e| ShmError::sys("dup", Errno::from_raw(e.raw_os_error().unwrap_or(0))))?;
        Ok(WorkerArrays { fd, layout: l.clone(), range, a, b, c, a_open: false, c_open: true, _writer: writer })
    }

    /// Records faults into worker `id`'s slot while the recorder lives.
    pub(crate) fn record_faults(&self, id: usize, arrays: &WorkerArrays) -> std::io::Result<FaultRecorder> {
        FaultRecorder::install(Arc::clone(&self.control), self.layout.slots, id, &arrays.address_map())
    }
}

/// Removes the named segments of dead vecpar runs of this user from
/// /dev/shm (see [`stale`]).
pub(crate) fn sweep_stale() -> Swept {
    stale::sweep(std::path::Path::new("/dev/shm"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Element;
    use crate::machine::page_size;

    #[test]
    fn a_posix_segment_leaves_no_name() {
        let before: Vec<_> = std::fs::read_dir("/dev/shm").unwrap().flatten().map(|e| e.file_name()).collect();
        let seg = Segment::create(Backend::Posix, Dtype::F64, 10, 1, page_size()).unwrap();
        let after: Vec<_> = std::fs::read_dir("/dev/shm").unwrap().flatten().map(|e| e.file_name()).collect();
        let mine = format!("vecpar-{}-", std::process::id());
        assert!(
            !after.iter().any(|n| n.to_string_lossy().starts_with(&mine) && !before.contains(n)),
            "unlinked as soon as it is built"
        );
        assert!(nix::unistd::ftruncate(&seg.fd, 0).is_ok(), "POSIX objects cannot be sealed");
        let memfd = Segment::create(Backend::Memfd, Dtype::F64, 10, 1, page_size()).unwrap();
        let e = nix::unistd::ftruncate(&memfd.fd, 0).unwrap_err();
        assert_eq!(e, Errno::EPERM, "a sealed memfd cannot shrink");
    }

    #[test]
    fn an_empty_chunk_maps_nothing() {
        let l = Layout::new(Dtype::F64, 7, 2, page_size(), 1).unwrap();
        assert_eq!(l.chunk_bytes(&(7..7)), 0..0);
        assert_eq!(l.chunk_bytes(&(0..7)), 0..page_size());
        let seg = Segment::create(Backend::Memfd, Dtype::F64, 7, 2, page_size()).unwrap();
        let att = Attachment::open(seg.fd_for_child().unwrap()).unwrap();
        let mut idle = att.map_chunk(7..7).unwrap();
        idle.reserve(&|| {}).unwrap();
        idle.fill::<f64>(true, |a, b, c| assert!(a.is_empty() && b.is_empty() && c.unwrap().is_empty())).unwrap();
        idle.touch_output(&|| {});
        idle.write_c::<f64, _>(|_, _, c| assert!(c.is_empty()));
    }

    /// Two writable views of one segment in one process would be two
    /// `&mut` over the same pages: the second is refused, whichever way it
    /// is asked for, while the first lives.
    #[test]
    fn a_process_has_one_writable_view_of_a_segment() {
        let seg = Segment::create(Backend::Memfd, Dtype::F64, 10_000, 2, page_size()).unwrap();
        let arrays = seg.share_arrays().unwrap();
        assert!(matches!(seg.share_arrays(), Err(ShmError::AlreadyMapped(_))), "one SharedArrays per segment");
        let att = Attachment::open(seg.fd_for_child().unwrap()).unwrap();
        assert!(
            matches!(att.map_chunk(0..5120), Err(ShmError::AlreadyMapped(_))),
            "an attachment of the same segment beside its shared arrays"
        );
        let first = arrays.claim(0..5120).unwrap();
        assert!(matches!(arrays.claim(4096..6144), Err(ShmError::Overlap(_))));
        assert!(matches!(arrays.claim(5120..5121), Err(ShmError::NotAChunk(_))), "claims are whole pages");
        let second = arrays.claim(5120..10_000).unwrap();
        drop((first, second, arrays));
        let mine = att.map_chunk(0..5120).unwrap();
        let again = Attachment::open(seg.fd_for_child().unwrap()).unwrap();
        assert!(matches!(again.map_chunk(5120..10_000), Err(ShmError::AlreadyMapped(_))), "two attachments, one fd");
        assert!(matches!(att.map_chunk(0..100), Err(ShmError::NotAChunk(_))));
        drop(mine);
        assert!(again.map_chunk(5120..10_000).is_ok(), "free again once the first view is gone");
        // Another segment is another inode: its own view.
        let other = Segment::create(Backend::Memfd, Dtype::F64, 10_000, 2, page_size()).unwrap();
        assert!(other.share_arrays().is_ok());
    }

    #[test]
    fn a_chunk_round_trips_through_a_check_view() {
        let seg = Segment::create(Backend::Memfd, Dtype::F64, 3000, 1, page_size()).unwrap();
        let arrays = seg.share_arrays().unwrap();
        let mut claim = arrays.claim(0..3000).unwrap();
        claim.reserve(&|| {}).unwrap();
        claim
            .fill::<f64>(false, |a, b, c| {
                assert!(c.is_none());
                a.fill(1.5);
                b.fill(2.0);
            })
            .unwrap();
        claim.write_c::<f64, _>(|a, b, c| {
            for i in 0..c.len() {
                c[i] = a[i].add(b[i]);
            }
        });
        // A stray write by "another worker" lands while the owner is parked.
        let other = arrays.claim(3000..3000).unwrap();
        other.stray_write(crate::vocab::Array::A, 17, 7.0f64.to_bits());
        let read = seg.read_arrays().unwrap();
        let view = read.view();
        let mut c = vec![0.0f64; 3000];
        view.copy(crate::vocab::Array::C, 0, &mut c);
        assert!(c.iter().all(|&x| x == 3.5));
        let mut a = [0.0f64; 1];
        view.copy(crate::vocab::Array::A, 17, &mut a);
        assert_eq!(a[0], 7.0);
    }
}
