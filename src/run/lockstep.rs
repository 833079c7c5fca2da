//! Running in step with other runs: the ranks of an MPI job, each
//! conducting its share of the global arrays with its own team.
//!
//! A conductor with a [`Lockstep`] starts every round after a barrier over
//! all of them, takes a round's time as the slowest one's (the global bytes
//! over it are the round's rate), makes every decision that changes what
//! happens next collectively — stop, or repeat a round after a recovery —
//! so that all of them run the same number of rounds, and combines its
//! validation with theirs. Implemented by the MPI layer; a run on its own
//! has none.

use crate::kernel::data::DotReference;
use crate::kernel::reduce::Node;
use crate::report::Validation;

/// The other runs this one moves in step with.
pub(crate) trait Lockstep {
    /// Elements per array over all of them.
    fn global_len(&self) -> u64;
    /// Waits for all of them before round `round` (counting every kernel's
    /// rounds from 0) starts.
    fn barrier(&self, round: u32);
    /// The largest `x` over all of them.
    fn max(&self, x: f64) -> f64;
    /// Whether any of them says `x`.
    fn any(&self, x: bool) -> bool;
    /// This run's verdict combined with everyone's: elements checked
    /// summed, the mismatch with the lowest global index (and the rank
    /// whose share it is), the digests XORed.
    fn combine(&self, mine: Validation) -> Validation;
    /// Every run's tree nodes of a reduction, and the sum of their
    /// references, for the tree over the global array.
    fn gather_dot(&self, nodes: Vec<Node>, reference: DotReference) -> (Vec<Node>, DotReference);
    /// Makes what the other runs wrote into memory this run checks visible
    /// to it (an MPI shared window's `MPI_Win_sync`); after a collective
    /// that follows their writes.
    fn sync_memory(&self) {}
}
