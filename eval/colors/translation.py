"""Behaviour-preservation evaluation of translators (docs/method.md §6) on a corpus of unseen games.

Per channel the agents play each evaluation round; then, per translator (docs/metrics.md):

- to_english (R→H): the message's translation is read by the evaluation listener (the judge,
  `RUN/eval_listener`, consulted by no translator); accuracy = it picks the agent's target. Also
  BLEU/chrF, distinct translations, naturalness, the share flagged faithful, and how well the
  faithfulness probability predicts the judge's errors (`eval.faithfulness`).
- to_neuralese (H→R): the person's utterance, translated, is read by the agents' listener.
- transplanted: the same in another round's context, scored by agreement (`eval.colors.transplant`);
  belief_kl: mean KL(message belief ‖ translation belief) over freshly sampled contexts.

Baselines scored the same way: `random`, and `message_blind`, which never reads the source and
only describes the round's target (`eval.colors.blind`); ablations: `*_no_prior` (no naturalness prior),
`seq2seq_*_greedy` (no n-best reranking). Scoring runs in worker processes, one unit each."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from sacrebleu.metrics import BLEU, CHRF
from tqdm.auto import tqdm

from eval.colors.blind import MessageBlind
from eval.colors.gallery import gallery
from eval.colors.run_models import eval_listener_dir, load_english, load_eval_listener
from eval.colors.transplant import Transplant
from eval.faithfulness import ChannelFaithfulness
from translator.games.accuracy import accuracy_report
from translator.games.colors.record import PlayedRounds
from translator.games.colors.sampling import sample_contexts
from translator.models.colors.agents import Agents
from translator.models.colors.english import EnglishModels
from translator.models.colors.message_model import ExactMessageModel, beliefs_from_log_probs
from translator.models.colors.prerank import BilinearRanker
from translator.storage.run_layout import TRANSLATORS_DIR, channel_translators
from translator.translate.colors import registry
from translator.translate.colors.baselines import DirectTranslator, RandomTranslator
from translator.translate.colors.belief import BeliefTranslator
from translator.translate.colors.collection import collect
from translator.translate.colors.reranked_seq2seq import RerankedSeq2Seq
from translator.translate.colors.seq2seq_pair import Seq2SeqPair
from translator.translate.translations import Translations

NAMES = ("belief", "belief_context_free", "belief_no_prior", "belief_context_free_no_prior", "direct", "seq2seq_cooccurrence",
         "seq2seq_belief", "seq2seq_cooccurrence_greedy", "seq2seq_belief_greedy", "seq2seq_cooccurrence_context_free",
         "seq2seq_belief_context_free", "random", "message_blind")
CONTEXT_FREE = ("belief_context_free", "belief_context_free_no_prior", "direct", "seq2seq_cooccurrence_context_free",
                "seq2seq_belief_context_free")
KL_CONTEXTS, KL_MESSAGES = 64, 1000


class EvaluatedTranslator:
    """One named translator under evaluation as a pair of batch functions `(sources, colors) -> Translations`;
    a `blind` one is given the rounds' targets in place of the sources (`eval.colors.blind`)."""

    def __init__(self, to_english: Callable, to_neuralese: Callable | None, blind: bool = False):
        self.to_english, self.to_neuralese, self.blind = to_english, to_neuralese, blind


# Translator families, most costly first: the evaluation names of each bundle kind (a seq2seq
# pair's family is named for the pairs it was trained on, from its header).
FAMILIES = ("seq2seq_belief", "seq2seq_cooccurrence", "belief", "direct")
# Families evaluated together in one process: they share many translations, and so the cache of
# `RoundScores`; the seq2seq models apart from the rest balance the workers (docs/decisions.md).
UNITS = (("seq2seq_belief", "seq2seq_cooccurrence"), ("belief", "direct"))


def _family(directory: Path) -> str | None:
    """The family of the translator bundle in `directory`, read from its header."""
    kind, header = registry.bundle_header(directory)
    if kind == registry.PAIR_KIND:
        return f"seq2seq_{header.get('source', 'cooccurrence')}"
    return {registry.BELIEF_KIND: "belief", registry.DIRECT_KIND: "direct"}.get(kind)


