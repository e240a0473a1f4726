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
With --pid, prints "peak_rss_kb K", the largest VmRSS of that process sampled during the attack.
Every attack ends by itself after its seconds.
"""
import argparse
import errno
import socket
import struct
import sys
import time

MAX_MESSAGE_BYTES = 64 << 20
OP_READ_LOG = 2


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
    p.add_argument("attack", choices=["bigframes", "unread", "slots", "flood"])
    p.add_argument("address")
    p.add_argument("--pid", type=int)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--requests", type=int, default=40)
    p.add_argument("--seconds", type=float, default=3)
    args = p.parse_args()
    rss = RssSampler(args.pid)
    {"bigframes": bigframes, "unread": unread, "slots": slots, "flood": flood}[args.attack](args, rss)
    rss.sample(force=True)
    rss.report()


if __name__ == "__main__":
    sys.exit(main())
