"""Driving agents: bundles round-trip, bad messages are refused, training resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.driving.a2c import A2CConfig, train_agents
from translator.games.driving.agents import DrivingAgent, DrivingAgentConfig
from translator.games.driving.game import OBS_SIZE, template_starts
from translator.games.driving.play import AgentDriver, play, unchanged
from translator.storage.bundle import BundleError


def test_a_bundle_round_trips(tmp_path):
    agent = DrivingAgent(DrivingAgentConfig(hidden=16, silent=True))
    agent.save_pretrained(tmp_path / "a")
    again = DrivingAgent.from_pretrained(tmp_path / "a")
    assert again.config == agent.config
    for k, v in agent.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])
    with pytest.raises(BundleError, match="driving_agent"):
        from translator.games.driving.english import HumanSpeaker

        HumanSpeaker.from_pretrained(tmp_path / "a")


def test_a_wrong_size_message_is_refused():
    agent = DrivingAgent(DrivingAgentConfig(hidden=16))
    with pytest.raises(ValueError, match=r"message: expected shape \(batch, 64\), got \(3, 10\)"):
        agent.step(torch.zeros(3, OBS_SIZE), torch.zeros(3, 10), agent.initial_state(3))


def test_silent_agents_ignore_what_they_hear():
    agent = DrivingAgent(DrivingAgentConfig(hidden=16, silent=True))
    obs, h = torch.rand(4, OBS_SIZE), agent.initial_state(4)
    a = agent.step(obs, torch.randn(4, 64), h)[0]
    b = agent.step(obs, torch.zeros(4, 64), h)[0]
    assert torch.equal(a, b)


def test_training_resumes_to_the_same_weights(tmp_path):
    cfg = dict(batch=8, checkpoint_every=2, seed=3)
    small = DrivingAgentConfig(hidden=16)
    straight = train_agents(tmp_path / "straight", small, A2CConfig(updates=4, **cfg))
    train_agents(tmp_path / "resumed", small, A2CConfig(updates=4, **cfg), stop_at=2)
    resumed = train_agents(tmp_path / "resumed", small, A2CConfig(updates=4, **cfg))
    for k, v in straight.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_self_play_is_seeded():
    agent = DrivingAgent(DrivingAgentConfig(hidden=16))
    runs = []
    for _ in range(2):
        state = template_starts(6, np.random.default_rng(0))
        runs.append(play(state, [AgentDriver(agent, 1), AgentDriver(agent, 2)], [unchanged, unchanged], 20).reward)
    assert np.array_equal(runs[0], runs[1])


@pytest.mark.slow
def test_talking_agents_beat_silent_ones(tmp_path):
    """A fixed setup: the demo's agents at 500 updates instead of 2000 (several minutes of CPU).
    On 400 fresh starts the talking cars must crash clearly less than the silent ones (the preset's
    crash penalty teaches the silent ones to reach their goals about as often, by conventions)."""
    cfg = A2CConfig(updates=500, seed=0)
    rates = {}
    for silent in (False, True):
        agent = train_agents(tmp_path / str(silent), DrivingAgentConfig(silent=silent), cfg)
        state = template_starts(400, np.random.default_rng(7))
        out = play(state, [AgentDriver(agent, 1), AgentDriver(agent, 2)], [unchanged, unchanged], 20)
        rates[silent] = (out.success.mean(), out.crash.mean())
    assert rates[False][1] <= rates[True][1] - 0.05, rates
    assert rates[False][0] >= rates[True][0] - 0.02, rates


def test_the_crash_penalty_shapes_training_rewards_only():
    from training.driving.rollout import rollout

    agent = DrivingAgent(DrivingAgentConfig(hidden=16))
    starts = template_starts(64, np.random.default_rng(3))
    plain = rollout(agent, starts, torch.Generator().manual_seed(0))
    shaped = rollout(agent, starts, torch.Generator().manual_seed(0), crash_penalty=3.0)
    crashed = plain.final.crashed
    assert crashed.any() and not crashed.all()  # seeded: some episodes crash, some do not
    np.testing.assert_array_equal(plain.total_reward, shaped.total_reward)  # the game's reward is untouched
    gap = (plain.reward - shaped.reward).sum(dim=0).reshape(2, -1)  # (car, episode)
    np.testing.assert_allclose(gap.numpy(), 3.0 * np.stack([crashed, crashed]).astype(np.float32), atol=1e-5)
