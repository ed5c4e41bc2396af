"""The admin page in a real browser (issue 14, item 4): headless Chromium against a
running 3+2 cluster with one server held on an old version and one drained. The
test reads the rendered DOM over the DevTools protocol, clicks drain and enable,
and saves a screenshot."""

import json
import os
import shutil
import tempfile
import unittest
import urllib.request

from pymemcache.client.base import Client

import deploy_support as ds
from sidecar_cluster import Cluster, wait_for

try:
    import browser
except ImportError as error:  # python3-websocket missing
    browser = None
    BROWSER_MISSING = f"python3-websocket is not installed ({error})"
else:
    BROWSER_MISSING = None if browser.CHROMIUM else "Debian's chromium is not installed"

WEBAPP = "shop"
# Fails the activation of version 2 on a server started with HOLD_BACK set: that
# server keeps version 1 live, reports the failure, and shows red on the page.
HOLD_BACK_ACTIVATION = ('if [ -n "$HOLD_BACK" ] && [ -e v2 ]; then '
                        'echo "held back on purpose" >&2; exit 1; fi')
SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def output_dir():
    path = os.environ.get("CLUSTER_BALANCE_TEST_OUTPUT") or tempfile.gettempdir()
    os.makedirs(path, exist_ok=True)
    return path


