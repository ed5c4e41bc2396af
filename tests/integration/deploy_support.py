"""Helpers for the deployment integration tests (test_deploy.py): application
trees on disk, `clusterctl deploy` with its JSON events, and what a server runs
as its data directory and its /status say.

A tree is described as a dict path -> entry, where an entry is
("file", bytes), ("exec", bytes) or ("symlink", target): what write_tree makes
and what read_tree reads back, so two trees compare with ==.
"""

import io
import json
import os
import random
import shutil
import tarfile
import urllib.error
import urllib.request

import sidecar_cluster as sc

# POST /deploy takes the stage and host of the cluster file's [deploy] (by
# default "production" and "default").
DEPLOYMENT_PREFIX = "production/webapp/default/"


def deployment_name(webapp):
    return DEPLOYMENT_PREFIX + webapp


def random_bytes(rng, size):
    return rng.getrandbits(8 * size).to_bytes(size, "little") if size else b""


def sample_tree(seed=1):
    """A small tree with a bit of everything: text, binary, an executable, a
    nested directory and a relative symlink."""
    rng = random.Random(seed)
    return {
        "index.html": ("file", b"<h1>hello %d</h1>\n" % seed),
        "static/app.js": ("file", b"console.log(%d);\n" % seed * 50),
        "static/img/logo.bin": ("file", random_bytes(rng, 3000)),
        "bin/start.sh": ("exec", b"#!/bin/sh\necho started %d\n" % seed),
        "static/latest.js": ("symlink", "app.js"),
        "docs/readme": ("symlink", "../index.html"),
        "empty.txt": ("file", b""),
    }


def random_tree(count, size, seed):
    """`count` files of `size` random bytes, spread over a few directories."""
    rng = random.Random(seed)
    return {f"d{i % 10}/f{i:05d}.bin": ("file", random_bytes(rng, size)) for i in range(count)}


def write_tree(directory, tree):
    """Makes `directory` hold exactly `tree` (removing whatever was there)."""
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    for path, (kind, content) in tree.items():
        full = os.path.join(directory, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if kind == "symlink":
            os.symlink(content, full)
            continue
        with open(full, "wb") as f:
            f.write(content)
        os.chmod(full, 0o755 if kind == "exec" else 0o644)
    return directory


def read_tree(directory):
    """The tree under `directory` (symlinks not followed), in write_tree's form."""
    tree = {}
    for root, dirs, files in os.walk(directory):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            full = os.path.join(root, name)
            path = os.path.relpath(full, directory)
            if os.path.islink(full):
                tree[path] = ("symlink", os.readlink(full))
                continue
            with open(full, "rb") as f:
                content = f.read()
            tree[path] = ("exec" if os.stat(full).st_mode & 0o100 else "file", content)
    return tree


def tree_bytes(tree):
    return sum(len(content) for kind, content in tree.values() if kind != "symlink")


def tar_gz(tree):
    """The tree as a .tar.gz archive (what a build would upload)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, (kind, content) in sorted(tree.items()):
            info = tarfile.TarInfo(path)
            if kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = content
                archive.addfile(info)
            else:
                info.size = len(content)
                info.mode = 0o755 if kind == "exec" else 0o644
                archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


# -- clusterctl

def clusterctl_args(server, *args):
    return ["--admin", f"127.0.0.1:{server.admin_port}", *args]


def parse_events(stdout):
    """The JSON event lines of `clusterctl ... --json`, by kind: {"stored": [..], ...}."""
    events = {}
    for line in stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        event = json.loads(line)
        events.setdefault(event["event"], []).append(event)
    return events


class DeployResult:
    def __init__(self, completed):
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.events = parse_events(completed.stdout) if completed.stdout else {}

    @property
    def stored(self):
        return self.events["stored"][-1]

    @property
    def done(self):
        return self.events["done"][-1]

    @property
    def commit(self):
        return self.stored["commit"]

    def __repr__(self):
        return f"exit {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def deploy(server, source, webapp, *extra, timeout="20s"):
    """`clusterctl deploy source --webapp webapp --json` through `server`'s admin
    endpoint; the result with its parsed events."""
    return DeployResult(sc.run_clusterctl(
        *clusterctl_args(server, "deploy", source, "--webapp", webapp, "--json",
                         "--timeout", timeout, *extra)))


def rollback(server, webapp, to, timeout="20s"):
    return DeployResult(sc.run_clusterctl(
        *clusterctl_args(server, "rollback", "--webapp", webapp, "--to", to, "--json",
                         "--timeout", timeout)))


def post_deploy(server, archive, webapp, **query):
    """POST /deploy with `archive` as the body: (HTTP status, JSON answer)."""
    params = "&".join(f"{k}={urllib.request.quote(str(v))}"
                      for k, v in {"webapp": webapp, **query}.items())
    base = f"http://127.0.0.1:{server.admin_port}"
    request = urllib.request.Request(f"{base}/deploy?{params}", data=archive, method="POST",
                                     headers=sc.csrf_headers(base))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


# -- what a server runs

def current_link(server, webapp):
    return os.path.join(server.data_dir, "deploy", webapp, "current")


def live_commit(server, webapp):
    """The commit `current` names in the server's deploy root, or None."""
    try:
        target = os.readlink(current_link(server, webapp))
    except FileNotFoundError:
        return None
    return os.path.basename(target)


def live_tree(server, webapp):
    """The tree current/ names, resolved once: a switch while it is read does not
    mix two versions."""
    link = current_link(server, webapp)
    return read_tree(os.path.join(os.path.dirname(link), os.readlink(link)))


def reported_commit(status, server_id, webapp):
    """The commit a /status answer says `server_id` runs for the webapp, or ""."""
    for row in status.get("servers", []):
        if row.get("id") == server_id:
            entry = row.get("deployed", {}).get(deployment_name(webapp), {})
            return entry.get("commit", "")
    return ""


def self_reported(server, webapp):
    """(commit, error) the server reports for itself in its own /status."""
    for row in server.status().get("servers", []):
        if row.get("id") == server.id:
            entry = row.get("deployed", {}).get(deployment_name(webapp), {})
            return entry.get("commit", ""), entry.get("error", "")
    return "", ""


def pack_bytes_sent(servers):
    return sum(s.status()["deploy"]["pack_bytes_sent"] for s in servers)


def wait_running(servers, webapp, commit, timeout=20):
    """Waits until every server's current/ names `commit` and its /status reports it."""

    def running():
        return all(live_commit(s, webapp) == commit and self_reported(s, webapp)[0] == commit
                   for s in servers)

    sc.wait_for(running, timeout,
                f"{[s.id for s in servers]} to run {webapp} {commit[:10]}", interval=0.05)
