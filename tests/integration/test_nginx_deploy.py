"""A rollout through Debian's nginx (issue 13): with `current_version_only=on`,
new sessions go only to the servers that run the newest deployed version, while
sessions on a server still on the old one stay there. Real sidecars deploy a
webapp (clusterctl deploy); one server's activation command fails on purpose,
so it keeps the previous version live, as a server in the middle of a rollout.
Run by tests/CMakeLists.txt with Debian's python3; needs CLUSTER_SIDECAR,
CLUSTERCTL and CLUSTER_NGINX_MODULE.
"""
import json
import os
import unittest

from sidecar_cluster import read_view, run_clusterctl, wait_for
from test_nginx_routing import Client, new_sessions
from web_cluster import ROUTE_CHARS, DemoCluster, Nginx

DEPLOYMENT = "production/webapp/default/shop"


class HoldableCluster(DemoCluster):
    """The demo cluster whose webapp "shop" activates with a command that fails on
    a server whose deploy dir holds a file "hold": that server stays on the version
    it runs."""

    def write_config(self, name, cluster_name="itest", order=None, key=None):
        path = super().write_config(name, cluster_name, order, key)
        if order is None and key is None:
            with open(path, "a") as f:
                # Activation runs in <deploy_root>/shop/versions/<commit>.
                f.write('\n[deploy.activate]\nshop = "test ! -e ../../hold"\n')
        return path


def deploy(admin_port, tree, timeout="30s"):
    """clusterctl deploy --json: (exit code, the "stored" event)."""
    result = run_clusterctl("--admin", f"127.0.0.1:{admin_port}", "deploy", tree,
                            "--webapp", "shop", "--json", "--timeout", timeout)
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    stored = next((e for e in events if e.get("event") == "stored"), None)
    if stored is None:
        raise AssertionError(f"deploy failed: {result.returncode} {result.stdout} {result.stderr}")
    return result.returncode, stored


class CurrentVersionOnlyTest(unittest.TestCase):
    def setUp(self):
        self.cluster = HoldableCluster()
        self.addCleanup(self.cluster.close)
        self.cluster.start_site()
        self.tree = os.path.join(self.cluster.dir, "shop")
        os.makedirs(self.tree)

    def write_version(self, text):
        with open(os.path.join(self.tree, "index.html"), "w") as f:
            f.write(text)

    def test_new_sessions_go_to_the_newest_version_and_old_ones_stay(self):
        front = self.cluster.server("app-e")
        held = self.cluster.server("app-c")
        self.write_version("v1\n")
        code, first = deploy(front.admin_port, self.tree)
        self.assertEqual(code, 0, "every server runs v1")

        with open(os.path.join(held.data_dir, "deploy", "shop", "hold"), "w"):
            pass
        self.write_version("v2\n")
        code, second = deploy(front.admin_port, self.tree, timeout="10s")
        self.assertNotEqual(code, 0, "app-c's activation fails: not every server runs v2")
        self.assertNotEqual(first["commit"], second["commit"])
        current = [s.index for s in self.cluster.servers if s is not held]

        def rollout_in_view():
            deployment = read_view(front.view_file)["deployments"].get(DEPLOYMENT)
            return (deployment and deployment["commit"] == second["commit"] and
                    sorted(deployment["current"]) == sorted(current) and
                    deployment["server_commits"].get(held.index) == first["commit"])

        wait_for(rollout_in_view, 20, "the view to show the rollout: app-c still on v1")
        with open(os.path.join(held.data_dir, "deploy", "shop", "current", "index.html")) as f:
            self.assertEqual(f.read(), "v1\n", "app-c keeps v1 live")

        def only_current(text):
            return text.replace("mode=route cookie=JSESSIONID;",
                                "mode=route cookie=JSESSIONID current_version_only=on webapp=shop;")

        rollout = Nginx(self.cluster, front, edit=only_current).start()
        servers = {server for _, server in new_sessions(rollout.port, 300)}
        self.assertNotIn(held.id, servers, "no new session on the server still on v1")
        self.assertEqual(servers, {s.id for s in self.cluster.servers} - {held.id})

        # A session that lives on app-c stays there.
        client = Client(rollout.port)
        self.addCleanup(client.close)
        session = ROUTE_CHARS[held.index] + "rollout-session"
        for _ in range(3):
            status, headers, answer, body = client.get("/", cookie=f"JSESSIONID={session}")
            self.assertEqual(status, 200, body)
            self.assertEqual(answer["server"], held.id)
            self.assertEqual(headers.get("x-cluster-route-reason"), "sticky")

        # Without the option, new sessions reach app-c as before.
        plain = Nginx(self.cluster, front).start()
        plain_client = Client(plain.port)
        self.addCleanup(plain_client.close)

        def new_session_reaches_held():
            status, _, answer, body = plain_client.get("/static")
            self.assertEqual(status, 200, body)
            return answer["server"] == held.id

        wait_for(new_session_reaches_held, 30, "a new session to reach app-c without the option")

        # The rollout ends: app-c runs v2 after the next deploy, and takes new sessions.
        os.remove(os.path.join(held.data_dir, "deploy", "shop", "hold"))
        self.write_version("v3\n")
        code, third = deploy(front.admin_port, self.tree)
        self.assertEqual(code, 0, "every server runs v3")

        def new_session_reaches_held_again():
            status, _, answer, body = client.get("/static")
            self.assertEqual(status, 200, body)
            return answer["server"] == held.id

        wait_for(new_session_reaches_held_again, 30, "new sessions to reach app-c on v3")


if __name__ == "__main__":
    unittest.main()
