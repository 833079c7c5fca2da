//! The coordinator's top level: parse, resolve, open every destination,
//! run, present, exit code. `src/main.rs` only calls [`coordinator_main`].
//!
//! Errors leave here as one line: `vecpar-coord: error: ` and the error
//! with its causes (`anyhow`'s `{:#}`), or clap's own short block for what
//! clap detects (the missing argument's name, the possible values, "a
//! similar argument exists").
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, OutputArgs, Shell};
use crate::config::{RunConfig, SweepPlan};
use crate::diag;
use crate::error::{EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, Error};
use crate::export::{Destination, ExportableDyn, Format, OutputPlan};
use crate::machine::{HostInfo, Machine};
use crate::output::progress::Progress;
use crate::output::{Style, style, table};
use crate::report::{Provenance, RunReport};
use crate::warnings::Warning;

/// Runs `vecpar-coord` with this process's arguments.
pub(crate) fn coordinator_main() -> ExitCode {
    diag::set_program("vecpar-coord");
    if let Err(e) = crate::signals::install() {
        diag::error(format!("cannot set up signal handling: {e}"));
        return ExitCode::from(EXIT_RUNTIME);
    }
    if !crate::signals::die_with_parent_if_asked() {
        return ExitCode::from(EXIT_RUNTIME);
    }
    if let Err(e) = crate::shm::catch_bus_errors() {
        diag::error(format!("cannot set up the SIGBUS handler: {e}"));
        return ExitCode::from(EXIT_RUNTIME);
    }
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return clap_exit(e),
    };
    let arguments = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    match run_cli(cli, arguments) {
        Ok(code) => ExitCode::from(code),
        Err(e) => ExitCode::from(report_error(e)),
    }
}

/// Prints an error the way users read it; returns its exit code.
fn report_error(e: Error) -> u8 {
    let code = e.exit_code();
    match &e {
        Error::Interrupted(i) => diag::line("", format!("{i}; workers stopped and reaped, shared memory released")),
        _ => diag::error(format!("{:#}", anyhow::Error::from(e))),
    }
    code
}

/// Shows clap's help or version (exit 0), or its error (exit 2) as clap
/// renders it, after the program's name.
pub(crate) fn clap_exit(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = std::io::stdout().lock().write_all(e.render().to_string().as_bytes());
            ExitCode::from(EXIT_OK)
        }
        _ => {
            let text = e.render().to_string();
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            diag::raw(&format!("{}: error: {}", diag::program(), text.trim_end()));
            diag::raw("\n");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn run_cli(cli: Cli, arguments: Vec<String>) -> Result<u8, Error> {
    match cli.command {
        Some(Command::Completions { shell }) => {
            Destination::open(std::path::Path::new("-"), "completions")?.write(&completions(shell))?;
            Ok(EXIT_OK)
        }
        Some(Command::Sweep(args)) => {
            let plan = OutputPlan::resolve(&cli.output, args.plot.as_deref())?;
            let machine = Machine::detect();
            let sweep = SweepPlan::resolve(&args, &machine)?;
            let exports = open_exports(&plan)?;
            let plot = args.plot.as_deref().map(|p| Destination::open(p, "--plot")).transpose()?;
            let progress = Progress::new(sweep.points.len() * sweep.repeat, cli.output.quiet);
            let result = crate::study::sweep::run(&sweep, &machine, arguments, |i, _, what| progress.step(i, what));
            progress.finish();
            let (report, interrupted) = result?;
            let warnings = report.warnings.clone();
            present(&report, &warnings, &cli.output, &plan, exports, |out, s| table::write_sweep(out, &report, s))?;
            if let Some(dest) = plot {
                let format = crate::plot::ImageFormat::of(dest.path()).expect("checked by OutputPlan");
                match crate::plot::render(&crate::output::chart::sweep_chart(&report), format) {
                    Ok(bytes) => dest.write(&bytes)?,
                    Err(e) => return Err(Error::runtime_from(format!("--plot {}", dest.path().display()), e)),
                }
            }
            if let Some(i) = interrupted {
                diag::line("", format!("{i}: the sweep stopped; the table and exports hold the points finished"));
                return Ok(i.exit_code());
            }
            Ok(report.points.iter().map(|p| p.exit_code).max().unwrap_or(EXIT_OK))
        }
        Some(Command::Isolation(args)) => {
            crate::config::check_isolation(&args)?;
            let plan = OutputPlan::resolve(&cli.output, None)?;
            let machine = Machine::detect();
            let exports = open_exports(&plan)?;
            let progress = Progress::new(args.modes.len() * args.faults.len() * 2, cli.output.quiet);
            let result = crate::study::isolation::run(&args, &machine, arguments, |i, _, what| progress.step(i, what));
            progress.finish();
            let report = result?;
            present(&report, &[], &cli.output, &plan, exports, |out, s| table::write_isolation(out, &report, s))?;
            Ok(EXIT_OK)
        }
        None => {
            let plan = OutputPlan::resolve(&cli.output, None)?;
            crate::launcher::refuse_without_mpi()?;
            let machine = Machine::detect();
            let (cfg, warnings) = RunConfig::resolve(&cli.run, &machine)?;
            let exports = open_exports(&plan)?;
            let about = Provenance::new("run", arguments, HostInfo::of(&machine));
            let report = crate::run::run(&cfg, about, warnings)?;
            present(&report, &report.warnings, &cli.output, &plan, exports, |out, s| {
                table::write_run(out, &report, s)
            })?;
            report_failures(&report);
            Ok(report.exit_code)
        }
    }
}

/// Opens every export's destination, before any work.
fn open_exports(plan: &OutputPlan) -> Result<Vec<(Destination, Format)>, Error> {
    plan.exports.iter().map(|(path, format)| Ok((Destination::open(path, format.flag())?, *format))).collect()
}

/// The completion script for `shell` (built in memory: clap_complete
/// panics when its writer fails, and stdout may be a closed pipe).
fn completions(shell: Shell) -> Vec<u8> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "vecpar-coord", &mut script);
    script
}

/// Shows a result: warnings on stderr, the table on stdout (unless an
/// export writes there), then the exports.
fn present(
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
        if let Err(e) = write_table(&mut out, style(output.color)).and_then(|_| out.flush())
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(Error::runtime_from("cannot write to stdout", e));
        }
    }
    for (dest, format) in exports {
        dest.write(&crate::export::render(item, format))?;
    }
    Ok(())
}

/// One stderr line per lost worker and for a failed validation.
fn report_failures(report: &RunReport) {
    for f in report.faults.iter().filter(|f| f.action.stopped_the_run()) {
        diag::line("worker lost", f);
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
