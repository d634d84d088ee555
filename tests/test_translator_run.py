"""`neuralese train translator` and the translation evaluation on the tiny stack (conftest)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from eval.colors.translation import NAMES, evaluate_translation, load_translators
from training.colors.seq2seq import Seq2SeqTrainArgs
from training.colors.translator_run import TranslatorRunArgs, belief_matched_pairs, train_translator
from training.colors.translators import BeliefBuildArgs
from training.faithfulness import calibrate_bundle
from translator.games.colors.corpus import load_rounds
from translator.models.colors.learned_speaker import LearnedMessageModel
from translator.storage.bundle import CONFIG_FILE, check_header, read_json
from translator.translate.colors.belief import BeliefTranslator
from translator.translate.colors.collection import save_collection
from translator.translate.colors.seq2seq_pair import KIND as PAIR_KIND

SMALL = BeliefBuildArgs(contexts=16, min_count=2)


@pytest.fixture(scope="module")
def run(tmp_path_factory, english_models, tiny_agents, tiny_pairs):
    """A run directory with English models, agents and their paired corpus (as the CLI leaves them)."""
    run = tmp_path_factory.mktemp("run")
    english_models.save_pretrained(run / "english")
    tiny_agents.save_pretrained(run / "agents" / "continuous")
    info = {"agents": str(run / "agents" / "continuous"), "channel": "continuous", "channel_config": tiny_agents.channel.to_dict()}
    save_collection(tiny_pairs, run / "pairs", info)
    return run


def test_belief_and_direct_bundles_land_in_the_run_layout(run):
    path = train_translator(run / "pairs", run / "english", run, TranslatorRunArgs(kind="belief", belief=SMALL))
    assert path == run / "translators" / "continuous" / "belief"
    t = BeliefTranslator.from_pretrained(path)
    assert type(t.message_model).__name__ == "ExactMessageModel"  # the collection names its agents
    assert t.training["pairs_dir"] == str(run / "pairs") and t.training["build"]["min_count"] == 2
    path = train_translator(run / "pairs", run / "english", run, TranslatorRunArgs(kind="direct"))
    assert (path / "config.json").is_file() and path.name == "direct"


def test_learned_message_model_for_agents_known_only_by_their_messages(run):
    args = TranslatorRunArgs(kind="belief", name="continuous_learned", message_model="learned", belief=SMALL, message_model_epochs=2)
    t = BeliefTranslator.from_pretrained(train_translator(run / "pairs", run / "english", run, args))
    assert isinstance(t.message_model, LearnedMessageModel) and t.message_model.fit_info["best_epoch"] <= 2


def test_belief_matched_pairs_relabel_each_round_with_its_translation(run, tiny_pairs):
    t = BeliefTranslator.from_pretrained(run / "translators" / "continuous" / "belief")
    sub = tiny_pairs.select(range(40))
    pairs = belief_matched_pairs(t, sub)
    eng, neu = pairs["to_english"], pairs["to_neuralese"]
    assert len(eng) == len(neu) == 40 and set(eng.texts) <= set(t.candidates)
    assert torch.equal(eng.messages, torch.tensor(sub["message"])) and neu.texts == list(sub["utterance"])
    assert eng.texts == t.to_english(torch.tensor(sub["message"]), torch.tensor(sub["colors"])).translations


def test_faithfulness_is_refitted_on_the_games_the_bundle_held_out(run, tmp_path):
    """`neuralese train faithfulness`: the held-out rounds come from the collection the bundle names."""
    bundle = tmp_path / "belief"
    shutil.copytree(run / "translators" / "continuous" / "belief", bundle)
    model = calibrate_bundle(bundle)
    assert set(model.models) >= {"to_english"} and set(model.models["to_english"]) == {"in_context", "context_free"}
    assert BeliefTranslator.from_pretrained(bundle).faithfulness is not None


def test_seq2seq_needs_the_belief_translator_first(tmp_path, run):
    args = TranslatorRunArgs(kind="seq2seq", seq2seq_source="belief", name="other")
    with pytest.raises(ValueError, match="build it first with --kind belief"):
        train_translator(run / "pairs", run / "english", run, args)


def test_missing_pieces_are_named(run, tmp_path):
    from translator.storage.bundle import BundleError

    # no utterance is said a million times: nothing to translate into, and the message says what to lower
    with pytest.raises(ValueError, match="no English candidates.*lower min_count"):
        train_translator(run / "pairs", run / "english", tmp_path, TranslatorRunArgs(kind="belief", belief=BeliefBuildArgs(contexts=4, min_count=10**6)))
    # translators without an evaluation listener cannot be scored: the error names the command to run
    (tmp_path / "translators" / "continuous").mkdir(parents=True)
    with pytest.raises(BundleError, match="no evaluation listener.*train eval-listener"):
        evaluate_translation(tmp_path, [])
    (tmp_path / "eval_listener").mkdir()
    (tmp_path / "eval_listener" / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        evaluate_translation(tmp_path, [], jobs=0)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="translator kind 'beleif' is unknown"):
        TranslatorRunArgs(kind="beleif")
    with pytest.raises(ValueError, match="message model"):
        TranslatorRunArgs(message_model="guess")


def _build_missing(run):
    """The belief, direct and learned translators the tests above build, for when this one runs alone."""
    built = run / "translators"
    for name, args in (("continuous/belief", TranslatorRunArgs(kind="belief", belief=SMALL)),
                       ("continuous/direct", TranslatorRunArgs(kind="direct")),
                       ("continuous_learned/belief", TranslatorRunArgs(kind="belief", name="continuous_learned", message_model="learned",
                                                                       belief=SMALL, message_model_epochs=2))):
        if not (built / name).is_dir():
            train_translator(run / "pairs", run / "english", run, args)


@pytest.mark.slow
def test_every_translator_is_evaluated_on_unseen_games(run, game_slice, english_models):
    _build_missing(run)
    for source in ("cooccurrence", "belief"):
        args = TranslatorRunArgs(kind="seq2seq", seq2seq_source=source, seq2seq=Seq2SeqTrainArgs(max_steps=5, epochs=1),
                                 seq2seq_to_english=Seq2SeqTrainArgs(max_steps=5, epochs=1))
        train_translator(run / "pairs", run / "english", run, args)
        pair = run / "translators" / "continuous" / f"seq2seq_{source}" / CONFIG_FILE
        header = read_json(pair)
        check_header(pair, header, PAIR_KIND)  # kind, format version, and the hashes match
        assert set(header["files"]) == {"to_english/config.json", "to_neuralese/config.json"}
    from training.colors.eval_listener import EvalListenerArgs, save_eval_listener, train_eval_listener

    listener = train_eval_listener(load_rounds(game_slice(0, 40)), english_models.tokenizer, EvalListenerArgs(max_steps=30, epochs=1))
    save_eval_listener(listener, run)
    assert set(load_translators(run / "translators" / "continuous")) == set(NAMES)
    rounds = load_rounds(game_slice(48, 52))  # games no model saw
    metrics, gallery = evaluate_translation(run, rounds, jobs=2)
    assert set(metrics) == {"continuous", "continuous_learned"}
    for name, r in metrics["continuous"].items():
        e = r["to_english"]
        assert e["rounds"] == len(rounds) and 0 <= e["accuracy"] <= 1 and 0 <= e["consulted_listener_accuracy"] <= 1
        assert 0 < e["distinct"] <= 1000 and e["naturalness"] < 0 and r["belief_kl"] >= 0, name
        if "no_prior" in name or name.endswith("_greedy"):  # the prior and the reranking act towards English only
            assert "to_neuralese" not in r
        else:
            assert r["to_neuralese"]["rounds"] <= len(rounds)
    # the consulted listener follows belief translations in context far more than random ones
    t = metrics["continuous"]
    assert t["belief"]["to_english"]["consulted_listener_accuracy"] > t["random"]["to_english"]["consulted_listener_accuracy"] + 0.2
    assert gallery and {g["channel"] for g in gallery} == {"continuous", "continuous_learned"}
    json.dumps(metrics)  # JSON-ready
    g = gallery[0]
    assert len(g["colors"]) == 3 and set(g["translations"]) <= set(NAMES)
