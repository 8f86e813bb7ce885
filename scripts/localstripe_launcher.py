#!/usr/bin/env python3
"""localstripe (a fake, stateful Stripe server) patched for async-stripe 1.0.

Runs localstripe's aiohttp application in this process after patching it, so
that the service's Stripe client (async-stripe 1.0.0-rc.10) and its tests can
talk to it as to Stripe. Started by `ensure_localstripe` in scripts/lib.sh,
from the virtualenv in .venv (scripts/localstripe-requirements.txt):

    .venv/bin/python scripts/localstripe_launcher.py [--port 8420] [--from-scratch]

What is patched (see shared notes "stripe-and-localstripe"):

- responses carry the fields async-stripe 1.0 requires (localstripe omits
  them): PaymentIntent `amount_capturable`, `amount_received`,
  `confirmation_method`, `payment_method_types`, `latest_charge` as an id
  (unless expanded), `last_payment_error.type`; Charge `amount_captured`,
  `billing_details`, `disputed`; Event `pending_webhooks`, `request`, and
  `api_version` set to the version the pinned SDK sends; Refund
  `payment_intent`, `reason` and Stripe's other nullable fields;
- `Idempotency-Key` (POST only): a repeated key replays the first answer
  (2xx and 402 answers are kept, 24 h, in memory), with the header
  `Idempotent-Replayed: true`; the same key with other parameters or on
  another endpoint answers 400 `idempotency_error`;
- `POST /v1/payment_intents/{id}/confirm` takes `payment_method` (e.g.
  `pm_card_visa`, or `pm_card_chargeCustomerFail` for a decline): an intent
  created without one can be confirmed as the app does, and confirmed again
  after a decline. It also accepts the publishable key (`pk_...`) when
  `client_secret` matches, as Stripe does for the app; so does
  `GET /v1/payment_intents/{id}?client_secret=...`. A decline answers 402
  `card_error` carrying the intent, whose payment method is then cleared;
- events: `charge.refunded` when a refund is created (object: the Charge,
  with `refunded`, `amount_refunded`, `payment_intent`) and
  `payment_intent.canceled` when an intent is cancelled, besides localstripe's
  `payment_intent.succeeded` and `payment_intent.payment_failed`;
- lists (`GET /v1/payment_intents`, `/v1/refunds`, ...) are newest first, as
  Stripe's are;
- accepted parameters that localstripe refuses: PaymentIntent create
  `description`, `automatic_payment_methods`, `payment_method_types` (kept);
  cancel `cancellation_reason`; refund `reason`. A refund larger than what is
  left on the charge is refused (`charge_already_refunded` when nothing is);
- cancel and confirm in a state Stripe refuses answer 400
  `payment_intent_unexpected_state` instead of a bare "Bad request";
- webhook deliveries wait `--webhook-delay` seconds (localstripe: 1) and give
  up after 10 s; `DELETE /_config/webhooks/{id}` removes an endpoint;
- `GET /_config/launcher` says who this is (used by scripts/lib.sh to reuse
  a running launcher only when it is this one, from this source).

Still localstripe's: `POST /_config/webhooks/{id}` with `url=...`,
`secret=whsec_...` (and optionally `events[]=...`) registers an endpoint:
every registered endpoint gets every event (unless filtered), signed
`t=<created>,v1=<hmac-sha256 hex of "{t}.{body}">`, delivered once, never
retried. `DELETE /_config/data` wipes all objects (and the replay cache).
Any `sk_...` key is accepted.

Listening: `--host` defaults to 127.0.0.1 (localstripe itself has no such
option and listens on every interface; `--host ::` does that here).
Everything is logged to stderr, one line per record.
"""

import argparse
import asyncio
import contextvars
import hashlib
import hmac
import json
import logging
import os
import random
import re
import socket
import string
import sys
import time
import urllib.parse

import aiohttp
from aiohttp import web

