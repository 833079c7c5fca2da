//! Injected faults in both modes: detected, reported, recovered where
//! processes allow it.

use serde_json::Value;

use crate::util::*;

const KINDS: [&str; 7] = ["panic", "abort", "segv", "exit", "hang", "oob-write", "stack-overflow"];

/// The JSON `cause.kind` each injected fault must be reported as (procs mode).
fn procs_cause(kind: &str) -> &'static str {
    match kind {
        "panic" => "panic",
        "abort" | "segv" => "signal",
        "exit" => "exit",
        "hang" => "timeout",
        "oob-write" => "blocked-write",
        "stack-overflow" => "stack-overflow",
        _ => unreachable!(),
    }
}

fn fault_run(mode: &str, kind: &str, policy: &str) -> Outcome {
    coord(&[
        "--mode",
        mode,
        "--procs",
        "3",
        "--len",
        "100000",
        "--runs",
        "5",
        "--inject-fault",
        &format!("1:{kind}@2"),
        "--timeout",
        "2",
        "--on-fault",
        policy,
        "--export-json",
        "-",
        "--quiet",
    ])
}

fn chunk_of(report: &Value, worker: usize) -> (u64, u64) {
    let w = &report["workers"][worker];
    (w["start"].as_u64().unwrap(), w["end"].as_u64().unwrap())
}

#[test]
fn every_fault_kind_in_procs_mode_is_detected_and_exits_4() {
    for kind in KINDS {
        let out = fault_run("procs", kind, "fail");
        out.expect_code(4);
        let r = out.json();
        assert_eq!(r["validated"], false);
        let faults = r["faults"].as_array().unwrap();
        assert_eq!(faults.len(), 1, "{kind}: exactly the faulty worker is blamed: {faults:?}");
        let f = &faults[0];
        assert_eq!(f["worker"], 1);
        assert_eq!(f["round"], 2);
        assert_eq!(f["phase"], "round");
        assert_eq!(f["cause"]["kind"], procs_cause(kind), "{kind}: {f}");
        assert_eq!(f["action"], "stopped the run");
        let (start, end) = chunk_of(&r, 1);
        assert_eq!((f["range"][0].as_u64(), f["range"][1].as_u64()), (Some(start), Some(end)));
        let pid = f["pid"].as_u64().unwrap();
        assert!(pid > 0 && pid != r["coordinator_pid"].as_u64().unwrap());
        // How fast is the benchmark's business; here only that a hang is
        // never declared before its timeout.
        let detected = f["detected_after_s"].as_f64().unwrap();
        if kind == "hang" {
            assert!(detected >= 2.0, "a hang is declared at the timeout, not before: {detected}");
        }
        // One line per lost worker on stderr, naming it and the cause.
        let lines: Vec<&str> = out.stderr.lines().filter(|l| l.contains("worker lost")).collect();
        assert_eq!(lines.len(), 1, "{kind}: {}", out.stderr);
        assert!(lines[0].contains("worker 1") && lines[0].contains(&format!("pid {pid}")), "{}", lines[0]);
    }
}

#[test]
fn causes_name_the_signal_the_code_or_the_panic_message() {
    let cause = |kind: &str| fault_run("procs", kind, "fail").json()["faults"][0]["cause"].clone();
    assert_eq!(cause("segv")["name"], "SIGSEGV");
    assert_eq!(cause("abort")["name"], "SIGABRT");
    assert_eq!(cause("exit")["code"], 42);
    assert!(cause("panic")["message"].as_str().unwrap().contains("injected panic in worker 1 at round 2"));
    let code = coord_json(&["--procs", "2", "--len", "10000", "--inject-fault", "0:exit=7@1"], 4);
    assert_eq!(code["faults"][0]["cause"]["code"], 7);
}

#[test]
fn retry_turns_every_procs_fault_into_a_validated_run() {
    for kind in KINDS {
        let out = fault_run("procs", kind, "retry");
        out.expect_code(0);
        let r = out.json();
        assert_eq!(r["validated"], true, "{kind}");
        assert_eq!(r["runs"].as_array().unwrap().len(), 5, "{kind}: every timed round is reported once");
        let f = &r["faults"][0];
        assert_eq!(f["action"], "replaced by attempt 1", "{kind}");
        let retry = &r["retries"].as_array().unwrap()[0];
        assert_eq!(retry["worker"], 1);
        assert_eq!(retry["attempt"], 1);
        assert_eq!(retry["repeated"], "round 2");
        assert!(retry["cost_s"].as_f64().unwrap() > 0.0);
        assert_ne!(retry["new_pid"], f["pid"], "a fresh process");
        assert_eq!(r["workers"][1]["pid"], retry["new_pid"]);
        assert_eq!(r["workers"][1]["attempts"], 2);
        assert!(out.stdout.contains("\"retries\""));
    }
}

