#!/usr/bin/python3
"""Differential test of the connection and server commands: fixed sequences of commands,
each on one fresh connection to a real Quire primary and to a real redis-server (the
oracle, Debian's 7.0), every reply compared.

What it covers (redis_diff_test.py covers the data commands, redis_protocol_diff_test.py
the wire): HELLO (versions, AUTH, SETNAME, bad options), AUTH, CLIENT (ID, GETNAME,
SETNAME with valid and invalid names, INFO, HELP, arity, unknown and unimplemented
subcommands, case), SELECT with them, CONFIG GET/SET/RESETSTAT, COMMAND (COUNT, INFO,
DOCS, GETKEYS, LIST, and Quire's whole table against Redis's COMMAND INFO: arity, key
positions, flags, ACL categories, key specs), INFO sections, WAIT, QUIT (and what is
pipelined after it), PING/ECHO after errors, RESET (after SELECT, SETNAME, WATCH, inside
MULTI), CLIENT REPLY ON/OFF/SKIP (PipeCase: replies that are not sent, so the bytes of a
whole pipelined exchange are compared), and commands Redis users send that Quire may
not implement (DEBUG, SHUTDOWN ABORT, TIME, ROLE, ...), and MONITOR's replies. Then the same
against a second pair of servers with a password (`quire cluster init --requirepass`,
`redis-server --requirepass`): NOAUTH before AUTH (and which error wins: unknown command,
arity or NOAUTH), WRONGPASS, AUTH and HELLO AUTH, the inline AUTH form, the
unauthenticated protocol limits, RESET (NOAUTH after it, the limits again) and CLIENT REPLY
before and after AUTH. The password part is skipped, with a message, when this quire's
`cluster init` has no --requirepass.

How a reply is compared (Step.how): "exact" (type and value; errors by their whole text),
"type" (integers whose values differ by design: CLIENT ID, COMMAND COUNT, WAIT), or a
shape check (HELLO's 14-element map, CLIENT INFO's fields, HELP texts, CONFIG GET as a
map, COMMAND INFO/DOCS entries, INFO's `# Section` headers).

Differences that docs/redis.md documents are checked as documented: such a step carries
Quire's documented reply (and the docs line, which the test checks is still in
docs/redis.md) and is not compared with redis-server (e.g. HELLO 3, which would switch
redis-server to RESP3, is not sent to it). Every other difference fails the test, with
the commands sent on that connection and both servers' replies.

Processes: redis_diff_test's Procs/with_servers (a `quire cluster` on a free base port,
redis-server on base+30), once without and once with a password, each stopped at the end,
on failure, on SIGTERM and by a watchdog (--budget).

Run: /usr/bin/python3 tests/cluster/redis_session_diff_test.py --quire build/release/src/quire
     [--redis-server /usr/bin/redis-server] [--keep] [--budget SECONDS]
     [--ports 33000-40000] [--only SUBSTRING]
"""

import argparse
import collections
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import redis_diff_test as rdt  # noqa: E402
import redis_protocol_diff_test as rpt  # noqa: E402
from redis_diff_test import ProtocolError, Resp, encode, fmt_cmd, fmt_reply  # noqa: E402

BUDGET = 120  # each pair of servers; then the watchdog stops everything (ctest: 300)
PASSWORD = b"s3cret-pw"
DOCS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                         "redis.md")


