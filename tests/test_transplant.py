"""Transplanted contexts (`eval.colors.transplant`) and the message-blind baseline (`eval.colors.blind`).

A toy world first, where messages and utterances name a hue and every listener picks the colour
nearest it: copying the source agrees with the agent's pick in any context, describing the
source round's target does not once the context is another round's. Then the baseline on the
tiny translation stack (conftest) and a channel's evaluation with it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.colors.blind import MessageBlind
from eval.colors.transplant import Transplant, transplant_permutation
from translator.games.colors.corpus import CONDITIONS

N = 3000


def hue_distance(hues: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
    d = (colors[..., 0] - hues[:, None]).abs() % 360
    return torch.minimum(d, 360 - d)


def pick_nearest(hues: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
    """One-hot rows `(N, 3)`: the colour whose hue is nearest."""
    return torch.nn.functional.one_hot(hue_distance(hues, colors).argmin(1), 3).float()


class HueListener:
    """English texts "hue 123.4"; picks the colour of the nearest hue (stands for both English listeners)."""

    def listen(self, texts: list[str], colors: torch.Tensor) -> torch.Tensor:
        return pick_nearest(torch.tensor([float(t.split()[1]) for t in texts]), colors)


class HueAgents:
    """Messages `(N, 1)` are hues; the agent listener picks the colour nearest the hue."""

    def listen(self, messages: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
        return pick_nearest(messages[:, 0], colors)


def say(hues: torch.Tensor) -> list[str]:
    return [f"hue {h:.3f}" for h in hues.tolist()]


@pytest.fixture(scope="module")
def world():
    """Random contexts and targets; the message and the utterance both name the target's hue."""
    g = torch.Generator().manual_seed(0)
    colors = torch.rand(N, 3, 3, generator=g) * torch.tensor([360.0, 100, 100])
    targets = torch.randint(3, (N,), generator=g)
    hues = colors[torch.arange(N), targets, 0]
    ds = {"utterance": say(hues), "condition": [CONDITIONS[i % 3] for i in range(N)], "game_id": [f"g{i // 10}" for i in range(N)]}
    usable = torch.ones(N, dtype=torch.bool)
    usable[::50] = False  # some utterances the English side cannot read
    t = Transplant.build(ds, hues[:, None], colors, usable, HueAgents(), HueListener(), HueListener())
    return colors, targets, hues, t


def moved_target_hue(t: Transplant, targets: torch.Tensor) -> torch.Tensor:
    """What a message-blind translator describes: the source round's target, in the transplanted context."""
    return t.colors[torch.arange(len(targets)), targets, 0]


def check_report(rep: dict, rounds: int) -> None:
    assert set(rep) >= {"agreement", "ci95", "by_condition", "rounds"} and rep["rounds"] == rounds
    assert rep["ci95"][0] <= rep["agreement"] <= rep["ci95"][1]
    assert sum(c["rounds"] for c in rep["by_condition"].values()) == rounds
    for c in rep["by_condition"].values():
        assert c["ci95"][0] <= c["agreement"] <= c["ci95"][1]


@pytest.mark.parametrize("n", [2, 3, 10, 1001])
def test_permutation_moves_every_round(n):
    perm = transplant_permutation(n, seed=3)
    assert sorted(perm.tolist()) == list(range(n))
    assert (perm != np.arange(n)).all()
    assert (transplant_permutation(n, seed=3) == perm).all()


def test_permutation_is_seeded_and_handles_tiny_files():
    assert (transplant_permutation(100, 0) != transplant_permutation(100, 1)).any()
    assert transplant_permutation(1).tolist() == [0] and transplant_permutation(0).tolist() == []


def test_transplanted_conditions_are_the_new_contexts(world):
    _, _, _, t = world
    conds = [CONDITIONS[i % 3] for i in range(N)]
    assert t.conditions == [conds[j] for j in t.perm.tolist()]
    assert torch.equal(t.colors, world[0][t.perm])


def test_copying_the_source_agrees_everywhere(world):
    _, _, hues, t = world
    rep = t.to_english(say(hues))  # the translation names the message's own hue
    check_report(rep, N)
    assert rep["agreement"] == 1.0 and rep["ci95"] == [1.0, 1.0]
    usable = t.usable
    rep = t.to_neuralese(hues[usable][:, None], HueAgents())
    check_report(rep, int(usable.sum()))
    assert rep["agreement"] == 1.0 and rep["consulted_agreement"] == 1.0


