"""The architecture as the README's Layout section states it, checked on every import statement
(top-level or inside a function) of the library, `training/` and `eval/`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Each part may import only itself and the parts before it in this order.
LAYERS = [("translator.storage", "translator.settings"), ("translator.games",), ("translator.models",),
          ("translator.translate",), ("training", "eval"), ("translator.apps",)]  # fmt: skip


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
