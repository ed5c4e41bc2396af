"""Starts real cluster-sidecar processes on 127.0.0.1 for integration tests.

Every cluster gets its own directory, key, cluster file and free ports; every
process it starts is killed by PID when the test ends, pass or fail. Waiting is
bounded polling on a condition, never a fixed sleep.
"""

import fcntl
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

SIDECAR = os.environ.get("CLUSTER_SIDECAR", "cluster-sidecar")
CLUSTERCTL = os.environ.get("CLUSTERCTL", "clusterctl")

# The view file layout of shared/cluster_view.h, format version 2.
_VIEW_FORMAT_VERSION = 2
_HEADER = struct.Struct("<IHHIIQ")
_VIEW_HEAD = struct.Struct("<QqIi64s")
_SERVER = struct.Struct("<BBBBIQq64s64s64s48s")
_DEPLOYMENT = struct.Struct("<128s48sQQ1280s")  # server_commits: 64 x 20 bytes
_MAX_DEPLOYMENTS = 8
_STATES = {0: "absent", 1: "up", 2: "draining", 3: "down"}


# Ports below the kernel's ephemeral range (32768-60999 on Linux): a port the kernel
# picked with bind(0) can be taken again by any outgoing connection of a parallel
# test before the server that was meant to listen on it starts.
_PORT_RANGE = (10000, 32000)
# Tests that ctest runs side by side each pick ports and start their servers a
# moment later; a port is free when picked but another test could pick it too
# before either listens (CI saw a sidecar that never came up). So every test
# process reserves what it picks, for as long as it runs (a server it kills and
# starts again gets its port back): an exclusive lock on a file per port, which
# the kernel drops when the process ends, however it ends. The files stay.
_RESERVATIONS = os.path.join(tempfile.gettempdir(), "cluster-balance-test-ports")
_reservations_held = {}  # port -> the open file whose lock reserves it


