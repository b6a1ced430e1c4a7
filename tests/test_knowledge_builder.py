"""The knowledge builder: grounded answers beside distractor passages, honest no-answers,
and the eval rubric grading both kinds the way the dataset teaches them."""

from __future__ import annotations

from pathlib import Path

from storetune.chat.card import Card, PassageCard
from storetune.config import BuildConfig, StoreConfig
from storetune.dataset.builders.knowledge import build_knowledge
from storetune.dataset.context import BuildContext
from storetune.demo.help_center import help_center_export
from storetune.demo.store_gen import demo_config
from storetune.eval.facts import ProductNames
from storetune.eval.records import Case, StoreFacts
from storetune.eval.refusal import gives_next_step, says_no_info
from storetune.eval.rubric import grade_reply
from storetune.ingest.knowledge import read_knowledge
from storetune.store.knowledge import Passage, passage_key


def demo_passages(tmp_path: Path) -> list[Passage]:
    export = tmp_path / "articles.json"
    export.write_bytes(help_center_export())
    read = read_knowledge(export, "zendesk_hc")
    assert read.dropped["draft"] == 1 and len(read.articles) == 5
    return [
        Passage(passage_key(a.source, a.source_id, i), a.title, c.heading, c.text, a.url)
        for a in read.articles
        for i, c in enumerate(a.chunks)
    ]


def context(tmp_path: Path, **build) -> BuildContext:
    cfg = StoreConfig.model_validate(demo_config(0))
    bcfg = BuildConfig(knowledge=40, knowledge_no_answer=15, **build)
    return BuildContext(cfg, bcfg, [], [], demo_passages(tmp_path))


def shown(cards: list[Card] | None) -> list[PassageCard]:
    return [c for c in cards or [] if isinstance(c, PassageCard)]


def test_answers_quote_the_passage_shown_beside_distractors(tmp_path):
    examples = build_knowledge(context(tmp_path))
    answers = [e for e in examples if e.category == "answer"]
    assert len(answers) == 40 and {e.task for e in examples} == {"knowledge"}
    for ex in answers:
        system, answer = ex.messages[0]["content"], ex.messages[-1]["content"]
        cards = shown(ex.cards)
        target = next(c for c in cards if c.key == ex.source_ids[0])
        # one or two distractors, all from other articles
        assert 2 <= len(cards) <= 3
        assert [c.title for c in cards].count(target.title) == 1
        assert "Help center:" in system and target.render() in system
        quoted = answer.split(" You can read the full article at ")[0]
        first = quoted.split(": ", 1)[-1] if quoted.startswith("Here's what") else quoted
        words = first.replace("Good question! ", "").replace("Happy to help. ", "")
        words = words.replace("From our help center: ", "")
        assert words[:40].rstrip(";") in target.text.replace("\n- ", "; ").replace("- ", "")
    # the target is not always first: the model must find it
    assert len({shown(e.cards).index(next(c for c in shown(e.cards) if c.key == e.source_ids[0]))
                for e in answers}) > 1  # fmt: skip


def test_no_answers_hide_the_passage_and_give_a_next_step(tmp_path):
    cfg = StoreConfig.model_validate(demo_config(0))
    examples = [e for e in build_knowledge(context(tmp_path)) if e.category == "no_answer"]
    assert len(examples) == 15
    for ex in examples:
        assert ex.source_ids[0] not in {c.key for c in shown(ex.cards)}
        asked = ex.source_ids[0]
        titles = {c.title for c in shown(ex.cards)}
        assert not any(asked.startswith(f"zendesk_hc:{t}") for t in titles)
        reply = ex.messages[-1]["content"]
        assert says_no_info(reply) and gives_next_step(reply, cfg.escalation.marker)


def test_no_help_center_no_examples(tmp_path):
    ctx = context(tmp_path)
    ctx.passages = []
    assert build_knowledge(ctx) == []


def test_rubric_grades_knowledge_cases(tmp_path):
    examples = build_knowledge(context(tmp_path))
    store = StoreFacts(marker="[ESCALATE]")
    names = ProductNames([])
    ex = next(e for e in examples if e.category == "no_answer")
    case = Case(
        ex.messages[:-1], ex.messages[-1]["content"], ex.task, ex.category, "test", ex.cards
    )
    assert grade_reply(case, ex.messages[-1]["content"], store, names).verdict == "correct"
    # answering a no-answer question from thin air is wrong
    made_up = "Sure, that takes 3 business days."
    assert grade_reply(case, made_up, store, names).verdict == "wrong"
    # an answer that states the passage's facts is correct; another day count is not
    ex = next(
        e
        for e in examples
        if e.category == "answer" and "10-15 business days" in e.messages[-1]["content"]
    )
    case = Case(
        ex.messages[:-1], ex.messages[-1]["content"], ex.task, ex.category, "test", ex.cards
    )
    assert grade_reply(case, ex.messages[-1]["content"], store, names).verdict == "correct"
    wrong = ex.messages[-1]["content"].replace("10-15", "2-3")
    assert grade_reply(case, wrong, store, names).verdict == "wrong"
