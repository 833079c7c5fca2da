//! NUMA topology: the memory nodes of this machine, read from sysfs, and
//! what this process may use of them.
//!
//! Each node's CPUs (`nodeN/cpulist`), memory (`nodeN/meminfo`) and
//! distances (`nodeN/distance`) come from `/sys/devices/system/node`; the
//! nodes this process may allocate on from `Mems_allowed_list` in
//! `/proc/self/status` (which already reflects the cpuset's `mems`, cgroup
//! v1 or v2). A machine without that directory (no NUMA in the kernel) is
//! one node holding every CPU. The parser takes the root as a path, so
//! tests run it on trees they write.
#![forbid(unsafe_code)]

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::cpus::{format_cpu_list, parse_cpu_list};
use super::host::read_small;

/// One memory node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Its number (`nodeN`).
    pub id: usize,
    /// Its online CPUs, ascending (empty for a memory-only node).
    pub cpus: Vec<usize>,
    /// Its memory, bytes (0 for a CPU-only node).
    pub mem_total: u64,
    /// Its free memory, bytes.
    pub mem_free: u64,
    /// The distance to every node, in the order of [`Topology::nodes`]
    /// (10 = local, as the ACPI SLIT gives it).
    pub distances: Vec<u32>,
}

/// The NUMA nodes of this machine and what this process may use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    /// Every online node, by number.
    pub nodes: Vec<Node>,
    /// The nodes this process may allocate memory on (`Mems_allowed`).
    pub mems_allowed: Vec<usize>,
    /// Whether the kernel told us (false: no `/sys/devices/system/node`;
    /// the machine is taken as one node).
    pub known: bool,
}

impl Topology {
    /// This machine's topology.
    pub fn detect() -> Topology {
        let status = read_small("/proc/self/status").unwrap_or_default();
        Topology::read(Path::new("/sys/devices/system/node"), &status, super::host::online_cpu_list())
    }

    /// From a sysfs node directory `root`, the text of `/proc/self/status`
    /// and the online CPUs (for the one node of a machine without NUMA).
    pub(crate) fn read(root: &Path, status: &str, online: Vec<usize>) -> Topology {
        let mut ids: Vec<usize> = match read_small(root.join("online")) {
            Some(list) => parse_cpu_list(&list).unwrap_or_default(),
            None => std::fs::read_dir(root)
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| e.file_name().to_str()?.strip_prefix("node")?.parse::<usize>().ok())
                        .collect()
                })
                .unwrap_or_default(),
        };
        ids.sort_unstable();
        ids.dedup();
        let mems_allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Mems_allowed_list:"))
            .and_then(|v| parse_cpu_list(v.trim()).ok());
        if ids.is_empty() {
            let node = Node { id: 0, cpus: online, mem_total: 0, mem_free: 0, distances: vec![10] };
            return Topology { nodes: vec![node], mems_allowed: vec![0], known: false };
        }
        let nodes: Vec<Node> = ids
            .iter()
            .map(|&id| {
                let dir = root.join(format!("node{id}"));
                let cpus =
                    read_small(dir.join("cpulist")).and_then(|t| parse_cpu_list(t.trim()).ok()).unwrap_or_default();
                let meminfo = read_small(dir.join("meminfo")).unwrap_or_default();
                let kb = |key: &str| {
                    meminfo.lines().find_map(|l| {
                        let rest = l.split_once(key)?.1.trim_start_matches(':').trim();
                        rest.split_whitespace().next()?.parse::<u64>().ok()
                    })
                };
                let distances = read_small(dir.join("distance"))
                    .map(|t| t.split_whitespace().filter_map(|d| d.parse().ok()).collect())
                    .unwrap_or_default();
                Node {
                    id,
                    cpus,
                    mem_total: kb("MemTotal").unwrap_or(0) * 1024,
                    mem_free: kb("MemFree").unwrap_or(0) * 1024,
                    distances,
                }
            })
            .collect();
        let mems_allowed =
            mems_allowed.unwrap_or_else(|| nodes.iter().filter(|n| n.mem_total > 0).map(|n| n.id).collect());
        Topology { nodes, mems_allowed, known: true }
    }

    /// Whether there is more than one node to choose from.
    pub fn is_numa(&self) -> bool {
        self.known && self.nodes.len() > 1
    }

    /// The node CPU `cpu` belongs to.
    pub fn node_of_cpu(&self, cpu: usize) -> Option<usize> {
        self.nodes.iter().find(|n| n.cpus.contains(&cpu)).map(|n| n.id)
    }

    /// The node numbered `id`.
    pub fn node(&self, id: usize) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The nodes that have memory this process may allocate on.
    pub fn memory_nodes(&self) -> Vec<usize> {
        self.nodes.iter().filter(|n| n.mem_total > 0 && self.mems_allowed.contains(&n.id)).map(|n| n.id).collect()
    }

    /// The nodes with CPUs in `allowed`, each with those CPUs, by node.
    pub fn cpus_by_node(&self, allowed: &[usize]) -> Vec<(usize, Vec<usize>)> {
        self.nodes
            .iter()
            .map(|n| (n.id, n.cpus.iter().copied().filter(|c| allowed.contains(c)).collect::<Vec<_>>()))
            .filter(|(_, cpus)| !cpus.is_empty())
            .collect()
    }

    /// One line: `2 NUMA nodes: 0 (CPUs 0-1, 8.0 GB), 1 (CPUs 2-3, 8.0 GB)`.
    pub fn summary(&self, allowed: &[usize]) -> String {
        if !self.known {
            return "NUMA: not reported by this kernel (taken as one node)".into();
        }
        let parts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| {
                let mine: Vec<usize> = n.cpus.iter().copied().filter(|c| allowed.contains(c)).collect();
                let cpus = if n.cpus.is_empty() {
                    "no CPUs".to_string()
                } else if mine.len() == n.cpus.len() {
                    format!("CPUs {}", format_cpu_list(&n.cpus))
                } else if mine.is_empty() {
                    format!("CPUs {} (none allowed)", format_cpu_list(&n.cpus))
                } else {
                    format!("CPUs {} ({} allowed)", format_cpu_list(&n.cpus), format_cpu_list(&mine))
                };
                let memory =
                    if self.mems_allowed.contains(&n.id) || n.mem_total == 0 { "" } else { ", memory not allowed" };
                format!("{} ({cpus}, {}{memory})", n.id, crate::units::human_bytes(n.mem_total))
            })
            .collect();
        format!("{} NUMA node{}: {}", self.nodes.len(), crate::units::plural(self.nodes.len() as u64), parts.join(", "))
    }
}

