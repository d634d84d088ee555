"""The bayes listener: the exact posterior under the speaker, `A_l(x | m, c) ∝ p(m | c, x)`."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from training.colors.agents import AgentTrainArgs, accuracy_by_condition, self_play_accuracy, train_agents
from translator.models.channels import CHANNEL_KINDS, ChannelConfig
from translator.models.colors.agents import AgentConfig, AgentListener, Agents, to_speaker_order

torch.set_num_threads(1)


def bayes_agents(kind: str, reconstruction: bool = False) -> Agents:
    torch.manual_seed(0)
    channel = ChannelConfig(kind=kind, dim=16, vocab_size=6, max_len=3)
    return Agents.create(AgentConfig(channel=channel, color_dim=32, hidden_dim=32, listener="bayes", reconstruction=reconstruction))


@pytest.mark.parametrize("kind", CHANNEL_KINDS)
def test_listener_is_the_posterior_under_the_speaker(kind, small_rounds):
    agents = bayes_agents(kind)
    colors, order, targets = Agents.round_inputs(small_rounds["test"][:25])
    msg = agents.speak(colors, order, targets, generator=torch.Generator().manual_seed(1))
    # log p(m | c, x) for each colour x in turn as the target, by the speaker on its own screen
    log_p = torch.stack([agents.message_log_prob(colors, order, torch.full_like(targets, x), msg.value) for x in range(3)], 1)
    probs = agents.listen(msg, colors)
    assert torch.allclose(probs, torch.softmax(log_p, -1), atol=1e-5)
    assert torch.allclose(probs.sum(-1), torch.ones(25))
    # the listener's screen order does not matter: permuting the colours permutes its belief
    perm = torch.tensor([2, 0, 1])
    assert torch.allclose(agents.listen(msg, colors[:, perm]), probs[:, perm], atol=1e-5)


@pytest.mark.parametrize("kind", CHANNEL_KINDS)
def test_one_encoding_training_path_gives_the_listener_logits(kind, small_rounds):
    """`speaker(..., every_target=True)` (training) scores exactly what the listener scores."""
    agents = bayes_agents(kind)
    colors, _, targets = Agents.round_inputs(small_rounds["test"][:10])
    msg, logits = agents.speaker(colors, targets, generator=torch.Generator().manual_seed(2), every_target=True)
    assert logits.shape == (10, 3)
    assert torch.allclose(logits, agents.listener(msg, colors), atol=1e-5)
    # gradients reach the speaker through the candidates, and through the message where it carries them
    carrier = {"continuous": msg.value, "gumbel": msg.onehot, "reinforce": None}[kind]
    assert carrier is None or carrier.requires_grad
    logits[:, 0].sum().backward()
    assert agents.speaker.state[0].weight.grad.abs().sum() > 0


def test_gumbel_log_prob_reads_one_hots_like_ids(small_rounds):
    agents = bayes_agents("gumbel")
    colors, order, targets = Agents.round_inputs(small_rounds["test"][:30])
    sc, st = to_speaker_order(colors, order, targets)
    msg = agents.speaker(sc, st, generator=torch.Generator().manual_seed(3))
    hidden = agents.speaker.hidden(sc, st)
    from_onehots = agents.speaker.channel.log_prob(hidden, msg)
    assert from_onehots.requires_grad and msg.onehot is not None
    assert torch.allclose(from_onehots, agents.speaker.channel.log_prob(hidden, msg.value), atol=1e-5)
    assert torch.allclose(from_onehots, msg.log_prob, atol=1e-5)


def test_bundle_has_no_listener_weights_and_round_trips(small_rounds, tmp_path):
    agents = bayes_agents("continuous")
    agents.save_pretrained(tmp_path / "a")
    assert load_file(str(tmp_path / "a" / "listener" / "model.safetensors")) == {}
    loaded = Agents.from_pretrained(tmp_path / "a")
    assert loaded.listener.config.listener == "bayes"
    colors, order, targets = Agents.round_inputs(small_rounds["test"][:20])
    msg = agents.speak(colors, order, targets, generator=torch.Generator().manual_seed(4))
    assert torch.equal(agents.listen(msg, colors), loaded.listen(msg, colors))
    alone = AgentListener.from_pretrained(tmp_path / "a" / "listener")
    with pytest.raises(ValueError, match="needs its speaker"):
        alone(msg.value, colors)
    # with a reconstruction head, that head is the listener's only weights
    with_head = bayes_agents("continuous", reconstruction=True)
    assert {k.split(".")[0] for k in with_head.listener.state_dict()} == {"message", "reconstruct"}
    logits, guess = with_head.listener(msg, colors, reconstruct=True)
    assert logits.shape == (20, 3) and guess.shape[0] == 20


def test_bundle_with_an_unknown_listener_kind_is_refused(tmp_path):
    import json

    from translator.storage.bundle import BundleError, reseal

    bayes_agents("gumbel").save_pretrained(tmp_path / "a")
    path = tmp_path / "a" / "listener" / "config.json"
    data = json.loads(path.read_text())
    data["config"]["listener"] = "oracle"
    path.write_text(json.dumps(data))
    reseal(tmp_path / "a")  # the edit recorded: the listener kind's own check
    with pytest.raises(BundleError, match="listener kind 'oracle' is unknown"):
        Agents.from_pretrained(tmp_path / "a")


def test_cli_offers_the_library_listener_kinds():
    from translator.apps.cli import build_parser
    from translator.models.colors.agents import LISTENER_KINDS

    agents = build_parser(("train", "agents"))._subparsers._group_actions[0].choices["train"]
    agents = agents._subparsers._group_actions[0].choices["agents"]
    LISTENERS = next(a.choices for a in agents._actions if a.dest == "listener")
    assert LISTENERS == LISTENER_KINDS


def test_bad_listener_configs():
    with pytest.raises(ValueError, match="valid kinds: learned, bayes"):
        AgentConfig(listener="oracle")
    with pytest.raises(ValueError, match="valid kinds: learned, bayes"):
        AgentTrainArgs(listener="oracle")
    with pytest.raises(ValueError, match="needs channel noise > 0"):
        AgentConfig(channel=ChannelConfig(kind="continuous", noise=0.0), listener="bayes")


def test_bayes_self_play_learns_fast_and_resumes(small_rounds, tmp_path):
    """100 steps of the small model: well above chance on held-out games; killed and resumed,
    the same weights bit for bit."""
    channel = ChannelConfig(kind="continuous", dim=16, noise=0.3)
    args = AgentTrainArgs(channel=channel, color_dim=32, hidden_dim=32, listener="bayes", batch_size=64, steps=100, lr=8e-3,
                          checkpoint_every=40, eval_every=0, progress=False)
    agents = train_agents(small_rounds["train"], args, tmp_path / "whole", val_rounds=[])
    acc = accuracy_by_condition(small_rounds["test"], self_play_accuracy(agents, small_rounds["test"]))
    assert acc["all"] > 0.9, acc  # 0.96 measured; chance is 1/3

    class Killed(Exception):
        pass

    def kill(step):
        if step == 50:
            raise Killed

    with pytest.raises(Killed):
        train_agents(small_rounds["train"], args, tmp_path / "killed", val_rounds=[], on_step=kill)
    resumed = train_agents(small_rounds["train"], args, tmp_path / "killed", val_rounds=[])
    for k, v in agents.speaker.state_dict().items():
        assert torch.equal(v, resumed.speaker.state_dict()[k]), k


def test_cli_trains_a_single_symbol_gumbel_pair_with_a_bayes_listener(game_slice, tmp_path, capsys):
    from translator.apps.cli import main
    from translator.games.colors.corpus import load_rounds
    from translator.translate.colors.collection import collect

    main(["train", "agents", "--channel", "gumbel", "--listener", "bayes", "--max-len", "1", "--temperature", "2",
          "--train", str(game_slice(0, 10)), "--out", str(tmp_path), "--steps", "6", "--batch-size", "16", "--threads", "1"])  # fmt: skip
    assert "saved" in capsys.readouterr().out
    agents = Agents.from_pretrained(tmp_path / "agents" / "gumbel")
    assert agents.listener.config.listener == "bayes" and agents.training["args"]["listener"] == "bayes"
    assert (agents.channel.max_len, agents.channel.temperature) == (1, 2.0)
    rows = load_rounds(game_slice(10, 12))
    pairs = collect(agents, rows)  # the agent listener's choices come from the speaker's posterior
    assert len(pairs) == len(rows) and set(pairs["agent_choice"]) <= {0, 1, 2}
