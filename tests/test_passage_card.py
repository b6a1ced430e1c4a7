"""PassageCard: rendered in its own prompt block by the one renderer, round-tripped through
meta.jsonl, never read back as a product from prompt text."""

from __future__ import annotations

from storetune.chat.card import Card, PassageCard, ProductCard, parse_cards
from storetune.chat.prompt import render_system_prompt
from storetune.config import StoreConfig

CFG = StoreConfig.model_validate({"brand": {"name": "Tiny", "voice": "warm"}})
PASSAGE = PassageCard(
    "Sizing guide",
    "Packs",
    "Packs fit by torso length:\n* S (15-17 in)\n- M: 17-19 in",
    "https://help.example.com/sizing",
    "files:kb/sizing.md#1",
    "2025-01-01",
)
TENT = ProductCard("Larch Tent", "tent", handle="larch")


def test_round_trip_and_render():
    assert Card.from_dict(PASSAGE.to_dict()) == PASSAGE
    assert PASSAGE.render() == (
        "[Sizing guide > Packs] https://help.example.com/sizing\n"
        "Packs fit by torso length:\nS (15-17 in)\n- M: 17-19 in"
    )


def test_prompt_blocks_and_one_wording_with_or_without_passages():
    plain = render_system_prompt(CFG, [TENT])
    both = render_system_prompt(CFG, [TENT, PASSAGE])
    assert "Help center:" not in plain
    assert plain.split("Policies:")[0] == both.split("Policies:")[0]  # the shared head
    assert both.cards == (TENT, PASSAGE)
    assert "Help center:\n" + PASSAGE.render() + "\nProduct information:\n" + TENT.render() in both
    # a prompt kept as text reads back its product card only, whole
    assert [c.title for c in parse_cards(both)] == ["Larch Tent"]
    assert parse_cards(both)[0].facts == parse_cards(plain)[0].facts
