//! Restricted machines: a small /dev/shm, process limits, CPU sets, CPU
//! quotas, and kernels that refuse pinning. Tests that need privileges this
//! machine does not give skip with a printed reason.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::util::*;

/// Runs `script` in a private mount namespace with a 10 MB tmpfs over
/// /dev/shm; `None` when namespaces are not allowed here.
fn in_small_shm(script: &str) -> Option<Outcome> {
    let probe = Command::new("unshare").args(["-m", "true"]).status();
    if !matches!(probe, Ok(s) if s.success()) {
        return None;
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c", &format!("mount -t tmpfs -o size=10m tmpfs /dev/shm && {script}")]);
    cmd.env("VECPAR", coord_bin());
    Some(run_cmd(cmd, Duration::from_secs(60)))
}

#[test]
fn a_small_dev_shm_is_a_clear_error_never_a_sigbus() {
    let Some(out) = in_small_shm(r#""$VECPAR" --shm posix --len 1e6 -q"#) else {
        return skip("small /dev/shm", "unshare -m is not allowed here");
    };
    out.expect_code(1);
    let line = out.error_lines().join("\n");
    assert!(line.contains("--shm posix needs 24.0 MB") && line.contains("free"), "{line}");
    assert!(line.contains("--shm memfd"), "suggests the memfd default: {line}");

    // The memfd default is not limited by /dev/shm.
    let out = in_small_shm(r#""$VECPAR" --len 1e6 -q && ls /dev/shm | wc -l"#).unwrap();
    out.expect_code(0);
    assert!(out.stdout.contains("Solution validates"));
    assert_eq!(out.stdout.lines().last(), Some("0"), "nothing left in the namespace's /dev/shm");

    // Past the preflight, the workers' own reservations still fail cleanly:
    // fallocate says ENOSPC before any page is touched.
    let out = in_small_shm(
        r#"VECPAR_NO_PREFLIGHT=1 "$VECPAR" --shm posix --len 1e6 -q; echo "exit $?"; ls /dev/shm | wc -l"#,
    )
    .unwrap();
    assert!(out.stdout.contains("exit 1"), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.ends_with("0\n"), "nothing left: {}", out.stdout);
    assert!(out.stderr.contains("could not reserve") && out.stderr.contains("ENOSPC"), "{}", out.stderr);
    assert!(!out.stderr.contains("SIGBUS") && !out.stderr.contains("Bus error"));
}

/// Runs the coordinator as user `nobody` with RLIMIT_NPROC = `nproc`.
fn as_nobody_with_nproc(nproc: u32, args: &[&str]) -> Option<Outcome> {
    if !is_root() || Command::new("setpriv").arg("--help").output().is_err() {
        return None;
    }
    // nobody must be able to reach the binaries.
    let exe = Path::new(coord_bin());
    if !exe
        .ancestors()
        .skip(1)
        .all(|d| d.metadata().is_ok_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o001 != 0))
    {
        return None;
    }
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "prlimit", &format!("--nproc={nproc}"), coord_bin()]);
    cmd.args(args);
    cmd.current_dir("/");
    Some(run_cmd(cmd, Duration::from_secs(60)))
}

#[test]
fn more_workers_than_this_user_may_start_is_a_clear_error() {
    let Some(out) = as_nobody_with_nproc(5, &["--procs", "50", "--len", "10000"]) else {
        return skip("process limit", "needs root, setpriv, and binaries that user nobody can reach");
    };
    out.expect_code(1);
    let line = out.error_lines().join("\n");
    assert!(line.contains("--procs 50") && line.contains("RLIMIT_NPROC"), "{line}");
    // Within the preflight's count but past the limit once the coordinator's
    // own threads start: the system refuses, the run stops cleanly.
    let out = as_nobody_with_nproc(5, &["--procs", "3", "--len", "10000"]).unwrap();
    out.expect_code(1);
    let line = out.error_lines().join("\n");
    assert_eq!(out.error_lines().len(), 1, "{}", out.stderr);
    assert!(line.contains("--procs"), "{line}");
    // run_cmd checked that no worker survived.
}

fn taskset(cpus: &str, args: &[&str]) -> Outcome {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", cpus, coord_bin()]).args(args);
    run_cmd(cmd, Duration::from_secs(60))
}

