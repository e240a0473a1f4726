#!/usr/bin/env python3
"""Many segments for a page server (used by pageserver-checks.sh, issue 12 item 8).

Segment and record formats are docs/pagelog.md's (src/pagelog/segment_format.h, record.h);
frames and RPC requests are hostile_peer.py's.

Usage:
  many_segments.py write DIR COUNT
      writes DIR/segments/seg-1..COUNT, each holding one LOG record (lsn i, prev_lsn i-1,
      term 1, 100 bytes of payload): a valid, unbroken log of COUNT records.
  many_segments.py seals HOST:PORT --seals N --append-every K
      sends N seals over one connection, one request at a time, and before every K-th seal
      appends the next LOG record of a chain starting at lsn 1 (so that seal makes a new
      segment file). Prints "seals S appends A"; exits 1 if any answer is not OK.
  many_segments.py read-log HOST:PORT
      asks for every LOG record from lsn 1 in one read_log; prints "records R".
"""
import argparse
import os
import struct
import sys

from hostile_peer import connect, crc32c, frame, get_varint as read_varint, masked, record, varint

OP_APPEND, OP_READ_LOG, OP_SEAL = 1, 2, 6
SEGMENT_MAGIC = 0x47455351


def log_record(lsn, prev_lsn, term=1, payload_bytes=100):
    return record(lsn, prev_lsn, term, payload=bytes([lsn & 0xFF]) * payload_bytes)


def segment_header(number):
    head = struct.pack("<IB3xQ16x", SEGMENT_MAGIC, 1, number)[:28]
    return head + struct.pack("<I", masked(crc32c(head)))


def write(args):
    seg_dir = os.path.join(args.dir, "segments")
    os.makedirs(seg_dir, exist_ok=True)
    for n in range(1, args.count + 1):
        with open(os.path.join(seg_dir, f"seg-{n:016d}"), "wb") as f:
            f.write(segment_header(n) + log_record(n, n - 1))
    print(f"segments {args.count}")


def request(request_id, op, term, body):
    return frame(bytes([1]) + varint(request_id) + bytes([op]) + varint(term) + body)


def call(sock, request_id, op, term=0, body=b""):
    """Sends one request; returns (status code, message, body) of its response."""
    sock.sendall(request(request_id, op, term, body))
    size = struct.unpack("<I", recv_exact(sock, 4))[0]
    message = recv_exact(sock, size)
    _, pos = read_varint(message, 1)  # kind, then the id
    code = message[pos]
    text_len, pos = read_varint(message, pos + 1)
    return code, message[pos:pos + text_len].decode(errors="replace"), message[pos + text_len:]


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise OSError("the server closed the connection")
        out += chunk
    return out


def seals(args):
    sock = connect(args.address)
    sock.settimeout(10)
    request_id = appends = sealed = 0
    for i in range(args.seals):
        if i % args.append_every == 0:
            appends += 1
            request_id += 1
            body = varint(1) + log_record(appends, appends - 1)
            code, text, _ = call(sock, request_id, OP_APPEND, 1, body)
            if code != 0:
                print(f"append {appends} failed: code {code} {text}")
                return 1
        request_id += 1
        code, text, _ = call(sock, request_id, OP_SEAL)
        if code != 0:
            print(f"seal {i + 1} failed: code {code} {text}")
            return 1
        sealed += 1
    print(f"seals {sealed} appends {appends}")
    return 0


def read_log(args):
    sock = connect(args.address)
    sock.settimeout(10)
    code, text, body = call(sock, 1, OP_READ_LOG, 0, varint(1) + varint(32 << 20))
    if code != 0:
        print(f"read_log failed: code {code} {text}")
        return 1
    count, _ = read_varint(body, 0)
    print(f"records {count}")
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write")
    w.add_argument("dir")
    w.add_argument("count", type=int)
    s = sub.add_parser("seals")
    s.add_argument("address")
    s.add_argument("--seals", type=int, default=2000)
    s.add_argument("--append-every", type=int, default=4)
    r = sub.add_parser("read-log")
    r.add_argument("address")
    args = p.parse_args()
    return {"write": write, "seals": seals, "read-log": read_log}[args.command](args) or 0


if __name__ == "__main__":
    sys.exit(main())
