//! Waiting for a doorbell step, shared by the process and thread teams.
//!
//! The coordinator rings, then watches every live worker's slot until each
//! has finished the step. Every [`POLL`] it asks the team which pending
//! workers are gone (a process that exited, a thread that ended), and it
//! gives each worker [`Patience`]: renewed whenever its heartbeat or its
//! progress moves, or while it waits for its peers. A worker whose patience
//! runs out is hung. Once one worker is lost the batch is aborted, and the
//! wait goes on until every other worker has left it, so the next step can
//! never meet a straggler of this one.

use std::time::Duration;

use super::team::{Lost, RoundTimes};
use crate::clock::Patience;
use crate::protocol::{Step, Timing};
use crate::shm::Control;
use crate::signals::{self, Interrupted};

/// How often a waiting coordinator looks at its workers.
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// What a team tells the waiting coordinator about its members.
pub(crate) trait Watch {
    /// Which of `ids` are gone (a process that exited, a thread that
    /// ended), and why.
    fn gone(&mut self, ids: &[usize]) -> Vec<Lost>;
    /// `ids` showed no progress within `patience`: stops them where it can
    /// and says why they are lost.
    fn hung(&mut self, ids: &[usize], patience: Duration) -> Vec<Lost>;
}

/// Rings `step` for the workers `live` and waits for its end. Returns the
/// step's sequence and the workers lost.
pub(crate) fn ring_and_wait(
    control: &Control<'_>,
    step: &Step,
    live: &[usize],
    spin: Duration,
    patience: Duration,
    watch: &mut dyn Watch,
) -> Result<(u32, Vec<Lost>), Interrupted> {
    let seq = control.ring(step, live.len() as u32, crate::clock::now_ns());
    let mut lost: Vec<Lost> = Vec::new();
    let mut aborted = false;
    let mut spin = spin;
    let mut watched: Vec<(usize, Patience, (u64, u32))> =
        live.iter().map(|&id| (id, Patience::new(patience), (u64::MAX, u32::MAX))).collect();
    loop {
        if let Err(interrupted) = signals::check() {
            control.abort(seq);
            return Err(interrupted);
        }
        watched.retain(|(id, _, _)| !lost.iter().any(|l| l.id == *id) && !control.standing(*id, seq).done);
        if watched.is_empty() {
            return Ok((seq, lost));
        }
        let pending: Vec<usize> = watched.iter().map(|w| w.0).collect();
        let gone = watch.gone(&pending);
        let mut hung = Vec::new();
        for (id, p, last) in &mut watched {
            if gone.iter().any(|l| l.id == *id) {
                continue;
            }
            let st = control.standing(*id, seq);
            let now = (st.heartbeat, st.progress);
            if st.waiting || now != *last {
                *last = now;
                p.renew();
            } else if p.tick() {
                hung.push(*id);
            }
        }
        lost.extend(gone);
        if !hung.is_empty() {
            lost.extend(watch.hung(&hung, patience));
        }
        if !lost.is_empty() && !aborted {
            control.abort(seq);
            aborted = true;
        }
        control.wait_for_reports(spin, POLL);
        spin = Duration::ZERO;
    }
}

/// The rounds of batch `seq` that every one of `expected` completed, with
/// their timings.
pub(crate) fn completed_rounds(control: &Control<'_>, seq: u32, expected: &[usize], count: u32) -> Vec<RoundTimes> {
    let done = expected.iter().map(|&id| control.standing(id, seq).progress).min().unwrap_or(0).min(count);
    let slots = control.slots();
    (0..done as usize)
        .map(|k| RoundTimes {
            release_ns: control.release_ns(k),
            workers: (0..slots)
                .map(|id| {
                    if expected.contains(&id) {
                        let s = control.stamp_of(id, k);
                        Timing { start_ns: s.start_ns, end_ns: s.end_ns, cpu: s.cpu }
                    } else {
                        Timing::default()
                    }
                })
                .collect(),
            slowest_s: None,
        })
        .collect()
}
