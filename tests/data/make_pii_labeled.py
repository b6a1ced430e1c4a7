"""Write tests/data/pii_labeled.jsonl: a labeled set of fictional support-ticket texts.

Deterministic (fixed seed): `python tests/data/make_pii_labeled.py` rewrites the file
byte for byte. Every person, number and address here is made up; phone numbers use
reserved fiction ranges (555-01xx, Ofcom drama numbers) where a country has one.

Each line: {"text", "names" (helpdesk user names of the conversation), "protected"
(catalog words, as ingest passes them), "spans" [{"start","end","type"}], "keep"
[substrings that must survive scrubbing]}.

Templates mark personal data as ⟦TYPE|value⟧ and look-alikes as ⟪value⟫.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

OUT = Path(__file__).with_name("pii_labeled.jsonl")
SEED = 20250301
N_RECORDS = 240

FIRST = (
    "Maya Priya Tomasz Lena Ezra Chloe Noah Sofia Mateo Aisha Hannah Lukas Camille Oliver "
    "Ingrid Kenji Zoe Amara Declan Freya Rafael Nadia Elif Jonas Marta Siobhan Thabo Yuki "
    "Leah Dmitri Anika Callum Ines Bruno Keira Arjun Malia Soren Talia Wren"
).split()
LAST = (
    "Chen Patel Nowak Park Vance Abernathy Kowalski Okafor Lindqvist Moreau Haddad Tanaka "
    "Fischer Brennan Castillo Duarte Halvorsen Ibarra Jovanovic Kaur Lefebvre Mbeki Nakamura "
    "O'Brien Petrov Quintero Rasmussen Szabo Takahashi Umarov Varga Whitfield Yilmaz Zielinski"
).split()
AGENTS = ["Jordan Ames", "Tessa Marlow", "Noor Qadir", "Sam Whitaker", "Rosalind Achebe"]

CITIES_US = [
    ("Portland", "OR", "97201"), ("Denver", "CO", "80205"), ("Boise", "ID", "83702"),
    ("Bend", "OR", "97701"), ("Missoula", "MT", "59801"), ("Burlington", "VT", "05401"),
    ("Asheville", "NC", "28801"), ("Flagstaff", "AZ", "86001"), ("Salt Lake City", "UT", "84101"),
]  # fmt: skip
STREETS = "Birch Maple Hemlock Ridge Cedar Alder Juniper Willow Aspen Larch Spruce Elm".split()
SUFFIXES = ["Lane", "Street", "Avenue", "Road", "Drive", "Court", "Way", "Blvd", "St", "Ave", "Rd"]
UK = [("Leeds", "LS6 2AB"), ("Bristol", "BS6 5JU"), ("London", "SW1A 2AA"),
      ("Manchester", "M4 1HQ"), ("Edinburgh", "EH1 1YZ"), ("Cardiff", "CF10 1EP")]  # fmt: skip
EU = [
    "Hauptstraße 12, 10115 Berlin", "Lindenstraße 8, 80331 München", "Bergweg 3a, 50667 Köln",
    "Kastanienallee 7, 10435 Berlin", "Keizersgracht 221, 1016 DV Amsterdam",
    "12 rue de la Paix, 75002 Paris", "8 avenue Victor Hugo, 69002 Lyon",
    "27 boulevard Saint-Michel, 75005 Paris", "Calle de Alcalá 45, 28014 Madrid",
    "Via Roma 14, 00184 Roma", "Rua Augusta 90, 11000 Lisboa", "Prinsengracht 263, 1016 GV Amsterdam",
]  # fmt: skip

PRODUCTS = [
    "Ridgeline 2P Tent", "Alpine Ascent 65L Pack", "Trailhead Merino Crew", "Summit Glen Fleece",
    "Basecamp Down Sleeping Bag", "Cascade Rain Shell", "Switchback Trail Runner",
    "Granite Peak Hiking Boot", "Lakeshore Camp Chair", "Ember Titanium Stove",
]  # fmt: skip
# Product names with a person-like word, paired with a customer who has that first name:
# the catalog vocabulary (protected) keeps the product, context still catches the person.
NAMED_PRODUCTS = [
    ("Jackson Down Parka", "Jackson", "Reid"),
    ("Olive Trail Jacket", "Olive", "Martin"),
    ("Hunter Rain Boot", "Hunter", "Sato"),
    ("Sierra Quilt 20", "Sierra", "Blake"),
    ("Austin Canvas Tote", "Austin", "Ferreira"),
]


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def card(r: random.Random, valid: bool = True) -> str:
    kind = r.choice(["visa", "visa", "mc", "amex"])
    if kind == "amex":
        body = r.choice(["34", "37"]) + "".join(r.choice("0123456789") for _ in range(12))
        num = body + luhn_digit(body)
        if not valid:
            num = num[:-1] + str((int(num[-1]) + 1) % 10)
        return f"{num[:4]} {num[4:10]} {num[10:]}"
    prefix = "4" if kind == "visa" else r.choice(["51", "52", "53", "54", "55"])
    body = prefix + "".join(r.choice("0123456789") for _ in range(15 - len(prefix)))
    num = body + luhn_digit(body)
    if not valid:
        num = num[:-1] + str((int(num[-1]) + r.randint(1, 9)) % 10)
    sep = r.choice([" ", " ", "-", ""])
    return sep.join(num[i : i + 4] for i in range(0, 16, 4))


def iban(r: random.Random) -> str:
    country = r.choice(["DE", "GB", "FR", "NL", "ES", "BE"])
    digits = lambda n: "".join(r.choice("0123456789") for _ in range(n))  # noqa: E731
    letters = lambda n: "".join(r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(n))  # noqa: E731
    bban = {
        "DE": lambda: digits(18),
        "GB": lambda: letters(4) + digits(14),
        "FR": lambda: digits(23),
        "NL": lambda: letters(4) + digits(10),
        "ES": lambda: digits(20),
        "BE": lambda: digits(12),
    }[country]()
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    raw = f"{country}{check:02d}{bban}"
    if r.random() < 0.6:
        return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))
    return raw


def phone(r: random.Random) -> str:
    n4 = lambda: f"{r.randint(0, 9999):04d}"  # noqa: E731
    area = r.choice(["503", "415", "208", "303", "971", "206"])
    tail = f"01{r.randint(0, 99):02d}"
    forms = [
        f"+1 ({area}) 555-{tail}", f"({area}) 555-{tail}", f"{area}-555-{tail}",
        f"{area}.555.{tail}", f"+1 {area} 555 {tail}", f"1-800-555-{tail}",
        f"+44 20 7946 0{r.randint(100, 999)}", f"020 7946 0{r.randint(100, 999)}",
        f"07700 900{r.randint(100, 999)}", f"+44 7700 900{r.randint(100, 999)}",
        f"+44 (0)20 7946 0{r.randint(100, 999)}",
        f"+49 30 {r.randint(1000000, 99999999)}", f"+49 (0)30 {n4()} {n4()}",
        f"030 {r.randint(10000000, 99999999)}", f"+49 151 {r.randint(10000000, 99999999)}",
        "+33 1 " + " ".join(f"{r.randint(10, 99)}" for _ in range(4)),
        "01 " + " ".join(f"{r.randint(10, 99)}" for _ in range(4)),
        "06 " + " ".join(f"{r.randint(10, 99)}" for _ in range(4)),
        "+33 6 " + " ".join(f"{r.randint(10, 99)}" for _ in range(4)),
        f"+61 2 {n4()} {n4()}", f"+61 412 {r.randint(100, 999)} {r.randint(100, 999)}",
        f"0412 {r.randint(100, 999)} {r.randint(100, 999)}", f"(02) {n4()} {n4()}",
        f"02 {n4()} {n4()}",
    ]  # fmt: skip
    return r.choice(forms)


def address(r: random.Random) -> str:
    n = r.randint(2, 9800)
    street = f"{n} {r.choice(STREETS)} {r.choice(SUFFIXES)}"
    kind = r.random()
    if kind < 0.45:
        city, st, zip_ = r.choice(CITIES_US)
        unit = r.choice(["", "", f", Apt {r.randint(1, 40)}", f" Unit {r.randint(1, 9)}B"])
        return f"{street}{unit}, {city}, {st} {zip_}"
    if kind < 0.55:
        return street
    if kind < 0.75:
        city, pc = r.choice(UK)
        return f"{n} {r.choice(STREETS)} {r.choice(['Road', 'Close', 'Grove', 'Crescent'])}, {city} {pc}"
    return r.choice(EU)


def order_id(r: random.Random) -> tuple[str, str]:
    """(text before the value, value): the span is the value with its # if any."""
    n = r.randint(10000, 99999)
    return r.choice(
        [
            ("order ", f"#{n}"), ("Order ", f"#{n}"), ("order ", f"{n}"),
            ("order number ", f"{n}"), ("order no. ", f"{n}"), ("", f"#{n}"),
            ("order: ", f"{n}"), ("order ", f"#CS{n}"),
        ]
    )  # fmt: skip


