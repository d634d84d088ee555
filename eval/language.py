"""Language analysis of an emergent code: entropy, mutual information, topographic similarity,
positional and bag-of-symbols disentanglement (posdis, bosdis; Chaabouni et al. 2020).

Definitions follow EGG's `egg.core.language_analysis` (entropies in bits; information gap
normalised by the entropy of the message position or symbol count; positions whose symbol never
varies are skipped), so numbers are comparable with the literature. Where EGG is undefined we
define: a constant code has posdis = bosdis = 0 and topographic similarity 0 (no structure).

The colour game's "meaning" is the target colour. For the discrete metrics it is cut into two
attributes (hue sector and saturation band); continuous messages are quantised by k-means before
entropy and mutual information are counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr


def entropy(symbols: Sequence[Hashable]) -> float:
    """Entropy in bits of the empirical distribution of `symbols` (any hashables)."""
    counts = np.array(list(Counter(symbols).values()), dtype=np.float64)
    if counts.sum() == 0:
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def mutual_information(xs: Sequence[Hashable], ys: Sequence[Hashable]) -> float:
    """`I(X; Y) = H(X) + H(Y) - H(X, Y)` in bits, from paired samples (plug-in estimate)."""
    if len(xs) != len(ys):
        raise ValueError(f"mutual_information: {len(xs)} xs but {len(ys)} ys")
    return max(0.0, entropy(xs) + entropy(ys) - entropy(list(zip(xs, ys))))


def rows(a: np.ndarray) -> list[tuple]:
    """Rows of a 2-d array as hashable tuples."""
    return [tuple(r) for r in np.asarray(a).tolist()]


def information_gap(attributes: np.ndarray, representation: np.ndarray) -> float:
    """Mean over representation columns of (top MI - second MI with an attribute) / H(column)."""
    attributes, representation = np.asarray(attributes), np.asarray(representation)
    if attributes.shape[1] < 2:
        raise ValueError("information gap needs at least two attributes")
    gaps = []
    for j in range(representation.shape[1]):
        col = representation[:, j].tolist()
        h = entropy(col)
        if h <= 0:
            continue  # a constant position carries no information to disentangle
        mi = sorted((mutual_information(attributes[:, i].tolist(), col) for i in range(attributes.shape[1])), reverse=True)
        gaps.append((mi[0] - mi[1]) / h)
    return float(np.mean(gaps)) if gaps else 0.0


def posdis(attributes: np.ndarray, messages: np.ndarray) -> float:
    """Positional disentanglement: does each message position specialise in one attribute?"""
    return information_gap(attributes, messages)


def bosdis(attributes: np.ndarray, messages: np.ndarray, vocab_size: int) -> float:
    """Bag-of-symbols disentanglement: does each symbol's count specialise in one attribute?

    Symbol 0 is end-of-message and is left out, as in EGG.
    """
    messages = np.asarray(messages)
    hist = np.stack([(messages == v).sum(axis=1) for v in range(1, vocab_size)], axis=1)
    return information_gap(attributes, hist)


def levenshtein(a: Sequence[int], b: Sequence[int]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def strip_eos(messages: np.ndarray) -> list[tuple[int, ...]]:
    """Symbol strings up to (not including) the first end-of-message symbol 0."""
    out = []
    for m in np.asarray(messages).tolist():
        out.append(tuple(m[: m.index(0)] if 0 in m else m))
    return out


def topographic_similarity(meaning_distances: np.ndarray, message_distances: np.ndarray) -> float:
    """Spearman correlation of pairwise meaning distances and pairwise message distances."""
    if np.ptp(message_distances) == 0 or np.ptp(meaning_distances) == 0:
        return 0.0  # a constant code (or meaning) has no topography
    return float(spearmanr(meaning_distances, message_distances).statistic)


def color_coordinates(hsl: np.ndarray) -> np.ndarray:
    """HSL to a cylinder where Euclidean distance respects hue's circularity: (s cos h, s sin h, l)."""
    hsl = np.asarray(hsl, dtype=np.float64)
    h, s, lum = np.deg2rad(hsl[:, 0]), hsl[:, 1] / 100, hsl[:, 2] / 100
    return np.stack([s * np.cos(h), s * np.sin(h), lum], axis=1)


def color_attributes(hsl: np.ndarray, hue_bins: int = 12, sat_bins: int = 4) -> np.ndarray:
    """Target colours as two discrete attributes `(N, 2)`: hue sector and saturation band."""
    hsl = np.asarray(hsl, dtype=np.float64)
    hue = np.floor((hsl[:, 0] % 360) / 360 * hue_bins).astype(int)
    sat = np.minimum(np.floor(hsl[:, 1] / 100 * sat_bins), sat_bins - 1).astype(int)
    return np.stack([hue, sat], axis=1)


def quantise(vectors: np.ndarray, k: int = 64, seed: int = 0) -> np.ndarray:
    """Cluster ids `(N,)` of continuous messages (k-means, seeded) for counting-based metrics."""
    vectors = np.asarray(vectors, dtype=np.float64)
    k = min(k, len(np.unique(vectors, axis=0)))
    _, labels = kmeans2(vectors, k, seed=seed, minit="++")
    return labels


def analyse(messages: np.ndarray, target_hsl: np.ndarray, discrete: bool, vocab_size: int | None = None,
            max_pairs_items: int = 1000, seed: int = 0) -> dict[str, float]:
    """All metrics for one collected corpus.

    `messages`: `(N, L)` symbol ids (0 = end of message) when `discrete`, else `(N, D)` vectors.
    Topographic similarity uses a random subset of `max_pairs_items` messages (all pairs of them).
    """
    messages, target_hsl = np.asarray(messages), np.asarray(target_hsl)
    if len(messages) != len(target_hsl):
        raise ValueError(f"analyse: {len(messages)} messages but {len(target_hsl)} targets")
    attrs = color_attributes(target_hsl)
    meaning = rows(attrs)
    symbols = strip_eos(messages) if discrete else quantise(messages, seed=seed).tolist()
    out = {
        "entropy": entropy(symbols),
        "mutual_information": mutual_information(symbols, meaning),
        "target_entropy": entropy(meaning),
        "distinct_messages": len(set(symbols)),
    }
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(messages))[:max_pairs_items]
    meaning_d = pdist(color_coordinates(target_hsl[idx]))
    if discrete:
        strings = [symbols[i] for i in idx]
        message_d = np.array([levenshtein(a, b) for i, a in enumerate(strings) for b in strings[i + 1 :]], dtype=np.float64)
        out["posdis"] = posdis(attrs, messages)
        out["bosdis"] = bosdis(attrs, messages, vocab_size or int(messages.max()) + 1)
    else:
        message_d = pdist(messages[idx].astype(np.float64), "cosine")
    out["topographic_similarity"] = topographic_similarity(meaning_d, message_d)
    return out
