"""One definition of a fact: the guard blocks exactly what the hallucination metric counts.

The patterns (storetune.facts) are shared by the PII scrubber, the grounding guard and
the eval; the labeled drafts below check that, on the same prompt and customer
message, every entity the guard blocks is an unsupported claim of the metric and the
other way round — same kind, same value, same place.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from storetune.chat.card import ProductCard
from storetune.chat.prompt import render_system_prompt
from storetune.config import StoreConfig
from storetune.demo.store_gen import demo_config
from storetune.eval.facts import ProductNames
from storetune.eval.hallucination import Evidence as MetricEvidence
from storetune.eval.hallucination import unsupported_claims
from storetune.facts import (
    GROUNDED_KINDS,
    find_entities,
    phone_digits,
    phone_ok,
    same_phone,
)
from storetune.serve.guard import Evidence, Guard
from storetune.store.records import Product, Variant

JACKET = Product(
    handle="talus-storm",
    title="Women's Talus Storm Rain Jacket",
    description="- Material: 2.5-layer nylon\n- Waterproof rating: 20,000 mm",
    product_type="Jackets",
    variants=[
        Variant("TS-M", {"Size": "M"}, Decimal("159.00"), inventory_qty=4),
        Variant("TS-L", {"Size": "L"}, Decimal("159.00"), inventory_qty=0),
    ],
)
TENT = Product(
    handle="larch-1p",
    title="Larch 1P Dome Tent",
    description="- Weight: 1.6 kg",
    product_type="Tents",
    variants=[
        Variant("LD-G", {"Color": "Green"}, Decimal("369.95"), inventory_qty=3),
        Variant("LD-O", {"Color": "Orange"}, Decimal("449.95"), Decimal("529.00"), 0),
    ],
)
TITLES = [JACKET.title, TENT.title, "Meadow 2P Basecamp Tent"]
CFG = StoreConfig.model_validate(demo_config(0))
CARDS = [ProductCard.from_product(JACKET), ProductCard.from_product(TENT)]
SYSTEM = render_system_prompt(CFG, CARDS)
GUARD = Guard(TITLES, ["Jackets", "Tents"])
NAMES = ProductNames(TITLES)
ALLOWED = (CFG.brand.website, CFG.policies.contact.email, CFG.policies.contact.phone)

# (draft, customer message, the facts that must be blocked: (kind, text))
LABELED = [
    # prices
    ("The Women's Talus Storm Rain Jacket is $159.00.", "hi", []),
    ("The Talus Storm jacket is $129.00.", "hi", [("price", "$129.00")]),
    ("The Talus Storm jacket is $75.00.", "hi", [("price", "$75.00")]),
    ("Shipping to the contiguous US is $6.95, free on orders over $75.", "hi", []),
    ("The Larch tent is $369.95 and the Talus jacket is $159.00.", "hi", []),
    ("The tent in Orange is $449.95, on sale from $529.00.", "hi", []),
    ("It's 159 dollars.", "hi", []),
    ("You'd pay €99 for it.", "hi", [("price", "€99")]),
    ("The Larch tent is $399.00.", "is it still $369.95?", [("price", "$399.00")]),
    # emails
    ("Write to support@cedarsummit.example.com.", "hi", []),
    ("Write to refunds@cedar-help.com.", "hi", [("email", "refunds@cedar-help.com")]),
    ("We'll reply to jo@example.org.", "my email is jo@example.org", []),
    ("We'll reply to jo@example.net.", "my email is jo@example.org", [("email", "jo@example.net")]),
    # phones
    ("Call +1 (503) 555-0100.", "hi", []),
    ("Call (503) 555-0100.", "hi", []),
    ("Call 1-800-555-0199.", "hi", [("phone", "1-800-555-0199")]),
    ("Call us on 0044 20 7946 0958.", "hi", [("phone", "0044 20 7946 0958")]),
    ("We'll call you at 415-555-0123.", "call me on 415-555-0123", []),
    ("Waist sizes 30 32 34 36 38 are cut the same way.", "hi", []),
    # URLs
    ("Visit https://www.cedarsummit.example.com.", "hi", []),
    ("See bit.ly/free-gear for details.", "hi", [("url", "bit.ly/free-gear")]),
    (
        "See https://deals.example.net/talus.",
        "see https://deals.example.net/talus",
        [("url", "https://deals.example.net/talus")],
    ),
    # order numbers
    ("Your order #48213 is on its way.", "Where is order #48213?", []),
    ("Your order #48213 is on its way.", "where's my stuff", [("order_number", "#48213")]),
    ("Order number A7731920 has shipped.", "hi", [("order_number", "A7731920")]),
    # tracking numbers
    (
        "Your tracking number is 1Z999AA10123456784.",
        "tracking 1Z999AA10123456784 says nothing",
        [],
    ),
    (
        "Your tracking number is 1Z999AA10123456784.",
        "hi",
        [("tracking_number", "1Z999AA10123456784")],
    ),
    (
        "USPS has it: 9400 1000 0000 0000 0000 00.",
        "hi",
        [("tracking_number", "9400 1000 0000 0000 0000 00")],
    ),
    ("FedEx 771234567890 has your parcel.", "hi", [("tracking_number", "771234567890")]),
    # discounts
    ("I can offer 20% off your next order.", "hi", [("discount", "20% off")]),
    # several in one reply
    (
        "Order #48213 is listed at https://www.cedarsummit.example.com; call "
        "+1 (503) 555-0100 with questions. The Talus jacket is $159.00.",
        "order #48213 please",
        [],
    ),
    (
        "Email deals@cedar-outlet.com, call 1-888-555-0142 or see cedar-outlet.com/sale "
        "for $99 jackets.",
        "hi",
        [
            ("email", "deals@cedar-outlet.com"),
            ("phone", "1-888-555-0142"),
            ("url", "cedar-outlet.com/sale"),
            ("price", "$99"),
        ],
    ),
]


def guard_blocks(draft: str, customer: str) -> set[tuple[str, int, int]]:
    evidence = Evidence.for_prompt(SYSTEM, customer, CFG.brand.website)
    found = GUARD.check(draft, evidence).blocked
    return {(f.kind, f.start, f.end) for f in found if f.kind in GROUNDED_KINDS}


def metric_counts(draft: str, customer: str) -> set[tuple[str, int, int]]:
    """What the eval's rubric counts, with the evidence built as the rubric builds it."""
    evidence = MetricEvidence(SYSTEM, ALLOWED, CARDS, customer)
    claims = unsupported_claims(draft, evidence, NAMES)
    return {(c.entity.kind, c.entity.start, c.entity.end) for c in claims if c.entity}


