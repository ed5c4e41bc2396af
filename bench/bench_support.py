"""What several bench scripts share: reading a process's CPU time and memory
from /proc, reading a sidecar's view file, and memcached with memcaslap as the
store's anchor."""

import re
import socket
import subprocess


def cpu_ticks(pid):
    """utime + stime of `pid`, in clock ticks (/proc/<pid>/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise ValueError(f"no VmRSS for pid {pid}")


def quantile(values, q):
    """Nearest-rank quantile (q in (0, 1]) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 1))  # ceil(n*q)
    return ordered[int(rank) - 1]


def view_states(server):
    """id -> state from the server's view file; None while unreadable."""
    try:
        return {sid: rec["state"] for sid, rec in server.view()["servers"].items()}
    except (OSError, ValueError, KeyError, IndexError):
        return None


def start_memcached(port):
    """memcached 1.6 with one worker thread on 127.0.0.1:`port` (the caller
    kills it)."""
    return subprocess.Popen(["memcached", "-p", str(port), "-t", "1", "-U", "0",
                             "-l", "127.0.0.1", "-m", "1024", "-u", "nobody"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def memcaslap_tps(port, seconds):
    """memcaslap's TPS against 127.0.0.1:`port`: one thread, 50 connections,
    100-byte values, its default 90 % get / 10 % set."""
    out = subprocess.run(["memcaslap", "-s", f"127.0.0.1:{port}", "-T", "1", "-c", "50",
                          "-t", f"{seconds}s", "-X", "100"],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    match = re.search(r"TPS: (\d+)", out)
    if not match:
        raise RuntimeError("memcaslap printed no TPS:\n" + out)
    return int(match.group(1))


def wait_port(port, wait_for):
    def up():
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    wait_for(up, 10, f"port {port}")
