"""The learned router: which kind of ticket this is, with calibrated probabilities.

A small generator memorises phrasing and rarely emits a hand-over marker it saw a few
hundred times; a linear classifier on sentence embeddings generalises across wording
(the bundled all-MiniLM-L6-v2 maps "talk to a human", "can a real person call me"
and "agent pls" near each other). It is trained in seconds from the dataset's own
task/category labels, saved beside the adapter as plain arrays (no pickle: a
version directory can be copied between machines and loaded safely), and read by
the ticket router to pick the focused context and to decide hand-overs.

Features: the embedding of the customer's newest message concatenated with the
embedding of everything the customer wrote, so "and how long does that take?" after
a shipping question is read in its thread.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from storetune.errors import StoretuneError
from storetune.kinds import focus

ROUTER_DIR = "router"
REPLY_CHECK_DIR = "reply"  # under ROUTER_DIR: which kind a reply answers (the reply check)
_WEIGHTS = "router.npz"
_META = "router.json"


@dataclass
class RouterPrediction:
    """The router's reading of one ticket."""

    label: str  # the most likely kind
    probability: float  # its probability
    probabilities: dict[str, float]  # every kind, highest first

    def top(self, n: int = 3, floor: float = 0.0) -> list[tuple[str, float]]:
        return [(k, p) for k, p in list(self.probabilities.items())[:n] if p >= floor]

    def mass(self, labels: Sequence[str]) -> float:
        """The probability that the ticket is any of `labels`."""
        return float(sum(self.probabilities.get(label, 0.0) for label in labels))

    def to_dict(self, n: int = 3) -> dict:
        return {
            "label": self.label,
            "probability": round(self.probability, 4),
            "top": [{"label": k, "p": round(p, 4)} for k, p in self.top(n)],
        }


def agreement(reading: RouterPrediction, check: RouterPrediction) -> float:
    """How far the reply check reads a reply as one of the kinds the router put in the
    focused context: the reply check's probability mass on those kinds."""
    return check.mass(focus(reading.top(3)))


def features(last: np.ndarray, thread: np.ndarray) -> np.ndarray:
    """One row per ticket: [newest message | whole customer thread] embeddings."""
    return np.concatenate([np.atleast_2d(last), np.atleast_2d(thread)], axis=1).astype(np.float32)


class RouterModel:
    """Multinomial logistic regression over ticket features, held as numpy arrays."""

    def __init__(
        self, classes: list[str], coef: np.ndarray, intercept: np.ndarray, info: dict | None = None
    ) -> None:
        if coef.shape[0] != len(classes) or intercept.shape[0] != len(classes):
            raise ValueError("router weights do not match its classes")
        self.classes = list(classes)
        self.coef = coef.astype(np.float32)
        self.intercept = intercept.astype(np.float32)
        self.info = info or {}
        # which kind a reply answers, trained beside the router (None for older versions)
        self.reply_check: RouterModel | None = None

    # ---- fitting ----

    @classmethod
    def fit(
        cls, x: np.ndarray, labels: Sequence[str], c: float = 4.0, seed: int = 0
    ) -> RouterModel:
        """Fit on feature rows and their labels; classes are weighted so a rare must-hand-over
        kind is not drowned by the common questions."""
        from sklearn.linear_model import LogisticRegression

        kinds = sorted(set(labels))
        if len(kinds) < 2:
            raise StoretuneError(
                f"the router needs at least two kinds of ticket to learn from, got {kinds}",
                hint="build a dataset with support and escalation examples",
            )
        clf = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
        clf.fit(x, list(labels))
        coef, intercept = clf.coef_, clf.intercept_
        if len(kinds) == 2:  # one row, the log-odds of classes_[1]: softmax([0, z]) = sigmoid(z)
            coef = np.vstack([np.zeros_like(coef[0]), coef[0]])
            intercept = np.array([0.0, intercept[0]])
        order = [list(clf.classes_).index(k) for k in kinds]
        coef, intercept = coef[order], intercept[order]
        info = {"examples": len(labels), "c": c, "counts": _counts(labels)}
        return cls(kinds, coef, intercept, info)

    # ---- prediction ----

    def proba(self, x: np.ndarray) -> np.ndarray:
        logits = np.atleast_2d(x).astype(np.float32) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, x: np.ndarray) -> list[RouterPrediction]:
        out = []
        for row in self.proba(x):
            order = np.argsort(-row, kind="stable")
            probs = {self.classes[i]: float(row[i]) for i in order}
            best = self.classes[order[0]]
            out.append(RouterPrediction(best, probs[best], probs))
        return out

    # ---- persistence ----

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / _WEIGHTS, coef=self.coef, intercept=self.intercept)
        meta = {"classes": self.classes, "info": self.info}
        (directory / _META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: Path) -> RouterModel:
        meta_path, weights_path = directory / _META, directory / _WEIGHTS
        if not meta_path.exists() or not weights_path.exists():
            raise StoretuneError(
                f"{directory}: no router here",
                hint="train the version again with 'storetune train' (it trains the router too)",
            )
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            with np.load(weights_path, allow_pickle=False) as w:
                model = cls(meta["classes"], w["coef"], w["intercept"], meta.get("info"))
        except (ValueError, KeyError, OSError) as e:
            raise StoretuneError(f"{directory}: the router files are damaged ({e})") from None
        if (directory / REPLY_CHECK_DIR / _META).exists():
            model.reply_check = cls.load(directory / REPLY_CHECK_DIR)
        return model


def _counts(labels: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for label in labels:
        out[label] = out.get(label, 0) + 1
    return dict(sorted(out.items()))
