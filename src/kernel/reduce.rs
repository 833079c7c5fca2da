//! A sum that does not depend on how the array was split.
//!
//! Floating-point addition is not associative, so a `dot` summed as "each
//! worker its chunk, then the chunks in worker order" would change with the
//! number of workers. Instead the sum follows one tree over the whole array,
//! fixed by the array alone:
//!
//! * the leaves are 4 KiB blocks of the inputs ([`super::block_elems`]),
//!   each summed by the kernel in a fixed order;
//! * a node at `level` ℓ and `index` j covers blocks `[j·2^ℓ, (j+1)·2^ℓ)`
//!   and is the sum of its two children, left plus right;
//! * the total is the sum of the canonical decomposition of `[0, blocks)`
//!   into such nodes, largest first, left to right.
//!
//! Chunks start on pages, so a worker's range of blocks decomposes into
//! whole nodes ([`nodes_of`]); it reports those, and [`combine`] rebuilds
//! every node the total needs from them. Any split of the array gives the
//! same total, bit for bit; only the SIMD level (the order inside a block)
//! can change it.
//!
//! [`bound`] is the error bound the result is validated against.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Element;

/// The sum over the blocks `[index·2^level, (index+1)·2^level)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Node {
    /// ℓ: the node covers 2^ℓ blocks.
    pub level: u8,
    /// j: its position among the nodes of its level.
    pub index: u64,
    /// The sum's bit pattern (a value of the element type, widened).
    pub bits: u64,
}

/// The largest canonical node starting at block `p` that ends by `end`.
fn level_at(p: u64, end: u64) -> u8 {
    let mut level = 0u8;
    while level < 63 {
        let next = 1u64 << (level + 1);
        if !p.is_multiple_of(next) || p + next > end {
            break;
        }
        level += 1;
    }
    level
}

/// The canonical nodes covering blocks `first .. first + sums.len()`, each
/// summed as the pairwise tree of its block sums.
pub(crate) fn nodes_of<T: Element>(first: u64, sums: &[T]) -> Vec<Node> {
    let end = first + sums.len() as u64;
    let mut out = Vec::new();
    let mut p = first;
    let mut scratch = Vec::new();
    while p < end {
        let level = level_at(p, end);
        let span = 1usize << level;
        let at = (p - first) as usize;
        scratch.clear();
        scratch.extend_from_slice(&sums[at..at + span]);
        let sum = super::pairwise(&mut scratch);
        out.push(Node { level, index: p >> level, bits: sum.to_bits64() });
        p += span as u64;
    }
    out
}

/// A block of the total that no node covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no partial sum covers block {0}")]
pub(crate) struct Uncovered(pub u64);

/// The total over blocks `[0, blocks)` from nodes that cover them.
pub(crate) fn combine<T: Element>(nodes: &[Node], blocks: u64) -> Result<T, Uncovered> {
    let have: HashMap<(u8, u64), T> = nodes.iter().map(|n| ((n.level, n.index), T::from_bits64(n.bits))).collect();
    fn get<T: Element>(have: &HashMap<(u8, u64), T>, level: u8, index: u64) -> Result<T, Uncovered> {
        if let Some(v) = have.get(&(level, index)) {
            return Ok(*v);
        }
        if level == 0 {
            return Err(Uncovered(index));
        }
        Ok(get(have, level - 1, 2 * index)?.add(get(have, level - 1, 2 * index + 1)?))
    }
    let mut total: Option<T> = None;
    let mut p = 0u64;
    while p < blocks {
        let level = level_at(p, blocks);
        let v = get(&have, level, p >> level)?;
        total = Some(match total {
            Some(t) => t.add(v),
            None => v,
        });
        p += 1 << level;
    }
    Ok(total.unwrap_or(T::ZERO))
}

/// The depth of the summation tree for `len` elements of `T`: the most
/// roundings any one term goes through (its product, the additions inside
/// its block, the levels of its node, and the canonical nodes added after
/// it).
pub(crate) fn depth<T: Element>(len: u64) -> u64 {
    let block = super::block_elems::<T>() as u64;
    let blocks = len.div_ceil(block).max(1);
    let log = u64::from(64 - (blocks - 1).leading_zeros());
    block + 2 * log
}

/// γ_h = h·u / (1 − h·u) (Higham, *Accuracy and Stability of Numerical
/// Algorithms*, §3.1); infinite once h·u reaches 1.
pub(crate) fn gamma(h: u64, u: f64) -> f64 {
    let hu = h as f64 * u;
    if hu < 1.0 { hu / (1.0 - hu) } else { f64::INFINITY }
}

