#!/usr/bin/env bash
# up.sh DIR [NODES] -- stand up a throw-away, real Slurm cluster on this one
# machine (munged + slurmctld + NODES slurmd), without systemd, with all of its
# files under DIR. Tear it down with down.sh DIR. See README.md beside this file.
#
#   DIR    an empty directory (created if missing); its absolute path at most
#          56 characters of [A-Za-z0-9._/+-] (Unix socket paths live under it)
#   NODES  1 (default): one node with this machine's real hardware;
#          2..16: simulated nodes (slurmd -N), each believing it owns all CPUs
#
# Environment (optional):
#   VP_SLURM_CONFINE=auto|cgroup|affinity   default auto (cgroup when usable)
#   VP_SLURM_DEBUG=info|verbose|debug|...   daemons' log level, default info
#   VP_SLURM_KEEP_LOGS=PATH                 on failure, down.sh copies DIR/log there
#
# On success: DIR/env.sh exports SLURM_CONF, and the last line on stderr is
#   slurm up: N node(s) [names], confinement=cgroup|affinity, ports ctld=P slurmd=P[,P...] (T s)
# On failure or SIGINT/SIGTERM/SIGHUP: the reason (with the relevant log's tail)
# on stderr, everything started is torn down (down.sh), exit status non-zero.
set -euo pipefail
umask 022
PATH=$PATH:/usr/sbin:/sbin   # the daemons live there; the caller's PATH comes first

# --- wrapper ------------------------------------------------------------------------
# The work runs in a child ("worker") while this process only waits for it. bash
# can drop a SIGINT that arrives while it waits for a command substitution (it
# assumes the child handled it), but a trapped signal always interrupts `wait`.
# SIGINT is passed on as SIGUSR1 (an asynchronous child ignores SIGINT).
if [ "${VP_SLURM_UP_WORKER:-}" != 1 ]; then
    worker= ; got=
    fwd() { got=$1; [ -n "$worker" ] && kill "-$2" "$worker" 2>/dev/null; return 0; }
    trap 'fwd 130 USR1' INT; trap 'fwd 143 TERM' TERM; trap 'fwd 129 HUP' HUP
    VP_SLURM_UP_WORKER=1 "$BASH" "${BASH_SOURCE[0]}" "$@" &
    worker=$!
    [ -n "$got" ] && kill -TERM "$worker" 2>/dev/null
    while :; do
        rc=0; wait "$worker" || rc=$?
        kill -0 "$worker" 2>/dev/null || break    # gone: rc is its status
    done
    if [ -n "$got" ]; then
        # The worker may have finished just before the signal reached it.
        [ "$rc" = 0 ] && "$(dirname "${BASH_SOURCE[0]}")/down.sh" "$1"
        exit "$got"
    fi
    exit "$rc"
fi
unset VP_SLURM_UP_WORKER

