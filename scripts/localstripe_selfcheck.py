#!/usr/bin/env python3
"""Self-check of the patched localstripe (scripts/localstripe_launcher.py).

Run by hand, not by CI, against a running launcher:

    source scripts/lib.sh && ensure_localstripe      # or start the launcher yourself
    python3 scripts/localstripe_selfcheck.py [--url http://127.0.0.1:8420] [--dump DIR]

(only the standard library: any python3 will do). It prints each step and
exits non-zero at the first failure. Steps:

 1. the server at --url is the launcher (GET /_config/launcher);
 2. a webhook endpoint is registered (POST /_config/webhooks/<id>, secret
    whsec_selfcheck_0123456789) pointing at a small HTTP listener started
    here on 127.0.0.1 (and removed at the end);
 3. a PaymentIntent is created like Stripe's clients do (form-encoded
    `amount=500&currency=usd&metadata[entry_id]=...`, with an
    Idempotency-Key) and carries every field async-stripe 1.0 requires;
 4. the same create with the same key answers the same intent (replayed);
 5. the same key with another amount answers 400 idempotency_error;
 6. confirm with payment_method=pm_card_chargeCustomerFail: 402 card_error,
    intent back to requires_payment_method, payment_intent.payment_failed
    delivered with a valid signature;
 7. confirm again with pm_card_visa, as the app does (publishable key and
    client_secret): succeeded, payment_intent.succeeded delivered, its
    `Stripe-Signature: t=...,v1=...` verified (HMAC-SHA256 of "{t}.{body}");
 8. refund (POST /v1/refunds payment_intent=...): succeeded, charge.refunded
    delivered (refunded true, amount_refunded 500, payment_intent set); a
    second refund answers 400 charge_already_refunded;
 9. another intent is created and cancelled: canceled, and
    payment_intent.canceled delivered.

With --dump DIR it writes every JSON object it received (answers, errors,
webhook bodies) to DIR as <kind>-<n>.json (kind: payment_intent, charge,
refund, event, error), e.g. to parse them with async-stripe's own types.
"""

import argparse
import hashlib
import hmac
import http.server
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

SECRET = "whsec_selfcheck_0123456789"
SK = "sk_test_localstripe"
PK = "pk_test_localstripe"

# Fields async-stripe 1.0.0-rc.10 cannot do without (non-Option fields of the
# structs in async-stripe-shared: their deser_default() leaves them None).
REQUIRED = {
    "payment_intent": ["amount", "amount_capturable", "amount_received", "capture_method",
                       "confirmation_method", "created", "currency", "id", "livemode",
                       "metadata", "payment_method_types", "status"],
    "charge": ["amount", "amount_captured", "amount_refunded", "billing_details", "captured",
               "created", "currency", "disputed", "id", "livemode", "metadata", "paid",
               "refunded", "status"],
    "refund": ["amount", "created", "currency", "id"],
    "event": ["created", "data", "id", "livemode", "pending_webhooks", "type"],
    "error": ["type"],
}


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def step(msg):
    print("--- " + msg, flush=True)


def ok(msg):
    print("    ok: " + msg, flush=True)


