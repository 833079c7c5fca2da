//! Exports, in hyperfine's shape: each report kind exposes its summary
//! rows once ([`Exportable`], in [`rows`]); one renderer per format
//! ([`json`], [`csv`], [`markdown`]) renders any of them; and every
//! destination is opened before any work starts ([`Destination`]) and
//! written whole or not at all.
//!
//! To add a format: one file here with a `render` function, one
//! [`Format`] variant, one `--export-*` flag in [`crate::cli`].
#![forbid(unsafe_code)]

pub(crate) mod csv;
pub(crate) mod json;
pub(crate) mod markdown;
mod rows;

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;

use crate::cli::OutputArgs;
use crate::error::Error;

/// An export format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// The whole report.
    Json,
    /// One summary row per run, kernel, point or row.
    Csv,
    /// A summary table.
    Markdown,
}

impl Format {
    /// The flag that asks for it.
    pub(crate) fn flag(self) -> &'static str {
        match self {
            Format::Json => "--export-json",
            Format::Csv => "--export-csv",
            Format::Markdown => "--export-markdown",
        }
    }
}

/// One column of a summary table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Column {
    /// Its CSV header, if the CSV has it.
    pub(crate) csv: Option<&'static str>,
    /// Its Markdown header, if the Markdown table has it.
    pub(crate) markdown: Option<&'static str>,
    /// Right-aligned in Markdown (numbers).
    pub(crate) numeric: bool,
}

/// Shorthand for a column in both formats.
pub(crate) const fn both(csv: &'static str, markdown: &'static str, numeric: bool) -> Column {
    Column { csv: Some(csv), markdown: Some(markdown), numeric }
}

/// Shorthand for a column in the CSV only.
pub(crate) const fn csv_only(csv: &'static str) -> Column {
    Column { csv: Some(csv), markdown: None, numeric: true }
}

/// One cell: the value as the CSV writes it (raw, base units) and as the
/// Markdown table shows it (for people).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cell {
    /// For the CSV.
    pub(crate) raw: String,
    /// For Markdown.
    pub(crate) shown: String,
}

impl Cell {
    /// The same text in both.
    pub(crate) fn text(s: impl Into<String>) -> Cell {
        let s = s.into();
        Cell { raw: s.clone(), shown: s }
    }

    /// Different texts.
    pub(crate) fn two(raw: impl Into<String>, shown: impl Into<String>) -> Cell {
        Cell { raw: raw.into(), shown: shown.into() }
    }
}

/// A report's summary rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Table {
    /// The columns.
    pub(crate) columns: Vec<Column>,
    /// The rows, one cell per column.
    pub(crate) rows: Vec<Vec<Cell>>,
    /// Sentences after the table (Markdown only).
    pub(crate) notes: Vec<String>,
}

/// A report that every format can render.
pub(crate) trait Exportable: serde::Serialize {
    /// Its summary rows.
    fn table(&self) -> Table;
}

/// Renders `item` in `format`.
/// The JSON says which unit the table and plots showed rates in
/// (`units`); its own rates are GB/s whatever it was (`*_gbps`).
pub(crate) fn render(item: &dyn ExportableDyn, format: Format, shown: crate::units::Rate) -> Vec<u8> {
    match format {
        Format::Json => json::with_units(&item.json(), shown),
        Format::Csv => csv::render(&item.rows()).into_bytes(),
        Format::Markdown => markdown::render(&item.rows()).into_bytes(),
    }
}

/// [`Exportable`] behind a pointer (serde's traits are not object safe).
pub(crate) trait ExportableDyn {
    /// The whole report as JSON.
    fn json(&self) -> Vec<u8>;
    /// Its summary rows.
    fn rows(&self) -> Table;
}

impl<T: Exportable> ExportableDyn for T {
    fn json(&self) -> Vec<u8> {
        json::render(self)
    }
    fn rows(&self) -> Table {
        self.table()
    }
}

