//! Checking the arrays after a kernel, by the coordinator: every element of
//! `a`, `b` and `c` against what the run's history says it must hold, with
//! the scalar oracle, read from the shared memory itself.
//!
//! A worker never vouches for its own work: a worker process that computed
//! nothing and said it was done, a miscompiled kernel, a corrupted binary
//! or a bug that is wrong in both the compute and a check would all pass a
//! check the worker ran itself. So the checking is done here, in the
//! coordinator (in procs mode another process, and another program, than
//! every worker), on its own threads, from a read-only mapping of the
//! segment, by code that shares nothing with the kernels but the formula.
//! The digests are computed from the same reads. In threads and serial
//! modes the workers are threads of this process: the check runs on
//! separate threads, from a separate read-only mapping, but in the same
//! process (there is no other); the report says which (`checked_by`).
//!
//! The elements are copied out a piece at a time (a worker that ignores the
//! protocol could be writing them) and checked in parallel, one contiguous
//! part per thread; a reduction's compensated reference is summed from the
//! same copies.

use std::ops::Range;

use crate::kernel::data::{DotReference, Expect, Verdict, verify};
use crate::kernel::{Dtype, Element};
use crate::shm::ArraysView;
use crate::signals::{self, Interrupted};
use crate::vocab::Array;

/// Elements copied and checked at a time by one thread (three pieces of
/// 32 KiB for f64: in L2).
const PIECE: usize = 4096;

/// What a check found.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Found {
    /// The first wrong element, the digests.
    pub(crate) verdict: Verdict,
    /// For a reduction: the compensated reference over the elements
    /// checked.
    pub(crate) reference: Option<DotReference>,
    /// Elements checked in each array.
    pub(crate) checked: u64,
}

/// Checks elements `range` of `view` — global indices `base + range` —
/// against `expect` on `threads` threads; for a reduction over `inputs`,
/// sums its reference too. Stops early (with `Err`) on a terminating
/// signal.
pub(crate) fn check(
    view: &ArraysView<'_>,
    range: Range<usize>,
    base: u64,
    expect: &Expect,
    threads: usize,
    inputs: Option<(Array, Array)>,
) -> Result<Found, Interrupted> {
    match view.dtype() {
        Dtype::F64 => check_typed::<f64>(view, range, base, expect, threads, inputs),
        Dtype::F32 => check_typed::<f32>(view, range, base, expect, threads, inputs),
    }
}

fn check_typed<T: Element>(
    view: &ArraysView<'_>,
    range: Range<usize>,
    base: u64,
    expect: &Expect,
    threads: usize,
    inputs: Option<(Array, Array)>,
) -> Result<Found, Interrupted> {
    let n = range.len();
    let threads = threads.clamp(1, n.div_ceil(PIECE).max(1));
    // Contiguous parts, whole pieces each (the last one shorter).
    let pieces = n.div_ceil(PIECE);
    let parts: Vec<Range<usize>> = (0..threads)
        .map(|t| {
            let lo = (pieces * t / threads * PIECE).min(n);
            let hi = (pieces * (t + 1) / threads * PIECE).min(n);
            range.start + lo..range.start + hi
        })
        .collect();
    let results: Vec<Result<Found, Interrupted>> = std::thread::scope(|s| {
        let handles: Vec<_> = parts[1..]
            .iter()
            .cloned()
            .map(|part| {
                std::thread::Builder::new()
                    .name("vecpar-check".into())
                    .spawn_scoped(s, move || check_part::<T>(view, part, base, expect, inputs))
            })
            .collect();
        let mut out = vec![check_part::<T>(view, parts[0].clone(), base, expect, inputs)];
        for (h, part) in handles.into_iter().zip(&parts[1..]) {
            // A thread the system refused: this one checks its part.
            out.push(match h {
                Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                Err(_) => check_part::<T>(view, part.clone(), base, expect, inputs),
            });
        }
        out
    });
    let mut found = Found { reference: inputs.map(|_| DotReference::default()), ..Found::default() };
    for r in results {
        let part = r?;
        found.verdict = found.verdict.then(part.verdict);
        found.checked += part.checked;
        if let (Some(total), Some(p)) = (found.reference.as_mut(), part.reference) {
            *total = total.plus(p);
        }
    }
    Ok(found)
}

