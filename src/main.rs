//! `vecpar-coord`: maps a, b, c into shared memory, runs the workers, reports.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    vecpar::coordinator_main()
}
