//! Running the real binaries and checking that they leave nothing behind.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// The coordinator binary built for this test run.
pub(crate) fn coord_bin() -> &'static str {
    env!("CARGO_BIN_EXE_vecpar-coord")
}

/// The worker binary built for this test run.
pub(crate) fn worker_bin() -> &'static str {
    env!("CARGO_BIN_EXE_vecpar-worker")
}

/// How long any one run may take before the test calls it hung. Generous:
/// the machine may be busy (CI runs on two shared cores).
pub(crate) const LIMIT: Duration = Duration::from_secs(300);

/// How a process ended and what it printed.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) code: Option<i32>,
    pub(crate) signal: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) pid: u32,
}

impl Outcome {
    /// The stdout as JSON (the run must have used `--export-json -`).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }

    /// Asserts the exit code, showing the output otherwise.
    pub(crate) fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "exit status (signal {:?})\nstdout:\n{}\nstderr:\n{}",
            self.signal,
            self.stdout,
            self.stderr
        );
        self
    }

    /// The stderr lines that are not warnings or notes.
    pub(crate) fn error_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| !l.contains(": warning: ") && !l.contains(": note: ")).collect()
    }
}

/// Runs a command to completion (killing it after `limit`), then checks it
/// left no worker process, no segment and nothing in $TMPDIR behind.
pub(crate) fn run_cmd(mut cmd: Command, limit: Duration) -> Outcome {
    no_core_dumps(&mut cmd);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
    let started = Instant::now();
    let since = SystemTime::now();
    let mut child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let out_thread = drain(child.stdout.take().unwrap());
    let err_thread = drain(child.stderr.take().unwrap());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let status = child.wait().unwrap();
            let stderr = err_thread.join().unwrap();
            panic!("{cmd:?} did not finish within {limit:?} ({status:?}); stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    use std::os::unix::process::ExitStatusExt;
    let outcome = Outcome {
        code: status.code(),
        signal: status.signal(),
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
        pid,
    };
    assert_no_leftovers(pid, since);
    outcome
}

/// Runs `vecpar-coord` with `args`.
pub(crate) fn coord(args: &[&str]) -> Outcome {
    let mut cmd = Command::new(coord_bin());
    cmd.args(args);
    run_cmd(cmd, LIMIT)
}

/// Runs `vecpar-coord` with `args` and `--export-json -`, expecting `code`.
pub(crate) fn coord_json(args: &[&str], code: i32) -> Value {
    let mut all = args.to_vec();
    all.extend(["--export-json", "-", "--quiet"]);
    let out = coord(&all);
    out.expect_code(code);
    out.json()
}

/// Entries of /dev/shm that belong to the coordinator `pid`.
pub(crate) fn segments_of(pid: u32) -> Vec<String> {
    let prefix = format!("vecpar-{pid}-");
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Live `vecpar-worker` processes started by the coordinator `pid`.
pub(crate) fn workers_of(pid: u32) -> Vec<u32> {
    let needle = format!("--coordinator\0{pid}\0");
    processes()
        .into_iter()
        .filter(|(_, cmdline)| cmdline.contains("vecpar-worker") && cmdline.contains(&needle))
        .map(|(p, _)| p)
        .collect()
}

/// The workers of coordinator `pid` that are at work (see [`at_work`]).
pub(crate) fn workers_at_work(pid: u32) -> Vec<u32> {
    workers_of(pid).into_iter().filter(|&w| at_work(w)).collect()
}

/// Whether worker `pid` is past its start-up: it has touched a page of the
/// arrays. A worker maps the segment's control block before it says hello;
/// it maps `a`, `b` and its part of `c` once assigned, and touches none of
/// their pages before its first step (the fill), which the coordinator
/// rings only after the worker said it was ready (a replacement rebuilds
/// its chunk just before it says so: after its hello all the same). A
/// process that already shows the pid of a worker, even its command line,
/// may not have said hello yet: stopped or killed there, it is a worker
/// that could not start. An idle worker (an empty chunk: more workers than
/// elements) touches nothing and is never at work; wait only for workers
/// that have elements.
pub(crate) fn at_work(pid: u32) -> bool {
    let Ok(smaps) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else { return false };
    // (offset, pages resident) of each shared mapping of the segment.
    let mut pieces: Vec<(u64, u64)> = Vec::new();
    let mut in_segment = false;
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let is_header = fields.first().is_some_and(|f| f.contains('-') && !f.ends_with(':'));
        if is_header {
            let shared = fields.get(1).is_some_and(|p| p.ends_with('s'));
            // A worker's only shared mappings are of the segment (a memfd,
            // or a /dev/shm or hugetlbfs file unlinked and so renamed).
            in_segment = shared;
            if in_segment {
                pieces.push((u64::from_str_radix(fields.get(2).unwrap_or(&"0"), 16).unwrap_or(0), 0));
            }
        } else if in_segment && matches!(fields.first(), Some(&("Rss:" | "Shared_Hugetlb:" | "Private_Hugetlb:"))) {
            let kb: u64 = fields.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
            if let Some(last) = pieces.last_mut() {
                last.1 += kb;
            }
        }
    }
    // The control block is the piece of lowest offset; any other with a
    // resident page is an array the worker has touched.
    let control = pieces.iter().map(|p| p.0).min();
    pieces.iter().any(|&(offset, kb)| Some(offset) != control && kb > 0)
}

/// Every live (not zombie) process: (pid, command line with NULs).
pub(crate) fn processes() -> Vec<(u32, String)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|&p| is_alive(p))
        .map(|p| {
            (p, String::from_utf8_lossy(&std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default()).into_owned())
        })
        .collect()
}

