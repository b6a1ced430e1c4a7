"""Optional paraphrasing of customer messages by a teacher model (off by default).

A small model memorises phrasing, so a share of the customer messages in the
conversational tasks is reworded by a larger teacher behind any OpenAI-compatible
``/chat/completions`` endpoint. Answers are never touched, and neither are the
catalog tasks, whose gold depends on the exact input wording. A paraphrase that
is empty, far longer than the original, or loses or changes a number, a product
name or a placeholder is rejected and the original kept, so a sloppy teacher can
only cost variety, never correctness.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

import httpx

from storetune.config import ParaphraseConfig
from storetune.dataset.example import Example
from storetune.errors import StoretuneError
from storetune.progress import Bar
from storetune.progress import progress as progress_bar

# Conversational tasks only: catalog-task gold (JSON filters, review labels,
# attribute coverage) is derived from the exact input text.
PARAPHRASE_TASKS = frozenset(
    {"support", "product_qa", "recommend", "grounded", "no_info", "lookalike", "safety"}
)
WORKERS = 4  # modest: a local teacher is usually one GPU serving everyone

INSTRUCTION = (
    "Rewrite the customer's message below in different words, the way another customer "
    "might write it. Keep every fact, number, product name, order reference and "
    "placeholder in angle brackets exactly as written. Keep the intent, language and "
    "tone; add nothing and answer nothing. Reply with the rewritten message only."
)

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_PLACEHOLDER = re.compile(r"<[A-Z_]+>")
# Two or more capitalised words in a row: product names, including made-up ones
# in the fake-product safety examples that no catalog card lists.
_PROPER = re.compile(r"\b[A-Z][\w'&°-]*(?:[ ][A-Z0-9][\w'&°-]*)+")
# Capitalised only because they open a sentence or a greeting: not part of a name.
_LEADING = frozenset(
    "hello hi hey dear thanks thank please can could do does did is are was will would "
    "what where when why how which who i i'm i've my the a an any yes no ok so and but".split()
)
_CARD_TITLE = re.compile(r"^\* (.+) \([^()]*\)$", re.M)
_REJECT_REASONS = ("empty", "too_long", "number", "name", "unchanged")


def paraphrase_examples(
    examples: list[Example],
    pcfg: ParaphraseConfig,
    seed: int,
    *,
    names: Iterable[str] = (),
    progress: bool = True,
) -> tuple[list[Example], dict[str, int]]:
    """Examples with a share of customer messages reworded, plus counts for the report.

    names: extra product names a paraphrase must keep when the original has them
    (titles in the system prompt's product cards are always protected). When
    paraphrasing is disabled nothing is sent and the examples come back as they are.
    """
    if not pcfg.enabled:
        return examples, {}
    jobs = select_messages(examples, pcfg.share, seed)
    stats = Counter({f"paraphrase_{k}": 0 for k in ("selected", "accepted", "errors")})
    stats.update({f"paraphrase_rejected_{r}": 0 for r in _REJECT_REASONS})
    stats["paraphrase_selected"] = len(jobs)
    if not jobs:
        return examples, dict(stats)
    texts = [examples[i].messages[j]["content"] for i, j in jobs]
    replies = _ask_teacher(texts, pcfg, seed, progress)
    extra_names = list(names)
    out = list(examples)
    for (i, j), original, reply in zip(jobs, texts, replies, strict=True):
        if reply is None:
            stats["paraphrase_errors"] += 1
            continue
        protected = extra_names + card_titles(out[i])
        reason = check_paraphrase(original, reply, protected)
        if reason:
            stats[f"paraphrase_rejected_{reason}"] += 1
            continue
        messages = [dict(m) for m in out[i].messages]
        messages[j]["content"] = clean_reply(reply)
        out[i] = replace(out[i], messages=messages)
        stats["paraphrase_accepted"] += 1
    return out, dict(stats)


def select_messages(examples: list[Example], share: float, seed: int) -> list[tuple[int, int]]:
    """(example, message) positions to paraphrase: user turns of eligible tasks.

    The choice hashes the seed with the message's own text, so it does not depend
    on example order or on which other builders ran.
    """
    jobs = []
    for i, ex in enumerate(examples):
        if ex.task not in PARAPHRASE_TASKS:
            continue
        for j, m in enumerate(ex.messages):
            if (
                m["role"] == "user"
                and m["content"].strip()
                and _draw(seed, m["content"], j) < share
            ):
                jobs.append((i, j))
    return jobs


def _draw(seed: int, text: str, position: int) -> float:
    digest = hashlib.sha256(f"{seed}:{position}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def card_titles(ex: Example) -> list[str]:
    """Product titles in the example's system prompt cards (`* Title (type)`)."""
    system = next((m["content"] for m in ex.messages if m["role"] == "system"), "")
    return _CARD_TITLE.findall(system)


def clean_reply(reply: str) -> str:
    """Strip whitespace and the quotes some teachers wrap around a rewrite."""
    text = reply.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“”":
        text = text[1:-1].strip()
    return text


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def proper_names(text: str) -> list[str]:
    """Runs of two or more capitalised words, minus sentence-opening words."""
    names = []
    for run in _PROPER.findall(text):
        words = run.split(" ")
        while words and words[0].lower() in _LEADING:
            words.pop(0)
        if len(words) >= 2:
            names.append(" ".join(words))
    return names


def check_paraphrase(original: str, reply: str, names: Iterable[str] = ()) -> str | None:
    """Why a paraphrase must be rejected (one of empty, too_long, number, name,
    unchanged), or None when it keeps every fact."""
    text = clean_reply(reply)
    if not text:
        return "empty"
    if len(text) > 2 * len(original) + 60:
        return "too_long"
    if _numbers(text) != _numbers(original):
        return "number"  # a dropped, changed or invented number is a changed fact
    low, orig_low = text.lower(), original.lower()
    kept = [n for n in names if n and n.lower() in orig_low]
    kept += _PLACEHOLDER.findall(original) + proper_names(original)
    if any(k.lower() not in low for k in kept):
        return "name"
    if " ".join(low.split()) == " ".join(orig_low.split()):
        return "unchanged"
    return None


def _ask_teacher(
    texts: list[str], pcfg: ParaphraseConfig, seed: int, progress: bool
) -> list[str | None]:
    """One reply per text (None where the teacher failed), in order."""
    url = pcfg.base_url.rstrip("/") + "/chat/completions"
    headers = {}
    if key := os.environ.get(pcfg.api_key_env):
        headers["Authorization"] = f"Bearer {key}"
    with (
        httpx.Client(timeout=pcfg.timeout_s, headers=headers) as client,
        progress_bar("paraphrasing", len(texts), progress, stderr=True, transient=True) as bar,
    ):
        done = _one_at_a_time(bar)
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            futures = [
                pool.submit(_paraphrase_one, client, url, pcfg, t, seed, done) for t in texts
            ]
            try:
                return [f.result() for f in futures]
            except StoretuneError:
                _cancel(futures)
                raise


def _one_at_a_time(bar: Bar) -> Callable[[], None]:
    """`bar.advance` for worker threads (the plain-line bar of a log is not thread-safe)."""
    lock = threading.Lock()

    def advance() -> None:
        with lock:
            bar.advance()

    return advance


def _cancel(futures: list[Future]) -> None:
    for f in futures:
        f.cancel()


def _paraphrase_one(
    client: httpx.Client,
    url: str,
    pcfg: ParaphraseConfig,
    text: str,
    seed: int,
    done: Callable[[], None],
) -> str | None:
    body = {
        "model": pcfg.model,
        "messages": [
            {"role": "system", "content": INSTRUCTION},
            {"role": "user", "content": text},
        ],
        "temperature": 0,  # with the seed, as repeatable as the teacher allows
        "seed": seed,
        "max_tokens": max(64, len(text)),
    }
    try:
        r = client.post(url, json=body)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as e:
        raise StoretuneError(
            f"paraphrase teacher at {url} is unreachable: {e}",
            hint="start the teacher server, fix build.paraphrase.base_url in store.yaml, "
            "or set build.paraphrase.enabled: false",
        ) from None
    except httpx.HTTPError:
        return None  # a read timeout on one message costs that message only
    finally:
        done()
    if r.status_code in (401, 403, 404):
        raise StoretuneError(
            f"paraphrase teacher at {url} answered HTTP {r.status_code}",
            hint=f"check build.paraphrase.base_url, the model name {pcfg.model!r} and the "
            f"API key in ${pcfg.api_key_env} (build.paraphrase.api_key_env)",
        )
    if r.status_code != 200:
        return None
    try:
        content = r.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None
