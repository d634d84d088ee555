"""A small supervised training loop with `accelerate`, early stopping and a progress bar.

The same code runs on one CPU, one GPU, or several processes under `accelerate launch`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm


@dataclass
class FitResult:
    best_epoch: int
    best_score: float
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def fit(
    model: torch.nn.Module,
    loader: DataLoader,
    loss_fn: Callable[[torch.nn.Module, dict], torch.Tensor],
    validate: Callable[[torch.nn.Module], dict[str, float]],
    monitor: str,
    higher_is_better: bool,
    accelerator: Accelerator,
    lr: float = 2e-3,
    max_epochs: int = 20,
    patience: int = 3,
    max_steps: int | None = None,
    desc: str = "train",
) -> FitResult:
    """Train `model` in place; at the end it holds the weights of the best validation epoch."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    # Cosine decay over the whole budget: late low-LR epochs settle the weights (better than a
    # constant LR with the same early stopping on this corpus).
    total_steps = max(1, max_epochs * len(loader))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)))
    model, opt, loader, sched = accelerator.prepare(model, opt, loader, sched)
    best, best_epoch, best_state, history = None, -1, None, []
    start, steps = time.perf_counter(), 0
    for epoch in range(max_epochs):
        model.train()
        total, count = 0.0, 0
        bar = tqdm(loader, desc=f"{desc} epoch {epoch + 1}", leave=False, disable=None if accelerator.is_local_main_process else True)
        for batch in bar:
            loss = loss_fn(model, batch)
            opt.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total, count, steps = total + loss.item(), count + 1, steps + 1
            bar.set_postfix(loss=f"{total / count:.3f}")
            if max_steps and steps >= max_steps:
                break
        model.eval()
        scores = validate(accelerator.unwrap_model(model))
        score = scores[monitor]
        history.append({"epoch": epoch + 1, "train_loss": total / max(count, 1), **scores, "seconds": time.perf_counter() - start})
        improved = best is None or (score > best if higher_is_better else score < best)
        if improved:
            best, best_epoch = score, epoch + 1
            best_state = copy.deepcopy(accelerator.unwrap_model(model).state_dict())
        if accelerator.is_local_main_process:
            mark = " *" if improved else ""
            tqdm.write(f"{desc} epoch {epoch + 1}: loss {total / max(count, 1):.3f}  {monitor} {score:.4f}{mark}")
        if epoch + 1 - best_epoch >= patience or (max_steps and steps >= max_steps):
            break
    unwrapped = accelerator.unwrap_model(model)
    if best_state is not None:
        unwrapped.load_state_dict(best_state)
    unwrapped.eval()
    return FitResult(best_epoch, float(best), history, time.perf_counter() - start)
