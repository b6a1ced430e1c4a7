"""Order lookup in POST /v1/tickets: a verified requester gets their order's real status
and tracking; anyone else learns nothing, not even whether the order exists.

The app is the real one, over a copy of the indexed sample store with a few orders
written here (so the values are known), and the scripted engine of
test_serve_tickets, which records every prompt the "model" was shown.
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from test_retrieval import copy_store, indexed_store_template
from test_serve_support import AUTH
from test_serve_tickets import ScriptedEngine, configure

from storetune.chat.card import OrderCard, parse_cards
from storetune.chat.prompt import render_system_prompt
from storetune.serve.app import create_app
from storetune.serve.guard import Evidence, Guard
from storetune.serve.orders import ASK_FOR_ORDER, look_up
from storetune.store import db
from storetune.store import orders as order_store
from storetune.store.records import Fulfillment, Order, OrderLine
from storetune.store.review import ReviewQueue
from storetune.workspace import Workspace

ANA, BO = "ana.diaz@example.com", "bo.lind@example.org"
TRACKING = "1Z999AA10123456784"
URL = f"https://tracking.example.com/ups/{TRACKING}"


def ana_order() -> Order:
    return Order(
        name="#77001",
        email=ANA,
        customer_name="Ana Diaz",
        shipping_address="1 Fern St, Portland, OR",
        financial_status="paid",
        fulfillment_status="fulfilled",
        currency="USD",
        total=Decimal("129.00"),
        created_at="2025-03-01T15:00:00Z",
        updated_at="2025-03-04T15:00:00Z",
        lines=[OrderLine("Granite Trail Thermos", 1, Decimal("29.00"), "THERM-1", "", "fulfilled")],
        fulfillments=[
            Fulfillment("success", "UPS", TRACKING, URL, "in_transit", "2025-03-02T18:00:00Z")
        ],
    )


def bo_order() -> Order:
    return Order(
        name="#77002",
        email=BO,
        financial_status="paid",
        created_at="2025-03-05T10:00:00Z",
        lines=[OrderLine("Quiet Pines Hammock", 2, Decimal("59.00"), "HAM-2")],
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    root = copy_store(indexed_store_template(), tmp_path_factory.mktemp("orders") / "store")
    conn = db.connect(root / "store.db")
    order_store.upsert_orders(conn, [ana_order(), bo_order()])
    conn.close()
    return Workspace(configure(root))


@pytest.fixture(scope="module")
def engine() -> ScriptedEngine:
    return ScriptedEngine()


@pytest.fixture(scope="module")
def client(workspace, engine):
    with TestClient(create_app(workspace, engine)) as c:
        yield c


@pytest.fixture
def scripted(engine):
    engine.prompts.clear()
    yield engine
    engine.reply = lambda messages: ("Hi there! Happy to help.", -0.05)


def post(client, message: str, **extra) -> dict:
    r = client.post("/v1/tickets", json={"message": message, **extra}, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def quote_the_card(messages):
    """A model that answers from the order card it was shown."""
    system = messages[0]["content"]
    assert "Order information:" in system
    return (
        f"Your order #77001 shipped on 2025-03-02 with UPS, tracking number {TRACKING}. "
        f"You can follow it here: {URL}. It is in transit.",
        -0.05,
    )


def test_verified_requester_gets_real_status_and_tracking(client, scripted, workspace):
    scripted.reply = quote_the_card
    body = post(client, "Where is my order #77001?", customer={"email": "Ana.Diaz@Example.com"})
    system = scripted.prompts[-1][0][0]["content"]
    card = OrderCard.from_order(ana_order())
    assert card.render() in system  # the same renderer as training
    assert "Order information:" in system
    assert TRACKING in body["response"] and URL in body["response"]
    assert "2025-03-02" in body["response"]
    assert body["signals"]["order"] == "verified"
    assert not [r for r in body["reasons"] if r.startswith("grounding")]
    stored = ReviewQueue(workspace.db_path).get(body["ticket_id"])
    assert card.render() in stored.system_prompt


def test_helpdesk_requester_and_an_earlier_turn_verify_too(client, scripted):
    scripted.reply = quote_the_card
    thread = [
        {"role": "customer", "content": "Hi, it's about order 77001"},
        {"role": "agent", "content": "Happy to check, what's the question?"},
    ]
    body = post(
        client, "when will it arrive?", thread=thread, customer={"requester": {"email": ANA}}
    )
    assert body["signals"]["order"] == "verified" and TRACKING in body["response"]


def test_guard_blocks_order_facts_not_on_the_card(client, scripted):
    scripted.reply = lambda m: (
        "Your order #77001 is on its way. Tracking number 1Z999AA19999999999. "
        "It was delivered on March 9.",
        -0.05,
    )
    body = post(client, "Where is order #77001?", customer={"email": ANA})
    assert "1Z999AA19999999999" not in body["response"] and "March 9" not in body["response"]
    assert body["confidence"] == "low"
    kinds = {b["kind"] for b in body["signals"]["blocked"]}
    assert kinds == {"tracking_number", "date"}


@pytest.mark.parametrize(
    ("message", "customer"),
    [
        ("Where is my order #77001?", {"email": BO}),  # another customer's order
        ("Where is my order #77001?", {}),  # no email at all
        ("Where is my order #77001?", {"email": "ana.diaz@example.com.evil.example"}),
        ("Where is my order #77999?", {"email": ANA}),  # no such order
        ("Where is my order #77002?", {"email": ANA}),  # Bo's order, asked by Ana
        ("Where is my order?", {"email": ANA}),  # no number: nothing to verify
    ],
)
def test_unverified_requesters_learn_nothing(client, scripted, workspace, message, customer):
    scripted.reply = quote_the_card  # would leak, if the model were ever asked
    body = post(client, message, customer=customer)
    assert scripted.prompts == []  # no prompt was rendered for a model
    assert body["response"] == ASK_FOR_ORDER
    assert body["signals"]["order"] == "unverified" and body["escalate"] is False
    dumped = json.dumps(body)
    for secret in (TRACKING, URL, "Thermos", "Hammock", "in transit", "2025-03", "UPS"):
        assert secret not in dumped
    stored = ReviewQueue(workspace.db_path).get(body["ticket_id"])
    assert "Order information:" not in stored.system_prompt


def test_nonexistent_and_someone_elses_order_answer_the_same(client, scripted):
    someone_elses = post(client, "Where is my order #77002?", customer={"email": ANA})
    missing = post(client, "Where is my order #77003?", customer={"email": ANA})
    keys = ("response", "escalate", "status", "sources")
    assert {k: someone_elses[k] for k in keys} == {k: missing[k] for k in keys}
    assert someone_elses["signals"]["order"] == missing["signals"]["order"] == "unverified"


def test_lookup_result_does_not_depend_on_existence(workspace):
    conn = db.connect(workspace.db_path)
    try:
        wrong = look_up(conn, ["where is order #77001"], {"email": BO})
        absent = look_up(conn, ["where is order #77999"], {"email": BO})
        none = look_up(conn, ["what is your return window?"], {"email": ANA})
    finally:
        conn.close()
    assert wrong == absent and wrong.state == "unverified" and wrong.card is None
    assert none.state == "none"


def test_a_ticket_about_no_order_routes_as_before(client, scripted):
    body = post(client, "What's your return window?", customer={"email": ANA})
    assert body["signals"]["order"] == "none"
    assert "Order information:" not in scripted.prompts[-1][0][0]["content"]


def test_order_card_states_and_text_round_trip():
    base = ana_order()
    cases = {
        "shipped": base,
        "delivered": _with(base, fulfillments=[_ship("delivered")]),
        "processing (not shipped yet)": _with(base, fulfillments=[], fulfillment_status=""),
        "cancelled": _with(base, cancelled_at="2025-03-01T16:00:00Z", fulfillments=[]),
        "refunded": _with(base, financial_status="refunded", fulfillments=[]),
        "partially shipped": _with(
            base,
            fulfillment_status="partial",
            lines=[*base.lines, OrderLine("Camp Mug", 1, Decimal("9.00"))],
        ),
    }
    for status, order in cases.items():
        card = OrderCard.from_order(order)
        assert card.status == status
        assert OrderCard.from_dict(json.loads(json.dumps(card.to_dict()))) == card
    partial = OrderCard.from_order(cases["partially shipped"])
    assert partial.items[1] == ("Camp Mug", 1, "not shipped yet")
    refund = OrderCard.from_order(_with(base, refunded_amount=Decimal("12.5")))
    assert "refunded $12.50" in refund.render()


def test_order_card_is_never_read_back_as_a_product(workspace):
    card = OrderCard.from_order(ana_order())
    prompt = render_system_prompt(workspace.config(), [card])
    assert parse_cards(prompt) == []
    assert "Order information:\n" + card.render() in prompt


def test_guard_takes_tracking_numbers_only_from_an_order_card():
    card = OrderCard.from_order(ana_order())
    draft = f"Your tracking number is {TRACKING}."
    policies = f"Policies:\n- Example tracking number {TRACKING}."
    assert Guard().check(draft, Evidence(policies, cards=[])).blocked
    assert not Guard().check(draft, Evidence(card.render(), cards=[card])).blocked
    # the customer's own number may be echoed back
    assert not Guard().check(draft, Evidence("", customer=f"my tracking is {TRACKING}")).blocked


def _ship(status: str) -> Fulfillment:
    return Fulfillment(
        "success", "UPS", TRACKING, URL, status, "2025-03-02T18:00:00Z", "2025-03-04T12:00:00Z"
    )


def _with(o: Order, **changes) -> Order:
    return replace(o, **changes)


# ---- recommendations from behaviour ---------------------------------------------------------

TENT = "Larch 1P Dome Tent"


def _products(workspace) -> list:
    conn = db.connect(workspace.db_path)
    try:
        return db.load_products(conn)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def bought_together(workspace):
    """Orders where the tent goes with one in-stock product (three times) and, more
    often, with one the store no longer sells (inactive or out of stock)."""
    products = _products(workspace)
    tent = next(p for p in products if p.title == TENT)
    in_stock = [
        p for p in products
        if p.active and p.handle != tent.handle and all(v.in_stock for v in p.variants)
    ]  # fmt: skip
    gone = next(p for p in products if not p.active or not any(v.in_stock for v in p.variants))
    partner = in_stock[0]

    def order(n: int, other, email: str) -> Order:
        lines = [OrderLine(tent.title, 1, None, tent.variants[0].sku)]
        lines.append(OrderLine(other.title, 1, None, other.variants[0].sku))
        return Order(
            name=f"#7810{n}", email=email, created_at=f"2025-05-0{n}T10:00:00Z", lines=lines
        )

    orders = [order(n, partner, f"p{n}@example.com") for n in range(1, 4)]
    orders += [order(n, gone, f"g{n}@example.com") for n in range(4, 9)]
    conn = db.connect(workspace.db_path)
    order_store.upsert_orders(conn, orders)
    conn.close()
    return tent, partner, gone


def test_recommendation_adds_what_customers_also_bought(client, scripted, bought_together):
    tent, partner, gone = bought_together
    post(client, f"What would you recommend to go with the {TENT}?")
    system = scripted.prompts[-1][0][0]["content"]
    assert f"* {partner.title} (" in system
    assert f"often bought with the {TENT}" in system
    assert f"* {gone.title} (" not in system  # not active or not in stock: never suggested


def test_a_verified_customer_gets_suggestions_from_their_own_order(
    client, scripted, workspace, bought_together
):
    tent, partner, _ = bought_together
    solo = Order(
        name="#78109",
        email="solo@example.com",
        created_at="2025-05-09T10:00:00Z",
        lines=[OrderLine(tent.title, 1, None, tent.variants[0].sku)],
    )
    conn = db.connect(workspace.db_path)
    order_store.upsert_orders(conn, [solo])
    conn.close()
    message = "About my order #78109: what else would you suggest for that trip?"
    post(client, message, customer={"email": "Solo@example.com"})
    system = scripted.prompts[-1][0][0]["content"]
    assert "Order information:" in system
    assert f"* {partner.title} (" in system
    assert f"often bought with the {TENT} you ordered" in system
    # someone else asking about that order gets no order, and no suggestion from it
    body = post(client, message, customer={"email": "p1@example.com"})
    assert body["response"] == ASK_FOR_ORDER


# ---- status replies read off the card -------------------------------------------------------


def _order(name: str, **changes) -> Order:
    return replace(ana_order(), name=name, **changes)


TWO_LINES = [
    OrderLine("Granite Trail Thermos", 1, Decimal("29.00"), "THERM-1", "", "fulfilled"),
    OrderLine("Quiet Pines Hammock", 1, Decimal("59.00"), "HAM-2", "", ""),
]
STATUS_ORDERS = {
    "shipped": _order("#78001"),
    "delivered": _order(
        "#78002",
        fulfillments=[
            replace(
                ana_order().fulfillments[0],
                shipment_status="delivered",
                delivered_at="2025-03-05T12:00:00Z",
            )
        ],
    ),  # fmt: skip
    "processing": _order("#78003", fulfillment_status="", fulfillments=[]),
    "cancelled": _order(
        "#78004",
        fulfillments=[],
        cancelled_at="2025-03-01T18:00:00Z",
        financial_status="refunded",
        refunded_amount=Decimal("129.00"),
    ),  # fmt: skip
    "refunded": _order(
        "#78005", fulfillments=[], financial_status="refunded", refunded_amount=Decimal("129.00")
    ),
    "partial": _order("#78006", fulfillment_status="partial", lines=TWO_LINES),
}


@pytest.mark.parametrize("kind", sorted(STATUS_ORDERS))
def test_status_reply_states_the_cards_status_and_nothing_else(kind, workspace):
    from storetune.eval.orders import grade_verified, kind_of
    from storetune.serve.order_reply import status_reply

    card = OrderCard.from_order(STATUS_ORDERS[kind])
    assert kind_of(card) == kind
    reply = status_reply(card, workspace.config())
    # graded by the eval's order grader: the status said, tracking once shipped, no foreign fact
    assert grade_verified(card, reply).verdict == "correct", reply
    assert card.number in reply


def test_status_reply_takes_policy_numbers_from_store_yaml(workspace):
    from storetune.serve.order_reply import status_reply

    cfg = workspace.config().model_copy(deep=True)
    cfg.policies.shipping.processing_days = 3
    card = OrderCard.from_order(STATUS_ORDERS["processing"])
    assert "within 3 business day(s)" in status_reply(card, cfg)


@pytest.fixture
def reads_as(monkeypatch):
    """Routing as if the version's router read every ticket as `kind`."""
    from storetune.models.router import RouterPrediction
    from storetune.serve.routing import TicketRouter

    def set_kind(kind: str, p: float = 0.9) -> None:
        reading = RouterPrediction(kind, p, {kind: p, "returns": 1 - p})
        monkeypatch.setattr(TicketRouter, "_read", lambda self, *a: reading)

    return set_kind


