"""Seq2seq to English with the listener reranking n-best hypotheses (`translator.translate.colors.reranked_seq2seq`)."""

from __future__ import annotations

import shutil

import pytest
import torch

from training.colors.seq2seq import Pairs, Seq2SeqTrainArgs, train_seq2seq
from translator.models.colors.message_model import ExactMessageModel
from translator.storage.bundle import BundleError, reseal
from translator.translate.colors.reranked_seq2seq import RerankConfig, RerankedSeq2Seq
from translator.translate.colors.seq2seq import Seq2SeqConfig
from translator.translate.matching import pointwise_divergence

TINY = dict(d_model=32, layers=1, heads=2, ffn_dim=64, max_text_len=24, prefix_tokens=2)


@pytest.fixture(scope="module")
def reranked(english_models, tiny_agents, tiny_pairs) -> RerankedSeq2Seq:
    """A small generator trained briefly on the agents' co-occurrence pairs (it reads beliefs)."""
    torch.set_num_threads(1)
    config = Seq2SeqConfig(direction="to_english", channel=tiny_agents.channel, use_context=True, context_dropout=0.25,
                           belief_input=True, **TINY)
    model = train_seq2seq(Pairs.from_collection(tiny_pairs), config, tokenizer=english_models.tokenizer,
                          args=Seq2SeqTrainArgs(epochs=2, batch_size=32, lr=3e-3), message_model=ExactMessageModel(tiny_agents))
    return RerankedSeq2Seq(model, english_models, RerankConfig(n_best=6))


@pytest.fixture(scope="module")
def rounds(tiny_pairs):
    sub = tiny_pairs.select(range(0, len(tiny_pairs), 8))
    return torch.tensor(sub["message"]), torch.tensor(sub["colors"], dtype=torch.float32)


def test_the_translation_is_the_hypothesis_whose_belief_matches_best(reranked, rounds):
    messages, colors = rounds
    n, k = len(messages), reranked.config.n_best
    out = reranked.to_english(messages, colors)
    hyps = reranked.generator.translate(messages, colors, num_beams=k, num_return_sequences=k)
    heard = reranked.english.listen(hyps, colors.repeat_interleave(k, 0)).view(n, k, 3)
    div = pointwise_divergence(reranked.generator.beliefs(messages, colors)[:, None], heard, "symmetric")
    assert torch.allclose(out.divergence, div.min(1).values, atol=1e-6)
    for i in range(n):
        assert out.translations[i] in hyps[i * k : (i + 1) * k]
        assert len(out.alternatives[i]) == 3 and set(out.alternatives[i]) <= set(hyps[i * k : (i + 1) * k])
    assert (out.alternative_divergence >= out.divergence[:, None] - 1e-6).all()
    assert (out.alternative_divergence.diff(dim=1) >= -1e-6).all()  # best first


def test_reranking_makes_the_consulted_listener_find_the_believed_target(reranked, rounds):
    messages, colors = rounds
    believed = reranked.generator.beliefs(messages, colors).argmax(-1)

    def found(texts: list[str]) -> float:
        return (reranked.english.listen(texts, colors).argmax(-1) == believed).float().mean().item()

    greedy, best = reranked.to_english(messages, colors, n_best=1), reranked.to_english(messages, colors)
    assert found(best.translations) >= found(greedy.translations) + 0.2  # measured 0.86 against 0.27


def test_greedy_and_context_free_are_the_generators_own_output(reranked, rounds):
    messages, colors = rounds
    greedy = reranked.to_english(messages, colors, n_best=1)
    assert greedy.translations == reranked.generator.translate(messages, colors) and greedy.divergence.isnan().all()
    free = reranked.to_english(messages)
    assert free.translations == reranked.generator.translate(messages) and free.faithful.all()


def test_save_load_round_trip_and_bad_bundles(reranked, rounds, tmp_path):
    messages, colors = rounds
    reranked.save_pretrained(tmp_path / "r")
    again = RerankedSeq2Seq.from_pretrained(tmp_path / "r")
    a, b = reranked.to_english(messages, colors), again.to_english(messages, colors)
    assert a.translations == b.translations and torch.equal(a.divergence, b.divergence)
    assert RerankedSeq2Seq.is_bundle(tmp_path / "r") and again.config == reranked.config
    (tmp_path / "r" / "rerank.json").write_text('{"n_best": 0}')
    with pytest.raises(BundleError, match="rerank.json: content does not match the sha256"):
        RerankedSeq2Seq.from_pretrained(tmp_path / "r")
    reseal(tmp_path / "r")  # the edit recorded: the rerank config's own check
    with pytest.raises(BundleError, match="rerank.json.*n_best"):
        RerankedSeq2Seq.from_pretrained(tmp_path / "r")
    (tmp_path / "r" / "rerank.json").unlink()
    with pytest.raises(BundleError, match="rerank.json: missing"):
        RerankedSeq2Seq.from_pretrained(tmp_path / "r")
    reranked.save_pretrained(tmp_path / "s")
    shutil.rmtree(tmp_path / "s" / "english")
    with pytest.raises(BundleError, match="english"):
        RerankedSeq2Seq.from_pretrained(tmp_path / "s")


def test_bad_arguments_are_refused(reranked, english_models, tiny_agents):
    with pytest.raises(ValueError, match="n_best"):
        RerankConfig(n_best=0)
    with pytest.raises(ValueError, match="criterion"):
        RerankConfig(criterion="cosine")
    plain = Seq2SeqConfig(direction="to_english", channel=tiny_agents.channel, **TINY, text_vocab_size=english_models.tokenizer.vocab_size)
    from translator.translate.colors.seq2seq import Seq2SeqTranslator

    with pytest.raises(ValueError, match="reads beliefs"):
        RerankedSeq2Seq(Seq2SeqTranslator(plain, english_models.tokenizer), english_models)
    with pytest.raises(ValueError, match="dimension|shape|floats"):
        reranked.to_english(torch.zeros(2, tiny_agents.channel.dim + 1), torch.zeros(2, 3, 3))
