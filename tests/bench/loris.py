#!/usr/bin/env python3
"""tests/bench/loris.py - hostile slow clients for tests/bench/abuse.

usage: loris.py PORT HEADS BODIES SECONDS

Holds HEADS connections that send a donation's request head a line at a
time (a header every 3 s, never the blank line) and BODIES connections
that send a whole head with Content-Length: 1000 and then a byte of body
every 3 s, for SECONDS; a connection the server closes is opened again
at once. Prints one line of counts. Loopback only; bounded in time.
"""
import selectors
import socket
import sys
import time

port, n_head, n_body, secs = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                              float(sys.argv[4]))
HEAD = b"POST /api/v1/campaigns/bench-0/donations HTTP/1.1\r\nHost: bench\r\n"
BODY = HEAD + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
sel = selectors.DefaultSelector()
conns = {}
stats = {"opened": 0, "closed_by_server": 0, "answered": 0, "connect_failed": 0}


def open_one(kind):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.setblocking(False)
        s.send(HEAD if kind == "head" else BODY)
    except OSError:
        stats["connect_failed"] += 1
        return
    conns[s] = kind
    sel.register(s, selectors.EVENT_READ)
    stats["opened"] += 1


for _ in range(n_head):
    open_one("head")
for _ in range(n_body):
    open_one("body")
t0 = time.time()
last = t0
while time.time() - t0 < secs:
    for key, _ in sel.select(timeout=0.5):
        s = key.fileobj
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if data.startswith(b"HTTP/"):
            stats["answered"] += 1
        sel.unregister(s)
        s.close()
        stats["closed_by_server"] += 1
        open_one(conns.pop(s))
    if time.time() - last >= 3:
        last = time.time()
        for s, kind in list(conns.items()):
            try:
                s.send(b"X-Slow: 1\r\n" if kind == "head" else b" ")
            except OSError:
                pass
print(" ".join("%s=%d" % kv for kv in stats.items()), "open=%d" % len(conns), flush=True)
