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

use crate::cli::{Cli, Command, Shell};
use crate::config::{RunConfig, SweepPlan};
use crate::diag;
use crate::error::{EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, Error};
use crate::export::{Destination, OutputPlan};
use crate::machine::{HostInfo, Machine};
use crate::output::progress::Progress;
use crate::output::{present, table};
use crate::report::Provenance;

/// Runs `vecpar-coord` with this process's arguments.
pub(crate) fn coordinator_main() -> ExitCode {
    // Signals first: until our handlers are in place, a SIGSEGV or SIGBUS
    // another process sends is swallowed by std's stack-overflow handler.
    let signals = crate::signals::install(|terminating| {
        crate::shm::catch_fault_signals()?;
        crate::shm::catch_terminating_signals(terminating)
    });
    // One of several MPI ranks: each names itself; only rank 0 shows what
    // every rank would show alike (help, a bad flag).
    let rank = crate::launcher::launched().and_then(|_| crate::launcher::rank_from_environment());
    match rank {
        Some(r) if cfg!(feature = "mpi") && crate::launcher::under_mpi() => {
            diag::set_program(Box::leak(format!("vecpar-coord (rank {r})").into_boxed_str()))
        }
        _ => diag::set_program("vecpar-coord"),
    }
    let echo = rank.unwrap_or(0) == 0;
    if let Err(e) = signals {
        diag::error(format!("cannot set up signal handling: {e}"));
        return ExitCode::from(EXIT_RUNTIME);
    }
    if !crate::signals::die_with_parent_if_asked() {
        return ExitCode::from(EXIT_RUNTIME);
    }
    crate::signals::adopt_orphans();
    crate::signals::explain_with(crate::launcher::signal_meaning);
    on_own_stack(move || coordinator_body(echo))
}

/// An address-space limit (`ulimit -v`) below what this process needs to
/// start at all — its code, its thread stacks, a heap — makes the first
/// allocation that does not fit abort the process with a message of the
/// allocator's. Said first, in one line.
pub(crate) fn too_small_to_start() -> Option<String> {
    let limit = crate::machine::Machine::address_space_limit_now()?;
    let needed = crate::machine::Machine::mapped_bytes_now() + STACK_BYTES as u64 + (8 << 20);
    (limit < needed).then(|| {
        format!(
            "ulimit -v {} kB is too small for {} to start: it needs at least {} kB (its code, stacks and heap, before \
             any array); raise ulimit -v",
            limit / 1024,
            diag::program(),
            needed / 1024
        )
    })
}

/// The stack vecpar's own work runs on: the main thread's is whatever
/// `ulimit -s` left (32 KiB is enough to start, not to parse and run).
const STACK_BYTES: usize = 4 << 20;

/// Runs `body` on a thread with a stack of [`STACK_BYTES`] (on this one if
/// the system refuses a thread).
pub(crate) fn on_own_stack(body: impl FnOnce() -> ExitCode + Send + 'static) -> ExitCode {
    if let Some(e) = too_small_to_start() {
        diag::error(e);
        return ExitCode::from(EXIT_RUNTIME);
    }
    let body = std::sync::Arc::new(std::sync::Mutex::new(Some(body)));
    let theirs = std::sync::Arc::clone(&body);
    let spawned = std::thread::Builder::new().name("vecpar-main".into()).stack_size(STACK_BYTES).spawn(move || {
        let f = crate::locks::lock(&theirs).take();
        f.map(|f| f())
    });
    match spawned.map(|h| h.join()) {
        Ok(Ok(Some(code))) => code,
        // It panicked: the hook said so.
        Ok(Err(_)) | Ok(Ok(None)) => ExitCode::from(101),
        Err(_) => match crate::locks::lock(&body).take() {
            Some(f) => f(),
            None => ExitCode::from(EXIT_RUNTIME),
        },
    }
}

fn coordinator_body(echo: bool) -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) if echo => return clap_exit(e),
        Err(e) => return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK }),
    };
    let arguments = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    match run_cli(cli, arguments) {
        Ok(code) => ExitCode::from(code),
        // Every rank fails alike before the ranks meet: rank 0 says it.
        Err(e) if !echo => ExitCode::from(e.exit_code()),
        Err(e) => ExitCode::from(present::report_error(e)),
    }
}

