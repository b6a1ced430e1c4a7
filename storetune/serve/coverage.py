"""Does a draft answer every question the customer asked?

A small model asked two things ("Is it covered by a warranty? Also, how much is it?")
often answers one and stops; the draft reads fine, is grounded and confident, and
would be sent half-done. This check reads the customer's last message for its
questions, finds for each the line of the prompt that answers it (a policy clause, a
product fact, the contact line, a help-center sentence) by embedding similarity, and
asks whether the draft carries that line's facts: one of its numbers, or its content
words. A question whose line the draft leaves out makes the draft unsure (reviewed by
a person, never sent unread); a message with one question, or a question no line
answers well, is not judged here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# A line must be at least this close (cosine, MiniLM) to a question to be its answer;
# below it the question is about something the prompt does not hold, and other checks
# (grounding, hand-over) judge the draft instead.
MIN_SIMILARITY = 0.35
# The line meant is often not the closest ("made of?" is nearer "condition leather" than
# the Material line): the NEAREST closest lines within MARGIN of the best are candidates.
MARGIN = 0.2
NEAREST = 3

_SENTENCE = re.compile(r"[^.?!\n]+[.?!]*")
# A sentence without "?" is still a question when it opens like one (after "also",
# "and", "oh and", "btw"): "Also, what's the price on it"
_ASKING = re.compile(
    r"^(?:(?:also|and|oh|btw|plus|but|so|ok|okay)\b[\s,]*)*"
    r"(?:what|what's|whats|how|which|when|where|who|why|is|are|does|do|did|can|could|"
    r"will|would|should|any)\b",
    re.I,
)
_NUMBER = re.compile(r"\d[\d,.]*\d|\d")
_WORD = re.compile(r"[a-z]{4,}")
_STOP = frozenset(
    """about after also been before being could does done each from have here into just
    like make many more most much must only other over same some such than that their
    them then there these they this those very what when where which while will with
    within would your yours please thanks right now order orders store""".split()
)


@dataclass
class Line:
    """One statement of the prompt a question may be answered from."""

    text: str  # what is embedded
    value: str  # the part whose facts an answer repeats
    product: str = ""  # the product card it comes from, if any


def questions(message: str) -> list[str]:
    """The customer's questions: each sentence ending in "?" or opening like a question,
    with at least two words ("Seriously?" is not a question to answer)."""
    found = [q.strip(" ,;:-\t") for q in _SENTENCE.findall(message)]
    found = [q for q in found if q.endswith("?") or _ASKING.match(q)]
    return [q for q in found if len(_WORD.findall(q.lower())) + len(_NUMBER.findall(q)) >= 2]


def prompt_lines(system_prompt: str) -> list[Line]:
    """The statements after the prompt's instructions: the contact line, each policy
    clause, each product fact, each passage sentence. A product's facts are embedded
    without its title, so "care instructions for it?" finds the care lines, not
    whichever line names the product."""
    body = system_prompt[system_prompt.find("Contact:") :] if "Contact:" in system_prompt else ""
    lines: list[Line] = []
    title = ""
    for raw in body.splitlines():
        text = raw.strip().lstrip("-* ").strip()
        if not text or text.endswith(":") and len(text.split()) <= 3:
            continue  # "Policies:", "Product information:"
        if raw.lstrip().startswith("* "):
            title = re.sub(r"\s*\([^()]*\)\s*$", "", text)
            continue  # its facts follow
        if not raw.startswith("  "):
            title = ""  # a policy line or a passage
        if text.startswith("Contact:"):
            # the line is addresses and numbers; say what they are for the embedding
            lines.append(Line("our email, phone number and phone hours", text))
            continue
        for part in re.split(r";\s+|(?<=\.)\s+(?=[A-Z])", text):
            part = part.strip()
            if len(part) > 3:
                key, _, rest = part.partition(":")
                value = rest if rest and len(key.split()) <= 4 else part
                lines.append(Line(part, value, title))
    return lines


def _facts(text: str, ignore: str = "") -> tuple[set[str], set[str]]:
    """(numbers, content words) of a text, leaving out the words of `ignore`."""
    lower = text.lower()
    numbers = {n.replace(",", "") for n in _NUMBER.findall(lower)}
    words = {w.rstrip("s") for w in _WORD.findall(lower) if w not in _STOP}
    return numbers, words - _facts(ignore)[1] if ignore else words


def carries(draft: str, line: Line) -> bool:
    """The draft repeats one of the line's numbers, or (a line without numbers) one of
    its content words (two of a longer list)."""
    # the product's own name is in most drafts about it: "leather" of "Leather Boot"
    # says nothing about "condition leather" being answered
    numbers, words = _facts(line.value, line.product)
    d_numbers, d_words = _facts(draft)
    if numbers:
        return bool(numbers & d_numbers)
    if not words:
        return True  # nothing to look for: not judged
    return len(words & d_words) >= (1 if len(words) <= 5 else 2)


def unanswered(
    texts: list[str],
    draft: str,
    system_prompt: str,
    embed: Callable[[list[str]], np.ndarray],
    min_similarity: float | None = None,
) -> str | None:
    """Why the draft must be read before it is sent: a question of the last message
    (`texts` are the customer's turns, oldest first) with two or more has its answer in
    the prompt and the draft leaves it out. None otherwise."""
    floor = MIN_SIMILARITY if min_similarity is None else min_similarity
    asked = questions(texts[-1]) if texts else []
    if len(asked) < 2 or not draft.strip():
        return None
    lines = _about_the_product(prompt_lines(system_prompt), " ".join(texts), embed)
    if not lines:
        return None
    vectors = embed(asked + [line.text for line in lines])
    similarity = vectors[: len(asked)] @ vectors[len(asked) :].T
    bests = [int(np.argmax(row)) for row in similarity]
    for i, question in enumerate(asked):
        best = float(similarity[i].max())
        if best < floor:
            continue
        # another question's own line does not answer this one ("weight? what fabric is
        # it" answered with the fabric only must not pass on the Material line)
        taken = {b for k, b in enumerate(bests) if k != i and b != bests[i]}
        order = [j for j in np.argsort(-similarity[i]) if j not in taken][:NEAREST]
        near = [lines[j] for j in order if similarity[i, j] >= best - MARGIN]
        if not any(carries(draft, ln) for ln in near):
            return f"the draft does not answer every question: nothing on '{question}'"
    return None


def _about_the_product(
    lines: list[Line], customer: str, embed: Callable[[list[str]], np.ndarray]
) -> list[Line]:
    """The policy lines and the facts of the one product the customer's words are
    closest to (the prompt may show several; "is it waterproof?" means the one asked
    about, and its facts are embedded without the title)."""
    titles = list(dict.fromkeys(ln.product for ln in lines if ln.product))
    if len(titles) > 1:
        vectors = embed([customer, *titles])
        chosen = titles[int(np.argmax(vectors[1:] @ vectors[0]))]
        lines = [ln for ln in lines if ln.product in ("", chosen)]
    return lines
