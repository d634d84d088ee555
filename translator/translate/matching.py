"""Belief matching as tensor algebra (docs/method.md §5): divergences between every source message and
every candidate at once, and the choice of a translation among candidates.

Beliefs live on a grid `(N, K, 3)`: N messages over K contexts, 3 hidden states. The weighted
divergence `D(n, u) = Σ_k w(n, u, k) · KL(β_n(c_k) ‖ β_u(c_k))` expands into a few matrix products
when the weights come from one side only, e.g. for KL(P ‖ Q) with source weights

    D = Σ_k w_nk Σ_x P log P  −  (w ⊙ P)(N, 3K) @ log Q(3K, U),

so a batch against ten thousand candidates is a handful of GEMMs, not a Python loop.
`divergence_loop` is the per-candidate loop it stands for (for tests and the benchmark). The
game-free pieces (KL over a shared support, the choice with its runners-up) are
`translator/games/beliefs.py`, which driving's translator uses too."""

from __future__ import annotations

import torch

from translator.games import beliefs
from translator.games.beliefs import CRITERIA, Choice, choose, kl

__all__ = ["CRITERIA", "CandidateBeliefs", "Choice", "choose", "divergence", "divergence_loop", "pointwise_divergence",
           "weighted_kl"]  # fmt: skip

EPS = 1e-6
GATHER_ELEMENTS = 1 << 22  # candidate rows gathered at once by `source_weighted_at` (16 MB of floats)


def _log(p: torch.Tensor) -> torch.Tensor:
    return p.clamp_min(EPS).log()


def normalise_weights(log_w: torch.Tensor) -> torch.Tensor:
    """Weights over contexts (last dim) summing to 1, from unnormalised log-weights."""
    return torch.softmax(log_w, dim=-1)


def weighted_kl(a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor, weights_on_a: bool) -> torch.Tensor:
    """`(A, B)`: Σ_k w_k KL(a(k) ‖ b(k)) for beliefs `a (A, K, 3)`, `b (B, K, 3)`, weights `(A|B, K)`."""
    k = a.shape[1]
    la, lb = _log(a), _log(b)
    neg_h = (a * la).sum(-1)  # (A, K): Σ_x a log a, per context
    if weights_on_a:
        cross = (weights[..., None] * a).reshape(len(a), 3 * k) @ lb.reshape(len(b), 3 * k).T
        return (weights * neg_h).sum(-1)[:, None] - cross
    cross = a.reshape(len(a), 3 * k) @ (weights[..., None] * lb).reshape(len(b), 3 * k).T
    return neg_h @ weights.T - cross


