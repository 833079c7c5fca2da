//! Whole runs: every op, dtype and mode, awkward lengths, both backends, and
//! the JSON export checked field by field.

use crate::util::*;

/// The SIMD levels this CPU runs (a run refuses the others).
fn simd_levels() -> Vec<&'static str> {
    ["scalar", "sse2", "avx2", "avx512", "neon"]
        .into_iter()
        .filter(|l| coord(&["--simd", l, "--len", "10", "--runs", "1", "--quiet"]).code == Some(0))
        .collect()
}

const ALL_OPS: [&str; 7] = ["copy", "scale", "add", "triad", "dot", "nstream", "fma"];

#[test]
fn every_kernel_dtype_mode_and_simd_level_validates_at_awkward_lengths() {
    let levels = simd_levels();
    assert!(levels.contains(&"scalar"));
    for mode in ["procs", "threads", "serial"] {
        for dtype in ["f64", "f32"] {
            for simd in &levels {
                for len in ["1", "7", "4097", "1000003"] {
                    let mut args = vec![
                        "--mode", mode, "--dtype", dtype, "--simd", simd, "--op", "all", "--len", len, "--runs", "3",
                    ];
                    if mode != "serial" {
                        args.extend(["--procs", "3"]);
                    }
                    let r = coord_json(&args, 0);
                    assert_eq!(r["validated"], true, "{args:?}");
                    let kernels = r["kernels"].as_array().unwrap();
                    let ops: Vec<&str> = kernels.iter().map(|k| k["op"].as_str().unwrap()).collect();
                    assert_eq!(ops, ALL_OPS, "--op all: STREAM's, BabelStream's, then fma");
                    for k in kernels {
                        assert_eq!(k["validation"]["checked"].as_u64(), Some(len.parse().unwrap()), "{args:?}: {k}");
                        assert_eq!(k["validation"]["mismatch"], serde_json::Value::Null);
                        assert_eq!(k["runs"].as_array().unwrap().len(), 3);
                    }
                    assert_eq!(kernels[4]["dot"]["within_bound"], true, "{args:?}");
                    let history = &kernels[6]["validation"]["history"];
                    assert_eq!(history[5], serde_json::json!({"op": "nstream", "rounds": 4}), "1 warm-up + 3 timed");
                    assert_eq!(history[6], serde_json::json!({"op": "fma", "rounds": 4}), "{args:?}");
                    assert_partition(&r);
                }
            }
        }
    }
}

#[test]
fn a_list_of_kernels_runs_them_in_order_with_one_row_each() {
    let out = coord(&["--procs", "2", "--len", "1e5", "--op", "triad,copy,dot", "--runs", "4", "-q"]);
    out.expect_code(0);
    let rows: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| ["Copy:", "Scale:", "Add:", "Triad:", "Dot:"].iter().any(|f| l.starts_with(f)))
        .collect();
    assert_eq!(rows.len(), 3, "{}", out.stdout);
    assert!(rows[0].starts_with("Triad:") && rows[1].starts_with("Copy:") && rows[2].starts_with("Dot:"));
    assert!(out.stdout.contains("Function    Best Rate GB/s     Avg time     Min time     Max time"), "{}", out.stdout);
    assert!(out.stdout.contains("Solution validates"));

    // The JSON: the first kernel at the top, as a one-kernel run has it.
    let r = coord_json(&["--procs", "2", "--len", "1e5", "--op", "triad,copy", "--runs", "4"], 0);
    assert_eq!(r["config"]["op"], "triad,copy");
    assert_eq!(r["config"]["ops"], serde_json::json!(["triad", "copy"]));
    assert_eq!(r["summary"], r["kernels"][0]["summary"]);
    assert_eq!(r["runs"], r["kernels"][0]["runs"]);
    assert_eq!(r["validation"], r["kernels"][0]["validation"]);
    assert_eq!(r["kernels"][1]["bytes_per_round"].as_u64(), Some(2 * 100_000 * 8), "copy moves 2 arrays");
    // Rounds are numbered through the run: copy's follow triad's.
    let last_triad = r["kernels"][0]["runs"][3]["round"].as_u64().unwrap();
    let first_copy = r["kernels"][1]["warmup"][0]["round"].as_u64().unwrap();
    assert_eq!(first_copy, last_triad + 1);

    for bad in ["mul", "add,nope", ""] {
        let out = coord(&["--op", bad, "--len", "1e3"]);
        out.expect_code(2);
        assert!(out.stderr.contains("--op"), "{bad}: {}", out.stderr);
    }
    // Kernels that update an array others read run in any order: the check
    // replays them as they ran.
    for order in ["nstream,add", "fma,triad,dot", "add,fma,nstream,copy"] {
        let r = coord_json(&["--op", order, "--len", "1e4", "--runs", "2", "--procs", "2"], 0);
        assert_eq!(r["validated"], true, "{order}");
        let applied: Vec<&str> = r["kernels"].as_array().unwrap().last().unwrap()["validation"]["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["op"].as_str().unwrap())
            .collect();
        assert_eq!(applied.join(","), order);
    }
    // A kernel named twice runs once, and the run says so.
    let r = coord(&["--op", "add,add", "--len", "1e3", "--runs", "2", "--export-json", "-"]);
    r.expect_code(0);
    assert_eq!(r.json()["kernels"].as_array().unwrap().len(), 1);
    assert!(r.stderr.contains("note: --op names add more than once"), "{}", r.stderr);
}

