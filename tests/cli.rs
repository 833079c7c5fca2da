//! The command line: help, versions, and one clear line for bad input.

use crate::util::*;

/// Bad values: each must exit 2 with one line that names the flag.
#[test]
fn bad_values_exit_2_with_one_line_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--procs", "abc"], "--procs"),
        (&["--procs", "0"], "--procs"),
        (&["--procs", "100000"], "--procs"),
        (&["--len", "0"], "--len"),
        (&["--len", "ten"], "--len"),
        (&["--len", "1.5"], "--len"),
        (&["--op", "mul"], "--op"),
        (&["--dtype", "f16"], "--dtype"),
        (&["--mode", "fibers"], "--mode"),
        (&["--runs", "0"], "--runs"),
        (&["--runs", "-1"], "--runs"),
        (&["--simd", "sve"], "--simd"),
        (&["--stores", "nontemporal", "--simd", "scalar"], "--stores"),
        (&["--shm", "sysv"], "--shm"),
        (&["--pin", "0-3:x"], "--pin"),
        (&["--pin", "4096"], "--pin"),
        (&["--timeout", "-1"], "--timeout"),
        (&["--on-fault", "retry=0"], "--on-fault"),
        (&["--inject-fault", "7:panic", "--procs", "2"], "--inject-fault"),
        (&["--inject-fault", "0:boom"], "--inject-fault"),
        (&["--inject-fault", "0:panic@99", "--runs", "3"], "--inject-fault"),
        (&["--inject-fault", "0:oob-write", "--procs", "2", "--len", "10"], "--inject-fault"),
        (&["--inject-fault", "0:panic", "--mode", "serial"], "--inject-fault"),
        (&["--mode", "serial", "--procs", "4"], "--procs"),
        (&["--export-json", "-", "--export-csv", "-"], "--export"),
        (&["--no-such-flag"], "--no-such-flag"),
    ];
    for (args, flag) in cases {
        let out = coord(args);
        assert_eq!(out.code, Some(2), "{args:?} exit code\nstderr: {}", out.stderr);
        let lines = out.error_lines();
        assert_eq!(lines.len(), 1, "{args:?}: one line on stderr, got {:?}", out.stderr);
        assert!(lines[0].starts_with("vecpar-coord: error: "), "{args:?}: {}", lines[0]);
        assert!(lines[0].contains(flag), "{args:?}: the message names {flag}: {}", lines[0]);
        assert!(!out.stderr.contains("panicked") && !out.stderr.contains("backtrace"));
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
}

#[test]
fn an_unsupported_simd_level_is_a_usage_error() {
    let unsupported =
        ["avx512", "avx2", "neon"].into_iter().find(|l| coord(&["--simd", l, "--len", "10"]).code != Some(0));
    if let Some(level) = unsupported {
        let out = coord(&["--simd", level, "--len", "10"]);
        out.expect_code(2);
        assert!(out.stderr.contains("--simd") && out.stderr.contains("supports"), "{}", out.stderr);
    }
}

#[test]
fn a_missing_worker_binary_is_a_clear_error() {
    let out = coord(&["--worker-bin", "/nonexistent/vecpar-worker", "--len", "10"]);
    out.expect_code(1);
    assert_eq!(out.error_lines().len(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("cargo build"), "says how to build it: {}", out.stderr);
    // Modes without processes do not need it.
    coord(&["--worker-bin", "/nonexistent/vecpar-worker", "--len", "10", "--mode", "threads", "--quiet"])
        .expect_code(0);
}

#[test]
fn help_teaches_and_version_prints() {
    let out = coord(&["--help"]);
    out.expect_code(0);
    for needle in ["--procs", "--len", "1e6", "Examples", "Exit codes", "--inject-fault", "--export-json"] {
        assert!(out.stdout.contains(needle), "--help mentions {needle}");
    }
    let v = coord(&["--version"]);
    v.expect_code(0);
    assert!(v.stdout.starts_with("vecpar-coord "));
}

#[test]
fn lengths_can_be_spelled_many_ways() {
    for (text, len) in [("1e4", 10_000), ("10k", 10_000), ("2^14", 16_384), ("16_384", 16_384), ("4Ki", 4096)] {
        let r = coord_json(&["--len", text, "--runs", "1"], 0);
        assert_eq!(r["config"]["len"].as_u64(), Some(len), "{text}");
    }
}

#[test]
fn a_run_too_large_for_memory_is_refused_before_allocating() {
    let out = coord(&["--len", "1e15"]);
    out.expect_code(1);
    let line = out.error_lines().join("\n");
    assert!(line.contains("--len") && line.contains("needs") && line.contains("available"), "{line}");
}
