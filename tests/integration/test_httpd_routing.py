"""Sticky routing and failover through Debian's apache2 with mod_cluster_balance
(issue 12): real sidecars, the demo backend (which keeps each session's counter in
the cluster store over memcached), httpd with mpm_event or mpm_prefork running
conf-examples/httpd.conf, and nginx with the nginx module beside it where the two
must agree.

Run by tests/CMakeLists.txt with Debian's python3; needs CLUSTER_SIDECAR,
CLUSTERCTL, CLUSTER_HTTPD_MODULE and (FailoverTest) CLUSTER_NGINX_MODULE:

    CLUSTER_SIDECAR=.../cluster-sidecar CLUSTERCTL=.../clusterctl \\
    CLUSTER_HTTPD_MODULE=.../mod_cluster_balance.so \\
        /usr/bin/python3 -m unittest -v test_httpd_routing.StickyTest
"""

import threading
import unittest
from concurrent.futures import ThreadPoolExecutor

from sidecar_cluster import read_view, wait_for
from test_nginx_routing import Client, set_cookie_value
from test_nginx_robustness import DEMO_SERVERS, Session
from web_cluster import (ROUTE_CHARS, DemoCluster, Httpd, Nginx, dump_logs_if_failed,
                         parse_answer, route_of)


class HttpdTestCase(unittest.TestCase):
    """A DemoCluster (`cluster_class`) with every sidecar and backend running and the
    store ready; closed (every process killed by PID) after the test. On failure
    the logs of the sidecars, backends and fronts go to stderr first."""

    cluster_class = DemoCluster

    def setUp(self):
        self.cluster = self.cluster_class()
        self.addCleanup(self.cluster.close)
        self.addCleanup(self.dump_logs_on_failure)
        self.cluster.start_site()
        # The backends count in the store: wait until every sidecar sees it ready.
        wait_for(lambda: all(s.status()["store"]["ready_triad"] == [0, 1, 2]
                             for s in self.cluster.servers), 20, "the store to be ready")
        self.route_chars = {s.id: ROUTE_CHARS[s.index] for s in self.cluster.servers}

    def dump_logs_on_failure(self):
        dump_logs_if_failed(self, self.cluster)

    def new_sessions(self, ports, count, threads=8):
        """`count` new sessions, made through the fronts on `ports` in turn, each on
        its own connection: a list of Session."""
        def make(number):
            client = Client(ports[number % len(ports)])
            try:
                status, headers, answer, body = client.get("/")
            finally:
                client.close()
            self.assertEqual(status, 200, body)
            self.assertEqual(headers.get("x-cluster-route-reason"), "balanced", body)
            self.assertEqual(int(answer["count"]), 1, body)
            return Session(answer["session"], answer["server"], 1)

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(make, range(count)))

    def follow(self, client, session, reason, server=None, what=""):
        """A request of `session` through `client`: answered 200 by `server` for
        `reason`, counted exactly once more. Returns the server that answered."""
        status, headers, answer, body = client.get("/", cookie=session.cookie)
        self.assertEqual(status, 200, f"{what} {session!r}: {body}")
        self.assertEqual(headers.get("x-cluster-route-reason"), reason,
                         f"{what} {session!r}: {body}")
        if server is not None:
            self.assertEqual(answer["server"], server, f"{what} {session!r} moved")
        self.assertEqual(answer["session"], session.id, f"{what} {session!r} lost: {body}")
        self.assertEqual(int(answer["count"]), session.count + 1,
                         f"{what} {session!r} miscounted: {body}")
        session.count += 1
        return answer["server"]


# =============================================================================
class RouteHeaderCluster(DemoCluster):
    """The demo cluster with backends that have no route character of their own: a
    new session's id starts with the character of the X-Cluster-Route header the
    front sent ("A" without one), so the id shows which server the module named."""

    def backend_command(self, server, route_char):
        args, env = super().backend_command(server, route_char)
        at = args.index("--route-char")
        return args[:at] + args[at + 2:], env


