//! Exports: JSON (everything), CSV and Markdown (the summary rows), to a
//! file or to stdout with `-`, as hyperfine does, for single runs, sweeps and
//! the isolation experiment alike ([`Exportable`]).
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::RunReport;
use crate::isolation::IsolationReport;
use crate::sweep::SweepReport;

/// Something that can be exported in every format.
pub trait Exportable {
    /// The whole thing as JSON.
    fn json(&self) -> Vec<u8>;
    /// Summary rows as CSV, with a header.
    fn csv(&self) -> String;
    /// Summary rows as a Markdown table.
    fn markdown(&self) -> String;
}

fn pretty<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(value).expect("reports serialise");
    v.push(b'\n');
    v
}

/// An export format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The whole report.
    Json,
    /// One summary row per run.
    Csv,
    /// A summary table.
    Markdown,
}

/// Whether `path` means stdout.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Writes `bytes` to `path`, or to stdout for `-`.
pub fn write_to(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if is_stdout(path) {
        let mut out = io::stdout().lock();
        out.write_all(bytes)?;
        out.flush()
    } else {
        let mut f = BufWriter::new(File::create(path)?);
        f.write_all(bytes)?;
        f.flush()
    }
}

/// The CSV columns of a summary row.
pub const CSV_HEADER: &str = "mode,procs,len,op,dtype,simd,stores,runs,best_gbps,median_gbps,min_s,median_s,mean_s,max_s,stddev_s,validated,exit_code";

/// One run as a CSV row (matching [`CSV_HEADER`]).
pub fn csv_row(r: &RunReport) -> String {
    let c = &r.config;
    let s = r.summary.as_ref();
    let num = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.9}"));
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
        c.mode,
        c.procs,
        c.len,
        c.op,
        c.dtype,
        c.simd,
        c.stores,
        c.runs,
        num(s.map(|s| s.best_gbps)),
        num(s.map(|s| s.median_gbps)),
        num(s.map(|s| s.min_s)),
        num(s.map(|s| s.median_s)),
        num(s.map(|s| s.mean_s)),
        num(s.map(|s| s.max_s)),
        num(s.map(|s| s.stddev_s)),
        r.validated,
        r.exit_code
    )
}

/// The Markdown table header of summary rows.
pub const MARKDOWN_HEADER: &str = "| mode | procs | op | dtype | len | simd | stores | best GB/s | median GB/s | min time | median time | validated |\n|---|---:|---|---|---:|---|---|---:|---:|---:|---:|---|";

/// One run as a Markdown table row.
pub fn markdown_row(r: &RunReport) -> String {
    let c = &r.config;
    let (best, median, min, med) = match &r.summary {
        Some(s) => (
            format!("{:.1}", s.best_gbps),
            format!("{:.1}", s.median_gbps),
            super::table::human_time(s.min_s),
            super::table::human_time(s.median_s),
        ),
        None => ("–".into(), "–".into(), "–".into(), "–".into()),
    };
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {best} | {median} | {min} | {med} | {} |",
        c.mode,
        c.procs,
        c.op,
        c.dtype,
        c.len,
        c.simd,
        c.stores,
        if r.validated { "yes" } else { "**no**" }
    )
}

/// Renders `item` in `format`.
pub fn render(item: &dyn Exportable, format: Format) -> Vec<u8> {
    match format {
        Format::Json => item.json(),
        Format::Csv => item.csv().into_bytes(),
        Format::Markdown => item.markdown().into_bytes(),
    }
}

impl Exportable for RunReport {
    fn json(&self) -> Vec<u8> {
        pretty(self)
    }
    fn csv(&self) -> String {
        format!("{CSV_HEADER}\n{}\n", csv_row(self))
    }
    fn markdown(&self) -> String {
        format!("{MARKDOWN_HEADER}\n{}\n", markdown_row(self))
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or(String::new(), |x| format!("{x:.digits$}"))
}

/// The CSV columns of a sweep.
pub const SWEEP_CSV_HEADER: &str = "mode,procs,len,op,dtype,simd,stores,page_bytes,repeats,best_gbps,median_gbps,median_gbps_min,median_gbps_max,speedup,efficiency,startup_s,validated,exit_code";

impl Exportable for SweepReport {
    fn json(&self) -> Vec<u8> {
        pretty(self)
    }
    fn csv(&self) -> String {
        let mut out = format!("{SWEEP_CSV_HEADER}\n");
        for p in &self.points {
            out += &format!(
                "{},{},{},{},{},{},{},{},{},{:.6},{:.6},{:.6},{:.6},{},{},{:.9},{},{}\n",
                p.mode,
                p.procs,
                p.len,
                p.op,
                p.dtype,
                p.simd,
                p.stores,
                p.page_bytes,
                p.repeats,
                p.best_gbps,
                p.median_gbps,
                p.median_gbps_min,
                p.median_gbps_max,
                opt(p.speedup, 4),
                opt(p.efficiency, 4),
                p.startup_s,
                p.validated,
                p.exit_code
            );
        }
        out
    }
    fn markdown(&self) -> String {
        let mut out = String::from(
            "| mode | workers | len | op | simd | best GB/s | median GB/s | speed-up | efficiency | start-up |\n\
             |---|---:|---:|---|---|---:|---:|---:|---:|---:|\n",
        );
        for p in &self.points {
            out += &format!(
                "| {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} |\n",
                p.mode,
                p.procs,
                p.len,
                p.op,
                p.simd,
                p.best_gbps,
                if p.repeats > 1 {
                    format!("{:.1} ({:.1}–{:.1})", p.median_gbps, p.median_gbps_min, p.median_gbps_max)
                } else {
                    format!("{:.1}", p.median_gbps)
                },
                p.speedup.map_or("–".into(), |s| format!("{s:.2}×")),
                p.efficiency.map_or("–".into(), |e| format!("{:.0}%", e * 100.0)),
                if p.mode == crate::mode::Mode::Serial { "–".into() } else { super::table::human_time(p.startup_s) }
            );
        }
        out
    }
}

/// The CSV columns of the isolation experiment.
pub const ISOLATION_CSV_HEADER: &str = "mode,fault,survived,correct,detected,lost,retry,recovered";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

impl Exportable for IsolationReport {
    fn json(&self) -> Vec<u8> {
        pretty(self)
    }
    fn csv(&self) -> String {
        let mut out = format!("{ISOLATION_CSV_HEADER}\n");
        for r in &self.rows {
            out += &format!(
                "{},{},{},{},{},{},{},{}\n",
                r.mode,
                r.fault,
                r.survived,
                r.correct.map_or(String::new(), |c| c.to_string()),
                csv_field(&r.detected),
                csv_field(&r.lost),
                csv_field(&r.retry),
                r.recovered
            );
        }
        out
    }
    fn markdown(&self) -> String {
        let mut out = String::from(
            "| mode | fault | run survived | result | detected | lost | `--on-fault retry` |\n|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            out += &format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                r.mode,
                r.fault,
                if r.survived { "yes" } else { "**no**" },
                match r.correct {
                    Some(true) => "correct",
                    Some(false) => "**wrong**",
                    None => "none",
                },
                r.detected.replace('|', "/"),
                r.lost.replace('|', "/"),
                r.retry.replace('|', "/")
            );
        }
        for s in &self.summary {
            out += &format!("\n{s}\n");
        }
        out
    }
}