def test_a_status_question_on_a_verified_order_is_answered_from_the_card(
    client, scripted, reads_as, workspace
):
    from storetune.serve.order_reply import status_reply

    reads_as("order_status")
    body = post(client, "any news on #77001?", customer={"email": ANA})
    assert scripted.prompts == []  # no generation: a lookup, read off the card
    card = OrderCard.from_order(ana_order())
    assert body["response"] == status_reply(card, workspace.config())
    assert TRACKING in body["response"] and URL in body["response"]
    assert body["escalate"] is False and body["confidence"] == "high"
    # an unverified requester still gets the fixed ask, whatever the router reads
    other = post(client, "any news on #77001?", customer={"email": BO})
    assert other["response"] == ASK_FOR_ORDER and TRACKING not in json.dumps(other)


def test_other_questions_about_a_verified_order_still_go_to_the_model(client, scripted, reads_as):
    scripted.reply = quote_the_card
    reads_as("damaged_missing")
    body = post(client, "order #77001 arrived broken", customer={"email": ANA})
    assert len(scripted.prompts) == 1  # judgement: the model drafts, with the card shown
    assert "Order information:" in scripted.prompts[-1][0][0]["content"]
    assert body["signals"]["order"] == "verified"


def test_a_weak_order_reading_alone_does_not_ask_for_an_order_number(client, scripted, reads_as):
    reads_as("order_status", 0.21)  # what the demo's router read for this very message
    body = post(client, "Hi! Can I order the Highline Socks in XL / Ochre today?")
    assert body["signals"]["order"] == "none" and body["response"] != ASK_FOR_ORDER
    assert len(scripted.prompts) == 1
    reads_as("order_status", 0.6)
    sure = post(client, "it still says label created, is it actually shipped?")
    assert sure["signals"]["order"] == "unverified" and sure["response"] == ASK_FOR_ORDER


@pytest.mark.parametrize(
    ("thread", "message", "customer"),
    [
        # asked once already: asking again would loop
        ([{"role": "customer", "content": "where is my order?"},
          {"role": "agent", "content": ASK_FOR_ORDER}], "it's #77001", {"email": BO}),
        # an address typed in the message proves nothing: a person checks who is writing
        ([], f"order #77001, email on the order is {ANA}", {"email": BO}),
        ([], "order #77001, email on the order: <EMAIL>", {}),
    ],
)  # fmt: skip
def test_unverified_order_details_typed_by_the_customer_go_to_a_person(
    client, scripted, thread, message, customer
):
    body = post(client, message, thread=thread, customer=customer)
    assert body["escalate"] is True and body["response"] != ASK_FOR_ORDER
    assert any("confirm" in r or "already asked" in r for r in body["reasons"])
    assert body["signals"]["order"] == "unverified"
    assert all("Order information:" not in p[0][0]["content"] for p in scripted.prompts)
    dumped = json.dumps(body)
    for secret in (TRACKING, URL, "Thermos", "in transit", "2025-03"):
        assert secret not in dumped
