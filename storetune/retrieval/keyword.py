"""BM25 over product fields with an inverted index, scored with numpy.

A BM25 term weight depends only on the term and the document, never on the query,
so each posting stores its finished weight: a query just adds up a few arrays.
Title words count three times, type and tags twice, options and SKUs once and
description words half: a shopper naming a product usually names its title, and
descriptions are long and full of everyday words ("carry", "water").
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from storetune.retrieval.catalog import words

K1 = 1.2
B = 0.75
MAX_REQUIRED = 3  # most query terms a document must match to count as a keyword hit
FIELD_WEIGHTS = {"title": 3.0, "type": 2.0, "tags": 2.0, "options": 1.0, "description": 0.5}
# Words of a customer's question that say nothing about which product is meant.
_CHATTER = frozenset(
    "i me you your we our do does did can could would will are was be been have has "
    "what which how much many when where why who this that these those there any an "
    "at by from or if so but not no yes please thanks thank hi hello hey get got need "
    "want like about just also still some one".split()
)


def terms(text: str) -> list[str]:
    """Search terms of a text: lower-case words without stop words and chatter."""
    return [w for w in words(text) if w not in _CHATTER]


@dataclass
class KeywordDoc:
    """The searchable fields of one product."""

    title: str
    type: str = ""
    tags: str = ""
    options: str = ""
    description: str = ""

    def term_counts(self) -> dict[str, float]:
        counts: dict[str, float] = defaultdict(float)
        for name, weight in FIELD_WEIGHTS.items():
            for w in terms(getattr(self, name)):
                counts[w] += weight
        return counts


class BM25Index:
    """Inverted index: term -> (document ids, BM25 weights)."""

    def __init__(self, docs: list[KeywordDoc]) -> None:
        self.n = len(docs)
        counts = [d.term_counts() for d in docs]
        lengths = np.array([sum(c.values()) for c in counts], dtype=np.float32)
        avg = float(lengths.mean()) if self.n else 1.0
        norm = K1 * (1 - B + B * lengths / max(avg, 1e-9))
        ids: dict[str, list[int]] = defaultdict(list)
        tfs: dict[str, list[float]] = defaultdict(list)
        for i, c in enumerate(counts):
            for term, tf in c.items():
                ids[term].append(i)
                tfs[term].append(tf)
        self.postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for term, doc_ids in ids.items():
            arr = np.asarray(doc_ids, dtype=np.int32)
            tf = np.asarray(tfs[term], dtype=np.float32)
            idf = np.log(1 + (self.n - len(arr) + 0.5) / (len(arr) + 0.5))
            self.postings[term] = (arr, (idf * tf * (K1 + 1) / (tf + norm[arr])).astype(np.float32))
        # Title words alone, for the relevance gate: naming a product's title word is
        # evidence it is meant even when the embedding is unsure.
        self.title_terms: dict[str, np.ndarray] = {}
        by_title: dict[str, list[int]] = defaultdict(list)
        for i, d in enumerate(docs):
            for w in set(terms(d.title)):
                by_title[w].append(i)
        self.title_terms = {w: np.asarray(v, dtype=np.int32) for w, v in by_title.items()}

    def _score(self, query_terms: set[str]) -> tuple[np.ndarray, np.ndarray]:
        out = np.zeros(self.n, dtype=np.float32)
        matched = np.zeros(self.n, dtype=np.int16)
        for term in query_terms:
            hit = self.postings.get(term)
            if hit is not None:
                out[hit[0]] += hit[1]
                matched[hit[0]] += 1
        return out, matched

    def title_matches(self, query: str) -> np.ndarray:
        """Ids of documents whose title shares a word with the query."""
        found = [self.title_terms[w] for w in set(terms(query)) if w in self.title_terms]
        return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int32)

    def top(self, query: str, n: int) -> np.ndarray:
        """Ids of the n best-scoring documents, best first, among those matching enough
        of the query's terms: half of them, but never more than MAX_REQUIRED, so one
        common word ("camping") in a long question does not pull in every tent."""
        return self.rank(query, n)[0]

    def rank(self, query: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """`top(query, n)` and the score of every document, from one pass."""
        query_terms = set(terms(query))
        s, matched = self._score(query_terms)
        if not query_terms:
            return np.zeros(0, dtype=np.int64), s
        need = min(MAX_REQUIRED, (len(query_terms) + 1) // 2)
        hits = np.flatnonzero(matched >= need)
        if len(hits) > n:
            hits = hits[np.argpartition(-s[hits], n - 1)[:n]]
        # Ties break by document id, so results never depend on partition order.
        return hits[np.lexsort((hits, -s[hits]))], s
