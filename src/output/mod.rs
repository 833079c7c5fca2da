//! Presentation for people: the terminal tables, the progress bar, the
//! sweep's chart.
#![forbid(unsafe_code)]

pub(crate) mod chart;
pub(crate) mod present;
pub(crate) mod progress;
pub(crate) mod table;

use std::io::IsTerminal;

use crate::cli::ColorChoice;
pub(crate) use table::Style;

/// The terminal style for stdout: colour when asked, or (auto) when stdout
/// is a terminal, `NO_COLOR` is unset or empty, `TERM` is not `dumb` and no
/// MPI or Slurm launcher started the process (mpirun gives its ranks a
/// terminal whose output often ends in a file).
pub(crate) fn style(choice: ColorChoice, rate: crate::units::Rate) -> Style {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    let color = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            !no_color && !dumb && std::io::stdout().is_terminal() && !crate::launcher::under_a_launcher()
        }
    };
    Style { color, rate }
}
