//! What the arrays have been through: the kernels applied so far, in
//! order, with their rounds.
//!
//! One record, derived from each kernel's line in the table (what it reads
//! and what it writes), serves everything that needs to know what the
//! arrays hold: validation replays it element by element with the scalar
//! oracle ([`super::data::verify`]); a replacement for a lost worker replays
//! it on its own chunk to stand where the others stand; and after a fault
//! during a kernel that updates in place, every worker whose chunk went one
//! round further than the round everyone completed rebuilds its chunk to
//! that round, so that a recovered run ends exactly as a fault-free one.
//!
//! A kernel that writes an array it does not read (`copy`, `add`, …) leaves
//! the same arrays however often it runs: it counts once. One that updates
//! in place (`nstream`, `fma`) counts every round. A reduction changes
//! nothing.

use serde::{Deserialize, Serialize};

use super::{Element, Formula, Op, Visit};
use crate::vocab::Array;

/// One kernel's rounds in a [`History`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The kernel.
    pub op: Op,
    /// Its rounds, warm-up included.
    pub rounds: u32,
}

/// The kernels applied to the arrays, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct History(Vec<Applied>);

/// Where a run stands: `rounds` rounds of kernel number `kernel` of the
/// run's kernels, every kernel before it complete.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The kernel's number in the run's order.
    pub kernel: u32,
    /// Its rounds so far.
    pub rounds: u32,
}

/// Whether a run of `ops` fills `c` from the generator: a kernel reads it
/// before any kernel writes it (otherwise it starts as zeroes, written
/// before it is read).
pub fn fills_c(ops: &[Op]) -> bool {
    for op in ops {
        if op.reads().contains(&Array::C) {
            return true;
        }
        if op.writes() == Some(Array::C) {
            return false;
        }
    }
    false
}

impl History {
    /// Nothing applied yet.
    pub fn new() -> History {
        History(Vec::new())
    }

    /// The history of a run of `ops`, each `per_kernel` rounds long, at
    /// `at`.
    pub fn at(ops: &[Op], per_kernel: u32, at: Position) -> History {
        let mut h = History::new();
        for (k, &op) in ops.iter().enumerate() {
            match (k as u32).cmp(&at.kernel) {
                std::cmp::Ordering::Less => h.apply(op, per_kernel),
                std::cmp::Ordering::Equal => h.apply(op, at.rounds),
                std::cmp::Ordering::Greater => break,
            }
        }
        h
    }

    /// Records `rounds` more rounds of `op`.
    pub fn apply(&mut self, op: Op, rounds: u32) {
        if rounds == 0 {
            return;
        }
        match self.0.last_mut() {
            Some(last) if last.op == op => last.rounds += rounds,
            _ => self.0.push(Applied { op, rounds }),
        }
    }

    /// The kernels applied, in order.
    pub fn entries(&self) -> &[Applied] {
        &self.0
    }

    /// What changed the arrays: each writing kernel with the number of
    /// times its effect must be replayed (every round of an update in
    /// place, once for any other).
    pub fn effects(&self) -> impl Iterator<Item = (Op, u32)> + '_ {
        self.0.iter().filter(|e| e.op.writes().is_some()).map(|e| (e.op, if e.op.idempotent() { 1 } else { e.rounds }))
    }

    /// Whether two histories leave the arrays in the same state.
    pub fn same_state(&self, other: &History) -> bool {
        let merged = |h: &History| {
            let mut out: Vec<(Op, u32)> = Vec::new();
            for (op, n) in h.effects() {
                match out.last_mut() {
                    Some(last) if last.0 == op => last.1 = if op.idempotent() { 1 } else { last.1 + n },
                    _ => out.push((op, n)),
                }
            }
            out
        };
        merged(self) == merged(other)
    }

    /// Whether some kernel wrote `array`.
    pub fn writes(&self, array: Array) -> bool {
        self.0.iter().any(|e| e.op.writes() == Some(array))
    }

    /// The rounds that updated `array` in place.
    pub fn updates(&self, array: Array) -> u32 {
        self.0.iter().filter(|e| e.op.writes() == Some(array) && !e.op.idempotent()).map(|e| e.rounds).sum()
    }

    /// Applies the history to `n` elements of the three arrays (each at
    /// least `n` long), with the scalar oracle: what they hold after it.
    pub fn replay<T: Element>(&self, a: &mut [T], b: &mut [T], c: &mut [T], n: usize) {
        for (op, times) in self.effects() {
            for _ in 0..times {
                op.visit(Pass { dest: op.writes().unwrap_or(Array::C), a: &mut *a, b: &mut *b, c: &mut *c, n });
            }
        }
    }
}

