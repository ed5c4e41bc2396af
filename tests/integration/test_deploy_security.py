"""Deployment security of real sidecar processes (issue 13, item 5).

Every refused upload is sent raw to POST /deploy (the endpoint is an API; a
client other than clusterctl may build any archive), and must leave no trace:
no ref, no object, no live tree. Then remote admin (TLS, users, rate limit) and
activation commands (their environment, failures and timeouts).
"""

import base64
import gzip
import io
import json
import os
import socket
import ssl
import subprocess
import tarfile
import time
import unittest
import urllib.error
import urllib.request
import zipfile

from sidecar_cluster import CLUSTERCTL, Cluster, csrf_headers, wait_for, run_clusterctl

WEBAPP = "shop"
DEPLOYMENT = "production/webapp/default/shop"


# -- archives, built entry by entry so that any header can be forged

def tar_archive(entries, compression="", format=tarfile.GNU_FORMAT):
    """A tar of (TarInfo, data or None) pairs, as given (no checks, no reordering)."""
    buffer = io.BytesIO()
    # surrogateescape: a name holding "\udcff" is written as the raw byte 0xff.
    with tarfile.open(fileobj=buffer, mode="w" + (":" + compression if compression else ""),
                      format=format, encoding="utf-8", errors="surrogateescape") as tar:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buffer.getvalue()


def member(name, kind=tarfile.REGTYPE, mode=0o644, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = linkname
    info.mtime = 1700000000
    return info


def file_entry(name, data=b"content\n", mode=0o644):
    return (member(name, mode=mode), data)


def symlink_entry(name, target):
    return (member(name, tarfile.SYMTYPE, 0o777, target), None)


def zip_archive(names):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), b"zip content\n")
    return buffer.getvalue()


# -- talking to the admin endpoint

CSRF_TOKENS = {}  # (admin base URL, sidecar pid) -> its CSRF token

def request(server, method, path, body=None, headers=None, scheme="http", context=None,
            timeout=30, token_headers=None):
    """(HTTP status, JSON body or text) of one request; 4xx and 5xx are answers too.
    A POST carries the server's CSRF token, read with `token_headers` (default:
    `headers`) once per sidecar process: a test of wrong passwords must not have
    its failures counted twice."""
    base = f"{scheme}://127.0.0.1:{server.admin_port}"
    url = base + path
    headers = dict(headers or {})
    if method == "POST" and "X-CSRF-Token" not in headers:
        key = (base, server.process.pid)
        if key not in CSRF_TOKENS:
            fetched = csrf_headers(base, headers if token_headers is None else token_headers,
                                   context)
            if "X-CSRF-Token" in fetched:
                CSRF_TOKENS[key] = fetched["X-CSRF-Token"]
        if key in CSRF_TOKENS:
            headers["X-CSRF-Token"] = CSRF_TOKENS[key]
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as response:
            status, data = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, data = error.code, error.read()
    try:
        return status, json.loads(data)
    except ValueError:
        return status, data.decode(errors="replace")


def post_deploy(server, body, webapp=WEBAPP, **params):
    query = "&".join(f"{key}={value}" for key, value in {"webapp": webapp, **params}.items())
    return request(server, "POST", "/deploy?" + query, body,
                   {"Content-Type": "application/octet-stream"})


def git(server, *args):
    return subprocess.run(["git", "--git-dir", os.path.join(server.data_dir, "deploy.git"), *args],
                          capture_output=True, text=True, timeout=30, check=True).stdout


def repository_state(server):
    """The refs, the commits reachable from them and the objects stored: all that
    an upload could leave behind in the repository."""
    if not os.path.isdir(os.path.join(server.data_dir, "deploy.git")):
        return ("", "", "no repository")
    counts = {k: v for k, v in (line.split(": ") for line in git(server, "count-objects", "-v")
                                .splitlines()) if k in ("count", "in-pack")}
    return (git(server, "for-each-ref"), git(server, "rev-list", "--all"), counts)


def live_file(server, relative, webapp=WEBAPP):
    path = os.path.join(server.data_dir, "deploy", webapp, "current", relative)
    with open(path, "rb") as f:
        return f.read()


