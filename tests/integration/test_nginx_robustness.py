"""The nginx module under stress and abuse: reloads under load, every way the view
can go missing or bad, hostile cookies and paths, two clusters behind one nginx,
and retries after a backend dies (proxy_next_upstream).

Runs Debian's nginx with the built module in front of the demo's cluster
(web_cluster.py); from this folder, with Debian's python3:

    CLUSTER_SIDECAR=.../cluster-sidecar CLUSTERCTL=.../clusterctl \\
    CLUSTER_NGINX_MODULE=.../ngx_http_cluster_balance_module.so \\
        /usr/bin/python3 -m unittest -v test_nginx_robustness.ReloadTest

Each test class is one ctest test. Every assertion is on behaviour seen from the
outside (status, which backend answered, which session it counted and how many
times); log lines are only checked beside that. Waiting is bounded polling.
"""

import http.client
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import unittest

from sidecar_cluster import Cluster, free_ports, read_view, wait_for
from web_cluster import (BACKEND, NGINX, ROUTE_CHARS, DemoCluster, Nginx, dump_logs_if_failed,
                         http_get, nginx_environment, parse_answer, replace_exactly, route_of)

DEMO_SERVERS = ("app-a", "app-b", "app-c", "app-d", "app-e")
# ViewTracker::kDefaultRecheckMs (1 s) and a margin: a state that every answer has
# shown for this long is what every worker sees (see RobustTestCase.wait_steady).
STEADY_SECONDS = 1.3


# -- requests -----------------------------------------------------------------------

