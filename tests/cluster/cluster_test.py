#!/usr/bin/python3
"""Real-process tests of a local Quire cluster (`quire cluster`), through redis-py.

One cluster for the whole module: etcd, three page servers (W=2) and three compute nodes
under `quire cluster`'s supervisor, in a temporary directory, on a base port whose every
port (P, P+1, P+10.., P+20..) was free when chosen. The command tests run first on a
healthy cluster; the fault tests (SIGKILL, SIGSTOP, SIGTERM of the primary, SIGKILL of a
page server during a KEK rotation) each leave the cluster for `setUp` to repair with
`quire cluster start DIR`, which starts whatever is down. The last test stops the cluster
and checks that every process is gone; a module cleanup stops it again whatever happened and
SIGKILLs any pid DIR/run/state.json still names, and the supervisor.

Every wait is a deadline-bounded poll and every client has a socket timeout.

Run: /usr/bin/python3 tests/cluster/cluster_test.py --quire build/release/src/quire
     [--ports 20000-32000] [--keep] [--budget SECONDS]
     [unittest names, e.g. B_Commands.test_strings]
"""

import argparse
import errno
import fcntl
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import redis

# Bounds (seconds unless named otherwise).
START_WAIT = 60  # `quire cluster start --wait`
CMD_TIMEOUT = 60  # any quire subprocess (`stop` gives the supervisor 3 x 10 s + 10 s)
CLIENT_TIMEOUT = 10  # redis-py socket timeout for ordinary commands
STATUS_TIMEOUT = 1.0  # QUIRE.STATUS probes (a stopped node must not stall the poll)
FAILOVER_WAIT = 15  # a new primary after SIGKILL (lease TTL 2 s) or SIGSTOP
HANDOVER_MAX = 2.0  # a new primary after SIGTERM (~0.2 s; below the 2 s lease TTL)
CATCHUP_WAIT = 20  # a standby reaching a state or keystore version
STOP_SECONDS = 5  # how long the primary is SIGSTOPped (lease TTL 2 s)
POLL = 0.05
PORT_SPAN = 23  # P .. P+22
BUDGET = 300  # the whole suite; then the watchdog stops the cluster (<= CMD_TIMEOUT) and
# exits, before ctest's TIMEOUT (400 s) would kill this process and leave the cluster running
VALUE_MAX = 1 << 20  # kValueBytesMax
KEY_MAX = 4096  # kKeyBytesMax

QUIRE = None
PORTS = (20000, 32000)  # below the kernel's ephemeral range (32768..): no outgoing
# connection can take one of these ports between the check and the bind
KEEP = False
CLUSTER = None
EXTRA_CLUSTERS = []  # clusters of single test classes (Y_Password); cleaned up with CLUSTER


