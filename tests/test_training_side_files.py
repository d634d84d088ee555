"""The JSON files training writes beside its tensors (the agents' checkpoint `state.json` and
`optimizer.json`, the driving agents' `training.json` and `checkpoint.json`) carry a kind and a
format version; another kind or a newer format is refused naming the file, and files written
before they had a kind still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from training.checkpoint import OPTIMIZER_FILE, OPTIMIZER_KIND, load_optimizer, save_optimizer
from training.colors.agents import STATE_KIND, AgentTrainArgs, read_state, train_agents
from training.driving import a2c
from translator.games.driving.agents import DrivingAgentConfig
from translator.models.channels import ChannelConfig
from translator.storage.bundle import FORMAT_VERSION, TRAINING_FILE, TRAINING_KIND, BundleError, read_training

torch.set_num_threads(1)
WRONG = [{"kind": "neuralese.texts"}, {"format_version": FORMAT_VERSION + 1}]


def _edit(path: Path, change: dict | None) -> None:
    """Rewrite a side file with `change` applied; `None`: as written before it had a kind."""
    data = json.loads(path.read_text())
    data = {k: v for k, v in data.items() if k not in ("kind", "format_version")} if change is None else {**data, **change}
    path.write_text(json.dumps(data))


def _stepped_adam(tmp_path: Path) -> tuple[torch.optim.Optimizer, Path]:
    w = torch.nn.Parameter(torch.arange(4.0))
    opt = torch.optim.Adam([w], lr=0.01, betas=(0.8, 0.9))
    w.sum().backward()
    opt.step()
    save_optimizer(opt, tmp_path)
    return opt, tmp_path / OPTIMIZER_FILE


def test_the_optimizer_state_records_its_kind_and_reads_back(tmp_path):
    opt, path = _stepped_adam(tmp_path)
    raw = json.loads(path.read_text())
    assert raw["kind"] == OPTIMIZER_KIND and raw["format_version"] == FORMAT_VERSION
    for change in (None, {}):  # written before it had a kind; as written now
        _edit(path, change)
        fresh = torch.optim.Adam([torch.nn.Parameter(torch.zeros(4))], lr=1.0)
        load_optimizer(fresh, tmp_path)
        assert fresh.param_groups[0]["betas"] == (0.8, 0.9) and fresh.param_groups[0]["lr"] == 0.01
        assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


@pytest.mark.parametrize("change", WRONG)
def test_another_kind_or_newer_optimizer_state_is_refused_naming_the_file(tmp_path, change):
    _, path = _stepped_adam(tmp_path)
    _edit(path, change)
    with pytest.raises(BundleError, match=str(path)):
        load_optimizer(torch.optim.Adam([torch.nn.Parameter(torch.zeros(4))]), tmp_path)


def _agent_args(**kw) -> AgentTrainArgs:
    channel = ChannelConfig(kind="continuous", dim=16, embed_dim=16)
    base = dict(
        channel=channel, color_dim=32, hidden_dim=32, batch_size=16, steps=5, checkpoint_every=5, eval_every=0, progress=False
    )
    return AgentTrainArgs(**{**base, **kw})


def test_the_agents_checkpoint_state_records_its_kind(tmp_path, small_rounds):
    train = small_rounds["train"][:40]
    train_agents(train, _agent_args(), tmp_path, val_rounds=[])
    path = tmp_path / "checkpoint" / "state.json"
    raw = json.loads(path.read_text())
    assert raw["kind"] == STATE_KIND and raw["format_version"] == FORMAT_VERSION and raw["step"] == 5
    assert read_state(path)["step"] == 5 and "kind" not in read_state(path)
    _edit(path, None)  # written before it had a kind: the run resumes (here: it is finished) from it
    assert train_agents(train, _agent_args(), tmp_path, val_rounds=[]).training["steps"] == 5
    for change in WRONG:
        _edit(path, {"kind": STATE_KIND, "format_version": FORMAT_VERSION, **change})
        with pytest.raises(BundleError, match=str(path)):
            train_agents(train, _agent_args(), tmp_path, val_rounds=[])


def test_the_driving_agents_side_files_record_their_kinds(tmp_path):
    cfg, small = a2c.A2CConfig(updates=2, batch=8, checkpoint_every=2, seed=1), DrivingAgentConfig(hidden=16)
    a2c.train_agents(tmp_path, small, cfg)
    raw = json.loads((tmp_path / TRAINING_FILE).read_text())
    assert raw["kind"] == TRAINING_KIND and raw["format_version"] == FORMAT_VERSION
    training = read_training(tmp_path)
    assert training["a2c"]["updates"] == 2 and training["updates_run"] == 2 and "kind" not in training
    ckpt = tmp_path / "checkpoint" / a2c.CHECKPOINT_FILE
    assert json.loads(ckpt.read_text())["kind"] == a2c.CHECKPOINT_KIND
    for change in WRONG:
        _edit(tmp_path / TRAINING_FILE, {"kind": TRAINING_KIND, "format_version": FORMAT_VERSION, **change})
        with pytest.raises(BundleError, match=str(tmp_path / TRAINING_FILE)):
            read_training(tmp_path)
        _edit(ckpt, {"kind": a2c.CHECKPOINT_KIND, "format_version": FORMAT_VERSION, **change})
        with pytest.raises(BundleError, match=str(ckpt)):
            a2c.train_agents(tmp_path, small, a2c.A2CConfig(updates=3, batch=8, checkpoint_every=2, seed=1))


def test_a_driving_checkpoint_of_the_first_format_resumes(tmp_path):
    """Format 1 wrote the kind and version by hand; such a checkpoint still resumes."""
    cfg, small = a2c.A2CConfig(updates=4, batch=8, checkpoint_every=2, seed=3), DrivingAgentConfig(hidden=16)
    straight = a2c.train_agents(tmp_path / "straight", small, cfg)
    a2c.train_agents(tmp_path / "resumed", small, cfg, stop_at=2)
    _edit(tmp_path / "resumed" / "checkpoint" / a2c.CHECKPOINT_FILE, {"format_version": 1})
    resumed = a2c.train_agents(tmp_path / "resumed", small, cfg)
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in straight.state_dict().items())