class Answer:
    """One response through nginx, with the demo backend's answer line parsed."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body
        self.reason = headers.get("x-cluster-route-reason")
        try:
            self.fields = parse_answer(body) if status == 200 else {}
        except ValueError:
            self.fields = {}
        self.server = self.fields.get("server")
        self.session = self.fields.get("session")
        self.count = int(self.fields["count"]) if "count" in self.fields else None

    def __repr__(self):
        return f"<{self.status} reason={self.reason} {self.body.strip()[:200]!r}>"


def get(port, path="/", cookie=None):
    """One GET on a new connection; any failure to get an answer is a test failure."""
    try:
        return Answer(*http_get(port, path, cookie))
    except (OSError, http.client.HTTPException) as error:
        raise AssertionError(f"GET {path} (Cookie {cookie!r}): no answer: {error!r}") from error


def raw_get(port, target, header_lines=()):
    """A GET with exactly these bytes as target and header lines, on its own
    connection (http.client refuses NUL, CR, LF and non-ASCII). An Answer, or None
    when nginx closed the connection without answering."""
    data = (b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + b"".join(line + b"\r\n" for line in header_lines)
            + b"Connection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # nginx may refuse a huge header before reading all of it
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()
            body = response.read().decode(errors="replace")
        except (ConnectionResetError, http.client.RemoteDisconnected):
            return None
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)


class KeepAliveClient:
    """Requests on one kept-alive connection, as a browser sends them.

    When a connection that already served requests is closed before a single byte
    of an answer came back (nginx closes idle kept-alive connections when a reload
    retires its worker), the request is sent again on a new connection, as every
    HTTP client does; `reconnects` counts that. The request was then never served:
    the session counters prove it (a request served twice would count twice)."""

    def __init__(self, port):
        self.port = port
        self.connection = None
        self.reconnects = 0

    def get(self, path, cookie):
        while True:
            reused = self.connection is not None
            if not reused:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                self.connection.request("GET", path, headers={"Cookie": cookie})
                response = self.connection.getresponse()
                body = response.read().decode(errors="replace")
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError) as error:
                self.close()
                if not reused:
                    raise AssertionError(f"a new connection failed: {error!r}") from error
                self.reconnects += 1
                continue
            if response.will_close:
                self.close()
            return Answer(response.status,
                          {k.lower(): v for k, v in response.getheaders()}, body)

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class Session:
    """A session the demo backend created (or will create) and how often it counted."""

    def __init__(self, sid, owner, count):
        self.id = sid
        self.owner = owner  # the server that created it: its route character's server
        self.count = count

    @property
    def cookie(self):
        return f"JSESSIONID={self.id}"

    def __repr__(self):
        return f"<session {self.id} of {self.owner}, count {self.count}>"


class StickyLoad:
    """Client threads that send the requests of `sessions` (Session) over and over on
    kept-alive connections to `port` until stop(), and note every answer that is not
    a 200 from the session's own server ("sticky") with the session's next count.
    `served`, `errors` and `reconnects` are read under `lock` or after stop()."""

    def __init__(self, port, sessions, threads):
        self.port = port
        self.lock = threading.Lock()
        self.served = 0
        self.errors = []
        self.reconnects = 0
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(sessions[i::threads],),
                                         daemon=True)
                        for i in range(min(threads, len(sessions)))]

    def start(self):
        for thread in self.threads:
            thread.start()
        return self

    def run(self, mine):
        client = KeepAliveClient(self.port)
        try:
            while not self.stopping.is_set():
                for session in mine:
                    answer = client.get("/", session.cookie)
                    problem = None
                    if answer.status != 200:
                        problem = "not 200"
                    elif answer.reason != "sticky" or answer.server != session.owner:
                        problem = "not sticky to its server"
                    elif answer.session != session.id:
                        problem = "session lost"
                    elif answer.count != session.count + 1:
                        problem = f"count {answer.count} after {session.count}"
                    with self.lock:
                        self.served += 1
                        if problem:
                            self.errors.append(f"{session!r}: {problem}: {answer!r}")
                    if answer.count is not None:
                        session.count = answer.count
        except Exception as error:  # reported by the test, not lost in the thread
            with self.lock:
                self.errors.append(f"thread failed: {error!r}")
        finally:
            with self.lock:
                self.reconnects += client.reconnects
            client.close()

    def wait_served(self, more):
        """Waits until `more` requests more than now were served (or one failed)."""
        than = self.served
        wait_for(lambda: self.served >= than + more or self.errors, 20,
                 f"{more} more requests to be served")

    def stop(self):
        """Stops the threads; returns those that hang."""
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=20)
        return [thread for thread in self.threads if thread.is_alive()]


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def start_backend(cluster, server, route_char):
    """The demo backend of a server of any Cluster, as DemoCluster.start_backend
    starts it; killed by PID with the cluster."""
    log = open(os.path.join(cluster.dir, server.id + ".backend.log"), "ab")
    process = subprocess.Popen(
        [BACKEND, "--listen", f"127.0.0.1:{server.http_port}", "--server-id", server.id,
         "--memcached", f"127.0.0.1:{server.memcached_port}", "--route-char", route_char],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    cluster.started.append(process)
    wait_for(lambda: http_get(server.http_port, "/health")[0] == 200, 10,
             f"backend {server.id} to answer")
    return process


# -- the test cases -----------------------------------------------------------------

class RobustTestCase(unittest.TestCase):
    """A DemoCluster per test, closed (every process killed by PID) when it ends."""

    def make_cluster(self):
        cluster = DemoCluster()
        self.addCleanup(cluster.close)
        self.addCleanup(self.dump_logs_on_failure, cluster)
        return cluster

    def dump_logs_on_failure(self, cluster):
        dump_logs_if_failed(self, cluster)

    def start_nginx(self, cluster, view_server=None, edit=None):
        return Nginx(cluster, view_server or cluster.server("app-e"), edit=edit).start()

    def wait_store(self, cluster, triad, timeout=20):
        """Until every running sidecar sees the stores of the triad ready, so that
        the backends can count sessions."""
        live = [s for s in cluster.servers if s.process and s.process.poll() is None]
        wait_for(lambda: all(s.status()["store"]["ready_triad"] == triad for s in live),
                 timeout, f"every server to see the stores of {triad} ready")

    def start_site(self):
        cluster = self.make_cluster().start_site()
        self.wait_store(cluster, [0, 1, 2])
        return cluster

    # -- asserting on answers
    def assert_answer(self, answer, reason=None, server=None, what=""):
        self.assertEqual(answer.status, 200, f"{what}: {answer!r}")
        if reason is not None:
            self.assertEqual(answer.reason, reason, f"{what}: {answer!r}")
        if server is not None:
            self.assertEqual(answer.server, server, f"{what}: {answer!r}")
        return answer

    def new_session(self, port, path="/"):
        answer = self.assert_answer(get(port, path), "balanced", what="a new session")
        self.assertEqual(answer.count, 1, answer)
        self.assertIn(answer.server, DEMO_SERVERS + ("s0",), answer)
        return Session(answer.session, answer.server, 1)

    def follow(self, port, session, reason=None, server=None, path="/"):
        """A request of `session`: answered 200 (by `server`, for `reason`), counted
        exactly once more."""
        answer = self.assert_answer(get(port, path, session.cookie), reason, server,
                                    f"{session!r}")
        self.assertEqual(answer.session, session.id, f"{session!r} lost: {answer!r}")
        self.assertEqual(answer.count, session.count + 1, f"{session!r} miscounted: {answer!r}")
        session.count = answer.count
        return answer

    def wait_steady(self, probe, expected, what, timeout=20):
        """Polls probe() until it has returned a value in `expected` on every call for
        STEADY_SECONDS. Each worker rechecks the view file at its first request a
        second after its last recheck, so a worker that answered nothing meanwhile
        rechecks at its next request: from then on every worker answers so."""
        state = {"since": None, "last": None}

        def steady():
            value = probe()
            state["last"] = value
            now = time.monotonic()
            if value not in expected:
                state["since"] = None
                return False
            if state["since"] is None:
                state["since"] = now
            return now - state["since"] >= STEADY_SECONDS

        try:
            wait_for(steady, timeout, what)
        except AssertionError as error:
            raise AssertionError(f"{error}; last answer: {state['last']!r}") from None

    def assert_workers_alive(self, nginx, workers):
        """The same workers as before (none crashed and was replaced), and the error
        log has no sign of a crash or of an exception inside the module."""
        self.assertEqual(nginx.workers(), workers, "nginx replaced a worker")
        bad = [line for line in nginx.error_lines()
               if "[alert]" in line or "[crit]" in line or "[emerg]" in line
               or "exited on signal" in line]
        self.assertEqual(bad, [], "nginx's error log")


# =============================================================================
class ReloadTest(RobustTestCase):
    """nginx -s reload (SIGHUP) while sessions send requests on kept-alive
    connections: no request fails, none lands elsewhere, none is lost or doubled."""

    THREADS = 4
    RELOADS = 3

    def test_reloads_under_load_keep_every_session(self):
        cluster = self.start_site()
        nginx = self.start_nginx(cluster)
        self.wait_steady(lambda: get(nginx.port, "/static").reason, {"balanced"},
                         "nginx to follow the view")

        # Sessions on several servers: new ones until each server made one.
        sessions = {}
        for _ in range(200):
            session = self.new_session(nginx.port)
            sessions.setdefault(session.owner, []).append(session)
            if len(sessions) == len(DEMO_SERVERS) and all(len(s) >= 2 for s in sessions.values()):
                break
        self.assertGreaterEqual(len(sessions), 3, f"sessions on too few servers: {sessions}")
        chosen = [s for group in sessions.values() for s in group[:2]]
        for session in chosen:  # sticky before the load starts
            self.follow(nginx.port, session, "sticky", session.owner)

        load = StickyLoad(nginx.port, chosen, self.THREADS)
        self.addCleanup(load.stop)
        load.start()
        for _ in range(self.RELOADS):
            load.wait_served(30)
            before = nginx.workers()
            nginx.reload()  # returns once only new workers remain
            self.assertFalse(nginx.workers() & before)
        load.wait_served(30)
        self.assertEqual(load.stop(), [], "a client thread hangs")

        self.assertEqual(load.errors, [], f"{len(load.errors)} bad answers of {load.served}")
        # Each session counted exactly its requests, and still sticks after the reloads.
        for session in chosen:
            self.follow(nginx.port, session, "sticky", session.owner)
        sys.stderr.write(f"ReloadTest: {load.served} requests, {len(chosen)} sessions on "
                         f"{len(sessions)} servers, {load.reconnects} reconnects after nginx "
                         f"closed idle kept-alive connections\n")


# =============================================================================
class FallbackTest(RobustTestCase):
    """No view, a bad view, a stopped sidecar: nginx balances over its own server
    lines and answers every request; a good view is picked up again without a
    reload, and no worker ever crashes."""

    def static(self, nginx):
        """The reason of one request that needs no session store; asserts 200."""
        answer = self.assert_answer(get(nginx.port, "/static"), what="/static")
        self.assertIn(answer.server, DEMO_SERVERS, answer)
        return answer.reason

    def wait_fallback(self, nginx, what):
        self.wait_steady(lambda: self.static(nginx), {"fallback"}, f"fallback after {what}")

    def wait_following(self, nginx, what):
        self.wait_steady(lambda: self.static(nginx), {"balanced"},
                         f"nginx to follow the view again after {what}")

    def replace_view(self, path, data):
        """Replaces the view file by rename, as an installer (or a mistake) would."""
        temporary = path + ".tmp"
        with open(temporary, "wb") as f:
            f.write(data)
        os.chmod(temporary, 0o644)
        os.rename(temporary, path)

    def restart_sidecar(self, cluster, server):
        server.stop()
        server.start()
        server.wait_ready()
        cluster.wait_states({sid: "up" for sid in DEMO_SERVERS}, timeout=20)

    def test_missing_bad_and_orphaned_views(self):
        cluster = self.make_cluster()
        follower = cluster.server("app-e")
        # (a) No sidecar yet, so no view file: only the backends run. /static needs
        # no session store.
        for server in cluster.servers:
            cluster.start_backend(server)
        self.assertFalse(os.path.exists(follower.view_file))
        nginx = self.start_nginx(cluster, follower)
        workers = nginx.workers()
        answered_by = set()
        for _ in range(50):
            answer = self.assert_answer(get(nginx.port, "/static"), "fallback",
                                        what="no view file")
            answered_by.add(answer.server)
        self.assertGreater(len(answered_by), 1, "fallback is not balanced over the servers")
        warnings = [line for line in nginx.error_lines() if "no usable cluster view" in line]
        self.assertTrue(warnings, "no warning about the missing view")
        per_worker = {}
        for line in warnings:
            self.assertIn(follower.view_file, line)
            pid = int(re.search(r"\] (\d+)#", line).group(1))
            per_worker[pid] = per_worker.get(pid, 0) + 1
        self.assertTrue(all(n == 1 for n in per_worker.values()) and len(per_worker) <= 2,
                        f"the warning is repeated: {warnings}")
        # Round robin still sends a session to its own server line (its route
        # character) while that line is usable.
        for char, owner in zip(ROUTE_CHARS, DEMO_SERVERS):
            cookie = f"JSESSIONID={char}{secrets.token_urlsafe(12)}"
            for _ in range(3):
                self.assert_answer(get(nginx.port, "/static", cookie), "fallback", owner,
                                   what="a session without a view")

        # (b) The sidecars start: the view is picked up without a reload.
        cluster.start_all()
        cluster.wait_states({sid: "up" for sid in DEMO_SERVERS})
        self.wait_store(cluster, [0, 1, 2])
        self.wait_following(nginx, "the sidecar started")
        session = self.new_session(nginx.port)
        self.follow(nginx.port, session, "sticky", session.owner)
        self.assertEqual(route_of(follower.view_file, cookie=session.cookie),
                         ("sticky", session.owner))
        self.assert_workers_alive(nginx, workers)

        # (c) The view replaced by a truncated copy: fallback; sessions keep counting
        # (every backend shares the store).
        good = read_bytes(follower.view_file)
        self.replace_view(follower.view_file, good[:len(good) // 2])
        self.wait_fallback(nginx, "a truncated view")
        for _ in range(10):
            self.follow(nginx.port, session, "fallback", session.owner)
        self.assert_workers_alive(nginx, workers)
        # A sidecar that finds a bad view file replaces it.
        self.restart_sidecar(cluster, follower)
        self.wait_following(nginx, "the sidecar replaced the truncated view")
        self.follow(nginx.port, session, "sticky", session.owner)
        self.assert_workers_alive(nginx, workers)

        # (d) A view of a newer format version (uint16 at offset 4): refused.
        good = bytearray(read_bytes(follower.view_file))
        self.assertEqual(int.from_bytes(good[4:6], "little"), 2)
        good[4:6] = (3).to_bytes(2, "little")
        self.replace_view(follower.view_file, bytes(good))
        self.wait_fallback(nginx, "a view of format version 3")
        for _ in range(10):
            self.follow(nginx.port, session, "fallback", session.owner)
        self.assert_workers_alive(nginx, workers)
        self.restart_sidecar(cluster, follower)
        self.wait_following(nginx, "the sidecar replaced the version 3 view")
        self.follow(nginx.port, session, "sticky", session.owner)

        # (e) The sidecar whose view nginx follows stops (SIGTERM), then dies
        # (SIGKILL): its last view no longer follows the cluster. Only /static while
        # it is away: its own backend cannot reach the store then.
        for how in ("stop", "kill"):
            getattr(follower, how)()
            self.wait_fallback(nginx, f"the sidecar's {how}")
            self.assertTrue(os.path.exists(follower.view_file))
            self.assert_workers_alive(nginx, workers)
            follower.start()
            follower.wait_ready()
            cluster.wait_states({sid: "up" for sid in DEMO_SERVERS}, timeout=20)
            self.wait_following(nginx, f"the sidecar's restart after {how}")
            self.follow(nginx.port, session, "sticky", session.owner)
        self.assert_workers_alive(nginx, workers)


# =============================================================================
class HostileCookieTest(RobustTestCase):
    """Malformed, huge and malicious cookies and paths: each is answered, as the
    shared decision (clusterctl route) says, and no worker crashes."""

    def setUp(self):
        self.cluster = self.start_site()
        self.nginx = self.start_nginx(self.cluster)
        self.view = self.cluster.server("app-e").view_file
        self.wait_steady(lambda: get(self.nginx.port, "/static").reason, {"balanced"},
                         "nginx to follow the view")
        self.workers = self.nginx.workers()
        self.checked = 0

    def token(self):
        return secrets.token_urlsafe(12).encode()

    def expect_decision(self, cookies=(), path=b"/", decision_cookie=None, what=None):
        """Sends the Cookie header lines `cookies` (bytes) and `path` as they are; the
        answer must be 200 and say what `clusterctl route` says for them: the same
        reason and, for a session, the same server."""
        what = what or f"Cookie {cookies!r} path {path!r}"
        decision_cookie = decision_cookie if decision_cookie is not None else (
            cookies[0] if cookies else None)
        reason, server = route_of(self.view, cookie=decision_cookie, path=path)
        answer = raw_get(self.nginx.port, path,
                         [b"Cookie: " + c for c in cookies])
        self.assertIsNotNone(answer, f"{what}: no answer")
        self.assert_answer(answer, reason, server if reason != "balanced" else None, what)
        self.assertIn(answer.server, DEMO_SERVERS, f"{what}: {answer!r}")
        self.checked += 1
        return answer

    def expect_refused_or_no_session(self, cookies=(), path=b"/", what=None):
        """Bytes nginx itself may refuse (400, or closing the connection): when it
        does answer through the module, the request has no session."""
        answer = raw_get(self.nginx.port, path, [b"Cookie: " + c for c in cookies])
        what = what or f"Cookie {cookies!r} path {path!r}"
        if answer is not None and answer.status != 400:
            self.assert_answer(answer, "balanced", what=what)
        self.checked += 1
        return answer

    def test_hostile_cookies_and_paths(self):
        # Every byte that is not a route character, first in the session id, followed
        # by "ZZ" (index 25: no server) so that no reading of it can be sticky.
        for byte in range(256):
            if chr(byte) in ROUTE_CHARS:
                continue
            cookie = b"JSESSIONID=" + bytes([byte]) + b"ZZ" + self.token()
            if byte in (0, 10, 13):  # NUL, LF, CR: not header bytes
                self.expect_refused_or_no_session([cookie], what=f"first byte {byte}")
            else:
                answer = self.expect_decision([cookie], what=f"first byte {byte}")
                self.assertNotEqual(answer.reason, "sticky", f"first byte {byte}")

        # Every route character: sticky to the five servers, backup for the others.
        for index, char in enumerate(ROUTE_CHARS):
            answer = self.expect_decision([b"JSESSIONID=" + char.encode() + self.token()])
            self.assertEqual(answer.reason, "sticky" if index < 5 else "backup", answer)
        for char in (b"Z", b"z", b"_"):
            cookie = b"JSESSIONID=" + char + self.token()
            answer = self.expect_decision([cookie])
            self.assertEqual(answer.reason, "backup")
            self.assertEqual((answer.reason, answer.server),
                             route_of(self.view, cookie=cookie), cookie)

        # Garbage: random bytes (no NUL, CR, LF) as the whole header and as the value.
        rng = random.Random(20240601)
        header_bytes = [b for b in range(1, 256) if b not in (10, 13)]
        for length in (1, 2, 5, 17, 64, 200, 255, 256, 257, 1000, 4000):
            garbage = bytes(rng.choice(header_bytes) for _ in range(length)).strip(b" \t")
            if garbage:
                self.expect_decision([garbage])
                self.expect_decision([b"JSESSIONID=" + garbage])
                self.expect_decision([b"JSESSIONID=B" + garbage])

        # Lengths: 256 bytes is a session id, 257 is none; 7 KB fits nginx's header
        # buffers, 10 KB and 100 KB do not (nginx answers 400 itself).
        for length, reason in ((256, "sticky"), (257, "balanced"), (7000, "balanced")):
            cookie = b"JSESSIONID=B" + b"x" * (length - 1)
            self.assertEqual(self.expect_decision([cookie]).reason, reason, length)
        for size in (10 * 1024, 100 * 1024):
            answer = raw_get(self.nginx.port, b"/", [b"Cookie: JSESSIONID=B" + b"y" * size])
            if answer is not None:
                self.assertIn(answer.status, (200, 400), f"{size} bytes: {answer!r}")
                if answer.status == 200:
                    self.assertEqual(answer.reason, "balanced")
        many = b"Cookie: " + b"; ".join(b"c%d=%d" % (i, i) for i in range(3000))
        answer = raw_get(self.nginx.port, b"/", [many[:60000]])
        self.assertTrue(answer is None or answer.status in (200, 400), answer)

        # NUL bytes, raw, in the cookie and in the path.
        token = self.token()
        for cookie in (b"JSESSIONID=B\x00" + token, b"JSESSIONID=\x00B" + token,
                       b"\x00JSESSIONID=B" + token, b"JSESSIONID=B" + token + b"\x00"):
            answer = raw_get(self.nginx.port, b"/", [b"Cookie: " + cookie])
            if answer is not None and answer.status != 400:
                # nginx passed it on: the module must not have read past the NUL.
                self.assertEqual(answer.status, 200, answer)
        for path in (b"/x;jsessionid=B\x00" + token, b"/x\x00;jsessionid=B" + token,
                     b"/x;jsessionid=B%00" + token, b"/x;jsessionid=%00B" + token):
            answer = raw_get(self.nginx.port, path)
            self.assertTrue(answer is None or answer.status in (200, 400), answer)
            if answer is not None and answer.status == 200:
                self.assertNotEqual(answer.reason, None, answer)

        # Quotes, balanced and not.
        token = self.token()
        for value in (b'"B' + token + b'"', b'"B' + token, b"B" + token + b'"', b'""', b'"',
                      b'"""', b'""B' + token + b'""', b'"B' + token + b'"x',
                      b"'B" + token + b"'", b'" B' + token + b' "'):
            self.expect_decision([b"JSESSIONID=" + value])
        self.assertEqual(self.expect_decision([b'JSESSIONID="C' + token + b'"']).reason,
                         "sticky")

        # Many cookies: the first usable JSESSIONID counts, in one header or several.
        token = self.token()
        crowd = b"; ".join([b"JSESSIONID="] * 300 + [b'JSESSIONID="bad'] * 100
                           + [b"JSESSIONID=C" + token, b"JSESSIONID=D" + token])
        answer = self.expect_decision([crowd])
        self.assertEqual((answer.reason, answer.server), ("sticky", "app-c"))
        answer = self.expect_decision([b"a=b; JSESSIONID=,bad; jsessionid=Bx",
                                       b"JSESSIONID=D" + token],
                                      decision_cookie=b"JSESSIONID=D" + token)
        self.assertEqual((answer.reason, answer.server), ("sticky", "app-d"))
        self.expect_decision([b";;;;=;=;==;JSESSIONID==B" + token + b";;"])
        self.expect_decision([b"JSESSIONID = B" + token])  # white space around the name
        self.expect_decision([b"jsessionid=B" + token])  # the name is case-sensitive

        # ;jsessionid= in the path: garbage, a valid route, an unknown route, and the
        # cookie before the path.
        token = self.token()
        for path in (b"/x;jsessionid=", b"/x;jsessionid=;jsessionid=",
                     b"/x;jsessionid=!!$$~~*", b"/x;jsessionid=\"B" + token,
                     b"/x;jsessionid=" + b"B" * 300, b"/x;jsessionid",
                     b"/;jsessionid=\xff\xfe" + token, b"/x;JSESSIONID=B" + token,
                     b"/x;jsessionid=B" + token + b"?jsessionid=C" + token,
                     b"/x?;jsessionid=C" + token):
            self.expect_decision(path=path)
        answer = self.expect_decision(path=b"/cart;jsessionid=C" + token)
        self.assertEqual((answer.reason, answer.server), ("sticky", "app-c"))
        answer = self.expect_decision(path=b"/cart;jsessionid=Z" + token + b"/more")
        self.assertEqual(answer.reason, "backup")
        answer = self.expect_decision([b"JSESSIONID=D" + token],
                                      path=b"/cart;jsessionid=C" + token)
        self.assertEqual((answer.reason, answer.server), ("sticky", "app-d"))

        self.assertGreater(self.checked, 300)
        # Still serving, with the same workers.
        session = self.new_session(self.nginx.port)
        self.follow(self.nginx.port, session, "sticky", session.owner)
        self.assert_workers_alive(self.nginx, self.workers)


    def test_path_session_is_read_as_sent(self):
        """The ;jsessionid= path parameter is the one the client sent and the
        application reads (the demo backend, Tomcat and Resin parse the raw request
        target), as clusterctl route reads it: not one that appears only once nginx
        has decoded percent-escapes, so that every web server and the sidecar agree."""
        token = self.token()
        for path in (b"/x;jsessionid=%43" + token,  # the application's id is "%43..."
                     b"/x%3Bjsessionid=C" + token,  # the application sees no session
                     b"/x;jsessionid%3DC" + token):
            answer = self.expect_decision(path=path)
            self.assertNotEqual(answer.reason, "sticky", f"{path!r}: {answer!r}")
        self.assert_workers_alive(self.nginx, self.workers)


