//! vecpar under mpirun: ranks across nodes, validated end to end.
//!
//! With `--features mpi` these run the real `mpirun` (Open MPI) on this
//! machine: 1, 2 and 4 ranks in every layout, two simulated nodes (Open
//! MPI's per-node daemons started through `tests/helpers/fake-rsh.sh` in
//! UTS namespaces of their own), and the ways a job ends badly. Without the
//! feature, what remains is the refusal: a build without MPI that finds
//! itself one of several ranks says how to build the one that works.
//! Every run has a hard time bound (`timeout -k`), and every test checks
//! that no vecpar process, no segment and no Open MPI session directory
//! of its own is left behind.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

/// One MPI job at a time: the jobs of this machine share Open MPI's
/// session directory, so what one job leaves can only be told apart from
/// another's when they do not overlap (and two CPUs are busy enough).
static ONE_JOB: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// This machine's MPI jobs (and Slurm clusters) to the caller while it
/// holds the guard.
pub(crate) fn one_job() -> std::sync::MutexGuard<'static, ()> {
    ONE_JOB.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `mpirun` is here (says why a test skips otherwise), and the
/// machine's MPI jobs to this test while it holds the guard.
fn have_mpirun(test: &str) -> Option<std::sync::MutexGuard<'static, ()>> {
    let guard = one_job();
    let ok = Command::new("mpirun").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        skip(test, "mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev; .ci/run does)");
    }
    ok.then_some(guard)
}

/// `mpirun -n RANKS [launch…] vecpar-coord ARGS`, under `timeout -k`, as
/// root on two CPUs with no network: the flags of README "Beyond one
/// machine" as environment variables.
fn mpirun(ranks: usize, launch: &[&str], args: &[&str]) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "5", "150", "mpirun", "-n", &ranks.to_string(), "--bind-to", "none"]);
    cmd.args(launch).arg(coord_bin()).args(args);
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .env("OMPI_MCA_oob_tcp_if_include", "lo")
        .env("OMPI_MCA_mpi_yield_when_idle", "1")
        .env("OMPI_MCA_btl", "self,vader,tcp")
        .env("OMPI_MCA_btl_tcp_if_include", "lo");
    cmd
}

/// Open MPI's session directories and shared-memory files, to see what a
/// job left.
fn mpi_debris() -> Vec<String> {
    let mut found = Vec::new();
    for (dir, keep) in [
        (
            "/dev/shm",
            &(|n: &str| n.starts_with("vader_segment") || n.starts_with("osc_") || n.starts_with("vecpar-"))
                as &dyn Fn(&str) -> bool,
        ),
        ("/tmp", &|n: &str| n.starts_with("ompi.")),
    ] {
        if let Ok(d) = std::fs::read_dir(dir) {
            found.extend(
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| keep(n))
                    .map(|n| format!("{dir}/{n}")),
            );
        }
    }
    found
}

