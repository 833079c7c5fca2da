//! Hostile and broken input: the worker run by hand, bad segments, bad
//! assignments. Each ends with one clear line and writes nothing.

use std::process::Command;
use std::time::Duration;

use crate::util::*;

fn worker(args: &[&str]) -> Outcome {
    let mut cmd = Command::new(worker_bin());
    cmd.args(args);
    run_cmd(cmd, Duration::from_secs(30))
}

#[test]
fn the_worker_run_by_hand_refuses_with_one_line() {
    for args in [
        &[][..],
        &["--garbage"],
        &["--id", "x", "--coordinator", "1", "--server", "s", "--fd", "3"],
        &["--id", "0", "--coordinator", "1", "--server", "s"],
    ] {
        let out = worker(args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: one line: {}", out.stderr);
        assert!(out.stderr.starts_with("vecpar-worker: error: "), "{}", out.stderr);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn the_worker_refuses_a_parent_that_is_not_its_coordinator() {
    let out = worker(&["--id", "0", "--coordinator", "1", "--server", "/tmp/nowhere", "--fd", "3"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("started by vecpar-coord"), "{}", out.stderr);
}
