"""One door to every translator bundle: `Translator`, the Python API behind the CLI and the service.

    tr = Translator.from_run("runs/demo", "continuous")           # RUN/translators/continuous/belief
    tr = Translator.from_pretrained("runs/demo/translators/continuous/seq2seq_belief")  # any kind
    results = tr.to_english(messages, contexts)                    # contexts optional: None = context-free
    results[0].translation, results[0].faithfulness, results[0].faithful, results[0].to_json()
    tr.to_neuralese(["the dark blue one"], contexts)

Inputs are batches: messages (continuous: `dim` floats; discrete: up to `max_len` symbol ids),
utterances, and `None` or one context per row (three `[h, s, l]`, h in [0, 360], s and l in
[0, 100]). Each row is checked before it reaches a model; a bad one raises `ValueError` naming the
row and the problem. The streaming CLI and the service use the same row checks. An utterance
longer than the model reads is cut there, with an `UtteranceTruncated` warning.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from translator.models.channels import ChannelConfig, check_message
from translator.storage.run_layout import DEFAULT_NAME, DIRECTIONS, TRANSLATORS_DIR, check_name, find_translator, run_channels  # noqa: F401 - re-exported
from translator.translate.colors import registry
from translator.translate.colors.residuals import ResidualCheck, check_residuals
from translator.translate.translations import Alternative, Translation  # noqa: F401 - re-exported: what the API returns

# Utterances: the English models read the first `listener.max_len` tokens (48) of any utterance, in
# training, evaluation and translation alike; a longer one is cut there, with an
# `UtteranceTruncated` warning here. People do write long descriptions (312 characters in the
# corpus), so length alone is no error below this bound, which only keeps absurd inputs out.
MAX_UTTERANCE_CHARS = 2000


class UtteranceTruncated(UserWarning):
    """An utterance longer than the English listener reads: it is translated from its first tokens."""


HUE_MAX, SL_MAX = 360.0, 100.0


# -- row checks (shared by the API, the streaming CLI and the service) ------------------------------


FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _finite(x: float) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:  # an int too big for a float
        return False


def _check_float32(value: list) -> None:
    """Messages are float32 tensors: a larger number would become infinite there."""
    if value and max(map(abs, value)) > FLOAT32_MAX:
        raise ValueError(f"message: values beyond float32's range (±{FLOAT32_MAX:.4g})")


def check_message_row(channel: ChannelConfig, value: Any) -> list:
    """One checked message as a list (continuous: `dim` floats; discrete: `max_len` canonical ids), or `ValueError`.

    Rows stay Python lists until a batch is made into one tensor: a tensor per row costs more
    than the checks themselves on the streaming path.
    """
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    elif hasattr(value, "tolist"):  # numpy arrays
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"message: expected a list of numbers, got {type(value).__name__}")
    if not channel.discrete and len(value) == channel.dim and set(map(type, value)) <= {float}:
        if not all(map(math.isfinite, value)):  # the common case: floats only, checked at C speed
            raise ValueError("message: NaN or infinite values")
        _check_float32(value)
        return list(value)
    if not all(_is_number(x) for x in value):
        bad = next(x for x in value if not _is_number(x))
        raise ValueError(f"message: expected numbers only, got {type(bad).__name__} {bad!r:.40}")
    if not channel.discrete:
        if len(value) != channel.dim:
            raise ValueError(f"message: the {channel.kind} channel expects {channel.dim} numbers, got {len(value)}")
        if not all(_finite(x) for x in value):
            raise ValueError("message: NaN or infinite values")
        _check_float32(value)
        return [float(x) for x in value]
    if not 1 <= len(value) <= channel.max_len:
        raise ValueError(f"message: the {channel.kind} channel expects 1 to {channel.max_len} symbol ids, got {len(value)}")
    if not all(_finite(x) for x in value):
        raise ValueError("message: NaN or infinite values where symbol ids were expected")
    bad = [x for x in value if not 0 <= x < channel.vocab_size]
    if bad:
        raise ValueError(f"message: symbol id {bad[0]} is out of range for a vocabulary of {channel.vocab_size} (ids 0..{channel.vocab_size - 1})")
    return check_message(channel, [value])[0].tolist()  # whole numbers, EOS padding


def check_context_row(value: Any) -> list[list[float]]:
    """One context: three `[h, s, l]` triples, h in [0, 360], s and l in [0, 100]."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    ok = isinstance(value, (list, tuple)) and len(value) == 3 and all(isinstance(c, (list, tuple)) and len(c) == 3 for c in value)
    if not ok:
        raise ValueError("context: expected three colours, each [h, s, l]")
    flat = [x for c in value for x in c]
    if not set(map(type, flat)) <= {int, float}:  # the common case passes this at C speed (bool is not int here)
        if not all(_is_number(x) for x in flat):
            raise ValueError("context: expected numbers only")
    if not all(_finite(x) for x in flat):
        raise ValueError("context: NaN or infinite values")
    for h, s, l in value:  # noqa: E741
        if not (0 <= h <= HUE_MAX and 0 <= s <= SL_MAX and 0 <= l <= SL_MAX):
            raise ValueError(f"context: colour {[h, s, l]} is out of range (h in [0, 360], s and l in [0, 100])")
    return [[float(x) for x in c] for c in value]


