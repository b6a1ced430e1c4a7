"""Helpdesk history for the demo store: customers, agents and resolved conversations.

Each ticket is written by an intent "writer" that picks real catalog items and states
the policy values read from store.yaml, so the agent replies are correct gold answers
(except the deliberately outdated ones). The result is helpdesk-agnostic
(``BuiltTicket``); ``store_gen`` renders it as a Zendesk export.

Customer text is varied on purpose: a small model memorises phrasing, so the router and
the dataset builders need typos, short and rambling messages, several questions at once
and indirect product mentions to learn from.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from storetune.demo.catalog_gen import DemoProduct, money, stock_phrase
from storetune.store.records import PHRASING_TAG, Variant

START = datetime(2024, 6, 1, tzinfo=UTC)
END = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)

INTENT_WEIGHTS: dict[str, int] = {
    "returns": 14,
    "sale_return": 5,
    "exchange": 7,
    "damaged_missing": 7,
    "shipping": 11,
    "order_status": 12,
    "product_question": 13,
    "recommendation": 7,
    "discount_price_match": 5,
    "cancellation": 5,
    "address_change": 4,
    # anger and complaints (~4.7% of tickets), safety incidents and legal threats
    "complaint_escalate": 9,
    "fraud_chargeback": 4,
    "loyalty": 3,
    "size_guide": 4,
    "human_request": 5,  # the customer asks for a person (~4.3%)
}
INTENTS: tuple[str, ...] = tuple(INTENT_WEIGHTS)
HANDOVER = "I've passed this to our {team} team, who will reply within one business day."

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
)  # fmt: skip


# --- policy facts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Zone:
    name: str
    cost: Decimal
    dmin: int
    dmax: int

    @property
    def days(self) -> str:
        return f"{self.dmin}–{self.dmax} business days"

    @property
    def where(self) -> str:
        return {"Contiguous US": "the contiguous US", "Alaska & Hawaii": "Alaska and Hawaii"}.get(
            self.name, self.name
        )


@dataclass(frozen=True)
class Facts:
    """The policy values agents quote, read from the store.yaml mapping."""

    brand: str
    short: str
    website: str
    email: str
    phone: str
    hours: str
    window: int
    condition: str
    label: str
    refund: int
    exchange_window: int
    damage_days: int
    threshold: Decimal
    processing: int
    zones: dict[str, Zone]
    loyalty: str
    earn: str
    redeem: str
    old_window: int
    old_threshold: Decimal

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> Facts:
        pol, brand = cfg["policies"], cfg["brand"]
        old = {c["field"]: c["old"] for c in pol["changes"]}
        ship = pol["shipping"]
        zones = {
            z["name"]: Zone(z["name"], Decimal(str(z["cost"])), z["days_min"], z["days_max"])
            for z in ship["zones"]
        }
        return cls(
            brand=brand["name"],
            short=brand["name"].replace(" Outfitters", ""),
            website=brand["website"],
            email=pol["contact"]["email"],
            phone=pol["contact"]["phone"],
            hours=pol["contact"]["hours"],
            window=pol["returns"]["window_days"],
            condition=pol["returns"]["condition"],
            label=pol["returns"]["return_shipping"],
            refund=pol["returns"]["refund_days"],
            exchange_window=pol["exchanges"]["window_days"],
            damage_days=pol["damaged_items"]["report_within_days"],
            threshold=Decimal(str(ship["free_threshold"])),
            processing=ship["processing_days"],
            zones=zones,
            loyalty=pol["loyalty"]["name"],
            earn=pol["loyalty"]["earn"],
            redeem=pol["loyalty"]["redeem"],
            old_window=old["returns.window_days"],
            old_threshold=Decimal(str(old["shipping.free_threshold"])),
        )

    @property
    def home(self) -> Zone:
        return self.zones["Contiguous US"]


def dollars(x: Decimal | int) -> str:
    """'$75' for whole amounts (thresholds, budgets), '$6.95' otherwise."""
    d = Decimal(str(x))
    return f"${int(d)}" if d == int(d) else money(d)


def join_and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def lc_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


# --- people -----------------------------------------------------------------------------------

FIRST_NAMES = (
    "Maya", "Ethan", "Olivia", "Liam", "Ava", "Noah", "Sofia", "Lucas", "Isla", "Mateo",
    "Chloe", "Owen", "Grace", "Caleb", "Zoe", "Henry", "Nora", "Wyatt", "Leah", "Julian",
    "Harper", "Miles", "Ruby", "Theo", "Ivy", "Ezra", "Hazel", "Felix", "Clara", "Silas",
    "Mina", "Arjun", "Aiko", "Diego", "Fatima", "Kwame", "Ingrid", "Tomas", "Anika", "Rafael",
    "Lena", "Jonah", "Priscilla", "Dev", "Marisol", "Connor", "Beatrix", "Omar", "Yara",
    "Declan", "Talia", "Rowan", "Keiko", "Andre", "Elsie", "Hugo", "Nadia", "Bodhi", "Esme",
    "Gideon", "Lucia", "Reza", "Wren", "Malik", "Signe", "Cormac", "Paloma", "Tobias",
)  # fmt: skip
LAST_NAMES = (
    "Chen", "Okafor", "Lindqvist", "Haddad", "Moreno", "Kowalski", "Nakamura", "Brennan",
    "Osei", "Delacroix", "Patel", "Sorensen", "Whitaker", "Castillo", "Novak", "Ferreira",
    "Ahmadi", "Larkin", "Yamada", "Holloway", "Ibarra", "Kessler", "Mbeki", "Quinlan",
    "Rasmussen", "Sato", "Thornbury", "Vasquez", "Wojcik", "Abernathy", "Bianchi", "Cruz",
    "Dunmore", "Eriksen", "Fairweather", "Gallagher", "Hollis", "Iverson", "Jaramillo",
    "Kaur", "Lefebvre", "Marsh", "Nguyen", "Oyelaran", "Pike", "Rahman", "Sandoval",
    "Tanaka", "Underwood", "Vance", "Winslow", "Zielinski", "Ashby", "Birch", "Calloway",
)  # fmt: skip
STREETS = (
    "Birch Lane", "Maple Street", "Alder Court", "Hemlock Drive", "Spruce Avenue",
    "Fir Street", "Larkspur Way", "Ridge Road", "Cedar Hollow Road", "Pine Crest Drive",
    "Elm Street", "Willow Bend", "Quarry Road", "Mill Pond Lane", "Orchard Avenue",
    "River Road", "Summit View Drive", "Bramble Court",
)  # fmt: skip
# (city, state/province, postal code, area code, zone)
CITIES = (
    ("Portland", "OR", "97201", "503", "Contiguous US"),
    ("Seattle", "WA", "98103", "206", "Contiguous US"),
    ("Boise", "ID", "83702", "208", "Contiguous US"),
    ("Denver", "CO", "80205", "303", "Contiguous US"),
    ("Bend", "OR", "97701", "541", "Contiguous US"),
    ("Salt Lake City", "UT", "84102", "801", "Contiguous US"),
    ("Flagstaff", "AZ", "86001", "928", "Contiguous US"),
    ("Missoula", "MT", "59801", "406", "Contiguous US"),
    ("Asheville", "NC", "28801", "828", "Contiguous US"),
    ("Burlington", "VT", "05401", "802", "Contiguous US"),
    ("Madison", "WI", "53703", "608", "Contiguous US"),
    ("Austin", "TX", "78704", "512", "Contiguous US"),
    ("Duluth", "MN", "55802", "218", "Contiguous US"),
    ("Sacramento", "CA", "95814", "916", "Contiguous US"),
    ("Chattanooga", "TN", "37402", "423", "Contiguous US"),
    ("Portland", "ME", "04101", "207", "Contiguous US"),
    ("Ann Arbor", "MI", "48104", "734", "Contiguous US"),
    ("Boulder", "CO", "80302", "720", "Contiguous US"),
    ("Anchorage", "AK", "99501", "907", "Alaska & Hawaii"),
    ("Honolulu", "HI", "96813", "808", "Alaska & Hawaii"),
    ("Vancouver", "BC", "V6B 1A1", "604", "Canada"),
    ("Calgary", "AB", "T2P 1J9", "403", "Canada"),
    ("Toronto", "ON", "M5V 2T6", "416", "Canada"),
    ("Halifax", "NS", "B3H 1A1", "902", "Canada"),
)  # fmt: skip
CITY_WEIGHTS = tuple(6 if c[4] == "Contiguous US" else 3 for c in CITIES)

AGENT_NAMES = (
    ("Jordan", "Price", "she/her"), ("Priya", "Raman", "she/her"), ("Luis", "Ortega", "he/him"),
    ("Hannah", "Brooks", "she/her"), ("Sam", "Whitfield", "they/them"), ("Noah", "Kim", "he/him"),
    ("Tessa", "Lind", "she/her"), ("Marcus", "Bell", "he/him"), ("Rosa", "Delgado", "she/her"),
    ("Eli", "Novak", "he/him"),
)  # fmt: skip
ADMIN_NAME = ("Dana", "Hollis", "she/her")
AGENT_ID0 = 381000000100
CUSTOMER_ID0 = 381200000000
STAFF_DOMAIN = "cedarsummit.example.com"


@dataclass
class Person:
    id: int
    first: str
    last: str
    email: str
    role: str  # end-user | agent | admin
    phone: str | None = None
    address: str = ""
    city: str = ""
    state: str = ""
    zone: str = "Contiguous US"
    pronouns: str = ""
    style: int = 0  # agents: preferred signature form
    created_at: datetime = START

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


def make_agents() -> tuple[list[Person], Person]:
    agents = [
        Person(
            id=AGENT_ID0 + i,
            first=first,
            last=last,
            email=f"{first.lower()}.{last.lower()}@{STAFF_DOMAIN}",
            role="agent",
            pronouns=pron,
            style=i % 5,
            created_at=datetime(2023, 3 + i % 9, 1 + 2 * i, 16, 0, tzinfo=UTC),
        )
        for i, (first, last, pron) in enumerate(AGENT_NAMES)
    ]
    first, last, pron = ADMIN_NAME
    admin = Person(
        id=AGENT_ID0 + 99,
        first=first,
        last=last,
        email=f"{first.lower()}.{last.lower()}@{STAFF_DOMAIN}",
        role="admin",
        pronouns=pron,
        style=2,
        created_at=datetime(2022, 11, 7, 17, 30, tzinfo=UTC),
    )
    return agents, admin


def _phone(rng: random.Random, area: str) -> str:
    line = f"01{rng.randrange(100):02d}"  # 555-0100..0199 is reserved for fiction
    form = rng.randrange(4)
    return (
        f"({area}) 555-{line}",
        f"{area}-555-{line}",
        f"{area}.555.{line}",
        f"+1 {area} 555 {line}",
    )[form]


def random_address(rng: random.Random) -> tuple[str, tuple[str, str, str, str, str]]:
    city = rng.choices(CITIES, weights=CITY_WEIGHTS)[0]
    number = rng.randint(12, 9870)
    street = rng.choice(STREETS)
    unit = f", Apt {rng.randint(1, 40)}" if rng.random() < 0.2 else ""
    return f"{number} {street}{unit}, {city[0]}, {city[1]} {city[2]}", city


def make_customers(rng: random.Random, n: int) -> list[Person]:
    people, emails = [], set()
    for i in range(n):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = _email(rng, first, last)
        while email in emails:
            local, domain = email.split("@")
            email = f"{local}{rng.randint(2, 99)}@{domain}"
        emails.add(email)
        address, city = random_address(rng)
        people.append(
            Person(
                id=CUSTOMER_ID0 + i * 7 + rng.randrange(7),
                first=first,
                last=last,
                email=email,
                role="end-user",
                phone=_phone(rng, city[3]) if rng.random() < 0.7 else None,
                address=address,
                city=city[0],
                state=city[1],
                zone=city[4],
            )
        )
    return people


def _email(rng: random.Random, first: str, last: str) -> str:
    f, la = first.lower(), last.lower()
    domain = rng.choice(["example.com", "example.com", "example.org"])
    local = rng.choice(
        [f"{f}.{la}", f"{f[0]}{la}{rng.randint(1, 99)}", f"{f}{rng.randint(70, 99)}",
         f"{la}.{f}", f"{f}_{la[0]}", f"{f}.{la}.outdoors"]
    )  # fmt: skip
    return f"{local}@{domain}"


# --- conversation records ---------------------------------------------------------------------


@dataclass
class Item:
    """One step of a conversation: a customer or agent message, or an internal note."""

    at: datetime
    author: int
    role: str  # customer | agent | note
    text: str
    attachments: tuple[str, ...] = ()


@dataclass
class BuiltTicket:
    intent: str
    subject: str
    requester: Person
    assignee: Person
    channel: str  # email | web | chat
    items: list[Item]
    tags: list[str]
    mode: str = "solved"  # solved | open | pending: how the ticket stands at export
    escalated: bool = False
    outdated: str = ""  # "", "returns.window_days" or "shipping.free_threshold"
    priority: str | None = "normal"
    type: str | None = "question"
    satisfaction: dict[str, str] = field(default_factory=dict)
    resolver: int = 0  # who solves an escalated ticket after the hand-over
    resolve_after: timedelta = timedelta(days=1)
    multi: bool = False
    quoted: bool = False
    duplicate: str = ""  # "", "exact" or "near"
    id: int = 0


@dataclass
class Draft:
    """What an intent writer returns: bodies only, greetings and signatures come later."""

    subject: str
    customer: list[str]
    agent: list[str]
    escalated: bool = False
    note: str | None = None
    type: str | None = "question"
    attachments: tuple[str, ...] = ()  # on the customer's follow-up
    # The always-escalate topic (store.yaml) the ticket belongs to, tagged on the ticket as
    # a helpdesk agent would: ingest marks a ticket with a topic's tag human-only.
    topic: str = ""


# --- catalog access ---------------------------------------------------------------------------


class Shelf:
    """Catalog views the writers draw from; lists keep catalog order for determinism."""

    def __init__(self, products: list[DemoProduct]) -> None:
        self.all = products
        self.live = [p for p in products if p.active and p.dirty != "placeholder"]
        self.sellable = [p for p in self.live if p.in_stock]
        self.sale = [p for p in self.live if p.on_sale]
        self.full = [p for p in self.live if not p.on_sale] or self.live
        self.sized = (
            [p for p in self.full if p.sized]
            or [p for p in self.live if p.sized]
            or [p for p in products if p.sized]
        )
        self.sale_sized = [p for p in self.sale if p.sized]
        self.archived = [p for p in products if p.status == "archived" and p.dirty != "placeholder"]

    def kinds_in_stock(self) -> list[str]:
        return list(dict.fromkeys(p.kind.key for p in self.sellable))


def plural(p: DemoProduct) -> bool:
    """Socks, Pants, Poles, Gloves...: agent replies say 'are' and 'were' for these."""
    last = p.title.split()[-1]
    return last.endswith("s") and not last.endswith("ss")


def be(p: DemoProduct) -> str:
    return "are" if plural(p) else "is"


def was(p: DemoProduct) -> str:
    return "were" if plural(p) else "was"


def has(p: DemoProduct) -> str:
    return "have" if plural(p) else "has"


def them(p: DemoProduct) -> str:
    return "them" if plural(p) else "it"


def a_noun(noun: str) -> str:
    return f"some {noun}" if noun.endswith("s") else f"a {noun}"


def vlabel(p: DemoProduct, v: Variant) -> str:
    o = v.options
    if "Size" in o and "Color" in o:
        return f"size {o['Size']} in {o['Color']}"
    if "Capacity" in o:
        return f"{o['Capacity']} in {o['Color']}"
    values = [x for x in o.values() if x != "Default Title"]
    return " / ".join(values)


def price_text(p: DemoProduct) -> str:
    first = p.option_names[0]
    by_value: dict[str, Decimal] = {}
    for v in p.variants:
        by_value.setdefault(v.options[first], v.price)
    prices = list(dict.fromkeys(by_value.values()))
    if len(prices) == 1:
        base = money(p.price)
        return f"{base}, on sale from {money(p.compare_at)}" if p.on_sale else base
    parts = [f"{money(pr)} for {val}" for val, pr in by_value.items()]
    return join_and(parts) + (" (sale prices)" if p.on_sale else "")


def price_short(p: DemoProduct) -> str:
    """One price for lists: the only price, or 'from' the lowest when options differ."""
    if len({v.price for v in p.variants}) > 1:
        return f"from {money(p.price)}"
    return f"{money(p.price)}, on sale from {money(p.compare_at)}" if p.on_sale else money(p.price)


def stock_answer(p: DemoProduct, v: Variant, rng: random.Random) -> str:
    lab = vlabel(p, v)
    what = f"the {p.title} in {lab}" if lab else f"the {p.title}"
    phrase = stock_phrase(v)
    if phrase == "in stock":
        return rng.choice(
            [f"Good news: {what} {be(p)} in stock.", f"Yes, {what} {be(p)} in stock right now."]
        )
    if phrase == "on backorder":
        return (
            f"{what[0].upper()}{what[1:]} {be(p)} on backorder: you can still order, and it ships "
            "as soon as it's restocked."
        )
    alts = [vlabel(p, w) for w in p.variants if w.inventory_qty and vlabel(p, w)][:3]
    text = f"Sorry, {what} {be(p)} out of stock right now."
    if alts:
        text += f" In stock right now: {join_and(alts)}."
    return text


def product_fact(p: DemoProduct, rng: random.Random) -> str:
    options = [f"made of {lc_first(p.material)}", f"weighs {p.weight_text}"]
    options += [f"{label.lower()}: {value}" for label, value in p.specs]
    return rng.choice(options)


# --- text helpers -----------------------------------------------------------------------------

_FORMATTER = string.Formatter()


def typo(text: str, rng: random.Random, rate: float) -> str:
    """Swap, drop or double a letter in some words (only in template text, never in slots)."""
    if rate <= 0:
        return text
    out = []
    for tok in re.split(r"(\s+)", text):
        if len(tok) > 3 and tok.isalpha() and rng.random() < rate:
            i = rng.randrange(1, len(tok) - 1)
            op = rng.randrange(3)
            if op == 0:
                tok = tok[:i] + tok[i + 1] + tok[i] + tok[i + 2 :]
            elif op == 1:
                tok = tok[:i] + tok[i + 1 :]
            else:
                tok = tok[:i] + tok[i] + tok[i:]
        out.append(tok)
    return "".join(out)


def fmt_date(d: datetime) -> str:
    return f"{MONTHS[d.month - 1]} {d.day}"


def fmt_mdy(d: datetime) -> str:
    return f"{d.month}/{d.day}"


class Ctx:
    """Everything a writer needs for one ticket: the customer, date, catalog and style."""

    def __init__(
        self,
        rng: random.Random,
        facts: Facts,
        shelf: Shelf,
        cust: Person,
        when: datetime,
        channel: str,
        multi: bool,
        outdated: bool,
        intent: str = "",
    ) -> None:
        self.rng, self.f, self.shelf, self.cust = rng, facts, shelf, cust
        self.when, self.channel, self.multi, self.outdated = when, channel, multi, outdated
        self.quoted = False
        self.intent = intent
        self.phrasing = ""  # the opening message's phrasing family (see say)
        styles = ["plain", "typo", "lower", "angry", "polite", "short"]
        weights = [40, 15, 12, 10, 15, 8] if channel != "chat" else [25, 20, 35, 5, 5, 10]
        self.style = rng.choices(styles, weights=weights)[0]
        if self.style == "typo" and intent in {"complaint_escalate", "fraud_chargeback"}:
            # keep the always-escalate keywords intact so keyword routing has clean examples
            self.style = "plain"
        days = (when - START).days
        self.order_no = 10000 + days * 38 + rng.randint(0, 37)

    # customer-side wording

    @property
    def first(self) -> str:
        return self.cust.first

    def order(self) -> str:
        n = self.order_no
        return self.rng.choice([f"#{n}", f"order {n}", f"order #{n}", f"Order no. {n}", f"#{n}"])

    def num(self) -> str:
        """The bare order number, for templates that already say 'order'."""
        return self.rng.choice([f"#{self.order_no}", str(self.order_no)])

    def tracking(self) -> str:
        return f"1Z999AA1{self.rng.randrange(10**9, 10**10)}"

    def pick(
        self, pool: list[DemoProduct], fallback: list[DemoProduct] | None = None
    ) -> DemoProduct:
        return self.rng.choice(pool or fallback or self.shelf.live)

    def mention(self, p: DemoProduct) -> str:
        rng = self.rng
        title = p.title
        bare = title.split(" ", 1)[1] if p.gender else title
        line = bare.split()[0]
        forms = [f"the {title}", f"the {title}", title.lower(), f"the {bare}", f"my {bare}",
                 f"the {line} {p.kind.noun}", f"your {line} {p.kind.noun}"]  # fmt: skip
        return rng.choice(forms)

    def ago(self, days: int) -> str:
        rng = self.rng
        if days <= 1:
            return rng.choice(["yesterday", "today"] if days == 0 else ["yesterday"])
        when = self.when - timedelta(days=days)
        forms = [f"{days} days ago", f"on {fmt_date(when)}"]
        if 2 <= days <= 3:
            forms.append("a couple of days ago")
        if 5 <= days <= 10:
            forms.append("last week")
        if days >= 12:
            forms.append(f"about {round(days / 7)} weeks ago")
        if 27 <= days <= 35:
            forms.append("about a month ago")
        return rng.choice(forms)

    def fill(self, template: str, **slots: Any) -> str:
        rate = 0.12 if self.style == "typo" else 0.0
        out = []
        for literal, name, spec, _conv in _FORMATTER.parse(template):
            out.append(typo(literal, self.rng, rate))
            if name is not None:
                value = self.num() if name == "num" and "num" not in slots else slots[name]
                out.append(format(value, spec or ""))
        text = "".join(out)
        return text.lower() if self.style == "lower" else text

    def say(self, pool: str, templates: list[str] | tuple[str, ...], **slots: Any) -> str:
        """One of a pool's templates, filled. The first template a ticket uses names its
        phrasing family, `<intent>.<pool>.<index>`: writers open with the customer's
        first message, so that is the wording the dataset split holds out."""
        i = self.rng.randrange(len(templates))  # draws as rng.choice did
        self.note_phrasing(f"{pool}.{i}")
        return self.fill(templates[i], **slots)

    def note_phrasing(self, member: str) -> None:
        """Name the phrasing family for a template chosen without `say` (first wins)."""
        if not self.phrasing:
            self.phrasing = f"{self.intent}.{member}"


GREETINGS = ("", "", "Hi,", "Hello,", "Hi there,", "Hey,", "Hello {short} team,",
             "Good morning,", "hi", "Hi team,", "To whom it may concern,")  # fmt: skip
CONTEXT_LINES = (
    "I've been a customer for a few years and love your stuff.",
    "We're heading out on a trip next week so I'm trying to sort this out quickly.",
    "Sorry if this is the wrong place to ask.",
    "First time ordering from you guys.",
    "My partner told me to just email you, so here goes.",
)
POLITE_OPENERS = ("Hope you're having a good day!", "Thank you in advance for your help.")
ANGRY_LINES = ("Honestly pretty disappointed.", "This is getting ridiculous.",
               "Please sort this out ASAP.", "Not impressed so far.")  # fmt: skip
ANGRY_OK = {"returns", "sale_return", "exchange", "damaged_missing", "order_status", "shipping",
            "cancellation", "address_change"}  # fmt: skip


def customer_signoff(c: Ctx) -> str:
    p, rng = c.cust, c.rng
    forms = [
        f"Thanks,\n{p.first}", f"Thank you!\n{p.name}", f"- {p.first}", f"Cheers, {p.first}",
        f"Best,\n{p.name}\n{p.address}", f"Regards,\n{p.name}\n{p.email}",
        "Sent from my iPhone", f"{p.first}\n\nSent from my iPhone", "", "", "thx",
    ]  # fmt: skip
    if p.phone:
        forms += [f"{p.name}\n{p.phone}", f"Thanks,\n{p.name}\n{p.phone}"]
    return rng.choice(forms)


def wrap_first(c: Ctx, body: str, intent: str, extra: str = "") -> str:
    """Greeting, optional context, the message, PII extras and a sign-off."""
    rng = c.rng
    if extra:
        body = f"{body} {extra}"
    if c.style == "angry" and intent in ANGRY_OK:
        body = f"{body} {rng.choice(ANGRY_LINES)}"
    if c.channel == "chat" or c.style == "short":
        return body
    parts = []
    greeting = rng.choice(GREETINGS).format(short=c.f.short)
    if greeting and not re.match(r"(?i)(hi|hello|hey)\b", body):
        parts.append(greeting)
    if c.style == "polite":
        parts.append(rng.choice(POLITE_OPENERS))
    if rng.random() < 0.12:
        parts.append(rng.choice(CONTEXT_LINES))
    parts.append(body)
    sign = customer_signoff(c)
    if c.cust.phone and c.cust.phone not in sign and rng.random() < 0.1:
        parts.append(f"You can also call me at {c.cust.phone}.")
    if sign:
        parts.append(sign)
    return "\n\n".join(parts)


def wrap_followup(c: Ctx, body: str, agent: Person) -> str:
    rng = c.rng
    if c.channel == "chat":
        return body
    parts = []
    if rng.random() < 0.3:
        parts.append(f"Hi {agent.first},")
    parts.append(body)
    sign = rng.choice(["", f"Thanks,\n{c.first}", c.first, f"- {c.first}", "Sent from my iPhone"])
    if sign:
        parts.append(sign)
    return "\n\n".join(parts)


def quote_block(c: Ctx, text: str, at: datetime, subject: str) -> str:
    """A quoted earlier email, as mail clients add it under a reply."""
    f, rng = c.f, c.rng
    quoted = "\n".join(f"> {line}" if line else ">" for line in text.splitlines())
    day = DAY_NAMES[at.weekday()]
    hour12 = at.hour % 12 or 12
    ampm = "AM" if at.hour < 12 else "PM"
    form = rng.randrange(3)
    if form == 0:
        head = f"On {day}, {at.day} {MONTHS[at.month - 1][:3]} {at.year}, {f.short} wrote:"
        return f"{head}\n{quoted}"
    if form == 1:
        head = (
            f"On {MONTHS[at.month - 1][:3]} {at.day}, {at.year}, at {hour12}:{at.minute:02d} "
            f"{ampm}, {f.short} Customer Care <{f.email}> wrote:"
        )
        return f"{head}\n\n{quoted}"
    return (
        "________________________________\n"
        f"From: {f.brand} <{f.email}>\n"
        f"Sent: {MONTHS[at.month - 1]} {at.day}, {at.year} {hour12}:{at.minute:02d} {ampm}\n"
        f"To: {c.cust.name} <{c.cust.email}>\n"
        f"Subject: Re: {subject}\n\n{text}"
    )


AGENT_GREETINGS = ("Hi {first},", "Hi {first},", "Hello {first},", "Hey {first},",
                   "Hi {first}!", "Dear {first},")  # fmt: skip
CLOSINGS = ("Best,", "Happy trails,", "Thanks,", "Cheers,", "Take care,", "All the best,")
EXTRA_CLOSERS = ("Let me know if there's anything else I can help with!",
                 "Anything else, just reply here.", "Hope that helps!")  # fmt: skip


def signature(agent: Person, f: Facts, rng: random.Random, channel: str) -> str:
    closing = rng.choice(CLOSINGS)
    if channel == "chat":
        return f"{closing}\n{agent.first}"
    style = agent.style if rng.random() < 0.85 else rng.randrange(5)
    initial = f"{agent.first} {agent.last[0]}."
    if style == 0:
        return f"{closing}\n{initial}\n{f.short} Customer Care\n{f.email}"
    if style == 1:
        return f"{closing}\n{agent.first}\n{f.brand} | {f.phone}"
    if style == 2:
        return f"{closing}\n{agent.name}\nCustomer Care Specialist\n{f.brand}\n{f.website}"
    if style == 3:
        return f"{closing}\n{agent.first} ({agent.pronouns})\n{f.short} Customer Care"
    return f"{closing}\n\n-- \n{initial} | {f.brand}\n{f.hours} | {f.phone}"


def agent_message(c: Ctx, agent: Person, body: str) -> str:
    rng = c.rng
    greeting = rng.choice(AGENT_GREETINGS).format(first=c.first)
    if rng.random() < 0.3:
        body = f"{body}\n\n{rng.choice(EXTRA_CLOSERS)}"
    return f"{greeting}\n\n{body}\n\n{signature(agent, c.f, rng, c.channel)}"


def handover(team: str) -> str:
    return HANDOVER.format(team=team)


def paras(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)


def sentences(*parts: str) -> str:
    return " ".join(p for p in parts if p)


# --- intent writers ---------------------------------------------------------------------------

REASONS = (
    "it's too big", "it's a bit too small", "the fit just isn't right for me",
    "I ordered two sizes and I'm keeping the other one",
    "the colour looks different than it did online", "I changed my mind",
    "it's heavier than I expected", "I found something that suits me better",
    "it's not quite what I needed",
)  # fmt: skip


def _reason(c: Ctx) -> tuple[str, str]:
    r = c.rng.choice(REASONS)
    return r, r[0].upper() + r[1:]


R_WINDOW = (
    "You can return {it} within {win} days of delivery, as long as items are {cond}.",
    "Our return window is {win} days from delivery, and items need to be {cond}.",
    "Returns are accepted within {win} days of delivery for items that are {cond}.",
)
R_HOW = (
    "To start, head to the Returns page on {site} and enter your order number and email; "
    "we'll send you a {label}.",
    "Just start the return from the Returns page at {site} with your order number and email, "
    "and you'll get a {label} right away.",
    "You can start it on our website ({site}, Returns page) with your order number and email, "
    "and it'll generate a {label}.",
)
R_REFUND = (
    "Once it's back at our warehouse, we'll refund your original payment method within "
    "{refund} business days.",
    "Refunds go back to the original payment method within {refund} business days of the "
    "return arriving.",
    "As soon as we receive it, your refund is issued to the original payment method within "
    "{refund} business days.",
)


def _return_steps(c: Ctx, it: str, win: int) -> str:
    f, rng = c.f, c.rng
    return sentences(
        rng.choice(R_WINDOW).format(it=it, win=win, cond=f.condition),
        rng.choice(R_HOW).format(site=f.website, label=f.label),
        rng.choice(R_REFUND).format(refund=f.refund),
    )


def w_returns(c: Ctx) -> Draft:
    f, rng = c.f, c.rng
    win = f.old_window if c.outdated else f.window
    p = c.pick(c.shelf.full) if rng.random() < 0.7 else None
    thing = c.mention(p) if p else a_noun(c.pick(c.shelf.live).kind.noun)
    it = f"the {p.title}" if p else "it"
    case = rng.choices(["normal", "late", "worn"], weights=[78, 12, 10])[0]
    days = rng.randint(win + 4, win + 45) if case == "late" else rng.randint(1, win - 3)
    reason, reason_cap = _reason(c)
    slots = dict(thing=thing, when=c.ago(days), reason=reason, Reason=reason_cap, order=c.order())
    warranty = (
        f"the {p.title} {has(p)} a {lc_first(p.warranty)}" if p else "our warranty covers defects"
    )
    defect_line = (
        f"If something's wrong with it, though, {warranty}: send a photo and we'll take a look."
    )
    if case == "late":
        customer = c.say("late", RETURN_LATE, **slots)
        weeks = max(2, round(days / 7))
        agent = sentences(
            f"I'm sorry, {c.first}, but our return window is {win} days from delivery, and since "
            f"your order arrived about {weeks} weeks ago it's outside that window, so I'm not able "
            "to accept it as a return.",
            defect_line,
        )
        follow = ("Seriously? It's only a little over. Can't you make an exception?",
                  f"I understand, and I'm sorry. The {win}-day window applies to every order, so "
                  f"I can't make an exception. {defect_line}")  # fmt: skip
    elif case == "worn":
        customer = c.say("worn", RETURN_WORN, **slots)
        agent = sentences(
            f"We accept returns within {win} days of delivery, but items need to be "
            f"{f.condition}, so I'm afraid a worn item can't be returned.",
            defect_line,
        )
        follow = ("It was only worn once though...",
                  f"I know, and I'm sorry. We can only accept items that are {f.condition}, "
                  "since we resell every return.")  # fmt: skip
    else:
        customer = c.say("normal", RETURN_NORMAL, **slots)
        agent = sentences(rng.choice(["Sorry it didn't work out!", "Happy to help with that.", ""]),
                          _return_steps(c, it, win))  # fmt: skip
        if "original box" in customer:
            agent += " No need for the original box: any sturdy packaging works."
        follow = rng.choice(_RETURN_FOLLOWUPS)
        follow = (follow[0], follow[1].format(refund=f.refund, cond=f.condition))
    return _two_rounds(c, rng.choice(RETURN_SUBJECTS).format(order=c.order_no), customer, agent,
                       follow, type_="task")  # fmt: skip


RETURN_SUBJECTS = ("Return", "Return request", "How do I return this?", "Return for order #{order}",
                   "Returning an item", "refund", "Return policy question")  # fmt: skip
RETURN_NORMAL = (
    "How do I return {thing}? {Reason}.",
    "I'd like to return {thing} that I got {when}. {Reason}. What do I need to do?",
    "return??",
    "Hi, can I send back {thing}? Tags are still on it, never worn.",
    "What's your return policy? I bought {thing} {when} and {reason}.",
    "I need to return something from {order}. {Reason}. Is return shipping free or do I pay?",
    "So I finally tried on {thing} that came {when} and honestly {reason}. I've never returned "
    "anything to you guys before so how does it work? Do I need the original box? And how long "
    "does the refund take to show up?",
    "want to return {thing}, {reason}. how long do i have",
    "Quick question: what's the return window? Thinking about sending back {thing}.",
    "I ordered {thing} {when}. {Reason}, so I'd like to return it for a refund. Order number is "
    "{num}.",
    "hello i want refund for {thing} {reason} pls tell me how",
)
RETURN_LATE = (
    "Can I still return {thing}? I got it {when} but {reason}.",
    "I know it's been a while (got it {when}) but {reason}. Any chance I can return {thing}?",
    "Hi, I bought {thing} {when} and never wore it. {Reason}. Can I return it? {order}.",
)
RETURN_WORN = (
    "I wore {thing} on one hike and {reason}. Can I still return it?",
    "Took {thing} out for a weekend trip and {reason}. Is it returnable if it's been used once?",
    "used {thing} twice, {reason}. can it still go back?",
    "Hello. I have worn {thing} a couple of times around town, but {reason}. The tags are off "
    "now. Would you still accept it as a return, or is that not allowed once something has been "
    "worn?",
)
_RETURN_FOLLOWUPS = (
    ("Thanks! Do I need the original box?",
     "No need for the original box: any sturdy box or mailer works. Just make sure it's {cond}."),
    ("ok I mailed it back yesterday. when do I get my money back?",
     "Refunds go back to your original payment method within {refund} business days of the "
     "return reaching our warehouse. You'll get an email as soon as it's processed."),
    ("Great. Is the label emailed or do I print it from the site?",
     "The label is emailed to you as soon as you start the return, so you can print it at home "
     "or show it at the drop-off point."),
)  # fmt: skip


def _two_rounds(
    c: Ctx,
    subject: str,
    customer: str,
    agent: str,
    follow: tuple[str, str] | None,
    type_: str | None = "question",
    escalated: bool = False,
    note: str | None = None,
) -> Draft:
    d = Draft(subject, [customer], [agent], escalated=escalated, note=note, type=type_)
    if c.multi and follow:
        d.customer.append(c.fill(follow[0]))
        d.agent.append(follow[1])
    return d


def w_sale_return(c: Ctx) -> Draft:
    f, rng = c.f, c.rng
    p = c.pick(c.shelf.sale) if c.shelf.sale and rng.random() < 0.85 else None
    thing = c.mention(p) if p else a_noun(c.pick(c.shelf.live).kind.noun)
    reason, reason_cap = _reason(c)
    customer = c.say(
        "ask", SALE_RETURN, thing=thing, reason=reason, Reason=reason_cap, order=c.order(),
        price=money(p.price) if p else "the sale price", when=c.ago(rng.randint(2, 20)),
    )  # fmt: skip
    if p:
        lead = (
            f"The {p.title} {was(p)} on sale ({money(p.price)}, down from {money(p.compare_at)}), "
            "and items bought on sale are final sale, so I'm not able to accept a return or "
            f"exchange on {them(p)}."
        )
    else:
        lead = "Items bought on sale are final sale, so I'm not able to accept a return or exchange on them."
    agent = sentences(
        rng.choice(["Thanks for reaching out, and sorry it isn't working out.",
                    "I'm sorry to be the bearer of bad news here."]),
        lead,
        f"If it arrived damaged or faulty, that's different: send us a photo within "
        f"{f.damage_days} days of delivery and we'll send a replacement or a refund.",
    )  # fmt: skip
    follow = rng.choice(
        [("That's not fair, nobody told me that when I bought it.",
          "I'm sorry for the frustration. The final-sale note is shown on sale items and at "
          "checkout, and I'm not able to make an exception. If anything turns out to be "
          "defective, our warranty still applies."),
         ("Ok can I at least exchange it for a different size then?",
          "Unfortunately final sale covers exchanges too, so I can't swap it. I'm sorry I don't "
          "have better news!")]
    )  # fmt: skip
    subject = rng.choice(
        ["Return sale item", "Return", "Refund for sale purchase", "Can I return this?"]
    )
    return _two_rounds(c, subject, customer, agent, follow, type_="task")


SALE_RETURN = (
    "Can I return {thing}? I bought it on sale {when} and {reason}.",
    "I got {thing} for {price} in your sale and {reason}. How do I return it?",
    "Hi! I'd like to return {thing}. {Reason}. {order}.",
    "is sale stuff returnable? bought {thing}, {reason}",
    "I bought {thing} during the sale and honestly {reason}. I know some stores don't take back "
    "sale items, but I've only had it a few days and it's unworn. Is there anything you can do?",
    "Returning {thing}: it was discounted but {reason}. Please send a label.",
)


def w_exchange(c: Ctx) -> Draft:
    f, rng = c.f, c.rng
    sale_case = bool(c.shelf.sale_sized) and rng.random() < 0.1
    p = c.pick(c.shelf.sale_sized if sale_case else c.shelf.sized)
    sizes, colors = p.option_values(p.option_names[0]), p.option_values("Color")
    size, color = rng.choice(sizes), rng.choice(colors)
    want_size, want_color, tight = size, color, ""
    if len(colors) > 1 and rng.random() < 0.25:
        want_color = rng.choice([x for x in colors if x != color])
        customer = c.say(
            "color", EXCHANGE_COLOR, thing=c.mention(p), have=color, want=want_color, size=size
        )
    else:
        i = sizes.index(size)
        up = i + 1 < len(sizes) and (i == 0 or rng.random() < 0.6)
        want_size = sizes[i + 1] if up else sizes[i - 1]
        tight = rng.choice(["tight", "small"]) if up else rng.choice(["big", "loose"])
        customer = c.say("size", EXCHANGE_SIZE, thing=c.mention(p), have=size, want=want_size,
                         color=color, tight=tight, order=c.order(), when=c.ago(rng.randint(2, 14)))  # fmt: skip
    v = p.find_variant(**{p.option_names[0]: want_size, "Color": want_color})
    assert v is not None
    agent = _exchange_answer(c, p, v, sale_case)
    home = f.zones[c.cust.zone]
    follow = rng.choice(
        [("Do I have to pay shipping for the exchange?",
          f"No, you'll get a {f.label} for sending yours back."),
         ("How long until I get the new one?",
          f"We ship exchanges within {f.processing} business day of your return being scanned, "
          f"and standard delivery to {home.where} takes {home.days} after that.")]
    )  # fmt: skip
    subject = rng.choice(
        ["Exchange", "Size exchange", "Swap for a different size", "Exchange request"]
    )
    return _two_rounds(c, subject, customer, agent, None if sale_case else follow, type_="task")


def _exchange_answer(c: Ctx, p: DemoProduct, v: Variant, sale_case: bool) -> str:
    f = c.f
    lab = vlabel(p, v)
    if sale_case:
        return (
            f"Since the {p.title} {was(p)} bought on sale ({money(p.price)}, down from "
            f"{money(p.compare_at)}), that's final sale, so I'm not able to exchange "
            f"{them(p)}. Sorry about that!"
        )
    how = (
        f"Exchanges are free within {f.exchange_window} days of delivery: start one from the "
        f"Returns page on {f.website}, choose {lab}, and we'll ship the new one as soon as your "
        "return is scanned by the carrier."
    )
    phrase = stock_phrase(v)
    if phrase == "in stock":
        return f"Good news: the {p.title} in {lab} {be(p)} in stock. {how}"
    if phrase == "on backorder":
        return (
            f"The {p.title} in {lab} {be(p)} on backorder right now, but you can still exchange "
            f"and we'll ship the new one as soon as it's restocked. {how} If you'd rather not wait, you "
            f"can return it for a refund within {f.window} days instead."
        )
    text = (
        f"I'm sorry, the {p.title} in {lab} {be(p)} out of stock, so I can't set up that exchange "
        f"right now. You can return yours for a refund within {f.window} days of delivery and "
        "reorder once it's back."
    )
    alts = [vlabel(p, w) for w in p.variants if w.inventory_qty][:3]
    if alts:
        text += f" Right now {join_and(alts)} {'is' if len(alts) == 1 else 'are'} in stock."
    return text


EXCHANGE_SIZE = (
    "Can I swap {thing} in {have} for a {want}?",
    "I ordered {thing} in size {have} but it's too {tight}. Could I exchange it for a {want}?",
    "exchange {have} -> {want} pls. {thing}, {order}",
    "The {have} is {tight} on me. Do you have {thing} in {want} in {color}? I'd like to exchange.",
    "Hi there, I bought {thing} ({color}, size {have}) {when} and it's a little {tight}. What's "
    "the process for exchanging for a {want}? Do I need to send mine back first? Thanks so much",
)
EXCHANGE_COLOR = (
    "Love {thing} but the {have} looks off on me. Can I exchange it for {want} in the same size "
    "({size})?",
    "can i change the colour of my {thing} from {have} to {want}? size {size}",
    "Would it be possible to swap {thing} ({have}, size {size}) for the {want} one instead?",
    "wrong color :( got {thing} in {have}, wanted {want}. same size {size} pls",
)

DAMAGE = {
    "apparel": ("the zipper pull came off the first time I used it",
                "there's a tear along the seam of one sleeve", "there's a hole near the hem"),
    "boots": ("the sole is peeling away at the toe on one shoe",
              "the stitching on the heel is coming apart"),
    "socks": ("there's a hole in one of them straight out of the package",
              "the stitching is unravelling"),
    "pack": ("a hipbelt buckle snapped", "the shoulder strap stitching is coming loose",
             "the zipper on the lid pocket is broken"),
    "tent": ("one of the pole sections is cracked", "the rainfly has a small hole in it"),
    "sleeping_bag": ("the zipper is jammed and there's a tear next to it",
                     "there's a small hole leaking down"),
    "sleeping_pad": ("it won't hold air overnight", "the valve is cracked"),
    "stove": ("the igniter doesn't click at all", "it arrived dented and the pot supports are bent"),
    "cookware": ("the pot arrived dented", "the lid handle snapped off"),
    "headlamp": ("it won't turn on even after charging", "the strap clip is broken"),
    "water_bottle": ("the lid leaks", "it arrived with a big dent"),
    "trekking_poles": ("one of the locks won't tighten", "one pole arrived bent"),
}  # fmt: skip


def _damage_for(p: DemoProduct) -> tuple[str, ...]:
    if p.kind.key in DAMAGE:
        return DAMAGE[p.kind.key]
    scheme = {"boots": "boots", "socks": "socks", "pack": "pack"}.get(p.kind.options, "apparel")
    if p.kind.key in {"hat", "gloves"}:
        scheme = "socks"
    return DAMAGE[scheme]


def w_damaged(c: Ctx) -> Draft:
    f, rng = c.f, c.rng
    p = c.pick(c.shelf.live)
    case = rng.choices(["damage", "late", "missing", "lost"], weights=[55, 10, 17, 18])[0]
    days = (
        rng.randint(f.damage_days + 5, 40) if case == "late" else rng.randint(0, f.damage_days - 2)
    )
    slots = dict(thing=c.mention(p), noun=p.kind.noun, damage=rng.choice(_damage_for(p)),
                 when=c.ago(days), order=c.order())  # fmt: skip
    pools = {"damage": ("damaged", DAMAGED), "late": ("damaged", DAMAGED),
             "missing": ("missing", MISSING_ITEM), "lost": ("lost", LOST_PACKAGE)}  # fmt: skip
    customer = c.say(*pools[case], **slots)
    gave_order = str(c.order_no) in customer
    ask = "your order number and " if not gave_order else ""
    if case == "damage":
        agent = (
            f"I'm so sorry the {p.title} arrived like that! Since you've let us know within "
            f"{f.damage_days} days of delivery, we'll make it right with a free replacement or a "
            f"full refund, your choice. Could you reply with {ask}a photo of the damage?"
        )
    elif case == "late":
        agent = (
            f"I'm sorry to hear that. We ask that damage be reported within {f.damage_days} days "
            "of delivery, and it's been longer than that, so I can't process it as a damaged "
            f"delivery. That said, the {p.title} {has(p)} a {lc_first(p.warranty)}: reply with "
            f"{ask}a photo of the issue and we'll review it under warranty."
        )
    elif case == "missing":
        agent = (
            f"Sorry about that! Missing items need to be reported within {f.damage_days} days of "
            f"delivery, and you're well within that. Please reply with {ask}a photo of the "
            f"packing slip, and we'll send the missing {p.title} or refund it, your choice."
        )
    else:
        what = "your order number" if not gave_order else "a quick note"
        agent = (
            "I'm sorry your package hasn't turned up. Carriers sometimes mark a parcel delivered "
            "a day early, so it's worth checking around your door and with neighbours once more. "
            f"If it still hasn't appeared, reply with {what} and, since you're within "
            f"{f.damage_days} days of the delivery date, we'll send a replacement or a full refund."
        )
    d = _two_rounds(c, rng.choice(DAMAGE_SUBJECTS), customer, agent, None, type_="incident")
    if c.multi and case != "late":
        want = rng.choice(["replacement", "refund"])
        pool = LOST_FOLLOW if case == "lost" else DAMAGE_FOLLOW
        d.customer.append(c.fill(rng.choice(pool), order=f"#{c.order_no}", want=want))
        d.agent.append(_damage_resolution(c, p, want))
        d.attachments = (f"IMG_{rng.randint(1000, 9999)}.jpg",) if case != "lost" else ()
    return d


def _damage_resolution(c: Ctx, p: DemoProduct, want: str) -> str:
    f = c.f
    if want == "replacement" and p.in_stock:
        return (
            f"Thanks, {c.first}, that's everything we need. Your replacement {p.title} will ship "
            f"within {f.processing} business day, and you'll get a tracking email when it leaves "
            "our warehouse."
        )
    lead = (
        f"The {p.title} {be(p)} out of stock right now, so I've set up a full refund instead."
        if want == "replacement"
        else f"Thanks for sending that over. I've set up a full refund for the {p.title}."
    )
    return f"{lead} It'll reach your original payment method within {f.refund} business days."


DAMAGE_SUBJECTS = ("Damaged item", "Arrived broken", "Problem with my order", "Missing item",
                   "Package not received", "Defective product")  # fmt: skip
DAMAGED = (
    "{thing} arrived {when} and {damage}. What can you do?",
    "Just opened my order and {damage}. It's {thing}. Not happy.",
    "Hi, my {noun} came {when} and {damage}. I have photos. {order}.",
    "damaged item: {damage}. {thing}",
    "Hello, I received {thing} {when}. Unfortunately {damage}. I was really looking forward to "
    "using it this weekend. Can you send a replacement? I can send pictures if needed.",
)
MISSING_ITEM = (
    "My order arrived {when} but {thing} wasn't in the box. The packing slip lists it though.",
    "Box came {when}, only had half my order. {thing} is missing.",
    "Hi, {order} arrived {when} and {thing} is not in the package. Can you help?",
)
LOST_PACKAGE = (
    "Tracking says my package was delivered {when} but it's not here. I checked with my neighbors.",
    "where is my package?? says delivered {when}, nothing at my door. {order}",
    "Hi, my order with {thing} shows as delivered but I never got it. What should I do?",
)
LOST_FOLLOW = (
    "Still nothing. Order is {order}, a {want} please.",
    "Checked everywhere, it's not here. {order}. I'd like a {want}.",
)
DAMAGE_FOLLOW = (
    "Here you go, photo attached. Order is {order}. I'd prefer a {want} please.",
    "Pics attached. A {want} please, order {order}.",
    "Attached the photo. It's {order}. A {want} would be great, thank you!",
)


def w_shipping(c: Ctx) -> Draft:
    f, rng = c.f, c.rng
    thr = f.old_threshold if c.outdated else f.threshold
    zone = f.zones[c.cust.zone]
    case = "threshold" if c.outdated else rng.choices(
        ["zone", "threshold", "international", "speed"], weights=[35, 30, 13, 22]
    )[0]  # fmt: skip
    p = c.pick(c.shelf.sellable)
    free_note = f"Orders over {dollars(thr)} ship free within the contiguous US."
    if case == "zone":
        customer = c.say("zone", SHIP_ZONE, place=f"{c.cust.city}, {c.cust.state}", state=c.cust.state,
                         city=c.cust.city, noun=p.kind.noun)  # fmt: skip
        agent = sentences(
            f"Standard shipping to {zone.where} is {money(zone.cost)} and takes {zone.days} once "
            f"your order ships (orders leave our warehouse within {f.processing} business day).",
            free_note,
        )
    elif case == "threshold":
        customer, agent = _threshold_case(c, thr, zone)
    elif case == "international":
        country = rng.choice(["the UK", "Germany", "Australia", "Mexico", "Japan", "New Zealand"])
        customer = c.say("international", SHIP_INTL, country=country, thing=c.mention(p))
        canada = f.zones["Canada"]
        agent = (
            f"I'm sorry, we only ship within the US and Canada right now, so I can't send an "
            f"order to {country}. (Shipping to Canada is {money(canada.cost)} and takes "
            f"{canada.days}.)"
        )
    else:
        customer = c.say("speed", SHIP_SPEED, thing=c.mention(p), day=rng.choice(WEEKDAYS),
                         date=fmt_date(c.when + timedelta(days=rng.randint(3, 9))))  # fmt: skip
        agent = sentences(
            f"We only offer standard shipping: orders leave our warehouse within {f.processing} "
            f"business day and take {zone.days} to arrive in {zone.where} "
            f"({money(zone.cost)}).",
            free_note if zone.name == "Contiguous US" else "",
            f"So if you order today, plan on up to {f.processing + zone.dmax} business days.",
        )
    follow = _shipping_followup(c, thr)
    return _two_rounds(c, rng.choice(SHIP_SUBJECTS), customer, agent, follow)


def _threshold_case(c: Ctx, thr: Decimal, zone: Zone) -> tuple[str, str]:
    rng = c.rng
    cart = Decimal(f"{rng.randint(int(thr) - 30, int(thr) + 40)}.{rng.choice(['00', '50', '95'])}")
    if c.outdated:  # a cart between the old and new thresholds shows the change
        cart = Decimal(f"{rng.randint(int(thr) + 2, 74)}.00")
    if cart == thr:
        cart += Decimal("4.50")
    customer = c.say("threshold", SHIP_THRESHOLD, cart=money(cart))
    rule = f"orders over {dollars(thr)} ship free within the contiguous US"
    if money(cart) not in customer:
        return customer, (
            f"Yes! {rule[0].upper()}{rule[1:]}. Below that, standard shipping to {zone.where} is "
            f"{money(zone.cost)} and takes {zone.days}."
        )
    if cart > thr:
        return customer, f"Good news: {rule}, so at {money(cart)} you qualify."
    gap = thr - cart
    fillers = sorted(
        (p for p in c.shelf.sellable if p.price >= gap), key=lambda p: (p.price, p.title)
    )
    text = f"{rule[0].upper()}{rule[1:]}, so you're {money(gap)} away."
    if fillers:
        text += f" Something like the {fillers[0].title} ({money(fillers[0].price)}) would get you there."
    return customer, text


def _shipping_followup(c: Ctx, thr: Decimal) -> tuple[str, str]:
    f, rng = c.f, c.rng
    canada, akhi = f.zones["Canada"], f.zones["Alaska & Hawaii"]
    return rng.choice(
        [("And what about shipping to Canada?",
          f"Standard shipping to Canada is {money(canada.cost)} and takes {canada.days}."),
         ("Thanks! Does the free shipping apply to Alaska too?",
          f"Free shipping over {dollars(thr)} applies to the contiguous US only; shipping to "
          f"Alaska and Hawaii is {money(akhi.cost)} and takes {akhi.days}.")]
    )  # fmt: skip


SHIP_SUBJECTS = ("Shipping question", "Shipping cost", "Delivery time", "Free shipping?",
                 "Do you ship to me?", "shipping")  # fmt: skip
SHIP_ZONE = (
    "How much is shipping to {place}?",
    "what does shipping cost to {state}? and how long does it take",
    "Hi, I'm in {city}. How long would it take to get a {noun} here and what's the shipping cost?",
    "Planning a trip soon. If I order today, how long would it take to get to {place}?",
)
SHIP_THRESHOLD = (
    "Do you do free shipping?",
    "how much do I need to spend for free shipping",
    "My cart is at {cart}. Do I get free shipping or do I need to add something?",
    "free shipping threshold?",
    "Hi, quick one: my cart is {cart} right now, is shipping free at that amount?",
)
SHIP_INTL = (
    "Do you ship to {country}?",
    "Hi from {country}! Can I order {thing} and have it shipped here?",
    "international shipping to {country}??",
)
SHIP_SPEED = (
    "Can I get {thing} by {day} if I order now?",
    "do you have express shipping? need {thing} for a trip on {date}",
    "What's the fastest shipping option you have?",
)


def w_order_status(c: Ctx) -> Draft:
    f, rng = c.f, c.rng
    p = c.pick(c.shelf.live)
    has_num = rng.random() < 0.5
    slots = dict(order=c.order(), n=rng.randint(4, 14), thing=c.mention(p), tracking=c.tracking(),
                 day=rng.choice(WEEKDAYS), when=c.ago(rng.randint(3, 15)),
                 date=fmt_date(c.when - timedelta(days=rng.randint(3, 12))))  # fmt: skip
    customer = c.say(
        *(("with_number", STATUS_WITH) if has_num else ("no_number", STATUS_WITHOUT)), **slots
    )
    if not has_num and c.channel == "email" and rng.random() < 0.25:
        customer = _forwarded_confirmation(c, customer, slots["tracking"])
    team = "fulfillment"
    info = (
        f"Orders usually leave our warehouse within {f.processing} business day, and the "
        "tracking link is emailed as soon as they do."
    )
    if has_num:
        agent = sentences(
            rng.choice(["Thanks for the order number.", "Sorry for the wait on this one."]),
            "I'm not able to look up orders from this inbox, so " + handover(team),
            info,
        )
        follow = ("Ok thanks. Should I wait or reorder?",
                  "Please hold off on reordering for now. Our fulfillment team has your order "
                  "number and will reply within one business day.")  # fmt: skip
        return _two_rounds(c, _status_subject(c), customer, agent, follow, "incident", True,
                           note=f"Internal: passed to fulfillment via the warehouse channel, order #{c.order_no}.")  # fmt: skip
    agent = sentences(
        rng.choice(["I'm sorry for the wait!", "Happy to help track this down."]),
        "I can't look up orders from this inbox, so could you reply with your order number "
        "(it's on your confirmation email, starting with #) and the email address you used at "
        "checkout? I'll get it to our fulfillment team right away.",
    )
    d = _two_rounds(c, _status_subject(c), customer, agent, None, "incident")
    if c.multi:
        d.customer.append(
            c.fill(rng.choice(STATUS_GIVE), order=f"#{c.order_no}", email=c.cust.email)
        )
        d.agent.append(sentences("Thanks, " + c.first + "!", handover(team)))
        d.escalated = True
    return d


def _status_subject(c: Ctx) -> str:
    return c.rng.choice(["Where is my order?", "Order status", "Order #{n}", "Tracking not updating",
                         "When will my order ship?", "Still waiting"]).format(n=c.order_no)  # fmt: skip


def _forwarded_confirmation(c: Ctx, customer: str, tracking: str) -> str:
    sent = c.when - timedelta(days=c.rng.randint(4, 9), hours=c.rng.randint(1, 9))
    head = f"On {DAY_NAMES[sent.weekday()]}, {sent.day} {MONTHS[sent.month - 1][:3]} {sent.year}, {c.f.short} wrote:"
    quoted = (
        f"> Good news, your order is on its way!\n> Tracking number: {tracking}\n> Happy trails!"
    )
    return f"{customer}\n\n{head}\n{quoted}"


STATUS_WITH = (
    "Where is my order {num}? It's been {n} days.",
    "Hi, I placed {order} on {date} and haven't received a shipping email yet. Can you check?",
    "tracking number {tracking} hasn't updated since {day}. {order}",
    "Any update on {order}? Need {thing} for a trip this weekend",
    "{order} status?",
    "Hello, I ordered {thing} {when} ({order}) and the tracking still says label created. Is it "
    "actually shipped? I'm getting a bit worried because I need it for a trip on {date}.",
)
STATUS_WITHOUT = (
    "Where's my order??",
    "I ordered {thing} {when} and it still hasn't arrived. When will it come?",
    "Hi, can you tell me when my order will ship?",
    "still waiting on my package. whats going on",
    "Has my order shipped yet? I ordered on {date}.",
    "Tracking hasn't moved in days.",
)
STATUS_GIVE = (
    "It's {order}, email is {email}.",
    "order number {order}, I used {email}",
    "Sorry! {order}. Email on the order: {email}",
)

ASPECTS = ("price", "stock", "material", "care", "fit", "spec", "weight", "warranty")
ASPECT_Q = {
    "price": ("How much is {m}?", "Is {m} on sale right now?", "what's the price on {m}"),
    "stock": ("Do you have {m} in {var}?", "Is {m} in {var} in stock?", "any {var} left of {m}?"),
    "material": ("What's {m} made of?", "What material is {m}?", "what fabric is {m}"),
    "care": ("How do I wash {m}?", "Can {m} go in the washing machine?", "care instructions for {m}?"),
    "fit": ("Does {m} run small?", "How does {m} fit?", "is {m} true to size"),
    "weight": ("How heavy is {m}?", "What does {m} weigh?", "weight of {m}?",
               "Trying to keep my pack light - how much does {m} weigh?"),
    "warranty": ("What's the warranty on {m}?", "Is {m} covered by a warranty?",
                 "warranty for {m}??", "If {m} breaks after a few months, is that covered?"),
}  # fmt: skip
SPEC_Q = {
    "Waterproof rating": "Is {m} actually waterproof? What's the rating?",
    "Temperature rating": "How warm is {m}? Is it ok for cold nights?",
    "R-value": "What's the R-value of {m}?",
    "Capacity": "How big is {m}?",
    "Brightness": "How bright is {m}?",
    "Boil time": "How fast does {m} boil water?",
    "Insulation": "How long does {m} keep water cold?",
    "Water resistance": "Is {m} waterproof?",
    "Length": "How long do {m} extend?",
    "Drop": "What's the drop on {m}?",
    "Cushioning": "How much cushioning do {m} have?",
    "Sun protection": "Do {m} have UV protection?",
    "Seams": "Are the seams taped on {m}?",
    "Packability": "Does {m} pack down small?",
    "Fuel": "What fuel does {m} use?",
    "Waterproofing": "Are {m} waterproof?",
}


def _aspect_options(p: DemoProduct) -> list[str]:
    out = [a for a in ASPECTS if a not in {"fit", "spec"}]
    if p.fit:
        out.append("fit")
    if p.specs:
        out += ["spec", "spec"]
    return out


def _ask_aspect(c: Ctx, p: DemoProduct, aspect: str, m: str) -> tuple[str, str, Variant | None]:
    """One customer question about a product and the agent's factual answer."""
    rng = c.rng
    if aspect == "spec":
        label, value = rng.choice(p.specs)
        c.note_phrasing("spec." + re.sub(r"\W+", "_", label.lower()))
        return _it_grammar(c.fill(SPEC_Q[label], m=m)), f"{label} for the {p.title}: {value}.", None
    if aspect == "stock":
        v = rng.choice(p.variants)
        lab = vlabel(p, v)
        if not lab:
            c.note_phrasing("stock.bare")
        q = (
            c.say("stock", ASPECT_Q["stock"], m=m, var=lab)
            if lab
            else c.fill("Is {m} in stock?", m=m)
        )
        return q, stock_answer(p, v, rng), v
    q = c.say(aspect, ASPECT_Q[aspect], m=m)
    not_on_sale = " It's not on sale at the moment." if "sale" in q and not p.on_sale else ""
    t, verb = p.title, be(p)
    one_price = len({v.price for v in p.variants}) == 1
    answers = {
        "price": (f"The {t} {verb} on sale right now for {money(p.price)} (regularly "
                  f"{money(p.compare_at)})." if p.on_sale and one_price
                  else f"The {t} {verb} {price_text(p)}.{not_on_sale}"),
        "material": f"The {t} {verb} made of {lc_first(p.material)}.",
        "care": f"Care instructions for the {t}: {lc_first(p.care)}.",
        "fit": f"Fit notes for the {t}: {lc_first(p.fit)}.",
        "weight": f"The {t} {'weigh' if plural(p) else 'weighs'} {p.weight_text}.",
        "warranty": f"The {t} {verb} covered by our {lc_first(p.warranty)}.",
    }  # fmt: skip
    return q, answers[aspect], None


