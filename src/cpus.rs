//! Which CPUs this process may use, how many workers that allows, and where
//! each worker is pinned.
//!
//! Nothing here assumes the machine's CPU ids are usable: in a container with
//! a cpuset, ids are not renumbered, and pinning worker `i` to CPU `i` fails.
//! The allowed set is read from the affinity mask (`sched_getaffinity`), the
//! default worker count is [`std::thread::available_parallelism`] (the mask
//! and the cgroup CPU quota), and every pin plan stays inside the mask. A pin
//! the kernel refuses is reported, and the worker runs unpinned.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// The CPUs in this process's affinity mask, ascending.
pub fn allowed_cpus() -> Vec<usize> {
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect(),
        // More CPUs than a cpu_set_t holds (EINVAL): fall back to counting.
        Err(_) => {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..n).collect()
        }
    }
}

/// A cgroup CPU bandwidth limit (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuQuota {
    /// Microseconds of CPU time per period.
    pub quota_us: u64,
    /// The period in microseconds.
    pub period_us: u64,
    /// The file the limit was read from.
    pub file: PathBuf,
}

impl CpuQuota {
    /// The limit in CPUs (may be fractional).
    pub fn cpus(&self) -> f64 {
        self.quota_us as f64 / self.period_us as f64
    }
}

/// The tightest CPU quota on this process's cgroup path, if any is set.
pub fn cgroup_cpu_quota() -> Option<CpuQuota> {
    let cgroups = fs::read_to_string("/proc/self/cgroup").ok()?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<CpuQuota> = None;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let v2 = controllers.is_empty();
        if !v2 && !controllers.split(',').any(|c| c == "cpu") {
            continue;
        }
        let Some(mount) = cgroup_mount(&mountinfo, v2) else { continue };
        let mut dir = mount.join(path.trim_start_matches('/'));
        loop {
            let quota = if v2 { read_cpu_max(&dir) } else { read_cfs_quota(&dir) };
            if let Some(q) = quota
                && best.as_ref().is_none_or(|b| q.cpus() < b.cpus())
            {
                best = Some(q);
            }
            if dir == mount || !dir.pop() || !dir.starts_with(&mount) {
                break;
            }
        }
    }
    best
}

fn cgroup_mount(mountinfo: &str, v2: bool) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mount_point = left.split_whitespace().nth(4)?;
        let mut right = right.split_whitespace();
        let fstype = right.next()?;
        let options = right.nth(1).unwrap_or("");
        let wanted =
            if v2 { fstype == "cgroup2" } else { fstype == "cgroup" && options.split(',').any(|o| o == "cpu") };
        wanted.then(|| PathBuf::from(mount_point))
    })
}

fn read_cpu_max(dir: &Path) -> Option<CpuQuota> {
    let file = dir.join("cpu.max");
    let text = fs::read_to_string(&file).ok()?;
    let mut it = text.split_whitespace();
    let quota = it.next()?.parse().ok()?; // "max" fails to parse: no limit
    let period = it.next()?.parse().ok()?;
    Some(CpuQuota { quota_us: quota, period_us: period, file })
}

fn read_cfs_quota(dir: &Path) -> Option<CpuQuota> {
    let file = dir.join("cpu.cfs_quota_us");
    let quota: i64 = fs::read_to_string(&file).ok()?.trim().parse().ok()?;
    let period: u64 = fs::read_to_string(dir.join("cpu.cfs_period_us")).ok()?.trim().parse().ok()?;
    (quota > 0).then_some(CpuQuota { quota_us: quota as u64, period_us: period, file })
}

/// Where the number of workers came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProcsSource {
    /// Given with `--procs`.
    Flag,
    /// The CPUs in the affinity mask.
    AffinityMask {
        /// The allowed CPUs, in taskset's list form.
        cpus: String,
    },
    /// A cgroup CPU quota lower than the affinity mask.
    CgroupQuota {
        /// The quota in CPUs.
        cpus: f64,
        /// The file it was read from.
        file: String,
    },
}

