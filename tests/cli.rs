//! The command line: help, versions, and one clear message for bad input,
//! caught before any work.

use crate::util::*;

/// Asserts a usage error: exit 2, a short message on stderr whose first
/// line names `flag`, nothing on stdout, no panic.
fn assert_usage(args: &[&str], flag: &str, max_lines: usize) {
    let out = coord(args);
    assert_eq!(out.code, Some(2), "{args:?} exit code\nstderr: {}", out.stderr);
    let lines = out.error_lines();
    assert!(!lines.is_empty() && lines.len() <= max_lines, "{args:?}: at most {max_lines} lines: {:?}", out.stderr);
    assert!(lines[0].starts_with("vecpar-coord: error: "), "{args:?}: {}", lines[0]);
    assert!(lines[0].contains(flag), "{args:?}: the message names {flag}: {}", lines[0]);
    assert!(!out.stderr.contains("panicked") && !out.stderr.contains("backtrace"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
}

#[test]
fn bad_values_found_by_vecpar_are_one_line_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--procs", "0"], "--procs"),
        (&["--procs", "100000"], "--procs"),
        (&["--runs", "0"], "--runs"),
        (&["--runs", "4000000"], "--runs"),
        (&["--warmup", "4000000"], "--warmup"),
        (&["--stores", "nontemporal", "--simd", "scalar"], "--stores"),
        (&["--pin", "4096"], "--pin"),
        (&["--inject-fault", "7:panic", "--procs", "2"], "--inject-fault"),
        (&["--inject-fault", "0:panic@99", "--runs", "3"], "--inject-fault"),
        (&["--inject-fault", "0:oob-write", "--procs", "2", "--len", "10"], "--inject-fault"),
        (&["--inject-fault", "0:panic", "--mode", "serial"], "--inject-fault"),
        (&["--mode", "serial", "--procs", "4"], "--procs"),
        (&["--export-json", "-", "--export-csv", "-"], "--export"),
        (&["sweep", "--repeat", "0"], "--repeat"),
        (&["sweep", "--repeat", "18446744073709551615"], "--repeat"),
        (&["sweep", "--plot", "out.jpg"], "--plot"),
        (&["isolation", "--procs", "1"], "--procs"),
    ];
    for (args, flag) in cases {
        assert_usage(args, flag, 1);
    }
}

#[test]
fn hostile_values_still_name_the_flag_on_one_line() {
    use std::os::unix::ffi::OsStrExt;
    // A leading minus on a number, bytes that are not UTF-8, a newline or
    // an escape sequence inside a value: the first line names the flag and
    // the value cannot split it or reach the terminal raw.
    let not_utf8 = std::ffi::OsStr::from_bytes(b"1e\xff");
    let cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = vec![
        (vec!["--procs".as_ref(), "-inf".as_ref()], "--procs"),
        (vec!["--runs".as_ref(), "-inf".as_ref()], "--runs"),
        (vec!["sweep".as_ref(), "--procs".as_ref(), "-inf".as_ref()], "--procs"),
        (vec!["--len".as_ref(), not_utf8], "--len"),
        (vec!["--procs".as_ref(), not_utf8], "--procs"),
        (vec!["--op".as_ref(), not_utf8], "--op"),
        (vec!["--op".as_ref(), "add\nfoo".as_ref()], "--op"),
        (vec!["--inject-fault".as_ref(), "1:x\ny".as_ref()], "--inject-fault"),
        (vec!["--simd".as_ref(), "avx\nfoo".as_ref()], "--simd"),
        (vec!["--procs".as_ref(), "\u{1b}[31m".as_ref()], "--procs"),
    ];
    for (args, flag) in cases {
        let mut cmd = std::process::Command::new(coord_bin());
        cmd.args(&args);
        let out = run_cmd(cmd, LIMIT);
        out.expect_code(2);
        let first = out.stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with("vecpar-coord: error: ") && first.contains(flag), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains('\u{1b}'), "{args:?}: no raw escape reaches the terminal");
        // The rest is clap's usual hint block, never a piece of the value.
        for line in out.stderr.lines().skip(1) {
            assert!(
                line.is_empty() || line.starts_with("  ") || line.starts_with("For more") || line.starts_with("Usage"),
                "{args:?}: a value split the line: {}",
                out.stderr
            );
        }
    }
}