# =============================================================================
SHOP_UPSTREAM = """\
    upstream shop {{
        cluster_balance {view} mode=route;
        server 127.0.0.1:{port};
        keepalive 8;
    }}

"""
SHOP_LOCATION = """\
        location /shop/ {
            proxy_pass http://shop;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Cluster-Route $cluster_route;
            add_header X-Cluster-Route-Reason $cluster_route_reason always;
        }

"""


class MultiClusterTest(RobustTestCase):
    """Two upstream blocks on two independent clusters: each location goes to its
    own cluster only, and a change in one cluster does nothing to the other."""

    def test_two_clusters_behind_one_nginx(self):
        cluster = self.start_site()
        shop = Cluster(1)  # a second cluster: one sidecar and its demo backend
        self.addCleanup(shop.close)
        self.addCleanup(self.dump_logs_on_failure, shop)
        os.chmod(shop.dir, 0o755)  # nginx's workers read its view
        shop.start_all()
        shop.wait_states({"s0": "up"})
        self.wait_store(shop, [0])
        shop_server = shop.servers[0]
        start_backend(shop, shop_server, "A")

        def add_shop(text):
            text = replace_exactly(text, "    server {\n", SHOP_UPSTREAM.format(
                view=shop_server.view_file, port=shop_server.http_port) + "    server {\n")
            return replace_exactly(text, "        location / {\n",
                                   SHOP_LOCATION + "        location / {\n")

        nginx = self.start_nginx(cluster, edit=add_shop)
        workers = nginx.workers()
        for path in ("/static", "/shop/static"):
            self.wait_steady(lambda: get(nginx.port, path).reason, {"balanced"},
                             f"nginx to follow the view for {path}")

        shop_sessions = []
        app_sessions = []
        for _ in range(10):
            session = self.new_session(nginx.port, "/shop/cart")
            self.assertEqual(session.owner, "s0", session)
            self.assertTrue(session.id.startswith("A"), session)  # $cluster_route of shop
            shop_sessions.append(session)
            session = self.new_session(nginx.port, "/")
            self.assertIn(session.owner, DEMO_SERVERS, session)
            self.assertEqual(session.id[0], ROUTE_CHARS[DEMO_SERVERS.index(session.owner)])
            app_sessions.append(session)
        for session in shop_sessions:
            self.follow(nginx.port, session, "sticky", "s0", "/shop/cart")
        for session in app_sessions:
            self.follow(nginx.port, session, "sticky", session.owner, "/")
        # A session of the first cluster sent to the shop: its route character names
        # no server there (or s0 for 'A'), and the shop's own view decides.
        for session in app_sessions:
            answer = self.assert_answer(get(nginx.port, "/shop/cart", session.cookie),
                                        server="s0")
            self.assertEqual(answer.reason, route_of(shop_server.view_file,
                                                     cookie=session.cookie)[0])

        # Drain a server of the first cluster: its sessions stay, new ones avoid it,
        # and the shop does not notice.
        drained = app_sessions[0].owner
        cluster.server("app-a").post(f"/servers/{drained}/drain")
        cluster.wait_states({drained: "draining"})
        shop_view_before = read_view(shop_server.view_file)["servers"]
        for _ in range(20):
            self.assertNotEqual(self.new_session(nginx.port, "/").owner, drained)
            session = self.new_session(nginx.port, "/shop/cart")
            self.assertEqual(session.owner, "s0")
            self.follow(nginx.port, session, "sticky", "s0", "/shop/cart")
        for session in app_sessions:
            self.follow(nginx.port, session, "sticky", session.owner, "/")
        for session in shop_sessions:
            self.follow(nginx.port, session, "sticky", "s0", "/shop/cart")
        self.assertEqual(read_view(shop_server.view_file)["servers"], shop_view_before)
        self.assertEqual(list(shop_view_before), ["s0"])
        self.assert_workers_alive(nginx, workers)


