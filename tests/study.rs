//! The study workflow: sweeps, plots, the isolation experiment, exports and
//! completions.

use serde_json::Value;

use crate::util::*;

/// The run CSV's columns, in order: a contract with whoever reads the file.
const RUN_CSV: &str = "mode,procs,len,op,dtype,simd,stores,runs,best_gbps,median_gbps,\
min_s,median_s,mean_s,max_s,stddev_s,validated,exit_code,iqr_s,noise";
const SWEEP_CSV: &str = "mode,procs,len,op,dtype,simd,stores,page_bytes,repeats,best_gbps,\
median_gbps,median_gbps_min,median_gbps_max,speedup,efficiency,startup_s,validated,exit_code,partial,numa_nodes,suspect";
const ISOLATION_CSV: &str = "mode,fault,survived,correct,detected,lost,retry,recovered";
/// The plot's first two series colours (its palette starts with these).
const FIRST_SERIES: (u8, u8, u8) = (0x1f, 0x77, 0xb4);
const SECOND_SERIES: (u8, u8, u8) = (0xd6, 0x27, 0x28);

#[test]
fn a_sweep_measures_every_point_against_serial() {
    let out = coord(&["sweep", "--procs", "1,2", "--len", "1e5", "--runs", "3", "--export-json", "-", "-q"]);
    out.expect_code(0);
    let r = out.json();
    assert_eq!(r["kind"], "sweep");
    assert_eq!(r["format_version"], 4);
    let points = r["points"].as_array().unwrap();
    // serial once, then procs and threads at 1 and 2 workers
    let shape: Vec<(String, u64)> =
        points.iter().map(|p| (p["mode"].as_str().unwrap().to_string(), p["procs"].as_u64().unwrap())).collect();
    let want: Vec<(String, u64)> = [("serial", 1), ("procs", 1), ("threads", 1), ("procs", 2), ("threads", 2)]
        .iter()
        .map(|(m, n)| (m.to_string(), *n))
        .collect();
    assert_eq!(shape, want);
    assert_eq!(points[0]["speedup"], 1.0);
    for p in points {
        assert_eq!(p["validated"], true);
        let (speedup, eff) = (p["speedup"].as_f64().unwrap(), p["efficiency"].as_f64().unwrap());
        assert!((eff - speedup / p["procs"].as_f64().unwrap()).abs() < 1e-9);
        assert!(p["median_gbps"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(r["runs"].as_array().unwrap().len(), 5, "every run in full");
    for key in ["hostname", "cpu_model", "cpu_flags", "kernel", "caches", "allowed_cpus"] {
        assert!(!r["host"][key].is_null(), "host.{key}");
    }
    assert!(r["runs"][1]["config"]["procs_source"]["kind"].is_string());
}

#[test]
fn a_repeated_sweep_reports_each_points_median_and_spread() {
    let out =
        coord(&["sweep", "--procs", "2", "--len", "1e5", "--runs", "2", "--repeat", "3", "--export-json", "-", "-q"]);
    out.expect_code(0);
    let r = out.json();
    let points = r["points"].as_array().unwrap();
    assert_eq!(points.len(), 3, "serial, procs × 2, threads × 2");
    assert_eq!(r["runs"].as_array().unwrap().len(), 9, "every repetition's run is kept");
    for p in points {
        assert_eq!(p["repeats"], 3);
        let (lo, mid, hi) = (
            p["median_gbps_min"].as_f64().unwrap(),
            p["median_gbps"].as_f64().unwrap(),
            p["median_gbps_max"].as_f64().unwrap(),
        );
        assert!(0.0 < lo && lo <= mid && mid <= hi, "{lo} <= {mid} <= {hi}");
    }
    // The order rotates: the first run of each repetition is a different point.
    let first_of = |k: usize| r["runs"][k * 3]["config"]["mode"].as_str().unwrap().to_string();
    let firsts: std::collections::BTreeSet<String> = (0..3).map(first_of).collect();
    assert_eq!(firsts.len(), 3, "rotated: {firsts:?}");

    let table = coord(&["sweep", "--procs", "2", "--len", "1e5", "--runs", "2", "--repeat", "2", "-q"]);
    table.expect_code(0);
    assert!(table.stdout.contains("each point run 2 times") && table.stdout.contains("(min–max)"), "{}", table.stdout);

    let zero = coord(&["sweep", "--procs", "2", "--len", "1e5", "--repeat", "0", "-q"]);
    zero.expect_code(2);
    assert!(zero.stderr.contains("--repeat"), "{}", zero.stderr);
}

#[test]
fn the_sweep_table_answers_procs_versus_threads() {
    let out = coord(&["sweep", "--procs", "2", "--len", "1e5", "--runs", "3", "-q"]);
    out.expect_code(0);
    for needle in ["best GB/s", "speed-up", "efficiency", "start-up", "processes ÷ threads"] {
        assert!(out.stdout.contains(needle), "{needle} in\n{}", out.stdout);
    }
    assert!(!out.stdout.contains('\x1b'), "no colour when piped");
    assert!(!out.stderr.contains("ETA"), "no progress bar when stderr is not a terminal");
}

#[test]
fn a_workers_plot_has_one_line_per_mode() {
    let dir = TempDir::new("plot");
    let svg = dir.join("scaling.svg");
    let out =
        coord(&["sweep", "--procs", "1,2,4", "--len", "1e5", "--runs", "2", "--plot", svg.to_str().unwrap(), "-q"]);
    out.expect_code(0);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"));
    let texts = svg_texts(&text);
    for label in ["procs", "threads", "serial", "workers (log scale)", "1", "2", "4"] {
        assert!(texts.iter().any(|t| t == label), "{label} in {texts:?}");
    }
    assert!(texts.iter().any(|t| t.contains("CPUs allowed")));
    // One polyline per series (and the dashed serial line).
    assert!(text.matches("<polyline").count() >= 3, "three series drawn");
}

#[test]
fn a_length_plot_marks_the_caches_and_renders_as_png_too() {
    let dir = TempDir::new("plot");
    let svg = dir.join("lengths.svg");
    let out = coord(&[
        "sweep",
        "--procs",
        "2",
        "--modes",
        "procs,serial",
        "--len",
        "1e3,1e4,1e5",
        "--runs",
        "2",
        "--plot",
        svg.to_str().unwrap(),
        "-q",
    ]);
    out.expect_code(0);
    let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
    for label in ["procs × 2", "serial", "elements per array (log scale)"] {
        assert!(texts.iter().any(|t| t.starts_with(label)), "{label} in {texts:?}");
    }
    let host_has_l2 = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache/index2/size").exists();
    if host_has_l2 {
        assert!(
            texts.iter().any(|t| t.starts_with("L2 ") && t.ends_with("per core")),
            "the L2 size is marked: {texts:?}"
        );
    }

    let png = dir.join("lengths.png");
    coord(&[
        "sweep",
        "--procs",
        "2",
        "--modes",
        "procs,serial",
        "--len",
        "1e3,1e4",
        "--runs",
        "2",
        "--plot",
        png.to_str().unwrap(),
        "-q",
    ])
    .expect_code(0);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).unwrap();
    assert_eq!((frame.width, frame.height), (1280, 800));
    let pixels = &buf[..frame.buffer_size()];
    let step = frame.line_size / frame.width as usize;
    let has = |(r, g, b): (u8, u8, u8)| pixels.chunks(step).any(|p| p[0] == r && p[1] == g && p[2] == b);
    assert!(has(FIRST_SERIES) && has(SECOND_SERIES), "both series are drawn");

    let bad = coord(&["sweep", "--procs", "1", "--len", "1e3", "--runs", "1", "--plot", &dir.str("x.gif"), "-q"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("--plot") && bad.stderr.contains(".svg or .png"), "{}", bad.stderr);
}

fn csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(str::to_string).collect();
    (header, lines.map(|l| l.split(',').map(str::to_string).collect()).collect())
}

#[test]
fn every_export_parses_back_for_runs_and_sweeps() {
    // A single run.
    let out = coord(&["--procs", "2", "--len", "1e4", "--export-csv", "-", "-q"]);
    out.expect_code(0);
    let (header, rows) = csv(&out.stdout);
    assert_eq!(header.join(","), RUN_CSV);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][header.iter().position(|h| h == "validated").unwrap()], "true");
    let md = coord(&["--procs", "2", "--len", "1e4", "--export-markdown", "-", "-q"]);
    assert!(md.stdout.starts_with("| mode |") && md.stdout.lines().count() == 3, "{}", md.stdout);

    // A sweep, all three at once into files.
    let dir = TempDir::new("exports");
    let (j, c, m) = (dir.join("s.json"), dir.join("s.csv"), dir.join("s.md"));
    coord(&[
        "sweep",
        "--procs",
        "1,2",
        "--modes",
        "procs,serial",
        "--len",
        "1e4",
        "--runs",
        "2",
        "--export-json",
        j.to_str().unwrap(),
        "--export-csv",
        c.to_str().unwrap(),
        "--export-markdown",
        m.to_str().unwrap(),
        "-q",
    ])
    .expect_code(0);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
    let (header, rows) = csv(&std::fs::read_to_string(&c).unwrap());
    assert_eq!(header.join(","), SWEEP_CSV);
    assert_eq!(rows.len(), json["points"].as_array().unwrap().len());
    let gbps = header.iter().position(|h| h == "median_gbps").unwrap();
    for (row, point) in rows.iter().zip(json["points"].as_array().unwrap()) {
        let csv_v: f64 = row[gbps].parse().unwrap();
        assert!((csv_v - point["median_gbps"].as_f64().unwrap()).abs() < 1e-5);
    }
    let md = std::fs::read_to_string(&m).unwrap();
    assert_eq!(md.lines().count(), 2 + rows.len());
    assert!(md.lines().nth(1).unwrap().starts_with("|---"));
}