def families(channel_dir: Path) -> dict[str, Path]:
    """The translator families stored for one channel, in `FAMILIES` order, with their bundle
    directories. A bundle of a kind evaluation does not score (a one-direction seq2seq model), or
    a second bundle of the same family, is skipped with a warning."""
    found: dict[str, Path] = {}
    for name in channel_translators(channel_dir):
        d = channel_dir / name
        family = _family(d)
        if family is None or family in found:
            print(f"warning: {d} not evaluated ({'a second ' + family if family else 'a kind of translator the evaluation does not score'})",
                  file=sys.stderr)
            continue
        found[family] = d
    return {f: found[f] for f in FAMILIES if f in found}


def load_translators(channel_dir: Path, only: Sequence[str] | None = None) -> dict[str, EvaluatedTranslator]:
    """The translators stored for one channel (of the families `only`, default all), under their
    evaluation names."""
    loaders = {"belief": _belief, "direct": _direct, "seq2seq_belief": _seq2seq, "seq2seq_cooccurrence": _seq2seq}
    out: dict[str, EvaluatedTranslator] = {}
    for family, path in families(channel_dir).items():
        if only is None or family in only:
            out.update(loaders[family](registry.load(path)))
    return out


def _belief(b: BeliefTranslator) -> dict[str, EvaluatedTranslator]:
    """Belief matching in context and context-free, each also without the naturalness prior, and
    the random and message-blind baselines over the same candidates."""
    rnd = RandomTranslator(b.candidates, b.tables["messages"], b.channel, seed=0)
    ranker = BilinearRanker(b.tables["cand_beliefs"], b.english.encode_colors(b.tables["contexts"]),
                            b.english.listener.config.temperature, b.config.prerank_rank)
    blind = MessageBlind(b.english, b.candidates, b.message_model, ranker)
    return {
        "belief": EvaluatedTranslator(b.to_english, b.to_neuralese),
        "belief_context_free": EvaluatedTranslator(lambda m, c: b.to_english(m), lambda t, c: b.to_neuralese(t)),
        # the prior only acts neuralese → English
        "belief_no_prior": EvaluatedTranslator(lambda m, c: b.to_english(m, c, prior=False), None),
        "belief_context_free_no_prior": EvaluatedTranslator(lambda m, c: b.to_english(m, prior=False), None),
        "random": EvaluatedTranslator(rnd.to_english, rnd.to_neuralese),
        "message_blind": EvaluatedTranslator(blind.to_english, blind.to_neuralese, blind=True),
    }


def _direct(d: DirectTranslator) -> dict[str, EvaluatedTranslator]:
    return {"direct": EvaluatedTranslator(lambda m, c: d.to_english(m), lambda t, c: d.to_neuralese(t))}


def _seq2seq(pair: Seq2SeqPair) -> dict[str, EvaluatedTranslator]:
    """In context (named for the pairs it was trained on, e.g. `seq2seq_belief`); `..._greedy`, the
    generator's greedy output in context (when the bundle reranks n-best hypotheses);
    `..._context_free` (when the models were trained to do without the colours)."""
    eng, neu, name = pair.models["to_english"], pair.models["to_neuralese"], pair.name
    free_neu = (lambda t, c: neu.to_neuralese(t)) if neu.context_free else None
    if isinstance(eng, RerankedSeq2Seq):
        return {name: EvaluatedTranslator(eng.to_english, neu.to_neuralese),
                f"{name}_greedy": EvaluatedTranslator(lambda m, c: eng.to_english(m, c, n_best=1), None),
                f"{name}_context_free": EvaluatedTranslator(lambda m, c: eng.to_english(m), free_neu)}
    out = {name: EvaluatedTranslator(eng.to_english, neu.to_neuralese)}
    if eng.context_free:
        out[f"{name}_context_free"] = EvaluatedTranslator(lambda m, c: eng.to_english(m), free_neu)
    return out


