"""Validation of chat JSONL: fail fast on what would waste a training run, warn on the rest.

Works on any OpenAI-format chat JSONL (`{"messages": [...]}` per line), not only on
files storetune built. Errors stop `storetune build` and `storetune train`; warnings
are reported. Token figures use the real tokenizer and chat template, measured the
way training masks them (storetune.chat.tokenize: the same cuts, the same end-of-turn
rule, the same treatment of control strings inside messages): the conversation is
cut into the pieces the template adds turn by turn, and only assistant pieces (the
reply and its end-of-turn token) are trained.

Speed: the pieces of a conversation shape (its sequence of roles) are found once by
rendering the template over sentinel contents; each example then only substitutes
its texts. Pieces without per-example text and system-prompt pieces are tokenized
once and cached (the system prompt is shared by design); the rest is tokenized in
batches with the fast tokenizer. A sample of examples is checked against
tokenize_chat itself; on any mismatch the exact slow path is used for every example.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from storetune.chat.tokenize import (
    TemplateNotPrefixStable,
    chat_ids,
    chat_text,
    cut_turns,
    has_placeholders,
    tokenize_chat,
    trained_length,
)
from storetune.config import TrainConfig
from storetune.dataset import dedup
from storetune.errors import StoretuneError
from storetune.facts import CARD, EMAIL, PHONES, card_ok, phone_ok
from storetune.io import too_deep
from storetune.progress import progress_group

ROLES = ("system", "user", "assistant")
SPLIT_FILES = ("train", "val", "test")
# Measured: LoRA training of the default model (SmolLM2-135M) on 2 CPU cores with a
# ~900-token policy prompt; the train_step benchmark gives 450-580 tok/s.
DEFAULT_TOKENS_PER_SECOND = 450.0
DEFAULT_EPOCHS = 3.0  # TrainConfig's default
DEFAULT_MAX_LENGTH = 2048  # TrainConfig.max_length: training cuts longer examples
MIN_EXAMPLES = 500
MIN_PER_CLASS = 10
DOMINANT_SHARE = 0.6
_BATCH = 2048

# code -> (severity, what to do). The order is the order of the report table.
CHECKS: dict[str, tuple[str, str]] = {
    "invalid_json": ("error", "fix or delete the line; each line must be one JSON object"),
    "missing_messages": ("error", 'each line needs a non-empty "messages" list'),
    "bad_message": (
        "error",
        'each message is an object with a string "content" (and "weight" 0 or 1 if given)',
    ),
    "unknown_role": ("error", "use only the roles system, user and assistant"),
    "empty_content": ("error", "give every message text, or remove the message"),
    "no_assistant": ("error", "add the assistant reply the model should learn"),
    "template_error": ("error", "reorder the turns the way the model's chat template accepts"),
    "too_long": (
        "error",
        "shorten the system prompt or context, split the conversation, or raise --max-length",
    ),
    "truncated": (
        "warning",
        "training keeps the last train.max_length tokens: shorten the prompt or raise it",
    ),
    "zero_trainable": ("error", "add an assistant turn that is trained (weight 1)"),
    "no_eos": ("error", "use a model whose chat template ends assistant turns with EOS"),
    "exact_duplicate": ("warning", "remove the copies; they over-weight one example"),
    "near_duplicate": ("warning", "keep one, or vary the wording"),
    "leakage_exact": ("warning", "move the example to one split only (storetune build does)"),
    "leakage_near": ("warning", "keep near duplicates in one split (storetune build does)"),
    "placeholder": ("warning", "replace the template/placeholder text with a real answer"),
    "pii": ("warning", "scrub it (storetune ingest does), unless it is the store's own contact"),
    "class_imbalance": ("warning", "rebalance the counts in store.yaml `build:`"),
    "too_few": ("warning", "add data: fine-tuning usually needs at least 500 examples"),
}


@dataclass
class Finding:
    code: str
    message: str
    locations: dict[str, list[int]] = field(default_factory=dict)  # file -> 1-based lines

    @property
    def severity(self) -> str:
        return CHECKS[self.code][0]

    @property
    def hint(self) -> str:
        return CHECKS[self.code][1]

    def where(self, limit: int = 6) -> str:
        parts = []
        for name, lines in self.locations.items():
            shown = ", ".join(map(str, lines[:limit]))
            more = f" (+{len(lines) - limit} more)" if len(lines) > limit else ""
            parts.append(f"{name}:{shown}{more}" if lines else name)
        return "; ".join(parts)

    def to_dict(self) -> dict:
        first = next(iter(self.locations.items()), (None, []))
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": first[0],
            "lines": first[1],
            "locations": self.locations,
            "hint": self.hint,
        }


@dataclass
class TokenStats:
    examples: int
    tokens: int
    trainable: int
    p50: int
    p95: int
    max: int

    @classmethod
    def of(cls, lengths: list[int], trainable: list[int]) -> TokenStats:
        s = sorted(lengths)

        def pct(q: float) -> int:
            return s[min(len(s) - 1, int(q * len(s)))] if s else 0

        return cls(len(s), sum(s), sum(trainable), pct(0.5), pct(0.95), s[-1] if s else 0)


@dataclass
class ValidationReport:
    files: dict[str, str]  # label -> path
    examples: dict[str, int]  # label -> well-formed examples
    findings: list[Finding] = field(default_factory=list)
    stats: dict[str, TokenStats] = field(default_factory=dict)
    leakage: dict[str, int] = field(default_factory=lambda: {"exact": 0, "near": 0})
    duplicates: dict[str, int] = field(default_factory=lambda: {"exact": 0, "near": 0})
    preview: list[tuple[str, bool]] = field(default_factory=list)  # (text, trained)
    estimate: dict | None = None
    model: str | None = None
    max_length: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, int]:
        """Number of examples (lines) each check flagged, in CHECKS order."""
        c: Counter[str] = Counter()
        for f in self.findings:
            c[f.code] += max(1, sum(len(v) for v in f.locations.values()))
        return {k: c[k] for k in CHECKS if c[k]}

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "flagged_by_check": self.counts(),
            "files": self.files,
            "examples": self.examples,
            "stats": {k: v.__dict__ for k, v in self.stats.items()},
            "leakage": self.leakage,
            "duplicates": self.duplicates,
            "estimate": self.estimate,
            "model": self.model,
            "max_length": self.max_length,
            "notes": self.notes,
            "preview": [{"text": t, "trained": tr} for t, tr in self.preview],
            "findings": [f.to_dict() for f in self.findings],
        }


# --- the model --------------------------------------------------------------------


@dataclass
class ModelTokenizer:
    name: str
    tokenizer: object
    context: int | None  # the model's maximum positions, when its config says
    eos_ids: frozenset[int]


def load_model_tokenizer(model: str | None = None) -> ModelTokenizer:
    """Tokenizer, context length and end-of-sequence ids of a base model."""
    from storetune.runtime import resolve_base_model

    base = resolve_base_model(model)
    if (base.path / "tokenizer.json").exists():
        # The fast tokenizer class alone: AutoTokenizer imports torch (~4 s, ~300 MB)
        from transformers import PreTrainedTokenizerFast

        tok = PreTrainedTokenizerFast.from_pretrained(base.path)
    else:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(base.path)
    if not getattr(tok, "chat_template", None):
        raise StoretuneError(
            f"{base.path}: the tokenizer has no chat template",
            hint="use an instruction-tuned model, or add a chat_template to tokenizer_config.json",
        )
    return ModelTokenizer(base.name, tok, _context(base.path), _eos_ids(tok, base.path))


def _context(model_dir: Path) -> int | None:
    try:
        cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        if isinstance(cfg.get(key), int):
            return cfg[key]
    return None


def _eos_ids(tokenizer, model_dir: Path | None = None) -> frozenset[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    gen = model_dir / "generation_config.json" if model_dir else None
    try:  # chat models often stop on an end-of-turn id besides EOS
        value = json.loads(gen.read_text(encoding="utf-8")).get("eos_token_id") if gen else None
    except (OSError, ValueError):
        value = None
    ids.update(value if isinstance(value, list) else [value] if isinstance(value, int) else [])
    return frozenset(ids)


# --- reading and structure ---------------------------------------------------------


@dataclass
class _Row:
    file: str
    line: int  # 1-based line in the file
    index: int  # 0-based among non-blank lines, as meta.jsonl counts
    messages: list[dict]


def _message_problem(i: int, m: object) -> tuple[str, str] | None:
    if not isinstance(m, dict) or "role" not in m:
        return "bad_message", f"message {i + 1} is not an object with a role"
    if m["role"] not in ROLES:
        return "unknown_role", f"message {i + 1} has role {m['role']!r}"
    content = m.get("content")
    if content is not None and not isinstance(content, str):
        return "bad_message", f"message {i + 1} ({m['role']}): content is not a string"
    if not content or not content.strip():
        return "empty_content", f"message {i + 1} ({m['role']}) has no text"
    if "weight" in m and m["weight"] not in (0, 1):
        return "bad_message", f"message {i + 1}: weight must be 0 or 1, not {m['weight']!r}"
    return None


def _row_problem(obj: object) -> tuple[str, str] | None:
    if not isinstance(obj, dict) or "messages" not in obj:
        return "missing_messages", 'no "messages" key'
    msgs = obj["messages"]
    if not isinstance(msgs, list) or not msgs:
        return "missing_messages", '"messages" is not a non-empty list'
    for i, m in enumerate(msgs):
        problem = _message_problem(i, m)
        if problem:
            return problem
    if not any(m["role"] == "assistant" for m in msgs):
        return "no_assistant", "no assistant message: nothing to train on"
    return None


MAX_DEPTH = 32  # a chat line nests under 6 levels; the checks walk what it holds


class _Reader:
    """Reads JSONL files into rows, recording a finding per malformed line."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        self._systems: dict[str, str] = {}  # one string object per distinct system prompt

    def read(self, label: str, path: Path, advance: Callable[[int], None]) -> list[_Row]:
        rows: list[_Row] = []
        index = 0
        try:
            f = path.open(encoding="utf-8-sig")  # a BOM from a Windows editor is fine
        except OSError as e:
            raise StoretuneError(f"{path}: cannot read ({e.strerror})") from None
        with f:
            try:
                for n, raw in enumerate(f, 1):
                    advance(len(raw.encode("utf-8")) if not raw.isascii() else len(raw))
                    if raw.strip():
                        row = self._parse(label, n, index, raw)
                        index += 1
                        if row:
                            rows.append(row)
            except UnicodeDecodeError as e:
                raise StoretuneError(
                    f"{path}: not UTF-8 text ({e.reason})", hint="save the file as UTF-8"
                ) from None
        return rows

    def _parse(self, label: str, n: int, index: int, raw: str) -> _Row | None:
        try:
            obj = json.loads(raw.strip())  # so the column is the line's, not past its end
        except json.JSONDecodeError as e:
            self._flag(label, n, "invalid_json", f"not valid JSON: {e.msg} at column {e.colno}")
            return None
        except (ValueError, RecursionError) as e:  # ~1000 levels deep, a 5000-digit number
            self._flag(label, n, "invalid_json", f"JSON that can't be read ({type(e).__name__})")
            return None
        if too_deep(obj, MAX_DEPTH):
            self._flag(label, n, "invalid_json", f"JSON nested more than {MAX_DEPTH} levels deep")
            return None
        problem = _row_problem(obj)
        if problem:
            self._flag(label, n, *problem)
            return None
        msgs = obj["messages"]
        for m in msgs:
            if m["role"] == "system":
                m["content"] = self._systems.setdefault(m["content"], m["content"])
        return _Row(label, n, index, msgs)

    def _flag(self, label: str, n: int, code: str, message: str) -> None:
        self.findings.append(Finding(code, message, {label: [n]}))


