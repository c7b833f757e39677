/* l4lb's XDP program for AF_XDP ports (loaded by DPDK's net_af_xdp PMD through its xdp_prog=
 * devarg): VIP traffic, ARP and ND for VIPs, and NAT replies from backends go to the port's
 * AF_XDP socket (DPDK); everything else -- ARP and ND for the host, SSH, health-check replies,
 * anything short or malformed -- goes to the kernel unchanged. The control plane keeps
 * l4lb_addrs current (src/control/xdp_map.h); every verdict is counted in l4lb_xdp_stats.
 *
 * Build: clang -O2 -g -target bpf (the BTF from -g is what libbpf reads the map definitions
 * from). The PMD loads the first program of the object and needs a map named xsks_map. */
#include <linux/bpf.h>
#include <linux/if_ether.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "l4lb_xdp.h"

/* The kernel only checks this string for GPL-only helpers, and none is used here. */
char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, L4LB_XDP_MAX_QUEUES);
  __type(key, __u32);
  __type(value, __u32);
} xsks_map SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, L4LB_XDP_MAX_ADDRS);
  __type(key, struct l4lb_xdp_addr_key);
  __type(value, __u32);
} l4lb_addrs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, L4LB_XDP_STAT_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} l4lb_xdp_stats SEC(".maps");

#define ETH_P_8021Q_BE bpf_htons(0x8100)
#define ETH_P_8021AD_BE bpf_htons(0x88a8)
#define ETH_P_ARP_BE bpf_htons(0x0806)
#define ETH_P_IP_BE bpf_htons(0x0800)
#define ETH_P_IPV6_BE bpf_htons(0x86dd)

#define IPPROTO_ICMPV6_NUM 58
#define ICMPV6_ROUTER_SOLICIT 133
#define ICMPV6_REDIRECT 137
#define ICMPV6_NEIGHBOUR_SOLICIT 135

/* ARP for Ethernet / IPv4 (RFC 826): 8-byte header, then sender MAC, sender IP, target MAC,
 * target IP. */
#define ARP_LEN 28
#define ARP_TPA_OFF 24

static __always_inline void count(__u32 reason) {
  __u64 *c = bpf_map_lookup_elem(&l4lb_xdp_stats, &reason);
  if (c) *c += 1; /* per-CPU slot: no other writer */
}

static __always_inline int pass(__u32 reason) {
  count(reason);
  return XDP_PASS;
}

/* Redirect to this queue's AF_XDP socket. The PMD inserts each socket at its queue id, so the
 * key is the queue the packet arrived on; without a socket there the helper returns XDP_PASS. */
static __always_inline int redirect(struct xdp_md *ctx, __u32 reason) {
  count(reason);
  long action = bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
  if (action != XDP_REDIRECT) count(L4LB_XDP_REDIRECT_NO_XSK);
  return (int)action;
}

/* Flags of an address (0 when it is not in the map). `addr` must point at `len` (4 or 16)
 * readable bytes. */
static __always_inline __u32 addrFlags(__u32 family, const void *addr, int len) {
  struct l4lb_xdp_addr_key key;
  __builtin_memset(&key, 0, sizeof(key));
  key.family = family;
  if (len == 4)
    __builtin_memcpy(key.addr, addr, 4);
  else
    __builtin_memcpy(key.addr, addr, 16);
  __u32 *flags = bpf_map_lookup_elem(&l4lb_addrs, &key);
  return flags ? *flags : 0;
}

static __always_inline int onArp(struct xdp_md *ctx, __u8 *arp, void *end) {
  if ((void *)(arp + ARP_LEN) > end) return pass(L4LB_XDP_PASS_MALFORMED);
  /* htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4: anything else is not an ARP we parse. */
  if (arp[0] != 0 || arp[1] != 1 || arp[2] != 0x08 || arp[3] != 0x00 || arp[4] != 6 ||
      arp[5] != 4)
    return pass(L4LB_XDP_PASS_MALFORMED);
  if (addrFlags(4, arp + ARP_TPA_OFF, 4) & L4LB_XDP_VIP)
    return redirect(ctx, L4LB_XDP_REDIRECT_ARP_VIP);
  return pass(L4LB_XDP_PASS_ARP);
}

