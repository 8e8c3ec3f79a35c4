#!/usr/bin/python3
"""Stand-in for Stripe's PaymentIntents + Refunds API, for tally tests and benchmarks.

Usage:
    tests/tools/stripe_standin.py --port 0 [--latency-ms N] [--secret-key KEY]
                                  [--fail-first N] [--fail-rate P] [--seed N]
                                  [--hang | --reset]

Listens on 127.0.0.1 only. Prints exactly one line "PORT <n>" on stdout once it
listens, then serves until SIGTERM/SIGINT (exit status 0). HTTP/1.1 keep-alive,
Content-Length bodies, "Expect: 100-continue" answered with "100 Continue".

API (form-encoded bodies; every /v1 request needs "Authorization: Bearer KEY",
KEY defaults to sk_test_tally, and an Idempotency-Key header):
    POST /v1/payment_intents  amount, currency, payment_method=tok_|pm_ or
                              payment_method_data[card][token]=tok_,
                              confirm=true|false, metadata[...]
        without confirm=true: 200, status requires_confirmation, no charge
        with confirm=true: as the confirmation below
        missing/invalid amount (integer 1..99999999), currency (3 letters),
        payment method (not tok_*/pm_*)   -> 400 invalid_request_error
    POST /v1/payment_intents/{id}  metadata[...] (Idempotency-Key too): merged
                              into the intent's; 400 once it succeeded
    POST /v1/payment_intents/{id}/confirm  (Idempotency-Key too)
        tok_chargeDeclined                -> 402 card_error card_declined
                                             (error.payment_method.card.fingerprint
                                             is fp_ and the token's name)
        tok_chargeDeclinedProcessingError -> 402 card_error processing_error
                                             (both: the intent loses its payment
                                             method, requires_payment_method,
                                             last_payment_error; confirming it
                                             again -> 400 unexpected_state)
        any other tok_* or pm_*           -> 200, status succeeded: a charge
        an intent already succeeded       -> 400 payment_intent_unexpected_state
        unknown intent                    -> 404 resource_missing
    GET  /v1/payment_intents/{id}        -> 200 the intent as it is now
    POST /v1/refunds          payment_intent=pi_..., optional amount
        -> 200 refund; unknown intent -> 404 resource_missing;
           already fully refunded -> 400 charge_already_refunded

Idempotency as in Stripe: a key's first answer that got past validation
(200, 402, 404 unknown intent, 400 already refunded or unexpected state,
and the 500s of --fail-first) is stored and replayed for the same key and
the same parameters, with "Idempotent-Replayed: true"; the same key with
other parameters (or another endpoint) -> 400 idempotency_error. 400
validation errors are not stored. A request whose key is still in flight
(in its latency sleep) waits for that request and gets the same answer.

--latency-ms N delays every /v1 answer by N ms (asyncio sleep, so thousands
can be in flight); the charge is created at the end of that delay.
--fail-first N answers HTTP 500 api_error to the first N new charge
attempts (confirmations, or creations with confirm=true, that are neither
replays nor waiting on one); like Stripe, the 500 is stored for its key.
--fail-rate P answers the same HTTP 500 to each later new charge attempt with
probability P (0 to 1), drawn from a generator seeded with --seed N (default
0), so a crash-loop test gets transient failures all along, not only first.

Outages (a mode; "ok" is the normal service above). Every /v1 request is
counted in "requests"; then, by mode:
    hang   read the request, never answer and never process it: the
           connection stays open until the client gives up (counted in "hung")
    reset  process the request as in "ok" (a charge, its stored answer),
           then send half the answer's head and reset the connection
           (SO_LINGER 0): the client never learns the outcome (counted in
           "resets")
    500    answer HTTP 500 api_error at once, nothing processed or stored
           for the key, as from a balancer in front of a down API (counted
           in "injected")
--hang or --reset start in that mode. POST /_mode switches at run time, so a
test can end an outage without a restart: {"mode":"ok|hang|reset|500"},
optionally with "only":"create|update|confirm|get|refund" to hit one kind of request
and serve the rest (e.g. reset only confirmations: the charge is made and
its answer lost). Requests already hanging stay unanswered.

Control endpoints (no auth, no latency, not counted in "requests"):
    GET  /_stats            {"requests","captures","refunds","replays","intents",
                             "injected" (500s of --fail-first, --fail-rate and
                             mode 500), "hung", "resets", "mode",
                             "by_key": {key: {"requests","charged"[, "refunded"]}},
                             "by_donation": {metadata donation_id:
                                 {"intents","confirms","charges",
                                  "metadata" (of its last intent)}}}
    GET  /_stats?summary=1  the same without by_key
    POST /_reset            forget everything, restore the --fail-first budget
                            and the starting mode; /_reset?fail_first=N sets a
                            new budget instead.
    POST /_mode             {"mode":M[,"only":K]} -> 200 {"mode":M,"only":K};
                            another body -> 400

Unknown paths -> 404, known path with another method -> 405. Every answer is
application/json with a Content-Length.
"""

