//! Where everything is in a segment, and the header that says so.
//!
//! Every offset is a multiple of the page size the segment was made with:
//! the base page (4 KiB) or, with `--huge-pages`, the default huge page
//! (2 MiB on x86_64), so that each worker can map exactly its own pages.
//!
//! ```text
//! page 0      header: magic, version, dtype, len, offsets, creator pid
//! pages 1..   control block: doorbell, done counter, one slot per worker
//! a, b, c     each rounded up to whole pages
//! ```
//!
//! A worker trusts nothing it reads here: [`Layout::from_header`] recomputes
//! the layout from the header's parameters and demands that every field
//! agrees.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::{ShmError, control};
use crate::kernel::{Dtype, Stream};
use crate::sysinfo::meminfo;

/// The first bytes of every segment.
pub const MAGIC: [u8; 8] = *b"VECPAR\0\x01";
/// The segment format version; a worker refuses any other.
pub const FORMAT_VERSION: u32 = 1;

/// The base page size of this machine.
pub fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten().map_or(4096, |p| p as usize)
}

/// The default huge page size (`Hugepagesize` in /proc/meminfo), if any.
pub fn huge_page_size() -> Option<usize> {
    static SIZE: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| meminfo("Hugepagesize").map(|kb| kb as usize * 1024))
}

/// The size of the hugetlb pool, in pages (`HugePages_Total`).
pub fn huge_pages_total() -> u64 {
    meminfo("HugePages_Total").unwrap_or(0)
}

/// Huge pages free for new mappings: `HugePages_Free - HugePages_Rsvd`.
pub fn huge_pages_available() -> u64 {
    let free = meminfo("HugePages_Free").unwrap_or(0);
    let reserved = meminfo("HugePages_Rsvd").unwrap_or(0);
    free.saturating_sub(reserved)
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
pub(super) struct RawHeader {
    pub(super) magic: [u8; 8],
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
    pub(super) creator_pid: u64,
}

impl RawHeader {
    pub(super) fn to_bytes(self) -> Vec<u8> {
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

    pub(super) fn from_bytes(bytes: &[u8]) -> Option<RawHeader> {
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

    /// Bytes needed for a segment of `len` elements in pages of `page`
    /// bytes (what the preflight checks).
    pub fn bytes_needed(dtype: Dtype, len: usize, slots: usize, page: usize) -> Option<u64> {
        Layout::new(dtype, len, slots, page, 0).ok().map(|l| l.total_bytes as u64)
    }

    /// Whether the segment uses huge pages.
    pub fn is_huge(&self) -> bool {
        self.page > page_size()
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

    pub(super) fn to_raw(&self) -> RawHeader {
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
    pub(super) fn from_header(bytes: &[u8], file_size: u64) -> Result<Layout, ShmError> {
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
        if page != page_size() && Some(page) != huge_page_size() {
            return Err(corrupt("page size is neither this machine's base nor its huge page size"));
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

pub(super) fn stream_index(stream: Stream) -> usize {
    match stream {
        Stream::A => 0,
        Stream::B => 1,
        Stream::C => 2,
    }
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
    fn oversized_layouts_are_refused() {
        assert!(matches!(Layout::new(Dtype::F64, usize::MAX / 4, 1, 4096, 1), Err(ShmError::TooLarge { .. })));
    }
}
