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
    if allowed_cpus() > 1 {
        // Narrower than this process's cpuset: said to be an affinity mask
        // its starter set, in the JSON and the header.
        let set_by = &r["config"]["procs_source"]["set_by"];
        assert_eq!(set_by["kind"], "affinity_mask", "{set_by}");
        assert!(set_by["by"].as_str().unwrap().contains("taskset"), "{set_by}");
        assert_eq!(r["host"]["cpus_set_by"], *set_by);
        let out = taskset("0", &["--len", "100000", "--runs", "1"]);
        assert!(
            out.stdout.contains("the CPUs this process may use: 0, from an affinity mask set by"),
            "{}",
            out.stdout
        );
    }
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
        if !make_cgroup(&dir) {
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
    // Removed however the test ends, waiting for the kernel to empty it.
    let cg = TestCgroup { dirs: vec![dir.clone()] };
    let script = format!(
        r#"echo $$ > {}/cgroup.procs && exec "{}" --len 100000 --export-json - -q"#,
        dir.display(),
        coord_bin()
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]);
    let out = run_cmd(cmd, Duration::from_secs(60));
    drop(cg);
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

/// Runs the coordinator with `TMPDIR` set to `tmpdir`.
fn with_tmpdir(tmpdir: &std::ffi::OsStr, args: &[&str]) -> Outcome {
    let mut cmd = Command::new(coord_bin());
    cmd.args(args).env("TMPDIR", tmpdir);
    run_cmd(cmd, LIMIT)
}

#[test]
fn a_broken_tmpdir_does_not_matter() {
    use std::os::unix::ffi::OsStrExt;
    // The rendezvous with the workers needs no directory: each inherits its
    // end of a socket pair. Whatever $TMPDIR is, runs are unaffected.
    let dir = TempDir::new("tmpdir");
    let file = dir.join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let long = dir.path().join("d".repeat(200)).join("e".repeat(200));
    std::fs::create_dir_all(&long).unwrap();
    let mut not_utf8 = dir.path().as_os_str().as_bytes().to_vec();
    not_utf8.extend(b"/\xff\xfe");
    let cases: Vec<(&str, std::ffi::OsString)> = vec![
        ("missing", dir.join("missing/deeper").into_os_string()),
        ("a regular file", file.into_os_string()),
        ("400 characters long", long.into_os_string()),
        ("not UTF-8", std::ffi::OsStr::from_bytes(&not_utf8).to_os_string()),
        ("empty", std::ffi::OsString::new()),
    ];
    for (what, tmpdir) in &cases {
        for args in [
            &["--procs", "3", "--len", "1e5", "--export-json", "-", "-q"][..],
            &[
                "--procs",
                "2",
                "--len",
                "1e4",
                "--inject-fault",
                "1:segv@1",
                "--on-fault",
                "retry",
                "--export-json",
                "-",
                "-q",
            ],
        ] {
            let out = with_tmpdir(tmpdir, args);
            out.expect_code(0);
            assert_eq!(out.json()["validated"], true, "TMPDIR {what}");
            assert!(out.stderr.is_empty(), "TMPDIR {what}: {}", out.stderr);
        }
    }
    // Read-only, where a private mount namespace allows one.
    if is_root() && can_unshare_mounts() {
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "sh", "-c", r#"set -e; d=$(mktemp -d); mount -t tmpfs -o ro tmpfs "$d"; TMPDIR="$d" "$VECPAR" --procs 2 --len 1e5 -q; umount "$d"; rmdir "$d""#]);
        cmd.env("VECPAR", coord_bin());
        let out = run_cmd(cmd, LIMIT);
        out.expect_code(0);
        assert!(out.stdout.contains("Solution validates"), "{}", out.stderr);
    } else {
        skip("read-only TMPDIR", "needs root and unshare -m");
    }
}

/// A cgroup (v1 hierarchy `controller`, or the unified one) made for one
/// test, removed on drop; `None` where cgroups cannot be created here.
struct TestCgroup {
    dirs: Vec<PathBuf>,
}

