//! `vecpar-worker`: one worker process, started by `vecpar-coord`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    vecpar::worker_main()
}
