//! Exports: JSON (everything), CSV and Markdown (the summary), to a file or
//! to stdout with `-`, as hyperfine does.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::RunReport;

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

/// Renders one run in `format`.
pub fn render(r: &RunReport, format: Format) -> Vec<u8> {
    match format {
        Format::Json => {
            let mut v = serde_json::to_vec_pretty(r).expect("a report serialises");
            v.push(b'\n');
            v
        }
        Format::Csv => format!("{CSV_HEADER}\n{}\n", csv_row(r)).into_bytes(),
        Format::Markdown => format!("{MARKDOWN_HEADER}\n{}\n", markdown_row(r)).into_bytes(),
    }
}
