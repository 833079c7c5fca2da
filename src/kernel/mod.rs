//! The STREAM and BabelStream kernels, their SIMD implementations and the
//! data they run on.
//!
//! The operations on `f64` or `f32` are each defined once, as a line of
//! [`ops`]'s table (see [`Op::ALL`] and each one's [`Op::formula`]);
//! everything else here is generated from it. The bytes a round counts are every array
//! it reads plus the one it writes ([`Op::arrays_moved`]).
//!
//! (STREAM's and BabelStream's counting: every array read plus the one
//! written, no credit for write-allocate traffic; `s` = 3.)
//!
//! Every kernel that writes an array computes bit for bit what the scalar
//! oracle ([`Op::oracle`]) computes: IEEE-754 addition and multiplication
//! are correctly rounded and no kernel contracts them into a fused
//! multiply-add, so validation demands exact equality. `dot` is a sum, whose
//! rounding depends on the order of the additions: it is computed in 4 KiB
//! blocks and combined along a fixed tree over the whole array
//! ([`reduce`]), so its result is the same for any number of workers, and
//! validated against a compensated reference within a derived error bound.
//!
//! A [`Kernel`] is resolved once per run from the [`Op`], [`Simd`] level and
//! [`Stores`]; resolving checks the CPU, so the hot loop only calls through a
//! function pointer. `unsafe` lives here and in [`crate::shm`] only: the
//! SIMD bodies use `std::arch` intrinsics, which need raw pointers.

#[cfg(target_arch = "aarch64")]
mod aarch64;
pub(crate) mod data;
pub mod history;
mod ops;
pub use data::Mismatch;
pub use history::{Applied, History, Position};
pub(crate) mod reduce;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86_64;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::vocab::Array;
use ops::{lower, pick, statement, with_ops, written};

/// The scalar `s` of `scale`, `triad` and `nstream`, as in STREAM.
pub const STREAM_SCALAR: f64 = 3.0;

/// Bytes per reduction block: `dot` sums 4 KiB of each input at a time.
pub const REDUCE_BLOCK_BYTES: usize = 4096;

macro_rules! define_ops {
    (() $s:ident; $($V:ident $fname:ident $shape:ident $($dest:ident)? [$($r:ident)*] $f:tt;)*) => {
        /// A kernel.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum Op {
            $(
                #[doc = statement!($shape $($dest)?; $f)]
                $V,
            )*
        }

        impl Op {
            /// Every kernel, in the order `--op all` runs them: STREAM's
            /// four, BabelStream's two, then likwid-bench's and BLAS's
            /// `c = a·b + c`.
            pub const ALL: [Op; [$(Op::$V),*].len()] = [$(Op::$V),*];

            /// The name used on the command line and in reports.
            pub fn name(self) -> &'static str {
                match self { $(Op::$V => stringify!($fname),)* }
            }

            /// The formula, as people write it: `c = a + s·b`.
            pub fn formula(self) -> &'static str {
                match self { $(Op::$V => statement!($shape $($dest)?; $f),)* }
            }

            /// The arrays the kernel reads.
            pub fn reads(self) -> &'static [Array] {
                match self { $(Op::$V => &[$(pick!(A, B, C; $r)),*],)* }
            }

            /// The array it writes (`None` for a reduction).
            pub fn writes(self) -> Option<Array> {
                match self { $(Op::$V => written!($shape $($dest)?),)* }
            }

            /// The oracle: the value an element of the written array must
            /// take (for a reduction, the term summed), in the kernels'
            /// own order of operations.
            #[inline(always)]
            pub fn oracle<T: Element>(self, a: T, b: T, c: T, s: T) -> T {
                let _ = (a, b, c);
                match self {
                    $(Op::$V => {
                        #[allow(unused_variables)]
                        let $s = s;
                        $(let $r = pick!(a, b, c; $r);)*
                        lower!([Element::add, Element::mul] $f)
                    })*
                }
            }

            /// Calls `v` with the kernel's formula as a type, so that a
            /// loop over elements is compiled once per kernel.
            pub(crate) fn visit<V: Visit>(self, v: V) -> V::Out {
                match self { $(Op::$V => v.visit::<formula::$V>(),)* }
            }
        }

        /// Each kernel's formula as a type (see [`Op::visit`]).
        pub(crate) mod formula {
            use super::{Element, Formula};
            $(
                /// The formula of this kernel.
                pub(crate) struct $V;
                impl Formula for $V {
                    #[inline(always)]
                    fn eval<T: Element>(a: T, b: T, c: T, s: T) -> T {
                        let _ = (a, b, c);
                        #[allow(unused_variables)]
                        let $s = s;
                        $(let $r = crate::kernel::ops::pick!(a, b, c; $r);)*
                        crate::kernel::ops::lower!([Element::add, Element::mul] $f)
                    }
                }
            )*
        }
    };
}

