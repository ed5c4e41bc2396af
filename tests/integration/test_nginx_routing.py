"""Sticky routing and failover through Debian's nginx with the cluster_balance
module (issue 5): real sidecars, the demo backend (which keeps each session's
counter in the cluster store over memcached), nginx with 2 workers and keepalive.

Run by tests/CMakeLists.txt with Debian's python3; needs CLUSTER_SIDECAR,
CLUSTERCTL and CLUSTER_NGINX_MODULE.
"""

import http.client
import re
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from sidecar_cluster import wait_for
from web_cluster import (ROUTE_CHARS, DemoCluster, Nginx, parse_answer, route_of,
                         tcp_connections_to)


class Client:
    """One keep-alive connection to a front (nginx, httpd), reopened after any error,
    with repeated response headers joined by ", " as set_cookie_value expects: the
    backend's Set-Cookie JSESSIONID and the module's Set-Cookie CBROUTE are two
    header lines."""

    def __init__(self, port):
        self.port = port
        self.connection = None

    def get(self, path="/", cookie=None):
        """(status, headers, answer dict or None, body)."""
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                self.connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
                response = self.connection.getresponse()
                body = response.read().decode(errors="replace")
            except (http.client.HTTPException, OSError):
                # A connection the front closed while idle (KeepAliveTimeout): once
                # more on a new one. A second failure is the test's to see.
                self.close()
                if attempt == 1:
                    raise
                continue
            headers = {}
            for name, value in response.getheaders():
                name = name.lower()
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            if response.will_close:
                self.close()
            answer = parse_answer(body) if response.status == 200 else None
            return response.status, headers, answer, body
        raise AssertionError("unreachable")

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def set_cookie_value(headers, name):
    match = re.search(rf"(?:^|, ){re.escape(name)}=([^;]*)", headers.get("set-cookie", ""))
    return match.group(1) if match else None


def new_sessions(port, count, workers=8):
    """`count` sessions made through nginx: list of (session id, server id)."""
    def make(_):
        client = Client(port)
        try:
            status, _, answer, body = client.get("/")
            if status != 200:
                raise AssertionError(f"new session: {status} {body}")
            return answer["session"], answer["server"]
        finally:
            client.close()

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(make, range(count)))


class SiteTestCase(unittest.TestCase):
    """A DemoCluster with every sidecar and backend running, closed after the test."""

    def setUp(self):
        self.cluster = DemoCluster()
        self.addCleanup(self.cluster.close)
        self.cluster.start_site()
        self.route_chars = {s.id: ROUTE_CHARS[s.index] for s in self.cluster.servers}