class StickyTest(HttpdTestCase):
    """1,000 sessions stick through httpd, with mpm_event and with mpm_prefork."""

    cluster_class = RouteHeaderCluster
    SESSIONS = 1000

    def check_sessions_stick(self, httpd, threads):
        sessions = self.new_sessions([httpd.port], self.SESSIONS, threads)
        spread = {sid: sum(1 for s in sessions if s.owner == sid) for sid in DEMO_SERVERS}
        # Equal weights: about 200 each; every server gets well over a few.
        self.assertTrue(all(n >= 50 for n in spread.values()), f"new sessions: {spread}")
        for session in sessions:
            # The backend took the id's first character from X-Cluster-Route (it has
            # no route character of its own): the module named the answering server.
            self.assertEqual(session.id[0], self.route_chars[session.owner], session)
        self.assertEqual(len({s.id for s in sessions}), self.SESSIONS)

        # Two more requests of every session, on one kept-alive connection per thread.
        local = threading.local()
        clients = []

        def visit(session):
            if not hasattr(local, "client"):
                local.client = Client(httpd.port)
                clients.append(local.client)
            for _ in range(2):
                self.follow(local.client, session, "sticky", session.owner)

        try:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(visit, sessions))
        finally:
            for client in clients:
                client.close()
        self.assertEqual({s.count for s in sessions}, {3}, "each session counted 1, 2, 3")

        # A client's own X-Cluster-Route never reaches the backend: the module's does.
        for _ in range(20):
            status, _, body = httpd.get("/", headers={"X-Cluster-Route": "z"})
            self.assertEqual(status, 200, body)
            answer = parse_answer(body)
            self.assertEqual(answer["session"][0], self.route_chars[answer["server"]], body)

    def test_mpm_event(self):
        httpd = Httpd(self.cluster, self.cluster.server("app-e"), mpm="event").start()
        self.check_sessions_stick(httpd, threads=8)

    def test_mpm_prefork(self):
        httpd = Httpd(self.cluster, self.cluster.server("app-e"), mpm="prefork")
        # Its 4 children (MaxRequestWorkers 4) each hold one kept-alive connection:
        # as many client threads, once all of them run.
        httpd.start(children=4)
        self.check_sessions_stick(httpd, threads=4)


# =============================================================================
class FailoverTest(HttpdTestCase):
    """httpd and nginx side by side, following the same view: after kill -9 of a
    backend, and then of its sidecar, every session of that server goes to the same
    backup through both, the one clusterctl computes; no request fails."""

    SESSIONS = 200

    def test_httpd_and_nginx_send_a_failed_servers_sessions_to_the_same_backup(self):
        observer = self.cluster.server("app-e")
        victim = self.cluster.server("app-d")  # a spoke: the store stays where it is
        httpd = Httpd(self.cluster, observer).start()
        nginx = Nginx(self.cluster, observer).start()
        fronts = {"httpd": Client(httpd.port), "nginx": Client(nginx.port)}
        self.addCleanup(lambda: [client.close() for client in fronts.values()])

        sessions = self.new_sessions([httpd.port, nginx.port], self.SESSIONS)
        self.assertEqual({s.owner for s in sessions}, set(DEMO_SERVERS))
        own = [s for s in sessions if s.owner == victim.id]
        self.assertGreaterEqual(len(own), 10, "enough sessions on the victim")
        for session in sessions:
            for name, client in fronts.items():
                self.follow(client, session, "sticky", session.owner, name)

        # kill -9 of the backend alone: the view still says the server is up; both
        # fronts fail to connect and retry on the session's backup.
        self.cluster.kill_backend(victim)
        view = observer.view_file
        self.assertEqual(read_view(view)["servers"][victim.id]["state"], "up")
        retried_to = {}
        for session in sessions:
            answered = {name: self.follow(client, session,
                                          "sticky" if session.owner != victim.id else "backup",
                                          None, name)
                        for name, client in fronts.items()}
            if session.owner != victim.id:
                self.assertEqual(set(answered.values()), {session.owner}, session)
                continue
            self.assertEqual(route_of(view, cookie=session.cookie), ("sticky", victim.id))
            self.assertEqual(answered["httpd"], answered["nginx"], f"{session!r}: {answered}")
            self.assertNotEqual(answered["httpd"], victim.id)
            retried_to[session.id] = answered["httpd"]
        self.assertGreater(len(set(retried_to.values())), 1,
                           f"a failed server's sessions spread over backups: {retried_to}")

        # kill -9 of its sidecar as well: the view says down, and both fronts send
        # every session of the victim to the backup the view computes, the one
        # their retries went to; the other sessions stay where they are.
        victim.kill()
        self.cluster.wait_states({victim.id: "down"}, observers=[observer])
        for session in sessions:
            reason, server = route_of(view, cookie=session.cookie)
            if session.owner == victim.id:
                self.assertEqual((reason, server), ("backup", retried_to[session.id]), session)
            else:
                self.assertEqual((reason, server), ("sticky", session.owner), session)
            for name, client in fronts.items():
                self.follow(client, session, reason, server, name)


