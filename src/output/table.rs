//! The reports for people: a STREAM-style table for a run, one table per
//! group for a sweep, the fault matrix for the isolation experiment.

use std::io::{self, Write};

use crate::fault::FaultRecord;
#[cfg(feature = "mpi")]
use crate::report::MpiRecord;
use crate::report::isolation::IsolationReport;
use crate::report::sweep::{SweepPoint, SweepReport, procs_over_threads};
use crate::report::{RetryRecord, RunReport, WorkerRecord};
use crate::units::{human_bytes, human_time, page_size, plural, thousands};
use crate::vocab::Mode;

/// Terminal styling.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Style {
    /// Whether to emit ANSI colour codes.
    pub color: bool,
    /// The unit rates are shown in.
    pub rate: crate::units::Rate,
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
    let workers = c.mode.workers(c.procs);
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
        if c.mode.is_rank() { "MPI shared window".to_string() } else { c.shm.to_string() },
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
    if let Some(n) = &r.numa {
        let allowed = crate::machine::cpus::parse_cpu_list(&r.about.host.allowed_cpus).unwrap_or_default();
        // An MPI job's ranks on this host may each have CPUs of their own.
        #[cfg(feature = "mpi")]
        let allowed = match &r.mpi {
            Some(m) => {
                let here = m.per_rank.iter().filter(|p| p.host == r.about.host.hostname);
                let mut all: Vec<usize> = here
                    .flat_map(|p| crate::machine::cpus::parse_cpu_list(&p.cpus).unwrap_or_default())
                    .chain(allowed)
                    .collect();
                all.sort_unstable();
                all.dedup();
                all
            }
            None => allowed,
        };
        let control = match (n.window_part, n.control_node) {
            (Some(_), _) => String::new(), // an MPI window has no control block
            (None, node) => format!(" · control block on node {}", node.map_or("?".to_string(), |n| n.to_string())),
        };
        writeln!(
            out,
            "{} · --mem-policy {}{control}{}",
            n.topology.summary(&allowed),
            c.memory.policy,
            if n.sampled_every > 1 { format!(" · every {}th page asked", n.sampled_every) } else { String::new() }
        )?;
    }
    #[cfg(feature = "mpi")]
    if let Some(m) = &r.mpi {
        let per_node: Vec<String> = m.ranks_per_node.iter().map(|n| n.to_string()).collect();
        writeln!(
            out,
            "MPI: {} rank{} on {} node{} ({} per node) · each rank {} · {} (launched with {})",
            m.ranks,
            plural(m.ranks as u64),
            m.nodes,
            plural(m.nodes as u64),
            per_node.join(", "),
            if c.mode.is_rank() { "computes its chunk of its node's window" } else { "conducts its own workers" },
            m.library,
            m.launcher
        )?;
    }
    writeln!(out)?;

    let rate = style.rate;
    let head =
        format!("Function    {:>14}     Avg time     Min time     Max time", format!("Best Rate {}", rate.label()));
    writeln!(out, "{}", style.bold(&head))?;
    for k in &r.kernels {
        let name = format!("{}:", capitalise(k.op.name()));
        match &k.summary {
            Some(s) => writeln!(
                out,
                "{name:<12}{:>14}  {:>11.6}  {:>11.6}  {:>11.6}",
                rate.show(s.best_gbps),
                s.mean_s,
                s.min_s,
                s.max_s
            )?,
            None => writeln!(out, "{name:<12}{:>14}", "no round")?,
        }
    }
    for k in &r.kernels {
        let Some(s) = &k.summary else { continue };
        let iqr_pct = k.noise.as_ref().map_or(0.0, |n| n.iqr_pct);
        let prefix = if r.kernels.len() > 1 { format!("{}: ", k.op) } else { String::new() };
        let verdicts: Vec<&str> =
            k.noise.as_ref().map(|n| n.verdicts.iter().map(|v| v.name()).collect()).unwrap_or_default();
        let spread = if s.rounds < 2 {
            "one round: no spread to show".to_string()
        } else {
            format!(
                "mean {} ± {} · IQR {} ({:.1}% of the median) · {}",
                human_time(s.mean_s),
                human_time(s.stddev_s),
                human_time(s.iqr_s),
                iqr_pct,
                verdicts.join(", ")
            )
        };
        writeln!(
            out,
            "{prefix}median {} {} ({}) · {spread} · STREAM counting: {} arrays × {} × {} B, {}",
            rate.show(s.median_gbps),
            rate.label(),
            human_time(s.median_s),
            k.op.arrays_moved(),
            thousands(c.len as u64),
            c.dtype.size(),
            rate.counting()
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
                Some(a) => format!("c digest {}, a digest {a}; {}", v.c_digest, v.checked_by),
                None => format!("c digest {}; {}", v.c_digest, v.checked_by),
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

    #[cfg(feature = "mpi")]
    let ranks_shown = match &r.mpi {
        Some(m) => write_ranks(out, m, c.mode, style).map(|()| true)?,
        None => false,
    };
    #[cfg(not(feature = "mpi"))]
    let ranks_shown = false;
    if !ranks_shown {
        write_workers(out, &r.workers, r.numa.as_ref(), c.mode, style)?;
    }
    // Under MPI, every rank's faults and retries, each named by its rank.
    let own = [(None, r.faults.as_slice(), r.retries.as_slice())];
    #[cfg(feature = "mpi")]
    let ranks: Vec<(Option<usize>, &[FaultRecord], &[RetryRecord])> = match &r.mpi {
        Some(m) => m.per_rank.iter().map(|p| (Some(p.rank), p.faults.as_slice(), p.retries.as_slice())).collect(),
        None => own.to_vec(),
    };
    #[cfg(not(feature = "mpi"))]
    let ranks: Vec<(Option<usize>, &[FaultRecord], &[RetryRecord])> = own.to_vec();
    let who = |rank: Option<usize>| rank.map_or(String::new(), |r| format!("rank {r}: "));
    if ranks.iter().any(|(_, f, _)| !f.is_empty()) {
        writeln!(out)?;
        writeln!(out, "{}", style.bad("Faults"))?;
        for (rank, faults, _) in &ranks {
            for f in *faults {
                let when = match f.detected_after_s {
                    Some(t) => format!("detected {} after it stopped", human_time(t)),
                    None => format!("detected {} into its step", human_time(f.step_elapsed_s)),
                };
                writeln!(out, "  {}{f}; {when}; {}", who(*rank), f.action)?;
            }
        }
    }
    if ranks.iter().any(|(_, _, t)| !t.is_empty()) {
        writeln!(out)?;
        writeln!(out, "{}", style.note("Retries"))?;
        for (rank, _, retries) in &ranks {
            for t in *retries {
                writeln!(
                    out,
                    "  {}worker {} (elements {}..{}): attempt {} (pid {}) repeated {} after: {}; cost {}",
                    who(*rank),
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
    }
    Ok(())
}

/// The Workers section of a run on one machine.
fn write_workers(
    out: &mut dyn Write,
    workers: &[WorkerRecord],
    numa: Option<&crate::report::NumaRecord>,
    mode: Mode,
    style: Style,
) -> io::Result<()> {
    let c_mode = mode;
    writeln!(out, "{}", style.bold("Workers"))?;
    let pages_head = if numa.is_some() { "  ran on  pages (after the last round)" } else { "" };
    writeln!(
        out,
        "  {:>4}  {:>8}  {:<25}  {:>4}  {:<14}  {:>14}{pages_head}",
        "id", "pid", "elements", "cpu", "pinned", "median compute"
    )?;
    for w in workers {
        let pinned = match (w.pin_cpu, w.pinned) {
            (None, _) => "no".to_string(),
            (Some(cpu), true) => format!("yes ({cpu})"),
            (Some(cpu), false) => format!("refused ({cpu})"),
        };
        let elements = if w.idle { "idle".to_string() } else { format!("{}..{}", w.start, w.end) };
        let pid = match w.tid {
            Some(tid) if c_mode != Mode::Procs => format!("t{tid}"),
            _ => w.pid.to_string(),
        };
        let pages = numa.map(|n| numa_cells(n, w.id)).unwrap_or_default();
        writeln!(
            out,
            "  {:>4}  {:>8}  {:<25}  {:>4}  {:<14}  {:>14}{pages}",
            w.id,
            pid,
            elements,
            w.cpu.map_or("-".into(), |c| c.to_string()),
            pinned,
            w.median_compute_s.map_or("-".into(), human_time)
        )?;
    }

    Ok(())
}

/// A worker's NUMA cells: the nodes it ran on, and where its pages were
/// after the last round (else after the filling): `node 0: 100%`, or the
/// share on each node, with the node it was meant for marked.
fn numa_cells(n: &crate::report::NumaRecord, id: usize) -> String {
    let ran: Vec<String> = n.ran_on.get(id).map(|r| r.iter().map(|x| x.to_string()).collect()).unwrap_or_default();
    let ran = if ran.is_empty() { "-".to_string() } else { ran.join(",") };
    let placed = n.after_run.as_ref().or(n.after_init.as_ref()).and_then(|p| p.get(id));
    let pages = match placed {
        None => "unknown".to_string(),
        Some(p) => {
            let h = p.histogram();
            let total = h.pages().max(1) as f64;
            let mut parts: Vec<String> = h
                .nodes
                .iter()
                .map(|&(node, c)| {
                    let mark = if p.intended == Some(node) { "*" } else { "" };
                    format!("node {node}{mark}: {:.0}%", 100.0 * c as f64 / total)
                })
                .collect();
            if h.unknown > 0 {
                parts.push(format!("unknown: {:.0}%", 100.0 * h.unknown as f64 / total));
            }
            parts.join(", ")
        }
    };
    format!("  {ran:>6}  {pages}")
}

/// The Ranks section of an MPI job: where each rank ran, its share, its
/// workers.
#[cfg(feature = "mpi")]
fn write_ranks(out: &mut dyn Write, m: &MpiRecord, mode: Mode, style: Style) -> io::Result<()> {
    writeln!(out, "{}", style.bold("Ranks"))?;
    // Where each rank's part of its node's window is (--mode ranks, a NUMA
    // machine): asked by the rank that checks it.
    let parts = mode.is_rank() && m.per_rank.iter().any(|p| p.numa.is_some());
    let pages_head = if parts { "  ran on  pages (after the last round)" } else { "" };
    writeln!(
        out,
        "  {:>4}  {:<12}  {:>8}  {:<25}  {:<8}  {:<20}  {:>14}{pages_head}",
        "rank", "host", "pid", "elements", "cpus", "workers", "median compute"
    )?;
    for p in &m.per_rank {
        let workers = if mode.is_single() { "its own thread".into() } else { mode.workers(p.workers.len()) };
        let attempts: u32 = p.workers.iter().map(|w| w.attempts.saturating_sub(1)).sum();
        let workers = if attempts > 0 { format!("{workers}, {attempts} replaced") } else { workers };
        let pages = match (&p.numa, parts) {
            (Some(n), true) => numa_cells(n, 0),
            (None, true) => "       -  unknown".to_string(),
            _ => String::new(),
        };
        writeln!(
            out,
            "  {:>4}  {:<12}  {:>8}  {:<25}  {:<8}  {:<20}  {:>14}{pages}",
            p.rank,
            p.host,
            p.pid,
            format!("{}..{}", p.start, p.end),
            p.cpus,
            workers,
            p.median_compute_s.map_or("-".into(), human_time)
        )?;
    }
    Ok(())
}

/// Writes a sweep: one table per (length, kernel, type, SIMD level), then
/// how processes compare with threads at each worker count.
/// "2 CPUs allowed (of 0-1)", or with a quota "a 0.50-CPU quota (CPUs 0-1)".
fn allowed(r: &SweepReport) -> String {
    match r.cpu_quota {
        Some(q) => format!("a {q:.2}-CPU quota (CPUs {})", r.about.host.allowed_cpus),
        None => format!("{} CPU{} allowed (of {})", r.cpus, plural(r.cpus as u64), r.about.host.allowed_cpus),
    }
}

pub(crate) fn write_sweep(out: &mut dyn Write, r: &SweepReport, style: Style) -> io::Result<()> {
    let Some(first) = r.runs.first() else {
        return writeln!(out, "The sweep has no points.");
    };
    let repeats = r.points.iter().map(|p| p.repeats).max().unwrap_or(1);
    writeln!(
        out,
        "{} · {} timed rounds per run after {} warm-up{} · {} · {}{}",
        style.bold(&format!("vecpar {} sweep", r.about.vecpar_version)),
        first.config.runs,
        first.config.warmup,
        if repeats > 1 { format!(" · each point run {repeats} times (medians)") } else { String::new() },
        first.config.shm,
        allowed(r),
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
        let rate = style.rate;
        writeln!(
            out,
            "  {:<8} {:>7} {:>11} {:>13}{} {:>9} {:>11} {:>10}  validated",
            "mode",
            "workers",
            format!("best {}", rate.label()),
            format!("median {}", rate.label()),
            if repeated { format!(" {:>11}", "(min–max)") } else { String::new() },
            "speed-up",
            "efficiency",
            "start-up"
        )?;
        for p in &rows {
            writeln!(
                out,
                "  {:<8} {:>7} {:>11} {:>13}{} {:>9} {:>11} {:>10}  {}{}",
                p.mode.name(),
                p.procs,
                rate.show(p.best_gbps),
                rate.show(p.median_gbps),
                if repeated {
                    format!(" {:>11}", format!("{}–{}", rate.show(p.median_gbps_min), rate.show(p.median_gbps_max)))
                } else {
                    String::new()
                },
                p.speedup.map_or("–".into(), |s| format!("{s:.2}×")),
                p.efficiency.map_or("–".into(), |e| format!("{:.0}%", e * 100.0)),
                if p.mode == Mode::Serial { "–".into() } else { human_time(p.startup_s) },
                if p.validated { style.good("yes") } else { style.bad(&format!("no (exit {})", p.exit_code)) },
                if p.suspect.is_empty() {
                    String::new()
                } else {
                    style.bad(&format!("  ⚠ {}", p.suspect.join(", ")))
                }
            )?;
        }
        let ratios = procs_over_threads(&rows);
        if !ratios.is_empty() {
            let parts: Vec<String> = ratios
                .iter()
                .map(|q| {
                    let spread = match q.range {
                        Some((lo, hi)) if q.within_noise() => format!(" [{lo:.2}–{hi:.2}], within noise"),
                        Some((lo, hi)) => format!(" [{lo:.2}–{hi:.2}]"),
                        None => String::new(),
                    };
                    format!("{} worker{} {:.2}×{spread}", q.workers, plural(q.workers as u64), q.ratio)
                })
                .collect();
            let how = if ratios.iter().any(|q| q.range.is_some()) {
                "median rates; [min–max over the repetitions]"
            } else {
                "median rates of one run each: sweep --repeat gives their spread"
            };
            writeln!(out, "  processes ÷ threads ({how}): {}", parts.join(" · "))?;
        }
    }
    Ok(())
}

/// Writes the isolation experiment: one row per (mode, fault), then what
/// the rows show.
/// `vecpar-coord topology`: what vecpar sees of this machine.
pub(crate) fn write_topology(
    out: &mut dyn Write,
    r: &crate::report::topology::TopologyReport,
    style: Style,
) -> io::Result<()> {
    let h = &r.about.host;
    writeln!(out, "{}", style.bold(&format!("{} · {} · {}", h.hostname, h.cpu_model, h.kernel)))?;
    let quota = r
        .cpu_quota
        .as_ref()
        .map_or(String::new(), |q| format!(" · CPU quota {:.2} CPUs ({})", q.cpus(), q.file.display()));
    let set_by = match &r.cpus_set_by {
        crate::machine::CpusSetBy::Nothing => "nothing narrows them".to_string(),
        other => format!("from {other}"),
    };
    writeln!(out, "CPUs: {} of {} online may be used ({set_by}){quota}", h.allowed_cpus, h.online_cpus)?;
    writeln!(out, "SIMD: {}", r.simd.join(", "))?;
    let caches: Vec<String> = h
        .caches
        .iter()
        .map(|c| format!("L{} {} {} (CPUs {})", c.level, c.kind.to_lowercase(), human_bytes(c.bytes), c.shared_with))
        .collect();
    writeln!(out, "caches of CPU 0: {}", caches.join(", "))?;
    writeln!(out)?;
    let allowed = crate::machine::cpus::parse_cpu_list(&h.allowed_cpus).unwrap_or_default();
    writeln!(out, "{}", style.bold(&r.numa.summary(&allowed)))?;
    if r.numa.known {
        let ids: Vec<String> = r.numa.nodes.iter().map(|n| format!("{:>5}", n.id)).collect();
        writeln!(out, "  distances  {}", ids.join(""))?;
        for n in &r.numa.nodes {
            let d: Vec<String> = n.distances.iter().map(|d| format!("{d:>5}")).collect();
            writeln!(
                out,
                "  node {:<4}  {}   free {} of {}",
                n.id,
                d.join(""),
                human_bytes(n.mem_free),
                human_bytes(n.mem_total)
            )?;
        }
        let mems = crate::machine::cpus::format_cpu_list(&r.numa.mems_allowed);
        writeln!(out, "  memory may be allocated on node{} {mems}", plural(r.numa.mems_allowed.len() as u64))?;
    }
    writeln!(
        out,
        "  automatic NUMA balancing {} · memory policy {}",
        if r.numa_balancing { "on" } else { "off" },
        r.mem_policy.as_deref().unwrap_or("default")
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "pages: {} base{} · huge pages {} in the pool, {} free",
        page_size(r.page_bytes),
        r.huge_page_bytes.map_or(String::new(), |b| format!(", {} huge", page_size(b))),
        r.huge_pages.0,
        r.huge_pages.1
    )?;
    writeln!(
        out,
        "memory: {} available{} · /dev/shm {} free",
        r.memory_available.map_or("?".into(), human_bytes),
        r.memory_limit.as_ref().map_or(String::new(), |m| format!(
            " · cgroup limit {} ({})",
            human_bytes(m.limit),
            m.file.display()
        )),
        r.shm_free.map_or("?".into(), human_bytes)
    )
}

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
            "  {:<9} {:<14} {:<9} {:<8} {}",
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
        writeln!(out, "  {:<9} {:<14} {:<9} {:<8} {}", row.label(), row.fault, survived, result, row.detected)?;
        writeln!(out, "  {:<9} {:<14} {:<9} {:<8} lost: {}", "", "", "", "", row.lost)?;
        let retry = if row.recovered { style.good(&row.retry) } else { row.retry.clone() };
        writeln!(out, "  {:<9} {:<14} {:<9} {:<8} retry: {}", "", "", "", "", retry)?;
    }
    if r.rows.iter().any(|row| row.correct.is_none()) {
        writeln!(
            out,
            "  (result none: the run stopped or died before validation, so nothing was checked; a stopped run \
             says why in its row)"
        )?;
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
        assert_eq!(Style { color: false, rate: Default::default() }.bold("x"), "x");
        assert_eq!(Style { color: true, rate: Default::default() }.bold("x"), "\x1b[1mx\x1b[0m");
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert_eq!(capitalise("nstream"), "Nstream");
    }
}