def log(msg):
    sys.stderr.write("[cluster_test %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def ports_free(base):
    """Whether every port the cluster uses binds on 127.0.0.1 now."""
    wanted = [base, base + 1] + [base + 10 + i for i in range(3)] + [base + 20 + i for i in range(3)]
    socks = []
    try:
        for port in wanted:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def choose_base_port(lo, hi, attempts=200):
    rng = random.Random(os.getpid() ^ int(time.time() * 1000))
    for _ in range(attempts):
        base = rng.randrange(lo, hi - PORT_SPAN)
        if ports_free(base):
            return base
    raise RuntimeError("no free base port in %d-%d after %d attempts" % (lo, hi, attempts))


def pid_alive(pid):
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is gone for our purposes; /proc says so.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def raw(r, *args):
    """One command's reply as the server sent it (no redis-py response callback)."""
    conn = r.connection_pool.get_connection(args[0])
    try:
        conn.send_command(*args)
        return conn.read_response()
    finally:
        r.connection_pool.release(conn)


def deadline_poll(what, timeout, fn, interval=POLL):
    """Calls fn() until it returns a true value (returned) or timeout passes (AssertionError)."""
    until = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= until:
            raise AssertionError("%s: not within %.1f s" % (what, timeout))
        time.sleep(interval)


class Cluster:
    """One `quire cluster` in a temporary directory."""

    NODES = ("node1", "node2", "node3")
    PAGESERVERS = ("ps1", "ps2", "ps3")

    def __init__(self, quire, base_port, password=None):
        self.quire = quire
        self.base = base_port
        self.password = password  # `quire cluster init --requirepass`, or None
        self.root = tempfile.mkdtemp(prefix="quire-cluster-test-")
        self.dir = os.path.join(self.root, "c")
        self.pids_seen = set()
        self.supervisor_pids = set()
        self.mounts = []  # tmpfs mounts of its own (X_DiskFull), unmounted by cleanup

    def run(self, *args, check=True, timeout=CMD_TIMEOUT):
        cmd = [self.quire, "cluster"] + list(args)
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("%s: exit %d\nstdout: %s\nstderr: %s" % (
                " ".join(cmd), p.returncode, p.stdout.decode(errors="replace"),
                p.stderr.decode(errors="replace")))
        return p

    def init(self):
        extra = ["--requirepass", self.password] if self.password else []
        self.run("init", self.dir, "--base-port", str(self.base), *extra)

    def start(self, wait=START_WAIT):
        p = self.run("start", self.dir, "--wait", str(wait), timeout=wait + 30)
        self.remember_pids()
        return p

    def stop(self):
        return self.run("stop", self.dir, check=False)

    def kill(self, name, sig):
        self.remember_pids()
        self.run("kill", self.dir, name, "--signal", sig)

    def status(self):
        return json.loads(self.run("status", self.dir, "--json").stdout)

    def state(self):
        """DIR/run/state.json (src/cluster/supervisor.cc write_state), or None."""
        try:
            with open(os.path.join(self.dir, "run", "state.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def remember_pids(self):
        s = self.state()
        if not s:
            return
        if s.get("supervisor_pid"):
            self.supervisor_pids.add(s["supervisor_pid"])
        for p in s.get("processes", []):
            if p.get("pid"):
                self.pids_seen.add(p["pid"])

    def process(self, name):
        for p in (self.state() or {}).get("processes", []):
            if p["name"] == name:
                return p
        return None

    def port(self, node):
        return self.base + 20 + self.NODES.index(node)

    def client(self, node, timeout=CLIENT_TIMEOUT, db=0, password=""):
        """A client of the node; with the cluster's password unless `password` is given
        (None: no AUTH)."""
        return redis.Redis("127.0.0.1", self.port(node), db=db, socket_timeout=timeout,
                           socket_connect_timeout=timeout,
                           password=self.password if password == "" else password)

    def node_status(self, node, timeout=STATUS_TIMEOUT):
        """The node's QUIRE.STATUS as a dict, or None when it does not answer in time."""
        try:
            c = self.client(node, timeout=timeout)
            try:
                return json.loads(c.execute_command("QUIRE.STATUS"))
            finally:
                c.close()
        except (redis.RedisError, OSError, ValueError):
            return None

    def statuses(self, nodes=None):
        return {n: self.node_status(n) for n in (nodes or self.NODES)}

    def serving_primary(self, exclude=()):
        for n in self.NODES:
            if n in exclude:
                continue
            s = self.node_status(n)
            if s and s.get("role") == "primary" and s.get("state") == "SERVING":
                return n
        return None

    def wait_primary(self, exclude=(), timeout=FAILOVER_WAIT):
        return deadline_poll("a serving primary other than %s" % (list(exclude),), timeout,
                             lambda: self.serving_primary(exclude))

    def ready(self):
        """Every process alive, one serving primary, the other nodes SECONDARY."""
        st = self.state()
        if not st or not all(p["alive"] and pid_alive(p["pid"]) for p in st["processes"]):
            return None
        ss = self.statuses()
        prim = [n for n, s in ss.items() if s and s["role"] == "primary" and s["state"] == "SERVING"]
        sec = [n for n, s in ss.items() if s and s["role"] == "standby" and
               s["state"] == "SECONDARY" and s.get("primary")]
        if len(prim) == 1 and len(sec) == len(self.NODES) - 1:
            return prim[0]
        return None

    def repair(self):
        """Starts whatever is down and waits until the cluster is ready; the primary's name."""
        st = self.state()
        down = [p["name"] for p in (st or {}).get("processes", [])
                if not (p["alive"] and pid_alive(p["pid"]))]
        if down:
            log("restarting %s" % ", ".join(down))
            self.start()
        return deadline_poll("cluster ready", START_WAIT, self.ready, interval=0.2)

    def standbys(self, primary):
        return [n for n in self.NODES if n != primary]

    def log_tail(self, name, lines=5):
        try:
            with open(os.path.join(self.dir, "logs", name + ".log"), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 64 * 1024))
                return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        except OSError:
            return ""

    def cleanup(self):
        """Stops the cluster, then SIGKILLs every pid that is still alive."""
        self.remember_pids()
        try:
            p = self.stop()
            if p.returncode != 0:
                log("cluster stop: exit %d: %s" % (p.returncode, p.stderr.decode(errors="replace")))
        except (subprocess.TimeoutExpired, OSError) as e:
            log("cluster stop failed: %s" % e)
        s = self.state() or {}
        pids = {p["pid"] for p in s.get("processes", []) if p.get("pid")}
        pids |= self.pids_seen
        sup = set(self.supervisor_pids)
        if s.get("supervisor_pid"):
            sup.add(s["supervisor_pid"])
        try:
            with open(os.path.join(self.dir, "run", "supervisor.pid")) as f:
                sup.add(int(f.read().strip() or 0))
        except (OSError, ValueError):
            pass
        for pid in sorted(pids | sup):
            if pid > 0 and pid_alive(pid) and self._ours(pid):
                log("SIGKILL leftover pid %d" % pid)
                try:
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if self.mounts:
            until = time.monotonic() + 10  # nothing may hold a file on a mount being unmounted
            while any(pid_alive(pid) for pid in pids) and time.monotonic() < until:
                time.sleep(POLL)
            self.unmount_all()

    def mount_tmpfs(self, name, size):
        """A tmpfs of `size` (mount(8)'s syntax, e.g. 24m) on DIR/name; raises OSError when
        this machine does not let us mount."""
        path = os.path.join(self.dir, name)
        os.makedirs(path, exist_ok=True)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", path],
                           capture_output=True, timeout=CMD_TIMEOUT)
        if p.returncode != 0:
            raise OSError("mount tmpfs on %s: %s" % (path, p.stderr.decode(errors="replace")))
        self.mounts.append(path)
        return path

    def resize_tmpfs(self, path, size):
        subprocess.run(["mount", "-o", "remount,size=" + size, path], check=True,
                       capture_output=True, timeout=CMD_TIMEOUT)

    def unmount_all(self):
        for path in reversed(self.mounts):
            p = subprocess.run(["umount", path], capture_output=True, timeout=CMD_TIMEOUT)
            if p.returncode != 0:
                log("umount %s: %s" % (path, p.stderr.decode(errors="replace")))
                subprocess.run(["umount", "-l", path], capture_output=True, timeout=CMD_TIMEOUT)
        self.mounts = []

    def _ours(self, pid):
        """Whether pid still runs something of this cluster (pids can be reused)."""
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                return self.dir.encode() in f.read()
        except OSError:
            return False


def setUpModule():
    global CLUSTER
    base = choose_base_port(*PORTS)
    CLUSTER = Cluster(QUIRE, base)
    # Runs even when the rest of setUpModule fails (tearDownModule would not).
    unittest.addModuleCleanup(cleanup_module)
    log("cluster in %s, base port %d, quire %s" % (CLUSTER.dir, base, QUIRE))
    CLUSTER.init()
    t = time.monotonic()
    CLUSTER.start()
    log("started in %.1f s" % (time.monotonic() - t))


# Cleanup runs once; a second caller (the watchdog's thread, a signal, the module cleanup)
# waits until the first is done, so nobody exits while it is halfway. An RLock: a signal
# may arrive on the main thread while that thread holds it (it then returns at once).
_cleanup_lock = threading.RLock()
_cleaned = False


def cleanup_module():
    global _cleaned
    if CLUSTER is None:
        return
    with _cleanup_lock:
        if _cleaned:
            return
        _cleaned = True
        _cleanup_cluster()


def _cleanup_cluster():
    import shutil
    for c in [CLUSTER] + EXTRA_CLUSTERS:
        c.cleanup()
        if KEEP:
            log("kept %s" % c.root)
        else:
            shutil.rmtree(c.root, ignore_errors=True)


class ClusterTestBase(unittest.TestCase):
    def setUp(self):
        self.c = CLUSTER
        self.primary = self.c.repair()
        self.clients = []

    def tearDown(self):
        for cl in self.clients:
            try:
                cl.close()
            except Exception:
                pass

    def client(self, node, **kw):
        cl = self.c.client(node, **kw)
        self.clients.append(cl)
        return cl

    def p(self, **kw):
        return self.client(self.primary, **kw)

    def assertError(self, fn, *fragments, exc=redis.ResponseError):
        """fn() raises exc whose message holds every fragment; the message."""
        with self.assertRaises(exc) as cm:
            fn()
        msg = str(cm.exception)
        for frag in fragments:
            self.assertIn(frag, msg)
        return msg


class A_Lifecycle(ClusterTestBase):
    def test_cluster_started(self):
        st = self.c.status()
        self.assertTrue(st["running"])
        self.assertTrue(pid_alive(st["supervisor_pid"]))
        names = sorted(p["name"] for p in st["processes"])
        self.assertEqual(names, sorted(["etcd", *Cluster.PAGESERVERS, *Cluster.NODES]))
        for p in st["processes"]:
            self.assertTrue(p["alive"], p)
            self.assertTrue(pid_alive(p["pid"]), p)
        roles = sorted((p["role"], p["state"]) for p in st["processes"] if p["kind"] == "node")
        self.assertEqual(roles, [("primary", "SERVING"), ("standby", "SECONDARY"),
                                 ("standby", "SECONDARY")])


def stat_rows(port, want=2, limit=10.0):
    """The first `want` data rows of `redis-cli --stat -i 0.2` (line-buffered through
    stdbuf: --stat never ends and redis-cli does not flush), then the process is killed."""
    p = subprocess.Popen(["stdbuf", "-oL", "redis-cli", "-p", port, "--stat", "-i", "0.2"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    rows = []
    try:
        deadline = time.time() + limit
        buf = b""
        while len(rows) < want and time.time() < deadline:
            ready, _, _ = select.select([p.stdout], [], [], 0.2)
            if not ready:
                continue
            chunk = os.read(p.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            rows += [ln.decode(errors="replace") for ln in lines
                     if ln[:1].isdigit()]  # data rows start with the key count
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
    return rows


class B_Commands(ClusterTestBase):
    """Commands on the primary (database 1..9: the fault tests use database 0)."""

    def test_connection_commands(self):
        r = self.p()
        self.assertTrue(r.ping())
        self.assertEqual(raw(r, "PING"), b"PONG")
        self.assertEqual(raw(r, "PING", "hello"), b"hello")
        self.assertEqual(r.echo(b"a\r\nb\x00c"), b"a\r\nb\x00c")
        hello = r.execute_command("HELLO", "2")
        self.assertIsInstance(hello, list)
        fields = dict(zip(hello[0::2], hello[1::2]))
        self.assertEqual(fields[b"server"], b"redis")
        self.assertEqual(fields[b"proto"], 2)
        self.assertEqual(fields[b"version"], b"7.0.15")
        self.assertEqual(fields[b"role"], b"master")
        self.assertError(lambda: r.execute_command("HELLO", "3"), "unsupported protocol version")
        standby = self.client(self.c.standbys(self.primary)[0])
        hello = standby.execute_command("HELLO", "2")
        self.assertEqual(dict(zip(hello[0::2], hello[1::2]))[b"role"], b"replica")
        # No requirepass: AUTH answers Redis's error, and commands need no AUTH.
        self.assertError(lambda: r.execute_command("AUTH", "secret"),
                         "called without any password configured")
        # As Redis 7: the default user has no password, so AUTH default <anything> is OK.
        self.assertEqual(raw(r, "AUTH", "default", "secret"), b"OK")
        self.assertTrue(r.ping())
        # SELECT: databases are separate.
        r.execute_command("SELECT", "3")
        r.set(b"sel", b"three")
        r.execute_command("SELECT", "4")
        self.assertIsNone(r.get(b"sel"))
        r.execute_command("SELECT", "3")
        self.assertEqual(r.get(b"sel"), b"three")
        self.assertError(lambda: r.execute_command("SELECT", "16"), "DB index is out of range")
        self.assertError(lambda: r.execute_command("SELECT", "-1"), "DB index is out of range")
        # CLIENT.
        r1, r2 = self.p(), self.p()
        id1, id2 = r1.client_id(), r2.client_id()
        self.assertIsInstance(id1, int)
        self.assertNotEqual(id1, id2)
        self.assertEqual(r1.client_id(), id1)
        self.assertIsNone(r1.client_getname())
        self.assertTrue(r1.client_setname("tester-1"))
        self.assertEqual(r1.client_getname(), "tester-1")
        self.assertIsNone(r2.client_getname())
        self.assertError(lambda: r1.execute_command("CLIENT", "SETNAME", "has space"),
                         "cannot contain spaces")

    def test_strings(self):
        r = self.p(db=1)
        r.flushdb()
        self.assertIsNone(r.get("k"))
        self.assertTrue(r.set("k", "v1"))
        self.assertEqual(r.get("k"), b"v1")
        self.assertIsNone(r.set("k", "v2", nx=True))
        self.assertEqual(r.get("k"), b"v1")
        self.assertTrue(r.set("k", "v2", xx=True))
        self.assertIsNone(r.set("absent", "v", xx=True))
        self.assertEqual(r.exists("absent"), 0)
        self.assertEqual(r.set("k", "v3", get=True), b"v2")
        self.assertIsNone(r.set("new", "n", get=True))
        self.assertEqual(r.get("new"), b"n")
        for opt in (("EX", "10"), ("PX", "100"), ("EXAT", "9999999999"), ("PXAT", "9999999999999"),
                    ("KEEPTTL",)):
            self.assertError(lambda: r.execute_command("SET", "k", "x", *opt), "not supported",
                             "never expire")
        self.assertEqual(r.get("k"), b"v3")
        self.assertTrue(r.setnx("nx", "1"))
        self.assertFalse(r.setnx("nx", "2"))
        self.assertEqual(r.get("nx"), b"1")
        self.assertEqual(r.strlen("k"), 2)
        self.assertEqual(r.strlen("absent"), 0)
        self.assertEqual(r.type("k"), b"string")
        self.assertEqual(r.type("absent"), b"none")
        self.assertEqual((r.ttl("k"), r.pttl("k")), (-1, -1))
        self.assertEqual((r.ttl("absent"), r.pttl("absent")), (-2, -2))
        self.assertEqual(r.exists("k", "nx", "absent", "k"), 3)
        self.assertTrue(r.mset({"m1": "a", "m2": "b", "m3": "c"}))
        self.assertEqual(r.mget("m1", "absent", "m3", "m2"), [b"a", None, b"c", b"b"])
        self.assertFalse(r.msetnx({"m1": "x", "m4": "d"}))
        self.assertIsNone(r.get("m4"))
        self.assertEqual(r.get("m1"), b"a")
        self.assertTrue(r.msetnx({"m4": "d", "m5": "e"}))
        self.assertEqual(r.mget("m4", "m5"), [b"d", b"e"])
        self.assertEqual(r.delete("m1", "m2", "absent", "m1"), 2)
        self.assertEqual(r.exists("m1", "m2"), 0)
        self.assertEqual(r.dbsize(), 6)  # k new nx m3 m4 m5

    def test_counters(self):
        r = self.p(db=2)
        r.flushdb()
        self.assertEqual(r.incr("n"), 1)
        self.assertEqual(r.incrby("n", 41), 42)
        self.assertEqual(r.decr("n"), 41)
        self.assertEqual(r.decrby("n", 50), -9)
        self.assertEqual(r.get("n"), b"-9")
        self.assertEqual(r.decr("fresh"), -1)
        r.set("big", str(2**63 - 1))
        self.assertError(lambda: r.incr("big"), "increment or decrement would overflow")
        self.assertEqual(r.get("big"), str(2**63 - 1).encode())
        for bad in (b"abc", b" 1", b"+1", b"01", b"1.5", b""):
            r.set("bad", bad)
            self.assertError(lambda: r.incr("bad"), "value is not an integer or out of range")
            self.assertEqual(r.get("bad"), bad)
        self.assertError(lambda: r.incrby("n", "x"), "value is not an integer or out of range")

    def test_scan_dbsize_flushdb(self):
        r = self.p(db=5)
        r.flushdb()
        self.assertEqual(r.dbsize(), 0)
        want = {b"scan:%04d" % i for i in range(700)}
        other = {b"other:%03d" % i for i in range(60)}
        pipe = r.pipeline(transaction=False)
        for k in sorted(want | other):
            pipe.set(k, b"x")
        self.assertTrue(all(pipe.execute()))
        self.assertEqual(r.dbsize(), len(want) + len(other))

        def full_scan(**kw):
            got, cursor, calls = [], 0, 0
            while True:
                cursor, keys = r.scan(cursor, **kw)
                got.extend(keys)
                calls += 1
                self.assertLess(calls, 10000, "SCAN does not end")
                if cursor == 0:
                    return got, calls

        got, calls = full_scan(match="scan:*", count=37)
        self.assertEqual(len(got), len(want), "a key came back twice or not at all")
        self.assertEqual(set(got), want)
        self.assertGreater(calls, 1)
        got, _ = full_scan(count=100)
        self.assertEqual(sorted(got), sorted(want | other))
        got, _ = full_scan(match="other:00?")
        self.assertEqual(set(got), {b"other:%03d" % i for i in range(10)})
        self.assertEqual(full_scan(match="nothing*")[0], [])
        self.assertError(lambda: r.execute_command("SCAN", "123456789"), "invalid cursor")
        self.assertTrue(r.flushdb())
        self.assertEqual(r.dbsize(), 0)
        self.assertEqual(full_scan()[0], [])

    def test_info_config_command(self):
        r = self.p(db=6)
        r.set("info-key", "v")
        server = r.info("server")
        self.assertEqual(server["redis_version"], "7.0.15")
        self.assertEqual(server["tcp_port"], self.c.port(self.primary))
        pid = self.c.process(self.primary)["pid"]
        self.assertEqual(server["process_id"], pid)
        self.assertIn("quire_version", server)
        self.assertGreaterEqual(r.info("clients")["connected_clients"], 1)
        repl = r.info("replication")
        self.assertEqual(repl["role"], "master")
        # The standbys' QUIRE.REPORTs (every 50 ms, forgotten after 2 s) reach the primary.
        deadline_poll("INFO replication connected_slaves:2", 5,
                      lambda: r.info("replication")["connected_slaves"] == 2, 0.1)
        persistence = r.info("persistence")
        self.assertEqual(persistence["aof_enabled"], 1)
        ks = r.info("keyspace")
        self.assertIn("db6", ks)
        self.assertGreaterEqual(ks["db6"]["keys"], 1)
        quire = r.info("quire")
        self.assertEqual(quire["quire_role"], "primary")
        self.assertEqual(quire["quire_state"], "SERVING")
        self.assertIn("quire_keystore_version", quire)
        # The page servers' acknowledgements carry their fdatasync times, from which the
        # primary chose its commit pipeline (8 or 64 queued writes: docs/deploy.md).
        self.assertGreater(quire["quire_quorum_sync_us"], 0)
        self.assertIn(quire["quire_group_pipeline_min"], (8, 64))
        # Clients that write again once answered: a durable group's successor waits (up to
        # half that group's commit time, at most 1 ms) for the clients just answered.
        before = quire["quire_groups_gathered"]
        port = self.c.port(self.primary)

        def writer(i):
            w = redis.Redis(port=port, socket_timeout=10)
            for n in range(150):
                w.set(f"gather:{i}:{n}", "v")
            w.close()

        stats0 = r.info("stats")
        threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # The 1,200 SETs just sent: counted as they ran, their bytes in and out, and a rate
        # over the last 1.6 s.
        stats = r.info("stats")
        self.assertGreaterEqual(
            stats["total_commands_processed"] - stats0["total_commands_processed"], 1200)
        self.assertGreater(stats["total_net_input_bytes"] - stats0["total_net_input_bytes"],
                           1200 * len("*3\r\n$3\r\nSET\r\n"))
        self.assertGreaterEqual(
            stats["total_net_output_bytes"] - stats0["total_net_output_bytes"], 1200 * 5)
        self.assertGreater(stats["instantaneous_ops_per_sec"], 0)
        self.assertGreater(float(stats["instantaneous_input_kbps"]), 0)
        self.assertEqual(len(r.info("server")["run_id"]), 40)
        self.assertEqual(r.info("clients")["maxclients"], 10000)
        quire = r.info("quire")
        self.assertGreater(quire["quire_groups_gathered"], before)
        self.assertGreaterEqual(quire["quire_group_gathers_timed_out"], 0)
        self.assertGreater(quire["quire_group_gather_wait_us"], 0)
        whole = r.info()
        for key in ("redis_version", "connected_clients", "role", "aof_enabled"):
            self.assertIn(key, whole)
        # A standby's INFO replication.
        standby = self.client(self.c.standbys(self.primary)[0])
        self.assertEqual(standby.info("replication")["role"], "slave")
        self.assertEqual(r.config_get("save"), {"save": ""})
        self.assertEqual(r.config_get("appendonly"), {"appendonly": "yes"})
        self.assertEqual(r.config_get("no-such-parameter"), {})
        self.assertError(lambda: r.config_set("save", ""), "")
        count = raw(r, "COMMAND", "COUNT")
        self.assertGreaterEqual(count, 30)
        docs = raw(r, "COMMAND", "DOCS", "get", "set")
        names = docs[0::2] if isinstance(docs, list) else list(docs)
        self.assertIn(b"get", names)
        self.assertIn(b"set", names)
        table = raw(r, "COMMAND")
        self.assertEqual(len(table), count)

    def test_redis_cli(self):
        """Debian's redis-cli: help built from COMMAND DOCS (the hint shows the arguments),
        plain commands, --scan and --bigkeys, on database 11."""
        port = str(self.c.port(self.primary))

        def cli(*args):
            p = subprocess.run(["redis-cli", "-p", port, *args], capture_output=True,
                               timeout=CMD_TIMEOUT)
            self.assertEqual(p.returncode, 0, p.stderr)
            return re.sub(r"\x1b\[[0-9;]*m", "", p.stdout.decode(errors="replace"))

        self.assertIn("SET key value [NX|XX] [GET]", cli("help", "set"))
        self.assertIn("SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]",
                      cli("help", "scan"))
        self.assertIn("CLIENT SETNAME connection-name", cli("help", "client"))
        self.assertIn("MSET key value [key value ...]", cli("help", "@string"))
        self.assertEqual(cli("-n", "11", "set", "cli:a", "1").strip(), "OK")
        self.assertEqual(cli("-n", "11", "set", "cli:big", "x" * 5000).strip(), "OK")
        self.assertEqual(cli("-n", "11", "get", "cli:a").strip(), "1")
        self.assertEqual(sorted(cli("-n", "11", "--scan", "--pattern", "cli:*").split()),
                         ["cli:a", "cli:big"])
        big = cli("-n", "11", "--bigkeys")
        self.assertIn("Biggest string found", big)
        self.assertIn("cli:big", big)
        # --memkeys asks MEMORY USAGE of every key: cli:big's page entry, 1+7+2+5000+8 bytes.
        mem = cli("-n", "11", "--memkeys")
        self.assertIn("Biggest string found '\"cli:big\"' has 5018 bytes", mem)
        # --stat reads INFO every interval: keys, used_memory, clients, requests.
        rows = stat_rows(port)
        self.assertGreaterEqual(len(rows), 2, rows)
        for row in rows:
            keys, mem_text, clients = row.split()[:3]
            self.assertTrue(keys.isdigit(), row)
            self.assertRegex(mem_text, r"^[0-9.]+[BKMGT]$", row)
            self.assertGreaterEqual(int(clients), 1, row)

    def test_bitop_lcs_copy_move_reset(self):
        r = self.p(db=2)
        r.flushdb()
        self.client(self.primary, db=3).flushdb()
        r.mset({"a": "foobar", "b": "abcdef", "s1": "ohmytext", "s2": "mynewtext"})
        self.assertEqual(r.bitop("AND", "d", "a", "b"), 6)
        self.assertEqual(r.get("d"), b"`bc`ab")
        self.assertEqual(r.bitop("NOT", "n", "a"), 6)
        self.assertEqual(r.get("n"), bytes(~c & 0xFF for c in b"foobar"))
        self.assertEqual(r.bitop("OR", "d", "nosuch"), 0)
        self.assertEqual(r.exists("d"), 0)
        self.assertError(lambda: r.bitop("NOT", "d", "a", "b"), "single source key")
        self.assertEqual(r.lcs("s1", "s2"), b"mytext")
        self.assertEqual(r.lcs("s1", "s2", len=True), 6)
        self.assertEqual(r.lcs("s1", "s2", idx=True, minmatchlen=4, withmatchlen=True),
                         [b"matches", [[[4, 7], [5, 8], 4]], b"len", 6])
        self.assertTrue(r.copy("a", "c"))
        self.assertFalse(r.copy("a", "c"))
        self.assertTrue(r.copy("b", "c", replace=True))
        self.assertEqual(r.get("c"), b"abcdef")
        self.assertTrue(r.copy("a", "a", destination_db=3))
        self.assertTrue(r.move("b", 3))
        self.assertEqual(r.exists("b"), 0)
        r3 = self.client(self.primary, db=3)
        self.assertEqual(r3.mget("a", "b"), [b"foobar", b"abcdef"])
        self.assertFalse(r.move("a", 3))  # there already
        self.assertError(lambda: r.move("a", 2), "source and destination objects are the same")
        # The standbys that applied the connection's last write (WAIT) read what COPY and
        # MOVE wrote.
        n = r.wait(2, 10000)
        self.assertGreaterEqual(n, 1, "WAIT counted no standby")
        seen = [s for s in self.c.standbys(self.primary)
                if self.client(s, db=3).mget("a", "b") == [b"foobar", b"abcdef"]]
        self.assertGreaterEqual(len(seen), n)
        s3 = self.client(self.c.standbys(self.primary)[0], db=3)
        self.assertError(lambda: s3.copy("a", "z"), exc=redis.ReadOnlyError)
        # RESET: back to database 0, no name; CLIENT REPLY ON answers OK.
        c = self.p(db=5)
        c.client_setname("named")
        self.assertEqual(c.execute_command("RESET"), "RESET")
        if self.c.password:  # RESET ends the connection's authentication too
            self.assertError(lambda: c.execute_command("CLIENT", "INFO"), "NOAUTH",
                             exc=redis.AuthenticationError)
            c.execute_command("AUTH", self.c.password)
        self.assertEqual(c.execute_command("CLIENT", "INFO").split(b" db=")[1][:1], b"0")
        self.assertIsNone(c.client_getname())
        self.assertEqual(c.execute_command("CLIENT", "REPLY", "ON"), b"OK")
        r.flushdb()
        r3.flushdb()

    def test_transactions(self):
        """redis-py's pipeline() is MULTI/EXEC: its writes commit as one batch, later commands
        see earlier ones, a command's own error is its element, a standby refuses writes."""
        r = self.p(db=5)
        r.set("tx:n", 10)
        with r.pipeline() as p:  # transaction=True
            p.incr("tx:n").set("tx:a", "1").append("tx:a", "2").get("tx:a").incr("tx:a")
            p.mget("tx:n", "tx:a").delete("tx:n")
            self.assertEqual(p.execute(), [11, True, 2, b"12", 13, [b"11", b"13"], 1])
        self.assertEqual(r.mget("tx:n", "tx:a"), [None, b"13"])
        with r.pipeline() as p:
            p.set("tx:s", "text").incr("tx:s").set("tx:after", "yes")
            out = p.execute(raise_on_error=False)
        self.assertIsInstance(out[1], redis.ResponseError)
        self.assertEqual(r.get("tx:after"), b"yes")
        # A refused command discards it all (EXECABORT), nothing written.
        with r.pipeline() as p:
            p.set("tx:never", "1").execute_command("SCAN", "0")
            with self.assertRaises(redis.ResponseError):
                p.execute()
        self.assertIsNone(r.get("tx:never"))
        # The transaction reached the standbys as one write.
        self.assertEqual(r.execute_command("WAIT", "2", "5000"), 2)
        s = self.client(self.c.standbys(self.primary)[0], db=5)
        self.assertEqual(s.mget("tx:a", "tx:after"), [b"13", b"yes"])
        with s.pipeline() as p:
            p.get("tx:a").set("tx:a", "x")
            with self.assertRaises(redis.ResponseError) as cm:
                p.execute()
        self.assertIn("read only replica", str(cm.exception))

    def test_watch(self):
        """redis-py's transaction(): WATCH, a competing write, WatchError, and a retry that
        sees the competing write."""
        r = self.p(db=6)
        other = self.p(db=6)
        r.set("w:n", 1)
        calls = []

        def double(pipe):
            value = int(pipe.get("w:n"))
            calls.append(value)
            if len(calls) == 1:
                other.incr("w:n")  # between WATCH and EXEC: the first EXEC aborts
            pipe.multi()
            pipe.set("w:n", value * 2)

        r.transaction(double, "w:n")
        self.assertEqual(calls, [1, 2])
        self.assertEqual(r.get("w:n"), b"4")
        with r.pipeline() as p:
            p.watch("w:n")
            other.set("w:n", 0)
            p.multi()
            p.incr("w:n")
            with self.assertRaises(redis.WatchError):
                p.execute()
        self.assertEqual(r.get("w:n"), b"0")

    def test_monitor(self):
        """MONITOR: every command another client runs, as Redis 7.0 prints it (the
        arguments quoted and escaped, passwords redacted, admin commands left out), in
        order, after +OK; a monitor may not touch keys; RESET ends it."""
        port = self.c.port(self.primary)
        m = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT)
        self.addCleanup(m.close)
        m.sendall(b"*1\r\n$7\r\nMONITOR\r\n")
        buf = b""
        while b"\r\n" not in buf:
            buf += m.recv(4096)
        self.assertEqual(buf, b"+OK\r\n")
        r = self.p(db=5)
        r.set(b"mon\r\n\"k", b"v\x00\xff\\")
        r.get(b"mon\r\n\"k")
        self.assertError(lambda: raw(r, "AUTH", "secret"), "")
        r.config_get("save")  # admin: not shown
        p = r.pipeline(transaction=True)
        p.incr("mon:n")
        p.execute()
        r.echo("done")
        want = [b'"SELECT" "5"',
                b'"SET" "mon\\r\\n\\"k" "v\\x00\\xff\\\\"',
                b'"GET" "mon\\r\\n\\"k"',
                b'"AUTH" "(redacted)"',
                b'"MULTI"', b'"INCRBY" "mon:n" "1"', b'"EXEC"',
                b'"ECHO" "done"']

        def lines():
            nonlocal buf
            m.settimeout(0.2)
            try:
                buf += m.recv(65536)
            except socket.timeout:
                pass
            got = [ln for ln in buf.split(b"\r\n")[1:] if ln]
            return got if len(got) >= len(want) and got[-1].endswith(b'"done"') else None
        got = deadline_poll("the monitor's lines", 5, lines)
        pattern = re.compile(rb'^\+\d+\.\d{6} \[(\d+) 127\.0\.0\.1:\d+\] (.*)$')
        parsed = [pattern.match(ln) for ln in got]
        self.assertTrue(all(parsed), got)
        # Redis's client connects in db 0 and SELECTs 5 first (shown in db 5: after it ran).
        self.assertEqual([x.group(2) for x in parsed], want)
        self.assertEqual({x.group(1) for x in parsed}, {b"5"})
        # In monitor mode: no keys; RESET ends it.
        m.sendall(b"GET x\r\nPING\r\nRESET\r\nGET x\r\n")
        buf = b""

        def replies():
            nonlocal buf
            try:
                buf += m.recv(65536)
            except socket.timeout:
                pass
            rest = [ln for ln in buf.split(b"\r\n") if ln and not ln.startswith(b"+1")]
            return rest if len(rest) >= 4 else None
        self.assertEqual(deadline_poll("monitor-mode replies", 5, replies),
                         [b"-ERR Replica can't interact with the keyspace", b"+PONG",
                          b"+RESET", b"$-1"])

    def test_client_list_and_kill(self):
        """CLIENT LIST shows every connection (the standbys' progress links as replicas);
        CLIENT KILL closes the one it names, and a killed standby link is dialled again."""
        victim = redis.Redis("127.0.0.1", self.c.port(self.primary), db=4,
                             socket_timeout=CLIENT_TIMEOUT, single_connection_client=True)
        self.addCleanup(victim.close)
        victim.client_setname("victim")
        self.assertEqual(victim.get("none"), None)
        r = self.p()
        listed = {c["name"]: c for c in r.client_list()}
        self.assertIn("victim", listed)
        self.assertEqual(listed["victim"]["db"], "4")
        self.assertEqual(listed["victim"]["cmd"], "get")
        self.assertEqual(listed["victim"]["flags"], "N")
        links = r.client_list(_type="replica")
        self.assertEqual(len(links), 2, links)
        self.assertTrue(all(c["flags"] == "S" and c["cmd"] == "quire.report" for c in links))
        self.assertEqual(r.client_kill_filter(_id=listed["victim"]["id"]), 1)
        with self.assertRaises(redis.ConnectionError):
            victim.ping()
        self.assertNotIn("victim", {c["name"] for c in r.client_list()})
        self.assertError(lambda: r.client_kill(listed["victim"]["addr"]), "No such client")
        # The standbys' links: killed, then dialled again (WAIT still counts both).
        self.assertEqual(r.client_kill_filter(_type="slave"), 2)  # redis-py says slave
        r.set("after-kill", "1")
        deadline = time.time() + 10
        while time.time() < deadline and r.execute_command("WAIT", "2", "200") < 2:
            pass
        self.assertEqual(r.execute_command("WAIT", "2", "1000"), 2)
        self.assertEqual(len(r.client_list(_type="replica")), 2)

    def test_errors(self):
        r = self.p(db=7)
        msg = self.assertError(lambda: r.execute_command("FOO", "a", "b"))
        self.assertEqual(msg, "unknown command 'FOO', with args beginning with: 'a' 'b' ")
        self.assertEqual(self.assertError(lambda: r.execute_command("GET")),
                         "wrong number of arguments for 'get' command")
        self.assertEqual(self.assertError(lambda: r.execute_command("SET", "k")),
                         "wrong number of arguments for 'set' command")
        self.assertEqual(self.assertError(lambda: r.execute_command("CLIENT", "ID", "x")),
                         "wrong number of arguments for 'client|id' command")
        self.assertError(lambda: r.set("v", b"x" * (VALUE_MAX + 1)),
                         "value is %d bytes" % (VALUE_MAX + 1), "kValueBytesMax")
        self.assertError(lambda: r.set(b"k" * (KEY_MAX + 1), "v"),
                         "key is %d bytes" % (KEY_MAX + 1), "kKeyBytesMax")
        self.assertIsNone(r.get("v"))
        r.set("notint", "12a")
        self.assertError(lambda: r.incr("notint"), "value is not an integer or out of range")
        self.assertError(lambda: r.execute_command("QUIRE.ROTATEKEK", "60001"), "gap-ms")
        self.assertError(lambda: r.execute_command("QUIRE.SEAL", "101"))
        # The connection still works after every error.
        self.assertTrue(r.ping())

    def test_binary_safe(self):
        r = self.p(db=8)
        pairs = {
            b"k\r\n": b"v\r\n*1\r\n$4\r\nPING\r\n",
            b"nul\x00key": b"\x00\x00\x00",
            b"\xff\xfe\x00\r\n": bytes(range(256)) * 4,
            b"": b"empty key",
            b"empty value": b"",
        }
        for k, v in pairs.items():
            self.assertTrue(r.set(k, v))
        for k, v in pairs.items():
            self.assertEqual(r.get(k), v, k)
        self.assertEqual(r.mget(list(pairs)), list(pairs.values()))
        big = os.urandom(VALUE_MAX)
        self.assertTrue(r.set(b"big\x00", big))
        self.assertEqual(r.get(b"big\x00"), big)
        self.assertEqual(r.strlen(b"big\x00"), VALUE_MAX)
        longkey = b"\r\n\x00" * (KEY_MAX // 3) + b"k"
        self.assertTrue(r.set(longkey, b"long"))
        self.assertEqual(r.get(longkey), b"long")
        # A standby reads the same bytes (after WAIT counts it).
        n = r.wait(2, 10000)
        self.assertGreaterEqual(n, 1)
        found = 0
        for s in self.c.standbys(self.primary):
            rs = self.client(s, db=8)
            if rs.get(b"big\x00") == big:
                self.assertEqual(rs.mget(list(pairs)), list(pairs.values()))
                found += 1
        self.assertGreaterEqual(found, n)

    def test_pipeline_10000(self):
        r = self.p(db=9, timeout=60)
        r.flushdb()
        n = 10000
        t = time.monotonic()
        pipe = r.pipeline(transaction=False)
        for i in range(n // 2):
            pipe.set(b"p%05d" % i, b"v%05d" % i)
        for i in range(n // 2):
            pipe.get(b"p%05d" % i)
        replies = pipe.execute()
        log("pipeline of %d commands: %.2f s" % (n, time.monotonic() - t))
        self.assertEqual(len(replies), n)
        self.assertTrue(all(x is True for x in replies[: n // 2]))
        self.assertEqual(replies[n // 2:], [b"v%05d" % i for i in range(n // 2)])
        self.assertEqual(r.dbsize(), n // 2)

    def test_pipelined_writes_keep_the_connections_order(self):
        # Blind writes of one pipeline do not wait for each other's durability (issue 14);
        # the replies, and what later commands of the pipeline see, keep the command order.
        r = self.p(db=10, timeout=60)
        r.flushdb()
        pipe = r.pipeline(transaction=False)
        want = []
        for i in range(300):
            pipe.set(b"same", b"%d" % i)
            pipe.set(b"k%03d" % i, b"v%d" % i)
            want += [True, True]
            if i % 50 == 49:
                pipe.get(b"same")  # sees the SET just before it
                pipe.incr(b"k%03d" % i)  # an error in place: not an integer
                pipe.mset({b"m": b"%d" % i, b"n": b"%d" % i})
                want += [b"%d" % i, "error", True]
        pipe.get(b"same")
        pipe.mget([b"m", b"n", b"k000", b"k299"])
        want += [b"299", [b"299", b"299", b"v0", b"v299"]]
        replies = pipe.execute(raise_on_error=False)
        self.assertEqual(len(replies), len(want))
        for i, (got, w) in enumerate(zip(replies, want)):
            if w == "error":
                self.assertIsInstance(got, redis.ResponseError, "reply %d" % i)
                self.assertIn("not an integer", str(got))
            else:
                self.assertEqual(got, w, "reply %d" % i)
        self.assertEqual(r.get(b"same"), b"299")
        self.assertEqual(r.dbsize(), 300 + 3)

    def test_readonly_standby_and_wait(self):
        r = self.p()
        for s in self.c.standbys(self.primary):
            rs = self.client(s)
            self.assertError(lambda: rs.set("ro", "x"), exc=redis.ReadOnlyError)
            self.assertError(lambda: rs.execute_command("WAIT", "1", "100"),
                             "WAIT cannot be used with replica instances")
            self.assertEqual(rs.info("replication")["role"], "slave")
        self.assertIsNone(r.get("ro"))
        for i in range(5):
            key, value = "ryw:%d" % i, os.urandom(16)
            r.set(key, value)
            n = r.wait(2, 10000)
            self.assertGreaterEqual(n, 1, "WAIT counted no standby")
            self.assertLessEqual(n, 2)
            seen = [s for s in self.c.standbys(self.primary)
                    if self.client(s).get(key) == value]
            self.assertGreaterEqual(len(seen), n,
                                    "WAIT counted %d standbys but only %s read the write" % (n, seen))
        # WAIT without a write on this connection; and a timeout bounded wait for too many.
        fresh = self.p()
        self.assertGreaterEqual(fresh.wait(2, 1000), 1)
        t = time.monotonic()
        r.set("ryw:last", "x")
        self.assertLessEqual(r.wait(5, 500), 2)
        self.assertLess(time.monotonic() - t, 5)

    def test_quire_status_checkpoint_seal(self):
        r = self.p()
        st = json.loads(r.execute_command("QUIRE.STATUS"))
        for key in ("node", "role", "state", "term", "applied_ts", "applied_lsn", "commit_lsn",
                    "checkpoint_lsn", "keystore_version", "kek_version", "cmk_version"):
            self.assertIn(key, st)
        self.assertEqual(st["node"], self.primary)
        self.assertEqual((st["role"], st["state"]), ("primary", "SERVING"))
        r.set("ckpt", "x")
        lsn = r.execute_command("QUIRE.CHECKPOINT")
        self.assertIsInstance(lsn, int)
        self.assertGreater(lsn, st["checkpoint_lsn"])
        st2 = json.loads(r.execute_command("QUIRE.STATUS"))
        self.assertGreaterEqual(st2["checkpoint_lsn"], lsn)
        self.assertTrue(r.execute_command("QUIRE.SEAL"))
        self.assertTrue(r.execute_command("QUIRE.SEAL", "3"))
        r.set("after-seal", "y")
        self.assertEqual(r.get("after-seal"), b"y")
        for s in self.c.standbys(self.primary):
            ss = json.loads(self.client(s).execute_command("QUIRE.STATUS"))
            self.assertEqual((ss["node"], ss["role"]), (s, "standby"))

    def _wait_standbys(self, what, fn):
        """Every standby's QUIRE.STATUS satisfies fn within CATCHUP_WAIT."""
        standbys = self.c.standbys(self.primary)

        def check():
            ss = self.c.statuses(standbys)
            return all(s and fn(s) for s in ss.values())

        try:
            deadline_poll(what, CATCHUP_WAIT, check, interval=0.2)
        except AssertionError:
            ss = self.c.statuses(standbys)
            raise AssertionError("%s: standbys %s\n%s" % (
                what, json.dumps(ss), "\n".join(self.c.log_tail(s, 2) for s in standbys)))

    def test_rotate_kek(self):
        r = self.p()
        before = json.loads(r.execute_command("QUIRE.STATUS"))
        v = r.execute_command("QUIRE.ROTATEKEK")
        self.assertEqual(v, before["kek_version"] + 1)
        after = json.loads(r.execute_command("QUIRE.STATUS"))
        self.assertEqual(after["kek_version"], v)
        self.assertGreater(after["keystore_version"], before["keystore_version"])
        self._wait_standbys("standbys SECONDARY at KEK %d" % v,
                            lambda s: s["state"] == "SECONDARY" and s["kek_version"] == v
                            and s["keystore_version"] >= after["keystore_version"])
        self.assertEqual(r.execute_command("QUIRE.ROTATEKEK", "0"), v + 1)
        r.set("after-kek", "k")
        self.assertGreaterEqual(r.wait(2, 10000), 1)

    def test_rotate_cmk(self):
        """A CMK rotation on the primary reaches the standbys, which keep serving."""
        r = self.p()
        before = json.loads(r.execute_command("QUIRE.STATUS"))
        v = r.execute_command("QUIRE.ROTATECMK")
        self.assertEqual(v, before["cmk_version"] + 1)
        after = json.loads(r.execute_command("QUIRE.STATUS"))
        self.assertEqual(after["cmk_version"], v)
        try:
            self._wait_standbys("standbys SECONDARY at CMK %d" % v,
                                lambda s: s["state"] == "SECONDARY" and s["cmk_version"] >= v
                                and s["keystore_version"] >= after["keystore_version"])
            r.set("after-cmk", "c")
            self.assertEqual(r.wait(2, 10000), 2)
        finally:
            # A standby stuck on the rotation would stall the tests after this one.
            for s in self.c.standbys(self.primary):
                st = self.c.node_status(s)
                if not st or st["state"] != "SECONDARY":
                    log("%s is stuck after QUIRE.ROTATECMK (%s): restarting it" % (
                        s, st and st["state"]))
                    self.c.kill(s, "KILL")
                    deadline_poll("%s down" % s, 10,
                                  lambda: not (self.c.process(s) or {}).get("alive"))


class C_Faults(ClusterTestBase):
    """Faults, each followed by setUp's repair. Database 0."""

    def test_1_sigkill_primary(self):
        old = self.primary
        r = self.p(db=0)
        acked = {}
        errors = []
        stop = threading.Event()
        prefix = b"kill:%d:" % random.randrange(1 << 30)

        def writer():
            w = self.c.client(old, timeout=5)
            try:
                i = 0
                while not stop.is_set():
                    k, v = prefix + b"%06d" % i, os.urandom(12)
                    try:
                        w.set(k, v)
                    except (redis.RedisError, OSError) as e:
                        errors.append(str(e))
                        return
                    acked[k] = v
                    i += 1
            finally:
                w.close()

        # Transactions meanwhile: each EXEC increments two counters and sets one key in one
        # batch, so after the kill both counters are equal and count every acknowledged EXEC
        # (and at most the one in flight).
        tx_acked = []
        tx_errors = []
        ta, tb = prefix + b"tx:a", prefix + b"tx:b"

        def transactions():
            w = self.c.client(old, timeout=5)
            try:
                i = 0
                while not stop.is_set():
                    k = prefix + b"tx:%06d" % i
                    try:
                        with w.pipeline() as p:  # MULTI ... EXEC
                            p.incr(ta).set(k, b"%d" % i).incr(tb)
                            a, _, b = p.execute()
                    except (redis.RedisError, OSError) as e:
                        tx_errors.append(str(e))
                        return
                    tx_acked.append((k, a, b))
                    i += 1
            finally:
                w.close()

        for i in range(200):
            k = prefix + b"pre%04d" % i
            r.set(k, k)
            acked[k] = k
        th = threading.Thread(target=writer, daemon=True)
        tt = threading.Thread(target=transactions, daemon=True)
        th.start()
        tt.start()
        deadline_poll("the writer's acknowledged writes", 30,
                      lambda: len(acked) >= 400 and len(tx_acked) >= 50)
        t0 = time.monotonic()
        self.c.kill(old, "KILL")
        th.join(10)
        tt.join(10)
        stop.set()
        self.assertFalse(th.is_alive())
        self.assertFalse(tt.is_alive())
        new = self.c.wait_primary(exclude=(old,))
        took = time.monotonic() - t0
        log("SIGKILL %s: %s primary after %.2f s; %d writes acknowledged (%s)" % (
            old, new, took, len(acked), errors[:1]))
        self.assertNotEqual(new, old)
        self.assertLess(took, FAILOVER_WAIT)
        rn = self.client(new)
        keys = sorted(acked)
        missing = []
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            for k, got in zip(chunk, rn.mget(chunk)):
                if got != acked[k]:
                    missing.append((k, got))
        self.assertEqual(missing, [], "acknowledged writes lost after SIGKILL of the primary")
        # Every acknowledged transaction is there, whole; an unacknowledged one whole or not
        # at all.
        for k, a, b in tx_acked:
            self.assertEqual(a, b, "a transaction's two increments disagree in its reply")
        a, b = rn.get(ta), rn.get(tb)
        self.assertEqual(a, b, "a transaction applied in part after SIGKILL of the primary")
        self.assertIn(int(a), (len(tx_acked), len(tx_acked) + 1))
        tx_keys = [k for k, _, _ in tx_acked]
        for i in range(0, len(tx_keys), 500):
            self.assertNotIn(None, rn.mget(tx_keys[i:i + 500]), "an acknowledged EXEC lost")
        log("SIGKILL %s: %d transactions acknowledged (%s), counters at %s" % (
            old, len(tx_acked), tx_errors[:1], a))
        self.assertEqual(self.c.process(old)["last_exit"], "signal 9 (Killed)")
        # The new primary takes writes.
        self.assertTrue(rn.set(prefix + b"after", b"1"))

    def test_2_sigstop_primary(self):
        old = self.primary
        standbys = self.c.standbys(old)
        r = self.p()
        prefix = "stop:%d:" % random.randrange(1 << 30)
        r.set(prefix + "split", "before")
        self.assertGreaterEqual(r.wait(2, 10000), 1)
        results = {}  # key -> ("ok", value) or ("err", message)

        def blocked_write(key, value):
            w = self.c.client(old, timeout=STOP_SECONDS + 20)
            try:
                w.set(key, value)
                results[key] = ("ok", value)
            except (redis.RedisError, OSError) as e:
                results[key] = ("err", "%s: %s" % (type(e).__name__, e))
            finally:
                w.close()

        self.c.kill(old, "STOP")
        t0 = time.monotonic()
        threads = []
        try:
            for i in range(5):
                key = prefix + ("split" if i == 0 else "w%d" % i)
                th = threading.Thread(target=blocked_write, args=(key, "old-%d" % i), daemon=True)
                th.start()
                threads.append(th)
                time.sleep(0.1)
            new = self.c.wait_primary(exclude=(old,), timeout=FAILOVER_WAIT)
            log("SIGSTOP %s: %s primary after %.2f s" % (old, new, time.monotonic() - t0))
            rn = self.client(new)
            self.assertTrue(rn.set(prefix + "split", "new"))
            self.assertTrue(rn.set(prefix + "new-only", "n"))
            time.sleep(max(0.0, STOP_SECONDS - (time.monotonic() - t0)))
            self.assertEqual(results, {}, "a write to the stopped primary was answered")
        finally:
            self.c.kill(old, "CONT")
        for th in threads:
            th.join(30)
        self.assertFalse(any(th.is_alive() for th in threads), "a blocked write never ended")
        log("writes to the stopped primary: %s" % results)

        # The old primary steps down (or restarts) within a few seconds.
        def deposed():
            s = self.c.node_status(old)
            return s is not None and s["role"] != "primary"

        try:
            deadline_poll("%s answers and is no longer primary" % old, 10, deposed)
        except AssertionError:
            raise AssertionError("%s after SIGCONT: %s\n%s" % (
                old, self.c.node_status(old), self.c.log_tail(old)))
        # It refuses writes from now on (or is down, restarting).
        late = self.client(old, timeout=5)
        try:
            late.set(prefix + "late", "x")
            late_ok = True
        except (redis.RedisError, OSError):
            late_ok = False
        self.assertFalse(late_ok, "the deposed primary acknowledged a write")
        # Nothing it acknowledged is lost; the new primary's writes stand.
        new_now = self.c.wait_primary(exclude=(old,))
        rn = self.client(new_now)
        for key, (kind, value) in results.items():
            if kind == "ok" and key != prefix + "split":
                self.assertEqual(rn.get(key), value.encode(),
                                 "%s acknowledged by the stopped primary is lost" % key)
        self.assertEqual(rn.get(prefix + "split"), b"new",
                         "a write of the old primary overwrote the new primary's")
        self.assertEqual(rn.get(prefix + "new-only"), b"n")
        self.assertIsNone(rn.get(prefix + "late"))
        for s in [n for n in standbys if n != new_now]:
            self.assertIsNotNone(self.c.node_status(s), "%s does not answer" % s)

    def test_3_pageserver_kill_during_kek_rotation(self):
        standby = self.c.standbys(self.primary)[0]
        ps = Cluster.PAGESERVERS[Cluster.NODES.index(standby) % 3]
        r = self.p()
        before = json.loads(r.execute_command("QUIRE.STATUS"))
        outcome = {}

        def rotate():
            rr = self.c.client(self.primary, timeout=30)
            try:
                outcome["v"] = rr.execute_command("QUIRE.ROTATEKEK", "1500")
            except (redis.RedisError, OSError) as e:
                outcome["err"] = str(e)
            finally:
                rr.close()

        th = threading.Thread(target=rotate, daemon=True)
        th.start()
        time.sleep(0.3)
        self.assertTrue(th.is_alive(), "the rotation ended before the page server's kill: %s"
                        % outcome)
        log("SIGKILL %s (preferred by %s) during QUIRE.ROTATEKEK 1500" % (ps, standby))
        self.c.kill(ps, "KILL")
        th.join(40)
        self.assertFalse(th.is_alive(), "QUIRE.ROTATEKEK did not return")
        self.assertNotIn("err", outcome, "the rotation failed with one page server down")
        v = outcome["v"]
        self.assertEqual(v, before["kek_version"] + 1)
        after = json.loads(r.execute_command("QUIRE.STATUS"))

        def reached():
            s = self.c.node_status(standby)
            return (s and s["state"] == "SECONDARY" and s["kek_version"] == v
                    and s["keystore_version"] >= after["keystore_version"])

        try:
            deadline_poll("%s SECONDARY with KEK %d" % (standby, v), CATCHUP_WAIT, reached, 0.2)
        except AssertionError:
            raise AssertionError("%s: %s\n%s" % (standby, self.c.node_status(standby),
                                                 self.c.log_tail(standby)))
        key, value = "ps-kill:%d" % random.randrange(1 << 30), os.urandom(20)
        r.set(key, value)
        self.assertGreaterEqual(r.wait(2, 10000), 1)
        rs = self.client(standby)
        deadline_poll("%s reads the write" % standby, CATCHUP_WAIT,
                      lambda: rs.get(key) == value, 0.1)
        self.assertFalse(self.c.process(ps)["alive"])

    def test_4_sigterm_primary(self):
        old = self.primary
        r = self.p()
        key = "term:%d" % random.randrange(1 << 30)
        r.set(key, "v")
        t0 = time.monotonic()
        self.c.kill(old, "TERM")
        new = self.c.wait_primary(exclude=(old,), timeout=FAILOVER_WAIT)
        took = time.monotonic() - t0
        log("SIGTERM %s: %s primary after %.2f s" % (old, new, took))
        self.assertLess(took, HANDOVER_MAX, "the hand-over after SIGTERM was slow")
        self.assertEqual(self.client(new).get(key), b"v")
        deadline_poll("%s exited" % old, 15, lambda: not self.c.process(old)["alive"])
        self.assertEqual(self.c.process(old)["last_exit"], "exit 0")
        st = {p["name"]: p for p in self.c.status()["processes"]}
        self.assertEqual(st[old]["last_exit"], "exit 0")
        self.assertFalse(st[old]["alive"])

    def test_5_no_plaintext_on_pageservers(self):
        r = self.p()
        tag = os.urandom(8).hex().encode()
        values = [b"CANARYVAL-" + tag + b"-%03d" % i for i in range(50)]
        keys = [b"CANARYKEY-" + tag + b"-%03d" % i for i in range(50)]
        pipe = r.pipeline(transaction=False)
        for k, v in zip(keys, values):
            pipe.set(k, v * 4)
        pipe.set(b"canary-big", b"CANARYVAL-" + tag + b"-big" + b"z" * 100000)
        self.assertTrue(all(pipe.execute()))
        r.execute_command("QUIRE.CHECKPOINT")
        r.execute_command("QUIRE.SEAL")
        self.assertEqual(r.mget(keys), [v * 4 for v in values])
        needle_val = b"CANARYVAL-" + tag
        needle_key = b"CANARYKEY-" + tag
        files, total = 0, 0
        leaks = []
        for ps in Cluster.PAGESERVERS:
            for root, _, names in os.walk(os.path.join(self.c.dir, ps)):
                for name in names:
                    path = os.path.join(root, name)
                    try:
                        with open(path, "rb") as f:
                            data = f.read()
                    except OSError:
                        continue
                    files += 1
                    total += len(data)
                    for needle in (needle_val, needle_key, tag):
                        if needle in data:
                            leaks.append((path, needle))
        log("page server files: %d, %d bytes" % (files, total))
        self.assertGreater(files, 0)
        self.assertGreater(total, 100000, "the page servers hold less than was written")
        self.assertEqual(leaks, [], "plaintext on a page server")


def ignore_sigchld():
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)


class W_Supervisor(unittest.TestCase):
    """A cluster of its own, started by a parent that ignores SIGCHLD and passes down an
    open pipe (as a careless caller might): the supervisor must still see its children end,
    and nothing it starts may hold the caller's descriptors. Then: a start right after a
    SIGTERM; a supervisor killed with SIGKILL (start refuses while its processes run, stop
    ends them by pid); a state file naming a pid another process took (stop and kill leave
    it alone)."""

    @classmethod
    def setUpClass(cls):
        base = choose_base_port(*PORTS)
        cls.c = Cluster(QUIRE, base)
        EXTRA_CLUSTERS.append(cls.c)
        log("supervisor cluster in %s, base port %d" % (cls.c.dir, base))
        cls.c.init()
        cls.pipe_r, w = os.pipe()
        try:
            p = subprocess.run([QUIRE, "cluster", "start", cls.c.dir, "--wait", str(START_WAIT)],
                               capture_output=True, timeout=START_WAIT + 30,
                               preexec_fn=ignore_sigchld, pass_fds=(w,))
        finally:
            os.close(w)
        cls.c.remember_pids()
        if p.returncode != 0:
            raise AssertionError("start: exit %d: %s" % (p.returncode, p.stderr.decode(errors="replace")))
        deadline_poll("supervisor cluster ready", START_WAIT, cls.c.ready, 0.2)

    @classmethod
    def tearDownClass(cls):
        os.close(cls.pipe_r)
        cls.c.cleanup()

    def pids(self):
        st = self.c.state()
        return {p["name"]: p["pid"] for p in st["processes"]}

    def test_1_no_descriptor_of_the_caller_is_held(self):
        # Every process the start left running closed the pipe's write end: EOF at once.
        ready, _, _ = select.select([self.pipe_r], [], [], 2.0)
        self.assertTrue(ready, "a process of the cluster holds the caller's pipe")
        self.assertEqual(os.read(self.pipe_r, 1), b"")

    def test_2_a_killed_process_is_seen_and_started_again(self):
        prim = self.c.ready()
        victim = self.c.standbys(prim)[0]
        self.c.kill(victim, "KILL")
        # The supervisor saw it end (its SIGCHLD was ignored by the caller, not by it).
        deadline_poll("%s recorded as ended" % victim, 10,
                      lambda: not self.c.process(victim)["alive"], 0.1)
        self.assertIn("signal 9", self.c.process(victim)["last_exit"])
        self.c.start(wait=30)
        deadline_poll("cluster ready", START_WAIT, self.c.ready, 0.2)

    def test_3_start_right_after_a_sigterm(self):
        prim = self.c.ready()
        victim = self.c.standbys(prim)[0]
        old = self.c.process(victim)["pid"]
        # The node takes its SIGTERM only after the start's first SIGHUP reached the
        # supervisor (it is stopped until then): it is still running at that SIGHUP, and
        # ends later. The start asks again while something is down, so it returns with
        # the node back (it once waited out its whole --wait, the node down).
        self.c.kill(victim, "STOP")
        self.c.kill(victim, "TERM")
        t = time.monotonic()
        start = subprocess.Popen([QUIRE, "cluster", "start", self.c.dir, "--wait", "30"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            time.sleep(1.0)
            self.assertTrue(pid_alive(old))
            self.c.kill(victim, "CONT")
            out, err = start.communicate(timeout=60)
        finally:
            if start.poll() is None:
                start.kill()
                start.wait()
        log("start across a SIGTERM: %.1f s" % (time.monotonic() - t))
        self.assertEqual(start.returncode, 0, err.decode(errors="replace"))
        self.assertFalse(pid_alive(old))
        self.assertTrue(self.c.process(victim)["alive"])
        self.assertNotEqual(self.c.process(victim)["pid"], old)
        self.c.remember_pids()
        deadline_poll("cluster ready", START_WAIT, self.c.ready, 0.2)

    def test_4_a_killed_supervisor(self):
        self.c.ready()
        st = self.c.state()
        sup = st["supervisor_pid"]
        procs = {p["name"]: p["pid"] for p in st["processes"]}
        os.kill(sup, signal.SIGKILL)
        deadline_poll("supervisor gone", 10, lambda: not pid_alive(sup), 0.05)
        self.assertTrue(all(pid_alive(pid) for pid in procs.values()))
        p = self.c.run("start", self.c.dir, "--wait", "10", check=False, timeout=40)
        err = p.stderr.decode(errors="replace") + p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 1, err)
        self.assertIn("without their supervisor", err)
        self.assertIn("quire cluster stop", err)
        self.assertIn("ps1 (pid %d)" % procs["ps1"], err)
        # Nothing was started beside them, and they still run.
        self.assertEqual(self.c.state()["supervisor_pid"], sup)
        self.assertTrue(all(pid_alive(pid) for pid in procs.values()))
        p = self.c.stop()
        self.assertEqual(p.returncode, 0, p.stderr)
        alive = [n for n, pid in procs.items() if pid_alive(pid)]
        self.assertEqual(alive, [])
        st = self.c.state()
        self.assertTrue(all(not p["alive"] and p["pid"] == 0 for p in st["processes"]), st)
        self.c.start()
        deadline_poll("cluster ready", START_WAIT, self.c.ready, 0.2)

    def test_5_a_pid_taken_by_another_process_is_left_alone(self):
        p = self.c.stop()
        self.assertEqual(p.returncode, 0, p.stderr)
        # A supervisor of an earlier build holds only flock(2) and names itself in
        # supervisor.pid: it is still seen as running.
        run_dir = os.path.join(self.c.dir, "run")
        holder = subprocess.Popen(["sleep", "60"])
        try:
            with open(os.path.join(run_dir, "supervisor.pid"), "w") as f:
                f.write("%d\n" % holder.pid)
            fd = os.open(os.path.join(run_dir, "supervisor.lock"), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                st = self.c.status()
                self.assertTrue(st["running"], st)
                self.assertEqual(st["supervisor_pid"], holder.pid)
            finally:
                os.close(fd)
            self.assertFalse(self.c.status()["running"])
        finally:
            holder.kill()
            holder.wait()
            os.unlink(os.path.join(run_dir, "supervisor.pid"))
        # A process named like ours, at a pid the (doctored) state file names.
        other = subprocess.Popen(["bash", "-c", "exec -a quire sleep 60"])
        try:
            path = os.path.join(self.c.dir, "run", "state.json")
            with open(path) as f:
                st = json.load(f)
            st["processes"][1]["pid"] = other.pid  # ps1
            st["processes"][1]["alive"] = True
            st["processes"][1]["start_time"] = 1  # not when `other` started
            with open(path, "w") as f:
                json.dump(st, f)
            self.assertEqual(self.c.stop().returncode, 0)
            self.assertIsNone(other.poll(), "cluster stop signalled a process not its own")
            p = self.c.run("kill", self.c.dir, "ps1", "--signal", "KILL", check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIsNone(other.poll(), "cluster kill signalled a process not its own")
        finally:
            other.kill()
            other.wait()
        self.c.start()
        deadline_poll("cluster ready", START_WAIT, self.c.ready, 0.2)


class X_DiskFull(unittest.TestCase):
    """A cluster of its own whose page servers' data directories are small tmpfs mounts. The
    disks fill: writes fail with a retriable error that says so, the page servers stay up
    (no restart), every acknowledged write stays readable on the primary and the standbys,
    and once the file systems grow, writes go on by themselves. Needs mount(8) (root with
    CAP_SYS_ADMIN); the class is reported as skipped, with the reason, when it cannot mount."""

    DISK = "24m"
    VALUE = 100 * 1024
    FILL_SECONDS = 90  # bound on filling the disks
    RESUME_WAIT = 30  # writes go through again after the file systems grew

    @classmethod
    def setUpClass(cls):
        base = choose_base_port(*PORTS)
        cls.c = Cluster(QUIRE, base)
        EXTRA_CLUSTERS.append(cls.c)
        log("disk-full cluster in %s, base port %d" % (cls.c.dir, base))
        cls.c.init()
        try:
            cls.disks = [cls.c.mount_tmpfs(ps, cls.DISK) for ps in Cluster.PAGESERVERS]
        except OSError as e:
            cls.c.unmount_all()
            raise unittest.SkipTest("cannot mount a tmpfs here: %s" % e)
        cls.c.start()
        cls.primary = deadline_poll("disk-full cluster ready", START_WAIT, cls.c.ready, 0.2)

    @classmethod
    def tearDownClass(cls):
        cls.c.cleanup()

    def pageserver_pids(self):
        st = self.c.state()
        return {p["name"]: (p["pid"], p["alive"], p.get("restarts", 0))
                for p in st["processes"] if p["kind"] == "pageserver"}

    def value(self, key):
        return key.encode() * 8 + b"v" * (self.VALUE - 8 * len(key))

    def test_full_disks_stop_writes_and_lose_nothing(self):
        pids = self.pageserver_pids()
        self.assertTrue(all(alive for _, alive, _ in pids.values()), pids)
        w = self.c.client(self.primary, timeout=60)
        self.addCleanup(w.close)
        acked, refusal = [], None
        t0 = time.monotonic()
        while time.monotonic() - t0 < self.FILL_SECONDS and len(acked) < 5000:
            key = "full:%d" % len(acked)
            try:
                w.set(key, self.value(key))
                acked.append(key)
            except redis.ResponseError as e:
                refusal = str(e)
                break
        log("disks full after %d writes of %d bytes, %.1f s: %s" % (
            len(acked), self.VALUE, time.monotonic() - t0, refusal))
        self.assertIsNotNone(refusal, "no write refused in %d s" % self.FILL_SECONDS)
        self.assertTrue(refusal.startswith("TRYAGAIN"), refusal)
        self.assertIn("NoSpace", refusal)
        self.assertGreater(len(acked), 50)
        # The page servers stayed up: the same processes, never restarted.
        self.assertEqual(self.pageserver_pids(), pids)
        said_full = []
        for ps in Cluster.PAGESERVERS:
            with open(os.path.join(self.c.dir, "logs", ps + ".log")) as f:
                text = f.read()
            self.assertNotIn("restarting to recover", text, ps)
            if "the disk is full" in text:
                said_full.append(ps)
        self.assertNotEqual(said_full, [], "no page server logged its full disk")
        # Every acknowledged write is readable, on the primary and on both standbys.
        for node in Cluster.NODES:
            r = self.c.client(node, timeout=CLIENT_TIMEOUT)
            self.addCleanup(r.close)
            deadline_poll("%s applied the last write" % node, CATCHUP_WAIT,
                          lambda: r.get(acked[-1]) is not None or None)
            bad = [k for k in acked if r.get(k) != self.value(k)]
            self.assertEqual(bad, [], node)
        # Space freed: writes go through again, with no restart.
        for path in self.disks:
            self.c.resize_tmpfs(path, "512m")

        def resumed():
            try:
                w.set("after", b"x" * self.VALUE)
                return True
            except redis.ResponseError:
                return None
        t1 = time.monotonic()
        deadline_poll("writes resume", self.RESUME_WAIT, resumed, interval=0.5)
        log("writes resumed %.1f s after the disks grew" % (time.monotonic() - t1))
        for i in range(50):
            key = "after:%d" % i
            w.set(key, self.value(key))
            acked.append(key)
        bad = [k for k in acked if w.get(k) != self.value(k)]
        self.assertEqual(bad, [])
        self.assertEqual(self.pageserver_pids(), pids)

    def test_z_an_empty_page_server_on_a_full_disk_serves_and_copies_later(self):
        """A page server restarted with an empty data directory on a full disk (no room even
        for a first segment's header) serves without restarting; the cluster writes on the
        other two and the standbys keep applying; once there is room it creates its segment
        and copies what it missed from its peers."""
        ps, path = Cluster.PAGESERVERS[2], self.disks[2]
        w = self.c.client(self.primary, timeout=60)
        self.addCleanup(w.close)
        self.c.kill(ps, "KILL")
        old = self.c.process(ps)["pid"]
        deadline_poll("%s gone" % ps, 10, lambda: not pid_alive(old) or None)
        for name in os.listdir(path):
            full = os.path.join(path, name)
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)

        def shrunk():
            # Refused (exit 32) while the killed server's pages are still being freed.
            try:
                self.c.resize_tmpfs(path, "1m")
                return True
            except subprocess.CalledProcessError:
                return None
        deadline_poll("%s's tmpfs shrinks to 1 MiB" % ps, 10, shrunk)
        filler = os.path.join(path, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as e:
            self.assertEqual(e.errno, errno.ENOSPC, e)
        finally:
            os.close(fd)
        log_path = os.path.join(self.c.dir, "logs", ps + ".log")
        log_from = os.path.getsize(log_path)
        self.c.start()
        pid = self.c.process(ps)["pid"]

        def since_restart():
            with open(log_path) as f:
                f.seek(log_from)
                return f.read()
        deadline_poll("%s says its disk is full" % ps, 20,
                      lambda: "the disk is full" in since_restart() or None)
        keys = ["empty:%d" % i for i in range(20)]
        for k in keys:
            w.set(k, self.value(k))
        for node in Cluster.NODES:
            r = self.c.client(node, timeout=CLIENT_TIMEOUT)
            self.addCleanup(r.close)
            deadline_poll("%s applied the writes" % node, CATCHUP_WAIT,
                          lambda: r.get(keys[-1]) is not None or None)
            self.assertEqual([k for k in keys if r.get(k) != self.value(k)], [], node)
        self.assertEqual(self.c.process(ps)["pid"], pid)
        self.assertTrue(pid_alive(pid))
        self.assertNotIn("restarting to recover", since_restart())
        # Room again: the server creates its segment and copies everything from its peers.
        os.unlink(filler)
        self.c.resize_tmpfs(path, "512m")
        deadline_poll("%s creates its segment" % ps, 30,
                      lambda: "the active segment is created" in since_restart() or None)
        segments = os.path.join(path, "segments")
        deadline_poll("%s copies what it missed" % ps, 60,
                      lambda: sum(os.path.getsize(os.path.join(segments, n))
                                  for n in os.listdir(segments)
                                  if n.startswith("seg-")) > 50 * self.VALUE or None)
        self.assertEqual(self.c.process(ps)["pid"], pid)


class Y_Password(unittest.TestCase):
    """A cluster of its own made with `quire cluster init --requirepass`: the password file,
    NOAUTH/WRONGPASS/AUTH through redis-py, `quire cluster status` (it authenticates), WAIT
    (the standbys authenticate to the primary to report their progress), and the same
    after a SIGTERM hand-over (the standbys' links re-dial the new primary)."""

    PASSWORD = "pw %d s3cret" % random.randrange(1 << 30)

    @classmethod
    def setUpClass(cls):
        base = choose_base_port(*PORTS)
        cls.c = Cluster(QUIRE, base, password=cls.PASSWORD)
        EXTRA_CLUSTERS.append(cls.c)
        log("password cluster in %s, base port %d" % (cls.c.dir, base))
        cls.c.init()
        t = time.monotonic()
        p = cls.c.start()
        cls.start_output = p.stdout.decode(errors="replace")
        log("password cluster started in %.1f s" % (time.monotonic() - t))
        cls.primary = deadline_poll("password cluster ready", START_WAIT, cls.c.ready, 0.2)

    @classmethod
    def tearDownClass(cls):
        cls.c.cleanup()

    def client(self, node, **kw):
        cl = self.c.client(node, **kw)
        self.addCleanup(cl.close)
        return cl

    def test_1_password_file_and_command_lines(self):
        path = os.path.join(self.c.dir, "requirepass")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(path) as f:
            self.assertEqual(f.read(), self.PASSWORD + "\n")
        with open(os.path.join(self.c.dir, "cluster.json")) as f:
            spec = f.read()
        self.assertIs(json.loads(spec)["requirepass"], True)
        self.assertNotIn(self.PASSWORD, spec)
        self.assertIn("--askpass", self.start_output)
        for p in self.c.state()["processes"]:
            with open("/proc/%d/cmdline" % p["pid"], "rb") as f:
                cmdline = f.read()
            self.assertNotIn(self.PASSWORD.encode(), cmdline, p["name"])
            if p["kind"] == "node":
                self.assertIn(b"--requirepass-file", cmdline)

    def test_2_auth(self):
        anon = self.client(self.primary, password=None)
        self.assertRaisesRegex(redis.AuthenticationError, "Authentication required",
                               anon.ping)
        # redis-py raises AuthenticationError for NOAUTH, ResponseError for WRONGPASS.
        self.assertRaisesRegex(redis.AuthenticationError, "Authentication required",
                               lambda: anon.get("k"))
        wrong = self.client(self.primary, password="wrong")
        self.assertRaisesRegex(redis.ResponseError, "WRONGPASS invalid username-password pair",
                               wrong.ping)
        r = self.client(self.primary)
        key, value = "pw:%d" % random.randrange(1 << 30), os.urandom(64)
        self.assertTrue(r.set(key, value))
        self.assertEqual(r.get(key), value)
        # On one connection: NOAUTH, then AUTH, then commands.
        self.assertEqual(raw(anon, "AUTH", self.PASSWORD), b"OK")
        self.assertEqual(anon.get(key), value)
        hello = raw(self.client(self.primary, password=None), "HELLO", "2", "AUTH", "default",
                    self.PASSWORD)
        self.assertEqual(dict(zip(hello[0::2], hello[1::2]))[b"role"], b"master")
        standby = self.client(self.c.standbys(self.primary)[0])
        self.assertRaisesRegex(redis.ReadOnlyError, "read only replica",
                               lambda: standby.set(key, "x"))

    def test_3_status_and_wait(self):
        st = json.loads(self.c.run("status", self.c.dir, "--json").stdout)
        roles = sorted((p["role"], p["state"]) for p in st["processes"] if p["kind"] == "node")
        self.assertEqual(roles, [("primary", "SERVING"), ("standby", "SECONDARY"),
                                 ("standby", "SECONDARY")])
        r = self.client(self.primary)
        r.set("pw:wait", "1")
        self.assertEqual(r.wait(2, 10000), 2)

    def test_4_sigterm_then_wait(self):
        old = self.primary
        self.c.kill(old, "TERM")
        new = self.c.wait_primary(exclude=(old,), timeout=FAILOVER_WAIT)
        r = self.client(new)
        key = "pw:term:%d" % random.randrange(1 << 30)
        r.set(key, "v")
        # The other standby reports to the new primary over an authenticated link.
        self.assertGreaterEqual(r.wait(1, 10000), 1)
        self.c.start()
        deadline_poll("password cluster ready again", START_WAIT, self.c.ready, 0.2)


class Z_Stop(ClusterTestBase):
    def setUp(self):
        self.c = CLUSTER
        self.clients = []

    def test_stop_ends_every_process(self):
        self.c.repair()
        self.c.remember_pids()
        st = self.c.state()
        named = {p["pid"]: p["name"] for p in st["processes"]}
        named[st["supervisor_pid"]] = "supervisor"
        self.assertTrue(all(pid_alive(p) for p in named))
        t = time.monotonic()
        p = self.c.stop()
        self.assertEqual(p.returncode, 0, p.stderr)
        log("cluster stop: %.1f s" % (time.monotonic() - t))
        alive = ["%s (pid %d)" % (name, pid) for pid, name in named.items() if pid_alive(pid)]
        self.assertEqual(alive, [], "alive after cluster stop")
        st = self.c.state()
        self.assertTrue(all(not p["alive"] and p["pid"] == 0 for p in st["processes"]), st)
        # Nodes and page servers stopped cleanly.
        for p in st["processes"]:
            if p["kind"] != "etcd":
                self.assertEqual(p["last_exit"], "exit 0", p)
        status = self.c.status()
        self.assertFalse(status["running"])


def main():
    global QUIRE, PORTS, KEEP, BUDGET
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--quire", required=True)
    ap.add_argument("--ports", default="20000-32000")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--budget", type=int, default=BUDGET)
    args, rest = ap.parse_known_args()
    QUIRE = os.path.abspath(args.quire)
    lo, hi = (int(x) for x in args.ports.split("-"))
    PORTS = (lo, hi)
    KEEP = args.keep
    BUDGET = args.budget
    t = time.monotonic()

    def watchdog():
        log("the suite ran past %d s: stopping the cluster and exiting" % BUDGET)
        cleanup_module()
        os._exit(2)

    timer = threading.Timer(BUDGET, watchdog)
    timer.daemon = True
    timer.start()

    def on_signal(signum, _frame):
        log("signal %d: stopping the cluster" % signum)
        cleanup_module()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    prog = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
    timer.cancel()
    log("wall time %.1f s" % (time.monotonic() - t))
    sys.exit(0 if prog.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
