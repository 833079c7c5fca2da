//! The command line of `vecpar-coord`, defined once (clap derive): help,
//! completions and parsing all come from here. Values are only parsed
//! here; whether they can work on this machine is decided in
//! [`crate::config`].
#![forbid(unsafe_code)]

use std::path::PathBuf;

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::fault::{FaultKind, FaultSpec, OnFault};
use crate::kernel::{Dtype, Op, Simd, Stores};
use crate::machine::PinSpec;
use crate::vocab::{Backend, HugePages, Mode, RoundSync};

const EXAMPLES: &str = "\
Examples:
  Add two arrays of 10^6 doubles across 8 worker processes, STREAM-style:
      vecpar-coord --procs 8
  The same in threads and in one thread, to compare:
      vecpar-coord --procs 8 --mode threads
      vecpar-coord --mode serial
  Every STREAM and BabelStream kernel, memory bandwidth (arrays far larger than the caches):
      vecpar-coord --op all --len 1e8
  Kill worker 1 with a wild pointer in round 2, then recover by respawning it:
      vecpar-coord --procs 4 --inject-fault 1:segv@2 --on-fault retry
  Machine-readable results on stdout:
      vecpar-coord --export-json - | jq .summary
  Scaling study with a plot, and the isolation experiment:
      vecpar-coord sweep --procs 1,2,4,8 --plot scaling.svg
      vecpar-coord isolation

Exit codes: 0 validated, 1 runtime error, 2 usage error, 3 validation failed,
4 worker lost, 128+N interrupted by signal N (130 SIGINT, 143 SIGTERM);
in threads mode a crashing worker takes the process: 134 (SIGABRT), 139 (SIGSEGV).";

/// vecpar: vector operations across worker processes over OS shared memory.
///
/// The coordinator maps arrays a, b and c into shared memory, starts worker
/// processes (vecpar-worker) that each compute one chunk of c = a + b (or
/// another STREAM or BabelStream kernel) with SIMD, times the rounds, and
/// checks every element. The same kernels and chunks also run on threads and
/// on one thread, so processes and threads can be compared side by side.
#[derive(Debug, Parser)]
#[command(name = "vecpar-coord", version, after_long_help = EXAMPLES, args_conflicts_with_subcommands = true)]
pub(crate) struct Cli {
    /// A study to run instead of a single measurement.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// Options of a single run.
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// Output options (for runs and studies alike).
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Measure a grid (worker counts × modes × lengths × kernels × types × SIMD levels) and show one
    /// table: GB/s, speed-up and parallel efficiency, start-up cost; --plot draws it.
    #[command(after_long_help = SWEEP_EXAMPLES)]
    Sweep(Box<SweepArgs>),
    /// Inject every fault into processes and into threads, each in a child run, and show what survived,
    /// what was detected, what was lost and what --on-fault retry recovered.
    #[command(after_long_help = ISOLATION_EXAMPLES)]
    Isolation(IsolationArgs),
    /// Show what vecpar detects about this machine, without running anything: the CPUs it may use and why
    /// (affinity mask, cpuset, quota), NUMA nodes and their distances, caches, SIMD levels, huge pages, the room
    /// in /dev/shm and the memory limits — what likwid-topology and numactl -H show, in one place.
    Topology,
    /// Print a shell completion script to stdout.
    Completions {
        /// The shell.
        shell: Shell,
    },
}

const SWEEP_EXAMPLES: &str = "\
Examples:
  Are processes slower than threads here? One line per mode, GB/s against workers:
      vecpar-coord sweep --procs 1,2,4,8 --plot scaling.svg
  The same on a noisy machine: the grid 5 times over, medians with min–max bars:
      vecpar-coord sweep --procs 1,2,4,8 --repeat 5 --plot scaling.svg
  Where the caches end and memory begins, GB/s against length (log axis):
      vecpar-coord sweep --procs 2 --modes procs --len 1e4,1e5,1e6,1e7,1e8 --plot lengths.png
  What each SIMD level of this CPU buys in L2, against scalar, as a Markdown table:
      vecpar-coord sweep --modes serial --simd all --len 1e4 --export-markdown -";

