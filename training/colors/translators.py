"""Build translators from a paired corpus (a collection: agent messages beside people's utterances
in the same rounds of the *training* games).

Belief matching has nothing to fit by gradient descent: building it means choosing candidates and
contexts and precomputing their beliefs (`BeliefTranslator`'s tables), then calibrating the
faithfulness thresholds and fitting the faithfulness probability on held-out training games. Nothing here reads the evaluation games.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import torch
from datasets import Dataset
from tqdm.auto import tqdm

from translator.games.colors.record import PlayedRounds
from translator.games.split import split_by_game
from translator.models.colors.english import EnglishModels
from translator.models.colors.message_model import MessageModel
from translator.settings.checks import non_negative_int, positive_int
from translator.translate.colors.baselines import DirectConfig, DirectTranslator
from translator.translate.colors.belief import BeliefTranslator, BeliefTranslatorConfig


@dataclass
class BeliefBuildArgs:
    seed: int = 0
    contexts: int = field(default=256, metadata={"help": "belief: contexts beliefs are compared over (K)", "type": positive_int})
    candidates: int = field(default=10000, metadata={"help": "belief: cap on English candidates", "type": positive_int})
    # A corpus utterance is a candidate when people said it at least this often in the training
    # pairs: the consulted listener memorises rare utterances, which fool it alone (docs/decisions.md).
    min_count: int = field(default=10, metadata={
        "help": "belief: a corpus utterance is a candidate when said this often in the pairs", "type": positive_int})
    # H_s samples added as candidates (odd strings that fool the listener too)
    speaker_samples: int = field(default=0, metadata={
        "help": "belief: English speaker samples added as candidates", "type": non_negative_int})
    pool: int = 4096  # agent messages kept as English → neuralese candidates (continuous)
    val_fraction: float = 0.1  # training games held out to calibrate the faithfulness thresholds
    threshold_quantile: float = 0.99  # held-out divergences below this quantile count as faithful
    faithfulness: bool = True  # fit the faithfulness probability's models on the held-out games (training/faithfulness.py)
    chunk: int = 64  # candidates per belief-grid chunk (memory)


def split_pairs(pairs: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """`(rest, held_out)` by whole games (`split_by_game`)."""
    rest, held = split_by_game(pairs["game_id"], fraction, seed, what="collection")
    return pairs.select(rest), pairs.select(held)


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def english_candidates(english: EnglishModels, pairs: Dataset | PlayedRounds, n: int, seed: int, min_count: int = 1,
                       samples: int | None = None) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Distinct corpus utterances said at least `min_count` times, then up to `samples` H_s samples
    in corpus contexts (default: until there are `n`); at most `n` in all.

    Returns texts and, for each, the (context, target) it was said in: where its naturalness is
    measured.
    """
    texts, colors, targets, seen = [], [], [], set()

    def add(text: str, c, t) -> None:
        k = _key(text)
        if k and k not in seen and english.tokenizer.encode([text])[0]:
            seen.add(k)
            texts.append(k)
            colors.append(c)
            targets.append(t)

    played = PlayedRounds.of(pairs)
    all_colors, all_targets, utterances = played.colors, played.targets, played.utterances
    counts = Counter(_key(t) for t in utterances)
    for text, c, t in zip(utterances, all_colors, all_targets):
        if counts[_key(text)] >= min_count and len(texts) < n:
            add(text, c, t)
    n = min(n, len(texts) + (n if samples is None else samples))
    g = torch.Generator().manual_seed(seed)
    for attempt in range(20):  # sampling rarely repeats itself; 20 rounds is plenty
        if len(texts) >= n:
            break
        rows = torch.randint(len(all_targets), (min(4096, 2 * (n - len(texts))),), generator=g)
        sampled = english.describe(all_colors[rows], all_targets[rows], method="sample", seed=seed + attempt)
        for text, r in zip(sampled, rows.tolist()):
            if len(texts) < n:
                add(text, all_colors[r], all_targets[r])
    if not texts:  # the caller says why (min_count too high for the corpus)
        return texts, torch.zeros(0, 3, 3), torch.zeros(0, dtype=torch.long)
    return texts, torch.stack(colors), torch.stack(targets)


