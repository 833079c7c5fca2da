#!/usr/bin/env bash
# vecpar's benchmark: builds the release binaries and the C reference, makes
# a virtualenv with numpy and numba for the seed chapter's Python versions,
# then runs scripts/bench.py (options are passed through; see --help).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "building vecpar (release)" >&2
cargo build --release --locked -q

echo "building the STREAM-style C reference" >&2
command -v gcc >/dev/null || { echo "bench: gcc is needed for the C reference" >&2; exit 1; }
mkdir -p target
gcc -O3 -march=native -fopenmp scripts/stream.c -o target/stream-regular -lm
gcc -O3 -march=native -fopenmp -DNONTEMPORAL scripts/stream.c -o target/stream-nt -lm
gcc -O2 -pthread scripts/spawn_floor.c -o target/spawn-floor
gcc -O3 -march=native scripts/seed_case.c -o target/seed-case
gcc -O3 -march=native scripts/simd_l1.c -o target/simd-l1

if [ ! -x scripts/.venv/bin/python ] || ! scripts/.venv/bin/python -c 'import numpy, numba' 2>/dev/null; then
  echo "making scripts/.venv with numpy and numba" >&2
  python3 -m venv scripts/.venv
  scripts/.venv/bin/pip install -q --disable-pip-version-check numpy numba
fi

exec python3 scripts/bench.py "$@"
