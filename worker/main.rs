//! `vecpar-worker`: one worker process, started by `vecpar-coord`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use vecpar::worker::{WorkerArgs, run_process};

fn main() -> ExitCode {
    let args = match WorkerArgs::try_parse() {
        Ok(args) => args,
        Err(e) => return vecpar::app::clap_exit(e, "vecpar-worker"),
    };
    match run_process(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.should_print() {
                eprintln!("vecpar-worker: error: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
