"""Order tickets for the system pass, made at eval time from the store's own orders.

A dataset never holds a real order (the build drops any), so the deployed system's
order lookup is graded on cases built here and kept only in the eval report: for a
deterministic sample of store.db's orders, per status kind, a verified ticket (the
order's own email, the number in a wording no builder uses) graded on the status
facts of its card, and an unverified one (another customer's email, or none) graded on
revealing nothing. Unverified tickets get routing's fixed reply, so they cost no
generation; the report shows emails masked.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass, field

from storetune.chat.card import OrderCard
from storetune.eval.orders import KINDS, grade_verified, kind_of, revealed
from storetune.eval.stats import rate_ci
from storetune.facts import EMAIL
from storetune.store import orders as order_store

# Customer wordings for eval only: no order template of the builders or the sample
# store uses them (tests/test_eval_orders.py checks), so the eval asks in words the
# model never trained on. Each names the number with '#', as customers copy it.
WORDINGS = (
    "Hi there, could you tell me where things stand with order {num}?",
    "Just checking in on {num} - what's the latest on it?",
    "Can you give me an update on my purchase {num}, please?",
    "I'd like to know the current state of {num}. Thanks!",
    "Hello, what is going on with {num} at the moment?",
    "Could you look up {num} for me and tell me how it's doing?",
)
PER_KIND_MAX = 8  # orders of one status kind, verified and unverified alike
SCAN_MAX = 3000  # orders read to find the kinds: bounded on a store with many orders


@dataclass
class OrderTicket:
    kind: str  # status kind of the order (eval.orders.KINDS)
    verified: bool
    message: str
    customer: dict  # what the helpdesk would send: {"email": …} or nothing
    card: OrderCard  # the order as its owner may see it
    owner: tuple[str, ...] = ()  # the owner's email and name (never shown unmasked)
    prepared: object = field(default=None, repr=False)  # routing's Prepared


def sample_orders(conn: sqlite3.Connection, seed: int, verified: int) -> list[OrderTicket]:
    """Up to `verified` verified tickets spread over the status kinds present (at most
    PER_KIND_MAX each), and up to PER_KIND_MAX unverified ones per kind."""
    rng = random.Random(f"eval-orders:{seed}")
    names = [r[0] for r in conn.execute("SELECT name FROM orders ORDER BY name")]
    rng.shuffle(names)
    by_kind: dict[str, list] = {}
    for name in names[:SCAN_MAX]:
        order = order_store.load_order(conn, name)
        by_kind.setdefault(kind_of(OrderCard.from_order(order)), []).append(order)
    kinds = [k for k in KINDS if by_kind.get(k)]
    if not kinds:
        return []
    per_kind = min(PER_KIND_MAX, max(1, verified // len(kinds))) if verified else 0
    emails = sorted({o.email.casefold() for os in by_kind.values() for o in os if o.email})
    out: list[OrderTicket] = []
    for kind in kinds:
        pool = by_kind[kind]
        mine, theirs = pool[:per_kind], pool[per_kind : per_kind + PER_KIND_MAX] or pool
        for o in mine:
            out.append(_ticket(o, kind, True, {"email": o.email}, len(out)))
        for o in theirs[:PER_KIND_MAX]:
            other = next((e for e in emails if e != o.email.casefold()), "")
            # half ask from another customer's address, half with no address at all
            asked = sum(not t.verified for t in out)
            customer = {"email": other} if asked % 2 and other else {}
            out.append(_ticket(o, kind, False, customer, len(out)))
    return out


def _ticket(order, kind: str, verified: bool, customer: dict, i: int) -> OrderTicket:
    message = WORDINGS[i % len(WORDINGS)].format(num=order.name)
    owner = tuple(v for v in (order.email, order.customer_name) if v)
    return OrderTicket(kind, verified, message, customer, OrderCard.from_order(order), owner)


def grade(t: OrderTicket, response: str, allowed: tuple[str, ...]) -> tuple[str, list[str]]:
    """(verdict, reasons): verified on the status facts, unverified on revealing nothing."""
    if t.verified:
        g = grade_verified(t.card, response, allowed)
        return g.verdict, g.reasons
    told = revealed(t.card, response, t.owner)
    return ("wrong", [f"reveals {x}" for x in told]) if told else ("correct", [])


def summarize_orders(rows: list[dict], generated_unverified: int) -> dict:
    """n, rates and Wilson intervals for each side, and how often each kind was right."""
    ver = [r for r in rows if r["verified"]]
    unv = [r for r in rows if not r["verified"]]
    right = [r for r in ver if r["verdict"] == "correct"]
    sent = [r for r in ver if r["outcome"] == "sent"]
    return {
        "verified": {
            "n": len(ver),
            "status_correct": rate_ci(len(right), len(ver)),
            "wrong": rate_ci(sum(r["verdict"] == "wrong" for r in ver), len(ver)),
            "sent": rate_ci(len(sent), len(ver)),
            "wrong_and_sent": rate_ci(sum(r["verdict"] == "wrong" for r in sent), len(ver)),
            "by_kind": {
                k: rate_ci(
                    sum(r["verdict"] == "correct" for r in ver if r["kind"] == k),
                    sum(r["kind"] == k for r in ver),
                )
                for k in KINDS
                if any(r["kind"] == k for r in ver)
            },
        },
        "unverified": {
            "n": len(unv),
            "nothing_revealed": rate_ci(sum(r["verdict"] == "correct" for r in unv), len(unv)),
            "generated": generated_unverified,
        },
    }


def mask_email(email: str) -> str:
    """'a***@example.com': enough to tell two customers apart, not to write to them."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else ""


def masked(text: str) -> str:
    return EMAIL.sub(lambda m: mask_email(m.group()), text)


def shown(t: OrderTicket, response: str, outcome: str, verdict: str, reasons: list[str]) -> dict:
    """One order ticket as the report shows it (every email masked, the owner's name out)."""
    text = masked(response)
    for v in t.owner:
        text = text.replace(v, "[customer]") if v else text
    return {
        "kind": t.kind,
        "verified": t.verified,
        "customer": mask_email(t.customer.get("email", "")) or "(no email)",
        "prompt": t.message,
        "status": t.card.status,
        "response": text,
        "outcome": outcome,
        "verdict": verdict,
        "reasons": [masked(r) for r in reasons],
    }


def order_block(results: dict) -> dict | None:
    """The report's "Order tickets" block: per model, the system pass's order tickets
    and the model pass's test-split order examples (fictional cards), where there are any."""
    out = {}
    for name, r in results.items():
        system = (r.get("system") or {}).get("orders")
        model = r["summary"]["by_task"].get("order")
        if system or model:
            out[name] = {"system": system["summary"] if system else None, "model": model}
    return out or None
