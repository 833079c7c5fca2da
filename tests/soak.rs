//! Soak: a few hundred runs over random modes, kernels, lengths, worker
//! counts, backends and faults, with slow-starting and lying workers among
//! the real ones, and runs interrupted by a signal (fault signals sent from
//! outside among them) at a random moment of start-up, work or teardown.
//! Each must end with the exit code its configuration implies, validated
//! where it should be, leaving nothing behind.
//!
//! Reproducible: the seed is printed; `VECPAR_SOAK_SEED` replays one and
//! `VECPAR_SOAK_RUNS` changes the count (default 300).

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::util::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// How a run must end.
#[derive(Debug, PartialEq)]
enum Expect {
    Code(i32),
    Signal(i32),
}

/// Whether worker `w` has another worker's chunk to write into.
fn has_oob_target(len: u64, dtype: &str, procs: u64, w: u64) -> bool {
    let page = if dtype == "f64" { 512 } else { 1024 };
    let active = len.div_ceil(page).min(procs);
    // Workers 0..active have chunks; w needs one that is not its own.
    if w < active { active >= 2 } else { active >= 1 }
}

fn expected(mode: &str, fault: Option<(&str, bool)>, oob_ok: bool) -> Expect {
    let Some((kind, retry)) = fault else { return Expect::Code(0) };
    if kind == "oob-write" && !oob_ok {
        return Expect::Code(2);
    }
    match (mode, kind) {
        ("procs", _) => Expect::Code(if retry { 0 } else { 4 }),
        ("threads", "panic") => Expect::Code(if retry { 0 } else { 4 }),
        ("threads", "abort") => Expect::Signal(6),
        ("threads", "segv") => Expect::Signal(11),
        ("threads", "exit") => Expect::Code(42),
        ("threads", "hang") => Expect::Code(4),
        ("threads", "oob-write") => Expect::Code(3),
        ("threads", "stack-overflow") => Expect::Signal(11),
        _ => unreachable!(),
    }
}

/// The seed (printed where the test output shows it) and the run count.
fn soak_setup(test: &str, default_runs: usize) -> (u64, usize) {
    let seed = std::env::var("VECPAR_SOAK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    let runs: usize = std::env::var("VECPAR_SOAK_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(default_runs);
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("{test}: {runs} runs, VECPAR_SOAK_SEED={seed}\n").as_bytes());
    (seed, runs)
}

