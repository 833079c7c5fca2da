//! Every way a run can end leaves no segment, no temporary file and no
//! process: every terminating signal to the coordinator, SIGKILL of either
//! side, an experiment killed with its children, a worker that forks, and
//! the stale names a dead run may leave in /dev/shm (removed only when they
//! are provably ours and provably dead). Also: what a live worker's
//! mappings look like.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::util::*;

/// A run long enough to be interrupted.
const LONG: [&str; 6] = ["--len", "1e6", "--runs", "1000000", "--quiet", "--procs"];

/// Waits (up to the suite's limit) until `what` holds.
fn eventually(what: &str, mut holds: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !holds() {
        assert!(Instant::now() < deadline, "{what}: still not true after {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts a long run, waits until its workers compute, and sends `signal`;
/// checks the orderly exit 128+N and that every worker was reaped *before*
/// the coordinator exited (not a moment later, by the kernel).
fn interrupt(signal: Signal, mode: &str, shm: &str) {
    let procs = if mode == "serial" { "1" } else { "2" };
    let mut args = [&LONG[..], &[procs, "--mode", mode, "--shm", shm]].concat();
    if mode == "serial" {
        args.retain(|a| *a != "--procs" && *a != "1");
    }
    let mut run = Background::start(&args);
    let workers = match mode {
        "procs" => run.wait_for_workers(2),
        "threads" => {
            run.wait_for_worker_threads(2);
            Vec::new()
        }
        _ => {
            run.wait_for_worker_threads(0);
            Vec::new()
        }
    };
    run.signal(signal);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = run.child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < LIMIT, "{signal} did not stop the run");
        std::thread::sleep(Duration::from_millis(2));
    };
    // Checked at once: the coordinator promised "stopped and reaped".
    let alive: Vec<u32> = workers.iter().copied().filter(|&w| is_alive(w)).collect();
    assert!(alive.is_empty(), "{signal} in {mode}/{shm}: workers {alive:?} outlived the coordinator ({status:?})");
    let out = run.finish(LIMIT);
    assert_eq!(out.code, Some(128 + signal as i32), "{signal} in {mode}/{shm}: {}", out.stderr);
    assert!(out.stderr.contains(&format!("interrupted by {}", signal.as_str())), "{}", out.stderr);
    assert!(out.stderr.contains("reaped"), "{}", out.stderr);
}

#[test]
fn sigint_and_sigterm_stop_and_reap_every_worker_then_exit_128_plus_n() {
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        for (mode, shm) in [("procs", "memfd"), ("procs", "posix"), ("threads", "memfd")] {
            interrupt(signal, mode, shm);
        }
    }
}

#[test]
fn every_other_terminating_signal_takes_the_same_orderly_path() {
    for signal in [
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGALRM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGPWR,
        Signal::SIGXCPU,
        Signal::SIGVTALRM,
    ] {
        interrupt(signal, "procs", "memfd");
    }
    // The signals a fault raises, sent by another process (si_code <= 0):
    // an interruption like any other, not a worker's fault or a lost
    // segment, in every mode.
    for signal in [
        Signal::SIGBUS,
        Signal::SIGSEGV,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGABRT,
        Signal::SIGTRAP,
        Signal::SIGSYS,
    ] {
        for mode in ["procs", "threads", "serial"] {
            interrupt(signal, mode, "memfd");
        }
    }
}

