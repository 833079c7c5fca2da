//! Being started by an MPI launcher (mpirun, mpiexec, srun).
//!
//! Without MPI support built in, `mpirun -n 4 vecpar-coord` would run four
//! unrelated copies that each measure the whole machine and print four
//! reports: wrong numbers, quietly. So a build without the `mpi` feature
//! that finds itself one of several ranks refuses, and says how to build
//! the one that works.
#![forbid(unsafe_code)]

use crate::error::Error;

/// The launcher variable that says this process is one of several ranks,
/// and the size it gives.
pub(crate) fn ranks_from_environment(get: impl Fn(&str) -> Option<String>) -> Option<(&'static str, u64)> {
    let number = |name: &str| get(name).and_then(|v| v.trim().parse::<u64>().ok());
    for name in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", "SLURM_STEP_NUM_TASKS"] {
        if let Some(n) = number(name).filter(|&n| n > 1) {
            return Some((name, n));
        }
    }
    // PMIx gives every rank its number; one past the first means several.
    number("PMIX_RANK").filter(|&r| r > 0).map(|r| ("PMIX_RANK", r + 1))
}

/// Whether a launcher started this process as one of several ranks.
pub(crate) fn under_mpi() -> bool {
    ranks_from_environment(|n| std::env::var(n).ok()).is_some()
}

/// The variables a launcher sets for every rank, with the job's size
/// (`mpirun -n 1` included).
const SIZE_VARIABLES: [&str; 3] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"];

/// The launcher's variable naming the job's size and the size, when a
/// launcher started this process (as one rank or several).
pub(crate) fn launched() -> Option<(&'static str, u64)> {
    let get = |n: &str| std::env::var(n).ok().and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(found) = ranks_from_environment(|n| std::env::var(n).ok()) {
        return Some(found);
    }
    SIZE_VARIABLES.iter().find_map(|&n| get(n).map(|s| (n, s))).or_else(|| {
        // srun --mpi=pmix gives every rank PMIX_RANK and no size: rank 0
        // must not take the one-machine path while the others wait in
        // MPI_Init. The size is MPI's to say (0: not known here).
        get("PMIX_RANK").map(|_| ("PMIX_RANK", get("SLURM_STEP_NUM_TASKS").unwrap_or(0)))
    })
}

/// This process's rank, as the launcher gave it, before MPI starts (so
/// that only rank 0 shows what every rank would show alike).
pub(crate) fn rank_from_environment() -> Option<u64> {
    ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"]
        .iter()
        .find_map(|n| std::env::var(n).ok().and_then(|v| v.trim().parse::<u64>().ok()))
}

/// `Err` when this build has no MPI and a launcher started several ranks.
pub(crate) fn refuse_without_mpi() -> Result<(), Error> {
    match ranks_from_environment(|n| std::env::var(n).ok()) {
        Some((name, n)) => Err(Error::usage(format!(
            "started as one of {n} MPI ranks ({name}={}) but this vecpar-coord was built without MPI, so the ranks \
             would measure the machine {n} times over; build it with `cargo build --release --features mpi` (README: \
             \"Beyond one machine\"), or run it without mpirun",
            std::env::var(name).unwrap_or_default()
        ))),
        None => Ok(()),
    }
}

/// `Err` when several ranks were started for `what` (a sweep, the isolation
/// experiment), which measures one machine.
pub(crate) fn refuse_for(what: &str) -> Result<(), Error> {
    match ranks_from_environment(|n| std::env::var(n).ok()) {
        Some((_, n)) => Err(Error::usage(format!(
            "vecpar-coord {what} measures one machine and was started as one of {n} MPI ranks; run it without \
             mpirun (in a build with --features mpi, `isolation --modes mpi` starts its MPI jobs itself)"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_ranks_are_recognised_one_is_not() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
        };
        assert_eq!(ranks_from_environment(env(&[("OMPI_COMM_WORLD_SIZE", "4")])), Some(("OMPI_COMM_WORLD_SIZE", 4)));
        assert_eq!(ranks_from_environment(env(&[("PMI_SIZE", "2")])), Some(("PMI_SIZE", 2)));
        assert_eq!(ranks_from_environment(env(&[("PMIX_RANK", "3")])), Some(("PMIX_RANK", 4)));
        assert_eq!(ranks_from_environment(env(&[("SLURM_STEP_NUM_TASKS", "8")])), Some(("SLURM_STEP_NUM_TASKS", 8)));
        assert_eq!(ranks_from_environment(env(&[("OMPI_COMM_WORLD_SIZE", "1"), ("PMIX_RANK", "0")])), None);
        assert_eq!(ranks_from_environment(env(&[])), None);
    }
}
