#!/usr/bin/env bash
# run-in-guest.sh OUT_DIR NODES CPUS_PER_NODE MEM_MB_PER_NODE SCRIPT_FILE
#
# Boots the guest that prepare.sh built in OUT_DIR under QEMU/TCG, with NODES
# emulated NUMA nodes (vCPUs i*CPUS_PER_NODE .. on node i, MEM_MB_PER_NODE MiB
# each), runs SCRIPT_FILE there as /cmd.sh (busybox sh, root, clean env, cwd
# /tmp), prints what it printed (stdout and stderr, CR removed) on stdout and
# exits with its exit status. 124 if the guest did not finish within
# GUEST_TIMEOUT or never printed the end marker (last console lines on stderr).
# One summary line (wall time, guest uptime) goes to stderr.
#
# Environment:
#   GUEST_TIMEOUT   seconds for boot + script + power-off (300)
#   GUEST_BOOT_TIMEOUT  seconds for the guest to be up (its /init running; 120):
#                   a guest not up by then is stopped and booted again
#   GUEST_BOOT_TRIES    boots in all before giving up with 124 (3)
#   GUEST_APPEND    extra kernel command-line arguments (appended last)
#   NUMA_BALANCING  1 keeps automatic NUMA balancing on (default: numa_balancing=disable)
#   GUEST_CPU       QEMU -cpu model (max)
#   GUEST_CONSOLE   if set, a file to copy the whole serial console log to
#   GUEST_PARALLEL  1: do not wait for other guests booted from OUT_DIR (default:
#                   one guest per OUT_DIR at a time; the wait is not timed)
#   GUEST_QUIET     1: no summary line on stderr
#   RIG_PDEATHSIG   0: do not end this script when its parent dies (default: on)
#
# QEMU never outlives this script: it runs under timeout(1), and each of
# timeout and QEMU gets SIGKILL when its parent dies (setpriv --pdeathsig).
# The per-run files live in OUT_DIR/.run.XXXXXX, removed on every exit path
# (a watcher removes it if this script is SIGKILLed; the next run sweeps
# leftovers of runs whose script is gone).
set -euo pipefail
export LC_ALL=C
prog=run-in-guest.sh
usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "$prog: $*" >&2; exit 2; }

have_pdeathsig=0
if command -v setpriv >/dev/null 2>&1 && setpriv --help 2>&1 | grep -q -- --pdeathsig; then have_pdeathsig=1; fi

# Die with our caller: re-exec under setpriv so that SIGTERM reaches us (and the
# trap below cleans up) when the process that started us dies.
if [ "$have_pdeathsig" = 1 ] && [ "${RIG_PDEATHSIG:-1}" = 1 ] && [ -z "${_RIG_REEXEC:-}" ]; then
  export _RIG_REEXEC=$PPID
  exec setpriv --pdeathsig TERM -- "$BASH" "$0" "$@"
fi
if [ -n "${_RIG_REEXEC:-}" ]; then
  # the parent may have died before setpriv armed the signal
  [ "$PPID" = "$_RIG_REEXEC" ] || { echo "$prog: parent gone before start" >&2; exit 143; }
  unset _RIG_REEXEC
fi

[ $# -eq 5 ] || usage
out=$1; nodes=$2; cpn=$3; mem=$4; script=$5
isint() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
isint "$nodes" && [ "$nodes" -le 64 ] || die "NODES must be 1..64, not '$nodes'"
isint "$cpn" && [ $((nodes * cpn)) -le 255 ] || die "CPUS_PER_NODE must be >= 1 (and NODES*CPUS_PER_NODE <= 255), not '$cpn'"
isint "$mem" && [ "$mem" -ge 64 ] || die "MEM_MB_PER_NODE must be >= 64, not '$mem'"
timeout_s=${GUEST_TIMEOUT:-300}
isint "$timeout_s" || die "GUEST_TIMEOUT must be a positive integer, not '$timeout_s'"
[ -f "$script" ] && [ -r "$script" ] || die "SCRIPT_FILE '$script' is not a readable file"
[ -d "$out" ] || die "OUT_DIR '$out' does not exist (run prepare.sh first)"
out=$(cd "$out" && pwd)
[ -s "$out/base.cpio" ] && [ -s "$out/vmlinux" ] || die "$out has no base.cpio/vmlinux (run prepare.sh first)"
command -v qemu-system-x86_64 >/dev/null 2>&1 || die "missing host package: qemu-system-x86"

# ---- leftovers of runs whose script is gone (e.g. SIGKILLed with its watcher) ----
starttime() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; set -- $s; echo "${20}"; }
for d in "$out"/.run.*; do
  [ -d "$d" ] || continue
  read -r opid ostart 2>/dev/null < "$d/owner" || { [ "$(find "$d" -maxdepth 0 -mmin +1 2>/dev/null)" ] && rm -rf "$d"; continue; }
  [ "$(starttime "$opid" || true)" = "$ostart" ] && continue      # still running
  if read -r qp 2>/dev/null < "$d/qemu.pid" && grep -qF "$d" "/proc/$qp/cmdline" 2>/dev/null; then
    kill -KILL "$qp" 2>/dev/null || true
  fi
  rm -rf "$d"
