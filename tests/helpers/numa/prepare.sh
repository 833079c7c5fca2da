#!/usr/bin/env bash
# prepare.sh CACHE_DIR OUT_DIR [BIN...]
#
# Builds what run-in-guest.sh boots: OUT_DIR/vmlinux (Debian's kernel as an
# uncompressed ELF, booted through PVH: far faster under TCG than the bzImage)
# and OUT_DIR/base.cpio (uncompressed initramfs: static busybox, numactl,
# numastat, migratepages, every BIN in /bin with the libraries ldd lists,
# /bin/placement and /init).
#
# CACHE_DIR keeps the kernel .deb and the vmlinux extracted from it, so a
# re-run only rebuilds base.cpio (about a second). Nothing is installed and
# nothing is written outside CACHE_DIR and OUT_DIR (staging happens in a temp
# dir inside OUT_DIR that is removed on exit). Missing host packages are named
# in one line, and the script fails.
#
# Environment:
#   KERNEL_PKG  pin the kernel package (default: the one `apt-cache depends
#               linux-image-amd64` names; without apt lists, the newest cached)
#   GUEST_MPI   1: add Open MPI (mpirun, orted, their plugins and help files,
#               PMIx's, and every library ldd lists for them), for vecpar
#               built with --features mpi; the guest runs `mpirun` on its one
#               node (no ssh: give it `--mca plm_rsh_agent /bin/false`)
set -euo pipefail
export LC_ALL=C

