//! The STREAM kernels, their SIMD implementations and the data they run on.
//!
//! Four operations, after John McCalpin's STREAM benchmark, on `f64` or `f32`:
//!
//! | op      | computes      | arrays read | counted bytes per element |
//! |---------|---------------|-------------|---------------------------|
//! | `copy`  | c = a         | a           | 2 × size                  |
//! | `scale` | c = s·a       | a           | 2 × size                  |
//! | `add`   | c = a + b     | a, b        | 3 × size                  |
//! | `triad` | c = a + s·b   | a, b        | 3 × size                  |
//!
//! Every kernel computes bit-for-bit what the scalar oracle ([`Op::apply`])
//! computes: IEEE-754 addition and multiplication are correctly rounded, and
//! no kernel contracts `a + s·b` into a fused multiply-add. Validation can
//! therefore demand exact equality instead of STREAM's epsilon.
//!
//! A [`Kernel`] is resolved once per run from the requested [`Simd`] level,
//! [`Op`] and [`Stores`]; resolving checks the CPU, so the hot loop only calls
//! through a function pointer. `unsafe` lives here and in [`crate::shm`]
//! only: the SIMD bodies use `std::arch` intrinsics, which need raw pointers.

#[cfg(target_arch = "aarch64")]
mod aarch64;
mod data;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use data::{Mismatch, Stream, Verdict, expected_output, expected_value, fill, verify};

use std::fmt;

use serde::{Deserialize, Serialize};

/// The scalar `s` of `scale` and `triad`, as in STREAM.
pub const STREAM_SCALAR: f64 = 3.0;

/// Which STREAM operation to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// c = a + b (the seed chapter's loop)
    Add,
    /// c = a
    Copy,
    /// c = s·a with s = 3
    Scale,
    /// c = a + s·b with s = 3
    Triad,
}

impl Op {
    /// All operations, in STREAM's table order.
    pub const ALL: [Op; 4] = [Op::Copy, Op::Scale, Op::Add, Op::Triad];

    /// Arrays STREAM counts as moved per element (reads plus the write of c).
    pub fn arrays_moved(self) -> u64 {
        match self {
            Op::Copy | Op::Scale => 2,
            Op::Add | Op::Triad => 3,
        }
    }

    /// Whether the kernel reads `b`.
    pub fn reads_b(self) -> bool {
        matches!(self, Op::Add | Op::Triad)
    }

    /// The scalar oracle: what every kernel must produce for one element.
    #[inline(always)]
    pub fn apply<T: Element>(self, a: T, b: T, s: T) -> T {
        match self {
            Op::Add => a.add(b),
            Op::Copy => a,
            Op::Scale => s.mul(a),
            Op::Triad => a.add(s.mul(b)),
        }
    }

    /// The formula, for reports.
    pub fn formula(self) -> &'static str {
        match self {
            Op::Add => "c = a + b",
            Op::Copy => "c = a",
            Op::Scale => "c = s·a",
            Op::Triad => "c = a + s·b",
        }
    }

    /// Lower-case name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Copy => "copy",
            Op::Scale => "scale",
            Op::Triad => "triad",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// Const-generic operation codes: each kernel body is monomorphised per op, so
// the `match` on the op disappears from the loop.
const OP_ADD: u8 = 0;
const OP_COPY: u8 = 1;
const OP_SCALE: u8 = 2;
const OP_TRIAD: u8 = 3;