const ISOLATION_EXAMPLES: &str = "\
Examples:
  The whole matrix, with its plain-language summary:
      vecpar-coord isolation
  Only the faults that kill a thread's process, as JSON:
      vecpar-coord isolation --faults abort,segv --export-json -";

/// The most repetitions of a sweep's grid.
pub(crate) const MAX_REPEAT: usize = 1000;

/// `vecpar-coord sweep`: lists where a single run takes one value.
#[derive(Clone, Debug, Args)]
pub(crate) struct SweepArgs {
    /// Worker counts, comma separated [default: 1, 2, 4, … up to 4 × the CPUs this process may use (after any
    /// cgroup CPU quota), at most 64]
    #[arg(short = 'n', long, value_name = "LIST", value_delimiter = ',', allow_hyphen_values = true, value_parser = Parsed(number::<usize>), help_heading = "Grid")]
    pub(crate) procs: Vec<usize>,
    /// Modes, comma separated (serial runs once per length, kernel, type and SIMD level, as the baseline)
    #[arg(
        short,
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "procs,threads,serial",
        help_heading = "Grid"
    )]
    pub(crate) modes: Vec<Mode>,
    /// Lengths, comma separated: 1e4,1e5,1e6 (more than one draws GB/s against length)
    #[arg(short, long, value_name = "LIST", value_delimiter = ',', default_value = "1e7", allow_hyphen_values = true, value_parser = Parsed(parse_len), help_heading = "Grid")]
    pub(crate) len: Vec<usize>,
    /// Kernels, comma separated, or all
    #[arg(long, value_name = "LIST", default_value = "add", value_parser = OpListParser, help_heading = "Grid")]
    pub(crate) op: OpList,
    /// Element types, comma separated
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "f64", help_heading = "Grid")]
    pub(crate) dtype: Vec<Dtype>,
    /// SIMD levels, comma separated, or all that this CPU has
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "auto", value_parser = ChoiceParser::<Simd, true>::new(), help_heading = "Grid")]
    pub(crate) simd: Vec<Every<Simd>>,
    /// NUMA node counts, comma separated: each point's workers go on that many nodes (--pin M0:k,M1:k,…), and
    /// --procs counts workers per node; one line per node count. Several nodes' rates against one's show what
    /// each memory domain adds
    #[arg(long, value_name = "LIST", value_delimiter = ',', allow_hyphen_values = true, value_parser = Parsed(number::<usize>), help_heading = "Grid")]
    pub(crate) numa_nodes: Vec<usize>,
    /// How each run measures, as for a single run.
    #[command(flatten)]
    pub(crate) measure: MeasureArgs,
    /// Run the whole grid R times (at most 1000), each time starting one point later, and report each point's
    /// median over them with its spread: a steadier answer on a noisy machine
    #[arg(long, value_name = "R", default_value_t = 1, allow_hyphen_values = true, value_parser = Parsed(number::<usize>), help_heading = "Grid")]
    pub(crate) repeat: usize,
    /// Draw the sweep to FILE (.svg or .png): GB/s against workers, or against length when several are given
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub(crate) plot: Option<PathBuf>,
}

/// `vecpar-coord isolation`.
#[derive(Clone, Debug, Args)]
pub(crate) struct IsolationArgs {
    /// Faults to inject, comma separated
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "panic,abort,segv,hang,oob-write",
        value_parser = fault_kind(),
        help_heading = "Experiment"
    )]
    pub(crate) faults: Vec<FaultChoice>,
    /// Modes to compare, comma separated
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = DEFAULT_ISOLATION_MODES,
        help_heading = "Experiment"
    )]
    pub(crate) modes: Vec<IsolationMode>,
    /// Workers per run (2 to 64: an oob-write needs a neighbour)
    #[arg(short = 'n', long, value_name = "N", default_value_t = 2, allow_hyphen_values = true, value_parser = Parsed(number::<usize>), help_heading = "Experiment")]
    pub(crate) procs: usize,
    /// Elements per array
    #[arg(short, long, value_name = "N", default_value = "1000000", allow_hyphen_values = true, value_parser = Parsed(parse_len), help_heading = "Experiment")]
    pub(crate) len: usize,
    /// Seconds without progress before a worker counts as hung
    #[arg(long, value_name = "SECS", default_value_t = 1.0, allow_hyphen_values = true, value_parser = Parsed(parse_timeout), help_heading = "Experiment")]
    pub(crate) timeout: f64,
}

