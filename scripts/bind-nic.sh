#!/usr/bin/env bash
# Hands a NIC to DPDK (vfio-pci) with dpdk-devbind.py, or gives it back to a kernel driver, and
# refuses to take away the interface this machine is managed through: the one carrying the
# default route (never, not even with --force) or the local address of an SSH connection
# (unless --force). Run it in the network namespace that holds the NIC's interface.
# See docs/OPERATIONS.md.
#
# Exit status: 0 done (or nothing to do), 1 refused / failed, 2 bad arguments.
set -euo pipefail

prog=$(basename "$0")
PCI_DEVICES=/sys/bus/pci/devices

usage() {
  cat <<EOF
usage: $prog [--force] [--noiommu] [--dry-run] DEVICE   bind DEVICE to vfio-pci for DPDK
       $prog --unbind DRIVER [--dry-run] DEVICE          give DEVICE back to kernel driver
                                                         DRIVER (e.g. ixgbe, i40e, mlx5_core)
       $prog --status                                    list NICs, their drivers, and the
                                                         management interfaces

DEVICE     a PCI address (0000:01:00.0 or 01:00.0) or a kernel interface name (eth1)
--force    bind even though the interface holds the local address of an SSH connection or has
           routes; never overrides the default-route refusal
--noiommu  the host has no IOMMU (a VM without vIOMMU): enable vfio's unsafe no-IOMMU mode
           (the device can then DMA anywhere in memory)
--dry-run  run every check, print the dpdk-devbind.py command, change nothing
EOF
}

die() { echo "$prog: $*" >&2; exit 1; }
bad_usage() { echo "$prog: $*" >&2; usage >&2; exit 2; }

find_devbind() {
  local c
  for c in "${DPDK_DEVBIND:-}" "$(command -v dpdk-devbind.py || true)" "$(command -v dpdk-devbind || true)" \
    /usr/share/dpdk/usertools/dpdk-devbind.py /usr/local/bin/dpdk-devbind.py; do
    [ -n "$c" ] && [ -x "$c" ] && { echo "$c"; return 0; }
  done
  return 1
}

devbind() {
  local d
  d=$(find_devbind) || die "dpdk-devbind.py not found (Debian: apt-get install dpdk; or set DPDK_DEVBIND)"
  "$d" "$@"
}

# Interfaces that carry a default route, IPv4 or IPv6, in any routing table ("dev X" of every
# nexthop of a multipath route too).
default_route_ifaces() {
  { ip -o -4 route show table all default 2>/dev/null; ip -o -6 route show table all default 2>/dev/null; } |
    { grep -oE '(^| )dev [^ ]+' || true; } | awk '{print $2}' | sort -u
}

default_route_text() {  # the default routes through interface $1, one per line
  { ip -4 route show table all default 2>/dev/null; ip -6 route show table all default 2>/dev/null; } |
    { grep -E "(^| )dev $1( |$)" || true; } | sed 's/ *$//' | sort -u
}

