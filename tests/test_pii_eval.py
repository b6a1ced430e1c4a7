"""The labeled PII set: big enough, and the Scrubber meets its targets on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storetune.clean.pii import TYPES
from storetune.clean.pii_eval import DEFAULT_PATH, evaluate_pii, main, replaced_ranges

DATA = Path(__file__).parent / "data" / "pii_labeled.jsonl"


@pytest.fixture(scope="module")
def result():
    return evaluate_pii(DATA)


def test_default_path_is_the_bundled_set():
    assert DEFAULT_PATH.resolve() == DATA.resolve()


def test_labeled_set_is_large_and_well_formed():
    spans, keeps, kinds = 0, 0, set()
    for line in DATA.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for s in row["spans"]:
            assert 0 <= s["start"] < s["end"] <= len(row["text"])
            assert s["type"] in TYPES
            kinds.add(s["type"])
        for k in row.get("keep", []):
            assert k in row["text"]
        spans += len(row["spans"])
        keeps += len(row.get("keep", []))
    assert spans >= 300 and keeps >= 200
    assert kinds == set(TYPES)


def test_targets(result):
    assert result["recall"] >= 0.99, result["misses"][:10]
    assert result["precision"] >= 0.95, result["false_positives"][:10]
    assert result["survival"] == 1.0, result["killed_keeps"][:10]
    assert result["recall_any"] >= result["recall"]


def test_every_type_is_scored(result):
    for kind in TYPES:
        assert result["per_type"][kind]["labeled"] >= 10, kind


def test_alignment_maps_placeholders_back():
    original = "Hi Maya, call 503.555.0142. Thanks, Maya"
    scrubbed = "Hi <NAME>, call <PHONE>. Thanks, <NAME>"
    assert replaced_ranges(original, scrubbed) == [
        (3, 7, "NAME"),
        (14, 26, "PHONE"),
        (36, 40, "NAME"),
    ]
    assert replaced_ranges("no pii", "no pii") == []


def test_main_runs_on_a_given_path(tmp_path, capsys):
    path = tmp_path / "one.jsonl"
    row = {
        "text": "Mail maya@example.com",
        "names": [],
        "spans": [{"start": 5, "end": 21, "type": "EMAIL"}],
        "keep": ["Mail"],
    }
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    assert main([str(path)]) == 0
    assert "EMAIL" in capsys.readouterr().out
    assert main([str(tmp_path / "missing.jsonl")]) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Call (02) 9876 5432 please.", "Call <PHONE> please."),
        ("FedEx 771234567890 is stuck.", "FedEx <TRACKING> is stuck."),
        ("Thanks so much, Nadia!", "Thanks so much, <NAME>!"),
        ("Ship to 8 avenue Victor Hugo, 69002 Lyon.", "Ship to <ADDRESS>."),
        (
            "IBAN ES91 2100 0418 4502 0005 1332 I think.",  # " I" is a word, not IBAN
            "IBAN <IBAN> I think.",
        ),
    ],
)
def test_rules_added_for_the_labeled_set(text, expected):
    from storetune.clean.pii import Scrubber

    assert Scrubber().scrub(text) == expected


def test_scrubber_shares_a_frozen_vocabulary():
    from storetune.clean.pii import Scrubber

    vocab = frozenset({"Olive", "jacket"})
    s = Scrubber(names=["Olive Martin"], protected=vocab)
    assert s.protected == {"olive", "jacket"}
    assert (
        s.scrub("Hi Olive,\nthe Olive Jacket is back.") == "Hi <NAME>,\nthe Olive Jacket is back."
    )