def tracking(r: random.Random) -> tuple[str, str]:
    alnum = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
    d = lambda k: "".join(r.choice("0123456789") for _ in range(k))  # noqa: E731
    ups = "1Z" + "".join(r.choice(alnum) for _ in range(6)) + d(10)
    usps_raw = r.choice(["9400", "9205", "9261", "9300"]) + d(18)
    usps = usps_raw if r.random() < 0.4 else " ".join(usps_raw[i : i + 4] for i in range(0, 22, 4))
    return r.choice(
        [
            ("UPS tracking shows ", ups), ("the UPS number is ", ups),
            ("USPS tracking ", usps), ("USPS says ", usps),
            ("FedEx tracking number is ", d(12)), ("tracking number: ", d(12)),
            ("tracking #", d(15)), ("Royal Mail ref ", f"{r.choice(['AB', 'RM', 'JD'])}{d(9)}GB"),
            ("FedEx ", d(12)),
        ]
    )  # fmt: skip


def ip(r: random.Random) -> str:
    return r.choice(
        [
            f"203.0.113.{r.randint(1, 254)}", f"198.51.100.{r.randint(1, 254)}",
            f"192.0.2.{r.randint(1, 254)}", f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
        ]
    )  # fmt: skip


def sku(r: random.Random) -> str:
    cat = r.choice(["JKT", "TNT", "BAG", "BT", "PK", "STV", "FLC"])
    return f"CS-{cat}-{r.randint(1, 999):04d}-{r.choice(['S', 'M', 'L', 'XL', '2P'])}-{r.choice(['BLK', 'GRN', 'RED', 'NVY'])}"


