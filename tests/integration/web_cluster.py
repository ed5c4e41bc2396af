"""A web site on 127.0.0.1 for the nginx integration tests: the demo's cluster
(conf-examples/demo-cluster.toml) of sidecars, one demo backend per server, and
Debian's nginx with the module, configured by conf-examples/nginx.conf.

Both example files are loaded as they are and only moved to free ports and
private paths; a substitution that no longer finds its text fails the test, so
the examples cannot drift from what the tests run. Every process started here is
killed by PID (nginx by its process group) when the test ends, pass or fail.
"""

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tomllib
import urllib.request

from sidecar_cluster import Cluster, free_ports, run_clusterctl, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.normpath(os.path.join(HERE, "..", "..", "conf-examples"))
NGINX = os.environ.get("CLUSTER_NGINX", "/usr/sbin/nginx")
NGINX_MODULE = os.environ.get("CLUSTER_NGINX_MODULE", "")
# The sanitizer build's module needs the shared ASan runtime loaded into nginx.
NGINX_PRELOAD = os.environ.get("CLUSTER_NGINX_PRELOAD", "")
APACHE = os.environ.get("CLUSTER_APACHE", "/usr/sbin/apache2")
HTTPD_MODULE = os.environ.get("CLUSTER_HTTPD_MODULE", "")
# The sanitizer build's module needs the shared ASan runtime loaded into apache2.
HTTPD_PRELOAD = os.environ.get("CLUSTER_HTTPD_PRELOAD", "")
BACKEND = os.environ.get("CLUSTER_DEMO_BACKEND",
                         os.path.normpath(os.path.join(HERE, "..", "..", "demo",
                                                       "cluster-demo-backend")))
ROUTE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def replace_exactly(text, old, new, count=1):
    """`text` with `old` replaced; fails when `old` does not occur `count` times."""
    found = text.count(old)
    if found != count:
        raise AssertionError(f"example file drifted: {old!r} occurs {found} times, not {count}")
    return text.replace(old, new)


