"""Cleaning: HTML, signatures, PII placeholders, description flags, human-only topics."""

from __future__ import annotations

import pytest

from storetune.clean import (
    Scrubber,
    clean_description,
    clean_message,
    html_to_text,
    human_only_reason,
    is_broken_html,
    strip_signature,
)
from storetune.config import EscalationTopic

# --- html ---------------------------------------------------------------------------


def test_html_to_text_structure_and_entities():
    html = (
        "<h2>Specs</h2><p>Warm &amp; light&nbsp;shell</p><ul><li>Wool</li><li>Nylon "
        "<b>ripstop</b></li></ul><p>Line one<br>line two</p><script>track()</script>"
        "<style>p{color:red}</style>"
    )
    assert html_to_text(html) == (
        "Specs\n\nWarm & light shell\n\n- Wool\n- Nylon ripstop\n\nLine one\nline two"
    )


def test_html_source_newlines_are_whitespace_but_plain_text_keeps_them():
    assert html_to_text("<p>one\n   two</p>") == "one two"
    assert html_to_text("one\ntwo &amp; three") == "one\ntwo & three"
    assert html_to_text("") == "" and html_to_text(None) == ""


@pytest.mark.parametrize(
    ("html", "broken"),
    [
        ("<p>fine</p><ul><li>a<li>b</ul>", False),  # optional end tags are allowed
        ("<p>Warm <b>wool</strong></p>", True),
        ("<div><p>never closed", True),
        ('<p>cut off <a href="x"', True),
        ("plain text, 3 < 4", False),
    ],
)
def test_is_broken_html(html, broken):
    assert is_broken_html(html) is broken


def test_cut_off_tag_is_not_text():
    assert html_to_text('<p>Great boots</p><img src="x') == "Great boots"


# --- signatures and quotes --------------------------------------------------------------

AGENT_REPLY = """Hi Maya,

Thanks for reaching out! Your jacket ships tomorrow and returns are free within 30 days.

Best,
Jordan P.
Cedar & Summit Customer Care
support@cedarsummit.com"""


def test_agent_signoff_and_signature_removed_greeting_kept():
    assert strip_signature(AGENT_REPLY) == (
        "Hi Maya,\n\nThanks for reaching out! Your jacket ships tomorrow and returns are free "
        "within 30 days."
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Where is my order?\n\nThanks,\nMaya\n\nSent from my iPhone", "Where is my order?"),
        ("Great, thanks.\n\nCheers,\nSam", "Great, thanks."),
        ("Kind regards — see below.\n\nKind regards,\nDr. Ann Lee", "Kind regards — see below."),
        ("Need help.\n-- \nMaya Chen\n+1 503 555 0142", "Need help."),
        ("Can you help?\n\nMaya Chen\nmaya@example.com\n503-555-0142", "Can you help?"),
        ("I love it.\nThanks, Maya", "I love it."),
        (
            "Label please.\n\nBest,\nChloe Abernathy\n3343 Ridge Road, Apt 38, Denver, CO 80205!",
            "Label please.",
        ),
        ("Return??\n\nBest,\nLeah Ashby\n1987 Hemlock Drive, Calgary, AB T2P 1J9", "Return??"),
        (
            "All set.\n\nHappy trails,\nNoah K.\nCedar & Summit Customer Care\nsupport@x.example.com",
            "All set.",
        ),
        ("Done.\n\nTake care,\nTessa\nCedar & Summit Outfitters | +1 (503) 555-0100", "Done."),
        ("Sorry.\n\nCheers,\nRosa (she/her)\nCedar & Summit Customer Care", "Sorry."),
        ("Ok.\n\n-- \nSam W. | Cedar & Summit\nMon–Fri 8am–6pm Pacific | +1 (503) 555-0100", "Ok."),
        ("What size should I get?\n\n- Olivia", "What size should I get?"),
        (
            "See you out there,\nMarcus Bell\nCustomer Care Specialist",
            "See you out there,\nMarcus Bell\nCustomer Care Specialist",
        ),
    ],
)
def test_signoffs_removed(text, expected):
    assert strip_signature(text) == expected


def test_quoted_previous_emails_removed():
    gmail = (
        "Yes, the medium please.\n\nOn Mon, 3 Mar 2025, Jordan <support@x.com> wrote:\n"
        "> Which size would you like?\n> Jordan"
    )
    assert strip_signature(gmail) == "Yes, the medium please."
    wrapped = "Ok!\n\nOn Mon, Mar 3, 2025 at 10:02 AM Cedar & Summit <\nsupport@x.com> wrote:\n> hi"
    assert strip_signature(wrapped) == "Ok!"
    outlook = "Thanks for the label.\n\n-----Original Message-----\nFrom: Jordan\nSent: today\nhi"
    assert strip_signature(outlook) == "Thanks for the label."
    inline = "My answer.\n> quoted line\nMore of my answer."
    assert strip_signature(inline) == "My answer.\nMore of my answer."


