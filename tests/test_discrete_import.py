"""Agents built elsewhere with a discrete channel: an imported file of symbol strings, through the
learned message model, to a belief translator that is built, saved, loaded and scored.

The file is synthetic, with a known code, so that what the translator does can be checked against
it: each round's message names the target's hue (3 bins) and lightness (2 bins), or is the single
symbol 11 for a greyish target. Every third round has no utterance (allowed by the schema).
"""

from __future__ import annotations

import json

import pytest
import torch

from training.colors.import_messages import import_messages
from training.colors.translator_run import TranslatorRunArgs, train_translator
from training.colors.translators import BeliefBuildArgs
from translator.games.colors.corpus import load_rounds
from translator.models.channels import canonical_symbols
from translator.models.colors.learned_speaker import LearnedMessageModel
from translator.models.colors.message_model import beam_search
from translator.translate.colors.api import Translator
from translator.translate.colors.belief import BeliefTranslator

torch.set_num_threads(1)


def code(color) -> list[int]:
    """The synthetic agents' message for a target colour `[h, s, l]` (before EOS padding)."""
    h, s, lightness = color
    if s < 20:
        return [11]
    return [1 + int(h // 120) % 3, 7 + min(int(lightness // 50), 1)]


def padded(color) -> list[int]:
    m = code(color)
    return m + [0] * (3 - len(m))


def write_file(path, rounds, utterances: bool = True) -> None:
    with path.open("w", encoding="utf-8") as f:
        for i, r in enumerate(rounds):
            rec = {"game_id": r.game_id, "colors": [list(c) for c in r.colors], "target": r.target, "message": code(r.colors[r.target])}
            if utterances and i % 3:
                rec["utterance"] = r.text
            f.write(json.dumps(rec) + "\n")


@pytest.fixture(scope="module")
def built(tmp_path_factory, game_slice, saved_english):
    run = tmp_path_factory.mktemp("imported")
    rounds = load_rounds(game_slice(0, 40))  # the English bundle's training games
    write_file(run / "agents.jsonl", rounds)
    pairs = import_messages(run / "agents.jsonl", run / "pairs", channel={"kind": "gumbel", "vocab_size": 12, "max_len": 3})
    args = TranslatorRunArgs(kind="belief", message_model="learned", belief=BeliefBuildArgs(contexts=16, min_count=2), message_model_epochs=6)
    path = train_translator(run / "pairs", saved_english, run, args)
    return run, path, pairs


def test_a_belief_translator_is_built_saved_and_loaded(built):
    run, path, pairs = built
    assert path == run / "translators" / "gumbel" / "belief"
    t = BeliefTranslator.from_pretrained(path)
    model = t.message_model
    assert isinstance(model, LearnedMessageModel) and model.channel.kind == "gumbel" and model.channel.vocab_size == 12
    # every round trained the message model, with or without an utterance; only utterances became candidates
    assert model.fit_info["data"]["train_rounds"] + model.fit_info["data"]["val_rounds"] == len(pairs)
    assert "" not in t.candidates and t.config.thresholds["to_neuralese"]["in_context"] >= 0


def test_the_learned_speaker_proposes_the_agents_own_messages(built, game_slice):
    _, path, _ = built
    model = BeliefTranslator.from_pretrained(path).message_model
    rounds = load_rounds(game_slice(48, 52))  # games nothing was fitted on
    colors = torch.tensor([r.colors for r in rounds], dtype=torch.float32)
    proposed = model.most_likely_messages(colors)  # (K, 3, max_len), by beam search
    truth = torch.tensor([[padded(c) for c in r.colors] for r in rounds])
    assert proposed.shape == truth.shape and (proposed == truth).all(-1).float().mean() > 0.75  # 13 messages
    # the proposal is the most likely message under the model (all 157 messages scored), never worse than greedy
    with torch.no_grad():
        hidden = model.hidden(colors.repeat_interleave(3, 0), torch.arange(3).repeat(len(colors)))
        every = canonical_symbols(torch.cartesian_prod(*[torch.arange(12)] * 3)).unique(dim=0)
        best = every[model.channel_module.log_prob_all(hidden, every).argmax(0)]
        greedy = beam_search(model.channel_module, hidden, 1)
        lp = model.channel_module.log_prob
        assert torch.equal(proposed.reshape(-1, 3), best) and (lp(hidden, best) >= lp(hidden, greedy) - 1e-5).all()


def test_translations_follow_the_code_in_both_directions(built, game_slice):
    _, path, _ = built
    tr = Translator.from_pretrained(path)
    rounds = load_rounds(game_slice(48, 52))
    contexts = [[list(c) for c in r.colors] for r in rounds]
    # English -> neuralese: the agents' own message for the colour the English listener believes in,
    # as the learned model proposes it, which is mostly the code's
    texts = [r.text for r in rounds]
    out = [o.translation for o in tr.to_neuralese(texts, contexts)]
    believed = tr.inner.english.listen(texts, torch.tensor(contexts)).argmax(-1).tolist()
    proposed = tr.inner.message_model.most_likely_messages(torch.tensor(contexts))
    own = sum(m == proposed[k, b].tolist() for k, (m, b) in enumerate(zip(out, believed))) / len(out)
    coded = sum(m == padded(c[b]) for m, c, b in zip(out, contexts, believed)) / len(out)
    assert own > 0.85 and coded > 0.6, (own, coded)
    # neuralese -> English: the consulted listener, reading the translation, finds the target where
    # the code names it (its message is not also another colour's)
    clear = [r for r in rounds if sum(code(c) == code(r.colors[r.target]) for c in r.colors) == 1]
    english = tr.to_english([code(r.colors[r.target]) for r in clear], [[list(c) for c in r.colors] for r in clear])
    picked = tr.inner.english.listen([e.translation for e in english], torch.tensor([r.colors for r in clear])).argmax(-1)
    accuracy = (picked == torch.tensor([r.target for r in clear])).float().mean().item()
    assert len(clear) > 50 and accuracy > 0.7, (len(clear), accuracy)  # chance is 1/3; measured 0.83 of 69


def test_a_file_without_utterances_is_refused_saying_so(tmp_path, game_slice, saved_english):
    write_file(tmp_path / "silent.jsonl", load_rounds(game_slice(0, 3)), utterances=False)
    import_messages(tmp_path / "silent.jsonl", tmp_path / "pairs")
    for kind in ("belief", "direct", "seq2seq"):
        with pytest.raises(ValueError, match=r"silent.jsonl\): none of its \d+ rounds has an utterance"):
            train_translator(tmp_path / "pairs", saved_english, tmp_path, TranslatorRunArgs(kind=kind, message_model="learned"))
