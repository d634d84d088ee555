"""Report views of `metrics["translation"]` and the translation gallery: tables, plots and HTML.

`metrics["translation"][channel][translator]` holds `to_english` (R→H: agent messages rendered in
English, scored by the evaluation listener), `to_neuralese` (H→R: people's utterances rendered as
messages, scored by the agent listener; may be missing) and `belief_kl` (may be null). The gallery is
a list of sampled dev rounds with each translator's rendering of the agent's message.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from translator.games.colors.corpus import CONDITIONS

# Preferred row order; translators not listed here follow in the order the metrics give them.
TRANSLATORS = ("belief", "belief_no_prior", "belief_context_free", "belief_context_free_no_prior", "direct",
               "seq2seq_cooccurrence", "seq2seq_cooccurrence_greedy", "seq2seq_cooccurrence_context_free",
               "seq2seq_belief", "seq2seq_belief_greedy", "seq2seq_belief_context_free", "random", "message_blind")
MISSING = "–"
COLUMNS = ["translator", "R→H acc [95% CI]", "H→R acc [95% CI]", "R→H transplanted [95% CI]", "far / split / close",
           "H→R transplanted [95% CI]", "BLEU", "chrF", "distinct/1000", "naturalness", "consulted acc", "belief KL",
           "faithful %", "R→H faithfulness AUROC / ECE", "H→R faithfulness AUROC / ECE"]  # fmt: skip

Table = tuple[str, list[str], list[list[str]]]  # (caption, header, rows)


def ordered_translators(names: Iterable[str]) -> list[str]:
    """Known translators in `TRANSLATORS` order, then the rest as given."""
    names = list(names)
    return [t for t in TRANSLATORS if t in names] + [t for t in names if t not in TRANSLATORS]


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fmt(v: object, digits: int = 3) -> str:
    """A number with `digits` decimals, or "–" for missing, null or non-finite values."""
    return f"{v:.{digits}f}" if _finite(v) else MISSING


def fmt_acc(rep: dict | None) -> str:
    """`accuracy [lo, hi]` of an accuracy report, or "–"; `accuracy ± spread [lo, hi]` for a mean
    over seeds (`seed_spread`: max − min across seeds, beside the interval over games)."""
    if not rep or not _finite(rep.get("accuracy")):
        return MISSING
    spread = f" ± {rep['seed_spread']:.3f}" if _finite(rep.get("seed_spread")) else ""
    ci = rep.get("ci95") or [None, None]
    if len(ci) == 2 and _finite(ci[0]) and _finite(ci[1]):
        return f"{rep['accuracy']:.3f}{spread} [{ci[0]:.3f}, {ci[1]:.3f}]"
    return f"{rep['accuracy']:.3f}{spread}"


def fmt_agreement(rep: dict | None) -> str:
    """`agreement [lo, hi]` of an agreement report (transplanted contexts), or "–"."""
    if not rep:
        return MISSING
    return fmt_acc({"accuracy": rep.get("agreement"), "ci95": rep.get("ci95"), "seed_spread": rep.get("seed_spread")})


def fmt_by_condition(rep: dict | None, key: str = "agreement") -> str:
    """`far / split / close` values of a report's `by_condition`, two decimals, or "–"."""
    by = (rep or {}).get("by_condition") or {}
    cells = [fmt((by.get(c) or {}).get(key), 2) for c in CONDITIONS]
    return MISSING if all(c == MISSING for c in cells) else " / ".join(cells)


def fmt_percent(v: object) -> str:
    """A share in [0, 1] as a percentage with one decimal, or "–"."""
    return f"{100 * v:.1f}" if _finite(v) else MISSING


def fmt_faithfulness(rep: dict | None) -> str:
    """`AUROC / ECE` of a faithfulness report (`eval.faithfulness`), or "–"."""
    if not rep:
        return MISSING
    return f"{fmt(rep.get('auroc'))} / {fmt(rep.get('ece'))}"


