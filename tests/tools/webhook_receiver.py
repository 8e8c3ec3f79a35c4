#!/usr/bin/python3
"""Receiver for tally's signed webhooks, for tests and benchmarks.

Usage:
    tests/tools/webhook_receiver.py --port 0 --secret S [--fail-first N]
                                    [--latency-ms N] [--tolerance-s 300]

Listens on 127.0.0.1 only. Prints exactly one line "PORT <n>" on stdout once it
listens, then serves until SIGTERM/SIGINT (exit status 0). HTTP/1.1 keep-alive,
Content-Length bodies, "Expect: 100-continue" answered with "100 Continue".

A POST to any path other than /_reset is a webhook delivery. It must carry
    Tally-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
(several v1= entries are allowed; one must match), with t within --tolerance-s
(default 300) of now. Answers:
    200 {"ok":true}                   valid; the JSON body is recorded
    400 {"error":"bad signature"}     missing/invalid signature or stale t
                                      (counted in bad_signatures)
    400 {"error":"bad body"}          signed, but not a JSON object with "id"
                                      and "type" (counted in bad_bodies)
    503 {"error":"stand-in failure"}  the first --fail-first N POSTs, before any
                                      check (counted in requests and failed only)
--latency-ms N delays every delivery answer by N ms (asyncio sleep); the event
is recorded when it arrives, before the delay.

Control endpoints (not counted in "requests", never delayed):
    GET  /_events            {"events":[bodies in arrival order, as sent],
                              "accepted":N,"bad_signatures":N,"bad_bodies":N,
                              "failed":N,"requests":N}
    GET  /_events?summary=1  the counts, plus "distinct_ids":N and
                             "by_type":{type:count}, without the bodies
    POST /_reset             forget everything, restore the --fail-first
                             budget; /_reset?fail_first=N sets a new budget.
Only the first 100000 bodies are kept; later ones are only counted
("accepted", "distinct_ids" and "by_type" keep counting).
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import signal
import sys
import time
from collections import deque
from urllib.parse import parse_qsl

MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
MAX_QUEUE = 256  # pipelined answers pending per connection before we stop reading
MAX_EVENTS = 100000

REASONS = {
    100: "Continue", 200: "OK", 400: "Bad Request", 401: "Unauthorized",
    402: "Request Failed", 404: "Not Found", 405: "Method Not Allowed",
    411: "Length Required", 413: "Payload Too Large",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 503: "Service Unavailable",
}


def jbytes(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def proto_error(status, msg):
    """Answer for a malformed request or a handler bug."""
    return (status, jbytes({"error": msg}), "")


# --------------------------------------------------------------------------
# Minimal HTTP/1.1 server: asyncio Protocol, keep-alive, pipelining-safe.
# A handler returns (status, body_bytes, extra_header_lines) or an awaitable
# of that; answers leave each connection in request order.


class Request:
    __slots__ = ("method", "path", "query", "headers", "body")

    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body


class HttpProtocol(asyncio.Protocol):
    def __init__(self, app, conns):
        self.app = app
        self.conns = conns
        self.transport = None
        self.buf = bytearray()
        self.req = None  # request whose body we are waiting for
        self.need = 0
        self.keep = True
        self.sent_continue = False
        self.queue = deque()  # [result-or-future, keep_alive]
        self.closing = False
        self.paused = False

    def connection_made(self, transport):
        self.transport = transport
        self.conns.add(self)

    def connection_lost(self, exc):
        self.conns.discard(self)
        self.transport = None
        self.closing = True

    def data_received(self, data):
        if self.closing:
            return
        buf = self.buf
        buf += data
        while not self.closing:
            if self.req is None:
                i = buf.find(b"\r\n\r\n")
                if i < 0:
                    if len(buf) > MAX_HEAD:
                        self._fail(431, "request head too large")
                    return
                head = buf[:i].decode("latin-1")
                del buf[: i + 4]
                if not self._parse_head(head.lstrip("\r\n")):
                    return
            if len(buf) < self.need:
                if (not self.sent_continue and not self.queue
                        and self.req.headers.get("expect", "").lower() == "100-continue"):
                    self.sent_continue = True
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            req = self.req
            req.body = bytes(buf[: self.need])
            del buf[: self.need]
            self.req = None
            self._dispatch(req, self.keep)

    def _parse_head(self, head):
        lines = head.split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            self._fail(400, "bad request line")
            return False
        headers = {}
        for line in lines[1:]:
            k, sep, v = line.partition(":")
            if not sep:
                self._fail(400, "bad header line")
                return False
            headers[k.strip().lower()] = v.strip()
        conn = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            self.keep = conn != "close"
        else:
            self.keep = conn == "keep-alive"
        if "transfer-encoding" in headers:
            self._fail(411, "chunked bodies are not supported; send Content-Length")
            return False
        cl = headers.get("content-length", "0")
        if not cl.isdigit():
            self._fail(400, "bad Content-Length")
            return False
        self.need = int(cl)
        if self.need > MAX_BODY:
            self._fail(413, "body too large")
            return False
        path, _, query = target.partition("?")
        self.req = Request(method, path, query, headers, b"")
        self.sent_continue = False
        return True

    def _fail(self, status, msg):
        """Answer a protocol error after the pending answers, then close."""
        self.closing = True
        self.queue.append([proto_error(status, msg), False])
        self._flush()

    def _dispatch(self, req, keep):
        try:
            res = self.app.handle(req)
        except Exception as e:  # a bug in the stand-in must not kill the connection
            print(f"handler error: {e!r}", file=sys.stderr)
            res = proto_error(500, "internal error in the test tool")
        if not keep:
            self.closing = True
        if type(res) is tuple and not self.queue:
            self._write(res, keep)
            return
        if type(res) is not tuple:
            res = asyncio.ensure_future(res)
            res.add_done_callback(self._done)
        self.queue.append([res, keep])
        if len(self.queue) > MAX_QUEUE and not self.paused and self.transport:
            self.paused = True
            self.transport.pause_reading()
        self._flush()

    def _done(self, fut):
        self._flush()

    def _flush(self):
        q = self.queue
        while q:
            res, keep = q[0]
            if type(res) is not tuple:
                if not res.done():
                    break
                if res.cancelled() or res.exception() is not None:
                    if not res.cancelled():
                        print(f"handler error: {res.exception()!r}", file=sys.stderr)
                    res = proto_error(500, "internal error in the test tool")
                else:
                    res = res.result()
            q.popleft()
            self._write(res, keep)
            if not keep:
                q.clear()
                return
        if self.paused and len(q) < MAX_QUEUE // 2 and self.transport:
            self.paused = False
            self.transport.resume_reading()

    def _write(self, res, keep):
        t = self.transport
        if t is None:
            return
        status, body, extra = res
        t.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n%s%s\r\n%s" % (
                    status, REASONS.get(status, "Unknown").encode(), len(body),
                    extra.encode(), b"" if keep else b"Connection: close\r\n", body))
        if not keep:
            t.close()
            self.transport = None


async def serve(app, port):
    """Listen on 127.0.0.1:port, print PORT, run until SIGTERM/SIGINT."""
    loop = asyncio.get_running_loop()
    conns = set()
    server = await loop.create_server(lambda: HttpProtocol(app, conns), "127.0.0.1",
                                      port, backlog=4096, reuse_address=True)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    for c in list(conns):
        if c.transport is not None:
            c.transport.abort()
    await server.wait_closed()


# --------------------------------------------------------------------------
# The webhook receiver proper.

OK = (200, b'{"ok":true}', "")
BAD_SIG = (400, b'{"error":"bad signature"}', "")
BAD_BODY = (400, b'{"error":"bad body"}', "")
FAILED = (503, b'{"error":"stand-in failure"}', "")


class Receiver:
    def __init__(self, args):
        self.secret = args.secret.encode()
        self.latency = args.latency_ms / 1000.0
        self.tolerance = args.tolerance_s
        self.fail_first = args.fail_first
        self.routes = {
            ("GET", "/_events"): self.events_route,
            ("POST", "/_reset"): self.reset_route,
        }
        self.reset(self.fail_first)

    def reset(self, fail_first):
        self.fail_left = fail_first
        self.requests = 0
        self.accepted = 0
        self.bad_signatures = 0
        self.bad_bodies = 0
        self.failed = 0
        self.events = []      # raw bodies, at most MAX_EVENTS
        self.ids = set()
        self.by_type = {}

    def handle(self, req):
        fn = self.routes.get((req.method, req.path))
        if fn is not None:
            return fn(req)
        if req.method != "POST":
            if req.path in ("/_events", "/_reset"):
                return proto_error(405, "method not allowed")
            return proto_error(404, "not found")
        res = self.deliver(req)
        if self.latency > 0:
            return self._sleep_then(res)
        return res

    async def _sleep_then(self, res):
        await asyncio.sleep(self.latency)
        return res

    def check_signature(self, header, body):
        if not header:
            return False
        t = None
        sigs = []
        for part in header.split(","):
            k, _, v = part.strip().partition("=")
            if k == "t":
                t = v
            elif k == "v1":
                sigs.append(v.lower().encode("latin-1"))
        if t is None or not t.isdigit() or not sigs:
            return False
        if abs(time.time() - int(t)) > self.tolerance:
            return False
        want = hmac.new(self.secret, t.encode() + b"." + body,
                        hashlib.sha256).hexdigest().encode()
        ok = False
        for s in sigs:  # compare all, so timing does not depend on which matched
            ok |= hmac.compare_digest(want, s)
        return ok

    def deliver(self, req):
        self.requests += 1
        if self.fail_left > 0:
            self.fail_left -= 1
            self.failed += 1
            return FAILED
        body = req.body
        if not self.check_signature(req.headers.get("tally-signature"), body):
            self.bad_signatures += 1
            return BAD_SIG
        try:
            ev = json.loads(body)
        except ValueError:
            ev = None
        if not isinstance(ev, dict) or "id" not in ev or "type" not in ev:
            self.bad_bodies += 1
            return BAD_BODY
        self.accepted += 1
        if len(self.events) < MAX_EVENTS:
            self.events.append(body)
        self.ids.add(json.dumps(ev["id"]))
        t = ev["type"] if isinstance(ev["type"], str) else json.dumps(ev["type"])
        self.by_type[t] = self.by_type.get(t, 0) + 1
        return OK

    def events_route(self, req):
        counts = {"accepted": self.accepted, "bad_signatures": self.bad_signatures,
                  "bad_bodies": self.bad_bodies, "failed": self.failed,
                  "requests": self.requests}
        if "summary=1" in req.query.split("&"):
            counts["distinct_ids"] = len(self.ids)
            counts["by_type"] = self.by_type
            return (200, jbytes(counts), "")
        out = b'{"events":[' + b",".join(self.events) + b"]," + jbytes(counts)[1:]
        return (200, out, "")

    def reset_route(self, req):
        ff = dict(parse_qsl(req.query)).get("fail_first", "")
        self.reset(int(ff) if ff.isdigit() else self.fail_first)
        return OK


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--tolerance-s", type=int, default=300)
    args = ap.parse_args()
    try:
        asyncio.run(serve(Receiver(args), args.port))
    except BrokenPipeError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
