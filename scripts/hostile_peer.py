#!/usr/bin/env python3
"""Hostile peers for a page server, from raw sockets (used by hostile-peer-checks.sh).

A frame is its length as 4 bytes little-endian, then the message; an RPC request is
u8 1, varint id, u8 op, varint term, body (src/pagelog/rpc.h); read_log is op 2 with the body
varint from_lsn, varint max_bytes (src/pagelog/page_server.h).

Usage: hostile_peer.py ATTACK HOST:PORT [--pid PID] [options]
  bigframes  --connections N --seconds S   announce 64 MiB frames, send their bodies, never finish
  unread     --connections N --requests R --seconds S   send read_log requests, never read
  slots      --connections N --seconds S   hold idle and half-sent connections; prints "ready"
  flood      --seconds S                   open bad connections as fast as possible
  bigchain   --records N --payload-bytes B  a page chain and a checkpoint list of N records
             of B bytes each (over 64 MiB in all), then get_page and list_checkpoints of
             them: whole (an older client's request: a typed error) and in parts (whole)
With --pid, prints "peak_rss_kb K", the largest VmRSS of that process sampled during the attack.
Every attack ends by itself after its seconds.

Hostile writers (issue 12 items 1-3), for a server whose chain ends at --last at writer term
--term; each prints what it saw and exits 0 when the server defended itself, 1 otherwise:
  chain      append LOG 2^64-1 (prev --last), then the writer's --last+1, --last+2 (backlink
             --last, so the server holds a commit point): each is refused or stored, never
             answered OK and lost; prints "durable_lsn_expected N"
  chainjump  the chain attack in bounds: append --last+1000 (prev --last): OK; then --last+1
             and --last+2 chained normally: each Older (never OK); every record answered OK
             (1..--last and --last+1000) is served by scan, and read_log serves every LOG
             record among them; prints "durable_lsn_expected N"
  abandon    abandon_after(0) at the current term is refused, and every record stays
  retention  set_retention(2^64-1), (2^63) and (--last) (no checkpoint) are refused
  bigterm    appends at term 2^64-1 and 2^63 are refused
  headerterm an append whose record's header term is above the request's is refused
  commithint commit_hint (op 12) at LSN 2^64-1 and 2^63 and at term 2^63 is refused; one
             far past the chain is the writer's word, kept in memory: OK, nothing stored
  write      the writer appends --last+1 at --term (after a restart): must be OK and stored
Fencing (issue 13), a new writer of term --term taking over from one of a lower term:
  fence      fence(--term) is OK and answers a status with that term and durable_lsn --last;
             fence(--term - 1), fence(2^63) and fence(2^64-1) are refused
  fenced     the old writer's append of --last+1 at --term is Fenced and not stored
"""
import argparse
import errno
import socket
import struct
import sys
import time

MAX_MESSAGE_BYTES = 64 << 20
OP_APPEND = 1
OP_READ_LOG = 2
OP_ABANDON_AFTER = 7
OP_SET_RETENTION = 8
OP_SCAN = 10
OP_FENCE = 11
OP_COMMIT_HINT = 12
U64_MAX = (1 << 64) - 1
TYPE_LOG = 1
CODE_NAMES = {0: "OK", 1: "InvalidArgument", 2: "Corruption", 4: "Older", 11: "Busy", 12: "Fenced",
              13: "NotFound", 17: "NotYetMaterialized"}


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def frame(message):
    return struct.pack("<I", len(message)) + message