#[test]
fn dot_is_the_same_sum_whatever_the_mode_and_worker_count() {
    for dtype in ["f64", "f32"] {
        let value = |extra: &[&str]| {
            let args = [&["--op", "dot", "--len", "300001", "--dtype", dtype, "--seed", "9"][..], extra].concat();
            let r = coord_json(&args, 0);
            let dot = &r["kernels"][0]["dot"];
            assert_eq!(dot["within_bound"], true, "{args:?}: {dot}");
            let (err, bound) = (dot["error"].as_f64().unwrap(), dot["bound"].as_f64().unwrap());
            assert!(err <= bound && bound > 0.0);
            dot["value"].as_f64().unwrap().to_bits()
        };
        let serial = value(&["--mode", "serial"]);
        for procs in ["1", "2", "3", "7"] {
            for mode in ["procs", "threads"] {
                assert_eq!(value(&["--mode", mode, "--procs", procs]), serial, "{dtype} {mode} × {procs}: bit for bit");
            }
        }
    }
}

#[test]
fn updates_in_place_apply_once_per_round_and_are_validated_after_them() {
    for op in ["nstream", "fma"] {
        for (runs, warmup) in [("1", "0"), ("5", "2"), ("12", "1")] {
            for mode in ["procs", "threads", "serial"] {
                let mut args = vec!["--op", op, "--len", "100003", "--runs", runs, "--warmup", warmup, "--mode", mode];
                if mode != "serial" {
                    args.extend(["--procs", "3"]);
                }
                let r = coord_json(&args, 0);
                let updates: u64 = runs.parse::<u64>().unwrap() + warmup.parse::<u64>().unwrap();
                assert_eq!(r["validation"]["history"][0]["rounds"].as_u64(), Some(updates), "{args:?}");
                assert_eq!(r["validated"], true);
                assert_eq!(
                    r["config"]["bytes_per_round"].as_u64(),
                    Some(4 * 100_003 * 8),
                    "4 arrays: 3 read, 1 written"
                );
            }
        }
    }
    // The same arrays whatever the mode: the digests agree.
    let digests = |op: &str, mode: &str| {
        let procs = if mode == "serial" { "1" } else { "2" };
        let r = coord_json(&["--op", op, "--len", "50000", "--runs", "6", "--mode", mode, "--procs", procs], 0);
        (r["validation"]["a_digest"].clone(), r["validation"]["c_digest"].clone())
    };
    for op in ["nstream", "fma"] {
        assert_eq!(digests(op, "procs"), digests(op, "threads"), "{op}");
        assert_eq!(digests(op, "procs"), digests(op, "serial"), "{op}");
    }
}

