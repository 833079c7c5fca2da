#!/bin/sh
# placement: where the shared-memory pages of processes lie, per NUMA node.
# Runs inside the test guest (busybox sh + awk), installed as /bin/placement.
#
#   placement [-a] PID...
#       For each PID: one `numa-proc` line, then one `numa-map` line per
#       shared-memory mapping (memfd, /dev/shm, SysV shm; -a: every mapping),
#       from /proc/PID/maps joined with /proc/PID/numa_maps on the start address.
#       Exit 0, or 1 if some PID could not be read (a `numa-proc pid=N error=gone` line).
#
#   placement --wait NAME [-n COUNT] [-k MIN_PAGES] [-t SECONDS] [-i INTERVAL] [-w PID] [-a]
#       Poll until at least COUNT (1) processes called NAME (as pidof sees them)
#       each have at least MIN_PAGES (1) pages present in their shared mappings,
#       then print their lines (as above) and a `numa-wait ... ok=1` line; exit 0.
#       After SECONDS (60, guest clock), or as soon as PID (e.g. the vecpar-coord
#       started in the background) has exited, print the last poll's lines and
#       `numa-wait ... ok=0 reason=timeout|exited`; exit 1. INTERVAL: seconds
#       between polls (0.2).
#
# Every line is a tag (numa-proc, numa-map, numa-wait) and key=value tokens with
# no spaces in them. numa-map: pid comm start end (hex, 0x) perm offset (hex, 0x)
# pages (length in 4 KiB pages) file (numa_maps' escaping: a space is \040)
# deleted (0/1) policy (spaces as _) present (sum of N*) dirty anon mapmax
# kpsz (kernelpagesize_kB) nodes (comma list of nodes holding pages, or -)
# N0= .. N<last>= (every online node, 0 included).
# numa-proc: pid comm state cpu (last CPU) cpus_allowed mems_allowed maps
# present nodes N0=..: totals over the lines that follow.
# Counts are only pages present in THIS process's page tables (numa_maps).

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

all=0
tmp=/tmp/.placement.$$
trap 'rm -f "$tmp".*' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# snap PIDS...: print the lines for PIDS; write to $tmp.q how many had at least
# $minpages present pages, and to $tmp.pids which ones.
snap() {
  awk -v pids="$*" -v all="$all" -v minpages="${minpages:-0}" \
      -v qfile="$tmp.q" -v pfile="$tmp.pids" '
  function readall(f, arr,    n, line, r) {
    n = 0
    while ((r = (getline line < f)) > 0) arr[++n] = line
    close(f)
    return (r < 0) ? -1 : n
  }
  function hex0(s) { sub(/^0+/, "", s); return "0x" (s == "" ? "0" : s) }
  function esc(s) { gsub(/ /, "\\040", s); gsub(/\t/, "\\011", s); return s }
  BEGIN {
    # online nodes, e.g. "0-1" or "0,2-3"
    nn = 0
    if ((getline on < "/sys/devices/system/node/online") > 0) {
      k = split(on, parts, ",")
      for (i = 1; i <= k; i++) {
        if (split(parts[i], ab, "-") == 2) { for (j = ab[1]; j <= ab[2]; j++) node[nn++] = j }
        else node[nn++] = parts[i]
      }
    } else node[nn++] = 0
    close("/sys/devices/system/node/online")
    np = split(pids, P, " "); q = 0; qp = ""; bad = 0
    for (pi = 1; pi <= np; pi++) {
      pid = P[pi]
      split("", M); split("", NM); split("", ST); split("", STAT)
      ns = readall("/proc/" pid "/status", ST)
      nt = readall("/proc/" pid "/stat", STAT)
      nm = readall("/proc/" pid "/maps", M)
      nn2 = readall("/proc/" pid "/numa_maps", NM)
      if (ns < 0 || nt < 1 || nm < 0 || nn2 < 0) { print "numa-proc pid=" pid " error=gone"; bad = 1; continue }
      comm = "?"; cpus = "?"; mems = "?"
      for (i = 1; i <= ns; i++) {
        split(ST[i], kv, ":"); v = ST[i]; sub(/^[^:]*:[ \t]*/, "", v)
        if (kv[1] == "Name") comm = esc(v)
        else if (kv[1] == "Cpus_allowed_list") cpus = v
        else if (kv[1] == "Mems_allowed_list") mems = v
      }
      s = STAT[1]; sub(/^.*\) /, "", s); split(s, sf, " ")
      state = sf[1]; cpu = sf[37]          # fields 3 and 39 of /proc/PID/stat
      # numa_maps by start address
      split("", byaddr)
      for (i = 1; i <= nn2; i++) { split(NM[i], f, " "); byaddr[f[1]] = NM[i] }
      nout = 0; split("", tot); tpres = 0
      for (i = 1; i <= nm; i++) {
        n = split(M[i], f, " ")
        split(f[1], r, "-"); path = ""
        for (j = 6; j <= n; j++) path = path (j > 6 ? " " : "") f[j]
        shm = (path ~ /^\/memfd:/ || path ~ /^\/dev\/shm\// || path ~ /^\/SYSV/)
        if (!shm && !all) continue
        if (!(r[1] in byaddr)) continue     # mapping came or went between the two reads
        k = split(byaddr[r[1]], g, " ")
        pol = ""; file = ""; dirty = 0; anon = 0; mapmax = 0; kpsz = 4; split("", cnt)
        # the policy may be several words ("prefer (many):0-1"): up to the first key=value or flag
        for (j = 2; j <= k && g[j] !~ /=/ && g[j] != "heap" && g[j] != "stack" && g[j] != "huge"; j++)
          pol = pol (pol == "" ? "" : "_") g[j]
        for (; j <= k; j++) {
          t = g[j]; eq = index(t, "=")
          if (eq == 0) continue
          key = substr(t, 1, eq - 1); val = substr(t, eq + 1)
          if (key == "file") file = val
          else if (key == "dirty") dirty = val
          else if (key == "anon") anon = val
          else if (key == "mapmax") mapmax = val
          else if (key == "kernelpagesize_kB") kpsz = val
          else if (key ~ /^N[0-9]+$/) cnt[substr(key, 2)] = val
        }
        deleted = 0
        if (file == "") file = (path == "") ? "[anon]" : esc(path)
        if (file ~ /\\040\(deleted\)$/) { sub(/\\040\(deleted\)$/, "", file); deleted = 1 }
        pres = 0; nodes = ""; ncol = ""
        for (j = 0; j < nn; j++) {
          c = (node[j] in cnt) ? cnt[node[j]] + 0 : 0
          pres += c; tot[node[j]] += c
          if (c > 0) nodes = nodes (nodes == "" ? "" : ",") node[j]
          ncol = ncol " N" node[j] "=" c
        }
        for (x in cnt) if (!((x "") in tot)) { pres += cnt[x]; ncol = ncol " N" x "=" cnt[x] }
        if (mapmax == 0 && pres > 0) mapmax = 1   # numa_maps prints mapmax only when > 1
        tpres += pres
        pages = sprintf("%.0f", ((("0x" r[2]) + 0) - (("0x" r[1]) + 0)) / 4096)
        out[++nout] = sprintf("numa-map pid=%s comm=%s start=0x%s end=0x%s perm=%s offset=%s pages=%s file=%s deleted=%d policy=%s present=%d dirty=%s anon=%s mapmax=%s kpsz=%s nodes=%s%s",
          pid, comm, r[1], r[2], f[2], hex0(f[3]), pages, file, deleted, pol, pres, dirty, anon, mapmax, kpsz, (nodes == "" ? "-" : nodes), ncol)
      }
      nodes = ""; ncol = ""
      for (j = 0; j < nn; j++) {
        c = tot[node[j]] + 0
        if (c > 0) nodes = nodes (nodes == "" ? "" : ",") node[j]
        ncol = ncol " N" node[j] "=" c
      }
      printf "numa-proc pid=%s comm=%s state=%s cpu=%s cpus_allowed=%s mems_allowed=%s maps=%d present=%d nodes=%s%s\n",
        pid, comm, state, cpu, cpus, mems, nout, tpres, (nodes == "" ? "-" : nodes), ncol
      for (i = 1; i <= nout; i++) print out[i]
      if (tpres >= minpages) { q++; qp = qp (qp == "" ? "" : ",") pid }
    }
    print q > qfile; close(qfile)
    print (qp == "" ? "-" : qp) > pfile; close(pfile)
    exit bad
  }'
}

