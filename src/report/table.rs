//! The report for people: a STREAM-style table, the phases, the workers,
//! and what went wrong.
#![forbid(unsafe_code)]

use std::io::{self, Write};

use super::RunReport;
use crate::mode::Mode;
use crate::sysinfo::human_bytes;

/// Terminal styling.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// Whether to emit ANSI colour codes.
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
    /// Bold.
    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
    /// Green (success).
    pub fn good(&self, text: &str) -> String {
        self.paint("32", text)
    }
    /// Red (failure).
    pub fn bad(&self, text: &str) -> String {
        self.paint("1;31", text)
    }
    /// Yellow (attention).
    pub fn note(&self, text: &str) -> String {
        self.paint("33", text)
    }
}

/// Formats seconds with a unit that fits.
pub fn human_time(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

/// Groups digits: 1,000,000.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Writes the whole report.
pub fn write_report(out: &mut dyn Write, r: &RunReport, style: Style) -> io::Result<()> {
    let c = &r.config;
    let workers = match c.mode {
        Mode::Procs => format!("{} worker process{}", c.procs, if c.procs == 1 { "" } else { "es" }),
        Mode::Threads => format!("{} worker thread{}", c.procs, if c.procs == 1 { "" } else { "s" }),
        Mode::Serial => "1 thread".to_string(),
    };
    writeln!(
        out,
        "{} · {} mode · {workers} ({}) · {} {} · {}, {} stores · {}, {} pages",
        style.bold(&format!("vecpar {}", r.about.vecpar_version)),
        c.mode,
        c.procs_source,
        c.op,
        c.dtype,
        c.simd,
        c.stores,
        c.shm,
        if c.page_bytes >= 1 << 20 {
            format!("{} MiB", c.page_bytes >> 20)
        } else {
            format!("{} KiB", c.page_bytes >> 10)
        }
    )?;
    writeln!(
        out,
        "arrays: 3 × {} ({} elements each) · {} timed round{} after {} warm-up · seed {}",
        human_bytes(c.footprint_bytes / 3),
        thousands(c.len as u64),
        c.runs,
        if c.runs == 1 { "" } else { "s" },
        c.warmup,
        c.seed
    )?;
    writeln!(out)?;

    if let Some(s) = &r.summary {
        writeln!(out, "{}", style.bold("Function    Best Rate GB/s     Avg time     Min time     Max time"))?;
        let name = format!("{}:", capitalise(&c.op.to_string()));
        writeln!(out, "{name:<12}{:>14.1}  {:>11.6}  {:>11.6}  {:>11.6}", s.best_gbps, s.mean_s, s.min_s, s.max_s)?;
        let spread = if s.min_s > 0.0 { (s.max_s - s.min_s) / s.min_s * 100.0 } else { 0.0 };
        writeln!(
            out,
            "median {:.1} GB/s ({}) · spread (max − min) / min {:.1}% · STREAM counting: {} arrays × {} × {} B, 10^9 B/GB",
            s.median_gbps,
            human_time(s.median_s),
            spread,
            c.op.arrays_moved(),
            thousands(c.len as u64),
            c.dtype.size()
        )?;
    } else {
        writeln!(out, "No timed round completed.")?;
    }
    writeln!(out, "{}", "-".repeat(66))?;
    match &r.validation {
        Some(v) => match &v.mismatch {
            None => writeln!(
                out,
                "{} a, b and c match the scalar oracle at all {} elements (c digest {})",
                style.good("Solution validates:"),
                thousands(v.checked),
                v.c_digest
            )?,
            Some(m) => writeln!(
                out,
                "{} {}[{}] = {}, expected {}{}",
                style.bad("Validation FAILED:"),
                m.array,
                m.index,
                m.got,
                m.expected,
                v.mismatch_owner.map(|o| format!(" (in worker {o}'s chunk)")).unwrap_or_default()
            )?,
        },
        None => writeln!(out, "{} the run stopped before validation", style.bad("Not validated:"))?,
    }
    writeln!(out)?;

    let p = &r.phases;
    writeln!(
        out,
        "Phases: setup {} · spawn+attach {} · init {} · rounds {} · validation {} · teardown {} · total {}",
        human_time(p.setup_s),
        human_time(p.spawn_s),
        human_time(p.init_s),
        human_time(p.rounds_s),
        human_time(p.validate_s),
        human_time(p.teardown_s),
        human_time(p.total_s)
    )?;
    writeln!(out)?;

    writeln!(out, "{}", style.bold("Workers"))?;
    writeln!(
        out,
        "  {:>4}  {:>8}  {:<25}  {:>4}  {:<14}  {:>14}",
        "id", "pid", "elements", "cpu", "pinned", "median compute"
    )?;
    for w in &r.workers {
        let pinned = match (w.pin_cpu, w.pinned) {
            (None, _) => "no".to_string(),
            (Some(cpu), true) => format!("yes ({cpu})"),
            (Some(cpu), false) => format!("refused ({cpu})"),
        };
        let elements = if w.idle { "idle".to_string() } else { format!("{}..{}", w.start, w.end) };
        let pid = match w.tid {
            Some(tid) if c.mode != Mode::Procs => format!("t{tid}"),
            _ => w.pid.to_string(),
        };
        writeln!(
            out,
            "  {:>4}  {:>8}  {:<25}  {:>4}  {:<14}  {:>14}",
            w.id,
            pid,
            elements,
            w.cpu.map_or("-".into(), |c| c.to_string()),
            pinned,
            w.median_compute_s.map_or("-".into(), human_time)
        )?;
    }

    if !r.faults.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", style.bad("Faults"))?;
        for f in &r.faults {
            writeln!(out, "  {f}; detected after {}; {}", human_time(f.detected_after_s), f.action)?;
        }
    }
    if !r.retries.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", style.note("Retries"))?;
        for t in &r.retries {
            writeln!(
                out,
                "  worker {} (elements {}..{}): attempt {} (pid {}) repeated {} after: {}; cost {}",
                t.worker,
                t.range[0],
                t.range[1],
                t.attempt,
                t.new_pid,
                t.repeated,
                t.reason,
                human_time(t.cost_s)
            )?;
        }
    }
    Ok(())
}

