//! Trust, second pass: what a run reports is never vouched for by the
//! process that computed it, a recovered run ends exactly as a fault-free
//! one, and every way in and out of a run — signals from anywhere, workers
//! that fail at once or leave descendants, bad arguments, small limits,
//! hostile export destinations, other users' segments — gets the documented
//! path.

use std::path::PathBuf;
use std::process::Command;

use crate::util::*;

/// The lying worker: speaks the protocol (`--sync ipc`), computes nothing.
fn liar() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/lying-worker.py")
}

#[test]
fn a_worker_never_vouches_for_its_own_work() {
    for (lie, op, procs) in [("nothing", "add", "1"), ("fill", "add", "2"), ("fill", "dot", "2"), ("fill", "fma", "1")]
    {
        let mut cmd = Command::new(coord_bin());
        cmd.args(["--procs", procs, "--len", "1e4", "--sync", "ipc", "--op", op, "--export-json", "-", "-q"])
            .arg("--worker-bin")
            .arg(liar())
            .env("LIE", lie)
            .env("LIE_VERSION", env!("CARGO_PKG_VERSION"));
        let out = run_cmd(cmd, LIMIT);
        out.expect_code(3);
        let r = out.json();
        assert_eq!(r["validated"], false, "{lie} {op}: the liar's word is not taken");
        let v = &r["kernels"][0]["validation"];
        assert!(!v["mismatch"].is_null(), "{lie} {op}: {v}");
        assert_eq!(v["checked_by"]["kind"], "coordinator", "{v}");
        assert_eq!(v["checked_by"]["pid"], r["coordinator_pid"], "another process than every worker");
        assert_eq!(v["checked"], 10_000, "every element, read from the shared memory");
        assert!(out.stderr.contains("validation failed"), "{}", out.stderr);
    }
}

#[test]
fn a_recovered_update_in_place_ends_exactly_as_a_fault_free_run() {
    for op in ["nstream", "fma"] {
        let base = ["--op", op, "--len", "1e5", "--runs", "5", "--warmup", "0", "--procs", "2"];
        let clean = coord_json(&base, 0);
        let want = &clean["validation"];
        assert_eq!(want["history"], serde_json::json!([{"op": op, "rounds": 5}]));
        for (mode, fault) in
            [("procs", "1:panic@2"), ("procs", "0:segv@3"), ("procs", "1:exit@4"), ("threads", "1:panic@2")]
        {
            let args = [&base[..], &["--mode", mode, "--inject-fault", fault, "--on-fault", "retry"]].concat();
            let r = coord_json(&args, 0);
            let got = &r["validation"];
            assert_eq!(got["history"], want["history"], "{op} {mode} {fault}: applied exactly as often");
            assert_eq!(got["a_digest"], want["a_digest"], "{op} {mode} {fault}: the same a");
            assert_eq!(got["c_digest"], want["c_digest"], "{op} {mode} {fault}: the same c");
            assert_eq!(r["retries"].as_array().unwrap().len(), 1, "{op} {mode} {fault}: {}", r["retries"]);
            assert_eq!(r["runs"].as_array().unwrap().len(), 5, "five timed rounds kept");
        }
    }
}

/// A run long enough to be signalled while its workers compute.
const LONG: [&str; 4] = ["--len", "1e6", "--runs", "1000000"];

#[test]
fn a_fault_signal_sent_to_a_worker_names_the_process_that_sent_it() {
    let mut run = Background::start(&[&LONG[..], &["--procs", "2", "--export-json", "-", "-q"]].concat());
    let workers = run.wait_for_workers(2);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(workers[0] as i32), nix::sys::signal::Signal::SIGSEGV).unwrap();
    let out = run.finish(LIMIT);
    out.expect_code(4);
    let fault = &out.json()["faults"][0];
    assert_eq!(fault["cause"]["kind"], "signal", "{fault}");
    assert_eq!(fault["cause"]["number"], 11, "{fault}");
    assert_eq!(fault["cause"]["sent_by"], std::process::id(), "the sender, not a fault of the worker's own: {fault}");
    let line = out.stderr.lines().find(|l| l.contains("worker lost")).unwrap_or_default();
    assert!(line.contains(&format!("sent by another process (pid {})", std::process::id())), "{}", out.stderr);
}

#[test]
fn a_fault_signal_sent_to_a_worker_thread_is_an_interruption_not_a_dead_thread() {
    // tgkill from another process to one of the coordinator's worker
    // threads: si_code SI_TKILL, a signal someone sent, not a fault.
    for signal in [libc::SIGSEGV, libc::SIGFPE, libc::SIGABRT] {
        let mut run = Background::start(&[&LONG[..], &["--procs", "2", "--mode", "threads", "-q"]].concat());
        let pid = run.pid() as i32;
        let tid = run.wait_for_worker_threads(2)[0];
        // SAFETY: a plain system call with integer arguments.
        let sent = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, signal) };
        assert_eq!(sent, 0, "tgkill");
        let out = run.finish(LIMIT);
        assert_eq!(out.code, Some(128 + signal), "{}", out.stderr);
        assert!(out.stderr.contains("interrupted by SIG"), "{}", out.stderr);
        assert!(!out.stderr.contains("worker thread died"), "nothing died: {}", out.stderr);
    }
}

