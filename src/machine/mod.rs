//! Facts about this machine that a run must fit in and that explain its
//! numbers: allowed CPUs and quotas, memory and its limits, page sizes,
//! caches, the process limits of this user.
//!
//! [`Machine::detect`] reads them once; configuration takes a `&Machine`, so
//! it can be tested against any machine without running on it.
#![forbid(unsafe_code)]

pub(crate) mod cgroup;
pub(crate) mod cpus;
pub(crate) mod host;
pub mod numa;

use serde::{Deserialize, Serialize};

pub use cgroup::{CpuQuota, MemoryLimit, Throttling};
pub use cpus::{CpusSetBy, PinOutcome, PinSpec};
pub use host::Cache;
pub use numa::{Node, Topology};

use crate::kernel::Simd;

/// This user's process limit: (processes it may still start, the limit,
/// processes and threads running).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessLimit {
    /// Processes or threads it may still start.
    pub headroom: u64,
    /// `RLIMIT_NPROC`.
    pub limit: u64,
    /// Its processes and threads now.
    pub running: u64,
}

/// What a run must fit in, and what explains its numbers.
#[derive(Clone, Debug)]
pub struct Machine {
    /// CPUs in the affinity mask, ascending.
    pub allowed_cpus: Vec<usize>,
    /// What narrowed them (a Slurm step's cpuset, a container's, taskset).
    pub cpus_set_by: CpusSetBy,
    /// The NUMA nodes.
    pub topology: Topology,
    /// The tightest cgroup CPU quota, if any.
    pub cpu_quota: Option<CpuQuota>,
    /// Logical CPUs online.
    pub online_cpus: usize,
    /// SIMD levels this CPU runs, lowest first.
    pub simd: Vec<Simd>,
    /// The base page size.
    pub page_size: usize,
    /// The default huge page size, if the kernel has huge pages.
    pub huge_page_size: Option<usize>,
    /// Huge pages free for new mappings (`HugePages_Free - HugePages_Rsvd`).
    pub huge_pages_available: u64,
    /// The size of the hugetlb pool, in pages.
    pub huge_pages_total: u64,
    /// `MemAvailable`, bytes.
    pub memory_available: Option<u64>,
    /// The tightest cgroup memory limit on the way to the root.
    pub memory_limit: Option<MemoryLimit>,
    /// Bytes free in /dev/shm.
    pub shm_free: Option<u64>,
    /// The caches of CPU 0.
    pub caches: Vec<Cache>,
    /// `RLIMIT_NPROC` for a non-root user, if finite.
    pub process_limit: Option<ProcessLimit>,
    /// Descriptors this process may still open, and `RLIMIT_NOFILE`.
    pub descriptor_limit: Option<(u64, u64)>,
    /// `RLIMIT_AS` (`ulimit -v`), bytes, if finite.
    pub address_space_limit: Option<u64>,
    /// Bytes this process maps now that it can use (its code, data, heap
    /// and stacks; not address space reserved inaccessible, as malloc's
    /// arenas are, which a limit makes it give up).
    pub mapped_bytes: u64,
}

impl Machine {
    /// Reads this machine.
    pub fn detect() -> Machine {
        let cgroups = cgroup::Cgroups::detect();
        let allowed_cpus = cpus::allowed_cpus();
        let online_cpus = host::online_cpus();
        let container = ["/.dockerenv", "/run/.containerenv"].iter().any(|f| std::path::Path::new(f).exists());
        let cpus_set_by = CpusSetBy::judge(&allowed_cpus, online_cpus, cgroups.cpuset().as_ref(), container, |n| {
            std::env::var(n).ok()
        });
        Machine {
            allowed_cpus,
            cpus_set_by,
            topology: Topology::detect(),
            cpu_quota: cgroups.cpu_quota(),
            online_cpus,
            simd: Simd::supported(),
            page_size: page_size(),
            huge_page_size: huge_page_size(),
            huge_pages_available: host::meminfo("HugePages_Free")
                .unwrap_or(0)
                .saturating_sub(host::meminfo("HugePages_Rsvd").unwrap_or(0)),
            huge_pages_total: host::meminfo("HugePages_Total").unwrap_or(0),
            memory_available: host::meminfo("MemAvailable").map(|kb| kb * 1024),
            memory_limit: cgroups.memory_limit(),
            shm_free: nix::sys::statvfs::statvfs("/dev/shm").ok().map(|st| st.blocks_available() * st.fragment_size()),
            caches: host::caches(),
            process_limit: process_limit(),
            descriptor_limit: descriptor_limit(),
            address_space_limit: address_space_limit(),
            mapped_bytes: mapped_bytes(),
        }
    }