/// Writes a sweep: one table per (length, op, SIMD level), then how
/// processes compare with threads at each worker count.
pub fn write_sweep(out: &mut dyn Write, r: &crate::sweep::SweepReport, style: Style) -> io::Result<()> {
    let Some(first) = r.runs.first() else {
        return writeln!(out, "The sweep has no points.");
    };
    let repeats = r.points.iter().map(|p| p.repeats).max().unwrap_or(1);
    writeln!(
        out,
        "{} · {} · {} timed rounds per run after {} warm-up{} · {} · {} CPUs allowed ({})",
        style.bold(&format!("vecpar {} sweep", r.about.vecpar_version)),
        first.config.dtype,
        first.config.runs,
        first.config.warmup,
        if repeats > 1 { format!(" · each point run {repeats} times (medians)") } else { String::new() },
        first.config.shm,
        crate::cpus::parse_cpu_list(&r.about.host.allowed_cpus).map_or(0, |l| l.len()),
        r.about.host.allowed_cpus
    )?;
    let mut groups: Vec<(usize, crate::kernel::Op, crate::kernel::Simd)> = Vec::new();
    for p in &r.points {
        if !groups.contains(&(p.len, p.op, p.simd)) {
            groups.push((p.len, p.op, p.simd));
        }
    }
    for (len, op, simd) in groups {
        let rows: Vec<&crate::sweep::SweepPoint> =
            r.points.iter().filter(|p| p.len == len && p.op == op && p.simd == simd).collect();
        writeln!(out)?;
        let stores = rows.first().map_or("", |p| p.stores.name());
        writeln!(out, "{}", style.bold(&format!("len {} · {op} · {simd} · {stores} stores", thousands(len as u64))))?;
        let repeated = rows.iter().any(|p| p.repeats > 1);
        writeln!(
            out,
            "  {:<8} {:>7} {:>11} {:>13}{} {:>9} {:>11} {:>10}  validated",
            "mode",
            "workers",
            "best GB/s",
            "median GB/s",
            if repeated { format!(" {:>11}", "(min–max)") } else { String::new() },
            "speed-up",
            "efficiency",
            "start-up"
        )?;
        for p in &rows {
            writeln!(
                out,
                "  {:<8} {:>7} {:>11.1} {:>13.1}{} {:>9} {:>11} {:>10}  {}",
                p.mode.name(),
                p.procs,
                p.best_gbps,
                p.median_gbps,
                if repeated {
                    format!(" {:>11}", format!("{:.1}–{:.1}", p.median_gbps_min, p.median_gbps_max))
                } else {
                    String::new()
                },
                p.speedup.map_or("–".into(), |s| format!("{s:.2}×")),
                p.efficiency.map_or("–".into(), |e| format!("{:.0}%", e * 100.0)),
                if p.mode == Mode::Serial { "–".into() } else { human_time(p.startup_s) },
                if p.validated { style.good("yes") } else { style.bad(&format!("no (exit {})", p.exit_code)) }
            )?;
        }
        let group: Vec<crate::sweep::SweepPoint> = rows.iter().map(|p| (*p).clone()).collect();
        let ratios = crate::sweep::procs_over_threads(&group);
        if !ratios.is_empty() {
            let parts: Vec<String> =
                ratios.iter().map(|(n, q)| format!("{n} worker{} {q:.2}×", if *n == 1 { "" } else { "s" })).collect();
            writeln!(out, "  processes ÷ threads (median GB/s): {}", parts.join(" · "))?;
        }
    }
    Ok(())
}

