#!/usr/bin/env bash
# down.sh DIR -- tear down the cluster that up.sh DIR started, completely: its
# jobs, slurmd(s), slurmctld, munged, slurmstepd, job processes, Slurm's cgroups
# and every file under DIR. DIR itself is left in place, empty.
#
# Idempotent, and safe when up.sh failed halfway, was killed, or never ran. It
# touches only what is provably this cluster's (tag = the vpXXXXXX in DIR/cluster):
#   - daemons whose environment holds VP_SLURM_CLUSTER=<tag> (up.sh gives it to
#     each), or munged/slurmctld/slurmd whose command line names DIR's config or
#     munge socket;
#   - slurmstepd processes holding our slurmd log (DIR/log/...) open, or sitting
#     in one of our nodes' cgroups (.../slurm_<tag>n<i>/...);
#   - job processes: below our slurmstepd, in our cgroups, or whose environment
#     holds SLURM_CLUSTER_NAME=<tag>;
#   - the cgroups /sys/fs/cgroup/*/slurm_<tag>n<i>.
# It never signals PID 1, itself or its own ancestors. It prints what it had to
# force; it exits 0 when everything is gone and 1 (saying what is left) if not.
#
# Environment (optional):
#   VP_SLURM_KEEP_LOGS=PATH  copy DIR/log to PATH before removing it
#   VP_SLURM_TIMING=1        print where the time goes
#
# No `set -e` on purpose: a teardown must push on past a failing step; the final
# check of what is left decides the exit status.
set -uo pipefail
PATH=$PATH:/usr/sbin:/sbin   # the daemons live there; the caller's PATH comes first

