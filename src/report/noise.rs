//! A verdict on noisy numbers, as hyperfine gives one.
//!
//! Rounds far from the others (a modified z-score above
//! [`crate::stats::OUTLIER_Z`], and more than [`crate::stats::OUTLIER_MIN_SHARE`]
//! of the median away from it) mean that something else ran on the machine
//! during them; rounds shorter than [`min_round_s`] are dominated by the
//! clock's resolution and (with workers) by their synchronisation rather
//! than by the kernel. The spread is shown as the interquartile range, in
//! seconds and as a share of the median: a number a person can read, where
//! "(max − min) / min" of one stalled round reads as nonsense.

use serde::{Deserialize, Serialize};

use super::RoundRecord;
use crate::stats::{OUTLIER_MIN_SHARE, OUTLIER_Z, Stats, modified_z_scores};
use crate::vocab::Mode;

/// Rounds shorter than this are too short to time well (see
/// [`Mode::min_round_s`]).
pub fn min_round_s(mode: Mode) -> f64 {
    mode.min_round_s()
}

/// The interquartile range, as a share of the median, above which rounds
/// are scattered even when none stands out: half of them lie further apart
/// than a steady machine puts them.
pub const SCATTERED_SHARE: f64 = 0.10;

/// How steady a kernel's timed rounds were.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// One timed round: no spread to judge by.
    OneRound,
    /// The fastest round is shorter than [`min_round_s`].
    TooShort,
    /// Some rounds are outliers.
    Noisy,
    /// The rounds are spread wide ([`SCATTERED_SHARE`]) although none
    /// stands out.
    Scattered,
    /// None of the above: rounds long enough, close together.
    Steady,
}

impl Verdict {
    /// Its name, as the table, the exports and the JSON spell it.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::OneRound => "one-round",
            Verdict::TooShort => "too-short",
            Verdict::Noisy => "noisy",
            Verdict::Scattered => "scattered",
            Verdict::Steady => "steady",
        }
    }
}

/// The verdict and what it rests on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Noise {
    /// The first of `verdicts` (the one to act on first).
    pub verdict: Verdict,
    /// Every verdict that applies, most pressing first (`steady` alone
    /// when none does).
    #[serde(default)]
    pub verdicts: Vec<Verdict>,
    /// The round numbers of the outliers.
    pub outliers: Vec<u32>,
    /// Interquartile range of the round times, seconds.
    pub iqr_s: f64,
    /// The interquartile range as a percentage of the median.
    pub iqr_pct: f64,
}

impl Noise {
    /// The verdict on `rounds`; `None` when there are none.
    pub fn of(rounds: &[RoundRecord], mode: Mode) -> Option<Noise> {
        let times: Vec<f64> = rounds.iter().map(|r| r.seconds).collect();
        let s = Stats::of(&times)?;
        let z = modified_z_scores(&times);
        let far = |t: f64, z: f64| z.abs() > OUTLIER_Z && (t - s.median).abs() > OUTLIER_MIN_SHARE * s.median;
        let outliers: Vec<u32> =
            rounds.iter().zip(&z).filter(|(r, z)| far(r.seconds, **z)).map(|(r, _)| r.round).collect();
        let iqr_pct = if s.median > 0.0 { s.iqr() / s.median * 100.0 } else { 0.0 };
        let mut verdicts = Vec::new();
        if times.len() == 1 {
            verdicts.push(Verdict::OneRound);
        }
        if s.min < min_round_s(mode) {
            verdicts.push(Verdict::TooShort);
        }
        if !outliers.is_empty() {
            verdicts.push(Verdict::Noisy);
        }
        if times.len() > 1 && iqr_pct > SCATTERED_SHARE * 100.0 {
            verdicts.push(Verdict::Scattered);
        }
        if verdicts.is_empty() {
            verdicts.push(Verdict::Steady);
        }
        Some(Noise { verdict: verdicts[0], verdicts, outliers, iqr_s: s.iqr(), iqr_pct })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rounds(times: &[f64]) -> Vec<RoundRecord> {
        times
            .iter()
            .enumerate()
            .map(|(i, &seconds)| RoundRecord {
                round: i as u32,
                seconds,
                gbps: 0.0,
                worker_seconds: vec![],
                worker_start_lag_s: vec![],
            })
            .collect()
    }

    #[test]
    fn one_stalled_round_makes_a_noisy_run() {
        let n = Noise::of(&rounds(&[1e-3, 1.02e-3, 0.99e-3, 1.01e-3, 1e-3, 20e-3]), Mode::Procs).unwrap();
        assert_eq!((n.verdict, n.outliers.clone()), (Verdict::Noisy, vec![5]));
        assert!(n.iqr_pct < 5.0, "the spread a person reads ignores the one stall: {}", n.iqr_pct);
        let steady = Noise::of(&rounds(&[1e-3, 1.01e-3, 0.99e-3]), Mode::Procs).unwrap();
        assert_eq!(steady.verdict, Verdict::Steady);
        assert_eq!(Noise::of(&rounds(&[1e-6, 2e-6]), Mode::Procs).unwrap().verdict, Verdict::TooShort);
        assert_eq!(Noise::of(&rounds(&[5e-6, 5e-6]), Mode::Serial).unwrap().verdict, Verdict::Steady);
        assert_eq!(Noise::of(&rounds(&[5e-6, 5e-6]), Mode::Threads).unwrap().verdict, Verdict::TooShort);
        assert!(Noise::of(&[], Mode::Serial).is_none());
    }

    #[test]
    fn names_are_the_json_names() {
        for v in [Verdict::OneRound, Verdict::TooShort, Verdict::Noisy, Verdict::Scattered, Verdict::Steady] {
            assert_eq!(serde_json::to_value(v).unwrap(), v.name());
        }
    }

    #[test]
    fn every_verdict_that_applies_is_given() {
        // Too short and stalled: both said, not the first alone.
        let n = Noise::of(&rounds(&[1e-6, 1e-6, 1.1e-6, 1e-6, 1e-6, 14e-3]), Mode::Procs).unwrap();
        assert_eq!(n.verdicts, vec![Verdict::TooShort, Verdict::Noisy]);
        assert_eq!(n.verdict, Verdict::TooShort);
        // Every round scattered, none an outlier: not steady.
        let n = Noise::of(&rounds(&[5e-3, 10e-3, 5e-3, 10e-3, 5e-3, 10e-3, 5e-3, 10e-3]), Mode::Procs).unwrap();
        assert_eq!(n.verdicts, vec![Verdict::Scattered], "{n:?}");
        assert!(n.iqr_pct > 50.0);
        // One round: no statistics to speak of.
        let n = Noise::of(&rounds(&[5e-3]), Mode::Procs).unwrap();
        assert_eq!(n.verdicts, vec![Verdict::OneRound]);
    }

    #[test]
    fn a_slightly_slow_round_among_very_steady_ones_is_not_noise() {
        // z far above 10 (the MAD is 0.1%), but only 3% from the median.
        let n = Noise::of(&rounds(&[1e-3, 1.001e-3, 0.999e-3, 1.001e-3, 0.999e-3, 1.03e-3]), Mode::Procs).unwrap();
        assert_eq!(n.verdict, Verdict::Steady, "{n:?}");
    }
}
