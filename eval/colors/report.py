"""Human-readable views of `metrics.json`: a text table, `report.md`, `report.html` and PNG plots."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from eval.colors.translation_report import (
    MISSING,
    fmt,
    fmt_acc,
    fmt_agreement,
    fmt_percent,
    gallery_html,
    html_table,
    markdown_table,
    ordered_translators,
    plot_belief_kl,
    plot_translation,
    translation_html,
    translation_markdown,
)
from translator.games.colors.corpus import CONDITIONS
from translator.storage.atomic import atomic_write


def _rows(metrics: dict) -> list[tuple[str, dict]]:
    """(label, accuracy report) for every listener-accuracy entry in the metrics."""
    rows = [("people (corpus outcome)", metrics["human"]), ("English listener H_l", metrics["human_listener"])]
    if "english_speaker" in metrics:
        rows.append(("Bayesian listener from H_s", metrics["english_speaker"]["bayesian_listener"]))
    if "evaluation_listener" in metrics:
        rows.append(("evaluation listener (judge)", metrics["evaluation_listener"]))
    for channel, rep in metrics.get("agents", {}).items():
        rows.append((f"agents R/R ({channel})", rep))
    return rows


def _num(v) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _cell(rep: dict) -> str:
    """`accuracy [lo, hi]`, with `± spread` across seeds when the metrics are a mean over seeds."""
    lo, hi = rep["ci95"]
    spread = f" ± {rep['seed_spread']:.3f}" if "seed_spread" in rep else ""
    return f"{rep['accuracy']:.3f}{spread} [{lo:.3f}, {hi:.3f}]"


def _console_table(table: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in table]


def format_table(metrics: dict) -> str:
    d = metrics["data"]
    head = ["who picks", "all", *CONDITIONS]
    lines = [f"{d['file']}: {d['rounds']} rounds, {d['games']} games", "accuracy (95% CI, bootstrap over games)"]
    table = [head] + [
        [name, _cell(rep), *(_cell(rep["by_condition"][c]) if c in rep["by_condition"] else "-" for c in CONDITIONS)]
        for name, rep in _rows(metrics)
    ]
    lines += _console_table(table)
    hl = metrics["human_listener"]
    lines.append(
        f"listener calibration: ECE {hl['ece_uncalibrated']:.3f} -> {hl['ece']:.3f} (temperature {hl['temperature']:.2f})"
    )
    if "english_speaker" in metrics:
        lines.append(f"speaker perplexity: {metrics['english_speaker']['perplexity']:.2f}")
    if metrics.get("translation"):
        # One compact row per (channel, translator): both directions, BLEU, belief KL, faithful share.
        lines.append("translation (R->H: evaluation listener on English; H->R: agent listener on messages; "
                     "transplanted: agreement in another round's context)")
        table = [["channel", "translator", "R->H", "H->R", "R->H transplanted", "H->R transplanted", "BLEU", "KL", "faithful %"]]
        for channel, by_t in metrics["translation"].items():
            for name in ordered_translators(by_t):
                e = by_t[name] or {}
                en, neu = e.get("to_english") or {}, e.get("to_neuralese") or {}
                table.append([channel, name, fmt_acc(en), fmt_acc(neu), fmt_agreement(en.get("transplanted")),
                              fmt_agreement(neu.get("transplanted")), fmt(en.get("bleu")), fmt(e.get("belief_kl")),
                              fmt_percent(en.get("faithful"))])  # fmt: skip
        lines += ["  " + line.replace(MISSING, "-") for line in _console_table(table)]  # ASCII for any console
    return "\n".join(lines)


# ("h1" | "h2" | "p" | "md", text), ("table", header, rows), ("img", alt, src), ("section", markdown, html); "md": markdown only
Block = tuple


def _blocks(metrics: dict, gallery: list[dict] | None = None) -> list[Block]:
    """The report as a list of blocks, rendered to markdown by `_markdown` and to HTML by `_html`."""
    d = metrics["data"]
    rows = [
        [name, _cell(rep), *(_cell(rep["by_condition"][c]) if c in rep["by_condition"] else "-" for c in CONDITIONS)]
        for name, rep in _rows(metrics)
    ]
    hl = metrics["human_listener"]
    blocks: list[Block] = [
        ("h1", "Evaluation report"),
        ("p", f"Data: `{d['file']}`: {d['rounds']} rounds from {d['games']} games "
              + ", ".join(f"{c} {d['by_condition'][c]}" for c in CONDITIONS) + "."),
        *_seeds_blocks(metrics),
        ("h2", "Listener accuracy"),
        ("p", "Accuracy at picking the target, with 95% intervals from a bootstrap over games."),
        ("table", ["who picks", "all", *CONDITIONS], rows),
        ("img", "accuracy by condition", "accuracy.png"),
        ("h2", "Calibration of the English listener"),
        ("p", f"Expected calibration error {hl['ece_uncalibrated']:.3f} before and {hl['ece']:.3f} after temperature "
              f"scaling (T = {hl['temperature']:.2f}, fitted on held-out training games). Mean confidence "
              f"{hl['mean_confidence']:.3f} at accuracy {hl['accuracy']:.3f}; NLL {hl['nll']:.3f}."),
        ("img", "reliability diagram", "calibration.png"),
    ]  # fmt: skip
    if metrics.get("agents"):
        keys = ["entropy", "mutual_information", "topographic_similarity", "posdis", "bosdis", "distinct_messages"]
        blocks += [
            ("h2", "Agents' language"),
            ("p", "Entropy and mutual information with the target colour in bits (continuous messages quantised by "
                  "k-means into 64 codes); topographic similarity: Spearman correlation of colour and message distances; "
                  "posdis/bosdis: disentanglement (discrete channels)."),
            ("table", ["channel", *keys], [[ch, *(_num(rep["language"].get(k)) for k in keys)] for ch, rep in metrics["agents"].items()]),
        ]  # fmt: skip
    if metrics.get("translation"):
        tr = metrics["translation"]
        blocks += [
            ("section", translation_markdown(tr).rstrip("\n"), translation_html(tr)),
            ("img", "translation accuracy (R→H) by translator and condition", "translation.png"),
            ("img", "belief KL by translator and channel", "belief_kl.png"),
        ]
    if gallery:
        blocks.append(("md", f"Gallery of {len(gallery)} sampled dev rounds with their translations: see `report.html`."))
    if "english_speaker" in metrics:
        blocks += [
            ("h2", "English speaker"),
            ("p", f"Perplexity per token (incl. end of utterance): {metrics['english_speaker']['perplexity']:.2f}."),
        ]
    return blocks


def _seeds_blocks(metrics: dict) -> list[Block]:
    """For a mean over seeds (`eval.seeds`): which seeds, and how to read `± spread`."""
    if not metrics.get("seeds"):
        return []
    seeds = ", ".join(str(m.get("seed")) for m in metrics["seeds"])
    return [("p", f"Mean over {len(metrics['seeds'])} seeds ({seeds}), each a complete run evaluated on the same rounds: "
                  "`mean ± spread [interval]`, the spread being max − min across seeds and the interval the mean of "
                  "the seeds' 95% intervals over games. Each seed's own report is in `seed-S/`.")]


def _markdown(metrics: dict, gallery: list[dict] | None = None) -> str:
    parts = []
    for b in _blocks(metrics, gallery):
        kind = b[0]
        if kind == "h1":
            parts.append(f"# {b[1]}")
        elif kind == "h2":
            parts.append(f"## {b[1]}")
        elif kind in ("p", "md"):
            parts.append(b[1])
        elif kind == "table":
            parts.append("\n".join(markdown_table(b[1], b[2])))
        elif kind == "img":
            parts.append(f"![{b[1]}]({b[2]})")
        elif kind == "section":
            parts.append(b[1])
    return "\n\n".join(parts) + "\n"


def _inline_html(text: str) -> str:
    """Escape text and turn markdown `code` spans into <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