#[test]
fn the_isolation_experiment_shows_what_processes_buy() {
    let out = coord(&["isolation", "--len", "1e5", "--timeout", "2", "--export-json", "-", "-q"]);
    out.expect_code(0);
    let r = out.json();
    assert_eq!(r["kind"], "isolation");
    let row = |mode: &str, fault: &str| -> Value {
        r["rows"].as_array().unwrap().iter().find(|x| x["mode"] == mode && x["fault"] == fault).unwrap().clone()
    };
    for fault in ["panic", "abort", "segv", "hang", "oob-write"] {
        let p = row("procs", fault);
        assert_eq!(p["survived"], true, "procs {fault}");
        assert_eq!(p["recovered"], true, "procs {fault}: retry gives a validated run");
        assert!(p["fail_run"]["detected_after_s"].as_f64().is_some(), "procs {fault} detected");
        assert_eq!(p["fail_run"]["exit_code"], 4);
    }
    assert!(row("procs", "oob-write")["detected"].as_str().unwrap().contains("blocked by the MMU"));
    let t = |f: &str| row("threads", f);
    assert_eq!(
        (t("panic")["survived"].clone(), t("panic")["recovered"].clone()),
        (Value::Bool(true), Value::Bool(true))
    );
    for (fault, signal) in [("abort", "SIGABRT"), ("segv", "SIGSEGV")] {
        assert_eq!(t(fault)["survived"], false, "threads {fault} takes the process");
        assert_eq!(t(fault)["fail_run"]["signal"], signal);
        assert!(t(fault)["fail_run"]["last_words"].as_str().unwrap().contains("--mode procs"));
    }
    assert_eq!(t("hang")["survived"], true);
    assert_eq!(t("hang")["recovered"], false, "a hung thread cannot be replaced");
    assert_eq!(t("oob-write")["correct"], false, "the stray write corrupts the neighbour's data");
    assert_eq!(t("oob-write")["fail_run"]["exit_code"], 3);
    let lost = t("oob-write")["lost"].as_str().unwrap().to_string();
    assert!(!lost.contains("silent") && lost.contains("only validation found it (exit 3)"), "{lost}");
    let summary: Vec<&str> = r["summary"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(summary[0].starts_with("Processes: all 5 of the faults tested"), "{summary:?}");
    assert!(summary[1].starts_with("Threads: 3 of 5 faults"), "{summary:?}");
    assert!(summary[1].contains("the hang was declared") && summary[1].contains("oob-write went unnoticed"));
    let lesson = summary.last().unwrap();
    for clause in ["a crash ends every thread", "a stray write", "a hung thread can be neither killed nor replaced"] {
        assert!(lesson.contains(clause), "{lesson}");
    }

    // The table and the other formats.
    let table = coord(&["isolation", "--faults", "segv", "--len", "1e5", "-q"]);
    table.expect_code(0);
    assert!(table.stdout.contains("What it shows") && table.stdout.contains("died of SIGSEGV"), "{}", table.stdout);
    let c = coord(&["isolation", "--faults", "panic", "--len", "1e5", "--export-csv", "-", "-q"]);
    let (header, rows) = csv(&c.stdout);
    assert_eq!(header.join(","), ISOLATION_CSV);
    assert_eq!(rows.len(), 2);
    let m = coord(&["isolation", "--faults", "panic", "--len", "1e5", "--export-markdown", "-", "-q"]);
    assert!(m.stdout.starts_with("| mode | fault |"), "{}", m.stdout);
}

#[test]
fn the_isolation_summary_says_only_what_its_rows_show() {
    // Neither a hang nor a stray write ran: no sentence may speak of them.
    let out = coord(&["isolation", "--faults", "exit,stack-overflow", "--len", "1e5", "--export-json", "-", "-q"]);
    out.expect_code(0);
    let r = out.json();
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let summary: Vec<&str> = r["summary"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let all = summary.join(" ");
    for absent in ["hang", "--timeout", "stray write", "hung", "(none)", "0 of"] {
        assert!(!all.contains(absent), "{absent:?} in {summary:?}");
    }
    assert!(summary[0].starts_with("Processes: all 2 of the faults tested (exit and stack-overflow)"), "{summary:?}");
    assert!(summary[1].starts_with("Threads: none of the faults tested left the run standing"), "{summary:?}");
    assert!(summary[1].contains("--on-fault retry recovered none of them"), "{summary:?}");
    // Each crash's detection time is the one in its row.
    let procs: Vec<f64> = rows
        .iter()
        .filter(|x| x["mode"] == "procs")
        .map(|x| x["fail_run"]["detected_after_s"].as_f64().expect("a time from the death"))
        .collect();
    assert_eq!(procs.len(), 2);
    assert!(summary[0].contains("were detected") && summary[0].contains("after the worker died"), "{summary:?}");
    assert_eq!(summary.last().unwrap(), &summary[2], "the lesson");
    assert!(summary[2].contains("a crash ends every thread") && !summary[2].contains("stray"), "{summary:?}");
    // The terminal says what "result none" means when a row has none.
    let table = coord(&["isolation", "--faults", "exit", "--len", "1e5", "-q"]);
    table.expect_code(0);
    assert!(table.stdout.contains("result none: the run stopped or died before validation"), "{}", table.stdout);
}

#[test]
fn completions_are_generated_for_each_shell() {
    for (shell, marker) in
        [("bash", "complete -F"), ("zsh", "#compdef vecpar-coord"), ("fish", "complete -c vecpar-coord")]
    {
        let out = coord(&["completions", shell]);
        out.expect_code(0);
        assert!(out.stdout.contains(marker), "{shell}: {}", &out.stdout[..200.min(out.stdout.len())]);
        for word in ["sweep", "isolation", "procs", "inject-fault", "huge-pages"] {
            assert!(out.stdout.contains(word), "{shell} completes {word}");
        }
    }
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    // `vecpar-coord ... | head -1`: the reader goes away; no panic, exit 0.
    for args in [&["completions", "bash"][..], &["--procs", "2", "--len", "1e4", "-q"][..]] {
        let mut child = std::process::Command::new(coord_bin())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // close the read end at once
        let pid = child.id();
        let since = std::time::SystemTime::now();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert_no_leftovers(pid, since);
    }
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let args = ["--procs", "2", "--len", "1e4", "-q"];
    assert!(!coord(&args).stdout.contains('\x1b'), "auto: no colour in a pipe");
    assert!(coord(&[&args[..], &["--color", "always"]].concat()).stdout.contains('\x1b'));
    assert!(!coord(&[&args[..], &["--color", "never"]].concat()).stdout.contains('\x1b'));
    // NO_COLOR turns colour off in auto mode; an explicit flag still wins.
    let mut cmd = std::process::Command::new(coord_bin());
    cmd.args([&args[..], &["--color", "always"]].concat()).env("NO_COLOR", "1");
    assert!(run_cmd(cmd, std::time::Duration::from_secs(60)).stdout.contains('\x1b'));
}

#[test]
fn misleading_measurements_are_warned_about() {
    let out = coord(&["--procs", "8", "--len", "1e5", "--runs", "3"]);
    out.expect_code(0);
    assert!(out.stderr.contains("fit in the") && out.stderr.contains("cache"), "{}", out.stderr);
    let cpus = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| (0..nix::sched::CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).count());
    if let Ok(cpus @ ..=7) = cpus {
        assert!(out.stderr.contains(&format!("8 workers on {cpus} CPUs allowed")), "{}", out.stderr);
    }
    // STREAM's rule: arrays beyond the cache but under 4 × it are partly
    // cached, and said to be.
    let topo: serde_json::Value = serde_json::from_str(&coord(&["topology", "--export-json", "-"]).stdout).unwrap();
    let llc = topo["host"]["caches"].as_array().unwrap().iter().filter_map(|c| c["bytes"].as_u64()).max();
    if let Some(llc) = llc {
        let len = (llc / 8).to_string(); // one array = the cache, all three = 3 × it
        let r = coord_json(&["--procs", "1", "--len", &len, "--runs", "2"], 0);
        let kinds: Vec<&str> = r["warnings"].as_array().unwrap().iter().filter_map(|w| w["kind"].as_str()).collect();
        assert!(kinds.contains(&"partly-cached") && !kinds.contains(&"fits-in-cache"), "{kinds:?}");
    }
    let tiny = coord(&["--procs", "1", "--len", "100", "--runs", "3"]);
    assert!(tiny.stderr.contains("too short to time well"), "{}", tiny.stderr);
}

#[test]
fn the_isolation_experiment_refuses_child_runs_that_failed_for_another_reason() {
    // A vecpar-coord with no vecpar-worker beside it: every procs child
    // fails to start its workers — not because of the injected fault.
    let dir = TempDir::new("lonely");
    let lonely = dir.join("vecpar-coord");
    std::fs::copy(coord_bin(), &lonely).unwrap();
    let mut cmd = std::process::Command::new(&lonely);
    cmd.args(["isolation", "--faults", "panic", "--len", "1e4"]).env_remove("VECPAR_WORKER");
    let out = run_cmd(cmd, LIMIT);
    out.expect_code(1);
    assert!(out.stdout.is_empty(), "no table of false lessons: {}", out.stdout);
    let lines = out.error_lines();
    assert!(
        lines.iter().any(|l| l.contains("did not fail because of the fault") && l.contains("vecpar-worker")),
        "says why, with the child's own error: {}",
        out.stderr
    );
    // A length the children refuse: the same.
    let out = coord(&["isolation", "--faults", "panic", "--len", "1e14"]);
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn isolation_offers_only_the_modes_it_compares() {
    let out = coord(&["isolation", "--modes", "serial"]);
    out.expect_code(2);
    assert!(out.stderr.contains("--modes"), "{}", out.stderr);
    let help = coord(&["isolation", "--help"]).stdout;
    let modes = help.split("--modes").nth(1).unwrap_or_default();
    let listed = &modes[..modes.find("--procs").unwrap_or(modes.len())];
    assert!(!listed.contains("serial"), "{listed}");
}

#[test]
fn a_failed_export_keeps_the_previous_file_whole() {
    if !is_root() || !can_unshare_mounts() {
        return skip("atomic exports", "needs root and unshare -m for a small private file system");
    }
    // A 64 KiB file system holding last week's export: this sweep's JSON
    // does not fit, and the old file must come through intact.
    let script = r#"
        set -e; d=$(mktemp -d); mount -t tmpfs -o size=64k tmpfs "$d"
        printf '{"old": true}' > "$d/s.json"
        set +e; "$VECPAR" sweep --procs 1,2 --len 1e4 --runs 200 --export-json "$d/s.json" -q >/dev/null; echo "exit $?"
        cat "$d/s.json"; echo; ls -a "$d" | wc -l
        umount "$d"; rmdir "$d"
    "#;
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "sh", "-c", script]).env("VECPAR", coord_bin());
    let out = run_cmd(cmd, LIMIT);
    out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"exit 1"), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(lines.get(1), Some(&r#"{"old": true}"#), "the previous export is untouched");
    assert_eq!(lines.get(2), Some(&"3"), "no temporary left beside it (., .., s.json)");
    assert!(out.stderr.contains("--export-json") || out.stderr.contains("s.json"), "{}", out.stderr);
    assert!(out.stderr.contains("ENOSPC") || out.stderr.contains("No space"), "{}", out.stderr);
}

#[test]
fn an_interrupted_sweep_keeps_its_finished_points() {
    let dir = TempDir::new("partial");
    let json = dir.join("partial.json");
    let md = dir.join("partial.md");
    let csv = dir.join("partial.csv");
    // Two points of several seconds each: procs × 1, then procs × 2.
    let mut run = Background::start(&[
        "sweep",
        "--modes",
        "procs",
        "--procs",
        "1,2",
        "--len",
        "1e6",
        "--runs",
        "5000",
        "--export-json",
        json.to_str().unwrap(),
        "--export-markdown",
        md.to_str().unwrap(),
        "--export-csv",
        csv.to_str().unwrap(),
        "-q",
    ]);
    // The second point has started once two workers run at once.
    run.wait_for_workers(2);
    run.signal(nix::sys::signal::Signal::SIGINT);
    let out = run.finish(LIMIT);
    out.expect_code(130);
    assert!(out.stderr.contains("interrupted by SIGINT"), "{}", out.stderr);
    assert!(
        out.stdout.contains("| procs |") || out.stdout.contains("procs"),
        "the finished points' table: {}",
        out.stdout
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["partial"], true);
    let points = r["points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "the finished point, not the interrupted one: {points:?}");
    assert_eq!(points[0]["procs"], 1);
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("| procs | 1 |"), "{md}");
    assert!(md.contains("**Partial:**"), "the Markdown says it is partial too: {md}");
    // Every CSV row says so, in its own column.
    let csv = std::fs::read_to_string(&csv).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "partial").expect("a partial column");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{csv}");
    assert_eq!(rows[0].split(',').nth(col), Some("true"), "{csv}");
}

#[test]
fn a_sweep_combines_every_grid_flag_and_merges_repeats() {
    let out = coord(&[
        "sweep",
        "--modes",
        "procs",
        "--procs",
        "2,2",
        "--len",
        "1e4",
        "--dtype",
        "f64,f32",
        "--op",
        "add,dot",
        "--runs",
        "2",
        "--export-json",
        "-",
    ]);
    out.expect_code(0);
    let r = out.json();
    let mut shape: Vec<(String, String)> = r["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["op"].as_str().unwrap().to_string(), p["dtype"].as_str().unwrap().to_string()))
        .collect();
    shape.sort();
    let want: Vec<(String, String)> = [("add", "f32"), ("add", "f64"), ("dot", "f32"), ("dot", "f64")]
        .iter()
        .map(|(o, d)| (o.to_string(), d.to_string()))
        .collect();
    assert_eq!(shape, want, "every op × dtype, --procs 2 once");
    assert!(out.stderr.contains("note: --procs names 2 more than once"), "{}", out.stderr);
}
