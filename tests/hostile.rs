//! Hostile and broken input to the worker: run by hand, a parent that is
//! not its coordinator, a standard output that is not its channel, a
//! standard input that is not a segment, garbage where messages should be.
//! Each ends with one clear line (or one `failed` message to the
//! coordinator) and writes nothing.

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, recv, socketpair};
use serde_json::Value;

use crate::util::*;

fn worker(args: &[&str]) -> Outcome {
    let mut cmd = Command::new(worker_bin());
    cmd.args(args);
    run_cmd(cmd, LIMIT)
}

#[test]
fn the_worker_run_by_hand_refuses_with_a_short_message() {
    for args in [
        &[][..],
        &["--garbage"],
        &["--id", "x", "--coordinator", "1"],
        &["--id", "0"],
        &["--id", "0", "--coordinator", "1"],
    ] {
        let out = worker(args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.starts_with("vecpar-worker: error: "), "{}", out.stderr);
        assert!(out.stderr.lines().count() <= 6, "{args:?}: a short block: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert!(out.stdout.is_empty());
    }
    let out = worker(&["--id", "0", "--coordinator", "1"]);
    assert!(out.stderr.contains("started by vecpar-coord, not by hand"), "{}", out.stderr);
}

#[test]
fn a_standard_output_that_is_not_a_channel_is_refused() {
    // This test is the worker's parent, so the parent check passes; its
    // stdout is a pipe, not a channel from vecpar-coord.
    let me = std::process::id().to_string();
    let out = worker(&["--id", "0", "--coordinator", &me]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("not a channel from vecpar-coord"), "{}", out.stderr);
}

/// Starts a worker as its coordinator would, with `stdin` as its segment;
/// returns it and our end of its channel.
fn fake_coordinator(stdin: Stdio) -> (std::process::Child, OwnedFd) {
    let (ours, theirs) =
        socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).expect("socketpair");
    let me = std::process::id().to_string();
    let child = Command::new(worker_bin())
        .args(["--id", "0", "--coordinator", &me])
        .stdin(stdin)
        .stdout(Stdio::from(theirs))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vecpar-worker");
    (child, ours)
}

/// The next message on `fd`, as JSON.
fn next_message(fd: &OwnedFd) -> Value {
    let mut fds = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(fd), nix::poll::PollFlags::POLLIN)];
    let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::try_from(LIMIT.as_millis() as i32).unwrap()).unwrap();
    assert!(ready > 0, "no message from the worker");
    let mut buf = vec![0u8; 65536];
    let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap();
    serde_json::from_slice(&buf[..n]).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", &buf[..n]))
}

/// Waits for the worker; returns its exit code and stderr.
fn ended(mut child: std::process::Child) -> (Option<i32>, String) {
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < LIMIT, "the worker did not exit");
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr)
}

#[test]
fn a_standard_input_that_is_not_a_segment_is_refused_and_left_untouched() {
    let dir = TempDir::new("hostile");
    let mut header = b"VECPAR\0\x01".to_vec();
    header.extend(99u32.to_le_bytes());
    header.resize(8192, 0);
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("magic", vec![0xAB; 8192], "not a vecpar segment: bad magic number"),
        ("version", header, "format version 99 is not supported"),
        ("short", b"VECPAR".to_vec(), "shorter than a header"),
    ];
    for (name, bytes, why) in cases {
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        let (child, ours) = fake_coordinator(Stdio::from(std::fs::File::open(&path).unwrap()));
        let m = next_message(&ours);
        assert_eq!(m["type"], "failed", "{name}: {m}");
        assert!(m["message"].as_str().unwrap().contains(why), "{name}: {m}");
        let (code, stderr) = ended(child);
        assert_eq!(code, Some(1), "{name}");
        assert!(stderr.is_empty(), "the coordinator reports it, the worker prints nothing: {stderr}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name}: nothing was written");
    }
    // A device is not a memory file.
    let (child, ours) = fake_coordinator(Stdio::null());
    let m = next_message(&ours);
    assert!(m["message"].as_str().unwrap().contains("not a memory file"), "{m}");
    assert_eq!(ended(child).0, Some(1));
}

#[test]
fn the_worker_leaves_when_its_channel_closes() {
    // Its coordinator goes away before it assigns anything: the worker
    // reads end-of-file and exits quietly, never waiting for ever.
    let dir = TempDir::new("hostile-close");
    let file = dir.join("seg");
    std::fs::write(&file, vec![0u8; 10]).unwrap();
    let (child, ours) = fake_coordinator(Stdio::from(std::fs::File::open(&file).unwrap()));
    drop(ours);
    let (code, _) = ended(child);
    assert!(matches!(code, Some(0 | 1)), "{code:?}");
}

/// The coordinator's descriptor of its segment: (fd number, target).
fn segment_fd(pid: u32) -> Option<(String, String)> {
    std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten().find_map(|e| {
        let target = std::fs::read_link(e.path()).ok()?.to_string_lossy().into_owned();
        (target.contains("memfd:vecpar") || target.starts_with("/dev/shm/"))
            .then(|| (e.file_name().to_string_lossy().into_owned(), target))
    })
}

#[test]
fn truncating_a_live_segment_is_refused_or_reported_never_a_silent_sigbus() {
    use nix::sys::signal::Signal;
    for shm in ["memfd", "posix"] {
        let mut run = Background::start(&["--shm", shm, "--procs", "2", "--len", "1e6", "--runs", "1000000", "-q"]);
        run.wait_for_workers(2);
        let (fd, target) = segment_fd(run.pid()).expect("the coordinator holds its segment");
        // The same user, through /proc: what anyone with the uid can do.
        let path = format!("/proc/{}/fd/{fd}", run.pid());
        let truncated = std::fs::OpenOptions::new().write(true).open(&path).and_then(|f| f.set_len(0));
        if shm == "memfd" {
            // Sealed: the kernel refuses, and the run goes on.
            let e = truncated.expect_err("a sealed memfd cannot shrink");
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{target}: {e}");
            run.signal(Signal::SIGINT);
            assert_eq!(run.finish(LIMIT).code, Some(130));
        } else {
            // A POSIX object cannot be sealed: the next touch of a lost page
            // is a SIGBUS, which the coordinator reports in one line.
            truncated.expect("a posix object can be truncated");
            let out = run.finish(LIMIT);
            assert_ne!(out.code, Some(0), "{}", out.stderr);
            assert!(out.signal.is_none(), "no death by signal: {out:?}");
            assert!(out.stderr.contains("SIGBUS") || out.stderr.contains("worker lost"), "{}", out.stderr);
            assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        }
    }
}
