"""`import-messages --game driving` end to end with a "foreign" agent made from our own: its
self-play exported to the episode format, imported (checked, message model fitted, folder written
whole), then translated through the fitted model. The model must beat a constant one on held-out
episodes, and its belief translation must agree with the agent's own channel far more often than
the random translator does. A bad file or a failed fit never leaves a partial folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from eval.driving.import_agreement import translation_agreement
from training.driving import import_episodes as importer
from training.driving.message_model import MessageModelArgs
from translator.apps.cli import main
from translator.games.driving.agents import DrivingAgent, DrivingAgentConfig
from translator.games.driving.episodes import EpisodeError
from translator.games.driving.export import self_play_steps, write_episode_file
from translator.games.driving.imported import ImportedAgent, is_import
from translator.storage.bundle import read_json
from translator.translate.driving.api import DrivingTranslator


@pytest.fixture(scope="module")
def agent() -> DrivingAgent:
    """An untrained agent whose messages follow what it sees: larger input and output weights than
    at initialisation, and a quieter channel (noise 0.05) than the trained agents' 0.3."""
    torch.manual_seed(0)
    agent = DrivingAgent(DrivingAgentConfig(hidden=32, noise=0.05))
    with torch.no_grad():
        agent.encode[0].weight.mul_(3)
        agent.speak.weight.mul_(3)
    return agent.eval()


@pytest.fixture(scope="module")
def imported(tiny_driving_run, agent, tmp_path_factory) -> Path:
    """The tiny agent's self-play (60 episodes) imported through the command line."""
    tmp = tmp_path_factory.mktemp("driving-import")
    write_episode_file(tmp / "agent.jsonl", self_play_steps(agent, 60, seed=0))
    out = tmp / "imported"
    main(["import-messages", "--game", "driving", str(tmp / "agent.jsonl"), "--out", str(out),
          "--english", str(tiny_driving_run), "--epochs", "80", "--seed", "1"])  # fmt: skip
    return out


