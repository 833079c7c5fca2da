//! NEON kernels for aarch64 (128-bit vectors; NEON is baseline there).
//!
//! Stable Rust has no non-temporal store intrinsic on aarch64 (`STNP` needs
//! inline assembly), so only regular stores are offered; `--stores
//! nontemporal` is refused with `--simd neon`.

macro_rules! neon_kernels {
    ($name:ident, $t:ty, $vec:ty, $lanes:expr,
     load = $load:ident, store = $store:ident, add = $add:ident, mul = $mul:ident, dup = $dup:ident) => {
        pub(super) mod $name {
            use std::arch::aarch64::*;

            use crate::kernel::{Element, OP_ADD, OP_COPY, OP_SCALE, OP_TRIAD};

            const LANES: usize = $lanes;

            /// `c[i] = op(a[i], b[i], s)` for `i < n`.
            ///
            /// # Safety
            /// `a` and `c` are valid for `n` elements, `b` too when the op
            /// reads it; `c` overlaps neither input. `NT` must be false.
            #[target_feature(enable = "neon")]
            pub(crate) unsafe fn run<const OP: u8, const NT: bool>(
                a: *const $t,
                b: *const $t,
                c: *mut $t,
                n: usize,
                s: $t,
            ) {
                let reads_b = OP == OP_ADD || OP == OP_TRIAD;
                let vs: $vec = $dup(s);
                let mut i = 0usize;
                while i + LANES <= n {
                    // SAFETY: `i + LANES <= n`; pointers valid for `n` elements.
                    unsafe {
                        let va = $load(a.add(i));
                        let vb = if reads_b { $load(b.add(i)) } else { $dup(0.0) };
                        let r = match OP {
                            OP_ADD => $add(va, vb),
                            OP_COPY => va,
                            OP_SCALE => $mul(vs, va),
                            _ => $add(va, $mul(vs, vb)),
                        };
                        $store(c.add(i), r);
                    }
                    i += LANES;
                }
                while i < n {
                    // SAFETY: `i < n`; pointers valid for `n` elements.
                    unsafe {
                        let x = *a.add(i);
                        let y = if reads_b { *b.add(i) } else { 0.0 };
                        *c.add(i) = match OP {
                            OP_ADD => x.add(y),
                            OP_COPY => x,
                            OP_SCALE => s.mul(x),
                            _ => x.add(s.mul(y)),
                        };
                    }
                    i += 1;
                }
            }
        }
    };
}

neon_kernels!(
    neon_f64,
    f64,
    float64x2_t,
    2,
    load = vld1q_f64,
    store = vst1q_f64,
    add = vaddq_f64,
    mul = vmulq_f64,
    dup = vdupq_n_f64
);
neon_kernels!(
    neon_f32,
    f32,
    float32x4_t,
    4,
    load = vld1q_f32,
    store = vst1q_f32,
    add = vaddq_f32,
    mul = vmulq_f32,
    dup = vdupq_n_f32
);
