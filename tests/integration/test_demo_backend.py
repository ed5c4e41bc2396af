"""The demo backend (demo/cluster-demo-backend) against a real memcached.

Needs Debian's python3 (python3-pymemcache) and memcached (/usr/bin/memcached); runs
from this folder like the other integration tests:
/usr/bin/python3 -m unittest -v test_demo_backend
"""

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import unittest

from pymemcache.client.base import Client

from sidecar_cluster import free_ports, wait_for

BACKEND = os.environ.get("CLUSTER_DEMO_BACKEND", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "demo", "cluster-demo-backend"))
MEMCACHED = "/usr/bin/memcached"
NEW_COOKIE = re.compile(r"JSESSIONID=([A-Za-z0-9_-]{23}); Path=/; HttpOnly")


class Response:
    def __init__(self, response):
        self.status = response.status
        self.headers = response.headers
        self.body = response.read().decode()

    def new_session(self):
        """The id of the session the response created (asserts that it made one)."""
        match = NEW_COOKIE.fullmatch(self.headers.get("Set-Cookie", ""))
        assert match, f"no new session cookie in {self.headers.items()}"
        return match.group(1)


def request(port, path="/", headers=None, connection=None):
    """One GET, on `connection` or on a connection of its own."""
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers or {})
        return Response(connection.getresponse())
    finally:
        if own:
            connection.close()