def _dedupe_texts(fn: Callable, texts: list[str], colors) -> Translations:
    """Context-free translation of each distinct text once (utterances repeat a lot)."""
    if colors is not None:
        return fn(texts, colors)
    keys = [" ".join(t.lower().split()) for t in texts]
    uniq = list(dict.fromkeys(keys))
    pos = {k: i for i, k in enumerate(uniq)}
    idx = torch.tensor([pos[k] for k in keys])
    t = fn(uniq, None)
    return Translations(t.translations[idx], t.divergence[idx], t.faithful[idx], t.alternatives[idx], t.alternative_divergence[idx])


def _english_usable(english: EnglishModels, texts: list[str]) -> np.ndarray:
    return np.array([bool(ids) for ids in english.tokenizer.encode(texts)])


def listen_deduplicated(english: EnglishModels, texts: list[str], colors: torch.Tensor) -> torch.Tensor:
    """`english.listen`, reading each distinct text once (translations come from a few candidates)."""
    uniq = list(dict.fromkeys(texts))
    pos = {t: i for i, t in enumerate(uniq)}
    enc = english.encode_utterances(uniq)[torch.tensor([pos[t] for t in texts], dtype=torch.long)]
    return english.listen_encoded(enc, colors)


class RoundScores:
    """What the listeners and the speaker make of an English translation in its round, each
    `(round, text)` scored once per channel: translators often agree (with and without the prior,
    most translations are the same), and these three models are most of the evaluation's time."""

    def __init__(self, english: EnglishModels, eval_listener, colors: torch.Tensor, targets: torch.Tensor, references: list[str]):
        self.english, self.eval_listener, self.colors, self.targets = english, eval_listener, colors, targets
        self._done: dict[tuple[int, str], tuple[int, int, float]] = {}
        # sacrebleu's documented reference cache: the people's utterances are read once per channel
        self.bleu, self.chrf = BLEU(references=[references]), CHRF(references=[references])

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`(eval listener's pick, consulted listener's pick, naturalness)` of each row's text."""
        todo = [i for i, t in enumerate(texts) if (i, t) not in self._done]
        if todo:
            new = [texts[i] for i in todo]
            idx = torch.tensor(todo)
            picked = self.eval_listener.listen(new, self.colors[idx]).argmax(-1)
            consulted = listen_deduplicated(self.english, new, self.colors[idx]).argmax(-1)
            lp = self.english.speaker_log_prob(new, self.colors[idx], self.targets[idx])
            _, lengths = self.english.encode(new)
            nat = lp / (lengths + 1)
            for j, i in enumerate(todo):
                self._done[(i, texts[i])] = (int(picked[j]), int(consulted[j]), float(nat[j]))
        rows = [self._done[(i, t)] for i, t in enumerate(texts)]
        picked, consulted, nat = zip(*rows) if rows else ((), (), ())
        return torch.tensor(picked, dtype=torch.long), torch.tensor(consulted, dtype=torch.long), torch.tensor(nat)


def to_english_metrics(t: Translations, ds: dict, scores: RoundScores) -> dict:
    texts = list(t.translations)
    picked, consulted, nat = scores(texts)
    targets = scores.targets
    report = accuracy_report((picked == targets).tolist(), ds["condition"], ds["game_id"])
    report.update(
        bleu=scores.bleu.corpus_score(texts, None).score,
        chrf=scores.chrf.corpus_score(texts, None).score,
        distinct=1000 * len(set(texts)) / max(len(texts), 1),
        naturalness=float(nat.mean()),
        consulted_listener_accuracy=float((consulted == targets).float().mean()),
        faithful=float(t.faithful.float().mean()),
    )
    report["_choices"] = picked  # for the gallery; dropped before writing
    return report


