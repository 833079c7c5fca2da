//! Running a sweep: every point of the plan, `--repeat` times in rotating
//! order, into one report. Interrupted, it keeps what finished.

use crate::config::SweepPlan;
use crate::error::Error;
use crate::machine::{HostInfo, Machine};
use crate::report::sweep::{SweepReport, points_of};
use crate::report::{Provenance, RunReport};
use crate::signals::Interrupted;
use crate::units::human_number;
use crate::warnings::Warning;

/// Runs `plan`. `each` is told before every run (for a progress bar). A
/// signal ends it early: the report then holds the points finished (marked
/// `partial`), and the signal comes back beside it.
pub(crate) fn run(
    plan: &SweepPlan,
    machine: &Machine,
    arguments: Vec<String>,
    mut each: impl FnMut(usize, usize, &str),
) -> Result<(SweepReport, Option<Interrupted>), Error> {
    let host = HostInfo::of(machine);
    let n = plan.points.len();
    let total = n * plan.repeat;
    let mut by_point: Vec<Vec<RunReport>> = vec![Vec::new(); n];
    let mut runs = Vec::with_capacity(total);
    let mut warnings: Vec<Warning> = plan.notes.clone();
    let mut interrupted = None;
    let (mut in_cache, mut llc) = (Vec::new(), 0);
    let (mut noisy, mut short, mut scattered) = (0, 0, 0);
    let mut throttled: Vec<String> = Vec::new();
    let quota = machine.cpu_quota.as_ref().map(|q| q.cpus());
    'grid: for rep in 0..plan.repeat {
        // Each repetition starts one point later, so that no point always
        // runs right after the same neighbour (or first, on a cold machine).
        for k in 0..n {
            let i = (rep + k) % n;
            let cfg = &plan.points[i];
            let what = format!(
                "{} × {}, len {}, {}, {}, {}",
                cfg.mode(),
                cfg.procs(),
                human_number(cfg.len() as f64),
                cfg.ops()[0],
                cfg.dtype(),
                cfg.simd()
            );
            each(rep * n + k, total, &what);
            let about = Provenance::new("run", arguments.clone(), host.clone());
            let report = match crate::run::run_with(cfg, about, crate::run::With::default()) {
                Ok(report) => report,
                Err(Error::Interrupted(i)) => {
                    interrupted = Some(i);
                    break 'grid;
                }
                Err(e) => return Err(e),
            };
            // What each run says about itself is summed up over the sweep:
            // its doubts as the table marks them, the rest each once.
            let doubts = crate::report::sweep::suspect_of(std::slice::from_ref(&report));
            let doubted = |word: &str| doubts.iter().any(|d| d == word);
            noisy += usize::from(doubted("noisy"));
            scattered += usize::from(doubted("scattered"));
            short += usize::from(doubted("too-short"));
            if doubted("throttled") && !throttled.contains(&what) {
                throttled.push(what.clone());
            }
            for w in &report.warnings {
                match w {
                    Warning::FitsInCache { llc: bytes, .. } | Warning::PartlyCached { llc: bytes, .. } => {
                        llc = *bytes;
                        if !in_cache.contains(&cfg.len()) {
                            in_cache.push(cfg.len());
                        }
                    }
                    Warning::Outliers { .. }
                    | Warning::Scattered { .. }
                    | Warning::TooShort { .. }
                    | Warning::Throttled { .. } => {}
                    w if !warnings.contains(w) => warnings.push(w.clone()),
                    _ => {}
                }
            }
            by_point[i].push(report.clone());
            runs.push(report);
        }
    }
    if !in_cache.is_empty() {
        in_cache.sort_unstable();
        let lens = in_cache.iter().map(|&l| human_number(l as f64)).collect();
        warnings.push(Warning::SweepInCache { lens, llc });
    }
    if !throttled.is_empty() {
        warnings.push(Warning::SweepThrottled { points: throttled, quota });
    }
    if noisy + short + scattered > 0 {
        warnings.push(Warning::NoisyRuns { noisy, short, scattered, runs: runs.len() });
    }
    let report = SweepReport {
        about: Provenance::new("sweep", arguments, host),
        partial: interrupted.is_some(),
        cpus: machine.cpu_room(),
        cpu_quota: quota,
        points: points_of(&by_point),
        runs,
        warnings,
    };
    Ok((report, interrupted))
}
