//! Which CPUs this process may use, where each worker is pinned, and the
//! system calls that pin.
//!
//! Nothing here assumes the machine's CPU ids are usable: in a container with
//! a cpuset, ids are not renumbered, and pinning worker `i` to CPU `i` fails.
//! The allowed set is read from the affinity mask (`sched_getaffinity`) and
//! every pin plan stays inside it. A pin the kernel refuses is reported, and
//! the worker runs unpinned.

use std::fmt;
use std::str::FromStr;

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// The CPUs in this process's affinity mask, ascending.
pub(crate) fn allowed_cpus() -> Vec<usize> {
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect(),
        // More CPUs than a cpu_set_t holds (EINVAL): fall back to counting.
        Err(_) => {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..n).collect()
        }
    }
}

/// Parses a CPU list in taskset's `--cpu-list` grammar (`0-3,8,10-20:2`),
/// in the order given, duplicates kept.
pub(crate) fn parse_cpu_list(text: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("empty item in CPU list '{text}'"));
        }
        let (range, stride) = match item.split_once(':') {
            Some((r, s)) => {
                (r, s.parse::<usize>().ok().filter(|&s| s > 0).ok_or_else(|| format!("bad stride in '{item}'"))?)
            }
            None => (item, 1),
        };
        let (lo, hi) = match range.split_once('-') {
            Some((lo, hi)) => (parse_cpu(lo, item)?, parse_cpu(hi, item)?),
            None => {
                let c = parse_cpu(range, item)?;
                (c, c)
            }
        };
        if lo > hi {
            return Err(format!("range '{item}' runs backwards"));
        }
        if hi >= MAX_CPU {
            return Err(format!("CPU {hi} in '{item}' is beyond the {MAX_CPU} CPUs Linux can address"));
        }
        cpus.extend((lo..=hi).step_by(stride));
    }
    Ok(cpus)
}

/// The most CPUs a Linux kernel addresses (`NR_CPUS` of the largest configs).
const MAX_CPU: usize = 8192;

fn parse_cpu(text: &str, item: &str) -> Result<usize, String> {
    text.trim().parse().map_err(|_| format!("'{item}' is not a CPU number or range"))
}

/// Formats CPUs as taskset's list, in the order given: `0-3,8`, `3,1`.
pub(crate) fn format_cpu_list(cpus: &[usize]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if i == j { cpus[i].to_string() } else { format!("{}-{}", cpus[i], cpus[j]) });
        i = j + 1;
    }
    out.join(",")
}

/// How to place workers on CPUs (`--pin`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum PinSpec {
    /// `compact` when every worker can have a CPU of its own, else `none`
    /// (pinning more workers than CPUs only stops the scheduler from
    /// balancing them).
    Auto,
    /// Leave placement to the scheduler.
    None,
    /// Fill cores in order: neighbouring workers share a package (and SMT siblings).
    Compact,
    /// One worker per core, alternating packages, before any core gets a second.
    Spread,
    /// Worker i on the i-th CPU of the list, in the order given (round robin).
    List(Vec<usize>),
    /// Workers by memory domain, in likwid's spirit: `M0:2,M1:2` puts two
    /// workers on the CPUs of NUMA node 0, then two on node 1 (compact
    /// within each node).
    Domains(Vec<(usize, usize)>),
}

impl FromStr for PinSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(PinSpec::Auto),
            "none" => Ok(PinSpec::None),
            "compact" => Ok(PinSpec::Compact),
            "spread" => Ok(PinSpec::Spread),
            domains if domains.starts_with('M') => parse_domains(domains).map(PinSpec::Domains),
            list => parse_cpu_list(list).map(PinSpec::List).map_err(|e| {
                format!(
                    "{e} (expected auto, none, compact, spread, a CPU list like 0-3,8 or NUMA nodes like M0:2,M1:2)"
                )
            }),
        }
    }
}

/// `M0:2,M1:2`: (node, workers) pairs.
fn parse_domains(text: &str) -> Result<Vec<(usize, usize)>, String> {
    let bad = |part: &str| format!("'{part}' is not a memory domain (expected M<node>:<workers>, as in M0:2,M1:2)");
    let mut out = Vec::new();
    for part in text.split(',') {
        let (node, count) = part.strip_prefix('M').and_then(|p| p.split_once(':')).ok_or_else(|| bad(part))?;
        let node: usize = node.parse().map_err(|_| bad(part))?;
        let count: usize = count.parse().map_err(|_| bad(part))?;
        if count == 0 || node > 4095 || count > 4096 {
            return Err(bad(part));
        }
        out.push((node, count));
    }
    Ok(out)
}