def deployed(server, name=DEPLOYMENT):
    """What this server's /status says it runs of `name`: {"commit", "error"} or None."""
    for entry in server.status()["servers"]:
        if entry["id"] == server.id:
            return entry["deployed"].get(name)
    return None


def wait_live(server, commit, timeout=20):
    wait_for(lambda: (deployed(server) or {}).get("commit") == commit, timeout,
             f"{server.id} to run {commit}")


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


class DeployTestCase(unittest.TestCase):
    def make_cluster(self, count=1, server_lines=(), extra_lines=()):
        """A started cluster; `server_lines` go into every [[server]] entry (the
        last one of the file takes them: one server), `extra_lines` after it."""
        cluster = Cluster(count)
        self.addCleanup(cluster.close)
        assert count == 1 or not server_lines
        with open(cluster.config_path, "a") as f:
            f.write("".join(line + "\n" for line in (*server_lines, *extra_lines)))
        return cluster

    def good_tar(self, text=b"hello\n"):
        return tar_archive([file_entry("index.html", text), file_entry("static/app.js", b"x" * 500)])

    def assert_refused_without_trace(self, server, body, entry, why=None):
        """POST /deploy of `body` is a 400 naming `entry` (and `why`), and nothing
        of it is stored, checked out or lost: the sidecar still answers."""
        before = repository_state(server)
        started = time.monotonic()
        status, answer = post_deploy(server, body)
        elapsed = time.monotonic() - started
        self.assertEqual(status, 400, answer)
        self.assertIsInstance(answer, dict, answer)
        self.assertTrue(answer["error"].startswith(entry + ": "), answer)
        if why:
            self.assertIn(why, answer["error"])
        self.assertEqual(repository_state(server), before)
        self.assertFalse(os.path.exists(os.path.join(server.data_dir, "deploy", WEBAPP)))
        self.assertEqual(server.status()["server"]["id"], server.id)
        self.assertIsNone(server.process.poll())
        return answer, elapsed