/// Element type of the arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
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

    /// Vector width in bytes (8 for scalar f64, meaning one element).
    pub fn width_bytes(self) -> usize {
        match self {
            Simd::Scalar => 8,
            Simd::Sse2 | Simd::Neon => 16,
            Simd::Avx2 => 32,
            Simd::Avx512 => 64,
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
        [Simd::Scalar, Simd::Sse2, Simd::Avx2, Simd::Avx512, Simd::Neon]
            .into_iter()
            .filter(|s| s.is_supported())
            .collect()
    }

    /// The widest level this CPU supports.
    pub fn best() -> Simd {
        *Simd::supported().last().unwrap_or(&Simd::Scalar)
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

/// How the kernel writes `c`.
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
    pub trait Sealed {}
    impl Sealed for f64 {}
    impl Sealed for f32 {}
}

/// A raw kernel: `c[i] = op(a[i], b[i], s)` for `i < n`.
///
/// # Safety
/// Callers guarantee the CPU supports the kernel's instruction set, that `a`,
/// `b` and `c` are valid for `n` elements (`b` only if the op reads it), and
/// that `c` overlaps neither `a` nor `b`.
pub(crate) type RawKernel<T> = unsafe fn(*const T, *const T, *mut T, usize, T);

/// An element type of the arrays: `f64` or `f32`.
pub trait Element:
    Copy + Send + Sync + PartialEq + PartialOrd + fmt::Debug + fmt::Display + 'static + sealed::Sealed
{
    /// The matching [`Dtype`].
    const DTYPE: Dtype;
    /// Zero.
    const ZERO: Self;
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
    #[doc(hidden)]
    fn simd_kernel(simd: Simd, op: Op, stores: Stores) -> Option<RawKernel<Self>>;
}

macro_rules! scalar_table {
    ($t:ty, $op:expr) => {
        match $op {
            Op::Add => scalar::run::<$t, OP_ADD> as RawKernel<$t>,
            Op::Copy => scalar::run::<$t, OP_COPY>,
            Op::Scale => scalar::run::<$t, OP_SCALE>,
            Op::Triad => scalar::run::<$t, OP_TRIAD>,
        }
    };
}

/// Picks the monomorphised body for (op, store kind) out of an ISA module.
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(unused_macros))]
macro_rules! simd_table {
    ($module:path, $op:expr, $nt:expr) => {{
        use $module as m;
        match ($op, $nt) {
            (Op::Add, false) => m::run::<OP_ADD, false> as RawKernel<_>,
            (Op::Add, true) => m::run::<OP_ADD, true>,
            (Op::Copy, false) => m::run::<OP_COPY, false>,
            (Op::Copy, true) => m::run::<OP_COPY, true>,
            (Op::Scale, false) => m::run::<OP_SCALE, false>,
            (Op::Scale, true) => m::run::<OP_SCALE, true>,
            (Op::Triad, false) => m::run::<OP_TRIAD, false>,
            (Op::Triad, true) => m::run::<OP_TRIAD, true>,
        }
    }};
}