use crate::vocab::Array::{A, B, C};
with_ops!(define_ops!());

impl Op {
    /// Arrays STREAM counts as moved per element: every array read, plus
    /// the one written.
    pub fn arrays_moved(self) -> u64 {
        self.reads().len() as u64 + u64::from(self.writes().is_some())
    }

    /// The kernel's number in [`Op::ALL`] (for the control block).
    pub(crate) fn code(self) -> u32 {
        Op::ALL.iter().position(|o| *o == self).unwrap_or(0) as u32
    }

    /// The kernel with that number.
    pub(crate) fn from_code(code: u32) -> Option<Op> {
        Op::ALL.get(code as usize).copied()
    }

    /// Whether the kernel can be repeated without changing its result: it
    /// writes no array it reads. One that does (`nstream`, `fma`) updates
    /// in place: a repeated round would apply twice.
    pub fn idempotent(self) -> bool {
        self.writes().is_none_or(|w| !self.reads().contains(&w))
    }
}

impl clap::ValueEnum for Op {
    fn value_variants<'a>() -> &'a [Self] {
        &Op::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.formula()))
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A kernel's formula as a type.
pub(crate) trait Formula {
    /// The formula on one element.
    fn eval<T: Element>(a: T, b: T, c: T, s: T) -> T;
}

/// Something generic over a formula (see [`Op::visit`]).
pub(crate) trait Visit {
    /// What the visit returns.
    type Out;
    /// Runs with the formula `F`.
    fn visit<F: Formula>(self) -> Self::Out;
}

/// Element type of the arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// 64-bit IEEE float (STREAM's default)
    F64,
    /// 32-bit IEEE float
    F32,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F64 => 8,
            Dtype::F32 => 4,
        }
    }

    /// Lower-case name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F64 => "f64",
            Dtype::F32 => "f32",
        }
    }

    pub(crate) fn code(self) -> u32 {
        match self {
            Dtype::F64 => 1,
            Dtype::F32 => 2,
        }
    }

    pub(crate) fn from_code(code: u32) -> Option<Dtype> {
        match code {
            1 => Some(Dtype::F64),
            2 => Some(Dtype::F32),
            _ => None,
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Instruction-set level of the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Simd {
    /// One element per instruction (volatile loads and stores keep LLVM from vectorising)
    Scalar,
    /// 128-bit vectors (x86_64 baseline)
    Sse2,
    /// 256-bit vectors
    Avx2,
    /// 512-bit vectors
    Avx512,
    /// 128-bit vectors on aarch64
    Neon,
}

impl Simd {
    /// Every level, lowest first.
    pub const ALL: [Simd; 5] = [Simd::Scalar, Simd::Sse2, Simd::Avx2, Simd::Avx512, Simd::Neon];

    /// Lower-case name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Simd::Scalar => "scalar",
            Simd::Sse2 => "sse2",
            Simd::Avx2 => "avx2",
            Simd::Avx512 => "avx512",
            Simd::Neon => "neon",
        }
    }

    /// Whether this CPU can run the level.
    pub fn is_supported(self) -> bool {
        match self {
            Simd::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Simd::Sse2 => std::arch::is_x86_feature_detected!("sse2"),
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "aarch64")]
            Simd::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every level this CPU supports, lowest first.
    pub fn supported() -> Vec<Simd> {
        Simd::ALL.into_iter().filter(|s| s.is_supported()).collect()
    }

    /// Whether the level has a non-temporal (streaming) store.
    pub fn has_streaming_stores(self) -> bool {
        matches!(self, Simd::Sse2 | Simd::Avx2 | Simd::Avx512)
    }
}

