"""Message channels: shapes, gradients, exact log-probabilities, length semantics, input checks."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from translator.models.channels import (
    CHANNEL_KINDS,
    EOS,
    ChannelConfig,
    Message,
    canonical_symbols,
    check_message,
    make_channel,
    make_encoder,
    message_lengths,
)

torch.set_num_threads(1)
HIDDEN = 16


def build(kind: str, **kw):
    torch.manual_seed(0)
    cfg = ChannelConfig(kind=kind, **kw)
    return cfg, make_channel(cfg, HIDDEN), make_encoder(cfg, 8)


def test_unknown_kind_names_the_valid_ones():
    with pytest.raises(ValueError, match="continuous, gumbel, reinforce"):
        ChannelConfig(kind="morse")
    with pytest.raises(ValueError, match="unknown field"):
        ChannelConfig.from_dict({"kind": "gumbel", "vocab": 3})


@pytest.mark.parametrize("kind", CHANNEL_KINDS)
def test_shapes(kind):
    cfg, ch, enc = build(kind, dim=12, vocab_size=5, max_len=4)
    h = torch.randn(7, HIDDEN)
    for sample in (True, False):
        m = ch.speak(h, sample=sample)
        assert m.value.shape == ((7, 12) if kind == "continuous" else (7, 4))
        assert m.log_prob.shape == m.entropy.shape == m.length.shape == (7,)
        assert ch.log_prob(h, m).shape == (7,)
        assert enc(m).shape == (7, 8)
        if kind != "continuous":
            assert m.value.dtype == torch.long and m.onehot.shape == (7, 4, 5)
            assert torch.equal(m.value, canonical_symbols(m.value))


def test_continuous_is_normalised_and_noisy():
    cfg, ch, _ = build("continuous", dim=64, noise=0.3)
    h = torch.randn(500, HIDDEN)
    mu = ch.speak(h, sample=False).value
    assert torch.allclose(mu.norm(dim=-1), torch.ones(500), atol=1e-5)
    z = ch.speak(h, sample=True, generator=torch.Generator().manual_seed(1)).value
    assert abs((z - mu).std().item() - 0.3) < 0.01


def test_continuous_log_prob_is_the_gaussian_density():
    from scipy.stats import multivariate_normal

    cfg, ch, _ = build("continuous", dim=6, noise=0.4)
    h = torch.randn(5, HIDDEN, dtype=torch.float64)
    ch = ch.double()
    m = ch.speak(h, sample=True, generator=torch.Generator().manual_seed(0))
    mu = ch.speak(h, sample=False).value.detach()
    ref = [multivariate_normal(mu[i].numpy(), 0.16 * torch.eye(6).numpy()).logpdf(m.value[i].detach().numpy()) for i in range(5)]
    assert torch.allclose(m.log_prob.detach(), torch.tensor(ref, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(ch.log_prob(h, m.value).detach(), m.log_prob.detach(), atol=1e-12)
    # entropy of N(mu, s^2 I) in d dimensions
    assert math.isclose(m.entropy[0].item(), 0.5 * 6 * math.log(2 * math.pi * math.e * 0.16), rel_tol=1e-9)


@pytest.mark.parametrize("kind", ["continuous", "gumbel"])
def test_gradients_flow_through_the_channel(kind):
    cfg, ch, enc = build(kind, vocab_size=6, max_len=3, temperature=1.0)
    h = torch.randn(32, HIDDEN, requires_grad=True)
    loss = enc(ch.speak(h, sample=True)).pow(2).sum()
    loss.backward()
    assert h.grad is not None and h.grad.abs().sum() > 0
    grads = [p.grad for p in ch.parameters() if p.grad is not None]
    assert grads and sum(g.abs().sum() for g in grads) > 0


def test_reinforce_has_no_gradient_through_the_symbols():
    cfg, ch, enc = build("reinforce", vocab_size=6, max_len=3, entropy_coef=0.0)
    h = torch.randn(32, HIDDEN, requires_grad=True)
    m = ch.speak(h, sample=True)
    assert not m.onehot.requires_grad
    enc(m).pow(2).sum().backward()  # a listener loss: reaches the listener, not the speaker
    assert h.grad is None and all(p.grad is None for p in ch.parameters())
    assert any(p.grad is not None for p in enc.parameters())
    # the speaker's gradient comes only from the log-prob term of the policy loss
    reward = torch.randn(32)
    ch.policy_loss(m, reward).backward()
    assert h.grad is not None and h.grad.abs().sum() > 0
    expected = torch.autograd.grad(-((reward - 0.0) * ch.log_prob(h, m)).mean(), h)[0]
    assert torch.allclose(h.grad, expected, atol=1e-6)


def test_reinforce_baseline_is_a_running_mean():
    cfg, ch, _ = build("reinforce", vocab_size=4, max_len=2, baseline_momentum=0.5)
    h = torch.randn(8, HIDDEN)
    m = ch.speak(h)
    ch.policy_loss(m, torch.full((8,), 2.0))
    assert ch.baseline.item() == pytest.approx(2.0)  # the first batch sets it
    ch.policy_loss(m, torch.full((8,), 4.0))
    assert ch.baseline.item() == pytest.approx(3.0)
    ch.eval()
    ch.policy_loss(m, torch.full((8,), 100.0))
    assert ch.baseline.item() == pytest.approx(3.0)  # frozen outside training
    assert "baseline" in ch.state_dict()


def test_length_semantics():
    s = torch.tensor([[0, 4, 2], [3, 0, 5], [1, 2, 0], [1, 2, 3], [7, 7, 7]])
    # symbols up to and including the first EOS; no EOS -> max_len
    assert message_lengths(s).tolist() == [1, 2, 3, 3, 3]
    assert canonical_symbols(s).tolist() == [[0, 0, 0], [3, 0, 0], [1, 2, 0], [1, 2, 3], [7, 7, 7]]


@pytest.mark.parametrize("kind", ["gumbel", "reinforce"])
def test_spoken_lengths_including_messages_that_hit_max_len(kind):
    cfg, ch, enc = build(kind, vocab_size=5, max_len=4)
    h = torch.randn(300, HIDDEN)
    m = ch.speak(h, sample=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(m.length, message_lengths(m.value))
    assert set(m.length.tolist()) == {1, 2, 3, 4}  # some messages end early, some hit the maximum
    with torch.no_grad():  # a speaker that never says EOS: every message has length max_len
        ch.out.bias[EOS] = -1e4
    m = ch.speak(h, sample=True)
    assert (m.length == 4).all() and (m.value != EOS).all()
    with torch.no_grad():  # one that always ends at once: length 1 (just EOS)
        ch.out.bias[EOS] = 1e4
    m = ch.speak(h, sample=True)
    assert (m.length == 1).all() and (m.value == EOS).all()
    assert torch.allclose(m.log_prob, torch.zeros(300), atol=1e-4)


def test_symbols_after_eos_are_ignored():
    cfg, ch, enc = build("gumbel", vocab_size=6, max_len=3)
    h = torch.randn(2, HIDDEN)
    a = torch.tensor([[3, 0, 5], [2, 0, 1]])
    b = canonical_symbols(a)
    assert torch.allclose(ch.log_prob(h, a), ch.log_prob(h, b))
    assert torch.allclose(enc(a), enc(b))


@pytest.mark.parametrize("kind", ["gumbel", "reinforce"])
def test_discrete_log_prob_matches_sampling_frequencies(kind):
    """vocab 3, max_len 2: 7 possible messages; exp(log p) sums to 1 and matches frequencies."""
    cfg, ch, _ = build(kind, vocab_size=3, max_len=2, temperature=0.5)
    with torch.no_grad():
        for p in ch.parameters():
            p.mul_(4)  # sharpen the distribution so the probabilities differ
    h = torch.randn(1, HIDDEN)
    messages = [(0, 0)] + [(a, 0) for a in (1, 2)] + list(itertools.product((1, 2), repeat=2))
    with torch.no_grad():
        lp = ch.log_prob(h.expand(len(messages), -1), torch.tensor(messages))
    assert lp.exp().sum().item() == pytest.approx(1.0, abs=1e-5)
    n = 40_000
    with torch.no_grad():
        m = ch.speak(h.expand(n, -1), sample=True, generator=torch.Generator().manual_seed(0))
    # the log-prob returned with each sample is the exact one
    first = {tuple(v): i for i, v in enumerate(m.value.tolist())}
    for msg, lpi in zip(messages, lp):
        if msg in first:
            assert m.log_prob[first[msg]].item() == pytest.approx(lpi.item(), abs=1e-5)
    counts = {msg: 0 for msg in messages}
    for v in m.value.tolist():
        counts[tuple(v)] += 1  # KeyError if a non-canonical message was produced
    for msg, lpi in zip(messages, lp):
        p = lpi.exp().item()
        sd = math.sqrt(p * (1 - p) / n)
        assert abs(counts[msg] / n - p) < 5 * sd + 1e-4, (msg, counts[msg] / n, p)


@pytest.mark.parametrize("kind", ["gumbel", "reinforce"])
def test_log_prob_all_equals_log_prob_for_every_pair(kind):
    """The prefix-sharing walk gives `log_prob` of every (message, state) pair, non-canonical input,
    messages that end early, hit the maximum or share prefixes included; the probabilities of all
    messages still sum to 1."""
    cfg, ch, _ = build(kind, vocab_size=4, max_len=3)
    every = torch.tensor(list(itertools.product(range(4), repeat=3)))  # 64 raw strings, 1 + 3 + 9 + 27 distinct messages
    h = torch.randn(5, HIDDEN)
    with torch.no_grad():
        got = ch.log_prob_all(h, every)
        want = torch.stack([ch.log_prob(h, m.expand(len(h), -1)) for m in every])
    assert got.shape == (64, 5)
    assert torch.allclose(got, want, atol=1e-6)
    distinct = torch.unique(canonical_symbols(every), dim=0)
    assert len(distinct) == 40
    with torch.no_grad():
        assert torch.allclose(ch.log_prob_all(h, distinct).exp().sum(0), torch.ones(5), atol=1e-5)
    assert ch.log_prob_all(h, every[:0]).shape == (0, 5) and ch.log_prob_all(h[:0], every).shape == (64, 0)


def test_gumbel_forward_is_hard_one_hot():
    cfg, ch, _ = build("gumbel", vocab_size=5, max_len=3, temperature=2.0)
    m = ch.speak(torch.randn(10, HIDDEN), sample=True)
    assert torch.allclose(m.onehot.detach(), torch.nn.functional.one_hot(m.value, 5).float(), atol=1e-6)
    assert m.onehot.requires_grad


@pytest.mark.parametrize("kind", CHANNEL_KINDS)
def test_check_message_rejects_bad_input(kind):
    cfg = ChannelConfig(kind=kind, dim=4, vocab_size=5, max_len=3)
    if kind == "continuous":
        assert check_message(cfg, torch.zeros(2, 4)).shape == (2, 4)
        with pytest.raises(ValueError, match=r"expects shape \(N, 4\)"):
            check_message(cfg, torch.zeros(2, 5))
        with pytest.raises(ValueError, match="NaN or infinite"):
            check_message(cfg, torch.tensor([[0.0, float("nan"), 0, 0]]))
        with pytest.raises(ValueError, match="NaN or infinite"):
            check_message(cfg, torch.tensor([[0.0, float("inf"), 0, 0]]))
    else:
        assert check_message(cfg, [[1, 2]]).tolist() == [[1, 2, 0]]  # short messages padded with EOS
        assert check_message(cfg, [[1, 0, 4]]).tolist() == [[1, 0, 0]]  # canonical
        with pytest.raises(ValueError, match="out of range for a vocabulary of 5"):
            check_message(cfg, [[1, 5, 0]])
        with pytest.raises(ValueError, match="out of range"):
            check_message(cfg, [[-1, 0, 0]])
        with pytest.raises(ValueError, match="shape"):
            check_message(cfg, torch.zeros(2, 4, dtype=torch.long))
        with pytest.raises(ValueError, match="NaN or infinite"):
            check_message(cfg, torch.tensor([[1.0, float("nan"), 0.0]]))
        with pytest.raises(ValueError, match="whole numbers"):
            check_message(cfg, torch.tensor([[1.5, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="expected 3 messages"):
        check_message(cfg, torch.zeros(2, 4 if kind == "continuous" else 3), n=3)


def test_message_detach():
    cfg, ch, _ = build("gumbel", vocab_size=4, max_len=2)
    m = ch.speak(torch.randn(3, HIDDEN))
    d = m.detach()
    assert isinstance(d, Message) and not d.onehot.requires_grad and not d.log_prob.requires_grad and len(d) == 3