/// `--mem-policy`: where the arrays' pages go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum MemPolicy {
    /// Each worker's chunks on its own node (the node of its CPU), bound
    /// before the pages are reserved.
    Local,
    /// Every array page-interleaved over the nodes this process may use.
    Interleave,
    /// Everything on node N (for local-against-remote comparisons).
    Node(usize),
    /// Whatever policy the process was started with (`numactl …`).
    Inherit,
}

impl std::str::FromStr for MemPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(MemPolicy::Local),
            "interleave" => Ok(MemPolicy::Interleave),
            "inherit" => Ok(MemPolicy::Inherit),
            other => other
                .strip_prefix("node:")
                .and_then(|n| n.parse().ok())
                .map(MemPolicy::Node)
                .ok_or_else(|| format!("'{other}' is not a policy (expected local, interleave, node:N or inherit)")),
        }
    }
}

impl std::fmt::Display for MemPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemPolicy::Local => f.write_str("local"),
            MemPolicy::Interleave => f.write_str("interleave"),
            MemPolicy::Node(n) => write!(f, "node:{n}"),
            MemPolicy::Inherit => f.write_str("inherit"),
        }
    }
}

impl From<MemPolicy> for String {
    fn from(p: MemPolicy) -> String {
        p.to_string()
    }
}

impl TryFrom<String> for MemPolicy {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// What one worker binds its chunks to, before it reserves them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum Binding {
    /// Nothing: the process's own policy applies.
    Inherit,
    /// Preferably on `node`, or (`None`: an unpinned worker) on the node it
    /// runs on when it binds.
    Local {
        /// The node.
        node: Option<u32>,
    },
    /// Page-interleaved over `nodes`.
    Interleave {
        /// The nodes.
        nodes: Vec<u32>,
    },
}

/// Where the pages of one array of one chunk are: pages per node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayPlacement {
    /// Pages on each node (node, pages), by node.
    pub nodes: Vec<(usize, u64)>,
    /// Pages the kernel could not place (not present, or an error).
    pub unknown: u64,
}