impl fmt::Display for Simd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the kernel writes its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Stores {
    /// Ordinary stores: each line of c is read into the cache before it is written
    /// (write-allocate), so memory sees 4 streams for add, not 3.
    Regular,
    /// Non-temporal (streaming) stores followed by a store fence: c bypasses the
    /// caches, saving the write-allocate read, but is not in cache for the next round.
    Nontemporal,
}

impl Stores {
    /// The store kind `op` uses when the run asked for `self`, `auto` if it
    /// was chosen by `--stores auto`: a kernel that reads the array it
    /// writes (`nstream`, `fma`) has each line in cache already, so streaming
    /// stores would save no write-allocate read, only evict; auto gives it
    /// regular stores. An explicit `--stores nontemporal` is obeyed.
    pub fn for_op(self, op: Op, auto: bool) -> Stores {
        match op.writes() {
            Some(dest) if auto && op.reads().contains(&dest) => Stores::Regular,
            _ => self,
        }
    }

    /// Lower-case name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Stores::Regular => "regular",
            Stores::Nontemporal => "nontemporal",
        }
    }
}

impl fmt::Display for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

mod sealed {
    /// Only `f64` and `f32` are elements; the kernel bodies are chosen here.
    pub trait Sealed {
        /// The kernel body for (level, op, store kind), if there is one.
        fn body(simd: super::Simd, op: super::Op, stores: super::Stores) -> Option<Body<Self>>
        where
            Self: Sized;
    }

    /// A kernel body.
    #[derive(Clone, Copy, Debug)]
    pub enum Body<T> {
        /// Writes one array.
        Write(super::RawWrite<T>),
        /// Sums per block.
        Reduce(super::RawReduce<T>),
    }
}

pub(crate) use sealed::Body;

/// A kernel that writes one array: `dst[i] = f(a[i], b[i], c[i], s)` for
/// `i < n`, `dst` being `a` or `c`.
///
/// # Safety
/// The CPU supports the kernel's instruction set; every array the kernel
/// reads or writes is valid for `n` elements; the written array overlaps no
/// other (a kernel that reads what it writes does so at the same index).
pub type RawWrite<T> = unsafe fn(*mut T, *const T, *mut T, usize, T);

/// A reduction: `out[k]` = the sum of the terms over block `k` of `block`
/// elements (the last one shorter), for `n` elements of `a`, `b` and `c`.
///
/// # Safety
/// The CPU supports the kernel's instruction set; every array the kernel
/// reads is valid for `n` reads; `out` for `n.div_ceil(block)` writes,
/// overlapping none of them.
pub type RawReduce<T> = unsafe fn(*const T, *const T, *const T, usize, usize, *mut T);

/// An element type of the arrays: `f64` or `f32`.
pub trait Element:
    Copy + Send + Sync + PartialEq + PartialOrd + fmt::Debug + fmt::Display + 'static + sealed::Sealed
{
    /// The matching [`Dtype`].
    const DTYPE: Dtype;
    /// Zero.
    const ZERO: Self;
    /// The unit roundoff: half the distance from 1 to the next value.
    const UNIT_ROUNDOFF: f64;
    /// Maps 64 random bits to a value uniform in [-1, 1), exactly representable.
    fn from_random_bits(z: u64) -> Self;
    /// The value's bit pattern, widened to 64 bits.
    fn to_bits64(self) -> u64;
    /// The value's bit pattern back into a value.
    fn from_bits64(bits: u64) -> Self;
    /// Converts from f64 (for the scalar `s`).
    fn from_f64(x: f64) -> Self;
    /// Widens to f64 (for reports).
    fn to_f64(self) -> f64;
    /// Correctly rounded addition.
    fn add(self, other: Self) -> Self;
    /// Correctly rounded multiplication.
    fn mul(self, other: Self) -> Self;
}