def to_neuralese_metrics(t: Translations, ds: dict, agents, colors: torch.Tensor, targets: torch.Tensor, usable: torch.Tensor) -> dict:
    picked = agents.listen(t.translations, colors[usable]).argmax(-1)
    correct = (picked == targets[usable]).tolist()
    cond = [c for c, u in zip(ds["condition"], usable) if u]
    games = [g for g, u in zip(ds["game_id"], usable) if u]
    report = accuracy_report(correct, cond, games)
    report.update(faithful=float(t.faithful.float().mean()), skipped_empty=int((~usable).sum()))
    report["_correct"] = correct  # for the faithfulness report; dropped before writing
    return report


@torch.no_grad()
def belief_kl(messages: torch.Tensor, texts: list[str], model: ExactMessageModel, english: EnglishModels, seed: int = 0) -> float:
    """Mean KL(message belief ‖ translation belief) over fresh contexts (uniformly weighted)."""
    g = torch.Generator().manual_seed(10_000 + seed)  # away from the seeds training samples with
    contexts = sample_contexts(KL_CONTEXTS, g)["colors"]
    rows = torch.randperm(len(messages), generator=g)[:KL_MESSAGES]
    source = beliefs_from_log_probs(model.log_prob_grid(messages[rows], contexts))  # (N, K, 3)
    enc = english.encode_utterances([texts[i] for i in rows.tolist()])
    target = torch.cat([english.listen_encoded(enc[s : s + 64, None], contexts[None]) for s in range(0, len(enc), 64)])
    p, q = source.clamp_min(1e-6), target.clamp_min(1e-6)
    return float((p * (p.log() - q.log())).sum(-1).mean())


@dataclass
class ChannelRounds:
    """One channel's collected evaluation rounds as tensors, with what scoring them needs."""

    ds: dict  # the collection as plain lists: reading Arrow columns row by row costs more than the models
    messages: torch.Tensor
    colors: torch.Tensor
    targets: torch.Tensor
    usable: torch.Tensor  # rows whose utterance the English side can read (H→R)
    agents: Any
    english: EnglishModels
    scores: RoundScores
    transplant: Transplant

    @classmethod
    def build(cls, ds: Dataset, agents, english: EnglishModels, eval_listener) -> ChannelRounds:
        played = PlayedRounds.of(ds)
        ds = ds.to_dict()
        messages = played.messages.long() if agents.channel.discrete else played.messages.float()
        colors, targets = played.colors, played.targets
        usable = torch.from_numpy(_english_usable(english, ds["utterance"]))
        scores = RoundScores(english, eval_listener, colors, targets, list(ds["utterance"]))
        transplant = Transplant.build(ds, messages, colors, usable, agents, english, eval_listener)
        return cls(ds, messages, colors, targets, usable, agents, english, scores, transplant)

    @property
    def usable_texts(self) -> list[str]:
        return [t for t, u in zip(self.ds["utterance"], self.usable.tolist()) if u]


def _to_english(tr: EvaluatedTranslator, source, colors: torch.Tensor | None) -> Translations:
    eng = tr.to_english(source, colors)
    eng.translations = [s if s.strip() else "<empty>" for s in eng.translations]  # a seq2seq may say nothing
    return eng


def faithfulness_reports(faith: ChannelFaithfulness | None, direction: str, translations, correct, context_free: bool) -> dict:
    """`faithfulness` (the probability as the translator's own mode gives it: without the colours for
    a context-free translator) and, for a context-free translator, `faithfulness_in_round` (the same
    translations scored with the round's colours known); empty without faithfulness models."""
    if faith is None:
        return {}
    out = {"faithfulness": faith.report(direction, translations, correct, in_context=not context_free)}
    if context_free:
        out["faithfulness_in_round"] = faith.report(direction, translations, correct, in_context=True)
    return out


