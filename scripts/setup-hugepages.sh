#!/usr/bin/env bash
# Reserves hugepages for l4lb's DPDK memory and mounts hugetlbfs, or reports whether the host is
# ready (--check). Safe to run again: a reservation that is already large enough and a mount that
# already exists are left alone. Persistence (sysctl.d, fstab, kernel command line) is printed,
# and written only with --persist. See docs/OPERATIONS.md.
#
# Exit status: 0 done / usable, 1 error / not usable, 2 bad arguments.
set -euo pipefail

prog=$(basename "$0")
SYSFS_HP=/sys/kernel/mm/hugepages
SYSCTL_FILE=sysctl.d/80-l4lb-hugepages.conf
# Reserving must leave the kernel this much (kB) of MemAvailable: pages taken from a host that
# then swaps or OOM-kills the control plane are worse than a clear refusal.
KEEP_KB=$((512 * 1024))

usage() {
  cat <<EOF
usage: $prog [options] AMOUNT     reserve hugepages and mount hugetlbfs (root)
       $prog --check [--size SIZE] [AMOUNT]
                                      report pages per size, free pages and mounts; exit 0 if
                                      DPDK can use them (at least AMOUNT free, default 1 page)

AMOUNT   a page count (512) or a memory amount (512M, 1G, 4096K, 2T; a trailing B is allowed),
         rounded up to whole pages
options:
  -s, --size SIZE   page size: 2M (default) or 1G
  -m, --mount DIR   hugetlbfs mount point (default /dev/hugepages for the kernel's default page
                    size, /dev/hugepages<SIZE> for the other one); an existing hugetlbfs mount
                    of that page size is reused when DIR is not given
      --no-mount    only reserve pages (EAL --in-memory needs no mount)
      --exact       set the pool to exactly AMOUNT (may shrink it: pages in use stay until
                    released); by default a pool that is already large enough is left alone
      --persist     also write the boot-time settings (sysctl.d or kernel command line, fstab)
      --etc DIR     where --persist writes (default /etc; for images and chroots)
  -h, --help        this text
EOF
}

die() { echo "$prog: $*" >&2; exit 1; }
bad_usage() { echo "$prog: $*" >&2; usage >&2; exit 2; }

# kB -> "2M", "1G", "640M", "4K"
fmt_kb() {
  local kb=$1
  if ((kb % 1048576 == 0)); then echo "$((kb / 1048576))G"
  elif ((kb % 1024 == 0)); then echo "$((kb / 1024))M"
  else echo "${kb}K"; fi
}

# "2M", "2MB", "1g", "2048K", "1024M" -> kB on stdout; returns 1 if not a size.
parse_kb() {
  local s=${1^^}
  s=${s%B}
  [[ $s =~ ^([0-9]{1,12})([KMGT])$ ]] || return 1
  local n=${BASH_REMATCH[1]} mult
  n=$((10#$n))
  case ${BASH_REMATCH[2]} in K) mult=1 ;; M) mult=1024 ;; G) mult=1048576 ;; T) mult=1073741824 ;; esac
  echo $((n * mult))
}