def check_utterance_row(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"utterance: expected a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError("utterance: empty text")
    if len(value) > MAX_UTTERANCE_CHARS:
        raise ValueError(f"utterance: {len(value)} characters, more than the limit of {MAX_UTTERANCE_CHARS}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:  # JSON's "\ud800": no tokenizer reads it
        raise ValueError(f"utterance: not valid Unicode (a lone surrogate at character {e.start})") from None
    return value


def _rows(name: str, values: Any) -> list:
    if values is None or isinstance(values, (str, bytes, dict)):
        raise ValueError(f"{name}: expected a sequence (a batch), got {type(values).__name__}")
    if isinstance(values, torch.Tensor) or hasattr(values, "tolist"):
        values = values.tolist()
    return list(values)


def _each(name: str, values: list, check) -> list:
    out = []
    for i, v in enumerate(values):
        try:
            out.append(check(v))
        except ValueError as e:
            msg = str(e)
            single = name[:-1] + ": "  # "message: NaN ..." reads "messages[3]: NaN ..."
            raise ValueError(f"{name}[{i}]: {msg.removeprefix(single)}") from None
    return out


def _colors(colors: list | torch.Tensor | None) -> torch.Tensor | None:
    return None if colors is None else torch.as_tensor(colors, dtype=torch.float32)


# -- the façade -------------------------------------------------------------------------------------


class Translator:
    """A loaded translator bundle of any kind, with checked batch inputs and per-row results."""

    def __init__(self, inner: registry.AnyTranslator, channel_name: str | None = None):
        self.inner = inner
        self.channel: ChannelConfig = inner.channel
        self.channel_name = channel_name or self.channel.kind
        self._tokenizer = inner.tokenizer
        self._max_tokens = inner.max_utterance_tokens

    @property
    def name(self) -> str:
        return self.inner.name

    @classmethod
    def from_pretrained(cls, directory: str | Path, channel_name: str | None = None) -> Translator:
        """Load a translator bundle of any kind (`translator.translate.colors.registry`)."""
        return cls(registry.load(directory), channel_name)

    @classmethod
    def from_run(cls, run: str | Path, channel: str, name: str = DEFAULT_NAME) -> Translator:
        """`RUN/translators/<channel>/<name>`; a clear error naming the channels the run has."""
        return cls.from_pretrained(find_translator(run, channel, name), channel)

    # -- checks -------------------------------------------------------------------------------
    def check_code(self, messages: Sequence[Any], contexts: Sequence[Any]) -> ResidualCheck:
        """Whether a batch of continuous messages, with their contexts, carries a code this translator's
        model of the agents does not know (`translator/translate/colors/residuals.py`): something a planted signal
        hides from every per-message flag shows over a few hundred messages."""
        rows = _each("messages", _rows("messages", messages), self.check_message)
        colors = self._contexts(contexts, len(rows))
        if colors is None:
            raise ValueError("contexts: the residual check needs each message's context")
        if self.inner.message_model is None:
            raise ValueError(f"the {self.name} translator holds no model of the agents' messages to check them against")
        return check_residuals(self.inner.message_model, torch.as_tensor(rows, dtype=torch.float32), _colors(colors))

    def check_message(self, value: Any) -> list:
        return check_message_row(self.channel, value)

    def check_utterance(self, value: Any) -> str:
        text = check_utterance_row(value)
        tokens = len(self._tokenizer.encode([text])[0])
        if not tokens:
            raise ValueError("utterance: no words the English model can read")
        if tokens > self._max_tokens:
            warnings.warn(f"utterance of {tokens} tokens ({text[:40]!r}...): the English listener reads the first "
                          f"{self._max_tokens}", UtteranceTruncated, stacklevel=2)
        return text

    check_context = staticmethod(check_context_row)

    def _contexts(self, contexts: Any, n: int) -> list | None:
        if contexts is None:
            return None
        rows = _rows("contexts", contexts)
        if len(rows) != n:
            raise ValueError(f"contexts: {len(rows)} contexts for {n} rows (give one per row, or none)")
        return _each("contexts", rows, check_context_row) if rows else None

    # -- translation ----------------------------------------------------------------------------
    def to_english(self, messages: Sequence[Any], contexts: Sequence[Any] | None = None) -> list[Translation]:
        """Translate a batch of agent messages; in each row's context when `contexts` is given."""
        rows = _each("messages", _rows("messages", messages), self.check_message)
        colors = self._contexts(contexts, len(rows))
        if not rows:
            return []
        return self.english_checked(rows, colors)

    def to_neuralese(self, utterances: Sequence[str], contexts: Sequence[Any] | None = None) -> list[Translation]:
        """Translate a batch of English utterances to agent messages; in context when `contexts` is given."""
        texts = _each("utterances", _rows("utterances", utterances), self.check_utterance)
        colors = self._contexts(contexts, len(texts))
        if not texts:
            return []
        return self.neuralese_checked(texts, colors)

    # Already-checked batches (the streaming CLI and the service check row by row first).
    def english_checked(self, messages: list | torch.Tensor, colors: list | torch.Tensor | None) -> list[Translation]:
        m = torch.as_tensor(messages, dtype=torch.long if self.channel.discrete else torch.float32)
        return self.inner.to_english(m, _colors(colors)).rows()

    def neuralese_checked(self, texts: list[str], colors: list | torch.Tensor | None) -> list[Translation]:
        return self.inner.to_neuralese(texts, _colors(colors)).rows()

    def __repr__(self) -> str:
        return f"Translator({self.name}, channel={self.channel_name!r} ({self.channel.kind}))"


def served_channels(run: str | Path, name: str = DEFAULT_NAME) -> list[str]:
    """The channels with a translator `name` in `run`; `ValueError` when there is none."""
    channels = run_channels(run, name)
    if not channels:
        raise ValueError(f"{run}: no translators to serve (expected {Path(run) / TRANSLATORS_DIR / '<channel>' / name})")
    return channels


def load_run_translators(run: str | Path, name: str = DEFAULT_NAME) -> dict[str, Translator]:
    """Every translator `name` of a run (`RUN/translators/<channel>/<name>`), by channel."""
    return {c: Translator.from_run(run, c, name) for c in served_channels(run, name)}
