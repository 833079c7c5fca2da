//! SSE2, AVX2 and AVX-512 kernels for x86_64, generated from the kernel
//! table: one module per (instruction set, element type), one function per
//! kernel.
//!
//! A kernel that writes an array runs a loop unrolled four vectors deep,
//! then single vectors, then a scalar tail. With non-temporal stores it first
//! peels scalar elements until the destination is aligned to the vector
//! width (streaming stores fault on misaligned addresses) and ends with
//! `sfence`, which the intrinsics' documentation requires before any other
//! access to the written memory. Within vecpar a chunk starts on a page, so
//! the peel only runs for unusual callers.
//!
//! A reduction keeps four vector accumulators per block, adds them
//! pairwise, then the lanes pairwise, then the block's scalar tail in order:
//! a fixed order, so a block's sum depends only on its elements.

use super::ops::{lower, pick, with_ops};

macro_rules! isa_op {
    ([$feature:literal, $t:ty, $vec:ty, $loadu:path, $storeu:path, $stream:path, $add:path, $mul:path, $set1:path, $zero:path]
     write $dest:ident; $fname:ident $s:ident [$($r:ident)*] $f:tt) => {
        /// Writes `dst[i] = f(…)` for `i < n`.
        ///
        /// # Safety
        /// As [`crate::kernel::RawWrite`].
        #[target_feature(enable = $feature)]
        #[allow(unused_variables)]
        pub(crate) unsafe fn $fname<const NT: bool>(ap: *mut $t, bp: *const $t, cp: *mut $t, n: usize, sv: $t) {
            let vs: $vec = $set1(sv);
            let dst: *mut $t = pick!(ap, bp, cp; $dest);
            let mut i = 0usize;
            if NT {
                while i < n && (dst.wrapping_add(i) as usize) % size_of::<$vec>() != 0 {
                    // SAFETY: `i < n`; the caller guarantees the arrays are
                    // valid for `n` elements.
                    let ($($r,)*) = unsafe { ($(*pick!(ap, bp, cp; $r).add(i),)*) };
                    let $s = sv;
                    let out = lower!([sadd, smul] $f);
                    // SAFETY: as above.
                    unsafe { *dst.add(i) = out };
                    i += 1;
                }
            }
            while i + 4 * LANES <= n {
                for u in 0..4 {
                    let j = i + u * LANES;
                    // SAFETY: `j + LANES <= n` keeps the vector inside the arrays.
                    let ($($r,)*) = unsafe { ($($loadu(pick!(ap, bp, cp; $r).add(j)),)*) };
                    let $s = vs;
                    let out = lower!([$add, $mul] $f);
                    // SAFETY: in bounds as above; with NT the head loop
                    // aligned `dst`, and every step advances by whole vectors.
                    unsafe { if NT { $stream(dst.add(j), out) } else { $storeu(dst.add(j), out) } }
                }
                i += 4 * LANES;
            }
            while i + LANES <= n {
                // SAFETY: the loop condition keeps the vector inside `n`.
                let ($($r,)*) = unsafe { ($($loadu(pick!(ap, bp, cp; $r).add(i)),)*) };
                let $s = vs;
                let out = lower!([$add, $mul] $f);
                // SAFETY: as above.
                unsafe { if NT { $stream(dst.add(i), out) } else { $storeu(dst.add(i), out) } }
                i += LANES;
            }
            while i < n {
                // SAFETY: `i < n`.
                let ($($r,)*) = unsafe { ($(*pick!(ap, bp, cp; $r).add(i),)*) };
                let $s = sv;
                let out = lower!([sadd, smul] $f);
                // SAFETY: as above.
                unsafe { *dst.add(i) = out };
                i += 1;
            }
            if NT {
                // Streaming stores are weakly ordered: fence them before
                // this worker reports the round done.
                _mm_sfence();
            }
        }
    };
    ([$feature:literal, $t:ty, $vec:ty, $loadu:path, $storeu:path, $stream:path, $add:path, $mul:path, $set1:path, $zero:path]
     reduce; $fname:ident $s:ident [$($r:ident)*] $f:tt) => {
        /// Sums the terms of each block of `block` elements.
        ///
        /// # Safety
        /// As [`crate::kernel::RawReduce`].
        #[target_feature(enable = $feature)]
        #[allow(unused_variables)]
        pub(crate) unsafe fn $fname(ap: *const $t, bp: *const $t, cp: *const $t, n: usize, block: usize, out: *mut $t) {
            let sv = <$t as Element>::from_f64(crate::kernel::STREAM_SCALAR);
            let vs: $vec = $set1(sv);
            let mut start = 0usize;
            let mut k = 0usize;
            while start < n {
                let len = block.min(n - start);
                let mut acc: [$vec; 4] = [$zero(); 4];
                let mut j = 0usize;
                while j + 4 * LANES <= len {
                    for (u, slot) in acc.iter_mut().enumerate() {
                        let p = start + j + u * LANES;
                        // SAFETY: `p + LANES <= start + len <= n`.
                        let ($($r,)*) = unsafe { ($($loadu(pick!(ap, bp, cp; $r).add(p)),)*) };
                        let $s = vs;
                        *slot = $add(*slot, lower!([$add, $mul] $f));
                    }
                    j += 4 * LANES;
                }
                while j + LANES <= len {
                    let p = start + j;
                    // SAFETY: `p + LANES <= n`.
                    let ($($r,)*) = unsafe { ($($loadu(pick!(ap, bp, cp; $r).add(p)),)*) };
                    let $s = vs;
                    acc[0] = $add(acc[0], lower!([$add, $mul] $f));
                    j += LANES;
                }
                let v = $add($add(acc[0], acc[1]), $add(acc[2], acc[3]));
                let mut lanes = [0.0 as $t; LANES];
                // SAFETY: `lanes` holds exactly one vector.
                unsafe { $storeu(lanes.as_mut_ptr(), v) };
                let mut sum = crate::kernel::pairwise(&mut lanes);
                while j < len {
                    let p = start + j;
                    // SAFETY: `p < n`.
                    let ($($r,)*) = unsafe { ($(*pick!(ap, bp, cp; $r).add(p),)*) };
                    let $s = sv;
                    sum = sadd(sum, lower!([sadd, smul] $f));
                    j += 1;
                }
                // SAFETY: `k < n.div_ceil(block)`, for which `out` is valid.
                unsafe { *out.add(k) = sum };
                k += 1;
                start += len;
            }
        }
    };
}

