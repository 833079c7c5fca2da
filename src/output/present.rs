//! Showing what a run found: warnings, the table, the exports, the lines
//! that say what failed, and errors as one line — for a run on its own and
//! for rank 0 of an MPI job alike.
#![forbid(unsafe_code)]

use std::io::Write;

use crate::cli::OutputArgs;
use crate::diag;
use crate::error::Error;
use crate::export::{Destination, ExportableDyn, Format, OutputPlan};
use crate::output::{Style, style};
use crate::report::RunReport;
use crate::warnings::Warning;

/// Prints an error the way users read it; returns its exit code.
pub(crate) fn report_error(e: Error) -> u8 {
    let code = e.exit_code();
    match &e {
        Error::Interrupted(i) => {
            let meaning = crate::launcher::signal_meaning(i.0).map(|m| format!(" ({m})")).unwrap_or_default();
            diag::line("", format!("{i}{meaning}; workers stopped and reaped, shared memory released"))
        }
        _ => diag::error(format!("{:#}", anyhow::Error::from(e))),
    }
    code
}

/// Shows a result: warnings on stderr, the table on stdout (unless an
/// export writes there), then the exports.
pub(crate) fn present(
    item: &dyn ExportableDyn,
    warnings: &[Warning],
    output: &OutputArgs,
    plan: &OutputPlan,
    exports: Vec<(Destination, Format)>,
    write_table: impl FnOnce(&mut dyn Write, Style) -> std::io::Result<()>,
) -> Result<(), Error> {
    // Warnings first: they say how to read what follows. What was removed
    // from /dev/shm is said even under -q.
    for w in warnings.iter().filter(|w| !output.quiet || w.shown_when_quiet()) {
        diag::line(if w.is_note() { "note" } else { "warning" }, w);
    }
    if plan.table {
        let mut out = std::io::stdout().lock();
        if let Err(e) = write_table(&mut out, style(output.color, output.units)).and_then(|_| out.flush())
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(Error::runtime_from("cannot write to stdout", e));
        }
    }
    for (dest, format) in exports {
        dest.write(&crate::export::render(item, format, output.units))?;
    }
    Ok(())
}

/// One stderr line per lost worker and (with `validation`) for a failed
/// validation.
pub(crate) fn report_failures(report: &RunReport, validation: bool) {
    for f in report.faults.iter().filter(|f| f.action.stopped_the_run()) {
        diag::line("worker lost", f);
    }
    if !validation {
        return;
    }
    if let Some((k, v)) = report.first_mismatch()
        && let Some(m) = v.mismatch
    {
        diag::line(
            "validation failed",
            format!(
                "after {}: {}[{}] = {}, expected {}{}",
                k.op,
                m.array,
                m.index,
                m.got,
                m.expected,
                v.mismatch_owner.map(|o| format!(" (in worker {o}'s chunk)")).unwrap_or_default()
            ),
        );
    }
    for k in report.kernels.iter().filter(|k| k.dot.as_ref().is_some_and(|d| !d.within_bound)) {
        if let Some(d) = &k.dot {
            diag::line(
                "validation failed",
                format!(
                    "{}: {} lies {:.2e} from the reference {}, beyond the bound {:.2e}",
                    k.op, d.value, d.error, d.reference, d.bound
                ),
            );
        }
    }
}