/// Whether `path` means stdout.
pub(crate) fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Where the output goes, checked for conflicts (the files themselves are
/// opened by the caller before any work: [`Destination`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OutputPlan {
    /// (path, format) of every export.
    pub(crate) exports: Vec<(PathBuf, Format)>,
    /// Whether the table goes to stdout (no export writes there).
    pub(crate) table: bool,
}

impl OutputPlan {
    /// Checks `output` (and `--plot`'s extension).
    pub(crate) fn resolve(output: &OutputArgs, plot: Option<&Path>) -> Result<OutputPlan, Error> {
        let exports: Vec<(PathBuf, Format)> = [
            (&output.export_json, Format::Json),
            (&output.export_csv, Format::Csv),
            (&output.export_markdown, Format::Markdown),
        ]
        .into_iter()
        .filter_map(|(p, f)| p.clone().map(|p| (p, f)))
        .collect();
        let to_stdout = exports.iter().filter(|(p, _)| is_stdout(p)).count();
        if to_stdout > 1 {
            return Err(Error::usage("only one --export-* may write to stdout (-); give the others a file"));
        }
        if let Some(plot) = plot {
            let ext = plot.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
            if !matches!(ext.as_deref(), Some("svg" | "png")) {
                return Err(Error::usage(format!("--plot {}: the file must end in .svg or .png", plot.display())));
            }
        }
        // Every file once: two flags naming one file would leave only the
        // last one's output, silently.
        let mut files: Vec<(&Path, &'static str)> =
            exports.iter().filter(|(p, _)| !is_stdout(p)).map(|(p, f)| (p.as_path(), f.flag())).collect();
        files.extend(plot.map(|p| (p, "--plot")));
        for (i, (a, flag_a)) in files.iter().enumerate() {
            for (b, flag_b) in &files[i + 1..] {
                if same_file(a, b) {
                    return Err(Error::usage(format!(
                        "{flag_a} {} and {flag_b} {} name the same file: give each output its own",
                        crate::diag::shown(a),
                        crate::diag::shown(b)
                    )));
                }
            }
        }
        Ok(OutputPlan { exports, table: to_stdout == 0 })
    }
}

/// Whether two destinations are one file: the same file name in the same
/// directory (however each path spells it), or the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b))
        && (x.dev(), x.ino()) == (y.dev(), y.ino())
    {
        return true;
    }
    let place = |p: &Path| {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Some((std::fs::canonicalize(dir).ok()?, p.file_name()?.to_owned()))
    };
    matches!((place(a), place(b)), (Some(x), Some(y)) if x == y) || a == b
}

/// Where an export or a plot goes: stdout, or a file replaced whole.
///
/// A file is written to an unnamed temporary file in the same directory
/// (`O_TMPFILE`, which vanishes with the process if anything goes wrong,
/// even SIGKILL), synced, then linked in under a temporary name and renamed
/// over the destination: the previous file stays intact until the new one
/// is complete. Opening it is the check that the destination can be
/// written, and happens before any work.
#[derive(Debug)]
pub(crate) struct Destination {
    path: PathBuf,
    flag: &'static str,
    target: Target,
}