# --- tokens ------------------------------------------------------------------------


def _sentinel(i: int) -> str:
    return f"\ue000{i}\ue001"


_SENTINEL = re.compile("\ue000(\\d+)\ue001")
_LINE_CUT = re.compile(r"(?<=\S\n)(?=\S)")  # after a newline between two non-spaces


@dataclass
class _Piece:
    template: str  # text with sentinels where message contents go
    trained: bool
    turn: int | None  # the assistant message a trained piece belongs to
    cacheable: bool  # no per-example text, or only system prompts
    # What the template writes after an assistant turn's end-of-turn token (ChatML's
    # newline): tokenize_chat leaves it untrained, since generation stops before it.
    after_eos_tokens: int = 0
    after_eos_chars: int = 0
    ends_with_eos: bool = True
    parts: list = field(default_factory=list)  # literal, slot, literal, … (split template)

    def __post_init__(self) -> None:
        self.parts = _SENTINEL.split(self.template)
        self.parts[1::2] = [int(x) for x in self.parts[1::2]]

    def fill(self, messages: list[dict]) -> str:
        if len(self.parts) == 1:
            return self.parts[0]
        return "".join(messages[x]["content"] if k % 2 else x for k, x in enumerate(self.parts))


@dataclass
class _Shape:
    pieces: list[_Piece] = field(default_factory=list)
    error: str | None = None

    @property
    def bad_eos_turns(self) -> list[int]:
        return [p.turn for p in self.pieces if p.trained and not p.ends_with_eos]


