"""Shared fixtures: small corpora cut from the bundled CSVs, and one small trained English bundle.

Everything runs on one CPU thread (another process may be training on the same machine), and
training is kept tiny: one `EnglishModels` is trained once per session and shared by all tests.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "colors_in_context"
TRAIN_CSV = DATA / "train.csv"
DEV_CSV = DATA / "dev.csv"

# The small English bundle shared by the model, bundle and API tests: games (in file order) of
# train.csv used for training, validation (early stopping, calibration) and held-out evaluation.
TRAIN_GAMES = (0, 40)
VAL_GAMES = (40, 48)
TEST_GAMES = (48, 68)


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, list(reader)


def write_table(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def data_paths() -> dict[str, Path]:
    return {"train": TRAIN_CSV, "dev": DEV_CSV}


@pytest.fixture(scope="session")
def train_table() -> tuple[list[str], list[list[str]]]:
    """Header and raw rows (lists of strings) of the bundled train.csv."""
    return read_table(TRAIN_CSV)


@pytest.fixture(scope="session")
def write_csv():
    """`write_csv(path, header, rows) -> path`: write a CSV with the csv module (proper quoting)."""
    return write_table


@pytest.fixture(scope="session")
def game_slice(train_table, tmp_path_factory):
    """`game_slice(start, stop) -> Path`: a round-per-row CSV holding games[start:stop] of train.csv."""
    header, rows = train_table
    col = header.index("gameid")
    games = list(dict.fromkeys(r[col] for r in rows))
    cache: dict[tuple[int, int], Path] = {}

    def make(start: int, stop: int) -> Path:
        if (start, stop) not in cache:
            keep = set(games[start:stop])
            path = tmp_path_factory.mktemp("slice") / f"games_{start}_{stop}.csv"
            cache[(start, stop)] = write_table(path, header, [r for r in rows if r[col] in keep])
        return cache[(start, stop)]

    return make


@pytest.fixture(scope="session")
def small_rounds(game_slice):
    """`{"train", "val", "test"}`: rounds of disjoint game slices of train.csv."""
    from translator.games.colors.corpus import load_rounds

    return {
        "train": load_rounds(game_slice(*TRAIN_GAMES)),
        "val": load_rounds(game_slice(*VAL_GAMES)),
        "test": load_rounds(game_slice(*TEST_GAMES)),
    }


@pytest.fixture(scope="session")
def english_models(small_rounds):
    """One small English bundle (tokenizer, listener, speaker), trained once for the session."""
    from training.colors.english import EnglishTrainArgs, train_english

    args = EnglishTrainArgs(seed=0, vocab_size=200, batch_size=32, max_steps=60, listener_epochs=1, speaker_epochs=1)
    return train_english(small_rounds["train"], small_rounds["val"], args)


@pytest.fixture(scope="session")
def saved_english(english_models, tmp_path_factory) -> Path:
    """The session bundle saved once; copy it before corrupting it."""
    path = tmp_path_factory.mktemp("bundle") / "english"
    english_models.save_pretrained(path)
    return path


# -- a tiny translation stack: agents, their paired corpus, and belief/direct translators ----------


@pytest.fixture(scope="session")
def tiny_agents(game_slice):
    """Continuous agents trained briefly on 30 games (beat chance clearly, not perfect)."""
    from training.colors.agents import AgentTrainArgs, train_agents
    from translator.games.colors.corpus import load_rounds

    args = AgentTrainArgs.for_channel("continuous", steps=150, batch_size=64, eval_every=0, progress=False)
    return train_agents(load_rounds(game_slice(0, 30)), args)


@pytest.fixture(scope="session")
def tiny_pairs(tiny_agents, game_slice):
    """The agents' paired corpus (a collection) on the English bundle's 40 training games."""
    from translator.games.colors.corpus import load_rounds
    from translator.translate.colors.collection import collect

    return collect(tiny_agents, load_rounds(game_slice(*TRAIN_GAMES)))


@pytest.fixture(scope="session")
def tiny_belief_translator(english_models, tiny_agents, tiny_pairs):
    """A `BeliefTranslator` with small tables (16 contexts, 300 candidates, 256 pooled messages)."""
    from training.colors.translators import BeliefBuildArgs, build_belief_translator
    from translator.models.colors.message_model import ExactMessageModel
    from translator.translate.colors.belief import BeliefTranslatorConfig

    args = BeliefBuildArgs(contexts=16, candidates=300, pool=256, min_count=1)
    config = BeliefTranslatorConfig(channel=tiny_agents.channel.to_dict(), criterion="kl", plausibility=0.05, prior_margin=0.1)
    return build_belief_translator(english_models, ExactMessageModel(tiny_agents), tiny_pairs, args, config)


@pytest.fixture(scope="session")
def saved_belief_translator(tiny_belief_translator, tmp_path_factory) -> Path:
    """The tiny belief translator saved once; copy it before corrupting it."""
    path = tmp_path_factory.mktemp("translator") / "belief"
    tiny_belief_translator.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_driving_run(tmp_path_factory) -> Path:
    """RUN/driving: a tiny untrained agent, an English speaker fit briefly on 150 training games,
    20 training games (for the direct translator) and seed 3 in `run.json`."""
    from training.driving.english import examples, split_games, train_speaker
    from translator.games.driving.agents import DrivingAgent, DrivingAgentConfig
    from translator.games.driving.logs import read_logs

    torch.manual_seed(0)
    data = ROOT / "data" / "driving" / "train.jsonl"
    base = tmp_path_factory.mktemp("driving-run") / "driving"
    fit, held = split_games(read_logs(data)[:150])  # enough games for a few frequent utterances
    speaker, _ = train_speaker(examples(fit), examples(held), epochs=20)
    speaker.save_pretrained(base / "english_speaker")
    DrivingAgent(DrivingAgentConfig(hidden=16)).save_pretrained(base / "agents")
    train = base / "train.jsonl"
    train.write_text("\n".join(data.read_text(encoding="utf-8").splitlines()[:20]) + "\n", encoding="utf-8")
    (base / "run.json").write_text(json.dumps({"train": str(train), "seed": 3}), encoding="utf-8")
    return base.parent