import localstripe
from localstripe import resources, webhooks
from localstripe.errors import UserError
from localstripe.resources import (
    Charge,
    Event,
    PaymentIntent,
    PaymentMethod,
    Refund,
    StripeObject,
    extra_apis,
    schedule_webhook,
    store,
)

LAUNCHER_NAME = "contest-backend localstripe_launcher"
# The API version async-stripe 1.0.0-rc.10 sends (stripe_shared::version::VERSION).
SDK_API_VERSION = "2026-09-30.endive"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
WEBHOOK_TIMEOUT_SECONDS = 10

log = logging.getLogger("localstripe_launcher")

# Set by the request-context middleware, read when an Event is created.
_request_id = contextvars.ContextVar("request_id", default=None)
_idempotency_key = contextvars.ContextVar("idempotency_key", default=None)

_settings = {"webhook_delay": 1.0}


def _random_id(n=14):
    return "".join(random.choice(string.ascii_letters + string.digits) for _ in range(n))


def _source_sha256():
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _error(status, message, type_="invalid_request_error", **fields):
    """A Stripe-style UserError: {"error": {"type", "message", ...}}."""
    e = UserError(status, message, {k: v for k, v in fields.items() if v is not None})
    e.body["error"]["type"] = type_
    return e


# --------------------------------------------------------------------------
# Errors: a 402 is a card error in Stripe (localstripe says invalid_request).

_orig_user_error_init = UserError.__init__


def _user_error_init(self, code, message=None, contents=None):
    _orig_user_error_init(self, code, message, contents)
    if code == 402:
        self.body["error"]["type"] = "card_error"
        if self.body["error"].get("code") == "card_declined":
            self.body["error"].setdefault("decline_code", "generic_decline")


UserError.__init__ = _user_error_init


# --------------------------------------------------------------------------
# _export: the fields async-stripe 1.0 requires.


def _patch_export(cls, fix):
    orig = cls._export

    def _export(self, expand=None):
        obj = orig(self, expand=expand)
        fix(self, obj, expand or [])
        return obj

    cls._export = _export


def _expanded(expand, field):
    return any(p == field or p.startswith(field + ".") for p in expand)


def _fix_payment_intent(pi, obj, expand):
    status = pi.status
    charge = pi.latest_charge
    obj["amount_capturable"] = pi.amount if status == "requires_capture" else 0
    obj["amount_received"] = pi.amount if status == "succeeded" else 0
    obj["confirmation_method"] = "automatic"
    obj["payment_method_types"] = list(getattr(pi, "payment_method_types", None) or ["card"])
    if charge is not None and not _expanded(expand, "latest_charge"):
        obj["latest_charge"] = charge.id
    obj.pop("charges", None)  # removed from the API in 2022; async-stripe has no such field
    obj.pop("invoice", None)  # not a PaymentIntent field any more either
    err = obj.get("last_payment_error")
    if isinstance(err, dict):
        err = dict(err)
        if err.get("code") == "card_declined":
            err["type"] = "card_error"
            err.setdefault("decline_code", "generic_decline")
        else:
            err.setdefault("type", "invalid_request_error")
        obj["last_payment_error"] = err
    obj["canceled_at"] = getattr(pi, "_canceled_at", None) if status == "canceled" else None
    obj["cancellation_reason"] = (
        getattr(pi, "_cancellation_reason", None) if status == "canceled" else None
    )
    obj.setdefault("description", None)
    obj.setdefault("automatic_payment_methods", None)
    for field in (
        "application",
        "application_fee_amount",
        "on_behalf_of",
        "processing",
        "receipt_email",
        "review",
        "setup_future_usage",
        "shipping",
        "source",
        "statement_descriptor",
        "statement_descriptor_suffix",
        "transfer_data",
        "transfer_group",
    ):
        obj.setdefault(field, None)


