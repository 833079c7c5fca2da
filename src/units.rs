//! Numbers for people, formatted in one place.
//!
//! Data is kept in base units everywhere (seconds as `f64`, bytes as `u64`);
//! only these functions pick a unit. Bytes use decimal prefixes, as STREAM
//! counts them (1 GB = 10^9 bytes).
#![forbid(unsafe_code)]

/// The unit a person reads rates in (`--units`): STREAM's and vecpar's
/// GB/s, or BabelStream's MB/s (its default), MiB/s (`--mibibytes`) and
/// GiB/s. Reports keep every rate in GB/s (`*_gbps`) whatever is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
pub(crate) enum Rate {
    /// 10^9 bytes per second
    #[default]
    #[value(name = "GB/s", alias = "gb")]
    #[serde(rename = "GB/s")]
    Gb,
    /// 10^6 bytes per second
    #[value(name = "MB/s", alias = "mb")]
    #[serde(rename = "MB/s")]
    Mb,
    /// 2^30 bytes per second
    #[value(name = "GiB/s", alias = "gib")]
    #[serde(rename = "GiB/s")]
    Gib,
    /// 2^20 bytes per second
    #[value(name = "MiB/s", alias = "mib")]
    #[serde(rename = "MiB/s")]
    Mib,
}

impl Rate {
    /// Bytes per second in one of this unit.
    pub(crate) fn bytes_per_second(self) -> f64 {
        match self {
            Rate::Gb => 1e9,
            Rate::Mb => 1e6,
            Rate::Gib => (1u64 << 30) as f64,
            Rate::Mib => (1u64 << 20) as f64,
        }
    }

    /// `gbps` GB/s in this unit.
    pub(crate) fn of_gbps(self, gbps: f64) -> f64 {
        gbps * 1e9 / self.bytes_per_second()
    }

    /// "GB/s".
    pub(crate) fn label(self) -> &'static str {
        match self {
            Rate::Gb => "GB/s",
            Rate::Mb => "MB/s",
            Rate::Gib => "GiB/s",
            Rate::Mib => "MiB/s",
        }
    }

    /// How the unit counts: "10^9 B/GB".
    pub(crate) fn counting(self) -> &'static str {
        match self {
            Rate::Gb => "10^9 B/GB",
            Rate::Mb => "10^6 B/MB",
            Rate::Gib => "2^30 B/GiB",
            Rate::Mib => "2^20 B/MiB",
        }
    }

    /// A rate given in GB/s, in this unit with a precision that suits it.
    pub(crate) fn show(self, gbps: f64) -> String {
        let v = self.of_gbps(gbps);
        match self {
            Rate::Gb | Rate::Gib => format!("{v:.1}"),
            Rate::Mb | Rate::Mib => format!("{v:.0}"),
        }
    }
}

/// Bandwidth in GB/s (10^9 bytes per second) for `bytes` in `seconds`.
pub(crate) fn gbps(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 { bytes as f64 / seconds / 1e9 } else { f64::INFINITY }
}

/// "24.0 MB", "1.2 GB", "512 B".
pub(crate) fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    for (scale, unit) in [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")] {
        if b >= scale {
            return format!("{:.1} {unit}", b / scale);
        }
    }
    format!("{bytes} B")
}

/// Seconds with a unit that fits: "2.000 s", "2.50 ms", "3.0 µs".
pub(crate) fn human_time(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

/// Short durations for sentences: "22 ms", "1.3 ms", "450 µs", "1.00 s".
pub(crate) fn short_time(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 0.01 {
        format!("{:.0} ms", s * 1e3)
    } else if s >= 0.001 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

/// Digits grouped by thousands: 1,000,000.
pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// 1, 2, 10k, 1M, 2.5M: axis labels that read at a glance.
pub(crate) fn human_number(x: f64) -> String {
    let a = x.abs();
    let (v, suffix) = if a >= 1e9 {
        (x / 1e9, "G")
    } else if a >= 1e6 {
        (x / 1e6, "M")
    } else if a >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    if (v - v.round()).abs() < 1e-9 { format!("{}{suffix}", v.round() as i64) } else { format!("{v:.1}{suffix}") }
}

/// A page size: "4 KiB", "2 MiB".
pub(crate) fn page_size(bytes: usize) -> String {
    if bytes >= 1 << 20 { format!("{} MiB", bytes >> 20) } else { format!("{} KiB", bytes >> 10) }
}

/// "" for one, "s" for any other count.
pub(crate) fn plural(n: impl Into<u64>) -> &'static str {
    if n.into() == 1 { "" } else { "s" }
}

/// A time in RFC 3339 form, UTC, to the second: `2026-12-01T11:07:01Z`.
pub(crate) fn rfc3339_utc(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1_000_003), "1,000,003");
        assert_eq!(thousands(7), "7");
        assert_eq!(human_time(0.0025), "2.50 ms");
        assert_eq!(human_time(2.0), "2.000 s");
        assert_eq!(human_time(3e-6), "3.0 µs");
        assert_eq!(short_time(0.0224), "22 ms");
        assert_eq!(short_time(0.00134), "1.3 ms");
        assert_eq!(short_time(0.000452), "452 µs");
        assert_eq!(human_bytes(24_000_000), "24.0 MB");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_number(10_000.0), "10k");
        assert_eq!(human_number(2.5e6), "2.5M");
        assert_eq!(page_size(4096), "4 KiB");
        assert_eq!(page_size(2 << 20), "2 MiB");
        assert_eq!(gbps(3_000_000_000, 1.5), 2.0);
        let at = |s: u64| rfc3339_utc(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
    }
}