#[test]
fn bad_values_found_by_clap_keep_claps_hints() {
    let cases: &[(&[&str], &str)] = &[
        (&["--procs", "abc"], "--procs"),
        (&["--len", "0"], "--len"),
        (&["--len", "ten"], "--len"),
        (&["--len", "1.5"], "--len"),
        (&["--op", "mul"], "--op"),
        (&["--dtype", "f16"], "--dtype"),
        (&["--mode", "fibers"], "--mode"),
        (&["--runs", "-1"], "--runs"),
        (&["--simd", "sve"], "--simd"),
        (&["--shm", "sysv"], "--shm"),
        (&["--pin", "0-3:x"], "--pin"),
        (&["--timeout", "-1"], "--timeout"),
        (&["--on-fault", "retry=0"], "--on-fault"),
        (&["--inject-fault", "0:boom"], "--inject-fault"),
        (&["--no-such-flag"], "--no-such-flag"),
        (&["isolation", "--modes", "serial"], "--modes"),
    ];
    for (args, flag) in cases {
        assert_usage(args, flag, 6);
    }
    // What clap knows reaches the user.
    let hint = |args: &[&str]| coord(args).stderr;
    let e = hint(&["--mode", "thread"]);
    let modes = if cfg!(feature = "mpi") { "procs, threads, serial, ranks" } else { "procs, threads, serial" };
    assert!(e.contains(&format!("[possible values: {modes}]")), "{e}");
    let e = hint(&["--proc", "8"]);
    assert!(e.contains("tip:") && e.contains("--procs"), "{e}");
    let e = hint(&["swep"]);
    assert!(e.contains("sweep"), "did you mean: {e}");
    let e = hint(&["completions"]);
    assert!(e.contains("<SHELL>"), "names the missing argument: {e}");
}

#[test]
fn output_destinations_fail_before_any_work() {
    let dir = TempDir::new("cli-dest");
    let missing = dir.str("missing/out.json");
    // A sweep of many points fails at once: nothing ran.
    for args in [
        &["sweep", "--procs", "1,2,4", "--len", "1e6", "--runs", "50", "--export-json", &missing][..],
        &["sweep", "--procs", "1,2,4", "--len", "1e6", "--runs", "50", "--plot", &dir.str("missing/p.svg")],
        &["--len", "1e6", "--export-csv", &missing],
    ] {
        let out = coord(args);
        out.expect_code(1);
        assert_eq!(out.error_lines().len(), 1, "{}", out.stderr);
        assert!(out.stderr.contains("cannot write there"), "{}", out.stderr);
        assert!(out.stdout.is_empty(), "no table: nothing ran");
    }
    // A destination that is not a file is a usage error.
    let out = coord(&["--len", "1e4", "--export-json", dir.path().to_str().unwrap()]);
    out.expect_code(2);
    assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);
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
    for needle in ["--procs", "--len", "1e6", "Examples", "Exit codes", "--inject-fault", "--export-json", "134"] {
        assert!(out.stdout.contains(needle), "--help mentions {needle}");
    }
    assert!(out.stdout.contains("no warnings and no progress bar"), "-q says it hides the bar");
    let v = coord(&["--version"]);
    v.expect_code(0);
    assert!(v.stdout.starts_with("vecpar-coord "));
    // Every example in the help runs clean: exit 0, no warning.
    let sweep = coord(&["sweep", "--help"]);
    let example = sweep.stdout.lines().find(|l| l.contains("--simd all")).expect("the SIMD example").trim().to_string();
    assert!(example.ends_with("--export-markdown -"), "the example is on one line: {example}");
    let args: Vec<&str> = example.split_whitespace().skip(1).collect();
    let out = coord(&args);
    out.expect_code(0);
    // Clean: nothing to change in it. (A busy machine may still make some
    // rounds outliers or scattered; that warning is about the machine, not
    // the example.)
    let about_the_machine = |l: &str| ["outlier", "scattered"].iter().any(|w| l.contains(w));
    let warnings: Vec<&str> = out.stderr.lines().filter(|l| l.contains("warning") && !about_the_machine(l)).collect();
    assert!(warnings.is_empty(), "the example runs clean: {}", out.stderr);
    // One row per SIMD level of this CPU, each compared against scalar.
    let rows: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("| serial | 1 |")).collect();
    assert!(rows.len() >= 2 && rows[0].contains("| scalar |") && rows[0].contains("1.00×"), "{}", out.stdout);
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

