"""The httpd module under stress and abuse (issue 12): every way the view can go
missing or bad, hostile cookies and paths with mpm_event and mpm_prefork,
graceful restarts under load, balancer-manager, and configurations httpd must
refuse.

Runs Debian's apache2 with the built module in front of the demo's cluster
(web_cluster.py); from this folder, with Debian's python3:

    CLUSTER_SIDECAR=.../cluster-sidecar CLUSTERCTL=.../clusterctl \\
    CLUSTER_HTTPD_MODULE=.../mod_cluster_balance.so \\
        /usr/bin/python3 -m unittest -v test_httpd_robustness.FallbackTest

Each test class is one ctest test. As in test_nginx_robustness.py (whose request
helpers this file uses), every assertion is on behaviour seen from the outside
(status, which backend answered, which session it counted and how many times);
log lines are only checked beside that. Waiting is bounded polling.
"""

import html
import http.client
import os
import random
import re
import secrets
import subprocess
import sys
import time
import unittest
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

from sidecar_cluster import read_view, wait_for
from test_nginx_robustness import (DEMO_SERVERS, RobustTestCase, Session, StickyLoad, get,
                                   raw_get, read_bytes)
from web_cluster import (APACHE, HTTPD_PRELOAD, ROUTE_CHARS, Httpd, http_get,
                         preloaded_environment, replace_exactly, route_of)

# Bytes httpd refuses in a header field or request line (HttpProtocolOptions Strict,
# the default): the control characters but tab.
CONTROL_BYTES = frozenset(set(range(0, 32)) - {9} | {127})
# The module's lines about the view (shared/view_tracker.cc's notices).
UNUSABLE = "no usable cluster view"
FOLLOWING = "following the cluster view"


def module_lines(httpd, since=0):
    """(pid, line) of the module's lines in httpd's error log from line `since` on."""
    found = []
    for line in httpd.error_lines()[since:]:
        if "[cluster_balance:" in line:
            match = re.search(r"\[pid (\d+)", line)
            found.append((int(match.group(1)) if match else None, line))
    return found


def http_post(port, path, body, headers):
    """(status, body text) of one POST on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


class HttpdTestCase(RobustTestCase):
    """RobustTestCase for httpd: a DemoCluster per test, every process killed by PID
    when it ends, httpd's logs shown on failure."""

    def start_httpd(self, cluster, view_server=None, mpm="event", edit=None):
        httpd = Httpd(cluster, view_server or cluster.server("app-e"), mpm=mpm, edit=edit)
        httpd.start()
        if mpm == "prefork":
            # mpm_prefork grows to MaxRequestWorkers (4) children for its spare
            # servers at startup; from then on a new PID means a crash.
            wait_for(lambda: len(httpd.children()) == 4, 20, "prefork's 4 children")
        return httpd

    def wait_following(self, httpd, what="httpd to follow the view"):
        self.wait_steady(lambda: get(httpd.port, "/static").reason, {"balanced"}, what)

    def assert_children_alive(self, httpd, children):
        """The same children as before (none crashed and was replaced), and the error
        log has no sign of a crash or of an exception inside the module."""
        self.assertEqual(httpd.children(), children, f"{httpd.dir}: httpd replaced a child")
        bad = [line for line in httpd.error_lines()
               if ":alert]" in line or ":crit]" in line or ":emerg]" in line
               or "exit signal" in line]
        self.assertEqual(bad, [], f"{httpd.dir}: httpd's error log")

    def new_sessions_everywhere(self, port, per_server=2):
        """New sessions until every server made `per_server`: {server: [Session]}."""
        sessions = {}
        for _ in range(300):
            session = self.new_session(port)
            sessions.setdefault(session.owner, []).append(session)
            if len(sessions) == len(DEMO_SERVERS) and all(
                    len(s) >= per_server for s in sessions.values()):
                break
        self.assertEqual(len(sessions), len(DEMO_SERVERS), f"sessions: {sessions}")
        return sessions