def _reserve(port):
    """True when `port` is now reserved by this process (and was by no other)."""
    if port in _reservations_held:
        return False  # ours already, handed out before
    os.makedirs(_RESERVATIONS, exist_ok=True)
    f = open(os.path.join(_RESERVATIONS, str(port)), "a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # another test process holds it
        f.close()
        return False
    _reservations_held[port] = f
    return True


def free_ports(count):
    """Ports nobody uses now, below the ephemeral range, reserved for this test
    process against the other tests running beside it; held open together while
    picking so that they differ."""
    sockets = []
    try:
        while len(sockets) < count:
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", random.randint(*_PORT_RANGE)))
            except OSError:  # in use: try another
                s.close()
                continue
            if not _reserve(s.getsockname()[1]):  # another test's, or ours already
                s.close()
                continue
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_for(condition, timeout, what, interval=0.02):
    """Polls `condition` until it returns a true value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except (OSError, ValueError, KeyError) as error:  # not up yet, half-written file
            last_error = error
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                 + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(interval)


def read_view(path):
    """The view in a view file, read with the seqlock protocol: generation, publisher,
    servers (id -> state, index, ...) and deployments (name -> commit, current and
    reported server indices, server_commits index -> hex)."""
    with open(path, "rb") as f:
        for _ in range(100):
            data = f.read()
            f.seek(0)
            magic, version, _, size, capacity, sequence = _HEADER.unpack_from(data, 0)
            if magic != 0x57564243 or version != _VIEW_FORMAT_VERSION or len(data) != size:
                raise ValueError(f"{path}: not a version {_VIEW_FORMAT_VERSION} view file")
            if sequence % 2:
                continue
            with open(path, "rb") as header:
                again = _HEADER.unpack_from(header.read(_HEADER.size), 0)[5]
            if again != sequence:
                continue
            generation, _, _, publisher, _ = _VIEW_HEAD.unpack_from(data, _HEADER.size)
            servers = {}
            offset = _HEADER.size + _VIEW_HEAD.size
            for _ in range(capacity):
                fields = _SERVER.unpack_from(data, offset)
                offset += _SERVER.size
                if fields[0] != 0:
                    sid = fields[7].split(b"\0", 1)[0].decode()
                    servers[sid] = {"state": _STATES[fields[0]], "index": fields[1],
                                    "dynamic": bool(fields[2] & 1),
                                    "incarnation": fields[5], "up_since": fields[6],
                                    "http_address": fields[9].split(b"\0", 1)[0].decode()}
            deployments = {}
            for _ in range(_MAX_DEPLOYMENTS):
                name, commit, current, reported, commits = _DEPLOYMENT.unpack_from(data, offset)
                offset += _DEPLOYMENT.size
                name = name.split(b"\0", 1)[0].decode()
                if not name:
                    continue
                deployments[name] = {
                    "commit": commit.split(b"\0", 1)[0].decode(),
                    "current": [i for i in range(capacity) if current >> i & 1],
                    "reported": [i for i in range(capacity) if reported >> i & 1],
                    "server_commits": {i: commits[20 * i:20 * i + 20].hex()
                                       for i in range(capacity)
                                       if any(commits[20 * i:20 * i + 20])}}
            return {"generation": generation, "publisher": publisher, "servers": servers,
                    "deployments": deployments}
    raise ValueError(f"{path}: always mid-update")


class Server:
    def __init__(self, cluster, index, sid, ports):
        self.cluster = cluster
        self.index = index
        self.id = sid
        self.cluster_port, self.http_port, self.admin_port, self.memcached_port = ports
        self.data_dir = os.path.join(cluster.dir, sid)
        self.view_file = os.path.join(cluster.dir, sid + ".view")
        self.log_path = os.path.join(cluster.dir, sid + ".log")
        self.process = None
        self.dynamic = False  # started with --join; not in the cluster file

    # -- process control
    def start(self, config=None, extra_args=(), env=None):
        if self.dynamic:
            extra_args = ["--join",
                          "--cluster-address", f"127.0.0.1:{self.cluster_port}",
                          "--http-address", f"127.0.0.1:{self.http_port}",
                          "--admin-listen", f"127.0.0.1:{self.admin_port}",
                          "--memcached-listen", f"127.0.0.1:{self.memcached_port}",
                          "--data-dir", self.data_dir,
                          "--view-file", self.view_file, *extra_args]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [SIDECAR, "--config", config or self.cluster.config_path, "--server", self.id,
                 *extra_args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})})
        self.cluster.started.append(self.process)
        return self

    def signal(self, number):
        self.process.send_signal(number)

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self):
        """SIGTERM and wait for the clean exit; returns the exit code."""
        self.process.terminate()
        return self.process.wait(timeout=10)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    # -- what it says
    def status(self):
        url = f"http://127.0.0.1:{self.admin_port}/status"
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.load(response)

    def post(self, path):
        base = f"http://127.0.0.1:{self.admin_port}"
        request = urllib.request.Request(base + path, data=b"", method="POST",
                                         headers=csrf_headers(base))
        with urllib.request.urlopen(request, timeout=2) as response:
            return json.load(response)

    def metrics(self):
        url = f"http://127.0.0.1:{self.admin_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()

    def states(self):
        """id -> state, as this server's /status says."""
        return {s["id"]: s["state"] for s in self.status()["servers"]}

    def view(self):
        return read_view(self.view_file)

    def wait_ready(self, timeout=30):
        # A sanitizer build on a loaded 2-core machine can take over 10 s to open
        # its store and repository and listen; polling ends as soon as it answers.
        def answered():
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"{self.id} exited with status {self.process.returncode} "
                                     f"before answering /status; its log ends:\n"
                                     + self.log()[-2000:])
            return self.status()

        try:
            return wait_for(answered, timeout, f"{self.id} to answer /status")
        except AssertionError as error:
            if "its log ends" in str(error):
                raise
            raise AssertionError(f"{error}; its log ends:\n{self.log()[-2000:]}") from None