/// Makes `dir` a cgroup: true when the kernel made it one (it holds
/// `cgroup.procs`). On cgroup v1, /sys/fs/cgroup itself is a tmpfs where a
/// directory is only a directory: one made there is removed at once.
fn make_cgroup(dir: &Path) -> bool {
    if std::fs::create_dir(dir).is_err() {
        return false;
    }
    if dir.join("cgroup.procs").exists() {
        return true;
    }
    let _ = std::fs::remove_dir(dir);
    false
}

impl TestCgroup {
    /// A parent cgroup with `settings` (file, value) and a child in it
    /// with none: a limit the child inherits without showing it.
    fn nested(controller: &str, settings: &[(&str, &str)]) -> Option<TestCgroup> {
        if !is_root() {
            return None;
        }
        // Unique per cgroup, not only per test binary: tests that run at
        // once must never share (or remove) each other's.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("vecpar-test-{}-{n}-{controller}", std::process::id());
        for root in [Path::new("/sys/fs/cgroup").join(controller), PathBuf::from("/sys/fs/cgroup")] {
            let parent = root.join(&name);
            if !make_cgroup(&parent) {
                continue;
            }
            let cg = TestCgroup { dirs: vec![parent.clone()] };
            if settings.iter().all(|(file, value)| std::fs::write(parent.join(file), value).is_ok()) {
                let child = parent.join("inner");
                if make_cgroup(&child) {
                    let mut cg = cg;
                    cg.dirs.push(child);
                    return Some(cg);
                }
            }
        }
        None
    }

    /// A shell command that moves itself into the innermost cgroup, then
    /// runs `command`.
    fn run(&self, command: &str) -> Outcome {
        let inner = self.dirs.last().unwrap();
        let script = format!("echo $$ > {}/cgroup.procs && {command}", inner.display());
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script]).env("VECPAR", coord_bin());
        run_cmd(cmd, LIMIT)
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            // The processes have exited; the kernel may take a moment to
            // notice, so try a few times.
            for _ in 0..100 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[test]
fn a_memory_limit_on_a_parent_cgroup_is_seen_before_the_run_and_an_oom_kill_is_named() {
    let limit = (96u64 << 20).to_string();
    let Some(cg) = TestCgroup::nested("memory", &[("memory.limit_in_bytes", &limit)])
        .or_else(|| TestCgroup::nested("", &[("memory.max", &limit)]))
    else {
        return skip(
            "parent cgroup memory limit",
            "cannot create a memory cgroup here (needs root and a writable hierarchy)",
        );
    };
    // 240 MB of arrays under a 96 MiB limit set on the parent.
    let out = cg.run(r#"exec "$VECPAR" --procs 2 --len 1e7 -q"#);
    out.expect_code(1);
    let lines = out.error_lines();
    let parent_name = cg.dirs[0].file_name().unwrap().to_str().unwrap();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(lines[0].contains("--len") && lines[0].contains(parent_name), "names the parent's limit: {}", lines[0]);
    // Past the preflight, the kernel's OOM killer takes a worker: said in
    // one line naming the limit, never a silent SIGKILL of the coordinator.
    // (Workers volunteer as the OOM killer's victims: the coordinator
    // lives to say what happened.)
    let out = cg.run(r#"VECPAR_NO_PREFLIGHT=1 exec "$VECPAR" --procs 2 --len 1e7 --export-json - -q"#);
    out.expect_code(4);
    let r = out.json();
    assert_eq!(r["faults"][0]["cause"]["kind"], "out-of-memory", "{}", r["faults"]);
    let line = out.stderr.lines().find(|l| l.contains("worker lost")).unwrap_or_default();
    assert!(line.contains("OOM killer") && line.contains(parent_name), "names the parent's limit: {}", out.stderr);
    assert!(!out.stderr.contains("SIGBUS"), "{}", out.stderr);
}

#[test]
fn a_small_address_space_limit_is_one_runtime_error() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        return skip("address space limit", "prlimit is not installed");
    }
    // Enough to start the binaries, not to map 240 MB of arrays.
    for mode in ["procs", "threads"] {
        let mut cmd = Command::new("prlimit");
        cmd.args(["--as=200000000", coord_bin(), "--mode", mode, "--procs", "2", "--len", "1e7", "-q"]);
        let out = run_cmd(cmd, LIMIT);
        out.expect_code(1);
        let lines = out.error_lines();
        assert_eq!(lines.len(), 1, "{mode}: one line, not one per worker: {}", out.stderr);
        assert!(
            lines[0].contains("RLIMIT_AS") || lines[0].contains("ulimit -v"),
            "{mode}: names the limit: {}",
            lines[0]
        );
    }
}