class ChatTokens:
    """Token counts of chat examples under one tokenizer's chat template."""

    def __init__(self, tokenizer, eos_ids: frozenset[int] | None = None) -> None:
        self.tok = tokenizer
        self.chat = chat_text(tokenizer)
        self.eos_ids = eos_ids if eos_ids is not None else _eos_ids(tokenizer)
        self._shapes: dict[tuple[str, ...], _Shape] = {}
        self._cached: dict[tuple, int] = {}  # system-prompt piece -> tokens
        self._lines: dict[str, int] = {}  # one line of a system prompt -> tokens
        self._line_checks = 0  # system pieces checked whole against their lines
        self.by_lines = True
        backend = getattr(tokenizer, "backend_tokenizer", None)
        self._fast = getattr(backend, "encode_batch_fast", None)

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids of pieces filled with hidden message texts (see fill_messages)."""
        if any(has_placeholders(t) for t in texts):  # a message wrote control strings
            return [self.chat.encode(t) for t in texts]
        if self._fast is not None:
            return [e.ids for e in self._fast(texts, add_special_tokens=False)]
        return self.tok(texts, add_special_tokens=False)["input_ids"]

    def fill_messages(self, messages: list[dict]) -> list[dict]:
        """The messages whose texts fill the pieces: control strings hidden, as
        tokenize_chat hides them (the same list for nearly every example)."""
        return self.chat.hide(messages)

    def shape(self, roles: tuple[str, ...]) -> _Shape:
        if roles not in self._shapes:
            self._shapes[roles] = self._build_shape(roles)
        return self._shapes[roles]

    def _build_shape(self, roles: tuple[str, ...]) -> _Shape:
        # tokenize_chat's own cuts, over sentinel contents.
        msgs = [{"role": r, "content": _sentinel(i)} for i, r in enumerate(roles)]
        shape = _Shape()
        try:
            cuts = cut_turns(self.tok, msgs)
        except TemplateNotPrefixStable:
            shape.error = "the chat template is not prefix-stable: turns cannot be masked"
            return shape
        except Exception as e:  # templates raise on shapes they refuse (jinja raise_exception)
            shape.error = f"the chat template refuses this order of roles: {e}"
            return shape
        shape.pieces = [self._piece(cut.text, roles, cut.turn) for cut in cuts]
        return shape

    def _piece(self, template: str, roles: tuple[str, ...], turn: int | None) -> _Piece:
        slots = [int(s) for s in _SENTINEL.findall(template)]
        piece = _Piece(template, turn is not None, turn, all(roles[s] == "system" for s in slots))
        if turn is not None:
            self._measure_tail(piece)
        return piece

    def _measure_tail(self, piece: _Piece) -> None:
        """Where the reply's end-of-turn token is in what the template adds after it."""
        parts = piece.template.rsplit(_sentinel(piece.turn), 1)
        tail = parts[1] if len(parts) == 2 else ""
        ids = self.encode([tail])[0] if tail else []
        eos = self.tok.eos_token_id
        piece.after_eos_tokens = len(ids) - trained_length(ids, eos)
        if piece.after_eos_tokens:
            token = self.tok.convert_ids_to_tokens(eos)
            piece.after_eos_chars = len(tail) - tail.rindex(token) - len(token)
        kept = ids[: len(ids) - piece.after_eos_tokens]
        piece.ends_with_eos = bool(kept) and kept[-1] in self.eos_ids

    def pieces(self, messages: list[dict], weights: bool = True) -> list[tuple[str, bool]]:
        """(text, trained) pieces of one conversation, as tokenize_chat cuts and masks
        them; `weight: 0` turns are not trained (OpenAI fine-tuning format)."""
        shape = self.shape(tuple(m["role"] for m in messages))
        out = []
        for p in shape.pieces:
            text = p.fill(messages)
            trained = p.trained and not (weights and messages[p.turn].get("weight", 1) == 0)
            if trained and p.after_eos_chars:
                out += [(text[: -p.after_eos_chars], True), (text[-p.after_eos_chars :], False)]
            else:
                out.append((text, trained))
        return out

    def _piece_key(self, p: _Piece, messages: list[dict]) -> tuple:
        # The message strings themselves, not the rendered piece: no new string per
        # example, and Python computes a string's hash once (the reader keeps one
        # object per distinct system prompt).
        return (id(p), *(messages[x]["content"] for x in p.parts[1::2]))

    def _count_cacheable(self, texts: dict[tuple, str]) -> None:
        """Token counts of distinct system-prompt pieces, into the cache.

        Distinct prompts differ in a few lines (the product context), so a piece is
        counted line by line, each distinct line tokenized once. That is exact where
        the tokenizer never merges across a newline between two non-space characters
        (byte-level BPE such as SmolLM2's, GPT-2's, Llama 3's); the first pieces are
        checked whole, and on any difference every piece is tokenized whole.
        """
        if not texts:
            return
        keys = list(texts)
        if self._line_checks < 8:
            probe = keys[: 8 - self._line_checks]
            self._line_checks += len(probe)
            whole = self.encode([texts[k] for k in probe])
            self.by_lines &= all(
                len(ids) == self._by_lines([texts[k]])[0]
                for k, ids in zip(probe, whole, strict=True)
            )
        counts = self._by_lines if self.by_lines else self._whole
        for start in range(0, len(keys), _BATCH):
            chunk = keys[start : start + _BATCH]
            for k, n in zip(chunk, counts([texts[k] for k in chunk]), strict=True):
                self._cached[k] = n

    def _whole(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self.encode(texts)]

    def _by_lines(self, texts: list[str]) -> list[int]:
        split = [_LINE_CUT.split(t) for t in texts]
        missing = list({ln for lines in split for ln in lines if ln not in self._lines})
        for start in range(0, len(missing), _BATCH):
            part = missing[start : start + _BATCH]
            self._lines.update(zip(part, self._whole(part), strict=True))
        return [sum(self._lines[ln] for ln in lines) for lines in split]

    def _prime(self, rows: Sequence[_Row]) -> None:
        """Count every distinct system-prompt piece in a few large batches."""
        missing: dict[tuple, str] = {}
        for row in rows:
            shape = self.shape(tuple(m["role"] for m in row.messages))
            msgs = self.fill_messages(row.messages)
            for p in shape.pieces:
                if p.cacheable:
                    key = self._piece_key(p, msgs)
                    if key not in self._cached and key not in missing:
                        missing[key] = p.fill(msgs)
        self._count_cacheable(missing)

    def measure(
        self, rows: Sequence[_Row], advance: Callable[[int], None]
    ) -> tuple[list[int], list[int]]:
        """(total tokens, trained tokens) per row; -1 for rows whose shape failed."""
        self._prime(rows)
        totals = [0] * len(rows)
        trained = [0] * len(rows)
        # Replies repeat (a third of the sample store's are distinct): count each
        # distinct (piece, text) once. key -> tokens; key -> (text, [(row, untrained)]),
        # where untrained is the tokens after the end-of-turn token, -1 = the whole piece.
        counts: dict[tuple, int] = {}
        pending: dict[tuple, tuple[str, list[tuple[int, int]]]] = {}
        for i, row in enumerate(rows):
            msgs = self.fill_messages(row.messages)
            shape = self.shape(tuple(m["role"] for m in msgs))
            if shape.error:
                totals[i] = trained[i] = -1
                continue
            for p in shape.pieces:
                is_trained = p.trained and msgs[p.turn].get("weight", 1) != 0
                untrained = p.after_eos_tokens if is_trained else -1
                key = self._piece_key(p, msgs)
                n = (self._cached if p.cacheable else counts).get(key)
                if n is None:
                    if key not in pending:
                        pending[key] = (p.fill(msgs), [])
                    pending[key][1].append((i, untrained))
                    continue
                totals[i] += n
                trained[i] += n - untrained if untrained >= 0 else 0
            if len(pending) >= _BATCH:
                self._flush(pending, counts, totals, trained)
            if i % 1024 == 1023:
                advance(1024)
        self._flush(pending, counts, totals, trained)
        advance(len(rows) % 1024)
        return totals, trained

    def _flush(self, pending, counts, totals, trained) -> None:
        entries = list(pending.items())
        sizes = self._whole([text for _, (text, _) in entries])
        for (key, (_, targets)), n in zip(entries, sizes, strict=True):
            counts[key] = n
            for i, untrained in targets:
                totals[i] += n
                trained[i] += n - untrained if untrained >= 0 else 0
        pending.clear()

    def exact(self, messages: list[dict]) -> tuple[int, int]:
        """(total, trained) by tokenize_chat itself: what training will see."""
        t = tokenize_chat(self.tok, messages, max_length=1 << 30)
        return len(t.input_ids), t.trainable

    def full_length(self, messages: list[dict]) -> int:
        """Tokens of the whole conversation rendered at once, for the offset note."""
        return len(chat_ids(self.tok, messages, gen_prompt=False))