def translation_tables(translation: dict) -> list[Table]:
    """One table per channel: a row per translator, the columns of `COLUMNS`."""
    tables = []
    for channel, by_translator in translation.items():
        rows = []
        for name in ordered_translators(by_translator):
            entry = by_translator[name] or {}
            en, neu = entry.get("to_english") or {}, entry.get("to_neuralese") or {}
            rows.append([
                name, fmt_acc(en), fmt_acc(neu), fmt_agreement(en.get("transplanted")), fmt_by_condition(en.get("transplanted")),
                fmt_agreement(neu.get("transplanted")), fmt(en.get("bleu")), fmt(en.get("chrf")),
                fmt(en.get("distinct")), fmt(en.get("naturalness")), fmt(en.get("consulted_listener_accuracy")),
                fmt(entry.get("belief_kl")), fmt_percent(en.get("faithful")),
                fmt_faithfulness(en.get("faithfulness")), fmt_faithfulness(neu.get("faithfulness")),
            ])  # fmt: skip
        tables.append((str(channel), list(COLUMNS), rows))
    return tables


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Lines of a GitHub markdown table (pipes in cells escaped)."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(header), "|" + "---|" * len(header)] + [line(r) for r in rows]


def html_table(header: list[str], rows: list[list[str]], caption: str | None = None) -> str:
    """An escaped HTML table."""
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr></thead>")
    out.append("<tbody>")
    out += ["<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows]
    out.append("</tbody></table>")
    return "\n".join(out)


TRANSLATION_INTRO = (
    "R→H: agent messages translated into English, scored by the evaluation listener picking the target; "
    "H→R: people's utterances translated into messages, scored by the agent listener. Accuracies with 95% "
    "intervals from a bootstrap over games; BLEU, chrF, distinct, naturalness, consulted-listener accuracy and "
    "faithfulness are of the R→H translations; belief KL between the message's and the translation's beliefs. "
    "Transplanted: each message (utterance) is read in another round's context, where its own round's target means "
    "nothing; R→H agreement = the evaluation listener picks from the translation what the agent listener picks from "
    "the message, H→R agreement = the agent listener picks from the translation what the evaluation listener picks "
    "from the utterance (by the transplanted context's condition). message_blind describes the round's target (or "
    "sends the agents' own message for it) without reading the source: what recovering the target alone scores; "
    "transplanted, it is at chance (0.333) by construction. Faithfulness AUROC / ECE: how well each translation's "
    "calibrated probability that a listener acts on it as on the source (from the channel's belief translator's "
    "models, fitted on held-out training games) tells right translations from wrong ones, and its calibration error; "
    "for a context-free translator, the probability it gets without the colours."
)


def translation_markdown(translation: dict) -> str:
    """The translation section of `report.md`: an intro and one table per channel."""
    out = ["## Translation", "", TRANSLATION_INTRO, ""]
    for channel, header, rows in translation_tables(translation):
        out += [f"### {channel}", "", *markdown_table(header, rows), ""]
    return "\n".join(out)


def translation_html(translation: dict) -> str:
    """The same section as `translation_markdown`, as HTML."""
    out = ["<h2>Translation</h2>", f"<p>{html.escape(TRANSLATION_INTRO)}</p>"]
    for channel, header, rows in translation_tables(translation):
        out += [f"<h3>{html.escape(channel)}</h3>", html_table(header, rows)]
    return "\n".join(out)


def _bar_stats(rep: dict | None) -> tuple[float, float, float]:
    """(accuracy, error below, error above) for an accuracy report; NaN accuracy and zero error if missing."""
    if not rep or not _finite(rep.get("accuracy")):
        return float("nan"), 0.0, 0.0
    acc = rep["accuracy"]
    ci = rep.get("ci95") or [None, None]
    lo = acc - ci[0] if _finite(ci[0]) else 0.0
    hi = ci[1] - acc if _finite(ci[1]) else 0.0
    return acc, max(lo, 0.0), max(hi, 0.0)


def plot_translation(translation: dict, path: str | Path) -> None:
    """R→H accuracy per channel (one panel each): grouped bars by translator and condition, 95% CI, chance line."""
    channels = list(translation) or ["(none)"]
    groups = ["all", *CONDITIONS]
    fig = Figure(figsize=(max(5.0, 4.6 * len(channels)), 4.2))
    axes = fig.subplots(1, len(channels), sharey=True, squeeze=False)
    for ax, channel in zip(axes[0], channels):
        by_translator = translation.get(channel, {})
        names = ordered_translators(by_translator)
        width = 0.8 / len(groups)
        for j, group in enumerate(groups):
            stats = []
            for name in names:
                en = (by_translator[name] or {}).get("to_english") or {}
                stats.append(_bar_stats(en if group == "all" else (en.get("by_condition") or {}).get(group)))
            if stats:
                acc, lo, hi = np.array(stats, dtype=float).T
                ax.bar(np.arange(len(names)) + j * width, acc, width, yerr=np.vstack([lo, hi]), capsize=2,
                       color=f"C{j}", label=group)  # fmt: skip
        ax.axhline(1 / 3, color="grey", ls="--", lw=1, label="chance")
        ax.set_xticks(np.arange(len(names)) + width * (len(groups) - 1) / 2, names, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0.0, 1.05)
        ax.set_title(f"{channel}: R→H")
        if not names:
            ax.text(0.5, 0.5, "no translators", ha="center", va="center", transform=ax.transAxes)
    axes[0][0].set_ylabel("evaluation listener accuracy")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=8, frameon=False, ncol=len(labels))
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=110)