def csrf_headers(base_url, headers=None, context=None, timeout=5):
    """`headers` (credentials, ...) plus the X-CSRF-Token every POST to a sidecar's
    admin endpoint must carry, read from GET /csrf-token with those headers. Without
    the header when that GET is refused (401, 429: the POST will be too) or the
    sidecar predates the token (404)."""
    headers = dict(headers or {})
    request = urllib.request.Request(base_url + "/csrf-token", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            headers["X-CSRF-Token"] = json.load(response)["csrf_token"]
    except urllib.error.HTTPError:
        pass
    return headers


class Cluster:
    """A cluster file for `count` static servers, and their processes."""

    def __init__(self, count, heartbeat_interval="200ms", heartbeat_timeout="1s",
                 cluster_name="itest", key=None, dynamic_server_timeout="15m",
                 durability=None):
        self.dir = tempfile.mkdtemp(prefix="cluster-balance-itest-")
        self.started = []
        self.key_path = os.path.join(self.dir, "cluster.key")
        with open(self.key_path, "w") as f:
            f.write(key or "integration-test-key-0123456789abcdef\n")
        os.chmod(self.key_path, 0o600)
        ports = free_ports(4 * count)
        self.servers = [Server(self, i, f"s{i}", ports[4 * i:4 * i + 4]) for i in range(count)]
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.dynamic_server_timeout = dynamic_server_timeout
        self.durability = durability  # None: the cluster file's default
        self.config_path = self.write_config("cluster.toml", cluster_name=cluster_name)

    def write_config(self, name, cluster_name="itest", order=None, key=None):
        """Writes a cluster file; `order` lists server positions to reorder them.

        The key file is named relative to the cluster file ("cluster.key"), so a file
        written with another `key` (in a folder of its own) has the same meaning and
        digest: only the key differs."""
        folder = self.dir
        if key is not None:
            folder = tempfile.mkdtemp(dir=self.dir, prefix="other-key-")
            key_path = os.path.join(folder, "cluster.key")
            with open(key_path, "w") as f:
                f.write(key)
            os.chmod(key_path, 0o600)
        lines = [
            "[cluster]",
            f'name = "{cluster_name}"',
            'key_file = "cluster.key"',
            f'heartbeat_interval = "{self.heartbeat_interval}"',
            f'heartbeat_timeout = "{self.heartbeat_timeout}"',
            f'dynamic_server_timeout = "{self.dynamic_server_timeout}"',
            'slow_start = "10s"',
        ]
        if self.durability is not None:
            lines.append(f'durability = "{self.durability}"')
        static = [s for s in self.servers if not s.dynamic]
        for position in (order or range(len(static))):
            s = static[position]
            lines += [
                "[[server]]",
                f'id = "{s.id}"',
                f'cluster_address = "127.0.0.1:{s.cluster_port}"',
                f'http_address = "127.0.0.1:{s.http_port}"',
                f'admin_listen = "127.0.0.1:{s.admin_port}"',
                f'memcached_listen = "127.0.0.1:{s.memcached_port}"',
                f'data_dir = "{s.data_dir}"',
                f'view_file = "{s.view_file}"',
            ]
        path = os.path.join(folder, name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def add_dynamic(self, sid):
        """A server that is not in the cluster file; start() runs it with --join."""
        taken = {p for s in self.servers
                 for p in (s.cluster_port, s.http_port, s.admin_port, s.memcached_port)}
        ports = free_ports(4)
        while taken & set(ports):  # chosen before those servers listened
            ports = free_ports(4)
        server = Server(self, None, sid, ports)
        server.dynamic = True
        self.servers.append(server)
        return server

    def start_all(self):
        for s in self.servers:
            s.start()
        for s in self.servers:
            s.wait_ready()
        return self

    def wait_states(self, expected, observers=None, timeout=10):
        """Waits until every observer's /status AND view file show `expected`."""
        observers = observers or [s for s in self.servers if s.process and s.process.poll() is None]

        def agreed():
            for o in observers:
                if any(o.states().get(sid) != st for sid, st in expected.items()):
                    return False
                view = o.view()["servers"]
                if any(view.get(sid, {}).get("state") != st for sid, st in expected.items()):
                    return False
            return True

        wait_for(agreed, timeout, f"{[o.id for o in observers]} to see {expected}")

    def close(self, keep_dir=False):
        for process in self.started:
            if process.poll() is None:
                try:
                    process.send_signal(signal.SIGCONT)
                    process.kill()
                except ProcessLookupError:
                    pass
            process.wait(timeout=10)
        if not keep_dir and os.environ.get("KEEP_ITEST_DIRS") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)


def run_clusterctl(*args):
    return subprocess.run([CLUSTERCTL, *args], capture_output=True, text=True, timeout=30)
