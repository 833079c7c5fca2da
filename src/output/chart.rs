//! The plot of a sweep: rates against length (log axis, cache sizes marked)
//! when it has several lengths, else rates against workers, one line per mode.

use crate::plot::{Chart, Marker, Series};
use crate::report::sweep::{SweepPoint, SweepReport};
use crate::units::{Rate, human_bytes, human_number};
use crate::vocab::Mode;

/// The chart of `report`, rates in `rate`.
pub(crate) fn sweep_chart(report: &SweepReport, rate: Rate) -> Chart {
    let points = &report.points;
    let y = |gbps: f64| rate.of_gbps(gbps);
    let unit = rate.label();
    let mut lens: Vec<usize> = points.iter().map(|p| p.len).collect();
    lens.sort_unstable();
    lens.dedup();
    let varies = |f: &dyn Fn(&SweepPoint) -> String| {
        let mut v: Vec<String> = points.iter().map(f).collect();
        v.sort();
        v.dedup();
        v.len() > 1
    };
    let op_varies = varies(&|p| p.op.to_string());
    let dtype_varies = varies(&|p| p.dtype.to_string());
    let simd_varies = varies(&|p| p.simd.to_string());
    let suffix = |p: &SweepPoint| {
        let mut s = String::new();
        if op_varies {
            s += &format!(" {}", p.op);
        }
        if dtype_varies {
            s += &format!(" {}", p.dtype);
        }
        if simd_varies {
            s += &format!(" {}", p.simd);
        }
        if let Some(n) = p.numa_nodes {
            s += &format!(" on {n} node{}", crate::units::plural(n as u64));
        }
        s
    };
    let first = points.first();
    let repeats = points.iter().map(|p| p.repeats).max().unwrap_or(1);
    let mut y_label = if repeats > 1 {
        format!("{unit}, median round (STREAM counting); bars: min–max of {repeats} runs")
    } else {
        format!("{unit}, median round (STREAM counting)")
    };
    if points.iter().any(|p| !p.suspect.is_empty()) {
        y_label += "; ringed: throttled, too short or noisy";
    }
    let what = first.map_or(String::new(), |p| {
        let mut w = if op_varies { String::new() } else { format!("{} ", p.op) };
        if !dtype_varies {
            w += p.dtype.name();
        }
        if !simd_varies {
            w += &format!(", {}", p.simd);
        }
        w
    });
    if lens.len() > 1 {
        let mut keys: Vec<(Mode, usize, String)> = points.iter().map(|p| (p.mode, p.procs, suffix(p))).collect();
        // The same colour for a mode in every chart: procs, threads, serial.
        keys.sort_by_key(|(m, p, s)| (*m, *p, s.clone()));
        keys.dedup();
        let series = keys
            .into_iter()
            .map(|(mode, procs, sfx)| {
                let mut chosen: Vec<&SweepPoint> =
                    points.iter().filter(|p| p.mode == mode && p.procs == procs && suffix(p) == sfx).collect();
                chosen.sort_by_key(|p| p.len);
                Series {
                    label: series_label(mode, procs, &sfx),
                    points: chosen.iter().map(|p| (p.len as f64, y(p.median_gbps))).collect(),
                    dashed: false,
                    ranges: spread(&chosen, |p| p.len as f64, rate),
                    suspect: suspect(&chosen, |p| p.len as f64, rate),
                }
            })
            .collect();
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
                    human_bytes(c.bytes),
                    if c.level == 2 { " per core" } else { " shared" }
                ),
            })
            .collect();
        Chart {
            title: format!("vecpar sweep, {what}: {unit} against length"),
            x_label: "elements per array (log scale) · left of a dashed line, a + b + c fit in that cache".into(),
            y_label,
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
        let mut keys: Vec<(Mode, String)> = points.iter().map(|p| (p.mode, suffix(p))).collect();
        keys.sort();
        keys.dedup();
        let series = keys
            .into_iter()
            .map(|(mode, sfx)| {
                let mut chosen: Vec<&SweepPoint> =
                    points.iter().filter(|p| p.mode == mode && suffix(p) == sfx).collect();
                chosen.sort_by_key(|p| p.procs);
                let mut pts: Vec<(f64, f64)> = chosen.iter().map(|p| (p.procs as f64, y(p.median_gbps))).collect();
                let dashed = mode == Mode::Serial;
                if dashed && let Some(&(_, y)) = pts.first() {
                    // Serial has one point: draw it across as the baseline.
                    pts = vec![(lo.min(1.0), y), (hi.max(1.0), y)];
                }
                let ranges = if dashed { Vec::new() } else { spread(&chosen, |p| p.procs as f64, rate) };
                let suspect = if dashed { Vec::new() } else { suspect(&chosen, |p| p.procs as f64, rate) };
                Series { label: format!("{mode}{sfx}"), points: pts, dashed, ranges, suspect }
            })
            .collect();
        let cpus = report.cpus.max(1);
        let (cpu_x, cpu_label) = match report.cpu_quota {
            Some(q) => (q, format!("{q:.2}-CPU quota")),
            None => (cpus as f64, format!("{cpus} CPU{} allowed", crate::units::plural(cpus as u64))),
        };
        let len = first.map_or(0, |p| p.len);
        Chart {
            title: format!("vecpar sweep, {what}, len {}: {unit} against workers", human_number(len as f64)),
            x_label: "workers (log scale)".into(),
            y_label,
            log_x: true,
            series,
            markers: vec![Marker { x: cpu_x, label: cpu_label }],
            x_ticks: Some(procs.iter().map(|&p| p as f64).collect()),
        }
    }
}

/// The points of a series whose numbers are suspect (ringed).
fn suspect(points: &[&SweepPoint], x: impl Fn(&SweepPoint) -> f64, rate: Rate) -> Vec<(f64, f64)> {
    points.iter().filter(|p| !p.suspect.is_empty()).map(|p| (x(p), rate.of_gbps(p.median_gbps))).collect()
}

/// The spread bars of a series: each point's range over its repetitions.
fn spread(points: &[&SweepPoint], x: impl Fn(&SweepPoint) -> f64, rate: Rate) -> Vec<(f64, f64, f64)> {
    points
        .iter()
        .filter(|p| p.repeats > 1)
        .map(|p| (x(p), rate.of_gbps(p.median_gbps_min), rate.of_gbps(p.median_gbps_max)))
        .collect()
}

fn series_label(mode: Mode, procs: usize, sfx: &str) -> String {
    match mode {
        Mode::Serial => format!("serial{sfx}"),
        _ => format!("{mode} × {procs}{sfx}"),
    }
}