def _fix_charge(ch, obj, expand):
    obj["amount_captured"] = ch.amount if (ch.captured and ch.status == "succeeded") else 0
    obj["disputed"] = False
    billing = {"address": None, "email": None, "name": None, "phone": None, "tax_id": None}
    try:
        pm = store.get("payment_method:" + (ch.payment_method or ""))
        if pm is not None and isinstance(getattr(pm, "billing_details", None), dict):
            billing.update({k: v for k, v in pm.billing_details.items() if k in billing})
    except Exception:  # noqa: BLE001 - best effort, never break an answer
        pass
    obj["billing_details"] = billing
    obj.pop("invoice", None)
    for field in (
        "application",
        "application_fee",
        "application_fee_amount",
        "calculated_statement_descriptor",
        "on_behalf_of",
        "outcome",
        "review",
        "shipping",
        "source_transfer",
        "transfer_data",
        "transfer_group",
    ):
        obj.setdefault(field, None)


def _fix_refund(rf, obj, expand):
    if obj.get("payment_intent") is None:
        charge = store.get("charge:" + (rf.charge or ""))
        obj["payment_intent"] = getattr(charge, "payment_intent", None)
    obj["reason"] = getattr(rf, "_reason", None)
    obj.pop("date", None)  # not a Stripe field
    for field in (
        "description",
        "destination_details",
        "failure_balance_transaction",
        "failure_reason",
        "next_action",
        "receipt_number",
        "source_transfer_reversal",
        "transfer_reversal",
    ):
        obj.setdefault(field, None)


def _fix_event(ev, obj, expand):
    obj["api_version"] = SDK_API_VERSION
    obj["pending_webhooks"] = sum(
        1
        for w in webhooks._webhooks.values()
        if w.events is None or ev.type in w.events
    )
    obj["request"] = getattr(ev, "_request", None) or {"id": None, "idempotency_key": None}


_patch_export(PaymentIntent, _fix_payment_intent)
_patch_export(Charge, _fix_charge)
_patch_export(Refund, _fix_refund)
_patch_export(Event, _fix_event)

_orig_event_init = Event.__init__


def _event_init(self, type, data):
    _orig_event_init(self, type, data)
    self._request = {"id": _request_id.get(), "idempotency_key": _idempotency_key.get()}


Event.__init__ = _event_init


# --------------------------------------------------------------------------
# Lists: newest first, as Stripe lists (localstripe: oldest first, so that a
# `limit=100` list misses the newest objects once there are more).

_orig_list_all = StripeObject._api_list_all.__func__


def _list_all_newest_first(cls, url, limit=None, starting_after=None, **kwargs):
    li = _orig_list_all(cls, url, limit=limit, starting_after=starting_after, **kwargs)
    li._list.reverse()
    return li


StripeObject._api_list_all = classmethod(_list_all_newest_first)


# --------------------------------------------------------------------------
# PaymentIntent: parameters Stripe accepts, confirm with a payment method,
# cancel with a reason and an event.

_orig_pi_init = PaymentIntent.__init__


def _pi_init(self, description=None, automatic_payment_methods=None,
             payment_method_types=None, **kwargs):
    if description is not None and not isinstance(description, str):
        raise _error(400, "Invalid string: description", param="description")
    apm = None
    if automatic_payment_methods is not None:
        if not isinstance(automatic_payment_methods, dict):
            raise _error(400, "Invalid object", param="automatic_payment_methods")
        enabled = resources.try_convert_to_bool(automatic_payment_methods.get("enabled"))
        if not isinstance(enabled, bool):
            raise _error(400, "Missing required param: automatic_payment_methods[enabled].",
                         param="automatic_payment_methods[enabled]")
        apm = {"enabled": enabled}
        if automatic_payment_methods.get("allow_redirects") in ("always", "never"):
            apm["allow_redirects"] = automatic_payment_methods["allow_redirects"]
    if payment_method_types is not None:
        if not (isinstance(payment_method_types, list)
                and all(isinstance(t, str) for t in payment_method_types)):
            raise _error(400, "Invalid array", param="payment_method_types")
    _orig_pi_init(self, **kwargs)
    self.description = description
    self.automatic_payment_methods = apm
    self.payment_method_types = payment_method_types or ["card"]