#[test]
fn workers_pinned_to_one_cpu_do_not_spin_and_the_run_says_so() {
    if allowed_cpus() < 2 {
        return skip("shared pin", "needs two allowed CPUs");
    }
    let out = coord(&["--pin", "1", "--procs", "2", "--len", "1e5", "--runs", "20", "--export-json", "-"]);
    out.expect_code(0);
    let r = out.json();
    assert_eq!(r["config"]["placement"]["pin_plan"], serde_json::json!([1, 1]));
    assert_eq!(r["config"]["placement"]["worker_spin_us"], 0, "a spinner would steal its neighbour's CPU");
    assert!(out.stderr.contains("workers 0, 1 are pinned to the same CPU 1"), "{}", out.stderr);
    // With a CPU each they may spin.
    let r = coord_json(&["--pin", "0,1", "--procs", "2", "--len", "1e5"], 0);
    assert!(r["config"]["placement"]["worker_spin_us"].as_u64().unwrap() > 0);
}

#[test]
fn a_pin_list_is_followed_in_its_order() {
    if allowed_cpus() < 2 {
        return skip("pin order", "needs two allowed CPUs");
    }
    let r = coord_json(&["--pin", "1,0", "--procs", "2", "--len", "1e5"], 0);
    let pins: Vec<u64> = r["workers"].as_array().unwrap().iter().map(|w| w["pin_cpu"].as_u64().unwrap()).collect();
    assert_eq!(pins, [1, 0], "worker 0 on the first CPU listed");
    for w in r["workers"].as_array().unwrap() {
        assert_eq!(w["cpu"], w["pin_cpu"], "it ran where it was pinned: {w}");
    }
}

#[test]
fn serial_mode_does_not_claim_a_flag_it_was_not_given() {
    let out = coord(&["--mode", "serial", "--len", "1e4"]);
    out.expect_code(0);
    let header = out.stdout.lines().next().unwrap();
    assert!(!header.contains("--procs"), "{header}");
}

/// The CPUs this process may run on.
fn allowed_cpus() -> usize {
    nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| (0..nix::sched::CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).count())
        .unwrap_or(1)
}

/// A cgroup with a CPU quota of `cpus` (v1 cpu controller or v2 cpu.max).
fn quota_cgroup(cpus: f64) -> Option<TestCgroup> {
    let quota = ((cpus * 100_000.0) as u64).to_string();
    TestCgroup::nested("cpu", &[("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", &quota)])
        .or_else(|| TestCgroup::nested("", &[("cpu.max", &format!("{quota} 100000"))]))
}