# =============================================================================
class NextUpstreamTest(RobustTestCase):
    """A backend that dies while its sidecar still says it is up: nginx retries
    (proxy_next_upstream) on the session's backup, exactly the server the view
    names once the sidecar is down too, never on the failed server."""

    SESSIONS = 16

    def test_retry_follows_the_backup_order(self):
        cluster = self.start_site()
        # max_fails=0: no passive failure memory, so that every request of the failed
        # server's sessions goes through proxy_next_upstream's retry.
        nginx = self.start_nginx(cluster, edit=lambda text: re.sub(
            r"(server 127\.0\.0\.1:\d+);", r"\1 max_fails=0;", text))
        self.wait_steady(lambda: get(nginx.port, "/static").reason, {"balanced"},
                         "nginx to follow the view")
        workers = nginx.workers()
        view = cluster.server("app-e").view_file
        failed = cluster.server("app-d")  # a spoke: the store does not move
        sessions = [Session("D" + secrets.token_urlsafe(16), "app-d", 0)
                    for _ in range(self.SESSIONS)]
        for session in sessions:
            self.follow(nginx.port, session, "sticky", "app-d")

        # Only the backend dies; the view still says app-d is up.
        cluster.kill_backend(failed)
        self.assertEqual(read_view(view)["servers"]["app-d"]["state"], "up")
        retried_to = {}
        for session in sessions:
            self.assertEqual(route_of(view, cookie=session.cookie), ("sticky", "app-d"))
            answer = self.follow(nginx.port, session, "backup")
            self.assertNotEqual(answer.server, "app-d")
            retried_to[session.id] = answer.server
            # The same server on every retry of the session.
            self.follow(nginx.port, session, "backup", answer.server)
        self.assertGreater(len(set(retried_to.values())), 1,
                           f"{self.SESSIONS} sessions all have the same backup: {retried_to}")
        for _ in range(20):  # new sessions too are retried elsewhere
            answer = self.assert_answer(get(nginx.port, "/"), what="a new session")
            self.assertNotEqual(answer.server, "app-d")

        # Now the sidecar dies as well: the view says down, and every session goes
        # to its backup at once, the one its retries went to.
        failed.kill()
        cluster.wait_states({"app-d": "down"})
        for session in sessions:
            reason, server = route_of(view, cookie=session.cookie)
            self.assertEqual((reason, server), ("backup", retried_to[session.id]), session)
            self.follow(nginx.port, session, "backup", server)
        self.assert_workers_alive(nginx, workers)

    def test_a_dead_application_is_not_waited_for_again(self):
        """nginx's passive failure handling (max_fails=1, fail_timeout=10s by
        default) remembers a server line whose application failed while the view
        still says it is up: each worker tries it once, not on every request."""
        cluster = self.start_site()
        nginx = self.start_nginx(cluster)
        self.wait_steady(lambda: get(nginx.port, "/static").reason, {"balanced"},
                         "nginx to follow the view")
        failed = cluster.server("app-d")
        cluster.kill_backend(failed)
        # In the application's place: a listener that counts the connections nginx
        # makes and closes each at once, as a crashing application would.
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", failed.http_port))
        listener.listen(64)
        self.addCleanup(listener.close)
        accepted = []

        def accept():
            while True:
                try:
                    connection, _ = listener.accept()
                except OSError:
                    return  # closed at the end of the test
                accepted.append(time.monotonic())
                connection.close()

        threading.Thread(target=accept, daemon=True).start()
        started = time.monotonic()
        sessions = [Session("D" + secrets.token_urlsafe(16), "app-d", 0) for _ in range(16)]
        for _ in range(3):
            for session in sessions:
                answer = self.follow(nginx.port, session, "backup")
                self.assertNotEqual(answer.server, "app-d")
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 10, "all within one fail_timeout")
        self.assertGreaterEqual(len(accepted), 1, "the failed line was tried")
        self.assertLessEqual(len(accepted), 2, f"tried once per worker, not per request: "
                                               f"{len(accepted)} connections for 48 requests")