supported_kb() {  # page sizes this kernel offers, in kB, ascending
  local d
  for d in "$SYSFS_HP"/hugepages-*kB; do
    [ -d "$d" ] || continue
    d=${d##*/hugepages-}
    echo "${d%kB}"
  done | sort -n
}

default_kb() { awk '$1 == "Hugepagesize:" {print $2}' /proc/meminfo; }
mem_available_kb() { awk '$1 == "MemAvailable:" {print $2}' /proc/meminfo; }
pool_value() { cat "$SYSFS_HP/hugepages-$1kB/$2"; }  # pool_value KB nr_hugepages|free_hugepages|...

# hugetlbfs mounts as "DIR PAGESIZE_KB" lines (the kernel always shows pagesize=).
hugetlbfs_mounts() {
  local dir type opts o x kb
  while read -r _ dir type opts _; do
    [ "$type" = hugetlbfs ] || continue
    kb=""
    IFS=, read -ra o <<<"$opts"
    for x in "${o[@]}"; do
      if [[ $x == pagesize=* ]]; then kb=$(parse_kb "${x#pagesize=}") || kb=""; fi
    done
    [ -n "$kb" ] || kb=$(default_kb)
    echo "$dir $kb"
  done </proc/mounts
}

mounts_for() { hugetlbfs_mounts | awk -v kb="$1" '$2 == kb {print $1}'; }

# ---------------------------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------------------------
check=0 exact=0 persist=0 mount=1 size_arg="" mount_dir="" etc_dir=/etc amount=""
while [ $# -gt 0 ]; do
  case $1 in
    --check) check=1 ;;
    -s|--size) [ $# -ge 2 ] || bad_usage "$1 needs a value"; size_arg=$2; shift ;;
    --size=*) size_arg=${1#*=} ;;
    -m|--mount) [ $# -ge 2 ] || bad_usage "$1 needs a value"; mount_dir=$2; shift ;;
    --mount=*) mount_dir=${1#*=} ;;
    --no-mount) mount=0 ;;
    --exact) exact=1 ;;
    --persist) persist=1 ;;
    --etc) [ $# -ge 2 ] || bad_usage "$1 needs a value"; etc_dir=$2; shift ;;
    --etc=*) etc_dir=${1#*=} ;;
    -h|--help) usage; exit 0 ;;
    -*) bad_usage "unknown option '$1'" ;;
    *) [ -z "$amount" ] || bad_usage "one AMOUNT only (got '$amount' and '$1')"; amount=$1 ;;
  esac
  shift
done

if [ -n "$amount" ] && ! [[ $amount =~ ^[0-9]{1,12}$ ]] && ! parse_kb "$amount" >/dev/null; then
  bad_usage "bad AMOUNT '$amount' (a page count like 512, or memory like 1G / 512M)"
fi

[ -d "$SYSFS_HP" ] || die "this kernel has no hugepage support ($SYSFS_HP is missing)"
supported=$(supported_kb)
[ -n "$supported" ] || die "this kernel offers no hugepage sizes ($SYSFS_HP is empty)"

page_kb=""
if [ -n "$size_arg" ]; then
  page_kb=$(parse_kb "$size_arg") || bad_usage "bad page size '$size_arg' (2M or 1G)"
  if ! grep -qx "$page_kb" <<<"$supported"; then
    list=$(for k in $supported; do fmt_kb "$k"; done | paste -sd' ')
    if [ "$page_kb" = 1048576 ]; then
      die "1G pages are not supported here (the CPU lacks pdpe1gb, or the kernel or hypervisor does not offer them); supported sizes: $list"
    fi
    die "$(fmt_kb "$page_kb") pages are not supported by this kernel; supported sizes: $list"
  fi
fi