# --- content checks ----------------------------------------------------------------

# (what it is, substrings of the lower-cased text that must be there, the exact test)
_PLACEHOLDERS = [
    ("lorem ipsum", ("lorem",), re.compile(r"\blorem ipsum\b", re.I)),
    ("TODO/FIXME/TBD", ("todo", "fixme", "tbd"), re.compile(r"\b(?:TODO|FIXME|TBD)\b")),
    (
        "a bracketed slot like [insert …]",
        ("[insert", "[enter", "[your", "[customer", "[product", "[placeholder"),
        re.compile(r"\[(?:insert|enter|your|customer|product|placeholder)\b[^\]\n]{0,40}\]", re.I),
    ),
    ("unrendered template braces ({{ or {%)", ("{{", "{%"), re.compile(r"\{\{|\{%")),
    (
        "'as an AI language model'",
        ("as an ai",),
        re.compile(r"\bas an ai (?:language )?model\b", re.I),
    ),
]
_NON_ANSWER = re.compile(r"\s*(?:n/?a|none|null|nil|undefined|nan|tbd|-+|\.+|\?+)\s*[.!]?\s*", re.I)
_SEVEN_DIGITS = re.compile(r"\d(?:[ ().+-]{0,3}\d){6}")


def placeholder_kinds(text: str, role: str) -> list[str]:
    """Which kinds of placeholder or boilerplate text a message holds."""
    kinds = []
    if role == "assistant" and _NON_ANSWER.fullmatch(text):
        kinds.append("a non-answer like 'N/A'")
    low = text.lower()
    for label, clues, rx in _PLACEHOLDERS:  # substring tests first: they are C-fast
        if any(c in low for c in clues) and rx.search(text):
            kinds.append(label)
    return kinds


