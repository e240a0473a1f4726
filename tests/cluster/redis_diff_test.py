#!/usr/bin/python3
"""Differential test: one seeded random command stream against a real Quire primary and a
real redis-server (the oracle), every reply compared (type and value; errors by their whole
text), and after every batch the keyspace (DBSIZE, the values of every key, full SCANs and
KEYS with MATCH patterns, compared as sets: Quire's SCAN is in key order by design).

Differences that docs/redis.md documents are not failures:
  - SET with EX/PX/EXAT/PXAT/KEEPTTL, GETEX with them, SETEX, PSETEX and EXPIRE/PEXPIRE/
    EXPIREAT/PEXPIREAT: Quire answers an -ERR (keys never expire); such a command is not
    sent to redis-server.
  - A key above 4096 bytes or a value above 1 MiB (SET, or SETRANGE past it): Quire's
    documented -ERR; not sent to redis-server. (APPEND and SETRANGE in the stream use small
    values and offsets, so no key grows past the limit.)
  - SCAN: key order and cursors differ, so single SCAN calls in the stream are compared by
    shape (and by key set when one call covers the whole database), full iterations as
    sets; Quire's must also return each key once and in ascending key order.
  - -TRYAGAIN from Quire (documented retriable failure): counted and reported, the keys
    are resynchronised, not a failure.
  - Inside MULTI, Quire refuses MOVE (and discards the transaction) and answers an error
    element in EXEC's reply for COPY ... DB <another database>: transactions leave both out.
  - LCS past Quire's table bound (lcs_table_bytes_max, 64 MiB): LCS runs on keys of its own
    (LCS_KEYS) whose values only its generator writes, a few hundred bytes at most, so the
    bound is never reached (and redis-server never builds a table of gigabytes).
COPY ... DB n and MOVE write other databases: those are added to the databases checked in
full at the end, and a mismatch resynchronises the key there too.
Every other difference is recorded (index, command, both replies, the last 20 commands),
the command's keys are resynchronised from redis-server so the stream can go on, and the
test fails at the end with a summary of each kind of difference.

The cluster (`quire cluster`, tests/cluster/cluster_test.py's Cluster) takes a free base port
in --ports (base..base+22) and redis-server base+30; both are stopped at the end, on failure, on SIGTERM
and by a watchdog (--budget), and every pid they had is SIGKILLed if still alive.

Run: /usr/bin/python3 tests/cluster/redis_diff_test.py --quire build/release/src/quire
     [--seed N] [--commands 10000] [--batch 100] [--redis-server /usr/bin/redis-server]
     [--keep] [--budget SECONDS] [--ports 33000-40000]
"""

import argparse
import atexit
import collections
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_test import Cluster, choose_base_port, pid_alive  # noqa: E402

# Chosen in main(): a free base port for the cluster (base..base+22), redis-server base+30.
CLUSTER_BASE_PORT = 0
REDIS_PORT = 0
DEFAULT_SEED = 20240611
CLIENT_TIMEOUT = 15  # socket timeout of each connection
START_WAIT = 60
BUDGET = 200  # the whole run; then the watchdog stops everything and exits (ctest: 300)
DATABASES = 16
KEY_MAX = 4096  # kKeyBytesMax
VALUE_MAX = 1 << 20  # kValueBytesMax
DETAILS_MAX = 40  # mismatches printed in full (all are counted)
SCAN_CALLS_MAX = 10000


