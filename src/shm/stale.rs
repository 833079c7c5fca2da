//! Removing named segments that dead runs left in /dev/shm — and nothing
//! else.
//!
//! A `--shm posix` segment has a name only for the microseconds between its
//! creation and its unlinking, but a run SIGKILLed exactly then leaves the
//! name behind, and /dev/shm is shared by every user and every container
//! that mounts it. So the sweep removes an entry only when it can show that
//! a vecpar run of this user made it and that the run is gone:
//!
//! * its name is `vecpar-<pid>-<16 hex digits>`, as [`super::Segment`]
//!   names them;
//! * it is a regular file, looked at without following a symlink
//!   (`fstatat(AT_SYMLINK_NOFOLLOW)`, then `openat(O_NOFOLLOW | O_NONBLOCK)`,
//!   so a FIFO or a device is never opened, let alone read);
//! * it belongs to this user (effective uid);
//! * it starts with a vecpar header of this format version;
//! * nobody holds a lock on it: its creator takes an open-file-description
//!   lock before it writes the header and holds it until the name is gone,
//!   and the kernel drops the lock when the last descriptor closes. Unlike
//!   a pid, a lock means the same in every pid namespace, so a live run in
//!   another container is never mistaken for a dead one;
//! * and, right before `unlinkat`, the name still refers to the same file.
//!
//! Anything else is left alone. A segment is named only after its header
//! is written and its lock taken ([`super::Segment::create`]), so every
//! name a killed run can leave passes these checks. What remains: on a
//! kernel without `O_TMPFILE` on /dev/shm, the name comes from `shm_open`
//! first, and a run killed before its header is written leaves a file
//! without one; that is left alone, for the user to remove.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{FcntlArg, OFlag, fcntl, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::layout::has_header;

/// The prefix of named segments.
pub(crate) const NAME_PREFIX: &str = "vecpar-";

/// The most entries one sweep looks at, so that a directory full of
/// leftovers cannot delay a run noticeably (the rest wait for the next).
const MAX_ENTRIES: usize = 256;

/// What a sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Swept {
    /// Names removed.
    pub(crate) removed: Vec<String>,
    /// Names left alone, and why.
    pub(crate) kept: Vec<(String, &'static str)>,
}

/// Whether `name` is one [`super::Segment`] would give, exactly: the
/// prefix, a pid as `format!` writes it (no sign, no leading zero, at most
/// the largest pid), a dash, and 16 lower-case hex digits.
pub(crate) fn is_segment_name(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(NAME_PREFIX.as_bytes()) else { return false };
    let mut parts = rest.splitn(2, |&b| b == b'-');
    let (Some(pid), Some(random)) = (parts.next(), parts.next()) else { return false };
    let canonical_pid = !pid.is_empty()
        && pid[0] != b'0'
        && pid.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(pid).ok().and_then(|p| p.parse::<i32>().ok()).is_some_and(|p| p > 0);
    canonical_pid && random.len() == 16 && random.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn same_file(a: &FileStat, b: &FileStat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

/// Sweeps `dir` (normally /dev/shm): see the module docs.
pub(crate) fn sweep(dir: &Path) -> Swept {
    let mut out = Swept::default();
    let Ok(dirfd) = nix::fcntl::open(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
    else {
        return out;
    };
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    let uid = nix::unistd::geteuid().as_raw();
    for entry in entries.flatten().take(MAX_ENTRIES * 16) {
        let name = entry.file_name();
        if !is_segment_name(name.as_bytes()) {
            continue;
        }
        if out.removed.len() + out.kept.len() >= MAX_ENTRIES {
            break;
        }
        let shown = name.to_string_lossy().into_owned();
        match judge(&dirfd, &name, uid) {
            Ok(()) => out.removed.push(shown),
            Err(why) => out.kept.push((shown, why)),
        }
    }
    out
}

/// Removes `name` if it is a dead run's segment; else says why not.
fn judge(dirfd: &OwnedFd, name: &OsStr, uid: u32) -> Result<(), &'static str> {
    let before = fstatat(dirfd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|_| "cannot be examined")?;
    if SFlag::from_bits_truncate(before.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err("not a regular file");
    }
    if before.st_uid != uid {
        return Err("belongs to another user");
    }
    let fd = openat(
        dirfd,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        Mode::empty(),
    )
    .map_err(|_| "cannot be opened")?;
    let st = fstat(&fd).map_err(|_| "cannot be examined")?;
    if !same_file(&st, &before) || SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err("changed while it was examined");
    }
    let mut header = [0u8; 12];
    let read = nix::sys::uio::pread(&fd, &mut header, 0).map_err(|_| "cannot be read")?;
    if !has_header(&header[..read]) {
        return Err("carries no vecpar header");
    }
    if locked(fd.as_fd()).ok_or("its lock cannot be checked")? {
        return Err("in use by a live run");
    }
    let now = fstatat(dirfd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|_| "vanished")?;
    if !same_file(&now, &st) {
        return Err("changed while it was examined");
    }
    unlinkat(dirfd, name, UnlinkatFlags::NoRemoveDir).map_err(|_| "cannot be removed")
}

/// Whether anyone holds a lock on the file, of any kind a live process
/// can hold: an open-file-description or a POSIX record lock (one probe
/// sees both), or a BSD `flock()` lock (which Linux keeps apart, so it is
/// probed on its own). `None`: cannot tell.
fn locked(fd: std::os::fd::BorrowedFd<'_>) -> Option<bool> {
    let mut probe = whole_file_lock(libc::F_WRLCK);
    fcntl(fd, FcntlArg::F_OFD_GETLK(&mut probe)).ok()?;
    if probe.l_type != libc::F_UNLCK as i16 {
        return Some(true);
    }
    use std::os::fd::AsRawFd;
    // SAFETY: flock(2) on a descriptor we own for the call; a lock we get
    // is ours, held by our open file description until it is closed (we
    // drop it just after), and keeps a racing run from taking one meanwhile.
    match unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } {
        0 => Some(false),
        _ if std::io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK) => Some(true),
        _ => None,
    }
}

