//! The cgroups this process lives in (v1 and v2), read in one place: CPU
//! quota, memory limit, CPU throttling and OOM kills, each over the whole
//! ancestry — a limit on a parent cgroup binds its children too.
//!
//! The directory of a controller's cgroup is found from `/proc/self/cgroup`
//! (the path within the hierarchy) and `/proc/self/mountinfo` (where that
//! hierarchy, or part of it, is mounted), so a container that mounts only
//! its own subtree works too.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::host::read_small;

/// The cgroup directories of this process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cgroups {
    /// (controller, this process's directory, the mount point it lies under, v2)
    dirs: Vec<(String, PathBuf, PathBuf, bool)>,
}

/// A CPU bandwidth limit (v2 `cpu.max`, v1 `cpu.cfs_quota_us`).
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

/// A memory limit and what is left under it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryLimit {
    /// The limit in bytes.
    pub limit: u64,
    /// Limit minus current usage.
    pub headroom: u64,
    /// The file the limit was read from.
    pub file: PathBuf,
}

/// Throttling counters of the cgroup that holds a CPU quota.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttling {
    /// Periods in which the group was throttled.
    pub nr_throttled: u64,
    /// Time spent throttled, microseconds.
    pub throttled_us: u64,
    /// The `cpu.stat` read.
    pub file: PathBuf,
}

impl Cgroups {
    /// This process's cgroups.
    pub(crate) fn detect() -> Cgroups {
        let (Some(cgroups), Some(mountinfo)) = (read_small("/proc/self/cgroup"), read_small("/proc/self/mountinfo"))
        else {
            return Cgroups::default();
        };
        Cgroups::parse(&cgroups, &mountinfo)
    }