class RefusedArchiveTest(DeployTestCase):
    """Each refusal of item 5, in its own archive, then a good deploy."""

    def test_every_bad_archive_is_refused_and_leaves_nothing(self):
        server = self.make_cluster().start_all().servers[0]
        ok = file_entry("ok.txt")
        cases = [
            ("absolute path", tar_archive([ok, file_entry("/etc/evil")]), "/etc/evil",
             "absolute path"),
            ("'..' component", tar_archive([ok, file_entry("static/../../evil")]),
             "static/../../evil", "'..'"),
            ("symlink outside", tar_archive([ok, symlink_entry("static/up", "../../etc")]),
             "static/up", "outside the tree"),
            ("absolute symlink", tar_archive([ok, symlink_entry("passwd", "/etc/passwd")]),
             "passwd", "absolute"),
            # Each link alone stays inside when read lexically; followed as the
            # kernel does, "b" is the tree's root, so "a" names its parent.
            ("chain of symlinks",
             tar_archive([ok, symlink_entry("a", "sub/b/.."), symlink_entry("sub/b", "..")]),
             "a", "outside the tree"),
            ("chain to outside",
             tar_archive([ok, symlink_entry("first", "second/x"),
                          symlink_entry("second", "../elsewhere")]),
             "second", "outside the tree"),
            ("character device",
             tar_archive([ok, (member("dev/null", tarfile.CHRTYPE, 0o666), None)]), "dev/null",
             "device"),
            ("block device", tar_archive([ok, (member("sda", tarfile.BLKTYPE, 0o660), None)]),
             "sda", "device"),
            ("FIFO", tar_archive([ok, (member("pipe", tarfile.FIFOTYPE), None)]), "pipe", "FIFO"),
            ("setuid", tar_archive([ok, file_entry("bin/tool", b"#!/bin/sh\n", 0o4755)]),
             "bin/tool", "setuid"),
            ("setgid", tar_archive([ok, file_entry("bin/tool", b"#!/bin/sh\n", 0o2755)]),
             "bin/tool", "setgid"),
            ("hard link", tar_archive([ok, (member("copy", tarfile.LNKTYPE, linkname="ok.txt"),
                                            None)]), "copy", "hard link"),
            ("write through a symlink",
             tar_archive([file_entry("sub/y"), symlink_entry("a", "sub"), file_entry("a/x")]),
             "a/x", "symlink"),
            ("duplicate", tar_archive([ok, file_entry("ok.txt", b"again\n")]), "ok.txt",
             "duplicate"),
            # The byte 0xff is shown escaped: the answer is JSON, hence UTF-8.
            ("not UTF-8", tar_archive([ok, file_entry("bad\udcff.txt")]), "bad\\xFF.txt",
             "not valid UTF-8"),
            # Windows separators in a zip name are refused as such.
            ("zip backslash climb", zip_archive(["ok.txt", "..\\..\\evil.txt"]),
             "..\\..\\evil.txt", "Windows separator"),
            ("zip drive letter", zip_archive(["ok.txt", "C:/evil.txt"]), "C:/evil.txt",
             "drive letter"),
            ("zip drive-relative", zip_archive(["ok.txt", "C:evil.txt"]), "C:evil.txt",
             "drive letter"),
            ("gzip, '..'", tar_archive([ok, file_entry("../evil")], "gz"), "../evil", "'..'"),
        ]
        for what, body, entry, why in cases:
            with self.subTest(what):
                self.assert_refused_without_trace(server, body, entry, why)

        status, answer = post_deploy(server, self.good_tar(), version="1.0")
        self.assertEqual(status, 200, answer)
        wait_live(server, answer["commit"])
        self.assertEqual(live_file(server, "index.html"), b"hello\n")
        self.assertIn("refs/tags/", git(server, "for-each-ref"))

    def test_zip_backslash_name(self):
        # deploy_tree.h: "a zip name with '\\' ... is refused", though libarchive
        # would read "dir\\evil.txt" as "dir/evil.txt".
        server = self.make_cluster().start_all().servers[0]
        self.assert_refused_without_trace(server, zip_archive(["ok.txt", "dir\\evil.txt"]),
                                          "dir\\evil.txt", "Windows separator")

    def test_archives_really_hold_the_bad_names(self):
        # The refusals above are only worth something if Python wrote what we meant.
        names = zipfile.ZipFile(io.BytesIO(zip_archive(["dir\\evil.txt", "C:/evil.txt"]))).namelist()
        self.assertEqual(names, ["dir\\evil.txt", "C:/evil.txt"])
        raw = tar_archive([file_entry("bad\udcff.txt"), file_entry("/etc/evil")])
        self.assertIn(b"bad\xff.txt", raw)
        self.assertIn(b"/etc/evil\0", raw)


class LimitsTest(DeployTestCase):
    """[deploy] max_files and max_size, and a compression bomb."""

    def make_limited(self):
        return self.make_cluster(extra_lines=["[deploy]", "max_files = 10",
                                              'max_size = "64KiB"']).start_all().servers[0]

    def test_more_files_than_max_files(self):
        server = self.make_limited()
        body = tar_archive([file_entry(f"f{i:02}.txt") for i in range(11)])
        self.assert_refused_without_trace(server, body, "f10.txt", "more than 10 files")
        status, answer = post_deploy(server, tar_archive([file_entry(f"f{i:02}.txt")
                                                          for i in range(10)]))
        self.assertEqual(status, 200, answer)
        wait_live(server, answer["commit"])

    def test_more_bytes_than_max_size(self):
        server = self.make_limited()
        body = tar_archive([file_entry("a.bin", b"a" * 40000), file_entry("b.bin", b"b" * 30000)])
        self.assert_refused_without_trace(server, body, "b.bin", "more than 65536 bytes")
        status, answer = post_deploy(server, tar_archive([file_entry("a.bin", b"a" * 65536)]))
        self.assertEqual(status, 200, answer)
        wait_live(server, answer["commit"])
        self.assertEqual(live_file(server, "a.bin"), b"a" * 65536)

    def test_gzip_bomb_stops_at_the_limit(self):
        server = self.make_limited()
        # 100 MB of zeros in one file: about 100 KB once compressed, well within
        # the upload limit (max_size plus room for the archive's own overhead).
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
            info = member("zeros.bin")
            info.size = 100 * 1024 * 1024
            tar.addfile(info, io.BytesIO(bytes(info.size)))
        body = gzip.compress(buffer.getvalue(), compresslevel=9)
        del buffer
        self.assertLess(len(body), 1024 * 1024)
        before = vm_hwm_kib(server.process.pid)
        _, elapsed = self.assert_refused_without_trace(server, body, "zeros.bin",
                                                       "more than 65536 bytes")
        self.assertLess(elapsed, 5)
        # Peak memory: had the archive been inflated, the 100 MB would show.
        self.assertLess(vm_hwm_kib(server.process.pid) - before, 32 * 1024)
        status, answer = post_deploy(server, self.good_tar())
        self.assertEqual(status, 200, answer)


