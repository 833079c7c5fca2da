//! Each report kind's summary rows, written once for every format.

use super::{Cell, Column, Exportable, Table, both, csv_only};
use crate::report::RunReport;
use crate::report::isolation::IsolationReport;
use crate::report::sweep::SweepReport;
use crate::report::topology::TopologyReport;
use crate::units::human_time;
use crate::vocab::Mode;

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or(String::new(), |x| format!("{x:.digits$}"))
}

fn gbps(v: Option<f64>) -> Cell {
    Cell::two(num(v, 9), v.map_or("–".into(), |x| format!("{x:.1}")))
}

fn seconds(v: Option<f64>) -> Cell {
    Cell::two(num(v, 9), v.map_or("–".into(), human_time))
}

const RUN_COLUMNS: [Column; 19] = [
    both("mode", "mode", false),
    both("procs", "procs", true),
    both("len", "len", true),
    both("op", "op", false),
    both("dtype", "dtype", false),
    both("simd", "simd", false),
    both("stores", "stores", false),
    csv_only("runs"),
    both("best_gbps", "best GB/s", true),
    both("median_gbps", "median GB/s", true),
    both("min_s", "min time", true),
    both("median_s", "median time", true),
    csv_only("mean_s"),
    csv_only("max_s"),
    csv_only("stddev_s"),
    both("validated", "validated", false),
    csv_only("exit_code"),
    csv_only("iqr_s"),
    both("noise", "noise", false),
];

impl Exportable for RunReport {
    fn table(&self) -> Table {
        let c = &self.config;
        let rows = self
            .kernels
            .iter()
            .map(|k| {
                let s = k.summary.as_ref();
                let validated = k.validated();
                vec![
                    Cell::text(c.mode.name()),
                    Cell::text(c.procs.to_string()),
                    Cell::text(c.len.to_string()),
                    Cell::text(k.op.name()),
                    Cell::text(c.dtype.name()),
                    Cell::text(c.simd.name()),
                    Cell::text(c.stores.name()),
                    Cell::text(c.runs.to_string()),
                    gbps(s.map(|s| s.best_gbps)),
                    gbps(s.map(|s| s.median_gbps)),
                    seconds(s.map(|s| s.min_s)),
                    seconds(s.map(|s| s.median_s)),
                    seconds(s.map(|s| s.mean_s)),
                    seconds(s.map(|s| s.max_s)),
                    seconds(s.map(|s| s.stddev_s)),
                    Cell::two(validated.to_string(), if validated { "yes" } else { "**no**" }),
                    Cell::text(self.exit_code.to_string()),
                    seconds(s.map(|s| s.iqr_s)),
                    Cell::text(k.noise.as_ref().map_or("", |n| n.verdict.name())),
                ]
            })
            .collect();
        let table = Table { columns: RUN_COLUMNS.to_vec(), rows, notes: Vec::new() };
        #[cfg(feature = "mpi")]
        if let Some(m) = &self.mpi {
            return with_ranks(table, m, c, self.kernels.first().map_or("", |k| k.op.name()));
        }
        table
    }
}

/// Under MPI: the job's rows (rank "all"), then one row per rank with its
/// share, its workers and its median compute time per round.
#[cfg(feature = "mpi")]
fn with_ranks(table: Table, m: &crate::report::MpiRecord, c: &crate::config::ConfigRecord, op: &str) -> Table {
    let mut rows = table.rows;
    for row in &mut rows {
        row.extend([Cell::text("all"), Cell::text("")]);
    }
    for p in &m.per_rank {
        let mut row = vec![Cell::text(""); RUN_COLUMNS.len() + 2];
        row[0] = Cell::text(c.mode.name());
        row[1] = Cell::text(p.workers.len().to_string());
        row[2] = Cell::text((p.end - p.start).to_string());
        row[3] = Cell::text(op);
        row[4] = Cell::text(c.dtype.name());
        row[11] = seconds(p.median_compute_s);
        row[16] = Cell::text(p.exit_code.to_string());
        row[RUN_COLUMNS.len()] = Cell::text(p.rank.to_string());
        row[RUN_COLUMNS.len() + 1] = Cell::text(p.host.clone());
        rows.push(row);
    }
    let mut columns = RUN_COLUMNS.to_vec();
    columns.extend([both("rank", "rank", false), both("host", "host", false)]);
    Table { columns, rows, notes: Vec::new() }
}

const SWEEP_COLUMNS: [Column; 21] = [
    both("mode", "mode", false),
    both("procs", "workers", true),
    both("len", "len", true),
    both("op", "op", false),
    both("dtype", "dtype", false),
    both("simd", "simd", false),
    csv_only("stores"),
    csv_only("page_bytes"),
    csv_only("repeats"),
    both("best_gbps", "best GB/s", true),
    both("median_gbps", "median GB/s", true),
    csv_only("median_gbps_min"),
    csv_only("median_gbps_max"),
    both("speedup", "speed-up", true),
    both("efficiency", "efficiency", true),
    both("startup_s", "start-up", true),
    csv_only("validated"),
    csv_only("exit_code"),
    csv_only("partial"),
    csv_only("numa_nodes"),
    both("suspect", "suspect", false),
];