now() { read -r u _ < /proc/uptime; echo "${u%.*}"; }

case ${1:-} in
  ""|-h|--help) usage ;;
  --wait)
    [ $# -ge 2 ] || usage
    name=$2; shift 2
    count=1; minpages=1; limit=60; interval=0.2; wpid=
    while [ $# -gt 0 ]; do
      case $1 in
        -n) count=$2; shift 2 ;;
        -k) minpages=$2; shift 2 ;;
        -t) limit=$2; shift 2 ;;
        -i) interval=$2; shift 2 ;;
        -w) wpid=$2; shift 2 ;;
        -a) all=1; shift ;;
        *) usage ;;
      esac
    done
    t0=$(now); polls=0
    while :; do
      polls=$((polls + 1))
      pids=$(pidof "$name" | tr ' ' '\n' | sort -n | tr '\n' ' ')
      q=0
      if [ -n "$pids" ]; then
        snap $pids > "$tmp.out" 2>/dev/null
        read -r q < "$tmp.q" 2>/dev/null || q=0
      fi
      waited=$(( $(now) - t0 ))
      if [ "$q" -ge "$count" ]; then
        # print only the processes that qualified
        read -r ok < "$tmp.pids"
        awk -v ok=",$ok," '{ for (i = 2; i <= NF; i++) if ($i ~ /^pid=/) { if (index(ok, "," substr($i, 5) ",")) print; break } }' "$tmp.out"
        echo "numa-wait name=$name ok=1 want=$count found=$q min_pages=$minpages waited=$waited polls=$polls"
        exit 0
      fi
      reason=
      [ "$waited" -lt "$limit" ] || reason=timeout
      [ -z "$wpid" ] || [ -e "/proc/$wpid/exe" ] || reason=exited    # gone or a zombie
      if [ -n "$reason" ]; then
        [ -f "$tmp.out" ] && [ -n "$pids" ] && cat "$tmp.out"
        echo "numa-wait name=$name ok=0 reason=$reason want=$count found=$q min_pages=$minpages waited=$waited polls=$polls"
        exit 1
      fi
      sleep "$interval"
    done
    ;;
  -a) all=1; shift; [ $# -ge 1 ] || usage; snap "$@"; exit $? ;;
  -*) usage ;;
  *) snap "$@"; exit $? ;;
esac
