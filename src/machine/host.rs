//! What the host is: CPU model and flags, caches, kernel, name, memory.
//!
//! Start-up time is part of what vecpar measures, so each file is read in
//! one system call where it can be (files in /proc report size 0, which
//! makes `fs::read_to_string` grow its buffer read by read), and the facts
//! that cannot change during a run are read once.

use std::fs;
use std::io::{BufRead, Read};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Reads a small /proc, /sys or cgroup file in as few reads as possible.
pub(crate) fn read_small(path: impl AsRef<std::path::Path>) -> Option<String> {
    let mut file = fs::File::open(path).ok()?;
    let mut buf = Vec::with_capacity(16 * 1024);
    file.read_to_end(&mut buf).ok()?;
    String::from_utf8(buf).ok()
}

/// A field of /proc/meminfo, in its own unit (kB, or pages for HugePages_*).
pub(crate) fn meminfo(name: &str) -> Option<u64> {
    let text = read_small("/proc/meminfo")?;
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok())
}

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
pub(crate) fn caches() -> Vec<Cache> {
    static CACHES: OnceLock<Vec<Cache>> = OnceLock::new();
    CACHES.get_or_init(read_caches).clone()
}

fn read_caches() -> Vec<Cache> {
    let mut out = Vec::new();
    for index in 0..16 {
        let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{index}");
        let read = |name: &str| read_small(format!("{dir}/{name}")).map(|s| s.trim().to_string());
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

/// The size of the last-level data cache, if known.
pub(crate) fn llc_bytes(caches: &[Cache]) -> Option<u64> {
    caches.iter().filter(|c| c.kind != "Instruction").max_by_key(|c| c.level).map(|c| c.bytes).filter(|&b| b > 0)
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

/// The CPU model name.
pub(crate) fn cpu_model() -> String {
    cpuinfo_field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The CPU's SIMD-related flags.
pub(crate) fn simd_flags() -> Vec<String> {
    let flags = cpuinfo_field("flags").or_else(|| cpuinfo_field("Features")).unwrap_or_default();
    flags
        .split_whitespace()
        .filter(|f| {
            f.starts_with("avx") || f.starts_with("sse") || *f == "fma" || f.starts_with("asimd") || *f == "neon"
        })
        .map(str::to_string)
        .collect()
}

/// Kernel name and release, e.g. "Linux 6.18.44".
pub(crate) fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| format!("{} {}", u.sysname().to_string_lossy(), u.release().to_string_lossy()))
        .unwrap_or_else(|_| "unknown".into())
}

/// The host name.
pub(crate) fn hostname() -> String {
    nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_else(|_| "unknown".into())
}

/// Logical CPUs online.
pub(crate) fn online_cpus() -> usize {
    online_cpu_list().len()
}

/// The online CPUs, ascending.
pub(crate) fn online_cpu_list() -> Vec<usize> {
    read_small("/sys/devices/system/cpu/online")
        .and_then(|s| super::cpus::parse_cpu_list(s.trim()).ok())
        .unwrap_or_default()
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
    fn the_last_level_is_the_largest_data_cache_level() {
        let c = |level, kind: &str, bytes| Cache { level, kind: kind.into(), bytes, shared_with: String::new() };
        let caches = [c(1, "Data", 32), c(1, "Instruction", 32), c(2, "Unified", 1024), c(3, "Unified", 32768)];
        assert_eq!(llc_bytes(&caches), Some(32768));
        assert_eq!(llc_bytes(&[]), None);
    }
}
