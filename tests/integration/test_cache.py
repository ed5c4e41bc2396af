"""The store over the memcached text protocol, with real clients (issue 4).

Needs Debian's python3 (python3-pymemcache), memccapable (libmemcached-tools) and
php-cli with php-memcached; tests/CMakeLists.txt runs this file with /usr/bin/python3.
"""

import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheClientError, MemcacheError, MemcacheServerError

from sidecar_cluster import CLUSTERCTL, Cluster, wait_for

MiB = 1024 * 1024
WEB_MAX = 64 * 1024  # max_entry_size of the extra cache "web"


def client(server, **kwargs):
    return Client(("127.0.0.1", server.memcached_port), connect_timeout=5, timeout=5,
                  default_noreply=False, **kwargs)


def attempt(operation):
    """The operation's result, or None when the store answered an error (not ready)."""
    try:
        return operation()
    except (MemcacheError, OSError):
        return None


class Raw:
    """One memcached connection spoken to byte for byte."""

    def __init__(self, server):
        self.sock = socket.create_connection(("127.0.0.1", server.memcached_port), timeout=5)
        self.buffer = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def read_until(self, *endings):
        while not any(self.buffer.endswith(e) for e in endings):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed; got {self.buffer[:300]!r}")
            self.buffer += chunk
        out, self.buffer = self.buffer, b""
        return out

    def line(self, data):
        """Sends `data`, returns the one-line reply."""
        self.send(data)
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed; got {self.buffer[:300]!r}")
            self.buffer += chunk
        out, _, self.buffer = self.buffer.partition(b"\r\n")
        return out + b"\r\n"

    def retrieval(self, data):
        self.send(data)
        return self.read_until(b"END\r\n", b"ERROR\r\n")

    def until_closed(self):
        """Everything until the server closes; raises if it does not within the timeout."""
        data = self.buffer
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return data
                data += chunk
        except ConnectionResetError:
            return data


def store_summary(server):
    """(cache, records, tombstones, bytes) of each cache in the server's store."""
    return sorted((c["name"], c["records"], c["tombstones"], c["bytes"])
                  for c in server.status()["store"]["caches"])


def log_since(server, offset):
    return server.log()[offset:]


def log_size(server):
    return len(server.log()) if os.path.exists(server.log_path) else 0


class CacheTestCase(unittest.TestCase):
    def make_cluster(self, count, extra_config="", **options):
        cluster = Cluster(count, **options)
        if extra_config:
            with open(cluster.config_path, "a") as f:
                f.write(extra_config)
        self.addCleanup(cluster.close)
        self.addCleanup(self.dump_logs_on_failure, cluster)
        return cluster

    def dump_logs_on_failure(self, cluster):
        outcome = getattr(self, "_outcome", None)
        errors = getattr(getattr(outcome, "result", None), "errors", []) + \
            getattr(getattr(outcome, "result", None), "failures", [])
        if any(test is self for test, _ in errors):
            for s in cluster.servers:
                if os.path.exists(s.log_path):
                    sys.stderr.write(f"--- {s.id} log (tail)\n{s.log()[-4000:]}\n")

    def wait_store(self, servers, timeout=15):
        """Bounded polling until a set succeeds through each of `servers`."""
        for s in servers:
            c = client(s)
            wait_for(lambda: attempt(lambda: c.set(f"probe-{s.id}", b"1")), timeout,
                     f"a set through {s.id} to succeed")
            c.close()

    def wait_settled(self, cluster, timeout=10):
        """Until every running server sees the same triad servers' stores ready: all
        the running ones. (Right after a start they learn it at different times.)"""
        live = [s for s in cluster.servers if s.process and s.process.poll() is None]
        triad = sorted(s.index for s in live if s.index is not None and s.index < 3)
        wait_for(lambda: all(s.status()["store"]["ready_triad"] == triad for s in live),
                 timeout, f"every server to see the stores of {triad} ready")

    def must(self, operation, what, timeout=10):
        """Retries an operation that may meet a server that just died (bounded)."""
        result = {}

        def once():
            try:
                result["value"] = operation()
                return True
            except (MemcacheServerError, OSError):
                return False
        wait_for(once, timeout, what)
        return result["value"]