impl fmt::Display for PinSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinSpec::Auto => f.write_str("auto"),
            PinSpec::None => f.write_str("none"),
            PinSpec::Compact => f.write_str("compact"),
            PinSpec::Spread => f.write_str("spread"),
            PinSpec::List(l) => f.write_str(&format_cpu_list(l)),
            PinSpec::Domains(d) => {
                let parts: Vec<String> = d.iter().map(|(n, c)| format!("M{n}:{c}")).collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

impl From<PinSpec> for String {
    fn from(p: PinSpec) -> String {
        p.to_string()
    }
}

impl TryFrom<String> for PinSpec {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// A CPU's place in the machine: its NUMA node, package and core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) cpu: usize,
    pub(crate) node: usize,
    pub(crate) package: usize,
    pub(crate) core: usize,
}

/// Where each CPU of `cpus` is, from sysfs and `topology`.
pub(crate) fn places(cpus: &[usize], topology: &super::numa::Topology) -> Vec<Place> {
    cpus.iter()
        .map(|&cpu| {
            let read = |name: &str| -> Option<usize> {
                super::host::read_small(format!("/sys/devices/system/cpu/cpu{cpu}/topology/{name}"))?
                    .trim()
                    .parse()
                    .ok()
            };
            Place {
                cpu,
                node: topology.node_of_cpu(cpu).unwrap_or(0),
                package: read("physical_package_id").unwrap_or(0),
                core: read("core_id").unwrap_or(cpu),
            }
        })
        .collect()
}

/// The order in which `compact` or `spread` hands out the CPUs of
/// `places`. Compact fills a node (core by core) before the next; spread
/// gives every node a worker before any node gets a second, alternating
/// packages, and every core of a node one before any gets a second thread.
pub(crate) fn placement_order(spec: &PinSpec, places: &[Place]) -> Vec<usize> {
    let mut places = places.to_vec();
    places.sort_by_key(|p| (p.node, p.package, p.core, p.cpu));
    if *spec != PinSpec::Spread {
        return places.iter().map(|p| p.cpu).collect();
    }
    use std::collections::HashMap;
    // Nodes in the order they are visited: the first node of every package,
    // then the second of every package, …
    let mut nodes: Vec<(usize, usize)> = places.iter().map(|p| (p.node, p.package)).collect();
    nodes.dedup();
    let mut seen_in_package: HashMap<usize, usize> = HashMap::new();
    let mut node_rank: HashMap<usize, (usize, usize)> = HashMap::new();
    for &(node, package) in &nodes {
        let k = seen_in_package.entry(package).or_insert(0);
        node_rank.entry(node).or_insert((*k, package));
        *k += 1;
    }
    // Each CPU: (its index among its core's threads, the core's index
    // within its node, the node's visiting rank).
    // (thread index, core index, node rank, node, cpu), sorted.
    type Ranked = (usize, usize, (usize, usize), usize, usize);
    let mut ranked: Vec<Ranked> = Vec::new();
    let mut core_index: HashMap<(usize, usize, usize), usize> = HashMap::new();
    let mut cores_in_node: HashMap<usize, usize> = HashMap::new();
    let mut thread_index: HashMap<(usize, usize, usize), usize> = HashMap::new();
    for p in &places {
        let key = (p.node, p.package, p.core);
        let ci = *core_index.entry(key).or_insert_with(|| {
            let n = cores_in_node.entry(p.node).or_insert(0);
            *n += 1;
            *n - 1
        });
        let ti = thread_index.entry(key).or_insert(0usize);
        ranked.push((*ti, ci, node_rank[&p.node], p.node, p.cpu));
        *ti += 1;
    }
    ranked.sort_unstable();
    ranked.into_iter().map(|(_, _, _, _, cpu)| cpu).collect()
}

/// Why a pin request cannot be honoured.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum PinOutsideMask {
    /// A listed CPU is outside the affinity mask.
    #[error("--pin {requested}: CPU {cpu} is outside the CPUs this process may use ({allowed})")]
    Cpu {
        /// The list as given.
        requested: String,
        /// The first CPU outside the mask.
        cpu: usize,
        /// The allowed set, in list form.
        allowed: String,
    },
    /// A memory domain has no CPU this process may use.
    #[error("--pin {requested}: NUMA node {node} has no CPU this process may use (nodes with CPUs here: {nodes})")]
    Node {
        /// The spec as given.
        requested: String,
        /// The node.
        node: usize,
        /// The nodes that have allowed CPUs.
        nodes: String,
    },
}

