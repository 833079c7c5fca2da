//! The reports for people: a STREAM-style table for a run, one table per
//! group for a sweep, the fault matrix for the isolation experiment.

use std::io::{self, Write};

use crate::report::RunReport;
use crate::report::isolation::IsolationReport;
use crate::report::sweep::{SweepPoint, SweepReport, procs_over_threads};
use crate::units::{human_bytes, human_time, page_size, plural, thousands};
use crate::vocab::Mode;

/// Terminal styling.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Style {
    /// Whether to emit ANSI colour codes.
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
    /// Bold.
    pub(crate) fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
    /// Green (success).
    pub(crate) fn good(&self, text: &str) -> String {
        self.paint("32", text)
    }
    /// Red (failure).
    pub(crate) fn bad(&self, text: &str) -> String {
        self.paint("1;31", text)
    }
    /// Yellow (attention).
    pub(crate) fn note(&self, text: &str) -> String {
        self.paint("33", text)
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|f| f.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

/// Writes the whole report of a run.
pub(crate) fn write_run(out: &mut dyn Write, r: &RunReport, style: Style) -> io::Result<()> {
    let c = &r.config;
    let workers = match c.mode {
        Mode::Procs => format!("{} worker process{}", c.procs, if c.procs == 1 { "" } else { "es" }),
        Mode::Threads => format!("{} worker thread{}", c.procs, plural(c.procs as u64)),
        Mode::Serial => "1 thread".to_string(),
    };
    let ops: Vec<&str> = c.ops.0.iter().map(|o| o.name()).collect();
    writeln!(
        out,
        "{} · {} mode · {workers} ({}) · {} {} · {}, {} stores · {}, {} pages",
        style.bold(&format!("vecpar {}", r.about.vecpar_version)),
        c.mode,
        c.procs_source,
        ops.join(", "),
        c.dtype,
        c.simd,
        c.stores,
        c.shm,
        page_size(c.page_bytes)
    )?;
    writeln!(
        out,
        "arrays: 3 × {} ({} elements each) · {} timed round{} after {} warm-up{} · seed {}",
        human_bytes(c.footprint_bytes / 3),
        thousands(c.len as u64),
        c.runs,
        plural(c.runs),
        c.warmup,
        if ops.len() > 1 { " per kernel" } else { "" },
        c.seed
    )?;
    writeln!(out)?;

    writeln!(out, "{}", style.bold("Function    Best Rate GB/s     Avg time     Min time     Max time"))?;
    for k in &r.kernels {
        let name = format!("{}:", capitalise(k.op.name()));
        match &k.summary {
            Some(s) => writeln!(
                out,
                "{name:<12}{:>14.1}  {:>11.6}  {:>11.6}  {:>11.6}",
                s.best_gbps, s.mean_s, s.min_s, s.max_s
            )?,
            None => writeln!(out, "{name:<12}{:>14}", "no round")?,
        }
    }
    for k in &r.kernels {
        let Some(s) = &k.summary else { continue };
        let iqr_pct = k.noise.as_ref().map_or(0.0, |n| n.iqr_pct);
        let prefix = if r.kernels.len() > 1 { format!("{}: ", k.op) } else { String::new() };
        writeln!(
            out,
            "{prefix}median {:.1} GB/s ({}) · IQR {} ({:.1}% of the median) · STREAM counting: {} arrays × {} × {} B, 10^9 B/GB",
            s.median_gbps,
            human_time(s.median_s),
            human_time(s.iqr_s),
            iqr_pct,
            k.op.arrays_moved(),
            thousands(c.len as u64),
            c.dtype.size()
        )?;
        if let Some(d) = &k.dot {
            writeln!(
                out,
                "{prefix}s = Σ a·b = {} (compensated reference {}: error {:.2e}, {} the reassociation bound {:.2e})",
                d.value,
                d.reference,
                d.error,
                if d.within_bound { "within" } else { "BEYOND" },
                d.bound
            )?;
        }
    }
    writeln!(out, "{}", "-".repeat(66))?;
    match r.first_mismatch() {
        None if r.validated() => {
            let last = r.kernels.last().and_then(|k| k.validation.as_ref());
            let digests = last.map_or(String::new(), |v| match &v.a_digest {
                Some(a) => format!("c digest {}, a digest {a}", v.c_digest),
                None => format!("c digest {}", v.c_digest),
            });
            writeln!(
                out,
                "{} a, b and c match the scalar oracle at all {} elements{} ({digests})",
                style.good("Solution validates:"),
                thousands(c.len as u64),
                if r.kernels.len() > 1 { " after every kernel" } else { "" }
            )?
        }
        Some((k, v)) => {
            let m = v.mismatch.expect("a mismatch");
            writeln!(
                out,
                "{} after {}: {}[{}] = {}, expected {}{}",
                style.bad("Validation FAILED"),
                k.op,
                m.array,
                m.index,
                m.got,
                m.expected,
                v.mismatch_owner.map(|o| format!(" (in worker {o}'s chunk)")).unwrap_or_default()
            )?
        }
        None => match r.kernels.iter().find(|k| k.dot.as_ref().is_some_and(|d| !d.within_bound)) {
            Some(k) => writeln!(out, "{} {}'s sum lies beyond its error bound", style.bad("Validation FAILED:"), k.op)?,
            None => writeln!(out, "{} the run stopped before validation", style.bad("Not validated:"))?,
        },
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

/// Writes a sweep: one table per (length, kernel, type, SIMD level), then
/// how processes compare with threads at each worker count.
pub(crate) fn write_sweep(out: &mut dyn Write, r: &SweepReport, style: Style) -> io::Result<()> {
    let Some(first) = r.runs.first() else {
        return writeln!(out, "The sweep has no points.");
    };
    let repeats = r.points.iter().map(|p| p.repeats).max().unwrap_or(1);
    writeln!(
        out,
        "{} · {} timed rounds per run after {} warm-up{} · {} · {} CPUs allowed (of {}){}",
        style.bold(&format!("vecpar {} sweep", r.about.vecpar_version)),
        first.config.runs,
        first.config.warmup,
        if repeats > 1 { format!(" · each point run {repeats} times (medians)") } else { String::new() },
        first.config.shm,
        r.cpus,
        r.about.host.allowed_cpus,
        if r.partial { style.bad(" · INTERRUPTED: the points finished so far") } else { String::new() }
    )?;
    let mut groups: Vec<(usize, crate::kernel::Op, crate::kernel::Dtype, crate::kernel::Simd)> = Vec::new();
    for p in &r.points {
        if !groups.contains(&(p.len, p.op, p.dtype, p.simd)) {
            groups.push((p.len, p.op, p.dtype, p.simd));
        }
    }
    for (len, op, dtype, simd) in groups {
        let rows: Vec<&SweepPoint> =
            r.points.iter().filter(|p| p.len == len && p.op == op && p.dtype == dtype && p.simd == simd).collect();
        writeln!(out)?;
        let stores = rows.first().map_or("", |p| p.stores.name());
        writeln!(
            out,
            "{}",
            style.bold(&format!("len {} · {op} · {dtype} · {simd} · {stores} stores", thousands(len as u64)))
        )?;
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
        let ratios = procs_over_threads(&rows);
        if !ratios.is_empty() {
            let parts: Vec<String> =
                ratios.iter().map(|(n, q)| format!("{n} worker{} {q:.2}×", plural(*n as u64))).collect();
            writeln!(out, "  processes ÷ threads (median GB/s): {}", parts.join(" · "))?;
        }
    }
    Ok(())
}

/// Writes the isolation experiment: one row per (mode, fault), then what
/// the rows show.
pub(crate) fn write_isolation(out: &mut dyn Write, r: &IsolationReport, style: Style) -> io::Result<()> {
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
            "  {:<8} {:<14} {:<9} {:<8} {}",
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
        writeln!(out, "  {:<8} {:<14} {:<9} {:<8} {}", row.mode.name(), row.fault, survived, result, row.detected)?;
        writeln!(out, "  {:<8} {:<14} {:<9} {:<8} lost: {}", "", "", "", "", row.lost)?;
        let retry = if row.recovered { style.good(&row.retry) } else { row.retry.clone() };
        writeln!(out, "  {:<8} {:<14} {:<9} {:<8} retry: {}", "", "", "", "", retry)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_and_wrapping() {
        assert_eq!(Style { color: false }.bold("x"), "x");
        assert_eq!(Style { color: true }.bold("x"), "\x1b[1mx\x1b[0m");
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert_eq!(capitalise("nstream"), "Nstream");
    }
}
