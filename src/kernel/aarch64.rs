//! NEON kernels for aarch64 (128-bit vectors; NEON is baseline there),
//! generated from the kernel table like the x86_64 ones.
//!
//! Stable Rust has no non-temporal store intrinsic on aarch64 (`STNP` needs
//! inline assembly), so only regular stores are offered; `--stores
//! nontemporal` is refused with `--simd neon`.

use super::ops::{lower, pick, with_ops};

macro_rules! neon_op {
    ([$t:ty, $vec:ty, $load:path, $store:path, $add:path, $mul:path, $dup:path]
     write $dest:ident; $fname:ident $s:ident [$($r:ident)*] $f:tt) => {
        /// Writes `dst[i] = f(…)` for `i < n`.
        ///
        /// # Safety
        /// As [`crate::kernel::RawWrite`].
        #[target_feature(enable = "neon")]
        #[allow(unused_variables)]
        pub(crate) unsafe fn $fname(ap: *mut $t, bp: *const $t, cp: *mut $t, n: usize, sv: $t) {
            let vs: $vec = $dup(sv);
            let dst: *mut $t = pick!(ap, bp, cp; $dest);
            let mut i = 0usize;
            while i + LANES <= n {
                // SAFETY: `i + LANES <= n` keeps the vector inside the arrays.
                let ($($r,)*) = unsafe { ($($load(pick!(ap, bp, cp; $r).add(i)),)*) };
                let $s = vs;
                let out = lower!([$add, $mul] $f);
                // SAFETY: as above.
                unsafe { $store(dst.add(i), out) };
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
        }
    };
    ([$t:ty, $vec:ty, $load:path, $store:path, $add:path, $mul:path, $dup:path]
     reduce; $fname:ident $s:ident [$($r:ident)*] $f:tt) => {
        /// Sums the terms of each block of `block` elements.
        ///
        /// # Safety
        /// As [`crate::kernel::RawReduce`].
        #[target_feature(enable = "neon")]
        #[allow(unused_variables)]
        pub(crate) unsafe fn $fname(ap: *const $t, bp: *const $t, cp: *const $t, n: usize, block: usize, out: *mut $t) {
            let sv = <$t as Element>::from_f64(crate::kernel::STREAM_SCALAR);
            let vs: $vec = $dup(sv);
            let mut start = 0usize;
            let mut k = 0usize;
            while start < n {
                let len = block.min(n - start);
                let mut acc: $vec = $dup(0.0);
                let mut j = 0usize;
                while j + LANES <= len {
                    let p = start + j;
                    // SAFETY: `p + LANES <= n`.
                    let ($($r,)*) = unsafe { ($($load(pick!(ap, bp, cp; $r).add(p)),)*) };
                    let $s = vs;
                    acc = $add(acc, lower!([$add, $mul] $f));
                    j += LANES;
                }
                let mut lanes = [0.0 as $t; LANES];
                // SAFETY: `lanes` holds exactly one vector.
                unsafe { $store(lanes.as_mut_ptr(), acc) };
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

macro_rules! neon_body {
    (write $dest:ident; $fname:ident) => {
        Body::Write($fname)
    };
    (reduce; $fname:ident) => {
        Body::Reduce($fname)
    };
}

macro_rules! neon {
    (($m:ident, $t:ty, $vec:ty, $lanes:literal, load = $load:path, store = $store:path,
      add = $add:path, mul = $mul:path, dup = $dup:path)
     $s:ident; $($V:ident $fname:ident $shape:ident $($dest:ident)? [$($r:ident)*] $f:tt;)*) => {
        pub(super) mod $m {
            use std::arch::aarch64::*;

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
                neon_op!([$t, $vec, $load, $store, $add, $mul, $dup] $shape $($dest)?; $fname $s [$($r)*] $f);
            )*

            /// The kernel of `op` (regular stores only).
            pub(crate) fn table(op: Op) -> Body<$t> {
                match op { $(Op::$V => neon_body!($shape $($dest)?; $fname),)* }
            }
        }
    };
}

with_ops!(neon!(
    neon_f64,
    f64,
    float64x2_t,
    2,
    load = vld1q_f64,
    store = vst1q_f64,
    add = vaddq_f64,
    mul = vmulq_f64,
    dup = vdupq_n_f64
));
with_ops!(neon!(
    neon_f32,
    f32,
    float32x4_t,
    4,
    load = vld1q_f32,
    store = vst1q_f32,
    add = vaddq_f32,
    mul = vmulq_f32,
    dup = vdupq_n_f32
));