# --- sentences -------------------------------------------------------------------------


def P(kind: str, value: str) -> str:
    return f"⟦{kind}|{value}⟧"


def K(value: str) -> str:
    return f"⟪{value}⟫"


def pii_sentence(r: random.Random, who: dict) -> str:
    kind = r.choice(
        ["EMAIL", "PHONE", "CARD", "IBAN", "ADDRESS", "ORDER_ID", "TRACKING", "IP", "NAME"]
    )
    if kind == "EMAIL":
        first, last = who["first"].lower(), who["last"].lower().replace("'", "")
        user = r.choice([f"{first}.{last}", f"{first}{r.randint(1, 99)}", f"{first[0]}{last}+gear"])
        dom = r.choice(
            ["example.com", "mail.example.org", "example.co.uk", "example.de", "example.net"]
        )
        return r.choice(
            [
                "You can reach me at {} if anything changes.",
                "Please send the label to {} instead of my work address.",
                "My account email is {}.",
                "I never got the confirmation at {}, can you resend it?",
            ]
        ).format(P("EMAIL", f"{user}@{dom}"))
    if kind == "PHONE":
        return r.choice(
            [
                "Call me on {} after 5pm.",
                "My mobile is {} if the courier needs it.",
                "Phone: {}",
                "The best number to reach me is {}.",
                "Could someone text me at {} when it ships?",
            ]
        ).format(P("PHONE", phone(r)))
    if kind == "CARD":
        return r.choice(
            [
                "My card number is {}, please refund it there.",
                "The charge on {} went through twice.",
                "I paid with {} and it was declined.",
            ]
        ).format(P("CARD", card(r)))
    if kind == "IBAN":
        return r.choice(
            [
                "Please send the refund to IBAN {}.",
                "Bank transfer details: {}",
                "My account is {} if a card refund is not possible.",
            ]
        ).format(P("IBAN", iban(r)))
    if kind == "ADDRESS":
        return r.choice(
            [
                "Please ship the replacement to {} instead.",
                "My new address is {}.",
                "It went to my old place at {} by mistake.",
                "Deliver to {} please, the side door is fine.",
            ]
        ).format(P("ADDRESS", address(r)))
    if kind == "ORDER_ID":
        pre, val = order_id(r)
        s = r.choice(
            [
                "I'm writing about {}{} which still hasn't arrived.",
                "Can you check {}{} for me?",
                "Re: {}{} - wrong size sent.",
            ]
        )
        return s.format(pre, P("ORDER_ID", val))
    if kind == "TRACKING":
        pre, val = tracking(r)
        return f"{pre[0].upper()}{pre[1:]}{P('TRACKING', val)} but nothing has moved in a week."
    if kind == "IP":
        return r.choice(
            [
                "The checkout error came from IP {} this morning.",
                "Our logs show the login attempt from {}.",
                "Blocked address {} after five failed payments.",
            ]
        ).format(P("IP", ip(r)))
    full = f"{who['first']} {who['last']}"
    return r.choice(
        [
            f"My name is {P('NAME', full)} and I ordered last week.",
            f"{P('NAME', full)} placed the order for me as a gift.",
            f"The package was addressed to {P('NAME', full)}.",
            f"@{P('NAME', who['agent_first'])} can you check this one?",
        ]
    )