/// How far a `dot` of `len` elements of `T` may lie from a reference
/// computed in compensated f64 arithmetic, given the reference and
/// `abs_sum` = Σ|aᵢ·bᵢ|:
///
/// * the computed sum: every term passes through at most [`depth`]
///   roundings, so |ŝ − s| ≤ γ_depth(u_T) · Σ|aᵢbᵢ| for any tree of that
///   depth (Higham, eq. 3.5 generalised to a tree);
/// * the reference (Ogita, Rump and Oishi's Dot2 in f64, exact products for
///   f32): |r − s| ≤ u₆₄·|s| + γ_n(u₆₄)² · Σ|aᵢbᵢ|;
/// * Σ|aᵢbᵢ| itself, summed in f64, is low by at most a factor 1 + γ_n(u₆₄).
pub(crate) fn bound<T: Element>(len: u64, reference: f64, abs_sum: f64) -> f64 {
    let u64_ = f64::EPSILON / 2.0;
    let abs = abs_sum * (1.0 + gamma(len, u64_));
    gamma(depth::<T>(len), T::UNIT_ROUNDOFF) * abs
        + u64_ * reference.abs() * (1.0 + u64_)
        + gamma(len, u64_).powi(2) * abs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(n: usize) -> Vec<f64> {
        // Values whose sums round: the total depends on the order.
        (0..n).map(|i| 1.0 + (i as f64) * 1e-7 + if i % 3 == 0 { 1e15 } else { -1e15 }).collect()
    }

    #[test]
    fn any_split_gives_the_same_total() {
        let sums = blocks(1000);
        let whole = combine::<f64>(&nodes_of(0, &sums), 1000).unwrap();
        for cuts in [vec![1], vec![500], vec![3, 700], vec![1, 2, 3, 999], vec![512], vec![256, 768], vec![999]] {
            let mut nodes = Vec::new();
            let mut start = 0;
            for &cut in cuts.iter().chain(std::iter::once(&1000)) {
                nodes.extend(nodes_of(start as u64, &sums[start..cut]));
                start = cut;
            }
            assert_eq!(combine::<f64>(&nodes, 1000).unwrap().to_bits(), whole.to_bits(), "{cuts:?}");
        }
        // Summing chunk by chunk would not: the tree is not just a nicety.
        let naive = |cut: usize| sums[..cut].iter().sum::<f64>() + sums[cut..].iter().sum::<f64>();
        assert!((1..1000).any(|c| naive(c).to_bits() != naive(500).to_bits()));
    }

    #[test]
    fn nodes_are_aligned_and_missing_blocks_are_found() {
        let nodes = nodes_of(3, &[1.0f64; 6]); // blocks 3..9
        let spans: Vec<(u8, u64)> = nodes.iter().map(|n| (n.level, n.index)).collect();
        assert_eq!(spans, [(0, 3), (2, 1), (0, 8)], "blocks 3, 4..8, 8");
        assert_eq!(combine::<f64>(&nodes, 9), Err(Uncovered(0)));
        assert_eq!(combine::<f64>(&[], 0), Ok(0.0));
    }

    /// The exact value of Σ xᵢ as non-overlapping partials (Shewchuk's
    /// algorithm, as Python's `math.fsum`): no rounding anywhere.
    fn exact_partials(values: impl IntoIterator<Item = f64>) -> Vec<f64> {
        let mut partials: Vec<f64> = Vec::new();
        for mut x in values {
            let mut kept = 0;
            for j in 0..partials.len() {
                let mut y = partials[j];
                if x.abs() < y.abs() {
                    std::mem::swap(&mut x, &mut y);
                }
                let hi = x + y;
                let lo = y - (hi - x);
                if lo != 0.0 {
                    partials[kept] = lo;
                    kept += 1;
                }
                x = hi;
            }
            partials.truncate(kept);
            partials.push(x);
        }
        partials
    }

    /// |Σ aᵢbᵢ − got|, computed exactly and rounded once.
    fn exact_error(a: &[f64], b: &[f64], got: f64) -> f64 {
        // Each product exactly, as a pair (TwoProduct through an FMA).
        let pieces = a.iter().zip(b).flat_map(|(&x, &y)| {
            let p = x * y;
            [p, x.mul_add(y, -p)]
        });
        let partials = exact_partials(pieces.chain(std::iter::once(-got)));
        partials.iter().rev().fold(0.0, |acc, &p| acc + p).abs()
    }

    /// A deterministic generator of awkward inputs: magnitudes over twelve
    /// decades, both signs, and pairs that cancel almost exactly.
    fn awkward<T: Element>(n: usize, seed: u64) -> (Vec<T>, Vec<T>) {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            z
        };
        let (mut a, mut b): (Vec<T>, Vec<T>) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for i in 0..n {
            let x = T::from_random_bits(next()).to_f64() * 10f64.powi((next() % 13) as i32 - 6);
            let y = T::from_random_bits(next()).to_f64();
            if i % 2 == 1 {
                // Undo most of the previous term: catastrophic cancellation.
                let (pa, pb): (f64, f64) = (a[i - 1].to_f64(), b[i - 1].to_f64());
                a.push(T::from_f64(-pa));
                b.push(T::from_f64(pb * (1.0 + 1e-6 * y)));
            } else {
                a.push(T::from_f64(x));
                b.push(T::from_f64(y));
            }
        }
        (a, b)
    }

    /// The computed dot — the real SIMD kernel, block by block, then the
    /// tree — lies within [`bound`] of the exact value, for every level this
    /// CPU has, both types and lengths around the block size; and the
    /// bound is not vacuous.
    fn bound_holds<T: Element>() {
        use crate::kernel::data::DotReference;
        use crate::kernel::{Kernel, Op, Simd, Stores, block_elems};
        let block = block_elems::<T>();
        for simd in Simd::supported() {
            let kernel = Kernel::<T>::resolve(Op::Dot, simd, Stores::Regular).unwrap();
            for (k, &n) in [1, 7, block - 1, block, block + 1, 5 * block + 3, 100_003, (1 << 20) + 7].iter().enumerate()
            {
                let (a, b) = awkward::<T>(n, 1 + k as u64);
                let mut sums = vec![T::ZERO; n.div_ceil(block)];
                kernel.reduce(&a, &b, &[], &mut sums);
                let got = combine::<T>(&nodes_of(0, &sums), sums.len() as u64).unwrap().to_f64();
                let reference = DotReference::of(&a, &b);
                let limit = bound::<T>(n as u64, reference.value(), reference.abs);
                let (a64, b64): (Vec<f64>, Vec<f64>) =
                    (a.iter().map(|x| x.to_f64()).collect(), b.iter().map(|x| x.to_f64()).collect());
                let error = exact_error(&a64, &b64, got);
                assert!(error <= limit, "{simd} {} n={n}: error {error:e} above the bound {limit:e}", T::DTYPE);
                // The reference itself is as good as the bound assumes.
                let ref_error = exact_error(&a64, &b64, reference.value());
                let u = f64::EPSILON / 2.0;
                assert!(
                    ref_error
                        <= 2.0 * u * reference.value().abs()
                            + 1e-300
                            + gamma(n as u64, u).powi(2) * reference.abs * 2.0
                );
                // Meaningful: far tighter than Σ|aᵢbᵢ| (what "close enough" would allow).
                assert!(limit < 1e-2 * reference.abs, "{simd} {} n={n}: a vacuous bound {limit:e}", T::DTYPE);
            }
        }
    }

    #[test]
    fn the_dot_of_every_simd_level_lies_within_the_bound_of_the_exact_sum() {
        bound_holds::<f64>();
        bound_holds::<f32>();
    }

    #[test]
    fn integer_valued_inputs_give_the_exact_dot() {
        // Small integers: every product and partial sum is exact in either
        // type, so the tree must give Σ aᵢbᵢ exactly, whatever the level.
        use crate::kernel::{Kernel, Op, Simd, Stores, block_elems};
        let n = 3 * block_elems::<f32>() + 5;
        let a: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..n).map(|i| (i % 5) as f32 - 2.0).collect();
        let exact: i64 = (0..n).map(|i| ((i % 7) as i64 - 3) * ((i % 5) as i64 - 2)).sum();
        for simd in Simd::supported() {
            let kernel = Kernel::<f32>::resolve(Op::Dot, simd, Stores::Regular).unwrap();
            let mut sums = vec![0.0f32; n.div_ceil(block_elems::<f32>())];
            kernel.reduce(&a, &b, &[], &mut sums);
            let got = combine::<f32>(&nodes_of(0, &sums), sums.len() as u64).unwrap();
            assert_eq!(got, exact as f32, "{simd}");
        }
    }

    #[test]
    fn the_bound_grows_with_depth_and_precision() {
        assert!(bound::<f32>(1 << 20, 1.0, 1000.0) > bound::<f64>(1 << 20, 1.0, 1000.0) * 1e6);
        assert!(depth::<f64>(1_000_000) < 600);
        assert_eq!(gamma(u64::MAX, 0.5), f64::INFINITY);
    }
}
