//! Soak: a few hundred runs over random modes, ops, lengths, worker counts,
//! backends and faults. Each must end with the exit code its configuration
//! implies, validated where it should be, leaving nothing behind.
//!
//! Reproducible: the seed is printed; `VECPAR_SOAK_SEED` replays one and
//! `VECPAR_SOAK_RUNS` changes the count (default 300).

use std::time::{Duration, Instant};

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
        _ => unreachable!(),
    }
}

#[test]
fn hundreds_of_random_runs_end_as_expected_and_leave_nothing() {
    let seed = std::env::var("VECPAR_SOAK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    let runs: usize = std::env::var("VECPAR_SOAK_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    eprintln!("soak: {runs} runs, VECPAR_SOAK_SEED={seed}");
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..runs {
        let mode = rng.pick(&["procs", "procs", "threads"]);
        let op = rng.pick(&["add", "copy", "scale", "triad"]);
        let dtype = rng.pick(&["f64", "f32"]);
        let len = rng.pick(&["1", "7", "513", "4097", "65537", "300001"]);
        let procs = 1 + rng.below(6);
        let rounds = 1 + rng.below(4);
        let warmup = rng.below(3);
        let shm = rng.pick(&["memfd", "memfd", "posix"]);
        let sync = if mode == "procs" { rng.pick(&["doorbell", "doorbell", "ipc"]) } else { "doorbell" };
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
            "--timeout",
            "0.3",
            "--export-json",
            "-",
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let fault = if rng.below(2) == 0 {
            None
        } else {
            // Hangs cost a timeout each: keep them rare.
            let kind =
                if rng.below(10) == 0 { "hang" } else { rng.pick(&["panic", "abort", "segv", "exit", "oob-write"]) };
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
        let want = expected(mode, fault.map(|(k, r, _)| (k, r)), oob_ok);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = coord(&argv); // checks for leftovers after every run
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
        *tally.entry(format!("{want:?}")).or_default() += 1;
    }
    eprintln!("soak: {runs} runs in {:.1?}: {tally:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(300), "a soak is bounded to a few minutes");
}
