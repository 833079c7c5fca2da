//! Being started by an MPI or Slurm launcher (mpirun, mpiexec, srun):
//! who started this process, as which task, and what it cannot do there.
//!
//! Without MPI support built in, `mpirun -n 4 vecpar-coord` would run four
//! unrelated copies that each measure the whole machine and print four
//! reports: wrong numbers, quietly. So a build without the `mpi` feature
//! that finds itself one of several ranks refuses, and says how to build
//! the one that works.
#![forbid(unsafe_code)]

use crate::error::Error;

/// What started this process as one task of several, as far as its
/// environment tells before MPI starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Launcher {
    /// Open MPI's mpirun or mpiexec (`OMPI_COMM_WORLD_*`).
    Mpirun,
    /// A Slurm job step (`SLURM_STEP_ID` and `SLURM_PROCID`).
    Srun,
    /// Another process manager (MPICH's Hydra, a PMIx server).
    Other,
}

impl Launcher {
    /// Who started the process, judged from `get` (the environment).
    fn of(get: &impl Fn(&str) -> Option<String>) -> Launcher {
        if get("OMPI_COMM_WORLD_SIZE").is_some() || get("OMPI_COMM_WORLD_RANK").is_some() {
            Launcher::Mpirun
        } else if get("SLURM_STEP_ID").is_some() && get("SLURM_PROCID").is_some() {
            Launcher::Srun
        } else {
            Launcher::Other
        }
    }

    /// Its name in a message.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Launcher::Mpirun => "mpirun",
            Launcher::Srun => "srun",
            Launcher::Other => "an MPI launcher",
        }
    }

    /// How to run one task with it.
    fn one_task(self) -> &'static str {
        match self {
            Launcher::Mpirun => "run it without mpirun (or with mpirun -n 1)",
            Launcher::Srun => "run one task (srun -n 1 -c N vecpar-coord --procs N)",
            Launcher::Other => "run it without the launcher (or with one rank)",
        }
    }
}

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

