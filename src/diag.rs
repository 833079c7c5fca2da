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

/// Writes `program: kind: message` as one line; `kind` may be empty. A
/// control character in the message (a newline in a value the user gave,
/// say) is escaped, so a diagnostic is always one line.
pub(crate) fn line(kind: &str, message: impl Display) {
    let message = escape_controls(&message.to_string());
    let text = if kind.is_empty() {
        format!("{}: {message}\n", program())
    } else {
        format!("{}: {kind}: {message}\n", program())
    };
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `text` with every control character but tab escaped (`\n`, `\u{1b}`).
pub(crate) fn escape_controls(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return text.to_string();
    }
    text.chars()
        .map(|c| if c.is_control() && c != '\t' { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

/// A path as a message shows it: lossy where it is not UTF-8, control
/// characters escaped.
pub(crate) fn shown(path: &std::path::Path) -> String {
    escape_controls(&path.to_string_lossy())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diagnostic_is_one_line_whatever_it_quotes() {
        assert_eq!(escape_controls("a\nb\r\u{1b}[31mc\td"), "a\\nb\\r\\u{1b}[31mc\td");
        assert_eq!(escape_controls("plain"), "plain");
        assert_eq!(shown(std::path::Path::new("x\ny.json")), "x\\ny.json");
    }
}