import argparse
import asyncio
import json
import os
import random
import re
import sys
import time
from urllib.parse import parse_qsl

from httpstub import RESET, hang, jbytes, parse_mode, serve

# --------------------------------------------------------------------------
# The Stripe stand-in proper.

ERR_AUTH = (401, jbytes({"error": {"type": "invalid_request_error",
                                   "message": "Invalid API Key provided"}}), "")
ERR_NO_KEY = (400, jbytes({"error": {
    "type": "invalid_request_error",
    "message": "This stand-in requires an Idempotency-Key header on every POST."}}), "")
ERR_TRANSIENT = (500, jbytes({"error": {"type": "api_error",
                                        "message": "stand-in transient failure"}}), "")
ERR_DECLINED = (402, jbytes({"error": {
    "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
    "message": "Your card was declined."}}), "")
ERR_PROCESSING = (402, jbytes({"error": {
    "type": "card_error", "code": "processing_error",
    "message": "An error occurred while processing your card."}}), "")
REPLAYED = "Idempotent-Replayed: true\r\n"
CURRENCY_RE = re.compile(r"[A-Za-z]{3}\Z")
INTENT_PATH = re.compile(r"/v1/payment_intents/(pi_[A-Za-z0-9]+)(/confirm)?\Z")
MAX_AMOUNT = 99999999
MODES = ("ok", "hang", "reset", "500")
KINDS = ("create", "update", "confirm", "get", "refund")


def invalid(message, param=None, code=None, status=400):
    err = {"type": "invalid_request_error", "message": message}
    if code:
        err["code"] = code
    if param:
        err["param"] = param
    return (status, jbytes({"error": err}), "")


def missing(param):
    return invalid(f"Missing required param: {param}.", param, "parameter_missing")


def parse_amount(s):
    """Return a positive integer amount in minor units, or None."""
    if s is None or not s.isdigit() or len(s) > 9:
        return None
    n = int(s)
    return n if 1 <= n <= MAX_AMOUNT else None


class KeyState:
    """What the stand-in knows about one Idempotency-Key."""
    __slots__ = ("requests", "charged", "refunded", "fp", "stored")

    def __init__(self):
        self.requests = 0
        self.charged = False
        self.refunded = None  # None: never used on /v1/refunds
        self.fp = None       # hash of (path, sorted params) of the stored answer
        self.stored = None   # (status, body, "") stored for replay


