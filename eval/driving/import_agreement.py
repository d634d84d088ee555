"""How much of an agent's meaning an import recovers: translation through the fitted message model
against translation through the agent's own channel, on steps the agent said in fresh self-play.

Our own agent exported as if built elsewhere (translator/games/driving/export.py) is the one
foreign agent whose true channel we know. For each step (a car still driving) both belief
translators read the same message over the same fresh speaker states with the same English
speaker; agreement is the share of steps where they pick the same utterance. Baselines that read
nothing of what the import learned: the random translator, a constant message model (the mean
message everywhere: reads no observation) and the utterance the own channel picks most often. As
silence is the own channel's most frequent pick, the constant model agrees often by that alone;
Cohen's kappa corrects for it (0: no more agreement than the two translators' frequencies give).
For scale, `own_redrawn`: the own channel against itself over another draw of fresh states.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch

from translator.games.driving.agents import DrivingAgent
from translator.games.driving.export import SpokenStep
from translator.games.driving.imported import ImportedAgent, build_imported_translator
from translator.games.driving.message_model import DrivingMessageModel
from translator.games.driving.model_beliefs import ModelBeliefContext
from translator.games.driving.play import Said
from translator.games.driving.records import parse_record, to_state
from translator.games.driving.translate import BeliefContext, BeliefTranslator

RECORD_FIELDS = ("map", "car", "other", "message")


def constant_model(model: DrivingMessageModel, mean: torch.Tensor) -> DrivingMessageModel:
    """A copy of `model` whose mean is `mean` in every state (its spread kept)."""
    out = DrivingMessageModel(model.config)
    out.load_state_dict(model.state_dict())
    with torch.no_grad():
        out.net[-1].weight.zero_()
        out.net[-1].bias.copy_(mean)
    return out.eval()


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Agreement corrected for chance (Cohen's kappa): 0 for a translator that shares only the
    own channel's frequencies (always its most frequent utterance scores 0), 1 for the same picks."""
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[u] * cb[u] for u in ca) / (n * n)
    return (observed - expected) / (1 - expected) if expected < 1 else 0.0


def _picks(translators: dict[str, BeliefTranslator], steps: Sequence[SpokenStep], chunk: int = 256) -> dict[str, list[str]]:
    picks: dict[str, list[str]] = {name: [] for name in translators}
    context = next(iter(translators.values())).c
    for k in range(0, len(steps), chunk):
        part = steps[k : k + chunk]
        state = to_state(
            [parse_record({f: s.line[f] for f in RECORD_FIELDS if f in s.line}, "english", len(s.said.z[0])) for s in part]
        )
        said = Said(*(torch.cat([getattr(s.said, f) for s in part]) for f in ("z", "h", "heard")))
        obs = context.states_each(state, 0)
        with torch.no_grad():
            for name, tr in translators.items():
                picks[name] += [tr.utterances[i] for i in tr.english_scores(said, obs).argmin(1).tolist()]
    return picks


def translation_agreement(imported: ImportedAgent, agent: DrivingAgent, steps: Sequence[SpokenStep]) -> dict:
    """Agreement with the own channel's belief translation of the model's, the constant model's,
    the random translator's and the most frequent utterance's, over the driving cars' steps."""
    driving = [s for s in steps if not s.line["car"]["done"]]
    if not driving:
        raise ValueError("steps: no step of a car still driving")
    mean = torch.cat([s.said.z for s in driving]).mean(0)
    translators = {
        "own": BeliefTranslator(BeliefContext(agent, imported.speaker, seed=imported.seed), imported.pool),
        "model": build_imported_translator("belief", imported),
        "constant": BeliefTranslator(
            ModelBeliefContext(constant_model(imported.model, mean), imported.speaker, seed=imported.seed), imported.pool
        ),
    }
    picks = _picks(translators, driving)
    redrawn = BeliefTranslator(BeliefContext(agent, imported.speaker, seed=imported.seed + 1), imported.pool)
    picks["own_redrawn"] = _picks({"own": redrawn}, driving)["own"]
    random = build_imported_translator("random", imported)
    majority, count = Counter(picks["own"]).most_common(1)[0]
    own = picks["own"]
    agree = {name: sum(a == b for a, b in zip(own, picks[name])) / len(own) for name in ("model", "constant", "own_redrawn")}
    rand = random.rng.integers(len(random.candidates), size=len(own))
    agree["random"] = sum(own[i] == random.candidates[j] for i, j in enumerate(rand.tolist())) / len(own)
    agree["majority"] = count / len(own)
    chosen = {
        "model": picks["model"],
        "constant": picks["constant"],
        "own_redrawn": picks["own_redrawn"],
        "random": [random.candidates[j] for j in rand.tolist()],
    }
    return {
        "steps": len(own),
        "agreement": {k: round(v, 4) for k, v in agree.items()},
        "kappa": {k: round(cohen_kappa(own, v), 4) for k, v in chosen.items()},
        "majority_utterance": majority,
        "distinct_utterances": {"own": len(set(own)), "model": len(set(picks["model"]))},
    }