def keep_sentence(r: random.Random, product: str) -> str:
    kind = r.randrange(12)
    if kind == 0:
        price = r.choice(["$129.00", "$89.95", "$349.00", "$24.50", "€89,95", "£45"])
        size = r.choice(["XL", "M", "S", "XXL", "L"])
        return f"The {K(product)} ({K(sku(r))}) is {K(price)} and {K('comes in ' + size)}."
    if kind == 1:
        return (
            f"I wear {K(r.choice(['US 10.5', 'US 9', 'EU 44', 'UK 8']))} in trail shoes and "
            f"{K(r.choice(['32x34', '30x32', '34x30']))} in pants."
        )
    if kind == 2:
        date = r.choice(
            ["2025-03-01", "3/2/2025", "March 3", "12/24/2024", "2024-11-29", "June 14th"]
        )
        return f"It was delivered on {K(date)} but the box was crushed."
    if kind == 3:
        return (
            f"Returns are accepted within {K(r.choice(['30 days', '60 days', '14 days']))}, "
            f"shipping is free over {K(r.choice(['$75', '$50', '$99']))} and refunds take "
            f"{K(r.choice(['5 business days', '3-5 business days', '10 days']))}."
        )
    if kind == 4:
        return (
            f"Is it really rated to {K(r.choice(['30°F', '-7°C', '15°F', '0°F', '20 °F']))}? "
            f"The {K(r.choice(['65L', '2.5 L', '40 L', '28L']))} version looks bigger."
        )
    if kind == 5:
        return f"The number on the invoice is {K(card(r, valid=False))}, is that a gift card?"
    if kind == 6:
        model = r.choice(["GTX-450", "Model 3200", "XR-7", "MSR-2024", "v2.1", "BX 900"])
        return f"Does the {K(model)} burner fit the {K(product)}?"
    if kind == 7:
        return f"The total came to {K(r.choice(['1,299.99 USD', '1,049.00 USD', '$2,150.00']))} with tax."
    if kind == 8:
        return f"Sizes in stock: {K('32 34 36 38')} and {K('40 in the regular fit')}."
    if kind == 9:
        return f"The {K(product)} weighs {K(r.choice(['1,250 g', '2.4 lb', '980g']))} packed."
    if kind == 10:
        return f"We ship within {K('2-3 business days')} and the warranty is {K('2 years')}."
    return f"Item {K(sku(r))}, {K(f'qty {r.randint(2, 6)}')}, at {K('$' + str(r.randint(20, 400)) + '.00')} each."