impl ArrayPlacement {
    /// From the node of each page (negative: unknown).
    pub fn of(pages: &[i32]) -> ArrayPlacement {
        let mut out = ArrayPlacement::default();
        for &n in pages {
            if n < 0 {
                out.unknown += 1;
                continue;
            }
            match out.nodes.iter_mut().find(|(node, _)| *node == n as usize) {
                Some((_, count)) => *count += 1,
                None => out.nodes.push((n as usize, 1)),
            }
        }
        out.nodes.sort_unstable();
        out
    }

    /// Pages counted (placed or not).
    pub fn pages(&self) -> u64 {
        self.nodes.iter().map(|(_, c)| c).sum::<u64>() + self.unknown
    }

    /// Pages on `node`.
    pub fn on(&self, node: usize) -> u64 {
        self.nodes.iter().find(|(n, _)| *n == node).map_or(0, |(_, c)| *c)
    }
}

/// Where one worker's chunks are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerPlacement {
    /// The worker.
    pub worker: usize,
    /// The node its pages should be on (local or node:N), if one.
    pub intended: Option<usize>,
    /// Its chunk of `a`, `b` and `c`, in that order.
    pub arrays: [ArrayPlacement; 3],
    /// The share of its pages on `intended` (null without one).
    pub on_intended: Option<f64>,
}

impl WorkerPlacement {
    /// From its intended node and its arrays' pages.
    pub fn new(worker: usize, intended: Option<usize>, arrays: [ArrayPlacement; 3]) -> WorkerPlacement {
        let on_intended = intended.and_then(|node| {
            let total: u64 = arrays.iter().map(ArrayPlacement::pages).sum();
            (total > 0).then(|| arrays.iter().map(|a| a.on(node)).sum::<u64>() as f64 / total as f64)
        });
        WorkerPlacement { worker, intended, arrays, on_intended }
    }

    /// Pages per node over the three arrays.
    pub fn histogram(&self) -> ArrayPlacement {
        let mut all = ArrayPlacement::default();
        for a in &self.arrays {
            all.unknown += a.unknown;
            for &(n, c) in &a.nodes {
                match all.nodes.iter_mut().find(|(node, _)| *node == n) {
                    Some((_, count)) => *count += c,
                    None => all.nodes.push((n, c)),
                }
            }
        }
        all.nodes.sort_unstable();
        all
    }
}