# =============================================================================
class SessionDrainTest(CacheTestCase):
    """Session-aware drain (issue 14): `clusterctl drain ID --wait` returns when the
    server holds no live session that would still be routed to it."""

    def sessions_of(self, observer, sid):
        return next(s["sessions"] for s in observer.status()["servers"] if s["id"] == sid)

    def test_drain_wait_returns_within_a_second_of_the_last_session(self):
        c = self.make_cluster(5).start_all()
        c.wait_states({s.id: "up" for s in c.servers})
        self.wait_settled(c)
        spoke, drained = c.servers[3], c.servers[4]
        route = next(s["route"] for s in spoke.status()["servers"] if s["id"] == drained.id)
        mc = client(spoke)
        self.addCleanup(mc.close)
        keys = [f"session:{route}{i:04d}-drain" for i in range(200)]
        for key in keys[50:]:
            self.assertTrue(mc.set(key, b"cart", expire=600))
        for key in keys[:50]:  # these clients leave without logging out: they expire
            self.assertTrue(mc.set(key, b"cart", expire=6))
        self.assertTrue(mc.set("session:A-not-counted-for-s4", b"cart", expire=600))
        self.assertTrue(mc.set(f"{route}-another-cache", b"v", expire=600))
        wait_for(lambda: self.sessions_of(spoke, drained.id) == 200, 10,
                 "the spoke to count 200 live sessions of s4")

        waiter = subprocess.Popen(
            [CLUSTERCTL, "--admin", f"127.0.0.1:{spoke.admin_port}", "drain", drained.id,
             "--wait", "--timeout", "60s"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: waiter.poll() is None and waiter.kill())
        lines = []  # what it printed so far, read as it prints
        reader = threading.Thread(target=lambda: lines.extend(iter(waiter.stdout.readline, "")),
                                  daemon=True)
        reader.start()
        c.wait_states({drained.id: "draining"})
        for key in keys[50:-1]:  # these log out one by one
            self.assertTrue(mc.delete(key))
        wait_for(lambda: f"{drained.id}: 1 live session\n" in lines, 15,
                 "drain --wait to count down to the last session (the 50 short ones expired)")
        self.assertIsNone(waiter.poll(), "drain --wait returned with a session left")
        last_gone = time.monotonic()
        self.assertTrue(mc.delete(keys[-1]))
        waiter.wait(timeout=30)
        returned_after = time.monotonic() - last_gone
        reader.join(timeout=10)
        out, err = "".join(lines), waiter.stderr.read()
        self.assertEqual(waiter.returncode, 0, err)
        self.assertLess(returned_after, 1.0, out)
        lines = out.splitlines()
        self.assertEqual(lines[0], f"{drained.id}: draining")
        self.assertEqual(lines[-1], f"{drained.id}: drained, no live session left")
        counts = [int(line.split()[1]) for line in lines[1:-1] if "live session" in line]
        self.assertTrue(counts and counts[0] <= 200 and counts[-1] == 1, out)
        self.assertEqual(counts, sorted(counts, reverse=True), out)
        # The other server's session and the other cache were never counted, and the
        # drained server still serves what it has: a drain is not a shutdown.
        self.assertEqual(self.sessions_of(spoke, "s0"), 1)
        self.assertEqual(mc.get("session:A-not-counted-for-s4"), b"cart")

    def test_timeout_says_how_many_remain(self):
        c = self.make_cluster(4).start_all()
        c.wait_states({s.id: "up" for s in c.servers})
        self.wait_settled(c)
        spoke = c.servers[3]
        route = next(s["route"] for s in spoke.status()["servers"] if s["id"] == spoke.id)
        mc = client(spoke)
        self.addCleanup(mc.close)
        for i in range(3):
            self.assertTrue(mc.set(f"session:{route}{i}-stays", b"cart", expire=600))
        wait_for(lambda: self.sessions_of(spoke, spoke.id) == 3, 10, "3 sessions of s3")
        result = subprocess.run(
            [CLUSTERCTL, "--admin", f"127.0.0.1:{spoke.admin_port}", "drain", spoke.id,
             "--wait", "--timeout", "1s"], capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        self.assertIn("timed out with 3 live sessions remaining", result.stderr)


# =============================================================================
class MemcapableTest(CacheTestCase):
    def test_memccapable_ascii_passes(self):
        c = self.make_cluster(1).start_all()
        self.wait_store(c.servers)
        result = subprocess.run(
            ["memccapable", "-a", "-t", "10", "-h", "127.0.0.1",
             "-p", str(c.servers[0].memcached_port)],
            capture_output=True, text=True, timeout=120)
        output = result.stdout + result.stderr
        if result.returncode != 0 or "[FAIL]" in output:
            # Name the failing tests with their assertions (-v), one run per test.
            details = []
            for line in output.splitlines():
                if line.strip().startswith("ascii ") and not line.strip().endswith("[pass]"):
                    name = line.split("[")[0].strip()
                    verbose = subprocess.run(
                        ["memccapable", "-a", "-v", "-t", "10", "-T", name, "-h", "127.0.0.1",
                         "-p", str(c.servers[0].memcached_port)],
                        capture_output=True, text=True, timeout=60)
                    details.append(verbose.stdout + verbose.stderr)
            self.fail(f"memccapable exit {result.returncode}:\n{output}\n"
                      + "\n".join(details))
        self.assertIn("All tests passed", output)
        self.assertIsNone(c.servers[0].process.poll())


# =============================================================================
class PymemcacheTest(CacheTestCase):
    EXTRA = f'[cache.web]\nmax_entry_size = "{WEB_MAX // 1024}KiB"\n'

    def exercise(self, writer, reader, p):
        """Every operation, written through `writer` and read through `reader`."""
        w, r = client(writer), client(reader)
        self.addCleanup(w.close)
        self.addCleanup(r.close)

        # set / get / get_many, values with every byte value and a 250-byte key
        binary = bytes(range(256)) * 4
        self.assertTrue(w.set(p + "a", b"alpha"))
        self.assertTrue(w.set(p + "bin", binary, flags=0))
        self.assertEqual(r.get(p + "a"), b"alpha")
        self.assertEqual(r.get(p + "bin"), binary)
        self.assertIsNone(r.get(p + "missing"))
        many = {f"{p}m{i}": f"value-{i}-".encode() * (i + 1) for i in range(20)}
        self.assertEqual(w.set_many(many), [])
        got = r.get_many(list(many) + [p + "missing"])
        self.assertEqual(got, many)
        long_key = (p + "L" * 250)[:250]
        self.assertTrue(w.set(long_key, b"long"))
        self.assertEqual(r.get(long_key), b"long")
        # a reader that holds a copy (a spoke's LRU) sees every later write
        self.assertTrue(w.set(p + "a", b"alpha2"))
        self.assertEqual(r.get(p + "a"), b"alpha2")
        # flags are kept
        raw = Raw(reader)
        self.addCleanup(raw.close)
        self.assertTrue(w.set(p + "flags", b"xy", flags=12345))
        self.assertEqual(raw.retrieval(f"get {p}flags\r\n".encode()),
                         f"VALUE {p}flags 12345 2\r\nxy\r\nEND\r\n".encode())

        # gets + cas, and a race of two clients on two servers
        self.assertTrue(w.set(p + "c", b"v0"))
        v1, cas1 = w.gets(p + "c")
        v2, cas2 = r.gets(p + "c")
        self.assertEqual((v1, v2), (b"v0", b"v0"))
        self.assertEqual(cas1, cas2)
        self.assertTrue(w.cas(p + "c", b"one", cas1))   # STORED
        self.assertFalse(r.cas(p + "c", b"two", cas2))  # EXISTS
        self.assertEqual(r.get(p + "c"), b"one")
        self.assertIsNone(w.cas(p + "nocas", b"x", b"1"))  # NOT_FOUND
        _, cas3 = r.gets(p + "c")
        self.assertNotEqual(cas3, cas1)
        self.assertTrue(r.cas(p + "c", b"three", cas3))
        self.assertEqual(w.get(p + "c"), b"three")
        got = w.gets_many([p + "c", p + "a"])
        self.assertEqual(got[p + "c"][0], b"three")
        self.assertEqual(got[p + "a"][0], b"alpha2")

        # add / replace
        self.assertFalse(w.add(p + "a", b"nope"))
        self.assertTrue(w.add(p + "new", b"added"))
        self.assertEqual(r.get(p + "new"), b"added")
        self.assertFalse(w.replace(p + "absent", b"nope"))
        self.assertIsNone(r.get(p + "absent"))
        self.assertTrue(w.replace(p + "new", b"replaced"))
        self.assertEqual(r.get(p + "new"), b"replaced")

        # append / prepend
        self.assertTrue(w.set(p + "ap", b"mid", flags=7))
        self.assertTrue(w.append(p + "ap", b"-end"))
        self.assertTrue(r.prepend(p + "ap", b"start-"))
        self.assertEqual(raw.retrieval(f"get {p}ap\r\n".encode()),
                         f"VALUE {p}ap 7 13\r\nstart-mid-end\r\nEND\r\n".encode())
        self.assertFalse(w.append(p + "absent", b"x"))
        self.assertFalse(w.prepend(p + "absent", b"x"))
        self.assertIsNone(r.get(p + "absent"))

        # delete
        self.assertTrue(w.delete(p + "new"))
        self.assertIsNone(r.get(p + "new"))
        self.assertFalse(r.delete(p + "new"))
        self.assertTrue(w.add(p + "new", b"again"))  # a deleted key can be added
        self.assertEqual(r.get(p + "new"), b"again")

        # incr / decr
        self.assertTrue(w.set(p + "n", b"10"))
        self.assertEqual(w.incr(p + "n", 5), 15)
        self.assertEqual(r.get(p + "n"), b"15")
        self.assertEqual(r.decr(p + "n", 20), 0)  # stops at zero
        self.assertEqual(w.get(p + "n"), b"0")
        self.assertTrue(w.set(p + "max", b"18446744073709551615"))
        self.assertEqual(r.incr(p + "max", 2), 1)  # wraps at 2^64
        self.assertIsNone(w.incr(p + "absent", 1))
        self.assertIsNone(w.decr(p + "absent", 1))
        self.assertTrue(w.set(p + "text", b"abc"))
        with self.assertRaises(MemcacheClientError) as raised:
            w.incr(p + "text", 1)
        self.assertIn(b"non-numeric", raised.exception.args[0])
        with self.assertRaises(MemcacheClientError):
            r.decr(p + "text", 1)
        self.assertEqual(r.get(p + "text"), b"abc")

        # version, stats (the server's own pid)
        version = w.version()
        self.assertTrue(version and b" " not in version, version)
        self.assertTrue(raw.line(b"version\r\n").startswith(b"VERSION "))
        stats = r.stats()
        self.assertEqual(stats[b"pid"], reader.process.pid)
        for name in (b"uptime", b"curr_items", b"cmd_get", b"cmd_set"):
            self.assertIn(name, stats)

        # noreply: nothing at all is answered, and the writes happen
        self.assertTrue(w.set(p + "nr-del", b"x"))
        raw_w = Raw(writer)
        self.addCleanup(raw_w.close)
        reply = raw_w.retrieval(
            f"set {p}nr 3 0 2 noreply\r\nnr\r\ndelete {p}nr-del noreply\r\n"
            f"incr {p}n 5 noreply\r\nadd {p}nr 0 0 1 noreply\r\nz\r\n"
            f"append {p}nr 0 0 1 noreply\r\n!\r\ntouch {p}nr 0 noreply\r\n"
            f"incr {p}text 1 noreply\r\n"
            f"get {p}nr {p}nr-del {p}n\r\n".encode())
        self.assertEqual(reply, f"VALUE {p}nr 3 3\r\nnr!\r\nVALUE {p}n 0 1\r\n5\r\nEND\r\n"
                         .encode())
        w.set(p + "nr2", b"quiet", noreply=True)
        wait_for(lambda: r.get(p + "nr2") == b"quiet", 5, "a noreply set to be readable")

        # keys over 250 bytes are refused by the server; the connection stays in step
        key251 = "k" * 251
        self.assertEqual(raw.line(f"set {key251} 0 0 1\r\nx\r\n".encode()),
                         b"CLIENT_ERROR bad command line format\r\n")
        self.assertEqual(raw.line(f"get {key251}\r\n".encode()),
                         b"CLIENT_ERROR bad command line format\r\n")
        self.assertEqual(raw.retrieval(f"get {p}a\r\n".encode()),
                         f"VALUE {p}a 0 6\r\nalpha2\r\nEND\r\n".encode())

        # values over 1 MiB are refused, and the failed set removes the old value
        self.assertTrue(w.set(p + "big", b"old"))
        with self.assertRaises(MemcacheServerError) as raised:
            w.set(p + "big", b"x" * (MiB + 1))
        self.assertEqual(raised.exception.args[0], b"object too large for cache")
        self.assertIsNone(r.get(p + "big"))
        self.assertEqual(raw.line(f"set {p}big 0 0 {MiB + 1}\r\n".encode()
                                  + b"y" * (MiB + 1) + b"\r\n"),
                         b"SERVER_ERROR object too large for cache\r\n")
        self.assertEqual(raw.line(b"version\r\n")[:8], b"VERSION ")
        exactly = bytes(random.Random(1).randbytes(MiB))
        self.assertTrue(w.set(p + "big", exactly))  # 1 MiB itself is allowed
        self.assertEqual(r.get(p + "big"), exactly)
        # per cache: "web" takes at most 64 KiB
        self.assertTrue(w.set(f"web:{p}w", b"w" * WEB_MAX))
        self.assertEqual(r.get(f"web:{p}w"), b"w" * WEB_MAX)
        with self.assertRaises(MemcacheServerError):
            w.set(f"web:{p}w2", b"w" * (WEB_MAX + 1))
        self.assertIsNone(r.get(f"web:{p}w2"))
        self.assertTrue(w.set(f"{p}w2", b"w" * (WEB_MAX + 1)))  # default takes it

        # expiry, touch, gat, gats
        self.assertTrue(w.set(p + "e1", b"one", expire=1))
        self.assertTrue(w.set(p + "e2", b"two", expire=1))
        self.assertTrue(w.set(p + "e3", b"three", expire=1))
        self.assertTrue(w.set(p + "e4", b"four", expire=1))
        self.assertEqual(r.get_many([p + "e1", p + "e2", p + "e3", p + "e4"]),
                         {p + "e1": b"one", p + "e2": b"two", p + "e3": b"three",
                          p + "e4": b"four"})
        self.assertTrue(r.touch(p + "e2", 0))  # never expires now
        self.assertFalse(r.touch(p + "absent", 0))
        self.assertEqual(raw.retrieval(f"gat 0 {p}e3 {p}absent\r\n".encode()),
                         f"VALUE {p}e3 0 5\r\nthree\r\nEND\r\n".encode())
        gats = raw.retrieval(f"gats 100 {p}e4\r\n".encode())
        head, _, rest = gats.partition(b"\r\n")
        fields = head.split()
        self.assertEqual(fields[:4], [b"VALUE", f"{p}e4".encode(), b"0", b"4"], gats)
        self.assertEqual(rest, b"four\r\nEND\r\n")
        self.assertTrue(w.cas(p + "e4", b"FOUR", fields[4]))  # gats shows the new cas
        self.assertEqual(raw.retrieval(f"gat 0 {p}e4\r\n".encode()),
                         f"VALUE {p}e4 0 4\r\nFOUR\r\nEND\r\n".encode())
        wait_for(lambda: r.get(p + "e1") is None, 10, "e1 to expire")
        self.assertEqual(r.get_many([p + "e1", p + "e2", p + "e3", p + "e4"]),
                         {p + "e2": b"two", p + "e3": b"three", p + "e4": b"FOUR"})
        self.assertTrue(w.set(p + "past", b"x", expire=-1))  # already expired
        self.assertIsNone(r.get(p + "past"))

        # flush_all of one named cache leaves the others alone
        self.assertTrue(w.set(f"session:{p}s", b"sess"))
        self.assertTrue(w.set(f"web:{p}w", b"web"))
        self.assertTrue(w.set(f"{p}d", b"dflt"))
        self.assertEqual(raw_w.line(b"flush_all session\r\n"), b"OK\r\n")
        self.assertIsNone(r.get(f"session:{p}s"))
        self.assertEqual(r.get(f"web:{p}w"), b"web")
        self.assertEqual(r.get(f"{p}d"), b"dflt")
        self.assertEqual(raw_w.line(b"flush_all nosuchcache\r\n"),
                         b"CLIENT_ERROR no such cache\r\n")
        self.assertTrue(w.flush_all())  # "flush_all 0": cache default
        self.assertIsNone(r.get(f"{p}d"))
        self.assertIsNone(r.get(p + "a"))
        self.assertEqual(r.get(f"web:{p}w"), b"web")
        self.assertTrue(w.set(f"session:{p}s", b"after"))  # a flushed cache takes writes
        self.assertEqual(r.get(f"session:{p}s"), b"after")
        self.assertTrue(w.set(f"{p}d", b"after"))
        self.assertEqual(r.get(f"{p}d"), b"after")

        # garbage and an absurd length close only that connection
        bystander = client(reader)
        self.addCleanup(bystander.close)
        self.assertTrue(bystander.set(p + "by", b"stander"))
        bad = Raw(reader)
        self.addCleanup(bad.close)
        self.assertEqual(bad.line(b"\x00\xff\xfegarbage \x01\r\n"), b"ERROR\r\n")
        self.assertEqual(bad.line(b"SET x 0 0 1\r\n"), b"ERROR\r\n")
        bad.send(b"set x 0 0 99999999999999\r\n" + b"z" * 4096)
        closing = bad.until_closed()
        self.assertTrue(closing.startswith(b"CLIENT_ERROR"), closing)
        self.assertEqual(closing.count(b"\r\n"), 1, closing)
        bad2 = Raw(reader)
        self.addCleanup(bad2.close)
        # a 100 KiB key is refused (a get line may be long, a key may not)
        self.assertEqual(bad2.line(b"get " + b"k" * (100 * 1024) + b"\r\n"),
                         b"CLIENT_ERROR bad command line format\r\n")
        bad2.send(b"get" + (b" " + b"k" * 250) * 5000 + b"\r\n")  # over the 1 MiB limit
        self.assertTrue(bad2.until_closed().endswith(b"CLIENT_ERROR line too long\r\n"))
        self.assertEqual(bystander.get(p + "by"), b"stander")
        self.assertTrue(bystander.set(p + "by", b"still"))
        self.assertEqual(w.get(p + "by"), b"still")
        self.assertIsNone(reader.process.poll())

    def test_single_server(self):
        c = self.make_cluster(1, self.EXTRA).start_all()
        self.wait_store(c.servers)
        self.exercise(c.servers[0], c.servers[0], "one-")

    def test_three_plus_two_through_spokes_and_triad(self):
        c = self.make_cluster(5, self.EXTRA).start_all()
        self.wait_store(c.servers)
        self.wait_settled(c)
        s = c.servers
        self.exercise(s[3], s[4], "spokes-")  # written on one spoke, read on the other
        self.exercise(s[1], s[3], "triad-")   # a triad server and a spoke
        self.exercise(s[4], s[2], "back-")
        for server in s:
            self.assertIsNone(server.process.poll(), server.id)

    # Concurrent read-modify-writes (gets + cas, incr) from clients on every server:
    # the owner of a key serializes them, so no acknowledged update may be lost.

    def test_concurrent_cas_and_incr_in_steady_state(self):
        c = self.make_cluster(5).start_all()
        self.wait_store(c.servers)
        self.wait_settled(c)  # every server knows every triad server's store is ready
        updaters = Updaters(self, c.servers[0], "steady")
        for s in c.servers:
            updaters.add(s)
        updaters.wait_wins(300)
        self.assertEqual(updaters.finish(c.servers[4]), "")

    def test_concurrent_cas_and_incr_as_soon_as_the_store_is_usable(self):
        # Right after start, servers learn of each other's readiness at different
        # times; a key must still have one owner at a time. (Twice: a window.)
        problems = []
        for attempt_number in range(2):
            c = self.make_cluster(5).start_all()
            self.wait_store(c.servers[:1])
            updaters = Updaters(self, c.servers[0], f"start{attempt_number}")
            for s in c.servers:  # each starts as soon as a set through its server works
                updaters.add(s)
            updaters.wait_wins(300)
            problems.append(updaters.finish(c.servers[4]))
            c.close()
        problems = [p for p in problems if p]
        if problems:
            self.fail("\n".join(problems))

    def test_writes_acknowledged_right_after_start_are_read_everywhere(self):
        # Once a set succeeds, the store is usable: what it acknowledges is there
        # for every server, whichever triad server each takes for the owner.
        problems = []
        for attempt_number in range(5):  # the window is short: several starts
            c = self.make_cluster(5).start_all()
            self.wait_store(c.servers[3:4])
            w = client(c.servers[3])
            readers = [client(s) for s in c.servers]
            for i in range(100):
                key = f"early-{i}"
                self.assertTrue(self.must(lambda: w.set(key, key.encode()), f"set {key}"))
                for s, r in zip(c.servers, readers):
                    got = self.must(lambda: r.get(key), f"get {key} through {s.id}")
                    if got != key.encode():
                        problems.append(f"{key} through {s.id}: {got!r}")
            for m in [w, *readers]:
                m.close()
            c.close()
        if problems:
            self.fail(f"{len(problems)} reads missed an acknowledged write: {problems[:10]}")

    def test_concurrent_cas_and_incr_while_a_triad_server_returns(self):
        c = self.make_cluster(5).start_all()
        self.wait_store(c.servers)
        s2 = c.servers[2]
        others = [s for s in c.servers if s is not s2]
        problems = []
        for cycle in range(3):  # the window is short: several returns
            s2.kill()
            wait_for(lambda: all(s.status()["store"]["ready_triad"] == [0, 1] for s in others),
                     10, "every server to see s2 gone")
            updaters = Updaters(self, c.servers[3], f"return{cycle}")
            for s in others:
                updaters.add(s)
            updaters.wait_wins(60)
            s2.start().wait_ready()
            updaters.add(s2)  # it owns keys once ready; the others learn it by heartbeat
            wait_for(lambda: all(s.status()["store"]["ready_triad"] == [0, 1, 2]
                                 for s in c.servers), 10, "every server to see s2 ready")
            updaters.wait_wins(updaters.total() + 100)
            # Stopped before s2 is killed again: no update is in flight then.
            problems.append(updaters.finish(c.servers[4]))
        problems = [p for p in problems if p]
        if problems:
            self.fail("\n".join(problems))


class PipelineTest(CacheTestCase):
    """What applications send in bulk: pymemcache's set_many (noreply) and
    get_many, php-memcached's getMulti, long pipelines of mixed commands. Through a
    spoke and through a triad server (the owner of about a third of the keys)."""

    COUNT = 10000

    def test_bulk_writes_and_reads_through_a_spoke_and_through_the_triad(self):
        c = self.make_cluster(5).start_all()
        self.wait_store(c.servers)
        self.wait_settled(c)
        for server, p in ((c.servers[3], "spoke-"), (c.servers[0], "triad-")):
            with self.subTest(through=server.id):
                self.noreply_run_then_a_get(server, p)
                self.mixed_pipeline(server, p)
                self.many_keys(server, c.servers[4], p)
        for server in c.servers:
            self.assertIsNone(server.process.poll(), server.id)

    def exchange(self, server, request, complete):
        """Sends `request` from a thread while reading the replies (a client that
        sent it all before reading would block both sides once the buffers fill,
        as memcached's would) until complete(replies) holds."""
        raw = Raw(server)
        self.addCleanup(raw.close)
        raw.sock.settimeout(30)
        sender = threading.Thread(target=raw.send, args=(request,), daemon=True)
        sender.start()
        replies = b""
        while not complete(replies):
            chunk = raw.sock.recv(1 << 20)
            if not chunk:
                raise AssertionError(f"connection closed; got {replies[-300:]!r}")
            replies += chunk
        sender.join(30)
        self.assertFalse(sender.is_alive())
        return replies

    def noreply_run_then_a_get(self, server, p):
        # The report: only the first 128 were stored and the get was never answered.
        n = self.COUNT
        request = b"".join(f"set {p}n{i} 0 0 1 noreply\r\nx\r\n".encode() for i in range(n))
        reply = self.exchange(server, request + f"get {p}n{n - 1}\r\n".encode(),
                              lambda r: r.endswith(b"END\r\n"))
        self.assertEqual(reply, f"VALUE {p}n{n - 1} 0 1\r\nx\r\nEND\r\n".encode())
        # Nothing was dropped: every key reads back, from another connection.
        reader = Client(("127.0.0.1", server.memcached_port), connect_timeout=5, timeout=30)
        self.addCleanup(reader.close)
        keys = [f"{p}n{i}" for i in range(n)]
        self.assertEqual(reader.get_many(keys), dict.fromkeys(keys, b"x"))
        # pymemcache's own bulk write (noreply by default), read back on the same
        # connection (which sees its own writes in order, as with memcached) and,
        # once they are all through, on another.
        bulk = {f"{p}b{i}": str(i).encode() for i in range(2000)}
        writer = Client(("127.0.0.1", server.memcached_port), connect_timeout=5, timeout=30)
        self.addCleanup(writer.close)
        self.assertEqual(writer.set_many(bulk), [])
        self.assertEqual(writer.get_many(list(bulk)), bulk)
        self.assertEqual(reader.get_many(list(bulk)), bulk)

    def mixed_pipeline(self, server, p):
        # 10,000 silent writes and 10,000 answered reads, interleaved, plus a few
        # of every other kind.
        n = self.COUNT
        request, expected = [], []
        for i in range(n):
            v = str(i).encode()
            request.append(f"set {p}q{i} 0 0 {len(v)} noreply\r\n".encode() + v + b"\r\n")
            request.append(f"get {p}q{i}\r\n".encode())
            expected.append(f"VALUE {p}q{i} 0 {len(v)}\r\n".encode() + v + b"\r\nEND\r\n")
            if i % 100 == 0:
                request.append(f"incr {p}q{i} 1\r\n".encode())
                request.append(f"delete {p}q{i} noreply\r\n".encode())
                request.append(f"add {p}q{i} 0 0 1\r\nz\r\n".encode())
                expected.append(str(i + 1).encode() + b"\r\nSTORED\r\n")
        request.append(b"version\r\n")
        reply = self.exchange(server, b"".join(request), self.ends_with_version)
        self.assertEqual(reply[:reply.rindex(b"VERSION ")], b"".join(expected))

    @staticmethod
    def ends_with_version(replies):
        return replies.endswith(b"\r\n") and replies.rfind(b"VERSION ") > \
            replies.rfind(b"\r\n", 0, len(replies) - 2)

    def many_keys(self, server, other, p):
        # php-memcached's getMulti / pymemcache's get_many of 20,000 keys: a 140 KB line.
        keys = [f"{p}g{i}" for i in range(20000)]
        present = {k: f"v{i}".encode() for i, k in enumerate(keys) if i % 10 == 0}
        writer = Client(("127.0.0.1", other.memcached_port), connect_timeout=5, timeout=30)
        self.addCleanup(writer.close)
        self.assertEqual(writer.set_many(present, noreply=False), [])
        line = ("get " + " ".join(keys) + "\r\n").encode()
        self.assertGreater(len(line), 140 * 1000)
        reply = self.exchange(server, line + b"version\r\n", self.ends_with_version)
        expected = b"".join(f"VALUE {k} 0 {len(v)}\r\n".encode() + v + b"\r\n"
                            for k, v in present.items()) + b"END\r\n"
        self.assertEqual(reply[:reply.rindex(b"VERSION ")], expected)
        reader = Client(("127.0.0.1", server.memcached_port), connect_timeout=5, timeout=30)
        self.addCleanup(reader.close)
        self.assertEqual(reader.get_many(keys), present)


class Updaters:
    """Clients that increment shared counters, by gets + cas and by incr, again and
    again until finished, counting the updates acknowledged."""

    COUNTERS = 12

    def __init__(self, test, server, name):
        self.name = name
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.wins = {"cas": [0] * self.COUNTERS, "incr": [0] * self.COUNTERS}
        self.errors = []
        self.threads = []
        setup = client(server)
        for i in range(self.COUNTERS):
            test.assertTrue(setup.set(self.cas_key(i), b"0"))
            test.assertTrue(setup.set(self.incr_key(i), b"0"))
        setup.close()
        test.addCleanup(self.stop.set)

    def cas_key(self, i):
        return f"session:{self.name}-counter-{i}"

    def incr_key(self, i):
        return f"{self.name}-hits-{i}"

    def add(self, server):
        thread = threading.Thread(target=self.run, args=(server,), daemon=True)
        thread.start()
        self.threads.append(thread)

    def run(self, server):
        mc = client(server)
        try:
            # Until the store is usable through this server (bounded).
            wait_for(lambda: attempt(lambda: mc.set(f"probe-{server.id}", b"1")), 15,
                     f"a set through {server.id} to succeed")
            while not self.stop.is_set():
                for i in range(self.COUNTERS):
                    while True:  # gets + cas until this client's cas wins
                        value, cas = mc.gets(self.cas_key(i))
                        if value is None:
                            raise AssertionError(f"gets found no {self.cas_key(i)}")
                        if mc.cas(self.cas_key(i), str(int(value) + 1).encode(), cas):
                            break
                    if mc.incr(self.incr_key(i), 1) is None:
                        raise AssertionError(f"incr found no {self.incr_key(i)}")
                    with self.lock:
                        self.wins["cas"][i] += 1
                        self.wins["incr"][i] += 1
        except Exception as error:  # reported by finish()
            self.errors.append(f"{server.id}: {error!r}")
        finally:
            mc.close()

    def total(self):
        with self.lock:
            return sum(self.wins["cas"])

    def wait_wins(self, count):
        wait_for(lambda: self.errors or self.total() >= count, 30, f"{count} updates")

    def finish(self, server):
        """Stops the clients; "" when every counter holds what was acknowledged."""
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
        reader = client(server)
        got = {"cas": [int(reader.get(self.cas_key(i))) for i in range(self.COUNTERS)],
               "incr": [int(reader.get(self.incr_key(i))) for i in range(self.COUNTERS)]}
        reader.close()
        if got == self.wins and not self.errors:
            return ""
        lost = {kind: sum(self.wins[kind]) - sum(got[kind]) for kind in got}
        return (f"{self.name}: of {self.total()} acknowledged cas and incr updates each, "
                f"lost {lost}; per counter acknowledged {self.wins}, read {got}; "
                f"errors {self.errors}")


# =============================================================================
def session_blob():
    """10 KiB, as the PHP script builds it."""
    blob = ""
    i = 0
    while len(blob) < 10240:
        blob += hashlib.sha256(f"blob{i}".encode()).hexdigest()
        i += 1
    return blob[:10240]


PHP_WRITE = r"""<?php
session_id($argv[1]);
if (!session_start()) { fwrite(STDERR, "session_start failed\n"); exit(2); }
$_SESSION['n'] = 42;
$b = ''; for ($i = 0; strlen($b) < 10240; $i++) $b .= hash('sha256', "blob$i");
$_SESSION['blob'] = substr($b, 0, 10240);
if (!session_write_close()) { fwrite(STDERR, "session_write_close failed\n"); exit(3); }
echo "written\n";
"""

PHP_READ = r"""<?php
session_id($argv[1]);
if (!session_start()) { fwrite(STDERR, "session_start failed\n"); exit(2); }
echo json_encode($_SESSION), "\n";
$_SESSION['n'] += 1;
if (!session_write_close()) { fwrite(STDERR, "session_write_close failed\n"); exit(3); }
"""


class PhpSessionTest(CacheTestCase):
    def php(self, cluster, script, server, session_id):
        path = os.path.join(cluster.dir, "script.php")
        with open(path, "w") as f:
            f.write(script)
        return subprocess.run(
            ["php", "-d", "session.save_handler=memcached",
             "-d", f"session.save_path=127.0.0.1:{server.memcached_port}",
             "-d", "memcached.sess_binary_protocol=0",  # the sidecar speaks text only
             "-d", "memcached.sess_prefix=session:",     # into the session cache
             "-d", "memcached.sess_locking=1",
             path, session_id],
            capture_output=True, text=True, timeout=60)

    def test_a_session_survives_the_death_of_its_spoke(self):
        c = self.make_cluster(5).start_all()
        self.wait_store(c.servers)
        self.wait_settled(c)
        spoke_a, spoke_b, triad = c.servers[3], c.servers[4], c.servers[1]
        sid = "itestsession0123456789abcdef"
        written = self.php(c, PHP_WRITE, spoke_a, sid)
        self.assertEqual((written.returncode, written.stdout, written.stderr),
                         (0, "written\n", ""))
        spoke_a.kill()
        read = self.php(c, PHP_READ, spoke_b, sid)
        self.assertEqual(read.returncode, 0, read.stdout + read.stderr)
        self.assertEqual(read.stderr, "")
        self.assertEqual(json.loads(read.stdout), {"n": 42, "blob": session_blob()})
        # The second script wrote n = 43; a triad server serves it too.
        again = self.php(c, PHP_READ, triad, sid)
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr)
        self.assertEqual(json.loads(again.stdout)["n"], 43)
        # Where it lives: the session cache; the lock was released.
        mc = client(spoke_b)
        self.addCleanup(mc.close)
        self.assertIn(b"n|i:44;", mc.get(f"session:{sid}"))
        self.assertIsNone(mc.get(f"session:lock.{sid}"))
        self.assertIsNone(mc.get(f"memc.sess.key.{sid}"))


# =============================================================================
def value_of(key, n):
    digest = hashlib.sha256(key.encode()).digest()
    return (key.encode() + b"|" + digest * (1 + n % 40))[: 16 + (n * 37) % 1500]


class FaultTest(CacheTestCase):
    def test_writes_acknowledged_while_two_triad_servers_die_are_never_lost(self):
        seed = int(os.environ.get("CACHE_FAULT_SEED", time.time_ns() % 1_000_000))
        print(f"\nFaultTest seed {seed} (CACHE_FAULT_SEED={seed} to repeat)", file=sys.stderr)
        rng = random.Random(seed)
        c = self.make_cluster(5).start_all()
        self.wait_store(c.servers)
        self.wait_settled(c)
        spokes = c.servers[3:]
        lock = threading.Lock()
        stored = {}
        counts = {"written": 0, "errors": 0}
        stop = threading.Event()

        def writer(number, spoke):
            mc = client(spoke)
            n = 0
            while not stop.is_set():
                key = f"{'session:' if n % 2 else ''}fault-{number}-{n}"
                value = value_of(key, n)
                n += 1
                try:
                    ok = mc.set(key, value)
                except (MemcacheError, OSError):
                    ok = False
                    mc.close()
                with lock:
                    counts["written"] += 1
                    if ok:
                        stored[key] = value
                    else:
                        counts["errors"] += 1
            mc.close()

        threads = [threading.Thread(target=writer, args=(i, spokes[i % 2]), daemon=True)
                   for i in range(4)]
        for t in threads:
            t.start()
        self.addCleanup(stop.set)

        def stored_at_least(count):
            with lock:
                return len(stored) >= count

        first, second, after = rng.randint(50, 400), rng.randint(50, 400), rng.randint(100, 400)
        victims = rng.sample(c.servers[:3], 2)
        survivor = next(s for s in c.servers[:3] if s not in victims)
        wait_for(lambda: stored_at_least(first), 20, f"{first} writes stored")
        victims[0].kill()
        wait_for(lambda: stored_at_least(first + second), 20, "writes stored after a kill")
        victims[1].kill()
        wait_for(lambda: stored_at_least(first + second + after), 20,
                 "writes stored by the last triad server")
        stop.set()
        for t in threads:
            t.join(timeout=10)
        print(f"FaultTest: killed {victims[0].id} after {first} stored, {victims[1].id} after "
              f"{first + second}; {counts['written']} written, {len(stored)} stored, "
              f"{counts['errors']} errors", file=sys.stderr)

        def lost_through(spoke):
            mc = client(spoke)
            lost = []
            keys = sorted(stored)
            for i in range(0, len(keys), 100):
                batch = keys[i:i + 100]
                got = self.must(lambda: mc.get_many(batch), f"a read through {spoke.id}")
                lost += [k for k in batch if got.get(k) != stored[k]]
            mc.close()
            return lost

        lost = lost_through(spokes[0])
        if lost:
            self.fail(f"{len(lost)} of {len(stored)} lost on {survivor.id} (first: {lost[:5]})")

        offsets = {v.id: log_size(v) for v in victims}
        for v in victims:
            v.start()
        for v in victims:
            wait_for(lambda: "store ready" in log_since(v, offsets[v.id]), 15,
                     f"{v.id} to catch up")
        lost = lost_through(spokes[1])  # the restarted servers own keys again
        if lost:
            self.fail(f"{len(lost)} of {len(stored)} read wrong right after "
                      f"{victims[0].id} and {victims[1].id} said 'store ready' "
                      f"(first: {lost[:5]})")
        # Both sides of each triad connection pull, so the three stores converge
        # (writes that failed may have reached some replicas only: not at once).
        triad = c.servers[:3]
        try:
            wait_for(lambda: len({repr(store_summary(s)) for s in triad}) == 1, 10,
                     "the three triad stores to hold the same records")
        except AssertionError as error:
            self.fail(f"{error}: {({s.id: store_summary(s) for s in triad})}")

        survivor.kill()  # every key is now owned by one of the two that caught up
        probe = client(spokes[0])
        self.addCleanup(probe.close)
        some_key = next(iter(stored))
        wait_for(lambda: attempt(lambda: probe.get(some_key)) == stored[some_key], 10,
                 "the restarted servers to own keys")
        lost = lost_through(spokes[0])
        print(f"FaultTest: written {counts['written']}, stored {len(stored)}, "
              f"lost {len(lost)}", file=sys.stderr)
        if lost:
            self.fail(f"{len(lost)} of {len(stored)} lost on the restarted servers "
                      f"(first: {lost[:5]})")


# =============================================================================
class RecoveryTest(CacheTestCase):
    def write_batch(self, mc, expected, name, count, overwrite=(), delete=()):
        for i in range(count):
            key = f"{'session:' if i % 3 == 0 else ''}{name}-{i}"
            value = value_of(key, i)
            self.assertTrue(self.must(lambda: mc.set(key, value), f"set {key}"))
            expected[key] = value
        for key in overwrite:
            value = b"over-" + name.encode() + b"-" + key.encode()
            self.assertTrue(self.must(lambda: mc.set(key, value), f"set {key}"))
            expected[key] = value
        for key in delete:
            self.assertTrue(self.must(lambda: mc.delete(key), f"delete {key}"))
            expected[key] = None

    def read_all(self, spoke, expected):
        mc = client(spoke)
        self.addCleanup(mc.close)
        keys = sorted(expected)
        wrong = []
        for i in range(0, len(keys), 100):
            batch = keys[i:i + 100]
            got = self.must(lambda: mc.get_many(batch), f"a read through {spoke.id}")
            wrong += [k for k in batch if got.get(k) != expected[k]]
        return wrong

    def restart(self, c, servers):
        offsets = {s.id: log_size(s) for s in servers}
        for s in servers:
            s.start()
        for s in servers:
            wait_for(lambda: "store ready" in log_since(s, offsets[s.id]), 15,
                     f"{s.id} to say store ready")
        self.wait_settled(c)

    def restart_and_compare(self, c, servers, spoke, expected, problems):
        """Restarts `servers` together. Once every server counts them as owners, they
        must have caught up: each triad server holds the same records (count,
        tombstones, bytes per cache) and every key reads as last written."""
        self.restart(c, servers)
        stores = {s.id: store_summary(s) for s in c.servers[:3]}
        wrong = self.read_all(spoke, expected)
        names = " and ".join(s.id for s in servers)
        if len({repr(v) for v in stores.values()}) != 1:
            problems.append(f"restarted {names}: stores differ once they own keys: {stores}")
        if wrong:
            problems.append(f"restarted {names}: {len(wrong)} of {len(expected)} keys read "
                            f"wrong once they own keys (first: {wrong[:5]})")

    def only_owner(self, c, owner, spoke, expected, problems):
        """Kills the other triad servers, reads everything back through `spoke` (so
        from `owner`'s store), writes more, and restarts the others."""
        others = [s for s in c.servers[:3] if s is not owner]
        for s in others:
            s.kill()
        probe = client(spoke)
        self.addCleanup(probe.close)
        some_key = next(k for k, v in expected.items() if v is not None)
        wait_for(lambda: attempt(lambda: probe.get(some_key)) == expected[some_key], 10,
                 f"{owner.id} to own every key")
        wrong = self.read_all(spoke, expected)
        if wrong:
            self.fail("\n".join(problems + [
                f"{len(wrong)} of {len(expected)} records differ on {owner.id} alone "
                f"(first: {wrong[:5]})"]))
        # Writes that the others miss, then they return together.
        keys = sorted(k for k, v in expected.items() if v is not None)
        self.write_batch(probe, expected, f"only-{owner.id}", 100, overwrite=keys[:30],
                         delete=keys[30:50])
        self.restart_and_compare(c, others, spoke, expected, problems)

    def test_missed_writes_and_a_wiped_store_are_caught_up(self):
        # Two spokes: a triad server alone with them still reaches 3 of the 5
        # servers, the quorum it needs to own keys.
        c = self.make_cluster(5).start_all()
        self.wait_store(c.servers)
        self.wait_settled(c)
        s0, s1, s2, spoke, _ = c.servers
        mc = client(spoke)
        self.addCleanup(mc.close)
        expected = {}
        self.write_batch(mc, expected, "a", 300)
        s1.kill()  # misses batch b
        a_keys = sorted(expected)
        self.write_batch(mc, expected, "b", 300, overwrite=a_keys[:60], delete=a_keys[60:100])
        s2.kill()
        shutil.rmtree(os.path.join(s2.data_dir, "store"))
        self.assertTrue(os.path.isdir(s2.data_dir))
        b_keys = sorted(k for k in expected if k not in a_keys)
        self.write_batch(mc, expected, "c", 200, overwrite=b_keys[:40], delete=b_keys[40:70])
        problems = []
        self.restart_and_compare(c, [s1, s2], spoke, expected, problems)
        # Each of the three alone holds every record.
        self.only_owner(c, s1, spoke, expected, problems)
        self.only_owner(c, s2, spoke, expected, problems)
        self.only_owner(c, s0, spoke, expected, problems)
        if problems:
            self.fail("\n".join(problems))

    def test_kill_of_the_whole_triad_loses_no_acknowledged_write(self):
        # durability "replicated" (the default) acknowledges a write once every
        # triad server has applied it, before any disk sync: it is in the
        # operating system's hands, so killing every sidecar process loses
        # nothing. "fsync" must pass the same.
        for durability in (None, "fsync"):
            with self.subTest(durability=durability or "default"):
                c = self.make_cluster(5, durability=durability).start_all()
                self.wait_store(c.servers)
                self.wait_settled(c)
                triad = c.servers[:3]
                self.assertEqual(triad[0].status()["store"]["durability"],
                                 durability or "replicated")
                acked, stop = {}, threading.Event()

                def write(spoke, name):
                    mc = client(spoke)
                    n = 0
                    try:
                        while not stop.is_set():
                            key = f"session:{name}-{n}"
                            value = value_of(key, n)
                            n += 1
                            if mc.set(key, value):
                                acked[key] = value
                    except (MemcacheServerError, OSError):
                        pass  # the triad went while this write was in flight
                    finally:
                        mc.close()

                writers = [threading.Thread(target=write, args=(s, s.id), daemon=True)
                           for s in c.servers[3:]]
                for w in writers:
                    w.start()
                wait_for(lambda: len(acked) >= 300, 30, "300 acknowledged writes")
                for s in triad:  # kill -9, one right after the other, writes in flight
                    s.kill()
                stop.set()
                for w in writers:
                    w.join(timeout=20)
                written = dict(acked)
                self.restart(c, triad)
                wrong = self.read_all(c.servers[3], written)
                self.assertEqual(wrong, [], f"{len(wrong)} of {len(written)} acknowledged "
                                 f"writes lost (first: {wrong[:5]})")
                c.close()

    def test_a_session_rewritten_elsewhere_while_its_spoke_was_away(self):
        c = self.make_cluster(5).start_all()
        self.wait_store(c.servers)
        self.wait_settled(c)
        a, b = c.servers[3], c.servers[4]
        key = "session:failover-0001"
        ma, mb = client(a), client(b)
        self.addCleanup(ma.close)
        self.addCleanup(mb.close)
        self.assertTrue(ma.set(key, b"from A"))
        self.assertEqual(ma.get(key), b"from A")  # A holds a copy
        self.assertEqual(mb.get(key), b"from A")
        a.kill()
        self.assertTrue(mb.set(key, b"from B"))
        a.start().wait_ready()
        ma = client(a)
        self.addCleanup(ma.close)
        wait_for(lambda: attempt(lambda: ma.get(key)) is not None, 10, "A to serve again")
        self.assertEqual(ma.get(key), b"from B")
        # A spoke that was cut off (stopped) while the session changed elsewhere
        # answers with the new value, never its old copy.
        self.assertEqual(mb.get(key), b"from B")
        b.signal(signal.SIGSTOP)
        self.assertTrue(ma.set(key, b"from A again"))
        b.signal(signal.SIGCONT)
        wait_for(lambda: attempt(lambda: mb.get(key)) is not None, 10, "B to serve again")
        self.assertEqual(mb.get(key), b"from A again")
        self.assertTrue(ma.delete(key))
        self.assertIsNone(mb.get(key))


if __name__ == "__main__":
    unittest.main()