# =============================================================================
class FallbackTest(HttpdTestCase):
    """No view, a bad view, a stopped sidecar: httpd balances over its own members
    and answers every request; a session still goes to its own member; the module
    says so once per change (per child); a good view is picked up again without a
    restart, and no child ever crashes."""

    def static(self, httpd):
        """The reason of one request that needs no session store; asserts 200."""
        answer = self.assert_answer(get(httpd.port, "/static"), what="/static")
        self.assertIn(answer.server, DEMO_SERVERS, answer)
        return answer.reason

    def wait_fallback(self, httpd, what):
        self.wait_steady(lambda: self.static(httpd), {"fallback"}, f"fallback after {what}")

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

    def many_static(self, httpd, reason, count=60):
        """`count` /static requests, 8 at a time (so that many threads of both
        children answer): each 200 for `reason`; the servers that answered."""
        def one(_):
            return self.assert_answer(get(httpd.port, "/static"), reason, what="/static")

        with ThreadPoolExecutor(8) as pool:
            return {answer.server for answer in pool.map(one, range(count))}

    def assert_logged_once(self, httpd, since, text, what):
        """Since error log line `since`, the module logged `text` (and nothing else)
        once in each child that served a request, never once per request. Each child
        follows the view on its own (its threads share one log of changes), so
        a change is one line per child: at most as many as httpd has children."""
        lines = module_lines(httpd, since)
        self.assertTrue(lines, f"{what}: the module logged nothing")
        others = [line for _, line in lines if text not in line]
        self.assertEqual(others, [], f"{what}: other lines of the module")
        pids = [pid for pid, _ in lines]
        self.assertEqual(len(pids), len(set(pids)),
                         f"{what}: logged more than once in a child: {lines}")
        self.assertLessEqual(set(pids), httpd.children(), f"{what}: {lines}")
        return [line for _, line in lines]

    def test_missing_bad_and_orphaned_views(self):
        cluster = self.make_cluster()
        follower = cluster.server("app-e")
        # (a) No sidecar yet, so no view file: only the backends run. /static needs
        # no session store.
        for server in cluster.servers:
            cluster.start_backend(server)
        self.assertFalse(os.path.exists(follower.view_file))
        httpd = self.start_httpd(cluster, follower)
        children = httpd.children()
        self.assertEqual(len(children), 2, "mpm_event's two children")
        answered_by = self.many_static(httpd, "fallback", 100)
        self.assertGreater(len(answered_by), 1, "fallback is not balanced over the members")
        for line in self.assert_logged_once(httpd, 0, UNUSABLE, "no view file"):
            self.assertIn(follower.view_file, line)
            self.assertIn(":warn]", line)
        # A session goes to its own member (its route character's) while it is usable.
        for char, owner in zip(ROUTE_CHARS, DEMO_SERVERS):
            cookie = f"JSESSIONID={char}{secrets.token_urlsafe(12)}"
            for _ in range(3):
                self.assert_answer(get(httpd.port, "/static", cookie), "fallback", owner,
                                   what="a session without a view")
        # A route character that names no member: httpd's own balancing.
        answer = self.assert_answer(get(httpd.port, "/static", "JSESSIONID=Zabc"), "fallback")
        self.assertIn(answer.server, DEMO_SERVERS)
        self.assert_children_alive(httpd, children)

        # (b) The sidecars start: the view is picked up without a restart.
        cluster.start_all()
        cluster.wait_states({sid: "up" for sid in DEMO_SERVERS})
        self.wait_store(cluster, [0, 1, 2])
        mark = len(httpd.error_lines())
        self.wait_following(httpd, "httpd to follow the view once the sidecar started")
        self.many_static(httpd, "balanced")
        session = self.new_session(httpd.port)
        self.follow(httpd.port, session, "sticky", session.owner)
        self.assertEqual(route_of(follower.view_file, cookie=session.cookie),
                         ("sticky", session.owner))
        self.assert_logged_once(httpd, mark, FOLLOWING, "the view appeared")
        self.assert_children_alive(httpd, children)

        # (c) The view replaced by a truncated copy: fallback; sessions keep counting
        # (every backend shares the store) on their own member.
        good = read_bytes(follower.view_file)
        mark = len(httpd.error_lines())
        self.replace_view(follower.view_file, good[:len(good) // 2])
        self.wait_fallback(httpd, "a truncated view")
        self.many_static(httpd, "fallback")
        for _ in range(10):
            self.follow(httpd.port, session, "fallback", session.owner)
        self.assert_logged_once(httpd, mark, UNUSABLE, "a truncated view")
        self.assert_children_alive(httpd, children)
        # A sidecar that finds a bad view file replaces it.
        mark = len(httpd.error_lines())
        self.restart_sidecar(cluster, follower)
        self.wait_following(httpd, "the sidecar replaced the truncated view")
        self.many_static(httpd, "balanced")
        self.follow(httpd.port, session, "sticky", session.owner)
        self.assert_logged_once(httpd, mark, FOLLOWING, "the truncated view replaced")
        self.assert_children_alive(httpd, children)

        # (d) A view of a newer format version (uint16 at offset 4): refused.
        good = bytearray(read_bytes(follower.view_file))
        self.assertEqual(int.from_bytes(good[4:6], "little"), 2)
        good[4:6] = (3).to_bytes(2, "little")
        mark = len(httpd.error_lines())
        self.replace_view(follower.view_file, bytes(good))
        self.wait_fallback(httpd, "a view of format version 3")
        for _ in range(10):
            self.follow(httpd.port, session, "fallback", session.owner)
        self.assert_logged_once(httpd, mark, UNUSABLE, "a version 3 view")
        mark = len(httpd.error_lines())
        self.restart_sidecar(cluster, follower)
        self.wait_following(httpd, "the sidecar replaced the version 3 view")
        self.follow(httpd.port, session, "sticky", session.owner)
        self.assert_logged_once(httpd, mark, FOLLOWING, "the version 3 view replaced")
        self.assert_children_alive(httpd, children)

        # (e) The sidecar whose view httpd follows stops (SIGTERM), then dies
        # (SIGKILL): its last view no longer follows the cluster. Only /static while
        # it is away: its own backend cannot reach the store then.
        for how in ("stop", "kill"):
            mark = len(httpd.error_lines())
            getattr(follower, how)()
            self.wait_fallback(httpd, f"the sidecar's {how}")
            self.many_static(httpd, "fallback")
            self.assertTrue(os.path.exists(follower.view_file))
            self.assert_logged_once(httpd, mark, UNUSABLE, f"the sidecar's {how}")
            self.assert_children_alive(httpd, children)
            mark = len(httpd.error_lines())
            follower.start()
            follower.wait_ready()
            cluster.wait_states({sid: "up" for sid in DEMO_SERVERS}, timeout=20)
            self.wait_following(httpd, f"the sidecar's restart after {how}")
            self.follow(httpd.port, session, "sticky", session.owner)
            self.assert_logged_once(httpd, mark, FOLLOWING, f"the restart after {how}")
        self.assert_children_alive(httpd, children)


# =============================================================================
class HostileCookieTest(HttpdTestCase):
    """Malformed, huge and malicious cookies and paths, sent to httpd with
    mpm_event and with mpm_prefork side by side: each is answered 200 as the shared
    decision (clusterctl route) says, or refused by httpd itself (400), and no child
    crashes."""

    def setUp(self):
        self.cluster = self.start_site()
        self.view = self.cluster.server("app-e").view_file
        self.fronts = [self.start_httpd(self.cluster, mpm="event"),
                       self.start_httpd(self.cluster, mpm="prefork")]
        for httpd in self.fronts:
            self.wait_following(httpd)
        self.children = {httpd: httpd.children() for httpd in self.fronts}
        self.checked = 0
        self.refused = 0

    def token(self):
        return secrets.token_urlsafe(12).encode()

    def send(self, httpd, cookies, path):
        return raw_get(httpd.port, path, [b"Cookie: " + c for c in cookies])

    def expect_decision(self, cookies=(), path=b"/", what=None, refusable=None):
        """Sends the Cookie header lines `cookies` (bytes) and `path` as they are to
        every httpd; each answer must be 200 and say what `clusterctl route` says for
        them (the same reason and, for a session, the same server), or 400 when the
        bytes are ones httpd refuses itself (`refusable`: by default, a control
        character anywhere). httpd hands the module several Cookie lines as one,
        joined by ", "; the module splits it at commas again (no cookie value holds
        one) and takes the first session of the pieces, as nginx does of its lines.
        clusterctl is asked about the pieces as one line: the first well-formed
        session cookie of a line is the first of its pieces."""
        what = what or f"Cookie {cookies!r} path {path!r}"
        if refusable is None:
            refusable = any(b in CONTROL_BYTES for b in b"".join(cookies) + path)
        merged = b"; ".join(p for c in cookies for p in c.split(b",")) if cookies else None
        reason, server = route_of(self.view, cookie=merged, path=path)
        answers = []
        for httpd in self.fronts:
            answer = self.send(httpd, cookies, path)
            self.assertIsNotNone(answer, f"{httpd.dir}: {what}: no answer")
            if refusable and answer.status == 400:
                self.refused += 1
            else:
                self.assert_answer(answer, reason, server if reason != "balanced" else None,
                                   f"{httpd.dir}: {what}")
                self.assertIn(answer.server, DEMO_SERVERS, f"{what}: {answer!r}")
            answers.append(answer)
            self.checked += 1
        # Both MPMs agree, and what refuses in one refuses in the other.
        self.assertEqual(len({(a.status, a.reason) for a in answers}), 1, f"{what}: {answers}")
        if reason != "balanced" and answers[0].status == 200:
            self.assertEqual(len({a.server for a in answers}), 1, f"{what}: {answers}")
        return answers[0]

    def expect_refused_or_valid(self, cookies=(), path=b"/", statuses=(200, 400), what=None):
        """Bytes httpd may refuse or that cannot be decided the same way (a header
        over httpd's limits): a valid HTTP answer with one of `statuses` from every
        httpd; a 200 comes from a backend."""
        what = what or f"Cookie {cookies!r}"[:200] + f" path {path!r}"[:200]
        answers = []
        for httpd in self.fronts:
            answer = self.send(httpd, cookies, path)
            self.assertIsNotNone(answer, f"{httpd.dir}: {what}: no answer")
            self.assertIn(answer.status, statuses, f"{httpd.dir}: {what}: {answer!r}")
            if answer.status == 200:
                self.assertIn(answer.server, DEMO_SERVERS, f"{what}: {answer!r}")
                self.assertIsNotNone(answer.reason, f"{what}: {answer!r}")
            else:
                self.refused += 1
            answers.append(answer)
            self.checked += 1
        return answers

    def test_hostile_cookies_and_paths(self):
        started = time.monotonic()
        # Every byte that is not a route character, first in the session id, followed
        # by "ZZ" (index 25: no server) so that no reading of it can be sticky.
        for byte in range(256):
            if chr(byte) in ROUTE_CHARS:
                continue
            cookie = b"JSESSIONID=" + bytes([byte]) + b"ZZ" + self.token()
            if byte in (0, 10, 13):  # NUL, LF, CR: not header bytes
                self.expect_refused_or_valid([cookie], statuses=(400,),
                                             what=f"first byte {byte}")
            else:
                answer = self.expect_decision([cookie], what=f"first byte {byte}")
                self.assertNotEqual(answer.reason, "sticky", f"first byte {byte}")

        # Every route character: sticky to the five servers, backup for the others.
        for index, char in enumerate(ROUTE_CHARS):
            answer = self.expect_decision([b"JSESSIONID=" + char.encode() + self.token()])
            self.assertEqual(answer.reason, "sticky" if index < 5 else "backup", answer)

        # Garbage: random bytes (no CR, LF) as the whole header and as the value.
        rng = random.Random(20240601)
        header_bytes = [b for b in range(1, 256) if b not in (10, 13)]
        for length in (1, 2, 5, 17, 64, 200, 255, 256, 257, 1000, 4000):
            garbage = bytes(rng.choice(header_bytes) for _ in range(length)).strip(b" \t")
            if garbage:
                self.expect_decision([garbage])
                self.expect_decision([b"JSESSIONID=" + garbage])
                self.expect_decision([b"JSESSIONID=B" + garbage])
        # The same without control characters: httpd passes them on.
        printable = [b for b in range(32, 256) if b != 127]
        for length in (1, 17, 256, 257, 1000, 4000):
            garbage = bytes(rng.choice(printable) for _ in range(length)).strip(b" \t")
            if garbage:
                for cookie in (garbage, b"JSESSIONID=" + garbage, b"JSESSIONID=B" + garbage):
                    self.assertEqual(self.expect_decision([cookie]).status, 200)

        # Lengths: 256 bytes is a session id, 257 is none; 7 KB fits httpd's
        # LimitRequestFieldSize (8190), 10 KB and 100 KB do not (httpd answers 400).
        for length, reason in ((256, "sticky"), (257, "balanced"), (7000, "balanced")):
            cookie = b"JSESSIONID=B" + b"x" * (length - 1)
            self.assertEqual(self.expect_decision([cookie]).reason, reason, length)
        for size in (10 * 1024, 100 * 1024):
            self.expect_refused_or_valid([b"JSESSIONID=B" + b"y" * size], statuses=(400,),
                                         what=f"a cookie of {size} bytes")
        many = b"; ".join(b"c%d=%d" % (i, i) for i in range(3000))
        self.expect_refused_or_valid([many[:60000]], statuses=(400,), what="3000 cookies")

        # Many Cookie lines: httpd joins them into one (", ") before any module sees
        # them, and sends that line on to the backend; the module splits it again, so
        # that the second line's session counts, as in nginx.
        token = self.token()
        answer = self.expect_decision([b"a=b; JSESSIONID=,bad; jsessionid=Bx",
                                       b"JSESSIONID=D" + token])
        self.assertEqual((answer.reason, answer.server), ("sticky", "app-d"))
        self.expect_decision([b"c%d=%d" % (i, i) for i in range(60)]
                                      + [b"JSESSIONID=C" + token])
        # More header lines than LimitRequestFields (100): httpd refuses.
        self.expect_refused_or_valid([b"c%d=%d" % (i, i) for i in range(150)], statuses=(400,),
                                     what="150 Cookie lines")
        # One line with many cookies: the first usable JSESSIONID counts.
        crowd = b"; ".join([b"JSESSIONID="] * 300 + [b'JSESSIONID="bad'] * 100
                           + [b"JSESSIONID=C" + token, b"JSESSIONID=D" + token])
        answer = self.expect_decision([crowd])
        self.assertEqual((answer.reason, answer.server), ("sticky", "app-c"))
        self.expect_decision([b";;;;=;=;==;JSESSIONID==B" + token + b";;"])
        self.expect_decision([b"JSESSIONID = B" + token])  # white space around the name
        self.expect_decision([b"jsessionid=B" + token])  # the name is case-sensitive

        # NUL bytes, raw, in the cookie and in the path: httpd refuses them.
        token = self.token()
        for cookie in (b"JSESSIONID=B\x00" + token, b"JSESSIONID=\x00B" + token,
                       b"\x00JSESSIONID=B" + token, b"JSESSIONID=B" + token + b"\x00"):
            self.expect_refused_or_valid([cookie], statuses=(400,))
        for path in (b"/x;jsessionid=B\x00" + token, b"/x\x00;jsessionid=B" + token):
            self.expect_refused_or_valid(path=path, statuses=(400,))
        # An escaped NUL is refused by httpd's own URL decoding (404), before the
        # module is asked.
        for path in (b"/x;jsessionid=B%00" + token, b"/x;jsessionid=%00B" + token):
            self.expect_refused_or_valid(path=path, statuses=(404,))

        # Quotes, balanced and not.
        token = self.token()
        for value in (b'"B' + token + b'"', b'"B' + token, b"B" + token + b'"', b'""', b'"',
                      b'"""', b'""B' + token + b'""', b'"B' + token + b'"x',
                      b"'B" + token + b"'", b'" B' + token + b' "'):
            self.expect_decision([b"JSESSIONID=" + value])
        self.assertEqual(self.expect_decision([b'JSESSIONID="C' + token + b'"']).reason,
                         "sticky")

        # ;jsessionid= in the path: garbage, a valid route, an unknown route, and the
        # cookie before the path; the path as sent, not as httpd decodes it.
        token = self.token()
        for path in (b"/x;jsessionid=", b"/x;jsessionid=;jsessionid=",
                     b"/x;jsessionid=!!$$~~*", b"/x;jsessionid=\"B" + token,
                     b"/x;jsessionid=" + b"B" * 300, b"/x;jsessionid",
                     b"/;jsessionid=\xff\xfe" + token, b"/x;JSESSIONID=B" + token,
                     b"/x;jsessionid=B" + token + b"?jsessionid=C" + token,
                     b"/x?;jsessionid=C" + token):
            self.expect_decision(path=path)
        for path in (b"/x;jsessionid=%43" + token, b"/x%3Bjsessionid=C" + token,
                     b"/x;jsessionid%3DC" + token):
            answer = self.expect_decision(path=path)
            self.assertNotEqual(answer.reason, "sticky", f"{path!r}: {answer!r}")
        answer = self.expect_decision(path=b"/cart;jsessionid=C" + token)
        self.assertEqual((answer.reason, answer.server), ("sticky", "app-c"))
        answer = self.expect_decision(path=b"/cart;jsessionid=Z" + token + b"/more")
        self.assertEqual(answer.reason, "backup")
        answer = self.expect_decision([b"JSESSIONID=D" + token],
                                      path=b"/cart;jsessionid=C" + token)
        self.assertEqual((answer.reason, answer.server), ("sticky", "app-d"))

        self.assertGreater(self.checked, 600)
        # Still serving, with the same children; a well-formed session still sticks.
        for httpd in self.fronts:
            session = self.new_session(httpd.port)
            for _ in range(3):
                self.follow(httpd.port, session, "sticky", session.owner)
            self.assert_children_alive(httpd, self.children[httpd])
        sys.stderr.write(f"HostileCookieTest: {self.checked} answers ({self.refused} "
                         f"refused by httpd) in {time.monotonic() - started:.1f} s\n")


# =============================================================================
class GracefulRestartTest(HttpdTestCase):
    """apache2ctl graceful (SIGUSR1) while sessions send requests on kept-alive
    connections: no request fails, none lands elsewhere, none is lost or doubled;
    a configuration change is picked up by the restart."""

    THREADS = 4
    RESTARTS = 2

    def test_graceful_restarts_under_load_keep_every_session(self):
        cluster = self.start_site()
        httpd = self.start_httpd(cluster)
        self.wait_following(httpd)
        sessions = self.new_sessions_everywhere(httpd.port)
        # app-e's sidecar stops at the end: its sessions stay out of the load.
        chosen = [s for owner, group in sessions.items() if owner != "app-e"
                  for s in group[:2]]
        for session in chosen:  # sticky before the load starts
            self.follow(httpd.port, session, "sticky", session.owner)

        load = StickyLoad(httpd.port, chosen, self.THREADS)
        self.addCleanup(load.stop)
        load.start()

        generations = [httpd.children()]
        during = []  # requests served while each restart went on

        def graceful():
            load.wait_served(100)
            before = load.served
            httpd.graceful()  # returns once only children of the new generation serve
            during.append(load.served - before)
            generations.append(httpd.children())

        for _ in range(self.RESTARTS):
            graceful()

        # A changed configuration, picked up by the next graceful restart: httpd
        # follows app-a's view file instead of app-e's (while the load goes on).
        with open(httpd.conf_path) as f:
            text = f.read()
        old_view = cluster.server("app-e").view_file
        new_view = cluster.server("app-a").view_file
        with open(httpd.conf_path, "w") as f:
            f.write(replace_exactly(text, f"ClusterBalance {old_view} ",
                                    f"ClusterBalance {new_view} "))
        graceful()
        load.wait_served(100)
        self.assertEqual(load.stop(), [], "a client thread hangs")

        self.assertEqual(load.errors, [], f"{len(load.errors)} bad answers of {load.served}")
        self.assertGreater(sum(during), 0, "no request was served during the restarts")
        for older, newer in zip(generations, generations[1:]):
            self.assertFalse(older & newer, f"children not replaced: {generations}")
        # Each session counted exactly its requests, and still sticks after the restarts.
        for session in chosen:
            self.follow(httpd.port, session, "sticky", session.owner)

        # The new view file counts: app-e's sidecar dies, and its view with it (httpd
        # would fall back on it). httpd keeps following app-a's view: nothing falls
        # back, and app-e's sessions go to their backup as app-a's view says.
        cluster.server("app-e").kill()
        cluster.wait_states({"app-e": "down"},
                            observers=[s for s in cluster.servers if s.id != "app-e"])
        self.wait_steady(lambda: get(httpd.port, "/static").reason, {"balanced"},
                         "httpd to follow app-a's view")
        for session in sessions["app-e"]:
            reason, server = route_of(new_view, cookie=session.cookie)
            self.assertEqual(reason, "backup")
            self.follow(httpd.port, session, "backup", server)
        for session in chosen:
            self.follow(httpd.port, session, "sticky", session.owner)
        self.assert_children_alive(httpd, httpd.children())
        sys.stderr.write(f"GracefulRestartTest: {load.served} requests, {len(chosen)} sessions, "
                         f"{len(generations) - 1} graceful restarts ({during} requests "
                         f"served during each), {load.reconnects} "
                         f"reconnects after httpd closed idle kept-alive connections\n")


# =============================================================================
class BalancerManagerTest(HttpdTestCase):
    """mod_proxy_balancer's balancer-manager shows the members with their routes
    and still controls them: a member it disables gets no requests, its sessions go
    to their backup (the server the view names once that server is gone), and come
    back when it is enabled again."""

    SESSIONS = 12

    def manager_page(self, httpd):
        """(members, nonce): members as {worker URL: (route, status)}."""
        status, _, body = http_get(httpd.port, "/balancer-manager")
        self.assertEqual(status, 200, body)
        nonce = re.search(r"nonce=([0-9a-f-]+)", body).group(1)
        members = {}
        for url, route, status_text in re.findall(
                r"<tr>\s*<td><a href=\"[^\"]*\">([^<]+)</a></td><td>([^<]*)</td>"
                r"<td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>([^<]*)</td>", body):
            members[html.unescape(url)] = (html.unescape(route), status_text)
        self.assertIn("<td>cluster</td>", body, "the balancer's Method column")
        return members, nonce

    def set_disabled(self, httpd, url, disabled):
        """balancer-manager's form for one member: w_status_D=1 or 0, with the nonce
        the page shows and a Referer of this server (mod_proxy_balancer ignores the
        parameters of other sites' forms)."""
        _, nonce = self.manager_page(httpd)
        body = urllib.parse.urlencode({"b": "app", "w": url, "w_status_D": int(disabled),
                                       "nonce": nonce})
        status, page = http_post(httpd.port, "/balancer-manager", body, {
            "Referer": f"http://127.0.0.1:{httpd.port}/balancer-manager",
            "Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200, page)
        members, _ = self.manager_page(httpd)
        self.assertEqual("Dis" in members[url][1], disabled, members[url])

    def test_members_shown_and_controlled(self):
        cluster = self.start_site()
        httpd = self.start_httpd(cluster)
        self.wait_following(httpd)
        children = httpd.children()
        members, _ = self.manager_page(httpd)
        expected = {f"http://127.0.0.1:{s.http_port}": ROUTE_CHARS[i]
                    for i, s in enumerate(cluster.servers)}
        self.assertEqual({url: route for url, (route, _) in members.items()}, expected)
        self.assertTrue(all("Ok" in status for _, status in members.values()), members)

        view = cluster.server("app-e").view_file
        disabled = cluster.server("app-d")  # a spoke: the store does not move
        disabled_url = f"http://127.0.0.1:{disabled.http_port}"
        sessions = [Session("D" + secrets.token_urlsafe(16), "app-d", 0)
                    for _ in range(self.SESSIONS)]
        others = self.new_sessions_everywhere(httpd.port, per_server=1)
        others = [s for owner, group in others.items() if owner != "app-d" for s in group]
        for session in sessions:
            self.follow(httpd.port, session, "sticky", "app-d")

        # Disabled in balancer-manager: the view still says app-d is up.
        self.set_disabled(httpd, disabled_url, True)
        self.assertEqual(read_view(view)["servers"]["app-d"]["state"], "up")
        backup_of = {}
        for session in sessions:
            answer = self.follow(httpd.port, session, "backup")
            self.assertNotEqual(answer.server, "app-d")
            backup_of[session.id] = answer.server
            for _ in range(2):  # the same backup on every request of the session
                self.follow(httpd.port, session, "backup", answer.server)
        self.assertGreater(len(set(backup_of.values())), 1,
                           f"{self.SESSIONS} sessions all have the same backup: {backup_of}")
        for _ in range(30):  # new sessions avoid it
            self.assertNotEqual(self.new_session(httpd.port).owner, "app-d")
        for session in others:
            self.follow(httpd.port, session, "sticky", session.owner)

        # Enabled again: its sessions come back, their counts intact.
        self.set_disabled(httpd, disabled_url, False)
        for session in sessions:
            self.follow(httpd.port, session, "sticky", "app-d")
        owners = {self.new_session(httpd.port).owner for _ in range(40)}
        self.assertIn("app-d", owners, "no new session on the enabled member")

        # The backups were those the view names once app-d is gone: its sidecar dies.
        disabled.kill()
        cluster.wait_states({"app-d": "down"},
                            observers=[s for s in cluster.servers if s.id != "app-d"])
        for session in sessions:
            self.assertEqual(route_of(view, cookie=session.cookie),
                             ("backup", backup_of[session.id]), session)
            self.follow(httpd.port, session, "backup", backup_of[session.id])
        self.assert_children_alive(httpd, children)


# =============================================================================
class ConfigTest(HttpdTestCase):
    """Configurations httpd must refuse at `apache2 -t`, with a line naming the
    directive and saying why, rather than run with the module half active; and a
    stickysession that httpd runs with, with a warning."""

    def setUp(self):
        self.cluster = self.make_cluster()  # files only, until a test starts the site

    def check(self, edit):
        httpd = Httpd(self.cluster, self.cluster.server("app-e"), edit=edit)
        return subprocess.run([APACHE, "-t", "-f", httpd.conf_path], capture_output=True,
                              text=True, timeout=30, env=preloaded_environment(HTTPD_PRELOAD))

    def assert_refused(self, edit, *why):
        result = self.check(edit)
        output = result.stdout + result.stderr
        self.assertNotEqual(result.returncode, 0, output)
        for text in why:
            self.assertIn(text, output)

    def test_the_example_passes(self):
        result = self.check(None)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("Syntax OK", result.stdout + result.stderr)

    def test_refused_configurations(self):

        def in_section(line):
            return lambda text: replace_exactly(text, "    ProxySet lbmethod=cluster\n",
                                                f"    ProxySet lbmethod=cluster\n    {line}\n")

        def balance_words(words):
            return lambda text: replace_exactly(text, "mode=route cookie=JSESSIONID", words)

        # Outside a <Proxy "balancer://..."> section.
        self.assert_refused(lambda text: text + "ClusterBalance /tmp/x.view\n",
                            "ClusterBalance not allowed here")
        self.assert_refused(lambda text: text + '<Location "/x">\n    ClusterBalance '
                            '/tmp/x.view\n</Location>\n',
                            "ClusterBalance belongs inside <Proxy \"balancer://NAME\">")
        self.assert_refused(lambda text: text + '<Proxy "http://127.0.0.1:1/">\n'
                            '    ClusterBalanceRouteHeader X-Route\n</Proxy>\n',
                            "ClusterBalanceRouteHeader belongs inside <Proxy")
        # Its words.
        self.assert_refused(balance_words("mode=learn"), "ClusterBalance:",
                            "learn mode is not implemented")
        self.assert_refused(balance_words("mode=route frobnicate"), "ClusterBalance:",
                            '"frobnicate": expected mode=')
        self.assert_refused(balance_words("mode=route colour=red"), "ClusterBalance:",
                            '"colour=red": unknown')
        self.assert_refused(balance_words("mode=route cookie=bad;name"), "ClusterBalance:",
                            '"cookie=bad;name": not a valid cookie name')
        self.assert_refused(balance_words("mode=route slow_start=25h"), "ClusterBalance:",
                            '"slow_start=25h": must be at most 24h')
        self.assert_refused(balance_words("mode=route mode=insert"), "ClusterBalance:",
                            "given twice")
        self.assert_refused(in_section("ClusterBalance /tmp/other.view"), "ClusterBalance:",
                            "given twice in this section")
        # The insert mode's cookie.
        self.assert_refused(lambda text: balance_words("mode=insert")(text).replace(
            "    ProxySet lbmethod=cluster\n",
            "    ClusterBalanceCookie samesite=none\n    ProxySet lbmethod=cluster\n"),
            "ClusterBalanceCookie:", "samesite=none needs secure")
        self.assert_refused(in_section('ClusterBalanceRouteHeader "bad header"'),
                            "ClusterBalanceRouteHeader:", "expected a header name")

    def test_what_only_startup_refuses_is_refused_by_the_config_test_too(self):
        """A section's directives that make no sense together: httpd's start refuses
        them (cluster_balance's post_config), and `apache2 -t` must say so as well."""
        with self.subTest("ClusterBalanceCookie with mode=route"):
            self.assert_refused(
                lambda text: replace_exactly(text, "    ProxySet lbmethod=cluster\n",
                                             "    ClusterBalanceCookie name=ROUTE\n"
                                             "    ProxySet lbmethod=cluster\n"),
                "ClusterBalanceCookie needs ClusterBalance ... mode=insert")
        with self.subTest("ClusterBalanceRouteHeader without ClusterBalance"):
            self.assert_refused(
                lambda text: text + '<Proxy "balancer://other">\n'
                '    ClusterBalanceRouteHeader X-Route\n</Proxy>\n',
                "without ClusterBalance")

    def test_stickysession_is_warned_about_and_routing_works(self):
        """lbmethod=cluster with mod_proxy_balancer's own stickysession: httpd starts,
        says once that stickysession should go, and the module still routes."""
        cluster = self.cluster.start_site()
        self.wait_store(cluster, [0, 1, 2])
        httpd = self.start_httpd(cluster, edit=lambda text: replace_exactly(
            text, "ProxySet lbmethod=cluster",
            "ProxySet lbmethod=cluster stickysession=JSESSIONID|jsessionid"))
        self.wait_following(httpd)
        children = httpd.children()
        sessions = self.new_sessions_everywhere(httpd.port, per_server=1)
        for group in sessions.values():
            for session in group:
                for _ in range(2):
                    self.follow(httpd.port, session, "sticky", session.owner)
        warnings = [line for line in httpd.error_lines() if "sets stickysession" in line]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn("balancer://app", warnings[0])
        self.assertIn(":warn]", warnings[0])
        self.assert_children_alive(httpd, children)


if __name__ == "__main__":
    unittest.main()