class Stripe:
    def error(self, status, msg):
        """Answer for a malformed request or a handler bug, Stripe-shaped."""
        kind = "api_error" if status >= 500 else "invalid_request_error"
        return (status, jbytes({"error": {"type": kind, "message": msg}}), "")

    def __init__(self, args):
        self.secret = "Bearer " + args.secret_key
        self.latency = args.latency_ms / 1000.0
        self.fail_first = args.fail_first
        self.fail_rate = args.fail_rate
        self.rng = random.Random(args.seed)
        self.start_mode = "hang" if args.hang else "reset" if args.reset else "ok"
        self.routes = {
            ("POST", "/v1/payment_intents"): self.api,
            ("POST", "/v1/refunds"): self.api,
            ("GET", "/_stats"): self.stats,
            ("POST", "/_reset"): self.reset_route,
            ("POST", "/_mode"): self.mode_route,
        }
        self.processors = {
            "/v1/payment_intents/*": self.update_intent,
            "/v1/payment_intents": self.create_intent,
            "/v1/payment_intents/*/confirm": self.confirm_intent,
            "/v1/refunds": self.create_refund,
        }
        self.paths = {p for _, p in self.routes}
        self.reset(self.fail_first)

    def reset(self, fail_first):
        self.mode = self.start_mode
        self.only = None     # the kind of request the mode hits; None: all
        self.hung = 0
        self.resets = 0
        self.requests = 0
        self.captures = 0
        self.refunds = 0
        self.replays = 0
        self.injected = 0
        self.fail_left = fail_first
        self.keys = {}      # idempotency key -> KeyState
        self.intents = {}   # pi id -> {"obj", "pm", "refunded", "donation"}
        self.by_donation = {}  # metadata donation_id -> counts
        self.inflight = {}  # idempotency key -> (fingerprint, future of answer)

    def handle(self, req):
        if self.mode != "ok" and req.path.startswith("/v1/"):
            kind = self.kind_of(req)
            if self.only is None or self.only == kind:
                return self.outage(req)
        return self.serve(req)

    def kind_of(self, req):
        m = INTENT_PATH.match(req.path)
        if m:
            return "confirm" if m.group(2) else "update" if req.method == "POST" else "get"
        return {"/v1/payment_intents": "create", "/v1/refunds": "refund"}.get(req.path)

    def outage(self, req):
        """A /v1 request during an outage (see the module docstring)."""
        if self.mode == "hang":
            self.requests += 1
            self.hung += 1
            return hang()
        if self.mode == "500":
            self.requests += 1
            self.injected += 1
            return ERR_TRANSIENT
        self.resets += 1
        res = self.serve(req)
        return RESET if type(res) is tuple else self._then_reset(res)

    async def _then_reset(self, res):
        await res
        return RESET

    def serve(self, req):
        m = INTENT_PATH.match(req.path)
        if m and req.method == "GET" and not m.group(2):
            self.requests += 1
            if req.headers.get("authorization") != self.secret:
                return self.delayed(ERR_AUTH)
            intent = self.intents.get(m.group(1))
            if intent is None:
                return self.delayed(invalid(f"No such payment_intent: '{m.group(1)}'",
                                            "intent", "resource_missing", status=404))
            return self.delayed((200, jbytes(intent["obj"]), ""))
        if m and req.method == "POST" and m.group(2):
            return self.api(req, "/v1/payment_intents/*/confirm", m.group(1))
        if m and req.method == "POST":
            return self.api(req, "/v1/payment_intents/*", m.group(1))
        fn = self.routes.get((req.method, req.path))
        if fn is None:
            if req.path not in self.paths:
                self.requests += 1
                return self.delayed(invalid(f"Unrecognized request URL ({req.method}: "
                                            f"{req.path}).", status=404))
            return (405, jbytes({"error": {"type": "invalid_request_error",
                                           "message": "method not allowed"}}), "")
        return fn(req)

    async def _sleep_then(self, res):
        await asyncio.sleep(self.latency)
        return res

    def delayed(self, res):
        return self._sleep_then(res) if self.latency > 0 else res

    # ---- control endpoints

    def stats(self, req):
        out = {"requests": self.requests, "captures": self.captures,
               "refunds": self.refunds, "replays": self.replays,
               "intents": len(self.intents), "injected": self.injected,
               "hung": self.hung, "resets": self.resets, "mode": self.mode}
        if "summary=1" not in req.query.split("&"):
            by_key = {}
            for k, st in self.keys.items():
                d = {"requests": st.requests, "charged": st.charged}
                if st.refunded is not None:
                    d["refunded"] = st.refunded
                by_key[k] = d
            out["by_key"] = by_key
            out["by_donation"] = self.by_donation
        return (200, jbytes(out), "")

    def reset_route(self, req):
        q = dict(parse_qsl(req.query))
        ff = q.get("fail_first", "")
        self.reset(int(ff) if ff.isdigit() else self.fail_first)
        return (200, b'{"ok":true}', "")

    def mode_route(self, req):
        mode, obj = parse_mode(req.body, MODES)
        if mode is None:
            return obj
        only = obj.get("only")
        if only is not None and only not in KINDS:
            return (400, jbytes({"error": "only: one of " + "|".join(KINDS)}), "")
        self.mode, self.only = mode, only
        return (200, jbytes({"mode": mode, "only": only}), "")

    # ---- /v1 endpoints

    def api(self, req, path=None, pi=None):
        self.requests += 1
        h = req.headers
        if h.get("authorization") != self.secret:
            return self.delayed(ERR_AUTH)
        key = h.get("idempotency-key")
        if not key:
            return self.delayed(ERR_NO_KEY)
        st = self.keys.get(key)
        if st is None:
            st = self.keys[key] = KeyState()
        st.requests += 1
        params = parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True)
        if pi is not None:
            params.append(("__intent", pi))
        path = path or req.path
        # A hash, not the tuple itself: 100k stored keys must stay small.
        fp = hash((path, tuple(sorted(params))))
        if self.latency <= 0:
            return self.answer(key, st, path, fp, params)
        fl = self.inflight.get(key)
        if fl is not None:
            if fl[0] != fp:
                return self._sleep_then(self.mismatch(key))
            return self.wait_inflight(key, st, fl[1])
        if st.stored is not None:
            return self._sleep_then(self.answer(key, st, path, fp, params))
        fut = asyncio.get_running_loop().create_future()
        self.inflight[key] = (fp, fut)
        return self.process_later(key, st, path, fp, params, fut)

    async def process_later(self, key, st, path, fp, params, fut):
        try:
            await asyncio.sleep(self.latency)
        except asyncio.CancelledError:
            if self.inflight.get(key, (None, None))[1] is fut:
                del self.inflight[key]
            fut.cancel()
            raise
        if self.inflight.get(key, (None, None))[1] is fut:
            del self.inflight[key]
        res = self.answer(key, st, path, fp, params)
        fut.set_result(res)
        return res

    async def wait_inflight(self, key, st, fut):
        res = await asyncio.shield(fut)
        if st.stored is not None and self.keys.get(key) is st:
            self.replays += 1
            s, body, _ = st.stored
            return (s, body, REPLAYED)
        return res  # the first answer was not stored (e.g. a 500): same answer

    def mismatch(self, key):
        return (400, jbytes({"error": {
            "type": "idempotency_error",
            "message": "Keys for idempotent requests can only be used with the same "
                       "parameters they were first used with. Try using a key other "
                       f"than '{key}' if you meant to execute a different request."}}), "")

    def answer(self, key, st, path, fp, params):
        """Replay, reject or process one request; runs atomically in the loop."""
        if st.stored is not None:
            if st.fp != fp:
                return self.mismatch(key)
            self.replays += 1
            s, body, _ = st.stored
            return (s, body, REPLAYED)
        res, store = self.processors[path](st, params)
        if store:
            st.fp = fp
            st.stored = res
        return res

    def donation(self, dn):
        d = self.by_donation.get(dn)
        if d is None:
            d = self.by_donation[dn] = {"intents": 0, "confirms": 0, "charges": 0}
        return d

    def charge(self, st, intent):
        """Confirm an intent with its payment method: decline or charge."""
        obj, pm = intent["obj"], intent["pm"]
        d = self.donation(intent["donation"])
        d["confirms"] += 1
        if self.fail_left > 0:
            self.fail_left -= 1
            self.injected += 1
            return ERR_TRANSIENT, True
        if self.fail_rate > 0 and self.rng.random() < self.fail_rate:
            self.injected += 1
            return ERR_TRANSIENT, True
        if pm in ("tok_chargeDeclined", "tok_chargeDeclinedProcessingError"):
            # As Stripe: a failed payment detaches the payment method and
            # records why; confirming again needs a new one. The error
            # names the payment method, with its card's fingerprint.
            obj["status"] = "requires_payment_method"
            obj["payment_method"] = None
            base = ERR_DECLINED if pm == "tok_chargeDeclined" else ERR_PROCESSING
            e = json.loads(base[1])["error"]
            e["payment_method"] = {"id": "pm_" + pm[4:], "object": "payment_method",
                                   "card": {"fingerprint": "fp_" + pm[4:]}}
            obj["last_payment_error"] = e
            intent["pm"] = None
            return (base[0], jbytes({"error": e}), base[2]), True
        obj["status"] = "succeeded"
        obj["amount_received"] = obj["amount"]
        self.captures += 1
        d["charges"] += 1
        st.charged = True
        return (200, jbytes(obj), ""), True

    def create_intent(self, st, params):
        p = dict(params)
        if "amount" not in p:
            return missing("amount"), False
        amount = parse_amount(p["amount"])
        if amount is None:
            return invalid("Invalid positive integer", "amount", "parameter_invalid_integer"), False
        cur = p.get("currency")
        if cur is None:
            return missing("currency"), False
        if not CURRENCY_RE.match(cur):
            return invalid(f"Invalid currency: {cur}.", "currency", "parameter_invalid"), False
        cur = cur.lower()
        pm = p.get("payment_method") or p.get("payment_method_data[card][token]")
        if not pm:
            return missing("payment_method"), False
        if not pm.startswith(("tok_", "pm_")):
            return invalid(f"No such PaymentMethod: '{pm}'", "payment_method",
                           "resource_missing"), False
        meta = {k[9:-1]: v for k, v in params if k.startswith("metadata[") and k.endswith("]")}
        pi = "pi_" + os.urandom(12).hex()
        obj = {"id": pi, "object": "payment_intent", "amount": amount, "currency": cur,
               "status": "requires_confirmation", "payment_method": pm,
               "amount_received": 0, "created": int(time.time()), "livemode": False,
               "metadata": meta}
        intent = self.intents[pi] = {"obj": obj, "pm": pm, "refunded": 0,
                                     "donation": meta.get("donation_id", "")}
        d = self.donation(intent["donation"])
        d["intents"] += 1
        d["metadata"] = meta
        if p.get("confirm") == "true":
            return self.charge(st, intent)
        return (200, jbytes(obj), ""), True

    def intent_of(self, params):
        """The intent a request's path names, or its 404 answer."""
        pi = dict(params).get("__intent", "")
        intent = self.intents.get(pi)
        if intent is None:
            return None, (invalid(f"No such payment_intent: '{pi}'", "intent",
                                  "resource_missing", status=404), True)
        return intent, None

    def update_intent(self, st, params):
        """Add metadata to an intent not yet confirmed (Stripe takes updates
        until it succeeds)."""
        intent, missing_answer = self.intent_of(params)
        if intent is None:
            return missing_answer
        if intent["obj"]["status"] == "succeeded":
            return invalid("This PaymentIntent has already succeeded.", None,
                           "payment_intent_unexpected_state"), True
        meta = {k[9:-1]: v for k, v in params if k.startswith("metadata[") and k.endswith("]")}
        intent["obj"]["metadata"].update(meta)
        d = self.donation(intent["donation"])
        d["updates"] = d.get("updates", 0) + 1
        d["metadata"] = intent["obj"]["metadata"]
        return (200, jbytes(intent["obj"]), ""), True

    def confirm_intent(self, st, params):
        intent, missing_answer = self.intent_of(params)
        if intent is None:
            return missing_answer
        status = intent["obj"]["status"]
        if status == "requires_payment_method" and intent["pm"] is None:
            return invalid("You cannot confirm this PaymentIntent because it's missing a "
                           "payment method.", None, "payment_intent_unexpected_state"), True
        if status not in ("requires_confirmation", "requires_payment_method"):
            return invalid(f"This PaymentIntent's status is {status}; it cannot be "
                           "confirmed.", None, "payment_intent_unexpected_state"), True
        return self.charge(st, intent)

    def create_refund(self, st, params):
        if st.refunded is None:
            st.refunded = False
        p = dict(params)
        pi = p.get("payment_intent")
        if not pi:
            return missing("payment_intent"), False
        intent = self.intents.get(pi)
        if intent is None or intent["obj"]["status"] != "succeeded":
            return invalid(f"No such payment_intent: '{pi}'", "payment_intent",
                           "resource_missing", status=404), True
        left = intent["obj"]["amount"] - intent["refunded"]
        if "amount" in p:
            amount = parse_amount(p["amount"])
            if amount is None:
                return invalid("Invalid positive integer", "amount",
                               "parameter_invalid_integer"), False
        else:
            amount = left
        if left <= 0:
            return invalid(f"Charge for {pi} has already been refunded.", None,
                           "charge_already_refunded"), True
        if amount > left:
            return invalid(f"Refund amount ({amount}) is greater than unrefunded amount "
                           f"on charge ({left})", "amount", "amount_too_large"), True
        intent["refunded"] += amount
        self.refunds += 1
        st.refunded = True
        obj = {"id": "re_" + os.urandom(12).hex(), "object": "refund", "amount": amount,
               "currency": intent["obj"]["currency"], "payment_intent": pi,
               "status": "succeeded",
               "created": int(time.time())}
        return (200, jbytes(obj), ""), True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--secret-key", default="sk_test_tally")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--fail-rate", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    outage = ap.add_mutually_exclusive_group()
    outage.add_argument("--hang", action="store_true")
    outage.add_argument("--reset", action="store_true")
    args = ap.parse_args()
    if not 0.0 <= args.fail_rate <= 1.0:
        ap.error("--fail-rate must be between 0 and 1")
    try:
        asyncio.run(serve(Stripe(args), args.port))
    except BrokenPipeError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
