"""Minimal HTTP/1.1 server shared by the stand-ins in tests/tools.

An app object has handle(req) returning (status, body_bytes, extra_header_lines)
or an awaitable of that, and may have error(status, msg) shaping the answers to
malformed requests (default: {"error": msg}). serve(app, port) listens on
127.0.0.1, prints "PORT <n>" and runs until SIGTERM/SIGINT; listen(app, port)
only listens (a second, control listener) and returns the asyncio server.

Outages: a handler may return (or resolve to) RESET: the connection gets the
first half of an answer's head, then a TCP reset (SO_LINGER 0), as from a
server or balancer that dies mid-answer. hang() is an awaitable that never
completes: the request stays unanswered until the client gives up.
parse_mode(body, modes) reads a {"mode": ...} control body.
"""

import asyncio
import json
import signal
import socket
import struct
import sys
from collections import deque

MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
MAX_QUEUE = 256  # pipelined answers pending per connection before we stop reading

REASONS = {
    100: "Continue", 200: "OK", 400: "Bad Request", 401: "Unauthorized",
    402: "Request Failed", 404: "Not Found", 405: "Method Not Allowed",
    411: "Length Required", 413: "Payload Too Large",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 503: "Service Unavailable",
}


RESET = object()  # a handler's result: half a head, then a TCP reset
HALF_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: appl"


def jbytes(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


async def hang():
    """Never completes (an answer that never comes); cancelled at close."""
    await asyncio.get_running_loop().create_future()


def parse_mode(body, modes):
    """The mode of a control body {"mode": M, ...}: (M, obj) or (None, error
    answer) when the body is not such an object or M is not in modes."""
    try:
        obj = json.loads(body or b"null")
    except ValueError:
        obj = None
    if not isinstance(obj, dict) or obj.get("mode") not in modes:
        return None, (400, jbytes({"error": "want {\"mode\": one of %s}" % "|".join(modes)}),
                      "")
    return obj["mode"], obj


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

    def error(self, status, msg):
        shape = getattr(self.app, "error", None)
        return shape(status, msg) if shape else proto_error(status, msg)

    def connection_made(self, transport):
        self.transport = transport
        self.conns.add(self)

    def connection_lost(self, exc):
        self.conns.discard(self)
        self.transport = None
        self.closing = True
        # Answers still to come (a hanging one, say) have nobody to go to.
        q, self.queue = self.queue, deque()
        for res, _ in q:
            if type(res) is not tuple and res is not RESET:
                res.cancel()

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
        self.queue.append([self.error(status, msg), False])
        self._flush()

    def _dispatch(self, req, keep):
        try:
            res = self.app.handle(req)
        except Exception as e:  # a bug in the stand-in must not kill the connection
            print(f"handler error: {e!r}", file=sys.stderr)
            res = self.error(500, "internal error in the test tool")
        if not keep:
            self.closing = True
        if (type(res) is tuple or res is RESET) and not self.queue:
            self._write(res, keep)
            return
        if type(res) is not tuple and res is not RESET:
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
            if type(res) is not tuple and res is not RESET:
                if not res.done():
                    break
                if res.cancelled() or res.exception() is not None:
                    if not res.cancelled():
                        print(f"handler error: {res.exception()!r}", file=sys.stderr)
                    res = self.error(500, "internal error in the test tool")
                else:
                    res = res.result()
            q.popleft()
            self._write(res, keep)
            if not keep or res is RESET:
                q.clear()
                return
        if self.paused and len(q) < MAX_QUEUE // 2 and self.transport:
            self.paused = False
            self.transport.resume_reading()

    def _write(self, res, keep):
        t = self.transport
        if t is None:
            return
        if res is RESET:
            self._reset(t)
            return
        status, body, extra = res
        t.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n%s%s\r\n%s" % (
                    status, REASONS.get(status, "Unknown").encode(), len(body),
                    extra.encode(), b"" if keep else b"Connection: close\r\n", body))
        if not keep:
            t.close()
            self.transport = None


    def _reset(self, t):
        """Half an answer's head, then RST: close with SO_LINGER 0."""
        self.closing = True
        t.write(HALF_HEAD)
        sock = t.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        t.abort()
        self.transport = None


async def listen(app, port, conns=None):
    """Listen on 127.0.0.1:port for app; returns the asyncio server."""
    loop = asyncio.get_running_loop()
    conns = set() if conns is None else conns
    return await loop.create_server(lambda: HttpProtocol(app, conns), "127.0.0.1",
                                    port, backlog=4096, reuse_address=True)


async def serve(app, port):
    """Listen on 127.0.0.1:port, print PORT, run until SIGTERM/SIGINT."""
    loop = asyncio.get_running_loop()
    conns = set()
    server = await listen(app, port, conns)
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


