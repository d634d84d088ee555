"""The evaluation listener: a CNN listener, trained apart from the translators' GRU listener."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from training.colors.eval_listener import EvalListenerArgs, save_eval_listener, train_eval_listener
from translator.games.colors.corpus import contexts_tensor
from translator.models.colors.cnn_listener import CNNListener, EvaluationListener
from translator.models.colors.listener import EnglishListener, ListenerConfig
from translator.models.tokenizer import Tokenizer
from translator.storage.bundle import BundleError, reseal

torch.set_num_threads(1)

COLORS = [[[0.0, 80, 50], [120, 80, 50], [240, 80, 50]], [[30.0, 60, 50], [35, 60, 50], [200, 60, 50]]]
SMALL = dict(embed_dim=64, channels=64, color_dim=128, batch_size=32)


@pytest.fixture(scope="module")
def corpus(small_rounds):
    """Training rounds (48 games; the trainer holds 10% of them out itself), held-out games, tokenizer."""
    train = small_rounds["train"] + small_rounds["val"]
    return train, small_rounds["test"], Tokenizer.train([r.text for r in train], 200)


@pytest.fixture(scope="module")
def trained(corpus) -> EvaluationListener:
    train, _, tok = corpus
    return train_eval_listener(train, tok, EvalListenerArgs(epochs=4, **SMALL))


@pytest.fixture(scope="module")
def probe(corpus):
    rounds = corpus[1][:60]
    return [r.text for r in rounds], contexts_tensor(rounds)


def test_listen_returns_probability_rows_in_input_order(trained, probe):
    texts, colors = probe
    p = trained.listen(texts, colors)
    assert p.shape == (60, 3) and (p >= 0).all()
    torch.testing.assert_close(p.sum(-1), torch.ones(60))
    for bs in (1, 7):  # batches of other sizes and paddings give the same rows
        torch.testing.assert_close(trained.listen(texts, colors, batch_size=bs), p, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(trained.listen([texts[13]], colors[13:14])[0], p[13], atol=1e-6, rtol=1e-5)
    assert trained.listen([], torch.zeros(0, 3, 3)).shape == (0, 3)


def test_calibration_is_a_temperature_on_the_logits(trained, probe):
    texts, colors = probe
    raw = trained.listen(texts, colors, calibrated=False)
    torch.testing.assert_close(trained.listen(texts, colors), torch.softmax(raw.log() / trained.temperature, -1), atol=1e-5, rtol=1e-4)


def test_short_training_beats_chance_on_held_out_games(trained, corpus):
    _, test, _ = corpus
    p = trained.listen([r.text for r in test], contexts_tensor(test))
    accuracy = (p.argmax(-1) == torch.tensor([r.target for r in test])).float().mean().item()
    assert accuracy > 0.5, f"accuracy {accuracy:.3f} on {len(test)} held-out rounds (chance 1/3)"
    info = trained.training
    assert info["args"]["seed"] == 1 and info["architecture"] == "cnn"
    assert info["listener"]["val_accuracy"] > 0.45 and 1 <= info["listener"]["best_epoch"] <= 4
    assert info["listener"]["temperature"] == trained.temperature > 0 and info["seconds"] > 0
    assert info["data"]["val_rounds"] > 0 and info["data"]["train_rounds"] + info["data"]["val_rounds"] == len(corpus[0])


def test_save_load_round_trip(trained, probe, tmp_path):
    texts, colors = probe
    path = save_eval_listener(trained, tmp_path / "run")
    assert path == tmp_path / "run" / "eval_listener"
    assert {p.name for p in path.iterdir()} >= {"config.json", "training.json", "tokenizer.model", "listener"}
    loaded = EvaluationListener.from_pretrained(path)
    assert torch.equal(loaded.listen(texts, colors), trained.listen(texts, colors))
    assert loaded.training == json.loads(json.dumps(trained.training))
    assert loaded.listener.config == trained.listener.config


def test_foreign_or_broken_bundle_names_the_file(trained, tmp_path):
    good = tmp_path / "good"
    trained.save_pretrained(good)

    other = tmp_path / "other"
    shutil.copytree(good, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "kind": "neuralese.english"}))
    with pytest.raises(BundleError, match=r"config\.json: holds a 'neuralese.english'"):
        EvaluationListener.from_pretrained(other)

    gru = tmp_path / "gru"  # the translators' listener where the CNN should be
    shutil.copytree(good, gru)
    shutil.rmtree(gru / "listener")
    EnglishListener(ListenerConfig(vocab_size=trained.tokenizer.vocab_size)).save_pretrained(gru / "listener")
    reseal(gru)  # recorded as the bundle's part
    with pytest.raises(BundleError, match=r"listener/config\.json: holds a 'neuralese.english_listener'"):
        EvaluationListener.from_pretrained(gru)

    cut = tmp_path / "cut"
    shutil.copytree(good, cut)
    weights = cut / "listener" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(BundleError, match=r"model\.safetensors"):
        EvaluationListener.from_pretrained(cut)

    with pytest.raises(BundleError, match="no such bundle directory"):
        EvaluationListener.from_pretrained(tmp_path / "missing")


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text_raises(trained, text):
    with pytest.raises(ValueError, match="utterance 1: empty text"):
        trained.listen(["blue", text], COLORS)


def test_bad_colours_raise(trained):
    with pytest.raises(ValueError, match="2 contexts for 1 rows"):
        trained.listen(["blue"], COLORS)
    with pytest.raises(ValueError, match=r"shape \(N, 3, 3\)"):
        trained.listen(["blue"], [[0.0, 0.0, 0.0]])


def test_training_is_deterministic_for_a_seed(corpus):
    train, _, tok = corpus
    train = train[:600]

    def run(seed: int) -> EvaluationListener:
        return train_eval_listener(train, tok, EvalListenerArgs(seed=seed, epochs=1, max_steps=8, **SMALL))

    a, b, c = run(3), run(3), run(4)
    sa, sb, sc = (m.listener.state_dict() for m in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa) and a.temperature == b.temperature
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_model_rejects_bad_kernel_sizes():
    from translator.models.colors.cnn_listener import CNNListenerConfig

    with pytest.raises(ValueError, match="kernel_sizes"):
        CNNListener(CNNListenerConfig(vocab_size=10, kernel_sizes=[0, 2]))


def test_game_subsets_split_whole_games_and_complement_each_other(corpus):
    from training.colors.eval_listener import select_games

    train = corpus[0]
    assert select_games(train, EvalListenerArgs()) is train
    held = select_games(train, EvalListenerArgs(games_fraction=0.5, games_seed=2))
    rest = select_games(train, EvalListenerArgs(games_fraction=0.5, games_seed=2, games_part="rest"))
    held_games, rest_games = {r.game_id for r in held}, {r.game_id for r in rest}
    assert held_games and rest_games and not held_games & rest_games
    assert held_games | rest_games == {r.game_id for r in train} and len(held) + len(rest) == len(train)
    assert len(held_games) == round(0.5 * len({r.game_id for r in train}))
    assert held_games != {r.game_id for r in select_games(train, EvalListenerArgs(games_fraction=0.5, games_seed=3))}
    for bad in (dict(games_fraction=0.0), dict(games_fraction=1.0), dict(games_fraction=0.5, games_part="both")):
        with pytest.raises(ValueError, match="games_"):
            EvalListenerArgs(**bad)


def test_training_on_a_subset_records_it(corpus):
    train, _, tok = corpus
    args = EvalListenerArgs(epochs=1, max_steps=4, games_fraction=0.5, games_seed=1, **SMALL)
    data = train_eval_listener(train, tok, args).training["data"]
    assert data["games"] == round(0.5 * len({r.game_id for r in train}))
    assert data["train_rounds"] + data["val_rounds"] < len(train)
    assert data["subset"] == "held part of split_games(0.5, seed=1)"