impl Exportable for SweepReport {
    fn table(&self) -> Table {
        let rows = self
            .points
            .iter()
            .map(|p| {
                let median = if p.repeats > 1 {
                    format!("{:.1} ({:.1}–{:.1})", p.median_gbps, p.median_gbps_min, p.median_gbps_max)
                } else {
                    format!("{:.1}", p.median_gbps)
                };
                let mode = match p.numa_nodes {
                    Some(n) => {
                        Cell::two(p.mode.name(), format!("{} on {n} node{}", p.mode, crate::units::plural(n as u64)))
                    }
                    None => Cell::text(p.mode.name()),
                };
                vec![
                    mode,
                    Cell::text(p.procs.to_string()),
                    Cell::text(p.len.to_string()),
                    Cell::text(p.op.name()),
                    Cell::text(p.dtype.name()),
                    Cell::text(p.simd.name()),
                    Cell::text(p.stores.name()),
                    Cell::text(p.page_bytes.to_string()),
                    Cell::text(p.repeats.to_string()),
                    Cell::two(format!("{:.6}", p.best_gbps), format!("{:.1}", p.best_gbps)),
                    Cell::two(format!("{:.6}", p.median_gbps), median),
                    Cell::text(format!("{:.6}", p.median_gbps_min)),
                    Cell::text(format!("{:.6}", p.median_gbps_max)),
                    Cell::two(num(p.speedup, 4), p.speedup.map_or("–".into(), |s| format!("{s:.2}×"))),
                    Cell::two(num(p.efficiency, 4), p.efficiency.map_or("–".into(), |e| format!("{:.0}%", e * 100.0))),
                    // Serial starts no worker: nothing to show, in any format.
                    if p.mode == Mode::Serial {
                        Cell::two("", "–")
                    } else {
                        Cell::two(format!("{:.9}", p.startup_s), human_time(p.startup_s))
                    },
                    Cell::text(p.validated.to_string()),
                    Cell::text(p.exit_code.to_string()),
                    Cell::text(self.partial.to_string()),
                    Cell::text(p.numa_nodes.map_or(String::new(), |n| n.to_string())),
                    Cell::text(p.suspect.join(";")),
                ]
            })
            .collect();
        let notes = if self.partial {
            vec!["**Partial:** a signal stopped the sweep; the table holds only the points that finished.".to_string()]
        } else {
            Vec::new()
        };
        Table { columns: SWEEP_COLUMNS.to_vec(), rows, notes }
    }
}

const ISOLATION_COLUMNS: [Column; 8] = [
    both("mode", "mode", false),
    both("fault", "fault", false),
    both("survived", "run survived", false),
    both("correct", "result", false),
    both("detected", "detected", false),
    both("lost", "lost", false),
    both("retry", "`--on-fault retry`", false),
    csv_only("recovered"),
];

const TOPOLOGY_COLUMNS: [Column; 5] = [
    both("node", "node", true),
    both("cpus", "CPUs", false),
    both("mem_total_bytes", "memory", true),
    both("mem_free_bytes", "free", true),
    both("distances", "distances", false),
];

impl Exportable for TopologyReport {
    fn table(&self) -> Table {
        let rows = self
            .numa
            .nodes
            .iter()
            .map(|n| {
                let d: Vec<String> = n.distances.iter().map(|d| d.to_string()).collect();
                vec![
                    Cell::text(n.id.to_string()),
                    Cell::text(crate::machine::cpus::format_cpu_list(&n.cpus)),
                    Cell::two(n.mem_total.to_string(), crate::units::human_bytes(n.mem_total)),
                    Cell::two(n.mem_free.to_string(), crate::units::human_bytes(n.mem_free)),
                    Cell::text(d.join(" ")),
                ]
            })
            .collect();
        Table { columns: TOPOLOGY_COLUMNS.to_vec(), rows, notes: Vec::new() }
    }
}

impl Exportable for IsolationReport {
    fn table(&self) -> Table {
        let rows = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    Cell::text(r.label()),
                    Cell::text(r.fault.clone()),
                    Cell::two(r.survived.to_string(), if r.survived { "yes" } else { "**no**" }),
                    Cell::two(
                        r.correct.map_or(String::new(), |c| c.to_string()),
                        match r.correct {
                            Some(true) => "correct",
                            Some(false) => "**wrong**",
                            None => "none",
                        },
                    ),
                    Cell::text(r.detected.clone()),
                    Cell::text(r.lost.clone()),
                    Cell::text(r.retry.clone()),
                    Cell::text(r.recovered.to_string()),
                ]
            })
            .collect();
        Table { columns: ISOLATION_COLUMNS.to_vec(), rows, notes: self.summary.clone() }
    }
}