class StickyTest(SiteTestCase):
    SESSIONS = 1000

    def follow_up(self, port, items, cookie_of, check):
        """Two more requests for every item, each on a connection per worker thread."""
        local = threading.local()
        clients = []

        def visit(item):
            if not hasattr(local, "client"):
                local.client = Client(port)
                clients.append(local.client)
            for _ in range(2):
                check(item, *local.client.get("/", cookie=cookie_of(item)))

        try:
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(visit, items))
        finally:
            for client in clients:
                client.close()

    def test_route_mode_keeps_every_session_on_its_server(self):
        nginx = Nginx(self.cluster, self.cluster.server("app-e")).start()
        sessions = new_sessions(nginx.port, self.SESSIONS)
        servers = {server for _, server in sessions}
        self.assertEqual(servers, set(self.route_chars), "new sessions reach every server")
        for session, server in sessions:
            # The application prefixed the id with X-Cluster-Route: the server's own.
            self.assertEqual(session[0], self.route_chars[server], session)
        counts = {}

        def check(item, status, headers, answer, body):
            session, server = item
            self.assertEqual(status, 200, body)
            self.assertEqual(answer["server"], server, f"session {session} moved")
            self.assertEqual(headers.get("x-cluster-route-reason"), "sticky")
            counts[session] = int(answer["count"])

        self.follow_up(nginx.port, sessions, lambda item: f"JSESSIONID={item[0]}", check)
        self.assertEqual(set(counts.values()), {3}, "each session counted 1, 2, 3")
        self.assertEqual(len(counts), self.SESSIONS)
        # keepalive stays on: 3,000 requests, yet at most a few connections per
        # worker and backend (without reuse, nginx leaves one TIME_WAIT per request).
        backend_ports = [s.http_port for s in self.cluster.servers]
        self.assertLess(tcp_connections_to(backend_ports), 2 * 32 * len(backend_ports))

    def test_insert_mode_pins_every_client_with_its_own_cookie(self):
        nginx = Nginx(self.cluster, self.cluster.server("app-d"), mode="insert",
                      cookie_options="name=SRV path=/ httponly=on samesite=strict max_age=1h")
        nginx.start()

        def make(_):
            client = Client(nginx.port)
            try:
                status, headers, answer, body = client.get("/")
                self.assertEqual(status, 200, body)
                pin = set_cookie_value(headers, "SRV")
                self.assertIsNotNone(pin, headers)
                self.assertIn("Path=/; Max-Age=3600; HttpOnly; SameSite=Strict",
                              headers["set-cookie"])
                return pin, answer["session"], answer["server"]
            finally:
                client.close()

        with ThreadPoolExecutor(8) as pool:
            clients = list(pool.map(make, range(self.SESSIONS)))
        self.assertEqual({server for _, _, server in clients}, set(self.route_chars))
        for pin, _, server in clients:
            self.assertEqual(pin[0], self.route_chars[server], pin)
        self.assertEqual(len({pin for pin, _, _ in clients}), self.SESSIONS, "tokens differ")

        def check(item, status, headers, answer, body):
            pin, session, server = item
            self.assertEqual(status, 200, body)
            self.assertEqual(answer["server"], server, f"client {pin} moved")
            self.assertEqual(answer["session"], session)
            # With a max_age the same pin comes again, so that it lasts an hour after
            # the client's last request.
            self.assertEqual(set_cookie_value(headers, "SRV"), pin)

        self.follow_up(nginx.port, clients,
                       lambda item: f"SRV={item[0]}; JSESSIONID={item[1]}", check)


