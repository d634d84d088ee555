"""Import a foreign driving agent: check its episode file, fit its message model, write the folder.

`import_episodes(FILE, DIR, english)` reads FILE (translator/games/driving/episodes.py), fits
p(z | own observation) on its steps (training/driving/message_model.py) and writes DIR as
translator/games/driving/imported.py describes it, as a whole: DIR is built in a temporary sibling
and swapped in only when everything is written, so a bad line, a failed fit or a kill leaves DIR as
it was (absent, or the previous import).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from training.driving.message_model import MessageModelArgs, fit_message_model
from translator.games.driving.english import HumanSpeaker
from translator.games.driving.episodes import FORMAT, read_episodes
from translator.games.driving.imported import ENGLISH_DIR, KIND, MODEL_DIR, RUN_FILE, STEPS_FILE
from translator.storage.atomic import atomic_bundle_dir, atomic_write
from translator.storage.bundle import BundleError, write_side_file


def english_speaker_dir(english: str | Path) -> Path:
    """The English speaker bundle `english` names: the bundle itself, a driving run's folder
    (`english_speaker/` in it) or a run holding `driving/english_speaker/`."""
    base = Path(english)
    for candidate in (base / "english_speaker", base / "driving" / "english_speaker", base):
        if (candidate / "config.json").is_file():
            return candidate
    raise BundleError(f"{english}: no English speaker of the driving game (english_speaker/ or its config.json); "
                      "train one with `neuralese driving --out RUN`")  # fmt: skip


def import_episodes(path: str | Path, out_dir: str | Path, english: str | Path, args: MessageModelArgs | None = None) -> dict:
    """Check `path`, fit the message model and write `out_dir`; returns `run.json`'s fields."""
    args = args or MessageModelArgs()
    speaker_dir = english_speaker_dir(english)
    HumanSpeaker.from_pretrained(speaker_dir)  # refuse a bundle that does not load before any work
    steps = read_episodes(path)
    model, report = fit_message_model(steps, args)
    lines = "".join(_json_line(s.to_json()) for s in steps)
    info = {
        "format": FORMAT,
        "source": str(Path(path)),
        "steps": len(steps),
        "episodes": len({s.episode for s in steps}),
        "message_size": model.config.message_size,
        "english_speaker": str(speaker_dir.resolve()),
        "seed": args.seed,
        "message_model": report,
    }
    with atomic_bundle_dir(out_dir, marker=RUN_FILE) as d:
        atomic_write(d / STEPS_FILE, lines.encode("utf-8"))
        model.save_pretrained(d / MODEL_DIR)
        shutil.copytree(speaker_dir, d / ENGLISH_DIR)
        write_side_file(d / RUN_FILE, KIND, info)
    return info


def _json_line(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":")) + "\n"