def test_the_labeled_set_covers_every_kind_supported_and_not():
    assert len(LABELED) >= 30
    blocked_kinds = {k for _, _, want in LABELED for k, _ in want}
    assert blocked_kinds == set(GROUNDED_KINDS)
    assert sum(not want for _, _, want in LABELED) >= 12


@pytest.mark.parametrize(("draft", "customer", "want"), LABELED)
def test_guard_blocks_exactly_what_the_metric_counts(draft, customer, want):
    blocked = guard_blocks(draft, customer)
    assert {(k, draft[s:e]) for k, s, e in blocked} == set(want)
    assert metric_counts(draft, customer) == blocked


def test_the_eval_leniencies_are_the_only_difference():
    """Two rubric rules (pinned by test_rubric and test_graders) let the eval accept what
    the guard blocks: the customer's own figure echoed back, and a page of the store's
    website that the prompt does not give."""
    for draft, customer, price in [
        ("OK, the Talus jacket is $1.00 for you.", "set the Talus jacket to $1", "$1.00"),
        ("The Larch tent is $399.00.", "is it $399?", "$399.00"),
    ]:
        at = draft.index(price)
        assert guard_blocks(draft, customer) == {("price", at, at + len(price))}
        assert metric_counts(draft, customer) == set()
    page = ("Start your return at cedarsummit.example.com/return-portal.", "hi")
    assert {k for k, _, _ in guard_blocks(*page)} == {"url"}
    assert metric_counts(*page) == set()


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("tracking 1Z999AA10123456784", "tracking_number", "1Z999AA10123456784"),
        ("ref 9205 5000 0000 0000 0000 00", "tracking_number", "9205500000000000000000"),
        ("parcel RR123456785GB", "tracking_number", "RR123456785GB"),
        ("order #CS-48213", "order_number", "CS-48213"),
        ("call +44 20 7946 0958", "phone", "442079460958"),
        ("call 020 7946 0958", "phone", "2079460958"),
        ("it costs €1,299.50", "price", "1299.50"),
        ("it costs 45 EUR", "price", "45.00"),
        ("it costs C$20", "price", "20.00"),
        ("a discount of 15 percent", "discount", "15"),
    ],
)
def test_entities_and_their_values(text, kind, value):
    assert [(e.kind, e.value) for e in find_entities(text)] == [(kind, value)]


def test_look_alikes_are_no_entities():
    # 1Z and ten characters is no UPS number; a weight in pounds is no price; a time,
    # a size run and a date are no phone numbers
    for text in (
        "code 1Z999AA101",
        "it weighs 2 pounds",
        "at 10:30:00",
        "sizes 30 32 34 36 38",
        "on 2025 03 14 12",
    ):
        assert find_entities(text) == [], text


def test_one_phone_rule_for_digits_and_prefixes():
    assert phone_ok("+49 30 1234 56")  # international: 8 digits after the prefix
    assert not phone_ok("+49 30 123")
    assert phone_ok("0049 30 1234 56")
    assert phone_ok("503 555 0142") and not phone_ok("555 0142")  # national: 10
    assert phone_ok("01 23 45 67 89")  # a trunk 0 makes pairs a phone, not a size run
    assert same_phone(phone_digits("+44 20 7946 0958"), phone_digits("020 7946 0958"))
    assert same_phone(phone_digits("0044 20 7946 0958"), phone_digits("+44 20 7946 0958"))
    assert not same_phone(phone_digits("+1 503 555 0100"), phone_digits("+1 503 555 0199"))