/// The CPU each worker should be pinned to (`None`: unpinned). `room` is how
/// many workers can each have a CPU of their own (the allowed CPUs, lowered
/// by a CPU quota).
pub(crate) fn pin_plan(
    spec: &PinSpec,
    places: &[Place],
    room: usize,
    workers: usize,
) -> Result<Vec<Option<usize>>, PinOutsideMask> {
    let allowed: Vec<usize> = places.iter().map(|p| p.cpu).collect();
    let order = match spec {
        PinSpec::Auto if workers <= room && workers <= allowed.len() => placement_order(&PinSpec::Compact, places),
        PinSpec::None | PinSpec::Auto => return Ok(vec![None; workers]),
        PinSpec::List(list) => {
            if let Some(&cpu) = list.iter().find(|c| !allowed.contains(c)) {
                return Err(PinOutsideMask::Cpu {
                    requested: format_cpu_list(list),
                    cpu,
                    allowed: format_cpu_list(&allowed),
                });
            }
            list.clone()
        }
        PinSpec::Domains(domains) => {
            // k workers on node n: node n's CPUs in compact order, round
            // robin when k exceeds them.
            let mut plan = Vec::new();
            for &(node, count) in domains {
                let mine: Vec<Place> = places.iter().copied().filter(|p| p.node == node).collect();
                if mine.is_empty() {
                    let mut nodes: Vec<usize> = places.iter().map(|p| p.node).collect();
                    nodes.sort_unstable();
                    nodes.dedup();
                    return Err(PinOutsideMask::Node {
                        requested: spec.to_string(),
                        node,
                        nodes: format_cpu_list(&nodes),
                    });
                }
                let order = placement_order(&PinSpec::Compact, &mine);
                plan.extend((0..count).map(|k| order[k % order.len()]));
            }
            plan
        }
        PinSpec::Compact | PinSpec::Spread => placement_order(spec, places),
    };
    if order.is_empty() {
        return Ok(vec![None; workers]);
    }
    Ok((0..workers).map(|w| Some(order[w % order.len()])).collect())
}

/// What became of a worker's pin request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PinOutcome {
    /// No pin was requested.
    Unpinned,
    /// Pinned to this CPU.
    Pinned {
        /// The CPU.
        cpu: usize,
    },
    /// The kernel refused; the worker runs unpinned.
    Refused {
        /// The CPU asked for.
        cpu: usize,
        /// The kernel's answer.
        error: String,
    },
}

impl PinOutcome {
    /// Whether the worker is pinned.
    pub fn is_pinned(&self) -> bool {
        matches!(self, PinOutcome::Pinned { .. })
    }

    /// The CPU asked for, if any.
    pub fn requested(&self) -> Option<usize> {
        match self {
            PinOutcome::Unpinned => None,
            PinOutcome::Pinned { cpu } | PinOutcome::Refused { cpu, .. } => Some(*cpu),
        }
    }
}

/// Pins the calling thread to `cpu` (if any) and says what happened.
pub(crate) fn pin_current_thread(cpu: Option<usize>) -> PinOutcome {
    let Some(cpu) = cpu else { return PinOutcome::Unpinned };
    let mut set = CpuSet::new();
    if let Err(e) = set.set(cpu) {
        return PinOutcome::Refused { cpu, error: e.desc().to_string() };
    }
    match sched_setaffinity(Pid::from_raw(0), &set) {
        Ok(()) => PinOutcome::Pinned { cpu },
        Err(e) => PinOutcome::Refused { cpu, error: format!("{} ({})", e.desc(), e) },
    }
}