# =============================================================================
class ConfigTest(unittest.TestCase):
    """Configurations nginx must refuse at `nginx -t`, with a line saying why,
    rather than run with the module half active."""

    def setUp(self):
        self.cluster = DemoCluster()  # files only: no process is started
        self.addCleanup(self.cluster.close)

    def check(self, edit):
        nginx = Nginx(self.cluster, self.cluster.server("app-e"), edit=edit)
        return subprocess.run([NGINX, "-t", "-p", nginx.dir, "-c", nginx.conf_path],
                              capture_output=True, text=True, timeout=30,
                              env=nginx_environment())

    def assert_refused(self, edit, why):
        result = self.check(edit)
        self.assertNotEqual(result.returncode, 0, result.stderr)
        self.assertIn(why, result.stderr)

    def test_the_example_passes(self):
        result = self.check(None)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_refused_configurations(self):
        def after_balance(line):
            return lambda text: text.replace("mode=route cookie=JSESSIONID;",
                                             f"mode=route cookie=JSESSIONID;\n        {line}")

        self.assert_refused(after_balance("least_conn;"), "another balancing method")
        self.assert_refused(after_balance("hash $cookie_x consistent;"),
                            "another balancing method")
        self.assert_refused(lambda text: text.replace("        cluster_balance ",
                                                      "        keepalive 8;\n        cluster_balance "),
                            "must come before")
        self.assert_refused(lambda text: re.sub(r"(server 127\.0\.0\.1:\d+);",
                                                r"\1 max_conns=10;", text, count=1),
                            "max_conns")
        self.assert_refused(lambda text: re.sub(r"(server 127\.0\.0\.1:\d+);",
                                                r"\1 backup;", text, count=1),
                            "backup")
        self.assert_refused(lambda text: text.replace("mode=route", "mode=learn"),
                            "not implemented")
        self.assert_refused(after_balance("cluster_balance_cookie name=X;"),
                            "mode=insert only")
        self.assert_refused(lambda text: text.replace("mode=route", "mode=insert").replace(
            "cookie=JSESSIONID;", ";\n        cluster_balance_cookie samesite=none;"),
            "needs secure")