PAGE_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.8em 0;font-size:90%}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}
img{max-width:100%}
"""


def _html(metrics: dict, gallery: list[dict] | None = None) -> str:
    """A self-contained page (PNG plots linked relatively) with the tables of `report.md` and the gallery."""
    body = []
    for b in _blocks(metrics, gallery):
        kind = b[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{html.escape(b[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline_html(b[1])}</p>")
        elif kind == "table":
            body.append(html_table(b[1], b[2]))
        elif kind == "img":
            body.append(f'<p><img src="{html.escape(b[2])}" alt="{html.escape(b[1])}"></p>')
        elif kind == "section":
            body.append(b[2])
    if gallery:
        body.append(gallery_html(gallery))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Evaluation report</title>\n'
        f"<style>{PAGE_CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def _plot_accuracy(metrics: dict, path: Path) -> None:
    rows = _rows(metrics)
    groups = ["all", *CONDITIONS]
    fig = Figure(figsize=(8, 4.4))
    ax = fig.subplots()
    width = 0.8 / len(rows)
    for i, (name, rep) in enumerate(rows):
        reps = [rep] + [rep["by_condition"].get(c, {"accuracy": np.nan, "ci95": [np.nan, np.nan]}) for c in CONDITIONS]
        acc = np.array([r["accuracy"] for r in reps])
        err = np.array([[a - r["ci95"][0], r["ci95"][1] - a] for a, r in zip(acc, reps)]).T
        ax.bar(np.arange(len(groups)) + i * width, acc, width, yerr=err, capsize=3, label=name)
    ax.set_xticks(np.arange(len(groups)) + width * (len(rows) - 1) / 2, groups)
    ax.set_ylim(0.0, 1.0)
    ax.axhline(1 / 3, color="grey", ls=":", lw=1, label="chance")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=len(rows) + 1, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _plot_calibration(metrics: dict, path: Path) -> None:
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    for name, bins in metrics["human_listener"]["reliability"].items():
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", label=name)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.set_title("English listener reliability")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# what `write_report` may write into its directory
REPORT_FILES = ("report.md", "report.html", "accuracy.png", "calibration.png", "translation.png", "belief_kl.png")


def write_report(metrics: dict, out: str | Path, gallery: list[dict] | None = None) -> None:
    """`report.md`, `report.html` and PNG plots in `out`; translation tables and plots when metrics has them."""
    out = Path(out)
    _plot_accuracy(metrics, out / "accuracy.png")
    _plot_calibration(metrics, out / "calibration.png")
    if metrics.get("translation"):
        plot_translation(metrics["translation"], out / "translation.png")
        plot_belief_kl(metrics["translation"], out / "belief_kl.png")
    atomic_write(out / "report.md", _markdown(metrics, gallery).encode("utf-8"))
    atomic_write(out / "report.html", _html(metrics, gallery).encode("utf-8"))


def write_training_report(training: dict, out: Path) -> None:
    """`training.png` (validation curves of listener and speaker) and a markdown table beside the bundle."""
    lh, sh = training["listener"]["history"], training["speaker"]["history"]
    fig = Figure(figsize=(9, 3.5))
    a, b = fig.subplots(1, 2)
    a.plot([h["epoch"] for h in lh], [h["val_accuracy"] for h in lh], marker="o")
    a.set(title="listener", xlabel="epoch", ylabel="validation accuracy")
    b.plot([h["epoch"] for h in sh], [h["val_perplexity"] for h in sh], marker="o", color="C1")
    b.set(title="speaker", xlabel="epoch", ylabel="validation perplexity")
    fig.tight_layout()
    fig.savefig(Path(out) / "training.png", dpi=110)
    lines = ["# Training", "", "| model | epoch | train loss | validation | seconds |", "|---|---|---|---|---|"]
    for name, hist, key in (("listener", lh, "val_accuracy"), ("speaker", sh, "val_perplexity")):
        for h in hist:
            lines.append(f"| {name} | {h['epoch']} | {h['train_loss']:.3f} | {key} {h[key]:.4f} | {h['seconds']:.0f} |")
    lines += ["", f"Listener temperature: {training['listener']['temperature']:.3f}.", "", "![training curves](training.png)"]
    atomic_write(Path(out) / "training.md", ("\n".join(lines) + "\n").encode("utf-8"))
