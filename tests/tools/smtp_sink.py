#!/usr/bin/python3
"""SMTP sink for tally's mail tests and benchmarks (aiosmtpd).

Usage:
    tests/tools/smtp_sink.py --port 0 [--dir DIR] [--delay-ms N]
                             [--reject-rcpt SUBSTR] [--fail-first N]

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

Accepted messages get "250 OK". Nothing else is written: no log, stdout has
only the PORT line; aiosmtpd warnings, if any, go to stderr.
"""

import argparse
import asyncio
import logging
import os
import signal
import sys

from aiosmtpd.smtp import SMTP


class SinkHandler:
    def __init__(self, args):
        self.dir = args.dir
        self.delay = args.delay_ms / 1000.0
        self.reject = args.reject_rcpt
        self.fail_left = args.fail_first
        self.counter = 0
        if self.dir:
            os.makedirs(self.dir, exist_ok=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject and self.reject in address:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if self.fail_left > 0:
            self.fail_left -= 1
            return "451 4.3.0 try again later"
        self.counter += 1
        if self.dir:
            n = self.counter
            tmp = os.path.join(self.dir, f".{n}.eml.tmp")
            with open(tmp, "wb") as f:
                f.write(envelope.original_content)
            os.replace(tmp, os.path.join(self.dir, f"{n}.eml"))
        return "250 OK"


class TrackedSMTP(SMTP):
    """aiosmtpd session that keeps itself in a set while connected."""

    def __init__(self, conns, *args, **kw):
        super().__init__(*args, **kw)
        self.conns = conns

    def connection_made(self, transport):
        self.conns.add(self)
        super().connection_made(transport)

    def connection_lost(self, error):
        self.conns.discard(self)
        super().connection_lost(error)


async def serve(args):
    loop = asyncio.get_running_loop()
    handler = SinkHandler(args)
    conns = set()

    def factory():
        return TrackedSMTP(conns, handler, hostname="smtp-sink.localhost",
                           ident="tally smtp_sink", enable_SMTPUTF8=True, loop=loop)

    server = await loop.create_server(factory, "127.0.0.1", args.port,
                                      backlog=4096, reuse_address=True)
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
    await asyncio.sleep(0)  # let the aborted sessions see connection_lost


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--dir")
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--reject-rcpt")
    ap.add_argument("--fail-first", type=int, default=0)
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
