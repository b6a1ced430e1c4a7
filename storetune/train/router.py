"""Train the router beside an adapter: seconds on a CPU, labels from the dataset itself.

Each support-style example teaches the kind its task/category names (storetune.kinds);
the customer's words are embedded with the bundled MiniLM and a logistic regression
learns the kinds. Typo-noised copies of the training messages teach it that
"refnud" and "shiping" mean what they look like. The hand-over threshold (the
probability that a ticket is any must-hand-over kind) is chosen on the validation
split: the highest threshold that still hands over ≥ 95% of the must-hand-over
tickets there, so a missed hand-over is rarer than an extra one.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from storetune.io import read_jsonl
from storetune.kinds import HAND_OVER, kind_of
from storetune.models.router import (
    REPLY_CHECK_DIR,
    ROUTER_DIR,
    RouterModel,
    agreement,
    features,
)

RECALL_TARGET = 0.95
DEFAULT_THRESHOLD = 0.5


@dataclass
class Labeled:
    last: str  # the customer's newest message
    thread: str  # everything the customer wrote
    kind: str
    reply: str = ""  # the reference reply (what the reply check learns kinds from)


def labeled_from_rows(rows: list[dict], meta: list[dict]) -> list[Labeled]:
    """Support-style examples with a router label; catalog tasks are skipped."""
    out = []
    for row, m in zip(rows, meta, strict=True):
        kind = kind_of(m.get("task", ""), m.get("category", ""))
        if kind is None:
            continue
        users = [t["content"] for t in row["messages"] if t["role"] == "user"]
        reply = row["messages"][-1]["content"] if row["messages"][-1]["role"] == "assistant" else ""
        if users:
            out.append(Labeled(users[-1], "\n".join(users), kind, reply))
    return out


def typo(text: str, rng: random.Random, rate: float = 0.04) -> str:
    """Drop, double or swap a few letters, as hurried customers do."""
    chars = list(text)
    out: list[str] = []
    i = 0
    while i < len(chars):
        c = chars[i]
        r = rng.random()
        if c.isalpha() and r < rate:
            op = rng.randrange(3)
            if op == 0:  # drop
                i += 1
                continue
            if op == 1:  # double
                out += [c, c]
                i += 1
                continue
            if i + 1 < len(chars):  # swap with the next
                out += [chars[i + 1], c]
                i += 2
                continue
        out.append(c)
        i += 1
    return "".join(out)


def augment(items: list[Labeled], seed: int, copies: int = 1) -> list[Labeled]:
    rng = random.Random(seed)
    extra = []
    for _ in range(copies):
        for it in items:
            noisy = rng.choice([typo(it.last, rng), it.last.lower().rstrip("?.!")])
            extra.append(Labeled(noisy, it.thread.replace(it.last, noisy), it.kind))
    return items + extra


def embed_items(items: list[Labeled], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """Feature rows; each distinct text is embedded once (a one-message thread is its
    own newest message, so most tickets need a single forward pass)."""
    texts = list(dict.fromkeys([i.last for i in items] + [i.thread for i in items]))
    vectors = embed(texts)
    row = {t: vectors[n] for n, t in enumerate(texts)}
    return features(
        np.stack([row[i.last] for i in items]), np.stack([row[i.thread] for i in items])
    )


def choose_threshold(p_hand_over: np.ndarray, must: np.ndarray) -> float:
    """The highest threshold keeping validation hand-over recall ≥ RECALL_TARGET."""
    if not must.any():
        return DEFAULT_THRESHOLD
    scores = np.sort(p_hand_over[must])
    # keep at least ceil(target * n) must-hand-over tickets at or above the threshold
    keep = int(np.ceil(RECALL_TARGET * len(scores)))
    t = float(scores[len(scores) - keep]) if keep else DEFAULT_THRESHOLD
    return min(DEFAULT_THRESHOLD, max(0.05, t * 0.999))


def train_router(
    train: list[Labeled],
    val: list[Labeled],
    embed: Callable[[list[str]], np.ndarray],
    seed: int = 0,
) -> tuple[RouterModel, dict]:
    """Fit the router on train (plus noised copies) and measure it on val."""
    items = augment(train, seed)
    model = RouterModel.fit(embed_items(items, embed), [i.kind for i in items], seed=seed)
    report: dict = {"train_examples": len(items), "val_examples": len(val)}
    if val:
        preds = model.predict(embed_items(val, embed))
        p_hand = np.array([p.mass(HAND_OVER) for p in preds])
        must = np.array([v.kind in HAND_OVER for v in val])
        threshold = choose_threshold(p_hand, must)
        report |= {
            "val_accuracy": float(
                np.mean([p.label == v.kind for p, v in zip(preds, val, strict=True)])
            ),
            "hand_over_threshold": threshold,
            "val_hand_over_recall": float((p_hand[must] >= threshold).mean())
            if must.any()
            else None,
            "val_false_hand_over": float((p_hand[~must] >= threshold).mean())
            if (~must).any()
            else None,
        }
    else:
        report["hand_over_threshold"] = DEFAULT_THRESHOLD
    model.info |= {"hand_over_threshold": report["hand_over_threshold"], "report": report}
    return model, report


def train_reply_check(
    train: list[Labeled],
    val: list[Labeled],
    embed: Callable[[list[str]], np.ndarray],
    marker: str,
    seed: int = 0,
) -> tuple[RouterModel | None, dict]:
    """The reply check: which kind of ticket a reply answers, learned from the dataset's
    reference replies. Serving compares it with the router's reading of the ticket, so a
    draft that answers another question than the one asked ("I can't see your order" to
    a refund-policy question) is not sent without a person."""
    items = [i for i in train if i.reply.strip()]
    if len({i.kind for i in items}) < 2:
        return None, {}
    model = RouterModel.fit(
        embed([reply_text(i.reply, marker) for i in items]), [i.kind for i in items], seed=seed
    )
    report: dict = {"train_examples": len(items)}
    held = [i for i in val if i.reply.strip()]
    if held:
        preds = model.predict(embed([reply_text(i.reply, marker) for i in held]))
        report["val_accuracy"] = float(
            np.mean([p.label == i.kind for p, i in zip(preds, held, strict=True)])
        )
    model.info |= {"report": report, "marker": marker}
    return model, report


AGREE_KEEP = 0.9  # share of validation reference replies the reply check must pass
AGREE_DEFAULT = 0.2


def agreement_threshold(
    router: RouterModel,
    check: RouterModel,
    val: list[Labeled],
    embed: Callable[[list[str]], np.ndarray],
    marker: str,
) -> float:
    """The agreement below which a draft is not sent unreviewed: the level that
    AGREE_KEEP of the validation split's reference replies reach with the router's
    reading of their tickets (a right answer is rarely held back for it)."""
    held = [i for i in val if i.reply.strip() and i.kind not in HAND_OVER]
    if len(held) < 10:
        return AGREE_DEFAULT
    readings = router.predict(embed_items(held, embed))
    checks = check.predict(embed([reply_text(i.reply, marker) for i in held]))
    scores = np.array([agreement(r, c) for r, c in zip(readings, checks, strict=True)])
    return float(min(0.5, max(0.05, np.quantile(scores, 1 - AGREE_KEEP))))


def reply_text(reply: str, marker: str) -> str:
    """A reply as the check reads it: without the hand-over marker, as drafts are checked."""
    return " ".join(reply.replace(marker, " ").split())


def read_split(data_dir: Path, split: str) -> list[Labeled]:
    rows = read_jsonl(data_dir / f"{split}.jsonl")
    meta = [m for m in read_jsonl(data_dir / "meta.jsonl") if m["split"] == split]
    return labeled_from_rows(rows, meta)


def train_router_for_version(
    data_dir: Path,
    version_dir: Path,
    embed: Callable[[list[str]], np.ndarray],
    seed: int = 0,
    marker: str = "[ESCALATE]",
) -> dict | None:
    """Train on the dataset's train split, calibrate on val, save under version_dir/router.

    None when the dataset teaches fewer than two kinds (e.g. catalog tasks only)."""
    train = read_split(data_dir, "train")
    if len({i.kind for i in train}) < 2:
        return None
    model, report = train_router(train, read_split(data_dir, "val"), embed, seed)
    # the focused prompt's kind -> policy sections table the dataset was built with:
    # serving must give each kind the sections training gave it
    model.info["kind_sections"] = _dataset_notes(data_dir).get("kind_sections")
    model.save(version_dir / ROUTER_DIR)
    val = read_split(data_dir, "val")
    check, check_report = train_reply_check(train, val, embed, marker, seed)
    if check is not None:
        threshold = agreement_threshold(model, check, val, embed, marker)
        check.info["agree_threshold"] = check_report["agree_threshold"] = threshold
        check.save(version_dir / ROUTER_DIR / REPLY_CHECK_DIR)
        report["reply_check"] = check_report
    return report


def _dataset_notes(data_dir: Path) -> dict:
    path = data_dir / "report.json"
    if not path.exists():
        return {}
    report = json.loads(path.read_text(encoding="utf-8"))
    return report.get("notes", {}) or {}


_EMBEDDER = None


def embed_texts(texts: list[str]) -> np.ndarray:
    """Normalised MiniLM vectors, under bf16 autocast where the CPU runs it fast."""
    import torch

    from storetune.runtime import bf16_supported, load_embedder

    global _EMBEDDER
    if _EMBEDDER is None:
        _EMBEDDER = load_embedder()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_supported()):
        vecs = _EMBEDDER.encode(
            texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True
        )
    return np.asarray(vecs, dtype=np.float32)
