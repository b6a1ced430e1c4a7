"""Focused prompts: each training example sees only the policy lines its kind needs.

A 135M model has to find one line among twenty in the whole policy block, and ~90% of
training compute goes to that block. Serving gives the draft only the sections the
router picked (storetune.kinds.focus); training gives each example the sections of
its own kind plus a few unrelated ones, so the model learns to answer from the line
that fits rather than from the only line there. Policies stay in the prompt: a
changed return window reaches the next reply without retraining.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict

from storetune.chat.prompt import policy_sections, render_system_prompt
from storetune.config import BuildConfig, StoreConfig
from storetune.dataset.example import Example
from storetune.kinds import kind_of, sections_for

_CONTEXT_HEAD = "Product information:\n"


# A section a kind's replies draw on this often joins the kind's sections.
USAGE_SHARE = 0.15
_WORD = re.compile(r"[a-z0-9$€£][a-z0-9$€£.,'-]*[a-z0-9]|[0-9]")
_COMMON = frozenset(
    "the and for with your you our are can not any all that this from within days day "
    "item items order orders free full will have has been into only once more than them "
    "their what when where which who how after before just also other team reply email "
    "support hand then they customer store every being using need same cannot can't "
    "without current between comes note line down never past asks ships sizes".split()
)


def distinctive_words(cfg: StoreConfig) -> dict[str, set[str]]:
    """Per policy section, the words no other section uses (numbers, amounts, names)."""
    words: dict[str, set[str]] = defaultdict(set)
    for name, line in policy_sections(cfg.policies):
        words[name] |= _words(line)
    counts = Counter(w for ws in words.values() for w in ws)
    return {name: {w for w in ws if counts[w] == 1} for name, ws in words.items()}


def sections_used(reply: str, distinctive: dict[str, set[str]], need: int = 2) -> list[str]:
    """The sections whose distinctive words a reply repeats (at least `need` of them)."""
    said = _words(reply)
    return [name for name, ws in distinctive.items() if ws and len(said & ws) >= min(need, len(ws))]


def kind_sections(examples: list[Example], cfg: StoreConfig) -> dict[str, list[str]]:
    """Each kind's sections: the table's own, plus those its replies draw on in at least
    USAGE_SHARE of its examples (a store whose agents answer discount questions with the
    loyalty programme gets the loyalty line for them). Serving uses the same table."""
    distinctive = distinctive_words(cfg)
    seen: Counter[str] = Counter()
    used: dict[str, Counter[str]] = defaultdict(Counter)
    for ex in examples:
        kind = kind_of(ex.task, ex.category)
        if kind is None or not ex.messages or ex.messages[-1]["role"] != "assistant":
            continue
        seen[kind] += 1
        used[kind].update(sections_used(ex.messages[-1]["content"], distinctive))
    table = {}
    for kind in sorted(seen):
        frequent = [s for s, n in used[kind].most_common() if n >= USAGE_SHARE * seen[kind]]
        table[kind] = list(dict.fromkeys(sections_for([kind]) + frequent))
    return table


def focus_examples(
    examples: list[Example],
    cfg: StoreConfig,
    bcfg: BuildConfig,
    splits: list[str] | None = None,
) -> dict[str, list[str]] | None:
    """Re-render each support-style example's system prompt with its kind's sections,
    the sections its own reply draws on (so no reply teaches a fact the prompt lacks)
    and a few distractors. Returns the kind → sections table serving must use, or None
    when `policies: full` keeps the whole block (catalog tasks always keep theirs).

    Distractors go to training examples only (`splits` given): held-out prompts carry
    just their kind's sections, as serving renders them when the router reads the kind."""
    if bcfg.policies == "full":
        return None
    # learned from training replies only: held-out answers must not shape the prompts
    train = (
        examples
        if splits is None
        else [e for e, s in zip(examples, splits, strict=True) if s == "train"]
    )
    table = kind_sections(train, cfg)
    distinctive = distinctive_words(cfg)
    available = list(distinctive)
    rng = random.Random(f"focus:{bcfg.seed}")
    for n, ex in enumerate(examples):
        kind = kind_of(ex.task, ex.category)
        if kind is None or not ex.messages or ex.messages[0]["role"] != "system":
            continue
        distractors = bcfg.distractor_sections if splits is None or splits[n] == "train" else 0
        own = table.get(kind, []) + sections_used(ex.messages[-1]["content"], distinctive)
        own = list(dict.fromkeys(own))
        sections = with_distractors(own, available, distractors, rng)
        context = ex.cards if ex.cards is not None else _context_text(ex.messages[0]["content"])
        ex.messages[0] = {**ex.messages[0], "content": render_system_prompt(cfg, context, sections)}
    return table


def with_distractors(
    sections: list[str], available: list[str], n: int, rng: random.Random
) -> list[str]:
    """The kind's own sections plus n others drawn at random from the store's."""
    others = [s for s in available if s not in sections]
    return sections + rng.sample(others, min(n, len(others)))


def _words(text: str) -> set[str]:
    return {
        w
        for w in _WORD.findall(text.lower())
        if w not in _COMMON and (len(w) > 3 or w[0].isdigit() or w[0] in "$€£")
    }


def _context_text(system: str) -> str | None:
    """The catalog text of a prompt rendered from text (no cards known)."""
    _, found, tail = system.partition(_CONTEXT_HEAD)
    return tail if found else None
