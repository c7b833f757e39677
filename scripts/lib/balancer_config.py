"""The l4lb.toml of a lab balancer: one dataclass of knobs, one renderer, for every lab.

A caller says what it wants (`BalancerConfig(health=..., udp=False, weights=(1, 0, 1))`) and
renders it for a lab and one of its balancers (`cfg.toml(lab, i)`). The lab supplies what is
its own: the addresses (ports, VIPs, backends), and the defaults of the knobs left at None
(`lab.config_defaults()`). The labs: scripts/lib/lab.py (nat, fullnat, dsr: one balancer) and
scripts/lib/ecmp_lab.py (N balancers behind an ECMP router).

What a lab provides (duck-typed):
  config_defaults()       -> dict: a value for every field below that defaults to None
  config_comment(i)       -> the first line of the file (a TOML comment)
  config_ports(i)         -> [[ports]] tables, each a dict in key order
  config_file_prefix(i)   -> [eal] file_prefix when the config does not set one
  control_socket(i)       -> [control] socket, or None for no [control]
  balancer_name(i)        -> [cluster] name
  sync_section(i)         -> the [sync] keys (dict), or None when the balancer has no peer
  bgp_defaults(i)         -> the [bgp] keys that `bgp` updates
  config_vips(cfg, i)     -> [Vip]: the lab's services with `cfg`'s backends, weights, checks
"""
from dataclasses import dataclass, fields, replace
from typing import Optional, Sequence, Union


def toml_value(v):
    """A Python value as a TOML value (str, bool, int, float, list)."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return str(v)


def toml_keys(keys):
    """`key = value` lines of a dict, in its order, each ending in a newline."""
    return "".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items())


@dataclass
class Vip:
    """One [[vips]] table. `backends`: (address, weight) pairs; weight None writes no weight.
    Keys left None are not written. `backend_port`: the port every backend gets (nat, fullnat).
    The snat_* keys and `proxy_protocol` are full NAT's (forwarding = "fullnat").
    `compact`: its [vips.health_check] and [[vips.backends]] follow without blank lines."""
    address: str
    port: int
    protocol: str
    forwarding: str
    health: dict
    backends: list
    name: Optional[str] = None
    scheduler: Optional[str] = None
    maglev_table_size: Optional[int] = 65537
    on_all_down: Optional[str] = None
    compact: bool = False
    backend_port: Optional[int] = None
    snat_addresses: Optional[Sequence[str]] = None
    snat_ports: Optional[str] = None
    snat_quiet_time: Optional[int] = None
    proxy_protocol: Optional[str] = None

    def chunks(self):
        head = {"name": self.name, "address": self.address, "port": self.port, "protocol": self.protocol,
                "scheduler": self.scheduler, "forwarding": self.forwarding,
                "maglev_table_size": self.maglev_table_size, "on_all_down": self.on_all_down,
                "snat_addresses": self.snat_addresses, "snat_ports": self.snat_ports,
                "snat_quiet_time": self.snat_quiet_time, "proxy_protocol": self.proxy_protocol}
        parts = ["[[vips]]\n" + toml_keys({k: v for k, v in head.items() if v is not None}),
                 "[vips.health_check]\n" + toml_keys(self.health)]
        for address, weight in self.backends:
            keys = {"address": address, "port": self.backend_port, "weight": weight}
            parts.append("[[vips.backends]]\n" + toml_keys({k: v for k, v in keys.items() if v is not None}))
        return ["".join(parts)] if self.compact else parts


@dataclass
class BalancerConfig:
    """What a test, demo or bench wants of a lab balancer. None: the lab's default."""
    # The VIPs' backends: the lab's first `backends` servers, then `extra_backends` (an int: one
    # of the lab's servers by index; a str: an address with no server, weight 1, in the VIPs of
    # its family). `weights`: by server index (a sequence from index 0, or a dict); missing: 1.
    backends: Optional[int] = None
    extra_backends: Sequence[Union[int, str]] = ()
    weights: Optional[Union[Sequence[int], dict]] = None
    # The VIPs: their TCP health check ([vips.health_check] keys), whether the UDP service is
    # there too, and per-VIP keys.
    health: Optional[dict] = None
    udp: bool = True
    scheduler: Optional[str] = None
    forwarding: Optional[str] = None
    on_all_down: Optional[str] = None
    # [eal] and [flow_table].
    hugepages: bool = False
    memory_mb: Optional[int] = None
    file_prefix: Optional[str] = None
    idle_backoff: bool = False
    flow_capacity: int = 65536
    # The cluster: [cluster] (named after the balancer), [sync] with the lab's other balancers
    # as peers, [bgp] (a dict of keys over the lab's; None: no [bgp]).
    cluster: bool = False
    sync: Optional[bool] = None
    bgp: Optional[dict] = None
    # More TOML: `extra_sections` before the [[vips]], `extra_vips` after them. None writes
    # nothing; a string (even empty) is one more block, after a blank line.
    extra_sections: Optional[str] = None
    extra_vips: Optional[str] = None

    def resolved(self, lab):
        """This config with every None knob that the lab has a default for filled in."""
        defaults = lab.config_defaults()
        return replace(self, **{f.name: defaults[f.name] for f in fields(self)
                                if getattr(self, f.name) is None and f.name in defaults})

    def weight(self, index):
        w = self.weights or ()
        return w.get(index, 1) if isinstance(w, dict) else (w[index] if index < len(w) else 1)

    def backend_list(self, lab, addresses, v6):
        """(address, weight) of the VIP's backends among the lab's `addresses` (one family)."""
        pool = min(self.backends, len(addresses))
        out = [(addresses[b], self.weight(b)) for b in range(pool)]
        for b in self.extra_backends:
            if isinstance(b, str):
                if (":" in b) == v6:
                    out.append((b, 1))
            elif b not in range(pool):
                out.append((addresses[b], self.weight(b)))
        return out

    def toml(self, lab, i=0):
        """The config file of the lab's balancer i (0-based)."""
        c = self.resolved(lab)
        eal = {"main_core": 0, "worker_cores": [1], "hugepages": c.hugepages}
        if c.hugepages:
            eal["in_memory"] = True
        eal.update({"memory_mb": c.memory_mb, "file_prefix": c.file_prefix or lab.config_file_prefix(i)})
        if c.idle_backoff:
            eal["idle_backoff"] = True
        chunks = [f"{lab.config_comment(i)}\n[eal]\n{toml_keys(eal)}",
                  "[flow_table]\n" + toml_keys({"capacity": c.flow_capacity, "tcp_established_timeout": 60})]
        chunks += ["[[ports]]\n" + toml_keys(p) for p in lab.config_ports(i)]
        if lab.control_socket(i):
            chunks.append("[control]\n" + toml_keys({"socket": lab.control_socket(i)}))
        if c.cluster:
            chunks.append("[cluster]\n" + toml_keys({"name": lab.balancer_name(i)}))
        sync = lab.sync_section(i) if c.sync else None
        if sync:
            chunks.append("[sync]\n" + toml_keys(sync))
        if c.bgp is not None:
            chunks.append("[bgp]\n" + toml_keys(dict(lab.bgp_defaults(i), **c.bgp)))
        if c.extra_sections is not None:
            chunks.append(c.extra_sections)
        for vip in lab.config_vips(c, i):
            chunks += vip.chunks()
        if c.extra_vips is not None:
            chunks.append(c.extra_vips)
        return "\n".join(chunks)