prog=prepare.sh
die() { echo "$prog: $*" >&2; exit 1; }
[ $# -ge 2 ] || { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=$1; out=$2; shift 2
bins=("$@")

# ---- 1. host tools (never installed here: CI's .ci/run installs them) ----
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need cpio cpio
need xz xz-utils
need numactl numactl
need numastat numactl
need migratepages numactl
need qemu-system-x86_64 qemu-system-x86
need setpriv util-linux
need flock util-linux
need dpkg-deb dpkg
need apt-get apt
need apt-cache apt
need ldd libc-bin
need od coreutils
need tar tar
bb=/bin/busybox
if [ ! -x "$bb" ]; then
  missing+=(busybox-static)
elif ! grep -Eq 'not a dynamic executable|statically linked' <<<"$(ldd "$bb" 2>&1 || true)"; then
  missing+=("busybox-static(/bin/busybox is dynamically linked)")
fi
if [ ${#missing[@]} -gt 0 ]; then
  die "missing host packages: $(printf '%s\n' "${missing[@]}" | awk '!s[$0]++' | tr '\n' ' ')(install them first, e.g. apt-get install -y --no-install-recommends <these>)"
fi
[ -r "$HERE/placement.sh" ] || die "placement.sh not found next to $0"
for b in "${bins[@]}"; do
  [ -f "$b" ] && [ -x "$b" ] || die "BIN '$b' is not an executable file"
done

mkdir -p "$cache" "$out"
cache=$(cd "$cache" && pwd); out=$(cd "$out" && pwd)

# ---- 2. the kernel (cached) ----
# apt options: never regenerate apt's binary caches in /var/cache/apt, and
# download as root into CACHE_DIR without the _apt sandbox warning.
apt_opts=(-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Sandbox::User=root -q)

is_vmlinux() {  # ELF, 64-bit, x86-64
  [ -s "$1" ] || return 1
  [ "$(od -An -tx1 -N5 "$1" | tr -d ' \n')" = 7f454c4602 ] || return 1
  [ "$(od -An -tx1 -j18 -N2 "$1" | tr -d ' \n')" = 3e00 ]
}

exec 9>"$cache/.lock"          # one prepare.sh at a time per cache
flock -w 1800 9 || die "could not lock $cache/.lock within 30 min"

kpkg=${KERNEL_PKG:-$(apt-cache "${apt_opts[@]}" depends linux-image-amd64 2>/dev/null \
                     | awk '/Depends: linux-image-[0-9]/ { print $2; exit }' || true)}
if [ -z "$kpkg" ]; then
  # no apt lists (apt-get update not run): fall back to the newest cached kernel
  newest=$(ls -t "$cache"/vmlinux-* 2>/dev/null | head -n1 || true)
  [ -n "$newest" ] || die "cannot name the kernel package: 'apt-cache depends linux-image-amd64' names none (run apt-get update) and $cache has no vmlinux"
  kpkg=linux-image-${newest##*/vmlinux-}
  echo "$prog: apt names no kernel package; using cached $kpkg" >&2
fi
kver=${kpkg#linux-image-}
vmlinux=$cache/vmlinux-$kver

if is_vmlinux "$vmlinux"; then
  echo "$prog: kernel $kver: cached $vmlinux" >&2
else
  ktmp=$(mktemp -d "$cache/.tmp.XXXXXX")
  trap 'rm -rf "$ktmp"' EXIT
  trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP
  want=$(apt-cache "${apt_opts[@]}" show --no-all-versions "$kpkg" 2>/dev/null | awk '/^SHA256:/ { print $2; exit }' || true)
  deb=$(ls -t "$cache/${kpkg}"_*.deb 2>/dev/null | head -n1 || true)
  if [ -n "$deb" ] && [ -n "$want" ] && [ "$(sha256sum < "$deb" | cut -d' ' -f1)" != "$want" ]; then
    echo "$prog: cached $deb does not match apt's SHA256: downloading again" >&2
    rm -f "$deb"; deb=
  fi
  if [ -z "$deb" ]; then
    echo "$prog: downloading $kpkg (about 70 MB; not installed, only unpacked)" >&2
    (cd "$ktmp" && apt-get "${apt_opts[@]}" download "$kpkg") >&2 \
      || die "apt-get download $kpkg failed (run apt-get update? network?)"
    dl=$(ls "$ktmp/${kpkg}"_*.deb 2>/dev/null | head -n1) || true
    [ -n "$dl" ] || die "apt-get download $kpkg produced no .deb"
    rm -f "$cache/${kpkg}"_*.deb
    mv "$dl" "$cache/"; deb=$cache/${dl##*/}
  fi
  # Take only boot/vmlinuz-* and boot/config-* out of the package (the whole
  # package unpacks to 400 MB of modules that the guest does not need).
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$ktmp" ./boot/vmlinuz-"$kver" ./boot/config-"$kver" \
    || die "$deb has no ./boot/vmlinuz-$kver"
  bz=$ktmp/boot/vmlinuz-$kver
  # The bzImage's setup header (Documentation/arch/x86/boot.rst) tells where the
  # compressed kernel starts: (setup_sects+1)*512 + payload_offset.
  [ "$(od -An -c -j $((0x202)) -N4 "$bz" | tr -d ' \n')" = HdrS ] || die "$bz is not a bzImage"
  setup_sects=$(od -An -tu1 -j $((0x1f1)) -N1 "$bz" | tr -d ' ')
  [ "$setup_sects" -ne 0 ] || setup_sects=4
  poff=$(od -An -tu4 -j $((0x248)) -N4 "$bz" | tr -d ' ')
  plen=$(od -An -tu4 -j $((0x24c)) -N4 "$bz" | tr -d ' ')
  start=$(( (setup_sects + 1) * 512 + poff ))
  magic=$(od -An -tx1 -j "$start" -N6 "$bz" | tr -d ' \n')
  case $magic in
    fd377a585a00) dec=(xz -dc --single-stream) ;;
    1f8b*)        dec=(gzip -dc) ;;
    *) die "kernel payload at offset $start has magic $magic: only xz and gzip are handled" ;;
  esac
  # head/decompressor may stop reading early: a SIGPIPE upstream is expected
  { tail -c +$((start + 1)) "$bz" | head -c "$plen"; } 2>/dev/null | "${dec[@]}" > "$ktmp/vmlinux" 2>/dev/null || true
  is_vmlinux "$ktmp/vmlinux" || die "vmlinux extracted from $bz is not an x86-64 ELF"
  cfg=$ktmp/boot/config-$kver
  for opt in CONFIG_NUMA CONFIG_ACPI_NUMA CONFIG_PVH CONFIG_BLK_DEV_INITRD CONFIG_DEVTMPFS CONFIG_TMPFS \
             CONFIG_MEMFD_CREATE CONFIG_SERIAL_8250 CONFIG_SERIAL_8250_CONSOLE CONFIG_PROC_FS CONFIG_SYSFS; do
    grep -q "^$opt=y" "$cfg" || die "kernel $kver lacks $opt=y (needed without modules)"
  done
  mv "$cfg" "$cache/config-$kver"
  mv "$ktmp/vmlinux" "$vmlinux"
  # keep only this kernel in the cache
  for f in "$cache"/vmlinux-* "$cache"/config-* "$cache"/linux-image-*.deb; do
    case $f in "$vmlinux"|"$cache/config-$kver"|"$deb") ;; *) rm -f "$f" ;; esac
  done
  rm -rf "$ktmp"; trap - EXIT
  echo "$prog: kernel $kver: extracted $vmlinux ($(( $(stat -c %s "$vmlinux") / 1048576 )) MB)" >&2
fi

# ---- 3. the initramfs, staged inside OUT_DIR ----
stage=$(mktemp -d "$out/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP
root=$stage/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,root,etc,lib,lib64}

cp "$bb" "$root/bin/busybox"
for a in $("$bb" --list); do
  case $a in busybox|*/*) continue ;; esac
  ln -s busybox "$root/bin/$a"
done

declare -A seen=()
copy_bin() {  # copy $1 to /bin/NAME, and the libraries ldd lists to the same paths
  local src=$1 name=${1##*/} lib l
  [ -z "${seen[$name]:-}" ] || die "two binaries named $name"
  seen[$name]=1
  rm -f "$root/bin/$name"                       # a busybox applet of the same name gives way
  cp -L "$src" "$root/bin/$name"; chmod 0755 "$root/bin/$name"
  l=$(ldd "$src" 2>&1) || true
  if grep -q 'not found' <<<"$l"; then die "ldd $src: $(grep 'not found' <<<"$l" | head -n1)"; fi
  for lib in $(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' <<<"$l"); do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root${lib%/*}"
    cp -L "$lib" "$root$lib"
  done
}
for b in "$(command -v numactl)" "$(command -v numastat)" "$(command -v migratepages)" "${bins[@]}"; do
  copy_bin "$b"
