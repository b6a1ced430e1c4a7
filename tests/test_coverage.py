"""The coverage check: a draft that leaves out one of the customer's questions is not
sent unread (storetune.serve.coverage), with the bundled MiniLM as serving uses it."""

from __future__ import annotations

import pytest

from storetune.serve.coverage import Line, carries, prompt_lines, questions, unanswered
from storetune.serve.routing import Signals, Thresholds, decide

PROMPT = """You are the customer support assistant of Pine & Peak.
Only state facts found below.
Contact: help@pine.example.com, +1 (555) 010-0200 (Mon–Fri 9am–5pm).
Policies:
- Returns: within 30 days of delivery, unused; refunds to the original payment method within 5 business days.
- Shipping to Canada: $19.95, 7-12 business days.
Product information:
* Larch Trail Shorts (Shorts)
  price: $59.00
  options: Size (S, M, L)
  stock: all in stock
  Material: Recycled nylon ripstop; Care: Machine wash cold, hang to dry; Warranty: 1-year limited warranty
* Basin Rain Shell (Jackets)
  price: $189.00
  stock: all in stock
  Material: 3-layer nylon; Care: Wash with a technical cleaner; Warranty: Lifetime warranty
"""


@pytest.fixture(scope="module")
def embed():
    from storetune.retrieval.embed import MiniLMEmbedder

    return MiniLMEmbedder().embed


def test_questions_are_the_sentences_asking_something():
    msg = "Hi!\n\nSeriously? Is the Larch covered by a warranty? Also, care instructions for it?"
    assert questions(msg) == [
        "Is the Larch covered by a warranty?",
        "Also, care instructions for it?",
    ]
    # a sentence opening like a question is one without its "?"
    assert questions("warranty for the Larch?? Also, what's the price on it") == [
        "warranty for the Larch??",
        "Also, what's the price on it",
    ]
    assert questions("Thanks. The shorts fit well.") == []


def test_prompt_lines_are_clauses_and_facts_with_their_product():
    lines = prompt_lines(PROMPT)
    texts = [ln.text for ln in lines]
    assert "refunds to the original payment method within 5 business days." in texts
    care = next(ln for ln in lines if ln.text.startswith("Care: Machine"))
    assert (
        care.product == "Larch Trail Shorts"
        and care.value.strip() == "Machine wash cold, hang to dry"
    )
    assert all(not t.startswith("You are") for t in texts)  # instructions are not facts
    assert carries(
        "It has a 1-year limited warranty.", next(ln for ln in lines if "1-year" in ln.text)
    )
    assert not carries("It costs $59.00.", next(ln for ln in lines if "1-year" in ln.text))


def test_a_half_answered_two_part_question_is_caught(embed):
    ask = ["Is the Larch Trail Shorts covered by a warranty? Also, how should I wash it?"]
    half = "Hi there, the Larch Trail Shorts have a 1-year limited warranty."
    whole = half + " Machine wash cold and hang them to dry."
    why = unanswered(ask, half, PROMPT, embed)
    assert why is not None and "how should I wash it" in why
    assert unanswered(ask, whole, PROMPT, embed) is None


def test_the_policy_part_of_a_mixed_question_is_checked_too(embed):
    ask = ["What's the price of the Basin Rain Shell? And how long do refunds take?"]
    assert unanswered(ask, "The Basin Rain Shell is $189.00.", PROMPT, embed) is not None
    both = "The Basin Rain Shell is $189.00. Refunds reach your card within 5 business days."
    assert unanswered(ask, both, PROMPT, embed) is None


def test_an_answer_to_the_other_question_does_not_count_twice(embed):
    # the Material line is near "what does it weigh?" too; it answers the other question
    ask = ["How much does the Basin Rain Shell weigh? What fabric is it?"]
    prompt = PROMPT.replace("Material: 3-layer nylon;", "Material: 3-layer nylon; Weight: 410 g;")
    assert unanswered(ask, "It is made of 3-layer nylon.", prompt, embed) is not None
    assert unanswered(ask, "It weighs 410 g and is made of 3-layer nylon.", prompt, embed) is None


def test_one_question_or_one_without_an_answer_in_the_prompt_is_not_judged(embed):
    assert unanswered(["How much is the Basin Rain Shell?"], "Hi!", PROMPT, embed) is None
    # the second question has no line near it: grounding and hand-over judge that draft
    ask = ["How much is the Basin Rain Shell? Who won the match last night?"]
    assert unanswered(ask, "It is $189.00.", PROMPT, embed) is None


def test_the_products_own_name_is_no_answer():
    # "leather" is in the title: a draft naming the boot says nothing of its care
    care = Line("Care: condition leather", " condition leather", "Ember Leather Boot")
    assert not carries("The Ember Leather Boot is in stock.", care)
    assert carries("Condition the leather now and then.", care)


def test_the_earlier_turn_names_the_product_a_pronoun_means(embed):
    turns = ["Tell me about the Basin Rain Shell.", "What's its warranty? And what is it made of?"]
    right = "It has a lifetime warranty and is made of 3-layer nylon."
    wrong_product = "It has a 1-year limited warranty and is made of recycled nylon ripstop."
    assert unanswered(turns, right, PROMPT, embed) is None
    assert unanswered(turns, wrong_product, PROMPT, embed) is not None


def test_an_unanswered_question_keeps_a_draft_from_being_sent():
    sure = Signals(False, -0.05, -0.5, "stop")
    assert decide(sure, Thresholds()).confidence == "high"
    sure.unanswered = "the draft does not answer every question: nothing on 'care?'"
    d = decide(sure, Thresholds())
    assert d.confidence == "medium" and sure.unanswered in d.reasons
