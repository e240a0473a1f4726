#!/usr/bin/python3
"""Real-cluster benchmark: a local Quire cluster (`quire cluster`) against redis-server.

Measures, in one run and on one disk, each figure next to its same-run baseline:

  1. redis-benchmark -t set,get -c 50 -n N -r 1000000 (and again with -P 16) against the
     Quire primary and against redis-server --appendonly yes with --appendfsync always and
     everysec (its own port and temp dir on the same filesystem, --save "").
  2. Visibility lag on each standby at a paced 5k writes/s to the primary: acknowledgement
     on the primary -> value readable on the standby, with the poll cycle reported. After
     section 1, a QUIRE.CHECKPOINT first writes its backlog (its 800k random SETs dirty
     most of the tree), so the lag is measured under the paced load alone; its duration
     is reported.
  3. Failover: SIGKILL and SIGTERM of the primary -> first write acknowledged by another
     node (the client tries every node every ~20 ms), over --trials each.
  4. KEK rotation: QUIRE.ROTATEKEK reply -> every standby's kek_version at the new value.

Plus machine context: nproc, CPU model, load average, and the raw append+fdatasync latency
of the disk under the temp dir. Section 1 also reports each process's CPU seconds (cpu_s),
for both ops together and for each (SET and GET run as two redis-benchmark commands, each
metered), for Quire's processes their threads' context switches (ctx_switches), and a CPU
budget per op (cpu_budget): microseconds of CPU per command by kind of process
(redis-benchmark's included), the share of the cores busy, and the ceiling, the rate the
cores could carry at that CPU per command if they were never idle.

--busy N runs N busy-looping processes (plain CPU burners, at the benchmark's priority, or
at --busy-nice) from the cluster's start to the end of the run, for the figures on a
loaded machine; the report says so and gives the CPU they got.

--fsync-delay-us N emulates a slower disk for both sides alike: redis-server and every Quire
process run with bench/slow_fsync.c preloaded, which sleeps N us after each fdatasync and
fsync returns (the report says so). The figures of the goal are without it.

    /usr/bin/python3 bench/cluster_bench.py --quire build/release/src/quire --json F

Self-cleaning: the cluster is stopped (`quire cluster stop`, then its recorded pids) and
every redis-server started here is killed by pid, also on errors and Ctrl-C. Ports: the
cluster takes --base-port .. +22, redis-server --redis-port.
"""

import argparse
import bisect
import json
import os
import platform
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
# --fsync-delay-us: the environment of redis-server and of `quire cluster start` (whose
# supervisor passes it to every Quire process), preloading bench/slow_fsync.c.
CHILD_ENV = dict(os.environ)
REDIS_BENCHMARK = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"