impl fmt::Display for ProcsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcsSource::Flag => f.write_str("from --procs"),
            ProcsSource::AffinityMask { cpus } => write!(f, "the CPUs this process may use: {cpus}"),
            ProcsSource::CgroupQuota { cpus, file } => write!(f, "cgroup CPU quota of {cpus:.2} CPUs ({file})"),
        }
    }
}

/// The default worker count and why.
pub fn default_procs(allowed: &[usize]) -> (usize, ProcsSource) {
    let n = std::thread::available_parallelism().map_or(allowed.len().max(1), |n| n.get());
    if n < allowed.len()
        && let Some(q) = cgroup_cpu_quota()
    {
        return (n, ProcsSource::CgroupQuota { cpus: q.cpus(), file: q.file.display().to_string() });
    }
    (n, ProcsSource::AffinityMask { cpus: format_cpu_list(allowed) })
}

/// Parses a CPU list in taskset's `--cpu-list` grammar: `0-3,8,10-20:2`.
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>, String> {
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
        cpus.extend((lo..=hi).step_by(stride));
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

fn parse_cpu(text: &str, item: &str) -> Result<usize, String> {
    text.trim().parse().map_err(|_| format!("'{item}' is not a CPU number or range"))
}

/// Formats CPUs as taskset's list: `0-3,8`.
pub fn format_cpu_list(cpus: &[usize]) -> String {
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

/// How to place workers on CPUs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
    /// Worker i on the i-th CPU of the list (round robin).
    List(Vec<usize>),
}

impl FromStr for PinSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(PinSpec::Auto),
            "none" => Ok(PinSpec::None),
            "compact" => Ok(PinSpec::Compact),
            "spread" => Ok(PinSpec::Spread),
            list => parse_cpu_list(list)
                .map(PinSpec::List)
                .map_err(|e| format!("{e} (expected auto, none, compact, spread or a CPU list like 0-3,8)")),
        }
    }
}

impl fmt::Display for PinSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinSpec::Auto => f.write_str("auto"),
            PinSpec::None => f.write_str("none"),
            PinSpec::Compact => f.write_str("compact"),
            PinSpec::Spread => f.write_str("spread"),
            PinSpec::List(l) => f.write_str(&format_cpu_list(l)),
        }
    }
}

/// A CPU's place in the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Place {
    cpu: usize,
    package: usize,
    core: usize,
}

fn place(cpu: usize) -> Place {
    let read = |name: &str| -> Option<usize> {
        crate::sysinfo::read_small(&format!("/sys/devices/system/cpu/cpu{cpu}/topology/{name}"))?.trim().parse().ok()
    };
    Place { cpu, package: read("physical_package_id").unwrap_or(0), core: read("core_id").unwrap_or(cpu) }
}

/// The order in which `compact` or `spread` hands out the allowed CPUs.
fn placement_order(spec: &PinSpec, allowed: &[usize]) -> Vec<usize> {
    let mut places: Vec<Place> = allowed.iter().map(|&c| place(c)).collect();
    places.sort_by_key(|p| (p.package, p.core, p.cpu));
    if *spec == PinSpec::Compact {
        return places.iter().map(|p| p.cpu).collect();
    }
    // Spread: rank each CPU by (its index among its core's threads, the
    // core's index within its package), then alternate packages.
    let mut ranked: Vec<(usize, usize, usize, usize)> = Vec::new();
    let mut core_index = std::collections::HashMap::new();
    let mut thread_index = std::collections::HashMap::new();
    for p in &places {
        let next_core = core_index.iter().filter(|((pkg, _), _)| *pkg == p.package).count();
        let ci = *core_index.entry((p.package, p.core)).or_insert(next_core);
        let ti = thread_index.entry((p.package, p.core)).or_insert(0usize);
        ranked.push((*ti, ci, p.package, p.cpu));
        *ti += 1;
    }
    ranked.sort_unstable();
    ranked.into_iter().map(|(_, _, _, cpu)| cpu).collect()
}

/// Why a pin request cannot be honoured.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("--pin {requested}: CPU {cpu} is outside the CPUs this process may use ({allowed})")]
pub struct PinOutsideMask {
    /// The list as given.
    pub requested: String,
    /// The first CPU outside the mask.
    pub cpu: usize,
    /// The allowed set, in list form.
    pub allowed: String,
}

