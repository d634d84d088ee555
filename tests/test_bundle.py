"""Bundles: `EnglishModels.save_pretrained` / `from_pretrained` and every way loading must fail.

Tests of a check behind the content hashes edit a file and then `reseal` the bundle (record the
edited content), as a consistent bundle with a wrong part would be; bundles of format 1 (before
the hashes) are made by `to_format_1`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct

import pytest
import torch

from translator.games.colors.corpus import contexts_tensor
from translator.models.colors.english import GAME, KIND, EnglishModels
from translator.models.colors.listener import EnglishListener, ListenerConfig
from translator.models.colors.speaker import EnglishSpeaker
from translator.storage.bundle import CONFIG_FILE, FILES_KEY, FORMAT_VERSION, WEIGHTS_FILE, BundleError, reseal


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


@pytest.fixture()
def legacy(bundle):
    """The bundle as format 1 wrote it: no recorded hashes."""
    to_format_1(bundle)
    return bundle


def to_format_1(root):
    for path in [root / CONFIG_FILE, *root.rglob(f"*/{CONFIG_FILE}")]:
        data = json.loads(path.read_text(encoding="utf-8"))
        if FILES_KEY in data:
            del data[FILES_KEY]
            data["format_version"] = 1
            path.write_text(json.dumps(data), encoding="utf-8")


def edit_json(path, **changes):
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flip_byte(path, offset=None):
    """Invert one byte of `path` (by default the middle one)."""
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def tensor_data_offset(path):
    """Where the tensor data of a safetensors file begins (after its length-prefixed JSON header)."""
    (header_len,) = struct.unpack("<Q", path.read_bytes()[:8])
    return 8 + header_len


def test_layout(saved_english, english_models):
    names = {p.relative_to(saved_english).as_posix() for p in saved_english.rglob("*")}
    assert names == {
        "config.json", "training.json", "tokenizer.model",
        "listener", "listener/config.json", "listener/model.safetensors",
        "speaker", "speaker/config.json", "speaker/model.safetensors",
    }  # fmt: skip
    # config.json records the hash of every other file; of a nested bundle, its config.json
    hashed = ["listener/config.json", "speaker/config.json", "tokenizer.model", "training.json"]
    assert json.loads((saved_english / "config.json").read_text()) == {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "game": GAME,
        FILES_KEY: {name: sha256(saved_english / name) for name in hashed},
    }
    listener_cfg = json.loads((saved_english / "listener" / "config.json").read_text())
    assert listener_cfg["kind"] == EnglishListener.bundle_kind
    assert listener_cfg["format_version"] == FORMAT_VERSION == 3
    assert listener_cfg[FILES_KEY] == {WEIGHTS_FILE: sha256(saved_english / "listener" / WEIGHTS_FILE)}
    assert listener_cfg["config"]["vocab_size"] == english_models.tokenizer.vocab_size
    assert not [p for p in saved_english.parent.rglob(".*")]  # atomic writes leave no temporary files


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


# -- content hashes -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tokenizer.model", "training.json", "listener/config.json", "speaker/config.json",
                                  "listener/model.safetensors", "speaker/model.safetensors"])
def test_a_changed_byte_in_any_file_raises_naming_it(bundle, name):
    flip_byte(bundle / name)
    with pytest.raises(BundleError, match="content does not match the sha256 recorded in") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(info.value).startswith(f"{bundle / name}: ")


def test_a_changed_byte_inside_tensor_data_raises(bundle, english_models):
    """A flipped byte in a tensor's data still parses: only the hash notices it."""
    weights = bundle / "listener" / WEIGHTS_FILE
    flip_byte(weights, tensor_data_offset(weights) + 3)
    with pytest.raises(BundleError, match="content does not match") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(info.value).startswith(f"{weights}: ")
    to_format_1(bundle)  # without hashes it loads, with other weights
    loaded = EnglishModels.from_pretrained(bundle).listener.state_dict()
    assert any(not torch.equal(v, loaded[k]) for k, v in english_models.listener.state_dict().items())


def test_format_1_bundles_load_unverified(legacy, english_models, probe):
    texts, colors, targets = probe
    loaded = EnglishModels.from_pretrained(legacy)
    assert torch.equal(loaded.listen(texts, colors), english_models.listen(texts, colors))
    assert torch.equal(loaded.speaker_log_prob(texts, colors, targets), english_models.speaker_log_prob(texts, colors, targets))


def test_format_2_without_hashes_raises(bundle):
    data = json.loads((bundle / CONFIG_FILE).read_text())
    del data[FILES_KEY]
    data["format_version"] = 2
    (bundle / CONFIG_FILE).write_text(json.dumps(data))
    with pytest.raises(BundleError, match="format version 2 needs a 'files' map") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(bundle / CONFIG_FILE) in str(info.value)


