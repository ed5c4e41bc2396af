"""Real network partitions for integration tests: every server in its own network
namespace, joined by a veth pair to a bridge in a namespace of its own, links cut
and packets dropped with nftables in the bridge's namespace, latency added with
tc netem on the servers' interfaces where the kernel has it.

    10.77.0.1 (ns s0) --veth-- +
    10.77.0.2 (ns s1) --veth-- +-- br0 (ns bridge: nftables bridge filter)
    ...                        +

Namespaces are named after this test process (cbt<pid>-...), so tests that ctest
runs side by side never meet; the addresses repeat in every test, each behind its
own bridge. The test process itself stays in the root namespace and reaches a
server's loopback listeners (admin, memcached) through sockets made inside the
server's namespace (socket_in). Needs root, `ip` (iproute2) and `nft` (nftables);
Network.unavailable() says why when they are missing, for the skip message.

Everything is removed by Network.close(): deleting a namespace deletes its veth
ends and rules. Processes must be killed first (NetnsCluster.close does both).
"""

import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading

from sidecar_cluster import SIDECAR, read_view, wait_for

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

SUBNET = "10.77.0"
CLUSTER_PORT = 7000
HTTP_PORT = 8000
ADMIN_PORT = 9000
MEMCACHED_PORT = 11211


def _run(*args, check=True):
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {result.returncode}: "
                           f"{result.stderr.strip() or result.stdout.strip()}")
    return result


def socket_in(netns, family=socket.AF_INET, kind=socket.SOCK_STREAM):
    """A socket that lives in network namespace `netns` (by name): made by a
    short-lived thread that entered it, since setns changes the calling thread
    only; a socket stays in the namespace it was made in."""
    made = {}

    def make():
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {netns}")
            finally:
                os.close(fd)
            made["socket"] = socket.socket(family, kind)
        except Exception as error:  # handed to the caller
            made["error"] = error

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    if "error" in made:
        raise made["error"]
    return made["socket"]


def connect_in(netns, port, host="127.0.0.1", timeout=3):
    s = socket_in(netns)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
    except Exception:
        s.close()
        raise
    return s


class _HttpInNetns(http.client.HTTPConnection):
    def __init__(self, netns, port, timeout):
        super().__init__("127.0.0.1", port, timeout=timeout)
        self._netns = netns

    def connect(self):
        self.sock = connect_in(self._netns, self.port, timeout=self.timeout)


def http_get(netns, port, path, timeout=3):
    """The body of a 200 answer to GET `path` on 127.0.0.1:`port` in `netns`."""
    connection = _HttpInNetns(netns, port, timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} in {netns}: {response.status} {body[:200]!r}")
        return body
    finally:
        connection.close()


class Memcached:
    """A minimal memcached text-protocol client over one socket in a namespace:
    set and get, each returning the server's reply or raising on a broken
    connection."""

    def __init__(self, netns, port=MEMCACHED_PORT, timeout=8):
        self.socket = connect_in(netns, port, timeout=timeout)
        self.buffer = b""

    def close(self):
        self.socket.close()

    def _line(self):
        while b"\r\n" not in self.buffer:
            chunk = self.socket.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _exactly(self, count):
        while len(self.buffer) < count:
            chunk = self.socket.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def set(self, key, value):
        """The reply line: b"STORED", or b"SERVER_ERROR ..." and so on."""
        self.socket.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (key.encode(), len(value), value))
        return self._line()

    def get_many(self, keys):
        """{key: value} of the hits; raises RuntimeError with the server's line when
        it answers an error."""
        self.socket.sendall(b"get " + " ".join(keys).encode() + b"\r\n")
        found = {}
        while True:
            line = self._line()
            if line == b"END":
                return found
            if not line.startswith(b"VALUE "):
                raise RuntimeError(line.decode(errors="replace"))
            _, key, _, size = line.split(b" ")[:4]
            found[key.decode()] = self._exactly(int(size) + 2)[:-2]

    def get(self, key):
        return self.get_many([key]).get(key)