macro_rules! impl_element {
    ($t:ty, $dtype:expr, $bits:ty, $int:ty, $shift:expr, $mant:expr,
     sse2 = $sse2:ident, avx2 = $avx2:ident, avx512 = $avx512:ident, neon = $neon:ident) => {
        impl Element for $t {
            const DTYPE: Dtype = $dtype;
            const ZERO: Self = 0.0;
            const UNIT_ROUNDOFF: f64 = <$t>::EPSILON as f64 / 2.0;

            #[inline(always)]
            fn from_random_bits(z: u64) -> Self {
                // The top bits as an integer below 2^(mant+1), scaled into
                // [0, 2) and shifted to [-1, 1): exact in the type, so every
                // process computes the same value. The signed conversion
                // vectorises (x86 has no unsigned one before AVX-512).
                ((z >> $shift) as $int as $t) * (1.0 / (1u64 << $mant) as $t) - 1.0
            }
            #[inline(always)]
            fn to_bits64(self) -> u64 {
                self.to_bits() as u64
            }
            #[inline(always)]
            fn from_bits64(bits: u64) -> Self {
                <$t>::from_bits(bits as $bits)
            }
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn add(self, other: Self) -> Self {
                self + other
            }
            #[inline(always)]
            fn mul(self, other: Self) -> Self {
                self * other
            }
        }

        impl sealed::Sealed for $t {
            fn body(simd: Simd, op: Op, stores: Stores) -> Option<Body<Self>> {
                // A reduction stores nothing: any store kind will do.
                let nt = stores == Stores::Nontemporal && op.writes().is_some();
                match simd {
                    Simd::Scalar if !nt => Some(scalar::table::<$t>(op)),
                    #[cfg(target_arch = "x86_64")]
                    Simd::Sse2 => Some(x86_64::$sse2::table(op, nt)),
                    #[cfg(target_arch = "x86_64")]
                    Simd::Avx2 => Some(x86_64::$avx2::table(op, nt)),
                    #[cfg(target_arch = "x86_64")]
                    Simd::Avx512 => Some(x86_64::$avx512::table(op, nt)),
                    #[cfg(target_arch = "aarch64")]
                    Simd::Neon if !nt => Some(aarch64::$neon::table(op)),
                    _ => None,
                }
            }
        }
    };
}

impl_element!(
    f64,
    Dtype::F64,
    u64,
    i64,
    11,
    52,
    sse2 = sse2_f64,
    avx2 = avx2_f64,
    avx512 = avx512_f64,
    neon = neon_f64
);
impl_element!(
    f32,
    Dtype::F32,
    u32,
    i32,
    40,
    23,
    sse2 = sse2_f32,
    avx2 = avx2_f32,
    avx512 = avx512_f32,
    neon = neon_f32
);

/// Elements per reduction block.
pub fn block_elems<T: Element>() -> usize {
    REDUCE_BLOCK_BYTES / size_of::<T>()
}

/// Sums a power-of-two number of values pairwise, neighbours first:
/// `(v0 + v1) + (v2 + v3)`. Used for the lanes of a vector register.
#[inline(always)]
pub(crate) fn pairwise<T: Element>(v: &mut [T]) -> T {
    let mut n = v.len();
    while n > 1 {
        for i in 0..n / 2 {
            v[i] = v[2 * i].add(v[2 * i + 1]);
        }
        n /= 2;
    }
    v.first().copied().unwrap_or(T::ZERO)
}

/// Why a kernel cannot be resolved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KernelError {
    /// The CPU lacks the instruction set.
    #[error("this CPU does not support {requested} (supported here: {supported})")]
    Unsupported {
        /// The requested level.
        requested: Simd,
        /// What the CPU supports, comma separated.
        supported: String,
    },
    /// The level has no non-temporal store.
    #[error("{0} has no non-temporal store; use --stores regular or a wider --simd")]
    NoStreamingStores(Simd),
}

