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
    /// Why its numbers are suspect, each once over its runs: `throttled`
    /// (the cgroup CPU quota throttled a run), `too-short`, `noisy`,
    /// `scattered` (the run's noise verdicts). Empty: nothing to doubt.
    #[serde(default)]
    pub suspect: Vec<String>,
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
    /// The cgroup CPU quota, in CPUs (0.5 = half a CPU's time), if one
    /// applies.
    #[serde(default)]
    pub cpu_quota: Option<f64>,
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
                // Speed-up per worker means something only against serial
                // at the same SIMD level: across levels (a serial-only SIMD
                // sweep) it is no efficiency at all.
                efficiency: speedup.filter(|_| !only_serial).map(|s| s / r.config.procs as f64),
                startup_s: med(&runs.iter().map(|r| r.phases.spawn_s).collect::<Vec<_>>()),
                suspect: suspect_of(runs),
                validated: runs.iter().all(RunReport::validated),
                exit_code: runs.iter().map(|r| r.exit_code).max().unwrap_or(0),
            })
        })
        .collect()
}

/// Why the runs of a point are suspect (see [`SweepPoint::suspect`]).
pub(crate) fn suspect_of(runs: &[RunReport]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in runs {
        for w in &r.warnings {
            let word = match w {
                Warning::Throttled { .. } => "throttled",
                Warning::TooShort { .. } => "too-short",
                Warning::Outliers { .. } => "noisy",
                Warning::Scattered { .. } => "scattered",
                _ => continue,
            };
            if !out.iter().any(|o| o == word) {
                out.push(word.to_string());
            }
        }
    }
    out
}

/// Processes over threads at one worker count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ratio {
    /// Workers.
    pub workers: usize,
    /// Median GB/s of processes ÷ that of threads.
    pub ratio: f64,
    /// Its lowest and highest over the repetitions (the lowest processes
    /// rate over the highest threads rate, and the other way round);
    /// `None` with one repetition.
    pub range: Option<(f64, f64)>,
}

impl Ratio {
    /// Whether 1 (no difference) lies within its range.
    pub fn within_noise(&self) -> bool {
        self.range.is_some_and(|(lo, hi)| lo <= 1.0 && 1.0 <= hi)
    }
}

/// "procs ÷ threads" at each worker count of a group of points: the sweep's
/// answer to "are processes slower than threads here?".
pub fn procs_over_threads(points: &[&SweepPoint]) -> Vec<Ratio> {
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
            let repeated = p.repeats > 1 && t.repeats > 1 && t.median_gbps_min > 0.0;
            (t.median_gbps > 0.0).then(|| Ratio {
                workers: p.procs,
                ratio: p.median_gbps / t.median_gbps,
                range: repeated.then(|| (p.median_gbps_min / t.median_gbps_max, p.median_gbps_max / t.median_gbps_min)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(mode: Mode, median: f64, range: (f64, f64), repeats: usize) -> SweepPoint {
        SweepPoint {
            mode,
            procs: 2,
            numa_nodes: None,
            len: 1000,
            op: Op::Add,
            dtype: Dtype::F64,
            simd: Simd::Scalar,
            stores: Stores::Regular,
            page_bytes: 4096,
            repeats,
            best_gbps: median,
            median_gbps: median,
            median_gbps_min: range.0,
            median_gbps_max: range.1,
            speedup: None,
            efficiency: None,
            startup_s: 0.0,
            suspect: Vec::new(),
            validated: true,
            exit_code: 0,
        }
    }

    #[test]
    fn a_ratio_carries_its_range_and_says_when_it_is_within_noise() {
        let (p, t) = (point(Mode::Procs, 13.0, (9.0, 15.0), 3), point(Mode::Threads, 10.0, (8.0, 12.0), 3));
        let q = procs_over_threads(&[&p, &t])[0];
        assert!((q.ratio - 1.3).abs() < 1e-12);
        let (lo, hi) = q.range.unwrap();
        assert!((lo - 0.75).abs() < 1e-12 && (hi - 15.0 / 8.0).abs() < 1e-12);
        assert!(q.within_noise(), "the ranges overlap: 1 lies within [0.75, 1.88]");
        let apart = point(Mode::Procs, 20.0, (19.0, 21.0), 3);
        assert!(!procs_over_threads(&[&apart, &t])[0].within_noise());
        let once = (point(Mode::Procs, 13.0, (13.0, 13.0), 1), point(Mode::Threads, 10.0, (10.0, 10.0), 1));
        let q = procs_over_threads(&[&once.0, &once.1])[0];
        assert_eq!(q.range, None, "one repetition has no range");
        assert!(!q.within_noise());
    }
}
