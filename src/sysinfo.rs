//! Facts about this machine that explain a measurement: CPU model and flags,
//! caches, kernel, memory, and the limits a run must fit in.
#![forbid(unsafe_code)]

use std::fs;

use serde::{Deserialize, Serialize};

/// One level of the cache hierarchy (as CPU 0 sees it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cache {
    /// 1, 2, 3…
    pub level: u32,
    /// Data, Instruction or Unified.
    pub kind: String,
    /// Size in bytes.
    pub bytes: u64,
    /// CPUs sharing it, in list form.
    pub shared_with: String,
}

/// The caches of CPU 0, smallest level first.
pub fn caches() -> Vec<Cache> {
    let mut out = Vec::new();
    for index in 0..16 {
        let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{index}");
        let read = |name: &str| fs::read_to_string(format!("{dir}/{name}")).ok().map(|s| s.trim().to_string());
        let Some(level) = read("level").and_then(|l| l.parse().ok()) else { break };
        let kind = read("type").unwrap_or_default();
        let bytes = read("size").and_then(|s| parse_cache_size(&s)).unwrap_or(0);
        let shared_with = read("shared_cpu_list").unwrap_or_default();
        out.push(Cache { level, kind, bytes, shared_with });
    }
    out
}

fn parse_cache_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1024),
        'M' => (&s[..s.len() - 1], 1024 * 1024),
        'G' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

/// The size of the last-level cache, if known.
pub fn llc_bytes() -> Option<u64> {
    caches().iter().filter(|c| c.kind != "Instruction").max_by_key(|c| c.level).map(|c| c.bytes).filter(|&b| b > 0)
}

/// The size of the per-core L2, if known.
pub fn l2_bytes() -> Option<u64> {
    caches().iter().find(|c| c.level == 2 && c.kind != "Instruction").map(|c| c.bytes)
}

/// The CPU model name.
pub fn cpu_model() -> String {
    cpuinfo_field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The CPU's SIMD-related flags.
pub fn simd_flags() -> Vec<String> {
    let flags = cpuinfo_field("flags").or_else(|| cpuinfo_field("Features")).unwrap_or_default();
    flags
        .split_whitespace()
        .filter(|f| {
            f.starts_with("avx") || f.starts_with("sse") || *f == "fma" || f.starts_with("asimd") || *f == "neon"
        })
        .map(str::to_string)
        .collect()
}

fn cpuinfo_field(name: &str) -> Option<String> {
    let text = fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim().to_string())
    })
}

/// Kernel name and release, e.g. "Linux 6.18.44".
pub fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| format!("{} {}", u.sysname().to_string_lossy(), u.release().to_string_lossy()))
        .unwrap_or_else(|_| "unknown".into())
}

/// The host name.
pub fn hostname() -> String {
    nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_else(|_| "unknown".into())
}

/// Bytes of memory this process could still allocate: MemAvailable, lowered
/// by a cgroup memory limit if one is set.
pub fn memory_available() -> Option<u64> {
    let meminfo = fs::read_to_string("/proc/meminfo").ok()?;
    let available = meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix("MemAvailable:")?;
        rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok().map(|kb| kb * 1024)
    })?;
    Some(match cgroup_memory_headroom() {
        Some(h) => available.min(h),
        None => available,
    })
}

/// Limit minus usage of this process's memory cgroup, if limited.
fn cgroup_memory_headroom() -> Option<u64> {
    let cgroups = fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        let (limit_file, usage_file) = if controllers.is_empty() {
            (format!("/sys/fs/cgroup/{path}/memory.max"), format!("/sys/fs/cgroup/{path}/memory.current"))
        } else if controllers.split(',').any(|c| c == "memory") {
            (
                format!("/sys/fs/cgroup/memory/{path}/memory.limit_in_bytes"),
                format!("/sys/fs/cgroup/memory/{path}/memory.usage_in_bytes"),
            )
        } else {
            continue;
        };
        let limit: u64 = match fs::read_to_string(&limit_file).ok()?.trim().parse() {
            Ok(l) if l < (1 << 60) => l,
            _ => continue, // "max" or the v1 "unlimited" sentinel
        };
        let usage: u64 = fs::read_to_string(&usage_file).ok().and_then(|u| u.trim().parse().ok()).unwrap_or(0);
        return Some(limit.saturating_sub(usage));
    }
    None
}

/// How many more processes (or threads) this user may start, if limited.
pub fn process_headroom() -> Option<(u64, u64, u64)> {
    use nix::sys::resource::{Resource, getrlimit};
    let (soft, _) = getrlimit(Resource::RLIMIT_NPROC).ok()?;
    if soft == nix::sys::resource::RLIM_INFINITY {
        return None;
    }
    // Root (with CAP_SYS_RESOURCE or CAP_SYS_ADMIN) is not held to the limit.
    if nix::unistd::geteuid().is_root() {
        return None;
    }
    let uid = nix::unistd::getuid().as_raw();
    let running = count_tasks_of(uid);
    Some((soft.saturating_sub(running), soft, running))
}

/// Processes and threads owned by `uid` (RLIMIT_NPROC counts both).
fn count_tasks_of(uid: u32) -> u64 {
    let Ok(entries) = fs::read_dir("/proc") else { return 0 };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|e| fs::read_to_string(e.path().join("status")).ok())
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

/// Open descriptors this process may still create (soft limit minus open).
pub fn descriptor_headroom() -> Option<(u64, u64)> {
    use nix::sys::resource::{Resource, getrlimit};
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let open = fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0);
    Some((soft.saturating_sub(open), soft))
}

/// Formats bytes with decimal units (as STREAM counts them): "24.0 MB".
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e12 {
        format!("{:.1} TB", b / 1e12)
    } else if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_sizes_parse() {
        assert_eq!(parse_cache_size("32K"), Some(32 * 1024));
        assert_eq!(parse_cache_size("32768K"), Some(32 * 1024 * 1024));
        assert_eq!(parse_cache_size("2M"), Some(2 * 1024 * 1024));
        assert_eq!(parse_cache_size("x"), None);
    }

    #[test]
    fn this_machine_is_described() {
        assert!(!cpu_model().is_empty());
        assert!(kernel().starts_with("Linux"));
        assert!(memory_available().unwrap() > 0);
        assert_eq!(human_bytes(24_000_000), "24.0 MB");
    }
}