class Dumper:
    def __init__(self, directory):
        self.dir = directory
        self.n = 0
        if directory:
            os.makedirs(directory, exist_ok=True)

    def __call__(self, kind, obj):
        if not self.dir:
            return
        self.n += 1
        with open(os.path.join(self.dir, "%s-%03d.json" % (kind, self.n)), "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)


def require_fields(kind, obj, dump):
    dump(kind, obj)
    missing = [k for k in REQUIRED[kind] if k not in obj or obj[k] is None]
    check(not missing, "%s %s lacks fields async-stripe requires: %s"
          % (kind, obj.get("id", ""), ", ".join(missing)))
    if kind == "payment_intent":
        err = obj.get("last_payment_error")
        if err is not None:
            require_fields("error", err, lambda *a: None)
        check(obj.get("latest_charge") is None or isinstance(obj["latest_charge"], str),
              "latest_charge is not an id")
    if kind == "charge" and obj.get("refunds") is not None:
        for k in ("data", "has_more", "url"):
            check(k in obj["refunds"], "charge.refunds lacks " + k)
        for r in obj["refunds"]["data"]:
            require_fields("refund", r, lambda *a: None)
    if kind == "event":
        check("object" in obj["data"], "event.data lacks object")


class Client:
    def __init__(self, base):
        self.base = base.rstrip("/")

    def call(self, method, path, params=None, key=SK, idempotency_key=None):
        data = None
        if params is not None:
            data = urllib.parse.urlencode(params).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if key:
            req.add_header("Authorization", "Bearer " + key)
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        if idempotency_key:
            req.add_header("Idempotency-Key", idempotency_key)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, headers, body = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, headers, body = e.code, e.headers, e.read()
        try:
            obj = json.loads(body) if body else None
        except ValueError:
            obj = body.decode("utf-8", "replace")
        return status, headers, obj


class Listener:
    """A tiny webhook receiver on 127.0.0.1: keeps (headers, raw body)."""

    def __init__(self):
        self.received = []
        self.cond = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.cond:
                    outer.received.append((dict(self.headers), body))
                    outer.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, event_type, object_id, timeout=10):
        """The first delivered event of that type about that object: (event, headers, body)."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for headers, body in self.received:
                    try:
                        ev = json.loads(body)
                    except ValueError:
                        continue
                    obj = ev.get("data", {}).get("object", {})
                    if ev.get("type") == event_type and object_id in (
                            obj.get("id"), obj.get("payment_intent")):
                        return ev, headers, body
                left = deadline - time.time()
                if left <= 0:
                    raise Failure("no %s event for %s within %ds" % (event_type, object_id, timeout))
                self.cond.wait(left)

    def close(self):
        self.server.shutdown()


def verify_signature(headers, body, secret=SECRET, tolerance=300):
    header = {k.lower(): v for k, v in headers.items()}.get("stripe-signature")
    check(header, "no Stripe-Signature header")
    t, v1s = None, []
    for part in header.split(","):
        k, _, v = part.partition("=")
        if k == "t":
            t = v
        elif k == "v1":
            v1s.append(v)
    check(t is not None and v1s, "malformed Stripe-Signature: " + header)
    expected = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    check(any(hmac.compare_digest(expected, v) for v in v1s), "signature does not verify")
    check(abs(time.time() - int(t)) <= tolerance, "signature timestamp %s out of tolerance" % t)
    return header


def run(url, dump):
    c = Client(url)
    run_id = uuid.uuid4().hex[:12]

    step("1. the launcher answers at " + url)
    try:
        status, _, info = c.call("GET", "/_config/launcher", key=None)
    except OSError as e:
        raise Failure("nothing answers at %s: %s" % (url, e))
    check(status == 200 and isinstance(info, dict) and "launcher" in info,
          "GET /_config/launcher: %s %r (plain localstripe, not the launcher?)" % (status, info))
    ok("%s, localstripe %s, pid %s" % (info["launcher"], info["localstripe"], info["pid"]))

    step("2. webhook endpoint -> a local listener")
    listener = Listener()
    hook_id = "selfcheck-" + run_id
    hook_url = "http://127.0.0.1:%d/webhook" % listener.port
    status, _, body = c.call("POST", "/_config/webhooks/" + hook_id,
                             {"url": hook_url, "secret": SECRET}, key=None)
    check(status == 200, "register webhook: %s %r" % (status, body))
    ok("%s -> %s" % (hook_id, hook_url))

    try:
        entry = str(uuid.uuid4())
        create = {"amount": "500", "currency": "usd", "metadata[entry_id]": entry}
        key = "selfcheck-%s-create" % entry

        step("3. create a PaymentIntent (form-encoded, Idempotency-Key)")
        status, headers, pi = c.call("POST", "/v1/payment_intents", create, idempotency_key=key)
        check(status == 200, "create: %s %r" % (status, pi))
        require_fields("payment_intent", pi, dump)
        check(pi["status"] == "requires_payment_method", "status " + pi["status"])
        check(pi["metadata"].get("entry_id") == entry, "metadata lost: %r" % pi["metadata"])
        check(pi.get("client_secret"), "no client_secret")
        ok("%s %s, amount %d %s, metadata[entry_id]=%s"
           % (pi["id"], pi["status"], pi["amount"], pi["currency"], entry))

        step("4. the same create, same key: the same intent")
        status, headers, again = c.call("POST", "/v1/payment_intents", create, idempotency_key=key)
        check(status == 200 and again.get("id") == pi["id"],
              "replay: %s %r" % (status, again))
        check(headers.get("Idempotent-Replayed") == "true", "no Idempotent-Replayed header")
        ok("%s again (Idempotent-Replayed: true)" % again["id"])

        step("5. same key, another amount: 400 idempotency_error")
        status, _, err = c.call("POST", "/v1/payment_intents", dict(create, amount="600"),
                                idempotency_key=key)
        check(status == 400 and err["error"]["type"] == "idempotency_error",
              "expected 400 idempotency_error, got %s %r" % (status, err))
        require_fields("error", err["error"], dump)
        ok("400 %s: %s" % (err["error"]["type"], err["error"]["message"][:60] + "..."))

        step("6. confirm with pm_card_chargeCustomerFail: declined")
        status, _, err = c.call("POST", "/v1/payment_intents/%s/confirm" % pi["id"],
                                {"payment_method": "pm_card_chargeCustomerFail"},
                                idempotency_key="selfcheck-%s-confirm-1" % entry)
        check(status == 402, "expected 402, got %s %r" % (status, err))
        e = err["error"]
        require_fields("error", e, dump)
        check(e["type"] == "card_error" and e.get("code") == "card_declined",
              "error %r" % e)
        check(e.get("payment_intent", {}).get("status") == "requires_payment_method",
              "error.payment_intent %r" % e.get("payment_intent"))
        require_fields("payment_intent", e["payment_intent"], dump)
        status, _, cur = c.call("GET", "/v1/payment_intents/" + pi["id"])
        check(status == 200 and cur["status"] == "requires_payment_method", "after decline: %r" % cur)
        check(cur["last_payment_error"]["type"] == "card_error", "last_payment_error %r"
              % cur["last_payment_error"])
        require_fields("payment_intent", cur, dump)
        ok("402 %s/%s (%s); intent %s, last_payment_error.type=%s"
           % (e["type"], e["code"], e.get("decline_code"), cur["status"],
              cur["last_payment_error"]["type"]))
        ev, headers, body = listener.wait_for("payment_intent.payment_failed", pi["id"])
        require_fields("event", ev, dump)
        verify_signature(headers, body)
        ok("webhook %s %s delivered, signature verifies" % (ev["type"], ev["id"]))

        step("7. confirm with pm_card_visa as the app does (pk + client_secret): succeeded")
        status, _, done = c.call("POST", "/v1/payment_intents/%s/confirm" % pi["id"],
                                 {"payment_method": "pm_card_visa",
                                  "client_secret": pi["client_secret"]}, key=PK)
        check(status == 200, "confirm: %s %r" % (status, done))
        require_fields("payment_intent", done, dump)
        check(done["status"] == "succeeded" and done["amount_received"] == 500,
              "after confirm: status %s, amount_received %s"
              % (done["status"], done["amount_received"]))
        check(done["last_payment_error"] is None, "last_payment_error still set")
        ok("%s %s, latest_charge %s, payment_method %s"
           % (done["id"], done["status"], done["latest_charge"], done["payment_method"]))
        status, _, charge = c.call("GET", "/v1/charges/" + done["latest_charge"])
        check(status == 200, "charge: %s %r" % (status, charge))
        require_fields("charge", charge, dump)
        ev, headers, body = listener.wait_for("payment_intent.succeeded", pi["id"])
        require_fields("event", ev, dump)
        sig = verify_signature(headers, body)
        check(ev["data"]["object"]["status"] == "succeeded", "event object status")
        check(ev["request"]["id"], "event.request.id empty")
        ok("webhook %s %s delivered; %s verifies (HMAC-SHA256 of \"{t}.{body}\")"
           % (ev["type"], ev["id"], sig[:14] + "..."))

        step("8. refund it")
        rkey = "selfcheck-%s-refund" % entry
        status, _, refund = c.call("POST", "/v1/refunds", {"payment_intent": pi["id"]},
                                   idempotency_key=rkey)
        check(status == 200, "refund: %s %r" % (status, refund))
        require_fields("refund", refund, dump)
        check(refund["status"] == "succeeded" and refund["amount"] == 500
              and refund["payment_intent"] == pi["id"], "refund %r" % refund)
        ok("%s %s, amount %d, payment_intent %s"
           % (refund["id"], refund["status"], refund["amount"], refund["payment_intent"]))
        status, _, again = c.call("POST", "/v1/refunds", {"payment_intent": pi["id"]},
                                  idempotency_key=rkey)
        check(status == 200 and again["id"] == refund["id"], "refund replay %s %r"
              % (status, again))
        ok("same key: the same refund %s" % again["id"])
        ev, headers, body = listener.wait_for("charge.refunded", pi["id"])
        require_fields("event", ev, dump)
        verify_signature(headers, body)
        ch = ev["data"]["object"]
        require_fields("charge", ch, dump)
        check(ch["refunded"] is True and ch["amount_refunded"] == 500
              and ch["payment_intent"] == pi["id"], "charge.refunded object %r" % ch)
        ok("webhook charge.refunded %s: %s refunded=%s amount_refunded=%d payment_intent=%s"
           % (ev["id"], ch["id"], ch["refunded"], ch["amount_refunded"], ch["payment_intent"]))
        status, _, err = c.call("POST", "/v1/refunds", {"payment_intent": pi["id"]},
                                idempotency_key=rkey + "-2")
        check(status == 400 and err["error"].get("code") == "charge_already_refunded",
              "second refund: %s %r" % (status, err))
        ok("another refund: 400 %s" % err["error"]["code"])

        step("9. create another intent and cancel it")
        entry2 = str(uuid.uuid4())
        status, _, pi2 = c.call("POST", "/v1/payment_intents",
                                {"amount": "700", "currency": "usd", "metadata[entry_id]": entry2},
                                idempotency_key="selfcheck-%s-create" % entry2)
        check(status == 200, "create: %s %r" % (status, pi2))
        status, _, canceled = c.call("POST", "/v1/payment_intents/%s/cancel" % pi2["id"], {},
                                     idempotency_key="selfcheck-%s-cancel" % entry2)
        check(status == 200, "cancel: %s %r" % (status, canceled))
        require_fields("payment_intent", canceled, dump)
        check(canceled["status"] == "canceled" and canceled["canceled_at"],
              "after cancel: %r" % canceled)
        ok("%s %s" % (canceled["id"], canceled["status"]))
        ev, headers, body = listener.wait_for("payment_intent.canceled", pi2["id"])
        require_fields("event", ev, dump)
        verify_signature(headers, body)
        ok("webhook %s %s delivered, signature verifies" % (ev["type"], ev["id"]))
    finally:
        c.call("DELETE", "/_config/webhooks/" + hook_id, key=None)
        listener.close()


def main():
    parser = argparse.ArgumentParser(description="Self-check of the patched localstripe.")
    parser.add_argument("--url", default=os.environ.get(
        "LOCALSTRIPE_URL", "http://127.0.0.1:%s" % os.environ.get("LOCALSTRIPE_PORT", "8420")))
    parser.add_argument("--dump", help="write every JSON object received to this directory")
    args = parser.parse_args()
    try:
        run(args.url, Dumper(args.dump))
    except Failure as e:
        print("FAILED: %s" % e, flush=True)
        return 1
    print("self-check passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
