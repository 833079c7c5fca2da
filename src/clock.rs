//! Timestamps that compare across processes.
//!
//! `CLOCK_MONOTONIC` is one clock for the whole machine, so a worker's start
//! and end can be set against the coordinator's ring time even though they
//! were read in different processes.
#![forbid(unsafe_code)]

use nix::time::{ClockId, clock_gettime};

/// Nanoseconds on CLOCK_MONOTONIC.
pub fn now_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(0, |t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
}

/// Seconds between two timestamps from [`now_ns`].
pub fn seconds(from_ns: u64, to_ns: u64) -> f64 {
    to_ns.saturating_sub(from_ns) as f64 * 1e-9
}
