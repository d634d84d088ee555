"""The architecture as the README's Layout section states it, checked on every import statement
(top-level or inside a function) of the library, `training/` and `eval/`: the arrows between the
layers, and one folder per game in each layer (game-free code imports no game's code; a game's
code imports no other game's)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Each part may import only itself and the parts before it in this order.
LAYERS = [("translator.storage", "translator.settings"), ("translator.games",), ("translator.models",),
          ("translator.translate",), ("training", "eval"), ("translator.apps",)]  # fmt: skip
GAMES = ("colors", "driving")
# Each of these holds a subpackage per game, `<package>.<game>`, for that game's code.
GAME_PACKAGES = ("translator.games", "translator.models", "translator.translate", "training", "eval", "translator.apps")
# The game-free tops whose modules import no game's code.
GAME_FREE_TOPS = ("translator.models", "translator.translate", "training", "eval")
# The exceptions: modules at a game-free top that hold a game-free core (which the driving game
# uses) beside the colour game's code, kept whole.
MIXED = {
    "training/faithfulness.py": "`threshold_for_precision` beside the colour game's faithfulness fit",
    "eval/evaluate.py": "`prepare_out` beside the colour game's evaluation",
    "eval/faithfulness.py": "AUROC, calibration error and the flag's report beside the colour game's faithfulness",
}


def part_of(module: str) -> str | None:
    for layer in LAYERS:
        for part in layer:
            if module == part or module.startswith(part + "."):
                return part
    return None


def layer_of(part: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if part in layer)


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


def game_of(module: str) -> str | None:
    """The game whose code `module` is (`<package>.<game>` or below), None for game-free code."""
    for package in GAME_PACKAGES:
        for game in GAMES:
            if module == f"{package}.{game}" or module.startswith(f"{package}.{game}."):
                return game
    return None


def sources() -> list[Path]:
    return sorted(p for d in ("translator", "training", "eval") for p in (ROOT / d).rglob("*.py"))


def test_every_module_belongs_to_a_layer():
    loose = [p.relative_to(ROOT) for p in sources() if part_of(".".join(p.relative_to(ROOT).with_suffix("").parts)) is None]
    assert loose == [Path("translator/__init__.py")]  # the package's lazy door to the API


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down_the_layers(path: Path):
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    own = part_of(module)
    if own is None:
        return
    wrong = []
    for line, target in imports(path):
        part = part_of(target)
        if part is None or part == own:
            continue
        if layer_of(part) > layer_of(own) or (layer_of(part) == layer_of(own) and {own, part} == {"training", "eval"}):
            wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert wrong == []


def test_the_check_sees_a_wrong_arrow(tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from translator.apps.cli import main\n")
    assert [(line, t) for line, t in imports(bad)] == [(2, "translator.apps.cli")]
    assert layer_of(part_of("translator.apps.cli")) > layer_of(part_of("translator.models.colors.listener"))


def top_modules() -> list[Path]:
    return sorted(p for top in GAME_FREE_TOPS for p in (ROOT / top.replace(".", "/")).glob("*.py"))


def game_modules() -> list[tuple[str, Path]]:
    return [
        (game, p)
        for package in GAME_PACKAGES
        for game in GAMES
        for p in sorted((ROOT / package.replace(".", "/") / game).rglob("*.py"))
    ]


@pytest.mark.parametrize("path", top_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_game_free_modules_import_no_games_code(path: Path):
    if str(path.relative_to(ROOT)) in MIXED:
        return
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {target}" for line, target in imports(path) if game_of(target)]
    assert wrong == []


@pytest.mark.parametrize("name", sorted(MIXED))
def test_each_exception_is_still_needed(name: str):
    assert {game_of(target) for _, target in imports(ROOT / name)} >= {"colors"}


@pytest.mark.parametrize(("game", "path"), game_modules(), ids=lambda v: v if isinstance(v, str) else str(v.relative_to(ROOT)))
def test_a_games_code_imports_no_other_games(game: str, path: Path):
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for line, target in imports(path)
        if game_of(target) not in (None, game)
    ]
    assert wrong == []


def test_each_game_has_its_folder_in_each_package():
    missing = [
        f"{package}.{game}"
        for package in GAME_PACKAGES
        for game in GAMES
        if not (ROOT / package.replace(".", "/") / game / "__init__.py").is_file()
    ]
    assert missing == ["translator.models.driving"]  # the driving game's networks live with its game (translator/games/driving/)


def test_the_game_check_tells_games_apart():
    assert game_of("translator.translate.colors.api") == "colors"
    assert game_of("translator.games.driving") == "driving"
    assert game_of("eval.driving.run") == "driving"
    assert game_of("translator.translate.faithfulness") is None
    assert game_of("translator.games.beliefs") is None
    assert game_of("training.colorspace") is None