def _check_placeholders(rows: Sequence[_Row], findings: list[Finding]) -> None:
    hits: dict[tuple[str, str], list[int]] = defaultdict(list)
    seen: dict[tuple[str, str], list[str]] = {}  # system prompts and replies repeat
    for row in rows:
        kinds: set[str] = set()
        for m in row.messages:
            key = (m["role"], m["content"])
            if key not in seen:
                seen[key] = placeholder_kinds(m["content"], m["role"])
            kinds.update(seen[key])
        for kind in kinds:
            hits[(row.file, kind)].append(row.line)
    for (file, kind), lines in hits.items():
        findings.append(
            Finding("placeholder", f"{len(lines)} example(s) contain {kind}", {file: lines})
        )


def _mask(value: str) -> str:
    return value[:2] + "…" + value[-2:] if len(value) > 6 else "…"


def pii_in(text: str, allowed: str = "") -> list[tuple[str, str]]:
    """(kind, value) of emails, card numbers and phone numbers in `text` that the
    cleaning step should have replaced. Values found in `allowed` (the example's
    system prompt, which holds the store's own contact details) are not PII."""
    found: list[tuple[str, str]] = []
    if "@" in text:
        found += [
            ("an email address", m.group(0))
            for m in EMAIL.finditer(text)
            if m.group(0) not in allowed
        ]
    if not _SEVEN_DIGITS.search(text):  # phones and cards have 7+ digits
        return found
    taken: list[tuple[int, int]] = []
    for m in CARD.finditer(text):
        if card_ok(m.group(0)) and m.group(0) not in allowed:
            found.append(("a card number", m.group(0)))
            taken.append(m.span())
    for rx in PHONES:
        for m in rx.finditer(text):
            v, (a, b) = m.group(0), m.span()
            if any(a < y and x < b for x, y in taken) or not phone_ok(v) or v in allowed:
                continue
            found.append(("a phone number", v))
            taken.append((a, b))
    return found


def _check_pii(rows: Sequence[_Row], findings: list[Finding]) -> None:
    hits: dict[tuple[str, str], list[int]] = defaultdict(list)
    sample: dict[tuple[str, str], str] = {}
    seen: dict[str, list[tuple[str, str]]] = {}  # replies repeat: scan each text once
    for row in rows:
        kinds: dict[str, str] = {}
        for m in row.messages:
            if m["role"] == "system":
                continue
            if m["content"] not in seen:
                seen[m["content"]] = pii_in(m["content"])
            found = seen[m["content"]]
            if found:  # the store's own contact, in this example's system prompt, is fine
                system = "\n".join(x["content"] for x in row.messages if x["role"] == "system")
                for kind, value in found:
                    if value not in system:
                        kinds.setdefault(kind, value)
        for kind, value in kinds.items():
            hits[(row.file, kind)].append(row.line)
            sample.setdefault((row.file, kind), value)
    for (file, kind), lines in hits.items():
        example = _mask(sample[(file, kind)])
        findings.append(
            Finding(
                "pii",
                f"{len(lines)} example(s) contain what looks like {kind} (e.g. '{example}')",
                {file: lines},
            )
        )


# --- duplicates and leakage --------------------------------------------------------


def _locations(rows: Sequence[_Row], members: list[int]) -> dict[str, list[int]]:
    locs: dict[str, list[int]] = {}
    for i in members:
        locs.setdefault(rows[i].file, []).append(rows[i].line)
    return {f: sorted(v) for f, v in locs.items()}


def _report_group(
    rows: Sequence[_Row], members: list[int], kind: str, report: ValidationReport
) -> None:
    locs = _locations(rows, members)
    if len(locs) > 1:
        what = "the same example" if kind == "exact" else "near-identical examples"
        report.leakage[kind] += 1
        report.findings.append(
            Finding(
                f"leakage_{kind}",
                f"{what} in {' and '.join(locs)}: the held-out split is not held out",
                locs,
            )
        )
    for file, lines in locs.items():
        if len(lines) > 1:
            report.duplicates[kind] += len(lines) - 1
            what = "identical" if kind == "exact" else "near-identical (>= 80% shared wording)"
            report.findings.append(
                Finding(f"{kind}_duplicate", f"{len(lines)} {what} examples", {file: lines})
            )


def _check_duplicates(
    rows: Sequence[_Row],
    report: ValidationReport,
    advance: Callable[[int], None],
    cache: dict[int, object] | None = None,
) -> None:
    by_key: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_key.setdefault(dedup.content_key(row.messages), []).append(i)
    unique = list(by_key)
    for members in by_key.values():
        if len(members) > 1:
            _report_group(rows, members, "exact", report)
    ranks = [dedup.key_rank(k) for k in unique]
    sigs = dedup.cached_signatures(unique, ranks, cache, advance)
    pairs = dedup.near_duplicate_pairs(sigs, ranks)
    uf = dedup.UnionFind(len(unique))
    for a, b in pairs:
        uf.union(a, b)
    groups: dict[int, set[int]] = defaultdict(set)
    for a, b in pairs:
        groups[uf.find(a)].update((a, b))
    for root in sorted(groups):
        members = [i for u in sorted(groups[root]) for i in by_key[unique[u]]]
        _report_group(rows, members, "near", report)


