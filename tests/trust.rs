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