done

# ---- per-run dir, cleanup on every exit path ----
work=$(mktemp -d "$out/.run.XXXXXX")
echo "$$ $(starttime $$)" > "$work/owner"
tpid=""; wpid=""; fpid=""; lockfd=""
cleanup() {
  trap '' INT TERM HUP
  if [ -n "$tpid" ]; then
    kill -TERM "$tpid" 2>/dev/null || true        # timeout(1) passes it on to QEMU, SIGKILL 5 s later
    wait "$tpid" 2>/dev/null || true
    tpid=""
  fi
  if read -r qp 2>/dev/null < "$work/qemu.pid" && grep -qF "$work" "/proc/$qp/cmdline" 2>/dev/null; then
    kill -KILL "$qp" 2>/dev/null || true
  fi
  rm -rf "$work"
  if [ -n "$fpid" ]; then kill -KILL "$fpid" 2>/dev/null || true; wait "$fpid" 2>/dev/null || true; fpid=""; fi
  if [ -n "$wpid" ]; then kill -USR1 "$wpid" 2>/dev/null || true; wait "$wpid" 2>/dev/null || true; wpid=""; fi
}
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP

# Watcher: removes the run dir if this script dies without running its trap
# (SIGKILL). It has its own session (group signals miss it) and gets SIGUSR1
# when we die; on a normal exit the trap above sends it SIGUSR1 itself.
if [ "$have_pdeathsig" = 1 ]; then
  setsid setpriv --pdeathsig USR1 -- /bin/sh -c '
    sp=
    trap "[ -z \"\$sp\" ] || kill \$sp 2>/dev/null; rm -rf \"\$1\"; exit 0" USR1
    trap "" INT TERM HUP
    [ "$PPID" = "$2" ] || { rm -rf "$1"; exit 0; }
    while [ -d "$1" ]; do sleep 30 & sp=$!; wait $sp; done' watcher "$work" "$$" </dev/null >/dev/null 2>&1 &
  wpid=$!
fi

# ---- one guest per OUT_DIR at a time (2 host cores: parallel TCG guests only slow each other) ----
if [ "${GUEST_PARALLEL:-0}" != 1 ]; then
  exec {lockfd}<"$out"
  flock "$lockfd" & fpid=$!
  wait "$fpid" || die "could not lock $out"
  fpid=""
fi

# ---- the per-run cpio: /cmd.sh and /run.env (nonce for the markers) ----
nonce=$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
mkdir "$work/root"
cp "$script" "$work/root/cmd.sh"; chmod 0755 "$work/root/cmd.sh"
echo "NONCE=$nonce" > "$work/root/run.env"
(cd "$work/root" && printf '%s\n' cmd.sh run.env | cpio -o -H newc -R 0:0 --quiet) > "$work/cmd.cpio"
cat "$out/base.cpio" "$work/cmd.cpio" > "$work/initrd.cpio"

# ---- QEMU ----
numa=()
for ((i = 0; i < nodes; i++)); do
  numa+=(-object "memory-backend-ram,id=m$i,size=${mem}M"
         -numa "node,nodeid=$i,cpus=$((i * cpn))-$((i * cpn + cpn - 1)),memdev=m$i")
done
if [ "${NUMA_BALANCING:-0}" = 1 ]; then nb=numa_balancing=enable; else nb=numa_balancing=disable; fi
append="console=ttyS0 quiet loglevel=3 panic=-1 tsc=reliable $nb ${GUEST_APPEND:-}"
qemu=(qemu-system-x86_64 -nodefaults -no-user-config
      -accel tcg,thread=multi -cpu "${GUEST_CPU:-max}" -machine pc
      -m $((nodes * mem))M -smp "$((nodes * cpn)),sockets=$nodes,cores=$cpn,threads=1" "${numa[@]}"
      -kernel "$out/vmlinux" -initrd "$work/initrd.cpio" -append "$append"
      -nic none -vga none -display none -monitor none
      -serial "file:$work/console" -serial "file:$work/out"
      -no-reboot -pidfile "$work/qemu.pid")
pd=(); [ "$have_pdeathsig" = 1 ] && pd=(setpriv --pdeathsig KILL --)