# --- balance and size --------------------------------------------------------------


def read_labels(meta_path: Path, split: str | None = None) -> dict[tuple[str, int], str] | None:
    """(split, index) -> 'task/category' from a meta.jsonl sidecar; None if unusable."""
    labels = {}
    try:
        for raw in meta_path.read_text(encoding="utf-8").splitlines():
            m = json.loads(raw)
            if split is None or m["split"] == split:
                labels[(m["split"], int(m["index"]))] = f"{m['task']}/{m['category']}"
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return labels


def _check_balance(classes: list[str], findings: list[Finding], where: str) -> None:
    """Per task: categories with too few examples, and one category dominating."""
    by_task: dict[str, Counter[str]] = defaultdict(Counter)
    for cls in classes:
        task, _, category = cls.partition("/")
        by_task[task][category] += 1
    for task, cats in sorted(by_task.items()):
        rare = sorted((n, c) for c, n in cats.items() if n < MIN_PER_CLASS)
        if rare:
            shown = ", ".join(f"{c} ({n})" for n, c in rare[:5])
            more = f" and {len(rare) - 5} more" if len(rare) > 5 else ""
            msg = (
                f"task '{task}': {len(rare)} of {len(cats)} categories have fewer than "
                f"{MIN_PER_CLASS} examples: {shown}{more}"
            )
            findings.append(Finding("class_imbalance", msg, {where: []}))
        top, n = cats.most_common(1)[0]
        total = sum(cats.values())
        if len(cats) >= 3 and n / total > DOMINANT_SHARE:
            msg = f"task '{task}': '{top}' is {n / total:.0%} of its examples ({n} of {total})"
            findings.append(Finding("class_imbalance", msg, {where: []}))


# --- orchestration -----------------------------------------------------------------


@dataclass
class Options:
    """What a validation measures against; defaults suit the bundled model on a CPU."""

    max_length: int | None = None  # error limit; default: the model's context
    train_max_length: int = DEFAULT_MAX_LENGTH  # training cuts longer examples (warning)
    tokens_per_second: float = DEFAULT_TOKENS_PER_SECOND
    epochs: float = DEFAULT_EPOCHS
    min_examples: int = MIN_EXAMPLES
    progress: bool = False
    # the data is for storetune train, which cuts examples to train_max_length; an
    # example over the model's context is still an error (README: over-length fails)
    train_truncates: bool = False
    signatures: dict | None = None  # key_rank -> MinHash row, from the build's grouping


def _as_model(tokenizer) -> ModelTokenizer | None:
    if tokenizer is None or isinstance(tokenizer, ModelTokenizer):
        return tokenizer
    context = getattr(tokenizer, "model_max_length", None)
    context = context if isinstance(context, int) and context < 1_000_000 else None
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    return ModelTokenizer(name, tokenizer, context, _eos_ids(tokenizer))


def validate_file(
    path: Path, tokenizer=None, max_length: int | None = None, **options
) -> ValidationReport:
    """Validate one chat JSONL file. `tokenizer` (a ModelTokenizer or a Hugging Face
    tokenizer with a chat template) enables the token checks; without it they are
    skipped. A meta.jsonl next to a train/val/test file gives the class balance."""
    path = Path(path)
    meta = path.parent / "meta.jsonl"
    labels = read_labels(meta, path.stem) if path.stem in SPLIT_FILES and meta.exists() else None
    opts = Options(max_length=max_length, **options)
    return _validate({path.name: path}, _as_model(tokenizer), labels, opts, train=path.name)


def validate_dataset(
    directory: Path, tokenizer=None, max_length: int | None = None, **options
) -> ValidationReport:
    """Validate a dataset directory: train/val/test.jsonl, their leakage, meta.jsonl."""
    directory = Path(directory)
    files = {f"{s}.jsonl": directory / f"{s}.jsonl" for s in SPLIT_FILES}
    missing = [n for n, p in files.items() if not p.exists()]
    if missing:
        raise StoretuneError(
            f"{directory}: not a dataset directory (missing {', '.join(missing)})",
            hint="give a dataset directory (datasets/<id>) or a single .jsonl file",
        )
    meta = directory / "meta.jsonl"
    labels = read_labels(meta) if meta.exists() else None
    opts = Options(max_length=max_length, **options)
    return _validate(files, _as_model(tokenizer), labels, opts, train="train.jsonl")


def _validate(
    files: dict[str, Path],
    model: ModelTokenizer | None,
    labels: dict[tuple[str, int], str] | None,
    opts: Options,
    train: str,
) -> ValidationReport:
    report = ValidationReport(files={k: str(v) for k, v in files.items()}, examples={})
    with progress_group(opts.progress, stderr=True, transient=True) as track:
        reader = _Reader(report.findings)
        rows: list[_Row] = []
        for label, path in files.items():
            size = path.stat().st_size
            file_rows = reader.read(label, path, track(f"reading {label}", size).advance)
            report.examples[label] = len(file_rows)
            rows += file_rows
        if model is not None:
            _token_checks(rows, model, opts, report, track("tokenizing", len(rows)).advance)
        else:
            report.notes.append("token checks skipped: no tokenizer given")
        _check_placeholders(rows, report.findings)
        _check_pii(rows, report.findings)
        dup_track = track("near-duplicates", len(rows)).advance
        _check_duplicates(rows, report, dup_track, opts.signatures)
    _check_labels(rows, labels, report, train)
    n_train = report.examples.get(train, 0)
    if n_train < opts.min_examples:
        report.findings.append(
            Finding(
                "too_few",
                f"{n_train} training example(s), fewer than {opts.min_examples}",
                {train: []},
            )
        )
    _estimate(report, train, opts)
    report.findings.sort(key=lambda f: list(CHECKS).index(f.code))
    return report