class LocalDirectoryTest(DeployTestCase):
    """clusterctl checks a directory before it uploads anything."""

    def deploy_directory(self, server, directory):
        return run_clusterctl("--admin", f"127.0.0.1:{server.admin_port}", "deploy", directory,
                              "--webapp", WEBAPP, "--timeout", "10s")

    def test_bad_directories_are_not_uploaded(self):
        cluster = self.make_cluster().start_all()
        server = cluster.servers[0]
        with_fifo = os.path.join(cluster.dir, "with-fifo")
        os.makedirs(os.path.join(with_fifo, "run"))
        with open(os.path.join(with_fifo, "index.html"), "w") as f:
            f.write("hello\n")
        os.mkfifo(os.path.join(with_fifo, "run", "pipe"))
        with_link = os.path.join(cluster.dir, "with-link")
        os.makedirs(with_link)
        with open(os.path.join(with_link, "index.html"), "w") as f:
            f.write("hello\n")
        os.symlink("/etc", os.path.join(with_link, "config"))
        before = repository_state(server)
        for directory, entry in ((with_fifo, "run/pipe"), (with_link, "config")):
            with self.subTest(entry):
                result = self.deploy_directory(server, directory)
                self.assertEqual(result.returncode, 1, result)
                self.assertIn(entry + ":", result.stderr)
                self.assertEqual(repository_state(server), before)
                self.assertFalse(os.path.exists(os.path.join(server.data_dir, "deploy", WEBAPP)))
        self.assertNotIn("POST /deploy", server.log())
        # Symlinks that stay inside are kept, under their own names.
        os.remove(os.path.join(with_link, "config"))
        os.symlink("index.html", os.path.join(with_link, "latest.html"))
        result = self.deploy_directory(server, with_link)
        self.assertEqual(result.returncode, 0, result)
        self.assertEqual(live_file(server, "index.html"), b"hello\n")
        live = os.path.join(server.data_dir, "deploy", WEBAPP, "current")
        self.assertEqual(os.readlink(os.path.join(live, "latest.html")), "index.html")


PASSWORD = "correct horse battery staple 7731"


