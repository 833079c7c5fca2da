//! Where the pages are: the coordinator asks the kernel where every page of
//! each worker's chunks lives (through its own read-only mapping of the
//! arrays, so no worker vouches for its own placement), after the arrays
//! are filled and again after the last round, and says when that is not
//! what the memory policy asked for.
#![forbid(unsafe_code)]

use std::ops::Range;

use crate::config::RunConfig;
use crate::machine::Topology;
use crate::machine::numa::MemPolicy;
use crate::machine::numa::{ArrayPlacement, WorkerPlacement, balancing_on};
use crate::partition::Partition;
use crate::report::NumaRecord;
use crate::shm::ReadArrays;
use crate::vocab::Array;
use crate::warnings::Warning;

/// Pages asked about per run at most: beyond this, every k-th page (a
/// stride sample, `sampled_every` in the report). 4 Mi pages are 16 GiB of
/// base pages, asked in well under a second.
const MAX_PAGES: usize = 4 << 20;

/// The node of every sampled page of each worker's chunk, per array
/// (negative: unknown).
pub(crate) type Nodes = Vec<[Vec<i32>; 3]>;

/// The placement survey of one run.
pub(crate) struct Survey<'r> {
    read: &'r ReadArrays,
    partition: Partition,
    stride: usize,
}

impl<'r> Survey<'r> {
    /// A survey of `read` for the chunks of `partition`.
    pub(crate) fn new(read: &'r ReadArrays, partition: Partition, page_bytes: usize, array_bytes: usize) -> Self {
        let pages = 3 * array_bytes.div_ceil(page_bytes.max(1));
        Survey { read, partition, stride: pages.div_ceil(MAX_PAGES).max(1) }
    }

    /// Where each worker's pages are now; `Err` with why it cannot be told.
    pub(crate) fn nodes(&self, workers: usize) -> Result<Nodes, String> {
        (0..workers)
            .map(|id| {
                let range: Range<usize> = self.partition.chunk(id);
                let mut out: [Vec<i32>; 3] = Default::default();
                for array in Array::ALL {
                    out[array.index()] = self
                        .read
                        .nodes(array, &range, self.stride)
                        .map_err(|e| format!("the kernel would not say where pages are (move_pages: {})", e.desc()))?;
                }
                Ok(out)
            })
            .collect()
    }

    pub(crate) fn stride(&self) -> usize {
        self.stride
    }
}

/// Each worker's placement, from its pages' nodes and the node it is meant
/// for.
pub(crate) fn placements(nodes: &Nodes, intended: &[Option<usize>]) -> Vec<WorkerPlacement> {
    nodes
        .iter()
        .enumerate()
        .map(|(id, arrays)| {
            WorkerPlacement::new(
                id,
                intended.get(id).copied().flatten(),
                arrays.clone().map(|p| ArrayPlacement::of(&p)),
            )
        })
        .collect()
}

/// The share of its pages below which a worker's placement is not what
/// was asked (a few pages of a chunk may sit elsewhere: the page a chunk
/// shares with its neighbour, for one).
const HONOURED: f64 = 0.9;

/// What the run learned about its placement, and the warnings it earned.
pub(crate) struct Findings {
    pub(crate) record: NumaRecord,
    pub(crate) warnings: Vec<Warning>,
}

/// Puts the survey's results together: the record, and a warning for a
/// policy not honoured, a worker that ran off its node, and pages that
/// migrated during the rounds.
pub(crate) fn findings(
    cfg: &RunConfig,
    topology: &Topology,
    intended: &[Option<usize>],
    (after_init, after_run): (Option<Nodes>, Option<Nodes>),
    cpus_seen: &[Vec<u32>],
    control_node: Option<usize>,
    stride: usize,
) -> Findings {
    let mut warnings = Vec::new();
    let balancing = balancing_on();
    if balancing {
        warnings.push(Warning::NumaBalancing);
    }
    let init = after_init.as_ref().map(|n| placements(n, intended));
    let run = after_run.as_ref().map(|n| placements(n, intended));
    for (when, placed) in [("after the arrays were filled", &init), ("after the last round", &run)] {
        let off: Vec<(usize, usize, f64)> = placed
            .iter()
            .flatten()
            .filter_map(|w| Some((w.worker, w.intended?, w.on_intended?)))
            .filter(|&(_, _, share)| share < HONOURED)
            .collect();
        if !off.is_empty() {
            warnings.push(Warning::PolicyNotHonoured { workers: off, when: when.to_string() });
            break; // said once: after the rounds it is the same story
        }
    }
    let ran_on: Vec<Vec<usize>> = cpus_seen
        .iter()
        .map(|cpus| {
            let mut nodes: Vec<usize> = cpus.iter().filter_map(|&c| topology.node_of_cpu(c as usize)).collect();
            nodes.sort_unstable();
            nodes.dedup();
            nodes
        })
        .collect();
    if cfg.memory().policy == MemPolicy::Local {
        let off: Vec<(usize, usize, Vec<usize>)> = intended
            .iter()
            .enumerate()
            .filter_map(|(w, node)| {
                let node = (*node)?;
                let ran = ran_on.get(w)?;
                (!ran.is_empty() && ran.iter().any(|&n| n != node)).then(|| (w, node, ran.clone()))
            })
            .collect();
        if !off.is_empty() {
            warnings.push(Warning::RanOffNode { workers: off });
        }
    }
    if let (Some(before), Some(after)) = (&after_init, &after_run) {
        let moved: u64 = before
            .iter()
            .zip(after)
            .flat_map(|(b, a)| b.iter().zip(a))
            .flat_map(|(b, a)| b.iter().zip(a))
            .filter(|(b, a)| **b >= 0 && **a >= 0 && b != a)
            .count() as u64;
        if moved > 0 {
            warnings.push(Warning::PagesMigrated { pages: moved * stride as u64 });
        }
    }
    let record = NumaRecord {
        topology: topology.clone(),
        control_node,
        sampled_every: stride,
        after_init: init,
        after_run: run,
        ran_on,
        balancing,
    };
    Findings { record, warnings }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_on_its_node_has_all_its_pages_there() {
        let nodes: Nodes = vec![[vec![0, 0], vec![0, 0], vec![0, 0]], [vec![1, 1], vec![0, 0], vec![1, -14]]];
        let p = placements(&nodes, &[Some(0), Some(1)]);
        assert_eq!(p[0].on_intended, Some(1.0));
        assert_eq!(p[1].on_intended, Some(3.0 / 6.0));
        assert_eq!(p[1].arrays[2].unknown, 1);
    }
}