/// The modes whose workers can be lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum IsolationMode {
    /// Worker processes
    Procs,
    /// Worker threads
    Threads,
    /// Two MPI jobs of 2 ranks (a build with --features mpi launches them with mpirun): worker processes inside each
    /// rank, the fault in worker 1 of every rank; and --mode ranks, the fault in rank 1 itself
    Mpi,
}

/// `isolation --modes` by default: the MPI layouts too, in a build that has
/// them.
pub(crate) const DEFAULT_ISOLATION_MODES: &str =
    if cfg!(feature = "mpi") { "procs,threads,mpi" } else { "procs,threads" };

/// Shells with completion scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Shell {
    /// GNU bash
    Bash,
    /// Z shell
    Zsh,
    /// fish
    Fish,
}

/// A value, or `auto` (vecpar decides): `--simd`, `--stores`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Auto<T> {
    /// vecpar decides.
    Auto,
    /// This one.
    Is(T),
}

impl<T: Copy> Auto<T> {
    /// The value, or `None` for auto.
    pub(crate) fn value(self) -> Option<T> {
        match self {
            Auto::Auto => None,
            Auto::Is(v) => Some(v),
        }
    }
}

impl<T: std::fmt::Display> std::fmt::Display for Auto<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auto::Auto => f.write_str("auto"),
            Auto::Is(v) => v.fmt(f),
        }
    }
}

/// A sweep's list item: a value, `auto`, or `all` of them that this
/// machine has (`--simd all`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Every<T> {
    /// Every value this machine supports.
    All,
    /// One value, or auto.
    One(Auto<T>),
}

impl<T: Copy> Every<T> {
    /// The single-run values this stands for, given those this machine
    /// supports (in order).
    pub(crate) fn expand(self, supported: &[T]) -> Vec<Auto<T>> {
        match self {
            Every::All => supported.iter().map(|&v| Auto::Is(v)).collect(),
            Every::One(v) => vec![v],
        }
    }
}

/// Parses a [`ValueEnum`] value, `auto`, and (for a sweep) `all`; lists
/// them all in help and completions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChoiceParser<T, const ALL: bool>(std::marker::PhantomData<T>);

impl<T, const ALL: bool> ChoiceParser<T, ALL> {
    pub(crate) const fn new() -> Self {
        ChoiceParser(std::marker::PhantomData)
    }
}

impl<T: ValueEnum + Clone + Send + Sync + 'static, const ALL: bool> ChoiceParser<T, ALL> {
    fn parse_value(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Every<T>, clap::Error> {
        if ALL && value == "all" {
            return Ok(Every::All);
        }
        if value == "auto" {
            return Ok(Every::One(Auto::Auto));
        }
        use clap::builder::TypedValueParser;
        let inner = clap::builder::EnumValueParser::<T>::new();
        match inner.parse_ref(cmd, arg, value) {
            Ok(v) => Ok(Every::One(Auto::Is(v))),
            Err(_) => {
                let mut e = clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd);
                e.insert(
                    clap::error::ContextKind::InvalidArg,
                    clap::error::ContextValue::String(arg.map_or_else(String::new, |a| a.to_string())),
                );
                e.insert(
                    clap::error::ContextKind::InvalidValue,
                    clap::error::ContextValue::String(value.to_string_lossy().into_owned()),
                );
                let valid = self.names();
                e.insert(clap::error::ContextKind::ValidValue, clap::error::ContextValue::Strings(valid));
                Err(e)
            }
        }
    }

    fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if ALL {
            out.push("all".into());
        }
        out.push("auto".into());
        out.extend(T::value_variants().iter().filter_map(|v| v.to_possible_value()).map(|p| p.get_name().to_string()));
        out
    }
}

