//! SSE2, AVX2 and AVX-512 kernels for x86_64.
//!
//! One macro writes the same body for each (instruction set, element type):
//! a loop unrolled four vectors deep, then single vectors, then a scalar tail.
//! With non-temporal stores the body first peels scalar elements until `c` is
//! aligned to the vector width (streaming stores fault on misaligned
//! addresses) and ends with `sfence`, which the intrinsics' documentation
//! requires before any other access to the written memory. Within vecpar a
//! chunk of `c` starts on a page, so the peel only runs for unusual callers.

macro_rules! isa_kernels {
    ($name:ident, $feature:literal, $t:ty, $vec:ty, $lanes:expr,
     loadu = $loadu:ident, storeu = $storeu:ident, stream = $stream:ident,
     add = $add:ident, mul = $mul:ident, set1 = $set1:ident, zero = $zero:ident) => {
        pub(super) mod $name {
            #[allow(unused_imports)]
            use std::arch::x86_64::*;

            use crate::kernel::{Element, OP_ADD, OP_COPY, OP_SCALE, OP_TRIAD};

            const LANES: usize = $lanes;
            const ALIGN: usize = LANES * size_of::<$t>();

            /// `c[i] = op(a[i], b[i], s)` for `i < n`.
            ///
            /// # Safety
            /// The CPU supports the target feature; `a` and `c` are valid for
            /// `n` elements, `b` too when the op reads it; `c` overlaps
            /// neither input.
            #[target_feature(enable = $feature)]
            pub(crate) unsafe fn run<const OP: u8, const NT: bool>(
                a: *const $t,
                b: *const $t,
                c: *mut $t,
                n: usize,
                s: $t,
            ) {
                let reads_b = OP == OP_ADD || OP == OP_TRIAD;
                let vs = $set1(s);
                let scalar = |x: $t, y: $t| match OP {
                    OP_ADD => x.add(y),
                    OP_COPY => x,
                    OP_SCALE => s.mul(x),
                    OP_TRIAD => x.add(s.mul(y)),
                    _ => unreachable!(),
                };
                let mut i = 0usize;
                if NT {
                    while i < n && (c.wrapping_add(i) as usize) % ALIGN != 0 {
                        // SAFETY: `i < n`; the caller guarantees the pointers
                        // are valid for `n` elements (b only when read).
                        unsafe {
                            let y = if reads_b { *b.add(i) } else { 0.0 };
                            *c.add(i) = scalar(*a.add(i), y);
                        }
                        i += 1;
                    }
                }
                while i + 4 * LANES <= n {
                    // SAFETY: `i + 4 * LANES <= n` keeps all four vectors
                    // inside the arrays.
                    unsafe {
                        step::<OP, NT>(a, b, c, i, vs);
                        step::<OP, NT>(a, b, c, i + LANES, vs);
                        step::<OP, NT>(a, b, c, i + 2 * LANES, vs);
                        step::<OP, NT>(a, b, c, i + 3 * LANES, vs);
                    }
                    i += 4 * LANES;
                }
                while i + LANES <= n {
                    // SAFETY: the loop condition keeps the vector inside `n`.
                    unsafe { step::<OP, NT>(a, b, c, i, vs) };
                    i += LANES;
                }
                while i < n {
                    // SAFETY: `i < n`, pointers valid for `n` elements.
                    unsafe {
                        let y = if reads_b { *b.add(i) } else { 0.0 };
                        *c.add(i) = scalar(*a.add(i), y);
                    }
                    i += 1;
                }
                if NT {
                    // Streaming stores are weakly ordered: fence them before
                    // this worker reports the round done.
                    _mm_sfence();
                }
            }

            /// One vector of the body: `c[j..j + LANES] = op(a, b)`.
            ///
            /// # Safety
            /// As [`run`], with `j + LANES <= n`; with `NT`, `c + j` is
            /// aligned to the vector width.
            #[target_feature(enable = $feature)]
            #[inline]
            unsafe fn step<const OP: u8, const NT: bool>(a: *const $t, b: *const $t, c: *mut $t, j: usize, vs: $vec) {
                let reads_b = OP == OP_ADD || OP == OP_TRIAD;
                // SAFETY: the caller guarantees `j + LANES <= n`.
                let (va, vb) = unsafe {
                    let va = $loadu(a.add(j));
                    let vb = if reads_b { $loadu(b.add(j)) } else { $zero() };
                    (va, vb)
                };
                let r = match OP {
                    OP_ADD => $add(va, vb),
                    OP_COPY => va,
                    OP_SCALE => $mul(vs, va),
                    _ => $add(va, $mul(vs, vb)),
                };
                // SAFETY: in bounds as above; with NT the caller guarantees
                // alignment (the head loop of `run` aligned `c`, and every
                // step advances by whole vectors).
                unsafe { if NT { $stream(c.add(j), r) } else { $storeu(c.add(j), r) } }
            }
        }
    };
}

isa_kernels!(
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
);
isa_kernels!(
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
);
isa_kernels!(
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
);
isa_kernels!(
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
);
isa_kernels!(
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
);
isa_kernels!(
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
);