macro_rules! impl_element {
    ($t:ty, $dtype:expr, $bits:ty, $int:ty, $shift:expr, $mant:expr,
     sse2 = $sse2:ident, avx2 = $avx2:ident, avx512 = $avx512:ident, neon = $neon:ident) => {
        impl Element for $t {
            const DTYPE: Dtype = $dtype;
            const ZERO: Self = 0.0;

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

            #[allow(unused_variables)]
            fn simd_kernel(simd: Simd, op: Op, stores: Stores) -> Option<RawKernel<Self>> {
                let nt = stores == Stores::Nontemporal;
                match simd {
                    Simd::Scalar if !nt => Some(scalar_table!($t, op)),
                    #[cfg(target_arch = "x86_64")]
                    Simd::Sse2 => Some(simd_table!(x86_64::$sse2, op, nt)),
                    #[cfg(target_arch = "x86_64")]
                    Simd::Avx2 => Some(simd_table!(x86_64::$avx2, op, nt)),
                    #[cfg(target_arch = "x86_64")]
                    Simd::Avx512 => Some(simd_table!(x86_64::$avx512, op, nt)),
                    #[cfg(target_arch = "aarch64")]
                    Simd::Neon if !nt => Some(simd_table!(aarch64::$neon, op, false)),
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
    raw: RawKernel<T>,
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
        let raw = T::simd_kernel(simd, op, stores).ok_or(KernelError::NoStreamingStores(simd))?;
        Ok(Kernel { raw, op, simd, stores, s: T::from_f64(STREAM_SCALAR) })
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

    /// Computes `c[i] = op(a[i], b[i])` for every `i < c.len()`.
    ///
    /// # Panics
    /// If `a` (or `b`, for ops that read it) is shorter than `c`.
    #[inline]
    pub fn run(&self, a: &[T], b: &[T], c: &mut [T]) {
        let n = c.len();
        assert!(a.len() >= n, "a is shorter than c");
        assert!(!self.op.reads_b() || b.len() >= n, "b is shorter than c");
        // SAFETY: `resolve` checked that the CPU supports the kernel's
        // instruction set. `a` and `b` are valid for reads of `n` elements
        // (asserted above; `b` is not read by copy and scale), `c` is valid
        // for writes of `n`, and `c` is a unique borrow, so it overlaps
        // neither input.
        unsafe { (self.raw)(a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), n, self.s) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<T: Element>(n: usize) -> (Vec<T>, Vec<T>) {
        let a = (0..n).map(|i| expected_value::<T>(7, Stream::A, i as u64)).collect();
        let b = (0..n).map(|i| expected_value::<T>(7, Stream::B, i as u64)).collect();
        (a, b)
    }

    /// Every kernel this CPU supports, every op and store kind, against the
    /// scalar oracle: lengths around the vector widths, so the unrolled body,
    /// the single-vector loop, the alignment head and the tail all run, and
    /// misaligned starts, so the non-temporal head peeling runs too.
    fn check_all<T: Element>() {
        let lengths = [0usize, 1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 1000, 4097];
        for simd in Simd::supported() {
            for stores in [Stores::Regular, Stores::Nontemporal] {
                for op in Op::ALL {
                    let Ok(kernel) = Kernel::<T>::resolve(op, simd, stores) else {
                        assert!(stores == Stores::Nontemporal && !simd.has_streaming_stores());
                        continue;
                    };
                    for &n in &lengths {
                        for offset in [0usize, 1, 3] {
                            let (a, b) = inputs::<T>(n + offset);
                            let mut c = vec![T::from_f64(-7.5); n + offset];
                            kernel.run(&a[offset..], &b[offset..], &mut c[offset..]);
                            let s = T::from_f64(STREAM_SCALAR);
                            for i in offset..n + offset {
                                let want = op.apply(a[i], b[i], s);
                                assert_eq!(
                                    c[i].to_bits64(),
                                    want.to_bits64(),
                                    "{simd} {stores} {op} {} n={n} offset={offset} i={i}",
                                    T::DTYPE
                                );
                            }
                            // Nothing before the slice was touched.
                            for x in &c[..offset] {
                                assert_eq!(x.to_bits64(), T::from_f64(-7.5).to_bits64());
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
    }

    #[test]
    fn triad_is_not_fused() {
        // Find inputs where a fused multiply-add rounds differently from
        // a + s·b; every kernel must give the unfused result for them.
        let s = STREAM_SCALAR;
        let (a, b) = (0..10_000u64)
            .map(|i| (expected_value::<f64>(1, Stream::A, i), expected_value::<f64>(1, Stream::B, i)))
            .find(|&(a, b)| Op::Triad.apply(a, b, s).to_bits() != s.mul_add(b, a).to_bits())
            .expect("some pair rounds differently when fused");
        let unfused = Op::Triad.apply(a, b, s);
        for simd in Simd::supported() {
            let k = Kernel::<f64>::resolve(Op::Triad, simd, Stores::Regular).unwrap();
            let a = vec![a; 64];
            let b = vec![b; 64];
            let mut c = vec![0.0; 64];
            k.run(&a, &b, &mut c);
            assert!(c.iter().all(|x| x.to_bits() == unfused.to_bits()), "{simd} fused the triad");
        }
    }
}