def score_to_english(name: str, tr: EvaluatedTranslator, r: ChannelRounds, faith: ChannelFaithfulness | None = None) -> tuple[dict, dict]:
    """R→H metrics of one translator, in the rounds' contexts and transplanted, and what the
    gallery shows of it (`eval.colors.gallery.gallery`)."""
    context_free = name in CONTEXT_FREE
    source = r.targets if tr.blind else r.messages
    eng = _to_english(tr, source, None if context_free else r.colors)
    moved = eng if context_free else _to_english(tr, source, r.transplant.colors)
    report = to_english_metrics(eng, r.ds, r.scores)
    choice = report.pop("_choices")
    report.update(faithfulness_reports(faith, "to_english", eng.translations, (choice == r.targets).numpy(), context_free))
    report["transplanted"] = r.transplant.to_english(list(moved.translations))
    shown = {"text": list(eng.translations), "faithful": eng.faithful, "choice": choice,
             "moved_text": list(moved.translations), "moved_choice": r.transplant.picks(list(moved.translations))}
    return report, shown


def score_to_neuralese(name: str, tr: EvaluatedTranslator, r: ChannelRounds, faith: ChannelFaithfulness | None = None) -> dict:
    """H→R metrics of one translator, in the rounds' contexts and transplanted (usable rows)."""
    context_free = name in CONTEXT_FREE
    source = r.targets[r.usable] if tr.blind else r.usable_texts
    neu = _dedupe_texts(tr.to_neuralese, source, None if context_free else r.colors[r.usable])
    report = to_neuralese_metrics(neu, r.ds, r.agents, r.colors, r.targets, r.usable)
    report.update(faithfulness_reports(faith, "to_neuralese", neu.translations, report.pop("_correct"), context_free))
    moved = neu if context_free else _dedupe_texts(tr.to_neuralese, source, r.transplant.colors[r.usable])
    report["transplanted"] = r.transplant.to_neuralese(moved.translations, r.agents)
    return report


def evaluate_channel(channel_dir: Path, agents, ds: Dataset, english: EnglishModels, eval_listener,
                     only: Sequence[str] | None = None, progress: bool = True) -> tuple[dict, list[dict]]:
    """Metrics of the translators of one channel (of the families `only`, default all) on the
    collected evaluation rounds, and a gallery."""
    translators = load_translators(channel_dir, only)
    if not translators:
        return {}, []
    r = ChannelRounds.build(ds, agents, english, eval_listener)
    faith = ChannelFaithfulness.load(channel_dir, r.messages, r.colors, r.usable_texts, r.usable)
    exact = ExactMessageModel(agents)
    out, shown = {}, {}
    for name in tqdm([n for n in NAMES if n in translators], desc=f"translators ({channel_dir.name})", leave=False, disable=None if progress else True):
        tr, start = translators[name], time.perf_counter()
        report = {}
        report["to_english"], shown[name] = score_to_english(name, tr, r, faith)
        if tr.to_neuralese is not None:
            report["to_neuralese"] = score_to_neuralese(name, tr, r, faith)
        report["belief_kl"] = belief_kl(r.messages, shown[name]["text"], exact, english)
        report["seconds"] = time.perf_counter() - start  # translating and scoring, both directions (1 torch thread)
        out[name] = report
    return out, gallery(r.ds, r.messages, r.colors, agents, shown, r.transplant)


