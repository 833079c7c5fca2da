//! The workers' verdicts on one kernel, combined into the run's: elements
//! checked, the first mismatch (the lowest index, with its owner), the
//! digests of `c` and `a` (XOR over chunks, so any split of the array gives
//! the same digest), and a `dot` rebuilt from every worker's tree nodes and
//! checked against the compensated reference within its bound.

use super::lockstep::Lockstep;
use crate::config::RunConfig;
use crate::kernel::data::{DotReference, Mismatch};
use crate::kernel::reduce;
use crate::kernel::{Dtype, Element, Op, block_elems};
use crate::protocol::{DotPartial, StepResult};
use crate::report::{DotResult, Validation};

/// The verdicts in `results` (one per worker; `None` for idle ones) on
/// `op`, after nstream updated `a` `a_updates` times — and, in lockstep
/// with other runs, combined with theirs (collectively: every run calls it).
pub(super) fn combine(
    cfg: &RunConfig,
    op: Op,
    a_updates: u32,
    results: &[Option<StepResult>],
    lockstep: Option<&dyn Lockstep>,
) -> (Validation, Option<DotResult>) {
    let mut first: Option<(Mismatch, usize)> = None;
    let (mut c_digest, mut a_digest) = (0u64, 0u64);
    let mut partials: Vec<&DotPartial> = Vec::new();
    for (id, r) in results.iter().enumerate() {
        let Some(StepResult::Validate { verdict, dot }) = r else { continue };
        c_digest ^= verdict.c_digest;
        a_digest ^= verdict.a_digest;
        if let Some(m) = verdict.mismatch
            && first.as_ref().is_none_or(|(f, _)| m.index < f.index)
        {
            first = Some((m, id));
        }
        partials.extend(dot);
    }
    let mut validation = Validation {
        checked: cfg.len as u64,
        mismatch_owner: first.as_ref().map(|(_, id)| *id),
        mismatch_rank: None,
        mismatch: first.map(|(m, _)| m),
        c_digest: format!("{c_digest:016x}"),
        a_digest: (a_updates > 0).then(|| format!("{a_digest:016x}")),
        a_updates: (a_updates > 0).then_some(a_updates),
    };
    let mut len = cfg.len;
    let gathered;
    if let Some(l) = lockstep {
        validation = l.combine(validation);
        len = l.global_len() as usize;
        if op == Op::Dot {
            let mine: Vec<DotPartial> = partials.iter().map(|p| (*p).clone()).collect();
            gathered = l.gather_dot(&mine);
            partials = gathered.iter().collect();
        }
    }
    let dot = (op == Op::Dot).then(|| match cfg.dtype {
        Dtype::F64 => dot_result::<f64>(len, &partials),
        Dtype::F32 => dot_result::<f32>(len, &partials),
    });
    (validation, dot)
}

/// The `dot` over every worker's partial, against the reference.
pub(super) fn dot_result<T: Element>(len: usize, partials: &[&DotPartial]) -> DotResult {
    let blocks = len.div_ceil(block_elems::<T>()) as u64;
    let nodes: Vec<reduce::Node> = partials.iter().flat_map(|p| p.nodes.iter().copied()).collect();
    let value = reduce::combine::<T>(&nodes, blocks).map_or(f64::NAN, |v| v.to_f64());
    let reference = partials.iter().fold(DotReference::default(), |acc, p| acc.plus(DotReference::from(p.reference)));
    let r = reference.value();
    let bound = reduce::bound::<T>(len as u64, r, reference.abs);
    let error = (value - r).abs();
    DotResult { value, reference: r, error, bound, within_bound: error <= bound }
}