#[test]
fn a_stalled_round_gets_a_noise_verdict_and_a_warning_that_says_what_to_do() {
    // Every round is slowed 5 ms, so no round is too short to time on any
    // machine, however fast; round 5 by 300 ms: an outlier by any measure.
    let mut args: Vec<String> =
        ["--procs", "2", "--len", "1e5", "--runs", "15", "--export-json", "-"].map(String::from).to_vec();
    for round in 0..16 {
        let ms = if round == 5 { 300 } else { 5 };
        args.extend(["--inject-fault".to_string(), format!("1:stall={ms}@{round}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = coord(&args);
    out.expect_code(0);
    let r = out.json();
    assert_eq!(r["validated"], true, "a stall loses nothing");
    assert!(r["noise"]["verdicts"].as_array().unwrap().contains(&serde_json::json!("noisy")), "{}", r["noise"]);
    assert!(r["noise"]["outliers"].as_array().unwrap().contains(&serde_json::json!(5)), "{}", r["noise"]);
    assert_eq!(r["noise"], r["kernels"][0]["noise"]);
    let line = out.stderr.lines().find(|l| l.contains("outliers")).unwrap_or_else(|| panic!("{}", out.stderr));
    for hint in ["--runs", "--warmup", "--repeat", "--len"] {
        assert!(line.contains(hint), "{hint}: {line}");
    }
    // The table shows the spread as a person reads it.
    let table = coord(&["--procs", "2", "--len", "1e5", "--runs", "15", "--inject-fault", "1:stall=300@5", "-q"]);
    assert!(table.stdout.contains("IQR") && table.stdout.contains("% of the median"), "{}", table.stdout);
}

#[test]
fn scattered_rounds_are_not_steady_and_one_round_has_no_statistics() {
    // Rounds alternately slowed 10 ms and 20 ms: long on any machine, half
    // of them far from the median, none standing out alone.
    let mut args: Vec<String> = ["--procs", "2", "--len", "1e5", "--runs", "16", "--warmup", "0", "--export-json", "-"]
        .map(String::from)
        .to_vec();
    for round in 0..16 {
        let ms = if round % 2 == 0 { 10 } else { 20 };
        args.extend(["--inject-fault".to_string(), format!("1:stall={ms}@{round}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = coord(&args);
    out.expect_code(0);
    let r = out.json();
    // Scattered, never steady (a busy machine may add "noisy" too).
    let verdicts: Vec<&str> = r["noise"]["verdicts"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(verdicts.contains(&"scattered") && !verdicts.contains(&"steady"), "{verdicts:?}");
    assert!(out.stderr.contains("the rounds are scattered"), "{}", out.stderr);
    // One round: no IQR pretending to be a measurement.
    let out = coord(&["--procs", "2", "--len", "1e5", "--runs", "1"]);
    out.expect_code(0);
    assert!(out.stdout.contains("one round: no spread to show"), "{}", out.stdout);
    assert!(!out.stdout.contains("IQR"), "{}", out.stdout);
    assert!(out.stderr.contains("one timed round"), "{}", out.stderr);
}

#[test]
fn more_workers_than_elements_leaves_idle_workers() {
    for mode in ["procs", "threads"] {
        let r = coord_json(&["--mode", mode, "--procs", "8", "--len", "7"], 0);
        assert_eq!(r["validated"], true);
        let workers = r["workers"].as_array().unwrap();
        assert_eq!(workers.len(), 8);
        assert_eq!(workers.iter().filter(|w| w["idle"] == true).count(), 7, "{r}");
        assert_eq!((workers[0]["start"].as_u64(), workers[0]["end"].as_u64()), (Some(0), Some(7)));
        assert_partition(&r);
    }
}

#[test]
fn eight_worker_processes_report_a_validated_run() {
    let out = coord(&["--procs", "8", "--export-json", "-", "--quiet"]);
    out.expect_code(0);
    let r = out.json();
    assert_eq!(r["coordinator_pid"].as_u64(), Some(out.pid as u64));
    assert_eq!(r["validated"], true);
    assert_eq!(r["config"]["mode"], "procs");
    assert_eq!(r["config"]["procs"], 8);
    let coordinator = r["coordinator_pid"].as_u64().unwrap();
    let pids: std::collections::BTreeSet<u64> = worker_ranges(&r).iter().map(|w| w.1).collect();
    assert_eq!(pids.len(), 8, "worker pids are distinct: {pids:?}");
    assert!(!pids.contains(&coordinator), "workers are not the coordinator");
    assert_partition(&r);
}

#[test]
fn the_json_export_has_the_documented_keys() {
    let r = coord_json(&["--procs", "2", "--len", "100000", "--runs", "4", "--warmup", "2"], 0);
    for key in [
        "mode",
        "procs",
        "procs_source",
        "len",
        "op",
        "dtype",
        "simd",
        "stores",
        "shm",
        "sync",
        "pin",
        "runs",
        "warmup",
        "seed",
        "ops",
        "pages",
        "pages_reason",
        "page_bytes",
        "stores_reason",
        "bytes_per_round",
        "footprint_bytes",
    ] {
        assert!(!r["config"][key].is_null(), "config.{key} missing");
    }
    assert_eq!(r["format_version"], 4);
    // Checked by the coordinator, not by the workers that computed it.
    let by = &r["validation"]["checked_by"];
    assert_eq!(by["kind"], "coordinator", "{by}");
    assert_eq!(by["pid"], r["coordinator_pid"]);
    assert_eq!(r["validation"]["history"], serde_json::json!([{"op": "add", "rounds": 6}]));
    assert_eq!(r["kind"], "run");
    assert_eq!(r["config"]["pages"], "auto", "the --huge-pages setting; what it did is in pages_reason");
    // RFC 3339, UTC, to the second: 2026-12-01T12:00:00Z.
    let started = r["started"].as_str().unwrap();
    let b = started.as_bytes();
    assert!(
        started.len() == 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[19] == b'Z',
        "{started}"
    );
    assert!(started[..4].parse::<u32>().unwrap() >= 2024);
    let argv: Vec<&str> = r["arguments"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(argv.ends_with(&["--warmup", "2", "--export-json", "-", "--quiet"]), "{argv:?}");
    assert!(r["kernels"].as_array().unwrap().len() == 1 && r["kernels"][0]["op"] == "add");
    let verdicts = ["one-round", "too-short", "noisy", "scattered", "steady"];
    assert!(verdicts.contains(&r["noise"]["verdict"].as_str().unwrap()), "{}", r["noise"]);
    assert_eq!(r["noise"]["verdict"], r["noise"]["verdicts"][0], "the verdict is the first that applies");
    assert!(r["summary"]["iqr_s"].as_f64().unwrap() >= 0.0);
    assert_eq!(r["validated"], true);
    let runs = r["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert_eq!(r["warmup"].as_array().unwrap().len(), 2);
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(run["round"].as_u64(), Some(2 + i as u64), "timed rounds follow the warm-up");
        let (s, g) = (run["seconds"].as_f64().unwrap(), run["gbps"].as_f64().unwrap());
        assert!(s > 0.0);
        let bytes = r["config"]["bytes_per_round"].as_f64().unwrap();
        assert!((g - bytes / s / 1e9).abs() <= 1e-6 * g, "gbps = bytes / seconds / 1e9");
    }
    assert_eq!(r["config"]["bytes_per_round"].as_u64(), Some(3 * 100_000 * 8), "STREAM counts 3 arrays for add");
    let s = &r["summary"];
    for key in ["best_gbps", "median_gbps", "min_s", "median_s", "max_s", "mean_s"] {
        assert!(s[key].as_f64().unwrap() > 0.0, "summary.{key}");
    }
    assert!(s["min_s"].as_f64() <= s["median_s"].as_f64() && s["median_s"].as_f64() <= s["max_s"].as_f64());
    let phases = &r["phases"];
    let parts: f64 = ["setup_s", "spawn_s", "init_s", "rounds_s", "validate_s", "teardown_s"]
        .iter()
        .map(|k| phases[k].as_f64().unwrap_or_else(|| panic!("phases.{k}")))
        .sum();
    assert!(parts <= phases["total_s"].as_f64().unwrap() * (1.0 + 1e-9), "the phases add up to no more than the total");
    assert!(phases["rounds_s"].as_f64().unwrap() >= runs.iter().map(|x| x["seconds"].as_f64().unwrap()).sum::<f64>());
    for w in r["workers"].as_array().unwrap() {
        for key in ["id", "pid", "start", "end", "cpu", "pinned"] {
            assert!(!w[key].is_null(), "workers[].{key} missing in {w}");
        }
    }
    assert_eq!(r["faults"].as_array().unwrap().len(), 0);
    assert!(r["host"]["cpu_model"].is_string());
}

#[test]
fn the_three_modes_compute_the_same_c() {
    let digest = |args: &[&str]| {
        let r = coord_json(args, 0);
        assert_eq!(r["validated"], true);
        r["validation"]["c_digest"].as_str().unwrap().to_string()
    };
    for op in ["add", "triad"] {
        let base = ["--len", "300001", "--seed", "42", "--op", op];
        let serial = digest(&[&base[..], &["--mode", "serial"]].concat());
        for procs in ["1", "2", "5"] {
            for mode in ["procs", "threads"] {
                assert_eq!(
                    digest(&[&base[..], &["--mode", mode, "--procs", procs]].concat()),
                    serial,
                    "{mode} × {procs} for {op}"
                );
            }
        }
        // A different seed gives a different c.
        assert_ne!(digest(&["--len", "300001", "--seed", "43", "--op", op, "--mode", "serial"]), serial);
    }
}

#[test]
fn posix_segments_work_and_are_gone_after_the_run() {
    for mode in ["procs", "threads"] {
        let r = coord_json(&["--shm", "posix", "--mode", mode, "--procs", "3", "--len", "50000"], 0);
        assert_eq!(r["config"]["shm"], "posix");
        assert_eq!(r["validated"], true);
    }
}

#[test]
fn every_simd_level_and_store_kind_of_this_cpu_validates() {
    let levels = simd_levels();
    for simd in &levels {
        for stores in ["regular", "nontemporal"] {
            if (*simd == "scalar" || *simd == "neon") && stores == "nontemporal" {
                continue;
            }
            for dtype in ["f64", "f32"] {
                let r = coord_json(
                    &["--simd", simd, "--stores", stores, "--dtype", dtype, "--len", "100003", "--op", "all"],
                    0,
                );
                assert_eq!(r["config"]["simd"], *simd);
                assert_eq!(r["config"]["stores"], stores);
                assert_eq!(r["validated"], true);
            }
        }
    }
}

#[test]
fn ipc_rounds_validate_like_doorbell_rounds() {
    let r = coord_json(&["--sync", "ipc", "--procs", "3", "--len", "100000", "--runs", "5"], 0);
    assert_eq!(r["config"]["sync"], "ipc");
    assert_eq!(r["validated"], true);
    assert_eq!(r["runs"].as_array().unwrap().len(), 5);
}

#[test]
fn the_human_report_has_no_colour_when_piped() {
    let out = coord(&["--procs", "2", "--len", "10000", "--quiet"]);
    out.expect_code(0);
    assert!(out.stdout.contains("Best Rate GB/s"));
    assert!(out.stdout.contains("Solution validates"));
    assert!(!out.stdout.contains('\x1b'), "no ANSI codes when stdout is a pipe");
    let forced = coord(&["--procs", "2", "--len", "10000", "--quiet", "--color", "always"]);
    assert!(forced.stdout.contains('\x1b'));
}

#[test]
fn posix_segments_cannot_have_huge_pages() {
    // posix segments live in /dev/shm, which is not hugetlbfs. (Huge pages
    // themselves are tested in a guest, whose pool is its own: numa.rs.)
    let out = coord(&["--huge-pages", "always", "--shm", "posix", "--len", "1e6"]);
    out.expect_code(2);
    assert!(out.error_lines().join("\n").contains("--huge-pages"), "{}", out.stderr);
}

#[test]
fn units_change_what_people_read_and_the_json_says_which() {
    let dir = TempDir::new("units");
    let json = dir.str("run.json");
    let out = coord(&["--procs", "2", "--len", "2e5", "--units", "MiB/s", "--export-json", &json, "-q"]);
    out.expect_code(0);
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["units"], "MiB/s", "the JSON names the unit the table showed");
    let best_gbps = r["summary"]["best_gbps"].as_f64().expect("exports keep GB/s");
    assert!(out.stdout.contains("Best Rate MiB/s"), "{}", out.stdout);
    assert!(out.stdout.contains("MiB/s (") && out.stdout.contains("2^20 B/MiB"), "{}", out.stdout);
    assert!(!out.stdout.contains("GB/s"), "{}", out.stdout);
    let shown: f64 = out
        .stdout
        .lines()
        .find(|l| l.starts_with("Add:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    let expected = best_gbps * 1e9 / 1048576.0;
    assert!((shown - expected).abs() <= 1.0, "{shown} MiB/s shown for {best_gbps} GB/s");
    // BabelStream's default, by its short name.
    let mb = coord(&["--procs", "2", "--len", "2e5", "--units", "mb", "-q"]);
    mb.expect_code(0);
    assert!(mb.stdout.contains("Best Rate MB/s") && mb.stdout.contains("10^6 B/MB"), "{}", mb.stdout);
    let bad = coord(&["--units", "furlongs"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("--units"), "{}", bad.stderr);
}
