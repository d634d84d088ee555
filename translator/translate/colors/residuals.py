"""Does a batch of continuous messages carry a code the translator does not know?

Per message, faithfulness is judged on the belief over the target and on how likely the agents
are to send the message (`BeliefTranslator`). Neither sees a planted code: agents fine-tuned to also
signal something people never talk about shift their messages by less than the channel noise along
a new direction, so the per-message flags barely move (docs/decisions.md).

Over many messages the new direction shows. Under the known code a message is its speaker's mean
plus isotropic noise, `z = μ(c, x) + ε`, so the residuals `z − μ(c, x̂)` have covariance `σ² I`, whose
largest sample eigenvalue stays below the Marchenko–Pastur edge `σ² (1 + √(d/n))²`; a code the model
does not know adds variance along its own direction and pushes the largest eigenvalue over it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from translator.games.colors.inputs import check_colors
from translator.models.colors.message_model import MessageModel


@dataclass
class ResidualCheck:
    """The result of `check_residuals` on a batch of messages."""

    messages: int
    top_variance: float  # the largest eigenvalue of the residuals' covariance
    noise_edge: float  # the largest that the channel noise alone gives for this many messages
    ratio: float  # top_variance / noise_edge: about 1 or below for the known code
    unknown_code: bool  # ratio above the threshold: the messages carry something the model does not
    direction: list[float]  # the unit residual direction that carries it


@torch.no_grad()
def check_residuals(model: MessageModel, messages: torch.Tensor, colors, threshold: float = 1.5) -> ResidualCheck:
    """Test messages `(N, D)` sent in contexts `(N, 3, 3)` for structure beyond the model's code.

    Needs a continuous channel whose model has speaker means and a noise level (exact or learned);
    at least `D` messages make the test meaningful (it answers with what it has).
    """
    if model.channel.discrete or not callable(getattr(model, "means", None)):
        raise ValueError(f"residual check: needs a continuous channel with speaker means, got {model.channel.kind}")
    colors = check_colors(colors, len(messages))
    z = torch.as_tensor(messages, dtype=torch.float32)
    n, d = z.shape
    if n < 2:
        raise ValueError(f"residual check: needs at least 2 messages, got {n}")
    mu = model.means(colors)  # (N, 3, D)
    r = z[:, None] - mu  # isotropic noise: the likeliest target's mean is the nearest one
    r = r[torch.arange(n), r.pow(2).sum(-1).argmin(1)]
    values, vectors = torch.linalg.eigh(r.T @ r / n)
    edge = model.noise**2 * (1 + (d / n) ** 0.5) ** 2
    ratio = values[-1].item() / edge
    return ResidualCheck(n, values[-1].item(), edge, ratio, ratio > threshold, vectors[:, -1].tolist())
