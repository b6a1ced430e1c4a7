"""Exact and near-duplicate detection over the non-system text of chat examples.

System prompts are left out on purpose: every support example carries the same
policy block, so including it would make the whole set look alike.

Exact duplicates share a normalised key (roles + lower-cased, whitespace-collapsed
contents). Near duplicates: a MinHash signature of each key's word 3-grams (datasketch's
permutations, computed a block at a time), candidate pairs from LSH bands, and
every candidate verified against the signatures (estimated Jaccard >= THRESHOLD). The pairs chosen depend on
the texts alone, never on their order in a file, so the build (which keeps each
connected group of near duplicates in one split) and the validator (which reports
groups that straddle splits) always agree.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from datasketch import LeanMinHash, MinHash

from storetune.dataset.example import Example

NUM_PERM = 64
THRESHOLD = 0.8
SEED = 1
# datasketch's own optimum for threshold 0.8 and 64 permutations (5 bands of 11 rows)
# puts a pair at exactly J=0.8 in a shared bucket only ~36% of the time; 10 bands of
# 6 rows do so ~95% of the time (~99% at J=0.85). Every candidate is verified against
# the signatures, so the extra candidates cost a little time, never precision.
LSH_PARAMS = (10, 6)
# Candidates in one bucket are compared with a few representatives, not pairwise, so a
# bucket of thousands of templated examples stays linear.
MAX_REPRESENTATIVES = 4
_BLOCK = 256  # keys per vectorised MinHash block (~5 MB of intermediates: cache-sized)
_WORD = re.compile(r"\w+")
_M1, _M2, _M3 = 0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D


def normalize(text: str) -> str:
    return " ".join(text.lower().split())


def content_key(messages: Iterable[Mapping]) -> str:
    """What 'the same example' means: roles and normalised text, system prompt excluded."""
    return "\n".join(
        f"{m['role']}: {normalize(m['content'])}" for m in messages if m["role"] != "system"
    )


def key_rank(key: str) -> int:
    """A stable, order-free rank for a key (Python's hash() changes between runs)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big")


class _WordHashes:
    """crc32 of each word, computed once per distinct word (vocabularies are small)."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def hashes(self, words: list[str]) -> np.ndarray:
        for w in set(words).difference(self._seen):
            self._seen[w] = zlib.crc32(w.encode("utf-8"))
        # map() over the dict's own lookup: no Python frame per word
        return np.fromiter(map(self._seen.__getitem__, words), dtype=np.uint64, count=len(words))


def shingles(keys: Sequence[str], word_hashes: _WordHashes) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of the word 3-grams of each key, flat, and where each key's run
    starts. A key of one or two words is its words; an empty key is one zero."""
    words = [_WORD.findall(k) for k in keys]
    lens = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    flat = word_hashes.hashes([w for ws in words for w in ws])
    owner = np.repeat(np.arange(len(keys)), lens)
    rel = np.arange(len(flat)) - (np.cumsum(lens) - lens)[owner]
    long = lens[owner] >= 3
    pos3 = np.nonzero(long & (rel <= lens[owner] - 3))[0]
    grams = (flat[pos3] * _M1 + flat[pos3 + 1] * _M2 + flat[pos3 + 2] * _M3) & 0xFFFFFFFF
    pos1 = np.nonzero(~long)[0]
    empty = np.nonzero(lens == 0)[0]
    who = np.concatenate([owner[pos3], owner[pos1], empty])
    values = np.concatenate([grams, flat[pos1], np.zeros(len(empty), np.uint64)])
    order = np.argsort(who, kind="stable")
    counts = np.bincount(who, minlength=len(keys))
    return values[order].astype(np.uint32), np.cumsum(counts) - counts


def _fmix32(h: np.ndarray) -> np.ndarray:
    # MurmurHash3's finalizer, as datasketch applies it before its affine permutations
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def signatures(keys: Sequence[str], advance: Callable[[int], None] | None = None) -> np.ndarray:
    """One MinHash signature (NUM_PERM uint32 values) per key, as matrix rows.

    The values are those of datasketch's MinHash(num_perm=NUM_PERM, seed=SEED) fed
    the key's shingle hashes (its own permutations, tested equal), computed for a
    block of keys at once: one MinHash object per key costs ~50 us of Python, 5 s per
    100,000 examples.
    """
    a, b = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32").permutations
    word_hashes = _WordHashes()
    out = np.empty((len(keys), NUM_PERM), dtype=np.uint32)
    buf = np.empty(0, dtype=np.uint32)
    for start in range(0, len(keys), _BLOCK):
        block = keys[start : start + _BLOCK]
        values, offsets = shingles(block, word_hashes)
        if buf.size < values.size * NUM_PERM:
            buf = np.empty(values.size * NUM_PERM, dtype=np.uint32)
        # a * h + b for every permutation, in place in one reused buffer (wraps mod 2^32)
        permuted = buf[: values.size * NUM_PERM].reshape(values.size, NUM_PERM)
        np.multiply(_fmix32(values)[:, None], a[None, :], out=permuted)
        permuted += b
        out[start : start + len(block)] = np.minimum.reduceat(permuted, offsets, axis=0)
        if advance:
            advance(len(block))
    return out


def cached_signatures(
    keys: Sequence[str],
    ranks: Sequence[int],
    cache: dict[int, np.ndarray] | None = None,
    advance: Callable[[int], None] | None = None,
) -> np.ndarray:
    """signatures(), reusing rows already computed for the same keys (by key_rank):
    a build hands the ones it grouped with to the validation of the written files."""
    if not cache:
        return signatures(keys, advance)
    missing = [i for i, r in enumerate(ranks) if r not in cache]
    out = np.empty((len(keys), NUM_PERM), dtype=np.uint32)
    if missing:
        out[missing] = signatures([keys[i] for i in missing], advance)
    hits = [i for i, r in enumerate(ranks) if r in cache]
    if hits:
        out[hits] = np.stack([cache[ranks[i]] for i in hits])
    if advance:
        advance(len(hits))
    return out


def lean_minhash(signature: np.ndarray) -> LeanMinHash:
    """A signature row as a datasketch LeanMinHash (for MinHashLSH or jaccard())."""
    return LeanMinHash(seed=SEED, hashvalues=signature, scheme="affine32")


def _band_buckets(sigs: np.ndarray, band: int, ranks: np.ndarray) -> tuple[np.ndarray, ...]:
    """Members of the buckets with two or more rows in one LSH band, sorted by
    (bucket, rank), and each member's bucket id."""
    _, rows = LSH_PARAMS
    part = np.ascontiguousarray(sigs[:, band * rows : (band + 1) * rows])
    keys = part.view(np.dtype((np.void, part.itemsize * rows))).ravel()
    _, bucket, counts = np.unique(keys, return_inverse=True, return_counts=True)
    members = np.nonzero(counts[bucket] > 1)[0]
    order = np.lexsort((ranks[members], bucket[members]))
    return members[order], bucket[members][order]


def _verify_round(sigs, members, bucket, need):
    """Compare each bucket's first member with the others; return the verified pairs
    and the members left unmatched (still sorted), for the next representative."""
    first = np.ones(len(members), dtype=bool)
    first[1:] = bucket[1:] != bucket[:-1]
    rep = members[np.maximum.accumulate(np.where(first, np.arange(len(members)), 0))]
    others = np.nonzero(~first)[0]
    same = (sigs[members[others]] == sigs[rep[others]]).sum(axis=1) >= need
    pairs = np.stack([rep[others][same], members[others][same]], axis=1)
    left = others[~same]
    multi = np.bincount(bucket[left], minlength=bucket.max() + 1 if len(bucket) else 0) > 1
    left = left[multi[bucket[left]]]
    return pairs, members[left], bucket[left]


def near_duplicate_pairs(sigs: np.ndarray, ranks: Sequence[int]) -> set[tuple[int, int]]:
    """Verified near-duplicate pairs (row indices, smaller first) among the signatures.

    LSH banding (LSH_PARAMS) finds candidates; within a bucket each member is compared
    with the bucket's representative (estimated Jaccard >= THRESHOLD). `ranks` (use
    key_rank) order bucket members, so the pairs depend on the texts only.
    """
    rank = np.asarray(ranks, dtype=np.uint64)
    need = int(np.ceil(THRESHOLD * NUM_PERM))
    found = [np.empty((0, 2), dtype=np.int64)]
    for band in range(LSH_PARAMS[0]):
        members, bucket = _band_buckets(sigs, band, rank)
        for _ in range(MAX_REPRESENTATIVES):
            if len(members) < 2:
                break
            pairs, members, bucket = _verify_round(sigs, members, bucket, need)
            found.append(pairs)
    pairs = np.sort(np.concatenate(found), axis=1)
    return {(int(x), int(y)) for x, y in np.unique(pairs, axis=0)}


class UnionFind:
    """Connected components whose root is always the smallest member index."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:  # path compression
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


# --- build-time use ------------------------------------------------------------------


def remove_exact_duplicates(examples: list[Example]) -> tuple[list[Example], int]:
    """Keep the first of each set of examples with the same normalised non-system text."""
    seen: set[str] = set()
    kept = []
    for ex in examples:
        key = content_key(ex.messages)
        if key not in seen:
            seen.add(key)
            kept.append(ex)
    return kept, len(examples) - len(kept)


@dataclass
class Grouping:
    near_pairs: int  # verified near-duplicate pairs
    merged_groups: int  # groups absorbed into another group because of them
    signatures: dict[int, np.ndarray]  # key_rank -> MinHash signature, for reuse


def _first_user(ex: Example) -> str:
    first = next((m["content"] for m in ex.messages if m["role"] == "user"), "")
    return ex.task + "|" + " ".join(re.findall(r"[a-z0-9]+", first.lower()))


def group_duplicates(
    examples: list[Example], advance: Callable[[int], None] | None = None
) -> Grouping:
    """Give near duplicates one `group`, so the split keeps them on one side.

    Three things tie examples together: a shared group (one ticket's examples), the
    same opening customer message within a task, and near-duplicate text. Groups are
    merged transitively; each merged group takes the label of its earliest example.
    Call after remove_exact_duplicates (keys are assumed distinct).
    """
    n = len(examples)
    uf = UnionFind(n)
    first_of: dict[str, int] = {}
    for i, ex in enumerate(examples):
        ex.group = ex.group or f"example:{i}"  # an ungrouped example is its own group
        uf.union(i, first_of.setdefault("g|" + ex.group, i))
        uf.union(i, first_of.setdefault("u|" + _first_user(ex), i))
    before = len({uf.find(i) for i in range(n)})
    keys = [content_key(ex.messages) for ex in examples]
    ranks = [key_rank(k) for k in keys]
    sigs = signatures(keys, advance)
    pairs = near_duplicate_pairs(sigs, ranks)
    for a, b in pairs:
        uf.union(a, b)
    roots = [uf.find(i) for i in range(n)]
    labels = [examples[r].group for r in roots]
    for ex, label in zip(examples, labels, strict=True):
        ex.group = label
    merged = before - len(set(roots))
    return Grouping(len(pairs), merged, dict(zip(ranks, sigs, strict=True)))
