"""The hard PII cases of issue 16: the extended labeled set meets its targets, and each
new rule replaces what it is for and leaves its look-alikes alone."""

from __future__ import annotations

import json

import pytest

from storetune.clean.pii import Scrubber
from storetune.clean.pii_eval import EXTENDED, HARD_PATH, evaluate_pii, main


def test_hard_set_is_hand_written_with_a_holdout():
    rows = [json.loads(line) for line in HARD_PATH.read_text(encoding="utf-8").splitlines()]
    kinds = {s["type"] for r in rows for s in r["spans"]}
    assert {"NAME", "ADDRESS", "PHONE", "IP", "ORDER_ID"} <= kinds
    assert sum(len(r["spans"]) for r in rows) >= 70
    assert {r["split"] for r in rows} == {"dev", "holdout"}
    assert sum(r["split"] == "holdout" for r in rows) >= 20


def test_extended_set_meets_issue_16_targets():
    r = evaluate_pii(EXTENDED)
    assert r["spans"] >= 840
    assert r["recall"] >= 0.995, r["misses"][:10]
    assert r["precision"] >= 0.97, r["false_positives"][:10]
    assert r["survival"] == 1.0, r["killed_keeps"][:10]


def test_eval_command_scores_a_split(capsys):
    assert main(["--split", "holdout", str(HARD_PATH)]) == 0
    out = capsys.readouterr().out
    assert "split holdout" in out and "texts/s" in out


@pytest.mark.parametrize(
    ("text", "names", "expected"),
    [
        # "this is …", accents, the first name alone in the sign-off
        (
            "Hi, this is Zoë Müller-Lüdenscheidt.\nThanks,\nZoë",
            [],
            "Hi, this is <NAME>.\nThanks,\n<NAME>",
        ),
        ("Hello, this is Oluwaseun from Lagos.", [], "Hello, this is <NAME> from Lagos."),
        # a helpdesk name without accents finds the accented one, and the other way round
        ("Siobhán Ní Bhriain wrote in.", ["Siobhan Ni Bhriain"], "<NAME> wrote in."),
        # second and hyphenated surnames go with the known first name
        ("For José Luis García Márquez.", ["José García"], "For <NAME>."),
        ("Addressed to Chidinma Okonkwo-Eze.", ["Chidinma Okonkwo"], "Addressed to <NAME>."),
        ("Ms. Mariana dos Santos Pereira called.", [], "Ms. <NAME> called."),
        # sign-offs: inline, other languages, a last line before "Sent from my iPhone"
        (
            "Please cancel.\nRegards, Wojciech Brzęczyszczykiewicz",
            [],
            "Please cancel.\nRegards, <NAME>",
        ),
        ("Zu klein.\nViele Grüße\nJürgen Weiß", [], "Zu klein.\nViele Grüße\n<NAME>"),
        (
            "Thanks!\n\nAyşe Yıldırım\nSent from my iPhone",
            [],
            "Thanks!\n\n<NAME>\nSent from my iPhone",
        ),
        # third parties
        ("My husband Hiroshi Yamamoto will sign.", [], "My husband <NAME> will sign."),
        ("A man called Dmitri came.", [], "A man called <NAME> came."),
        ("I spoke to Ngozi yesterday.", [], "I spoke to <NAME> yesterday."),
        ("Thanks for your help, Priyanka!", [], "Thanks for your help, <NAME>!"),
        # the greeting word stays: "Hey Nora" is not a full name (a third of the demo's
        # agent replies lost their greeting to this, and the model learned "<NAME>," alone)
        ("Hey Nora,\n\nGood news", [], "Hey <NAME>,\n\nGood news"),
        ("Dear Nora Smith,\nthanks", ["Nora Smith"], "Dear <NAME>,\nthanks"),
        ("Hiya Tomasz!", [], "Hiya <NAME>!"),
    ],
)
def test_name_rules(text, names, expected):
    assert Scrubber(names).scrub(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ship to 〒150-0002 東京都渋谷区渋谷2-21-1 please.", "Ship to <ADDRESS> please."),
        ("At 2-21-1 Shibuya, Shibuya-ku, Tokyo 150-0002, Japan.", "At <ADDRESS>, Japan."),
        ("Apartment 4, 12 Grafton Street, Dublin 2, D02 X285", "<ADDRESS>"),
        ("The Eircode is A65 F4E2.", "The Eircode is <ADDRESS>."),
        ("my postcode is EH3 9QP", "my postcode is <ADDRESS>"),
        ("Flat 3, 27 Kingsley Road, Hove BN3 5RE.", "<ADDRESS>."),
        ("Goethestraße 27, 60313 Frankfurt am Main.", "<ADDRESS>."),
        ("Karl-Marx-Allee 90, 10243 Berlin", "<ADDRESS>"),
        ("ul. Marszałkowska 84/92, 00-514 Warszawa", "<ADDRESS>"),
        ("Call 00 44 20 7946 0958 or 00 1 503 555 0142.", "Call <PHONE> or <PHONE>."),
        ("Order no. SO-2024-88123 twice.", "Order no. <ORDER_ID> twice."),
        ("Your reference is ORD-558812.", "Your reference is <ORDER_ID>."),
        ("From ::ffff:192.0.2.128 and [2001:db8::1]:8080.", "From <IP> and [<IP>]:8080."),
    ],
)
def test_number_and_address_rules(text, expected):
    assert Scrubber().scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "This is the second one I've had.",
        "This is Ridgeline's best tent, right?",
        "Thanks,\nThe Cedar & Summit team",
        "The M4 3XL kit and the CS-JKT-0042-M-BLK jacket.",
        "The Model 3200, 2024 Edition is back.",
        "It started at 12:30:45, ratio 3:2:1.",
        "My husband loves the Ridgeline Tent.",
        "Best,\n\nRidgeline Tent",
        "Thank you so much for the quick help!\n\nKind Regards",
        "The GTX-450 burner, model XR-7000, order soon.",
    ],
)
def test_look_alikes_survive(text):
    s = Scrubber(protected={"ridgeline", "tent", "cedar", "summit"})
    assert s.scrub(text) == text
