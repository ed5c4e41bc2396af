"""Membership of real sidecar processes on 127.0.0.1 (issue 3, item 8)."""

import json
import os
import shutil
import subprocess
import socket
import signal
import time
import unittest
import urllib.error
import urllib.request

from sidecar_cluster import Cluster, wait_for, run_clusterctl


def socket_inodes(pid):
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def established_tcp(pid):
    """(local port, remote port) of the process's established IPv4 TCP sockets."""
    inodes = socket_inodes(pid)
    pairs = []
    with open(f"/proc/{pid}/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if state == "01" and inode in inodes:
                pairs.append((int(local.split(":")[1], 16), int(remote.split(":")[1], 16)))
    return pairs


class ClusterTestCase(unittest.TestCase):
    def make_cluster(self, count, **kwargs):
        cluster = Cluster(count, **kwargs)
        self.addCleanup(cluster.close)
        return cluster


class TopologyTest(ClusterTestCase):
    def test_single_server(self):
        c = self.make_cluster(1).start_all()
        c.wait_states({"s0": "up"})
        status = c.servers[0].status()
        self.assertEqual(status["server"]["id"], "s0")
        self.assertEqual(status["servers"][0]["route"], "A")
        self.assertEqual(status["servers"][0]["role"], "triad")

    def test_two_servers_back_each_other_up(self):
        c = self.make_cluster(2).start_all()
        c.wait_states({"s0": "up", "s1": "up"})
        c.servers[1].kill()
        c.wait_states({"s0": "up", "s1": "down"}, observers=[c.servers[0]], timeout=5)
        c.servers[1].start().wait_ready()
        c.wait_states({"s0": "up", "s1": "up"})

    def test_three_plus_three_converge(self):
        c = self.make_cluster(6).start_all()
        everyone_up = {s.id: "up" for s in c.servers}
        c.wait_states(everyone_up)
        roles = {s["id"]: s["role"] for s in c.servers[4].status()["servers"]}
        self.assertEqual(roles, {"s0": "triad", "s1": "triad", "s2": "triad",
                                 "s3": "spoke", "s4": "spoke", "s5": "spoke"})
        # Every view file carries the same generation of knowledge: same states,
        # same incarnations.
        incarnations = [{sid: v["incarnation"] for sid, v in s.view()["servers"].items()}
                        for s in c.servers]
        self.assertTrue(all(i == incarnations[0] for i in incarnations), incarnations)

    def test_spokes_connect_to_the_triad_only(self):
        c = self.make_cluster(6).start_all()
        c.wait_states({s.id: "up" for s in c.servers})
        triad_ports = {s.cluster_port for s in c.servers[:3]}
        for spoke in c.servers[3:]:
            pairs = established_tcp(spoke.process.pid)
            cluster_links = [(l, r) for l, r in pairs if l != spoke.admin_port]
            remote_ports = {r for _, r in cluster_links}
            # One connection to each triad server, none accepted, none to a spoke.
            self.assertEqual(remote_ports, triad_ports, (spoke.id, pairs))
            self.assertEqual(len(cluster_links), 3, (spoke.id, pairs))
            self.assertFalse(any(l == spoke.cluster_port for l, _ in pairs), (spoke.id, pairs))


class FailureDetectionTest(ClusterTestCase):
    def test_kill_9_of_a_triad_server_is_seen_by_everyone(self):
        c = self.make_cluster(5).start_all()
        c.wait_states({s.id: "up" for s in c.servers})
        before = c.servers[3].view()["servers"]["s1"]["incarnation"]
        c.servers[1].kill()
        # A closed connection marks it down at once; bound generously.
        expected = {"s1": "down", "s0": "up", "s2": "up", "s3": "up", "s4": "up"}
        c.wait_states(expected, timeout=3)
        c.servers[1].start().wait_ready()
        c.wait_states({s.id: "up" for s in c.servers})
        self.assertGreater(c.servers[3].view()["servers"]["s1"]["incarnation"], before)

    def test_a_silent_server_is_down_after_the_timeout_and_up_when_it_answers(self):
        c = self.make_cluster(5).start_all()
        c.wait_states({s.id: "up" for s in c.servers})
        # A triad server, then a spoke (which the other spoke only knows of through
        # the triad, so it must take back a "down" it was told).
        for victim in (c.servers[2], c.servers[4]):
            victim.signal(signal.SIGSTOP)
            others = [s for s in c.servers if s is not victim]
            started = time.monotonic()
            c.wait_states({victim.id: "down"}, observers=others, timeout=6)
            # Not before the timeout (1 s): silence is not a closed connection.
            self.assertGreaterEqual(time.monotonic() - started, 0.9)
            victim.signal(signal.SIGCONT)
            c.wait_states({s.id: "up" for s in c.servers}, timeout=10)

    def test_sigterm_leaves_cleanly_and_peers_see_it_at_once(self):
        c = self.make_cluster(3).start_all()
        c.wait_states({s.id: "up" for s in c.servers})
        self.assertEqual(c.servers[2].stop(), 0)
        c.wait_states({"s2": "down"}, observers=c.servers[:2], timeout=3)


class RestartViewTest(ClusterTestCase):
    """A restarted sidecar publishes nothing it has not heard: no view in which
    servers every other sidecar shows up are down (nginx would send their sessions
    to the restarting server as their backup, before its application runs)."""

    RESTARTS = 5

    def test_a_restarting_sidecar_never_publishes_live_servers_down(self):
        c = self.make_cluster(5).start_all()
        everyone_up = {s.id: "up" for s in c.servers}
        c.wait_states(everyone_up)
        for victims in ([c.servers[0]], [c.servers[3]],  # a triad server, a spoke
                        [c.servers[1], c.servers[4]]):   # both at once
            for attempt in range(self.RESTARTS):
                with self.subTest(victims=[v.id for v in victims], attempt=attempt):
                    self.restart_and_watch(c, victims, everyone_up)

    def restart_and_watch(self, c, victims, everyone_up):
        others = [s for s in c.servers if s not in victims]
        old_incarnations = {v.id: v.view()["servers"][v.id]["incarnation"] for v in victims}
        for victim in victims:
            victim.kill()
        c.wait_states({v.id: "down" for v in victims}, observers=others, timeout=5)
        for victim in victims:
            victim.start()
        # Every view each file holds from now on, read as fast as Python can, until
        # each new process has published one with everyone up. A server not
        # restarted is up in every other sidecar's view all along, so it must be
        # up in these too.
        snapshots = 0
        waiting = list(victims)
        deadline = time.monotonic() + 15
        while waiting:
            for victim in list(waiting):
                try:
                    view = victim.view()
                except ValueError:  # caught mid-update more often than read_view retries
                    continue
                snapshots += 1
                states = {sid: v["state"] for sid, v in view["servers"].items()}
                wrongly_down = [s.id for s in others if states.get(s.id) != "up"]
                self.assertEqual(wrongly_down, [],
                                 f"{victim.id}'s view shows {wrongly_down} down while every "
                                 f"other sidecar shows them up (snapshot {snapshots}: {states})")
                self.assertEqual(states.get(victim.id), "up", view)
                mine = view["servers"][victim.id]["incarnation"]
                if mine > old_incarnations[victim.id] and states == everyone_up:
                    waiting.remove(victim)
            self.assertLess(time.monotonic(), deadline, f"no view with everyone up: {waiting}")
        # And the others still show every server not restarted up (the premise).
        for other in others:
            states = other.states()
            self.assertEqual({s.id: states[s.id] for s in others},
                             {s.id: "up" for s in others})
        c.wait_states(everyone_up)


class RefusalTest(ClusterTestCase):
    def assert_refused(self, c, config, reason):
        c.servers[0].start().wait_ready()
        c.servers[1].start(config=config)
        wait_for(lambda: reason in c.servers[1].log() and reason in c.servers[0].log(), 10,
                 f"both sides to log {reason!r}")
        self.assertEqual(c.servers[0].states()["s1"], "down")

    def test_wrong_key(self):
        c = self.make_cluster(2)
        config = c.write_config("cluster.toml", key="a-completely-different-cluster-key\n")
        self.assert_refused(c, config, "authentication failed")

    def test_other_cluster_name(self):
        c = self.make_cluster(2)
        self.assert_refused(c, c.write_config("other.toml", cluster_name="elsewhere"),
                            '"elsewhere"')

    def test_reordered_server_list(self):
        c = self.make_cluster(2)
        self.assert_refused(c, c.write_config("reordered.toml", order=[1, 0]),
                            "server list order differs")


class DrainTest(ClusterTestCase):
    def test_drain_spreads_and_survives_restarts(self):
        c = self.make_cluster(5).start_all()
        c.wait_states({s.id: "up" for s in c.servers})
        spoke = c.servers[3]
        result = run_clusterctl("--admin", f"127.0.0.1:{spoke.admin_port}", "drain", "s4")
        self.assertEqual(result.returncode, 0, result.stderr)
        c.wait_states({"s4": "draining"})
        c.servers[0].kill()  # a triad server restarts
        c.servers[0].start().wait_ready()
        c.servers[4].kill()  # and so does the drained server
        c.servers[4].start().wait_ready()
        c.wait_states({"s0": "up", "s4": "draining"})
        result = run_clusterctl("--admin", f"127.0.0.1:{spoke.admin_port}", "enable", "s4")
        self.assertEqual(result.returncode, 0, result.stderr)
        c.wait_states({"s4": "up"})

    def test_admin_posts_need_the_csrf_token_the_page_carries(self):
        c = self.make_cluster(2).start_all()
        c.wait_states({"s0": "up", "s1": "up"})
        base = f"http://127.0.0.1:{c.servers[0].admin_port}"
        for headers in ({}, {"X-CSRF-Token": "0" * 64}):
            request = urllib.request.Request(base + "/servers/s1/drain", data=b"",
                                             method="POST", headers=headers)
            with self.assertRaises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=5)
            self.assertEqual(refused.exception.code, 403)
            self.assertEqual(json.load(refused.exception)["error"],
                             "missing or wrong X-CSRF-Token (GET /csrf-token)")
        with urllib.request.urlopen(base + "/csrf-token", timeout=5) as response:
            token = json.load(response)["csrf_token"]
        with urllib.request.urlopen(base + "/", timeout=5) as response:
            page = response.read().decode()
            self.assertIn("default-src 'none'", response.headers["Content-Security-Policy"])
        self.assertIn(f'<meta name="csrf-token" content="{token}">', page)
        self.assertEqual(c.servers[0].states()["s1"], "up")
        self.assertEqual(c.servers[0].post("/servers/s1/drain")["state"], "draining")
        c.wait_states({"s1": "draining"})