#[test]
fn a_replacement_attaches_after_the_posix_name_is_gone() {
    // The name is unlinked once every worker attached; a replacement
    // inherits the descriptor instead.
    let r = coord_json(
        &["--shm", "posix", "--procs", "2", "--len", "10000", "--inject-fault", "1:segv@1", "--on-fault", "retry"],
        0,
    );
    assert_eq!(r["validated"], true);
    assert_eq!(r["retries"].as_array().unwrap().len(), 1);
}

#[test]
fn a_fault_late_in_a_batch_keeps_the_rounds_before_it() {
    let r = coord_json(
        &["--procs", "2", "--len", "20000", "--runs", "40", "--inject-fault", "1:abort@25", "--on-fault", "retry"],
        0,
    );
    let rounds: Vec<u64> = r["runs"].as_array().unwrap().iter().map(|x| x["round"].as_u64().unwrap()).collect();
    assert_eq!(rounds, (1..=40).collect::<Vec<u64>>(), "each round once, in order");
    assert_eq!(r["retries"][0]["repeated"], "round 25");
}

#[test]
fn an_oob_write_is_stopped_by_the_mmu_in_procs_mode() {
    let r =
        coord_json(&["--procs", "2", "--len", "100000", "--inject-fault", "1:oob-write@0", "--on-fault", "retry"], 0);
    let cause = &r["faults"][0]["cause"];
    assert_eq!(cause["kind"], "blocked-write");
    assert_eq!(cause["array"], "a");
    assert_eq!(cause["index"], 0, "the first element of worker 0's chunk");
    assert_eq!(cause["owner"], 0);
    // Validation regenerates a from the seed: worker 0's chunk is intact.
    assert_eq!(r["validated"], true);
}

#[test]
fn threads_meet_the_same_faults_in_one_process() {
    // A panic unwinds one thread: caught, reported, and replaceable.
    let out = fault_run("threads", "panic", "fail");
    out.expect_code(4);
    assert_eq!(out.json()["faults"][0]["cause"]["kind"], "panic");
    let out = fault_run("threads", "panic", "retry");
    out.expect_code(0);
    assert_eq!(out.json()["validated"], true);

    // abort, a wild pointer and exit() take the whole process: no report,
    // only the last word.
    for (kind, signal, words) in [("abort", Some(6), "died of SIGABRT"), ("segv", Some(11), "died of SIGSEGV")] {
        let out = fault_run("threads", kind, "retry");
        assert_eq!(out.signal, signal, "{kind}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{kind}: the report died with the process");
        assert!(out.stderr.contains(words) && out.stderr.contains("--mode procs"), "{kind}: {}", out.stderr);
    }
    let out = fault_run("threads", "exit", "retry");
    assert_eq!(out.code, Some(42));
    assert!(out.stderr.contains("worker thread 1 called exit()"), "{}", out.stderr);

    // A hung thread is detected but cannot be killed, so it cannot be replaced.
    let out = fault_run("threads", "hang", "retry");
    out.expect_code(4);
    let r = out.json();
    assert_eq!(r["faults"][0]["cause"]["kind"], "timeout");
    assert!(r["faults"][0]["action"].as_str().unwrap().contains("cannot be replaced"), "{}", r["faults"][0]);

    // A stray write is not stopped: it corrupts a silently and validation catches it.
    let out = fault_run("threads", "oob-write", "retry");
    out.expect_code(3);
    let r = out.json();
    assert_eq!(r["faults"].as_array().unwrap().len(), 0, "nothing noticed the write");
    assert_eq!(r["validation"]["mismatch"]["array"], "a");
    assert_eq!(r["validation"]["mismatch"]["got"], 1234.5);
    assert_eq!(r["validation"]["mismatch_owner"], 2, "worker 1 wrote into worker 2's chunk");
    assert!(out.stderr.contains("validation failed: after add: a["), "{}", out.stderr);
}

#[test]
fn a_long_initialisation_is_not_a_hang() {
    // Reserving and filling 2.4 GB takes seconds; the timeout bounds
    // silence, not work: a worker that keeps reserving, filling and
    // checking keeps beating.
    let r = coord_json(&["--procs", "1", "--len", "1e8", "--runs", "1", "--warmup", "0", "--timeout", "1"], 0);
    assert_eq!(r["validated"], true);
    assert_eq!(r["faults"].as_array().unwrap().len(), 0);
}

