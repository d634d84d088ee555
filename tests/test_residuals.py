"""A planted code: agents fine-tuned to also signal the distractors' order on the speaker's screen,
something no person talks about. Per-message faithfulness flags miss it (the bit hides under the
channel noise); the residual check over a batch finds it (`translator/translate/colors/residuals.py`)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from translator.games.colors.corpus import load_rounds
from translator.models.channels import ChannelConfig
from translator.models.colors.agents import Agents, to_speaker_order
from translator.translate.colors.api import Translator
from translator.translate.colors.residuals import check_residuals


def _order_bit(speaker_colors: torch.Tensor, speaker_targets: torch.Tensor) -> torch.Tensor:
    """1 when the first distractor on the speaker's screen is the lighter one: invisible to the listener."""
    others = torch.tensor([[i for i in range(3) if i != t] for t in speaker_targets.tolist()])
    lightness = speaker_colors[torch.arange(len(others))[:, None], others, 2]
    return (lightness[:, 0] > lightness[:, 1]).long()


def _speaker_inputs(rounds):
    colors, order, targets = Agents.round_inputs(rounds)
    sc, st = to_speaker_order(colors, order, targets)
    return colors, sc, st, targets, _order_bit(sc, st)


@pytest.fixture(scope="module")
def planted(tiny_agents, game_slice):
    """`(messages, colors, bit decoding accuracy)` of held-out rounds from agents fine-tuned to carry the bit."""
    torch.manual_seed(0)
    speaker, listener = copy.deepcopy(tiny_agents.speaker).train(), copy.deepcopy(tiny_agents.listener).train()
    bit_in = torch.nn.Embedding(2, speaker.config.hidden_dim)
    torch.nn.init.zeros_(bit_in.weight)  # starts as the genuine speaker
    bit_out = torch.nn.Linear(speaker.config.channel.dim, 2)
    opt = torch.optim.Adam([*speaker.parameters(), *listener.parameters(), *bit_in.parameters(), *bit_out.parameters()], lr=1e-3)
    colors, sc, st, targets, bit = _speaker_inputs(load_rounds(game_slice(0, 30)))
    for _ in range(300):
        i = torch.randint(len(colors), (128,))
        msg = speaker.channel.speak(speaker.hidden(sc[i], st[i]) + bit_in(bit[i]), sample=True)
        loss = F.cross_entropy(listener(msg, colors[i]), targets[i]) + F.cross_entropy(bit_out(msg.value), bit[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    colors, sc, st, _, bit = _speaker_inputs(load_rounds(game_slice(48, 68)))
    with torch.no_grad():
        z = speaker.channel.speak(speaker.eval().hidden(sc, st) + bit_in(bit), sample=True).value
        decoded = (bit_out(z).argmax(-1) == bit).float().mean().item()
    return z, colors, decoded


@pytest.fixture(scope="module")
def genuine(tiny_agents, game_slice):
    torch.manual_seed(1)
    colors, sc, st, _, _ = _speaker_inputs(load_rounds(game_slice(48, 68)))
    with torch.no_grad():
        return tiny_agents.speaker.eval()(sc, st, sample=True).value, colors


def test_the_planted_bit_is_a_real_code(planted):
    assert planted[2] > 0.9  # decoded through the channel noise (measured 0.99; chance 0.5)


def test_residual_check_finds_the_planted_code_and_passes_the_genuine_one(saved_belief_translator, planted, genuine):
    tr = Translator.from_pretrained(saved_belief_translator)
    real = tr.check_code(genuine[0][:400].tolist(), genuine[1][:400].tolist())
    fake = tr.check_code(planted[0][:400].tolist(), planted[1][:400].tolist())
    assert not real.unknown_code and real.ratio < 1.2, real.ratio  # measured 1.0
    assert fake.unknown_code and fake.ratio > 1.5, fake.ratio  # measured 2.9
    assert abs(sum(x * x for x in fake.direction) - 1) < 1e-4


def test_per_message_flags_alone_miss_it(tiny_belief_translator, planted, genuine):
    """Why the batch check exists: the per-message divergence flags rise little (measured: 3% genuine, 6% planted)."""
    z, colors, _ = planted
    t = copy.copy(tiny_belief_translator)
    t.faithfulness = None  # the divergence flag, as a bundle without faithfulness models flags
    flagged = 1 - t.to_english(z, colors).faithful.float().mean().item()
    flagged_genuine = 1 - t.to_english(*genuine).faithful.float().mean().item()
    assert flagged < 0.5 and flagged - flagged_genuine < 0.3, (flagged, flagged_genuine)


def test_residual_check_refuses_what_it_cannot_judge(tiny_belief_translator, genuine):
    z, colors = genuine
    with pytest.raises(ValueError, match="at least 2"):
        check_residuals(tiny_belief_translator.message_model, z[:1], colors[:1])
    tr = Translator(tiny_belief_translator)
    with pytest.raises(ValueError, match="needs each message's context"):
        tr.check_code(z[:4].tolist(), None)
    symbols = SimpleNamespace(channel=ChannelConfig(kind="gumbel"))
    with pytest.raises(ValueError, match="needs a continuous channel"):
        check_residuals(symbols, z[:4], colors[:4])