fn environment(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Whether a launcher started this process as one of several ranks.
pub(crate) fn under_mpi() -> bool {
    ranks_from_environment(environment).is_some()
}

/// Whether any MPI or Slurm launcher started this process (one task
/// included): its output goes to a launcher's files or pipes, so colour
/// and progress bars are off unless asked for.
pub(crate) fn under_a_launcher() -> bool {
    // A job step (srun), not a job: an salloc shell at a terminal keeps
    // its colour.
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK", "SLURM_STEP_ID"]
        .iter()
        .any(|n| std::env::var_os(n).is_some())
}

/// The variables a launcher sets for every rank, with the job's size
/// (`mpirun -n 1` included).
const SIZE_VARIABLES: [&str; 3] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"];

/// The launcher's variable naming the job's size and the size, when a
/// launcher started this process (as one rank or several).
pub(crate) fn launched() -> Option<(&'static str, u64)> {
    let get = |n: &str| std::env::var(n).ok().and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(found) = ranks_from_environment(environment) {
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
/// that only rank 0 shows what every rank would show alike): MPI's
/// variables first, then Slurm's task number (`srun` without MPI).
pub(crate) fn rank_from_environment() -> Option<u64> {
    rank_in(environment)
}

fn rank_in(get: impl Fn(&str) -> Option<String>) -> Option<u64> {
    ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"]
        .iter()
        .find_map(|n| get(n).and_then(|v| v.trim().parse::<u64>().ok()))
}

/// `Err` when this build has no MPI and a launcher started several ranks.
pub(crate) fn refuse_without_mpi() -> Result<(), Error> {
    without_mpi(environment).map_or(Ok(()), |message| Err(Error::usage(message)))
}

fn without_mpi(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    let (name, n) = ranks_from_environment(&get)?;
    let launcher = Launcher::of(&get);
    let build = match launcher {
        Launcher::Srun => {
            "build it with `cargo build --release --features mpi` and start it with `srun --mpi=pmix` \
                           (README: \"On a Slurm cluster\")"
        }
        _ => "build it with `cargo build --release --features mpi` (README: \"Beyond one machine\")",
    };
    Some(format!(
        "started by {} as one of {n} tasks ({name}={}) but this vecpar-coord was built without MPI, so the tasks would \
         measure the machine {n} times over; {build}, or {}",
        launcher.name(),
        get(name).unwrap_or_default(),
        launcher.one_task()
    ))
}

/// Under `srun`, an MPI library that joins a step only through PMIx (Open
/// MPI as Debian builds it: no `s1`/`s2` components) meets a step started
/// with `--mpi=pmi2` or `--mpi=none`: `MPI_Init` would fail with a banner
/// of its own. Said first, in one line. `library` is
/// `MPI_Get_library_version`'s text (callable before `MPI_Init`),
/// `speaks_pmi` whether the library has PMI-1/PMI-2 support (`None`: not
/// known).
#[cfg(any(feature = "mpi", test))]
pub(crate) fn pmi_mismatch(
    get: impl Fn(&str) -> Option<String>,
    library: &str,
    speaks_pmi: Option<bool>,
) -> Option<String> {
    if Launcher::of(&get) != Launcher::Srun || get("PMIX_RANK").is_some() {
        return None;
    }
    let tasks = get("SLURM_STEP_NUM_TASKS").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(1);
    let open_mpi = library.trim_start().starts_with("Open MPI");
    if tasks < 2 || !open_mpi || speaks_pmi != Some(false) {
        return None;
    }
    let how = if get("PMI_FD").is_some() || get("PMI_RANK").is_some() {
        "--mpi=pmi2 (PMI_FD is set, PMIX_RANK is not)"
    } else {
        "no MPI plugin (--mpi=none, or the cluster's MpiDefault: neither PMI nor PMIx in the environment)"
    };
    // "Open MPI v4.1.4, package: …": its name and version.
    let name = library.split([',', '\n']).next().unwrap_or("").trim_matches(|c: char| c == '\0' || c.is_whitespace());
    Some(format!(
        "started by srun with {how}, but this vecpar-coord's MPI ({name}) joins a Slurm step only through PMIx; \
         start it with `srun --mpi=pmix` (`srun --mpi=list` shows what this cluster offers)"
    ))
}

/// What the terminating signal `signal` most likely means under the
/// launcher that started this process, if it says something.
pub(crate) fn signal_meaning(signal: nix::sys::signal::Signal) -> Option<&'static str> {
    meaning_in(signal, environment)
}

fn meaning_in(signal: nix::sys::signal::Signal, get: impl Fn(&str) -> Option<String>) -> Option<&'static str> {
    if signal != nix::sys::signal::Signal::SIGTERM {
        return None;
    }
    if get("OMPI_COMM_WORLD_SIZE").is_some() {
        Some("mpirun sends it when the job lost a rank or was interrupted")
    } else if get("SLURM_JOB_ID").is_some() {
        Some(
            "Slurm sends it when the job or step is cancelled (scancel), reaches its time limit (--time) or lost a task",
        )
    } else {
        None
    }
}

/// `Err` when several ranks were started for `what` (a sweep, the isolation
/// experiment), which measures one machine.
pub(crate) fn refuse_for(what: &str) -> Result<(), Error> {
    match ranks_from_environment(environment) {
        Some((_, n)) => Err(Error::usage(format!(
            "vecpar-coord {what} measures one machine and was started by {} as one of {n} tasks; run it as one \
             task ({}) (in a build with --features mpi, `isolation --modes mpi` starts its MPI jobs itself)",
            Launcher::of(&environment).name(),
            match Launcher::of(&environment) {
                Launcher::Srun => format!("srun -n 1 -c N vecpar-coord {what} …"),
                Launcher::Mpirun => format!("without mpirun: vecpar-coord {what} …"),
                Launcher::Other => format!("vecpar-coord {what} … without the launcher"),
            }
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_ranks_are_recognised_one_is_not() {
        assert_eq!(ranks_from_environment(env(&[("OMPI_COMM_WORLD_SIZE", "4")])), Some(("OMPI_COMM_WORLD_SIZE", 4)));
        assert_eq!(ranks_from_environment(env(&[("PMI_SIZE", "2")])), Some(("PMI_SIZE", 2)));
        assert_eq!(ranks_from_environment(env(&[("PMIX_RANK", "3")])), Some(("PMIX_RANK", 4)));
        assert_eq!(ranks_from_environment(env(&[("SLURM_STEP_NUM_TASKS", "8")])), Some(("SLURM_STEP_NUM_TASKS", 8)));
        assert_eq!(ranks_from_environment(env(&[("OMPI_COMM_WORLD_SIZE", "1"), ("PMIX_RANK", "0")])), None);
        assert_eq!(ranks_from_environment(env(&[])), None);
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
    }

    #[test]
    fn the_launcher_is_named_and_the_task_number_found() {
        let srun = env(&[("SLURM_STEP_ID", "0"), ("SLURM_PROCID", "1"), ("SLURM_STEP_NUM_TASKS", "2")]);
        assert_eq!(Launcher::of(&srun), Launcher::Srun);
        assert_eq!(rank_in(&srun), Some(1), "srun without MPI: the task number");
        let message = without_mpi(&srun).unwrap();
        assert!(message.starts_with("started by srun as one of 2 tasks (SLURM_STEP_NUM_TASKS=2)"), "{message}");
        assert!(message.contains("srun --mpi=pmix") && message.contains("srun -n 1"), "{message}");
        assert!(!message.contains("mpirun"), "{message}");
        // salloc + mpirun: Slurm's variables of the allocation, mpirun's of the ranks.
        let mpirun = env(&[("SLURM_JOB_ID", "7"), ("OMPI_COMM_WORLD_SIZE", "2"), ("OMPI_COMM_WORLD_RANK", "0")]);
        assert_eq!(Launcher::of(&mpirun), Launcher::Mpirun);
        let message = without_mpi(&mpirun).unwrap();
        assert!(message.starts_with("started by mpirun as one of 2 tasks") && message.contains("mpirun -n 1"));
        assert_eq!(without_mpi(env(&[("SLURM_STEP_ID", "0"), ("SLURM_PROCID", "0")])), None, "one task is fine");
    }

    #[test]
    fn a_step_without_pmix_is_named_before_mpi_init() {
        let open_mpi = "Open MPI v4.1.4, package: Debian OpenMPI\0";
        let pmi2 = env(&[
            ("SLURM_STEP_ID", "0"),
            ("SLURM_PROCID", "0"),
            ("SLURM_STEP_NUM_TASKS", "2"),
            ("PMI_FD", "5"),
            ("PMI_RANK", "0"),
        ]);
        let m = pmi_mismatch(&pmi2, open_mpi, Some(false)).unwrap();
        assert!(m.contains("--mpi=pmi2") && m.contains("srun --mpi=pmix") && m.contains("Open MPI v4.1.4"), "{m}");
        assert!(!m.contains('\0'), "{m}");
        let none = env(&[("SLURM_STEP_ID", "0"), ("SLURM_PROCID", "1"), ("SLURM_STEP_NUM_TASKS", "2")]);
        assert!(pmi_mismatch(&none, open_mpi, Some(false)).unwrap().contains("--mpi=none"));
        // PMIx there, a library that speaks PMI, another MPI, one task: nothing to say.
        let pmix =
            env(&[("SLURM_STEP_ID", "0"), ("SLURM_PROCID", "0"), ("SLURM_STEP_NUM_TASKS", "2"), ("PMIX_RANK", "0")]);
        assert_eq!(pmi_mismatch(&pmix, open_mpi, Some(false)), None);
        assert_eq!(pmi_mismatch(&pmi2, open_mpi, Some(true)), None);
        assert_eq!(pmi_mismatch(&pmi2, open_mpi, None), None);
        assert_eq!(pmi_mismatch(&pmi2, "MPICH Version: 4.0", Some(false)), None);
        let one = env(&[("SLURM_STEP_ID", "0"), ("SLURM_PROCID", "0"), ("SLURM_STEP_NUM_TASKS", "1")]);
        assert_eq!(pmi_mismatch(&one, open_mpi, Some(false)), None);
    }

    #[test]
    fn a_sigterm_is_explained_by_the_launcher_that_sends_it() {
        use nix::sys::signal::Signal;
        let slurm = env(&[("SLURM_JOB_ID", "4")]);
        assert!(meaning_in(Signal::SIGTERM, &slurm).unwrap().contains("time limit"));
        assert!(meaning_in(Signal::SIGTERM, env(&[("OMPI_COMM_WORLD_SIZE", "2")])).unwrap().contains("mpirun"));
        assert_eq!(meaning_in(Signal::SIGINT, &slurm), None);
        assert_eq!(meaning_in(Signal::SIGTERM, env(&[])), None);
    }
}