/// The CPU each worker should be pinned to (`None`: unpinned).
pub fn pin_plan(spec: &PinSpec, allowed: &[usize], workers: usize) -> Result<Vec<Option<usize>>, PinOutsideMask> {
    let order = match spec {
        PinSpec::Auto if workers <= allowed.len() => placement_order(&PinSpec::Compact, allowed),
        PinSpec::None | PinSpec::Auto => return Ok(vec![None; workers]),
        PinSpec::List(list) => {
            if let Some(&cpu) = list.iter().find(|c| !allowed.contains(c)) {
                return Err(PinOutsideMask {
                    requested: format_cpu_list(list),
                    cpu,
                    allowed: format_cpu_list(allowed),
                });
            }
            list.clone()
        }
        PinSpec::Compact | PinSpec::Spread => placement_order(spec, allowed),
    };
    if order.is_empty() {
        return Ok(vec![None; workers]);
    }
    Ok((0..workers).map(|w| Some(order[w % order.len()])).collect())
}

/// What became of a worker's pin request. (Crosses IPC, whose wire format
/// is not self-describing: no serde tag attributes here.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// Pins the calling thread to `cpu` (if any) and says what happened.
pub fn pin_current_thread(cpu: Option<usize>) -> PinOutcome {
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
pub struct PinnedHere {
    original: Option<CpuSet>,
    /// What became of the pin request.
    pub outcome: PinOutcome,
}

impl PinnedHere {
    /// Pins the calling thread to `cpu` (if any).
    pub fn pin(cpu: Option<usize>) -> PinnedHere {
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
pub fn current_cpu() -> Option<usize> {
    nix::sched::sched_getcpu().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_in_taskset_grammar() {
        assert_eq!(parse_cpu_list("0-3,8").unwrap(), vec![0, 1, 2, 3, 8]);
        assert_eq!(parse_cpu_list("0-10:4").unwrap(), vec![0, 4, 8]);
        assert_eq!(parse_cpu_list("5, 1,5").unwrap(), vec![1, 5]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a").is_err());
        assert!(parse_cpu_list("1,,2").is_err());
        assert!(parse_cpu_list("0-4:0").is_err());
        assert_eq!(format_cpu_list(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(format_cpu_list(&[]), "");
    }

    #[test]
    fn pin_specs_parse() {
        assert_eq!("spread".parse::<PinSpec>().unwrap(), PinSpec::Spread);
        assert_eq!("1,3".parse::<PinSpec>().unwrap(), PinSpec::List(vec![1, 3]));
        assert!("sideways".parse::<PinSpec>().is_err());
    }

    #[test]
    fn plans_stay_inside_the_mask() {
        let allowed = allowed_cpus();
        for spec in [PinSpec::Compact, PinSpec::Spread] {
            let plan = pin_plan(&spec, &allowed, 8).unwrap();
            assert_eq!(plan.len(), 8);
            assert!(plan.iter().all(|c| allowed.contains(&c.unwrap())));
            // Round robin: the first |allowed| workers use distinct CPUs.
            let first: std::collections::HashSet<_> = plan.iter().take(allowed.len()).collect();
            assert_eq!(first.len(), allowed.len().min(8));
        }
        assert_eq!(pin_plan(&PinSpec::None, &allowed, 3).unwrap(), vec![None; 3]);
        let fit = pin_plan(&PinSpec::Auto, &allowed, allowed.len()).unwrap();
        assert!(fit.iter().all(Option::is_some), "auto pins when every worker has a CPU");
        assert!(pin_plan(&PinSpec::Auto, &allowed, allowed.len() + 1).unwrap().iter().all(Option::is_none));
        let outside = allowed.iter().max().unwrap() + 1;
        let err = pin_plan(&PinSpec::List(vec![outside]), &allowed, 2).unwrap_err();
        assert_eq!(err.cpu, outside);
        assert!(err.to_string().contains("outside the CPUs this process may use"));
    }

    #[test]
    fn the_default_count_is_what_std_counts() {
        let allowed = allowed_cpus();
        let (n, _) = default_procs(&allowed);
        assert_eq!(n, std::thread::available_parallelism().unwrap().get());
    }
}
