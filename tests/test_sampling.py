"""Sampling: filtering, the exponential race, and noise that is a hash of (seed, sample, step, token)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gptkit.sampling import SamplingParams, mix64, row_keys, sample_next, step_keys, uniform_noise


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 20), st.floats(0.05, 1.0), st.integers(0, 2**31 - 1))
def test_top_k_and_top_p_keep_only_allowed_tokens(k, p, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 30, generator=g) * 3
    allowed_k = torch.topk(logits, k, dim=-1).indices
    keys = step_keys(row_keys([seed], 3, "cpu"), 0)
    ids = sample_next(logits, SamplingParams(temperature=1.0, top_k=k), keys)
    assert all(int(ids[i]) in allowed_k[i].tolist() for i in range(3))
    probs = logits.softmax(-1)
    ids = sample_next(logits, SamplingParams(temperature=1.0, top_p=p), keys)
    for i in range(3):
        sorted_p, order = probs[i].sort(descending=True)
        before = sorted_p.cumsum(0) - sorted_p
        nucleus = order[before < p].tolist()
        assert int(ids[i]) in nucleus


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_sampler_draws_from_the_softmax(temperature):
    """20,000 draws of one distribution land within 1.5 points of softmax(logits / T) everywhere."""
    logits = torch.tensor([2.0, 1.0, 0.5, -1.0, float("-inf")])
    keys = step_keys(row_keys([0], 20_000, "cpu"), 0)
    ids = sample_next(logits.expand(20_000, -1), SamplingParams(temperature=temperature), keys)
    frequencies = torch.bincount(ids, minlength=5).float() / 20_000
    expected = (logits / temperature).softmax(-1)
    assert frequencies[4] == 0
    torch.testing.assert_close(frequencies, expected, atol=0.015, rtol=0)


def test_mix64_is_splitmix64():
    """The int64 torch ops compute splitmix64's finalizer on unsigned 64-bit integers."""
    def reference(z):
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 % 2**64
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB % 2**64
        return z ^ (z >> 31)

    values = [0, 1, 2**63 - 1, 2**63, 2**64 - 1, 0x9E3779B97F4A7C15] + [
        int(x) % 2**64 for x in torch.randint(-2**62, 2**62, (200,), generator=torch.Generator().manual_seed(0))]
    signed = torch.tensor([v - 2**64 if v >= 2**63 else v for v in values])
    assert [int(x) % 2**64 for x in mix64(signed)] == [reference(v) for v in values]


def test_noise_is_a_function_of_seed_sample_step_and_token_alone():
    keys = torch.cat([row_keys([3], 2, "cpu"), row_keys([3, 4], 1, "cpu")])  # (seed, sample): (3,0) (3,1) (3,0) (4,0)
    u = uniform_noise(step_keys(keys, 5), 50)
    assert u.min() > 0 and u.max() < 1
    torch.testing.assert_close(u[0], u[2], rtol=0, atol=0)  # same (seed, sample, step)
    assert not torch.equal(u[0], u[1]) and not torch.equal(u[0], u[3])
    assert not torch.equal(u[0], uniform_noise(step_keys(keys, 6), 50)[0])
    torch.testing.assert_close(uniform_noise(step_keys(keys[1:2], 5), 80)[0, :50], u[1], rtol=0, atol=0)
