"""The English side of a game as one bundle: tokenizer, listener `H_l` and speaker `H_s`.

Layout of a saved bundle (`RUN/english/`)::

    config.json          kind, format version, game, the sha256 of every other file
    tokenizer.model      SentencePiece model
    listener/            config.json + model.safetensors
    speaker/             config.json + model.safetensors
    training.json        how it was trained (data, seed, epochs, calibration, timings)

Every method takes plain texts and HSL colours and batches internally.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from translator.games.colors.corpus import GAME
from translator.games.colors.inputs import check_colors, check_targets
from translator.models.colors.listener import EnglishListener
from translator.models.colors.speaker import EnglishSpeaker
from translator.models.tokenizer import Tokenizer, pad_batch
from translator.storage.atomic import atomic_bundle_dir
from translator.storage.bundle import BundleError, inference, read_composite, write_composite

KIND = "neuralese.english"


class EnglishModels:
    def __init__(self, tokenizer: Tokenizer, listener: EnglishListener, speaker: EnglishSpeaker, training: dict[str, Any] | None = None):
        self.tokenizer, self.listener, self.speaker = tokenizer, listener, speaker
        self.training = training or {}

    # -- bundle -----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        with atomic_bundle_dir(directory) as d:
            self.tokenizer.save_pretrained(d)
            self.listener.save_pretrained(d / "listener")
            self.speaker.save_pretrained(d / "speaker")
            write_composite(d, KIND, GAME, self.training)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> EnglishModels:
        d = Path(directory)
        _, training = read_composite(d, KIND, GAME)
        tok = Tokenizer.from_pretrained(d)
        models = cls(tok, EnglishListener.from_pretrained(d / "listener"), EnglishSpeaker.from_pretrained(d / "speaker"), training)
        for name, m in (("listener", models.listener), ("speaker", models.speaker)):
            if m.config.vocab_size != tok.vocab_size:
                raise BundleError(f"{d / name}: vocabulary size {m.config.vocab_size} does not match the tokenizer's {tok.vocab_size}")
        return models

    # -- inputs -----------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenise and pad utterances; empty ones are refused (they carry no meaning to score)."""
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"utterance {i}: expected a string, got {type(t).__name__}")
        ids = self.tokenizer.encode(list(texts), max_len=self.listener.config.max_len)
        for i, x in enumerate(ids):
            if not x:
                raise ValueError(f"utterance {i}: empty text")
        return pad_batch(ids)

    def _batched(self, texts: Sequence[str], batch_size: int, fn) -> torch.Tensor:
        """Apply `fn(tokens, lengths, index)` to batches of similar length; results in input order.

        Sorting by length first keeps padding (and so wasted GRU steps) small.
        """
        tokens, lengths = self.encode(texts)
        order = torch.argsort(lengths, stable=True)
        parts = []
        for s in range(0, len(texts), batch_size):
            idx = order[s : s + batch_size]
            t = int(lengths[idx].max())
            parts.append(fn(tokens[idx, :t], lengths[idx], idx))
        if not parts:
            return torch.zeros(0)
        out = torch.cat(parts)
        return out[torch.argsort(order)]

    # -- models -----------------------------------------------------------------------------
    @torch.no_grad()
    def listen(self, texts: Sequence[str], colors, batch_size: int = 1024, calibrated: bool = True) -> torch.Tensor:
        """`H_l(x | u, c)`: `(N, 3)` probabilities over the colours (listener screen order)."""
        colors = check_colors(colors, len(texts))
        inference(self.listener)
        t = self.listener.config.temperature if calibrated else 1.0
        probs = self._batched(texts, batch_size, lambda tok, ln, i: torch.softmax(self.listener(tok, ln, colors[i]) / t, dim=-1))
        return probs.reshape(-1, 3)

    @torch.no_grad()
    def encode_utterances(self, texts: Sequence[str], batch_size: int = 1024) -> torch.Tensor:
        """The listener's context-free encoding of each utterance, `(N, 2 * hidden)`.

        With `listen_encoded` this splits `listen` in two, so an utterance read once can be scored
        in any number of contexts (candidate beliefs for translation).
        """
        inference(self.listener)
        if not len(texts):
            return torch.zeros(0, 2 * self.listener.config.hidden_dim)
        return self._batched(texts, batch_size, lambda tok, ln, i: self.listener.encode_utterance(tok, ln)).reshape(len(texts), -1)

    @torch.no_grad()
    def listen_encoded(self, encodings: torch.Tensor, colors, chunk: int = 64) -> torch.Tensor:
        """Calibrated `H_l(x | u, c)` for encoded utterances, broadcast over contexts.

        `encodings (..., 2H)` and `colors (..., 3, 3)` broadcast against each other: `(U, 1, 2H)`
        with `(K, 3, 3)` gives every utterance in every context, `(U, K, 3)`; `(N, S, 2H)` with
        `(N, 1, 3, 3)` gives S candidates per round, `(N, S, 3)`. Computed in chunks of the first
        dimension to bound memory.
        """
        colors = torch.as_tensor(colors, dtype=torch.float32)
        if colors.shape[-2:] != (3, 3) or not torch.isfinite(colors).all():
            raise ValueError(f"colors: expected finite HSL triples of shape (..., 3, 3), got {tuple(colors.shape)}")
        inference(self.listener)
        g = self.listener.colors(colors.reshape(-1, 3, 3)).reshape(*colors.shape[:-1], -1)  # (..., 3, C)
        u = encodings.unsqueeze(-2)  # (..., 1, 2H)
        shape = torch.broadcast_shapes(u.shape[:-1], g.shape[:-1])
        nd = len(shape)
        u, g = u.reshape(*([1] * (nd - u.ndim + 1)), *u.shape), g.reshape(*([1] * (nd - g.ndim + 1)), *g.shape)
        t = self.listener.config.temperature
        # chunk the leading dimension without expanding: score_pairs broadcasts, so each side's
        # own part of the first layer is computed once, not once per pair
        parts = []
        for s in range(0, shape[0], chunk):
            us = u[s : s + chunk] if u.shape[0] > 1 else u
            gs = g[s : s + chunk] if g.shape[0] > 1 else g
            parts.append(torch.softmax(self.listener.score_pairs(us, gs) / t, dim=-1).expand(min(chunk, shape[0] - s), *shape[1:]))
        return torch.cat(parts) if parts else torch.zeros(shape)

    @torch.no_grad()
    def encode_colors(self, colors) -> torch.Tensor:
        """The listener's colour encodings of contexts `(N, 3, 3)`: `(N, 3, C)`."""
        inference(self.listener)
        return self.listener.colors(check_colors(colors, len(colors)))

    @torch.no_grad()
    def listen_parts(self, parts: tuple[torch.Tensor, torch.Tensor], g: torch.Tensor, chunk: int = 64) -> torch.Tensor:
        """Calibrated beliefs from precomputed `listener.utterance_parts` `(N, S, C)` each, in the
        rows' contexts encoded by `encode_colors` `g (N, 3, C)`: `(N, S, 3)`. The in-context
        translator's inner loop, in chunks of rows so that the `(rows, S, 3, C)` pair tensor stays
        in cache (1.5x faster)."""
        inference(self.listener)
        a, p = parts
        t = self.listener.config.temperature
        out = [torch.softmax(self.listener.score_parts(a[s : s + chunk, :, None], p[s : s + chunk, :, None], g[s : s + chunk, None]) / t, dim=-1)
               for s in range(0, len(g), chunk)]
        return torch.cat(out) if out else torch.zeros(0, a.shape[1], 3)

    @torch.no_grad()
    def speaker_log_prob(self, texts: Sequence[str], colors, targets, batch_size: int = 1024) -> torch.Tensor:
        """`log H_s(u | c, x)` for each row, `(N,)`."""
        colors = check_colors(colors, len(texts))
        targets = check_targets(targets, len(texts))
        inference(self.speaker)
        return self._batched(texts, batch_size, lambda tok, ln, i: self.speaker.log_prob(tok, ln, colors[i], targets[i]))

    @torch.no_grad()
    def bayesian_listen(self, texts: Sequence[str], colors, batch_size: int = 1024) -> torch.Tensor:
        """Posterior over the target from the speaker, `p(x | u, c) ∝ H_s(u | c, x)` (uniform prior)."""
        colors = check_colors(colors, len(texts))
        n = len(texts)
        scores = torch.stack(
            [self.speaker_log_prob(texts, colors, torch.full((n,), x), batch_size) for x in range(3)], dim=-1
        )
        return torch.softmax(scores, dim=-1)

    @torch.no_grad()
    def describe(self, colors, targets, method: str = "beam", beam_size: int = 5, seed: int = 0) -> list[str]:
        """Generate an utterance for each (context, target): `beam` (most likely) or `sample`."""
        targets = check_targets(targets)
        colors = check_colors(colors, len(targets))
        inference(self.speaker)
        if method == "beam":
            ids = self.speaker.beam_search(colors, targets, beam_size)
        elif method == "sample":
            ids = self.speaker.sample(colors, targets, generator=torch.Generator().manual_seed(seed))
        else:
            raise ValueError(f"method: {method!r} is not 'beam' or 'sample'")
        return self.tokenizer.decode(ids)
