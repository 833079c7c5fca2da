//! How the index range is cut into one contiguous chunk per worker.
//!
//! Chunks are whole pages of `c`: each worker's part of `c` is its own pages,
//! so a process can map exactly its part writable and nothing else (and no
//! two workers ever write the same cache line). Pages are dealt out as evenly
//! as possible: the first `pages % workers` workers get one page more. With
//! fewer pages than workers the remaining workers get an empty chunk and are
//! reported as idle.
#![forbid(unsafe_code)]

use std::ops::Range;

/// Contiguous, page-aligned chunks covering `0..len`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Partition {
    len: usize,
    page_elems: usize,
    chunks: Vec<Range<usize>>,
}

impl Partition {
    /// Splits `0..len` among `workers`, on boundaries that are multiples of
    /// `page_elems` elements.
    ///
    /// # Panics
    /// If `workers` or `page_elems` is zero.
    pub(crate) fn new(len: usize, workers: usize, page_elems: usize) -> Partition {
        assert!(workers > 0, "a partition needs at least one worker");
        assert!(page_elems > 0, "a page holds at least one element");
        let pages = len.div_ceil(page_elems);
        let base = pages / workers;
        let extra = pages % workers;
        let mut next_page = 0usize;
        let chunks = (0..workers)
            .map(|w| {
                let count = base + usize::from(w < extra);
                let start = (next_page * page_elems).min(len);
                next_page += count;
                let end = (next_page * page_elems).min(len);
                start..end
            })
            .collect();
        Partition { len, page_elems, chunks }
    }

    /// Elements per page.
    pub(crate) fn page_elems(&self) -> usize {
        self.page_elems
    }

    /// The number of workers (idle ones included).
    pub(crate) fn workers(&self) -> usize {
        self.chunks.len()
    }

    /// Worker `worker`'s chunk; empty for an idle worker.
    pub(crate) fn chunk(&self, worker: usize) -> Range<usize> {
        self.chunks[worker].clone()
    }

    /// All chunks, by worker id.
    pub(crate) fn chunks(&self) -> &[Range<usize>] {
        &self.chunks
    }

    /// The number of workers with a non-empty chunk.
    pub(crate) fn active(&self) -> usize {
        self.chunks.iter().filter(|c| !c.is_empty()).count()
    }

    /// The worker whose chunk holds `index`.
    pub(crate) fn owner(&self, index: usize) -> Option<usize> {
        self.chunks.iter().position(|c| c.contains(&index))
    }

    /// The element an `oob-write` by `worker` hits: the first element of the
    /// next worker (cyclically) that has one.
    pub(crate) fn oob_target(&self, worker: usize) -> Option<u64> {
        let n = self.workers();
        (1..n).map(|k| (worker + k) % n).map(|w| self.chunk(w)).find(|c| !c.is_empty()).map(|c| c.start as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(len: usize, workers: usize, page: usize) {
        let p = Partition::new(len, workers, page);
        assert_eq!(p.workers(), workers);
        let mut next = 0;
        let mut sizes = Vec::new();
        for c in p.chunks() {
            if c.is_empty() {
                continue;
            }
            assert_eq!(c.start, next, "chunks are contiguous and in order");
            assert_eq!(c.start % page, 0, "chunks start on a page");
            assert!(c.end == len || c.end % page == 0, "chunks end on a page or at len");
            sizes.push(c.end.div_ceil(page) - c.start / page);
            next = c.end;
        }
        assert_eq!(next, len, "chunks cover 0..len");
        if let (Some(max), Some(min)) = (sizes.iter().max(), sizes.iter().min()) {
            assert!(max - min <= 1, "page counts differ by at most one: {sizes:?}");
        }
        assert_eq!(p.active(), len.div_ceil(page).min(workers));
    }

    #[test]
    fn awkward_lengths_and_counts() {
        for len in [0, 1, 7, 511, 512, 513, 4097, 1_000_003] {
            for workers in [1, 2, 3, 7, 8, 64] {
                for page in [512, 1024] {
                    check(len, workers, page);
                }
            }
        }
    }

    #[test]
    fn more_workers_than_pages_leaves_idle_workers() {
        let p = Partition::new(7, 8, 512);
        assert_eq!(p.chunk(0), 0..7);
        assert!((1..8).all(|w| p.chunk(w).is_empty()));
        assert_eq!(p.active(), 1);
        assert_eq!(p.owner(6), Some(0));
        assert_eq!(p.owner(7), None);
    }

    #[test]
    fn oob_targets_are_in_another_chunk() {
        let p = Partition::new(4 * 512, 2, 512);
        assert_eq!(p.oob_target(0), Some(1024));
        assert_eq!(p.oob_target(1), Some(0));
        let single = Partition::new(100, 4, 512);
        assert_eq!(single.oob_target(0), None);
        assert_eq!(single.oob_target(2), Some(0));
    }

    #[test]
    fn first_workers_take_the_extra_pages() {
        let p = Partition::new(5 * 512, 2, 512);
        assert_eq!(p.chunk(0), 0..1536);
        assert_eq!(p.chunk(1), 1536..2560);
    }
}
