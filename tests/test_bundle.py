"""Bundles: `EnglishModels.save_pretrained` / `from_pretrained` and every way loading must fail."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from translator.bundle import CONFIG_FILE, FORMAT_VERSION, WEIGHTS_FILE, BundleError
from translator.corpus import contexts_tensor
from translator.english import GAME, KIND, EnglishModels
from translator.listener import EnglishListener, ListenerConfig
from translator.speaker import EnglishSpeaker


@pytest.fixture()
def bundle(saved_english, tmp_path):
    """A fresh copy of the session bundle, free to corrupt."""
    path = tmp_path / "english"
    shutil.copytree(saved_english, path)
    return path


@pytest.fixture(scope="module")
def probe(small_rounds):
    rounds = small_rounds["test"][:64]
    return [r.text for r in rounds], contexts_tensor(rounds), torch.tensor([r.target for r in rounds])


def edit_json(path, **changes):
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_layout(saved_english, english_models):
    names = {p.relative_to(saved_english).as_posix() for p in saved_english.rglob("*")}
    assert names == {
        "config.json", "training.json", "tokenizer.model",
        "listener", "listener/config.json", "listener/model.safetensors",
        "speaker", "speaker/config.json", "speaker/model.safetensors",
    }  # fmt: skip
    assert json.loads((saved_english / "config.json").read_text()) == {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "game": GAME,
    }
    listener_cfg = json.loads((saved_english / "listener" / "config.json").read_text())
    assert listener_cfg["kind"] == EnglishListener.bundle_kind
    assert listener_cfg["config"]["vocab_size"] == english_models.tokenizer.vocab_size
    assert not list(saved_english.rglob("*.tmp"))  # atomic writes leave no temporary files


def test_round_trip_gives_identical_outputs(english_models, saved_english, probe):
    texts, colors, targets = probe
    loaded = EnglishModels.from_pretrained(saved_english)
    assert loaded.tokenizer.model_proto == english_models.tokenizer.model_proto
    assert loaded.listener.config == english_models.listener.config
    assert loaded.speaker.config == english_models.speaker.config
    assert loaded.training == json.loads(json.dumps(english_models.training))
    assert torch.equal(loaded.listen(texts, colors), english_models.listen(texts, colors))
    assert torch.equal(loaded.listen(texts, colors, calibrated=False), english_models.listen(texts, colors, calibrated=False))
    assert torch.equal(loaded.speaker_log_prob(texts, colors, targets), english_models.speaker_log_prob(texts, colors, targets))
    for a, b in zip(loaded.listener.state_dict().values(), english_models.listener.state_dict().values()):
        assert torch.equal(a, b)
    assert not loaded.listener.training and not loaded.speaker.training


def test_saving_twice_into_the_same_directory(english_models, bundle, probe):
    english_models.save_pretrained(bundle)
    texts, colors, _ = probe
    assert torch.equal(EnglishModels.from_pretrained(bundle).listen(texts, colors), english_models.listen(texts, colors))


@pytest.mark.parametrize("part", ["listener", "speaker"])
@pytest.mark.parametrize("cut", ["half", "last byte", "8 bytes", "empty"])
def test_truncated_weights_raise(bundle, part, cut):
    weights = bundle / part / WEIGHTS_FILE
    data = weights.read_bytes()
    keep = {"half": len(data) // 2, "last byte": len(data) - 1, "8 bytes": 8, "empty": 0}[cut]
    weights.write_bytes(data[:keep])
    with pytest.raises(BundleError, match="truncated or corrupt weights file") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(weights) in str(info.value)


def test_missing_weights_raise(bundle):
    (bundle / "speaker" / WEIGHTS_FILE).unlink()
    with pytest.raises(BundleError, match="missing") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(bundle / "speaker" / WEIGHTS_FILE) in str(info.value)


def test_weights_of_the_wrong_model_raise(bundle):
    shutil.copy(bundle / "speaker" / WEIGHTS_FILE, bundle / "listener" / WEIGHTS_FILE)
    with pytest.raises(BundleError, match="weights do not match the config") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(bundle / "listener" / WEIGHTS_FILE) in str(info.value)


def test_other_kind_raises(bundle):
    edit_json(bundle / CONFIG_FILE, kind="neuralese.something_else")
    with pytest.raises(BundleError, match="holds a 'neuralese.something_else', expected a 'neuralese.english'") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(bundle / CONFIG_FILE) in str(info.value)


def test_sub_bundle_of_other_kind_raises(bundle):
    edit_json(bundle / "listener" / CONFIG_FILE, kind=EnglishSpeaker.bundle_kind)
    with pytest.raises(BundleError, match="expected a 'neuralese.english_listener'") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(bundle / "listener" / CONFIG_FILE) in str(info.value)


@pytest.mark.parametrize("version", [999, FORMAT_VERSION + 1, "1", None])
def test_unsupported_format_version_raises(bundle, version):
    edit_json(bundle / CONFIG_FILE, format_version=version)
    with pytest.raises(BundleError, match="format version .* is not supported") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(bundle / CONFIG_FILE) in str(info.value)


def test_newer_sub_bundle_raises(bundle):
    edit_json(bundle / "speaker" / CONFIG_FILE, format_version=999)
    with pytest.raises(BundleError, match="999") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(bundle / "speaker" / CONFIG_FILE) in str(info.value)


def test_other_game_raises(bundle):
    edit_json(bundle / CONFIG_FILE, game="driving")
    with pytest.raises(BundleError, match="bundle is for game 'driving', expected 'colors_in_context'") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(bundle / CONFIG_FILE) in str(info.value)


def test_missing_directory_raises(tmp_path):
    with pytest.raises(BundleError, match="no such bundle directory") as info:
        EnglishModels.from_pretrained(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)


def test_missing_or_broken_config_raises(bundle):
    (bundle / CONFIG_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(BundleError, match="not valid JSON"):
        EnglishModels.from_pretrained(bundle)
    (bundle / CONFIG_FILE).write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(BundleError, match="expected a JSON object"):
        EnglishModels.from_pretrained(bundle)
    (bundle / CONFIG_FILE).unlink()
    with pytest.raises(BundleError, match="missing") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(bundle / CONFIG_FILE) in str(info.value)


def test_config_that_does_not_fit_raises(bundle):
    cfg = json.loads((bundle / "listener" / CONFIG_FILE).read_text())
    cfg["config"]["layers"] = 7
    (bundle / "listener" / CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="config does not fit ListenerConfig"):
        EnglishModels.from_pretrained(bundle)


def test_vocabulary_mismatch_raises(bundle):
    # a consistent listener bundle, but for a larger vocabulary than the tokenizer's
    torch.manual_seed(0)
    EnglishListener(ListenerConfig(vocab_size=321)).save_pretrained(bundle / "listener")
    with pytest.raises(BundleError, match="vocabulary size 321 does not match") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(bundle / "listener") in str(info.value)


@pytest.mark.parametrize("corrupt", [b"garbage" * 40, None])
def test_corrupt_tokenizer_raises(bundle, corrupt):
    path = bundle / "tokenizer.model"
    data = path.read_bytes()
    path.write_bytes(corrupt if corrupt is not None else data[: len(data) // 3])
    with pytest.raises(BundleError, match="not a readable SentencePiece model") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(path) in str(info.value)


def test_training_json_is_optional(bundle, english_models, probe):
    (bundle / "training.json").unlink()
    loaded = EnglishModels.from_pretrained(bundle)
    assert loaded.training == {}
    texts, colors, _ = probe
    assert torch.equal(loaded.listen(texts, colors), english_models.listen(texts, colors))
