//! Hostile and broken input: the worker run by hand, bad segments, bad
//! assignments. Each ends with one clear line and writes nothing.

use std::process::Command;
use std::time::Duration;

use crate::util::*;

fn worker(args: &[&str]) -> Outcome {
    let mut cmd = Command::new(worker_bin());
    cmd.args(args);
    run_cmd(cmd, Duration::from_secs(30))
}

#[test]
fn the_worker_run_by_hand_refuses_with_one_line() {
    for args in [
        &[][..],
        &["--garbage"],
        &["--id", "x", "--coordinator", "1", "--server", "s", "--fd", "3"],
        &["--id", "0", "--coordinator", "1", "--server", "s"],
    ] {
        let out = worker(args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: one line: {}", out.stderr);
        assert!(out.stderr.starts_with("vecpar-worker: error: "), "{}", out.stderr);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn the_worker_refuses_a_parent_that_is_not_its_coordinator() {
    let out = worker(&["--id", "0", "--coordinator", "1", "--server", "/tmp/nowhere", "--fd", "3"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("started by vecpar-coord"), "{}", out.stderr);
}

/// A named file in /dev/shm, removed on drop.
struct ShmFile(String);

impl ShmFile {
    fn new(tag: &str, bytes: &[u8]) -> ShmFile {
        let name = format!("vecpar-hostile-{}-{tag}", std::process::id());
        std::fs::write(format!("/dev/shm/{name}"), bytes).unwrap();
        ShmFile(name)
    }
    fn bytes(&self) -> Vec<u8> {
        std::fs::read(format!("/dev/shm/{}", self.0)).unwrap()
    }
}

impl Drop for ShmFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0));
    }
}

/// The worker, with this test process as its coordinator (its real parent).
fn worker_attached(attach: &[&str]) -> Outcome {
    let me = std::process::id().to_string();
    let mut args = vec!["--id", "0", "--coordinator", &me, "--server", "/nonexistent/socket"];
    args.extend(attach);
    worker(&args)
}

#[test]
fn a_wrong_descriptor_is_refused() {
    for (fd, why) in [("99", "fd 99 is not open"), ("0", "standard stream"), ("-4", "not a descriptor")] {
        let out = worker_attached(&["--fd", fd]);
        assert_eq!(out.code, Some(1), "{fd}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1);
        assert!(out.stderr.contains(why), "{fd}: {}", out.stderr);
    }
}

#[test]
fn a_segment_with_a_bad_magic_or_version_is_refused_and_left_untouched() {
    let garbage = ShmFile::new("magic", &[0xAB; 8192]);
    let out = worker_attached(&["--shm-name", &garbage.0]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("not a vecpar segment: bad magic number"), "{}", out.stderr);
    assert_eq!(garbage.bytes(), vec![0xAB; 8192], "nothing was written");

    // The right magic, a future version.
    let mut header = b"VECPAR\0\x01".to_vec();
    header.extend(99u32.to_le_bytes());
    header.resize(8192, 0);
    let future = ShmFile::new("version", &header);
    let out = worker_attached(&["--shm-name", &future.0]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("format version 99 is not supported"), "{}", out.stderr);
    assert_eq!(future.bytes(), header);

    let short = ShmFile::new("short", b"VECPAR");
    let out = worker_attached(&["--shm-name", &short.0]);
    assert!(out.stderr.contains("shorter than a header"), "{}", out.stderr);

    // Only vecpar's own names are opened.
    let out = worker_attached(&["--shm-name", "/etc/passwd"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("not a vecpar segment name"), "{}", out.stderr);
}

#[test]
fn an_assignment_outside_the_array_is_refused_before_anything_is_written() {
    use ipc_channel::ipc::{IpcOneShotServer, IpcReceiver};
    use vecpar::ipc::{Assignment, FromWorker, Sync, ToWorker};
    use vecpar::kernel::{Dtype, Op, Simd, Stores};
    use vecpar::shm::{Backend, ChunkAccess, Segment};

    let len = 10_000usize;
    let segment = Segment::create(Backend::Posix, Dtype::F64, len, 2, vecpar::shm::page_size()).unwrap();
    let good = Assignment {
        id: 0,
        attempt: 0,
        start: 0,
        end: 5120,
        len: len as u64,
        dtype: Dtype::F64,
        op: Op::Add,
        simd: Simd::Scalar,
        stores: Stores::Regular,
        seed: 1,
        pin: None,
        sync: Sync::Doorbell,
        spin_us: 0,
        faults: vec![],
        oob_target: None,
    };
    let bad = [
        (Assignment { end: 20_000, ..good.clone() }, "outside the array"),
        (Assignment { start: 100, ..good.clone() }, "page boundaries"),
        (Assignment { dtype: Dtype::F32, ..good.clone() }, "the segment holds"),
        (Assignment { id: 7, ..good.clone() }, "slots"),
    ];
    for (assignment, why) in bad {
        let (server, server_name) = IpcOneShotServer::<FromWorker>::new().unwrap();
        let me = std::process::id().to_string();
        let shm_name = segment.name().unwrap();
        let mut child = Command::new(worker_bin())
            .args(["--id", "0", "--coordinator", &me, "--server", &server_name, "--shm-name", &shm_name])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(server.accept());
        });
        let (reports, hello): (IpcReceiver<FromWorker>, FromWorker) =
            rx.recv_timeout(Duration::from_secs(10)).expect("hello").unwrap();
        let FromWorker::Hello { reply, pid, .. } = hello else { panic!("expected Hello") };
        assert_eq!(pid, child.id());
        reply.send(ToWorker::Assign(assignment)).unwrap();
        match reports.try_recv_timeout(Duration::from_secs(10)).unwrap() {
            FromWorker::Failed { message } => assert!(message.contains(why), "{why}: {message}"),
            other => panic!("{why}: expected Failed, got {other:?}"),
        }
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(1));
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(stderr.is_empty(), "the coordinator reports it, the worker prints nothing: {stderr}");
    }
    // Nothing was written: all three arrays are still the zeroes of a fresh segment.
    let arrays = segment.share_arrays().unwrap();
    let mut all = arrays.claim(0..len).unwrap();
    let (a, b, c) = all.parts::<f64>();
    assert!(a.iter().chain(b).chain(c.iter()).all(|&x| x == 0.0));
}