/// Writes the isolation experiment: one row per (mode, fault), then what
/// the rows show.
pub fn write_isolation(out: &mut dyn Write, r: &crate::isolation::IsolationReport, style: Style) -> io::Result<()> {
    writeln!(
        out,
        "{} · {} workers · len {} · the fault hits worker 1 in round 1 · hang declared after --timeout {} s",
        style.bold(&format!("vecpar {} isolation experiment", r.about.vecpar_version)),
        r.procs,
        thousands(r.len as u64),
        r.timeout_s
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        style.bold(&format!(
            "  {:<8} {:<10} {:<9} {:<8} {}",
            "mode", "fault", "survived", "result", "detected · lost · --on-fault retry"
        ))
    )?;
    for row in &r.rows {
        let survived = if row.survived { style.good("yes") } else { style.bad("no ") };
        let result = match row.correct {
            Some(true) => style.good("correct"),
            Some(false) => style.bad("WRONG  "),
            None => "none   ".to_string(),
        };
        writeln!(out, "  {:<8} {:<10} {:<9} {:<8} {}", row.mode.name(), row.fault, survived, result, row.detected)?;
        writeln!(out, "  {:<8} {:<10} {:<9} {:<8} lost: {}", "", "", "", "", row.lost)?;
        let retry = if row.recovered { style.good(&row.retry) } else { row.retry.clone() };
        writeln!(out, "  {:<8} {:<10} {:<9} {:<8} retry: {}", "", "", "", "", retry)?;
    }
    writeln!(out)?;
    writeln!(out, "{}", style.bold("What it shows"))?;
    for s in &r.summary {
        for line in wrap(s, 100) {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(())
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("one line");
        if !last.is_empty() && last.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|f| f.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1_000_003), "1,000,003");
        assert_eq!(thousands(7), "7");
        assert_eq!(human_time(0.0025), "2.50 ms");
        assert_eq!(human_time(2.0), "2.000 s");
        assert_eq!(human_time(3e-6), "3.0 µs");
        assert_eq!(Style { color: false }.bold("x"), "x");
        assert_eq!(Style { color: true }.bold("x"), "\x1b[1mx\x1b[0m");
    }
}