    /// From the texts of `/proc/self/cgroup` and `/proc/self/mountinfo`.
    pub(crate) fn parse(cgroups: &str, mountinfo: &str) -> Cgroups {
        let mounts: Vec<(String, String, String, String)> = mountinfo
            .lines()
            .filter_map(|line| {
                let (left, right) = line.split_once(" - ")?;
                let mut l = left.split_whitespace();
                let root = l.nth(3)?.to_string();
                let point = l.next()?.to_string();
                let mut r = right.split_whitespace();
                let fstype = r.next()?.to_string();
                let options = r.nth(1).unwrap_or("").to_string();
                Some((root, point, fstype, options))
            })
            .collect();
        let mut dirs = Vec::new();
        for line in cgroups.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let v2 = controllers.is_empty();
            let mount = mounts.iter().find(|(_, _, fstype, options)| {
                if v2 {
                    fstype == "cgroup2"
                } else {
                    fstype == "cgroup" && controllers.split(',').all(|c| options.split(',').any(|o| o == c))
                }
            });
            let Some((root, point, _, _)) = mount else { continue };
            let relative = Path::new(path).strip_prefix(root).map(Path::to_path_buf).unwrap_or_default();
            let point = PathBuf::from(point);
            let dir = point.join(relative);
            let names: Vec<String> =
                if v2 { vec!["".into()] } else { controllers.split(',').map(str::to_string).collect() };
            for c in names {
                dirs.push((c, dir.clone(), point.clone(), v2));
            }
        }
        Cgroups { dirs }
    }

    /// The directories holding `controller` (v1), then the v2 one, each
    /// with every ancestor up to its mount point, innermost first.
    fn chains(&self, controller: &str) -> Vec<(Vec<PathBuf>, bool)> {
        let mut out = Vec::new();
        for (c, dir, mount, v2) in &self.dirs {
            if c != controller && !(*v2 && c.is_empty()) {
                continue;
            }
            let mut chain = Vec::new();
            let mut d = dir.clone();
            loop {
                chain.push(d.clone());
                if d == *mount || !d.pop() || !d.starts_with(mount) {
                    break;
                }
            }
            out.push((chain, *v2));
        }
        out
    }

    /// The tightest CPU quota on the way to the root, if any is set.
    pub(crate) fn cpu_quota(&self) -> Option<CpuQuota> {
        let mut best: Option<CpuQuota> = None;
        for (chain, v2) in self.chains("cpu") {
            for dir in chain {
                let quota = if v2 { read_cpu_max(&dir) } else { read_cfs_quota(&dir) };
                if let Some(q) = quota
                    && best.as_ref().is_none_or(|b| q.cpus() < b.cpus())
                {
                    best = Some(q);
                }
            }
        }
        best
    }

    /// This process's cpuset cgroup and the CPUs it allows (v1
    /// `cpuset.effective_cpus`, v2 `cpuset.cpus.effective`), if readable.
    pub(crate) fn cpuset(&self) -> Option<(PathBuf, Vec<usize>)> {
        for (chain, v2) in self.chains("cpuset") {
            let Some(dir) = chain.first() else { continue };
            let names: &[&str] =
                if v2 { &["cpuset.cpus.effective"] } else { &["cpuset.effective_cpus", "cpuset.cpus"] };
            for name in names {
                if let Some(cpus) = read_small(dir.join(name)).and_then(|t| super::cpus::parse_cpu_list(&t).ok()) {
                    return Some((dir.clone(), cpus));
                }
            }
        }
        None
    }

    /// The tightest memory limit on the way to the root: the smallest
    /// limit-minus-usage over this cgroup and every ancestor.
    pub(crate) fn memory_limit(&self) -> Option<MemoryLimit> {
        let mut best: Option<MemoryLimit> = None;
        for (chain, v2) in self.chains("memory") {
            for dir in chain {
                let (limit_file, usage_file) = if v2 {
                    (dir.join("memory.max"), dir.join("memory.current"))
                } else {
                    (dir.join("memory.limit_in_bytes"), dir.join("memory.usage_in_bytes"))
                };
                let Some(limit) = read_small(&limit_file).and_then(|t| t.trim().parse::<u64>().ok()) else {
                    continue; // "max", or no such file
                };
                if limit >= 1 << 60 {
                    continue; // v1's "unlimited"
                }
                let usage = read_small(&usage_file).and_then(|t| t.trim().parse::<u64>().ok()).unwrap_or(0);
                let m = MemoryLimit { limit, headroom: limit.saturating_sub(usage), file: limit_file };
                if best.as_ref().is_none_or(|b| m.headroom < b.headroom) {
                    best = Some(m);
                }
            }
        }
        best
    }

    /// OOM kills so far under every memory limit on the way to the root:
    /// (the limit's file, the count).
    pub(crate) fn oom_kills(&self) -> Vec<(PathBuf, u64)> {
        let mut out = Vec::new();
        for (chain, v2) in self.chains("memory") {
            for dir in chain {
                let (limit_file, events) = if v2 {
                    (dir.join("memory.max"), dir.join("memory.events"))
                } else {
                    (dir.join("memory.limit_in_bytes"), dir.join("memory.oom_control"))
                };
                if let Some(n) = read_small(&events).and_then(|t| field(&t, "oom_kill")) {
                    out.push((limit_file, n));
                }
            }
        }
        out
    }

    /// The throttling counters of the cgroup holding the tightest CPU quota.
    pub(crate) fn throttling(&self) -> Option<Throttling> {
        let quota = self.cpu_quota()?;
        let dir = quota.file.parent()?;
        let file = dir.join("cpu.stat");
        let text = read_small(&file)?;
        let nr_throttled = field(&text, "nr_throttled")?;
        // v2 counts microseconds, v1 nanoseconds.
        let throttled_us =
            field(&text, "throttled_usec").or_else(|| field(&text, "throttled_time").map(|ns| ns / 1000))?;
        Some(Throttling { nr_throttled, throttled_us, file })
    }
}

/// `name value` in a flat-keyed cgroup file.
fn field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == name).then(|| v.trim().parse().ok()).flatten()
    })
}