impl<T: ValueEnum + Clone + Send + Sync + 'static> clap::builder::TypedValueParser for ChoiceParser<T, false> {
    type Value = Auto<T>;
    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Auto<T>, clap::Error> {
        match self.parse_value(cmd, arg, value)? {
            Every::One(v) => Ok(v),
            Every::All => unreachable!("`all` is not offered for a single run"),
        }
    }
    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(possible::<T>(false)))
    }
}

impl<T: ValueEnum + Clone + Send + Sync + 'static> clap::builder::TypedValueParser for ChoiceParser<T, true> {
    type Value = Every<T>;
    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Every<T>, clap::Error> {
        self.parse_value(cmd, arg, value)
    }
    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(possible::<T>(true)))
    }
}

fn possible<T: ValueEnum>(all: bool) -> impl Iterator<Item = clap::builder::PossibleValue> {
    use clap::builder::PossibleValue;
    all.then(|| PossibleValue::new("all").help("Every level this CPU supports, narrowest first"))
        .into_iter()
        .chain(std::iter::once(PossibleValue::new("auto").help("Chosen for this machine and run")))
        .chain(T::value_variants().iter().filter_map(|v| v.to_possible_value()).collect::<Vec<_>>())
}

/// Parses a fault kind's name (`isolation --faults`), listing them all.
fn fault_kind() -> impl clap::builder::TypedValueParser<Value = FaultChoice> {
    let all = clap::builder::PossibleValue::new("all").help("Every fault kind, in this order");
    clap::builder::PossibleValuesParser::new(
        std::iter::once(all)
            .chain(FaultKind::ALL.map(|k| clap::builder::PossibleValue::new(k.name()).help(k.description()))),
    )
    .try_map(|name: String| match name.as_str() {
        "all" => Ok(FaultChoice::All),
        other => other.parse::<FaultKind>().map(FaultChoice::One),
    })
}

/// One `isolation --faults` value: a kind, or `all` of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultChoice {
    /// Every kind of [`FaultKind::ALL`].
    All,
    /// This one.
    One(FaultKind),
}

impl IsolationArgs {
    /// The fault kinds asked for, each once, in the order given.
    pub(crate) fn fault_kinds(&self) -> Vec<FaultKind> {
        let mut out: Vec<FaultKind> = Vec::new();
        for choice in &self.faults {
            let kinds: Vec<FaultKind> = match choice {
                FaultChoice::All => FaultKind::ALL.to_vec(),
                FaultChoice::One(k) => vec![*k],
            };
            for k in kinds {
                if !out.contains(&k) {
                    out.push(k);
                }
            }
        }
        out
    }
}

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    /// Colour when stdout is a terminal and NO_COLOR is unset
    Auto,
    /// Always colour
    Always,
    /// Never colour
    Never,
}

/// `--op`: kernels in the order given, or `all` (every kernel of the table,
/// in its order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OpList(pub Vec<Op>);

impl std::str::FromStr for OpList {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "all" {
            return Ok(OpList(Op::ALL.to_vec()));
        }
        let mut ops = Vec::new();
        for name in s.split(',').map(str::trim) {
            let op = Op::ALL.into_iter().find(|o| o.name() == name).ok_or_else(|| {
                let names: Vec<&str> = Op::ALL.iter().map(|o| o.name()).collect();
                format!("'{name}' is not a kernel (expected all, or a list of {})", names.join(", "))
            })?;
            ops.push(op); // a name given twice runs once, with a note
        }
        Ok(OpList(ops))
    }
}

/// Parses `--op`, and lists every kernel of the table with its formula in
/// help and completions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpListParser;

impl clap::builder::TypedValueParser for OpListParser {
    type Value = OpList;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<OpList, clap::Error> {
        let flag = arg.map_or_else(|| "--op".to_string(), |a| a.to_string());
        let text = value.to_str().ok_or_else(|| {
            clap::Error::raw(clap::error::ErrorKind::InvalidUtf8, format!("the value of '{flag}' is not UTF-8\n"))
                .with_cmd(cmd)
        })?;
        text.parse::<OpList>().map_err(|e| {
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!("{}\n", crate::diag::escape_controls(&format!("invalid value '{text}' for '{flag}': {e}"))),
            )
            .with_cmd(cmd)
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        use clap::builder::PossibleValue;
        let all = PossibleValue::new("all").help("Every kernel, in this order");
        Some(Box::new(
            std::iter::once(all).chain(Op::ALL.iter().map(|op| PossibleValue::new(op.name()).help(op.formula()))),
        ))
    }
}

impl std::fmt::Display for OpList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|o| o.name()).collect();
        f.write_str(&names.join(","))
    }
}

