#!/usr/bin/python3
"""Differential test of the RESP2 wire protocol: raw bytes against a real Quire primary and
a real redis-server (the oracle, Debian's 7.0), the replies compared byte for byte.

Each case opens a fresh connection to each server, sends the same bytes (in one write or
several, with a short pause between them, so frames arrive in parts), reads whatever each
server sends until it closes the connection or goes quiet (QUIET), and compares (a) the
exact bytes received and (b) whether the server closed the connection. The cases: inline
commands (quoting, escapes, unbalanced quotes, blank lines, blanks between arguments, NUL
bytes), multibulk frames (counts and bulk lengths valid, negative, not numbers, past the
limits; missing CRLFs; a byte other than '$'), frames split at every position, pipelines,
commands after a protocol error in the same write, lines past 64 KiB without their end;
then a seeded random part: valid frames mutated (bytes replaced, inserted, deleted,
truncated, slices repeated, numbers changed) and sent in random writes.

Redis 7.0 answers a protocol error with `-ERR Protocol error: ...` and then closes the
connection; Quire must do the same. Only differences that docs/redis.md documents are
accepted: such a case states Quire's documented reply and is not compared with
redis-server (HELLO 3: RESP2 only). Every other difference fails the test, with the bytes
sent and both servers' replies.

Keys: every case that writes uses keys of its own (the cases run concurrently, WORKERS at a
time); the random cases' keys are 8 random bytes, so a mutated key is nobody else's.

Processes: redis_diff_test's Procs (a `quire cluster` on a free base port, redis-server on
base+30, --save '' --appendonly no), stopped at the end, on failure, on SIGTERM and by a
watchdog (--budget).

Run: /usr/bin/python3 tests/cluster/redis_protocol_diff_test.py --quire build/release/src/quire
     [--seed N] [--random 300] [--redis-server /usr/bin/redis-server] [--keep]
     [--budget SECONDS] [--ports 33000-40000] [--workers 16]
"""

import argparse
import collections
import os
import random
import re
import select
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import redis_diff_test as rdt  # noqa: E402
from redis_diff_test import encode  # noqa: E402

DEFAULT_SEED = 20240612
QUIET = 0.3  # a server that sent nothing for this long (since our last write) is done
PAUSE = 0.02  # between two writes of one case
EXTRA_WAIT = 3.0  # more time for a server whose reply so far is a strict prefix of the other's
CASE_MAX = 15.0  # one case, at most
READ_MAX = 1 << 20  # bytes read from one connection, at most
BUDGET = 240  # the whole run; then the watchdog stops everything (ctest: 300)
DETAILS_MAX = 40  # mismatches printed in full (all are counted and summarised)
LINE_MAX = 65536  # Redis's PROTO_INLINE_MAX_SIZE