done
if [ "${GUEST_MPI:-0}" = 1 ]; then
  # Open MPI as Debian installs it: the launcher and daemon where its
  # compiled-in prefix looks for them, the plugins it dlopens, the files
  # it reads (help texts, MCA defaults), and the libraries all of them need.
  mpi_bins=() mpi_dirs=()
  for b in orterun orted; do
    f=$(command -v "$b" 2>/dev/null) || die "GUEST_MPI=1: $b not found (apt-get install openmpi-bin)"
    mpi_bins+=("$(readlink -f "$f")")
    mkdir -p "$root/usr/bin"; cp -L "$f" "$root/usr/bin/$b"
  done
  ln -sf orterun "$root/usr/bin/mpirun"
  for d in /usr/lib/x86_64-linux-gnu/openmpi /usr/lib/x86_64-linux-gnu/pmix2 /usr/share/openmpi /etc/openmpi \
           /usr/share/pmix; do
    [ -e "$d" ] || continue
    mpi_dirs+=("$d")
    mkdir -p "$root${d%/*}"; cp -aL "$d" "$root$d"
  done
  libs=$( { ldd "${mpi_bins[@]}"; find "${mpi_dirs[@]}" -name '*.so*' -type f -exec ldd {} \; ; } 2>/dev/null \
          | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\// && $i !~ /:$/) print $i }' | sort -u)
  for lib in $libs; do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root${lib%/*}"; cp -L "$lib" "$root$lib"
  done
fi
install -m 0755 "$HERE/placement.sh" "$root/bin/placement"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"

cat > "$root/init" <<'INIT'
#!/bin/sh
# /init of the vecpar NUMA test guest (written by tests/helpers/numa/prepare.sh).
# Console (ttyS0): kernel messages and the markers. ttyS1: /cmd.sh's stdout and
# stderr only, framed by @@VNT-BEGIN / @@VNT-END markers that carry a per-run
# nonce from /run.env (both come from the small cpio run-in-guest.sh appends).
PATH=/bin:/sbin:/usr/bin:/usr/sbin; export PATH
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/shm /tmp
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
NONCE=none
[ -r /run.env ] && . /run.env
up() { read -r u _ < /proc/uptime; echo "$u"; }
if [ -c /dev/ttyS1 ] && exec 3<>/dev/ttyS1 2>/dev/null; then
  stty raw -echo <&3 2>/dev/null     # no CR added, nothing echoed
else
  exec 3>/dev/console                 # booted by hand without a 2nd serial port
fi
echo "@@VNT-UP $NONCE uptime=$(up)" > /dev/console
echo "@@VNT-BEGIN $NONCE" >&3
cd /tmp
if [ -f /cmd.sh ]; then
  env -i PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=dumb LANG=C /bin/sh /cmd.sh </dev/null >&3 2>&3 3>&-
  rc=$?
else
  echo "no /cmd.sh in the initramfs" >&3; rc=127
fi
# End whatever the script left behind, so that this fd is the last one open
# on ttyS1: its close then waits until every byte has left the UART.
kill -TERM -1 2>/dev/null; sleep 0.2; kill -KILL -1 2>/dev/null
i=0
while [ $i -lt 100 ]; do
  busy=
  for d in /proc/[0-9]*; do
    [ "${d#/proc/}" = 1 ] && continue
    [ -e "$d/exe" ] && { busy=1; break; }    # kernel threads and zombies have no exe
  done
  [ -z "$busy" ] && break
  i=$((i + 1)); sleep 0.1
done
printf '\n@@VNT-END %s rc=%d\n' "$NONCE" "$rc" >&3
exec 3>&-
echo "@@VNT-END $NONCE rc=$rc uptime=$(up)" > /dev/console
sync
poweroff -f
INIT
chmod 0755 "$root/init"

# fixed mtimes, owners and inode numbers: the same inputs give the same base.cpio
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 | sort | cpio -o -H newc -R 0:0 --reproducible --quiet) > "$stage/base.cpio"

# OUT_DIR/vmlinux: a hard link to the cached one when both are on one file system
if [ ! "$out/vmlinux" -ef "$vmlinux" ] && ! cmp -s "$out/vmlinux" "$vmlinux" 2>/dev/null; then
  ln -f "$vmlinux" "$stage/vmlinux" 2>/dev/null || cp "$vmlinux" "$stage/vmlinux"
fi
{
  echo "kernel=$kver"
  echo "kernel_pkg=$kpkg"
  echo "busybox=$("$bb" 2>&1 | head -n1)"
  echo "bins=$(cd "$root/bin" && for f in *; do [ -L "$f" ] || printf '%s ' "$f"; done)"
} > "$stage/guest.info"
[ ! -e "$stage/vmlinux" ] || mv -f "$stage/vmlinux" "$out/vmlinux"
mv -f "$stage/guest.info" "$out/guest.info"
mv -f "$stage/base.cpio" "$out/base.cpio"
echo "$prog: wrote $out/base.cpio ($(( $(stat -c %s "$out/base.cpio") / 1048576 )) MB) and $out/vmlinux (kernel $kver)" >&2