PaymentIntent.__init__ = _pi_init

_orig_pi_confirm = PaymentIntent._api_confirm
_orig_pi_cancel = PaymentIntent._api_cancel

CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation",
              "requires_action", "processing")
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")


def _retrieve_pi(id):
    if not (isinstance(id, str) and id.startswith("pi_")):
        raise _error(400, "Bad request")
    return PaymentIntent._api_retrieve(id)


def _unexpected_state(pi, what):
    return _error(
        400,
        "You cannot %s this PaymentIntent because it has a status of %s." % (what, pi.status),
        code="payment_intent_unexpected_state",
        payment_intent=pi._export(),
    )


def _api_confirm(id=None, payment_method=None, client_secret=None, return_url=None,
                 use_stripe_sdk=None, **kwargs):
    if kwargs:
        raise _error(400, "Received unknown parameter: " + ", ".join(kwargs.keys()),
                     param=next(iter(kwargs)))
    pi = _retrieve_pi(id)
    if client_secret is not None and client_secret != pi.client_secret:
        raise _error(400, "The client_secret provided does not match the client_secret "
                     "associated with the PaymentIntent.", param="client_secret")
    if payment_method is not None:
        if not (isinstance(payment_method, str)
                and payment_method.startswith(("pm_", "card_", "src_"))):
            raise _error(400, "Invalid payment_method", param="payment_method")
        if pi.status not in ("requires_payment_method", "requires_confirmation",
                             "requires_action"):
            raise _unexpected_state(pi, "confirm")
        try:
            pm = PaymentMethod._api_retrieve(payment_method)
        except UserError:
            raise _error(400, "No such PaymentMethod: '%s'" % payment_method,
                         code="resource_missing", param="payment_method")
        # A canonical test id (pm_card_visa) makes a new PaymentMethod: keep its id.
        pi.payment_method = pm.id
        pi.latest_charge = None
        pi.next_action = None
        pi._authentication_failed = False
    elif pi.status == "requires_payment_method":
        raise _error(400, "You cannot confirm this PaymentIntent because it's missing a "
                     "payment method. Update the PaymentIntent with a payment method and "
                     "then confirm it again.", code="payment_intent_unexpected_state",
                     payment_intent=pi._export())
    elif pi.status != "requires_confirmation":
        raise _unexpected_state(pi, "confirm")
    try:
        return _orig_pi_confirm(id)
    except UserError as e:
        if e.code == 402:
            # Stripe: the attempt failed, the intent is back to
            # requires_payment_method without a payment method.
            pi.payment_method = None
            e.body["error"]["payment_intent"] = pi._export()
        raise


def _api_cancel(id=None, cancellation_reason=None, **kwargs):
    if kwargs:
        raise _error(400, "Received unknown parameter: " + ", ".join(kwargs.keys()),
                     param=next(iter(kwargs)))
    pi = _retrieve_pi(id)
    if cancellation_reason is not None and cancellation_reason not in CANCELLATION_REASONS:
        raise _error(400, "Invalid cancellation_reason: must be one of "
                     + ", ".join(CANCELLATION_REASONS), param="cancellation_reason")
    if pi.status not in CANCELABLE:
        raise _error(
            400,
            "You cannot cancel this PaymentIntent because it has a status of %s. Only a "
            "PaymentIntent with one of the following statuses may be canceled: %s."
            % (pi.status, ", ".join(CANCELABLE)),
            code="payment_intent_unexpected_state",
            payment_intent=pi._export(),
        )
    _orig_pi_cancel(id)
    pi._canceled_at = int(time.time())
    pi._cancellation_reason = cancellation_reason
    schedule_webhook(Event("payment_intent.canceled", pi))
    return pi


