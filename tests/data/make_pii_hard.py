"""Write tests/data/pii_hard.jsonl: hand-written hard PII cases beside the generated set.

`python tests/data/make_pii_hard.py` rewrites the file byte for byte. The cases are the
kinds that got through on outside test sets (issue 16, item 2): names introduced by
"this is …" or in sign-offs, names of many origins with accents, hyphenated and second
surnames, third parties' names, non-US street addresses and post codes (Japan, Ireland,
UK, Germany and more), IPv6 addresses, international phone numbers written with a `00`
prefix and spaces, order numbers with a letter prefix. Each case also carries
look-alikes that must survive (product names, model numbers, times, sizes).

Every person, number and address here is made up (phone numbers use fiction ranges where
a country has one; IPv6 addresses are in the 2001:db8::/32 documentation prefix).

Same markup and same line format as make_pii_labeled.py: ⟦TYPE|value⟧ is personal data,
⟪value⟫ a look-alike; "names" are the helpdesk user names of the conversation,
"protected" the catalog words ingest passes. "split" is "dev" for the cases the patterns
were improved on and "holdout" for cases written at the same time but only scored at
the end (their first score is the honest estimate for unseen text).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from make_pii_labeled import render  # noqa: E402

OUT = Path(__file__).with_name("pii_hard.jsonl")

AGENT = "Jordan Ames"

# (template, helpdesk names, protected catalog words)
DEV: list[tuple[str, list[str], list[str]]] = [
    # --- "this is …", sign-offs, accents ------------------------------------------
    (
        "Hi, this is ⟦NAME|Zoë Müller-Lüdenscheidt⟧. I ordered the ⟪Summit Glen Fleece⟫ "
        "last week and it came in ⟪size M⟫, not L.\nThanks,\n⟦NAME|Zoë⟧",
        [],
        ["summit", "glen", "fleece"],
    ),
    (
        "Hello ⟦NAME|Jordan⟧,\nthis is ⟦NAME|Siobhán Ní Bhriain⟧ again. Any news on the "
        "refund?\nMany thanks,\n⟦NAME|Siobhán⟧",
        ["Siobhan Ni Bhriain", AGENT],
        [],
    ),
    (
        "Hey, this is ⟦NAME|Oluwaseun⟧ — the ⟪Cascade Rain Shell⟫ leaks at the zip. "
        "⟪This is the second one⟫ I've had.",
        [],
        ["cascade", "rain", "shell"],
    ),
    (
        "Good morning, this is ⟦NAME|Nguyễn Thị Lan⟧ writing about a return.\n"
        "Warm regards,\n⟦NAME|Lan Nguyễn⟧",
        [],
        [],
    ),
    (
        "The boots are great, ⟪this is just⟫ about the laces.\n\nBest wishes,\n"
        "⟦NAME|François-Xavier Lefèvre⟧",
        ["Francois Lefevre"],
        [],
    ),
    (
        "Can I swap the ⟪Ridgeline 2P Tent⟫ for the 3P?\nCheers\n⟦NAME|Björn⟧",
        [],
        ["ridgeline", "tent"],
    ),
    (
        "Please cancel it.\nRegards, ⟦NAME|Wojciech Brzęczyszczykiewicz⟧",
        [],
        [],
    ),
    (
        "Thank you so much for the quick help!\n\n⟦NAME|Ayşe Yıldırım⟧\nSent from my iPhone",
        [],
        [],
    ),
    (
        "Where is my parcel? It has been ⟪10 days⟫.\n\nUn saludo,\n"
        "⟦NAME|María José Fernández de la Vega⟧",
        [],
        [],
    ),
    (
        "Die Jacke ist zu klein.\nViele Grüße\n⟦NAME|Jürgen Weiß⟧",
        [],
        [],
    ),
    # --- second and hyphenated surnames left behind ----------------------------------
    (
        "Hello,\nmy name is ⟦NAME|José Luis García Márquez⟧ and my order has not arrived.",
        ["José García"],
        [],
    ),
    (
        "Hi ⟦NAME|Guadalupe⟧, we have refunded the jacket. Let me know if ⟦NAME|Guadalupe "
        "Ramírez Ortega⟧ is the right name for the card.",
        ["Guadalupe Ramírez"],
        [],
    ),
    (
        "The parcel is addressed to ⟦NAME|Chidinma Okonkwo-Eze⟧, please correct it.",
        ["Chidinma Okonkwo"],
        [],
    ),
    (
        "Dear ⟦NAME|Krisztina Nagy-Tóth⟧,\nyour exchange for the ⟪Alpine Ascent 65L Pack⟫ "
        "has shipped.",
        ["Krisztina Nagy"],
        ["alpine", "ascent", "pack"],
    ),
    (
        "Ms. ⟦NAME|Mariana dos Santos Pereira⟧ called about the return label.",
        ["Mariana Santos"],
        [],
    ),
    (
        "Hi ⟦NAME|Kai⟧,\nthe order for ⟦NAME|Kai Nakamura-Hughes⟧ is on its way.",
        ["Kai Nakamura"],
        [],
    ),
    # --- third parties --------------------------------------------------------------
    (
        "My husband ⟦NAME|Hiroshi Yamamoto⟧ will be home to sign for it.",
        ["Aiko Yamamoto"],
        [],
    ),
    (
        "If I'm out, please leave it with my neighbour ⟦NAME|Dragana Petrović⟧ at number 12.",
        ["Tomasz Nowak"],
        [],
    ),
    (
        "It is a gift for my daughter ⟦NAME|Mei-Ling⟧, so no invoice in the box please.",
        ["Wu Jian"],
        [],
    ),
    (
        "Please ship it to my colleague ⟦NAME|Aleksandr Kuznetsov⟧ at the office instead.",
        ["Priya Raghunathan"],
        [],
    ),
    (
        "The courier, a man called ⟦NAME|Dmitri⟧, said nobody was home, which is not true.",
        [],
        [],
    ),
    (
        "I spoke to ⟦NAME|Ngozi⟧ on your chat yesterday and she promised a refund.",
        [],
        [],
    ),
    # --- addresses: Japan, Ireland, UK, Germany, more ---------------------------------
    (
        "Please ship to ⟦ADDRESS|〒150-0002 東京都渋谷区渋谷2-21-1⟧, the ⟪Ember Titanium Stove⟫ "
        "only.",
        [],
        ["ember", "titanium", "stove"],
    ),
    (
        "My address is ⟦ADDRESS|2-21-1 Shibuya, Shibuya-ku, Tokyo 150-0002⟧, Japan.",
        [],
        [],
    ),
    (
        "New address: ⟦ADDRESS|Apartment 4, 12 Grafton Street, Dublin 2, D02 X285⟧",
        [],
        [],
    ),
    (
        "The driver could not find the house. The Eircode is ⟦ADDRESS|A65 F4E2⟧.",
        [],
        [],
    ),
    (
        "Deliver to ⟦ADDRESS|Flat 3, 27 Kingsley Road, Hove BN3 5RE⟧ please.",
        [],
        [],
    ),
    (
        "my postcode is ⟦ADDRESS|EH3 9QP⟧ and the ⟪M4 3XL⟫ kit is what I ordered",
        [],
        [],
    ),
    (
        "Bitte an ⟦ADDRESS|Goethestraße 27, 60313 Frankfurt am Main⟧ liefern.",
        [],
        [],
    ),
    (
        "Send it to ⟦ADDRESS|Schillerstr. 4a, 70173 Stuttgart⟧, not to the office.",
        [],
        [],
    ),
    (
        "The return came from ⟦ADDRESS|Karl-Marx-Allee 90, 10243 Berlin⟧.",
        [],
        [],
    ),
    (
        "I live at ⟦ADDRESS|Rua das Flores 123, 4050-265 Porto⟧, Portugal.",
        [],
        [],
    ),
    (
        "Adres: ⟦ADDRESS|ul. Marszałkowska 84/92, 00-514 Warszawa⟧",
        [],
        [],
    ),
    # --- IPv6 ------------------------------------------------------------------------
    (
        "The failed payments came from ⟦IP|2001:db8:85a3::8a2e:370:7334⟧ at ⟪12:30:45⟫.",
        [],
        [],
    ),
    (
        "Login from ⟦IP|2001:0db8:0000:0000:0000:ff00:0042:8329⟧ was blocked.",
        [],
        [],
    ),
    (
        "Our firewall logged ⟦IP|fe80::1ff:fe23:4567:890a⟧ and ⟦IP|2001:DB8:0:0:8:800:200C:417A⟧, "
        "ratio ⟪3:2:1⟫.",
        [],
        [],
    ),
    # --- 00-prefixed and spaced international phones ---------------------------------
    (
        "Call me on ⟦PHONE|00 44 20 7946 0958⟧ after 5pm.",
        [],
        [],
    ),
    (
        "My number is ⟦PHONE|0049 30 1234 5678⟧, or ⟦PHONE|00 353 1 555 0123⟧ at work.",
        [],
        [],
    ),
    (
        "WhatsApp: ⟦PHONE|00 81 90 1234 5678⟧",
        [],
        [],
    ),
    (
        "Tel. ⟦PHONE|+353 (0)87 123 4567⟧ — the ⟪Model 3200⟫ is the one I have.",
        [],
        [],
    ),
    # --- letter-prefixed order numbers -----------------------------------------------
    (
        "My order ⟦ORDER_ID|ABC-10234⟧ came without the ⟪GTX-450⟫ burner.",
        [],
        [],
    ),
    (
        "Order no. ⟦ORDER_ID|SO-2024-88123⟧ was charged twice.",
        [],
        [],
    ),
    (
        "Your reference is ⟦ORDER_ID|ORD-558812⟧; the ⟪CS-JKT-0042-M-BLK⟫ is back in stock.",
        [],
        [],
    ),
    (
        "Re: order ⟦ORDER_ID|#US-48213⟧ — wrong colour sent.",
        [],
        [],
    ),
]

HOLDOUT: list[tuple[str, list[str], list[str]]] = [
    (
        "Hi there, this is ⟦NAME|Thandiwe Dlamini⟧, I need to change my delivery date.\n"
        "Thanks\n⟦NAME|Thandiwe⟧",
        [],
        [],
    ),
    (
        "My wife ⟦NAME|Sigrún Ólafsdóttir⟧ ordered it for me.",
        ["Einar Jónsson"],
        [],
    ),
    (
        "Dear ⟦NAME|Seán⟧,\nthank you. ⟦NAME|Aoife Ó Súilleabháin⟧ will collect the parcel.",
        ["Seán Mac Giolla"],
        [],
    ),
    (
        "Hello, my name is ⟦NAME|Ana María Gómez-Ibáñez⟧ and I ordered the "
        "⟪Basecamp Down Sleeping Bag⟫.",
        ["Ana Gómez"],
        ["basecamp", "down", "sleeping", "bag"],
    ),
    (
        "Kind regards,\n⟦NAME|Mohammed Al-Farsi⟧",
        [],
        [],
    ),
    (
        "This is ⟦NAME|Çağla Öztürk⟧, the ⟪Trailhead Merino Crew⟫ shrank after one wash.",
        [],
        ["trailhead", "merino", "crew"],
    ),
    (
        "Please give the parcel to my son ⟦NAME|Kwame Mensah⟧.",
        ["Ama Mensah"],
        [],
    ),
    (
        "Ship to ⟦ADDRESS|〒107-0062 東京都港区南青山1-2-3⟧ please.",
        [],
        [],
    ),
    (
        "Address: ⟦ADDRESS|1-2-3 Minami-Aoyama, Minato-ku, Tokyo 107-0062⟧",
        [],
        [],
    ),
    (
        "Eircode ⟦ADDRESS|T12 AB34⟧, the yellow house.",
        [],
        [],
    ),
    (
        "Deliver to ⟦ADDRESS|Rose Cottage, Mill Lane, Little Snoring NR21 0HS⟧.",
        [],
        [],
    ),
    (
        "Lieferadresse: ⟦ADDRESS|Unter den Linden 77, 10117 Berlin⟧",
        [],
        [],
    ),
    (
        "The address on file is ⟦ADDRESS|Am Kupfergraben 6, 10117 Berlin⟧.",
        [],
        [],
    ),
    (
        "Blocked ⟦IP|2001:db8::1⟧ and ⟦IP|2001:db8:ab::42:1⟧ after the card test.",
        [],
        [],
    ),
    (
        "Please ring ⟦PHONE|0033 6 12 34 56 78⟧ before delivery.",
        [],
        [],
    ),
    (
        "Mobile: ⟦PHONE|00 39 347 123 4567⟧",
        [],
        [],
    ),
    (
        "Order number ⟦ORDER_ID|GB-771023⟧ is missing a tent pole.",
        [],
        [],
    ),
    (
        "my order ⟦ORDER_ID|EU77123⟧ never came, the ⟪XR-7⟫ stove was in it",
        [],
        [],
    ),
    (
        "Thanks for your help, ⟦NAME|Priyanka⟧!\n⟦NAME|Rafael Castillo-Ibarra⟧",
        ["Rafael Castillo"],
        [],
    ),
    (
        "Hi ⟦NAME|Tessa⟧, my partner ⟦NAME|Lior Ben-David⟧ has the receipt.",
        ["Noa Levi", "Tessa Marlow"],
        [],
    ),
]


def _line(template: str, names: list[str], protected: list[str], split: str) -> str:
    text, spans, keep = render(template)
    row = {"text": text, "names": names, "spans": spans, "keep": keep, "split": split}
    if protected:
        row["protected"] = protected
    return json.dumps(row, ensure_ascii=False)


def main() -> None:
    lines = [_line(*c, "dev") for c in DEV] + [_line(*c, "holdout") for c in HOLDOUT]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    strings = sum(len(re.findall("⟦", t)) for t, _, _ in DEV + HOLDOUT)
    print(f"{OUT.name}: {len(lines)} texts, {strings} PII strings")


if __name__ == "__main__":
    main()