# =============================================================================
class DrainTest(HttpdTestCase):
    def test_draining_server_keeps_its_sessions_and_takes_no_new_ones(self):
        httpd = Httpd(self.cluster, self.cluster.server("app-e")).start()
        drained = self.cluster.server("app-c")
        sessions = self.new_sessions([httpd.port], 60)
        own = [s for s in sessions if s.owner == drained.id]
        self.assertTrue(own, "sessions on the server to drain")

        self.cluster.server("app-e").post(f"/servers/{drained.id}/drain")
        self.cluster.wait_states({drained.id: "draining"})
        client = Client(httpd.port)
        self.addCleanup(client.close)
        for session in own:
            self.follow(client, session, "sticky", drained.id, "existing sessions stay:")
        fresh = self.new_sessions([httpd.port], 200)
        self.assertNotIn(drained.id, {s.owner for s in fresh}, "no new session")
        self.assertEqual({s.owner for s in fresh}, set(DEMO_SERVERS) - {drained.id})

        self.cluster.server("app-a").post(f"/servers/{drained.id}/enable")
        self.cluster.wait_states({drained.id: "up"})

        def new_session_reaches_it():
            status, _, answer, body = client.get("/static")
            self.assertEqual(status, 200, body)
            return answer["server"] == drained.id

        wait_for(new_session_reaches_it, 30, "new sessions to reach the enabled server")
        for session in own:
            self.follow(client, session, "sticky", drained.id, "after enable:")


