"""`neuralese evaluate`: score a run's models on a corpus file of (ideally unseen) games."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from eval.colors.report import REPORT_FILES, format_table, write_report
from eval.colors.run_models import load_english
from eval.colors.translation import evaluate_translation
from eval.language import analyse
from eval.metrics import expected_calibration_error, reliability
from eval.seeds import aggregate, file_sha256, is_current, seed_runs
from translator.games.accuracy import accuracy_report
from translator.games.colors.corpus import CONDITIONS, Round, contexts_tensor, load_rounds
from translator.games.colors.plays_db import format_plays, plays_report
from translator.models.colors.agents import Agents
from translator.models.colors.english import EnglishModels
from translator.storage.bundle import read_json, write_json
from translator.translate.colors.collection import collect


def data_summary(path: str | Path, rounds: list[Round]) -> dict:
    return {
        "file": str(path),
        "sha256": file_sha256(path),
        "rounds": len(rounds),
        "games": len({r.game_id for r in rounds}),
        "by_condition": {c: sum(r.condition == c for r in rounds) for c in CONDITIONS},
    }


def evaluate_english(english: EnglishModels, rounds: list[Round]) -> dict:
    """Listener accuracy and calibration, speaker perplexity and its Bayesian listener."""
    texts = [r.text for r in rounds]
    colors = contexts_tensor(rounds)
    y = np.array([r.target for r in rounds])
    cond, games = [r.condition for r in rounds], [r.game_id for r in rounds]

    raw = english.listen(texts, colors, calibrated=False).numpy()
    cal = english.listen(texts, colors).numpy()
    listener = accuracy_report(cal.argmax(1) == y, cond, games)
    listener.update(
        ece=expected_calibration_error(cal, y),
        ece_uncalibrated=expected_calibration_error(raw, y),
        nll=float(-np.log(cal[np.arange(len(y)), y] + 1e-12).mean()),
        mean_confidence=float(cal.max(1).mean()),
        temperature=english.listener.config.temperature,
        reliability={"calibrated": reliability(cal, y), "uncalibrated": reliability(raw, y)},
    )

    targets = torch.as_tensor(y)
    tokens, lengths = english.encode(texts)
    lp = english.speaker_log_prob(texts, colors, targets)
    perplexity = math.exp(-lp.sum().item() / (lengths + 1).sum().item())
    posterior = english.bayesian_listen(texts, colors).numpy()
    speaker = {"perplexity": perplexity, "bayesian_listener": accuracy_report(posterior.argmax(1) == y, cond, games)}
    return {"human_listener": listener, "english_speaker": speaker}


def evaluate_judge(run: str | Path, rounds: list[Round]) -> dict | None:
    """The evaluation listener's accuracy on the people's utterances (None when the run has none):
    what judging translations by it costs against the people's own listeners. Rounds whose
    utterance has no token it knows are left out (`skipped_empty`)."""
    from translator.models.colors.cnn_listener import DIRECTORY, EvaluationListener

    if not (Path(run) / DIRECTORY / "config.json").is_file():
        return None
    judge = EvaluationListener.from_pretrained(Path(run) / DIRECTORY)
    kept = [r for r, ids in zip(rounds, judge.tokenizer.encode([r.text for r in rounds], max_len=judge.listener.config.max_len)) if ids]
    if not kept:
        return None
    picks = judge.listen([r.text for r in kept], contexts_tensor(kept)).argmax(1).numpy()
    report = accuracy_report(picks == np.array([r.target for r in kept]), [r.condition for r in kept], [r.game_id for r in kept])
    report["skipped_empty"] = len(rounds) - len(kept)
    report["training"] = judge.training.get("data", {})
    return report


def evaluate_agents(run: str | Path, rounds: list[Round]) -> dict:
    """Self-play accuracy (R/R, channel noise on) and language metrics for every agents bundle in the run."""
    out = {}
    for bundle in sorted((Path(run) / "agents").glob("*/config.json")):
        agents = Agents.from_pretrained(bundle.parent)
        ds = collect(agents, rounds)
        report = accuracy_report(ds["agent_correct"], ds["condition"], ds["game_id"])
        channel = agents.channel
        targets = np.array(ds["target"])
        target_hsl = np.array(ds["colors"])[np.arange(len(targets)), targets]
        report["language"] = analyse(np.array(ds["message"]), target_hsl, discrete=channel.discrete,
                                     vocab_size=getattr(channel, "vocab_size", None))
        out[channel.kind] = report
    return out


def first_games(rounds: list[Round], n: int) -> list[Round]:
    keep = set(list(dict.fromkeys(r.game_id for r in rounds))[:n])
    return [r for r in rounds if r.game_id in keep]


def prepare_out(out: str | Path) -> Path:
    """Create the output directory before any work, so that an `out` that cannot take the report
    (a file, an unwritable place, a report file that is a directory) fails at once (`ValueError`)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a directory (--out names the directory the report goes to)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{out}: cannot create the output directory ({e.strerror or e})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"{out}: the output directory is not writable")
    blocked = [name for name in ("metrics.json", *REPORT_FILES) if (out / name).is_dir()]
    if blocked:
        raise ValueError(f"{out}: {', '.join(blocked)} would be overwritten but is a directory")
    return out


