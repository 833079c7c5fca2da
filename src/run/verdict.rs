//! What the check of one kernel found, as the report states it: elements
//! checked, the first mismatch (the lowest index, with the worker whose
//! chunk it is), the digests of `c` and `a` (XOR over elements keyed by
//! their index, so any split of the array gives the same digest), the
//! history the arrays were checked against, who checked them, and a `dot`
//! rebuilt from every worker's tree nodes against the checker's own
//! compensated reference. In lockstep with other runs (MPI ranks) the
//! parts are combined with theirs.

use super::lockstep::Lockstep;
use crate::config::RunConfig;
use crate::kernel::data::DotReference;
use crate::kernel::reduce::{self, Node};
use crate::kernel::{Dtype, Element, History, block_elems};
use crate::partition::Partition;
use crate::protocol::DotPartial;
use crate::report::{CheckedBy, DotResult, Validation};

use super::check::Found;

/// The report's validation of a kernel from what the check `found` (and,
/// for a reduction, the workers' `partials`) — combined, in lockstep, with
/// every other run's (collectively: every run calls it).
pub(super) fn combine(
    cfg: &RunConfig,
    partition: &Partition,
    (history, by): (&History, CheckedBy),
    found: Found,
    partials: &[DotPartial],
    lockstep: Option<&dyn Lockstep>,
) -> (Validation, Option<DotResult>) {
    let base = cfg.share().base;
    let owner =
        found.verdict.mismatch.and_then(|m| m.index.checked_sub(base)).and_then(|i| partition.owner(i as usize));
    let mut validation = Validation {
        checked: found.checked,
        mismatch: found.verdict.mismatch,
        mismatch_owner: owner,
        #[cfg(feature = "mpi")]
        mismatch_rank: None,
        c_digest: format!("{:016x}", found.verdict.c_digest),
        a_digest: history.writes(crate::vocab::Array::A).then(|| format!("{:016x}", found.verdict.a_digest)),
        history: history.clone(),
        checked_by: by,
    };
    let mut nodes: Vec<Node> = partials.iter().flat_map(|p| p.nodes.iter().copied()).collect();
    let mut reference = found.reference;
    let mut len = cfg.share().global_len as usize;
    if let Some(l) = lockstep {
        validation = l.combine(validation);
        len = l.global_len() as usize;
        if let Some(r) = reference {
            let (all_nodes, all_reference) = l.gather_dot(nodes, r);
            nodes = all_nodes;
            reference = Some(all_reference);
        }
    }
    let dot = reference.map(|r| match cfg.dtype() {
        Dtype::F64 => dot_result::<f64>(len, &nodes, r),
        Dtype::F32 => dot_result::<f32>(len, &nodes, r),
    });
    (validation, dot)
}

/// The reduction over every worker's tree nodes, against the reference.
pub(super) fn dot_result<T: Element>(len: usize, nodes: &[Node], reference: DotReference) -> DotResult {
    let blocks = len.div_ceil(block_elems::<T>()) as u64;
    let value = reduce::combine::<T>(nodes, blocks).map_or(f64::NAN, |v| v.to_f64());
    let r = reference.value();
    let bound = reduce::bound::<T>(len as u64, r, reference.abs);
    let error = (value - r).abs();
    DotResult { value, reference: r, error, bound, within_bound: error <= bound }
}
