//! Sweeps: a grid of runs (worker counts × modes × lengths × ops × SIMD
//! levels), one table, one plot.
//!
//! Every point is a whole run (the same as `vecpar-coord` with those
//! options), resolved before the first one starts so that a bad value fails
//! at once. Serial runs once per (length, op, SIMD level), as the baseline of
//! the speed-up and the parallel efficiency.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

use crate::cli::{RunArgs, SweepArgs};
use crate::config::RunConfig;
use crate::error::Error;
use crate::fault::OnFault;
use crate::kernel::{Dtype, Op, Simd, Stores};
use crate::mode::Mode;
use crate::plot::{Chart, Marker, Series};
use crate::report::{Provenance, RunReport};
use crate::sysinfo;

/// One point of a sweep, as the table shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// Mode.
    pub mode: Mode,
    /// Workers.
    pub procs: usize,
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
    /// Median GB/s over serial's at the same length, op and SIMD level.
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
    /// Version, command line, machine (kind "sweep").
    #[serde(flatten)]
    pub about: Provenance,
    /// One row per point, in the table's order.
    pub points: Vec<SweepPoint>,
    /// Every run in full, in the order they ran.
    pub runs: Vec<RunReport>,
    /// Warnings, each once.
    pub warnings: Vec<String>,
}

/// The default worker counts: 1, 2, 4, … up to 4 × the allowed CPUs (at most 64).
pub fn default_procs(allowed_cpus: usize) -> Vec<usize> {
    let top = (4 * allowed_cpus).clamp(1, 64);
    std::iter::successors(Some(1usize), |p| Some(p * 2)).take_while(|&p| p <= top).collect()
}

/// The runs of a sweep, in the table's order.
pub fn plan(args: &SweepArgs) -> Result<Vec<RunArgs>, Error> {
    let procs =
        if args.procs.is_empty() { default_procs(crate::cpus::allowed_cpus().len()) } else { args.procs.clone() };
    if let Some(bad) = procs.iter().find(|&&p| p == 0) {
        return Err(Error::Usage(format!("--procs {bad}: a run needs at least one worker")));
    }
    if args.modes.is_empty() {
        return Err(Error::Usage("--modes: name at least one of procs, threads, serial".into()));
    }
    let mut runs = Vec::new();
    for &len in &args.len {
        for &op in &args.op {
            for &simd in &args.simd {
                let base = |mode: Mode, procs: Option<usize>| RunArgs {
                    procs,
                    len,
                    op,
                    mode,
                    simd,
                    measure: args.measure.clone(),
                    inject_fault: Vec::new(),
                    on_fault: OnFault::Fail,
                    timeout: 60.0,
                };
                if args.modes.contains(&Mode::Serial) {
                    runs.push(base(Mode::Serial, None));
                }
                for &p in &procs {
                    for &mode in args.modes.iter().filter(|m| **m != Mode::Serial) {
                        runs.push(base(mode, Some(p)));
                    }
                }
            }
        }
    }
    Ok(runs)
}

/// Runs a sweep. `each` is told before every point (for a progress bar).
pub fn run(
    args: &SweepArgs,
    arguments: Vec<String>,
    mut each: impl FnMut(usize, usize, &str),
) -> Result<SweepReport, Error> {
    let planned = plan(args)?;
    if args.repeat == 0 {
        return Err(Error::Usage("--repeat 0: run the grid at least once".into()));
    }
    // Resolve everything first: a value that cannot work fails now.
    let configs =
        planned.iter().map(|a| RunConfig::resolve(a, arguments.clone())).collect::<Result<Vec<RunConfig>, Error>>()?;
    let n = configs.len();
    let total = n * args.repeat;
    let mut by_point: Vec<Vec<RunReport>> = vec![Vec::new(); n];
    let mut runs = Vec::with_capacity(total);
    let mut warnings: Vec<String> = Vec::new();
    for rep in 0..args.repeat {
        // Each repetition starts one point later, so that no point always
        // runs right after the same neighbour (or first, on a cold machine).
        for k in 0..n {
            let i = (rep + k) % n;
            let cfg = &configs[i];
            each(rep * n + k, total, &point_label(cfg.mode, cfg.procs, cfg.len, cfg.op, cfg.simd));
            let report = crate::mode::run(cfg)?;
            for w in &report.warnings {
                if !warnings.contains(w) {
                    warnings.push(w.clone());
                }
            }
            by_point[i].push(report.clone());
            runs.push(report);
        }
    }
    let points = points_of(&by_point);
    Ok(SweepReport { about: Provenance::new("sweep", arguments), points, runs, warnings })
}