@unittest.skipIf(BROWSER_MISSING, BROWSER_MISSING)
class AdminPageTest(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(5)
        self.addCleanup(self.cluster.close)
        with open(self.cluster.config_path, "a") as f:
            f.write(f"[deploy.activate]\n{WEBAPP} = {json.dumps(HOLD_BACK_ACTIVATION)}\n")
        c = self.cluster
        self.spoke, self.held, self.drained = c.servers[3], c.servers[4], c.servers[1]
        for server in c.servers:
            server.start(env={"HOLD_BACK": "1"} if server is self.held else None)
        for server in c.servers:
            server.wait_ready()
        c.wait_states({s.id: "up" for s in c.servers})

    def deploy_version(self, number):
        tree = tempfile.mkdtemp(dir=self.cluster.dir)
        ds.write_tree(tree, {"index.html": ("file", b"version %d\n" % number),
                             f"v{number}": ("file", b"")})
        return ds.deploy(self.spoke, tree, WEBAPP, "--version", str(number))

    def deployed_everywhere(self, observer):
        status = observer.status()
        current = {d["name"]: d["commit"] for d in status["deployments"]}
        return current, {s["id"]: s["deployed"] for s in status["servers"]}

    def test_the_page_shows_versions_and_drains_and_enables(self):
        c = self.cluster
        v1 = self.deploy_version(1)
        self.assertTrue(v1.done, v1)
        v2 = self.deploy_version(2)  # every server but the held one runs it
        name = ds.deployment_name(WEBAPP)

        def settled():
            current, deployed = self.deployed_everywhere(self.spoke)
            if current.get(name) != v2.commit:
                return False
            held = deployed.get(self.held.id, {}).get(name, {})
            return (held.get("commit") == v1.commit and "held back" in held.get("error", "") and
                    all(deployed.get(s.id, {}).get(name, {}).get("commit") == v2.commit
                        for s in c.servers if s is not self.held))
        wait_for(settled, 30, "v2 everywhere but on the held-back server, which reports why")
        self.spoke.post(f"/servers/{self.drained.id}/drain")
        c.wait_states({self.drained.id: "draining"})

        with urllib.request.urlopen(f"http://127.0.0.1:{self.spoke.admin_port}/") as response:
            csp = response.headers["Content-Security-Policy"]
        self.assertIn("default-src 'none'", csp)
        self.assertIn("script-src 'self'", csp)

        page = browser.Browser()
        self.addCleanup(page.close)
        page.navigate(f"http://127.0.0.1:{self.spoke.admin_port}/")
        page.wait_until("document.body && document.body.dataset.ready === '1' && "
                        "document.querySelectorAll('#servers tbody tr[data-server]').length === 5",
                        20, "the page to render five servers")

        rows = page.evaluate("""Array.from(document.querySelectorAll('#servers tr[data-server]'))
            .map(row => {
              const cell = f => row.querySelector(`td[data-field="${f}"]`);
              const version = row.querySelector('td[data-webapp]');
              return {id: row.dataset.server, role: cell('role').textContent,
                      state: cell('state').textContent, stateClass: cell('state').className,
                      rtt: cell('rtt').textContent, sessions: cell('sessions').textContent,
                      incarnation: cell('incarnation').textContent,
                      version: version && version.textContent,
                      versionClass: version && version.className,
                      webapp: version && version.dataset.webapp,
                      colour: version && getComputedStyle(version).color};
            })""")
        by_id = {row["id"]: row for row in rows}
        self.assertEqual(set(by_id), {s.id for s in c.servers})
        for server in c.servers:
            row = by_id[server.id]
            with self.subTest(server=server.id):
                self.assertEqual(row["role"], "triad" if server.index < 3 else "spoke")
                self.assertEqual(row["webapp"], name)
                self.assertEqual(row["incarnation"],
                                 str(next(s["incarnation"] for s in self.spoke.status()["servers"]
                                          if s["id"] == server.id)))
                if server is self.held:
                    self.assertIn("version-bad", row["versionClass"])
                    self.assertIn("✗", row["version"])
                else:
                    self.assertIn("version-ok", row["versionClass"])
                    self.assertNotIn("✗", row["version"])
                if server is self.drained:
                    self.assertIn("state-draining", row["stateClass"])
                    self.assertTrue(row["state"].startswith("draining"), row)
                else:
                    self.assertIn("state-up", row["stateClass"])
                if server.index < 3:  # the spoke's connections: a measured round trip
                    self.assertRegex(row["rtt"], r"^\d+\.\d\d ms$")
                self.assertRegex(row["sessions"], r"^\d+$")
        buttons = page.evaluate(f"""Object.fromEntries(Array.from(document.querySelectorAll(
            'tr[data-server="{self.drained.id}"] button[data-action]'))
            .map(b => [b.dataset.action, b.disabled]))""")
        self.assertEqual(buttons, {"drain": True, "enable": False})
        # Green and red are what the eye sees, not only class names.
        self.assertNotEqual(by_id[self.held.id]["colour"], by_id["s0"]["colour"])

        # Live sessions: as many as the store holds for each server's route character.
        mc = Client(("127.0.0.1", self.spoke.memcached_port), connect_timeout=5, timeout=5)
        self.addCleanup(mc.close)
        for server, count in ((c.servers[0], 30), (self.drained, 12), (self.spoke, 7)):
            route = next(s["route"] for s in self.spoke.status()["servers"] if s["id"] == server.id)
            for i in range(count):
                self.assertTrue(mc.set(f"session:{route}{i:03d}-page", b"cart", expire=600,
                                       noreply=False))
            page.wait_until(f"""document.querySelector('tr[data-server="{server.id}"] '
                            + 'td[data-field="sessions"]').textContent === '{count}'""",
                            10, f"the page to show {count} sessions of {server.id}")

        # Cancel changes nothing; yes drains; enable brings it back.
        target = c.servers[2]
        self.click(page, "drain", target.id, confirm=False)
        renders = int(page.evaluate("document.body.dataset.renders"))
        page.wait_until(f"Number(document.body.dataset.renders) > {renders + 1}", 10,
                        "two more refreshes")
        self.assertEqual(self.state_of(target), "up")
        self.click(page, "drain", target.id, confirm=True)
        c.wait_states({target.id: "draining"})
        page.wait_until(f"""document.querySelector('tr[data-server="{target.id}"] '
                        + 'td[data-field="state"]').classList.contains('state-draining')""",
                        10, "the page to show the drain")
        self.click(page, "enable", target.id, confirm=True)
        c.wait_states({target.id: "up"})
        page.wait_until(f"""document.querySelector('tr[data-server="{target.id}"] '
                        + 'td[data-field="state"]').classList.contains('state-up')""",
                        10, "the page to show it enabled")

        # The charts drew a line per server.
        page.wait_until("document.querySelectorAll('#chart-rtt polyline, #chart-rtt path').length >= 3",
                        10, "the round-trip chart to draw the triad's lines")
        self.assertGreaterEqual(page.evaluate("document.querySelectorAll('#legend li').length"), 5)

        self.save_screenshot(page)

        # A phone-width window: nothing but the table's own scroller is wider than it.
        page.set_viewport(375, 800, mobile=True)
        page.wait_until("window.innerWidth === 375", 10, "the phone-width viewport")
        widths = page.evaluate("""({page: document.documentElement.scrollWidth,
            wrap: document.querySelector('.table-wrap').clientWidth,
            chart: document.getElementById('chart-sessions').getBoundingClientRect().width})""")
        self.assertLessEqual(widths["page"], 375, widths)
        self.assertLessEqual(widths["wrap"], 375, widths)
        self.assertLessEqual(widths["chart"], 375, widths)
        self.assertEqual(page.problems(), [], "the page raised errors (a CSP violation is one)")

    def click(self, page, action, server_id, confirm):
        page.evaluate(f"""document.querySelector(
            'button[data-action="{action}"][data-server="{server_id}"]').click()""")
        page.wait_until("document.getElementById('confirm').open", 5, "the confirmation dialog")
        page.evaluate(f"document.getElementById('confirm-{'yes' if confirm else 'no'}').click()")
        page.wait_until("!document.getElementById('confirm').open", 5, "the dialog to close")

    def state_of(self, server):
        return next(s["state"] for s in self.spoke.status()["servers"] if s["id"] == server.id)

    def save_screenshot(self, page):
        page.set_viewport(1280, 900)
        page.wait_until("window.innerWidth === 1280", 10, "the desktop viewport")
        renders = int(page.evaluate("document.body.dataset.renders"))
        page.wait_until(f"Number(document.body.dataset.renders) > {renders}", 10, "a refresh")
        path = page.screenshot(os.path.join(output_dir(), "admin-page.png"))
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        print(f"screenshot: {path}")
        if os.environ.get("CLUSTER_BALANCE_UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(path, os.path.join(SOURCE_DIR, "doc", "admin-page.png"))


if __name__ == "__main__":
    unittest.main()
