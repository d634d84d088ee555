"""Report writing (`eval.colors.report`, `eval.colors.translation_report`) on synthetic metrics: files, tables, plots, HTML."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest
from PIL import Image

from eval.colors.report import format_table, write_report
from eval.colors.translation_report import COLUMNS, gallery_html, hsl_css, translation_markdown
from translator.games.accuracy import accuracy_report, agreement_report
from translator.games.colors.corpus import CONDITIONS

N = 60
COND = [CONDITIONS[i % 3] for i in range(N)]
GAMES = [f"g{i // 6}" for i in range(N)]
MALICIOUS = "<script>alert(1)</script>"


def _acc(p: float, seed: int) -> dict:
    return accuracy_report(np.random.default_rng(seed).random(N) < p, COND, GAMES)


def _moved(p: float, seed: int) -> dict:
    return agreement_report(np.random.default_rng(seed).random(N) < p, COND, GAMES)


def _to_english(p: float, seed: int, **extra: float) -> dict:
    return {**_acc(p, seed), "bleu": 0.1 + p / 10, "chrf": 0.2 + p / 10, "distinct": 0.4, "naturalness": -3.5,
            "consulted_listener_accuracy": p - 0.05, "faithful": 0.875, "transplanted": _moved(p - 0.1, seed + 100),
            **extra}  # fmt: skip


def _to_neuralese(p: float, seed: int) -> dict:
    return {**_acc(p, seed), "transplanted": _moved(p - 0.2, seed + 200)}


@pytest.fixture(scope="module")
def metrics() -> dict:
    hl = _acc(0.7, 1)
    hl.update(ece=0.05, ece_uncalibrated=0.1, nll=0.6, mean_confidence=0.7, temperature=1.3,
              reliability={"calibrated": [{"confidence": 0.5, "accuracy": 0.6}], "uncalibrated": [{"confidence": 0.5, "accuracy": 0.4}]})  # fmt: skip
    language = {"entropy": 3.2, "mutual_information": 1.1, "topographic_similarity": 0.3, "posdis": None, "bosdis": 0.1,
                "distinct_messages": 40}  # fmt: skip
    translation = {
        "continuous": {
            "message_blind": {"to_english": _to_english(0.95, 12), "to_neuralese": _to_neuralese(0.98, 13), "belief_kl": 2.1},
            "belief": {"to_english": _to_english(0.8, 2), "to_neuralese": _to_neuralese(0.6, 3), "belief_kl": 0.42},
            "direct": {"to_english": _to_english(0.55, 4), "belief_kl": None},  # no H→R, null KL
            "random": {"to_english": _to_english(0.33, 5), "to_neuralese": _to_neuralese(0.3, 6), "belief_kl": 1.7},
        },
        "gumbel": {
            "seq2seq_cooccurrence": {"to_english": _to_english(0.5, 7), "to_neuralese": _to_neuralese(0.5, 8), "belief_kl": None},
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
                          "random": {"text": "bright red", "eval_listener_choice": 2, "faithful": False}},
         "reconstruction": [50.0, 15, 45],
         "transplanted": {"round_id": "3001-7/4", "condition": "close", "colors": [[10, 50, 50], [20, 50, 50], [30, 50, 50]],
                          "agent_choice": 2,
                          "translations": {"belief": {"text": "orange", "eval_listener_choice": 2},
                                           "random": {"text": "blue", "eval_listener_choice": 0}}}},
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
            moved = en["transplanted"]
            assert cells[3] == f"{moved['agreement']:.3f} [{moved['ci95'][0]:.3f}, {moved['ci95'][1]:.3f}]"
            assert cells[4] == " / ".join(f"{moved['by_condition'][c]['agreement']:.2f}" for c in CONDITIONS)
            if "to_neuralese" in entry:
                assert cells[2].startswith(f"{entry['to_neuralese']['accuracy']:.3f} [")
                assert cells[5].startswith(f"{entry['to_neuralese']['transplanted']['agreement']:.3f} [")
            else:
                assert cells[2] == cells[5] == "–"
            assert cells[6:11] == [
                f"{en[k]:.3f}" for k in ("bleu", "chrf", "distinct", "naturalness", "consulted_listener_accuracy")
            ]
            assert cells[11] == ("–" if entry["belief_kl"] is None else f"{entry['belief_kl']:.3f}")
            assert cells[12] == "87.5"
    # Rows in the canonical translator order, not the dict order; the message-blind baseline last.
    gumbel = md.split("### gumbel")[1]
    assert gumbel.index("| belief_context_free |") < gumbel.index("| seq2seq_cooccurrence |")
    continuous = md.split("### continuous")[1].split("###")[0]
    assert continuous.index("| random |") < continuous.index("| message_blind |")
    assert "transplanted" in md and "message_blind describes" in md
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
    # (a round's transplanted context follows its own, with no target)
    swatches = re.findall(r'<div class="(swatch(?: target)?)" style="background: (hsl\([^)]*\))"', page)
    contexts = [(r["colors"], r["target"]) for r in gallery] + [(gallery[0]["transplanted"]["colors"], None)]
    contexts = [contexts[0], contexts[2], contexts[1]]
    assert [s for _, s in swatches] == [hsl_css(c) for colors, _ in contexts for c in colors]
    assert swatches[0][1] == "hsl(48, 13%, 50%)" and swatches[2][1] == "hsl(26.5, 34%, 50%)"
    assert [cls == "swatch target" for cls, _ in swatches] == [i == t for _, t in contexts for i in range(3)]
    # Untrusted text is escaped.
    assert MALICIOUS not in page and html.escape(MALICIOUS) in page
    assert "<b>dull</b>" not in page and html.escape("gray & <b>dull</b>") in page
    assert page.count('<span class="untranslatable">untranslatable?</span>') == 1
    assert html.escape("z[0:3]=0.12,-0.40,0.05…") in page and "7 12 ." in page


def test_gallery_shows_the_reconstruction_and_the_transplanted_context(gallery):
    frag = gallery_html(gallery)
    assert '<span class="swatch small" style="background: hsl(50, 15%, 45%)">' in frag
    assert frag.count('class="swatch small"') == 1  # only the round whose listener reconstructs
    moved = frag.split('<div class="transplanted">')[1].split('<div class="round">')[0]
    assert "round 3001-7/4 (close)" in moved
    # picks under the transplanted colours, and ✓ where the evaluation listener agrees with the agent
    assert re.findall(r'<div class="picks">(.*?)</div>', moved) == ["eval listener (random)", "", "agent, eval listener (belief)"]
    assert '<span class="right">✓</span> <b>belief</b>: orange' in moved
    assert '<span class="wrong">✗</span> <b>random</b>: blue' in moved
    assert "target" not in moved
    assert frag.count('<div class="transplanted">') == 1  # the second round has none


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