def test_real_content_is_not_eaten():
    texts = [
        "Thanks!",  # a message that is only a sign-off keeps it
        "The best fit is M.\nThanks for your patience, it ships in 30 days.",
        "Best,\nthe rest of this line is a real sentence that goes on and on about boots.",
        "Here it is:\n\nOn Tuesday the box arrived. Thanks\nAnd then what?",
        "Sizes:\n- Small\n- Medium\n- Large",
        "Is the Navy Sports Jacket true to size?\n\nOcean Blue Shirt\nNavy Sports Jacket?",
    ]
    for text in texts:
        assert strip_signature(text) == text


# --- PII ----------------------------------------------------------------------------


def _scrub(text: str, **kw) -> tuple[str, Scrubber]:
    s = Scrubber(**kw)
    return s.scrub(text), s


def test_emails_are_replaced_consistently_and_counted():
    out, s = _scrub("Reach me at maya.chen+shop@example.co.uk or maya.chen+shop@example.co.uk.")
    assert out == "Reach me at <EMAIL> or <EMAIL>."
    assert s.counts["EMAIL"] == 2


@pytest.mark.parametrize(
    "phone",
    [
        "+1 (503) 555-0142",
        "503-555-0142",
        "(503) 555-0142",
        "503.555.0142",
        "1-800-555-0199",
        "+44 20 7946 0958",
        "020 7946 0958",
        "07700 900123",
        "+49 30 12345678",
        "01 23 45 67 89",
    ],
)
def test_phone_numbers(phone):
    out, s = _scrub(f"Call me on {phone} after 5pm.")
    assert out == "Call me on <PHONE> after 5pm."
    assert s.counts["PHONE"] == 1


def test_cards_are_luhn_checked():
    out, _ = _scrub("Card 4111 1111 1111 1111, or 5500-0000-0000-0004, not 4111 1111 1111 1112.")
    assert out == "Card <CARD>, or <CARD>, not 4111 1111 1111 1112."


def test_iban_is_checksummed():
    out, _ = _scrub(
        "IBAN GB82 WEST 1234 5698 7654 32 or DE89370400440532013000, not GB00 WEST 1234 5698 7654 32."
    )
    assert out == "IBAN <IBAN> or <IBAN>, not GB00 WEST 1234 5698 7654 32."


@pytest.mark.parametrize(
    "address",
    [
        "42 Birch Lane, Portland, OR 97201",
        "1600 Pennsylvania Ave NW Apt 4, Washington, DC 20500",
        "10 Downing Street, London SW1A 2AA",
        "1234 Maple Street, Calgary, AB T2P 1J9",
        "221B Baker Street",
        "Hauptstraße 12, 10115 Berlin",
        "12 rue de la Paix, 75002 Paris",
        "PO Box 1234",
    ],
)
def test_addresses(address):
    out, s = _scrub(f"Please ship to {address} instead.")
    assert address not in out and "<ADDRESS>" in out
    assert out.endswith(" instead.")


def test_order_numbers_tracking_and_ip():
    text = (
        "Order #10482 and order number 10483 (order: 10484) shipped UPS 1Z999AA10123456784; "
        "USPS 9400 1000 0000 0000 0000 00; FedEx tracking number is 123456789012. IP 203.0.113.9"
    )
    out, s = _scrub(text)
    assert out == (
        "Order <ORDER_ID> and order number <ORDER_ID> (order: <ORDER_ID>) shipped UPS <TRACKING>; "
        "USPS <TRACKING>; FedEx tracking number is <TRACKING>. IP <IP>"
    )
    assert s.counts["ORDER_ID"] == 3 and s.counts["TRACKING"] == 3 and s.counts["IP"] == 1


def test_names_from_users_greetings_titles_and_signoffs():
    s = Scrubber(names=["Maya Chen", "Jordan Price"])
    assert s.scrub("Hi Maya, Jordan here.") == "Hi <NAME>, <NAME> here."
    assert s.scrub("maya chen called") == "<NAME> called"
    assert s.scrub("Dear Mr. Smith, thanks.") == "Dear Mr. <NAME>, thanks."
    assert s.scrub("Hello Priya,\nany news?") == "Hello <NAME>,\nany news?"
    assert s.scrub("Great, thanks Priya!") == "Great, thanks <NAME>!"
    assert s.scrub("All good.\nBest,\nSam O.") == "All good.\nBest,\n<NAME>"
    assert s.scrub("Hi there, my name is Lena Park.") == "Hi there, my name is <NAME>."
    assert s.counts["NAME"] >= 8