#[test]
fn a_second_signal_forces_the_stop_and_a_repeated_sigterm_does_not() {
    // A worker thread that hangs cannot be stopped in order: the run waits
    // for it (up to the grace time) after the first signal; a second one,
    // of another kind, ends the wait at once, killing and reaping.
    let hung = ["--mode", "threads", "--procs", "2", "--len", "1e5", "--runs", "1000000", "-q"];
    let mut run = Background::start(&[&hung[..], &["--inject-fault", "1:hang@1", "--timeout", "600"]].concat());
    run.wait_for_worker_threads(2);
    // The hang has begun: one thread stays in clock_nanosleep (the
    // injected hang sleeps for an hour at a time).
    let asleep = |pid: u32| -> Vec<String> {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| {
                d.flatten()
                    .filter(|t| std::fs::read_to_string(t.path().join("syscall")).is_ok_and(|s| s.starts_with("230 ")))
                    .map(|t| t.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let pid = run.pid();
    eventually("a worker thread hangs", || {
        let before = asleep(pid);
        std::thread::sleep(Duration::from_millis(200));
        let after = asleep(pid);
        before.iter().any(|t| after.contains(t))
    });
    run.signal(Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    run.signal(Signal::SIGTERM);
    let out = run.finish(LIMIT);
    assert_eq!(out.code, Some(130), "{}", out.stderr);
    assert!(
        out.stderr.contains("forcibly (SIGTERM arrived during the orderly stop)"),
        "the forced path, saying why: {}",
        out.stderr
    );
    // SIGTERM twice, as launchers send it: one request, the orderly path.
    let mut run = Background::start(&[&LONG[..], &["2"]].concat());
    let workers = run.wait_for_workers(2);
    run.signal(Signal::SIGTERM);
    run.signal(Signal::SIGTERM);
    let out = run.finish(LIMIT);
    assert_eq!(out.code, Some(143), "{}", out.stderr);
    assert!(out.stderr.contains("workers stopped and reaped"), "{}", out.stderr);
    assert!(!out.stderr.contains("forcibly"), "{}", out.stderr);
    assert!(workers.iter().all(|&w| !is_alive(w)));
}

#[test]
fn children_start_with_no_signal_blocked_and_workers_block_the_terminating_ones() {
    // A --worker-bin wrapper sees the mask its coordinator gave it. It
    // reads it with shell builtins only: a shell blocks every signal for a
    // moment around each fork, and a `grep` it forked could read that
    // moment's mask instead (seen once on a busy machine).
    let dir = TempDir::new("mask");
    let seen = dir.join("mask");
    let wrapper = script(
        &dir,
        "wrapper",
        &format!(
            "while read -r k v; do [ \"$k\" = SigBlk: ] && printf '%s\\t%s\\n' \"$k\" \"$v\" > '{}'; done \
             < /proc/$$/status\nexec \"{}\" \"$@\"",
            seen.display(),
            worker_bin()
        ),
    );
    coord(&["--procs", "1", "--len", "1e4", "-q", "--worker-bin", wrapper.to_str().unwrap()]).expect_code(0);
    let mask = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(mask.trim(), "SigBlk:\t0000000000000000", "nothing blocked in a child: {mask}");
    // The worker itself blocks SIGTERM: its coordinator stops it.
    let mut run = Background::start(&[&LONG[..], &["1"]].concat());
    let workers = run.wait_for_workers(1);
    let status = std::fs::read_to_string(format!("/proc/{}/status", workers[0])).unwrap();
    let blocked = status.lines().find_map(|l| l.strip_prefix("SigBlk:")).unwrap().trim().to_string();
    let bits = u64::from_str_radix(&blocked, 16).unwrap();
    assert_ne!(bits & (1 << (Signal::SIGTERM as u64 - 1)), 0, "SIGTERM blocked in the worker: {blocked}");
    run.signal(Signal::SIGTERM);
    run.finish(LIMIT).expect_code(143);
}

#[test]
fn a_broken_stderr_changes_no_exit_code_and_swallows_no_signal() {
    // stderr a pipe whose reader is gone: every diagnostic fails with EPIPE.
    let broken = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };
    // Warnings (8 workers on 2 CPUs, arrays in cache) and a clean exit.
    let mut cmd = Command::new(coord_bin());
    cmd.args(["--procs", "8", "--len", "1e5", "--runs", "3"]).stdout(Stdio::null()).stderr(broken());
    assert_eq!(cmd.status().unwrap().code(), Some(0), "warnings into a dead pipe");
    // A usage error still exits 2, a runtime error 1.
    let mut cmd = Command::new(coord_bin());
    cmd.args(["--procs", "0"]).stdout(Stdio::null()).stderr(broken());
    assert_eq!(cmd.status().unwrap().code(), Some(2));
    let mut cmd = Command::new(coord_bin());
    cmd.args(["--worker-bin", "/nonexistent/vecpar-worker", "--len", "1e4"]).stdout(Stdio::null()).stderr(broken());
    assert_eq!(cmd.status().unwrap().code(), Some(1));
    // And SIGINT still stops a running procs run, in order.
    let mut cmd = Command::new(coord_bin());
    cmd.args([&LONG[..], &["2"]].concat()).stdin(Stdio::null()).stdout(Stdio::null()).stderr(broken());
    let since = std::time::SystemTime::now();
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    eventually("two workers start", || workers_of(pid).len() >= 2);
    nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGINT).unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < LIMIT, "SIGINT was swallowed");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(status.code(), Some(130));
    assert_no_leftovers(pid, since);
}

#[test]
fn a_worker_killed_with_sigkill_is_reported_and_can_be_replaced() {
    for (policy, code) in [("fail", 4), ("retry", 0)] {
        let mut run = Background::start(&[
            "--procs",
            "3",
            "--len",
            "1e6",
            "--runs",
            "2000",
            "--on-fault",
            policy,
            "--export-json",
            "-",
            "--quiet",
        ]);
        let workers = run.wait_for_workers(3);
        let victim = workers[1];
        nix::sys::signal::kill(Pid::from_raw(victim as i32), Signal::SIGKILL).unwrap();
        let out = run.finish(LIMIT);
        assert_eq!(out.code, Some(code), "{policy}: {}", out.stderr);
        let r = out.json();
        let f = &r["faults"][0];
        assert_eq!(f["pid"].as_u64(), Some(victim as u64));
        assert_eq!(f["cause"]["name"], "SIGKILL");
        // Nothing in the worker saw the SIGKILL coming: when it died is
        // not known, only how far into its step it was found dead.
        assert!(f["detected_after_s"].is_null(), "{f}");
        assert!(f["step_elapsed_s"].is_f64(), "{f}");
        if policy == "retry" {
            assert_eq!(r["validated"], true);
        }
    }
}

#[test]
fn workers_die_with_a_coordinator_killed_by_sigkill() {
    for shm in ["memfd", "posix"] {
        let mut run = Background::start(&[&LONG[..], &["4", "--shm", shm]].concat());
        let workers = run.wait_for_workers(4);
        run.signal(Signal::SIGKILL);
        // PR_SET_PDEATHSIG: the kernel kills them when their parent dies;
        // the posix name was unlinked before the first worker started.
        // (finish() checks for segments, workers and temporary files.)
        let out = run.finish(LIMIT);
        assert_eq!(out.signal, Some(libc::SIGKILL));
        eventually("the workers die with their coordinator", || workers.iter().all(|&w| !is_alive(w)));
    }
}

#[test]
fn a_worker_bin_that_forks_is_killed_with_its_whole_process_group() {
    // A wrapper that leaves a grandchild holding the coordinator's stderr:
    // without a group kill, `vecpar-coord … | cat` would wait for it.
    let dir = TempDir::new("wrapper");
    let marker = format!("vecpar-grandchild-{}", std::process::id());
    let wrapper = script(
        &dir,
        "worker-wrapper",
        &format!("sh -c 'exec -a {marker} sleep 1000' &\nexec \"{}\" \"$@\"", worker_bin()),
    );
    let grandchildren = || processes().into_iter().filter(|(_, cmd)| cmd.starts_with(&marker)).count();
    for (fault, code) in [("hang", 4), ("segv", 4), ("none", 0)] {
        let mut args = vec!["--worker-bin", wrapper.to_str().unwrap(), "--procs", "2", "--len", "1e4", "-q"];
        let inject = format!("1:{fault}@1");
        if fault != "none" {
            args.extend(["--inject-fault", &inject, "--timeout", "2"]);
        }
        // coord() reads stderr to its end: it returns only if no grandchild holds it.
        let out = coord(&args);
        out.expect_code(code);
        assert_eq!(grandchildren(), 0, "{fault}: the wrapper's background child was killed with the worker");
    }
}

/// The `vecpar-coord` children of `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|(p, cmd)| cmd.contains("vecpar-coord") && parent_of(*p) == Some(pid))
        .map(|(p, _)| p)
        .collect()
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn an_interrupted_isolation_experiment_takes_its_children_with_it() {
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGKILL] {
        // A hang with a long timeout: the child run sits waiting for it.
        let mut run = Background::start(&[
            "isolation",
            "--faults",
            "hang",
            "--modes",
            "procs",
            "--timeout",
            "600",
            "--len",
            "1e4",
        ]);
        let mut child = 0;
        let mut workers = Vec::new();
        eventually("the experiment's child run starts its workers", || {
            if let Some(&c) = children_of(run.pid()).first() {
                child = c;
                workers = workers_of(c);
            }
            workers.len() >= 2
        });
        run.signal(signal);
        if signal == Signal::SIGKILL {
            let _ = run.child.wait();
            // At once: the kernel's SIGKILL on the parent's death, not a
            // SIGTERM whose orderly stop waits seconds for the hung worker.
            let deadline = Instant::now() + Duration::from_secs(3);
            while is_alive(child) {
                assert!(Instant::now() < deadline, "the child run outlived the killed experiment by 3 s");
                std::thread::sleep(Duration::from_millis(10));
            }
        } else {
            let out = run.finish(LIMIT);
            assert_eq!(out.code, Some(128 + signal as i32), "{signal}: {}", out.stderr);
        }
        // Dying with it: the child coordinator (and so its workers) gets
        // SIGTERM from the kernel even when the experiment was SIGKILLed.
        eventually("the child run and its workers die with the experiment", || {
            !is_alive(child) && workers.iter().all(|&w| !is_alive(w))
        });
        assert!(segments_of(child).is_empty());
    }
}

