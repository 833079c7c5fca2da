//! Every way a run can end leaves no segment and no process: signals to the
//! coordinator, SIGKILL of either side, and a stale name from a dead run.
//! Also: what a live worker's mappings look like.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::util::*;

/// A run long enough to be interrupted.
const LONG: [&str; 6] = ["--len", "1e6", "--runs", "10000000", "--quiet", "--procs"];

#[test]
fn sigint_and_sigterm_clean_up_and_exit_130_and_143() {
    for (signal, code) in [(Signal::SIGINT, 130), (Signal::SIGTERM, 143)] {
        for (mode, shm) in [("procs", "memfd"), ("procs", "posix"), ("threads", "memfd")] {
            let mut run = Background::start(&[&LONG[..], &["3", "--mode", mode, "--shm", shm]].concat());
            if mode == "procs" {
                run.wait_for_workers(3);
            } else {
                std::thread::sleep(Duration::from_millis(300));
            }
            run.signal(signal);
            let out = run.finish(Duration::from_secs(10));
            assert_eq!(out.code, Some(code), "{signal} in {mode}/{shm}: {}", out.stderr);
            assert!(out.stderr.contains(&format!("interrupted by {}", signal.as_str())), "{}", out.stderr);
        }
    }
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
        std::thread::sleep(Duration::from_millis(100));
        let victim = workers[1];
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(victim as i32), Signal::SIGKILL).unwrap();
        let out = run.finish(Duration::from_secs(120));
        assert_eq!(out.code, Some(code), "{policy}: {}", out.stderr);
        let r = out.json();
        let f = &r["faults"][0];
        assert_eq!(f["pid"].as_u64(), Some(victim as u64));
        assert_eq!(f["cause"]["name"], "SIGKILL");
        assert!(f["detected_after_s"].as_f64().unwrap() < 1.0);
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
        // Past start-up, so a posix name is already unlinked (a kill during
        // start-up leaves it to the next run's sweep: see the test below).
        std::thread::sleep(Duration::from_millis(300));
        run.signal(Signal::SIGKILL);
        let started = std::time::Instant::now();
        let _ = run.child.wait();
        // PR_SET_PDEATHSIG: the kernel kills them when their parent dies.
        while workers.iter().any(|&w| is_alive(w)) {
            assert!(started.elapsed() < Duration::from_secs(1), "workers outlived their coordinator by a second");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_no_leftovers(run.pid());
    }
}

#[test]
fn a_stale_named_segment_of_a_dead_run_is_removed() {
    // A pid that is certainly dead: a child we started and reaped.
    let dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    let mut dead = dead;
    dead.wait().unwrap();
    let stale = format!("/dev/shm/vecpar-{dead_pid}-00000000deadbeef");
    let alive = format!("/dev/shm/vecpar-{}-00000000cafef00d", std::process::id());
    std::fs::write(&stale, b"left by a run that was SIGKILLed during start-up").unwrap();
    std::fs::write(&alive, b"belongs to a live process").unwrap();
    let out = coord(&["--shm", "posix", "--len", "1000", "--procs", "2"]);
    let alive_survived = std::path::Path::new(&alive).exists();
    let _ = std::fs::remove_file(&alive);
    out.expect_code(0);
    assert!(!std::path::Path::new(&stale).exists(), "the dead run's segment is gone");
    assert!(alive_survived, "a live process's segment is left alone");
    assert!(out.stderr.contains("removed 1 stale segment"), "{}", out.stderr);
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

#[test]
fn a_worker_maps_a_and_b_read_only_and_only_its_own_pages_of_c_writable() {
    let len: u64 = 1_000_000;
    let mut run = Background::start(&[&LONG[..], &["2"]].concat());
    let workers = run.wait_for_workers(2);
    std::thread::sleep(Duration::from_millis(200));
    let array_bytes = (len * 8).div_ceil(4096) * 4096;
    for w in workers {
        let mut maps = segment_mappings(w);
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
    run.signal(Signal::SIGTERM);
    run.finish(Duration::from_secs(10)).expect_code(143);

    // Threads share one mapping of everything, read-write.
    let run = Background::start(&[&LONG[..], &["2", "--mode", "threads"]].concat());
    std::thread::sleep(Duration::from_millis(300));
    let maps = segment_mappings(run.pid());
    assert!(maps.iter().any(|m| m.0 == "rw-s" && m.2 >= 3 * array_bytes), "{maps:?}");
    run.signal(Signal::SIGTERM);
    run.finish(Duration::from_secs(10)).expect_code(143);
}

#[test]
fn a_failed_validation_cleans_up_too() {
    // threads + oob-write: exit 3; coord() checks that nothing is left.
    let out = coord(&["--mode", "threads", "--procs", "2", "--len", "10000", "--inject-fault", "0:oob-write"]);
    out.expect_code(3);
}
