//! Where the memory lands, on emulated NUMA machines: a QEMU guest (TCG)
//! with 2 or 4 nodes boots around the freshly built binaries
//! (`tests/helpers/numa`), runs vecpar under each memory policy, pin plan
//! and mode, and reads `/proc/PID/numa_maps` of the live run independently
//! (`placement`); the test compares that with vecpar's own placement
//! report, and `vecpar-coord topology` with `numactl -H`.
//!
//! Bandwidth in the guest means nothing (every node is the same host
//! memory, under emulation): only placement is tested — and two things the
//! guest has of its own: a huge page pool no other test's run meets, and a
//! CPU without AVX-512 (which this host may have). On the host (one
//! node), the topology parser is unit-tested on sysfs trees the tests
//! write (`src/machine/numa.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::docs::{Sample, check_sample, readme, samples};
use crate::util::*;

/// The guest's kernel and initramfs, built once per test binary, or why
/// they cannot be.
fn guest() -> Result<&'static PathBuf, String> {
    static GUEST: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    GUEST
        .get_or_init(|| {
            if !is_root() {
                return Err("needs root (the kernel cache lives in /var/cache)".into());
            }
            for tool in ["qemu-system-x86_64", "busybox", "numactl", "cpio"] {
                let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output();
                if !found.is_ok_and(|o| o.status.success()) {
                    return Err(format!(
                        "{tool} is not installed (apt-get install qemu-system-x86 busybox-static numactl cpio; .ci/run does)"
                    ));
                }
            }
            // Under target/, not $TMPDIR: it outlives each test.
            let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("numa-guest");
            let _ = std::fs::remove_dir_all(&out);
            std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
            let mut cmd = Command::new("timeout");
            cmd.args(["-k", "5", "600"])
                .arg(helper("prepare.sh"))
                .arg("/var/cache/vecpar-numa-test")
                .arg(&out)
                .arg(coord_bin())
                .arg(worker_bin())
                // Open MPI too, for the MPI build's tests (mod mpi).
                .env("GUEST_MPI", if cfg!(feature = "mpi") { "1" } else { "0" });
            let built = run_cmd(cmd, LIMIT);
            if built.code != Some(0) {
                return Err(format!("prepare.sh failed:\n{}", built.stderr));
            }
            Ok(out)
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn helper(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/numa").join(name)
}

/// Runs `script` in a guest of `nodes` nodes (one vCPU and `mem_mb` each);
/// its output, or `None` (said) when the machine cannot run guests.
fn in_guest(test: &str, nodes: usize, mem_mb: usize, script: &str) -> Option<String> {
    let out = match guest() {
        Ok(out) => out,
        Err(why) => {
            skip(test, &why);
            return None;
        }
    };
    let dir = TempDir::new("guest-script");
    let file = dir.join("script.sh");
    std::fs::write(&file, format!("{GUEST_FUNCTIONS}\n{script}\n")).unwrap();
    let mut cmd = Command::new(helper("run-in-guest.sh"));
    cmd.arg(out).arg(nodes.to_string()).arg("1").arg(mem_mb.to_string()).arg(&file).env("GUEST_TIMEOUT", "900");
    let done = run_cmd(cmd, LIMIT * 4);
    assert_eq!(done.code, Some(0), "the guest script failed:\n{}\n{}", done.stdout, done.stderr);
    Some(done.stdout)
}

/// Shell functions for the guest: `run NAME COMM COUNT PAGES ARGS…` runs
/// vecpar with ARGS (`--len $LEN`, 2e5 unless set; a stall keeps it alive
/// about 2 s), catches the numa_maps of COUNT processes named COMM once
/// each has PAGES pages of the segment present (its whole chunk: filled,
/// not half-way), and prints its exit code and its JSON, each framed by
/// markers (`section NAME COMMAND…` frames any command's output and exit
/// code). `mrun` does the same for `mpirun -n 2 vecpar-coord ARGS…`,
/// the stall in rank 0's own process.
const GUEST_FUNCTIONS: &str = r#"
run() {
    name=$1; comm=$2; count=$3; pages=$4; shift 4
    "$@" --len ${LEN:-2e5} --runs 10 --inject-fault ${STALL:-0}:stall=2000@3 -q --export-json /tmp/$name.json \
        > /tmp/$name.err 2>&1 &
    vp=$!
    echo "@@maps $name"
    placement --wait "$comm" -n "$count" -k "$pages" -t 300 -w $vp
    wait $vp
    echo "@@rc $name $?"
    cat /tmp/$name.err
    echo "@@json $name"
    cat /tmp/$name.json
    echo "@@end $name"
}
section() { name=$1; shift; echo "@@$name"; "$@" 2>&1; echo "rc=$?"; echo "@@$name-end"; }
mpi_env() {
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_plm_rsh_agent=/bin/false HOME=/root
    hostname guest; ip link set lo up
}
mrun() {
    name=$1; comm=$2; count=$3; pages=$4; shift 4
    mpi_env
    STALL=rank:0 run "$name" "$comm" "$count" "$pages" mpirun -n 2 vecpar-coord "$@"
}
"#;

/// The README's samples from the emulated NUMA machine that `program`
/// runs (`vecpar-coord` or `mpirun`), and the guest script lines that run
/// each, its output framed by markers.
fn readme_samples(program: &str) -> (Vec<Sample>, String) {
    let samples: Vec<Sample> = samples(&readme(), true).into_iter().filter(|s| s.program == program).collect();
    assert!(!samples.is_empty(), "the README shows {program} on the emulated NUMA machine");
    let script = samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!("echo '@@sample-{i}'; {} {} 2>&1; echo '@@sample-{i}-end'\n", s.program, s.args.join(" "))
        })
        .collect();
    (samples, script)
}