def raw_request(port, data):
    """Sends bytes as they are; the parsed response, or None when the answer is not
    HTTP (http.server answers some garbage HTTP/0.9-style, without a status line)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()
        except http.client.HTTPException:
            return None
        return Response(response)


def accepts(port):
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


class DemoBackendTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cluster-balance-demo-backend-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.memcached_port, self.port = free_ports(2)
        self.memcached = self.start_memcached()
        self.backend = self.start_backend("app-a", self.port, "--route-char", "B")

    # -- processes: every one is killed by PID when the test ends, pass or fail
    def spawn(self, args, log_path):
        with open(log_path, "ab") as log:
            process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT)
        process.log_path = log_path
        self.addCleanup(self.kill, process)
        return process

    @staticmethod
    def kill(process):
        process.kill()
        process.wait(timeout=10)

    def start_memcached(self):
        # memcached refuses to run as root unless told which user to be.
        user = ["-u", "root"] if os.geteuid() == 0 else []
        process = self.spawn([MEMCACHED, "-l", "127.0.0.1", "-p", str(self.memcached_port),
                              "-U", "0", *user], os.path.join(self.dir, "memcached.log"))
        wait_for(lambda: self.running(process, "memcached") and accepts(self.memcached_port),
                 10, "memcached to accept connections")
        return process

    def start_backend(self, server_id, port, *options):
        log_path = os.path.join(self.dir, f"{server_id}.log")
        process = self.spawn([BACKEND, "--listen", f"127.0.0.1:{port}", "--server-id", server_id,
                              "--memcached", f"127.0.0.1:{self.memcached_port}", *options],
                             log_path)
        wait_for(lambda: self.running(process, server_id)
                 and request(port, "/health").status == 200, 10, f"{server_id} to answer /health")
        return process

    def running(self, process, what):
        """True while the process runs; fails the test at once when it has exited."""
        if process.poll() is not None:
            self.fail(f"{what} exited with status {process.returncode}\n"
                      f"{self.log_of(process)[-2000:]}")
        return True

    @staticmethod
    def log_of(process):
        with open(process.log_path, errors="replace") as f:
            return f.read()

    def assert_serving(self):
        self.running(self.backend, "app-a")
        health = request(self.port, "/health")
        self.assertEqual((health.status, health.body), (200, "ok\n"))

    # -- sessions
    def test_a_new_session_takes_the_route_of_the_request_and_counts_up(self):
        first = request(self.port, "/", {"X-Cluster-Route": "C"})
        self.assertEqual(first.status, 200)
        session = first.new_session()
        self.assertTrue(session.startswith("C"), session)
        self.assertEqual(first.headers["Content-Type"], "text/plain")
        self.assertEqual(first.headers["X-Server-Id"], "app-a")
        for count in (1, 2, 3):
            response = first if count == 1 else request(
                self.port, "/any/path?q=1", {"Cookie": f"other=1; JSESSIONID={session}"})
            self.assertEqual(response.status, 200)
            self.assertEqual(response.body,
                             f"server=app-a route=B session={session} count={count}\n")
            self.assertEqual(response.headers["X-Session-Count"], str(count))
            if count > 1:
                self.assertIsNone(response.headers["Set-Cookie"])
        store = Client(("127.0.0.1", self.memcached_port), connect_timeout=5, timeout=5)
        self.addCleanup(store.close)
        self.assertEqual(store.get(f"session:{session}"), b"3")
        # No access log: the startup line is all.
        self.assertEqual(self.log_of(self.backend),
                         f"cluster-demo-backend app-a listening on 127.0.0.1:{self.port}\n")

    def test_the_route_of_a_new_session_falls_back_to_the_option_then_to_A(self):
        for route in ("CC", "!", ""):
            response = request(self.port, "/", {"X-Cluster-Route": route})
            self.assertTrue(response.new_session().startswith("B"), route)
        self.assertTrue(request(self.port).new_session().startswith("B"))

        port = free_ports(1)[0]
        self.start_backend("app-z", port)
        response = request(port)
        session = response.new_session()
        self.assertTrue(session.startswith("A"), session)
        self.assertEqual(response.body, f"server=app-z route=- session={session} count=1\n")

    def test_a_jsessionid_path_parameter_names_the_session(self):
        session = request(self.port).new_session()
        response = request(self.port, f"/cart;jsessionid={session}?x=1")
        self.assertEqual(response.status, 200)
        self.assertIsNone(response.headers["Set-Cookie"])
        self.assertIn(f"session={session} count=2\n", response.body)
        # The cookie comes first; a parameter in the query is not a path parameter.
        response = request(self.port, "/cart;jsessionid=Bother",
                           {"Cookie": f"JSESSIONID={session}"})
        self.assertIn(f"session={session} count=3\n", response.body)
        response = request(self.port, f"/cart?;jsessionid={session}")
        self.assertNotEqual(response.new_session(), session)

    def test_garbage_gets_a_fresh_session_and_the_server_keeps_serving(self):
        session = request(self.port).new_session()
        big = b"X-Big: " + b"y" * 10240 + b"\r\nBad\0Header\r\n"  # parsed, ignored
        for value in (b"C\0abc", b"C" + b"x" * 10240, b'"Cabc', b'Ca"bc', b'""', b"C\xff", b""):
            for extra in (b"", big):
                response = raw_request(self.port, b"GET / HTTP/1.1\r\nHost: x\r\n" + extra
                                       + b"Cookie: JSESSIONID=" + value + b"\r\n\r\n")
                self.assertEqual(response.status, 200, value[:20])
                self.assertTrue(response.new_session().startswith("B"))
                self.assert_serving()
        # Unparseable requests: a 400 (or an HTTP/0.9-style answer), never a crash.
        for data in (b"\0\0\0\r\n\r\n", b"GET /\0 HTTP/1.1\0\r\n\r\n", b"\xff\xfe\r\n\r\n",
                     b"GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                     b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                     b"GET / HTTP/1.1\r\n" + b"X: 1\r\n" * 200 + b"\r\n"):
            response = raw_request(self.port, data)
            if response is not None:
                self.assertIn(response.status, (400, 431), data[:30])
            self.assert_serving()
        self.assertNotIn("Traceback", self.log_of(self.backend))
        response = request(self.port, "/", {"Cookie": f"JSESSIONID={session}"})
        self.assertIn(f"session={session} count=2\n", response.body)

    def test_many_concurrent_keep_alive_connections_count_every_request(self):
        # A session the store does not know yet: the first requests race to create it.
        session = "Bconcurrent-" + os.urandom(6).hex()
        counts, errors = [], []
        start = threading.Barrier(64, timeout=30)

        def client():
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                connection.connect()
                start.wait()  # all first requests at once: they race to create the counter
                sockets = set()
                for _ in range(10):
                    response = request(self.port, "/", {"Cookie": f"JSESSIONID={session}"},
                                       connection)
                    sockets.add(id(connection.sock))
                    counts.append(int(response.headers["X-Session-Count"]))
                if len(sockets) != 1:
                    errors.append("the connection was not kept alive")
            except Exception as error:  # reported by the main thread
                errors.append(repr(error))
            finally:
                connection.close()

        threads = [threading.Thread(target=client) for _ in range(64)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        self.assertEqual(errors, [])
        self.assertEqual(sorted(counts), list(range(1, 641)))

    # -- the store
    def test_a_store_that_is_down_gets_503_and_the_server_lives_on(self):
        self.kill(self.memcached)
        response = request(self.port)
        self.assertEqual(response.status, 503)
        self.assertTrue(response.body.startswith("store unavailable: "), response.body)
        self.assertEqual(response.body.count("\n"), 1, response.body)
        self.assert_serving()
        static = request(self.port, "/static")
        self.assertEqual((static.status, static.body), (200, "server=app-a\n"))
        log = self.log_of(self.backend)
        self.assertEqual(log.count("store unavailable: "), 1, log)
        self.assertNotIn("Traceback", log)

    def test_a_restarted_store_is_used_at_once(self):
        # The backend keeps its store connection open between requests; the store's
        # restart must not cost the next request.
        session = request(self.port).new_session()
        self.kill(self.memcached)
        self.memcached = self.start_memcached()
        response = request(self.port, "/", {"Cookie": f"JSESSIONID={session}"})
        self.assertEqual(response.status, 200, response.body)
        self.assertIn(f"session={session} count=1\n", response.body)  # a new, empty store

    # -- the process
    def test_sigterm_and_sigint_stop_it_cleanly(self):
        for number, server_id in ((signal.SIGTERM, "app-t"), (signal.SIGINT, "app-i")):
            port = free_ports(1)[0]
            pid_file = os.path.join(self.dir, f"{server_id}.pid")
            backend = self.start_backend(server_id, port, "--pid-file", pid_file)
            with open(pid_file) as f:
                self.assertEqual(f.read(), f"{backend.pid}\n")
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            self.addCleanup(connection.close)
            request(port, "/", connection=connection)  # a kept-alive connection stays open
            backend.send_signal(number)
            self.assertEqual(backend.wait(timeout=10), 0, self.log_of(backend))
            self.assertFalse(os.path.exists(pid_file))


if __name__ == "__main__":
    unittest.main()