fn check_part<T: Element>(
    view: &ArraysView<'_>,
    part: Range<usize>,
    base: u64,
    expect: &Expect,
    inputs: Option<(Array, Array)>,
) -> Result<Found, Interrupted> {
    let mut bufs = [vec![T::ZERO; PIECE], vec![T::ZERO; PIECE], vec![T::ZERO; PIECE]];
    let mut found = Found { reference: inputs.map(|_| DotReference::default()), ..Found::default() };
    let mut at = part.start;
    while at < part.end {
        signals::check()?;
        let len = PIECE.min(part.end - at);
        for array in Array::ALL {
            view.copy(array, at, &mut bufs[array.index()][..len]);
        }
        let [a, b, c] = &bufs;
        found.verdict = found.verdict.then(verify(expect, base + at as u64, &a[..len], &b[..len], &c[..len]));
        if let (Some(total), Some((x, y))) = (found.reference.as_mut(), inputs) {
            *total = total.plus(DotReference::of(&bufs[x.index()][..len], &bufs[y.index()][..len]));
        }
        found.checked += len as u64;
        at += len;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{History, Op};
    use crate::machine::page_size;
    use crate::shm::Segment;
    use crate::vocab::Backend;

    /// A segment filled and computed by hand (no worker), then checked from
    /// outside: every split over threads finds the same first mismatch and
    /// the same digests.
    #[test]
    fn any_number_of_threads_finds_the_same() {
        let len = 3 * PIECE + 77;
        let seg = Segment::create(Backend::Memfd, Dtype::F64, len, 1, page_size()).unwrap();
        let mut history = History::new();
        history.apply(Op::Triad, 2);
        let expect = Expect { seed: 4, c_filled: false, history };
        {
            let arrays = seg.share_arrays().unwrap();
            let mut all = arrays.claim(0..len).unwrap();
            use crate::shm::ChunkAccess;
            all.reserve(&|| {}).unwrap();
            all.fill::<f64>(true, |a, b, c| {
                let c = c.unwrap();
                crate::kernel::data::fill(4, Array::A, 0, a);
                crate::kernel::data::fill(4, Array::B, 0, b);
                c.fill(0.0);
                expect.history.replay(a, b, c, len);
                c[2 * PIECE + 5] = 9.0; // a wrong element
                c[2 * PIECE + 6] = 9.0;
            })
            .unwrap();
        }
        let read = seg.read_arrays().unwrap();
        let view = read.view();
        let one = check(&view, 0..len, 0, &expect, 1, Some((Array::A, Array::B))).unwrap();
        assert_eq!(one.checked, len as u64);
        let m = one.verdict.mismatch.expect("the wrong element is found");
        assert_eq!((m.array, m.index, m.got), (Array::C, (2 * PIECE + 5) as u64, 9.0));
        for threads in [2, 3, 4, 64] {
            let many = check(&view, 0..len, 0, &expect, threads, Some((Array::A, Array::B))).unwrap();
            assert_eq!(many.verdict, one.verdict, "{threads} threads");
            assert_eq!(many.checked, one.checked);
            let (r1, r2) = (one.reference.unwrap(), many.reference.unwrap());
            assert!((r1.value() - r2.value()).abs() <= 1e-12 * r1.abs, "{threads} threads");
        }
        let part = check(&view, PIECE..2 * PIECE, 0, &expect, 2, None).unwrap();
        assert_eq!((part.checked, part.verdict.mismatch, part.reference), (PIECE as u64, None, None));
    }
}
