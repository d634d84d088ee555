"""The same `neuralese train agents` command under `accelerate launch` with two CPU processes (gloo)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from training.colors.agents import self_play_accuracy
from translator.games.colors.corpus import load_rounds
from translator.models.colors.agents import Agents


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--listener", "bayes", "--reconstruction-weight", "0"]], ids=["learned", "bayes"])
def test_two_process_training_writes_one_bundle(extra, game_slice, tmp_path):
    """The bayes case has a listener with no weights: only the speaker is wrapped (DDP), and the
    one-encoding training step goes through the wrapper."""
    neuralese = shutil.which("neuralese", path=str(Path(sys.executable).parent))
    assert neuralese, "the neuralese console script is installed beside this Python"
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "CUDA_VISIBLE_DEVICES": ""}  # CPU processes, gloo
    cmd = [
        # `--multi_gpu` is accelerate's multi-process launcher; without a GPU the processes run on
        # the CPU with gloo (`--cpu` would start a single process)
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", neuralese,
        "train", "agents", "--channel", "continuous", "--train", str(game_slice(0, 30)), "--out", str(run),
        "--steps", "150", "--batch-size", "64", *extra,
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("saved ") == 1, proc.stdout[-2000:]
    bundle = run / "agents" / "continuous"
    assert (bundle / "config.json").is_file()
    # Exactly one bundle was written (no leftovers of a second writer).
    assert not list(bundle.glob("*.tmp")) and not list(bundle.rglob("model.safetensors.tmp"))
    agents = Agents.from_pretrained(bundle)
    assert agents.training["steps"] == 150 and agents.training["processes"] == 2
    assert {p.name for p in (bundle / "checkpoint").glob("rng-*")} == {"rng-0.safetensors", "rng-1.safetensors"}
    assert agents.listener.config.listener == ("bayes" if extra else "learned")
    held_out = load_rounds(game_slice(60, 66))
    assert self_play_accuracy(agents, held_out).float().mean().item() > 0.6