    /// `RLIMIT_AS` (`ulimit -v`) now, bytes, if finite.
    pub(crate) fn address_space_limit_now() -> Option<u64> {
        address_space_limit()
    }

    /// What this process maps now, as [`Machine::mapped_bytes`] counts it.
    pub(crate) fn mapped_bytes_now() -> u64 {
        mapped_bytes()
    }

    /// How many workers can each have a CPU to themselves: the allowed CPUs,
    /// lowered by a CPU quota (at least one).
    pub fn cpu_room(&self) -> usize {
        let mask = self.allowed_cpus.len().max(1);
        match &self.cpu_quota {
            Some(q) => mask.min((q.cpus().floor() as usize).max(1)),
            None => mask,
        }
    }

    /// The size of the last-level data cache, if known.
    pub fn llc_bytes(&self) -> Option<u64> {
        host::llc_bytes(&self.caches)
    }

    /// Memory a new segment can take: `MemAvailable`, lowered to what a
    /// cgroup memory limit leaves.
    pub fn memory_headroom(&self) -> Option<u64> {
        match (self.memory_available, &self.memory_limit) {
            (Some(a), Some(l)) => Some(a.min(l.headroom)),
            (Some(a), None) => Some(a),
            (None, Some(l)) => Some(l.headroom),
            (None, None) => None,
        }
    }
}

/// The base page size of this machine.
pub(crate) fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten().map_or(4096, |p| p as usize)
}

/// The default huge page size (`Hugepagesize` in /proc/meminfo), if any.
pub(crate) fn huge_page_size() -> Option<usize> {
    static SIZE: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| host::meminfo("Hugepagesize").map(|kb| kb as usize * 1024))
}

fn process_limit() -> Option<ProcessLimit> {
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};
    let (soft, _) = getrlimit(Resource::RLIMIT_NPROC).ok()?;
    // Root (with CAP_SYS_RESOURCE or CAP_SYS_ADMIN) is not held to the limit.
    if soft == RLIM_INFINITY || nix::unistd::geteuid().is_root() {
        return None;
    }
    let running = tasks_of(nix::unistd::getuid().as_raw());
    Some(ProcessLimit { headroom: soft.saturating_sub(running), limit: soft, running })
}

/// Processes and threads owned by `uid` (RLIMIT_NPROC counts both).
fn tasks_of(uid: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .flatten()
        .filter(|e| e.file_name().as_encoded_bytes().iter().all(u8::is_ascii_digit))
        .filter_map(|e| host::read_small(e.path().join("status")))
        .filter(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|u| u.split_whitespace().next()?.parse::<u32>().ok())
                == Some(uid)
        })
        .map(|status| {
            status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|t| t.trim().parse().ok()).unwrap_or(1)
        })
        .sum()
}

fn descriptor_limit() -> Option<(u64, u64)> {
    use nix::sys::resource::{Resource, getrlimit};
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let open = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0);
    Some((soft.saturating_sub(open), soft))
}

/// Bytes of this process's mappings that are not inaccessible (`---p`).
fn mapped_bytes() -> u64 {
    let Some(maps) = host::read_small("/proc/self/maps") else { return 0 };
    maps.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (range, perms) = (f.next()?, f.next()?);
            if perms.starts_with("---") {
                return None;
            }
            let (lo, hi) = range.split_once('-')?;
            Some(u64::from_str_radix(hi, 16).ok()? - u64::from_str_radix(lo, 16).ok()?)
        })
        .sum()
}

