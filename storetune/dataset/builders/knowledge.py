"""Help-center answers: grounded in the passage shown, or 'I don't have that'.

`knowledge/answer` examples show the passage a question is about beside one or two
distractor passages from other articles, in random order, and answer with that
passage's own sentences, so the model learns to pick the passage that answers and
quote it rather than the first one. `knowledge/no_answer` examples ask about a passage
the prompt does not show (only distractors) and answer honestly with a next step.
Prompts are rendered by the one renderer, with a few policy sections as serving
shows them; questions come from the passage's heading and article title, so any
store's help center yields them.
"""

from __future__ import annotations

import random
import re

from storetune.chat.card import PassageCard
from storetune.chat.prompt import policy_sections, render_system_prompt
from storetune.dataset.builders.grounded import fill
from storetune.dataset.builders.phrasing import keep_words, next_step, phrasing_family, pick, vary
from storetune.dataset.context import BuildContext
from storetune.dataset.example import Example
from storetune.store.knowledge import Passage

TASK = "knowledge"
MAX_ANSWER_CHARS = 320  # two or three sentences: what a support reply quotes

# {topic}: the heading (or the title when the passage has none); {article}: the title.
_QUESTIONS = [
    "Can you tell me about {topic}?",
    "What does your {article} say about {topic}?",
    "I have a question about {topic} - how does that work?",
    "Where can I find info on {topic}?",
    "quick q about {topic}",
    "Could you explain {topic} for me?",
    "I read your {article} page but I'm still unsure about {topic}.",
    "Do you have any guidance on {topic}?",
]
_LEADS = [
    "Here's what our {article} says: ",
    "Good question! ",
    "Happy to help. ",
    "",
    "From our help center: ",
]
_NO_ANSWER = [
    "I don't have information about {topic} in front of me, so I'd rather not guess.",
    "I'm sorry, I don't have details on {topic} here.",
    "That isn't mentioned in the help articles I can see, so I can't confirm it.",
]


def _topic(p: Passage) -> str:
    topic = p.heading or p.title
    return topic if topic.isupper() else topic[:1].lower() + topic[1:]


def _sentences(text: str) -> str:
    """The passage's opening sentences, whole, within MAX_ANSWER_CHARS."""
    out = ""
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text.replace("\n- ", "; ")):
        sentence = sentence.strip().lstrip("- ")
        if not sentence:
            continue
        if out and len(out) + 1 + len(sentence) > MAX_ANSWER_CHARS:
            break
        out = f"{out} {sentence}".strip()
    return out


def _distractors(passages: list[Passage], p: Passage, n: int, rng: random.Random):
    others = [q for q in passages if q.title != p.title]
    return rng.sample(others, min(n, len(others)))


def _system(ctx: BuildContext, shown: list[Passage], rng: random.Random):
    # A few policy sections, as a focused serving prompt has: the passage is not the
    # only text there, and the policies stay in sight.
    names = list(dict.fromkeys(name for name, _ in policy_sections(ctx.cfg.policies)))
    sections = rng.sample(names, min(len(names), rng.randint(0, 2)))
    cards = [PassageCard.from_passage(q) for q in shown]
    return render_system_prompt(ctx.cfg, cards, sections), cards


def _question(p: Passage, rng: random.Random) -> tuple[str, str]:
    template = pick(rng, _QUESTIONS)
    text = template.format(topic=_topic(p), article=p.title)
    return vary(text, rng, keep_words(p.title, p.heading)), template


def _answer_one(ctx: BuildContext, passages: list[Passage], rng: random.Random) -> Example:
    p = rng.choice(passages)
    shown = [p, *_distractors(passages, p, rng.randint(1, 2), rng)]
    rng.shuffle(shown)
    question, template = _question(p, rng)
    answer = pick(rng, _LEADS).format(article=p.title) + _sentences(p.text)
    if p.url and rng.random() < 0.5:
        answer += f" You can read the full article at {p.url}."
    return _example(ctx, shown, question, answer, "answer", p, template, rng)


def _no_answer_one(ctx: BuildContext, passages: list[Passage], rng: random.Random) -> Example:
    p = rng.choice(passages)
    shown = _distractors(passages, p, rng.randint(1, 2), rng)
    question, template = _question(p, rng)
    answer = pick(rng, _NO_ANSWER).format(topic=_topic(p)) + " " + next_step(ctx.cfg, rng)
    return _example(ctx, shown, question, answer, "no_answer", p, template, rng)


def _example(ctx, shown, question, answer, category, p, template, rng) -> Example:
    system, cards = _system(ctx, shown, rng)
    return Example(
        messages=[
            {"role": "system", "content": system},
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ],
        task=TASK,
        category=category,
        builder="knowledge",
        source_ids=[p.key],
        group=f"knowledge:{p.key}",
        family=phrasing_family(template),
        cards=list(system.cards or cards),
    )


def build_knowledge(ctx: BuildContext) -> list[Example]:
    """`knowledge` examples (counts: build.knowledge answers, build.knowledge_no_answer)."""
    passages = ctx.passages
    if len({p.title for p in passages}) < 2:  # a distractor must come from another article
        return []
    seen: set[str] = set()
    answers = fill(
        ctx.bcfg.knowledge, lambda r: _answer_one(ctx, passages, r), ctx.rng("knowledge"), seen
    )
    none = fill(
        ctx.bcfg.knowledge_no_answer,
        lambda r: _no_answer_one(ctx, passages, r),
        ctx.rng("knowledge_no_answer"),
        seen,
    )
    return answers + none
