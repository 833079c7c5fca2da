#!/usr/bin/env bash
# Reproduces the README's figures and tables on this machine, into docs/:
#   scaling.svg / scaling.md    GB/s against workers, processes vs threads vs serial
#   lengths.svg / lengths.md    GB/s against length, with the cache sizes marked
#   isolation.md                the fault matrix and its summary
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
mkdir -p docs
coord=target/release/vecpar-coord

$coord sweep --procs 1,2,4,8 --len 1e7 --runs 20 --repeat 5 --quiet \
  --plot docs/scaling.svg --export-markdown docs/scaling.md
$coord sweep --procs 2 --len 1e3,1e4,1e5,1e6,1e7,1e8 --runs 10 --repeat 3 --quiet \
  --plot docs/lengths.svg --export-markdown docs/lengths.md
$coord isolation --quiet --export-markdown docs/isolation.md
echo "wrote docs/scaling.svg docs/lengths.svg docs/scaling.md docs/lengths.md docs/isolation.md" >&2
