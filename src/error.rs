//! Errors and exit codes.
//!
//! | code | meaning                                                   |
//! |------|-----------------------------------------------------------|
//! | 0    | the run validated                                         |
//! | 1    | runtime error (a system call failed, a binary is missing) |
//! | 2    | usage error (a flag's value cannot work)                  |
//! | 3    | validation failed: some element of a, b or c is wrong     |
//! | 4    | a worker was lost (crash, exit, hang) and not recovered   |
//! | 130  | interrupted by SIGINT (143: SIGTERM)                      |
//!
//! Every error is one line naming what to change.
#![forbid(unsafe_code)]

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

/// A failure that stops vecpar before it has a result to report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag's value cannot work here; the message names the flag.
    #[error("{0}")]
    Usage(String),
    /// Something failed at run time.
    #[error("{0}")]
    Runtime(String),
}

impl Error {
    /// The exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            Error::Runtime(_) => EXIT_RUNTIME,
        }
    }

    /// A runtime error from any displayable cause.
    pub fn runtime(context: impl std::fmt::Display, cause: impl std::fmt::Display) -> Error {
        Error::Runtime(format!("{context}: {cause}"))
    }
}

impl From<crate::shm::ShmError> for Error {
    fn from(e: crate::shm::ShmError) -> Error {
        Error::Runtime(format!("shared memory: {e}"))
    }
}
