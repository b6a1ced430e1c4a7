"""A nearest-neighbour second opinion on escalation, over past tickets' embeddings.

A small generator memorises phrasing; the embedding of a new message lands near
past tickets that meant the same thing however they were worded, and whether
those were handed to a person is a strong hint. `storetune index` embeds each
historical ticket's first customer message (kind 'ticket' in index_vectors).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Neighbour:
    key: str  # source:source_id of the past ticket
    similarity: float
    escalated: bool


@dataclass
class KnnOpinion:
    p_escalate: float  # similarity-weighted share of escalated neighbours
    neighbours: list[Neighbour] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "p_escalate": round(self.p_escalate, 3),
            "neighbours": [
                {"ticket": n.key, "similarity": round(n.similarity, 3), "escalated": n.escalated}
                for n in self.neighbours
            ],
        }


class TicketClassifier:
    """k nearest past tickets by cosine, weighted by similarity."""

    def __init__(self, keys: list[str], matrix: np.ndarray, escalated: np.ndarray, k: int = 10):
        self.keys = keys
        self.matrix = matrix
        self.escalated = escalated
        self.k = k

    @classmethod
    def load(cls, conn: sqlite3.Connection, k: int = 10) -> TicketClassifier | None:
        """None when there is nothing to learn from: too few tickets, or one label only."""
        rows = conn.execute(
            "SELECT key, label, vector FROM index_vectors WHERE kind = 'ticket' ORDER BY key"
        ).fetchall()
        labels = np.array([r[1] == "escalate" for r in rows], dtype=bool)
        if len(rows) < k or labels.all() or not labels.any():
            return None
        matrix = np.stack([np.frombuffer(r[2], dtype=np.float32) for r in rows])
        return cls([r[0] for r in rows], matrix, labels, k)

    def without(self, keys: set[str]) -> TicketClassifier | None:
        """The classifier minus the tickets `keys` names (held-out tickets, in an eval:
        a ticket must not be its own neighbour); None when too little is left."""
        keep = [i for i, key in enumerate(self.keys) if key not in keys]
        labels = self.escalated[keep]
        if len(keep) < self.k or labels.all() or not labels.any():
            return None
        return TicketClassifier([self.keys[i] for i in keep], self.matrix[keep], labels, self.k)

    def predict(self, query_vec: np.ndarray) -> KnnOpinion:
        sims = self.matrix @ np.asarray(query_vec, dtype=np.float32)
        k = min(self.k, len(sims))
        idx = np.argpartition(-sims, k - 1)[:k]
        idx = idx[np.lexsort((idx, -sims[idx]))]
        weights = np.clip(sims[idx], 1e-6, None)  # a dissimilar neighbour barely counts
        p = float((weights * self.escalated[idx]).sum() / weights.sum())
        return KnnOpinion(
            p,
            [Neighbour(self.keys[i], float(sims[i]), bool(self.escalated[i])) for i in idx],
        )
