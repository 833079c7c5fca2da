//! The scalar kernel: one element per load, per operation and per store.
//!
//! A plain loop would be auto-vectorised by LLVM even at the x86_64 baseline
//! (SSE2), which would make `--simd scalar` a lie and hide the chapter's SIMD
//! lesson. Volatile accesses may not be merged or widened, so each element is
//! loaded, combined and stored by its own scalar instruction (`vmovsd`,
//! `vaddsd`: check with `objdump -d` on the release binary).

use super::{Element, OP_ADD, OP_COPY, OP_SCALE, OP_TRIAD};

/// `c[i] = op(a[i], b[i], s)` for `i < n`, one element at a time.
///
/// # Safety
/// `a` and `c` are valid for `n` elements, `b` too when the op reads it, and
/// `c` overlaps neither input.
pub(super) unsafe fn run<T: Element, const OP: u8>(a: *const T, b: *const T, c: *mut T, n: usize, s: T) {
    for i in 0..n {
        // SAFETY: `i < n` and the caller guarantees `a`, `b` (for ops that
        // read it) and `c` are valid for `n` elements.
        unsafe {
            let x = a.add(i).read_volatile();
            let r = match OP {
                OP_ADD => x.add(b.add(i).read_volatile()),
                OP_COPY => x,
                OP_SCALE => s.mul(x),
                OP_TRIAD => x.add(s.mul(b.add(i).read_volatile())),
                _ => unreachable!(),
            };
            c.add(i).write_volatile(r);
        }
    }
}
