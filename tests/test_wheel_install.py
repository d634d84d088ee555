"""The package as a user installs it (a wheel, not the source tree): it finds its bundled data and
runs the quick demo from another directory."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of the source tree on the path


def _fresh_venv_with_wheel(tmp: Path) -> Path:
    """A new venv holding the wheel built from this tree; its dependencies are reached through a
    path entry to this interpreter's site-packages (their .pth files, the editable install's
    among them, are not run from there)."""
    src, wheels = tmp / "src", tmp / "wheels"  # built from a copy: a build writes into its source tree
    src.mkdir()
    for part in ("pyproject.toml", "README.md", "translator", "training", "eval", "data"):
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy
        copy(ROOT / part, src / part, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(src)],
                   check=True, cwd=tmp, env=_ENV)  # fmt: skip
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True,
                             capture_output=True, text=True).stdout.strip()  # fmt: skip
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", *wheels.glob("*.whl")],
                   check=True, env=_ENV)  # fmt: skip
    Path(purelib, "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")  # after: pip would see this tree's install
    return py


@pytest.mark.slow
def test_installed_wheel_runs_the_quick_demo(tmp_path):
    py = _fresh_venv_with_wheel(tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = _ENV
    where = subprocess.run([py, "-c", "import translator, translator.storage.bundled_data as b; print(translator.__file__);"
                            "print(b.bundled('colors_in_context', 'train.csv'))"],
                           cwd=work, env=env, check=True, capture_output=True, text=True).stdout.split()  # fmt: skip
    assert not where[0].startswith(str(ROOT)) and not where[1].startswith(str(ROOT)), where
    assert Path(where[1]).stat().st_size > 1_000_000
    demo = subprocess.run([py, "-m", "translator.apps.cli", "demo", "--quick", "--out", "run"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=1200)  # fmt: skip
    assert demo.returncode == 0, demo.stderr[-3000:]
    metrics = json.loads((work / "run" / "eval" / "metrics.json").read_text())
    assert metrics["data"]["file"].startswith(str(Path(where[1]).parent)) and metrics["data"]["games"] == 12


def test_every_package_of_the_tree_is_installed():
    """A subpackage missing from pyproject's list would be left out of the wheel (the editable
    install of the tests would not notice)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for top in ("translator", "training", "eval") for p in (ROOT / top).rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)
    assert "translator.data" in listed