# =============================================================================
class InsertModeTest(HttpdTestCase):
    """mode=insert: the module's own cookie (CBROUTE) pins a client to the server
    that answered it; a failed server's clients are re-pinned to their backup."""

    def pin(self, headers, answer, name="CBROUTE"):
        """The cookie's value: a token that starts with the answering server's route
        character."""
        value = set_cookie_value(headers, name)
        self.assertIsNotNone(value, headers)
        self.assertEqual(value[0], self.route_chars[answer["server"]], value)
        return value

    def visit(self, client, pin, session, reason, server=None, name="CBROUTE"):
        """A request of a pinned client: 200 for `reason` (from `server`), its
        session counted once more. Returns (headers, answer)."""
        status, headers, answer, body = client.get(
            "/", cookie=f"{name}={pin}; {session.cookie}")
        self.assertEqual(status, 200, body)
        self.assertEqual(headers.get("x-cluster-route-reason"), reason, f"{pin}: {body}")
        if server is not None:
            self.assertEqual(answer["server"], server, f"client {pin} moved")
        self.assertEqual((answer["session"], int(answer["count"])),
                         (session.id, session.count + 1), body)
        session.count += 1
        return headers, answer

    def test_cookie_pins_and_repins_after_a_failure(self):
        observer = self.cluster.server("app-e")
        httpd = Httpd(self.cluster, observer, mode="insert").start()
        client = Client(httpd.port)
        self.addCleanup(client.close)

        # First requests: a cookie naming the server that answered, a new token each.
        pins = {sid: [] for sid in DEMO_SERVERS}  # server -> [(pin, session)]
        for _ in range(60):
            status, headers, answer, body = client.get("/")
            self.assertEqual(status, 200, body)
            self.assertEqual(headers.get("x-cluster-route-reason"), "balanced")
            pins[answer["server"]].append((self.pin(headers, answer),
                                           Session(answer["session"], answer["server"], 1)))
        self.assertTrue(all(pins.values()), f"every server pinned clients: {pins}")
        tokens = [pin for entries in pins.values() for pin, _ in entries]
        self.assertEqual(len(set(tokens)), len(tokens), "tokens differ")

        # Replayed, the cookie sticks; without max_age it is not sent again.
        for sid, entries in pins.items():
            for pin, session in entries:
                for _ in range(2):
                    headers, _ = self.visit(client, pin, session, "sticky", sid)
                    self.assertIsNone(set_cookie_value(headers, "CBROUTE"), headers)

        victim = self.cluster.server("app-b")
        victim_pins = pins[victim.id]
        view = observer.view_file
        # kill -9 of its backend: the view still says it is up, so the backup
        # answers and the pin is kept (shared Balancer::InsertCookieFor: a pinned
        # server the view serves may only have failed for a moment).
        self.cluster.kill_backend(victim)
        backup_of = {}
        for pin, session in victim_pins:
            headers, answer = self.visit(client, pin, session, "backup")
            self.assertNotEqual(answer["server"], victim.id)
            self.assertIsNone(set_cookie_value(headers, "CBROUTE"), headers)
            backup_of[pin] = answer["server"]

        # kill -9 of its sidecar too: the view says down; the same backup answers
        # and re-pins the client, same token.
        victim.kill()
        self.cluster.wait_states({victim.id: "down"}, observers=[observer])
        for pin, session in victim_pins:
            # clusterctl reads the pin as a session cookie: the same backup order.
            self.assertEqual(route_of(view, cookie=f"JSESSIONID={pin}"),
                             ("backup", backup_of[pin]))
            headers, answer = self.visit(client, pin, session, "backup", backup_of[pin])
            repinned = set_cookie_value(headers, "CBROUTE")
            self.assertEqual(repinned, self.route_chars[answer["server"]] + pin[1:], headers)
            headers, _ = self.visit(client, repinned, session, "sticky", backup_of[pin])
            self.assertIsNone(set_cookie_value(headers, "CBROUTE"), headers)

        # Every backend gone (the sidecars still say up): every try fails, and
        # httpd's error page carries no cookie.
        for server in self.cluster.servers:
            if server.id in self.cluster.backends:
                self.cluster.kill_backend(server)
        pin, session = pins["app-c"][0]
        for cookie in (None, f"CBROUTE={pin}; {session.cookie}"):
            for _ in range(3):
                status, headers, _, body = client.get("/", cookie=cookie)
                self.assertEqual(status, 503, body)
                self.assertIsNone(set_cookie_value(headers, "CBROUTE"), headers)

    def test_cookie_options_and_max_age(self):
        httpd = Httpd(self.cluster, self.cluster.server("app-d"), mode="insert",
                      cookie_options="name=SRV path=/ httponly=on samesite=strict max_age=1h")
        httpd.start()
        client = Client(httpd.port)
        self.addCleanup(client.close)
        clients = []
        for _ in range(100):
            status, headers, answer, body = client.get("/")
            self.assertEqual(status, 200, body)
            self.assertIn("Path=/; Max-Age=3600; HttpOnly; SameSite=Strict",
                          headers["set-cookie"])
            self.assertIsNone(set_cookie_value(headers, "CBROUTE"), headers)
            clients.append((self.pin(headers, answer, "SRV"),
                            Session(answer["session"], answer["server"], 1)))
        self.assertEqual({session.owner for _, session in clients}, set(DEMO_SERVERS))
        self.assertEqual(len({pin for pin, _ in clients}), len(clients), "tokens differ")
        for pin, session in clients:
            # With a max_age the same pin comes again, so that it lasts an hour after
            # the client's last request.
            headers, _ = self.visit(client, pin, session, "sticky", session.owner, "SRV")
            self.assertEqual(set_cookie_value(headers, "SRV"), pin, headers)


if __name__ == "__main__":
    unittest.main()
