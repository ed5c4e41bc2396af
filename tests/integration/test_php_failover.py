"""Owner loss is not the application's problem (issue 10, item 5): a PHP site
whose sessions live in the cluster store, behind Debian's nginx with the module
in insert mode, while one server after another is killed with kill -9 (its
sidecar and its PHP) and started again.

Each server runs PHP's built-in web server with php-memcached's session handler
on its own sidecar (text protocol, session locking on); 40 clients each keep a
session and send requests one after another. The test fails on any answer that
is not 200 (a store error surfaces as 500: tests/integration/php/) and on a
session whose count goes back or skips more than a request nginx may have
retried. It prints what it measured.

Run by tests/CMakeLists.txt with Debian's python3; needs CLUSTER_SIDECAR,
CLUSTERCTL, CLUSTER_NGINX_MODULE, php-cli and php-memcached.
"""

import http.client
import os
import re
import sys
import threading
import time
import unittest

from sidecar_cluster import wait_for
from web_cluster import HERE, DemoCluster, Nginx

APP = os.path.join(HERE, "php", "session-counter.php")
SESSIONS = 40
# Seconds between kills: ~15 s (the pace); each server is started again at
# once, as a supervisor would.
KILL_INTERVAL = float(os.environ.get("CLUSTER_PHP_KILL_INTERVAL", "15"))


def php_settings(server):
    return [
        "-d", "session.save_handler=memcached",
        "-d", f"session.save_path=127.0.0.1:{server.memcached_port}",
        "-d", "memcached.sess_binary_protocol=0",  # the sidecar speaks text only
        "-d", "memcached.sess_prefix=session:",     # the cluster's session cache
        "-d", "memcached.sess_locking=1",
        # A server killed mid-request leaves its session's lock behind: it expires
        # after 2 s, and a request waits up to 10 s for a lock.
        "-d", "memcached.sess_lock_expire=2",
        "-d", "memcached.sess_lock_wait_min=100",
        "-d", "memcached.sess_lock_wait_max=100",
        "-d", "memcached.sess_lock_retries=100",
        "-d", "session.use_strict_mode=0",
        "-d", "display_errors=stderr",
    ]


class PhpSite(DemoCluster):
    """The demo cluster with a PHP backend per server instead of the demo's."""

    def backend_command(self, server, route_char):
        return (["php", *php_settings(server), "-S", f"127.0.0.1:{server.http_port}", APP],
                {"PHP_CLI_SERVER_WORKERS": "6", "CLUSTER_SERVER_ID": server.id})


class Visitor(threading.Thread):
    """One browser: a session, kept by its cookies, one request after another."""

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port = port
        self.stop = stop
        self.cookies = {}
        self.counts = []     # n of every 200 answer, in order
        self.failures = []   # (time, status or exception, body) of every other answer
        self.requests = 0
        self.slowest = 0.0

    def run(self):
        connection = None
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                headers = {}
                if self.cookies:
                    headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
                connection.request("GET", "/", headers=headers)
                response = connection.getresponse()
                body = response.read().decode(errors="replace")
                for name, value in response.getheaders():
                    if name.lower() == "set-cookie":
                        cookie = value.split(";", 1)[0]
                        key, _, val = cookie.partition("=")
                        self.cookies[key.strip()] = val.strip()
                self.requests += 1
                match = re.search(r"\bn=(\d+)", body)
                if response.status == 200 and match:
                    self.counts.append(int(match.group(1)))
                else:
                    self.failures.append((time.time(), response.status, body.strip()[:200]))
            except (http.client.HTTPException, OSError) as error:
                self.requests += 1
                self.failures.append((time.time(), repr(error), ""))
                if connection is not None:
                    connection.close()
                connection = None
            self.slowest = max(self.slowest, time.monotonic() - started)
        if connection is not None:
            connection.close()


class PhpFailoverTest(unittest.TestCase):
    def test_php_sessions_through_kill_9_of_one_server_after_another(self):
        site = PhpSite()
        self.addCleanup(site.close)
        site.start_site()
        # nginx on app-e's machine follows app-e's view; the servers killed are the
        # triad (whose death moves the ownership of a third of the keys) and the
        # other spoke.
        view_server = site.server("app-e")
        nginx = Nginx(site, view_server, mode="insert").start()
        stop = threading.Event()
        visitors = [Visitor(nginx.port, stop) for _ in range(SESSIONS)]
        for visitor in visitors:
            visitor.start()
        self.addCleanup(stop.set)

        victims = [site.server(sid) for sid in ("app-a", "app-b", "app-c", "app-d")]
        others_of = {v.id: [s for s in site.servers if s is not v] for v in victims}
        started = time.monotonic()
        wall_started = time.time()
        kills = []
        for number, victim in enumerate(victims):
            # Every session has made progress before the next kill.
            wait_for(lambda: all(len(v.counts) > 0 for v in visitors), 30,
                     "every session to be answered")
            while time.monotonic() < started + (number + 1) * KILL_INTERVAL:
                time.sleep(0.05)  # the pace of the scenario, not a wait for a condition
            # The machine dies: its PHP cannot see its sidecar go first.
            site.kill_backend(victim)
            victim.kill()
            kills.append(time.monotonic() - started)
            site.wait_states({victim.id: "down"}, observers=others_of[victim.id], timeout=5)
            victim.start()
            site.start_backend(victim)
            site.wait_states({s.id: "up" for s in site.servers}, timeout=15)
        # A last stretch with everyone back.
        deadline = time.monotonic() + min(KILL_INTERVAL, 5)
        before = sum(len(v.counts) for v in visitors)
        wait_for(lambda: sum(len(v.counts) for v in visitors) > before + SESSIONS, 30,
                 "every session to go on after the last restart")
        while time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for visitor in visitors:
            visitor.join(60)
            self.assertFalse(visitor.is_alive())

        requests = sum(v.requests for v in visitors)
        failures = [f for v in visitors for f in v.failures]
        retried, answered_again = 0, 0
        for server in site.servers:
            store = server.status()["store"]
            retried += store["retried"]
            answered_again += store["answered_again"]
        double_steps = sum(1 for v in visitors for a, b in zip(v.counts, v.counts[1:])
                           if b - a == 2)
        sys.stderr.write(
            f"\nPHP failover: {requests} requests by {SESSIONS} sessions in "
            f"{time.monotonic() - started:.0f} s, {len(kills)} kills at "
            f"{', '.join(f'{k:.0f}' for k in kills)} s; not 200: {len(failures)}; "
            f"store retries (servers alive at the end): {retried}, answered again: "
            f"{answered_again}; counts that went up by 2 (a request nginx retried after "
            f"the killed server had counted it): {double_steps}; slowest request "
            f"{max(v.slowest for v in visitors):.2f} s\n")
        for when, status, body in sorted(failures)[:30]:
            sys.stderr.write(f"  at {when - wall_started:.2f} s: {status} {body}\n")
        if failures:
            for server in site.servers:
                with open(os.path.join(site.dir, server.id + ".backend.log"),
                          errors="replace") as f:
                    problems = [line for line in f if "Fatal" in line or "Warning" in line]
                sys.stderr.write(f"--- {server.id} PHP: {''.join(problems[-10:])}\n")
        self.assertEqual(len(failures), 0, f"{len(failures)} answers were not 200")
        for visitor in visitors:
            steps = [b - a for a, b in zip(visitor.counts, visitor.counts[1:])]
            self.assertTrue(all(step in (1, 2) for step in steps),
                            f"a session's count went {visitor.counts}")
            self.assertGreater(len(visitor.counts), len(kills))


if __name__ == "__main__":
    unittest.main()