def log(msg):
    sys.stderr.write("[redis_protocol_diff_test %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


Case = collections.namedtuple("Case", "name chunks doc")
# doc: None (compare with redis-server), or (Quire's reply bytes, closed, why) for a
# difference docs/redis.md documents.


def case(name, *chunks, doc=None):
    return Case(name, [bytes(c) for c in chunks], doc)


# ---------------------------------------------------------------------------------------
# One connection, read without blocking.


class Peer:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.data = bytearray()
        self.closed = False
        self.how = "open"
        self.last = time.monotonic()  # our last write or its last bytes

    def send(self, b):
        if self.closed:
            return
        try:
            self.sock.settimeout(5)
            self.sock.sendall(b)
        except OSError as e:  # it closed while we wrote: what it said is still read
            self.how = "send: %s" % type(e).__name__
        self.last = time.monotonic()

    def pump(self):
        """Reads what is there (called when the socket is readable)."""
        try:
            self.sock.settimeout(0)
            b = self.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.closed, self.how = True, "reset (%s)" % type(e).__name__
            return
        if not b:
            self.closed, self.how = True, "closed"
            return
        self.data += b
        self.last = time.monotonic()
        if len(self.data) > READ_MAX:
            self.closed, self.how = True, "read %d bytes: stopped reading" % len(self.data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def pump_until(peers, done, until):
    """Reads from the peers until done() or the time `until`."""
    while not done():
        open_ = [p for p in peers if not p.closed]
        left = until - time.monotonic()
        if not open_ or left <= 0:
            return
        ready, _, _ = select.select([p.sock for p in open_], [], [], min(left, 0.05))
        for p in open_:
            if p.sock in ready:
                p.pump()


def lagging(a, b):
    """Whether `a` may still be on its way to what `b` shows: its bytes so far are a strict
    prefix of b's, or the same bytes while b closed and a did not."""
    if a.closed:
        return False
    if len(a.data) < len(b.data) and b.data.startswith(a.data):
        return True
    return b.closed and a.data == b.data


def exchange(case_, ports):
    """Sends the case to each port (the same writes at the same moments) and returns the
    peers once each is closed or quiet."""
    peers = [Peer(p) for p in ports]
    t0 = time.monotonic()
    try:
        for i, chunk in enumerate(case_.chunks):
            for p in peers:
                p.send(chunk)
            if i + 1 < len(case_.chunks):
                pump_until(peers, lambda: False, time.monotonic() + PAUSE)

        def quiet():
            now = time.monotonic()
            return all(p.closed or now - p.last >= QUIET for p in peers)

        pump_until(peers, quiet, t0 + CASE_MAX)
        if len(peers) == 2:
            a, b = peers
            until = min(time.monotonic() + EXTRA_WAIT, t0 + CASE_MAX)
            pump_until(peers, lambda: not (lagging(a, b) or lagging(b, a)), until)
        return [(bytes(p.data), p.closed, p.how) for p in peers]
    finally:
        for p in peers:
            p.close()


# ---------------------------------------------------------------------------------------
# The deterministic cases.


def deterministic_cases():
    cs = []
    add = cs.append
    # -- inline commands
    add(case("inline PING", b"PING\r\n"))
    add(case("inline ping, bare LF", b"ping\n"))
    add(case("inline SET then GET (two writes)", b"SET k v\r\n", b"GET k\r\n"))
    add(case("inline quotes", b"SET \"a b\" 'c d'\r\nGET \"a b\"\r\n"))
    add(case("inline escapes in double quotes", b'ECHO "\\x41\\n\\t\\\\"\r\n'))
    add(case("inline every escape", b'ECHO "\\r\\b\\a\\"\\z\\x4g\\xZZ\\x7e\\xfF\\x00"\r\n'))
    add(case("inline single quotes: only \\' escapes", b"ECHO 'it\\'s' 'a\\nb' 'x\\\\'\r\n"))
    add(case("inline empty quoted args", b"ECHO \"\"\r\nECHO ''\r\n"))
    add(case("inline unbalanced double quote", b'SET "abc\r\n'))
    add(case("inline unbalanced single quote", b"SET 'abc\r\n"))
    add(case("inline escaped closing quote", b'ECHO "abc\\"\r\n'))
    add(case("inline closing quote then non-blank", b'ECHO "a"b\r\n'))
    add(case("inline closing single quote then non-blank", b"ECHO 'a'b\r\n"))
    add(case("inline closing quote then tab", b'ECHO "a"\tb\r\n'))
    add(case("inline quote inside a token", b'ECHO a"b c"\r\n'))
    add(case("inline empty line CRLF", b"\r\n"))
    add(case("inline blank line", b"   \r\n"))
    add(case("inline empty lines then PING", b"\r\n\n \t \r\n\r\nPING\r\n"))
    add(case("inline spaces and tabs between args", b"  ECHO   \t  hello\t \r\n"))
    add(case("inline tab separated", b"\tECHO\ta\r\n"))
    add(case("inline vertical tab and form feed", b"\x0bECHO a\x0bb\x0c\r\n"))
    add(case("inline bare CR inside the line", b"ECHO a\rb\r\n"))
    add(case("inline CR CR LF", b"PING\r\r\n"))
    add(case("inline CR, then LF in a second write", b"PING\r", b"\n"))
    add(case("inline NUL inside the line", b"PING\x00\r\n"))
    add(case("inline NUL inside an argument", b"ECHO a\x00b\r\n"))
    add(case("inline NUL line then PING", b"\x00\r\nPING\r\n"))
    add(case("inline NUL inside double quotes", b'ECHO "a\x00b"\r\n'))
    add(case("inline NUL inside the line, then 64 KiB",
             b"PING\x00\r\n", b"PING\r\n" + b"x" * LINE_MAX))
    add(case("inline pipeline", b"PING\r\nECHO a\r\nPING b\r\n"))
    add(case("inline '*' inside a line", b"PING *1\r\n"))
    add(case("inline unknown command", b"FOO bar 'b a z'\r\n"))
    add(case("inline QUIT", b"PING\r\nQUIT\r\nPING\r\n"))
    add(case("inline error after a command", b'PING\r\nECHO "a\r\nPING\r\n'))
    add(case("inline error in a second write", b"PING\r\n", b"ECHO 'a\r\n", b"PING\r\n"))
    add(case("inline line of 64 KiB, its end in a second write",
             b"SET big-inline " + b"a" * (LINE_MAX - 15), b"\r\nSTRLEN big-inline\r\n"))
    add(case("inline line over 64 KiB without a newline", b"a" * (LINE_MAX + 1)))
    add(case("inline 70000 bytes without a newline", b"x" * 70000))
    add(case("inline PING then 70000 bytes without a newline", b"PING\r\n" + b"x" * 70000))
    # -- multibulk
    mb_ping = encode([b"PING"])
    add(case("*0", b"*0\r\n"))
    add(case("*0 then PING", b"*0\r\n" + mb_ping))
    add(case("*-1 then PING", b"*-1\r\n" + mb_ping))
    add(case("*-100 then PING", b"*-100\r\n" + mb_ping))
    add(case("*1 PING", mb_ping))
    add(case("negative bulk length", b"*1\r\n$-4\r\nPING\r\n"))
    add(case("$-1 inside a multibulk", b"*2\r\n$4\r\nECHO\r\n$-1\r\n"))
    add(case("bulk length not a number", b"*1\r\n$abc\r\nPING\r\n"))
    add(case("bulk length empty", b"*1\r\n$\r\nPING\r\n"))
    add(case("bulk length +4", b"*1\r\n$+4\r\nPING\r\n"))
    add(case("bulk length 04", b"*1\r\n$04\r\nPING\r\n"))
    add(case("bulk length with a blank", b"*1\r\n$4 \r\nPING\r\n"))
    add(case("bulk length with a NUL", b"*1\r\n$4\x00\r\nPING\r\n"))
    add(case("*abc", b"*abc\r\n"))
    add(case("* alone", b"*\r\n"))
    add(case("*+1", b"*+1\r\n" + b"$4\r\nPING\r\n"))
    add(case("*01", b"*01\r\n" + b"$4\r\nPING\r\n"))
    add(case("*1 with a blank", b"*1 \r\n$4\r\nPING\r\n"))
    add(case("multibulk count with a NUL", b"*1\x00\r\n$4\r\nPING\r\n"))
    add(case("multibulk count with a NUL, then 64 KiB",
             b"*1\x00\r\n$4\r\nPING\r\n", b"x" * LINE_MAX))
    add(case("multibulk count 1024*1024", b"*1048576\r\n"))
    add(case("multibulk count 1024*1024+1, then elements",
             b"*1048577\r\n$4\r\nPING\r\n$1\r\na\r\n"))
    add(case("multibulk count 1024*1024+1", b"*1048577\r\n"))
    add(case("multibulk count INT_MAX", b"*2147483647\r\n"))
    add(case("multibulk count INT_MAX+1", b"*2147483648\r\n"))
    add(case("multibulk count past int64", b"*9223372036854775808\r\n"))
    add(case("bulk length 512 MB + 1", b"*1\r\n$536870913\r\n"))
    add(case("bulk length 1 GiB", b"*1\r\n$1073741824\r\n"))
    add(case("bulk length past int64", b"*1\r\n$9223372036854775808\r\n"))
    add(case("bulk not followed by CRLF (2 bytes skipped)", b"*1\r\n$4\r\nPINGxx" + mb_ping))
    add(case("bulk data then 1 byte only", b"*1\r\n$4\r\nPINGx"))
    add(case("bulk shorter than its length", b"*2\r\n$4\r\nECHO\r\n$1\r\nab\r\n"))
    add(case("bulk longer than its length", b"*2\r\n$4\r\nECHO\r\n$3\r\nab\r\n"))
    add(case("expected '$', got 'x'", b"*1\r\nx4\r\nPING\r\n"))
    add(case("expected '$', got CR", b"*1\r\n\r\n"))
    add(case("expected '$', got ':'", b"*2\r\n$4\r\nECHO\r\n:1\r\n"))
    add(case("expected '$', got '*'", b"*1\r\n*1\r\n$4\r\nPING\r\n"))
    add(case("expected '$', got 'P' (inline after header)", b"*1\r\nPING\r\n"))
    add(case("header CR then '$' skipped", b"*1\r$4\r\nPING\r\n"))
    add(case("multibulk with bare LFs", b"*1\n$4\nPING\n"))
    add(case("multibulk then inline", mb_ping + b"PING\r\n"))
    add(case("multibulk QUIT", encode([b"QUIT"]) + mb_ping))
    add(case("empty command name", b"*1\r\n$0\r\n\r\n"))
    add(case("pipeline of commands in one write",
             mb_ping + encode([b"ECHO", b"a\r\nb"]) + b"PING\r\n" +
             encode([b"SET", b"pipe-k", b"1"]) + encode([b"INCR", b"pipe-k"]) +
             encode([b"GET", b"pipe-k"]) + b"ECHO x\r\n" + encode([b"PING", b"z"])))
    add(case("command after a protocol error in the same write",
             mb_ping + b"*1\r\n$x\r\n" + mb_ping))
    add(case("command after an inline error in the same write",
             mb_ping + b"SET 'a\r\n" + mb_ping))
    add(case("protocol error in a later write", mb_ping, b"*1\r\n$-2\r\n", mb_ping))
    add(case("multibulk count over 64 KiB without its end", b"*" + b"1" * LINE_MAX))
    add(case("bulk length over 64 KiB without its end", b"*1\r\n$" + b"1" * LINE_MAX))
    add(case("multibulk count of exactly 64 KiB, then its end",
             b"*" + b"1" * (LINE_MAX - 1), b"\r\n"))
    big = b"a" * 40000
    frame = encode([b"ECHO", big])
    add(case("big bulk in parts", *[frame[i:i + 10000] for i in range(0, len(frame), 10000)]))
    add(case("big bulk then its CRLF late", frame[:-2], frame[-2:] + mb_ping))
    add(case("HELLO 3 (RESP3)", b"HELLO 3\r\n", doc=(
        b"-NOPROTO unsupported protocol version\r\n", False,
        "docs/redis.md: RESP2 only; HELLO 3 answers -NOPROTO unsupported protocol version")))
    # -- frames split across writes at every position
    for name, frame in (("multibulk ECHO hello", encode([b"ECHO", b"hello"])),
                        ("inline ECHO \"a b\"", b'ECHO "a b" c\r\n'),
                        ("two commands", mb_ping + b"PING x\r\n")):
        for i in range(1, len(frame)):
            add(case("%s split at %d" % (name, i), frame[:i], frame[i:]))
        add(case("%s byte by byte" % name, *[frame[i:i + 1] for i in range(len(frame))]))
    for name, frame in (("bad bulk length", b"*1\r\n$x\r\n"),
                        ("unbalanced quotes", b"ECHO \"a\r\n")):
        add(case("%s byte by byte" % name, *[frame[i:i + 1] for i in range(len(frame))]))
    return cs


# ---------------------------------------------------------------------------------------
# The random cases: valid frames, mutated.

SPECIAL = [b"\r", b"\n", b"\r\n", b"$", b"*", b"0", b"1", b"9", b"-", b"\x00", b" ", b"\t",
           b'"', b"'", b"\\", b"x"]
NUMBERS = [b"0", b"-1", b"-0", b"1", b"2", b"3", b"+1", b"01", b"", b"99999",
           b"1048577", b"2147483647", b"2147483648", b"536870913", b"9223372036854775808",
           b"abc", b" 1"]


class RandomCases:
    def __init__(self, seed):
        self.rng = random.Random(seed)

    def key(self):
        return bytes(self.rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(8))

    def blob(self, lo=0, hi=12):
        r = self.rng
        if r.random() < 0.5:
            return bytes(r.choice(b"abcxyz019 ") for _ in range(r.randint(lo, hi)))
        return r.randbytes(r.randint(lo, hi))

    def inline_arg(self, b):
        """b as one inline argument (quoted when it must be)."""
        if b and all(32 < c < 127 and c not in b"\"'\\" for c in b):
            return b
        return b'"' + b"".join(b"\\x%02x" % c for c in b) + b'"'

    def frame(self, keys):
        r = self.rng
        k = r.choice(keys)
        cmd = r.choice([
            [b"PING"], [b"PING", self.blob(1)], [b"ECHO", self.blob()],
            [b"SET", k, self.blob()], [b"GET", k], [b"DEL", k], [b"INCR", k],
            [b"STRLEN", k], [b"EXISTS", k, r.choice(keys)], [b"MGET", k, r.choice(keys)],
            [b"SET", k, str(r.randint(-5, 5)).encode()], [b"TYPE", k],
            [b"FOO", self.blob()], [b"SELECT", str(r.randint(0, 17)).encode()],
        ])
        if r.random() < 0.6:
            return encode(cmd)
        line = b" ".join(self.inline_arg(a) for a in cmd)
        return line + r.choice([b"\r\n", b"\r\n", b"\n"])

    def mutate(self, b):
        r = self.rng
        b = bytearray(b)
        for _ in range(r.choice([1, 1, 1, 2, 2, 3])):
            x = r.random()
            pos = r.randint(0, len(b))
            if x < 0.2 and b:  # replace a byte
                pos = min(pos, len(b) - 1)
                b[pos:pos + 1] = r.choice(SPECIAL) if r.random() < 0.6 else r.randbytes(1)
            elif x < 0.45:  # insert
                b[pos:pos] = r.choice(SPECIAL)
            elif x < 0.55 and b:  # delete
                del b[min(pos, len(b) - 1)]
            elif x < 0.65:  # truncate
                del b[pos:]
            elif x < 0.75 and b:  # repeat a slice
                j = r.randint(pos, min(len(b), pos + 12))
                b[j:j] = b[pos:j]
            else:  # change a number
                runs = list(re.finditer(rb"-?[0-9]+", bytes(b)))
                if runs:
                    m = r.choice(runs)
                    b[m.start():m.end()] = r.choice(NUMBERS)
        return bytes(b)

    def cases(self, n):
        r = self.rng
        out = []
        for i in range(n):
            keys = [self.key() for _ in range(2)]
            frames = [self.frame(keys) for _ in range(r.choice([1, 1, 2, 3]))]
            data = b"".join(frames)
            data = self.mutate(data)
            if r.random() < 0.3:
                data += self.frame(keys)  # a valid command after the mutated ones
            chunks = [data]
            if r.random() < 0.35 and len(data) > 1:
                cuts = sorted(r.sample(range(1, len(data)), min(len(data) - 1,
                                                                 r.randint(1, 3))))
                chunks = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
            out.append(case("random #%d" % i, *chunks))
        return out


# ---------------------------------------------------------------------------------------
# Comparison and report.


def show(b, n=300):
    return rdt.short(b, n)


def first_diff_lines(a, b):
    """The first reply line (up to CRLF) where a and b differ, from each."""
    la, lb = a.split(b"\r\n"), b.split(b"\r\n")
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else None
        y = lb[i] if i < len(lb) else None
        if x != y:
            return x, y
    return None, None


def signature(r, q):
    """What kind of difference: the first differing reply lines, arguments elided, and
    both close behaviours."""
    rl, ql = first_diff_lines(r[0], q[0])

    def norm(x):
        if x is None or x == b"":
            return "<nothing>"
        x = re.sub(rb"unknown command .*", b"unknown command ...", x)
        x = re.sub(rb"^\$[0-9]+$", b"$<n>", x)
        x = re.sub(rb"^:-?[0-9]+$", b":<n>", x)
        return show(x, 70)

    return (norm(rl), "closed" if r[1] else "open", norm(ql), "closed" if q[1] else "open")


def describe(c, r, q):
    sent = b"".join(c.chunks)
    lines = ["  sent (%d write%s): %s" % (len(c.chunks), "s" if len(c.chunks) > 1 else "",
                                          " | ".join(show(x, 200) for x in c.chunks)
                                          if len(c.chunks) <= 4 else show(sent))]
    if c.doc is None:
        lines.append("  redis: %s, %s" % (show(r[0]), r[2]))
    else:
        lines.append("  documented Quire reply: %s, %s (%s)" % (
            show(c.doc[0]), "closed" if c.doc[1] else "open", c.doc[2]))
        if r is not None:
            lines.append("  (redis: %s, %s)" % (show(r[0]), r[2]))
    lines.append("  quire: %s, %s" % (show(q[0]), q[2]))
    return lines


def split_replies(data):
    """The top-level replies in `data`, each as its bytes; None unless `data` is whole
    replies only."""
    out = []
    pos = 0

    def one(pos):
        end = data.find(b"\r\n", pos)
        if end < 0:
            return None
        t, rest = data[pos:pos + 1], data[pos + 1:end]
        nxt = end + 2
        if t in (b"+", b"-", b":"):
            return nxt
        if not re.fullmatch(rb"-?[0-9]+", rest):
            return None
        n = int(rest)
        if t == b"$":
            if n < 0:
                return nxt
            return nxt + n + 2 if data[nxt + n:nxt + n + 2] == b"\r\n" else None
        if t == b"*":
            for _ in range(max(n, 0)):
                nxt = one(nxt)
                if nxt is None:
                    return None
            return nxt
        return None

    while pos < len(data):
        end = one(pos)
        if end is None:
            return None
        out.append(data[pos:end])
        pos = end
    return out


UNKNOWN_RE = re.compile(rb"-ERR unknown command '([^']*)'")
DOC_OTHER_COMMANDS = ("docs/redis.md: Quire implements the commands listed above; others "
                      "answer Redis's unknown-command error")


def redis_only(r, q, names):
    """Whether the replies differ only where Quire answered a command redis-server knows
    (a random mutation can make one, e.g. DEL into XDEL) with the unknown-command error.
    `names`: (redis-server's command names, Quire's)."""
    if r[1] != q[1]:
        return False
    rs, qs = split_replies(r[0]), split_replies(q[0])
    if rs is None or qs is None or len(rs) != len(qs):
        return False
    explained = False
    for a, b in zip(rs, qs):
        if a == b:
            continue
        m = UNKNOWN_RE.match(b)
        if not m or UNKNOWN_RE.match(a):
            return False
        name = m.group(1).lower()
        if name not in names[0] or name in names[1]:
            return False
        explained = True
    return explained


def command_names(port):
    """Every command name the server's COMMAND reply lists (lower case)."""
    c = rdt.Resp(port)
    try:
        reply = c.call(b"COMMAND")
    finally:
        c.close()
    return {e[1][0][1].lower() for e in reply[1]}


def run_case(c, redis_port, quire_port, names):
    r, q = exchange(c, [redis_port, quire_port])
    if c.doc is None:
        ok = r[0] == q[0] and r[1] == q[1]
        if not ok and redis_only(r, q, names):
            c = c._replace(doc=(q[0], q[1], DOC_OTHER_COMMANDS))
            ok = True
    else:
        ok = q[0] == c.doc[0] and q[1] == c.doc[1]
    return c, r, q, ok


def run_all(cases, redis_port, quire_port, workers):
    t = time.monotonic()
    names = (command_names(redis_port), command_names(quire_port))
    results = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for res in pool.map(lambda c: run_case(c, redis_port, quire_port, names), cases):
            results.append(res)
    log("%d cases in %.1f s" % (len(cases), time.monotonic() - t))
    return results


def summarise(results, seed):
    bad = [(c, r, q) for c, r, q, ok in results if not ok]
    documented = [c for c, r, q, ok in results if ok and c.doc is not None]
    for c in documented:
        log("documented difference accepted: %s (%s)" % (c.name, c.doc[2]))
    if not bad:
        return True
    by_sig = collections.OrderedDict()
    for c, r, q in bad:
        sig = ("documented reply",) if c.doc is not None else signature(r, q)
        by_sig.setdefault(sig, []).append((c, r, q))
    log("%d of %d cases differ, %d kinds (seed %d; rerun with --seed %d):" % (
        len(bad), len(results), len(by_sig), seed, seed))
    printed = 0
    for sig, items in by_sig.items():
        sys.stderr.write("--- redis %s, %s / quire %s, %s: x%d\n" % (sig + (len(items),))
                         if len(sig) == 4 else "--- %s x%d\n" % (sig[0], len(items)))
        # Every deterministic case of the kind by name; details for a few.
        names = [c.name for c, _, _ in items]
        sys.stderr.write("    cases: %s\n" % ", ".join(names[:30] + (
            ["...(%d more)" % (len(names) - 30)] if len(names) > 30 else [])))
        for c, r, q in items[:3]:
            if printed >= DETAILS_MAX:
                break
            printed += 1
            sys.stderr.write("  %s\n%s\n" % (c.name, "\n".join(describe(c, r, q))))
    sys.stderr.flush()
    return False


# ---------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quire", required=True)
    ap.add_argument("--redis-server", default="/usr/bin/redis-server")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--random", type=int, default=300, help="random cases")
    ap.add_argument("--workers", type=int, default=16, help="cases run at once")
    ap.add_argument("--budget", type=int, default=BUDGET)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--ports", default="33000-40000", help="range for the base port")
    args = ap.parse_args()
    quire = os.path.abspath(args.quire)
    t = time.monotonic()
    if not rdt.choose_ports(args.ports):
        return 2
    log("seed %d (rerun: --seed %d), %d random cases" % (args.seed, args.seed, args.random))

    def body(quire_port):
        cases = deterministic_cases() + RandomCases(args.seed).cases(args.random)
        results = run_all(cases, rdt.REDIS_PORT, quire_port, args.workers)
        return summarise(results, args.seed)

    ok = rdt.with_servers(args, quire, body)
    log("%s; wall time %.1f s (seed %d)" % ("PASS" if ok else "FAIL", time.monotonic() - t,
                                             args.seed))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