@pytest.mark.parametrize("entry", ["../english/training.json", "/etc/hostname"])
def test_hash_entries_outside_the_bundle_raise(bundle, entry):
    data = json.loads((bundle / CONFIG_FILE).read_text())
    data[FILES_KEY][entry] = "0" * 64
    (bundle / CONFIG_FILE).write_text(json.dumps(data))
    with pytest.raises(BundleError, match="bad entry"):
        EnglishModels.from_pretrained(bundle)


def test_a_listed_file_that_is_gone_raises(bundle):
    (bundle / "training.json").unlink()
    with pytest.raises(BundleError, match=r"missing \(listed in") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(info.value).startswith(f"{bundle / 'training.json'}: ")


def test_a_sub_bundle_swapped_for_another_raises(bundle, tmp_path):
    """The parent records its nested bundles' config.json, so a part from another save is refused."""
    other = EnglishModels.from_pretrained(bundle)
    for p in other.speaker.parameters():
        p.data.add_(0.01)
    other.speaker.save_pretrained(bundle / "speaker")  # a whole, consistent speaker bundle
    with pytest.raises(BundleError, match="content does not match") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(info.value).startswith(f"{bundle / 'speaker' / CONFIG_FILE}: ")


def test_reseal_records_an_edit(bundle):
    flip_byte(bundle / "training.json", 0)  # "{" becomes invalid: the JSON check is behind the hash
    reseal(bundle)
    with pytest.raises(BundleError, match="not valid JSON"):
        EnglishModels.from_pretrained(bundle)


# -- every way a consistent bundle can still be wrong ----------------------------------------------


@pytest.mark.parametrize("part", ["listener", "speaker"])
@pytest.mark.parametrize("cut", ["half", "last byte", "8 bytes", "empty"])
def test_truncated_weights_raise(legacy, part, cut):
    weights = legacy / part / WEIGHTS_FILE
    data = weights.read_bytes()
    keep = {"half": len(data) // 2, "last byte": len(data) - 1, "8 bytes": 8, "empty": 0}[cut]
    weights.write_bytes(data[:keep])
    with pytest.raises(BundleError, match="truncated or corrupt weights file") as info:
        EnglishModels.from_pretrained(legacy)
    assert str(weights) in str(info.value)


@pytest.mark.parametrize("part", ["listener", "speaker"])
def test_truncated_weights_of_a_hashed_bundle_raise(bundle, part):
    weights = bundle / part / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(BundleError, match="content does not match") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(info.value).startswith(f"{weights}: ")


def test_missing_weights_raise(bundle):
    (bundle / "speaker" / WEIGHTS_FILE).unlink()
    with pytest.raises(BundleError, match="missing") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(bundle / "speaker" / WEIGHTS_FILE) in str(info.value)


def test_weights_of_the_wrong_model_raise(bundle):
    shutil.copy(bundle / "speaker" / WEIGHTS_FILE, bundle / "listener" / WEIGHTS_FILE)
    reseal(bundle)
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
    reseal(bundle)
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
    reseal(bundle)
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
    reseal(bundle)
    with pytest.raises(BundleError, match="config does not fit ListenerConfig"):
        EnglishModels.from_pretrained(bundle)


def test_vocabulary_mismatch_raises(bundle):
    # a consistent listener bundle, but for a larger vocabulary than the tokenizer's
    torch.manual_seed(0)
    EnglishListener(ListenerConfig(vocab_size=321)).save_pretrained(bundle / "listener")
    reseal(bundle)
    with pytest.raises(BundleError, match="vocabulary size 321 does not match") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(bundle / "listener") in str(info.value)


@pytest.mark.parametrize("corrupt", [b"garbage" * 40, None])
def test_corrupt_tokenizer_raises(bundle, corrupt):
    path = bundle / "tokenizer.model"
    data = path.read_bytes()
    path.write_bytes(corrupt if corrupt is not None else data[: len(data) // 3])
    reseal(bundle)
    with pytest.raises(BundleError, match="not a readable SentencePiece model") as info:
        EnglishModels.from_pretrained(bundle)
    assert str(path) in str(info.value)


def test_training_json_is_optional(english_models, tmp_path, probe):
    EnglishModels(english_models.tokenizer, english_models.listener, english_models.speaker).save_pretrained(tmp_path / "e")
    assert not (tmp_path / "e" / "training.json").exists()
    loaded = EnglishModels.from_pretrained(tmp_path / "e")
    assert loaded.training == {}
    texts, colors, _ = probe
    assert torch.equal(loaded.listen(texts, colors), english_models.listen(texts, colors))


def test_training_json_of_a_format_1_bundle_is_optional(legacy):
    (legacy / "training.json").unlink()
    assert EnglishModels.from_pretrained(legacy).training == {}