/// Whether the kernel's automatic NUMA balancing is on (it migrates pages
/// while a run measures).
pub(crate) fn balancing_on() -> bool {
    read_small("/proc/sys/kernel/numa_balancing").is_some_and(|v| v.trim() != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a sysfs node tree: per node (cpulist, MemTotal kB, distances).
    fn tree(tag: &str, nodes: &[(usize, &str, u64, &str)], online: Option<&str>) -> std::path::PathBuf {
        let root = std::env::temp_dir().join(format!("vecpar-unit-numa-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (id, cpus, kb, dist) in nodes {
            let dir = root.join(format!("node{id}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("cpulist"), format!("{cpus}\n")).unwrap();
            std::fs::write(
                dir.join("meminfo"),
                format!("Node {id} MemTotal:       {kb} kB\nNode {id} MemFree:        {} kB\n", kb / 2),
            )
            .unwrap();
            std::fs::write(dir.join("distance"), format!("{dist}\n")).unwrap();
        }
        if let Some(online) = online {
            std::fs::write(root.join("online"), format!("{online}\n")).unwrap();
        }
        root
    }

    #[test]
    fn a_two_socket_machine() {
        let root = tree("2s", &[(0, "0-3,8-11", 8 << 20, "10 21"), (1, "4-7,12-15", 8 << 20, "21 10")], Some("0-1"));
        let t = Topology::read(&root, "Mems_allowed_list:\t0-1\n", vec![]);
        let _ = std::fs::remove_dir_all(&root);
        assert!(t.is_numa());
        assert_eq!(t.nodes.len(), 2);
        assert_eq!(t.nodes[1].cpus, vec![4, 5, 6, 7, 12, 13, 14, 15]);
        assert_eq!(t.nodes[0].distances, vec![10, 21]);
        assert_eq!(t.nodes[0].mem_total, 8 << 30);
        assert_eq!(t.nodes[0].mem_free, 4 << 30);
        assert_eq!(t.node_of_cpu(12), Some(1));
        assert_eq!(t.node_of_cpu(99), None);
        assert_eq!(t.memory_nodes(), vec![0, 1]);
        assert_eq!(t.cpus_by_node(&[0, 1, 4]), vec![(0, vec![0, 1]), (1, vec![4])]);
        let s = t.summary(&[0, 1, 2, 3, 8, 9, 10, 11, 4]);
        assert!(s.starts_with("2 NUMA nodes: 0 (CPUs 0-3,8-11"), "{s}");
        assert!(s.contains("1 (CPUs 4-7,12-15 (4 allowed)"), "{s}");
        let s = t.summary(&[0, 1]);
        assert!(s.contains("1 (CPUs 4-7,12-15 (none allowed)"), "{s}");
    }

    #[test]
    fn nps4_memory_only_nodes_offline_cpus_and_a_cpuset_on_mems() {
        // Four nodes of one socket, a memory-only node (CXL, HBM) without
        // CPUs, node 2's CPUs offline, and a cpuset allowing mems 0-1,4.
        let root = tree(
            "nps4",
            &[
                (0, "0-1", 4 << 20, "10 12 12 12 20"),
                (1, "2-3", 4 << 20, "12 10 12 12 20"),
                (2, "", 4 << 20, "12 12 10 12 20"),
                (3, "6-7", 4 << 20, "12 12 12 10 20"),
                (4, "", 16 << 20, "20 20 20 20 10"),
            ],
            Some("0-4"),
        );
        let t = Topology::read(&root, "Name:\tx\nMems_allowed_list:\t0-1,4\n", vec![]);
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(t.nodes.len(), 5);
        assert!(t.nodes[2].cpus.is_empty() && t.nodes[4].cpus.is_empty());
        assert_eq!(t.mems_allowed, vec![0, 1, 4]);
        assert_eq!(t.memory_nodes(), vec![0, 1, 4]);
        assert_eq!(t.cpus_by_node(&[0, 1, 2, 3, 6, 7]), vec![(0, vec![0, 1]), (1, vec![2, 3]), (3, vec![6, 7])]);
        let s = t.summary(&[0, 1, 2, 3, 6, 7]);
        assert!(s.contains("2 (no CPUs, 4.3 GB, memory not allowed)"), "{s}");
        assert!(s.contains("4 (no CPUs, 17.2 GB)"), "{s}");
    }

    #[test]
    fn no_node_directory_is_one_node_holding_every_cpu() {
        let root = std::env::temp_dir().join("vecpar-unit-numa-none-does-not-exist");
        let t = Topology::read(&root, "", vec![0, 1, 2]);
        assert!(!t.known && !t.is_numa());
        assert_eq!(t.nodes[0].cpus, vec![0, 1, 2]);
        assert_eq!(t.node_of_cpu(2), Some(0));
        assert!(t.summary(&[0]).contains("not reported"));
    }

    #[test]
    fn without_an_online_file_the_directories_count() {
        let root = tree("noonline", &[(0, "0", 1 << 20, "10 20"), (1, "1", 1 << 20, "20 10")], None);
        let t = Topology::read(&root, "", vec![]);
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(t.nodes.iter().map(|n| n.id).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(t.mems_allowed, vec![0, 1], "no Mems_allowed: every node with memory");
    }

    #[test]
    fn policies_parse_and_placement_counts() {
        assert_eq!("node:3".parse::<MemPolicy>(), Ok(MemPolicy::Node(3)));
        assert_eq!("interleave".parse::<MemPolicy>().unwrap().to_string(), "interleave");
        assert!("node:x".parse::<MemPolicy>().unwrap_err().contains("node:N"));
        let a = ArrayPlacement::of(&[0, 0, 1, -14, 0]);
        assert_eq!(a.nodes, vec![(0, 3), (1, 1)]);
        assert_eq!((a.unknown, a.pages(), a.on(1), a.on(7)), (1, 5, 1, 0));
        let w = WorkerPlacement::new(2, Some(0), [a.clone(), ArrayPlacement::of(&[0; 5]), ArrayPlacement::of(&[1; 5])]);
        assert_eq!(w.on_intended, Some(8.0 / 15.0));
        assert_eq!(w.histogram().nodes, vec![(0, 8), (1, 6)]);
        assert_eq!(WorkerPlacement::new(0, None, [a.clone(), a.clone(), a]).on_intended, None);
    }

    #[test]
    fn this_machine_has_at_least_one_node() {
        let t = Topology::detect();
        assert!(!t.nodes.is_empty());
        assert!(!t.mems_allowed.is_empty());
    }
}
