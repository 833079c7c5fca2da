//! vecpar runs vector operations (the STREAM kernels, starting with the seed
//! chapter's `c = a + b`) across **worker processes over OS shared memory**,
//! and the same kernels on threads and on one thread, so processes and
//! threads can be compared side by side: speed, start-up cost, and what a
//! crashing worker does to the rest.
//!
//! # How a run goes
//!
//! 1. [`config`] turns the command line ([`cli`]) into a [`config::RunConfig`]:
//!    worker count from the CPUs this process may use ([`cpus`]), SIMD level
//!    and store kind checked against the CPU ([`kernel`]), memory checked
//!    against what the machine has ([`sysinfo`]).
//! 2. [`shm`] creates the segment: header, control block, and `a`, `b`, `c`.
//! 3. [`mode`] starts a team — worker processes ([`worker`], over [`ipc`]),
//!    threads, or this thread — on the chunks from [`partition`], then runs
//!    `Init`, the rounds and `Validate` through the doorbell in the control
//!    block, recovering lost workers as [`fault`] policy allows.
//! 4. [`report`] shows the result and exports it.
//!
//! `unsafe` lives in [`shm`] (mappings, futexes, the fault recorder) and
//! [`kernel`] (SIMD intrinsics) only; every other module forbids it.
#![warn(missing_docs)]

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cpus;
pub mod error;
pub mod fault;
pub mod ipc;
pub mod isolation;
pub mod kernel;
pub mod mode;
pub mod partition;
pub mod plot;
pub mod report;
pub mod shm;
pub mod signals;
pub mod stats;
pub mod sweep;
pub mod sysinfo;
pub mod worker;

/// The version of this build; the coordinator and its workers must agree.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The message of a panic, with its location.
pub fn panic_message(info: &std::panic::PanicHookInfo<'_>) -> String {
    let message = payload_message(info.payload());
    match info.location() {
        Some(l) => format!("{message} (at {}:{})", l.file(), l.line()),
        None => message,
    }
}

/// The message carried by a panic payload.
pub fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".into()
    }
}
