//! The arrays' contents: generated, checked and summarised, chunk by chunk.
//!
//! `a[i]`, `b[i]` (and, when a kernel reads it first, `c[i]`) come from a
//! counter-based generator (SplitMix64's finaliser applied to a key derived
//! from `--seed` plus `i` times the golden ratio), so a value depends on the
//! seed and its index only. Every worker can therefore fill its own chunk,
//! touching its pages first, and the arrays are the same whatever the mode
//! or the number of workers.
//!
//! Validation regenerates what every element must hold — the inputs, then
//! the kernels applied in the run's order ([`Expect`], replayed with the
//! scalar oracle) — instead of trusting the arrays in memory, so it also
//! catches a worker that scribbled over someone else's input. The digests are XORs of per-element hashes keyed by
//! index: chunks combine in any order, and two runs produced the same array
//! exactly when their digests match (up to hash collisions).

use serde::{Deserialize, Serialize};

use super::Element;
use super::history::History;
use crate::vocab::Array;

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
const DIGEST_KEY: u64 = 0xD1B5_4A32_D192_ED03;

#[inline(always)]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[inline(always)]
fn key(seed: u64, array: Array) -> u64 {
    let tag = match array {
        Array::A => 0xA0A0_A0A0_A0A0_A0A1,
        Array::B => 0xB0B0_B0B0_B0B0_B0B3,
        Array::C => 0xC0C0_C0C0_C0C0_C0C5,
    };
    mix64(seed ^ tag)
}

#[inline(always)]
fn generated<T: Element>(key: u64, index: u64) -> T {
    T::from_random_bits(mix64(key.wrapping_add(index.wrapping_mul(GOLDEN))))
}

#[inline(always)]
fn digest_of(bits: u64, index: u64) -> u64 {
    mix64(bits ^ index.wrapping_mul(DIGEST_KEY))
}

/// The generated value of element `index` of `array` before any kernel ran.
#[cfg(test)]
pub(crate) fn expected_input<T: Element>(seed: u64, array: Array, index: u64) -> T {
    generated(key(seed, array), index)
}

#[inline(always)]
fn fill_body<T: Element>(seed: u64, array: Array, start: u64, out: &mut [T]) {
    let k = key(seed, array);
    for (i, x) in out.iter_mut().enumerate() {
        *x = generated(k, start + i as u64);
    }
}

/// Fills `out` with elements `start..start + out.len()` of `array`'s inputs.
pub(crate) fn fill<T: Element>(seed: u64, array: Array, start: u64, out: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512dq") {
        // SAFETY: the CPU supports AVX-512F and AVX-512DQ, every feature the
        // function is compiled for (checked just above).
        return unsafe { fill_avx512(seed, array, start, out) };
    }
    fill_body(seed, array, start, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
fn fill_avx512<T: Element>(seed: u64, array: Array, start: u64, out: &mut [T]) {
    fill_body(seed, array, start, out)
}

/// What the arrays must hold when validation runs: the inputs as
/// generated, then the kernels of the history applied in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Expect {
    /// `--seed`.
    pub seed: u64,
    /// Whether `c` was filled from the generator (a kernel reads it before
    /// any writes it); else it starts as zeroes.
    pub c_filled: bool,
    /// What was applied to the arrays.
    pub history: History,
}

/// The first element that differs from what the run must have left.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mismatch {
    /// Which array.
    pub array: Array,
    /// The element's index in the whole array.
    pub index: u64,
    /// What it holds (in JSON, a number, or "NaN", "inf", "-inf").
    #[serde(with = "any_float")]
    pub got: f64,
    /// What it should hold.
    #[serde(with = "any_float")]
    pub expected: f64,
}

/// JSON has no NaN or infinity, but a corrupted array may hold them: those
/// are written as strings.
pub(crate) mod any_float {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a finite value as a number, others as "NaN", "inf" or "-inf".
    pub(crate) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_str(if v.is_nan() {
                "NaN"
            } else if *v > 0.0 {
                "inf"
            } else {
                "-inf"
            })
        }
    }

    /// Reads what [`serialize`] writes.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(f64),
            Text(String),
        }
        match Either::deserialize(d)? {
            Either::Number(v) => Ok(v),
            Either::Text(t) => match t.as_str() {
                "NaN" => Ok(f64::NAN),
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                other => Err(serde::de::Error::custom(format!("'{other}' is not a number"))),
            },
        }
    }
}