# AMOUNT -> pages of page_kb (called once page_kb is known)
amount_pages() {
  local a=$1 kb
  if [[ $a =~ ^[0-9]{1,12}$ ]]; then
    echo $((10#$a))
  else
    kb=$(parse_kb "$a")  # syntax checked with the other arguments
    echo $(((kb + page_kb - 1) / page_kb))
  fi
}

# ---------------------------------------------------------------------------------------------
# --check: read-only, no root needed
# ---------------------------------------------------------------------------------------------
if [ "$check" = 1 ]; then
  if [ "$exact$persist" != 00 ] || [ -n "$mount_dir" ] || [ "$mount" != 1 ]; then
    bad_usage "--check takes only --size and AMOUNT"
  fi
  def=$(default_kb)
  echo "hugepages:"
  for kb in $supported; do
    note=""
    [ "$kb" = "$def" ] && note=" (default size)"
    printf '  %s: %d total, %d free, %d reserved, %d surplus%s\n' "$(fmt_kb "$kb")" \
      "$(pool_value "$kb" nr_hugepages)" "$(pool_value "$kb" free_hugepages)" \
      "$(pool_value "$kb" resv_hugepages)" "$(pool_value "$kb" surplus_hugepages)" "$note"
  done
  echo "hugetlbfs mounts:"
  m=$(hugetlbfs_mounts)
  if [ -z "$m" ]; then
    echo "  none"
  else
    while read -r dir kb; do echo "  $dir pagesize=$(fmt_kb "$kb")"; done <<<"$m"
  fi
  usable="" why=()
  for kb in ${page_kb:-$supported}; do
    want=1
    if [ -n "$amount" ]; then page_kb=$kb want=$(amount_pages "$amount"); fi
    ((want > 0)) || want=1
    # Reserved pages are promised to mappings that have not touched them yet: not ours to use.
    avail=$(($(pool_value "$kb" free_hugepages) - $(pool_value "$kb" resv_hugepages)))
    dirs=$(mounts_for "$kb" | paste -sd' ')
    s=$(fmt_kb "$kb")
    fix="$prog --size $s AMOUNT"
    [ -z "$amount" ] || fix="$prog --size $s $(fmt_kb $((want * kb)))"
    if ((avail < want)); then
      why+=("$s: $avail pages available, $want needed (reserve with: $fix)")
    elif [ -z "$dirs" ]; then
      why+=("$s: $avail pages available but no hugetlbfs mount of that size (mount with: $fix)")
    else
      usable+="${usable:+; }$s: $avail pages available ($(fmt_kb $((avail * kb)))) at $dirs"
    fi
  done
  if [ -n "$usable" ]; then
    echo "usable: $usable"
    exit 0
  fi
  echo "not usable:"
  for w in "${why[@]}"; do echo "  $w"; done
  exit 1
fi

# ---------------------------------------------------------------------------------------------
# reserve and mount
# ---------------------------------------------------------------------------------------------
[ -n "$amount" ] || bad_usage "AMOUNT is required (or --check)"
page_kb=${page_kb:-2048}
if ! grep -qx "$page_kb" <<<"$supported"; then
  die "2M pages are not supported by this kernel; pick one with --size (supported: $(for k in $supported; do fmt_kb "$k"; done | paste -sd' '))"
fi
want=$(amount_pages "$amount")
[[ $mount_dir != *[[:space:]]* ]] || bad_usage "mount point '$mount_dir' contains whitespace"
[ "$(id -u)" = 0 ] || die "must run as root (it writes $SYSFS_HP and mounts hugetlbfs); --check needs no root"

size=$(fmt_kb "$page_kb")
nr_file=$SYSFS_HP/hugepages-${page_kb}kB/nr_hugepages
cur=$(cat "$nr_file")
target=$want
((exact == 1 || want > cur)) || target=$cur

if ((target == cur)); then
  echo "$size pages: $cur reserved, nothing to change"
else
  if ((target > cur)); then
    need=$(((target - cur) * page_kb))
    avail=$(mem_available_kb)
    if ((need > avail - KEEP_KB)); then
      die "not enough memory: $((target - cur)) more $size pages need $((need / 1024)) MB, $((avail / 1024)) MB is available and $((KEEP_KB / 1024)) MB stays for the system"
    fi
  fi
  echo "$target" >"$nr_file" 2>/dev/null || die "cannot write $nr_file (read-only /sys, e.g. in a container?)"
  got=$(cat "$nr_file")
  if ((target > cur && got < target)); then
    # All or nothing: a partial pool would make DPDK fail later with a less obvious error.
    echo "$cur" >"$nr_file" 2>/dev/null || true
    hint="the kernel could not find enough contiguous free memory"
    if [ "$page_kb" = 1048576 ]; then
      hint="$hint; reserve 1G pages at boot instead (kernel command line: hugepagesz=1G hugepages=$target)"
    else
      hint="$hint; try again after 'echo 1 > /proc/sys/vm/compact_memory', or reserve at boot (kernel command line: hugepagesz=2M hugepages=$target)"
    fi
    die "the kernel reserved only $got of $target $size pages, left at $cur: $hint"
  fi
  echo "$size pages: $cur -> $got reserved ($(pool_value "$page_kb" free_hugepages) free)"
  target=$got
fi

default_dir=/dev/hugepages
[ "$page_kb" = "$(default_kb)" ] || default_dir=/dev/hugepages$size
if [ "$mount" = 1 ]; then
  existing=$(mounts_for "$page_kb" | awk 'NR == 1')
  if [ -z "$mount_dir" ] && [ -n "$existing" ]; then
    mount_dir=$existing
    echo "hugetlbfs for $size pages: already mounted at $mount_dir"
  else
    mount_dir=${mount_dir:-$default_dir}
    mount_dir=$(realpath -m "$mount_dir")
    here=$(hugetlbfs_mounts | awk -v d="$mount_dir" '$1 == d {print $2}' | tail -n1)
    if [ -n "$here" ] && [ "$here" = "$page_kb" ]; then
      echo "hugetlbfs for $size pages: already mounted at $mount_dir"
    elif [ -n "$here" ]; then
      die "$mount_dir is a hugetlbfs mount of $(fmt_kb "$here") pages, not $size; pick another --mount"
    elif mountpoint -q "$mount_dir" 2>/dev/null; then
      die "$mount_dir is already a mount point of another file system; pick another --mount"
    else
      mkdir -p "$mount_dir"
      mount -t hugetlbfs -o "pagesize=$size" nodev "$mount_dir" ||
        die "mounting hugetlbfs (pagesize=$size) on $mount_dir failed"
      echo "hugetlbfs for $size pages: mounted at $mount_dir"
    fi
  fi
fi

# ---------------------------------------------------------------------------------------------
# persistence: printed; written with --persist
# ---------------------------------------------------------------------------------------------
fstab_dir=${mount_dir:-$default_dir}
fstab_line="nodev $fstab_dir hugetlbfs pagesize=$size 0 0"
# vm.nr_hugepages sets only the default page size's pool; the other size needs the kernel
# command line (which is also the only dependable way to get 1G pages: memory fragments after boot).
sysctl_ok=0
[ "$page_kb" = "$(default_kb)" ] && sysctl_ok=1
cmdline="hugepagesz=$size hugepages=$target"
sysctl_body="# Written by l4lb $prog: $target x $size hugepages for DPDK.
vm.nr_hugepages = $target"

if [ "$persist" = 0 ]; then
  echo "to keep this after a reboot (or run again with --persist):"
  if [ "$sysctl_ok" = 1 ]; then
    echo "  $etc_dir/$SYSCTL_FILE:  vm.nr_hugepages = $target"
  fi
  echo "  kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub):  $cmdline"
  [ "$mount" = 0 ] || echo "  $etc_dir/fstab:  $fstab_line"
  exit 0
fi

[ -d "$etc_dir" ] || die "--etc $etc_dir: no such directory"
if [ "$sysctl_ok" = 1 ]; then
  f=$etc_dir/$SYSCTL_FILE
  if [ -f "$f" ] && [ "$(cat "$f")" = "$sysctl_body" ]; then
    echo "persist: $f unchanged"
  else
    mkdir -p "$(dirname "$f")"
    printf '%s\n' "$sysctl_body" >"$f"
    echo "persist: wrote $f (vm.nr_hugepages = $target)"
  fi
else
  echo "persist: $size is not the default page size, so sysctl cannot reserve it at boot; add to the kernel command line yourself (GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub):  $cmdline"
fi
if [ "$mount" = 1 ]; then
  f=$etc_dir/fstab
  old=$(awk -v d="$fstab_dir" '$1 !~ /^#/ && $2 == d' "$f" 2>/dev/null || true)
  if [ -z "$old" ]; then
    printf '%s\n' "$fstab_line" >>"$f"
    echo "persist: added to $f: $fstab_line"
  elif [ "$(awk '{$1=$1; print}' <<<"$old")" = "$fstab_line" ]; then
    echo "persist: $f already has: $fstab_line"
  else
    echo "persist: $f already has another entry for $fstab_dir, left unchanged: $old" >&2
  fi
fi
