//! Time: timestamps that compare across processes, and patience that only
//! counts while the coordinator is actually watching.
//!
//! `CLOCK_MONOTONIC` is one clock for the whole machine, so a worker's start
//! and end can be set against the coordinator's ring time even though they
//! were read in different processes.
//!
//! A timeout must not fire because the *coordinator* did not run: suspended
//! with Ctrl-Z, stopped by a debugger, or starved on a busy machine, it
//! comes back to find that seconds have passed, though its workers may have
//! been fine all along. [`Patience`] counts time in the small slices in which
//! the coordinator waits; a slice that took far longer than asked counts
//! only as [`Patience::SLICE_CAP`].
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use nix::time::{ClockId, clock_gettime};

/// Nanoseconds on CLOCK_MONOTONIC.
pub(crate) fn now_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(0, |t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
}

/// Seconds between two timestamps from [`now_ns`] (0 when `to` is earlier).
pub(crate) fn seconds(from_ns: u64, to_ns: u64) -> f64 {
    to_ns.saturating_sub(from_ns) as f64 * 1e-9
}

/// A time budget that counts only the time the coordinator spent waiting.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Patience {
    limit: Duration,
    counted: Duration,
    last: Instant,
}

impl Patience {
    /// The most one slice between two [`tick`](Self::tick)s counts for.
    /// Waiters tick at least every [`crate::run`] poll interval (tens of
    /// milliseconds); a longer gap means the coordinator itself was not
    /// running.
    pub(crate) const SLICE_CAP: Duration = Duration::from_millis(250);

    /// A budget of `limit`, starting now.
    pub(crate) fn new(limit: Duration) -> Patience {
        Patience { limit, counted: Duration::ZERO, last: Instant::now() }
    }

    /// Counts the time since the last tick; `true` once the budget is spent.
    pub(crate) fn tick(&mut self) -> bool {
        let now = Instant::now();
        self.counted += now.duration_since(self.last).min(Self::SLICE_CAP);
        self.last = now;
        self.spent()
    }

    /// Whether the budget is spent (as of the last tick).
    pub(crate) fn spent(&self) -> bool {
        self.counted >= self.limit
    }

    /// Starts over: the watched party showed progress.
    pub(crate) fn renew(&mut self) {
        self.counted = Duration::ZERO;
        self.last = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_gap_counts_only_as_one_slice() {
        let mut p = Patience::new(Duration::from_millis(400));
        std::thread::sleep(Duration::from_millis(600)); // as if stopped with SIGSTOP
        assert!(!p.tick(), "one stalled slice counts as SLICE_CAP only");
        std::thread::sleep(Duration::from_millis(200));
        assert!(p.tick());
        p.renew();
        assert!(!p.spent());
    }

    #[test]
    fn timestamps_order() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
        assert_eq!(seconds(b, a), 0.0);
        assert_eq!(seconds(0, 1_500_000_000), 1.5);
    }
}