/// Pins the calling thread for as long as the guard lives, then gives it
/// back its original mask (serial mode pins the coordinator's own thread,
/// which a sweep goes on using).
#[derive(Debug)]
pub(crate) struct PinnedHere {
    original: Option<CpuSet>,
    /// What became of the pin request.
    pub(crate) outcome: PinOutcome,
}

impl PinnedHere {
    /// Pins the calling thread to `cpu` (if any).
    pub(crate) fn pin(cpu: Option<usize>) -> PinnedHere {
        let original = cpu.and_then(|_| sched_getaffinity(Pid::from_raw(0)).ok());
        PinnedHere { original, outcome: pin_current_thread(cpu) }
    }
}

impl Drop for PinnedHere {
    fn drop(&mut self) {
        if let Some(mask) = &self.original {
            let _ = sched_setaffinity(Pid::from_raw(0), mask);
        }
    }
}

/// The CPU the calling thread is running on now.
pub(crate) fn current_cpu() -> Option<u32> {
    nix::sched::sched_getcpu().ok().map(|c| c as u32)
}

/// What narrowed the CPUs this process may use to fewer than the
/// machine's: where its affinity mask came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CpusSetBy {
    /// Nothing: every online CPU.
    #[default]
    Nothing,
    /// A Slurm job step's cgroup cpuset (`task/cgroup` with
    /// `ConstrainCores=yes`).
    SlurmStep {
        /// The job id.
        job: String,
        /// The step (`0`, `batch`, …).
        step: String,
        /// Its cgroup directory.
        cgroup: std::path::PathBuf,
    },
    /// A container's cgroup cpuset (`docker --cpuset-cpus`, a Kubernetes
    /// CPU manager, …).
    Container {
        /// Its cgroup directory.
        cgroup: std::path::PathBuf,
    },
    /// Another cgroup's cpuset.
    Cpuset {
        /// Its cgroup directory.
        cgroup: std::path::PathBuf,
    },
    /// An affinity mask narrower than the cpuset, set by what started this
    /// process.
    AffinityMask {
        /// Who set it, as far as the environment tells.
        by: String,
    },
}

impl CpusSetBy {
    /// Judges where `allowed` (the affinity mask) came from, given the
    /// number of online CPUs, this process's cpuset cgroup (its directory
    /// and CPUs), and the environment (`get`).
    pub(crate) fn judge(
        allowed: &[usize],
        online: usize,
        cpuset: Option<&(std::path::PathBuf, Vec<usize>)>,
        container: bool,
        get: impl Fn(&str) -> Option<String>,
    ) -> CpusSetBy {
        let narrower_than_cpuset = cpuset.is_some_and(|(_, cpus)| allowed.len() < cpus.len());
        let mask = || {
            // mpirun first: across nodes its daemons run as srun tasks, so
            // its ranks carry Slurm's variables too.
            let by = if get("OMPI_COMM_WORLD_RANK").is_some() {
                "mpirun's binding (--bind-to)"
            } else if get("SLURM_STEP_ID").is_some() {
                "Slurm's CPU binding (srun --cpu-bind)"
            } else {
                "the process that started vecpar (taskset, numactl, a launcher's binding)"
            };
            CpusSetBy::AffinityMask { by: by.into() }
        };
        if narrower_than_cpuset {
            return mask();
        }
        match cpuset {
            Some((dir, cpus)) if cpus.len() < online => {
                let cgroup = dir.clone();
                let parts: Vec<String> = dir.iter().map(|c| c.to_string_lossy().into_owned()).collect();
                let find = |prefix: &str| parts.iter().find_map(|p| p.strip_prefix(prefix).map(str::to_string));
                if let (Some(job), Some(step)) = (find("job_"), find("step_")) {
                    return CpusSetBy::SlurmStep { job, step, cgroup };
                }
                let text = dir.to_string_lossy();
                let known = ["docker", "kubepods", "containerd", "libpod", "lxc", "crio"];
                if container || known.iter().any(|k| text.contains(k)) {
                    CpusSetBy::Container { cgroup }
                } else {
                    CpusSetBy::Cpuset { cgroup }
                }
            }
            _ if allowed.len() < online => mask(),
            _ => CpusSetBy::Nothing,
        }
    }
}