def test_name_learned_later_is_replaced_earlier_too():
    s = Scrubber()
    first, second = s.scrub_all(["Tomasz asked about sizing.", "Hi Tomasz,\nThe M fits."])
    assert first == "<NAME> asked about sizing."
    assert second == "Hi <NAME>,\nThe M fits."


def test_catalog_facts_survive():
    text = (
        "Hi there, the Olive Green Jacket (CS-JKT-0012-M-BLK) is $129.00 in sizes S, M, L, XL "
        "and 32 34 36 38. Ordered 2025-03-14, delivered March 3, 2025 at 10:30. Returns within "
        "30 days, free shipping over $75, see https://cedarsummit.com/pages/returns?ref=10482 "
        "or write to help@cedarsummit.com. Barcode 3.65275E+11, 4 items, 2 Large."
    )
    s = Scrubber(
        names=["Olive Green"], protected=["olive", "green", "jacket"],
        allow=["help@cedarsummit.com"],
    )  # fmt: skip
    assert s.scrub(text) == text
    assert sum(s.counts.values()) == 0


def test_catalog_word_names_only_replaced_in_context():
    s = Scrubber(names=["Olive Martin"], protected=["olive"])
    assert (
        s.scrub("Hi Olive,\nthe Olive Jacket is back.") == "Hi <NAME>,\nthe Olive Jacket is back."
    )
    assert s.scrub("Olive Martin asked too.") == "<NAME> asked too."


def test_surnames_and_word_names_alone_need_context():
    s = Scrubber(names=["Will Turner", "Jordan Price"])
    out = s.scrub("Hi Will,\nWill it ship? Price match applies. Jordan Price and Mr. Price agree.")
    assert out == ("Hi <NAME>,\nWill it ship? Price match applies. <NAME> and Mr. <NAME> agree.")
    assert s.scrub("Sorry, Will, no.\n\nWill") == "Sorry, <NAME>, no.\n\n<NAME>"


def test_leftover_signature_name_is_dropped_after_scrubbing():
    s = Scrubber(names=["Ezra Vance"])
    out = clean_message("exchange L -> XL pls, #17590\n\nEzra\n\nSent from my iPhone", s)
    assert out == "exchange L -> XL pls, <ORDER_ID>"


def test_clean_message_pipeline():
    s = Scrubber(names=["Maya Chen"])
    out = clean_message(
        "<p>Hi Maya,</p><p>Your order #10482 is on its way.</p><p>Best,<br>Jordan</p>",
        s,
        is_html=True,
    )
    assert out == "Hi <NAME>,\n\nYour order <ORDER_ID> is on its way."


# --- descriptions and human-only ------------------------------------------------------------


def test_clean_description_flags():
    assert clean_description("<p>Lorem ipsum dolor</p>")[1] == ["placeholder"]
    assert clean_description("TBD")[1] == ["placeholder"]
    assert clean_description(None) == ("", ["placeholder"])
    text, flags = clean_description("<p>Warm boots. <b>Buy now</b>!</p><div>")
    assert text == "Warm boots. Buy now!"
    assert flags == ["boilerplate", "broken_html"]
    assert clean_description("<p>Sturdy pot</p>") == ("Sturdy pot", [])


def test_human_only_defaults_and_config_topics():
    assert human_only_reason(["I will file a chargeback with my bank"]) == "fraud_chargeback"
    assert human_only_reason(["My lawyer will hear about this"]) == "legal_threat"
    assert human_only_reason(["Do these court shoes run small?"]) is None
    topics = [EscalationTopic(name="medical", reason="allergy", keywords=["allergic reaction"])]
    assert human_only_reason(["I had an allergic reaction to the dye"], topics) == "medical"
    assert human_only_reason(["I will file a chargeback"], topics) is None  # config replaces


def test_greetings_to_the_store_are_not_names():
    s = Scrubber(protected=["cascade", "outfitters"])
    for text in [
        "Hi Cascade Support,\nhelp!",
        "Hello Cascade Outfitters,\nhi",
        "Dear Sir or Madam,",
    ]:
        assert s.scrub(text) == text
    assert s.counts["NAME"] == 0


def test_local_number_only_after_a_phone_word():
    out, _ = _scrub("Please call 555-0142 tonight. Style 555-0142 is the tent code.")
    assert out == "Please call <PHONE> tonight. Style 555-0142 is the tent code."


def test_scrubbing_is_idempotent():
    text = (
        "Hi Maya,\nOrder #10482 to 42 Birch Lane, Portland, OR 97201; call +1 (503) 555-0142 or "
        "maya@example.com. Card 4111 1111 1111 1111, tracking number is 123456789012.\nThanks, Maya"
    )
    once = Scrubber(names=["Maya Chen"]).scrub(text)
    again = Scrubber(names=["Maya Chen"])
    assert again.scrub(once) == once and sum(again.counts.values()) == 0