# Local addresses of SSH connections: this session's (SSH_CONNECTION = "client cport server
# sport") and every established connection of an sshd process (sudo may drop SSH_CONNECTION).
# Lines "LOCAL_ADDR PEER_ADDR".
ssh_addresses() {
  local c
  if [ -n "${SSH_CONNECTION:-}" ]; then
    read -ra c <<<"$SSH_CONNECTION"
    [ ${#c[@]} -ge 3 ] && echo "${c[2]} ${c[0]}"
  fi
  if command -v ss >/dev/null; then
    ss -Htnp state established 2>/dev/null | awk '/"sshd"/ {print $3, $4}' |
      sed -E 's/:[0-9]+( |$)/\1/g; s/\[|\]//g; s/::ffff:([0-9.]+)/\1/g; s/%[^ ]*//g'
  fi
}

iface_of_addr() {  # kernel interface holding address $1, if any
  ip -o addr show 2>/dev/null | awk -v a="$1" '{split($4, p, "/")} p[1] == a && !found {print $2; found = 1}'
}

# Routes through interface $1 the kernel would lose (IPv4; IPv6 except link-local/multicast,
# which every interface with IPv6 has).
iface_routes() {
  { ip -o -4 route show dev "$1" 2>/dev/null; ip -o -6 route show dev "$1" 2>/dev/null | { grep -vE '^(fe80|ff[0-9a-f]{2}):' || true; }; } |
    awk '{print $1}' | paste -sd' '
}

# Refuses (exits) if interface $1 is how this machine is reached.
check_management() {
  local ifc=$1 local_addr peer defaults
  # Captured first: with pipefail, grep -q closing a pipe early could make a match look like a miss.
  defaults=$(default_route_ifaces)
  if grep -qx -- "$ifc" <<<"$defaults"; then
    die "refusing to bind $ifc: it carries the default route ($(default_route_text "$ifc" | paste -sd';' | sed 's/;/; /g')); DPDK would take it from the kernel and cut this machine off. Move the default route to another interface first (--force does not override this)"
  fi
  while read -r local_addr peer; do
    [ -n "$local_addr" ] || continue
    [ "$(iface_of_addr "$local_addr")" = "$ifc" ] || continue
    [ "$force" = 1 ] && { echo "$prog: warning: $ifc holds $local_addr, the local address of an SSH connection from $peer (--force)" >&2; continue; }
    die "refusing to bind $ifc: it holds $local_addr, the local address of an SSH connection from $peer; binding it would drop the session. Use --force if you reach this machine another way (console, another NIC)"
  done < <(ssh_addresses | sort -u)
  local routes
  routes=$(iface_routes "$ifc")
  if [ -n "$routes" ]; then
    [ "$force" = 1 ] && { echo "$prog: warning: $ifc is in use by the kernel (routes: $routes) (--force)" >&2; return 0; }
    die "refusing to bind $ifc: the kernel is using it (routes: $routes); take it out of use first (ip link set $ifc down), or use --force"
  fi
}

# Resolves DEVICE to its PCI address (sets addr); exits with a clear message if it has none.
# An interface's management checks run first, so a virtual management interface is refused as
# such.
resolve_pci() {
  local dev=$1
  if [[ $dev =~ ^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$ ]]; then
    addr=${dev,,}
    [[ $addr == ????:* ]] || addr=0000:$addr
    [ -e "$PCI_DEVICES/$addr" ] || die "no PCI device $addr ($prog --status lists the NICs)"
    return 0
  fi
  [[ $dev =~ ^[A-Za-z0-9_.:@-]{1,15}$ ]] || die "'$dev' is neither a PCI address (0000:01:00.0) nor an interface name"
  [ -e "/sys/class/net/$dev" ] || die "no interface $dev in this network namespace (ip link lists them; a NIC already bound to DPDK has no interface: use its PCI address)"
  check_management "$dev"
  checked+=" $dev "
  if [ ! -e "/sys/class/net/$dev/device" ]; then
    local kind
    kind=$(ethtool -i "$dev" 2>/dev/null | awk '$1 == "driver:" {print $2}' || true)
    die "$dev is a virtual interface (${kind:-no driver}) with no PCI address: only PCI NICs can be bound to vfio-pci. Use it through AF_XDP instead: device = \"net_af_xdp0,iface=$dev\" in l4lb.toml"
  fi
  local p
  p=$(readlink -f "/sys/class/net/$dev/device")
  # virtio-net: the interface hangs off a virtio device whose parent is the PCI function.
  [[ $(readlink -f "$p/subsystem") == */bus/pci ]] || p=$(dirname "$p")
  [[ $(readlink -f "$p/subsystem") == */bus/pci ]] ||
    die "$dev is not on the PCI bus ($(readlink -f "/sys/class/net/$dev/device/subsystem" | xargs basename)): cannot be bound to vfio-pci"
  addr=$(basename "$p")
}

pci_ifaces() {  # kernel interfaces of PCI function $1 (virtio: one level down)
  local d
  for d in "$PCI_DEVICES/$1"/net/* "$PCI_DEVICES/$1"/virtio*/net/*; do
    [ -e "$d" ] && basename "$d"
  done
  return 0
}

pci_driver() {
  local l=$PCI_DEVICES/$1/driver
  if [ -e "$l" ]; then basename "$(readlink -f "$l")"; else echo none; fi
}

check_pci() {  # PCI function $1 is a NIC none of whose interfaces is a management interface
  local addr=$1 class ifc
  class=$(cat "$PCI_DEVICES/$addr/class")
  [[ $class == 0x02* ]] || die "$addr is not a network controller (PCI class $class): refusing"
  for ifc in $(pci_ifaces "$addr"); do
    [[ $checked == *" $ifc "* ]] || check_management "$ifc"
  done
}

load_module() {  # load_module MODULE [PARAM=VALUE]: exits if it cannot
  local m=$1
  [ -d "/sys/bus/pci/drivers/$m" ] && return 0
  [ "$dry_run" = 1 ] && { echo "would load module $m"; return 0; }
  command -v modprobe >/dev/null || die "$m is not loaded and modprobe is missing (apt-get install kmod)"
  modprobe "$@" || die "cannot load module $m (modprobe $*)"
  [ -d "/sys/bus/pci/drivers/$m" ] || die "module $m loaded but /sys/bus/pci/drivers/$m did not appear"
}

status() {
  devbind --status-dev net 2>/dev/null
  echo
  local title="Management interfaces ($prog refuses them)"
  echo "$title"
  echo "${title//?/=}"
  local any=0 ifc a p
  for ifc in $(default_route_ifaces); do echo "$ifc: default route"; any=1; done
  while read -r a p; do
    [ -n "$a" ] || continue
    ifc=$(iface_of_addr "$a")
    [ -n "$ifc" ] && { echo "$ifc: SSH connection $a <- $p (refused unless --force)"; any=1; }
  done < <(ssh_addresses | sort -u)
  [ "$any" = 1 ] || echo "none found"
  echo
  local groups
  groups=$(find /sys/kernel/iommu_groups -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  echo "IOMMU groups: $groups$([ "$groups" -gt 0 ] || echo " (no IOMMU: vfio-pci needs --noiommu)")"
  echo "vfio-pci: $([ -d /sys/bus/pci/drivers/vfio-pci ] && echo loaded || echo "not loaded")"
}

# ---------------------------------------------------------------------------------------------
force=0 noiommu=0 dry_run=0 mode=bind driver=vfio-pci device="" addr="" checked=""
while [ $# -gt 0 ]; do
  case $1 in
    --status) mode=status ;;
    --unbind) [ $# -ge 2 ] || bad_usage "--unbind needs a kernel DRIVER"; mode=unbind; driver=$2; shift ;;
    --force) force=1 ;;
    --noiommu) noiommu=1 ;;
    --dry-run|-n) dry_run=1 ;;
    -h|--help) usage; exit 0 ;;
    -*) bad_usage "unknown option '$1'" ;;
    *) [ -z "$device" ] || bad_usage "one DEVICE only (got '$device' and '$1')"; device=$1 ;;
  esac
  shift
done

if [ "$mode" = status ]; then
  if [ -n "$device" ] || [ "$force$noiommu$dry_run" != 000 ]; then
    bad_usage "--status takes no other argument"
  fi
  status
  exit 0
fi
[ -n "$device" ] || bad_usage "DEVICE is required"
if [ "$mode" = unbind ]; then
  [[ $driver =~ ^[A-Za-z0-9_-]+$ ]] || bad_usage "bad driver name '$driver'"
  [ "$driver" != vfio-pci ] || bad_usage "--unbind gives a NIC back to a kernel driver; to bind to vfio-pci leave --unbind out"
  [ "$noiommu" = 0 ] || bad_usage "--noiommu is for binding to vfio-pci"
fi
[ "$(id -u)" = 0 ] || [ "$dry_run" = 1 ] || die "must run as root (it rebinds PCI drivers)"

resolve_pci "$device"
check_pci "$addr"
was=$(pci_driver "$addr")
ifaces=$(pci_ifaces "$addr" | paste -sd' ')
what="$addr${ifaces:+ ($ifaces)}"
if [ "$was" = "$driver" ]; then
  echo "$what is already bound to $driver"
  exit 0
fi

if [ "$mode" = bind ]; then
  groups=$(find /sys/kernel/iommu_groups -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  noiommu_param=/sys/module/vfio/parameters/enable_unsafe_noiommu_mode
  if [ "$groups" = 0 ] && [ "$(cat "$noiommu_param" 2>/dev/null)" != Y ]; then
    [ "$noiommu" = 1 ] ||
      die "no IOMMU on this host: vfio-pci needs one. Boot with intel_iommu=on iommu=pt (or amd_iommu=on), or pass --noiommu in a VM without a virtual IOMMU (unsafe: the device can DMA anywhere)"
  fi
  load_module vfio-pci
  if [ "$noiommu" = 1 ] && [ "$groups" = 0 ]; then
    if [ "$dry_run" = 1 ]; then
      echo "would run: echo Y > $noiommu_param"
    else
      echo Y >"$noiommu_param" 2>/dev/null || die "cannot enable vfio's no-IOMMU mode ($noiommu_param)"
    fi
  fi
else
  load_module "$driver"
fi

# Our checks already decided about --force; dpdk-devbind.py's own "interface is active" check
# answers with a warning and exit 0, so the result is verified below, not assumed.
args=(--bind="$driver")
[ "$force" = 0 ] || args+=(--force)
if [ "$dry_run" = 1 ]; then
  echo "would run: $(find_devbind || echo dpdk-devbind.py) ${args[*]} $addr   ($what, now $was)"
  exit 0
fi
devbind "${args[@]}" "$addr"
now=$(pci_driver "$addr")
[ "$now" = "$driver" ] || die "dpdk-devbind.py did not bind $addr to $driver (driver now: $now); its output above says why"
if [ "$mode" = bind ]; then
  back="Give it back with: $prog --unbind $was $addr"
  [ "$was" != none ] || back="It had no driver before; give it to its kernel driver with: $prog --unbind DRIVER $addr"
  echo "$what: $was -> vfio-pci. In l4lb.toml: device = \"$addr\". $back"
else
  now_ifaces=$(pci_ifaces "$addr" | paste -sd' ')
  echo "$addr: $was -> $driver${now_ifaces:+ (interfaces: $now_ifaces)}"
fi