impl std::fmt::Display for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("nothing");
        }
        let parts: Vec<String> = self.0.iter().map(|e| format!("{} ×{}", e.op, e.rounds)).collect();
        f.write_str(&parts.join(", "))
    }
}

/// One kernel applied once to `n` elements, with the oracle's formula.
struct Pass<'x, T> {
    dest: Array,
    a: &'x mut [T],
    b: &'x mut [T],
    c: &'x mut [T],
    n: usize,
}

impl<T: Element> Visit for Pass<'_, T> {
    type Out = ();
    #[inline(always)]
    fn visit<F: Formula>(self) {
        let s = T::from_f64(super::STREAM_SCALAR);
        let n = self.n;
        let (a, b, c) = (&mut self.a[..n], &self.b[..n], &mut self.c[..n]);
        match self.dest {
            Array::A => {
                for i in 0..n {
                    a[i] = F::eval(a[i], b[i], c[i], s);
                }
            }
            _ => {
                for i in 0..n {
                    c[i] = F::eval(a[i], b[i], c[i], s);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_counts_what_changes_the_arrays() {
        let mut h = History::new();
        h.apply(Op::Copy, 11);
        h.apply(Op::Dot, 11);
        h.apply(Op::Nstream, 5);
        h.apply(Op::Nstream, 6);
        h.apply(Op::Fma, 3);
        assert_eq!(h.entries().len(), 4, "rounds of one kernel merge");
        let effects: Vec<(Op, u32)> = h.effects().collect();
        assert_eq!(effects, [(Op::Copy, 1), (Op::Nstream, 11), (Op::Fma, 3)]);
        assert_eq!((h.updates(Array::A), h.updates(Array::C)), (11, 3));
        assert!(h.writes(Array::A) && h.writes(Array::C) && !h.writes(Array::B));
        assert_eq!(h.to_string(), "copy ×11, dot ×11, nstream ×11, fma ×3");
    }

    #[test]
    fn positions_give_the_history_of_a_run() {
        let ops = [Op::Add, Op::Nstream, Op::Fma];
        let h = History::at(&ops, 4, Position { kernel: 1, rounds: 2 });
        assert_eq!(h.entries(), [Applied { op: Op::Add, rounds: 4 }, Applied { op: Op::Nstream, rounds: 2 }]);
        assert_eq!(History::at(&ops, 4, Position::default()), History::new());
        // Rounds of a kernel that does not update in place change nothing.
        let one = History::at(&ops, 4, Position { kernel: 0, rounds: 1 });
        assert!(one.same_state(&History::at(&ops, 4, Position { kernel: 0, rounds: 3 })));
        assert!(one.same_state(&History::at(&ops, 4, Position { kernel: 1, rounds: 0 })));
        assert!(!one.same_state(&History::at(&ops, 4, Position { kernel: 1, rounds: 1 })));
    }

    #[test]
    fn replaying_follows_the_oracle_in_order() {
        let (mut a, mut b, mut c) = (vec![1.0f64, 2.0], vec![0.5f64, 0.25], vec![0.0f64, 0.0]);
        let mut h = History::new();
        h.apply(Op::Add, 3); // c = a + b, once
        h.apply(Op::Fma, 2); // c = a·b + c, twice
        h.apply(Op::Nstream, 1); // a = a + (b + 3c)
        h.replay(&mut a, &mut b, &mut c, 2);
        assert_eq!(c, [1.5 + 0.5 + 0.5, 2.25 + 0.5 + 0.5]);
        assert_eq!(a, [1.0 + (0.5 + 3.0 * 2.5), 2.0 + (0.25 + 3.0 * 3.25)]);
    }
}