class FailoverTest(SiteTestCase):
    """kill -9 of a triad server's sidecar and backend under load."""

    def test_sessions_move_to_the_computed_backup_and_keep_their_counters(self):
        victim = self.cluster.server("app-b")
        # Two separate nginx instances, following two other servers' views.
        front_e = Nginx(self.cluster, self.cluster.server("app-e")).start()
        front_a = Nginx(self.cluster, self.cluster.server("app-a")).start()
        pinned = Nginx(self.cluster, self.cluster.server("app-e"), mode="insert").start()

        sessions = [s for s, server in new_sessions(front_e.port, 150) if server == victim.id]
        self.assertGreaterEqual(len(sessions), 10, "enough sessions on the victim")
        sessions = sessions[:30]
        pins = []
        for _ in range(500):
            if len(pins) == 10:
                break
            client = Client(pinned.port)
            status, headers, answer, body = client.get("/")
            client.close()
            self.assertEqual(status, 200, body)
            if answer["server"] == victim.id:
                pins.append((set_cookie_value(headers, "CBROUTE"), answer["session"]))
        self.assertEqual(len(pins), 10, "insert-mode clients pinned to the victim")

        # Load: each session belongs to one thread, which alternates between the two
        # nginx instances, so its counter must go up by exactly one per answer.
        records = {session: [] for session in sessions}  # (time, front, status, server, count)
        stop = threading.Event()

        def load(own):
            clients = {"e": Client(front_e.port), "a": Client(front_a.port)}
            while not stop.is_set():
                for session in own:
                    for name, client in clients.items():
                        status, headers, answer, body = client.get(
                            "/", cookie=f"JSESSIONID={session}")
                        records[session].append(
                            (time.monotonic(), name, status,
                             answer["server"] if answer else body,
                             int(answer["count"]) if answer else None,
                             headers.get("x-cluster-route-reason")))
            for client in clients.values():
                client.close()

        threads = [threading.Thread(target=load, args=(sessions[i::3],)) for i in range(3)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: all(len(r) >= 4 for r in records.values()), 30, "load to run")
            victim_backend = self.cluster.backends[victim.id]
            victim_backend.kill()
            victim.process.kill()
            killed_at = time.monotonic()
            victim_backend.wait(timeout=10)
            victim.process.wait(timeout=10)
            observers = [self.cluster.server("app-e"), self.cluster.server("app-a")]
            self.cluster.wait_states({victim.id: "down"}, observers=observers)
            down_at = time.monotonic()
            wait_for(lambda: all(sum(1 for r in rs if r[0] > down_at) >= 4
                                 for rs in records.values()), 30, "load after the failover")
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        self.cluster.backends.pop(victim.id)

        for session, rs in records.items():
            failed = [r for r in rs if r[2] != 200]
            self.assertEqual(failed, [], f"client errors for {session}")
            # Every answer counted once, in order. The one exception: a request the
            # victim had counted when it was killed, before it could answer, is
            # retried on the backup and counted again (proxy_next_upstream retries
            # what the client never got an answer for).
            steps = [(b[4] - a[4], b[0]) for a, b in zip(rs, rs[1:])]
            self.assertTrue(all(step in (1, 2) for step, _ in steps), f"{session}: {rs}")
            doubled = [at for step, at in steps if step == 2]
            self.assertLessEqual(len(doubled), 1, f"{session}: {rs}")
            self.assertTrue(all(at > killed_at for at in doubled), f"{session}: {rs}")
            self.assertTrue(all(r[3] == victim.id for r in rs if r[0] < killed_at))
            _, backup_e = route_of(observers[0].view_file, cookie=f"JSESSIONID={session}")
            _, backup_a = route_of(observers[1].view_file, cookie=f"JSESSIONID={session}")
            self.assertEqual(backup_e, backup_a, "every view computes the same backup")
            self.assertNotEqual(backup_e, victim.id)
            after = [r for r in rs if r[0] > down_at]
            self.assertEqual({r[3] for r in after}, {backup_e}, f"{session} on its backup")
            self.assertEqual({r[1] for r in after}, {"e", "a"}, "both nginx instances served it")
            self.assertEqual({r[5] for r in after}, {"backup"})
        backups = {route_of(observers[0].view_file, cookie=f"JSESSIONID={s}")[1]
                   for s in sessions}
        self.assertGreater(len(backups), 1, "a failed server's sessions spread over backups")

        # Insert mode: the answer of the backup re-pins the client, same token.
        client = Client(pinned.port)
        for pin, session in pins:
            status, headers, answer, body = client.get(
                "/", cookie=f"CBROUTE={pin}; JSESSIONID={session}")
            self.assertEqual(status, 200, body)
            self.assertNotEqual(answer["server"], victim.id)
            repinned = set_cookie_value(headers, "CBROUTE")
            self.assertEqual(repinned, self.route_chars[answer["server"]] + pin[1:])
            status, headers, again, body = client.get(
                "/", cookie=f"CBROUTE={repinned}; JSESSIONID={session}")
            self.assertEqual(again["server"], answer["server"])
            self.assertIsNone(set_cookie_value(headers, "CBROUTE"))
            self.assertEqual(int(again["count"]), int(answer["count"]) + 1)
        client.close()

        # The victim returns: its sessions go back to it, counters intact.
        last = {s: records[s][-1][4] for s in sessions}
        victim.start()
        self.cluster.wait_states({victim.id: "up"}, observers=observers)
        self.cluster.start_backend(victim)
        client = Client(front_e.port)
        for session in sessions:
            status, headers, answer, body = client.get("/", cookie=f"JSESSIONID={session}")
            self.assertEqual(status, 200, body)
            self.assertEqual(answer["server"], victim.id)
            self.assertEqual(headers.get("x-cluster-route-reason"), "sticky")
            self.assertEqual(int(answer["count"]), last[session] + 1, session)
        client.close()


