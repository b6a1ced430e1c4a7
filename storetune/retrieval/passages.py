"""Help-center passages in the hybrid index: the same BM25 + MiniLM fusion as the catalog.

Each heading chunk of an article (storetune.store.knowledge) is one document: its
vector is stored in index_vectors (kind 'passage') with a hash of its text, so a
re-import that changes one article re-embeds that article's chunks only. A hit is a
key; the passage text shown to the model is read from store.db at query time.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np

from storetune.retrieval.keyword import BM25Index, KeywordDoc
from storetune.store.knowledge import Passage, load_passages

# Cosine below which a passage is not relevant. Measured on the sample store's help
# center (seed 2): for 11 of 12 help-center questions the answering passage scored
# 0.42-0.76 (a broken zipper reached 0.33 with any passage); price, stock, order,
# shipping and hand-over questions reached at most 0.35 with any passage.
MIN_PASSAGE_SIMILARITY = 0.40
RRF_K = 60
KEYWORD_WEIGHT = 0.8
CANDIDATES = 50


def passage_rows(conn: sqlite3.Connection) -> list[tuple[str, str, str | None]]:
    """(key, text to embed, label) of every passage, for index_vectors."""
    return [(p.key, p.embed_text(), None) for p in load_passages(conn)]


@dataclass
class PassageHit:
    key: str
    score: float  # fused reciprocal-rank score
    similarity: float
    keyword: float


class PassageIndex:
    """The passages of one `storetune index` run, loaded for queries."""

    def __init__(self, keys: list[str], keyword: BM25Index, matrix: object) -> None:
        self.keys, self.keyword, self.matrix = keys, keyword, matrix

    @classmethod
    def load(cls, conn: sqlite3.Connection, dim: int) -> PassageIndex:
        import torch

        passages = load_passages(conn)
        position = {p.key: i for i, p in enumerate(passages)}
        matrix = np.zeros((len(passages), dim), dtype=np.float32)
        for key, blob in conn.execute(
            "SELECT key, vector FROM index_vectors WHERE kind = 'passage'"
        ):
            i = position.get(key)
            if i is not None:  # an article removed since the last index is skipped
                matrix[i] = np.frombuffer(blob, dtype=np.float32)
        return cls(
            [p.key for p in passages],
            BM25Index([_keyword_doc(p) for p in passages]),
            torch.from_numpy(matrix).to(torch.float16),
        )

    def search(self, query_vec: np.ndarray, query: str, k: int, min_similarity: float):
        """Best k passages at or above min_similarity, most relevant first."""
        import torch

        if not self.keys or k <= 0:
            return []
        q = torch.tensor(np.asarray(query_vec, dtype=np.float32), dtype=torch.float16)
        sims = (self.matrix @ q).float().numpy()
        order = np.lexsort((np.arange(len(sims)), -sims))[:CANDIDATES]
        by_keyword, kw = self.keyword.rank(query, CANDIDATES)
        fused: dict[int, float] = {}
        for ranking, weight in ((order, 1.0), (by_keyword, KEYWORD_WEIGHT)):
            for rank, i in enumerate(ranking.tolist()):
                fused[i] = fused.get(i, 0.0) + weight / (RRF_K + rank + 1)
        # Relevance is meaning only: a shared word ("order", "size") is no answer.
        relevant = sorted(
            (i for i in fused if sims[i] >= min_similarity), key=lambda i: (-fused[i], i)
        )
        return [
            PassageHit(self.keys[i], fused[i], float(sims[i]), float(kw[i])) for i in relevant[:k]
        ]


def _keyword_doc(p: Passage) -> KeywordDoc:
    return KeywordDoc(title=p.title, type=p.heading, description=p.text)
