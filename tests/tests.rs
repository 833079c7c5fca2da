//! vecpar's integration tests: one binary, one module per topic. Every test
//! runs the real binaries on real shared memory and checks, after every run,
//! that nothing was left in /dev/shm and no worker survived.

mod util;

mod cleanup;
mod cli;
mod docs;
mod faults;
mod hostile;
mod limits;
mod mpi;
mod numa;
mod runs;
mod slurm;
mod soak;
mod study;
mod trust;