class RemoteAdminTest(DeployTestCase):
    """An admin endpoint with TLS and users (as remote admin requires), on loopback."""

    def make_secure(self):
        cluster = Cluster(1)
        self.addCleanup(cluster.close)
        self.cert = os.path.join(cluster.dir, "cert.pem")
        key = os.path.join(cluster.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "1",
                        "-keyout", key, "-out", self.cert],
                       capture_output=True, check=True, timeout=60)
        line = subprocess.run([CLUSTERCTL, "passwd", "deployer", "--password-stdin"],
                              input=PASSWORD + "\n", capture_output=True, text=True,
                              check=True, timeout=30).stdout
        self.assertNotIn(PASSWORD, line)
        users = os.path.join(cluster.dir, "admin-users")
        with open(users, "w") as f:
            f.write(line)
        with open(cluster.config_path, "a") as f:
            f.write(f'admin_tls_certificate = "{self.cert}"\n'
                    f'admin_tls_key = "{key}"\n'
                    f'admin_users = "{users}"\n')
        self.context = ssl.create_default_context(cafile=self.cert)
        cluster.servers[0].start()
        self.server = cluster.servers[0]
        self.cluster = cluster
        wait_for(lambda: self.https("GET", "/status")[0] == 200, 10, "the TLS admin endpoint")
        return self.server

    def https(self, method, path, body=None, password=PASSWORD, user="deployer"):
        headers = {}
        if user is not None:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = "Basic " + token
        right = base64.b64encode(f"deployer:{PASSWORD}".encode()).decode()
        return request(self.server, method, path, body, headers, scheme="https",
                       context=self.context, token_headers={"Authorization": "Basic " + right})

    def clusterctl(self, *args, password=PASSWORD, user="deployer"):
        env = {**os.environ}
        env.pop("CLUSTERCTL_PASSWORD", None)
        if password is not None:
            env["CLUSTERCTL_PASSWORD"] = password
        command = [CLUSTERCTL, "--admin", f"https://127.0.0.1:{self.server.admin_port}",
                   "--ca-file", self.cert]
        if user is not None:
            command += ["--user", user]
        return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60,
                              env=env, stdin=subprocess.DEVNULL)

    def app_directory(self, text):
        app = os.path.join(self.cluster.dir, "app")
        os.makedirs(app, exist_ok=True)
        with open(os.path.join(app, "index.html"), "w") as f:
            f.write(text)
        return app

    def test_clusterctl_deploys_over_tls_with_a_password(self):
        server = self.make_secure()
        result = self.clusterctl("deploy", self.app_directory("over tls\n"), "--webapp", WEBAPP,
                                 "--version", "1.0", "--timeout", "20s")
        self.assertEqual(result.returncode, 0, result)
        self.assertEqual(live_file(server, "index.html"), b"over tls\n")
        result = self.clusterctl("deployments", "--json")
        self.assertEqual(result.returncode, 0, result)
        self.assertNotIn(PASSWORD, server.log())

    def test_credentials_are_required(self):
        server = self.make_secure()
        result = self.clusterctl("deploy", self.app_directory("x\n"), "--webapp", WEBAPP,
                                 user=None, password=None)
        self.assertNotEqual(result.returncode, 0, result)
        self.assertIn("authentication required", result.stderr)
        status, _ = self.https("GET", "/status", user=None)
        self.assertEqual(status, 401)
        status, _ = self.https("POST", "/deploy?webapp=shop", self.good_tar(), user=None)
        self.assertEqual(status, 401)
        self.assertEqual(repository_state(server)[0], "")
        status, _ = self.https("GET", "/status", password="not the password")
        self.assertEqual(status, 401)
        status, _ = self.https("GET", "/status", user="nobody")
        self.assertEqual(status, 401)
        result = self.clusterctl("status", password="not the password")
        self.assertNotEqual(result.returncode, 0, result)
        self.assertEqual(self.https("GET", "/status")[0], 200)
        # The admin page and everything it loads are behind the same login (issue 14).
        for path in ("/", "/admin.js", "/admin.css", "/history", "/csrf-token", "/metrics"):
            with self.subTest(path=path):
                self.assertEqual(self.https("GET", path, user=None)[0], 401)
                self.assertEqual(self.https("GET", path)[0], 200)
        status, _ = self.https("POST", "/servers/s0/drain", user=None)
        self.assertEqual(status, 401)

    def test_wrong_passwords_are_rate_limited(self):
        server = self.make_secure()
        wrong = "wrong-password-5512"
        for attempt in range(5):
            status, _ = self.https("POST", "/deploy?webapp=shop", self.good_tar(), password=wrong)
            self.assertEqual(status, 401, f"attempt {attempt + 1}")
        status, _ = self.https("POST", "/deploy?webapp=shop", self.good_tar(), password=wrong)
        self.assertEqual(status, 429)
        # Refused without checking: even the right password waits.
        status, _ = self.https("GET", "/status")
        self.assertEqual(status, 429)
        self.assertEqual(repository_state(server)[0], "")
        log = server.log()
        self.assertIn("wrong password", log)
        self.assertIn("deployer", log)
        self.assertNotIn(wrong, log)
        self.assertNotIn(PASSWORD, log)
        self.assertNotIn(base64.b64encode(f"deployer:{wrong}".encode()).decode(), log)

    def test_plain_http_to_the_tls_port_fails(self):
        server = self.make_secure()
        started = time.monotonic()
        with self.assertRaises((urllib.error.URLError, OSError, ConnectionError)):
            urllib.request.urlopen(f"http://127.0.0.1:{server.admin_port}/status", timeout=5)
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(self.https("GET", "/status")[0], 200)

    def test_remote_admin_without_tls_is_refused(self):
        cluster = Cluster(1)
        self.addCleanup(cluster.close)
        with open(cluster.config_path) as f:
            text = f.read()
        port = cluster.servers[0].admin_port
        text = text.replace(f'admin_listen = "127.0.0.1:{port}"', f'admin_listen = "0.0.0.0:{port}"')
        with open(cluster.config_path, "w") as f:
            f.write(text)
        result = run_clusterctl("check-config", cluster.config_path)
        self.assertNotEqual(result.returncode, 0, result)
        self.assertIn("TLS", result.stdout + result.stderr)
        cluster.servers[0].start()
        self.assertNotEqual(cluster.servers[0].process.wait(timeout=10), 0)
        self.assertIn("TLS", cluster.servers[0].log())


