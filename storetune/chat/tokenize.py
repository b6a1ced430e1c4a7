"""Chat conversations -> token ids: one definition for training, validation, eval and serving.

Two rules live here; every stage imports them instead of restating them.

**Message text is only text.** A customer (or an agent) who writes a template's
control strings — ``<|im_start|>system New policy …<|im_end|>`` — must not open a
turn of their own. Before rendering, every control-token string inside a message is
swapped for a placeholder the template passes through as plain text, so in the
rendered conversation every control string left is the template's own. The text
between those is tokenized with the placeholders restored and special tokens split,
i.e. as the characters the customer typed. A conversation without such strings is
rendered and tokenized exactly as it always was (the same ids).

**Only the assistant's replies are trained.** Works from the chat template itself
rather than from generation markers ({% generation %}), which most templates lack:
each assistant turn's tokens are the difference between the conversation rendered up
to that turn with and without the turn. The end-of-turn token after each reply is
trained, so the model learns to stop; whatever the template writes after it
(ChatML's newline) is not, since generation stops before it.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

from storetune.errors import StoretuneError

IGNORE = -100

# Plane-15 private-use characters: not in store text, passed through by templates.
_OPEN, _CLOSE = "\U000f0000", "\U000f0001"
_PLACEHOLDER = re.compile(f"{_OPEN}(\\d+){_CLOSE}")


class TemplateNotPrefixStable(StoretuneError):
    """Rendering one more turn rewrote the text of earlier turns."""


@dataclass
class Tokenized:
    input_ids: list[int]
    labels: list[int]  # IGNORE where no loss

    @property
    def trainable(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE)


@dataclass(frozen=True)
class Piece:
    """What the template adds for one step of the conversation."""

    text: str
    turn: int | None  # index of the assistant message this piece replies with; else None


class ChatText:
    """A tokenizer's control strings, hidden in messages and restored as plain text."""

    def __init__(self, tokenizer) -> None:
        self.tok = tokenizer
        controls = _control_strings(tokenizer)
        self._ids = {s: tokenizer.convert_tokens_to_ids(s) for s in controls}
        # Longest first, so a control string that contains another wins.
        ordered = sorted(controls, key=len, reverse=True)
        self._controls = (
            re.compile("(" + "|".join(map(re.escape, ordered)) + ")") if ordered else None
        )
        self._hidden = [*ordered, _OPEN]  # _OPEN too: a typed one must survive the round trip
        self._hide = re.compile("|".join(map(re.escape, self._hidden)))
        self._firsts = {h[0] for h in self._hidden}  # a cheap test before the regex

    def hide(self, messages: list[dict]) -> list[dict]:
        """Messages with control strings swapped for placeholders (the same list when
        there are none, which is nearly always)."""
        if not any(self._has_control(m) for m in messages):
            return messages
        return [
            {**m, "content": self._hide.sub(self._placeholder, m["content"])}
            if self._has_control(m)
            else m
            for m in messages
        ]

    def _has_control(self, message: dict) -> bool:
        content = message.get("content")
        if not isinstance(content, str) or not any(c in content for c in self._firsts):
            return False
        return self._hide.search(content) is not None

    def _placeholder(self, match: re.Match) -> str:
        return f"{_OPEN}{self._hidden.index(match.group(0))}{_CLOSE}"

    def encode(self, text: str) -> list[int]:
        """Token ids of rendered (hidden) text: the template's control strings become
        control tokens, a message's own text is encoded as text."""
        if not has_placeholders(text):
            return self.tok(text, add_special_tokens=False)["input_ids"]
        ids: list[int] = []
        parts = self._controls.split(text) if self._controls else [text]
        for k, part in enumerate(parts):
            if k % 2:  # the template's own control token
                ids.append(self._ids[part])
            elif part:
                restored = _PLACEHOLDER.sub(lambda m: self._hidden[int(m.group(1))], part)
                ids += self.tok(restored, add_special_tokens=False, split_special_tokens=True)[
                    "input_ids"
                ]
        return ids


def has_placeholders(text: str) -> bool:
    """Whether rendered text holds a hidden control string (the careful encoding path)."""
    return _OPEN in text


def _control_strings(tokenizer) -> list[str]:
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    specials = {t.content for t in added.values() if getattr(t, "special", False)}
    specials.update(getattr(tokenizer, "all_special_tokens", []) or [])
    return sorted(s for s in specials if s)


_CHAT_TEXT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def chat_text(tokenizer) -> ChatText:
    """The tokenizer's ChatText, built once per tokenizer object."""
    try:
        found = _CHAT_TEXT.get(tokenizer)
    except TypeError:  # not weak-referenceable: build it each time
        return ChatText(tokenizer)
    if found is None:
        found = _CHAT_TEXT[tokenizer] = ChatText(tokenizer)
    return found


def render(tokenizer, messages: list[dict], gen_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen_prompt)


def chat_ids(tokenizer, messages: list[dict], gen_prompt: bool = True) -> list[int]:
    """Token ids of a whole conversation as a model reads it (serving, eval, export):
    the prompt for the assistant's next reply unless `gen_prompt` is False."""
    text = chat_text(tokenizer)
    return text.encode(render(tokenizer, text.hide(messages), gen_prompt))


def cut_turns(tokenizer, messages: list[dict]) -> list[Piece]:
    """The rendered conversation cut where the template adds each turn.

    Before an assistant turn the generation prompt is its own (untrained) piece, so
    an assistant piece holds exactly the reply and what closes it.
    """
    pieces: list[Piece] = []
    rendered = ""
    for i, msg in enumerate(messages):
        if msg["role"] == "assistant":
            head = render(tokenizer, messages[:i], gen_prompt=True)
            pieces.append(Piece(head[len(rendered) :], None))
            rendered = head
        full = render(tokenizer, messages[: i + 1], gen_prompt=False)
        if not full.startswith(rendered):
            raise TemplateNotPrefixStable(
                "the model's chat template is not prefix-stable; cannot mask assistant turns",
                hint="use a model whose template renders each turn independently",
            )
        pieces.append(Piece(full[len(rendered) :], i if msg["role"] == "assistant" else None))
        rendered = full
    return pieces


def is_trained(messages: list[dict], piece: Piece) -> bool:
    # OpenAI's fine-tuning format: an assistant turn with "weight": 0 is context only.
    return piece.turn is not None and messages[piece.turn].get("weight", 1) != 0


def trained_length(ids: list[int], eos: int | None) -> int:
    """Tokens of a trained piece that carry loss: up to and including its last
    end-of-turn token (all of them when it has none)."""
    if eos is None or eos not in ids:
        return len(ids)
    return len(ids) - ids[::-1].index(eos)


def tokenize_chat(tokenizer, messages: list[dict], max_length: int) -> Tokenized:
    """Input ids and labels of one conversation: loss on trained replies only."""
    text = chat_text(tokenizer)
    hidden = text.hide(messages)
    ids: list[int] = []
    labels: list[int] = []
    for piece in cut_turns(tokenizer, hidden):
        if not piece.text:
            continue
        new = text.encode(piece.text)
        ids.extend(new)
        if is_trained(messages, piece):
            keep = trained_length(new, tokenizer.eos_token_id)
            labels.extend(new[:keep] + [IGNORE] * (len(new) - keep))
        else:
            labels.extend([IGNORE] * len(new))
    if len(ids) > max_length:  # keep the end: that is where the trained reply is
        ids, labels = ids[-max_length:], labels[-max_length:]
    return Tokenized(ids, labels)
