"""`EnglishModels` as a library API: plain texts and HSL colours in, checked, batched, in order."""

from __future__ import annotations

import pytest
import torch

from translator.games.colors.corpus import contexts_tensor

COLORS = [[[0.0, 80, 50], [120, 80, 50], [240, 80, 50]], [[30.0, 60, 50], [35, 60, 50], [200, 60, 50]]]


@pytest.fixture(scope="module")
def probe(small_rounds):
    rounds = small_rounds["test"][:50]
    return [r.text for r in rounds], contexts_tensor(rounds), torch.tensor([r.target for r in rounds])


def test_listen_is_independent_of_batching(english_models, probe):
    texts, colors, _ = probe
    full = english_models.listen(texts, colors)
    assert full.shape == (50, 3)
    for bs in (1, 3, 7):
        torch.testing.assert_close(english_models.listen(texts, colors, batch_size=bs), full, atol=1e-6, rtol=1e-5)
    for i in (0, 17, 49):
        torch.testing.assert_close(english_models.listen([texts[i]], colors[i : i + 1])[0], full[i], atol=1e-6, rtol=1e-5)


def test_speaker_log_prob_is_independent_of_batching(english_models, probe):
    texts, colors, targets = probe
    full = english_models.speaker_log_prob(texts, colors, targets)
    assert full.shape == (50,) and (full < 0).all()
    torch.testing.assert_close(english_models.speaker_log_prob(texts, colors, targets, batch_size=4), full, atol=1e-5, rtol=1e-5)
    one = english_models.speaker_log_prob([texts[5]], colors[5:6], targets[5:6])
    torch.testing.assert_close(one[0], full[5], atol=1e-5, rtol=1e-5)


def test_calibration_is_a_temperature_on_the_logits(english_models, probe):
    texts, colors, _ = probe
    t = english_models.listener.config.temperature
    raw = english_models.listen(texts, colors, calibrated=False)
    cal = english_models.listen(texts, colors)
    torch.testing.assert_close(cal, torch.softmax(raw.log() / t, -1), atol=1e-5, rtol=1e-4)
    assert torch.equal(raw.argmax(-1), cal.argmax(-1))


def test_bayesian_listener_is_the_normalised_speaker_likelihood(english_models, probe):
    texts, colors, _ = probe
    texts, colors = texts[:10], colors[:10]
    post = english_models.bayesian_listen(texts, colors)
    scores = torch.stack([english_models.speaker_log_prob(texts, colors, torch.full((10,), x)) for x in range(3)], -1)
    torch.testing.assert_close(post, torch.softmax(scores, -1))


def test_listener_follows_the_colours_not_their_positions(english_models, probe):
    texts, colors, _ = probe
    perm = [1, 2, 0]
    torch.testing.assert_close(
        english_models.listen(texts, colors[:, perm]), english_models.listen(texts, colors)[:, perm], atol=1e-5, rtol=1e-4
    )


def test_accepts_nested_lists_and_case_insensitive_text(english_models):
    p = english_models.listen(["Green", "green"], COLORS)
    torch.testing.assert_close(p[0], english_models.listen(["green"], torch.tensor(COLORS[:1]))[0])
    assert torch.equal(english_models.listen(["GREEN"], COLORS[:1]), english_models.listen(["green"], COLORS[:1]))


def test_trained_listener_understands_basic_colour_words(english_models):
    far = [COLORS[0]] * 3  # red, green, blue
    p = english_models.listen(["red", "green", "blue"], far)
    assert p.argmax(-1).tolist() == [0, 1, 2]


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text_raises(english_models, text):
    with pytest.raises(ValueError, match="utterance 1: empty text"):
        english_models.listen(["blue", text], COLORS)
    with pytest.raises(ValueError, match="empty text"):
        english_models.speaker_log_prob([text], COLORS[:1], [0])


def test_non_string_text_raises(english_models):
    with pytest.raises(TypeError, match="utterance 0: expected a string"):
        english_models.listen([3], COLORS[:1])


@pytest.mark.parametrize(
    "colors",
    [
        torch.zeros(2, 3),
        torch.zeros(2, 3, 4),
        torch.zeros(2, 2, 3),
        torch.zeros(2, 3, 3, 1),
        [[0.0, 50, 50], [1.0, 50, 50]],
    ],
)
def test_wrongly_shaped_colours_raise(english_models, colors):
    with pytest.raises(ValueError, match="expected shape \\(N, 3, 3\\)"):
        english_models.listen(["red", "blue"], colors)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_colours_raise(english_models, bad):
    colors = torch.tensor(COLORS)
    colors[1, 2, 0] = bad
    for call in (
        lambda: english_models.listen(["red", "blue"], colors),
        lambda: english_models.speaker_log_prob(["red", "blue"], colors, [0, 1]),
        lambda: english_models.bayesian_listen(["red", "blue"], colors),
        lambda: english_models.describe(colors, [0, 1]),
    ):
        with pytest.raises(ValueError, match="NaN or infinite"):
            call()


def test_mismatched_counts_raise(english_models):
    with pytest.raises(ValueError, match="2 contexts for 3 rows"):
        english_models.listen(["red", "blue", "green"], COLORS)
    with pytest.raises(ValueError, match="2 contexts for 1 rows"):
        english_models.speaker_log_prob(["red"], COLORS, [0])
    with pytest.raises(ValueError, match="2 contexts for 1 rows"):
        english_models.bayesian_listen(["red"], COLORS)
    with pytest.raises(ValueError, match="2 contexts for 3 rows"):
        english_models.describe(COLORS, [0, 1, 2])


@pytest.mark.parametrize("targets", [[0], [0, 1, 2], [0, 3]])
def test_bad_targets_raise_value_error(english_models, targets):
    with pytest.raises(ValueError):
        english_models.speaker_log_prob(["red", "blue"], COLORS, targets)


def test_unknown_describe_method_raises(english_models):
    with pytest.raises(ValueError, match="'greedy' is not 'beam' or 'sample'"):
        english_models.describe(COLORS, [0, 1], method="greedy")