class DrainTest(SiteTestCase):
    def test_draining_server_keeps_its_sessions_and_takes_no_new_ones(self):
        nginx = Nginx(self.cluster, self.cluster.server("app-e")).start()
        drained = self.cluster.server("app-c")
        sessions = new_sessions(nginx.port, 60)
        own = [s for s, server in sessions if server == drained.id]
        self.assertTrue(own, "sessions on the server to drain")

        self.cluster.server("app-e").post(f"/servers/{drained.id}/drain")
        self.cluster.wait_states({drained.id: "draining"})
        client = Client(nginx.port)
        for session in own:
            status, headers, answer, body = client.get("/", cookie=f"JSESSIONID={session}")
            self.assertEqual(status, 200, body)
            self.assertEqual(answer["server"], drained.id, "existing sessions stay")
            self.assertEqual(headers.get("x-cluster-route-reason"), "sticky")
        fresh = new_sessions(nginx.port, 200)
        self.assertNotIn(drained.id, {server for _, server in fresh}, "no new session")

        self.cluster.server("app-a").post(f"/servers/{drained.id}/enable")
        self.cluster.wait_states({drained.id: "up"})

        def new_session_reaches_it():
            status, _, answer, body = client.get("/static")
            self.assertEqual(status, 200, body)
            return answer["server"] == drained.id

        wait_for(new_session_reaches_it, 30, "new sessions to reach the enabled server")
        client.close()


class DynamicJoinTest(SiteTestCase):
    def share_of(self, client, server_id, requests):
        hits = 0
        for _ in range(requests):
            status, _, answer, body = client.get("/static")
            self.assertEqual(status, 200, body)
            hits += answer["server"] == server_id
        return hits / requests

    def test_joined_server_gets_new_sessions_without_reload_and_ramps_up(self):
        nginx = Nginx(self.cluster, self.cluster.server("app-e")).start()
        workers = nginx.workers()
        client = Client(nginx.port)
        self.assertEqual(self.share_of(client, "app-f", 50), 0)

        joined = self.cluster.add_dynamic("app-f")
        joined.start()
        joined.wait_ready()
        self.cluster.wait_states({"app-f": "up"}, observers=[self.cluster.server("app-e")])
        index = joined.status()["server"]["index"]
        self.cluster.start_backend(joined, route_char=ROUTE_CHARS[index])
        warm_up_start = time.monotonic()

        # Slow start (10 s in demo-cluster.toml): a small share at first, a full
        # share (1/6 of new sessions, equal weights) once warm.
        early = self.share_of(client, "app-f", 300)
        early_elapsed = time.monotonic() - warm_up_start
        wait_for(lambda: time.monotonic() - warm_up_start > 11, 15, "the warm-up to end")
        late = self.share_of(client, "app-f", 600)
        self.assertLess(early_elapsed, 8, "sampled during the warm-up")
        self.assertGreater(late, 0.08, "a full share once warm")
        self.assertLess(late, 0.28)
        self.assertLess(early, late / 2, f"ramped: early {early:.3f}, late {late:.3f}")

        # Its sessions stick to it; nginx was never reloaded.
        def new_session_on_it():
            status, _, answer, body = client.get("/")
            self.assertEqual(status, 200, body)
            return answer["session"] if answer["server"] == "app-f" else None

        session = wait_for(new_session_on_it, 30, "a new session on app-f")
        self.assertEqual(session[0], ROUTE_CHARS[index])
        for expected in (2, 3):
            status, headers, answer, body = client.get("/", cookie=f"JSESSIONID={session}")
            self.assertEqual((answer["server"], int(answer["count"])), ("app-f", expected))
            self.assertEqual(headers.get("x-cluster-route-reason"), "sticky")
        self.assertEqual(nginx.workers(), workers, "no reload, no restarted worker")
        client.close()


if __name__ == "__main__":
    unittest.main()
