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
use crate::report::{NumaRecord, WindowPart};
use crate::shm::PageNodes;
use crate::vocab::Array;
use crate::warnings::Warning;

/// Pages asked about per run at most: beyond this, every k-th page (a
/// stride sample, `sampled_every` in the report). 4 Mi pages are 16 GiB of
/// base pages, asked in well under a second.
const MAX_PAGES: usize = 4 << 20;

/// The node of every sampled page of each surveyed chunk, per array
/// (negative: unknown).
pub(crate) type Nodes = Vec<[Vec<i32>; 3]>;

/// Whose chunks a survey asks about.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Subject {
    /// The run's workers, chunk `i` being worker `i`'s.
    Workers,
    /// `--mode ranks`: the part of the node's MPI window that rank `rank`
    /// computes (one chunk), meant for node `intended`; asked by rank `by`,
    /// which checks it (the rank itself only when alone on its node).
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    WindowPart { rank: usize, intended: Option<usize>, by: usize },
}

/// The placement survey of one run.
pub(crate) struct Survey<'r> {
    pages: &'r dyn PageNodes,
    chunks: Vec<Range<usize>>,
    stride: usize,
    subject: Subject,
}

impl<'r> Survey<'r> {
    /// A survey of the workers' chunks `chunks` through `pages`, arrays of
    /// `array_bytes` bytes in pages of `page_bytes`.
    pub(crate) fn new(
        pages: &'r dyn PageNodes,
        chunks: Vec<Range<usize>>,
        page_bytes: usize,
        array_bytes: usize,
    ) -> Self {
        let pages_in = 3 * array_bytes.div_ceil(page_bytes.max(1));
        Survey { pages, chunks, stride: pages_in.div_ceil(MAX_PAGES).max(1), subject: Subject::Workers }
    }

    /// The same survey, of another subject than the run's own workers.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn of(self, subject: Subject) -> Self {
        Survey { subject, ..self }
    }

    /// Where each chunk's pages are now; `Err` with why it cannot be told.
    pub(crate) fn nodes(&self) -> Result<Nodes, String> {
        self.chunks
            .iter()
            .map(|range| {
                let mut out: [Vec<i32>; 3] = Default::default();
                for array in Array::ALL {
                    out[array.index()] = self
                        .pages
                        .nodes(array, range, self.stride)
                        .map_err(|e| format!("the kernel would not say where pages are (move_pages: {})", e.desc()))?;
                }
                Ok(out)
            })
            .collect()
    }

    pub(crate) fn stride(&self) -> usize {
        self.stride
    }

    pub(crate) fn subject(&self) -> Subject {
        self.subject
    }
}

/// Each surveyed chunk's placement, from its pages' nodes, under the id of
/// its worker (or rank) and with the node it is meant for.
pub(crate) fn placements(nodes: &[[Vec<i32>; 3]], ids: &[usize], intended: &[Option<usize>]) -> Vec<WorkerPlacement> {
    nodes
        .iter()
        .enumerate()
        .map(|(i, arrays)| {
            WorkerPlacement::new(
                ids.get(i).copied().unwrap_or(i),
                intended.get(i).copied().flatten(),
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
/// migrated during the rounds. `own_intended` is the node each of the
/// run's own workers is meant for, and `cpus_seen` the CPUs each ran on.
pub(crate) fn findings(
    cfg: &RunConfig,
    topology: &Topology,
    survey: &Survey<'_>,
    own_intended: &[Option<usize>],
    (after_init, after_run): (Option<Nodes>, Option<Nodes>),
    cpus_seen: &[Vec<u32>],
    control_node: Option<usize>,
) -> Findings {
    let mut warnings = Vec::new();
    let balancing = balancing_on();
    if balancing {
        warnings.push(Warning::NumaBalancing);
    }
    // Whose pages were asked about, and the node each is meant for; and
    // the ids under which the run's own workers are named.
    let (ids, intended, own_ids, window_part) = match survey.subject() {
        Subject::Workers => {
            let ids: Vec<usize> = (0..own_intended.len()).collect();
            (ids.clone(), own_intended.to_vec(), ids, None)
        }
        Subject::WindowPart { rank, intended, by } => {
            (vec![rank], vec![intended], vec![by], Some(WindowPart { rank, surveyed_by: by }))
        }
    };
    let ranks = window_part.is_some();
    let init = after_init.as_ref().map(|n| placements(n, &ids, &intended));
    let run = after_run.as_ref().map(|n| placements(n, &ids, &intended));
    for (when, placed) in [("after the arrays were filled", &init), ("after the last round", &run)] {
        let off: Vec<(usize, usize, f64)> = placed
            .iter()
            .flatten()
            .filter_map(|w| Some((w.worker, w.intended?, w.on_intended?)))
            .filter(|&(_, _, share)| share < HONOURED)
            .collect();
        if !off.is_empty() {
            warnings.push(Warning::PolicyNotHonoured { workers: off, when: when.to_string(), ranks });
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
        let off: Vec<(usize, usize, Vec<usize>)> = own_intended
            .iter()
            .enumerate()
            .filter_map(|(w, node)| {
                let node = (*node)?;
                let ran = ran_on.get(w)?;
                let id = own_ids.get(w).copied().unwrap_or(w);
                (!ran.is_empty() && ran.iter().any(|&n| n != node)).then(|| (id, node, ran.clone()))
            })
            .collect();
        if !off.is_empty() {
            warnings.push(Warning::RanOffNode { workers: off, ranks });
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
            let part_of = window_part.map(|p| p.rank);
            warnings.push(Warning::PagesMigrated { pages: moved * survey.stride() as u64, part_of });
        }
    }
    let record = NumaRecord {
        topology: topology.clone(),
        control_node,
        sampled_every: survey.stride(),
        after_init: init,
        after_run: run,
        ran_on,
        balancing,
        window_part,
    };
    Findings { record, warnings }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_on_its_node_has_all_its_pages_there() {
        let nodes: Nodes = vec![[vec![0, 0], vec![0, 0], vec![0, 0]], [vec![1, 1], vec![0, 0], vec![1, -14]]];
        let p = placements(&nodes, &[0, 1], &[Some(0), Some(1)]);
        assert_eq!(p[0].on_intended, Some(1.0));
        assert_eq!(p[1].on_intended, Some(3.0 / 6.0));
        assert_eq!(p[1].arrays[2].unknown, 1);
        let rank = placements(&nodes[1..], &[3], &[Some(1)]);
        assert_eq!((rank[0].worker, rank[0].on_intended), (3, Some(3.0 / 6.0)));
    }
}