/// A resolved kernel for one element type: the op, the SIMD level and the
/// store kind, checked against this CPU.
pub struct Kernel<T: Element> {
    body: Body<T>,
    op: Op,
    simd: Simd,
    stores: Stores,
    s: T,
}

impl<T: Element> Clone for Kernel<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Element> Copy for Kernel<T> {}

impl<T: Element> fmt::Debug for Kernel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernel")
            .field("op", &self.op)
            .field("dtype", &T::DTYPE)
            .field("simd", &self.simd)
            .field("stores", &self.stores)
            .finish()
    }
}

impl<T: Element> Kernel<T> {
    /// Resolves the kernel, refusing levels this CPU lacks.
    pub fn resolve(op: Op, simd: Simd, stores: Stores) -> Result<Self, KernelError> {
        if !simd.is_supported() {
            let supported: Vec<&str> = Simd::supported().iter().map(|s| s.name()).collect();
            return Err(KernelError::Unsupported { requested: simd, supported: supported.join(", ") });
        }
        let body = <T as sealed::Sealed>::body(simd, op, stores).ok_or(KernelError::NoStreamingStores(simd))?;
        Ok(Kernel { body, op, simd, stores, s: T::from_f64(STREAM_SCALAR) })
    }

    /// The operation.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The SIMD level.
    pub fn simd(&self) -> Simd {
        self.simd
    }

    /// The store kind.
    pub fn stores(&self) -> Stores {
        self.stores
    }

    /// A kernel that writes `c` (copy, scale, add, triad, fma): `c[i] =
    /// f(a[i], b[i], c[i])` for every `i < c.len()` (a kernel that reads `c`
    /// reads it only at the index it writes).
    ///
    /// # Panics
    /// If the kernel does not write `c`, or an array it reads is shorter
    /// than `c`.
    #[inline]
    pub fn write_c(&self, a: &[T], b: &[T], c: &mut [T]) {
        let Body::Write(raw) = self.body else { panic!("{} does not write c", self.op) };
        assert_eq!(self.op.writes(), Some(Array::C), "{} does not write c", self.op);
        let n = c.len();
        assert!(!self.op.reads().contains(&Array::A) || a.len() >= n, "a is shorter than c");
        assert!(!self.op.reads().contains(&Array::B) || b.len() >= n, "b is shorter than c");
        // SAFETY: `resolve` checked that the CPU supports the kernel's
        // instruction set. `a` and `b` are valid for `n` reads where the
        // kernel reads them (asserted); `c` is a unique borrow of `n`
        // elements, which therefore overlaps neither input, and the kernel
        // reads it (if at all) only at the index it writes. The pointer to
        // `a` is only read.
        unsafe { raw(a.as_ptr().cast_mut(), b.as_ptr(), c.as_mut_ptr(), n, self.s) }
    }

    /// A kernel that writes `a` (nstream): `a[i] = f(a[i], b[i], c[i])` for
    /// every `i < a.len()`.
    ///
    /// # Panics
    /// If the kernel does not write `a`, or `b` or `c` is shorter than `a`.
    #[inline]
    pub fn write_a(&self, a: &mut [T], b: &[T], c: &[T]) {
        let Body::Write(raw) = self.body else { panic!("{} does not write a", self.op) };
        assert_eq!(self.op.writes(), Some(Array::A), "{} does not write a", self.op);
        let n = a.len();
        assert!(b.len() >= n && c.len() >= n, "b or c is shorter than a");
        // SAFETY: as in `write_c`, with `a` the unique borrow written (and
        // read at the same index only); `b` and `c` are valid for `n`
        // reads and cannot overlap `a`. The pointer to `c` is only read.
        unsafe { raw(a.as_mut_ptr(), b.as_ptr(), c.as_ptr().cast_mut(), n, self.s) }
    }

