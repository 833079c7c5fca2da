//! vecpar launched by a real Slurm: `srun`, `sbatch` and `salloc` against
//! daemons this test starts (`tests/helpers/slurm/up.sh`: munged,
//! slurmctld and one or two slurmd, state in a temporary directory), with
//! each step confined to its cpuset by Slurm's cgroup plugin where the
//! machine has cgroup v1 cpusets, and two simulated nodes on one machine.
//!
//! The default build: a step's cpuset sets and names the workers; a step of
//! several tasks is refused in one line from task 0; `scancel` and a time
//! limit end a step cleanly. The MPI build (`--features mpi`): `srun
//! --mpi=pmix` on one and two nodes with the one-machine digest, `salloc` +
//! `mpirun`, the README's batch script, PMI-2 and no PMI named in one line,
//! a rank killed on one node. Every client command runs under `timeout -k`;
//! every test checks that no vecpar process, segment or step cgroup is left.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

/// A throw-away Slurm cluster; stopped, with everything it made, on drop.
struct Cluster {
    dir: TempDir,
    nodes: usize,
    _one_job: std::sync::MutexGuard<'static, ()>,
}

fn helper(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/slurm").join(name)
}

impl Cluster {
    /// Starts a cluster of `nodes` (1: this machine, confined; 2: two
    /// simulated nodes), or says why `test` cannot run here.
    fn up(nodes: usize, test: &str) -> Option<Cluster> {
        let one_job = crate::mpi::one_job();
        if !is_root() {
            skip(test, "Slurm's daemons run jobs as their users: needs root");
            return None;
        }
        let missing: Vec<&str> = ["slurmctld", "slurmd", "srun", "munged"]
            .into_iter()
            .filter(|t| {
                !Command::new("sh").args(["-c", &format!("command -v {t}")]).output().is_ok_and(|o| o.status.success())
            })
            .collect();
        if !missing.is_empty() {
            skip(
                test,
                &format!(
                    "{} not installed (apt-get install slurmctld slurmd slurm-client munge libpmix2; .ci/run does)",
                    missing.join(", ")
                ),
            );
            return None;
        }
        // A short path: Slurm's step sockets live below it (107 bytes at most).
        let dir = TempDir::new("slurm");
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let mut cmd = Command::new("timeout");
        cmd.args(["-k", "5", "120"]).arg(helper("up.sh")).arg(dir.path()).arg(nodes.to_string());
        let out = run_cmd(cmd, LIMIT);
        let cluster = Cluster { dir, nodes, _one_job: one_job };
        assert_eq!(out.code, Some(0), "up.sh failed:\n{}\n{}", out.stdout, out.stderr);
        Some(cluster)
    }

    fn conf(&self) -> PathBuf {
        self.dir.join("etc/slurm.conf")
    }

    /// Whether steps are confined by cgroup cpusets (else by an affinity
    /// mask only: a machine without cgroup v1 cpusets).
    #[cfg(not(feature = "mpi"))]
    fn confined(&self) -> bool {
        std::fs::read_to_string(self.dir.join("confinement")).is_ok_and(|c| c.starts_with("cgroup"))
    }

    /// A Slurm client command (`srun`, `sbatch`, …) with a hard time bound.
    fn client(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.args(["-k", "5", "240", program]).args(args);
        // This cluster's, not a job the tests may themselves run in.
        for (name, _) in std::env::vars_os() {
            let n = name.to_string_lossy();
            if n.starts_with("SLURM_") || n.starts_with("OMPI_") || n.starts_with("PMI") {
                cmd.env_remove(&name);
            }
        }
        cmd.env("SLURM_CONF", self.conf());
        cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        // Simulated nodes share one host, where Open MPI's shared-memory
        // transport between two ranks of one simulated node fails (a C
        // hello world crashes the same way): TCP over loopback there.
        let btl = if self.nodes > 1 { "self,tcp" } else { "self,vader,tcp" };
        cmd.env("OMPI_MCA_rmaps_base_oversubscribe", "1").env("OMPI_MCA_btl", btl);
        cmd.env("OMPI_MCA_btl_tcp_if_include", "lo").env("OMPI_MCA_oob_tcp_if_include", "lo");
        cmd
    }

