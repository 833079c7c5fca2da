//! Facts about this machine that explain a measurement: CPU model and flags,
//! caches, kernel, memory, and the limits a run must fit in.
//!
//! Start-up time is part of what vecpar measures, so each file is read once,
//! in one system call where it can be (files in /proc report size 0, which
//! makes `fs::read_to_string` grow its buffer read by read), and the facts
//! that cannot change during a run are kept.
#![forbid(unsafe_code)]

use std::fs;
use std::io::{BufRead, Read};
use std::sync::OnceLock;

/// Reads a small /proc or /sys file in as few reads as possible.
pub fn read_small(path: &str) -> Option<String> {
    let mut file = fs::File::open(path).ok()?;
    let mut buf = Vec::with_capacity(16 * 1024);
    file.read_to_end(&mut buf).ok()?;
    String::from_utf8(buf).ok()
}

/// A field of /proc/meminfo, in its own unit (kB, or pages for HugePages_*).
pub fn meminfo(name: &str) -> Option<u64> {
    let text = read_small("/proc/meminfo")?;
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok())
}

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
    static CACHES: OnceLock<Vec<Cache>> = OnceLock::new();
    CACHES.get_or_init(read_caches).clone()
}

fn read_caches() -> Vec<Cache> {
    let mut out = Vec::new();
    for index in 0..16 {
        let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{index}");
        let read = |name: &str| read_small(&format!("{dir}/{name}")).map(|s| s.trim().to_string());
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

/// A field of the first processor's block of /proc/cpuinfo (read up to
/// the first blank line only: the file grows with the number of CPUs).
fn cpuinfo_field(name: &str) -> Option<String> {
    static FIRST_CPU: OnceLock<Vec<(String, String)>> = OnceLock::new();
    let fields = FIRST_CPU.get_or_init(|| {
        let Ok(file) = fs::File::open("/proc/cpuinfo") else { return Vec::new() };
        std::io::BufReader::with_capacity(16 * 1024, file)
            .lines()
            .map_while(Result::ok)
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
            .collect()
    });
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
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
    let available = meminfo("MemAvailable")? * 1024;
    Some(match cgroup_memory_headroom() {
        Some(h) => available.min(h),
        None => available,
    })
}

/// Limit minus usage of this process's memory cgroup, if limited.
fn cgroup_memory_headroom() -> Option<u64> {
    let cgroups = read_small("/proc/self/cgroup")?;
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
        let limit: u64 = match read_small(&limit_file)?.trim().parse() {
            Ok(l) if l < (1 << 60) => l,
            _ => continue, // "max" or the v1 "unlimited" sentinel
        };
        let usage: u64 = read_small(&usage_file).and_then(|u| u.trim().parse().ok()).unwrap_or(0);
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