/// The result of checking one chunk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Verdict {
    /// The first bad element, if any.
    pub mismatch: Option<Mismatch>,
    /// XOR-combinable digest of the chunk of `c`.
    pub c_digest: u64,
    /// XOR-combinable digest of the chunk of `a` (0 unless `nstream` ran).
    pub a_digest: u64,
}

impl Verdict {
    /// Combines the verdicts of two neighbouring pieces (`self` first).
    pub(crate) fn then(self, next: Verdict) -> Verdict {
        Verdict {
            mismatch: self.mismatch.or(next.mismatch),
            c_digest: self.c_digest ^ next.c_digest,
            a_digest: self.a_digest ^ next.a_digest,
        }
    }
}

/// Elements checked together: the expected values of a block are built
/// in three small buffers (L1), then compared.
const VERIFY_BLOCK: usize = 256;

/// What elements `start..start + n` of every array must hold, into `want`.
#[inline(always)]
fn expected_block<T: Element>(e: &Expect, keys: &[u64; 3], start: u64, n: usize, want: &mut [[T; VERIFY_BLOCK]; 3]) {
    let [wa, wb, wc] = want;
    for (i, x) in wa[..n].iter_mut().enumerate() {
        *x = generated(keys[0], start + i as u64);
    }
    for (i, x) in wb[..n].iter_mut().enumerate() {
        *x = generated(keys[1], start + i as u64);
    }
    if e.c_filled {
        for (i, x) in wc[..n].iter_mut().enumerate() {
            *x = generated(keys[2], start + i as u64);
        }
    } else {
        wc[..n].fill(T::ZERO);
    }
    e.history.replay(wa, wb, wc, n);
}

#[inline(always)]
fn verify_body<T: Element>(e: &Expect, start: u64, a: &[T], b: &[T], c: &[T]) -> Verdict {
    let n = c.len();
    assert!(a.len() == n && b.len() == n, "verify needs equal chunks of a, b and c");
    let keys = Array::ALL.map(|arr| key(e.seed, arr));
    let digest_a = e.history.writes(Array::A);
    let (mut c_digest, mut a_digest) = (0u64, 0u64);
    let mut mismatch = None;
    let mut want = [[T::ZERO; VERIFY_BLOCK]; 3];
    for block_start in (0..n).step_by(VERIFY_BLOCK) {
        let len = VERIFY_BLOCK.min(n - block_start);
        let first = start + block_start as u64;
        expected_block(e, &keys, first, len, &mut want);
        let got = [&a[block_start..block_start + len], &b[block_start..block_start + len], &c[block_start..]];
        let mut bad = 0u64;
        for i in 0..len {
            let index = first + i as u64;
            let (ab, cb) = (got[0][i].to_bits64(), got[2][i].to_bits64());
            bad |= (ab ^ want[0][i].to_bits64())
                | (got[1][i].to_bits64() ^ want[1][i].to_bits64())
                | (cb ^ want[2][i].to_bits64());
            c_digest ^= digest_of(cb, index);
            if digest_a {
                a_digest ^= digest_of(ab, index);
            }
        }
        if bad != 0 && mismatch.is_none() {
            mismatch = (0..len).find_map(|i| {
                Array::ALL.into_iter().find_map(|arr| {
                    let (g, w) = (got[arr.index()][i], want[arr.index()][i]);
                    (g.to_bits64() != w.to_bits64()).then(|| Mismatch {
                        array: arr,
                        index: first + i as u64,
                        got: g.to_f64(),
                        expected: w.to_f64(),
                    })
                })
            });
        }
    }
    Verdict { mismatch, c_digest, a_digest }
}

/// Checks elements `start..start + c.len()` of all three arrays against
/// what `e` says they must hold, and digests them.
pub(crate) fn verify<T: Element>(e: &Expect, start: u64, a: &[T], b: &[T], c: &[T]) -> Verdict {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512dq") {
        // SAFETY: the CPU supports AVX-512F and AVX-512DQ, every feature the
        // function is compiled for (checked just above).
        return unsafe { verify_avx512(e, start, a, b, c) };
    }
    verify_body(e, start, a, b, c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
fn verify_avx512<T: Element>(e: &Expect, start: u64, a: &[T], b: &[T], c: &[T]) -> Verdict {
    verify_body(e, start, a, b, c)
}

/// A compensated partial of Σ aᵢ·bᵢ in f64 (Ogita, Rump and Oishi's Dot2:
/// as accurate as if computed in twice f64's precision), with Σ|aᵢ·bᵢ|.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct DotReference {
    /// The running sum.
    pub hi: f64,
    /// The accumulated rounding errors of `hi`.
    pub lo: f64,
    /// Σ|aᵢ·bᵢ|, for the error bound.
    pub abs: f64,
}

