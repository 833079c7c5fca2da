//! Start-up failures that are the machine's limits, not a worker's fault:
//! each becomes one runtime error naming the limit.

use super::team::Lost;
use crate::config::RunConfig;
use crate::error::Error;
use crate::fault::Cause;
use crate::protocol::InitError;

/// A worker could not reserve or map its chunk: the machine cannot hold the
/// run after all (the preflight normally catches this; reserving before
/// touching is what turns it into an error instead of a SIGBUS).
pub(super) fn init_failure(cfg: &RunConfig, id: usize, e: InitError) -> Error {
    let errno = |n: i32| nix::errno::Errno::from_raw(n);
    match e {
        InitError::Reserve { errno: n } => match cfg.shm() {
            crate::vocab::Backend::Posix => Error::runtime(format!(
                "worker {id} could not reserve its chunk in /dev/shm ({}): --shm posix is limited by the size of \
                 /dev/shm; use the default --shm memfd, or enlarge /dev/shm",
                errno(n)
            )),
            crate::vocab::Backend::Memfd => Error::runtime(format!(
                "worker {id} could not reserve its chunk of shared memory ({}); lower --len",
                errno(n)
            )),
        },
        InitError::Map { errno: n } => Error::runtime(format!("worker {id} could not map its chunk ({})", errno(n))),
    }
}

/// Workers that could not map their chunks under `ulimit -v`: the machine's
/// limit, not a fault of theirs.
pub(super) fn refuse_address_space_limit(lost: &[Lost]) -> Result<(), Error> {
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};
    let Ok((limit, _)) = getrlimit(Resource::RLIMIT_AS) else { return Ok(()) };
    if limit == RLIM_INFINITY {
        return Ok(());
    }
    let mapping = |c: &Cause| matches!(c, Cause::CannotMap { errno, .. } if *errno == libc::ENOMEM);
    match lost.iter().find(|l| mapping(&l.cause)) {
        Some(l) => Err(Error::runtime(format!(
            "worker {} could not map its chunk under the address-space limit (ulimit -v {} kB): {}; lower --len or \
             raise ulimit -v",
            l.id,
            limit / 1024,
            l.cause
        ))),
        None => Ok(()),
    }
}
