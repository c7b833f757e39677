"""dist/grafana/l4lb.json queries only metrics the daemon exposes.

Every PromQL expression of the dashboard (each panel's targets, and the template variables'
label_values() queries) is reduced to the metric names it selects: strings, label matchers
{...}, range selectors [...], the label lists of by/without/on/ignoring/group_left/group_right,
function names and keywords are taken out; what remains and is an identifier is a metric
name. Each one must be present in a live scrape of l4lb: a daemon on net_pcap ports (the
harness of test_ctl.py, with [metrics] on a free local port) after 20 TCP SYNs to a DSR VIP
with two backends have been forwarded, so the per-backend and per-worker families have samples.
A name ending in _bucket, _sum or _count must be a sample of a histogram family; a name must
carry the labels the query groups it by (sum by (vip, backend) needs both on l4lb_packets_total).
"""

import json
import os
import re
import unittest

from prometheus_client.parser import text_string_to_metric_families

import l4lb_harness as h
from test_ctl import Daemon, scrape, syn

DASHBOARD = os.path.join(h.REPO_ROOT, "dist", "grafana", "l4lb.json")
NFLOWS = 20
BACKENDS = [("198.18.2.11", "02:00:00:00:01:11"), ("198.18.2.12", "02:00:00:00:01:12")]
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan",
            # aggregation operators: `sum by (x) (...)` puts the clause between name and parenthesis
            "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
            "bottomk", "topk", "quantile"}
# Labels Prometheus itself adds on scrape, and the histogram's bucket label.
SCRAPE_LABELS = {"instance", "job", "le"}


def expressions(dash):
    """(where, PromQL) for every panel target (rows' nested panels included) and every
    template variable query."""
    out = []

    def panels(ps):
        for p in ps:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((f"panel {p['id']} '{p['title']}' {t.get('refId', '')}", t["expr"]))
            panels(p.get("panels", []))

    panels(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") == "query" and q:
            m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_]\w*)\s*\)\s*", q)
            out.append((f"variable ${v['name']}", m.group(1) if m else q))
    return out


def _strip(expr):
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # string literals
    expr = re.sub(r"\{[^{}]*\}", " ", expr)                              # label matchers
    expr = re.sub(r"\[[^\[\]]*\]", " ", expr)                            # ranges, subqueries
    return expr