/// Checks what the guest printed for each README sample against the
/// README's lines.
fn check_readme_samples(samples: &[Sample], output: &str) {
    for (i, sample) in samples.iter().enumerate() {
        check_sample(sample, section(output, &format!("sample-{i}")));
    }
}

/// What the guest printed between the lines `@@NAME` and `@@NAME-end`.
fn section<'o>(output: &'o str, name: &str) -> &'o str {
    output
        .split(&format!("@@{name}\n"))
        .nth(1)
        .and_then(|o| o.split(&format!("@@{name}-end")).next())
        .unwrap_or_else(|| panic!("no @@{name} section in:\n{output}"))
}

/// The JSON that the guest's `section NAME COMMAND…` printed, which must
/// have exited 0.
fn section_json(output: &str, name: &str) -> Value {
    let text = section(output, name);
    assert!(text.trim_end().ends_with("rc=0"), "{name}: {text}");
    let body = text.trim_end().trim_end_matches("rc=0");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {text}"))
}

/// One run's results from the guest's output.
struct Run {
    rc: i32,
    json: Value,
    /// numa_maps lines: (pid, key=value map).
    maps: Vec<(u64, BTreeMap<String, String>)>,
}

fn runs(output: &str) -> BTreeMap<String, Run> {
    let mut out = BTreeMap::new();
    let mut lines = output.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("@@maps ") else { continue };
        let mut maps = Vec::new();
        let mut rc = -1;
        for l in lines.by_ref() {
            if let Some(r) = l.strip_prefix(&format!("@@rc {name} ")) {
                rc = r.trim().parse().unwrap();
                break;
            }
            if l.starts_with("numa-map ") {
                let kv: BTreeMap<String, String> = l
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|t| t.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                    .collect();
                maps.push((kv["pid"].parse().unwrap(), kv));
            }
        }
        for l in lines.by_ref() {
            if l == format!("@@json {name}") {
                break;
            }
        }
        let mut json = String::new();
        for l in lines.by_ref() {
            if l == format!("@@end {name}") {
                break;
            }
            json.push_str(l);
            json.push('\n');
        }
        let json: Value =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{name}: not JSON ({e}):\n{json}\n{output}"));
        out.insert(name.to_string(), Run { rc, json, maps });
    }
    out
}

/// Pages per node over one placement record (a worker's, or a rank's
/// part of the window), its three arrays together.
fn pages_by_node(placed: &Value) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for array in placed["arrays"].as_array().unwrap_or_else(|| panic!("a placement: {placed}")) {
        for pair in array["nodes"].as_array().unwrap() {
            *out.entry(pair[0].as_u64().unwrap()).or_default() += pair[1].as_u64().unwrap();
        }
    }
    out
}

/// Pages per node of several histograms together.
fn sum(hs: impl IntoIterator<Item = BTreeMap<u64, u64>>) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for h in hs {
        for (n, c) in h {
            *out.entry(n).or_default() += c;
        }
    }
    out
}

/// Pages per node over a worker's placement after the last round.
fn histogram(run: &Run, worker: usize) -> BTreeMap<u64, u64> {
    pages_by_node(&run.json["numa"]["after_run"][worker])
}

/// Pages per node in `pid`'s mappings of the arrays (not the header and
/// control block at file offsets below 0x2000... whose mapping is the one
/// at offset 0x1000 or 0), from numa_maps.
fn maps_histogram(run: &Run, pid: u64, nodes: usize) -> BTreeMap<u64, u64> {
    sum(run
        .maps
        .iter()
        .filter(|(p, kv)| {
            *p == pid && kv["offset"] != "0x1000" && kv["offset"] != "0x0" && kv["file"].contains("vecpar")
        })
        .map(|(_, kv)| map_pages(kv, nodes)))
}