impl fmt::Display for CpusSetBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpusSetBy::Nothing => f.write_str("every online CPU"),
            CpusSetBy::SlurmStep { job, step, cgroup } => {
                write!(f, "Slurm job {job} step {step}'s cpuset, {}", cgroup.display())
            }
            CpusSetBy::Container { cgroup } => write!(f, "the container's cpuset, {}", cgroup.display()),
            CpusSetBy::Cpuset { cgroup } => write!(f, "the cgroup cpuset {}", cgroup.display()),
            CpusSetBy::AffinityMask { by } => write!(f, "an affinity mask set by {by}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_in_taskset_grammar_keep_their_order() {
        assert_eq!(parse_cpu_list("0-3,8").unwrap(), vec![0, 1, 2, 3, 8]);
        assert_eq!(parse_cpu_list("0-10:4").unwrap(), vec![0, 4, 8]);
        assert_eq!(parse_cpu_list("5, 1,5").unwrap(), vec![5, 1, 5], "order and repeats as given");
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a").is_err());
        assert!(parse_cpu_list("1,,2").is_err());
        assert!(parse_cpu_list("0-4:0").is_err());
        assert!(parse_cpu_list("0-99999999999").is_err(), "no list of billions");
        assert_eq!(format_cpu_list(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(format_cpu_list(&[3, 1]), "3,1");
        assert_eq!(format_cpu_list(&[]), "");
    }

    #[test]
    fn pin_specs_parse_and_print() {
        assert_eq!("spread".parse::<PinSpec>().unwrap(), PinSpec::Spread);
        assert_eq!("3,1".parse::<PinSpec>().unwrap(), PinSpec::List(vec![3, 1]));
        assert_eq!(PinSpec::List(vec![3, 1]).to_string(), "3,1");
        assert!("sideways".parse::<PinSpec>().is_err());
    }

    /// Places of a made-up machine: (cpu, node, package, core).
    fn machine(cpus: &[(usize, usize, usize, usize)]) -> Vec<Place> {
        cpus.iter().map(|&(cpu, node, package, core)| Place { cpu, node, package, core }).collect()
    }

    #[test]
    fn plans_follow_the_list_order_and_stay_inside_the_mask() {
        let places = machine(&[(0, 0, 0, 0), (1, 0, 0, 1), (2, 0, 0, 2), (3, 0, 0, 3)]);
        let allowed = [0, 1, 2, 3];
        assert_eq!(pin_plan(&PinSpec::List(vec![3, 1]), &places, 4, 3).unwrap(), [Some(3), Some(1), Some(3)]);
        for spec in [PinSpec::Compact, PinSpec::Spread] {
            let plan = pin_plan(&spec, &places, 4, 8).unwrap();
            assert!(plan.iter().all(|c| allowed.contains(&c.unwrap())));
            let first: std::collections::HashSet<_> = plan.iter().take(4).collect();
            assert_eq!(first.len(), 4, "round robin: the first four use distinct CPUs");
        }
        assert_eq!(pin_plan(&PinSpec::None, &places, 4, 3).unwrap(), vec![None; 3]);
        assert!(pin_plan(&PinSpec::Auto, &places, 4, 4).unwrap().iter().all(Option::is_some));
        assert!(pin_plan(&PinSpec::Auto, &places, 4, 5).unwrap().iter().all(Option::is_none));
        assert!(pin_plan(&PinSpec::Auto, &places, 1, 2).unwrap().iter().all(Option::is_none), "a quota of 1 CPU");
        let err = pin_plan(&PinSpec::List(vec![9]), &places, 4, 2).unwrap_err();
        assert_eq!(err.to_string(), "--pin 9: CPU 9 is outside the CPUs this process may use (0-3)");
    }

    #[test]
    fn spread_visits_every_node_first_and_compact_fills_one() {
        // Two packages of two NUMA nodes each (NPS2), two cores per node,
        // SMT siblings numbered +8.
        let mut cpus = Vec::new();
        for cpu in 0..8 {
            let node = cpu / 2;
            cpus.push((cpu, node, node / 2, cpu));
            cpus.push((cpu + 8, node, node / 2, cpu));
        }
        let places = machine(&cpus);
        let node = |cpu: usize| places.iter().find(|p| p.cpu == cpu).unwrap().node;
        let spread: Vec<usize> = pin_plan(&PinSpec::Spread, &places, 16, 16).unwrap().into_iter().flatten().collect();
        let first_nodes: Vec<usize> = spread[..4].iter().map(|&c| node(c)).collect();
        assert_eq!(first_nodes, vec![0, 2, 1, 3], "every node once, alternating packages");
        assert!(spread[..8].iter().all(|&c| c < 8), "every core before a second thread: {spread:?}");
        let compact: Vec<usize> = pin_plan(&PinSpec::Compact, &places, 16, 16).unwrap().into_iter().flatten().collect();
        let compact_nodes: Vec<usize> = compact.iter().map(|&c| node(c)).collect();
        assert_eq!(&compact_nodes[..4], &[0, 0, 0, 0], "a node filled before the next: {compact:?}");
    }

    #[test]
    fn memory_domains_put_workers_on_their_nodes() {
        let places = machine(&[(0, 0, 0, 0), (1, 0, 0, 1), (2, 1, 0, 2), (3, 1, 0, 3)]);
        let spec: PinSpec = "M1:3,M0:1".parse().unwrap();
        assert_eq!(spec.to_string(), "M1:3,M0:1");
        assert_eq!(pin_plan(&spec, &places, 4, 4).unwrap(), [Some(2), Some(3), Some(2), Some(0)]);
        let err = pin_plan(&"M5:1".parse().unwrap(), &places, 4, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--pin M5:1: NUMA node 5 has no CPU this process may use (nodes with CPUs here: 0-1)"
        );
        for bad in ["M0", "M0:0", "Mx:1", "M0:1,N1:1"] {
            assert!(bad.parse::<PinSpec>().unwrap_err().contains("memory domain"), "{bad}");
        }
    }

    #[test]
    fn where_the_cpus_came_from_is_named() {
        use std::path::PathBuf;
        let none = |_: &str| None;
        let slurm = |n: &str| (n == "SLURM_STEP_ID").then(|| "0".to_string());
        let step = (PathBuf::from("/sys/fs/cgroup/cpuset/slurm_vpn1/uid_0/job_12/step_0"), vec![1]);
        assert_eq!(
            CpusSetBy::judge(&[1], 2, Some(&step), false, slurm),
            CpusSetBy::SlurmStep { job: "12".into(), step: "0".into(), cgroup: step.0.clone() }
        );
        let batch = (PathBuf::from("/sys/fs/cgroup/cpuset/slurm_vpn1/uid_0/job_3/step_batch"), vec![0, 1]);
        assert!(matches!(CpusSetBy::judge(&[0, 1], 4, Some(&batch), false, none), CpusSetBy::SlurmStep { .. }));
        // Narrower than the step's cpuset: srun's binding.
        let two = (step.0.clone(), vec![0, 1]);
        let by = CpusSetBy::judge(&[1], 4, Some(&two), false, slurm);
        assert!(matches!(&by, CpusSetBy::AffinityMask { by } if by.contains("srun")), "{by:?}");
        // taskset on an unrestricted machine.
        let root = (PathBuf::from("/sys/fs/cgroup/cpuset"), vec![0, 1]);
        let by = CpusSetBy::judge(&[0], 2, Some(&root), false, none);
        assert!(matches!(&by, CpusSetBy::AffinityMask { by } if by.contains("taskset")), "{by:?}");
        assert_eq!(CpusSetBy::judge(&[0, 1], 2, Some(&root), false, none), CpusSetBy::Nothing);
        // Containers, by their cgroup or by what the runtime left.
        let docker = (PathBuf::from("/sys/fs/cgroup/cpuset/docker/abc"), vec![2, 3]);
        assert!(matches!(CpusSetBy::judge(&[2, 3], 8, Some(&docker), false, none), CpusSetBy::Container { .. }));
        let plain = (PathBuf::from("/sys/fs/cgroup/cpuset/bench"), vec![2, 3]);
        assert!(matches!(CpusSetBy::judge(&[2, 3], 8, Some(&plain), true, none), CpusSetBy::Container { .. }));
        assert!(matches!(CpusSetBy::judge(&[2, 3], 8, Some(&plain), false, none), CpusSetBy::Cpuset { .. }));
        // No cpuset to read: a mask narrower than the machine is a mask.
        assert!(matches!(CpusSetBy::judge(&[0], 2, None, false, none), CpusSetBy::AffinityMask { .. }));
    }
}
