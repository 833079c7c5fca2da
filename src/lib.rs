//! vecpar runs vector operations (the STREAM and BabelStream kernels,
//! starting with the seed chapter's `c = a + b`) across **worker processes
//! over OS shared memory**, and the same kernels on threads and on one
//! thread, so that processes and threads can be compared side by side:
//! speed, start-up cost, and what a crashing worker does to the rest.
//!
//! # Using the library
//!
//! The binaries are thin: everything they do is here. A run is built from
//! options, resolved against the machine's facts (the only way to get a
//! [`RunConfig`], so that a configuration always describes a run that can
//! work), then run:
//!
//! ```no_run
//! use vecpar::{Mode, Op, RunConfig};
//!
//! let config = RunConfig::builder().mode(Mode::Threads).len(1_000_000).ops(&[Op::Triad]).resolve_here()?;
//! let report = vecpar::run(&config)?;
//! assert!(report.validated());
//! println!("{:.1} GB/s", report.kernels[0].summary.as_ref().unwrap().best_gbps);
//! # Ok::<(), vecpar::Error>(())
//! ```
//!
//! The kernels also work on plain slices ([`kernel::Kernel`]), and every
//! report type deserialises from the JSON the tool exports ([`report`]).
//! That is the whole public API: the command line, the exports, the shared
//! memory and the workers are the tool's own.
//!
//! # Layers
//!
//! Data flows one way — command line → resolved configuration → execution
//! → report → presentation — and a module uses only modules of its own
//! layer or below (`python3 ../shared/tools/modcycles.py src` finds no
//! cycle):
//!
//! 1. **Vocabulary and utilities**, used everywhere: [`vocab`] (`Mode`,
//!    `Array`, `Backend`, …), `units`, `clock`, `stats`, `diag`, `locks`,
//!    `signals`.
//! 2. **Facts and kernels**: [`machine`] (CPUs, cgroups, memory, limits),
//!    [`kernel`] (every kernel defined once, the oracle, the data),
//!    `partition`, [`fault`] (faults as data).
//! 3. **Shared memory and protocol**: `shm` (the segment, the control
//!    block, the fault recorder: with `kernel`, the only `unsafe` code),
//!    `protocol` (steps, results, the worker channel).
//! 4. **Workers**: `worker` (the executor, the worker process).
//! 5. **Configuration**: `cli` (the command line), [`config`] (resolved
//!    and checked in one stage), [`warnings`], [`error`].
//! 6. **Report data**: [`report`] (run, sweep, isolation).
//! 7. **Execution**: [`run()`] (the conductor, the verdicts it combines,
//!    and its teams: processes, threads, this thread), `launcher`.
//! 8. **Studies**: `study` (sweeps, the isolation experiment).
//! 9. **Presentation**: `export` (JSON, CSV, Markdown, atomic files),
//!    `output` (tables, progress, the chart), `plot`.
//! 10. **The top**: `app`, called by the two binaries.
//!
//! Where things go (the README's "Layout of the code" counts the files):
//! a kernel is one line in `kernel/ops.rs`; an export format is a renderer
//! in `export/`, its `Format` variant and its `--export-*` flag; a fault
//! kind is `fault.rs`, its injection in `worker.rs`, its `isolation` value
//! in `cli.rs` and what it does to threads in `report/isolation.rs`; a team
//! is a file in `run/` implementing `run::team::Team`, its constructor in
//! `run/mod.rs` and its `Mode`; a layer above the conductor (MPI's, in
//! `cluster/`) implements `run::lockstep::Lockstep` and calls
//! `run::run_with`.
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod fault;
pub mod kernel;
pub mod machine;
pub mod report;
pub mod vocab;
pub mod warnings;

mod app;
mod cli;
mod clock;
#[cfg(feature = "mpi")]
mod cluster;
mod diag;
mod export;
mod launcher;
mod locks;
mod output;
mod partition;
mod plot;
mod protocol;
mod run;
mod shm;
mod signals;
mod stats;
mod study;
mod units;
mod worker;

pub use config::{RunBuilder, RunConfig};
pub use error::Error;
pub use kernel::Op;
pub use run::run;
pub use signals::Interrupted;
pub use vocab::Mode;

/// The version of this build; the coordinator and its workers must agree.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `vecpar-coord`'s `main`.
pub fn coordinator_main() -> std::process::ExitCode {
    app::coordinator_main()
}

/// `vecpar-worker`'s `main`.
pub fn worker_main() -> std::process::ExitCode {
    diag::set_program("vecpar-worker");
    signals::block_terminating();
    app::on_own_stack(worker_body)
}

fn worker_body() -> std::process::ExitCode {
    use clap::Parser;
    let args = match worker::WorkerArgs::try_parse() {
        Ok(args) => args,
        // Help and version as clap prints them; anything else is someone
        // running the worker by hand: one line that says what it is for.
        Err(e) if !e.use_stderr() => return app::clap_exit(e),
        Err(e) => {
            let rendered = e.render().to_string();
            let missing = match e.get(clap::error::ContextKind::InvalidArg) {
                Some(clap::error::ContextValue::Strings(names)) => Some(names.join(" and ")),
                Some(clap::error::ContextValue::String(name)) => Some(name.clone()),
                _ => None,
            };
            let first = match (e.kind(), missing) {
                (clap::error::ErrorKind::MissingRequiredArgument, Some(names)) => format!("it needs {names}"),
                _ => rendered
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
                    .trim_end_matches(':')
                    .to_string(),
            };
            diag::error(format_args!("vecpar-worker is started by vecpar-coord, not by hand ({first})"));
            return std::process::ExitCode::from(2);
        }
    };
    match worker::run_process(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if e.should_print() {
                diag::error(&e);
            }
            std::process::ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the unit tests.

    use std::path::{Path, PathBuf};

    /// A fresh directory under $TMPDIR, removed with everything in it on drop.
    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("vecpar-unit-{tag}-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("a test directory");
            TempDir(dir)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
