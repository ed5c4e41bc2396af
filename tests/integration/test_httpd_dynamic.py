"""Dynamic servers behind Debian's apache2 with mod_cluster_balance (issue 12): a
server that joins the cluster gets requests from httpd once it has a member, and
balancer-manager can add that member at runtime (ProxySet growth=), with no
restart of httpd.

Run by tests/CMakeLists.txt with Debian's python3; needs CLUSTER_SIDECAR,
CLUSTERCTL and CLUSTER_HTTPD_MODULE.
"""

import re
import unittest
import urllib.parse

from sidecar_cluster import wait_for
from web_cluster import ROUTE_CHARS, DemoCluster, Httpd, http_get, parse_answer


def with_growth(text):
    """The example's balancer, with room for members added at runtime."""
    return text.replace("    ProxySet lbmethod=cluster\n",
                        "    ProxySet lbmethod=cluster growth=4\n", 1)


class BalancerManager:
    """balancer-manager's form, as an operator's browser submits it."""

    def __init__(self, httpd):
        self.httpd = httpd

    def nonce(self):
        status, _, body = self.httpd.get("/balancer-manager")
        if status != 200:
            raise AssertionError(f"balancer-manager answered {status}: {body[:300]}")
        match = re.search(r"nonce=([0-9a-f-]+)", body)
        if not match:
            raise AssertionError(f"no nonce on the balancer-manager page: {body[:500]}")
        return match.group(1)

    def post(self, fields):
        fields = dict(fields, b="app", nonce=self.nonce())
        # The handler unescapes values twice: escape them twice.
        body = "&".join(f"{key}={urllib.parse.quote(urllib.parse.quote(value, safe=''), safe='')}"
                        for key, value in fields.items())
        origin = f"http://127.0.0.1:{self.httpd.port}"
        status, _, text = http_get(self.httpd.port, "/balancer-manager", method="POST", body=body,
                                   headers={"Referer": origin + "/balancer-manager",
                                            "Content-Type": "application/x-www-form-urlencoded"})
        if status != 200:
            raise AssertionError(f"balancer-manager POST answered {status}: {text[:300]}")

    def add_member(self, url, route):
        """Adds the member, gives it its route and enables it (balancer-manager adds
        members disabled)."""
        self.post({"b_wyes": "1", "b_nwrkr": url})
        self.post({"w": url, "w_wr": route, "w_status_D": "0"})


class DynamicMemberTest(unittest.TestCase):
    def setUp(self):
        self.cluster = DemoCluster()
        self.addCleanup(self.cluster.close)
        self.cluster.start_site()

    def answer(self, httpd, cookie=None):
        status, headers, body = httpd.get("/", cookie=cookie)
        self.assertEqual(status, 200, body)
        return headers.get("x-cluster-route-reason"), parse_answer(body)

    def test_joined_server_gets_requests_once_balancer_manager_adds_its_member(self):
        httpd = Httpd(self.cluster, self.cluster.server("app-e"), edit=with_growth).start()
        children = httpd.children()

        joined = self.cluster.add_dynamic("app-f")
        joined.start()
        joined.wait_ready()
        self.cluster.wait_states({"app-f": "up"}, observers=[self.cluster.server("app-e")])
        route = ROUTE_CHARS[joined.status()["server"]["index"]]
        self.cluster.start_backend(joined, route_char=route)

        # Without a member the joined server gets nothing from httpd: its sessions
        # go to one backup, the same on every request.
        cookie = f"JSESSIONID={route}dynamic-session-1"
        backups = set()
        for _ in range(10):
            reason, answer = self.answer(httpd, cookie)
            self.assertEqual(reason, "backup")
            backups.add(answer["server"])
        self.assertEqual(len(backups), 1, backups)
        self.assertNotIn("app-f", backups)

        BalancerManager(httpd).add_member(f"http://127.0.0.1:{joined.http_port}", route)

        # Every child sees the new member on its next request (mod_proxy_balancer
        # syncs its members from shared memory): the session goes to its server.
        def sticky_everywhere():
            answers = [self.answer(httpd, cookie) for _ in range(20)]
            return all(reason == "sticky" and answer["server"] == "app-f"
                       for reason, answer in answers)

        wait_for(sticky_everywhere, 20, "the session to reach app-f through its new member")
        self.assertEqual(httpd.children(), children, "no restart")


if __name__ == "__main__":
    unittest.main()
