"""SentencePiece tokenizer (`translator.models.tokenizer`): training, round trip, suffix split, bundles."""

from __future__ import annotations

import pytest
import torch

from translator.models.tokenizer import BOS, EOS, MODEL_FILE, PAD, UNK, Tokenizer, join_suffixes, pad_batch, split_suffixes
from translator.storage.bundle import BundleError


@pytest.fixture(scope="module")
def utterances(train_table) -> list[str]:
    header, rows = train_table
    col = header.index("contents")
    return [r[col] for r in rows[:1000]]


@pytest.fixture(scope="module")
def tok(utterances) -> Tokenizer:
    return Tokenizer.train(utterances, vocab_size=500)


def test_special_ids(tok):
    assert (PAD, UNK, BOS, EOS) == (0, 1, 2, 3)
    assert [tok.sp.id_to_piece(i) for i in (PAD, UNK, BOS, EOS)] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert tok.sp.pad_id() == PAD and tok.sp.unk_id() == UNK
    assert 200 < tok.vocab_size <= 500


def test_training_is_deterministic(utterances, tok):
    again = Tokenizer.train(utterances, vocab_size=500)
    assert again.model_proto == tok.model_proto


@pytest.mark.parametrize(
    "text",
    [
        "The darker blue one",
        "Medium pink ~ the medium dark one",
        "lime",
        "the brightest GREEN",
        "Bright Purple ~ not the grayish one",
        "the lighter of the two blues",
    ],
)
def test_round_trip_is_case_folded(tok, text):
    ids = tok.encode([text])[0]
    assert ids and all(i > EOS for i in ids)
    assert tok.decode([ids]) == [text.lower()]


def test_round_trip_on_training_utterances(tok, utterances):
    ids = tok.encode(utterances)
    decoded = tok.decode(ids)
    same = sum(d == " ".join(u.lower().split()) for d, u in zip(decoded, utterances))
    assert same / len(utterances) > 0.99  # the rest contain characters too rare for the vocabulary ("*", ":")


def test_case_is_folded(tok):
    assert tok.encode(["BLUE Darker"]) == tok.encode(["blue darker"])


def test_suffix_split(tok):
    assert split_suffixes("darker") == "dark##er"
    assert split_suffixes("The Darker one, the brightest, greenish") == "The Dark##er one, the bright##est, green##ish"
    assert split_suffixes("the other lavender one, never brighter") == "the other lavender one, never bright##er"
    assert split_suffixes("her red") == "her red"  # stems need 3+ letters
    assert join_suffixes("dark##er bright##est") == "darker brightest"
    assert tok.pieces("darker") == ["▁dark", "##er"]
    assert tok.pieces("the lighter one")[-2:] == ["##er", "▁one"]
    assert "~" in tok.pieces("blue ~ red")
    # the comparative ending is one shared token
    er = tok.sp.piece_to_id("##er")
    assert er > EOS
    assert er in tok.encode(["darker"])[0] and er in tok.encode(["lighter"])[0]
    assert tok.decode(tok.encode(["darker", "lighter"])) == ["darker", "lighter"]


def test_encode_max_len(tok):
    text = "the very very very very light blue one not the dark one"
    full = tok.encode([text])[0]
    assert len(full) > 5
    assert tok.encode([text], max_len=5) == [full[:5]]


def test_decode_drops_special_ids(tok):
    ids = tok.encode(["blue"])[0]
    assert tok.decode([[BOS, *ids, EOS, PAD, PAD]]) == ["blue"]


def test_save_and_load_round_trip(tmp_path, tok, utterances):
    tok.save_pretrained(tmp_path / "bundle")
    assert (tmp_path / "bundle" / MODEL_FILE).is_file()
    loaded = Tokenizer.from_pretrained(tmp_path / "bundle")
    assert loaded.model_proto == tok.model_proto
    assert loaded.vocab_size == tok.vocab_size
    assert loaded.encode(utterances[:200]) == tok.encode(utterances[:200])


def test_missing_model_raises(tmp_path):
    with pytest.raises(BundleError, match="tokenizer model missing") as info:
        Tokenizer.from_pretrained(tmp_path)
    assert str(tmp_path / MODEL_FILE) in str(info.value)


@pytest.mark.parametrize("corrupt", ["truncated", "garbage"])
def test_corrupt_model_raises(tmp_path, tok, corrupt):
    path = tmp_path / MODEL_FILE
    path.write_bytes(tok.model_proto[: len(tok.model_proto) // 2] if corrupt == "truncated" else b"not a model \x00\xff" * 50)
    with pytest.raises(BundleError, match="not a readable SentencePiece model") as info:
        Tokenizer.from_pretrained(tmp_path)
    assert str(path) in str(info.value)


def test_empty_model_file_raises(tmp_path):
    (tmp_path / MODEL_FILE).write_bytes(b"")
    with pytest.raises(BundleError, match="tokenizer.model"):
        Tokenizer.from_pretrained(tmp_path)


def test_pad_batch_values():
    tokens, lengths = pad_batch([[5, 6, 7], [8]])
    assert tokens.dtype == torch.long and lengths.dtype == torch.long
    assert tokens.tolist() == [[5, 6, 7], [8, PAD, PAD]]
    assert lengths.tolist() == [3, 1]

    tokens, lengths = pad_batch([[5, 6, 7], [8]], bos=True, eos=True)
    assert tokens.tolist() == [[BOS, 5, 6, 7, EOS], [BOS, 8, EOS, PAD, PAD]]
    assert lengths.tolist() == [5, 3]

    tokens, lengths = pad_batch([[9], [4, 4]], eos=True)
    assert tokens.tolist() == [[9, EOS, PAD], [4, 4, EOS]]
    assert lengths.tolist() == [2, 3]


def test_pad_batch_edge_cases():
    tokens, lengths = pad_batch([])
    assert tokens.shape == (0, 1) and lengths.tolist() == []
    tokens, lengths = pad_batch([[]])
    assert tokens.tolist() == [[PAD]] and lengths.tolist() == [0]