def naturalness(english: EnglishModels, texts: list[str], colors: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The English speaker's mean per-token log-likelihood of each text in its context (EOS counted)."""
    lp = english.speaker_log_prob(texts, colors, targets)
    _, lengths = english.encode(texts)
    return lp / (lengths + 1)


def belief_grid(english: EnglishModels, encodings: torch.Tensor, contexts: torch.Tensor, chunk: int) -> torch.Tensor:
    """Every candidate's listener belief in every context, `(U, K, 3)`, with a progress bar."""
    parts = [english.listen_encoded(encodings[s : s + chunk, None], contexts[None])
             for s in tqdm(range(0, len(encodings), chunk), desc="candidate beliefs", leave=False, disable=None)]
    return torch.cat(parts)


def message_pool(pairs: Dataset | PlayedRounds, size: int, discrete: bool, seed: int) -> torch.Tensor:
    """Agent messages from self-play on the training contexts: all distinct ones (discrete) or a sample."""
    messages = PlayedRounds.of(pairs).messages
    if discrete:
        return torch.unique(messages.long(), dim=0)
    perm = torch.randperm(len(messages), generator=torch.Generator().manual_seed(seed))
    return messages[perm[:size]].float()


@torch.no_grad()
def build_belief_translator(english: EnglishModels, model: MessageModel, pairs: Dataset, args: BeliefBuildArgs | None = None,
                            config: BeliefTranslatorConfig | None = None) -> BeliefTranslator:
    """Precompute a belief translator's tables from training pairs and calibrate its thresholds."""
    args = args or BeliefBuildArgs()
    start = time.perf_counter()
    build, held = split_pairs(pairs, args.val_fraction, args.seed)
    g = torch.Generator().manual_seed(args.seed)
    played = PlayedRounds.of(build)
    contexts = played.colors[torch.randperm(len(played), generator=g)[: args.contexts]]

    texts, cand_colors, cand_targets = english_candidates(english, played, args.candidates, args.seed, args.min_count, args.speaker_samples)
    if not texts:
        raise ValueError(f"no English candidates: no utterance is said {args.min_count}+ times in the training pairs; lower min_count")
    encodings = english.encode_utterances(texts)
    pool = message_pool(played, args.pool, model.channel.discrete, args.seed)
    tables = {
        "contexts": contexts,
        "cand_beliefs": belief_grid(english, encodings, contexts, args.chunk),
        "cand_encodings": encodings,
        "cand_naturalness": naturalness(english, texts, cand_colors, cand_targets),
        "messages": pool,
        "msg_log_probs": model.log_prob_grid(pool, contexts),
    }
    config = config or BeliefTranslatorConfig(channel=model.channel.to_dict())
    translator = BeliefTranslator(config, english, model, tables, texts)
    config.thresholds = calibrate_thresholds(translator, held, args.threshold_quantile)
    if args.faithfulness:
        from training.faithfulness import fit_faithfulness

        translator.faithfulness = fit_faithfulness(translator, held)
    translator.training = {
        "build": asdict(args), "pairs": len(pairs), "held_out_rounds": len(held), "candidates": len(texts),
        "corpus_candidates": len({_key(t) for t in played.utterances} - {""}), "pool": len(pool),
        "seconds": time.perf_counter() - start,
    }
    return translator


def calibrate_thresholds(translator: BeliefTranslator, held: Dataset | PlayedRounds, quantile: float) -> dict:
    """Faithfulness thresholds: the `quantile` of divergences of genuine held-out translations.

    A genuine message or utterance is translated within these divergences `quantile` of the time;
    one beyond them means something its candidates cannot say.
    """
    played = PlayedRounds.of(held)
    messages, colors = played.messages, played.colors
    out = {"message_log_prob": {
        "context_free": torch.quantile(translator.message_log_prob(messages), 1 - quantile).item(),
        "in_context": torch.quantile(translator.message_log_prob(messages, colors), 1 - quantile).item(),
    }}  # fmt: skip
    said = readable_rows(translator.english, played.utterances)  # rounds without an utterance have no English to translate
    texts = [played.utterances[i] for i in said]
    sources = [("to_english", translator.to_english, messages, colors)]
    if texts:  # else no to_neuralese threshold: every translation counts as faithful (`translations.flag`)
        sources.append(("to_neuralese", translator.to_neuralese, texts, colors[said]))
    for direction, fn, source, where in sources:
        out[direction] = {
            "context_free": torch.quantile(fn(source).divergence, quantile).item(),
            "in_context": torch.quantile(fn(source, where).divergence, quantile).item(),
        }
    return out


def readable_rows(english: EnglishModels, utterances: list[str]) -> list[int]:
    """Indices of the utterances the English models can read (at least one token): a round without
    an utterance (imported rounds may have none) is used for its message only."""
    return [i for i, ids in enumerate(english.tokenizer.encode(list(utterances))) if ids]


@torch.no_grad()
def build_direct_translator(english: EnglishModels, model: MessageModel, pairs: Dataset, seed: int = 0, max_rounds: int | None = None,
                            config: DirectConfig | None = None) -> DirectTranslator:
    """The co-occurrence tables: every training round's context, agent message and utterance.

    `max_rounds` caps the rounds kept (a random subset); discrete channels default to 4096 because
    scoring a symbol string in every round's context runs the decoder once per round.
    """
    start = time.perf_counter()
    if max_rounds is None and model.channel.discrete:
        max_rounds = 4096
    if max_rounds is not None and max_rounds < len(pairs):
        keep = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed))[:max_rounds].sort().values
        pairs = pairs.select(keep.tolist())
    played = PlayedRounds.of(pairs)
    keys = [_key(t) for t in played.utterances]
    texts = sorted({k for k in keys if k})
    index = {t: i for i, t in enumerate(texts)}
    rows = [i for i, k in enumerate(keys) if k]
    if not rows:
        raise ValueError("no round of the paired corpus has an utterance: the direct translator pairs messages with what people said")
    said = played.subset(rows)
    tables = {
        "contexts": said.colors,
        "messages": said.messages.long() if model.channel.discrete else said.messages.float(),
        "encodings": english.encode_utterances(said.utterances),
        "utterance_ids": torch.tensor([index[keys[i]] for i in rows]),
    }
    config = config or DirectConfig(channel=model.channel.to_dict())
    return DirectTranslator(config, english, model, tables, texts, {"rounds": len(rows), "seed": seed, "seconds": time.perf_counter() - start})