class DemoCluster(Cluster):
    """conf-examples/demo-cluster.toml on free ports, with a backend per server."""

    def __init__(self):
        self.example_path = os.path.join(EXAMPLES, "demo-cluster.toml")
        with open(self.example_path, "rb") as f:
            example = tomllib.load(f)
        self.example_servers = example["server"]
        cluster = example["cluster"]
        super().__init__(len(self.example_servers),
                         heartbeat_interval=cluster["heartbeat_interval"],
                         heartbeat_timeout=cluster["heartbeat_timeout"],
                         cluster_name=cluster["name"])
        # nginx's workers run as another user: they must reach the view files.
        os.chmod(self.dir, 0o755)
        self.backends = {}
        self.nginx = []  # every Nginx started for this cluster
        self.httpd = []  # every Httpd started for this cluster

    def write_config(self, name, cluster_name="itest", order=None, key=None):
        if order is not None or key is not None:
            return super().write_config(name, cluster_name, order, key)
        with open(self.example_path) as f:
            text = f.read()
        for server, entry in zip(self.servers, self.example_servers):
            server.id = entry["id"]
            server.data_dir = os.path.join(self.dir, server.id)
            server.view_file = os.path.join(self.dir, server.id + ".view")
            server.log_path = os.path.join(self.dir, server.id + ".log")
            for key_name, port in (("cluster_address", server.cluster_port),
                                   ("http_address", server.http_port),
                                   ("admin_listen", server.admin_port),
                                   ("memcached_listen", server.memcached_port)):
                text = replace_exactly(text, f'{key_name} = "{entry[key_name]}"',
                                       f'{key_name} = "127.0.0.1:{port}"')
            text = replace_exactly(text, f'data_dir = "{entry["data_dir"]}"',
                                   f'data_dir = "{server.data_dir}"')
            text = replace_exactly(text, f'view_file = "{entry["view_file"]}"',
                                   f'view_file = "{server.view_file}"')
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def server(self, sid):
        return next(s for s in self.servers if s.id == sid)

    def route_char(self, server):
        index = server.index if server.index is not None else server.status()["server"]["index"]
        return ROUTE_CHARS[index]

    # -- backends
    def backend_command(self, server, route_char):
        """The command line and the extra environment of `server`'s backend."""
        args = [BACKEND, "--listen", f"127.0.0.1:{server.http_port}", "--server-id", server.id,
                "--memcached", f"127.0.0.1:{server.memcached_port}"]
        if route_char or server.index is not None:
            args += ["--route-char", route_char or ROUTE_CHARS[server.index]]
        return args, {}

    def start_backend(self, server, route_char=None):
        args, env = self.backend_command(server, route_char)
        log = open(os.path.join(self.dir, server.id + ".backend.log"), "ab")
        # Its own process group: a backend's workers (PHP's) are its children, and a
        # kill must take them all, as a machine's death would.
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, env={**os.environ, **env},
                                   start_new_session=True)
        log.close()
        self.started.append(process)
        self.backends[server.id] = process
        wait_for(lambda: http_get(server.http_port, "/health")[0] == 200, 10,
                 f"backend {server.id} to answer")
        return process

    def kill_backend(self, server):
        process = self.backends.pop(server.id)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def close(self):
        """Kills everything, then fails if any nginx worker crashed or a sanitizer
        reported a fault in the module."""
        problems = []
        for process in self.backends.values():
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for front in self.nginx + self.httpd:
            # SIGTERM first: the master (parent) stops and reaps its workers
            # (children). Then the whole process group (each front has its own), in
            # case it could not.
            if front.process.poll() is None:
                front.process.send_signal(signal.SIGTERM)
                try:
                    front.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(front.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            front.process.wait(timeout=10)
            problems += [f"{front.name}: {line}" for line in front.crash_reports()]
        super().close(keep_dir=bool(problems))  # kept for the logs
        if problems:
            raise AssertionError("\n".join(problems[:20]) + f"\n(in {self.dir})")

    def start_site(self):
        """Every sidecar and backend; returns when every view shows all servers up."""
        self.start_all()
        for server in self.servers:
            self.start_backend(server)
        self.wait_states({s.id: "up" for s in self.servers})
        return self


def http_get(port, path="/", cookie=None, headers=None, timeout=10, method="GET", body=None):
    """(status, headers dict, body text) of one request on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        all_headers = dict(headers or {})
        if cookie is not None:
            all_headers["Cookie"] = cookie
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, \
            response.read().decode(errors="replace")
    finally:
        connection.close()


def preloaded_environment(preload):
    """The environment to run a web server in: with the sanitizer build's module, the
    shared ASan runtime (`preload`) preloaded."""
    env = dict(os.environ)
    if preload:
        # Web servers free their pools by exit, not piece by piece: no leak reports.
        env.update(LD_PRELOAD=preload,
                   ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    return env


def nginx_environment():
    return preloaded_environment(NGINX_PRELOAD)


def tcp_connections_to(ports):
    """How many TCP sockets of this machine (any state, TIME_WAIT included) have one
    of `ports` on 127.0.0.1 as their remote end: /proc/net/tcp."""
    wanted = {f"0100007F:{port:04X}" for port in ports}
    with open("/proc/net/tcp") as f:
        return sum(1 for line in f.readlines()[1:] if line.split()[2] in wanted)


def parse_answer(body):
    """The demo backend's answer line as a dict: server, route, session, count."""
    return dict(field.split("=", 1) for field in body.split())


class Front:
    """What a web server in front of the cluster (Nginx, Httpd) offers the tests once
    started: its port, its processes, its logs. A subclass sets `process`, `port`,
    `error_log`, `stderr_path` and CRASH_MARKS, the log texts of a crash."""

    CRASH_MARKS = ()

    def listening(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True

    def children(self):
        """PIDs of the master's (parent's) children: they serve the requests."""
        path = f"/proc/{self.process.pid}/task/{self.process.pid}/children"
        with open(path) as f:
            return set(int(p) for p in f.read().split())

    def get(self, path="/", cookie=None, headers=None):
        return http_get(self.port, path, cookie, headers)

    def error_lines(self):
        with open(self.error_log, errors="replace") as f:
            return f.read().splitlines()

    def crash_reports(self):
        """Lines that say a worker crashed or a sanitizer found a fault."""
        marks = ("Sanitizer", "runtime error:") + self.CRASH_MARKS
        lines = []
        for path in (self.error_log, self.stderr_path):
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    lines += [line.strip() for line in f if any(m in line for m in marks)]
        return lines

    def stop(self, timeout=20):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=timeout)


class Nginx(Front):
    """Debian's nginx running conf-examples/nginx.conf on free ports and private paths.

    `view_server` is the server whose view file the cluster_balance line follows.
    `mode` "insert" switches the example's route mode to the insert mode."""

    name = "nginx"
    CRASH_MARKS = ("exited on signal", "[alert]")

    def __init__(self, cluster, view_server, mode="route", cookie_options=None, edit=None):
        if not NGINX_MODULE:
            raise AssertionError("CLUSTER_NGINX_MODULE must name the built module (.so)")
        self.cluster = cluster
        self.dir = os.path.join(cluster.dir, f"nginx-{len(os.listdir(cluster.dir))}")
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self.port = free_ports(1)[0]
        self.pid_path = os.path.join(self.dir, "nginx.pid")
        self.error_log = os.path.join(self.dir, "error.log")
        self.conf_path = os.path.join(self.dir, "nginx.conf")
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.process = None
        text = self.render(view_server.view_file, mode, cookie_options)
        if edit:
            text = edit(text)
        with open(self.conf_path, "w") as f:
            f.write(text)

    def render(self, view_file, mode, cookie_options):
        with open(os.path.join(EXAMPLES, "nginx.conf")) as f:
            text = f.read()
        text = re.sub(r"^load_module \S+;", f"load_module {NGINX_MODULE};", text, count=1,
                      flags=re.M)
        text = re.sub(r"^pid \S+;", f"pid {self.pid_path};", text, count=1, flags=re.M)
        text = re.sub(r"^error_log \S+ (\w+);", f"error_log {self.error_log} \\1;", text,
                      count=1, flags=re.M)
        text = re.sub(r"^(\s*)access_log \S+;", r"\1access_log off;", text, count=1, flags=re.M)
        text = replace_exactly(text, "listen 127.0.0.1:8080;", f"listen 127.0.0.1:{self.port};")
        text = re.sub(r"cluster_balance \S+ ", f"cluster_balance {view_file} ", text, count=1)
        for server, entry in zip(self.cluster.servers, self.cluster.example_servers):
            text = replace_exactly(text, f"server {entry['http_address']};",
                                   f"server 127.0.0.1:{server.http_port};")
        if mode == "insert":
            text = replace_exactly(text, "mode=route cookie=JSESSIONID;", "mode=insert;")
            if cookie_options:
                text = replace_exactly(text, "mode=insert;",
                                       f"mode=insert;\n        cluster_balance_cookie {cookie_options};")
        return text

    def start(self):
        # Its own process group, so that cleanup reaches the workers too.
        with open(self.stderr_path, "ab") as stderr:
            self.process = subprocess.Popen([NGINX, "-p", self.dir, "-c", self.conf_path,
                                             "-g", "daemon off;"],
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=stderr, start_new_session=True,
                                            env=nginx_environment())
        self.cluster.nginx.append(self)
        wait_for(lambda: len(self.workers()) == 2 and self.listening(), 10, "nginx to start")
        return self

    def workers(self):
        """PIDs of the master's children (its workers)."""
        return self.children()

    def reload(self):
        """SIGHUP, then waits until only workers of the new configuration remain."""
        old = self.workers()
        self.process.send_signal(signal.SIGHUP)
        wait_for(lambda: (lambda now: len(now) == 2 and not (now & old))(self.workers()), 20,
                 "nginx to replace its workers")

    def stop(self):
        super().stop(timeout=10)


class Httpd(Front):
    """Debian's apache2 running conf-examples/httpd.conf on a free port and private
    paths, with mpm_event or mpm_prefork.

    `view_server` is the server whose view file the ClusterBalance line follows.
    `mode` "insert" switches the example's route mode to the insert mode, with
    ClusterBalanceCookie `cookie_options` if given. `edit` takes and returns the
    configuration's text, after the rest."""

    name = "httpd"
    CRASH_MARKS = ("exit signal", ":alert]", ":emerg]")

    def __init__(self, cluster, view_server, mode="route", cookie_options=None, mpm="event",
                 edit=None):
        if not HTTPD_MODULE:
            raise AssertionError("CLUSTER_HTTPD_MODULE must name the built module (.so)")
        self.cluster = cluster
        self.dir = os.path.join(cluster.dir, f"httpd-{len(os.listdir(cluster.dir))}")
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self.port = free_ports(1)[0]
        self.pid_path = os.path.join(self.dir, "httpd.pid")
        self.error_log = os.path.join(self.dir, "error.log")
        self.conf_path = os.path.join(self.dir, "httpd.conf")
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.process = None
        text = self.render(view_server.view_file, mode, cookie_options, mpm)
        if edit:
            text = edit(text)
        with open(self.conf_path, "w") as f:
            f.write(text)

    def render(self, view_file, mode, cookie_options, mpm):
        with open(os.path.join(EXAMPLES, "httpd.conf")) as f:
            text = f.read()
        text = re.sub(r"^LoadModule cluster_balance_module \S+$",
                      f"LoadModule cluster_balance_module {HTTPD_MODULE}", text, count=1,
                      flags=re.M)
        text = re.sub(r"^PidFile \S+$", f"PidFile {self.pid_path}", text, count=1, flags=re.M)
        text = re.sub(r"^DefaultRuntimeDir \S+$", f"DefaultRuntimeDir {self.dir}", text, count=1,
                      flags=re.M)
        text = re.sub(r"^ErrorLog \S+$", f"ErrorLog {self.error_log}", text, count=1, flags=re.M)
        text = replace_exactly(text, "Listen 127.0.0.1:8081", f"Listen 127.0.0.1:{self.port}")
        text = re.sub(r"ClusterBalance \S+ ", f"ClusterBalance {view_file} ", text, count=1)
        for server, entry in zip(self.cluster.servers, self.cluster.example_servers):
            text = replace_exactly(text, f'BalancerMember "http://{entry["http_address"]}"',
                                   f'BalancerMember "http://127.0.0.1:{server.http_port}"')
        if os.geteuid() != 0:
            # Only root switches its children to another user.
            text = re.sub(r"^(User|Group) .*$", "", text, flags=re.M)
        if mpm == "prefork":
            text = replace_exactly(
                text, "LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so",
                "LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so")
            text = re.sub(r"^(ThreadsPerChild|MinSpareThreads|MaxSpareThreads) .*$", "", text,
                          flags=re.M)
            text = replace_exactly(text, "ServerLimit 2", "ServerLimit 4")
            text = replace_exactly(text, "MaxRequestWorkers 50", "MaxRequestWorkers 4")
        elif mpm != "event":
            raise ValueError(mpm)
        if mode == "insert":
            text = replace_exactly(text, "mode=route cookie=JSESSIONID", "mode=insert")
            if cookie_options:
                text = replace_exactly(text, "mode=insert",
                                       f"mode=insert\n    ClusterBalanceCookie {cookie_options}")
        return text

    def start(self, children=2):
        # Its own process group, so that cleanup reaches the children too.
        with open(self.stderr_path, "ab") as stderr:
            self.process = subprocess.Popen([APACHE, "-f", self.conf_path, "-DFOREGROUND"],
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=stderr, start_new_session=True,
                                            env=preloaded_environment(HTTPD_PRELOAD))
        self.cluster.httpd.append(self)
        wait_for(lambda: self.process.poll() is None and len(self.children()) >= children
                 and self.listening(), 20, "httpd to start")
        return self

    def graceful(self):
        """SIGUSR1 (apache2ctl graceful), then waits until only children of the new
        generation serve."""
        old = self.children()
        self.process.send_signal(signal.SIGUSR1)
        wait_for(lambda: (lambda now: now and not (now & old))(self.children())
                 and self.listening(), 30, "httpd to replace its children")


def dump_logs_if_failed(test, cluster):
    """After `test` failed: the tails of the sidecars' and backends' logs and of each
    front's error log and stderr (not the store's files in the data dirs)."""
    outcome = getattr(test, "_outcome", None)
    result = getattr(outcome, "result", None)
    problems = getattr(result, "errors", []) + getattr(result, "failures", [])
    if not any(failed is test for failed, _ in problems):
        return
    folders = [cluster.dir] + [os.path.join(cluster.dir, name)
                               for name in sorted(os.listdir(cluster.dir))
                               if name.startswith(("httpd-", "nginx-"))]
    for folder in folders:
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if (name.endswith(".log") or name == "stderr") and os.path.isfile(path):
                with open(path, errors="replace") as f:
                    sys.stderr.write(f"--- {path} (tail)\n{f.read()[-3000:]}\n")


def route_of(view_file, cookie=None, path=None):
    """`clusterctl route`: (reason, server id) of the shared decision for a request;
    reason is "sticky", "backup" or "balanced"."""
    args = ["route", "--view", view_file]
    if cookie:
        args += ["--cookie", cookie]
    if path:
        args += ["--path", path]
    result = run_clusterctl(*args)
    match = re.search(r"^(sticky to|.*backup|no session; balanced.* to) (\S+) \(index",
                      result.stdout, re.M)
    if result.returncode != 0 or not match:
        raise AssertionError(f"clusterctl route: {result.stdout} {result.stderr}")
    reason = match.group(1)
    return ("sticky" if reason.startswith("sticky") else
            "backup" if reason.endswith("backup") else "balanced"), match.group(2)