# --- worker: traps first --------------------------------------------------------------
D= ; OK=0 ; SMOKE_PID= ; STAGE=start ; HERE= ; TEARING=0
say() { printf 'up.sh: %s\n' "$*" >&2; }
teardown() {
    [ -n "$SMOKE_PID" ] && kill -TERM "$SMOKE_PID" 2>/dev/null
    if [ -n "$D" ] && [ -e "$D/cluster" ]; then
        say "tearing down what was started (down.sh $D)"
        "${HERE:-$(dirname "${BASH_SOURCE[0]}")}/down.sh" "$D" || say "down.sh reported a problem (see above)"
    fi
}
# Further signals are ignored while tearing down (down.sh inherits that), so
# that a second Ctrl-C cannot leave the cluster half-removed.
on_exit() {
    local rc=$?
    trap '' INT TERM HUP USR1; trap - EXIT
    set +e
    if [ "$OK" != 1 ] && [ "$TEARING" = 0 ]; then
        TEARING=1
        [ "$rc" = 0 ] && rc=1
        if [ -n "$D" ] && [ -e "$D/cluster" ]; then
            say "failed during: $STAGE"
            teardown
        fi
    fi
    exit "$rc"
}
on_signal() {
    trap '' INT TERM HUP USR1; trap - EXIT
    set +e
    [ "$TEARING" = 1 ] && return 0
    TEARING=1
    say "interrupted by SIG$1 during: $STAGE"
    teardown
    exit "$2"
}
trap on_exit EXIT
trap 'on_signal INT 130' INT USR1
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $(( ${t:0:${#t}-3} )); }
T0=$(now_ms)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
usage() { say "usage: up.sh DIR [NODES]   (DIR empty or absent; NODES 1..16, default 1)"; exit 2; }
# die REASON [LOGFILE...]: say why, show the logs' tails, and exit (the EXIT
# trap tears down whatever was started).
die() {
    say "error: $1"; shift
    local f
    for f in "$@"; do
        [ -s "$f" ] || continue
        say "last lines of $f:"
        tail -n 15 "$f" | sed 's/^/    /' >&2
    done
    exit 1
}

# --- arguments and prerequisites -------------------------------------------------
[ $# -ge 1 ] && [ $# -le 2 ] || usage
NODES=${2:-1}
[[ $NODES =~ ^([1-9]|1[0-6])$ ]] || usage
CONFINE=${VP_SLURM_CONFINE:-auto}
case $CONFINE in auto|cgroup|affinity) ;; *) die "VP_SLURM_CONFINE must be auto, cgroup or affinity (not '$CONFINE')";; esac
DEBUG=${VP_SLURM_DEBUG:-info}

missing=()
for b in munged munge unmunge slurmctld slurmd slurmstepd srun sbatch salloc sinfo squeue scancel scontrol \
         setsid timeout; do
    command -v "$b" >/dev/null 2>&1 || missing+=("$b")
done
[ ${#missing[@]} = 0 ] || die "missing: ${missing[*]} (apt-get install slurmctld slurmd slurm-client munge libpmix2)"
[ "$(id -u)" = 0 ] || die "must run as root (slurmd runs jobs as their users and manages cgroups)"
if command -v ldconfig >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q 'libpmix\.so\.2'; then
    say "warning: libpmix.so.2 not found: srun --mpi=pmix will fail (apt-get install libpmix2)"
fi

# Slurm's clients read options from the environment: start from none but ours.
for v in $(compgen -e); do
    case $v in SLURM_*|SALLOC_*|SBATCH_*|SRUN_*) unset "$v" ;; esac
done

# DIR is checked before anything is made; D stays empty until DIR is accepted,
# so that a refusal never tears down (or removes) anything.
x=$(realpath -m -- "$1") || die "cannot resolve $1"
[[ $x =~ ^[A-Za-z0-9._/+-]+$ ]] || die "$x: only letters, digits and ._/+- may appear in DIR (it goes into slurm.conf)"
# Unix socket paths are limited to 107 bytes. The longest are the batch steps':
# DIR/spool/<node>/<node>_<jobid>.4294967291, i.e. DIR + 51 + digits of jobid
# (nodes vpXXXXXXn16). DIR <= 56 leaves room for 9-digit job ids.
[ ${#x} -le 56 ] || die "$x: path too long (${#x} > 56 characters): Slurm's Unix sockets live under it"
[ -e "$x/cluster" ] && die "$x already holds a cluster ($(grep -m1 '^tag=' "$x/cluster" 2>/dev/null || echo '?')): run down.sh $x first"
[ ! -e "$x" ] || [ -d "$x" ] || die "$x exists and is not a directory"
[ ! -d "$x" ] || [ -z "$(ls -A -- "$x")" ] || die "$x is not empty"
mkdir -p -- "$x" 2>/dev/null || die "cannot create $x"
D=$x

# --- identity: a tag unique to this cluster ----------------------------------------
# Node names <tag>n<i> make Slurm's cgroups (/sys/fs/cgroup/*/slurm_<node>) ours,
# ClusterName=<tag> marks job environments (SLURM_CLUSTER_NAME), and every daemon
# gets VP_SLURM_CLUSTER=<tag> in its environment. (slurmstepd overwrites its
# environment with its title; down.sh knows ours by its open log file under DIR
# and its cgroup.) down.sh finds processes by these marks, never by name alone.
for _ in 1 2 3 4 5 6 7 8; do
    TAG=vp$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
    compgen -G "/sys/fs/cgroup/*/slurm_${TAG}n*" >/dev/null || break
done
NODE_NAMES=()
for i in $(seq 1 "$NODES"); do NODE_NAMES+=("${TAG}n$i"); done
NODELIST=$(IFS=,; echo "${NODE_NAMES[*]}")
# Written first, before anything starts: down.sh's key. up_pid lets down.sh stop
# an up.sh that is still starting things (e.g. after its wrapper was SIGKILLed).
printf 'tag=%s\nnodes=%s\nup_pid=%s\n' "$TAG" "${NODE_NAMES[*]}" "$$" > "$D/.cluster.new"
mv -f "$D/.cluster.new" "$D/cluster"   # replaced atomically, here and below

STAGE="layout"
mkdir -p "$D"/{etc,munge,run,log,ctld,spool,tmp}
chmod 700 "$D/munge"
for n in "${NODE_NAMES[@]}"; do
    mkdir -p "$D/spool/$n" "$D/tmp/$n"   # slurmd creates neither its spool dir nor TmpFS
    chmod 1777 "$D/tmp/$n"
done
CONF=$D/etc/slurm.conf
HOSTNAME_=$(cat /proc/sys/kernel/hostname)

# --- hardware and confinement ------------------------------------------------------
STAGE="hardware detection (slurmd -C)"
HWLINE=$(slurmd -C 2>"$D/log/slurmd-C.err" | head -n1) || true
[[ $HWLINE == NodeName=* ]] || die "slurmd -C printed no node line" "$D/log/slurmd-C.err"
hw() { local v; v=$(sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$HWLINE"); echo "${v:-1}"; }
CPUS=$(hw CPUs); BOARDS=$(hw Boards); SOCKETS=$(hw SocketsPerBoard); CORES=$(hw CoresPerSocket)
THREADS=$(hw ThreadsPerCore); MEM=$(hw RealMemory)
MEM=$(( MEM * 9 / 10 / NODES )); [ "$MEM" -ge 1 ] || MEM=1
if [ "$THREADS" = 1 ]; then
    # Real topology; CR_Core then gives -c1 exactly one CPU.
    TOPO="CPUs=$CPUS Boards=$BOARDS SocketsPerBoard=$SOCKETS CoresPerSocket=$CORES ThreadsPerCore=1"
    SELECT_PARAMS=CR_Core
else
    # SMT: with CR_Core a -c1 step would get a whole core (all its threads).
    # slurm.conf(5): to allocate single hardware threads, give CPUs only, with CR_CPU.
    TOPO="CPUs=$CPUS"
    SELECT_PARAMS=CR_CPU
fi

STAGE="confinement detection"
REASON=
cgroup_usable() {
    if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
        REASON="cgroup v2 only: Slurm 22.05's cgroup/v2 plugin needs systemd to delegate a cgroup"; return 1
    fi
    local c probe
    for c in cpuset freezer; do
        if [ "$(stat -fc %T "/sys/fs/cgroup/$c" 2>/dev/null)" != cgroupfs ]; then
            REASON="no cgroup v1 $c hierarchy at /sys/fs/cgroup/$c"; return 1
        fi
        probe=/sys/fs/cgroup/$c/slurm_${NODE_NAMES[0]}   # the very name Slurm will use
        if ! mkdir "$probe" 2>/dev/null; then
            REASON="cannot create cgroups under /sys/fs/cgroup/$c (read-only or not permitted)"; return 1
        fi
        rmdir "$probe" 2>/dev/null || true
    done
}
case $CONFINE in
    cgroup)   cgroup_usable || die "VP_SLURM_CONFINE=cgroup but $REASON" ;;
    affinity) REASON="VP_SLURM_CONFINE=affinity" ;;
    auto)     if cgroup_usable; then CONFINE=cgroup; else CONFINE=affinity; fi ;;
esac
if [ "$CONFINE" = cgroup ]; then
    PROCTRACK=proctrack/cgroup; TASK=task/cgroup,task/affinity
    printf 'cgroup\n' > "$D/confinement"
else
    PROCTRACK=proctrack/linuxproc; TASK=task/affinity
    printf 'affinity\n%s: steps get an affinity mask only (no cpuset)\n' "$REASON" > "$D/confinement"
    say "note: confinement=affinity, not cgroup ($REASON): proctrack/linuxproc + task/affinity"
fi

# --- ports -------------------------------------------------------------------------
# Random ports in 20000-32767, outside the kernel's ephemeral range, not in use
# (any TCP state, v4 or v6). A race with another process is caught after the
# daemons start (they die on "Address already in use") and retried with new ports.
read -r EPH_LO EPH_HI < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || { EPH_LO=32768; EPH_HI=60999; }
port_in_use() {
    local hex; hex=$(printf '%04X' "$1")
    grep -qE "^ *[0-9]+: [0-9A-F]+:$hex " /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
PICKED=()   # pick_port runs in $(...): the caller appends what it printed
pick_port() {
    local p tries=0
    while :; do
        p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12768 ))
        tries=$((tries + 1))
        [ $tries -gt 500 ] && die "found no free TCP port in 20000-32767"
        (( p >= EPH_LO && p <= EPH_HI )) && continue
        [[ " ${PICKED[*]} " == *" $p "* ]] && continue
        port_in_use "$p" && continue
        echo "$p"; return 0
    done
}

write_config() {
    local i
    {
        cat <<EOF
# Throw-away test cluster made by up.sh ($TAG). down.sh $D removes it.
ClusterName=$TAG
SlurmctldHost=localhost
SlurmctldAddr=127.0.0.1
SlurmctldPort=$CTLD_PORT
SlurmdPort=${NODE_PORTS[0]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$D/run/munge.socket
CredType=cred/munge
StateSaveLocation=$D/ctld
SlurmdSpoolDir=$D/spool/%n
# One TmpFS per node: the pmix plugin makes spmix_appdir_<uid>_<job>.<step> there,
# and simulated nodes sharing one directory collide on it.
TmpFS=$D/tmp/%n
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd-%n.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd-%n.log
SlurmctldDebug=$DEBUG
SlurmdDebug=$DEBUG
ProctrackType=$PROCTRACK
TaskPlugin=$TASK
SelectType=select/cons_tres
SelectTypeParameters=$SELECT_PARAMS
SchedulerType=sched/backfill
# Pending jobs (sbatch, or srun waiting for a completing job) otherwise wait up
# to 3 s for a scheduling pass. Slurm 22.05 applies this only after its first
# pass, which comes 3 s after slurmctld started.
SchedulerParameters=batch_sched_delay=0
MpiDefault=none
ReturnToService=2
# Time limits: no grace beyond the limit. KillWait=5, not less: for a job that
# is cancelled or hits its time limit, slurmd waits max(KillWait, 5) s before
# SIGKILL, while srun waits only KillWait + 2 s for the tasks; with KillWait < 3
# srun gives up first and exits 0 for a task that ignores SIGTERM.
OverTimeLimit=0
KillWait=5
InactiveLimit=0
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MailProg=/bin/true
EOF
        for i in "${!NODE_NAMES[@]}"; do
            echo "NodeName=${NODE_NAMES[$i]} NodeHostname=$HOSTNAME_ NodeAddr=127.0.0.1 Port=${NODE_PORTS[$i]} $TOPO RealMemory=$MEM State=UNKNOWN"
        done
        echo "PartitionName=debug Nodes=$NODELIST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
    } > "$CONF"
    if [ "$CONFINE" = cgroup ]; then
        cat > "$D/etc/cgroup.conf" <<EOF
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
CgroupAutomount=no
ConstrainCores=yes
ConstrainRAMSpace=no
ConstrainSwapSpace=no
ConstrainDevices=no
EOF
    fi
    {
        echo "tag=$TAG"
        echo "nodes=${NODE_NAMES[*]}"
        echo "up_pid=$$"
        echo "ctld_port=$CTLD_PORT"
        echo "node_ports=${NODE_PORTS[*]}"
        echo "confinement=$CONFINE"
    } > "$D/.cluster.new"
    mv -f "$D/.cluster.new" "$D/cluster"
}

# --- daemons -----------------------------------------------------------------------
# spawn OUTFILE CMD...: start CMD in the foreground mode of the daemon, in its own
# session, with no inherited descriptors beyond 0-2 (which go to /dev/null and
# OUTFILE) so that a caller reading our stdout/stderr is never held open, and with
# the marker VP_SLURM_CLUSTER=<tag> in its environment. Sets SPAWNED to its pid.
SPAWNED=
spawn() {
    local out=$1; shift
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
        done
        trap - EXIT INT TERM HUP USR1
        VP_SLURM_CLUSTER=$TAG exec setsid "$@" </dev/null >>"$out" 2>&1
    ) &
    SPAWNED=$!
    disown "$SPAWNED"   # no "Killed" job notices from bash when down.sh stops it
}
# alive PID: a live process, not a zombie (our own children stay zombies until we exit).
alive() {
    local s
    { read -r s < "/proc/$1/stat"; } 2>/dev/null || return 1
    s=${s##*) }
    [ "${s%% *}" != Z ] && [ "${s%% *}" != X ]
}
# listening PID PORT: PID (a daemon) has a TCP socket listening on PORT.
listening() {
    local hex inode
    hex=$(printf '%04X' "$2")
    for inode in $(awk -v h=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == h { print $10 }' \
                   /proc/net/tcp /proc/net/tcp6 2>/dev/null); do
        [ -n "$(find "/proc/$1/fd" -maxdepth 1 -lname "socket:\[$inode\]" -print -quit 2>/dev/null)" ] && return 0
    done
    return 1
}

STAGE="munged"
dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$D/munge/munge.key"
# No systemd, so no /run/munge: every path is given. --force: the caller's DIR
# (e.g. mode 0777 without sticky bit) may fail munged's ownership/permission checks.
spawn "$D/log/munged.out" munged -F --force --socket="$D/run/munge.socket" \
    --key-file="$D/munge/munge.key" --log-file="$D/log/munged.log" \
    --pid-file="$D/run/munged.pid" --seed-file="$D/munge/munged.seed"
MUNGED_PID=$SPAWNED
for i in $(seq 1 100); do
    if [ -S "$D/run/munge.socket" ] && munge -n -S "$D/run/munge.socket" 2>/dev/null \
         | unmunge -S "$D/run/munge.socket" >/dev/null 2>&1; then
        break
    fi
    alive "$MUNGED_PID" || die "munged exited" "$D/log/munged.out" "$D/log/munged.log"
    [ "$i" = 100 ] && die "munged: no working socket after 5 s" "$D/log/munged.out" "$D/log/munged.log"
    sleep 0.05
done

export SLURM_CONF=$CONF
printf 'export SLURM_CONF=%s\n' "$CONF" > "$D/env.sh"

addr_in_use() { grep -qs 'Address already in use' "$@"; }
start_slurm() {   # returns 0 when ctld and all slurmd are up and listening, 3 on a port clash
    local i n
    STAGE="slurmctld (port $CTLD_PORT)"
    spawn "$D/log/slurmctld.out" slurmctld -D -f "$CONF"
    CTLD_PID=$SPAWNED
    for i in $(seq 1 300); do
        listening "$CTLD_PID" "$CTLD_PORT" && break
        if ! alive "$CTLD_PID"; then
            addr_in_use "$D/log/slurmctld.log" "$D/log/slurmctld.out" && return 3
            die "slurmctld exited" "$D/log/slurmctld.out" "$D/log/slurmctld.log"
        fi
        [ "$i" = 300 ] && die "slurmctld not listening on port $CTLD_PORT after 15 s" "$D/log/slurmctld.log"
        sleep 0.05
    done
    SLURMD_PIDS=()
    for i in "${!NODE_NAMES[@]}"; do
        n=${NODE_NAMES[$i]}
        STAGE="slurmd $n (port ${NODE_PORTS[$i]})"
        # -N: this slurmd is node $n (Debian builds Slurm with multiple-slurmd support).
        spawn "$D/log/slurmd-$n.out" slurmd -D -f "$CONF" -N "$n"
        SLURMD_PIDS+=("$SPAWNED")
    done
    return 0
}

ATTEMPT=0
while :; do
    ATTEMPT=$((ATTEMPT + 1))
    PICKED=()
    CTLD_PORT=$(pick_port); PICKED+=("$CTLD_PORT")
    NODE_PORTS=()
    for _ in "${NODE_NAMES[@]}"; do p=$(pick_port); PICKED+=("$p"); NODE_PORTS+=("$p"); done
    write_config
    rc=0; start_slurm || rc=$?
    if [ "$rc" = 0 ]; then
        # Wait until every node is idle: ctld and each slurmd are watched for death.
        STAGE="waiting for ${NODES} node(s) to be idle"
        clash=0
        for i in $(seq 1 300); do
            idle=$(timeout -k 1 5 sinfo -h -N -t idle -o '%N' 2>/dev/null | sort -u | grep -c . || true)
            [ "$idle" = "$NODES" ] && break
            if ! alive "$CTLD_PID"; then
                if addr_in_use "$D/log/slurmctld.log" "$D/log/slurmctld.out"; then clash=1; break; fi
                die "slurmctld exited" "$D/log/slurmctld.out" "$D/log/slurmctld.log"
            fi
            for j in "${!SLURMD_PIDS[@]}"; do
                n=${NODE_NAMES[$j]}
                if ! alive "${SLURMD_PIDS[$j]}"; then
                    if addr_in_use "$D/log/slurmd-$n.log" "$D/log/slurmd-$n.out"; then clash=1; break 2; fi
                    die "slurmd $n exited" "$D/log/slurmd-$n.out" "$D/log/slurmd-$n.log"
                fi
            done
            [ "$i" = 300 ] && die "nodes not idle after 30 s: $(timeout 5 sinfo -N -h -o '%N %T %E' 2>&1 | tr '\n' ';')" \
                "$D/log/slurmctld.log" "$D/log/slurmd-${NODE_NAMES[0]}.log"
            sleep 0.1
        done
        [ "$clash" = 0 ] && break
        rc=3
    fi
    # A port was taken between our probe and the daemon's bind: stop Slurm's
    # daemons (munged stays), forget their state, pick new ports.
    [ "$ATTEMPT" -ge 3 ] && die "ports kept clashing (tried 3 times)" "$D/log/slurmctld.log"
    say "port clash (ctld $CTLD_PORT, slurmd ${NODE_PORTS[*]}); retrying with other ports"
    for p in ${CTLD_PID:-} "${SLURMD_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    for i in $(seq 1 40); do
        gone=1; for p in ${CTLD_PID:-} "${SLURMD_PIDS[@]}"; do alive "$p" && gone=0; done
        [ "$gone" = 1 ] && break; sleep 0.05
    done
    rm -rf "$D/ctld" && mkdir "$D/ctld"
    for n in "${NODE_NAMES[@]}"; do rm -rf "$D/spool/$n" && mkdir "$D/spool/$n"; done
    for f in "$D"/log/slurm*; do [ -e "$f" ] && mv -f "$f" "$f.clash$ATTEMPT"; done
done

# --- smoke test --------------------------------------------------------------------
STAGE="smoke test: srun -N $NODES -n $NODES true"
# In the background so that a signal to up.sh is handled at once (see on_signal).
timeout -k 2 20 srun -N "$NODES" -n "$NODES" true >"$D/log/smoke.out" 2>&1 &
SMOKE_PID=$!
rc=0; wait "$SMOKE_PID" || rc=$?
SMOKE_PID=
[ "$rc" = 0 ] || die "smoke test 'srun -N $NODES -n $NODES true' failed (exit $rc$([ "$rc" = 124 ] && echo ', timed out after 20 s'))" \
    "$D/log/smoke.out" "$D/log/slurmd-${NODE_NAMES[0]}.log"

# Let the smoke job finish completing, so the caller's first job does not queue
# behind it ("queued and waiting for resources").
STAGE="waiting for the smoke job to complete"
for i in $(seq 1 100); do
    [ -z "$(timeout -k 1 5 squeue -h -o %A 2>/dev/null)" ] && break
    sleep 0.05
done

OK=1
say "cluster $TAG in $D: . $D/env.sh  (or export SLURM_CONF=$CONF); stop with down.sh $D"
printf 'slurm up: %s node(s) [%s], confinement=%s, ports ctld=%s slurmd=%s (%s s)\n' \
    "$NODES" "$NODELIST" "$CONFINE" "$CTLD_PORT" "$(IFS=,; echo "${NODE_PORTS[*]}")" \
    "$(awk -v ms=$(( $(now_ms) - T0 )) 'BEGIN{printf "%.2f", ms/1000}')" >&2
