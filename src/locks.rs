//! Locking that survives a panic elsewhere.
//!
//! A worker thread may panic on purpose (`--inject-fault N:panic`); the data
//! behind vecpar's mutexes (a registry of claims, a spawn queue, a panic
//! message) stays consistent across such a panic, so a poisoned lock is
//! simply taken over.
#![forbid(unsafe_code)]

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, taking it over if a panicking thread poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
