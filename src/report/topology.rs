//! `vecpar-coord topology`: everything vecpar detects about this machine,
//! without running anything.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

use super::Provenance;
use crate::machine::{CpuQuota, CpusSetBy, Machine, MemoryLimit, Topology};

/// What vecpar sees of this machine (kind "topology").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopologyReport {
    /// Version, time, command line, machine (kind "topology").
    #[serde(flatten)]
    pub about: Provenance,
    /// What narrowed the CPUs this process may use.
    pub cpus_set_by: CpusSetBy,
    /// The tightest cgroup CPU quota, if any.
    pub cpu_quota: Option<CpuQuota>,
    /// The NUMA nodes: CPUs, memory, distances, and the nodes this process
    /// may allocate on.
    pub numa: Topology,
    /// Whether the kernel's automatic NUMA balancing is on.
    pub numa_balancing: bool,
    /// The memory policy this process was started with, if not the
    /// default (numactl's).
    pub mem_policy: Option<String>,
    /// SIMD levels this CPU runs, narrowest first.
    pub simd: Vec<String>,
    /// The base page size, bytes.
    pub page_bytes: usize,
    /// The default huge page size, bytes.
    pub huge_page_bytes: Option<usize>,
    /// Huge pages in the pool, and free for new mappings.
    pub huge_pages: (u64, u64),
    /// Bytes free in /dev/shm.
    pub shm_free: Option<u64>,
    /// `MemAvailable`, bytes.
    pub memory_available: Option<u64>,
    /// The tightest cgroup memory limit.
    pub memory_limit: Option<MemoryLimit>,
}

impl TopologyReport {
    /// What `machine` shows.
    pub(crate) fn of(machine: &Machine, about: Provenance, mem_policy: Option<&str>) -> TopologyReport {
        TopologyReport {
            about,
            cpus_set_by: machine.cpus_set_by.clone(),
            cpu_quota: machine.cpu_quota.clone(),
            numa: machine.topology.clone(),
            numa_balancing: crate::machine::numa::balancing_on(),
            mem_policy: mem_policy.map(str::to_string),
            simd: machine.simd.iter().map(|s| s.name().to_string()).collect(),
            page_bytes: machine.page_size,
            huge_page_bytes: machine.huge_page_size,
            huge_pages: (machine.huge_pages_total, machine.huge_pages_available),
            shm_free: machine.shm_free,
            memory_available: machine.memory_available,
            memory_limit: machine.memory_limit.clone(),
        }
    }
}