# A guest that is not up (its /init's marker on the console) within
# GUEST_BOOT_TIMEOUT is booted again, up to GUEST_BOOT_TRIES times in all:
# under TCG, with more vCPUs than host CPUs on a busy machine, Debian's
# kernel has been seen to hang while booting (a kworker in a soft lockup
# for minutes, before /init ran). Each new boot is said on stderr.
boot_s=${GUEST_BOOT_TIMEOUT:-120}
tries=${GUEST_BOOT_TRIES:-3}
isint "$boot_s" || die "GUEST_BOOT_TIMEOUT must be a positive integer, not '$boot_s'"
isint "$tries" || die "GUEST_BOOT_TRIES must be a positive integer, not '$tries'"
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", b - a }'; }
attempt=1
gaveup=""
t0=$EPOCHREALTIME
: > "$work/qemu.log"
while :; do
  rm -f "$work/console" "$work/out" "$work/qemu.pid"
  tb=$EPOCHREALTIME
  left=$((timeout_s - $(since "$t0")))                    # GUEST_TIMEOUT covers every boot
  [ "$left" -gt 0 ] || left=1
  echo "[boot $attempt]" >> "$work/qemu.log"
  "${pd[@]}" timeout -k 5 "$left" "${pd[@]}" "${qemu[@]}" </dev/null >>"$work/qemu.log" 2>&1 &
  tpid=$!
  up=0
  while kill -0 "$tpid" 2>/dev/null; do
    if grep -aqF "@@VNT-UP $nonce" "$work/console" 2>/dev/null; then up=1; break; fi
    [ "$(since "$tb")" -lt "$boot_s" ] || break
    sleep 0.2
  done
  if [ "$up" = 1 ] || ! kill -0 "$tpid" 2>/dev/null; then
    break                                                 # up, or QEMU ended: the results say which
  fi
  {
    echo "[run-in-guest] the guest was not up after ${boot_s}s (boot $attempt of $tries); its last console lines:"
    tr -d '\r' < "$work/console" 2>/dev/null | tail -n 5 | sed 's/^/  | /'
  } >&2 || true
  kill -TERM "$tpid" 2>/dev/null || true                  # timeout(1) passes it on to QEMU
  wait "$tpid" 2>/dev/null || true
  tpid=""
  if read -r qp 2>/dev/null < "$work/qemu.pid" && grep -qF "$work" "/proc/$qp/cmdline" 2>/dev/null; then
    kill -KILL "$qp" 2>/dev/null || true
  fi
  if [ "$attempt" -ge "$tries" ] || [ "$(since "$t0")" -ge "$timeout_s" ]; then
    gaveup="not up after ${boot_s}s in $attempt boot(s)"
    break
  fi
  attempt=$((attempt + 1))
  echo "[run-in-guest] booting it again" >&2
done
qrc=0
if [ -n "$tpid" ]; then wait "$tpid" || qrc=$?; fi
tpid=""
t1=$EPOCHREALTIME
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')

# ---- results ----
tr -d '\r' < "$work/console" > "$work/console.txt" 2>/dev/null || : > "$work/console.txt"
[ -z "${GUEST_CONSOLE:-}" ] || cp "$work/console.txt" "$GUEST_CONSOLE" || true
tr -d '\r' < "$work/out" > "$work/out.txt" 2>/dev/null || : > "$work/out.txt"
begin="@@VNT-BEGIN $nonce"
b=$(grep -aboF "$begin" "$work/out.txt" | head -n1 | cut -d: -f1 || true)
e=$(grep -aboF "@@VNT-END $nonce rc=" "$work/out.txt" | tail -n1 | cut -d: -f1 || true)
grc=""
if [ -n "$b" ]; then
  s=$((b + ${#begin} + 1))                                # first byte after the BEGIN line
  if [ -n "$e" ]; then
    grc=$(tail -c +$((e + 1)) "$work/out.txt" | sed -n '1s/.* rc=\([0-9]*\).*/\1/p')
    # bytes s .. e-2: the END line starts with a \n of its own (no pipe into head: no SIGPIPE)
    head -c $((e - 1)) "$work/out.txt" > "$work/body.txt"
    tail -c +$((s + 1)) "$work/body.txt"
  else
    tail -c +$((s + 1)) "$work/out.txt"                 # partial output of an unfinished run
  fi
fi
up_s=$(sed -n "s/^@@VNT-UP $nonce uptime=\([0-9.]*\).*/\1/p" "$work/console.txt")
end_s=$(sed -n "s/^@@VNT-END $nonce rc=[0-9]* uptime=\([0-9.]*\).*/\1/p" "$work/console.txt")
if [ "${GUEST_QUIET:-0}" != 1 ]; then
  echo "[run-in-guest] nodes=$nodes vcpus=$((nodes * cpn)) mem=$((nodes * mem))M wall=${wall}s boots=$attempt guest_up=${up_s:-?}s guest_end=${end_s:-?}s rc=${grc:-none}" >&2
fi
if [ -z "$grc" ]; then
  if [ -n "$gaveup" ]; then why="the guest did not boot: $gaveup"
  elif [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then why="timed out after ${timeout_s}s"
  else why="QEMU exited ($qrc) without the end marker"; fi
  {
    echo "[run-in-guest] $why; last console lines:"
    tail -n 40 "$work/console.txt" | sed 's/^/  | /'
    [ ! -s "$work/qemu.log" ] || { echo "[run-in-guest] QEMU said:"; sed 's/^/  | /' "$work/qemu.log"; }
  } >&2 || true
  exit 124
fi
exit "$grc"