/// Pages per node (those it has any on) of one numa_maps line, of a
/// machine with `nodes` nodes.
fn map_pages(kv: &BTreeMap<String, String>, nodes: usize) -> BTreeMap<u64, u64> {
    (0..nodes as u64)
        .map(|n| (n, kv.get(&format!("N{n}")).map_or(0, |v| v.parse().unwrap())))
        .filter(|&(_, count)| count > 0)
        .collect()
}

/// Asserts two histograms agree within `slack` pages per node (the pages a
/// chunk shares with its neighbour at its ends).
fn agree(what: &str, vecpar: &BTreeMap<u64, u64>, maps: &BTreeMap<u64, u64>, slack: u64) {
    let nodes: std::collections::BTreeSet<u64> = vecpar.keys().chain(maps.keys()).copied().collect();
    for n in nodes {
        let (v, m) = (vecpar.get(&n).copied().unwrap_or(0), maps.get(&n).copied().unwrap_or(0));
        assert!(v.abs_diff(m) <= slack, "{what}: node {n}: vecpar says {v} pages, numa_maps {m}\n{vecpar:?}\n{maps:?}");
    }
}

fn worker_pids(run: &Run) -> Vec<u64> {
    run.json["workers"].as_array().unwrap().iter().map(|w| w["pid"].as_u64().unwrap()).collect()
}

/// The kinds of a run's warnings, another MPI rank's (`of-rank`) by the
/// kind of the warning it carries.
fn warning_kinds(run: &Run) -> Vec<String> {
    let kind = |w: &Value| {
        let inner = if w["kind"] == "of-rank" { &w["warning"] } else { w };
        inner["kind"].as_str().unwrap().to_string()
    };
    run.json["warnings"].as_array().unwrap().iter().map(kind).collect()
}

