"""A cheap stand-in for the English listener, used to shortlist candidates in a live context.

In context, neuralese → English needs every candidate's belief in the round's colours, one MLP per
(candidate, colour) pair. But the listener's logit for a fixed utterance is very nearly linear in
the colour encoding `g`, so a candidate's logits in any context are close to `E_u · (M g)`, with `E`
and `M` fitted once by reduced-rank least squares on the beliefs the translator already stores.
Ranking all candidates is then one matrix product; the best few are re-scored exactly.

Context-free, with many candidates, reading the whole candidate table `(U, 7K)` per message is
memory bound; `LowRankDivergence` ranks against a rank-r approximation of it and re-scores the best
few exactly from the full rows. How good the shortlists are: docs/decisions.md."""

from __future__ import annotations

import math

import torch


class BilinearRanker:
    """Approximate listener logits `(B, U, 3)` for all U candidates from colour encodings `(B, 3, C)`."""

    def __init__(self, cand_beliefs: torch.Tensor, context_encodings: torch.Tensor, temperature: float,
                 rank: int = 32, ridge: float = 1e-3):
        u, k, _ = cand_beliefs.shape
        g = context_encodings - context_encodings.mean(1, keepdim=True)  # softmax ignores shifts
        g = g.reshape(k * 3, -1)
        # logits up to a per-context shift, recovered from the stored calibrated beliefs
        log_b = cand_beliefs.double().clamp_min(1e-30).log() * temperature
        y = (log_b - log_b.mean(-1, keepdim=True)).reshape(u, k * 3)
        g = g.double()
        c = g.shape[1]
        gram = g.T @ g
        w = torch.linalg.solve(gram + ridge * gram.trace() / c * torch.eye(c, dtype=gram.dtype), g.T @ y.T).T  # (U, C)
        r = min(rank, u, c)
        fitted = w @ g.T  # (U, 3K)
        _, vecs = torch.linalg.eigh(fitted.T @ fitted)  # ascending: the last r span the best rank-r fit
        basis, _ = torch.linalg.qr(fitted @ vecs[:, -r:])  # (U, r) orthonormal, candidate side
        self.e = basis.float().contiguous()
        self.m = (basis.T @ w).float().contiguous()  # (r, C)
        self.temperature = temperature
        self.relative_residual = ((y - basis @ (basis.T @ fitted)).pow(2).sum() / y.pow(2).sum()).item()

    def log_beliefs(self, g: torch.Tensor) -> torch.Tensor:
        """Approximate calibrated log-beliefs `(B, 3, U)` of every candidate in the contexts `g (B, 3, C)`
        (colour first: each slice is contiguous over the candidates, which keeps the ops below fast)."""
        logits = (g @ (self.m.T / self.temperature)) @ self.e.T  # (B, 3, U)
        return logits - torch.logsumexp(logits, dim=1, keepdim=True)

    def beliefs(self, g: torch.Tensor) -> torch.Tensor:
        """Approximate calibrated beliefs `(B, U, 3)` of every candidate in the contexts `g (B, 3, C)`."""
        return self.log_beliefs(g).exp().transpose(1, 2)

    def divergence(self, source: torch.Tensor, g: torch.Tensor, criterion: str, eps: float = 1e-6) -> torch.Tensor:
        """`(B, U)`: the divergence of every candidate's approximate belief from the source beliefs
        `(B, 3)`, as `matching.pointwise_divergence` (the same clamping at `eps`), with the
        sums over the three colours done as batched products."""
        log_q = self.log_beliefs(g).clamp_min_(math.log(eps))  # (B, 3, U)
        log_p = source.clamp_min(eps).log()  # (B, 3)
        out = torch.zeros(log_q.shape[0], log_q.shape[2])
        if criterion in ("kl", "symmetric"):  # Σ p log p − Σ p log q
            out += (source * log_p).sum(-1, keepdim=True) - torch.bmm(source[:, None], log_q).squeeze(1)
        if criterion in ("reverse_kl", "symmetric"):  # Σ q log q − Σ q log p
            q = log_q.exp()
            out += (q * log_q).sum(1) - torch.bmm(log_p[:, None], q).squeeze(1)
        return out.clamp_min_(0)


class LowRankDivergence:
    """Approximate context-free divergences, up to a per-row constant, of every candidate.

    The divergence of a source with vector `v (D,)` from candidate u is `const + v · T_u`
    (`matching.CandidateBeliefs`). `T (U, D)`, centred (which shifts a row's scores by a
    constant) and with its columns scaled by the typical size of the `v` that multiply them
    (`samples`: vectors of messages the agent sends), is replaced by its best rank-r fit
    `A (U, r) B (r, D)`, so ranking all candidates costs `(N, D) @ (D, r) @ (r, U)`. How often
    the shortlist holds the exhaustive pick: docs/decisions.md.
    """

    def __init__(self, table: torch.Tensor, samples: torch.Tensor, rank: int, seed: int = 0):
        scale = samples.pow(2).mean(0).sqrt()
        scale = scale.clamp_min(1e-6 * scale.max().clamp_min(1e-30))  # columns no sample uses
        r = min(rank, *table.shape)
        with torch.random.fork_rng(devices=[]):  # svd_lowrank draws its projection from the global RNG
            torch.manual_seed(seed)
            u, s, v = torch.svd_lowrank((table - table.mean(0)) * scale, q=min(r + 32, *table.shape), niter=2)
        self.a = (u[:, :r] * s[:r]).T.contiguous()  # (r, U)
        self.b = (v[:, :r] / scale[:, None]).contiguous()  # (D, r)

    def shortlist(self, v: torch.Tensor, size: int) -> torch.Tensor:
        """`(N, size)`: the candidates with the smallest approximate divergence for each row of
        `v (N, D)`, in index order (so exact ties break as in an exhaustive search)."""
        rough = (v @ self.b) @ self.a
        return rough.topk(min(size, rough.shape[1]), dim=1, largest=False, sorted=False).indices.sort(dim=1).values