    /// A reduction (dot): `blocks[k]` = the sum over block `k` of
    /// [`block_elems`] elements of the kernel's term of `a`, `b` and `c`
    /// (an array it does not read may be empty).
    ///
    /// # Panics
    /// If the kernel is not a reduction, an array it reads differs in
    /// length from the others it reads, or `blocks` does not have one entry
    /// per block.
    #[inline]
    pub fn reduce(&self, a: &[T], b: &[T], c: &[T], blocks: &mut [T]) {
        let Body::Reduce(raw) = self.body else { panic!("{} is not a reduction", self.op) };
        let reads = self.op.reads();
        let lens: Vec<usize> = reads.iter().map(|arr| [a.len(), b.len(), c.len()][arr.index()]).collect();
        let n = lens.first().copied().unwrap_or(0);
        assert!(lens.iter().all(|&l| l == n), "the arrays {} reads differ in length", self.op);
        let block = block_elems::<T>();
        assert_eq!(blocks.len(), n.div_ceil(block), "one sum per block");
        // SAFETY: the CPU supports the kernel (checked by `resolve`); every
        // array the kernel reads is valid for `n` reads (asserted; the
        // others are never dereferenced); `blocks` is a unique borrow of
        // exactly one entry per block.
        unsafe { raw(a.as_ptr(), b.as_ptr(), c.as_ptr(), n, block, blocks.as_mut_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::data::expected_input;

    fn inputs<T: Element>(n: usize) -> [Vec<T>; 3] {
        Array::ALL.map(|arr| (0..n).map(|i| expected_input::<T>(7, arr, i as u64)).collect())
    }

    /// Every kernel this CPU supports, every op and store kind, against the
    /// scalar oracle: lengths around the vector widths, so the unrolled body,
    /// the single-vector loop, the alignment head and the tail all run, and
    /// misaligned starts, so the non-temporal head peeling runs too.
    fn check_all<T: Element>() {
        let lengths = [0usize, 1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 1000, 4097];
        let s = T::from_f64(STREAM_SCALAR);
        for simd in Simd::supported() {
            for stores in [Stores::Regular, Stores::Nontemporal] {
                for op in Op::ALL {
                    let Ok(kernel) = Kernel::<T>::resolve(op, simd, stores) else {
                        assert!(stores == Stores::Nontemporal && !simd.has_streaming_stores());
                        continue;
                    };
                    for &n in &lengths {
                        for offset in [0usize, 1, 3] {
                            let [a, b, c0] = inputs::<T>(n + offset);
                            let (mut a2, mut c) = (a.clone(), c0.clone());
                            match op.writes() {
                                Some(Array::C) => kernel.write_c(&a[offset..], &b[offset..], &mut c[offset..]),
                                Some(_) => kernel.write_a(&mut a2[offset..], &b[offset..], &c0[offset..]),
                                None => {
                                    let mut blocks = vec![T::ZERO; n.div_ceil(block_elems::<T>())];
                                    kernel.reduce(&a[offset..], &b[offset..], &c0[offset..], &mut blocks);
                                    let exact: f64 =
                                        (offset..n + offset).map(|i| op.oracle(a[i], b[i], c0[i], s).to_f64()).sum();
                                    let got: f64 = blocks.iter().map(|x| x.to_f64()).sum();
                                    let scale: f64 =
                                        (offset..n + offset).map(|i| (a[i].to_f64() * b[i].to_f64()).abs()).sum();
                                    assert!(
                                        (got - exact).abs() <= 1e-4 * scale.max(1e-30) + 1e-30,
                                        "{simd} {op} {} n={n}",
                                        T::DTYPE
                                    );
                                    continue;
                                }
                            }
                            let (out, before) = if op.writes() == Some(Array::C) { (&c, &c0) } else { (&a2, &a) };
                            for i in offset..n + offset {
                                let want = op.oracle(a[i], b[i], c0[i], s);
                                assert_eq!(
                                    out[i].to_bits64(),
                                    want.to_bits64(),
                                    "{simd} {stores} {op} {} n={n} offset={offset} i={i}",
                                    T::DTYPE
                                );
                            }
                            for i in 0..offset {
                                assert_eq!(out[i].to_bits64(), before[i].to_bits64(), "nothing before the slice");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_supported_kernel_matches_the_oracle_f64() {
        check_all::<f64>();
    }

    #[test]
    fn every_supported_kernel_matches_the_oracle_f32() {
        check_all::<f32>();
    }

    #[test]
    fn a_dot_of_integers_is_exact_at_every_level() {
        // Integer-valued inputs whose products and partial sums stay below
        // 2^24: every order of summation gives the exact value.
        let n: usize = 3 * 1024 + 17;
        let a: Vec<f32> = (0..n).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
        let b: Vec<f32> = (0..n).map(|i| ((i * 5) % 11) as f32 - 5.0).collect();
        let exact: i64 = a.iter().zip(&b).map(|(x, y)| (*x as i64) * (*y as i64)).sum();
        for simd in Simd::supported() {
            let k = Kernel::<f32>::resolve(Op::Dot, simd, Stores::Regular).unwrap();
            let mut blocks = vec![0.0f32; n.div_ceil(block_elems::<f32>())];
            k.reduce(&a, &b, &[], &mut blocks);
            let total: i64 = blocks.iter().map(|&x| x as i64).sum();
            assert_eq!(total, exact, "{simd}");
            assert!(blocks.iter().all(|x| x.fract() == 0.0));
        }
    }

    #[test]
    fn the_table_describes_each_kernel() {
        assert_eq!(Op::Triad.formula(), "c = a + s·b");
        assert_eq!(Op::Nstream.formula(), "a = a + (b + s·c)");
        assert_eq!(Op::Dot.formula(), "s = Σ a·b");
        let moved: Vec<u64> = Op::ALL.iter().map(|o| o.arrays_moved()).collect();
        assert_eq!(moved, [2, 2, 3, 3, 2, 4, 4], "STREAM's and BabelStream's byte counting");
        assert_eq!(Op::ALL.map(Op::name), ["copy", "scale", "add", "triad", "dot", "nstream", "fma"]);
        assert!(Op::ALL.iter().all(|o| o.idempotent() != matches!(o, Op::Nstream | Op::Fma)));
        assert_eq!(Op::Nstream.reads(), [Array::A, Array::B, Array::C]);
        assert_eq!(Op::Fma.formula(), "c = a·b + c");
        assert_eq!(Op::Fma.writes(), Some(Array::C));
    }

    #[test]
    fn unsupported_levels_are_refused() {
        #[cfg(target_arch = "x86_64")]
        assert!(matches!(
            Kernel::<f64>::resolve(Op::Add, Simd::Neon, Stores::Regular),
            Err(KernelError::Unsupported { .. })
        ));
        assert_eq!(
            Kernel::<f64>::resolve(Op::Add, Simd::Scalar, Stores::Nontemporal).unwrap_err(),
            KernelError::NoStreamingStores(Simd::Scalar)
        );
        assert!(Kernel::<f64>::resolve(Op::Dot, Simd::Scalar, Stores::Nontemporal).is_ok(), "dot stores nothing");
    }

    #[test]
    fn triad_is_not_fused() {
        // Inputs where a fused multiply-add rounds differently from a + s·b;
        // every kernel must give the unfused result for them.
        let s = STREAM_SCALAR;
        let (a, b) = (0..10_000u64)
            .map(|i| (expected_input::<f64>(1, Array::A, i), expected_input::<f64>(1, Array::B, i)))
            .find(|&(a, b)| Op::Triad.oracle(a, b, 0.0, s).to_bits() != s.mul_add(b, a).to_bits())
            .expect("some pair rounds differently when fused");
        let unfused = Op::Triad.oracle(a, b, 0.0, s);
        for simd in Simd::supported() {
            let k = Kernel::<f64>::resolve(Op::Triad, simd, Stores::Regular).unwrap();
            let mut c = vec![0.0; 64];
            k.write_c(&[a; 64], &[b; 64], &mut c);
            assert!(c.iter().all(|x| x.to_bits() == unfused.to_bits()), "{simd} fused the triad");
        }
    }
}