#[test]
fn hundreds_of_random_runs_end_as_expected_and_leave_nothing() {
    let (seed, runs) = soak_setup("soak", 300);
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    // Workers other than the real one: a slow starter (a wrapper that
    // sleeps first) and a liar that speaks the protocol and computes
    // nothing (the coordinator's own check must catch it every time).
    let dir = TempDir::new("soak");
    let slow = script(&dir, "slow-worker", &format!("sleep 0.2\nexec \"{}\" \"$@\"", worker_bin()));
    let liar = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/lying-worker.py");
    for i in 0..runs {
        let mode = rng.pick(&["procs", "procs", "threads"]);
        let worker = if mode == "procs" { rng.pick(&["real", "real", "real", "real", "slow", "liar"]) } else { "real" };
        let op = rng.pick(&["add", "copy", "scale", "triad", "dot", "nstream", "all", "dot,copy", "triad,nstream"]);
        let dtype = rng.pick(&["f64", "f32"]);
        let len = rng.pick(&["1", "7", "513", "4097", "65537", "300001"]);
        let procs = 1 + rng.below(6);
        let rounds = 1 + rng.below(4);
        let warmup = rng.below(3);
        let shm = rng.pick(&["memfd", "memfd", "posix"]);
        let sync = match (mode, worker) {
            (_, "liar") => "ipc", // the script speaks the message protocol only
            ("procs", _) => rng.pick(&["doorbell", "doorbell", "ipc"]),
            _ => "doorbell",
        };
        let (procs_s, runs_s, warmup_s) = (procs.to_string(), rounds.to_string(), warmup.to_string());
        let mut args: Vec<String> = [
            "--mode",
            mode,
            "--op",
            op,
            "--dtype",
            dtype,
            "--len",
            len,
            "--procs",
            &procs_s,
            "--runs",
            &runs_s,
            "--warmup",
            &warmup_s,
            "--shm",
            shm,
            "--sync",
            sync,
            // Base pages: the chunk layout (and so which worker has a
            // neighbour to write into) must not depend on what the hugetlb
            // pool holds while another test changes it.
            "--huge-pages",
            "never",
            "--timeout",
            // A Python interpreter per worker starts slowly on a busy
            // machine: the timeout bounds silence, so give the liar room.
            if worker == "liar" { "60" } else { "2" },
            "--export-json",
            "-",
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        match worker {
            "slow" => args.extend(["--worker-bin".into(), slow.to_string_lossy().into_owned()]),
            "liar" => {
                args.extend(["--worker-bin".into(), liar.to_string_lossy().into_owned()]);
            }
            _ => {}
        }
        let fault = if worker == "liar" || rng.below(2) == 0 {
            None
        } else {
            // Hangs cost a timeout each: keep them rare.
            let kind = if rng.below(10) == 0 {
                "hang"
            } else {
                rng.pick(&["panic", "abort", "segv", "exit", "oob-write", "stack-overflow"])
            };
            let worker = rng.below(procs);
            let round = rng.below(rounds + warmup);
            let retry = rng.below(2) == 0;
            args.extend(["--inject-fault".into(), format!("{worker}:{kind}@{round}")]);
            if retry {
                args.extend(["--on-fault".into(), "retry".into()]);
            }
            Some((kind, retry, worker))
        };
        let oob_ok = fault.is_none_or(|(_, _, w)| has_oob_target(len.parse().unwrap(), dtype, procs, w));
        let want =
            if worker == "liar" { Expect::Code(3) } else { expected(mode, fault.map(|(k, r, _)| (k, r)), oob_ok) };
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = std::process::Command::new(coord_bin());
        cmd.args(&argv).env("LIE", rng.pick(&["nothing", "fill"])).env("LIE_VERSION", env!("CARGO_PKG_VERSION"));
        let out = run_cmd(cmd, LIMIT); // checks for leftovers after every run
        let got = match (out.code, out.signal) {
            (Some(c), _) => Expect::Code(c),
            (None, Some(s)) => Expect::Signal(s),
            _ => panic!("run {i} ended without a status"),
        };
        assert_eq!(got, want, "run {i} (seed {seed}): {argv:?}\nstderr: {}", out.stderr);
        if let Expect::Code(code @ (0 | 3 | 4)) = got {
            let r = out.json();
            assert_eq!(r["validated"], code == 0, "run {i}: {argv:?}");
            assert_eq!(r["exit_code"], code);
        }
        *tally.entry(format!("{want:?}{}", if worker == "real" { "" } else { worker })).or_default() += 1;
    }
    use std::io::Write;
    let _ =
        std::io::stderr().write_all(format!("soak: {runs} runs in {:.1?}: {tally:?}\n", started.elapsed()).as_bytes());
}

#[test]
fn signals_at_random_moments_of_start_up_work_and_teardown_leave_nothing() {
    let (seed, runs) = soak_setup("signal soak", 60);
    let mut rng = Rng(seed ^ 0x5eed);
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..runs {
        let mode = rng.pick(&["procs", "procs", "threads", "serial"]);
        let shm = rng.pick(&["memfd", "posix"]);
        let procs = (1 + rng.below(8)).to_string();
        let len = rng.pick(&["1e4", "1e5", "1e6"]);
        let rounds = (1 + rng.below(200)).to_string();
        // Besides the usual ones, the signals a fault raises, sent from
        // outside: an interruption like any other.
        let signal = [
            Signal::SIGINT,
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGKILL,
            Signal::SIGSEGV,
            Signal::SIGBUS,
            Signal::SIGABRT,
            Signal::SIGFPE,
        ][rng.below(8) as usize];
        // From the first instruction to past the end: half the signals
        // within the first 5 ms (start-up and spawning), the rest up to
        // 60 ms (the rounds, validation and teardown of these runs).
        let delay = Duration::from_micros(if rng.below(2) == 0 { rng.below(5_000) } else { rng.below(60_000) });
        let mut args = vec!["--mode", mode, "--shm", shm, "--len", len, "--runs", &rounds, "-q"];
        if mode != "serial" {
            args.extend(["--procs", &procs]);
        }
        let mut run = Background::start(&args);
        std::thread::sleep(delay);
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(run.pid() as i32), signal);
        if signal == Signal::SIGKILL {
            // The kernel frees the segment and kills the workers; the one
            // thing it cannot free is a posix name linked in the
            // microseconds before its unlink: the next posix run removes it.
            let _ = run.child.wait();
            let pid = run.pid();
            let named = !segments_of(pid).is_empty();
            if named {
                // Gone after the next posix run (which says so, unless a
                // posix run of another test swept it first).
                let next = coord(&["--shm", "posix", "--procs", "1", "--len", "1e3", "--runs", "1"]);
                next.expect_code(0);
                assert!(segments_of(pid).is_empty(), "run {i}: {:?} left: {}", segments_of(pid), next.stderr);
                *tally.entry("SIGKILL left a name, swept".into()).or_default() += 1;
            }
        }
        let out = run.finish(LIMIT);
        let how = match (out.code, out.signal) {
            (Some(0), _) => "finished".to_string(),
            (Some(c), _) if c == 128 + signal as i32 && signal != Signal::SIGKILL => format!("{signal}"),
            (None, Some(9)) if signal == Signal::SIGKILL => "SIGKILL".to_string(),
            // So early that the default action still applied: nothing had
            // been created yet.
            (None, Some(s)) if s == signal as i32 => format!("{signal} before the handlers"),
            other => panic!("run {i} (seed {seed}) {args:?}, {signal} after {delay:?}: {other:?}\n{}", out.stderr),
        };
        assert!(!out.stderr.contains("panicked"), "run {i}: {}", out.stderr);
        *tally.entry(how).or_default() += 1;
    }
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("signal soak: {tally:?}\n").as_bytes());
}
