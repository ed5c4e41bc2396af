"""The admin page's figures on /metrics, and the Grafana dashboard that charts them
(issue 14, item 5): the dashboard's JSON has the structure Grafana imports, and every
metric it queries is one a running cluster exports."""

import json
import os
import re
import tempfile
import unittest

import deploy_support as ds
from sidecar_cluster import Cluster, wait_for

DASHBOARD = os.path.join(os.path.dirname(__file__), "..", "..", "conf-examples", "grafana",
                         "cluster-balance-dashboard.json")
GRID_COLUMNS = 24  # Grafana's grid is 24 columns wide


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def queried_metrics(dashboard):
    names = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names.update(re.findall(r"\bcluster_[a-z_]+\b", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        names.update(re.findall(r"\bcluster_[a-z_]+\b", variable["definition"]))
    return names


class DashboardStructureTest(unittest.TestCase):
    def test_the_dashboard_is_one_grafana_imports(self):
        d = load_dashboard()
        for key, kind in (("title", str), ("uid", str), ("schemaVersion", int), ("panels", list),
                          ("templating", dict), ("time", dict), ("__inputs", list)):
            self.assertIsInstance(d.get(key), kind, key)
        self.assertLessEqual(len(d["uid"]), 40)  # Grafana's limit on uids
        inputs = {i["name"] for i in d["__inputs"] if i["type"] == "datasource"}
        panel_types = {r["id"] for r in d["__requires"] if r["type"] == "panel"}
        variables = {v["name"] for v in d["templating"]["list"]}
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")
        for panel in d["panels"]:
            where = f"panel {panel['id']} ({panel.get('title')})"
            self.assertIn(panel["type"], panel_types, where)
            self.assertTrue(panel["title"], where)
            grid = panel["gridPos"]
            for key in ("h", "w", "x", "y"):
                self.assertIsInstance(grid[key], int, where)
            self.assertGreaterEqual(grid["x"], 0, where)
            self.assertLessEqual(grid["x"] + grid["w"], GRID_COLUMNS, where)
            self.assertEqual(panel["datasource"]["uid"][2:-1], "DS_PROMETHEUS", where)
            self.assertIn(panel["datasource"]["uid"][2:-1], inputs, where)
            ref_ids = [t["refId"] for t in panel["targets"]]
            self.assertTrue(ref_ids, where)
            self.assertEqual(len(ref_ids), len(set(ref_ids)), where)
            for target in panel["targets"]:
                expr = target["expr"]
                for opening, closing in ("()", "{}", "[]"):
                    self.assertEqual(expr.count(opening), expr.count(closing), f"{where}: {expr}")
                for variable in re.findall(r"\$(\w+)", expr):
                    self.assertIn(variable, variables, f"{where}: {expr}")
        # No two panels overlap on the grid.
        cells = set()
        for panel in d["panels"]:
            g = panel["gridPos"]
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                    for y in range(g["y"], g["y"] + g["h"])}
            self.assertFalse(cells & mine, f"panel {panel['id']} overlaps another")
            cells |= mine


class MetricsTest(unittest.TestCase):
    def test_every_figure_of_the_page_and_the_dashboard_is_exported(self):
        cluster = Cluster(4)
        self.addCleanup(cluster.close)
        cluster.start_all()
        cluster.wait_states({s.id: "up" for s in cluster.servers})
        spoke = cluster.servers[3]
        with tempfile.TemporaryDirectory() as tree:
            ds.write_tree(tree, ds.sample_tree())
            result = ds.deploy(spoke, tree, "shop")
            self.assertTrue(result.done, result)

        def exported():
            text = spoke.metrics()
            return {m for m in re.findall(r"^# TYPE (\S+)", text, re.M)}, text

        wanted = queried_metrics(load_dashboard())
        wait_for(lambda: wanted <= exported()[0] and
                 'cluster_server_deployed_current{server="s0"' in exported()[1], 15,
                 f"/metrics to export {sorted(wanted)}")
        families, text = exported()
        # Every per-server figure is charted or tabled.
        self.assertEqual({f for f in families if f.startswith("cluster_server_")},
                         {f for f in wanted if f.startswith("cluster_server_")})
        for sid in ("s0", "s1", "s2"):  # the spoke's connections: round trips known
            value = re.search(rf'^cluster_server_heartbeat_rtt_seconds{{server="{sid}"}} (\S+)$',
                              text, re.M)
            self.assertIsNotNone(value, sid)
            self.assertTrue(0 < float(value.group(1)) < 1, value.group(0))
        self.assertIn('cluster_server_state{server="s3",state="up"} 1', text)
        self.assertRegex(text, r'cluster_server_deployed_current\{server="s3",webapp="[^"]*shop"\} 1')
        for line in text.splitlines():  # HELP for every family
            if line.startswith("# TYPE "):
                self.assertIn(f"# HELP {line.split()[2]} ", text)


if __name__ == "__main__":
    unittest.main()