def log(msg):
    sys.stderr.write("[redis_diff_test %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------
# A raw RESP2 client: replies keep their exact type.
#   ("simple", b) ("error", b) ("int", n) ("bulk", b) ("nil",) ("array", (...)) ("nilarray",)


class ProtocolError(Exception):
    pass


def encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n" % len(a))
        out.append(a)
        out.append(b"\r\n")
    return b"".join(out)


class Resp:
    def __init__(self, port, timeout=CLIENT_TIMEOUT):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb", buffering=1 << 16)

    def call(self, *args):
        self.sock.sendall(encode(args))
        return self.read()

    def pipeline(self, commands):
        """Sends every command in one write (from a thread: a big pipeline's replies must be
        read while it is sent) and reads their replies."""
        if not commands:
            return []
        data = b"".join(encode(a) for a in commands)
        failed = []

        def send():
            try:
                self.sock.sendall(data)
            except OSError as e:
                failed.append(e)

        th = threading.Thread(target=send, daemon=True)
        th.start()
        try:
            replies = [self.read() for _ in commands]
        finally:
            th.join(CLIENT_TIMEOUT)
        if failed:
            raise failed[0]
        return replies

    def read(self):
        line = self.f.readline()
        if not line.endswith(b"\r\n"):
            raise ProtocolError("connection closed or bad line: %r" % line[:200])
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return ("simple", rest)
        if t == b"-":
            return ("error", rest)
        if t == b":":
            if not re.fullmatch(rb"-?[0-9]+", rest):
                raise ProtocolError("bad integer reply %r" % rest)
            return ("int", int(rest))
        if t == b"$":
            n = int(rest)
            if n < 0:
                return ("nil",)
            data = self.f.read(n + 2)
            if len(data) != n + 2 or data[-2:] != b"\r\n":
                raise ProtocolError("short bulk reply")
            return ("bulk", data[:-2])
        if t == b"*":
            n = int(rest)
            if n < 0:
                return ("nilarray",)
            return ("array", tuple(self.read() for _ in range(n)))
        raise ProtocolError("bad reply line %r" % line[:200])

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass


def short(b, n=60):
    if len(b) <= n:
        return repr(b)
    return "%r...(%d bytes)" % (b[:n], len(b))


def fmt_reply(r):
    if r is None:
        return "<not sent>"
    if isinstance(r, str):
        return r
    kind = r[0]
    if kind in ("simple", "error"):
        return "%s %s" % ("+" if kind == "simple" else "-", short(r[1], 300))
    if kind == "int":
        return ":%d" % r[1]
    if kind == "bulk":
        return "$" + short(r[1])
    if kind in ("nil", "nilarray"):
        return kind
    items = [fmt_reply(x) for x in r[1][:12]]
    more = ", ...(%d items)" % len(r[1]) if len(r[1]) > 12 else ""
    return "[" + ", ".join(items) + more + "]"


def fmt_cmd(args):
    return " ".join(short(a, 40) for a in args)


# ---------------------------------------------------------------------------------------
# The command stream.

BASE_KEYS = [
    b"a", b"b", b"c", b"ab", b"ba", b"bb", b"abc", b"acc", b"aXc", b"a?c", b"a*c", b"*",
    b"\\", b"\\*", b"[ab]", b"[", b"]", b"?", b"^a", b"!a", b"-", b"", b" ", b"  ",
    b"key with spaces", b"k\r\n", b"\r\n", b"\x00", b"a\x00b", b"\x00\x00", b"\xff",
    b"\xff\xfe", "é".encode(), b"counter", b"n1", b"n2", b"n3", b"big1", b"big2", b"abc\n",
    b"A", b"Abc",
] + [b"k%d" % i for i in range(10)]

INT_EDGE = [
    b"9223372036854775807", b"9223372036854775806", b"-9223372036854775808",
    b"-9223372036854775807", b"9223372036854775808", b"-9223372036854775809",
    b"18446744073709551615", b"18446744073709551616", b"99999999999999999999",
    b"0", b"-0", b"1", b"-1", b"12", b"  12", b"12 ", b"0x10", b"1e3", b"", b"+1", b"01",
    b"00", b"-01", b"1.5", b"-", b"+", b" ", b"12\x00", b"1\r\n", b"abc", "٣".encode(),
    b"4611686018427387904", b"-4611686018427387904", b"100", b"-100",
]

FLOAT_EDGE = [b"0", b"-0", b"1.5", b"-1.5", b"0.1", b"3.0e3", b"1e-10", b"inf", b"-inf",
              b"+inf", b"nan", b"1e4932", b"1e-4940", b"1e5000", b"-1e5000", b"1e-5000",
              b" 1", b"1 ", b"", b"1.", b".5", b"0x10", b"1e", b"12\x00", b"1_0",
              b"5.0000000000000000001", b"0.30000000000000004", b"1" * 300,
              b"1." + b"5" * 5200, b"99999999999999999999999"]

SELECT_BAD = [b"16", b"17", b"-1", b"abc", b"", b" 1", b"1 ", b"01", b"+1", b"1.0", b"-0",
              b"0x1", b"2147483648", b"-2147483649", b"2147483647", b"-2147483648",
              b"99999999999999999999", b"9223372036854775808"]

PATTERNS = [b"*", b"a?c", b"[ab]*", b"\\*", b"k[0-9]", b"[^a]*", b"[!a]*", b"*\x00*",
            b"[a-b]*", b"[ab", b"a\\", b"?", b"", b"*c", b"[\\]]*", b"*\r\n", b"*a*b*", b"**",
            b"[a-]*", b"[]a]*", b"[z-a]*", b"\\a*", b"k?", b"*\xff*"]

# Redis arity (COMMAND INFO): n exact, -n at least n.
ARITY = {b"get": 2, b"set": -3, b"setnx": 3, b"del": -2, b"exists": -2, b"strlen": 2,
         b"mget": -2, b"mset": -3, b"msetnx": -3, b"incr": 2, b"incrby": 3, b"decr": 2,
         b"decrby": 3, b"select": 2, b"dbsize": 1, b"echo": 2, b"ping": -1, b"scan": -2,
         b"keys": 2, b"flushdb": -1, b"type": 2, b"ttl": 2, b"pttl": 2, b"unlink": -2,
         b"touch": -2, b"getdel": 2, b"getset": 3, b"append": 3, b"getrange": 4,
         b"substr": 4, b"setrange": 4, b"incrbyfloat": 3, b"rename": 3, b"renamenx": 3,
         b"persist": 2, b"getex": -2, b"expiretime": 2, b"pexpiretime": 2, b"setex": 4,
         b"psetex": 4, b"expire": -3, b"pexpire": -3, b"expireat": -3, b"pexpireat": -3,
         b"flushall": -1, b"bitop": -4, b"lcs": -3, b"copy": -3, b"move": 3,
         b"bitfield": -2, b"bitfield_ro": -2}

# What Quire does not queue inside MULTI (docs/redis.md, Transactions). COPY to another
# database is queued but answers an error element in EXEC's reply (Run.transaction).
NOT_IN_MULTI = {b"select", b"dbsize", b"flushdb", b"flushall", b"scan", b"keys", b"move"}

# LCS's keys: only c_lcs writes them (no other generator picks them), with values of at most
# 300 bytes, so LCS's table (len1+1)*(len2+1)*4 bytes stays far below Quire's 64 MiB bound.
LCS_KEYS = [b"lcs1", b"lcs2", b"lcs3", b"lcs\x00"]
LCS_ALPHABETS = [b"ab", b"ACGT", b"abcdefgh", b"a", bytes(range(256))]

# Not b"GET\x00": redis-server finds it as GET only when its hash (over 4 bytes, seeded at
# random at each start) lands in GET's bucket, whose key compares equal as a C string; so its
# answer changes from one redis-server to the next. Quire answers unknown command.
UNKNOWN_NAMES = [b"FOO", b"gett", b"SETT", b"x", b"", b"\r\n", b"a b", b"\x00cmd",
                 b"c" * 200, b"DELETE", b"incrbyx", b"quire.nosuch", b"*"]


class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        r = self.rng
        self.long_values = [r.randbytes(100_000), b"x" * 100_000, b"1" * 100_000,
                            b"\r\n" * 50_000]
        self.keys = list(BASE_KEYS)

    # -- pieces
    def key(self):
        r = self.rng
        if r.random() < 0.25:
            return r.choice(self.keys[:12])  # a hot few
        return r.choice(self.keys)

    def keys_n(self, lo, hi):
        return [self.key() for _ in range(self.rng.randint(lo, hi))]

    def value(self):
        r = self.rng
        x = r.random()
        if x < 0.30:
            return r.choice(INT_EDGE)
        if x < 0.55:
            return str(r.randint(-1000, 1000)).encode()
        if x < 0.62:
            return str(r.randint(-(1 << 63), (1 << 63) - 1)).encode()
        if x < 0.85:
            return r.randbytes(r.randint(0, 24))
        if x < 0.93:
            return r.choice([b"hello", b"", b" ", b"\x00", b"\r\n", b"value with spaces",
                             b"a" * 1000])
        if x < 0.97:
            return r.randbytes(r.randint(1000, 5000))
        return r.choice(self.long_values)

    def incr_arg(self):
        r = self.rng
        x = r.random()
        if x < 0.5:
            return str(r.randint(-100, 100)).encode()
        if x < 0.6:
            return str(r.randint(-(1 << 63), (1 << 63) - 1)).encode()
        return r.choice(INT_EDGE)

    def case(self, name):
        """The command name in upper, lower or mixed case."""
        r = self.rng
        x = r.random()
        if x < 0.45:
            return name.upper()
        if x < 0.8:
            return name.lower()
        return bytes(c ^ 0x20 if (0x41 <= (c & 0xDF) <= 0x5A and r.random() < 0.5) else c
                     for c in name)

    # -- commands: each returns (args, kind); kind "cmp" (compare), "quire_err" (Quire must
    # answer -ERR, redis-server is not asked), or ("doc_err", message) (Quire must answer
    # exactly that error, documented; redis-server is not asked).
    def next(self):
        r = self.rng
        choices = [
            (10, self.c_set), (8, self.c_set_opts), (2, self.c_set_expire), (4, self.c_setnx),
            (10, self.c_get), (5, self.c_del), (5, self.c_exists), (4, self.c_strlen),
            (5, self.c_mget), (4, self.c_mset), (3, self.c_msetnx), (4, self.c_incr),
            (6, self.c_incrby), (3, self.c_select), (2, self.c_dbsize), (0.4, self.c_flushdb),
            (2, self.c_echo), (2, self.c_ping), (6, self.c_arity), (3, self.c_unknown),
            (2, self.c_scan), (1, self.c_keys), (0.3, self.c_limits), (3, self.c_type_ttl),
            (2, self.c_unlink_touch), (2, self.c_getdel_getset), (3, self.c_append),
            (3, self.c_getrange), (3, self.c_setrange), (4, self.c_incrbyfloat),
            (3, self.c_rename), (1, self.c_persist), (2, self.c_getex), (1, self.c_expire),
            (0.1, self.c_flushall), (5, self.c_bits), (3, self.c_bitop), (3, self.c_lcs),
            (3, self.c_copy), (2, self.c_move), (4, self.c_bitfield),
        ]
        total = sum(w for w, _ in choices)
        x = r.random() * total
        for w, fn in choices:
            x -= w
            if x < 0:
                return fn()
        return choices[-1][1]()

    def c_set(self):
        return [self.case(b"set"), self.key(), self.value()], "cmp"

    def c_set_opts(self):
        r = self.rng
        pool = [b"NX", b"XX", b"GET", b"nx", b"xx", b"get", b"Get", b"nX"]
        opts = [r.choice(pool) for _ in range(r.randint(0, 3))]
        if r.random() < 0.1:
            opts.insert(r.randint(0, len(opts)), r.choice([b"FOO", b"", b"NXX", b"GETT", b"1"]))
        return [self.case(b"set"), self.key(), self.value()] + opts, "cmp"

    def c_set_expire(self):
        r = self.rng
        exp = r.choice([[b"EX", b"10"], [b"PX", b"100"], [b"EXAT", b"9999999999"],
                        [b"PXAT", b"9999999999999"], [b"KEEPTTL"], [b"ex", b"1"],
                        [b"keepttl"], [b"EX", b"0"], [b"EX", b"abc"], [b"PX"]])
        opts = [r.choice([b"NX", b"XX", b"GET"]) for _ in range(r.randint(0, 2))]
        mid = opts + exp if r.random() < 0.5 else exp + opts
        return [self.case(b"set"), self.key(), self.value()] + mid, "quire_err"

    def c_setnx(self):
        return [self.case(b"setnx"), self.key(), self.value()], "cmp"

    def c_type_ttl(self):
        return [self.case(self.rng.choice([b"type", b"ttl", b"pttl"])), self.key()], "cmp"

    def c_unlink_touch(self):
        return [self.case(self.rng.choice([b"unlink", b"touch"]))] + self.keys_n(1, 4), "cmp"

    def c_getdel_getset(self):
        if self.rng.random() < 0.5:
            return [self.case(b"getdel"), self.key()], "cmp"
        return [self.case(b"getset"), self.key(), self.value()], "cmp"

    def small_value(self):
        """A value that keeps appended keys well under Quire's value limit."""
        v = self.value()
        return v if len(v) <= 1000 else v[:self.rng.randint(0, 1000)]

    def c_append(self):
        return [self.case(b"append"), self.key(), self.small_value()], "cmp"

    def index_arg(self):
        r = self.rng
        x = r.random()
        if x < 0.6:
            return str(r.randint(-30, 30)).encode()
        if x < 0.8:
            return str(r.randint(-200000, 200000)).encode()
        return r.choice(INT_EDGE)

    def c_getrange(self):
        name = b"getrange" if self.rng.random() < 0.8 else b"substr"
        return [self.case(name), self.key(), self.index_arg(), self.index_arg()], "cmp"

    def c_setrange(self):
        r = self.rng
        x = r.random()
        if x < 0.7:
            offset = str(r.randint(0, 300)).encode()
        elif x < 0.85:
            offset = str(r.randint(0, 5000)).encode()
        else:
            offset = r.choice([b"-1", b"abc", b"", b" 1", b"1.5", b"-9223372036854775808",
                               b"9223372036854775808", b"0", b"+1", b"01"])
        return [self.case(b"setrange"), self.key(), offset,
                r.choice([b"", b"x", self.small_value()])], "cmp"

    def bit_offset(self):
        r = self.rng
        x = r.random()
        if x < 0.75:
            return str(r.randint(0, 200)).encode()
        if x < 0.85:
            return str(r.randint(0, 40000)).encode()
        return r.choice([b"-1", b"abc", b"", b" 1", b"1.5", b"4294967295", b"4294967296",
                         b"9223372036854775807", b"+1", b"01", b"0"])

    def bit_index(self):
        r = self.rng
        if r.random() < 0.8:
            return str(r.randint(-40, 40)).encode()
        return r.choice([b"a", b"", b"-9223372036854775808", b"9223372036854775807", b"1.0"])

    def c_bits(self):
        r = self.rng
        x = r.random()
        unit = [r.choice([b"BYTE", b"BIT", b"bit", b"byte", b"Bit", b"BITS", b"", b"bit\x00x"])]
        if x < 0.3:
            bit = r.choice([b"0", b"1", b"1", b"0", b"2", b"-1", b"x", b"01"])
            offset = self.bit_offset()
            args = [self.case(b"setbit"), self.key(), offset, bit]
            # Past Quire's value limit (docs/redis.md, SETBIT): Quire's error, and
            # redis-server is not asked (it would grow the value to hundreds of MB).
            if re.fullmatch(rb"0|[1-9][0-9]*", offset) and bit in (b"0", b"1"):
                byte = int(offset) >> 3
                if VALUE_MAX < byte + 1 and byte < 512 << 20:
                    return args, ("doc_err", b"ERR value is %d bytes; Quire's value limit is %d "
                                             b"bytes (kValueBytesMax)" % (byte + 1, VALUE_MAX))
            return args, "cmp"
        if x < 0.45:
            return [self.case(b"getbit"), self.key(), self.bit_offset()], "cmp"
        if x < 0.72:
            n = r.choice([0, 2, 2, 3, 1, 4])
            idx = [self.bit_index() for _ in range(min(n, 2))] + (unit if n == 3 else []) + (
                [b"x"] * (n - 3) if n > 3 else [])
            return [self.case(b"bitcount"), self.key()] + idx, "cmp"
        bit = r.choice([b"0", b"1", b"1", b"0", b"2", b"x"])
        n = r.choice([0, 1, 2, 3, 3, 4])
        idx = [self.bit_index() for _ in range(min(n, 2))] + (unit if n == 3 else []) + (
            [b"x"] * (n - 3) if n > 3 else [])
        return [self.case(b"bitpos"), self.key(), bit] + idx, "cmp"

    def field_type(self):
        r = self.rng
        if r.random() < 0.9:
            sign = r.choice([b"i", b"u"])
            return sign + str(r.randint(1, 64 if sign == b"i" else 63)).encode()
        return r.choice([b"u64", b"i65", b"i0", b"u0", b"x8", b"", b"I8", b"i08", b"i-1",
                         b"i8\x00x", b"u", b"i 8"])

    def field_offset(self, write):
        """A field's offset. Past Quire's value limit only for a GET (a SET or INCRBY there
        is refused by Quire; redis-server would grow the value to 512 MB). #n whose n times
        the width passes 2^63 is an error to Quire; redis-server multiplies without a check
        (undefined behaviour in C: #2^58 of i64 wraps to offset 0), so none of those."""
        r = self.rng
        x = r.random()
        if x < 0.6:
            return str(r.randint(0, 300)).encode()
        if x < 0.8:
            return b"#" + str(r.randint(0, 40)).encode()
        if x < 0.9:
            return str(r.randint(0, 16000)).encode()
        odd = [b"-1", b"#-1", b"abc", b"", b"#", b"##1", b" 1", b"+1", b"01",
               b"9223372036854775807", b"4294967296", b"#288230376151711743"]
        return r.choice(odd if write else odd + [b"4294967295", b"#67108863"])

    def field_value(self):
        r = self.rng
        x = r.random()
        if x < 0.6:
            return str(r.randint(-300, 300)).encode()
        if x < 0.85:
            e = r.choice([7, 8, 15, 16, 31, 32, 62, 63])
            return str(r.choice([1, -1]) * (2 ** e) + r.randint(-2, 1)).encode()
        return r.choice([b"9223372036854775807", b"-9223372036854775808", b"x", b"", b"1.5",
                         b"9223372036854775808", b"+3", b"0"])

    def c_bitfield(self):
        """BITFIELD / BITFIELD_RO with GET, SET, INCRBY and OVERFLOW steps."""
        r = self.rng
        ro = r.random() < 0.2
        steps = []
        for _ in range(r.randint(0, 5)):
            x = r.random()
            if x < 0.35 or (ro and x < 0.9):
                steps += [self.case(b"get"), self.field_type(), self.field_offset(False)]
            elif x < 0.6:
                steps += [self.case(b"set"), self.field_type(), self.field_offset(True),
                          self.field_value()]
            elif x < 0.85:
                steps += [self.case(b"incrby"), self.field_type(), self.field_offset(True),
                          self.field_value()]
            elif x < 0.97:
                steps += [self.case(b"overflow"),
                          r.choice([b"WRAP", b"sat", b"Fail", b"wrap", b"SAT", b"FAIL",
                                    b"NONE", b"", b"fail\x00x"])]
            else:  # a truncated step or a stray word
                steps += r.choice([[b"get", b"u8"], [b"set", b"i8", b"0"], [b"overflow"],
                                   [b"FOO"], [b"incrby"]])
        name = b"bitfield_ro" if ro else b"bitfield"
        return [self.case(name), self.key()] + steps, "cmp"

    def c_bitop(self):
        r = self.rng
        op = r.choice([b"AND", b"OR", b"XOR", b"NOT"])
        if r.random() < 0.06:  # not an operation (b"and\x00x" is AND: a C string to both)
            op = r.choice([b"NAND", b"", b"ANDX", b"and\x00x", b"NOT ", b"X", b"orr", b"1"])
        dest = self.key()
        if op.upper() == b"NOT" and r.random() < 0.85:
            n = 1
        else:
            n = r.randint(1, 4)  # NOT with two or more: its error
        srcs = self.keys_n(n, n)
        if r.random() < 0.2:  # the destination is a source too
            srcs[r.randrange(n)] = dest
        if r.random() < 0.1:  # a source twice
            srcs.append(r.choice(srcs))
        return [self.case(b"bitop"), self.case(op), dest] + srcs, "cmp"

    def lcs_value(self):
        r = self.rng
        if r.random() < 0.08:
            return b""
        alpha = r.choice(LCS_ALPHABETS)
        n = r.choice([r.randint(1, 12), r.randint(1, 60), r.randint(100, 300)])
        return bytes(r.choice(alpha) for _ in range(n))

    def lcs_edit(self, v):
        """v with a few bytes changed, inserted or deleted (long common substrings)."""
        r = self.rng
        v = bytearray(v)
        for _ in range(r.randint(0, 6)):
            x, i = r.random(), r.randint(0, len(v))
            if x < 0.4 and i < len(v):
                v[i] = r.randrange(256)
            elif x < 0.7:
                v[i:i] = r.randbytes(r.randint(1, 3))
            else:
                del v[i:i + r.randint(1, 3)]
        return bytes(v[:300])

    def minmatchlen_arg(self):
        r = self.rng
        x = r.random()
        if x < 0.6:
            return str(r.randint(0, 6)).encode()
        if x < 0.8:
            return str(r.randint(-3, 60)).encode()
        return r.choice([b"abc", b"", b"1.5", b"-1", b"9223372036854775807",
                         b"9223372036854775808", b"-9223372036854775808", b" 1", b"+1", b"01",
                         b"1\x00"])

    def c_lcs(self):
        r = self.rng
        x = r.random()
        if x < 0.5:  # values for LCS's keys, often edits of one another
            args = [self.case(b"mset")]
            a = self.lcs_value()
            for k in r.sample(LCS_KEYS, r.choice([2, 3, 4, 4])):
                args += [k, self.lcs_edit(a) if r.random() < 0.7 else self.lcs_value()]
            return args, "cmp"
        if x < 0.52:
            return [self.case(b"del"), r.choice(LCS_KEYS)], "cmp"
        k1 = r.choice(LCS_KEYS)
        k2 = k1 if r.random() < 0.08 else r.choice(LCS_KEYS)
        groups = []
        if r.random() < 0.3:
            groups.append([self.case(b"len")])
        if r.random() < 0.5:
            groups.append([self.case(b"idx")])
        if r.random() < 0.35:
            groups.append([self.case(b"minmatchlen"), self.minmatchlen_arg()])
        if r.random() < 0.35:
            groups.append([self.case(b"withmatchlen")])
        if r.random() < 0.05:
            groups.append([self.case(r.choice([b"idx", b"len", b"withmatchlen"]))])  # twice
        if r.random() < 0.05:
            groups.append([r.choice([b"FOO", b"", b"IDXX", b"len\x00x", b"1", b"MATCHLEN"])])
        r.shuffle(groups)
        opts = [a for g in groups for a in g]
        if r.random() < 0.03:
            opts.append(self.case(b"minmatchlen"))  # without its number: a syntax error
        return [self.case(b"lcs"), k1, k2] + opts, "cmp"

    def db_arg(self):
        r = self.rng
        x = r.random()
        if x < 0.65:
            return str(r.randint(0, 3)).encode()
        if x < 0.85:
            return str(r.randint(0, 15)).encode()
        return r.choice(SELECT_BAD)

    def c_copy(self):
        r = self.rng
        src = self.key()
        dst = src if r.random() < 0.15 else self.key()
        groups = []
        if r.random() < 0.45:
            groups.append([self.case(b"db"), self.db_arg()])
        if r.random() < 0.45:
            groups.append([self.case(b"replace")])
        if r.random() < 0.05:
            groups.append([self.case(b"db"), self.db_arg()])  # twice: each is checked
        if r.random() < 0.05:
            groups.append([self.case(b"replace")])
        if r.random() < 0.05:
            groups.append(r.choice([[b"FOO"], [b""], [b"REPLACEX"], [b"db\x00x", b"1"],
                                    [b"replace\x00"], [b"1"]]))
        r.shuffle(groups)
        opts = [a for g in groups for a in g]
        if r.random() < 0.03:
            opts.append(self.case(b"db"))  # without its index: a syntax error
        return [self.case(b"copy"), src, dst] + opts, "cmp"

    def c_move(self):
        return [self.case(b"move"), self.key(), self.db_arg()], "cmp"

    def float_arg(self):
        r = self.rng
        x = r.random()
        if x < 0.3:
            return r.choice(FLOAT_EDGE)
        if x < 0.6:
            return ("%.*f" % (r.randint(0, 6), r.uniform(-1000, 1000))).encode()
        if x < 0.75:
            return ("%g" % r.uniform(-1e20, 1e20)).encode()
        if x < 0.9:
            return str(r.randint(-1000, 1000)).encode()
        return r.choice(INT_EDGE)

    def c_incrbyfloat(self):
        r = self.rng
        key = self.key() if r.random() < 0.5 else r.choice([b"f1", b"f2", b"counter"])
        if r.random() < 0.1:  # a value first that INCRBYFLOAT must read
            return [self.case(b"set"), key, self.float_arg()], "cmp"
        return [self.case(b"incrbyfloat"), key, self.float_arg()], "cmp"

    def c_rename(self):
        r = self.rng
        src = self.key()
        dst = src if r.random() < 0.1 else self.key()
        return [self.case(r.choice([b"rename", b"renamenx"])), src, dst], "cmp"

    def c_persist(self):
        r = self.rng
        name = r.choice([b"persist", b"expiretime", b"pexpiretime"])
        return [self.case(name), self.key()], "cmp"

    def c_getex(self):
        r = self.rng
        x = r.random()
        if x < 0.6:
            opts = r.choice([[], [b"PERSIST"], [b"persist"], [b"PERSIST", b"PERSIST"],
                             [b"FOO"], [b"EX"], [b"PX"], [b"PERSIST", b"x"], [b""]])
            return [self.case(b"getex"), self.key()] + opts, "cmp"
        exp = r.choice([[b"EX", b"10"], [b"PX", b"100"], [b"EXAT", b"9999999999"],
                        [b"pxat", b"1"], [b"ex", b"abc"]])
        return [self.case(b"getex"), self.key()] + exp, "quire_err"

    def c_expire(self):
        r = self.rng
        name = r.choice([b"setex", b"psetex", b"expire", b"pexpire", b"expireat", b"pexpireat"])
        if name in (b"setex", b"psetex"):
            return [self.case(name), self.key(), b"10", self.value()], "quire_err"
        return [self.case(name), self.key(), b"10"] + r.choice([[], [b"NX"], [b"GT"]]), \
            "quire_err"

    def c_flushall(self):
        return [self.case(b"flushall")] + self.rng.choice([[], [b"ASYNC"], [b"SYNC"]]), "cmp"

    def c_get(self):
        return [self.case(b"get"), self.key()], "cmp"

    def c_del(self):
        return [self.case(b"del")] + self.keys_n(1, 4), "cmp"

    def c_exists(self):
        ks = self.keys_n(1, 4)
        ks += [self.rng.choice(ks) for _ in range(self.rng.randint(0, 2))]  # repeats
        self.rng.shuffle(ks)
        return [self.case(b"exists")] + ks, "cmp"

    def c_strlen(self):
        return [self.case(b"strlen"), self.key()], "cmp"

    def c_mget(self):
        return [self.case(b"mget")] + self.keys_n(1, 6), "cmp"

    def c_mset(self):
        args = [self.case(b"mset")]
        for _ in range(self.rng.randint(1, 4)):
            args += [self.key(), self.value()]
        return args, "cmp"

    def c_msetnx(self):
        args = [self.case(b"msetnx")]
        for _ in range(self.rng.randint(1, 3)):
            args += [self.key(), self.value()]
        return args, "cmp"

    def c_incr(self):
        return [self.case(self.rng.choice([b"incr", b"decr"])), self.key()], "cmp"

    def c_incrby(self):
        return [self.case(self.rng.choice([b"incrby", b"decrby"])), self.key(),
                self.incr_arg()], "cmp"

    def c_select(self):
        r = self.rng
        x = r.random()
        if x < 0.6:
            db = str(r.randint(0, 3)).encode()
        elif x < 0.8:
            db = str(r.randint(0, 15)).encode()
        else:
            db = r.choice(SELECT_BAD)
        return [self.case(b"select"), db], "cmp"

    def c_dbsize(self):
        return [self.case(b"dbsize")], "cmp"

    def c_flushdb(self):
        r = self.rng
        extra = r.choice([[], [], [b"ASYNC"], [b"SYNC"], [b"async"], [b"FOO"],
                          [b"ASYNC", b"SYNC"], [b""]])
        return [self.case(b"flushdb")] + extra, "cmp"

    def c_echo(self):
        return [self.case(b"echo"), self.value()], "cmp"

    def c_ping(self):
        r = self.rng
        return [self.case(b"ping")] + ([self.value()] if r.random() < 0.6 else []), "cmp"

    def c_arity(self):
        """A wrong number of arguments for a known command."""
        r = self.rng
        name = r.choice(sorted(ARITY))
        a = ARITY[name]
        if name in (b"flushdb", b"flushall"):
            return [self.case(name), b"ASYNC", b"SYNC", b"x"][:r.randint(3, 4)], "cmp"
        if name in (b"mset", b"msetnx") and r.random() < 0.6:
            n = r.choice([1, 3, 5])  # an odd number of arguments after the name
            return [self.case(name)] + [self.key() for _ in range(n)], "cmp"
        if name == b"ping":
            argc = r.randint(3, 4)  # PING takes 0 or 1 argument
        elif a > 0:
            argc = r.choice([c for c in range(1, a + 3) if c != a])
        else:
            argc = r.randint(1, -a - 1)
        return [self.case(name)] + [self.key() for _ in range(argc - 1)], "cmp"

    def c_unknown(self):
        r = self.rng
        name = r.choice(UNKNOWN_NAMES)
        n = r.choice([0, 0, 1, 2, 3, 5])
        args = []
        for _ in range(n):
            x = r.random()
            if x < 0.15:
                args.append(r.choice(self.long_values)[:r.choice([100, 127, 128, 129, 300])])
            elif x < 0.5:
                args.append(self.key())
            else:
                args.append(self.value()[:500])
        return [name] + args, "cmp"

    def c_scan(self):
        r = self.rng
        args = [self.case(b"scan"), r.choice([b"0", b"0", b"0", b"abc", b"-1", b" 0", b"",
                                               b"0x0", b"18446744073709551616", b"00",
                                               b"+0", b"-0", b"5", b"123456789", b"-"])]
        for _ in range(r.randint(0, 2)):
            opt = r.choice([b"MATCH", b"COUNT", b"TYPE", b"match", b"count", b"FOO"])
            args.append(opt)
            if r.random() < 0.9:
                if opt.upper() == b"MATCH":
                    args.append(r.choice(PATTERNS))
                elif opt.upper() == b"COUNT":
                    args.append(r.choice([b"1000", b"1000", b"10", b"1", b"0", b"-1", b"abc",
                                          b"9223372036854775807", b"99999999999999999999"]))
                elif opt.upper() == b"TYPE":
                    args.append(r.choice([b"string", b"STRING", b"list", b"hash", b"nosuch"]))
                else:
                    args.append(b"1")
        return args, "scan"

    def c_keys(self):
        return [self.case(b"keys"), self.rng.choice(PATTERNS)], "keys"

    def c_limits(self):
        r = self.rng
        if r.random() < 0.5:
            n = r.choice([KEY_MAX + 1, 5000])
            msg = ("ERR key is %d bytes; Quire's key limit is %d bytes (kKeyBytesMax)"
                   % (n, KEY_MAX)).encode()
            return [b"SET", b"K" * n, b"v"], ("doc_err", msg)
        n = VALUE_MAX + 1
        msg = ("ERR value is %d bytes; Quire's value limit is %d bytes (kValueBytesMax)"
               % (n, VALUE_MAX)).encode()
        if r.random() < 0.5:  # SETRANGE past the limit: refused before the value grows
            offset = r.choice([VALUE_MAX, 536870000])
            n = offset + 1
            msg = ("ERR value is %d bytes; Quire's value limit is %d bytes (kValueBytesMax)"
                   % (n, VALUE_MAX)).encode()
            return [b"SETRANGE", self.key(), str(offset).encode(), b"x"], ("doc_err", msg)
        return [b"SET", self.key(), b"v" * n], ("doc_err", msg)


def redis_cursor(a):
    """The cursor redis-server reads from a SCAN argument (parseScanCursorOrReply:
    strtoul base 10, no leading space, nothing after the digits, no ERANGE), or None."""
    if a[:1].isspace():
        return None
    m = re.fullmatch(rb"([+-]?)([0-9]*)", a)
    if not m:
        return None
    sign, digits = m.groups()
    if not digits:
        return 0 if a == b"" else None
    v = int(digits)
    if v >= 1 << 64:
        return None
    return (-v) % (1 << 64) if sign == b"-" else v


def quire_only(kind):
    """Whether a command goes to Quire only (a documented refusal)."""
    return kind == "quire_err" or (isinstance(kind, tuple) and kind[0] == "doc_err")


# Which arguments of a command are keys (for resynchronising after a mismatch).
def command_keys(args):
    name = args[0].lower()
    if name in (b"get", b"set", b"setnx", b"strlen", b"incr", b"incrby", b"decr", b"decrby",
                b"type", b"ttl", b"pttl", b"getdel", b"getset", b"append", b"getrange",
                b"substr", b"setrange", b"incrbyfloat", b"persist", b"getex", b"expiretime",
                b"pexpiretime", b"setbit", b"getbit", b"bitcount", b"bitpos", b"bitfield",
                b"bitfield_ro"):
        return args[1:2]
    if name in (b"rename", b"renamenx", b"copy", b"lcs"):
        return args[1:3]
    if name == b"move":
        return args[1:2]
    if name == b"bitop":
        return args[2:]
    if name in (b"del", b"exists", b"mget", b"unlink", b"touch"):
        return args[1:]
    if name in (b"mset", b"msetnx"):
        return args[1::2]
    return []


def other_dbs(args):
    """The databases COPY ... DB n or MOVE key n may write besides the connection's: each
    index that may be valid (a superset: for the databases checked and resynchronised)."""
    name = args[0].lower()
    if name == b"move" and len(args) == 3:
        vals = [args[2]]
    elif name == b"copy":
        vals = [args[j + 1] for j in range(3, len(args) - 1)
                if args[j].split(b"\x00", 1)[0].lower() == b"db"]
    else:
        return set()
    return {int(v) for v in vals
            if re.fullmatch(rb"-?[0-9]{1,3}", v) and 0 <= int(v) < DATABASES}


# ---------------------------------------------------------------------------------------
# The run.


class Run:
    def __init__(self, args):
        self.args = args
        self.gen = Gen(args.seed)
        self.mismatches = []  # (index, sig, text)
        self.by_sig = collections.OrderedDict()  # sig -> [count, first text]
        self.details = 0
        self.recent = collections.deque(maxlen=20)
        self.db = 0
        self.touched = {0}
        self.exec_keys = []  # the keys of the last transaction sent
        self.transactions = 0
        self.watch_aborts = 0  # EXECs both servers aborted for a watched key's write
        self.tryagain = 0
        self.quire_only = 0
        self.compared = 0
        self.q = None
        self.r = None
        self.todo = []  # repairs after a mismatch: (what, db, keys)

    # -- recording
    def record(self, index, sig, lines):
        text = "\n".join(lines)
        entry = self.by_sig.setdefault(sig, [0, text, index])
        entry[0] += 1
        self.mismatches.append((index, sig))
        if self.details < DETAILS_MAX and entry[0] <= 2:
            self.details += 1
            log("MISMATCH #%d at command %s (db %d)\n%s" % (len(self.mismatches), index,
                                                              self.db, text))
            if entry[0] == 1:
                log("last %d commands:\n%s" % (len(self.recent), "\n".join(
                    "  %5d %-8s %s" % (i, d, fmt_cmd(a)) for i, d, a in self.recent)))

    def sig_of(self, args, rr, qr):
        name = args[0].upper()[:20] if args else b""
        if rr and rr[0] == "error" and rr[1].startswith(b"ERR unknown command"):
            nul = any(b"\x00" in a for a in args)
            return ("<unknown command>", "a NUL byte in the name or an argument" if nul
                    else "no NUL byte", "")
        if name == b"SCAN" and qr and qr[0] == "error":
            name = b"SCAN cursor %r" % args[1]
        def k(x):
            if x is None or isinstance(x, str):
                return str(x)
            if x[0] == "error":
                return "-" + x[1][:28].decode("latin-1")
            return x[0]
        return (name.decode("latin-1"), k(rr), k(qr))

    # -- the servers
    def connect(self):
        if self.q:
            self.q.close()
        if self.r:
            self.r.close()
        self.q = Resp(self.quire_port)
        self.r = Resp(REDIS_PORT)
        if self.db:
            for c in (self.q, self.r):
                got = c.call(b"SELECT", str(self.db).encode())
                if got != ("simple", b"OK"):
                    raise RuntimeError("SELECT %d on reconnect: %s" % (self.db, fmt_reply(got)))

    def both(self, *args):
        return self.r.call(*args), self.q.call(*args)

    def in_db(self, db, fn):
        if db is None or db == self.db:
            return fn()
        for c in (self.q, self.r):
            c.call(b"SELECT", str(db).encode())
        try:
            return fn()
        finally:
            for c in (self.q, self.r):
                c.call(b"SELECT", str(self.db).encode())

    def resync_keys(self, keys, db=None):
        """Makes Quire's values of keys redis-server's (the oracle), so the stream goes on."""
        self.in_db(db, lambda: self._resync_keys(keys))

    def _resync_keys(self, keys):
        for k in set(keys):
            if len(k) > KEY_MAX:
                continue
            rv, qv = self.both(b"GET", k)
            if rv == qv:
                continue
            if rv == ("nil",):
                self.q.call(b"DEL", k)
            elif rv[0] == "bulk":
                self.q.call(b"SET", k, rv[1])

    def resync_db(self, db=None):
        def fn():
            qkeys, _ = self.scan_all(self.q, b"*", 1000)
            rkeys, _ = self.scan_all(self.r, b"*", 1000)
            self._resync_keys(set(qkeys or ()) | set(rkeys or ()) | set(self.gen.keys) |
                              set(LCS_KEYS))
        self.in_db(db, fn)

    # -- one command
    def transaction(self, i, m):
        """MULTI, m commands of the stream that Quire queues and both servers answer alike
        (documented Quire-only errors and the commands Quire does not queue left out), EXEC;
        sent as one pipeline. A third of them start with WATCH of a few keys and up to
        three commands of the stream (their writes abort EXEC, in Redis as in Quire)."""
        rng = self.gen.rng
        body = []
        while len(body) < m:
            args, kind = self.gen.next()
            if kind == "cmp" and args[0].lower() not in NOT_IN_MULTI:
                body.append(args)
        head = []
        if rng.random() < 0.33:
            watched = self.gen.keys_n(1, 3)
            head.append([self.gen.case(b"watch")] + watched)
            while len(head) < 1 + rng.randint(0, 3):
                args, kind = self.gen.next()
                name = args[0].lower()
                # Often a command on a watched key (not LCS: its keys are its own).
                if rng.random() < 0.3 and name != b"lcs":
                    at = 2 if name == b"bitop" else 1
                    args = args[:at] + [rng.choice(watched)] + args[at + 1:]
                if kind == "cmp" and len(args) > 1:
                    head.append(args)
        # COPY ... DB <another database> inside MULTI answers Quire's error element
        # (documented): only COPY ... DB <this database> stays, and none when the head may
        # SELECT (the transaction's database is then not known here).
        selects = any(a[0].lower() == b"select" for a in head)
        body = [a for a in body if not (other_dbs(a) - (set() if selects else {self.db}))]
        self.exec_keys = [k for args in head + body for k in command_keys(args)]
        self.transactions += 1
        steps = head + [[self.gen.case(b"multi")]] + body + [[self.gen.case(b"exec")]]
        return [(i + j, args, "cmp") for j, args in enumerate(steps)]

    def step(self, i, args, kind):
        """One command, sent alone."""
        self.recent.append((i, "db%d" % self.db, args))
        rr = None if quire_only(kind) else self.r.call(*args)
        qr = self.q.call(*args)
        self.judge(i, args, kind, rr, qr)
        self.after()

    def step_pipeline(self, items):
        """Several commands, each server getting its share in one write (a pipeline)."""
        for i, args, kind in items:
            self.recent.append((i, "pipeline", args))
        rargs = [args for _, args, kind in items if not quire_only(kind)]
        rrs = iter(self.r.pipeline(rargs))
        qrs = self.q.pipeline([args for _, args, _ in items])
        for (i, args, kind), qr in zip(items, qrs):
            rr = None if quire_only(kind) else next(rrs)
            self.judge(i, args, kind, rr, qr)
        self.after()

    def after(self):
        """The repairs judge() asked for, once every reply was read."""
        todo, self.todo = self.todo, []
        for what, db, keys in todo:
            if what == "select":
                self.q.call(b"SELECT", str(self.db).encode())
            elif what == "db":
                self.resync_db(db)
            else:
                self.resync_keys(keys, db)

    def judge(self, i, args, kind, rr, qr):
        if isinstance(kind, tuple) and kind[0] == "doc_err":
            self.quire_only += 1
            if qr != ("error", kind[1]):
                self.record(i, self.sig_of(args, None, qr), [
                    "  command: %s" % fmt_cmd(args),
                    "  quire:   %s" % fmt_reply(qr),
                    "  wanted (docs/redis.md): -%s" % kind[1].decode()])
            return
        if kind == "quire_err":
            self.quire_only += 1
            if not (qr[0] == "error" and qr[1].startswith(b"ERR ")):
                self.record(i, self.sig_of(args, None, qr), [
                    "  command: %s" % fmt_cmd(args),
                    "  quire:   %s" % fmt_reply(qr),
                    "  wanted:  an -ERR (SET with an expiry is refused, docs/redis.md)"])
                self.todo.append(("keys", self.db, command_keys(args)))
            return
        self.compared += 1
        name = args[0].lower()
        if name == b"exec" and qr == ("nilarray",):
            self.watch_aborts += 1
        ok = rr == qr
        note = None
        if not ok and qr[0] == "error" and qr[1].startswith(b"TRYAGAIN"):
            self.tryagain += 1
            log("command %d: Quire -TRYAGAIN (documented): %s -> %s" % (
                i, fmt_cmd(args), fmt_reply(qr)))
            self.todo.append(("keys", self.db, self.keys_of(args)))
            return
        if not ok and kind in ("scan", "keys"):
            ok, note = self.same_scan_reply(args, rr, qr, kind)
        if name == b"select" and rr == ("simple", b"OK"):
            self.db = int(args[1])
            self.touched.add(self.db)
        self.touched |= other_dbs(args)  # COPY ... DB n, MOVE: checked at the end too
        if ok:
            return
        lines = ["  command: %s" % fmt_cmd(args),
                 "  redis:   %s" % fmt_reply(rr),
                 "  quire:   %s" % fmt_reply(qr)]
        if note:
            lines.append("  (%s)" % note)
        self.record(i, self.sig_of(args, rr, qr), lines)
        if name == b"select":
            # Quire goes back to redis-server's database.
            self.todo.append(("select", None, None))
        elif name == b"flushdb":
            self.todo.append(("db", self.db, None))
        else:
            self.todo.append(("keys", self.db, self.keys_of(args)))
            for d in other_dbs(args):  # the key COPY ... DB n or MOVE wrote there
                self.todo.append(("keys", d, args[2:3] if name == b"copy" else args[1:2]))

    def keys_of(self, args):
        """The keys to repair after `args` differed (EXEC: its transaction's)."""
        return self.exec_keys if args[0].lower() == b"exec" else command_keys(args)

    def same_scan_reply(self, args, rr, qr, kind):
        """Whether a single SCAN or KEYS call answers alike up to the documented differences."""
        if (rr[0] == "error" or qr[0] == "error") and not (
                kind == "scan" and qr == ("error", b"ERR invalid cursor")):
            return False, None
        if kind == "keys":
            if rr[0] == qr[0] == "array":
                rs, qs = [x[1] for x in rr[1]], [x[1] for x in qr[1]]
                return sorted(rs) == sorted(qs), "compared as sets"
            return False, None
        # SCAN: [cursor bulk, [key bulk...]]
        def shape(x):
            return (x[0] == "array" and len(x[1]) == 2 and x[1][0][0] == "bulk"
                    and x[1][1][0] == "array" and all(e[0] == "bulk" for e in x[1][1][1]))
        if (qr == ("error", b"ERR invalid cursor") and rr[0] == "array"
                and redis_cursor(args[1]) not in (None, 0)):
            return True, None  # documented: a cursor Quire did not hand out is unknown
        if not (shape(rr) and shape(qr)):
            return False, "shape"
        # A cursor other than 0 may name a resume key Quire remembers from an earlier scan
        # (docs/redis.md, SCAN): only scans that start at 0 are comparable.
        if redis_cursor(args[1]) == 0 and rr[1][0][1] == b"0" and qr[1][0][1] == b"0":
            rs = {e[1] for e in rr[1][1][1]}
            qs = [e[1] for e in qr[1][1][1]]
            return (rs == set(qs) and len(qs) == len(set(qs)),
                    "both complete in one call: compared as sets")
        return True, None

    # -- batch checks
    def scan_all(self, c, pattern, count, extra=()):
        cursor, keys, calls = b"0", [], 0
        while True:
            args = [b"SCAN", cursor]
            if pattern is not None:
                args += [b"MATCH", pattern]
            args += [b"COUNT", str(count).encode()] + list(extra)
            rep = c.call(*args)
            calls += 1
            if not (rep[0] == "array" and len(rep[1]) == 2):
                return None, "SCAN reply %s" % fmt_reply(rep)
            cursor = rep[1][0][1]
            keys.extend(e[1] for e in rep[1][1][1])
            if cursor == b"0":
                return keys, None
            if calls > SCAN_CALLS_MAX:
                return None, "SCAN does not end"

    def check_keyspace(self, i, db):
        problems = []
        rd, qd = self.both(b"DBSIZE")
        if rd != qd:
            problems.append("DBSIZE: redis %s, quire %s" % (fmt_reply(rd), fmt_reply(qd)))
        keys = self.gen.keys + LCS_KEYS
        rv, qv = self.both(b"MGET", *keys)
        if rv != qv:
            if rv[0] == qv[0] == "array" and len(rv[1]) == len(qv[1]):
                for k, a, b in zip(keys, rv[1], qv[1]):
                    if a != b:
                        problems.append("value of %s: redis %s, quire %s" % (
                            short(k), fmt_reply(a), fmt_reply(b)))
            else:
                problems.append("MGET: redis %s, quire %s" % (fmt_reply(rv), fmt_reply(qv)))
        for pat in PATTERNS:
            count = self.gen.rng.choice([3, 10, 1000])
            extra = [b"TYPE", b"string"] if self.gen.rng.random() < 0.2 else []
            rk, rerr = self.scan_all(self.r, pat, count, extra)
            qk, qerr = self.scan_all(self.q, pat, count, extra)
            if rerr or qerr:
                problems.append("SCAN MATCH %r: redis %s, quire %s" % (pat, rerr, qerr))
                continue
            if set(rk) != set(qk):
                problems.append("SCAN MATCH %r COUNT %d: only redis %s; only quire %s" % (
                    pat, count, sorted(set(rk) - set(qk)), sorted(set(qk) - set(rk))))
            if len(qk) != len(set(qk)):
                problems.append("SCAN MATCH %r: Quire returned a key twice (docs: once)" % pat)
            if qk != sorted(qk):
                problems.append("SCAN MATCH %r: Quire's keys not in key order (docs)" % pat)
            rr, qr = self.both(b"KEYS", pat)
            if rr[0] != qr[0] or (rr[0] == "array" and
                                  sorted(rr[1]) != sorted(qr[1])) or (
                                      rr[0] != "array" and rr != qr):
                problems.append("KEYS %r: redis %s, quire %s" % (pat, fmt_reply(rr),
                                                                fmt_reply(qr)))
        if problems:
            self.record("after %s" % i, ("KEYSPACE", "db%d" % db, problems[0][:30]),
                        ["  keyspace of db %d differs after command %s:" % (db, i)] +
                        ["    " + p for p in problems[:20]])
            self.resync_db()

    def run(self, quire_port):
        self.quire_port = quire_port
        self.connect()
        for c in (self.q, self.r):
            for d in range(DATABASES):
                c.call(b"SELECT", str(d).encode())
                c.call(b"FLUSHDB")
            c.call(b"SELECT", b"0")
        t0 = time.monotonic()
        reconnects = 0
        i, n, batch = 0, self.args.commands, self.args.batch
        rng = self.gen.rng
        while i < n:
            # Mostly one command at a time; sometimes a pipeline of up to 40, within a batch.
            k = 1
            room = min(n - i, batch - i % batch)
            x = rng.random()
            if x < 0.02:
                k = min(rng.randint(2, 40), room)
            items = []
            if 0.02 <= x < 0.02 + self.args.multi_rate and room >= 6:
                items = self.transaction(i, rng.randint(0, min(12, room - 6)))
                k = len(items)
            for j in range(i + len(items), i + k):
                args, kind = self.gen.next()
                items.append((j, args, kind))
            try:
                if k == 1:
                    self.step(*items[0])
                else:
                    self.step_pipeline(items)
            except (OSError, ProtocolError) as e:
                self.record(i, ("CONNECTION", type(e).__name__, ""), [
                    "  command(s): %s" % "; ".join(fmt_cmd(a) for _, a, _ in items),
                    "  error: %s: %s" % (type(e).__name__, e)])
                reconnects += 1
                if reconnects > 3:
                    raise RuntimeError("connections keep failing; giving up") from e
                self.todo = []
                self.connect()
                self.resync_db()
            i += k
            if i % batch == 0:
                self.check_keyspace(i - 1, self.db)
        t_stream = time.monotonic() - t0
        # Every database touched, in full.
        for d in sorted(self.touched):
            for c in (self.q, self.r):
                c.call(b"SELECT", str(d).encode())
            self.db = d
            self.check_keyspace("end", d)
        log("%d commands (%d compared, %d Quire-only documented errors, %d transactions, %d "
            "aborted by WATCH) in %.1f s; %d -TRYAGAIN" % (
                self.args.commands, self.compared, self.quire_only, self.transactions,
                self.watch_aborts, t_stream, self.tryagain))

    def summary(self):
        if not self.mismatches:
            return True
        log("%d mismatches, %d kinds (seed %d; rerun with --seed %d):" % (
            len(self.mismatches), len(self.by_sig), self.args.seed, self.args.seed))
        for sig, (count, text, first) in self.by_sig.items():
            sys.stderr.write("--- %s x%d, first at %s\n%s\n" % (sig, count, first, text))
        sys.stderr.flush()
        return False


# ---------------------------------------------------------------------------------------
# Processes.


class Procs:
    """init_args: more arguments for `quire cluster init` (e.g. --requirepass P);
    redis_args: more arguments for redis-server (e.g. --requirepass P)."""

    def __init__(self, quire, redis_server, keep, init_args=(), redis_args=()):
        self.quire = quire
        self.redis_server = redis_server
        self.keep = keep
        self.init_args = list(init_args)
        self.redis_args = list(redis_args)
        self.cluster = None
        self.redis = None
        self.redis_dir = None
        self.lock = threading.RLock()  # RLock: a signal may arrive while it is held
        self.cleaned = False

    def start_redis(self):
        self.redis_dir = tempfile.mkdtemp(prefix="quire-redis-diff-")
        logf = open(os.path.join(self.redis_dir, "redis.log"), "wb")
        self.redis = subprocess.Popen(
            [self.redis_server, "--port", str(REDIS_PORT), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.redis_dir] + self.redis_args,
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logf.close()
        until = time.monotonic() + 20
        while True:
            try:
                c = Resp(REDIS_PORT, timeout=2)
                try:
                    # With --requirepass it answers, NOAUTH: up as well.
                    if c.call(b"PING") in (("simple", b"PONG"),
                                           ("error", b"NOAUTH Authentication required.")):
                        return
                finally:
                    c.close()
            except (OSError, ProtocolError):
                pass
            if self.redis.poll() is not None or time.monotonic() > until:
                raise RuntimeError("redis-server did not start (exit %s); its log: %s" % (
                    self.redis.poll(), os.path.join(self.redis_dir, "redis.log")))
            time.sleep(0.05)

    def start_cluster(self):
        self.cluster = Cluster(self.quire, CLUSTER_BASE_PORT)
        if self.init_args:
            self.cluster.run("init", self.cluster.dir, "--base-port", str(self.cluster.base),
                             *self.init_args)
        else:
            self.cluster.init()
        t = time.monotonic()
        p = self.cluster.run("start", self.cluster.dir, "--wait", str(START_WAIT),
                             check=False, timeout=START_WAIT + 30)
        self.cluster.remember_pids()
        out = p.stdout.decode(errors="replace")
        if p.returncode != 0:
            raise RuntimeError("quire cluster start: exit %d\n%s\n%s" % (
                p.returncode, out, p.stderr.decode(errors="replace")))
        m = re.search(r"redis-cli -p (\d+)", out)
        if not m:
            raise RuntimeError("no `redis-cli -p N` in quire cluster start's output:\n" + out)
        log("cluster up in %.1f s, primary on port %s" % (time.monotonic() - t, m.group(1)))
        return int(m.group(1))

    def cleanup(self):
        """Stops everything, once; a second caller (the watchdog, a signal, the main
        thread's finally, atexit) waits until the first one is done."""
        with self.lock:
            if self.cleaned:
                return
            self.cleaned = True
            self._cleanup()

    def _cleanup(self):
        if self.redis is not None:
            try:
                if self.redis.poll() is None:
                    self.redis.kill()  # by pid: this Popen's own child
                self.redis.wait(10)
            except (OSError, subprocess.TimeoutExpired) as e:
                log("redis-server pid %d: %s" % (self.redis.pid, e))
        if self.cluster is not None:
            self.cluster.cleanup()  # `quire cluster stop`, then SIGKILL of any pid left
            alive = [p for p in self.cluster.pids_seen | self.cluster.supervisor_pids
                     if pid_alive(p) and self.cluster._ours(p)]
            if alive:
                log("still alive after cleanup: %s" % alive)
        if self.keep:
            log("kept %s and %s" % (self.redis_dir, self.cluster and self.cluster.root))
            return
        for d in (self.redis_dir, self.cluster and self.cluster.root):
            if d:
                shutil.rmtree(d, ignore_errors=True)
        log("stopped redis-server and the cluster")


def port_free(port):
    """Whether nothing listens on 127.0.0.1:port. SO_REUSEADDR, as the servers bind: a
    previous run's connections in TIME_WAIT do not make the port busy."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def choose_ports(ports):
    """Picks a free base port for the cluster in `ports` ("lo-hi"), and base+30 for
    redis-server, into this module's globals (Procs reads them). False when none is free."""
    global CLUSTER_BASE_PORT, REDIS_PORT
    lo, hi = (int(x) for x in ports.split("-"))
    for _ in range(50):
        base = choose_base_port(lo, hi)
        if port_free(base + 30):
            CLUSTER_BASE_PORT, REDIS_PORT = base, base + 30
            log("cluster base port %d, redis-server port %d" % (CLUSTER_BASE_PORT, REDIS_PORT))
            return True
    log("no free ports in %s" % ports)
    return False


def with_servers(args, quire, body, init_args=(), redis_args=()):
    """Starts redis-server and a Quire cluster, returns body(the primary's port), and stops
    both whatever happens: at the end, on an exception, on SIGTERM, SIGHUP or SIGINT, and
    by a watchdog after args.budget seconds (which exits 2). init_args and redis_args: more
    arguments for `quire cluster init` and redis-server (Procs)."""
    procs = Procs(quire, args.redis_server, args.keep, init_args, redis_args)
    atexit.register(procs.cleanup)

    def watchdog():
        log("the run went past %d s: stopping everything and exiting" % args.budget)
        procs.cleanup()
        os._exit(2)

    timer = threading.Timer(args.budget, watchdog)
    timer.daemon = True
    timer.start()

    def on_signal(signum, _frame):
        if procs.cleaned:
            return  # a cleanup is under way (maybe in this very thread): let it finish
        log("signal %d: stopping everything" % signum)
        procs.cleanup()
        os._exit(128 + signum)

    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, on_signal)
    try:
        procs.start_redis()
        return body(procs.start_cluster())
    finally:
        timer.cancel()
        procs.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quire", required=True)
    ap.add_argument("--redis-server", default="/usr/bin/redis-server")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--commands", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--multi-rate", type=float, default=0.02,
                    help="share of steps that are a MULTI ... EXEC transaction")
    ap.add_argument("--budget", type=int, default=BUDGET)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--ports", default="33000-40000", help="range for the base port")
    args = ap.parse_args()
    quire = os.path.abspath(args.quire)
    log("seed %d (rerun: --seed %d), %d commands, keyspace checked every %d" % (
        args.seed, args.seed, args.commands, args.batch))
    t = time.monotonic()
    if not choose_ports(args.ports):
        return 2

    def body(quire_port):
        run = Run(args)
        run.run(quire_port)
        return run.summary()

    ok = with_servers(args, quire, body)
    log("%s; wall time %.1f s (seed %d)" % ("PASS" if ok else "FAIL", time.monotonic() - t,
                                             args.seed))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