macro_rules! isa_body {
    (write $dest:ident; $fname:ident, $nt:expr) => {
        if $nt { Body::Write($fname::<true>) } else { Body::Write($fname::<false>) }
    };
    (reduce; $fname:ident, $nt:expr) => {
        Body::Reduce($fname)
    };
}

macro_rules! isa {
    (($m:ident, $feature:literal, $t:ty, $vec:ty, $lanes:literal,
      loadu = $loadu:path, storeu = $storeu:path, stream = $stream:path,
      add = $add:path, mul = $mul:path, set1 = $set1:path, zero = $zero:path)
     $s:ident; $($V:ident $fname:ident $shape:ident $($dest:ident)? [$($r:ident)*] $f:tt;)*) => {
        pub(super) mod $m {
            use std::arch::x86_64::*;

            use super::{lower, pick};
            use crate::kernel::{Body, Element, Op};

            const LANES: usize = $lanes;

            #[inline(always)]
            fn sadd(x: $t, y: $t) -> $t {
                x + y
            }

            #[inline(always)]
            fn smul(x: $t, y: $t) -> $t {
                x * y
            }

            $(
                isa_op!([$feature, $t, $vec, $loadu, $storeu, $stream, $add, $mul, $set1, $zero]
                    $shape $($dest)?; $fname $s [$($r)*] $f);
            )*

            /// The kernel of `op`, with streaming stores when `nt`.
            pub(crate) fn table(op: Op, nt: bool) -> Body<$t> {
                match op { $(Op::$V => isa_body!($shape $($dest)?; $fname, nt),)* }
            }
        }
    };
}

with_ops!(isa!(
    sse2_f64,
    "sse2",
    f64,
    __m128d,
    2,
    loadu = _mm_loadu_pd,
    storeu = _mm_storeu_pd,
    stream = _mm_stream_pd,
    add = _mm_add_pd,
    mul = _mm_mul_pd,
    set1 = _mm_set1_pd,
    zero = _mm_setzero_pd
));
with_ops!(isa!(
    sse2_f32,
    "sse2",
    f32,
    __m128,
    4,
    loadu = _mm_loadu_ps,
    storeu = _mm_storeu_ps,
    stream = _mm_stream_ps,
    add = _mm_add_ps,
    mul = _mm_mul_ps,
    set1 = _mm_set1_ps,
    zero = _mm_setzero_ps
));
with_ops!(isa!(
    avx2_f64,
    "avx2",
    f64,
    __m256d,
    4,
    loadu = _mm256_loadu_pd,
    storeu = _mm256_storeu_pd,
    stream = _mm256_stream_pd,
    add = _mm256_add_pd,
    mul = _mm256_mul_pd,
    set1 = _mm256_set1_pd,
    zero = _mm256_setzero_pd
));
with_ops!(isa!(
    avx2_f32,
    "avx2",
    f32,
    __m256,
    8,
    loadu = _mm256_loadu_ps,
    storeu = _mm256_storeu_ps,
    stream = _mm256_stream_ps,
    add = _mm256_add_ps,
    mul = _mm256_mul_ps,
    set1 = _mm256_set1_ps,
    zero = _mm256_setzero_ps
));
with_ops!(isa!(
    avx512_f64,
    "avx512f",
    f64,
    __m512d,
    8,
    loadu = _mm512_loadu_pd,
    storeu = _mm512_storeu_pd,
    stream = _mm512_stream_pd,
    add = _mm512_add_pd,
    mul = _mm512_mul_pd,
    set1 = _mm512_set1_pd,
    zero = _mm512_setzero_pd
));
with_ops!(isa!(
    avx512_f32,
    "avx512f",
    f32,
    __m512,
    16,
    loadu = _mm512_loadu_ps,
    storeu = _mm512_storeu_ps,
    stream = _mm512_stream_ps,
    add = _mm512_add_ps,
    mul = _mm512_mul_ps,
    set1 = _mm512_set1_ps,
    zero = _mm512_setzero_ps
));
