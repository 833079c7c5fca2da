#!/usr/bin/env bash
# vecpar on MPI, on one machine: installs Open MPI (Debian/Ubuntu, as root),
# builds with --features mpi, runs 1, 2 and 4 ranks, two simulated nodes,
# and compares the four layouts at one --len.
#
#   scripts/mpi.sh            everything below
#   scripts/mpi.sh install    Open MPI and libclang (apt-get)
#   scripts/mpi.sh build      cargo build --release --features mpi
#   scripts/mpi.sh ranks      1, 2, 4 ranks on this node; digests against a one-machine run
#   scripts/mpi.sh nodes      4 ranks on two simulated nodes (UTS namespaces, needs root)
#   scripts/mpi.sh compare [LEN] [REPEAT]
#                             procs vs MPI+procs vs --mode ranks vs serial ranks (default 2e7, 5)
set -euo pipefail
cd "$(dirname "$0")/.."
coord=$PWD/target/release/vecpar-coord

# As root on a machine without a network: what mpirun needs (each flag as
# the OMPI_MCA_* variable it also is). Ranks may outnumber the CPUs.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_mpi_yield_when_idle=1
export OMPI_MCA_btl=self,vader,tcp OMPI_MCA_btl_tcp_if_include=lo
run() { timeout -k 5 600 mpirun --bind-to none "$@"; }

install() {
  command -v mpirun >/dev/null && dpkg-query -W libclang-common-14-dev >/dev/null 2>&1 && return
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends openmpi-bin libopenmpi-dev libclang1-14 libclang-common-14-dev
}

build() { cargo build --release --locked --features mpi; }

digest() { grep -ao 'c digest [0-9a-f]*' | head -1; }

ranks() {
  local want
  want=$("$coord" --mode serial --len 1000003 --op all | digest)
  echo "one machine, serial: $want"
  for n in 1 2 4; do
    for mode in "--mode procs --procs 2" "--mode threads --procs 2" "--mode serial" "--mode ranks"; do
      # shellcheck disable=SC2086
      got=$(run -n $n "$coord" --len 1000003 --op all $mode -q | digest)
      echo "$n rank(s), $mode: $got $([ "$got" = "$want" ] && echo ok || echo DIFFERS)"
    done
  done
}

nodes() {
  local want out
  want=$("$coord" --mode serial --len 1000003 --op all -q | digest)
  out=$(run -n 4 --host nodeA:2,nodeB:2 --mca plm_rsh_agent "$PWD/tests/helpers/fake-rsh.sh" \
    "$coord" --len 1000003 --op all --mode procs --procs 1 --color never)
  echo "$out"
  got=$(echo "$out" | digest)
  echo "two simulated nodes: $got; one machine, serial: $want: $([ "$got" = "$want" ] && echo ok || echo DIFFERS)"
}

compare() {
  local len=${1:-2e7} repeat=${2:-5} dir
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' RETURN
  # Interleaved, so that a change in the machine's load touches all four;
  # each command's wall time, exec to exit (mpirun's own start included).
  timed() {
    local name=$1 t0 t1
    shift
    t0=$(date +%s%N)
    "$@" --len "$len" --export-json "$dir/$name.$i.json" -q >/dev/null
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000)) >"$dir/$name.$i.wall"
  }
  for i in $(seq "$repeat"); do
    timed procs "$coord" --mode procs --procs 2
    timed hybrid run -n 2 "$coord" --mode procs --procs 1
    timed ranks run -n 2 "$coord" --mode ranks
    timed serial run -n 2 "$coord" --mode serial
  done
  python3 - "$dir" "$len" "$repeat" <<'PY'
import json, glob, statistics, sys
d, length, repeat = sys.argv[1:]
rows = [("procs", "vecpar-coord --mode procs --procs 2"),
        ("hybrid", "mpirun -n 2 vecpar-coord --mode procs --procs 1"),
        ("ranks", "mpirun -n 2 vecpar-coord --mode ranks"),
        ("serial", "mpirun -n 2 vecpar-coord --mode serial")]
print(f"add, --len {length}, {repeat} runs each (median of each run's median GB/s; min-max over runs)")
print("| layout | command | median GB/s | min-max | workers' start | exec to exit | digest |")
print("|---|---|---:|---:|---:|---:|---|")
for key, cmd in rows:
    reps = [json.load(open(f)) for f in sorted(glob.glob(f"{d}/{key}.*.json"))]
    g = [r["kernels"][0]["summary"]["median_gbps"] for r in reps]
    s = [r["phases"]["spawn_s"] for r in reps]
    w = [int(open(f).read()) / 1e6 for f in sorted(glob.glob(f"{d}/{key}.*.wall"))]
    dig = {r["kernels"][0]["validation"]["c_digest"] for r in reps}
    print(f"| {key} | `{cmd}` | {statistics.median(g):.1f} | {min(g):.1f}–{max(g):.1f} | "
          f"{statistics.median(s)*1e3:.2f} ms | {statistics.median(w):.2f} s | {' '.join(dig)} |")
PY
}

case "${1:-all}" in
  install) install ;;
  build) build ;;
  ranks) ranks ;;
  nodes) nodes ;;
  compare) shift; compare "$@" ;;
  all) install; build; ranks; nodes; compare ;;
  *) echo "usage: scripts/mpi.sh [install|build|ranks|nodes|compare [LEN] [REPEAT]]" >&2; exit 2 ;;
esac
