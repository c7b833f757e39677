/* The layout of l4lb's XDP program's maps: included by the BPF program (C, clang -target bpf)
 * and by the control-plane adapter (src/control/xdp_map.cc), so the two cannot disagree.
 * Plain C on purpose: it must compile in both languages. */
#ifndef L4LB_DATAPLANE_XDP_L4LB_XDP_H
#define L4LB_DATAPLANE_XDP_L4LB_XDP_H

#include <linux/types.h>

/* The program's name (its function in l4lb_xdp.bpf.c; the kernel keeps the first 15 characters):
 * how a new l4lb recognises the program a killed one left attached (control/xdp_reclaim.cc). */
#define L4LB_XDP_PROG_NAME "l4lb_xdp"

/* l4lb_addrs key: family 4 or 6; an IPv4 address fills addr[0..3] (network order), the rest is
 * zero, so one address has exactly one key. */
struct l4lb_xdp_addr_key {
  __u32 family;
  __u8 addr[16];
};

/* l4lb_addrs value: a bit set. */
#define L4LB_XDP_VIP 1u         /* a VIP: its traffic, ARP and ND go to DPDK */
#define L4LB_XDP_OWN 2u         /* the port's own address: the kernel's (SSH, health checks) */
#define L4LB_XDP_NAT_BACKEND 4u /* a NAT backend: its replies to clients go to DPDK */
#define L4LB_XDP_ALL_FLAGS (L4LB_XDP_VIP | L4LB_XDP_OWN | L4LB_XDP_NAT_BACKEND)

/* VIPs plus NAT backends. The hash is preallocated: its kernel memory is fixed at load time and
 * an update from the control plane never fails for lack of memory below this bound. */
#define L4LB_XDP_MAX_ADDRS 16384
/* XSKMAP slots, indexed by RX queue (the PMD inserts each socket at its queue id). */
#define L4LB_XDP_MAX_QUEUES 256

/* One counter per verdict reason, in l4lb_xdp_stats (a per-CPU array indexed by the enum).
 * Every packet counts exactly one pass_* or redirect_* reason. redirect_no_xsk counts, in
 * addition, the redirects that found no AF_XDP socket on the packet's queue and so went to the
 * kernel instead (bpf_redirect_map's XDP_PASS fallback): nonzero means a queue DPDK does not
 * poll receives VIP traffic. */
#define L4LB_XDP_STATS(X)                                                              \
  X(L4LB_XDP_PASS_NOT_IP, "pass_not_ip")               /* not IPv4 / IPv6 / ARP */     \
  X(L4LB_XDP_PASS_MALFORMED, "pass_malformed")         /* short or malformed header */ \
  X(L4LB_XDP_PASS_ARP, "pass_arp")                     /* ARP not for a VIP */         \
  X(L4LB_XDP_PASS_OWN, "pass_own")                     /* to an OWN address */         \
  X(L4LB_XDP_PASS_ND, "pass_nd")                       /* ND not for a VIP */          \
  X(L4LB_XDP_PASS_OTHER, "pass_other")                 /* IP, none of the below */     \
  X(L4LB_XDP_REDIRECT_VIP, "redirect_vip")             /* to a VIP */                  \
  X(L4LB_XDP_REDIRECT_ARP_VIP, "redirect_arp_vip")     /* ARP for a VIP */             \
  X(L4LB_XDP_REDIRECT_ND_VIP, "redirect_nd_vip")       /* NS for a VIP */              \
  X(L4LB_XDP_REDIRECT_NAT_REPLY, "redirect_nat_reply") /* from a NAT backend */        \
  X(L4LB_XDP_REDIRECT_NO_XSK, "redirect_no_xsk")       /* redirect fell back to pass */

#define L4LB_XDP_STAT_ENUM(id, name) id,
enum l4lb_xdp_stat { L4LB_XDP_STATS(L4LB_XDP_STAT_ENUM) L4LB_XDP_STAT_COUNT };
#undef L4LB_XDP_STAT_ENUM

#endif /* L4LB_DATAPLANE_XDP_L4LB_XDP_H */
