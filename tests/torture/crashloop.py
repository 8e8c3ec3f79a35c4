#!/usr/bin/python3
"""Crash-loop torture test for tally: SIGKILL at random moments under mixed load.

Usage:
    tests/torture/crashloop.py [--tally build/release/tally] [--rounds 50]
                               [--seed N] [--keep] [--budget-s 900]

(`make torture ROUNDS=50 SEED=N` runs it on the release build.)

Setup: the Stripe stand-in (tests/tools/stripe_standin.py, 15 ms latency,
10 % of charge attempts answer a transient 500), the SMTP sink for receipts
and the webhook receiver, all on 127.0.0.1; tally --processor stripe against
them, with short retry backoffs, in a temporary folder; three campaigns.

Each round:
  1. load for a random 0.2-2 s from four client threads: gifts with
     Idempotency-Keys (tok_visa, tok_chargeDeclined and
     tok_chargeDeclinedProcessingError), replays of acknowledged gifts, and a
     staff thread that pauses/resumes campaigns and refunds gifts through the
     admin API;
  2. SIGKILL tally, mostly while the load runs, sometimes up to 0.3 s after
     it stopped (jobs still draining);
  3. restart it; resend every request that got no answer with the same key
     and body, as a real client would, and replay a few acknowledged gifts;
  4. settle (every queue has nothing ready, running, scheduled or held);
  5. check the invariants below, then go on with the next round.
After the last round tally is stopped with SIGTERM (it must exit 0) and the
database is checked once more with tally down.

Invariants (a violation names the round and the invariant, and the run exits 1
after that round; the folder is kept for a post-mortem):
  gifts     every 202 the client saw is in the database exactly once, with
            its id, amount and campaign; a key retried after the crash is one
            gift; a replay answers the same id; a gift refused (409) was not
            written; no gift the clients never sent; none left pending.
  charges   at the stand-in: at most one PaymentIntent and at most one charge
            per donation; succeeded/refunded gifts charged exactly once,
            failed ones never; one processor refund per refunded gift.
  totals    GET /api/v1/campaigns/SLUG (memory) and the campaigns row equal
            the database's sums by tally's rule (model.c effect_rules):
            total_cents = SUM(amount) of succeeded gifts (a refunded gift
            leaves it), donation_count = their COUNT, pending_cents = SUM of
            pending gifts, donor_count = the campaign's distinct donor
            emails (a refund keeps the donor); the status is the last
            acknowledged pause/resume.
  refunds   every 202 refund ends refunded; no gift refunded unasked.
  integrity PRAGMA integrity_check is ok.
  jobs      every gift has one capture job; a succeeded (or refunded) gift
            one receipt job and one donation.succeeded webhook job, a failed
            one a donation.failed job and no receipt, a refunded one a done
            refund job and a donation.refunded job; none dead or vanished;
            every done receipt reached the SMTP sink and every done webhook
            job the receiver (duplicates are allowed: at-least-once).

The seed fixes every choice the driver makes (round lengths, kill moments,
requests); thread timing still varies, so a replay explores the same plan,
not the same interleaving. Loopback only; every wait has a deadline; the
whole run is bounded by --budget-s.
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(os.path.dirname(HERE), "tools")
ADMIN_TOKEN = "torture-admin-token-0123456789abcdef"
HOOK_SECRET = "whsec_torture"
STRIPE_KEY = "sk_test_tally"
CAMPAIGNS = ("food", "shelter", "books")
GIFT_THREADS = 4
TOKENS = (("tok_visa", 80), ("tok_chargeDeclined", 12), ("tok_chargeDeclinedProcessingError", 8))
EMAILS = ["donor%d@example.org" % i for i in range(40)]
REQ_TIMEOUT = 5.0
START_DEADLINE = 15.0
JOIN_DEADLINE = 10.0
RESOLVE_DEADLINE = 20.0
SETTLE_DEADLINE = 40.0


class Abort(Exception):
    """Something the run cannot go on from (tally will not start...)."""


# ---------------------------------------------------------------- processes

class Tool:
    """One of tests/tools/*.py, on a free loopback port."""

    def __init__(self, tmp, script, args):
        self.name = script
        self.err = open(os.path.join(tmp, script + ".stderr"), "wb")
        self.proc = subprocess.Popen(["/usr/bin/python3", os.path.join(TOOLS, script),
                                      "--port", "0"] + args,
                                     stdout=subprocess.PIPE, stderr=self.err)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("PORT "):
            self.stop()
            raise Abort(f"{script} did not start (see {self.err.name})")
        self.port = int(line.split()[1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


class Tally:
    def __init__(self, binary, tmp, args):
        self.binary = binary
        self.tmp = tmp
        self.db = os.path.join(tmp, "t.db")
        self.args = args
        self.proc = None
        self.port = 0
        self.runs = 0
        self.log = None

    def start(self):
        self.runs += 1
        self.log = os.path.join(self.tmp, "tally-%03d.log" % self.runs)
        env = dict(os.environ, TALLY_ADMIN_TOKEN=ADMIN_TOKEN, STRIPE_SECRET_KEY=STRIPE_KEY)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([self.binary, "--headless", "--listen", "127.0.0.1:0",
                                          "--db", self.db] + self.args,
                                         stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                         env=env)
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Abort(f"tally exited {self.proc.returncode} at start (see {self.log})")
            with open(self.log, "rb") as f:
                for line in f:
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    if ev.get("event") == "server.listening" and ev.get("port"):
                        self.port = int(ev["port"])
                        return
            time.sleep(0.02)
        self.kill()
        raise Abort(f"tally did not listen within {START_DEADLINE:.0f} s (see {self.log})")

    def kill(self):
        """SIGKILL (unless it is dead already) and reap it."""
        if self.proc:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.port = 0

    def term(self):
        """SIGTERM; returns the exit status (None: it had to be killed)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


# ---------------------------------------------------------------- HTTP

class Client:
    """A keep-alive connection to whatever port tally has now."""

    def __init__(self, port_fn):
        self.port_fn = port_fn
        self.conn = None
        self.port = 0

    def close(self):
        if self.conn:
            self.conn.close()
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        """(status, headers, parsed JSON or None); raises OSError or
        http.client.HTTPException when no answer came."""
        port = self.port_fn()
        if not port:
            raise ConnectionRefusedError("tally is down")
        if self.conn is None or port != self.port:
            self.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQ_TIMEOUT)
            self.port = port
        h = dict(headers or {})
        if body is not None:
            h.setdefault("Content-Type", "application/json")
        elif method == "POST":
            h["Content-Length"] = "0"
        try:
            self.conn.request(method, path, body=body, headers=h)
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if resp.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = None
        return resp.status, resp, doc


def admin_headers():
    return {"Authorization": "Bearer " + ADMIN_TOKEN}


def tool_get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return json.loads(r.read())
    finally:
        c.close()


# ---------------------------------------------------------------- the ledger

class Gift:
    __slots__ = ("key", "slug", "body", "amount", "token", "state", "id", "round")

    def __init__(self, key, slug, body, amount, token, rnd):
        self.key, self.slug, self.body, self.amount = key, slug, body, amount
        self.token, self.round = token, rnd
        self.state = "sent"   # sent -> acked | refused | unknown (no answer)
        self.id = None


class Ledger:
    """What the clients saw. One lock; the checks read it with load stopped."""

    def __init__(self):
        self.lock = threading.Lock()
        self.gifts = {}          # key -> Gift
        self.acked = []          # Gifts acknowledged (202), in order
        self.refunds = {}        # donation id -> "acked" | "unknown" | "refused"
        self.status = {s: {"active"} for s in CAMPAIGNS}  # possible statuses
        self.violations = []     # (invariant, detail)
        self.counts = {}

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    def violate(self, invariant, detail):
        with self.lock:
            self.violations.append((invariant, detail))


def gift_answer(led, g, status, resp, doc, replay_expected=False):
    """Record one answer to a gift request. Returns True when it is final."""
    code = (doc or {}).get("error", {}).get("code") if isinstance(doc, dict) else None
    with led.lock:
        a = f"answer {status} {code or ''}".strip()
        led.counts[a] = led.counts.get(a, 0) + 1
        if status == 202 and isinstance(doc, dict) and doc.get("id"):
            if g.state == "acked" and doc["id"] != g.id:
                led.violations.append(("gifts", f"key {g.key}: first 202 said {g.id}, a "
                                                f"replay says {doc['id']}"))
            elif g.state == "refused":
                led.violations.append(("gifts", f"key {g.key}: refused with 409 before, now "
                                                f"202 {doc['id']}"))
            if replay_expected and resp.getheader("Idempotent-Replayed", "") != "true":
                led.violations.append(("gifts", f"key {g.key}: a retry of {g.id} was answered "
                                                "202 without Idempotent-Replayed"))
            if g.state != "acked":
                g.state = "acked"
                g.id = doc["id"]
                led.acked.append(g)
            return True
        if status == 409 and code in ("campaign_paused", "campaign_closed"):
            if g.state == "acked":
                led.violations.append(("gifts", f"key {g.key}: acknowledged as {g.id}, a "
                                                f"retry was answered 409 {code}"))
            else:
                g.state = "refused"
            return True
        # No final answer: tally is down or busy, or the same key is in
        # flight on another connection (two retries at once; after a
        # restart the key is looked up in SQLite, and meanwhile 409
        # idempotency_key_in_use says "retry shortly").
        if status == 503 or status is None or code == "idempotency_key_in_use":
            if g.state != "acked":
                g.state = "unknown"
            return False
        led.violations.append(("gifts", f"key {g.key}: unexpected answer {status} {code} "
                                        f"{json.dumps(doc)[:200]}"))
        if g.state != "acked":
            g.state = "unknown"
        return True


def send_gift(led, client, g, replay_expected=False, count_replay=False):
    try:
        status, resp, doc = client.request(
            "POST", f"/api/v1/campaigns/{g.slug}/donations", g.body,
            {"Idempotency-Key": g.key})
    except (OSError, http.client.HTTPException):
        status, resp, doc = None, None, None
    if count_replay and status == 202 and resp.getheader("Idempotent-Replayed", "") == "true":
        led.count("resent and replayed")
    return gift_answer(led, g, status, resp, doc, replay_expected)


def pick(rng, weighted):
    total = sum(w for _, w in weighted)
    x = rng.uniform(0, total)
    for v, w in weighted:
        x -= w
        if x <= 0:
            return v
    return weighted[-1][0]


def gift_worker(led, tally, seed, rnd, tid, stop):
    rng = random.Random(f"{seed}-{rnd}-{tid}")
    client = Client(lambda: tally.port)
    n = 0
    # A little think time between requests: enough gifts in flight at
    # the kill, not a flood that makes every round's checks slow.
    while not stop.wait(rng.uniform(0.0, 0.003)):
        with led.lock:
            old = led.acked[rng.randrange(len(led.acked))] if led.acked and \
                rng.random() < 0.08 else None
        if old is not None:
            led.count("replays")
            send_gift(led, client, old, replay_expected=True)
            continue
        n += 1
        token = pick(rng, TOKENS)
        slug = rng.choice(CAMPAIGNS)
        amount = rng.randrange(100, 50000)
        body = json.dumps({"amount_cents": amount, "currency": "USD",
                           "donor": {"name": "Donor %d" % rng.randrange(1000),
                                     "email": rng.choice(EMAILS)},
                           "message": "round %s" % rnd, "payment_token": token}).encode()
        g = Gift(f"s{seed}-r{rnd}-t{tid}-{n}", slug, body, amount, token, rnd)
        with led.lock:
            led.gifts[g.key] = g
        led.count("gifts sent")
        send_gift(led, client, g)
    client.close()


def load(led, tally, seed, rnd, seconds, kill):
    """Clients and staff for `seconds`; then SIGKILL tally if `kill` (the
    clients are stopped just after, so requests are in flight)."""
    stop = threading.Event()
    threads = [threading.Thread(target=gift_worker, args=(led, tally, seed, rnd, t, stop),
                                daemon=True) for t in range(GIFT_THREADS)]
    threads.append(threading.Thread(target=staff_worker, args=(led, tally, seed, rnd, stop),
                                    daemon=True))
    for t in threads:
        t.start()
    time.sleep(seconds)
    if kill:
        tally.proc.send_signal(signal.SIGKILL)
    stop.set()
    deadline = time.monotonic() + JOIN_DEADLINE
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            raise Abort(f"round {rnd}: a client thread did not stop within "
                        f"{JOIN_DEADLINE:.0f} s")


def staff_action(led, client, rng, slug=None, action=None):
    """One pause or resume; records what became possible."""
    with led.lock:
        # At most one campaign paused at a time: resume it before the
        # next pause, so most gifts find their campaign open.
        paused = [c for c in CAMPAIGNS if "paused" in led.status[c]]
        if slug is None:
            slug = paused[0] if paused else rng.choice(CAMPAIGNS)
        if action is None:
            action = "resume" if paused else "pause"
    want = "paused" if action == "pause" else "active"
    try:
        status, _, doc = client.request("POST", f"/api/v1/admin/campaigns/{slug}/{action}",
                                        None, admin_headers())
    except (OSError, http.client.HTTPException):
        status, doc = None, None
    with led.lock:
        if status == 200:
            led.status[slug] = {want}
            got = doc.get("status") if isinstance(doc, dict) else None
            if got != want:
                led.violations.append(("staff", f"{action} {slug} answered status {got}"))
        elif status is None or status == 503:
            led.status[slug] = led.status[slug] | {want}
        else:
            led.violations.append(("staff", f"{action} {slug}: unexpected answer {status}"))
    led.count("staff " + action)


def send_refund(led, client, dn):
    try:
        status, _, doc = client.request("POST", f"/api/v1/admin/donations/{dn}/refund",
                                        json.dumps({"reason": "torture"}).encode(),
                                        admin_headers())
    except (OSError, http.client.HTTPException):
        status, doc = None, None
    code = (doc or {}).get("error", {}).get("code") if isinstance(doc, dict) else None
    with led.lock:
        prev = led.refunds.get(dn)
        if status == 202:
            led.refunds[dn] = "acked"
        elif status == 409 and code == "invalid_state":
            if prev is None:
                led.refunds[dn] = "refused"
        elif status is None or status == 503:
            if prev != "acked":
                led.refunds[dn] = "unknown"
            return False
        else:
            led.violations.append(("refunds", f"refund {dn}: unexpected answer {status} {code}"))
    return True


def staff_worker(led, tally, seed, rnd, stop):
    rng = random.Random(f"{seed}-{rnd}-staff")
    client = Client(lambda: tally.port)
    while not stop.wait(rng.uniform(0.03, 0.15)):
        if rng.random() < 0.4:
            staff_action(led, client, rng)
        else:
            with led.lock:
                if led.refunds and rng.random() < 0.1:
                    # Asked again (a double click): a success, one refund.
                    dn = rng.choice(sorted(led.refunds))
                else:
                    cands = [g for g in led.acked if g.token == "tok_visa"
                             and g.id not in led.refunds]
                    dn = rng.choice(cands).id if cands else None
            if dn:
                led.count("refunds asked")
                send_refund(led, client, dn)
    client.close()


# ---------------------------------------------------------------- after a restart

def resolve(led, tally, seed, rnd):
    """Resend what got no answer, as a client would; replay a few 202s."""
    rng = random.Random(f"{seed}-{rnd}-resolve")
    client = Client(lambda: tally.port)
    deadline = time.monotonic() + RESOLVE_DEADLINE
    with led.lock:
        todo = [g for g in led.gifts.values() if g.state in ("unknown", "sent")]
        recent = [g for g in led.acked if g.round == rnd]
        replays = rng.sample(recent, min(5, len(recent)))
        refunds = [dn for dn, s in led.refunds.items() if s == "unknown"]
    led.count("retried after kill", len(todo))
    for g in todo:
        while not send_gift(led, client, g, count_replay=True):
            if time.monotonic() > deadline:
                led.violate("gifts", f"key {g.key}: no final answer within "
                                     f"{RESOLVE_DEADLINE:.0f} s after the restart")
                break
            time.sleep(0.05)
    for g in replays:
        send_gift(led, client, g, replay_expected=True)
    for dn in refunds:
        while not send_refund(led, client, dn):
            if time.monotonic() > deadline:
                led.violate("refunds", f"refund {dn}: no answer after the restart")
                break
            time.sleep(0.05)
    client.close()
    return len(todo)


def settle(tally):
    """Wait until no queue has work ready, running, scheduled or held."""
    client = Client(lambda: tally.port)
    deadline = time.monotonic() + SETTLE_DEADLINE
    last = None
    try:
        while time.monotonic() < deadline:
            try:
                status, _, doc = client.request("GET", "/api/v1/admin/queues", None,
                                                admin_headers())
            except (OSError, http.client.HTTPException):
                status, doc = None, None
            if status == 200:
                last = doc
                busy = [q for q in doc["queues"]
                        if any(q.get(k, 0) for k in ("ready", "running", "scheduled", "held"))]
                if not busy:
                    return None
            time.sleep(0.02)
        return f"queues not idle after {SETTLE_DEADLINE:.0f} s: {json.dumps(last)[:600]}"
    finally:
        client.close()


# ---------------------------------------------------------------- invariants

def dn_num(dn):
    return int(dn[3:])


class Checker:
    def __init__(self, tally, stripe, hook, maildir):
        self.tally, self.stripe, self.hook, self.maildir = tally, stripe, hook, maildir
        self.mail = {}        # donation number -> receipts seen
        self.mail_files = set()

    def read_mail(self):
        for name in os.listdir(self.maildir):
            if not name.endswith(".eml") or name.startswith(".") or name in self.mail_files:
                continue
            self.mail_files.add(name)
            with open(os.path.join(self.maildir, name), "rb") as f:
                m = re.search(rb"Message-ID: <receipt-dn_(\d+)@tally>", f.read())
            n = int(m.group(1)) if m else -1
            self.mail[n] = self.mail.get(n, 0) + 1

    def run(self, led, live=True, full_events=False):
        """Every invariant; returns [(invariant, detail)]."""
        v = []
        db = sqlite3.connect(f"file:{self.tally.db}?mode=ro", uri=True, timeout=10)
        try:
            ic = [r[0] for r in db.execute("PRAGMA integrity_check")]
            if ic != ["ok"]:
                v.append(("integrity", "; ".join(ic[:5])))
            camps = {r[0]: r[1:] for r in db.execute("SELECT id, slug FROM campaigns")}
            rows = db.execute("SELECT id, idem_key, campaign_id, amount_cents, status,"
                              " payment_token FROM donations").fetchall()
            sent = {r[0] for r in db.execute("SELECT id FROM donations"
                                             " WHERE receipt_sent_at IS NOT NULL")}
            self.check_totals(led, db, v, live)
            jobs = db.execute("SELECT id, queue, kind, donation_id, state, attempts,"
                              " coalesce(last_error, '') FROM jobs").fetchall()
        finally:
            db.close()
        self.check_gifts(led, rows, camps, v)
        self.check_charges(rows, v)
        self.check_jobs(led, rows, sent, jobs, v, full_events)
        return v

    def check_gifts(self, led, rows, camps, v):
        by_key = {}
        for r in rows:
            did, key, cid, amount, status, token = r
            if key is None:
                v.append(("gifts", f"dn_{did} has no idempotency key: no client sent it"))
                continue
            if key in by_key:
                v.append(("gifts", f"key {key} recorded twice: dn_{by_key[key][0]} and dn_{did}"))
            by_key[key] = r
            g = led.gifts.get(key)
            if g is None:
                v.append(("gifts", f"dn_{did} has key {key}, which no client sent"))
            if status == "pending":
                v.append(("gifts", f"dn_{did} still pending after the queues settled"))
        for g in led.gifts.values():
            r = by_key.get(g.key)
            if g.state == "acked":
                if r is None:
                    v.append(("gifts", f"LOST: {g.id} (key {g.key}, 202 seen in round "
                                       f"{g.round}) is not in the database"))
                    continue
                did, _, cid, amount, status, token = r
                if f"dn_{did}" != g.id:
                    v.append(("gifts", f"key {g.key}: 202 said {g.id}, database has dn_{did}"))
                if amount != g.amount or camps.get(cid, ("?",))[0] != g.slug or token != g.token:
                    v.append(("gifts", f"{g.id}: stored amount/campaign/token differ from "
                                       "the request"))
                want = ("succeeded", "refunded") if g.token == "tok_visa" else ("failed",)
                if status not in want + ("pending",):
                    v.append(("gifts", f"{g.id} ({g.token}) is {status}"))
            elif g.state == "refused":
                if r is not None:
                    v.append(("gifts", f"key {g.key}: answered 409, yet recorded as dn_{r[0]}"))
            else:
                v.append(("gifts", f"key {g.key}: still without a final answer ({g.state})"))

    def check_charges(self, rows, v):
        st = tool_get(self.stripe.port, "/_stats")
        per = st.get("by_donation", {})
        charges = 0
        for dn, d in per.items():
            if d["charges"] > 1:
                v.append(("charges", f"DOUBLE CHARGE: {dn} charged {d['charges']} times "
                                     f"({d['intents']} intents, {d['confirms']} confirms)"))
            if d["intents"] > 1:
                v.append(("charges", f"{dn} has {d['intents']} PaymentIntents"))
            charges += d["charges"]
        refunded = 0
        for did, _, _, _, status, _ in rows:
            d = per.get(f"dn_{did}", {"charges": 0})
            if status in ("succeeded", "refunded") and d["charges"] != 1:
                v.append(("charges", f"dn_{did} is {status} but was charged "
                                     f"{d['charges']} times"))
            if status == "failed" and d["charges"]:
                v.append(("charges", f"dn_{did} failed but was charged"))
            refunded += status == "refunded"
        if charges != st["captures"]:
            v.append(("charges", f"stand-in: {st['captures']} captures, by donation {charges}"))
        if st["refunds"] != refunded:
            v.append(("charges", f"stand-in made {st['refunds']} refunds; {refunded} gifts "
                                 "are refunded"))
        self.stats = st

    def check_totals(self, led, db, v, live):
        """Memory and the campaigns rows against the gifts' sums."""
        camps = db.execute("SELECT id, slug, status, raised_cents, pending_cents, donor_count,"
                           " donation_count FROM campaigns").fetchall()
        sums = {r[0]: r[1:] for r in db.execute(
            "SELECT campaign_id, sum(iif(status = 'succeeded', amount_cents, 0)),"
            " sum(status = 'succeeded'), sum(iif(status = 'pending', amount_cents, 0))"
            " FROM donations GROUP BY campaign_id")}
        donors = dict(db.execute("SELECT campaign_id, count(*) FROM donors"
                                 " GROUP BY campaign_id").fetchall())
        client = Client(lambda: self.tally.port)
        try:
            for cid, slug, status, raised, pending, ndonors, count in camps:
                w = sums.get(cid, (0, 0, 0))
                exp = {"total_cents": w[0], "donation_count": w[1], "pending_cents": w[2],
                       "donor_count": donors.get(cid, 0)}
                got = {"total_cents": raised, "donation_count": count,
                       "pending_cents": pending, "donor_count": ndonors}
                for k in exp:
                    if got[k] != exp[k]:
                        v.append(("totals", f"{slug}: campaigns row {k} {got[k]}, sums of "
                                            f"the gifts {exp[k]}"))
                if status not in led.status[slug]:
                    v.append(("staff", f"{slug} is {status} in the database; the client "
                                       f"expects {sorted(led.status[slug])}"))
                if not live:
                    continue
                code, _, doc = client.request("GET", f"/api/v1/campaigns/{slug}")
                if code != 200:
                    v.append(("totals", f"GET {slug}: {code}"))
                    continue
                for k in exp:
                    if doc.get(k) != exp[k]:
                        v.append(("totals", f"{slug}: memory {k} {doc.get(k)}, database "
                                            f"sums {exp[k]}"))
                if doc.get("status") != status:
                    v.append(("staff", f"{slug}: memory says {doc.get('status')}, "
                                       f"database {status}"))
                led.status[slug] = {status}
        finally:
            client.close()

    def totals(self, led):
        """The totals alone (a check while tally runs, before the kill)."""
        v = []
        db = sqlite3.connect(f"file:{self.tally.db}?mode=ro", uri=True, timeout=10)
        try:
            self.check_totals(led, db, v, True)
        finally:
            db.close()
        return v

    def check_jobs(self, led, rows, sent, jobs, v, full_events):
        status = {r[0]: r[4] for r in rows}
        per = {}
        done_hooks = set()
        done_receipts = set()
        for jid, queue, kind, did, state, attempts, err in jobs:
            if did not in status:
                v.append(("jobs", f"job {jid} ({kind}) is for dn_{did}, which does not exist"))
                continue
            per.setdefault(did, []).append((kind, state))
            if state == "dead":
                v.append(("jobs", f"job {jid} ({queue} {kind} dn_{did}) is dead after "
                                  f"{attempts} attempts: {err}"))
            if state == "done" and queue == "webhooks":
                done_hooks.add(f"evt_{did}_{kind.split('.')[1]}")
            if state == "done" and kind == "receipt":
                done_receipts.add(did)
        for did, st in status.items():
            js = per.get(did, [])
            n = {}
            for kind, state in js:
                n[kind] = n.get(kind, 0) + 1
            need = {"capture": 1}
            if st in ("succeeded", "refunded"):
                need.update({"receipt": 1, "donation.succeeded": 1})
            if st == "failed":
                need.update({"donation.failed": 1})
            for kind, k in need.items():
                if n.get(kind, 0) != k:
                    v.append(("jobs", f"dn_{did} ({st}) has {n.get(kind, 0)} {kind} jobs, "
                                      f"expected {k}"))
            extra = set(n) - set(need) - {"refund", "donation.refunded"}
            if extra:
                v.append(("jobs", f"dn_{did} ({st}) has unexpected jobs {sorted(extra)}"))
            refunds_done = sum(1 for kind, state in js if kind == "refund" and state == "done")
            if st == "refunded" and (not refunds_done or not n.get("donation.refunded")):
                v.append(("jobs", f"dn_{did} is refunded with {refunds_done} done refund "
                                  f"jobs and {n.get('donation.refunded', 0)} "
                                  "donation.refunded jobs"))
            if st != "refunded" and refunds_done:
                v.append(("jobs", f"dn_{did} is {st} though a refund job is done"))
            if st == "refunded" and led.refunds.get(f"dn_{did}") is None:
                v.append(("refunds", f"dn_{did} is refunded; nobody asked"))
        for dn, s in led.refunds.items():
            if s == "acked" and status.get(dn_num(dn)) != "refunded":
                v.append(("refunds", f"{dn}: refund answered 202, gift is "
                                     f"{status.get(dn_num(dn))}"))
        # The sinks: every done job reached them (at least once).
        self.read_mail()
        # A receipt whose gift was refunded first is skipped (receipt.c):
        # done, not sent.
        for did in done_receipts:
            if did in sent and not self.mail.get(did):
                v.append(("jobs", f"dn_{did}: receipt recorded as sent, no mail at the "
                                  "SMTP sink"))
            if did not in sent and status[did] != "refunded":
                v.append(("jobs", f"dn_{did} ({status[did]}): receipt job done, not sent"))
        for did in sent:
            if did not in done_receipts:
                v.append(("jobs", f"dn_{did}: receipt sent, its job not done"))
        for n in self.mail:
            if status.get(n) not in ("succeeded", "refunded"):
                v.append(("jobs", f"a receipt was mailed for dn_{n}, which is "
                                  f"{status.get(n)}"))
        ev = tool_get(self.hook.port, "/_events" if full_events else "/_events?summary=1")
        if ev["bad_signatures"] or ev["bad_bodies"]:
            v.append(("jobs", f"webhook receiver: {ev['bad_signatures']} bad signatures, "
                              f"{ev['bad_bodies']} bad bodies"))
        if full_events:
            seen = {e.get("id") for e in ev["events"]}
            for e in sorted(done_hooks - seen):
                v.append(("jobs", f"webhook job for {e} done, the receiver never got it"))
            for e in sorted(seen - done_hooks):
                v.append(("jobs", f"the receiver got {e}, which no done job sent"))
        elif ev["distinct_ids"] != len(done_hooks):
            v.append(("jobs", f"webhook receiver saw {ev['distinct_ids']} distinct events; "
                              f"{len(done_hooks)} webhook jobs are done"))
        self.events = ev


# ---------------------------------------------------------------- the run

def report(rnd, v, per=10):
    """Each broken invariant with its first `per` cases and a count."""
    by = {}
    for inv, detail in v:
        by.setdefault(inv, []).append(detail)
    for inv, details in by.items():
        for d in details[:per]:
            print(f"VIOLATION round {rnd} [{inv}]: {d}", flush=True)
        if len(details) > per:
            print(f"VIOLATION round {rnd} [{inv}]: ... {len(details) - per} more", flush=True)
    print(f"round {rnd}: broken invariants: " +
          ", ".join(f"{inv} ({len(d)})" for inv, d in by.items()), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tally", default="build/release/tally")
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the folder even when all pass")
    ap.add_argument("--budget-s", type=float, default=900.0,
                    help="the whole run's deadline (default 900)")
    args = ap.parse_args()
    if args.rounds < 1 or args.rounds > 10000:
        ap.error("--rounds wants 1 to 10000")
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    binary = os.path.abspath(args.tally)
    if not os.access(binary, os.X_OK):
        ap.error(f"{binary} is not an executable (make build/release/tally)")
    print(f"torture: seed {seed} (replay: make torture ROUNDS={args.rounds} SEED={seed})",
          flush=True)
    rng = random.Random(seed)
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="tally-torture-")
    maildir = os.path.join(tmp, "mail")
    tools, tally, failed_round, ok_rounds = [], None, None, 0
    led = Ledger()
    try:
        stripe = Tool(tmp, "stripe_standin.py",
                      ["--latency-ms", "15", "--fail-rate", "0.1", "--seed", str(seed)])
        tools.append(stripe)
        smtp = Tool(tmp, "smtp_sink.py", ["--dir", maildir])
        tools.append(smtp)
        hook = Tool(tmp, "webhook_receiver.py", ["--secret", HOOK_SECRET])
        tools.append(hook)
        jobs = ",".join(["backoff-ms=10", "backoff-max-ms=100", "attempts=30"])
        tally = Tally(binary, tmp, [
            "--processor", "stripe", "--stripe-url", f"http://127.0.0.1:{stripe.port}",
            "--smtp-url", f"smtp://127.0.0.1:{smtp.port}",
            "--webhook", f"http://127.0.0.1:{hook.port}/hook", "--webhook-secret", HOOK_SECRET,
            "--job-retention-s", "0",
            "--jobs", "payments:" + jobs, "--jobs", "receipts:" + jobs,
            "--jobs", "webhooks:" + jobs])
        tally.start()
        client = Client(lambda: tally.port)
        for slug in CAMPAIGNS:
            code, _, doc = client.request("POST", "/api/v1/admin/campaigns", json.dumps(
                {"slug": slug, "name": slug.title(), "currency": "USD",
                 "goal_cents": 100000000}).encode(), admin_headers())
            if code != 201:
                raise Abort(f"creating campaign {slug}: {code} {doc}")
        client.close()
        checker = Checker(tally, stripe, hook, maildir)
        for rnd in range(1, args.rounds + 1):
            if time.monotonic() - t_start > args.budget_s:
                raise Abort(f"the run passed its budget of {args.budget_s:.0f} s")
            r0 = time.monotonic()
            before = dict(led.counts)
            n_acked = len(led.acked)
            load_s = rng.uniform(0.2, 2.0)
            after_s = rng.uniform(0.0, 0.3) if rng.random() < 0.25 else None
            # Warm-up: load, settle, and memory against the database
            # while tally still runs (the restart rebuilds memory from
            # the database, so this is where a wrong mirror shows).
            load(led, tally, seed, f"{rnd}w", rng.uniform(0.1, 0.4), False)
            stuck = settle(tally)
            v = [("jobs", stuck)] if stuck else checker.totals(led)
            if v:
                report(f"{rnd} (warm-up, before the kill)", v)
                failed_round = rnd
                break
            load(led, tally, seed, rnd, load_s, after_s is None)
            if after_s is not None:
                time.sleep(after_s)
            tally.kill()  # (reaps the one killed above)
            s0 = time.monotonic()
            tally.start()
            start_s = time.monotonic() - s0
            retried = resolve(led, tally, seed, rnd)
            s0 = time.monotonic()
            stuck = settle(tally)
            settle_s = time.monotonic() - s0
            check_s = 0.0
            v = list(led.violations)
            led.violations.clear()
            if stuck:
                v.append(("jobs", stuck))
            else:
                c0 = time.monotonic()
                v += checker.run(led)
                check_s = time.monotonic() - c0
            d = {k: led.counts.get(k, 0) - before.get(k, 0) for k in led.counts}
            kill = f"kill at {load_s:.2f} s" if after_s is None else \
                f"kill {after_s:.2f} s after {load_s:.2f} s of load"
            answers = ", ".join(f"{k[7:]}: {n}" for k, n in sorted(d.items())
                                if k.startswith("answer ") and n)
            print(f"round {rnd}/{args.rounds}: {kill}; {d.get('gifts sent', 0)} gifts sent, "
                  f"{len(led.acked) - n_acked} acked, {retried} resent after the restart "
                  f"({d.get('resent and replayed', 0)} had been recorded), "
                  f"{d.get('replays', 0)} replays, {d.get('refunds asked', 0)} refunds, "
                  f"{d.get('staff pause', 0) + d.get('staff resume', 0)} pause/resume "
                  f"(gift answers {answers}); "
                  f"restart {start_s:.2f} s, settle {settle_s:.2f} s, checks {check_s:.2f} s, "
                  f"round {time.monotonic() - r0:.2f} s; "
                  f"{'ok' if not v else 'FAILED'}", flush=True)
            if v:
                report(rnd, v)
                failed_round = rnd
                break
            ok_rounds += 1
        if failed_round is None:
            code = tally.term()
            v = []
            if code != 0:
                v.append(("stop", f"SIGTERM: tally exited {code} (see {tally.log})"))
            v += checker.run(led, live=False, full_events=True)
            if v:
                report("final", v)
                failed_round = "final"
    except Abort as e:
        print(f"ABORT: {e}", flush=True)
        failed_round = failed_round or "abort"
    finally:
        if tally:
            tally.kill()
        for t in tools:
            t.stop()
    st = getattr(locals().get("checker"), "stats", {})
    with led.lock:
        states = {}
        for g in led.gifts.values():
            states[g.state] = states.get(g.state, 0) + 1
    print(f"torture: {len(led.gifts)} gifts sent ({states}), "
          f"{sum(1 for s in led.refunds.values() if s == 'acked')} refunds, "
          f"{st.get('captures', 0)} captures and {st.get('injected', 0)} injected 500s "
          f"at the stand-in, {tally.runs if tally else 0} starts of tally", flush=True)
    if failed_round is None and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"torture: duration {time.monotonic() - t_start:.1f} s; seed {seed}"
          + ("" if failed_round is None and not args.keep else f"; folder kept: {tmp}"))
    if failed_round is None:
        print(f"torture: {ok_rounds} passed, 0 failed")
        return 0
    print(f"torture: {ok_rounds} passed, 1 failed (round {failed_round})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