def log(msg):
    sys.stderr.write("[redis_session_diff_test %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------
# What docs/redis.md documents (each string must still be in the file).

DOC_HELLO = "RESP2 only: `HELLO 3` answers `-NOPROTO unsupported protocol version`"
DOC_HELLO_REPLY = ("the reply is Redis 7's map as a flat array (server, version 7.0.15, "
                   "proto 2, id, mode, role, modules)")
DOC_CLIENT = ("A standby's progress link to the primary (it sends QUIRE.REPORT) is listed as a "
              "replica: `flags=S`, type `replica` for LIST and KILL's TYPE")
DOC_CONFIG = ("save `\"\"`, appendonly `yes`, appendfsync `always`, databases, maxmemory `0`, "
              "replica-read-only `yes`, slowlog-log-slower-than and slowlog-max-len (`quire node "
              "--slowlog-log-slower-than`, `--slowlog-max-len`); anything else an empty array. "
              "`CONFIG SET` is refused")
DOC_INFO = ("| `INFO [section ...]` | server, clients, memory, persistence, stats, replication, "
            "cpu, commandstats, errorstats, keyspace, quire (Redis's order; commandstats only in "
            "`all` and `everything`, as Redis 7.0; no modules, latencystats or cluster)")
DOC_MEMORY = ("USAGE answers the bytes the key's entry takes in a checkpoint page (length-prefixed "
              "key and value and the commit timestamp, before encryption), not Redis's in-memory "
              "size")
DOC_MEMORY_SUBS = "No DOCTOR, STATS, MALLOC-STATS or PURGE: `-ERR unknown subcommand`"
DOC_NO = "RESP2 only; no RESP3, no scripts, no pub/sub"
DOC_CLIENT_NAME = ("A client name (CLIENT SETNAME, HELLO SETNAME) is at most 4096 bytes: "
                   "`-ERR Client names are limited to 4096 bytes in Quire (kClientNameBytesMax)`")
DOC_MULTI = ("Anything else inside\nMULTI (SCAN, KEYS, DBSIZE, FLUSHDB, FLUSHALL, SELECT, MOVE, "
             "CLIENT, CONFIG, INFO, WAIT, QUIRE.*)\nanswers `-ERR Command not allowed inside a "
             "transaction: ...` and discards the transaction.")
DOC_COPY_MULTI = ("A COPY into another database answers an error as its element of EXEC's reply "
                  "(a\ntransaction writes one database).")
DOC_REPLY_CLOSE = ("QUIT, or a protocol error, while replies are dropped closes the connection "
                   "once the replies before it are sent")
DOC_UNKNOWN = "Unknown commands and wrong arity answer exactly as Redis 7.0"
DOC_AUTH = ("before AUTH every command but AUTH, HELLO and QUIT answers "
            "`-NOAUTH Authentication required.`")
DOC_CLIENT_SUBS = ("no PAUSE, UNPAUSE, TRACKING, CACHING, GETREDIR, TRACKINGINFO, "
                   "UNBLOCK or NO-EVICT: `-ERR unknown subcommand`, as Redis answers a name it "
                   "does not know")
DOC_COMMAND_FLAGS = ("Flags are Quire's own (what a node answers while loading or without a "
                     "primary)")
DOC_COMMAND = ("no ACL categories, tips, key specs or doc history; no COMMAND "
               "GETKEYSANDFLAGS")
DOC_COMMAND_ACLCAT = "`COMMAND LIST FILTERBY ACLCAT` answers an empty list"
DOC_SET_ARGS = "The arguments are Redis 7.0's (SET's without the expiration)"
DOC_OTHERS = ("Quire implements the commands listed above; others answer Redis's "
              "unknown-command error,")

# CONFIG GET: the parameters Quire documents, with their documented values.
CONFIG_DOC = {b"save": b"", b"appendonly": b"yes", b"appendfsync": b"always",
              b"databases": b"16", b"maxmemory": b"0", b"replica-read-only": b"yes"}
INFO_DOC_HEADERS = [b"# Server", b"# Clients", b"# Memory", b"# Persistence", b"# Stats",
                    b"# Replication", b"# CPU", b"# Errorstats", b"# Keyspace", b"# Quire"]
INFO_ALL_DOC_HEADERS = (INFO_DOC_HEADERS[:7] + [b"# Commandstats"] + INFO_DOC_HEADERS[7:])
HELLO_KEYS = [b"server", b"version", b"proto", b"id", b"mode", b"role", b"modules"]


def docs_problems():
    try:
        with open(DOCS_PATH, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        return ["cannot read docs/redis.md: %s" % e]
    return ["docs/redis.md no longer says: %s" % d for d in
            (DOC_HELLO, DOC_HELLO_REPLY, DOC_CLIENT, DOC_CLIENT_NAME, DOC_CONFIG, DOC_INFO, DOC_NO,
             DOC_UNKNOWN,
             DOC_AUTH, DOC_CLIENT_SUBS, DOC_COMMAND_FLAGS, DOC_COMMAND, DOC_SET_ARGS,
             DOC_OTHERS, DOC_MEMORY, DOC_MEMORY_SUBS, DOC_COMMAND_ACLCAT, DOC_MULTI,
             DOC_COPY_MULTI, DOC_REPLY_CLOSE)
            if d not in text]


# ---------------------------------------------------------------------------------------
# Cases.

Step = collections.namedtuple("Step", "args how doc")
# how: "exact", "type", or the name of a shape check (CHECKS); doc: None, or a Doc.
Doc = collections.namedtuple("Doc", "check wanted line send")
# check(quire_reply) -> bool; wanted: what docs/redis.md says Quire answers; line: the
# docs line; send: whether redis-server gets the command too (its reply is shown only).
Case = collections.namedtuple("Case", "name steps")
RawCase = collections.namedtuple("RawCase", "name chunks")
PipeCase = collections.namedtuple("PipeCase", "name commands doc", defaults=(None,))
# PipeCase: every command (an argument list, or raw bytes) in one write, then PING end; the
# bytes each server sent until end's reply (or until it closed the connection) compared.
# For replies that are not sent (CLIENT REPLY OFF and SKIP), which a Case cannot wait for.
# doc: None, or (Quire's bytes, how its exchange ends, the docs/redis.md line) for a
# documented difference (then redis-server is not asked).
END_COMMAND = [b"PING", b"end"]
END_REPLY = b"$3\r\nend\r\n"


def b(x):
    return x if isinstance(x, bytes) else x.encode()


def S(*args, how="exact", doc=None):
    return Step([b(a) for a in args], how, doc)


def c_string(x):
    return x.split(b"\0", 1)[0]


def unknown_command(args):
    """Redis 7.0's processCommand text for an unknown command (printf %s: up to a NUL)."""
    rest = b""
    for a in args[1:]:
        if len(rest) >= 128:
            break
        rest += b"'" + c_string(a)[:128 - len(rest)] + b"' "
    return b"ERR unknown command '" + c_string(args[0])[:128] + \
        b"', with args beginning with: " + rest


def doc_reply(reply, line, send=False):
    return Doc(lambda q: q == reply, fmt_reply(reply), line, send)


def doc_error(prefix, line, send=True):
    return Doc(lambda q: q[0] == "error" and q[1].startswith(prefix),
               "an error starting with %r" % prefix, line, send)


def doc_absent(*args, line=DOC_NO):
    """A command docs/redis.md says Quire does not have: Redis's unknown-command error."""
    args = [b(a) for a in args]
    return S(*args, doc=doc_reply(("error", unknown_command(args)), line))


def doc_no_subcommand(container, *args):
    """A subcommand docs/redis.md says Quire does not have: Redis's unknown-subcommand error."""
    args = [b(a) for a in args]
    line = {"CLIENT": DOC_CLIENT_SUBS, "MEMORY": DOC_MEMORY_SUBS}.get(container, DOC_COMMAND)
    text = b"ERR unknown subcommand '" + c_string(args[0])[:128] + b"'. Try " + \
        container.encode() + b" HELP."
    return S(container, *args, doc=doc_reply(("error", text), line, send=True))


NOPROTO = ("error", b"NOPROTO unsupported protocol version")


def cases_nopass():
    cs = []

    def case(name, *steps):
        cs.append(Case(name, list(steps)))

    getname = S("CLIENT", "GETNAME")
    # -- HELLO
    case("HELLO", S("HELLO", how="hello"), S("CLIENT", "ID", how="client_id"), getname)
    case("HELLO 2", S("HELLO", "2", how="hello"), S("CLIENT", "ID", how="client_id"),
         S("PING"))
    case("HELLO 3 (documented: RESP2 only)",
         S("HELLO", "3", doc=doc_reply(NOPROTO, DOC_HELLO)), S("PING"),
         S("HELLO", "3", "SETNAME", "x", doc=doc_reply(NOPROTO, DOC_HELLO)), getname,
         S("HELLO", "3", "FOO", doc=doc_reply(NOPROTO, DOC_HELLO)), S("PING"))
    for v in ("1", "4", "abc", "-1", "0", "02", "2.0", "", " 2", "99999999999999999999"):
        case("HELLO %r" % v, S("HELLO", v), S("PING"))
    case("HELLO 2 SETNAME x", S("HELLO", "2", "SETNAME", "x", how="hello"), getname)
    case("HELLO 2 SETNAME 'a b'", S("HELLO", "2", "SETNAME", "a b"), getname)
    case("HELLO 2 SETNAME (missing)", S("HELLO", "2", "SETNAME"), getname)
    case("HELLO 2 AUTH default x (no password)",
         S("HELLO", "2", "AUTH", "default", "x", how="hello"), getname, S("PING"))
    case("HELLO 2 AUTH default x SETNAME y",
         S("HELLO", "2", "AUTH", "default", "x", "SETNAME", "y", how="hello"), getname)
    case("HELLO 2 AUTH other x", S("HELLO", "2", "AUTH", "other", "x"), S("PING"))
    case("HELLO 2 AUTH (missing)", S("HELLO", "2", "AUTH"), S("HELLO", "2", "AUTH", "default"),
         S("PING"))
    case("HELLO 2 FOO", S("HELLO", "2", "FOO"), S("hello", "2", "foo", "bar"))
    case("HELLO 2 SETNAME a SETNAME b",
         S("HELLO", "2", "SETNAME", "a", "SETNAME", "b", how="hello"), getname)
    case("HELLO 2 SETNAME a FOO (name kept?)", S("HELLO", "2", "SETNAME", "a", "FOO"), getname)
    case("HELLO 2 SETNAME a SETNAME 'b c'", S("HELLO", "2", "SETNAME", "a", "SETNAME", "b c"),
         getname)
    case("HELLO 2 SETNAME 'a b' SETNAME c (an invalid name, then a valid one)",
         S("HELLO", "2", "SETNAME", "a b", "SETNAME", "c", how="hello"), getname)
    case("HELLO 2 AUTH other x AUTH default x (a failing AUTH, then a good one)",
         S("HELLO", "2", "AUTH", "other", "x", "AUTH", "default", "x", how="hello"), getname)
    case("HELLO 2 AUTH default x AUTH other x", S("HELLO", "2", "AUTH", "default", "x", "AUTH",
                                                 "other", "x", how="hello"), getname)
    case("hello, lower case", S("hello", "2", "setname", "lc", how="hello"), getname,
         S("HeLLo", "2", "aUtH", "default", "x", how="hello"))
    case("HELLO option with a NUL / CRLF", S("HELLO", "2", b"a\x00b"),
         S("HELLO", "2", b"a\r\nb"), S("HELLO", b"2\x00"))
    # -- AUTH without a password
    case("AUTH without a password", S("AUTH", "x"), S("AUTH", "default", "x"),
         S("AUTH", "other", "x"), S("AUTH"), S("AUTH", "a", "b", "c"), S("AUTH", "default", ""),
         S("AUTH", ""), S("auth", "DEFAULT", "x"), S("PING"))
    # -- CLIENT
    case("CLIENT SETNAME / GETNAME",
         getname, S("CLIENT", "SETNAME", "x"), getname, S("CLIENT", "SETNAME", ""), getname,
         S("CLIENT", "SETNAME", "name-2"), S("CLIENT", "SETNAME", "a b"), getname,
         S("CLIENT", "SETNAME", "a\nb"), S("CLIENT", "SETNAME", "!~"), getname)
    for name in (b"a\x01", b"\x7f", b"\xc3\xa9", b"a\x00b", b"\t", b"a\r\n", b" ", b"\xff"):
        case("CLIENT SETNAME %r" % name, S("CLIENT", "SETNAME", "before"),
             S("CLIENT", "SETNAME", name), getname)
    case("CLIENT SETNAME long", S("CLIENT", "SETNAME", "n" * 4096), getname)
    case("CLIENT SETNAME too long (documented: Quire's bound)",
         S("CLIENT", "SETNAME", "n" * 4097,
           doc=doc_error(b"ERR Client names are limited to 4096 bytes in Quire", DOC_CLIENT_NAME)))
    case("CLIENT arity",
         S("CLIENT", "SETNAME"), S("CLIENT", "SETNAME", "a", "b"), S("CLIENT", "GETNAME", "x"),
         S("CLIENT", "ID", "x"), S("CLIENT", "INFO", "x"), S("CLIENT"), S("client"),
         S("CLIENT", "HELP", "x"))
    case("CLIENT ID", S("CLIENT", "ID", how="client_id"), S("client", "id", how="client_id"),
         S("Client", "Id", how="client_id"))
    case("CLIENT unknown subcommands",
         S("CLIENT", "FOO"), S("CLIENT", "foo", "bar"), S("CLIENT", ""),
         S("CLIENT", "x" * 200), S("CLIENT", b"a\x00b"), S("CLIENT", b"a\r\nb"),
         S("CLIENT", "SETINFO", "lib-name", "x"), S("PING"))
    case("client, lower and mixed case",
         S("client", "setname", "lower"), S("CLIENT", "getname"), S("cLiEnT", "GetName"),
         S("client", "SETNAME"), S("cLiEnT", "gEtNaMe", "x"))
    case("CLIENT INFO", S("CLIENT", "ID", how="client_id"),
         S("CLIENT", "INFO", how="client_info"), S("CLIENT", "SETNAME", "info-name"),
         S("SELECT", "5"), S("client", "info", how="client_info"))
    case("CLIENT HELP", S("CLIENT", "HELP", how="help"))
    # CLIENT LIST: this connection's line as CLIENT INFO's (the standbys' links are Quire's
    # alone, documented; redis-server has no other client).
    case("CLIENT LIST", S("CLIENT", "ID", how="client_id"), S("CLIENT", "SETNAME", "lister"),
         S("SELECT", "2"), S("CLIENT", "LIST", how="client_list"),
         S("CLIENT", "LIST", "TYPE", "normal", how="client_list"),
         S("client", "list", "type", "NORMAL", how="client_list"),
         S("CLIENT", "LIST", "TYPE", "master"), S("CLIENT", "LIST", "TYPE", "pubsub"),
         S("CLIENT", "LIST", "TYPE", "replica",
           doc=Doc(lambda q: q[0] == "bulk" and all(
               b" flags=S " in line and b" cmd=quire.report " in line
               for line in q[1].split(b"\n")[:-1]) and q[1].count(b"\n") == 2,
               "two lines, flags=S cmd=quire.report (the standbys' links)", DOC_CLIENT, True)))
    case("CLIENT LIST errors", S("CLIENT", "ID", how="client_id"),
         S("CLIENT", "LIST", "TYPE", "bogus"), S("CLIENT", "LIST", "TYPE"),
         S("CLIENT", "LIST", "ID"), S("CLIENT", "LIST", "ID", "x"),
         S("CLIENT", "LIST", "ID", "1", "x"), S("CLIENT", "LIST", "FOO", "bar"),
         S("CLIENT", "LIST", "TYPE", "normal", "x"), S("CLIENT", "LIST", "ID", "999999", "-5"),
         S("CLIENT", "LIST", "TYPE", b"normal\x00x", how="client_list"),
         S("CLIENT", "LIST", "ID", "99999999999999999999"), S("PING"))
    case("CLIENT KILL errors and no match",
         S("CLIENT", "KILL"), S("CLIENT", "KILL", "ID"), S("CLIENT", "KILL", "ID", "0"),
         S("CLIENT", "KILL", "ID", "-1"), S("CLIENT", "KILL", "ID", "x"),
         S("CLIENT", "KILL", "ID", "5", "TYPE"), S("CLIENT", "KILL", "USER", "bob"),
         S("CLIENT", "KILL", "USER", b"default\x00x"), S("CLIENT", "KILL", "TYPE", "x"),
         S("CLIENT", "KILL", "SKIPME", "maybe"), S("CLIENT", "KILL", "FOO", "bar"),
         S("CLIENT", "KILL", "1.2.3.4:5"), S("CLIENT", "KILL", "ID", "999999"),
         S("CLIENT", "KILL", "ADDR", "1.2.3.4:5", "SKIPME", "no"),
         S("CLIENT", "KILL", "LADDR", "1.2.3.4:5"), S("CLIENT", "KILL", "TYPE", "master"),
         S("CLIENT", "KILL", "TYPE", "pubsub", "SKIPME", "yes"), S("PING"))
    # Only this connection is a normal client (SKIPME yes spares it), then it kills itself:
    # the reply comes, then the connection closes.
    case("CLIENT KILL TYPE normal (SKIPME)", S("CLIENT", "KILL", "TYPE", "normal"), S("PING"),
         S("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no"), S("PING"))
    # Subcommands Quire does not implement (documented).
    for sub in (["NO-EVICT", "on"],
                ["NO-EVICT"], ["PAUSE", "10"], ["UNPAUSE"],
                ["TRACKING", "off"], ["CACHING", "yes"], ["GETREDIR"], ["TRACKINGINFO"],
                ["UNBLOCK", "999999"]):
        case("CLIENT %s (documented: none)" % " ".join(sub), doc_no_subcommand("CLIENT", *sub),
             S("PING"))
    # -- MEMORY
    case("MEMORY USAGE", S("SET", "mu", "hello"),
         S("MEMORY", "USAGE", "mu", how="type",
           doc=Doc(lambda q: q == ("int", 17), ":17 (a page entry: 1+2+1+5+8 bytes)", DOC_MEMORY,
                   True)),
         S("MEMORY", "USAGE", "mu", "SAMPLES", "0", how="type",
           doc=Doc(lambda q: q == ("int", 17), ":17", DOC_MEMORY, True)),
         S("MEMORY", "USAGE", "nosuch"), S("MEMORY", "USAGE", "mu", "SAMPLES", "x"),
         S("MEMORY", "USAGE", "mu", "SAMPLES", "-1"), S("MEMORY", "USAGE", "mu", "SAMPLES"),
         S("MEMORY", "USAGE", "mu", "FOO"), S("MEMORY", "USAGE", "nosuch", "FOO"),
         S("memory", "usage", "mu", b"samples\x00x", "5", how="type"),
         S("MEMORY", "USAGE"), S("MEMORY"), S("MEMORY", "HELP", how="help"),
         S("MEMORY", "HELP", "x"), S("MEMORY", "FOO"), S("DEL", "mu"), S("PING"))
    for sub in (["DOCTOR"], ["STATS"], ["MALLOC-STATS"], ["PURGE"]):
        case("MEMORY %s (documented: none)" % sub[0], doc_no_subcommand("MEMORY", *sub),
             S("PING"))
    # -- SELECT with the connection commands
    case("SELECT then HELLO/CLIENT/ECHO",
         S("SELECT", "3"), S("HELLO", "2", how="hello"), S("CLIENT", "ID", how="client_id"),
         S("ECHO", "x"), S("CLIENT", "INFO", how="client_info"), S("SELECT", "16"),
         S("SELECT", "-1"), S("SELECT", "0x1"), S("SELECT", "3 "), S("SELECT"),
         S("CLIENT", "INFO", how="client_info"), S("PING"))
    # -- CONFIG
    case("CONFIG GET",
         S("CONFIG", "GET", "save", how="config"), S("CONFIG", "GET", "appendonly", how="config"),
         S("CONFIG", "GET", "appendfsync", how="config"),
         S("CONFIG", "GET", "databases", how="config"),
         S("CONFIG", "GET", "maxmemory", how="config"),
         S("CONFIG", "GET", "replica-read-only", how="config"),
         S("config", "get", "nosuch", how="config"),
         S("CONFIG", "GET", "save", "appendonly", how="config"),
         S("CONFIG", "GET", "save", "save", how="config"),
         S("CONFIG", "GET", "sav?", how="config"), S("CONFIG", "GET", "APPEND*", how="config"))
    case("CONFIG GET SAVE (name as typed)", S("CONFIG", "GET", "SAVE", how="config"),
         S("CONFIG", "GET", "Appendonly", how="config"))
    case("CONFIG GET *", S("CONFIG", "GET", "*", how="config"))
    case("CONFIG arity and subcommands", S("CONFIG", "GET"), S("CONFIG"), S("CONFIG", "FOO"),
         S("CONFIG", b"a\x00b"), S("CONFIG", "HELP", how="help"), S("PING"))
    case("CONFIG SET (documented: refused)",
         S("CONFIG", "SET", "save", "", doc=doc_error(b"ERR ", DOC_CONFIG)),
         S("CONFIG", "GET", "save", how="config"))
    case("CONFIG RESETSTAT", S("CONFIG", "RESETSTAT"))
    case("CONFIG REWRITE", S("CONFIG", "REWRITE"))
    # -- COMMAND
    case("COMMAND COUNT", S("COMMAND", "COUNT", how="type"), S("COMMAND", "COUNT", "x"))
    case("COMMAND DOCS", S("COMMAND", "DOCS", "get", how="command_docs"),
         S("COMMAND", "DOCS", "nosuch"), S("COMMAND", "DOCS", "GET", "nosuch", "set",
                                           how="command_docs"))
    case("COMMAND INFO", S("COMMAND", "INFO", "get", how="command_info"),
         S("COMMAND", "INFO", "nosuch"), S("COMMAND", "INFO", "GET", "nosuch", "mset",
                                           how="command_info"))
    case("COMMAND (Quire's whole table against Redis's)", S("COMMAND", how="command_info"))
    case("COMMAND subcommands", S("COMMAND", "FOO"), S("command", "foo", "bar"),
         S("COMMAND", b"a\x00b"), S("COMMAND", "COUNT", "x"), S("COMMAND", "HELP", how="help"))
    case("COMMAND GETKEYS",
         S("COMMAND", "GETKEYS", "set", "a", "b"), S("COMMAND", "GETKEYS", "SET", "a", "b", "NX"),
         S("COMMAND", "GETKEYS", "mget", "a", "b"), S("COMMAND", "GETKEYS", "mset", "a", "1", "b", "2"),
         S("COMMAND", "GETKEYS", "mset", "a", "1", "b"), S("COMMAND", "GETKEYS", "msetnx", "a", "1"),
         S("COMMAND", "GETKEYS", "del", "a", "b", "c"), S("COMMAND", "GETKEYS", "rename", "a", "b"),
         S("COMMAND", "GETKEYS", "getex", "k", "persist"),
         S("COMMAND", "GETKEYS", "setrange", "k", "1", "v"),
         S("COMMAND", "GETKEYS", "memory", "usage", "k"),
         S("COMMAND", "GETKEYS", "MEMORY", "USAGE", "k", "SAMPLES", "5"),
         S("COMMAND", "GETKEYS", "get"), S("COMMAND", "GETKEYS"), S("COMMAND", "GETKEYS", "get", "a", "b"),
         S("COMMAND", "GETKEYS", "set", "a"), S("COMMAND", "GETKEYS", "ping", "x"),
         S("COMMAND", "GETKEYS", "scan", "0"), S("COMMAND", "GETKEYS", "keys", "*"),
         S("COMMAND", "GETKEYS", "nosuch", "a"), S("COMMAND", "GETKEYS", "client", "list"),
         S("COMMAND", "GETKEYS", "client", "foo", "x"), S("COMMAND", "GETKEYS", "memory", "usage"),
         S("PING"))
    case("COMMAND GETKEYSANDFLAGS (documented: none)",
         doc_no_subcommand("COMMAND", "GETKEYSANDFLAGS", "set", "a", "b"))
    case("COMMAND LIST", S("COMMAND", "LIST", how="command_list"),
         S("command", "list", "filterby", "pattern", "get*", how="command_list"),
         S("COMMAND", "LIST", "FILTERBY", "PATTERN", "CLIENT|*", how="command_list"),
         S("COMMAND", "LIST", "FILTERBY", "PATTERN", "nosuch*"),
         S("COMMAND", "LIST", "FILTERBY", "MODULE", "nosuch"),
         S("COMMAND", "LIST", "FILTERBY", "ACLCAT", "nosuch"),
         S("COMMAND", "LIST", "FILTERBY", "ACLCAT", "string",
           doc=Doc(lambda q: q[0] == "array" and not q[1], "[] (an empty list)",
                   DOC_COMMAND_ACLCAT, True)),
         S("COMMAND", "LIST", "FILTERBY"), S("COMMAND", "LIST", "FILTERBY", "PATTERN"),
         S("COMMAND", "LIST", "FILTERBY", "FOO", "x"), S("COMMAND", "LIST", "FOO"),
         S("COMMAND", "LIST", "FILTERBY", "PATTERN", "a", "extra"), S("PING"))
    # -- INFO
    case("INFO",
         S("INFO", how="info",
           doc=Doc(lambda q: info_headers(q) == INFO_DOC_HEADERS,
                   " ".join(h.decode() for h in INFO_DOC_HEADERS), DOC_INFO, True)),
         S("INFO", "server", how="info"), S("INFO", "SERVER", how="info"),
         S("INFO", "nosuch"), S("INFO", "server", "clients", how="info"),
         S("INFO", "a", "b", "c"), S("INFO", "clients", "nosuch", how="info"),
         S("INFO", "keyspace", how="info"),
         S("INFO", "default", how="info",
           doc=Doc(lambda q: info_headers(q) == INFO_DOC_HEADERS,
                   " ".join(h.decode() for h in INFO_DOC_HEADERS), DOC_INFO, True)),
         S("INFO", "memory", how="info"), S("INFO", "MEMORY", "clients", how="info"),
         S("INFO", "cpu", how="info"),
         S("INFO", "commandstats", how="info"), S("INFO", "errorstats", how="info"),
         S("INFO", "errorstats", "commandstats", how="info"),
         S("INFO", "all", how="info",
           doc=Doc(lambda q: info_headers(q) == INFO_ALL_DOC_HEADERS,
                   " ".join(h.decode() for h in INFO_ALL_DOC_HEADERS), DOC_INFO, True)))
    # -- WAIT (Quire's cluster has 2 standbys, redis-server none: counts compared by type)
    case("WAIT", S("WAIT", "0", "0", how="type"), S("WAIT"), S("WAIT", "0"),
         S("WAIT", "0", "0", "0"), S("WAIT", "a", "0"), S("WAIT", "0", "a"),
         S("WAIT", "-1", "0", how="type"), S("WAIT", "0", "-1"), S("WAIT", "1", "10", how="type"),
         S("WAIT", "0", "1.5"), S("WAIT", "99999999999999999999", "0"), S("PING"))
    # -- errors, then PING/ECHO
    case("PING/ECHO after errors",
         S("FOO"), S("PING"), S("CLIENT", "SETNAME", "a b"), S("ECHO", "x"), S("AUTH", "x"),
         S("PING", "m"), S("HELLO", "abc"), S("ECHO", "y"), S("WAIT", "0", "-1"), S("PING"),
         S("CONFIG", "GET"), S("ECHO", ""), S("PING", "a", "b"), S("PING"))
    # -- RESET: as Redis 7.0's clearClientConnectionState (database 0, no name, no
    # transaction, nothing watched, replies on), the connection's id kept.
    case("RESET after SELECT", S("SET", "rs:k", "db0"), S("SELECT", "3"),
         S("SET", "rs:k", "db3"), S("RESET"), S("GET", "rs:k"),
         S("CLIENT", "INFO", how="client_info"), S("SELECT", "3"), S("GET", "rs:k"),
         S("DEL", "rs:k"), S("RESET"), S("DEL", "rs:k"), S("GET", "rs:k"))
    case("RESET after CLIENT SETNAME", S("CLIENT", "ID", how="client_id"),
         S("CLIENT", "SETNAME", "before-reset"), getname, S("SELECT", "2"), S("RESET"), getname,
         S("CLIENT", "ID", how="client_id"), S("CLIENT", "INFO", how="client_info"),
         S("RESET"), getname)
    case("RESET after HELLO 2 SETNAME", S("HELLO", "2", "SETNAME", "h", how="hello"),
         S("RESET"), getname, S("HELLO", "2", how="hello"), S("PING"))
    case("RESET inside MULTI", S("DEL", "rs:m"), S("MULTI"), S("SET", "rs:m", "1"),
         S("INCR", "rs:m"), S("RESET"), S("EXEC"), S("GET", "rs:m"), S("DISCARD"),
         S("MULTI"), S("RESET"), S("MULTI"), S("SET", "rs:m", "2"), S("EXEC"),
         S("GET", "rs:m"), S("DEL", "rs:m"))
    case("RESET inside MULTI after a refused command (EXECABORT gone)",
         S("MULTI"), S("NOSUCH", "a"), S("GET"), S("RESET"), S("EXEC"), S("MULTI"),
         S("SET", "rs:m", "3"), S("EXEC"), S("GET", "rs:m"), S("DEL", "rs:m"))
    case("RESET after WATCH, then EXEC (nothing watched any more)",
         S("SET", "rs:w", "1"), S("WATCH", "rs:w"), S("SET", "rs:w", "2"), S("RESET"),
         S("MULTI"), S("GET", "rs:w"), S("EXEC"),
         S("WATCH", "rs:w"), S("RESET"), S("SET", "rs:w", "3"), S("MULTI"), S("INCR", "rs:w"),
         S("EXEC"), S("GET", "rs:w"),
         S("WATCH", "rs:w"), S("MULTI"), S("SET", "rs:w", "x"), S("RESET"),
         S("SET", "rs:w", "5"), S("MULTI"), S("GET", "rs:w"), S("EXEC"),
         S("SELECT", "4"), S("WATCH", "rs:w"), S("RESET"), S("SELECT", "4"),
         S("SET", "rs:w", "db4"), S("MULTI"), S("GET", "rs:w"), S("EXEC"), S("DEL", "rs:w"),
         S("SELECT", "0"), S("WATCH", "rs:w"), S("SET", "rs:w", "6"), S("MULTI"),
         S("GET", "rs:w"), S("EXEC"), S("DEL", "rs:w"))
    case("RESET arity and case", S("RESET", "x"), S("RESET", ""), S("reset"), S("ReSeT"),
         S("RESET", "a", "b"), S("PING"))
    # -- CLIENT REPLY: the forms that answer (OFF and SKIP, which do not: PipeCases)
    case("CLIENT REPLY ON, errors and arity",
         S("CLIENT", "REPLY", "ON"), S("client", "reply", "on"), S("CLIENT", "REPLY", "oN"),
         S("CLIENT", "REPLY", b"on\x00x"), S("CLIENT", "REPLY", "FOO"),
         S("CLIENT", "REPLY", ""), S("CLIENT", "REPLY", "onx"), S("CLIENT", "REPLY", "1"),
         S("CLIENT", "REPLY"), S("CLIENT", "REPLY", "ON", "x"), S("CLIENT", "REPLY", "OFF", "x"),
         S("CLIENT", "REPLY", "SKIP", "x"), S("CLIENT", "reply"), S("PING"))
    # -- commands Quire does not implement (documented)
    case("DEBUG", doc_absent("DEBUG", line=DOC_OTHERS),
         doc_absent("DEBUG", "SLEEP", "0", line=DOC_OTHERS), S("PING"))
    case("SHUTDOWN (safe forms)", doc_absent("SHUTDOWN", "FOO", line=DOC_OTHERS),
         doc_absent("SHUTDOWN", "ABORT", line=DOC_OTHERS), S("PING"))
    # MONITOR: no command after it that runs (its own line would carry a time and a port).
    case("MONITOR", S("PING"), S("MONITOR"), S("GET", "x"), S("SET", "x", "1"),
         S("MONITOR", "x"), S("RESET"))
    # -- MULTI / EXEC / DISCARD
    not_in_multi = Doc(lambda q: q[0] == "error" and q[1].startswith(
        b"ERR Command not allowed inside a transaction"), "-ERR Command not allowed inside a "
        "transaction: ...", DOC_MULTI, True)
    case("MULTI/EXEC", S("DEL", "tx:n", "tx:a", "tx:s", "tx:t"), S("SET", "tx:n", "10"),
         S("EXEC"), S("DISCARD"), S("MULTI"), S("MULTI"), S("INCR", "tx:n"),
         S("SET", "tx:a", "1"), S("APPEND", "tx:a", "2"), S("GET", "tx:a"), S("INCR", "tx:a"),
         S("SET", "tx:s", "text"), S("INCR", "tx:s"), S("RENAME", "tx:s", "tx:t"),
         S("MGET", "tx:n", "tx:a", "tx:s", "tx:t"), S("GETDEL", "tx:n"), S("EXISTS", "tx:n"),
         S("SETNX", "tx:a", "x"), S("INCRBYFLOAT", "tx:a", "0.5"), S("GETRANGE", "tx:a", "0", "1"),
         S("STRLEN", "tx:t"), S("TYPE", "tx:t"), S("TTL", "tx:t"), S("PING"), S("ECHO", "e"),
         S("EXEC"), S("MGET", "tx:n", "tx:a", "tx:s", "tx:t"), S("EXEC"),
         S("DEL", "tx:a", "tx:t"))
    case("MULTI: a refused command aborts EXEC",
         S("MULTI"), S("SET", "tx:x", "1"), S("NOSUCH", "a"), S("GET"), S("EXEC"), S("GET", "tx:x"),
         S("MULTI"), S("SET", "tx:x", "1"), S("CLIENT", "FOO"), S("EXEC"), S("GET", "tx:x"),
         S("MULTI"), S("SET", "tx:x", "1"), S("SET", "tx:x"), S("EXEC"), S("PING"))
    case("MULTI: DISCARD, empty, read-only, QUIT is not queued",
         S("MULTI"), S("SET", "tx:y", "1"), S("DISCARD"), S("GET", "tx:y"), S("MULTI"),
         S("EXEC"), S("MULTI"), S("GET", "tx:y"), S("EXISTS", "tx:y"), S("EXEC"), S("multi"),
         S("exec"), S("MULTI"), S("DISCARD", "x"), S("EXEC", "x"), S("MULTI", "x"), S("DISCARD"),
         S("MULTI"), S("QUIT"))
    case("MULTI: commands Quire does not queue (documented)",
         S("MULTI"), S("SCAN", "0", doc=not_in_multi), S("EXEC", doc=doc_reply(
             ("error", b"EXECABORT Transaction discarded because of previous errors."), DOC_MULTI,
             send=True)),
         S("MULTI"), S("SELECT", "1", doc=not_in_multi), S("DISCARD"), S("PING"))
    # (redis-server runs these transactions: the keys are missing, or only in db 1 after.)
    case("MULTI: MOVE is not queued (documented)",
         S("MULTI"), S("GET", "tx:mv"), S("MOVE", "tx:mv", "1", doc=not_in_multi),
         S("EXEC", doc=doc_reply(
             ("error", b"EXECABORT Transaction discarded because of previous errors."), DOC_MULTI,
             send=True)),
         S("PING"))
    case("MULTI: COPY ... DB <another> answers an error element (documented)",
         S("SET", "tx:cp", "v"), S("MULTI"), S("SET", "tx:cp2", "x"),
         S("COPY", "tx:cp", "tx:cp3", "DB", "1"), S("COPY", "tx:cp", "tx:cp3", "DB", "0"),
         S("COPY", "tx:cp", "tx:cp4", "DB", "16"),
         S("EXEC", doc=Doc(lambda q: q[0] == "array" and len(q[1]) == 4 and
                           q[1][0] == ("simple", b"OK") and q[1][1][0] == "error" and
                           q[1][2] == ("int", 1) and
                           q[1][3] == ("error", b"ERR DB index is out of range"),
                           "[+OK, -ERR ..., :1, -ERR DB index is out of range]",
                           DOC_COPY_MULTI, True)),
         S("GET", "tx:cp3"), S("MGET", "tx:cp", "tx:cp2", "tx:cp4"),
         S("DEL", "tx:cp", "tx:cp2", "tx:cp3"), S("SELECT", "1"),
         S("DEL", "tx:cp3", how="type"), S("SELECT", "0"), S("PING"))
    case("WATCH",
         S("DEL", "tx:w"), S("WATCH", "tx:w"), S("SET", "tx:w", "1"), S("MULTI"),
         S("GET", "tx:w"), S("EXEC"), S("GET", "tx:w"),
         S("WATCH", "tx:w", "tx:w2"), S("MULTI"), S("INCR", "tx:w"), S("EXEC"),
         S("WATCH", "tx:w"), S("UNWATCH"), S("SET", "tx:w", "5"), S("MULTI"), S("EXEC"),
         S("WATCH", "tx:w"), S("SET", "tx:w2", "x"), S("MULTI"), S("GET", "tx:w"), S("EXEC"),
         S("MULTI"), S("WATCH", "tx:w"), S("UNWATCH"), S("SET", "tx:w", "6"), S("EXEC"),
         S("WATCH"), S("UNWATCH", "x"), S("watch", "tx:w"), S("SET", "tx:w", "7", "NX"),
         S("MULTI"), S("EXEC"), S("WATCH", "tx:w"), S("MULTI"), S("DISCARD"),
         S("SET", "tx:w", "8"), S("MULTI"), S("EXEC"), S("DEL", "tx:w", "tx:w2"))
    case("pub/sub (documented: none)", doc_absent("SUBSCRIBE", "ch"),
         doc_absent("PUBLISH", "ch", "m"), doc_absent("PSUBSCRIBE", "c*"), S("PING"))
    case("scripts (documented: none)", doc_absent("EVAL", "return 1", "0"),
         doc_absent("SCRIPT", "FLUSH"), doc_absent("FUNCTION", "LIST"), S("PING"))
    case("TIME", S("TIME", how="time"), S("TIME", "x"), S("PING"))
    # SLOWLOG: both servers log calls of 10 ms or more (none of these); the log's shape.
    case("SLOWLOG", S("SLOWLOG", "RESET"), S("SLOWLOG", "LEN"), S("SLOWLOG", "GET"),
         S("SLOWLOG", "GET", "-1"), S("SLOWLOG", "GET", "-2"), S("SLOWLOG", "GET", "x"),
         S("SLOWLOG", "GET", "1", "2"), S("SLOWLOG", "FOO"), S("SLOWLOG"),
         S("slowlog", "help", how="help"), S("CONFIG", "GET", "slowlog-*", how="config"),
         S("PING"))
    case("ROLE", S("ROLE", how="role"), S("ROLE", "x"), S("PING"))
    case("FLUSHALL", S("FLUSHALL", "FOO"), S("FLUSHALL", "SYNC"), S("DBSIZE"), S("PING"))
    for cmd in (["LASTSAVE"], ["ACL", "WHOAMI"],
                ["SWAPDB", "0", "1"],
                ["LATENCY", "LATEST"], ["READONLY"], ["CLUSTER", "INFO"], ["LOLWUT", "VERSION", "5"]):
        case(" ".join(cmd), doc_absent(*cmd, line=DOC_OTHERS), S("PING"))
    return cs


def C(*args):
    return [b(a) for a in args]


def reply_cases():
    """CLIENT REPLY ON/OFF/SKIP, pipelined (PipeCase)."""
    off, on, skip = C("CLIENT", "REPLY", "OFF"), C("CLIENT", "REPLY", "ON"), \
        C("CLIENT", "REPLY", "SKIP")
    return [
        PipeCase("CLIENT REPLY OFF, then ON", [
            off, C("PING", "a"), C("SET", "cr:k", "v"), C("GET", "cr:k"), C("FOO", "x"),
            C("GET"), C("INCR", "cr:k"), C("CLIENT", "REPLY", "FOO"), C("CLIENT", "REPLY"),
            off, C("CLIENT", "GETNAME"), on, C("GET", "cr:k"), C("DEL", "cr:k"), on]),
        PipeCase("CLIENT REPLY SKIP", [
            skip, C("PING", "a"), C("PING", "b"), skip, C("FOO", "x"), C("PING", "c"), skip,
            C("GET"), C("PING", "d"), skip, C("SET", "cr:s", "1"), C("GET", "cr:s"), skip, skip,
            C("PING", "e"), C("PING", "f"), skip, C("CLIENT", "REPLY", "FOO"), C("DEL", "cr:s")]),
        PipeCase("CLIENT REPLY SKIP, then ON (its +OK sent)", [skip, on, C("PING", "a")]),
        PipeCase("CLIENT REPLY SKIP, then OFF", [skip, off, C("PING", "a"), on, C("PING", "b")]),
        PipeCase("CLIENT REPLY OFF, then SKIP (ignored), then ON", [
            off, skip, C("PING", "a"), on, C("PING", "b"), C("PING", "c")]),
        PipeCase("CLIENT REPLY OFF twice, ON twice", [off, off, C("PING", "a"), on, on]),
        PipeCase("CLIENT REPLY modes: case, NUL, bad", [
            C("CLIENT", "REPLY", "Off"), C("PING", "a"), C("CLIENT", "REPLY", "oN"),
            C("CLIENT", "REPLY", b"skip\x00x"), C("PING", "b"), C("PING", "c"),
            C("client", "reply", b"off\x00"), C("PING", "d"), C("CLIENT", "REPLY", b"on\x00"),
            C("CLIENT", "REPLY", "SKIPX"), C("CLIENT", "REPLY", "")]),
        PipeCase("CLIENT REPLY: wrong arity (not applied)", [
            C("CLIENT", "REPLY"), C("CLIENT", "REPLY", "OFF", "x"), C("PING", "a"),
            C("CLIENT", "REPLY", "SKIP", "x"), C("PING", "b"), C("client", "reply")]),
        PipeCase("CLIENT REPLY OFF, then RESET (replies on)", [
            off, C("PING", "a"), C("CLIENT", "SETNAME", "n"), C("RESET"), C("PING", "b"),
            C("CLIENT", "GETNAME")]),
        PipeCase("CLIENT REPLY SKIP, then RESET (its own reply skipped)", [
            skip, C("RESET"), C("PING", "a")]),
        PipeCase("CLIENT REPLY SKIP, then RESET inside MULTI", [
            C("MULTI"), C("SET", "cr:r", "1"), C("RESET"), skip, C("MULTI"), C("EXEC"),
            C("GET", "cr:r")]),
        PipeCase("CLIENT REPLY SKIP, then MULTI ... EXEC", [
            skip, C("MULTI"), C("SET", "cr:t", "1"), C("INCR", "cr:t"), C("EXEC"),
            skip, C("MULTI"), C("EXEC"), C("MULTI"), C("GET", "cr:t"), C("DEL", "cr:t"),
            C("EXEC")]),
        PipeCase("CLIENT REPLY OFF around MULTI ... EXEC", [
            C("MULTI"), C("SET", "cr:u", "1"), C("EXEC"), off, C("MULTI"), C("INCR", "cr:u"),
            C("FOO"), C("EXEC"), C("MULTI"), C("INCR", "cr:u"), C("EXEC"), on,
            C("GET", "cr:u"), C("DEL", "cr:u")]),
        PipeCase("CLIENT REPLY with SELECT and a write", [
            off, C("SELECT", "5"), C("SET", "cr:d", "5"), on, C("GET", "cr:d"), skip,
            C("SELECT", "0"), C("GET", "cr:d"), C("SELECT", "5"), skip, C("DEL", "cr:d"),
            C("GET", "cr:d"), C("SELECT", "0")]),
        PipeCase("CLIENT REPLY: writes pipelined around OFF and SKIP", [
            C("SET", "cr:p", "1"), off, C("INCR", "cr:p"), C("INCR", "cr:p"), on,
            C("INCR", "cr:p"), skip, C("INCR", "cr:p"), C("INCR", "cr:p"), skip,
            C("SET", "cr:p", "x"), C("APPEND", "cr:p", "y"), off, C("DEL", "cr:p"), on,
            C("EXISTS", "cr:p")]),
        PipeCase("RESET pipelined after writes (SELECT 3, writes, RESET, reads)", [
            C("SELECT", "3"), C("SET", "rs:p", "1"), C("INCR", "rs:p"), C("RESET"),
            C("GET", "rs:p"), C("SELECT", "3"), C("GET", "rs:p"), C("DEL", "rs:p")]),
        PipeCase("RESET pipelined after WATCH and a write to the watched key", [
            C("WATCH", "rs:pw"), C("SET", "rs:pw", "1"), C("RESET"), C("MULTI"),
            C("INCR", "rs:pw"), C("EXEC"), C("WATCH", "rs:pw"), C("SET", "rs:pw", "5"),
            C("MULTI"), C("INCR", "rs:pw"), C("EXEC"), C("GET", "rs:pw"), C("DEL", "rs:pw")]),
        PipeCase("CLIENT REPLY SKIP, inline commands", [
            b"CLIENT REPLY SKIP\r\nPING a\r\nPING b\r\nclient reply off\r\nPING c\r\n"
            b"CLIENT REPLY ON\r\n"]),
        # QUIT or a protocol error with replies off: no +OK or -ERR; the connection closes
        # once the replies still pending are written (redis-server's close comes with its
        # write: with none pending, it keeps the connection open and reads no more; Quire
        # closes it, documented).
        PipeCase("CLIENT REPLY OFF, then QUIT", [off, C("QUIT"), C("PING")],
                 (b"", "closed", DOC_REPLY_CLOSE)),
        PipeCase("CLIENT REPLY SKIP, then QUIT", [skip, C("QUIT"), C("PING")],
                 (b"", "closed", DOC_REPLY_CLOSE)),
        PipeCase("PING, CLIENT REPLY OFF, QUIT (a reply pending)",
                 [C("PING", "a"), off, C("QUIT"), C("PING")]),
        PipeCase("PING, CLIENT REPLY SKIP, QUIT (a reply pending)",
                 [C("PING", "a"), skip, C("QUIT"), C("PING")]),
        PipeCase("CLIENT REPLY SKIP, then a protocol error", [skip, b"*abc\r\n"],
                 (b"", "closed", DOC_REPLY_CLOSE)),
        PipeCase("PING, CLIENT REPLY SKIP, then a protocol error (a reply pending)",
                 [C("PING", "a"), skip, b"*abc\r\n"]),
        PipeCase("CLIENT REPLY OFF, then a protocol error", [off, C("PING", "a"), b"*1\r\n$x\r\n"],
                 (b"", "closed", DOC_REPLY_CLOSE)),
        PipeCase("PING, CLIENT REPLY OFF, then a protocol error (a reply pending)",
                 [C("PING", "a"), off, C("PING", "b"), b"*1\r\n$x\r\n"]),
        PipeCase("CLIENT REPLY ON, then a protocol error", [on, b"*1\r\n$x\r\n"]),
    ]


def raw_cases_nopass():
    q, p = encode([b"QUIT"]), encode([b"PING"])
    return [
        RawCase("QUIT then PING in one write", [q + p]),
        RawCase("QUIT x then PING in one write", [encode([b"QUIT", b"x"]) + p]),
        RawCase("PING, QUIT, ECHO in one write (inline)", [b"PING\r\nQUIT\r\nECHO a\r\n"]),
        RawCase("CLIENT SETNAME then QUIT", [encode([b"CLIENT", b"SETNAME", b"n"]) + q]),
    ] + reply_cases()


def cases_pass():
    pw = PASSWORD
    cs = []

    def case(name, *steps):
        cs.append(Case(name, list(steps)))

    auth = S("AUTH", pw)
    getname = S("CLIENT", "GETNAME")
    noauth_hello = S("HELLO", "2")
    case("before AUTH: NOAUTH, or which error wins",
         S("PING"), S("PING", "x"), S("ECHO", "x"), S("GET", "k"), S("SET", "k", "v"),
         S("SELECT", "1"), S("CLIENT", "ID"), S("CLIENT", "SETNAME", "x"), getname,
         S("CLIENT", "INFO"), S("CONFIG", "GET", "save"), S("INFO"), S("COMMAND", "COUNT"),
         S("DBSIZE"), S("WAIT", "0", "0"),
         # Quire's own command: NOAUTH as documented (redis-server does not have it).
         S("QUIRE.STATUS", doc=doc_reply(("error", b"NOAUTH Authentication required."),
                                         DOC_AUTH)),
         S("FOO"), S("FOO", "bar"),
         S("GET"), S("SELECT"), S("CLIENT"), S("CONFIG"), S("PING", "a", "b"),
         S("CLIENT", "SETNAME"), S("CLIENT", "GETNAME", "x"), S("CLIENT", "FOO"),
         S("CONFIG", "GET"), S("CONFIG", "FOO"), S("COMMAND", "FOO"),
         S("MULTI"), S("EXEC"),
         S("client", "setname"), auth, S("PING"), getname, S("SELECT", "1"))
    case("AUTH wrong / right",
         S("AUTH", "wrong"), S("PING"), S("AUTH", "default", "wrong"), S("AUTH", "other", pw),
         S("AUTH", "other", "wrong"), S("AUTH", ""), S("AUTH", "default", ""), S("PING"),
         auth, S("PING"), S("GET", "k"), S("CLIENT", "ID", how="client_id"),
         S("AUTH", "wrong"), S("PING"), S("AUTH", "other", pw), S("PING"), auth)
    case("AUTH default right", S("AUTH", "default", pw), S("PING"), S("ECHO", "e"),
         S("HELLO", "2", how="hello"), S("CLIENT", "SETNAME", "after"), getname)
    case("AUTH arity", S("AUTH"), S("AUTH", "a", "b", "c"), S("auth"), S("PING"))
    case("AUTH, case of the user", S("AUTH", "DEFAULT", pw), S("PING"), S("AUTH", "Default", pw))
    case("HELLO 2 AUTH default right", S("HELLO", "2", "AUTH", "default", pw, how="hello"),
         getname, S("PING"), S("CLIENT", "ID", how="client_id"))
    case("HELLO 2 AUTH default wrong", S("HELLO", "2", "AUTH", "default", "wrong"), S("PING"),
         S("HELLO", "2", "AUTH", "other", pw), S("PING"),
         S("HELLO", "2", "auth", "default", pw, how="hello"), S("PING"))
    case("HELLO before AUTH", S("HELLO"), noauth_hello, S("HELLO", "2", "SETNAME", "x"),
         S("HELLO", "abc"), S("HELLO", "4"), S("HELLO", "2", "FOO"), S("PING"), auth, getname)
    case("HELLO 2 SETNAME 'a b' before AUTH", S("HELLO", "2", "SETNAME", "a b"), S("PING"))
    case("HELLO 2 SETNAME 'a b' AUTH default wrong (which error?)",
         S("HELLO", "2", "SETNAME", "a b", "AUTH", "default", "wrong"), S("PING"))
    case("HELLO 2 SETNAME x AUTH default wrong (name kept?)",
         S("HELLO", "2", "SETNAME", "x", "AUTH", "default", "wrong"), auth, getname)
    case("HELLO 2 AUTH right SETNAME x",
         S("HELLO", "2", "AUTH", "default", pw, "SETNAME", "x", how="hello"), getname)
    case("HELLO 2 AUTH right SETNAME 'a b' (authenticated after the error?)",
         S("HELLO", "2", "AUTH", "default", pw, "SETNAME", "a b"), S("PING"), getname)
    case("HELLO 2 AUTH wrong SETNAME 'a b' (which error?)",
         S("HELLO", "2", "AUTH", "default", "wrong", "SETNAME", "a b"), S("PING"))
    case("HELLO 2 AUTH right FOO", S("HELLO", "2", "AUTH", "default", pw, "FOO"), S("PING"))
    case("HELLO abc AUTH right", S("HELLO", "abc", "AUTH", "default", pw), S("PING"))
    case("HELLO 3 AUTH default right (documented: RESP2 only)",
         S("HELLO", "3", "AUTH", "default", pw, doc=doc_reply(NOPROTO, DOC_HELLO)), S("PING"))
    case("RESET: NOAUTH after it", auth, S("SET", "pw-r", "v"), S("PING"), S("RESET"),
         S("PING"), S("GET", "pw-r"), S("CLIENT", "SETNAME", "x"), S("SELECT", "1"),
         S("RESET"), S("AUTH", "wrong"), S("PING"), auth, S("GET", "pw-r"), S("DEL", "pw-r"),
         S("RESET"), S("PING"))
    case("RESET before AUTH", S("RESET"), S("PING"), S("reset"), S("RESET", "x"),
         auth, S("PING"), S("RESET"), S("ECHO", "e"))
    case("RESET after AUTH, SELECT, SETNAME", auth, S("SELECT", "2"),
         S("CLIENT", "SETNAME", "named"), S("CLIENT", "ID", how="client_id"), S("RESET"),
         getname, auth, getname, S("CLIENT", "ID", how="client_id"),
         S("CLIENT", "INFO", how="client_info"))
    case("RESET after HELLO 2 AUTH", S("HELLO", "2", "AUTH", "default", pw, "SETNAME", "h",
                                      how="hello"),
         S("RESET"), S("PING"), S("HELLO", "2", "AUTH", "default", pw, how="hello"), getname)
    case("RESET inside MULTI (password)", auth, S("DEL", "pw-m"), S("MULTI"),
         S("SET", "pw-m", "1"), S("RESET"), S("EXEC"), S("MULTI"), auth, S("EXEC"),
         S("GET", "pw-m"))
    case("RESET after WATCH (password)", auth, S("SET", "pw-w", "1"), S("WATCH", "pw-w"),
         S("SET", "pw-w", "2"), S("RESET"), auth, S("MULTI"), S("GET", "pw-w"), S("EXEC"),
         S("DEL", "pw-w"))
    case("after AUTH", auth, S("SET", "pw-k", "v"), S("GET", "pw-k"), S("DEL", "pw-k"),
         S("SELECT", "2"), S("CLIENT", "INFO", how="client_info"),
         S("CONFIG", "GET", "save", how="config"), S("INFO", "server", how="info"),
         S("WAIT", "0", "0", how="type"), S("COMMAND", "COUNT", how="type"))
    return cs


def raw_cases_pass():
    pw = PASSWORD
    ping = encode([b"PING"])
    return [
        RawCase("inline AUTH right", [b"AUTH " + pw + b"\r\nPING\r\n"]),
        RawCase("inline AUTH default right", [b"AUTH default " + pw + b"\r\nPING\r\n"]),
        RawCase("inline AUTH wrong", [b"AUTH wrong\r\nPING\r\n"]),
        RawCase("inline AUTH quoted", [b'AUTH "' + pw + b'"\r\nPING\r\n']),
        RawCase("pipelined: PING, AUTH, PING", [ping + encode([b"AUTH", pw]) + ping]),
        RawCase("QUIT before AUTH", [encode([b"QUIT"]) + ping]),
        RawCase("unauthenticated: 11 elements", [encode([b"MGET"] + [b"k"] * 10) + ping]),
        RawCase("unauthenticated: 10 elements", [encode([b"MGET"] + [b"k"] * 9) + ping]),
        RawCase("unauthenticated: bulk of 16385 bytes",
                [encode([b"ECHO", b"x" * 16385]) + ping]),
        RawCase("unauthenticated: bulk of 16384 bytes",
                [encode([b"ECHO", b"x" * 16384]) + ping]),
        RawCase("authenticated: 11 elements and a big bulk",
                [encode([b"AUTH", pw]), encode([b"MGET"] + [b"k"] * 10) +
                 encode([b"ECHO", b"y" * 20000])]),
        RawCase("AUTH then 11 elements in the same write",
                [encode([b"AUTH", pw]) + encode([b"MGET"] + [b"k"] * 10)]),
        PipeCase("AUTH, RESET, then 11 elements (unauthenticated again)",
                 [C("AUTH", pw), C("RESET"), C("MGET", *[b"k"] * 10)]),
        PipeCase("AUTH, RESET, then a bulk of 16385 bytes",
                 [C("AUTH", pw), C("RESET"), C("ECHO", b"x" * 16385)]),
        PipeCase("CLIENT REPLY before AUTH (NOAUTH, not applied)", [
            C("CLIENT", "REPLY", "OFF"), C("PING"), C("CLIENT", "REPLY", "SKIP"), C("PING"),
            C("CLIENT", "REPLY", "FOO"), C("AUTH", pw), C("PING", "a")]),
        PipeCase("CLIENT REPLY OFF after AUTH, then RESET (replies on, NOAUTH)", [
            C("AUTH", pw), C("CLIENT", "REPLY", "OFF"), C("SET", "pw-cr", "v"),
            C("AUTH", "wrong"), C("RESET"), C("PING"), C("CLIENT", "REPLY", "OFF"),
            C("AUTH", pw), C("GET", "pw-cr"), C("DEL", "pw-cr")]),
        PipeCase("CLIENT REPLY SKIP, then a wrong AUTH", [
            C("AUTH", pw), C("CLIENT", "REPLY", "SKIP"), C("AUTH", "wrong"), C("PING", "a"),
            C("CLIENT", "REPLY", "SKIP"), C("RESET"), C("PING", "b"), C("AUTH", pw)]),
    ]


# ---------------------------------------------------------------------------------------
# Shape checks: each returns a list of problems (empty: alike); "note: ..." lines are
# shown but are not differences.


def info_headers(r):
    if r is None or r[0] != "bulk":
        return None
    return [ln for ln in r[1].split(b"\r\n") if ln.startswith(b"# ")]


def info_fields(r):
    out = {}
    for ln in r[1].split(b"\r\n"):
        if b":" in ln and not ln.startswith(b"#"):
            k, v = ln.split(b":", 1)
            out[k] = v
    return out


def check_exact(rr, qr, cr, cq):
    return [] if rr == qr else ["replies differ"]


def check_type(rr, qr, cr, cq):
    if rr[0] == "error" or qr[0] == "error":
        return check_exact(rr, qr, cr, cq)
    return [] if rr[0] == qr[0] else ["reply types differ"]


def check_hello(rr, qr, cr, cq):
    if rr[0] == "error" or qr[0] == "error":
        return check_exact(rr, qr, cr, cq)
    probs = []
    maps = []
    for who, r, ctx in (("redis", rr, cr), ("quire", qr, cq)):
        if r[0] != "array" or len(r[1]) != 14:
            probs.append("%s: not an array of 14 elements" % who)
            continue
        keys = [x[1] if x[0] == "bulk" else x for x in r[1][0::2]]
        if keys != HELLO_KEYS:
            probs.append("%s: keys %s, wanted %s" % (who, keys, HELLO_KEYS))
            continue
        m = dict(zip(keys, r[1][1::2]))
        if m[b"id"][0] != "int":
            probs.append("%s: id is %s, not an integer" % (who, fmt_reply(m[b"id"])))
        else:
            ctx.setdefault("ids", []).append(m[b"id"][1])
        maps.append(m)
    if len(maps) == 2:
        rm, qm = maps
        for k in (b"proto", b"mode", b"role", b"modules", b"server"):
            if rm[k] != qm[k]:
                probs.append("%s: redis %s, quire %s" % (k.decode(), fmt_reply(rm[k]),
                                                         fmt_reply(qm[k])))
        if qm[b"version"] != ("bulk", b"7.0.15"):  # DOC_HELLO_REPLY
            probs.append("version: quire %s, docs/redis.md 7.0.15" % fmt_reply(qm[b"version"]))
        elif rm[b"version"] != qm[b"version"]:
            probs.append("note: version: redis %s, quire %s (documented)" % (
                fmt_reply(rm[b"version"]), fmt_reply(qm[b"version"])))
    return probs


def check_client_id(rr, qr, cr, cq):
    probs = check_type(rr, qr, cr, cq)
    if probs or rr[0] != "int":
        return probs or ([] if rr == qr else ["replies differ"])
    for who, r, ctx in (("redis", rr, cr), ("quire", qr, cq)):
        ids = ctx.setdefault("ids", [])
        if ids and ids[-1] != r[1]:
            probs.append("%s: CLIENT ID %d, but this connection's earlier id was %d" % (
                who, r[1], ids[-1]))
        ids.append(r[1])
    return probs


CLIENT_INFO_SAME = [b"name", b"flags", b"db", b"sub", b"psub", b"ssub", b"multi", b"events",
                    b"cmd", b"user", b"redir", b"resp", b"obl", b"oll", b"multi-mem"]


def parse_client_info(text):
    """[(key, value)] of one CLIENT INFO line (`k=v` separated by blanks, ends in \\n)."""
    out = []
    for part in text.rstrip(b"\n").split(b" "):
        k, _, v = part.partition(b"=")
        out.append((k, v))
    return out


def check_client_info(rr, qr, cr, cq):
    if rr[0] != "bulk" or qr[0] != "bulk":
        return check_exact(rr, qr, cr, cq)
    probs = []
    for who, r in (("redis", rr), ("quire", qr)):
        if not r[1].endswith(b"\n") or r[1].count(b"\n") != 1:
            probs.append("%s: not one line ending in \\n" % who)
    rf, qf = parse_client_info(rr[1]), parse_client_info(qr[1])
    rk, qk = [k for k, _ in rf], [k for k, _ in qf]
    if rk != qk:
        probs.append("fields differ: only redis %s; only quire %s; redis order %s; quire %s" % (
            [k.decode() for k in rk if k not in qk], [k.decode() for k in qk if k not in rk],
            b" ".join(rk).decode(), b" ".join(qk).decode()))
    rd, qd = dict(rf), dict(qf)
    for k in CLIENT_INFO_SAME:
        if k in rd and k in qd and rd[k] != qd[k]:
            probs.append("%s=: redis %r, quire %r" % (k.decode(), rd[k], qd[k]))
    for k in (b"addr", b"laddr"):
        for who, d in (("redis", rd), ("quire", qd)):
            if k in d and not re.fullmatch(rb"[0-9.]+:[0-9]+", d[k]):
                probs.append("%s: %s=%r is not ip:port" % (who, k.decode(), d[k]))
    for who, d, ctx in (("redis", rd, cr), ("quire", qd, cq)):
        ids = ctx.get("ids")
        if ids and d.get(b"id") != str(ids[-1]).encode():
            probs.append("%s: id=%r, but CLIENT ID/HELLO said %d" % (who, d.get(b"id"), ids[-1]))
    return probs


def check_client_list(rr, qr, cr, cq):
    """CLIENT LIST: lines of CLIENT INFO's form; this connection's own line (by the id CLIENT
    ID gave) compared as CLIENT INFO. Other clients may differ (Quire's standby links)."""
    if rr[0] != "bulk" or qr[0] != "bulk":
        return check_exact(rr, qr, cr, cq)
    probs = []
    own = {}
    for who, r, ctx in (("redis", rr, cr), ("quire", qr, cq)):
        if r[1] and not r[1].endswith(b"\n"):
            probs.append("%s: does not end in \\n" % who)
        ids = ctx.get("ids")
        if not ids:
            probs.append("%s: no CLIENT ID before CLIENT LIST" % who)
            continue
        mine = [line for line in r[1].split(b"\n")[:-1]
                if line.startswith(b"id=%d " % ids[-1])]
        if len(mine) != 1:
            probs.append("%s: %d lines for this connection (id %d)" % (who, len(mine), ids[-1]))
        else:
            own[who] = ("bulk", mine[0] + b"\n")
    if len(own) == 2:
        probs += check_client_info(own["redis"], own["quire"], cr, cq)
    return probs


def check_help(rr, qr, cr, cq):
    if rr[0] == "error" or qr[0] == "error":
        return check_exact(rr, qr, cr, cq)
    probs = []
    for who, r in (("redis", rr), ("quire", qr)):
        if r[0] != "array" or not r[1] or any(x[0] != "simple" for x in r[1]):
            probs.append("%s: not a non-empty array of simple strings" % who)
    if not probs and rr[1][0] != qr[1][0]:
        probs.append("note: first line: redis %r, quire %r" % (rr[1][0][1], qr[1][0][1]))
    return probs


def pairs(r):
    """A flat array of bulk name, value pairs as [(name, value)], or None."""
    if r[0] != "array" or len(r[1]) % 2 or any(x[0] != "bulk" for x in r[1]):
        return None
    return [(r[1][i][1], r[1][i + 1][1]) for i in range(0, len(r[1]), 2)]


def check_config(rr, qr, cr, cq):
    if rr[0] == "error" or qr[0] == "error":
        return check_exact(rr, qr, cr, cq)
    rp, qp = pairs(rr), pairs(qr)
    if rp is None or qp is None:
        return ["not a flat array of name, value bulks: redis %s, quire %s" % (
            "ok" if rp is not None else "bad", "ok" if qp is not None else "bad")]
    probs = []
    qd = dict(qp)
    if len(qd) != len(qp):
        probs.append("quire names a parameter twice")
    # What Quire should answer: for a documented parameter its documented value, for
    # another one Quire answers Redis's value, nothing else (docs: anything else empty).
    want = {}
    for k, v in rp:
        if k.lower() in CONFIG_DOC:
            want[k] = CONFIG_DOC[k.lower()]
        elif k in qd:
            want[k] = v
    for k in sorted(set(want) | set(qd)):
        if k not in qd:
            probs.append("%r: redis answers it, quire does not" % k)
        elif k not in want:
            probs.append("%r: quire answers it (%r), redis does not" % (k, qd[k]))
        elif qd[k] != want[k]:
            probs.append("%r: quire %r, wanted %r" % (k, qd[k], want[k]))
    rd = dict(rp)
    notes = ["note: %s: redis %r, quire %r (documented value)" % (k.decode(), rd[k], qd[k])
             for k in sorted(want) if k in qd and k in rd and rd[k] != qd[k] and
             qd[k] == want[k]]
    return probs + notes


INFO_FIELDS = ["name", "arity", "flags", "first key", "last key", "key step",
               "ACL categories", "tips", "key specs", "subcommands"]


def entry_name(e):
    if e[0] == "array" and e[1] and e[1][0][0] == "bulk":
        return e[1][0][1]
    return None


def entry_problems(re_, qe):
    """COMMAND INFO entries of one command: [(field, redis text, quire text)]."""
    if re_[0] != "array" or qe[0] != "array" or len(re_[1]) != 10 or len(qe[1]) != 10:
        return [("entry", fmt_reply(re_), fmt_reply(qe))]
    out = []
    for i, field in enumerate(INFO_FIELDS):
        a, c = re_[1][i], qe[1][i]
        if field == "flags" and a[0] == c[0] == "array":
            # Documented (DOC_COMMAND_FLAGS): Quire's own flags; write and readonly agree.
            sa, sc = {x[1] for x in a[1]}, {x[1] for x in c[1]}
            for f in (b"write", b"readonly"):
                if (f in sa) != (f in sc):
                    out.append((field + " " + f.decode(), b",".join(sorted(sa)).decode(),
                                b",".join(sorted(sc)).decode()))
        elif field.lower() in ("acl categories", "tips", "key specs"):
            # Documented (DOC_COMMAND): none.
            if c != ("array", ()):
                out.append((field, fmt_reply(a)[:160], fmt_reply(c)[:160]))
        elif field == "subcommands" and a[0] == c[0] == "array":
            # Documented (DOC_CLIENT_SUBS, DOC_COMMAND): some; each as Redis's.
            ra = {entry_name(x): x for x in a[1]}
            for x in c[1]:
                name = entry_name(x)
                if name not in ra:
                    out.append((field, "none named %r" % name, fmt_reply(x)[:160]))
                else:
                    out += [("%s %s" % (name.decode(), f), ra_, qa)
                            for f, ra_, qa in entry_problems(ra[name], x)]
        elif a != c:
            out.append((field, fmt_reply(a)[:160], fmt_reply(c)[:160]))
    return out


def check_command_info(rr, qr, cr, cq):
    if rr[0] != "array" or qr[0] != "array":
        return check_exact(rr, qr, cr, cq)
    probs = []
    by_field = collections.OrderedDict()
    if len(rr[1]) == len(qr[1]) and len(rr[1]) < 20:  # COMMAND INFO names...: by position
        items = list(zip(rr[1], qr[1]))
    else:  # COMMAND: every Quire command with Redis's entry of that name
        rmap = {entry_name(e): e for e in rr[1]}
        items = []
        for qe in qr[1]:
            name = entry_name(qe)
            if name is None:
                probs.append("quire: an entry without a name: %s" % fmt_reply(qe))
            elif name.startswith(b"quire."):
                continue  # Quire's own (docs/redis.md, Commands)
            elif name not in rmap:
                probs.append("quire: %r, a command redis-server does not have" % name)
            else:
                items.append((rmap[name], qe))
    for re_, qe in items:
        if re_ in (("nil",), ("nilarray",)) or qe in (("nil",), ("nilarray",)):
            if re_ != qe:
                probs.append("an unknown command's entry: redis %s, quire %s" % (
                    fmt_reply(re_), fmt_reply(qe)))
            continue
        name = (entry_name(re_) or b"?").decode()
        for field, a, c in entry_problems(re_, qe):
            by_field.setdefault(field, []).append("%s (redis %s; quire %s)" % (name, a, c))
    for field, items_ in by_field.items():
        probs.append("%s differ for %d command(s): %s" % (field, len(items_),
                                                          "; ".join(items_)))
    return probs


def without_expiration(args):
    """SET's arguments as docs/redis.md documents Quire's (DOC_SET_ARGS): Redis's without
    the expiration."""
    return ("array", tuple(a for a in args[1]
                           if not (a[0] == "array" and a[1][:2] == (("bulk", b"name"),
                                                                     ("bulk", b"expiration")))))


def arguments_problems(name, rm, qm):
    """COMMAND DOCS arguments (what redis-cli's help and hints come from): Quire's must be
    Redis's, and so must those of each subcommand Quire has."""
    probs = []
    ra, qa = rm.get(b"arguments"), qm.get(b"arguments")
    if name == b"set" and ra is not None:
        ra = without_expiration(ra)
    if ra != qa:
        probs.append("%r arguments: redis %s, quire %s" % (
            name, fmt_reply(ra)[:300] if ra else None, fmt_reply(qa)[:300] if qa else None))
    rs, qs = rm.get(b"subcommands"), qm.get(b"subcommands")
    if qs is not None:
        rsub = {} if rs is None else {rs[1][i][1]: rs[1][i + 1] for i in range(0, len(rs[1]), 2)}
        for i in range(0, len(qs[1]), 2):
            sub, doc = qs[1][i][1], qs[1][i + 1]
            if sub not in rsub:
                probs.append("%r: a subcommand redis-server does not have" % sub)
                continue
            pairs = lambda d: {d[1][j][1]: d[1][j + 1] for j in range(0, len(d[1]), 2)}
            probs += arguments_problems(sub, pairs(rsub[sub]), pairs(doc))
    return probs


def check_command_docs(rr, qr, cr, cq):
    if rr[0] == "error" or qr[0] == "error":
        return check_exact(rr, qr, cr, cq)
    rp = rr[1] if rr[0] == "array" else None
    qp = qr[1] if qr[0] == "array" else None
    if rp is None or qp is None or len(rp) % 2 or len(qp) % 2:
        return ["not a flat array of name, docs pairs"]
    rd = {rp[i][1]: rp[i + 1] for i in range(0, len(rp), 2)}
    qd = {qp[i][1]: qp[i + 1] for i in range(0, len(qp), 2)}
    probs = []
    if sorted(rd) != sorted(qd):
        probs.append("commands: redis %s, quire %s" % (sorted(rd), sorted(qd)))
    for name in sorted(set(rd) & set(qd)):
        qpairs = qd[name][1] if qd[name][0] == "array" else None
        if qpairs is None or len(qpairs) % 2:
            probs.append("%r: quire's docs are not a name, value array" % name)
            continue
        qm = {qpairs[i][1]: qpairs[i + 1] for i in range(0, len(qpairs), 2)}
        rpairs = rd[name][1]
        rm = {rpairs[i][1]: rpairs[i + 1] for i in range(0, len(rpairs), 2)}
        # Documented (DOC_COMMAND): no history.
        missing = [k.decode() for k in rm if k not in qm and k != b"history"]
        extra = [k.decode() for k in qm if k not in rm]
        probs += arguments_problems(name, rm, qm)
        if missing or extra:
            probs.append("%r: fields only redis has: %s; only quire: %s" % (name, missing,
                                                                            extra))
        for k in (b"since", b"group"):
            if k in rm and k in qm and rm[k] != qm[k]:
                probs.append("%r %s: redis %s, quire %s" % (name, k.decode(),
                                                            fmt_reply(rm[k]), fmt_reply(qm[k])))
        if b"summary" in rm and b"summary" in qm and rm[b"summary"] != qm[b"summary"]:
            probs.append("note: %r summary: redis %r, quire %r" % (
                name, rm[b"summary"][1], qm[b"summary"][1]))
    return probs


def check_time(rr, qr, cr, cq):
    """TIME: two bulk strings, seconds and microseconds, within 5 s of redis-server's."""
    def parse(r):
        if r[0] != "array" or len(r[1]) != 2 or any(x[0] != "bulk" for x in r[1]):
            return None
        try:
            return int(r[1][0][1]), int(r[1][1][1])
        except ValueError:
            return None
    a, c = parse(rr), parse(qr)
    if a is None or c is None:
        return check_exact(rr, qr, cr, cq)
    if not 0 <= c[1] < 1000000:
        return ["quire's microseconds %d are not within 0..999999" % c[1]]
    return [] if abs(a[0] - c[0]) <= 5 else ["seconds: redis %d, quire %d" % (a[0], c[0])]


def check_role(rr, qr, cr, cq):
    """ROLE on a primary: master, an integer offset, an array of [host, port, offset] bulk
    triples (redis-server has no replicas; Quire's primary has two standbys)."""
    if rr[0] == "error" or qr[0] == "error":
        return check_exact(rr, qr, cr, cq)
    if qr[0] != "array" or len(qr[1]) != 3 or qr[1][0] != ("bulk", b"master") or \
            qr[1][1][0] != "int" or qr[1][2][0] != "array":
        return ["not master, offset, replicas: %s" % fmt_reply(qr)]
    if rr[1][0] != qr[1][0] or rr[1][1][0] != qr[1][1][0]:
        return ["shape differs from redis-server's %s" % fmt_reply(rr)]
    for t in qr[1][2][1]:
        if t[0] != "array" or len(t[1]) != 3 or any(x[0] != "bulk" for x in t[1]):
            return ["a replica entry is not three bulk strings: %s" % fmt_reply(t)]
    return []


def check_command_list(rr, qr, cr, cq):
    if rr[0] != "array" or qr[0] != "array":
        return check_exact(rr, qr, cr, cq)
    rn = {x[1] for x in rr[1]}
    qn = {x[1] for x in qr[1]}
    extra = sorted(n for n in qn - rn if not n.startswith(b"quire."))
    return ["quire lists commands redis-server does not have: %s" % extra] if extra else []


def check_info(rr, qr, cr, cq):
    if rr[0] != "bulk" or qr[0] != "bulk":
        return check_exact(rr, qr, cr, cq)
    rh, qh = info_headers(rr), info_headers(qr)
    probs = []
    if rh != qh:
        probs.append("sections: redis %s; quire %s" % (b" ".join(rh).decode(),
                                                      b" ".join(qh).decode()))
    rf, qf = info_fields(rr), info_fields(qr)
    for k in (b"redis_version", b"redis_mode"):
        if k in rf and rf.get(k) != qf.get(k):
            probs.append("%s: redis %r, quire %r" % (k.decode(), rf.get(k), qf.get(k)))
    return probs


CHECKS = {"exact": check_exact, "type": check_type, "hello": check_hello,
          "client_id": check_client_id, "client_info": check_client_info,
          "client_list": check_client_list, "help": check_help,
          "config": check_config, "command_info": check_command_info,
          "command_docs": check_command_docs, "command_list": check_command_list,
          "info": check_info, "time": check_time, "role": check_role}


# ---------------------------------------------------------------------------------------
# Running the cases.


class Report:
    def __init__(self):
        self.failures = []  # (case, step index, sent, rr, qr, problems)
        self.documented = []  # (case, command, quire reply, wanted, line)
        self.notes = []  # (case, command, note)
        self.steps = 0
        self.compared = 0
        self.cases = 0

    def fail(self, mode, case, i, sent, rr, qr, probs):
        self.failures.append(("%s: %s" % (mode, case), i, sent, rr, qr, probs))


def brief(how, r):
    """A reply as the report shows a documented one (INFO: its section headers)."""
    if r is None or isinstance(r, str):
        return r
    if how == "info" and r[0] == "bulk":
        return "$<%s>" % b" ".join(info_headers(r)).decode()
    return fmt_reply(r)


def reply_or_error(conn, args):
    try:
        return conn.call(*args), None
    except (OSError, ProtocolError) as e:
        return "<connection: %s: %s>" % (type(e).__name__, e), e


def run_case(mode, case, rport, qport, rep):
    rep.cases += 1
    r, q = Resp(rport, timeout=5), Resp(qport, timeout=5)
    cr, cq = {}, {}
    sent = []
    try:
        for i, st in enumerate(case.steps):
            sent.append(st.args)
            rep.steps += 1
            send_r = st.doc is None or st.doc.send
            rr, rerr = reply_or_error(r, st.args) if send_r else (None, None)
            qr, qerr = reply_or_error(q, st.args)
            if st.doc is not None:
                ok = not isinstance(qr, str) and st.doc.check(qr)
                probs = [] if ok else ["wanted (docs/redis.md): %s" % st.doc.wanted]
                if ok:
                    rep.documented.append(("%s: %s" % (mode, case.name), st.args,
                                           brief(st.how, qr), brief(st.how, rr), st.doc.line))
                else:
                    rep.fail(mode, case.name, i, list(sent), rr, qr, probs)
            else:
                rep.compared += 1
                if isinstance(rr, str) or isinstance(qr, str):
                    probs = [] if rr == qr else ["a connection failed"]
                else:
                    probs = CHECKS[st.how](rr, qr, cr, cq)
                real = [p for p in probs if not p.startswith("note: ")]
                for p in probs:
                    if p.startswith("note: "):
                        rep.notes.append(("%s: %s" % (mode, case.name), st.args, p[6:]))
                if real:
                    rep.fail(mode, case.name, i, list(sent), rr, qr, real)
            if rerr or qerr:
                break  # the rest of the case is not comparable
    finally:
        r.close()
        q.close()


def run_raw_case(mode, rc, rport, qport, rep):
    rep.cases += 1
    rep.steps += 1
    rep.compared += 1
    (rd, rclosed, rhow), (qd, qclosed, qhow) = rpt.exchange(rpt.case(rc.name, *rc.chunks),
                                                            [rport, qport])
    if rd != qd or rclosed != qclosed:
        rep.fail(mode, rc.name, 0, [b" | ".join(rc.chunks)],
                 "%s (%s)" % (rdt.short(rd, 300), rhow), "%s (%s)" % (rdt.short(qd, 300), qhow),
                 ["bytes or close differ (raw bytes sent)"])


def pipelined_exchange(port, data, timeout=2.0):
    """Sends data in one write and reads until the end marker's reply, the connection's
    close or the timeout: (bytes received, how it ended)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got = bytearray()
    how = "timeout (no reply to PING end)"
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.sendall(data)
        except OSError:  # closed while we wrote: what it sent is still read
            pass
        until = time.monotonic() + timeout
        while True:
            if got.endswith(END_REPLY):
                how = "end"
                break
            left = until - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                chunk = sock.recv(1 << 16)
            except socket.timeout:
                break
            except OSError:  # a reset: closed with our bytes unread (Redis does so)
                how = "closed"
                break
            if not chunk:
                how = "closed"
                break
            got += chunk
    finally:
        sock.close()
    return bytes(got), how


def run_pipe_case(mode, pc, rport, qport, rep):
    rep.cases += 1
    rep.steps += 1
    rep.compared += 1
    cmds = list(pc.commands) + [END_COMMAND]
    data = b"".join(c if isinstance(c, bytes) else encode(c) for c in cmds)
    if pc.doc is not None:
        (rd, rhow), (qd, qhow) = ("<not sent>", ""), pipelined_exchange(qport, data)
        wanted, wanted_how, line = pc.doc
        if (qd, qhow) == (wanted, wanted_how):
            rep.documented.append(("%s: %s" % (mode, pc.name), [b"(pipelined)"],
                                   "%s (%s)" % (rdt.short(qd, 100), qhow), None, line))
            return
        probs = ["wanted (docs/redis.md): %s (%s)" % (rdt.short(wanted, 300), wanted_how)]
    else:
        (rd, rhow), (qd, qhow) = (pipelined_exchange(p, data) for p in (rport, qport))
        probs = []
        if (rd, rhow) != (qd, qhow):
            probs.append("bytes or how the exchange ended differ (one write, then PING end)")
        if rhow.startswith("timeout") or qhow.startswith("timeout"):
            probs.append("no reply to PING end, no close (a server keeps it open and silent?)")

    def shown(d, how):
        if isinstance(d, str):
            return d
        parts = rpt.split_replies(d)
        text = " | ".join(rdt.short(x, 80) for x in parts) if parts is not None else \
            rdt.short(d, 300)
        return "%s (%s)" % (text, how)
    if probs:
        rep.fail(mode, pc.name, len(cmds) - 1, cmds, shown(rd, rhow),
                 shown(qd, qhow), probs)


def run_mode(mode, cases, raw_cases, rport, qport, rep, only):
    t = time.monotonic()
    n = 0
    for c in cases:
        if only and only not in c.name:
            continue
        n += 1
        run_case(mode, c, rport, qport, rep)
    for rc in raw_cases:
        if only and only not in rc.name:
            continue
        n += 1
        if isinstance(rc, PipeCase):
            run_pipe_case(mode, rc, rport, qport, rep)
        else:
            run_raw_case(mode, rc, rport, qport, rep)
    log("%s: %d cases in %.1f s" % (mode, n, time.monotonic() - t))


def fmt_sent(args):
    if isinstance(args, bytes):
        return rdt.short(args, 300)
    return fmt_cmd(args)


def summarise(rep, skipped):
    for case, args, qr, rr, line in rep.documented:
        log("documented difference accepted: [%s] %s -> quire %s%s (docs/redis.md: %s)" % (
            case, fmt_cmd(args), qr, "" if rr is None else ", redis %s" % rr, line))
    for case, args, note in rep.notes:
        log("note: [%s] %s: %s" % (case, fmt_cmd(args), note))
    log("%d cases, %d steps (%d compared with redis-server, %d documented)%s" % (
        rep.cases, rep.steps, rep.compared, len(rep.documented),
        "; PASSWORD CASES SKIPPED: %s" % skipped if skipped else ""))
    if not rep.failures:
        return True
    groups = collections.OrderedDict()  # the same difference in several cases: once
    for f in rep.failures:
        case, i, sent, rr, qr, probs = f
        sig = tuple(probs)
        if probs == ["replies differ"] or probs[0].startswith("bytes"):
            sig += (fmt_reply(rr), fmt_reply(qr))
        groups.setdefault(sig, []).append(f)
    log("%d differences (%d distinct):" % (len(rep.failures), len(groups)))
    for fs in groups.values():
        case, i, sent, rr, qr, probs = fs[0]
        lines = ["--- [%s] step %d: %s" % (case, i + 1, fmt_sent(sent[-1]))]
        if len(sent) > 1:
            lines.append("  sent on this connection: %s" % " ; ".join(fmt_sent(a)
                                                                     for a in sent))
        lines.append("  redis: %s" % fmt_reply(rr))
        lines.append("  quire: %s" % fmt_reply(qr))
        lines += ["  - %s" % p for p in probs]
        if len(fs) > 1:
            lines.append("  (the same in: %s)" % "; ".join("[%s] step %d" % (f[0], f[1] + 1)
                                                          for f in fs[1:]))
        sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
    return False


def init_has_requirepass(quire):
    try:
        p = subprocess.run([quire, "cluster", "init", "--help"], capture_output=True,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        log("`quire cluster init --help`: %s" % e)
        return False
    return b"--requirepass" in p.stdout + p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quire", required=True)
    ap.add_argument("--redis-server", default="/usr/bin/redis-server")
    ap.add_argument("--budget", type=int, default=BUDGET, help="each pair of servers")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--ports", default="33000-40000", help="range for the base port")
    ap.add_argument("--only", default="", help="only the cases whose name has this")
    args = ap.parse_args()
    quire = os.path.abspath(args.quire)
    t = time.monotonic()
    rep = Report()
    for p in docs_problems():
        rep.fail("docs", "documented differences", 0, [[b"(docs/redis.md)"]], None, None, [p])

    # Without a password.
    if not rdt.choose_ports(args.ports):
        return 2

    def body_nopass(quire_port):
        run_mode("no password", cases_nopass(), raw_cases_nopass(), rdt.REDIS_PORT,
                 quire_port, rep, args.only)
        return True

    rdt.with_servers(args, quire, body_nopass)

    # With a password: a second pair.
    skipped = None
    if not init_has_requirepass(quire):
        skipped = "this quire's `cluster init` has no --requirepass"
        log("SKIPPING the password cases: %s" % skipped)
    else:
        if not rdt.choose_ports(args.ports):
            return 2

        def body_pass(quire_port):
            run_mode("password", cases_pass(), raw_cases_pass(), rdt.REDIS_PORT, quire_port,
                     rep, args.only)
            return True

        pw = PASSWORD.decode()
        rdt.with_servers(args, quire, body_pass, init_args=["--requirepass", pw],
                         redis_args=["--requirepass", pw])
    ok = summarise(rep, skipped)
    log("%s; wall time %.1f s" % ("PASS" if ok else "FAIL", time.monotonic() - t))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
