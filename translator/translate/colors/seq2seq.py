"""Sequence-to-sequence translators between neuralese and English (docs/method.md §5, beyond the paper).

A `Seq2SeqTranslator` is a small Hugging Face mBART encoder-decoder trained from scratch (no
downloaded weights; why mBART: docs/decisions.md), with our own input embedders in front. One
direction per model: `to_english` reads a continuous message as `prefix_tokens` pseudo-tokens or
discrete symbols as tokens and writes SentencePiece ids (`generate`: greedy or beam search);
`to_neuralese` reads an utterance and writes channel symbols (decoder id = symbol + 2; 0 = PAD,
1 = start) or, for a continuous channel, one decoder step feeds a regression head predicting `z`.

`use_context` adds the round's three colours as encoder inputs before the source; `belief_input`
(to_english, in context) adds the message's belief over the colours from a bundled message model,
to each colour and as the belief-weighted colour, so the encoder need not learn the code first.

Bundle: `config.json` (kind "neuralese.seq2seq", direction, channel, sizes, training, file hashes),
`tokenizer.model`, `model/` (Hugging Face safetensors), `heads.safetensors`, `message_model/`."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn
from transformers import GenerationConfig, MBartConfig, MBartForConditionalGeneration, MBartModel
from transformers.utils import logging as hf_logging

from translator.games.colors.features import COLOR_DIM, color_features
from translator.games.colors.inputs import check_colors
from translator.models.channels import EOS as SYMBOL_EOS
from translator.models.channels import ChannelConfig, alive_mask, canonical_symbols, check_message, message_lengths
from translator.models.colors.message_model import MessageModel, beliefs_from_log_probs, row_log_probs
from translator.models.tokenizer import BOS, EOS, PAD, UNK, Tokenizer, pad_batch
from translator.storage.atomic import atomic_bundle_dir
from translator.storage.bundle import CONFIG_FILE, BundleError, check_header, read_json, write_config, write_tensors
from translator.storage.run_layout import DIRECTIONS
from translator.translate.colors.parts import MESSAGE_MODEL_DIR, load_message_model, message_model_kind
from translator.translate.colors.registry import SEQ2SEQ_KIND
from translator.translate.translations import Translations

KIND = SEQ2SEQ_KIND
DIRECTION_DIRS = tuple(f"to_{d}" for d in DIRECTIONS)  # a model's direction, and its directory in a pair
HF_DIR = "model"
HEADS_FILE = "heads.safetensors"
# Decoder vocabulary of a discrete to_neuralese model: 0 = PAD, 1 = start, then the channel symbols.
SYM_PAD, SYM_START, SYMBOL_OFFSET = 0, 1, 2
IGNORE = -100  # label of a position that is not scored
# The Hugging Face architecture: mBART, i.e. BART with pre-layer-norm blocks (see the docstring).
HF_CONFIG, HF_LM, HF_MODEL = MBartConfig, MBartForConditionalGeneration, MBartModel


@dataclass
class Seq2SeqConfig:
    """What a translator is (direction, channel, context) and its sizes."""

    direction: str = "to_english"
    channel: ChannelConfig = field(default_factory=ChannelConfig)
    use_context: bool = False
    text_vocab_size: int = 1000  # the tokenizer's
    max_text_len: int = 32  # tokens of an utterance read or written (EOS not counted)
    d_model: int = 128
    layers: int = 2  # encoder layers and decoder layers
    heads: int = 4
    ffn_dim: int = 256
    dropout: float = 0.0  # 0.1 and 0.2 gave a worse validation loss within the ~2 minute budget
    prefix_tokens: int = 4  # continuous z -> this many encoder inputs
    # With use_context: the share of training rounds whose colours are hidden (attention-masked), so
    # that one model also translates without a context (colors=None): context-free seq2seq.
    context_dropout: float = 0.0
    # to_english with use_context: read the message's belief over the colours and the believed
    # target's colour (needs a message model; see the module docstring).
    belief_input: bool = False
    # to_neuralese, continuous: return L2-normalised vectors (the speaker's noise-free messages are
    # unit vectors; the regression predicts the conditional mean, which shrinks when unsure).
    normalize_output: bool = True

    def __post_init__(self):
        self.channel = ChannelConfig.from_dict(self.channel)
        if self.direction not in DIRECTION_DIRS:
            raise ValueError(f"direction {self.direction!r} is unknown; valid: {', '.join(DIRECTION_DIRS)}")
        for name in ("text_vocab_size", "max_text_len", "d_model", "layers", "heads", "ffn_dim", "prefix_tokens"):
            v = getattr(self, name)
            if type(v) is not int or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.text_vocab_size <= EOS:
            raise ValueError(f"text_vocab_size must exceed the special ids (0-{EOS}), got {self.text_vocab_size}")
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.context_dropout < 1:
            raise ValueError(f"context_dropout must be in [0, 1), got {self.context_dropout}")
        if self.belief_input and not (self.direction == "to_english" and self.use_context):
            raise ValueError("belief_input needs direction 'to_english' and use_context")

    @property
    def regression(self) -> bool:
        """English -> continuous message: a regression head instead of a token decoder."""
        return self.direction == "to_neuralese" and not self.channel.discrete

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Seq2SeqConfig:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}")
        return cls(**data)


def hf_config(c: Seq2SeqConfig) -> MBartConfig:
    """The Hugging Face config of the encoder-decoder (vocabulary = what the decoder writes)."""
    if c.direction == "to_english":
        vocab, pad, start, eos = c.text_vocab_size, PAD, BOS, EOS
    elif c.channel.discrete:
        vocab, pad, start, eos = c.channel.vocab_size + SYMBOL_OFFSET, SYM_PAD, SYM_START, SYMBOL_EOS + SYMBOL_OFFSET
    else:
        vocab, pad, start, eos = 2, SYM_PAD, SYM_START, None
    return HF_CONFIG(
        vocab_size=vocab,
        d_model=c.d_model,
        encoder_layers=c.layers,
        decoder_layers=c.layers,
        encoder_attention_heads=c.heads,
        decoder_attention_heads=c.heads,
        encoder_ffn_dim=c.ffn_dim,
        decoder_ffn_dim=c.ffn_dim,
        dropout=c.dropout,
        attention_dropout=0.0,
        activation_dropout=0.0,
        max_position_embeddings=c.max_text_len + 8,  # inputs: 3 colours + text; outputs: text + EOS
        pad_token_id=pad,
        bos_token_id=start,
        eos_token_id=eos,
        decoder_start_token_id=start,
        forced_bos_token_id=None,
        forced_eos_token_id=None,
        scale_embedding=False,
        tie_word_embeddings=True,
    )


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts: expected a sequence of strings, got a single string")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"text {i}: expected a string, got {type(t).__name__}")
    return texts


class Seq2SeqTranslator(nn.Module):
    """One direction of neuralese <-> English translation; see the module docstring."""

    name = "seq2seq"

    def __init__(self, config: Seq2SeqConfig, tokenizer: Tokenizer, training: dict[str, Any] | None = None,
                 hf_model: nn.Module | None = None, message_model: MessageModel | None = None):
        super().__init__()
        if tokenizer.vocab_size != config.text_vocab_size:
            raise ValueError(f"the tokenizer has {tokenizer.vocab_size} pieces, the config says {config.text_vocab_size}")
        if config.belief_input and message_model is None:
            raise ValueError("belief_input: give the message model the beliefs come from")
        if message_model is not None and message_model.channel != config.channel:
            raise ValueError(f"the message model's channel {message_model.channel.kind!r} is not the translator's")
        self.config, self.tokenizer, self.training_info = config, tokenizer, dict(training or {})
        self.message_model = message_model if config.belief_input else None
        c, d = config, config.d_model
        if hf_model is None:
            hf_class = HF_MODEL if c.regression else HF_LM
            hf_model = hf_class(hf_config(c))
        self.hf = hf_model
        # Encoder inputs are always `inputs_embeds` built here (the mBART shared embedding is the
        # decoder's vocabulary, which is never the input's).
        if c.direction == "to_english":
            if c.channel.discrete:
                self.symbol_embed = nn.Embedding(c.channel.vocab_size, d)
            else:
                self.z_proj = nn.Linear(c.channel.dim, c.prefix_tokens * d)
        else:
            self.text_embed = nn.Embedding(c.text_vocab_size, d, padding_idx=PAD)
        if c.use_context:
            self.color_proj = nn.Linear(COLOR_DIM, d)
        if c.belief_input:
            self.belief_proj = nn.Linear(2, d)  # (belief, log-belief / 10) of each colour
            self.target_proj = nn.Linear(COLOR_DIM, d)  # the belief-weighted mean colour
        if c.regression:
            self.z_head = nn.Linear(d, c.channel.dim)

    # -- properties -------------------------------------------------------------------------
    @property
    def direction(self) -> str:
        return self.config.direction

    @property
    def channel(self) -> ChannelConfig:
        return self.config.channel

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # -- inputs -----------------------------------------------------------------------------
    def check_messages(self, messages, n: int | None = None) -> torch.Tensor:
        """Validate messages for the channel (`check_message`): `ValueError` naming the problem."""
        return check_message(self.channel, messages, n)

    def encode_texts(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each utterance (cut to `max_text_len`); an empty utterance is a `ValueError`."""
        texts = _check_texts(texts)
        ids = self.tokenizer.encode(texts, self.config.max_text_len)
        for i, x in enumerate(ids):
            if not x:
                raise ValueError(f"text {i}: empty text (no tokens)")
        return ids

    def _colors(self, colors, n: int) -> torch.Tensor | None:
        if not self.config.use_context or (colors is None and self.context_free):
            return None
        if colors is None:
            raise ValueError("colors: this translator reads the context; give the (N, 3, 3) HSL colours of each round")
        return check_colors(colors, n)

    def embed_source(self, source: torch.Tensor, colors: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder inputs `(B, S, d_model)` and attention mask `(B, S)` of checked, batched sources.

        `source`: continuous messages `(B, dim)`, canonical symbols `(B, max_len)` or padded text
        token ids `(B, T)` (by direction); `colors`: `(B, 3, 3)` HSL when `use_context`.
        """
        c = self.config
        if c.direction == "to_english" and not c.channel.discrete:
            emb = self.z_proj(source.float()).view(len(source), c.prefix_tokens, c.d_model)
            mask = torch.ones(emb.shape[:2], dtype=torch.long, device=emb.device)
        elif c.direction == "to_english":
            emb, mask = self.symbol_embed(source), alive_mask(source).long()
        else:
            emb, mask = self.text_embed(source), (source != PAD).long()
        if c.use_context:
            if colors is None and not self.context_free:
                raise ValueError("colors: this translator reads the context")
            if colors is None:  # context-free: the colour positions are there (positions line up) but masked
                col = emb.new_zeros(len(emb), self.context_tokens, c.d_model)
                seen = torch.zeros(len(emb), self.context_tokens, dtype=mask.dtype, device=mask.device)
            else:
                feats = color_features(colors.float())
                col = self.color_proj(feats)
                if c.belief_input:  # each colour's belief, and the believed target's colour
                    b = self.beliefs(source, colors)
                    col = col + self.belief_proj(torch.stack([b, b.clamp_min(1e-6).log() / 10], -1))
                    believed = self.target_proj(torch.einsum("bx,bxf->bf", b, feats))
                    col = torch.cat([col, believed[:, None]], dim=1)
                seen = torch.ones(col.shape[:2], dtype=mask.dtype, device=mask.device)
                if self.training and c.context_dropout > 0:  # hide some rounds' colours
                    seen = seen * (torch.rand(len(col), 1, device=col.device) >= c.context_dropout).to(mask.dtype)
            emb = torch.cat([col, emb], dim=1)
            mask = torch.cat([seen, mask], dim=1)
        return emb, mask

    @property
    def context_tokens(self) -> int:
        """Encoder inputs before the source: the three colours, and with `belief_input` the believed target."""
        return 3 + int(self.config.belief_input)

    def beliefs(self, messages: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
        """`(B, 3)`: the message's belief over the colours under the bundled message model (a fixed
        function of the input, computed on the CPU where the message model lives)."""
        lp = row_log_probs(self.message_model, messages.cpu(), colors.cpu())
        return beliefs_from_log_probs(lp).float().to(colors.device)

    @property
    def context_free(self) -> bool:
        """Whether the model also translates without colours (trained with context dropout, or never reads them)."""
        return not self.config.use_context or self.config.context_dropout > 0

    def target_labels(self, targets) -> torch.Tensor:
        """Training targets: padded label ids `(B, T)` (`-100` = not scored) or `(B, dim)` vectors."""
        c = self.config
        if c.direction == "to_english":
            ids = self.encode_texts(targets)
            tokens, lengths = pad_batch(ids, eos=True)
            pos = torch.arange(tokens.shape[1])
            return torch.where(pos < lengths[:, None], tokens, torch.full_like(tokens, IGNORE))
        m = self.check_messages(targets)
        if c.regression:
            return m
        length = message_lengths(m)
        pos = torch.arange(m.shape[1])
        return torch.where(pos < length[:, None], m + SYMBOL_OFFSET, torch.full_like(m, IGNORE))

    def source_tensor(self, sources) -> torch.Tensor:
        """Checked, batched sources: messages (to_english) or padded text token ids (to_neuralese)."""
        if self.direction == "to_english":
            return self.check_messages(sources)
        return pad_batch(self.encode_texts(sources))[0]

    # -- training ---------------------------------------------------------------------------
    def losses(self, source: torch.Tensor, target: torch.Tensor, colors: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-example `(summed loss (B,), number of scored units (B,))`.

        Token decoders: negative log-likelihood summed over the target tokens (EOS included) and the
        token count. Regression: squared error averaged over the `dim` coordinates, count 1.
        """
        emb, mask = self.embed_source(source, colors)
        hf_config = self.hf.config
        if self.config.regression:
            start = torch.full((len(emb), 1), hf_config.decoder_start_token_id, dtype=torch.long, device=emb.device)
            h = self.hf(inputs_embeds=emb, attention_mask=mask, decoder_input_ids=start, use_cache=False).last_hidden_state
            pred = self.z_head(h[:, 0])
            return ((pred - target.float()) ** 2).mean(-1), torch.ones(len(pred), device=pred.device)
        start = torch.full((len(target), 1), hf_config.decoder_start_token_id, dtype=torch.long, device=target.device)
        dec_in = torch.cat([start, target[:, :-1]], dim=1)
        dec_in = dec_in.masked_fill(dec_in == IGNORE, hf_config.pad_token_id)
        logits = self.hf(inputs_embeds=emb, attention_mask=mask, decoder_input_ids=dec_in, use_cache=False).logits
        scored = target != IGNORE
        nll = F.cross_entropy(logits.transpose(1, 2).float(), target.masked_fill(~scored, 0), reduction="none")
        return (nll * scored).sum(1), scored.sum(1).to(nll.dtype)

    def forward(self, source: torch.Tensor, target: torch.Tensor, colors: torch.Tensor | None = None) -> torch.Tensor:
        """Mean training loss of a batch (per token, or per message for the regression)."""
        loss, count = self.losses(source, target, colors)
        return loss.sum() / count.sum().clamp_min(1)

    # -- inference --------------------------------------------------------------------------
    @torch.no_grad()
    def log_likelihood(self, messages, texts: Sequence[str], colors=None, batch_size: int = 512) -> torch.Tensor:
        """`(N,)` exact log-probabilities of the output given the input under the decoder.

        `to_english`: `log p(text | message[, c])` (tokens and EOS); discrete `to_neuralese`:
        `log p(message | text[, c])` (symbols up to and including the first EOS). Not defined for
        the continuous `to_neuralese` regression (a point prediction, no density): `ValueError`.
        """
        if self.config.regression:
            raise ValueError("log_likelihood: a continuous to_neuralese translator is a regression and has no likelihood")
        texts = _check_texts(texts)
        m = self.check_messages(messages, len(texts))
        col = self._colors(colors, len(texts))
        src, tgt = (m, texts) if self.direction == "to_english" else (texts, m)
        out = []
        self.eval()
        for s in range(0, len(texts), batch_size):
            cs = None if col is None else col[s : s + batch_size].to(self.device)
            source = self.source_tensor(src[s : s + batch_size]).to(self.device)
            target = self.target_labels(tgt[s : s + batch_size]).to(self.device)
            out.append(-self.losses(source, target, cs)[0].cpu())
        return torch.cat(out) if out else torch.zeros(0)

    def _generation_config(self, num_beams: int, max_new_tokens: int, **overrides) -> GenerationConfig:
        hc = self.hf.config
        if self.direction == "to_english":
            suppress, min_new, length_penalty = [PAD, UNK, BOS], 1, 1.0  # never an empty sentence
        else:
            suppress, min_new, length_penalty = [SYM_PAD, SYM_START], 0, 0.0  # beam = most likely message
        kw: dict[str, Any] = dict(
            max_new_tokens=max_new_tokens, min_new_tokens=min_new, num_beams=num_beams, do_sample=False,
            suppress_tokens=suppress, decoder_start_token_id=hc.decoder_start_token_id, bos_token_id=hc.bos_token_id,
            eos_token_id=hc.eos_token_id, pad_token_id=hc.pad_token_id, use_cache=True,
        )
        if num_beams > 1:  # beam-only flags (transformers warns about them otherwise)
            kw.update(length_penalty=length_penalty, early_stopping=True)
        kw.update(overrides)
        return GenerationConfig(**kw)

    @torch.no_grad()
    def translate(self, inputs, colors=None, num_beams: int = 1, batch_size: int = 256, **generate_kwargs):
        """Translate a batch.

        `to_english`: `inputs` are messages (`(N, dim)` floats, or `(N, L)` symbol ids) and the
        result is `list[str]`, generated greedily (`num_beams=1`) or by beam search. `to_neuralese`:
        `inputs` are texts and the result is a tensor of messages valid for the channel (`(N, dim)`
        float, or canonical `(N, max_len)` long symbols). `colors` `(N, 3, 3)` HSL is required when
        the translator reads the context and ignored otherwise. Extra keyword arguments override
        the generation settings (e.g. `length_penalty`). Bad input raises `ValueError`.
        """
        if type(num_beams) is not int or num_beams < 1:
            raise ValueError(f"num_beams must be a positive integer, got {num_beams!r}")
        if self.direction == "to_english":
            src = self.check_messages(inputs)
        else:
            ids = self.encode_texts(inputs)  # refuses empty texts before any work
        n = len(src) if self.direction == "to_english" else len(ids)
        col = self._colors(colors, n)
        self.eval()
        if self.direction == "to_english":
            out: list[str] = []
            gen = self._generation_config(num_beams, self.config.max_text_len + 1, **generate_kwargs)
            for s in range(0, n, batch_size):
                cs = None if col is None else col[s : s + batch_size].to(self.device)
                emb, mask = self.embed_source(src[s : s + batch_size].to(self.device), cs)
                ids = self.hf.generate(inputs_embeds=emb, attention_mask=mask, generation_config=gen)
                out += self.tokenizer.decode(ids.tolist())
            return out
        # to_neuralese: sort by length so that batches carry little padding
        order = sorted(range(n), key=lambda i: len(ids[i]))
        parts = []
        for s in range(0, n, batch_size):
            idx = order[s : s + batch_size]
            tokens = pad_batch([ids[i] for i in idx])[0].to(self.device)
            cs = None if col is None else col[idx].to(self.device)
            parts.append(self._to_neuralese(tokens, cs, num_beams, generate_kwargs).cpu())
        if not parts:
            shape = (0, self.channel.max_len) if self.channel.discrete else (0, self.channel.dim)
            return torch.zeros(shape, dtype=torch.long if self.channel.discrete else torch.float32)
        result = torch.cat(parts)[torch.argsort(torch.tensor(order))]
        return check_message(self.channel, result, n)

    def to_english(self, messages, colors=None) -> Translations:
        """`translate` as `Translations` (no divergences), for a `to_english` model."""
        self._require("to_english")
        return Translations.plain(self.translate(messages, colors))

    def to_neuralese(self, texts, colors=None) -> Translations:
        """`translate` as `Translations` (no divergences), for a `to_neuralese` model."""
        self._require("to_neuralese")
        return Translations.plain(self.translate(texts, colors))

    def _require(self, direction: str) -> None:
        if self.direction != direction:
            raise ValueError(f"this seq2seq translator translates {self.direction.replace('_', ' ')} only")

    @property
    def max_utterance_tokens(self) -> int:
        """Tokens of an utterance the model reads (a longer one is cut)."""
        return self.config.max_text_len

    def _to_neuralese(self, tokens: torch.Tensor, colors, num_beams: int, generate_kwargs: dict) -> torch.Tensor:
        emb, mask = self.embed_source(tokens, colors)
        ch = self.channel
        if self.config.regression:
            start = torch.full((len(emb), 1), SYM_START, dtype=torch.long, device=emb.device)
            h = self.hf(inputs_embeds=emb, attention_mask=mask, decoder_input_ids=start, use_cache=False).last_hidden_state
            z = self.z_head(h[:, 0])
            return F.normalize(z, dim=-1) if self.config.normalize_output else z
        gen = self._generation_config(num_beams, ch.max_len, **generate_kwargs)
        out = self.hf.generate(inputs_embeds=emb, attention_mask=mask, generation_config=gen)[:, 1:]  # drop the start id
        sym = out - SYMBOL_OFFSET
        sym = torch.where(sym < 0, torch.full_like(sym, SYMBOL_EOS), sym)  # padding after the end
        if sym.shape[1] < ch.max_len:
            sym = F.pad(sym, (0, ch.max_len - sym.shape[1]), value=SYMBOL_EOS)
        return canonical_symbols(sym[:, : ch.max_len])

    # -- bundle -----------------------------------------------------------------------------
    def heads_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items() if not k.startswith("hf.")}

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the bundle as a whole; files already in `directory` when it is the temporary
        directory of an enclosing save (a reranked bundle's) are covered by `config.json` too."""
        with atomic_bundle_dir(directory) as d:
            self.tokenizer.save_pretrained(d)
            extra = {}
            if self.message_model is not None:
                self.message_model.save_pretrained(d / MESSAGE_MODEL_DIR)
                extra["message_model"] = message_model_kind(self.message_model)
            with _quiet_hf():
                self.hf.save_pretrained(d / HF_DIR)
            write_tensors(d / HEADS_FILE, self.heads_state(), metadata={"kind": KIND})
            write_config(d, KIND, {**self.config.to_dict(), **extra, "training": self.training_info})

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> Seq2SeqTranslator:
        """Load a bundle; `BundleError` naming the file for a missing, foreign or damaged one."""
        d = Path(directory)
        if not d.is_dir():
            raise BundleError(f"{d}: no such bundle directory")
        path = d / CONFIG_FILE
        data = read_json(path)
        check_header(path, data, KIND)
        data = {k: v for k, v in data.items() if k not in ("kind", "format_version", "files")}
        training = data.pop("training", {}) or {}
        model_kind = data.pop("message_model", "exact")
        try:
            config = Seq2SeqConfig.from_dict(data)
        except (TypeError, ValueError) as e:
            raise BundleError(f"{path}: bad translator config ({e})") from None
        tok = Tokenizer.from_pretrained(d)
        if tok.vocab_size != config.text_vocab_size:
            raise BundleError(f"{d / 'tokenizer.model'}: {tok.vocab_size} pieces, the config says {config.text_vocab_size}")
        hf = _load_hf(d / HF_DIR, config)
        message_model = None
        if config.belief_input:
            if not (d / MESSAGE_MODEL_DIR).is_dir():
                raise BundleError(f"{d / MESSAGE_MODEL_DIR}: missing (the translator reads beliefs from it)")
            message_model = load_message_model(d / MESSAGE_MODEL_DIR, model_kind)
        try:
            model = cls(config, tok, training, hf_model=hf, message_model=message_model)
        except ValueError as e:
            raise BundleError(f"{d}: {e}") from None
        heads = d / HEADS_FILE
        if not heads.is_file():
            raise BundleError(f"{heads}: missing")
        try:
            state = load_file(str(heads))
        except (SafetensorError, OSError) as e:
            raise BundleError(f"{heads}: truncated or corrupt weights file ({e})") from None
        expected = set(model.heads_state())
        if set(state) != expected:
            missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
            raise BundleError(f"{heads}: tensors do not match the config (missing {missing}, unexpected {extra})")
        try:
            model.load_state_dict({**{f"hf.{k}": v for k, v in hf.state_dict().items()}, **state}, strict=True)
        except RuntimeError as e:
            raise BundleError(f"{heads}: weights do not match the config ({str(e).splitlines()[0]})") from None
        return model.to(device).eval()


def _load_hf(path: Path, config: Seq2SeqConfig) -> nn.Module:
    """The Hugging Face part, from local safetensors only, checked against our config."""
    hf_class = HF_MODEL if config.regression else HF_LM
    if not (path / "config.json").is_file():
        raise BundleError(f"{path / 'config.json'}: missing")
    if not (path / "model.safetensors").is_file():
        raise BundleError(f"{path / 'model.safetensors'}: missing")
    want = hf_config(config)
    try:
        loaded = HF_CONFIG.from_pretrained(str(path), local_files_only=True)
    except Exception as e:  # noqa: BLE001 - transformers raises many kinds here
        raise BundleError(f"{path / 'config.json'}: not a readable BART config ({e})") from None
    for key in ("vocab_size", "d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads", "encoder_ffn_dim",
                "max_position_embeddings", "pad_token_id", "decoder_start_token_id", "eos_token_id"):
        if getattr(loaded, key) != getattr(want, key):
            raise BundleError(f"{path / 'config.json'}: {key} is {getattr(loaded, key)!r}, the translator config needs {getattr(want, key)!r}")
    try:
        with _quiet_hf():
            hf, info = hf_class.from_pretrained(str(path), config=loaded, local_files_only=True, use_safetensors=True,
                                                output_loading_info=True)
    except Exception as e:  # noqa: BLE001
        raise BundleError(f"{path / 'model.safetensors'}: cannot be loaded ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    problems = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if problems:
        raise BundleError(f"{path / 'model.safetensors'}: weights do not match the config ({problems})")
    return hf


@contextmanager
def _quiet_hf():
    """No "Loading weights" / "Writing model shards" progress bars from transformers."""
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


__all__ = ["Seq2SeqConfig", "Seq2SeqTranslator", "hf_config", "KIND", "DIRECTION_DIRS"]
