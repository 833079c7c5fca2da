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
use crate::kernel::Dtype;
use crate::machine::{huge_page_size, page_size};

/// The first bytes of every segment.
pub(crate) const MAGIC: [u8; 8] = *b"VECPAR\0\x01";
/// The segment format version; a worker refuses any other.
pub(crate) const FORMAT_VERSION: u32 = 2;

/// The most worker slots a segment has (the most workers a run may start).
pub(crate) const MAX_SLOTS: usize = 4096;

/// Whether `bytes` begin with a vecpar header of this format version.
pub(crate) fn has_header(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && bytes[..8] == MAGIC && bytes[8..12] == FORMAT_VERSION.to_le_bytes()
}

/// Where everything is in a segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Layout {
    /// Element type.
    pub(crate) dtype: Dtype,
    /// Elements per array.
    pub(crate) len: usize,
    /// Page size the layout was made for.
    pub(crate) page: usize,
    /// Worker slots in the control block.
    pub(crate) slots: usize,
    /// Offset of the control block.
    pub(crate) control_offset: usize,
    /// Bytes of the control block (whole pages).
    pub(crate) control_bytes: usize,
    /// Offsets of a, b and c.
    pub(crate) array_offsets: [usize; 3],
    /// Bytes of each array (whole pages).
    pub(crate) array_bytes: usize,
    /// Bytes of the whole segment.
    pub(crate) total_bytes: usize,
    /// The pid of the process that created the segment.
    pub(crate) creator_pid: u32,
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
    /// Lays out a segment for `len` elements of `dtype` and `slots` workers,
    /// in pages of `page` bytes: this machine's base page or its huge page
    /// (every offset is a multiple of it, so anything else is refused — the
    /// control block's alignment and the workers' page-exact mappings
    /// depend on it).
    pub(crate) fn new(
        dtype: Dtype,
        len: usize,
        slots: usize,
        page: usize,
        creator_pid: u32,
    ) -> Result<Layout, ShmError> {
        let too_large = || ShmError::TooLarge { len: len as u64 };
        if page != page_size() && Some(page) != huge_page_size() {
            return Err(ShmError::NotASegment(format!(
                "a page size of {page} bytes is neither this machine's base page ({}) nor its huge page",
                page_size()
            )));
        }
        if slots == 0 || slots > MAX_SLOTS {
            return Err(ShmError::NotASegment(format!("{slots} worker slots (1 to {MAX_SLOTS})")));
        }
        let control_offset = page;
        let control_bytes = control::control_bytes(slots).and_then(|b| round_up(b, page)).ok_or_else(too_large)?;
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
    pub(crate) fn bytes_needed(dtype: Dtype, len: usize, slots: usize, page: usize) -> Option<u64> {
        Layout::new(dtype, len, slots, page, 0).ok().map(|l| l.total_bytes as u64)
    }

    /// Whether the segment uses huge pages.
    pub(crate) fn is_huge(&self) -> bool {
        self.page > page_size()
    }

    /// Elements per page: the partition granule.
    pub(crate) fn page_elems(&self) -> usize {
        self.page / self.dtype.size()
    }

    /// Whether `range` is a chunk as the partition cuts them: inside the
    /// array, starting on a page, ending on a page or at the end.
    pub(crate) fn is_chunk(&self, range: &Range<usize>) -> bool {
        let page = self.page_elems();
        range.start <= range.end
            && range.end <= self.len
            && (range.is_empty()
                || (range.start.is_multiple_of(page) && (range.end == self.len || range.end.is_multiple_of(page))))
    }

    /// The byte range of a chunk within one array: whole pages (nothing for
    /// an idle worker's empty chunk).
    pub(crate) fn chunk_bytes(&self, range: &Range<usize>) -> Range<usize> {
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
        if slots == 0 || slots > MAX_SLOTS {
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
    fn only_the_machines_page_sizes_make_a_layout() {
        for bad in [64, 128, 4095, 8192 * 3] {
            assert!(matches!(Layout::new(Dtype::F64, 10, 1, bad, 1), Err(ShmError::NotASegment(_))), "{bad}");
        }
        assert!(Layout::new(Dtype::F64, 10, 1, page_size(), 1).is_ok());
        if let Some(huge) = huge_page_size() {
            assert!(Layout::new(Dtype::F64, 10, 1, huge, 1).is_ok());
        }
    }

    #[test]
    fn oversized_layouts_are_refused() {
        assert!(matches!(Layout::new(Dtype::F64, usize::MAX / 4, 1, 4096, 1), Err(ShmError::TooLarge { .. })));
        assert!(Layout::new(Dtype::F64, 10, 0, 4096, 1).is_err());
        assert!(Layout::new(Dtype::F64, 10, MAX_SLOTS + 1, 4096, 1).is_err());
        assert!(Layout::new(Dtype::F64, 10, MAX_SLOTS, 4096, 1).is_ok());
    }

    #[test]
    fn chunks_are_page_aligned_ranges() {
        let l = Layout::new(Dtype::F64, 2000, 2, 4096, 1).unwrap();
        assert!(l.is_chunk(&(0..512)) && l.is_chunk(&(512..2000)) && l.is_chunk(&(2000..2000)));
        assert!(!l.is_chunk(&(1..512)) && !l.is_chunk(&(0..100)) && !l.is_chunk(&(0..2001)));
        let bytes = l.to_raw().to_bytes();
        assert!(has_header(&bytes));
        assert!(!has_header(&bytes[..11]));
    }
}
