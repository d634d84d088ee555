"""English speaker `H_s(utterance | context, target)`: a conditional language model.

A GRU decoder whose every step sees the target colour encoded in its context. It scores
`log p(u | c, x)` for batches of candidate utterances (the quantity belief matching needs), and
samples or beam-searches new utterances.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from translator.games.colors.features import ContextEncoder
from translator.models.tokenizer import BOS, EOS, PAD
from translator.storage.bundle import Bundled


@dataclass
class SpeakerConfig:
    vocab_size: int
    embed_dim: int = 128
    hidden_dim: int = 256
    color_dim: int = 256
    dropout: float = 0.3
    max_len: int = 48  # longest utterance scored or generated, in tokens (EOS excluded)


class EnglishSpeaker(nn.Module, Bundled):
    bundle_kind = "neuralese.english_speaker"
    config_class = SpeakerConfig

    def __init__(self, config: SpeakerConfig):
        super().__init__()
        self.config = config
        c = config
        self.colors = ContextEncoder(c.color_dim, c.dropout)
        self.embed = nn.Embedding(c.vocab_size, c.embed_dim, padding_idx=PAD)
        self.init_h = nn.Linear(c.color_dim, c.hidden_dim)
        self.rnn = nn.GRU(c.embed_dim + c.color_dim, c.hidden_dim, batch_first=True)
        self.drop = nn.Dropout(c.dropout)
        self.out = nn.Linear(c.hidden_dim, c.vocab_size)

    def target_context(self, colors: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """`(B, C)`: the target colour encoded with the other two."""
        g = self.colors(colors)
        return g[torch.arange(len(targets), device=g.device), targets]

    def step(self, tokens: torch.Tensor, ctx: torch.Tensor, h: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the decoder over `(B, T)` input tokens; returns logits `(B, T, V)` and the state."""
        if h is None:
            h = torch.tanh(self.init_h(ctx)).unsqueeze(0)
        x = torch.cat([self.drop(self.embed(tokens)), ctx.unsqueeze(1).expand(-1, tokens.shape[1], -1)], dim=-1)
        y, h = self.rnn(x, h)
        return self.out(self.drop(y)), h

    def forward(self, inputs: torch.Tensor, colors: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Teacher-forced next-token logits `(B, T, V)` for BOS-prefixed `inputs`."""
        logits, _ = self.step(inputs, self.target_context(colors, targets), None)
        return logits

    def token_log_probs(self, tokens: torch.Tensor, lengths: torch.Tensor, colors: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-token `log p` `(B, T+1)` of utterances `tokens` (no BOS/EOS) followed by EOS; 0 on padding."""
        b, t = tokens.shape
        inputs = torch.cat([torch.full((b, 1), BOS, dtype=torch.long, device=tokens.device), tokens], dim=1)
        gold = torch.cat([tokens, torch.full((b, 1), PAD, dtype=torch.long, device=tokens.device)], dim=1)
        gold[torch.arange(b), lengths] = EOS
        logp = F.log_softmax(self(inputs, colors, targets), dim=-1).gather(-1, gold.unsqueeze(-1)).squeeze(-1)
        mask = torch.arange(t + 1, device=tokens.device).unsqueeze(0) <= lengths.unsqueeze(1)
        return logp * mask

    def log_prob(self, tokens: torch.Tensor, lengths: torch.Tensor, colors: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """`log p(u | c, x)` `(B,)`: the sum over the utterance's tokens and the final EOS."""
        return self.token_log_probs(tokens, lengths, colors, targets).sum(-1)

    @torch.no_grad()
    def sample(
        self,
        colors: torch.Tensor,
        targets: torch.Tensor,
        temperature: float = 1.0,
        max_len: int | None = None,
        generator: torch.Generator | None = None,
    ) -> list[list[int]]:
        """Sample one utterance per row (token ids without BOS/EOS)."""
        max_len = max_len or self.config.max_len
        ctx = self.target_context(colors, targets)
        b = len(targets)
        tok = torch.full((b, 1), BOS, dtype=torch.long, device=colors.device)
        h, done = None, torch.zeros(b, dtype=torch.bool, device=colors.device)
        out: list[list[int]] = [[] for _ in range(b)]
        for _ in range(max_len):
            logits, h = self.step(tok, ctx, h)
            probs = torch.softmax(logits[:, -1] / temperature, dim=-1)
            probs[:, [PAD, BOS]] = 0
            tok = torch.multinomial(probs, 1, generator=generator)
            for i in (~done).nonzero().flatten().tolist():
                if tok[i, 0].item() == EOS:
                    done[i] = True
                else:
                    out[i].append(tok[i, 0].item())
            if done.all():
                break
        return out

    @torch.no_grad()
    def beam_search(self, colors: torch.Tensor, targets: torch.Tensor, beam_size: int = 5, max_len: int | None = None) -> list[list[int]]:
        """The most likely utterance per row under beam search (length-normalised scores)."""
        max_len = max_len or self.config.max_len
        results = []
        for i in range(len(targets)):
            ctx = self.target_context(colors[i : i + 1], targets[i : i + 1])
            beams: list[tuple[float, list[int], torch.Tensor | None]] = [(0.0, [], None)]
            finished: list[tuple[float, list[int]]] = []
            for _ in range(max_len):
                toks = torch.tensor([[b[1][-1] if b[1] else BOS] for b in beams], device=colors.device)
                hs = None if beams[0][2] is None else torch.cat([b[2] for b in beams], dim=1)
                logits, h = self.step(toks, ctx.expand(len(beams), -1), hs)
                logp = F.log_softmax(logits[:, -1], dim=-1)
                logp[:, [PAD, BOS]] = -float("inf")
                cand = []
                for j, (score, seq, _) in enumerate(beams):
                    top = torch.topk(logp[j], beam_size)
                    for lp, t in zip(top.values.tolist(), top.indices.tolist()):
                        cand.append((score + lp, seq + [t], h[:, j : j + 1]))
                cand.sort(key=lambda x: -x[0])
                beams = []
                for score, seq, hj in cand:
                    if seq[-1] == EOS:
                        finished.append((score / len(seq), seq[:-1]))
                    elif len(beams) < beam_size:
                        beams.append((score, seq, hj))
                if len(finished) >= beam_size or not beams:
                    break
            if not finished:
                finished = [(s / len(q), q) for s, q, _ in beams]
            results.append(max(finished, key=lambda x: x[0])[1])
        return results