/// `RLIMIT_FSIZE` (`ulimit -f`), bytes, if finite.
pub(crate) fn file_size_limit() -> Option<u64> {
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};
    getrlimit(Resource::RLIMIT_FSIZE).ok().map(|(soft, _)| soft).filter(|&l| l != RLIM_INFINITY)
}

fn address_space_limit() -> Option<u64> {
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};
    let (soft, _) = getrlimit(Resource::RLIMIT_AS).ok()?;
    (soft != RLIM_INFINITY).then_some(soft)
}

/// What the report shows of the host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Host name.
    pub hostname: String,
    /// CPU model.
    pub cpu_model: String,
    /// SIMD flags of the CPU.
    pub cpu_flags: Vec<String>,
    /// Kernel.
    pub kernel: String,
    /// Caches of CPU 0.
    pub caches: Vec<Cache>,
    /// CPUs this process may run on, taskset list form.
    pub allowed_cpus: String,
    /// What narrowed them.
    #[serde(default)]
    pub cpus_set_by: CpusSetBy,
    /// Logical CPUs online.
    pub online_cpus: usize,
}

impl HostInfo {
    /// Describes `machine` and the host it runs on.
    pub fn of(machine: &Machine) -> HostInfo {
        HostInfo {
            hostname: host::hostname(),
            cpu_model: host::cpu_model(),
            cpu_flags: host::simd_flags(),
            kernel: host::kernel(),
            caches: machine.caches.clone(),
            allowed_cpus: cpus::format_cpu_list(&machine.allowed_cpus),
            cpus_set_by: machine.cpus_set_by.clone(),
            online_cpus: machine.online_cpus,
        }
    }

    /// The number of allowed CPUs.
    pub fn allowed_count(&self) -> usize {
        cpus::parse_cpu_list(&self.allowed_cpus).map_or(0, |l| l.len())
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A made-up machine for configuration tests.
    use super::*;

    /// Two CPUs, 16 GB free, no quotas, no limits, AVX2 but no AVX-512.
    pub(crate) fn two_cpus() -> Machine {
        Machine {
            allowed_cpus: vec![0, 1],
            cpus_set_by: CpusSetBy::Nothing,
            topology: Topology::read(std::path::Path::new("/nonexistent"), "", vec![0, 1]),
            cpu_quota: None,
            online_cpus: 2,
            simd: vec![Simd::Scalar, Simd::Sse2, Simd::Avx2],
            page_size: 4096,
            huge_page_size: Some(2 << 20),
            huge_pages_available: 0,
            huge_pages_total: 0,
            memory_available: Some(16_000_000_000),
            memory_limit: None,
            shm_free: Some(8_000_000_000),
            caches: vec![Cache { level: 3, kind: "Unified".into(), bytes: 32 << 20, shared_with: "0-1".into() }],
            process_limit: None,
            descriptor_limit: Some((1000, 1024)),
            address_space_limit: None,
            mapped_bytes: 12 << 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_counts_the_quota() {
        let mut m = testing::two_cpus();
        assert_eq!(m.cpu_room(), 2);
        m.cpu_quota = Some(CpuQuota { quota_us: 10_000, period_us: 100_000, file: "cpu.max".into() });
        assert_eq!(m.cpu_room(), 1, "a 0.1-CPU quota leaves room for one");
        m.memory_limit = Some(MemoryLimit { limit: 100, headroom: 40, file: "memory.max".into() });
        assert_eq!(m.memory_headroom(), Some(40));
    }

    #[test]
    fn this_machine_is_described() {
        let m = Machine::detect();
        assert!(!m.allowed_cpus.is_empty());
        assert!(m.simd.contains(&Simd::Scalar));
        let host = HostInfo::of(&m);
        assert!(host.kernel.starts_with("Linux"));
        assert_eq!(host.allowed_count(), m.allowed_cpus.len());
    }
}