def plot_belief_kl(translation: dict, path: str | Path) -> None:
    """Belief KL: one panel per channel, a bar per translator (same colour in every panel); null values left out."""
    channels = list(translation) or ["(none)"]
    every = ordered_translators(dict.fromkeys(t for c in translation for t in translation[c]))
    fig = Figure(figsize=(max(5.0, 3.6 * len(channels)), 3.8))
    axes = fig.subplots(1, len(channels), sharey=True, squeeze=False)
    for ax, channel in zip(axes[0], channels):
        by_t = translation.get(channel, {})
        kl = [(n, (by_t[n] or {}).get("belief_kl")) for n in ordered_translators(by_t)]
        kl = [(n, v) for n, v in kl if _finite(v)]
        if kl:
            ax.bar(range(len(kl)), [v for _, v in kl], 0.7, color=[f"C{every.index(n) % 10}" for n, _ in kl])
            ax.set_xticks(range(len(kl)), [n for n, _ in kl], rotation=30, ha="right", fontsize=8)
            ax.set_xlim(-0.6, max(len(kl), 3) - 0.4)  # keep bars narrow when a channel has few
        else:
            ax.set_xticks([])
            ax.text(0.5, 0.5, "no belief KL", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(channel)
    axes[0][0].set_ylabel("belief KL (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


GALLERY_CSS = """
.round{border:1px solid #ccc;border-radius:6px;padding:8px 12px;margin:10px 0;max-width:60em}
.round .meta{color:#555;font-size:90%}
.swatches{display:flex;gap:10px;margin:6px 0}
.swatch-box{text-align:center;font-size:80%;width:8em}
.swatch{width:64px;height:64px;margin:0 auto;border:3px solid transparent;border-radius:4px}
.swatch.target{border-color:#000}
.swatch.small{display:inline-block;width:1.4em;height:1.4em;vertical-align:middle;margin:0}
.transplanted{border-top:1px dashed #ccc;margin-top:6px;padding-top:4px}
.picks{min-height:1.2em}
.untranslatable{color:#a33;font-style:italic}
.right{color:#080}.wrong{color:#a00}
"""


def hsl_css(color: Sequence[float]) -> str:
    """CSS `hsl()` for a corpus colour (hue 0-360, saturation and lightness 0-100)."""
    h, s, lum = (float(x) for x in color)
    return f"hsl({h:g}, {s:g}%, {lum:g}%)"


def _swatches(colors: Sequence, target: int | None, agent_choice: int | None, translations: dict) -> str:
    """One box per colour: the swatch (the target with a border), its label, and who picked it."""
    esc = html.escape
    names = ordered_translators(translations)
    boxes = []
    for i, color in enumerate(colors or []):
        pickers = (["agent"] if agent_choice == i else []) + [
            f"eval listener ({n})" for n in names if (translations[n] or {}).get("eval_listener_choice") == i
        ]
        cls = "swatch target" if i == target else "swatch"
        label = f"#{i} target" if i == target else f"#{i}"
        boxes.append(
            f'<div class="swatch-box"><div class="{cls}" style="background: {esc(hsl_css(color))}" '
            f'title="{esc(label)}"></div><div>{esc(label)}</div>'
            f'<div class="picks">{esc(", ".join(pickers))}</div></div>')  # fmt: skip
    return f'<div class="swatches">{"".join(boxes)}</div>'


def _translation_items(translations: dict, reference: int | None) -> str:
    """The translations as a list, each marked ✓ when the evaluation listener's pick from it is
    `reference` (the target in the round's context, the agent's pick when transplanted)."""
    esc = html.escape
    items = []
    for n in ordered_translators(translations):
        t = translations[n] or {}
        choice = t.get("eval_listener_choice")
        mark = "" if choice is None or reference is None else (
            '<span class="right">✓</span> ' if choice == reference else '<span class="wrong">✗</span> ')  # fmt: skip
        flag = "" if t.get("faithful", True) else ' <span class="untranslatable">untranslatable?</span>'
        items.append(f"<li>{mark}<b>{esc(str(n))}</b>: {esc(str(t.get('text', '')))}{flag}</li>")
    return f"<ul>{''.join(items)}</ul>"


def _reconstruction_html(color: Sequence[float] | None) -> str:
    if not color:
        return ""
    return (f'<div class="reconstruction"><span class="swatch small" style="background: {html.escape(hsl_css(color))}">'
            "</span> the colour the agent listener guesses from the message alone</div>")  # fmt: skip


def _transplanted_html(t: dict | None) -> str:
    if not t:
        return ""
    esc = html.escape
    return "\n".join([
        '<div class="transplanted">',
        f'<div class="meta">the same message read in the context of round {esc(str(t.get("round_id", "")))} '
        f'({esc(str(t.get("condition", "")))}): ✓ = the evaluation listener picks what the agent listener picks</div>',
        _swatches(t.get("colors") or [], None, t.get("agent_choice"), t.get("translations") or {}),
        _translation_items(t.get("translations") or {}, t.get("agent_choice")),
        "</div>",
    ])  # fmt: skip


def _round_html(r: dict) -> str:
    esc = html.escape
    target = r.get("target")
    translations = r.get("translations") or {}
    agent = r.get("agent_choice")
    agent_ok = "" if agent is None else f"#{agent} (right)" if agent == target else f"#{agent} (wrong)"
    return "\n".join([
        '<div class="round">',
        f'<div class="meta">{esc(str(r.get("channel", "")))} · round {esc(str(r.get("round_id", "")))} · '
        f'{esc(str(r.get("condition", "")))}</div>',
        _swatches(r.get("colors") or [], target, agent, translations),
        f"<div>message: <code>{esc(str(r.get('message', '')))}</code>; agent listener picked "
        f"{esc(agent_ok or '–')}</div>",
        _reconstruction_html(r.get("reconstruction")),
        f"<div>person: “{esc(str(r.get('utterance', '')))}”</div>",
        _translation_items(translations, target),
        _transplanted_html(r.get("transplanted")),
        "</div>",
    ])  # fmt: skip


def gallery_html(gallery: list[dict]) -> str:
    """An HTML fragment (with its own <style>) showing each sampled round: swatches, picks, message, translations."""
    if not gallery:
        return ""
    intro = ("<p>Rounds drawn at random (seeded), the same number from each condition. The target has a black "
             "border; under each colour, who picked it: the agent listener (from the message) and the evaluation "
             "listener given each translator's English. Translations judged unfaithful to the message are marked "
             "<i>untranslatable?</i>. For a listener that reconstructs, the small swatch is the colour it guesses "
             "from the message alone. Below each round, the same message read in another round's context "
             "(transplanted), where the round's own target means nothing.</p>")  # fmt: skip
    return "\n".join([f"<style>{GALLERY_CSS}</style>", "<h2>Gallery</h2>", intro, *(_round_html(r) for r in gallery)])