    /// `srun LAUNCH… vecpar-coord ARGS…`, run to its end.
    fn srun(&self, launch: &[&str], args: &[&str]) -> Outcome {
        let mut all = launch.to_vec();
        all.push(coord_bin());
        all.extend(args);
        run_cmd(self.client("srun", &all), LIMIT)
    }

    /// A query to slurmctld, retried: on a busy machine an RPC can time out.
    fn query(&self, program: &str, args: &[&str]) -> String {
        for _ in 0..20 {
            if let Ok(out) = self.client(program, args).output()
                && out.status.success()
            {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("{program} {args:?} kept failing");
    }

    /// The id of the job named `name`, once it runs.
    fn running_job(&self, name: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let out = self.query("squeue", &["-h", "-t", "R", "-n", name, "-o", "%i"]);
            if let Some(id) = out.split_whitespace().next() {
                return id.to_string();
            }
            assert!(Instant::now() < deadline, "job {name} never ran");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asserts that nothing of job `job` is left: no process of its (a
    /// coordinator or a worker: Slurm gives them the job's id in their
    /// environment), no step cgroup. (Segments are memfds, freed with the
    /// last process that holds them.)
    fn assert_gone(&self, job: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let needle = format!("SLURM_JOB_ID={job}");
        loop {
            let procs: Vec<_> = processes()
                .into_iter()
                .filter(|(p, c)| {
                    c.contains("vecpar")
                        && std::fs::read(format!("/proc/{p}/environ"))
                            .is_ok_and(|e| e.split(|&b| b == 0).any(|v| v == needle.as_bytes()))
                })
                .collect();
            let cgroups = job_cgroups(job);
            if procs.is_empty() && cgroups.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "job {job} left processes {procs:?} and cgroups {cgroups:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = Command::new("timeout").args(["-k", "5", "60"]).arg(helper("down.sh")).arg(self.dir.path()).output();
        let ok = out.as_ref().is_ok_and(|o| o.status.success());
        if !ok && !std::thread::panicking() {
            panic!("down.sh left something behind: {out:?}");
        }
    }
}

/// Slurm's cgroup directories of job `job` (any controller).
fn job_cgroups(job: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack: Vec<(PathBuf, usize)> = vec![(PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((dir, depth)) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if name == format!("job_{job}") {
                found.push(e.path());
            } else if depth < 4 && (depth == 0 || name.starts_with("slurm") || name.starts_with("uid_")) {
                stack.push((e.path(), depth + 1));
            }
        }
    }
    found
}

/// A marker unique to this test run, carried on the command line (`--seed`).
fn marker(n: u32) -> String {
    (9_100_000 + n).to_string()
}

/// The error lines of a Slurm client's output: vecpar's, not srun's.
fn vecpar_errors(out: &Outcome) -> Vec<&str> {
    out.stderr.lines().filter(|l| l.starts_with("vecpar-coord") && l.contains("error:")).collect()
}

#[cfg(not(feature = "mpi"))]
fn allowed() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:").map(|v| v.trim().to_string())))
        .map_or(1, |list| {
            list.split(',')
                .map(|r| match r.split_once('-') {
                    Some((a, b)) => b.parse::<usize>().unwrap_or(0) - a.parse::<usize>().unwrap_or(0) + 1,
                    None => 1,
                })
                .sum()
        })
}

#[cfg(not(feature = "mpi"))]
mod default_build {
    use super::*;

    #[test]
    fn a_step_sets_the_workers_pins_them_inside_and_names_itself() {
        let Some(c) = Cluster::up(1, "a_step_sets_the_workers_pins_them_inside_and_names_itself") else { return };
        let out = c.srun(&["-n", "1", "-c", "1"], &["--len", "1e5", "--runs", "2", "--export-json", "-", "-q"]);
        out.expect_code(0);
        let r = out.json();
        assert_eq!(r["config"]["procs"], 1, "one CPU in the step, one worker");
        let source = &r["config"]["procs_source"];
        assert_eq!(source["kind"], "affinity_mask", "{source}");
        let step_cpu: usize = source["cpus"].as_str().unwrap().parse().expect("one CPU");
        assert_eq!(r["workers"][0]["pin_cpu"], step_cpu, "pinned inside the step");
        let set_by = &source["set_by"];
        if c.confined() {
            assert_eq!(set_by["kind"], "slurm_step", "{set_by}");
            assert_eq!(set_by["step"], "0", "{set_by}");
            let cgroup = set_by["cgroup"].as_str().unwrap();
            assert!(cgroup.contains(&format!("job_{}", set_by["job"].as_str().unwrap())), "{cgroup}");
            assert!(Path::new(cgroup).starts_with("/sys/fs/cgroup"), "{cgroup}");
        } else {
            assert_eq!(set_by["kind"], "affinity_mask", "{set_by}");
            assert!(set_by["by"].as_str().unwrap().contains("srun"), "{set_by}");
        }
        // The header says the same.
        let out = c.srun(&["-n", "1", "-c", "1"], &["--len", "1e5", "--runs", "1"]);
        out.expect_code(0);
        let header = out.stdout.lines().next().unwrap_or_default();
        let named = if c.confined() { "from Slurm job " } else { "from an affinity mask set by Slurm" };
        assert!(header.contains(named), "{header}");
        // Two CPUs, two pinned workers.
        if allowed() >= 2 {
            let out = c.srun(&["-n", "1", "-c", "2"], &["--len", "1e5", "--runs", "2", "--export-json", "-", "-q"]);
            out.expect_code(0);
            let r = out.json();
            assert_eq!(r["config"]["procs"], 2);
            let pins: Vec<_> = r["workers"].as_array().unwrap().iter().map(|w| w["pin_cpu"].clone()).collect();
            assert!(pins.iter().all(|p| p.is_u64()), "every worker pinned: {pins:?}");
            assert_ne!(pins[0], pins[1]);
            // A pin outside a one-CPU step is refused, naming the set.
            let other = if step_cpu == 0 { "1" } else { "0" };
            let out = c.srun(&["-n", "1", "-c", "1"], &["--pin", other, "--procs", "1", "--len", "1e4"]);
            assert_ne!(out.code, Some(0));
            let errors = vecpar_errors(&out);
            assert_eq!(errors.len(), 1, "{}", out.stderr);
            assert!(errors[0].contains("--pin"), "{}", errors[0]);
        }
    }

    #[test]
    fn several_tasks_without_mpi_are_one_line_from_task_0() {
        let Some(c) = Cluster::up(1, "several_tasks_without_mpi_are_one_line_from_task_0") else { return };
        for tasks in ["2", "3"] {
            let out = c.srun(&["-n", tasks, "--overcommit"], &["--len", "1e4"]);
            let errors = vecpar_errors(&out);
            assert_eq!(errors.len(), 1, "one line in total, not one per task:\n{}", out.stderr);
            let e = errors[0];
            assert!(e.contains(&format!("started by srun as one of {tasks} tasks")), "{e}");
            assert!(e.contains("--features mpi") && e.contains("srun --mpi=pmix") && e.contains("srun -n 1"), "{e}");
            assert!(!e.contains("mpirun"), "srun started it: {e}");
            // Every task exits 2: srun passes the code on.
            assert_eq!(out.code, Some(2), "{}", out.stderr);
            assert!(out.stderr.contains("Exited with exit code 2"), "{}", out.stderr);
        }
    }

    #[test]
    fn scancel_and_a_time_limit_end_a_step_cleanly() {
        let Some(c) = Cluster::up(1, "scancel_and_a_time_limit_end_a_step_cleanly") else { return };
        for (n, how) in [(1, "scancel"), (2, "time limit")] {
            let seed = marker(n);
            let name = format!("vecpar-{seed}");
            let launch = ["-n", "1", "-c", "1", "-J", &name, "--time", "10"];
            let args = ["--len", "1e6", "--runs", "1000000", "--procs", "2", "--seed", &seed, "-q"];
            let mut all = launch.to_vec();
            all.push(coord_bin());
            all.extend(args);
            let step = Background::spawn(c.client("srun", &all));
            let job = c.running_job(&name);
            // Once vecpar's workers are at work: scancel signals every
            // process of the step, and a worker that has not yet said hello
            // would be one that could not start.
            let deadline = Instant::now() + LIMIT;
            while !processes()
                .iter()
                .any(|(p, cmd)| cmd.starts_with(coord_bin()) && cmd.contains(&seed) && workers_at_work(*p).len() >= 2)
            {
                assert!(Instant::now() < deadline, "no worker started");
                std::thread::sleep(Duration::from_millis(20));
            }
            match how {
                "scancel" => drop(c.query("scancel", &[&job])),
                // The real time-limit path: slurmctld's next limit check
                // (every 30 s) ends the step.
                _ => drop(c.query("scontrol", &["update", &format!("JobId={job}"), "TimeLimit=0"])),
            }
            let out = step.finish(LIMIT);
            assert_eq!(
                out.code,
                Some(143),
                "{how}: vecpar's orderly 128 + SIGTERM, passed on by srun:\n{}",
                out.stderr
            );
            assert!(
                out.stderr.contains("interrupted by SIGTERM (Slurm sends it"),
                "{how}: says what happened:\n{}",
                out.stderr
            );
            assert!(out.stderr.contains("workers stopped and reaped"), "{}", out.stderr);
            if how == "time limit" {
                assert!(out.stderr.contains("DUE TO TIME LIMIT"), "Slurm's own line: {}", out.stderr);
            }
            c.assert_gone(&job);
        }
    }

    #[test]
    fn colour_only_when_asked_under_a_launcher() {
        // A terminal (script(1)) under Slurm's variables: no colour unless
        // --color always; NO_COLOR wins over auto everywhere.
        if Command::new("script").arg("--version").output().is_err() {
            return skip("colour under a launcher", "script(1) is not installed");
        }
        let run = |env: &str, flag: &str| {
            let mut cmd = Command::new("script");
            // A terminal that takes colour, and none of the launchers'
            // variables but the ones under test.
            cmd.env("TERM", "xterm").env_remove("NO_COLOR");
            for (name, _) in std::env::vars_os() {
                let n = name.to_string_lossy();
                if n.starts_with("SLURM_") || n.starts_with("OMPI_") || n.starts_with("PMI") {
                    cmd.env_remove(&name);
                }
            }
            cmd.args(["-qec", &format!("env {env} {} --len 1e4 --runs 1 {flag}", coord_bin()), "/dev/null"]);
            run_cmd(cmd, LIMIT).stdout
        };
        assert!(run("", "").contains('\x1b'), "a terminal gets colour");
        assert!(!run("NO_COLOR=1", "").contains('\x1b'), "NO_COLOR");
        for env in ["SLURM_JOB_ID=1 SLURM_STEP_ID=0 SLURM_PROCID=0", "OMPI_COMM_WORLD_SIZE=1 OMPI_COMM_WORLD_RANK=0"] {
            assert!(!run(env, "").contains('\x1b'), "{env}: no colour by default");
            assert!(run(env, "--color always").contains('\x1b'), "{env}: colour when asked");
        }
    }
}

#[cfg(feature = "mpi")]
mod with_mpi {
    use super::*;

    /// The digest of `c` in a report's text.
    fn digest(text: &str) -> String {
        let at = text.find("c digest ").unwrap_or_else(|| panic!("no digest in:\n{text}"));
        text[at + 9..].chars().take_while(char::is_ascii_hexdigit).collect()
    }

    /// A one-machine run's digest for `len` and `seed`.
    fn one_machine(len: &str, seed: &str) -> String {
        let out = coord(&["--len", len, "--seed", seed, "--runs", "2", "--procs", "1"]);
        out.expect_code(0);
        digest(&out.stdout)
    }

    #[test]
    fn srun_pmix_validates_on_one_and_two_nodes_with_the_one_machine_digest() {
        let want = one_machine("100003", &marker(10));
        for nodes in [1, 2] {
            let Some(c) = Cluster::up(nodes, "srun_pmix_validates_on_one_and_two_nodes") else { return };
            let n = nodes.to_string();
            let common = ["--len", "100003", "--seed", &marker(10), "--runs", "2"];
            for (launch, mode) in [
                (vec!["--mpi=pmix", "-N", &n, "-n", "2", "--overcommit"], vec!["--procs", "1"]),
                (vec!["--mpi=pmix", "-N", &n, "-n", "2", "--overcommit"], vec!["--mode", "ranks"]),
            ] {
                let out = c.srun(&launch, &[&common[..], &mode[..]].concat());
                out.expect_code(0);
                assert!(out.stdout.contains("Solution validates"), "{}", out.stdout);
                assert!(out.stdout.contains(&format!("MPI: 2 ranks on {nodes} node")), "{}", out.stdout);
                assert_eq!(digest(&out.stdout), want, "{nodes} node(s), {mode:?}: the one-machine digest");
                assert!(!out.stdout.contains('\0') && !out.stdout.contains('\x1b'), "plain text: {:?}", out.stdout);
            }
        }
    }

    #[test]
    fn salloc_with_mpirun_validates() {
        let Some(c) = Cluster::up(1, "salloc_with_mpirun_validates") else { return };
        let seed = marker(11);
        let args = ["-n", "2", "--overcommit", "mpirun", "--bind-to", "none", coord_bin()];
        let mut all = args.to_vec();
        all.extend(["--len", "100003", "--seed", &seed, "--runs", "2", "--procs", "1"]);
        let out = run_cmd(c.client("salloc", &all), LIMIT);
        out.expect_code(0);
        assert_eq!(digest(&out.stdout), one_machine("100003", &seed));
    }

    #[test]
    fn a_step_without_pmix_is_one_line_naming_mpi_pmix() {
        let Some(c) = Cluster::up(1, "a_step_without_pmix_is_one_line_naming_mpi_pmix") else { return };
        for (plugin, says) in [("--mpi=pmi2", "--mpi=pmi2"), ("--mpi=none", "--mpi=none")] {
            let out = c.srun(&[plugin, "-n", "2", "--overcommit"], &["--len", "1e4", "--procs", "1"]);
            let errors = vecpar_errors(&out);
            assert_eq!(errors.len(), 1, "{plugin}: one line, before MPI_Init's banner:\n{}", out.stderr);
            assert!(errors[0].contains(says) && errors[0].contains("srun --mpi=pmix"), "{}", errors[0]);
            assert!(!out.stderr.contains("MPI_Init"), "{plugin}: MPI never started:\n{}", out.stderr);
            assert_eq!(out.code, Some(2), "{}", out.stderr);
        }
    }

    #[test]
    fn a_rank_killed_on_one_node_ends_the_job_and_leaves_nothing() {
        let Some(c) = Cluster::up(2, "a_rank_killed_on_one_node_ends_the_job_and_leaves_nothing") else { return };
        let seed = marker(12);
        let name = format!("vecpar-{seed}");
        // --kill-on-bad-exit: the step ends when a task dies; if it did not,
        // rank 0's watchdog would say so (--timeout 5: within 2 × 5 s + 30 s
        // + 5 s).
        let all = [
            "--mpi=pmix",
            "--kill-on-bad-exit=1",
            "-N",
            "2",
            "-n",
            "2",
            "-J",
            &name,
            coord_bin(),
            "--len",
            "100003",
            "--procs",
            "1",
            "--runs",
            "1000000",
            "--timeout",
            "5",
            "--seed",
            &seed,
            "-q",
        ];
        let job_run = Background::spawn(c.client("srun", &all));
        let job = c.running_job(&name);
        let deadline = Instant::now() + LIMIT;
        // Both ranks, once each has its worker at work (a rank killed while
        // it starts would be another test).
        let rank = |r: u32| {
            let tag = format!("SLURM_PROCID={r}");
            processes().into_iter().find(|(p, cmd)| {
                cmd.contains(&seed)
                    && cmd.starts_with(coord_bin())
                    && std::fs::read(format!("/proc/{p}/environ"))
                        .is_ok_and(|e| e.split(|&b| b == 0).any(|v| v == tag.as_bytes()))
                    && !workers_at_work(*p).is_empty()
            })
        };
        let rank1 = loop {
            if let (Some(_), Some((p, _))) = (rank(0), rank(1)) {
                break p;
            }
            assert!(Instant::now() < deadline, "the ranks never started their workers");
            std::thread::sleep(Duration::from_millis(20));
        };
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(rank1 as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
        let out = job_run.finish(LIMIT);
        assert_ne!(out.code, Some(0), "{}", out.stderr);
        // srun names the lost task; Slurm's PMIx plugin then ends the
        // step, and rank 0 either says why it ends or is killed outright.
        assert!(out.stderr.contains("task 1: Killed"), "{}", out.stderr);
        assert!(
            out.stderr.contains("(rank 0): error: the job lost rank 1")
                || out.stderr.contains("(rank 0): interrupted by SIGTERM")
                || out.stderr.contains("(rank 0): error: waited ")
                || out.stderr.contains("task 0: Killed")
                // Its orderly 128 + SIGTERM, its line lost with srun's I/O.
                || out.stderr.contains("task 0: Exited with exit code 143"),
            "rank 0's end is accounted for:\n{}",
            out.stderr
        );
        c.assert_gone(&job);
    }

    #[test]
    fn the_readme_batch_script_runs_as_written() {
        let Some(c) = Cluster::up(2, "the_readme_batch_script_runs_as_written") else { return };
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let block = readme
            .split("<!-- sbatch-example -->")
            .nth(1)
            .and_then(|b| b.split("<!-- /sbatch-example -->").next())
            .expect("the README's sbatch example");
        let script = block.trim().trim_start_matches("```bash").trim_end_matches("```").trim();
        let work = TempDir::new("sbatch");
        std::fs::write(work.join("vecpar.sbatch"), format!("{script}\n")).unwrap();
        let bin = Path::new(coord_bin()).parent().unwrap().to_string_lossy().into_owned();
        let mut cmd = c.client("sbatch", &["--wait", "vecpar.sbatch"]);
        cmd.current_dir(work.path()).env("PATH", format!("{bin}:{}", std::env::var("PATH").unwrap_or_default()));
        let out = run_cmd(cmd, LIMIT);
        out.expect_code(0);
        let job = out.stdout.split_whitespace().last().expect("Submitted batch job N").to_string();
        let text = std::fs::read_to_string(work.join(&format!("vecpar-{job}.out"))).unwrap();
        let validated: Vec<&str> = text.lines().filter(|l| l.starts_with("Solution validates")).collect();
        assert_eq!(validated.len(), 2, "two steps, one report each:\n{text}");
        assert!(text.contains("MPI: 2 ranks on 2 nodes"), "hybrid, one rank per node:\n{text}");
        assert!(text.contains("MPI: 4 ranks on 2 nodes"), "--mode ranks, one rank per CPU:\n{text}");
        assert_eq!(digest(validated[0]), digest(validated[1]), "the same arrays, whatever the layout");
        assert!(!text.contains('\x1b') && !text.contains('\0'), "plain text in the output file");
        assert!(!text.contains("workers on"), "each rank's workers have CPUs of their own:\n{text}");
        c.assert_gone(&job);
    }
}