def read_log_request(request_id, from_lsn, max_bytes):
    body = varint(from_lsn) + varint(max_bytes)
    return frame(bytes([1]) + varint(request_id) + bytes([OP_READ_LOG]) + varint(0) + body)


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c_bytes(reg, data):
    """Feeds `data` to a CRC32C register (the inverted CRC)."""
    for b in data:
        reg = CRC32C_TABLE[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg


def crc32c(data):
    """CRC-32C (Castagnoli), as src/base/crc32c.h computes it."""
    return crc32c_bytes(0xFFFFFFFF, data) ^ 0xFFFFFFFF


def masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def record(lsn, prev, term, backlink=0, base=0, rtype=TYPE_LOG, payload=b"hostile"):
    """One framed record (src/pagelog/record.h), with its checksum."""
    header = bytearray(
        struct.pack("<IBBHII", 0x43455251, 1, rtype, 0, len(payload), 0)
        + struct.pack("<QQQQQQQ", 0, 0, lsn, base, backlink, term, prev)
    )
    struct.pack_into("<I", header, 12, masked(crc32c(bytes(header) + payload)))
    return bytes(header) + payload


def call(address, op, term, body):
    """One request on a fresh connection; returns (status code, message, body)."""
    s = connect(address)
    s.settimeout(10)
    s.sendall(frame(bytes([1]) + varint(1) + bytes([op]) + varint(term) + body))
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack("<I", data[:4])[0]:
        chunk = s.recv(1 << 20)
        if not chunk:
            raise OSError("connection closed before the response")
        data += chunk
    s.close()
    msg = data[4:]
    pos = 1
    _, pos = get_varint(msg, pos)  # request id
    code = msg[pos]
    n, pos = get_varint(msg, pos + 1)
    return code, msg[pos : pos + n].decode(errors="replace"), msg[pos + n :]


def get_varint(buf, pos):
    n, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos


def append(address, term, records):
    code, msg, _ = call(address, OP_APPEND, term, varint(len(records)) + b"".join(records))
    return code, msg


def read_chunk(address, op, start):
    """One chunk of read_log (op OP_READ_LOG, from `start`) or scan (OP_SCAN, after `start`):
    the (lsn, type) of each record, and the LSN up to which the server looked."""
    code, msg, body = call(address, op, 0, varint(start) + varint(8 << 20))
    if code != 0:
        raise OSError(f"op {op} from {start} failed: {CODE_NAMES.get(code, code)} {msg}")
    count, pos = get_varint(body, 0)
    records = []
    for _ in range(count):
        size = struct.unpack_from("<I", body, pos + 8)[0]
        records.append((struct.unpack_from("<Q", body, pos + 32)[0], body[pos + 5]))
        pos += 72 + size
    through, _ = get_varint(body, pos)
    return records, through


def stored_log_lsns(address, from_lsn):
    """The LSNs of the LOG records read_log returns from from_lsn (one chunk)."""
    return [lsn for lsn, _ in read_chunk(address, OP_READ_LOG, from_lsn)[0]]


def served_records(address, op):
    """(lsn, type) of every record read_log (OP_READ_LOG: LOG records only) or scan (OP_SCAN:
    every type) serves from lsn 1 on, chunk after chunk, each chunk starting where the last
    one's `through` ended."""
    out, after = [], 0
    for _ in range(100000):  # a bound: every chunk but the last moves `after` forward
        start = after + 1 if op == OP_READ_LOG else after  # read_log starts at, scan after
        records, through = read_chunk(address, op, start)
        out += records
        if not records or through <= after:
            return out
        after = through
    raise OSError("the reads did not reach the end of the chain")


def show(what, answer):
    code, msg = answer
    print(f"{what}: {CODE_NAMES.get(code, code)} {msg}".rstrip(), flush=True)
    return code


def attack_chain(args):
    last, term = args.last, args.term
    defended = show("append LOG 2^64-1 prev last", append(args.address, term, [record(U64_MAX, last, term)])) != 0
    ok = []
    for lsn in (last + 1, last + 2):
        code = show(f"append {lsn}", append(args.address, term, [record(lsn, lsn - 1, term, backlink=last)]))
        if code == 0:
            ok.append(lsn)
    stored = set(stored_log_lsns(args.address, last))
    lost = [lsn for lsn in ok if lsn not in stored]
    print(f"ok_but_lost {len(lost)} {lost}", flush=True)
    print(f"durable_lsn_expected {max(ok + [last])}", flush=True)
    return defended and not lost


def attack_chainjump(args):
    last, term = args.last, args.term
    jump = last + 1000
    stored_jump = show(f"append {jump} prev {last}", append(args.address, term, [record(jump, last, term, backlink=last)])) == 0
    codes = {}
    for lsn in (last + 1, last + 2):
        codes[lsn] = show(f"append {lsn} prev {lsn - 1}", append(args.address, term, [record(lsn, lsn - 1, term, backlink=last)]))
    # Every LSN up to --last was answered OK (the bench's LOG and PAGE records, the chain
    # attack's), and so was each record here answered OK.
    ok = list(range(1, last + 1)) + ([jump] if stored_jump else []) + [lsn for lsn, c in codes.items() if c == 0]
    scanned = served_records(args.address, OP_SCAN)
    logged = served_records(args.address, OP_READ_LOG)
    stored = {lsn for lsn, _ in scanned}
    lost = [lsn for lsn in ok if lsn not in stored]
    print(f"ok_but_lost {len(lost)} {lost[:10]} (scan serves {len(scanned)} records)", flush=True)
    # read_log serves exactly the LOG records among them, the jump included.
    log_in_scan = [lsn for lsn, t in scanned if t == TYPE_LOG]
    read_log_whole = [lsn for lsn, _ in logged] == log_in_scan and (not stored_jump or jump in log_in_scan)
    print(f"read_log serves {len(logged)} LOG records, every one scan holds: {read_log_whole}", flush=True)
    older = all(c == 4 for c in codes.values())
    print(f"skipped_records_older {older}", flush=True)
    print(f"durable_lsn_expected {jump if stored_jump else last}", flush=True)
    return stored_jump and older and not lost and read_log_whole


def attack_abandon(args):
    before = stored_log_lsns(args.address, 1)
    code = show("abandon_after(0)", call(args.address, OP_ABANDON_AFTER, args.term, varint(0))[:2])
    after = stored_log_lsns(args.address, 1)
    print(f"log records before {len(before)} after {len(after)}", flush=True)
    return code != 0 and before == after


def attack_retention(args):
    codes = [
        show(f"set_retention({lsn})", call(args.address, OP_SET_RETENTION, args.term, varint(lsn))[:2])
        for lsn in (U64_MAX, 1 << 63, args.last)
    ]
    return all(c != 0 for c in codes)


def attack_bigterm(args):
    codes = [
        show(f"append at term {t}", append(args.address, t, [record(args.last + 1, args.last, t)]))
        for t in (U64_MAX, 1 << 63)
    ]
    return all(c != 0 for c in codes)


def attack_headerterm(args):
    r = record(args.last + 1, args.last, args.term + 1)
    return show("append with header term + 1", append(args.address, args.term, [r])) != 0


def attack_commithint(args):
    refused = [
        show(f"commit_hint({lsn}) at term {t}",
             call(args.address, OP_COMMIT_HINT, t, varint(lsn))[:2]) != 0
        for t, lsn in ((args.term, U64_MAX), (args.term, 1 << 63), (1 << 63, args.last))
    ]
    far = args.last + 1000000
    code = show(f"commit_hint({far}) at term {args.term}",
                call(args.address, OP_COMMIT_HINT, args.term, varint(far))[:2])
    stored = stored_log_lsns(args.address, args.last)
    print(f"read_log from {args.last}: {stored}", flush=True)
    return all(refused) and code == 0 and all(lsn <= args.last for lsn in stored)


def writer_append(args):
    lsn = args.last + 1
    code = show(f"append {lsn}", append(args.address, args.term, [record(lsn, args.last, args.term, backlink=args.last)]))
    return code == 0 and lsn in stored_log_lsns(args.address, lsn)


def status_fields(body):
    """last_lsn, durable_lsn and term of a PageServerStatus body (page_protocol.cc)."""
    fields, pos = [], 0
    for _ in range(5):
        n, pos = get_varint(body, pos)
        fields.append(n)
    return fields[0], fields[1], fields[4]


def fence_takeover(args):
    code, msg, body = call(args.address, OP_FENCE, args.term, b"")
    show(f"fence({args.term})", (code, msg))
    answered = False
    if code == 0:
        last, durable, term = status_fields(body)
        print(f"fence status: last_lsn {last} durable_lsn {durable} term {term}", flush=True)
        answered = term == args.term and durable == args.last
    refused = [
        show(f"fence({t})", call(args.address, OP_FENCE, t, b"")[:2]) != 0
        for t in (args.term - 1, 1 << 63, U64_MAX)
    ]
    return answered and all(refused)


def fenced_writer(args):
    lsn = args.last + 1
    r = record(lsn, args.last, args.term, backlink=args.last)
    code = show(f"old writer: append {lsn} at term {args.term}", append(args.address, args.term, [r]))
    return code == 12 and lsn not in stored_log_lsns(args.address, args.last)


WRITER_ATTACKS = {
    "chain": attack_chain,
    "chainjump": attack_chainjump,
    "abandon": attack_abandon,
    "retention": attack_retention,
    "bigterm": attack_bigterm,
    "headerterm": attack_headerterm,
    "commithint": attack_commithint,
    "fence": fence_takeover,
    "fenced": fenced_writer,
    "write": writer_append,
}


class RssSampler:
    def __init__(self, pid):
        self.pid = pid
        self.peak_kb = 0
        self.next_at = 0.0

    def sample(self, force=False):
        if self.pid is None:
            return
        now = time.monotonic()
        if not force and now < self.next_at:
            return
        self.next_at = now + 0.05
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
        except OSError:
            pass

    def report(self):
        if self.pid is not None:
            print(f"peak_rss_kb {self.peak_kb}", flush=True)


def connect(address, blocking=True):
    host, port = address.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    s.setblocking(blocking)
    return s


def try_send(s, data):
    """Sends what the socket takes now; returns the count, or None when it is closed."""
    try:
        return s.send(data)
    except BlockingIOError:
        return 0
    except OSError:
        return None


def bigframes(args, rss):
    chunk = bytes(1 << 20)
    conns = []
    for _ in range(args.connections):
        s = connect(args.address)
        s.sendall(struct.pack("<I", MAX_MESSAGE_BYTES))
        s.setblocking(False)
        conns.append([s, 0])
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        progressed = False
        for c in conns:
            s, sent = c
            if s is None or sent >= MAX_MESSAGE_BYTES - 1:
                continue
            n = try_send(s, chunk[: min(len(chunk), MAX_MESSAGE_BYTES - 1 - sent)])
            if n is None:
                c[0] = None
            else:
                c[1] += n
                progressed = progressed or n > 0
        rss.sample()
        if not progressed:
            time.sleep(0.01)
    sent_total = sum(c[1] for c in conns)
    print(f"body_bytes_sent {sent_total}", flush=True)
    for s, _ in conns:
        if s is not None:
            s.close()


def unread(args, rss):
    conns = []
    for _ in range(args.connections):
        s = connect(args.address)
        # A small receive buffer, so the server's responses pile up on its side.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"".join(read_log_request(i + 1, 1, 8 << 20) for i in range(args.requests)))
        conns.append(s)
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        rss.sample()
        time.sleep(0.02)
    for s in conns:
        s.close()


def slots(args, rss):
    conns = []
    for i in range(args.connections):
        s = connect(args.address)
        kind = i % 3
        if kind == 1:
            s.sendall(b"\x10\x00")  # half a frame header
        elif kind == 2:
            s.sendall(struct.pack("<I", 100) + bytes(10))  # a header and part of the body
        conns.append(s)
    print("ready", flush=True)
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        rss.sample()
        time.sleep(0.05)
    for s in conns:
        s.close()


def flood(args, rss):
    bad = [
        frame(b"\xff" * 5),  # not an rpc request
        struct.pack("<I", 0xFFFFFFFF),  # above the maximum frame
        struct.pack("<I", 1000) + b"x",  # half a frame, then gone
        frame(bytes([1, 1, 2, 0]) + b"\x80"),  # a read_log with a truncated body, then gone
    ]
    count = 0
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        try:
            s = connect(args.address)
            s.sendall(bad[count % len(bad)])
            if count % 2:
                # Reset rather than close: the server reads an error, not an end of stream.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            count += 1
        except OSError as e:
            if e.errno not in (errno.ECONNREFUSED, errno.ECONNRESET, errno.EPIPE):
                raise
        rss.sample()
    print(f"connections {count}", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("attack", choices=["bigframes", "unread", "slots", "flood", "bigchain"] + list(WRITER_ATTACKS))
    p.add_argument("address")
    p.add_argument("--pid", type=int)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--requests", type=int, default=40)
    p.add_argument("--seconds", type=float, default=3)
    p.add_argument("--records", type=int, default=5)
    p.add_argument("--payload-bytes", type=int, default=15 << 20)
    p.add_argument("--term", type=int, default=1)
    p.add_argument("--last", type=int, default=0)
    args = p.parse_args()
    if args.attack in WRITER_ATTACKS:
        return 0 if WRITER_ATTACKS[args.attack](args) else 1
    rss = RssSampler(args.pid)
    attacks = {"bigframes": bigframes, "unread": unread, "slots": slots, "flood": flood,
               "bigchain": bigchain}
    failed = attacks[args.attack](args, rss)
    rss.sample(force=True)
    rss.report()
    return 1 if failed else 0


# ---- Large responses (issue 12 item 6): a page chain and a checkpoint list over 64 MiB.
#
# Records are framed as src/pagelog/record.h says: a 72-byte header, then the payload; the
# checksum is CRC32C (masked) of the header with its checksum field zeroed, then the
# payload. Payloads are zeros with an 8-byte tag at the end, so the CRC of megabytes of
# zeros is computed by GF(2) matrix powers instead of byte by byte.

OP_GET_PAGE = 3
OP_LIST_CHECKPOINTS = 5
OP_STATUS = 9
TYPE_PAGE, TYPE_DELTA, TYPE_CHECKPOINT_COMPLETE = 2, 3, 7


def _apply(op, reg):
    out = 0
    i = 0
    while reg:
        if reg & 1:
            out ^= op[i]
        reg >>= 1
        i += 1
    return out


def crc32c_zeros(reg, n):
    """Feeds n zero bytes to a register: the one-byte step is linear, so take its n-th power."""
    step = [crc32c_bytes(1 << i, b"\0") for i in range(32)]
    while n:
        if n & 1:
            reg = _apply(step, reg)
        step = [_apply(step, step[i]) for i in range(32)]
        n >>= 1
    return reg


def record_frame(rtype, table, page, lsn, base, backlink, term, prev, payload_bytes):
    """A framed record whose payload is zeros ending in the 8-byte lsn."""
    tag = struct.pack("<Q", lsn)
    header = bytearray(struct.pack("<IBBHII", 0x43455251, 1, rtype, 0, payload_bytes, 0))
    header += struct.pack("<QQQQQQQ", table, page, lsn, base, backlink, term, prev)
    reg = crc32c_bytes(0xFFFFFFFF, header)
    reg = crc32c_zeros(reg, payload_bytes - len(tag))
    crc = crc32c_bytes(reg, tag) ^ 0xFFFFFFFF
    struct.pack_into("<I", header, 12, masked(crc))
    return bytes(header) + bytes(payload_bytes - len(tag)) + tag


def recv_exact(s, n):
    out = bytearray()
    while len(out) < n:
        chunk = s.recv(min(n - len(out), 1 << 20))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        out += chunk
    return bytes(out)


def call_on(s, request_id, op, term, body):
    """One request; returns (status code, message, body) of its response."""
    s.sendall(frame(bytes([1]) + varint(request_id) + bytes([op]) + varint(term) + body))
    (length,) = struct.unpack("<I", recv_exact(s, 4))
    message = recv_exact(s, length)
    assert message[0] == 2, "not a response"
    rid, pos = get_varint(message, 1)
    assert rid == request_id, f"response to {rid}, not {request_id}"
    code = message[pos]
    n, pos = get_varint(message, pos + 1)
    return code, message[pos:pos + n].decode(errors="replace"), message[pos + n:]


def split_part(body):
    """A part's records (as frames) and its `more` flag."""
    count, pos = get_varint(body, 0)
    frames = []
    for _ in range(count):
        (payload,) = struct.unpack_from("<I", body, pos + 8)
        frames.append(body[pos:pos + 72 + payload])
        pos += 72 + payload
    assert pos == len(body) or body[pos:] == b"\x01", "a part with a bad tail"
    return frames, pos < len(body)


def read_in_parts(s, ids, op, fields, max_bytes):
    """Reads parts until the last; returns (code, message, frames, parts)."""
    frames, first, after = [], 0, 0
    for parts in range(1, 1000):
        body = b"".join(varint(f) for f in fields + [first, after, max_bytes])
        code, message, reply = call_on(s, next(ids), op, 0, body)
        if code != 0:
            return code, message, frames, parts
        got, more = split_part(reply)
        frames += got
        if not more:
            return code, message, frames, parts
        first = struct.unpack_from("<Q", frames[0], 32)[0]
        after = struct.unpack_from("<Q", frames[-1], 32)[0]
    return None, "too many parts", frames, parts


def bigchain(args, rss):
    """Appends a page chain, then a checkpoint list, of args.records records each, and reads
    both whole and in parts. Prints one line per read; returns True when one failed."""
    import itertools
    ids = itertools.count(1)
    s = connect(args.address)
    s.settimeout(30)
    code, message, status = call_on(s, next(ids), OP_STATUS, 0, b"")
    assert code == 0, f"status: {message}"
    last_lsn, pos = get_varint(status, 0)
    for _ in range(3):
        _, pos = get_varint(status, pos)
    term, _ = get_varint(status, pos)
    term = max(term, 1)
    table, page, lsn = 7, 77, last_lsn
    chain, checkpoints = [], []
    for i in range(2 * args.records):
        lsn += 1
        if i < args.records:
            rtype = TYPE_PAGE if i == 0 else TYPE_DELTA
            base = last_lsn + 1 if i else 0
            backlink = lsn - 1 if i else 0
            f = record_frame(rtype, table, page, lsn, base, backlink, term, lsn - 1,
                             args.payload_bytes)
            chain.append(f)
        else:
            f = record_frame(TYPE_CHECKPOINT_COMPLETE, 0, 0, lsn, 0, 0, term, lsn - 1,
                             args.payload_bytes)
            checkpoints.append(f)
        code, message, _ = call_on(s, next(ids), OP_APPEND, term, varint(1) + f)
        if code != 0:
            print(f"append of lsn {lsn} refused: {CODE_NAMES.get(code, code)} {message}")
            return True
        rss.sample()
    total = sum(len(f) for f in chain)
    print(f"appended a chain and a checkpoint list of {args.records} records, "
          f"{total >> 20} MiB each", flush=True)
    failed = False
    as_of = lsn
    reads = [("get_page", OP_GET_PAGE, [table, page, as_of], chain),
             ("list_checkpoints", OP_LIST_CHECKPOINTS, [], checkpoints)]
    for name, op, fields, expected in reads:
        # An older client's request (no cursor, no budget): the whole answer, which does
        # not fit one frame, so a typed error.
        start = time.monotonic()
        code, message, _ = call_on(s, next(ids), op, 0, b"".join(varint(f) for f in fields))
        print(f"{name} whole: {CODE_NAMES.get(code, code)} in {time.monotonic() - start:.1f} s "
              f"({message})", flush=True)
        failed = failed or code != 1
        start = time.monotonic()
        code, message, frames, parts = read_in_parts(s, ids, op, fields, 8 << 20)
        intact = frames[-len(expected):] == expected
        print(f"{name} in parts: {CODE_NAMES.get(code, code)}, {len(frames)} records in "
              f"{parts} parts in {time.monotonic() - start:.1f} s, "
              f"{'intact' if intact else 'NOT the records written'}", flush=True)
        failed = failed or code != 0 or not intact or parts < 2
        rss.sample()
    s.close()
    return failed


if __name__ == "__main__":
    sys.exit(main())