def _it_grammar(text: str) -> str:
    """'Do it have' -> 'Does it have' when a plural-noun template gets the pronoun."""
    text = re.sub(r"\b([Dd])o it\b", r"\1oes it", text)
    return re.sub(r"\b([Aa])re it\b", lambda m: ("I" if m.group(1) == "A" else "i") + "s it", text)


def w_product_question(c: Ctx) -> Draft:
    rng = c.rng
    if c.shelf.archived and rng.random() < 0.08:
        return _discontinued(c)
    p = c.pick([q for q in c.shelf.live if q.specs] if rng.random() < 0.6 else c.shelf.live)
    options = _aspect_options(p)
    first, second = rng.sample(options, 2)
    question, answer, _ = _ask_aspect(c, p, first, c.mention(p))
    used = {first}
    if rng.random() < 0.35 and second != first:
        q2, a2, _ = _ask_aspect(c, p, second, "it")
        joiner = rng.choice([" Also, ", " And ", "\n\n"])
        q2 = q2 if joiner == "\n\n" else q2[0].lower() + q2[1:]
        question, answer = question + joiner + q2, sentences(answer, a2)
        used.add(second)
    d = _two_rounds(c, _pq_subject(c, p), question, answer, None)
    if c.multi:
        rest = [a for a in options if a not in used] or ["weight"]
        qf, af, _ = _ask_aspect(c, p, rng.choice(rest), "it")
        d.customer.append(rng.choice(["Thanks! ", "Great, ", "Ok cool. ", ""]) + qf)
        d.agent.append(af)
    return d


