"""Sequence-to-sequence translators (`translator.translate.colors.seq2seq`, `training.colors.seq2seq`): tiny models only.

The learning tests train small encoder-decoders on synthetic mappings (four distinct messages <->
four distinct phrases) until they must get every one right: a translator that ignores its input
can only say one thing, and fails.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from training.colors.seq2seq import Pairs, Seq2SeqTrainArgs, train_seq2seq
from translator.models.channels import ChannelConfig, check_message
from translator.models.tokenizer import Tokenizer
from translator.storage.bundle import BundleError
from translator.translate.colors.seq2seq import KIND, Seq2SeqConfig, Seq2SeqTranslator

torch.set_num_threads(1)

PHRASES = ["the bright red one", "dark blue", "not green ~ the purple", "pale yellow"]
CONT = ChannelConfig(kind="continuous", dim=16)
DISC = ChannelConfig(kind="gumbel", vocab_size=8, max_len=3)
SYMBOLS = torch.tensor([[1, 2, 0], [3, 0, 0], [4, 5, 6], [7, 7, 0]])
TINY = dict(d_model=32, layers=1, heads=2, ffn_dim=64, dropout=0.0, max_text_len=24, prefix_tokens=2)
FAST = Seq2SeqTrainArgs(epochs=20, batch_size=16, lr=5e-3, patience=20)


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.train(PHRASES * 10 + ["grey teal orange pink light darker brown"] * 3, vocab_size=60)


def base_vectors() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.nn.functional.normalize(torch.randn(4, CONT.dim, generator=g), dim=-1)


def synthetic_pairs(channel: ChannelConfig, n: int = 160, colors: bool = False) -> tuple[Pairs, torch.Tensor]:
    """`n` pairs cycling through four (message, phrase) pairs; continuous messages are noisy."""
    g = torch.Generator().manual_seed(1)
    idx = torch.arange(n) % 4
    if channel.discrete:
        base, messages = SYMBOLS, SYMBOLS[idx]
    else:
        base = base_vectors()
        messages = base[idx] + 0.1 * torch.randn(n, channel.dim, generator=g)
    hsl = torch.rand(n, 3, 3, generator=g) * torch.tensor([360.0, 100, 100]) if colors else None
    return Pairs(messages, [PHRASES[i] for i in idx], hsl, [f"game{i % 8}" for i in range(n)]), base


def train_tiny(tok, direction: str, channel: ChannelConfig, pairs: Pairs, args=FAST, use_context=False, **cfg):
    config = Seq2SeqConfig(direction=direction, channel=channel, use_context=use_context, **{**TINY, **cfg})
    return train_seq2seq(pairs, config, val=pairs, tokenizer=tok, args=args)


@pytest.fixture(scope="module")
def trained(tok):
    """One tiny trained translator per (direction, channel), trained once for the module."""
    models = {}
    for direction in ("to_english", "to_neuralese"):
        for channel in (CONT, DISC):
            pairs, _ = synthetic_pairs(channel)
            models[direction, channel.kind] = train_tiny(tok, direction, channel, pairs)
    return models


# -- learning ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["continuous", "gumbel"])
def test_to_english_learns_a_mapping(trained, kind):
    model = trained["to_english", kind]
    base = SYMBOLS if kind == "gumbel" else base_vectors()
    assert model.translate(base) == PHRASES
    assert model.translate(base, num_beams=3) == PHRASES
    # the right phrase is by far the most likely for each message
    for i in range(4):
        ll = model.log_likelihood(base[i : i + 1].expand(4, -1), PHRASES)
        assert ll.argmax().item() == i and ll[i] > -2.0
    info = model.training_info
    assert info["best_epoch"] >= 1 and info["val_loss"] < 0.5 and info["seconds"] > 0
    assert info["data"]["train_pairs"] == 160


def test_to_neuralese_discrete_learns_a_mapping(trained):
    model = trained["to_neuralese", "gumbel"]
    out = model.translate(PHRASES)
    assert out.dtype == torch.long and out.shape == (4, DISC.max_len)
    assert torch.equal(out, SYMBOLS)
    assert torch.equal(model.translate(PHRASES, num_beams=4), SYMBOLS)
    assert torch.equal(check_message(DISC, out, 4), out)
    ll = model.log_likelihood(SYMBOLS, PHRASES)
    assert ll.shape == (4,) and (ll > -1.0).all()


def test_to_neuralese_continuous_regresses_the_message(trained):
    model = trained["to_neuralese", "continuous"]
    out = model.translate(PHRASES)
    assert out.dtype == torch.float32 and out.shape == (4, CONT.dim)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(4))  # normalize_output
    cos = out @ base_vectors().T
    assert torch.equal(cos.argmax(-1), torch.arange(4)) and (cos.diagonal() > 0.9).all()
    with pytest.raises(ValueError, match="regression"):
        model.log_likelihood(out, PHRASES)
    model.config.normalize_output = False
    try:
        raw = model.translate(PHRASES)
    finally:
        model.config.normalize_output = True
    torch.testing.assert_close(torch.nn.functional.normalize(raw, dim=-1), out)


def test_context_is_read(tok):
    """Phrase = f(colours): one constant message, so only the context can tell them apart."""
    n = 160
    idx = torch.arange(n) % 4
    hues = torch.tensor([0.0, 90, 180, 270])[idx]
    colors = torch.stack([hues, torch.full((n,), 80.0), torch.full((n,), 50.0)], -1)[:, None].expand(n, 3, 3).clone()
    pairs = Pairs(torch.zeros(n, CONT.dim), [PHRASES[i] for i in idx], colors, [f"g{i % 8}" for i in range(n)])
    model = train_tiny(tok, "to_english", CONT, pairs, use_context=True)
    assert model.translate(torch.zeros(4, CONT.dim), colors[:4]) == PHRASES
    with pytest.raises(ValueError, match="colors"):
        model.translate(torch.zeros(4, CONT.dim))


def test_context_dropout_gives_one_model_for_both_settings(tok):
    """Phrase = f(message) and the colours are noise: trained with a share of rounds' colours hidden,
    the model translates with the colours and without them (context-free), and says the same."""
    pairs, _ = synthetic_pairs(CONT)
    g = torch.Generator().manual_seed(0)
    pairs.colors = torch.rand(len(pairs), 3, 3, generator=g) * torch.tensor([360.0, 100, 100])
    model = train_tiny(tok, "to_english", CONT, pairs, use_context=True, context_dropout=0.3)
    assert model.context_free and model.config.context_dropout == 0.3
    base = base_vectors()
    assert model.translate(base) == PHRASES == model.translate(base, pairs.colors[:4])
    with pytest.raises(ValueError, match="context_dropout"):
        Seq2SeqConfig(direction="to_english", channel=CONT, use_context=True, context_dropout=1.0)


def test_belief_input_reads_the_message_models_belief(tok, tmp_path):
    """Phrase = the hue of the colour an (untrained) agent speaker's message points at: the encoder
    is told each colour's belief, learns to name the one believed in, and the bundle carries its
    message model."""
    from translator.models.colors.agents import AgentConfig, Agents
    from translator.models.colors.message_model import ExactMessageModel, beliefs_from_log_probs, row_log_probs

    torch.manual_seed(0)
    channel = ChannelConfig(kind="continuous", dim=16, noise=0.001)  # little noise: sharp beliefs
    agents = Agents.create(AgentConfig(channel=channel, color_dim=16, hidden_dim=16))
    model_of_messages = ExactMessageModel(agents)
    n = 240
    g = torch.Generator().manual_seed(3)
    quadrant = torch.stack([torch.randperm(4, generator=g)[:3] for _ in range(n)])  # three distinct hues a round
    colors = torch.stack([quadrant * 90.0 + 45, torch.full((n, 3), 80.0), torch.full((n, 3), 50.0)], -1)
    targets = torch.randint(3, (n,), generator=g)
    messages = agents.speak(colors, torch.arange(3).repeat(n, 1), targets, sample=False).value
    belief = beliefs_from_log_probs(row_log_probs(model_of_messages, messages, colors))
    assert torch.equal(belief.argmax(-1), targets) and (belief.max(-1).values > 0.9).float().mean() > 0.9
    named = quadrant[torch.arange(n), targets]
    pairs = Pairs(messages, [PHRASES[i] for i in named], colors, [f"g{i % 8}" for i in range(n)])
    config = Seq2SeqConfig(direction="to_english", channel=channel, use_context=True, belief_input=True, **TINY)
    args = Seq2SeqTrainArgs(epochs=40, batch_size=16, lr=5e-3, patience=40)
    model = train_seq2seq(pairs, config, val=pairs, tokenizer=tok, args=args, message_model=model_of_messages)
    out = model.translate(messages, colors)
    assert sum(o == PHRASES[i] for o, i in zip(out, named.tolist())) >= 0.95 * n
    model.save_pretrained(tmp_path / "b")
    again = Seq2SeqTranslator.from_pretrained(tmp_path / "b")
    assert again.translate(messages, colors) == out
    shutil.rmtree(tmp_path / "b" / "message_model")
    with pytest.raises(BundleError, match="message_model"):
        Seq2SeqTranslator.from_pretrained(tmp_path / "b")
    with pytest.raises(ValueError, match="belief_input"):
        Seq2SeqConfig(direction="to_neuralese", channel=channel, use_context=True, belief_input=True)
    with pytest.raises(ValueError, match="message model"):
        Seq2SeqTranslator(model.config, tok)
    other = ExactMessageModel(Agents.create(AgentConfig(channel=CONT, color_dim=16, hidden_dim=16)))  # noise 0.3, not 0.001
    with pytest.raises(ValueError, match="channel"):
        Seq2SeqTranslator(model.config, tok, message_model=other)


# -- shapes, validity and bad input -----------------------------------------------------------


@pytest.mark.parametrize("use_context", [False, True])
@pytest.mark.parametrize("channel", [CONT, DISC, ChannelConfig(kind="reinforce", vocab_size=5, max_len=4)], ids=lambda c: c.kind)
def test_untrained_outputs_are_valid(tok, channel, use_context):
    torch.manual_seed(0)
    colors = torch.rand(5, 3, 3) * torch.tensor([360.0, 100, 100]) if use_context else None
    texts = ["blue", "the dark one", "not red", "pale ~ yellow", "green"]
    messages = torch.randn(5, channel.dim) if not channel.discrete else torch.randint(0, channel.vocab_size, (5, channel.max_len))
    config = dict(channel=channel, use_context=use_context, text_vocab_size=tok.vocab_size, **TINY)
    eng = Seq2SeqTranslator(Seq2SeqConfig(direction="to_english", **config), tok).eval()
    out = eng.translate(messages, colors)
    assert isinstance(out, list) and len(out) == 5 and all(isinstance(t, str) for t in out)
    ll = eng.log_likelihood(messages, texts, colors)
    assert ll.shape == (5,) and (ll < 0).all()
    assert eng.translate(messages[:0], None if colors is None else colors[:0]) == []
    neu = Seq2SeqTranslator(Seq2SeqConfig(direction="to_neuralese", **config), tok).eval()
    for beams in (1, 2):
        m = neu.translate(texts, colors, num_beams=beams)
        assert torch.equal(check_message(channel, m, 5), m)  # valid and canonical
        if channel.discrete:
            assert m.dtype == torch.long and m.shape == (5, channel.max_len)
        else:
            assert m.shape == (5, channel.dim) and torch.isfinite(m).all()
    # batching does not change the result (up to float rounding: padding changes the sums' order)
    torch.testing.assert_close(neu.translate(texts, colors, batch_size=2), neu.translate(texts, colors))
    assert eng.translate(messages, colors, batch_size=2) == out
    empty = neu.translate([], None if colors is None else colors[:0])
    assert empty.shape[0] == 0


def test_bad_input_is_refused(trained):
    eng, neu = trained["to_english", "continuous"], trained["to_neuralese", "gumbel"]
    with pytest.raises(ValueError, match=r"shape \(N, 16\)"):
        eng.translate(torch.zeros(2, 15))
    with pytest.raises(ValueError, match="NaN"):
        eng.translate(torch.full((2, 16), float("nan")))
    with pytest.raises(ValueError, match="num_beams"):
        eng.translate(torch.zeros(2, 16), num_beams=0)
    with pytest.raises(ValueError, match="empty text"):
        neu.translate(["blue", ""])
    with pytest.raises(ValueError, match="empty text"):
        neu.translate(["   "])
    with pytest.raises(TypeError, match="string"):
        neu.translate("blue")
    with pytest.raises(ValueError, match="out of range"):
        trained["to_english", "gumbel"].translate(torch.tensor([[9, 0, 0]]))
    with pytest.raises(ValueError, match="expected 2 messages"):
        eng.log_likelihood(torch.zeros(3, 16), ["a", "b"])
    with pytest.raises(ValueError):
        Seq2SeqConfig(direction="sideways")
    with pytest.raises(ValueError, match="divisible"):
        Seq2SeqConfig(d_model=30, heads=4)


# -- bundles --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [("to_english", "continuous"), ("to_english", "gumbel"), ("to_neuralese", "continuous"), ("to_neuralese", "gumbel")])
def test_save_load_round_trip(trained, tmp_path, key):
    model = trained[key]
    model.save_pretrained(tmp_path / "b")
    data = json.loads((tmp_path / "b" / "config.json").read_text())
    assert data["kind"] == KIND and data["direction"] == key[0] and data["channel"]["kind"] == key[1]
    assert data["use_context"] is False and data["training"]["best_epoch"] == model.training_info["best_epoch"]
    assert (tmp_path / "b" / "model" / "model.safetensors").is_file() and (tmp_path / "b" / "tokenizer.model").is_file()
    loaded = Seq2SeqTranslator.from_pretrained(tmp_path / "b")
    assert loaded.config == model.config and not loaded.training
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    if key[0] == "to_english":
        src = SYMBOLS if key[1] == "gumbel" else base_vectors()
        assert loaded.translate(src, num_beams=2) == model.translate(src, num_beams=2)
        torch.testing.assert_close(loaded.log_likelihood(src, PHRASES), model.log_likelihood(src, PHRASES), rtol=0, atol=0)
    else:
        assert torch.equal(loaded.translate(PHRASES), model.translate(PHRASES))


def test_bad_bundles_are_refused(trained, tmp_path):
    model = trained["to_english", "gumbel"]
    good = tmp_path / "good"
    model.save_pretrained(good)

    def variant(name: str):
        d = tmp_path / name
        shutil.copytree(good, d)
        return d

    with pytest.raises(BundleError, match="no such bundle"):
        Seq2SeqTranslator.from_pretrained(tmp_path / "nowhere")
    data = json.loads((good / "config.json").read_text())
    d = variant("foreign")
    (d / "config.json").write_text(json.dumps({"kind": "neuralese.english", "format_version": 1, "game": "colors_in_context"}))
    with pytest.raises(BundleError, match="neuralese.english"):
        Seq2SeqTranslator.from_pretrained(d)
    d = variant("newer")
    (d / "config.json").write_text(json.dumps({**data, "format_version": 99}))
    with pytest.raises(BundleError, match="format version"):
        Seq2SeqTranslator.from_pretrained(d)
    d = variant("badconfig")
    (d / "config.json").write_text(json.dumps({**data, "direction": "sideways"}))
    with pytest.raises(BundleError, match="direction"):
        Seq2SeqTranslator.from_pretrained(d)
    d = variant("resized")
    (d / "config.json").write_text(json.dumps({**data, "d_model": 64}))
    with pytest.raises(BundleError, match="d_model"):
        Seq2SeqTranslator.from_pretrained(d)
    d = variant("noweights")
    (d / "model" / "model.safetensors").unlink()
    with pytest.raises(BundleError, match="model.safetensors: missing"):
        Seq2SeqTranslator.from_pretrained(d)
    d = variant("truncated")
    w = d / "model" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:1000])
    with pytest.raises(BundleError, match="model.safetensors"):
        Seq2SeqTranslator.from_pretrained(d)
    d = variant("noheads")
    (d / "heads.safetensors").unlink()
    with pytest.raises(BundleError, match="heads.safetensors: missing"):
        Seq2SeqTranslator.from_pretrained(d)
    d = variant("notok")
    (d / "tokenizer.model").unlink()
    with pytest.raises(BundleError, match="tokenizer"):
        Seq2SeqTranslator.from_pretrained(d)
    d = variant("otherchannel")  # the heads no longer fit: a clear error, not a shape crash
    (d / "config.json").write_text(json.dumps({**data, "channel": {**data["channel"], "vocab_size": 9}}))
    with pytest.raises(BundleError, match="vocab_size|heads"):
        Seq2SeqTranslator.from_pretrained(d)


# -- training -------------------------------------------------------------------------------


def test_training_is_deterministic_for_a_seed(tok):
    pairs, _ = synthetic_pairs(CONT, colors=True)
    args = Seq2SeqTrainArgs(epochs=2, batch_size=16, max_steps=12, seed=3)

    def run(seed: int):
        a = Seq2SeqTrainArgs(**{**args.__dict__, "seed": seed})
        config = Seq2SeqConfig(direction="to_english", channel=CONT, use_context=True, **{**TINY, "dropout": 0.1})
        return train_seq2seq(pairs, config, tokenizer=tok, args=a)  # validation: held-out games

    a, b, c = run(3), run(3), run(4)
    for k, v in a.state_dict().items():
        assert torch.equal(b.state_dict()[k], v), k
    assert any(not torch.equal(c.state_dict()[k], v) for k, v in a.state_dict().items())
    assert a.training_info["data"]["validation"] == "10% of training games"
    assert a.training_info["data"]["train_pairs"] + a.training_info["data"]["val_pairs"] == len(pairs)


def test_training_without_a_tokenizer_trains_one(tmp_path):
    pairs, _ = synthetic_pairs(DISC, n=48)
    config = Seq2SeqConfig(direction="to_neuralese", channel=DISC, **TINY)
    model = train_seq2seq(pairs, config, args=Seq2SeqTrainArgs(epochs=1, max_steps=2, vocab_size=40))
    assert model.config.text_vocab_size == model.tokenizer.vocab_size <= 40
    model.save_pretrained(tmp_path / "b")
    assert torch.equal(Seq2SeqTranslator.from_pretrained(tmp_path / "b").translate(PHRASES), model.translate(PHRASES))


def test_pairs_split_by_game_and_from_collection():
    from datasets import Dataset

    pairs, _ = synthetic_pairs(DISC, n=40, colors=True)
    rest, held = pairs.split_games(0.25, seed=0)
    assert len(rest) + len(held) == 40 and not set(rest.game_ids) & set(held.game_ids)
    assert len(set(held.game_ids)) == 2
    with pytest.raises(ValueError, match="game"):
        Pairs(pairs.messages, pairs.texts).split_games(0.1)
    with pytest.raises(ValueError, match="texts"):
        Pairs(pairs.messages[:3], pairs.texts)
    ds = Dataset.from_dict({
        "message": pairs.messages.tolist(), "colors": pairs.colors.tolist(), "utterance": pairs.texts, "game_id": pairs.game_ids,
    })
    back = Pairs.from_collection(ds)
    assert torch.equal(back.messages, pairs.messages) and back.texts == pairs.texts and back.game_ids == pairs.game_ids
    torch.testing.assert_close(back.colors, pairs.colors)
