//! The coordinator's top level: parse, run, print, export, exit code.
//! `src/main.rs` only calls [`coordinator_main`].
#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, ColorChoice, Command, OutputArgs, Shell};
use crate::config::RunConfig;
use crate::error::{EXIT_OK, EXIT_USAGE, Error};
use crate::report::RunReport;
use crate::report::export::{self, Exportable, Format};
use crate::report::progress::Progress;
use crate::report::table::{self, Style};

/// Runs `vecpar-coord` with this process's arguments.
pub fn coordinator_main() -> ExitCode {
    if let Err(e) = crate::signals::install() {
        eprintln!("vecpar-coord: error: cannot set up signal handling: {e}");
        return ExitCode::from(crate::error::EXIT_RUNTIME);
    }
    let arguments: Vec<String> = std::env::args().collect();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(e, "vecpar-coord"),
    };
    let code = match run_cli(cli, arguments) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vecpar-coord: error: {e}");
            e.exit_code()
        }
    };
    ExitCode::from(code)
}

/// Prints a clap error as one line (help and version as they are) and
/// returns the exit code.
pub fn clap_exit(e: clap::Error, program: &str) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(EXIT_OK)
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid arguments");
            let first = first.trim_start_matches("error: ");
            eprintln!("{program}: error: {first} (see {program} --help)");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn run_cli(cli: Cli, arguments: Vec<String>) -> Result<u8, Error> {
    match cli.command {
        Some(Command::Completions { shell }) => {
            match export::write_to(std::path::Path::new("-"), &completions(shell)) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(Error::runtime("cannot write to stdout", e))
                }
                _ => Ok(EXIT_OK),
            }
        }
        Some(Command::Sweep(args)) => {
            check_exports(&cli.output)?;
            let progress = Progress::new(crate::sweep::plan(&args)?.len() * args.repeat, cli.output.quiet);
            let report = crate::sweep::run(&args, arguments, |i, _, what| progress.step(i, what));
            progress.finish();
            let report = report?;
            present(&report, &report.warnings, &cli.output, |out, style| table::write_sweep(out, &report, style))?;
            if let Some(path) = &args.plot {
                crate::plot::draw(&crate::sweep::chart(&report), path).map_err(|e| Error::Runtime(e.to_string()))?;
            }
            Ok(report.points.iter().map(|p| p.exit_code).max().unwrap_or(EXIT_OK))
        }
        Some(Command::Isolation(args)) => {
            check_exports(&cli.output)?;
            let progress = Progress::new(args.modes.len() * args.faults.len() * 2, cli.output.quiet);
            let report = crate::isolation::run(&args, arguments, |i, _, what| progress.step(i, what));
            progress.finish();
            let report = report?;
            present(&report, &[], &cli.output, |out, style| table::write_isolation(out, &report, style))?;
            Ok(EXIT_OK)
        }
        None => {
            check_exports(&cli.output)?;
            let cfg = RunConfig::resolve(&cli.run, arguments)?;
            let report = crate::mode::run(&cfg)?;
            present(&report, &report.warnings, &cli.output, |out, style| table::write_report(out, &report, style))?;
            report_failures(&report);
            Ok(report.exit_code)
        }
    }
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

fn check_exports(output: &OutputArgs) -> Result<(), Error> {
    let to_stdout = [&output.export_json, &output.export_csv, &output.export_markdown]
        .iter()
        .filter(|p| p.as_deref().is_some_and(export::is_stdout))
        .count();
    if to_stdout > 1 {
        return Err(Error::Usage("only one --export-* may write to stdout (-); give the others a file".into()));
    }
    Ok(())
}

/// The terminal style for stdout.
pub fn style(choice: ColorChoice) -> Style {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    let color = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => !no_color && !dumb && std::io::stdout().is_terminal(),
    };
    Style { color }
}

/// Shows a result: warnings on stderr, the table on stdout (unless an
/// export writes there), then the exports.
fn present(
    item: &dyn Exportable,
    warnings: &[String],
    output: &OutputArgs,
    table: impl FnOnce(&mut dyn Write, Style) -> std::io::Result<()>,
) -> Result<(), Error> {
    // Warnings first: they say how to read what follows.
    if !output.quiet {
        for w in warnings {
            eprintln!("vecpar-coord: warning: {w}");
        }
    }
    let exports: Vec<(PathBuf, Format)> = [
        (output.export_json.clone(), Format::Json),
        (output.export_csv.clone(), Format::Csv),
        (output.export_markdown.clone(), Format::Markdown),
    ]
    .into_iter()
    .filter_map(|(p, f)| p.map(|p| (p, f)))
    .collect();
    if !exports.iter().any(|(p, _)| export::is_stdout(p)) {
        let mut out = std::io::stdout().lock();
        if let Err(e) = table(&mut out, style(output.color)).and_then(|_| out.flush())
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(Error::runtime("cannot write to stdout", e));
        }
    }
    for (path, format) in &exports {
        match export::write_to(path, &export::render(item, *format)) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) => return Err(Error::runtime(format!("cannot write {}", path.display()), e)),
            Ok(()) => {}
        }
    }
    Ok(())
}

/// One stderr line per lost worker and for a failed validation.
fn report_failures(report: &RunReport) {
    for f in report.faults.iter().filter(|f| f.action.starts_with("stopped")) {
        eprintln!("vecpar-coord: worker lost: {f}");
    }
    if let Some(v) = &report.validation
        && let Some(m) = &v.mismatch
    {
        eprintln!(
            "vecpar-coord: validation failed: {}[{}] = {}, expected {}{}",
            m.array,
            m.index,
            m.got,
            m.expected,
            v.mismatch_owner.map(|o| format!(" (in worker {o}'s chunk)")).unwrap_or_default()
        );
    }
}