def _check_labels(rows, labels, report: ValidationReport, train: str) -> None:
    if labels is None:
        report.notes.append("class balance not checked: no meta.jsonl with task/category")
        return
    split_of = {f"{s}.jsonl": s for s in SPLIT_FILES}
    classes = [labels.get((split_of.get(r.file, r.file), r.index)) for r in rows]
    if any(c is None for c in classes):
        report.notes.append("class balance not checked: meta.jsonl does not match the data")
        return
    _check_balance(classes, report.findings, "meta.jsonl")


def _token_checks(
    rows: list[_Row],
    model: ModelTokenizer,
    opts: Options,
    report: ValidationReport,
    advance: Callable[[int], None],
) -> None:
    limit = opts.max_length or model.context or opts.train_max_length
    report.model, report.max_length = model.name, limit
    if model.context and limit > model.context:
        report.notes.append(f"max length {limit} is over the model's context ({model.context})")
    ct = ChatTokens(model.tokenizer, model.eos_ids)
    totals, trained = ct.measure(rows, advance)
    if not _verify_sample(rows, ct, totals, trained, report.notes):
        totals, trained = _exact_all(rows, ct)
    _shape_findings(rows, ct, report.findings)
    # Longer than the model's context is an error even where training would cut it to
    # train.max_length: what is left of a 10 MB message is no example (issue 16).
    _length_findings(rows, totals, trained, limit, opts.train_max_length, report.findings)
    for label in report.examples:
        idx = [i for i, r in enumerate(rows) if r.file == label and totals[i] >= 0]
        report.stats[label] = TokenStats.of([totals[i] for i in idx], [trained[i] for i in idx])
    first = next((r for r in rows if not ct.shape(_roles(r)).error), None)
    report.preview = _preview(ct.pieces(first.messages)) if first else []


def _length_findings(
    rows: list[_Row],
    totals: list[int],
    trained: list[int],
    limit: int | None,
    train_limit: int,
    findings: list[Finding],
) -> None:
    over = [i for i, n in enumerate(totals) if limit is not None and n > limit]
    cut = [i for i, n in enumerate(totals) if train_limit < n <= (limit or n)]
    untrained = [i for i, n in enumerate(totals) if n >= 0 and trained[i] == 0]
    for members in _by_file(rows, over).values():
        longest = max(totals[i] for i in members)
        msg = f"{len(members)} example(s) over the {limit:,}-token limit (longest {longest:,})"
        findings.append(Finding("too_long", msg, _locations(rows, members)))
    for members in _by_file(rows, cut).values():
        msg = (
            f"{len(members)} example(s) longer than train.max_length "
            f"({train_limit:,} tokens) lose their start in training"
        )
        findings.append(Finding("truncated", msg, _locations(rows, members)))
    for members in _by_file(rows, untrained).values():
        msg = (
            f"{len(members)} example(s) train no token: every assistant turn has weight 0 "
            "or the chat template leaves the reply out"
        )
        findings.append(Finding("zero_trainable", msg, _locations(rows, members)))