for _i, (_method, _url, _func) in enumerate(extra_apis):
    if (_method, _url) == ("POST", "/v1/payment_intents/{id}/confirm"):
        extra_apis[_i] = (_method, _url, _api_confirm)
    elif (_method, _url) == ("POST", "/v1/payment_intents/{id}/cancel"):
        extra_apis[_i] = (_method, _url, _api_cancel)
assert any(f is _api_confirm for _, _, f in extra_apis), "localstripe: no confirm route to patch"
assert any(f is _api_cancel for _, _, f in extra_apis), "localstripe: no cancel route to patch"


# --------------------------------------------------------------------------
# Refunds: reason, no refund beyond the charge, charge.refunded.

_orig_refund_init = Refund.__init__
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def _refund_init(self, charge=None, payment_intent=None, amount=None, metadata=None,
                 reason=None, **kwargs):
    if reason is not None and reason not in REFUND_REASONS:
        raise _error(400, "Invalid reason: must be one of " + ", ".join(REFUND_REASONS),
                     param="reason")
    charge_obj = None
    if charge is None and isinstance(payment_intent, str) and payment_intent.startswith("pi_"):
        pi = PaymentIntent._api_retrieve(payment_intent)
        if pi.latest_charge is None:
            raise _error(400, "This PaymentIntent (%s) does not have a successful charge to "
                         "refund." % payment_intent, param="payment_intent")
        charge_obj = pi.latest_charge
    elif isinstance(charge, str) and charge.startswith("ch_"):
        charge_obj = Charge._api_retrieve(charge)
    if charge_obj is not None and charge_obj.status == "succeeded":
        left = charge_obj.amount - charge_obj.amount_refunded
        wanted = resources.try_convert_to_int(amount) if amount is not None else left
        if left <= 0:
            raise _error(400, "Charge %s has already been refunded." % charge_obj.id,
                         code="charge_already_refunded", charge=charge_obj.id)
        if isinstance(wanted, int) and wanted > left:
            raise _error(400, "Refund amount (%d) is greater than unrefunded amount on "
                         "charge (%d)" % (wanted, left), param="amount")
        if amount is None:
            amount = left  # Stripe refunds what is left; localstripe the whole charge
    _orig_refund_init(self, charge=charge, payment_intent=payment_intent, amount=amount,
                      metadata=metadata, **kwargs)
    self._reason = reason
    refunded_charge = Charge._api_retrieve(self.charge)
    schedule_webhook(Event("charge.refunded", refunded_charge))


Refund.__init__ = _refund_init


# --------------------------------------------------------------------------
# Webhook delivery: configurable delay, a timeout, endpoints in parallel.


async def _send_webhook(event):
    payload = json.dumps(event._export(), indent=2, sort_keys=True).encode("utf-8")
    signed_payload = b"%d.%s" % (event.created, payload)
    await asyncio.sleep(_settings["webhook_delay"])
    targets = [
        (wid, w) for wid, w in list(webhooks._webhooks.items())
        if w.events is None or event.type in w.events
    ]
    if not targets:
        return
    timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS)

    async def deliver(session, wid, w):
        signature = hmac.new(w.secret.encode("utf-8"), signed_payload, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": "t=%d,v1=%s" % (event.created, signature),
        }
        try:
            async with session.post(w.url, data=payload, headers=headers) as r:
                log.info("webhook %s %s -> %s [%s]: %d", event.id, event.type, wid, w.url, r.status)
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            log.info("webhook %s %s -> %s [%s] failed: %r", event.id, event.type, wid, w.url, e)

    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(deliver(session, wid, w) for wid, w in targets))


webhooks._send_webhook = _send_webhook  # schedule_webhook looks it up at call time


# --------------------------------------------------------------------------
# The server: import it only now (it registers the routes when imported).

