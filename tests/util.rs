//! Running the real binaries and checking that they leave nothing behind.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The coordinator binary built for this test run.
pub fn coord_bin() -> &'static str {
    env!("CARGO_BIN_EXE_vecpar-coord")
}

/// The worker binary built for this test run.
pub fn worker_bin() -> &'static str {
    env!("CARGO_BIN_EXE_vecpar-worker")
}

/// How a process ended and what it printed.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub pid: u32,
}

impl Outcome {
    /// The stdout as JSON (the run must have used `--export-json -`).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }

    /// Asserts the exit code, showing the output otherwise.
    pub fn expect_code(&self, code: i32) -> &Self {
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

    /// The stderr lines that are not warnings.
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| !l.contains(": warning: ")).collect()
    }
}

/// Runs a command to completion (killing it after `limit`), then checks it
/// left no worker process and no segment behind.
pub fn run_cmd(mut cmd: Command, limit: Duration) -> Outcome {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
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
    assert_no_leftovers(pid);
    outcome
}

/// Runs `vecpar-coord` with `args`.
pub fn coord(args: &[&str]) -> Outcome {
    let mut cmd = Command::new(coord_bin());
    cmd.args(args);
    run_cmd(cmd, Duration::from_secs(120))
}

/// Runs `vecpar-coord` with `args` and `--export-json -`, expecting `code`.
pub fn coord_json(args: &[&str], code: i32) -> Value {
    let mut all = args.to_vec();
    all.extend(["--export-json", "-", "--quiet"]);
    let out = coord(&all);
    out.expect_code(code);
    out.json()
}

/// Entries of /dev/shm that belong to the coordinator `pid`.
pub fn segments_of(pid: u32) -> Vec<String> {
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
pub fn workers_of(pid: u32) -> Vec<u32> {
    let needle = format!("--coordinator\0{pid}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|p| {
            let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            let alive = std::fs::read_to_string(format!("/proc/{p}/stat"))
                .map(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
                .unwrap_or(false);
            alive && cmdline.contains("vecpar-worker") && cmdline.contains(&needle)
        })
        .collect()
}

/// Asserts the coordinator `pid` left no segment and no worker behind
/// (allowing a second for workers to notice their coordinator died).
pub fn assert_no_leftovers(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let segments = segments_of(pid);
        let workers = workers_of(pid);
        if segments.is_empty() && workers.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("coordinator {pid} left segments {segments:?} and workers {workers:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The workers of a report: (id, pid, start, end).
pub fn worker_ranges(report: &Value) -> Vec<(u64, u64, u64, u64)> {
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
pub fn assert_partition(report: &Value) {
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

/// A coordinator running in the background; its output is read as it comes
/// (a full pipe would block it).
pub struct Background {
    pub child: std::process::Child,
    readers: Option<(std::thread::JoinHandle<String>, std::thread::JoinHandle<String>)>,
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    })
}

impl Background {
    /// Starts `vecpar-coord` with `args`, output captured.
    pub fn start(args: &[&str]) -> Background {
        let mut child = Command::new(coord_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vecpar-coord");
        let readers = Some((drain(child.stdout.take().unwrap()), drain(child.stderr.take().unwrap())));
        Background { child, readers }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `n` workers of this coordinator are running.
    pub fn wait_for_workers(&mut self, n: usize) -> Vec<u32> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let workers = workers_of(self.pid());
            if workers.len() >= n {
                return workers;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("coordinator exited early: {status:?}");
            }
            assert!(Instant::now() < deadline, "{n} workers did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends `signal` to the coordinator.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), signal).unwrap();
    }

    /// Waits for the coordinator to end (killing it after `limit`), then
    /// checks that it left nothing behind.
    pub fn finish(mut self, limit: Duration) -> Outcome {
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
        assert_no_leftovers(pid);
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
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
}

/// Whether the tests run as root (some need it to restrict the machine).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Prints why a test skips and returns (a skip is visible, never silent).
pub fn skip(test: &str, why: &str) {
    eprintln!("SKIP {test}: {why}");
}