#[test]
fn a_worker_that_cannot_start_is_one_line_exit_1_and_never_retried() {
    let dir = TempDir::new("nostart");
    let version = env!("CARGO_PKG_VERSION");
    let cases = [
        (PathBuf::from("/bin/false"), "exited with code 1"),
        (script(&dir, "garbage", "printf 'this is not a hello'; sleep 100"), "sent an unreadable message"),
        (
            script(
                &dir,
                "forged",
                &format!(r#"printf '{{"type":"hello","id":7,"pid":1,"version":"{version}"}}'; sleep 100"#),
            ),
            "said hello as worker 7 with pid 1",
        ),
    ];
    for (bin, says) in cases {
        let mut cmd = Command::new(coord_bin());
        cmd.args(["--procs", "2", "--len", "1e4", "--on-fault", "retry", "-q", "--worker-bin"]).arg(&bin);
        let out = run_cmd(cmd, LIMIT);
        out.expect_code(1);
        let lines = out.error_lines();
        assert_eq!(lines.len(), 1, "{bin:?}: one line, not one per worker or a child's stderr: {}", out.stderr);
        assert!(lines[0].contains("could not start") && lines[0].contains(says), "{bin:?}: {}", lines[0]);
        assert!(!lines[0].contains("SIGKILL"), "why vecpar killed it, not how: {}", lines[0]);
        assert!(!out.stderr.contains("retry"), "{bin:?}: not retried: {}", out.stderr);
    }
}

#[test]
fn descendants_that_leave_the_session_are_ended_too() {
    let dir = TempDir::new("setsid");
    let marker = format!("vecpar-escapee-{}", std::process::id());
    let wrapper = script(
        &dir,
        "worker-wrapper",
        &format!("setsid sh -c 'exec -a {marker} sleep 300' &\nexec \"{}\" \"$@\"", worker_bin()),
    );
    let escapees = || processes().into_iter().filter(|(_, cmd)| cmd.starts_with(&marker)).count();
    for (fault, code) in [("none", 0), ("segv", 4), ("hang", 4)] {
        let mut args = vec!["--worker-bin", wrapper.to_str().unwrap(), "--procs", "2", "--len", "1e4", "-q"];
        let inject = format!("1:{fault}@1");
        if fault != "none" {
            args.extend(["--inject-fault", &inject, "--timeout", "2"]);
        }
        coord(&args).expect_code(code);
        assert_eq!(escapees(), 0, "{fault}: a descendant in its own session outlived the run");
    }
    // Interrupted with the workers running: the same.
    let mut run =
        Background::start(&[&LONG[..], &["--procs", "2", "-q", "--worker-bin", wrapper.to_str().unwrap()]].concat());
    run.wait_for_workers(2);
    run.signal(nix::sys::signal::Signal::SIGTERM);
    run.finish(LIMIT).expect_code(143);
    assert_eq!(escapees(), 0, "SIGTERM: a descendant in its own session outlived the run");
}

#[test]
fn a_small_stack_limit_is_no_overflow() {
    // The main thread's stack is the rlimit's; vecpar runs on one of its own.
    for mode in ["procs", "threads", "serial"] {
        let mut cmd = Command::new("prlimit");
        cmd.args(["--stack=32768", coord_bin(), "--mode", mode, "--len", "1e5", "-q"]);
        if mode != "serial" {
            cmd.args(["--procs", "2"]);
        }
        let out = run_cmd(cmd, LIMIT);
        out.expect_code(0);
        assert!(out.stdout.contains("Solution validates"), "{mode}: {}", out.stderr);
    }
}

#[test]
fn limits_are_named_for_what_they_forbid() {
    // An address-space limit far below 256 MiB still runs a small run…
    let mut cmd = Command::new("prlimit");
    cmd.args(["--as=100000000", coord_bin(), "--procs", "2", "--len", "1e4", "-q"]);
    run_cmd(cmd, LIMIT).expect_code(0);
    // …and a file size limit is named as such.
    for shm in ["memfd", "posix"] {
        let mut cmd = Command::new("prlimit");
        cmd.args(["--fsize=1000", coord_bin(), "--procs", "2", "--len", "1e5", "--shm", shm, "-q"]);
        let out = run_cmd(cmd, LIMIT);
        out.expect_code(1);
        let lines = out.error_lines();
        assert_eq!(lines.len(), 1, "{}", out.stderr);
        assert!(lines[0].contains("ulimit -f"), "{shm}: names the limit: {}", lines[0]);
        assert!(!lines[0].contains("EFBIG"), "{}", lines[0]);
    }
}

#[test]
fn isolation_uses_the_worker_vecpar_worker_names() {
    let dir = TempDir::new("isoworker");
    let seen = dir.join("seen");
    let wrapper =
        script(&dir, "worker-wrapper", &format!("touch '{}'\nexec \"{}\" \"$@\"", seen.display(), worker_bin()));
    let mut cmd = Command::new(coord_bin());
    cmd.args(["isolation", "--faults", "exit", "--modes", "procs", "--len", "1e4", "-q"])
        .env("VECPAR_WORKER", &wrapper);
    run_cmd(cmd, LIMIT).expect_code(0);
    assert!(seen.exists(), "the child runs started the worker VECPAR_WORKER names");
}

#[test]
fn a_slow_start_is_not_a_hang_whatever_the_timeout() {
    // A worker binary that takes 4 s to start (a loaded machine, a slow
    // file system) under --timeout 2: start-up has its own patience, so
    // the run is neither refused nor counted as a fault.
    let dir = TempDir::new("slowstart");
    let slow = script(&dir, "slow-worker", &format!("sleep 4\nexec \"{}\" \"$@\"", worker_bin()));
    let mut cmd = Command::new(coord_bin());
    cmd.args(["--procs", "2", "--len", "1e5", "--timeout", "2", "--export-json", "-", "-q", "--worker-bin"]).arg(&slow);
    let out = run_cmd(cmd, LIMIT);
    out.expect_code(0);
    let r = out.json();
    assert_eq!(r["validated"], true);
    assert_eq!(r["faults"].as_array().map(Vec::len), Some(0), "{}", r["faults"]);
}
