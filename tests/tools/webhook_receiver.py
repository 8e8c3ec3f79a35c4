#!/usr/bin/python3
"""Receiver for tally's signed webhooks, for tests and benchmarks.

Usage:
    tests/tools/webhook_receiver.py --port 0 --secret S [--fail-first N]
                                    [--latency-ms N] [--tolerance-s 300]
                                    [--hang | --reset]

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
Outages (a mode; "ok" is the normal service above):
    hang   an endpoint that accepts connections and never answers. Every
           delivery is read and counted in "requests", then left unanswered,
           so its connection stays open until the sender gives up; nothing
           is checked or recorded.
    reset  every delivery is checked and recorded as in "ok", then the
           connection gets half an answer's head and a TCP reset (SO_LINGER
           0): the event arrived, the sender never learns it (counted in
           "resets" too)
    503    every delivery answered 503 {"error":"stand-in failure"} before
           any check (counted in "requests" and "failed")
--hang or --reset start in that mode; POST /_mode {"mode":"ok|hang|reset|503"}
switches at run time (deliveries already hanging stay unanswered). Control
endpoints answer in every mode.

Control endpoints (not counted in "requests", never delayed):
    GET  /_events            {"events":[bodies in arrival order, as sent],
                              "accepted":N,"bad_signatures":N,"bad_bodies":N,
                              "failed":N,"requests":N,"resets":N,"mode":M}
    GET  /_events?summary=1  the counts, plus "distinct_ids":N and
                             "by_type":{type:count}, without the bodies
    POST /_reset             forget everything, restore the --fail-first
                             budget and the starting mode; /_reset?fail_first=N
                             sets a new budget.
    POST /_mode              {"mode":M} -> 200 {"mode":M}; another body -> 400
Only the first 100000 bodies are kept; later ones are only counted
("accepted", "distinct_ids" and "by_type" keep counting).
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import sys
import time
from urllib.parse import parse_qsl

from httpstub import RESET, hang, jbytes, parse_mode, proto_error, serve

MAX_EVENTS = 100000
MODES = ("ok", "hang", "reset", "503")

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
        self.start_mode = "hang" if args.hang else "reset" if args.reset else "ok"
        self.routes = {
            ("GET", "/_events"): self.events_route,
            ("POST", "/_reset"): self.reset_route,
            ("POST", "/_mode"): self.mode_route,
        }
        self.reset(self.fail_first)

    def reset(self, fail_first):
        self.mode = self.start_mode
        self.resets = 0
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
            if req.path in ("/_events", "/_reset", "/_mode"):
                return proto_error(405, "method not allowed")
            return proto_error(404, "not found")
        if self.mode == "hang":
            self.requests += 1
            return hang()
        if self.mode == "503":
            self.requests += 1
            self.failed += 1
            return FAILED
        res = self.deliver(req)
        if self.mode == "reset":
            self.resets += 1
            res = RESET
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
                  "requests": self.requests, "resets": self.resets, "mode": self.mode}
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

    def mode_route(self, req):
        mode, err = parse_mode(req.body, MODES)
        if mode is None:
            return err
        self.mode = mode
        return (200, jbytes({"mode": mode}), "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--tolerance-s", type=int, default=300)
    outage = ap.add_mutually_exclusive_group()
    outage.add_argument("--hang", action="store_true")
    outage.add_argument("--reset", action="store_true")
    args = ap.parse_args()
    try:
        asyncio.run(serve(Receiver(args), args.port))
    except BrokenPipeError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
