//! The scalar kernels: one element per load, per operation and per store,
//! generated from the kernel table.
//!
//! A plain loop would be auto-vectorised by LLVM even at the x86_64 baseline
//! (SSE2), which would make `--simd scalar` a lie and hide the chapter's SIMD
//! lesson. Volatile accesses may not be merged or widened, so each element is
//! loaded, combined and stored by its own scalar instruction (`vmovsd`,
//! `vaddsd`: check with `objdump -d` on the release binary).

use super::ops::{lower, pick, with_ops};
use super::{Body, Element, Op};

macro_rules! scalar_op {
    (write $dest:ident; $fname:ident $s:ident [$($r:ident)*] $f:tt) => {
        /// Writes `dst[i] = f(…)` for `i < n`, one element at a time.
        ///
        /// # Safety
        /// As [`super::RawWrite`].
        #[allow(unused_variables)]
        unsafe fn $fname<T: Element>(ap: *mut T, bp: *const T, cp: *mut T, n: usize, sv: T) {
            let dst: *mut T = pick!(ap, bp, cp; $dest);
            for i in 0..n {
                // SAFETY: `i < n`, and the caller guarantees every array the
                // kernel reads or writes is valid for `n` elements.
                let ($($r,)*) = unsafe { ($(pick!(ap, bp, cp; $r).add(i).read_volatile(),)*) };
                let $s = sv;
                let out = lower!([Element::add, Element::mul] $f);
                // SAFETY: as above.
                unsafe { dst.add(i).write_volatile(out) };
            }
        }
    };
    (reduce; $fname:ident $s:ident [$($r:ident)*] $f:tt) => {
        /// Sums the terms of each block of `block` elements, in order.
        ///
        /// # Safety
        /// As [`super::RawReduce`].
        #[allow(unused_variables)]
        unsafe fn $fname<T: Element>(ap: *const T, bp: *const T, cp: *const T, n: usize, block: usize, out: *mut T) {
            let mut start = 0usize;
            let mut k = 0usize;
            while start < n {
                let len = block.min(n - start);
                let mut sum = T::ZERO;
                for i in start..start + len {
                    // SAFETY: `i < n`; every array the kernel reads is valid for `n` reads.
                    let ($($r,)*) = unsafe { ($(pick!(ap, bp, cp; $r).add(i).read_volatile(),)*) };
                    let $s = T::from_f64(super::STREAM_SCALAR);
                    sum = sum.add(lower!([Element::add, Element::mul] $f));
                }
                // SAFETY: `k < n.div_ceil(block)`, for which `out` is valid.
                unsafe { out.add(k).write(sum) };
                k += 1;
                start += len;
            }
        }
    };
}

macro_rules! scalar_body {
    (write $dest:ident; $fname:ident) => {
        Body::Write($fname::<T>)
    };
    (reduce; $fname:ident) => {
        Body::Reduce($fname::<T>)
    };
}

macro_rules! scalar_kernels {
    (() $s:ident; $($V:ident $fname:ident $shape:ident $($dest:ident)? [$($r:ident)*] $f:tt;)*) => {
        $( scalar_op!($shape $($dest)?; $fname $s [$($r)*] $f); )*

        /// The scalar kernel of `op`.
        pub(super) fn table<T: Element>(op: Op) -> Body<T> {
            match op { $(Op::$V => scalar_body!($shape $($dest)?; $fname),)* }
        }
    };
}

with_ops!(scalar_kernels!());
