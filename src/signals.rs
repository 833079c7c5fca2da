//! SIGINT and SIGTERM: clean up, then exit 130 or 143 as a shell expects.
//!
//! [`install`] blocks both signals in the calling thread before any other
//! thread exists (threads inherit the mask; spawned workers do not, std
//! resets it), and one thread waits for them with `sigwait`. On a signal it
//! removes any named segment still in /dev/shm and exits; the workers die
//! with the coordinator through `PR_SET_PDEATHSIG`, and the kernel frees a
//! memfd segment with its last descriptor.
#![forbid(unsafe_code)]

use std::sync::Mutex;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

static NAMES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Blocks SIGINT and SIGTERM here and handles them on a dedicated thread.
/// Call first thing in `main`, before any thread is started.
pub fn install() -> std::io::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(std::io::Error::from)?;
    std::thread::Builder::new().name("vecpar-signals".into()).spawn(move || {
        let signal = set.wait().unwrap_or(Signal::SIGTERM);
        let names = std::mem::take(&mut *NAMES.lock().unwrap_or_else(|e| e.into_inner()));
        for name in &names {
            let _ = nix::sys::mman::shm_unlink(name.as_str());
        }
        eprintln!("vecpar-coord: interrupted by {}; workers stopped, shared memory released", signal.as_str());
        std::process::exit(128 + signal as i32);
    })?;
    Ok(())
}

/// A named segment to remove if the coordinator is interrupted while the
/// name still exists; forgotten on drop.
#[derive(Debug)]
pub struct SegmentName(String);

impl SegmentName {
    /// Tracks `name` until the guard is dropped.
    pub fn track(name: String) -> SegmentName {
        NAMES.lock().unwrap_or_else(|e| e.into_inner()).push(name.clone());
        SegmentName(name)
    }
}

impl Drop for SegmentName {
    fn drop(&mut self) {
        NAMES.lock().unwrap_or_else(|e| e.into_inner()).retain(|n| *n != self.0);
    }
}