def evaluate_translation(run: str | Path, rounds, jobs: int = 1, meanwhile: Callable[[], None] | None = None) -> tuple[dict, list[dict]]:
    """`{"<channel>": {"<translator>": {...}}}` for every translator directory of the run, and the gallery.

    The work is split into units (some translator families of one channel, `UNITS`), scored in
    `jobs` worker processes at once, each with one torch thread (so the numbers do not depend on
    `jobs`); each worker loads what it needs from the run itself. `meanwhile()`, when given, is
    this process's own work, run while the workers score (it is run in any case).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    run = Path(run)
    channel_dirs = sorted(p for p in (run / TRANSLATORS_DIR).glob("*") if p.is_dir())
    if channel_dirs:
        eval_listener_dir(run)  # fail fast; each worker loads it
    playable = playable_channels(run, channel_dirs)
    units = sorted(((i, d, u) for i, u in enumerate(UNITS) for d in playable if set(u) & set(families(d))), key=_unit_cost)
    results: dict[tuple[str, int], tuple[dict, list[dict]]] = {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=torch.set_num_threads,
                             initargs=(1,)) as pool:
        futures = {pool.submit(evaluate_unit, run, d, u, rounds): (d.name, i) for i, d, u in units}
        if meanwhile is not None:
            try:
                meanwhile()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)  # do not start the queued units
                raise
        bar = tqdm(as_completed(futures), total=len(futures), desc="translators", unit="unit", disable=None if futures else True)
        for done in bar:
            results[futures[done]] = done.result()
            bar.set_postfix_str(futures[done][0])
    return merge_units(results) if results else ({}, [])


def playable_channels(run: Path, channel_dirs: list[Path]) -> list[Path]:
    """The channel directories whose agents the run holds. The others (translators of imported
    messages, or a run missing its agents) have nothing to score by behaviour: a warning names them."""
    playable = []
    for d in channel_dirs:
        kind = _channel_kind(d)
        if kind is None:
            print(f"warning: channel {d.name} not evaluated: {d} holds no translator bundle that names its channel "
                  f"(and no agents at {run / 'agents' / d.name})", file=sys.stderr)  # fmt: skip
            continue
        agents = run / "agents" / kind
        if (agents / "config.json").is_file():
            playable.append(d)
        else:
            print(f"warning: channel {d.name} not evaluated: translators at {d} but no agents at {agents} "
                  "to play its messages", file=sys.stderr)  # fmt: skip
    return playable


def _unit_cost(unit: tuple[int, Path, Sequence[str]]) -> tuple:
    """Sort key, most costly first, so that the workers finish together: the seq2seq units, then
    units of more families, discrete channels (whose beliefs cost a decoder pass) before continuous."""
    i, d, u = unit
    return i, -len(set(u) & set(families(d))), _channel_kind(d) == "continuous", d.name


def evaluate_unit(run: Path, channel_dir: Path, unit: Sequence[str], rounds) -> tuple[dict, list[dict]]:
    """Some translator families of one channel, scored in a process of their own."""
    with torch.inference_mode():
        agents = Agents.from_pretrained(run / "agents" / _channel_kind(channel_dir))
        ds = collect(agents, rounds)
        return evaluate_channel(channel_dir, agents, ds, load_english(run), load_eval_listener(run), unit, progress=False)


def merge_units(results: dict[tuple[str, int], tuple[dict, list[dict]]]) -> tuple[dict, list[dict]]:
    """Per-unit metrics and galleries as one, channels and translators in a fixed order. The units
    of a channel draw their gallery from the same rounds, so their rows merge by position."""
    metrics: dict[str, dict] = {}
    items: list[dict] = []
    for channel in sorted({c for c, _ in results}):
        parts = [results[(c, i)] for c, i in sorted(results, key=lambda u: u[1]) if c == channel]
        got = {k: v for m, _ in parts for k, v in m.items()}
        if not got:
            continue
        metrics[channel] = {name: got[name] for name in NAMES if name in got}
        galleries = [gal for _, gal in parts if gal]
        items += [_merge_rows(channel, same) for same in zip(*galleries)]
    return metrics, items


def _merge_rows(channel: str, same: Sequence[dict]) -> dict:
    """One gallery row from the units' rows of the same round: their translations together, in
    `NAMES` order, in the round's context and transplanted."""

    def merged(key: Callable[[dict], dict]) -> dict:
        got = {k: v for row in same for k, v in key(row).items()}
        return {n: got[n] for n in NAMES if n in got}

    row = {**same[0], "channel": channel, "translations": merged(lambda g: g["translations"])}
    if "transplanted" in row:
        row["transplanted"] = {**row["transplanted"], "translations": merged(lambda g: g.get("transplanted", {}).get("translations", {}))}
    return row


def _channel_kind(channel_dir: Path) -> str | None:
    """The agents' channel kind a channel directory translates (its name may be e.g. continuous_learned),
    read from the header of its first translator bundle; None when it holds none."""
    names = channel_translators(channel_dir)
    return registry.bundle_channel(channel_dir / names[0]).kind if names else None