class StartupErrorTest(ClusterTestCase):
    """Each operator mistake stops the daemon at once with one line naming the cause."""

    def start_failing(self, server, config=None):
        before = len(server.log()) if os.path.exists(server.log_path) else 0
        server.start(config=config)
        code = server.process.wait(timeout=30)
        self.assertNotEqual(code, 0)
        lines = [l for l in server.log()[before:].splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, lines)
        return lines[0]

    def test_unknown_server_id(self):
        c = self.make_cluster(1)
        s = c.servers[0]
        s.id = "nope"
        self.assertIn('unknown server id "nope"', self.start_failing(s))

    def test_config_error_names_file_and_line(self):
        c = self.make_cluster(1)
        with open(c.config_path, "a") as f:
            f.write("[cluster2]\n")
        line = self.start_failing(c.servers[0])
        self.assertIn(c.config_path + ":", line)
        self.assertIn("unknown section", line)

    def test_data_dir_not_usable(self):
        c = self.make_cluster(1)
        with open(c.servers[0].data_dir, "w") as f:  # a file where the dir should be
            f.write("x")
        self.assertIn("not a directory", self.start_failing(c.servers[0]))

    def test_port_in_use(self):
        c = self.make_cluster(1)
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", c.servers[0].cluster_port))
        blocker.listen()
        self.addCleanup(blocker.close)
        line = self.start_failing(c.servers[0])
        self.assertIn(f"127.0.0.1:{c.servers[0].cluster_port}", line)
        self.assertIn("in use", line)

    def test_key_file_missing_or_readable_by_others(self):
        c = self.make_cluster(1)
        os.chmod(c.key_path, 0o644)
        self.assertIn("readable by other users", self.start_failing(c.servers[0]))
        os.remove(c.key_path)
        self.assertIn(c.key_path, self.start_failing(c.servers[0]))


