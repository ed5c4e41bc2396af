"""Deployment through real sidecar processes on 127.0.0.1 (issue 13, item 6):
clusterctl deploy, rollback and deployments; catch-up of restarted, wiped and new
servers; the bytes on the cluster connections; kill -9 at random points never
leaves a half tree live."""

import json
import os
import random
import shutil
import subprocess
import time
import unittest

import deploy_support as ds
import sidecar_cluster as sc
from sidecar_cluster import Cluster, wait_for, run_clusterctl

WEBAPP = "shop"


class DeployTestCase(unittest.TestCase):
    def make_cluster(self, count, **kwargs):
        cluster = Cluster(count, heartbeat_interval="200ms", heartbeat_timeout="1s", **kwargs)
        self.addCleanup(cluster.close)
        return cluster

    def start(self, count):
        c = self.make_cluster(count).start_all()
        c.wait_states({s.id: "up" for s in c.servers})
        return c

    def app_dir(self, cluster, name, tree):
        return ds.write_tree(os.path.join(cluster.dir, "apps", name), tree)

    def deploy_ok(self, server, source, *extra, expect_servers=None):
        result = ds.deploy(server, source, WEBAPP, *extra)
        self.assertEqual(result.returncode, 0, result)
        self.assertTrue(result.done["ok"], result)
        self.assertFalse(result.done["timed_out"], result)
        if expect_servers is not None:
            self.assertEqual(result.done["converged"], expect_servers, result)
            self.assertEqual(result.done["total"], expect_servers, result)
        self.assertEqual(result.stored["deployment"], ds.deployment_name(WEBAPP))
        self.assertRegex(result.commit, r"^[0-9a-f]{40}$")
        return result

    def assert_runs(self, servers, commit, tree):
        """Every server's current/ names `commit`, holds exactly `tree`, and points
        relatively into versions/ (never at a temporary)."""
        for s in servers:
            with self.subTest(server=s.id):
                link = os.readlink(ds.current_link(s, WEBAPP))
                self.assertEqual(link, "versions/" + commit)
                self.assertEqual(ds.live_tree(s, WEBAPP), tree)


# -- 1. deploy to 1, 3 and 3+2 servers ----------------------------------------------

class DeployTest(DeployTestCase):
    def check_deploy(self, count):
        c = self.start(count)
        tree = ds.sample_tree()
        app = self.app_dir(c, "v1", tree)
        # Through a spoke when there is one: it forwards to the triad.
        deployer = c.servers[-1]
        result = self.deploy_ok(deployer, app, "--version", "1.0", expect_servers=count)
        self.assertFalse(result.stored["unchanged"])
        commit = result.commit

        # clusterctl said every server runs it: their disks say so already.
        self.assert_runs(c.servers, commit, tree)
        for s in c.servers:
            # The executable kept its bit; the symlinks are the relative ones given.
            start = os.path.join(ds.current_link(s, WEBAPP), "bin/start.sh")
            self.assertTrue(os.stat(start).st_mode & 0o100, s.id)
            self.assertEqual(os.readlink(os.path.join(ds.current_link(s, WEBAPP),
                                                      "static/latest.js")), "app.js")

        # Every server's /status shows every server on the commit, and the target.
        def all_report():
            for o in c.servers:
                status = o.status()
                if any(ds.reported_commit(status, s.id, WEBAPP) != commit for s in c.servers):
                    return False
                targets = {d["name"]: d for d in status["deployments"]}
                if targets.get(ds.deployment_name(WEBAPP), {}).get("commit") != commit:
                    return False
            return True

        wait_for(all_report, 10, f"every /status to show {commit[:10]} everywhere")
        for s in c.servers:
            self.assertEqual(ds.self_reported(s, WEBAPP), (commit, ""))

        # The same tree again: unchanged, and nothing moves.
        before = {s.id: (os.lstat(ds.current_link(s, WEBAPP)).st_mtime_ns,
                         sorted(os.listdir(os.path.join(s.data_dir, "deploy", WEBAPP, "versions"))))
                  for s in c.servers}
        sent_before = ds.pack_bytes_sent(c.servers)
        again = self.deploy_ok(c.servers[0], app, expect_servers=count)
        self.assertTrue(again.stored["unchanged"], again)
        self.assertEqual(again.commit, commit)
        self.assert_runs(c.servers, commit, tree)
        after = {s.id: (os.lstat(ds.current_link(s, WEBAPP)).st_mtime_ns,
                        sorted(os.listdir(os.path.join(s.data_dir, "deploy", WEBAPP, "versions"))))
                 for s in c.servers}
        self.assertEqual(after, before)
        self.assertEqual(ds.pack_bytes_sent(c.servers), sent_before)

    def test_one_server(self):
        self.check_deploy(1)

    def test_three_servers(self):
        self.check_deploy(3)

    def test_three_triad_and_two_spokes(self):
        self.check_deploy(5)

    def test_an_archive_upload_lands_like_a_directory(self):
        c = self.start(3)
        tree = ds.sample_tree(seed=7)
        archive = os.path.join(c.dir, "app.tar.gz")
        with open(archive, "wb") as f:
            f.write(ds.tar_gz(tree))
        result = self.deploy_ok(c.servers[1], archive, expect_servers=3)
        self.assert_runs(c.servers, result.commit, tree)