now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $(( ${t:0:${#t}-3} )); }
T0=$(now_ms)
say() { printf 'down.sh: %s\n' "$*" >&2; }
[ $# = 1 ] || { say "usage: down.sh DIR"; exit 2; }
if [ ! -d "$1" ]; then say "nothing to do ($1 does not exist)"; exit 0; fi
D=$(cd -- "$1" && pwd -P) || { say "cannot enter $1"; exit 1; }

lap() { [ "${VP_SLURM_TIMING:-0}" = 1 ] && say "  +$(( $(now_ms) - T0 )) ms: $*"; return 0; }
FORCED=0
forced() { FORCED=$((FORCED + 1)); say "forced: $*"; }

# --- which cluster ------------------------------------------------------------------
TAG= ; NODES=() ; UP_PID=
if [ -r "$D/cluster" ]; then
    while IFS='=' read -r k v; do
        case $k in
            tag) [[ $v =~ ^vp[0-9a-f]{6}$ ]] && TAG=$v ;;
            nodes) read -r -a NODES <<<"$v" ;;
            up_pid) [[ $v =~ ^[0-9]+$ ]] && UP_PID=$v ;;
        esac
    done < "$D/cluster"
fi
ok=()
if [ -n "$TAG" ]; then
    for n in "${NODES[@]}"; do [[ $n =~ ^${TAG}n[0-9]+$ ]] && ok+=("$n"); done
fi
NODES=("${ok[@]}")

# --- processes ----------------------------------------------------------------------
stat_of() { { read -r STAT < "/proc/$1/stat"; } 2>/dev/null && STAT=${STAT##*) }; }   # fields from state on
alive() { local STAT; stat_of "$1" || return 1; [[ ${STAT:0:1} != [ZX] ]]; }         # zombies count as dead
comm() { local c; { read -r c < "/proc/$1/comm"; } 2>/dev/null && echo "$c"; }
pids_of() { sed -n 's#^/proc/\([0-9]*\)/[a-z]*$#\1#p'; }
describe() { local p out=; for p in "$@"; do out+="$p($(comm "$p")) "; done; echo "${out% }"; }

# down.sh and its ancestors are never signalled (down.sh may run inside an allocation).
ANCESTORS=" "
q=$$
while [[ $q =~ ^[0-9]+$ ]] && [ "$q" -gt 1 ]; do
    ANCESTORS+="$q "
    stat_of "$q" || break
    read -r _ q _ <<<"$STAT"
done
# kill_pids SIG PID...: skips non-numbers, pid <= 1, down.sh and its ancestors.
kill_pids() {
    local sig=$1 p ok=(); shift
    for p in "$@"; do
        [[ $p =~ ^[0-9]+$ ]] && [ "$p" -gt 1 ] || continue
        [[ $ANCESTORS == *" $p "* ]] && continue
        ok+=("$p")
    done
    [ ${#ok[@]} -gt 0 ] && kill "-$sig" "${ok[@]}" 2>/dev/null
    return 0
}

# munged, slurmctld (+ its slurmscriptd), slurmd: by up.sh's environment marker,
# or by a command line naming our config or socket (if DIR/cluster is gone).
our_daemons() {
    {
        [ -n "$TAG" ] && timeout 5 grep -lzxF "VP_SLURM_CLUSTER=$TAG" /proc/[0-9]*/environ 2>/dev/null | pids_of
        local p
        for p in $(timeout 5 grep -lzxF -e "$D/etc/slurm.conf" -e "--socket=$D/run/munge.socket" \
                       /proc/[0-9]*/cmdline 2>/dev/null | pids_of); do
            case $(comm "$p") in munged|slurmctld|slurmd|slurmscriptd) echo "$p" ;; esac
        done
    } | sort -un | while read -r p; do [ "$p" != $$ ] && alive "$p" && echo "$p"; done
}
# slurmstepd overwrites its environment with its title ("slurmstepd: [5.0]"), so
# it carries no marker. Ours keeps our slurmd's log open and, with cgroups, sits
# under /slurm_<our node>/.
our_stepds() {
    local p n line
    for p in $(timeout 5 grep -lx slurmstepd /proc/[0-9]*/comm 2>/dev/null | pids_of); do
        alive "$p" || continue
        if [ ${#NODES[@]} -gt 0 ]; then
            while read -r line; do
                for n in "${NODES[@]}"; do
                    [[ $line == *":/slurm_$n/"* ]] && { echo "$p"; continue 3; }
                done
            done < "/proc/$p/cgroup" 2>/dev/null
        fi
        [ -n "$(find "/proc/$p/fd" -maxdepth 1 -lname "$D/log/*" -print -quit 2>/dev/null)" ] && echo "$p"
    done
}
# Job processes that carry this cluster's name (tasks, batch scripts, salloc'd
# commands), minus down.sh and its ancestors.
our_job_procs() {
    [ -n "$TAG" ] || return 0
    local p
    for p in $(timeout 5 grep -lzxF "SLURM_CLUSTER_NAME=$TAG" /proc/[0-9]*/environ 2>/dev/null | pids_of); do
        [[ $ANCESTORS == *" $p "* ]] && continue
        alive "$p" && echo "$p"
    done
}
# descendants PID...: every process below the given ones.
descendants() {
    local queue=("$@") out=() f pid pp STAT
    local -A kids=()
    for f in /proc/[0-9]*/stat; do
        pid=${f#/proc/}; pid=${pid%/stat}
        stat_of "$pid" || continue
        read -r _ pp _ <<<"$STAT"
        kids[$pp]+="$pid "
    done
    while [ ${#queue[@]} -gt 0 ]; do
        pid=${queue[0]}; queue=("${queue[@]:1}")
        for f in ${kids[$pid]:-}; do out+=("$f"); queue+=("$f"); done
    done
    echo "${out[@]:-}"
}

# --- cgroups ------------------------------------------------------------------------
# Slurm 22.05 (cgroup v1, Debian's multiple-slurmd build) makes
# /sys/fs/cgroup/<controller>/slurm_<node> and leaves it behind when slurmd stops.
our_cgdirs() {
    local n c
    for n in "${NODES[@]}"; do
        for c in /sys/fs/cgroup/*/"slurm_$n" /sys/fs/cgroup/"slurm_$n"; do [ -d "$c" ] && echo "$c"; done
    done
}
# A step killed while slurmstepd had it frozen stays frozen, and SIGKILL waits.
thaw() {
    local f
    for f in $(find "$@" -name freezer.state 2>/dev/null); do echo THAWED > "$f" 2>/dev/null; done
}
cgroup_procs() { find "$@" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un | tr '\n' ' '; }
# The tasks of our steps: below our slurmstepd, or in a step cgroup of ours.
task_pids() {
    local s cg
    s=$(our_stepds | tr '\n' ' ')
    mapfile -t cg < <(our_cgdirs)
    {
        [ -n "${s// }" ] && descendants $s
        [ ${#cg[@]} -gt 0 ] && find "${cg[@]}" -path '*/step_*' -name cgroup.procs -exec cat {} + 2>/dev/null
    } | tr ' ' '\n' | grep -x '[0-9][0-9]*' | sort -un | grep -vxF -f <(tr ' ' '\n' <<<"$s" | grep .) | tr '\n' ' '
}
# within MS CMD...: run CMD every 50 ms until it succeeds (0) or MS have passed (1).
within() {
    local end=$(( $(now_ms) + $1 )); shift
    while :; do
        "$@" && return 0
        [ "$(now_ms)" -ge "$end" ] && return 1
        sleep 0.05
    done
}
none_alive() { local p; for p in "$@"; do alive "$p" && return 1; done; return 0; }
# stop MS PID...: SIGTERM, and SIGKILL to whatever is left after MS milliseconds.
stop() {
    local ms=$1 p left=(); shift
    [ $# -gt 0 ] || return 0
    kill_pids TERM "$@"
    within "$ms" none_alive "$@" && return 0
    for p in "$@"; do alive "$p" && left+=("$p"); done
    forced "SIGKILL after $ms ms of SIGTERM: $(describe "${left[@]}")"
    kill_pids KILL "${left[@]}"
    within 2000 none_alive "$@"
}

# --- 0. an up.sh still at work ------------------------------------------------------
# If up.sh is still starting this cluster (its wrapper was SIGKILLed, say), stop it
# first, with everything it started, or it would go on starting daemons.
# is_our_up PID: PID runs up.sh with this DIR (resolved from its own working
# directory), so that a recycled pid is never mistaken for it.
is_our_up() {
    local args i cwd dir
    mapfile -d '' -t args < "/proc/$1/cmdline" 2>/dev/null || return 1
    cwd=$(readlink "/proc/$1/cwd" 2>/dev/null) || return 1
    for (( i = 0; i + 1 < ${#args[@]}; i++ )); do
        [[ ${args[$i]} == *up.sh ]] || continue
        dir=${args[$((i + 1))]}
        [[ $dir == /* ]] || dir=$cwd/$dir
        [ "$(realpath -m -- "$dir" 2>/dev/null)" = "$D" ] && return 0
    done
    return 1
}
if [ -n "$UP_PID" ] && [[ $ANCESTORS != *" $UP_PID "* ]] && alive "$UP_PID" && is_our_up "$UP_PID"; then
    below=$(descendants "$UP_PID")
    forced "up.sh (pid $UP_PID) is still starting this cluster: SIGKILL to it${below:+ and to what it started: $(describe $below)}"
    kill_pids KILL "$UP_PID" $below
    within 1000 none_alive "$UP_PID" $below
fi

jobs=
DAEMONS=$(our_daemons)
by_comm() { local p; for p in $DAEMONS; do [ "$(comm "$p")" = "$1" ] && echo "$p"; done; }
lap "found daemons: $(describe $DAEMONS)"

# --- 1. jobs ------------------------------------------------------------------------
# Through slurmctld, so that slurmstepd ends the steps its own way (SIGTERM, then
# SIGKILL) and removes its step cgroups and pmix directories. Done when every job
# is gone or COMPLETING and no slurmstepd of ours is left (slurmd itself only
# notices once a second, and waits at least 5 s before SIGKILL: too slow here).
if [ -n "$(by_comm slurmctld)" ] && [ -r "$D/etc/slurm.conf" ]; then
    for v in $(compgen -e); do
        case $v in SLURM_*|SALLOC_*|SBATCH_*|SRUN_*|SQUEUE_*|SCANCEL_*|SINFO_*) unset "$v" ;; esac
    done
    export SLURM_CONF=$D/etc/slurm.conf
    jobs=$(timeout -k 1 3 squeue -h -o %A 2>/dev/null | sort -un | tr '\n' ' ')
    if [ -n "${jobs// }" ]; then
        say "cancelling job(s): $jobs"
        timeout -k 1 3 scancel $jobs 2>/dev/null
        jobs_ended() {
            [ -z "$(timeout -k 1 3 squeue -h -o %t 2>/dev/null | grep -vx CG)" ] && [ -z "$(our_stepds)" ]
        }
        if ! within 1500 jobs_ended; then
            # Tasks that ignore SIGTERM, or a slurmstepd that lingers (it can wait
            # seconds for a srun that has gone): kill both; the rest goes below.
            s=$(our_stepds | tr '\n' ' ')
            t=$(task_pids)
            forced "SIGKILL to what still runs 1.5 s after scancel: $(describe $t $s)"
            mapfile -t cg < <(our_cgdirs); [ ${#cg[@]} -gt 0 ] && thaw "${cg[@]}"
            kill_pids KILL $t $s
            within 1000 none_alive $t $s
        fi
    fi
    lap "jobs done"
fi

# --- 2. daemons ---------------------------------------------------------------------
# Idle, they stop within ~50 ms of SIGTERM. A slurmd still ending a cancelled job
# polls for it once a second and only then stops; this cluster is thrown away,
# so it gets SIGKILL after 0.3 s when jobs were cancelled above (1 s otherwise).
stop $([ -z "${jobs// }" ] && echo 1000 || echo 300) $(by_comm slurmd) $(by_comm slurmctld) $(by_comm slurmscriptd)
stop 1000 $(by_comm munged)
lap "daemons stopped"

# --- 3. leftover step daemons and job processes ---------------------------------------
s=$(our_stepds | tr '\n' ' ')
left=$(our_daemons | tr '\n' ' ')
if [ -n "${s// }${left// }" ]; then
    below=$(descendants $s)
    forced "SIGKILL leftover daemon(s): $(describe $s $left)${below:+ and the processes below them: $(describe $below)}"
    kill_pids KILL $s $left $below
fi
jp=$(our_job_procs | tr '\n' ' ')
if [ -n "${jp// }" ]; then
    forced "SIGKILL process(es) of this cluster's jobs left running: $(describe $jp)"
    kill_pids KILL $jp
fi
lap "stragglers"

# --- 4. cgroups ---------------------------------------------------------------------
mapfile -t cgdirs < <(our_cgdirs)
if [ ${#cgdirs[@]} -gt 0 ]; then
    REPORTED=0
    cgroups_empty() {
        thaw "${cgdirs[@]}"
        local procs; procs=$(cgroup_procs "${cgdirs[@]}")
        [ -z "${procs// }" ] && return 0
        [ "$REPORTED" = 0 ] && { forced "SIGKILL process(es) left in our cgroups: $(describe $procs)"; REPORTED=1; }
        kill_pids KILL $procs
        return 1
    }
    cgroups_removed() {   # depth-first; a killed task may linger in its cgroup briefly
        local c gone=0
        for c in "${cgdirs[@]}"; do
            [ -d "$c" ] || continue
            find "$c" -depth -type d -print0 2>/dev/null | xargs -0 -r rmdir 2>/dev/null
            [ -d "$c" ] && gone=1
        done
        return $gone
    }
    within 3000 cgroups_empty
    within 2000 cgroups_removed
    lap "cgroups removed: ${cgdirs[*]}"
fi

# --- 5. files -----------------------------------------------------------------------
if [ -n "${VP_SLURM_KEEP_LOGS:-}" ] && [ -d "$D/log" ]; then
    mkdir -p "$VP_SLURM_KEEP_LOGS" && cp -a "$D/log/." "$VP_SLURM_KEEP_LOGS/" && say "logs copied to $VP_SLURM_KEEP_LOGS"
fi
# up.sh accepts only an empty DIR and writes DIR/cluster before anything else, so
# with a valid DIR/cluster all of DIR's contents are the cluster's (or its jobs').
# Without one, only the names up.sh makes are removed.
OURS="cluster .cluster.new env.sh confinement etc munge run log ctld spool tmp"
if [ -n "$TAG" ]; then
    find "$D" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} + 2>/dev/null
else
    for f in $OURS; do [ -e "$D/$f" ] && rm -rf --one-file-system "${D:?}/$f"; done
fi
lap "files removed"

# --- 6. check -----------------------------------------------------------------------
problems=()
left=$( { our_daemons; our_stepds; } | sort -un | tr '\n' ' ')
[ -n "${left// }" ] && problems+=("still alive: $(describe $left)")
left=$(our_job_procs | tr '\n' ' ')
[ -n "${left// }" ] && problems+=("job processes still alive: $(describe $left)")
left=$(our_cgdirs | tr '\n' ' ')
[ -n "${left// }" ] && problems+=("cgroups left: $left")
if [ -n "$TAG" ]; then
    [ -n "$(ls -A "$D" 2>/dev/null)" ] && problems+=("not removed from $D: $(ls -A "$D" | tr '\n' ' ')")
else
    for f in $OURS; do [ -e "$D/$f" ] && problems+=("not removed: $D/$f"); done
fi

took=$(awk -v ms=$(( $(now_ms) - T0 )) 'BEGIN { printf "%.2f", ms / 1000 }')
if [ ${#problems[@]} -gt 0 ]; then
    for p in "${problems[@]}"; do say "error: $p"; done
    say "slurm down: INCOMPLETE for $D (${TAG:-no cluster tag}) after $took s"
    exit 1
fi
if [ -n "$TAG" ]; then
    say "slurm down: $TAG gone from $D in $took s$([ $FORCED -gt 0 ] && echo ", after forcing $FORCED thing(s) (above)")"
else
    say "slurm down: no cluster in $D (nothing running), $took s"
fi
exit 0