static __always_inline int onIpv4(struct xdp_md *ctx, __u8 *ip, void *end) {
  if ((void *)(ip + 20) > end) return pass(L4LB_XDP_PASS_MALFORMED);
  __u8 ihl = ip[0] & 0x0f;
  if ((ip[0] >> 4) != 4 || ihl < 5 || (void *)(ip + ihl * 4) > end)
    return pass(L4LB_XDP_PASS_MALFORMED);
  __u32 dst = addrFlags(4, ip + 16, 4);
  if (dst & L4LB_XDP_OWN) return pass(L4LB_XDP_PASS_OWN);
  if (dst & L4LB_XDP_VIP) return redirect(ctx, L4LB_XDP_REDIRECT_VIP);
  if (addrFlags(4, ip + 12, 4) & L4LB_XDP_NAT_BACKEND)
    return redirect(ctx, L4LB_XDP_REDIRECT_NAT_REPLY);
  return pass(L4LB_XDP_PASS_OTHER);
}

static __always_inline int onIpv6(struct xdp_md *ctx, __u8 *ip, void *end) {
  if ((void *)(ip + 40) > end || (ip[0] >> 4) != 6) return pass(L4LB_XDP_PASS_MALFORMED);
  __u32 dst = addrFlags(6, ip + 24, 16);
  if (dst & L4LB_XDP_OWN) return pass(L4LB_XDP_PASS_OWN);
  if (dst & L4LB_XDP_VIP) return redirect(ctx, L4LB_XDP_REDIRECT_VIP);
  /* Neighbour discovery (RFC 4861) comes without extension headers in practice. A neighbour
   * solicitation goes to the target's solicited-node multicast address (§7.2.2), so the target
   * field says whether it is for a VIP. Other ND is the host's: a NAT backend resolving its
   * gateway must reach the kernel, not the NAT reply path below. */
  if (ip[6] == IPPROTO_ICMPV6_NUM) {
    __u8 *icmp = ip + 40;
    if ((void *)(icmp + 1) > end) return pass(L4LB_XDP_PASS_MALFORMED);
    __u8 type = icmp[0];
    if (type == ICMPV6_NEIGHBOUR_SOLICIT) {
      /* type, code, checksum, reserved (8 bytes), then the 16-byte target address */
      if ((void *)(icmp + 24) > end) return pass(L4LB_XDP_PASS_MALFORMED);
      if (addrFlags(6, icmp + 8, 16) & L4LB_XDP_VIP)
        return redirect(ctx, L4LB_XDP_REDIRECT_ND_VIP);
    }
    if (type >= ICMPV6_ROUTER_SOLICIT && type <= ICMPV6_REDIRECT) return pass(L4LB_XDP_PASS_ND);
  }
  if (addrFlags(6, ip + 8, 16) & L4LB_XDP_NAT_BACKEND)
    return redirect(ctx, L4LB_XDP_REDIRECT_NAT_REPLY);
  return pass(L4LB_XDP_PASS_OTHER);
}

SEC("xdp")
int l4lb_xdp(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end) return pass(L4LB_XDP_PASS_MALFORMED);
  __u16 type = eth->h_proto;
  __u8 *l3 = (__u8 *)(eth + 1);
  /* One 802.1Q / 802.1ad tag: TCI, then the inner ethertype. */
  if (type == ETH_P_8021Q_BE || type == ETH_P_8021AD_BE) {
    if ((void *)(l3 + 4) > end) return pass(L4LB_XDP_PASS_MALFORMED);
    type = *(__u16 *)(l3 + 2);
    l3 += 4;
  }
  if (type == ETH_P_IP_BE) return onIpv4(ctx, l3, end);
  if (type == ETH_P_IPV6_BE) return onIpv6(ctx, l3, end);
  if (type == ETH_P_ARP_BE) return onArp(ctx, l3, end);
  return pass(L4LB_XDP_PASS_NOT_IP);
}