# -- 2. a one-file change costs about that file --------------------------------------

class DeltaTest(DeployTestCase):
    FILES, SIZE = 200, 20 * 1024

    def test_one_file_change_sends_about_that_file(self):
        c = self.start(4)  # 3 triad servers and a spoke
        tree = ds.random_tree(self.FILES, self.SIZE, seed=2)
        app = self.app_dir(c, "app", tree)
        total = ds.tree_bytes(tree)
        self.assertGreater(total, 4_000_000)

        sent0 = ds.pack_bytes_sent(c.servers)
        first = self.deploy_ok(c.servers[0], app, expect_servers=4)
        sent1 = ds.pack_bytes_sent(c.servers)
        # Random bytes do not compress: every copy costs the tree; at least the
        # triad push to s1 and s2 and the spoke's fetch.
        self.assertGreaterEqual(sent1 - sent0, 3 * total, (sent0, sent1))

        changed = dict(tree)
        path = sorted(tree)[123]
        changed[path] = ("file", ds.random_bytes(random.Random(3), self.SIZE))
        ds.write_tree(app, changed)
        second = self.deploy_ok(c.servers[0], app, expect_servers=4)
        self.assertNotEqual(second.commit, first.commit)
        sent2 = ds.pack_bytes_sent(c.servers)
        delta = sent2 - sent1
        # The three other servers each got the file, and a few small trees.
        self.assertGreaterEqual(delta, 3 * self.SIZE, (sent1, sent2))
        self.assertLess(delta, 10 * self.SIZE * len(c.servers), (sent1, sent2))
        self.assertLess(delta * 20, sent1 - sent0)
        self.assert_runs(c.servers, second.commit, changed)
        # What was received matches what was sent.
        received = sum(s.status()["deploy"]["pack_bytes_received"] for s in c.servers)
        self.assertEqual(received, sent2)


# -- 3. kill -9 of a spoke mid-deploy ------------------------------------------------

