//! Whole runs: every op, dtype and mode, awkward lengths, both backends, and
//! the JSON export checked field by field.

use crate::util::*;

#[test]
fn every_op_dtype_and_mode_validates_at_awkward_lengths() {
    for mode in ["procs", "threads", "serial"] {
        for dtype in ["f64", "f32"] {
            for op in ["add", "copy", "scale", "triad"] {
                for len in ["1", "7", "4097", "1000003"] {
                    let mut args = vec!["--mode", mode, "--dtype", dtype, "--op", op, "--len", len, "--runs", "2"];
                    if mode != "serial" {
                        args.extend(["--procs", "3"]);
                    }
                    let r = coord_json(&args, 0);
                    assert_eq!(r["validated"], true, "{args:?}");
                    assert_eq!(r["validation"]["checked"].as_u64(), Some(len.parse().unwrap()));
                    assert_partition(&r);
                }
            }
        }
    }
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
    ] {
        assert!(!r["config"][key].is_null(), "config.{key} missing");
    }
    assert_eq!(r["format_version"], 1);
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
    for key in ["setup_s", "spawn_s", "init_s", "rounds_s", "validate_s", "teardown_s", "total_s"] {
        assert!(r["phases"][key].as_f64().unwrap() >= 0.0, "phases.{key}");
    }
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
    let levels: Vec<&str> = ["scalar", "sse2", "avx2", "avx512", "neon"]
        .into_iter()
        .filter(|l| {
            let out = coord(&["--simd", l, "--len", "10", "--runs", "1", "--quiet"]);
            out.code == Some(0)
        })
        .collect();
    assert!(levels.contains(&"scalar"));
    for simd in &levels {
        for stores in ["regular", "nontemporal"] {
            if (*simd == "scalar" || *simd == "neon") && stores == "nontemporal" {
                continue;
            }
            for dtype in ["f64", "f32"] {
                let r = coord_json(
                    &["--simd", simd, "--stores", stores, "--dtype", dtype, "--len", "100003", "--op", "triad"],
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

/// Reserves `pages` huge pages for the guard's lifetime (root only);
/// `None` when the pool cannot be changed here.
struct HugePool {
    previous: u64,
}

impl HugePool {
    fn reserve(pages: u64) -> Option<HugePool> {
        let path = "/proc/sys/vm/nr_hugepages";
        let previous: u64 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
        std::fs::write(path, (previous + pages).to_string()).ok()?;
        let now: u64 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
        if now < previous + pages {
            let _ = std::fs::write(path, previous.to_string());
            return None;
        }
        Some(HugePool { previous })
    }
}

impl Drop for HugePool {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/vm/nr_hugepages", self.previous.to_string());
    }
}

#[test]
fn huge_pages_back_the_arrays_when_the_pool_has_room() {
    // Without a pool, `always` says how to get one and `auto` falls back.
    let none = coord(&["--huge-pages", "always", "--len", "1e6", "--procs", "2", "--mode", "threads"]);
    if none.code == Some(1) {
        let line = none.error_lines().join("\n");
        assert!(line.contains("vm.nr_hugepages") && line.contains("--huge-pages never"), "{line}");
    }
    let Some(_pool) = HugePool::reserve(64) else {
        return skip("huge pages", "cannot reserve huge pages here (needs root and free memory)");
    };
    for mode in ["procs", "threads", "serial"] {
        let mut args = vec!["--huge-pages", "always", "--len", "1000003", "--op", "triad", "--mode", mode];
        if mode != "serial" {
            args.extend(["--procs", "2"]);
        }
        let r = coord_json(&args, 0);
        assert_eq!(r["validated"], true, "{mode}");
        assert_eq!(r["config"]["page_bytes"], 2 * 1024 * 1024, "{mode}: {}", r["config"]["pages"]);
        // Chunks are whole huge pages of c.
        let boundary = r["workers"][0]["end"].as_u64().unwrap();
        assert!(boundary == 1_000_003 || boundary.is_multiple_of(2 * 1024 * 1024 / 8));
        assert_partition(&r);
    }
    // A run whose chunks would be unbalanced keeps base pages under auto.
    let r = coord_json(&["--len", "1e6", "--procs", "8", "--mode", "threads"], 0);
    assert_eq!(r["config"]["page_bytes"], 4096, "{}", r["config"]["pages"]);
    assert!(r["config"]["pages"].as_str().unwrap().contains("unbalanced"));
    // posix segments live in /dev/shm, which is not hugetlbfs.
    coord(&["--huge-pages", "always", "--shm", "posix", "--len", "1e6"]).expect_code(2);
}