from localstripe import server  # noqa: E402

app = server.app
CONFIRM_PATH = re.compile(r"^/v1/payment_intents/(pi_\w+)/confirm$")
RETRIEVE_PATH = re.compile(r"^/v1/payment_intents/(pi_\w+)$")


def _request_key(request, data):
    header = request.headers.get("Authorization", "").split(" ")
    if len(header) == 2 and header[0] == "Bearer":
        return header[1]
    if isinstance(data, dict) and isinstance(data.get("key"), str):
        return data["key"]
    return None


@web.middleware
async def context_middleware(request, handler):
    """A Request-Id on every answer; request id and idempotency key for events."""
    req_id = "req_" + _random_id()
    _request_id.set(req_id)
    _idempotency_key.set(request.headers.get("Idempotency-Key") if request.method == "POST" else None)
    response = await handler(request)
    response.headers["Request-Id"] = req_id
    return response


@web.middleware
async def auth_middleware(request, handler):
    """localstripe's, plus the app's way: a publishable key and the client secret."""
    m = None
    if request.method == "POST":
        m = CONFIRM_PATH.match(request.path)
    elif request.method == "GET":
        m = RETRIEVE_PATH.match(request.path)
    if m:
        if request.method == "POST":
            data = await server.get_post_data(request, remove_auth=False) or {}
        else:
            data = server.unflatten_data(request.query)
        key = _request_key(request, data)
        if isinstance(key, str) and key.startswith("pk_") and len(key) > 5:
            pi = store.get("payment_intent:" + m.group(1))
            if pi is None or data.get("client_secret") != pi.client_secret:
                raise UserError(401, "Unauthorized")
            return await handler(request)
    return await server.auth_middleware(request, handler)


# key -> dict(method, path, params, status, body, content_type, at)
_idempotent = {}
_in_flight = set()


def _canonical_params(request, body):
    try:
        return json.dumps(json.loads(body), sort_keys=True)
    except ValueError:
        pass
    pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return json.dumps(sorted(pairs))


@web.middleware
async def idempotency_middleware(request, handler):
    if request.method == "DELETE" and request.path == "/_config/data":
        _idempotent.clear()
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key or request.path.startswith("/_config/"):
        return await handler(request)

    body = await request.read()
    params = _canonical_params(request, body)
    now = time.time()
    for k in [k for k, v in _idempotent.items() if now - v["at"] > IDEMPOTENCY_TTL_SECONDS]:
        del _idempotent[k]

    seen = _idempotent.get(key)
    if seen is not None:
        if (seen["method"], seen["path"]) != (request.method, request.path):
            raise _error(
                400,
                "Keys for idempotent requests can only be used for the same endpoint they "
                "were first used for ('%s' vs '%s'). Try using a key other than '%s' if you "
                "meant to execute a different request." % (seen["path"], request.path, key),
                type_="idempotency_error",
            )
        if seen["params"] != params:
            raise _error(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                "were first used with. Try using a key other than '%s' if you meant to "
                "execute a different request." % key,
                type_="idempotency_error",
            )
        log.info("idempotency key %r: replaying the %d answer", key, seen["status"])
        return web.Response(
            body=seen["body"],
            status=seen["status"],
            content_type=seen["content_type"],
            headers={"Idempotent-Replayed": "true", "Original-Request": seen["request_id"]},
        )
    if key in _in_flight:
        raise _error(
            409,
            "There is currently another in-progress request using this Idempotent Key "
            "(that probably means you submitted twice, and the other request is still going "
            "through): %s. Please try again later." % key,
            type_="idempotency_error",
            code="idempotency_key_in_use",
        )

    _in_flight.add(key)
    try:
        try:
            response = await handler(request)
        except UserError as e:
            response = e.to_response()
        # Stripe keeps an answer once the endpoint has run: successes and card
        # declines; not the validation errors (4xx) nor server errors here.
        if (200 <= response.status < 300 or response.status == 402) and isinstance(
                getattr(response, "body", None), (bytes, bytearray)):
            _idempotent[key] = {
                "method": request.method,
                "path": request.path,
                "params": params,
                "status": response.status,
                "body": bytes(response.body),
                "content_type": response.content_type,
                "request_id": _request_id.get(),
                "at": now,
            }
        return response
    finally:
        _in_flight.discard(key)