def _by_file(rows: Sequence[_Row], members: list[int]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i in members:
        out.setdefault(rows[i].file, []).append(i)
    return out


def _roles(row: _Row) -> tuple[str, ...]:
    return tuple(m["role"] for m in row.messages)


def _sample(n: int) -> list[int]:
    return sorted(set(range(min(8, n))) | set(range(0, n, max(1, n // 24))))


def _verify_sample(rows, ct: ChatTokens, totals, trained, notes: list[str]) -> bool:
    """Check the fast counts against tokenize_chat on a spread of examples."""
    checked, offsets = 0, Counter()
    for i in _sample(len(rows)):
        if totals[i] < 0:
            continue
        total, tr = ct.exact(rows[i].messages)
        weighted = any(m.get("weight", 1) == 0 for m in rows[i].messages)
        if total != totals[i] or (not weighted and tr != trained[i]):
            notes.append("template rewrites message text: every example measured one by one")
            return False
        offsets[ct.full_length(rows[i].messages) - total] += 1
        checked += 1
    if checked:
        diff = ", ".join(f"{k:+d} on {v}" for k, v in sorted(offsets.items()))
        notes.append(
            f"token counts equal tokenize_chat's on {checked} sampled examples; tokenizing the "
            f"whole rendered conversation at once differs by {diff}"
        )
    return True


def _exact_all(rows, ct: ChatTokens) -> tuple[list[int], list[int]]:
    # tokenize_chat trains every assistant turn; only a file whose every assistant
    # turn has weight 0 is known to train nothing.
    totals, trained = [], []
    for row in rows:
        if ct.shape(_roles(row)).error:
            totals.append(-1)
            trained.append(-1)
            continue
        total, tr = ct.exact(row.messages)
        unweighted = any(m.get("weight", 1) != 0 for m in row.messages if m["role"] == "assistant")
        totals.append(total)
        trained.append(tr if unweighted else 0)
    return totals, trained


def _shape_findings(rows: list[_Row], ct: ChatTokens, findings: list[Finding]) -> None:
    by_shape: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_shape[_roles(row)].append(i)
    eos = ", ".join(repr(ct.tok.decode([t])) for t in sorted(ct.eos_ids)) or "none"
    for roles, members in by_shape.items():
        shape = ct.shape(roles)
        if shape.error:
            findings.append(Finding("template_error", shape.error, _locations(rows, members)))
            continue
        bad = [
            i
            for i in members
            if any(rows[i].messages[t].get("weight", 1) != 0 for t in shape.bad_eos_turns)
        ]
        if bad:
            msg = (
                f"with this chat template an assistant turn does not end with the end-of-"
                f"sequence token ({eos}), so the model would not learn to stop"
            )
            findings.append(Finding("no_eos", msg, _locations(rows, bad)))


def _preview(pieces: list[tuple[str, bool]], keep: int = 240) -> list[tuple[str, bool]]:
    out = []
    for text, trained in pieces:
        if not trained and len(text) > 2 * keep:
            text = f"{text[:keep]} … [{len(text) - keep - 80:,} characters] … {text[-80:]}"
        out.append((text, trained))
    return out


def _estimate(report: ValidationReport, train: str, opts: Options) -> None:
    stats = report.stats.get(train)
    if stats is None:
        return
    seconds = stats.tokens * opts.epochs / opts.tokens_per_second
    report.estimate = {
        "train_tokens": stats.tokens,
        "epochs": opts.epochs,
        "tokens_per_second": opts.tokens_per_second,
        "seconds": round(seconds),
    }


# --- entry point for the CLI --------------------------------------------------------


def validate_path(
    path: Path,
    ws=None,
    model: str | None = None,
    max_length: int | None = None,
    tokens_per_second: float | None = None,
    progress: bool = False,
) -> ValidationReport:
    """`storetune validate`: a .jsonl file or a dataset directory, measured with `model`
    (default: the workspace's base model when there is a store.yaml, else the bundled
    one); epochs and train.max_length come from the workspace's train options."""
    path = Path(path)
    if not path.exists():
        raise StoretuneError(f"{path}: no such file or directory")
    tc = TrainConfig()
    if ws is not None and ws.config_path.exists():
        cfg = ws.config()
        model = model or cfg.base_model
        tc = cfg.train
    opts = {
        "tokens_per_second": tokens_per_second or DEFAULT_TOKENS_PER_SECOND,
        "epochs": tc.epochs,
        "train_max_length": tc.max_length,
        "progress": progress,
    }
    tok = load_model_tokenizer(model)
    if path.is_dir():
        return validate_dataset(path, tok, max_length, **opts)
    return validate_file(path, tok, max_length, **opts)


# --- presentation -------------------------------------------------------------------


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def summary_line(report: ValidationReport) -> str:
    verdict = "FAILED" if report.errors else "passed"
    return (
        f"validation {verdict}: {len(report.errors)} error finding(s), "
        f"{len(report.warnings)} warning finding(s)"
    )


def estimate_line(report: ValidationReport) -> str | None:
    e = report.estimate
    if not e:
        return None
    return (
        f"estimated training time: {_duration(e['seconds'])} "
        f"({e['train_tokens']:,} train tokens x {e['epochs']:g} epochs at "
        f"{e['tokens_per_second']:,.0f} tok/s)"
    )


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _capped(findings: list[Finding], per_check: int) -> tuple[list[Finding], int]:
    """At most `per_check` findings of each check, so one noisy check hides no other."""
    seen: Counter[str] = Counter()
    shown = []
    for f in findings:
        seen[f.code] += 1
        if seen[f.code] <= per_check:
            shown.append(f)
    return shown, len(findings) - len(shown)


def markdown(report: ValidationReport, per_check: int = 8) -> str:
    """The validation part of a dataset's report.md."""
    out = [f"**{summary_line(report)}**", ""]
    counts = report.counts()
    if counts:
        out += ["| check | severity | examples flagged | what to do |", "|---|---|---:|---|"]
        out += [f"| {c} | {CHECKS[c][0]} | {n} | {CHECKS[c][1]} |" for c, n in counts.items()]
        out += ["", "| severity | check | where | finding |", "|---|---|---|---|"]
        shown, hidden = _capped(report.findings, per_check)
        for f in shown:
            out.append(
                f"| {f.severity} | {f.code} | {_md_escape(f.where())} | {_md_escape(f.message)} |"
            )
        if hidden:
            out.append(f"\n{hidden} more findings in report.json.")
    if report.stats:
        out += ["", f"### Tokens ({report.model}, limit {report.max_length:,})", ""]
        out += [
            "| file | examples | tokens | trained tokens | p50 | p95 | max |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, t in report.stats.items():
            out.append(
                f"| {name} | {t.examples:,} | {t.tokens:,} | {t.trainable:,} | {t.p50:,} "
                f"| {t.p95:,} | {t.max:,} |"
            )
    if estimate_line(report):
        out += ["", estimate_line(report)]
    out += ["", *(f"- {n}" for n in report.notes)]
    if report.preview:
        body = "".join(f"⟦{t}⟧" if tr else t for t, tr in report.preview)
        out += ["", "### Preview (trained tokens between ⟦ ⟧)", "", "```text", body, "```"]
    return "\n".join(out) + "\n"


def rich_report(report: ValidationReport, per_check: int = 4):
    """A rich Group for the terminal: findings, token statistics, preview, estimate."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list = []
    if report.findings:
        table = Table("severity", "check", "where", "finding", title="findings")
        shown, hidden = _capped(report.findings, per_check)
        for f in shown:
            style = "bold red" if f.severity == "error" else "yellow"
            table.add_row(Text(f.severity, style=style), f.code, f.where(3), f.message)
        if hidden:
            table.caption = f"{hidden} more findings: use --json for all"
        parts.append(table)
    if report.stats:
        table = Table(title=f"tokens ({report.model}, limit {report.max_length:,})")
        for col in ("file", "examples", "tokens", "trained", "p50", "p95", "max"):
            table.add_column(col, justify="left" if col == "file" else "right")
        for name, t in report.stats.items():
            nums = (t.examples, t.tokens, t.trainable, t.p50, t.p95, t.max)
            table.add_row(name, *(f"{n:,}" for n in nums))
        parts.append(table)
    if report.preview:
        text = Text()
        for chunk, trained in report.preview:
            text.append(chunk, style="bold black on green" if trained else "dim")
        parts += [Text("preview (trained tokens highlighted):", style="bold"), text]
    parts += [Text(n, style="dim") for n in report.notes]
    if estimate_line(report):
        parts.append(Text(estimate_line(report)))
    parts.append(Text(summary_line(report), style="bold red" if report.errors else "bold green"))
    return Group(*parts)
