"""Human-readable views of `metrics.json`: a text table, `report.md` and PNG plots."""

from __future__ import annotations

from pathlib import Path

from translator.corpus import CONDITIONS


def _rows(metrics: dict) -> list[tuple[str, dict]]:
    """(label, accuracy report) for every listener-accuracy entry in the metrics."""
    rows = [("people (corpus outcome)", metrics["human"]), ("English listener H_l", metrics["human_listener"])]
    if "english_speaker" in metrics:
        rows.append(("Bayesian listener from H_s", metrics["english_speaker"]["bayesian_listener"]))
    for channel, rep in metrics.get("agents", {}).items():
        rows.append((f"agents R/R ({channel})", rep))
    return rows


def _num(v) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _cell(rep: dict) -> str:
    lo, hi = rep["ci95"]
    return f"{rep['accuracy']:.3f} [{lo:.3f}, {hi:.3f}]"


def format_table(metrics: dict) -> str:
    d = metrics["data"]
    head = ["who picks", "all", *CONDITIONS]
    lines = [f"{d['file']}: {d['rounds']} rounds, {d['games']} games", "accuracy (95% CI, bootstrap over games)"]
    table = [head] + [[name, _cell(rep), *(_cell(rep["by_condition"][c]) if c in rep["by_condition"] else "-" for c in CONDITIONS)] for name, rep in _rows(metrics)]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for r in table:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    hl = metrics["human_listener"]
    lines.append(f"listener calibration: ECE {hl['ece_uncalibrated']:.3f} -> {hl['ece']:.3f} (temperature {hl['temperature']:.2f})")
    if "english_speaker" in metrics:
        lines.append(f"speaker perplexity: {metrics['english_speaker']['perplexity']:.2f}")
    return "\n".join(lines)


def _markdown(metrics: dict) -> str:
    d = metrics["data"]
    out = [
        "# Evaluation report",
        "",
        f"Data: `{d['file']}`: {d['rounds']} rounds from {d['games']} games "
        + ", ".join(f"{c} {d['by_condition'][c]}" for c in CONDITIONS) + ".",
        "",
        "## Listener accuracy",
        "",
        "Accuracy at picking the target, with 95% intervals from a bootstrap over games.",
        "",
        "| who picks | all | " + " | ".join(CONDITIONS) + " |",
        "|---|---|" + "---|" * len(CONDITIONS),
    ]
    for name, rep in _rows(metrics):
        cells = [_cell(rep["by_condition"][c]) if c in rep["by_condition"] else "-" for c in CONDITIONS]
        out.append(f"| {name} | {_cell(rep)} | " + " | ".join(cells) + " |")
    hl = metrics["human_listener"]
    out += [
        "",
        "![accuracy by condition](accuracy.png)",
        "",
        "## Calibration of the English listener",
        "",
        f"Expected calibration error {hl['ece_uncalibrated']:.3f} before and {hl['ece']:.3f} after temperature "
        f"scaling (T = {hl['temperature']:.2f}, fitted on held-out training games). Mean confidence "
        f"{hl['mean_confidence']:.3f} at accuracy {hl['accuracy']:.3f}; NLL {hl['nll']:.3f}.",
        "",
        "![reliability diagram](calibration.png)",
    ]
    if metrics.get("agents"):
        keys = ["entropy", "mutual_information", "topographic_similarity", "posdis", "bosdis", "distinct_messages"]
        out += ["", "## Agents' language", "",
                "Entropy and mutual information with the target colour in bits (continuous messages quantised by "
                "k-means into 64 codes); topographic similarity: Spearman correlation of colour and message distances; "
                "posdis/bosdis: disentanglement (discrete channels).", "",
                "| channel | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
        for channel, rep in metrics["agents"].items():
            lang = rep["language"]
            out.append(f"| {channel} | " + " | ".join(_num(lang.get(k)) for k in keys) + " |")
    if "english_speaker" in metrics:
        out += ["", "## English speaker", "", f"Perplexity per token (incl. end of utterance): {metrics['english_speaker']['perplexity']:.2f}."]
    return "\n".join(out) + "\n"


def _plot_accuracy(metrics: dict, path: Path) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    rows = _rows(metrics)
    groups = ["all", *CONDITIONS]
    fig, ax = plt.subplots(figsize=(8, 4.4))
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
    plt.close(fig)


def _plot_calibration(metrics: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    for name, bins in metrics["human_listener"]["reliability"].items():
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", label=name)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.set_title("English listener reliability")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(metrics: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    _plot_accuracy(metrics, out / "accuracy.png")
    _plot_calibration(metrics, out / "calibration.png")
    (out / "report.md").write_text(_markdown(metrics), encoding="utf-8")


def write_training_report(training: dict, out: Path) -> None:
    """`training.png` (validation curves of listener and speaker) and a markdown table beside the bundle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lh, sh = training["listener"]["history"], training["speaker"]["history"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot([h["epoch"] for h in lh], [h["val_accuracy"] for h in lh], marker="o")
    a.set(title="listener", xlabel="epoch", ylabel="validation accuracy")
    b.plot([h["epoch"] for h in sh], [h["val_perplexity"] for h in sh], marker="o", color="C1")
    b.set(title="speaker", xlabel="epoch", ylabel="validation perplexity")
    fig.tight_layout()
    fig.savefig(Path(out) / "training.png", dpi=110)
    plt.close(fig)
    lines = ["# Training", "", "| model | epoch | train loss | validation | seconds |", "|---|---|---|---|---|"]
    for name, hist, key in (("listener", lh, "val_accuracy"), ("speaker", sh, "val_perplexity")):
        for h in hist:
            lines.append(f"| {name} | {h['epoch']} | {h['train_loss']:.3f} | {key} {h[key]:.4f} | {h['seconds']:.0f} |")
    lines += ["", f"Listener temperature: {training['listener']['temperature']:.3f}.", "", "![training curves](training.png)"]
    (Path(out) / "training.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
