//! The arrays' contents: generated, checked and summarised, chunk by chunk.
//!
//! `a[i]` and `b[i]` come from a counter-based generator (SplitMix64's
//! finaliser applied to a key derived from `--seed` plus `i` times the golden
//! ratio), so a value depends on the seed and its index only. Every worker
//! can therefore fill its own chunk, touching its pages first, and the arrays
//! are the same whatever the mode or the number of workers.
//!
//! Validation regenerates the expected `a[i]` and `b[i]` instead of trusting
//! the arrays in memory, so it also catches a worker that scribbled over
//! someone else's input. The digest of `c` is an XOR of per-element hashes
//! keyed by index: chunks combine in any order, and two runs produced the same
//! `c` exactly when their digests match (up to hash collisions).

use serde::{Deserialize, Serialize};

use super::{Element, OP_ADD, OP_COPY, OP_SCALE, OP_TRIAD, Op, STREAM_SCALAR};

/// One of the three arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The first input.
    A,
    /// The second input.
    B,
    /// The output.
    C,
}

impl Stream {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Stream::A => "a",
            Stream::B => "b",
            Stream::C => "c",
        }
    }
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
const DIGEST_KEY: u64 = 0xD1B5_4A32_D192_ED03;

#[inline(always)]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[inline(always)]
fn stream_key(seed: u64, stream: Stream) -> u64 {
    let tag = match stream {
        Stream::A => 0xA0A0_A0A0_A0A0_A0A1,
        Stream::B => 0xB0B0_B0B0_B0B0_B0B3,
        Stream::C => 0xC0C0_C0C0_C0C0_C0C5,
    };
    mix64(seed ^ tag)
}

#[inline(always)]
fn generated<T: Element>(key: u64, index: u64) -> T {
    T::from_random_bits(mix64(key.wrapping_add(index.wrapping_mul(GOLDEN))))
}

/// The value element `index` of `stream` must hold after a validated run.
pub fn expected_value<T: Element>(seed: u64, stream: Stream, index: u64) -> T {
    match stream {
        Stream::A | Stream::B => generated(stream_key(seed, stream), index),
        // Only meaningful with an op; `expected_output` covers c.
        Stream::C => T::ZERO,
    }
}

/// The value `c[index]` must hold after a validated run of `op`.
pub fn expected_output<T: Element>(seed: u64, op: Op, index: u64) -> T {
    let a = expected_value::<T>(seed, Stream::A, index);
    let b = expected_value::<T>(seed, Stream::B, index);
    op.apply(a, b, T::from_f64(STREAM_SCALAR))
}

#[inline(always)]
fn fill_body<T: Element>(seed: u64, stream: Stream, start: u64, out: &mut [T]) {
    let key = stream_key(seed, stream);
    for (i, x) in out.iter_mut().enumerate() {
        *x = generated(key, start + i as u64);
    }
}

/// Fills `out` with elements `start..start + out.len()` of input `stream`.
pub fn fill<T: Element>(seed: u64, stream: Stream, start: u64, out: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512dq") {
        // SAFETY: the CPU supports AVX-512F/DQ (checked just above).
        return unsafe { fill_avx512(seed, stream, start, out) };
    }
    fill_body(seed, stream, start, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
fn fill_avx512<T: Element>(seed: u64, stream: Stream, start: u64, out: &mut [T]) {
    fill_body(seed, stream, start, out)
}

/// The first element that differs from what a correct run leaves behind.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mismatch {
    /// Which array.
    pub array: Stream,
    /// The element's index in the whole array.
    pub index: u64,
    /// What it holds.
    pub got: f64,
    /// What it should hold.
    pub expected: f64,
}

/// The result of checking one chunk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The first bad element, if any.
    pub mismatch: Option<Mismatch>,
    /// XOR-combinable digest of the chunk of `c`.
    pub digest: u64,
}

const VERIFY_BLOCK: usize = 256;

/// The op as a compile-time constant, so the check loop has no branch on
/// it and vectorises (a runtime `match` per element turned it into a jump
/// table, three times slower).
#[inline(always)]
fn apply_const<T: Element, const OP: u8>(a: T, b: T, s: T) -> T {
    match OP {
        OP_ADD => a.add(b),
        OP_COPY => a,
        OP_SCALE => s.mul(a),
        _ => a.add(s.mul(b)),
    }
}

#[inline(always)]
fn verify_dispatch<T: Element>(seed: u64, op: Op, start: u64, a: &[T], b: &[T], c: &[T]) -> Verdict {
    match op {
        Op::Add => verify_body::<T, OP_ADD>(seed, op, start, a, b, c),
        Op::Copy => verify_body::<T, OP_COPY>(seed, op, start, a, b, c),
        Op::Scale => verify_body::<T, OP_SCALE>(seed, op, start, a, b, c),
        Op::Triad => verify_body::<T, OP_TRIAD>(seed, op, start, a, b, c),
    }
}