#[derive(Debug)]
enum Target {
    Stdout,
    /// An unnamed temporary file (`O_TMPFILE`).
    File {
        dir: OwnedFd,
        tmp: OwnedFd,
        name: OsString,
    },
    /// A named temporary file, where the filesystem has no `O_TMPFILE`;
    /// removed on drop unless it was renamed into place.
    Named {
        dir: OwnedFd,
        tmp: OwnedFd,
        temp: OsString,
        name: OsString,
        done: bool,
    },
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Target::Named { dir, temp, done: false, .. } = self {
            let _ = nix::unistd::unlinkat(&*dir, temp.as_bytes(), nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
    }
}

/// The temporary name beside `name`.
fn temp_name(name: &OsString) -> OsString {
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(format!(".vecpar-{}.tmp", std::process::id()));
    temp
}

impl Destination {
    /// Opens `path` for `flag`, refusing what cannot be written.
    pub(crate) fn open(path: &Path, flag: &'static str) -> Result<Destination, Error> {
        if is_stdout(path) {
            return Ok(Destination { path: path.into(), flag, target: Target::Stdout });
        }
        let shown = crate::diag::shown(path);
        // "out.json/" names a directory, not the file out.json.
        let bytes = path.as_os_str().as_bytes();
        if bytes.ends_with(b"/") || bytes.ends_with(b"/.") || bytes.ends_with(b"/..") || bytes == b"." || bytes == b".."
        {
            return Err(Error::usage(format!("{flag} {shown}: names a directory; give a file name, or - for stdout")));
        }
        let name = path.file_name().ok_or_else(|| Error::usage(format!("{flag} {shown}: not a file name")))?.to_owned();
        if let Ok(meta) = std::fs::symlink_metadata(path)
            && !meta.file_type().is_file()
        {
            return Err(Error::usage(format!(
                "{flag} {shown}: exists and is not a regular file (a directory, symlink, FIFO or device); remove it, \
                 choose another path, or use - for stdout"
            )));
        }
        let dir_path = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // A directory that exists but takes no new file (a read-only or
        // pseudo file system such as /proc) answers ENOENT or EACCES for the
        // temporary file: say what the directory is, not that "there is no
        // such file".
        let read_only = nix::sys::statvfs::statvfs(dir_path)
            .is_ok_and(|st| st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
        let pseudo = nix::sys::statfs::statfs(dir_path).is_ok_and(|st| {
            let t = st.filesystem_type();
            t == nix::sys::statfs::PROC_SUPER_MAGIC || t == nix::sys::statfs::SYSFS_MAGIC
        });
        let cannot = |e: nix::errno::Errno| {
            if read_only || pseudo {
                return Error::runtime(format!(
                    "{flag} {shown}: {} is on a {} file system, where no file can be written; choose another path, \
                     or - for stdout",
                    crate::diag::shown(dir_path),
                    if pseudo { "kernel (proc or sys)" } else { "read-only" }
                ));
            }
            Error::runtime_from(format!("{flag} {shown}: cannot write there"), std::io::Error::from(e))
        };
        let dir = nix::fcntl::open(dir_path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(cannot)?;
        let mode = Mode::from_bits_truncate(0o666);
        let target = match nix::fcntl::openat(&dir, ".", OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC, mode) {
            Ok(tmp) => Target::File { dir, tmp, name },
            Err(nix::errno::Errno::EOPNOTSUPP | nix::errno::Errno::EISDIR | nix::errno::Errno::EINVAL) => {
                let temp = temp_name(&name);
                let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
                let tmp = nix::fcntl::openat(&dir, temp.as_bytes(), flags, mode).map_err(cannot)?;
                Target::Named { dir, tmp, temp, name, done: false }
            }
            Err(e) => return Err(cannot(e)),
        };
        Ok(Destination { path: path.into(), flag, target })
    }

    /// The path as given.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes`, whole. On stdout, a reader that went away before
    /// all of it was written is an error: the export is lost.
    pub(crate) fn write(mut self, bytes: &[u8]) -> Result<(), Error> {
        let (flag, shown) = (self.flag, crate::diag::shown(&self.path));
        let failed = |e: std::io::Error| match (e.raw_os_error(), crate::machine::file_size_limit()) {
            (Some(libc::EFBIG), Some(limit)) => Error::runtime(format!(
                "{flag} {shown}: cannot write {} bytes: the file size limit (ulimit -f) is {limit} bytes; raise it",
                bytes.len()
            )),
            _ => Error::runtime_from(format!("{flag} {shown}: cannot write"), e),
        };
        let synced = |tmp: &OwnedFd| -> Result<(), Error> {
            let mut file = std::fs::File::from(tmp.try_clone().map_err(failed)?);
            file.write_all(bytes).and_then(|_| file.sync_all()).map_err(failed)
        };
        match &mut self.target {
            Target::Stdout => {
                let mut out = std::io::stdout().lock();
                match out.write_all(bytes).and_then(|_| out.flush()) {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Error::runtime(format!(
                        "{flag} -: the export was lost: whatever read stdout went away before it was written \
                         (broken pipe); write it to a file instead"
                    ))),
                    Err(e) => Err(failed(e)),
                    Ok(()) => Ok(()),
                }
            }
            Target::Named { dir, tmp, temp, name, done } => {
                synced(tmp)?;
                nix::fcntl::renameat(&*dir, temp.as_bytes(), &*dir, name.as_bytes()).map_err(|e| failed(e.into()))?;
                *done = true;
                let _ = nix::unistd::fsync(&*dir);
                Ok(())
            }
            Target::File { dir, tmp, name } => {
                synced(tmp)?;
                // Give the file a temporary name beside the destination, then
                // rename it over the destination in one step.
                let temp = temp_name(name);
                let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&*tmp));
                let _ = nix::unistd::unlinkat(&*dir, temp.as_bytes(), nix::unistd::UnlinkatFlags::NoRemoveDir);
                nix::unistd::linkat(
                    nix::fcntl::AT_FDCWD,
                    proc_path.as_str(),
                    dir.as_fd(),
                    temp.as_bytes(),
                    AtFlags::AT_SYMLINK_FOLLOW,
                )
                .map_err(|e| failed(e.into()))?;
                let renamed = nix::fcntl::renameat(&*dir, temp.as_bytes(), &*dir, name.as_bytes());
                if let Err(e) = renamed {
                    let _ = nix::unistd::unlinkat(&*dir, temp.as_bytes(), nix::unistd::UnlinkatFlags::NoRemoveDir);
                    return Err(failed(e.into()));
                }
                let _ = nix::unistd::fsync(&*dir);
                Ok(())
            }
        }
    }
}