def evaluate(run: str | Path, data: str | Path, out: str | Path, games: int | None = None, plays: str | Path | None = None,
             jobs: int = 1) -> dict:
    """Evaluate everything the run holds on `data` (its first `games` games when given); writes
    `out/metrics.json` and a report. `jobs`: worker processes scoring translators at once. This is
    the colour game's evaluation; `neuralese evaluate` picks each file's game's own
    (translator/apps/games.py)."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if not (Path(run) / "english").is_dir() and seed_runs(run):
        return evaluate_seeds(run, data, out, games, plays, jobs)
    out = prepare_out(out)
    rounds = load_rounds(data)
    human_play = plays_report(plays) if plays is not None else None  # fails fast on a bad database
    if games is not None:
        rounds = first_games(rounds, games)
    english = load_english(run)
    metrics = {
        "data": data_summary(data, rounds),
        "human": accuracy_report([r.outcome for r in rounds], [r.condition for r in rounds], [r.game_id for r in rounds]),
    }

    def english_and_agents() -> None:  # this process's share, done while the workers score translators
        metrics.update(evaluate_english(english, rounds))
        judge = evaluate_judge(run, rounds)
        if judge is not None:
            metrics["evaluation_listener"] = judge
        agents = evaluate_agents(run, rounds)
        if agents:
            metrics["agents"] = agents

    with torch.inference_mode():
        translation, gallery = evaluate_translation(run, rounds, jobs, meanwhile=english_and_agents)
        if translation:
            metrics["translation"] = translation
    if human_play is not None:
        metrics["human_play"] = human_play
    write_json(out / "metrics.json", metrics)
    write_report(metrics, out, gallery=gallery or None)
    print(format_table(metrics))
    if human_play is not None:
        print(format_plays(metrics))
    return metrics


def evaluate_seeds(run: str | Path, data: str | Path, out: str | Path, games: int | None = None,
                   plays: str | Path | None = None, jobs: int = 1) -> dict:
    """Evaluate each `seed-S/` run of `run` into `out/seed-S/` (reusing an evaluation there that is
    newer than the seed's run and made on the same data), then write the mean over seeds
    (`eval.seeds.aggregate`) to `out/metrics.json` with its report."""
    out = prepare_out(out)
    human_play = plays_report(plays) if plays is not None else None
    rounds = load_rounds(data)
    n_rounds = len(first_games(rounds, games) if games is not None else rounds)
    sha = file_sha256(data)
    per_seed = []
    for seed, seed_run in seed_runs(run):
        seed_out = out / f"seed-{seed}"
        if is_current(seed_out / "metrics.json", seed_run, sha, n_rounds):
            print(f"seed {seed}: {seed_out / 'metrics.json'} is newer than {seed_run} and made on the same data; reused")
            per_seed.append((seed, read_json(seed_out / "metrics.json")))
        else:
            per_seed.append((seed, evaluate(seed_run, data, seed_out, games=games, jobs=jobs)))
    metrics = aggregate(per_seed)
    if human_play is not None:
        metrics["human_play"] = human_play
    write_json(out / "metrics.json", metrics)
    write_report(metrics, out)
    print(f"mean over seeds {', '.join(str(s) for s, _ in per_seed)} (± the spread across seeds)")
    print(format_table(metrics))
    return metrics