#[test]
fn time_the_coordinator_was_stopped_does_not_count_against_its_workers() {
    // Ctrl-Z for longer than --timeout, during start-up and during the
    // rounds: the workers did nothing wrong.
    for when in ["start-up", "rounds"] {
        let mut run = Background::start(&[
            "--procs",
            "2",
            "--len",
            "1e6",
            "--runs",
            "300",
            "--timeout",
            "1",
            "--export-json",
            "-",
            "-q",
        ]);
        if when == "rounds" {
            run.wait_for_workers(2);
        }
        run.signal(nix::sys::signal::Signal::SIGSTOP);
        std::thread::sleep(std::time::Duration::from_secs(3));
        run.signal(nix::sys::signal::Signal::SIGCONT);
        let out = run.finish(LIMIT);
        out.expect_code(0);
        let r = out.json();
        assert_eq!(r["faults"].as_array().unwrap().len(), 0, "stopped during {when}: {}", r["faults"]);
        assert_eq!(r["validated"], true);
    }
}

#[test]
fn a_stopped_worker_is_replaced_and_no_survivor_is_stranded() {
    // SIGSTOP one worker mid-batch: it is declared hung, killed and
    // replaced; the others, caught inside the aborted batch, must all
    // leave it before the next bell, so none is killed as hung in turn.
    // Each worker takes a second to start (a wrapper that sleeps, then
    // execs it), so a test that stopped a worker before it said hello
    // would fail every time, not once on a busy machine: one stopped
    // there is a worker that could not start (exit 1), never retried.
    let dir = TempDir::new("slow-start");
    let slow = script(&dir, "vecpar-worker-slow", &format!("sleep 1\nexec \"{}\" \"$@\"", worker_bin()));
    for victim in [0usize, 1, 2] {
        let mut run = Background::start(&[
            "--worker-bin",
            slow.to_str().unwrap(),
            "--procs",
            "3",
            "--len",
            "1e5",
            "--runs",
            "20000",
            "--timeout",
            "1",
            "--on-fault",
            "retry",
            "--export-json",
            "-",
            "-q",
        ]);
        let workers = run.wait_for_workers(3);
        let mut ordered = workers.clone();
        ordered.sort_unstable();
        let pid = nix::unistd::Pid::from_raw(ordered[victim] as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
        let out = run.finish(LIMIT);
        out.expect_code(0);
        let r = out.json();
        assert_eq!(r["validated"], true);
        let faults = r["faults"].as_array().unwrap();
        assert_eq!(faults.len(), 1, "only the stopped worker is lost: {faults:?}");
        assert_eq!(faults[0]["pid"].as_u64(), Some(ordered[victim] as u64));
        assert_eq!(faults[0]["cause"]["kind"], "timeout");
        assert_eq!(r["runs"].as_array().unwrap().len(), 20000, "every round once");
    }
}

#[test]
fn detection_is_timed_from_the_workers_stop_not_from_the_step() {
    // Worker 1 stalls 300 ms in round 3, then dies in round 4 of the same
    // step: however fast or busy the machine, the step was at least 300 ms
    // old when the death was detected, and the time from the death to its
    // detection is the rest.
    for mode in ["procs", "threads"] {
        let out = coord(&[
            "--mode",
            mode,
            "--procs",
            "2",
            "--len",
            "1e5",
            "--runs",
            "8",
            "--warmup",
            "0",
            "--inject-fault",
            "1:stall=300@3",
            "--inject-fault",
            if mode == "procs" { "1:segv@4" } else { "1:panic@4" },
            "--export-json",
            "-",
            "-q",
        ]);
        out.expect_code(4);
        let r = out.json();
        let f = &r["faults"][0];
        assert_eq!(f["round"], 4, "{mode}: {f}");
        let after =
            f["detected_after_s"].as_f64().unwrap_or_else(|| panic!("{mode}: the moment of death is known: {f}"));
        let step = f["step_elapsed_s"].as_f64().unwrap();
        assert!(
            after >= 0.0 && after + 0.3 <= step + 1e-3,
            "{mode}: {after} s after the death, {step} s into the step"
        );
    }
    // A hang: from its last sign of life, which is at least --timeout.
    let out = coord(&[
        "--procs",
        "2",
        "--len",
        "1e5",
        "--timeout",
        "1",
        "--inject-fault",
        "1:hang@2",
        "--export-json",
        "-",
        "-q",
    ]);
    out.expect_code(4);
    let f = &out.json()["faults"][0];
    assert_eq!(f["cause"]["kind"], "timeout");
    assert!(f["detected_after_s"].as_f64().unwrap() >= 1.0, "{f}");
}