def _pq_subject(c: Ctx, p: DemoProduct) -> str:
    return c.rng.choice([f"Question about the {p.title}", p.title, "Product question",
                         "Quick question", f"{p.kind.noun} question"])  # fmt: skip


def _discontinued(c: Ctx) -> Draft:
    rng = c.rng
    p = rng.choice(c.shelf.archived)
    same = [q for q in c.shelf.sellable if q.kind.key == p.kind.key] or c.shelf.sellable
    alt = rng.choice(same)
    customer = c.say(
        "discontinued",
        ("Do you still sell {m}? Can't find it on the site anymore.",
         "Is {m} coming back? I wanted to buy another one.",
         "where did {m} go?? wanted to reorder"),
        m=c.mention(p),
    )  # fmt: skip
    agent = (
        f"Sorry, {c.first}, the {p.title} {has(p)} been discontinued and {be(p)} no longer "
        "available. "
        f"A similar option we do have in stock is the {alt.title} ({price_text(alt)})."
    )
    return Draft(f"Is the {p.title} discontinued?", [customer], [agent])


ACTIVITY_WORDS = ("hiking", "backpacking", "camping", "trail running", "winter")


def w_recommendation(c: Ctx) -> Draft:
    rng = c.rng
    case = rng.choices(["budget", "activity", "gift"], weights=[50, 30, 20])[0]
    if case == "gift":
        return _gift_recs(c)
    kind = rng.choice(c.shelf.kinds_in_stock())
    cands = [p for p in c.shelf.sellable if p.kind.key == kind]
    noun = cands[0].kind.noun
    a_noun = noun if noun.endswith("s") else f"a {noun}"
    activity = rng.choice(list(cands[0].kind.activities))
    if case == "activity":
        fit = [p for p in cands if activity in p.tags]
        cands = fit if len(fit) >= 2 else cands
        recs = rng.sample(cands, min(len(cands), rng.choice([2, 3])))
        customer = c.say("activity", REC_ACTIVITY, noun=noun, activity=activity, month=rng.choice(MONTHS),
                         place=rng.choice(["the Cascades", "Utah", "the Smokies", "Colorado"]))  # fmt: skip
        budget_txt = ""
    else:
        prices = sorted(p.price for p in cands)
        target = prices[rng.randrange(len(prices) // 2, len(prices))]  # upper half: more fit
        budget = (int(target) // 25 + 1) * 25
        cands = [p for p in cands if p.price <= budget]
        recs = rng.sample(cands, min(len(cands), rng.choice([1, 2, 3])))
        customer = c.say("budget", REC_BUDGET, noun=noun, a_noun=a_noun, activity=activity, budget=budget,
                         who=rng.choice(["myself", "my wife", "my husband", "my dad", "my kid"]))  # fmt: skip
        budget_txt = f" under {dollars(budget)}"
    recs.sort(key=lambda p: (p.price, p.title))
    lead = f"For {activity}{budget_txt}, I'd look at:"
    if activity not in customer.lower():  # only echo the activity the customer named
        lead = f"With a {dollars(budget)} budget, I'd look at:" if budget_txt else "I'd look at:"
    agent = _rec_answer(c, recs, lead)
    d = _two_rounds(
        c, rng.choice(REC_SUBJECTS).format(noun=noun, a_noun=a_noun), customer, agent, None
    )
    _rec_followup(c, d, recs)
    return d


def _gift_recs(c: Ctx) -> Draft:
    rng = c.rng
    budget = rng.choice([30, 50, 75])
    pool = [p for p in c.shelf.sellable if p.price <= budget]
    if not pool:
        budget = (int(min(p.price for p in c.shelf.sellable)) // 25 + 1) * 25
        pool = [p for p in c.shelf.sellable if p.price <= budget]
    by_kind: dict[str, DemoProduct] = {}
    for p in rng.sample(pool, len(pool)):
        by_kind.setdefault(p.kind.key, p)
    recs = sorted(list(by_kind.values())[:3], key=lambda p: (p.price, p.title))
    activity = rng.choice(ACTIVITY_WORDS)
    customer = c.say(
        "gift",
        ("Gift ideas for a {activity} fan under ${budget}?",
         "Need a stocking stuffer under ${budget} for someone who loves {activity}",
         "my brother is really into {activity}, anything nice under {budget} dollars?"),
        activity=activity, budget=budget,
    )  # fmt: skip
    agent = _rec_answer(c, recs, f"Some favourites under {dollars(budget)}:")
    d = _two_rounds(c, "Gift ideas", customer, agent, None)
    _rec_followup(c, d, recs)
    return d


def _rec_answer(c: Ctx, recs: list[DemoProduct], lead: str) -> str:
    rng = c.rng
    lines = [f"- the {p.title} ({price_short(p)}): {product_fact(p, rng)}" for p in recs]
    tail = "All of these are in stock right now." if len(recs) > 1 else "It's in stock right now."
    opener = rng.choice(["Great question!", "Happy to help!", "Fun one!", ""])
    return paras(sentences(opener, lead), "\n".join(lines), tail)


def _rec_followup(c: Ctx, d: Draft, recs: list[DemoProduct]) -> None:
    if not c.multi:
        return
    p = recs[0]
    v = c.rng.choice(p.variants)
    lab = vlabel(p, v)
    if not lab:
        d.customer.append(c.fill("Nice. How heavy is the {t}?", t=p.title))
        d.agent.append(f"The {p.title} weighs {p.weight_text}.")
        return
    d.customer.append(c.fill("Does the {t} come in {lab}?", t=p.title, lab=lab))
    d.agent.append(stock_answer(p, v, c.rng))


REC_SUBJECTS = (
    "Recommendation?",
    "Which {noun} should I get?",
    "Need advice",
    "Looking for {a_noun}",
)
REC_BUDGET = (
    "I'm looking for {a_noun} for {activity} under ${budget}. What would you recommend?",
    "Need {a_noun} for {who}, budget around ${budget}. Any suggestions?",
    "can you recommend {a_noun} under {budget} bucks",
    "Hi there! I'm getting into {activity} and want {a_noun}. I don't want to spend more "
    "than ${budget}. Which one would you pick? There are so many on your site and I have no idea "
    "what the differences are lol",
)
REC_ACTIVITY = (
    "Which {noun} would you recommend for {activity}?",
    "Heading to {place} in {month} for some {activity}. Which {noun} should I bring?",
    "best {noun} for {activity}?",
)

COMPETITORS = ("Trailhead Supply Co.", "Basecamp Depot", "Summit Outlet", "Pinecone Sports")


def w_discount(c: Ctx) -> Draft:
    rng = c.rng
    case = rng.choices(["code", "match", "haggle", "drop"], weights=[30, 30, 20, 20])[0]
    if case == "drop" and c.shelf.sale:
        return _price_drop(c)
    if case == "match":
        return _price_match(c)
    f = c.f
    loyalty = f"{f.loyalty}: you earn {f.earn}, and {f.redeem}"
    if case == "haggle":
        p = c.pick(c.shelf.full)
        customer = c.say(
            "haggle",
            ("Can you do {pct}% off if I buy two of {m}?", "would you take ${offer} for {m}?",
             "I'll buy {m} right now if you knock off $20"),
            m=c.mention(p), pct=rng.choice([10, 15, 20]), offer=int(p.price * Decimal("0.8")),
        )  # fmt: skip
        agent = sentences(
            "I'm afraid our prices are the same for everyone, so I can't offer a custom discount.",
            f"The {p.title} {be(p)} {price_text(p)}.",
            f"You would earn {f.loyalty} on the order, though: {f.earn}.",
        )
    else:
        customer = c.say(
            "code",
            ("Do you have any discount codes?", "any promo code for a first order?",
             "Is there a student discount?", "do u have a military discount",
             "Hi! Are there any coupons right now? About to place an order."),
        )  # fmt: skip
        agent = sentences(
            "We don't have any promo codes running, and our prices are the same for everyone.",
            f"What we do have is {loyalty}.",
            "And if you spot a lower price on the identical item at an authorized US retailer, "
            "we'll match it.",
        )
    follow = ("Ok, how do I use my points?", f"Points are redeemed at checkout: {f.redeem}.")
    return _two_rounds(c, rng.choice(["Discount code?", "Discount", "Price question"]), customer,
                       agent, follow)  # fmt: skip


def _price_match(c: Ctx) -> Draft:
    f, rng = c.f, c.rng
    p = c.pick(c.shelf.full)
    lower = (p.price * Decimal(str(rng.choice([0.85, 0.9])))).quantize(Decimal("0.01"))
    market = rng.random() < 0.3
    who = "a seller on an online marketplace" if market else rng.choice(COMPETITORS)
    customer = c.say(
        "match",
        ("I bought {m} {when} and {who} has it for {lower}. Will you match it?",
         "Can you price match? {who} has {m} at {lower}, I paid {price} with you {when}.",
         "Just saw {m} for {lower} at {who}. I paid {price} here {when} - do you refund the "
         "difference?",
         "price match request: {m}, {who}, {lower}"),
        m=c.mention(p), who=who, lower=money(lower), price=money(p.price), when=c.ago(rng.randint(2, 10)),
    )  # fmt: skip
    if market:
        agent = (
            "We match authorized US retailers only, and we don't match marketplace sellers, so "
            f"I'm not able to match that price. The {p.title} {be(p)} {price_text(p)} with us."
        )
        return Draft("Price match", [customer], [agent])
    agent = (
        "We match the current advertised price of an identical item (same product, size and "
        "colour) from an authorized US retailer within 14 days of purchase. If "
        f"{who} has the {p.title} at {money(lower)}, reply with a link to the listing and we'll "
        "take care of it."
    )
    link = f"https://www.{re.sub(r'[^a-z]', '', who.lower())}.example.com/products/{p.handle}"
    follow = (f"Here's the link: {link}",
              f"Thanks, that checks out. I've refunded the {money(p.price - lower)} difference, and "
              f"it'll reach your original payment method within {f.refund} business days.")  # fmt: skip
    return _two_rounds(c, "Price match request", customer, agent, follow)


def _price_drop(c: Ctx) -> Draft:
    f, rng = c.f, c.rng
    p = c.pick(c.shelf.sale)
    days = rng.randint(2, 13) if rng.random() < 0.8 else rng.randint(20, 40)
    customer = c.say(
        "drop",
        ("I bought {m} {when} for {was} and now it's on sale for {now}! Can I get the difference back?",
         "ugh, {m} went on sale right after I bought it ({when}). refund the difference?",
         "Do you do price adjustments? {m} dropped to {now} and I paid {was} {when}.",
         "Hi there, I ordered {m} {when} at full price ({was}). Today I noticed it's marked down "
         "to {now}. Is there any way to get the price difference refunded, or do I have to "
         "return it and buy it again?"),
        m=c.mention(p), when=c.ago(days), was=money(p.compare_at), now=money(p.price),
    )  # fmt: skip
    diff = money(p.compare_at - p.price)
    if days > 14:
        agent = (
            "Our price adjustment covers drops within 14 days of purchase, and your order was "
            f"about {round(days / 7)} weeks ago, so I'm not able to refund the difference. Sorry!"
        )
        return Draft("Price drop", [customer], [agent])
    agent = (
        "Yes: if our own price drops within 14 days of your purchase, we refund the difference. "
        f"The {p.title} {be(p)} now {money(p.price)}, down from {money(p.compare_at)}, so that's {diff} "
        "back to you. Reply with your order number and we'll process it."
    )
    follow = (f"Great, it's #{c.order_no}.",
              f"Thanks! I've refunded the {diff} difference on order #{c.order_no}; it'll reach your "
              f"original payment method within {f.refund} business days.")  # fmt: skip
    return _two_rounds(c, "Price drop after purchase", customer, agent, follow)


CANCEL_WHY = ("I ordered the wrong size", "I changed my mind", "my plans changed",
              "I ordered the wrong colour", "I found the same thing in my closet lol")  # fmt: skip


def w_cancellation(c: Ctx) -> Draft:
    f, rng = c.f, c.rng
    soon = rng.random() < 0.45
    has_num = rng.random() < 0.6
    slots = dict(order=c.order(), mins=rng.randint(4, 45), why=rng.choice(CANCEL_WHY),
                 when=rng.choice(["yesterday", "this morning", "two days ago", "last night"]))  # fmt: skip
    if soon:
        pool = ("soon", CANCEL_SOON) if has_num else ("soon_no_number", CANCEL_SOON_NONUM)
    else:
        pool = ("late", CANCEL_LATE)
    customer = c.say(*pool, **slots)
    done = (
        f"Done! I've cancelled order #{c.order_no} since it was within 1 hour of ordering, and the "
        f"full amount will be refunded to your original payment method within {f.refund} business "
        "days. You'll get a cancellation email shortly."
    )
    returns = (
        f"Once it arrives you can return it within {f.window} days for a full refund with our "
        f"{f.label}."
    )
    if soon and has_num:
        return _two_rounds(c, "Cancel order", customer, done, None, "task")
    if soon:
        agent = (
            "Orders can be cancelled within 1 hour of being placed, so let's move quickly: please "
            "reply with your order number right away and I'll cancel it."
        )
        follow = (f"It's #{c.order_no}!", done)
    else:
        agent = (
            "I'm sorry, orders can only be cancelled within 1 hour of being placed, before "
            f"they're packed, and yours is already past that point, so I can't cancel it. {returns}"
        )
        follow = ("ok, how do I return it when it comes?", _return_steps(c, "it", f.window))
    subject = rng.choice(["Cancel order", "Cancel my order please", "Cancellation", "CANCEL"])
    return _two_rounds(c, subject, customer, agent, follow, "task")


CANCEL_SOON = (
    "Please cancel my order {num}, I just placed it {mins} minutes ago. {why}.",
    "CANCEL ORDER {num}, ordered the wrong size by mistake",
    "I accidentally ordered twice, can you cancel {order}? Placed it like {mins} min ago.",
)
CANCEL_SOON_NONUM = (
    "hi i just ordered {mins} minutes ago and want to cancel, is that possible?",
    "Can I cancel an order I placed a few minutes ago? {why}.",
    "Placed an order about {mins} min ago by mistake - please stop it before it ships!",
    "Hello, {why}, so I'd like to cancel the order I put in just now (maybe {mins} minutes ago). "
    "I don't have the confirmation email handy yet.",
)
CANCEL_LATE = (
    "I placed an order {when} and I'd like to cancel it. {why}.",
    "Need to cancel {order} from {when}. {why}.",
    "can i still cancel? ordered {when}",
)


def w_address_change(c: Ctx) -> Draft:
    f, rng = c.f, c.rng
    soon = rng.random() < 0.5
    new_addr, _ = random_address(rng)
    slots = dict(order=c.order(), addr=new_addr, mins=rng.randint(3, 40),
                 when=rng.choice(["yesterday", "two days ago", "last week"]))  # fmt: skip
    done = f"All set: I've updated the shipping address on order #{c.order_no} to {new_addr}."
    if soon and rng.random() < 0.6:
        customer = c.say("soon", ADDRESS_SOON, **slots)
        return _two_rounds(c, "Address change", customer, done, None, "task")
    if soon:
        customer = c.say("soon_no_details", ADDRESS_SOON_NOINFO, **slots)
        agent = (
            "Addresses can be changed within 1 hour of ordering, before the order is packed. "
            "Please reply right away with your order number and the full new address."
        )
        follow = (f"Order #{c.order_no}, new address is {new_addr}", done)
    else:
        customer = c.say("late", ADDRESS_LATE, **slots)
        agent = (
            "I'm sorry, address changes are only possible within 1 hour of ordering, before the "
            "order is packed, so I can't change it now. Once it ships, you can contact the "
            "carrier with the tracking number from your shipping email and ask them to redirect it."
        )
        follow = ("ok thanks, where do I find the tracking number?",
                  "It's in the shipping confirmation email we send when your order leaves our "
                  f"warehouse (within {f.processing} business day of ordering).")  # fmt: skip
    subject = rng.choice(["Change shipping address", "Wrong address!", "Address update"])
    return _two_rounds(c, subject, customer, agent, follow, "task")


ADDRESS_SOON = (
    "I need to change the shipping address on {order} to {addr}. Just ordered {mins} minutes ago.",
    "wrong address!! I moved. Please send {order} to {addr} instead, ordered {mins} min ago",
    "Could you update {order}? I placed it {mins} minutes ago and it should go to {addr}.",
    "typo in my address on {order} (ordered {mins} mins ago). correct one: {addr}",
)
ADDRESS_SOON_NOINFO = (
    "Can I update my address? I ordered about {mins} minutes ago.",
    "Just realised I used my old address on the order I placed a few minutes ago.",
    "ordered {mins} min ago and put the wrong street in. can that still be fixed?",
    "Hi - is it too late to change where my order ships? I checked out maybe {mins} minutes ago.",
)
ADDRESS_LATE = (
    "I need to change the address on {order}, I ordered it {when}. New address: {addr}",
    "Hi, can you change the delivery address for my order from {when}? I'm moving this week.",
    "My order from {when} is going to my old place. Can you redirect it to {addr}?",
    "change of address for {order} please - ordered {when}, I won't be at that address anymore",
)

SAFETY = {
    "stove": ("{m} caught fire when I lit it and the flame burned my hand",
              "{m} flared up and caught fire on our picnic table"),
    "headlamp": ("the battery in {m} got so hot it melted the case and burned my forehead",),
    "base_layer": ("I had an allergic reaction to {m}, an itchy rash all over my arms",),
    "socks": ("I had an allergic reaction to {m}: hives and a rash on both feet",),
    "trekking_poles": ("one of {m} snapped on a steep descent and I fell and was injured; I "
                       "needed stitches at the emergency room",),
    "cookware": ("the handle of {m} came loose while I was pouring boiling water and I burned my hand",),
}  # fmt: skip


def w_complaint(c: Ctx) -> Draft:
    rng = c.rng
    case = rng.choices(["complaint", "safety", "legal"], weights=[60, 22, 18])[0]
    safe = [p for p in c.shelf.all if p.kind.key in SAFETY and p.status != "draft"]
    if case == "safety" and safe:
        p = rng.choice(safe)
        incident = c.fill(rng.choice(SAFETY[p.kind.key]), m=c.mention(p))
        customer = c.say(
            "safety", SAFETY_MSG, incident=incident, Incident=incident[0].upper() + incident[1:]
        )
        agent = sentences(
            "I'm so sorry to hear this. That's frightening, and thank you for telling us.",
            f"Please stop using the {p.title} and keep {them(p)} somewhere safe, and please get medical "
            "care if you haven't already.",
            handover("product safety"),
        )
        team, topic = "product safety", "safety_incident"
        note = ("Internal: escalated to product safety per policy. Incident form started; asked "
                "customer to keep the product. No compensation offers before review.")  # fmt: skip
    elif case == "legal":
        customer = c.say("legal", LEGAL_MSG, m=c.mention(c.pick(c.shelf.live)), order=c.order())
        team, topic = "customer relations", "legal_threat"
        agent = sentences(
            "I'm sorry this has been so frustrating, and I understand you want it resolved.",
            handover(team),
        )
        note = ("Internal: legal threat. Escalated to customer relations (Dana); don't reply "
                "further on this ticket.")  # fmt: skip
    else:
        customer = _complaint_message(c)
        team, topic = "customer relations", "complaint"
        agent = sentences(rng.choice(COMPLAINT_LEADS), handover(team))
        note = rng.choice(COMPLAINT_NOTES)
    follow = (rng.choice(["I expect a phone call, not an email.", "How long is this going to take?",
                          "Fine. Waiting."]),
              f"Understood, I've added that to your case. Our {team} team has it and will reply "
              "within one business day.")  # fmt: skip
    subject = rng.choice(
        [
            "Complaint",
            "URGENT",
            "Unacceptable",
            "Safety issue" if case == "safety" else "Formal complaint",
        ]
    )
    d = _two_rounds(c, subject, customer, agent, follow, "incident", True, note=note)
    d.topic = topic
    return d


def _complaint_message(c: Ctx) -> str:
    """An angry customer: one of the complaint pools (delays, rude staff, repeats, ...)."""
    rng = c.rng
    name = rng.choice(list(COMPLAINT_MSG))
    slots = dict(m=c.mention(c.pick(c.shelf.live)), order=c.order(), short=c.f.short,
                 weeks=rng.choice(["two", "three", "3", "4", "five"]))  # fmt: skip
    text = c.say(name, COMPLAINT_MSG[name], **slots)
    return text.upper() if name == "caps" else text


COMPLAINT_LEADS = (
    "I'm really sorry. This isn't the experience we want anyone to have with us, and I "
    "understand why you're upset.",
    "I hear you, and I'm sorry we've let you down.",
    "Thank you for telling us straight. You deserve better than this, and I'm sorry.",
    "I'm sorry. That's frustrating, and it shouldn't have happened.",
    "I understand you're upset, and I'm sorry we've let you down.",
)
COMPLAINT_NOTES = (
    "Internal: upset customer, complaint. Escalated to customer relations; no compensation "
    "offers before review.",
    "Internal: customer was abusive on a previous ticket too. Escalated to customer relations.",
    "Internal: complaint logged for the weekly CX review. Customer relations to follow up.",
)


SAFETY_MSG = (
    "{Incident}. This is dangerous and I want to know what you're going to do about it.",
    "I need to report a safety problem: {incident}. I still have the product.",
    "URGENT: {incident}!!!",
    "I've been a loyal customer for years, but this weekend {incident}. My kids were right there. "
    "I'm honestly shaken and I think other customers need to know about this.",
)
LEGAL_MSG = (
    "This is the third email I've sent about {order}. If I don't get my refund by Friday I'm "
    "contacting my lawyer.",
    "{m} fell apart after two weeks and you refuse to help. I'll be filing in small claims court.",
    "I've spoken to an attorney about your misleading description of {m}. Expect to hear from them.",
    "I am prepared to take legal action if {order} isn't resolved this week.",
)
# Anger and complaints: a must-hand-over kind in many wordings (each pool a family set).
COMPLAINT_MSG: dict[str, tuple[str, ...]] = {
    "delay": (
        "It's been {weeks} weeks and {order} still hasn't arrived. Nobody has told me anything. "
        "This is honestly the worst service I've ever had.",
        "Still no sign of {order}. I paid {weeks} weeks ago. I'm fed up with waiting and fed up "
        "with your excuses.",
        "Your 'fast shipping' is a joke. {weeks} weeks for {order} and counting. Extremely "
        "disappointed.",
    ),
    "staff": (
        "The agent I dealt with last week was incredibly rude and basically told me it was my "
        "fault. I want this taken seriously.",
        "I called your store and whoever answered was dismissive and hung up on me. That is not "
        "how you treat customers.",
        "I'm writing to complain about how I was treated by your support team. Condescending "
        "replies and no help at all.",
    ),
    "repeat": (
        "This is the third time I'm writing about {order}. Every time I get a different answer "
        "and nothing gets fixed.",
        "Same problem AGAIN with {m}. Second replacement, same fault. I'm sick of this.",
        "I've explained this four times now. Does anyone over there actually read these messages??",
    ),
    "worst": (
        "Worst customer service I've ever dealt with. I won't be ordering from {short} again.",
        "Absolutely appalling experience from start to finish. I used to recommend you to "
        "everyone I know.",
        "Terrible service. Terrible communication. Never again.",
    ),
    "review": (
        "If this isn't sorted out by tomorrow I'm leaving a 1-star review everywhere I can.",
        "I'll be posting about this on Google, Trustpilot and Reddit so other people know what "
        "to expect from {short}.",
        "Enjoy the bad review. {m} fell apart and your team couldn't care less.",
    ),
    "caps": (
        "WHERE IS MY REFUND??? I HAVE WAITED LONG ENOUGH. THIS IS UNACCEPTABLE",
        "I AM SO DONE WITH YOU PEOPLE. FIX {order} NOW!!!",
        "NOBODY ANSWERS. NOBODY CARES. WORST COMPANY EVER",
    ),
    "quality": (
        "I paid full price for {m} and it fell apart after one weekend. For that money this is "
        "garbage and I'm furious.",
        "Really disappointed in {m}. The quality has gone way downhill and nobody at {short} "
        "seems to care.",
    ),
    "refund": (
        "I sent {m} back a month ago and I still don't have my refund. I'm tired of chasing you "
        "for my own money.",
        "You've had my return for weeks. Where is my money? This is completely unacceptable.",
    ),
    "abuse": (
        "You people are absolutely useless. Three emails and nobody can tell me where my refund "
        "is. Pathetic.",
        "What a joke of a company. {m} is garbage and so is your customer service.",
        "Are you all idiots over there?? I've asked the same question four times about {order}.",
        "worst company ever. don't bother replying with another copy-paste answer.",
    ),
    "casual": (
        "wow. {weeks} weeks and no answer. realy bad service tbh, very dissapointed",
        "honestly so done with this company. ordered {weeks} weeks ago, nothing came, nobody "
        "replies",
        "ur customer service is a joke. been waiting forever on {order}",
    ),
    "esl": (
        "I am very angry. The order {order} is not arrive since one month and nobody is answer "
        "me. Is very bad service.",
        "Sorry but this is not acceptable. I write you many times and no response. I am very "
        "disappointed of your shop.",
    ),
}


def w_fraud(c: Ctx) -> Draft:
    rng = c.rng
    p = c.pick(c.shelf.live)
    amount = money(p.price + c.f.home.cost) if rng.random() < 0.6 else money(p.price)
    customer = c.say(
        "report", FRAUD_MSG, amount=amount, order=c.order(), thing=c.mention(p), short=c.f.short
    )
    chargeback = "chargeback" in customer.lower()
    lead = (
        "Since a chargeback has been opened with your bank, this needs our payments team."
        if chargeback
        else "Thanks for letting us know, and I'm sorry you're dealing with this."
    )
    agent = sentences(
        lead,
        handover("payments and security"),
        "For your security, please don't send card numbers or bank details by email.",
    )
    follow = ("ok thanks. should I cancel my card?",
              "That's a good idea if you think your card details were stolen; your bank can issue "
              "a new card. Our payments and security team has your case and will reply within one "
              "business day.")  # fmt: skip
    note = (f"Internal: escalated to payments & security. Do NOT refund or cancel anything until "
            f"they review. Processor dispute ref DP-{rng.randint(10000, 99999)}.")  # fmt: skip
    subject = rng.choice(
        [
            "Unauthorized charge",
            "Fraud",
            "Chargeback",
            "I didn't place this order",
            "Charge on my card",
        ]
    )
    return _two_rounds(c, subject, customer, agent, follow, "incident", True, note=note)


FRAUD_MSG = (
    "There's a charge for {amount} from {short} on my card that I didn't make. Please explain.",
    "My credit card was stolen and someone used it on your site, {order}. I need this cancelled "
    "and refunded.",
    "I've filed a chargeback with my bank for {order} because I never got my refund.",
    "Unauthorized charge of {amount}!!! I have never ordered from you. What is going on?",
    "I'm going to dispute the charge with my bank unless someone gets back to me today about {order}.",
    "Got an order confirmation for {thing} that I never placed. Did someone use my account? I "
    "think it's fraud.",
    "Hi, my bank flagged a {amount} payment to {short} as possible fraud. Was this a real order?",
)


def w_human_request(c: Ctx) -> Draft:
    """The customer asks for a person, alone or around another topic: always handed over."""
    f, rng = c.f, c.rng
    mine, yours = _human_topic(c)
    name = rng.choice(list(HUMAN_MSG))
    i = rng.randrange(len(HUMAN_MSG[name]))
    c.note_phrasing(f"{name}.{i}")
    template = HUMAN_MSG[name][i]
    customer = c.fill(template, topic=mine, order=c.order(), short=f.short)
    about = (f" They'll have your message about {yours}, so there's no need to repeat it."
             if "{topic}" in template else "")  # fmt: skip
    call = f"If you'd rather call, we're at {f.phone}, {f.hours}." if rng.random() < 0.5 else ""
    agent = sentences(rng.choice(HUMAN_LEADS), handover("customer care") + about, call)
    follow = rng.choice(
        [("Thanks. Will they email or call?",
          "They'll reply by email first, within one business day, and can set up a call from "
          "there if you prefer."),
         ("ok how long will that take",
          "Within one business day. Our customer care team has your message and will reply by "
          "email.")]
    )  # fmt: skip
    note = rng.choice(
        ["Internal: customer asked for a person. Assigned to the customer care lead for a "
         "personal reply.",
         "Internal: callback requested; customer care lead to phone or email within 1 business day."]
    )  # fmt: skip
    subject = rng.choice(["Speak to a person", "Call back request", "Human please", "Question",
                          "Need to talk to someone", "Phone call?"])  # fmt: skip
    d = _two_rounds(c, subject, customer, agent, follow, "question", True, note=note)
    d.topic = "human_request"
    return d


def _human_topic(c: Ctx) -> tuple[str, str]:
    """What the customer wants a person for, in their words and in the agent's."""
    rng = c.rng
    p = c.pick(c.shelf.live)
    n = c.order_no
    options = [
        ("my return", "your return"), ("a refund", "your refund"), ("an exchange", "the exchange"),
        (f"order {n}", f"order #{n}"), (f"my order #{n}", f"order #{n}"),
        (c.mention(p), f"the {p.title}"), ("my delivery", "your delivery"),
        ("sizing", "sizing"), (f"my {c.f.loyalty}", f"your {c.f.loyalty}"),
        ("a damaged item", "the damaged item"), ("a bulk order for our club", "the club order"),
    ]  # fmt: skip
    return rng.choice(options)


HUMAN_LEADS = (
    "Of course, happy to get you to a person.",
    "Absolutely, we'll get one of our team on this for you.",
    "No problem at all, you'll hear from one of us directly.",
    "Sure thing, a member of our team will take it from here.",
    "Thanks for asking, we're glad to talk it through with you personally.",
)
# Requests for a person, alone or wrapped around another topic: each pool a family set.
HUMAN_MSG: dict[str, tuple[str, ...]] = {
    "person": (
        "Can I talk to a real person please?",
        "I'd like to speak with someone from your team, not an automated system.",
        "Is there an actual human I can talk to?",
        "I want to speak to a person.",
        "Could you put me through to a member of staff? I'd really prefer talking to a human.",
    ),
    "topic": (
        "Can I talk to someone about {topic}?",
        "I have a question about {topic}, but I'd rather speak to a person than go back and "
        "forth over email.",
        "Could a real person get in touch with me about {topic}? Thanks.",
        "Quick one about {topic} - actually, can I just talk to a human? It's easier to explain.",
        "I need help with {topic} and I'd like a person to handle it please, not a template "
        "answer.",
    ),
    "phone": (
        "Is there a phone number? I'd rather speak to a person.",
        "Can someone call me about {topic}? Much easier than typing it all out.",
        "What number do I call to talk to somebody at {short}?",
        "Please have someone ring me back today regarding {order}.",
        "Do you do phone support? I'd like to talk this through with an actual person.",
    ),
    "bot": (
        "bot, agent",
        "agent",
        "human please",
        "I don't want an automated answer. Please get a human to read this.",
        "Are you a bot? I need to talk to a live agent.",
        "representative",
        "talk to human",
    ),
    "manager": (
        "Could I please speak to a manager or supervisor about {topic}?",
        "I'd like this passed to a supervisor, please. It's about {order}.",
        "Who's in charge of customer service there? I'd like to speak with them directly.",
    ),
    "casual": (
        "pls get me a real human",
        "can i talk to sum1 real? not a bot",
        "need a human, not a robot lol",
        "hey can a real persn contact me? its about {topic}",
        "real person plz",
    ),
    "esl": (
        "Hello, please I want speak with one person of your team about {topic}.",
        "Is possible to talk with a human? My english is not so good for writing, I prefer phone.",
        "Kindly connect me with a customer care executive regarding {order}.",
        "I wish to be contacted by an employee by telephone, please. It is for {topic}.",
        "Please, a person of the shop can call me? I have problem with {topic}.",
    ),
    "long": (
        "I've read the FAQ and the help pages and I'm still going in circles on {topic}. I'd "
        "really just like to talk it through with an actual person on your team - any time this "
        "week works for me. Is that possible?",
        "So I've had a bit of back and forth already about {topic} and honestly I'd feel better "
        "speaking to someone directly. Nothing's wrong exactly, I just find it easier to explain "
        "things out loud. Could somebody give me a call or set up a time to chat?",
    ),
    "auto": (
        "I already got an automatic reply. I'd like someone to actually read my message about "
        "{topic}.",
        "Your auto-responder sent me a help article. That's not what I need - please have a "
        "person look at {order}.",
        "No more canned responses please, I want a real person to look at this.",
    ),
    "callback": (
        "Can I book a callback with your team?",
        "Could someone from customer service call me back? My number is on my account.",
        "I'd like to request a call back about {topic} - mornings are best.",
    ),
}


def w_loyalty(c: Ctx) -> Draft:
    f, rng = c.f, c.rng
    overview = f"With {f.loyalty} you earn {f.earn}, and {f.redeem}."
    cases = [
        ("How do {p} work?", overview),
        ("Is there a rewards program?", overview),
        ("Do I earn points on sale items?", f"Yes: with {f.loyalty} you earn {f.earn}."),
        ("how many points do i need for a discount", f"With {f.loyalty}, {f.redeem}."),
        ("Do my {p} expire?", f"Here's how it works: {f.redeem}."),
        ("I forgot to use my points on my last order. Can you apply them now?",
         "Points are redeemed at checkout and can't be applied to an order that's already been "
         f"placed, but they're still in your account for next time. As a reminder: {f.redeem}."),
    ]  # fmt: skip
    i = rng.randrange(len(cases))  # draws as rng.choice did
    question, agent = cases[i]
    c.note_phrasing(f"ask.{i}")
    customer = c.fill(question, p=f.loyalty)
    follow = ("And does it cost anything to join?",
              f"No, joining is free with a store account. You earn {f.earn.split(';')[0]}.")  # fmt: skip
    return _two_rounds(c, rng.choice(["Rewards question", f"{f.loyalty}", "Points"]), customer,
                       agent, follow)  # fmt: skip


def w_size_guide(c: Ctx) -> Draft:
    rng = c.rng
    p = c.pick(c.shelf.sized)
    scheme = p.kind.options
    sizer = _pack_size if scheme == "pack" else _shoe_size if scheme == "boots" else _apparel_size
    customer, rec, advice = sizer(c, p)
    in_stock = [v.options["Color"] for v in p.variants
                if v.options.get(p.option_names[0]) == rec and v.inventory_qty]  # fmt: skip
    agent = advice + (
        f" Right now the {rec} is in stock in {join_and(in_stock)}." if in_stock
        else f" Heads up: the {rec} is out of stock in every colour right now."
    )  # fmt: skip
    follow = ("If it doesn't fit can I swap it?",
              f"Yes, exchanges are free within {c.f.exchange_window} days of delivery for unused "
              "items, as long as it wasn't bought on sale.")  # fmt: skip
    subject = rng.choice(["Sizing question", "What size?", f"Size help: {p.title}", "Fit question"])
    return _two_rounds(c, subject, customer, agent, follow)


def _apparel_size(c: Ctx, p: DemoProduct) -> tuple[str, str, str]:
    rng = c.rng
    sizes = p.option_values("Size")
    i = rng.randrange(len(sizes) - 1)
    usual = sizes[i]
    small = "runs small" in p.fit
    rec = sizes[i + 1] if small else usual
    customer = c.say(
        "apparel",
        ("I'm {h} and {w} lbs, usually a {s}. What size {m} should I get?",
         "Does {m} run true to size? I'm normally a {s}.",
         "usually wear {s}. what size for {m}?"),
        h=rng.choice(["5'4\"", "5'7\"", "5'10\"", "6'1\""]), w=rng.randint(120, 210), s=usual,
        m=c.mention(p),
    )  # fmt: skip
    verdict = (f"Since it runs small, I'd size up to {rec}." if small
               else f"I'd stick with your usual {rec}.")  # fmt: skip
    return customer, rec, f"Fit notes for the {p.title}: {lc_first(p.fit)}. {verdict}"


def _shoe_size(c: Ctx, p: DemoProduct) -> tuple[str, str, str]:
    rng = c.rng
    n = rng.randint(7, 12)
    half = rng.random() < 0.5
    small = "small" in p.fit
    rec = str(n + 1) if (half or small) else str(n)
    usual = f"{n}.5" if half else str(n)
    customer = c.say(
        "shoe",
        ("I'm a {u} in most shoes. What size {m} should I get?",
         "I usually wear a {u}, which size in {m}?",
         "{m}: true to size? I'm normally a {u}",
         "Hello! I'm trying to figure out sizing for {m}. My other hiking shoes are all a {u}, "
         "would you suggest the same size or should I go up?"),
        u=usual, m=c.mention(p),
    )  # fmt: skip
    fit = f"Fit notes for the {p.title}: {lc_first(p.fit)}."
    if half:
        verdict = ("Our footwear comes in whole US sizes, and if you're a half size we recommend "
                   f"going up, so I'd go with {rec}.")  # fmt: skip
    elif small:
        verdict = f"Since they run small, go up one from your usual: {rec}."
    else:
        verdict = f"Your usual {rec} should be right."
    return customer, rec, f"{fit} {verdict}"


def _pack_size(c: Ctx, p: DemoProduct) -> tuple[str, str, str]:
    torso = c.rng.choice([15.5, 16.5, 18, 20])
    rec = "S" if torso < 17 else "M" if torso < 19 else "L"
    customer = c.say(
        "pack",
        ("My torso is {t} inches. Which size {m}?", "what size {m} for a {t} inch torso?",
         "Measured my torso at {t} in. Which size of {m} fits that?",
         "Hi, I'm looking at {m} and my torso length is {t} inches. Which size would you go "
         "with? Never bought a pack sized by torso before."),
        t=f"{torso:g}", m=c.mention(p),
    )  # fmt: skip
    advice = (
        f"The {p.title} fits by torso length: S fits 15–17 in, M 17–19 in and L 19–21 in, so "
        f"with a {torso:g} in torso I'd go with {rec}."
    )
    return customer, rec, advice


WRITERS: dict[str, Callable[[Ctx], Draft]] = {
    "returns": w_returns,
    "sale_return": w_sale_return,
    "exchange": w_exchange,
    "damaged_missing": w_damaged,
    "shipping": w_shipping,
    "order_status": w_order_status,
    "product_question": w_product_question,
    "recommendation": w_recommendation,
    "discount_price_match": w_discount,
    "cancellation": w_cancellation,
    "address_change": w_address_change,
    "complaint_escalate": w_complaint,
    "fraud_chargeback": w_fraud,
    "loyalty": w_loyalty,
    "size_guide": w_size_guide,
    "human_request": w_human_request,
}


# --- add-on questions, notes and metadata -----------------------------------------------------

ADDON_INTENTS = {"returns", "product_question", "recommendation", "size_guide", "exchange",
                 "loyalty", "damaged_missing"}  # fmt: skip


def addon(c: Ctx) -> tuple[str, str]:
    """A second, unrelated question tacked onto a message, with its one-line answer."""
    f, rng = c.f, c.rng
    canada = f.zones["Canada"]
    options = [
        ("Also, do you ship to Canada?",
         f"And yes, we ship to Canada: standard shipping is {money(canada.cost)} and takes {canada.days}."),
        ("Also what's the minimum for free shipping?",
         f"Orders over {dollars(f.threshold)} ship free within the contiguous US."),
        ("And how long do refunds usually take?",
         f"Refunds reach your original payment method within {f.refund} business days of a "
         "return arriving at our warehouse."),
        ("Do you guys have a rewards program?", f"We do: with {f.loyalty} you earn {f.earn}."),
        ("What are your phone hours btw?", f"You can also call us at {f.phone}, {f.hours}."),
    ]  # fmt: skip
    q, a = rng.choice(options)
    return c.fill(q), a


GENERIC_NOTES = (
    "Internal: checked Shopify, order #{order} shipped {md}, customer is VIP",
    "Internal: customer has {n} previous orders, no prior issues.",
    "Internal: left a voicemail at {phone}, no answer.",
    "Internal: @{agent2} can you double-check stock on the {title}? Inventory sync looked off "
    "this morning.",
    "Internal: used the {intent} macro and edited it.",
    "Internal: refund processed in Shopify, ref RF-{n4}.",
    "Internal: warehouse confirmed the box was crushed in transit; carrier claim filed.",
    "Note to self: follow up Friday if no reply.",
)


def generic_note(c: Ctx, intent: str, agents: list[Person]) -> str:
    rng = c.rng
    text = rng.choice(GENERIC_NOTES)
    if "{phone}" in text and not c.cust.phone:
        text = GENERIC_NOTES[1]
    return text.format(
        order=c.order_no, md=fmt_mdy(c.when - timedelta(days=rng.randint(2, 9))),
        n=rng.randint(2, 14), phone=c.cust.phone, agent2=rng.choice(agents).first,
        title=rng.choice(c.shelf.live).title, intent=intent.replace("_", " "),
        n4=rng.randint(1000, 9999),
    )  # fmt: skip


NOISE_TAGS = ("mobile", "repeat_customer", "first_order", "macro_used", "newsletter")
TYPES = {"question", "incident", "problem", "task"}


def satisfaction(rng: random.Random, escalated: bool, agent: Person) -> dict[str, str]:
    if escalated:
        score = rng.choices(["bad", "offered", "unoffered", "good"], weights=[25, 35, 30, 10])[0]
    else:
        score = rng.choices(["good", "bad", "offered", "unoffered"], weights=[50, 8, 20, 22])[0]
    comments = {
        "good": ["Quick and helpful, thank you!", "Super friendly, fixed it fast.",
                 "Great service as always", "", f"Thanks {agent.first}!"],
        "bad": ["Took too long to get an answer.", "Didn't solve my problem.",
                "Not happy with the policy.", ""],
    }  # fmt: skip
    return {"score": score, "comment": rng.choice(comments.get(score, [""]))}


# --- assembling tickets -----------------------------------------------------------------------


@dataclass
class TicketSet:
    tickets: list[BuiltTicket]
    customers: list[Person]
    agents: list[Person]
    admin: Person


def random_time(rng: random.Random) -> datetime:
    """A creation time between START and END, busier in camping season and the holidays."""
    months = [(2024 + (5 + i) // 12, (5 + i) % 12 + 1) for i in range(29)]
    weights = [1.6 if m in (11, 12) else 1.25 if m in (1, 6, 7, 8) else 1.0 for _, m in months]
    year, month = rng.choices(months, weights=weights)[0]
    first = datetime(year, month, 1, tzinfo=UTC)
    nxt = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    span = int((min(nxt, END) - first).total_seconds())
    return first + timedelta(seconds=rng.randrange(span - 3 * 3600))


def _allocate(total: int) -> list[str]:
    weights = list(INTENT_WEIGHTS.values())
    wsum = sum(weights)
    exact = [total * w / wsum for w in weights]
    counts = [max(1, int(e)) for e in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - int(exact[i])), i))
    k = 0
    while sum(counts) < total:
        counts[order[k % len(order)]] += 1
        k += 1
    while sum(counts) > total:  # only when total is tiny: trim the biggest shares
        counts[counts.index(max(counts))] -= 1
    return [intent for intent, n in zip(INTENTS, counts, strict=True) for _ in range(n)]


def _pick_outdated(
    rng: random.Random, plan: list[tuple[str, datetime]], intent: str, before: datetime
) -> set[int]:
    idx = [i for i, (name, when) in enumerate(plan) if name == intent]
    eligible = [i for i in idx if plan[i][1] < before - timedelta(days=2)]
    k = min(len(eligible), max(1, round(0.04 * len(idx))))
    return set(rng.sample(eligible, k))


def generate_tickets(
    rng: random.Random,
    facts: Facts,
    products: list[DemoProduct],
    n_tickets: int,
    tick: Callable[[int], None] | None = None,
) -> TicketSet:
    shelf = Shelf(products)
    agents, admin = make_agents()
    customers = make_customers(rng, max(20, int(n_tickets * 0.75)))
    n_dup = round(n_tickets * 0.05)
    intents = _allocate(n_tickets - n_dup)
    rng.shuffle(intents)
    plan = [(intent, random_time(rng)) for intent in intents]
    old_returns = _pick_outdated(rng, plan, "returns", datetime(2025, 3, 1, tzinfo=UTC))
    old_shipping = _pick_outdated(rng, plan, "shipping", datetime(2025, 6, 1, tzinfo=UTC))
    built = []
    claims: dict[int, int] = {}  # order number -> the customer whose order it is
    for i, (intent, when) in enumerate(plan):
        outdated = (
            "returns.window_days" if i in old_returns
            else "shipping.free_threshold" if i in old_shipping else ""
        )  # fmt: skip
        built.append(
            _one_ticket(rng, facts, shelf, customers, agents, admin, intent, when, outdated, claims)
        )
        if tick:
            tick(1)
    dups = _duplicates(rng, built, n_dup)
    built += dups
    if tick:
        tick(len(dups))
    built.sort(key=lambda b: (b.items[0].at, b.requester.id, b.duplicate))
    for k, b in enumerate(built):
        b.id = 10001 + k
    used = {b.requester.id for b in built}
    _date_customers(rng, built)
    return TicketSet(built, [p for p in customers if p.id in used], agents, admin)


def _one_ticket(
    rng: random.Random,
    facts: Facts,
    shelf: Shelf,
    customers: list[Person],
    agents: list[Person],
    admin: Person,
    intent: str,
    when: datetime,
    outdated: str,
    claims: dict[int, int] | None = None,
) -> BuiltTicket:
    cust = rng.choice(customers)
    channel = rng.choices(["email", "web", "chat"], weights=[55, 30, 15])[0]
    multi = rng.random() < 0.25
    c = Ctx(rng, facts, shelf, cust, when, channel, multi, bool(outdated), intent)
    # Two customers on one day may draw one number; the orders export (orders_gen) has
    # one owner per number, so the later customer's order takes the next free one.
    while claims is not None and claims.setdefault(c.order_no, cust.id) != cust.id:
        c.order_no += 1
    draft = WRITERS[intent](c)
    agent = rng.choice(agents)
    mode = "solved"
    if when > END - timedelta(days=21) and rng.random() < 0.5:
        mode = "pending" if len(draft.agent) > 1 and not draft.escalated else "open"
    extra_q = extra_a = ""
    if intent in ADDON_INTENTS and not outdated and channel != "chat" and rng.random() < 0.15:
        extra_q, extra_a = addon(c)
    items = _timeline(c, draft, intent, agent, agents, admin, extra_q, extra_a)
    if mode == "open":
        items = items[:1]
    elif mode == "pending":  # the agent asked something and the customer has not answered
        first_reply = next(i for i, it in enumerate(items) if it.role == "agent")
        items = items[: first_reply + 1]
    return _finish(c, draft, intent, items, agent, admin, mode, outdated)


def _timeline(
    c: Ctx,
    d: Draft,
    intent: str,
    agent: Person,
    agents: list[Person],
    admin: Person,
    extra_q: str,
    extra_a: str,
) -> list[Item]:
    rng = c.rng
    chat = c.channel == "chat"
    t = c.when
    items = [Item(t, c.cust.id, "customer", wrap_first(c, d.customer[0], intent, extra_q))]
    last_agent_text = ""
    for r, body in enumerate(d.agent):
        if r > 0:
            t += timedelta(minutes=rng.randint(1, 6) if chat else rng.randint(40, 3 * 24 * 60))
            text = wrap_followup(c, d.customer[r], agent)
            if c.channel == "email" and rng.random() < 0.2:
                text = f"{text}\n\n{quote_block(c, last_agent_text, items[-1].at, d.subject)}"
                c.quoted = True
            items.append(Item(t, c.cust.id, "customer", text, d.attachments))
        t += timedelta(minutes=rng.randint(1, 8) if chat else rng.randint(15, 26 * 60))
        full = f"{body}\n\n{extra_a}" if (r == 0 and extra_a) else body
        last_agent_text = agent_message(c, agent, full)
        items.append(Item(t, agent.id, "agent", last_agent_text))
    _add_note(c, d, intent, items, agent, agents, admin)
    return items


def _add_note(
    c: Ctx,
    d: Draft,
    intent: str,
    items: list[Item],
    agent: Person,
    agents: list[Person],
    admin: Person,
) -> None:
    """Internal notes on ~20% of tickets: before the first reply, between rounds, or last."""
    rng = c.rng
    p = 0.7 if d.escalated else 0.12
    if rng.random() >= p:
        return
    text = d.note if (d.note and rng.random() < 0.8) else generic_note(c, intent, agents)
    author = rng.choices([agent, rng.choice(agents), admin], weights=[70, 20, 10])[0]
    pos = rng.randrange(1, len(items) + 1)
    before = items[pos - 1].at
    after = items[pos].at if pos < len(items) else before + timedelta(hours=2)
    at = before + (after - before) / 2
    if at <= before:
        at = before + timedelta(seconds=30)
    items.insert(pos, Item(at, author.id, "note", text))


def _finish(
    c: Ctx,
    d: Draft,
    intent: str,
    items: list[Item],
    agent: Person,
    admin: Person,
    mode: str,
    outdated: str,
) -> BuiltTicket:
    rng = c.rng
    escalated = d.escalated and mode != "open"
    tags = {intent}
    if d.topic:
        tags.add(d.topic)
    if c.phrasing:
        tags.add(PHRASING_TAG + c.phrasing)
    if escalated:
        tags.add("escalated")
    if c.channel == "web" and rng.random() < 0.6:
        tags.add("web_widget")
    if c.channel == "chat":
        tags.add("zopim_chat")
    if any("VIP" in it.text for it in items if it.role == "note") or rng.random() < 0.04:
        tags.add("vip")
    if rng.random() < 0.25:
        tags.add(rng.choice(NOISE_TAGS))
    if c.when.month in (11, 12) and rng.random() < 0.4:
        tags.add("holiday_rush")
    priority = _priority(rng, intent, escalated)
    ticket_type = d.type if rng.random() < 0.9 else None
    subject = f"Chat with {c.cust.name}" if c.channel == "chat" else d.subject
    return BuiltTicket(
        intent=intent,
        subject=subject,
        requester=c.cust,
        assignee=agent,
        channel=c.channel,
        items=items,
        tags=sorted(tags),
        mode=mode,
        escalated=escalated,
        outdated=outdated,
        priority=priority,
        type=ticket_type,
        satisfaction=satisfaction(rng, escalated, agent)
        if mode == "solved"
        else {"score": "unoffered", "comment": ""},
        resolver=admin.id if rng.random() < 0.5 else agent.id,
        resolve_after=timedelta(hours=rng.randint(6, 60)),
        multi=sum(1 for it in items if it.role == "customer") > 1,
        quoted=c.quoted,
    )


def _priority(rng: random.Random, intent: str, escalated: bool) -> str | None:
    if escalated and intent != "order_status":
        return rng.choice(["high", "urgent"])
    if intent in {"damaged_missing", "fraud_chargeback"}:
        return "high"
    return rng.choices(["normal", "low", "high", None], weights=[75, 10, 5, 10])[0]


# --- duplicates -------------------------------------------------------------------------------

NEAR_EDITS: tuple[tuple[str, str], ...] = (
    ("Hi,", "Hello,"), ("Hello,", "Hi,"), ("Thanks", "Thank you"), ("?", "??"), ("!", "."),
    (" I ", " i "), ("please", "pls"), ("order", "Order"), ("Hey,", "Hi,"), ("the ", "the  "),
)  # fmt: skip


def _near_variant(rng: random.Random, text: str) -> str:
    edits = [e for e in NEAR_EDITS if e[0] in text]
    rng.shuffle(edits)
    for old, new in edits[: rng.randint(1, 2)]:
        text = text.replace(old, new, 1)
    return text


def _duplicates(rng: random.Random, built: list[BuiltTicket], n_dup: int) -> list[BuiltTicket]:
    """Re-sent tickets: exact copies (new ids) and near copies (a word or mark changed)."""
    sources = [b for b in built if b.mode == "solved" and not b.outdated]
    out = []
    for k in range(min(n_dup, len(sources))):
        src = rng.choice(sources)
        shift = timedelta(minutes=rng.randint(3, 36 * 60))
        items = [replace(it, at=it.at + shift) for it in src.items]
        kind = "exact" if k % 2 == 0 else "near"
        if kind == "near":
            changed = _near_variant(rng, items[0].text)
            if changed == items[0].text:
                changed = items[0].text.rstrip() + rng.choice([" Thanks!", " thx", "!"])
            items[0] = replace(items[0], text=changed)
        out.append(replace(src, items=items, duplicate=kind, tags=list(src.tags)))
    return out


def _date_customers(rng: random.Random, built: list[BuiltTicket]) -> None:
    first_seen: dict[int, datetime] = {}
    people: dict[int, Person] = {}
    for b in built:
        pid = b.requester.id
        people[pid] = b.requester
        first_seen[pid] = min(first_seen.get(pid, b.items[0].at), b.items[0].at)
    for pid in sorted(first_seen):
        back = timedelta(days=rng.randint(0, 600), seconds=rng.randint(60, 86399))
        people[pid].created_at = first_seen[pid] - back
