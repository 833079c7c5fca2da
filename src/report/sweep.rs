//! A sweep's report: one point per grid coordinate, each the median of its
//! repetitions, with speed-up and efficiency against its baseline.

use serde::{Deserialize, Serialize};

use super::{Provenance, RunReport};
use crate::kernel::{Dtype, Op, Simd, Stores};
use crate::vocab::Mode;
use crate::warnings::Warning;

/// One point of a sweep, as the table shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// Mode.
    pub mode: Mode,
    /// Workers.
    pub procs: usize,
    /// The NUMA nodes its workers were spread over (`--numa-nodes`).
    #[serde(default)]
    pub numa_nodes: Option<usize>,
    /// Elements per array.
    pub len: usize,
    /// Kernel.
    pub op: Op,
    /// Element type.
    pub dtype: Dtype,
    /// SIMD level.
    pub simd: Simd,
    /// Store kind.
    pub stores: Stores,
    /// Page size of the segment.
    pub page_bytes: usize,
    /// Runs of this point (`--repeat`).
    pub repeats: usize,
    /// Best-round bandwidth, GB/s (median over the repeats).
    pub best_gbps: f64,
    /// Median-round bandwidth, GB/s (median over the repeats).
    pub median_gbps: f64,
    /// The lowest of the repeats' median-round bandwidths.
    pub median_gbps_min: f64,
    /// The highest of them.
    pub median_gbps_max: f64,
    /// Median GB/s over the baseline's (serial at the same length, kernel,
    /// type and SIMD level; with serial alone, the lowest SIMD level).
    pub speedup: Option<f64>,
    /// Speed-up per worker.
    pub efficiency: Option<f64>,
    /// Spawn, attach and ready, seconds (median over the repeats).
    pub startup_s: f64,
    /// Whether every run of the point validated.
    pub validated: bool,
    /// The worst exit code of its runs.
    pub exit_code: u8,
}

/// A whole sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// Version, time, command line, machine (kind "sweep").
    #[serde(flatten)]
    pub about: Provenance,
    /// Whether the sweep was interrupted (the points are those finished).
    pub partial: bool,
    /// CPUs the workers can each have: the affinity mask, lowered by a
    /// cgroup CPU quota.
    pub cpus: usize,
    /// One row per point, in the table's order.
    pub points: Vec<SweepPoint>,
    /// Every run in full, in the order they ran.
    pub runs: Vec<RunReport>,
    /// Warnings, each once.
    #[serde(with = "crate::warnings::listed")]
    pub warnings: Vec<Warning>,
}

/// The median-round bandwidth of a run's first kernel (0 without rounds).
fn median_gbps(r: &RunReport) -> f64 {
    r.first().and_then(|k| k.summary.as_ref()).map_or(0.0, |s| s.median_gbps)
}

/// Table rows: each point's median over its repetitions (`by_point[i]`
/// holds point i's runs; points without a run are left out), with speed-up
/// and efficiency against its baseline.
pub fn points_of(by_point: &[Vec<RunReport>]) -> Vec<SweepPoint> {
    let med = |v: &[f64]| crate::stats::median(v).unwrap_or(0.0);
    let medians = |runs: &[RunReport]| -> Vec<f64> { runs.iter().map(median_gbps).collect() };
    let only_serial = by_point.iter().filter_map(|b| b.first()).all(|r| r.config.mode == Mode::Serial);
    let same = |a: &RunReport, b: &RunReport| {
        a.config.len == b.config.len && a.config.ops == b.config.ops && a.config.dtype == b.config.dtype
    };
    let baseline = |r: &RunReport| -> Option<f64> {
        let serial = by_point.iter().filter_map(|b| Some((b.first()?, b))).filter(|(b, _)| {
            b.config.mode == Mode::Serial && same(b, r) && (only_serial || b.config.simd == r.config.simd)
        });
        // Serial alone compares SIMD levels: against the lowest one.
        serial.min_by_key(|(b, _)| b.config.simd).map(|(_, runs)| med(&medians(runs)))
    };
    by_point
        .iter()
        .filter_map(|runs| {
            let r = runs.first()?;
            let over_repeats = crate::stats::Stats::of(&medians(runs))?;
            let median = over_repeats.median;
            let best = med(&runs
                .iter()
                .map(|r| r.first().and_then(|k| k.summary.as_ref()).map_or(0.0, |s| s.best_gbps))
                .collect::<Vec<_>>());
            let speedup = baseline(r).filter(|b| *b > 0.0).map(|b| median / b);
            Some(SweepPoint {
                mode: r.config.mode,
                procs: r.config.procs,
                numa_nodes: match &r.config.pin {
                    crate::machine::PinSpec::Domains(d) => Some(d.len()),
                    _ => None,
                },
                len: r.config.len,
                op: r.config.ops.0[0],
                dtype: r.config.dtype,
                simd: r.config.simd,
                stores: r.config.stores,
                page_bytes: r.config.page_bytes,
                repeats: runs.len(),
                best_gbps: best,
                median_gbps: median,
                median_gbps_min: over_repeats.min,
                median_gbps_max: over_repeats.max,
                speedup,
                efficiency: speedup.map(|s| s / r.config.procs as f64),
                startup_s: med(&runs.iter().map(|r| r.phases.spawn_s).collect::<Vec<_>>()),
                validated: runs.iter().all(RunReport::validated),
                exit_code: runs.iter().map(|r| r.exit_code).max().unwrap_or(0),
            })
        })
        .collect()
}

/// "procs ÷ threads" at each worker count of a group of points: the sweep's
/// answer to "are processes slower than threads here?".
pub fn procs_over_threads(points: &[&SweepPoint]) -> Vec<(usize, f64)> {
    points
        .iter()
        .filter(|p| p.mode == Mode::Procs)
        .filter_map(|p| {
            let t = points.iter().find(|t| {
                t.mode == Mode::Threads
                    && t.procs == p.procs
                    && t.len == p.len
                    && t.op == p.op
                    && t.dtype == p.dtype
                    && t.simd == p.simd
            })?;
            (t.median_gbps > 0.0).then(|| (p.procs, p.median_gbps / t.median_gbps))
        })
        .collect()
}