class Network:
    """The namespaces, veth pairs and bridge of `count` servers."""

    @staticmethod
    def unavailable():
        """Why partitions cannot be made here (None when they can)."""
        if os.geteuid() != 0:
            return "not root: network namespaces need CAP_SYS_ADMIN"
        for tool in ("ip", "nft"):
            if shutil.which(tool) is None:
                return f"`{tool}` is not installed (scripts/install-deps lists iproute2 and nftables)"
        probe = f"cbt{os.getpid()}-probe"
        made = _run("ip", "netns", "add", probe, check=False)
        if made.returncode != 0:
            return f"cannot create a network namespace: {made.stderr.strip()}"
        try:
            table = _run("ip", "netns", "exec", probe, "nft", "add", "table", "bridge", "probe",
                         check=False)
            if table.returncode != 0:
                return f"nftables cannot make a bridge table: {table.stderr.strip()}"
        finally:
            _run("ip", "netns", "del", probe, check=False)
        return None

    @staticmethod
    def netem_available():
        """Whether tc netem works in this kernel (CONFIG_NET_SCH_NETEM)."""
        probe = f"cbt{os.getpid()}-netem"
        if _run("ip", "netns", "add", probe, check=False).returncode != 0:
            return False
        try:
            return _run("ip", "netns", "exec", probe, "tc", "qdisc", "add", "dev", "lo", "root",
                        "netem", "delay", "1ms", check=False).returncode == 0
        finally:
            _run("ip", "netns", "del", probe, check=False)

    @staticmethod
    def remove_stale():
        """Deletes the namespaces of earlier test processes that died before their
        cleanup ran (kill -9 of ctest, a timeout): their addresses would answer."""
        listed = _run("ip", "netns", "list", check=False)
        for line in listed.stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            match = re.fullmatch(r"cbt(\d+)-.*", name)
            if match is None or int(match.group(1)) == os.getpid():
                continue
            try:
                os.kill(int(match.group(1)), 0)
                continue  # its test process is still running
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
            _run("ip", "netns", "del", name, check=False)

    def __init__(self, count):
        Network.remove_stale()
        self.prefix = f"cbt{os.getpid()}"
        self.bridge = f"{self.prefix}-br"
        self.names = [f"{self.prefix}-s{i}" for i in range(count)]
        self.made = []
        self.netem = None  # whether tc netem works here: found out on first use
        try:
            self._make()
        except Exception:
            self.close()
            raise

    def address(self, i):
        return f"{SUBNET}.{i + 1}"

    def _make(self):
        _run("ip", "netns", "add", self.bridge)
        self.made.append(self.bridge)
        _run("ip", "-n", self.bridge, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", self.bridge, "link", "set", "br0", "up")
        for i, name in enumerate(self.names):
            _run("ip", "netns", "add", name)
            self.made.append(name)
            # Both ends are made inside their namespaces: no name in the root
            # namespace, so parallel tests cannot collide.
            _run("ip", "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name",
                 f"p{i}", "netns", self.bridge)
            _run("ip", "-n", self.bridge, "link", "set", f"p{i}", "master", "br0", "up")
            _run("ip", "-n", name, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            _run("ip", "-n", name, "link", "set", "eth0", "up")
            _run("ip", "-n", name, "link", "set", "lo", "up")
        self._nft("add table bridge partition\n"
                  "add chain bridge partition forward "
                  "{ type filter hook forward priority 0; policy accept; }")

    def _nft(self, script):
        process = subprocess.run(["ip", "netns", "exec", self.bridge, "nft", "-f", "-"],
                                 input=script, capture_output=True, text=True, timeout=30)
        if process.returncode != 0:
            raise RuntimeError(f"nft: {process.stderr.strip()}\n{script}")

    # -- faults
    def cut(self, a, b):
        """No packet between servers a and b, either way (the TCP connections
        between them fall silent; nothing is closed)."""
        x, y = self.address(a), self.address(b)
        self._nft(f"add rule bridge partition forward ip saddr {x} ip daddr {y} drop\n"
                  f"add rule bridge partition forward ip saddr {y} ip daddr {x} drop")

    def isolate(self, a, from_servers):
        for b in from_servers:
            if b != a:
                self.cut(a, b)

    def lose(self, percent):
        """Drops `percent` % of the packets crossing the bridge, at random."""
        self._nft(f"add rule bridge partition forward numgen random mod 100 < {int(percent)} "
                  "counter drop")

    def dropped_at_random(self):
        """Packets the rule of lose() has dropped so far."""
        listing = _run("ip", "netns", "exec", self.bridge, "nft", "list", "chain", "bridge",
                       "partition", "forward").stdout
        total = 0
        for line in listing.splitlines():
            if "numgen random" in line and "packets" in line:
                total += int(line.split("packets")[1].split()[0])
        return total

    def delay(self, milliseconds):
        """Adds `milliseconds` to every packet a server sends (tc netem on each
        server's interface: a round trip between two servers grows by twice that).
        Returns False, changing nothing, where the kernel has no netem."""
        for name in self.names:
            result = _run("ip", "netns", "exec", name, "tc", "qdisc", "add", "dev", "eth0", "root",
                          "netem", "delay", f"{milliseconds}ms", check=False)
            if result.returncode != 0:
                for undone in self.names:
                    _run("ip", "netns", "exec", undone, "tc", "qdisc", "del", "dev", "eth0",
                         "root", check=False)
                self.netem = False
                return False
        self.netem = True
        return True

    def heal(self):
        """Every link whole again, no loss and no added delay."""
        self._nft("flush chain bridge partition forward")
        if self.netem:
            for name in self.names:
                _run("ip", "netns", "exec", name, "tc", "qdisc", "del", "dev", "eth0", "root",
                     check=False)

    def close(self):
        for name in reversed(self.made):
            _run("ip", "netns", "del", name, check=False)
        self.made = []


class NetnsServer:
    def __init__(self, cluster, index):
        self.cluster = cluster
        self.index = index
        self.id = f"s{index}"
        self.netns = cluster.network.names[index]
        self.data_dir = os.path.join(cluster.dir, self.id)
        self.view_file = os.path.join(cluster.dir, self.id + ".view")
        self.log_path = os.path.join(cluster.dir, self.id + ".log")
        self.process = None

    def start(self):
        with open(self.log_path, "ab") as log:
            # `ip netns exec` execs the sidecar: the PID is the sidecar's.
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, SIDECAR, "--config", self.cluster.config_path,
                 "--server", self.id],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.cluster.started.append(self.process)
        return self

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=10)

    def signal(self, number):
        self.process.send_signal(number)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def status(self):
        return json.loads(http_get(self.netns, ADMIN_PORT, "/status"))

    def metrics(self):
        return http_get(self.netns, ADMIN_PORT, "/metrics").decode()

    def states(self):
        return {s["id"]: s["state"] for s in self.status()["servers"]}

    def view(self):
        return read_view(self.view_file)

    def view_states(self):
        return {sid: s["state"] for sid, s in self.view()["servers"].items()}

    def memcached(self):
        return Memcached(self.netns)

    def wait_ready(self, timeout=30):
        def answered():
            if self.process.poll() is not None:
                raise AssertionError(f"{self.id} exited with {self.process.returncode}; its log "
                                     f"ends:\n{self.log()[-2000:]}")
            return self.status()
        return wait_for(answered, timeout, f"{self.id} to answer /status")


