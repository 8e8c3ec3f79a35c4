#!/usr/bin/python3
"""SMTP sink for tally's mail tests and benchmarks (aiosmtpd).

Usage:
    tests/tools/smtp_sink.py --port 0 [--dir DIR] [--delay-ms N]
                             [--reject-rcpt SUBSTR] [--fail-first N]
                             [--hang] [--control]

Listens on 127.0.0.1 only. Prints exactly one line "PORT <n>" on stdout once it
listens, then serves until SIGTERM/SIGINT (exit status 0). Any number of
concurrent connections, any number of messages per connection; no AUTH, no TLS.

--dir DIR          write each accepted message to DIR/<counter>.eml (1.eml,
                   2.eml, ... in order of acceptance): the raw DATA bytes after
                   dot-unstuffing, CRLF line ends, without the final ".".
                   Written to DIR/.<counter>.eml.tmp, then renamed, so a reader
                   never sees a partial file. DIR is created if missing.
                   Without --dir messages are only counted (and dropped).
--delay-ms N       sleep N ms in DATA before answering (a slow server).
--reject-rcpt SUB  answer "550 5.1.1 mailbox unavailable" to RCPT TO addresses
                   that contain SUB.
--fail-first N     answer "451 4.3.0 try again later" to the first N DATA
                   commands (after --delay-ms, nothing written).

Outages (a mode; "ok" is the normal service above):
    hang       accept the TCP connection and never greet: the client waits
               for a 220 that never comes (counted in "hung")
    hang-data  greet and take the message, then never answer its final "."
               (counted in "data_hung"; nothing written). A client that sends
               anything more down such a session (the next message, say) is
               counted in "sent_to_stuck": it took a stuck session for a
               live one.
    refuse     answer "451 4.3.0 try again later" to every RCPT TO (counted
               in "refused"), as a server that defers all mail
--hang starts in mode hang. Connections and sessions keep the mode they
started in for the greeting; RCPT and DATA see the mode of their moment.

--control          also serve HTTP control endpoints on a second free port,
                   printed as a second line "CONTROL <n>" after "PORT <n>":
    GET  /_stats   {"mode","connections","hung","data_hung","sent_to_stuck",
                    "refused","messages","distinct_message_ids","duplicates"}
                   (duplicates: accepted messages whose Message-ID header an
                   earlier accepted one had)
    POST /_mode    {"mode":"ok|hang|hang-data|refuse"} -> 200 {"mode":M};
                   another body -> 400. Sessions already hanging stay so.
    POST /_reset   counts to zero, the starting mode back

Accepted messages get "250 OK". Nothing else is written: no log, stdout has
only the PORT line (and the CONTROL line with --control); aiosmtpd warnings,
if any, go to stderr.
"""

import argparse
import asyncio
import logging
import os
import re
import signal
import sys

from aiosmtpd.smtp import SMTP

from httpstub import hang, jbytes, listen, parse_mode

MODES = ("ok", "hang", "hang-data", "refuse")
MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(.*?)\r?$", re.I | re.M)