impl OutputPlan {
    /// Opens every export's destination, before any work.
    pub(crate) fn open_exports(&self) -> Result<Vec<(Destination, Format)>, Error> {
        self.exports.iter().map(|(path, format)| Ok((Destination::open(path, format.flag())?, *format))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn a_file_is_replaced_whole_or_not_at_all() {
        let dir = TempDir::new("export");
        let path = dir.path().join("out.json");
        std::fs::write(&path, b"previous").unwrap();
        let dest = Destination::open(&path, "--export-json").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"previous", "nothing changes before the write");
        drop(dest);
        assert_eq!(std::fs::read(&path).unwrap(), b"previous", "a destination never written leaves the file alone");
        Destination::open(&path, "--export-json").unwrap().write(b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, ["out.json"], "no temporary file is left");
    }

    #[test]
    fn unwritable_destinations_are_refused_when_opened() {
        let dir = TempDir::new("export-bad");
        let missing = dir.path().join("missing/out.json");
        assert!(matches!(Destination::open(&missing, "--export-json"), Err(Error::Runtime { .. })));
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
        let e = Destination::open(&fifo, "--export-csv").unwrap_err();
        assert!(matches!(e, Error::Usage(_)) && e.to_string().contains("--export-csv"), "{e}");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        assert!(matches!(Destination::open(&dir.path().join("link"), "--export-json"), Err(Error::Usage(_))));
        assert!(std::fs::read_to_string("/etc/passwd").unwrap().contains("root"), "a symlink's target is untouched");
    }

    #[test]
    fn outputs_are_checked_before_the_work() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(["vecpar-coord", "--export-json", "-", "--export-csv", "-"]).unwrap();
        assert!(matches!(OutputPlan::resolve(&cli.output, None), Err(Error::Usage(_))));
        let cli = crate::cli::Cli::try_parse_from(["vecpar-coord"]).unwrap();
        let e = OutputPlan::resolve(&cli.output, Some(Path::new("out.jpg"))).unwrap_err();
        assert!(e.to_string().contains("--plot out.jpg"));
        assert!(OutputPlan::resolve(&cli.output, Some(Path::new("out.SVG"))).unwrap().table);
    }
}
