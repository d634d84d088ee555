"""`LearnedMessageModel`: p(m | c, x) fitted to a collected corpus ("bring your own agents")."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from datasets import Dataset

from training.colors.agents import AgentTrainArgs, train_agents
from training.colors.learned_speaker import LearnedSpeakerArgs, compare_beliefs, fit_message_model
from translator.games.colors.corpus import load_rounds
from translator.games.colors.sampling import sample_contexts
from translator.games.split import split_by_game
from translator.models.channels import ChannelConfig
from translator.models.colors.learned_speaker import LearnedMessageModel
from translator.models.colors.message_model import ExactMessageModel, beliefs_from_log_probs, row_log_probs
from translator.storage.bundle import BundleError
from translator.translate.colors.collection import collect

torch.set_num_threads(1)

# -- a synthetic Gaussian speaker with known mean and noise ----------------------------------

DIM, SIGMA, OFFSET = 6, 0.4, 3.0
_W = torch.randn(DIM, 3, generator=torch.Generator().manual_seed(1)) * 2


def true_means(colors: torch.Tensor) -> torch.Tensor:
    """`(K, 3, DIM)`: far from unit norm and not centred (offset 3), so nothing may assume either."""
    h = colors[..., 0] * (2 * math.pi / 360)
    feats = torch.stack([torch.cos(h), torch.sin(h), colors[..., 1] / 100], -1)
    return OFFSET + feats @ _W.T


def synthetic_corpus(n: int, seed: int) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    ctx = sample_contexts(n, g)
    colors, targets = ctx["colors"], ctx["targets"]
    mu = true_means(colors)[torch.arange(n), targets]
    messages = mu + SIGMA * torch.randn(n, DIM, generator=g)
    return Dataset.from_dict({
        "game_id": [f"s{seed}-{i // 10}" for i in range(n)],
        "colors": colors.tolist(), "target": targets.tolist(), "message": messages.tolist(),
    })  # fmt: skip


CONT = ChannelConfig(kind="continuous", dim=DIM)
FAST = LearnedSpeakerArgs(color_dim=64, hidden_dim=64, max_epochs=10, batch_size=128)


@pytest.fixture(scope="module")
def synthetic_model() -> LearnedMessageModel:
    return fit_message_model(synthetic_corpus(3000, seed=0), CONT, FAST)


def test_recovers_mean_and_noise_of_a_gaussian_speaker(synthetic_model):
    m = synthetic_model
    assert abs(m.noise - SIGMA) / SIGMA < 0.05, m.noise
    test = sample_contexts(500, torch.Generator().manual_seed(9))["colors"]
    err = (m.means(test) - true_means(test)).pow(2).mean().sqrt().item()
    spread = true_means(test).std().item()
    assert err < 0.5 * SIGMA and err < 0.1 * spread, (err, spread)  # the mean is much closer than the noise
    # the fit record says what happened
    info = m.fit_info
    assert info["data"]["val_rounds"] > 0 and info["data"]["train_rounds"] + info["data"]["val_rounds"] == 3000
    assert info["best_epoch"] >= 1 and math.isclose(info["noise"], m.noise)


def test_log_prob_grid_is_the_gaussian_density(synthetic_model):
    m = synthetic_model
    colors = sample_contexts(4, torch.Generator().manual_seed(3))["colors"]
    z = torch.randn(5, DIM) + OFFSET
    grid = m.log_prob_grid(z, colors)
    assert grid.shape == (5, 4, 3)
    mu = m.means(colors)
    ref = torch.distributions.Normal(mu[None], m.noise).log_prob(z[:, None, None]).sum(-1)
    assert torch.allclose(grid, ref, atol=1e-3)
    # one context per message agrees with the grid's diagonal
    rows = m.row_log_probs(z[:4], colors)
    assert torch.allclose(rows, torch.diagonal(grid[:4], dim1=0, dim2=1).T, atol=1e-3)
    assert torch.equal(row_log_probs(m, z[:4], colors), rows)  # the shared helper takes the model's own path
    with pytest.raises(ValueError, match="expected 4 messages, got 3"):
        row_log_probs(m, z[:3], colors)
    with pytest.raises(ValueError, match="continuous channel expects shape"):
        m.log_prob_grid(torch.zeros(2, DIM + 1), colors)


def test_fit_is_deterministic_and_splits_by_game():
    ds = synthetic_corpus(400, seed=5)
    args = LearnedSpeakerArgs(color_dim=32, hidden_dim=32, max_epochs=2)
    a, b = fit_message_model(ds, CONT, args), fit_message_model(ds, CONT, args)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
    assert a.noise == b.noise
    rest, held = split_by_game(ds["game_id"], 0.1, seed=0)
    games = ds["game_id"]
    assert not {games[i] for i in rest} & {games[i] for i in held} and len(rest) + len(held) == len(ds)


def test_fit_rejects_a_corpus_that_does_not_fit_the_channel():
    ds = synthetic_corpus(40, seed=1)
    with pytest.raises(ValueError, match="corpus: messages"):
        fit_message_model(ds, ChannelConfig(kind="continuous", dim=DIM + 2))
    with pytest.raises(ValueError, match="missing column"):
        fit_message_model(ds.remove_columns("game_id"), CONT)


def test_save_load_round_trip(synthetic_model, tmp_path):
    synthetic_model.save_pretrained(tmp_path / "lm")
    loaded = LearnedMessageModel.from_pretrained(tmp_path / "lm")
    assert loaded.channel == synthetic_model.channel and loaded.noise == synthetic_model.noise
    assert loaded.fit_info["best_epoch"] == synthetic_model.fit_info["best_epoch"]
    colors = sample_contexts(6, torch.Generator().manual_seed(4))["colors"]
    z = torch.randn(7, DIM) + OFFSET
    assert torch.equal(loaded.log_prob_grid(z, colors), synthetic_model.log_prob_grid(z, colors))
    config = json.loads((tmp_path / "lm" / "config.json").read_text())
    assert config["kind"] == "neuralese.learned_message_model" and config["config"]["channel"]["dim"] == DIM
    # broken bundles fail cleanly
    bad = tmp_path / "bad"
    shutil.copytree(tmp_path / "lm", bad)
    config["config"]["noise"] = -1
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match="noise"):
        LearnedMessageModel.from_pretrained(bad)
    with pytest.raises(BundleError, match="no such bundle"):
        LearnedMessageModel.from_pretrained(tmp_path / "nope")


# -- real agents: learned beliefs approach exact ones ----------------------------------------


@pytest.fixture(scope="module", params=["continuous", "gumbel"])
def real(request, game_slice):
    """Briefly trained agents, their collection on 60 games, and a held-out tenth of those games."""
    kind = request.param
    # gumbel: the relational code of the learned listener, without an absolute first symbol (the
    # preset's absolute symbol and reconstruction loss give a code this short fit does not reach)
    relational = dict(channel=ChannelConfig(kind="gumbel", vocab_size=32, max_len=3, temperature=0.5), listener="learned",
                      lr=4e-3, absolute_first_symbol=False, reconstruction_weight=0.0) if kind == "gumbel" else {}
    agents = train_agents(load_rounds(game_slice(0, 30)),
                          AgentTrainArgs.for_channel(kind, steps=150, batch_size=64, eval_every=0, progress=False, **relational))
    ds = collect(agents, load_rounds(game_slice(0, 60)))
    rest, held = split_by_game(ds["game_id"], 0.1, seed=0)
    args = LearnedSpeakerArgs(color_dim=64, hidden_dim=64, max_epochs=8)
    return agents, fit_message_model(ds.select(rest), agents.channel, args), ds.select(held)


def test_learned_beliefs_are_distributions_close_to_exact_ones(real):
    agents, model, test = real
    exact = ExactMessageModel(agents)
    messages, colors = torch.tensor(test["message"]), torch.tensor(test["colors"])
    grid = model.log_prob_grid(messages[:20], colors[:7])
    assert grid.shape == (20, 7, 3) and torch.isfinite(grid).all()
    beliefs = beliefs_from_log_probs(grid)
    assert (beliefs >= 0).all() and torch.allclose(beliefs.sum(-1), torch.ones(20, 7))
    # learned beliefs are much closer to the exact ones than a uniform belief is
    ref = beliefs_from_log_probs(row_log_probs(exact, messages, colors))
    uniform_kl = (ref * (ref.clamp_min(1e-30).log() + math.log(3))).sum(-1).mean().item()
    got = compare_beliefs(exact, model, messages, colors)
    assert got["rounds"] == len(test)
    assert got["kl"] < 0.2 * uniform_kl, (got, uniform_kl)
    assert got["argmax_agreement"] > 0.9, got
    # per-round scores (the model's own batched path) are the diagonal of the grid
    grid = model.log_prob_grid(messages[:10], colors[:10])
    assert torch.allclose(row_log_probs(model, messages[:10], colors[:10]), torch.diagonal(grid, dim1=0, dim2=1).T, atol=1e-4)


def test_real_model_save_load_round_trip(real, tmp_path):
    _, model, test = real
    model.save_pretrained(tmp_path / "lm")
    loaded = LearnedMessageModel.from_pretrained(tmp_path / "lm")
    assert loaded.channel == model.channel and loaded.fit_info["data"] == model.fit_info["data"]
    messages, colors = torch.tensor(test["message"][:30]), torch.tensor(test["colors"][:5])
    assert torch.equal(loaded.log_prob_grid(messages, colors), model.log_prob_grid(messages, colors))
    if model.channel.discrete:
        with pytest.raises(ValueError, match="discrete"):
            model.means(colors)


def test_beam_search_finds_the_most_likely_message():
    """Against every message of a small channel; width 1 is the decoder's own greedy message."""
    import itertools

    from translator.models.channels import canonical_symbols, make_channel
    from translator.models.colors.message_model import beam_search

    torch.manual_seed(0)
    decoder = make_channel(ChannelConfig(kind="gumbel", vocab_size=5, max_len=3), 16)
    with torch.no_grad():
        for p in decoder.parameters():
            p.mul_(8)  # peaked steps, where greedy decoding goes wrong
        hidden = torch.randn(200, 16)
        every = canonical_symbols(torch.tensor(list(itertools.product(range(5), repeat=3)))).unique(dim=0)
        scores = decoder.log_prob_all(hidden, every)  # (messages, rows)
        best = every[scores.argmax(0)]
        greedy = beam_search(decoder, hidden, width=1)
        assert torch.equal(greedy, decoder.speak(hidden, sample=False).value)
        assert torch.equal(beam_search(decoder, hidden, width=8), best)
        assert not torch.equal(greedy, best)  # the case beam search is for
    with pytest.raises(ValueError, match="beam width"):
        beam_search(decoder, hidden, width=0)


def test_no_progress_bars_when_stderr_is_not_a_terminal(capsys):
    """Output to a file or a pipe gets the epoch summaries (stdout), not bars redrawn on stderr."""
    fit_message_model(synthetic_corpus(400, seed=2), CONT, LearnedSpeakerArgs(color_dim=8, hidden_dim=8, max_epochs=2, batch_size=32))
    out, err = capsys.readouterr()
    assert err == "" and out.count("epoch") == 2