/// Shows clap's help or version (exit 0), or its error (exit 2) as clap
/// renders it, after the program's name.
pub(crate) fn clap_exit(e: clap::Error) -> ExitCode {
    use clap::error::{ContextValue, ErrorKind};
    // A value holding a newline (or any control character) must not split
    // the one line that names the flag: wherever it shows (clap's context
    // and a value parser's own message), it is shown escaped.
    let mut raw: Vec<String> = e
        .context()
        .filter_map(|(_, value)| match value {
            ContextValue::String(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    raw.extend(std::error::Error::source(&e).map(|why| why.to_string()));
    raw.retain(|s| s.chars().any(char::is_control));
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = std::io::stdout().lock().write_all(e.render().to_string().as_bytes());
            ExitCode::from(EXIT_OK)
        }
        _ => {
            let mut text = e.render().to_string();
            for value in &raw {
                text = text.replace(value.as_str(), &diag::escape_controls(value));
            }
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
            let o = &cli.output;
            let flag = [
                (o.export_json.is_some(), "--export-json"),
                (o.export_csv.is_some(), "--export-csv"),
                (o.export_markdown.is_some(), "--export-markdown"),
            ]
            .into_iter()
            .find_map(|(given, flag)| given.then_some(flag));
            if let Some(flag) = flag {
                return Err(Error::usage(format!(
                    "{flag}: completions prints its script to stdout and exports nothing; drop {flag}"
                )));
            }
            // Like the table, and unlike an export: a reader that stops
            // early (`| head`) took what it wanted.
            let mut out = std::io::stdout().lock();
            match out.write_all(&completions(shell)).and_then(|()| out.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(Error::runtime_from("completions: cannot write to stdout", e))
                }
                _ => Ok(EXIT_OK),
            }
        }
        Some(Command::Sweep(args)) => {
            crate::launcher::refuse_for("sweep")?;
            let plan = OutputPlan::resolve(&cli.output, args.plot.as_deref())?;
            let machine = Machine::detect();
            let sweep = SweepPlan::resolve(&args, &machine)?;
            let exports = plan.open_exports()?;
            let plot = args.plot.as_deref().map(|p| Destination::open(p, "--plot")).transpose()?;
            let progress = Progress::new(sweep.points.len() * sweep.repeat, cli.output.quiet);
            let result = crate::study::sweep::run(&sweep, &machine, arguments, |i, _, what| progress.step(i, what));
            progress.finish();
            let (report, interrupted) = result?;
            let warnings = report.warnings.clone();
            present::present(&report, &warnings, &cli.output, &plan, exports, |out, s| {
                table::write_sweep(out, &report, s)
            })?;
            if let Some(dest) = plot {
                let format = crate::plot::ImageFormat::of(dest.path()).expect("checked by OutputPlan");
                match crate::plot::render(&crate::output::chart::sweep_chart(&report, cli.output.units), format) {
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
        Some(Command::Topology) => {
            let plan = OutputPlan::resolve(&cli.output, None)?;
            let exports = plan.open_exports()?;
            let machine = Machine::detect();
            let about = Provenance::new("topology", arguments, HostInfo::of(&machine));
            let report =
                crate::report::topology::TopologyReport::of(&machine, about, crate::shm::numa::process_policy());
            present::present(&report, &[], &cli.output, &plan, exports, |out, s| {
                table::write_topology(out, &report, s)
            })?;
            Ok(EXIT_OK)
        }
        Some(Command::Isolation(args)) => {
            crate::launcher::refuse_for("isolation")?;
            crate::config::check_isolation(&args)?;
            let plan = OutputPlan::resolve(&cli.output, None)?;
            let machine = Machine::detect();
            let exports = plan.open_exports()?;
            let progress = Progress::new(args.modes.len() * args.fault_kinds().len() * 2, cli.output.quiet);
            let result = crate::study::isolation::run(&args, &machine, arguments, |i, _, what| progress.step(i, what));
            progress.finish();
            let report = result?;
            present::present(&report, &[], &cli.output, &plan, exports, |out, s| {
                table::write_isolation(out, &report, s)
            })?;
            Ok(EXIT_OK)
        }
        None => {
            let plan = OutputPlan::resolve(&cli.output, None)?;
            #[cfg(feature = "mpi")]
            if let Some(launcher) = crate::launcher::launched() {
                return Ok(crate::cluster::main(cli, plan, arguments, launcher));
            }
            crate::launcher::refuse_without_mpi()?;
            let machine = Machine::detect();
            let cfg = RunConfig::resolve(&cli.run, &machine)?;
            let exports = plan.open_exports()?;
            let about = Provenance::new("run", arguments, HostInfo::of(&machine));
            let report = crate::run::run_with(&cfg, about, crate::run::With::default())?;
            present::present(&report, &report.warnings, &cli.output, &plan, exports, |out, s| {
                table::write_run(out, &report, s)
            })?;
            present::report_failures(&report, true);
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