def test_the_folder_holds_the_steps_the_model_and_the_english_speaker(imported, tiny_driving_run):
    run = read_json(imported / "run.json")
    assert run["kind"] == "neuralese.driving_import" and run["format_version"] >= 3 and run["seed"] == 1
    assert run["english_speaker"] == str((tiny_driving_run / "driving" / "english_speaker").resolve())
    model = read_json(imported / "message_model" / "config.json")
    assert model["kind"] == "driving_message_model" and model["config"]["message_size"] == 64
    lines = (imported / "steps.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == run["steps"] and json.loads(lines[0])["episode"] == "e0"
    assert (imported / "english_speaker" / "config.json").is_file() and is_import(imported)
    assert not is_import(tiny_driving_run / "driving")


def test_the_model_beats_a_constant_one_on_held_out_episodes(imported):
    fit = read_json(imported / "run.json")["message_model"]
    assert fit["examples"]["test"] > 50
    assert fit["held_out_nll"] < fit["constant_nll"] - 5.0  # nats per message


def test_belief_agrees_with_the_agents_own_channel(imported, agent):
    fresh = self_play_steps(agent, 20, seed=500, prefix="t")
    got = translation_agreement(ImportedAgent.load(imported), agent, fresh)
    assert got["steps"] > 200
    assert got["agreement"]["model"] >= 0.25 and got["agreement"]["model"] > 5 * got["agreement"]["random"]
    assert got["agreement"]["model"] > got["agreement"]["constant"] and got["kappa"]["model"] > got["kappa"]["constant"] + 0.2


def test_translation_through_the_import(imported, tiny_driving_run):
    steps = [json.loads(x) for x in (imported / "steps.jsonl").read_text(encoding="utf-8").splitlines()[:5]]
    records = [{k: s[k] for k in ("map", "car", "message", "heard")} for s in steps]
    belief = DrivingTranslator.from_run(imported, "belief")
    out = belief.to_english(records)
    assert [o.translation for o in out] == [o.translation for o in belief.to_english(records[::-1])][::-1]
    assert all(o.divergence is not None and o.divergence >= 0 and o.alternatives for o in out)
    utter = {k: v for k, v in records[0].items() if k != "message"} | {"utterance": "going north"}
    z = belief.to_neuralese([utter])[0].translation
    pool = ImportedAgent.load(imported).pool
    assert len(z) == 64 and (pool - torch.tensor(z)).abs().sum(1).min() < 1e-5  # one of its own messages
    assert DrivingTranslator.from_run(imported, "random").to_english(records)[0].divergence is None
    assert DrivingTranslator.from_run(imported, "silent").to_neuralese([utter])[0].translation == [0.0] * 64
    with pytest.raises(ValueError, match="translator 'direct': it pairs the agent's messages with people's utterances"):
        DrivingTranslator.from_run(imported, "direct")


def test_the_translate_command_reads_the_import(imported, tmp_path, capsys):
    step = json.loads((imported / "steps.jsonl").read_text(encoding="utf-8").splitlines()[0])
    good = {k: step[k] for k in ("map", "car", "message")}
    bad = good | {"message": [0.0] * 3}
    (tmp_path / "in.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    main(["translate", "--game", "driving", "--run", str(imported), "--to", "english", "--input", str(tmp_path / "in.jsonl"), "--quiet"])  # fmt: skip
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert isinstance(rows[0]["translation"], str) and rows[1] == {"line": 2, "error": "message: expected 64 numbers, got 3"}


def test_a_bad_file_or_a_failed_fit_leaves_no_partial_folder(imported, tiny_driving_run, tmp_path, monkeypatch):
    lines = (imported / "steps.jsonl").read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad.jsonl"
    broken = json.loads(lines[3]) | {"message": [float("nan")] * 64}
    bad.write_text("\n".join([*lines[:3], json.dumps(broken)]) + "\n", encoding="utf-8")
    before = {p.name: p.read_bytes() for p in imported.rglob("*") if p.is_file()}
    with pytest.raises(EpisodeError, match=r"bad.jsonl:4: message\[0\]: NaN or infinite"):
        importer.import_episodes(bad, imported, tiny_driving_run)
    assert {p.name: p.read_bytes() for p in imported.rglob("*") if p.is_file()} == before

    def fail(*args, **kwargs):
        raise RuntimeError("killed while fitting")

    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(importer, "fit_message_model", fail)
    with pytest.raises(RuntimeError):
        importer.import_episodes(good, tmp_path / "new", tiny_driving_run)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "good.jsonl"]


def test_the_command_refuses_what_a_driving_import_cannot_take(tmp_path, capsys):
    (tmp_path / "a.jsonl").write_text("", encoding="utf-8")
    for extra, says in ((["--dim", "4"], "--dim: colour-game channel options"), ([], "--english DIR: a driving import needs")):
        with pytest.raises(SystemExit) as e:
            main(["import-messages", "--game", "driving", str(tmp_path / "a.jsonl"), "--out", str(tmp_path / "o"), *extra])
        assert e.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_fit_is_seeded(imported, tmp_path):
    steps_file = imported / "steps.jsonl"
    args = MessageModelArgs(seed=4, epochs=5, width=16)
    a = importer.import_episodes(steps_file, tmp_path / "a", imported / "english_speaker", args)
    b = importer.import_episodes(steps_file, tmp_path / "b", imported / "english_speaker", args)
    assert a["message_model"] == b["message_model"]
    weights = [(tmp_path / d / "message_model" / "model.safetensors").read_bytes() for d in ("a", "b")]
    assert weights[0] == weights[1]


def test_the_service_serves_the_import(imported):
    from fastapi.testclient import TestClient

    from translator.apps.service import create_app

    step = json.loads((imported / "steps.jsonl").read_text(encoding="utf-8").splitlines()[0])
    item = {k: step[k] for k in ("map", "car", "message")}
    with TestClient(create_app(imported)) as client:
        r = client.post("/v1/driving/translate", json={"to": "english", "items": [item]})
        assert r.status_code == 200
        assert r.json()["results"][0]["translation"] == DrivingTranslator.from_run(imported).to_english([item])[0].translation
        bad = client.post("/v1/driving/translate", json={"to": "english", "items": [item | {"message": [0.0] * 3}]})
        assert bad.status_code == 422 and "items[0].message" in bad.json()["detail"]
