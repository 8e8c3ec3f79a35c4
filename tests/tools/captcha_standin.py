#!/usr/bin/python3
"""CAPTCHA siteverify stand-in (Turnstile, hCaptcha, reCAPTCHA), for tests.

Usage:
    tests/tools/captcha_standin.py --port 0 [--secret S] [--slow-s 10]

Listens on 127.0.0.1 only. Prints exactly one line "PORT <n>" on stdout once it
listens, then serves until SIGTERM/SIGINT (exit status 0). HTTP/1.1 keep-alive,
Content-Length bodies.

A POST to any path other than the control endpoints is a verification, as the
three providers take it: a form body (application/x-www-form-urlencoded) with
"secret", "response" (the donor's token) and optionally "remoteip". Answers,
always 200 with JSON, as the providers do:
    {"success":true,"hostname":"localhost"}     response starts with "ok-"
    {"success":false,"error-codes":["invalid-input-secret"]}
                                                --secret S given and the form's
                                                secret is not S
    {"success":false,"error-codes":["missing-input-response"]}
                                                no response field
    {"success":false,"error-codes":["invalid-input-response"]}
                                                any other response
A response that starts with "slow-" is answered after --slow-s seconds
(default 10) as if it started with "ok-": for a verifier that times out.
Every verification's form fields are recorded (in arrival order) before any
delay.

Control endpoints (not recorded):
    GET  /_requests   {"requests":[{"secret","response","remoteip",...}, ...],
                       "count":N}  (the first 10000 forms)
    POST /_reset      forget the recorded requests
"""

import argparse
import asyncio
import sys
from urllib.parse import parse_qsl

from httpstub import jbytes, proto_error, serve

MAX_KEPT = 10000


class Verifier:
    def __init__(self, args):
        self.secret = args.secret
        self.slow_s = args.slow_s
        self.forms = []
        self.count = 0

    def handle(self, req):
        if req.path == "/_requests":
            if req.method != "GET":
                return proto_error(405, "method not allowed")
            return (200, jbytes({"requests": self.forms, "count": self.count}), "")
        if req.path == "/_reset":
            if req.method != "POST":
                return proto_error(405, "method not allowed")
            self.forms = []
            self.count = 0
            return (200, b'{"ok":true}', "")
        if req.method != "POST":
            return proto_error(405, "method not allowed")
        try:
            form = dict(parse_qsl(req.body.decode("utf-8"), keep_blank_values=True,
                                  strict_parsing=bool(req.body)))
        except (UnicodeDecodeError, ValueError):
            return (400, b'{"success":false,"error-codes":["bad-request"]}', "")
        self.count += 1
        if len(self.forms) < MAX_KEPT:
            self.forms.append(form)
        resp = form.get("response", "")
        if self.secret is not None and form.get("secret") != self.secret:
            return self.answer(False, "invalid-input-secret")
        if not resp:
            return self.answer(False, "missing-input-response")
        if resp.startswith("slow-"):
            return self.slow()
        return self.answer(resp.startswith("ok-"), "invalid-input-response")

    @staticmethod
    def answer(ok, code):
        if ok:
            return (200, b'{"success":true,"hostname":"localhost"}', "")
        return (200, jbytes({"success": False, "error-codes": [code]}), "")

    async def slow(self):
        await asyncio.sleep(self.slow_s)
        return self.answer(True, "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--secret", default=None)
    ap.add_argument("--slow-s", type=float, default=10.0)
    args = ap.parse_args()
    try:
        asyncio.run(serve(Verifier(args), args.port))
    except BrokenPipeError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