class ActivationTest(DeployTestCase):
    """[deploy.activate]: run in the new tree with the commit, or the old one stays."""

    def test_activation_runs_fails_and_times_out(self):
        cluster = Cluster(1)
        self.addCleanup(cluster.close)
        record = os.path.join(cluster.dir, "activations.log")
        # A tree holding "fail" fails its activation; one holding "slow" hangs.
        command = ("if [ -e fail ]; then echo failing >&2; exit 1; fi; "
                   "if [ -e slow ]; then sleep 60; fi; "
                   f'echo "$CLUSTER_WEBAPP $CLUSTER_COMMIT $(pwd -P)" >> {record}')
        with open(cluster.config_path, "a") as f:
            f.write('[deploy]\nactivate_timeout = "1s"\n'
                    f"[deploy.activate]\nshop = {json.dumps(command)}\n")
        server = cluster.start_all().servers[0]

        def activations():
            with open(record) as f:
                return [line.split() for line in f.read().splitlines()]

        status, v1 = post_deploy(server, self.good_tar(b"v1\n"), version="1")
        self.assertEqual(status, 200, v1)
        wait_live(server, v1["commit"])
        current = os.path.join(server.data_dir, "deploy", WEBAPP, "current")
        self.assertEqual(activations(), [[WEBAPP, v1["commit"], os.path.realpath(current)]])
        self.assertEqual(live_file(server, "index.html"), b"v1\n")

        for marker, why in (("fail", "exited with status 1"), ("slow", "timed out")):
            with self.subTest(marker):
                status, bad = post_deploy(
                    server, tar_archive([file_entry("index.html", marker.encode()),
                                         file_entry(marker)]), version=f"{marker}-1")
                self.assertEqual(status, 200, bad)
                started = time.monotonic()
                state = wait_for(
                    lambda: bad["commit"][:7] in (deployed(server) or {}).get("error", "") and
                    deployed(server), 20, f"the {marker} activation to be reported")
                self.assertLess(time.monotonic() - started, 15)
                self.assertIn("activation", state["error"])
                self.assertIn(why, state["error"])
                if marker == "fail":
                    self.assertIn("failing", state["error"])  # what it printed
                self.assertEqual(state["commit"], v1["commit"])
                self.assertEqual(live_file(server, "index.html"), b"v1\n")
                # v1 activated again, the bad one never got past its check.
                self.assertEqual(activations()[-1][1], v1["commit"])
                self.assertNotIn(bad["commit"], [a[1] for a in activations()])

        status, v2 = post_deploy(server, self.good_tar(b"v2\n"), version="2")
        self.assertEqual(status, 200, v2)
        wait_live(server, v2["commit"])
        self.assertEqual(deployed(server)["error"], "")
        self.assertEqual(live_file(server, "index.html"), b"v2\n")
        self.assertEqual(activations()[-1], [WEBAPP, v2["commit"], os.path.realpath(current)])


if __name__ == "__main__":
    unittest.main()