def test_message_blind_is_at_chance_transplanted(world):
    colors, targets, hues, t = world
    own = colors[torch.arange(N), targets, 0]
    assert torch.equal(own, hues)  # in its own round, describing the target is copying the message
    blind = moved_target_hue(t, targets)
    rep = t.to_english(say(blind))
    check_report(rep, N)
    assert rep["agreement"] == pytest.approx(1 / 3, abs=0.04)
    assert rep["ci95"][0] < 1 / 3 < rep["ci95"][1]
    for cond in rep["by_condition"].values():
        assert cond["agreement"] == pytest.approx(1 / 3, abs=0.07)
    rep = t.to_neuralese(blind[t.usable][:, None], HueAgents())  # the agents' own message for the target
    assert rep["agreement"] == pytest.approx(1 / 3, abs=0.04)


# -- the baseline on the tiny stack ------------------------------------------------------------


@pytest.fixture(scope="module")
def rounds_tensors(small_rounds):
    from translator.models.colors.agents import Agents

    colors, _, targets = Agents.round_inputs(small_rounds["test"])
    return colors, targets


def test_message_blind_says_what_the_listener_is_surest_of(tiny_belief_translator, rounds_tensors):
    b = tiny_belief_translator
    colors, targets = rounds_tensors[0][:100], rounds_tensors[1][:100]
    blind = MessageBlind(b.english, b.candidates, b.message_model)
    probs = torch.stack([b.english.listen(b.candidates, colors[i].expand(len(b.candidates), 3, 3))[:, targets[i]] for i in range(20)])
    chosen = blind.surest(targets[:20], colors[:20])
    assert torch.allclose(probs.gather(1, chosen[:, None]).squeeze(1), probs.max(1).values, atol=1e-5)
    eng = blind.to_english(targets, colors)
    picked = b.english.listen(eng.translations, colors).argmax(-1)
    assert (picked == targets).float().mean() > 0.9  # the consulted listener follows it
    # the ranker's shortlist finds the same candidate (or one as sure) almost always
    from translator.models.colors.prerank import BilinearRanker

    ranker = BilinearRanker(b.tables["cand_beliefs"], b.english.encode_colors(b.tables["contexts"]),
                            b.english.listener.config.temperature, b.config.prerank_rank)  # fmt: skip
    fast = MessageBlind(b.english, b.candidates, b.message_model, ranker, shortlist=16)
    assert (fast.surest(targets, colors) == blind.surest(targets, colors)).float().mean() > 0.9


def test_message_blind_sends_the_agents_own_message(tiny_belief_translator, tiny_agents, rounds_tensors):
    from translator.models.colors.message_model import most_likely_messages

    b = tiny_belief_translator
    colors, targets = rounds_tensors
    neu = MessageBlind(b.english, b.candidates, b.message_model).to_neuralese(targets, colors)
    own = most_likely_messages(b.message_model, colors)
    assert torch.equal(neu.translations, own[torch.arange(len(targets)), targets])
    assert len(neu) == len(targets) and neu.faithful.all()
    accuracy = (tiny_agents.listen(neu.translations, colors).argmax(-1) == targets).float().mean()
    assert accuracy > 0.6  # self-play without the channel noise


@pytest.mark.slow
def test_a_channel_evaluation_reports_both_and_the_blind_baseline_loses_transplanted(
        tiny_belief_translator, tiny_agents, english_models, game_slice, tmp_path):  # fmt: skip
    from eval.colors.translation import evaluate_channel
    from translator.games.colors.corpus import load_rounds
    from translator.translate.colors.collection import collect

    tiny_belief_translator.save_pretrained(tmp_path / "continuous" / "belief")
    ds = collect(tiny_agents, load_rounds(game_slice(48, 68)))  # games no model saw
    # the consulted listener stands in for the evaluation listener (same interface)
    metrics, gallery = evaluate_channel(tmp_path / "continuous", tiny_agents, ds, english_models, english_models, progress=False)
    blind, belief = metrics["message_blind"], metrics["belief"]
    for entry in (blind, belief):
        for direction in ("to_english", "to_neuralese"):
            check_report(entry[direction]["transplanted"], entry[direction]["rounds"])
    assert blind["to_english"]["accuracy"] > 0.8  # in its own round, knowing the target is enough
    for direction in ("to_english", "to_neuralese"):
        assert blind[direction]["transplanted"]["agreement"] == pytest.approx(1 / 3, abs=0.06)
    assert belief["to_english"]["transplanted"]["agreement"] > blind["to_english"]["transplanted"]["agreement"] + 0.1
    assert len(gallery) == 9 and [g["condition"] for g in gallery] == [c for c in CONDITIONS for _ in range(3)]
    g = gallery[0]
    assert set(g["translations"]) == set(metrics) == set(g["transplanted"]["translations"])
    assert len(g["reconstruction"]) == 3  # the tiny agents' listener reconstructs
    assert g["transplanted"]["round_id"] != g["round_id"]