class NetnsCluster:
    """A cluster file for `count` static servers, each in its own namespace of
    `network`, and their processes."""

    def __init__(self, network, heartbeat_interval="200ms", heartbeat_timeout="1s"):
        self.network = network
        self.dir = tempfile.mkdtemp(prefix="cluster-balance-netns-")
        self.started = []
        self.servers = [NetnsServer(self, i) for i in range(len(network.names))]
        key_path = os.path.join(self.dir, "cluster.key")
        with open(key_path, "w") as f:
            f.write("partition-test-key-0123456789abcdef\n")
        os.chmod(key_path, 0o600)
        lines = ["[cluster]", 'name = "partitions"', 'key_file = "cluster.key"',
                 f'heartbeat_interval = "{heartbeat_interval}"',
                 f'heartbeat_timeout = "{heartbeat_timeout}"']
        for s in self.servers:
            address = network.address(s.index)
            lines += ["[[server]]", f'id = "{s.id}"',
                      f'cluster_address = "{address}:{CLUSTER_PORT}"',
                      f'http_address = "{address}:{HTTP_PORT}"',
                      f'admin_listen = "127.0.0.1:{ADMIN_PORT}"',
                      f'memcached_listen = "127.0.0.1:{MEMCACHED_PORT}"',
                      f'data_dir = "{s.data_dir}"', f'view_file = "{s.view_file}"']
        self.config_path = os.path.join(self.dir, "cluster.toml")
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start_all(self):
        for s in self.servers:
            s.start()
        for s in self.servers:
            s.wait_ready()
        return self

    def running(self):
        return [s for s in self.servers if s.process and s.process.poll() is None]

    def wait_states(self, expected, observers=None, timeout=10):
        """Until every observer's /status and view file show `expected`."""
        observers = observers or self.running()

        def agreed():
            for o in observers:
                states, view = o.states(), o.view_states()
                if any(states.get(k) != v or view.get(k) != v for k, v in expected.items()):
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