/// Runs `script` as root in a private mount namespace with its own tmpfs on
/// /dev/shm; `None` when the machine does not allow that.
fn in_private_dev_shm(script: &str) -> Option<Outcome> {
    if !is_root() || !can_unshare_mounts() {
        return None;
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c", &format!("set -e; mount -t tmpfs tmpfs /dev/shm; cd /dev/shm; {script}")]);
    cmd.env("VECPAR", coord_bin());
    Some(run_cmd(cmd, LIMIT))
}

/// The first bytes of a vecpar segment of this format version.
fn segment_header(dir: &TempDir) -> String {
    let path = dir.join("header");
    let mut bytes = b"VECPAR\0\x01".to_vec();
    bytes.extend(2u32.to_le_bytes());
    bytes.resize(4096, 0);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn the_stale_sweep_removes_only_this_users_dead_segments() {
    let dir = TempDir::new("sweep");
    let header = segment_header(&dir);
    let holder = dir.str("holder.pid");
    // Dead run of ours; another user's; a header-less file; a FIFO; a
    // symlink to a file elsewhere; a directory; an unrelated name.
    let script = format!(
        r#"
        cp {header} vecpar-1-00000000000000aa
        cp {header} vecpar-1-00000000000000bb; chown 54321:54321 vecpar-1-00000000000000bb
        echo 'just a file' > vecpar-1-00000000000000cc
        mkfifo vecpar-1-00000000000000dd
        cp {header} /dev/shm/target; ln -s /dev/shm/target vecpar-1-00000000000000ee
        mkdir vecpar-1-00000000000000ff
        cp {header} vecpar-results
        cp {header} vecpar-1-00000000000000AA
        cp {header} vecpar-01-00000000000000ab
        cp {header} vecpar-1-00000000000000ac
        flock vecpar-1-00000000000000ac sh -c 'echo $$ > {holder}; exec sleep 600' >/dev/null 2>&1 &
        while flock -n -x vecpar-1-00000000000000ac true; do sleep 0.01; done
        "$VECPAR" --shm posix --procs 2 --len 1e4 -q
        kill $(cat {holder}); wait
        echo left: $(ls /dev/shm)
        "#
    );
    let Some(out) = in_private_dev_shm(&script) else {
        return skip("stale sweep", "needs root and unshare -m for a private /dev/shm");
    };
    out.expect_code(0);
    let left = out.stdout.lines().find_map(|l| l.strip_prefix("left: ")).unwrap_or_default();
    let mut left: Vec<&str> = left.split_whitespace().collect();
    left.sort_unstable();
    assert_eq!(
        left,
        [
            "target",
            "vecpar-01-00000000000000ab",
            "vecpar-1-00000000000000AA",
            "vecpar-1-00000000000000ac",
            "vecpar-1-00000000000000bb",
            "vecpar-1-00000000000000cc",
            "vecpar-1-00000000000000dd",
            "vecpar-1-00000000000000ee",
            "vecpar-1-00000000000000ff",
            "vecpar-results"
        ],
        "only the dead run's own segment went (not one with a name vecpar would not give, nor one a live \
         process holds a flock() lock on): {}",
        out.stderr
    );
    // Said even under -q, naming what went.
    assert!(
        out.stderr.contains("removed 1 stale segment") && out.stderr.contains("vecpar-1-00000000000000aa"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_fifo_or_a_symlink_to_one_never_blocks_a_run() {
    let script = r#"
        mkfifo fifo; ln -s /dev/shm/fifo vecpar-2-0000000000000001
        mkfifo vecpar-2-0000000000000002
        "$VECPAR" --shm posix --procs 1 --len 1e4 -q
        "$VECPAR" --shm memfd --procs 1 --len 1e4 -q
        echo done
    "#;
    let Some(out) = in_private_dev_shm(script) else {
        return skip("fifo in /dev/shm", "needs root and unshare -m for a private /dev/shm");
    };
    // run_cmd's limit would catch a hang; the runs went through.
    out.expect_code(0);
    assert!(out.stdout.contains("done"));
}

#[test]
fn a_segment_locked_by_a_live_run_in_another_pid_namespace_is_left_alone() {
    // The pid in the name is dead *here*; the lock says its creator lives
    // (as a run in another container sharing /dev/shm would). In a private
    // /dev/shm: another test's posix run would sweep the file once unlocked.
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let dir = TempDir::new("locked");
    let header = segment_header(&dir);
    let name = format!("vecpar-{dead_pid}-{:016x}", std::process::id() as u64 * 0x1_0001);
    // An open file description lock (F_OFD_SETLK, 37), as a live run holds
    // on its segment; then the same run again once it is released.
    let locker = r#"
import fcntl, os, struct, subprocess, sys
name, vecpar = sys.argv[1], os.environ["VECPAR"]
fd = os.open(name, os.O_RDWR)
fcntl.fcntl(fd, 37, struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
run = [vecpar, "--shm", "posix", "--procs", "1", "--len", "1e4", "-q"]
first = subprocess.run(run, capture_output=True, text=True)
print("locked:", first.returncode, os.path.exists(name), first.stderr.strip() or "-")
os.close(fd)
second = subprocess.run(run, capture_output=True, text=True)
print("released:", second.returncode, os.path.exists(name), second.stderr.strip() or "-")
"#;
    let script = format!("cp {header} {name}\npython3 -c '{locker}' {name}");
    if !Command::new("python3").arg("-c").arg("").status().is_ok_and(|s| s.success()) {
        return skip("a locked segment", "python3 (which holds the lock) is not installed; .ci/run installs it");
    }
    let Some(out) = in_private_dev_shm(&script) else {
        return skip("a locked segment", "needs root and unshare -m for a private /dev/shm");
    };
    out.expect_code(0);
    let line = |tag: &str| out.stdout.lines().find(|l| l.starts_with(tag)).unwrap_or_default().to_string();
    assert_eq!(line("locked:"), "locked: 0 True -", "a locked segment is a live run's, not stale: {}", out.stdout);
    // Now it is provably dead: the next run removes it, and says so.
    let released = line("released:");
    assert!(released.starts_with("released: 0 False "), "{}", out.stdout);
    assert!(released.contains("removed 1 stale segment") && released.contains(&name), "{released}");
}

/// The mappings of `pid` that belong to the vecpar segment: (perms, offset, size).
fn segment_mappings(pid: u32) -> Vec<(String, u64, u64)> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    maps.lines()
        .filter(|l| l.contains("memfd:vecpar"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (lo, hi) = f[0].split_once('-').unwrap();
            let size = u64::from_str_radix(hi, 16).unwrap() - u64::from_str_radix(lo, 16).unwrap();
            (f[1].to_string(), u64::from_str_radix(f[2], 16).unwrap(), size)
        })
        .collect()
}

/// Waits until `pid` maps `n` pieces of the segment (a worker maps them
/// before its first round).
fn mappings_when(pid: u32, n: usize) -> Vec<(String, u64, u64)> {
    let mut maps = Vec::new();
    eventually("the segment is mapped", || {
        maps = segment_mappings(pid);
        maps.len() >= n
    });
    maps
}

/// The segment's mappings of `pid` once there are exactly `n` of them: a
/// worker filling its chunk has the chunk of a and b writable for a moment
/// (which splits their mappings); outside that, it has its steady four.
fn steady_mappings(pid: u32, n: usize) -> Vec<(String, u64, u64)> {
    let mut maps = Vec::new();
    eventually("the segment's mappings settle", || {
        maps = segment_mappings(pid);
        maps.len() == n
    });
    maps
}

#[test]
fn a_worker_maps_a_and_b_read_only_and_only_its_own_pages_of_c_writable() {
    let len: u64 = 1_000_000;
    // Base pages, whatever the hugetlb pool holds at the moment.
    let base = ["2", "--huge-pages", "never"];
    let mut run = Background::start(&[&LONG[..], &base].concat());
    let workers = run.wait_for_workers(2);
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).unwrap().unwrap() as u64;
    let array_bytes = (len * 8).div_ceil(page) * page;
    for w in workers {
        let mut maps = steady_mappings(w, 4);
        maps.sort_by_key(|m| m.1);
        let perms: Vec<&str> = maps.iter().map(|m| m.0.as_str()).collect();
        // control block, a, b, own chunk of c
        assert_eq!(perms, ["rw-s", "r--s", "r--s", "rw-s"], "worker {w}: {maps:?}");
        let (a, b, c) = (&maps[1], &maps[2], &maps[3]);
        assert_eq!(a.2, array_bytes, "all of a, read-only");
        assert_eq!(b.2, array_bytes, "all of b, read-only");
        assert_eq!(b.1, a.1 + array_bytes);
        assert!(c.1 >= b.1 + array_bytes, "the writable mapping lies in c");
        assert!(c.2 < array_bytes && c.2 > 0, "only part of c is writable: {c:?}");
    }
    // The coordinator, which checks the arrays, maps them read-only: it can
    // read every element and write none.
    let mut coordinator = mappings_when(run.pid(), 2);
    coordinator.sort_by_key(|m| m.1);
    let perms: Vec<&str> = coordinator.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(perms, ["rw-s", "r--s"], "header and control block, then the arrays: {coordinator:?}");
    assert_eq!(coordinator[1].2, 3 * array_bytes, "all three arrays, read-only");
    run.signal(Signal::SIGTERM);
    run.finish(LIMIT).expect_code(143);

    // Threads share one mapping of everything, read-write.
    let mut run = Background::start(&[&LONG[..], &base, &["--mode", "threads"]].concat());
    run.wait_for_worker_threads(2);
    let maps = mappings_when(run.pid(), 1);
    assert!(maps.iter().any(|m| m.0 == "rw-s" && m.2 >= 3 * array_bytes), "{maps:?}");
    run.signal(Signal::SIGTERM);
    run.finish(LIMIT).expect_code(143);
}

#[test]
fn a_failed_validation_cleans_up_too() {
    // threads + oob-write: exit 3; coord() checks that nothing is left.
    let out = coord(&["--mode", "threads", "--procs", "2", "--len", "10000", "--inject-fault", "0:oob-write"]);
    out.expect_code(3);
}