def metric_names(expr):
    """The metric names a PromQL expression selects."""
    e = _strip(expr)
    grouping = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
    e = grouping.sub(r"\1 ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.$])([A-Za-z_:][\w:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def grouping_labels(expr):
    """{metric: labels the expression groups or matches it by}: for `sum by (a, b) (f(m[..]))`
    the labels a, b are required of every metric inside that aggregation."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^{}]*\}", " ", e)
    e = re.sub(r"\[[^\[\]]*\]", " ", e)
    out = {}
    for m in re.finditer(r"\b(by|on)\s*\(([^()]*)\)", e):
        labels = {x.strip() for x in m.group(2).split(",") if x.strip()}
        # The operand(s) this clause applies to: by -> the parenthesised argument after it; on ->
        # both sides of the binary operator; conservatively, every metric of the expression.
        for name in metric_names(expr):
            out.setdefault(name, set()).update(labels)
    return out


def check(dash, families):
    """Problems (strings) of a dashboard against scraped families {family name: Metric}."""
    samples = {}  # sample name -> (family type, set of label names)
    for fam in families.values():
        for s in fam.samples:
            t, labels = samples.get(s.name, (fam.type, set()))
            samples[s.name] = (t, labels | set(s.labels))
    problems = []
    for where, expr in expressions(dash):
        names = metric_names(expr)
        if not names:
            problems.append(f"{where}: no metric name in {expr!r}")
        need = grouping_labels(expr)
        for n in sorted(names):
            if n not in samples:
                problems.append(f"{where}: {n} is not in the scrape")
                continue
            typ, labels = samples[n]
            if re.search(r"_(bucket|sum|count)$", n) and typ != "histogram":
                problems.append(f"{where}: {n} is not a histogram sample (family type {typ})")
            if n.endswith("_bucket") and "le" not in labels:
                problems.append(f"{where}: {n} has no le label")
            # on (instance, worker): every side of the match must have the labels it names.
            missing = need.get(n, set()) - labels - SCRAPE_LABELS
            if missing:
                problems.append(f"{where}: {n} has no label {', '.join(sorted(missing))}")
    return problems


class DashboardQueryTest(unittest.TestCase):
    def test_metric_name_extraction(self):
        self.assertEqual(metric_names('sum by (vip, backend) (rate(l4lb_packets_total{vip=~"$vip"}[$__rate_interval]))'),
                         {"l4lb_packets_total"})
        self.assertEqual(metric_names("l4lb_flow_table_entries / on (worker) group_left l4lb_flow_table_capacity"),
                         {"l4lb_flow_table_entries", "l4lb_flow_table_capacity"})
        self.assertEqual(metric_names("histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m]))) > 0 and up offset 5m"),
                         {"x_bucket", "up"})
        self.assertEqual(metric_names('8 * sum without (job) (rate(b_total{a="b{c}"}[1m:10s]))'), {"b_total"})
        self.assertEqual(metric_names("sum by (reason) (rate(l4lb_drops_total[1m])) > 0"), {"l4lb_drops_total"})

    def test_dashboard_shape(self):
        with open(DASHBOARD) as f:
            dash = json.load(f)
        titles = [p["title"] for p in dash["panels"] if p["type"] != "row"]
        self.assertEqual(len(titles), len(set(titles)), titles)
        ids = [p["id"] for p in dash["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        queried = set().union(*(metric_names(e) for _, e in expressions(dash)))
        # The panels the operators asked for, by the metric that carries each.
        for n in ("l4lb_packets_total", "l4lb_bytes_total", "l4lb_flows_total", "l4lb_flow_table_entries",
                  "l4lb_flow_table_capacity", "l4lb_drops_total", "l4lb_health_transitions_total",
                  "l4lb_backend_up", "l4lb_worker_busy_ratio", "l4lb_config_reloads_total"):
            self.assertIn(n, queried)
        for p in dash["panels"]:
            if p["type"] != "row":
                self.assertTrue(p.get("targets"), p["title"])
                self.assertEqual(p["datasource"], {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, p["title"])


class DashboardLiveTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon([syn(i) for i in range(NFLOWS)], backends=BACKENDS)
        try:
            cls.forwarded = len(h.wait_for_pcap(os.path.join(cls.d.tmp, "server.out.pcap"), NFLOWS))
            status, _, cls.body = scrape(cls.d.metrics_port)
            assert status == 200, status
            cls.families = {f.name: f for f in text_string_to_metric_families(cls.body)}
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.finish()

    def test_traffic_was_counted(self):
        self.assertEqual(self.forwarded, NFLOWS)
        ft = {tuple(sorted(s.labels.items())): s.value for s in self.families["l4lb_flow_table_entries"].samples}
        self.assertEqual(ft[(("family", "ipv4"), ("worker", "0"))], float(NFLOWS))
        up = {s.labels["backend"]: s.value for s in self.families["l4lb_backend_up"].samples}
        self.assertEqual(up, {f"{a}:0": 1.0 for a, _ in BACKENDS})

    def test_every_queried_metric_is_exposed(self):
        with open(DASHBOARD) as f:
            dash = json.load(f)
        exprs = expressions(dash)
        names = set().union(*(metric_names(e) for _, e in exprs))
        print(f"\n    {len(exprs)} queries, {len(names)} metric names: {' '.join(sorted(names))}")
        self.assertEqual(check(dash, self.families), [])

    def test_check_can_fail(self):
        with open(DASHBOARD) as f:
            dash = json.load(f)
        dash["panels"].append({"id": 999, "title": "typo", "type": "timeseries", "targets": [
            {"refId": "A", "expr": 'sum by (vip) (rate(l4lb_packet_total[5m]))'},
            {"refId": "B", "expr": 'l4lb_worker_busy_ratio_count'},
            {"refId": "C", "expr": 'sum by (reason) (l4lb_backend_up)'}]})
        self.assertEqual(check(dash, self.families), [
            "panel 999 'typo' A: l4lb_packet_total is not in the scrape",
            "panel 999 'typo' B: l4lb_worker_busy_ratio_count is not in the scrape",
            "panel 999 'typo' C: l4lb_backend_up has no label reason"])


if __name__ == "__main__":
    unittest.main()
