//! The words every layer shares: what workers are made of, which array, where
//! the segment lives, how rounds are synchronised, which pages back it.
//!
//! Each is an enum with one lower-case name, used alike on the command line
//! (clap), in JSON (serde) and in tables ([`std::fmt::Display`]).
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

/// Defines a unit-only enum with one lower-case name per variant, used by
/// `name()`, `Display`, serde and clap alike.
macro_rules! named {
    ($(#[$meta:meta])* pub enum $name:ident {
        $($(#[$vmeta:meta])* $(@when($cfg:meta))? $variant:ident = $text:literal,)*
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
        pub enum $name {
            $($(#[$vmeta])* $(#[cfg($cfg)])? #[serde(rename = $text)] #[value(name = $text)] $variant,)*
        }

        impl $name {
            /// The name used on the command line, in JSON and in tables.
            pub fn name(self) -> &'static str {
                match self { $($(#[cfg($cfg)])? $name::$variant => $text,)* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

named! {
    /// What workers are made of.
    pub enum Mode {
        /// Worker processes over shared memory (isolated: a crash takes one worker)
        Procs = "procs",
        /// Threads of one process (shared address space: a crash takes the run)
        Threads = "threads",
        /// One thread, the baseline for speed-ups
        Serial = "serial",
        /// MPI ranks sharing an MPI-3 shared window, each computing its own chunk (under mpirun)
        @when(feature = "mpi") Ranks = "ranks",
    }
}

impl Mode {
    /// What `n` workers of this mode are, in words: "8 worker processes",
    /// "2 worker threads", "1 thread".
    pub fn workers(self, n: usize) -> String {
        let s = |one: &str, many: &str| if n == 1 { one.to_string() } else { many.to_string() };
        match self {
            Mode::Procs => format!("{n} worker {}", s("process", "processes")),
            Mode::Threads => format!("{n} worker {}", s("thread", "threads")),
            Mode::Serial => "1 thread".into(),
            #[cfg(feature = "mpi")]
            Mode::Ranks => "1 thread per rank".into(),
        }
    }

    /// The shortest round that times well in this mode: with workers, a
    /// round includes waking them and waiting for the last (microseconds;
    /// MPI ranks start every round after a barrier); in one thread only the
    /// clock's own cost (tens of nanoseconds), so a hundred times that is
    /// enough.
    pub fn min_round_s(self) -> f64 {
        if self.is_single() && !self.is_rank() { 2e-6 } else { 20e-6 }
    }

    /// Whether this is `--mode ranks` (which exists in builds with MPI).
    pub fn is_rank(self) -> bool {
        #[cfg(feature = "mpi")]
        return self == Mode::Ranks;
        #[cfg(not(feature = "mpi"))]
        false
    }

    /// Whether one thread computes everything this process holds (no
    /// workers to wait for, lose or replace): serial mode, or one MPI rank.
    pub fn is_single(self) -> bool {
        match self {
            Mode::Serial => true,
            #[cfg(feature = "mpi")]
            Mode::Ranks => true,
            Mode::Procs | Mode::Threads => false,
        }
    }
}

named! {
    /// One of the three arrays.
    pub enum Array {
        /// The first input (updated in place by `nstream`).
        A = "a",
        /// The second input.
        B = "b",
        /// The output (updated in place by `fma`).
        C = "c",
    }
}

impl Array {
    /// All three, in layout order.
    pub const ALL: [Array; 3] = [Array::A, Array::B, Array::C];

    /// The position in the segment: a, then b, then c.
    pub fn index(self) -> usize {
        match self {
            Array::A => 0,
            Array::B => 1,
            Array::C => 2,
        }
    }
}

named! {
    /// Where the shared segment lives.
    pub enum Backend {
        /// Anonymous memfd, sealed against shrinking: nothing to leak
        Memfd = "memfd",
        /// A POSIX shared-memory object in /dev/shm, unlinked as soon as it is created
        Posix = "posix",
    }
}

named! {
    /// How rounds are announced and reported.
    pub enum RoundSync {
        /// A futex doorbell and per-worker slots in the shared segment (a few µs per round)
        Doorbell = "doorbell",
        /// A message to each worker and one back per round (a socket round trip per worker)
        Ipc = "ipc",
    }
}

named! {
    /// Which pages back the arrays (`--huge-pages`).
    pub enum HugePages {
        /// Huge pages when the pool has room and the chunks stay balanced, else base pages
        Auto = "auto",
        /// Always base pages
        Never = "never",
        /// Huge pages or an error
        Always = "always",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn one_name_everywhere() {
        for m in Mode::value_variants() {
            assert_eq!(m.to_possible_value().unwrap().get_name(), m.name());
            assert_eq!(serde_json::to_string(m).unwrap(), format!("\"{m}\""));
        }
        assert_eq!(serde_json::from_str::<RoundSync>("\"ipc\"").unwrap(), RoundSync::Ipc);
        assert_eq!(Array::ALL.map(Array::index), [0, 1, 2]);
    }
}
