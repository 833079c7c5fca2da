//! Errors and exit codes.
//!
//! | code  | meaning                                                   |
//! |-------|-----------------------------------------------------------|
//! | 0     | the run validated                                         |
//! | 1     | runtime error (a system call failed, a binary is missing) |
//! | 2     | usage error (a flag's value cannot work)                  |
//! | 3     | validation failed: some element of a, b or c is wrong     |
//! | 4     | a worker was lost (crash, exit, hang) and not recovered   |
//! | 128+N | interrupted by signal N (130 SIGINT, 143 SIGTERM)         |
//!
//! Every error is one line naming what to change; its causes follow as a
//! chain (`source()`), which the binary prints after a colon.
#![forbid(unsafe_code)]

use crate::signals::Interrupted;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: runtime error.
pub const EXIT_RUNTIME: u8 = 1;
/// Exit code: usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: validation failed.
pub const EXIT_VALIDATION: u8 = 3;
/// Exit code: worker fault.
pub const EXIT_FAULT: u8 = 4;

type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What stops vecpar before it has a result to report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag's value cannot work; the message names the flag.
    #[error("{0}")]
    Usage(String),
    /// Something failed at run time.
    #[error("{context}")]
    Runtime {
        /// What failed, naming what to change where something can be.
        context: String,
        /// Why.
        #[source]
        source: Option<Cause>,
    },
    /// A signal ended the run (after its workers were stopped and reaped).
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
}

impl Error {
    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Error {
        Error::Usage(message.into())
    }

    /// A runtime error with no further cause.
    pub fn runtime(context: impl Into<String>) -> Error {
        Error::Runtime { context: context.into(), source: None }
    }

    /// A runtime error caused by `source`.
    pub fn runtime_from(context: impl Into<String>, source: impl Into<Cause>) -> Error {
        Error::Runtime { context: context.into(), source: Some(source.into()) }
    }

    /// The exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            Error::Runtime { .. } => EXIT_RUNTIME,
            Error::Interrupted(i) => i.exit_code(),
        }
    }
}

impl From<crate::shm::ShmError> for Error {
    fn from(e: crate::shm::ShmError) -> Error {
        Error::runtime_from("shared memory", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_chain() {
        let e = Error::runtime_from("cannot write out.json", std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(e.exit_code(), EXIT_RUNTIME);
        let chain = format!("{:#}", anyhow::Error::from(e));
        assert!(chain.starts_with("cannot write out.json: No space left on device"), "{chain}");
        assert_eq!(Error::from(Interrupted(nix::sys::signal::Signal::SIGTERM)).exit_code(), 143);
    }
}
