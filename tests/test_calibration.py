"""Temperature scaling (`training.calibration.fit_temperature`)."""

from __future__ import annotations

import warnings

import pytest
import torch

from eval.metrics import expected_calibration_error
from training.calibration import fit_temperature


def sample_labels(logits: torch.Tensor, temperature: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1, generator=g).squeeze(1)


@pytest.mark.parametrize("true_t", [2.0, 0.5])
def test_recovers_a_known_temperature(true_t):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(20000, 3, generator=g) * 3.0
    y = sample_labels(z, true_t, seed=1)
    assert fit_temperature(z, y) == pytest.approx(true_t, rel=0.06)


def test_reduces_calibration_error():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(5000, 3, generator=g) * 3.0
    y = sample_labels(z, 2.0, seed=3)
    before = expected_calibration_error(torch.softmax(z, -1).numpy(), y.numpy())
    t = fit_temperature(z, y)
    after = expected_calibration_error(torch.softmax(z / t, -1).numpy(), y.numpy())
    assert before > 0.08  # raw logits are overconfident by a factor of two
    assert after < 0.03
    assert after < before / 3


def test_already_calibrated_logits_keep_temperature_near_one():
    g = torch.Generator().manual_seed(4)
    z = torch.randn(20000, 3, generator=g) * 2.0
    y = sample_labels(z, 1.0, seed=5)
    assert fit_temperature(z, y) == pytest.approx(1.0, rel=0.06)


def test_does_not_touch_its_inputs():
    z = torch.randn(100, 3, requires_grad=True)
    y = torch.randint(0, 3, (100,))
    before = z.detach().clone()
    t = fit_temperature(z, y)
    assert t > 0
    assert torch.equal(z.detach(), before) and z.grad is None


def test_calibrate_skips_too_few_rounds_and_clamps_absurd_temperatures():
    from training.calibration import MIN_ROUNDS, T_RANGE, calibrate

    z = torch.tensor([[3.0, 0.0, 0.0]])
    with pytest.warns(UserWarning, match=f"1 validation round.*fewer than the {MIN_ROUNDS}"):
        assert calibrate(z, torch.tensor([1]))[0] == 1.0  # fitted, one wrong round would give thousands
    assert fit_temperature(z, torch.tensor([1])) > 1000
    wrong = torch.randn(MIN_ROUNDS, 3, generator=torch.Generator().manual_seed(6)) * 3
    with pytest.warns(UserWarning, match="clamped to 20"):
        t, note = calibrate(wrong, (wrong.argmax(-1) + 1) % 3)  # always wrong: the fit runs off to a huge T
    assert t == T_RANGE[1] and "clamped" in note
    g = torch.Generator().manual_seed(0)
    z = torch.randn(5000, 3, generator=g) * 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a good fit is used as it is, silently
        t, note = calibrate(z, sample_labels(z, 2.0, seed=1))
    assert t == pytest.approx(2.0, rel=0.1) and note == "fitted on 5000 validation rounds"


def test_train_english_on_a_tiny_validation_set_warns_and_keeps_temperature_one(game_slice):
    from training.colors.english import EnglishTrainArgs, train_english
    from translator.games.colors.corpus import load_rounds

    rounds = load_rounds(game_slice(0, 3))
    args = EnglishTrainArgs(seed=0, vocab_size=80, batch_size=32, max_steps=2, listener_epochs=1, speaker_epochs=1)
    with pytest.warns(UserWarning, match="English listener: not calibrated: 1 validation round"):
        models = train_english(rounds[1:], rounds[:1], args)
    listener = models.training["listener"]
    assert models.listener.config.temperature == listener["temperature"] == 1.0 and listener["calibration"].startswith("not calibrated")