/// The most workers one run may start: far beyond any machine's cores, well
/// short of a fork bomb.
pub(crate) const MAX_WORKERS: usize = crate::shm::MAX_SLOTS;

/// The most timed rounds (and, separately, warm-up rounds) of one run.
pub(crate) const MAX_ROUNDS: u32 = 1_000_000;

/// Options of one measurement.
#[derive(Clone, Debug, Args)]
pub(crate) struct RunArgs {
    /// Number of workers, 1 to 4096 [default: the CPUs this process may use, counting the affinity mask and any
    /// cgroup CPU quota]
    #[arg(short = 'n', long, allow_hyphen_values = true, value_name = "N", value_parser = Parsed(number::<usize>), help_heading = "Workload")]
    pub(crate) procs: Option<usize>,

    /// Elements per array: 1000000, 1e6, 10M, 2^20 or 1_000_000
    #[arg(short, long, value_name = "N", allow_hyphen_values = true, default_value = "1000000", value_parser = Parsed(parse_len), help_heading = "Workload")]
    pub(crate) len: usize,

    /// The kernels, run one after another on the same arrays: one of those below (add is the seed's), a
    /// comma-separated list of them, or all
    #[arg(long, value_name = "LIST", default_value = "add", value_parser = OpListParser, help_heading = "Workload")]
    pub(crate) op: OpList,

    /// Element type
    #[arg(long, value_enum, default_value_t = Dtype::F64, help_heading = "Workload")]
    pub(crate) dtype: Dtype,

    /// Run on worker processes, on threads of one process, or on one thread
    #[arg(short, long, value_enum, default_value_t = Mode::Procs, help_heading = "Workload")]
    pub(crate) mode: Mode,

    /// Instruction set of the kernel (auto: the widest this CPU has, but avx2 over avx512: compilers prefer 256-bit vectors, and so does memory here); a level this CPU lacks is refused
    #[arg(long, default_value = "auto", value_parser = ChoiceParser::<Simd, false>::new(), help_heading = "Tuning")]
    pub(crate) simd: Auto<Simd>,

    /// How each run measures: rounds, seed, memory and placement.
    #[command(flatten)]
    pub(crate) measure: MeasureArgs,

    /// Make worker WORKER fail in round ROUND (default 0): panic, abort, segv, exit[=CODE], hang, oob-write or
    /// stack-overflow; or slow it down by MS milliseconds, losing nothing: stall=MS
    #[arg(long, value_name = "WORKER:KIND[@ROUND]", help_heading = "Faults")]
    pub(crate) inject_fault: Vec<FaultSpec>,

    /// When a worker is lost: fail (exit 4), or retry[=N] (replace it and repeat the step, N times at most)
    #[arg(long, value_name = "POLICY", default_value = "fail", help_heading = "Faults")]
    pub(crate) on_fault: OnFault,

    /// Seconds a worker may go without any sign of progress before it counts as hung (time the coordinator
    /// itself was stopped does not count)
    #[arg(long, allow_hyphen_values = true, value_name = "SECS", default_value_t = 60.0, value_parser = Parsed(parse_timeout), help_heading = "Faults")]
    pub(crate) timeout: f64,
}