/// A lock description covering the whole file.
pub(super) fn whole_file_lock(kind: libc::c_int) -> libc::flock {
    libc::flock { l_type: kind as i16, l_whence: libc::SEEK_SET as i16, l_start: 0, l_len: 0, l_pid: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    fn header() -> Vec<u8> {
        let mut h = super::super::layout::MAGIC.to_vec();
        h.extend(super::super::layout::FORMAT_VERSION.to_le_bytes());
        h.resize(4096, 0);
        h
    }

    #[test]
    fn names_are_recognised_exactly() {
        assert!(is_segment_name(b"vecpar-123-0123456789abcdef"));
        assert!(is_segment_name(format!("vecpar-{}-0123456789abcdef", i32::MAX).as_bytes()));
        for bad in [
            "vecpar-x-0123456789abcdef",
            "vecpar-123-0123",
            "other-123-0123456789abcdef",
            "vecpar--0123456789abcdef",
            "vecpar-123-0123456789ABCDEF",
            "vecpar-0123-0123456789abcdef",
            "vecpar-0-0123456789abcdef",
            "vecpar-+12-0123456789abcdef",
            "vecpar-99999999999-0123456789abcdef",
            "vecpar-123-0123456789abcdef0",
        ] {
            assert!(!is_segment_name(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn only_a_dead_runs_own_segment_goes() {
        let dir = TempDir::new("stale");
        let path = |n: &str| dir.path().join(n);
        let stale = "vecpar-1-00000000000000aa";
        std::fs::write(path(stale), header()).unwrap();
        let headerless = "vecpar-1-00000000000000bb";
        std::fs::write(path(headerless), b"not a segment").unwrap();
        let fifo = "vecpar-1-00000000000000cc";
        nix::unistd::mkfifo(&path(fifo), Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
        let link = "vecpar-1-00000000000000dd";
        let target = dir.path().join("target");
        std::fs::write(&target, header()).unwrap();
        std::os::unix::fs::symlink(&target, path(link)).unwrap();
        let live = "vecpar-1-00000000000000ee";
        std::fs::write(path(live), header()).unwrap();
        let holder = std::fs::OpenOptions::new().read(true).write(true).open(path(live)).unwrap();
        let lock = whole_file_lock(libc::F_WRLCK);
        fcntl(&holder, FcntlArg::F_OFD_SETLK(&lock)).unwrap();
        // Every kind of lock a live process may hold counts: a POSIX record
        // lock and a BSD flock() too.
        let posix = "vecpar-1-00000000000000f1";
        std::fs::write(path(posix), header()).unwrap();
        let posix_holder = std::fs::OpenOptions::new().read(true).write(true).open(path(posix)).unwrap();
        fcntl(&posix_holder, FcntlArg::F_SETLK(&lock)).unwrap();
        let bsd = "vecpar-1-00000000000000f2";
        std::fs::write(path(bsd), header()).unwrap();
        let bsd_holder = std::fs::File::open(path(bsd)).unwrap();
        // SAFETY: flock(2) on a descriptor this test owns.
        assert_eq!(unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&bsd_holder), libc::LOCK_SH) }, 0);
        let unrelated = "vecpar-notes.txt";
        std::fs::write(path(unrelated), header()).unwrap();

        let swept = sweep(dir.path());
        assert_eq!(swept.removed, [stale]);
        let kept: std::collections::BTreeMap<&str, &str> = swept.kept.iter().map(|(n, w)| (n.as_str(), *w)).collect();
        assert_eq!(kept.get(headerless), Some(&"carries no vecpar header"));
        assert_eq!(kept.get(fifo), Some(&"not a regular file"));
        assert_eq!(kept.get(link), Some(&"not a regular file"));
        assert_eq!(kept.get(live), Some(&"in use by a live run"));
        assert_eq!(kept.get(posix), Some(&"in use by a live run"));
        assert_eq!(kept.get(bsd), Some(&"in use by a live run"));
        for n in [headerless, fifo, link, live, unrelated, posix, bsd] {
            assert!(std::fs::symlink_metadata(path(n)).is_ok(), "{n} is left alone");
        }
        assert!(target.exists(), "a symlink's target is never touched");
        drop((holder, posix_holder, bsd_holder));
        let mut removed = sweep(dir.path()).removed;
        removed.sort();
        assert_eq!(removed, [live, posix, bsd], "once the lock is gone, so is the segment");
    }

    #[test]
    fn another_users_segment_is_left_alone() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP another_users_segment_is_left_alone: needs root to chown a file");
            return;
        }
        let dir = TempDir::new("stale-owner");
        let name = "vecpar-1-00000000000000ff";
        std::fs::write(dir.path().join(name), header()).unwrap();
        std::os::unix::fs::chown(dir.path().join(name), Some(65534), Some(65534)).unwrap();
        let swept = sweep(dir.path());
        assert!(swept.removed.is_empty());
        assert_eq!(swept.kept, [(name.to_string(), "belongs to another user")]);
    }
}
