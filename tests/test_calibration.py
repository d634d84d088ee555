"""Temperature scaling (`training.calibration.fit_temperature`)."""

from __future__ import annotations

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