#[test]
fn two_nodes_every_policy_placed_and_checked_against_numa_maps() {
    let (readme, shown) = readme_samples("vecpar-coord");
    let script = shown
        + r#"
echo "@@numactl"; numactl -H; echo "@@numactl-end"
echo "@@topology"; vecpar-coord topology --export-json -; echo "@@topology-end"
run local vecpar-worker 2 580 vecpar-coord --procs 2
run unpinned vecpar-worker 2 580 vecpar-coord --procs 2 --pin none
run interleave vecpar-worker 2 580 vecpar-coord --procs 2 --mem-policy interleave
run node1 vecpar-worker 2 580 vecpar-coord --procs 2 --mem-policy node:1
run inherit vecpar-worker 2 580 numactl --interleave=all vecpar-coord --procs 2
run threads vecpar-coord 1 1170 vecpar-coord --mode threads --procs 2
run remote vecpar-worker 1 580 vecpar-coord --pin M0:1 --mem-policy node:1
echo "@@sweep"
vecpar-coord sweep --modes procs --procs 1 --numa-nodes 1,2 --len 1e5 --runs 3 -q --export-json -
echo "@@sweep-end"
"#;
    let Some(output) = in_guest("two_nodes_every_policy_placed_and_checked_against_numa_maps", 2, 512, &script) else {
        return;
    };
    // The README's NUMA section shows what this machine prints.
    check_readme_samples(&readme, &output);
    // topology against numactl -H.
    let numactl = section(&output, "numactl");
    let topo: Value = serde_json::from_str(section(&output, "topology")).unwrap();
    assert!(numactl.contains("available: 2 nodes (0-1)"), "{numactl}");
    let nodes = topo["numa"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    for (i, node) in nodes.iter().enumerate() {
        let cpus: Vec<String> = node["cpus"].as_array().unwrap().iter().map(|c| c.to_string()).collect();
        assert!(numactl.contains(&format!("node {i} cpus: {}", cpus.join(" "))), "node {i}: {numactl}\n{node}");
        let distances: Vec<String> = node["distances"].as_array().unwrap().iter().map(|d| d.to_string()).collect();
        assert!(
            numactl.lines().any(|l| l.trim_start().starts_with(&format!("{i}:"))
                && l.split_whitespace().skip(1).collect::<Vec<_>>() == distances),
            "distances of node {i}: {numactl}\n{node}"
        );
    }

    let runs = runs(&output);
    for (name, run) in &runs {
        assert_eq!(run.rc, 0, "{name}: {}", run.json);
        assert_eq!(run.json["validated"], true, "{name}");
        assert!(!run.json["numa"].is_null(), "{name}: a NUMA machine gets a placement report");
    }
    // local: worker i pinned to CPU i, all its pages on node i, as
    // numa_maps says too.
    for name in ["local", "unpinned"] {
        let run = &runs[name];
        let pids = worker_pids(run);
        for (w, pid) in pids.iter().enumerate() {
            let placed = &run.json["numa"]["after_run"][w];
            let node = placed["intended"].as_u64().unwrap_or_else(|| panic!("{name}: worker {w} has a node"));
            if name == "local" {
                assert_eq!(node, w as u64, "compact pins on one CPU per node");
            }
            assert_eq!(placed["on_intended"], 1.0, "{name}: worker {w}: {placed}");
            // numa_maps walks the worker's page tables while the run is
            // live; for an unpinned worker it once saw 6 pages fewer than
            // vecpar's survey of the chunk (588 against 582; why is not yet
            // known, see the issue notes). 2 % of a chunk; pinned, 2 pages.
            let slack = if name == "unpinned" { 12 } else { 2 };
            agree(&format!("{name} worker {w}"), &histogram(run, w), &maps_histogram(run, *pid, 2), slack);
        }
        assert!(run.json["numa"]["control_node"].is_u64());
    }
    // interleave: every worker's pages on both nodes, about half each.
    let run = &runs["interleave"];
    for (w, pid) in worker_pids(run).iter().enumerate() {
        let h = histogram(run, w);
        let total: u64 = h.values().sum();
        assert!(h.values().all(|&c| c * 3 >= total) && h.len() == 2, "interleave worker {w}: {h:?}");
        agree(&format!("interleave worker {w}"), &h, &maps_histogram(run, *pid, 2), 2);
    }
    // node:1: everything on node 1.
    let run = &runs["node1"];
    for (w, pid) in worker_pids(run).iter().enumerate() {
        let h = histogram(run, w);
        assert_eq!(h.keys().copied().collect::<Vec<_>>(), vec![1], "node:1 worker {w}: {h:?}");
        agree(&format!("node:1 worker {w}"), &h, &maps_histogram(run, *pid, 2), 2);
    }
    assert_eq!(runs["node1"].json["numa"]["control_node"], 1, "the control block goes with node:N");
    // Started under numactl: inherited, said, and interleaved as numactl asked.
    let run = &runs["inherit"];
    assert_eq!(run.json["config"]["memory"]["policy"], "inherit");
    assert!(warning_kinds(run).contains(&"inherited-mem-policy".to_string()), "{:?}", warning_kinds(run));
    for w in 0..2 {
        assert_eq!(histogram(run, w).len(), 2, "numactl --interleave=all: both nodes");
    }
    // Threads: one mapping of all three arrays in the coordinator; its
    // numa_maps counts are the workers' pages together.
    let run = &runs["threads"];
    let vecpar = sum((0..2).map(|w| histogram(run, w)));
    for w in 0..2 {
        assert_eq!(run.json["numa"]["after_run"][w]["on_intended"], 1.0, "threads worker {w} on its node");
    }
    let pid = run.json["coordinator_pid"].as_u64().unwrap();
    let maps = sum(run
        .maps
        .iter()
        .filter(|(p, kv)| *p == pid && kv["perm"] == "rw-s" && kv["offset"] != "0x0")
        .map(|(_, kv)| map_pages(kv, 2)));
    agree("threads", &vecpar, &maps, 4);
    // Remote access on purpose: computing on node 0, pages on node 1.
    let run = &runs["remote"];
    assert_eq!(run.json["numa"]["ran_on"][0], serde_json::json!([0]));
    assert_eq!(histogram(run, 0).keys().copied().collect::<Vec<_>>(), vec![1], "node:1 from node 0");
    assert!(!warning_kinds(run).contains(&"ran-off-node".to_string()), "asked for: {:?}", warning_kinds(run));
    // A sweep over memory domains: one worker per node on 1, then 2 nodes.
    let sweep: Value = serde_json::from_str(section(&output, "sweep")).unwrap();
    let points: Vec<(u64, u64)> = sweep["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["numa_nodes"].as_u64().unwrap(), p["procs"].as_u64().unwrap()))
        .collect();
    assert_eq!(points, vec![(1, 1), (2, 2)], "--procs is per node");
    let two = sweep["runs"].as_array().unwrap().iter().find(|r| r["config"]["procs"] == 2).unwrap();
    let intended: Vec<&Value> = two["numa"]["after_run"].as_array().unwrap().iter().map(|w| &w["intended"]).collect();
    assert_eq!(intended, [&serde_json::json!(0), &serde_json::json!(1)], "a worker on each node");
}

#[test]
fn four_nodes_memory_domains_spread_and_a_balancing_kernel() {
    let script = r#"
run domains vecpar-worker 2 580 vecpar-coord --pin M3:1,M1:1
run spread vecpar-worker 4 290 vecpar-coord --procs 4 --pin spread
run interleave vecpar-worker 2 580 vecpar-coord --procs 2 --mem-policy interleave
echo 1 > /proc/sys/kernel/numa_balancing
run balancing vecpar-worker 2 580 vecpar-coord --procs 2
"#;
    let Some(output) = in_guest("four_nodes_memory_domains_spread_and_a_balancing_kernel", 4, 384, script) else {
        return;
    };
    let runs = runs(&output);
    for (name, run) in &runs {
        assert_eq!(run.rc, 0, "{name}: {}", run.json);
    }
    // M3:1,M1:1: worker 0 on node 3, worker 1 on node 1, pages with them.
    let run = &runs["domains"];
    assert_eq!(run.json["config"]["procs"], 2);
    assert_eq!(run.json["config"]["procs_source"]["kind"], "pin");
    for (w, node) in [(0, 3), (1, 1)] {
        assert_eq!(run.json["numa"]["after_run"][w]["intended"], node, "worker {w}");
        assert_eq!(run.json["numa"]["ran_on"][w], serde_json::json!([node]), "worker {w} computed on node {node}");
        assert_eq!(histogram(run, w).keys().copied().collect::<Vec<_>>(), vec![node]);
        let pid = worker_pids(run)[w];
        agree(&format!("domains worker {w}"), &histogram(run, w), &maps_histogram(run, pid, 4), 2);
    }
    // spread: four workers, four nodes.
    let run = &runs["spread"];
    let mut nodes: Vec<u64> = (0..4).map(|w| run.json["numa"]["after_run"][w]["intended"].as_u64().unwrap()).collect();
    nodes.sort_unstable();
    assert_eq!(nodes, vec![0, 1, 2, 3], "a worker per node");
    // interleave over four nodes.
    let run = &runs["interleave"];
    for w in 0..2 {
        assert!(histogram(run, w).len() >= 3, "interleave over 4 nodes: {:?}", histogram(run, w));
    }
    // Automatic NUMA balancing on: said.
    let run = &runs["balancing"];
    assert!(warning_kinds(run).contains(&"numa-balancing".to_string()), "{:?}", warning_kinds(run));
    assert_eq!(run.json["numa"]["balancing"], true);
}

#[test]
fn a_node_that_runs_out_spills_and_the_run_says_so() {
    // Node 1 has 256 MiB; the arrays under node:1 want 288 MB of it.
    let script = r#"
LEN=1.2e7 run spill vecpar-worker 1 70000 vecpar-coord --pin M0:1 --mem-policy node:1
"#;
    let Some(output) = in_guest("a_node_that_runs_out_spills_and_the_run_says_so", 2, 256, script) else {
        return;
    };
    let runs = runs(&output);
    let run = &runs["spill"];
    assert_eq!(run.rc, 0, "a spill is a warning, not a failure: {}", run.json);
    assert_eq!(run.json["validated"], true);
    let placed = &run.json["numa"]["after_run"][0];
    assert_eq!(placed["intended"], 1);
    let share = placed["on_intended"].as_f64().unwrap();
    assert!(share > 0.3 && share < 0.9, "node 1 filled, the rest spilled: {placed}");
    let h = histogram(run, 0);
    assert_eq!(h.keys().copied().collect::<Vec<_>>(), vec![0, 1], "{h:?}");
    agree("spill", &h, &maps_histogram(run, worker_pids(run)[0], 2), 2);
    let warning = run.json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["kind"] == "policy-not-honoured")
        .unwrap_or_else(|| panic!("no policy-not-honoured warning: {:?}", warning_kinds(run)));
    let message = warning["message"].as_str().unwrap();
    assert!(message.contains(&format!("worker 0: {:.0}% on node 1", share * 100.0)), "{message}");
    assert!(message.contains("after the arrays were filled"), "{message}");
}

#[test]
fn huge_pages_back_the_arrays_when_the_pool_has_room() {
    // In the guest: its huge page pool is its own kernel's, so no other
    // test's run meets a pool this test filled (the host's vm.nr_hugepages
    // is shared by every run on it).
    let script = r#"
echo 0 > /proc/sys/vm/nr_hugepages
section no-pool vecpar-coord --huge-pages always --len 1e6 --procs 2 --mode threads
echo 32 > /proc/sys/vm/nr_hugepages
section pool cat /proc/sys/vm/nr_hugepages
for mode in procs threads serial; do
    procs="--procs 2"; [ $mode = serial ] && procs=
    section $mode vecpar-coord --huge-pages always --len 1000003 --op triad --mode $mode $procs --export-json - -q
done
section unbalanced vecpar-coord --len 1e6 --procs 8 --mode threads --export-json - -q
"#;
    let Some(output) = in_guest("huge_pages_back_the_arrays_when_the_pool_has_room", 2, 256, script) else {
        return;
    };
    let json = |name: &str| section_json(&output, name);
    // Without a pool, `always` says how to get one.
    let none = section(&output, "no-pool");
    assert!(none.trim_end().ends_with("rc=1"), "{none}");
    assert!(none.contains("vm.nr_hugepages") && none.contains("--huge-pages never"), "{none}");
    assert_eq!(section(&output, "pool").lines().next(), Some("32"), "the guest's pool was filled");
    for mode in ["procs", "threads", "serial"] {
        let r = json(mode);
        assert_eq!(r["validated"], true, "{mode}");
        assert_eq!(r["config"]["page_bytes"], 2 * 1024 * 1024, "{mode}: {}", r["config"]["pages_reason"]);
        assert_eq!(r["config"]["pages"], "always");
        // Chunks are whole huge pages of c.
        let boundary = r["workers"][0]["end"].as_u64().unwrap();
        assert!(boundary == 1_000_003 || boundary.is_multiple_of(2 * 1024 * 1024 / 8), "{mode}: {boundary}");
        assert_partition(&r);
    }
    // A run whose chunks would be unbalanced keeps base pages under auto,
    // even with a pool.
    let r = json("unbalanced");
    assert_eq!(r["config"]["page_bytes"], 4096, "{}", r["config"]["pages_reason"]);
    assert_eq!(r["config"]["pages"], "auto");
    assert!(r["config"]["pages_reason"].as_str().unwrap().contains("unbalanced"), "{}", r["config"]["pages_reason"]);
}

#[test]
fn a_cpu_without_avx512_runs_every_kernel_at_its_own_levels() {
    // The guest's emulated CPU has AVX2 but not AVX-512: a machine of the
    // project's type that this host may not be. There `auto` picks avx2,
    // every kernel validates in every mode at awkward lengths (the fill
    // and the check take their generic paths, not the AVX-512 builds), and
    // asking for avx512 is one line naming what the CPU has.
    let script = r#"
section topology vecpar-coord topology --export-json -
section refused vecpar-coord --simd avx512 --len 1e3 -q
for mode in procs threads serial; do
    procs="--procs 3"; [ $mode = serial ] && procs=
    for dtype in f64 f32; do
        for len in 7 4097 100003; do
            section $mode-$dtype-$len vecpar-coord --mode $mode $procs --dtype $dtype --op all --len $len --runs 2 \
                --export-json - -q
        done
    done
done
section nontemporal vecpar-coord --procs 2 --stores nontemporal --op all --len 100003 --runs 2 --export-json - -q
"#;
    let Some(output) = in_guest("a_cpu_without_avx512_runs_every_kernel_at_its_own_levels", 2, 256, script) else {
        return;
    };
    let json = |name: &str| section_json(&output, name);
    let levels = json("topology")["simd"].clone();
    assert_eq!(levels, serde_json::json!(["scalar", "sse2", "avx2"]), "the guest's CPU has no AVX-512");
    let refused = section(&output, "refused");
    assert!(refused.trim_end().ends_with("rc=2"), "{refused}");
    assert!(
        refused.contains("--simd avx512: this CPU does not support it (it supports scalar, sse2, avx2)"),
        "{refused}"
    );
    for mode in ["procs", "threads", "serial"] {
        for dtype in ["f64", "f32"] {
            for len in ["7", "4097", "100003"] {
                let name = format!("{mode}-{dtype}-{len}");
                let r = json(&name);
                assert_eq!(r["config"]["simd"], "avx2", "{name}: {}", r["config"]["simd_reason"]);
                assert_eq!(r["validated"], true, "{name}");
                let kernels = r["kernels"].as_array().unwrap();
                assert_eq!(kernels.len(), 7, "{name}: --op all");
                for k in kernels {
                    assert_eq!(k["validation"]["checked"].as_u64(), Some(len.parse().unwrap()), "{name}: {k}");
                    assert_eq!(k["validation"]["mismatch"], Value::Null, "{name}");
                }
                assert_eq!(kernels[4]["dot"]["within_bound"], true, "{name}");
                assert_partition(&r);
            }
        }
    }
    let r = json("nontemporal");
    assert_eq!((r["config"]["simd"].as_str(), r["config"]["stores"].as_str()), (Some("avx2"), Some("nontemporal")));
    assert_eq!(r["validated"], true);
}

/// Under MPI (the `mpi` build, whose guest has Open MPI): `--mode ranks`
/// binds each rank's part of its node's window to the rank's node, and the
/// rank that checks a part asks where its pages are; hybrid ranks report
/// their workers' placement. Both against numa_maps.
#[cfg(feature = "mpi")]
mod mpi {
    use super::*;

    /// Pages per node of rank `r`'s part of the window, as the job reports.
    fn part_histogram(run: &Run, r: usize) -> BTreeMap<u64, u64> {
        pages_by_node(&run.json["mpi"]["per_rank"][r]["numa"]["after_run"][0])
    }

    /// Pages per node in `pid`'s mappings of the window (Open MPI's
    /// `osc_sm` file, less its first page, where the window's start is
    /// aligned), by the memory policy numa_maps gives each mapping.
    fn window_maps(run: &Run, pid: u64) -> BTreeMap<String, BTreeMap<u64, u64>> {
        let mut out: BTreeMap<String, BTreeMap<u64, u64>> = BTreeMap::new();
        for (p, kv) in &run.maps {
            if *p == pid && kv["file"].contains("osc_sm") && kv["offset"] != "0x0" {
                let policy = out.entry(kv["policy"].clone()).or_default();
                *policy = sum([std::mem::take(policy), map_pages(kv, 2)]);
            }
        }
        out
    }

    #[test]
    fn two_nodes_each_ranks_window_part_and_hybrid_ranks_against_numa_maps() {
        let (readme, shown) = readme_samples("mpirun");
        let script = "mpi_env\n".to_string()
            + &shown
            + r#"
mrun local vecpar-coord 2 1170 --mode ranks
mrun unpinned vecpar-coord 2 1170 --mode ranks --pin none
mrun node1 vecpar-coord 2 1170 --mode ranks --mem-policy node:1
mrun interleave vecpar-coord 2 1170 --mode ranks --mem-policy interleave
mrun hybrid vecpar-worker 2 580 --procs 1
"#;
        let test = "two_nodes_each_ranks_window_part_and_hybrid_ranks_against_numa_maps";
        let Some(output) = in_guest(test, 2, 512, &script) else {
            return;
        };
        check_readme_samples(&readme, &output);
        let runs = runs(&output);
        assert_eq!(runs.len(), 5, "{output}");
        for (name, run) in &runs {
            assert_eq!(run.rc, 0, "{name}: {}", run.json);
            assert_eq!(run.json["validated"], true, "{name}");
            assert_eq!(run.json["mpi"]["ranks"], 2, "{name}");
        }
        for name in ["local", "unpinned", "node1", "interleave"] {
            let run = &runs[name];
            for r in 0..2 {
                // Each part asked about by the rank that checks it, the
                // other one.
                let numa = &run.json["mpi"]["per_rank"][r]["numa"];
                assert_eq!(numa["window_part"], serde_json::json!({"rank": r, "surveyed_by": 1 - r}), "{name}");
                if name != "unpinned" {
                    assert_eq!(numa["ran_on"], serde_json::json!([[r]]), "{name}: mpirun binds rank {r} to CPU {r}");
                }
            }
            assert_eq!(run.json["numa"]["window_part"]["rank"], 0, "{name}: the report's own is rank 0's part");
            // The window's pages, all parts together, as each rank's
            // numa_maps sees them.
            let vecpar = sum((0..2).map(|r| part_histogram(run, r)));
            for r in 0..2 {
                let pid = run.json["mpi"]["per_rank"][r]["pid"].as_u64().unwrap();
                let maps = sum(window_maps(run, pid).into_values());
                agree(&format!("{name}: the window in rank {r}"), &vecpar, &maps, 2);
            }
        }
        // local: rank r's part on node r, and numa_maps shows it under the
        // policy vecpar gave it (prefer:r) with as many pages.
        let run = &runs["local"];
        let pid0 = run.json["mpi"]["per_rank"][0]["pid"].as_u64().unwrap();
        let by_policy = window_maps(run, pid0);
        for r in 0..2 {
            let placed = &run.json["mpi"]["per_rank"][r]["numa"]["after_run"][0];
            assert_eq!((placed["intended"].as_u64(), placed["on_intended"].as_f64()), (Some(r as u64), Some(1.0)));
            let h = part_histogram(run, r);
            assert_eq!(h.keys().copied().collect::<Vec<_>>(), vec![r as u64], "rank {r}: {h:?}");
            agree(&format!("rank {r}'s part"), &h, &by_policy[&format!("prefer:{r}")], 2);
        }
        let table = &run.json["warnings"];
        assert!(!warning_kinds(run).iter().any(|k| k.contains("node") || k.contains("policy")), "{table}");
        // Unpinned (mpirun still binds each rank to a core): each part is
        // meant for the node its rank ran on when it bound it, and is there.
        let run = &runs["unpinned"];
        for r in 0..2 {
            let placed = &run.json["mpi"]["per_rank"][r]["numa"]["after_run"][0];
            let node = placed["intended"].as_u64().unwrap_or_else(|| panic!("unpinned rank {r} has a node: {placed}"));
            assert_eq!(placed["on_intended"], 1.0, "unpinned rank {r}");
            assert_eq!(part_histogram(run, r).keys().copied().collect::<Vec<_>>(), vec![node]);
        }
        // node:1: every part on node 1.
        let run = &runs["node1"];
        for r in 0..2 {
            assert_eq!(part_histogram(run, r).keys().copied().collect::<Vec<_>>(), vec![1], "node:1 rank {r}");
            assert_eq!(run.json["mpi"]["per_rank"][r]["numa"]["after_run"][0]["on_intended"], 1.0);
        }
        // interleave: every part over both nodes, no node meant.
        let run = &runs["interleave"];
        for r in 0..2 {
            let h = part_histogram(run, r);
            let total: u64 = h.values().sum();
            assert!(h.len() == 2 && h.values().all(|&c| c * 3 >= total), "interleave rank {r}: {h:?}");
            assert!(run.json["mpi"]["per_rank"][r]["numa"]["after_run"][0]["intended"].is_null());
        }
        // Hybrid: each rank conducts a worker of its own, on the rank's CPU
        // and node, and reports where that worker's pages are.
        let run = &runs["hybrid"];
        for r in 0..2 {
            let rank = &run.json["mpi"]["per_rank"][r];
            assert!(rank["numa"]["window_part"].is_null());
            let placed = &rank["numa"]["after_run"][0];
            assert_eq!((placed["intended"].as_u64(), placed["on_intended"].as_f64()), (Some(r as u64), Some(1.0)));
            let h = pages_by_node(placed);
            let pid = rank["workers"][0]["pid"].as_u64().unwrap();
            agree(&format!("hybrid rank {r}'s worker"), &h, &maps_histogram(run, pid, 2), 2);
        }
    }

    #[test]
    fn a_node_that_runs_out_spills_window_parts_and_the_job_says_so() {
        // Node 1 has 256 MiB; the window under node:1 wants 288 MB of it
        // (and /dev/shm room for it, which Open MPI checks first).
        let script = r#"
mpi_env
mount -o remount,size=90% /dev/shm
mpirun -n 2 vecpar-coord --mode ranks --mem-policy node:1 --len 1.2e7 --runs 3 -q --export-json /tmp/spill.json
echo "@@rc $?"
echo "@@json"; cat /tmp/spill.json; echo "@@json-end"
"#;
        let test = "a_node_that_runs_out_spills_window_parts_and_the_job_says_so";
        let Some(output) = in_guest(test, 2, 256, script) else {
            return;
        };
        assert!(output.contains("@@rc 0"), "a spill is a warning, not a failure:\n{output}");
        let json: Value = serde_json::from_str(section(&output, "json")).unwrap();
        assert_eq!(json["validated"], true);
        // The two ranks fill node 1 at once, and which of them got more of
        // it depends on the moment: the window as a whole spilled.
        let (mut on_1, mut total) = (0u64, 0u64);
        let mut shares = Vec::new();
        for r in 0..2 {
            let placed = &json["mpi"]["per_rank"][r]["numa"]["after_run"][0];
            assert_eq!(placed["intended"], 1, "rank {r}");
            shares.push(placed["on_intended"].as_f64().unwrap());
            let h = pages_by_node(placed);
            total += h.values().sum::<u64>();
            on_1 += h.get(&1).copied().unwrap_or(0);
        }
        assert!(on_1 * 10 < total * 9 && on_1 * 10 > total * 3, "node 1 filled, the rest spilled: {on_1} of {total}");
        // Each rank warns about the part it checks: rank 0 about rank 1's,
        // and rank 1 (through rank 0) about rank 0's; a part that stayed
        // on node 1 is not warned about.
        let messages: Vec<&str> =
            json["warnings"].as_array().unwrap().iter().filter_map(|w| w["message"].as_str()).collect();
        let said = |prefix: &str, part: usize| {
            let text = format!("rank {part}'s part of the window: {:.0}% on node 1", shares[part] * 100.0);
            messages.iter().any(|m| m.starts_with(prefix) && m.contains("pages are not where") && m.contains(&text))
        };
        for (part, by) in [(1, "pages are not where"), (0, "rank 1: pages are not where")] {
            assert_eq!(said(by, part), shares[part] < 0.9, "part {part} at {}: {messages:#?}", shares[part]);
        }
    }
}
