//! Diagnostics on stderr that never panic.
//!
//! `eprintln!` panics when stderr is gone (a closed pipe, a supervisor whose
//! log died), and a panic in the signal thread would swallow SIGINT for good.
//! Every line vecpar writes to stderr goes through [`line`] instead: one
//! `write(2)` of the whole line, errors ignored. A lost stderr changes no
//! exit code.
#![forbid(unsafe_code)]

use std::fmt::Display;
use std::io::Write;
use std::sync::OnceLock;

static PROGRAM: OnceLock<&'static str> = OnceLock::new();

/// Names the program in every line (`vecpar-coord`, `vecpar-worker`).
pub(crate) fn set_program(name: &'static str) {
    let _ = PROGRAM.set(name);
}

/// The program name set with [`set_program`].
pub(crate) fn program() -> &'static str {
    PROGRAM.get().copied().unwrap_or("vecpar")
}

/// Writes `program: kind: message` as one line; `kind` may be empty.
pub(crate) fn line(kind: &str, message: impl Display) {
    let text = if kind.is_empty() {
        format!("{}: {message}\n", program())
    } else {
        format!("{}: {kind}: {message}\n", program())
    };
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `program: error: message`.
pub(crate) fn error(message: impl Display) {
    line("error", message);
}

/// Writes `text` to stderr as it is (clap's rendered help and errors).
pub(crate) fn raw(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// The message of a panic, with its location.
pub(crate) fn panic_message(info: &std::panic::PanicHookInfo<'_>) -> String {
    let message = payload_message(info.payload());
    match info.location() {
        Some(l) => format!("{message} (at {}:{})", l.file(), l.line()),
        None => message,
    }
}

/// The message carried by a panic payload.
pub(crate) fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".into()
    }
}