fn point_label(mode: Mode, procs: usize, len: usize, op: Op, simd: Simd) -> String {
    format!("{mode} × {procs}, len {}, {op}, {simd}", crate::plot::human_number(len as f64))
}

/// Table rows: each point's median over its repetitions, with speed-up and
/// efficiency against serial's at the same length, op and SIMD level.
pub fn points_of(by_point: &[Vec<RunReport>]) -> Vec<SweepPoint> {
    let med = |v: &[f64]| crate::stats::median(v).unwrap_or(0.0);
    let medians = |runs: &[RunReport]| -> Vec<f64> {
        runs.iter().map(|r| r.summary.as_ref().map_or(0.0, |s| s.median_gbps)).collect()
    };
    let baseline = |r: &RunReport| {
        by_point
            .iter()
            .find(|b| {
                b.first().is_some_and(|b| {
                    b.config.mode == Mode::Serial
                        && b.config.len == r.config.len
                        && b.config.op == r.config.op
                        && b.config.simd == r.config.simd
                })
            })
            .map(|b| med(&medians(b)))
    };
    by_point
        .iter()
        .filter_map(|runs| {
            let r = runs.first()?;
            let over_repeats = crate::stats::Stats::of(&medians(runs))?;
            let median = over_repeats.median;
            let best = med(&runs.iter().map(|r| r.summary.as_ref().map_or(0.0, |s| s.best_gbps)).collect::<Vec<_>>());
            let speedup = baseline(r).filter(|b| *b > 0.0).map(|b| median / b);
            Some(SweepPoint {
                mode: r.config.mode,
                procs: r.config.procs,
                len: r.config.len,
                op: r.config.op,
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
                validated: runs.iter().all(|r| r.validated),
                exit_code: runs.iter().map(|r| r.exit_code).max().unwrap_or(0),
            })
        })
        .collect()
}

/// "procs ÷ threads" at each worker count of a group: the sweep's answer to
/// "are processes slower than threads here?".
pub fn procs_over_threads(points: &[SweepPoint]) -> Vec<(usize, f64)> {
    points
        .iter()
        .filter(|p| p.mode == Mode::Procs)
        .filter_map(|p| {
            let t = points.iter().find(|t| {
                t.mode == Mode::Threads && t.procs == p.procs && t.len == p.len && t.op == p.op && t.simd == p.simd
            })?;
            (t.median_gbps > 0.0).then(|| (p.procs, p.median_gbps / t.median_gbps))
        })
        .collect()
}

