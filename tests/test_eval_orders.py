"""Order tickets in the eval: a verified reply is right only with the order's true status
facts, an unverified one only when it reveals nothing, unverified tickets never reach
the model, and the report carries an "Order tickets" block with no customer's email.

The store is the hand eval workspace of evalkit with seven orders written here, one per
status kind (two shipped), so every expected value is known.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from evalkit import make_eval_workspace

from storetune.chat.card import OrderCard
from storetune.eval.order_tickets import WORDINGS, grade, sample_orders
from storetune.eval.orders import grade_verified, status_claims
from storetune.store import db
from storetune.store import orders as order_store
from storetune.store.records import Fulfillment, Order, OrderLine
from storetune.workspace import Workspace

UPS = "1Z999AA10123456784"
UPS2 = "1Z999AA10123456792"
SHIP = "2025-03-02T18:00:00Z"


def _order(name: str, email: str, lines, shipments=(), **kw) -> Order:
    return Order(
        name=name,
        email=email,
        customer_name=f"Customer {name[1:]}",
        financial_status=kw.pop("financial_status", "paid"),
        currency="USD",
        total=Decimal("80.00"),
        created_at="2025-03-01T15:00:00Z",
        updated_at="2025-03-05T15:00:00Z",
        lines=[OrderLine(t, 1, Decimal("40.00"), f"SKU-{t[:3]}", "", s) for t, s in lines],
        fulfillments=list(shipments),
        **kw,
    )


def _ups(number: str, state: str = "in_transit", delivered: str = "", items=()) -> Fulfillment:
    url = f"https://tracking.example.com/ups/{number}"
    return Fulfillment("success", "UPS", number, url, state, SHIP, delivered, list(items))


ORDERS = [
    _order("#70001", "ana@example.com", [("Trail Mug", "fulfilled")], [_ups(UPS)],
           fulfillment_status="fulfilled"),
    _order("#70002", "bo@example.com", [("Camp Stool", "fulfilled")], [_ups(UPS2)],
           fulfillment_status="fulfilled"),
    _order("#70003", "cy@example.com", [("Rain Shell", "fulfilled")],
           [_ups("1Z999AA10123456800", "delivered", "2025-03-05T12:00:00Z")],
           fulfillment_status="fulfilled"),
    _order("#70004", "di@example.com", [("Wool Hat", "")]),
    _order("#70005", "ed@example.com", [("Head Lamp", "")], cancelled_at="2025-03-01T16:00:00Z",
           financial_status="refunded", refunded_amount=Decimal("40.00")),
    _order("#70006", "fay@example.com", [("Dry Bag", "")], financial_status="refunded",
           refunded_amount=Decimal("40.00")),
    _order("#70007", "gus@example.com", [("Trail Mug", "fulfilled"), ("Camp Stool", "")],
           [_ups("1Z999AA10123456819", items=["Trail Mug"])], fulfillment_status="partial"),
]  # fmt: skip
EMAILS = [o.email for o in ORDERS]


def right_reply(card: OrderCard) -> str:
    """What a reply that read the card would say (the same facts, other words)."""
    s = card.shipments[0] if card.shipments else {}
    num = card.number
    return {
        "shipped": f"Good news, {num} is on its way with {s.get('carrier')}, tracking "
        f"number {s.get('tracking_number')}.",
        "delivered": f"UPS shows order {num} as delivered on {s.get('delivered')}.",
        "processing (not shipped yet)": f"Order {num} hasn't shipped yet; you'll get the "
        "tracking number once it has shipped.",
        "cancelled": f"Order {num} was cancelled and the payment was refunded.",
        "refunded": f"Order {num} was refunded: $40.00 back to your card.",
        "partially shipped": f"Part of order {num} is on its way with UPS, tracking number "
        f"{s.get('tracking_number')}; the rest hasn't shipped yet.",
    }[card.status]


# ---------------------------------------------------------------- grading, no store


def test_verified_reply_is_right_only_with_the_cards_status_facts():
    shipped = OrderCard.from_order(ORDERS[0])
    assert grade_verified(shipped, right_reply(shipped)).verdict == "correct"
    wrong_status = f"Order #70001 was delivered on March 2. Tracking number {UPS}."
    g = grade_verified(shipped, wrong_status)
    assert g.verdict == "wrong" and any("delivered" in r for r in g.reasons)
    assert grade_verified(shipped, "Your order #70001 has shipped with UPS.").verdict == "partial"
    other = f"Order #70001 shipped with UPS, tracking number {UPS2}."  # #70002's parcel
    assert grade_verified(shipped, other).verdict == "wrong"
    assert grade_verified(shipped, "Thanks for reaching out!").verdict == "wrong"

    processing = OrderCard.from_order(ORDERS[3])
    assert grade_verified(processing, right_reply(processing)).verdict == "correct"
    assert grade_verified(processing, "Order #70004 shipped today.").verdict == "wrong"
    cancelled = OrderCard.from_order(ORDERS[4])
    assert grade_verified(cancelled, right_reply(cancelled)).verdict == "correct"
    assert grade_verified(cancelled, "Order #70005 is on its way!").verdict == "wrong"
    refunded = OrderCard.from_order(ORDERS[5])
    assert grade_verified(refunded, right_reply(refunded)).verdict == "correct"
    assert grade_verified(refunded, "Order #70006 was refunded: $55.00.").verdict == "wrong"
    policy = right_reply(refunded) + " Orders over $75.00 ship free."  # not about the refund
    assert grade_verified(refunded, policy).verdict == "correct"


def test_status_claims_read_negation_and_promises():
    assert status_claims("It hasn't shipped yet, you'll hear once it has shipped") == {
        "not_shipped"
    }
    assert status_claims("It hasn't been delivered yet.") == set()
    assert status_claims("It was delivered on May 3 and shipped May 1") == {"delivered", "shipped"}
    # the shipping policy is said of every order: no claim about this one
    policy = "Orders are shipped within 1 business day and tracking is emailed when they do."
    assert status_claims(f"I've passed this to our team. {policy}") == set()
    assert status_claims("Orders usually leave our warehouse within 1 business day.") == set()
    assert status_claims(f"Your order #1001 shipped on May 2. {policy}") == {"shipped"}
    assert status_claims("Your orders shipped within a day of each other.") == {"shipped"}


def test_eval_wordings_are_none_of_the_builders_or_sample_stores():
    """The eval asks in words no training example used: no shared phrasing family and
    no shared run of four words with any order template."""
    from storetune.dataset.builders.orders import _ASK
    from storetune.dataset.builders.phrasing import phrasing_family
    from storetune.demo import ticket_gen

    templates = {t for ts in _ASK.values() for t in ts}
    templates |= {*ticket_gen.STATUS_WITH, *ticket_gen.STATUS_WITHOUT, *ticket_gen.STATUS_GIVE}

    def runs(t: str) -> set[tuple[str, ...]]:
        words = re.findall(r"\{\w+\}|[a-z']+", t.lower())
        words = ["x" if w.startswith("{") else w for w in words]
        return {tuple(words[i : i + 4]) for i in range(len(words) - 3)}

    theirs = {phrasing_family(t) for t in templates}
    their_runs = set().union(*(runs(t) for t in templates))
    for w in WORDINGS:
        assert phrasing_family(w) not in theirs, w
        assert not runs(w) & their_runs, (w, runs(w) & their_runs)


def test_legitimate_questions_include_knowledge_answers_not_no_answers():
    from storetune.eval.metrics import refusals
    from storetune.eval.records import Grade

    grades = [
        Grade("wrong", "knowledge", "answer", over_refusal=True),
        Grade("correct", "knowledge", "answer"),
        Grade("correct", "knowledge", "no_answer"),  # saying "I don't have that" is right
        Grade("correct", "order", "unverified"),  # asking for the number is right
        Grade("correct", "order", "shipped"),
    ]
    r = refusals(grades)
    assert r["legitimate_n"] == 3 and r["over_refusal"] == pytest.approx(1 / 3)


def test_order_task_reply_with_the_wrong_status_is_wrong_whatever_the_rubric_says():
    from storetune.eval.graders import Grader
    from storetune.eval.records import Case, StoreFacts

    card = OrderCard.from_order(ORDERS[0])
    system = "You are support.\nOrder information:\n" + card.render()
    gold = right_reply(card)
    case = Case(
        [{"role": "system", "content": system}, {"role": "user", "content": "Where is #70001?"}],
        gold,
        "order",
        "shipped",
        cards=[card],
    )
    grader = Grader(StoreFacts(), [case])
    assert grader.grade(case, gold).verdict == "correct"
    g = grader.grade(case, gold.replace("is on its way", "was delivered"))
    assert g.verdict == "wrong" and any("delivered" in r for r in g.reasons)


# ---------------------------------------------------------------- the store's own orders


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_model_dir) -> Workspace:
    from storetune.retrieval.index import build_index

    root = make_eval_workspace(tmp_path_factory.mktemp("eval-orders") / "store", tiny_model_dir)
    conn = db.connect(root / "store.db")
    order_store.upsert_orders(conn, ORDERS)
    conn.close()
    build_index(root / "store.db", progress=False)
    return Workspace(root)


def test_sample_is_deterministic_and_spreads_over_status_kinds(store):
    conn = db.connect(store.db_path)
    try:
        a, b = sample_orders(conn, 0, 30), sample_orders(conn, 0, 30)
        few = sample_orders(conn, 0, 6)
    finally:
        conn.close()
    assert [(t.message, t.customer) for t in a] == [(t.message, t.customer) for t in b]
    kinds = {t.kind for t in a if t.verified}
    assert kinds == {"shipped", "delivered", "processing", "cancelled", "refunded", "partial"}
    assert sum(t.verified for t in few) == 6  # one per kind when the budget is 6
    for t in a:  # verified exactly when the order's own email asks
        assert t.verified == (t.customer.get("email") == t.owner[0])


def test_system_pass_grades_order_tickets_and_never_drafts_an_unverified_one(store):
    from storetune.eval.system import SystemRun, prepare_order_tickets
    from storetune.serve.routing import Thresholds, TicketRouter

    router = TicketRouter.load(store)
    tickets = prepare_order_tickets(store, router, None)
    cards = {t.card.number: t.card for t in tickets}
    drafted: list[list[dict]] = []

    def generate(conversations, stage):
        drafted.extend(conversations)
        out = []
        for c in conversations:
            number = re.search(r"#\d+", c[-1]["content"]).group()
            text = right_reply(cards[number])
            if number == "#70003":  # delivered, told it never left: the wrong status
                text = f"Order {number} hasn't shipped yet."
            out.append({"text": text, "logprobs": [-0.05], "finish_reason": "stop"})
        return out

    try:
        run = SystemRun(store, router, None, Thresholds(), [], [], tickets)
        result = run.run_orders(generate, (), Thresholds())
    finally:
        router.queue.close()
    verified = [t for t in tickets if t.verified]
    assert len(drafted) == len(verified) == 7  # one per order, every kind present
    assert all("Order information:" in c[0]["content"] for c in drafted)
    s = result["summary"]
    assert s["unverified"]["generated"] == 0 and s["unverified"]["n"] == 7
    assert s["unverified"]["nothing_revealed"]["k"] == 7
    wrong = [r for r in result["examples"] if r["verified"] and r["verdict"] != "correct"]
    assert [r["status"] for r in wrong] == ["delivered"], wrong
    assert s["verified"]["status_correct"]["k"] == 6 and s["verified"]["status_correct"]["ci"]
    text = json.dumps(result)
    assert not any(e in text for e in EMAILS)  # masked: "a***@example.com"
    assert "***@example.com" in text


def test_an_unverified_reply_that_reveals_the_order_is_wrong(store):
    from storetune.serve.orders import ASK_FOR_ORDER

    conn = db.connect(store.db_path)
    try:
        t = next(t for t in sample_orders(conn, 0, 30) if not t.verified and t.kind == "shipped")
    finally:
        conn.close()
    assert grade(t, ASK_FOR_ORDER, ()) == ("correct", [])
    item = t.card.items[0][0]
    leak = f"That one is in transit, the {item} should arrive soon."
    verdict, reasons = grade(t, leak, ())
    assert verdict == "wrong" and any("status" in r for r in reasons)
    assert any("item" in r for r in reasons)
    date_only = "I see something placed on 2025-03-01; please send the checkout email."
    assert grade(t, date_only, ())[0] == "wrong"
    assert grade(t, f"It belongs to {t.owner[0]}.", ())[0] == "wrong"


def test_eval_report_has_the_order_tickets_block(store):
    from storetune.eval.report import summary_lines
    from storetune.eval.runner import evaluate

    report = evaluate(store, "support", max_new_tokens=4, progress=False, log=lambda *a: None)
    block = report["order_tickets"]
    # the base model's drafts skip the system pass unless eval.system_baseline is on
    assert set(block) == {"support-v1"}
    for name in block:
        s = block[name]["system"]
        assert s["verified"]["n"] == 7 and s["unverified"]["n"] == 7
        assert s["unverified"]["generated"] == 0
        assert set(s["verified"]["status_correct"]) == {"rate", "k", "n", "ci"}
    html = (store.reports_dir / "eval-support-v1.html").read_text()
    on_disk = (store.reports_dir / "eval-support-v1.json").read_text()
    assert "<h2>Order tickets</h2>" in html and 'id="orders"' in html and 'id="tasks"' in html
    for text in (html, on_disk):
        assert not any(e in text for e in EMAILS)
    line = summary_lines(report)[0]
    assert line.startswith("order tickets") and "support-v1" in line and "n=7" in line


def test_knowledge_questions_get_their_own_summary_line_with_an_interval():
    from storetune.eval.metrics import summarize
    from storetune.eval.records import Grade
    from storetune.eval.report import summary_lines

    def graded(*verdicts: str) -> dict:
        grades = [Grade(v, "knowledge", "answer") for v in verdicts]
        return {"summary": summarize(grades + [Grade("correct", "support", "returns")])}

    report = {
        "results": {"base": graded("wrong", "wrong"), "support-v1": graded("correct", "wrong")}
    }
    (line,) = summary_lines(report)  # no order tickets: only the knowledge line
    assert line.startswith("knowledge questions") and "(n=2)" in line
    assert "support-v1 50.0% (9–91%)" in line and "base 0.0%" in line
