"""Report writing (`eval.report`, `eval.translation_report`) on synthetic metrics: files, tables, plots, HTML."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest
from PIL import Image

from eval.metrics import accuracy_report
from eval.report import format_table, write_report
from eval.translation_report import COLUMNS, gallery_html, hsl_css, translation_markdown
from translator.corpus import CONDITIONS

N = 60
COND = [CONDITIONS[i % 3] for i in range(N)]
GAMES = [f"g{i // 6}" for i in range(N)]
MALICIOUS = "<script>alert(1)</script>"


def _acc(p: float, seed: int) -> dict:
    return accuracy_report(np.random.default_rng(seed).random(N) < p, COND, GAMES)


def _to_english(p: float, seed: int, **extra: float) -> dict:
    return {**_acc(p, seed), "bleu": 0.1 + p / 10, "chrf": 0.2 + p / 10, "distinct": 0.4, "naturalness": -3.5,
            "consulted_listener_accuracy": p - 0.05, "faithful": 0.875, **extra}  # fmt: skip


@pytest.fixture(scope="module")
def metrics() -> dict:
    hl = _acc(0.7, 1)
    hl.update(ece=0.05, ece_uncalibrated=0.1, nll=0.6, mean_confidence=0.7, temperature=1.3,
              reliability={"calibrated": [{"confidence": 0.5, "accuracy": 0.6}], "uncalibrated": [{"confidence": 0.5, "accuracy": 0.4}]})  # fmt: skip
    language = {"entropy": 3.2, "mutual_information": 1.1, "topographic_similarity": 0.3, "posdis": None, "bosdis": 0.1,
                "distinct_messages": 40}  # fmt: skip
    translation = {
        "continuous": {
            "belief": {"to_english": _to_english(0.8, 2), "to_neuralese": _acc(0.6, 3), "belief_kl": 0.42},
            "direct": {"to_english": _to_english(0.55, 4), "belief_kl": None},  # no H→R, null KL
            "random": {"to_english": _to_english(0.33, 5), "to_neuralese": _acc(0.3, 6), "belief_kl": 1.7},
        },
        "gumbel": {
            "seq2seq_cooccurrence": {"to_english": _to_english(0.5, 7), "to_neuralese": _acc(0.5, 8), "belief_kl": None},
            "belief_context_free": {"to_english": _to_english(0.65, 9), "belief_kl": 0.9},
        },
    }
    return {
        "data": {"file": "dev.csv", "rounds": N, "games": 10, "by_condition": dict.fromkeys(CONDITIONS, N // 3)},
        "human": _acc(0.9, 0),
        "human_listener": hl,
        "english_speaker": {"perplexity": 12.3, "bayesian_listener": _acc(0.6, 10)},
        "agents": {"gumbel": {**_acc(0.8, 11), "language": language}},
        "translation": translation,
    }


@pytest.fixture(scope="module")
def gallery() -> list[dict]:
    return [
        {"channel": "continuous", "round_id": "2641-2/1", "condition": "split", "colors": [[48, 13, 50], [176, 67, 50], [26.5, 34, 50]],
         "target": 0, "utterance": MALICIOUS, "message": "z[0:3]=0.12,-0.40,0.05…", "agent_choice": 0,
         "translations": {"belief": {"text": "gray & <b>dull</b>", "eval_listener_choice": 0, "faithful": True},
                          "random": {"text": "bright red", "eval_listener_choice": 2, "faithful": False}}},
        {"channel": "gumbel", "round_id": "2641-2/2", "condition": "far", "colors": [[66, 26, 50], [354, 80, 50], [84, 6, 50]],
         "target": 1, "utterance": "green", "message": "7 12 .", "agent_choice": 2,
         "translations": {"seq2seq_cooccurrence": {"text": "pink", "eval_listener_choice": 1, "faithful": True}}},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def written(metrics, gallery, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    write_report(metrics, out, gallery=gallery)
    return out


def _row(md: str, name: str) -> list[str]:
    lines = [line for line in md.splitlines() if line.startswith(f"| {name} |")]
    assert len(lines) == 1, (name, lines)
    return [c.strip() for c in lines[0].strip("|").split("|")]


def test_files_and_images(written):
    for name in ("report.md", "report.html", "accuracy.png", "calibration.png", "translation.png", "belief_kl.png"):
        assert (written / name).is_file() and (written / name).stat().st_size > 0, name
    for name in ("accuracy.png", "calibration.png", "translation.png", "belief_kl.png"):
        with Image.open(written / name) as im:
            im.verify()
            assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100


def test_markdown_translation_tables(written, metrics):
    md = (written / "report.md").read_text(encoding="utf-8")
    assert "## Translation" in md and "### continuous" in md and "### gumbel" in md
    assert "![" in md and "(translation.png)" in md and "(belief_kl.png)" in md
    tr = metrics["translation"]
    for channel in tr:
        section = md.split(f"### {channel}")[1].split("###")[0]
        assert "| " + " | ".join(COLUMNS) + " |" in section
        for name, entry in tr[channel].items():
            cells = _row(section, name)
            assert len(cells) == len(COLUMNS)
            en = entry["to_english"]
            lo, hi = en["ci95"]
            assert cells[1] == f"{en['accuracy']:.3f} [{lo:.3f}, {hi:.3f}]"
            if "to_neuralese" in entry:
                assert cells[2].startswith(f"{entry['to_neuralese']['accuracy']:.3f} [")
            else:
                assert cells[2] == "–"
            assert cells[3:8] == [
                f"{en[k]:.3f}" for k in ("bleu", "chrf", "distinct", "naturalness", "consulted_listener_accuracy")
            ]
            assert cells[8] == ("–" if entry["belief_kl"] is None else f"{entry['belief_kl']:.3f}")
            assert cells[9] == "87.5"
    # Rows in the canonical translator order, not the dict order.
    gumbel = md.split("### gumbel")[1]
    assert gumbel.index("| belief_context_free |") < gumbel.index("| seq2seq_cooccurrence |")
    # The existing sections are still there.
    assert "## Listener accuracy" in md and "## Agents' language" in md and "## English speaker" in md
    assert "see `report.html`" in md


def test_markdown_without_translation(metrics, tmp_path):
    plain = {k: v for k, v in metrics.items() if k != "translation"}
    write_report(plain, tmp_path)
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "Translation" not in md and "translation.png" not in md
    assert not (tmp_path / "translation.png").exists()
    assert (tmp_path / "report.html").is_file()
    assert "people (corpus outcome)" in format_table(plain)
    assert "R->H" not in format_table(plain)


def test_html_tables_swatches_and_escaping(written, metrics, gallery):
    page = (written / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for src in ("accuracy.png", "calibration.png", "translation.png", "belief_kl.png"):
        assert f'<img src="{src}"' in page
    # The same tables as the markdown, as HTML.
    assert page.count("<table>") == 2 + len(metrics["translation"])  # listener accuracy, agents' language, channels
    en = metrics["translation"]["continuous"]["belief"]["to_english"]
    assert f"<td>{en['accuracy']:.3f} [{en['ci95'][0]:.3f}, {en['ci95'][1]:.3f}]</td>" in page
    assert "<code>dev.csv</code>" in page
    # One swatch per colour with the corpus HSL as CSS; the target has its own class.
    swatches = re.findall(r'<div class="(swatch(?: target)?)" style="background: (hsl\([^)]*\))"', page)
    assert [s for _, s in swatches] == [hsl_css(c) for r in gallery for c in r["colors"]]
    assert swatches[0][1] == "hsl(48, 13%, 50%)" and swatches[2][1] == "hsl(26.5, 34%, 50%)"
    assert [cls == "swatch target" for cls, _ in swatches] == [i == r["target"] for r in gallery for i in range(3)]
    # Untrusted text is escaped.
    assert MALICIOUS not in page and html.escape(MALICIOUS) in page
    assert "<b>dull</b>" not in page and html.escape("gray & <b>dull</b>") in page
    assert page.count('<span class="untranslatable">untranslatable?</span>') == 1
    assert html.escape("z[0:3]=0.12,-0.40,0.05…") in page and "7 12 ." in page


def test_gallery_picks():
    frag = gallery_html([{"channel": "gumbel", "round_id": "r", "condition": "close", "colors": [[0, 0, 0], [1, 1, 1], [2, 2, 2]],
                          "target": 2, "utterance": "x", "message": "1 2", "agent_choice": 1,
                          "translations": {"direct": {"text": "y", "eval_listener_choice": 2, "faithful": True}}}])  # fmt: skip
    assert re.findall(r'<div class="picks">(.*?)</div>', frag) == ["", "agent", "eval listener (direct)"]
    assert "untranslatable?" not in frag.split("</p>", 1)[1]
    assert gallery_html([]) == ""


def test_format_table_translation_rows(metrics):
    text = format_table(metrics)
    assert "R->H" in text
    lines = text.splitlines()
    row = next(line for line in lines if "continuous" in line and " direct " in line)
    en = metrics["translation"]["continuous"]["direct"]["to_english"]
    assert f"{en['accuracy']:.3f}" in row and " - " in row and "–" not in row and "87.5" in row
    assert sum("gumbel" in line for line in lines if "R->H" not in line) >= 2


def test_translation_markdown_handles_missing_pieces():
    md = translation_markdown({"reinforce": {"belief": {"to_english": {"accuracy": float("nan"), "ci95": [float("nan")] * 2}},
                                             "random": {}}})  # fmt: skip
    assert _row(md, "belief")[1:] == ["–"] * (len(COLUMNS) - 1)
    assert _row(md, "random")[1:] == ["–"] * (len(COLUMNS) - 1)