#[inline(always)]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let z = s - a;
    (s, (a - (s - z)) + (b - z))
}

impl DotReference {
    /// The reference over `a` and `b` (products exact for f32 inputs;
    /// TwoProduct through a fused multiply-add for f64).
    pub(crate) fn of<T: Element>(a: &[T], b: &[T]) -> DotReference {
        let mut r = DotReference::default();
        for (x, y) in a.iter().zip(b) {
            let (x, y) = (x.to_f64(), y.to_f64());
            let p = x * y;
            let e = x.mul_add(y, -p);
            let (s, q) = two_sum(r.hi, p);
            r.hi = s;
            r.lo += q + e;
            r.abs += p.abs();
        }
        r
    }

    /// Adds another partial.
    pub(crate) fn plus(self, other: DotReference) -> DotReference {
        let (hi, q) = two_sum(self.hi, other.hi);
        DotReference { hi, lo: self.lo + other.lo + q, abs: self.abs + other.abs }
    }

    /// The reference value.
    pub(crate) fn value(&self) -> f64 {
        self.hi + self.lo
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Op;

    fn exp(ops: &[(Op, u32)]) -> Expect {
        let mut history = History::new();
        for &(op, n) in ops {
            history.apply(op, n);
        }
        Expect { seed: 5, c_filled: false, history }
    }

    #[test]
    fn values_are_in_range_and_depend_on_seed_and_index_only() {
        for i in 0..10_000u64 {
            let x: f64 = expected_input(42, Array::A, i);
            assert!((-1.0..1.0).contains(&x));
            let y: f32 = expected_input(42, Array::B, i);
            assert!((-1.0..1.0).contains(&y));
        }
        let mut whole = vec![0.0f64; 1000];
        fill(9, Array::A, 0, &mut whole);
        let mut parts = vec![0.0f64; 1000];
        let (left, right) = parts.split_at_mut(333);
        fill(9, Array::A, 333, right);
        fill(9, Array::A, 0, left);
        assert_eq!(whole, parts);
        assert_ne!(expected_input::<f64>(9, Array::A, 5), expected_input::<f64>(10, Array::A, 5));
        assert_ne!(expected_input::<f64>(9, Array::A, 5), expected_input::<f64>(9, Array::B, 5));
    }

    /// A chunk as a correct run leaves it, computed element by element
    /// with the oracle alone (not with the history's replay).
    fn correct_chunk(e: &Expect, start: u64, n: usize) -> [Vec<f64>; 3] {
        let s = crate::kernel::STREAM_SCALAR;
        let mut out = [vec![0.0; n], vec![0.0; n], vec![0.0; n]];
        for (i, index) in (start..start + n as u64).enumerate() {
            let mut a = expected_input::<f64>(e.seed, Array::A, index);
            let b = expected_input::<f64>(e.seed, Array::B, index);
            let mut c = if e.c_filled { expected_input::<f64>(e.seed, Array::C, index) } else { 0.0 };
            for entry in e.history.entries() {
                let times = if entry.op.idempotent() { 1 } else { entry.rounds };
                for _ in 0..times {
                    match entry.op.writes() {
                        Some(Array::A) => a = entry.op.oracle(a, b, c, s),
                        Some(_) => c = entry.op.oracle(a, b, c, s),
                        None => {}
                    }
                }
            }
            [out[0][i], out[1][i], out[2][i]] = [a, b, c];
        }
        out
    }

    #[test]
    fn verify_finds_the_first_bad_element_in_any_array() {
        let e = exp(&[(Op::Triad, 3)]);
        let [a, b, c] = correct_chunk(&e, 100, 2000);
        assert_eq!(verify(&e, 100, &a, &b, &c).mismatch, None);
        let mut c2 = c.clone();
        c2[1500] += 1.0;
        c2[1700] += 1.0;
        let m = verify(&e, 100, &a, &b, &c2).mismatch.unwrap();
        assert_eq!((m.array, m.index), (Array::C, 1600));
        let mut a2 = a.clone();
        a2[3] = -0.0;
        let m = verify(&e, 100, &a2, &b, &c).mismatch.unwrap();
        assert_eq!((m.array, m.index), (Array::A, 103));
        let mut b2 = b.clone();
        b2[1999] = f64::NAN;
        let m = verify(&e, 100, &a, &b2, &c).mismatch.unwrap();
        assert_eq!((m.array, m.index), (Array::B, 2099));
    }

    #[test]
    fn updates_in_place_are_accounted_for() {
        for ops in
            [&[(Op::Add, 2), (Op::Nstream, 3)][..], &[(Op::Fma, 4)], &[(Op::Nstream, 2), (Op::Copy, 1), (Op::Fma, 2)]]
        {
            let mut e = exp(ops);
            e.c_filled = ops[0].0.reads().contains(&Array::C);
            let [a, b, c] = correct_chunk(&e, 0, 777);
            let v = verify(&e, 0, &a, &b, &c);
            assert_eq!(v.mismatch, None, "{ops:?}");
            assert_eq!(v.a_digest != 0, e.history.writes(Array::A));
            let mut once_more = e.clone();
            let last = ops.last().unwrap().0;
            once_more.history.apply(last, 1);
            assert!(verify(&once_more, 0, &a, &b, &c).mismatch.is_some(), "{ops:?}: one update too many");
        }
    }

    /// `fill` and its generic body give the same bits (f32 widens to f64
    /// exactly).
    fn fills_agree<T: Element>(array: Array, start: u64, n: usize) {
        let (mut x, mut y) = (vec![T::ZERO; n], vec![T::ZERO; n]);
        fill(11, array, start, &mut x);
        fill_body(11, array, start, &mut y);
        let bits = |v: &[T]| v.iter().map(|e| e.to_f64().to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&x), bits(&y), "{array:?} from {start}");
    }