class SpokeCrashTest(DeployTestCase):
    def test_a_spoke_killed_mid_deploy_converges_after_restart(self):
        c = self.start(4)
        spoke = c.servers[3]
        tree = ds.random_tree(400, 8 * 1024, seed=4)
        app = self.app_dir(c, "app", tree)
        process = subprocess.Popen(
            [sc.CLUSTERCTL, *ds.clusterctl_args(c.servers[0], "deploy", app, "--webapp", WEBAPP,
                                                 "--json", "--timeout", "20s")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        # The upload is stored on the triad when the "stored" event comes: the
        # spoke has just begun fetching.
        first = process.stdout.readline()  # "uploaded", then "stored"
        first += process.stdout.readline()
        self.assertIn('"stored"', first, process.stderr.read() if process.poll() else first)
        commit = ds.parse_events(first)["stored"][0]["commit"]
        spoke.kill()
        killed_at = ds.live_commit(spoke, WEBAPP)
        out, err = process.communicate(timeout=30)
        events = ds.parse_events(first + out)
        # The spoke went down: the deploy waits for the live servers only.
        self.assertEqual(process.returncode, 0, first + out + err)
        self.assertTrue(events["done"][-1]["ok"], out)
        self.assert_runs(c.servers[:3], commit, tree)

        # A kill never leaves a half tree: none at all, or the whole new one.
        if killed_at is not None:
            self.assertEqual(killed_at, commit)
            self.assertEqual(ds.live_tree(spoke, WEBAPP), tree)

        spoke.start()
        spoke.wait_ready()
        ds.wait_running(c.servers, WEBAPP, commit)
        self.assert_runs(c.servers, commit, tree)
        versions = os.listdir(os.path.join(spoke.data_dir, "deploy", WEBAPP, "versions"))
        self.assertEqual(versions, [commit])  # the killed checkout's temporary is gone


# -- 4. a triad server down during a deploy ------------------------------------------

class TriadDownTest(DeployTestCase):
    def check_catch_up(self, wipe):
        c = self.start(4)
        s0, s1, s2, s3 = c.servers
        v1 = ds.sample_tree(seed=1)
        first = self.deploy_ok(s0, self.app_dir(c, "v1", v1), expect_servers=4)

        s2.kill()
        c.wait_states({"s0": "up", "s1": "up", "s2": "down", "s3": "up"},
                      observers=[s0, s1, s3])
        v2 = ds.sample_tree(seed=2)
        status, answer = ds.post_deploy(s0, ds.tar_gz(v2), WEBAPP, version="2.0")
        self.assertEqual(status, 200, answer)
        self.assertFalse(answer["unchanged"])
        self.assertEqual(sorted(answer["stored_on"]), ["s0", "s1"])
        commit = answer["commit"]
        ds.wait_running([s0, s1, s3], WEBAPP, commit)
        self.assert_runs([s0, s1, s3], commit, v2)
        self.assertEqual(ds.live_commit(s2, WEBAPP), first.commit)  # it was down

        if wipe:
            shutil.rmtree(s2.data_dir)
        s2.start()
        s2.wait_ready()
        ds.wait_running(c.servers, WEBAPP, commit)
        self.assert_runs(c.servers, commit, v2)
        # Its repository holds the commit (a triad server keeps every version) and
        # everyone's /status says it runs it.
        git = subprocess.run(["git", "--git-dir", os.path.join(s2.data_dir, "deploy.git"),
                              "cat-file", "-t", commit], capture_output=True, text=True)
        self.assertEqual(git.stdout.strip(), "commit", git.stderr)
        for o in c.servers:
            wait_for(lambda: ds.reported_commit(o.status(), "s2", WEBAPP) == commit, 10,
                     f"{o.id} to see s2 on {commit[:10]}")
        self.assertEqual(ds.self_reported(s2, WEBAPP), (commit, ""))

    def test_restarted_triad_server_catches_up(self):
        self.check_catch_up(wipe=False)

    def test_triad_server_with_a_wiped_data_dir_catches_up(self):
        self.check_catch_up(wipe=True)


# -- 5. a fresh dynamic server -------------------------------------------------------

class DynamicServerTest(DeployTestCase):
    def test_a_new_dynamic_server_reports_only_the_current_version(self):
        c = self.start(3)
        v1 = ds.random_tree(300, 4096, seed=5)
        app = self.app_dir(c, "app", v1)
        old = self.deploy_ok(c.servers[0], app, "--version", "1.0").commit
        v2 = dict(v1, **{"index.html": ("file", b"v2\n")})
        ds.write_tree(app, v2)
        current = self.deploy_ok(c.servers[1], app, "--version", "2.0").commit
        self.assertNotEqual(old, current)

        d = c.add_dynamic("d0")
        d.start()
        reported = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                commit, error = ds.self_reported(d, WEBAPP)
            except OSError:  # not listening yet
                time.sleep(0.01)
                continue
            self.assertEqual(error, "")
            if commit:
                # Reported only once it runs it: current/ is there and whole.
                self.assertEqual(ds.live_commit(d, WEBAPP), commit)
                reported.append(commit)
                if commit == current:
                    break
            time.sleep(0.01)
        self.assertTrue(reported, "d0 never reported a deployed commit")
        self.assertEqual(set(reported), {current})
        self.assert_runs([d], current, v2)
        ds.wait_running(c.servers, WEBAPP, current)


# -- 6. rollback ---------------------------------------------------------------------

class RollbackTest(DeployTestCase):
    def test_rollback_to_a_version(self):
        c = self.start(4)
        v1, v2 = ds.sample_tree(seed=1), ds.sample_tree(seed=2)
        del v2["docs/readme"]
        app = self.app_dir(c, "app", v1)
        first = self.deploy_ok(c.servers[0], app, "--version", "1.0", "--message", "first one",
                               "--author", "Alice <alice@example.com>", expect_servers=4)
        ds.write_tree(app, v2)
        second = self.deploy_ok(c.servers[3], app, "--version", "2.0", "--message", "second one",
                                "--author", "Bob <bob@example.com>", expect_servers=4)
        self.assert_runs(c.servers, second.commit, v2)

        back = ds.rollback(c.servers[1], WEBAPP, "1.0")
        self.assertEqual(back.returncode, 0, back)
        self.assertTrue(back.done["ok"], back)
        self.assertEqual(back.stored["to"], first.commit)
        self.assertNotIn(back.commit, (first.commit, second.commit))  # a new commit, same tree
        self.assert_runs(c.servers, back.commit, v1)

        listed = run_clusterctl(*ds.clusterctl_args(c.servers[2], "deployments", "--json"))
        self.assertEqual(listed.returncode, 0, listed.stderr)
        deployments = json.loads(listed.stdout)["deployments"]
        self.assertEqual([d["name"] for d in deployments], [ds.deployment_name(WEBAPP)])
        shop = deployments[0]
        self.assertEqual(shop["current"], back.commit)
        by_commit = {v["commit"]: v for v in shop["versions"]}
        self.assertEqual(list(by_commit)[:3], [back.commit, second.commit, first.commit])
        self.assertEqual(by_commit[first.commit]["version"], "1.0")
        self.assertEqual(by_commit[second.commit]["version"], "2.0")
        self.assertIn("Alice", by_commit[first.commit]["author"])
        self.assertIn("Bob", by_commit[second.commit]["author"])
        self.assertEqual(by_commit[first.commit]["message"].strip(), "first one")
        self.assertEqual(by_commit[second.commit]["message"].strip(), "second one")
        self.assertIn("1.0", by_commit[back.commit]["message"])

        # The table names the versions too.
        table = run_clusterctl(*ds.clusterctl_args(c.servers[0], "deployments"))
        self.assertEqual(table.returncode, 0, table.stderr)
        for text in ("1.0", "2.0", "first one", "second one", back.commit[:10]):
            self.assertIn(text, table.stdout)

    def test_rollback_to_an_unknown_version_is_refused(self):
        c = self.start(3)
        v1 = ds.sample_tree(seed=1)
        first = self.deploy_ok(c.servers[0], self.app_dir(c, "app", v1), "--version", "1.0")
        refused = ds.rollback(c.servers[0], WEBAPP, "9.9")
        self.assertNotEqual(refused.returncode, 0, refused)
        self.assertIn("9.9", refused.stderr)
        self.assert_runs(c.servers, first.commit, v1)
        nothing = ds.rollback(c.servers[0], "nothing-here", "1.0")
        self.assertNotEqual(nothing.returncode, 0, nothing)
        self.assertIn("nothing-here", nothing.stderr)


# -- 7. kill -9 of the deploying server at random points ------------------------------

class DeployerCrashTest(DeployTestCase):
    ROUNDS = 4

    def assert_whole_or_nothing(self, servers, trees):
        """current/ is absent, or names a finished version whose files equal one of
        `trees` exactly."""
        for s in servers:
            link = ds.current_link(s, WEBAPP)
            if not os.path.lexists(link):
                continue
            target = os.readlink(link)
            self.assertRegex(target, r"^versions/[0-9a-f]{40}$", s.id)
            self.assertIn(ds.live_tree(s, WEBAPP), trees, f"{s.id}: {target} is no deployed tree")

    def settled_commit(self, servers):
        """The cluster's commit once every server runs it (None: nothing deployed)."""
        def settled():
            targets = set()
            for s in servers:
                found = [d["commit"] for d in s.status()["deployments"]
                         if d["name"] == ds.deployment_name(WEBAPP)]
                targets.add(found[0] if found else None)
            if len(targets) != 1:
                return False
            (target,) = targets
            if all(ds.live_commit(s, WEBAPP) == target
                   and (ds.self_reported(s, WEBAPP)[0] or None) == target for s in servers):
                return [target]
            return False
        return wait_for(settled, 30, "every server to run the cluster's commit")[0]

    def start_deploy(self, deployer, archive):
        process = subprocess.Popen(
            [sc.CLUSTERCTL, *ds.clusterctl_args(deployer, "deploy", archive, "--webapp", WEBAPP,
                                                 "--json", "--timeout", "20s")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        return process

    def test_kill_9_of_the_deploying_server_never_leaves_a_half_tree(self):
        c = self.start(4)
        seed = int(os.environ.get("DEPLOY_CRASH_SEED", time.time_ns()))
        rng = random.Random(seed)
        base = ds.random_tree(2000, 1024, seed=6)
        trees = []

        def next_version():
            tree = dict(base)
            tree["round.txt"] = ("file", b"round %d\n" % len(trees))
            for path in rng.sample(sorted(base), 100):
                tree[path] = ("file", ds.random_bytes(rng, 1024))
            trees.append(tree)
            archive = os.path.join(c.dir, f"app-{len(trees)}.tar.gz")
            with open(archive, "wb") as f:
                f.write(ds.tar_gz(tree))
            return archive

        # One deploy uninterrupted: a version every kill may leave live, and how
        # long a deploy takes on this machine (upload, commit, push, checkout).
        started = time.monotonic()
        process = self.start_deploy(c.servers[0], next_version())
        wait_for(lambda: ds.live_commit(c.servers[0], WEBAPP), 30, "the first deploy on s0",
                 interval=0.005)
        span = time.monotonic() - started
        self.assertEqual(process.wait(timeout=30), 0)
        self.settled_commit(c.servers)

        for round_ in range(self.ROUNDS):
            archive = next_version()
            deployer = c.servers[0] if round_ % 2 == 0 else c.servers[3]
            # Kill points spread over the whole deploy, one slice of it per round:
            # from the upload's first bytes to the switch of the deployer's tree.
            delay = rng.uniform(round_, round_ + 1) / self.ROUNDS * 1.2 * span
            process = self.start_deploy(deployer, archive)
            time.sleep(delay)  # the random kill point itself, not a wait for a condition
            deployer.kill()
            process.kill()
            process.wait(timeout=10)
            with self.subTest(round=round_, deployer=deployer.id, delay=delay, seed=seed):
                try:
                    self.assert_whole_or_nothing(c.servers, trees)
                finally:
                    deployer.start()
                deployer.wait_ready()
                commit = self.settled_commit(c.servers)
                self.assertIsNotNone(commit)  # the first deploy at least
                self.assert_whole_or_nothing(c.servers, trees)
                for s in c.servers:
                    versions = os.listdir(os.path.join(s.data_dir, "deploy", WEBAPP, "versions"))
                    self.assertEqual([v for v in versions if ".tmp-" in v], [], s.id)

        # And a deploy that is not interrupted still works afterwards.
        result = self.deploy_ok(c.servers[3], next_version(), expect_servers=4)
        self.assert_runs(c.servers, result.commit, trees[-1])

if __name__ == "__main__":
    unittest.main()