def record(r: random.Random, i: int) -> str:
    named = i % 12 == 0
    if named:
        product, first, last = NAMED_PRODUCTS[(i // 12) % len(NAMED_PRODUCTS)]
    else:
        product, first, last = r.choice(PRODUCTS), r.choice(FIRST), r.choice(LAST)
    agent = r.choice(AGENTS)
    who = {"first": first, "last": last, "agent_first": agent.split()[0]}
    from_agent = r.random() < 0.4
    lines = []
    if from_agent:
        lines.append(f"{r.choice(['Hi', 'Hello', 'Dear'])} {P('NAME', first)},")
    else:
        g = r.random()
        if g < 0.5:
            lines.append(r.choice(["Hi there,", "Hello,", "Hi Cedar & Summit team,", "Hey,"]))
        elif g < 0.7:
            lines.append(f"Hello {P('NAME', agent.split()[0])},")
    body = [pii_sentence(r, who) for _ in range(r.randint(1, 3))]
    body += [keep_sentence(r, product) for _ in range(r.randint(0, 2))]
    if named:
        body.append(f"Is the {K(product)} {K('back in ' + r.choice(['XL', 'M', 'L']))} yet?")
    r.shuffle(body)
    lines.append(" ".join(body))
    if from_agent:
        sign = r.random()
        if sign < 0.4:
            lines.append(f"Best,\n{P('NAME', agent)}")
        elif sign < 0.7:
            lines.append(f"— {P('NAME', agent.split()[0])}")
    else:
        sign = r.random()
        if sign < 0.35:
            lines.append(f"Thanks,\n{P('NAME', first)}")
        elif sign < 0.55:
            lines.append(f"Kind regards,\n{P('NAME', first + ' ' + last)}")
        elif sign < 0.7:
            lines.append(f"Thanks so much, {P('NAME', first)}!")
        elif sign < 0.78:
            lines.append(f"Dear Ms. {P('NAME', last)}, please read the above.")
    template = "\n".join(lines)
    text, spans, keep = render(template)
    names = [f"{first} {last}", agent] if r.random() < 0.85 or named else [agent]
    out = {"text": text, "names": names, "spans": spans, "keep": keep}
    if named:
        out["protected"] = sorted({w.lower() for w in re.findall(r"[A-Za-z]+", product)})
    return json.dumps(out, ensure_ascii=False)


_TOKEN = re.compile(r"⟦(?P<t>[A-Z_]+)\|(?P<v>[^⟧]*)⟧|⟪(?P<k>[^⟫]*)⟫")


def render(template: str) -> tuple[str, list[dict], list[str]]:
    out, spans, keep, pos = [], [], [], 0
    length = 0
    for m in _TOKEN.finditer(template):
        lit = template[pos : m.start()]
        out.append(lit)
        length += len(lit)
        if m.group("t"):
            v = m.group("v")
            spans.append({"start": length, "end": length + len(v), "type": m.group("t")})
        else:
            v = m.group("k")
            keep.append(v)
        out.append(v)
        length += len(v)
        pos = m.end()
    out.append(template[pos:])
    return "".join(out), spans, keep


def main() -> None:
    r = random.Random(SEED)
    lines = [record(r, i) for i in range(N_RECORDS)]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