    #[test]
    fn the_fill_and_the_check_are_the_same_on_every_cpu() {
        // With AVX-512, fill and verify run builds of their own; without
        // it, the generic ones. They must agree bit for bit, or digests
        // (and the README's samples) would depend on the host. (Where the
        // CPU has no AVX-512 both sides are the generic build; the guest
        // test a_cpu_without_avx512_… runs whole runs there.)
        for (start, n) in [(0u64, 1usize), (5, 7), (1000, 4097)] {
            for array in [Array::A, Array::B, Array::C] {
                fills_agree::<f64>(array, start, n);
                fills_agree::<f32>(array, start, n);
            }
            let e = exp(&[(Op::Triad, 2), (Op::Nstream, 3)]);
            let [a, b, mut c] = correct_chunk(&e, start, n);
            assert_eq!(verify(&e, start, &a, &b, &c), verify_body(&e, start, &a, &b, &c));
            c[n / 2] += 0.5;
            let bad = verify(&e, start, &a, &b, &c);
            assert!(bad.mismatch.is_some());
            assert_eq!(bad, verify_body(&e, start, &a, &b, &c));
        }
    }

    #[test]
    fn digests_combine_over_any_split() {
        let e = exp(&[(Op::Add, 1)]);
        let [a, b, c] = correct_chunk(&e, 0, 5000);
        let whole = verify(&e, 0, &a, &b, &c);
        let split = verify(&e, 0, &a[..1234], &b[..1234], &c[..1234]).then(verify(
            &e,
            1234,
            &a[1234..],
            &b[1234..],
            &c[1234..],
        ));
        assert_eq!(whole, split);
        let copy = exp(&[(Op::Copy, 1)]);
        let [a2, b2, c2] = correct_chunk(&copy, 0, 5000);
        assert_ne!(whole.c_digest, verify(&copy, 0, &a2, &b2, &c2).c_digest);
    }

    #[test]
    fn mismatches_survive_json_even_when_not_finite() {
        for got in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1234.5] {
            let m = Mismatch { array: Array::A, index: 3, got, expected: 0.25 };
            let back: Mismatch = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
            assert_eq!(back.got.to_bits(), got.to_bits());
        }
    }

    #[test]
    fn the_compensated_reference_is_exact_where_plain_summation_is_not() {
        // 1e16 + 1 − 1e16 in f64: plain summation loses the 1.
        let a = [1e16, 1.0, -1e16];
        let b = [1.0, 1.0, 1.0];
        assert_eq!(DotReference::of(&a, &b).value(), 1.0);
        let left = DotReference::of(&a[..1], &b[..1]);
        let right = DotReference::of(&a[1..], &b[1..]);
        assert_eq!(left.plus(right).value(), 1.0);
        assert_eq!(a.iter().zip(&b).map(|(x, y)| x * y).sum::<f64>(), 0.0);
    }
}