#[test]
fn a_cpu_quota_is_honoured_by_runs_and_sweeps_and_throttling_is_reported() {
    // A tenth of a CPU: two busy workers exceed it in every period, however
    // busy the rest of the machine keeps the CPUs (at half a CPU, tests
    // running beside this one could starve them below the quota).
    let Some(cg) = quota_cgroup(0.1) else {
        return skip("cgroup quota", "cannot create a cgroup with a CPU quota here");
    };
    // The default: what the quota allows (rounded up to one worker).
    let r = cg.run(r#"exec "$VECPAR" --len 1e5 --export-json - -q"#);
    r.expect_code(0);
    let r = r.json();
    assert_eq!(r["config"]["procs"], 1);
    assert_eq!(r["config"]["procs_source"]["kind"], "cgroup_quota");
    // More workers than the quota allows: said, naming the quota.
    let out = cg.run(r#"exec "$VECPAR" --procs 2 --len 1e5 --runs 3"#);
    out.expect_code(0);
    assert!(out.stderr.contains("quota"), "{}", out.stderr);
    // A sweep's default grid stops at 4 × what the quota allows.
    let out = cg.run(r#"exec "$VECPAR" sweep --modes procs --len 1e4 --runs 2 --export-json - -q"#);
    out.expect_code(0);
    let s = out.json();
    let procs: Vec<u64> = s["points"].as_array().unwrap().iter().map(|p| p["procs"].as_u64().unwrap()).collect();
    assert_eq!(procs, [1, 2, 4], "1, 2, 4 up to 4 × 1 CPU");
    assert_eq!(s["cpus"], 1);
    // Two busy workers on a tenth of a CPU for a second or more are throttled.
    let out = cg.run(r#"exec "$VECPAR" --procs 2 --len 2e6 --runs 40 --export-json -"#);
    out.expect_code(0);
    let r = out.json();
    let t = &r["throttling"];
    assert!(t["periods"].as_u64().unwrap_or(0) > 0, "throttling is read from cpu.stat: {t}");
    assert!(out.stderr.contains("throttled"), "{}", out.stderr);
    assert!(out.stderr.contains("lower --procs"), "two workers can be fewer: {}", out.stderr);
    // One worker cannot be fewer: the advice is the quota itself.
    let out = cg.run(r#"exec "$VECPAR" --procs 1 --len 4e6 --runs 40"#);
    out.expect_code(0);
    let line = out.stderr.lines().find(|l| l.contains("throttled")).unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(line.contains("raise the quota") && !line.contains("lower --procs"), "{line}");
}

#[test]
fn a_sweep_under_a_fractional_quota_shows_it_and_marks_its_throttled_points() {
    let Some(cg) = quota_cgroup(0.1) else {
        return skip("sweep quota", "cannot create a cgroup with a CPU quota here");
    };
    let dir = TempDir::new("quota-sweep");
    let plot = dir.str("sweep.svg");
    let json = dir.str("sweep.json");
    // Two busy workers on a tenth of a CPU, each run long enough to meet
    // the quota in many periods, each point twice.
    let out = cg.run(&format!(
        r#"exec "$VECPAR" sweep --modes procs,threads --procs 2 --len 2e6 --runs 20 --repeat 2 --plot {plot} --export-json {json}"#
    ));
    out.expect_code(0);
    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let quota = s["cpu_quota"].as_f64().expect("the quota, as a fraction");
    assert!((quota - 0.1).abs() < 1e-9, "{quota}");
    assert!(out.stdout.contains("a 0.10-CPU quota"), "the header shows the fraction:\n{}", out.stdout);
    let points = s["points"].as_array().unwrap();
    let throttled: Vec<&serde_json::Value> =
        points.iter().filter(|p| p["suspect"].as_array().unwrap().iter().any(|w| w == "throttled")).collect();
    assert!(!throttled.is_empty(), "throttled points are marked: {points:?}");
    // Each throttled point is named in one warning and marked in its row.
    let warning = out.stderr.lines().find(|l| l.contains("throttled") && l.contains("point")).unwrap_or("");
    for p in &throttled {
        let name = format!("{} × 2, len 2M", p["mode"].as_str().unwrap());
        assert!(warning.contains(&name), "{name} in: {warning}");
    }
    assert!(out.stdout.lines().any(|l| l.contains("  ⚠ ") && l.contains("throttled")), "{}", out.stdout);
    // The ratio has its range over the two repetitions.
    let line = out.stdout.lines().find(|l| l.contains("processes ÷ threads")).unwrap();
    assert!(line.contains("min–max over the repetitions") && line.contains('['), "{line}");
    // The plot marks the quota where it is, and rings the suspect points.
    let svg = std::fs::read_to_string(&plot).unwrap();
    let texts = svg_texts(&svg).join(" ");
    assert!(texts.contains("0.10-CPU quota") && texts.contains("ringed"), "{texts}");
}
