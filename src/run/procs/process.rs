//! One worker process: its pid (also its process group), its channel, and a
//! `Drop` that kills the whole group and reaps it, so that no path — an
//! error, a panic, an interrupt — can forget a child.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;

use crate::protocol::Channel;
use crate::signals::{ChildGuard, ChildKind};

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl Exit {
    fn of(status: WaitStatus) -> Option<Exit> {
        match status {
            WaitStatus::Exited(_, code) => Some(Exit::Code(code)),
            WaitStatus::Signaled(_, sig, _) => Some(Exit::Signal(sig as i32)),
            _ => None,
        }
    }
}

/// A running (or exited, not yet reaped) worker process.
#[derive(Debug)]
pub(crate) struct WorkerProcess {
    pid: Pid,
    /// The coordinator's end of its channel.
    pub(crate) channel: Channel,
    reaped: Option<Option<Exit>>,
    _registered: ChildGuard,
}

impl WorkerProcess {
    /// Takes charge of child `pid`, the leader of its own process group.
    pub(crate) fn new(pid: u32, channel: Channel) -> WorkerProcess {
        WorkerProcess {
            pid: Pid::from_raw(pid as i32),
            channel,
            reaped: None,
            _registered: ChildGuard::register(pid, ChildKind::Worker),
        }
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// How it ended, if it has (without reaping it, so that its pid, and so
    /// its process group, cannot be reused while we still signal it).
    pub(crate) fn exited(&self) -> Option<Exit> {
        if let Some(exit) = self.reaped {
            return exit;
        }
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        waitid(Id::Pid(self.pid), flags).ok().and_then(Exit::of)
    }

    /// Kills its whole process group (it and anything it started) and
    /// reaps it.
    pub(crate) fn kill(&mut self) -> Option<Exit> {
        if let Some(exit) = self.reaped {
            return exit;
        }
        let _ = kill(Pid::from_raw(-self.pid.as_raw()), Signal::SIGKILL);
        let exit = loop {
            match waitpid(self.pid, None) {
                Ok(status) => break Exit::of(status),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break None,
            }
        };
        self.reaped = Some(exit);
        exit
    }

    /// Gives it `grace` to exit on its own (it was told to shut down), then
    /// kills what is left of its group and reaps it.
    pub(crate) fn finish(&mut self, grace: Duration) -> Option<Exit> {
        self.finish_forced(grace).0
    }

    /// [`WorkerProcess::finish`], saying too whether it had to be killed
    /// (then its end is vecpar's doing, not its own).
    pub(crate) fn finish_forced(&mut self, grace: Duration) -> (Option<Exit>, bool) {
        let deadline = Instant::now() + grace;
        while self.reaped.is_none() && self.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
        let forced = self.reaped.is_none() && self.exited().is_none();
        (self.kill(), forced)
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