#[inline(always)]
fn verify_body<T: Element, const OP: u8>(seed: u64, op: Op, start: u64, a: &[T], b: &[T], c: &[T]) -> Verdict {
    let n = c.len();
    assert!(a.len() == n && b.len() == n, "verify needs equal chunks of a, b and c");
    let key_a = stream_key(seed, Stream::A);
    let key_b = stream_key(seed, Stream::B);
    let s = T::from_f64(STREAM_SCALAR);
    let mut digest = 0u64;
    let mut first_bad_block = None;
    for block_start in (0..n).step_by(VERIFY_BLOCK) {
        let block_end = (block_start + VERIFY_BLOCK).min(n);
        let mut bad = 0u64;
        for i in block_start..block_end {
            let index = start + i as u64;
            let ea: T = generated(key_a, index);
            let eb: T = generated(key_b, index);
            let ec = apply_const::<T, OP>(ea, eb, s);
            let cb = c[i].to_bits64();
            bad |= (a[i].to_bits64() ^ ea.to_bits64()) | (b[i].to_bits64() ^ eb.to_bits64()) | (cb ^ ec.to_bits64());
            digest ^= mix64(cb ^ index.wrapping_mul(DIGEST_KEY));
        }
        if bad != 0 && first_bad_block.is_none() {
            first_bad_block = Some(block_start..block_end);
        }
    }
    let mismatch = first_bad_block.and_then(|block| {
        block.into_iter().find_map(|i| {
            let index = start + i as u64;
            let ea: T = generated(key_a, index);
            let eb: T = generated(key_b, index);
            let ec = op.apply(ea, eb, s);
            [(Stream::A, a[i], ea), (Stream::B, b[i], eb), (Stream::C, c[i], ec)]
                .into_iter()
                .find(|(_, got, want)| got.to_bits64() != want.to_bits64())
                .map(|(array, got, want)| Mismatch { array, index, got: got.to_f64(), expected: want.to_f64() })
        })
    });
    Verdict { mismatch, digest }
}

/// Checks elements `start..start + c.len()` of all three arrays against the
/// generator and the scalar oracle, and digests `c`.
pub fn verify<T: Element>(seed: u64, op: Op, start: u64, a: &[T], b: &[T], c: &[T]) -> Verdict {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512dq") {
        // SAFETY: the CPU supports AVX-512F/DQ (checked just above).
        return unsafe { verify_avx512(seed, op, start, a, b, c) };
    }
    verify_dispatch(seed, op, start, a, b, c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
fn verify_avx512<T: Element>(seed: u64, op: Op, start: u64, a: &[T], b: &[T], c: &[T]) -> Verdict {
    verify_dispatch(seed, op, start, a, b, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_in_range_and_depend_on_seed_and_index_only() {
        for i in 0..10_000u64 {
            let x: f64 = expected_value(42, Stream::A, i);
            assert!((-1.0..1.0).contains(&x));
            let y: f32 = expected_value(42, Stream::B, i);
            assert!((-1.0..1.0).contains(&y));
        }
        let mut whole = vec![0.0f64; 1000];
        fill(9, Stream::A, 0, &mut whole);
        let mut parts = vec![0.0f64; 1000];
        let (left, right) = parts.split_at_mut(333);
        fill(9, Stream::A, 333, right);
        fill(9, Stream::A, 0, left);
        assert_eq!(whole, parts);
        assert_ne!(expected_value::<f64>(9, Stream::A, 5), expected_value::<f64>(10, Stream::A, 5));
        assert_ne!(expected_value::<f64>(9, Stream::A, 5), expected_value::<f64>(9, Stream::B, 5));
    }

    #[test]
    fn fill_matches_the_scalar_generator() {
        let mut out = vec![0.0f32; 777];
        fill(3, Stream::B, 1_000_000, &mut out);
        for (i, x) in out.iter().enumerate() {
            assert_eq!(*x, expected_value::<f32>(3, Stream::B, 1_000_000 + i as u64));
        }
    }

    fn correct_chunk(op: Op, start: u64, n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut a = vec![0.0; n];
        let mut b = vec![0.0; n];
        fill(5, Stream::A, start, &mut a);
        fill(5, Stream::B, start, &mut b);
        let c = (0..n).map(|i| expected_output::<f64>(5, op, start + i as u64)).collect();
        (a, b, c)
    }

    #[test]
    fn verify_finds_the_first_bad_element_in_any_array() {
        let (a, b, c) = correct_chunk(Op::Triad, 100, 2000);
        assert_eq!(verify(5, Op::Triad, 100, &a, &b, &c).mismatch, None);
        let mut c2 = c.clone();
        c2[1500] += 1.0;
        c2[1700] += 1.0;
        let m = verify(5, Op::Triad, 100, &a, &b, &c2).mismatch.unwrap();
        assert_eq!((m.array, m.index), (Stream::C, 1600));
        let mut a2 = a.clone();
        a2[3] = -0.0;
        let m = verify(5, Op::Triad, 100, &a2, &b, &c).mismatch.unwrap();
        assert_eq!((m.array, m.index), (Stream::A, 103));
        let mut b2 = b.clone();
        b2[1999] = f64::NAN;
        let m = verify(5, Op::Triad, 100, &a, &b2, &c).mismatch.unwrap();
        assert_eq!((m.array, m.index), (Stream::B, 2099));
    }

    #[test]
    fn digest_combines_chunks_in_any_split() {
        let (a, b, c) = correct_chunk(Op::Add, 0, 5000);
        let whole = verify(5, Op::Add, 0, &a, &b, &c).digest;
        let left = verify(5, Op::Add, 0, &a[..1234], &b[..1234], &c[..1234]).digest;
        let right = verify(5, Op::Add, 1234, &a[1234..], &b[1234..], &c[1234..]).digest;
        assert_eq!(whole, left ^ right);
        let (a2, b2, c2) = correct_chunk(Op::Copy, 0, 5000);
        assert_ne!(whole, verify(5, Op::Copy, 0, &a2, &b2, &c2).digest);
    }
}