#[test]
fn arguments_that_are_not_utf8_are_handled() {
    use std::os::unix::ffi::OsStrExt;
    let dir = TempDir::new("cli-utf8");
    let mut path = dir.path().as_os_str().as_bytes().to_vec();
    path.extend(b"/r\xff.json");
    let path = std::ffi::OsStr::from_bytes(&path);
    let mut cmd = std::process::Command::new(coord_bin());
    cmd.args(["--len", "1e4", "--runs", "1", "-q", "--export-json"]).arg(path);
    let out = run_cmd(cmd, LIMIT);
    out.expect_code(0);
    assert!(std::fs::read(path).unwrap().starts_with(b"{"), "the export went to the non-UTF-8 path");
    let mut cmd = std::process::Command::new(coord_bin());
    cmd.args(["--len", "1e4", "--worker-bin"]).arg(std::ffi::OsStr::from_bytes(b"/tmp/\xff"));
    let out = run_cmd(cmd, LIMIT);
    out.expect_code(1);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let mut cmd = std::process::Command::new(coord_bin());
    cmd.args(["--mode"]).arg(std::ffi::OsStr::from_bytes(b"thr\xffeads"));
    let out = run_cmd(cmd, LIMIT);
    out.expect_code(2);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn small_glitches_say_what_is_wrong() {
    // A destination on a file system where nothing can be written.
    let out = coord(&["--len", "1e3", "--export-json", "/proc/version", "-q"]);
    out.expect_code(1);
    assert!(out.stderr.contains("kernel (proc or sys) file system"), "{}", out.stderr);
    assert!(!out.stderr.contains("No such file"), "{}", out.stderr);
    // Flags a subcommand would ignore are refused.
    let out = coord(&["completions", "bash", "--export-json", "x.json"]);
    out.expect_code(2);
    assert!(out.stderr.contains("--export-json") && out.stdout.is_empty(), "{}", out.stderr);
    // --timeout 0 says what is wrong with it.
    let out = coord(&["--timeout", "0"]);
    out.expect_code(2);
    assert!(out.stderr.contains("greater than 0"), "{}", out.stderr);
    // The worker run by hand names what it needs.
    let out = run_cmd(std::process::Command::new(worker_bin()), LIMIT);
    assert!(out.stderr.contains("--id") && out.stderr.contains("--coordinator"), "{}", out.stderr);
}

#[test]
fn isolation_takes_all_faults_and_a_simd_sweep_claims_no_efficiency() {
    let r = coord_json(&["isolation", "--faults", "all,segv", "--modes", "threads", "--len", "1e4"], 0);
    let faults: Vec<&str> = r["rows"].as_array().unwrap().iter().map(|row| row["fault"].as_str().unwrap()).collect();
    assert_eq!(faults.len(), 7, "every kind once: {faults:?}");
    let s = coord_json(&["sweep", "--modes", "serial", "--simd", "all", "--len", "1e4", "--runs", "2"], 0);
    for p in s["points"].as_array().unwrap() {
        assert!(p["efficiency"].is_null(), "speed-up across SIMD levels is no efficiency: {p}");
    }
    let dir = TempDir::new("serialcsv");
    let csv = dir.str("s.csv");
    coord(&[
        "sweep",
        "--modes",
        "serial,procs",
        "--procs",
        "1",
        "--len",
        "1e4",
        "--runs",
        "2",
        "--export-csv",
        &csv,
        "-q",
    ])
    .expect_code(0);
    let text = std::fs::read_to_string(&csv).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "startup_s").unwrap();
    let serial = text.lines().find(|l| l.starts_with("serial,")).unwrap();
    assert_eq!(serial.split(',').nth(col), Some(""), "serial starts no worker: {text}");
}