class RobustnessTest(ClusterTestCase):
    def test_garbage_on_the_cluster_port_costs_only_that_connection(self):
        c = self.make_cluster(3).start_all()
        c.wait_states({s.id: "up" for s in c.servers})
        target = c.servers[1]
        for payload in (b"\xff\xff\xff\xff" + b"x" * 64,  # a 4 GiB frame header
                        b"\x00\x00\x00\x03abc",  # a frame that is no message
                        b"GET / HTTP/1.1\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", target.cluster_port), timeout=5) as s:
                s.sendall(payload)
                s.settimeout(5)
                try:
                    while s.recv(4096):  # the sidecar closes this connection
                        pass
                except ConnectionResetError:
                    pass
        self.assertIsNone(target.process.poll())
        c.wait_states({s.id: "up" for s in c.servers})
        self.assertIn("cluster_connection_resets_total", target.metrics())

    def test_sighup_reopens_the_log_file(self):
        c = self.make_cluster(1)
        s0 = c.servers[0]
        log_file = os.path.join(c.dir, "sidecar.log")
        s0.start(extra_args=["--log-file", log_file]).wait_ready()

        def contents(path):
            with open(path) as f:
                return f.read()
        wait_for(lambda: "listening on" in contents(log_file), 5, "the log in the file")
        rotated = log_file + ".1"
        os.rename(log_file, rotated)  # what logrotate does
        s0.signal(signal.SIGHUP)
        wait_for(lambda: "log file reopened" in contents(log_file), 5, "a new log file")
        self.assertNotIn("log file reopened", contents(rotated))
        self.assertIsNone(s0.process.poll())
        # An unusable log file is a startup error like any other.
        bad = subprocess.run([os.environ.get("CLUSTER_SIDECAR", "cluster-sidecar"), "--config",
                              c.config_path, "--server", "s0", "--log-file", c.dir],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("log file", bad.stderr)

    def test_a_connection_that_never_authenticates_is_closed(self):
        c = self.make_cluster(1).start_all()
        with socket.create_connection(("127.0.0.1", c.servers[0].cluster_port), timeout=10) as s:
            started = time.monotonic()
            self.assertEqual(s.recv(4096), b"")  # EOF: the sidecar gave up on us
            # After the heartbeat timeout (1 s), within about one more interval.
            self.assertGreaterEqual(time.monotonic() - started, 0.9)
        self.assertIsNone(c.servers[0].process.poll())

    def test_the_last_triad_server_still_watches_the_spokes(self):
        c = self.make_cluster(5).start_all()
        c.wait_states({s.id: "up" for s in c.servers})
        c.servers[1].kill()
        c.servers[2].kill()
        c.wait_states({"s1": "down", "s2": "down"}, observers=[c.servers[0]], timeout=5)
        c.servers[4].kill()
        c.wait_states({"s0": "up", "s3": "up", "s4": "down"},
                      observers=[c.servers[0], c.servers[3]], timeout=5)

    def test_metrics_count_heartbeats_and_refusals(self):
        c = self.make_cluster(2)
        c.servers[0].start().wait_ready()
        c.servers[1].start(config=c.write_config("other.toml", cluster_name="elsewhere"))
        wait_for(lambda: 'cluster_handshake_refusals_total{reason="cluster_name"}'
                 in c.servers[0].metrics(), 10, "a refusal counted by reason")
        c.servers[1].kill()
        c.servers[1].start().wait_ready()
        c.wait_states({"s0": "up", "s1": "up"})

        def heartbeats():
            for line in c.servers[0].metrics().splitlines():
                if line.startswith("cluster_heartbeats_received_total "):
                    return float(line.split()[1]) >= 3
            return False

        wait_for(heartbeats, 10, "heartbeats counted")
        self.assertIn("cluster_peers_up 1", c.servers[0].metrics())


class SystemdTest(ClusterTestCase):
    UNIT = os.path.join(os.path.dirname(__file__), "..", "..", "conf-examples",
                        "cluster-sidecar@.service")

    def test_the_example_unit_file_verifies(self):
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            self.skipTest("systemd-analyze is not installed")
        c = self.make_cluster(1)
        with open(self.UNIT) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/local/bin/cluster-sidecar ", unit)
        # The unit as installed, with the binary this build made.
        path = os.path.join(c.dir, "cluster-sidecar@s0.service")
        with open(path, "w") as f:
            f.write(unit.replace("/usr/local/bin/cluster-sidecar",
                                 os.path.abspath(os.environ["CLUSTER_SIDECAR"])))
        result = subprocess.run([analyze, "verify", "--man=no", path], capture_output=True,
                                text=True, timeout=60)
        problems = [l for l in (result.stdout + result.stderr).splitlines()
                    if "cluster-sidecar@s0.service" in l]
        self.assertEqual(problems, [])

    def test_ready_watchdog_and_stopping_notifications(self):
        c = self.make_cluster(1)
        notify_path = os.path.join(c.dir, "notify.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(notify_path)
        self.addCleanup(listener.close)
        listener.settimeout(10)
        server = c.servers[0].start(env={"NOTIFY_SOCKET": notify_path,
                                         "WATCHDOG_USEC": "200000"})
        received = []

        def got(message, count=1):
            while sum(message in r for r in received) < count:
                received.append(listener.recv(4096).decode())
            return True

        self.assertTrue(got("READY=1"))
        server.wait_ready()  # READY=1 came once the ports were bound
        self.assertTrue(got("WATCHDOG=1", count=3))
        self.assertEqual(server.stop(), 0)
        self.assertTrue(got("STOPPING=1"))


class DynamicServerTest(ClusterTestCase):
    """Servers that are not in the cluster file: `cluster-sidecar --join`."""

    def indices(self, observer):
        return {s["id"]: s["index"] for s in observer.status()["servers"]}

    def wait_same_index_everywhere(self, server, observers):
        def agreed():
            seen = set()
            for o in observers:
                entry = o.view()["servers"].get(server.id)
                if entry is None or not entry["dynamic"]:
                    return None
                seen.add(entry["index"])
                seen.add(self.indices(o).get(server.id))
            return seen.pop() if len(seen) == 1 else None
        return wait_for(agreed, 10, f"every view to give {server.id} one index")

    def test_joins_appears_everywhere_and_restarts_with_the_same_index(self):
        c = self.make_cluster(4).start_all()  # triad + one static spoke
        d = c.add_dynamic("dyn-a")
        d.start().wait_ready()
        c.wait_states({s.id: "up" for s in c.servers})
        index = self.wait_same_index_everywhere(d, c.servers)
        self.assertGreaterEqual(index, 3)
        self.assertNotIn(index, [0, 1, 2, 3])
        self.assertEqual(d.status()["server"], {"id": "dyn-a", "index": index,
                                                "incarnation": d.status()["server"]["incarnation"]})
        # Traffic-relevant state, in the static spoke's view file: up, warming up
        # from a recent up-since, routed to the address it gave on its command line.
        entry = c.servers[3].view()["servers"]["dyn-a"]
        self.assertEqual(entry["state"], "up")
        self.assertGreater(entry["up_since"], 0)
        self.assertEqual(entry["http_address"], f"127.0.0.1:{d.http_port}")
        first_up_since = entry["up_since"]

        d.kill()
        c.wait_states({"dyn-a": "down"}, observers=c.servers[:4], timeout=5)
        d.start().wait_ready()
        c.wait_states({s.id: "up" for s in c.servers})
        self.assertEqual(self.wait_same_index_everywhere(d, c.servers), index)
        # Warm-up starts again with the new start.
        self.assertGreater(c.servers[3].view()["servers"]["dyn-a"]["up_since"], first_up_since)
        self.assertIn("admitted", "".join(s.log() for s in c.servers[:3]))

    def test_servers_joining_at_once_get_distinct_indices(self):
        c = self.make_cluster(3).start_all()
        joiners = [c.add_dynamic(f"dyn-{n}") for n in range(5)]
        for d in joiners:  # all at once: different triad servers admit them
            d.start()
        for d in joiners:
            d.wait_ready()
        c.wait_states({s.id: "up" for s in c.servers}, timeout=15)
        indices = {d.id: self.wait_same_index_everywhere(d, c.servers) for d in joiners}
        self.assertEqual(len(set(indices.values())), len(joiners), indices)
        self.assertTrue(all(3 <= i <= 63 for i in indices.values()), indices)

    def test_the_triad_remembers_dynamic_servers_across_its_own_restart(self):
        c = self.make_cluster(3).start_all()
        d = c.add_dynamic("dyn-a")
        d.start().wait_ready()
        c.wait_states({s.id: "up" for s in c.servers})
        index = self.wait_same_index_everywhere(d, c.servers)
        d.stop()
        for triad in c.servers[:3]:  # every triad server restarts while dyn-a is away
            triad.kill()
        for triad in c.servers[:3]:
            triad.start()
        for triad in c.servers[:3]:
            triad.wait_ready()
        c.wait_states({"s0": "up", "s1": "up", "s2": "up", "dyn-a": "down"},
                      observers=c.servers[:3])
        d.start().wait_ready()
        c.wait_states({s.id: "up" for s in c.servers})
        self.assertEqual(self.wait_same_index_everywhere(d, c.servers), index)

    def test_an_index_is_freed_after_the_dynamic_server_timeout(self):
        c = self.make_cluster(3, dynamic_server_timeout="2s").start_all()
        d = c.add_dynamic("dyn-a")
        d.start().wait_ready()
        c.wait_states({s.id: "up" for s in c.servers})
        self.wait_same_index_everywhere(d, c.servers)
        d.stop()
        c.wait_states({"dyn-a": "down"}, observers=c.servers[:3], timeout=5)
        # Down for longer than the timeout: gone from every view and /status.
        wait_for(lambda: all("dyn-a" not in o.view()["servers"] and
                             "dyn-a" not in self.indices(o) for o in c.servers[:3]),
                 10, "dyn-a to be forgotten by every triad server")
        self.assertIn("its index is free again", "".join(s.log() for s in c.servers[:3]))
        # It comes back and is admitted again, with one index in every view.
        d.start().wait_ready()
        c.wait_states({s.id: "up" for s in c.servers}, timeout=15)
        self.wait_same_index_everywhere(d, c.servers)

    def test_join_startup_errors(self):
        c = self.make_cluster(1)

        def run(*args):
            return subprocess.run(
                [os.environ.get("CLUSTER_SIDECAR", "cluster-sidecar"), "--config",
                 c.config_path, *args], capture_output=True, text=True, timeout=30)

        static = run("--server", "s0", "--join", "--cluster-address", "127.0.0.1:1",
                     "--http-address", "127.0.0.1:2")
        self.assertEqual(static.returncode, 1)
        self.assertIn("is a static server", static.stderr)
        missing = run("--server", "dyn", "--join")
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("--cluster-address", missing.stderr)
        taken = run("--server", "dyn", "--join", "--cluster-address",
                    f"127.0.0.1:{c.servers[0].cluster_port}", "--http-address", "127.0.0.1:2")
        self.assertEqual(taken.returncode, 1)
        self.assertIn("already used by \"s0\"", taken.stderr)
        unknown = run("--server", "nobody")
        self.assertEqual(unknown.returncode, 1)
        self.assertIn("--join", unknown.stderr)
        # A data dir that holds another server's index is not taken over.
        data_dir = os.path.join(c.dir, "copied")
        os.makedirs(data_dir)
        with open(os.path.join(data_dir, "dynamic-index"), "w") as f:
            f.write('{"cluster": "itest", "id": "dyn-other", "index": 7}\n')
        copied = run("--server", "dyn", "--join", "--cluster-address", "127.0.0.1:1",
                     "--http-address", "127.0.0.1:2", "--data-dir", data_dir)
        self.assertEqual(copied.returncode, 1)
        self.assertIn("belongs to server \"dyn-other\"", copied.stderr)


if __name__ == "__main__":
    unittest.main()
