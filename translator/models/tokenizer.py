"""SentencePiece tokenizer trained on the corpus's utterances and saved with every English bundle.

Normalisation folds case (`nmt_nfkc_cf`), so "Blue" and "blue" are one token. `~`, the corpus's
separator between a round's messages, is a symbol of its own.

Before SentencePiece sees a text, the comparative and superlative endings (and "-ish") are split
off ("darker" -> "dark##er", two pieces): SentencePiece keeps frequent words whole, but a listener learns
"darker", "lighter" and "brighter" better when they share the "-er" that makes them comparatives.
`decode` glues the endings back on.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm
import torch

from translator.storage.atomic import atomic_write
from translator.storage.bundle import BundleError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
MODEL_FILE = "tokenizer.model"
SUFFIX_MARK = "##"
# Words that end in -er/-est/-ish without being comparatives of a colour word.
_NOT_SUFFIXED = {
    "other", "another", "never", "ever", "over", "under", "after", "rather", "either", "neither",
    "whether", "water", "paper", "silver", "lavender", "power", "forest", "interest", "finish",
    "number", "better", "lower", "upper", "sister", "mister", "butter", "summer", "winter", "answer",
}
_SUFFIX = re.compile(r"\b([a-z]{3,}?)(er|est|ish)\b", re.IGNORECASE)


def split_suffixes(text: str) -> str:
    """"The darker one" -> "The dark##er one" (leaves the words in `_NOT_SUFFIXED` alone)."""
    return _SUFFIX.sub(lambda m: m[0] if m[0].lower() in _NOT_SUFFIXED else f"{m[1]}{SUFFIX_MARK}{m[2]}", text)


def join_suffixes(text: str) -> str:
    return text.replace(SUFFIX_MARK, "")


class Tokenizer:
    def __init__(self, model_proto: bytes):
        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 1000) -> Tokenizer:
        """Train a unigram model; deterministic for the same texts (single thread)."""
        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter([split_suffixes(t) for t in texts]),
            model_writer=buf,
            vocab_size=vocab_size,
            model_type="unigram",
            normalization_rule_name="nmt_nfkc_cf",
            pad_id=PAD,
            unk_id=UNK,
            bos_id=BOS,
            eos_id=EOS,
            user_defined_symbols=["~", SUFFIX_MARK + "er", SUFFIX_MARK + "est", SUFFIX_MARK + "ish"],
            hard_vocab_limit=False,  # small corpora may not support the full size
            num_threads=1,
            minloglevel=2,
        )
        return cls(buf.getvalue())

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, texts: list[str], max_len: int | None = None) -> list[list[int]]:
        """Token ids (no BOS/EOS), cut to `max_len` tokens."""
        ids = self.sp.encode([split_suffixes(t) for t in texts])
        return [x[:max_len] for x in ids] if max_len is not None else ids

    def decode(self, ids: list[list[int]]) -> list[str]:
        return [join_suffixes(self.sp.decode([i for i in x if i > EOS])) for x in ids]

    def pieces(self, text: str) -> list[str]:
        return self.sp.encode(split_suffixes(text), out_type=str)

    def save_pretrained(self, directory: str | Path) -> None:
        """Write `tokenizer.model` into `directory` (a bundle's, whose `config.json` records its hash)."""
        atomic_write(Path(directory) / MODEL_FILE, self.model_proto)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Tokenizer:
        path = Path(directory) / MODEL_FILE
        if not path.is_file():
            raise BundleError(f"{path}: tokenizer model missing")
        try:
            tok = cls(path.read_bytes())
        except RuntimeError as e:  # sentencepiece rejects a truncated or foreign protobuf
            raise BundleError(f"{path}: not a readable SentencePiece model ({e})") from None
        if tok.vocab_size == 0:  # an empty file parses as an empty model
            raise BundleError(f"{path}: empty SentencePiece model")
        return tok


def pad_batch(ids: list[list[int]], bos: bool = False, eos: bool = False) -> tuple:
    """Pad token lists into `(tokens (B, T) long, lengths (B,) long)`, optionally adding BOS/EOS."""
    seqs = [([BOS] if bos else []) + list(x) + ([EOS] if eos else []) for x in ids]
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    tokens = torch.full((len(seqs), max(1, int(lengths.max()) if len(seqs) else 1)), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        tokens[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return tokens, lengths
