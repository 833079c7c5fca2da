//! Studies: many runs, one report — a sweep over a grid, and the isolation
//! experiment.
#![forbid(unsafe_code)]

pub(crate) mod isolation;
pub(crate) mod sweep;