/// How a run measures: the options a single run and a sweep share.
#[derive(Clone, Debug, Args)]
pub(crate) struct MeasureArgs {
    /// Timed rounds (1 to 1000000)
    #[arg(
        short,
        long,
        allow_hyphen_values = true,
        value_name = "K",
        default_value_t = 10,
        value_parser = Parsed(number::<u32>),
        help_heading = "Workload"
    )]
    pub(crate) runs: u32,

    /// Untimed rounds before the timed ones (at most 1000000)
    #[arg(
        short,
        long,
        allow_hyphen_values = true,
        value_name = "K",
        default_value_t = 1,
        value_parser = Parsed(number::<u32>),
        help_heading = "Workload"
    )]
    pub(crate) warmup: u32,

    /// Seed of the pseudo-random contents of the arrays (same values for any mode or worker count)
    #[arg(long, allow_hyphen_values = true, value_name = "S", default_value_t = 1, value_parser = Parsed(number::<u64>), help_heading = "Workload")]
    pub(crate) seed: u64,

    /// How results are written: auto picks non-temporal stores when the arrays do not fit in the last-level cache
    #[arg(long, default_value = "auto", value_parser = ChoiceParser::<Stores, false>::new(), help_heading = "Tuning")]
    pub(crate) stores: Auto<Stores>,

    /// Pin workers to CPUs: auto (compact when each worker can have its own CPU, else none), none, compact (fill
    /// a NUMA node, then the next), spread (every node, then every core, first), a list like 3,1 or 0-3,8: worker
    /// i goes to the i-th CPU listed (always inside the CPUs this process may use), or NUMA nodes like M0:2,M1:2
    /// (two workers on node 0, two on node 1)
    #[arg(long, value_name = "HOW", default_value = "auto", help_heading = "Tuning")]
    pub(crate) pin: PinSpec,

    /// Where the arrays' pages go on a NUMA machine: local (each worker's chunks on its own node, bound before
    /// they are reserved), interleave (page by page over the allowed nodes), node:N (all on node N), or inherit
    /// (the policy vecpar was started with) [default: local, or inherit when started under a policy, e.g. by
    /// numactl]
    #[arg(long, value_name = "POLICY", help_heading = "Tuning")]
    pub(crate) mem_policy: Option<crate::machine::numa::MemPolicy>,

    /// How rounds are started and reported: a futex doorbell in shared memory, or IPC messages
    #[arg(long, value_enum, default_value_t = RoundSync::Doorbell, help_heading = "Tuning")]
    pub(crate) sync: RoundSync,

    /// Shared memory: an anonymous memfd, or a POSIX object in /dev/shm (limited by its size)
    #[arg(long, value_enum, default_value_t = Backend::Memfd, help_heading = "Tuning")]
    pub(crate) shm: Backend,

    /// Back the arrays with 2 MiB pages from the hugetlb pool (sysctl vm.nr_hugepages): 512 times fewer
    /// page faults and TLB entries. auto uses the pool when it has room and every worker still gets a page
    #[arg(long, value_enum, default_value_t = HugePages::Auto, help_heading = "Tuning")]
    pub(crate) huge_pages: HugePages,

    /// The vecpar-worker binary [default: next to vecpar-coord]
    #[arg(long, value_name = "PATH", env = "VECPAR_WORKER", help_heading = "Tuning")]
    pub(crate) worker_bin: Option<PathBuf>,
}

/// Output options, shared by runs and studies.
#[derive(Clone, Debug, Args)]
pub(crate) struct OutputArgs {
    /// Write the full report as JSON to FILE (- for stdout); replaced whole, never left half-written
    #[arg(long, value_name = "FILE", global = true, help_heading = "Output")]
    pub(crate) export_json: Option<PathBuf>,

    /// Write the summary as CSV to FILE (- for stdout)
    #[arg(long, value_name = "FILE", global = true, help_heading = "Output")]
    pub(crate) export_csv: Option<PathBuf>,

    /// Write the summary as a Markdown table to FILE (- for stdout)
    #[arg(long, value_name = "FILE", global = true, help_heading = "Output")]
    pub(crate) export_markdown: Option<PathBuf>,

    /// Colour in the terminal output (NO_COLOR in the environment also turns it off)
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true, help_heading = "Output")]
    pub(crate) color: ColorChoice,

    /// Print no warnings and no progress bar
    #[arg(short, long, global = true, help_heading = "Output")]
    pub(crate) quiet: bool,

    /// The unit of rates in the table and plots (BabelStream's MB/s, MiB/s; exports keep GB/s and say so)
    #[arg(long, value_enum, default_value_t = crate::units::Rate::Gb, global = true, help_heading = "Output")]
    pub(crate) units: crate::units::Rate,
}