fn read_cpu_max(dir: &Path) -> Option<CpuQuota> {
    let file = dir.join("cpu.max");
    let text = read_small(&file)?;
    let mut it = text.split_whitespace();
    let quota: u64 = it.next()?.parse().ok()?; // "max" fails to parse: no limit
    let period: u64 = it.next()?.parse().ok()?;
    (quota > 0 && period > 0).then_some(CpuQuota { quota_us: quota, period_us: period, file })
}

fn read_cfs_quota(dir: &Path) -> Option<CpuQuota> {
    let file = dir.join("cpu.cfs_quota_us");
    let quota: i64 = read_small(&file)?.trim().parse().ok()?;
    let period: u64 = read_small(dir.join("cpu.cfs_period_us"))?.trim().parse().ok()?;
    (quota > 0 && period > 0).then_some(CpuQuota { quota_us: quota as u64, period_us: period, file })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
31 25 0:27 / /sys/fs/cgroup/memory rw,relatime shared:10 - cgroup cgroup rw,memory
32 25 0:28 / /sys/fs/cgroup/unified rw,relatime shared:11 - cgroup2 cgroup2 rw
40 25 0:29 /docker/abc /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset";

    #[test]
    fn directories_follow_the_mounts() {
        let cg = Cgroups::parse("4:memory:/a/b\n1:cpu:/\n0::/x\n3:cpuset:/docker/abc/y\n", MOUNTINFO);
        let mem = cg.chains("memory");
        assert_eq!(mem.len(), 2, "v1 memory and the v2 hierarchy");
        assert_eq!(
            mem[0].0,
            ["/sys/fs/cgroup/memory/a/b", "/sys/fs/cgroup/memory/a", "/sys/fs/cgroup/memory"]
                .map(PathBuf::from)
                .to_vec()
        );
        assert_eq!(mem[1].0[0], PathBuf::from("/sys/fs/cgroup/unified/x"));
        // A container that mounts its own subtree: the mount root is stripped.
        let cpuset: Vec<PathBuf> =
            cg.chains("cpuset").into_iter().filter(|(_, v2)| !v2).map(|(c, _)| c[0].clone()).collect();
        assert_eq!(cpuset, [PathBuf::from("/sys/fs/cgroup/cpuset/y")]);
        assert!(Cgroups::parse("", "").chains("cpu").is_empty());
    }

    #[test]
    fn limits_over_the_ancestry() {
        let root = std::env::temp_dir().join(format!("vecpar-cgroup-test-{}", std::process::id()));
        let child = root.join("parent/child");
        std::fs::create_dir_all(&child).unwrap();
        std::fs::write(root.join("parent/memory.max"), "1000000\n").unwrap();
        std::fs::write(root.join("parent/memory.current"), "250000\n").unwrap();
        std::fs::write(child.join("memory.max"), "max\n").unwrap();
        std::fs::write(root.join("parent/memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n").unwrap();
        std::fs::write(root.join("parent/cpu.max"), "50000 100000\n").unwrap();
        std::fs::write(
            root.join("parent/cpu.stat"),
            "usage_usec 9\nnr_periods 4\nnr_throttled 3\nthrottled_usec 1234\n",
        )
        .unwrap();
        let mountinfo = format!("1 1 0:1 / {} rw - cgroup2 cgroup2 rw", root.display());
        let cg = Cgroups::parse("0::/parent/child\n", &mountinfo);
        let m = cg.memory_limit().expect("the parent's limit binds the child");
        assert_eq!((m.limit, m.headroom), (1_000_000, 750_000));
        assert_eq!(m.file, root.join("parent/memory.max"));
        assert_eq!(cg.oom_kills(), vec![(root.join("parent/memory.max"), 2)]);
        let q = cg.cpu_quota().unwrap();
        assert_eq!(q.cpus(), 0.5);
        let t = cg.throttling().unwrap();
        assert_eq!((t.nr_throttled, t.throttled_us), (3, 1234));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
