//! Order statistics over a handful of timings, and outliers among them.
#![forbid(unsafe_code)]

/// Summary statistics of a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Stats {
    /// Smallest value.
    pub min: f64,
    /// First quartile (linear interpolation between order statistics).
    pub q1: f64,
    /// Median (mean of the middle two for even sizes).
    pub median: f64,
    /// Third quartile.
    pub q3: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Largest value.
    pub max: f64,
    /// Sample standard deviation (0 for one value).
    pub stddev: f64,
}

impl Stats {
    /// Statistics of `values`; `None` when empty.
    pub(crate) fn of(values: &[f64]) -> Option<Stats> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let stddev =
            if n > 1 { (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
        Some(Stats {
            min: v[0],
            q1: quantile(&v, 0.25),
            median: quantile(&v, 0.5),
            q3: quantile(&v, 0.75),
            mean,
            max: v[n - 1],
            stddev,
        })
    }

    /// The interquartile range.
    pub(crate) fn iqr(&self) -> f64 {
        self.q3 - self.q1
    }
}

/// The `p`-quantile of sorted values, interpolating linearly between order
/// statistics (R's type 7, numpy's default).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The median of `values`; `None` when empty.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    Stats::of(values).map(|s| s.median)
}

/// The threshold on the modified z-score above which a value is an outlier:
/// 10 standard deviations, as hyperfine uses (its `(x − median) / MAD` above
/// 1.4826 × 10 is this score above 10). Iglewicz and Hoaglin's 3.5 flags
/// nearly every run here: the rounds of a memory kernel are so tight that
/// their MAD is a fraction of a percent of the median.
pub(crate) const OUTLIER_Z: f64 = 10.0;

/// An outlier must also stand this far (a fraction of the median) from
/// the median: a round 2% slow is no reason to doubt a number, however
/// steady the others are.
pub(crate) const OUTLIER_MIN_SHARE: f64 = 0.05;

/// Modified z-scores, `0.6745 · (x − median) / MAD` (Iglewicz and Hoaglin):
/// robust where the mean and standard deviation are pulled by the very
/// outliers one looks for. All zero when the MAD is zero.
pub(crate) fn modified_z_scores(values: &[f64]) -> Vec<f64> {
    let Some(m) = median(values) else { return Vec::new() };
    let deviations: Vec<f64> = values.iter().map(|x| (x - m).abs()).collect();
    let mad = median(&deviations).unwrap_or(0.0);
    // Half the values or more equal the median: any other is infinitely
    // far by this measure (callers also ask for a distance in time).
    values
        .iter()
        .map(|&x| match (mad > 0.0, x == m) {
            (true, _) => 0.6745 * (x - m) / mad,
            (false, true) => 0.0,
            (false, false) => f64::INFINITY.copysign(x - m),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_and_even_samples() {
        let s = Stats::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max, s.mean), (1.0, 2.0, 3.0, 2.0));
        assert!((s.stddev - 1.0).abs() < 1e-12);
        assert_eq!((s.q1, s.q3), (1.5, 2.5));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(Stats::of(&[5.0]).unwrap().stddev, 0.0);
        assert_eq!(Stats::of(&[5.0]).unwrap().iqr(), 0.0);
        assert!(Stats::of(&[]).is_none());
    }

    #[test]
    fn one_slow_round_is_an_outlier() {
        let z = modified_z_scores(&[10.0, 10.2, 9.9, 10.1, 10.0, 55.0]);
        let outliers: Vec<usize> = (0..z.len()).filter(|&i| z[i].abs() > OUTLIER_Z).collect();
        assert_eq!(outliers, vec![5]);
        assert!(modified_z_scores(&[1.0, 1.0, 1.0]).iter().all(|&z| z == 0.0));
    }
}