class SinkHandler:
    def __init__(self, args):
        self.dir = args.dir
        self.delay = args.delay_ms / 1000.0
        self.reject = args.reject_rcpt
        self.fail_left = args.fail_first
        self.start_mode = "hang" if args.hang else "ok"
        self.counter = 0
        self.reset()
        if self.dir:
            os.makedirs(self.dir, exist_ok=True)

    def reset(self):
        self.mode = self.start_mode
        self.connections = 0
        self.hung = 0
        self.data_hung = 0
        self.sent_to_stuck = 0
        self.refused = 0
        self.messages = 0
        self.ids = {}  # Message-ID -> accepted messages with it

    def stats(self):
        return {"mode": self.mode, "connections": self.connections, "hung": self.hung,
                "data_hung": self.data_hung, "sent_to_stuck": self.sent_to_stuck,
                "refused": self.refused,
                "messages": self.messages, "distinct_message_ids": len(self.ids),
                "duplicates": sum(n - 1 for n in self.ids.values())}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.mode == "refuse":
            self.refused += 1
            return "451 4.3.0 try again later"
        if self.reject and self.reject in address:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "hang-data":
            self.data_hung += 1
            server.stuck = True
            await hang()
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if self.fail_left > 0:
            self.fail_left -= 1
            return "451 4.3.0 try again later"
        self.counter += 1
        self.messages += 1
        m = MESSAGE_ID.search(envelope.original_content or b"")
        mid = m.group(1).strip() if m else b""
        self.ids[mid] = self.ids.get(mid, 0) + 1
        if self.dir:
            n = self.counter
            tmp = os.path.join(self.dir, f".{n}.eml.tmp")
            with open(tmp, "wb") as f:
                f.write(envelope.original_content)
            os.replace(tmp, os.path.join(self.dir, f"{n}.eml"))
        return "250 OK"


class TrackedSMTP(SMTP):
    """aiosmtpd session that keeps itself in a set while connected."""

    def __init__(self, conns, handler, *args, **kw):
        super().__init__(handler, *args, **kw)
        self.conns = conns
        self.sink = handler
        self.stuck = False  # hang-data: its message is never answered
        self.counted = False

    def connection_made(self, transport):
        self.conns.add(self)
        super().connection_made(transport)

    def connection_lost(self, error):
        self.conns.discard(self)
        super().connection_lost(error)

    def data_received(self, data):
        if self.stuck and not self.counted:
            self.counted = True
            self.sink.sent_to_stuck += 1
        super().data_received(data)


class Silent(asyncio.Protocol):
    """Mode hang: take the connection, read and drop what comes, never
    answer (not even the greeting)."""

    def __init__(self, conns):
        self.conns = conns
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.conns.add(self)

    def connection_lost(self, error):
        self.conns.discard(self)
        self.transport = None


class Control:
    """The HTTP control endpoints of --control (httpstub app)."""

    def __init__(self, handler):
        self.handler = handler

    def handle(self, req):
        h = self.handler
        if (req.method, req.path) == ("GET", "/_stats"):
            return (200, jbytes(h.stats()), "")
        if (req.method, req.path) == ("POST", "/_mode"):
            mode, err = parse_mode(req.body, MODES)
            if mode is None:
                return err
            h.mode = mode
            return (200, jbytes({"mode": mode}), "")
        if (req.method, req.path) == ("POST", "/_reset"):
            h.reset()
            return (200, b'{"ok":true}', "")
        if req.path in ("/_stats", "/_mode", "/_reset"):
            return (405, jbytes({"error": "method not allowed"}), "")
        return (404, jbytes({"error": "not found"}), "")


async def serve(args):
    loop = asyncio.get_running_loop()
    handler = SinkHandler(args)
    conns = set()

    def factory():
        handler.connections += 1
        if handler.mode == "hang":
            handler.hung += 1
            return Silent(conns)
        return TrackedSMTP(conns, handler, hostname="smtp-sink.localhost",
                           ident="tally smtp_sink", enable_SMTPUTF8=True, loop=loop)

    server = await loop.create_server(factory, "127.0.0.1", args.port,
                                      backlog=4096, reuse_address=True)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    control = None
    if args.control:
        control = await listen(Control(handler), 0)
        print(f"CONTROL {control.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    if control is not None:
        control.close()
    for c in list(conns):
        if c.transport is not None:
            c.transport.abort()
    await server.wait_closed()
    await asyncio.sleep(0)  # let the aborted sessions see connection_lost


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--dir")
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--reject-rcpt")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--hang", action="store_true")
    ap.add_argument("--control", action="store_true")
    args = ap.parse_args()
    # aiosmtpd logs every command at INFO on "mail.log"; keep only real problems.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    try:
        asyncio.run(serve(args))
    except BrokenPipeError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
