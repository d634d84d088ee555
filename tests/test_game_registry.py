"""The apps' game registry: the built-in games by name and by data file, and a third game, defined
here and registered at test time, reached by `translate --game`, `evaluate`, `serve` and `demo`
without a line of the apps naming it."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from translator.apps import cli, games
from translator.apps.demo import Step, demo_steps
from translator.apps.stream import run_stream
from translator.translate.translations import Translation

DATA = Path(__file__).resolve().parents[1] / "data"


# -- the toy game: the listener is told a number, the translation of message n is the word "n" -------
@dataclass
class ToyRecord:
    value: Any
    id: Any = None


class ToyTranslator:
    kind = "spell"

    def parse(self, obj: Any, to: str, line: int | None = None) -> ToyRecord:
        key = "message" if to == "english" else "utterance"
        if not isinstance(obj, dict) or key not in obj:
            raise ValueError(f"{key}: missing")
        return ToyRecord(obj[key], obj.get("id"))

    def english_checked(self, records: list[ToyRecord], contexts: Any = None) -> list[Translation]:
        return [Translation(str(r.value), 0.0, True) for r in records]

    def neuralese_checked(self, records: list[ToyRecord], contexts: Any = None) -> list[Translation]:
        return [Translation([float(len(r.value))], 0.0, True) for r in records]


def _stream(args: argparse.Namespace) -> games.StreamFn:
    if not (Path(args.run) / "toy.json").is_file():
        raise ValueError(f"{args.run}: no toy.json")
    tr = ToyTranslator()
    return lambda inp, out: run_stream(tr, args.to, inp, out, args.batch_size, args.max_wait_ms / 1000)  # type: ignore[arg-type]


def _evaluate(run, data, out, games=None, plays=None, jobs=1) -> dict:
    numbers = [float(x) for x in Path(data).read_text().split()][:games]
    metrics = {"toy.mean": sum(numbers) / len(numbers), "toy.run": json.loads((Path(run) / "toy.json").read_text())}
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "metrics.json").write_text(json.dumps(metrics))
    return metrics


def _routes(app: FastAPI, tr: ToyTranslator, max_batch: int, describe: Any) -> None:
    @app.get("/v1/toy")
    async def toy() -> dict:
        return {"kind": tr.kind}


TOY = games.GameApp(
    name="toy",
    recognises=lambda path: path.suffix == ".toy",
    evaluate=_evaluate,
    stream=_stream,
    holds=lambda run: (run / "toy.json").is_file(),
    served=lambda run, name: ToyTranslator(),
    routes=_routes,
    demo_steps=lambda out, data, quick, jobs, seeds: [Step("toy", ["evaluate", "--run", str(out), "--data", f"{data}/x.toy"])],
)


@pytest.fixture
def toy():
    games.register(TOY)
    yield TOY
    games.unregister("toy")


@pytest.fixture
def toy_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "toy.json").write_text('{"trained": true}')
    return run


def _main(argv: list[str], stdin: bytes, monkeypatch, capsys) -> tuple[list[dict], str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    cli.main(argv)
    captured = capsys.readouterr()
    return [json.loads(x) for x in captured.out.splitlines()], captured.err


def test_translate_reaches_a_game_registered_at_test_time(toy, toy_run, monkeypatch, capsys):
    lines = b'{"message": 7, "id": "a"}\n{"utterance": "x"}\n\n{"message": "go"}\n'
    out, err = _main(["translate", "--game", "toy", "--run", str(toy_run), "--to", "english"], lines, monkeypatch, capsys)
    assert [r.get("translation") for r in out] == ["7", None, "go"]
    assert out[0]["id"] == "a" and out[1] == {"line": 2, "error": "message: missing"}
    assert "3 lines (1 errors)" in err
    out, _ = _main(["translate", "--game", "toy", "--run", str(toy_run), "--to", "neuralese"], b'{"utterance": "abc"}\n',
                   monkeypatch, capsys)  # fmt: skip
    assert out == [
        {"line": 1, "translation": [3.0], "divergence": 0.0, "faithful": True, "faithfulness": None, "alternatives": []}
    ]


def test_a_toy_runs_errors_are_the_commands_errors(toy, tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as stop:
        _main(["translate", "--game", "toy", "--run", str(tmp_path), "--to", "english"], b"", monkeypatch, capsys)
    assert stop.value.code == 2 and "no toy.json" in capsys.readouterr().err


def test_an_unregistered_game_is_not_offered(monkeypatch, capsys):
    with pytest.raises(SystemExit):
        _main(["translate", "--game", "toy", "--run", ".", "--to", "english"], b"", monkeypatch, capsys)
    assert "invalid choice: 'toy'" in capsys.readouterr().err


def test_evaluate_finds_the_toys_file(toy, toy_run, tmp_path):
    data = tmp_path / "scores.toy"
    data.write_text("1 2 3 10")
    metrics = games.evaluate_file(toy_run, data, tmp_path / "eval", games=3)
    assert metrics == {"toy.mean": 2.0, "toy.run": {"trained": True}}
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == metrics


def test_the_built_in_games_by_file(tmp_path):
    assert games.names()[:2] == ("colors", "driving")
    assert games.for_file(DATA / "driving" / "dev.jsonl").name == "driving"
    assert games.for_file(DATA / "colors_in_context" / "dev.csv").name == "colors"
    other = tmp_path / "x.jsonl"
    other.write_text('{"message": [0.1]}\n')
    assert games.for_file(other).name == "colors"  # the default: its reader names what is wrong


def test_the_service_serves_the_toy_beside_no_colour_translators(toy, toy_run):
    with TestClient(games_app(toy_run)) as client:
        assert client.get("/v1/toy").json() == {"kind": "spell"}
        assert client.get("/healthz").json()["translator"] == "spell"


def games_app(run: Path) -> FastAPI:
    from translator.apps.service import create_app

    return create_app(run)


def test_the_demo_runs_the_toys_steps(toy, tmp_path):
    steps = demo_steps(tmp_path / "run", tmp_path / "data", quick=True, game="toy")
    assert [s.name for s in steps] == ["toy"]
    assert [s.name for s in demo_steps(tmp_path / "run", tmp_path / "data", quick=True, game="all")][-2:] == ["driving", "toy"]
    with pytest.raises(ValueError, match="expected one of all, colors, driving, toy"):
        demo_steps(tmp_path / "run", tmp_path / "data", quick=True, game="chess")


def test_names_are_unique(toy):
    with pytest.raises(ValueError, match="already registered"):
        games.register(TOY)
    with pytest.raises(ValueError, match="'all'"):
        games.register(games.GameApp("all", TOY.recognises, TOY.evaluate, TOY.stream))


@pytest.mark.parametrize("module", ["translator.apps.colors.entry", "translator.apps.driving.entry", "translator.apps.games"])
def test_each_entry_imports_on_its_own(module: str):
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