# =============================================================================
class TlsUpstreamTest(RobustTestCase):
    """cluster_balance in front of HTTPS servers (TLS session reuse goes through the
    module's peer data), and $upstream_addr after a retry."""

    def test_https_upstream_is_sticky_and_retries_are_logged_per_try(self):
        cluster = self.start_site()
        key = os.path.join(cluster.dir, "tls.key")
        cert = os.path.join(cluster.dir, "tls.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-subj", "/CN=127.0.0.1", "-days", "1", "-keyout", key, "-out", cert],
                       check=True, capture_output=True, timeout=60)
        os.chmod(key, 0o644)
        tls_ports = free_ports(len(DEMO_SERVERS))
        closed_port = free_ports(1)[0]  # server line of app-b: nobody listens there
        lines = [f"server 127.0.0.1:{closed_port if i == 1 else port} max_fails=0;"
                 for i, port in enumerate(tls_ports)]
        view = cluster.server("app-e").view_file

        def add_tls(text):
            backends = "".join(
                f"    server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {cert}; "
                f"ssl_certificate_key {key}; location / {{ return 200 \"tls-{i}\\n\"; }} }}\n"
                for i, port in enumerate(tls_ports))
            upstream = ("    upstream tls_app {\n"
                        f"        cluster_balance {view} mode=route;\n"
                        + "".join(f"        {line}\n" for line in lines)
                        + "        keepalive 8;\n    }\n")
            location = ("        location /tls/ {\n"
                        "            proxy_pass https://tls_app;\n"
                        "            proxy_http_version 1.1;\n"
                        "            proxy_set_header Connection \"\";\n"
                        "            proxy_ssl_session_reuse on;\n"
                        "            add_header X-Upstream-Addr $upstream_addr always;\n"
                        "            add_header X-Cluster-Route-Reason $cluster_route_reason always;\n"
                        "        }\n")
            text = text.replace("    server {\n        listen", upstream + backends
                                + "    server {\n        listen", 1)
            return text.replace("        location / {", location + "        location / {", 1)

        nginx = self.start_nginx(cluster, edit=add_tls)
        self.wait_steady(lambda: get(nginx.port, "/static").reason, {"balanced"},
                         "nginx to follow the view")
        workers = nginx.workers()
        for char, line in zip("ACDE", (0, 2, 3, 4)):
            expected = f"tls-{line}"
            cookie = f"JSESSIONID={char}{secrets.token_urlsafe(12)}"
            for _ in range(4):  # new TLS connections and reused sessions alike
                status, headers, body = http_get(nginx.port, "/tls/", cookie)
                self.assertEqual((status, body.strip()), (200, expected), headers)
                self.assertEqual(headers.get("x-cluster-route-reason"), "sticky")
        # app-b is up in the view but its line refuses connections: nginx retries on
        # the session's backup, and $upstream_addr names both tries.
        cookie = f"JSESSIONID=B{secrets.token_urlsafe(12)}"
        _, backup = route_of(view, cookie=cookie)
        self.assertEqual(route_of(view, cookie=cookie)[0], "sticky")
        status, headers, body = http_get(nginx.port, "/tls/", cookie)
        self.assertEqual(status, 200, body)
        self.assertEqual(headers.get("x-cluster-route-reason"), "backup")
        tried = [address.strip() for address in headers["x-upstream-addr"].split(",")]
        self.assertEqual(tried[0], f"127.0.0.1:{closed_port}", headers)
        self.assertEqual(len(tried), 2, headers)
        self.assertNotEqual(tried[1], tried[0])
        self.assertIn(body.strip(), {f"tls-{i}" for i in (0, 2, 3, 4)})
        self.assert_workers_alive(nginx, workers)


if __name__ == "__main__":
    unittest.main()
