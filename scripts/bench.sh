#!/usr/bin/env bash
# vecpar's benchmark: builds the release binaries and the C reference (and
# BabelStream, when BABELSTREAM_SRC names a source tree of it), makes a
# virtualenv with numpy and numba for the seed chapter's Python versions, then
# runs scripts/bench.py (options are passed through; see --help).
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

# BabelStream (https://github.com/UoB-HPC/BabelStream) beside vecpar, built
# only from a source tree the user points at: nothing is downloaded here. The
# builds go under target/babelstream/, never into that tree; the commands are
# the ones in scripts/README.md.
build_babelstream() {
  local src commit out=target/babelstream
  src=$(cd "$BABELSTREAM_SRC" 2>/dev/null && pwd -P) \
    || { echo "bench: BABELSTREAM_SRC=$BABELSTREAM_SRC is not a directory" >&2; return 1; }
  if [ ! -f "$src/src/main.cpp" ] || [ ! -f "$src/src/omp/OMPStream.cpp" ]; then
    echo "bench: $src is not a BabelStream tree (no src/main.cpp and src/omp/OMPStream.cpp)" >&2
    return 1
  fi
  mkdir -p "$out"
  if [ "$(cat "$out/source" 2>/dev/null)" != "$src" ]; then
    # Another tree than last time: nothing built from the old one is kept
    # (cargo's compiled crates in $out/rust are, they are the same crates).
    rm -rf "$out/omp-build" "$out/rust-src" "$out/omp-stream" "$out/rust/release/rust-stream" "$out/built"
    echo "$src" >"$out/source"
  fi
  echo "source: $src" >"$out/built"
  if commit=$(git -C "$src" rev-parse HEAD 2>/dev/null); then echo "commit: $commit" >>"$out/built"; fi

  echo "building BabelStream's OpenMP version from $src" >&2
  if command -v cmake >/dev/null; then
    { cmake -S "$src" -B "$out/omp-build" -DMODEL=omp -DCMAKE_CXX_FLAGS="-O3 -march=native" \
        -DFETCHCONTENT_FULLY_DISCONNECTED=ON \
      && cmake --build "$out/omp-build" -j 2; } >"$out/omp-build.log" 2>&1 \
      || { echo "bench: BabelStream's cmake build failed; see $out/omp-build.log" >&2; return 1; }
    cp "$out/omp-build/omp-stream" "$out/omp-stream"
    echo "omp: cmake -DMODEL=omp -DCMAKE_CXX_FLAGS=\"-O3 -march=native\"" >>"$out/built"
  else
    # No cmake: the same build by hand, with the definitions cmake passes
    # for MODEL=omp (OMP selects the model, DEFAULT its memory mode).
    command -v g++ >/dev/null || { echo "bench: cmake or g++ is needed for BabelStream" >&2; return 1; }
    g++ -std=c++14 -O3 -march=native -fopenmp -DOMP -DDEFAULT -DNDEBUG -I "$src/src" -I "$src/src/omp" \
      "$src/src/main.cpp" "$src/src/omp/OMPStream.cpp" -o "$out/omp-stream" 2>"$out/omp-build.log" \
      || { echo "bench: BabelStream's g++ build failed; see $out/omp-build.log" >&2; return 1; }
    echo "omp: g++ -std=c++14 -O3 -march=native -fopenmp -DOMP -DDEFAULT -DNDEBUG (no cmake)" >>"$out/built"
  fi

  local crate="$src/src/rust/rust-stream"
  if [ ! -f "$crate/Cargo.toml" ]; then
    echo "bench: this tree has no Rust port (src/rust/rust-stream): comparing with the OpenMP version only" >&2
    return 0
  fi
  echo "building BabelStream's Rust port (offline)" >&2
  # A copy of the crate, since cargo rewrites its Cargo.lock (upstream's can lag
  # behind Cargo.toml); --offline, so it builds only from crates already in
  # cargo's cache; RUSTC_BOOTSTRAP=1, since it uses #![feature(allocator_api)].
  rm -rf "$out/rust-src" && mkdir -p "$out/rust-src"
  tar -C "$crate" --exclude=./target -cf - . | tar -C "$out/rust-src" -xf -
  if RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$out/rust" \
      cargo build --release --offline --manifest-path "$out/rust-src/Cargo.toml" >"$out/rust-build.log" 2>&1; then
    echo "rust: RUSTC_BOOTSTRAP=1 cargo build --release --offline" >>"$out/built"
  else
    rm -f "$out/rust/release/rust-stream"
    echo "bench: BabelStream's Rust port did not build (see $out/rust-build.log): comparing with the OpenMP version only." >&2
    if grep -q -- "--offline\|offline mode\|no matching package" "$out/rust-build.log"; then
      echo "  Its crates are not in cargo's cache; download them once with" >&2
      echo "  cargo fetch --manifest-path $out/rust-src/Cargo.toml" >&2
    fi
  fi
}

if [ -n "${BABELSTREAM_SRC:-}" ]; then
  build_babelstream
fi

if [ ! -x scripts/.venv/bin/python ] || ! scripts/.venv/bin/python -c 'import numpy, numba' 2>/dev/null; then
  echo "making scripts/.venv with numpy and numba" >&2
  python3 -m venv scripts/.venv
  scripts/.venv/bin/pip install -q --disable-pip-version-check numpy numba
fi

exec python3 scripts/bench.py "$@"