FAILOVER_RETRY_S = 0.020  # clients retry every node this often after the fault
FAILOVER_BOUND_S = 30.0  # a failover not done by then counts as failed
KEK_BOUND_S = 10.0  # a standby not at the new KEK by then counts as failed
LAG_DRAIN_S = 5.0  # after the writer stops, pollers wait this long for the last keys
LAG_SAMPLE_EVERY = 10  # every Nth paced write is a sampled key the pollers look for
STALL_SLEEP_S = 0.001  # the stall probe's sleep
STALL_LATE_S = 0.003  # a wake-up this much later than asked counts as a machine stall


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def pct(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list; None when empty."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def summary_ms(seconds):
    """p50/p99/max/mean in ms of a list of durations in seconds."""
    if not seconds:
        return {"count": 0}
    ms = [x * 1000.0 for x in seconds]
    return {
        "count": len(ms),
        "p50_ms": round(pct(ms, 50), 3),
        "p99_ms": round(pct(ms, 99), 3),
        "max_ms": round(max(ms), 3),
        "min_ms": round(min(ms), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


# ---------------------------------------------------------------------------- machine


def machine_info(tmpdir):
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "loadavg_start": list(os.getloadavg()),
        "fdatasync": fdatasync_latency(tmpdir),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def fdatasync_latency(tmpdir, count=200, size=4096):
    """Median latency of append(4 KiB) + fdatasync on a fresh file under tmpdir."""
    path = os.path.join(tmpdir, "fdatasync.probe")
    buf = os.urandom(size)
    lat = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for _ in range(count):
            t = time.perf_counter()
            os.write(fd, buf)
            os.fdatasync(fd)
            lat.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.unlink(path)
    return {"count": count, "bytes": size, **summary_ms(lat)}


def wait_quiet(max_load, max_wait_s):
    """Waits until the 1-minute load average is below max_load; returns the last value."""
    deadline = time.time() + max_wait_s
    while True:
        load1 = os.getloadavg()[0]
        if load1 < max_load or time.time() >= deadline:
            if load1 >= max_load:
                log(f"warning: load average still {load1:.2f} after {max_wait_s:.0f} s; measuring anyway")
            return load1
        log(f"load average {load1:.2f} >= {max_load}; waiting")
        time.sleep(15)


def proc_cpu(pid):
    """CPU seconds (user + system) a live process has used; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def proc_switches(pid):
    """Context switches (voluntary and not) of a live process's threads so far; None when
    it is gone. A thread that exited meanwhile takes its count with it."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class CpuMeter:
    """CPU seconds used by named processes (and by this script's waited-for children, e.g.
    redis-benchmark) between start() and stop()."""

    def __init__(self, pids):
        self.pids = pids

    def start(self):
        self.before = {n: proc_cpu(p) for n, p in self.pids.items()}
        self.switches_before = {n: proc_switches(p) for n, p in self.pids.items()}
        self.children = children_cpu()
        self.t = time.monotonic()
        return self

    def switches(self):
        """Context switches per named process since start() (None: it was gone)."""
        out = {}
        for n, p in self.pids.items():
            a, b = self.switches_before[n], proc_switches(p)
            out[n] = None if a is None or b is None else b - a
        return out

    def stop(self):
        out = {"wall_s": round(time.monotonic() - self.t, 3)}
        for n, p in self.pids.items():
            a, b = self.before[n], proc_cpu(p)
            out[n] = None if a is None or b is None else round(b - a, 3)
        out["redis-benchmark"] = round(children_cpu() - self.children, 3)
        return out


# ---------------------------------------------------------------------------- cluster


class Cluster:
    """A `quire cluster` in DIR: init, start, status, kill, stop."""

    def __init__(self, quire, root, base_port, init_args=()):
        self.quire = quire
        self.dir = os.path.join(root, "cluster")
        self.base_port = base_port
        self.init_args = list(init_args)
        self.started = False

    def run(self, *args, timeout=120, check=True):
        cmd = [self.quire, "cluster", *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=CHILD_ENV)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stdout}{r.stderr}")
        return r

    def init(self):
        self.run("init", self.dir, "--base-port", str(self.base_port), *self.init_args)
        with open(os.path.join(self.dir, "cluster.json")) as f:
            layout = json.load(f)
        self.nodes = {}
        for name, addr in layout["node_addresses"].items():
            host, port = addr.rsplit(":", 1)
            self.nodes[name] = (host, int(port))

    def start(self, wait=60, attempts=3):
        """`quire cluster start`, again on failure: the cluster's ports lie inside the
        kernel's ephemeral range (32768-60999), so a client connection elsewhere on the
        machine can hold one for a moment; a second start restarts only what is down."""
        self.started = True
        for attempt in range(attempts):
            r = self.run("start", self.dir, "--wait", str(wait), timeout=wait + 30, check=False)
            if r.returncode == 0:
                return
            log(f"quire cluster start failed (attempt {attempt + 1}): {(r.stdout + r.stderr).strip()[-300:]}")
            time.sleep(1)
        raise RuntimeError(f"quire cluster start failed {attempts} times (logs in {self.dir}/logs)")

    def status(self):
        return json.loads(self.run("status", self.dir, "--json").stdout)

    def kill(self, name, sig):
        self.run("kill", self.dir, name, "--signal", sig)

    def named_pids(self):
        return {p["name"]: p["pid"] for p in self.status().get("processes", []) if p.get("alive")}

    def pids(self):
        out = []
        try:
            st = self.status()
            if st.get("supervisor_pid"):
                out.append(st["supervisor_pid"])
            for p in st.get("processes", []):
                if p.get("pid") and p.get("alive"):
                    out.append(p["pid"])
        except Exception:
            pass
        return out

    def stop(self):
        if not self.started:
            return
        pids = self.pids()
        try:
            self.run("stop", self.dir, timeout=60, check=False)
        except Exception as e:
            log(f"quire cluster stop: {e}")
        for pid in pids:  # whatever is left, by pid
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.started = False

    def node_status(self, name, timeout=0.5):
        host, port = self.nodes[name]
        c = redis.Redis(host=host, port=port, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return json.loads(c.execute_command("QUIRE.STATUS"))
        finally:
            c.close()

    def roles(self):
        """{name: status json or None} for every node."""
        out = {}
        for name in self.nodes:
            try:
                out[name] = self.node_status(name)
            except Exception:
                out[name] = None
        return out

    def primary(self):
        for name, st in self.roles().items():
            if st and st.get("role") == "primary" and st.get("state") == "SERVING":
                return name
        return None

    def wait_all_serving(self, bound_s=60):
        """Until one primary SERVING and every other node SECONDARY; returns the primary."""
        deadline = time.time() + bound_s
        while time.time() < deadline:
            roles = self.roles()
            prim = [n for n, s in roles.items() if s and s["role"] == "primary" and s["state"] == "SERVING"]
            sec = [n for n, s in roles.items() if s and s["role"] == "standby" and s["state"] == "SECONDARY"]
            if len(prim) == 1 and len(sec) == len(self.nodes) - 1:
                return prim[0]
            time.sleep(0.1)
        raise RuntimeError(f"cluster not all serving after {bound_s} s: {self.roles()}")


# ---------------------------------------------------------------------------- redis-benchmark


class RedisServer:
    def __init__(self, root, port, fsync):
        self.dir = os.path.join(root, f"redis-{fsync}")
        self.port = port
        self.fsync = fsync
        self.proc = None

    def __enter__(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        cmd = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
               "--appendonly", "yes", "--appendfsync", self.fsync, "--save", "",
               "--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=CHILD_ENV)
        c = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.time() + 10
        while True:
            try:
                c.ping()
                break
            except redis.exceptions.RedisError:
                if time.time() > deadline or self.proc.poll() is not None:
                    self.__exit__(None, None, None)
                    raise RuntimeError(f"redis-server on {self.port} did not start")
                time.sleep(0.05)
        c.close()
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def redis_benchmark(port, requests, pipeline, clients=50, tests="set,get"):
    """redis-benchmark --csv: {SET: {...}, GET: {...}} with rps and latency percentiles."""
    cmd = [REDIS_BENCHMARK, "-h", "127.0.0.1", "-p", str(port), "-t", tests, "-c", str(clients),
           "-n", str(requests), "-r", "1000000", "--csv"]
    if pipeline > 1:
        cmd += ["-P", str(pipeline)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stdout[-500:]}{r.stderr[-500:]}")
    out = {}
    lines = [l for l in r.stdout.splitlines() if l.startswith('"')]
    header = [h.strip('"') for h in lines[0].split(",")]
    for line in lines[1:]:
        row = dict(zip(header, [v.strip('"') for v in line.split(",")]))
        out[row["test"]] = {
            "rps": float(row["rps"]),
            "p50_ms": float(row["p50_latency_ms"]),
            "p99_ms": float(row["p99_latency_ms"]),
            "avg_ms": float(row["avg_latency_ms"]),
            "max_ms": float(row["max_latency_ms"]),
        }
    return out


def metered_benchmark(port, requests, pipeline, pids, switches=False):
    """SET then GET, one redis-benchmark each (it runs its tests one after the other
    anyway), each op with the CPU seconds of `pids` and of redis-benchmark while it ran:
    out[op]["cpu_s"]; out["cpu_s"] (and out["ctx_switches"]) are both ops' sums."""
    out, total, total_switches = {}, {}, {}
    for op in ("SET", "GET"):
        cpu = CpuMeter(pids).start()
        out[op] = redis_benchmark(port, requests, pipeline, tests=op.lower())[op]
        if switches:
            for n, v in cpu.switches().items():
                total_switches[n] = None if v is None or total_switches.get(n, 0) is None else \
                    total_switches.get(n, 0) + v
        out[op]["cpu_s"] = cpu.stop()
        for n, v in out[op]["cpu_s"].items():
            total[n] = None if v is None or total.get(n, 0) is None else round(total.get(n, 0) + v, 3)
    out["cpu_s"] = total
    if switches:
        out["ctx_switches"] = total_switches
    return out


def cpu_budget(row, op, who, nproc, commands):
    """CPU microseconds per command of one op's section (`commands` of them), by kind of
    process, and the rate the machine's cores could carry at that CPU per command if they
    were never idle."""
    c = row[who][op].get("cpu_s")
    if not c or not commands or not c.get("wall_s"):
        return None
    kinds = {}
    for name, v in c.items():
        if name == "wall_s" or v is None:
            continue
        kind = ("primary" if name == row.get("quire_primary") else
                "page servers" if name.startswith("ps") else
                "standbys" if name.startswith("node") else name)
        kinds[kind] = kinds.get(kind, 0.0) + v
    per = {k: round(1e6 * v / commands, 1) for k, v in kinds.items()}
    total = sum(kinds.values())
    return {
        "us_per_command": per,
        "us_per_command_all": round(1e6 * total / commands, 1),
        "busy_share": round(total / (c["wall_s"] * nproc), 3),
        "ceiling_ops_per_s": round(nproc * commands / total) if total else None,
    }


class BusyLoad:
    """N busy-looping processes: a loaded machine. Stopped by pid at exit."""

    def __init__(self, n, nice=0):
        self.n = n
        self.nice = nice
        self.procs = []

    def __enter__(self):
        for _ in range(self.n):
            self.procs.append(subprocess.Popen(
                [sys.executable, "-c", f"import os; os.nice({self.nice})\nwhile True: pass"],
                stdin=subprocess.DEVNULL, env=CHILD_ENV))
        if self.procs:
            log(f"background load: {self.n} busy-looping processes at nice {self.nice} "
                f"(pids {', '.join(str(p.pid) for p in self.procs)})")
        return self

    def cpu_s(self):
        return round(sum(proc_cpu(p.pid) or 0.0 for p in self.procs), 1)

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()


def run_throughput(cluster, root, redis_port, requests):
    """Section 1: Redis always, Redis everysec and Quire back to back, -P 1 then -P 16."""
    res = {"requests": requests, "clients": 50, "keyspace": 1000000, "runs": {}}
    nproc = os.cpu_count()
    for pipeline in (1, 16):
        row = {}
        for fsync in ("always", "everysec"):
            with RedisServer(root, redis_port, fsync) as srv:
                log(f"redis-benchmark -P {pipeline} against redis-server appendfsync {fsync}")
                row[f"redis_{fsync}"] = metered_benchmark(srv.port, requests, pipeline,
                                                          {"redis-server": srv.proc.pid})
        prim = cluster.wait_all_serving()
        log(f"redis-benchmark -P {pipeline} against the Quire primary {prim}")
        row["quire"] = metered_benchmark(cluster.nodes[prim][1], requests, pipeline,
                                         cluster.named_pids(), switches=True)
        row["quire_primary"] = prim
        row["ratio_quire_vs_redis_always"] = {
            op: round(row["quire"][op]["rps"] / row["redis_always"][op]["rps"], 3) for op in ("SET", "GET")
        }
        row["ratio_quire_vs_redis_everysec"] = {
            op: round(row["quire"][op]["rps"] / row["redis_everysec"][op]["rps"], 3) for op in ("SET", "GET")
        }
        row["cpu_budget"] = {
            who: {op: cpu_budget(row, op, who, nproc, requests) for op in ("SET", "GET")}
            for who in ("quire", "redis_always")
        }
        res["runs"][f"P{pipeline}"] = row
    return res


# ---------------------------------------------------------------------------- visibility lag


def resp_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def lag_writer(host, port, prefix, rate, seconds, t0, nconns, conn):
    """Paced SETs spread round-robin over nconns connections; sends the outcome through conn.

    Write i is due at t0 + i/rate, carries key prefix:i and goes on connection i % nconns.
    Replies on a connection come back in order, so its k-th reply acknowledges its k-th
    write; the ack time is when the bytes holding the reply arrived. Several connections
    are needed because a Quire node answers one connection's commands one at a time, each
    once durable (see docs/figures.md), so one pipelined connection cannot carry 5k/s.
    """
    socks = []
    for _ in range(nconns):
        s = socket.create_connection((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
    index = {s.fileno(): k for k, s in enumerate(socks)}
    inflight = [[] for _ in socks]  # per connection: write indexes awaiting a reply, in order
    bufs = [b"" for _ in socks]
    total = int(rate * seconds)
    sent_at = []
    ack_at = {}
    errors = []
    sent = 0
    answered = 0
    deadline = t0 + seconds + 30
    while answered < total and time.monotonic() < deadline:
        now = time.monotonic()
        due = min(total, int((now - t0) * rate) + 1) if now >= t0 else 0
        if due > sent:
            out = [[] for _ in socks]
            for i in range(sent, due):
                k = i % nconns
                out[k].append(resp_command("SET", f"{prefix}:{i}", f"{i}"))
                inflight[k].append(i)
            for k, chunks in enumerate(out):
                if chunks:
                    socks[k].setblocking(True)
                    socks[k].sendall(b"".join(chunks))
                    socks[k].setblocking(False)
            sent_at.extend([now] * (due - sent))
            sent = due
        next_due = t0 + sent / rate if sent < total else now + 0.05
        ready, _, _ = select.select(socks, [], [], max(0.0, next_due - time.monotonic()))
        for s in ready:
            k = index[s.fileno()]
            data = s.recv(1 << 16)
            if not data:
                raise ConnectionError("primary closed a writer connection")
            t = time.monotonic()
            bufs[k] += data
            while True:
                nl = bufs[k].find(b"\r\n")
                if nl < 0:
                    break
                line, bufs[k] = bufs[k][:nl], bufs[k][nl + 2:]
                i = inflight[k].pop(0)
                answered += 1
                if line.startswith(b"-"):
                    if len(errors) < 20:
                        errors.append(line.decode(errors="replace"))
                else:
                    ack_at[i] = t
    for s in socks:
        s.close()
    send_lat = [ack_at[i] - sent_at[i] for i in ack_at]
    conn.send({
        "sent": sent,
        "acked": len(ack_at),
        "errors": errors,
        "first_send": sent_at[0] if sent_at else None,
        "last_send": sent_at[-1] if sent_at else None,
        "last_ack": max(ack_at.values()) if ack_at else None,
        "ack_latency": summary_ms(send_lat),
        "ack_at": {i: ack_at[i] for i in ack_at if i % LAG_SAMPLE_EVERY == 0},
        "sent_at": {i: sent_at[i] for i in range(0, len(sent_at), LAG_SAMPLE_EVERY)},
    })


def read_reply(f):
    line = f.readline()
    if not line:
        raise ConnectionError("closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"*":
        return [read_reply(f) for _ in range(int(rest))]
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"-":
        return RuntimeError(rest.decode(errors="replace"))
    return rest


def lag_poller(host, port, prefix, rate, seconds, t0, poll_period, conn):
    """Polls one standby (its own connection) with MGET of every sampled key not yet seen
    whose write is due; sends {index: seen time} and the poll cycle durations through conn.

    A key counts as seen at the reply time of the first MGET that returned it: the true
    visibility instant lies within that poll cycle (send -> reply) or the gap before it.
    MGETs start at most every poll_period, so the pollers do not load the machine they
    measure (two cores shared by every process of the cluster). A key the previous MGET
    asked for and did not get was not visible when that MGET was sent: `seen_after` keeps
    that send time, the lower end of the key's visibility (a poller the machine did not run
    for a while leaves a wide gap between the two).
    """
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = sock.makefile("rb")
    total = int(rate * seconds)
    sampled = list(range(0, total, LAG_SAMPLE_EVERY))
    seen = {}
    seen_after = {}
    prev_send, prev_keys = None, set()
    pending = []
    nxt = 0
    cycles = []
    cycle_log = []  # (send time, duration) of every MGET, for --lag-dump
    loading = 0
    next_poll = 0.0
    end = t0 + seconds + LAG_DRAIN_S
    while time.monotonic() < end and (nxt < len(sampled) or pending):
        now = time.monotonic()
        while nxt < len(sampled) and t0 + sampled[nxt] / rate <= now:
            pending.append(sampled[nxt])
            nxt += 1
        if not pending or now < next_poll:
            time.sleep(min(0.0002, max(0.0, next_poll - now)) if pending else 0.0002)
            continue
        keys = pending[:200]
        t_send = time.monotonic()
        next_poll = t_send + poll_period
        sock.sendall(resp_command("MGET", *[f"{prefix}:{i}" for i in keys]))
        reply = read_reply(f)
        t_recv = time.monotonic()
        cycles.append(t_recv - t_send)
        cycle_log.append((round(t_send, 6), round(t_recv - t_send, 6)))
        if isinstance(reply, Exception):
            loading += 1
            continue
        got = {i for i, v in zip(keys, reply) if v is not None}
        for i in got:
            seen[i] = t_recv
            if i in prev_keys:
                seen_after[i] = prev_send
        prev_send, prev_keys = t_send, set(keys)
        if got:
            pending = [i for i in pending if i not in got]
    sock.close()
    conn.send({"seen": seen, "seen_after": seen_after, "cycles": cycles, "cycle_log": cycle_log,
               "unseen": len(pending) + len(sampled) - nxt, "error_replies": loading,
               "sampled": len(sampled)})


def stall_probe(seconds, t0, conn):
    """Sleeps STALL_SLEEP_S at a time from t0 for `seconds` and reports every wake-up that
    came more than STALL_LATE_S late, as (start, length) in monotonic seconds: a stretch in
    which this process did not run. On the 2-vCPU VMs these figures come from, such
    stretches are mostly the whole VM frozen (perf sees no sample on either CPU), about
    every 100 ms while the guest does disk flushes with a CPU busy: docs/figures.md."""
    stalls = []
    while time.monotonic() < t0:
        time.sleep(0.01)
    end = t0 + seconds
    while True:
        a = time.monotonic()
        if a >= end:
            break
        time.sleep(STALL_SLEEP_S)
        late = time.monotonic() - a - STALL_SLEEP_S
        if late > STALL_LATE_S:
            stalls.append((a + STALL_SLEEP_S, late))
    conn.send(stalls)


def stall_summary(stalls, seconds):
    """Count, lengths, share of the time and median spacing of the probe's stalls."""
    out = {"count": len(stalls), "seconds": seconds}
    if not stalls:
        return out
    lengths = sorted(x[1] for x in stalls)
    gaps = sorted(b[0] - a[0] for a, b in zip(stalls, stalls[1:]))
    out.update({
        "total_ms": round(sum(lengths) * 1000, 1),
        "share_of_time": round(sum(lengths) / seconds, 4),
        "p50_ms": round(lengths[len(lengths) // 2] * 1000, 1),
        "max_ms": round(lengths[-1] * 1000, 1),
        "median_spacing_ms": round(gaps[len(gaps) // 2] * 1000, 1) if gaps else None,
    })
    return out


def overlaps_stall(start, end, stalls):
    """Whether [start, end] overlaps one of the probe's stalls (sorted by start)."""
    i = bisect.bisect_right(stalls, (end, float("inf")))
    for s, length in stalls[max(0, i - 4):i]:
        if s < end and s + length > start:
            return True
    return False


def settle_checkpoint(cluster):
    """Before section 2 after section 1: QUIRE.CHECKPOINT on the primary, timed."""
    prim = cluster.wait_all_serving()
    host, port = cluster.nodes[prim]
    c = redis.Redis(host=host, port=port, socket_timeout=60, socket_connect_timeout=5)
    t = time.monotonic()
    reply = c.execute_command("QUIRE.CHECKPOINT")
    ms = (time.monotonic() - t) * 1000
    log(f"checkpointed section 1's writes before the lag section: {ms:.0f} ms ({reply!r})")
    return {"ms": ms, "reply": str(reply)}


def run_lag(cluster, rate, seconds, nconns, poll_period, dump=None):
    """Section 2: visibility lag on every standby at a paced write rate to the primary."""
    import multiprocessing as mp

    prim = cluster.wait_all_serving()
    standbys = [n for n in cluster.nodes if n != prim]
    prefix = f"lag{int(time.time() * 1000)}"
    t0 = time.monotonic() + 0.5
    procs = []
    pw, cw = mp.Pipe()
    host, port = cluster.nodes[prim]
    procs.append(mp.Process(target=lag_writer, args=(host, port, prefix, rate, seconds, t0, nconns, cw)))
    pollers = {}
    for s in standbys:
        pr, cr = mp.Pipe()
        h, p = cluster.nodes[s]
        pollers[s] = pr
        procs.append(mp.Process(target=lag_poller, args=(h, p, prefix, rate, seconds, t0, poll_period, cr)))
    ps, cs = mp.Pipe()
    procs.append(mp.Process(target=stall_probe, args=(seconds, t0, cs)))
    log(f"visibility lag: {rate} writes/s on {nconns} connections for {seconds} s to {prim}, polling {', '.join(standbys)}")
    for p in procs:
        p.start()
    w = pw.recv()
    polls = {s: pollers[s].recv() for s in standbys}
    stalls = ps.recv()
    for p in procs:
        p.join(30)
    achieved = None
    if w["first_send"] and w["last_send"] and w["sent"] > 1:
        achieved = round((w["sent"] - 1) / (w["last_send"] - w["first_send"]), 1)
    res = {
        "primary": prim,
        "rate_target": rate,
        "writer_connections": nconns,
        "poll_period_ms": poll_period * 1000,
        "seconds": seconds,
        "sample_every": LAG_SAMPLE_EVERY,
        "writes_sent": w["sent"],
        "writes_acked": w["acked"],
        "write_errors": w["errors"],
        "writes_per_s_achieved": achieved,
        "primary_ack_latency": w["ack_latency"],
        "standbys": {},
    }
    all_lags, all_from_send, clear_lags, low_lags = [], [], [], []
    for s, pdata in polls.items():
        # Lower bounds: a key asked for by the MGET before the one that found it became
        # visible after that MGET was sent (0 for the others).
        low_lags += [max(0.0, pdata["seen_after"].get(i, 0.0) - w["ack_at"][i])
                     for i in pdata["seen"] if i in w["ack_at"]]
        lags = [pdata["seen"][i] - w["ack_at"][i] for i in pdata["seen"] if i in w["ack_at"]]
        # The writes whose acknowledgement-to-sighting stretch met no stall of the probe.
        clear_lags += [pdata["seen"][i] - w["ack_at"][i] for i in pdata["seen"]
                       if i in w["ack_at"] and
                       not overlaps_stall(w["ack_at"][i], pdata["seen"][i], stalls)]
        from_send = [pdata["seen"][i] - w["sent_at"][i] for i in pdata["seen"] if i in w["sent_at"]]
        all_lags += lags
        all_from_send += from_send
        res["standbys"][s] = {
            "sampled": pdata["sampled"],
            "seen": len(pdata["seen"]),
            "unseen_after_drain": pdata["unseen"],
            "error_replies": pdata["error_replies"],
            "seen_before_primary_ack": sum(1 for x in lags if x < 0),
            "lag": summary_ms([max(0.0, x) for x in lags]),
            "send_to_visible": summary_ms(from_send),
            "poll_cycle": summary_ms(pdata["cycles"]),
        }
    if dump:
        # Every sampled write's send, acknowledgement and first sighting on each standby, and
        # every poll's send time and duration (monotonic seconds; wall_minus_mono maps them
        # onto the nodes' log timestamps).
        wall = time.time() - time.monotonic()
        with open(f"{dump}.{rate}.json", "w") as f:
            json.dump({"wall_minus_mono": wall, "sent_at": w["sent_at"], "ack_at": w["ack_at"],
                       "seen": {s: polls[s]["seen"] for s in standbys},
                       "polls": {s: polls[s]["cycle_log"] for s in standbys}}, f)
    res["lag_all_standbys"] = summary_ms([max(0.0, x) for x in all_lags])
    res["lag_all_standbys_lower_bound"] = summary_ms(low_lags)
    res["machine_stalls"] = stall_summary(stalls, seconds)
    res["lag_all_standbys_clear_of_stalls"] = summary_ms([max(0.0, x) for x in clear_lags])
    res["send_to_visible_all_standbys"] = summary_ms(all_from_send)
    if w["last_ack"] and w["first_send"]:
        res["writes_acked_per_s"] = round(w["acked"] / (w["last_ack"] - w["first_send"]), 1)
    return res


# ---------------------------------------------------------------------------- failover


def try_write(clients, name, key):
    try:
        return clients[name].set(key, "1") is True
    except redis.exceptions.RedisError:
        return False


def failover_trial(cluster, sig, clients, trial):
    prim = cluster.wait_all_serving()
    key = f"fo:{sig}:{trial}"
    if not try_write(clients, prim, key):
        raise RuntimeError(f"primary {prim} refused a write before the fault")
    t_fault = time.monotonic()
    cluster.kill(prim, sig)
    attempts = 0
    while time.monotonic() - t_fault < FAILOVER_BOUND_S:
        t_round = time.monotonic()
        for name in cluster.nodes:
            if name == prim:
                continue
            attempts += 1
            if try_write(clients, name, key):
                t_ok = time.monotonic()
                return {"signal": sig, "old_primary": prim, "new_primary": name,
                        "seconds": t_ok - t_fault, "attempts": attempts}
        time.sleep(max(0.0, FAILOVER_RETRY_S - (time.monotonic() - t_round)))
    return {"signal": sig, "old_primary": prim, "new_primary": None, "seconds": None, "attempts": attempts}


def run_failover(cluster, trials):
    """Section 3: SIGKILL and SIGTERM of the primary, `trials` of each, alternating."""
    clients = {n: redis.Redis(host=h, port=p, socket_timeout=0.3, socket_connect_timeout=0.3)
               for n, (h, p) in cluster.nodes.items()}
    out = {"trials_each": trials, "retry_interval_ms": FAILOVER_RETRY_S * 1000, "trials": []}
    try:
        for t in range(trials):
            for sig in ("KILL", "TERM"):
                try:
                    r = failover_trial(cluster, sig, clients, t)
                except Exception as e:  # recorded; the cluster is restarted below
                    r = {"signal": sig, "seconds": None, "error": str(e)[-500:]}
                r["trial"] = t
                t_restart = time.monotonic()
                cluster.start()
                cluster.wait_all_serving()
                r["restart_to_all_serving_s"] = round(time.monotonic() - t_restart, 3)
                secs = "failed" if r["seconds"] is None else f"{r['seconds'] * 1000:.0f} ms"
                log(f"failover {sig} trial {t}: {r.get('old_primary')} -> {r.get('new_primary')} {secs}")
                out["trials"].append(r)
    finally:
        for c in clients.values():
            c.close()
    for sig in ("KILL", "TERM"):
        ok = [r["seconds"] for r in out["trials"] if r["signal"] == sig and r["seconds"] is not None]
        failed = sum(1 for r in out["trials"] if r["signal"] == sig and r["seconds"] is None)
        out[sig] = {"failed": failed, **summary_ms(ok)}
        if ok:
            out[sig]["median_ms"] = round(statistics.median(ok) * 1000, 1)
    return out


# ---------------------------------------------------------------------------- KEK rotation


def run_kek(cluster, rotations):
    """Section 4: QUIRE.ROTATEKEK on the primary -> every standby's kek_version reaches it.

    Baseline in the same run: a plain SET right after each rotation's reply, and the time
    until every standby reads it (the ordinary log path without the keystore step).
    """
    prim = cluster.wait_all_serving()
    standbys = [n for n in cluster.nodes if n != prim]
    conns = {n: redis.Redis(host=h, port=p, socket_timeout=2) for n, (h, p) in cluster.nodes.items()}
    rot, setlag, polls, reply_lat = [], [], [], []
    failed = 0
    try:
        for i in range(rotations):
            t_cmd = time.monotonic()
            version = int(conns[prim].execute_command("QUIRE.ROTATEKEK"))
            t_reply = time.monotonic()
            reply_lat.append(t_reply - t_cmd)
            key = f"kek:{version}:{i}"
            conns[prim].set(key, "1")
            t_set = time.monotonic()
            need_kek = set(standbys)
            need_key = set(standbys)
            t_kek_done = t_key_done = None
            while (need_kek or need_key) and time.monotonic() - t_reply < KEK_BOUND_S:
                for s in list(need_kek):
                    t = time.monotonic()
                    st = json.loads(conns[s].execute_command("QUIRE.STATUS"))
                    polls.append(time.monotonic() - t)
                    if int(st.get("kek_version", 0)) >= version:
                        need_kek.discard(s)
                for s in list(need_key):
                    if conns[s].get(key) is not None:
                        need_key.discard(s)
                now = time.monotonic()
                if not need_kek and t_kek_done is None:
                    t_kek_done = now
                if not need_key and t_key_done is None:
                    t_key_done = now
            if t_kek_done is None:
                failed += 1
            else:
                rot.append(t_kek_done - t_reply)
            if t_key_done is not None:
                setlag.append(t_key_done - t_set)
            time.sleep(0.1)
    finally:
        for c in conns.values():
            c.close()
    return {
        "primary": prim,
        "rotations": rotations,
        "failed": failed,
        "rotatekek_reply_latency": summary_ms(reply_lat),
        "all_standbys_at_new_kek": summary_ms(rot),
        "baseline_set_after_rotation_visible_on_all_standbys": summary_ms(setlag),
        "status_poll_rtt": summary_ms(polls),
    }


# ---------------------------------------------------------------------------- report


def fmt(x, unit=""):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.1f}{unit}" if abs(x) >= 100 else f"{x:.2f}{unit}"
    return f"{x}{unit}"


def print_report(r):
    m = r["machine"]
    print(f"machine: {m['nproc']} cores, {m['cpu_model']}, kernel {m['kernel']}, "
          f"load {m['loadavg_start'][0]:.2f} at start, {m.get('loadavg_end', [0])[0]:.2f} at end")
    fd = m["fdatasync"]
    print(f"raw append(4 KiB)+fdatasync under {r['tmpdir']}: median {fd['p50_ms']} ms, "
          f"p99 {fd['p99_ms']} ms ({fd['count']} calls)")
    busy = r.get("background_load")
    if busy:
        print(f"LOADED MACHINE: {busy['processes']} busy-looping processes at nice "
              f"{busy.get('nice', 0)} ran from the cluster's start to the end (they got "
              f"{busy['cpu_s']} CPU s over {busy['wall_s']} s)")
    delay_us = r["args"].get("fsync_delay_us", 0)
    if delay_us:
        print(f"EMULATED DISK: every fdatasync/fsync of redis-server and of the Quire processes "
              f"sleeps {delay_us} us after it returns (bench/slow_fsync.c); the raw figure above "
              f"is without it")
    if "throughput" in r:
        t = r["throughput"]
        print(f"\n1. redis-benchmark -t set,get -c 50 -n {t['requests']} -r 1000000 [-P 16]")
        print(f"{'':10} {'op':4} {'Quire ops/s':>12} {'p50/p99 ms':>12} {'Redis always':>13} "
              f"{'p50/p99 ms':>12} {'Redis everysec':>15} {'p50/p99 ms':>12} {'Q/always':>9}")
        for pk, row in t["runs"].items():
            for op in ("SET", "GET"):
                q, a, e = row["quire"][op], row["redis_always"][op], row["redis_everysec"][op]
                print(f"{pk:10} {op:4} {q['rps']:>12,.0f} {q['p50_ms']:>5.2f}/{q['p99_ms']:<6.2f} "
                      f"{a['rps']:>13,.0f} {a['p50_ms']:>5.2f}/{a['p99_ms']:<6.2f} "
                      f"{e['rps']:>15,.0f} {e['p50_ms']:>5.2f}/{e['p99_ms']:<6.2f} "
                      f"{row['ratio_quire_vs_redis_always'][op]:>9.2f}")
        print("goal: SET >= 1.0x Redis always, GET >= 0.5x")
        for pk, row in t["runs"].items():
            for who in ("quire", "redis_always"):
                c = row[who]["cpu_s"]
                busy = ", ".join(f"{n} {v:.1f}" for n, v in c.items() if n != "wall_s" and v)
                print(f"   CPU s during {who} {pk} (set+get, {c['wall_s']:.1f} s wall): {busy}")
            for op in ("SET", "GET"):
                for who in ("quire", "redis_always"):
                    b = row.get("cpu_budget", {}).get(who, {}).get(op)  # none before session 29
                    if not b:
                        continue
                    kinds = ", ".join(f"{k} {v}" for k, v in b["us_per_command"].items() if v)
                    print(f"   CPU per {op} {pk}, {who}: {b['us_per_command_all']} us ({kinds}); "
                          f"{100 * b['busy_share']:.0f}% of the cores busy; at this CPU per {op} "
                          f"the cores could carry at most {b['ceiling_ops_per_s']:,}/s")
            sw = row["quire"].get("ctx_switches")  # runs before session 19 have none
            if sw:
                per = ", ".join(f"{n} {v:,}" for n, v in sw.items() if v)
                print(f"   context switches during quire {pk} (set+get): {per}")
    for l in r.get("lag", []):
        print(f"\n2. visibility lag, {l['rate_target']} writes/s paced to {l['primary']} for {l['seconds']} s "
              f"(achieved {l['writes_per_s_achieved']}/s, {l['writes_acked']} acked, "
              f"{len(l['write_errors'])} errors)")
        a = l["primary_ack_latency"]
        print(f"   baseline: primary ack latency p50 {a.get('p50_ms')} ms, p99 {a.get('p99_ms')} ms")
        for s, d in l["standbys"].items():
            print(f"   {s}: lag p50 {d['lag'].get('p50_ms')} ms, p99 {d['lag'].get('p99_ms')} ms, "
                  f"max {d['lag'].get('max_ms')} ms over {d['seen']}/{d['sampled']} keys "
                  f"({d['seen_before_primary_ack']} seen before the primary's ack); poll every {l['poll_period_ms']} ms, cycle "
                  f"p50 {d['poll_cycle'].get('p50_ms')} ms, p99 {d['poll_cycle'].get('p99_ms')} ms")
        al, sv = l["lag_all_standbys"], l["send_to_visible_all_standbys"]
        print(f"   all standbys: p50 {al.get('p50_ms')} ms, p99 {al.get('p99_ms')} ms (goal p99 <= 10 ms); "
              f"from the write's send: p50 {sv.get('p50_ms')} ms, p99 {sv.get('p99_ms')} ms; "
              f"acked {l.get('writes_acked_per_s')}/s on {l['writer_connections']} connections")
        lo = l.get("lag_all_standbys_lower_bound", {})
        if lo:
            print(f"   lower bounds (visible after the previous poll was sent): p50 {lo.get('p50_ms')} ms, "
                  f"p99 {lo.get('p99_ms')} ms")
        ms, cl = l.get("machine_stalls", {}), l.get("lag_all_standbys_clear_of_stalls", {})
        if ms:
            print(f"   machine stalls (a 1 ms sleeper woken over {STALL_LATE_S * 1000:.0f} ms late): "
                  f"{ms['count']} in {ms['seconds']} s, p50 {ms.get('p50_ms')} ms, max {ms.get('max_ms')} ms, "
                  f"{100 * ms.get('share_of_time', 0):.1f}% of the time, median spacing "
                  f"{ms.get('median_spacing_ms')} ms; lag of the {cl.get('count')} writes whose "
                  f"ack-to-sighting met none: p50 {cl.get('p50_ms')} ms, p99 {cl.get('p99_ms')} ms")
    if "failover" in r:
        f = r["failover"]
        print(f"\n3. failover, {f['trials_each']} trials each, clients retry every node every "
              f"{f['retry_interval_ms']:.0f} ms")
        for sig in ("KILL", "TERM"):
            d = f[sig]
            print(f"   SIG{sig}: median {d.get('median_ms')} ms, max {d.get('max_ms')} ms, "
                  f"min {d.get('min_ms')} ms, failed {d['failed']}")
    if "kek" in r:
        k = r["kek"]
        d, b = k["all_standbys_at_new_kek"], k["baseline_set_after_rotation_visible_on_all_standbys"]
        print(f"\n4. KEK rotation x{k['rotations']}: reply -> every standby at the new kek_version: "
              f"p50 {d.get('p50_ms')} ms, p99 {d.get('p99_ms')} ms, max {d.get('max_ms')} ms "
              f"(failed {k['failed']})")
        print(f"   ROTATEKEK reply latency p50 {k['rotatekek_reply_latency'].get('p50_ms')} ms; baseline, "
              f"a SET after it visible on every standby: p50 {b.get('p50_ms')} ms, p99 {b.get('p99_ms')} ms; "
              f"QUIRE.STATUS poll RTT p50 {k['status_poll_rtt'].get('p50_ms')} ms")


def key_figures(r):
    """The headline figures of one run's JSON, flat: name -> number."""
    out = {"fdatasync_p50_ms": r["machine"]["fdatasync"]["p50_ms"], "load_start": r["machine"]["loadavg_start"][0],
           "busy processes": r.get("background_load", {}).get("processes", 0)}
    for pk, row in r.get("throughput", {}).get("runs", {}).items():
        for op in ("SET", "GET"):
            for who in ("quire", "redis_always", "redis_everysec"):
                out[f"{pk} {op} {who} ops/s"] = row[who][op]["rps"]
                out[f"{pk} {op} {who} p50 ms"] = row[who][op]["p50_ms"]
                out[f"{pk} {op} {who} p99 ms"] = row[who][op]["p99_ms"]
            out[f"{pk} {op} quire/always"] = row["ratio_quire_vs_redis_always"][op]
            for who in ("quire", "redis_always"):
                b = row.get("cpu_budget", {}).get(who, {}).get(op)
                if b:
                    out[f"{pk} {op} {who} CPU us/op"] = b["us_per_command_all"]
                    out[f"{pk} {op} {who} CPU ceiling ops/s"] = b["ceiling_ops_per_s"]
    lags = r.get("lag", [])
    for l in lags if isinstance(lags, list) else [lags]:
        rate = l["rate_target"]
        out[f"lag@{rate} p50 ms"] = l["lag_all_standbys"].get("p50_ms")
        out[f"lag@{rate} p99 ms"] = l["lag_all_standbys"].get("p99_ms")
        out[f"lag@{rate} p99 lower bound ms"] = l.get("lag_all_standbys_lower_bound", {}).get("p99_ms")
        out[f"lag@{rate} machine stalls % of time"] = (
            round(100 * l["machine_stalls"]["share_of_time"], 2)
            if l.get("machine_stalls", {}).get("share_of_time") is not None else None)
        out[f"lag@{rate} send->visible p50 ms"] = l.get("send_to_visible_all_standbys", {}).get("p50_ms")
        out[f"lag@{rate} send->visible p99 ms"] = l.get("send_to_visible_all_standbys", {}).get("p99_ms")
        out[f"lag@{rate} primary ack p50 ms"] = l["primary_ack_latency"].get("p50_ms")
        out[f"lag@{rate} primary ack p99 ms"] = l["primary_ack_latency"].get("p99_ms")
        out[f"lag@{rate} acked/s"] = l.get("writes_acked_per_s")
        out[f"lag@{rate} poll cycle p99 ms"] = max(d["poll_cycle"].get("p99_ms", 0) for d in l["standbys"].values())
    f = r.get("failover")
    if f:
        for sig in ("KILL", "TERM"):
            out[f"failover SIG{sig} median ms"] = f[sig].get("median_ms")
            out[f"failover SIG{sig} max ms"] = f[sig].get("max_ms")
            out[f"failover SIG{sig} failed"] = f[sig]["failed"]
    k = r.get("kek")
    if k:
        out["kek all standbys p50 ms"] = k["all_standbys_at_new_kek"].get("p50_ms")
        out["kek all standbys p99 ms"] = k["all_standbys_at_new_kek"].get("p99_ms")
        b = k["baseline_set_after_rotation_visible_on_all_standbys"]
        out["kek baseline SET visible p50 ms"] = b.get("p50_ms")
        out["kek baseline SET visible p99 ms"] = b.get("p99_ms")
    return out


def summarize(paths):
    """Prints every headline figure of several runs' JSON files and their median."""
    runs = []
    for p in paths:
        with open(p) as f:
            runs.append(key_figures(json.load(f)))
    names = list(dict.fromkeys(n for r in runs for n in r))
    for n in names:
        vals = [r.get(n) for r in runs]
        nums = [v for v in vals if isinstance(v, (int, float))]
        med = statistics.median(nums) if nums else None
        print(f"{n:40} median {fmt(med):>10}   runs: {', '.join(fmt(v) for v in vals)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quire", default="build/release/src/quire", help="the quire binary")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--tmp", default=tempfile.gettempdir(), help="parent of the run's temp dir (one filesystem for all)")
    ap.add_argument("--base-port", type=int, default=24100, help="cluster ports P..P+22 (below the ephemeral range)")
    ap.add_argument("--redis-port", type=int, default=24190)
    ap.add_argument("--requests", type=int, default=200000, help="redis-benchmark -n")
    ap.add_argument("--lag-rate", default="5000,1000", help="paced writes/s for the visibility lag (comma list)")
    ap.add_argument("--lag-seconds", type=float, default=10.0)
    ap.add_argument("--lag-conns", type=int, default=50, help="writer connections sharing the paced rate")
    ap.add_argument("--lag-poll-ms", type=float, default=1.0, help="a standby poller's MGET period")
    ap.add_argument("--lag-dump", metavar="PREFIX",
                    help="write each paced rate's per-write times and every standby poll's start "
                         "and duration to PREFIX.RATE.json (to line up lag outliers with the "
                         "nodes' logs)")
    ap.add_argument("--trials", type=int, default=20, help="failover trials per signal")
    ap.add_argument("--rotations", type=int, default=30)
    ap.add_argument("--only", default="throughput,lag,failover,kek", help="comma-separated sections")
    ap.add_argument("--max-load", type=float, default=1.5, help="wait until the 1-min load is below this")
    ap.add_argument("--max-wait", type=float, default=600, help="at most this long (s) for a quiet machine")
    ap.add_argument("--fsync-delay-us", type=int, default=0,
                    help="emulate a slower disk: every fdatasync/fsync of redis-server and of the "
                         "Quire processes sleeps this long after it returns (bench/slow_fsync.c)")
    ap.add_argument("--group-pipeline-min", type=int, default=0,
                    help="quire cluster init --group-pipeline-min (0: the nodes' default)")
    ap.add_argument("--group-gather-us", type=int, default=-1,
                    help="quire cluster init --group-gather-us (-1: the nodes' default; 0: off)")
    ap.add_argument("--busy", type=int, default=0,
                    help="N busy-looping processes from the cluster's start to the end: the "
                         "figures on a loaded machine")
    ap.add_argument("--busy-nice", type=int, default=0,
                    help="the --busy processes' nice value (0: the benchmark's priority; 19: "
                         "a batch job that yields to everything else)")
    ap.add_argument("--summarize", nargs="+", metavar="JSON", help="print the medians of earlier runs and exit")
    args = ap.parse_args()
    if args.summarize:
        summarize(args.summarize)
        return

    quire = os.path.abspath(args.quire)
    if not os.access(quire, os.X_OK):
        sys.exit(f"no quire binary at {quire} (--quire)")
    sections = set(args.only.split(","))
    root = tempfile.mkdtemp(prefix="quire-clusterbench-", dir=args.tmp)
    if args.fsync_delay_us > 0:
        shim = os.path.join(root, "slow_fsync.so")
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slow_fsync.c")
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", shim, src, "-ldl"], check=True)
        CHILD_ENV["LD_PRELOAD"] = shim
        CHILD_ENV["QUIRE_BENCH_FSYNC_DELAY_US"] = str(args.fsync_delay_us)
    init_args = []
    if args.group_pipeline_min:
        init_args += ["--group-pipeline-min", str(args.group_pipeline_min)]
    if args.group_gather_us >= 0:
        init_args += ["--group-gather-us", str(args.group_gather_us)]
    cluster = Cluster(quire, root, args.base_port, init_args)
    result = {"quire": quire, "tmpdir": root, "args": vars(args)}

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        result["load_before_wait"] = os.getloadavg()[0]
        wait_quiet(args.max_load, args.max_wait)
        result["machine"] = machine_info(root)
        cluster.init()
        with BusyLoad(args.busy, args.busy_nice) as busy:
            busy_started = time.monotonic()
            cluster.start()
            cluster.wait_all_serving()
            if "throughput" in sections:
                result["throughput"] = run_throughput(cluster, root, args.redis_port, args.requests)
            if "lag" in sections:
                if "throughput" in sections:
                    result["settle_checkpoint"] = settle_checkpoint(cluster)
                result["lag"] = [run_lag(cluster, int(rate), args.lag_seconds, args.lag_conns,
                                         args.lag_poll_ms / 1000.0, args.lag_dump)
                                 for rate in args.lag_rate.split(",")]
            if "kek" in sections:
                result["kek"] = run_kek(cluster, args.rotations)
            if "failover" in sections:
                result["failover"] = run_failover(cluster, args.trials)
            result["machine"]["loadavg_end"] = list(os.getloadavg())
            if args.busy:
                result["background_load"] = {"processes": args.busy, "nice": args.busy_nice,
                                             "cpu_s": busy.cpu_s(),
                                             "wall_s": round(time.monotonic() - busy_started, 1)}
    finally:
        cluster.stop()
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1, default=str)
        keep = os.path.join(root, "cluster", "logs")
        if os.path.isdir(keep):  # the logs survive the run for inspection
            dest = root + "-logs"
            shutil.copytree(keep, dest, dirs_exist_ok=True)
            log(f"cluster logs kept in {dest}")
        shutil.rmtree(root, ignore_errors=True)
    print_report(result)


if __name__ == "__main__":
    main()