/// The plot of a sweep: GB/s against length (log axis, cache sizes marked)
/// when it has several lengths, else GB/s against workers, one line per mode.
pub fn chart(report: &SweepReport) -> Chart {
    let points = &report.points;
    let mut lens: Vec<usize> = points.iter().map(|p| p.len).collect();
    lens.sort_unstable();
    lens.dedup();
    let varies = |f: &dyn Fn(&SweepPoint) -> String| {
        let mut v: Vec<String> = points.iter().map(f).collect();
        v.sort();
        v.dedup();
        v.len() > 1
    };
    let (op_varies, simd_varies) = (varies(&|p| p.op.to_string()), varies(&|p| p.simd.to_string()));
    let suffix = |p: &SweepPoint| {
        let mut s = String::new();
        if op_varies {
            s += &format!(" {}", p.op);
        }
        if simd_varies {
            s += &format!(" {}", p.simd);
        }
        s
    };
    let first = points.first();
    let repeats = points.iter().map(|p| p.repeats).max().unwrap_or(1);
    let y_label = if repeats > 1 {
        format!("GB/s, median round (STREAM counting); bars: min–max of {repeats} runs")
    } else {
        "GB/s, median round (STREAM counting)".to_string()
    };
    let what = first.map_or(String::new(), |p| {
        let mut w = if op_varies { String::new() } else { format!("{} ", p.op) };
        w += p.dtype.name();
        if !simd_varies {
            w += &format!(", {}", p.simd);
        }
        w
    });
    if lens.len() > 1 {
        let mut keys: Vec<(Mode, usize, String)> = points.iter().map(|p| (p.mode, p.procs, suffix(p))).collect();
        // The same colour for a mode in every chart: procs, threads, serial.
        keys.sort_by_key(|(m, p, s)| (*m as u8, *p, s.clone()));
        keys.dedup();
        let mut series: Vec<Series> = Vec::new();
        for (mode, procs, sfx) in keys {
            if series.iter().any(|s| s.label == series_label(mode, procs, &sfx)) {
                continue;
            }
            let mut chosen: Vec<&SweepPoint> =
                points.iter().filter(|p| p.mode == mode && p.procs == procs && suffix(p) == sfx).collect();
            chosen.sort_by_key(|p| p.len);
            series.push(Series {
                label: series_label(mode, procs, &sfx),
                points: chosen.iter().map(|p| (p.len as f64, p.median_gbps)).collect(),
                dashed: false,
                ranges: spread(&chosen, |p| p.len as f64),
            });
        }
        let size = first.map_or(8, |p| p.dtype.size()) as f64;
        let markers = report
            .about
            .host
            .caches
            .iter()
            .filter(|c| c.level >= 2 && c.kind != "Instruction" && c.bytes > 0)
            .map(|c| Marker {
                x: c.bytes as f64 / (3.0 * size),
                label: format!(
                    "L{} {}{}",
                    c.level,
                    sysinfo::human_bytes(c.bytes),
                    if c.level == 2 { " per core" } else { " shared" }
                ),
            })
            .collect();
        Chart {
            title: format!("vecpar sweep, {what}: GB/s against length"),
            x_label: "elements per array (log scale) · left of a dashed line, a + b + c fit in that cache".into(),
            y_label: y_label.clone(),
            log_x: true,
            series,
            markers,
            x_ticks: None,
        }
    } else {
        let mut procs: Vec<usize> = points.iter().filter(|p| p.mode != Mode::Serial).map(|p| p.procs).collect();
        procs.sort_unstable();
        procs.dedup();
        let lo = *procs.first().unwrap_or(&1) as f64;
        let hi = *procs.last().unwrap_or(&1) as f64;
        let mut series = Vec::new();
        let mut keys: Vec<(Mode, String)> = points.iter().map(|p| (p.mode, suffix(p))).collect();
        keys.sort_by_key(|(m, s)| (*m as u8, s.clone()));
        keys.dedup();
        for (mode, sfx) in keys {
            let mut chosen: Vec<&SweepPoint> = points.iter().filter(|p| p.mode == mode && suffix(p) == sfx).collect();
            chosen.sort_by_key(|p| p.procs);
            let mut pts: Vec<(f64, f64)> = chosen.iter().map(|p| (p.procs as f64, p.median_gbps)).collect();
            let dashed = mode == Mode::Serial;
            if dashed && let Some(&(_, y)) = pts.first() {
                // Serial has one point: draw it across as the baseline.
                pts = vec![(lo.min(1.0), y), (hi.max(1.0), y)];
            }
            let ranges = if dashed { Vec::new() } else { spread(&chosen, |p| p.procs as f64) };
            series.push(Series { label: format!("{mode}{sfx}"), points: pts, dashed, ranges });
        }
        let cpus = crate::cpus::parse_cpu_list(&report.about.host.allowed_cpus).map_or(1, |l| l.len());
        let len = first.map_or(0, |p| p.len);
        Chart {
            title: format!("vecpar sweep, {what}, len {}: GB/s against workers", crate::plot::human_number(len as f64)),
            x_label: "workers (log scale)".into(),
            y_label,
            log_x: true,
            series,
            markers: vec![Marker { x: cpus as f64, label: format!("{cpus} CPUs allowed") }],
            x_ticks: Some(procs.iter().map(|&p| p as f64).collect()),
        }
    }
}

/// The spread bars of a series: each point's range over its repetitions.
fn spread(points: &[&SweepPoint], x: impl Fn(&SweepPoint) -> f64) -> Vec<(f64, f64, f64)> {
    points.iter().filter(|p| p.repeats > 1).map(|p| (x(p), p.median_gbps_min, p.median_gbps_max)).collect()
}

fn series_label(mode: Mode, procs: usize, sfx: &str) -> String {
    match mode {
        Mode::Serial => format!("serial{sfx}"),
        _ => format!("{mode} × {procs}{sfx}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_worker_counts_grow_by_powers_of_two() {
        assert_eq!(default_procs(2), vec![1, 2, 4, 8]);
        assert_eq!(default_procs(1), vec![1, 2, 4]);
        assert_eq!(default_procs(64).last(), Some(&64));
    }
}