#[test]
fn a_restricted_cpu_set_is_respected() {
    if Command::new("taskset").arg("-V").output().is_err() {
        return skip("cpu set", "taskset is not installed");
    }
    let r = taskset("0", &["--len", "100000", "--export-json", "-", "-q"]).json();
    assert_eq!(r["config"]["procs"], 1, "the default is what the mask allows");
    assert_eq!(r["config"]["procs_source"]["kind"], "affinity_mask");
    assert_eq!(r["config"]["procs_source"]["cpus"], "0");
    for pin in ["compact", "spread", "auto"] {
        let out = taskset("0", &["--procs", "3", "--pin", pin, "--len", "100000", "--export-json", "-", "-q"]);
        out.expect_code(0);
        let r = out.json();
        for w in r["workers"].as_array().unwrap() {
            assert_eq!(w["cpu"], 0, "--pin {pin}: every worker stays in the set: {w}");
            if pin != "auto" {
                assert_eq!(w["pin_cpu"], 0);
            }
        }
    }
    let out = taskset("0", &["--pin", "0,1", "--len", "1000"]);
    out.expect_code(2);
    let line = out.error_lines().join("\n");
    assert!(line.contains("--pin") && line.contains("CPU 1") && line.contains("(0)"), "names the allowed set: {line}");
}

#[test]
fn a_cgroup_cpu_quota_lowers_the_default() {
    // cgroup v1 "cpu" controller or a v2 hierarchy with cpu.max.
    let candidates = [PathBuf::from("/sys/fs/cgroup/cpu"), PathBuf::from("/sys/fs/cgroup")];
    let name = format!("vecpar-test-{}", std::process::id());
    let mut made = None;
    for root in candidates {
        let dir = root.join(&name);
        if std::fs::create_dir(&dir).is_err() {
            continue;
        }
        let ok = if dir.join("cpu.cfs_quota_us").exists() {
            std::fs::write(dir.join("cpu.cfs_period_us"), "100000").is_ok()
                && std::fs::write(dir.join("cpu.cfs_quota_us"), "100000").is_ok()
        } else {
            std::fs::write(dir.join("cpu.max"), "100000 100000").is_ok()
        };
        if ok {
            made = Some(dir);
            break;
        }
        let _ = std::fs::remove_dir(&dir);
    }
    let Some(dir) = made else {
        return skip("cgroup quota", "cannot create a cgroup with a CPU quota here");
    };
    let script = format!(
        r#"echo $$ > {}/cgroup.procs && exec "{}" --len 100000 --export-json - -q"#,
        dir.display(),
        coord_bin()
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]);
    let out = run_cmd(cmd, Duration::from_secs(60));
    let _ = std::fs::remove_dir(&dir);
    out.expect_code(0);
    let r = out.json();
    assert_eq!(r["config"]["procs"], 1, "a quota of one CPU means one worker");
    assert_eq!(r["config"]["procs_source"]["kind"], "cgroup_quota");
    assert_eq!(r["config"]["procs_source"]["cpus"], 1.0);
}

/// Builds the seccomp helper that makes sched_setaffinity fail with EPERM.
fn deny_affinity_helper() -> Option<PathBuf> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    let out_dir = std::env::temp_dir().join(format!("vecpar-helper-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).ok()?;
    let exe = out_dir.join("deny_affinity");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/deny_affinity.c");
    let built = Command::new("gcc").arg("-O2").arg("-o").arg(&exe).arg(&src).status().ok()?.success();
    built.then_some(exe)
}

#[test]
fn a_refused_pin_is_reported_and_the_run_goes_on_unpinned() {
    let Some(helper) = deny_affinity_helper() else {
        return skip("refused pinning", "gcc is not available to build the seccomp helper");
    };
    for mode in ["procs", "threads"] {
        let mut cmd = Command::new(&helper);
        cmd.args([
            coord_bin(),
            "--mode",
            mode,
            "--procs",
            "2",
            "--pin",
            "compact",
            "--len",
            "100000",
            "--export-json",
            "-",
        ]);
        let out = run_cmd(cmd, Duration::from_secs(60));
        out.expect_code(0);
        let r = out.json();
        assert_eq!(r["validated"], true);
        for w in r["workers"].as_array().unwrap() {
            assert_eq!(w["pinned"], false, "{mode}: {w}");
            assert!(w["pin_refused"].as_str().unwrap().contains("EPERM"), "{w}");
        }
        assert!(out.stderr.contains("was refused") && out.stderr.contains("ran unpinned"), "{}", out.stderr);
    }
    let _ = std::fs::remove_dir_all(helper.parent().unwrap());
}