/// A value parsed from its text by a function, with every error — a value
/// that is not a number, that is not UTF-8, that holds a newline — one line
/// naming the flag (clap's own parsers say only "invalid UTF-8 was
/// detected" for the second, and take `-inf` for three flags).
#[derive(Clone, Copy)]
pub(crate) struct Parsed<T>(pub(crate) fn(&str) -> Result<T, String>);

impl<T: Clone + Send + Sync + 'static> clap::builder::TypedValueParser for Parsed<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        let flag = arg.map_or_else(|| "the value".to_string(), |a| format!("'{a}'"));
        let shown = crate::diag::escape_controls(&value.to_string_lossy());
        let fail = |why: String| {
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!("invalid value '{shown}' for {flag}: {why}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value.to_str().ok_or_else(|| fail("it is not UTF-8 text".into()))?;
        (self.0)(text).map_err(fail)
    }
}

/// Parses a whole number.
pub(crate) fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.trim().parse().map_err(|_| format!("'{}' is not a whole number in range", crate::diag::escape_controls(text)))
}

/// Parses an element count: `1000000`, `1_000_000`, `1e6`, `1.5e6`, `10M`,
/// `4Ki`, `2^20`.
pub(crate) fn parse_len(text: &str) -> Result<usize, String> {
    let t: String = text.chars().filter(|c| *c != '_' && !c.is_whitespace()).collect();
    let bad = || format!("'{text}' is not an element count (try 1000000, 1e6, 10M or 2^20)");
    let value: u128 = if let Some((base, exp)) = t.split_once('^') {
        let base: u128 = base.parse().map_err(|_| bad())?;
        let exp: u32 = exp.parse().map_err(|_| bad())?;
        base.checked_pow(exp).ok_or_else(bad)?
    } else if t.contains(['e', 'E']) {
        let v: f64 = t.parse().map_err(|_| bad())?;
        if !v.is_finite() || v.fract() != 0.0 || !(0.0..=1e30).contains(&v) {
            return Err(format!("'{text}' is not a whole number of elements"));
        }
        v as u128
    } else {
        let suffixes: [(&str, u128); 6] =
            [("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("k", 1_000), ("M", 1_000_000), ("G", 1_000_000_000)];
        let (digits, mult) = suffixes
            .iter()
            .find_map(|(s, m)| t.strip_suffix(s).map(|d| (d, *m)))
            .or_else(|| t.strip_suffix('K').map(|d| (d, 1_000)))
            .unwrap_or((&t, 1));
        digits.parse::<u128>().map_err(|_| bad())?.checked_mul(mult).ok_or_else(bad)?
    };
    if value == 0 {
        return Err("the arrays need at least 1 element".into());
    }
    usize::try_from(value).map_err(|_| format!("'{text}' is more elements than this machine can address"))
}

fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        Ok(v) if v <= 0.0 => Err(format!("'{text}' seconds: the time must be greater than 0")),
        _ => Err(format!("'{text}' is not a number of seconds from just above 0 to 86400")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn lengths_in_every_spelling() {
        for (text, want) in [
            ("1000000", 1_000_000),
            ("1_000_000", 1_000_000),
            ("1e6", 1_000_000),
            ("1.5e6", 1_500_000),
            ("10M", 10_000_000),
            ("4Ki", 4096),
            ("2^20", 1 << 20),
            ("7", 7),
            ("3k", 3000),
        ] {
            assert_eq!(parse_len(text), Ok(want), "{text}");
        }
        for bad in ["0", "-5", "1.5", "1e-3", "abc", "2^", "10Q", "1e400", ""] {
            assert!(parse_len(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn kernel_lists() {
        assert_eq!("all".parse::<OpList>().unwrap().0, Op::ALL);
        assert_eq!(
            "add,copy,add".parse::<OpList>().unwrap().0,
            [Op::Add, Op::Copy, Op::Add],
            "repeats kept: the run merges them with a note"
        );
        assert!("add,mul".parse::<OpList>().unwrap_err().contains("'mul' is not a kernel"));
    }
}