def divergence(source: torch.Tensor, cands: torch.Tensor, weights: torch.Tensor, weights_on: str = "source", criterion: str = "kl") -> torch.Tensor:
    """`(N, U)` weighted divergences between source beliefs `(N, K, 3)` and candidate beliefs `(U, K, 3)`.

    `weights`: `(N, K)` when `weights_on="source"`, `(U, K)` when `"candidate"`; rows sum to 1.
    `criterion`: `kl` = KL(source ‖ candidate), `reverse_kl` = KL(candidate ‖ source), `symmetric`
    = their sum.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion {criterion!r} is unknown; valid: {', '.join(CRITERIA)}")
    if weights_on not in ("source", "candidate"):
        raise ValueError(f"weights_on must be 'source' or 'candidate', got {weights_on!r}")
    on_source = weights_on == "source"
    out = source.new_zeros(len(source), len(cands))
    if criterion in ("kl", "symmetric"):
        out = out + weighted_kl(source, cands, weights, on_source)
    if criterion in ("reverse_kl", "symmetric"):
        out = out + weighted_kl(cands, source, weights, not on_source).T
    return out.clamp_min(0)


def pointwise_divergence(p: torch.Tensor, q: torch.Tensor, criterion: str) -> torch.Tensor:
    """Divergence of beliefs over the last dim, broadcasting `p` against `q` (logs clamped at `EPS`)."""
    return beliefs.divergence(_log(p), _log(q), criterion, dim=-1, p=p, q=q)


def divergence_loop(source: torch.Tensor, cands: torch.Tensor, weights: torch.Tensor, weights_on: str = "source", criterion: str = "kl") -> torch.Tensor:
    """The same as `divergence`, one (message, candidate) pair at a time: the reference."""
    out = torch.zeros(len(source), len(cands))
    for i, p in enumerate(source):
        for j, q in enumerate(cands):
            w = weights[i] if weights_on == "source" else weights[j]
            forward, reverse = kl(_log(p), _log(q), -1, p), kl(_log(q), _log(p), -1, q)
            d = {"kl": forward, "reverse_kl": reverse, "symmetric": forward + reverse}[criterion]
            out[i, j] = (w * d).sum()
    return out.clamp_min(0)


class CandidateBeliefs:
    """Candidate beliefs `(U, K, 3)` with the parts of every divergence that do not depend on the
    source computed once: a translator holds one of these, so a call costs one GEMM and nothing
    per candidate.

    Every criterion's divergence is `const(source) + v(source) · table[u, columns]`, with one row
    per candidate `[log c (3K) | Σ_x c log c (K) | c (3K)]`: KL reads the first block, reverse KL
    the other two, symmetric KL the whole row.
    """

    def __init__(self, beliefs: torch.Tensor):
        u, k, _ = beliefs.shape
        log = _log(beliefs)
        self.beliefs = beliefs
        self.table = torch.cat([log.reshape(u, 3 * k), (beliefs * log).sum(-1), beliefs.reshape(u, 3 * k)], 1)

    def __len__(self) -> int:
        return len(self.beliefs)

    def columns(self, criterion: str) -> torch.Tensor:
        """The table's columns `(U, D)` the criterion reads (a view)."""
        k = self.beliefs.shape[1]
        return self.table[:, {"kl": slice(0, 3 * k), "reverse_kl": slice(3 * k, 7 * k), "symmetric": slice(0, 7 * k)}[criterion]]

    @staticmethod
    def source_parts(source: torch.Tensor, weights: torch.Tensor, criterion: str = "kl") -> tuple[torch.Tensor, torch.Tensor]:
        """`(const (N,), v (N, D))` with `divergence = const + v @ columns(criterion).T`."""
        n, k, _ = source.shape
        const, parts = source.new_zeros(n), []
        if criterion in ("kl", "symmetric"):  # Σ_k w Σ_x s log s − (w s) · log c
            const += (weights * (source * _log(source)).sum(-1)).sum(-1)
            parts.append(-(weights[..., None] * source).reshape(n, 3 * k))
        if criterion in ("reverse_kl", "symmetric"):  # Σ_k w Σ_x c log c − (w log s) · c
            parts += [weights, -(weights[..., None] * _log(source)).reshape(n, 3 * k)]
        return const, torch.cat(parts, 1)

    def source_weighted(self, source: torch.Tensor, weights: torch.Tensor, criterion: str = "kl") -> torch.Tensor:
        """`divergence(source, beliefs, weights, "source", criterion)`, from the cached parts."""
        const, v = self.source_parts(source, weights, criterion)
        return torch.addmm(const[:, None], v, self.columns(criterion).T).clamp_min_(0)

    def source_weighted_at(self, const: torch.Tensor, v: torch.Tensor, index: torch.Tensor, criterion: str = "kl") -> torch.Tensor:
        """`(N, S)`: the same divergences for the candidates `index (N, S)` only, from `source_parts`."""
        cols = self.columns(criterion)
        rows = max(1, GATHER_ELEMENTS // max(1, index.shape[1] * cols.shape[1]))  # keep the gathered rows small
        out = [torch.bmm(cols[index[s : s + rows]], v[s : s + rows, :, None]).squeeze(2) for s in range(0, len(index), rows)]
        return (const[:, None] + torch.cat(out) if out else v.new_zeros(index.shape)).clamp_min_(0)