/// What a run could leave in `dir` (by default $TMPDIR) since `since`:
/// ipc-style socket directories and export temporaries.
pub(crate) fn temp_leftovers(dir: &Path, since: SystemTime) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let recent = e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t >= since);
                    recent
                        && ((name.starts_with(".tmp") && e.path().join("socket").exists()) || name.contains(".vecpar-"))
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts the coordinator `pid` left no segment, no worker and nothing in
/// $TMPDIR behind (allowing a few seconds for workers to notice their
/// coordinator died, on a busy machine).
pub(crate) fn assert_no_leftovers(pid: u32, since: SystemTime) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let segments = segments_of(pid);
        let workers = workers_of(pid);
        let temps = temp_leftovers(&std::env::temp_dir(), since);
        if segments.is_empty() && workers.is_empty() && temps.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("coordinator {pid} left segments {segments:?}, workers {workers:?} and temporary files {temps:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The workers of a report: (id, pid, start, end).
pub(crate) fn worker_ranges(report: &Value) -> Vec<(u64, u64, u64, u64)> {
    report["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["id"].as_u64().unwrap(),
                w["pid"].as_u64().unwrap(),
                w["start"].as_u64().unwrap(),
                w["end"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Asserts the workers' chunks cover [0, len) in order without overlap.
pub(crate) fn assert_partition(report: &Value) {
    let len = report["config"]["len"].as_u64().unwrap();
    let mut next = 0;
    for (_, _, start, end) in worker_ranges(report) {
        if start == end {
            continue; // idle
        }
        assert_eq!(start, next, "chunks are contiguous: {report}");
        assert!(end > start);
        next = end;
    }
    assert_eq!(next, len, "chunks cover [0, len)");
}

/// Runs die of SIGSEGV or SIGABRT on purpose here (threads mode's faults,
/// signals sent before the handlers): no core file in the checkout.
fn no_core_dumps(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and makes only the
    // async-signal-safe setrlimit system call.
    unsafe {
        cmd.pre_exec(|| {
            let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
            Ok(())
        });
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A coordinator running in the background; its output is read as it comes
/// (a full pipe would block it).
pub(crate) struct Background {
    pub(crate) child: std::process::Child,
    since: SystemTime,
    readers: Option<(std::thread::JoinHandle<String>, std::thread::JoinHandle<String>)>,
}

impl Background {
    /// Starts `vecpar-coord` with `args`, output captured.
    pub(crate) fn start(args: &[&str]) -> Background {
        let mut cmd = Command::new(coord_bin());
        cmd.args(args);
        Background::spawn(cmd)
    }

    /// Starts `cmd`, output captured.
    pub(crate) fn spawn(mut cmd: Command) -> Background {
        no_core_dumps(&mut cmd);
        let since = SystemTime::now();
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        let readers = Some((drain(child.stdout.take().unwrap()), drain(child.stderr.take().unwrap())));
        Background { child, since, readers }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `n` workers of this coordinator are at work (see
    /// [`at_work`]): from then on, a signal to one of them is a fault of a
    /// running worker, never one that could not start.
    pub(crate) fn wait_for_workers(&mut self, n: usize) -> Vec<u32> {
        let deadline = Instant::now() + LIMIT;
        loop {
            let workers = workers_at_work(self.pid());
            if workers.len() >= n {
                return workers;
            }
            self.not_ended_early();
            assert!(Instant::now() < deadline, "{n} workers did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Panics, with its stderr, if the coordinator has already exited.
    fn not_ended_early(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let stderr = self.readers.take().map(|(_, err)| err.join().unwrap_or_default()).unwrap_or_default();
            panic!("coordinator exited early: {status:?}; stderr:\n{stderr}");
        }
    }

    /// Waits until this coordinator's `n` worker threads (threads mode) run
    /// and the arrays have been touched (see [`at_work`]); their thread ids.
    /// Serial mode has none: with `n` = 0 this waits for its one thread to
    /// be at work. (Counting all threads is no sign: the coordinator has
    /// three before it reads its arguments.)
    pub(crate) fn wait_for_worker_threads(&mut self, n: usize) -> Vec<i32> {
        let deadline = Instant::now() + LIMIT;
        loop {
            let pid = self.pid();
            let workers: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
                .map(|d| {
                    d.flatten()
                        .filter(|t| {
                            std::fs::read_to_string(t.path().join("comm"))
                                .is_ok_and(|c| c.starts_with("vecpar-worker-"))
                        })
                        .filter_map(|t| t.file_name().to_str()?.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            if workers.len() >= n && at_work(pid) {
                return workers;
            }
            self.not_ended_early();
            assert!(Instant::now() < deadline, "{n} worker threads did not start work");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends `signal` to the coordinator.
    pub(crate) fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), signal).unwrap();
    }

    /// Waits for the coordinator to end (killing it after `limit`), then
    /// checks that it left nothing behind.
    pub(crate) fn finish(mut self, limit: Duration) -> Outcome {
        use std::os::unix::process::ExitStatusExt;
        let started = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("coordinator {} did not end within {limit:?}", self.pid());
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let (out, err) = self.readers.take().unwrap();
        let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
        let pid = self.pid();
        assert_no_leftovers(pid, self.since);
        Outcome { code: status.code(), signal: status.signal(), stdout, stderr, pid }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `pid` is a live (not zombie) process.
pub(crate) fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
}

/// Whether the tests run as root (some need it to restrict the machine).
pub(crate) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Says why a test skips, where the test output shows it: straight to the
/// process's stderr, which libtest does not capture (it captures only what
/// the print macros write). Under `VECPAR_REQUIRE_ALL_TESTS=1` (which CI
/// sets) a skip is a failure: what CI cannot run, it must not pass.
pub(crate) fn skip(test: &str, why: &str) {
    if std::env::var_os("VECPAR_REQUIRE_ALL_TESTS").is_some_and(|v| v == "1") {
        panic!("{test} cannot run here ({why}), and VECPAR_REQUIRE_ALL_TESTS=1 demands every test");
    }
    let _ = std::io::stderr().write_all(format!("SKIP {test}: {why}\n").as_bytes());
}

/// Whether `unshare -m` (a private mount namespace) works here.
pub(crate) fn can_unshare_mounts() -> bool {
    matches!(Command::new("unshare").args(["-m", "true"]).status(), Ok(s) if s.success())
}

/// An executable shell script `name` in `dir`: `#!/bin/sh`, then `body`.
pub(crate) fn script(dir: &TempDir, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A fresh directory under $TMPDIR, removed with everything in it on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vecpar-test-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a test directory");
        TempDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub(crate) fn str(&self, name: &str) -> String {
        self.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The text elements of an SVG, trimmed.
pub(crate) fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim().to_string()))
        .collect()
}