def _install_middlewares():
    mws = app.middlewares  # a FrozenList, still mutable before the app starts
    i = list(mws).index(server.auth_middleware)
    mws[i] = auth_middleware
    mws.insert(i + 1, idempotency_middleware)
    mws.insert(0, context_middleware)


async def launcher_info(request):
    return web.json_response({
        "launcher": LAUNCHER_NAME,
        "source_sha256": app["launcher_source_sha256"],
        "pid": os.getpid(),
        "localstripe": localstripe.__version__,
        "api_version": SDK_API_VERSION,
    })


async def delete_webhook(request):
    webhooks._webhooks.pop(request.match_info["id"], None)
    return web.Response()


def _patch_store(state_file, persist):
    def try_load_from_disk():
        if not persist:
            return
        try:
            with open(state_file, "rb") as f:
                import pickle
                old = pickle.load(f)
        except FileNotFoundError:
            return
        store.clear()
        store.update(old)

    def dump_to_disk():
        if not persist:
            return
        import pickle
        tmp = state_file + ".tmp"
        with open(tmp, "wb") as f:
            pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, state_file)

    # On the instance: Store.__setitem__ calls self.dump_to_disk().
    store.try_load_from_disk = try_load_from_disk
    store.dump_to_disk = dump_to_disk


def _listening_socket(host, port):
    if host in ("::", "*", "all"):
        # localstripe's own way: IPv6 and IPv4 on every interface.
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("::", port))
        return sock
    family, type_, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, type_, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(addr)
    return sock


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; '::' for every "
                             "interface, as plain localstripe does)")
    parser.add_argument("--from-scratch", action="store_true",
                        help="ignore the state saved by an earlier run")
    parser.add_argument("--state-file", default="/tmp/localstripe.pickle",
                        help="where objects are saved after each change (localstripe's "
                             "default: /tmp/localstripe.pickle)")
    parser.add_argument("--no-persist", action="store_true",
                        help="keep objects in memory only (faster; implies nothing to load)")
    parser.add_argument("--webhook-delay", type=float, default=1.0,
                        help="seconds between an event and its delivery (default 1.0)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error("--port must be 1 to 65535")

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if not localstripe.__version__.startswith("1.15."):
        log.warning("localstripe %s: the patches were written for 1.15.x", localstripe.__version__)

    _settings["webhook_delay"] = max(0.0, args.webhook_delay)
    _patch_store(args.state_file, persist=not args.no_persist)
    if not args.from_scratch:
        store.try_load_from_disk()

    _install_middlewares()
    app["launcher_source_sha256"] = _source_sha256()
    app.router.add_get("/_config/launcher", launcher_info)
    app.router.add_delete("/_config/webhooks/{id}", delete_webhook)

    try:
        sock = _listening_socket(args.host, args.port)
    except OSError as e:
        log.error("cannot listen on %s port %d: %s", args.host, args.port, e)
        return 1
    log.info(
        "localstripe %s (patched for async-stripe, API version %s) on %s port %d, "
        "state %s, webhook delay %.2fs, pid %d",
        localstripe.__version__, SDK_API_VERSION, args.host, args.port,
        "in memory" if args.no_persist else args.state_file, _settings["webhook_delay"],
        os.getpid(),
    )
    web.run_app(
        app,
        sock=sock,
        access_log=logging.getLogger("aiohttp.access"),
        print=lambda *a: log.info(" ".join(str(x) for x in a)),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