/// Runs the job; afterwards no vecpar process with `marker` in its command
/// line may be left, and none of Open MPI's files that were not there before.
fn job(cmd: Command, marker: &str) -> Outcome {
    let before = mpi_debris();
    let out = run_cmd(cmd, LIMIT);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let procs: Vec<_> =
            processes().into_iter().filter(|(_, c)| c.contains(marker) && c.contains("vecpar")).collect();
        let debris: Vec<_> = mpi_debris().into_iter().filter(|d| !before.contains(d)).collect();
        if procs.is_empty() && debris.is_empty() {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: processes {procs:?}, files {debris:?}\nstderr:\n{}",
            out.stderr
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A seed unique to the test (the marker that finds its processes).
fn seed(n: u32) -> String {
    (7_000_000 + n).to_string()
}

#[cfg(feature = "mpi")]
mod with_mpi {
    use std::time::SystemTime;

    use serde_json::Value;

    use super::*;

    /// Two simulated nodes of two ranks each.
    fn two_nodes() -> Vec<String> {
        let agent = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/helpers/fake-rsh.sh");
        ["--host", "nodeA:2,nodeB:2", "--mca", "plm_rsh_agent", agent].iter().map(|s| s.to_string()).collect()
    }

    /// Each kernel's (c digest, a digest) in a report.
    fn digests(report: &Value) -> Vec<(String, String)> {
        report["kernels"]
            .as_array()
            .expect("kernels")
            .iter()
            .map(|k| {
                let v = &k["validation"];
                (v["c_digest"].as_str().unwrap_or("-").into(), v["a_digest"].as_str().unwrap_or("-").into())
            })
            .collect()
    }

    /// The one-machine serial run's digests.
    fn serial_digests(args: &[&str]) -> Vec<(String, String)> {
        let mut all = vec!["--mode", "serial"];
        all.extend(args);
        digests(&coord_json(&all, 0))
    }

    fn run_json(ranks: usize, launch: &[&str], args: &[&str], marker: &str) -> Value {
        let mut all = args.to_vec();
        all.extend(["--export-json", "-", "--quiet"]);
        let out = job(mpirun(ranks, launch, &all), marker);
        out.expect_code(0);
        out.json()
    }

    #[test]
    fn every_layout_gives_the_one_machine_digest() {
        let Some(_one_job) = have_mpirun("every_layout_gives_the_one_machine_digest") else {
            return;
        };
        for (dtype, len) in [("f64", "100003"), ("f32", "65537")] {
            let s = seed(1);
            let common = ["--op", "all", "--dtype", dtype, "--len", len, "--seed", &s, "--runs", "3"];
            let want = serial_digests(&common);
            for ranks in [1, 2, 4] {
                for mode in [
                    &["--mode", "serial"][..],
                    &["--mode", "procs", "--procs", "2"],
                    &["--mode", "threads", "--procs", "2"],
                    &["--mode", "ranks"],
                ] {
                    let mut args = common.to_vec();
                    args.extend(mode);
                    let r = run_json(ranks, &[], &args, &s);
                    assert_eq!(digests(&r), want, "{ranks} ranks, {mode:?}, {dtype} --len {len}");
                    assert_eq!(r["config"]["len"].as_u64(), Some(len.parse().unwrap()));
                    let mpi = &r["mpi"];
                    assert_eq!(mpi["ranks"].as_u64(), Some(ranks as u64));
                    // The ranks' shares tile the global array in order.
                    let per: Vec<(u64, u64)> = mpi["per_rank"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| (p["start"].as_u64().unwrap(), p["end"].as_u64().unwrap()))
                        .collect();
                    assert_eq!(per.len(), ranks);
                    assert_eq!(per[0].0, 0);
                    assert_eq!(per.last().unwrap().1, len.parse::<u64>().unwrap());
                    assert!(per.windows(2).all(|w| w[0].1 == w[1].0), "{per:?}");
                    for k in r["kernels"].as_array().unwrap() {
                        assert_eq!(k["validation"]["checked"].as_u64(), Some(len.parse().unwrap()));
                        assert!(k["validation"]["mismatch"].is_null());
                    }
                    let dot = r["kernels"].as_array().unwrap().iter().find(|k| k["op"] == "dot").unwrap();
                    assert_eq!(dot["dot"]["within_bound"], true);
                }
            }
        }
    }

    #[test]
    fn two_simulated_nodes_give_the_one_machine_digest() {
        let Some(_one_job) = have_mpirun("two_simulated_nodes_give_the_one_machine_digest") else {
            return;
        };
        if !Command::new("unshare").args(["--uts", "true"]).status().is_ok_and(|s| s.success()) {
            return skip("two_simulated_nodes_give_the_one_machine_digest", "unshare --uts is not permitted here");
        }
        let s = seed(2);
        let common = ["--op", "all", "--len", "100003", "--seed", &s, "--runs", "3"];
        let want = serial_digests(&common);
        let nodes = two_nodes();
        let launch: Vec<&str> = nodes.iter().map(String::as_str).collect();
        for mode in [&["--mode", "procs", "--procs", "2"][..], &["--mode", "ranks"], &["--mode", "serial"]] {
            let mut args = common.to_vec();
            args.extend(mode);
            let r = run_json(4, &launch, &args, &s);
            assert_eq!(digests(&r), want, "{mode:?}");
            let mpi = &r["mpi"];
            assert_eq!(mpi["nodes"].as_u64(), Some(2), "{mpi}");
            assert_eq!(mpi["ranks_per_node"], serde_json::json!([2, 2]));
            let hosts: Vec<&str> =
                mpi["per_rank"].as_array().unwrap().iter().map(|p| p["host"].as_str().unwrap()).collect();
            assert_eq!(hosts, ["nodeA", "nodeA", "nodeB", "nodeB"], "ranks in node order");
        }
    }

    #[test]
    fn a_worker_lost_inside_a_rank_is_replaced_and_the_job_validates() {
        let Some(_one_job) = have_mpirun("a_worker_lost_inside_a_rank_is_replaced_and_the_job_validates") else {
            return;
        };
        let s = seed(3);
        let common = ["--op", "add", "--len", "100003", "--seed", &s];
        let want = serial_digests(&common);
        let mut args = common.to_vec();
        args.extend(["--procs", "2", "--inject-fault", "1:segv@3", "--on-fault", "retry"]);
        let r = run_json(2, &[], &args, &s);
        assert_eq!(digests(&r), want);
        for p in r["mpi"]["per_rank"].as_array().unwrap() {
            assert_eq!(p["retries"].as_array().map(Vec::len), Some(1), "every rank replaced its worker 1: {p}");
            assert_eq!(p["faults"][0]["cause"]["kind"], "signal", "{p}");
        }
        // Kernels that update in place recover too: every rank brings its
        // chunks back to the round the job completed, and the job ends
        // with the one-machine arrays.
        let common = ["--op", "add,nstream,fma", "--len", "100003", "--seed", &s, "--runs", "4"];
        let want = serial_digests(&common);
        for fault in ["1:panic@6", "0:segv@9"] {
            let mut args = common.to_vec();
            args.extend(["--procs", "2", "--inject-fault", fault, "--on-fault", "retry"]);
            let r = run_json(2, &[], &args, &s);
            assert_eq!(digests(&r), want, "{fault}");
            let history = &r["kernels"][2]["validation"]["history"];
            assert_eq!(history[1], serde_json::json!({"op": "nstream", "rounds": 5}), "{fault}: {history}");
            assert_eq!(history[2], serde_json::json!({"op": "fma", "rounds": 5}), "{fault}: {history}");
        }
    }

    /// Runs a job that must end badly; returns its outcome.
    fn failing(ranks: usize, args: &[&str], marker: &str) -> Outcome {
        let out = job(mpirun(ranks, &[], args), marker);
        assert_ne!(out.code, Some(0), "the job must fail\nstderr:\n{}", out.stderr);
        out
    }

    #[test]
    fn a_window_larger_than_dev_shm_is_refused_in_one_line_before_the_job() {
        let test = "a_window_larger_than_dev_shm_is_refused_in_one_line_before_the_job";
        let Some(_one_job) = have_mpirun(test) else {
            return;
        };
        if !is_root() || !can_unshare_mounts() {
            return skip(test, "needs root and unshare -m for a small private /dev/shm");
        }
        // 3 × 16 MB of window in a 16 MiB /dev/shm, as a small container
        // has (Docker's default is 64 MiB).
        let s = seed(10);
        // The job in a mount namespace of its own, with a 16 MiB /dev/shm.
        let small_dev_shm = || {
            let inner = mpirun(2, &[], &["--mode", "ranks", "--len", "2e6", "--seed", &s]);
            let mut cmd = Command::new("unshare");
            cmd.args(["-m", "sh", "-c", "mount -t tmpfs -o size=16m tmpfs /dev/shm && exec \"$@\"", "sh"]);
            cmd.arg(inner.get_program()).args(inner.get_args());
            for (k, v) in inner.get_envs() {
                if let Some(v) = v {
                    cmd.env(k, v);
                }
            }
            cmd
        };
        let out = run_cmd(small_dev_shm(), LIMIT);
        out.expect_code(1);
        // Pointed elsewhere (mpirun --mca reaches the ranks as OMPI_MCA_…),
        // the window is checked there: the job runs.
        let roomy = TempDir::new("window");
        let mut elsewhere = small_dev_shm();
        elsewhere.env("OMPI_MCA_osc_sm_backing_directory", roomy.path());
        let ran = run_cmd(elsewhere, LIMIT);
        ran.expect_code(0);
        assert!(ran.stdout.contains("Solution validates"), "{}", ran.stdout);
        let said: Vec<&str> = out.stderr.lines().filter(|l| l.contains("error:")).collect();
        assert_eq!(said.len(), 1, "one rank says it:\n{}", out.stderr);
        assert!(
            said[0].contains("needs ") && said[0].contains("in /dev/shm") && said[0].contains("lower --len"),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("MPI_ERR") && !out.stderr.contains("panicked"), "{}", out.stderr);
        assert_eq!(out.stdout, "", "nothing measured");
        assert!(processes().iter().all(|(_, c)| !c.contains(&s)), "no rank left");
    }

    #[test]
    fn a_rank_that_dies_ends_the_job_and_the_others_say_which() {
        let Some(_one_job) = have_mpirun("a_rank_that_dies_ends_the_job_and_the_others_say_which") else {
            return;
        };
        let s = seed(4);
        let out = failing(2, &["--len", "100003", "--procs", "2", "--seed", &s, "--inject-fault", "rank:1:segv@3"], &s);
        assert!(out.stderr.contains("(rank 0): error: the job lost rank 1 (pid"), "{}", out.stderr);
        // In --mode ranks, a stray store into the neighbour's part of the
        // window is stopped by the MMU, and that rank is lost.
        let out = failing(
            2,
            &["--len", "100003", "--mode", "ranks", "--seed", &s, "--inject-fault", "rank:0:oob-write@2"],
            &s,
        );
        assert!(out.stderr.contains("(rank 1): error: the job lost rank 0"), "{}", out.stderr);
        assert!(!out.stderr.contains("the stray store went through"), "{}", out.stderr);
    }

    #[test]
    fn a_rank_killed_from_outside_ends_the_job_promptly() {
        let Some(_one_job) = have_mpirun("a_rank_killed_from_outside_ends_the_job_promptly") else {
            return;
        };
        // SIGKILL, and a fault signal sent from outside (which a rank takes
        // as an interruption: it stops its workers and exits 128 + 11).
        for (signal, n) in [(nix::sys::signal::Signal::SIGKILL, 5), (nix::sys::signal::Signal::SIGSEGV, 15)] {
            kill_rank_1(signal, &seed(n));
        }
    }

    /// The pids of rank 0 and rank 1 of the job marked `s`, once each has
    /// its two workers at work (the job is in its rounds: a rank is never
    /// signalled while it starts).
    fn two_ranks_at_work(s: &str) -> [u32; 2] {
        let deadline = Instant::now() + LIMIT;
        let rank = |r: u32| {
            let tag = format!("OMPI_COMM_WORLD_RANK={r}");
            processes().into_iter().find(|(p, c)| {
                c.contains(s)
                    && c.starts_with(coord_bin())
                    && std::fs::read(format!("/proc/{p}/environ"))
                        .is_ok_and(|e| e.split(|&b| b == 0).any(|v| v == tag.as_bytes()))
                    && workers_at_work(*p).len() >= 2
            })
        };
        loop {
            if let (Some((r0, _)), Some((r1, _))) = (rank(0), rank(1)) {
                return [r0, r1];
            }
            assert!(Instant::now() < deadline, "the ranks never started their workers");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_rank_stopped_by_mpirun_s_sigterm_names_the_rank_that_was_lost() {
        let Some(_one_job) = have_mpirun("a_rank_stopped_by_mpirun_s_sigterm_names_the_rank_that_was_lost") else {
            return;
        };
        // mpirun sends SIGTERM to the others once a rank dies; a rank that
        // gets it names the loss (the cause), not the signal (its sequel).
        // Rank 1 is stopped before rank 0 is killed, so it cannot see the
        // loss on its own first: when it runs again, the SIGTERM is there.
        let s = seed(17);
        let job = Background::spawn(mpirun(
            2,
            &[],
            &["--len", "100003", "--procs", "2", "--runs", "1000000", "--seed", &s, "-q"],
        ));
        let [rank0, rank1] = two_ranks_at_work(&s);
        let pid = |p: u32| nix::unistd::Pid::from_raw(p as i32);
        use nix::sys::signal::{Signal, kill};
        kill(pid(rank1), Signal::SIGSTOP).unwrap();
        kill(pid(rank0), Signal::SIGKILL).unwrap();
        let deadline = Instant::now() + LIMIT;
        while is_alive(rank0) {
            assert!(Instant::now() < deadline, "rank 0 did not die");
            std::thread::sleep(Duration::from_millis(10));
        }
        // (mpirun may have sent its SIGCONT and SIGTERM already.)
        let _ = kill(pid(rank1), Signal::SIGTERM);
        let _ = kill(pid(rank1), Signal::SIGCONT);
        let out = job.finish(LIMIT);
        assert_ne!(out.code, Some(0));
        // Named either way: gone when the SIGTERM arrived, or found gone in
        // a collective if mpirun's SIGCONT let rank 1 look before its
        // SIGTERM came; never the signal alone.
        assert!(out.stderr.contains(&format!("(rank 1): error: the job lost rank 0 (pid {rank0}")), "{}", out.stderr);
        assert!(!out.stderr.contains("(rank 1): error: SIGTERM arrived"), "{}", out.stderr);
        assert!(!out.stderr.contains("(rank 1): interrupted by SIGTERM"), "{}", out.stderr);
    }

    fn kill_rank_1(signal: nix::sys::signal::Signal, s: &str) {
        let s = s.to_string();
        let cmd = mpirun(2, &[], &["--len", "100003", "--procs", "2", "--runs", "1000000", "--seed", &s, "-q"]);
        let before = mpi_debris();
        let started = SystemTime::now();
        let job = Background::spawn(cmd);
        let [_, rank1] = two_ranks_at_work(&s);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(rank1 as i32), signal).unwrap();
        let out = job.finish(LIMIT);
        assert_ne!(out.code, Some(0));
        if signal == nix::sys::signal::Signal::SIGKILL {
            // Rank 0 names the rank it lost: when it looks in a collective,
            // or when mpirun's SIGTERM (sent when it saw rank 1 die) stops
            // it and it sees rank 1 gone ("SIGTERM arrived" alone only if it
            // could not see that yet).
            assert!(
                out.stderr.contains(&format!("the job lost rank 1 (pid {rank1}"))
                    || out.stderr.contains("(rank 0): error: SIGTERM arrived"),
                "{}",
                out.stderr
            );
        } else {
            // Rank 1 stops in order and aborts the job; rank 0 learns of it
            // from the lost rank or from mpirun's SIGTERM, whichever comes
            // first, or is killed by Open MPI's abort before it can say so
            // (its banner says it kills every process).
            assert!(out.stderr.contains("(rank 1): interrupted by SIGSEGV"), "{}", out.stderr);
            assert!(
                out.stderr.contains("(rank 0): error: the job lost rank 1")
                    || out.stderr.contains("(rank 0): error: SIGTERM arrived")
                    || out.stderr.contains("MPI_ABORT was invoked on rank 1"),
                "{}",
                out.stderr
            );
        }
        // Its workers die with it; rank 0 stops its own.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let procs: Vec<_> =
                processes().into_iter().filter(|(_, c)| c.contains(&s) && c.contains("vecpar")).collect();
            let debris: Vec<_> = mpi_debris().into_iter().filter(|d| !before.contains(d)).collect();
            let temps = temp_leftovers(&std::env::temp_dir(), started);
            if procs.is_empty() && debris.is_empty() && temps.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "left behind: {procs:?} {debris:?} {temps:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn a_panic_or_a_hang_in_a_rank_ends_the_job_instead_of_hanging_it() {
        let Some(_one_job) = have_mpirun("a_panic_or_a_hang_in_a_rank_ends_the_job_instead_of_hanging_it") else {
            return;
        };
        let s = seed(6);
        // Under RUST_BACKTRACE=1 too, a rank's panic is one line, as a
        // worker's is.
        let mut cmd = mpirun(
            2,
            &["-x", "RUST_BACKTRACE"],
            &["--len", "100003", "--mode", "serial", "--seed", &s, "--inject-fault", "rank:1:panic@2"],
        );
        cmd.env("RUST_BACKTRACE", "1");
        let out = job(cmd, &s);
        assert!(out.stderr.contains("injected panic in rank 1"), "{}", out.stderr);
        assert_eq!(out.stderr.matches("injected panic in rank 1").count(), 1, "{}", out.stderr);
        assert!(!out.stderr.contains("stack backtrace"), "{}", out.stderr);
        // The panic hook's MPI_Abort ends the job with its code, 101, which
        // mpirun passes on (its banner saying so is not always printed).
        assert_eq!(out.code, Some(101), "{}", out.stderr);
        let out = failing(
            2,
            &["--len", "100003", "--mode", "serial", "--seed", &s, "--timeout", "3", "--inject-fault", "rank:1:hang@2"],
            &s,
        );
        assert!(
            out.stderr.contains("(rank 0): error: waited ") && out.stderr.contains(" s for the other ranks"),
            "{}",
            out.stderr
        );
        // 2 × 3 s, a worker's start-up allowance (30 s), and 5 s.
        assert!(
            out.stderr.contains("(the limit, from --timeout and the time a worker may take to start, is 41 s)"),
            "{}",
            out.stderr
        );
    }

    #[test]
    fn a_rank_whose_workers_are_slow_to_start_is_outwaited() {
        let Some(_one_job) = have_mpirun("a_rank_whose_workers_are_slow_to_start_is_outwaited") else {
            return;
        };
        // Rank 1's worker takes 10 s to start (a wrapper sleeps, then execs
        // it): within the 30 s any worker is given to start, so rank 1 goes
        // on, and rank 0, waiting for it with --timeout 1, must not call the
        // job stuck (it did, after 2 × 1 s + 5 s, before the watchdog
        // counted start-ups).
        let s = seed(16);
        let dir = TempDir::new("slow-rank");
        let slow = script(
            &dir,
            "vecpar-worker-slow",
            &format!("[ \"$OMPI_COMM_WORLD_RANK\" = 1 ] && sleep 10\nexec \"{}\" \"$@\"", worker_bin()),
        );
        let out = job(
            mpirun(
                2,
                &[],
                &[
                    "--len",
                    "100003",
                    "--procs",
                    "1",
                    "--timeout",
                    "1",
                    "--seed",
                    &s,
                    "--worker-bin",
                    slow.to_str().unwrap(),
                ],
            ),
            &s,
        );
        out.expect_code(0);
        assert!(out.stdout.contains("Solution validates"), "{}", out.stdout);
        assert!(!out.stderr.contains("waited"), "{}", out.stderr);
    }

    #[test]
    fn rank_0_reports_and_exports_and_errors_are_said_once() {
        let Some(_one_job) = have_mpirun("rank_0_reports_and_exports_and_errors_are_said_once") else {
            return;
        };
        let s = seed(7);
        let dir = TempDir::new("mpi-exports");
        let (json, csv) = (dir.str("run.json"), dir.str("run.csv"));
        let out =
            job(mpirun(2, &[], &["--len", "100003", "--seed", &s, "--export-json", &json, "--export-csv", &csv]), &s);
        out.expect_code(0);
        assert_eq!(out.stdout.matches("Solution validates").count(), 1, "only rank 0 prints:\n{}", out.stdout);
        assert!(out.stdout.contains("MPI: 2 ranks on 1 node"), "{}", out.stdout);
        assert!(out.stdout.contains("Ranks"), "{}", out.stdout);
        let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(report["mpi"]["ranks"], 2);
        let library = report["mpi"]["library"].as_str().unwrap();
        assert!(library.starts_with("Open MPI") && !library.contains('\0') && library.trim() == library, "{library:?}");
        assert!(!out.stdout.contains('\0'), "no NUL in the table");
        assert!(report["mpi"]["launcher"].as_str().unwrap().starts_with("OMPI_"));
        let csv = std::fs::read_to_string(&csv).unwrap();
        let rows: Vec<&str> = csv.lines().collect();
        assert!(rows[0].ends_with(",rank,host"), "{}", rows[0]);
        assert_eq!(rows.len(), 1 + 1 + 2, "the job's row and one per rank:\n{csv}");
        assert!(rows[2].contains(",0,") && rows[3].contains(",1,"), "{csv}");

        // A bad flag: one line (rank 0's), exit 2, on every rank.
        let out = job(mpirun(2, &[], &["--len", "12", "--seed", &s, "--procs", "0"]), &s);
        out.expect_code(2);
        assert_eq!(out.stderr.matches("error:").count(), 1, "{}", out.stderr);
        // Fewer pages than ranks.
        let out = job(mpirun(4, &[], &["--len", "1000", "--seed", &s]), &s);
        out.expect_code(2);
        assert!(out.stderr.contains("--len 1000: 4 ranks need one 4 KiB page each"), "{}", out.stderr);
        assert_eq!(out.stderr.matches("error:").count(), 1, "{}", out.stderr);
        // A sweep measures one machine.
        let out = job(mpirun(2, &[], &["sweep", "--len", "1000", "--seed", &s]), &s);
        out.expect_code(2);
        assert!(out.stderr.contains("measures one machine"), "{}", out.stderr);
    }
    /// Network namespaces `PREFIX-n1..n2` on a bridge in `PREFIX-sw`
    /// (10.251.0.I/24), removed on drop: two nodes with their own network,
    /// host name and /dev/shm.
    struct NetnsNodes(String);

    impl NetnsNodes {
        fn up(n: usize) -> Option<NetnsNodes> {
            let prefix = format!("vecpar-t{}", std::process::id());
            let ip = |args: &[&str]| Command::new("ip").args(args).status().is_ok_and(|s| s.success());
            let nodes = NetnsNodes(prefix.clone());
            let sw = format!("{prefix}-sw");
            let mut ok = ip(&["netns", "add", &sw])
                && ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])
                && ip(&["-n", &sw, "link", "set", "br0", "up"]);
            for i in 1..=n {
                let ns = format!("{prefix}-n{i}");
                let port = format!("s{i}");
                ok = ok
                    && ip(&["netns", "add", &ns])
                    && ip(&["-n", &ns, "link", "set", "lo", "up"])
                    && ip(&["-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns])
                    && ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"])
                    && ip(&["-n", &ns, "addr", "add", &format!("10.251.0.{i}/24"), "dev", "eth0"])
                    && ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            }
            ok.then_some(nodes)
        }
    }

    impl Drop for NetnsNodes {
        fn drop(&mut self) {
            let list = Command::new("ip").args(["netns", "list"]).output().map(|o| o.stdout).unwrap_or_default();
            for ns in String::from_utf8_lossy(&list).lines().filter_map(|l| l.split_whitespace().next()) {
                if ns.starts_with(&format!("{}-", self.0)) {
                    let _ = Command::new("ip").args(["netns", "del", ns]).status();
                }
            }
        }
    }

    #[test]
    fn two_nodes_in_network_namespaces_give_the_one_machine_digest() {
        let test = "two_nodes_in_network_namespaces_give_the_one_machine_digest";
        let Some(_one_job) = have_mpirun(test) else {
            return;
        };
        if !is_root() || !Command::new("ip").arg("-V").output().is_ok_and(|o| o.status.success()) {
            return skip(test, "needs root and ip (iproute2) for network namespaces");
        }
        let Some(nodes) = NetnsNodes::up(2) else {
            return skip(test, "cannot create network namespaces here");
        };
        let s = seed(9);
        let common = ["--op", "all", "--len", "100003", "--seed", &s, "--runs", "3"];
        let want = serial_digests(&common);
        let agent = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/helpers/netns-rsh.sh");
        for mode in [&["--mode", "procs", "--procs", "1"][..], &["--mode", "ranks"]] {
            // mpirun on node 1, in its namespace, with its own /dev/shm.
            let mut cmd = Command::new("timeout");
            cmd.args(["-k", "5", "150", "ip", "netns", "exec", &format!("{}-n1", nodes.0)])
                .args(["unshare", "--uts", "--mount", "--propagation", "private", "sh", "-c"])
                .arg("hostname node1 && mount -t tmpfs -o size=1g tmpfs /dev/shm && exec \"$@\"")
                .args(["sh", "mpirun", "-n", "4", "--bind-to", "none", "--host", "10.251.0.1:2,10.251.0.2:2"])
                .args(["--mca", "plm_rsh_agent", agent, "--mca", "oob_tcp_if_include", "10.251.0.0/24"])
                .args(["--mca", "btl", "self,vader,tcp", "--mca", "btl_tcp_if_include", "10.251.0.0/24"])
                .arg(coord_bin())
                .args(common)
                .args(mode)
                .args(["--export-json", "-", "--quiet"])
                .env("VECPAR_NETNS", &nodes.0)
                .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
                .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
                .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
                .env("OMPI_MCA_mpi_yield_when_idle", "1");
            let out = job(cmd, &s);
            out.expect_code(0);
            let r = out.json();
            assert_eq!(digests(&r), want, "{mode:?}");
            assert_eq!(r["mpi"]["nodes"].as_u64(), Some(2), "{}", r["mpi"]);
            let hosts: Vec<&str> =
                r["mpi"]["per_rank"].as_array().unwrap().iter().map(|p| p["host"].as_str().unwrap()).collect();
            assert_eq!(hosts, ["node1", "node1", "node2", "node2"]);
        }
    }

    #[test]
    fn the_isolation_experiment_adds_the_mpi_layouts() {
        let Some(_one_job) = have_mpirun("the_isolation_experiment_adds_the_mpi_layouts") else {
            return;
        };
        let mut cmd = Command::new(coord_bin());
        cmd.args(["isolation", "--modes", "mpi", "--faults", "segv,hang", "--len", "100017", "--timeout", "1"])
            .args(["--export-json", "-", "--quiet"])
            .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
            .env("OMPI_MCA_oob_tcp_if_include", "lo")
            .env("OMPI_MCA_btl", "self,vader");
        let out = job(cmd, "100017");
        out.expect_code(0);
        let r = out.json();
        let rows: Vec<(&str, &str, bool, bool)> = r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                let mode = row["mode"].as_str().unwrap();
                (
                    mode,
                    row["fault"].as_str().unwrap(),
                    row["survived"].as_bool().unwrap(),
                    row["recovered"].as_bool().unwrap(),
                )
            })
            .collect();
        // A worker lost inside a rank is replaced; a lost rank ends the job.
        assert_eq!(
            rows,
            [
                ("procs", "segv", true, true),
                ("procs", "hang", true, true),
                ("ranks", "segv", false, false),
                ("ranks", "hang", false, false)
            ],
            "{r}"
        );
        assert!(r["rows"].as_array().unwrap().iter().all(|row| row["ranks"] == 2));
        let summary =
            r["summary"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect::<Vec<_>>().join(" ");
        assert!(
            summary.contains("Under MPI (2 ranks)")
                && summary.contains("detected by its rank in 2 of 2 faults")
                && summary.contains("validated in 2 of 2"),
            "{summary}"
        );
        // Typed: how the job ended, as another rank saw it.
        assert_eq!(r["rows"][2]["fail_run"]["ending"], serde_json::json!({"ending": "rank-lost", "rank": 1}), "{r}");
        assert_eq!(r["rows"][3]["fail_run"]["ending"], serde_json::json!({"ending": "ranks-stuck"}), "{r}");
        // Each row's ending, as it was: nothing credited to a signal that
        // did not end it.
        assert!(summary.contains("segv: another rank saw the job lose rank 1"), "{summary}");
        assert!(summary.contains("hang: another rank's watchdog ran out"), "{summary}");
        assert!(!summary.contains("SIGTERM"), "{summary}");
    }
}

#[cfg(not(feature = "mpi"))]
mod without_mpi {
    use super::*;

    const REFUSAL: &str = "built without MPI";

    #[test]
    fn a_launcher_s_ranks_are_refused_with_how_to_build_for_mpi() {
        // As a launcher leaves it in the environment…
        let mut cmd = Command::new(coord_bin());
        cmd.args(["--len", "1000"]).env("OMPI_COMM_WORLD_SIZE", "4").env("OMPI_COMM_WORLD_RANK", "0");
        let out = run_cmd(cmd, LIMIT);
        out.expect_code(2);
        assert!(out.stderr.contains(REFUSAL) && out.stderr.contains("--features mpi"), "{}", out.stderr);
        assert_eq!(out.stdout, "", "nothing measured");
        // The isolation experiment's MPI layouts need the feature too.
        let out = coord(&["isolation", "--modes", "mpi"]);
        out.expect_code(2);
        assert!(out.stderr.contains("--modes mpi") && out.stderr.contains("--features mpi"), "{}", out.stderr);
        // …and under the real mpirun, where it is installed.
        let Some(_one_job) = have_mpirun("a_launcher_s_ranks_are_refused_with_how_to_build_for_mpi (mpirun part)")
        else {
            return;
        };
        let s = seed(8);
        let out = job(mpirun(2, &[], &["--len", "1000", "--seed", &s]), &s);
        assert_ne!(out.code, Some(0));
        assert!(out.stderr.contains(REFUSAL), "{}", out.stderr);
        assert!(!out.stdout.contains("Solution validates"), "{}", out.stdout);
    }
}
